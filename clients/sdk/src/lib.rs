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
//! - Feature level 2: typed calls for rich sends ([`Client::send_with`] and
//!   [`SendOptions`]: replies, threads, attachments, locations), edits,
//!   deletions, reactions, threads, room settings ([`RoomUpdate`]) and
//!   groups, notification levels, read markers, receipts, typing,
//!   presence, profiles ([`ProfileUpdate`]) and search; the pushes that go
//!   with them arrive as [`Event`]s (`ReadState`, `Receipt`, `Typing`,
//!   `Presence`, `Notification`). A rich send is retried like a plain one:
//!   whole, with its transaction id, in order.
//! - Files: [`Client::upload_file`] streams a file to the server (over an
//!   upload stream of the QUIC connection, or HTTP `POST /files` beside a
//!   WebSocket) and [`Client::download`] streams one back (HTTP
//!   `GET /files/{id}`; see [`ClientOptions::files_url`]), both reporting
//!   [`Progress`] to a callback.
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
mod requests;
mod room_ref;
mod tls;
mod tokens;
mod transfer;
mod transport;
mod url;

pub use backoff::ReconnectPolicy;
pub use client::{Client, ClientOptions};
pub use confab_protocol as protocol;
pub use confab_protocol::{Encoding, RoomId, Seq, v1};
pub use error::Error;
pub use event::Event;
pub use requests::{ProfileUpdate, RoomUpdate, SendOptions};
pub use room_ref::RoomRef;
pub use tls::{Fingerprint, TlsSetup, Trust};
pub use tokens::Tokens;
pub use transfer::{Download, Progress};
pub use url::{DEFAULT_QUIC_PORT, DEFAULT_WS_PATH, Scheme, ServerUrl};

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
