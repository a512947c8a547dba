//! §12 The room log, §13 Sending messages, §14 Idempotency and retries.

use std::{collections::BTreeMap, time::Duration};

use confab_sdk::v1::{self, client_frame::Command, room_event::Kind, server_frame::Body};
use futures_util::future::join_all;

use super::{
    Case, Ctx,
    conn::{QUIET, by_id, is_error, numbered, send_message},
    events::{is_run, now_ms, plausible_time, seqs, texts},
    show::{show_event_brief, show_events_brief, show_reply},
};
use crate::{
    outcome::CaseResult,
    wire::{Wire, Wires},
};

const LOG: &str = "The room log";
const SEND: &str = "Sending messages";
const IDEM: &str = "Idempotency and retries";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "log/event-kinds",
            LOG,
            "Every change to a room is an event with a position, time, sender and kind, numbered 1, 2, 3 without gaps",
            &["LOG-1", "LOG-2", "LOG-3", "LOG-4"],
            Wires::All,
            event_kinds,
        ),
        Case::new(
            "send/invalid",
            SEND,
            "Empty, blank and too long texts and missing or too long transaction ids are refused and append nothing",
            &["SEND-1", "LIMIT-2", "LIMIT-4", "ERR-3"],
            Wires::All,
            invalid_sends,
        ),
        Case::new(
            "send/not-member",
            SEND,
            "Sending to a visible room not joined is NOT_A_MEMBER, to a room the user cannot see ROOM_NOT_FOUND",
            &["SEND-2", "ERR-3"],
            Wires::All,
            not_member,
        ),
        Case::new(
            "send/result-matches-event",
            SEND,
            "SendResult states the position and time of the event, which another connection reads right away",
            &["SEND-4", "SEND-5", "LOG-1"],
            Wires::All,
            result_matches_event,
        ),
        Case::new(
            "send/fan-out",
            SEND,
            "A message is pushed once to every session following the room, the sender's own included, and to no other",
            &["SEND-5"],
            Wires::All,
            fan_out,
        ),
        Case::new(
            "send/session-order",
            SEND,
            "Messages pipelined on one session are appended in the order they were sent",
            &["SEND-6", "LOG-2"],
            Wires::All,
            session_order,
        ),
        Case::new(
            "send/concurrent-order",
            SEND,
            "Senders on every wire sending at once: all followers see one total order, each sender's in its order",
            &["SEND-5", "SEND-6", "LOG-2"],
            Wires::Once,
            concurrent_order,
        ),
        Case::new(
            "idem/duplicate",
            IDEM,
            "A retried send is answered with the original SendResult marked duplicate and appends and pushes nothing",
            &["IDEM-1", "IDEM-2"],
            Wires::All,
            duplicate,
        ),
        Case::new(
            "idem/conflict",
            IDEM,
            "A transaction id reused for another text or another room is TXN_CONFLICT and appends nothing",
            &["IDEM-3", "ERR-3"],
            Wires::All,
            conflict,
        ),
        Case::new(
            "idem/per-user",
            IDEM,
            "Transaction ids belong to the user: another user may use the same one, another session retries it",
            &["IDEM-2", "IDEM-4"],
            Wires::All,
            per_user,
        ),
        Case::new(
            "idem/retry-after-drop",
            IDEM,
            "Sends whose connection dropped before the reply, retried after reconnecting, are applied exactly once",
            &["IDEM-2", "IDEM-4"],
            Wires::All,
            retry_after_drop,
        ),
    ]
}

// --- the room log ---

