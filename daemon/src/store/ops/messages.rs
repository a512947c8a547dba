//! Message operations: send (with replies, threads, mentions, attachments
//! and locations), edit, delete and react. Each keeps the message in its
//! current state at its (room, seq) and appends the event that says what
//! changed.

use redb::{ReadableTable as _, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{OpOutput, OpResult, Refusal, membership, outsider, room_record};
use crate::{
    ids::{RoomId, UserId},
    store::{StoreError, records::*, tables::*, writer::Batch},
};

/// Rooms with more joined members than this refuse `@room`.
pub const MAX_ROOM_MENTION_MEMBERS: u32 = 1000;
/// Most distinct emojis on one message.
pub const MAX_REACTION_EMOJIS: usize = 20;

/// What a SendMessage asks to append, checked for shape by the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageContent {
    pub text: String,
    pub reply_to_seq: u64,
    pub thread_root_seq: u64,
    /// The names the text mentions with `@name` (lowercase, deduplicated);
    /// the operation keeps those that are members of the room.
    pub mention_names: Vec<String>,
    /// Connected guests holding some of those names (guests have no entry
    /// in USER_NAMES; the session knows them).
    pub mention_guests: Vec<UserId>,
    pub mentions_room: bool,
    pub attachment_ids: Vec<String>,
    pub location: Option<LocationRecord>,
}

impl MessageContent {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Default::default() }
    }

    /// What a retry must repeat: the SHA-256 of the text alone for a plain
    /// text message (as stored before replies existed), else of the text
    /// and every other part of the content, each part after its own tag
    /// byte and every variable part length- or count-prefixed, so no two
    /// different contents hash the same input.
    fn digest(&self) -> Vec<u8> {
        let plain = self.reply_to_seq == 0
            && self.thread_root_seq == 0
            && self.attachment_ids.is_empty()
            && self.location.is_none();
        if plain {
            return Sha256::digest(self.text.as_bytes()).to_vec();
        }
        let mut hash = Sha256::new();
        hash.update(b"confab message content v1\0");
        let bytes = |hash: &mut Sha256, b: &[u8]| {
            hash.update((b.len() as u64).to_be_bytes());
            hash.update(b);
        };
        hash.update(b"T");
        bytes(&mut hash, self.text.as_bytes());
        hash.update(b"R");
        hash.update(self.reply_to_seq.to_be_bytes());
        hash.update(b"H");
        hash.update(self.thread_root_seq.to_be_bytes());
        hash.update(b"A");
        hash.update((self.attachment_ids.len() as u64).to_be_bytes());
        for id in &self.attachment_ids {
            bytes(&mut hash, id.as_bytes());
        }
        hash.update(b"L");
        match &self.location {
            None => hash.update([0]),
            Some(location) => {
                hash.update([1]);
                hash.update(location.latitude.to_bits().to_be_bytes());
                hash.update(location.longitude.to_bits().to_be_bytes());
                bytes(&mut hash, location.label.as_bytes());
            }
        }
        hash.finalize().to_vec()
    }
}

/// A joined member acting in a room that is not archived.
struct Actor {
    room: RoomRecord,
    role: Role,
}

/// Checks that `user` may append to `room`.
fn actor(txn: &WriteTransaction, room: RoomId, user: UserId) -> Result<Result<Actor, Refusal>, StoreError> {
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let current = membership(&txn.open_table(MEMBERSHIPS)?, room, user)?;
    let Some(current) = current.as_ref().filter(|m| m.is_joined()) else {
        return Ok(Err(outsider(&record, current.as_ref())));
    };
    if record.archived {
        return Ok(Err(Refusal::RoomArchived));
    }
    Ok(Ok(Actor { role: current.role(), room: record }))
}

/// The message at `seq` (sender and body) unless it is missing or deleted.
fn live_message(txn: &WriteTransaction, room: RoomId, seq: u64) -> Result<Option<(u64, MessageBody)>, StoreError> {
    let record = txn.open_table(EVENTS)?.get((room.0, seq))?.map(|v| v.value());
    Ok(match record {
        Some(EventRecord { sender, kind: Some(EventKind::Message(body)), .. }) if body.deleted_at_ms == 0 => {
            Some((sender, body))
        }
        _ => None,
    })
}

