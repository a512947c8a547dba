//! §2 Transports, §3 Encodings, §4 The envelope, §5 The session state
//! machine, §8 Errors, §9 Closing and the frame size limits of §17: what the
//! server does with well-formed, malformed, oversized and out-of-phase
//! frames on each wire.
//!
//! Most cases talk through [`Conn`]. What the SDK decodes away (length
//! prefixes and JSON text as the server sent them, WebSocket subprotocols,
//! fragments and control frames, QUIC ALPN, streams and keep-alives) is done
//! here by hand with quinn and tungstenite: see [`Hand`] at the end.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use confab_protocol::codec;
use confab_sdk::{
    Encoding, Fingerprint, Scheme, ServerUrl, Trust,
    raw::RawReceived,
    v1::{self, CloseCode, ErrorCode, client_frame::Command, server_frame::Body},
};
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest as _,
        http::{HeaderValue, header::SEC_WEBSOCKET_PROTOCOL},
        protocol::{
            WebSocketConfig,
            frame::{
                Frame,
                coding::{Data, OpCode},
            },
        },
    },
};

use super::{
    Case, Closing, Conn, Ctx, Reply,
    conn::{hello, send_message, show_reply},
    ctx::PASSWORD,
};
use crate::{
    evidence::{Direction, FrameLog},
    outcome::{CaseResult, Stop},
    wire::{Transport, Wire, Wires},
};

const TRANSPORTS: &str = "Transports";
const ENCODINGS: &str = "Encodings";
const ENVELOPE: &str = "The envelope";
const STATE: &str = "The session state machine";
const ERRORS: &str = "Errors";
const LIMITS: &str = "Limits";

