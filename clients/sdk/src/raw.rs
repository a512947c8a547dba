//! [`RawConnection`]: one connection with no client logic at all, for tests
//! and the conformance suite. It sends exactly what it is told (well-formed
//! frames, arbitrary bytes as a frame, raw stream bytes, WebSocket text) and
//! hands back every server frame or the close, in order.

use std::collections::VecDeque;

use bytes::Bytes;
use confab_protocol::{
    Encoding, codec,
    v1::{self, client_frame::Command, server_frame::Body},
};

use crate::{
    ClientOptions, Error,
    tls::Fingerprint,
    transport::{self, Received, TransportReader, TransportWriter},
    url::ServerUrl,
};

/// What a [`RawConnection`] received.
#[derive(Clone, Debug, PartialEq)]
pub enum RawReceived {
    /// A well-formed server frame.
    Frame(v1::ServerFrame),
    /// A frame that does not decode in the connection's encoding.
    Undecodable { payload: Bytes, error: String },
    /// The server closed the transport (WebSocket close code or QUIC
    /// application error code, when given). Nothing follows.
    Closed { code: Option<i32>, reason: String },
}

/// A single connection to a server, driven by hand. No tasks, no
/// reconnects, no hidden frames: nothing is sent unless asked for, not even
/// `Hello` (see [`RawConnection::hello`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), confab_sdk::Error> {
/// use confab_sdk::{ClientOptions, raw::{RawConnection, RawReceived}};
/// let mut raw = RawConnection::connect("ws://127.0.0.1:7080", &ClientOptions::default()).await?;
/// raw.send_payload(&b"\xff\xff garbage"[..]).await?;
/// match raw.recv().await? {
///     RawReceived::Frame(frame) => println!("{frame:?}"),
///     other => println!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
pub struct RawConnection {
    reader: TransportReader,
    writer: TransportWriter,
    encoding: Encoding,
    fingerprint: Option<Fingerprint>,
    next_request_id: u64,
    /// Frames received while [`RawConnection::request`] waited for its reply.
    held: VecDeque<RawReceived>,
}

impl RawConnection {
    /// Connects to `url` with `options`' encoding, trust, connect timeout,
    /// frame size limit and QUIC settings (the rest is ignored).
    pub async fn connect(url: &str, options: &ClientOptions) -> Result<RawConnection, Error> {
        let url = ServerUrl::parse(url)?;
        let connected = transport::connect(&url, &options.transport_settings()).await?;
        Ok(RawConnection {
            reader: connected.reader,
            writer: connected.writer,
            encoding: connected.encoding,
            fingerprint: connected.fingerprint,
            next_request_id: 1,
            held: VecDeque::new(),
        })
    }

    /// The encoding of this connection's frames.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// SHA-256 of the server's certificate (TLS transports).
    pub fn server_fingerprint(&self) -> Option<Fingerprint> {
        self.fingerprint
    }

    /// A request id not used before on this connection (1, 2, ...).
    pub fn next_request_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// Sends `frame` as it is (any request id, even 0), encoded and framed
    /// as the connection's encoding wants.
    pub async fn send(&mut self, frame: &v1::ClientFrame) -> Result<(), Error> {
        self.writer.send_frame(codec::encode(frame, self.encoding)).await
    }

    /// Sends `command` with the next request id; returns the id.
    pub async fn send_command(&mut self, command: Command) -> Result<u64, Error> {
        let request_id = self.next_request_id();
        self.send(&v1::ClientFrame { request_id, command: Some(command) }).await?;
        Ok(request_id)
    }

    /// Sends `payload` as one frame, whatever it contains: length-prefixed
    /// on QUIC, one binary (proto) or text (JSON; must then be UTF-8)
    /// WebSocket message.
    pub async fn send_payload(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.send_frame(payload.into()).await
    }

    /// Writes `bytes` unframed: straight onto the QUIC stream (so a bad or
    /// huge length prefix can be sent), or as one binary WebSocket message.
    pub async fn send_raw(&mut self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.send_raw(bytes.into()).await
    }

    /// Sends one WebSocket text message (also on a protobuf session).
    /// Fails with [`Error::InvalidState`] on QUIC.
    pub async fn send_ws_text(&mut self, text: impl Into<String>) -> Result<(), Error> {
        self.writer.send_ws_text(text.into()).await
    }

    /// The next thing received: frames (requests' replies and pushes alike)
    /// in order, then the close. After the close, reads again report it.
    pub async fn recv(&mut self) -> Result<RawReceived, Error> {
        if let Some(held) = self.held.pop_front() {
            return Ok(held);
        }
        Ok(match self.reader.next().await? {
            Received::Frame(payload) => match codec::decode::<v1::ServerFrame>(&payload, self.encoding) {
                Ok(frame) => RawReceived::Frame(frame),
                Err(error) => RawReceived::Undecodable { payload, error: error.to_string() },
            },
            Received::Closed { code, reason } => RawReceived::Closed { code, reason },
        })
    }

    /// The next well-formed frame; anything else is an error
    /// ([`Error::Closed`] carries a close code when the transport gave one).
    pub async fn recv_frame(&mut self) -> Result<v1::ServerFrame, Error> {
        match self.recv().await? {
            RawReceived::Frame(frame) => Ok(frame),
            RawReceived::Undecodable { error, .. } => Err(Error::Protocol(format!("undecodable frame: {error}"))),
            RawReceived::Closed { code, reason } => Err(Error::Closed { code: code.unwrap_or(0), reason }),
        }
    }

    /// Sends `command` and waits for its reply. Whatever else arrives
    /// meanwhile (pushes, other replies) is kept for [`RawConnection::recv`].
    /// An `error` reply becomes [`Error::Server`].
    pub async fn request(&mut self, command: Command) -> Result<Body, Error> {
        let request_id = self.send_command(command).await?;
        let mut skipped = VecDeque::new();
        let result = loop {
            let received = match self.held.pop_front() {
                Some(held) => held,
                None => match self.recv().await {
                    Ok(received) => received,
                    Err(error) => break Err(error),
                },
            };
            match received {
                RawReceived::Frame(frame) if frame.request_id == request_id => {
                    break match frame.body {
                        Some(Body::Error(error)) => Err(Error::Server(error)),
                        Some(body) => Ok(body),
                        None => Err(Error::Protocol("a reply of an unknown kind".into())),
                    };
                }
                RawReceived::Closed { code, reason } => {
                    skipped.push_back(RawReceived::Closed { code, reason: reason.clone() });
                    break Err(Error::Closed { code: code.unwrap_or(0), reason });
                }
                other => skipped.push_back(other),
            }
        };
        skipped.extend(self.held.drain(..));
        self.held = skipped;
        result
    }

    /// Sends the `Hello` a v1 client sends and returns the `Welcome`.
    pub async fn hello(&mut self, client_name: &str) -> Result<v1::Welcome, Error> {
        let hello = v1::Hello {
            versions: vec![confab_protocol::PROTOCOL_VERSION],
            feature_level: confab_protocol::FEATURE_LEVEL,
            capabilities: vec!["resume".into(), "guests".into()],
            client_name: client_name.into(),
        };
        match self.request(Command::Hello(hello)).await? {
            Body::Welcome(welcome) => Ok(welcome),
            other => Err(Error::Protocol(format!("expected welcome, got {}", crate::client::body_name(&other)))),
        }
    }

    /// Closes politely (WebSocket close frame; QUIC close with code 0).
    pub async fn close(self) {
        self.writer.close().await;
    }
}
