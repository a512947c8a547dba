//! §11 Rooms: creating, joining, leaving, inviting, listing, direct
//! conversations, room references and what `RoomInfo` says. Also the
//! helpers the account cases share (names in mixed case, members).

use confab_sdk::v1::{self, ErrorCode, client_frame::Command, server_frame::Body};

use super::{
    Case, Ctx, Reply,
    conn::{LONG_QUIET, by_id, by_name},
    events::{Kind, PLAUSIBLE_MS, kind, sender, shape},
    show::{show_event, show_info, show_log, show_members, show_ref, show_reply, show_rooms},
};
use crate::{outcome::CaseResult, wire::Wires};

const FEATURE: &str = "Rooms";

/// A room id no server has handed out in this run (ids are small counters
/// in practice; nothing in the spec forbids this one, but no server makes
/// 2^62 rooms).
const NO_SUCH_ROOM: u64 = (1 << 62) + 7;

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "rooms/create-public",
            FEATURE,
            "CreateRoom makes a public room owned by its creator whose log starts with RoomCreated and MemberJoined",
            &["ROOM-3", "ROOM-8", "ROOM-10", "ROOM-11", "AUTH-1"],
            Wires::All,
            create_public,
        ),
        Case::new(
            "rooms/create-private-hidden",
            FEATURE,
            "A private room is answered ROOM_NOT_FOUND to outsiders exactly like a room that does not exist",
            &["ROOM-1", "ROOM-2", "ROOM-3", "ROOM-4", "ROOM-5", "ROOM-6", "ROOM-7", "ROOM-8", "ROOM-10", "ERR-3"],
            Wires::All,
            create_private_hidden,
        ),
        Case::new(
            "rooms/create-invalid",
            FEATURE,
            "CreateRoom refuses a kind other than PUBLIC or PRIVATE and malformed names with INVALID_ARGUMENT",
            &["ROOM-1", "ROOM-3", "LIMIT-4", "ERR-3"],
            Wires::All,
            create_invalid,
        ),
        Case::new(
            "rooms/create-name-taken",
            FEATURE,
            "Room names are unique across all rooms, case-insensitively, and a refused CreateRoom joins nothing",
            &["ROOM-1", "ROOM-3", "ROOM-7", "ERR-3"],
            Wires::All,
            create_name_taken,
        ),
        Case::new(
            "rooms/room-ref-forms",
            FEATURE,
            "A room can be named by id, or by name in any case with or without a leading #",
            &["ROOM-2"],
            Wires::All,
            room_ref_forms,
        ),
        Case::new(
            "rooms/missing-room-ref",
            FEATURE,
            "A command that needs a room but has no RoomRef is answered INVALID_ARGUMENT",
            &["ROOM-2"],
            Wires::All,
            missing_room_ref,
        ),
        Case::new(
            "rooms/join-public",
            FEATURE,
            "JoinRoom joins a public room as MEMBER with a MemberJoined event, and joining again changes nothing",
            &["ROOM-4", "ROOM-7", "ROOM-10", "ROOM-11"],
            Wires::All,
            join_public,
        ),
        Case::new(
            "rooms/invitation",
            FEATURE,
            "An invitation to a private room is pushed to the invitee, lists the room as INVITED and lets them join",
            &["ROOM-4", "ROOM-6", "ROOM-7", "ROOM-8", "ROOM-11"],
            Wires::All,
            invitation,
        ),
        Case::new(
            "rooms/invite-errors",
            FEATURE,
            "InviteToRoom answers NOT_A_MEMBER, USER_NOT_FOUND, ALREADY_MEMBER and FORBIDDEN as specified, with no effect",
            &["ROOM-6", "ERR-3"],
            Wires::All,
            invite_errors,
        ),
        Case::new(
            "rooms/leave",
            FEATURE,
            "LeaveRoom appends MemberLeft, which is the last event of the room pushed to the leaver",
            &["ROOM-5", "ROOM-7", "ROOM-10"],
            Wires::All,
            leave,
        ),
        Case::new(
            "rooms/leave-errors",
            FEATURE,
            "LeaveRoom by a non-member is NOT_A_MEMBER for a public room and ROOM_NOT_FOUND otherwise",
            &["ROOM-2", "ROOM-5", "ERR-3"],
            Wires::All,
            leave_errors,
        ),
        Case::new(
            "rooms/decline-invitation",
            FEATURE,
            "LeaveRoom by an invitee declines the invitation with a MemberLeft event",
            &["ROOM-2", "ROOM-4", "ROOM-5", "ROOM-7", "ROOM-8"],
            Wires::All,
            decline_invitation,
        ),
        Case::new(
            "rooms/list-rooms",
            FEATURE,
            "ListRooms MINE lists joined and invited rooms; DIRECTORY lists public rooms with the user's membership",
            &["ROOM-7", "ROOM-10"],
            Wires::All,
            list_rooms_scopes,
        ),
        Case::new(
            "rooms/list-members",
            FEATURE,
            "ListMembers shows joined and invited users with roles, to anyone for public rooms and to members otherwise",
            &["ROOM-2", "ROOM-8", "ROOM-11"],
            Wires::All,
            list_members_visibility,
        ),
        Case::new(
            "rooms/direct-open",
            FEATURE,
            "OpenDirect gives both users the same DIRECT room with the specified log, peer and roles",
            &["ROOM-1", "ROOM-7", "ROOM-9", "ROOM-10", "ROOM-11"],
            Wires::All,
            direct_open,
        ),
        Case::new(
            "rooms/direct-errors",
            FEATURE,
            "OpenDirect with oneself is FORBIDDEN, with an unknown user USER_NOT_FOUND, and outsiders cannot see the room",
            &["ROOM-2", "ROOM-4", "ROOM-6", "ROOM-8", "ROOM-9", "ERR-3"],
            Wires::All,
            direct_errors,
        ),
        Case::new(
            "rooms/direct-rejoin",
            FEATURE,
            "A user who left a direct room is rejoined only by their own OpenDirect, never by JoinRoom or the peer's",
            &["ROOM-2", "ROOM-4", "ROOM-9", "ROOM-10"],
            Wires::All,
            direct_rejoin,
        ),
    ]
}