async fn event_kinds(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, cy_user) = cx.user("cy").await?;
    let room_name = cx.name("room");
    let room = ada.create_room(&room_name, v1::RoomKind::Private).await?;
    let id = room.room_id;
    ada.invite(by_id(id), &bob_user.name).await?;
    bob.join(by_id(id)).await?;
    ada.invite(by_id(id), &cy_user.name).await?;
    cy.leave(by_id(id)).await?; // declines the invitation
    ada.send_message(id, "hello", "log-1").await?;
    bob.leave(by_id(id)).await?;

    let log = ada.room_log(id).await?;
    cx.log().note(&format!("log: {}", show_events_brief(&log)));
    let got = seqs(&log);
    cx.check("LOG-2", is_run(&got, 1, 8), format!("seqs 1 to 8 for eight changes, got {got:?}"));
    cx.check(
        "LOG-3",
        log.iter().all(|e| e.epoch == 1),
        format!("a new room's events are in epoch 1; epochs {:?}", log.iter().map(|e| e.epoch).collect::<Vec<_>>()),
    );
    for event in &log {
        let complete = event.room_id == id
            && plausible_time(event.server_time_ms)
            && event.sender.as_ref().is_some_and(|u| u.user_id != 0 && !u.name.is_empty())
            && event.kind.is_some();
        cx.check(
            "LOG-1",
            complete,
            format!("room_id {id}, server_time_ms near now, a sender and a kind: {}", show_event_brief(event)),
        );
    }

    type Expect = (&'static str, u64, fn(&v1::RoomEvent) -> bool);
    let expected: [Expect; 8] = [
        (
            "RoomCreated",
            ada_user.id,
            |e| matches!(&e.kind, Some(Kind::RoomCreated(c)) if c.kind == v1::RoomKind::Private as i32 && !c.name.is_empty()),
        ),
        ("MemberJoined", ada_user.id, |e| matches!(e.kind, Some(Kind::MemberJoined(_)))),
        ("MemberInvited", ada_user.id, |e| matches!(e.kind, Some(Kind::MemberInvited(_)))),
        ("MemberJoined", bob_user.id, |e| matches!(e.kind, Some(Kind::MemberJoined(_)))),
        ("MemberInvited", ada_user.id, |e| matches!(e.kind, Some(Kind::MemberInvited(_)))),
        ("MemberLeft", cy_user.id, |e| matches!(e.kind, Some(Kind::MemberLeft(_)))),
        (
            "Message",
            ada_user.id,
            |e| matches!(&e.kind, Some(Kind::Message(m)) if m.text == "hello" && m.client_txn_id == "log-1"),
        ),
        ("MemberLeft", bob_user.id, |e| matches!(e.kind, Some(Kind::MemberLeft(_)))),
    ];
    for (i, (kind, sender, matches)) in expected.iter().enumerate() {
        let seq = i as u64 + 1;
        let Some(event) = log.iter().find(|e| e.seq == seq) else { continue };
        let sender_ok = event.sender.as_ref().is_some_and(|u| u.user_id == *sender);
        cx.check(
            "LOG-4",
            matches(event) && sender_ok,
            format!("#{seq}: {kind} sent by user {sender}; got {}", show_event_brief(event)),
        );
    }
    for (seq, invitee) in [(3, &bob_user), (5, &cy_user)] {
        if let Some(Kind::MemberInvited(invited)) = log.iter().find(|e| e.seq == seq).and_then(|e| e.kind.as_ref()) {
            let named = invited.invitee.as_ref().map(|u| (u.user_id, u.name.clone()));
            cx.check(
                "LOG-4",
                named == Some((invitee.id, invitee.name.clone())),
                format!("#{seq} names invitee {} ({}), got {named:?}", invitee.name, invitee.id),
            );
        }
    }
    if let Some(Kind::RoomCreated(created)) = log.first().and_then(|e| e.kind.as_ref()) {
        cx.check(
            "LOG-4",
            created.name == room_name,
            format!("RoomCreated names the room {room_name:?}, got {:?}", created.name),
        );
    }
    Ok(())
}

// --- sending ---

