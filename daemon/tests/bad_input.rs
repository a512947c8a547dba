//! Every bad input gets a specific error or close, and the daemon goes on
//! serving everyone else: garbage bytes, oversized frames, unknown commands,
//! the wrong state, invalid UTF-8, unsupported versions, silence.

mod support;

use confab_sdk::{
    Client,
    raw::{RawConnection, RawReceived},
    v1::{self, CloseCode, ErrorCode, client_frame::Command, server_frame::Body},
};
use support::{TestDaemon, Wire, within};

/// A registered user in a room, to show the daemon still serves others.
async fn bystander(td: &TestDaemon) -> Client {
    let client = td.user(Wire::WsProto, "bystander").await;
    client.create_room("lobby", v1::RoomKind::Public).await.unwrap();
    client
}

async fn still_serving(bystander: &Client) {
    within("the bystander's send", bystander.send("lobby", "still here")).await.unwrap();
}

/// The next frame must be an error with `code` (for request `request_id`).
async fn expect_error(raw: &mut RawConnection, request_id: u64, code: ErrorCode) -> v1::Error {
    loop {
        match within("an error", raw.recv()).await.unwrap() {
            RawReceived::Frame(v1::ServerFrame { request_id: id, body: Some(Body::Error(error)) }) => {
                assert_eq!((id, v1::ErrorCode::try_from(error.code).unwrap()), (request_id, code), "{error:?}");
                return error;
            }
            RawReceived::Frame(v1::ServerFrame { body: Some(Body::Ping(_)), .. }) => continue,
            other => panic!("expected {code:?}, got {other:?}"),
        }
    }
}

