//! Token lifetimes (§10.2, §10.3): the expiry times `AuthResult` states,
//! and what the server answers once they have passed.
//!
//! These cases wait for tokens to expire, so they need a server whose
//! tokens live seconds (the suite's own test configures one); a case that
//! would have to wait longer than `Target::max_wait` is skipped.
//!
//! No case compares the local clock with the server's: a case reads the
//! server's clock once, from the `created_at_ms` of a room it creates
//! ([`ServerClock`]), and times its waits from there with the local
//! monotonic clock.

use std::time::Duration;

use confab_sdk::v1::{self, ErrorCode, server_frame::Body};
use tokio::time::Instant;

use super::{
    Case, Conn, Ctx, Reply,
    auth::{guest_login_eventually, require_guests},
    conn::{is_error, refresh_command},
    ctx::PASSWORD,
    show::show_reply,
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const FEATURE: &str = "Accounts and authentication";

/// How long past a stated expiry a case waits before it presents the
/// token. Access tokens are JWTs, whose `exp` is commonly written and
/// checked in whole seconds, so a server may honour one until the second
/// after `access_expires_at_ms`.
const PAST_EXPIRY: Duration = Duration::from_secs(1);

/// How long before a stated expiry a case stops counting on the token,
/// for the time the request takes to reach the server.
const BEFORE_EXPIRY: Duration = Duration::from_millis(250);

/// How long a case keeps trying to get a `Refresh` past the log-in rate
/// limit before its refresh token expires.
const LOGIN_PATIENCE: Duration = Duration::from_secs(30);

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "expiry/token-times",
            FEATURE,
            "Log-in and Refresh state expiry times in the future, the refresh token's later than the access token's",
            &["AUTH-2", "AUTH-7"],
            Wires::Once,
            token_times,
        ),
        Case::new(
            "expiry/access-token",
            FEATURE,
            "An expired access token is refused TOKEN_EXPIRED, and a Refresh gives an access token that authenticates",
            &["AUTH-7", "AUTH-11", "ERR-1", "STATE-1"],
            Wires::Once,
            access_token,
        ),
        Case::new(
            "expiry/refresh-token",
            FEATURE,
            "An expired refresh token is refused TOKEN_EXPIRED, every time, and its session stays logged in",
            &["AUTH-8", "ERR-1", "ERR-3", "STATE-1"],
            Wires::Once,
            refresh_token,
        ),
        Case::new(
            "expiry/guest-token",
            FEATURE,
            "A guest's expired access token is refused TOKEN_EXPIRED, and the guest enters again with GuestLogin",
            &["AUTH-11", "AUTH-13", "AUTH-15", "STATE-1"],
            Wires::Once,
            guest_token,
        ),
    ]
}

async fn token_times(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("alice").await?;
    let name = cx.name("alice");
    let sent = Instant::now();
    let auth = conn.register(&name, PASSWORD).await?;
    let clock = ServerClock::read(&cx, &mut conn).await?;
    let issued = clock.at_least(sent);
    cx.check(
        "AUTH-2",
        auth.access_expires_at_ms > issued,
        format!(
            "the access token of a Register expires after it was issued (the server's clock read at least {issued} \
             when Register was sent): access_expires_at_ms {}",
            auth.access_expires_at_ms
        ),
    );
    cx.check(
        "AUTH-2",
        auth.refresh_expires_at_ms > auth.access_expires_at_ms,
        format!(
            "the refresh token is valid for longer than the access token: refresh_expires_at_ms {}, \
             access_expires_at_ms {}",
            auth.refresh_expires_at_ms, auth.access_expires_at_ms
        ),
    );

    let issued = clock.at_least(Instant::now());
    let reply = refresh_in_time(&cx, &mut conn, &clock, &name, &auth).await?;
    let Ok(Body::Auth(refreshed)) = &reply else {
        return cx.ensure("AUTH-7", false, format!("Refresh: expected AuthResult, got {}", show_reply(&reply)));
    };
    cx.check(
        "AUTH-7",
        refreshed.access_expires_at_ms > issued && refreshed.refresh_expires_at_ms > issued,
        format!(
            "the tokens of a Refresh expire after they were issued (the server's clock read at least {issued} when \
             Refresh was sent): access_expires_at_ms {}, refresh_expires_at_ms {}",
            refreshed.access_expires_at_ms, refreshed.refresh_expires_at_ms
        ),
    );
    Ok(())
}