async fn invalid_sends(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    let limits = ada.limits();
    let max = limits.max_message_bytes as usize;

    let reply = ada.request(send_message(id, "", "empty")).await?;
    cx.check_error("SEND-1", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(send_message(id, " \t\r\n  ", "blank")).await?;
    cx.check_error("SEND-1", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(send_message(id, "no transaction id", "")).await?;
    cx.check_error("SEND-1", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(send_message(id, "transaction id too long", &"t".repeat(65))).await?;
    cx.check_error("LIMIT-4", &reply, v1::ErrorCode::InvalidArgument);

    let mut accepted = Vec::new();
    let reply = ada.request(send_message(id, "longest transaction id", &"t".repeat(64))).await?;
    cx.check(
        "LIMIT-4",
        matches!(reply, Ok(Body::Sent(_))),
        format!("a 64-byte client_txn_id is accepted: {}", show_reply(&reply)),
    );
    accepted.push("longest transaction id".to_owned());

    // The whole frame must fit the frame limit for the text limit to be reached.
    if max + 200 <= limits.max_frame_bytes as usize {
        let reply = ada.request(send_message(id, &"x".repeat(max + 1), "too-long")).await?;
        cx.check_error("LIMIT-2", &reply, v1::ErrorCode::MessageTooLong);
        // Multi-byte characters: the limit counts bytes, not characters.
        let wide = "é".repeat(max / 2 + 1);
        let reply = ada.request(send_message(id, &wide, "too-long-utf8")).await?;
        cx.check(
            "SEND-1",
            is_error(&reply, v1::ErrorCode::MessageTooLong),
            format!(
                "{} characters of 2 bytes ({} bytes) are MESSAGE_TOO_LONG; got {}",
                max / 2 + 1,
                wide.len(),
                show_reply(&reply)
            ),
        );
        let longest = "y".repeat(max);
        let reply = ada.request(send_message(id, &longest, "longest")).await?;
        cx.check(
            "SEND-1",
            matches!(reply, Ok(Body::Sent(_))),
            format!("a text of exactly {max} bytes is accepted: {}", show_reply(&reply)),
        );
        accepted.push(longest);
    } else {
        cx.note(format!(
            "max_message_bytes {max} does not fit in max_frame_bytes {}; the text limit was not tried",
            limits.max_frame_bytes
        ));
    }

    let log = ada.room_log(id).await?;
    let got = texts(&log);
    cx.check(
        "ERR-3",
        got == accepted,
        format!(
            "only the {} accepted messages are in the log; it holds {} messages: {}",
            accepted.len(),
            got.len(),
            show_events_brief(&log)
        ),
    );
    Ok(())
}

async fn not_member(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let public = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let invited = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    ada.invite(by_id(invited.room_id), &bob_user.name).await?;
    let left = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(left.room_id)).await?;
    bob.leave(by_id(left.room_id)).await?;

    let reply = bob.request(send_message(public.room_id, "hi", "nm-1")).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::NotAMember);
    let reply = bob.request(send_message(invited.room_id, "hi", "nm-2")).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::NotAMember);
    let reply = bob.request(send_message(left.room_id, "hi", "nm-3")).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::NotAMember);
    let reply = bob.request(send_message(private.room_id, "hi", "nm-4")).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::RoomNotFound);
    let reply = bob.request(send_message(u64::MAX - 7, "hi", "nm-5")).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::RoomNotFound);
    let by_name = Command::SendMessage(v1::SendMessage {
        room: Some(v1::RoomRef::name(cx.name("nosuchroom"))),
        text: "hi".into(),
        client_txn_id: "nm-6".into(),
        ..Default::default()
    });
    let reply = bob.request(by_name).await?;
    cx.check_error("SEND-2", &reply, v1::ErrorCode::RoomNotFound);

    for room in [&public, &invited, &left, &private] {
        let log = ada.room_log(room.room_id).await?;
        cx.check(
            "ERR-3",
            texts(&log).is_empty(),
            format!("no message appended to room {}: {}", room.room_id, show_events_brief(&log)),
        );
    }
    Ok(())
}

