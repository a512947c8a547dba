//! confab-conformance: a black-box suite that checks a server or a client
//! implementation of confab protocol v1 against `protocol/PROTOCOL.md`.
//!
//! - [`server`] plays clients against a server;
//! - [`client`] plays a scripted, adversarial server against a client,
//!   driven through the driver contract (`driver-contract.md`);
//! - each case cites the requirement ids it checks ([`spec`]) and is graded
//!   ([`outcome`]) from its checks, with its frame log as evidence
//!   ([`evidence`]);
//! - [`report`] writes the JSON index, JUnit XML and an HTML page.
//!
//! It depends on the protocol crate and the SDK only, never on the daemon.

pub mod case;
pub mod checks;
pub mod client;
pub mod evidence;
pub mod outcome;
pub mod report;
pub mod runner;
pub mod server;
pub mod spec;
pub mod wire;
