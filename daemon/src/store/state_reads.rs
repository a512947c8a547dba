//! Reads of per-user state: read markers, receipts, mentions, profiles.

#[allow(unused_imports)]
use super::{Store, StoreError, records::*, tables::*};