/// The session must end with `code`: a Close push, then the transport close.
async fn expect_close(raw: &mut RawConnection, code: CloseCode) -> String {
    let mut reason = None;
    loop {
        match within("a close", raw.recv()).await.unwrap() {
            RawReceived::Frame(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => {
                assert_eq!(close.code, code as i32, "{close:?}");
                reason = Some(close.reason);
            }
            RawReceived::Frame(v1::ServerFrame { body: Some(Body::Ping(_)), .. }) => continue,
            RawReceived::Closed { code: transport_code, .. } => {
                assert_eq!(transport_code, Some(code as i32));
                return reason.expect("a Close frame before the transport closed");
            }
            other => panic!("expected close {code:?}, got {other:?}"),
        }
    }
}

async fn login(raw: &mut RawConnection) {
    let register = Command::Register(v1::Register {
        username: format!("user{}", rand_suffix()),
        password: "correct horse battery".into(),
        ..Default::default()
    });
    assert!(matches!(raw.request(register).await.unwrap(), Body::Auth(_)));
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn garbage_frames_get_bad_frame_and_the_session_goes_on() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    for wire in Wire::ALL {
        let mut raw = td.raw(wire).await;
        let garbage: &[u8] = if wire == Wire::WsJson { b"{not json" } else { b"\xff\xff\xff\xff garbage" };
        raw.send_payload(garbage.to_vec()).await.unwrap();
        let error = expect_error(&mut raw, 0, ErrorCode::BadFrame).await;
        assert!(!error.message.is_empty());
        // The session is intact: the next command works.
        assert!(matches!(raw.request(Command::Ping(v1::Ping {})).await.unwrap(), Body::Pong(_)));
        still_serving(&bystander).await;
    }
    // The wrong WebSocket message type for the negotiated encoding.
    let mut raw = td.raw(Wire::WsJson).await;
    raw.send_raw(b"\x08\x01".to_vec()).await.unwrap();
    let error = expect_error(&mut raw, 0, ErrorCode::BadFrame).await;
    assert!(error.message.contains("binary"), "{}", error.message);
    let mut raw = td.raw(Wire::WsProto).await;
    raw.send_ws_text(r#"{"requestId":"1","ping":{}}"#).await.unwrap();
    let error = expect_error(&mut raw, 0, ErrorCode::BadFrame).await;
    assert!(error.message.contains("text"), "{}", error.message);
}

#[tokio::test]
async fn invalid_utf8_is_a_bad_frame() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    for wire in [Wire::Quic, Wire::WsProto] {
        let mut raw = td.raw(wire).await;
        login(&mut raw).await;
        // ClientFrame { request_id: 9, send_message: { text: "\xff" } }
        raw.send_payload(vec![0x08, 0x09, 0xc2, 0x02, 0x03, 0x12, 0x01, 0xff]).await.unwrap();
        let error = expect_error(&mut raw, 0, ErrorCode::BadFrame).await;
        assert!(error.message.to_lowercase().contains("utf"), "{}", error.message);
        still_serving(&bystander).await;
    }
}

#[tokio::test]
async fn unknown_commands_are_rejected_with_their_request_id() {
    let td = TestDaemon::start().await;
    for wire in Wire::ALL {
        let mut raw = td.raw(wire).await;
        if wire == Wire::WsJson {
            raw.send_payload(r#"{"requestId":"5","frobnicate":{"x":1}}"#).await.unwrap();
        } else {
            // request_id 5, then field 99 (unknown) holding an empty message.
            raw.send_payload(vec![0x08, 0x05, 0x9a, 0x06, 0x00]).await.unwrap();
        }
        expect_error(&mut raw, 5, ErrorCode::UnknownCommand).await;
        // Unknown fields next to a known command are ignored.
        if wire == Wire::WsJson {
            raw.send_payload(r#"{"requestId":"6","ping":{"future":true},"alsoNew":[1]}"#).await.unwrap();
        } else {
            raw.send_payload(vec![0x08, 0x06, 0x5a, 0x00, 0xa0, 0x06, 0x01]).await.unwrap();
        }
        let frame = within("pong", raw.recv_frame()).await.unwrap();
        assert_eq!(frame.request_id, 6);
        assert!(matches!(frame.body, Some(Body::Pong(_))), "{frame:?}");
    }
}

#[tokio::test]
async fn commands_in_the_wrong_state_are_refused() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    let options = td.options(Wire::WsProto);
    let mut raw = RawConnection::connect(&td.url(Wire::WsProto), &options).await.unwrap();
    let id = raw.send_command(Command::Ping(v1::Ping {})).await.unwrap();
    let error = expect_error(&mut raw, id, ErrorCode::WrongState).await;
    assert!(error.message.contains("Hello"), "{}", error.message);
    raw.hello("tests").await.unwrap();
    let id = raw.send_command(Command::Hello(v1::Hello { versions: vec![1], ..Default::default() })).await.unwrap();
    expect_error(&mut raw, id, ErrorCode::WrongState).await;
    let send = Command::SendMessage(v1::SendMessage {
        room: Some(v1::RoomRef::name("lobby")),
        text: "hi".into(),
        client_txn_id: "t".into(),
        ..Default::default()
    });
    let id = raw.send_command(send).await.unwrap();
    expect_error(&mut raw, id, ErrorCode::WrongState).await;
    login(&mut raw).await;
    let id = raw.send_command(Command::Login(v1::Login::default())).await.unwrap();
    expect_error(&mut raw, id, ErrorCode::WrongState).await;
    // Request id 0 is reserved for pushes.
    raw.send(&v1::ClientFrame { request_id: 0, command: Some(Command::Ping(v1::Ping {})) }).await.unwrap();
    expect_error(&mut raw, 0, ErrorCode::InvalidArgument).await;
    still_serving(&bystander).await;
}

#[tokio::test]
async fn an_unsupported_version_is_closed_with_a_stop_code() {
    let td = TestDaemon::start().await;
    let options = td.options(Wire::WsJson);
    let mut raw = RawConnection::connect(&td.url(Wire::WsJson), &options).await.unwrap();
    raw.send_command(Command::Hello(v1::Hello { versions: vec![2, 3], ..Default::default() })).await.unwrap();
    let reason = expect_close(&mut raw, CloseCode::UnsupportedVersion).await;
    assert!(reason.contains("version 1"), "{reason}");
}

#[tokio::test]
async fn oversized_frames_close_the_session_and_nothing_else() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    for wire in Wire::ALL {
        // Before authentication the limit is 16 KiB.
        let mut raw = td.raw(wire).await;
        let big = v1::ClientFrame {
            request_id: 1,
            command: Some(Command::Login(v1::Login { username: "x".repeat(20_000), ..Default::default() })),
        };
        raw.send_payload(confab_sdk::protocol::codec::encode(&big, raw.encoding())).await.unwrap();
        let reason = expect_close(&mut raw, CloseCode::FrameTooLarge).await;
        assert!(reason.contains("before authentication"), "{reason}");

        // After it, 256 KiB: a 100 KiB message is a MESSAGE_TOO_LONG error...
        let mut raw = td.raw(wire).await;
        login(&mut raw).await;
        let send = |text: String| {
            Command::SendMessage(v1::SendMessage {
                room: Some(v1::RoomRef::name("lobby")),
                text,
                client_txn_id: "t".into(),
                ..Default::default()
            })
        };
        let id = raw.send_command(send("y".repeat(100_000))).await.unwrap();
        expect_error(&mut raw, id, ErrorCode::MessageTooLong).await;
        // ...and a 300 KiB frame ends the session.
        raw.send_command(send("z".repeat(300_000))).await.unwrap();
        expect_close(&mut raw, CloseCode::FrameTooLarge).await;
        still_serving(&bystander).await;
    }
}

#[tokio::test]
async fn a_quic_stream_that_loses_its_framing_is_closed() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    let mut raw = td.raw(Wire::Quic).await;
    // An overlong varint: the stream cannot be split into frames any more.
    raw.send_raw(vec![0x80, 0x00]).await.unwrap();
    expect_close(&mut raw, CloseCode::ProtocolViolation).await;
    // A prefix announcing 1 GiB is refused before any payload arrives.
    let mut raw = td.raw(Wire::Quic).await;
    raw.send_raw(vec![0x80, 0x80, 0x80, 0x80, 0x04]).await.unwrap();
    expect_close(&mut raw, CloseCode::FrameTooLarge).await;
    still_serving(&bystander).await;
}