async fn access_token(cx: Ctx) -> CaseResult {
    let mut alice = cx.open("alice").await?;
    let name = cx.name("alice");
    let auth = alice.register(&name, PASSWORD).await?;
    let user_id = auth.user.as_ref().map_or(0, |u| u.user_id);
    let clock = ServerClock::read(&cx, &mut alice).await?;
    let expired = clock.surely_past(auth.access_expires_at_ms) + PAST_EXPIRY;
    affordable(&cx, expired, "the access token to expire")?;
    alice.keep_alive_until(expired).await?;

    let mut conn = cx.open("alice").await?;
    let reply = conn.try_authenticate(&auth.access_token).await?;
    let after = format!(
        "{} ms after its stated expiry {}",
        clock.at_least(Instant::now()).saturating_sub(auth.access_expires_at_ms),
        auth.access_expires_at_ms
    );
    cx.check_refused(
        "AUTH-11",
        format!("Authenticate with an access token at least {after}"),
        &reply,
        ErrorCode::TokenExpired,
    );
    check_not_temporary(&cx, &reply, "TOKEN_EXPIRED for an expired access token");
    cx.check_logged_out("STATE-1", &mut conn, "the session refused with TOKEN_EXPIRED is still logged out").await?;
    cx.check_logged_in(
        "STATE-1",
        &mut alice,
        "the session that registered stays logged in after its access token expired (only Logout ends it)",
    )
    .await?;

    // As AUTH-11 tells a client: Refresh, then Authenticate again.
    let reply = refresh_in_time(&cx, &mut conn, &clock, &name, &auth).await?;
    let Ok(Body::Auth(fresh)) = &reply else {
        let detail = format!("Refresh after TOKEN_EXPIRED: expected AuthResult, got {}", show_reply(&reply));
        return cx.ensure("AUTH-7", false, detail);
    };
    cx.check(
        "AUTH-7",
        fresh.user.as_ref().is_some_and(|u| u.user_id == user_id)
            && !fresh.access_token.is_empty()
            && fresh.access_token != auth.access_token,
        format!(
            "after TOKEN_EXPIRED, Refresh answers the user {user_id} and a new access token: user {:?}, access token \
             {} characters",
            fresh.user,
            fresh.access_token.len()
        ),
    );
    let reply = conn.try_authenticate(&fresh.access_token).await?;
    cx.check(
        "AUTH-11",
        matches!(&reply, Ok(Body::Auth(a)) if a.user.as_ref().is_some_and(|u| u.user_id == user_id)),
        format!("Authenticate with the refreshed access token logs in as user {user_id}: {}", show_reply(&reply)),
    );
    cx.check_logged_in("AUTH-11", &mut conn, "the session is then logged in").await?;
    Ok(())
}

async fn refresh_token(cx: Ctx) -> CaseResult {
    let mut alice = cx.open("alice").await?;
    let auth = alice.register(&cx.name("alice"), PASSWORD).await?;
    let clock = ServerClock::read(&cx, &mut alice).await?;
    let expired = clock.surely_past(auth.refresh_expires_at_ms) + PAST_EXPIRY;
    affordable(&cx, expired, "the refresh token to expire")?;
    alice.keep_alive_until(expired).await?;

    let reply = alice.patiently(refresh_command(&auth.refresh_token)).await?;
    let after = format!(
        "{} ms after its stated expiry {}",
        clock.at_least(Instant::now()).saturating_sub(auth.refresh_expires_at_ms),
        auth.refresh_expires_at_ms
    );
    cx.check_refused(
        "AUTH-8",
        format!("Refresh with a refresh token at least {after}"),
        &reply,
        ErrorCode::TokenExpired,
    );
    check_not_temporary(&cx, &reply, "TOKEN_EXPIRED for an expired refresh token");
    let again = alice.patiently(refresh_command(&auth.refresh_token)).await?;
    cx.check_refused(
        "ERR-3",
        "the same expired refresh token presented again (the refused Refresh changed nothing)",
        &again,
        ErrorCode::TokenExpired,
    );
    cx.check_logged_in("STATE-1", &mut alice, "the session that presented the expired refresh token stays logged in")
        .await?;
    Ok(())
}

async fn guest_token(cx: Ctx) -> CaseResult {
    let mut guest = cx.open("guest").await?;
    require_guests(&cx, &mut guest).await?;
    let name = cx.name("guest");
    let auth = guest.guest(&name).await?;
    cx.check(
        "AUTH-13",
        auth.user.as_ref().is_some_and(|u| u.guest),
        format!("GuestLogin answers a guest: {:?}", auth.user),
    );
    let clock = ServerClock::read(&cx, &mut guest).await?;
    let expired = clock.surely_past(auth.access_expires_at_ms) + PAST_EXPIRY;
    affordable(&cx, expired, "the guest's access token to expire")?;
    guest.keep_alive_until(expired).await?;

    let mut conn = cx.open("guest").await?;
    let reply = conn.try_authenticate(&auth.access_token).await?;
    cx.check_refused(
        "AUTH-11",
        "a guest reconnecting with an expired access token, its name still held by its open session",
        &reply,
        ErrorCode::TokenExpired,
    );
    cx.check_logged_out("STATE-1", &mut conn, "the session refused with TOKEN_EXPIRED is still logged out").await?;
    cx.check_logged_in(
        "STATE-1",
        &mut guest,
        "the guest's own session stays logged in after its access token expired (only Logout ends it)",
    )
    .await?;

    guest.close().await;
    let reply = guest_login_eventually(&mut conn, &name, cx.target().reply_timeout).await?;
    let entered = match &reply {
        Ok(Body::Auth(again)) => format!("{:?}", again.user),
        other => show_reply(other),
    };
    cx.check(
        "AUTH-15",
        matches!(&reply, Ok(Body::Auth(a)) if a.user.as_ref().is_some_and(|u| u.guest && u.name == name)),
        format!("the guest whose token expired enters again with GuestLogin {name:?}: {entered}"),
    );
    Ok(())
}

