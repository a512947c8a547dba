//! The write operations. Each runs inside the writer's batch transaction,
//! checks everything it needs first and writes only once it has decided to
//! succeed, so a refused operation leaves the batch untouched (the one
//! exception, refresh-token reuse, writes the family's revocation on
//! purpose).

use redb::{ReadableTable as _, ReadableTableMetadata as _, Table, WriteTransaction};

use super::{StoreError, records::*, tables::*, writer::Batch};
use crate::{
    hub::SessionId,
    ids::{RoomId, UserId},
};

mod files;
mod messages;
mod state;

pub use messages::MessageContent;
pub use state::{ProfileChanges, RoomChanges};

/// A refresh token to store: the SHA-256 of its value and its expiry.
#[derive(Clone, Debug)]
pub struct TokenGrant {
    pub hash: [u8; 32],
    pub expires_at_ms: u64,
}

/// One logical write.
#[derive(Debug)]
pub enum WriteOp {
    /// Create a registered user and a first token family.
    Register {
        name: String,
        password_hash: String,
        device_name: String,
        grant: TokenGrant,
    },
    /// Create a guest user (its name is held in memory, not here).
    CreateGuest {
        name: String,
    },
    /// Start a token family for a login.
    StartFamily {
        user: UserId,
        device_name: String,
        grant: TokenGrant,
    },
    /// Trade a refresh token for a new one in the same family.
    RotateRefresh {
        presented: [u8; 32],
        grant: TokenGrant,
    },
    RevokeFamily {
        family: u64,
    },
    /// Forget refresh tokens past their expiry (spent ones are kept until
    /// then, to recognise reuse).
    SweepExpiredTokens,
    CreateRoom {
        creator: UserId,
        name: String,
        kind: RoomKind,
        topic: String,
        /// Registered users joined at once (a group).
        members: Vec<UserId>,
    },
    Join {
        user: UserId,
        room: RoomId,
    },
    Leave {
        user: UserId,
        room: RoomId,
    },
    Invite {
        by: UserId,
        room: RoomId,
        invitee: UserId,
    },
    OpenDirect {
        user: UserId,
        peer: UserId,
    },
    Send {
        user: UserId,
        room: RoomId,
        txn_id: String,
        content: MessageContent,
    },
    /// By the author. The mentions are parsed from `text` by the session,
    /// as for [`MessageContent`].
    Edit {
        user: UserId,
        room: RoomId,
        seq: u64,
        text: String,
        /// The names `text` mentions with `@name` (lowercase, deduplicated).
        mention_names: Vec<String>,
        /// Connected guests holding some of those names.
        mention_guests: Vec<UserId>,
        mentions_room: bool,
    },
    /// By the author, or by a moderator or above of the room.
    Delete {
        user: UserId,
        room: RoomId,
        seq: u64,
    },
    React {
        user: UserId,
        room: RoomId,
        seq: u64,
        emoji: String,
        remove: bool,
    },
    UpdateRoom {
        user: UserId,
        room: RoomId,
        changes: RoomChanges,
    },
    SetNotificationLevel {
        user: UserId,
        room: RoomId,
        level: NotificationLevel,
    },
    /// `origin`: the session that asks (the others hear of the move).
    MarkRead {
        origin: SessionId,
        user: UserId,
        room: RoomId,
        seq: u64,
    },
    MarkDelivered {
        origin: SessionId,
        user: UserId,
        room: RoomId,
        seq: u64,
    },
    SetProfile {
        user: UserId,
        changes: ProfileChanges,
    },
    /// Record when the user's last session ended.
    SetLastSeen {
        user: UserId,
        at_ms: u64,
    },
    /// Record an uploaded file (its bytes are already in place).
    StoreFile {
        id: String,
        record: FileRecord,
        /// The owner's quota: refused if their files would exceed it.
        quota_bytes: u64,
    },
}

