//! Credentials: argon2id password hashes, JWT access tokens, opaque refresh
//! tokens (stored as SHA-256), and the in-memory registry of guest names.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use confab_protocol::v1;

use crate::{config::AccountsConfig, hub::SessionId, ids::UserId, outbox::Outbox, store::TokenGrant};

/// Claims of an access token. A wire format of ours, hence `Serialize`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub name: String,
    #[serde(default)]
    pub guest: bool,
    /// Refresh-token family; 0 for guests.
    #[serde(default)]
    pub fam: u64,
    pub iat: u64,
    pub exp: u64,
}

/// Why an access token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token expired; refresh it")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

pub struct Auth {
    config: AccountsConfig,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Argon2 hash of nothing in particular: verified against when a login
    /// names an unknown user, so both cases take the same time.
    dummy_hash: String,
}

impl Auth {
    pub fn new(config: AccountsConfig, secret: &[u8]) -> Self {
        let mut auth = Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            config,
            dummy_hash: String::new(),
        };
        auth.dummy_hash = auth.hash_password("confab-dummy-password").unwrap_or_default();
        auth
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = argon2::Params::new(
            self.config.argon2_memory_kib,
            self.config.argon2_iterations,
            self.config.argon2_parallelism,
            None,
        )
        .expect("validated with the config");
        Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
    }

    /// Hashes a password (slow by design: call from a blocking thread).
    pub fn hash_password(&self, password: &str) -> Result<String, argon2::password_hash::Error> {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes)?;
        Ok(self.argon2().hash_password(password.as_bytes(), &salt)?.to_string())
    }

    /// Checks a password against a stored hash, or against a dummy hash when
    /// there is none (slow by design: call from a blocking thread).
    pub fn verify_password(&self, password: &str, stored: Option<&str>) -> bool {
        let hash = stored.unwrap_or(&self.dummy_hash);
        let Ok(parsed) = PasswordHash::new(hash) else { return false };
        let ok = self.argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        ok && stored.is_some()
    }

    /// Issues an access token; returns it with its expiry (ms since epoch):
    /// the first millisecond at which [`Auth::verify_access`] refuses it.
    /// JWT times are whole seconds, so the stated expiry is one too.
    pub fn access_token(&self, user: UserId, name: &str, guest: bool, family: u64, now_ms: u64) -> (String, u64) {
        let exp = (now_ms + self.config.access_token_ttl_secs * 1000) / 1000;
        let claims =
            Claims { sub: user.0.to_string(), name: name.to_owned(), guest, fam: family, iat: now_ms / 1000, exp };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, exp * 1000)
    }

    /// Verifies an access token's signature and, against `now_ms`, its
    /// expiry: from the stated expiry on, to the millisecond, it is expired
    /// (jsonwebtoken's own check would accept it for the rest of that second).
    pub fn verify_access(&self, token: &str, now_ms: u64) -> Result<(UserId, Claims), TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|_| TokenError::Invalid)?;
        if data.claims.exp.saturating_mul(1000) <= now_ms {
            return Err(TokenError::Expired);
        }
        let user = data.claims.sub.parse().map(UserId).map_err(|_| TokenError::Invalid)?;
        Ok((user, data.claims))
    }

    /// A new refresh token: its value for the client and what to store.
    pub fn refresh_token(&self, now_ms: u64) -> (String, TokenGrant) {
        let raw: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let grant = TokenGrant {
            hash: refresh_token_hash(&token),
            expires_at_ms: now_ms + self.config.refresh_token_ttl_secs * 1000,
        };
        (token, grant)
    }
}

/// What the store keeps of a refresh token.
pub fn refresh_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `name` is a valid user, guest or room name: 1 to 32 of
/// `a-z 0-9 _ . -` (any case), starting with a letter.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Guest names, held while the guest has a session.
#[derive(Default)]
pub struct GuestNames {
    held: Mutex<HashMap<String, (UserId, usize)>>,
}

impl GuestNames {
    /// Takes `name` for `user`, or takes it once more for another session of
    /// the same guest. Fails when someone else holds it.
    pub fn claim(&self, name: &str, user: UserId) -> bool {
        let mut held = self.held.lock().expect("guest names lock");
        let (holder, sessions) = held.entry(name.to_lowercase()).or_insert((user, 0));
        if *holder != user {
            return false;
        }
        *sessions += 1;
        true
    }

