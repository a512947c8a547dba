//! The writer and the write operations against a real redb file: group
//! commit, idempotent sends, membership rules, refresh-token rotation.

use std::sync::Arc;

use super::*;
use crate::{
    hub::Hub,
    ids::{RoomId, UserId},
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    writer: Writer,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.redb")).unwrap();
    let hub = Arc::new(Hub::new(store.clone(), 1000, usize::MAX));
    let writer = Writer::start(store.database(), hub);
    Fixture { _dir: dir, store, writer }
}

fn grant(n: u8) -> TokenGrant {
    TokenGrant { hash: [n; 32], expires_at_ms: u64::MAX }
}

async fn write(f: &Fixture, op: WriteOp) -> OpResult {
    f.writer.handle().write(op).await.unwrap()
}

async fn user(f: &Fixture, name: &str) -> UserId {
    let op = WriteOp::Register {
        name: name.into(),
        password_hash: "x".into(),
        device_name: String::new(),
        grant: grant(name.len() as u8),
    };
    match write(f, op).await.unwrap() {
        OpOutput::User { user, .. } => user,
        other => panic!("{other:?}"),
    }
}

async fn room(f: &Fixture, creator: UserId, name: &str, kind: RoomKind) -> RoomId {
    match write(f, WriteOp::CreateRoom { creator, name: name.into(), kind, topic: String::new(), members: Vec::new() })
        .await
        .unwrap()
    {
        OpOutput::Room { room } => room,
        other => panic!("{other:?}"),
    }
}

fn send(user: UserId, room: RoomId, txn: &str, text: &str) -> WriteOp {
    WriteOp::Send { user, room, txn_id: txn.into(), content: crate::store::MessageContent::text(text) }
}

#[tokio::test]
async fn a_retried_send_returns_the_first_result_and_appends_nothing() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let general = room(&f, alice, "general", RoomKind::Public).await;
    let first = write(&f, send(alice, general, "t1", "hello")).await.unwrap();
    let again = write(&f, send(alice, general, "t1", "hello")).await.unwrap();
    let (OpOutput::Sent { seq: s1, duplicate: false, .. }, OpOutput::Sent { seq: s2, duplicate: true, .. }) =
        (first, again)
    else {
        panic!("not a send followed by its duplicate");
    };
    assert_eq!(s1, s2);
    assert_eq!(write(&f, send(alice, general, "t1", "different")).await, Err(Refusal::TxnConflict));
    let head = f.store.room(general).unwrap().unwrap().head_seq;
    assert_eq!(head, s1, "nothing appended after the first send");
}

#[tokio::test]
async fn concurrent_sends_share_commits_and_get_consecutive_sequence_numbers() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let general = room(&f, alice, "general", RoomKind::Public).await;
    let handle = f.writer.handle();
    let mut answers = Vec::new();
    for i in 0..500 {
        answers.push(handle.submit(send(alice, general, &format!("t{i}"), "x")).await.unwrap());
    }
    let mut seqs = Vec::new();
    for answer in answers {
        match answer.await.unwrap().unwrap().unwrap() {
            OpOutput::Sent { seq, .. } => seqs.push(seq),
            other => panic!("{other:?}"),
        }
    }
    // Submitted in order, so appended in order: 3..=502 after the creation
    // and join events.
    assert_eq!(seqs, (3..503).collect::<Vec<_>>());
    let events = f.store.events(general, crate::ids::Seq(1), crate::ids::Seq(1000), 1000, false).unwrap();
    assert_eq!(events.len(), 502);
}

#[tokio::test]
async fn private_rooms_need_an_invitation_and_hide_from_others() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let bob = user(&f, "bob").await;
    let secret = room(&f, alice, "secret", RoomKind::Private).await;
    assert_eq!(write(&f, WriteOp::Join { user: bob, room: secret }).await, Err(Refusal::RoomNotFound));
    assert_eq!(write(&f, send(bob, secret, "b1", "hi")).await, Err(Refusal::RoomNotFound));
    assert_eq!(write(&f, WriteOp::Invite { by: bob, room: secret, invitee: bob }).await, Err(Refusal::RoomNotFound));
    write(&f, WriteOp::Invite { by: alice, room: secret, invitee: bob }).await.unwrap();
    assert_eq!(write(&f, WriteOp::Invite { by: alice, room: secret, invitee: bob }).await, Err(Refusal::AlreadyMember));
    assert_eq!(write(&f, WriteOp::Join { user: bob, room: secret }).await, Ok(OpOutput::Room { room: secret }));
    assert!(write(&f, send(bob, secret, "b1", "hi")).await.is_ok());
    assert_eq!(f.store.room(secret).unwrap().unwrap().joined_count, 2);
    write(&f, WriteOp::Leave { user: bob, room: secret }).await.unwrap();
    assert_eq!(write(&f, send(bob, secret, "b2", "hi")).await, Err(Refusal::RoomNotFound));
    assert_eq!(f.store.room(secret).unwrap().unwrap().joined_count, 1);
}

