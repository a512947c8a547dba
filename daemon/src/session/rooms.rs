//! Room commands: CreateRoom, JoinRoom, LeaveRoom, InviteToRoom, ListRooms,
//! ListMembers, OpenDirect.

use confab_protocol::v1::{self, ErrorCode, room_ref::Room, server_frame::Body};

use super::{
    Session,
    account::{refusal, unexpected},
    internal, rate_limited,
};
use crate::{
    auth::valid_name,
    context::check,
    convert,
    ids::{RoomId, UserId},
    store::{MembershipRecord, MembershipState, OpOutput, RoomKind, RoomRecord, WriteOp},
};

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
        Ok(info(id, &record, membership.as_ref(), peer))
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
        if !valid_name(&name) {
            return Err(v1::Error::new(
                ErrorCode::InvalidArgument,
                "room name must be 1 to 32 characters of a-z, 0-9, '_', '.' or '-', starting with a letter",
            ));
        }
        let kind = match v1::RoomKind::try_from(create.kind) {
            Ok(v1::RoomKind::Public) => RoomKind::Public,
            Ok(v1::RoomKind::Private) => RoomKind::Private,
            _ => return Err(v1::Error::new(ErrorCode::InvalidArgument, "kind must be PUBLIC or PRIVATE")),
        };
        self.limit_joins()?;
        self.write_room_op(WriteOp::CreateRoom {
            creator: identity.user,
            name,
            kind,
            topic: String::new(),
            members: Vec::new(),
        })
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
                let mut rooms = Vec::new();
                for (id, record) in store.public_rooms().map_err(internal)? {
                    let membership = store.membership(id, me).map_err(internal)?;
                    rooms.push(info(id, &record, membership.as_ref(), None));
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
        ..Default::default()
    }
}

impl Session {
    pub(super) async fn update_room(&mut self, _update: v1::UpdateRoom) -> Result<Body, v1::Error> {
        Err(super::not_yet())
    }
}