pub fn cases() -> Vec<Case> {
    vec![
        // §2.1 QUIC
        Case::new(
            "quic/alpn",
            TRANSPORTS,
            "A QUIC connection that does not offer ALPN confab/1 is refused in the TLS handshake",
            &["QUIC-1"],
            Wires::Quic,
            quic_alpn,
        ),
        Case::new(
            "quic/certificate",
            TRANSPORTS,
            "The server presents the same certificate on every QUIC connection, matching a pinned fingerprint",
            &["QUIC-2"],
            Wires::Quic,
            quic_certificate,
        ),
        Case::new(
            "quic/no-stream",
            TRANSPORTS,
            "A QUIC connection that opens no stream is closed with HANDSHAKE_TIMEOUT, kept alive by QUIC pings until then",
            &["QUIC-3", "QUIC-7"],
            Wires::Quic,
            quic_no_stream,
        ),
        Case::new(
            "quic/second-stream",
            TRANSPORTS,
            "A second stream opened by the client does not disturb the session on the first",
            &["QUIC-3", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_second_stream,
        ),
        Case::new(
            "quic/length-prefix",
            TRANSPORTS,
            "Frames are varint length-prefixed in both directions, split or batched anyhow, and a zero length is an empty frame",
            &["QUIC-4", "QUIC-3", "FRAME-7"],
            Wires::Quic,
            quic_length_prefix,
        ),
        Case::new(
            "quic/prefix-too-large",
            TRANSPORTS,
            "A length prefix over the frame limit closes with FRAME_TOO_LARGE without waiting for the payload",
            &["QUIC-5", "LIMIT-1", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_prefix_too_large,
        ),
        Case::new(
            "quic/prefix-malformed",
            TRANSPORTS,
            "An overlong or endless length prefix closes with PROTOCOL_VIOLATION",
            &["QUIC-5", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_prefix_malformed,
        ),
        Case::new(
            "quic/close-sequence",
            TRANSPORTS,
            "The server ends a QUIC session with a Close frame, a finished stream, then CONNECTION_CLOSE with the code",
            &["QUIC-6", "CLOSE-1"],
            Wires::Quic,
            quic_close_sequence,
        ),
        Case::new(
            "quic/keep-alive-not-a-frame",
            TRANSPORTS,
            "QUIC keep-alives do not keep a silent session from its idle timeout",
            &["QUIC-7", "LIVE-2", "LIVE-4", "CLOSE-1", "QUIC-6"],
            Wires::Quic,
            quic_keep_alive,
        ),
        // §2.2 WebSocket
        Case::new(
            "ws/subprotocol",
            TRANSPORTS,
            "The upgrade needs a confab subprotocol (HTTP 400 otherwise) and the server picks the client's first supported one",
            &["WS-1", "WS-2"],
            Wires::Ws,
            ws_subprotocol,
        ),
        Case::new(
            "ws/wrong-message-type",
            TRANSPORTS,
            "A message of the wrong WebSocket type is answered BAD_FRAME and ignored",
            &["WS-3", "WS-4", "FRAME-6", "ERR-2"],
            Wires::Ws,
            ws_wrong_message_type,
        ),
        Case::new(
            "ws/invalid-utf8-text",
            TRANSPORTS,
            "A text message that is not UTF-8 closes a JSON session with PROTOCOL_VIOLATION",
            &["WS-4", "CLOSE-1", "WS-7"],
            Wires::WsJson,
            ws_invalid_utf8_text,
        ),
        Case::new(
            "ws/fragmented",
            TRANSPORTS,
            "Fragmented messages are reassembled, and one over the frame limit in small fragments closes with FRAME_TOO_LARGE",
            &["WS-5", "WS-6", "CLOSE-1", "WS-7"],
            Wires::Ws,
            ws_fragmented,
        ),
        Case::new(
            "ws/control-frames",
            TRANSPORTS,
            "WebSocket pings are answered with pongs but do not keep a silent session from its idle timeout",
            &["WS-6", "LIVE-2", "LIVE-4", "CLOSE-1", "WS-7"],
            Wires::Ws,
            ws_control_frames,
        ),
        // §3 Encodings
        Case::new(
            "enc/binary-decoding",
            ENCODINGS,
            "Binary frames are decoded whatever the field order, packing, repetition and unknown fields",
            &["ENC-1"],
            Wires::Proto,
            binary_decoding,
        ),
        Case::new(
            "enc/invalid-utf8",
            ENCODINGS,
            "A binary frame with invalid UTF-8 in a string field is answered BAD_FRAME and ignored",
            &["ENC-3", "FRAME-6"],
            Wires::Proto,
            invalid_utf8,
        ),
        Case::new(
            "enc/canonical-output",
            ENCODINGS,
            "The server's frames are in the canonical encoding, byte for byte or JSON value for value",
            &["ENC-2", "ENC-4", "FRAME-1", "FRAME-5"],
            Wires::All,
            canonical_output,
        ),
        Case::new(
            "enc/json-decoding",
            ENCODINGS,
            "JSON frames are accepted with proto field names, numbers for 64-bit values and enums, nulls and unknown keys",
            &["ENC-5"],
            Wires::WsJson,
            json_decoding,
        ),
        Case::new(
            "enc/json-text",
            ENCODINGS,
            "A JSON frame is one object with only whitespace around it; anything else is BAD_FRAME",
            &["ENC-6", "FRAME-6"],
            Wires::WsJson,
            json_text,
        ),
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
        // §5 The session state machine
        Case::new(
            "state/admission",
            STATE,
            "Each phase admits exactly its commands and answers the others WRONG_STATE, keeping the session open",
            &["STATE-2", "ERR-2"],
            Wires::All,
            admission,
        ),
        Case::new(
            "state/transitions",
            STATE,
            "Log-ins authenticate, Logout un-authenticates, Refresh and failed commands change no phase",
            &["STATE-1"],
            Wires::All,
            transitions,
        ),
        Case::new(
            "state/logout-stops-events",
            STATE,
            "After Logout no events are pushed, and after logging in again only once the client resumes",
            &["STATE-3"],
            Wires::All,
            logout_stops_events,
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
    let wait = target.handshake_timeout + Duration::from_secs(3);
    if wait > target.max_wait {
        return Err(Stop::Skipped(format!(
            "the handshake timeout ({:?}) is beyond --max-wait",
            target.handshake_timeout
        )));
    }
    // The ping interval, from a session that completes its handshake.
    let probe = cx.open("probe").await?;
    let ping_interval = Duration::from_millis(probe.welcome.as_ref().map_or(0, |w| w.ping_interval_ms).into());
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
                check_close_form(&cx, &closing);
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
    let held = is_error(&empty, ErrorCode::UnknownCommand);
    cx.check("QUIC-4", held, format!("a zero length prefix is a valid, empty frame: {}", show_frame(&empty)));
    cx.check("FRAME-7", held, format!("an empty frame: expected UNKNOWN_COMMAND, got {}", show_frame(&empty)));

    // An AuthResult is long enough for a two-byte prefix from the server.
    let name = cx.name("prefix");
    let register = v1::Register { username: name, password: PASSWORD.into(), device_name: "conformance".into() };
    hand.request(Command::Register(register)).await?;

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
    check_close(
        &cx,
        "QUIC-5",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("before log-in, a prefix announcing {} bytes and no payload", unauthenticated + 1),
    );

    let (mut conn, _) = cx.user("client").await?;
    let max = u64::from(limits.max_frame_bytes);
    conn.send_raw(varint(max + 1)).await?;
    let closing = conn.closed().await?;
    check_close(
        &cx,
        "LIMIT-1",
        &closing,
        CloseCode::FrameTooLarge,
        &format!("after log-in, a prefix announcing {} bytes and no payload", max + 1),
    );

    let mut conn = cx.open("client").await?;
    conn.send_raw(varint(1 << 62)).await?;
    let closing = conn.closed().await?;
    check_close(&cx, "QUIC-5", &closing, CloseCode::FrameTooLarge, "a prefix announcing 2^62 bytes and no payload");
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
        check_close_form(&cx, &closing);
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
    check_close(&cx, "QUIC-6", &closing, CloseCode::UnsupportedVersion, "a Hello with no version in common");
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
    let answer = next_answer(&mut conn).await?;
    check_push_error(&cx, requirement, &answer, ErrorCode::BadFrame, what);
    check_push_error(&cx, "FRAME-6", &answer, ErrorCode::BadFrame, what);
    let after = quiet(&mut conn, Duration::from_millis(400)).await?;
    cx.check(requirement, after.is_empty(), format!("the message is otherwise ignored (no Pong); then came {after:?}"));
    alive(&cx, "ERR-2", &mut conn, "after the BAD_FRAME").await?;
    Ok(())
}

async fn ws_invalid_utf8_text(cx: Ctx) -> CaseResult {
    let mut hand = Hand::open(&cx, "client", Wire::WS_JSON).await?;
    hand.request(Command::Hello(hello())).await?;
    let text = b"{\"requestId\":\"7\",\"ping\":{}, \"x\":\"\xff\xfe\"}".to_vec();
    cx.log().bytes(hand.label(), Direction::Sent, "text message (invalid UTF-8)", &text);
    hand.send_ws(Message::Frame(Frame::message(text, OpCode::Data(Data::Text), true))).await?;
    let closing = hand.closed_within(cx.target().reply_timeout).await?;
    check_close(&cx, "WS-4", &closing, CloseCode::ProtocolViolation, "a text message that is not valid UTF-8");
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
    check_close(
        &cx,
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
    check_close_form(cx, &silent_closing);
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
    check_close_form(cx, &busy_closing);
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

// --- §3 Encodings ---

async fn binary_decoding(cx: Ctx) -> CaseResult {
    // Out of order, unpacked, unknown fields of every wire type, and a
    // request id given twice.
    let mut conn = cx.connect("client").await?;
    let hello_body = [
        bytes_field(4, b"confab-conformance"),
        varint_field(15, 7),
        [tag(16, 5), vec![1, 2, 3, 4]].concat(),
        [tag(17, 1), vec![1, 2, 3, 4, 5, 6, 7, 8]].concat(),
        bytes_field(18, &varint_field(1, 1)),
        varint_field(2, 1),
        varint_field(1, 1),
        bytes_field(3, b"resume"),
    ]
    .concat();
    let frame = [
        varint_field(1, 29_999),
        bytes_field(10, &hello_body),
        varint_field(2047, 5),
        bytes_field(3000, b"unknown"),
        varint_field(1, 30_001),
    ]
    .concat();
    conn.send_payload(frame).await?;
    let answer = next_answer(&mut conn).await?;
    let held = answer.request_id == 30_001
        && matches!(&answer.body, Some(Body::Welcome(w)) if w.version == 1 && w.capabilities == ["resume"]);
    cx.check(
        "ENC-1",
        held,
        format!(
            "a Hello with fields out of order, versions unpacked, unknown fields of each wire type and \
                 request id 29999 then 30001: expected Welcome (version 1, capabilities [resume]) for 30001, got {}",
            show_frame(&answer)
        ),
    );
    conn.welcome = match answer.body {
        Some(Body::Welcome(welcome)) => Some(welcome),
        _ => return Ok(()),
    };

    let name = cx.name("binary");
    conn.register(&name, PASSWORD).await?;
    let room_name = cx.name("binaryroom");
    let room = conn.create_room(&room_name, v1::RoomKind::Public).await?;
    let refs = [
        ("a name of no room, then the room's id", [bytes_field(2, b"no-such-room"), varint_field(1, room.room_id)]),
        ("an unknown id, then the room's name", [varint_field(1, u64::MAX - 7), bytes_field(2, room_name.as_bytes())]),
    ];
    for (n, (what, room_ref)) in refs.into_iter().enumerate() {
        let request_id = 30_010 + n as u64;
        let get = bytes_field(1, &room_ref.concat());
        conn.send_payload([varint_field(1, request_id), bytes_field(41, &get)].concat()).await?;
        let reply = conn.reply(request_id).await?;
        cx.check(
            "ENC-1",
            matches!(&reply.body, Some(Body::History(page)) if page.room_id == room.room_id),
            format!(
                "GetHistory with a RoomRef holding {what} (the last oneof member wins): expected \
                     the room's HistoryPage, got {}",
                show_frame(&reply)
            ),
        );
    }
    // get_history twice: the two messages are merged.
    let first = bytes_field(1, &varint_field(1, room.room_id));
    let second = varint_field(4, 1);
    let request_id = 30_020;
    let frame = [varint_field(1, request_id), bytes_field(41, &first), bytes_field(41, &second)].concat();
    conn.send_payload(frame).await?;
    let reply = conn.reply(request_id).await?;
    cx.check(
        "ENC-1",
        matches!(&reply.body, Some(Body::History(page)) if page.room_id == room.room_id && page.events.len() == 1),
        format!(
            "get_history given twice, first with the room, then with limit 1 (merged): expected a page \
                 of one event, got {}",
            show_frame(&reply)
        ),
    );
    conn.close().await;

    // hello twice: merged, repeated versions packed then unpacked.
    let mut conn = cx.connect("client").await?;
    let part_a = [bytes_field(1, &[9, 1]), bytes_field(4, b"part a")].concat();
    let part_b = [varint_field(1, 5), bytes_field(3, b"resume"), varint_field(2, 1)].concat();
    let frame = [varint_field(1, 30_030), bytes_field(10, &part_a), bytes_field(10, &part_b)].concat();
    conn.send_payload(frame).await?;
    let answer = next_answer(&mut conn).await?;
    let held = answer.request_id == 30_030
        && matches!(&answer.body, Some(Body::Welcome(w)) if w.version == 1 && w.capabilities == ["resume"]);
    cx.check(
        "ENC-1",
        held,
        format!(
            "hello given twice (versions [9, 1] packed; then versions 5 unpacked and capabilities \
                 [resume]), merged: expected Welcome with version 1 and capabilities [resume], got {}",
            show_frame(&answer)
        ),
    );
    conn.close().await;
    Ok(())
}

async fn invalid_utf8(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let hello_body = [bytes_field(1, &[1]), varint_field(2, 1), bytes_field(4, b"conformance \xff\xfe")].concat();
    conn.send_payload([varint_field(1, 31_001), bytes_field(10, &hello_body)].concat()).await?;
    let answer = next_answer(&mut conn).await?;
    check_push_error(&cx, "ENC-3", &answer, ErrorCode::BadFrame, "a Hello whose client_name is not UTF-8");
    let welcome = conn.hello().await;
    cx.check(
        "FRAME-6",
        welcome.is_ok(),
        format!("the bad Hello was ignored, so a good one is answered: {}", outcome(&welcome)),
    );
    welcome?;
    let register = [bytes_field(1, b"user\xc3("), bytes_field(2, PASSWORD.as_bytes())].concat();
    conn.send_payload([varint_field(1, 31_002), bytes_field(20, &register)].concat()).await?;
    let answer = next_answer(&mut conn).await?;
    let what = "a Register whose username is not UTF-8 (undecodable, not INVALID_ARGUMENT)";
    check_push_error(&cx, "ENC-3", &answer, ErrorCode::BadFrame, what);
    alive(&cx, "FRAME-6", &mut conn, "after the BAD_FRAME").await?;
    conn.close().await;
    Ok(())
}

async fn canonical_output(cx: Ctx) -> CaseResult {
    let encoding = cx.wire().encoding;
    let mut hand = Hand::open(&cx, "client", cx.wire()).await?;
    let welcome = hand.request(Command::Hello(hello())).await?;
    if !matches!(welcome.body, Some(Body::Welcome(_))) {
        return Err(Stop::Failed(format!("expected Welcome, got {}", show_frame(&welcome))));
    }
    let from = hand.received.len();
    let garbage: &[u8] = if encoding == Encoding::Json { b"not json" } else { &[0xff, 0xff, 0xff] };
    hand.send_payload(garbage).await?;
    hand.wait_for(from, "the BAD_FRAME push", |f| f.request_id == 0 && !is_heartbeat(f)).await?;
    let name = cx.name("canon");
    let register = v1::Register { username: name, password: PASSWORD.into(), device_name: "conformance".into() };
    hand.request(Command::Register(register)).await?;
    let create = v1::CreateRoom { name: cx.name("canonroom"), kind: v1::RoomKind::Public as i32 };
    let room = hand.request(Command::CreateRoom(create)).await?;
    let Some(Body::Room(room)) = room.body else {
        return Err(Stop::Failed(format!("expected RoomInfo, got {}", show_frame(&room))));
    };
    hand.request(Command::Resume(v1::Resume::default())).await?;
    let from = hand.received.len();
    hand.request(send_message(room.room_id, "canonical ✓", "canonical-1")).await?;
    hand.wait_for(from, "the message's event", |f| matches!(f.body, Some(Body::Event(_)))).await?;
    let get = v1::GetHistory {
        room: Some(v1::RoomRef::id(confab_sdk::RoomId(room.room_id))),
        direction: v1::HistoryDirection::Backward as i32,
        anchor_seq: 0,
        limit: 0,
    };
    hand.request(Command::GetHistory(get)).await?;

    let frames = &hand.received;
    let undecodable: Vec<String> =
        frames.iter().filter(|f| f.decoded.is_none()).map(|f| crate::evidence::show(&f.payload)).collect();
    cx.check(
        "FRAME-1",
        undecodable.is_empty(),
        format!("each of the {} frames received holds one ServerFrame; undecodable: {undecodable:?}", frames.len()),
    );
    let bad_pushes: Vec<String> = frames
        .iter()
        .filter_map(|f| f.decoded.as_ref())
        .filter(|f| {
            f.request_id == 0
                && !matches!(f.body, Some(Body::Event(_) | Body::Ping(_) | Body::Close(_) | Body::Error(_)))
        })
        .map(show_frame)
        .collect();
    cx.check(
        "FRAME-5",
        bad_pushes.is_empty(),
        format!("every push (request id 0) is an event, ping, close or error; others: {bad_pushes:?}"),
    );
    match encoding {
        Encoding::Proto => {
            let differing: Vec<String> = frames
                .iter()
                .filter_map(|f| {
                    let decoded = f.decoded.as_ref()?;
                    let canonical = decoded.encode_to_vec();
                    (canonical != f.payload)
                        .then(|| format!("sent {} for canonical {}", hex::encode(&f.payload), hex::encode(&canonical)))
                })
                .collect();
            cx.should(
                "ENC-2",
                differing.is_empty(),
                format!(
                    "each of the {} frames is the canonical encoding of what it decodes to; not: {differing:?}",
                    frames.len()
                ),
            );
        }
        Encoding::Json => {
            let mut problems = Vec::new();
            for f in frames {
                let text = String::from_utf8_lossy(&f.payload);
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                    problems.push(format!("not JSON: {text}"));
                    continue;
                };
                let Some(object) = value.as_object() else {
                    problems.push(format!("not a JSON object: {text}"));
                    continue;
                };
                if !f.text {
                    problems.push(format!("came as a binary message: {text}"));
                }
                let Some(decoded) = &f.decoded else { continue };
                let canonical = serde_json::to_value(decoded)?;
                if canonical != value {
                    problems.push(format!("sent {text} for canonical {canonical}"));
                }
                let request_id = object.get("requestId");
                if decoded.request_id == 0 {
                    if request_id.is_some() {
                        problems.push(format!("a push with a requestId key (FRAME-5): {text}"));
                    }
                } else if !request_id.is_some_and(serde_json::Value::is_string) {
                    problems.push(format!("requestId is not a JSON string: {text}"));
                }
            }
            cx.check(
                "ENC-4",
                problems.is_empty(),
                format!(
                    "each of the {} text messages is the canonical proto3 JSON of its frame (lowerCamelCase keys, \
                     64-bit values as strings, enum names, defaults omitted, no requestId in pushes); not: \
                     {problems:?}",
                    frames.len()
                ),
            );
        }
    }
    hand.close().await;
    Ok(())
}

async fn json_decoding(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let text = concat!(
        r#"{"request_id":"32001","hello":{"versions":[1],"client_name":"conformance","#,
        r#""futureOption":{"a":[1,null]}},"unknownTopLevel":true}"#
    );
    conn.send_payload(text.to_owned()).await?;
    let reply = conn.reply(32_001).await?;
    let held = matches!(&reply.body, Some(Body::Welcome(w)) if w.version == 1 && w.feature_level == 1);
    cx.check(
        "ENC-5",
        held,
        format!(
            "Hello with the key request_id, unknown keys at both levels and featureLevel absent: expected Welcome \
             (feature level 1: an absent level is 0, which counts as 1), got {}",
            show_frame(&reply)
        ),
    );
    if let Some(Body::Welcome(welcome)) = reply.body {
        conn.welcome = Some(welcome);
    }
    let name = cx.name("json");
    conn.register(&name, PASSWORD).await?;

    let room_name = cx.name("jsonroom");
    let text = format!(r#"{{"requestId":32002,"createRoom":{{"name":"{room_name}","kind":1}}}}"#);
    conn.send_payload(text).await?;
    let reply = conn.reply(32_002).await?;
    let room = match &reply.body {
        Some(Body::Room(room)) if room.kind == v1::RoomKind::Public as i32 => Some(room.clone()),
        _ => None,
    };
    cx.check(
        "ENC-5",
        room.is_some(),
        format!("CreateRoom with requestId as a JSON number and kind 1 (PUBLIC): got {}", show_frame(&reply)),
    );
    let Some(room) = room else { return Ok(()) };

    let text = format!(
        r#"{{"requestId":32003,"sendMessage":{{"room":{{"id":{}}},"text":"one","client_txn_id":"json-1"}}}}"#,
        room.room_id
    );
    conn.send_payload(text).await?;
    let reply = conn.reply(32_003).await?;
    cx.check(
        "ENC-5",
        matches!(&reply.body, Some(Body::Sent(sent)) if sent.room_id == room.room_id),
        format!("SendMessage with the room id as a JSON number and the key client_txn_id: got {}", show_frame(&reply)),
    );
    conn.send_message(room.room_id, "two", "json-2").await?;

    // The same page asked for in different spellings.
    let room_id = room.room_id;
    let spellings = [
        ("FORWARD by name", 32_010, r#""direction":"FORWARD","anchorSeq":"1""#),
        ("FORWARD as the number 1", 32_011, r#""direction":1,"anchor_seq":1"#),
        ("BACKWARD by name", 32_012, r#""direction":"BACKWARD""#),
        ("the unknown name SIDEWAYS", 32_013, r#""direction":"SIDEWAYS""#),
        ("no direction", 32_014, r#""anchorSeq":"0""#),
    ];
    let mut pages = BTreeMap::new();
    for (what, request_id, fields) in &spellings {
        let text = format!(r#"{{"requestId":"{request_id}","getHistory":{{"room":{{"id":"{room_id}"}},{fields}}}}}"#);
        conn.send_payload(text).await?;
        let reply = conn.reply(*request_id).await?;
        let seqs = match &reply.body {
            Some(Body::History(page)) => Some(page.events.iter().map(|e| e.seq).collect::<Vec<_>>()),
            _ => None,
        };
        cx.log().note(&format!("GetHistory with {what}: {}", show_frame(&reply)));
        pages.insert(*what, (seqs, show_frame(&reply)));
    }
    let seqs = |what: &str| pages.get(what).and_then(|(s, _)| s.clone());
    let shown = |what: &str| pages.get(what).map(|(_, s)| s.clone()).unwrap_or_default();
    cx.check(
        "ENC-5",
        seqs("FORWARD by name").is_some() && seqs("FORWARD as the number 1") == seqs("FORWARD by name"),
        format!(
            "direction 1 and anchor_seq 1 as numbers read like \"FORWARD\" and \"1\": {} vs {}",
            shown("FORWARD as the number 1"),
            shown("FORWARD by name")
        ),
    );
    cx.check(
        "ENC-5",
        seqs("BACKWARD by name").is_some() && seqs("the unknown name SIDEWAYS") == seqs("BACKWARD by name"),
        format!(
            "the unknown direction name SIDEWAYS reads as the zero value BACKWARD: {} vs {}",
            shown("the unknown name SIDEWAYS"),
            shown("BACKWARD by name")
        ),
    );
    cx.check(
        "ENC-5",
        seqs("BACKWARD by name").is_some() && seqs("no direction") == seqs("BACKWARD by name"),
        format!("an absent direction reads as BACKWARD: {} vs {}", shown("no direction"), shown("BACKWARD by name")),
    );

    conn.send_payload(r#"{"requestId":"32020","joinRoom":{"room":null}}"#.to_owned()).await?;
    let reply = conn.reply(32_020).await?;
    cx.check(
        "ENC-5",
        is_error(&reply, ErrorCode::InvalidArgument),
        format!(
            "JoinRoom with \"room\":null (the default, no room): expected INVALID_ARGUMENT for the missing room, \
             got {}",
            show_frame(&reply)
        ),
    );
    Ok(())
}

async fn json_text(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let frame = v1::ClientFrame { request_id: 33_001, command: Some(Command::Hello(hello())) };
    let text = serde_json::to_string(&frame)?;
    conn.send_payload(format!(" \n\t{text}\r\n ")).await?;
    let reply = conn.reply(33_001).await?;
    cx.check(
        "ENC-6",
        matches!(reply.body, Some(Body::Welcome(_))),
        format!("a Hello object with whitespace around it: expected Welcome, got {}", show_frame(&reply)),
    );
    let samples = [
        ("two objects in one message", r#"{"requestId":"33002","ping":{}} {"requestId":"33003","ping":{}}"#),
        ("an array holding the object", r#"[{"requestId":"33004","ping":{}}]"#),
        ("a JSON string", r#""ping""#),
        ("an object followed by other text", r#"{"requestId":"33005","ping":{}} and more"#),
    ];
    for (what, text) in samples {
        conn.send_payload(text.to_owned()).await?;
        let answer = next_answer(&mut conn).await?;
        check_push_error(&cx, "ENC-6", &answer, ErrorCode::BadFrame, what);
    }
    let after = quiet(&mut conn, Duration::from_millis(400)).await?;
    cx.check(
        "FRAME-6",
        after.is_empty(),
        format!("the undecodable messages were ignored (no Pong for any of them); then came {after:?}"),
    );
    alive(&cx, "FRAME-6", &mut conn, "after the BAD_FRAME pushes").await?;
    Ok(())
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
        let answer = next_answer(&mut conn).await?;
        let what = format!("{what}, before Hello (decoding comes before the phase)");
        check_push_error(&cx, "FRAME-9", &answer, ErrorCode::BadFrame, &what);
    }
    let welcome = conn.hello().await;
    cx.check(
        "FRAME-6",
        welcome.is_ok(),
        format!("the undecodable frames were ignored, so Hello is answered: {}", outcome(&welcome)),
    );
    welcome?;
    for (what, payload) in &samples {
        conn.send_payload(payload.clone()).await?;
        let answer = next_answer(&mut conn).await?;
        check_push_error(&cx, "FRAME-6", &answer, ErrorCode::BadFrame, what);
    }
    let after = quiet(&mut conn, Duration::from_millis(300)).await?;
    cx.check(
        "FRAME-6",
        after.is_empty(),
        format!("nothing but the BAD_FRAME pushes answers them; then came {after:?}"),
    );
    alive(&cx, "ERR-2", &mut conn, "after the BAD_FRAME pushes").await?;
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
        let answer = next_answer(conn).await?;
        let held = answer.request_id == request_id && is_error(&answer, ErrorCode::UnknownCommand);
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
    let answer = next_answer(&mut conn).await?;
    check_push_error(&cx, "FRAME-8", &answer, ErrorCode::InvalidArgument, "Hello with request id 0");
    let reply = conn.request(Command::Ping(v1::Ping {})).await?;
    check_refused(
        &cx,
        "FRAME-8",
        &reply,
        ErrorCode::WrongState,
        "a Ping after a Hello with request id 0 (not executed, so the session still awaits Hello)",
    );
    let name = cx.name("zero");
    let register = v1::Register { username: name.clone(), password: PASSWORD.into(), device_name: "zero".into() };
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(Command::Register(register.clone())) }).await?;
    let answer = next_answer(&mut conn).await?;
    check_push_error(
        &cx,
        "FRAME-9",
        &answer,
        ErrorCode::InvalidArgument,
        "Register with request id 0 before Hello (the request id is checked before the phase)",
    );

    conn.hello().await?;
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(Command::Register(register)) }).await?;
    let answer = next_answer(&mut conn).await?;
    check_push_error(&cx, "FRAME-8", &answer, ErrorCode::InvalidArgument, "Register with request id 0");
    let after = quiet(&mut conn, Duration::from_millis(300)).await?;
    cx.check("FRAME-8", after.is_empty(), format!("nothing else answers it; then came {after:?}"));
    let registered = conn.register(&name, PASSWORD).await;
    cx.check(
        "FRAME-8",
        registered.is_ok(),
        format!(
            "the name of the Register with request id 0 is still free (it was not executed): {}",
            outcome(&registered)
        ),
    );
    registered?;

    let room = cx.name("zeroroom");
    let create = v1::CreateRoom { name: room.clone(), kind: v1::RoomKind::Public as i32 };
    conn.send(&v1::ClientFrame { request_id: 0, command: Some(Command::CreateRoom(create)) }).await?;
    let answer = next_answer(&mut conn).await?;
    check_push_error(&cx, "FRAME-8", &answer, ErrorCode::InvalidArgument, "CreateRoom with request id 0");
    let created = conn.create_room(&room, v1::RoomKind::Public).await;
    cx.check(
        "FRAME-8",
        created.is_ok(),
        format!("the room of the CreateRoom with request id 0 was not created: {}", outcome(&created)),
    );
    Ok(())
}

async fn check_order(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let bad_register = Command::Register(v1::Register::default());
    let reply = conn.request(bad_register.clone()).await?;
    check_refused(
        &cx,
        "FRAME-9",
        &reply,
        ErrorCode::WrongState,
        "Register with no username or password before Hello (the phase is checked before the command's own checks)",
    );
    let reply = conn.request(Command::SendMessage(v1::SendMessage::default())).await?;
    check_refused(&cx, "FRAME-9", &reply, ErrorCode::WrongState, "SendMessage with no room or text before Hello");
    conn.hello().await?;
    let name = cx.name("order");
    conn.register(&name, PASSWORD).await?;
    let reply = conn.request(Command::Hello(v1::Hello { versions: vec![99], ..hello() })).await?;
    check_refused(
        &cx,
        "STATE-2",
        &reply,
        ErrorCode::WrongState,
        "a second Hello, with no version in common (refused for its phase, not closed for its version)",
    );
    let reply = conn.request(bad_register).await?;
    check_refused(
        &cx,
        "FRAME-9",
        &reply,
        ErrorCode::WrongState,
        "Register with no username or password when logged in",
    );
    let after = quiet(&mut conn, Duration::from_millis(300)).await?;
    cx.check(
        "FRAME-9",
        after.is_empty(),
        format!("each was answered once, with its first failure; then came {after:?}"),
    );
    alive(&cx, "ERR-2", &mut conn, "after the refusals").await?;
    Ok(())
}

async fn pipelining(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let name = cx.name("pipe");
    let room = cx.name("piperoom");
    let room_ref = || Some(v1::RoomRef::name(room.clone()));
    let send = |text: &str, txn: &str| {
        Command::SendMessage(v1::SendMessage { room: room_ref(), text: text.into(), client_txn_id: txn.into() })
    };
    // Request ids in no order, one above 2^53.
    let plan: Vec<(u64, &str, Command)> = vec![
        (1_000_001, "Hello", Command::Hello(hello())),
        (
            (1 << 53) + 1,
            "Register",
            Command::Register(v1::Register {
                username: name,
                password: PASSWORD.into(),
                device_name: "conformance".into(),
            }),
        ),
        (40_007, "CreateRoom", Command::CreateRoom(v1::CreateRoom { name: room.clone(), kind: 1 })),
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
    for extra in quiet(&mut conn, Duration::from_millis(400)).await? {
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
        let expected = match *what {
            "Hello" => matches!(frame.body, Some(Body::Welcome(_))),
            "Register" => matches!(frame.body, Some(Body::Auth(_))),
            "CreateRoom" => matches!(frame.body, Some(Body::Room(_))),
            "SendMessage" => matches!(frame.body, Some(Body::Sent(_))),
            "JoinRoom" => is_error(frame, ErrorCode::RoomNotFound),
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

// --- §5 The session state machine ---

/// Every command, with an empty body (or a v1 Hello).
fn every_command() -> Vec<(&'static str, Command)> {
    vec![
        ("Hello", Command::Hello(hello())),
        ("Ping", Command::Ping(v1::Ping {})),
        ("Register", Command::Register(v1::Register::default())),
        ("Login", Command::Login(v1::Login::default())),
        ("Refresh", Command::Refresh(v1::Refresh::default())),
        ("Logout", Command::Logout(v1::Logout {})),
        ("Authenticate", Command::Authenticate(v1::Authenticate::default())),
        ("GuestLogin", Command::GuestLogin(v1::GuestLogin::default())),
        ("CreateRoom", Command::CreateRoom(v1::CreateRoom::default())),
        ("JoinRoom", Command::JoinRoom(v1::JoinRoom::default())),
        ("LeaveRoom", Command::LeaveRoom(v1::LeaveRoom::default())),
        ("InviteToRoom", Command::InviteToRoom(v1::InviteToRoom::default())),
        ("ListRooms", Command::ListRooms(v1::ListRooms::default())),
        ("ListMembers", Command::ListMembers(v1::ListMembers::default())),
        ("OpenDirect", Command::OpenDirect(v1::OpenDirect::default())),
        ("SendMessage", Command::SendMessage(v1::SendMessage::default())),
        ("GetHistory", Command::GetHistory(v1::GetHistory::default())),
        ("Resume", Command::Resume(v1::Resume::default())),
    ]
}

const ADMITTED_UNAUTHENTICATED: &[&str] = &["Ping", "Refresh", "Register", "Login", "Authenticate", "GuestLogin"];
const ADMITTED_AUTHENTICATED: &[&str] = &[
    "Ping",
    "Refresh",
    "Logout",
    "CreateRoom",
    "JoinRoom",
    "LeaveRoom",
    "InviteToRoom",
    "ListRooms",
    "ListMembers",
    "OpenDirect",
    "SendMessage",
    "GetHistory",
    "Resume",
];

async fn admission(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    admission_round(&cx, &mut conn, "AwaitingHello", &["Hello"], &[]).await?;
    conn.hello().await?;
    admission_round(&cx, &mut conn, "Unauthenticated", ADMITTED_UNAUTHENTICATED, &[]).await?;
    let name = cx.name("admission");
    conn.register(&name, PASSWORD).await?;
    // Logout last: it leaves the phase.
    admission_round(&cx, &mut conn, "Authenticated", ADMITTED_AUTHENTICATED, &["Logout"]).await?;
    let reply = conn.request(Command::Logout(v1::Logout {})).await?;
    cx.check(
        "STATE-2",
        !is_wrong_state(&reply),
        format!("Logout is admitted when authenticated: {}", show_reply(&reply)),
    );
    alive(&cx, "ERR-2", &mut conn, "after all those errors").await?;
    Ok(())
}

/// Sends every command but `admitted` ones listed in `skip` (and Hello in
/// AwaitingHello, which would leave the phase); checks that exactly the
/// ones not admitted are answered WRONG_STATE.
async fn admission_round(cx: &Ctx, conn: &mut Conn, phase: &str, admitted: &[&str], skip: &[&str]) -> CaseResult {
    let mut not_refused = Vec::new();
    let mut refused = Vec::new();
    let mut outside = 0;
    for (name, command) in every_command() {
        let is_admitted = admitted.contains(&name);
        if skip.contains(&name) || (phase == "AwaitingHello" && is_admitted) {
            continue;
        }
        let reply = conn.request(command).await?;
        match (is_admitted, is_wrong_state(&reply)) {
            (false, false) => not_refused.push(format!("{name}: {}", kind(&reply))),
            (true, true) => refused.push(format!("{name}: {}", kind(&reply))),
            _ => {}
        }
        outside += usize::from(!is_admitted);
    }
    cx.check(
        "STATE-2",
        not_refused.is_empty(),
        format!("in {phase}, the {outside} commands not admitted are answered WRONG_STATE; not: {not_refused:?}"),
    );
    if phase != "AwaitingHello" {
        cx.check(
            "STATE-2",
            refused.is_empty(),
            format!("in {phase}, the admitted commands {admitted:?} are not answered WRONG_STATE; were: {refused:?}"),
        );
    }
    Ok(())
}

fn is_wrong_state(reply: &Reply) -> bool {
    matches!(reply, Err(error) if error.code == ErrorCode::WrongState as i32)
}

/// Whether the session is authenticated, by whether `ListRooms` (admitted
/// only then) is refused WRONG_STATE.
async fn authenticated(conn: &mut Conn) -> CaseResult<bool> {
    Ok(!is_wrong_state(&conn.request(Command::ListRooms(v1::ListRooms::default())).await?))
}

async fn check_phase(cx: &Ctx, conn: &mut Conn, expected: bool, after: &str) -> CaseResult {
    let is = authenticated(conn).await?;
    let phase = |authenticated: bool| if authenticated { "Authenticated" } else { "Unauthenticated" };
    cx.check(
        "STATE-1",
        is == expected,
        format!(
            "after {after}: expected {}, found {} (ListRooms {}answered WRONG_STATE)",
            phase(expected),
            phase(is),
            if is { "not " } else { "" }
        ),
    );
    Ok(())
}

async fn transitions(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    check_phase(&cx, &mut conn, false, "Hello").await?;
    let name = cx.name("phases");
    let reply = conn
        .request(Command::Login(v1::Login {
            username: name.clone(),
            password: "not the password".into(),
            device_name: "conformance".into(),
        }))
        .await?;
    check_phase(&cx, &mut conn, false, &format!("a Login answered {}", show_reply(&reply))).await?;
    let registered = conn.register(&name, PASSWORD).await?;
    check_phase(&cx, &mut conn, true, "Register").await?;
    let reply = conn.request(Command::JoinRoom(v1::JoinRoom { room: None })).await?;
    check_phase(&cx, &mut conn, true, &format!("a JoinRoom answered {}", show_reply(&reply))).await?;
    let refresh = Command::Refresh(v1::Refresh { refresh_token: registered.refresh_token.clone() });
    let reply = conn.request(refresh).await?;
    check_phase(&cx, &mut conn, true, &format!("a Refresh when authenticated (answered {})", kind(&reply))).await?;
    let reply = conn.request(Command::Logout(v1::Logout {})).await?;
    check_phase(&cx, &mut conn, false, &format!("Logout (answered {})", kind(&reply))).await?;
    let login = conn.login(&name, PASSWORD).await?;
    check_phase(&cx, &mut conn, true, "Login").await?;

    let mut other = cx.open("other").await?;
    let refresh = Command::Refresh(v1::Refresh { refresh_token: login.refresh_token.clone() });
    let reply = other.request(refresh).await?;
    check_phase(&cx, &mut other, false, &format!("a Refresh when not logged in (answered {})", kind(&reply))).await?;
    let access_token = match &reply {
        Ok(Body::Auth(auth)) => auth.access_token.clone(),
        _ => login.access_token.clone(),
    };
    other.authenticate(&access_token).await?;
    check_phase(&cx, &mut other, true, "Authenticate").await?;

    let mut guest = cx.open("guest").await?;
    let guests = guest.welcome.as_ref().is_some_and(|w| w.capabilities.iter().any(|c| c == "guests"));
    if guests {
        guest.guest(&cx.name("guest")).await?;
        check_phase(&cx, &mut guest, true, "GuestLogin").await?;
    } else {
        cx.log().note("the server does not admit guests: GuestLogin not tried");
    }
    Ok(())
}

async fn logout_stops_events(cx: Ctx) -> CaseResult {
    let (mut alice, alice_user) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = alice.create_room(&cx.name("logout"), v1::RoomKind::Public).await?;
    bob.join(v1::RoomRef::id(confab_sdk::RoomId(room.room_id))).await?;
    alice.resume(vec![]).await?;
    alice.events_until_quiet(Duration::from_millis(300)).await?;
    bob.send_message(room.room_id, "before logout", "logout-1").await?;
    let text = next_message(&cx, &mut alice).await?;
    cx.check(
        "STATE-3",
        text.as_deref() == Some("before logout"),
        format!("after Resume, the message is pushed: {text:?}"),
    );

    let reply = alice.request(Command::Logout(v1::Logout {})).await?;
    if !matches!(reply, Ok(Body::Done(_))) {
        return Err(Stop::Failed(format!("Logout: expected Done, got {}", show_reply(&reply))));
    }
    bob.send_message(room.room_id, "after logout", "logout-2").await?;
    let events = alice.events_until_quiet(Duration::from_millis(500)).await?;
    cx.check("STATE-3", events.is_empty(), format!("after Logout, no events are pushed: {}", show_events(&events)));

    alice.login(&alice_user.name, PASSWORD).await?;
    bob.send_message(room.room_id, "logged in again", "logout-3").await?;
    let events = alice.events_until_quiet(Duration::from_millis(500)).await?;
    cx.check(
        "STATE-3",
        events.is_empty(),
        format!("logged in again but not resumed, no events are pushed: {}", show_events(&events)),
    );
    alice.resume(vec![]).await?;
    bob.send_message(room.room_id, "resumed", "logout-4").await?;
    let text = next_message(&cx, &mut alice).await?;
    cx.check("STATE-3", text.as_deref() == Some("resumed"), format!("after Resume, events are pushed again: {text:?}"));
    Ok(())
}

/// The text of the next message event pushed (other events skipped), or
/// `None` when none comes within the reply timeout.
async fn next_message(cx: &Ctx, conn: &mut Conn) -> CaseResult<Option<String>> {
    let deadline = Instant::now() + cx.target().reply_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.event_within(left).await? {
            None => return Ok(None),
            Some(v1::RoomEvent { kind: Some(v1::room_event::Kind::Message(message)), .. }) => {
                return Ok(Some(message.text));
            }
            Some(_) => {}
        }
    }
}

fn show_events(events: &[v1::RoomEvent]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| format!("{events:?}"))
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
                format!("a Register with a bad {field}: expected INVALID_ARGUMENT, got {}", kind(&reply)),
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
    let reply = conn.request(Command::CreateRoom(v1::CreateRoom { name: cx.name("errors"), kind: 1 })).await?;
    let held = matches!(&reply, Err(e) if e.code == ErrorCode::WrongState as i32 && !e.message.trim().is_empty() && !e.temporary);
    cx.check(
        "ERR-1",
        held,
        format!("CreateRoom before log-in: expected WRONG_STATE with a message, not temporary; got {reply:?}"),
    );
    alive(&cx, "ERR-2", &mut conn, "after three errors").await?;
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
    let held = check_close(&cx, "LIMIT-1", &closing, CloseCode::FrameTooLarge, &what);
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
    check_close(
        &cx,
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

/// `frame` encoded and padded to exactly `size` bytes with an unknown field
/// (binary) or key (JSON), which the server must skip (ENC-1, ENC-5).
fn padded(frame: &v1::ClientFrame, encoding: Encoding, size: usize) -> CaseResult<Bytes> {
    const PADDING: u32 = 1000;
    let cannot = || Stop::Failed(format!("cannot pad {frame:?} to {size} bytes"));
    match encoding {
        Encoding::Proto => {
            // One padding field, or when its length's varint cannot hit the
            // size exactly, a three-byte filler first.
            for filler in [false, true] {
                let mut out = frame.encode_to_vec();
                if filler {
                    out.extend(varint_field(PADDING + 1, 1));
                }
                let Some(rest) = size.checked_sub(out.len() + tag(PADDING, 2).len()) else { continue };
                for length_bytes in 1..=5 {
                    if let Some(len) = rest.checked_sub(length_bytes)
                        && varint(len as u64).len() == length_bytes
                    {
                        out.extend(bytes_field(PADDING, &vec![b'x'; len]));
                        return Ok(out.into());
                    }
                }
            }
            Err(cannot())
        }
        Encoding::Json => {
            let text = serde_json::to_string(frame)?;
            let body = text.strip_suffix('}').ok_or_else(cannot)?;
            let head = format!("{body},\"zzPadding\":\"");
            let len = size.checked_sub(head.len() + 2).ok_or_else(cannot)?;
            Ok(format!("{head}{}\"}}", "x".repeat(len)).into())
        }
    }
}

// --- shared checks ---

fn show_frame(frame: &v1::ServerFrame) -> String {
    serde_json::to_string(frame).unwrap_or_else(|_| format!("{frame:?}"))
}

/// A reply in a word or two (the kind of body, or the error): for details
/// about replies that carry tokens.
fn kind(reply: &Reply) -> String {
    match reply {
        Err(error) => error.to_string(),
        Ok(body) => {
            let frame = v1::ServerFrame { request_id: 0, body: Some(body.clone()) };
            match serde_json::to_value(&frame) {
                Ok(serde_json::Value::Object(object)) => object.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => "a reply".into(),
            }
        }
    }
}

fn outcome<T>(result: &CaseResult<T>) -> String {
    match result {
        Ok(_) => "it was".into(),
        Err(stop) => stop.to_string(),
    }
}

fn is_error(frame: &v1::ServerFrame, code: ErrorCode) -> bool {
    matches!(&frame.body, Some(Body::Error(error)) if error.code == code as i32)
}

fn is_heartbeat(frame: &v1::ServerFrame) -> bool {
    frame.request_id == 0 && matches!(frame.body, Some(Body::Ping(_)))
}

/// Checks that `frame` is an `Error` push (request id 0) with `code`.
pub(super) fn check_push_error(
    cx: &Ctx,
    requirement: &str,
    frame: &v1::ServerFrame,
    code: ErrorCode,
    what: &str,
) -> bool {
    cx.check(
        requirement,
        frame.request_id == 0 && is_error(frame, code),
        format!("{what}: expected an Error push {} (request id 0), got {}", code.as_str_name(), show_frame(frame)),
    )
}

/// Checks that `reply` is the error `code`, saying what was asked.
fn check_refused(cx: &Ctx, requirement: &str, reply: &Reply, code: ErrorCode, what: &str) -> bool {
    let held = matches!(reply, Err(error) if error.code == code as i32);
    cx.check(requirement, held, format!("{what}: expected {}, got {}", code.as_str_name(), show_reply(reply)))
}

/// The next frame that is not a heartbeat.
pub(super) async fn next_answer(conn: &mut Conn) -> CaseResult<v1::ServerFrame> {
    loop {
        let frame = conn.frame().await?;
        if !is_heartbeat(&frame) {
            return Ok(frame);
        }
    }
}

/// Everything but heartbeats that arrives within `window`, shown.
pub(super) async fn quiet(conn: &mut Conn, window: Duration) -> CaseResult<Vec<String>> {
    let deadline = Instant::now() + window;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match conn.recv_within(left).await? {
            None => break,
            Some(RawReceived::Frame(frame)) if is_heartbeat(&frame) => {}
            Some(RawReceived::Frame(frame)) => seen.push(show_frame(&frame)),
            Some(RawReceived::Undecodable { error, .. }) => seen.push(format!("an undecodable frame ({error})")),
            Some(RawReceived::Closed { code, reason }) => {
                seen.push(format!("the transport closed (code {code:?}, {reason:?})"));
                break;
            }
        }
    }
    Ok(seen)
}

/// Checks (as `requirement`) that the session still answers a `Ping`.
pub(super) async fn alive(cx: &Ctx, requirement: &str, conn: &mut Conn, after: &str) -> CaseResult<bool> {
    let request_id = conn.command(Command::Ping(v1::Ping {})).await?;
    let detail = match conn.reply(request_id).await {
        Ok(frame) if matches!(frame.body, Some(Body::Pong(_))) => None,
        Ok(frame) => Some(show_frame(&frame)),
        Err(stop) => Some(stop.to_string()),
    };
    let held = detail.is_none();
    cx.check(
        requirement,
        held,
        format!(
            "{after}, the session is open and a Ping is answered Pong{}",
            detail.map_or(String::new(), |d| format!(": {d}"))
        ),
    );
    Ok(held)
}

/// Checks (as `requirement`) that the session was closed with `expected`
/// in both the `Close` frame and the transport, then the form of the close
/// ([`check_close_form`]).
pub(super) fn check_close(cx: &Ctx, requirement: &str, closing: &Closing, expected: CloseCode, what: &str) -> bool {
    let held = cx.check(
        requirement,
        closing.is(expected),
        format!("{what}: expected the close {}; {}", expected.as_str_name(), closing.describe()),
    );
    check_close_form(cx, closing);
    held
}

/// CLOSE-1: a `Close` frame, then the transport closed with the same code;
/// QUIC-6 or WS-7 (by the case's wire): with the same reason, at most 120
/// bytes of it.
pub(super) fn check_close_form(cx: &Ctx, closing: &Closing) {
    let frame_code = closing.close.as_ref().map(|close| close.code);
    cx.check(
        "CLOSE-1",
        frame_code.is_some() && frame_code == closing.code,
        format!("a Close frame, then the transport closed with the same code: {}", closing.describe()),
    );
    if let Some(close) = &closing.close {
        let requirement = match cx.wire().transport {
            Transport::Quic => "QUIC-6",
            Transport::Ws => "WS-7",
        };
        let held = if close.reason.len() <= 120 {
            closing.reason == close.reason
        } else {
            closing.reason.len() <= 120 && close.reason.starts_with(&closing.reason)
        };
        cx.check(
            requirement,
            held,
            format!(
                "the transport close's reason is the Close frame's (at most 120 bytes): {:?} for {:?}",
                closing.reason, close.reason
            ),
        );
    }
}

// --- protobuf by hand ---

fn varint(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(value, &mut out);
    out
}

fn tag(field: u32, wire_type: u8) -> Vec<u8> {
    varint((u64::from(field) << 3) | u64::from(wire_type))
}

fn varint_field(field: u32, value: u64) -> Vec<u8> {
    [tag(field, 0), varint(value)].concat()
}

fn bytes_field(field: u32, bytes: &[u8]) -> Vec<u8> {
    [tag(field, 2), varint(bytes.len() as u64), bytes.to_vec()].concat()
}

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

/// Splits a length prefix off `buf`: `Some((prefix bytes, length))` when
/// it is complete, `None` when more bytes are needed. Overlong encodings
/// are read (the caller judges them); more than 10 bytes is an error.
fn read_prefix(buf: &[u8]) -> Result<Option<(usize, u64)>, String> {
    let mut value: u64 = 0;
    for (i, byte) in buf.iter().enumerate() {
        if i == 10 {
            return Err(format!("more than 10 bytes: {}", hex::encode(&buf[..11.min(buf.len())])));
        }
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
    }
    Ok(None)
}

// --- connections by hand ---

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Accepts the server's certificate when it matches the target's pinned
/// fingerprint, or any certificate when none is pinned (these connections
/// test framing, not trust); the handshake signature is always checked.
/// Records the leaf certificate's fingerprint.
#[derive(Debug)]
struct HandVerifier {
    pinned: Option<Fingerprint>,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for HandVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of_certificate(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(fingerprint);
        }
        match self.pinned {
            Some(pinned) if pinned != fingerprint => {
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

type SeenFingerprint = Arc<Mutex<Option<Fingerprint>>>;

fn hand_tls(cx: &Ctx, alpn: &[&[u8]], tls13_only: bool) -> CaseResult<(Arc<rustls::ClientConfig>, SeenFingerprint)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned = match &cx.target().trust {
        Trust::Fingerprint(fingerprint) => Some(*fingerprint),
        _ => None,
    };
    let seen = Arc::new(Mutex::new(None));
    let verifier = Arc::new(HandVerifier { pinned, seen: seen.clone(), provider: provider.clone() });
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        if tls13_only { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(config), seen))
}

/// A QUIC connection attempt made with quinn directly.
struct QuicDial {
    endpoint: quinn::Endpoint,
    result: Result<quinn::Connection, String>,
    /// The fingerprint of the certificate the server presented.
    fingerprint: Option<Fingerprint>,
}

impl QuicDial {
    async fn close(self) {
        if let Ok(connection) = &self.result {
            connection.close(0u32.into(), b"done");
        }
        let _ = tokio::time::timeout(Duration::from_millis(300), self.endpoint.wait_idle()).await;
    }
}

/// Connects to the target's QUIC URL offering `alpn`, with QUIC keep-alives
/// every `keep_alive` (none when `None`) and a long idle timeout (so the
/// server's applies).
async fn quic_dial(cx: &Ctx, who: &str, alpn: &[&[u8]], keep_alive: Option<Duration>) -> CaseResult<QuicDial> {
    let url = cx.target().quic_url.as_deref().ok_or_else(|| Stop::Skipped("no QUIC URL given".into()))?;
    let url = ServerUrl::parse(url)?;
    let address = tokio::net::lookup_host((url.host(), url.port()))
        .await?
        .next()
        .ok_or_else(|| Stop::Failed(format!("{} has no address", url.host())))?;
    let (tls, seen) = hand_tls(cx, alpn, true)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(keep_alive).max_idle_timeout(Some(quinn::VarInt::from_u32(600_000).into()));
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr =
        if address.is_ipv6() { (Ipv6Addr::UNSPECIFIED, 0).into() } else { (Ipv4Addr::UNSPECIFIED, 0).into() };
    let endpoint = quinn::Endpoint::client(bind)?;
    let connecting = endpoint.connect_with(config, address, url.host())?;
    let result = match tokio::time::timeout(cx.target().reply_timeout, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", cx.target().reply_timeout.as_secs())),
    };
    let alpn: Vec<String> = alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let shown = match &result {
        Ok(_) => "connected".to_owned(),
        Err(error) => format!("failed: {error}"),
    };
    cx.log().event(who, &format!("QUIC to {url} offering ALPN {alpn:?}: {shown}"));
    let fingerprint = seen.lock().ok().and_then(|seen| *seen);
    Ok(QuicDial { endpoint, result, fingerprint })
}

/// Why a WebSocket upgrade did not happen.
struct WsRefused {
    /// The HTTP status, when the server answered the request.
    status: Option<u16>,
    detail: String,
}

/// Opens a WebSocket to the target's URL offering `protocols` (the value of
/// `Sec-WebSocket-Protocol`, none when `None`); returns the stream and the
/// subprotocol the server selected, or how it refused.
async fn ws_dial(
    cx: &Ctx,
    who: &str,
    protocols: Option<&str>,
) -> CaseResult<Result<(WsStream, Option<String>), WsRefused>> {
    let url = cx.target().ws_url.as_deref().ok_or_else(|| Stop::Skipped("no WebSocket URL given".into()))?;
    let url = ServerUrl::parse(url)?;
    let mut request = url.to_string().into_client_request()?;
    if let Some(protocols) = protocols {
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(protocols)?);
    }
    let connector = match url.scheme() {
        Scheme::Wss => Connector::Rustls(hand_tls(cx, &[], false)?.0),
        _ => Connector::Plain,
    };
    let attempt = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(WebSocketConfig::default()),
        true,
        Some(connector),
    );
    let offered = protocols.unwrap_or("no subprotocol");
    let result = match tokio::time::timeout(cx.target().reply_timeout, attempt).await {
        Err(_) => Err(WsRefused { status: None, detail: "no answer in time".into() }),
        Ok(Ok((ws, response))) => {
            let chosen =
                response.headers().get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).map(str::to_owned);
            Ok((ws, chosen))
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response.body().as_deref().map(|b| String::from_utf8_lossy(b).trim().to_owned());
            Err(WsRefused {
                status: Some(response.status().as_u16()),
                detail: format!("HTTP {}: {}", response.status(), body.unwrap_or_default()),
            })
        }
        Ok(Err(error)) => Err(WsRefused { status: None, detail: error.to_string() }),
    };
    let shown = match &result {
        Ok((_, chosen)) => format!("upgraded, subprotocol {chosen:?}"),
        Err(refused) => format!("refused: {}", refused.detail),
    };
    cx.log().event(who, &format!("WebSocket to {url} offering {offered}: {shown}"));
    Ok(result)
}

/// One frame a [`Hand`] received.
struct HandFrame {
    payload: Bytes,
    /// Its QUIC length prefix as sent (empty on WebSocket).
    prefix: Vec<u8>,
    /// Whether it came as a WebSocket text message.
    text: bool,
    decoded: Option<v1::ServerFrame>,
}

/// What a [`Hand`] received.
enum Got {
    Frame(HandFrame),
    /// A WebSocket pong.
    Pong(Bytes),
    /// The server finished its QUIC stream.
    Finished,
    /// The transport closed.
    Closed {
        code: Option<i32>,
        reason: String,
    },
}

enum Link {
    Quic { endpoint: quinn::Endpoint, connection: quinn::Connection, send: quinn::SendStream, recv: quinn::RecvStream },
    Ws(Box<WsStream>),
}

/// A session made by hand, below [`Conn`]: payloads exactly as sent and
/// received, WebSocket control frames and fragments, the QUIC connection
/// itself. Every frame goes to the case's frame log.
struct Hand {
    link: Link,
    encoding: Encoding,
    label: String,
    log: FrameLog,
    wait: Duration,
    /// QUIC stream bytes not yet split into frames.
    buffer: BytesMut,
    finished: bool,
    next_request_id: u64,
    /// Every frame received, in order.
    received: Vec<HandFrame>,
    /// WebSocket pings sent (when, payload) and pongs received.
    pings: Vec<(Instant, Bytes)>,
    pongs: Vec<Bytes>,
    /// How the server closed, once it did.
    closing: Option<Closing>,
    closed_at: Option<Instant>,
}

impl Hand {
    /// A session on `wire`: QUIC with ALPN confab/1 and one stream, or a
    /// WebSocket offering the wire's subprotocol. Nothing sent yet.
    async fn open(cx: &Ctx, who: &str, wire: Wire) -> CaseResult<Hand> {
        match wire.transport {
            Transport::Quic => Hand::quic(cx, who, None).await,
            Transport::Ws => {
                let subprotocol = wire.encoding.ws_subprotocol();
                match ws_dial(cx, who, Some(subprotocol)).await? {
                    Ok((ws, chosen)) if chosen.as_deref() == Some(subprotocol) => {
                        Ok(Hand::from_ws(cx, who, ws, wire.encoding))
                    }
                    Ok((_, chosen)) => Err(Stop::Failed(format!("offered {subprotocol}, the server chose {chosen:?}"))),
                    Err(refused) => Err(Stop::Failed(format!("WebSocket upgrade refused: {}", refused.detail))),
                }
            }
        }
    }

    /// A QUIC session with keep-alives every `keep_alive`.
    async fn quic(cx: &Ctx, who: &str, keep_alive: Option<Duration>) -> CaseResult<Hand> {
        let dial = quic_dial(cx, who, &[confab_protocol::ALPN], keep_alive).await?;
        let connection = dial.result.map_err(|error| Stop::Failed(format!("{who}: could not connect: {error}")))?;
        let (send, recv) = connection.open_bi().await?;
        Ok(Hand::new(cx, who, Link::Quic { endpoint: dial.endpoint, connection, send, recv }, Encoding::Proto))
    }

    fn from_ws(cx: &Ctx, who: &str, ws: WsStream, encoding: Encoding) -> Hand {
        Hand::new(cx, who, Link::Ws(Box::new(ws)), encoding)
    }

    fn new(cx: &Ctx, who: &str, link: Link, encoding: Encoding) -> Hand {
        Hand {
            link,
            encoding,
            label: format!("{who}/hand"),
            log: cx.log().clone(),
            wait: cx.target().reply_timeout,
            buffer: BytesMut::new(),
            finished: false,
            next_request_id: 1,
            received: Vec::new(),
            pings: Vec::new(),
            pongs: Vec::new(),
            closing: None,
            closed_at: None,
        }
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn quic_connection(&self) -> Option<&quinn::Connection> {
        match &self.link {
            Link::Quic { connection, .. } => Some(connection),
            Link::Ws(_) => None,
        }
    }

    fn failed(&self, what: impl std::fmt::Display) -> Stop {
        Stop::Failed(format!("{}: {what}", self.label))
    }

    /// Sends one frame's payload: length-prefixed on QUIC, one binary or
    /// (JSON) text message on WebSocket.
    async fn send_payload(&mut self, payload: &[u8]) -> CaseResult {
        self.log.bytes(&self.label, Direction::Sent, "payload", payload);
        self.write_payload(payload).await
    }

    async fn write_payload(&mut self, payload: &[u8]) -> CaseResult {
        match &mut self.link {
            Link::Quic { send, .. } => {
                let bytes = [varint(payload.len() as u64), payload.to_vec()].concat();
                send.write_all(&bytes).await.map_err(|e| Stop::Failed(format!("QUIC write: {e}")))
            }
            Link::Ws(ws) => {
                let message = match self.encoding {
                    Encoding::Proto => Message::Binary(Bytes::copy_from_slice(payload)),
                    Encoding::Json => Message::Text(
                        String::from_utf8(payload.to_vec())
                            .map_err(|_| Stop::Failed("JSON must be UTF-8".into()))?
                            .into(),
                    ),
                };
                ws.send(message).await.map_err(|e| Stop::Failed(format!("WebSocket write: {e}")))
            }
        }
    }

    /// Sends `command` with a fresh request id; returns the id.
    async fn command(&mut self, command: Command) -> CaseResult<u64> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let frame = v1::ClientFrame { request_id, command: Some(command) };
        self.log.frame(&self.label, Direction::Sent, &frame);
        self.write_payload(&codec::encode(&frame, self.encoding)).await?;
        Ok(request_id)
    }

    /// Sends `command` and returns its reply (whatever its body).
    async fn request(&mut self, command: Command) -> CaseResult<v1::ServerFrame> {
        let request_id = self.command(command).await?;
        self.reply(request_id).await
    }

    /// Writes bytes onto the QUIC stream as they are.
    async fn write_stream(&mut self, bytes: &[u8]) -> CaseResult {
        self.log.bytes(&self.label, Direction::Sent, "stream bytes", bytes);
        match &mut self.link {
            Link::Quic { send, .. } => {
                send.write_all(bytes).await.map_err(|e| Stop::Failed(format!("QUIC write: {e}")))
            }
            Link::Ws(_) => Err(self.failed("stream bytes exist only on QUIC")),
        }
    }

    /// Sends one WebSocket message or frame as it is.
    async fn send_ws(&mut self, message: Message) -> CaseResult {
        match &message {
            Message::Frame(frame) => {
                let what = format!("WebSocket frame {:?} fin={}", frame.header().opcode, frame.header().is_final);
                self.log.bytes(&self.label, Direction::Sent, &what, frame.payload());
            }
            Message::Ping(payload) => {
                self.log.bytes(&self.label, Direction::Sent, "WebSocket ping", payload);
                self.pings.push((Instant::now(), payload.clone()));
            }
            other => self.log.event(&self.label, &format!("sent {other:?}")),
        }
        match &mut self.link {
            Link::Ws(ws) => ws.send(message).await.map_err(|e| Stop::Failed(format!("WebSocket write: {e}"))),
            Link::Quic { .. } => Err(self.failed("WebSocket messages exist only on WebSocket")),
        }
    }

    /// The next thing received within `wait`, or `None`.
    async fn recv_within(&mut self, wait: Duration) -> CaseResult<Option<Got>> {
        let got = match tokio::time::timeout(wait, self.recv_inner()).await {
            Err(_) => return Ok(None),
            Ok(got) => got?,
        };
        match &got {
            Got::Frame(frame) => match &frame.decoded {
                Some(decoded) => self.log.frame(&self.label, Direction::Received, decoded),
                None => self.log.bytes(&self.label, Direction::Received, "undecodable", &frame.payload),
            },
            Got::Pong(payload) => {
                self.log.bytes(&self.label, Direction::Received, "WebSocket pong", payload);
                self.pongs.push(payload.clone());
            }
            Got::Finished => self.log.event(&self.label, "the server finished its stream"),
            Got::Closed { code, reason } => {
                self.log.event(&self.label, &format!("transport closed: code {code:?}, reason {reason:?}"));
                self.closed_at.get_or_insert_with(Instant::now);
            }
        }
        if let Got::Frame(frame) = &got {
            self.received.push(HandFrame {
                payload: frame.payload.clone(),
                prefix: frame.prefix.clone(),
                text: frame.text,
                decoded: frame.decoded.clone(),
            });
        }
        Ok(Some(got))
    }

    async fn recv_inner(&mut self) -> CaseResult<Got> {
        let encoding = self.encoding;
        let decode = |payload: &Bytes| codec::decode::<v1::ServerFrame>(payload, encoding).ok();
        match &mut self.link {
            Link::Quic { connection, recv, .. } => loop {
                match read_prefix(&self.buffer) {
                    Err(error) => {
                        return Err(Stop::Failed(format!("the server sent a malformed length prefix: {error}")));
                    }
                    Ok(Some((prefix_len, len))) if (self.buffer.len() - prefix_len) as u64 >= len => {
                        let prefix = self.buffer.split_to(prefix_len).to_vec();
                        let payload = self.buffer.split_to(len as usize).freeze();
                        let decoded = decode(&payload);
                        return Ok(Got::Frame(HandFrame { payload, prefix, text: false, decoded }));
                    }
                    _ => {}
                }
                if self.finished {
                    let reason = match tokio::time::timeout(Duration::from_secs(2), connection.closed()).await {
                        Ok(reason) => Some(reason),
                        Err(_) => connection.close_reason(),
                    };
                    return Ok(quic_closed(reason));
                }
                match recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.bytes),
                    Ok(None) => {
                        self.finished = true;
                        return Ok(Got::Finished);
                    }
                    Err(quinn::ReadError::ConnectionLost(error)) => return Ok(quic_closed(Some(error))),
                    Err(error) => return Ok(Got::Closed { code: None, reason: format!("stream: {error}") }),
                }
            },
            Link::Ws(ws) => loop {
                let message = match ws.next().await {
                    None | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                        return Ok(Got::Closed {
                            code: None,
                            reason: "the connection ended with no close frame".into(),
                        });
                    }
                    Some(Err(error)) => return Ok(Got::Closed { code: None, reason: format!("WebSocket: {error}") }),
                    Some(Ok(message)) => message,
                };
                return Ok(match message {
                    Message::Binary(payload) => {
                        let decoded = decode(&payload);
                        Got::Frame(HandFrame { payload, prefix: Vec::new(), text: false, decoded })
                    }
                    Message::Text(text) => {
                        let payload = Bytes::from(text);
                        let decoded = decode(&payload);
                        Got::Frame(HandFrame { payload, prefix: Vec::new(), text: true, decoded })
                    }
                    Message::Pong(payload) => Got::Pong(payload),
                    Message::Close(frame) => Got::Closed {
                        code: frame.as_ref().map(|f| i32::from(u16::from(f.code))),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    },
                    Message::Ping(_) | Message::Frame(_) => continue,
                });
            },
        }
    }

    /// The first frame received from index `from` on that satisfies
    /// `wanted`, reading more as needed.
    async fn wait_for(
        &mut self,
        from: usize,
        what: &str,
        wanted: impl Fn(&v1::ServerFrame) -> bool,
    ) -> CaseResult<v1::ServerFrame> {
        let deadline = Instant::now() + self.wait;
        loop {
            let found = self
                .received
                .get(from..)
                .unwrap_or_default()
                .iter()
                .find_map(|f| f.decoded.as_ref().filter(|decoded| wanted(decoded)).cloned());
            if let Some(found) = found {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await? {
                None => return Err(self.failed(format!("no {what} within {} s", self.wait.as_secs()))),
                Some(Got::Closed { code, reason }) => {
                    let close = self.received.iter().rev().find_map(|f| match &f.decoded {
                        Some(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => Some(close.clone()),
                        _ => None,
                    });
                    self.closing = Some(Closing { close, code, reason: reason.clone(), before: Vec::new() });
                    return Err(self.failed(format!("closed (code {code:?}, {reason:?}) while waiting for {what}")));
                }
                Some(_) => {}
            }
        }
    }

    /// The reply to `request_id`.
    async fn reply(&mut self, request_id: u64) -> CaseResult<v1::ServerFrame> {
        let from = self.received.len();
        self.wait_for(from, &format!("reply to request {request_id}"), |f| f.request_id == request_id).await
    }

    /// Reads until the server closes the transport within `wait`, sending a
    /// WebSocket ping every `ping_every` meanwhile; `None` when it stays
    /// open.
    async fn wait_close(&mut self, wait: Duration, ping_every: Option<Duration>) -> CaseResult<Option<Closing>> {
        let deadline = Instant::now() + wait;
        let mut closing = Closing::default();
        let mut next_ping = ping_every.map(|every| Instant::now() + every);
        let mut count = 0u32;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if let (Some(at), Some(every)) = (next_ping, ping_every)
                && now >= at
            {
                count += 1;
                if self.send_ws(Message::Ping(Bytes::from(format!("ping {count}")))).await.is_err() {
                    next_ping = None;
                } else {
                    next_ping = Some(at + every);
                }
                continue;
            }
            let until = next_ping.map_or(deadline, |at| at.min(deadline));
            match self.recv_within(until.saturating_duration_since(now)).await? {
                None | Some(Got::Pong(_) | Got::Finished) => {}
                Some(Got::Frame(frame)) => match frame.decoded {
                    Some(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => closing.close = Some(close),
                    Some(frame) => closing.before.push(frame),
                    None => {}
                },
                Some(Got::Closed { code, reason }) => {
                    closing.code = code;
                    closing.reason = reason;
                    self.closing = Some(closing.clone());
                    return Ok(Some(closing));
                }
            }
        }
    }

    /// [`Hand::wait_close`] without pings, failing the case when the
    /// server does not close.
    async fn closed_within(&mut self, wait: Duration) -> CaseResult<Closing> {
        match self.wait_close(wait, None).await? {
            Some(closing) => Ok(closing),
            None => Err(self.failed(format!("still open {} s later; expected the server to close", wait.as_secs()))),
        }
    }

    async fn close(self) {
        self.log.event(&self.label, "closing");
        match self.link {
            Link::Quic { endpoint, connection, mut send, .. } => {
                let _ = send.finish();
                connection.close(0u32.into(), b"client closed");
                let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
            }
            Link::Ws(mut ws) => {
                let _ = tokio::time::timeout(Duration::from_millis(300), WsStream::close(&mut ws, None)).await;
            }
        }
    }
}

/// How a QUIC connection ended.
fn quic_closed(reason: Option<quinn::ConnectionError>) -> Got {
    match reason {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => Got::Closed {
            code: i32::try_from(close.error_code.into_inner()).ok(),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        Some(other) => Got::Closed { code: None, reason: other.to_string() },
        None => Got::Closed { code: None, reason: "no CONNECTION_CLOSE after the stream finished".into() },
    }
}
