//! The server side of the session state machine: which commands each phase
//! admits, and version negotiation. Pure functions; the daemon's connection
//! driver applies them.
//!
//! ```text
//! AwaitingHello --Hello--> Unauthenticated --Register|Login|
//!                                            Authenticate|GuestLogin--> Authenticated
//! Authenticated --Logout--> Unauthenticated
//! ```
//!
//! `Ping` and `Refresh` are allowed in both later phases and change nothing.

use crate::v1::{self, ErrorCode, client_frame::Command};

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected; the first command must be `Hello`.
    AwaitingHello,
    /// Handshake done; only account commands are allowed.
    Unauthenticated,
    /// Logged in (as a user or a guest).
    Authenticated,
}

impl Phase {
    /// Whether `command` may be sent in this phase; the error says why not.
    pub fn admit(self, command: &Command) -> Result<(), v1::Error> {
        use Command::*;
        let refusal = match (self, command) {
            (Phase::AwaitingHello, Hello(_)) => return Ok(()),
            (Phase::AwaitingHello, _) => "the first command of a session must be Hello",
            (_, Hello(_)) => "Hello was already received",
            (_, Ping(_) | Refresh(_)) => return Ok(()),
            (Phase::Unauthenticated, Register(_) | Login(_) | Authenticate(_) | GuestLogin(_)) => {
                return Ok(());
            }
            (Phase::Unauthenticated, _) => "log in first (Register, Login, Authenticate or GuestLogin)",
            (Phase::Authenticated, Register(_) | Login(_) | Authenticate(_) | GuestLogin(_)) => {
                "the session is already authenticated; Logout first"
            }
            (Phase::Authenticated, _) => return Ok(()),
        };
        Err(v1::Error::new(ErrorCode::WrongState, refusal))
    }
}

/// What the server offers in the handshake.
#[derive(Clone, Debug)]
pub struct ServerOffer {
    pub feature_level: u32,
    /// Capabilities the server can enable.
    pub capabilities: Vec<String>,
}

/// The outcome of a successful `Hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub feature_level: u32,
    pub capabilities: Vec<String>,
}

/// Picks the version, feature level and capabilities for a `Hello`.
///
/// Fails with the close the server sends when no version is shared.
pub fn negotiate(hello: &v1::Hello, offer: &ServerOffer) -> Result<Negotiated, v1::Close> {
    if !hello.versions.contains(&crate::PROTOCOL_VERSION) {
        return Err(v1::Close {
            code: v1::CloseCode::UnsupportedVersion as i32,
            reason: format!(
                "this server speaks protocol version {}; the client offered {:?}",
                crate::PROTOCOL_VERSION,
                hello.versions
            ),
        });
    }
    let feature_level = match hello.feature_level {
        0 => 1,
        level => level.min(offer.feature_level),
    };
    let mut capabilities: Vec<String> =
        hello.capabilities.iter().filter(|c| offer.capabilities.contains(c)).cloned().collect();
    capabilities.sort();
    capabilities.dedup();
    Ok(Negotiated { version: crate::PROTOCOL_VERSION, feature_level, capabilities })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(versions: &[u32], level: u32, caps: &[&str]) -> v1::Hello {
        v1::Hello {
            versions: versions.to_vec(),
            feature_level: level,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            client_name: "test".into(),
        }
    }

    fn offer() -> ServerOffer {
        ServerOffer { feature_level: 1, capabilities: vec!["resume".into(), "guests".into()] }
    }

    #[test]
    fn negotiation_picks_the_shared_subset() {
        let n = negotiate(&hello(&[1, 2], 5, &["guests", "telepathy", "guests"]), &offer()).unwrap();
        assert_eq!(n, Negotiated { version: 1, feature_level: 1, capabilities: vec!["guests".into()] });
    }

    #[test]
    fn negotiation_refuses_unknown_versions_with_a_stop_code() {
        let close = negotiate(&hello(&[2, 3], 1, &[]), &offer()).unwrap_err();
        assert_eq!(close.code, v1::CloseCode::UnsupportedVersion as i32);
        assert!(!v1::CloseCode::UnsupportedVersion.is_reconnect());
        assert!(close.reason.contains("version 1"));
    }

    #[test]
    fn phases_admit_exactly_their_commands() {
        let send = Command::SendMessage(Default::default());
        let login = Command::Login(Default::default());
        let hello = Command::Hello(Default::default());
        let ping = Command::Ping(Default::default());
        let refresh = Command::Refresh(Default::default());

        let table = [
            (Phase::AwaitingHello, &hello, true),
            (Phase::AwaitingHello, &ping, false),
            (Phase::AwaitingHello, &login, false),
            (Phase::Unauthenticated, &hello, false),
            (Phase::Unauthenticated, &ping, true),
            (Phase::Unauthenticated, &login, true),
            (Phase::Unauthenticated, &refresh, true),
            (Phase::Unauthenticated, &send, false),
            (Phase::Authenticated, &login, false),
            (Phase::Authenticated, &refresh, true),
            (Phase::Authenticated, &send, true),
        ];
        for (phase, command, allowed) in table {
            let result = phase.admit(command);
            assert_eq!(result.is_ok(), allowed, "{phase:?} {command:?}: {result:?}");
            if let Err(error) = result {
                assert_eq!(error.code, ErrorCode::WrongState as i32);
            }
        }
    }
}
