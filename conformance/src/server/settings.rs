//! Feature level 2, §27 room settings, archiving and groups, and the
//! directory query of ROOM-7.

use confab_sdk::v1::{self, client_frame::Command, room_event::Kind, server_frame::Body};

use super::{
    Case, Ctx,
    calls::{self, brief, delete, edit, head, message, react, room_info, send, set_typing, update_room},
    conn::{by_id, by_name},
    events::{Kind as EventKind, shape},
    show::{show_event_brief, show_events_brief, show_reply},
};
use crate::{outcome::CaseResult, wire::Wires};

const SETTINGS: &str = "Room settings, archiving and groups";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "settings/update",
            SETTINGS,
            "UpdateRoom records only what changed in one RoomUpdated event and answers the new RoomInfo",
            &["UPDATE-1", "UPDATE-2", "UPDATE-3", "ROOM-10"],
            Wires::All,
            update,
        ),
        Case::new(
            "settings/refused",
            SETTINGS,
            "Members cannot change settings; bad names, long topics and empty updates are refused; DIRECT rooms keep theirs",
            &["UPDATE-1", "UPDATE-2", "ROOM-11", "ERR-3"],
            Wires::All,
            refused,
        ),
        Case::new(
            "settings/archive",
            SETTINGS,
            "An archived room refuses every write with ROOM_ARCHIVED and can still be read, marked read, left and unarchived",
            &["ARCHIVE-1", "UPDATE-1"],
            Wires::All,
            archive,
        ),
        Case::new(
            "settings/directory-query",
            SETTINGS,
            "CreateRoom takes a topic; DIRECTORY with a query keeps rooms whose name or topic contains it, any case",
            &["ROOM-3", "ROOM-7"],
            Wires::All,
            directory_query,
        ),
        Case::new(
            "group/create",
            SETTINGS,
            "CreateRoom with members makes a group: joined at once, unnamed if need be, default notifications ALL",
            &["GROUP-1", "GROUP-2", "ROOM-3", "NOTIFY-1", "MENTION-3"],
            Wires::All,
            group_create,
        ),
        Case::new(
            "group/refused",
            SETTINGS,
            "Members only with PRIVATE, at most 50, registered users only",
            &["GROUP-1", "ERR-3"],
            Wires::All,
            group_refused,
        ),
    ]
}

fn update_command(update: v1::UpdateRoom) -> Command {
    Command::UpdateRoom(update)
}

fn create_command(name: &str, kind: v1::RoomKind, members: Vec<String>, topic: &str) -> Command {
    Command::CreateRoom(v1::CreateRoom { name: name.into(), kind: kind as i32, members, topic: topic.into() })
}

