//! The two transports behind one pair of enums: [`connect`] by URL, then
//! write frames with a [`TransportWriter`] and read them with a
//! [`TransportReader`], over QUIC (ALPN `confab/1`, varint length-delimited
//! frames on one bidirectional stream) or WebSocket (one message per frame:
//! binary for `confab.v1.proto`, text for `confab.v1.json`).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use confab_protocol::{Encoding, codec};
use futures_util::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        client::IntoClientRequest as _,
        http::{HeaderValue, header::SEC_WEBSOCKET_PROTOCOL},
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use crate::{
    Error,
    tls::{Fingerprint, TlsSetup, Trust},
    url::{Scheme, ServerUrl},
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What connecting needs to know.
#[derive(Clone, Debug)]
pub(crate) struct TransportSettings {
    /// WebSocket encoding; QUIC always uses protobuf.
    pub encoding: Encoding,
    pub trust: Trust,
    /// For the TCP/QUIC connection and the TLS and WebSocket handshakes.
    pub connect_timeout: Duration,
    /// Largest frame accepted from the server.
    pub max_frame_bytes: usize,
    /// QUIC keep-alive interval.
    pub quic_keep_alive: Duration,
    /// QUIC idle timeout (the smaller of ours and the server's applies).
    pub quic_idle_timeout: Duration,
}

/// A freshly connected transport.
pub(crate) struct Connected {
    pub reader: TransportReader,
    pub writer: TransportWriter,
    /// The encoding frames use on this connection.
    pub encoding: Encoding,
    /// SHA-256 of the server's certificate (TLS transports only).
    pub fingerprint: Option<Fingerprint>,
    /// The QUIC connection (QUIC only), for upload streams beside the
    /// command stream.
    pub quic: Option<quinn::Connection>,
}

/// What the server sent.
#[derive(Debug)]
pub(crate) enum Received {
    /// One frame's payload, not yet decoded.
    Frame(Bytes),
    /// The server closed the transport, with the WebSocket close code or
    /// QUIC application error code when it gave one.
    Closed { code: Option<i32>, reason: String },
}

/// Connects to `url` and completes the transport handshakes (not `Hello`).
pub(crate) async fn connect(url: &ServerUrl, settings: &TransportSettings) -> Result<Connected, Error> {
    let attempt = async {
        match url.scheme() {
            Scheme::Quic => connect_quic(url, settings).await,
            Scheme::Ws | Scheme::Wss => connect_ws(url, settings).await,
        }
    };
    tokio::time::timeout(settings.connect_timeout, attempt).await.map_err(|_| Error::Timeout)?
}

async fn resolve(url: &ServerUrl) -> Result<SocketAddr, Error> {
    let mut addresses = tokio::net::lookup_host((url.host(), url.port()))
        .await
        .map_err(|e| Error::Transport(format!("cannot resolve {}: {e}", url.host())))?;
    addresses.next().ok_or_else(|| Error::Transport(format!("{} has no address", url.host())))
}

async fn connect_quic(url: &ServerUrl, settings: &TransportSettings) -> Result<Connected, Error> {
    let setup = TlsSetup::new(&settings.trust, &[confab_protocol::ALPN], true)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(setup.config.clone())
        .map_err(|e| Error::Tls(format!("QUIC needs a TLS 1.3 cipher suite: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(settings.quic_idle_timeout)
        .map_err(|_| Error::InvalidState("QUIC idle timeout out of range".into()))?;
    transport.keep_alive_interval(Some(settings.quic_keep_alive)).max_idle_timeout(Some(idle));
    config.transport_config(Arc::new(transport));

    let address = resolve(url).await?;
    let bind: SocketAddr = if address.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint =
        quinn::Endpoint::client(bind).map_err(|e| Error::Transport(format!("cannot open a UDP socket: {e}")))?;
    let connecting = endpoint
        .connect_with(config, address, url.host())
        .map_err(|e| Error::Transport(format!("cannot connect to {}: {e}", url.host_port())))?;
    let connection = connecting.await.map_err(|e| quic_connect_error(e, &setup, url))?;
    let (send, recv) = connection.open_bi().await.map_err(|e| quic_connect_error(e, &setup, url))?;
    Ok(Connected {
        quic: Some(connection.clone()),
        reader: TransportReader::Quic {
            recv,
            connection: connection.clone(),
            buffer: BytesMut::new(),
            max: settings.max_frame_bytes,
        },
        writer: TransportWriter::Quic { send, connection, endpoint, scratch: BytesMut::new() },
        encoding: Encoding::Proto,
        fingerprint: setup.seen(),
    })
}

fn quic_connect_error(error: quinn::ConnectionError, setup: &TlsSetup, url: &ServerUrl) -> Error {
    let is_crypto = |code: u64| (0x100..0x200).contains(&code);
    match error {
        quinn::ConnectionError::TransportError(e) if is_crypto(e.code.into()) => setup.handshake_error(e),
        quinn::ConnectionError::ConnectionClosed(e) if is_crypto(e.error_code.into()) => setup.handshake_error(e),
        quinn::ConnectionError::ApplicationClosed(close) => Error::Closed {
            code: i32::try_from(close.error_code.into_inner()).unwrap_or(i32::MAX),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        quinn::ConnectionError::TimedOut => {
            Error::Transport(format!("no QUIC answer from {} (is confabd listening on UDP there?)", url.host_port()))
        }
        other => Error::Transport(format!("QUIC connection to {} failed: {other}", url.host_port())),
    }
}

async fn connect_ws(url: &ServerUrl, settings: &TransportSettings) -> Result<Connected, Error> {
    let tcp = TcpStream::connect((url.host(), url.port()))
        .await
        .map_err(|e| Error::Transport(format!("cannot connect to {}: {e}", url.host_port())))?;
    let _ = tcp.set_nodelay(true);
    let (stream, fingerprint) = match url.scheme() {
        Scheme::Wss => {
            let setup = TlsSetup::new(&settings.trust, &[], false)?;
            let name = rustls::pki_types::ServerName::try_from(url.host().to_owned())
                .map_err(|e| Error::Tls(format!("{} is not a valid TLS server name: {e}", url.host())))?;
            let tls = tokio_rustls::TlsConnector::from(setup.config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| setup.handshake_error(e))?;
            (MaybeTlsStream::Rustls(tls), setup.seen())
        }
        _ => (MaybeTlsStream::Plain(tcp), None),
    };
    let mut request = url
        .to_string()
        .into_client_request()
        .map_err(|e| Error::InvalidUrl { url: url.to_string(), reason: e.to_string() })?;
    request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(settings.encoding.ws_subprotocol()));
    let config = WebSocketConfig::default()
        .max_message_size(Some(settings.max_frame_bytes))
        .max_frame_size(Some(settings.max_frame_bytes));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| ws_handshake_error(e, url))?;
    let chosen = response.headers().get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok());
    if chosen.and_then(Encoding::from_ws_subprotocol) != Some(settings.encoding) {
        return Err(Error::Protocol(format!(
            "the server did not accept WebSocket subprotocol {} (it chose {chosen:?})",
            settings.encoding.ws_subprotocol()
        )));
    }
    let (sink, stream) = ws.split();
    Ok(Connected {
        reader: TransportReader::Ws { stream },
        writer: TransportWriter::Ws { sink, encoding: settings.encoding },
        encoding: settings.encoding,
        fingerprint,
        quic: None,
    })
}

fn ws_handshake_error(error: tungstenite::Error, url: &ServerUrl) -> Error {
    match error {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(|body| String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned())
                .unwrap_or_default();
            Error::Transport(format!("{url} refused the WebSocket upgrade: HTTP {}: {body}", response.status()))
        }
        other => Error::Transport(format!("WebSocket handshake with {url} failed: {other}")),
    }
}

/// The receiving half of a transport.
pub(crate) enum TransportReader {
    Quic { recv: quinn::RecvStream, connection: quinn::Connection, buffer: BytesMut, max: usize },
    Ws { stream: SplitStream<Ws> },
}

impl TransportReader {
    /// The next frame or the close. Cancel-safe.
    pub async fn next(&mut self) -> Result<Received, Error> {
        match self {
            TransportReader::Quic { recv, connection, buffer, max } => loop {
                match codec::split_frame(buffer, *max) {
                    Ok(Some((prefix, len))) => {
                        let mut frame = buffer.split_to(prefix + len);
                        let _ = frame.split_to(prefix);
                        return Ok(Received::Frame(frame.freeze()));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(Error::Protocol(format!("bad frame from the server: {e}"))),
                }
                match recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => buffer.extend_from_slice(&chunk.bytes),
                    Ok(None) => {
                        // A server finishes the stream after its Close frame,
                        // then closes the connection with the close code:
                        // wait a moment for that code.
                        let closed = tokio::time::timeout(std::time::Duration::from_secs(2), connection.closed()).await;
                        return Ok(quic_closed(closed.ok().or(connection.close_reason())));
                    }
                    Err(quinn::ReadError::ConnectionLost(e)) => return Ok(quic_closed(Some(e))),
                    Err(e) => return Err(Error::Transport(format!("QUIC stream: {e}"))),
                }
            },
            TransportReader::Ws { stream } => loop {
                let message = match stream.next().await {
                    None | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                        return Ok(Received::Closed { code: None, reason: String::new() });
                    }
                    Some(Err(e)) => return Err(Error::Transport(format!("WebSocket: {e}"))),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Binary(bytes) => return Ok(Received::Frame(bytes)),
                    Message::Text(text) => return Ok(Received::Frame(Bytes::from(text))),
                    Message::Close(frame) => {
                        return Ok(Received::Closed {
                            code: frame.as_ref().map(|f| i32::from(u16::from(f.code))),
                            reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                        });
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                }
            },
        }
    }
}

/// How a QUIC connection ended, as a close.
fn quic_closed(reason: Option<quinn::ConnectionError>) -> Received {
    match reason {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => Received::Closed {
            code: i32::try_from(close.error_code.into_inner()).ok(),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        Some(other) => Received::Closed { code: None, reason: other.to_string() },
        None => Received::Closed { code: None, reason: "the server finished the stream".into() },
    }
}

/// The sending half of a transport.
pub(crate) enum TransportWriter {
    Quic { send: quinn::SendStream, connection: quinn::Connection, endpoint: quinn::Endpoint, scratch: BytesMut },
    Ws { sink: SplitSink<Ws, Message>, encoding: Encoding },
}

impl TransportWriter {
    /// Writes one encoded frame: length-prefixed on QUIC, one binary (proto)
    /// or text (JSON) message on WebSocket.
    pub async fn send_frame(&mut self, payload: Bytes) -> Result<(), Error> {
        match self {
            TransportWriter::Quic { send, scratch, .. } => {
                scratch.clear();
                codec::put_length_prefix(payload.len(), scratch);
                scratch.extend_from_slice(&payload);
                send.write_all(scratch).await.map_err(|e| Error::Transport(format!("QUIC write: {e}")))
            }
            TransportWriter::Ws { sink, encoding } => {
                let message = match encoding {
                    Encoding::Proto => Message::Binary(payload),
                    Encoding::Json => Message::Text(
                        Utf8Bytes::try_from(payload)
                            .map_err(|_| Error::InvalidState("a JSON frame must be UTF-8".into()))?,
                    ),
                };
                sink.send(message).await.map_err(|e| Error::Transport(format!("WebSocket write: {e}")))
            }
        }
    }

    /// Writes bytes as they are: onto the QUIC stream without a length
    /// prefix, or as one binary WebSocket message.
    pub async fn send_raw(&mut self, bytes: Bytes) -> Result<(), Error> {
        match self {
            TransportWriter::Quic { send, .. } => {
                send.write_all(&bytes).await.map_err(|e| Error::Transport(format!("QUIC write: {e}")))
            }
            TransportWriter::Ws { sink, .. } => {
                sink.send(Message::Binary(bytes)).await.map_err(|e| Error::Transport(format!("WebSocket write: {e}")))
            }
        }
    }

    /// Sends one WebSocket text message (whatever the encoding).
    pub async fn send_ws_text(&mut self, text: String) -> Result<(), Error> {
        match self {
            TransportWriter::Ws { sink, .. } => sink
                .send(Message::Text(text.into()))
                .await
                .map_err(|e| Error::Transport(format!("WebSocket write: {e}"))),
            TransportWriter::Quic { .. } => Err(Error::InvalidState("text messages exist only on WebSocket".into())),
        }
    }

    /// Closes politely: a WebSocket close frame, or the QUIC stream finished
    /// and the connection closed with code 0.
    pub async fn close(self) {
        match self {
            TransportWriter::Quic { mut send, connection, endpoint, .. } => {
                let _ = send.finish();
                connection.close(0u32.into(), b"client closed");
                // Let the CONNECTION_CLOSE reach the server before the socket goes.
                let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
            }
            TransportWriter::Ws { mut sink, .. } => {
                let frame = CloseFrame { code: CloseCode::Normal, reason: "client closed".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = sink.close().await;
            }
        }
    }
}
