//! Conversions from store records to wire types, at the edge.
//!
//! An event names users, files and (a reply) another message by id; a
//! [`Names`] holds them resolved. Live events come with theirs from the
//! writer ([`appended`]); stored ones are resolved through the store by a
//! [`UserLookup`], which shows messages in their current state.

use std::collections::HashMap;

use confab_protocol::v1;

use crate::{
    ids::UserId,
    store::{self, AppendedEvent, EventKind, FileRecord, MessageBody, UserSummary},
};

/// Longest reply quote, in characters (before the "…").
pub const QUOTE_CHARS: usize = 140;
/// Most users a message shows per reaction (`Reaction.users`, the first to
/// react) and among its thread's participants (`ThreadSummary.participants`,
/// the first to reply). The store keeps them all; `Reaction.count` and
/// `ThreadSummary.reply_count` stay exact.
pub const MAX_LISTED_USERS: usize = 50;

pub fn user(summary: &UserSummary) -> v1::User {
    v1::User {
        user_id: summary.id.0,
        name: summary.name.clone(),
        guest: summary.guest,
        display_name: summary.display_name.clone(),
        avatar_file_id: summary.avatar_file_id.clone(),
    }
}

pub fn room_kind(kind: store::RoomKind) -> v1::RoomKind {
    match kind {
        store::RoomKind::Public => v1::RoomKind::Public,
        store::RoomKind::Private => v1::RoomKind::Private,
        store::RoomKind::Direct => v1::RoomKind::Direct,
    }
}

pub fn role(role: i32) -> v1::Role {
    match store::Role::try_from(role) {
        Ok(store::Role::Owner) => v1::Role::Owner,
        Ok(store::Role::Admin) => v1::Role::Admin,
        Ok(store::Role::Moderator) => v1::Role::Moderator,
        _ => v1::Role::Member,
    }
}

pub fn notification_level(level: store::NotificationLevel) -> v1::NotificationLevel {
    match level {
        store::NotificationLevel::Default => v1::NotificationLevel::NotifyDefault,
        store::NotificationLevel::All => v1::NotificationLevel::NotifyAll,
        store::NotificationLevel::Mentions => v1::NotificationLevel::NotifyMentions,
        store::NotificationLevel::None => v1::NotificationLevel::NotifyNone,
    }
}

pub fn stored_notification_level(level: v1::NotificationLevel) -> store::NotificationLevel {
    match level {
        v1::NotificationLevel::NotifyDefault => store::NotificationLevel::Default,
        v1::NotificationLevel::NotifyAll => store::NotificationLevel::All,
        v1::NotificationLevel::NotifyMentions => store::NotificationLevel::Mentions,
        v1::NotificationLevel::NotifyNone => store::NotificationLevel::None,
    }
}

pub fn membership(record: &store::MembershipRecord) -> v1::Membership {
    if record.is_joined() { v1::Membership::Joined } else { v1::Membership::Invited }
}

/// A file's description; `owner` as resolved by the caller.
pub fn file_info(id: &str, record: &FileRecord, owner: Option<v1::User>) -> v1::FileInfo {
    v1::FileInfo {
        file_id: id.to_owned(),
        name: record.name.clone(),
        content_type: record.content_type.clone(),
        size: record.size,
        width: record.width,
        height: record.height,
        thumbnail_file_id: record.thumbnail_id.clone(),
        uploaded_at_ms: record.uploaded_at_ms,
        owner,
        sha256: hex::encode(&record.sha256),
    }
}

/// The first [`QUOTE_CHARS`] characters of `text`, with "…" when shortened.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The message a reply answers, as the reply shows it.
#[derive(Clone, Debug)]
struct Quoted {
    sender: u64,
    /// See [`quote`]; empty once deleted.
    quote: String,
    deleted: bool,
}

/// The users, files and replied-to message an event names, resolved.
#[derive(Default)]
pub struct Names {
    users: HashMap<u64, UserSummary>,
    files: HashMap<String, FileRecord>,
    reply_to: Option<Quoted>,
}

impl Names {
    fn user(&self, id: u64) -> v1::User {
        match self.users.get(&id) {
            Some(summary) => user(summary),
            // Only a damaged store names a user it does not have.
            None => v1::User { user_id: id, ..Default::default() },
        }
    }

    fn users(&self, ids: &[u64]) -> Vec<v1::User> {
        ids.iter().map(|&id| self.user(id)).collect()
    }
}

