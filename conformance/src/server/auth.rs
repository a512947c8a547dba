//! §10 Accounts and authentication: names, registration, log-in, tokens
//! (refresh rotation, reuse, revocation), log-out, and guests; with the
//! log-in and log-out phases of §5.

use std::time::Duration;

use confab_sdk::v1::{self, ErrorCode, client_frame::Command, server_frame::Body};
use tokio::time::Instant;

use super::{
    Case, Conn, Ctx, Reply,
    conn::{
        LONG_QUIET, authenticate_command, by_id, guest_command, is_error, login_command, refresh_command,
        register_command,
    },
    ctx::{PASSWORD, User},
    events::{Kind, PLAUSIBLE_MS, kind},
    rooms::{has_member, shout},
    show::{show_event, show_members, show_reply, show_result},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const FEATURE: &str = "Accounts and authentication";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "auth/register",
            FEATURE,
            "Register creates an account, stored in lowercase, and answers the user with both tokens",
            &["AUTH-1", "AUTH-2", "AUTH-4", "STATE-1"],
            Wires::All,
            register,
        ),
        Case::new(
            "auth/register-invalid-name",
            FEATURE,
            "Register refuses malformed usernames with INVALID_ARGUMENT and accepts every allowed character",
            &["AUTH-1", "AUTH-4", "LIMIT-4", "STATE-1"],
            Wires::All,
            register_invalid_name,
        ),
        Case::new(
            "auth/register-bounds",
            FEATURE,
            "Register takes passwords of 8 to 1024 bytes and device names up to 64 bytes, and nothing beyond",
            &["AUTH-4", "LIMIT-4", "ERR-3"],
            Wires::All,
            register_bounds,
        ),
        Case::new(
            "auth/name-taken",
            FEATURE,
            "A registered name cannot be registered again in any case, and the refusal changes nothing",
            &["AUTH-1", "AUTH-4", "AUTH-5", "ERR-3"],
            Wires::All,
            name_taken,
        ),
        Case::new(
            "auth/login",
            FEATURE,
            "Login answers the user with tokens of a new family, independent of the other logins",
            &["AUTH-2", "AUTH-3", "AUTH-5", "STATE-1"],
            Wires::All,
            login,
        ),
        Case::new(
            "auth/login-invalid-credentials",
            FEATURE,
            "Login answers an unknown user and a wrong password alike with INVALID_CREDENTIALS and stays logged out",
            &["AUTH-1", "AUTH-5", "LIMIT-4", "ERR-3", "STATE-1"],
            Wires::All,
            login_invalid_credentials,
        ),
        Case::new(
            "auth/refresh-rotates",
            FEATURE,
            "Refresh answers new tokens of the token's user, before or after log-in, without changing the session",
            &["AUTH-2", "AUTH-7", "AUTH-11", "STATE-1"],
            Wires::All,
            refresh_rotates,
        ),
        Case::new(
            "auth/refresh-reuse",
            FEATURE,
            "A rotated refresh token presented again is TOKEN_REUSED and revokes its whole family",
            &["AUTH-3", "AUTH-5", "AUTH-8", "AUTH-9", "AUTH-11", "STATE-1"],
            Wires::All,
            refresh_reuse,
        ),
        Case::new(
            "auth/refresh-reuse-elsewhere",
            FEATURE,
            "A token reused from a session of another login revokes the family but leaves that session logged in",
            &["AUTH-3", "AUTH-9", "STATE-1"],
            Wires::All,
            refresh_reuse_elsewhere,
        ),
        Case::new(
            "auth/refresh-invalid",
            FEATURE,
            "Refresh with an empty, malformed, unknown or altered token is TOKEN_INVALID and changes nothing",
            &["AUTH-8", "ERR-3", "STATE-1"],
            Wires::All,
            refresh_invalid,
        ),
        Case::new(
            "auth/authenticate",
            FEATURE,
            "Authenticate with an access token logs a new session in as its user and answers empty tokens",
            &["AUTH-11", "STATE-1"],
            Wires::All,
            authenticate,
        ),
        Case::new(
            "auth/authenticate-invalid",
            FEATURE,
            "Authenticate with a malformed or altered access token is TOKEN_INVALID and leaves the session logged out",
            &["AUTH-11", "ERR-3", "STATE-1"],
            Wires::All,
            authenticate_invalid,
        ),
        Case::new(
            "auth/logout",
            FEATURE,
            "Logout revokes the session's token family, closes its other sessions and returns to Unauthenticated",
            &["AUTH-3", "AUTH-8", "AUTH-11", "AUTH-12", "STATE-1"],
            Wires::All,
            logout,
        ),
        Case::new(
            "auth/logout-stops-events",
            FEATURE,
            "After Logout no room events are pushed, nor after logging in again until the session resumes",
            &["AUTH-12", "STATE-3"],
            Wires::All,
            logout_stops_events,
        ),
        Case::new(
            "auth/login-when-authenticated",
            FEATURE,
            "The log-in commands are refused in an authenticated session, with no effect",
            &["STATE-1", "STATE-2", "ERR-3"],
            Wires::All,
            login_when_authenticated,
        ),
        Case::new(
            "auth/guest-login",
            FEATURE,
            "GuestLogin enters as a guest with an access token and no refresh token",
            &["AUTH-1", "AUTH-2", "AUTH-13", "STATE-1"],
            Wires::All,
            guest_login,
        ),
        Case::new(
            "auth/guest-name-held",
            FEATURE,
            "A guest name is held against guests and registrations while a session of the guest is open, then released",
            &["AUTH-4", "AUTH-13", "AUTH-15"],
            Wires::All,
            guest_name_held,
        ),
        Case::new(
            "auth/guest-logout",
            FEATURE,
            "A guest's Logout returns the session to Unauthenticated and releases the name",
            &["AUTH-12", "AUTH-13", "AUTH-15", "STATE-1"],
            Wires::All,
            guest_logout,
        ),
        Case::new(
            "auth/guest-restrictions",
            FEATURE,
            "Guests use public rooms only: no private rooms, no direct conversations, no invitations to private rooms",
            &["AUTH-13", "AUTH-14", "ROOM-6", "ROOM-9", "ERR-3"],
            Wires::All,
            guest_restrictions,
        ),
    ]
}

