//! By hand, below [`Conn`](super::Conn), for exact control over the wire.
//!
//! - [`Hand`], [`quic_dial`], [`ws_dial`]: connections made with quinn and
//!   tungstenite directly, for what the SDK does for a client: QUIC ALPN,
//!   streams, length prefixes and keep-alives; WebSocket subprotocols and
//!   raw frames (fragments, control frames, message types); the server's
//!   bytes as it sent them, before decoding. Every frame goes to the case's
//!   frame log.
//! - [`varint_field`], [`bytes_field`], [`padded`]: frames written field by
//!   field, for what no encoder writes (unknown or repeated fields, invalid
//!   UTF-8, a frame of an exact size).

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use confab_protocol::codec;
use confab_sdk::{
    Encoding, Fingerprint, Scheme, ServerUrl, TlsSetup, Trust,
    v1::{self, client_frame::Command, server_frame::Body},
};
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest as _,
        http::{HeaderValue, header::SEC_WEBSOCKET_PROTOCOL},
        protocol::WebSocketConfig,
    },
};

use super::{Closing, Ctx};
use crate::{
    evidence::{Direction, FrameLog},
    outcome::{CaseResult, Stop},
    wire::{Transport, Wire},
};

// --- frames by hand ---

/// `value` as a protobuf varint (also the QUIC length prefix).
pub fn varint(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(value, &mut out);
    out
}

/// A protobuf field tag.
pub fn tag(field: u32, wire_type: u8) -> Vec<u8> {
    varint((u64::from(field) << 3) | u64::from(wire_type))
}

/// A varint field.
pub fn varint_field(field: u32, value: u64) -> Vec<u8> {
    [tag(field, 0), varint(value)].concat()
}

/// A length-delimited field (bytes, a string or a message).
pub fn bytes_field(field: u32, bytes: &[u8]) -> Vec<u8> {
    [tag(field, 2), varint(bytes.len() as u64), bytes.to_vec()].concat()
}

/// `frame` encoded and padded to exactly `size` bytes with an unknown field
/// (binary) or key (JSON), which the server must skip (ENC-1, ENC-5).
pub fn padded(frame: &v1::ClientFrame, encoding: Encoding, size: usize) -> CaseResult<Bytes> {
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

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The TLS setup of a connection made by hand: the SDK's own, pinning the
/// target's fingerprint when it has one and otherwise accepting any
/// certificate (these connections test framing, not trust); it records the
/// fingerprint the server presented.
fn hand_tls(cx: &Ctx, alpn: &[&[u8]], tls13_only: bool) -> CaseResult<TlsSetup> {
    let trust = match &cx.target().trust {
        Trust::Fingerprint(fingerprint) => Trust::Fingerprint(*fingerprint),
        _ => Trust::TrustOnFirstUse,
    };
    TlsSetup::new(&trust, alpn, tls13_only).map_err(|e| Stop::Failed(format!("TLS setup: {e}")))
}

/// A QUIC connection attempt made with quinn directly.
pub struct QuicDial {
    endpoint: quinn::Endpoint,
    pub result: Result<quinn::Connection, String>,
    /// The fingerprint of the certificate the server presented.
    pub fingerprint: Option<Fingerprint>,
}

impl QuicDial {
    pub async fn close(self) {
        if let Ok(connection) = &self.result {
            connection.close(0u32.into(), b"done");
        }
        let _ = tokio::time::timeout(Duration::from_millis(300), self.endpoint.wait_idle()).await;
    }
}

/// Connects to the target's QUIC URL offering `alpn`, with QUIC keep-alives
/// every `keep_alive` (none when `None`) and a long idle timeout (so the
/// server's applies).
pub async fn quic_dial(cx: &Ctx, who: &str, alpn: &[&[u8]], keep_alive: Option<Duration>) -> CaseResult<QuicDial> {
    let url = cx.target().quic_url.as_deref().ok_or_else(|| Stop::Skipped("no QUIC URL given".into()))?;
    let url = ServerUrl::parse(url)?;
    let address = tokio::net::lookup_host((url.host(), url.port()))
        .await?
        .next()
        .ok_or_else(|| Stop::Failed(format!("{} has no address", url.host())))?;
    let tls = hand_tls(cx, alpn, true)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.config.clone())?;
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
    let fingerprint = tls.seen();
    Ok(QuicDial { endpoint, result, fingerprint })
}

/// Why a WebSocket upgrade did not happen.
pub struct WsRefused {
    /// The HTTP status, when the server answered the request.
    pub status: Option<u16>,
    pub detail: String,
}

