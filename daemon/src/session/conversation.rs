//! Changing messages: EditMessage, DeleteMessage and React; reading threads
//! with GetThread.

use confab_protocol::v1::{self, ErrorCode, server_frame::Body};

use super::{
    Reply, Session, internal,
    messages::{direction, trim_page},
    rate_limited,
};
use crate::{
    context::check,
    convert,
    ids::Seq,
    store::{EventKind, WriteOp},
};

impl Session {
    pub(super) async fn edit_message(&mut self, edit: v1::EditMessage) -> Reply {
        let op = self.check_text_length(&edit.text).and_then(|()| {
            let (user, room) = self.message_target(edit.room.as_ref())?;
            let mentions = self.mentions(&edit.text);
            Ok(WriteOp::Edit {
                user,
                room,
                seq: edit.seq,
                text: edit.text,
                mention_names: mentions.names,
                mention_guests: mentions.guests,
                mentions_room: mentions.room,
            })
        });
        self.submit_checked(op).await
    }

    pub(super) async fn delete_message(&mut self, delete: v1::DeleteMessage) -> Reply {
        let op = self.message_target(delete.room.as_ref()).map(|(user, room)| WriteOp::Delete {
            user,
            room,
            seq: delete.seq,
        });
        self.submit_checked(op).await
    }

    pub(super) async fn react(&mut self, react: v1::React) -> Reply {
        // One emoji, as the Unicode emoji list has it (skin tones and ZWJ
        // sequences included).
        let op = if emojis::get(&react.emoji).is_none() {
            let mut shown: String = react.emoji.chars().take(16).collect();
            if shown.len() < react.emoji.len() {
                shown.push('…');
            }
            Err(v1::Error::new(ErrorCode::InvalidArgument, format!("{shown:?} is not an emoji")))
        } else {
            self.message_target(react.room.as_ref()).map(|(user, room)| WriteOp::React {
                user,
                room,
                seq: react.seq,
                emoji: react.emoji,
                remove: react.remove,
            })
        };
        self.submit_checked(op).await
    }

    pub(super) fn get_thread(&mut self, get: v1::GetThread) -> Result<Body, v1::Error> {
        let room = self.readable_room(get.room.as_ref())?;
        let limit = self.page_limit(get.limit)?;
        let backward = direction(get.direction)?;
        let store = &self.ctx.store;
        let root = match store.event(room.id, get.root_seq).map_err(internal)? {
            Some(record) if matches!(record.kind, Some(EventKind::Message(_))) => record,
            Some(_) => {
                let why = format!("the thread root: event #{} is not a message", get.root_seq);
                return Err(v1::Error::new(ErrorCode::MessageNotFound, why));
            }
            None => {
                let why = format!("the thread root: there is no event #{} in this room", get.root_seq);
                return Err(v1::Error::new(ErrorCode::MessageNotFound, why));
            }
        };
        let events = if backward {
            let before = if get.anchor_seq == 0 { u64::MAX } else { get.anchor_seq };
            if before <= 1 {
                Vec::new()
            } else {
                store
                    .thread_events(room.id, get.root_seq, Seq(1), Seq(before - 1), limit + 1, true)
                    .map_err(internal)?
            }
        } else {
            let after = get.anchor_seq.saturating_add(1);
            store.thread_events(room.id, get.root_seq, Seq(after), Seq(u64::MAX), limit + 1, false).map_err(internal)?
        };
        let (events, has_more) = trim_page(events, limit, backward);
        let mut lookup = convert::UserLookup::new(store);
        let (events, has_more) = self.page(&mut lookup, &room, events, has_more, backward)?;
        let thread_root = lookup.event(room.id.0, room.record.epoch, get.root_seq, &root).map_err(internal)?;
        Ok(Body::History(v1::HistoryPage {
            room_id: room.id.0,
            epoch: room.record.epoch,
            events,
            has_more,
            head_seq: room.record.head_seq,
            thread_root: Some(thread_root),
        }))
    }

    /// The caller and the room of an edit, deletion or reaction, once the
    /// room is visible and the edit rate allows it. (Membership, the
    /// message and the archive are the writer's to check.)
    fn message_target(
        &self,
        room: Option<&v1::RoomRef>,
    ) -> Result<(crate::ids::UserId, crate::ids::RoomId), v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(room)?;
        check(&self.ctx.limiters.edits, &identity.user)
            .map_err(|wait| rate_limited(wait, "edits, deletions and reactions"))?;
        Ok((identity.user, room.id))
    }

    async fn submit_checked(&self, op: Result<WriteOp, v1::Error>) -> Reply {
        match op {
            Ok(op) => self.submit_sent(op).await,
            Err(error) => Reply::Now(Err(error)),
        }
    }
}