/// What a successful operation produced.
#[derive(Debug, PartialEq, Eq)]
pub enum OpOutput {
    User {
        user: UserId,
        family: u64,
    },
    Family {
        family: u64,
    },
    Rotated {
        user: UserId,
        family: u64,
    },
    Swept {
        tokens: u64,
    },
    Room {
        room: RoomId,
    },
    Sent {
        room: RoomId,
        epoch: u64,
        seq: u64,
        time_ms: u64,
        duplicate: bool,
    },
    /// A read marker after MarkRead.
    ReadState {
        room: RoomId,
        read_seq: u64,
        unread: u32,
        mentions: u32,
    },
    Done,
}

/// Why an operation was refused. The session turns these into error frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    #[error("no such room")]
    RoomNotFound,
    #[error("no such user")]
    UserNotFound,
    #[error("not a member of this room; join it first")]
    NotAMember,
    #[error("already a member of this room")]
    AlreadyMember,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this client transaction id was used for a different message")]
    TxnConflict,
    #[error("{0}")]
    MessageNotFound(String),
    #[error("the room is archived; it is read-only until an admin unarchives it")]
    RoomArchived,
    #[error("{0}")]
    FileNotFound(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown or revoked refresh token")]
    TokenInvalid,
    #[error("the refresh token expired; log in again")]
    TokenExpired,
    #[error("this refresh token was used before; every session of this login is revoked, log in again")]
    TokenReused { family: u64 },
}

/// An operation's outcome: refused, or done.
pub type OpResult = Result<OpOutput, Refusal>;

pub(super) type Tbl<'t, K, V> = Table<'t, K, V>;

impl WriteOp {
    /// Applies the operation inside `batch`.
    pub(super) fn apply(self, txn: &WriteTransaction, batch: &mut Batch) -> Result<OpResult, StoreError> {
        let now = batch.now_ms;
        Ok(match self {
            WriteOp::Register { name, password_hash, device_name, grant } => {
                let key = name.to_lowercase();
                let mut names = txn.open_table(USER_NAMES)?;
                if names.get(key.as_str())?.is_some() {
                    return Ok(Err(Refusal::NameTaken(name)));
                }
                let user = next_id(txn, meta::NEXT_USER_ID)?;
                names.insert(key.as_str(), user)?;
                txn.open_table(USERS)?.insert(
                    user,
                    UserRecord {
                        name: key,
                        password_hash,
                        kind: UserKind::Registered as i32,
                        created_at_ms: now,
                        disabled: false,
                        ..Default::default()
                    },
                )?;
                let family = start_family(txn, UserId(user), device_name, &grant, now)?;
                Ok(OpOutput::User { user: UserId(user), family })
            }
            WriteOp::CreateGuest { name } => {
                let user = next_id(txn, meta::NEXT_USER_ID)?;
                txn.open_table(USERS)?.insert(
                    user,
                    UserRecord {
                        name,
                        password_hash: String::new(),
                        kind: UserKind::Guest as i32,
                        created_at_ms: now,
                        disabled: false,
                        ..Default::default()
                    },
                )?;
                Ok(OpOutput::User { user: UserId(user), family: 0 })
            }
            WriteOp::StartFamily { user, device_name, grant } => {
                let family = start_family(txn, user, device_name, &grant, now)?;
                Ok(OpOutput::Family { family })
            }
            WriteOp::RotateRefresh { presented, grant } => rotate_refresh(txn, presented, grant, now)?,
            WriteOp::RevokeFamily { family } => {
                let mut families = txn.open_table(TOKEN_FAMILIES)?;
                let record = families.get(family)?.map(|v| v.value());
                if let Some(mut record) = record {
                    record.revoked = true;
                    families.insert(family, record)?;
                }
                Ok(OpOutput::Done)
            }
            WriteOp::SweepExpiredTokens => {
                let mut tokens = txn.open_table(REFRESH_TOKENS)?;
                let before = tokens.len()?;
                tokens.retain(|_, token| token.expires_at_ms > now)?;
                Ok(OpOutput::Swept { tokens: before - tokens.len()? })
            }
            WriteOp::CreateRoom { creator, name, kind, topic, members } => {
                create_room(txn, batch, creator, name, kind, topic, members)?
            }
            WriteOp::Join { user, room } => join(txn, batch, user, room)?,
            WriteOp::Leave { user, room } => leave(txn, batch, user, room)?,
            WriteOp::Invite { by, room, invitee } => invite(txn, batch, by, room, invitee)?,
            WriteOp::OpenDirect { user, peer } => open_direct(txn, batch, user, peer)?,
            WriteOp::Send { user, room, txn_id, content } => messages::send(txn, batch, user, room, txn_id, content)?,
            WriteOp::Edit { user, room, seq, text, mention_names, mention_guests, mentions_room } => {
                messages::edit(txn, batch, user, room, seq, text, mention_names, mention_guests, mentions_room)?
            }
            WriteOp::Delete { user, room, seq } => messages::delete(txn, batch, user, room, seq)?,
            WriteOp::React { user, room, seq, emoji, remove } => {
                messages::react(txn, batch, user, room, seq, emoji, remove)?
            }
            WriteOp::UpdateRoom { user, room, changes } => state::update_room(txn, batch, user, room, changes)?,
            WriteOp::SetNotificationLevel { user, room, level } => {
                state::set_notification_level(txn, batch, user, room, level)?
            }
            WriteOp::MarkRead { origin, user, room, seq } => state::mark_read(txn, batch, origin, user, room, seq)?,
            WriteOp::MarkDelivered { origin, user, room, seq } => {
                state::mark_delivered(txn, batch, origin, user, room, seq)?
            }
            WriteOp::SetProfile { user, changes } => state::set_profile(txn, user, changes)?,
            WriteOp::SetLastSeen { user, at_ms } => state::set_last_seen(txn, user, at_ms)?,
            WriteOp::StoreFile { id, record, quota_bytes } => files::store_file(txn, id, record, quota_bytes)?,
        })
    }
}

