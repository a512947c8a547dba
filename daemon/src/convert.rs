//! Conversions from store records to wire types, at the edge.

use confab_protocol::v1;

use crate::store::{self, AppendedEvent, EventKind, UserSummary};

pub fn user(summary: &UserSummary) -> v1::User {
    v1::User { user_id: summary.id.0, name: summary.name.clone(), guest: summary.guest, ..Default::default() }
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

pub fn membership(record: &store::MembershipRecord) -> v1::Membership {
    if record.is_joined() { v1::Membership::Joined } else { v1::Membership::Invited }
}

/// A log entry as clients see it. `lookup` names the users it mentions.
pub fn room_event(
    room: u64,
    epoch: u64,
    seq: u64,
    record: &store::EventRecord,
    sender: &UserSummary,
    invitee: Option<&UserSummary>,
) -> v1::RoomEvent {
    use v1::room_event::Kind;
    let kind = record.kind.as_ref().map(|kind| match kind {
        EventKind::RoomCreated(created) => Kind::RoomCreated(v1::RoomCreated {
            name: created.name.clone(),
            kind: room_kind(store::RoomKind::try_from(created.kind).unwrap_or(store::RoomKind::Private)) as i32,
        }),
        EventKind::MemberJoined(_) => Kind::MemberJoined(v1::MemberJoined {}),
        EventKind::MemberLeft(_) => Kind::MemberLeft(v1::MemberLeft {}),
        EventKind::MemberInvited(_) => Kind::MemberInvited(v1::MemberInvited { invitee: invitee.map(user) }),
        EventKind::Message(body) => Kind::Message(v1::Message {
            text: body.text.clone(),
            client_txn_id: body.client_txn_id.clone(),
            ..Default::default()
        }),
        // TODO(messages helper): the new kinds.
        _ => Kind::MemberJoined(v1::MemberJoined {}),
    });
    v1::RoomEvent { room_id: room, epoch, seq, server_time_ms: record.time_ms, sender: Some(user(sender)), kind }
}

/// An event fresh from the writer.
pub fn appended(event: &AppendedEvent) -> v1::RoomEvent {
    room_event(event.room.0, event.epoch, event.seq, &event.record, &event.sender, event.invitee.as_ref())
}

/// Resolves user ids to summaries through the store, remembering answers.
pub struct UserLookup<'a> {
    store: &'a store::Store,
    known: std::collections::HashMap<u64, UserSummary>,
}

impl<'a> UserLookup<'a> {
    pub fn new(store: &'a store::Store) -> Self {
        Self { store, known: Default::default() }
    }

    pub fn get(&mut self, id: u64) -> Result<UserSummary, store::StoreError> {
        if let Some(found) = self.known.get(&id) {
            return Ok(found.clone());
        }
        let record = self.store.user(crate::ids::UserId(id))?.unwrap_or_default();
        let summary = UserSummary { id: crate::ids::UserId(id), guest: record.is_guest(), name: record.name };
        self.known.insert(id, summary.clone());
        Ok(summary)
    }

    /// A stored event as clients see it.
    pub fn event(
        &mut self,
        room: u64,
        epoch: u64,
        seq: u64,
        record: &store::EventRecord,
    ) -> Result<v1::RoomEvent, store::StoreError> {
        let sender = self.get(record.sender)?;
        let invitee = match &record.kind {
            Some(EventKind::MemberInvited(invited)) => Some(self.get(invited.invitee)?),
            _ => None,
        };
        Ok(room_event(room, epoch, seq, record, &sender, invitee.as_ref()))
    }
}
