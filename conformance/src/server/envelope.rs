//! §4 The envelope, §8 Errors and the frame size limit of §17: what the
//! server does with frames it cannot decode or will not execute (no
//! command, request id 0, the wrong phase), with pipelined commands, and
//! with frames over the size limit; and what an `Error` says.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use confab_sdk::{
    raw::RawReceived,
    v1::{self, CloseCode, ErrorCode, client_frame::Command, server_frame::Body},
};
use tokio::time::Instant;

use super::{
    Case, Closing, Conn, Ctx,
    conn::{hello, is_error_frame, register_command},
    ctx::PASSWORD,
    hand::{bytes_field, padded, varint_field},
    show::{show_frame, show_reply_kind, show_result},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::{Transport, Wire, Wires},
};

const ENVELOPE: &str = "The envelope";
const ERRORS: &str = "Errors";
const LIMITS: &str = "Limits";

pub fn cases() -> Vec<Case> {
    vec![
        // §4 The envelope
        Case::new(
            "frame/undecodable",
            ENVELOPE,
            "An undecodable frame is answered with a BAD_FRAME push and ignored, before and after Hello",
            &["FRAME-6", "FRAME-9", "ERR-2"],
            Wires::All,
            undecodable,
        ),
        Case::new(
            "frame/no-command",
            ENVELOPE,
            "A frame with no command or an unknown one is answered UNKNOWN_COMMAND with its request id",
            &["FRAME-7", "FRAME-9", "QUIC-4"],
            Wires::All,
            no_command,
        ),
        Case::new(
            "frame/zero-request-id",
            ENVELOPE,
            "A command with request id 0 is not executed and is answered with an INVALID_ARGUMENT push",
            &["FRAME-8", "FRAME-9"],
            Wires::All,
            zero_request_id,
        ),
        Case::new(
            "frame/check-order",
            ENVELOPE,
            "The phase is checked before a command's own checks, and only the first failure is answered",
            &["FRAME-9", "STATE-2", "ERR-2"],
            Wires::All,
            check_order,
        ),
        Case::new(
            "frame/pipelining",
            ENVELOPE,
            "Commands sent without waiting are executed in order and each answered once with its request id",
            &["FRAME-3", "FRAME-4", "FRAME-10"],
            Wires::All,
            pipelining,
        ),
        // §8 Errors
        Case::new(
            "err/error-fields",
            ERRORS,
            "An Error names the offending field, says whether it is temporary, and leaves the session open",
            &["ERR-1", "ERR-2"],
            Wires::All,
            error_fields,
        ),
        // §17 Limits
        Case::new(
            "limit/frame-size",
            LIMITS,
            "Frames up to the limit are accepted, larger ones close with FRAME_TOO_LARGE, and the limit grows after log-in",
            &["LIMIT-1", "WS-5", "CLOSE-1", "QUIC-6", "WS-7"],
            Wires::All,
            frame_size,
        ),
    ]
}

// --- §4 The envelope ---

