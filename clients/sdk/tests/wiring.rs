//! Wiring tests: the client against a scripted server on real loopback
//! sockets (WebSocket in both encodings, QUIC with a pinned self-signed
//! certificate), checking what goes over the wire and what the application
//! sees. The protocol logic itself is tested sans-IO in `src/core/tests.rs`.

use std::{sync::Arc, time::Duration};

use bytes::BytesMut;
use confab_sdk::{
    Client, ClientOptions, Encoding, Error, Event, Fingerprint, ReconnectPolicy, Trust,
    protocol::codec,
    raw::{RawConnection, RawReceived},
    v1::{self, client_frame::Command, server_frame::Body},
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::server::{Request, Response},
        http::HeaderValue,
    },
};

fn welcome(session_id: u64) -> Body {
    Body::Welcome(v1::Welcome {
        version: 1,
        feature_level: 1,
        ping_interval_ms: 10_000,
        idle_timeout_ms: 30_000,
        session_id,
        ..Default::default()
    })
}

fn user() -> Option<v1::User> {
    Some(v1::User { user_id: 5, name: "alice".into(), guest: false, ..Default::default() })
}

fn message_event(seq: u64) -> Body {
    Body::Event(v1::RoomEvent {
        room_id: 1,
        epoch: 1,
        seq,
        server_time_ms: 1,
        sender: user(),
        kind: Some(v1::room_event::Kind::Message(v1::Message {
            text: format!("m{seq}"),
            client_txn_id: String::new(),
            ..Default::default()
        })),
    })
}

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_attempts: Some(5),
    }
}

/// The server end of one WebSocket session.
struct WsPeer {
    ws: WebSocketStream<TcpStream>,
    encoding: Encoding,
}

impl WsPeer {
    async fn accept(listener: &TcpListener) -> WsPeer {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut chosen = None;
        #[allow(clippy::result_large_err)] // tungstenite's callback signature
        let callback = |request: &Request, mut response: Response| {
            assert_eq!(request.uri().path(), "/ws");
            let offered = request.headers().get("sec-websocket-protocol").unwrap().to_str().unwrap().to_owned();
            chosen = Encoding::from_ws_subprotocol(&offered);
            response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(&offered).unwrap());
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await.unwrap();
        WsPeer { ws, encoding: chosen.expect("a confab subprotocol was offered") }
    }

    async fn recv(&mut self) -> Option<(u64, Command)> {
        loop {
            let payload = match self.ws.next().await? {
                Ok(Message::Binary(bytes)) => {
                    assert_eq!(self.encoding, Encoding::Proto);
                    bytes
                }
                Ok(Message::Text(text)) => {
                    assert_eq!(self.encoding, Encoding::Json);
                    text.into()
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            };
            let frame: v1::ClientFrame = codec::decode(&payload, self.encoding).unwrap();
            return Some((frame.request_id, frame.command.unwrap()));
        }
    }

    async fn expect(&mut self) -> (u64, Command) {
        self.recv().await.expect("a frame from the client")
    }

    async fn send(&mut self, request_id: u64, body: Body) {
        let payload = codec::encode(&v1::ServerFrame { request_id, body: Some(body) }, self.encoding);
        let message = match self.encoding {
            Encoding::Proto => Message::Binary(payload),
            Encoding::Json => Message::Text(String::from_utf8(payload.to_vec()).unwrap().into()),
        };
        self.ws.send(message).await.unwrap();
    }
}

/// A first connection that authenticates and starts events, a server
/// restart while a send is unanswered, and a second connection where the
/// access token has expired: the client refreshes, resumes without
/// duplicates and resends the message with its transaction id.
async fn reconnect_scenario(encoding: Encoding) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        // First connection.
        let mut peer = WsPeer::accept(&listener).await;
        let (id, command) = peer.expect().await;
        assert!(
            matches!(command, Command::Hello(ref h) if h.versions == [1] && h.capabilities == ["resume", "guests"])
        );
        peer.send(id, welcome(1)).await;
        let (id, command) = peer.expect().await;
        assert_eq!(command, Command::Authenticate(v1::Authenticate { access_token: "a1".into() }));
        peer.send(id, Body::Auth(v1::AuthResult { user: user(), ..Default::default() })).await;
        let (id, command) = peer.expect().await;
        assert_eq!(command, Command::Resume(v1::Resume { positions: vec![] }));
        peer.send(0, message_event(1)).await;
        let live = v1::RoomResumeStatus {
            room_id: 1,
            epoch: 1,
            head_seq: 1,
            outcome: v1::ResumeOutcome::Live as i32,
            replayed: 0,
        };
        peer.send(id, Body::Resumed(v1::ResumeResult { rooms: vec![live] })).await;
        let (_, command) = peer.expect().await;
        let Command::SendMessage(sent) = command else { panic!("expected a send, got {command:?}") };
        let txn = sent.client_txn_id.clone();
        assert_eq!(txn.len(), 32);
        // The server restarts before answering.
        let close = v1::Close { code: v1::CloseCode::ServerShutdown as i32, reason: "restarting".into() };
        peer.send(0, Body::Close(close)).await;
        drop(peer);

