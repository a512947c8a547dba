//! Accounts through the real daemon: registration, login, token refresh and
//! reuse detection, expiry, closed registration, guests.

mod support;

use std::time::Duration;

use confab_sdk::{
    Client, RoomRef,
    v1::{self, ErrorCode},
};
use support::{TestDaemon, Wire, code};

#[tokio::test]
async fn register_login_and_reconnect_with_the_access_token() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let name = format!("user{i}");
        let client = td.client(wire).await;
        let registered = client.register(&name, "correct horse battery").await.unwrap();
        assert_eq!(registered.user.as_ref().unwrap().name, name);
        assert!(!registered.access_token.is_empty() && !registered.refresh_token.is_empty());
        client.close().await;

        let again = td.client(wire).await;
        assert_eq!(code(again.login(&name, "wrong password").await), ErrorCode::InvalidCredentials);
        assert_eq!(code(again.login("nobody", "correct horse battery").await), ErrorCode::InvalidCredentials);
        let logged_in = again.login(&name, "correct horse battery").await.unwrap();
        assert_eq!(logged_in.user.unwrap().user_id, registered.user.as_ref().unwrap().user_id);

        let third = td.client(wire).await;
        let resumed = third.authenticate(&registered.access_token, None).await.unwrap();
        assert_eq!(resumed.user.unwrap().name, name);
        third.create_room(&format!("room{i}"), v1::RoomKind::Public).await.unwrap();
    }
}

#[tokio::test]
async fn names_and_passwords_are_checked() {
    let td = TestDaemon::start().await;
    let client = td.client(Wire::WsJson).await;
    assert_eq!(code(client.register("9lives", "correct horse battery").await), ErrorCode::InvalidArgument);
    assert_eq!(code(client.register("bad name", "correct horse battery").await), ErrorCode::InvalidArgument);
    assert_eq!(code(client.register("alice", "short").await), ErrorCode::InvalidArgument);
    client.register("alice", "correct horse battery").await.unwrap();
    let other = td.client(Wire::WsProto).await;
    assert_eq!(code(other.register("ALICE", "correct horse battery").await), ErrorCode::NameTaken);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::Quic, "alice").await;
    let first = alice.tokens().unwrap();

    let raw_refresh = |token: String| v1::client_frame::Command::Refresh(v1::Refresh { refresh_token: token });
    let mut raw = td.raw(Wire::WsProto).await;
    let rotated = match raw.request(raw_refresh(first.refresh_token.clone().unwrap())).await.unwrap() {
        v1::server_frame::Body::Auth(auth) => auth,
        other => panic!("{other:?}"),
    };
    assert_ne!(rotated.refresh_token, first.refresh_token.clone().unwrap());

    // The spent token again: reuse. The family is revoked...
    match raw.request(raw_refresh(first.refresh_token.clone().unwrap())).await {
        Err(confab_sdk::Error::Server(e)) => assert_eq!(e.code, ErrorCode::TokenReused as i32),
        other => panic!("{other:?}"),
    }
    // ...so the newest refresh token and the access tokens are dead too.
    match raw.request(raw_refresh(rotated.refresh_token.clone())).await {
        Err(confab_sdk::Error::Server(e)) => assert_eq!(e.code, ErrorCode::TokenInvalid as i32),
        other => panic!("{other:?}"),
    }
    let later = td.client(Wire::WsJson).await;
    assert_eq!(code(later.authenticate(&rotated.access_token, None).await), ErrorCode::TokenInvalid);
    // Alice's session, logged in with the revoked family, is ended at once.
    assert_eq!(closed_with(&alice).await, v1::CloseCode::LoginRevoked as i32);
    // A fresh login works.
    later.login("alice", "correct horse battery").await.unwrap();
}

