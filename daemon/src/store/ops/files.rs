//! File metadata: recording an upload.

use redb::WriteTransaction;

use super::{OpResult, Refusal};
use crate::store::{StoreError, records::*};

pub(super) fn store_file(_txn: &WriteTransaction, _id: String, _record: FileRecord) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}