#[tokio::test]
async fn guests_stay_in_public_rooms() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let OpOutput::User { user: guest, .. } = write(&f, WriteOp::CreateGuest { name: "zed".into() }).await.unwrap()
    else {
        panic!()
    };
    let secret = room(&f, alice, "secret", RoomKind::Private).await;
    assert!(matches!(
        write(&f, WriteOp::Invite { by: alice, room: secret, invitee: guest }).await,
        Err(Refusal::Forbidden(_))
    ));
    assert!(matches!(
        write(
            &f,
            WriteOp::CreateRoom {
                creator: guest,
                name: "mine".into(),
                kind: RoomKind::Private,
                topic: String::new(),
                members: Vec::new()
            }
        )
        .await,
        Err(Refusal::Forbidden(_))
    ));
    assert!(matches!(write(&f, WriteOp::OpenDirect { user: alice, peer: guest }).await, Err(Refusal::Forbidden(_))));
    assert!(room(&f, guest, "lobby", RoomKind::Public).await.0 > 0);
}

#[tokio::test]
async fn direct_rooms_are_found_again() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let bob = user(&f, "bob").await;
    let first = write(&f, WriteOp::OpenDirect { user: alice, peer: bob }).await.unwrap();
    let second = write(&f, WriteOp::OpenDirect { user: bob, peer: alice }).await.unwrap();
    assert_eq!(first, second);
    assert!(matches!(write(&f, WriteOp::OpenDirect { user: alice, peer: alice }).await, Err(Refusal::Forbidden(_))));
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_its_family() {
    let f = fixture();
    let alice = user(&f, "alice").await; // family 1, token [5; 32]
    let rotated = write(&f, WriteOp::RotateRefresh { presented: [5; 32], grant: grant(100) }).await.unwrap();
    let OpOutput::Rotated { user, family } = rotated else { panic!("{rotated:?}") };
    assert_eq!(user, alice);
    assert_eq!(
        write(&f, WriteOp::RotateRefresh { presented: [5; 32], grant: grant(101) }).await,
        Err(Refusal::TokenReused { family })
    );
    assert!(f.store.token_family(family).unwrap().unwrap().revoked);
    // The newest token of the family is dead too.
    assert_eq!(
        write(&f, WriteOp::RotateRefresh { presented: [100; 32], grant: grant(102) }).await,
        Err(Refusal::TokenInvalid)
    );
    assert_eq!(
        write(&f, WriteOp::RotateRefresh { presented: [9; 32], grant: grant(103) }).await,
        Err(Refusal::TokenInvalid)
    );
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let op = WriteOp::StartFamily {
        user: alice,
        device_name: String::new(),
        grant: TokenGrant { hash: [42; 32], expires_at_ms: 1 },
    };
    write(&f, op).await.unwrap();
    assert_eq!(
        write(&f, WriteOp::RotateRefresh { presented: [42; 32], grant: grant(43) }).await,
        Err(Refusal::TokenExpired)
    );
}

#[tokio::test]
async fn names_are_unique_whatever_their_case() {
    let f = fixture();
    let alice = user(&f, "alice").await;
    let op = WriteOp::Register {
        name: "ALICE".into(),
        password_hash: "x".into(),
        device_name: String::new(),
        grant: grant(77),
    };
    assert!(matches!(write(&f, op).await, Err(Refusal::NameTaken(_))));
    room(&f, alice, "general", RoomKind::Public).await;
    assert!(matches!(
        write(
            &f,
            WriteOp::CreateRoom {
                creator: alice,
                name: "General".into(),
                kind: RoomKind::Public,
                topic: String::new(),
                members: Vec::new(),
            }
        )
        .await,
        Err(Refusal::NameTaken(_))
    ));
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.redb");
    drop(Store::open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::META)
            .unwrap()
            .insert(tables::meta::SCHEMA_VERSION, 99u64.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path).err().expect("refused").to_string();
    assert!(error.contains("schema version 99") && error.contains("newer"), "{error}");
}

