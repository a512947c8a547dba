//! Rooms through the real daemon: public and private rooms, invitations,
//! listing, members, direct conversations, and the events each produces.

mod support;

use confab_sdk::{
    RoomRef,
    v1::{self, ErrorCode, room_event::Kind},
};
use support::{TestDaemon, Wire, code, next_room_event};

#[tokio::test]
async fn room_lifecycle_over_every_wire() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let alice = td.user(wire, &format!("alice{i}")).await;
        let bob = td.user(wire, &format!("bob{i}")).await;
        let room = format!("general{i}");

        let created = alice.create_room(&room, v1::RoomKind::Public).await.unwrap();
        assert_eq!((created.head_seq, created.member_count), (2, 1), "RoomCreated then MemberJoined");
        assert_eq!(created.membership, v1::Membership::Joined as i32);
        assert_eq!(code(bob.create_room(&room, v1::RoomKind::Public).await), ErrorCode::NameTaken);

        let directory = bob.list_rooms(v1::RoomScope::Directory).await.unwrap();
        assert!(directory.iter().any(|r| r.name == room && r.membership == v1::Membership::None as i32));
        let joined = bob.join(RoomRef::from(room.as_str())).await.unwrap();
        assert_eq!(joined.room_id, created.room_id);
        assert_eq!(bob.join(RoomRef::from(room.as_str())).await.unwrap().head_seq, 3, "joining twice adds nothing");

        let members = alice.members(room.as_str()).await.unwrap();
        let roles: Vec<(String, i32)> =
            members.members.iter().map(|m| (m.user.as_ref().unwrap().name.clone(), m.role)).collect();
        assert!(roles.contains(&(format!("alice{i}"), v1::Role::Owner as i32)));
        assert!(roles.contains(&(format!("bob{i}"), v1::Role::Member as i32)));

        bob.leave(room.as_str()).await.unwrap();
        assert_eq!(code(bob.leave(room.as_str()).await), ErrorCode::NotAMember);
        assert_eq!(code(bob.send(room.as_str(), "hi").await), ErrorCode::NotAMember);
        let mine = bob.list_rooms(v1::RoomScope::Mine).await.unwrap();
        assert!(mine.iter().all(|r| r.name != room));
    }
}

#[tokio::test]
async fn private_rooms_are_invisible_to_outsiders_until_invited() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::Quic, "bob").await;
    let carol = td.user(Wire::WsJson, "carol").await;
    let secret = alice.create_room("secret", v1::RoomKind::Private).await.unwrap();

    for outsider in [&bob, &carol] {
        assert_eq!(code(outsider.join("secret").await), ErrorCode::RoomNotFound);
        assert_eq!(code(outsider.join(confab_sdk::RoomId(secret.room_id)).await), ErrorCode::RoomNotFound);
        assert_eq!(code(outsider.members("secret").await), ErrorCode::RoomNotFound);
        assert_eq!(code(outsider.send("secret", "let me in").await), ErrorCode::RoomNotFound);
        assert_eq!(
            code(outsider.history("secret", v1::HistoryDirection::Backward, confab_sdk::Seq(0), 10).await),
            ErrorCode::RoomNotFound
        );
        assert_eq!(code(outsider.invite("secret", "carol").await), ErrorCode::RoomNotFound);
    }
    let directory = bob.list_rooms(v1::RoomScope::Directory).await.unwrap();
    assert!(directory.iter().all(|r| r.name != "secret"));
    assert_eq!(code(alice.invite("secret", "nobody").await), ErrorCode::UserNotFound);

    alice.invite("secret", "bob").await.unwrap();
    assert_eq!(code(alice.invite("secret", "bob").await), ErrorCode::AlreadyMember);
    let invited = bob.list_rooms(v1::RoomScope::Mine).await.unwrap();
    assert_eq!(invited.iter().find(|r| r.name == "secret").unwrap().membership, v1::Membership::Invited as i32);
    bob.join("secret").await.unwrap();
    bob.send("secret", "thanks for the invite").await.unwrap();
    assert_eq!(code(carol.join("secret").await), ErrorCode::RoomNotFound);
}

