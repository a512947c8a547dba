//! The scripted server's transports, byte for byte: a QUIC endpoint (ALPN
//! `confab/1`, a self-signed certificate made at start) and a WebSocket
//! listener (subprotocols `confab.v1.proto` and `confab.v1.json`), both on
//! 127.0.0.1, and what one accepted connection reads and writes. Nothing
//! here knows the protocol beyond framing: [`super::server`] decides what
//! to write, and may write anything (crafted payloads, a frame cut in
//! pieces, a close code of its choosing, an abrupt drop).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use confab_protocol::{Encoding, codec};
use confab_sdk::Fingerprint;
use futures_util::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::server::{ErrorResponse, Request, Response},
        http::{HeaderValue, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
        protocol::{
            CloseFrame,
            frame::{
                Frame,
                coding::{CloseCode, Data, OpCode},
            },
        },
    },
};

use crate::wire::Transport;

/// Largest frame a connection reads. The limits a client must obey are
/// those of `Welcome`, which the server checks; this only bounds memory.
const MAX_READ_BYTES: usize = 4 << 20;

/// How long a transport handshake (QUIC and TLS, or the WebSocket upgrade,
/// then the client's stream) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a polite close waits for the client to take the last bytes.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The self-signed certificate the QUIC listener presents.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    pub fingerprint: Fingerprint,
}

impl Identity {
    pub fn generate() -> anyhow::Result<Identity> {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .context("generating a self-signed certificate")?;
        let cert = generated.cert.der().clone();
        let fingerprint = Fingerprint::of_certificate(&cert);
        Ok(Identity { cert, key: generated.signing_key.serialize_der(), fingerprint })
    }

    fn quic_config(&self) -> anyhow::Result<quinn::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3 with the ring provider")?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .context("the certificate does not match its key")?;
        tls.alpn_protocols = vec![confab_protocol::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC TLS configuration")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        // More streams than v1 allows, so that a client opening a second
        // one is seen (QUIC-3) rather than silently held back.
        transport.max_concurrent_bidi_streams(4u8.into()).max_concurrent_uni_streams(2u8.into());
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

/// A listener on 127.0.0.1 for one transport.
pub enum Listener {
    Quic(quinn::Endpoint),
    Ws(TcpListener),
}

/// A connection attempt, before its transport handshake.
#[allow(clippy::large_enum_variant)] // one per connection attempt, moved once
pub enum Incoming {
    Quic(quinn::Incoming),
    Ws(TcpStream),
}

/// A connection past its transport handshake.
pub struct Accepted {
    pub reader: Reader,
    pub writer: Writer,
    pub encoding: Encoding,
    /// The WebSocket subprotocols the client offered, in its order.
    pub offered: Vec<String>,
    /// The QUIC connection, to watch for further streams (QUIC-3).
    pub quic: Option<quinn::Connection>,
}

impl Listener {
    pub async fn bind(transport: Transport, identity: &Identity) -> anyhow::Result<Listener> {
        Ok(match transport {
            Transport::Quic => {
                let endpoint = quinn::Endpoint::server(identity.quic_config()?, ([127, 0, 0, 1], 0).into())
                    .context("binding a QUIC endpoint on 127.0.0.1")?;
                Listener::Quic(endpoint)
            }
            Transport::Ws => {
                Listener::Ws(TcpListener::bind("127.0.0.1:0").await.context("binding a TCP listener on 127.0.0.1")?)
            }
        })
    }

    /// The URL a client connects to.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(match self {
            Listener::Quic(endpoint) => format!("quic://127.0.0.1:{}", endpoint.local_addr()?.port()),
            Listener::Ws(listener) => format!("ws://127.0.0.1:{}/ws", listener.local_addr()?.port()),
        })
    }

    /// The next connection attempt; `None` once the listener is closed.
    pub async fn accept(&self) -> Option<Incoming> {
        match self {
            Listener::Quic(endpoint) => endpoint.accept().await.map(Incoming::Quic),
            Listener::Ws(listener) => listener.accept().await.ok().map(|(tcp, _)| Incoming::Ws(tcp)),
        }
    }

    /// Stops accepting and closes what is left.
    pub fn close(&self) {
        if let Listener::Quic(endpoint) = self {
            endpoint.close(0u32.into(), b"the case is over");
        }
    }
}

