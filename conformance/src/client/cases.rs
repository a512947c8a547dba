//! The client cases. Each starts the driver against its scripted server,
//! misbehaves as the case says, and grades the client on what it sent (the
//! server's view) and on what it reported (the driver's lines).
//!
//! Every case starts from the same world ([`super::model::Model::new`]):
//! the user under test has joined `lounge` (id 2^53+1, head 3) and `den`
//! (id 7, head 2); `bob` talks in them.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use confab_protocol::{
    Encoding, codec,
    v1::{self, client_frame::Command, room_event::Kind, server_frame::Body},
};
use serde_json::json;

use super::{
    Case, Client, Ctx,
    craft::{self, Dialect},
    model::{DEN, HelloAct, HistoryAct, LOUNGE, ResumeAct, SendAct, message, push},
    server::{Seen, WriteOp},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

/// Long enough for anything that must happen (a reconnect, an answer).
const SOON: Duration = Duration::from_secs(10);
/// How long `close/backoff` waits for five reconnect attempts.
const BACKOFF_WAIT: Duration = Duration::from_secs(60);
/// How long the suite watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(1500);

/// The head of `lounge` and `den` at the start of every case.
const LOUNGE_HEAD: u64 = 3;
const DEN_HEAD: u64 = 2;

pub fn all() -> Vec<Case> {
    vec![
        Case::new(
            "hello/first-frame",
            "Handshake and negotiation",
            "The client opens with Hello (version 1), asks for what it uses, and frames every request properly",
            &["HELLO-1", "HELLO-4", "FRAME-2", "WS-2", "QUIC-3"],
            Wires::All,
            first_frame,
        ),
        Case::new(
            "close/client-closes",
            "Closing",
            "The client ends a session by closing the transport, with code 0 (QUIC) or 1000 (WebSocket)",
            &["CLOSE-4", "QUIC-6", "WS-7"],
            Wires::All,
            client_closes,
        ),
        Case::new(
            "enc/unknown-fields",
            "Encodings",
            "Fields and capabilities the client does not know, in every server frame, are ignored",
            &["ENC-1", "ENC-5", "HELLO-4", "COMPAT-2"],
            Wires::All,
            unknown_fields,
        ),
        Case::new(
            "enc/non-canonical-binary",
            "Encodings",
            "Binary frames with fields out of order, repeated scalars and split messages read as protobuf says",
            &["ENC-1", "ENC-2"],
            Wires::Proto,
            non_canonical_binary,
        ),
        Case::new(
            "enc/json-variants",
            "Encodings",
            "JSON frames with proto field names, 64-bit numbers, enum numbers and null read as the canonical ones",
            &["ENC-5"],
            Wires::WsJson,
            json_variants,
        ),
        Case::new(
            "enc/unknown-enum-values",
            "Encodings",
            "An unknown error code reads as ERROR_CODE_UNSPECIFIED; an unknown room kind does not spoil a frame",
            &["ENC-7", "ERR-5", "COMPAT-2"],
            Wires::All,
            unknown_enum_values,
        ),
        Case::new(
            "enc/unknown-push-and-reply",
            "Encodings",
            "Pushes of unknown kinds and empty frames are ignored; a reply of an unknown kind still answers its request",
            &["ENC-8", "COMPAT-2"],
            Wires::All,
            unknown_push_and_reply,
        ),
        Case::new(
            "log/unknown-event-kind",
            "The room log",
            "An event of an unknown kind is skipped but advances the room's position",
            &["LOG-5", "COMPAT-2"],
            Wires::All,
            unknown_event_kind,
        ),
        Case::new(
            "log/order-and-duplicates",
            "The room log",
            "Duplicated pushes are dropped and events are applied by seq even when their times go backwards",
            &["LOG-2", "RESUME-11"],
            Wires::All,
            order_and_duplicates,
        ),
        Case::new(
            "live/pings-when-quiet",
            "Liveness",
            "A quiet client sends a frame every ping interval the server states in Welcome",
            &["LIVE-1"],
            Wires::All,
            pings_when_quiet,
        ),
        Case::new(
            "live/silent-server",
            "Liveness",
            "A server silent for the idle timeout (WebSocket pings aside) is treated as gone: the client reconnects",
            &["LIVE-4"],
            Wires::All,
            silent_server,
        ),
        Case::new(
            "errors/temporary-retry",
            "Errors",
            "A send answered RATE_LIMITED is kept and retried with the same transaction id, not before retry_after_ms",
            &["LIMIT-3", "ERR-4", "IDEM-5"],
            Wires::All,
            temporary_retry,
        ),
        Case::new(
            "close/reconnect-range",
            "Closing",
            "After a close code of 4000-4499 (known or not, with or without a Close frame) the client reconnects, \
             authenticates with its token and resumes",
            &["CLOSE-2", "CLOSE-3", "AUTH-2", "RESUME-11", "ENC-7"],
            Wires::All,
            reconnect_range,
        ),
        Case::new(
            "close/stop-range",
            "Closing",
            "After a close code of 4500-4999 (known or not) the client does not reconnect by itself",
            &["CLOSE-2", "CLOSE-3", "ENC-7"],
            Wires::All,
            stop_range,
        ),
        Case::new(
            "close/transport-code-decides",
            "Closing",
            "When the Close frame and the transport close code disagree, the transport code decides",
            &["CLOSE-3"],
            Wires::All,
            transport_code_decides,
        ),
        Case::new(
            "close/backoff",
            "Closing",
            "Reconnect attempts refused one after another are spaced by a growing delay",
            &["CLOSE-2"],
            Wires::All,
            backoff,
        ),
        Case::new(
            "auth/expired-token",
            "Accounts and authentication",
            "An expired access token is refreshed, the newest refresh token is the one presented, tokens never printed",
            &["AUTH-11", "AUTH-10", "AUTH-2"],
            Wires::All,
            expired_token,
        ),
        Case::new(
            "auth/stored-tokens",
            "Accounts and authentication",
            "Across runs (CONFAB_STATE_DIR) the client reuses its tokens and always presents the newest refresh token",
            &["AUTH-10", "AUTH-11", "AUTH-2"],
            Wires::Once,
            stored_tokens,
        ),
        Case::new(
            "idem/resend-after-drop",
            "Idempotency and retries",
            "A send whose connection dropped before its reply is resent after Resume with the same transaction id",
            &["IDEM-5", "RESUME-11", "RESUME-10", "AUTH-2"],
            Wires::All,
            resend_after_drop,
        ),
        Case::new(
            "idem/resend-several-in-order",
            "Idempotency and retries",
            "Several unanswered sends are resent in their original order, and replies in another order are matched",
            &["IDEM-5", "FRAME-4", "FRAME-2", "RESUME-10"],
            Wires::All,
            resend_several_in_order,
        ),
        Case::new(
            "frame/reply-order",
            "The envelope",
            "A send's event before its reply, a reply sent twice and a delayed reply are each handled once",
            &["FRAME-4", "RESUME-10"],
            Wires::All,
            reply_order,
        ),
        Case::new(
            "resume/dropped-mid-stream",
            "Resumption",
            "A connection dropped in the middle of a frame is resumed from the last event seen; overlaps are dropped",
            &["RESUME-11", "RESUME-10", "CLOSE-3", "AUTH-2"],
            Wires::All,
            dropped_mid_stream,
        ),
        Case::new(
            "resume/gap",
            "Resumption",
            "An event after a gap is not applied; the client resumes from its position and gets the gap filled",
            &["RESUME-11", "LOG-2"],
            Wires::All,
            gap,
        ),
        Case::new(
            "resume/reset",
            "Resumption",
            "A RESET room is reloaded with GetHistory and followed on from its head",
            &["RESUME-3"],
            Wires::All,
            reset,
        ),
        Case::new(
            "resume/epoch-change",
            "Resumption",
            "An event of another epoch makes the client reload the room, then follow the new epoch",
            &["RESUME-11", "LOG-3"],
            Wires::All,
            epoch_change,
        ),
        Case::new("resume/gone", "Resumption", "A position answered GONE is dropped", &["RESUME-4"], Wires::All, gone),
        Case::new(
            "resume/live-before-result",
            "Resumption",
            "Live events that arrive before the ResumeResult are not undone by it",
            &["RESUME-5", "RESUME-10"],
            Wires::All,
            live_before_result,
        ),
        Case::new(
            "resume/slow-consumer",
            "Resumption",
            "After SLOW_CONSUMER the client reconnects and resumes from its positions, losing nothing",
            &["RESUME-9", "CLOSE-2", "RESUME-10"],
            Wires::All,
            slow_consumer,
        ),
        Case::new(
            "resume/invitation-is-no-position",
            "Resumption",
            "An invitation to a room the client does not follow does not become a position in it",
            &["RESUME-6"],
            Wires::All,
            invitation_is_no_position,
        ),
        Case::new(
            "limit/frame-size",
            "Limits",
            "The client sends no frame over the limit stated in Welcome and refuses the request itself",
            &["LIMIT-1", "HELLO-5"],
            Wires::All,
            frame_size,
        ),
        Case::new(
            "quic/fingerprint",
            "Transports",
            "A client pinned to a fingerprint refuses a certificate with another one",
            &["QUIC-2"],
            Wires::Quic,
            fingerprint,
        ),
        Case::new(
            "quic/split-and-coalesced-frames",
            "Transports",
            "Frames split across packets, several frames in one write, and an empty frame are read correctly",
            &["QUIC-4", "ENC-8", "RESUME-10"],
            Wires::Quic,
            split_and_coalesced,
        ),
        Case::new(
            "ws/fragmented-messages",
            "Transports",
            "WebSocket messages in several fragments are reassembled",
            &["WS-5", "RESUME-10"],
            Wires::Ws,
            fragmented_messages,
        ),
        Case::new(
            "frame/malformed-from-server",
            "The envelope",
            "Undecodable frames (bad bytes, invalid UTF-8) are never applied; the client carries on without loss",
            &["ENC-3", "CLOSE-3", "RESUME-10"],
            Wires::All,
            malformed_from_server,
        ),
    ]
}

// ---- helpers ----------------------------------------------------------------

/// Bob says `count` messages in `room`; waits until the client reported
/// the last. Returns its seq.
async fn chat(cx: &Ctx, client: &mut Client, room: u64, count: usize) -> CaseResult<u64> {
    let mut last = 0;
    for n in 1..=count {
        last = cx.server().bob_says(room, &format!("bob's message {n}")).seq;
    }
    expect_event(client, room, last).await?;
    Ok(last)
}

/// Waits until the client reported `room`'s event `seq`.
async fn expect_event(client: &mut Client, room: u64, seq: u64) -> CaseResult {
    if client.wait_event(room, seq, SOON).await? {
        Ok(())
    } else {
        Err(Stop::Failed(format!("the client did not report event {seq} of room {room} within {} s", SOON.as_secs())))
    }
}

/// Waits for the client's reconnection (to its `Resume`).
async fn reconnect(cx: &Ctx, client: &mut Client, why: &str) -> CaseResult<super::Reconnect> {
    match client.reconnected(cx.server(), SOON).await? {
        Some(reconnect) => {
            cx.remark(&format!("reconnected on conn/{} after {why}: {}", reconnect.conn, reconnect.names()));
            Ok(reconnect)
        }
        None => Err(Stop::Failed(format!(
            "the client did not reconnect and resume within {} s after {why}",
            SOON.as_secs()
        ))),
    }
}

fn head(cx: &Ctx, room: u64) -> u64 {
    cx.server().model(|model| model.room(room).map_or(0, |r| r.head()))
}

fn frame_of(event: &v1::RoomEvent) -> v1::ServerFrame {
    push(Body::Event(event.clone()))
}

/// Commands the client sent on `conn`, in order.
fn commands_on(cx: &Ctx, conn: u32) -> Vec<Command> {
    cx.server()
        .seen()
        .iter()
        .filter_map(|s| s.command().filter(|(c, _, _)| *c == conn).map(|(_, _, c)| c.clone()))
        .collect()
}

fn answered(answer: &super::driver::Output, kind: &str) -> bool {
    answer.kind == kind
}

/// The seq of a `sent` answer.
fn sent_seq(answer: &super::driver::Output) -> Option<u64> {
    (answer.kind == "sent").then(|| answer.u64("seq")).flatten()
}

/// The reading requirement of the wire's encoding.
fn reading(cx: &Ctx) -> &'static str {
    if cx.wire().is_json() { "ENC-5" } else { "ENC-1" }
}