// --- cases ---

async fn create_public(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let name = cx.name("lounge");
    let asked = shout(&name);
    let info = alice.create_room(&asked, v1::RoomKind::Public).await?;
    cx.check(
        "AUTH-1",
        info.name == name,
        format!("created as {asked:?}; RoomInfo.name {:?} (expected the lowercase {name:?})", info.name),
    );
    check_fresh_room(&cx, &info, v1::RoomKind::Public, "ROOM-3");
    cx.check("ROOM-10", info.peer.is_none(), format!("a PUBLIC room has no peer; got {:?}", info.peer));

    let log = alice.room_log(info.room_id).await?;
    check_created_log(&cx, &log, &name, v1::RoomKind::Public, a.id);
    cx.check(
        "ROOM-10",
        log.last().map(|e| e.seq) == Some(info.head_seq),
        format!("RoomInfo.head_seq {} against the newest event of the log: {}", info.head_seq, show_log(&log)),
    );

    let members = alice.list_members(by_id(info.room_id)).await?;
    cx.check(
        "ROOM-3",
        has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner)) && members.len() == 1,
        format!("expected the creator alone, JOINED as OWNER; got {}", show_members(&members)),
    );
    cx.check(
        "ROOM-11",
        has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner)),
        format!("the creator of a PUBLIC room is its OWNER: {}", show_members(&members)),
    );
    cx.check(
        "ROOM-8",
        members.iter().all(|m| m.user.as_ref().is_some_and(|u| u.name == a.name && !u.guest)),
        format!("members carry the user (name {:?}, not a guest): {}", a.name, show_members(&members)),
    );
    Ok(())
}

async fn create_private_hidden(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let name = cx.name("secret");
    let ghost = cx.name("ghost");
    let info = alice.create_room(&name, v1::RoomKind::Private).await?;
    check_fresh_room(&cx, &info, v1::RoomKind::Private, "ROOM-3");
    let log = alice.room_log(info.room_id).await?;
    check_created_log(&cx, &log, &name, v1::RoomKind::Private, a.id);

    type MakeCommand = fn(v1::RoomRef, &str) -> Command;
    let commands: [(&str, &str, MakeCommand); 4] = [
        ("JoinRoom", "ROOM-4", |room, _| Command::JoinRoom(v1::JoinRoom { room: Some(room) })),
        ("ListMembers", "ROOM-8", |room, _| Command::ListMembers(v1::ListMembers { room: Some(room) })),
        ("LeaveRoom", "ROOM-5", |room, _| Command::LeaveRoom(v1::LeaveRoom { room: Some(room) })),
        ("InviteToRoom", "ROOM-6", |room, who| {
            Command::InviteToRoom(v1::InviteToRoom { room: Some(room), username: who.into() })
        }),
    ];
    for (what, requirement, make) in commands {
        let private = bob.request(make(by_id(info.room_id), &a.name)).await?;
        let missing = bob.request(make(by_id(NO_SUCH_ROOM), &a.name)).await?;
        check_not_found_alike(
            &cx,
            requirement,
            &format!("{what} by id"),
            (&private, &info.room_id.to_string()),
            (&missing, &NO_SUCH_ROOM.to_string()),
        );
        let private = bob.request(make(by_name(&name), &a.name)).await?;
        let missing = bob.request(make(by_name(&ghost), &a.name)).await?;
        check_not_found_alike(&cx, requirement, &format!("{what} by name"), (&private, &name), (&missing, &ghost));
    }

    let directory = bob.list_rooms(v1::RoomScope::Directory).await?;
    cx.check(
        "ROOM-7",
        !directory.iter().any(|r| r.room_id == info.room_id),
        format!("the PRIVATE room {} must not be in an outsider's DIRECTORY", info.room_id),
    );
    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ROOM-1",
        !mine.iter().any(|r| r.room_id == info.room_id),
        format!("an outsider's MINE lists {}", show_rooms(&mine)),
    );
    let after = alice.room_log(info.room_id).await?;
    cx.check(
        "ERR-3",
        after.len() == log.len(),
        format!("the refused commands appended nothing: log before {}, after {}", show_log(&log), show_log(&after)),
    );
    Ok(())
}

