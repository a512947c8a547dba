//! How the CLI prints results: tables and chat lines for people, or one JSON
//! object per line with `--json`. Notices go to stderr either way.

use chrono::{DateTime, Local, TimeZone, Utc};
use confab_sdk::v1::{self, room_event::Kind};
use serde_json::{Value, json};

/// Where results go, and in which shape.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// A JSON object (with `--json`) or a line for people.
    fn emit(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human());
        }
    }

    /// Something for the person at the terminal, never part of the result.
    pub fn notice(&self, message: impl AsRef<str>) {
        eprintln!("confab: {}", message.as_ref());
    }

    pub fn logged_in(&self, result: &v1::AuthResult) {
        let user = result.user.clone().unwrap_or_default();
        self.emit(user_json(&user), || {
            if user.guest { format!("Entered as guest {}.", user.name) } else { format!("Logged in as {}.", user.name) }
        });
    }

    pub fn done(&self, what: &str, message: impl FnOnce() -> String) {
        self.emit(json!({ "ok": true, "action": what }), message);
    }

    pub fn room(&self, what: &str, room: &v1::RoomInfo) {
        let mut value = room_json(room);
        value["action"] = json!(what);
        self.emit(value, || {
            let verb = match what {
                "created" => "Created",
                "joined" => "Joined",
                _ => "Opened",
            };
            format!(
                "{verb} {} (room {}, {}, {} member{}).",
                room_label(room),
                room.room_id,
                kind_name(room.kind),
                room.member_count,
                if room.member_count == 1 { "" } else { "s" }
            )
        });
    }

    pub fn rooms(&self, rooms: &[v1::RoomInfo]) {
        if self.json {
            for room in rooms {
                println!("{}", room_json(room));
            }
        } else if rooms.is_empty() {
            println!("No rooms.");
        } else {
            print!("{}", rooms_table(rooms));
        }
    }

    pub fn members(&self, list: &v1::MemberList) {
        if self.json {
            for member in &list.members {
                println!("{}", member_json(list.room_id, member));
            }
        } else {
            print!("{}", members_table(&list.members));
        }
    }

    /// `room_name`: `general`, or `@bob` for a direct conversation.
    pub fn sent(&self, room_name: &str, result: &v1::SendResult) {
        let value = json!({
            "room": room_name,
            "room_id": result.room_id,
            "epoch": result.epoch,
            "seq": result.seq,
            "time": iso_time(result.server_time_ms),
            "time_ms": result.server_time_ms,
            "duplicate": result.duplicate,
        });
        self.emit(value, || format!("Sent to {} (seq {}).", shown(room_name), result.seq));
    }

    /// `room_name`: `general`, or `@bob` for a direct conversation.
    pub fn event(&self, room_name: &str, event: &v1::RoomEvent) {
        self.emit(event_json(room_name, event), || event_line(room_name, event, &Local));
    }
}

fn user_json(user: &v1::User) -> Value {
    json!({ "user": user.name, "user_id": user.user_id, "guest": user.guest })
}

fn kind_name(kind: i32) -> &'static str {
    match v1::RoomKind::try_from(kind) {
        Ok(v1::RoomKind::Public) => "public",
        Ok(v1::RoomKind::Private) => "private",
        Ok(v1::RoomKind::Direct) => "direct",
        _ => "unknown",
    }
}

fn membership_name(membership: i32) -> &'static str {
    match v1::Membership::try_from(membership) {
        Ok(v1::Membership::Joined) => "joined",
        Ok(v1::Membership::Invited) => "invited",
        _ => "none",
    }
}

fn role_name(role: i32) -> &'static str {
    match v1::Role::try_from(role) {
        Ok(v1::Role::Owner) => "owner",
        Ok(v1::Role::Admin) => "admin",
        Ok(v1::Role::Moderator) => "moderator",
        Ok(v1::Role::Member) => "member",
        _ => "unknown",
    }
}

/// How the command line names a room: its name, or `@peer` for a direct
/// conversation (direct rooms have no name).
fn room_arg(room: &v1::RoomInfo) -> String {
    match &room.peer {
        Some(peer) if room.kind == v1::RoomKind::Direct as i32 => format!("@{}", peer.name),
        _ => room.name.clone(),
    }
}

/// `#name` for a room name, `@peer` as it is.
pub fn shown(room_arg: &str) -> String {
    if room_arg.starts_with('@') { room_arg.to_owned() } else { format!("#{room_arg}") }
}