async fn result_matches_event(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    ada.go_live().await?;
    let before = now_ms();
    let result = ada.send_message(room.room_id, "where is it", "rm-1").await?;
    let after = now_ms();
    let expected_seq = room.head_seq + 1;
    cx.check(
        "SEND-4",
        result.room_id == room.room_id
            && result.epoch == room.epoch
            && result.seq == expected_seq
            && !result.duplicate
            && plausible_time(result.server_time_ms),
        format!(
            "SendResult room {} epoch {} seq {expected_seq}, duplicate false, a time near now ({before}..{after}); got {result:?}",
            room.room_id, room.epoch
        ),
    );

    // Another connection reads the event as soon as the reply is in.
    let mut reader = cx.reconnect(&ada_user, "ada-reader").await?;
    let page = reader.history(room.room_id, v1::HistoryDirection::Backward, 0, 1).await?;
    let stored = page.events.last();
    let held = stored.is_some_and(|e| {
        e.seq == result.seq
            && e.epoch == result.epoch
            && e.server_time_ms == result.server_time_ms
            && matches!(&e.kind, Some(Kind::Message(m)) if m.text == "where is it" && m.client_txn_id == "rm-1")
    });
    cx.check(
        "SEND-4",
        held,
        format!(
            "right after SendResult, history on another connection ends with that event (seq {}, time {}); got {}",
            result.seq,
            result.server_time_ms,
            stored.map_or("nothing".into(), show_event_brief)
        ),
    );

    let pushed = ada.event().await?;
    let matches = pushed.room_id == result.room_id
        && pushed.epoch == result.epoch
        && pushed.seq == result.seq
        && pushed.server_time_ms == result.server_time_ms
        && pushed.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id);
    cx.check(
        "SEND-5",
        matches,
        format!(
            "the event pushed to the sender's session has the SendResult's position and time: {}",
            show_event_brief(&pushed)
        ),
    );
    cx.check(
        "LOG-1",
        matches!(&pushed.kind, Some(Kind::Message(m)) if m.text == "where is it" && m.client_txn_id == "rm-1"),
        format!("the pushed event is the Message with its text and client_txn_id: {}", show_event_brief(&pushed)),
    );
    Ok(())
}

async fn fan_out(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    for conn in [&mut ada, &mut ada2, &mut bob, &mut cy] {
        conn.go_live().await?;
    }
    let results = ada.send_all(room.room_id, &numbered("fan", 3)).await?;
    let sent_seqs: Vec<u64> = results.iter().map(|r| r.seq).collect();

    for (who, conn) in
        [("the sending session", &mut ada), ("the sender's other session", &mut ada2), ("a member", &mut bob)]
    {
        let events = conn.events(3).await?;
        cx.check(
            "SEND-5",
            seqs(&events) == sent_seqs && texts(&events) == ["fan 0", "fan 1", "fan 2"],
            format!("{who} gets the three messages (seqs {sent_seqs:?}) once each; got {}", show_events_brief(&events)),
        );
    }
    let stray = cy.events_until_quiet(QUIET).await?;
    cx.check(
        "SEND-5",
        stray.is_empty(),
        format!("a user not in the room gets none of its events; got {}", show_events_brief(&stray)),
    );
    Ok(())
}

async fn session_order(cx: Ctx) -> CaseResult {
    const N: usize = 30;
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let sends = numbered("order", N);
    let results = ada.send_all(room.room_id, &sends).await?;
    let got: Vec<u64> = results.iter().map(|r| r.seq).collect();
    let first = room.head_seq + 1;
    cx.check(
        "SEND-6",
        is_run(&got, first, first + N as u64 - 1),
        format!("{N} pipelined sends get seqs {first}.. in the order sent; got {got:?}"),
    );
    let log = ada.room_log(room.room_id).await?;
    let want: Vec<String> = sends.iter().map(|(text, _)| text.clone()).collect();
    cx.check(
        "SEND-6",
        texts(&log) == want,
        format!("the log holds the messages in the order sent; got {:?}", texts(&log)),
    );
    let got = seqs(&log);
    cx.check(
        "LOG-2",
        is_run(&got, 1, first + N as u64 - 1),
        format!("seqs 1 to {} without gaps; got {got:?}", first + N as u64 - 1),
    );
    Ok(())
}