async fn create_invalid(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let name = cx.name("kinds");
    for kind in [v1::RoomKind::Unspecified, v1::RoomKind::Direct] {
        let reply = alice.try_create_room(&name, kind as i32).await?;
        cx.check_error("ROOM-3", &reply, ErrorCode::InvalidArgument);
    }
    if !cx.wire().is_json() {
        // JSON carries enums by name, and an unknown name reads as the zero
        // value (ENC-5); only the binary encoding can carry an unknown kind.
        let reply = alice.try_create_room(&name, 99).await?;
        cx.check_error("ROOM-3", &reply, ErrorCode::InvalidArgument);
    }
    let base = cx.name("");
    let too_long = format!("{base}{}", "x".repeat(33 - base.len()));
    for bad in ["", "9lives", "_room", "-room", ".room", "two words", "caf\u{e9}", "semi;colon", too_long.as_str()] {
        let reply = alice.try_create_room(bad, v1::RoomKind::Public as i32).await?;
        cx.check_refused(
            if bad == too_long { "LIMIT-4" } else { "ROOM-1" },
            format!("CreateRoom {bad:?}"),
            &reply,
            ErrorCode::InvalidArgument,
        );
    }
    let longest = format!("{base}{}", "y".repeat(32 - base.len()));
    let reply = alice.try_create_room(&longest, v1::RoomKind::Public as i32).await?;
    cx.check(
        "LIMIT-4",
        matches!(&reply, Ok(Body::Room(r)) if r.name == longest),
        format!("CreateRoom with a 32-character name: {}", show_reply(&reply)),
    );
    let mine = alice.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ERR-3",
        !mine.iter().any(|r| r.name == name),
        format!("no room {name:?} after the refused CreateRooms; MINE: {}", show_rooms(&mine)),
    );
    let reply = alice.try_create_room(&name, v1::RoomKind::Public as i32).await?;
    cx.check(
        "ERR-3",
        matches!(reply, Ok(Body::Room(_))),
        format!("the name of a refused CreateRoom is still free: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn create_name_taken(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let public = cx.name("taken");
    let private = cx.name("hidden");
    let room = alice.create_room(&public, v1::RoomKind::Public).await?;
    alice.create_room(&private, v1::RoomKind::Private).await?;
    for (taken, kind) in [
        (public.clone(), v1::RoomKind::Public),
        (shout(&public), v1::RoomKind::Private),
        (shout(&private), v1::RoomKind::Public),
        (private.clone(), v1::RoomKind::Private),
    ] {
        let reply = bob.try_create_room(&taken, kind as i32).await?;
        cx.check_refused(
            "ROOM-1",
            format!("CreateRoom {taken:?} ({}) by another user", kind.as_str_name()),
            &reply,
            ErrorCode::NameTaken,
        );
    }
    let reply = alice.try_create_room(&shout(&public), v1::RoomKind::Public as i32).await?;
    cx.check_error("ROOM-3", &reply, ErrorCode::NameTaken);

    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    cx.check("ERR-3", mine.is_empty(), format!("the refused CreateRooms made bob a member of {}", show_rooms(&mine)));
    let info = alice.join(by_id(room.room_id)).await?;
    cx.check(
        "ERR-3",
        info.member_count == 1 && info.head_seq == room.head_seq,
        format!(
            "the room keeps 1 member and head {}: member_count {}, head_seq {}",
            room.head_seq, info.member_count, info.head_seq
        ),
    );
    let directory = bob.list_rooms(v1::RoomScope::Directory).await?;
    let named: Vec<v1::RoomInfo> = directory.into_iter().filter(|r| r.name == public).collect();
    cx.check(
        "ROOM-7",
        named.len() == 1,
        format!("exactly one room {public:?} in the DIRECTORY: {}", show_rooms(&named)),
    );
    Ok(())
}

async fn room_ref_forms(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let name = cx.name("refs");
    let room = alice.create_room(&name, v1::RoomKind::Public).await?;
    let forms = [
        by_id(room.room_id),
        by_name(&name),
        by_name(shout(&name)),
        by_name(format!("#{name}")),
        by_name(format!("#{}", name.to_uppercase())),
    ];
    for form in forms {
        let reply = bob.try_join(form.clone()).await?;
        cx.check(
            "ROOM-2",
            matches!(&reply, Ok(Body::Room(r)) if r.room_id == room.room_id),
            format!("JoinRoom {}: expected room {}, got {}", show_ref(&form), room.room_id, show_reply(&reply)),
        );
        let reply = bob.try_list_members(form.clone()).await?;
        cx.check(
            "ROOM-2",
            matches!(&reply, Ok(Body::Members(m)) if m.room_id == room.room_id),
            format!("ListMembers {}: expected room {}, got {}", show_ref(&form), room.room_id, show_reply(&reply)),
        );
    }
    let reply = bob.try_leave(by_name(format!("#{}", shout(&name)))).await?;
    cx.check(
        "ROOM-2",
        matches!(reply, Ok(Body::Done(_))),
        format!("LeaveRoom #{}: {}", shout(&name), show_reply(&reply)),
    );
    for missing in [by_id(NO_SUCH_ROOM), by_name(cx.name("ghost")), by_name(format!("#{}", cx.name("ghost")))] {
        let reply = bob.try_join(missing.clone()).await?;
        cx.check_refused(
            "ROOM-2",
            format!("JoinRoom {} (no such room)", show_ref(&missing)),
            &reply,
            ErrorCode::RoomNotFound,
        );
    }
    Ok(())
}

async fn missing_room_ref(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let commands = [
        ("JoinRoom", Command::JoinRoom(v1::JoinRoom { room: None })),
        ("LeaveRoom", Command::LeaveRoom(v1::LeaveRoom { room: None })),
        ("InviteToRoom", Command::InviteToRoom(v1::InviteToRoom { room: None, username: a.name.clone() })),
        ("ListMembers", Command::ListMembers(v1::ListMembers { room: None })),
    ];
    for (what, command) in commands {
        let reply = alice.request(command).await?;
        cx.check_refused("ROOM-2", format!("{what} without a room"), &reply, ErrorCode::InvalidArgument);
    }
    Ok(())
}

async fn join_public(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let name = cx.name("open");
    let room = alice.create_room(&name, v1::RoomKind::Public).await?;

    let before = bob.list_rooms(v1::RoomScope::Directory).await?;
    let listed = before.iter().find(|r| r.room_id == room.room_id);
    cx.check(
        "ROOM-7",
        listed.is_some_and(|r| r.membership() == v1::Membership::None),
        format!("before joining, the DIRECTORY shows the room with membership NONE: {listed:?}"),
    );

    let info = bob.join(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-4",
        info.membership() == v1::Membership::Joined && info.room_id == room.room_id,
        format!("JoinRoom answers the room with membership JOINED: {}", show_info(&info)),
    );
    cx.check(
        "ROOM-10",
        info.member_count == 2 && info.head_seq == 3 && info.kind() == v1::RoomKind::Public && info.name == name,
        format!("expected {name:?}, PUBLIC, 2 members, head 3; got {}", show_info(&info)),
    );
    let log = bob.room_log(room.room_id).await?;
    cx.check(
        "ROOM-4",
        log.len() == 3 && log.get(2).is_some_and(|e| kind(e) == Kind::Joined && sender(e) == b.id),
        format!("the log ends with bob's MemberJoined at seq 3: {}", show_log(&log)),
    );

    let again = bob.join(by_name(shout(&name))).await?;
    cx.check(
        "ROOM-4",
        again.membership() == v1::Membership::Joined && again.head_seq == 3 && again.member_count == 2,
        format!("joining again succeeds and changes nothing (head 3, 2 members): {}", show_info(&again)),
    );
    let log = bob.room_log(room.room_id).await?;
    cx.check("ROOM-4", log.len() == 3, format!("joining again appends nothing: {}", show_log(&log)));

    let members = alice.list_members(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-11",
        has_member(&members, b.id, v1::Membership::Joined, Some(v1::Role::Member)),
        format!("a user who joins later is a MEMBER: {}", show_members(&members)),
    );
    let after = bob.list_rooms(v1::RoomScope::Directory).await?;
    let listed = after.iter().find(|r| r.room_id == room.room_id);
    cx.check(
        "ROOM-7",
        listed.is_some_and(|r| r.membership() == v1::Membership::Joined),
        format!("after joining, the DIRECTORY shows membership JOINED: {listed:?}"),
    );
    Ok(())
}

async fn invitation(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let mut bob2 = cx.reconnect(&b, "bob").await?;
    let name = cx.name("club");
    let room = alice.create_room(&name, v1::RoomKind::Private).await?;
    alice.go_live().await?;
    bob.go_live().await?;
    bob2.go_live().await?;

    let reply = alice.try_invite(by_id(room.room_id), &shout(&b.name)).await?;
    cx.ensure("ROOM-6", matches!(reply, Ok(Body::Done(_))), format!("InviteToRoom: {}", show_reply(&reply)))?;
    let is_invitation = |e: &v1::RoomEvent| {
        e.room_id == room.room_id
            && sender(e) == a.id
            && matches!(&e.kind, Some(v1::room_event::Kind::MemberInvited(i))
                if i.invitee.as_ref().is_some_and(|u| u.user_id == b.id && u.name == b.name))
    };
    for (who, conn) in [("alice (a follower)", &mut alice), ("bob", &mut bob), ("bob's second session", &mut bob2)] {
        let event = conn.event().await?;
        cx.check(
            "ROOM-6",
            is_invitation(&event) && event.seq == 3,
            format!("{who} is pushed MemberInvited (seq 3, sender alice, invitee bob): {}", show_event(&event)),
        );
    }

    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    let listed = mine.iter().find(|r| r.room_id == room.room_id);
    cx.check(
        "ROOM-7",
        listed.is_some_and(|r| r.membership() == v1::Membership::Invited),
        format!("the invitee's MINE lists the room as INVITED: {}", show_rooms(&mine)),
    );
    let members = bob.list_members(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-8",
        has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner))
            && has_member(&members, b.id, v1::Membership::Invited, None)
            && members.len() == 2,
        format!("an invitee may list the members: alice JOINED OWNER, bob INVITED; got {}", show_members(&members)),
    );

    let info = bob.join(by_name(&name)).await?;
    cx.check(
        "ROOM-4",
        info.membership() == v1::Membership::Joined && info.member_count == 2,
        format!("the invitee joins the PRIVATE room: {}", show_info(&info)),
    );
    let log = bob.room_log(room.room_id).await?;
    cx.check(
        "ROOM-4",
        log.get(2).is_some_and(is_invitation)
            && log.get(3).is_some_and(|e| e.seq == 4 && kind(e) == Kind::Joined && sender(e) == b.id),
        format!("the log has alice's MemberInvited then bob's MemberJoined: {}", show_log(&log)),
    );
    let members = alice.list_members(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-11",
        has_member(&members, b.id, v1::Membership::Joined, Some(v1::Role::Member)),
        format!("the invitee who joined is a MEMBER: {}", show_members(&members)),
    );
    Ok(())
}

