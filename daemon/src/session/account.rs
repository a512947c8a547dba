//! Account commands: Register, Login, Refresh, Logout, Authenticate,
//! GuestLogin.

use confab_protocol::{
    session::Phase,
    v1::{self, ErrorCode, server_frame::Body},
};

use super::{Identity, Session, internal, invalid, rate_limited};
use crate::{
    auth::{TokenError, refresh_token_hash, valid_name},
    config::Registration,
    context::Context,
    context::check,
    ids::UserId,
    store::{OpOutput, Refusal, UserRecord, UserSummary, WriteOp, now_ms},
};

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;
const MAX_DEVICE_NAME: usize = 64;

/// A refused write as the client sees it.
pub(crate) fn refusal(refusal: Refusal) -> v1::Error {
    let code = match &refusal {
        Refusal::NameTaken(_) => ErrorCode::NameTaken,
        Refusal::RoomNotFound => ErrorCode::RoomNotFound,
        Refusal::UserNotFound => ErrorCode::UserNotFound,
        Refusal::NotAMember => ErrorCode::NotAMember,
        Refusal::AlreadyMember => ErrorCode::AlreadyMember,
        Refusal::Forbidden(_) => ErrorCode::Forbidden,
        Refusal::TxnConflict => ErrorCode::TxnConflict,
        Refusal::TokenInvalid => ErrorCode::TokenInvalid,
        Refusal::TokenExpired => ErrorCode::TokenExpired,
        Refusal::TokenReused { .. } => ErrorCode::TokenReused,
        Refusal::MessageNotFound(_) => ErrorCode::MessageNotFound,
        Refusal::RoomArchived => ErrorCode::RoomArchived,
        Refusal::FileNotFound(_) => ErrorCode::FileNotFound,
        Refusal::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
        Refusal::Invalid(_) => ErrorCode::InvalidArgument,
    };
    v1::Error::new(code, refusal.to_string())
}

fn check_name(field: &str, name: &str) -> Result<(), v1::Error> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(invalid(format!("{field} must be 1 to 32 characters of a-z, 0-9, '_', '.' or '-', starting with a letter")))
    }
}

/// Someone who presented a valid access token: a session's `Authenticate`,
/// an HTTP request or a QUIC upload stream.
#[derive(Clone, Debug)]
pub(crate) struct Bearer {
    pub user: UserId,
    pub record: UserRecord,
    /// The token family of the login (0 for guests).
    pub family: u64,
}

/// Checks an access token: signature and expiry, an existing account that is
/// not disabled and, for registered users, a login (token family) that was
/// not revoked. Guests pass; whoever needs more says so.
pub(crate) fn verify_bearer(ctx: &Context, token: &str) -> Result<Bearer, v1::Error> {
    let (user, claims) = ctx.auth.verify_access(token, now_ms()).map_err(|e| match e {
        TokenError::Expired => {
            v1::Error::new(ErrorCode::TokenExpired, "the access token expired; Refresh, then try again")
        }
        TokenError::Invalid => v1::Error::new(ErrorCode::TokenInvalid, "the access token is not valid"),
    })?;
    let revoked = || v1::Error::new(ErrorCode::TokenInvalid, "this login was revoked; log in again");
    let Some(record) = ctx.store.user(user).map_err(internal)? else {
        return Err(revoked());
    };
    if record.disabled {
        return Err(v1::Error::new(ErrorCode::AccountDisabled, "this account is disabled"));
    }
    if !record.is_guest() {
        let family = ctx.store.token_family(claims.fam).map_err(internal)?;
        if !family.is_some_and(|f| !f.revoked && f.user_id == user.0) {
            return Err(revoked());
        }
    }
    Ok(Bearer { user, record, family: claims.fam })
}

impl Session {
    fn limit_logins(&self) -> Result<(), v1::Error> {
        check(&self.ctx.limiters.logins, &self.peer.ip()).map_err(|wait| rate_limited(wait, "login attempts"))
    }