/// Frames no server can decode, in the wire's encoding.
fn undecodable_samples(wire: Wire) -> Vec<(&'static str, Bytes)> {
    if wire.is_json() {
        vec![
            ("text that is not JSON", Bytes::from_static(b"hello, server")),
            ("a truncated JSON object", Bytes::from_static(br#"{"requestId":"1","ping":{"#)),
            ("a request id that is not a number", Bytes::from_static(br#"{"requestId":"one","ping":{}}"#)),
            ("an empty text message", Bytes::new()),
        ]
    } else {
        vec![
            ("bytes that are not protobuf (an endless varint)", Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])),
            ("a field of wire type 7", Bytes::from_static(&[0x0f, 0x01])),
            ("a length-delimited field longer than the frame", Bytes::from_static(&[0x52, 0x10, 0x0a, 0x01])),
            ("field number 0", Bytes::from_static(&[0x00, 0x01])),
        ]
    }
}

async fn undecodable(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let samples = undecodable_samples(cx.wire());
    for (what, payload) in &samples {
        conn.send_payload(payload.clone()).await?;
        let answer = conn.next_answer().await?;
        let what = format!("{what}, before Hello (decoding comes before the phase)");
        cx.check_push_error("FRAME-9", &answer, ErrorCode::BadFrame, &what);
    }
    let welcome = conn.hello().await;
    cx.check(
        "FRAME-6",
        welcome.is_ok(),
        format!("the undecodable frames were ignored, so Hello is answered: {}", show_result(&welcome, "it was")),
    );
    welcome?;
    for (what, payload) in &samples {
        conn.send_payload(payload.clone()).await?;
        let answer = conn.next_answer().await?;
        cx.check_push_error("FRAME-6", &answer, ErrorCode::BadFrame, what);
    }
    let after = conn.anything_within(Duration::from_millis(300)).await?;
    cx.check(
        "FRAME-6",
        after.is_empty(),
        format!("nothing but the BAD_FRAME pushes answers them; then came {after:?}"),
    );
    cx.check_alive("ERR-2", &mut conn, "after the BAD_FRAME pushes").await?;
    Ok(())
}

async fn no_command(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    no_command_round(&cx, &mut conn, "before Hello", 34_000).await?;
    conn.hello().await?;
    no_command_round(&cx, &mut conn, "after Hello", 34_100).await?;
    Ok(())
}

async fn no_command_round(cx: &Ctx, conn: &mut Conn, when: &str, base: u64) -> CaseResult {
    let json = cx.wire().is_json();
    let samples: [(&str, Bytes, u64); 4] = if json {
        [
            ("an empty object", Bytes::from_static(b"{}"), 0),
            ("a request id and no command", format!(r#"{{"requestId":"{base}"}}"#).into(), base),
            (
                "a request id and an unknown command",
                format!(r#"{{"requestId":"{}","summonDragon":{{"size":3}}}}"#, base + 1).into(),
                base + 1,
            ),
            ("an unknown command and no request id", Bytes::from_static(br#"{"summonDragon":{}}"#), 0),
        ]
    } else {
        [
            ("an empty frame", Bytes::new(), 0),
            ("a request id and no command", varint_field(1, base).into(), base),
            (
                "a request id and an unknown command (field 99)",
                [varint_field(1, base + 1), bytes_field(99, &varint_field(1, 3))].concat().into(),
                base + 1,
            ),
            ("an unknown command (field 99) and request id 0", bytes_field(99, &[]).into(), 0),
        ]
    };
    for (n, (what, payload, request_id)) in samples.into_iter().enumerate() {
        conn.send_payload(payload).await?;
        let answer = conn.next_answer().await?;
        let held = answer.request_id == request_id && is_error_frame(&answer, ErrorCode::UnknownCommand);
        let detail = format!(
            "{what}, {when}: expected UNKNOWN_COMMAND with request id {request_id}, got {}",
            show_frame(&answer)
        );
        cx.check("FRAME-7", held, &detail);
        if when == "before Hello" || n == 3 {
            cx.check("FRAME-9", held, format!("{detail} (the command is checked before the request id and phase)"));
        }
        if n == 0 && cx.wire().transport == Transport::Quic {
            cx.check("QUIC-4", held, format!("a length of 0 is a valid, empty frame; {detail}"));
        }
    }
    Ok(())
}

async fn zero_request_id(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(Command::Hello(hello())) }).await?;
    let answer = conn.next_answer().await?;
    cx.check_push_error("FRAME-8", &answer, ErrorCode::InvalidArgument, "Hello with request id 0");
    let reply = conn.request(Command::Ping(v1::Ping {})).await?;
    cx.check_refused(
        "FRAME-8",
        "a Ping after a Hello with request id 0 (not executed, so the session still awaits Hello)",
        &reply,
        ErrorCode::WrongState,
    );
    let name = cx.name("zero");
    let register = register_command(&name, PASSWORD, "zero");
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(register.clone()) }).await?;
    let answer = conn.next_answer().await?;
    cx.check_push_error(
        "FRAME-9",
        &answer,
        ErrorCode::InvalidArgument,
        "Register with request id 0 before Hello (the request id is checked before the phase)",
    );

    conn.hello().await?;
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(register) }).await?;
    let answer = conn.next_answer().await?;
    cx.check_push_error("FRAME-8", &answer, ErrorCode::InvalidArgument, "Register with request id 0");
    let after = conn.anything_within(Duration::from_millis(300)).await?;
    cx.check("FRAME-8", after.is_empty(), format!("nothing else answers it; then came {after:?}"));
    let registered = conn.register(&name, PASSWORD).await;
    cx.check(
        "FRAME-8",
        registered.is_ok(),
        format!(
            "the name of the Register with request id 0 is still free (it was not executed): {}",
            show_result(&registered, "it was")
        ),
    );
    registered?;

    let room = cx.name("zeroroom");
    let create = v1::CreateRoom { name: room.clone(), kind: v1::RoomKind::Public as i32, ..Default::default() };
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(Command::CreateRoom(create)) }).await?;
    let answer = conn.next_answer().await?;
    cx.check_push_error("FRAME-8", &answer, ErrorCode::InvalidArgument, "CreateRoom with request id 0");
    let created = conn.create_room(&room, v1::RoomKind::Public).await;
    cx.check(
        "FRAME-8",
        created.is_ok(),
        format!("the room of the CreateRoom with request id 0 was not created: {}", show_result(&created, "it was")),
    );
    Ok(())
}