/// Why there is no live message at `seq` in `room`, for the refusal: no
/// such event, an event of another kind, or a deleted message. `role` says
/// what the message was wanted as ("the message replied to", ...).
fn missing_message(txn: &WriteTransaction, room: RoomId, seq: u64, role: &str) -> Result<Refusal, StoreError> {
    let record = txn.open_table(EVENTS)?.get((room.0, seq))?.map(|v| v.value());
    let why = match record.and_then(|r| r.kind) {
        None => format!("there is no event #{seq} in this room"),
        Some(EventKind::Message(_)) => format!("message #{seq} was deleted"),
        Some(_) => format!("event #{seq} is not a message"),
    };
    Ok(Refusal::MessageNotFound(format!("{role}: {why}")))
}

/// Replaces the body of the message at `seq` (which exists).
fn store_body(txn: &WriteTransaction, room: RoomId, seq: u64, body: MessageBody) -> Result<(), StoreError> {
    let mut events = txn.open_table(EVENTS)?;
    let record = events.get((room.0, seq))?.map(|v| v.value());
    if let Some(mut record) = record {
        record.kind = Some(EventKind::Message(body));
        events.insert((room.0, seq), record)?;
    }
    Ok(())
}

/// Whether `actor` may mention `@room`, or why not.
fn room_mention_refusal(actor: &Actor) -> Option<Refusal> {
    let open_room = actor.room.kind() != RoomKind::Direct && !actor.room.group;
    if open_room && actor.role < Role::Moderator {
        return Some(Refusal::Forbidden("only moderators and above may mention @room"));
    }
    if actor.room.joined_count > MAX_ROOM_MENTION_MEMBERS {
        return Some(Refusal::Forbidden("@room is not allowed in rooms of more than 1000 members"));
    }
    None
}

/// The joined members of `room` that `names` (registered users) and
/// `guests` designate, in that order, without repeats.
fn resolve_mentions(
    txn: &WriteTransaction,
    room: RoomId,
    names: &[String],
    guests: &[UserId],
) -> Result<Vec<u64>, StoreError> {
    if names.is_empty() && guests.is_empty() {
        return Ok(Vec::new());
    }
    let user_names = txn.open_table(USER_NAMES)?;
    let memberships = txn.open_table(MEMBERSHIPS)?;
    let mut found: Vec<u64> = Vec::new();
    let candidates = names
        .iter()
        .map(|name| Ok(user_names.get(name.as_str())?.map(|v| v.value())))
        .collect::<Result<Vec<_>, StoreError>>()?;
    for user in candidates.into_iter().flatten().chain(guests.iter().map(|g| g.0)) {
        if !found.contains(&user) && membership(&memberships, room, UserId(user))?.is_some_and(|m| m.is_joined()) {
            found.push(user);
        }
    }
    Ok(found)
}

/// The users with a mention row for a message: each mentioned member, and
/// every joined member for `@room`, never the sender.
fn mention_targets(
    txn: &WriteTransaction,
    room: RoomId,
    sender: UserId,
    mentions: &[u64],
    mentions_room: bool,
) -> Result<Vec<u64>, StoreError> {
    let mut targets = mentions.to_vec();
    if mentions_room {
        for entry in txn.open_table(MEMBERSHIPS)?.range((room.0, 0)..=(room.0, u64::MAX))? {
            let (key, member) = entry?;
            if member.value().is_joined() {
                targets.push(key.value().1);
            }
        }
    }
    targets.retain(|&user| user != sender.0);
    Ok(targets)
}

/// Writes the mention rows of the message at `seq` (MENTION-2).
fn write_mentions(
    txn: &WriteTransaction,
    room: RoomId,
    seq: u64,
    sender: UserId,
    mentions: &[u64],
    mentions_room: bool,
) -> Result<(), StoreError> {
    if mentions.is_empty() && !mentions_room {
        return Ok(());
    }
    let mut rows = txn.open_table(MENTIONS)?;
    for user in mention_targets(txn, room, sender, mentions, mentions_room)? {
        rows.insert((user, room.0, seq), ())?;
    }
    Ok(())
}

/// Removes the mention rows `write_mentions` wrote for the same mentions.
fn remove_mentions(
    txn: &WriteTransaction,
    room: RoomId,
    seq: u64,
    sender: UserId,
    mentions: &[u64],
    mentions_room: bool,
) -> Result<(), StoreError> {
    if mentions.is_empty() && !mentions_room {
        return Ok(());
    }
    let mut rows = txn.open_table(MENTIONS)?;
    for user in mention_targets(txn, room, sender, mentions, mentions_room)? {
        rows.remove((user, room.0, seq))?;
    }
    Ok(())
}