/// A log entry as clients see it.
pub fn room_event(room: u64, epoch: u64, seq: u64, record: &store::EventRecord, names: &Names) -> v1::RoomEvent {
    use v1::room_event::Kind;
    let kind = record.kind.as_ref().map(|kind| match kind {
        EventKind::RoomCreated(created) => Kind::RoomCreated(v1::RoomCreated {
            name: created.name.clone(),
            kind: room_kind(store::RoomKind::try_from(created.kind).unwrap_or(store::RoomKind::Private)) as i32,
        }),
        EventKind::MemberJoined(_) => Kind::MemberJoined(v1::MemberJoined {}),
        EventKind::MemberLeft(_) => Kind::MemberLeft(v1::MemberLeft {}),
        EventKind::MemberInvited(invited) => {
            Kind::MemberInvited(v1::MemberInvited { invitee: Some(names.user(invited.invitee)) })
        }
        EventKind::Message(body) => Kind::Message(message(body, names)),
        EventKind::MessageEdited(edited) => Kind::MessageEdited(v1::MessageEdited {
            target_seq: edited.target_seq,
            text: edited.text.clone(),
            mentions: names.users(&edited.mentions),
            mentions_room: edited.mentions_room,
        }),
        EventKind::MessageDeleted(target) => Kind::MessageDeleted(v1::MessageDeleted { target_seq: target.target_seq }),
        EventKind::ReactionAdded(change) => {
            Kind::ReactionAdded(v1::ReactionAdded { target_seq: change.target_seq, emoji: change.emoji.clone() })
        }
        EventKind::ReactionRemoved(change) => {
            Kind::ReactionRemoved(v1::ReactionRemoved { target_seq: change.target_seq, emoji: change.emoji.clone() })
        }
        EventKind::RoomUpdated(updated) => Kind::RoomUpdated(v1::RoomUpdated {
            name: updated.name.clone(),
            topic: updated.topic.clone(),
            avatar_file_id: updated.avatar_file_id.clone(),
            archived: updated.archived,
        }),
    });
    v1::RoomEvent {
        room_id: room,
        epoch,
        seq,
        server_time_ms: record.time_ms,
        sender: Some(names.user(record.sender)),
        kind,
    }
}

/// A message in the state `body` holds (as sent, or current).
fn message(body: &MessageBody, names: &Names) -> v1::Message {
    let reply_to = (body.reply_to_seq != 0).then(|| match &names.reply_to {
        Some(target) => v1::ReplyTo {
            seq: body.reply_to_seq,
            sender: Some(names.user(target.sender)),
            quote: target.quote.clone(),
            deleted: target.deleted,
        },
        None => v1::ReplyTo { seq: body.reply_to_seq, sender: None, quote: String::new(), deleted: true },
    });
    v1::Message {
        text: body.text.clone(),
        client_txn_id: body.client_txn_id.clone(),
        reply_to,
        thread_root_seq: body.thread_root_seq,
        mentions: names.users(&body.mentions),
        mentions_room: body.mentions_room,
        attachments: body
            .attachment_ids
            .iter()
            .filter_map(|id| names.files.get(id).map(|file| file_info(id, file, Some(names.user(file.owner)))))
            .collect(),
        location: body.location.as_ref().map(|location| v1::Location {
            latitude: location.latitude,
            longitude: location.longitude,
            label: location.label.clone(),
        }),
        edited_at_ms: body.edited_at_ms,
        deleted: (body.deleted_at_ms != 0)
            .then(|| v1::Deletion { by: Some(names.user(body.deleted_by)), at_ms: body.deleted_at_ms }),
        reactions: body
            .reactions
            .iter()
            .map(|reaction| v1::Reaction {
                emoji: reaction.emoji.clone(),
                count: u32::try_from(reaction.users.len()).unwrap_or(u32::MAX),
                users: names.users(listed(&reaction.users)),
            })
            .collect(),
        thread: body.thread.as_ref().map(|thread| v1::ThreadSummary {
            reply_count: thread.reply_count,
            last_reply_seq: thread.last_reply_seq,
            last_reply_at_ms: thread.last_reply_at_ms,
            participants: names.users(listed(&thread.participants)),
        }),
    }
}

/// The users of a reaction or thread that a message lists.
fn listed(users: &[u64]) -> &[u64] {
    &users[..users.len().min(MAX_LISTED_USERS)]
}

/// An event fresh from the writer, as it was appended.
pub fn appended(event: &AppendedEvent) -> v1::RoomEvent {
    let mut names = Names::default();
    names.users.insert(event.sender.id.0, event.sender.clone());
    for summary in &event.named.users {
        names.users.insert(summary.id.0, summary.clone());
    }
    names.files.extend(event.named.files.iter().cloned());
    if let Some(target) = &event.named.reply_to {
        names.users.insert(target.sender.id.0, target.sender.clone());
        names.reply_to =
            Some(Quoted { sender: target.sender.id.0, quote: target.quote.clone(), deleted: target.deleted });
    }
    room_event(event.room.0, event.epoch, event.seq, &event.record, &names)
}

