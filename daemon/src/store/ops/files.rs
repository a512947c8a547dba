//! File metadata: recording an upload. The bytes are already in place under
//! the id when this runs; the caller deletes them if it is refused.

use redb::{ReadableTable as _, WriteTransaction};

use super::{OpOutput, OpResult, Refusal, user_record};
use crate::{
    ids::UserId,
    store::{StoreError, records::*, tables::*},
};

/// Records file `id`. A file adds its size to its owner's `file_bytes`,
/// refused with QUOTA_EXCEEDED when that would pass `quota_bytes`. A
/// thumbnail (`thumbnail_of` set) does not count against the quota: the
/// server made it, not the user, and it is small (at most 320x320). Its
/// original must exist with the same owner, and it becomes the original's
/// `thumbnail_id` in the same transaction.
pub(super) fn store_file(
    txn: &WriteTransaction,
    id: String,
    record: FileRecord,
    quota_bytes: u64,
) -> Result<OpResult, StoreError> {
    let owner = UserId(record.owner);
    let Some(mut user) = user_record(txn, owner)? else {
        return Ok(Err(Refusal::UserNotFound));
    };
    if user.is_guest() {
        return Ok(Err(Refusal::Forbidden("guests cannot upload files")));
    }
    let mut files = txn.open_table(FILES)?;
    if files.get(id.as_str())?.is_some() {
        // 128 random bits do not collide; this is a caller's bug.
        return Ok(Err(Refusal::Invalid(format!("file id {id} is taken"))));
    }
    if record.thumbnail_of.is_empty() {
        let total = user.file_bytes.saturating_add(record.size);
        if total > quota_bytes {
            return Ok(Err(Refusal::QuotaExceeded(format!(
                "this file ({} bytes) would take your files to {total} bytes, over your quota of {quota_bytes} bytes",
                record.size
            ))));
        }
        user.file_bytes = total;
        files.insert(id.as_str(), record)?;
        drop(files);
        txn.open_table(USERS)?.insert(owner.0, user)?;
    } else {
        let original_id = record.thumbnail_of.clone();
        let Some(mut original) = files.get(original_id.as_str())?.map(|v| v.value()) else {
            return Ok(Err(Refusal::FileNotFound(format!("no file {original_id} to be the thumbnail of"))));
        };
        if original.owner != record.owner || !original.thumbnail_of.is_empty() {
            return Ok(Err(Refusal::FileNotFound(format!("no file {original_id} to be the thumbnail of"))));
        }
        original.thumbnail_id = id.clone();
        files.insert(original_id.as_str(), original)?;
        files.insert(id.as_str(), record)?;
    }
    Ok(Ok(OpOutput::Done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn file(owner: u64, size: u64) -> FileRecord {
        FileRecord { owner, name: "f".into(), size, ..Default::default() }
    }

    #[test]
    fn files_count_against_the_quota_and_thumbnails_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("test.redb")).unwrap();
        let db = store.database();
        let txn = db.begin_write().unwrap();
        {
            let mut users = txn.open_table(USERS).unwrap();
            users.insert(1, UserRecord { name: "alice".into(), ..Default::default() }).unwrap();
            users.insert(2, UserRecord { name: "bob".into(), ..Default::default() }).unwrap();
            let guest = UserRecord { name: "zed".into(), kind: UserKind::Guest as i32, ..Default::default() };
            users.insert(3, guest).unwrap();
        }
        let store_file = |id: &str, record: FileRecord| store_file(&txn, id.into(), record, 100).unwrap();

        assert_eq!(store_file("a", file(1, 60)), Ok(OpOutput::Done));
        assert!(matches!(store_file("b", file(1, 41)), Err(Refusal::QuotaExceeded(_))));
        assert_eq!(store_file("b", file(1, 40)), Ok(OpOutput::Done));
        assert!(matches!(store_file("a", file(2, 1)), Err(Refusal::Invalid(_))), "ids are unique");
        assert!(matches!(store_file("g", file(3, 1)), Err(Refusal::Forbidden(_))));

        // A thumbnail: free, linked to its original, only for its owner.
        let thumbnail = FileRecord { thumbnail_of: "a".into(), ..file(1, 500) };
        assert_eq!(store_file("a-thumb", thumbnail.clone()), Ok(OpOutput::Done));
        let of_bob = FileRecord { thumbnail_of: "a".into(), ..file(2, 5) };
        assert!(matches!(store_file("x", of_bob), Err(Refusal::FileNotFound(_))));
        let of_thumbnail = FileRecord { thumbnail_of: "a-thumb".into(), ..file(1, 5) };
        assert!(matches!(store_file("y", of_thumbnail), Err(Refusal::FileNotFound(_))));

        let files = txn.open_table(FILES).unwrap();
        assert_eq!(files.get("a").unwrap().unwrap().value().thumbnail_id, "a-thumb");
        assert!(files.get("x").unwrap().is_none() && files.get("y").unwrap().is_none());
        drop(files);
        assert_eq!(user_record(&txn, UserId(1)).unwrap().unwrap().file_bytes, 100);
        assert_eq!(user_record(&txn, UserId(2)).unwrap().unwrap().file_bytes, 0);
    }
}