async fn concurrent_order(cx: Ctx) -> CaseResult {
    const PER_SENDER: usize = 15;
    let wires: Vec<Wire> = cx.target().wires.clone();
    let (mut owner, _) = cx.user("owner").await?;
    let room = cx.new_room(&mut owner, v1::RoomKind::Public).await?;
    let id = room.room_id;

    // Two senders and one follower on each wire.
    let mut senders = Vec::new();
    let mut followers = Vec::new();
    for (i, wire) in wires.iter().chain(wires.iter()).enumerate() {
        let (mut conn, _) = cx.user_on(*wire, &format!("sender{i}")).await?;
        conn.join(by_id(id)).await?;
        senders.push((i, conn));
    }
    for (i, wire) in wires.iter().enumerate() {
        let (mut conn, _) = cx.user_on(*wire, &format!("follower{i}")).await?;
        conn.join(by_id(id)).await?;
        followers.push(conn);
    }
    let mut head = 0;
    for follower in &mut followers {
        let resumed = follower.go_live().await?;
        head = resumed.rooms.iter().find(|s| s.room_id == id).map_or(0, |s| s.head_seq);
    }
    // The follower that resumed last knows the head every later event follows.
    let total = senders.len() * PER_SENDER;

    let sending = senders.into_iter().map(|(i, mut conn)| async move {
        let sends = numbered(&format!("s{i}"), PER_SENDER);
        let results = conn.send_all(id, &sends).await;
        (i, results, conn)
    });
    let mut by_sender: BTreeMap<usize, Vec<v1::SendResult>> = BTreeMap::new();
    for (i, results, _conn) in join_all(sending).await {
        by_sender.insert(i, results?);
    }

    let mut orders = Vec::new();
    for (n, follower) in followers.iter_mut().enumerate() {
        let events = follower.events(total).await?;
        let mine: Vec<v1::RoomEvent> = events.into_iter().filter(|e| e.seq > head).collect();
        let got = seqs(&mine);
        cx.check(
            "LOG-2",
            is_run(&got, head + 1, head + total as u64),
            format!(
                "follower on {} sees seqs {}..={} without gaps or repeats; got {got:?}",
                wires[n],
                head + 1,
                head + total as u64
            ),
        );
        orders.push(texts(&mine));
    }
    let first = orders.first().cloned().unwrap_or_default();
    cx.check(
        "SEND-5",
        orders.iter().all(|o| *o == first),
        format!("every follower sees the same order; the first sees {first:?}"),
    );
    // Read from a follower: the owner's connection may have idled out.
    let Some(reader) = followers.first_mut() else { return Ok(()) };
    let log = reader.room_log(id).await?;
    let logged: Vec<v1::RoomEvent> = log.into_iter().filter(|e| e.seq > head).collect();
    cx.check(
        "SEND-5",
        texts(&logged) == first,
        format!("the pushed order is the log's order; the log has {:?}", texts(&logged)),
    );
    for (i, results) in &by_sender {
        let tag = format!("s{i} ");
        let own: Vec<&String> = first.iter().filter(|t| t.starts_with(&tag)).collect();
        let want: Vec<String> = (0..PER_SENDER).map(|k| format!("s{i} {k}")).collect();
        cx.check(
            "SEND-6",
            own.iter().map(|s| s.as_str()).eq(want.iter().map(|s| s.as_str())),
            format!("sender {i}'s messages appear in the order it sent them; got {own:?}"),
        );
        let result_seqs: Vec<u64> = results.iter().map(|r| r.seq).collect();
        let log_seqs: Vec<u64> = logged
            .iter()
            .filter(|e| matches!(&e.kind, Some(Kind::Message(m)) if m.text.starts_with(&tag)))
            .map(|e| e.seq)
            .collect();
        cx.check(
            "SEND-6",
            result_seqs == log_seqs && result_seqs.windows(2).all(|w| w[0] < w[1]),
            format!("sender {i}'s SendResults name rising seqs matching the log: {result_seqs:?} vs {log_seqs:?}"),
        );
    }
    Ok(())
}

// --- idempotency ---

async fn duplicate(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    bob.go_live().await?;
    let first = ada.send_message(room.room_id, "only once", "dup-1").await?;
    let pushed = bob.events(1).await?;
    cx.check(
        "IDEM-2",
        seqs(&pushed) == [first.seq],
        format!("the first send is pushed once (seq {}); got {}", first.seq, show_events_brief(&pushed)),
    );

    let again = ada.send_message(room.room_id, "only once", "dup-1").await?;
    let original = v1::SendResult { duplicate: true, ..first };
    cx.check("IDEM-2", again == original, format!("the retry gets {original:?}; got {again:?}"));
    let pushed = bob.events_until_quiet(QUIET).await?;
    cx.check("IDEM-2", pushed.is_empty(), format!("the retry pushes nothing; got {}", show_events_brief(&pushed)));

    // Still recognised after more messages were appended.
    ada.send_all(room.room_id, &numbered("later", 5)).await?;
    let late = ada.send_message(room.room_id, "only once", "dup-1").await?;
    cx.check(
        "IDEM-1",
        late == original,
        format!("a retry after five later messages still gets {original:?}; got {late:?}"),
    );
    let log = ada.room_log(room.room_id).await?;
    let copies = texts(&log).iter().filter(|t| *t == "only once").count();
    cx.check(
        "IDEM-2",
        copies == 1,
        format!("the log holds the message once, found {copies}: {}", show_events_brief(&log)),
    );
    Ok(())
}