pub(super) fn next_id(txn: &WriteTransaction, key: &str) -> Result<u64, StoreError> {
    let mut meta_table = txn.open_table(META)?;
    let next = meta_table.get(key)?.map(|v| super::read_u64(v.value())).unwrap_or(1);
    meta_table.insert(key, (next + 1).to_be_bytes().as_slice())?;
    Ok(next)
}

fn start_family(
    txn: &WriteTransaction,
    user: UserId,
    device_name: String,
    grant: &TokenGrant,
    now: u64,
) -> Result<u64, StoreError> {
    let family = next_id(txn, meta::NEXT_TOKEN_FAMILY)?;
    txn.open_table(TOKEN_FAMILIES)?
        .insert(family, TokenFamilyRecord { user_id: user.0, revoked: false, device_name, created_at_ms: now })?;
    txn.open_table(REFRESH_TOKENS)?.insert(
        &grant.hash,
        RefreshTokenRecord { user_id: user.0, family, expires_at_ms: grant.expires_at_ms, used: false },
    )?;
    Ok(family)
}

fn rotate_refresh(
    txn: &WriteTransaction,
    presented: [u8; 32],
    grant: TokenGrant,
    now: u64,
) -> Result<OpResult, StoreError> {
    let mut tokens = txn.open_table(REFRESH_TOKENS)?;
    let mut families = txn.open_table(TOKEN_FAMILIES)?;
    let Some(mut token) = tokens.get(&presented)?.map(|v| v.value()) else {
        return Ok(Err(Refusal::TokenInvalid));
    };
    let Some(mut family) = families.get(token.family)?.map(|v| v.value()) else {
        return Ok(Err(Refusal::TokenInvalid));
    };
    if family.revoked {
        return Ok(Err(Refusal::TokenInvalid));
    }
    if token.used {
        // Someone replayed a spent token: whoever holds the family is not
        // to be trusted any more. This write is the point of the refusal.
        family.revoked = true;
        families.insert(token.family, family)?;
        return Ok(Err(Refusal::TokenReused { family: token.family }));
    }
    if token.expires_at_ms <= now {
        return Ok(Err(Refusal::TokenExpired));
    }
    let users = txn.open_table(USERS)?;
    if users.get(token.user_id)?.map(|u| u.value().disabled).unwrap_or(true) {
        return Ok(Err(Refusal::TokenInvalid));
    }
    token.used = true;
    let (user, family_id) = (token.user_id, token.family);
    tokens.insert(&presented, token)?;
    tokens.insert(
        &grant.hash,
        RefreshTokenRecord { user_id: user, family: family_id, expires_at_ms: grant.expires_at_ms, used: false },
    )?;
    Ok(Ok(OpOutput::Rotated { user: UserId(user), family: family_id }))
}