// ---- handshake ----------------------------------------------------------------

async fn first_frame(cx: Ctx) -> CaseResult {
    let client = cx.start().await?;
    let seen = cx.server().seen();
    let commands = commands_on(&cx, client.conn);
    match commands.first() {
        Some(Command::Hello(hello)) => {
            let level = hello.feature_level.max(1);
            cx.check(
                "HELLO-1",
                hello.versions.contains(&1) && level <= confab_protocol::FEATURE_LEVEL,
                format!(
                    "the first frame is Hello with versions {:?}, feature level {}, client name {:?}",
                    hello.versions, hello.feature_level, hello.client_name
                ),
            );
            cx.should(
                "HELLO-4",
                hello.capabilities.iter().any(|c| c == "resume"),
                format!(
                    "asks for capabilities {:?} (it sends Resume, so it should ask for resume)",
                    hello.capabilities
                ),
            );
        }
        other => {
            cx.check("HELLO-1", false, format!("the first frame is {:?}, not Hello", other.map(super::model::name)));
        }
    }
    let frames: Vec<&v1::ClientFrame> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Frame { conn, frame, .. } if *conn == client.conn => Some(frame),
            _ => None,
        })
        .collect();
    let proper = frames.iter().all(|f| f.request_id != 0 && f.command.is_some());
    let mut ids: Vec<u64> = frames.iter().map(|f| f.request_id).collect();
    ids.dedup();
    cx.check(
        "FRAME-2",
        proper,
        format!("{} frames, each with a non-zero request id and one command (ids {ids:?})", frames.len()),
    );
    if cx.is_quic() {
        let extra = seen.iter().any(|s| matches!(s, Seen::ExtraStream { .. }));
        cx.check("QUIC-3", !extra, "one bidirectional stream, Hello first on it, no other stream");
    } else {
        let offered = cx.offered(client.conn);
        let ours: Vec<&String> = offered.iter().filter(|name| Encoding::from_ws_subprotocol(name).is_some()).collect();
        // That the session runs in this wire's encoding, Ctx::start has
        // required; a frame in another encoding would not have decoded.
        cx.check("WS-2", !ours.is_empty(), format!("offers the subprotocols {offered:?}"));
    }
    client.quit().await
}

async fn client_closes(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    let answer = client.driver.call("disconnect", json!({})).await?;
    if !answered(&answer, "disconnected") {
        return Err(Stop::Failed(format!("disconnect was answered {answer}")));
    }
    let mut cursor = 0;
    let ended = cx
        .server()
        .wait(&mut cursor, SOON, |seen| match seen {
            Seen::Ended { conn: c, by_client, code, .. } if *c == conn => Some((*by_client, *code)),
            _ => None,
        })
        .await;
    let Some((by_client, code)) = ended else {
        cx.check("CLOSE-4", false, format!("the connection was still open {} s after disconnect", SOON.as_secs()));
        return client.quit().await;
    };
    cx.check("CLOSE-4", by_client, "the client ended the session by closing the transport");
    if cx.is_quic() {
        cx.should("QUIC-6", code == Some(0), format!("QUIC application error code {code:?} (0 expected)"));
    } else {
        cx.should("WS-7", code == Some(1000), format!("WebSocket close status {code:?} (1000 expected)"));
    }
    if let Some(other) = client.opened_another(cx.server(), QUIET).await {
        return Err(Stop::Failed(format!(
            "the client connected again (conn/{other}) after disconnect; the contract says it stays disconnected"
        )));
    }
    client.quit().await
}

// ---- encodings ------------------------------------------------------------------

/// A session in `dialect` from start to end: connect, events, a send, a
/// history page, a reconnect (so a ResumeResult with REPLAYED is read
/// too), checked under `requirements`.
async fn dialect_session(cx: &Ctx, dialect: Dialect, requirements: &[&str]) -> CaseResult {
    cx.server().set_dialect(dialect);
    let mut client = cx.start().await?;
    let check = |held: bool, detail: String| {
        for requirement in requirements {
            cx.check(requirement, held, &detail);
        }
    };
    chat(cx, &mut client, LOUNGE, 2).await?;
    let answer = client.send(LOUNGE, "a message through a server that writes oddly").await?;
    let seq = head(cx, LOUNGE);
    check(sent_seq(&answer) == Some(seq), format!("the send's result reads as seq {seq}: {answer}"));
    expect_event(&mut client, LOUNGE, seq).await?;
    let page = client.history(LOUNGE, "BACKWARD", 0, 3).await?;
    let seqs: Vec<Option<u64>> = page.events().iter().map(|e| e.seq).collect();
    check(
        answered(&page, "history")
            && seqs == [Some(seq - 2), Some(seq - 1), Some(seq)]
            && page.u64("head_seq") == Some(seq),
        format!("the history page reads as events {seqs:?}, head {:?}", page.u64("head_seq")),
    );
    // A reconnect: Welcome, AuthResult and a REPLAYED ResumeResult again.
    cx.server().drop_conn(client.conn);
    cx.server().model(|model| model.append_quietly(LOUNGE, &model.bob.clone(), message("missed", "")));
    reconnect(cx, &mut client, "a dropped connection").await?;
    let now = head(cx, LOUNGE);
    expect_event(&mut client, LOUNGE, now).await?;
    let events_ok = cx.check_events(requirements[0], &client, LOUNGE, LOUNGE_HEAD, now);
    for requirement in &requirements[1..] {
        cx.check(requirement, events_ok, "every room event read as written");
    }
    client.quit().await
}