/// `#name`, or `@peer` for a direct conversation.
fn room_label(room: &v1::RoomInfo) -> String {
    shown(&room_arg(room))
}

fn room_json(room: &v1::RoomInfo) -> Value {
    json!({
        "room": room_arg(room),
        "room_id": room.room_id,
        "kind": kind_name(room.kind),
        "membership": membership_name(room.membership),
        "members": room.member_count,
        "epoch": room.epoch,
        "head_seq": room.head_seq,
        "created": iso_time(room.created_at_ms),
        "peer": room.peer.as_ref().map(|p| p.name.clone()),
    })
}

fn member_json(room_id: u64, member: &v1::Member) -> Value {
    let user = member.user.clone().unwrap_or_default();
    json!({
        "room_id": room_id,
        "user": user.name,
        "user_id": user.user_id,
        "guest": user.guest,
        "role": role_name(member.role),
        "membership": membership_name(member.membership),
    })
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, &width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn rooms_table(rooms: &[v1::RoomInfo]) -> String {
    let rows: Vec<Vec<String>> = rooms
        .iter()
        .map(|room| {
            vec![
                room_label(room),
                kind_name(room.kind).into(),
                room.member_count.to_string(),
                membership_name(room.membership).into(),
                room.room_id.to_string(),
            ]
        })
        .collect();
    table(&["ROOM", "KIND", "MEMBERS", "MEMBERSHIP", "ID"], &rows)
}

fn members_table(members: &[v1::Member]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|member| {
            let user = member.user.clone().unwrap_or_default();
            vec![
                if user.guest { format!("{} (guest)", user.name) } else { user.name },
                role_name(member.role).into(),
                membership_name(member.membership).into(),
            ]
        })
        .collect();
    table(&["USER", "ROLE", "MEMBERSHIP"], &rows)
}