async fn update(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    bob.join(by_id(room_id)).await?;
    bob.go_live().await?;

    let topic = "Tea ☕ and talk";
    let info =
        room_info(&mut ada, update_command(v1::UpdateRoom { topic: Some(topic.into()), ..update_room(room_id) }))
            .await?;
    cx.check(
        "UPDATE-3",
        info.topic == topic && info.room_id == room_id,
        format!("the reply is the new RoomInfo: {info:?}"),
    );
    let pushed = bob.event().await?;
    let held = pushed.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
        && matches!(&pushed.kind, Some(Kind::RoomUpdated(u))
            if u.topic.as_deref() == Some(topic) && u.name.is_none() && u.avatar_file_id.is_none() && u.archived.is_none());
    cx.check(
        "UPDATE-3",
        held,
        format!("a member gets RoomUpdated by ada holding the topic and no other field: {}", show_event_brief(&pushed)),
    );

    let before = head(&mut ada, room_id).await?;
    let same = room_info(
        &mut ada,
        update_command(v1::UpdateRoom { topic: Some(topic.into()), archived: Some(false), ..update_room(room_id) }),
    )
    .await?;
    let after = head(&mut ada, room_id).await?;
    cx.check(
        "UPDATE-3",
        after == before && same.topic == topic && same.head_seq == before,
        format!("setting what is already so appends nothing: head {before} then {after}; reply {same:?}"),
    );

    let new_name = cx.name("renamed");
    let both = room_info(
        &mut ada,
        update_command(v1::UpdateRoom {
            name: Some(new_name.clone()),
            topic: Some(topic.into()),
            ..update_room(room_id)
        }),
    )
    .await?;
    let pushed = bob.event().await?;
    let held = matches!(&pushed.kind, Some(Kind::RoomUpdated(u)) if u.name.as_deref() == Some(new_name.as_str()) && u.topic.is_none());
    cx.check(
        "UPDATE-3",
        held && both.name == new_name,
        format!(
            "a rename with the unchanged topic records the name only: {} ; reply name {:?}",
            show_event_brief(&pushed),
            both.name
        ),
    );
    let found = bob.join(by_name(new_name.to_uppercase())).await?;
    cx.check("UPDATE-2", found.room_id == room_id, format!("the room answers to its new name: {found:?}"));
    let cleared =
        room_info(&mut ada, update_command(v1::UpdateRoom { topic: Some(String::new()), ..update_room(room_id) }))
            .await?;
    cx.check("UPDATE-2", cleared.topic.is_empty(), format!("\"\" clears the topic: {:?}", cleared.topic));
    let listed = bob.list_rooms(v1::RoomScope::Mine).await?;
    let mine = listed.iter().find(|r| r.room_id == room_id);
    cx.check(
        "ROOM-10",
        mine.is_some_and(|r| {
            r.name == new_name && r.topic.is_empty() && !r.archived && r.role == v1::Role::Member as i32
        }),
        format!("ListRooms shows the settings and the member's role: {mine:?}"),
    );
    Ok(())
}

async fn refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let other = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    bob.join(by_id(room_id)).await?;
    let before = head(&mut ada, room_id).await?;

    let attempts: Vec<(&str, &str, v1::UpdateRoom, v1::ErrorCode)> = vec![
        (
            "ROOM-11",
            "a MEMBER changing the topic",
            v1::UpdateRoom { topic: Some("mine now".into()), ..update_room(room_id) },
            v1::ErrorCode::Forbidden,
        ),
        (
            "UPDATE-1",
            "a MEMBER renaming",
            v1::UpdateRoom { name: Some(cx.name("x")), ..update_room(room_id) },
            v1::ErrorCode::Forbidden,
        ),
        (
            "UPDATE-1",
            "a MEMBER archiving",
            v1::UpdateRoom { archived: Some(true), ..update_room(room_id) },
            v1::ErrorCode::Forbidden,
        ),
    ];
    for (requirement, what, update, code) in attempts {
        let reply = bob.request(update_command(update)).await?;
        cx.check_refused(requirement, what, &reply, code);
    }
    let attempts: Vec<(&str, v1::UpdateRoom, v1::ErrorCode)> = vec![
        ("no field", update_room(room_id), v1::ErrorCode::InvalidArgument),
        (
            "a name starting with a digit",
            v1::UpdateRoom { name: Some("9lives".into()), ..update_room(room_id) },
            v1::ErrorCode::InvalidArgument,
        ),
        (
            "an empty name",
            v1::UpdateRoom { name: Some(String::new()), ..update_room(room_id) },
            v1::ErrorCode::InvalidArgument,
        ),
        (
            "another room's name",
            v1::UpdateRoom { name: Some(other.name.to_uppercase()), ..update_room(room_id) },
            v1::ErrorCode::NameTaken,
        ),
        (
            "a topic of 513 bytes",
            v1::UpdateRoom { topic: Some("t".repeat(513)), ..update_room(room_id) },
            v1::ErrorCode::InvalidArgument,
        ),
    ];
    for (what, update, code) in attempts {
        let reply = ada.request(update_command(update)).await?;
        cx.check_refused("UPDATE-2", what, &reply, code);
    }
    let fits =
        ada.request(update_command(v1::UpdateRoom { topic: Some("é".repeat(256)), ..update_room(room_id) })).await?;
    cx.check(
        "UPDATE-2",
        matches!(&fits, Ok(Body::Room(r)) if r.topic.len() == 512),
        format!("a topic of 512 bytes fits: {}", brief(&fits)),
    );
    let reply = cy.request(update_command(v1::UpdateRoom { topic: Some("x".into()), ..update_room(room_id) })).await?;
    cx.check_refused("UPDATE-1", "UpdateRoom in a room not joined", &reply, v1::ErrorCode::NotAMember);
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let reply =
        cy.request(update_command(v1::UpdateRoom { topic: Some("x".into()), ..update_room(private.room_id) })).await?;
    cx.check_refused("UPDATE-1", "UpdateRoom in a private room of others", &reply, v1::ErrorCode::RoomNotFound);

    let direct = ada.open_direct(&bob_user.name).await?;
    let reply = ada
        .request(update_command(v1::UpdateRoom { name: Some(cx.name("dm")), ..update_room(direct.room_id) }))
        .await?;
    cx.check_refused("UPDATE-2", "renaming a DIRECT room", &reply, v1::ErrorCode::Forbidden);
    let reply =
        ada.request(update_command(v1::UpdateRoom { archived: Some(true), ..update_room(direct.room_id) })).await?;
    cx.check_refused("UPDATE-2", "archiving a DIRECT room", &reply, v1::ErrorCode::Forbidden);

    let after = head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before + 1, format!("only the accepted topic was appended: head {before} then {after}"));
    Ok(())
}