async fn conflict(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let other = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    ada.send_message(room.room_id, "first text", "cf-1").await?;

    let reply = ada.request(send_message(room.room_id, "second text", "cf-1")).await?;
    cx.check_error("IDEM-3", &reply, v1::ErrorCode::TxnConflict);
    let reply = ada.request(send_message(other.room_id, "first text", "cf-1")).await?;
    cx.check_error("IDEM-3", &reply, v1::ErrorCode::TxnConflict);

    let log = ada.room_log(room.room_id).await?;
    cx.check(
        "ERR-3",
        texts(&log) == ["first text"],
        format!("the room holds only the first message: {}", show_events_brief(&log)),
    );
    let log = ada.room_log(other.room_id).await?;
    cx.check("ERR-3", texts(&log).is_empty(), format!("the other room holds no message: {}", show_events_brief(&log)));
    Ok(())
}

async fn per_user(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    let ada_result = ada.send_message(room.room_id, "same words", "shared-txn").await?;
    let bob_result = bob.send_message(room.room_id, "same words", "shared-txn").await?;
    cx.check(
        "IDEM-4",
        !bob_result.duplicate && bob_result.seq != ada_result.seq,
        format!(
            "another user's send with the same transaction id is a new message (ada's seq {}); got {bob_result:?}",
            ada_result.seq
        ),
    );
    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    let retried = ada2.send_message(room.room_id, "same words", "shared-txn").await?;
    let original = v1::SendResult { duplicate: true, ..ada_result };
    cx.check(
        "IDEM-2",
        retried == original,
        format!("a retry on another session of the same user gets {original:?}; got {retried:?}"),
    );
    let log = ada.room_log(room.room_id).await?;
    let copies = texts(&log).iter().filter(|t| *t == "same words").count();
    cx.check(
        "IDEM-4",
        copies == 2,
        format!("two messages (one per user), found {copies}: {}", show_events_brief(&log)),
    );
    Ok(())
}

async fn retry_after_drop(cx: Ctx) -> CaseResult {
    const N: usize = 5;
    let (mut ada, ada_user) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let sends = numbered("dropped", N);
    // The first sends have time to reach the server, the last are cut off
    // with the connection; no reply is read, so the client cannot know
    // which of them landed.
    for (i, (text, txn)) in sends.iter().enumerate() {
        if i == N / 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ada.command(send_message(room.room_id, text, txn)).await?;
    }
    ada.close().await;

    let mut again = cx.reconnect(&ada_user, "ada-again").await?;
    let results = again.send_all(room.room_id, &sends).await?;
    let log = again.room_log(room.room_id).await?;
    let want: Vec<String> = sends.iter().map(|(text, _)| text.clone()).collect();
    cx.check(
        "IDEM-4",
        texts(&log) == want,
        format!("each message once, in order, after the retries; the log holds {:?}", texts(&log)),
    );
    for (result, (text, txn)) in results.iter().zip(&sends) {
        let event = log.iter().find(|e| e.seq == result.seq);
        let same = event
            .is_some_and(|e| matches!(&e.kind, Some(Kind::Message(m)) if &m.text == text && &m.client_txn_id == txn));
        cx.check(
            "IDEM-2",
            same && result.epoch == room.epoch,
            format!(
                "the retry of {txn} is answered with the position of its one event; got {result:?}, the log has {}",
                event.map_or("nothing there".into(), show_event_brief)
            ),
        );
    }
    let duplicates = results.iter().filter(|r| r.duplicate).count();
    cx.log().note(&format!("{duplicates} of {N} retries were answered as duplicates"));
    Ok(())
}