/// RFC 3339 in UTC, or null for 0.
fn iso_time(ms: u64) -> Value {
    match i64::try_from(ms).ok().filter(|&ms| ms > 0).and_then(DateTime::from_timestamp_millis) {
        Some(time) => json!(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

fn event_kind(event: &v1::RoomEvent) -> &'static str {
    match &event.kind {
        Some(Kind::Message(_)) => "message",
        Some(Kind::RoomCreated(_)) => "room_created",
        Some(Kind::MemberJoined(_)) => "member_joined",
        Some(Kind::MemberLeft(_)) => "member_left",
        Some(Kind::MemberInvited(_)) => "member_invited",
        Some(Kind::MessageEdited(_)) => "message_edited",
        Some(Kind::MessageDeleted(_)) => "message_deleted",
        Some(Kind::ReactionAdded(_)) => "reaction_added",
        Some(Kind::ReactionRemoved(_)) => "reaction_removed",
        Some(Kind::RoomUpdated(_)) => "room_updated",
        None => "unknown",
    }
}

fn event_json(room_name: &str, event: &v1::RoomEvent) -> Value {
    let sender = event.sender.clone().unwrap_or_default();
    let mut value = json!({
        "room": room_name,
        "room_id": event.room_id,
        "epoch": event.epoch,
        "seq": event.seq,
        "time": iso_time(event.server_time_ms),
        "time_ms": event.server_time_ms,
        "sender": sender.name,
        "sender_id": sender.user_id,
        "kind": event_kind(event),
    });
    match &event.kind {
        Some(Kind::Message(message)) => {
            value["text"] = json!(message.text);
            value["client_txn_id"] = json!(message.client_txn_id);
        }
        Some(Kind::MemberInvited(invited)) => {
            value["invitee"] = json!(invited.invitee.as_ref().map(|u| u.name.clone()));
        }
        Some(Kind::RoomCreated(created)) => {
            value["name"] = json!(created.name);
            value["room_kind"] = json!(kind_name(created.kind));
        }
        _ => {}
    }
    value
}

/// `[2026-11-23 12:00:01] #general <alice> hello`, in `zone`'s time
/// (`@bob <bob> hi` in a direct conversation).
fn event_line<Z: TimeZone>(room_name: &str, event: &v1::RoomEvent, zone: &Z) -> String
where
    Z::Offset: std::fmt::Display,
{
    let time = i64::try_from(event.server_time_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.with_timezone(zone).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "????-??-?? ??:??:??".into());
    let sender = event.sender.as_ref().map(|u| terminal_safe(&u.name)).unwrap_or_else(|| "?".into());
    let room = shown(room_name);
    let what = match &event.kind {
        Some(Kind::Message(message)) => return format!("[{time}] {room} <{sender}> {}", terminal_safe(&message.text)),
        Some(Kind::RoomCreated(_)) => "created the room".to_owned(),
        Some(Kind::MemberJoined(_)) => "joined".to_owned(),
        Some(Kind::MemberLeft(_)) => "left".to_owned(),
        Some(Kind::MemberInvited(invited)) => {
            let invitee = invited.invitee.as_ref().map(|u| terminal_safe(&u.name)).unwrap_or_else(|| "?".into());
            format!("invited {invitee}")
        }
        // TODO(sdk/cli helper): show the conversation events.
        Some(_) | None => "did something this client does not know how to show".to_owned(),
    };
    format!("[{time}] {room} * {sender} {what}")
}

/// Text another user wrote, made harmless for a terminal: control
/// characters (escape sequences) become U+FFFD, and continuation lines are
/// indented so they cannot pass for lines of their own.
fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\n    "),
            '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, text: &str) -> v1::RoomEvent {
        v1::RoomEvent {
            room_id: 3,
            epoch: 1,
            seq,
            server_time_ms: 1_795_003_201_000, // 2026-11-18 12:00:01 UTC
            sender: Some(v1::User { user_id: 5, name: "alice".into(), guest: false, ..Default::default() }),
            kind: Some(Kind::Message(v1::Message {
                text: text.into(),
                client_txn_id: "t1".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn events_read_as_chat_lines() {
        let line = event_line("general", &message(7, "hello"), &Utc);
        assert_eq!(line, "[2026-11-18 12:00:01] #general <alice> hello");
        let mut joined = message(8, "");
        joined.kind = Some(Kind::MemberJoined(v1::MemberJoined {}));
        assert_eq!(event_line("general", &joined, &Utc), "[2026-11-18 12:00:01] #general * alice joined");
        let mut invited = message(9, "");
        invited.kind = Some(Kind::MemberInvited(v1::MemberInvited {
            invitee: Some(v1::User { name: "bob".into(), ..Default::default() }),
        }));
        assert!(event_line("general", &invited, &Utc).ends_with("* alice invited bob"));
    }

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        let line = event_line("g", &message(1, "hi\x1b[2J\nfake line\r"), &Utc);
        assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
        assert!(line.contains("\n    fake line"), "{line:?}");
    }

    #[test]
    fn events_as_json_objects() {
        let value = event_json("general", &message(7, "hello"));
        assert_eq!(value["room"], "general");
        assert_eq!(value["seq"], 7);
        assert_eq!(value["sender"], "alice");
        assert_eq!(value["kind"], "message");
        assert_eq!(value["text"], "hello");
        assert_eq!(value["time"], "2026-11-18T12:00:01.000Z");
        assert_eq!(iso_time(0), Value::Null);
    }

    #[test]
    fn direct_conversations_are_named_by_the_peer() {
        let direct = v1::RoomInfo {
            room_id: 9,
            kind: v1::RoomKind::Direct as i32,
            member_count: 2,
            membership: v1::Membership::Joined as i32,
            peer: Some(v1::User { user_id: 6, name: "bob".into(), guest: false, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(room_label(&direct), "@bob");
        assert_eq!(room_json(&direct)["room"], "@bob");
        assert!(rooms_table(&[direct]).contains("\n@bob  direct"));
        assert_eq!(event_line("@bob", &message(1, "hi"), &Utc), "[2026-11-18 12:00:01] @bob <alice> hi");
        assert_eq!(shown("general"), "#general");
    }

    #[test]
    fn rooms_line_up_in_a_table() {
        let room = |id, name: &str, kind: v1::RoomKind, members| v1::RoomInfo {
            room_id: id,
            name: name.into(),
            kind: kind as i32,
            member_count: members,
            membership: v1::Membership::Joined as i32,
            ..Default::default()
        };
        let table =
            rooms_table(&[room(1, "general", v1::RoomKind::Public, 12), room(22, "ops", v1::RoomKind::Private, 3)]);
        assert_eq!(
            table,
            "ROOM      KIND     MEMBERS  MEMBERSHIP  ID\n\
             #general  public   12       joined      1\n\
             #ops      private  3        joined      22\n"
        );
    }
}
