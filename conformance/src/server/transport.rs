//! §2 Transports: QUIC (ALPN, the certificate, one stream, length
//! prefixes, the close sequence, keep-alives) and WebSocket (subprotocols,
//! message types, fragments, control frames), mostly through a [`Hand`]
//! for exact control over the wire.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use confab_protocol::codec;
use confab_sdk::{
    Encoding, Trust,
    v1::{self, CloseCode, ErrorCode, client_frame::Command, server_frame::Body},
};
use prost::Message as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use super::{
    Case, Closing, Ctx,
    conn::{hello, is_error_frame, is_heartbeat, register_command},
    ctx::PASSWORD,
    hand::{Got, Hand, quic_dial, varint, ws_dial},
    show::show_frame,
};
use crate::{
    evidence::Direction,
    outcome::{CaseResult, Stop},
    wire::{Wire, Wires},
};

const FEATURE: &str = "Transports";

pub fn cases() -> Vec<Case> {
    vec![
        // §2.1 QUIC
        Case::new(
            "quic/alpn",
            FEATURE,
            "A QUIC connection that does not offer ALPN confab/1 is refused in the TLS handshake",
            &["QUIC-1"],
            Wires::Quic,
            quic_alpn,
        ),
        Case::new(
            "quic/certificate",
            FEATURE,
            "The server presents the same certificate on every QUIC connection, matching a pinned fingerprint",
            &["QUIC-2"],
            Wires::Quic,
            quic_certificate,
        ),
        Case::new(
            "quic/no-stream",
            FEATURE,
            "A QUIC connection that opens no stream is closed with HANDSHAKE_TIMEOUT, kept alive by QUIC pings until then",
            &["QUIC-3", "QUIC-7"],
            Wires::Quic,
            quic_no_stream,
        ),
        Case::new(
            "quic/second-stream",
            FEATURE,
            "A second stream opened by the client does not disturb the session on the first",
            &["QUIC-3", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_second_stream,
        ),
        Case::new(
            "quic/length-prefix",
            FEATURE,
            "Frames are varint length-prefixed in both directions, split or batched anyhow, and a zero length is an empty frame",
            &["QUIC-4", "QUIC-3", "FRAME-7"],
            Wires::Quic,
            quic_length_prefix,
        ),
        Case::new(
            "quic/prefix-too-large",
            FEATURE,
            "A length prefix over the frame limit closes with FRAME_TOO_LARGE without waiting for the payload",
            &["QUIC-5", "LIMIT-1", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_prefix_too_large,
        ),
        Case::new(
            "quic/prefix-malformed",
            FEATURE,
            "An overlong or endless length prefix closes with PROTOCOL_VIOLATION",
            &["QUIC-5", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_prefix_malformed,
        ),
        Case::new(
            "quic/close-sequence",
            FEATURE,
            "The server ends a QUIC session with a Close frame, a finished stream, then CONNECTION_CLOSE with the code",
            &["QUIC-6", "CLOSE-1"],
            Wires::Quic,
            quic_close_sequence,
        ),
        Case::new(
            "quic/keep-alive-not-a-frame",
            FEATURE,
            "QUIC keep-alives do not keep a silent session from its idle timeout",
            &["QUIC-7", "LIVE-2", "LIVE-4", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_keep_alive,
        ),
        // §2.2 WebSocket
        Case::new(
            "ws/subprotocol",
            FEATURE,
            "The upgrade needs a confab subprotocol (HTTP 400 otherwise) and the server picks the client's first supported one",
            &["WS-1", "WS-2"],
            Wires::Ws,
            ws_subprotocol,
        ),
        Case::new(
            "ws/wrong-message-type",
            FEATURE,
            "A message of the wrong WebSocket type is answered BAD_FRAME and ignored",
            &["WS-3", "WS-4", "FRAME-6", "ERR-2"],
            Wires::Ws,
            ws_wrong_message_type,
        ),
        Case::new(
            "ws/invalid-utf8-text",
            FEATURE,
            "A text message that is not UTF-8 closes a JSON session with PROTOCOL_VIOLATION",
            &["WS-4", "CLOSE-1", "WS-7"],
            Wires::WsJson,
            ws_invalid_utf8_text,
        ),
        Case::new(
            "ws/fragmented",
            FEATURE,
            "Fragmented messages are reassembled, and one over the frame limit in small fragments closes with FRAME_TOO_LARGE",
            &["WS-5", "WS-6", "CLOSE-1", "WS-7"],
            Wires::Ws,
            ws_fragmented,
        ),
        Case::new(
            "ws/control-frames",
            FEATURE,
            "WebSocket pings are answered with pongs but do not keep a silent session from its idle timeout",
            &["WS-6", "LIVE-2", "LIVE-4", "CLOSE-1", "WS-7"],
            Wires::Ws,
            ws_control_frames,
        ),
    ]
}

// --- §2.1 QUIC ---

async fn quic_alpn(cx: Ctx) -> CaseResult {
    let refused: [(&[&[u8]], &str); 3] = [
        (&[], "no ALPN"),
        (&[b"confab/2".as_slice()], "only ALPN confab/2"),
        (&[b"h3".as_slice(), b"confab/0".as_slice()], "ALPN h3 and confab/0"),
    ];
    for (alpn, what) in refused {
        let dial = quic_dial(&cx, "client", alpn, None).await?;
        let detail = match &dial.result {
            Ok(_) => "but the connection was established".to_owned(),
            Err(error) => format!("it failed: {error}"),
        };
        cx.check("QUIC-1", dial.result.is_err(), format!("offering {what}: expected the handshake to fail; {detail}"));
        dial.close().await;
    }
    let dial = quic_dial(&cx, "client", &[b"confab/2".as_slice(), confab_protocol::ALPN], None).await?;
    let detail = match &dial.result {
        Ok(_) => "it was".to_owned(),
        Err(error) => format!("it failed: {error}"),
    };
    cx.check(
        "QUIC-1",
        dial.result.is_ok(),
        format!("offering confab/2 then confab/1: expected the connection to be established; {detail}"),
    );
    dial.close().await;
    Ok(())
}

async fn quic_certificate(cx: Ctx) -> CaseResult {
    let mut seen = Vec::new();
    for who in ["first", "second"] {
        let dial = quic_dial(&cx, who, &[confab_protocol::ALPN], None).await?;
        if let Err(error) = &dial.result {
            return Err(Stop::Failed(format!("{who} connection failed: {error}")));
        }
        seen.push(dial.fingerprint);
        dial.close().await;
    }
    let [Some(first), Some(second)] = seen[..] else {
        return Err(Stop::Failed(format!("the TLS handshake showed no certificate: {seen:?}")));
    };
    cx.check(
        "QUIC-2",
        first == second,
        format!("the leaf certificate's SHA-256 fingerprint on two connections: {first} and {second}"),
    );
    if let Trust::Fingerprint(pinned) = &cx.target().trust {
        cx.check("QUIC-2", first == *pinned, format!("fingerprint {first}, pinned {pinned}"));
    }
    Ok(())
}

async fn quic_no_stream(cx: Ctx) -> CaseResult {
    let target = cx.target();
    let wait = cx.handshake_wait()?;
    // The ping interval, from a session that completes its handshake.
    let probe = cx.open("probe").await?;
    let ping_interval = probe.ping_interval();
    probe.close().await;

    let dial = quic_dial(&cx, "client", &[confab_protocol::ALPN], None).await?;
    let connection = match &dial.result {
        Ok(connection) => connection.clone(),
        Err(error) => return Err(Stop::Failed(format!("could not connect: {error}"))),
    };
    let started = Instant::now();
    let ended = tokio::time::timeout(wait, connection.closed()).await;
    let pings = connection.stats().frame_rx.ping;
    let shown = match &ended {
        Err(_) => format!("still open after {} ms", wait.as_millis()),
        Ok(error) => format!("closed after {} ms: {error}", started.elapsed().as_millis()),
    };
    cx.log().event("client", &shown);
    let code = match &ended {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
        _ => None,
    };
    cx.check(
        "QUIC-3",
        code == Some(CloseCode::HandshakeTimeout as u64),
        format!("no stream opened: expected CONNECTION_CLOSE with application code 4503 (HANDSHAKE_TIMEOUT); {shown}"),
    );
    if !ping_interval.is_zero() && target.handshake_timeout >= 2 * ping_interval {
        cx.check(
            "QUIC-7",
            pings >= 1,
            format!(
                "the server's QUIC keep-alive ({} ms) sent {pings} PING frames while the connection waited {} ms \
                 without a stream and this client sent no keep-alives",
                ping_interval.as_millis(),
                target.handshake_timeout.as_millis()
            ),
        );
    } else {
        cx.log().note("the handshake timeout is under two ping intervals: QUIC keep-alives not checked");
    }
    dial.close().await;
    Ok(())
}

async fn quic_second_stream(cx: Ctx) -> CaseResult {
    let mut hand = Hand::open(&cx, "client", Wire::QUIC).await?;
    hand.request(Command::Hello(hello())).await?;
    let Some(connection) = hand.quic_connection().cloned() else {
        return Err(Stop::Failed("not a QUIC connection".into()));
    };
    let attempt = match tokio::time::timeout(Duration::from_secs(1), connection.open_bi()).await {
        Err(_) => "could not open a second stream (the server grants no credit for one)".to_owned(),
        Ok(Err(error)) => format!("could not open a second stream: {error}"),
        Ok(Ok((mut send, mut recv))) => {
            let frame = v1::ClientFrame { request_id: 99, command: Some(Command::Ping(v1::Ping {})) };
            let mut bytes = BytesMut::new();
            codec::put_length_prefix(frame.encoded_len(), &mut bytes);
            bytes.extend_from_slice(&frame.encode_to_vec());
            cx.log().bytes("client", Direction::Sent, "on a second stream", &bytes);
            let _ = send.write_all(&bytes).await;
            let _ = send.finish();
            let answer = tokio::time::timeout(Duration::from_millis(500), recv.read_to_end(1 << 16)).await;
            let shown = match answer {
                Err(_) => "nothing within 500 ms".to_owned(),
                Ok(Ok(bytes)) => format!("{} bytes then the end of the stream", bytes.len()),
                Ok(Err(error)) => format!("{error}"),
            };
            format!("sent a Ping on a second stream; the server's side of it: {shown}")
        }
    };
    cx.log().note(&attempt);
    let request_id = hand.command(Command::Ping(v1::Ping {})).await?;
    match hand.reply(request_id).await {
        Ok(frame) => {
            cx.check(
                "QUIC-3",
                matches!(frame.body, Some(Body::Pong(_))),
                format!("the client {attempt}; a Ping on the first stream is still answered: {}", show_frame(&frame)),
            );
        }
        Err(stop) => {
            cx.check("QUIC-3", false, format!("the client {attempt}; the session on the first stream ended: {stop}"));
            if let Some(closing) = hand.closing.take() {
                cx.check_close_form(&closing);
            }
        }
    }
    hand.close().await;
    Ok(())
}

async fn quic_length_prefix(cx: Ctx) -> CaseResult {
    let mut hand = Hand::open(&cx, "client", Wire::QUIC).await?;
    // A Hello of more than 127 bytes (a two-byte prefix), written in pieces
    // that cut through the prefix and the payload.
    let hello_frame = v1::ClientFrame {
        request_id: 1,
        command: Some(Command::Hello(v1::Hello { client_name: format!("conformance {}", "-".repeat(180)), ..hello() })),
    };
    let payload = hello_frame.encode_to_vec();
    let prefix = varint(payload.len() as u64);
    cx.log().frame(hand.label(), Direction::Sent, &hello_frame);
    let (head, tail) = payload.split_at(payload.len() / 2);
    let middle = [&prefix[1..], head].concat();
    for piece in [&prefix[..1], &middle[..], tail] {
        hand.write_stream(piece).await?;
    }
    let welcome = hand.reply(1).await?;
    cx.check(
        "QUIC-4",
        matches!(welcome.body, Some(Body::Welcome(_))),
        format!(
            "a {}-byte Hello with prefix {} written in three pieces is answered: {}",
            payload.len(),
            hex::encode(&prefix),
            show_frame(&welcome)
        ),
    );

    // A Ping and an empty frame in one write.
    let ping = v1::ClientFrame { request_id: 2, command: Some(Command::Ping(v1::Ping {})) };
    cx.log().frame(hand.label(), Direction::Sent, &ping);
    let ping = ping.encode_to_vec();
    let batch = [varint(ping.len() as u64), ping, vec![0x00]].concat();
    let from = hand.received.len();
    hand.write_stream(&batch).await?;
    let pong = hand.wait_for(from, "the Pong", |f| f.request_id == 2).await?;
    cx.check(
        "QUIC-4",
        matches!(pong.body, Some(Body::Pong(_))),
        format!("the first of two frames in one write is answered: {}", show_frame(&pong)),
    );
    let empty = hand.wait_for(from, "the answer to the empty frame", |f| f.request_id == 0 && !is_heartbeat(f)).await?;
    let held = is_error_frame(&empty, ErrorCode::UnknownCommand);
    cx.check("QUIC-4", held, format!("a zero length prefix is a valid, empty frame: {}", show_frame(&empty)));
    cx.check("FRAME-7", held, format!("an empty frame: expected UNKNOWN_COMMAND, got {}", show_frame(&empty)));

    // An AuthResult is long enough for a two-byte prefix from the server.
    hand.request(register_command(&cx.name("prefix"), PASSWORD, "conformance")).await?;

    let overlong: Vec<String> = hand
        .received
        .iter()
        .filter(|f| f.prefix != varint(f.payload.len() as u64))
        .map(|f| format!("{} for {} bytes", hex::encode(&f.prefix), f.payload.len()))
        .collect();
    let long = hand.received.iter().filter(|f| f.prefix.len() > 1).count();
    cx.check(
        "QUIC-4",
        overlong.is_empty(),
        format!(
            "every prefix the server sent is the shortest encoding ({} frames, {long} with a prefix of two bytes or \
             more); not shortest: {overlong:?}",
            hand.received.len()
        ),
    );

    let Some(connection) = hand.quic_connection().cloned() else {
        return Err(Stop::Failed("not a QUIC connection".into()));
    };
    let opened = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! {
            stream = connection.accept_bi() => stream.is_ok(),
            stream = connection.accept_uni() => stream.is_ok(),
        }
    })
    .await;
    cx.check("QUIC-3", !matches!(opened, Ok(true)), "the server opened no stream of its own");
    hand.close().await;
    Ok(())
}

async fn quic_prefix_too_large(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let limits = conn.limits();
    let unauthenticated = u64::from(limits.max_frame_bytes_unauthenticated);
    conn.send_raw(varint(unauthenticated + 1)).await?;
    let closing = conn.closed().await?;
    cx.check_close(
        "QUIC-5",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("before log-in, a prefix announcing {} bytes and no payload", unauthenticated + 1),
    );

    let (mut conn, _) = cx.user("client").await?;
    let max = u64::from(limits.max_frame_bytes);
    conn.send_raw(varint(max + 1)).await?;
    let closing = conn.closed().await?;
    cx.check_close(
        "LIMIT-1",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("after log-in, a prefix announcing {} bytes and no payload", max + 1),
    );

    let mut conn = cx.open("client").await?;
    conn.send_raw(varint(1 << 62)).await?;
    let closing = conn.closed().await?;
    cx.check_close("QUIC-5", &closing, CloseCode::FrameTooLarge, "a prefix announcing 2^62 bytes and no payload");
    Ok(())
}

async fn quic_prefix_malformed(cx: Ctx) -> CaseResult {
    let samples: [(&str, Vec<u8>); 3] = [
        ("an overlong prefix (80 00, zero in two bytes)", vec![0x80, 0x00]),
        ("an overlong prefix (81 80 00, one in three bytes)", vec![0x81, 0x80, 0x00]),
        ("eleven continuation bytes", vec![0x80; 11]),
    ];
    for (what, prefix) in samples {
        let mut conn = cx.open("client").await?;
        let limit = u64::from(conn.limits().max_frame_bytes_unauthenticated);
        conn.send_raw(prefix.clone()).await?;
        let closing = conn.closed().await?;
        let too_large = announces_more_than(&prefix, limit);
        let held = closing.is(CloseCode::ProtocolViolation) || (too_large && closing.is(CloseCode::FrameTooLarge));
        let expected = if too_large { "PROTOCOL_VIOLATION or FRAME_TOO_LARGE" } else { "PROTOCOL_VIOLATION" };
        cx.check("QUIC-5", held, format!("{what}: expected {expected}; {}", closing.describe()));
        cx.check_close_form(&closing);
    }
    Ok(())
}

async fn quic_close_sequence(cx: Ctx) -> CaseResult {
    let mut hand = Hand::open(&cx, "client", Wire::QUIC).await?;
    let hello = v1::Hello { versions: vec![99], ..hello() };
    hand.command(Command::Hello(hello)).await?;
    let mut order = Vec::new();
    let mut closing = Closing::default();
    let deadline = Instant::now() + cx.target().reply_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match hand.recv_within(left).await? {
            None => return Err(Stop::Failed("the server did not close the connection in time".into())),
            Some(Got::Frame(frame)) => match frame.decoded {
                Some(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => {
                    order.push("Close frame");
                    closing.close = Some(close);
                }
                Some(other) => closing.before.push(other),
                None => order.push("an undecodable frame"),
            },
            Some(Got::Pong(_)) => {}
            Some(Got::Finished) => order.push("stream finished"),
            Some(Got::Closed { code, reason }) => {
                order.push("CONNECTION_CLOSE");
                closing.code = code;
                closing.reason = reason;
                break;
            }
        }
    }
    cx.check(
        "QUIC-6",
        order == ["Close frame", "stream finished", "CONNECTION_CLOSE"],
        format!("expected a Close frame, the stream finished, then CONNECTION_CLOSE; saw {order:?}"),
    );
    cx.check_close("QUIC-6", &closing, CloseCode::UnsupportedVersion, "a Hello with no version in common");
    hand.close().await;
    Ok(())
}

async fn quic_keep_alive(cx: Ctx) -> CaseResult {
    let mut silent = Hand::open(&cx, "silent", Wire::QUIC).await?;
    let mut busy = Hand::quic(&cx, "keep-alive", Some(Duration::from_millis(100))).await?;
    idle_race(&cx, "QUIC-7", &mut silent, &mut busy, None).await?;
    if let Some(connection) = busy.quic_connection() {
        let sent = connection.stats().frame_tx.ping;
        cx.log().note(&format!("the keep-alive connection sent {sent} QUIC PING frames"));
        if sent == 0 {
            return Err(Stop::Failed("this suite's QUIC keep-alives were not sent; the case proves nothing".into()));
        }
    }
    silent.close().await;
    busy.close().await;
    Ok(())
}

// --- §2.2 WebSocket ---

async fn ws_subprotocol(cx: Ctx) -> CaseResult {
    for (offer, what) in [(None, "no subprotocol"), (Some("chat.v2, x-confab-unknown"), "only unknown subprotocols")] {
        match ws_dial(&cx, "client", offer).await? {
            Ok((mut ws, chosen)) => {
                cx.check(
                    "WS-2",
                    false,
                    format!(
                        "offering {what}: expected HTTP 400 and no upgrade, but it upgraded (subprotocol {chosen:?})"
                    ),
                );
                let _ = ws.close(None).await;
            }
            Err(refused) => {
                cx.check(
                    "WS-2",
                    refused.status == Some(400),
                    format!("offering {what}: expected HTTP 400 without an upgrade; {}", refused.detail),
                );
            }
        }
    }
    let encoding = cx.wire().encoding;
    let other = match encoding {
        Encoding::Proto => Encoding::Json,
        Encoding::Json => Encoding::Proto,
    };
    let offer = format!("x-confab-unknown, {}, {}", encoding.ws_subprotocol(), other.ws_subprotocol());
    let dialed = ws_dial(&cx, "client", Some(&offer)).await?;
    let detail = match &dialed {
        Ok((_, chosen)) => format!("upgraded, subprotocol {chosen:?}"),
        Err(refused) => refused.detail.clone(),
    };
    cx.check("WS-1", dialed.is_ok(), format!("GET /ws, WebSocket version 13, offering {offer}: {detail}"));
    let Ok((ws, chosen)) = dialed else { return Ok(()) };
    cx.check(
        "WS-2",
        chosen.as_deref() == Some(encoding.ws_subprotocol()),
        format!("offering {offer}: expected {} (the first supported), got {chosen:?}", encoding.ws_subprotocol()),
    );
    let mut hand = Hand::from_ws(&cx, "client", ws, encoding);
    let request_id = hand.command(Command::Hello(hello())).await?;
    let welcome = hand.reply(request_id).await?;
    let text = hand.received.last().is_some_and(|f| f.text);
    cx.check(
        "WS-2",
        matches!(welcome.body, Some(Body::Welcome(_))) && text == (encoding == Encoding::Json),
        format!(
            "the session speaks {}: Hello answered with {} in a {} message",
            encoding.ws_subprotocol(),
            show_frame(&welcome),
            if text { "text" } else { "binary" }
        ),
    );
    hand.close().await;
    Ok(())
}

async fn ws_wrong_message_type(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let ping = v1::ClientFrame { request_id: 10_001, command: Some(Command::Ping(v1::Ping {})) };
    let (requirement, what) = if cx.wire().is_json() {
        conn.send_raw(ping.encode_to_vec()).await?;
        ("WS-4", "a binary message (a protobuf Ping) on a confab.v1.json session")
    } else {
        conn.send_ws_text(serde_json::to_string(&ping)?).await?;
        ("WS-3", "a text message (a JSON Ping) on a confab.v1.proto session")
    };
    let answer = conn.next_answer().await?;
    cx.check_push_error(requirement, &answer, ErrorCode::BadFrame, what);
    cx.check_push_error("FRAME-6", &answer, ErrorCode::BadFrame, what);
    let after = conn.anything_within(Duration::from_millis(400)).await?;
    cx.check(requirement, after.is_empty(), format!("the message is otherwise ignored (no Pong); then came {after:?}"));
    cx.check_alive("ERR-2", &mut conn, "after the BAD_FRAME").await?;
    Ok(())
}

async fn ws_invalid_utf8_text(cx: Ctx) -> CaseResult {
    let mut hand = Hand::open(&cx, "client", Wire::WS_JSON).await?;
    hand.request(Command::Hello(hello())).await?;
    let text = b"{\"requestId\":\"7\",\"ping\":{}, \"x\":\"\xff\xfe\"}".to_vec();
    cx.log().bytes(hand.label(), Direction::Sent, "text message (invalid UTF-8)", &text);
    hand.send_ws(Message::Frame(Frame::message(text, OpCode::Data(Data::Text), true))).await?;
    let closing = hand.closed_within(cx.target().reply_timeout).await?;
    cx.check_close("WS-4", &closing, CloseCode::ProtocolViolation, "a text message that is not valid UTF-8");
    let reason = closing.close.as_ref().map_or(closing.reason.as_str(), |c| c.reason.as_str());
    cx.check("WS-4", !reason.trim().is_empty(), format!("the close names the reason: {reason:?}"));
    hand.close().await;
    Ok(())
}

async fn ws_fragmented(cx: Ctx) -> CaseResult {
    let encoding = cx.wire().encoding;
    let mut hand = Hand::open(&cx, "client", cx.wire()).await?;
    let frame = v1::ClientFrame {
        request_id: 1,
        command: Some(Command::Hello(v1::Hello {
            client_name: "fragments: Grüße 👋 aus Zürich".into(), ..hello()
        })),
    };
    cx.log().frame(hand.label(), Direction::Sent, &frame);
    let payload = codec::encode(&frame, encoding).to_vec();
    // The first cut falls inside the four bytes of 👋 (UTF-8 may be split
    // across fragments), the second anywhere.
    let cut = payload.windows(4).position(|w| w == "👋".as_bytes()).map_or(payload.len() / 3, |at| at + 2);
    let cut2 = (cut + payload.len()) / 2;
    let data = if encoding == Encoding::Json { Data::Text } else { Data::Binary };
    hand.send_ws(Message::Frame(Frame::message(payload[..cut].to_vec(), OpCode::Data(data), false))).await?;
    hand.send_ws(Message::Ping(Bytes::from_static(b"between fragments"))).await?;
    hand.send_ws(Message::Frame(Frame::message(payload[cut..cut2].to_vec(), OpCode::Data(Data::Continue), false)))
        .await?;
    hand.send_ws(Message::Frame(Frame::message(payload[cut2..].to_vec(), OpCode::Data(Data::Continue), true))).await?;
    let reply = hand.reply(1).await?;
    cx.check(
        "WS-5",
        matches!(reply.body, Some(Body::Welcome(_))),
        format!("a Hello in three fragments (a ping between them) is answered: {}", show_frame(&reply)),
    );
    let Some(Body::Welcome(welcome)) = reply.body else { return Ok(()) };
    let pong = hand.pongs.iter().any(|p| &p[..] == b"between fragments");
    cx.check("WS-6", pong, format!("the ping between fragments is answered with its payload; pongs {:?}", hand.pongs));

    let limit = welcome.limits.unwrap_or_default().max_frame_bytes_unauthenticated as usize;
    let total = limit + 1;
    let piece = (limit / 4).max(1);
    let mut sent = 0;
    let mut first = true;
    while sent < total {
        let len = piece.min(total - sent);
        let opcode = if first { OpCode::Data(data) } else { OpCode::Data(Data::Continue) };
        let fin = sent + len == total;
        if let Err(stop) = hand.send_ws(Message::Frame(Frame::message(vec![b'x'; len], opcode, fin))).await {
            cx.log().note(&format!("sending the fragments stopped: {stop}"));
            break;
        }
        sent += len;
        first = false;
    }
    cx.log().note(&format!("sent {sent} of {total} bytes in fragments of at most {piece}"));
    let closing = hand.closed_within(cx.target().reply_timeout).await?;
    cx.check_close(
        "WS-5",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("a {total}-byte message in fragments of {piece} bytes, over the limit of {limit} before log-in"),
    );
    hand.close().await;
    Ok(())
}

async fn ws_control_frames(cx: Ctx) -> CaseResult {
    let mut silent = Hand::open(&cx, "silent", cx.wire()).await?;
    let mut busy = Hand::open(&cx, "pinging", cx.wire()).await?;
    idle_race(&cx, "WS-6", &mut silent, &mut busy, Some(Duration::from_millis(150))).await?;
    let unanswered: Vec<&Bytes> = busy
        .pings
        .iter()
        .filter(|(at, payload)| {
            busy.closed_at.is_none_or(|closed| *at + Duration::from_millis(500) < closed)
                && !busy.pongs.contains(payload)
        })
        .map(|(_, payload)| payload)
        .collect();
    cx.check(
        "WS-6",
        !busy.pings.is_empty() && unanswered.is_empty(),
        format!(
            "{} pings sent, {} pongs received; pings not answered with their payload: {unanswered:?}",
            busy.pings.len(),
            busy.pongs.len()
        ),
    );
    silent.close().await;
    busy.close().await;
    Ok(())
}

/// Two sessions after `Hello`: `silent` sends nothing more; `busy` sends
/// only what must not count as a frame (its QUIC keep-alives, or WebSocket
/// pings every `ws_ping`). If the server closes the silent one for idleness
/// it must close the busy one too (`requirement`, LIVE-2), both with
/// IDLE_TIMEOUT, not before `idle_timeout_ms` (LIVE-4).
async fn idle_race(
    cx: &Ctx,
    requirement: &str,
    silent: &mut Hand,
    busy: &mut Hand,
    ws_ping: Option<Duration>,
) -> CaseResult {
    let mut idle = Duration::ZERO;
    for hand in [&mut *silent, &mut *busy] {
        let welcome = hand.request(Command::Hello(hello())).await?;
        if let Some(Body::Welcome(welcome)) = welcome.body {
            idle = Duration::from_millis(welcome.idle_timeout_ms.into());
        }
    }
    let sent_last = Instant::now();
    if idle + Duration::from_secs(1) > cx.target().max_wait {
        return Err(Stop::Skipped(format!("idle_timeout_ms ({} ms) is beyond --max-wait", idle.as_millis())));
    }
    let window = idle * 2 + Duration::from_secs(2);
    let (silent_end, busy_end) = tokio::join!(silent.wait_close(window, None), busy.wait_close(window, ws_ping));
    let (silent_end, busy_end) = (silent_end?, busy_end?);
    let Some(silent_closing) = silent_end else {
        cx.check(
            "LIVE-4",
            false,
            format!("a session silent since Hello was still open {} ms later (no IDLE_TIMEOUT)", window.as_millis()),
        );
        return Ok(());
    };
    cx.check(
        "LIVE-4",
        silent_closing.is(CloseCode::IdleTimeout),
        format!("a session silent since Hello: expected IDLE_TIMEOUT; {}", silent_closing.describe()),
    );
    cx.check_close_form(&silent_closing);
    let Some(busy_closing) = busy_end else {
        let what = "a session that sent nothing but keep-alives or pings was still open";
        cx.check(
            requirement,
            false,
            format!("{what} {} ms later, although the silent one was closed", window.as_millis()),
        );
        cx.check("LIVE-2", false, format!("{what}: control frames and QUIC packets must not count as frames"));
        return Ok(());
    };
    let held = busy_closing.is(CloseCode::IdleTimeout);
    let detail = format!(
        "a session that sent nothing but keep-alives or pings is closed as idle like the silent one: {}",
        busy_closing.describe()
    );
    cx.check(requirement, held, &detail);
    cx.check("LIVE-2", held, &detail);
    cx.check_close_form(&busy_closing);
    for (hand, what) in [(&*silent, "silent"), (&*busy, "pinging")] {
        if let Some(closed) = hand.closed_at {
            let after = closed.saturating_duration_since(sent_last);
            cx.check(
                "LIVE-4",
                after + Duration::from_millis(100) >= idle,
                format!(
                    "the {what} session was closed {} ms after its last frame (idle_timeout_ms {})",
                    after.as_millis(),
                    idle.as_millis()
                ),
            );
        }
    }
    Ok(())
}

// --- helpers ---

/// Whether the length prefix bytes `prefix` already announce more than
/// `limit` at some point: each continuation byte raises the least length
/// the prefix can still encode (QUIC-5).
fn announces_more_than(prefix: &[u8], limit: u64) -> bool {
    let mut value: u64 = 0;
    for (i, byte) in prefix.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
        let least =
            if byte & 0x80 == 0 { value } else { value | 1u64.checked_shl(7 * (i as u32 + 1)).unwrap_or(u64::MAX) };
        if least > limit {
            return true;
        }
        if byte & 0x80 == 0 {
            break;
        }
    }
    false
}
