//! Reads of file metadata and of who may see a file.

#[allow(unused_imports)]
use super::{Store, StoreError, records::*, tables::*};
