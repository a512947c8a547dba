//! The commands of feature level 2 as the cases send them: builders for each
//! command, calls that expect success (and stop the case otherwise), and
//! readers for what messages, replies and pushes hold.

use confab_sdk::v1::{self, client_frame::Command, room_event::Kind, server_frame::Body};

use super::{
    Conn,
    conn::{Reply, by_id},
};
use crate::outcome::CaseResult;

// --- commands ---

/// A `SendMessage` with every level-2 field at its default.
pub fn message(room_id: u64, text: &str, txn: &str) -> v1::SendMessage {
    v1::SendMessage { room: Some(by_id(room_id)), text: text.into(), client_txn_id: txn.into(), ..Default::default() }
}

pub fn send(message: v1::SendMessage) -> Command {
    Command::SendMessage(message)
}

pub fn edit(room_id: u64, seq: u64, text: &str) -> Command {
    Command::EditMessage(v1::EditMessage { room: Some(by_id(room_id)), seq, text: text.into() })
}

pub fn delete(room_id: u64, seq: u64) -> Command {
    Command::DeleteMessage(v1::DeleteMessage { room: Some(by_id(room_id)), seq })
}

pub fn react(room_id: u64, seq: u64, emoji: &str, remove: bool) -> Command {
    Command::React(v1::React { room: Some(by_id(room_id)), seq, emoji: emoji.into(), remove })
}

pub fn get_thread(
    room_id: u64,
    root_seq: u64,
    direction: v1::HistoryDirection,
    anchor_seq: u64,
    limit: u32,
) -> Command {
    Command::GetThread(v1::GetThread {
        room: Some(by_id(room_id)),
        root_seq,
        direction: direction as i32,
        anchor_seq,
        limit,
    })
}

pub fn mark_read(room_id: u64, seq: u64) -> Command {
    Command::MarkRead(v1::MarkRead { room: Some(by_id(room_id)), seq })
}

pub fn mark_delivered(room_id: u64, seq: u64) -> Command {
    Command::MarkDelivered(v1::MarkDelivered { room: Some(by_id(room_id)), seq })
}

pub fn get_receipts(room_id: u64) -> Command {
    Command::GetReceipts(v1::GetReceipts { room: Some(by_id(room_id)) })
}

pub fn set_typing(room_id: u64, typing: bool) -> Command {
    Command::SetTyping(v1::SetTyping { room: Some(by_id(room_id)), typing })
}

pub fn set_level(room_id: u64, level: i32) -> Command {
    Command::SetNotificationLevel(v1::SetNotificationLevel { room: Some(by_id(room_id)), level })
}

pub fn update_room(room_id: u64) -> v1::UpdateRoom {
    v1::UpdateRoom { room: Some(by_id(room_id)), ..Default::default() }
}

pub fn get_profile(username: &str) -> Command {
    Command::GetProfile(v1::GetProfile { username: username.into() })
}

pub fn set_profile(set: v1::SetProfile) -> Command {
    Command::SetProfile(set)
}

pub fn set_presence(state: v1::PresenceState, status_text: Option<&str>, this_device_only: bool) -> Command {
    Command::SetPresence(v1::SetPresence {
        state: state as i32,
        status_text: status_text.map(Into::into),
        this_device_only,
    })
}

pub fn get_file(file_id: &str) -> Command {
    Command::GetFile(v1::GetFile { file_id: file_id.into() })
}

// --- calls that expect success ---

/// Sends `command` and expects a `SendResult`.
pub async fn sent(conn: &mut Conn, command: Command) -> CaseResult<v1::SendResult> {
    conn.call(command, "SendResult", |b| match b {
        Body::Sent(s) => Some(s),
        _ => None,
    })
    .await
}

/// Sends `command` and expects a `RoomInfo`.
pub async fn room_info(conn: &mut Conn, command: Command) -> CaseResult<v1::RoomInfo> {
    conn.call(command, "RoomInfo", |b| match b {
        Body::Room(r) => Some(r),
        _ => None,
    })
    .await
}

/// Sends `command` and expects a `HistoryPage`.
pub async fn page(conn: &mut Conn, command: Command) -> CaseResult<v1::HistoryPage> {
    conn.call(command, "HistoryPage", |b| match b {
        Body::History(h) => Some(h),
        _ => None,
    })
    .await
}