/// Opens a WebSocket to the target's URL offering `protocols` (the value of
/// `Sec-WebSocket-Protocol`, none when `None`); returns the stream and the
/// subprotocol the server selected, or how it refused.
pub async fn ws_dial(
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
        Scheme::Wss => Connector::Rustls(hand_tls(cx, &[], false)?.config),
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
pub struct HandFrame {
    pub payload: Bytes,
    /// Its QUIC length prefix as sent (empty on WebSocket).
    pub prefix: Vec<u8>,
    /// Whether it came as a WebSocket text message.
    pub text: bool,
    pub decoded: Option<v1::ServerFrame>,
}

/// What a [`Hand`] received.
pub enum Got {
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

/// A session made by hand, below [`Conn`](super::Conn): payloads exactly as sent and
/// received, WebSocket control frames and fragments, the QUIC connection
/// itself. Every frame goes to the case's frame log.
pub struct Hand {
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
    pub received: Vec<HandFrame>,
    /// WebSocket pings sent (when, payload) and pongs received.
    pub pings: Vec<(Instant, Bytes)>,
    pub pongs: Vec<Bytes>,
    /// How the server closed, once it did.
    pub closing: Option<Closing>,
    /// When the transport closed.
    pub closed_at: Option<Instant>,
}

impl Hand {
    /// A session on `wire`: QUIC with ALPN confab/1 and one stream, or a
    /// WebSocket offering the wire's subprotocol. Nothing sent yet.
    pub async fn open(cx: &Ctx, who: &str, wire: Wire) -> CaseResult<Hand> {
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
    pub async fn quic(cx: &Ctx, who: &str, keep_alive: Option<Duration>) -> CaseResult<Hand> {
        let dial = quic_dial(cx, who, &[confab_protocol::ALPN], keep_alive).await?;
        let connection = dial.result.map_err(|error| Stop::Failed(format!("{who}: could not connect: {error}")))?;
        let (send, recv) = connection.open_bi().await?;
        Ok(Hand::new(cx, who, Link::Quic { endpoint: dial.endpoint, connection, send, recv }, Encoding::Proto))
    }

    pub fn from_ws(cx: &Ctx, who: &str, ws: WsStream, encoding: Encoding) -> Hand {
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

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn quic_connection(&self) -> Option<&quinn::Connection> {
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
    pub async fn send_payload(&mut self, payload: &[u8]) -> CaseResult {
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
    pub async fn command(&mut self, command: Command) -> CaseResult<u64> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let frame = v1::ClientFrame { request_id, command: Some(command) };
        self.log.frame(&self.label, Direction::Sent, &frame);
        self.write_payload(&codec::encode(&frame, self.encoding)).await?;
        Ok(request_id)
    }

    /// Sends `command` and returns its reply (whatever its body).
    pub async fn request(&mut self, command: Command) -> CaseResult<v1::ServerFrame> {
        let request_id = self.command(command).await?;
        self.reply(request_id).await
    }

    /// Writes bytes onto the QUIC stream as they are.
    pub async fn write_stream(&mut self, bytes: &[u8]) -> CaseResult {
        self.log.bytes(&self.label, Direction::Sent, "stream bytes", bytes);
        match &mut self.link {
            Link::Quic { send, .. } => {
                send.write_all(bytes).await.map_err(|e| Stop::Failed(format!("QUIC write: {e}")))
            }
            Link::Ws(_) => Err(self.failed("stream bytes exist only on QUIC")),
        }
    }

    /// Sends one WebSocket message or frame as it is.
    pub async fn send_ws(&mut self, message: Message) -> CaseResult {
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
    pub async fn recv_within(&mut self, wait: Duration) -> CaseResult<Option<Got>> {
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
    pub async fn wait_for(
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
    pub async fn reply(&mut self, request_id: u64) -> CaseResult<v1::ServerFrame> {
        let from = self.received.len();
        self.wait_for(from, &format!("reply to request {request_id}"), |f| f.request_id == request_id).await
    }

    /// Reads until the server closes the transport within `wait`, sending a
    /// WebSocket ping every `ping_every` meanwhile; `None` when it stays
    /// open.
    pub async fn wait_close(&mut self, wait: Duration, ping_every: Option<Duration>) -> CaseResult<Option<Closing>> {
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
    pub async fn closed_within(&mut self, wait: Duration) -> CaseResult<Closing> {
        match self.wait_close(wait, None).await? {
            Some(closing) => Ok(closing),
            None => Err(self.failed(format!("still open {} s later; expected the server to close", wait.as_secs()))),
        }
    }

    pub async fn close(self) {
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
