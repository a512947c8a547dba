//! The three ways to carry protocol v1: QUIC (always protobuf), and
//! WebSocket with either encoding.

use std::fmt;

use confab_protocol::Encoding;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Quic,
    Ws,
}

/// A transport with an encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Wire {
    pub transport: Transport,
    pub encoding: Encoding,
}

impl Wire {
    pub const QUIC: Wire = Wire { transport: Transport::Quic, encoding: Encoding::Proto };
    pub const WS_PROTO: Wire = Wire { transport: Transport::Ws, encoding: Encoding::Proto };
    pub const WS_JSON: Wire = Wire { transport: Transport::Ws, encoding: Encoding::Json };
    pub const ALL: [Wire; 3] = [Wire::QUIC, Wire::WS_PROTO, Wire::WS_JSON];

    /// `quic+proto`, `ws+proto` or `ws+json`.
    pub fn name(self) -> &'static str {
        match (self.transport, self.encoding) {
            (Transport::Quic, _) => "quic+proto",
            (Transport::Ws, Encoding::Proto) => "ws+proto",
            (Transport::Ws, Encoding::Json) => "ws+json",
        }
    }

    pub fn is_json(self) -> bool {
        self.encoding == Encoding::Json
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The wires a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wires {
    /// Every wire under test: behaviour that must hold whatever the carrier.
    All,
    /// Once, on the first wire under test: behaviour independent of the
    /// carrier (slow or stateful cases).
    Once,
    /// QUIC only (length prefixes, streams, QUIC close).
    Quic,
    /// WebSocket, both encodings.
    Ws,
    /// WebSocket with the JSON encoding only.
    WsJson,
    /// WebSocket with the protobuf encoding only.
    WsProto,
    /// The binary protobuf wires: QUIC and WebSocket with protobuf.
    Proto,
}

impl Wires {
    /// Of the wires under test (in order), those this case runs on.
    pub fn select(self, under_test: &[Wire]) -> Vec<Wire> {
        match self {
            Wires::All => under_test.to_vec(),
            Wires::Once => under_test.first().copied().into_iter().collect(),
            Wires::Quic => under_test.iter().copied().filter(|w| w.transport == Transport::Quic).collect(),
            Wires::Ws => under_test.iter().copied().filter(|w| w.transport == Transport::Ws).collect(),
            Wires::WsJson => under_test.iter().copied().filter(|w| *w == Wire::WS_JSON).collect(),
            Wires::WsProto => under_test.iter().copied().filter(|w| *w == Wire::WS_PROTO).collect(),
            Wires::Proto => under_test.iter().copied().filter(|w| !w.is_json()).collect(),
        }
    }
}