async fn invite_errors(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let (mut carol, c) = cx.user("carol").await?;
    let public = alice.create_room(&cx.name("pub"), v1::RoomKind::Public).await?;
    let private = alice.create_room(&cx.name("priv"), v1::RoomKind::Private).await?;
    let direct = alice.open_direct(&b.name).await?;
    carol.join(by_id(public.room_id)).await?;
    let reply = alice.try_invite(by_id(private.room_id), &b.name).await?;
    cx.ensure("ROOM-6", matches!(reply, Ok(Body::Done(_))), format!("inviting bob: {}", show_reply(&reply)))?;

    let ids = [public.room_id, private.room_id, direct.room_id];
    let before = alice.head_seqs(ids).await?;

    let nobody = cx.name("nobody");
    let attempts = [
        ("bob, not joined, invites carol to the PUBLIC room", false, public.room_id, &c.name, ErrorCode::NotAMember),
        ("alice invites a user who does not exist", true, public.room_id, &nobody, ErrorCode::UserNotFound),
        ("alice invites carol, already joined", true, public.room_id, &c.name, ErrorCode::AlreadyMember),
        ("alice invites herself, already joined", true, public.room_id, &a.name, ErrorCode::AlreadyMember),
        ("alice invites bob again, already invited", true, private.room_id, &b.name, ErrorCode::AlreadyMember),
        ("alice invites carol to the DIRECT room", true, direct.room_id, &c.name, ErrorCode::Forbidden),
    ];
    for (what, by_alice, room, who, expected) in attempts {
        let conn = if by_alice { &mut alice } else { &mut bob };
        let reply = conn.try_invite(by_id(room), &shout(who)).await?;
        cx.check_refused("ROOM-6", what, &reply, expected);
    }
    // An invitee who has not joined may not invite.
    let reply = bob.try_invite(by_id(private.room_id), &c.name).await?;
    cx.check_refused("ROOM-6", "bob, only invited, invites carol to the PRIVATE room", &reply, ErrorCode::NotAMember);

    let after = alice.head_seqs(ids).await?;
    cx.check(
        "ERR-3",
        before == after,
        format!("the refused invitations appended nothing: heads {before:?} before, {after:?} after"),
    );
    let mine = carol.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ERR-3",
        mine.iter().all(|r| r.room_id == public.room_id),
        format!("carol was invited nowhere by the refused invitations; her MINE: {}", show_rooms(&mine)),
    );
    Ok(())
}

