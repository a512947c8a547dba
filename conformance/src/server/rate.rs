//! Request rate limits (§17 LIMIT-3; AUTH-6, SEND-3, RESUME-9a), run
//! against a server with its default limits.
//!
//! The spec does not fix the numbers, so each case sends requests of one
//! kind as fast as it can, in pipelined chunks, up to a budget, and stops
//! at the first `RATE_LIMITED`. Being limited must come with `temporary`
//! and a `retry_after_ms`; never being limited within the budget is only
//! noted.

use std::time::Duration;

use confab_sdk::v1::{self, client_frame::Command, server_frame::Body};

use super::{
    Case, Conn, Ctx, Reply,
    conn::{login_command, send_message},
    events::texts,
    show::show_reply,
};
use crate::{outcome::CaseResult, wire::Wires};

const FEATURE: &str = "Limits";

/// The most requests of one kind a case sends.
const BUDGET: usize = 400;

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "rate/sends",
            FEATURE,
            "A user sending as fast as possible is answered RATE_LIMITED, temporary, with retry_after_ms",
            &["SEND-3", "LIMIT-3", "ERR-3"],
            Wires::Once,
            sends,
        ),
        Case::new(
            "rate/guest-sends",
            FEATURE,
            "A guest sending as fast as possible is answered RATE_LIMITED, temporary, with retry_after_ms",
            &["SEND-3", "LIMIT-3"],
            Wires::Once,
            guest_sends,
        ),
        Case::new(
            "rate/logins",
            FEATURE,
            "Log-in attempts from one address as fast as possible are answered RATE_LIMITED with retry_after_ms",
            &["AUTH-6", "LIMIT-3"],
            Wires::Once,
            logins,
        ),
        Case::new(
            "rate/room-creations",
            FEATURE,
            "A user creating rooms as fast as possible is answered RATE_LIMITED, temporary, with retry_after_ms",
            &["LIMIT-3"],
            Wires::Once,
            room_creations,
        ),
        Case::new(
            "rate/resume",
            FEATURE,
            "A user sending Resume as fast as possible is answered RATE_LIMITED, temporary, with retry_after_ms",
            &["RESUME-9a", "LIMIT-3"],
            Wires::Once,
            resumes,
        ),
    ]
}

/// What hammering found.
struct Hammered {
    /// Requests sent.
    sent: usize,
    /// Replies that were not errors, or the error `expected`.
    succeeded: usize,
    /// The last `RATE_LIMITED` error, if any came.
    limited: Option<v1::Error>,
    /// How many requests were limited.
    limited_count: usize,
    /// Error replies other than `RATE_LIMITED` (besides `expected`).
    unexpected: Vec<String>,
}

/// Sends `command(i)` for i = 0, 1, ... in pipelined chunks of `chunk`,
/// up to [`BUDGET`], stopping after the first chunk with a `RATE_LIMITED`.
/// Error replies with code `expected` count as plain answers.
async fn hammer(
    conn: &mut Conn,
    chunk: usize,
    expected: Option<v1::ErrorCode>,
    mut command: impl FnMut(usize) -> Command,
) -> CaseResult<Hammered> {
    let mut found = Hammered { sent: 0, succeeded: 0, limited: None, limited_count: 0, unexpected: Vec::new() };
    while found.sent < BUDGET && found.limited.is_none() {
        let mut ids = Vec::new();
        for _ in 0..chunk.min(BUDGET - found.sent) {
            ids.push(conn.command(command(found.sent)).await?);
            found.sent += 1;
        }
        for id in ids {
            let frame = conn.reply(id).await?;
            match frame.body {
                Some(Body::Error(error)) if error.code == v1::ErrorCode::RateLimited as i32 => {
                    found.limited_count += 1;
                    found.limited = Some(error);
                }
                Some(Body::Error(error)) if expected.is_some_and(|code| error.code == code as i32) => {
                    found.succeeded += 1
                }
                Some(Body::Error(error)) => found.unexpected.push(error.to_string()),
                _ => found.succeeded += 1,
            }
        }
    }
    Ok(found)
}

/// Grades what hammering found: `requirement` (the limit of this kind) and
/// LIMIT-3 (temporary, retry_after_ms). Returns the error when limited.
fn grade(cx: &Ctx, requirement: &str, what: &str, found: &Hammered) -> Option<v1::Error> {
    if !found.unexpected.is_empty() {
        cx.note(format!("unexpected answers while sending {what}: {}", found.unexpected.join("; ")));
    }
    let Some(error) = &found.limited else {
        cx.note(format!(
            "no rate limit observed within {} {what} sent as fast as possible ({} answered); the spec does not fix the numbers",
            found.sent, found.succeeded
        ));
        return None;
    };
    cx.log().note(&format!(
        "{} {what} answered, then {} refused RATE_LIMITED out of {} sent",
        found.succeeded, found.limited_count, found.sent
    ));
    if requirement != "LIMIT-3" {
        cx.check(
            requirement,
            error.retry_after_ms > 0,
            format!(
                "{what} over the limit: RATE_LIMITED with retry_after_ms; got {error} (retry_after_ms {})",
                error.retry_after_ms
            ),
        );
    }
    cx.check(
        "LIMIT-3",
        error.temporary && error.retry_after_ms > 0,
        format!(
            "RATE_LIMITED with temporary = true and retry_after_ms > 0; got temporary = {}, retry_after_ms = {}",
            error.temporary, error.retry_after_ms
        ),
    );
    Some(error.clone())
}