    /// A session of the holder ended; the name is free after the last one.
    pub fn release(&self, name: &str, user: UserId) {
        let mut held = self.held.lock().expect("guest names lock");
        let key = name.to_lowercase();
        if let Some((holder, sessions)) = held.get_mut(&key)
            && *holder == user
        {
            *sessions -= 1;
            if *sessions == 0 {
                held.remove(&key);
            }
        }
    }

    /// The guest holding `name`, if any.
    pub fn holder(&self, name: &str) -> Option<UserId> {
        self.held.lock().expect("guest names lock").get(&name.to_lowercase()).map(|(user, _)| *user)
    }

    pub fn is_held(&self, name: &str) -> bool {
        self.held.lock().expect("guest names lock").contains_key(&name.to_lowercase())
    }
}

/// The sessions authenticated with each token family, so that revoking a
/// family ends them at once.
#[derive(Default)]
pub(crate) struct LiveLogins {
    sessions: Mutex<HashMap<u64, HashMap<SessionId, Arc<Outbox>>>>,
}

impl LiveLogins {
    pub fn add(&self, family: u64, session: SessionId, outbox: Arc<Outbox>) {
        self.sessions.lock().expect("live logins lock").entry(family).or_default().insert(session, outbox);
    }

    pub fn remove(&self, family: u64, session: SessionId) {
        let mut sessions = self.sessions.lock().expect("live logins lock");
        if let Some(of_family) = sessions.get_mut(&family) {
            of_family.remove(&session);
            if of_family.is_empty() {
                sessions.remove(&family);
            }
        }
    }

    /// Closes every session of `family` but `except` with LOGIN_REVOKED.
    pub fn revoke(&self, family: u64, except: SessionId) {
        let Some(of_family) = self.sessions.lock().expect("live logins lock").remove(&family) else { return };
        for (session, outbox) in of_family {
            if session != except {
                outbox.close(v1::Close {
                    code: v1::CloseCode::LoginRevoked as i32,
                    reason:
                        "this login was revoked (logged out elsewhere, or its refresh token was reused); log in again"
                            .into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let config = AccountsConfig { argon2_memory_kib: 64, argon2_iterations: 1, ..Default::default() };
        Auth::new(config, b"test secret")
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let auth = auth();
        let hash = auth.hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(auth.verify_password("correct horse", Some(&hash)));
        assert!(!auth.verify_password("wrong", Some(&hash)));
        assert!(!auth.verify_password("correct horse", None));
    }

    #[test]
    fn access_tokens_round_trip_and_expire() {
        let auth = auth();
        let now = crate::store::now_ms();
        let (token, expires_at_ms) = auth.access_token(UserId(7), "alice", false, 3, now);
        let (user, claims) = auth.verify_access(&token, now).unwrap();
        assert_eq!((user, claims.name.as_str(), claims.fam), (UserId(7), "alice", 3));

        // Valid up to the stated expiry, to the millisecond, and not after.
        assert!(auth.verify_access(&token, expires_at_ms - 1).is_ok());
        assert_eq!(auth.verify_access(&token, expires_at_ms).unwrap_err(), TokenError::Expired);
        assert!(expires_at_ms > now && expires_at_ms <= now + 15 * 60 * 1000);

        let other =
            Auth::new(AccountsConfig { argon2_memory_kib: 64, argon2_iterations: 1, ..Default::default() }, b"x");
        assert_eq!(other.verify_access(&token, now).unwrap_err(), TokenError::Invalid);
        assert_eq!(auth.verify_access("garbage", now).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "alice", "Bob_2", "x.y-z", &"a".repeat(32)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "_a", "a b", "é", "a@b", &"a".repeat(33)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn guest_names_are_held_until_the_last_session_ends() {
        let names = GuestNames::default();
        assert!(names.claim("Zed", UserId(1)));
        assert!(!names.claim("zed", UserId(2)));
        assert!(names.claim("zed", UserId(1)));
        names.release("zed", UserId(1));
        assert!(names.is_held("zed"));
        names.release("zed", UserId(1));
        assert!(!names.is_held("zed"));
    }
}