async fn unknown_fields(cx: Ctx) -> CaseResult {
    cx.server().model(|model| model.script.extra_capabilities = vec!["x-future-capability".into()]);
    dialect_session(&cx, Dialect::UnknownFields, &[reading(&cx), "COMPAT-2"]).await?;
    cx.check("HELLO-4", true, "the client went on after a Welcome with a capability it does not know");
    Ok(())
}

async fn non_canonical_binary(cx: Ctx) -> CaseResult {
    dialect_session(&cx, Dialect::NonCanonical, &["ENC-1", "ENC-2"]).await
}

async fn json_variants(cx: Ctx) -> CaseResult {
    dialect_session(&cx, Dialect::JsonVariants, &["ENC-5"]).await
}

async fn unknown_enum_values(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    cx.server().model(|model| {
        model.script.sends.push_back(SendAct::Crafted(Box::new(|encoding, request_id| {
            craft::error_of_unknown_code(encoding, request_id, false, 0)
        })))
    });
    let answer = client.send(LOUNGE, "meets an error code from the future").await?;
    let code = answer.str("code").unwrap_or_default().to_owned();
    cx.check(
        "ERR-5",
        answered(&answer, "error") && code == "ERROR_CODE_UNSPECIFIED",
        format!("the unknown error code is reported as {code:?} (ERROR_CODE_UNSPECIFIED expected): {answer}"),
    );
    cx.server().model(|model| {
        model.script.histories.push_back(HistoryAct::Crafted(Box::new(move |encoding, request_id| {
            let events = vec![
                v1::RoomEvent {
                    room_id: DEN,
                    epoch: 1,
                    seq: 1,
                    server_time_ms: 1_767_225_600_000,
                    sender: None,
                    kind: Some(Kind::RoomCreated(v1::RoomCreated { name: "den".into(), kind: 1 })),
                },
                v1::RoomEvent {
                    room_id: DEN,
                    epoch: 1,
                    seq: 2,
                    server_time_ms: 1_767_225_601_000,
                    sender: None,
                    kind: Some(Kind::MemberJoined(v1::MemberJoined {})),
                },
            ];
            let page = v1::HistoryPage {
                room_id: DEN,
                epoch: 1,
                events,
                has_more: false,
                head_seq: DEN_HEAD,
                ..Default::default()
            };
            craft::page_with_unknown_room_kind(encoding, request_id, &page)
        })))
    });
    let page = client.history(DEN, "BACKWARD", 0, 10).await?;
    let seqs: Vec<Option<u64>> = page.events().iter().map(|e| e.seq).collect();
    let read = answered(&page, "history") && seqs == [Some(1), Some(2)];
    cx.check("ENC-7", read, format!("a page whose RoomCreated has an unknown room kind reads as {seqs:?}: {page}"));
    cx.check("COMPAT-2", read, "unknown enum values are tolerated");
    let lost = client.lost_session(cx.server(), QUIET).await;
    cx.check("ENC-7", lost.is_none(), lost.as_deref().unwrap_or("neither frame made the client drop its session"));
    client.quit().await
}

async fn unknown_push_and_reply(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    cx.server().write_crafted(conn, craft::unknown_push);
    cx.server().write_crafted(conn, craft::empty_frame);
    let seq = chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.check("ENC-8", seq == LOUNGE_HEAD + 1, "after a push of an unknown kind and an empty frame, events go on");
    cx.server().model(|model| {
        model.script.histories.push_back(HistoryAct::Crafted(Box::new(craft::unknown_reply)));
    });
    let id = client
        .driver
        .command("history", json!({"room_id": LOUNGE.to_string(), "direction": "BACKWARD", "anchor": "0", "limit": 5}))
        .await?;
    let answer = client.driver.try_answer(&id, SOON).await?;
    cx.check(
        "ENC-8",
        answer.is_some(),
        match &answer {
            Some(answer) => format!("the request answered with a reply of an unknown kind was answered: {answer}"),
            None => format!(
                "the request answered with a reply of an unknown kind was still waiting after {} s",
                SOON.as_secs()
            ),
        },
    );
    let page = client.history(LOUNGE, "BACKWARD", 0, 5).await?;
    let expected = head(&cx, LOUNGE).min(5) as usize;
    cx.check(
        "ENC-8",
        answered(&page, "history") && page.events().len() == expected,
        format!("the next request is answered normally: {} events ({expected} expected)", page.events().len()),
    );
    let lost = client.lost_session(cx.server(), QUIET).await;
    let stayed = lost.as_deref().unwrap_or("the session stayed up throughout (unknown frames are ignored, not fatal)");
    cx.check("ENC-8", lost.is_none(), stayed);
    cx.check("COMPAT-2", lost.is_none(), format!("unknown push bodies are ignored: {stayed}"));
    client.quit().await
}

// ---- the room log -----------------------------------------------------------------

async fn unknown_event_kind(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    let bob = cx.server().model(|model| model.bob.clone());
    let unknown = cx
        .server()
        .model(|model| model.append_event(LOUNGE, v1::RoomEvent { sender: Some(bob.clone()), ..Default::default() }));
    let resumes_before = resumes_on(&cx, conn);
    cx.server().write_crafted(conn, |encoding| craft::event_of_unknown_kind(encoding, &unknown));
    let next = cx.server().bob_says(LOUNGE, "after an event of an unknown kind");
    expect_event(&mut client, LOUNGE, next.seq).await?;
    let extra = client.opened_another(cx.server(), Duration::from_millis(500)).await;
    let resumed_again = resumes_on(&cx, conn) > resumes_before;
    cx.check(
        "LOG-5",
        extra.is_none() && !resumed_again,
        format!(
            "event {} (after the unknown kind at {}) was applied as the next one, without a Resume or reconnect",
            next.seq, unknown.seq
        ),
    );
    cx.check("COMPAT-2", extra.is_none(), "an unknown event kind is skipped");
    cx.server().drop_conn(conn);
    let back = reconnect(&cx, &mut client, "a dropped connection").await?;
    cx.check(
        "LOG-5",
        back.position(LOUNGE) == Some((1, next.seq)),
        format!("resumes lounge from {:?} (1, {} expected: past the unknown event)", back.position(LOUNGE), next.seq),
    );
    cx.check_events("LOG-5", &client, LOUNGE, LOUNGE_HEAD, next.seq);
    client.quit().await
}

fn resumes_on(cx: &Ctx, conn: u32) -> usize {
    commands_on(cx, conn).iter().filter(|c| matches!(c, Command::Resume(_))).count()
}

async fn order_and_duplicates(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    let events = cx.server().act(|model| {
        model.script.duplicate_pushes = true;
        let bob = model.bob.clone();
        let mut writes = Vec::new();
        let mut events = Vec::new();
        for n in 0..3u64 {
            // Each later event carries an earlier time.
            let template = v1::RoomEvent {
                sender: Some(bob.clone()),
                server_time_ms: 1_767_300_000_000 - n * 60_000,
                kind: Some(message(&format!("earlier and earlier {n}"), "")),
                ..Default::default()
            };
            let event = model.append_event(LOUNGE, template);
            writes.extend(model.push_event(&event, None));
            events.push(event);
        }
        // And an old one again, late.
        writes.push((conn, WriteOp::Frame(frame_of(&events[0]))));
        (events, writes)
    });
    let last = events.last().map_or(0, |e| e.seq);
    expect_event(&mut client, LOUNGE, last).await?;
    let _ = client.driver.wait_reports(Duration::from_millis(500), |_| false).await?;
    cx.check_events("RESUME-11", &client, LOUNGE, LOUNGE_HEAD, last);
    let seqs: Vec<Option<u64>> = client.events(LOUNGE).iter().map(|e| e.seq).collect();
    let ascending = seqs.windows(2).all(|w| w[0] < w[1]);
    cx.check("LOG-2", ascending, format!("events applied by seq although their times go backwards: {seqs:?}"));
    client.quit().await
}

