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

    /// A room created, joined, opened or updated (`what`); an update shows
    /// the room's settings below.
    pub fn room(&self, what: &str, room: &v1::RoomInfo) {
        let mut value = room_json(room);
        value["action"] = json!(what);
        self.emit(value, || {
            let verb = match what {
                "created" => "Created",
                "joined" => "Joined",
                "updated" => "Updated",
                _ => "Opened",
            };
            let line = format!(
                "{verb} {} (room {}, {}, {} member{}).",
                terminal_safe(&room_label(room)),
                room.room_id,
                kind_name(room.kind),
                room.member_count,
                if room.member_count == 1 { "" } else { "s" }
            );
            if what == "updated" { format!("{line}\n{}", room_settings_text(room)) } else { line }
        });
    }

    /// The answer to `notify`: the room, with the level now chosen.
    pub fn notifications(&self, room: &v1::RoomInfo) {
        let mut value = room_json(room);
        value["action"] = json!("notify");
        self.emit(value, || {
            format!("Notifications for {}: {}.", terminal_safe(&room_label(room)), notification_level_text(room))
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

    /// The answer to an edit, a deletion or a reaction: the position of the
    /// event it appended (seq 0 and `duplicate` when nothing changed).
    /// `seq` and the times are null when nothing changed (a reaction made
    /// or taken back already): no event was appended.
    pub fn changed(&self, what: &str, room_name: &str, target_seq: u64, result: &v1::SendResult, human: String) {
        let appended = result.seq != 0;
        let value = json!({
            "action": what,
            "room": room_name,
            "room_id": result.room_id,
            "target_seq": target_seq,
            "seq": appended.then_some(result.seq),
            "time": if appended { iso_time(result.server_time_ms) } else { Value::Null },
            "time_ms": appended.then_some(result.server_time_ms),
            "duplicate": result.duplicate,
        });
        self.emit(value, || human);
    }

    /// A thread: its root, then its messages.
    pub fn thread(&self, room_name: &str, page: &v1::HistoryPage) {
        if let Some(root) = &page.thread_root {
            self.event(room_name, root);
        }
        for event in &page.events {
            self.event(room_name, event);
        }
    }

    pub fn read_state(&self, room_name: &str, state: &v1::ReadState) {
        let value = json!({
            "action": "read",
            "room": room_name,
            "room_id": state.room_id,
            "read_seq": state.read_seq,
            "unread": state.unread_count,
            "mentions": state.mention_count,
        });
        self.emit(value, || {
            format!(
                "Read {} up to #{} ({} unread, {} mention{}).",
                shown(room_name),
                state.read_seq,
                state.unread_count,
                state.mention_count,
                if state.mention_count == 1 { "" } else { "s" }
            )
        });
    }

    /// A file uploaded and the message that carries it.
    pub fn uploaded(&self, room_name: &str, file: &v1::FileInfo, result: &v1::SendResult) {
        let value = json!({
            "action": "uploaded",
            "file": file_json(file),
            "room": room_name,
            "room_id": result.room_id,
            "seq": result.seq,
            "time": iso_time(result.server_time_ms),
            "time_ms": result.server_time_ms,
        });
        self.emit(value, || {
            format!(
                "Uploaded {} ({}, {}) as file {}; sent to {} (seq {}).",
                terminal_safe(&file.name),
                terminal_safe(&file.content_type),
                size_text(file.size),
                terminal_safe(&file.file_id),
                shown(room_name),
                result.seq
            )
        });
    }

    /// `path`: where it went, `None` for standard output (then nothing else
    /// is printed there).
    pub fn downloaded(&self, file_id: &str, path: Option<&std::path::Path>, content_type: &str, size: u64) {
        let Some(path) = path else {
            return;
        };
        let value = json!({
            "action": "downloaded",
            "file_id": file_id,
            "path": path.display().to_string(),
            "content_type": content_type,
            "size": size,
        });
        self.emit(value, || {
            format!("Downloaded {} to {}.", size_text(size), terminal_safe(&path.display().to_string()))
        });
    }

    pub fn profile(&self, profile: &v1::Profile) {
        self.emit(profile_json(profile), || profile_text(profile));
    }

    pub fn profiles(&self, profiles: &[v1::Profile]) {
        if self.json {
            for profile in profiles {
                println!("{}", profile_json(profile));
            }
        } else if profiles.is_empty() {
            println!("No users.");
        } else {
            print!("{}", profiles_table(profiles));
        }
    }
}

/// `512 bytes`, `1.5 KiB`, `3.0 MiB`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn presence_name(state: i32) -> &'static str {
    match v1::PresenceState::try_from(state) {
        Ok(v1::PresenceState::Online) => "online",
        Ok(v1::PresenceState::Away) => "away",
        Ok(v1::PresenceState::Offline) => "offline",
        _ => "unknown",
    }
}

fn notification_level_name(level: i32) -> &'static str {
    match v1::NotificationLevel::try_from(level) {
        Ok(v1::NotificationLevel::NotifyAll) => "all",
        Ok(v1::NotificationLevel::NotifyMentions) => "mentions",
        Ok(v1::NotificationLevel::NotifyNone) => "none",
        _ => "default",
    }
}