#[tokio::test]
async fn expired_refresh_tokens_are_swept_and_live_ones_kept() {
    let f = fixture();
    let alice = user(&f, "alice").await; // token [5; 32], never expires
    let expired = TokenGrant { hash: [42; 32], expires_at_ms: 1 };
    write(&f, WriteOp::StartFamily { user: alice, device_name: String::new(), grant: expired }).await.unwrap();
    assert_eq!(write(&f, WriteOp::SweepExpiredTokens).await, Ok(OpOutput::Swept { tokens: 1 }));
    assert_eq!(
        write(&f, WriteOp::RotateRefresh { presented: [42; 32], grant: grant(43) }).await,
        Err(Refusal::TokenInvalid)
    );
    assert!(write(&f, WriteOp::RotateRefresh { presented: [5; 32], grant: grant(44) }).await.is_ok());
    assert_eq!(write(&f, WriteOp::SweepExpiredTokens).await, Ok(OpOutput::Swept { tokens: 0 }));
}

/// A store written before feature level 2 (schema 1: no message counts, no
/// read markers) opens with its counts filled in and its members' markers
/// at the head, so nothing old shows as unread.
#[tokio::test]
async fn schema_1_stores_gain_message_counts_and_read_markers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let (alice, bob, general) = {
        let store = Store::open(&path).unwrap();
        let writer = Writer::start(store.database(), Arc::new(Hub::new(store.clone(), 1000, usize::MAX)));
        let f = Fixture { _dir: tempfile::tempdir().unwrap(), store, writer };
        let (alice, bob) = (user(&f, "alice").await, user(&f, "bob").await);
        let general = room(&f, alice, "general", RoomKind::Public).await;
        write(&f, WriteOp::Join { user: bob, room: general }).await.unwrap();
        for n in 0..3 {
            write(&f, send(alice, general, &format!("t{n}"), "hello")).await.unwrap();
        }
        f.writer.stop().await;
        (alice, bob, general)
    };
    {
        // Turn it back into what schema 1 wrote.
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::META)
            .unwrap()
            .insert(tables::meta::SCHEMA_VERSION, 1u64.to_be_bytes().as_slice())
            .unwrap();
        let mut rooms = txn.open_table(tables::ROOMS).unwrap();
        let mut record = rooms.get(general.0).unwrap().unwrap().value();
        record.message_count = 0;
        rooms.insert(general.0, record).unwrap();
        drop(rooms);
        let mut events = txn.open_table(tables::EVENTS).unwrap();
        for seq in 1..=6 {
            let mut event = events.get((general.0, seq)).unwrap().unwrap().value();
            event.messages_through = 0;
            events.insert((general.0, seq), event).unwrap();
        }
        drop(events);
        txn.open_table(tables::READ_STATES).unwrap().retain(|_, _| false).unwrap();
        txn.commit().unwrap();
    }

    let store = Store::open(&path).unwrap();
    let room = store.room(general).unwrap().unwrap();
    assert_eq!((room.head_seq, room.message_count), (6, 3));
    let through: Vec<u64> = store
        .events(general, crate::ids::Seq(1), crate::ids::Seq(6), 10, false)
        .unwrap()
        .into_iter()
        .map(|(_, event)| event.messages_through)
        .collect();
    assert_eq!(through, [0, 0, 0, 1, 2, 3]);
    let db = store.database();
    let txn = redb::ReadableDatabase::begin_read(&*db).unwrap();
    let markers = txn.open_table(tables::READ_STATES).unwrap();
    for who in [alice, bob] {
        assert_eq!(markers.get((general.0, who.0)).unwrap().unwrap().value().read_seq, 6, "{who:?}");
    }
    let version =
        txn.open_table(tables::META).unwrap().get(tables::meta::SCHEMA_VERSION).unwrap().unwrap().value().to_vec();
    assert_eq!(version, tables::SCHEMA_VERSION.to_be_bytes());
}