// ---- liveness ---------------------------------------------------------------------

async fn pings_when_quiet(cx: Ctx) -> CaseResult {
    const PING_MS: u64 = 300;
    cx.server().model(|model| {
        model.welcome.ping_interval_ms = PING_MS as u32;
        model.welcome.idle_timeout_ms = 10_000;
    });
    let mut client = cx.start().await?;
    let conn = client.conn;
    let watch = Duration::from_millis(2500);
    let started = tokio::time::Instant::now();
    let mut times = vec![started];
    while started.elapsed() < watch {
        let left = watch.saturating_sub(started.elapsed());
        let mut cursor = client.cursor;
        let at = cx
            .server()
            .wait(&mut cursor, left, |seen| match seen {
                Seen::Frame { conn: c, at, .. } if *c == conn => Some(*at),
                _ => None,
            })
            .await;
        client.cursor = cursor;
        match at {
            Some(at) => times.push(at),
            None => break,
        }
    }
    times.push(tokio::time::Instant::now());
    let longest = times.windows(2).map(|w| w[1].duration_since(w[0])).max().unwrap_or_default();
    // Twice the interval, and room for a busy machine.
    let limit = Duration::from_millis(PING_MS * 2 + 700);
    cx.should(
        "LIVE-1",
        longest <= limit,
        format!(
            "{} frames in {} ms of quiet with ping_interval_ms {PING_MS}; the longest silence was {} ms",
            times.len() - 2,
            watch.as_millis(),
            longest.as_millis()
        ),
    );
    client.quit().await
}

async fn silent_server(cx: Ctx) -> CaseResult {
    cx.server().model(|model| {
        model.welcome.ping_interval_ms = 300;
        model.welcome.idle_timeout_ms = 1500;
    });
    let mut client = cx.start().await?;
    let conn = client.conn;
    cx.server().model(|model| model.script.silent_on = Some(conn));
    if !cx.is_quic() {
        for _ in 0..10 {
            cx.server().write(conn, WriteOp::WsPing);
            cx.server().write(conn, WriteOp::Pause(Duration::from_millis(250)));
        }
    }
    let started = tokio::time::Instant::now();
    let back = client.reconnected(cx.server(), Duration::from_millis(1500) + SOON).await?;
    let took = started.elapsed();
    cx.should(
        "LIVE-4",
        back.is_some() && took <= Duration::from_millis(1500 + 4000),
        match &back {
            Some(_) => {
                format!("reconnected {} ms after the server fell silent (idle_timeout_ms 1500)", took.as_millis())
            }
            None => "did not reconnect after the server fell silent".into(),
        },
    );
    if back.is_some() {
        chat(&cx, &mut client, LOUNGE, 1).await?;
    }
    client.quit().await
}

// ---- errors -------------------------------------------------------------------------

async fn temporary_retry(cx: Ctx) -> CaseResult {
    const RETRY_AFTER_MS: u32 = 700;
    let mut client = cx.start().await?;
    cx.server().model(|model| {
        let limited = v1::Error::temporary(v1::ErrorCode::RateLimited, "slow down", RETRY_AFTER_MS);
        model.script.sends.push_back(SendAct::Error(limited));
    });
    let text = "rate limited at first";
    let id = client.driver.command("send", json!({"room_id": LOUNGE.to_string(), "text": text})).await?;
    let pick = |_, command: &Command| match command {
        Command::SendMessage(send) => Some(send.clone()),
        _ => None,
    };
    let Some((first, first_at)) = client.next_command_timed(cx.server(), SOON, pick).await else {
        return Err(Stop::Failed("the client did not send the message".into()));
    };
    let within = Duration::from_millis(u64::from(RETRY_AFTER_MS) + 2500);
    let retry = client.next_command_timed(cx.server(), within, pick).await;
    let resent = match retry {
        Some((again, at)) => {
            let waited = at.duration_since(first_at);
            let patient = waited + Duration::from_millis(50) >= Duration::from_millis(RETRY_AFTER_MS.into());
            cx.should(
                "LIMIT-3",
                patient,
                format!("retried {} ms after RATE_LIMITED with retry_after_ms {RETRY_AFTER_MS}", waited.as_millis()),
            );
            cx.check("ERR-4", patient, "a temporary error is retried, not before retry_after_ms");
            again
        }
        None => {
            if let Some(answer) = client.driver.try_answer(&id, Duration::ZERO).await? {
                cx.check(
                    "IDEM-5",
                    answered(&answer, "sent"),
                    format!("the client gave up on a temporary error and dropped the send from its outbox: {answer}"),
                );
                return client.quit().await;
            }
            cx.remark("no retry yet; dropping the connection: the send must still be in the outbox (IDEM-5)");
            cx.server().drop_conn(client.conn);
            reconnect(&cx, &mut client, "a dropped connection").await?;
            match client.next_command_timed(cx.server(), SOON, pick).await {
                Some((again, _)) => again,
                None => {
                    cx.check(
                        "IDEM-5",
                        false,
                        "the send answered with a temporary error was not resent after reconnecting",
                    );
                    return client.quit().await;
                }
            }
        }
    };
    cx.check(
        "IDEM-5",
        resent.client_txn_id == first.client_txn_id && resent.text == first.text && resent.room == first.room,
        format!(
            "the retry carries transaction id {:?} (the first had {:?})",
            resent.client_txn_id, first.client_txn_id
        ),
    );
    let answer = client.driver.answer(&id).await?;
    let seq = head(&cx, LOUNGE);
    cx.check("IDEM-5", sent_seq(&answer) == Some(seq), format!("the send was applied once, as seq {seq}: {answer}"));
    client.quit().await
}

// ---- closing ---------------------------------------------------------------------------

async fn reconnect_range(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let closes: [(Option<u32>, u32, &str); 5] = [
        (Some(4000), 4000, "SERVER_SHUTDOWN"),
        (Some(4001), 4001, "IDLE_TIMEOUT"),
        (None, 4003, "SERVER_BUSY, with no Close frame"),
        (Some(4004), 4004, "INTERNAL_ERROR"),
        (Some(4321), 4321, "a reconnect-range code this version does not know"),
    ];
    for (frame, code, name) in closes {
        let seq = chat(&cx, &mut client, LOUNGE, 1).await?;
        cx.server().close(client.conn, frame, code, "scripted close");
        let Some(back) = client.reconnected(cx.server(), SOON).await? else {
            cx.should("CLOSE-2", false, format!("no reconnect after close {code} ({name})"));
            if frame.is_none() || v1::CloseCode::try_from(code as i32).is_err() {
                cx.check("CLOSE-3", false, format!("close code {code} was not classified by its range (reconnect)"));
            }
            return client.quit().await;
        };
        cx.should("CLOSE-2", true, format!("reconnected after close {code} ({name}): {}", back.names()));
        if frame.is_none() {
            cx.check("CLOSE-3", true, format!("the transport code {code} alone decided (no Close frame)"));
        }
        if v1::CloseCode::try_from(code as i32).is_err() {
            cx.check("CLOSE-3", true, format!("the unknown code {code} was classified by its range"));
            cx.check("ENC-7", true, format!("the Close frame with an unknown code {code} was not fatal"));
        }
        cx.check(
            "AUTH-2",
            !back.used_login(),
            format!("authenticated with its access token, not a password: {}", back.names()),
        );
        cx.check(
            "RESUME-11",
            back.position(LOUNGE) == Some((1, seq)) && back.position(DEN) == Some((1, DEN_HEAD)),
            format!("resumed from lounge {:?} and den {:?}", back.position(LOUNGE), back.position(DEN)),
        );
    }
    let last = chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.check_events("RESUME-11", &client, LOUNGE, LOUNGE_HEAD, last);
    client.quit().await
}