    /// Runs argon2 (slow by design) off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&crate::auth::Auth) -> T + Send + 'static,
    ) -> Result<T, v1::Error> {
        let ctx = self.ctx.clone();
        let _permit = self.ctx.hashing.acquire().await.expect("the hashing semaphore is never closed");
        tokio::task::spawn_blocking(move || work(&ctx.auth))
            .await
            .map_err(|_| v1::Error::temporary(ErrorCode::Internal, "password hashing failed", 1000))
    }

    /// Marks the session as logged in and answers with a fresh access token
    /// (and the refresh token, when the login made one).
    fn logged_in(&mut self, identity: Identity, refresh_token: Option<(String, u64)>) -> Body {
        let (access_token, access_expires_at_ms) =
            self.ctx.auth.access_token(identity.user, &identity.name, identity.guest, identity.family, now_ms());
        let (refresh_token, refresh_expires_at_ms) = refresh_token.unwrap_or_default();
        let user = self.enter(identity);
        Body::Auth(v1::AuthResult {
            user: Some(user),
            access_token,
            access_expires_at_ms,
            refresh_token,
            refresh_expires_at_ms,
        })
    }

    /// Moves the session to Authenticated as `identity`; answers the user
    /// as others see it (with their profile's display name and avatar).
    fn enter(&mut self, identity: Identity) -> v1::User {
        let user = match self.ctx.store.user(identity.user) {
            Ok(Some(record)) => crate::convert::user(&UserSummary::of(identity.user, &record)),
            _ => v1::User {
                user_id: identity.user.0,
                name: identity.name.clone(),
                guest: identity.guest,
                ..Default::default()
            },
        };
        tracing::Span::current().record("user_id", identity.user.0);
        tracing::info!(guest = identity.guest, "logged in");
        if identity.family != 0 {
            self.ctx.logins.add(identity.family, self.id, self.outbox.clone());
        }
        self.identity = Some(identity);
        self.phase = Phase::Authenticated;
        user
    }

    pub(super) async fn register(&mut self, register: v1::Register) -> Result<Body, v1::Error> {
        if self.ctx.config.accounts.registration == Registration::Closed {
            return Err(v1::Error::new(
                ErrorCode::RegistrationClosed,
                "registration is closed on this server; ask its operator for an account",
            ));
        }
        check_name("username", &register.username)?;
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&register.password.len()) {
            return Err(invalid(format!("password must be {MIN_PASSWORD} to {MAX_PASSWORD} bytes")));
        }
        if register.device_name.len() > MAX_DEVICE_NAME {
            return Err(invalid(format!("device_name must be at most {MAX_DEVICE_NAME} bytes")));
        }
        self.limit_logins()?;
        if self.ctx.guests.is_held(&register.username) {
            return Err(refusal(Refusal::NameTaken(register.username)));
        }
        let password = register.password;
        let password_hash = self
            .blocking(move |auth| auth.hash_password(&password))
            .await?
            .map_err(|_| v1::Error::temporary(ErrorCode::Internal, "password hashing failed", 1000))?;
        let (refresh_token, grant) = self.ctx.auth.refresh_token(now_ms());
        let expires = grant.expires_at_ms;
        let name = register.username.to_lowercase();
        let op = WriteOp::Register { name: name.clone(), password_hash, device_name: register.device_name, grant };
        match self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)? {
            OpOutput::User { user, family } => {
                let identity = Identity { user, name, guest: false, family };
                Ok(self.logged_in(identity, Some((refresh_token, expires))))
            }
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn login(&mut self, login: v1::Login) -> Result<Body, v1::Error> {
        self.limit_logins()?;
        if login.password.len() > MAX_PASSWORD || login.device_name.len() > MAX_DEVICE_NAME {
            return Err(invalid("password or device_name too long"));
        }
        let found = if valid_name(&login.username) {
            self.ctx.store.user_by_name(&login.username).map_err(internal)?
        } else {
            None
        };
        let stored_hash = found.as_ref().map(|(_, record)| record.password_hash.clone());
        let password = login.password;
        let verified = self.blocking(move |auth| auth.verify_password(&password, stored_hash.as_deref())).await?;
        let Some((user, record)) = found.filter(|_| verified) else {
            return Err(v1::Error::new(ErrorCode::InvalidCredentials, "wrong username or password"));
        };
        if record.disabled {
            return Err(v1::Error::new(ErrorCode::AccountDisabled, "this account is disabled"));
        }
        let (refresh_token, grant) = self.ctx.auth.refresh_token(now_ms());
        let expires = grant.expires_at_ms;
        let op = WriteOp::StartFamily { user, device_name: login.device_name, grant };
        match self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)? {
            OpOutput::Family { family } => {
                let identity = Identity { user, name: record.name, guest: false, family };
                Ok(self.logged_in(identity, Some((refresh_token, expires))))
            }
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn refresh(&mut self, refresh: v1::Refresh) -> Result<Body, v1::Error> {
        self.limit_logins()?;
        if refresh.refresh_token.is_empty() || refresh.refresh_token.len() > 256 {
            return Err(v1::Error::new(ErrorCode::TokenInvalid, "unknown or revoked refresh token"));
        }
        let now = now_ms();
        let (new_token, grant) = self.ctx.auth.refresh_token(now);
        let expires = grant.expires_at_ms;
        let op = WriteOp::RotateRefresh { presented: refresh_token_hash(&refresh.refresh_token), grant };
        let (user, family) = match self.ctx.writer.write(op).await.map_err(internal)? {
            Ok(OpOutput::Rotated { user, family }) => (user, family),
            Ok(other) => return Err(unexpected(other)),
            Err(reused @ Refusal::TokenReused { family }) => {
                tracing::warn!(family, "a refresh token was presented twice; its login is revoked");
                self.ctx.logins.revoke(family, self.id);
                if self.identity.as_ref().is_some_and(|i| i.family == family) {
                    self.forget_login();
                }
                return Err(refusal(reused));
            }
            Err(other) => return Err(refusal(other)),
        };
        let record = self.ctx.store.user(user).map_err(internal)?.unwrap_or_default();
        let (access_token, access_expires_at_ms) = self.ctx.auth.access_token(user, &record.name, false, family, now);
        Ok(Body::Auth(v1::AuthResult {
            user: Some(crate::convert::user(&UserSummary::of(user, &record))),
            access_token,
            access_expires_at_ms,
            refresh_token: new_token,
            refresh_expires_at_ms: expires,
        }))
    }

    pub(super) async fn logout(&mut self) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        if identity.family != 0 {
            let op = WriteOp::RevokeFamily { family: identity.family };
            self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)?;
            self.ctx.logins.revoke(identity.family, self.id);
        }
        self.forget_login();
        tracing::info!("logged out");
        Ok(Body::Done(v1::Done {}))
    }

    pub(super) async fn authenticate(&mut self, authenticate: v1::Authenticate) -> Result<Body, v1::Error> {
        let Bearer { user, record, family } = verify_bearer(&self.ctx, &authenticate.access_token)?;
        if record.is_guest() {
            let registered = self.ctx.store.user_by_name(&record.name).map_err(internal)?.is_some();
            if registered || !self.ctx.guests.claim(&record.name, user) {
                return Err(refusal(Refusal::NameTaken(record.name)));
            }
        }
        let guest = record.is_guest();
        let identity = Identity { user, name: record.name, guest, family };
        // Reconnecting clients keep their tokens: answer without new ones.
        let user = self.enter(identity);
        Ok(Body::Auth(v1::AuthResult { user: Some(user), ..Default::default() }))
    }

    pub(super) async fn guest_login(&mut self, guest: v1::GuestLogin) -> Result<Body, v1::Error> {
        if !self.ctx.config.accounts.guests {
            return Err(v1::Error::new(
                ErrorCode::GuestsDisabled,
                "this server does not admit guests; register instead",
            ));
        }
        check_name("display_name", &guest.display_name)?;
        let name = guest.display_name.to_lowercase();
        self.limit_logins()?;
        let taken = || refusal(Refusal::NameTaken(name.clone()));
        if self.ctx.guests.is_held(&name) || self.ctx.store.user_by_name(&name).map_err(internal)?.is_some() {
            return Err(taken());
        }
        let op = WriteOp::CreateGuest { name: name.clone() };
        let user = match self.ctx.writer.write(op).await.map_err(internal)?.map_err(refusal)? {
            OpOutput::User { user, .. } => user,
            other => return Err(unexpected(other)),
        };
        // Another guest may have taken the name meanwhile; the account just
        // created then stays unused.
        if !self.ctx.guests.claim(&name, user) {
            return Err(taken());
        }
        let identity = Identity { user, name, guest: true, family: 0 };
        Ok(self.logged_in(identity, None))
    }

    /// A registered user or a connected guest, by name.
    pub(crate) fn find_user(&self, name: &str) -> Result<UserId, v1::Error> {
        let not_found = || v1::Error::new(ErrorCode::UserNotFound, format!("no user named {name:?}"));
        if !valid_name(name) {
            return Err(not_found());
        }
        if let Some((user, _)) = self.ctx.store.user_by_name(name).map_err(internal)? {
            return Ok(user);
        }
        self.ctx.guests.holder(name).ok_or_else(not_found)
    }
}

/// A write answered with an output that does not fit its operation: a bug.
pub(crate) fn unexpected(output: OpOutput) -> v1::Error {
    tracing::error!(?output, "unexpected write output");
    v1::Error::temporary(ErrorCode::Internal, "internal error", 1000)
}
