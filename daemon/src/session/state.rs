//! Per-user state around the log: read markers, receipts, notification
//! levels, typing and presence.

use confab_protocol::v1::{self, ErrorCode, server_frame::Body};

use super::{
    Reply, Session,
    account::{refusal, unexpected},
    internal, invalid, rate_limited,
};
use crate::{
    context::check,
    convert,
    store::{OpOutput, ProfileChanges, Refusal, RoomKind, StoreError, WriteOp},
};

/// Longest status text, in bytes.
pub(crate) const MAX_STATUS_BYTES: usize = 140;

/// Checks a status text: short, one line, no control characters.
pub(crate) fn check_status_text(text: &str) -> Result<(), v1::Error> {
    if text.len() > MAX_STATUS_BYTES {
        return Err(v1::Error::new(
            ErrorCode::InvalidArgument,
            format!("status_text is {} bytes; the limit is {MAX_STATUS_BYTES}", text.len()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(v1::Error::new(ErrorCode::InvalidArgument, "status_text must not contain control characters"));
    }
    Ok(())
}

impl Session {
    pub(super) async fn set_notification_level(
        &mut self,
        command: v1::SetNotificationLevel,
    ) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let level = v1::NotificationLevel::try_from(command.level)
            .map(convert::stored_notification_level)
            .map_err(|_| invalid("level must be NOTIFY_DEFAULT, NOTIFY_ALL, NOTIFY_MENTIONS or NOTIFY_NONE"))?;
        let room = self.visible_room(command.room.as_ref())?;
        check(&self.ctx.limiters.lookups, &identity.user).map_err(|wait| rate_limited(wait, "settings changes"))?;
        let op = WriteOp::SetNotificationLevel { user: identity.user, room: room.id, level };
        match self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)? {
            OpOutput::Room { room } => Ok(Body::Room(self.room_info(room)?)),
            other => Err(unexpected(other)),
        }
    }

    /// Queues a MarkRead or MarkDelivered after the checks every marker
    /// takes; answers once it is durable.
    async fn move_marker(
        &mut self,
        room: Option<v1::RoomRef>,
        op: impl FnOnce(crate::ids::RoomId) -> WriteOp,
    ) -> Reply {
        let prepared = self.identity().and_then(|identity| {
            let room = self.visible_room(room.as_ref())?;
            check(&self.ctx.limiters.receipts, &identity.user).map_err(|wait| rate_limited(wait, "receipts"))?;
            Ok(op(room.id))
        });
        let op = match prepared {
            Ok(op) => op,
            Err(error) => return Reply::Now(Err(error)),
        };
        match self.ctx.writer.submit(op).await {
            Ok(answer) => Reply::Later(Box::pin(async move {
                let result = answer.await.map_err(|_| StoreError::Closed).and_then(|r| r);
                match result.map_err(internal)?.map_err(refusal)? {
                    OpOutput::ReadState { room, read_seq, unread, mentions } => Ok(Body::ReadState(v1::ReadState {
                        room_id: room.0,
                        read_seq,
                        unread_count: unread,
                        mention_count: mentions,
                    })),
                    OpOutput::Done => Ok(Body::Done(v1::Done {})),
                    other => Err(unexpected(other)),
                }
            })),
            Err(error) => Reply::Now(Err(internal(error))),
        }
    }

    pub(super) async fn mark_read(&mut self, command: v1::MarkRead) -> Reply {
        let Some(user) = self.identity.as_ref().map(|i| i.user) else {
            return Reply::Now(Err(v1::Error::new(ErrorCode::WrongState, "log in first")));
        };
        let (origin, seq) = (self.id, command.seq);
        self.move_marker(command.room, |room| WriteOp::MarkRead { origin, user, room, seq }).await
    }

    pub(super) async fn mark_delivered(&mut self, command: v1::MarkDelivered) -> Reply {
        let Some(user) = self.identity.as_ref().map(|i| i.user) else {
            return Reply::Now(Err(v1::Error::new(ErrorCode::WrongState, "log in first")));
        };
        let (origin, seq) = (self.id, command.seq);
        self.move_marker(command.room, |room| WriteOp::MarkDelivered { origin, user, room, seq }).await
    }

    /// Lists a room's receipts: at most `[presence] max_room_members`, the
    /// most recently updated (newest first), so a reply stays well within
    /// the outbound queue however large the room.
    pub(super) fn get_receipts(&mut self, command: v1::GetReceipts) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(command.room.as_ref())?;
        if room.record.kind() != RoomKind::Public && !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room to read its receipts"));
        }
        check(&self.ctx.limiters.lookups, &identity.user).map_err(|wait| rate_limited(wait, "receipt lookups"))?;
        let store = &self.ctx.store;
        let mut lookup = convert::UserLookup::new(store);
        let mut receipts = Vec::new();
        let limit = self.ctx.config.presence.max_room_members as usize;
        for (user, state) in store.receipts(room.id, limit).map_err(internal)? {
            receipts.push(v1::Receipt {
                room_id: room.id.0,
                user: Some(convert::user(&lookup.get(user.0).map_err(internal)?)),
                delivered_seq: state.delivered_seq,
                read_seq: state.read_seq,
                updated_at_ms: state.updated_at_ms,
            });
        }
        Ok(Body::Receipts(v1::ReceiptList { room_id: room.id.0, receipts }))
    }

    pub(super) fn set_typing(&mut self, command: v1::SetTyping) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(command.room.as_ref())?;
        if !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room first"));
        }
        if room.record.archived {
            return Err(v1::Error::new(ErrorCode::RoomArchived, Refusal::RoomArchived.to_string()));
        }
        check(&self.ctx.limiters.typing, &identity.user).map_err(|wait| rate_limited(wait, "typing notices"))?;
        let me = convert::UserLookup::new(&self.ctx.store).get(identity.user.0).map_err(internal)?;
        let expiry = self.ctx.config.presence.typing_expiry_ms;
        self.ctx.hub.typing(room.id, convert::user(&me), command.typing, expiry);
        Ok(Body::Done(v1::Done {}))
    }

    pub(super) async fn set_presence(&mut self, command: v1::SetPresence) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let away = match v1::PresenceState::try_from(command.state) {
            Ok(v1::PresenceState::Online) => false,
            Ok(v1::PresenceState::Away) => true,
            _ => return Err(v1::Error::new(ErrorCode::InvalidArgument, "state must be ONLINE or AWAY")),
        };
        if let Some(text) = &command.status_text {
            check_status_text(text)?;
        }
        check(&self.ctx.limiters.receipts, &identity.user).map_err(|wait| rate_limited(wait, "presence changes"))?;
        let before = self.ctx.store.user(identity.user).map_err(internal)?.unwrap_or_default();
        let status_changed = command.status_text.as_ref().is_some_and(|text| *text != before.status_text);
        let mut changes = ProfileChanges { status_text: command.status_text, ..Default::default() };
        if command.this_device_only {
            self.away = away;
            self.ctx.hub.set_device_away(self.id, away);
        } else {
            changes.away = Some(away);
        }
        if changes != ProfileChanges::default() {
            let op = WriteOp::SetProfile { user: identity.user, changes };
            self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)?;
        }
        let max_members = self.ctx.config.presence.max_room_members;
        self.ctx.hub.refresh_presence(identity.user, max_members, status_changed).map_err(internal)?;
        Ok(Body::Done(v1::Done {}))
    }
}
