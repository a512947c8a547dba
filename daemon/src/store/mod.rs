//! The store: one redb file holding accounts, rooms, memberships and the
//! append-only room logs. Reads open their own read transaction from any
//! task; every write goes through the single [`writer`] thread, which
//! batches them into group commits.

mod file_reads;
mod message_reads;
mod migrate;
mod ops;
pub mod records;
mod state_reads;
pub mod tables;
mod writer;

use std::{path::Path, sync::Arc};

use redb::{Database, ReadableDatabase as _, ReadableTable as _};

pub use ops::{MessageContent, OpOutput, OpResult, ProfileChanges, Refusal, RoomChanges, TokenGrant, WriteOp};
pub use records::*;
pub use writer::{AppendedEvent, Notice, UserSummary, Writer, WriterHandle, now_ms};

use crate::ids::{RoomId, Seq, UserId};
use tables::*;

/// A store failure (IO, corruption, a newer schema). Never a client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Redb(#[from] redb::Error),
    #[error(
        "the data file {path} has schema version {found}, newer than this confabd understands ({supported}); run a newer confabd"
    )]
    TooNew { path: String, found: u64, supported: u64 },
    #[error("the store is shutting down")]
    Closed,
    #[error("a write batch failed: {0}")]
    BatchFailed(String),
    #[error("the store is damaged: {0}")]
    Damaged(&'static str),
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
redb_from!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// Read access to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the store file, initialising or migrating it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            let mut meta_table = txn.open_table(META)?;
            let found = meta_table.get(meta::SCHEMA_VERSION)?.map(|v| read_u64(v.value()));
            match found {
                None => {
                    meta_table.insert(meta::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes().as_slice())?;
                    let secret: [u8; 32] = rand::random();
                    meta_table.insert(meta::JWT_SECRET, secret.as_slice())?;
                }
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        path: path.display().to_string(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(found) if found < SCHEMA_VERSION => {
                    drop(meta_table);
                    migrate::migrate(&txn, found)?;
                }
                Some(_) => {}
            }
        }
        // Create every table so reads never meet a missing one.
        txn.open_table(USERS)?;
        txn.open_table(USER_NAMES)?;
        txn.open_table(REFRESH_TOKENS)?;
        txn.open_table(TOKEN_FAMILIES)?;
        txn.open_table(ROOMS)?;
        txn.open_table(ROOM_NAMES)?;
        txn.open_table(MEMBERSHIPS)?;
        txn.open_table(USER_ROOMS)?;
        txn.open_table(DIRECT_ROOMS)?;
        txn.open_table(EVENTS)?;
        txn.open_table(TXNS)?;
        txn.open_table(READ_STATES)?;
        txn.open_table(MENTIONS)?;
        txn.open_table(THREAD_MESSAGES)?;
        txn.open_table(FILES)?;
        txn.open_table(FILE_ROOMS)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    pub(crate) fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// The secret that signs access tokens.
    pub fn jwt_secret(&self) -> Result<Vec<u8>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        match table.get(meta::JWT_SECRET)?.map(|v| v.value().to_vec()) {
            Some(secret) if secret.len() >= 32 => Ok(secret),
            _ => Err(StoreError::Damaged("it has no token signing key")),
        }
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(USERS)?.get(id.0)?.map(|v| v.value()))
    }

    /// A registered user by name (any case).
    pub fn user_by_name(&self, name: &str) -> Result<Option<(UserId, UserRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(id) = txn.open_table(USER_NAMES)?.get(name.to_lowercase().as_str())?.map(|v| v.value()) else {
            return Ok(None);
        };
        Ok(txn.open_table(USERS)?.get(id)?.map(|v| (UserId(id), v.value())))
    }

    pub fn token_family(&self, family: u64) -> Result<Option<TokenFamilyRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TOKEN_FAMILIES)?.get(family)?.map(|v| v.value()))
    }

    pub fn room(&self, id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(ROOMS)?.get(id.0)?.map(|v| v.value()))
    }

    pub fn room_by_name(&self, name: &str) -> Result<Option<(RoomId, RoomRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(id) = txn.open_table(ROOM_NAMES)?.get(name.to_lowercase().as_str())?.map(|v| v.value()) else {
            return Ok(None);
        };
        Ok(txn.open_table(ROOMS)?.get(id)?.map(|v| (RoomId(id), v.value())))
    }

    pub fn membership(&self, room: RoomId, user: UserId) -> Result<Option<MembershipRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(MEMBERSHIPS)?.get((room.0, user.0))?.map(|v| v.value()))
    }

    /// The rooms a user joined or is invited to, with the state.
    pub fn user_rooms(&self, user: UserId) -> Result<Vec<(RoomId, MembershipState)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USER_ROOMS)?;
        let mut rooms = Vec::new();
        for entry in table.range((user.0, 0)..=(user.0, u64::MAX))? {
            let (key, state) = entry?;
            let state = MembershipState::try_from(state.value()).unwrap_or(MembershipState::Invited);
            rooms.push((RoomId(key.value().1), state));
        }
        Ok(rooms)
    }

    /// Everyone with a membership in a room.
    pub fn members(&self, room: RoomId) -> Result<Vec<(UserId, MembershipRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MEMBERSHIPS)?;
        let mut members = Vec::new();
        for entry in table.range((room.0, 0)..=(room.0, u64::MAX))? {
            let (key, record) = entry?;
            members.push((UserId(key.value().1), record.value()));
        }
        Ok(members)
    }

    /// Every public room.
    pub fn public_rooms(&self) -> Result<Vec<(RoomId, RoomRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ROOMS)?;
        let mut rooms = Vec::new();
        for entry in table.iter()? {
            let (id, record) = entry?;
            let record = record.value();
            if record.kind() == RoomKind::Public {
                rooms.push((RoomId(id.value()), record));
            }
        }
        Ok(rooms)
    }

    /// The other participant of a direct room, whether or not they are in
    /// it now.
    pub fn direct_peer(&self, room: RoomId, me: UserId) -> Result<Option<UserId>, StoreError> {
        let Some(record) = self.room(room)? else { return Ok(None) };
        Ok(match (record.creator, record.peer) {
            (_, 0) => None,
            (creator, peer) if creator == me.0 => Some(UserId(peer)),
            (creator, _) => Some(UserId(creator)),
        })
    }

    /// What a claimed client transaction id produced, if it was claimed.
    pub fn txn(&self, user: UserId, txn_id: &str) -> Result<Option<TxnRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TXNS)?.get((user.0, txn_id))?.map(|v| v.value()))
    }

    /// Events of a room with `from <= seq <= to`, ascending, at most `limit`;
    /// from the top of the range when `newest_first`.
    pub fn events(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(Seq, EventRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut events = Vec::with_capacity(limit.min(1024));
        if from > to || limit == 0 {
            return Ok(events);
        }
        let range = table.range((room.0, from.0)..=(room.0, to.0))?;
        if newest_first {
            for entry in range.rev().take(limit) {
                let (key, record) = entry?;
                events.push((Seq(key.value().1), record.value()));
            }
            events.reverse();
        } else {
            for entry in range.take(limit) {
                let (key, record) = entry?;
                events.push((Seq(key.value().1), record.value()));
            }
        }
        Ok(events)
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests;
