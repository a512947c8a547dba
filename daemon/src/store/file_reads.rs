//! Reads of file metadata and of who may see a file.

use redb::{ReadTransaction, ReadableDatabase as _};

use super::{Store, StoreError, records::*, tables::*};
use crate::ids::UserId;

impl Store {
    /// A file's metadata, whoever asks.
    pub fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(FILES)?.get(id)?.map(|v| v.value()))
    }

    /// A file's metadata if `user` may see it: they own it, it is public (an
    /// avatar), or it is attached to a message (not deleted) of a room they
    /// may read (joined, or any public room). A thumbnail is visible to
    /// whoever may see its original.
    pub fn visible_file(&self, id: &str, user: UserId) -> Result<Option<FileRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let files = txn.open_table(FILES)?;
        let Some(record) = files.get(id)?.map(|v| v.value()) else { return Ok(None) };
        let (deciding_id, deciding) = if record.thumbnail_of.is_empty() {
            (id.to_owned(), record.clone())
        } else {
            let Some(original) = files.get(record.thumbnail_of.as_str())?.map(|v| v.value()) else {
                return Ok(None);
            };
            (record.thumbnail_of.clone(), original)
        };
        Ok(may_see(&txn, &deciding_id, &deciding, user)?.then_some(record))
    }
}

fn may_see(txn: &ReadTransaction, id: &str, record: &FileRecord, user: UserId) -> Result<bool, StoreError> {
    if record.owner == user.0 || record.public {
        return Ok(true);
    }
    let file_rooms = txn.open_table(FILE_ROOMS)?;
    let rooms = txn.open_table(ROOMS)?;
    let memberships = txn.open_table(MEMBERSHIPS)?;
    // One row per message the file is attached to: each room is looked at
    // once, by jumping past its rows, and the first readable one ends it.
    let mut from = 0;
    loop {
        let Some(entry) = file_rooms.range((id, from, 0)..=(id, u64::MAX, u64::MAX))?.next() else {
            return Ok(false);
        };
        let room = entry?.0.value().1;
        if rooms.get(room)?.is_some_and(|r| r.value().kind() == RoomKind::Public) {
            return Ok(true);
        }
        if memberships.get((room, user.0))?.is_some_and(|m| m.value().is_joined()) {
            return Ok(true);
        }
        match room.checked_add(1) {
            Some(next) => from = next,
            None => return Ok(false),
        }
    }
}
