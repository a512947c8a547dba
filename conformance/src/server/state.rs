//! §5 The session state machine: which commands each phase admits, what
//! moves a session between phases, and that a logged-out session gets no
//! events.

use std::time::Duration;

use confab_sdk::v1::{self, ErrorCode, client_frame::Command, server_frame::Body};
use tokio::time::Instant;

use super::{
    Case, Conn, Ctx, Reply,
    conn::{by_id, hello, is_error, login_command, refresh_command},
    ctx::PASSWORD,
    show::{show_reply, show_reply_kind},
};
use crate::{outcome::CaseResult, wire::Wires};

const FEATURE: &str = "The session state machine";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "state/admission",
            FEATURE,
            "Each phase admits exactly its commands and answers the others WRONG_STATE, keeping the session open",
            &["STATE-2", "ERR-2"],
            Wires::All,
            admission,
        ),
        Case::new(
            "state/transitions",
            FEATURE,
            "Log-ins authenticate, Logout un-authenticates, Refresh and failed commands change no phase",
            &["STATE-1"],
            Wires::All,
            transitions,
        ),
        Case::new(
            "state/logout-stops-events",
            FEATURE,
            "After Logout no events are pushed, and after logging in again only once the client resumes",
            &["STATE-3"],
            Wires::All,
            logout_stops_events,
        ),
    ]
}

/// Every command, with an empty body (or a v1 Hello).
fn every_command() -> Vec<(&'static str, Command)> {
    vec![
        ("Hello", Command::Hello(hello())),
        ("Ping", Command::Ping(v1::Ping {})),
        ("Register", Command::Register(v1::Register::default())),
        ("Login", Command::Login(v1::Login::default())),
        ("Refresh", Command::Refresh(v1::Refresh::default())),
        ("Logout", Command::Logout(v1::Logout {})),
        ("Authenticate", Command::Authenticate(v1::Authenticate::default())),
        ("GuestLogin", Command::GuestLogin(v1::GuestLogin::default())),
        ("CreateRoom", Command::CreateRoom(v1::CreateRoom::default())),
        ("JoinRoom", Command::JoinRoom(v1::JoinRoom::default())),
        ("LeaveRoom", Command::LeaveRoom(v1::LeaveRoom::default())),
        ("InviteToRoom", Command::InviteToRoom(v1::InviteToRoom::default())),
        ("ListRooms", Command::ListRooms(v1::ListRooms::default())),
        ("ListMembers", Command::ListMembers(v1::ListMembers::default())),
        ("OpenDirect", Command::OpenDirect(v1::OpenDirect::default())),
        ("SendMessage", Command::SendMessage(v1::SendMessage::default())),
        ("GetHistory", Command::GetHistory(v1::GetHistory::default())),
        ("Resume", Command::Resume(v1::Resume::default())),
    ]
}

const ADMITTED_UNAUTHENTICATED: &[&str] = &["Ping", "Refresh", "Register", "Login", "Authenticate", "GuestLogin"];
const ADMITTED_AUTHENTICATED: &[&str] = &[
    "Ping",
    "Refresh",
    "Logout",
    "CreateRoom",
    "JoinRoom",
    "LeaveRoom",
    "InviteToRoom",
    "ListRooms",
    "ListMembers",
    "OpenDirect",
    "SendMessage",
    "GetHistory",
    "Resume",
];

async fn admission(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    admission_round(&cx, &mut conn, "AwaitingHello", &["Hello"], &[]).await?;
    conn.hello().await?;
    admission_round(&cx, &mut conn, "Unauthenticated", ADMITTED_UNAUTHENTICATED, &[]).await?;
    let name = cx.name("admission");
    conn.register(&name, PASSWORD).await?;
    // Logout last: it leaves the phase.
    admission_round(&cx, &mut conn, "Authenticated", ADMITTED_AUTHENTICATED, &["Logout"]).await?;
    let reply = conn.request(Command::Logout(v1::Logout {})).await?;
    cx.check(
        "STATE-2",
        !is_wrong_state(&reply),
        format!("Logout is admitted when authenticated: {}", show_reply(&reply)),
    );
    cx.check_alive("ERR-2", &mut conn, "after all those errors").await?;
    Ok(())
}

/// Sends every command but `admitted` ones listed in `skip` (and Hello in
/// AwaitingHello, which would leave the phase); checks that exactly the
/// ones not admitted are answered WRONG_STATE.
async fn admission_round(cx: &Ctx, conn: &mut Conn, phase: &str, admitted: &[&str], skip: &[&str]) -> CaseResult {
    let mut not_refused = Vec::new();
    let mut refused = Vec::new();
    let mut outside = 0;
    for (name, command) in every_command() {
        let is_admitted = admitted.contains(&name);
        if skip.contains(&name) || (phase == "AwaitingHello" && is_admitted) {
            continue;
        }
        let reply = conn.request(command).await?;
        match (is_admitted, is_wrong_state(&reply)) {
            (false, false) => not_refused.push(format!("{name}: {}", show_reply_kind(&reply))),
            (true, true) => refused.push(format!("{name}: {}", show_reply_kind(&reply))),
            _ => {}
        }
        outside += usize::from(!is_admitted);
    }
    cx.check(
        "STATE-2",
        not_refused.is_empty(),
        format!("in {phase}, the {outside} commands not admitted are answered WRONG_STATE; not: {not_refused:?}"),
    );
    if phase != "AwaitingHello" {
        cx.check(
            "STATE-2",
            refused.is_empty(),
            format!("in {phase}, the admitted commands {admitted:?} are not answered WRONG_STATE; were: {refused:?}"),
        );
    }
    Ok(())
}