impl Incoming {
    /// Completes the transport handshake: QUIC and TLS then the client's
    /// stream, or the WebSocket upgrade choosing the first subprotocol of
    /// ours the client offers (WS-2). The error says what failed.
    pub async fn handshake(self) -> Result<Accepted, String> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no transport handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
        }
    }

    async fn handshake_unbounded(self) -> Result<Accepted, String> {
        match self {
            Incoming::Quic(incoming) => {
                let connection = incoming.await.map_err(|e| format!("QUIC/TLS handshake failed: {e}"))?;
                let (send, recv) =
                    connection.accept_bi().await.map_err(|e| format!("the client opened no stream: {e}"))?;
                Ok(Accepted {
                    reader: Reader::Quic { recv, connection: connection.clone(), buffer: BytesMut::new() },
                    writer: Writer::Quic { send, connection: connection.clone() },
                    encoding: Encoding::Proto,
                    offered: Vec::new(),
                    quic: Some(connection),
                })
            }
            Incoming::Ws(tcp) => {
                let _ = tcp.set_nodelay(true);
                let mut offered = Vec::new();
                let mut chosen = None;
                #[allow(clippy::result_large_err)] // tungstenite's callback signature
                let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
                    offered = request
                        .headers()
                        .get_all(SEC_WEBSOCKET_PROTOCOL)
                        .iter()
                        .filter_map(|value| value.to_str().ok())
                        .flat_map(|value| value.split(','))
                        .map(|name| name.trim().to_owned())
                        .filter(|name| !name.is_empty())
                        .collect();
                    let pick = offered.iter().find(|name| Encoding::from_ws_subprotocol(name).is_some());
                    match pick.and_then(|name| HeaderValue::from_str(name).ok().map(|value| (name, value))) {
                        Some((name, value)) => {
                            chosen = Encoding::from_ws_subprotocol(name);
                            response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
                            Ok(response)
                        }
                        None => {
                            let mut refusal = ErrorResponse::new(Some(
                                "offer confab.v1.proto or confab.v1.json in Sec-WebSocket-Protocol".into(),
                            ));
                            *refusal.status_mut() = StatusCode::BAD_REQUEST;
                            Err(refusal)
                        }
                    }
                };
                let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
                    .await
                    .map_err(|e| format!("WebSocket upgrade failed (offered {offered:?}): {e}"))?;
                let encoding = chosen.ok_or_else(|| "no subprotocol was chosen".to_owned())?;
                let (sink, stream) = ws.split();
                Ok(Accepted {
                    reader: Reader::Ws { stream },
                    writer: Writer::Ws { sink, encoding },
                    encoding,
                    offered,
                    quic: None,
                })
            }
        }
    }
}

/// How a payload came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// Length-prefixed on the QUIC stream.
    QuicFrame,
    WsBinary,
    WsText,
}

/// What a connection read.
#[derive(Debug)]
pub enum Inbound {
    /// One frame's payload.
    Payload { payload: Bytes, carrier: Carrier },
    /// Bytes that cannot be split into frames (a malformed or huge QUIC
    /// length prefix): the stream is unsynchronised.
    Unreadable(String),
    /// The connection ended. `by_peer` is false when the server ended it.
    Closed { code: Option<u32>, reason: String, by_peer: bool },
}

/// The reading half of a connection.
pub enum Reader {
    Quic { recv: quinn::RecvStream, connection: quinn::Connection, buffer: BytesMut },
    Ws { stream: SplitStream<WebSocketStream<TcpStream>> },
}