// --- registration and log-in ---

async fn register(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("alice").await?;
    let name = cx.name("alice");
    let asked = shout(&name);
    let reply = conn.patiently(register_command(&asked, PASSWORD, "conformance")).await?;
    let Ok(Body::Auth(auth)) = &reply else {
        cx.check("AUTH-4", false, format!("Register {asked:?}: expected AuthResult, got {}", show_reply(&reply)));
        return Ok(());
    };
    let user = auth.user.clone().unwrap_or_default();
    cx.check(
        "AUTH-4",
        user.user_id != 0 && !user.guest,
        format!("the reply names the new user (an id, not a guest): {user:?}"),
    );
    cx.check(
        "AUTH-1",
        user.name == name,
        format!("registered as {asked:?}: the name is shown in lowercase, {name:?}; got {:?}", user.name),
    );
    check_login_tokens(&cx, "AUTH-4", auth);
    cx.check_logged_in("STATE-1", &mut conn, "after Register the session is authenticated").await?;
    Ok(())
}

async fn register_invalid_name(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let base = cx.name("");
    let too_long = format!("{base}{}", "x".repeat(33 - base.len()));
    let names = [
        "",
        "7up",
        "_alice",
        ".alice",
        "-alice",
        "al ice",
        "al@ice",
        "al#ice",
        "al/ice",
        "\u{e9}lise",
        "al\u{e9}",
        "a\u{200b}b",
    ];
    for bad in names.iter().copied().chain([too_long.as_str()]) {
        let reply = conn.patiently(register_command(bad, PASSWORD, "conformance")).await?;
        cx.check_refused(
            if bad == too_long { "LIMIT-4" } else { "AUTH-1" },
            format!("Register {bad:?}"),
            &reply,
            ErrorCode::InvalidArgument,
        );
    }
    cx.check_logged_out("STATE-1", &mut conn, "after refused Registers the session is still logged out").await?;

    // 32 characters, every kind of character allowed, some in upper case.
    let name = format!("{base}_A.b-9{}", "z".repeat(32 - base.len() - 6));
    let reply = conn.patiently(register_command(&name, PASSWORD, "conformance")).await?;
    let shown = reply_user(&reply).map(|u| u.name);
    cx.check(
        "AUTH-4",
        shown.is_some(),
        format!("Register {name:?} (32 characters of letters, digits, '_', '.', '-'): {}", show_reply(&reply)),
    );
    cx.check(
        "AUTH-1",
        shown.as_deref().is_none_or(|shown| shown == name.to_lowercase()),
        format!("the name is shown in lowercase: {shown:?}"),
    );
    Ok(())
}