/// Waits the `retry_after_ms` the server asked for, then retries once.
async fn retry_after(cx: &Ctx, conn: &mut Conn, error: &v1::Error, what: &str, command: Command) -> CaseResult<Reply> {
    let wait = Duration::from_millis(u64::from(error.retry_after_ms) + 50);
    cx.log().note(&format!("waiting {} ms as told, then retrying {what}", wait.as_millis()));
    tokio::time::sleep(wait).await;
    conn.request_once(command).await
}

async fn sends(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    let found = hammer(&mut ada, 50, None, |i| send_message(id, &format!("rate {i}"), &format!("rate-{i}"))).await?;
    let Some(error) = grade(&cx, "SEND-3", "messages", &found) else { return Ok(()) };
    let log = ada.room_log(id).await?;
    let appended = texts(&log).len();
    cx.check(
        "ERR-3",
        appended == found.succeeded,
        format!("only the {} accepted messages are appended; the log holds {appended}", found.succeeded),
    );
    let reply = retry_after(&cx, &mut ada, &error, "a send", send_message(id, "after waiting", "rate-after")).await?;
    cx.should(
        "LIMIT-3",
        matches!(reply, Ok(Body::Sent(_))),
        format!("a send after waiting retry_after_ms is accepted; got {}", show_reply(&reply)),
    );
    Ok(())
}

async fn guest_sends(cx: Ctx) -> CaseResult {
    let mut guest = cx.open("guest").await?;
    guest.guest(&cx.name("guest")).await?;
    let room = cx.new_room(&mut guest, v1::RoomKind::Public).await?;
    let id = room.room_id;
    let found = hammer(&mut guest, 25, None, |i| send_message(id, &format!("rate {i}"), &format!("rate-{i}"))).await?;
    let Some(error) = grade(&cx, "SEND-3", "guest messages", &found) else { return Ok(()) };
    let reply = retry_after(&cx, &mut guest, &error, "a send", send_message(id, "after waiting", "rate-after")).await?;
    cx.should(
        "LIMIT-3",
        matches!(reply, Ok(Body::Sent(_))),
        format!("a guest's send after waiting retry_after_ms is accepted; got {}", show_reply(&reply)),
    );
    Ok(())
}

async fn logins(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let username = cx.name("nobody");
    let found = hammer(&mut conn, 10, Some(v1::ErrorCode::InvalidCredentials), |_| {
        login_command(&username, "not the password", "conformance")
    })
    .await?;
    // No retry check here: the limit is per address, which every other
    // case running at the same time shares.
    grade(&cx, "AUTH-6", "log-in attempts", &found);
    Ok(())
}

async fn room_creations(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let names: Vec<String> = (0..BUDGET + 1).map(|_| cx.name("rate")).collect();
    let found = hammer(&mut ada, 10, None, |i| {
        Command::CreateRoom(v1::CreateRoom {
            name: names[i].clone(),
            kind: v1::RoomKind::Public as i32,
            ..Default::default()
        })
    })
    .await?;
    let Some(error) = grade(&cx, "LIMIT-3", "room creations", &found) else { return Ok(()) };
    let create = Command::CreateRoom(v1::CreateRoom {
        name: names[BUDGET].clone(),
        kind: v1::RoomKind::Public as i32,
        ..Default::default()
    });
    let reply = retry_after(&cx, &mut ada, &error, "a room creation", create).await?;
    cx.should(
        "LIMIT-3",
        matches!(reply, Ok(Body::Room(_))),
        format!("a room creation after waiting retry_after_ms succeeds; got {}", show_reply(&reply)),
    );
    Ok(())
}

async fn resumes(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let found = hammer(&mut ada, 25, None, |_| Command::Resume(v1::Resume { positions: Vec::new() })).await?;
    let Some(error) = grade(&cx, "RESUME-9a", "Resume commands", &found) else { return Ok(()) };
    let reply =
        retry_after(&cx, &mut ada, &error, "Resume", Command::Resume(v1::Resume { positions: Vec::new() })).await?;
    cx.should(
        "RESUME-9a",
        matches!(reply, Ok(Body::Resumed(_))),
        format!("a Resume after waiting retry_after_ms succeeds; got {}", show_reply(&reply)),
    );
    Ok(())
}
