//! Reads for messages: single events, threads.

#[allow(unused_imports)]
use super::{Store, StoreError, records::*, tables::*};