pub(super) fn send(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    txn_id: String,
    content: MessageContent,
) -> Result<OpResult, StoreError> {
    let digest = content.digest();
    let claimed = txn.open_table(TXNS)?.get((user.0, txn_id.as_str()))?.map(|v| v.value());
    if let Some(claimed) = claimed {
        // A deleted message's digest is erased with its text (`delete`):
        // any retry of it is then the same send.
        let erased = claimed.text_digest.is_empty();
        if claimed.room_id != room.0 || (!erased && claimed.text_digest != digest) {
            return Ok(Err(Refusal::TxnConflict));
        }
        let epoch = room_record(txn, room)?.map(|r| r.epoch).unwrap_or(1);
        return Ok(Ok(OpOutput::Sent { room, epoch, seq: claimed.seq, time_ms: claimed.time_ms, duplicate: true }));
    }
    let actor = match actor(txn, room, user)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if content.reply_to_seq != 0 && live_message(txn, room, content.reply_to_seq)?.is_none() {
        return Ok(Err(missing_message(txn, room, content.reply_to_seq, "the message replied to")?));
    }
    let mut root = None;
    if content.thread_root_seq != 0 {
        let Some((_, body)) = live_message(txn, room, content.thread_root_seq)? else {
            return Ok(Err(missing_message(txn, room, content.thread_root_seq, "the thread root")?));
        };
        if body.thread_root_seq != 0 {
            return Ok(Err(Refusal::Invalid("threads do not nest: the root is itself in a thread".into())));
        }
        root = Some(body);
    }
    if !content.attachment_ids.is_empty() {
        let files = txn.open_table(FILES)?;
        for id in &content.attachment_ids {
            let file = files.get(id.as_str())?.map(|v| v.value());
            if !file.is_some_and(|f| f.owner == user.0 && f.thumbnail_of.is_empty()) {
                return Ok(Err(Refusal::FileNotFound(format!("no file {id:?} of yours to attach"))));
            }
        }
    }
    if content.mentions_room
        && let Some(refusal) = room_mention_refusal(&actor)
    {
        return Ok(Err(refusal));
    }
    let mentions = resolve_mentions(txn, room, &content.mention_names, &content.mention_guests)?;

    let now = batch.now_ms;
    let body = MessageBody {
        text: content.text,
        client_txn_id: txn_id.clone(),
        reply_to_seq: content.reply_to_seq,
        thread_root_seq: content.thread_root_seq,
        mentions: mentions.clone(),
        mentions_room: content.mentions_room,
        attachment_ids: content.attachment_ids,
        location: content.location,
        ..Default::default()
    };
    let attachments = body.attachment_ids.clone();
    let seq = batch.append(txn, room, user, EventKind::Message(body))?;
    write_mentions(txn, room, seq, user, &mentions, content.mentions_room)?;
    if let Some(mut root) = root {
        txn.open_table(THREAD_MESSAGES)?.insert((room.0, content.thread_root_seq, seq), ())?;
        let thread = root.thread.get_or_insert_with(Default::default);
        thread.reply_count = thread.reply_count.saturating_add(1);
        thread.last_reply_seq = seq;
        thread.last_reply_at_ms = now;
        if !thread.participants.contains(&user.0) {
            thread.participants.push(user.0);
        }
        store_body(txn, room, content.thread_root_seq, root)?;
    }
    if !attachments.is_empty() {
        let mut file_rooms = txn.open_table(FILE_ROOMS)?;
        for id in &attachments {
            file_rooms.insert((id.as_str(), room.0, seq), ())?;
        }
    }
    txn.open_table(TXNS)?
        .insert((user.0, txn_id.as_str()), TxnRecord { room_id: room.0, seq, time_ms: now, text_digest: digest })?;
    // Sending implies having read the room up to one's own message. Nothing
    // is pushed for it: every client of the user applies the same rule when
    // the message event arrives (READ-3).
    let mut read_states = txn.open_table(READ_STATES)?;
    let old = read_states.get((room.0, user.0))?.map(|v| v.value()).unwrap_or_default();
    let record = ReadStateRecord { read_seq: seq, delivered_seq: old.delivered_seq.max(seq), updated_at_ms: now };
    read_states.insert((room.0, user.0), &record)?;
    Ok(Ok(OpOutput::Sent { room, epoch: actor.room.epoch, seq, time_ms: now, duplicate: false }))
}