pub(super) fn user_record(txn: &WriteTransaction, user: UserId) -> Result<Option<UserRecord>, StoreError> {
    Ok(txn.open_table(USERS)?.get(user.0)?.map(|v| v.value()))
}

impl RoomRecord {
    /// Most members a group may be created with.
    pub const MAX_GROUP_MEMBERS: usize = 50;
    /// Longest room topic, in bytes.
    pub const MAX_TOPIC_BYTES: usize = 512;
}

#[allow(clippy::too_many_arguments)]
fn create_room(
    txn: &WriteTransaction,
    batch: &mut Batch,
    creator: UserId,
    name: String,
    kind: RoomKind,
    topic: String,
    mut members: Vec<UserId>,
) -> Result<OpResult, StoreError> {
    members.retain(|m| *m != creator);
    members.sort_unstable_by_key(|m| m.0);
    members.dedup();
    let group = !members.is_empty();
    if group && kind != RoomKind::Private {
        return Ok(Err(Refusal::Invalid("members are only for private rooms".into())));
    }
    if members.len() > RoomRecord::MAX_GROUP_MEMBERS {
        return Ok(Err(Refusal::Invalid(format!(
            "a group is created with at most {} members",
            RoomRecord::MAX_GROUP_MEMBERS
        ))));
    }
    if topic.len() > RoomRecord::MAX_TOPIC_BYTES {
        return Ok(Err(Refusal::Invalid(format!("the topic must be at most {} bytes", RoomRecord::MAX_TOPIC_BYTES))));
    }
    if name.is_empty() && !group {
        return Ok(Err(Refusal::Invalid("a room needs a name unless it is a group".into())));
    }
    let key = name.to_lowercase();
    let mut names = txn.open_table(ROOM_NAMES)?;
    if !key.is_empty() && names.get(key.as_str())?.is_some() {
        return Ok(Err(Refusal::NameTaken(name)));
    }
    let is_guest = user_record(txn, creator)?.map(|u| u.is_guest()).unwrap_or(true);
    if is_guest && kind != RoomKind::Public {
        return Ok(Err(Refusal::Forbidden("guests can only create public rooms")));
    }
    for member in &members {
        match user_record(txn, *member)? {
            None => return Ok(Err(Refusal::UserNotFound)),
            Some(record) if record.is_guest() => {
                return Ok(Err(Refusal::Forbidden("guests cannot be members of a group")));
            }
            Some(_) => {}
        }
    }
    let room = RoomId(next_id(txn, meta::NEXT_ROOM_ID)?);
    if !key.is_empty() {
        names.insert(key.as_str(), room.0)?;
    }
    drop(names);
    let mut rooms = txn.open_table(ROOMS)?;
    rooms.insert(
        room.0,
        RoomRecord {
            name: key.clone(),
            kind: kind as i32,
            epoch: 1,
            head_seq: 0,
            created_at_ms: batch.now_ms,
            creator: creator.0,
            joined_count: 0,
            peer: 0,
            topic,
            group,
            ..Default::default()
        },
    )?;
    drop(rooms);
    batch.append(txn, room, creator, EventKind::RoomCreated(RoomCreated { name: key, kind: kind as i32 }))?;
    set_membership(txn, batch, room, creator, MembershipState::Joined, Role::Owner)?;
    for member in members {
        set_membership(txn, batch, room, member, MembershipState::Joined, Role::Member)?;
    }
    Ok(Ok(OpOutput::Room { room }))
}

