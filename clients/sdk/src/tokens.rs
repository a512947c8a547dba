//! The credentials of a logged-in session, kept by the client to
//! re-authenticate after a reconnect and handed to the application to store.

use std::fmt;

use confab_protocol::v1;

/// An access token (JWT) and, for accounts, the refresh token that renews it.
///
/// `Debug` never shows the tokens themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Presented with `Authenticate` on every (re)connect.
    pub access_token: String,
    /// Unix time in milliseconds when the access token expires (0: unknown).
    pub access_expires_at_ms: u64,
    /// Traded for a new token pair when the access token has expired.
    /// Rotates on every use: the old one is dead afterwards. `None` for
    /// guests.
    pub refresh_token: Option<String>,
    /// Unix time in milliseconds when the refresh token expires (0: unknown).
    pub refresh_expires_at_ms: u64,
}

impl Tokens {
    /// Tokens from stored strings (an empty refresh token means none).
    pub fn new(access_token: impl Into<String>, refresh_token: Option<String>) -> Self {
        Tokens {
            access_token: access_token.into(),
            access_expires_at_ms: 0,
            refresh_token: refresh_token.filter(|token| !token.is_empty()),
            refresh_expires_at_ms: 0,
        }
    }

    /// The tokens an `AuthResult` carries, if it carries an access token
    /// (the answer to `Authenticate` carries none).
    pub fn from_auth(result: &v1::AuthResult) -> Option<Self> {
        if result.access_token.is_empty() {
            return None;
        }
        Some(Tokens {
            access_token: result.access_token.clone(),
            access_expires_at_ms: result.access_expires_at_ms,
            refresh_token: Some(result.refresh_token.clone()).filter(|token| !token.is_empty()),
            refresh_expires_at_ms: result.refresh_expires_at_ms,
        })
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("access_expires_at_ms", &self.access_expires_at_ms)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("refresh_expires_at_ms", &self.refresh_expires_at_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets_and_empty_refresh_means_none() {
        let tokens = Tokens::new("secret-access", Some("secret-refresh".into()));
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(Tokens::new("a", Some(String::new())).refresh_token, None);
        let guest = v1::AuthResult { access_token: "a".into(), ..Default::default() };
        assert_eq!(Tokens::from_auth(&guest).unwrap().refresh_token, None);
        assert_eq!(Tokens::from_auth(&v1::AuthResult::default()), None);
    }
}