async fn leave(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let name = cx.name("exit");
    let room = alice.create_room(&name, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    bob.go_live().await?;
    alice.send_message(room.room_id, "before", &cx.name("txn")).await?;
    let first = bob.event().await?;
    cx.ensure(
        "ROOM-5",
        kind(&first) == Kind::Message,
        format!("bob follows the room before leaving: {}", show_event(&first)),
    )?;

    let reply = bob.try_leave(by_name(&name)).await?;
    cx.ensure("ROOM-5", matches!(reply, Ok(Body::Done(_))), format!("LeaveRoom: {}", show_reply(&reply)))?;
    let pushed = bob.events_until_quiet(LONG_QUIET).await?;
    cx.check(
        "ROOM-5",
        pushed.last().is_some_and(|e| kind(e) == Kind::Left && sender(e) == b.id && e.seq == first.seq + 1),
        format!(
            "the last event pushed to the leaver is their MemberLeft (seq {}): {}",
            first.seq + 1,
            show_log(&pushed)
        ),
    );
    alice.send_message(room.room_id, "after", &cx.name("txn")).await?;
    let late = bob.event_within(LONG_QUIET).await?;
    cx.check(
        "ROOM-5",
        late.is_none(),
        format!(
            "nothing of the room is pushed after MemberLeft; got {}",
            late.as_ref().map_or("nothing".into(), show_event)
        ),
    );

    let log = alice.room_log(room.room_id).await?;
    cx.check(
        "ROOM-5",
        log.iter().any(|e| kind(e) == Kind::Left && sender(e) == b.id),
        format!("the log holds bob's MemberLeft: {}", show_log(&log)),
    );
    let info = alice.join(by_id(room.room_id)).await?;
    cx.check("ROOM-10", info.member_count == 1, format!("member_count after bob left: {}", show_info(&info)));
    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ROOM-7",
        !mine.iter().any(|r| r.room_id == room.room_id),
        format!("the room left is no longer in MINE: {}", show_rooms(&mine)),
    );
    let reply = bob.try_leave(by_id(room.room_id)).await?;
    cx.check_error("ROOM-5", &reply, ErrorCode::NotAMember);
    Ok(())
}

async fn leave_errors(cx: Ctx) -> CaseResult {
    let (mut alice, _) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let public = alice.create_room(&cx.name("pub"), v1::RoomKind::Public).await?;
    let private = alice.create_room(&cx.name("priv"), v1::RoomKind::Private).await?;
    let reply = bob.try_leave(by_id(public.room_id)).await?;
    cx.check_refused("ROOM-5", "leaving a PUBLIC room one never joined", &reply, ErrorCode::NotAMember);
    for (what, room) in
        [("a PRIVATE room one is not in", private.room_id), ("a room that does not exist", NO_SUCH_ROOM)]
    {
        let reply = bob.try_leave(by_id(room)).await?;
        cx.check_refused("ROOM-5", format!("leaving {what}"), &reply, ErrorCode::RoomNotFound);
    }
    let reply = bob.try_leave(by_name(cx.name("ghost"))).await?;
    cx.check_error("ROOM-2", &reply, ErrorCode::RoomNotFound);
    let heads = alice.head_seqs([public.room_id, private.room_id]).await?;
    cx.check(
        "ERR-3",
        heads == [public.head_seq, private.head_seq],
        format!(
            "the refused LeaveRooms appended nothing: heads {heads:?}, expected {:?}",
            [public.head_seq, private.head_seq]
        ),
    );
    Ok(())
}

async fn decline_invitation(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let room = alice.create_room(&cx.name("decline"), v1::RoomKind::Private).await?;
    alice.invite(by_id(room.room_id), &b.name).await?;

    let reply = bob.try_leave(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-5",
        matches!(reply, Ok(Body::Done(_))),
        format!("an invitee declines with LeaveRoom: {}", show_reply(&reply)),
    );
    let log = alice.room_log(room.room_id).await?;
    cx.check(
        "ROOM-5",
        log.len() == 4 && log.last().is_some_and(|e| kind(e) == Kind::Left && sender(e) == b.id),
        format!("declining appends bob's MemberLeft after the invitation: {}", show_log(&log)),
    );
    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ROOM-7",
        !mine.iter().any(|r| r.room_id == room.room_id),
        format!("a declined room is no longer in MINE: {}", show_rooms(&mine)),
    );
    let members = alice.list_members(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-8",
        members.len() == 1 && has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner)),
        format!("after declining, only alice is listed: {}", show_members(&members)),
    );
    let reply = bob.try_join(by_id(room.room_id)).await?;
    cx.check_refused("ROOM-4", "joining after declining (no invitation any more)", &reply, ErrorCode::RoomNotFound);
    let reply = bob.try_list_members(by_id(room.room_id)).await?;
    cx.check_error("ROOM-2", &reply, ErrorCode::RoomNotFound);
    Ok(())
}

