//! Every redb table, declared in one place with typed keys and versioned
//! names. Values are the prost records of `records`, wrapped in [`Record`].

use std::{fmt, marker::PhantomData};

use redb::{TableDefinition, TypeName, Value};

use super::records::*;

/// The schema version this build writes. Older files are migrated on open;
/// newer ones are refused.
pub const SCHEMA_VERSION: u64 = 2;

/// `meta`: schema version, id counters, secrets.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");
/// `users`: user id → record.
pub const USERS: TableDefinition<u64, Record<UserRecord>> = TableDefinition::new("users_v1");
/// `user_names`: lowercase name of a registered user → user id.
pub const USER_NAMES: TableDefinition<&str, u64> = TableDefinition::new("user_names_v1");
/// `refresh_tokens`: SHA-256 of the token → record.
pub const REFRESH_TOKENS: TableDefinition<&[u8; 32], Record<RefreshTokenRecord>> =
    TableDefinition::new("refresh_tokens_v1");
/// `token_families`: family id → record.
pub const TOKEN_FAMILIES: TableDefinition<u64, Record<TokenFamilyRecord>> = TableDefinition::new("token_families_v1");
/// `rooms`: room id → record.
pub const ROOMS: TableDefinition<u64, Record<RoomRecord>> = TableDefinition::new("rooms_v1");
/// `room_names`: lowercase room name → room id (DMs have no name).
pub const ROOM_NAMES: TableDefinition<&str, u64> = TableDefinition::new("room_names_v1");
/// `memberships`: (room, user) → membership.
pub const MEMBERSHIPS: TableDefinition<(u64, u64), Record<MembershipRecord>> = TableDefinition::new("memberships_v1");
/// `user_rooms`: (user, room) → membership state; the index behind "my rooms".
pub const USER_ROOMS: TableDefinition<(u64, u64), i32> = TableDefinition::new("user_rooms_v1");
/// `direct_rooms`: (lower user id, higher user id) → room id.
pub const DIRECT_ROOMS: TableDefinition<(u64, u64), u64> = TableDefinition::new("direct_rooms_v1");
/// `events`: (room, seq) → event. The append-only room logs.
pub const EVENTS: TableDefinition<(u64, u64), Record<EventRecord>> = TableDefinition::new("events_v1");
/// `txns`: (user, client transaction id) → what the send produced.
pub const TXNS: TableDefinition<(u64, &str), Record<TxnRecord>> = TableDefinition::new("txns_v1");

/// `read_states`: (room, user) → read marker and receipts.
pub const READ_STATES: TableDefinition<(u64, u64), Record<ReadStateRecord>> = TableDefinition::new("read_states_v1");
/// `mentions`: (user, room, seq) of every message that mentions the user
/// (by name or @room); behind mention counts.
pub const MENTIONS: TableDefinition<(u64, u64, u64), ()> = TableDefinition::new("mentions_v1");
/// `thread_messages`: (room, root seq, seq) of every message in a thread.
pub const THREAD_MESSAGES: TableDefinition<(u64, u64, u64), ()> = TableDefinition::new("thread_messages_v1");
/// `files`: file id → metadata.
pub const FILES: TableDefinition<&str, Record<FileRecord>> = TableDefinition::new("files_v1");
/// `file_rooms`: (file id, room, seq) for every message (not deleted) a
/// file is attached to; who may download it. Deleting the message removes
/// its rows.
pub const FILE_ROOMS: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("file_rooms_v1");

/// Keys of the `meta` table.
pub mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const NEXT_USER_ID: &str = "next_user_id";
    pub const NEXT_ROOM_ID: &str = "next_room_id";
    pub const NEXT_TOKEN_FAMILY: &str = "next_token_family";
    pub const JWT_SECRET: &str = "jwt_secret";
}

/// A prost message stored as a redb value.
pub struct Record<T>(PhantomData<T>);

impl<T> fmt::Debug for Record<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Record")
    }
}

impl<T: prost::Message + Default + fmt::Debug + 'static> Value for Record<T> {
    type SelfType<'a> = T;
    type AsBytes<'a> = Vec<u8>;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> T
    where
        Self: 'a,
    {
        // Only bytes this module wrote reach here; a record that fails to
        // decode means the file is corrupt, and an empty record is the least
        // harmful answer (callers treat missing fields as defaults).
        T::decode(data).unwrap_or_else(|error| {
            tracing::error!(%error, "corrupt record in the store");
            T::default()
        })
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a T) -> Vec<u8>
    where
        Self: 'b,
    {
        value.encode_to_vec()
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("confab::Record<{}>", std::any::type_name::<T>().rsplit("::").next().unwrap_or("?")))
    }
}