async fn archive(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, cy_user) = cx.user("cy").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    bob.join(by_id(room_id)).await?;
    let bobs = bob.send_message(room_id, "before the archive", "ar-1").await?;
    let archived =
        room_info(&mut ada, update_command(v1::UpdateRoom { archived: Some(true), ..update_room(room_id) })).await?;
    cx.check("ARCHIVE-1", archived.archived, format!("RoomInfo says archived: {archived:?}"));
    let before = head(&mut ada, room_id).await?;

    for (what, command) in [
        ("SendMessage", send(message(room_id, "too late", "ar-2"))),
        ("EditMessage", edit(room_id, bobs.seq, "changed")),
        ("DeleteMessage", delete(room_id, bobs.seq)),
        ("React", react(room_id, bobs.seq, "👍", false)),
        ("SetTyping", set_typing(room_id, true)),
    ] {
        let reply = bob.request(command).await?;
        cx.check_refused("ARCHIVE-1", what, &reply, v1::ErrorCode::RoomArchived);
    }
    let reply = cy.try_join(by_id(room_id)).await?;
    cx.check_refused("ARCHIVE-1", "JoinRoom", &reply, v1::ErrorCode::RoomArchived);
    let reply = ada.try_invite(by_id(room_id), &cy_user.name).await?;
    cx.check_refused("ARCHIVE-1", "InviteToRoom", &reply, v1::ErrorCode::RoomArchived);
    let reply =
        ada.request(update_command(v1::UpdateRoom { topic: Some("quiet".into()), ..update_room(room_id) })).await?;
    cx.check_refused("ARCHIVE-1", "UpdateRoom changing the topic only", &reply, v1::ErrorCode::RoomArchived);
    let after = head(&mut ada, room_id).await?;
    cx.check("ARCHIVE-1", after == before, format!("nothing was appended: head {before} then {after}"));

    let page = bob.history(room_id, v1::HistoryDirection::Backward, 0, 0).await?;
    cx.check("ARCHIVE-1", page.head_seq == before, format!("GetHistory still reads it: head {}", page.head_seq));
    let reply = bob.request(calls::mark_read(room_id, before)).await?;
    cx.check("ARCHIVE-1", matches!(reply, Ok(Body::ReadState(_))), format!("MarkRead still works: {}", brief(&reply)));
    let directory = cy.list_rooms(v1::RoomScope::Directory).await?;
    let listed = directory.iter().find(|r| r.room_id == room_id);
    cx.check("ARCHIVE-1", listed.is_some_and(|r| r.archived), format!("the directory lists it, archived: {listed:?}"));
    let reply = bob.try_leave(by_id(room_id)).await?;
    cx.check("ARCHIVE-1", matches!(reply, Ok(Body::Done(_))), format!("LeaveRoom still works: {}", brief(&reply)));

    let reopened =
        room_info(&mut ada, update_command(v1::UpdateRoom { archived: Some(false), ..update_room(room_id) })).await?;
    cx.check("UPDATE-1", !reopened.archived, format!("the OWNER unarchives it: {reopened:?}"));
    let reply = ada.request(send(message(room_id, "open again", "ar-3"))).await?;
    cx.check("ARCHIVE-1", calls::is_sent(&reply), format!("once unarchived, sending works again: {}", brief(&reply)));
    Ok(())
}