        // Second connection.
        let mut peer = WsPeer::accept(&listener).await;
        let (id, _) = peer.expect().await;
        peer.send(id, welcome(2)).await;
        let (id, _) = peer.expect().await;
        peer.send(id, Body::Error(v1::Error::new(v1::ErrorCode::TokenExpired, "expired"))).await;
        let (id, command) = peer.expect().await;
        assert_eq!(command, Command::Refresh(v1::Refresh { refresh_token: "r1".into() }));
        let renewed = v1::AuthResult {
            user: user(),
            access_token: "a2".into(),
            refresh_token: "r2".into(),
            ..Default::default()
        };
        peer.send(id, Body::Auth(renewed)).await;
        let (id, command) = peer.expect().await;
        assert_eq!(command, Command::Authenticate(v1::Authenticate { access_token: "a2".into() }));
        peer.send(id, Body::Auth(v1::AuthResult { user: user(), ..Default::default() })).await;
        let (id, command) = peer.expect().await;
        assert_eq!(
            command,
            Command::Resume(v1::Resume { positions: vec![v1::RoomPosition { room_id: 1, epoch: 1, seq: 1 }] })
        );
        peer.send(0, message_event(1)).await; // overlap: dropped by the client
        peer.send(0, message_event(2)).await;
        let replayed = v1::RoomResumeStatus {
            room_id: 1,
            epoch: 1,
            head_seq: 2,
            outcome: v1::ResumeOutcome::Replayed as i32,
            replayed: 1,
        };
        peer.send(id, Body::Resumed(v1::ResumeResult { rooms: vec![replayed] })).await;
        let (id, command) = peer.expect().await;
        let Command::SendMessage(resent) = command else { panic!("expected the resend, got {command:?}") };
        assert_eq!(resent.client_txn_id, txn);
        assert_eq!(resent.text, "hello");
        peer.send(id, Body::Sent(v1::SendResult { room_id: 1, epoch: 1, seq: 3, server_time_ms: 5, duplicate: true }))
            .await;
        // The client closes politely.
        assert!(peer.recv().await.is_none());
    });

    let options = ClientOptions { encoding, reconnect: fast_reconnect(), ..ClientOptions::default() };
    let client = Arc::new(Client::connect(&url, options).await.unwrap());
    assert_eq!(client.encoding(), encoding);
    let auth = client.authenticate("a1", Some("r1")).await.unwrap();
    assert_eq!(auth.user.unwrap().name, "alice");
    // What the reply brought is visible as soon as the call returns.
    assert_eq!(client.user().unwrap().name, "alice");
    assert_eq!(client.tokens().unwrap().access_token, "a1");
    let sender = client.clone();
    let send = tokio::spawn(async move { sender.send("general", "hello").await });

    let mut events = Vec::new();
    while events.len() < 7 {
        events.push(client.next_event().await.expect("an event"));
    }
    let result = send.await.unwrap().unwrap();
    assert_eq!((result.seq, result.duplicate), (3, true));
    let summary: Vec<String> = events
        .iter()
        .map(|event| match event {
            Event::Connected { session_id } => format!("connected {session_id}"),
            Event::Room(event) => format!("event {}", event.seq),
            Event::ServerClosed { code, .. } => format!("closed {code}"),
            Event::Reconnecting { attempt, .. } => format!("reconnecting {attempt}"),
            Event::TokensRefreshed(tokens) => format!("tokens {}", tokens.access_token),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        ["connected 1", "event 1", "closed 4000", "reconnecting 1", "tokens a2", "event 2", "connected 2"]
    );
    let tokens = client.tokens().unwrap();
    assert_eq!((tokens.access_token.as_str(), tokens.refresh_token.as_deref()), ("a2", Some("r2")));
    Arc::into_inner(client).unwrap().close().await;
    server.await.unwrap();
}