async fn list_rooms_scopes(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let own_public = alice.create_room(&cx.name("apub"), v1::RoomKind::Public).await?;
    let own_private = alice.create_room(&cx.name("apriv"), v1::RoomKind::Private).await?;
    let other_public = bob.create_room(&cx.name("bpub"), v1::RoomKind::Public).await?;
    let invited = bob.create_room(&cx.name("bpriv"), v1::RoomKind::Private).await?;
    let hidden = bob.create_room(&cx.name("bhidden"), v1::RoomKind::Private).await?;
    bob.invite(by_id(invited.room_id), &a.name).await?;

    let mine = alice.list_rooms(v1::RoomScope::Mine).await?;
    let membership = |rooms: &[v1::RoomInfo], id: u64| rooms.iter().find(|r| r.room_id == id).map(|r| r.membership());
    cx.check(
        "ROOM-7",
        mine.len() == 3
            && membership(&mine, own_public.room_id) == Some(v1::Membership::Joined)
            && membership(&mine, own_private.room_id) == Some(v1::Membership::Joined)
            && membership(&mine, invited.room_id) == Some(v1::Membership::Invited),
        format!(
            "MINE: rooms {} and {} JOINED, {} INVITED, nothing else; got {}",
            own_public.room_id,
            own_private.room_id,
            invited.room_id,
            show_rooms(&mine)
        ),
    );
    for expected in [&own_public, &own_private] {
        let listed = mine.iter().find(|r| r.room_id == expected.room_id);
        cx.check(
            "ROOM-10",
            listed.is_some_and(|r| {
                r.name == expected.name
                    && r.kind == expected.kind
                    && r.epoch == expected.epoch
                    && r.head_seq == expected.head_seq
                    && r.member_count == expected.member_count
                    && r.created_at_ms == expected.created_at_ms
            }),
            format!("MINE describes the room as CreateRoom did ({}): {listed:?}", show_info(expected)),
        );
    }

    let directory = alice.list_rooms(v1::RoomScope::Directory).await?;
    cx.check(
        "ROOM-7",
        membership(&directory, own_public.room_id) == Some(v1::Membership::Joined)
            && membership(&directory, other_public.room_id) == Some(v1::Membership::None),
        format!(
            "DIRECTORY has room {} JOINED and room {} NONE: {:?} and {:?}",
            own_public.room_id,
            other_public.room_id,
            directory.iter().find(|r| r.room_id == own_public.room_id),
            directory.iter().find(|r| r.room_id == other_public.room_id),
        ),
    );
    let leaked: Vec<&v1::RoomInfo> = directory
        .iter()
        .filter(|r| [own_private.room_id, invited.room_id, hidden.room_id].contains(&r.room_id))
        .collect();
    cx.check(
        "ROOM-7",
        leaked.is_empty() && directory.iter().all(|r| r.kind() == v1::RoomKind::Public),
        format!("DIRECTORY lists only PUBLIC rooms; private ones listed: {leaked:?}"),
    );
    Ok(())
}

async fn list_members_visibility(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let (mut carol, c) = cx.user("carol").await?;
    let public = alice.create_room(&cx.name("pub"), v1::RoomKind::Public).await?;
    let private = alice.create_room(&cx.name("priv"), v1::RoomKind::Private).await?;
    bob.join(by_id(public.room_id)).await?;
    for (room, who) in [(public.room_id, &c.name), (private.room_id, &b.name)] {
        alice.invite(by_id(room), who).await?;
    }

    let (mut dave, _) = cx.user("dave").await?;
    let reply = dave.try_list_members(by_id(public.room_id)).await?;
    let Ok(Body::Members(list)) = &reply else {
        cx.check("ROOM-8", false, format!("anyone may list a PUBLIC room's members: {}", show_reply(&reply)));
        return Ok(());
    };
    cx.check(
        "ROOM-8",
        list.room_id == public.room_id
            && list.members.len() == 3
            && has_member(&list.members, a.id, v1::Membership::Joined, None)
            && has_member(&list.members, b.id, v1::Membership::Joined, None)
            && has_member(&list.members, c.id, v1::Membership::Invited, None),
        format!(
            "an outsider lists room {}: alice and bob JOINED, carol INVITED; got room {} {}",
            public.room_id,
            list.room_id,
            show_members(&list.members)
        ),
    );
    cx.check(
        "ROOM-11",
        has_member(&list.members, a.id, v1::Membership::Joined, Some(v1::Role::Owner))
            && has_member(&list.members, b.id, v1::Membership::Joined, Some(v1::Role::Member)),
        format!("roles: alice OWNER, bob MEMBER; got {}", show_members(&list.members)),
    );

    let members = bob.list_members(by_id(private.room_id)).await?;
    cx.check(
        "ROOM-8",
        members.len() == 2
            && has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner))
            && has_member(&members, b.id, v1::Membership::Invited, None),
        format!("the invitee lists the PRIVATE room: alice JOINED OWNER, bob INVITED; got {}", show_members(&members)),
    );
    for (who, conn) in [("carol", &mut carol), ("dave", &mut dave)] {
        let reply = conn.try_list_members(by_id(private.room_id)).await?;
        cx.check_refused(
            "ROOM-2",
            format!("{who}, an outsider, lists a PRIVATE room"),
            &reply,
            ErrorCode::RoomNotFound,
        );
    }
    Ok(())
}

