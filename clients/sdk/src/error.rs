//! The SDK's error type: what can go wrong connecting, talking to and being
//! closed by a confab server.

use confab_protocol::v1;

use crate::tls::Fingerprint;

/// Everything an SDK call can fail with.
///
/// `Error` is `Clone` so one failure (for example the reason a client stopped
/// for good) can be handed to every request that was waiting.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The server answered the request with an error (a stable code, a
    /// message for people, and whether retrying can help).
    #[error("{0}")]
    Server(v1::Error),

    /// The server closed the session with this close code and reason.
    /// Codes 4000-4499 are followed by a reconnect; 4500-4999 are final.
    #[error("the server closed the connection: {reason} (close code {code})", code = close_code_name(*.code))]
    Closed { code: i32, reason: String },

    /// The connection dropped after the request was sent and before its
    /// reply arrived, and the request is not one the SDK retries by itself
    /// (it may or may not have been applied).
    #[error("connection lost before the reply arrived; the request may or may not have been applied")]
    ConnectionLost,

    /// The network connection failed or could not be made.
    #[error("transport error: {0}")]
    Transport(String),

    /// TLS failed: the handshake, the certificate, or the trust settings.
    #[error("TLS error: {0}")]
    Tls(String),

    /// The server's certificate is not the pinned one.
    #[error(
        "the server's certificate has fingerprint {presented}, but {expected} is pinned; \
         the certificate changed or someone is impersonating the server"
    )]
    FingerprintMismatch { expected: Fingerprint, presented: Fingerprint },

    /// No answer in time (connecting, or waiting for a reply).
    #[error("timed out waiting for the server")]
    Timeout,

    /// The server URL is not one the SDK can connect to.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A certificate fingerprint that is not 64 hex digits.
    #[error("invalid certificate fingerprint {0:?}: expected 64 hex digits (SHA-256), colons allowed")]
    InvalidFingerprint(String),

    /// The server sent something the protocol does not allow (an
    /// undecodable frame, the wrong reply to a request).
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The request would take a frame of `size` bytes, over the `limit` the
    /// server stated in `Welcome` (it would close the session): not sent.
    #[error("the request takes a frame of {size} bytes, over the server's limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },

    /// A send still waiting to go out (for a retry after a temporary error,
    /// or behind such a send) when the session logged out or logged in as
    /// another user: it was not sent, and will not be.
    #[error("the session logged out or changed user before the message could be sent; it was not sent")]
    SessionChanged,

    /// The file is over the largest file the server accepts (`Welcome`'s
    /// `limits.max_file_bytes`): not sent.
    #[error("FILE_TOO_LARGE: the file is {size} bytes, over the server's limit of {limit} bytes; it was not sent")]
    FileTooLarge { size: u64, limit: u64 },

    /// A local file could not be read (for an upload) or written (for a
    /// download).
    #[error("{0}")]
    LocalFile(String),

    /// The call is not possible in the client's current state.
    #[error("{0}")]
    InvalidState(String),

    /// The client was closed (by [`crate::Client::close`] or by dropping it).
    #[error("the client is closed")]
    ClientClosed,
}

impl Error {
    /// The server's error code, when this is an [`Error::Server`].
    ///
    /// Codes this SDK version does not know read as `ErrorCodeUnspecified`.
    pub fn server_code(&self) -> Option<v1::ErrorCode> {
        match self {
            Error::Server(error) => Some(v1::ErrorCode::try_from(error.code).unwrap_or(v1::ErrorCode::Unspecified)),
            _ => None,
        }
    }

    /// Whether this error ends a client for good, as opposed to one a
    /// reconnect may cure.
    pub(crate) fn is_permanent_connect_error(&self) -> bool {
        matches!(self, Error::Tls(_) | Error::FingerprintMismatch { .. } | Error::InvalidUrl { .. })
    }
}

impl From<v1::Error> for Error {
    fn from(error: v1::Error) -> Self {
        Error::Server(error)
    }
}

/// `SERVER_SHUTDOWN (4000)` for known codes, the number otherwise.
fn close_code_name(code: i32) -> String {
    match v1::CloseCode::try_from(code) {
        Ok(known) => format!("{} {code}", known.as_str_name()),
        Err(_) => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_codes() {
        let error = Error::Server(v1::Error::new(v1::ErrorCode::RoomNotFound, "no room named #x"));
        assert_eq!(error.to_string(), "ROOM_NOT_FOUND: no room named #x");
        assert_eq!(error.server_code(), Some(v1::ErrorCode::RoomNotFound));
        let closed = Error::Closed { code: 4502, reason: "frame too large".into() };
        assert_eq!(
            closed.to_string(),
            "the server closed the connection: frame too large (close code FRAME_TOO_LARGE 4502)"
        );
        let unknown = Error::Server(v1::Error { code: 999, ..Default::default() });
        assert_eq!(unknown.server_code(), Some(v1::ErrorCode::Unspecified));
    }
}