#[tokio::test]
async fn websocket_proto_reconnects_refreshes_resumes_and_resends() {
    reconnect_scenario(Encoding::Proto).await;
}

#[tokio::test]
async fn websocket_json_reconnects_refreshes_resumes_and_resends() {
    reconnect_scenario(Encoding::Json).await;
}

#[tokio::test]
async fn a_refused_websocket_upgrade_says_why() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 2048];
        let _ = tcp.read(&mut request).await.unwrap();
        let body = "offer the WebSocket subprotocol confab.v1.proto\n";
        let response = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        tcp.write_all(response.as_bytes()).await.unwrap();
    });
    let error = Client::connect(&url, ClientOptions::default()).await.err().unwrap();
    assert!(matches!(error, Error::Transport(_)), "{error}");
    assert!(error.to_string().contains("400") && error.to_string().contains("offer the WebSocket"), "{error}");
    server.await.unwrap();
}

#[tokio::test]
async fn raw_websocket_sends_exactly_what_it_is_told_and_reports_everything() {
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/custom/path", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err)] // tungstenite's callback signature
        let callback = |request: &Request, mut response: Response| {
            assert_eq!(request.uri().path(), "/custom/path");
            response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("confab.v1.proto"));
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::Binary(vec![0xff, 0x00, 0x13].into()));
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::Text("not protobuf".into()));
        let Message::Binary(hello) = ws.next().await.unwrap().unwrap() else { panic!("expected a frame") };
        let hello: v1::ClientFrame = codec::decode(&hello, Encoding::Proto).unwrap();
        assert_eq!(hello.request_id, 0, "raw frames go out exactly as given");
        ws.send(Message::Binary(vec![0xff, 0xff].into())).await.unwrap();
        let unknown_push = v1::ServerFrame { request_id: 0, body: None };
        ws.send(Message::Binary(codec::encode(&unknown_push, Encoding::Proto))).await.unwrap();
        let close = CloseFrame { code: CloseCode::from(4502), reason: "too large".into() };
        ws.send(Message::Close(Some(close))).await.unwrap();
    });

    let mut raw = RawConnection::connect(&url, &ClientOptions::default()).await.unwrap();
    assert_eq!(raw.encoding(), Encoding::Proto);
    raw.send_payload(vec![0xff, 0x00, 0x13]).await.unwrap();
    raw.send_ws_text("not protobuf").await.unwrap();
    raw.send(&v1::ClientFrame { request_id: 0, command: Some(Command::Hello(v1::Hello::default())) }).await.unwrap();
    assert!(
        matches!(raw.recv().await.unwrap(), RawReceived::Undecodable { ref payload, .. } if payload[..] == [0xff, 0xff])
    );
    assert_eq!(raw.recv().await.unwrap(), RawReceived::Frame(v1::ServerFrame { request_id: 0, body: None }));
    assert_eq!(raw.recv().await.unwrap(), RawReceived::Closed { code: Some(4502), reason: "too large".into() });
    server.await.unwrap();
}

/// A QUIC server with a fresh self-signed certificate.
fn quic_server() -> (quinn::Endpoint, Fingerprint) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = generated.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    tls.alpn_protocols = vec![b"confab/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    (endpoint, Fingerprint::of_certificate(&der))
}

/// The server end of one QUIC session.
struct QuicPeer {
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    buffer: BytesMut,
}

impl QuicPeer {
    async fn accept(endpoint: &quinn::Endpoint) -> QuicPeer {
        let connection = endpoint.accept().await.unwrap().await.unwrap();
        let (send, recv) = connection.accept_bi().await.unwrap();
        QuicPeer { connection, send, recv, buffer: BytesMut::new() }
    }

    async fn expect(&mut self) -> (u64, Command) {
        loop {
            if let Some((prefix, len)) = codec::split_frame(&self.buffer, 1 << 20).unwrap() {
                let frame = self.buffer.split_to(prefix + len);
                let frame: v1::ClientFrame = codec::decode(&frame[prefix..], Encoding::Proto).unwrap();
                return (frame.request_id, frame.command.unwrap());
            }
            let chunk = self.recv.read_chunk(64 * 1024, true).await.unwrap().expect("more from the client");
            self.buffer.extend_from_slice(&chunk.bytes);
        }
    }