impl Reader {
    /// The next payload, or how the connection ended. Cancel-safe.
    pub async fn next(&mut self) -> Inbound {
        match self {
            Reader::Quic { recv, connection, buffer } => loop {
                match codec::split_frame(buffer, MAX_READ_BYTES) {
                    Ok(Some((prefix, len))) => {
                        let mut frame = buffer.split_to(prefix + len);
                        let payload = frame.split_off(prefix).freeze();
                        return Inbound::Payload { payload, carrier: Carrier::QuicFrame };
                    }
                    Ok(None) => {}
                    Err(error) => return Inbound::Unreadable(error.to_string()),
                }
                match recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => buffer.extend_from_slice(&chunk.bytes),
                    Ok(None) => {
                        // The client finished its stream; its close code
                        // comes with the connection's close.
                        let closed = tokio::time::timeout(CLOSE_GRACE, connection.closed()).await;
                        return match closed {
                            Ok(error) => quic_closed(error),
                            Err(_) => Inbound::Closed {
                                code: None,
                                reason: "the client finished its stream".into(),
                                by_peer: true,
                            },
                        };
                    }
                    Err(quinn::ReadError::ConnectionLost(error)) => return quic_closed(error),
                    Err(error) => {
                        return Inbound::Closed { code: None, reason: format!("stream: {error}"), by_peer: true };
                    }
                }
            },
            Reader::Ws { stream } => loop {
                let message = match stream.next().await {
                    None => return Inbound::Closed { code: None, reason: "connection ended".into(), by_peer: true },
                    Some(Err(error)) => {
                        return Inbound::Closed { code: None, reason: error.to_string(), by_peer: true };
                    }
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Binary(payload) => return Inbound::Payload { payload, carrier: Carrier::WsBinary },
                    Message::Text(text) => return Inbound::Payload { payload: text.into(), carrier: Carrier::WsText },
                    Message::Close(frame) => {
                        return Inbound::Closed {
                            code: frame.as_ref().map(|f| u32::from(u16::from(f.code))),
                            reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                            by_peer: true,
                        };
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            },
        }
    }
}

fn quic_closed(error: quinn::ConnectionError) -> Inbound {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => Inbound::Closed {
            code: u32::try_from(close.error_code.into_inner()).ok(),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
            by_peer: true,
        },
        quinn::ConnectionError::LocallyClosed => {
            Inbound::Closed { code: None, reason: "closed by the server".into(), by_peer: false }
        }
        other => Inbound::Closed { code: None, reason: other.to_string(), by_peer: true },
    }
}

/// The writing half of a connection.
pub enum Writer {
    Quic { send: quinn::SendStream, connection: quinn::Connection },
    Ws { sink: SplitSink<WebSocketStream<TcpStream>, Message>, encoding: Encoding },
}

