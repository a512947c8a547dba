//! The two transports behind one pair of types: a [`FrameReader`] that yields
//! whole frames within a size limit, and a [`FrameWriter`] that writes
//! batches of encoded frames and closes with a code.

pub mod http;
pub mod quic;

use bytes::{Buf as _, Bytes, BytesMut};
use confab_protocol::{Encoding, codec, v1};
use futures_util::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// What arrived from the peer.
#[derive(Debug)]
pub enum Inbound {
    /// One frame's payload, not yet decoded.
    Frame(Bytes),
    /// A frame over the current limit: close with FRAME_TOO_LARGE.
    TooLarge { len: u64, max: usize },
    /// The byte stream cannot be split into frames any more (a bad length
    /// prefix): close with PROTOCOL_VIOLATION.
    Unframeable(String),
    /// Bytes that are not a frame of this encoding (a binary WebSocket
    /// message on a JSON session, a bad length prefix): answer BAD_FRAME.
    Malformed(String),
    /// The peer closed or the transport failed.
    Closed,
}

pub enum FrameReader {
    Ws { stream: SplitStream<Ws>, encoding: Encoding },
    Quic { stream: quinn::RecvStream, buffer: BytesMut },
}

impl FrameReader {
    /// The next frame, refusing any longer than `max` bytes. Cancel-safe.
    pub async fn next(&mut self, max: usize) -> Inbound {
        match self {
            FrameReader::Ws { stream, encoding } => loop {
                let message = match stream.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(tungstenite::Error::Utf8(_))) => {
                        // RFC 6455 fails the connection on invalid UTF-8 in
                        // a text message; say why before it goes.
                        return Inbound::Unframeable("a text message is not valid UTF-8".into());
                    }
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        tracing::debug!(error = %e, "oversized WebSocket message");
                        return Inbound::TooLarge { len: 0, max };
                    }
                    Some(Err(_)) | None => return Inbound::Closed,
                };
                let (payload, is_text) = match message {
                    Message::Binary(bytes) => (bytes, false),
                    Message::Text(text) => (Bytes::from(text), true),
                    Message::Close(_) => return Inbound::Closed,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                if payload.len() > max {
                    return Inbound::TooLarge { len: payload.len() as u64, max };
                }
                return match (*encoding, is_text) {
                    (Encoding::Proto, false) | (Encoding::Json, true) => Inbound::Frame(payload),
                    (Encoding::Proto, true) => {
                        Inbound::Malformed("text message on a confab.v1.proto session; send binary frames".into())
                    }
                    (Encoding::Json, false) => {
                        Inbound::Malformed("binary message on a confab.v1.json session; send text frames".into())
                    }
                };
            },
            FrameReader::Quic { stream, buffer } => loop {
                match codec::split_frame(buffer, max) {
                    Ok(Some((prefix, len))) => {
                        buffer.advance(prefix);
                        return Inbound::Frame(buffer.split_to(len).freeze());
                    }
                    Ok(None) => {}
                    Err(codec::FrameError::TooLarge { len, max }) => return Inbound::TooLarge { len, max },
                    Err(e) => return Inbound::Unframeable(e.to_string()),
                }
                buffer.reserve(4096);
                match stream.read_buf(buffer).await {
                    Ok(0) | Err(_) => return Inbound::Closed,
                    Ok(_) => {}
                }
            },
        }
    }
}

pub enum FrameWriter {
    Ws { sink: SplitSink<Ws, Message>, encoding: Encoding },
    Quic { stream: quinn::SendStream, connection: quinn::Connection, scratch: BytesMut },
}

impl FrameWriter {
    /// Writes encoded frames in order and flushes once.
    pub async fn write(&mut self, frames: &[Bytes]) -> Result<(), ()> {
        match self {
            FrameWriter::Ws { sink, encoding } => {
                for frame in frames {
                    let message = match encoding {
                        Encoding::Proto => Message::Binary(frame.clone()),
                        Encoding::Json => Message::Text(Utf8Bytes::try_from(frame.clone()).map_err(|_| ())?),
                    };
                    sink.feed(message).await.map_err(|_| ())?;
                }
                sink.flush().await.map_err(|_| ())
            }
            FrameWriter::Quic { stream, scratch, .. } => {
                scratch.clear();
                for frame in frames {
                    codec::put_length_prefix(frame.len(), scratch);
                    scratch.extend_from_slice(frame);
                }
                stream.write_all(scratch).await.map_err(|_| ())
            }
        }
    }

    /// Sends the Close frame, then closes the transport with its code.
    pub async fn close(mut self, close: v1::Close) {
        let encoding = match &self {
            FrameWriter::Ws { encoding, .. } => *encoding,
            FrameWriter::Quic { .. } => Encoding::Proto,
        };
        let frame = codec::encode(&crate::hub::push(v1::server_frame::Body::Close(close.clone())), encoding);
        let _ = self.write(&[frame]).await;
        let code = close.code.clamp(0, u16::MAX.into()) as u16;
        match self {
            FrameWriter::Ws { mut sink, .. } => {
                let frame =
                    CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(truncate(&close.reason, 120)) };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = sink.close().await;
            }
            FrameWriter::Quic { mut stream, connection, .. } => {
                let _ = stream.finish();
                // Give the peer a moment to read the Close frame before the
                // connection-level close discards unread stream data.
                let _ = tokio::time::timeout(std::time::Duration::from_millis(500), stream.stopped()).await;
                connection.close(quinn::VarInt::from(u32::from(code)), truncate(&close.reason, 120).as_bytes());
            }
        }
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