/// Appends the event that changes `user`'s membership and records it.
pub(super) fn set_membership(
    txn: &WriteTransaction,
    batch: &mut Batch,
    room: RoomId,
    user: UserId,
    state: MembershipState,
    role: Role,
) -> Result<(), StoreError> {
    let kind = match state {
        MembershipState::Joined => EventKind::MemberJoined(Empty {}),
        MembershipState::Invited => unreachable!("invitations go through `invite`"),
    };
    let seq = batch.append(txn, room, user, kind)?;
    write_membership(
        txn,
        room,
        user,
        MembershipRecord { state: state as i32, role: role as i32, since_seq: seq, ..Default::default() },
    )?;
    // A newcomer's backlog is not unread: their marker starts at their join.
    txn.open_table(READ_STATES)?
        .insert((room.0, user.0), ReadStateRecord { read_seq: seq, delivered_seq: seq, updated_at_ms: batch.now_ms })?;
    adjust_joined(txn, room, 1)
}

pub(super) fn write_membership(
    txn: &WriteTransaction,
    room: RoomId,
    user: UserId,
    record: MembershipRecord,
) -> Result<(), StoreError> {
    let state = record.state;
    txn.open_table(MEMBERSHIPS)?.insert((room.0, user.0), record)?;
    txn.open_table(USER_ROOMS)?.insert((user.0, room.0), state)?;
    Ok(())
}

pub(super) fn adjust_joined(txn: &WriteTransaction, room: RoomId, delta: i32) -> Result<(), StoreError> {
    let mut rooms = txn.open_table(ROOMS)?;
    let record = rooms.get(room.0)?.map(|v| v.value());
    if let Some(mut record) = record {
        record.joined_count = record.joined_count.saturating_add_signed(delta);
        rooms.insert(room.0, record)?;
    }
    Ok(())
}

pub(super) fn membership(
    table: &Tbl<'_, (u64, u64), Record<MembershipRecord>>,
    room: RoomId,
    user: UserId,
) -> Result<Option<MembershipRecord>, StoreError> {
    Ok(table.get((room.0, user.0))?.map(|v| v.value()))
}

/// Why someone who has not joined `room` may not act in it: a room they
/// can see (public, or invited) says so, any other does not exist for them.
pub(super) fn outsider(room: &RoomRecord, membership: Option<&MembershipRecord>) -> Refusal {
    if room.kind() == RoomKind::Public || membership.is_some() { Refusal::NotAMember } else { Refusal::RoomNotFound }
}

pub(super) fn room_record(txn: &WriteTransaction, room: RoomId) -> Result<Option<RoomRecord>, StoreError> {
    Ok(txn.open_table(ROOMS)?.get(room.0)?.map(|v| v.value()))
}

fn join(txn: &WriteTransaction, batch: &mut Batch, user: UserId, room: RoomId) -> Result<OpResult, StoreError> {
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let current = membership(&txn.open_table(MEMBERSHIPS)?, room, user)?;
    if current.as_ref().is_some_and(|m| m.is_joined()) {
        return Ok(Ok(OpOutput::Room { room }));
    }
    let invited = current.is_some();
    if record.archived && (record.kind() == RoomKind::Public || invited) {
        return Ok(Err(Refusal::RoomArchived));
    }
    match record.kind() {
        RoomKind::Public => {}
        RoomKind::Private if invited => {}
        RoomKind::Private | RoomKind::Direct => return Ok(Err(Refusal::RoomNotFound)),
    }
    set_membership(txn, batch, room, user, MembershipState::Joined, Role::Member)?;
    Ok(Ok(OpOutput::Room { room }))
}

fn leave(txn: &WriteTransaction, batch: &mut Batch, user: UserId, room: RoomId) -> Result<OpResult, StoreError> {
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let Some(current) = membership(&txn.open_table(MEMBERSHIPS)?, room, user)? else {
        return Ok(Err(if record.kind() == RoomKind::Public { Refusal::NotAMember } else { Refusal::RoomNotFound }));
    };
    batch.append(txn, room, user, EventKind::MemberLeft(Empty {}))?;
    txn.open_table(MEMBERSHIPS)?.remove((room.0, user.0))?;
    txn.open_table(USER_ROOMS)?.remove((user.0, room.0))?;
    txn.open_table(READ_STATES)?.remove((room.0, user.0))?;
    if current.is_joined() {
        adjust_joined(txn, room, -1)?;
    }
    Ok(Ok(OpOutput::Done))
}

