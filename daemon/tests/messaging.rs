//! Sending and reading through the real daemon: history paging both ways,
//! ordering under concurrent senders, idempotent retries, limits, and data
//! that survives a restart.

mod support;

use std::collections::HashSet;

use confab_sdk::{
    Seq,
    v1::{self, ErrorCode, HistoryDirection},
};
use support::{TestDaemon, Wire, code, text_of};

#[tokio::test]
async fn history_pages_both_ways_over_every_wire() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let alice = td.user(wire, &format!("alice{i}")).await;
        let room = format!("room{i}");
        alice.create_room(&room, v1::RoomKind::Public).await.unwrap();
        for n in 0..25 {
            let sent = alice.send(room.as_str(), &format!("message {n} ✓")).await.unwrap();
            assert_eq!(sent.seq, n + 3);
            assert!(!sent.duplicate);
        }
        // Newest first page, then older pages until the start.
        let mut seen = Vec::new();
        let mut anchor = Seq(0);
        loop {
            let page = alice.history(room.as_str(), HistoryDirection::Backward, anchor, 10).await.unwrap();
            assert_eq!(page.head_seq, 27);
            let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "ascending within a page: {seqs:?}");
            seen.splice(0..0, seqs);
            if !page.has_more {
                break;
            }
            anchor = Seq(page.events[0].seq);
        }
        assert_eq!(seen, (1..=27).collect::<Vec<_>>());

        let forward = alice.history(room.as_str(), HistoryDirection::Forward, Seq(20), 5).await.unwrap();
        assert_eq!(forward.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![21, 22, 23, 24, 25]);
        assert!(forward.has_more);
        let tail = alice.history(room.as_str(), HistoryDirection::Forward, Seq(25), 5).await.unwrap();
        assert_eq!(tail.events.len(), 2);
        assert!(!tail.has_more);
        assert_eq!(text_of(&tail.events[1]), Some("message 24 ✓"));
        assert!(tail.events[1].server_time_ms > 0);
    }
}

#[tokio::test]
async fn concurrent_senders_get_one_order_that_everyone_sees() {
    let td = TestDaemon::start().await;
    let owner = td.user(Wire::WsProto, "owner").await;
    owner.create_room("busy", v1::RoomKind::Public).await.unwrap();
    let mut senders = Vec::new();
    for (i, wire) in Wire::ALL.into_iter().cycle().take(6).enumerate() {
        let client = td.user(wire, &format!("sender{i}")).await;
        client.join("busy").await.unwrap();
        senders.push(client);
    }
    let watcher = td.user(Wire::WsJson, "watcher").await;
    watcher.join("busy").await.unwrap();
    let start = watcher.history("busy", HistoryDirection::Backward, Seq(0), 1).await.unwrap().head_seq;

    const EACH: usize = 40;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..EACH {
                    seqs.push(client.send("busy", &format!("{i}:{n}")).await.unwrap().seq);
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a sender's messages keep its order");
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(all, (start + 1..=start + 6 * EACH as u64).collect::<Vec<_>>(), "no gap, no duplicate");

    // The watcher saw every message live, in log order.
    let mut live = Vec::new();
    while live.len() < 6 * EACH {
        let event = support::next_room_event(&watcher).await;
        if event.seq > start {
            live.push(event.seq);
        }
    }
    assert_eq!(live, (start + 1..=start + 6 * EACH as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_retried_send_is_applied_once() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::Quic, "alice").await;
    alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    let first = alice.send_with_txn("general", "only once", "txn-1").await.unwrap();
    assert!(!first.duplicate);
    // The same transaction from another connection (a retry after a drop).
    let again_client = td.client(Wire::WsJson).await;
    again_client.login("alice", "correct horse battery").await.unwrap();
    let again = again_client.send_with_txn("general", "only once", "txn-1").await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, again.server_time_ms), (first.seq, first.server_time_ms));
    assert_eq!(code(again_client.send_with_txn("general", "something else", "txn-1").await), ErrorCode::TxnConflict);

    let page = alice.history("general", HistoryDirection::Backward, Seq(0), 100).await.unwrap();
    let copies = page.events.iter().filter(|e| text_of(e) == Some("only once")).count();
    assert_eq!(copies, 1);
    assert_eq!(page.head_seq, first.seq);
}

