//! Resumption through the real daemon: a client that loses its connection
//! gets exactly the events it missed, and its unacknowledged sends are
//! applied once.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use confab_sdk::{
    Event,
    raw::RawConnection,
    v1::{self, client_frame::Command, server_frame::Body},
};
use support::{TestDaemon, Wire, text_of, within};

/// Logs a raw connection in and returns the user's tokens.
async fn raw_login(raw: &mut RawConnection, name: &str) -> v1::AuthResult {
    let login = Command::Login(v1::Login {
        username: name.into(),
        password: "correct horse battery".into(),
        ..Default::default()
    });
    match raw.request(login).await.unwrap() {
        Body::Auth(auth) => auth,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn resume_replays_exactly_the_gap_then_goes_live() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let room = alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    for n in 0..10 {
        alice.send("general", &format!("m{n}")).await.unwrap(); // seqs 3..=12
    }
    for wire in Wire::ALL {
        let head =
            alice.history("general", v1::HistoryDirection::Backward, confab_sdk::Seq(0), 1).await.unwrap().head_seq;
        let mut raw = td.raw(wire).await;
        raw_login(&mut raw, "alice").await;
        let id = raw
            .send_command(Command::Resume(v1::Resume {
                positions: vec![v1::RoomPosition { room_id: room.room_id, epoch: 1, seq: 7 }],
            }))
            .await
            .unwrap();
        let mut replayed = Vec::new();
        let status = loop {
            let frame = within("resume", raw.recv_frame()).await.unwrap();
            match frame.body {
                Some(Body::Event(event)) => replayed.push(event.seq),
                Some(Body::Resumed(result)) if frame.request_id == id => break result.rooms,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(replayed, (8..=head).collect::<Vec<_>>(), "{wire:?}");
        assert_eq!(status[0].outcome, v1::ResumeOutcome::Replayed as i32);
        assert_eq!((status[0].replayed, status[0].head_seq), (head - 7, head));

        let live = alice.send("general", "live").await.unwrap();
        let frame = within("a live event", raw.recv_frame()).await.unwrap();
        match frame.body {
            Some(Body::Event(event)) => assert_eq!(event.seq, live.seq),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn gaps_that_cannot_be_filled_are_reset_and_unknown_rooms_gone() {
    let td = TestDaemon::start_with(|c| c.limits.max_resume_events = 5).await;
    let alice = td.user(Wire::WsJson, "alice").await;
    let room = alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    for n in 0..10 {
        alice.send("general", &format!("m{n}")).await.unwrap();
    }
    let mut raw = td.raw(Wire::WsJson).await;
    raw_login(&mut raw, "alice").await;
    let positions = vec![
        v1::RoomPosition { room_id: room.room_id, epoch: 1, seq: 2 },
        v1::RoomPosition { room_id: 4242, epoch: 1, seq: 1 },
    ];
    let statuses = match raw.request(Command::Resume(v1::Resume { positions })).await.unwrap() {
        Body::Resumed(result) => result.rooms,
        other => panic!("{other:?}"),
    };
    let outcome = |id: u64| statuses.iter().find(|s| s.room_id == id).map(|s| s.outcome);
    assert_eq!(outcome(room.room_id), Some(v1::ResumeOutcome::Reset as i32));
    assert_eq!(outcome(4242), Some(v1::ResumeOutcome::Gone as i32));

    let wrong_epoch = vec![v1::RoomPosition { room_id: room.room_id, epoch: 9, seq: 11 }];
    let statuses = match raw.request(Command::Resume(v1::Resume { positions: wrong_epoch })).await.unwrap() {
        Body::Resumed(result) => result.rooms,
        other => panic!("{other:?}"),
    };
    assert_eq!(statuses[0].outcome, v1::ResumeOutcome::Reset as i32);
}

/// The SDK through a daemon restart: every message sent on either side of
/// the restart arrives exactly once, and sends in flight are applied once.
#[tokio::test]
async fn the_sdk_resumes_across_a_restart_without_gaps_or_duplicates() {
    for wire in Wire::ALL {
        let mut td = TestDaemon::start().await;
        let alice = td.user(wire, "alice").await;
        let bob = td.user(wire, "bob").await;
        alice.create_room("general", v1::RoomKind::Public).await.unwrap();
        bob.join("general").await.unwrap();

        // Bob keeps sending until the daemon is back, so the restart lands
        // among his sends...
        let restarted = Arc::new(AtomicBool::new(false));
        let sender = tokio::spawn({
            let restarted = restarted.clone();
            async move {
                let mut acked = Vec::new();
                while !restarted.load(Ordering::Relaxed) {
                    let text = format!("msg {}", acked.len());
                    acked.push(bob.send("general", &text).await.expect("send is retried until applied").seq);
                }
                (bob, acked)
            }
        });
        // Restart while bob is sending: his unacknowledged send is retried
        // with the same transaction id after the SDK reconnects.
        within("some messages", async {
            let mut seen = 0;
            while seen < 10 {
                if let Some(text) = text_of(&support::next_room_event(&alice).await) {
                    assert_eq!(text, format!("msg {seen}"));
                    seen += 1;
                }
            }
        })
        .await;
        td.restart_in_place().await;
        restarted.store(true, Ordering::Relaxed);

        let (bob, mut acked) = within("all sends", sender).await.unwrap();
        // ...and more once the daemon is back.
        let before = acked.len();
        for n in before..before + 20 {
            acked.push(bob.send("general", &format!("msg {n}")).await.unwrap().seq);
        }
        let total = acked.len();
        assert!(acked.windows(2).all(|w| w[0] < w[1]), "{wire:?}: {acked:?}");
        let mut texts = Vec::new();
        let mut reconnected = false;
        within("the rest of the messages", async {
            while texts.len() < total - 10 {
                match alice.next_event().await.expect("open") {
                    Event::Room(event) => {
                        if let Some(text) = text_of(&event) {
                            texts.push(text.to_owned());
                        }
                    }
                    // (Connected comes after the replay; the shutdown notice
                    // comes before it.)
                    Event::ServerClosed { code, .. } => {
                        assert_eq!(code, v1::CloseCode::ServerShutdown as i32);
                        reconnected = true;
                    }
                    _ => {}
                }
            }
        })
        .await;
        assert!(reconnected, "{wire:?}: the client was told to reconnect");
        let expected: Vec<String> = (10..total).map(|n| format!("msg {n}")).collect();
        assert_eq!(texts, expected, "{wire:?}: every message once, in order");

        let mut stored = Vec::new();
        let mut anchor = confab_sdk::Seq(0);
        loop {
            let page = bob.history("general", v1::HistoryDirection::Forward, anchor, 100).await.unwrap();
            stored.extend(page.events.iter().filter_map(text_of).map(str::to_owned));
            let Some(last) = page.events.last() else { break };
            anchor = confab_sdk::Seq(last.seq);
        }
        let all: Vec<String> = (0..total).map(|n| format!("msg {n}")).collect();
        assert_eq!(stored, all, "{wire:?}: each send stored once");
        td.stop().await;
    }
}

/// A session that stops reading is closed with SLOW_CONSUMER once its
/// queue is full, and resuming from its last position fills the gap.
#[tokio::test]
async fn a_session_that_falls_behind_is_told_to_resume() {
    let td = TestDaemon::start_with(|c| {
        c.limits.max_frame_bytes_unauthenticated = 16 * 1024;
        c.limits.max_frame_bytes = 16 * 1024;
        c.limits.max_message_bytes = 8 * 1024;
        c.limits.max_outbound_queue_bytes = 64 * 1024;
    })
    .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let room = alice.create_room("flood", v1::RoomKind::Public).await.unwrap();
    let mut slow = td.raw(Wire::WsProto).await;
    raw_login(&mut slow, "alice").await;
    match slow.request(Command::Resume(v1::Resume::default())).await.unwrap() {
        Body::Resumed(_) => {}
        other => panic!("{other:?}"),
    }
    // The slow session reads nothing while far more than the socket buffers
    // and its queue can hold is sent.
    let text = "x".repeat(8 * 1024 - 16);
    for n in 0..1500 {
        alice.send("flood", &format!("{n:05} {text}")).await.unwrap();
    }
    let mut last_seen = 0;
    let close = loop {
        let frame = within("the close", slow.recv_frame()).await;
        match frame {
            Ok(v1::ServerFrame { body: Some(Body::Event(event)), .. }) => {
                assert_eq!(event.seq, last_seen.max(2) + 1, "no gap before the close");
                last_seen = event.seq;
            }
            Ok(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => break close,
            // Her own presence is not a room event.
            Ok(v1::ServerFrame { body: Some(Body::Presence(_)), .. }) => {}
            Ok(other) => panic!("{other:?}"),
            Err(error) => panic!("closed without a Close frame: {error}"),
        }
    };
    assert_eq!(close.code, v1::CloseCode::SlowConsumer as i32);
    let head = alice.history("flood", v1::HistoryDirection::Backward, confab_sdk::Seq(0), 1).await.unwrap().head_seq;
    assert!(last_seen < head, "it did fall behind ({last_seen} of {head})");

    // Reconnect and resume from the last event seen: the gap is replayed
    // (or, if too large for one queue, the room is reset, never skipped).
    let mut again = td.raw(Wire::WsProto).await;
    raw_login(&mut again, "alice").await;
    let position = v1::RoomPosition { room_id: room.room_id, epoch: 1, seq: last_seen };
    let id = again.send_command(Command::Resume(v1::Resume { positions: vec![position] })).await.unwrap();
    let mut replayed = Vec::new();
    let status = loop {
        let frame = within("resume", again.recv_frame()).await.unwrap();
        match frame.body {
            Some(Body::Event(event)) => replayed.push(event.seq),
            Some(Body::Resumed(result)) if frame.request_id == id => break result.rooms,
            Some(Body::Presence(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    match v1::ResumeOutcome::try_from(status[0].outcome).unwrap() {
        v1::ResumeOutcome::Replayed => assert_eq!(replayed, (last_seen + 1..=head).collect::<Vec<_>>()),
        v1::ResumeOutcome::Reset => assert!(replayed.is_empty() && status[0].head_seq == head),
        other => panic!("{other:?}"),
    }
}