    async fn send(&mut self, request_id: u64, body: Body) {
        let payload = codec::encode(&v1::ServerFrame { request_id, body: Some(body) }, Encoding::Proto);
        let mut framed = BytesMut::new();
        codec::put_length_prefix(payload.len(), &mut framed);
        framed.extend_from_slice(&payload);
        self.send.write_all(&framed).await.unwrap();
    }
}

#[tokio::test]
async fn quic_with_a_pinned_certificate_stops_on_a_stop_range_close() {
    let (endpoint, fingerprint) = quic_server();
    let url = format!("quic://localhost:{}", endpoint.local_addr().unwrap().port());
    let server = tokio::spawn(async move {
        let mut peer = QuicPeer::accept(&endpoint).await;
        let (id, command) = peer.expect().await;
        assert!(matches!(command, Command::Hello(_)));
        peer.send(id, welcome(9)).await;
        let (id, command) = peer.expect().await;
        assert_eq!(command, Command::Ping(v1::Ping {}));
        peer.send(id, Body::Pong(v1::Pong {})).await;
        let close = v1::Close { code: v1::CloseCode::ProtocolViolation as i32, reason: "enough".into() };
        peer.send(0, Body::Close(close)).await;
        let _ = peer.send.finish();
        let _ = peer.send.stopped().await;
        peer.connection.close(4500u32.into(), b"enough");
        endpoint.wait_idle().await;
    });

    let options =
        ClientOptions { trust: Trust::Fingerprint(fingerprint), reconnect: fast_reconnect(), ..Default::default() };
    let client = Client::connect(&url, options).await.unwrap();
    assert_eq!(client.server_fingerprint(), Some(fingerprint));
    assert_eq!(client.welcome().unwrap().session_id, 9);
    client.ping().await.unwrap();
    assert!(matches!(client.next_event().await, Some(Event::Connected { session_id: 9 })));
    assert!(matches!(client.next_event().await, Some(Event::ServerClosed { code: 4500, .. })));
    match client.next_event().await {
        Some(Event::Disconnected { reason: Error::Closed { code: 4500, reason } }) => assert_eq!(reason, "enough"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(client.next_event().await.is_none());
    assert!(matches!(client.ping().await, Err(Error::Closed { code: 4500, .. })));
    server.await.unwrap();
}

#[tokio::test]
async fn quic_refuses_a_certificate_that_is_not_the_pinned_one_and_tofu_reports_it() {
    let (endpoint, fingerprint) = quic_server();
    let url = format!("quic://127.0.0.1:{}", endpoint.local_addr().unwrap().port());
    let server = tokio::spawn(async move {
        // The refused handshake never yields a connection; the raw one does.
        let mut peer = loop {
            let incoming = endpoint.accept().await.unwrap();
            if let Ok(connection) = incoming.await
                && let Ok((send, recv)) = connection.accept_bi().await
            {
                break QuicPeer { connection, send, recv, buffer: BytesMut::new() };
            }
        };
        let (id, command) = peer.expect().await;
        assert!(matches!(command, Command::Hello(_)));
        peer.send(id, welcome(3)).await;
        // Garbage with a well-formed length prefix, as a raw client may send.
        peer.send(0, Body::Ping(v1::Ping {})).await;
        let _ = peer.send.finish();
        let _ = peer.send.stopped().await;
    });

    let pinned = Fingerprint::from_bytes([7; 32]);
    let options = ClientOptions { trust: Trust::Fingerprint(pinned), ..Default::default() };
    match Client::connect(&url, options).await {
        Err(Error::FingerprintMismatch { expected, presented }) => {
            assert_eq!((expected, presented), (pinned, fingerprint))
        }
        Err(other) => panic!("expected a mismatch, got {other}"),
        Ok(_) => panic!("connected despite the wrong pin"),
    }

    let options = ClientOptions { trust: Trust::TrustOnFirstUse, ..Default::default() };
    let mut raw = RawConnection::connect(&url, &options).await.unwrap();
    assert_eq!(raw.server_fingerprint(), Some(fingerprint));
    assert_eq!(raw.hello("raw-test").await.unwrap().session_id, 3);
    assert!(matches!(
        raw.recv().await.unwrap(),
        RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(Body::Ping(_)) })
    ));
    assert!(matches!(raw.recv().await.unwrap(), RawReceived::Closed { .. }));
    raw.close().await;
    server.await.unwrap();
}