async fn stop_range(cx: Ctx) -> CaseResult {
    let closes: [(u32, &str); 3] =
        [(4500, "PROTOCOL_VIOLATION"), (4987, "a stop-range code this version does not know"), (4504, "LOGIN_REVOKED")];
    for (code, name) in closes {
        let mut client = cx.start().await?;
        chat(&cx, &mut client, LOUNGE, 1).await?;
        let mut reports = client.driver.reports.len();
        cx.server().close(client.conn, Some(code), code, "scripted close");
        let again = client.opened_another(cx.server(), QUIET + QUIET).await;
        cx.check(
            "CLOSE-2",
            again.is_none(),
            match again {
                None => format!("no reconnect within 3 s of close {code} ({name})"),
                Some(_) => format!("reconnected after close {code} ({name})"),
            },
        );
        if v1::CloseCode::try_from(code as i32).is_err() {
            cx.check("CLOSE-3", again.is_none(), format!("the unknown code {code} was classified by its range (stop)"));
            cx.check("ENC-7", true, format!("the Close frame with an unknown code {code} was read"));
        }
        let closed = client
            .driver
            .report(&mut reports, Duration::ZERO, |o| (o.kind == "closed").then(|| o.bool("reconnecting")))
            .await?;
        if let Some(Some(true)) = closed {
            cx.note(format!("after close {code} the driver reported reconnecting: true, yet stop codes are final"));
        }
        let answer = client.send(LOUNGE, "after a stop code").await?;
        let again = client.opened_another(cx.server(), Duration::from_millis(500)).await;
        cx.check(
            "CLOSE-2",
            answered(&answer, "error") && again.is_none(),
            format!("a send after close {code} fails without reconnecting: {answer}"),
        );
        client.quit().await?;
    }
    Ok(())
}

async fn transport_code_decides(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    cx.server().close(client.conn, Some(4000), 4500, "the frame says reconnect, the transport says stop");
    let again = client.opened_another(cx.server(), QUIET + QUIET).await;
    cx.check(
        "CLOSE-3",
        again.is_none(),
        "Close frame SERVER_SHUTDOWN (4000) with transport code 4500: the transport decides, so no reconnect",
    );
    client.quit().await?;

    let mut client = cx.start().await?;
    cx.server().close(client.conn, Some(4502), 4000, "the frame says stop, the transport says reconnect");
    let back = client.reconnected(cx.server(), SOON).await?;
    cx.check(
        "CLOSE-3",
        back.is_some(),
        "Close frame FRAME_TOO_LARGE (4502) with transport code 4000: the transport decides, so a reconnect",
    );
    client.quit().await
}

async fn backoff(cx: Ctx) -> CaseResult {
    const REFUSED: usize = 4;
    let mut client = cx.start().await?;
    let first = client.conn;
    cx.server().model(|model| {
        for _ in 0..REFUSED {
            model.script.hellos.push_back(HelloAct::Close { code: 4003, frame: true });
        }
    });
    cx.server().close(first, Some(4000), 4000, "restarting");
    // Five attempts with CLOSE-2's example backoff (starting near 1 s,
    // doubling) take 15 to 31 s; reconnecting at all is a SHOULD, so a
    // client slower than BACKOFF_WAIT misses a SHOULD, it does not fail.
    let back = client.reconnected(cx.server(), BACKOFF_WAIT).await?;
    if back.is_none() {
        cx.should(
            "CLOSE-2",
            false,
            format!(
                "the client did not get back within {} s of SERVER_SHUTDOWN and four SERVER_BUSY",
                BACKOFF_WAIT.as_secs()
            ),
        );
    }
    let seen = cx.server().seen();
    let ended = |conn: u32| {
        seen.iter().find_map(|s| match s {
            Seen::Ended { conn: c, at, .. } if *c == conn => Some(*at),
            _ => None,
        })
    };
    let opened = |conn: u32| {
        seen.iter().find_map(|s| match s {
            Seen::Opened { conn: c, at, .. } if *c == conn => Some(*at),
            _ => None,
        })
    };
    let mut gaps = Vec::new();
    for conn in first..first + REFUSED as u32 {
        if let (Some(end), Some(next)) = (ended(conn), opened(conn + 1)) {
            gaps.push(next.saturating_duration_since(end));
        }
    }
    let shown: Vec<u128> = gaps.iter().map(|g| g.as_millis()).collect();
    // Compared in pairs, so that one slow moment of this machine does not
    // pass for (or hide) a backoff.
    if gaps.len() == REFUSED {
        let grows = gaps[2] + gaps[3] > gaps[0] + gaps[1];
        cx.should("CLOSE-2", grows, format!("delays before each reconnect attempt: {shown:?} ms (they should grow)"));
    }
    client.quit().await
}

// ---- authentication --------------------------------------------------------------------

/// The `Refresh` and the last `Authenticate` among `commands`.
fn refresh_then_authenticate(commands: &[Command]) -> (Option<String>, Option<String>) {
    let refresh = commands.iter().find_map(|c| match c {
        Command::Refresh(r) => Some(r.refresh_token.clone()),
        _ => None,
    });
    let authenticate = commands.iter().rev().find_map(|c| match c {
        Command::Authenticate(a) => Some(a.access_token.clone()),
        _ => None,
    });
    (refresh, authenticate)
}

async fn expired_token(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    for round in 1..=2 {
        let expected = cx.server().model(|model| {
            model.expire_access_tokens();
            model.current_refresh_token()
        });
        cx.server().drop_conn(client.conn);
        let mut cursor = client.cursor;
        let refreshed = cx
            .server()
            .wait(&mut cursor, SOON, |seen| match seen.command() {
                Some((_, _, Command::Refresh(r))) => Some(r.refresh_token.clone()),
                Some((_, _, Command::Login(_))) => Some(String::new()),
                _ => None,
            })
            .await;
        match refreshed {
            Some(token) if token.is_empty() => {
                cx.should(
                    "AUTH-11",
                    false,
                    "after TOKEN_EXPIRED the client logged in with its password instead of refreshing",
                );
            }
            Some(token) => {
                cx.check(
                    "AUTH-10",
                    Some(&token) == expected.as_ref(),
                    if round == 1 {
                        "the Refresh presents the refresh token of the login".to_owned()
                    } else {
                        "the Refresh presents the newest refresh token (the one the last Refresh returned)".to_owned()
                    },
                );
            }
            None => {
                return Err(Stop::Failed(format!(
                    "the client neither refreshed nor logged in within {} s",
                    SOON.as_secs()
                )));
            }
        }
        let back = reconnect(&cx, &mut client, "a dropped connection with an expired access token").await?;
        let (refresh, authenticate) = refresh_then_authenticate(&back.commands);
        let current = cx.server().model(|model| model.current_access_token());
        cx.should(
            "AUTH-11",
            refresh.is_some() && authenticate.is_some() && authenticate == current && !back.used_login(),
            format!("after TOKEN_EXPIRED: {}", back.names()),
        );
    }
    chat(&cx, &mut client, LOUNGE, 1).await?;
    client.quit().await
}