// --- helpers ---

/// The server's clock, read from the `created_at_ms` of a room created
/// between `sent` and `received`, and carried forward with the local
/// monotonic clock: at a later instant the server's clock reads at least
/// `read_ms` plus the time since `received`, and at most `read_ms` plus the
/// time since `sent`.
struct ServerClock {
    read_ms: u64,
    sent: Instant,
    received: Instant,
}

impl ServerClock {
    async fn read(cx: &Ctx, conn: &mut Conn) -> CaseResult<ServerClock> {
        let sent = Instant::now();
        let room = conn.create_room(&cx.name("clock"), v1::RoomKind::Public).await?;
        let received = Instant::now();
        cx.log().note(&format!(
            "the server's clock read {} within {} ms",
            room.created_at_ms,
            (received - sent).as_millis()
        ));
        Ok(ServerClock { read_ms: room.created_at_ms, sent, received })
    }

    /// The least the server's clock can have read at `at`.
    fn at_least(&self, at: Instant) -> u64 {
        if at >= self.received {
            self.read_ms.saturating_add(millis(at - self.received))
        } else {
            self.read_ms.saturating_sub(millis(self.received - at))
        }
    }

    /// The first instant at which the server's clock surely reads `ms` or later.
    fn surely_past(&self, ms: u64) -> Instant {
        self.received + Duration::from_millis(ms.saturating_sub(self.read_ms))
    }

    /// The last instant at which the server's clock surely reads before `ms`.
    fn surely_before(&self, ms: u64) -> Instant {
        self.sent + Duration::from_millis(ms.saturating_sub(self.read_ms))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Skips the case when waiting until `until` would take longer than this
/// run may wait.
fn affordable(cx: &Ctx, until: Instant, what: &str) -> CaseResult {
    let wait = until.saturating_duration_since(Instant::now());
    let max_wait = cx.target().max_wait;
    if wait > max_wait {
        return Err(Stop::Skipped(format!(
            "waiting for {what} would take {} s, more than the {} s this run may wait",
            wait.as_secs(),
            max_wait.as_secs()
        )));
    }
    cx.log().note(&format!("waiting {} ms for {what}", wait.as_millis()));
    Ok(())
}

/// `Refresh` on `conn` with the refresh token of `auth` (a log-in of
/// `name`), waiting out `RATE_LIMITED` answers only while the token surely
/// lasts. Log-ins are limited per address, and other cases log in from this
/// one too: when the limit outlasts the token, this logs in again on a
/// connection of its own for a fresh refresh token and tries with that,
/// for up to [`LOGIN_PATIENCE`].
async fn refresh_in_time(
    cx: &Ctx,
    conn: &mut Conn,
    clock: &ServerClock,
    name: &str,
    auth: &v1::AuthResult,
) -> CaseResult<Reply> {
    let give_up = Instant::now() + LOGIN_PATIENCE;
    let (mut token, mut expires_ms) = (auth.refresh_token.clone(), auth.refresh_expires_at_ms);
    loop {
        let last_try = clock.surely_before(expires_ms).checked_sub(BEFORE_EXPIRY).unwrap_or_else(Instant::now);
        let reply = conn.patiently_until(refresh_command(&token), last_try).await?;
        if !is_error(&reply, ErrorCode::RateLimited) {
            return Ok(reply);
        }
        if Instant::now() >= give_up {
            return Err(Stop::Skipped(format!(
                "for {} s, log-ins from this address stayed rate-limited until each refresh token was about to \
                 expire: {}",
                LOGIN_PATIENCE.as_secs(),
                show_reply(&reply)
            )));
        }
        cx.log().note("rate-limited until the refresh token was about to expire; logging in again for a fresh one");
        let again = cx.open("helper").await?.login(name, PASSWORD).await?;
        (token, expires_ms) = (again.refresh_token, again.refresh_expires_at_ms);
    }
}

/// Checks that `reply`, an error, is not `temporary`: the same request
/// with the same expired token can never succeed later (ERR-1).
fn check_not_temporary(cx: &Ctx, reply: &Reply, what: &str) {
    if let Err(error) = reply {
        cx.check("ERR-1", !error.temporary, format!("{what} is not temporary: got temporary = {}", error.temporary));
    }
}