fn invite(
    txn: &WriteTransaction,
    batch: &mut Batch,
    by: UserId,
    room: RoomId,
    invitee: UserId,
) -> Result<OpResult, StoreError> {
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let memberships = txn.open_table(MEMBERSHIPS)?;
    let inviter = membership(&memberships, room, by)?;
    if !inviter.as_ref().is_some_and(|m| m.is_joined()) {
        return Ok(Err(outsider(&record, inviter.as_ref())));
    }
    if record.kind() == RoomKind::Direct {
        return Ok(Err(Refusal::Forbidden("direct conversations have exactly two members")));
    }
    if record.archived {
        return Ok(Err(Refusal::RoomArchived));
    }
    let Some(invitee_record) = user_record(txn, invitee)? else {
        return Ok(Err(Refusal::UserNotFound));
    };
    if invitee_record.is_guest() && record.kind() != RoomKind::Public {
        return Ok(Err(Refusal::Forbidden("guests cannot be invited to private rooms")));
    }
    if membership(&memberships, room, invitee)?.is_some() {
        return Ok(Err(Refusal::AlreadyMember));
    }
    drop(memberships);
    let seq = batch.append(txn, room, by, EventKind::MemberInvited(MemberInvited { invitee: invitee.0 }))?;
    write_membership(
        txn,
        room,
        invitee,
        MembershipRecord {
            state: MembershipState::Invited as i32,
            role: Role::Member as i32,
            since_seq: seq,
            ..Default::default()
        },
    )?;
    Ok(Ok(OpOutput::Done))
}

fn open_direct(txn: &WriteTransaction, batch: &mut Batch, user: UserId, peer: UserId) -> Result<OpResult, StoreError> {
    if user == peer {
        return Ok(Err(Refusal::Forbidden("a direct conversation needs another user")));
    }
    let Some(peer_record) = user_record(txn, peer)? else {
        return Ok(Err(Refusal::UserNotFound));
    };
    let me_guest = user_record(txn, user)?.map(|u| u.is_guest()).unwrap_or(true);
    if peer_record.is_guest() || me_guest {
        return Ok(Err(Refusal::Forbidden("guests cannot have direct conversations")));
    }
    let pair = (user.0.min(peer.0), user.0.max(peer.0));
    let existing = txn.open_table(DIRECT_ROOMS)?.get(pair)?.map(|v| v.value());
    if let Some(room) = existing.map(RoomId) {
        let joined = membership(&txn.open_table(MEMBERSHIPS)?, room, user)?.is_some_and(|m| m.is_joined());
        if !joined {
            set_membership(txn, batch, room, user, MembershipState::Joined, Role::Owner)?;
        }
        return Ok(Ok(OpOutput::Room { room }));
    }
    let room = RoomId(next_id(txn, meta::NEXT_ROOM_ID)?);
    txn.open_table(DIRECT_ROOMS)?.insert(pair, room.0)?;
    txn.open_table(ROOMS)?.insert(
        room.0,
        RoomRecord {
            name: String::new(),
            kind: RoomKind::Direct as i32,
            epoch: 1,
            head_seq: 0,
            created_at_ms: batch.now_ms,
            creator: user.0,
            joined_count: 0,
            peer: peer.0,
            ..Default::default()
        },
    )?;
    batch.append(
        txn,
        room,
        user,
        EventKind::RoomCreated(RoomCreated { name: String::new(), kind: RoomKind::Direct as i32 }),
    )?;
    set_membership(txn, batch, room, user, MembershipState::Joined, Role::Owner)?;
    set_membership(txn, batch, room, peer, MembershipState::Joined, Role::Owner)?;
    Ok(Ok(OpOutput::Room { room }))
}