/// Replaces the text of the message at `seq`. `mention_names`,
/// `mention_guests` and `mentions_room` are what the session parsed from
/// `text`, as for a send.
#[allow(clippy::too_many_arguments)]
pub(super) fn edit(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    seq: u64,
    text: String,
    mention_names: Vec<String>,
    mention_guests: Vec<UserId>,
    mentions_room: bool,
) -> Result<OpResult, StoreError> {
    let actor = match actor(txn, room, user)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some((author, mut body)) = live_message(txn, room, seq)? else {
        return Ok(Err(missing_message(txn, room, seq, "the message")?));
    };
    if author != user.0 {
        return Ok(Err(Refusal::Forbidden("only the author can edit a message")));
    }
    if text.trim().is_empty() && body.attachment_ids.is_empty() && body.location.is_none() {
        return Ok(Err(Refusal::Invalid("text must not be empty".into())));
    }
    if mentions_room && let Some(refusal) = room_mention_refusal(&actor) {
        return Ok(Err(refusal));
    }
    let mentions = resolve_mentions(txn, room, &mention_names, &mention_guests)?;
    let edited = MessageEdited { target_seq: seq, text: text.clone(), mentions: mentions.clone(), mentions_room };
    let edit_seq = batch.append(txn, room, user, EventKind::MessageEdited(edited))?;
    // The rows follow the text: those it no longer mentions lose theirs.
    remove_mentions(txn, room, seq, user, &body.mentions, body.mentions_room)?;
    write_mentions(txn, room, seq, user, &mentions, mentions_room)?;
    body.text = text;
    body.mentions = mentions;
    body.mentions_room = mentions_room;
    body.edited_at_ms = batch.now_ms;
    body.edit_seqs.push(edit_seq);
    store_body(txn, room, seq, body)?;
    Ok(Ok(OpOutput::Sent { room, epoch: actor.room.epoch, seq: edit_seq, time_ms: batch.now_ms, duplicate: false }))
}

pub(super) fn delete(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    seq: u64,
) -> Result<OpResult, StoreError> {
    let actor = match actor(txn, room, user)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some((author, mut body)) = live_message(txn, room, seq)? else {
        return Ok(Err(missing_message(txn, room, seq, "the message")?));
    };
    if author != user.0 {
        // Both participants of a direct conversation are its owners; neither
        // erases what the other said.
        if actor.room.kind() == RoomKind::Direct {
            return Ok(Err(Refusal::Forbidden("in a direct conversation only the author can delete a message")));
        }
        if actor.role < Role::Moderator {
            return Ok(Err(Refusal::Forbidden("only the author or a moderator can delete a message")));
        }
    }
    let deleted_seq = batch.append(txn, room, user, EventKind::MessageDeleted(Target { target_seq: seq }))?;
    // Whoever the message mentions loses the mention row (earlier edits'
    // mentions included, for good measure).
    let mut mentioned = std::mem::take(&mut body.mentions);
    let mut mentioned_room = body.mentions_room;
    {
        let mut events = txn.open_table(EVENTS)?;
        for &edit_seq in &body.edit_seqs {
            let record = events.get((room.0, edit_seq))?.map(|v| v.value());
            if let Some(mut record) = record
                && let Some(EventKind::MessageEdited(edited)) = &mut record.kind
            {
                mentioned.append(&mut edited.mentions);
                mentioned_room |= edited.mentions_room;
                edited.text.clear();
                edited.mentions_room = false;
                events.insert((room.0, edit_seq), record)?;
            }
        }
    }
    remove_mentions(txn, room, seq, UserId(author), &mentioned, mentioned_room)?;
    // Its attachments are no longer shown to the room: they stay the
    // owner's, and visible through other messages they are attached to.
    if !body.attachment_ids.is_empty() {
        let mut file_rooms = txn.open_table(FILE_ROOMS)?;
        for id in &body.attachment_ids {
            file_rooms.remove((id.as_str(), room.0, seq))?;
        }
    }
    // Not even a digest of the text stays: a short text's SHA-256 gives it
    // away.
    if !body.client_txn_id.is_empty() {
        let mut txns = txn.open_table(TXNS)?;
        let claimed = txns.get((author, body.client_txn_id.as_str()))?.map(|v| v.value());
        if let Some(mut claimed) = claimed {
            claimed.text_digest.clear();
            txns.insert((author, body.client_txn_id.as_str()), claimed)?;
        }
    }
    body.text.clear();
    body.mentions_room = false;
    body.attachment_ids.clear();
    body.location = None;
    body.reply_to_seq = 0;
    body.reactions.clear();
    body.deleted_at_ms = batch.now_ms;
    body.deleted_by = user.0;
    store_body(txn, room, seq, body)?;
    Ok(Ok(OpOutput::Sent { room, epoch: actor.room.epoch, seq: deleted_seq, time_ms: batch.now_ms, duplicate: false }))
}