async fn stored_tokens(cx: Ctx) -> CaseResult {
    let client = cx.start().await?;
    client.quit().await?;
    for run in 2..=3 {
        let expected = cx.server().model(|model| {
            model.expire_access_tokens();
            model.current_refresh_token()
        });
        let client = cx.start().await?;
        let commands = commands_on(&cx, client.conn);
        let authenticated = commands.iter().any(|c| matches!(c, Command::Authenticate(_)));
        if !authenticated {
            client.quit().await?;
            return Err(Stop::Unsupported(
                "the driver logs in with the password on every run: it keeps no tokens in CONFAB_STATE_DIR".into(),
            ));
        }
        match refresh_then_authenticate(&commands) {
            (Some(refresh), _) => {
                cx.check(
                    "AUTH-10",
                    Some(&refresh) == expected.as_ref(),
                    format!("run {run} refreshes with the newest refresh token stored by the run before"),
                );
            }
            (None, _) => {
                cx.should(
                    "AUTH-11",
                    false,
                    format!(
                        "run {run} answered TOKEN_EXPIRED without a Refresh ({}): it should refresh, then \
                         Authenticate",
                        commands.iter().map(super::model::name).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        client.quit().await?;
    }
    Ok(())
}

// ---- idempotency ---------------------------------------------------------------------------

async fn resend_after_drop(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    for (act, text) in [
        (SendAct::AppendThenDrop, "applied, then the connection dropped before the reply"),
        (SendAct::DropBeforeAppend, "the connection dropped before it was applied"),
    ] {
        cx.server().model(|model| model.script.sends.push_back(act));
        let id = client.driver.command("send", json!({"room_id": LOUNGE.to_string(), "text": text})).await?;
        let Some(first) = client
            .next_command(cx.server(), SOON, |_, _, command| match command {
                Command::SendMessage(send) => Some(send.clone()),
                _ => None,
            })
            .await
        else {
            return Err(Stop::Failed("the client did not send the message".into()));
        };
        let back = reconnect(&cx, &mut client, "the connection dropped before the send's reply").await?;
        let early = back.commands.iter().any(|c| matches!(c, Command::SendMessage(_)));
        cx.check(
            "RESUME-11",
            !early && !back.used_login(),
            format!("on reconnecting: {} (authenticate and Resume before any resend)", back.names()),
        );
        cx.check("AUTH-2", !back.used_login(), "reconnected with its access token");
        let resend = client
            .next_command(cx.server(), SOON, |conn, _, command| match command {
                Command::SendMessage(send) if conn == back.conn => Some(send.clone()),
                _ => None,
            })
            .await;
        let Some(resend) = resend else {
            cx.check("IDEM-5", false, "the unanswered send was not resent after reconnecting");
            return client.quit().await;
        };
        cx.check(
            "IDEM-5",
            resend.client_txn_id == first.client_txn_id && resend.text == first.text && resend.room == first.room,
            format!(
                "resent with transaction id {:?} (first sent with {:?}), same room and text",
                resend.client_txn_id, first.client_txn_id
            ),
        );
        let answer = client.driver.answer(&id).await?;
        let seq = head(&cx, LOUNGE);
        cx.check("IDEM-5", sent_seq(&answer) == Some(seq), format!("applied once, as seq {seq}: {answer}"));
        expect_event(&mut client, LOUNGE, seq).await?;
    }
    let _ = client.driver.wait_reports(Duration::from_millis(300), |_| false).await?;
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, head(&cx, LOUNGE));
    client.quit().await
}

async fn resend_several_in_order(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    cx.server().model(|model| {
        model.script.sends.push_back(SendAct::Unanswered);
        model.script.sends.push_back(SendAct::AppendThenDrop);
        // On the next connection: the first reply waits until the second
        // has been answered.
        model.script.sends.push_back(SendAct::Hold);
        model.script.sends.push_back(SendAct::Ack);
    });
    // A send, with its connection and request id.
    let sends = |conn: u32, request_id: u64, command: &Command| match command {
        Command::SendMessage(send) => Some((conn, request_id, send.clone())),
        _ => None,
    };
    let first_id = client.driver.command("send", json!({"room_id": LOUNGE.to_string(), "text": "first"})).await?;
    let Some(first) = client.next_command(cx.server(), SOON, sends).await else {
        return Err(Stop::Failed("the client did not send the first message".into()));
    };
    let second_id = client.driver.command("send", json!({"room_id": LOUNGE.to_string(), "text": "second"})).await?;
    let Some(second) = client.next_command(cx.server(), Duration::from_secs(3), sends).await else {
        return Err(Stop::Unsupported(
            "the driver did not send the second message while the first awaited its reply: it runs one command at \
             a time (a driver that cannot should exit 127 for this case)"
                .into(),
        ));
    };
    let seqs = cx.server().model(|model| {
        let events = &model.room(LOUNGE).map(|r| r.events.clone()).unwrap_or_default();
        let seq_of = |text: &str| {
            events.iter().find(|e| matches!(&e.kind, Some(Kind::Message(m)) if m.text == text)).map(|e| e.seq)
        };
        (seq_of("first"), seq_of("second"))
    });
    let back = reconnect(&cx, &mut client, "the connection dropped with two sends unanswered").await?;
    let on_back =
        |conn: u32, request_id: u64, command: &Command| sends(conn, request_id, command).filter(|_| conn == back.conn);
    let mut resent = Vec::new();
    // Whether both resends were in flight at once.
    let mut together = false;
    if let Some(send) = client.next_command(cx.server(), SOON, on_back).await {
        resent.push(send);
        match client.next_command(cx.server(), Duration::from_secs(3), on_back).await {
            Some(send) => {
                resent.push(send);
                together = true;
            }
            None => {
                // The first resend's reply is held until the second is
                // answered: release it, once, and wait for the second.
                cx.note(
                    "the client resent one send at a time (it waited for the first reply): replies in another order \
                     were not exercised",
                );
                cx.server().release_held();
                resent.extend(client.next_command(cx.server(), SOON, on_back).await);
            }
        }
    }
    let order: Vec<&str> = resent.iter().map(|(_, _, s)| s.client_txn_id.as_str()).collect();
    cx.check(
        "IDEM-5",
        order == [first.2.client_txn_id.as_str(), second.2.client_txn_id.as_str()]
            && resent.first().is_some_and(|(_, _, s)| s.text == "first"),
        format!("resent in the original order with the same transaction ids: {order:?}"),
    );
    let a1 = client.driver.answer(&first_id).await?;
    let a2 = client.driver.answer(&second_id).await?;
    cx.check(
        "FRAME-4",
        sent_seq(&a1) == seqs.0 && sent_seq(&a2) == seqs.1,
        format!("replies (the second answered first) matched by request id: first {a1}, second {a2}"),
    );
    cx.check(
        "FRAME-2",
        first.0 != second.0 || (first.1 != 0 && first.1 != second.1),
        format!("two sends in flight at once on one connection, request ids {} and {}", first.1, second.1),
    );
    if let ([(_, one, _), (_, two, _)], true) = (resent.as_slice(), together) {
        cx.check(
            "FRAME-2",
            *one != 0 && one != two,
            format!("the two resends on conn/{}, request ids {one} and {two}", back.conn),
        );
    }
    expect_event(&mut client, LOUNGE, head(&cx, LOUNGE)).await?;
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, head(&cx, LOUNGE));
    client.quit().await
}

async fn reply_order(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    cx.server().model(|model| {
        model.script.sends.push_back(SendAct::EventFirst);
        model.script.sends.push_back(SendAct::DuplicateReply);
        model.script.sends.push_back(SendAct::DelayReply(Duration::from_millis(800)));
    });
    for what in ["its event pushed before the reply", "a reply written twice", "a reply 800 ms late"] {
        let answer = client.send(LOUNGE, what).await?;
        let seq = head(&cx, LOUNGE);
        cx.check(
            "FRAME-4",
            sent_seq(&answer) == Some(seq),
            format!("a send with {what} is answered seq {seq}: {answer}"),
        );
    }
    let last = head(&cx, LOUNGE);
    expect_event(&mut client, LOUNGE, last).await?;
    let _ = client.driver.wait_reports(Duration::from_millis(300), |_| false).await?;
    let stray = client.driver.stray_answers();
    cx.check(
        "FRAME-4",
        stray.is_empty(),
        format!("one answer per command, whatever came twice ({} stray)", stray.len()),
    );
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last);
    client.quit().await
}

// ---- resumption -------------------------------------------------------------------------------

async fn dropped_mid_stream(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let seen = chat(&cx, &mut client, LOUNGE, 3).await?;
    let cut = cx.server().model(|model| model.append_quietly(LOUNGE, &model.bob.clone(), message("cut in half", "")));
    if cx.is_quic() {
        let payload = codec::encode(&frame_of(&cut), Encoding::Proto);
        let mut framed = BytesMut::new();
        codec::put_length_prefix(payload.len(), &mut framed);
        framed.extend_from_slice(&payload);
        let half = framed.len() / 2;
        let bytes = Bytes::copy_from_slice(&framed[..half]);
        cx.server().write(client.conn, WriteOp::Raw { bytes, what: format!("the first half of event {}", cut.seq) });
        cx.server().write(client.conn, WriteOp::Pause(Duration::from_millis(100)));
    }
    cx.server().drop_conn(client.conn);
    cx.server().model(|model| {
        let bob = model.bob.clone();
        model.append_quietly(LOUNGE, &bob, message("missed while away", ""));
        model.append_quietly(LOUNGE, &bob, message("missed too", ""));
        model.script.replay_overlap = 2;
    });
    let back = reconnect(&cx, &mut client, "a connection dropped mid-frame").await?;
    cx.check("CLOSE-3", true, "a connection lost without a close code counts as reconnect");
    cx.check("AUTH-2", !back.used_login(), format!("reconnected with its access token: {}", back.names()));
    cx.check(
        "RESUME-11",
        back.position(LOUNGE) == Some((1, seen)) && back.position(DEN) == Some((1, DEN_HEAD)),
        format!(
            "resumed from lounge {:?} (1, {seen} expected) and den {:?} (1, {DEN_HEAD} expected)",
            back.position(LOUNGE),
            back.position(DEN)
        ),
    );
    let last = head(&cx, LOUNGE);
    expect_event(&mut client, LOUNGE, last).await?;
    let _ = client.driver.wait_reports(Duration::from_millis(300), |_| false).await?;
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last);
    client.quit().await
}

