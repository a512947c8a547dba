//! Rooms, members and room events in a few words, for the details of
//! checks (a client author reads them in the report).

use confab_sdk::v1;

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
        None => "an event of unknown kind".into(),
    };
    format!("room {} seq {} {what} by {who}", event.room_id, event.seq)
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