/// What a room's notification level means, for people.
fn notification_level_text(room: &v1::RoomInfo) -> &'static str {
    match v1::NotificationLevel::try_from(room.notification_level) {
        Ok(v1::NotificationLevel::NotifyAll) => "every message",
        Ok(v1::NotificationLevel::NotifyMentions) => "only messages that mention you",
        Ok(v1::NotificationLevel::NotifyNone) => "none (unread counts still move)",
        // The default depends on whether a private room is a group, which
        // RoomInfo does not say.
        _ => match v1::RoomKind::try_from(room.kind) {
            Ok(v1::RoomKind::Direct) => "the default (every message)",
            Ok(v1::RoomKind::Public) => "the default (only messages that mention you)",
            _ => "the default (every message in a group, else only messages that mention you)",
        },
    }
}

/// A room's settings for people, one per line.
fn room_settings_text(room: &v1::RoomInfo) -> String {
    let mut lines = vec![match room.topic.as_str() {
        "" => "  no topic".to_owned(),
        topic => format!("  topic: {}", one_line(topic)),
    }];
    if !room.avatar_file_id.is_empty() {
        lines.push(format!("  avatar: file {}", terminal_safe(&room.avatar_file_id)));
    }
    if room.archived {
        lines.push("  archived: read-only until unarchived".to_owned());
    }
    lines.join("\n")
}

fn file_json(file: &v1::FileInfo) -> Value {
    json!({
        "file_id": file.file_id,
        "name": file.name,
        "content_type": file.content_type,
        "size": file.size,
        "width": file.width,
        "height": file.height,
        "thumbnail_file_id": (!file.thumbnail_file_id.is_empty()).then_some(&file.thumbnail_file_id),
        "sha256": file.sha256,
        "owner": file.owner.as_ref().map(|u| u.name.clone()),
    })
}

fn profile_json(profile: &v1::Profile) -> Value {
    let user = profile.user.clone().unwrap_or_default();
    json!({
        "user": user.name,
        "user_id": user.user_id,
        "guest": user.guest,
        "display_name": profile.display_name,
        "avatar_file_id": (!profile.avatar_file_id.is_empty()).then_some(&profile.avatar_file_id),
        "status": profile.status_text,
        "presence": presence_name(profile.presence),
        "last_seen": iso_time(profile.last_seen_ms),
        "created": iso_time(profile.created_at_ms),
        "share_receipts": profile.share_receipts,
    })
}