async fn register_bounds(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let name = cx.name("bounds");
    // Bytes, not characters: 'é' is two bytes of UTF-8.
    let refused = [
        ("a password of 7 bytes", "1234567".to_owned(), "conformance".to_owned()),
        ("a password of 7 bytes in 4 characters", "\u{e9}\u{e9}\u{e9}a".to_owned(), "conformance".to_owned()),
        ("a password of 1025 bytes", "p".repeat(1025), "conformance".to_owned()),
        ("an empty password", String::new(), "conformance".to_owned()),
        ("a device name of 65 bytes in 33 characters", PASSWORD.to_owned(), format!("{}a", "\u{e9}".repeat(32))),
    ];
    for (what, password, device) in refused {
        let reply = conn.patiently(register_command(&name, &password, &device)).await?;
        cx.check_refused("LIMIT-4", format!("Register with {what}"), &reply, ErrorCode::InvalidArgument);
    }
    let shortest = "\u{e9}".repeat(4);
    let reply = conn.patiently(register_command(&name, &shortest, &"\u{e9}".repeat(32))).await?;
    cx.check(
        "AUTH-4",
        reply_user(&reply).is_some(),
        format!("Register with a password of 8 bytes and a device name of 64 bytes: {}", show_reply(&reply)),
    );
    cx.check(
        "ERR-3",
        !is_error(&reply, ErrorCode::NameTaken),
        "the refused Registers did not create the account (the name is still free)",
    );

    let mut other = cx.open("client").await?;
    let longest_name = cx.name("longest");
    let longest = "p".repeat(1024);
    let reply = other.patiently(register_command(&longest_name, &longest, "")).await?;
    cx.check(
        "AUTH-4",
        reply_user(&reply).is_some(),
        format!("Register with a password of 1024 bytes and no device name: {}", show_reply(&reply)),
    );
    let mut again = cx.open("client").await?;
    let reply = again.patiently(login_command(&longest_name, &longest, "conformance")).await?;
    cx.check(
        "LIMIT-4",
        reply_user(&reply).is_some(),
        format!("Login with the 1024-byte password: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn name_taken(cx: Ctx) -> CaseResult {
    let (_alice, a) = cx.user("alice").await?;
    let mut conn = cx.open("other").await?;
    for taken in [a.name.clone(), shout(&a.name), a.name.to_uppercase()] {
        let reply = conn.patiently(register_command(&taken, "another password", "conformance")).await?;
        cx.check_refused(
            "AUTH-4",
            format!("Register {taken:?} when {:?} is registered", a.name),
            &reply,
            ErrorCode::NameTaken,
        );
    }
    let reply = conn.patiently(login_command(&a.name, "another password", "conformance")).await?;
    cx.check(
        "ERR-3",
        is_error(&reply, ErrorCode::InvalidCredentials),
        format!("the refused Registers did not change the password: {}", show_reply(&reply)),
    );
    let reply = conn.patiently(login_command(&a.name.to_uppercase(), PASSWORD, "conformance")).await?;
    let user = reply_user(&reply);
    cx.check(
        "AUTH-5",
        user.as_ref().is_some_and(|u| u.user_id == a.id),
        format!("Login {:?} (upper case) logs in as user {}: {}", a.name.to_uppercase(), a.id, show_reply(&reply)),
    );
    cx.check(
        "AUTH-1",
        user.as_ref().is_some_and(|u| u.name == a.name),
        format!("the name is shown as stored, {:?}: {:?}", a.name, user.map(|u| u.name)),
    );
    Ok(())
}

async fn login(cx: Ctx) -> CaseResult {
    let (mut first, a) = cx.user("alice").await?;
    let mut second = cx.open("alice").await?;
    let reply = second.patiently(login_command(&a.name, PASSWORD, "second device")).await?;
    let Ok(Body::Auth(auth)) = &reply else {
        cx.check("AUTH-5", false, format!("Login with the right password: {}", show_reply(&reply)));
        return Ok(());
    };
    let user = auth.user.clone().unwrap_or_default();
    cx.check(
        "AUTH-5",
        user.user_id == a.id && user.name == a.name && !user.guest,
        format!("Login answers the user {} ({:?}): {user:?}", a.id, a.name),
    );
    check_login_tokens(&cx, "AUTH-5", auth);
    cx.check(
        "AUTH-5",
        auth.refresh_token != a.refresh_token,
        "Login answers a refresh token other than the registration's",
    );
    cx.check_logged_in("STATE-1", &mut second, "after Login the session is authenticated").await?;

    // A new family: logging this one out leaves the registration's alone.
    second.logout().await?;
    cx.check_logged_in("AUTH-3", &mut first, "the registration's session is untouched by the other login's Logout")
        .await?;
    let reply = cx.try_authenticate(&a.access_token).await?;
    cx.check(
        "AUTH-5",
        reply_user(&reply).is_some(),
        format!("the registration's access token still authenticates: {}", show_reply(&reply)),
    );
    let reply = first.patiently(refresh_command(&a.refresh_token)).await?;
    cx.check(
        "AUTH-5",
        matches!(&reply, Ok(Body::Auth(r)) if !r.refresh_token.is_empty()),
        format!("the registration's refresh token still refreshes: {}", show_reply(&reply)),
    );
    let reply = cx.try_authenticate(&auth.access_token).await?;
    cx.check_refused("AUTH-3", "the logged-out login's access token is refused", &reply, ErrorCode::TokenInvalid);
    Ok(())
}

async fn login_invalid_credentials(cx: Ctx) -> CaseResult {
    let (_alice, a) = cx.user("alice").await?;
    let mut conn = cx.open("client").await?;
    let unknown = conn.patiently(login_command(&cx.name("nobody"), PASSWORD, "conformance")).await?;
    let wrong = conn.patiently(login_command(&a.name, "not the password", "conformance")).await?;
    for (what, reply) in [("an unknown user", &unknown), ("a wrong password", &wrong)] {
        cx.check_refused("AUTH-5", format!("Login with {what}"), reply, ErrorCode::InvalidCredentials);
    }
    let alike = match (&unknown, &wrong) {
        (Err(u), Err(w)) => u.message == w.message && u.temporary == w.temporary,
        _ => false,
    };
    cx.check(
        "AUTH-5",
        alike,
        format!(
            "an unknown user ({}) and a wrong password ({}) get the same code and message",
            show_reply(&unknown),
            show_reply(&wrong)
        ),
    );
    for malformed in ["1alice", "al ice", ""] {
        let reply = conn.patiently(login_command(malformed, PASSWORD, "conformance")).await?;
        cx.check_refused(
            "AUTH-1",
            format!("Login with the malformed name {malformed:?}"),
            &reply,
            ErrorCode::InvalidCredentials,
        );
    }
    let reply = conn.patiently(login_command(&a.name, &"p".repeat(1025), "conformance")).await?;
    cx.check_refused("LIMIT-4", "Login with a password of 1025 bytes", &reply, ErrorCode::InvalidArgument);
    let reply = conn.patiently(login_command(&a.name, PASSWORD, &"d".repeat(65))).await?;
    cx.check_refused(
        "LIMIT-4",
        "Login with the right password and a device name of 65 bytes",
        &reply,
        ErrorCode::InvalidArgument,
    );
    let held =
        cx.check_logged_out("STATE-1", &mut conn, "after refused Logins the session is still logged out").await?;
    cx.check("ERR-3", held, "the refused Login with the right password logged nobody in");
    Ok(())
}

// --- tokens ---

async fn refresh_rotates(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let mut outside = cx.open("client").await?;
    let reply = outside.patiently(refresh_command(&a.refresh_token)).await?;
    let Ok(Body::Auth(first)) = &reply else {
        cx.check("AUTH-7", false, format!("Refresh before log-in: expected AuthResult, got {}", show_reply(&reply)));
        return Ok(());
    };
    check_refreshed(&cx, first, &a, &a.refresh_token);
    let held =
        cx.check_logged_out("AUTH-7", &mut outside, "Refresh did not log the unauthenticated session in").await?;
    cx.check("STATE-1", held, "Refresh does not change the phase");

    let reply = cx.try_authenticate(&first.access_token).await?;
    cx.check(
        "AUTH-11",
        reply_user(&reply).is_some_and(|u| u.user_id == a.id),
        format!("the refreshed access token authenticates as user {}: {}", a.id, show_reply(&reply)),
    );

    let reply = alice.patiently(refresh_command(&first.refresh_token)).await?;
    let Ok(Body::Auth(second)) = &reply else {
        cx.check("AUTH-7", false, format!("Refresh when logged in: expected AuthResult, got {}", show_reply(&reply)));
        return Ok(());
    };
    check_refreshed(&cx, second, &a, &first.refresh_token);
    cx.check_logged_in("AUTH-7", &mut alice, "Refresh left the authenticated session logged in").await?;

    // Refresh in another user's session does not change who that session is.
    let (mut bob, b) = cx.user("bob").await?;
    let reply = bob.patiently(refresh_command(&second.refresh_token)).await?;
    cx.check(
        "AUTH-7",
        reply_user(&reply).is_some_and(|u| u.user_id == a.id),
        format!("Refresh in bob's session answers the token's user, alice ({}): {}", a.id, show_reply(&reply)),
    );
    let room = bob.create_room(&cx.name("whoami"), v1::RoomKind::Public).await?;
    let members = bob.list_members(by_id(room.room_id)).await?;
    cx.check(
        "AUTH-7",
        members.len() == 1 && has_member(&members, b.id, v1::Membership::Joined, None),
        format!("bob's session is still bob's: the room it then creates has {}", show_members(&members)),
    );
    Ok(())
}

async fn refresh_reuse(cx: Ctx) -> CaseResult {
    let (mut first, a) = cx.user("alice").await?;
    let mut sibling = cx.reconnect(&a, "alice").await?;
    let mut other_login = cx.open("alice").await?;
    other_login.login(&a.name, PASSWORD).await?;

    let rotated = first.refresh(&a.refresh_token).await?;
    let reply = first.patiently(refresh_command(&a.refresh_token)).await?;
    cx.check_refused("AUTH-9", "the rotated refresh token presented again", &reply, ErrorCode::TokenReused);

    let closing = sibling.closed().await?;
    cx.check(
        "AUTH-3",
        closing.is(v1::CloseCode::LoginRevoked),
        format!("another session of the revoked family is closed with LOGIN_REVOKED: {}", closing.describe()),
    );
    cx.check_logged_out("AUTH-9", &mut first, "the presenting session, of that family, is logged out (and still open)")
        .await?;
    let reply = first.patiently(refresh_command(&rotated.refresh_token)).await?;
    cx.check_refused("AUTH-8", "the family's newest refresh token is revoked", &reply, ErrorCode::TokenInvalid);
    for (what, token) in [("newest", &rotated.access_token), ("first", &a.access_token)] {
        let reply = cx.try_authenticate(token).await?;
        cx.check_refused(
            "AUTH-11",
            format!("Authenticate with the family's {what} access token"),
            &reply,
            ErrorCode::TokenInvalid,
        );
    }
    cx.check_logged_in("AUTH-5", &mut other_login, "a session of another login (another family) stays logged in")
        .await?;
    let reply = first.patiently(login_command(&a.name, PASSWORD, "conformance")).await?;
    cx.check(
        "STATE-1",
        reply_user(&reply).is_some(),
        format!("the logged-out session may log in again: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn refresh_reuse_elsewhere(cx: Ctx) -> CaseResult {
    let (mut first, a) = cx.user("alice").await?;
    let mut other_login = cx.open("alice").await?;
    other_login.login(&a.name, PASSWORD).await?;

    other_login.refresh(&a.refresh_token).await?;
    let reply = other_login.patiently(refresh_command(&a.refresh_token)).await?;
    cx.check_refused("AUTH-9", "the rotated refresh token presented again", &reply, ErrorCode::TokenReused);
    let closing = first.closed().await?;
    cx.check(
        "AUTH-3",
        closing.is(v1::CloseCode::LoginRevoked),
        format!("the session of the revoked family is closed with LOGIN_REVOKED: {}", closing.describe()),
    );
    cx.check_logged_in("STATE-1", &mut other_login, "the presenting session, of another family, stays logged in")
        .await?;
    Ok(())
}

async fn refresh_invalid(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let mut outside = cx.open("client").await?;
    let tokens = [
        ("an empty token", String::new()),
        ("a malformed token", "not a refresh token \u{1f511}".to_owned()),
        ("an access token", a.access_token.clone()),
        ("an altered refresh token", altered(&a.refresh_token)),
        ("an overlong token", "r".repeat(4096)),
    ];
    for (what, token) in &tokens {
        for (who, conn) in [("logged out", &mut outside), ("logged in", &mut alice)] {
            let reply = conn.patiently(refresh_command(token)).await?;
            cx.check_refused("AUTH-8", format!("Refresh with {what}, {who}"), &reply, ErrorCode::TokenInvalid);
        }
    }
    cx.check_logged_out("STATE-1", &mut outside, "the logged-out session stays logged out").await?;
    cx.check_logged_in("STATE-1", &mut alice, "the logged-in session stays logged in").await?;
    let reply = outside.patiently(refresh_command(&a.refresh_token)).await?;
    cx.check(
        "ERR-3",
        matches!(reply, Ok(Body::Auth(_))),
        format!("the real refresh token still works after the refused attempts: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn authenticate(cx: Ctx) -> CaseResult {
    let (_alice, a) = cx.user("alice").await?;
    let mut conn = cx.open("alice").await?;
    let reply = conn.try_authenticate(&a.access_token).await?;
    let Ok(Body::Auth(auth)) = &reply else {
        cx.check("AUTH-11", false, format!("Authenticate: expected AuthResult, got {}", show_reply(&reply)));
        return Ok(());
    };
    let user = auth.user.clone().unwrap_or_default();
    cx.check(
        "AUTH-11",
        user.user_id == a.id && user.name == a.name && !user.guest,
        format!("Authenticate answers the token's user {} ({:?}): {user:?}", a.id, a.name),
    );
    cx.check(
        "AUTH-11",
        auth.access_token.is_empty()
            && auth.refresh_token.is_empty()
            && auth.access_expires_at_ms == 0
            && auth.refresh_expires_at_ms == 0,
        format!(
            "no new tokens: access token {} chars, refresh token {} chars, expiry times {} and {}",
            auth.access_token.len(),
            auth.refresh_token.len(),
            auth.access_expires_at_ms,
            auth.refresh_expires_at_ms
        ),
    );
    cx.check_logged_in("STATE-1", &mut conn, "after Authenticate the session is logged in").await?;
    Ok(())
}

async fn authenticate_invalid(cx: Ctx) -> CaseResult {
    let (_alice, a) = cx.user("alice").await?;
    let mut conn = cx.open("client").await?;
    let tokens = [
        ("an empty token", String::new()),
        ("a malformed token", "not.a.token".to_owned()),
        ("a refresh token", a.refresh_token.clone()),
        ("an altered access token", altered(&a.access_token)),
    ];
    for (what, token) in tokens {
        let reply = conn.try_authenticate(&token).await?;
        cx.check_refused("AUTH-11", format!("Authenticate with {what}"), &reply, ErrorCode::TokenInvalid);
    }
    cx.check_logged_out("STATE-1", &mut conn, "the session is still logged out").await?;
    let reply = conn.try_authenticate(&a.access_token).await?;
    cx.check(
        "ERR-3",
        reply_user(&reply).is_some_and(|u| u.user_id == a.id),
        format!("the same session then authenticates with the real token: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn logout(cx: Ctx) -> CaseResult {
    let (mut first, a) = cx.user("alice").await?;
    let mut sibling = cx.reconnect(&a, "alice").await?;
    let mut other_login = cx.open("alice").await?;
    other_login.login(&a.name, PASSWORD).await?;

    let reply = first.request(Command::Logout(v1::Logout {})).await?;
    cx.check("AUTH-12", matches!(reply, Ok(Body::Done(_))), format!("Logout: {}", show_reply(&reply)));
    cx.check_logged_out("AUTH-12", &mut first, "after Logout the session is Unauthenticated").await?;
    let closing = sibling.closed().await?;
    cx.check(
        "AUTH-3",
        closing.is(v1::CloseCode::LoginRevoked),
        format!("another session of the logged-out family is closed with LOGIN_REVOKED: {}", closing.describe()),
    );
    let reply = cx.try_authenticate(&a.access_token).await?;
    cx.check_refused("AUTH-11", "Authenticate with the logged-out access token", &reply, ErrorCode::TokenInvalid);
    let reply = first.patiently(refresh_command(&a.refresh_token)).await?;
    cx.check_refused("AUTH-8", "Refresh with the logged-out refresh token", &reply, ErrorCode::TokenInvalid);
    cx.check_logged_in("AUTH-3", &mut other_login, "a session of another login stays logged in").await?;
    let reply = first.patiently(login_command(&a.name, PASSWORD, "conformance")).await?;
    cx.check(
        "STATE-1",
        reply_user(&reply).is_some(),
        format!("after Logout, Login is admitted again: {}", show_reply(&reply)),
    );
    Ok(())
}

async fn logout_stops_events(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = alice.create_room(&cx.name("quiet"), v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    alice.go_live().await?;
    bob.send_message(room.room_id, "one", &cx.name("txn")).await?;
    let seen = alice.events_until_quiet(LONG_QUIET).await?;
    if !seen.iter().any(|e| kind(e) == Kind::Message) {
        return Err(Stop::Failed(format!("alice, resumed, was pushed no message before logging out: {seen:?}")));
    }

    alice.logout().await?;
    bob.send_message(room.room_id, "two", &cx.name("txn")).await?;
    let late = alice.event_within(LONG_QUIET).await?;
    cx.check(
        "AUTH-12",
        late.is_none(),
        format!("no events after Logout; got {}", late.as_ref().map_or("nothing".into(), show_event)),
    );

    alice.login(&a.name, PASSWORD).await?;
    bob.send_message(room.room_id, "three", &cx.name("txn")).await?;
    let early = alice.event_within(LONG_QUIET).await?;
    cx.check(
        "STATE-3",
        early.is_none(),
        format!(
            "no events after logging in again until Resume; got {}",
            early.as_ref().map_or("nothing".into(), show_event)
        ),
    );
    alice.go_live().await?;
    let sent = bob.send_message(room.room_id, "four", &cx.name("txn")).await?;
    let event = alice.event().await?;
    cx.check(
        "STATE-3",
        event.seq == sent.seq,
        format!("after Resume, live events flow again (expected seq {}): {}", sent.seq, show_event(&event)),
    );
    Ok(())
}

async fn login_when_authenticated(cx: Ctx) -> CaseResult {
    let (mut alice, a) = cx.user("alice").await?;
    let fresh = cx.name("fresh");
    let guest = cx.name("guest");
    let commands = [
        ("Register", register_command(&fresh, PASSWORD, "conformance")),
        ("Login", login_command(&a.name, PASSWORD, "conformance")),
        ("Authenticate", authenticate_command(&a.access_token)),
        ("GuestLogin", guest_command(&guest)),
    ];
    for (what, command) in commands {
        let reply = alice.request(command).await?;
        cx.check_refused("STATE-2", format!("{what} in an authenticated session"), &reply, ErrorCode::WrongState);
    }
    cx.check_logged_in("STATE-1", &mut alice, "the session is still logged in").await?;
    let mut other = cx.open("client").await?;
    let reply = other.patiently(register_command(&fresh, PASSWORD, "conformance")).await?;
    cx.check(
        "ERR-3",
        reply_user(&reply).is_some(),
        format!("the refused Register created no account: the name is still free: {}", show_reply(&reply)),
    );
    if other.offers("guests") {
        let mut third = cx.open("client").await?;
        let reply = third.patiently(guest_command(&guest)).await?;
        cx.check(
            "ERR-3",
            reply_user(&reply).is_some(),
            format!("the refused GuestLogin holds no name: {}", show_reply(&reply)),
        );
    }
    Ok(())
}

// --- guests ---

async fn guest_login(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("guest").await?;
    require_guests(&cx, &mut conn).await?;
    let name = cx.name("guest");
    let asked = shout(&name);
    let reply = conn.patiently(guest_command(&asked)).await?;
    let Ok(Body::Auth(auth)) = &reply else {
        cx.check("AUTH-13", false, format!("GuestLogin {asked:?}: expected AuthResult, got {}", show_reply(&reply)));
        return Ok(());
    };
    let user = auth.user.clone().unwrap_or_default();
    cx.check("AUTH-13", user.guest && user.user_id != 0, format!("the user is a guest: {user:?}"));
    cx.check("AUTH-1", user.name == name, format!("entered as {asked:?}; shown as {:?}, expected {name:?}", user.name));
    cx.check(
        "AUTH-13",
        !auth.access_token.is_empty() && auth.refresh_token.is_empty() && auth.refresh_expires_at_ms == 0,
        format!(
            "an access token and no refresh token: access token {} chars, refresh token {} chars expiring at {}",
            auth.access_token.len(),
            auth.refresh_token.len(),
            auth.refresh_expires_at_ms
        ),
    );
    cx.check(
        "AUTH-2",
        auth.access_expires_at_ms > PLAUSIBLE_MS,
        format!("access_expires_at_ms is a UNIX time in ms: {}", auth.access_expires_at_ms),
    );
    cx.check_logged_in("STATE-1", &mut conn, "after GuestLogin the session is logged in").await?;
    let mut other = cx.open("guest").await?;
    for bad in ["", "9lives", "two words", "x".repeat(33).as_str()] {
        let reply = other.patiently(guest_command(bad)).await?;
        cx.check_refused("AUTH-13", format!("GuestLogin {bad:?}"), &reply, ErrorCode::InvalidArgument);
    }
    Ok(())
}

async fn guest_name_held(cx: Ctx) -> CaseResult {
    let mut first = cx.open("guest").await?;
    require_guests(&cx, &mut first).await?;
    let name = cx.name("guest");
    let auth = first.guest(&name).await?;
    let mut other = cx.open("client").await?;

    let reply = other.patiently(guest_command(&shout(&name))).await?;
    cx.check_refused("AUTH-13", "GuestLogin with a connected guest's name", &reply, ErrorCode::NameTaken);
    let reply = other.patiently(register_command(&shout(&name), PASSWORD, "conformance")).await?;
    cx.check_refused("AUTH-4", "Register with a connected guest's name", &reply, ErrorCode::NameTaken);
    let (_alice, a) = cx.user("alice").await?;
    let reply = other.patiently(guest_command(&shout(&a.name))).await?;
    cx.check_refused("AUTH-13", "GuestLogin with a registered user's name", &reply, ErrorCode::NameTaken);

    let mut second = cx.open("guest").await?;
    let reply = second.try_authenticate(&auth.access_token).await?;
    cx.check(
        "AUTH-15",
        reply_user(&reply).is_some_and(|u| u.guest && u.name == name),
        format!("the guest opens a second session with Authenticate: {}", show_reply(&reply)),
    );
    first.close().await;
    let reply = other.patiently(guest_command(&name)).await?;
    cx.check(
        "AUTH-15",
        is_error(&reply, ErrorCode::NameTaken),
        format!("with one session of the guest still open, the name is held: {}", show_reply(&reply)),
    );

    second.close().await;
    let released = guest_login_eventually(&mut other, &name, cx.target().reply_timeout).await?;
    cx.check(
        "AUTH-15",
        reply_user(&released).is_some_and(|u| u.guest),
        format!("once the guest's last session ended, another guest takes the name: {}", show_reply(&released)),
    );
    let reply = cx.try_authenticate(&auth.access_token).await?;
    cx.check_refused(
        "AUTH-15",
        "the first guest's token, now that someone else holds the name",
        &reply,
        ErrorCode::NameTaken,
    );
    Ok(())
}

async fn guest_logout(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("guest").await?;
    require_guests(&cx, &mut conn).await?;
    let name = cx.name("guest");
    let auth = conn.guest(&name).await?;
    cx.check(
        "AUTH-13",
        auth.user.as_ref().is_some_and(|u| u.guest),
        format!("GuestLogin answers a guest: {:?}", auth.user),
    );
    let reply = conn.request(Command::Logout(v1::Logout {})).await?;
    cx.check("AUTH-12", matches!(reply, Ok(Body::Done(_))), format!("a guest's Logout: {}", show_reply(&reply)));
    cx.check_logged_out("STATE-1", &mut conn, "after Logout the session is logged out").await?;
    let mut other = cx.open("guest").await?;
    let released = guest_login_eventually(&mut other, &name, cx.target().reply_timeout).await?;
    cx.check(
        "AUTH-15",
        reply_user(&released).is_some_and(|u| u.guest),
        format!("the name is released by Logout although the connection is open: {}", show_reply(&released)),
    );
    Ok(())
}

async fn guest_restrictions(cx: Ctx) -> CaseResult {
    let mut guest = cx.open("guest").await?;
    require_guests(&cx, &mut guest).await?;
    let guest_name = cx.name("guest");
    let g = guest.guest(&guest_name).await?.user.unwrap_or_default();
    cx.check("AUTH-13", g.guest, format!("GuestLogin answers a guest: {g:?}"));
    let (mut alice, a) = cx.user("alice").await?;

    let private_name = cx.name("priv");
    let reply = guest.try_create_room(&private_name, v1::RoomKind::Private as i32).await?;
    cx.check_refused("AUTH-14", "a guest creates a PRIVATE room", &reply, ErrorCode::Forbidden);
    let reply = alice.try_create_room(&private_name, v1::RoomKind::Private as i32).await?;
    cx.check(
        "ERR-3",
        matches!(reply, Ok(Body::Room(_))),
        format!("the refused CreateRoom took no name: {}", show_reply(&reply)),
    );
    let Ok(Body::Room(private)) = reply else { return Ok(()) };

    let guest_room = guest.create_room(&cx.name("guestroom"), v1::RoomKind::Public).await;
    cx.check(
        "AUTH-14",
        guest_room.is_ok(),
        format!(
            "a guest creates a PUBLIC room: {}",
            guest_room.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())
        ),
    );
    let public = alice.create_room(&cx.name("pub"), v1::RoomKind::Public).await?;
    let joined = guest.join(by_id(public.room_id)).await.map(|_| ());
    cx.check("AUTH-14", joined.is_ok(), format!("a guest joins a PUBLIC room: {}", show_result(&joined, "done")));
    let sent = guest.send_message(public.room_id, "hello from a guest", &cx.name("txn")).await.map(|_| ());
    cx.check("AUTH-14", sent.is_ok(), format!("a guest posts in a PUBLIC room: {}", show_result(&sent, "done")));
    let page = guest.history(public.room_id, v1::HistoryDirection::Backward, 0, 0).await.map(|_| ());
    cx.check("AUTH-14", page.is_ok(), format!("a guest reads a PUBLIC room's history: {}", show_result(&page, "done")));
    let members = alice.list_members(by_id(public.room_id)).await?;
    cx.check(
        "AUTH-14",
        members.iter().any(|m| m.user.as_ref().is_some_and(|u| u.user_id == g.user_id && u.guest)),
        format!("other users see the guest marked guest: {}", show_members(&members)),
    );

    let reply = alice.try_invite(by_id(private.room_id), &guest_name).await?;
    cx.check_refused("ROOM-6", "inviting a guest to a PRIVATE room", &reply, ErrorCode::Forbidden);
    let other_public = alice.create_room(&cx.name("pub"), v1::RoomKind::Public).await?;
    let reply = alice.try_invite(by_id(other_public.room_id), &guest_name).await?;
    cx.check(
        "ROOM-6",
        matches!(reply, Ok(Body::Done(_))),
        format!("a connected guest may be invited to a PUBLIC room: {}", show_reply(&reply)),
    );

    let reply = guest.try_open_direct(&a.name).await?;
    cx.check_refused("ROOM-9", "a guest opens a direct conversation", &reply, ErrorCode::Forbidden);
    let reply = alice.try_open_direct(&guest_name).await?;
    cx.check_refused("ROOM-9", "a direct conversation with a guest", &reply, ErrorCode::Forbidden);
    let mine = alice.list_rooms(v1::RoomScope::Mine).await?;
    cx.check(
        "ERR-3",
        !mine.iter().any(|r| r.kind() == v1::RoomKind::Direct),
        "the refused OpenDirects made no DIRECT room",
    );
    Ok(())
}

// --- helpers ---

/// The user of an `AuthResult` reply.
fn reply_user(reply: &Reply) -> Option<v1::User> {
    match reply {
        Ok(Body::Auth(auth)) => auth.user.clone(),
        _ => None,
    }
}

/// The tokens of a `Register` or `Login` (AUTH-2): both present, expiry
/// times in UNIX milliseconds, the refresh token outliving the access token.
fn check_login_tokens(cx: &Ctx, requirement: &str, auth: &v1::AuthResult) {
    cx.check(
        requirement,
        !auth.access_token.is_empty() && !auth.refresh_token.is_empty(),
        format!(
            "an access token and a refresh token: {} and {} characters",
            auth.access_token.len(),
            auth.refresh_token.len()
        ),
    );
    cx.check(
        "AUTH-2",
        auth.access_expires_at_ms > PLAUSIBLE_MS && auth.refresh_expires_at_ms >= auth.access_expires_at_ms,
        format!(
            "expiry times in UNIX ms, the refresh token's no earlier: access {}, refresh {}",
            auth.access_expires_at_ms, auth.refresh_expires_at_ms
        ),
    );
}

/// A `Refresh` reply (AUTH-7): the token's user and new tokens.
fn check_refreshed(cx: &Ctx, auth: &v1::AuthResult, user: &User, presented: &str) {
    let who = auth.user.clone().unwrap_or_default();
    cx.check(
        "AUTH-7",
        who.user_id == user.id && who.name == user.name && !who.guest,
        format!("Refresh answers the token's user {} ({:?}): {who:?}", user.id, user.name),
    );
    cx.check(
        "AUTH-7",
        !auth.access_token.is_empty() && !auth.refresh_token.is_empty() && auth.refresh_token != presented,
        format!(
            "a new access token and a new refresh token: {} and {} characters, the refresh token {} the one presented",
            auth.access_token.len(),
            auth.refresh_token.len(),
            if auth.refresh_token == presented { "equal to" } else { "other than" }
        ),
    );
    cx.check(
        "AUTH-2",
        auth.access_expires_at_ms > PLAUSIBLE_MS && auth.refresh_expires_at_ms >= auth.access_expires_at_ms,
        format!(
            "expiry times in UNIX ms, the refresh token's no earlier: access {}, refresh {}",
            auth.access_expires_at_ms, auth.refresh_expires_at_ms
        ),
    );
}

/// `token` with one character changed well inside it (not next to a `.`,
/// so that a JWT segment's last character, which may carry unused bits,
/// is never the one changed).
fn altered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if chars.len() < 3 {
        return format!("{token}x");
    }
    let mut at = chars.len() / 2;
    while at > 1 && (chars[at] == '.' || chars[at + 1] == '.' || chars[at - 1] == '.') {
        at -= 1;
    }
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Goes on when the server admits guests; otherwise checks that it refuses
/// `GuestLogin` with `GUESTS_DISABLED` (AUTH-13) and stops the case as
/// unsupported.
pub(super) async fn require_guests(cx: &Ctx, conn: &mut Conn) -> CaseResult {
    if conn.offers("guests") {
        return Ok(());
    }
    let reply = conn.patiently(guest_command(&cx.name("guest"))).await?;
    cx.check_error("AUTH-13", &reply, ErrorCode::GuestsDisabled);
    Err(Stop::Unsupported("the server does not admit guests (no guests capability in Welcome)".into()))
}

/// `GuestLogin` with `name` until it is not `NAME_TAKEN` or `within` has
/// passed (a name is released when the server notices the holder's session
/// end); returns the last reply.
pub(super) async fn guest_login_eventually(conn: &mut Conn, name: &str, within: Duration) -> CaseResult<Reply> {
    let give_up = Instant::now() + within;
    loop {
        let reply = conn.patiently(guest_command(name)).await?;
        if !is_error(&reply, ErrorCode::NameTaken) || Instant::now() >= give_up {
            return Ok(reply);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