async fn check_order(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let bad_register = Command::Register(v1::Register::default());
    let reply = conn.request(bad_register.clone()).await?;
    cx.check_refused(
        "FRAME-9",
        "Register with no username or password before Hello (the phase is checked before the command's own checks)",
        &reply,
        ErrorCode::WrongState,
    );
    let reply = conn.request(Command::SendMessage(v1::SendMessage::default())).await?;
    cx.check_refused("FRAME-9", "SendMessage with no room or text before Hello", &reply, ErrorCode::WrongState);
    conn.hello().await?;
    let name = cx.name("order");
    conn.register(&name, PASSWORD).await?;
    let reply = conn.request(Command::Hello(v1::Hello { versions: vec![99], ..hello() })).await?;
    cx.check_refused(
        "STATE-2",
        "a second Hello, with no version in common (refused for its phase, not closed for its version)",
        &reply,
        ErrorCode::WrongState,
    );
    let reply = conn.request(bad_register).await?;
    cx.check_refused("FRAME-9", "Register with no username or password when logged in", &reply, ErrorCode::WrongState);
    let after = conn.anything_within(Duration::from_millis(300)).await?;
    cx.check(
        "FRAME-9",
        after.is_empty(),
        format!("each was answered once, with its first failure; then came {after:?}"),
    );
    cx.check_alive("ERR-2", &mut conn, "after the refusals").await?;
    Ok(())
}

