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
    /// Profile (SetProfile): free text shown instead of the name.
    #[prost(string, tag = "6")]
    pub display_name: String,
    #[prost(string, tag = "7")]
    pub avatar_file_id: String,
    #[prost(string, tag = "8")]
    pub status_text: String,
    /// Receipts are shared unless the user opted out.
    #[prost(bool, tag = "9")]
    pub receipts_private: bool,
    /// When the user's last session ended.
    #[prost(uint64, tag = "10")]
    pub last_seen_ms: u64,
    /// The user chose AWAY on every device (SetPresence, not device-only).
    #[prost(bool, tag = "11")]
    pub away: bool,
    /// Bytes of the files the user uploaded, against their quota.
    #[prost(uint64, tag = "12")]
    pub file_bytes: u64,
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
    #[prost(string, tag = "9")]
    pub topic: String,
    #[prost(string, tag = "10")]
    pub avatar_file_id: String,
    /// Read-only: no sends, edits or reactions.
    #[prost(bool, tag = "11")]
    pub archived: bool,
    /// Message events in the log so far (unread counts are differences of
    /// this running count, see `EventRecord::messages_through`).
    #[prost(uint64, tag = "12")]
    pub message_count: u64,
    /// A private room created with members at once.
    #[prost(bool, tag = "13")]
    pub group: bool,
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
    #[prost(enumeration = "NotificationLevel", tag = "4")]
    pub notification_level: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumeration)]
#[repr(i32)]
pub enum NotificationLevel {
    /// All for direct rooms and groups, mentions for the others.
    Default = 0,
    All = 1,
    Mentions = 2,
    None = 3,
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
    /// The room's message count once this event is appended: the messages
    /// after a read marker at seq `s` are `head.messages_through -
    /// event(s).messages_through`.
    #[prost(uint64, tag = "3")]
    pub messages_through: u64,
    #[prost(oneof = "EventKind", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19")]
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
    #[prost(message, tag = "15")]
    MessageEdited(MessageEdited),
    #[prost(message, tag = "16")]
    MessageDeleted(Target),
    #[prost(message, tag = "17")]
    ReactionAdded(ReactionChange),
    #[prost(message, tag = "18")]
    ReactionRemoved(ReactionChange),
    #[prost(message, tag = "19")]
    RoomUpdated(RoomUpdated),
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

/// A message, kept in its current state: edits replace `text`, a deletion
/// erases the content and sets `deleted_at_ms`, reactions and the thread
/// summary are updated in place. The log's other events say what changed.
#[derive(Clone, PartialEq, Message)]
pub struct MessageBody {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(string, tag = "2")]
    pub client_txn_id: String,
    #[prost(uint64, tag = "3")]
    pub reply_to_seq: u64,
    #[prost(uint64, tag = "4")]
    pub thread_root_seq: u64,
    /// Mentioned members (user ids), resolved when sent or edited.
    #[prost(uint64, repeated, tag = "5")]
    pub mentions: Vec<u64>,
    #[prost(bool, tag = "6")]
    pub mentions_room: bool,
    #[prost(string, repeated, tag = "7")]
    pub attachment_ids: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub location: Option<LocationRecord>,
    #[prost(uint64, tag = "9")]
    pub edited_at_ms: u64,
    /// The seqs of this message's MessageEdited events, whose text a
    /// deletion erases too.
    #[prost(uint64, repeated, tag = "10")]
    pub edit_seqs: Vec<u64>,
    /// Non-zero once deleted.
    #[prost(uint64, tag = "11")]
    pub deleted_at_ms: u64,
    #[prost(uint64, tag = "12")]
    pub deleted_by: u64,
    #[prost(message, repeated, tag = "13")]
    pub reactions: Vec<ReactionRecord>,
    /// On a thread root.
    #[prost(message, optional, tag = "14")]
    pub thread: Option<ThreadRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LocationRecord {
    #[prost(double, tag = "1")]
    pub latitude: f64,
    #[prost(double, tag = "2")]
    pub longitude: f64,
    #[prost(string, tag = "3")]
    pub label: String,
}

/// Everyone who reacted to a message with one emoji, oldest first.
#[derive(Clone, PartialEq, Message)]
pub struct ReactionRecord {
    #[prost(string, tag = "1")]
    pub emoji: String,
    #[prost(uint64, repeated, tag = "2")]
    pub users: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ThreadRecord {
    #[prost(uint32, tag = "1")]
    pub reply_count: u32,
    #[prost(uint64, tag = "2")]
    pub last_reply_seq: u64,
    #[prost(uint64, tag = "3")]
    pub last_reply_at_ms: u64,
    /// Everyone who replied, in order of their first reply.
    #[prost(uint64, repeated, tag = "4")]
    pub participants: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MessageEdited {
    #[prost(uint64, tag = "1")]
    pub target_seq: u64,
    /// Erased when the target is deleted.
    #[prost(string, tag = "2")]
    pub text: String,
    #[prost(uint64, repeated, tag = "3")]
    pub mentions: Vec<u64>,
    #[prost(bool, tag = "4")]
    pub mentions_room: bool,
}

/// An event about one message.
#[derive(Clone, PartialEq, Message)]
pub struct Target {
    #[prost(uint64, tag = "1")]
    pub target_seq: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReactionChange {
    #[prost(uint64, tag = "1")]
    pub target_seq: u64,
    #[prost(string, tag = "2")]
    pub emoji: String,
}

/// The settings a RoomUpdated event changed (the others are `None`).
#[derive(Clone, PartialEq, Message)]
pub struct RoomUpdated {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub topic: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub avatar_file_id: Option<String>,
    #[prost(bool, optional, tag = "4")]
    pub archived: Option<bool>,
}

/// A member's position in a room: private read marker (also their read
/// receipt) and delivered receipt.
#[derive(Clone, PartialEq, Message)]
pub struct ReadStateRecord {
    #[prost(uint64, tag = "1")]
    pub read_seq: u64,
    #[prost(uint64, tag = "2")]
    pub delivered_seq: u64,
    #[prost(uint64, tag = "3")]
    pub updated_at_ms: u64,
}

/// An uploaded file's metadata; the bytes live in the data directory's
/// `files/` under the id.
#[derive(Clone, PartialEq, Message)]
pub struct FileRecord {
    #[prost(uint64, tag = "1")]
    pub owner: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub content_type: String,
    #[prost(uint64, tag = "4")]
    pub size: u64,
    #[prost(uint32, tag = "5")]
    pub width: u32,
    #[prost(uint32, tag = "6")]
    pub height: u32,
    #[prost(string, tag = "7")]
    pub thumbnail_id: String,
    #[prost(bytes = "vec", tag = "8")]
    pub sha256: Vec<u8>,
    #[prost(uint64, tag = "9")]
    pub uploaded_at_ms: u64,
    /// Visible to every authenticated user (an avatar), not only to the
    /// members of the rooms it was posted in.
    #[prost(bool, tag = "10")]
    pub public: bool,
    /// The id of the file this one is the thumbnail of.
    #[prost(string, tag = "11")]
    pub thumbnail_of: String,
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
    /// SHA-256 of the text (of the whole content for a richer message), to
    /// tell a retry from a conflicting reuse. Emptied when the message is
    /// deleted, so that nothing of its text stays.
    #[prost(bytes = "vec", tag = "4")]
    pub text_digest: Vec<u8>,
}