impl Writer {
    /// One frame: length-prefixed on QUIC; on WebSocket one message, text
    /// on a JSON session (when the payload is UTF-8), binary otherwise.
    pub async fn frame(&mut self, payload: &[u8]) -> Result<(), String> {
        match self {
            Writer::Quic { send, .. } => send.write_all(&framed(payload)).await.map_err(|e| e.to_string()),
            Writer::Ws { sink, encoding } => {
                let message = match (encoding, std::str::from_utf8(payload)) {
                    (Encoding::Json, Ok(text)) => Message::Text(text.into()),
                    _ => Message::Binary(Bytes::copy_from_slice(payload)),
                };
                sink.send(message).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Bytes as they are: onto the QUIC stream with no length prefix, or
    /// as one binary WebSocket message.
    pub async fn raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Writer::Quic { send, .. } => send.write_all(bytes).await.map_err(|e| e.to_string()),
            Writer::Ws { sink, .. } => {
                sink.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.map_err(|e| e.to_string())
            }
        }
    }

    /// One WebSocket message of the given type, whatever the session's
    /// encoding; on QUIC, a frame.
    pub async fn ws_message(&mut self, text: bool, payload: &[u8]) -> Result<(), String> {
        match self {
            Writer::Quic { .. } => self.frame(payload).await,
            Writer::Ws { sink, .. } => {
                let message = match (text, std::str::from_utf8(payload)) {
                    (true, Ok(text)) => Message::Text(text.into()),
                    _ => Message::Binary(Bytes::copy_from_slice(payload)),
                };
                sink.send(message).await.map_err(|e| e.to_string())
            }
        }
    }

    /// One frame written in `pieces` parts: on QUIC, the prefixed bytes in
    /// separate writes (each flushed); on WebSocket, a fragmented message
    /// (WS-5).
    pub async fn pieces(&mut self, payload: &[u8], pieces: usize) -> Result<(), String> {
        match self {
            Writer::Quic { send, .. } => {
                let bytes = framed(payload);
                for piece in split(&bytes, pieces) {
                    send.write_all(piece).await.map_err(|e| e.to_string())?;
                    // Let each piece leave in its own packet.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(())
            }
            Writer::Ws { sink, encoding } => {
                let first = match (encoding, std::str::from_utf8(payload)) {
                    (Encoding::Json, Ok(_)) => Data::Text,
                    _ => Data::Binary,
                };
                let parts = split(payload, pieces);
                let last = parts.len().saturating_sub(1);
                for (index, part) in parts.into_iter().enumerate() {
                    let opcode = OpCode::Data(if index == 0 { first } else { Data::Continue });
                    let frame = Frame::message(Bytes::copy_from_slice(part), opcode, index == last);
                    sink.send(Message::Frame(frame)).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// A WebSocket ping control frame (nothing on QUIC, whose keep-alives
    /// quinn sends by itself).
    pub async fn ws_ping(&mut self) -> Result<(), String> {
        match self {
            Writer::Quic { .. } => Ok(()),
            Writer::Ws { sink, .. } => {
                sink.send(Message::Ping(Bytes::from_static(b"hi"))).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Ends the connection with `code` at the transport level, after what
    /// was written has been delivered (bounded): the QUIC stream finished
    /// and the connection closed with that application error code, or a
    /// WebSocket close frame with that status.
    pub async fn close(&mut self, code: u32, reason: &str) {
        match self {
            Writer::Quic { send, connection } => {
                let _ = send.finish();
                let _ = tokio::time::timeout(CLOSE_GRACE, send.stopped()).await;
                connection.close(code.into(), reason.as_bytes());
            }
            Writer::Ws { sink, .. } => {
                let status = u16::try_from(code).unwrap_or(1011);
                let frame = CloseFrame { code: CloseCode::from(status), reason: reason.into() };
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
            }
        }
    }

    /// Ends the connection without a close code, after what was written
    /// has been delivered (so a case knows what the client got before the
    /// drop; a frame cut in half stays cut). QUIC cannot vanish silently:
    /// the stream is finished and the connection closed with application
    /// error 0, which is no close code of the protocol. WebSocket: the
    /// caller drops both halves, ending TCP without a close frame.
    pub async fn abort(&mut self) {
        if let Writer::Quic { send, connection } = self {
            let _ = send.finish();
            let _ = tokio::time::timeout(CLOSE_GRACE, send.stopped()).await;
            connection.close(0u32.into(), b"");
        }
    }
}

fn framed(payload: &[u8]) -> BytesMut {
    let mut bytes = BytesMut::with_capacity(payload.len() + 10);
    codec::put_length_prefix(payload.len(), &mut bytes);
    bytes.extend_from_slice(payload);
    bytes
}

/// `bytes` in `pieces` nearly equal parts (at least one byte each, and
/// one empty part for no bytes).
fn split(bytes: &[u8], pieces: usize) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    let size = bytes.len().div_ceil(pieces.max(1)).max(1);
    bytes.chunks(size).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything_in_order() {
        let bytes: Vec<u8> = (0..10).collect();
        let parts = split(&bytes, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), bytes);
        assert_eq!(split(&[1], 5), vec![&[1u8][..]]);
        assert_eq!(split(&[], 5), vec![&[0u8; 0][..]]);
    }
}
