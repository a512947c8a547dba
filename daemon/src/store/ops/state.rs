//! Room settings, notification levels, read markers and receipts, and
//! profiles.

use redb::{ReadableTable as _, WriteTransaction};

use super::{OpOutput, OpResult, Refusal, membership, outsider, room_record, user_record};
use crate::{
    hub::SessionId,
    ids::{RoomId, UserId},
    store::{
        StoreError,
        records::*,
        state_reads::counts,
        tables::*,
        writer::{Batch, Notice},
    },
};

/// The settings an UpdateRoom changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomChanges {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub avatar_file_id: Option<String>,
    pub archived: Option<bool>,
}

/// The profile fields a SetProfile changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub avatar_file_id: Option<String>,
    pub status_text: Option<String>,
    pub share_receipts: Option<bool>,
    /// SetPresence without `this_device_only`.
    pub away: Option<bool>,
}

/// The joined membership of `user` in `room`, with the room, or why the
/// user may not act there.
fn joined(
    txn: &WriteTransaction,
    user: UserId,
    room: RoomId,
) -> Result<Result<(RoomRecord, MembershipRecord), Refusal>, StoreError> {
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let current = membership(&txn.open_table(MEMBERSHIPS)?, room, user)?;
    Ok(match current {
        Some(current) if current.is_joined() => Ok((record, current)),
        other => Err(outsider(&record, other.as_ref())),
    })
}

/// Checks that `id` names an image `user` uploaded (not a thumbnail), for an
/// avatar.
fn avatar_file(txn: &WriteTransaction, user: UserId, id: &str) -> Result<Result<(), Refusal>, StoreError> {
    let file = txn.open_table(FILES)?.get(id)?.map(|v| v.value());
    let Some(file) = file.filter(|f| f.owner == user.0 && f.thumbnail_of.is_empty()) else {
        return Ok(Err(Refusal::FileNotFound(format!("no file {id:?} of yours"))));
    };
    if !file.content_type.starts_with("image/") {
        return Ok(Err(Refusal::Invalid("the avatar must be an image".into())));
    }
    Ok(Ok(()))
}

/// Makes an avatar visible to every authenticated user.
fn publish_file(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    let mut files = txn.open_table(FILES)?;
    let file = files.get(id)?.map(|v| v.value());
    if let Some(mut file) = file.filter(|f| !f.public) {
        file.public = true;
        files.insert(id, file)?;
    }
    Ok(())
}

pub(super) fn update_room(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    changes: RoomChanges,
) -> Result<OpResult, StoreError> {
    let (mut record, current) = match joined(txn, user, room)? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if record.archived && changes.archived != Some(false) {
        return Ok(Err(Refusal::RoomArchived));
    }
    let role = current.role();
    if changes.topic.is_some() && role < Role::Moderator {
        return Ok(Err(Refusal::Forbidden("only moderators and above may change the topic")));
    }
    let settings = changes.name.is_some() || changes.avatar_file_id.is_some() || changes.archived.is_some();
    if settings && role < Role::Admin {
        return Ok(Err(Refusal::Forbidden("only admins and owners may change the name, avatar or archived state")));
    }
    if record.kind() == RoomKind::Direct && (changes.name.is_some() || changes.archived.is_some()) {
        return Ok(Err(Refusal::Forbidden("direct conversations cannot be renamed or archived")));
    }

    let mut updated = RoomUpdated::default();
    let names = txn.open_table(ROOM_NAMES)?;
    if let Some(name) = changes.name.map(|n| n.to_lowercase()).filter(|n| *n != record.name) {
        if names.get(name.as_str())?.is_some_and(|owner| owner.value() != room.0) {
            return Ok(Err(Refusal::NameTaken(name)));
        }
        updated.name = Some(name);
    }
    drop(names);
    updated.topic = changes.topic.filter(|t| *t != record.topic);
    if let Some(avatar) = changes.avatar_file_id.filter(|a| *a != record.avatar_file_id) {
        if !avatar.is_empty()
            && let Err(refusal) = avatar_file(txn, user, &avatar)?
        {
            return Ok(Err(refusal));
        }
        updated.avatar_file_id = Some(avatar);
    }
    updated.archived = changes.archived.filter(|a| *a != record.archived);
    if updated == RoomUpdated::default() {
        return Ok(Ok(OpOutput::Room { room }));
    }

    if let Some(name) = &updated.name {
        let mut names = txn.open_table(ROOM_NAMES)?;
        if !record.name.is_empty() {
            names.remove(record.name.as_str())?;
        }
        names.insert(name.as_str(), room.0)?;
        record.name = name.clone();
    }
    if let Some(topic) = &updated.topic {
        record.topic = topic.clone();
    }
    if let Some(avatar) = &updated.avatar_file_id {
        if !avatar.is_empty() {
            publish_file(txn, avatar)?;
        }
        record.avatar_file_id = avatar.clone();
    }
    if let Some(archived) = updated.archived {
        record.archived = archived;
    }
    txn.open_table(ROOMS)?.insert(room.0, record)?;
    batch.append(txn, room, user, EventKind::RoomUpdated(updated))?;
    Ok(Ok(OpOutput::Room { room }))
}