async fn gap(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let seen = chat(&cx, &mut client, LOUNGE, 1).await?;
    let after_gap = cx.server().act(|model| {
        let bob = model.bob.clone();
        model.append_quietly(LOUNGE, &bob, message("never pushed", ""));
        let after = model.append_quietly(LOUNGE, &bob, message("after the gap", ""));
        let writes = model.push_event(&after, None);
        (after, writes)
    });
    let resume = client
        .next_command(cx.server(), SOON, |_, _, command| match command {
            Command::Resume(resume) => Some(resume.clone()),
            _ => None,
        })
        .await;
    let Some(resume) = resume else {
        cx.check("RESUME-11", false, format!("no Resume within {} s of an event after a gap", SOON.as_secs()));
        return client.quit().await;
    };
    let position = resume.positions.iter().find(|p| p.room_id == LOUNGE).map(|p| (p.epoch, p.seq));
    cx.check(
        "RESUME-11",
        position == Some((1, seen)),
        format!(
            "after event {} arrived with {} missing, the client resumed from {position:?}",
            after_gap.seq,
            seen + 1
        ),
    );
    expect_event(&mut client, LOUNGE, after_gap.seq).await?;
    cx.check_events("RESUME-11", &client, LOUNGE, LOUNGE_HEAD, after_gap.seq);
    let seqs: Vec<Option<u64>> = client.events(LOUNGE).iter().map(|e| e.seq).collect();
    cx.check("LOG-2", seqs.windows(2).all(|w| w[0] < w[1]), format!("applied in seq order: {seqs:?}"));
    client.quit().await
}

/// Waits for a `GetHistory` of `room` after the cursor.
async fn reload(cx: &Ctx, client: &mut Client, room: u64) -> Option<v1::GetHistory> {
    client
        .next_command(cx.server(), SOON, |_, _, command| match command {
            Command::GetHistory(get) if room_id(get.room.as_ref()) == Some(room) => Some(get.clone()),
            _ => None,
        })
        .await
}

fn room_id(room: Option<&v1::RoomRef>) -> Option<u64> {
    match room?.room.as_ref()? {
        v1::room_ref::Room::Id(id) => Some(*id),
        v1::room_ref::Room::Name(name) => match name.trim_start_matches('#') {
            "lounge" => Some(LOUNGE),
            "den" => Some(DEN),
            _ => None,
        },
    }
}

async fn reset(cx: Ctx) -> CaseResult {
    cx.server().model(|model| {
        if let Some(limits) = model.welcome.limits.as_mut() {
            limits.max_resume_events = 5;
        }
    });
    let mut client = cx.start().await?;
    let mut reports = client.driver.reports.len();
    cx.server().drop_conn(client.conn);
    cx.server().model(|model| {
        let bob = model.bob.clone();
        for n in 0..20 {
            model.append_quietly(LOUNGE, &bob, message(&format!("too many to replay {n}"), ""));
        }
    });
    reconnect(&cx, &mut client, "a dropped connection, 20 events behind").await?;
    let head = head(&cx, LOUNGE);
    cx.remark(&format!("lounge answered RESET at head {head} (max_resume_events 5)"));
    let reloaded = reload(&cx, &mut client, LOUNGE).await;
    cx.check(
        "RESUME-3",
        reloaded.is_some(),
        match &reloaded {
            Some(get) => {
                format!("reloaded lounge with GetHistory (direction {}, anchor {})", get.direction, get.anchor_seq)
            }
            None => format!("no GetHistory of lounge within {} s of RESET", SOON.as_secs()),
        },
    );
    let told = client
        .driver
        .report(&mut reports, SOON, |o| {
            (o.kind == "reset" && o.u64("room_id") == Some(LOUNGE)).then(|| o.u64("head_seq"))
        })
        .await?;
    if told.is_none() {
        cx.note("the driver did not report the reset of lounge");
    }
    let live = cx.server().bob_says(LOUNGE, "live after the reset");
    expect_event(&mut client, LOUNGE, live.seq).await?;
    // Sending Resume again after the reload is allowed (RESUME-7).
    let once = client.events(LOUNGE).iter().filter(|e| e.seq == Some(live.seq)).count() == 1;
    cx.check("RESUME-3", once, format!("continued from head {head}: event {} applied once", live.seq));
    client.quit().await
}

async fn epoch_change(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.server().model(|model| model.rebuild(LOUNGE));
    let first = cx.server().bob_says(LOUNGE, "the first event of epoch 2");
    let reloaded = reload(&cx, &mut client, LOUNGE).await;
    let detail = match &reloaded {
        Some(get) => format!(
            "on event {}/{}, reloaded lounge with GetHistory (anchor {})",
            first.epoch, first.seq, get.anchor_seq
        ),
        None => format!("no GetHistory of lounge within {} s of an event of epoch 2", SOON.as_secs()),
    };
    cx.check("RESUME-11", reloaded.is_some(), &detail);
    cx.check("LOG-3", reloaded.is_some(), &detail);
    let next = cx.server().bob_says(LOUNGE, "the second event of epoch 2");
    let applied = client
        .driver
        .wait_reports(SOON, |reports| {
            reports.iter().any(|o| {
                o.kind == "event"
                    && o.u64("room_id") == Some(LOUNGE)
                    && o.u64("seq") == Some(next.seq)
                    && o.u64("epoch") == Some(2)
            })
        })
        .await?;
    cx.check("RESUME-11", applied, format!("event 2/{} reported after the reload", next.seq));
    cx.server().drop_conn(client.conn);
    let back = reconnect(&cx, &mut client, "a dropped connection").await?;
    cx.check(
        "LOG-3",
        back.position(LOUNGE) == Some((2, next.seq)),
        format!(
            "resumes lounge from {:?} (2, {} expected: a position of the new epoch)",
            back.position(LOUNGE),
            next.seq
        ),
    );
    client.quit().await
}

async fn gone(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    cx.server().model(|model| model.leave_elsewhere(DEN));
    cx.server().drop_conn(client.conn);
    let first = reconnect(&cx, &mut client, "a dropped connection (den was left meanwhile)").await?;
    cx.remark(&format!("resumed with den at {:?}; answered GONE", first.position(DEN)));
    // An event after the ResumeResult: once it is reported, the answer
    // was read.
    chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.server().drop_conn(client.conn);
    let second = reconnect(&cx, &mut client, "another dropped connection").await?;
    cx.check(
        "RESUME-4",
        second.position(DEN).is_none() && second.position(LOUNGE).is_some(),
        format!("the next Resume names {:?}", second.resume.positions.iter().map(|p| p.room_id).collect::<Vec<_>>()),
    );
    client.quit().await
}

async fn live_before_result(cx: Ctx) -> CaseResult {
    const ATTIC: u64 = 70;
    let mut client = cx.start().await?;
    chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.server().drop_conn(client.conn);
    cx.server().model(|model| {
        let bob = model.bob.clone();
        for n in 0..2 {
            model.append_quietly(LOUNGE, &bob, message(&format!("to replay {n}"), ""));
        }
        // A room joined on another device meanwhile: no position, so LIVE.
        model.add_room(ATTIC, "attic");
        let me = model.me.clone();
        model.append_quietly(ATTIC, &bob, Kind::RoomCreated(v1::RoomCreated { name: "attic".into(), kind: 1 }));
        model.append_quietly(ATTIC, &me, Kind::MemberJoined(v1::MemberJoined {}));
        model.script.resumes.push_back(ResumeAct::LiveFirst(vec![LOUNGE, ATTIC]));
    });
    let back = reconnect(&cx, &mut client, "a dropped connection").await?;
    let (lounge, attic) = (head(&cx, LOUNGE), head(&cx, ATTIC));
    cx.remark(&format!(
        "lounge {lounge} and attic {attic} arrived live before a ResumeResult saying REPLAYED {} and LIVE {}",
        lounge - 1,
        attic - 1
    ));
    expect_event(&mut client, ATTIC, attic).await?;
    let next_lounge = cx.server().bob_says(LOUNGE, "after the resume result");
    let next_attic = cx.server().bob_says(ATTIC, "after the resume result");
    expect_event(&mut client, LOUNGE, next_lounge.seq).await?;
    expect_event(&mut client, ATTIC, next_attic.seq).await?;
    let resumed_again = resumes_on(&cx, back.conn) > 1;
    cx.check(
        "RESUME-5",
        !resumed_again,
        "events after the ResumeResult were applied in turn (no position moved back, so no gap and no second Resume)",
    );
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, next_lounge.seq);
    cx.check_events("RESUME-10", &client, ATTIC, attic - 1, next_attic.seq);
    cx.server().drop_conn(client.conn);
    let again = reconnect(&cx, &mut client, "another dropped connection").await?;
    cx.check(
        "RESUME-5",
        again.position(LOUNGE) == Some((1, next_lounge.seq)) && again.position(ATTIC) == Some((1, next_attic.seq)),
        format!(
            "resumes from lounge {:?} and attic {:?} ({} and {} expected)",
            again.position(LOUNGE),
            again.position(ATTIC),
            next_lounge.seq,
            next_attic.seq
        ),
    );
    client.quit().await
}