#[tokio::test]
async fn websocket_without_a_confab_subprotocol_is_refused() {
    let td = TestDaemon::start().await;
    let url = format!("{}/ws", td.url(Wire::WsProto));
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("confab.v1.proto"), "{body}");
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_clients_are_closed_with_reconnect_codes() {
    let td = TestDaemon::start_with(|c| {
        c.limits.handshake_timeout_ms = 300;
        c.limits.ping_interval_ms = 100;
        c.limits.idle_timeout_ms = 400;
    })
    .await;
    let options = td.options(Wire::WsProto);
    let mut quiet = RawConnection::connect(&td.url(Wire::WsProto), &options).await.unwrap();
    expect_close(&mut quiet, CloseCode::HandshakeTimeout).await;

    let mut idle = td.raw(Wire::Quic).await;
    let mut pings = 0;
    loop {
        match within("pings, then the close", idle.recv()).await.unwrap() {
            RawReceived::Frame(v1::ServerFrame { body: Some(Body::Ping(_)), .. }) => pings += 1,
            RawReceived::Frame(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => {
                assert_eq!(close.code, CloseCode::IdleTimeout as i32);
                assert!(CloseCode::IdleTimeout.is_reconnect());
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(pings >= 2, "the server pings while it waits ({pings})");

    // A client that answers each of the server's pings with its own is kept
    // well past the idle timeout (8 pings of 100 ms, against 400 ms).
    let mut lively = td.raw(Wire::WsJson).await;
    let mut answered = 0;
    while answered < 8 {
        let frame = within("a ping or pong", lively.recv_frame()).await.unwrap();
        match frame.body {
            Some(Body::Ping(_)) => {
                lively.send_command(Command::Ping(v1::Ping {})).await.unwrap();
                answered += 1;
            }
            Some(Body::Pong(_)) => {}
            other => panic!("the lively client got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sessions_beyond_the_listener_limit_are_told_to_come_back() {
    let td = TestDaemon::start_with(|c| c.limits.max_sessions_per_listener = 2).await;
    let _first = td.raw(Wire::WsProto).await;
    let _second = td.raw(Wire::WsJson).await;
    let options = td.options(Wire::WsProto);
    let mut third = RawConnection::connect(&td.url(Wire::WsProto), &options).await.unwrap();
    let reason = expect_close(&mut third, CloseCode::ServerBusy).await;
    assert!(reason.contains("limit"), "{reason}");
    // QUIC has its own listener and its own limit.
    let _quic = td.raw(Wire::Quic).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_websocket_text_message_closes_that_session() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{
        Message,
        client::IntoClientRequest as _,
        protocol::frame::{
            Frame,
            coding::{Data, OpCode},
        },
    };
    let td = TestDaemon::start().await;
    let mut request = format!("{}/ws", td.url(Wire::WsJson)).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "confab.v1.json".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let decode = |message: Message| -> v1::ServerFrame {
        let Message::Text(text) = message else { panic!("{message:?}") };
        confab_sdk::protocol::codec::decode(text.as_bytes(), confab_sdk::Encoding::Json).unwrap()
    };
    ws.send(Message::Frame(Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true)))
        .await
        .unwrap();
    // WebSocket (RFC 6455) fails the connection on invalid UTF-8 in a text
    // message: the session closes with a reason, and only this session.
    let frame = decode(within("the close", ws.next()).await.unwrap().unwrap());
    match frame.body {
        Some(Body::Close(close)) => {
            assert_eq!(close.code, CloseCode::ProtocolViolation as i32);
            assert!(close.reason.contains("UTF-8"), "{}", close.reason);
        }
        other => panic!("{other:?}"),
    }
    let bystander = bystander(&td).await;
    still_serving(&bystander).await;
}

#[tokio::test]
async fn malformed_arguments_get_invalid_argument() {
    let td = TestDaemon::start().await;
    let bystander = bystander(&td).await;
    let mut raw = td.raw(Wire::WsProto).await;
    let refused = |result: Result<Body, confab_sdk::Error>| match result {
        Err(confab_sdk::Error::Server(error)) => v1::ErrorCode::try_from(error.code).unwrap(),
        other => panic!("expected an error, got {other:?}"),
    };
    let long_device = Command::Register(v1::Register {
        username: "deviceful".into(),
        password: "correct horse battery".into(),
        device_name: "d".repeat(65),
    });
    assert_eq!(refused(raw.request(long_device).await), ErrorCode::InvalidArgument);
    let long_password =
        Command::Login(v1::Login { username: "someone".into(), password: "p".repeat(1025), ..Default::default() });
    assert_eq!(refused(raw.request(long_password).await), ErrorCode::InvalidArgument);
    let empty_refresh = Command::Refresh(v1::Refresh { refresh_token: String::new() });
    assert_eq!(refused(raw.request(empty_refresh).await), ErrorCode::TokenInvalid);
    login(&mut raw).await;

    let cases = [
        Command::CreateRoom(v1::CreateRoom {
            name: "dm".into(),
            kind: v1::RoomKind::Direct as i32,
            ..Default::default()
        }),
        Command::CreateRoom(v1::CreateRoom { name: "odd".into(), kind: 99, ..Default::default() }),
        Command::CreateRoom(v1::CreateRoom {
            name: "no spaces".into(),
            kind: v1::RoomKind::Public as i32,
            ..Default::default()
        }),
        Command::ListRooms(v1::ListRooms { scope: 7, ..Default::default() }),
        Command::GetHistory(v1::GetHistory {
            room: Some(v1::RoomRef::name("lobby")),
            direction: 5,
            ..Default::default()
        }),
        Command::JoinRoom(v1::JoinRoom { room: None }),
        Command::ListMembers(v1::ListMembers { room: Some(v1::RoomRef::default()) }),
    ];
    for command in cases {
        let shown = format!("{command:?}");
        assert_eq!(refused(raw.request(command).await), ErrorCode::InvalidArgument, "{shown}");
    }
    still_serving(&bystander).await;
}