pub(super) fn set_notification_level(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    level: NotificationLevel,
) -> Result<OpResult, StoreError> {
    let mut current = match joined(txn, user, room)? {
        Ok((_, current)) => current,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if current.notification_level() != level {
        current.notification_level = level as i32;
        txn.open_table(MEMBERSHIPS)?.insert((room.0, user.0), current)?;
        batch.notices.push(Notice::NotificationLevelSet { user, room, level });
    }
    Ok(Ok(OpOutput::Room { room }))
}

/// Checks that `user` may move a marker in `room` to `seq`; answers the
/// room's record.
fn marker_target(
    txn: &WriteTransaction,
    user: UserId,
    room: RoomId,
    seq: u64,
) -> Result<Result<RoomRecord, Refusal>, StoreError> {
    let record = match joined(txn, user, room)? {
        Ok((record, _)) => record,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if seq > record.head_seq {
        return Ok(Err(Refusal::Invalid(format!("seq {seq} is beyond the room's newest event ({})", record.head_seq))));
    }
    Ok(Ok(record))
}

fn shares_receipts(txn: &WriteTransaction, user: UserId) -> Result<bool, StoreError> {
    Ok(user_record(txn, user)?.is_some_and(|u| !u.receipts_private))
}

pub(super) fn mark_read(
    txn: &WriteTransaction,
    batch: &mut Batch,
    origin: SessionId,
    user: UserId,
    room: RoomId,
    seq: u64,
) -> Result<OpResult, StoreError> {
    let record = match marker_target(txn, user, room, seq)? {
        Ok(record) => record,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let mut states = txn.open_table(READ_STATES)?;
    let mut state = states.get((room.0, user.0))?.map(|v| v.value()).unwrap_or_default();
    let moved = seq > state.read_seq;
    if moved {
        state.read_seq = seq;
        state.delivered_seq = state.delivered_seq.max(seq);
        state.updated_at_ms = batch.now_ms;
        states.insert((room.0, user.0), &state)?;
    }
    drop(states);
    let (unread, mentions) =
        counts(&txn.open_table(EVENTS)?, &txn.open_table(MENTIONS)?, room, record.message_count, user, state.read_seq)?;
    if moved {
        let shared = shares_receipts(txn, user)?;
        batch.notices.push(Notice::PositionMoved {
            origin,
            user,
            room,
            read_moved: true,
            record: state.clone(),
            shared,
            unread,
            mentions,
        });
    }
    Ok(Ok(OpOutput::ReadState { room, read_seq: state.read_seq, unread, mentions }))
}

pub(super) fn mark_delivered(
    txn: &WriteTransaction,
    batch: &mut Batch,
    origin: SessionId,
    user: UserId,
    room: RoomId,
    seq: u64,
) -> Result<OpResult, StoreError> {
    if let Err(refusal) = marker_target(txn, user, room, seq)? {
        return Ok(Err(refusal));
    }
    let mut states = txn.open_table(READ_STATES)?;
    let mut state = states.get((room.0, user.0))?.map(|v| v.value()).unwrap_or_default();
    if seq > state.delivered_seq {
        state.delivered_seq = seq;
        state.updated_at_ms = batch.now_ms;
        states.insert((room.0, user.0), &state)?;
        drop(states);
        let shared = shares_receipts(txn, user)?;
        batch.notices.push(Notice::PositionMoved {
            origin,
            user,
            room,
            read_moved: false,
            record: state,
            shared,
            unread: 0,
            mentions: 0,
        });
    }
    Ok(Ok(OpOutput::Done))
}

pub(super) fn set_profile(
    txn: &WriteTransaction,
    user: UserId,
    changes: ProfileChanges,
) -> Result<OpResult, StoreError> {
    let Some(mut record) = user_record(txn, user)? else {
        return Ok(Err(Refusal::UserNotFound));
    };
    let registered_only = changes.display_name.is_some() || changes.avatar_file_id.is_some();
    if record.is_guest() && (registered_only || changes.share_receipts.is_some()) {
        return Ok(Err(Refusal::Forbidden("guests can change only their status text and presence")));
    }
    if let Some(avatar) = changes.avatar_file_id {
        if !avatar.is_empty() && avatar != record.avatar_file_id {
            if let Err(refusal) = avatar_file(txn, user, &avatar)? {
                return Ok(Err(refusal));
            }
            publish_file(txn, &avatar)?;
        }
        record.avatar_file_id = avatar;
    }
    if let Some(display_name) = changes.display_name {
        record.display_name = display_name;
    }
    if let Some(status_text) = changes.status_text {
        record.status_text = status_text;
    }
    if let Some(share) = changes.share_receipts {
        record.receipts_private = !share;
    }
    if let Some(away) = changes.away {
        record.away = away;
    }
    txn.open_table(USERS)?.insert(user.0, record)?;
    Ok(Ok(OpOutput::Done))
}

pub(super) fn set_last_seen(txn: &WriteTransaction, user: UserId, at_ms: u64) -> Result<OpResult, StoreError> {
    let Some(mut record) = user_record(txn, user)? else {
        return Ok(Err(Refusal::UserNotFound));
    };
    if at_ms > record.last_seen_ms {
        record.last_seen_ms = at_ms;
        txn.open_table(USERS)?.insert(user.0, record)?;
    }
    Ok(Ok(OpOutput::Done))
}