/// The close code the server ended `client`'s session with.
async fn closed_with(client: &Client) -> i32 {
    support::within("the session to be closed", async {
        loop {
            match client.next_event().await {
                Some(confab_sdk::Event::ServerClosed { code, .. }) => return code,
                Some(_) => continue,
                None => panic!("event stream ended without a close"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn logout_revokes_the_login() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let tokens = alice.tokens().unwrap();
    // Another session of the same login, and one of another login.
    let same_login = td.client(Wire::Quic).await;
    same_login.authenticate(&tokens.access_token, None).await.unwrap();
    let other_login = td.client(Wire::WsJson).await;
    other_login.login("alice", "correct horse battery").await.unwrap();

    alice.logout().await.unwrap();
    assert_eq!(closed_with(&same_login).await, v1::CloseCode::LoginRevoked as i32);
    other_login.create_room("still-in", v1::RoomKind::Public).await.unwrap();
    assert_eq!(code(alice.create_room("x", v1::RoomKind::Public).await), ErrorCode::WrongState);
    let other = td.client(Wire::WsProto).await;
    assert_eq!(code(other.authenticate(&tokens.access_token, None).await), ErrorCode::TokenInvalid);
}

#[tokio::test]
async fn expired_and_forged_access_tokens_are_refused() {
    let td = TestDaemon::start_with(|c| c.accounts.access_token_ttl_secs = 1).await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let tokens = alice.tokens().unwrap();

    let mut forged = tokens.access_token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let client = td.client(Wire::WsProto).await;
    assert_eq!(code(client.authenticate(&forged, None).await), ErrorCode::TokenInvalid);
    assert_eq!(code(client.authenticate("not a token", None).await), ErrorCode::TokenInvalid);

    // Waiting here is the point: the token's lifetime is wall-clock time.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mut raw = td.raw(Wire::WsJson).await;
    let authenticate =
        v1::client_frame::Command::Authenticate(v1::Authenticate { access_token: tokens.access_token.clone() });
    match raw.request(authenticate).await {
        Err(confab_sdk::Error::Server(e)) => assert_eq!(e.code, ErrorCode::TokenExpired as i32),
        other => panic!("{other:?}"),
    }
    // The SDK refreshes by itself and carries on.
    let client = td.client(Wire::WsProto).await;
    client.authenticate(&tokens.access_token, tokens.refresh_token.as_deref()).await.unwrap();
    client.create_room("after-refresh", v1::RoomKind::Public).await.unwrap();
}

#[tokio::test]
async fn closed_registration_is_refused_with_a_clear_error() {
    let td = TestDaemon::start_with(|c| c.accounts.registration = confabd::config::Registration::Closed).await;
    let client = td.client(Wire::WsJson).await;
    match client.register("alice", "correct horse battery").await {
        Err(confab_sdk::Error::Server(e)) => {
            assert_eq!(e.code, ErrorCode::RegistrationClosed as i32);
            assert!(e.message.contains("closed"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_address() {
    let td = TestDaemon::start_with(|c| {
        c.rate_limits.logins_per_address = confabd::config::Rate { per_second: 0.5, burst: 3 }
    })
    .await;
    let client = td.client(Wire::WsProto).await;
    for _ in 0..3 {
        assert_eq!(code(client.login("alice", "wrong password!").await), ErrorCode::InvalidCredentials);
    }
    match client.login("alice", "wrong password!").await {
        Err(confab_sdk::Error::Server(e)) => {
            assert_eq!(e.code, ErrorCode::RateLimited as i32);
            assert!(e.temporary && e.retry_after_ms > 0, "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn guests_hold_a_unique_name_and_stay_in_public_rooms() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    alice.create_room("lobby", v1::RoomKind::Public).await.unwrap();
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();

    let guest = td.client(Wire::WsJson).await;
    let result = guest.guest("visitor").await.unwrap();
    assert!(result.user.as_ref().unwrap().guest && result.refresh_token.is_empty());
    let twin = td.client(Wire::Quic).await;
    assert_eq!(code(twin.guest("Visitor").await), ErrorCode::NameTaken);
    assert_eq!(code(twin.guest("alice").await), ErrorCode::NameTaken);
    let newcomer = td.client(Wire::Quic).await;
    assert_eq!(code(newcomer.register("visitor", "correct horse battery").await), ErrorCode::NameTaken);

    guest.join(RoomRef::from("lobby")).await.unwrap();
    guest.send("lobby", "hello from a guest").await.unwrap();
    assert_eq!(code(guest.create_room("mine", v1::RoomKind::Private).await), ErrorCode::Forbidden);
    assert_eq!(code(guest.join("secret").await), ErrorCode::RoomNotFound);
    assert_eq!(code(alice.invite("secret", "visitor").await), ErrorCode::Forbidden);
    assert_eq!(code(guest.open_direct("alice").await), ErrorCode::Forbidden);

    let members = alice.members("lobby").await.unwrap();
    let visitor = members.members.iter().find(|m| m.user.as_ref().unwrap().name == "visitor").unwrap();
    assert!(visitor.user.as_ref().unwrap().guest);

    // The name is free again once the guest is gone. Logout answers after
    // the release (a dropped connection releases it through the same
    // `forget_login`, but with nothing to wait on).
    guest.logout().await.unwrap();
    let again = td.client(Wire::Quic).await;
    again.guest("visitor").await.unwrap();
}

#[tokio::test]
async fn guests_can_be_turned_off() {
    let td = TestDaemon::start_with(|c| c.accounts.guests = false).await;
    let client: Client = td.client(Wire::WsProto).await;
    assert!(!client.welcome().unwrap().capabilities.contains(&"guests".to_string()));
    assert_eq!(code(client.guest("visitor").await), ErrorCode::GuestsDisabled);
}