/// A profile for people, one fact per line.
fn profile_text(profile: &v1::Profile) -> String {
    let user = profile.user.clone().unwrap_or_default();
    let mut lines = vec![match profile.display_name.as_str() {
        "" => terminal_safe(&user.name),
        display => format!("{} ({})", one_line(display), terminal_safe(&user.name)),
    }];
    let mut presence = presence_name(profile.presence).to_owned();
    if let Some(seen) = iso_time(profile.last_seen_ms).as_str() {
        presence.push_str(&format!(", last seen {seen}"));
    }
    lines.push(format!("  presence: {presence}"));
    if !profile.status_text.is_empty() {
        lines.push(format!("  status: {}", one_line(&profile.status_text)));
    }
    if user.guest {
        lines.push("  guest".into());
    }
    if !profile.avatar_file_id.is_empty() {
        lines.push(format!("  avatar: file {}", terminal_safe(&profile.avatar_file_id)));
    }
    if let Some(created) = iso_time(profile.created_at_ms).as_str() {
        lines.push(format!("  joined: {created}"));
    }
    lines.join("\n")
}

fn profiles_table(profiles: &[v1::Profile]) -> String {
    let rows: Vec<Vec<String>> = profiles
        .iter()
        .map(|profile| {
            let user = profile.user.clone().unwrap_or_default();
            vec![
                terminal_safe(&user.name),
                presence_name(profile.presence).into(),
                one_line(&profile.display_name),
                one_line(&profile.status_text),
            ]
        })
        .collect();
    table(&["USER", "PRESENCE", "DISPLAY NAME", "STATUS"], &rows)
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

/// How the command line names a room: its name, `@peer` for a direct
/// conversation (direct rooms have no name), or its id for an unnamed group.
fn room_arg(room: &v1::RoomInfo) -> String {
    match &room.peer {
        Some(peer) if room.kind == v1::RoomKind::Direct as i32 => format!("@{}", peer.name),
        _ if room.name.is_empty() => room.room_id.to_string(),
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
    let joined = room.membership == v1::Membership::Joined as i32;
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
        "topic": room.topic,
        "avatar_file_id": (!room.avatar_file_id.is_empty()).then_some(&room.avatar_file_id),
        "archived": room.archived,
        "read_seq": joined.then_some(room.read_seq),
        "unread": joined.then_some(room.unread_count),
        "mentions": joined.then_some(room.mention_count),
        "notifications": joined.then(|| notification_level_name(room.notification_level)),
        "role": joined.then(|| role_name(room.role)),
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

/// Longest topic shown in a table (the JSON output has all of it).
const TOPIC_COLUMN_CHARS: usize = 40;

fn rooms_table(rooms: &[v1::RoomInfo]) -> String {
    let rows: Vec<Vec<String>> = rooms
        .iter()
        .map(|room| {
            let joined = room.membership == v1::Membership::Joined as i32;
            let count = |n: u32| if joined { n.to_string() } else { "-".into() };
            let mut topic = one_line(&room.topic);
            if topic.chars().count() > TOPIC_COLUMN_CHARS {
                topic = topic.chars().take(TOPIC_COLUMN_CHARS - 1).collect::<String>() + "…";
            }
            if room.archived {
                topic = if topic.is_empty() { "(archived)".into() } else { format!("(archived) {topic}") };
            }
            vec![
                terminal_safe(&room_label(room)),
                kind_name(room.kind).into(),
                room.member_count.to_string(),
                membership_name(room.membership).into(),
                count(room.unread_count),
                count(room.mention_count),
                room.room_id.to_string(),
                topic,
            ]
        })
        .collect();
    table(&["ROOM", "KIND", "MEMBERS", "MEMBERSHIP", "UNREAD", "MENTIONS", "ID", "TOPIC"], &rows)
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
            value["reply_to"] = json!(message.reply_to.as_ref().map(|reply| json!({
                "seq": reply.seq,
                "sender": reply.sender.as_ref().map(|u| u.name.clone()),
                "quote": reply.quote,
                "deleted": reply.deleted,
            })));
            value["thread_root_seq"] = json!((message.thread_root_seq > 0).then_some(message.thread_root_seq));
            value["mentions"] = json!(message.mentions.iter().map(|u| u.name.clone()).collect::<Vec<_>>());
            value["mentions_room"] = json!(message.mentions_room);
            value["attachments"] = json!(message.attachments.iter().map(file_json).collect::<Vec<_>>());
            value["location"] = json!(message.location.as_ref().map(|l| json!({
                "latitude": l.latitude,
                "longitude": l.longitude,
                "label": l.label,
            })));
            value["edited"] = json!(message.edited_at_ms > 0);
            value["edited_at"] = iso_time(message.edited_at_ms);
            value["deleted"] = json!(message.deleted.is_some());
            if let Some(deletion) = &message.deleted {
                value["deleted_by"] = json!(deletion.by.as_ref().map(|u| u.name.clone()));
                value["deleted_at"] = iso_time(deletion.at_ms);
            }
            value["reactions"] = json!(
                message
                    .reactions
                    .iter()
                    .map(|r| json!({
                        "emoji": r.emoji,
                        "count": r.count,
                        "users": r.users.iter().map(|u| u.name.clone()).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>()
            );
            value["thread"] = json!(message.thread.as_ref().map(|t| json!({
                "reply_count": t.reply_count,
                "last_reply_seq": t.last_reply_seq,
                "last_reply_at": iso_time(t.last_reply_at_ms),
                "participants": t.participants.iter().map(|u| u.name.clone()).collect::<Vec<_>>(),
            })));
        }
        Some(Kind::MessageEdited(edited)) => {
            value["target_seq"] = json!(edited.target_seq);
            value["text"] = json!(edited.text);
            value["mentions"] = json!(edited.mentions.iter().map(|u| u.name.clone()).collect::<Vec<_>>());
            value["mentions_room"] = json!(edited.mentions_room);
        }
        Some(Kind::MessageDeleted(deleted)) => value["target_seq"] = json!(deleted.target_seq),
        Some(Kind::ReactionAdded(reaction)) => {
            value["target_seq"] = json!(reaction.target_seq);
            value["emoji"] = json!(reaction.emoji);
        }
        Some(Kind::ReactionRemoved(reaction)) => {
            value["target_seq"] = json!(reaction.target_seq);
            value["emoji"] = json!(reaction.emoji);
        }
        Some(Kind::RoomUpdated(updated)) => {
            value["changes"] = json!({
                "name": updated.name,
                "topic": updated.topic,
                "avatar_file_id": updated.avatar_file_id,
                "archived": updated.archived,
            });
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

/// `[2026-11-23 12:00:01 #7] #general <alice> hello`, in `zone`'s time
/// (`@bob <bob> hi` in a direct conversation); `#7` is the event's sequence
/// number, which `edit`, `delete`, `react`, `reply` and `thread` take.
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
    let seq = event.seq;
    let what = match &event.kind {
        Some(Kind::Message(message)) => return format!("[{time} #{seq}] {room} <{sender}> {}", message_text(message)),
        Some(Kind::RoomCreated(_)) => "created the room".to_owned(),
        Some(Kind::MemberJoined(_)) => "joined".to_owned(),
        Some(Kind::MemberLeft(_)) => "left".to_owned(),
        Some(Kind::MemberInvited(invited)) => {
            let invitee = invited.invitee.as_ref().map(|u| terminal_safe(&u.name)).unwrap_or_else(|| "?".into());
            format!("invited {invitee}")
        }
        Some(Kind::MessageEdited(edited)) if edited.text.is_empty() => format!("edited #{}", edited.target_seq),
        Some(Kind::MessageEdited(edited)) => format!("edited #{}: {}", edited.target_seq, terminal_safe(&edited.text)),
        Some(Kind::MessageDeleted(deleted)) => format!("deleted #{}", deleted.target_seq),
        Some(Kind::ReactionAdded(reaction)) => {
            format!("reacted {} to #{}", terminal_safe(&reaction.emoji), reaction.target_seq)
        }
        Some(Kind::ReactionRemoved(reaction)) => {
            format!("took back {} from #{}", terminal_safe(&reaction.emoji), reaction.target_seq)
        }
        Some(Kind::RoomUpdated(updated)) => room_update_text(updated),
        None => "did something this client does not know how to show".to_owned(),
    };
    format!("[{time} #{seq}] {room} * {sender} {what}")
}

/// A message for people: its text with what it carries around it. A
/// message read through `history` shows its current state (edited,
/// deleted, reactions, thread); a live one shows it as sent.
fn message_text(message: &v1::Message) -> String {
    if let Some(deletion) = &message.deleted {
        return match deletion.by.as_ref() {
            Some(by) => format!("(message deleted by {})", terminal_safe(&by.name)),
            None => "(message deleted)".to_owned(),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    if message.thread_root_seq > 0 {
        parts.push(format!("(in thread #{})", message.thread_root_seq));
    }
    if let Some(reply) = &message.reply_to {
        let to = reply.sender.as_ref().map(|u| terminal_safe(&u.name)).unwrap_or_else(|| "?".into());
        if reply.deleted {
            parts.push(format!("(reply to {to} #{}: deleted)", reply.seq));
        } else {
            parts.push(format!("(reply to {to} #{}: \"{}\")", reply.seq, one_line(&reply.quote)));
        }
    }
    if !message.text.is_empty() {
        parts.push(terminal_safe(&message.text));
    }
    for file in &message.attachments {
        parts.push(format!(
            "[file {}: {}, {}, {}]",
            terminal_safe(&file.file_id),
            one_line(&file.name),
            terminal_safe(&file.content_type),
            size_text(file.size)
        ));
    }
    if let Some(location) = &message.location {
        let label = if location.label.is_empty() { String::new() } else { format!("{} ", one_line(&location.label)) };
        parts.push(format!("[location {label}{:.5}, {:.5}]", location.latitude, location.longitude));
    }
    if message.edited_at_ms > 0 {
        parts.push("(edited)".to_owned());
    }
    if !message.reactions.is_empty() {
        let shown: Vec<String> =
            message.reactions.iter().map(|r| format!("{} {}", terminal_safe(&r.emoji), r.count)).collect();
        parts.push(format!("[{}]", shown.join(", ")));
    }
    if let Some(thread) = message.thread.as_ref().filter(|t| t.reply_count > 0) {
        let replies = if thread.reply_count == 1 { "reply" } else { "replies" };
        parts.push(format!("[thread: {} {replies}, last #{}]", thread.reply_count, thread.last_reply_seq));
    }
    parts.join(" ")
}

/// `renamed the room to ops, set the topic to "..."`.
fn room_update_text(updated: &v1::RoomUpdated) -> String {
    let mut changes = Vec::new();
    if let Some(name) = &updated.name {
        changes.push(format!("renamed the room to #{}", terminal_safe(name)));
    }
    match updated.topic.as_deref() {
        Some("") => changes.push("cleared the topic".to_owned()),
        Some(topic) => changes.push(format!("set the topic to \"{}\"", one_line(topic))),
        None => {}
    }
    match updated.avatar_file_id.as_deref() {
        Some("") => changes.push("removed the room's avatar".to_owned()),
        Some(_) => changes.push("changed the room's avatar".to_owned()),
        None => {}
    }
    match updated.archived {
        Some(true) => changes.push("archived the room".to_owned()),
        Some(false) => changes.push("unarchived the room".to_owned()),
        None => {}
    }
    if changes.is_empty() { "updated the room".to_owned() } else { changes.join(", ") }
}

/// [`terminal_safe`] on one line: line breaks become spaces.
fn one_line(text: &str) -> String {
    terminal_safe(&text.replace(['\n', '\r'], " "))
}

/// Text another user wrote, made harmless for a terminal: control
/// characters (escape sequences) and bidirectional overrides become
/// U+FFFD, and continuation lines are indented so they cannot pass for lines
/// of their own.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\n    "),
            '\t' => out.push(c),
            // Bidirectional overrides and isolates would reorder what follows.
            c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                out.push('\u{fffd}')
            }
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
        assert_eq!(line, "[2026-11-18 12:00:01 #7] #general <alice> hello");
        let mut joined = message(8, "");
        joined.kind = Some(Kind::MemberJoined(v1::MemberJoined {}));
        assert_eq!(event_line("general", &joined, &Utc), "[2026-11-18 12:00:01 #8] #general * alice joined");
        let mut invited = message(9, "");
        invited.kind = Some(Kind::MemberInvited(v1::MemberInvited {
            invitee: Some(v1::User { name: "bob".into(), ..Default::default() }),
        }));
        assert!(event_line("general", &invited, &Utc).ends_with("* alice invited bob"));
    }

    fn user(name: &str) -> Option<v1::User> {
        Some(v1::User { user_id: 6, name: name.into(), ..Default::default() })
    }

    #[test]
    fn conversation_events_read_as_chat_lines() {
        let line = |kind| {
            let mut event = message(9, "");
            event.kind = Some(kind);
            event_line("general", &event, &Utc).split_once("] ").unwrap().1.to_owned()
        };
        assert_eq!(
            line(Kind::MessageEdited(v1::MessageEdited { target_seq: 7, text: "fixed".into(), ..Default::default() })),
            "#general * alice edited #7: fixed"
        );
        assert_eq!(line(Kind::MessageDeleted(v1::MessageDeleted { target_seq: 7 })), "#general * alice deleted #7");
        assert_eq!(
            line(Kind::ReactionAdded(v1::ReactionAdded { target_seq: 7, emoji: "👍".into() })),
            "#general * alice reacted 👍 to #7"
        );
        assert_eq!(
            line(Kind::ReactionRemoved(v1::ReactionRemoved { target_seq: 7, emoji: "👍".into() })),
            "#general * alice took back 👍 from #7"
        );
        assert_eq!(
            line(Kind::RoomUpdated(v1::RoomUpdated {
                topic: Some("news\x07".into()),
                archived: Some(true),
                ..Default::default()
            })),
            "#general * alice set the topic to \"news\u{fffd}\", archived the room"
        );

        let rich = v1::Message {
            text: "see this".into(),
            reply_to: Some(v1::ReplyTo { seq: 3, sender: user("bob"), quote: "first\nline…".into(), deleted: false }),
            thread_root_seq: 2,
            attachments: vec![v1::FileInfo {
                file_id: "ab".repeat(16),
                name: "cat.png".into(),
                content_type: "image/png".into(),
                size: 2048,
                ..Default::default()
            }],
            location: Some(v1::Location { latitude: 48.85, longitude: 2.35, label: "Paris".into() }),
            edited_at_ms: 1,
            reactions: vec![v1::Reaction { emoji: "🎉".into(), count: 2, users: vec![] }],
            thread: Some(v1::ThreadSummary { reply_count: 3, last_reply_seq: 12, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(
            line(Kind::Message(rich)),
            format!(
                "#general <alice> (in thread #2) (reply to bob #3: \"first line…\") see this \
                 [file {}: cat.png, image/png, 2.0 KiB] [location Paris 48.85000, 2.35000] (edited) [🎉 2] \
                 [thread: 3 replies, last #12]",
                "ab".repeat(16)
            )
        );
        let deleted = v1::Message {
            deleted: Some(v1::Deletion { by: user("bob"), at_ms: 5 }),
            reply_to: Some(v1::ReplyTo { seq: 3, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(line(Kind::Message(deleted)), "#general <alice> (message deleted by bob)");
        let gone_target = v1::Message {
            text: "yes".into(),
            reply_to: Some(v1::ReplyTo { seq: 3, sender: user("bob"), quote: String::new(), deleted: true }),
            ..Default::default()
        };
        assert_eq!(line(Kind::Message(gone_target)), "#general <alice> (reply to bob #3: deleted) yes");
    }

    #[test]
    fn conversation_events_as_json_objects() {
        let mut event = message(9, "hi @bob");
        if let Some(Kind::Message(message)) = &mut event.kind {
            message.mentions = vec![user("bob").unwrap()];
            message.reply_to = Some(v1::ReplyTo { seq: 3, sender: user("bob"), quote: "q".into(), deleted: false });
            message.reactions =
                vec![v1::Reaction { emoji: "👍".into(), count: 1, users: vec![user("bob").unwrap()] }];
        }
        let value = event_json("general", &event);
        assert_eq!(value["mentions"], json!(["bob"]));
        assert_eq!(value["reply_to"], json!({ "seq": 3, "sender": "bob", "quote": "q", "deleted": false }));
        assert_eq!(value["reactions"][0], json!({ "emoji": "👍", "count": 1, "users": ["bob"] }));
        assert_eq!((value["edited"].as_bool(), value["deleted"].as_bool()), (Some(false), Some(false)));
        assert_eq!(value["thread_root_seq"], Value::Null);
        event.kind = Some(Kind::ReactionAdded(v1::ReactionAdded { target_seq: 3, emoji: "👍".into() }));
        let value = event_json("general", &event);
        assert_eq!((value["kind"].as_str(), value["target_seq"].as_u64()), (Some("reaction_added"), Some(3)));
        assert_eq!(size_text(1), "1 byte");
        assert_eq!(size_text(3 << 20), "3.0 MiB");
    }

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        let line = event_line("g", &message(1, "hi\x1b[2J\nfake line\r"), &Utc);
        assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
        assert!(line.contains("\n    fake line"), "{line:?}");
        let line = event_line("g", &message(1, "\u{202e}txt.exe"), &Utc);
        assert!(!line.contains('\u{202e}'), "{line:?}");
        // Emoji sequences keep their joiners.
        assert_eq!(terminal_safe("🏳️‍🌈"), "🏳️‍🌈");
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
        assert_eq!(event_line("@bob", &message(1, "hi"), &Utc), "[2026-11-18 12:00:01 #1] @bob <alice> hi");
        assert_eq!(shown("general"), "#general");
    }

    #[test]
    fn room_settings_and_notification_levels_read_plainly() {
        let mut room = v1::RoomInfo {
            room_id: 4,
            name: "news".into(),
            kind: v1::RoomKind::Public as i32,
            membership: v1::Membership::Joined as i32,
            ..Default::default()
        };
        assert_eq!(room_settings_text(&room), "  no topic");
        assert_eq!(notification_level_text(&room), "the default (only messages that mention you)");
        room.topic = "today\nand\x1b[2Jtomorrow".into();
        room.archived = true;
        room.avatar_file_id = "ab".repeat(16);
        room.notification_level = v1::NotificationLevel::NotifyNone as i32;
        assert_eq!(
            room_settings_text(&room),
            format!(
                "  topic: today and\u{fffd}[2Jtomorrow\n  avatar: file {}\n  archived: read-only until unarchived",
                "ab".repeat(16)
            )
        );
        assert_eq!(notification_level_text(&room), "none (unread counts still move)");
        let value = room_json(&room);
        assert_eq!((value["notifications"].as_str(), value["archived"].as_bool()), (Some("none"), Some(true)));
        room.kind = v1::RoomKind::Direct as i32;
        room.notification_level = v1::NotificationLevel::NotifyDefault as i32;
        assert_eq!(notification_level_text(&room), "the default (every message)");
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
        let mut general = room(1, "general", v1::RoomKind::Public, 12);
        general.unread_count = 4;
        general.mention_count = 1;
        general.topic = "all things\x1b[31m, and\nmore".into();
        let mut invited = room(22, "ops", v1::RoomKind::Private, 3);
        invited.membership = v1::Membership::Invited as i32;
        invited.archived = true;
        let table = rooms_table(&[general, invited]);
        assert_eq!(
            table,
            "ROOM      KIND     MEMBERS  MEMBERSHIP  UNREAD  MENTIONS  ID  TOPIC\n\
             #general  public   12       joined      4       1         1   all things\u{fffd}[31m, and more\n\
             #ops      private  3        invited     -       -         22  (archived)\n"
        );
    }
}