/// Resolves what stored events name through the store, remembering users,
/// files and replied-to messages across the events of one page or replay.
pub struct UserLookup<'a> {
    store: &'a store::Store,
    known: HashMap<u64, UserSummary>,
    files: HashMap<String, Option<FileRecord>>,
    /// Replied-to messages by (room, seq); None: not a message.
    replies: HashMap<(u64, u64), Option<Quoted>>,
}

impl<'a> UserLookup<'a> {
    pub fn new(store: &'a store::Store) -> Self {
        Self { store, known: Default::default(), files: Default::default(), replies: Default::default() }
    }

    pub fn get(&mut self, id: u64) -> Result<UserSummary, store::StoreError> {
        if let Some(found) = self.known.get(&id) {
            return Ok(found.clone());
        }
        let record = self.store.user(UserId(id))?.unwrap_or_default();
        let summary = UserSummary::of(UserId(id), &record);
        self.known.insert(id, summary.clone());
        Ok(summary)
    }

    /// A file's record, if it exists.
    pub fn file(&mut self, id: &str) -> Result<Option<FileRecord>, store::StoreError> {
        if let Some(found) = self.files.get(id) {
            return Ok(found.clone());
        }
        let record = self.store.file(id)?;
        self.files.insert(id.to_owned(), record.clone());
        Ok(record)
    }

    /// The message at `seq` of `room` as a reply shows it.
    fn reply_target(&mut self, room: u64, seq: u64) -> Result<Option<Quoted>, store::StoreError> {
        if let Some(found) = self.replies.get(&(room, seq)) {
            return Ok(found.clone());
        }
        let target = self.store.message(crate::ids::RoomId(room), seq)?.map(|(sender, body)| {
            let deleted = body.deleted_at_ms != 0;
            Quoted { sender, quote: if deleted { String::new() } else { quote(&body.text) }, deleted }
        });
        self.replies.insert((room, seq), target.clone());
        Ok(target)
    }

    /// A stored event as clients see it; a message in its current state.
    pub fn event(
        &mut self,
        room: u64,
        epoch: u64,
        seq: u64,
        record: &store::EventRecord,
    ) -> Result<v1::RoomEvent, store::StoreError> {
        let mut names = Names::default();
        let mut users = vec![record.sender];
        match &record.kind {
            Some(EventKind::MemberInvited(invited)) => users.push(invited.invitee),
            Some(EventKind::MessageEdited(edited)) => users.extend(&edited.mentions),
            Some(EventKind::Message(body)) => {
                users.extend(&body.mentions);
                users.push(body.deleted_by);
                for reaction in &body.reactions {
                    users.extend(listed(&reaction.users));
                }
                if let Some(thread) = &body.thread {
                    users.extend(listed(&thread.participants));
                }
                for id in &body.attachment_ids {
                    if let Some(file) = self.file(id)? {
                        users.push(file.owner);
                        names.files.insert(id.clone(), file);
                    }
                }
                if body.reply_to_seq != 0
                    && let Some(target) = self.reply_target(room, body.reply_to_seq)?
                {
                    users.push(target.sender);
                    names.reply_to = Some(target);
                }
            }
            _ => {}
        }
        for id in users {
            if id != 0 && !names.users.contains_key(&id) {
                names.users.insert(id, self.get(id)?);
            }
        }
        Ok(room_event(room, epoch, seq, record, &names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut_at_a_character_boundary() {
        assert_eq!(quote("short"), "short");
        let exact = "é".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), exact);
        let long = format!("{exact}ü and more");
        assert_eq!(quote(&long), format!("{exact}…"));
        assert_eq!(quote(""), "");
    }

    #[test]
    fn reactions_and_threads_list_at_most_so_many_users_but_count_them_all() {
        let many: Vec<u64> = (1..=MAX_LISTED_USERS as u64 + 10).collect();
        let body = MessageBody {
            text: "popular".into(),
            reactions: vec![
                store::ReactionRecord { emoji: "👍".into(), users: many.clone() },
                store::ReactionRecord { emoji: "🎉".into(), users: vec![3, 1] },
            ],
            thread: Some(store::ThreadRecord {
                reply_count: 500,
                last_reply_seq: 9,
                last_reply_at_ms: 1,
                participants: many.clone(),
            }),
            ..Default::default()
        };
        let shown = message(&body, &Names::default());
        let ids = |users: &[v1::User]| users.iter().map(|u| u.user_id).collect::<Vec<_>>();
        assert_eq!(shown.reactions[0].count, many.len() as u32);
        assert_eq!(ids(&shown.reactions[0].users), many[..MAX_LISTED_USERS], "the first to react");
        assert_eq!((shown.reactions[1].count, ids(&shown.reactions[1].users)), (2, vec![3, 1]));
        let thread = shown.thread.expect("thread");
        assert_eq!(thread.reply_count, 500);
        assert_eq!(ids(&thread.participants), many[..MAX_LISTED_USERS], "the first to reply");
    }
}