pub(super) fn react(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    seq: u64,
    emoji: String,
    remove: bool,
) -> Result<OpResult, StoreError> {
    let actor = match actor(txn, room, user)? {
        Ok(actor) => actor,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some((_, mut body)) = live_message(txn, room, seq)? else {
        return Ok(Err(missing_message(txn, room, seq, "the message")?));
    };
    let epoch = actor.room.epoch;
    let unchanged = Ok(Ok(OpOutput::Sent { room, epoch, seq: 0, time_ms: batch.now_ms, duplicate: true }));
    let position = body.reactions.iter().position(|r| r.emoji == emoji);
    let change = ReactionChange { target_seq: seq, emoji: emoji.clone() };
    let kind = if remove {
        let Some(index) = position else { return unchanged };
        let reaction = &mut body.reactions[index];
        let Some(at) = reaction.users.iter().position(|&u| u == user.0) else { return unchanged };
        reaction.users.remove(at);
        if reaction.users.is_empty() {
            body.reactions.remove(index);
        }
        EventKind::ReactionRemoved(change)
    } else {
        match position {
            Some(index) if body.reactions[index].users.contains(&user.0) => return unchanged,
            Some(index) => body.reactions[index].users.push(user.0),
            None if body.reactions.len() >= MAX_REACTION_EMOJIS => {
                return Ok(Err(Refusal::Invalid(format!(
                    "a message has at most {MAX_REACTION_EMOJIS} different reactions"
                ))));
            }
            None => body.reactions.push(ReactionRecord { emoji, users: vec![user.0] }),
        }
        EventKind::ReactionAdded(change)
    };
    let event_seq = batch.append(txn, room, user, kind)?;
    store_body(txn, room, seq, body)?;
    Ok(Ok(OpOutput::Sent { room, epoch, seq: event_seq, time_ms: batch.now_ms, duplicate: false }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_digest_is_the_sha256_of_the_text() {
        let content = MessageContent::text("hello");
        assert_eq!(content.digest(), Sha256::digest(b"hello").to_vec());
        // Mentions are read from the text; they do not change the digest.
        let mentioning = MessageContent { mention_names: vec!["bob".into()], ..MessageContent::text("hello") };
        assert_eq!(mentioning.digest(), content.digest());
    }

    #[test]
    fn different_contents_have_different_digests() {
        // Bytes that read both as an attachment id and as a coordinate's bits.
        let bits = |b: &[u8; 8]| f64::from_bits(u64::from_be_bytes(*b));
        let as_attachments = MessageContent {
            attachment_ids: vec!["aaaaaaaa".into(), "bbbbbbbb".into(), "here".into()],
            ..MessageContent::text("x")
        };
        let as_location = MessageContent {
            location: Some(LocationRecord {
                latitude: bits(b"aaaaaaaa"),
                longitude: bits(b"bbbbbbbb"),
                label: "here".into(),
            }),
            ..MessageContent::text("x")
        };
        let reply = MessageContent { reply_to_seq: 7, ..MessageContent::text("x") };
        let thread = MessageContent { thread_root_seq: 7, ..MessageContent::text("x") };
        let split = |ids: &[&str]| MessageContent {
            attachment_ids: ids.iter().map(|id| id.to_string()).collect(),
            ..MessageContent::text("x")
        };
        let empty_label = MessageContent {
            location: Some(LocationRecord { latitude: 1.0, longitude: 2.0, label: String::new() }),
            ..MessageContent::text("x")
        };
        let digests = [
            as_attachments.digest(),
            as_location.digest(),
            reply.digest(),
            thread.digest(),
            split(&["ab", "c"]).digest(),
            split(&["a", "bc"]).digest(),
            split(&["abc"]).digest(),
            empty_label.digest(),
            MessageContent::text("x").digest(),
        ];
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b, "digest {i} aliases another");
            }
        }
    }
}