async fn direct_open(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let room = alice.open_direct(&shout(&b.name)).await?;
    let peer_is = |info: &v1::RoomInfo, id: u64, name: &str| {
        info.peer.as_ref().is_some_and(|p| p.user_id == id && p.name == name && !p.guest)
    };
    cx.check(
        "ROOM-9",
        room.kind() == v1::RoomKind::Direct && peer_is(&room, b.id, &b.name),
        format!("OpenDirect answers a DIRECT room with peer bob ({}): {}", b.id, show_info(&room)),
    );
    cx.check("ROOM-1", room.name.is_empty(), format!("a DIRECT room has no name: {:?}", room.name));
    cx.check(
        "ROOM-10",
        room.membership() == v1::Membership::Joined
            && room.member_count == 2
            && room.head_seq == 3
            && room.epoch == 1
            && room.created_at_ms > PLAUSIBLE_MS,
        format!("expected JOINED, 2 members, head 3, epoch 1, a creation time; got {}", show_info(&room)),
    );

    let log = alice.room_log(room.room_id).await?;
    let created = log.first().is_some_and(|e| {
        matches!(&e.kind, Some(v1::room_event::Kind::RoomCreated(c)) if c.name.is_empty() && c.kind() == v1::RoomKind::Direct)
    });
    cx.check(
        "ROOM-9",
        created && shape(&log) == [(1, Kind::Created, a.id), (2, Kind::Joined, a.id), (3, Kind::Joined, b.id)],
        format!(
            "expected RoomCreated (DIRECT, no name) and MemberJoined by alice, then MemberJoined by bob; got {}",
            show_log(&log)
        ),
    );

    let theirs = bob.open_direct(&shout(&a.name)).await?;
    cx.check(
        "ROOM-9",
        theirs.room_id == room.room_id && peer_is(&theirs, a.id, &a.name) && theirs.head_seq == 3,
        format!(
            "bob's OpenDirect gives the same room {} with peer alice, head 3: {}",
            room.room_id,
            show_info(&theirs)
        ),
    );
    let again = alice.open_direct(&b.name).await?;
    cx.check(
        "ROOM-9",
        again.room_id == room.room_id && again.head_seq == 3,
        format!("opening it again gives the same room and appends nothing: {}", show_info(&again)),
    );

    let members = bob.list_members(by_id(room.room_id)).await?;
    cx.check(
        "ROOM-11",
        members.len() == 2
            && has_member(&members, a.id, v1::Membership::Joined, Some(v1::Role::Owner))
            && has_member(&members, b.id, v1::Membership::Joined, Some(v1::Role::Owner)),
        format!("both users of a DIRECT room are OWNER: {}", show_members(&members)),
    );
    let mine = bob.list_rooms(v1::RoomScope::Mine).await?;
    let listed = mine.iter().find(|r| r.room_id == room.room_id);
    cx.check(
        "ROOM-10",
        listed.is_some_and(|r| r.kind() == v1::RoomKind::Direct && peer_is(r, a.id, &a.name)),
        format!("bob's MINE lists the DIRECT room with peer alice: {listed:?}"),
    );
    let directory = bob.list_rooms(v1::RoomScope::Directory).await?;
    cx.check(
        "ROOM-7",
        !directory.iter().any(|r| r.room_id == room.room_id),
        format!("the DIRECT room {} is not in the DIRECTORY", room.room_id),
    );
    Ok(())
}

async fn direct_errors(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (_bob, b) = cx.user("bob").await?;
    let (mut carol, _) = cx.user("carol").await?;
    let reply = alice.try_open_direct(&shout(&a.name)).await?;
    cx.check_refused("ROOM-9", "OpenDirect with oneself", &reply, ErrorCode::Forbidden);
    let reply = alice.try_open_direct(&cx.name("nobody")).await?;
    cx.check_refused("ROOM-9", "OpenDirect with an unknown user", &reply, ErrorCode::UserNotFound);
    let mine = alice.list_rooms(v1::RoomScope::Mine).await?;
    cx.check("ERR-3", mine.is_empty(), format!("the refused OpenDirects made no room: MINE {}", show_rooms(&mine)));

    let room = alice.open_direct(&b.name).await?;
    let reply = carol.try_join(by_id(room.room_id)).await?;
    cx.check_refused("ROOM-4", "a third user joins the DIRECT room", &reply, ErrorCode::RoomNotFound);
    let reply = carol.try_list_members(by_id(room.room_id)).await?;
    cx.check_refused("ROOM-8", "a third user lists the DIRECT room", &reply, ErrorCode::RoomNotFound);
    let reply = carol.try_leave(by_id(room.room_id)).await?;
    cx.check_error("ROOM-2", &reply, ErrorCode::RoomNotFound);
    let reply = carol.try_invite(by_id(room.room_id), &a.name).await?;
    cx.check_refused("ROOM-6", "a third user invites to the DIRECT room", &reply, ErrorCode::RoomNotFound);
    let [head] = alice.head_seqs([room.room_id]).await?;
    cx.check(
        "ERR-3",
        head == room.head_seq,
        format!("head {head} after the refused commands, {} before", room.head_seq),
    );
    Ok(())
}

