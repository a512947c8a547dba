//! confab protocol v1: the wire types generated from `proto/confab/v1`, the
//! frame codec for both encodings, and the sans-IO logic both ends share.
//!
//! This crate does no IO: no sockets, no clock, no tasks. Time comes in as a
//! parameter.

pub mod codec;
pub mod ids;
pub mod liveness;
pub mod markup;
pub mod resume;
pub mod session;

/// Generated wire types of package `confab.v1`, with the canonical protobuf
/// JSON mapping (`serde`) for the `confab.v1.json` encoding.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/confab.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/confab.v1.serde.rs"));
}

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The feature level within v1 this crate speaks.
pub const FEATURE_LEVEL: u32 = 2;
/// QUIC ALPN identifier.
pub const ALPN: &[u8] = b"confab/1";
/// WebSocket subprotocol for binary protobuf frames.
pub const WS_PROTO: &str = "confab.v1.proto";
/// WebSocket subprotocol for canonical-JSON text frames.
pub const WS_JSON: &str = "confab.v1.json";

/// This protocol's specification, `PROTOCOL.md`: the requirement ids that
/// the conformance suite cites, and their MUST/SHOULD wording, come from it.
pub const SPEC: &str = include_str!("../PROTOCOL.md");

/// The compiled descriptor set of the `.proto` files, for compatibility checks
/// and reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/confab_descriptor.bin"));

pub use codec::{Encoding, FrameError};
pub use ids::{Epoch, RoomId, Seq, UserId};

impl v1::CloseCode {
    /// Whether a client should reconnect (with backoff) and resume after this
    /// close, as opposed to stopping.
    pub fn is_reconnect(self) -> bool {
        Self::is_reconnect_code(self as i32)
    }

    /// [`Self::is_reconnect`] for a raw code, which may be one this version
    /// does not know.
    pub fn is_reconnect_code(code: i32) -> bool {
        (4000..4500).contains(&code)
    }
}

impl v1::Error {
    /// A permanent error with `code` and a human message.
    pub fn new(code: v1::ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code as i32, message: message.into(), temporary: false, retry_after_ms: 0 }
    }

    /// A temporary error the client may retry after `retry_after_ms`.
    pub fn temporary(code: v1::ErrorCode, message: impl Into<String>, retry_after_ms: u32) -> Self {
        Self { code: code as i32, message: message.into(), temporary: true, retry_after_ms }
    }
}

impl std::fmt::Display for v1::Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = v1::ErrorCode::try_from(self.code)
            .map(|c| c.as_str_name().to_owned())
            .unwrap_or_else(|_| format!("error {}", self.code));
        write!(f, "{code}: {}", self.message)
    }
}

impl std::error::Error for v1::Error {}

impl v1::RoomRef {
    /// Refers to a room by id.
    pub fn id(id: RoomId) -> Self {
        Self { room: Some(v1::room_ref::Room::Id(id.0)) }
    }

    /// Refers to a room by name.
    pub fn name(name: impl Into<String>) -> Self {
        Self { room: Some(v1::room_ref::Room::Name(name.into())) }
    }
}

impl std::fmt::Display for v1::RoomRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.room {
            Some(v1::room_ref::Room::Id(id)) => write!(f, "room {id}"),
            Some(v1::room_ref::Room::Name(name)) => write!(f, "#{name}"),
            None => f.write_str("(no room)"),
        }
    }
}