async fn directory_query(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let word = cx.name("quokka");
    let by_topic_name = cx.name("room");
    let reply = ada
        .request(create_command(
            &by_topic_name,
            v1::RoomKind::Public,
            vec![],
            &format!("All about {}s ☕", word.to_uppercase()),
        ))
        .await?;
    let topic_ok = matches!(&reply, Ok(Body::Room(r)) if r.topic.starts_with("All about"));
    cx.check("ROOM-3", topic_ok, format!("CreateRoom with a topic answers it in RoomInfo: {}", show_reply(&reply)));
    let by_name_name = format!("{word}-den");
    ada.create_room(&by_name_name, v1::RoomKind::Public).await?;
    let unrelated = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let private_name = format!("{word}-secret");
    ada.create_room(&private_name, v1::RoomKind::Private).await?;

    let list = bob
        .call(
            Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Directory as i32, query: word.to_uppercase() }),
            "RoomList",
            |b| match b {
                Body::Rooms(r) => Some(r.rooms),
                _ => None,
            },
        )
        .await?;
    let mut names: Vec<String> = list.iter().map(|r| r.name.clone()).collect();
    names.sort();
    let mut expected = vec![by_topic_name.clone(), by_name_name.clone()];
    expected.sort();
    cx.check(
        "ROOM-7",
        names == expected,
        format!(
            "query {:?} keeps the public rooms whose name or topic holds it (not {:?}, nor the private one); got {names:?}",
            word.to_uppercase(),
            unrelated.name
        ),
    );
    let reply = bob
        .request(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Mine as i32, query: word.clone() }))
        .await?;
    cx.check(
        "ROOM-7",
        matches!(&reply, Ok(Body::Rooms(r)) if r.rooms.is_empty()),
        format!("MINE ignores the query (bob is in no room): {}", show_reply(&reply)),
    );
    let reply = ada.request(create_command(&cx.name("room"), v1::RoomKind::Public, vec![], &"t".repeat(513))).await?;
    cx.check_refused("ROOM-3", "a topic of 513 bytes", &reply, v1::ErrorCode::InvalidArgument);
    Ok(())
}

