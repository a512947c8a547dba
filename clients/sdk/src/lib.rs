//! confab-sdk: the Rust client library for confab, and the reference
//! client of protocol v1.
//!
//! - [`Client`] connects by URL (`quic://`, `ws://`, `wss://`), logs in,
//!   makes typed requests, streams [`Event`]s, and reconnects by itself:
//!   backoff with jitter, re-authentication (refreshing an expired token),
//!   `Resume` from its last positions (each room event delivered once), and
//!   resending of unanswered messages with their transaction ids (each
//!   applied once), as well as of messages refused for now (`RATE_LIMITED`),
//!   after the delay the server asks for. It follows the transport's close
//!   code when a `Close` frame disagrees with it, reloads nothing by itself
//!   but reports a room to reload ([`Event::RoomReset`]), also when a live
//!   event shows a new epoch, and never sends a frame over the server's
//!   limit.
//! - [`raw::RawConnection`] is one bare connection for tests and the
//!   conformance suite: send any frame or any bytes, read every frame.
//! - [`Trust`] and [`Fingerprint`] decide which server certificates are
//!   accepted (pinned self-signed certificates included).
//! - The binary `confab-sdk-driver` (`src/bin/`) runs a [`Client`] under the
//!   conformance suite's client mode (`conformance/driver-contract.md`); CI
//!   runs it through every client case.
//!
//! The wire types are re-exported as [`protocol`] (`protocol::v1`).

mod backoff;
mod client;
mod connection;
mod core;
mod error;
mod event;
pub mod raw;
mod room_ref;
mod tls;
mod tokens;
mod transport;
mod url;

pub use backoff::ReconnectPolicy;
pub use client::{Client, ClientOptions};
pub use confab_protocol as protocol;
pub use confab_protocol::{Encoding, RoomId, Seq, v1};
pub use error::Error;
pub use event::Event;
pub use room_ref::RoomRef;
pub use tls::{Fingerprint, TlsSetup, Trust};
pub use tokens::Tokens;
pub use url::{DEFAULT_QUIC_PORT, DEFAULT_WS_PATH, Scheme, ServerUrl};

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
