//! Reads for messages: single events, threads.

use redb::ReadableDatabase as _;

use super::{Store, StoreError, records::*, tables::*};
use crate::ids::{RoomId, Seq};

impl Store {
    /// The event at `seq` in `room`.
    pub fn event(&self, room: RoomId, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.get((room.0, seq))?.map(|v| v.value()))
    }

    /// The message at `seq` in `room` (deleted or not), with its sender;
    /// None when there is no event there or it is not a message.
    pub fn message(&self, room: RoomId, seq: u64) -> Result<Option<(u64, MessageBody)>, StoreError> {
        Ok(match self.event(room, seq)? {
            Some(EventRecord { sender, kind: Some(EventKind::Message(body)), .. }) => Some((sender, body)),
            _ => None,
        })
    }

    /// The messages of the thread rooted at `root` with `from <= seq <= to`,
    /// ascending, at most `limit`; from the top of the range when
    /// `newest_first`.
    pub fn thread_events(
        &self,
        room: RoomId,
        root: u64,
        from: Seq,
        to: Seq,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(Seq, EventRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(THREAD_MESSAGES)?;
        let events = txn.open_table(EVENTS)?;
        let mut found = Vec::with_capacity(limit.min(1024));
        if from > to || limit == 0 {
            return Ok(found);
        }
        let range = index.range((room.0, root, from.0)..=(room.0, root, to.0))?;
        let mut seqs = Vec::with_capacity(limit.min(1024));
        if newest_first {
            for entry in range.rev().take(limit) {
                seqs.push(entry?.0.value().2);
            }
            seqs.reverse();
        } else {
            for entry in range.take(limit) {
                seqs.push(entry?.0.value().2);
            }
        }
        for seq in seqs {
            if let Some(record) = events.get((room.0, seq))?.map(|v| v.value()) {
                found.push((Seq(seq), record));
            }
        }
        Ok(found)
    }
}