async fn slow_consumer(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let seen = chat(&cx, &mut client, LOUNGE, 2).await?;
    cx.server().model(|model| {
        let bob = model.bob.clone();
        for n in 0..5 {
            model.append_quietly(LOUNGE, &bob, message(&format!("queued past the limit {n}"), ""));
        }
    });
    cx.server().close(client.conn, Some(4002), 4002, "you fell behind; resume from your positions");
    let back = client.reconnected(cx.server(), SOON).await?;
    cx.should("CLOSE-2", back.is_some(), "reconnected after SLOW_CONSUMER");
    let Some(back) = back else { return client.quit().await };
    cx.check(
        "RESUME-9",
        back.position(LOUNGE) == Some((1, seen)),
        format!("resumed lounge from {:?} ((1, {seen}) expected)", back.position(LOUNGE)),
    );
    let last = head(&cx, LOUNGE);
    expect_event(&mut client, LOUNGE, last).await?;
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last);
    client.quit().await
}

async fn invitation_is_no_position(cx: Ctx) -> CaseResult {
    const ATTIC: u64 = 88;
    let mut client = cx.start().await?;
    let invitation = cx.server().model(|model| {
        let (bob, me) = (model.bob.clone(), model.me.clone());
        model.add_room(ATTIC, "attic");
        if let Some(room) = model.room_mut(ATTIC) {
            room.joined = false;
        }
        model.append_quietly(ATTIC, &bob, Kind::RoomCreated(v1::RoomCreated { name: "attic".into(), kind: 2 }));
        model.append_quietly(ATTIC, &bob, Kind::MemberJoined(v1::MemberJoined {}));
        model.append_quietly(ATTIC, &bob, Kind::MemberInvited(v1::MemberInvited { invitee: Some(me) }))
    });
    cx.server().write(client.conn, WriteOp::Frame(frame_of(&invitation)));
    chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.server().drop_conn(client.conn);
    let back = reconnect(&cx, &mut client, "a dropped connection").await?;
    cx.check(
        "RESUME-6",
        back.position(ATTIC).is_none(),
        format!(
            "the Resume after an invitation to room {ATTIC} names {:?}",
            back.resume.positions.iter().map(|p| p.room_id).collect::<Vec<_>>()
        ),
    );
    client.quit().await
}

// ---- limits ------------------------------------------------------------------------------------

async fn frame_size(cx: Ctx) -> CaseResult {
    cx.server().model(|model| {
        if let Some(limits) = model.welcome.limits.as_mut() {
            limits.max_frame_bytes_unauthenticated = 1024;
            limits.max_frame_bytes = 1024;
            limits.max_message_bytes = 8192;
        }
    });
    let mut client = cx.start().await?;
    let mut cursor = client.cursor;
    let answer = client.send(LOUNGE, &"x".repeat(2000)).await?;
    let oversized = cx
        .server()
        .wait(&mut cursor, Duration::ZERO, |seen| match seen {
            Seen::Oversized { len, .. } => Some(*len),
            _ => None,
        })
        .await;
    cx.check(
        "LIMIT-1",
        oversized.is_none(),
        match oversized {
            None => "no frame over max_frame_bytes (1024) was sent for a 2000-byte message".to_owned(),
            Some(len) => format!("a {len}-byte frame was sent although Welcome said max_frame_bytes 1024"),
        },
    );
    cx.check(
        "HELLO-5",
        oversized.is_none() && answered(&answer, "error"),
        format!("the client refused the request itself: {answer}"),
    );
    if oversized.is_none() {
        let small = client.send(LOUNGE, "a message within the limits").await?;
        cx.check("HELLO-5", sent_seq(&small) == Some(head(&cx, LOUNGE)), format!("and sends within them: {small}"));
    }
    client.quit().await
}

// ---- transports --------------------------------------------------------------------------------

async fn fingerprint(cx: Ctx) -> CaseResult {
    let mut env = cx.env();
    let wrong: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    env.set("CONFAB_FINGERPRINT", wrong);
    let mut driver = cx.spawn(&env)?;
    let answer = driver.call("connect", json!({})).await?;
    let frames = cx.server().seen().iter().filter(|s| matches!(s, Seen::Frame { .. })).count();
    cx.check(
        "QUIC-2",
        answered(&answer, "error") && frames == 0,
        format!("pinned to another fingerprint, connect is answered {answer} and {frames} frames reached the server"),
    );
    driver.quit(Duration::from_secs(5)).await
}

async fn split_and_coalesced(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    let events = cx.server().model(|model| {
        let bob = model.bob.clone();
        let long = "a long message that needs a two-byte length prefix ".repeat(8);
        [long.as_str(), "coalesced one", "coalesced two", "split again"]
            .iter()
            .map(|text| model.append_quietly(LOUNGE, &bob, message(text, "")))
            .collect::<Vec<_>>()
    });
    cx.server().write(conn, WriteOp::Pieces { frame: frame_of(&events[0]), pieces: 7 });
    let mut coalesced = BytesMut::new();
    for payload in [
        codec::encode(&frame_of(&events[1]), Encoding::Proto),
        Bytes::new(),
        codec::encode(&frame_of(&events[2]), Encoding::Proto),
    ] {
        codec::put_length_prefix(payload.len(), &mut coalesced);
        coalesced.extend_from_slice(&payload);
    }
    let what = format!("events {} and {} with an empty frame between, in one write", events[1].seq, events[2].seq);
    cx.server().write(conn, WriteOp::Raw { bytes: coalesced.freeze(), what });
    cx.server().write(conn, WriteOp::Pieces { frame: frame_of(&events[3]), pieces: 3 });
    let last = events[3].seq;
    expect_event(&mut client, LOUNGE, last).await?;
    cx.check_events("QUIC-4", &client, LOUNGE, LOUNGE_HEAD, last);
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last);
    let lost = client.lost_session(cx.server(), QUIET).await;
    cx.check("ENC-8", lost.is_none(), lost.as_deref().unwrap_or("the empty frame was ignored; the session stayed"));
    client.quit().await
}

async fn fragmented_messages(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let conn = client.conn;
    let events = cx.server().model(|model| {
        let bob = model.bob.clone();
        ["in three fragments", "in five fragments, and a little longer"]
            .iter()
            .map(|text| model.append_quietly(LOUNGE, &bob, message(text, "")))
            .collect::<Vec<_>>()
    });
    cx.server().write(conn, WriteOp::Pieces { frame: frame_of(&events[0]), pieces: 3 });
    cx.server().write(conn, WriteOp::Pieces { frame: frame_of(&events[1]), pieces: 5 });
    let last = events[1].seq;
    expect_event(&mut client, LOUNGE, last).await?;
    cx.check_events("WS-5", &client, LOUNGE, LOUNGE_HEAD, last);
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last);
    client.quit().await
}

// ---- malformed frames -----------------------------------------------------------------------------

async fn malformed_from_server(cx: Ctx) -> CaseResult {
    let mut client = cx.start().await?;
    let first = client.conn;
    chat(&cx, &mut client, LOUNGE, 1).await?;
    cx.server().write_crafted(first, craft::undecodable);
    let broken =
        cx.server().model(|model| model.append_quietly(LOUNGE, &model.bob.clone(), message("café au lait", "")));
    cx.server().write_crafted(first, |encoding| craft::undecodable_event(encoding, &broken));
    cx.server().write(first, WriteOp::Frame(frame_of(&broken)));
    let last = cx.server().bob_says(LOUNGE, "after the malformed frames");
    expect_event(&mut client, LOUNGE, last.seq).await?;
    let _ = client.driver.wait_reports(Duration::from_millis(300), |_| false).await?;
    let garbled = client.events(LOUNGE).iter().any(|e| e.text.contains('\u{fffd}') || e.text.contains("not an object"));
    cx.check(
        "ENC-3",
        !garbled,
        "no event was applied from an undecodable frame (text that is not UTF-8, a message that is not an object)",
    );
    cx.check_events("RESUME-10", &client, LOUNGE, LOUNGE_HEAD, last.seq);
    if let Some(back) = client.reconnected(cx.server(), Duration::ZERO).await? {
        cx.check("CLOSE-3", true, format!("the client dropped the broken connection and resumed (conn/{})", back.conn));
    } else {
        cx.note("the client skipped the undecodable frames and kept its connection");
    }
    client.quit().await
}
