//! Room commands: CreateRoom, JoinRoom, LeaveRoom, InviteToRoom, ListRooms,
//! ListMembers, OpenDirect, UpdateRoom.

use confab_protocol::v1::{self, ErrorCode, room_ref::Room, server_frame::Body};

use super::{
    Session,
    account::{refusal, unexpected},
    internal, invalid, rate_limited,
};
use crate::{
    auth::valid_name,
    context::check,
    convert,
    ids::{RoomId, UserId},
    store::{MembershipRecord, MembershipState, OpOutput, RoomChanges, RoomKind, RoomRecord, WriteOp},
};

const MAX_TOPIC_BYTES: usize = RoomRecord::MAX_TOPIC_BYTES;
const MAX_GROUP_MEMBERS: usize = RoomRecord::MAX_GROUP_MEMBERS;
/// Longest directory query, in bytes.
const MAX_QUERY_BYTES: usize = 256;

fn check_topic(topic: &str) -> Result<(), v1::Error> {
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(invalid(format!("topic is {} bytes; the limit is {MAX_TOPIC_BYTES}", topic.len())));
    }
    Ok(())
}

const ROOM_NAME_RULE: &str =
    "room name must be 1 to 32 characters of a-z, 0-9, '_', '.' or '-', starting with a letter";

/// A room the session may see, with its membership there.
pub(crate) struct VisibleRoom {
    pub id: RoomId,
    pub record: RoomRecord,
    pub membership: Option<MembershipRecord>,
}

impl VisibleRoom {
    pub fn joined(&self) -> bool {
        self.membership.as_ref().is_some_and(|m| m.is_joined())
    }
}

fn not_found(room: &v1::RoomRef) -> v1::Error {
    v1::Error::new(ErrorCode::RoomNotFound, format!("no {room} visible to you"))
}

impl Session {
    /// Resolves a room reference. Private and direct rooms exist only for
    /// their members and invitees; to anyone else they are "not found".
    pub(crate) fn visible_room(&self, room: Option<&v1::RoomRef>) -> Result<VisibleRoom, v1::Error> {
        let identity = self.identity()?;
        let Some(room_ref) = room.filter(|r| r.room.is_some()) else {
            return Err(v1::Error::new(ErrorCode::InvalidArgument, "room is required (by id or name)"));
        };
        let store = &self.ctx.store;
        let found = match &room_ref.room {
            Some(Room::Id(id)) => store.room(RoomId(*id)).map_err(internal)?.map(|r| (RoomId(*id), r)),
            Some(Room::Name(name)) => {
                let name = name.strip_prefix('#').unwrap_or(name);
                if valid_name(name) { store.room_by_name(name).map_err(internal)? } else { None }
            }
            None => None,
        };
        let Some((id, record)) = found else {
            return Err(not_found(room_ref));
        };
        let membership = store.membership(id, identity.user).map_err(internal)?;
        if record.kind() != RoomKind::Public && membership.is_none() {
            return Err(not_found(room_ref));
        }
        Ok(VisibleRoom { id, record, membership })
    }

    /// A room as the session sees it.
    pub(crate) fn room_info(&self, id: RoomId) -> Result<v1::RoomInfo, v1::Error> {
        let me = self.identity()?.user;
        let store = &self.ctx.store;
        let record = store
            .room(id)
            .map_err(internal)?
            .ok_or_else(|| v1::Error::new(ErrorCode::RoomNotFound, "the room is gone"))?;
        let membership = store.membership(id, me).map_err(internal)?;
        let peer = if record.kind() == RoomKind::Direct {
            let mut lookup = convert::UserLookup::new(store);
            match store.direct_peer(id, me).map_err(internal)? {
                Some(peer) => Some(convert::user(&lookup.get(peer.0).map_err(internal)?)),
                None => None,
            }
        } else {
            None
        };
        self.info(id, &record, membership.as_ref(), peer)
    }