async fn pipelining(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let name = cx.name("pipe");
    let room = cx.name("piperoom");
    let room_ref = || Some(v1::RoomRef::name(room.clone()));
    let send = |text: &str, txn: &str| {
        Command::SendMessage(v1::SendMessage {
            room: room_ref(),
            text: text.into(),
            client_txn_id: txn.into(),
            ..Default::default()
        })
    };
    // Request ids in no order, one above 2^53.
    let plan: Vec<(u64, &str, Command)> = vec![
        (1_000_001, "Hello", Command::Hello(hello())),
        ((1 << 53) + 1, "Register", register_command(&name, PASSWORD, "conformance")),
        (
            40_007,
            "CreateRoom",
            Command::CreateRoom(v1::CreateRoom { name: room.clone(), kind: 1, ..Default::default() }),
        ),
        (40_003, "SendMessage", send("first", "pipe-1")),
        (u64::MAX, "SendMessage", send("second", "pipe-2")),
        (40_005, "SendMessage", send("third", "pipe-3")),
        (40_001, "JoinRoom", Command::JoinRoom(v1::JoinRoom { room: Some(v1::RoomRef::name(cx.name("nosuchroom"))) })),
        (40_002, "Ping", Command::Ping(v1::Ping {})),
    ];
    for (request_id, _, command) in &plan {
        conn.send(&v1::ClientFrame { request_id: *request_id, command: Some(command.clone()) }).await?;
    }
    let mut answers: BTreeMap<u64, Vec<v1::ServerFrame>> = BTreeMap::new();
    let deadline = Instant::now() + cx.target().reply_timeout;
    while answers.len() < plan.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.recv_within(left).await? {
            None => break,
            Some(RawReceived::Frame(frame)) if frame.request_id != 0 => {
                answers.entry(frame.request_id).or_default().push(frame)
            }
            Some(RawReceived::Frame(_)) => {}
            Some(other) => return Err(Stop::Failed(format!("while waiting for the replies: {other:?}"))),
        }
    }
    for extra in conn.anything_within(Duration::from_millis(400)).await? {
        cx.log().note(&format!("after the replies: {extra}"));
    }
    let mut counts = Vec::new();
    for (request_id, what, _) in &plan {
        let n = answers.get(request_id).map_or(0, Vec::len);
        if n != 1 {
            counts.push(format!("{what} ({request_id}): {n} replies"));
        }
    }
    cx.check(
        "FRAME-3",
        counts.is_empty(),
        format!("{} requests sent without waiting, each answered exactly once; not: {counts:?}", plan.len()),
    );
    let strangers: Vec<&u64> =
        answers.keys().filter(|id| !plan.iter().any(|(request_id, _, _)| request_id == *id)).collect();
    cx.check(
        "FRAME-4",
        strangers.is_empty(),
        format!("every reply carries the request id of its request (ids up to 2^64-1); unknown ids: {strangers:?}"),
    );
    let mut wrong = Vec::new();
    for (request_id, what, _) in &plan {
        let Some(frame) = answers.get(request_id).and_then(|a| a.first()) else { continue };
        if let Some(Body::Error(error)) = &frame.body
            && error.code == ErrorCode::RateLimited as i32
        {
            return Err(super::conn::rate_limited(error));
        }
        let expected = match *what {
            "Hello" => matches!(frame.body, Some(Body::Welcome(_))),
            "Register" => matches!(frame.body, Some(Body::Auth(_))),
            "CreateRoom" => matches!(frame.body, Some(Body::Room(_))),
            "SendMessage" => matches!(frame.body, Some(Body::Sent(_))),
            "JoinRoom" => is_error_frame(frame, ErrorCode::RoomNotFound),
            _ => matches!(frame.body, Some(Body::Pong(_))),
        };
        if !expected {
            wrong.push(format!("{what}: {}", show_frame(frame)));
        }
    }
    cx.check(
        "FRAME-10",
        wrong.is_empty(),
        format!(
            "each command ran after the one before it (Hello, Register, CreateRoom, three sends, a JoinRoom of no \
             room, Ping); unexpected replies: {wrong:?}"
        ),
    );
    let room_id = plan
        .iter()
        .find(|(_, what, _)| *what == "CreateRoom")
        .and_then(|(id, _, _)| answers.get(id))
        .and_then(|a| a.first())
        .and_then(|f| match &f.body {
            Some(Body::Room(room)) => Some(room.room_id),
            _ => None,
        });
    let Some(room_id) = room_id else { return Ok(()) };
    let page = conn.history(room_id, v1::HistoryDirection::Forward, 0, 0).await?;
    let texts: Vec<&str> = page
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(v1::room_event::Kind::Message(m)) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    cx.check(
        "FRAME-10",
        texts == ["first", "second", "third"],
        format!("the three pipelined messages are in the log in the order sent: {texts:?}"),
    );
    Ok(())
}

// --- §8 Errors ---