#[tokio::test]
async fn invitations_and_joins_are_pushed_as_events() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsJson, "alice").await;
    let bob = td.user(Wire::Quic, "bob").await;
    let room = alice.create_room("team", v1::RoomKind::Private).await.unwrap();

    alice.invite("team", "bob").await.unwrap();
    // Bob follows nothing in this room yet, but hears of his invitation.
    let event = next_room_event(&bob).await;
    match &event.kind {
        Some(Kind::MemberInvited(invited)) => assert_eq!(invited.invitee.as_ref().unwrap().name, "bob"),
        other => panic!("{other:?}"),
    }
    assert_eq!(event.sender.as_ref().unwrap().name, "alice");

    bob.join("team").await.unwrap();
    let seen_by_bob = next_room_event(&bob).await;
    assert!(matches!(seen_by_bob.kind, Some(Kind::MemberJoined(_))), "{seen_by_bob:?}");
    // Alice follows the room from its creation: created, her join, the
    // invitation, bob's join.
    let mut alice_kinds = Vec::new();
    while alice_kinds.len() < 4 {
        let event = next_room_event(&alice).await;
        assert_eq!(event.room_id, room.room_id);
        alice_kinds.push(event.seq);
    }
    assert_eq!(alice_kinds, vec![1, 2, 3, 4]);

    bob.send("team", "hello team").await.unwrap();
    let message = next_room_event(&alice).await;
    assert_eq!(support::text_of(&message), Some("hello team"));
    assert_eq!(message.epoch, 1);
}

#[tokio::test]
async fn direct_conversations_are_one_room_per_pair() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::WsJson, "bob").await;
    let from_alice = alice.open_direct("bob").await.unwrap();
    let from_bob = bob.open_direct("alice").await.unwrap();
    assert_eq!(from_alice.room_id, from_bob.room_id);
    assert_eq!(from_alice.kind, v1::RoomKind::Direct as i32);
    assert_eq!(from_alice.peer.as_ref().unwrap().name, "bob");
    assert_eq!(from_bob.peer.as_ref().unwrap().name, "alice");
    assert_eq!(code(alice.open_direct("alice").await), ErrorCode::Forbidden);
    assert_eq!(code(alice.open_direct("nobody").await), ErrorCode::UserNotFound);

    let carol = td.user(Wire::Quic, "carol").await;
    let room = confab_sdk::RoomId(from_alice.room_id);
    assert_eq!(code(carol.send(room, "eavesdrop").await), ErrorCode::RoomNotFound);
    assert_eq!(code(alice.invite(room, "carol").await), ErrorCode::Forbidden);
    alice.send(room, "psst").await.unwrap();
    let page = bob.history(room, v1::HistoryDirection::Backward, confab_sdk::Seq(0), 10).await.unwrap();
    assert_eq!(support::text_of(page.events.last().unwrap()), Some("psst"));
}

#[tokio::test]
async fn invitees_see_the_room_but_must_join_to_speak() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::WsJson, "bob").await;
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();
    alice.invite("secret", "bob").await.unwrap();
    assert_eq!(code(bob.send("secret", "too early").await), ErrorCode::NotAMember);
    assert_eq!(
        code(bob.history("secret", v1::HistoryDirection::Backward, confab_sdk::Seq(0), 10).await),
        ErrorCode::NotAMember
    );
    assert_eq!(code(bob.invite("secret", "alice").await), ErrorCode::NotAMember);
    bob.members("secret").await.unwrap();
    // Declining: leaving as an invitee removes the invitation.
    bob.leave("secret").await.unwrap();
    assert_eq!(code(bob.join("secret").await), ErrorCode::RoomNotFound);
}

#[tokio::test]
async fn a_direct_room_keeps_its_peer_after_the_peer_leaves() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::Quic, "bob").await;
    let dm = alice.open_direct("bob").await.unwrap();
    bob.leave(confab_sdk::RoomId(dm.room_id)).await.unwrap();
    let again = alice.open_direct("bob").await.unwrap();
    assert_eq!(again.room_id, dm.room_id);
    assert_eq!(again.peer.unwrap().name, "bob");
    let mine = alice.list_rooms(v1::RoomScope::Mine).await.unwrap();
    assert_eq!(mine.iter().find(|r| r.room_id == dm.room_id).unwrap().peer.as_ref().unwrap().name, "bob");
}