fn is_wrong_state(reply: &Reply) -> bool {
    is_error(reply, ErrorCode::WrongState)
}

/// Checks whether the session is authenticated as `expected`, by whether
/// [`Conn::probe`] is refused WRONG_STATE.
async fn check_phase(cx: &Ctx, conn: &mut Conn, expected: bool, after: &str) -> CaseResult {
    let is = !is_wrong_state(&conn.probe().await?);
    let phase = |authenticated: bool| if authenticated { "Authenticated" } else { "Unauthenticated" };
    cx.check(
        "STATE-1",
        is == expected,
        format!(
            "after {after}: expected {}, found {} (ListRooms {}answered WRONG_STATE)",
            phase(expected),
            phase(is),
            if is { "not " } else { "" }
        ),
    );
    Ok(())
}

async fn transitions(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    check_phase(&cx, &mut conn, false, "Hello").await?;
    let name = cx.name("phases");
    let reply = conn.request(login_command(&name, "not the password", "conformance")).await?;
    check_phase(&cx, &mut conn, false, &format!("a Login answered {}", show_reply(&reply))).await?;
    let registered = conn.register(&name, PASSWORD).await?;
    check_phase(&cx, &mut conn, true, "Register").await?;
    let reply = conn.request(Command::JoinRoom(v1::JoinRoom { room: None })).await?;
    check_phase(&cx, &mut conn, true, &format!("a JoinRoom answered {}", show_reply(&reply))).await?;
    let reply = conn.request(refresh_command(&registered.refresh_token)).await?;
    check_phase(&cx, &mut conn, true, &format!("a Refresh when authenticated (answered {})", show_reply_kind(&reply)))
        .await?;
    let reply = conn.request(Command::Logout(v1::Logout {})).await?;
    check_phase(&cx, &mut conn, false, &format!("Logout (answered {})", show_reply_kind(&reply))).await?;
    let login = conn.login(&name, PASSWORD).await?;
    check_phase(&cx, &mut conn, true, "Login").await?;

    let mut other = cx.open("other").await?;
    let reply = other.request(refresh_command(&login.refresh_token)).await?;
    check_phase(
        &cx,
        &mut other,
        false,
        &format!("a Refresh when not logged in (answered {})", show_reply_kind(&reply)),
    )
    .await?;
    let access_token = match &reply {
        Ok(Body::Auth(auth)) => auth.access_token.clone(),
        _ => login.access_token.clone(),
    };
    other.authenticate(&access_token).await?;
    check_phase(&cx, &mut other, true, "Authenticate").await?;

    let mut guest = cx.open("guest").await?;
    if guest.offers("guests") {
        guest.guest(&cx.name("guest")).await?;
        check_phase(&cx, &mut guest, true, "GuestLogin").await?;
    } else {
        cx.log().note("the server does not admit guests: GuestLogin not tried");
    }
    Ok(())
}

async fn logout_stops_events(cx: Ctx) -> CaseResult {
    let (mut alice, alice_user) = cx.user("alice").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = alice.create_room(&cx.name("logout"), v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    alice.go_live().await?;
    alice.events_until_quiet(Duration::from_millis(300)).await?;
    bob.send_message(room.room_id, "before logout", "logout-1").await?;
    let text = next_message(&cx, &mut alice).await?;
    cx.check(
        "STATE-3",
        text.as_deref() == Some("before logout"),
        format!("after Resume, the message is pushed: {text:?}"),
    );

    alice.logout().await?;
    bob.send_message(room.room_id, "after logout", "logout-2").await?;
    let events = alice.events_until_quiet(Duration::from_millis(500)).await?;
    cx.check("STATE-3", events.is_empty(), format!("after Logout, no events are pushed: {}", events_json(&events)));

    alice.login(&alice_user.name, PASSWORD).await?;
    bob.send_message(room.room_id, "logged in again", "logout-3").await?;
    let events = alice.events_until_quiet(Duration::from_millis(500)).await?;
    cx.check(
        "STATE-3",
        events.is_empty(),
        format!("logged in again but not resumed, no events are pushed: {}", events_json(&events)),
    );
    alice.go_live().await?;
    bob.send_message(room.room_id, "resumed", "logout-4").await?;
    let text = next_message(&cx, &mut alice).await?;
    cx.check("STATE-3", text.as_deref() == Some("resumed"), format!("after Resume, events are pushed again: {text:?}"));
    Ok(())
}

/// The text of the next message event pushed (other events skipped), or
/// `None` when none comes within the reply timeout.
async fn next_message(cx: &Ctx, conn: &mut Conn) -> CaseResult<Option<String>> {
    let deadline = Instant::now() + cx.target().reply_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.event_within(left).await? {
            None => return Ok(None),
            Some(v1::RoomEvent { kind: Some(v1::room_event::Kind::Message(message)), .. }) => {
                return Ok(Some(message.text));
            }
            Some(_) => {}
        }
    }
}

fn events_json(events: &[v1::RoomEvent]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| format!("{events:?}"))
}
