//! Frame codec: varint length-delimited framing (QUIC) and the two encodings,
//! binary protobuf and canonical protobuf JSON.
//!
//! The framing parser tells "incomplete" (`Ok(None)`: read more bytes) from
//! "invalid" (`Err`), and refuses a frame over the size limit from its length
//! prefix alone, before anything is allocated for it.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use serde::{Serialize, de::DeserializeOwned};

/// How frames are encoded on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf (QUIC, and WebSocket subprotocol `confab.v1.proto`).
    Proto,
    /// Canonical protobuf JSON in text messages (WebSocket `confab.v1.json`).
    Json,
}

impl Encoding {
    /// The WebSocket subprotocol that selects this encoding.
    pub fn ws_subprotocol(self) -> &'static str {
        match self {
            Encoding::Proto => crate::WS_PROTO,
            Encoding::Json => crate::WS_JSON,
        }
    }

    /// The encoding a WebSocket subprotocol selects, if it is one of ours.
    pub fn from_ws_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            crate::WS_PROTO => Some(Encoding::Proto),
            crate::WS_JSON => Some(Encoding::Json),
            _ => None,
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("malformed length prefix")]
    BadLengthPrefix,
    #[error("invalid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid JSON frame: {0}")]
    Json(String),
    #[error("text frame is not valid UTF-8")]
    BadUtf8,
}

/// Largest varint length prefix we accept (a u64 takes at most 10 bytes).
const MAX_PREFIX_LEN: usize = 10;

/// Finds the first length-delimited frame in `buf`.
///
/// Returns `Ok(Some((prefix_len, payload_len)))` when a whole frame is
/// buffered, `Ok(None)` when more bytes are needed, and an error when the
/// prefix is malformed or announces more than `max` bytes.
pub fn split_frame(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, FrameError> {
    let mut len: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_PREFIX_LEN) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                // Overlong encoding: a canonical varint never ends in 0x00.
                return Err(FrameError::BadLengthPrefix);
            }
            if len > max as u64 {
                return Err(FrameError::TooLarge { len, max });
            }
            let prefix_len = i + 1;
            let payload_len = len as usize;
            if buf.len() - prefix_len < payload_len {
                return Ok(None);
            }
            return Ok(Some((prefix_len, payload_len)));
        }
        // More prefix bytes follow, and a canonical varint's last byte is
        // non-zero, so the length is at least this much.
        let at_least = len | 1u64.checked_shl(7 * (i as u32 + 1)).unwrap_or(u64::MAX);
        if at_least > max as u64 {
            return Err(FrameError::TooLarge { len: at_least, max });
        }
    }
    if buf.len() >= MAX_PREFIX_LEN { Err(FrameError::BadLengthPrefix) } else { Ok(None) }
}

/// Appends the varint length prefix for a `len`-byte frame.
pub fn put_length_prefix(len: usize, out: &mut BytesMut) {
    prost::encoding::encode_varint(len as u64, out);
}

/// Encodes `message` in `encoding` (no length prefix).
pub fn encode<M: Message + Serialize>(message: &M, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Proto => {
            let mut out = BytesMut::with_capacity(message.encoded_len());
            message.encode(&mut out).expect("BytesMut grows as needed");
            out.freeze()
        }
        Encoding::Json => {
            let mut out = BytesMut::new().writer();
            serde_json::to_writer(&mut out, message).expect("generated types always serialize");
            out.into_inner().freeze()
        }
    }
}

/// Decodes a frame's payload in `encoding`.
pub fn decode<M: Message + Default + DeserializeOwned>(payload: &[u8], encoding: Encoding) -> Result<M, FrameError> {
    match encoding {
        Encoding::Proto => Ok(M::decode(payload)?),
        Encoding::Json => {
            let text = std::str::from_utf8(payload).map_err(|_| FrameError::BadUtf8)?;
            serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;

    #[test]
    fn split_frame_tells_incomplete_from_invalid() {
        assert!(split_frame(&[], 100).unwrap().is_none());
        assert!(split_frame(&[5, 1, 2], 100).unwrap().is_none());
        assert_eq!(split_frame(&[2, 7, 7, 9], 100).unwrap(), Some((1, 2)));
        assert_eq!(split_frame(&[0], 100).unwrap(), Some((1, 0)));
        // 300 = 0xac 0x02
        let mut big = vec![0xac, 0x02];
        big.extend(std::iter::repeat_n(1, 300));
        assert_eq!(split_frame(&big, 1000).unwrap(), Some((2, 300)));
        assert!(matches!(split_frame(&[0xac, 0x02], 299), Err(FrameError::TooLarge { len: 300, .. })));
        assert!(matches!(split_frame(&[0x80, 0x00], 1000), Err(FrameError::BadLengthPrefix)));
        assert!(matches!(split_frame(&[0xff; 11], usize::MAX), Err(FrameError::BadLengthPrefix)));
    }

    #[test]
    fn oversized_frame_is_refused_from_the_prefix_alone() {
        // A prefix announcing 2^62 bytes is refused after a few bytes, without
        // waiting for (or allocating) the payload.
        let prefix = [0x80, 0x80, 0x80, 0x80];
        assert!(matches!(split_frame(&prefix, 1 << 20), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn both_encodings_round_trip() {
        let frame = v1::ClientFrame { request_id: 7, command: Some(v1::client_frame::Command::Ping(v1::Ping {})) };
        for encoding in [Encoding::Proto, Encoding::Json] {
            let bytes = encode(&frame, encoding);
            let back: v1::ClientFrame = decode(&bytes, encoding).unwrap();
            assert_eq!(back, frame);
        }
        assert_eq!(&encode(&frame, Encoding::Json)[..], br#"{"requestId":"7","ping":{}}"#);
    }

    #[test]
    fn unknown_json_fields_are_ignored_and_unknown_commands_decode_to_none() {
        let frame: v1::ClientFrame =
            decode(br#"{"requestId":"3","futureCommand":{"x":1},"extra":true}"#, Encoding::Json).unwrap();
        assert_eq!(frame.request_id, 3);
        assert!(frame.command.is_none());
    }

    #[test]
    fn bad_utf8_is_a_decode_error_in_both_encodings() {
        // ClientFrame.send_message (field 40) whose text (field 2) is 0xff.
        let mut inner = vec![0x12, 0x01, 0xff];
        let mut frame = vec![0xc2, 0x02, inner.len() as u8];
        frame.append(&mut inner);
        assert!(matches!(decode::<v1::ClientFrame>(&frame, Encoding::Proto), Err(FrameError::Protobuf(_))));
        assert!(matches!(decode::<v1::ClientFrame>(&[b'{', 0xff, b'}'], Encoding::Json), Err(FrameError::BadUtf8)));
    }
}