/// Sends `command` and expects a `ReadState`.
pub async fn read_state(conn: &mut Conn, command: Command) -> CaseResult<v1::ReadState> {
    conn.call(command, "ReadState", |b| match b {
        Body::ReadState(r) => Some(r),
        _ => None,
    })
    .await
}

/// Sends `command` and expects a `Profile`.
pub async fn profile(conn: &mut Conn, command: Command) -> CaseResult<v1::Profile> {
    conn.call(command, "Profile", |b| match b {
        Body::Profile(p) => Some(p),
        _ => None,
    })
    .await
}

/// Sends `command` and expects `Done`.
pub async fn done(conn: &mut Conn, command: Command, what: &str) -> CaseResult {
    conn.call(command, &format!("Done ({what})"), |b| matches!(b, Body::Done(_)).then_some(())).await
}

/// The room as `conn`'s user sees it in `ListRooms` `MINE`.
pub async fn mine(conn: &mut Conn, room_id: u64) -> CaseResult<Option<v1::RoomInfo>> {
    let rooms = conn.list_rooms(v1::RoomScope::Mine).await?;
    Ok(rooms.into_iter().find(|r| r.room_id == room_id))
}

/// The event at `seq` of a room, read with `GetHistory` (so in its current
/// state, LOG-6).
pub async fn event_at(conn: &mut Conn, room_id: u64, seq: u64) -> CaseResult<Option<v1::RoomEvent>> {
    let page = conn.history(room_id, v1::HistoryDirection::Forward, seq.saturating_sub(1), 1).await?;
    Ok(page.events.into_iter().find(|e| e.seq == seq))
}

/// The message at `seq`, read with `GetHistory` (its current state).
pub async fn message_at(conn: &mut Conn, room_id: u64, seq: u64) -> CaseResult<Option<v1::Message>> {
    Ok(event_at(conn, room_id, seq).await?.and_then(|e| as_message(&e).cloned()))
}

/// The room's head, from `GetHistory`.
pub async fn head(conn: &mut Conn, room_id: u64) -> CaseResult<u64> {
    Ok(conn.history(room_id, v1::HistoryDirection::Backward, 0, 1).await?.head_seq)
}

// --- readers ---

pub fn as_message(event: &v1::RoomEvent) -> Option<&v1::Message> {
    match &event.kind {
        Some(Kind::Message(m)) => Some(m),
        _ => None,
    }
}

/// `(name, id)` of each user, for details and comparisons.
pub fn users(users: &[v1::User]) -> Vec<(String, u64)> {
    users.iter().map(|u| (u.name.clone(), u.user_id)).collect()
}

/// Whether `reply` is a `SendResult`.
pub fn is_sent(reply: &Reply) -> bool {
    matches!(reply, Ok(Body::Sent(_)))
}

/// The `SendResult` of a reply, if it is one.
pub fn sent_of(reply: &Reply) -> Option<&v1::SendResult> {
    match reply {
        Ok(Body::Sent(s)) => Some(s),
        _ => None,
    }
}

/// Picks a `Typing` push.
pub fn typing(body: &Body) -> Option<v1::Typing> {
    match body {
        Body::Typing(t) => Some(t.clone()),
        _ => None,
    }
}

/// Picks a `Receipt` push.
pub fn receipt(body: &Body) -> Option<v1::Receipt> {
    match body {
        Body::Receipt(r) => Some(r.clone()),
        _ => None,
    }
}

/// Picks a `Presence` push.
pub fn presence(body: &Body) -> Option<v1::Presence> {
    match body {
        Body::Presence(p) => Some(p.clone()),
        _ => None,
    }
}

/// Picks a `Notification` push.
pub fn notification(body: &Body) -> Option<v1::Notification> {
    match body {
        Body::Notification(n) => Some(n.clone()),
        _ => None,
    }
}

/// Picks a `ReadState` push.
pub fn read_state_push(body: &Body) -> Option<v1::ReadState> {
    match body {
        Body::ReadState(r) => Some(r.clone()),
        _ => None,
    }
}

/// A reply in brief, for details: the error code, or the kind of body.
pub fn brief(reply: &Reply) -> String {
    match reply {
        Err(error) => error.to_string(),
        Ok(Body::Sent(s)) => format!("SendResult seq {} duplicate {}", s.seq, s.duplicate),
        Ok(_) => super::show::show_reply_kind(reply),
    }
}