    /// A room's info for the asking user, with their own position and
    /// settings when they joined it.
    fn info(
        &self,
        id: RoomId,
        record: &RoomRecord,
        membership: Option<&MembershipRecord>,
        peer: Option<v1::User>,
    ) -> Result<v1::RoomInfo, v1::Error> {
        let mut info = info(id, record, membership, peer);
        if let Some(joined) = membership.filter(|m| m.is_joined()) {
            let me = self.identity()?.user;
            if let Some(position) = self.ctx.store.position(id, me).map_err(internal)? {
                info.read_seq = position.read_seq;
                info.unread_count = position.unread;
                info.mention_count = position.mentions;
            }
            info.notification_level = convert::notification_level(joined.notification_level()) as i32;
            info.role = convert::role(joined.role) as i32;
        }
        Ok(info)
    }

    fn limit_joins(&self) -> Result<(), v1::Error> {
        let user = self.identity()?.user;
        check(&self.ctx.limiters.joins, &user).map_err(|wait| rate_limited(wait, "room creations and joins"))
    }

    async fn write_room_op(&self, op: WriteOp) -> Result<Body, v1::Error> {
        match self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)? {
            OpOutput::Room { room } => Ok(Body::Room(self.room_info(room)?)),
            OpOutput::Done => Ok(Body::Done(v1::Done {})),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn create_room(&mut self, create: v1::CreateRoom) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let name = create.name.strip_prefix('#').unwrap_or(&create.name).to_owned();
        let kind = match v1::RoomKind::try_from(create.kind) {
            Ok(v1::RoomKind::Public) => RoomKind::Public,
            Ok(v1::RoomKind::Private) => RoomKind::Private,
            _ => return Err(invalid("kind must be PUBLIC or PRIVATE")),
        };
        if !create.members.is_empty() && kind != RoomKind::Private {
            return Err(invalid("members are only for PRIVATE rooms (a group)"));
        }
        if create.members.len() > MAX_GROUP_MEMBERS {
            return Err(invalid(format!("a group is created with at most {MAX_GROUP_MEMBERS} members")));
        }
        // A group (members) may go without a name.
        if !(valid_name(&name) || name.is_empty() && !create.members.is_empty()) {
            return Err(invalid(ROOM_NAME_RULE));
        }
        check_topic(&create.topic)?;
        if identity.guest && kind != RoomKind::Public {
            return Err(v1::Error::new(ErrorCode::Forbidden, "guests can only create public rooms"));
        }
        let mut members = Vec::with_capacity(create.members.len());
        for username in &create.members {
            if username.eq_ignore_ascii_case(&identity.name) {
                continue;
            }
            let found =
                if valid_name(username) { self.ctx.store.user_by_name(username).map_err(internal)? } else { None };
            match found {
                Some((user, _)) => members.push(user),
                None if valid_name(username) && self.ctx.guests.is_held(username) => {
                    return Err(v1::Error::new(
                        ErrorCode::Forbidden,
                        format!("{username:?} is a guest; guests cannot be members of a group"),
                    ));
                }
                None => return Err(v1::Error::new(ErrorCode::UserNotFound, format!("no user named {username:?}"))),
            }
        }
        self.limit_joins()?;
        self.write_room_op(WriteOp::CreateRoom { creator: identity.user, name, kind, topic: create.topic, members })
            .await
    }