async fn group_create(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, cy_user) = cx.user("cy").await?;
    bob.go_live().await?;
    let members =
        vec![bob_user.name.to_uppercase(), cy_user.name.clone(), ada_user.name.clone(), bob_user.name.clone()];
    let info = room_info(&mut ada, create_command("", v1::RoomKind::Private, members, "")).await?;
    cx.check(
        "GROUP-1",
        info.name.is_empty() && info.kind == v1::RoomKind::Private as i32 && info.member_count == 3,
        format!("an unnamed PRIVATE group of three (the creator's name and a repeated name ignored): {info:?}"),
    );
    let log = ada.room_log(info.room_id).await?;
    let expected = vec![
        (1, EventKind::Created, ada_user.id),
        (2, EventKind::Joined, ada_user.id),
        (3, EventKind::Joined, bob_user.id),
        (4, EventKind::Joined, cy_user.id),
    ];
    cx.check(
        "GROUP-2",
        shape(&log) == expected
            && matches!(log.first().and_then(|e| e.kind.as_ref()), Some(Kind::RoomCreated(c)) if c.name.is_empty()),
        format!(
            "RoomCreated (no name) and ada's join by ada, then bob's and cy's joins by themselves: {}",
            show_events_brief(&log)
        ),
    );
    let pushed = bob.events_until_quiet(std::time::Duration::from_millis(800)).await?;
    let first = pushed.first();
    cx.check(
        "GROUP-2",
        first.is_some_and(|e| e.seq == 3 && e.room_id == info.room_id),
        format!(
            "a member's resumed session gets the group's events from their own MemberJoined (#3): {}",
            show_events_brief(&pushed)
        ),
    );
    let members = cy.list_members(by_id(info.room_id)).await?;
    let role_of = |id: u64| {
        members.iter().find(|m| m.user.as_ref().is_some_and(|u| u.user_id == id)).map(|m| (m.membership, m.role))
    };
    let joined = v1::Membership::Joined as i32;
    cx.check(
        "GROUP-2",
        role_of(ada_user.id) == Some((joined, v1::Role::Owner as i32))
            && role_of(bob_user.id) == Some((joined, v1::Role::Member as i32))
            && role_of(cy_user.id) == Some((joined, v1::Role::Member as i32)),
        format!("the creator is OWNER, the members MEMBER, all joined: {}", super::show::show_members(&members)),
    );
    let mine = calls::mine(&mut cy, info.room_id).await?;
    cx.check("GROUP-2", mine.is_some(), format!("the group is in the member's ListRooms MINE: {mine:?}"));
    let reply = cy.request(send(message(info.room_id, "@room hi all", "gc-1"))).await?;
    cx.check("MENTION-3", calls::is_sent(&reply), format!("a MEMBER may mention @room in a group: {}", brief(&reply)));
    let notified = bob.push("Notification", calls::notification).await?;
    cx.check(
        "NOTIFY-1",
        notified.room_id == info.room_id && notified.room_name.is_empty(),
        format!("a group notifies like a DIRECT room by default (an unnamed group has no room name): {notified:?}"),
    );
    let plain = cy.send_message(info.room_id, "plain", "gc-2").await?;
    let notified = bob.push("Notification", calls::notification).await?;
    cx.check(
        "NOTIFY-1",
        notified.seq == plain.seq && notified.reason == v1::NotificationReason::ReasonMessage as i32,
        format!("default level ALL in a group: a plain message notifies: {notified:?}"),
    );

    let again = room_info(&mut ada, create_command("", v1::RoomKind::Private, vec![bob_user.name.clone()], "")).await?;
    cx.check("GROUP-1", again.room_id != info.room_id, "a second unnamed group is a room of its own");
    let named_name = cx.name("group");
    let named =
        room_info(&mut ada, create_command(&named_name, v1::RoomKind::Private, vec![cy_user.name.clone()], "plans"))
            .await?;
    cx.check(
        "ROOM-3",
        named.name == named_name && named.topic == "plans" && named.member_count == 2,
        format!("a named group with a topic: {named:?}"),
    );
    Ok(())
}

async fn group_refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (_bob, bob_user) = cx.user("bob").await?;
    let mut guest = cx.open("guest").await?;
    let guest_name = cx.name("guest");
    guest.guest(&guest_name).await?;
    let before = ada.list_rooms(v1::RoomScope::Mine).await?.len();
    let too_many: Vec<String> = (0..51).map(|i| format!("{}x{i}", cx.name("many"))).collect();
    let attempts: Vec<(&str, Command, v1::ErrorCode)> = vec![
        (
            "members with a PUBLIC room",
            create_command(&cx.name("room"), v1::RoomKind::Public, vec![bob_user.name.clone()], ""),
            v1::ErrorCode::InvalidArgument,
        ),
        ("51 members", create_command("", v1::RoomKind::Private, too_many, ""), v1::ErrorCode::InvalidArgument),
        (
            "an unknown member",
            create_command("", v1::RoomKind::Private, vec![bob_user.name.clone(), cx.name("nobody")], ""),
            v1::ErrorCode::UserNotFound,
        ),
        (
            "a guest as member",
            create_command("", v1::RoomKind::Private, vec![guest_name.clone()], ""),
            v1::ErrorCode::Forbidden,
        ),
        (
            "no name and no members",
            create_command("", v1::RoomKind::Private, vec![], ""),
            v1::ErrorCode::InvalidArgument,
        ),
    ];
    for (what, command, code) in attempts {
        let reply = ada.request(command).await?;
        cx.check_refused("GROUP-1", what, &reply, code);
    }
    let after = ada.list_rooms(v1::RoomScope::Mine).await?.len();
    cx.check("ERR-3", after == before, format!("no room was made: {before} rooms, then {after}"));
    Ok(())
}
