//! What the store keeps, as plain Rust records with a stable, evolvable
//! encoding (prost derives; no `.proto` and no serde). These are storage
//! types, never sent on the wire: `session` converts them at the edge.
//!
//! Rule, as for the wire: never reuse a tag; add fields, don't change them.

use prost::{Enumeration, Message};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumeration)]
#[repr(i32)]
pub enum UserKind {
    Registered = 0,
    Guest = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct UserRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    /// PHC string of the argon2id hash; empty for guests.
    #[prost(string, tag = "2")]
    pub password_hash: String,
    #[prost(enumeration = "UserKind", tag = "3")]
    pub kind: i32,
    #[prost(uint64, tag = "4")]
    pub created_at_ms: u64,
    #[prost(bool, tag = "5")]
    pub disabled: bool,
}

impl UserRecord {
    pub fn is_guest(&self) -> bool {
        self.kind == UserKind::Guest as i32
    }
}

/// One refresh token, stored under the SHA-256 of its value.
#[derive(Clone, PartialEq, Message)]
pub struct RefreshTokenRecord {
    #[prost(uint64, tag = "1")]
    pub user_id: u64,
    #[prost(uint64, tag = "2")]
    pub family: u64,
    #[prost(uint64, tag = "3")]
    pub expires_at_ms: u64,
    /// Set when the token was traded for a new one; presenting it again is
    /// reuse.
    #[prost(bool, tag = "4")]
    pub used: bool,
}

/// All refresh tokens descended from one login.
#[derive(Clone, PartialEq, Message)]
pub struct TokenFamilyRecord {
    #[prost(uint64, tag = "1")]
    pub user_id: u64,
    #[prost(bool, tag = "2")]
    pub revoked: bool,
    #[prost(string, tag = "3")]
    pub device_name: String,
    #[prost(uint64, tag = "4")]
    pub created_at_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumeration)]
#[repr(i32)]
pub enum RoomKind {
    Public = 0,
    Private = 1,
    Direct = 2,
}

#[derive(Clone, PartialEq, Message)]
pub struct RoomRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(enumeration = "RoomKind", tag = "2")]
    pub kind: i32,
    #[prost(uint64, tag = "3")]
    pub epoch: u64,
    /// Sequence number of the newest event.
    #[prost(uint64, tag = "4")]
    pub head_seq: u64,
    #[prost(uint64, tag = "5")]
    pub created_at_ms: u64,
    #[prost(uint64, tag = "6")]
    pub creator: u64,
    #[prost(uint32, tag = "7")]
    pub joined_count: u32,
    /// For direct rooms: the participant other than `creator`.
    #[prost(uint64, tag = "8")]
    pub peer: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumeration)]
#[repr(i32)]
pub enum MembershipState {
    Invited = 0,
    Joined = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Role {
    Member = 0,
    Moderator = 1,
    Admin = 2,
    Owner = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct MembershipRecord {
    #[prost(enumeration = "MembershipState", tag = "1")]
    pub state: i32,
    #[prost(enumeration = "Role", tag = "2")]
    pub role: i32,
    /// Sequence number of the event that gave this state.
    #[prost(uint64, tag = "3")]
    pub since_seq: u64,
}

impl MembershipRecord {
    pub fn is_joined(&self) -> bool {
        self.state == MembershipState::Joined as i32
    }
}

/// One entry of a room's log, stored under (room, seq).
#[derive(Clone, PartialEq, Message)]
pub struct EventRecord {
    #[prost(uint64, tag = "1")]
    pub time_ms: u64,
    #[prost(uint64, tag = "2")]
    pub sender: u64,
    #[prost(oneof = "EventKind", tags = "10, 11, 12, 13, 14")]
    pub kind: Option<EventKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    #[prost(message, tag = "10")]
    RoomCreated(RoomCreated),
    #[prost(message, tag = "11")]
    MemberJoined(Empty),
    #[prost(message, tag = "12")]
    MemberLeft(Empty),
    #[prost(message, tag = "13")]
    MemberInvited(MemberInvited),
    #[prost(message, tag = "14")]
    Message(MessageBody),
}

#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message)]
pub struct RoomCreated {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(enumeration = "RoomKind", tag = "2")]
    pub kind: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct MemberInvited {
    #[prost(uint64, tag = "1")]
    pub invitee: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct MessageBody {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(string, tag = "2")]
    pub client_txn_id: String,
}

/// A claimed client transaction id: what its send produced.
#[derive(Clone, PartialEq, Message)]
pub struct TxnRecord {
    #[prost(uint64, tag = "1")]
    pub room_id: u64,
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    #[prost(uint64, tag = "3")]
    pub time_ms: u64,
    /// SHA-256 of the text, to tell a retry from a conflicting reuse.
    #[prost(bytes = "vec", tag = "4")]
    pub text_digest: Vec<u8>,
}
