//! Replies, frames, rooms, members and room events in a few words, for the
//! details of checks (a client author reads them in the report).

use confab_sdk::v1;

use super::{conn::Reply, events::kind};
use crate::outcome::CaseResult;

/// A reply: the error code and message, or the body as JSON.
pub fn show_reply(reply: &Reply) -> String {
    match reply {
        Err(error) => error.to_string(),
        Ok(body) => {
            let frame = v1::ServerFrame { request_id: 0, body: Some(body.clone()) };
            serde_json::to_string(&frame).unwrap_or_else(|_| "<unprintable>".into())
        }
    }
}

/// A reply in a word or two (the kind of body, or the error): for details
/// about replies that carry tokens.
pub fn show_reply_kind(reply: &Reply) -> String {
    match reply {
        Err(error) => error.to_string(),
        Ok(body) => {
            let frame = v1::ServerFrame { request_id: 0, body: Some(body.clone()) };
            match serde_json::to_value(&frame) {
                Ok(serde_json::Value::Object(object)) => object.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => "a reply".into(),
            }
        }
    }
}

/// A whole frame as JSON.
pub fn show_frame(frame: &v1::ServerFrame) -> String {
    serde_json::to_string(frame).unwrap_or_else(|_| format!("{frame:?}"))
}

/// A step that either succeeded (`ok`) or stopped (why).
pub fn show_result<T>(result: &CaseResult<T>, ok: &str) -> String {
    match result {
        Ok(_) => ok.into(),
        Err(stop) => stop.to_string(),
    }
}

/// A room reference as the case sent it.
pub fn show_ref(room: &v1::RoomRef) -> String {
    match &room.room {
        Some(v1::room_ref::Room::Id(id)) => format!("id {id}"),
        Some(v1::room_ref::Room::Name(name)) => format!("name {name:?}"),
        None => "an empty RoomRef".into(),
    }
}

/// An event: `room 7 seq 3 Message "hi" by ada (42)`.
pub fn show_event(event: &v1::RoomEvent) -> String {
    let who = event.sender.as_ref().map_or("nobody".into(), |u| format!("{} ({})", u.name, u.user_id));
    let what = match &event.kind {
        Some(v1::room_event::Kind::MemberInvited(i)) => {
            format!("MemberInvited of {:?}", i.invitee.as_ref().map(|u| (&u.name, u.user_id)))
        }
        Some(v1::room_event::Kind::RoomCreated(c)) => {
            format!("RoomCreated {{{:?}, {}}}", c.name, c.kind().as_str_name())
        }
        Some(v1::room_event::Kind::Message(m)) => format!("Message {:?}", m.text),
        Some(v1::room_event::Kind::MemberJoined(_)) => "MemberJoined".into(),
        Some(v1::room_event::Kind::MemberLeft(_)) => "MemberLeft".into(),
        Some(v1::room_event::Kind::MessageEdited(e)) => format!("MessageEdited of #{} to {:?}", e.target_seq, e.text),
        Some(v1::room_event::Kind::MessageDeleted(d)) => format!("MessageDeleted of #{}", d.target_seq),
        Some(v1::room_event::Kind::ReactionAdded(r)) => format!("ReactionAdded {} to #{}", r.emoji, r.target_seq),
        Some(v1::room_event::Kind::ReactionRemoved(r)) => format!("ReactionRemoved {} from #{}", r.emoji, r.target_seq),
        Some(v1::room_event::Kind::RoomUpdated(u)) => format!("RoomUpdated {u:?}"),
        None => "an event of unknown kind".into(),
    };
    format!("room {} seq {} {what} by {who}", event.room_id, event.seq)
}

/// An event in fewer words, with its epoch and without ids:
/// `room 7 e1 #3 Message by ada "hi"` (a long text by its length).
pub fn show_event_brief(event: &v1::RoomEvent) -> String {
    let sender = event.sender.as_ref().map_or("(none)", |u| u.name.as_str());
    let extra = match &event.kind {
        Some(v1::room_event::Kind::Message(m)) if m.text.len() <= 40 => format!(" {:?}", m.text),
        Some(v1::room_event::Kind::Message(m)) => format!(" ({} bytes)", m.text.len()),
        Some(v1::room_event::Kind::MemberInvited(i)) => {
            format!(" {}", i.invitee.as_ref().map_or("(none)", |u| u.name.as_str()))
        }
        _ => String::new(),
    };
    format!("room {} e{} #{} {} by {sender}{extra}", event.room_id, event.epoch, event.seq, kind(event).name())
}

/// Events in brief ([`show_event_brief`]), `none` when empty.
pub fn show_events_brief(events: &[v1::RoomEvent]) -> String {
    if events.is_empty() {
        return "none".into();
    }
    events.iter().map(show_event_brief).collect::<Vec<_>>().join("; ")
}

/// Events (a log or what was pushed), `no events` when empty.
pub fn show_log(log: &[v1::RoomEvent]) -> String {
    if log.is_empty() {
        return "no events".into();
    }
    log.iter().map(show_event).collect::<Vec<_>>().join("; ")
}

/// Every field of a `RoomInfo`.
pub fn show_info(info: &v1::RoomInfo) -> String {
    format!(
        "room {} {:?} {} epoch {} head {} members {} {} created {}{}",
        info.room_id,
        info.name,
        info.kind().as_str_name(),
        info.epoch,
        info.head_seq,
        info.member_count,
        info.membership().as_str_name(),
        info.created_at_ms,
        info.peer.as_ref().map_or(String::new(), |p| format!(" peer {} ({})", p.name, p.user_id)),
    )
}

/// A room list, `no rooms` when empty.
pub fn show_rooms(rooms: &[v1::RoomInfo]) -> String {
    if rooms.is_empty() {
        return "no rooms".into();
    }
    rooms.iter().map(show_info).collect::<Vec<_>>().join("; ")
}

/// A member list: each user with their membership and role.
pub fn show_members(members: &[v1::Member]) -> String {
    members
        .iter()
        .map(|m| {
            let user = m.user.as_ref().map_or("no user".into(), |u| {
                format!("{} ({}){}", u.name, u.user_id, if u.guest { " guest" } else { "" })
            });
            format!("{user} {} {}", m.membership().as_str_name(), m.role().as_str_name())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