async fn direct_rejoin(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, b) = cx.user("bob").await?;
    let room = alice.open_direct(&b.name).await?;
    bob.leave(by_id(room.room_id)).await?;

    let info = alice.open_direct(&b.name).await?;
    cx.check(
        "ROOM-9",
        info.room_id == room.room_id
            && info.member_count == 1
            && info.head_seq == 4
            && info.peer.as_ref().is_some_and(|p| p.user_id == b.id),
        format!(
            "after bob left, alice's OpenDirect gives the same room, bob still out (1 member, head 4) and still the peer: {}",
            show_info(&info)
        ),
    );
    let reply = bob.try_join(by_id(room.room_id)).await?;
    cx.check("ROOM-4", reply.is_err(), format!("JoinRoom does not enter a DIRECT room: {}", show_reply(&reply)));
    cx.check_error("ROOM-2", &reply, ErrorCode::RoomNotFound);

    let info = bob.open_direct(&a.name).await?;
    cx.check(
        "ROOM-9",
        info.room_id == room.room_id && info.membership() == v1::Membership::Joined && info.member_count == 2,
        format!("bob's own OpenDirect joins him again to room {}: {}", room.room_id, show_info(&info)),
    );
    cx.check(
        "ROOM-10",
        info.peer.as_ref().is_some_and(|p| p.user_id == a.id),
        format!("bob's peer is alice: {:?}", info.peer),
    );
    alice.leave(by_id(room.room_id)).await?;
    let info = alice.open_direct(&b.name).await?;
    cx.check(
        "ROOM-9",
        info.room_id == room.room_id && info.membership() == v1::Membership::Joined && info.member_count == 2,
        format!("the caller who had left is joined again: {}", show_info(&info)),
    );
    let log = alice.room_log(room.room_id).await?;
    let expected = [
        (1, Kind::Created, a.id),
        (2, Kind::Joined, a.id),
        (3, Kind::Joined, b.id),
        (4, Kind::Left, b.id),
        (5, Kind::Joined, b.id),
        (6, Kind::Left, a.id),
        (7, Kind::Joined, a.id),
    ];
    cx.check(
        "ROOM-9",
        shape(&log) == expected,
        format!("expected the log {expected:?} (seq, kind, sender id); got {}", show_log(&log)),
    );
    Ok(())
}

// --- checks shared by the cases ---

/// What a room just created must say of itself (ROOM-10, with its log of
/// two events).
fn check_fresh_room(cx: &Ctx, info: &v1::RoomInfo, expected: v1::RoomKind, requirement: &str) {
    cx.check(
        requirement,
        info.kind() == expected && info.membership() == v1::Membership::Joined && info.member_count == 1,
        format!("expected a {} room the creator has JOINED, 1 member; got {}", expected.as_str_name(), show_info(info)),
    );
    cx.check(
        "ROOM-10",
        info.room_id != 0 && info.epoch == 1 && info.head_seq == 2 && info.created_at_ms > PLAUSIBLE_MS,
        format!("expected a room id, epoch 1, head_seq 2, created_at_ms a UNIX time in ms; got {}", show_info(info)),
    );
}

/// ROOM-3: `RoomCreated` at seq 1 and the creator's `MemberJoined` at seq
/// 2, both sent by the creator.
fn check_created_log(cx: &Ctx, log: &[v1::RoomEvent], name: &str, room_kind: v1::RoomKind, creator: u64) {
    let created = log.first().is_some_and(
        |e| matches!(&e.kind, Some(v1::room_event::Kind::RoomCreated(c)) if c.name == name && c.kind() == room_kind),
    );
    cx.check(
        "ROOM-3",
        created && shape(log) == [(1, Kind::Created, creator), (2, Kind::Joined, creator)],
        format!(
            "expected RoomCreated {{{name:?}, {}}} at seq 1 and MemberJoined at seq 2, both by the creator ({creator}); got {}",
            room_kind.as_str_name(),
            show_log(log)
        ),
    );
}

/// ROOM-2: a private room and a missing one are answered alike: both
/// `ROOM_NOT_FOUND`, with the same message once the reference it may echo
/// is taken out, and the same `temporary` and `retry_after_ms`.
fn check_not_found_alike(cx: &Ctx, requirement: &str, what: &str, private: (&Reply, &str), missing: (&Reply, &str)) {
    cx.check_refused(
        requirement,
        format!("{what} of a PRIVATE room by an outsider"),
        private.0,
        ErrorCode::RoomNotFound,
    );
    let alike = match (private.0, missing.0) {
        (Err(p), Err(m)) => {
            p.code == m.code
                && p.temporary == m.temporary
                && p.retry_after_ms == m.retry_after_ms
                && without(&p.message, private.1) == without(&m.message, missing.1)
        }
        _ => false,
    };
    cx.check(
        "ROOM-2",
        alike,
        format!(
            "{what}: a PRIVATE room ({}) and a missing room ({}) must be answered alike",
            show_reply(private.0),
            show_reply(missing.0)
        ),
    );
}

/// `message` with every occurrence of `reference` (case-insensitively)
/// replaced by a placeholder.
fn without(message: &str, reference: &str) -> String {
    message.to_lowercase().replace(&reference.to_lowercase(), "<ref>")
}

// --- helpers (the account cases use them too) ---

/// `name` with every other letter in upper case: the same name (AUTH-1).
pub(super) fn shout(name: &str) -> String {
    name.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect()
}

pub(super) fn has_member(
    members: &[v1::Member],
    user: u64,
    membership: v1::Membership,
    role: Option<v1::Role>,
) -> bool {
    members.iter().any(|m| {
        m.user.as_ref().is_some_and(|u| u.user_id == user)
            && m.membership() == membership
            && role.is_none_or(|role| m.role() == role)
    })
}