#[tokio::test]
async fn message_limits_and_unknown_rooms_get_specific_errors() {
    let td = TestDaemon::start_with(|c| c.limits.max_message_bytes = 4096).await;
    let alice = td.user(Wire::WsProto, "alice").await;
    alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    assert_eq!(code(alice.send("general", &"x".repeat(4097)).await), ErrorCode::MessageTooLong);
    alice.send("general", &"é".repeat(2048)).await.unwrap(); // 4096 bytes exactly
    assert_eq!(code(alice.send("general", "   \n ").await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.send_with_txn("general", "hi", "").await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.send_with_txn("general", "hi", &"t".repeat(65)).await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.send("nowhere", "hi").await), ErrorCode::RoomNotFound);
    assert_eq!(code(alice.send(confab_sdk::RoomId(999_999), "hi").await), ErrorCode::RoomNotFound);
    assert_eq!(
        code(alice.history("general", HistoryDirection::Backward, Seq(0), 101).await),
        ErrorCode::InvalidArgument
    );
    // The session and the daemon carry on.
    alice.send("general", "still here").await.unwrap();
}

#[tokio::test]
async fn sends_are_rate_limited_with_a_retry_hint() {
    let td =
        TestDaemon::start_with(|c| c.rate_limits.sends_per_user = confabd::config::Rate { per_second: 1.0, burst: 5 })
            .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    for n in 0..5 {
        alice.send("general", &format!("{n}")).await.unwrap();
    }
    match alice.send("general", "one too many").await {
        Err(confab_sdk::Error::Server(e)) => {
            assert_eq!(e.code, ErrorCode::RateLimited as i32);
            assert!(e.temporary && (1..=1000).contains(&e.retry_after_ms), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let tokens = alice.tokens().unwrap();
    alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();
    let mut sent = HashSet::new();
    for n in 0..20 {
        sent.insert(alice.send("general", &format!("persisted {n}")).await.unwrap().seq);
    }
    alice.close().await;
    let fingerprint = td.fingerprint();
    td.restart().await;
    assert_eq!(td.fingerprint(), fingerprint, "the certificate is kept");

    let again = td.client(Wire::Quic).await;
    again.authenticate(&tokens.access_token, tokens.refresh_token.as_deref()).await.unwrap();
    let page = again.history("general", HistoryDirection::Backward, Seq(0), 100).await.unwrap();
    let seqs: HashSet<u64> = page.events.iter().filter(|e| text_of(e).is_some()).map(|e| e.seq).collect();
    assert_eq!(seqs, sent);
    let mine: Vec<String> = again.list_rooms(v1::RoomScope::Mine).await.unwrap().into_iter().map(|r| r.name).collect();
    assert!(mine.contains(&"general".into()) && mine.contains(&"secret".into()));
    // Ids keep counting: a new room does not reuse an old id.
    let third = again.create_room("third", v1::RoomKind::Public).await.unwrap();
    assert_eq!(third.room_id, 3);
}

#[tokio::test]
async fn a_retry_gets_its_first_result_even_after_leaving_or_hitting_the_rate_limit() {
    let td = TestDaemon::start_with(|c| {
        c.rate_limits.sends_per_user = confabd::config::Rate { per_second: 0.001, burst: 2 }
    })
    .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();
    let first = alice.send_with_txn("secret", "said once", "t-1").await.unwrap();
    alice.send_with_txn("secret", "said twice", "t-2").await.unwrap();
    assert_eq!(code(alice.send_with_txn("secret", "three", "t-3").await), ErrorCode::RateLimited);
    let retry = alice.send_with_txn("secret", "said once", "t-1").await.unwrap();
    assert!(retry.duplicate && retry.seq == first.seq);
    alice.leave("secret").await.unwrap();
    let retry = alice.send_with_txn(confab_sdk::RoomId(first.room_id), "said once", "t-1").await.unwrap();
    assert!(retry.duplicate && retry.seq == first.seq);
}