    pub(super) async fn join_room(&mut self, join: v1::JoinRoom) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(join.room.as_ref())?;
        if room.joined() {
            return Ok(Body::Room(self.room_info(room.id)?));
        }
        if identity.guest && room.record.kind() != RoomKind::Public {
            return Err(v1::Error::new(ErrorCode::Forbidden, "guests can only join public rooms"));
        }
        self.limit_joins()?;
        self.write_room_op(WriteOp::Join { user: identity.user, room: room.id }).await
    }

    pub(super) async fn leave_room(&mut self, leave: v1::LeaveRoom) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(leave.room.as_ref())?;
        if room.membership.is_none() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "you are not a member of this room"));
        }
        self.write_room_op(WriteOp::Leave { user: identity.user, room: room.id }).await
    }

    pub(super) async fn invite_to_room(&mut self, invite: v1::InviteToRoom) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let room = self.visible_room(invite.room.as_ref())?;
        if !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room before inviting others"));
        }
        let invitee = self.find_user(&invite.username)?;
        self.write_room_op(WriteOp::Invite { by: identity.user, room: room.id, invitee }).await
    }

    pub(super) fn list_rooms(&mut self, list: v1::ListRooms) -> Result<Body, v1::Error> {
        let me = self.identity()?.user;
        let store = &self.ctx.store;
        let rooms = match v1::RoomScope::try_from(list.scope) {
            Ok(v1::RoomScope::Mine) => store
                .user_rooms(me)
                .map_err(internal)?
                .into_iter()
                .map(|(room, _)| self.room_info(room))
                .collect::<Result<Vec<_>, _>>()?,
            Ok(v1::RoomScope::Directory) => {
                if list.query.len() > MAX_QUERY_BYTES {
                    return Err(invalid(format!("query must be at most {MAX_QUERY_BYTES} bytes")));
                }
                let mut rooms = Vec::new();
                for (id, record) in store.search_public_rooms(&list.query).map_err(internal)? {
                    let membership = store.membership(id, me).map_err(internal)?;
                    rooms.push(self.info(id, &record, membership.as_ref(), None)?);
                }
                rooms
            }
            Err(_) => return Err(v1::Error::new(ErrorCode::InvalidArgument, "scope must be MINE or DIRECTORY")),
        };
        Ok(Body::Rooms(v1::RoomList { rooms }))
    }

    pub(super) fn list_members(&mut self, list: v1::ListMembers) -> Result<Body, v1::Error> {
        let room = self.visible_room(list.room.as_ref())?;
        let store = &self.ctx.store;
        let mut lookup = convert::UserLookup::new(store);
        let mut members = Vec::new();
        for (user, membership) in store.members(room.id).map_err(internal)? {
            members.push(v1::Member {
                user: Some(convert::user(&lookup.get(user.0).map_err(internal)?)),
                membership: convert::membership(&membership) as i32,
                role: convert::role(membership.role) as i32,
            });
        }
        Ok(Body::Members(v1::MemberList { room_id: room.id.0, members }))
    }

    pub(super) async fn open_direct(&mut self, open: v1::OpenDirect) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        if identity.guest {
            return Err(v1::Error::new(ErrorCode::Forbidden, "guests cannot have direct conversations"));
        }
        let peer: UserId = self.find_user(&open.username)?;
        self.limit_joins()?;
        self.write_room_op(WriteOp::OpenDirect { user: identity.user, peer }).await
    }
}

fn info(
    id: RoomId,
    record: &RoomRecord,
    membership: Option<&MembershipRecord>,
    peer: Option<v1::User>,
) -> v1::RoomInfo {
    let membership = match membership {
        Some(m) if m.state == MembershipState::Joined as i32 => v1::Membership::Joined,
        Some(_) => v1::Membership::Invited,
        None => v1::Membership::None,
    };
    v1::RoomInfo {
        room_id: id.0,
        name: record.name.clone(),
        kind: convert::room_kind(record.kind()) as i32,
        epoch: record.epoch,
        head_seq: record.head_seq,
        member_count: record.joined_count,
        membership: membership as i32,
        created_at_ms: record.created_at_ms,
        peer,
        topic: record.topic.clone(),
        avatar_file_id: record.avatar_file_id.clone(),
        archived: record.archived,
        ..Default::default()
    }
}

impl Session {
    pub(super) async fn update_room(&mut self, update: v1::UpdateRoom) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let v1::UpdateRoom { room, name, topic, avatar_file_id, archived } = update;
        if name.is_none() && topic.is_none() && avatar_file_id.is_none() && archived.is_none() {
            return Err(invalid("set at least one of name, topic, avatar_file_id, archived"));
        }
        let name = name.map(|n| n.strip_prefix('#').map(str::to_owned).unwrap_or(n));
        if name.as_ref().is_some_and(|n| !valid_name(n)) {
            return Err(invalid(ROOM_NAME_RULE));
        }
        if let Some(topic) = &topic {
            check_topic(topic)?;
        }
        super::files::check_avatar_id(avatar_file_id.as_deref())?;
        let room = self.visible_room(room.as_ref())?;
        if !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room to change it"));
        }
        self.limit_joins()?;
        let changes = RoomChanges { name, topic, avatar_file_id, archived };
        self.write_room_op(WriteOp::UpdateRoom { user: identity.user, room: room.id, changes }).await
    }
}