async fn error_fields(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let samples = [
        (
            "username",
            v1::Register { username: "9-starts-with-a-digit".into(), password: PASSWORD.into(), ..Default::default() },
        ),
        ("password", v1::Register { username: cx.name("errors"), password: "short".into(), ..Default::default() }),
    ];
    for (field, register) in samples {
        let reply = conn.request(Command::Register(register)).await?;
        let Err(error) = &reply else {
            cx.check(
                "ERR-1",
                false,
                format!("a Register with a bad {field}: expected INVALID_ARGUMENT, got {}", show_reply_kind(&reply)),
            );
            continue;
        };
        cx.check(
            "ERR-1",
            error.code == ErrorCode::InvalidArgument as i32 && !error.temporary,
            format!("a Register with a bad {field}: expected INVALID_ARGUMENT, not temporary; got {error:?}"),
        );
        cx.check(
            "ERR-1",
            error.message.to_lowercase().contains(field),
            format!("the message names the offending field {field}: {:?}", error.message),
        );
    }
    let reply = conn
        .request(Command::CreateRoom(v1::CreateRoom { name: cx.name("errors"), kind: 1, ..Default::default() }))
        .await?;
    let held = matches!(&reply, Err(e) if e.code == ErrorCode::WrongState as i32 && !e.message.trim().is_empty() && !e.temporary);
    cx.check(
        "ERR-1",
        held,
        format!("CreateRoom before log-in: expected WRONG_STATE with a message, not temporary; got {reply:?}"),
    );
    cx.check_alive("ERR-2", &mut conn, "after three errors").await?;
    Ok(())
}

// --- §17 Limits ---

async fn frame_size(cx: Ctx) -> CaseResult {
    let encoding = cx.wire().encoding;
    let ping = |request_id| v1::ClientFrame { request_id, command: Some(Command::Ping(v1::Ping {})) };
    let mut conn = cx.open("client").await?;
    let limits = conn.limits();
    let unauthenticated = limits.max_frame_bytes_unauthenticated as usize;
    let max = limits.max_frame_bytes as usize;

    conn.send_payload(padded(&ping(35_001), encoding, unauthenticated)?).await?;
    let reply = conn.reply(35_001).await?;
    cx.check(
        "LIMIT-1",
        matches!(reply.body, Some(Body::Pong(_))),
        format!(
            "before log-in, a Ping padded to the limit ({unauthenticated} bytes) is answered: {}",
            show_frame(&reply)
        ),
    );
    let closing = send_oversized(&cx, &mut conn, padded(&ping(35_002), encoding, unauthenticated + 1)?).await?;
    let what = format!("before log-in, a Ping padded to {} bytes", unauthenticated + 1);
    let held = cx.check_close("LIMIT-1", &closing, CloseCode::FrameTooLarge, &what);
    if cx.wire().transport == Transport::Ws {
        cx.check("WS-5", held, format!("{what}: a message over the limit closes with FRAME_TOO_LARGE"));
    }

    let (mut conn, _) = cx.user("client").await?;
    let mut sizes = vec![max];
    if max > unauthenticated {
        sizes.insert(0, unauthenticated + 1);
    }
    for (n, size) in sizes.into_iter().enumerate() {
        let request_id = 35_010 + n as u64;
        conn.send_payload(padded(&ping(request_id), encoding, size)?).await?;
        let reply = conn.reply(request_id).await?;
        cx.check(
            "LIMIT-1",
            matches!(reply.body, Some(Body::Pong(_))),
            format!(
                "after log-in (limit {max} bytes, {unauthenticated} before), a Ping padded to {size} bytes is \
                 answered: {}",
                show_frame(&reply)
            ),
        );
    }
    let closing = send_oversized(&cx, &mut conn, padded(&ping(35_020), encoding, max + 1)?).await?;
    cx.check_close(
        "LIMIT-1",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("after log-in, a Ping padded to {} bytes", max + 1),
    );
    Ok(())
}

/// Sends a frame the server should refuse (it may close before taking all
/// of it) and waits for the close.
async fn send_oversized(cx: &Ctx, conn: &mut Conn, payload: Bytes) -> CaseResult<Closing> {
    let wait = cx.target().reply_timeout;
    match tokio::time::timeout(wait, conn.send_payload(payload)).await {
        Ok(Ok(())) => {}
        Ok(Err(stop)) => cx.log().note(&format!("sending stopped: {stop}")),
        Err(_) => cx.log().note("sending did not finish in time"),
    }
    conn.closed().await
}
