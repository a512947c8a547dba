//! §6 Handshake and negotiation, §7 Liveness.

use std::time::Duration;

use confab_sdk::{
    raw::RawReceived,
    v1::{self, CloseCode, client_frame::Command, server_frame::Body},
};
use tokio::time::Instant;

use super::{
    Case, Conn, Ctx,
    conn::{guest_command, hello, is_error},
    show::{show_frame, show_reply},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const FEATURE: &str = "Handshake and negotiation";
const LIVENESS: &str = "Liveness";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "hello/welcome",
            FEATURE,
            "Hello is answered with a Welcome that states version, feature level, capabilities, intervals and limits",
            &["HELLO-3", "HELLO-4", "FRAME-3"],
            Wires::All,
            welcome,
        ),
        Case::new(
            "hello/no-common-version",
            FEATURE,
            "A Hello with no version in common is closed with UNSUPPORTED_VERSION",
            &["HELLO-2", "CLOSE-1"],
            Wires::All,
            no_common_version,
        ),
        Case::new(
            "live/ping-pong",
            "Liveness",
            "A Ping command is answered with a Pong reply carrying its request id",
            &["LIVE-3"],
            Wires::All,
            ping_pong,
        ),
        Case::new(
            "hello/version-choice",
            FEATURE,
            "Of the versions a Hello offers, in any order, the server picks the highest it speaks",
            &["HELLO-3"],
            Wires::All,
            version_choice,
        ),
        Case::new(
            "hello/empty-versions",
            FEATURE,
            "A Hello offering no version at all is closed with UNSUPPORTED_VERSION",
            &["HELLO-2", "CLOSE-1", "QUIC-6", "WS-7"],
            Wires::All,
            empty_versions,
        ),
        Case::new(
            "hello/feature-level",
            FEATURE,
            "The feature level is the lower of the client's and the server's, a client's 0 counting as 1",
            &["HELLO-3"],
            Wires::All,
            feature_level,
        ),
        Case::new(
            "hello/capabilities",
            FEATURE,
            "Welcome lists the requested capabilities the server enabled, sorted, without duplicates or unknown ones",
            &["HELLO-3", "HELLO-4"],
            Wires::All,
            capabilities,
        ),
        Case::new(
            "hello/guests-capability",
            FEATURE,
            "GuestLogin is admitted exactly when Welcome lists the guests capability",
            &["HELLO-4"],
            Wires::Once,
            guests_capability,
        ),
        Case::new(
            "hello/handshake-timeout",
            FEATURE,
            "A session that sends no Hello within the handshake timeout is closed with HANDSHAKE_TIMEOUT",
            &["HELLO-6", "STATE-2", "CLOSE-1", "QUIC-6", "WS-7"],
            Wires::All,
            handshake_timeout,
        ),
        Case::new(
            "live/server-ping",
            LIVENESS,
            "The server pushes a Ping when it has sent nothing for ping_interval_ms",
            &["LIVE-1", "FRAME-5"],
            Wires::All,
            server_ping,
        ),
        Case::new(
            "live/idle-timeout",
            LIVENESS,
            "Frames keep a session alive; one silent for idle_timeout_ms is closed with IDLE_TIMEOUT",
            &["LIVE-2", "LIVE-4", "CLOSE-1", "QUIC-6", "WS-7"],
            Wires::All,
            idle_timeout,
        ),
    ]
}

async fn welcome(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let mut hello = hello();
    hello.capabilities = vec!["resume".into(), "resume".into(), "no-such-capability".into()];
    let request_id = conn.command(Command::Hello(hello)).await?;
    let frame = conn.frame().await?;
    cx.ensure("FRAME-3", frame.request_id == request_id, format!("reply carries request id {}", frame.request_id))?;
    let Some(Body::Welcome(welcome)) = frame.body else {
        cx.check("HELLO-3", false, format!("expected Welcome, got {frame:?}"));
        return Ok(());
    };
    cx.check("HELLO-3", welcome.version == 1, format!("version {} (expected 1)", welcome.version));
    cx.check(
        "HELLO-3",
        (1..=confab_protocol::FEATURE_LEVEL).contains(&welcome.feature_level),
        format!(
            "feature level {} for a client at {} (the lower of the two levels)",
            welcome.feature_level,
            confab_protocol::FEATURE_LEVEL
        ),
    );
    cx.check(
        "HELLO-3",
        welcome.capabilities == ["resume"],
        format!("capabilities {:?} for a request of resume twice and an unknown one", welcome.capabilities),
    );
    cx.check("HELLO-4", welcome.capabilities.iter().any(|c| c == "resume"), "resume is always enabled");
    cx.check("HELLO-3", welcome.ping_interval_ms > 0, format!("ping_interval_ms {}", welcome.ping_interval_ms));
    cx.check(
        "HELLO-3",
        welcome.idle_timeout_ms > welcome.ping_interval_ms,
        format!("idle_timeout_ms {} above ping_interval_ms {}", welcome.idle_timeout_ms, welcome.ping_interval_ms),
    );
    let limits = welcome.limits.unwrap_or_default();
    cx.check(
        "HELLO-3",
        limits.max_frame_bytes_unauthenticated > 0
            && limits.max_frame_bytes >= limits.max_frame_bytes_unauthenticated
            && limits.max_message_bytes > 0
            && limits.max_history_page > 0
            && limits.max_outbound_queue_bytes > 0,
        format!("limits {limits:?}"),
    );
    Ok(())
}

async fn no_common_version(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let hello = v1::Hello { versions: vec![99], ..hello() };
    conn.command(Command::Hello(hello)).await?;
    let closing = conn.closed().await?;
    cx.check("HELLO-2", closing.is(v1::CloseCode::UnsupportedVersion), closing.describe());
    cx.check("CLOSE-1", closing.close.is_some(), "a Close frame comes before the transport closes");
    Ok(())
}

async fn ping_pong(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let reply = conn.request(Command::Ping(v1::Ping {})).await?;
    cx.check("LIVE-3", matches!(reply, Ok(Body::Pong(_))), show_reply(&reply));
    Ok(())
}

/// Sends `hello` on a new connection and returns the frame that answers it.
async fn hello_answer(cx: &Ctx, hello: v1::Hello) -> CaseResult<(Conn, v1::ServerFrame)> {
    let mut conn = cx.connect("client").await?;
    conn.command(Command::Hello(hello)).await?;
    let answer = conn.next_answer().await?;
    Ok((conn, answer))
}

async fn version_choice(cx: Ctx) -> CaseResult {
    for versions in [vec![7, 1, 3], vec![1, 2], vec![u32::MAX, 1]] {
        let (conn, answer) = hello_answer(&cx, v1::Hello { versions: versions.clone(), ..hello() }).await?;
        let version = match &answer.body {
            Some(Body::Welcome(welcome)) => Some(welcome.version),
            _ => None,
        };
        cx.check(
            "HELLO-3",
            version == Some(1),
            format!("versions {versions:?}: expected Welcome with version 1, got {}", show_frame(&answer)),
        );
        conn.close().await;
    }
    Ok(())
}

async fn empty_versions(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    conn.command(Command::Hello(v1::Hello { versions: vec![], ..hello() })).await?;
    let closing = conn.closed().await?;
    cx.check_close("HELLO-2", &closing, CloseCode::UnsupportedVersion, "a Hello with versions []");
    Ok(())
}

async fn feature_level(cx: Ctx) -> CaseResult {
    let mut levels = Vec::new();
    for asked in [0, 1, 2, 1000] {
        let (conn, answer) = hello_answer(&cx, v1::Hello { feature_level: asked, ..hello() }).await?;
        match &answer.body {
            Some(Body::Welcome(welcome)) => levels.push((asked, welcome.feature_level)),
            _ => {
                return Err(Stop::Failed(format!(
                    "feature level {asked}: expected Welcome, got {}",
                    show_frame(&answer)
                )));
            }
        }
        conn.close().await;
    }
    let got = |asked: u32| levels.iter().find(|(a, _)| *a == asked).map_or(0, |(_, level)| *level);
    let server = got(1000);
    cx.check("HELLO-3", server >= 1, format!("a client at level 1000 gets the server's own level, {server}"));
    cx.check("HELLO-3", got(1) == 1, format!("a client at level 1 gets 1 (the server speaks at least 1): {}", got(1)));
    cx.check("HELLO-3", got(0) == 1, format!("a client at level 0 counts as 1: got {}", got(0)));
    cx.check(
        "HELLO-3",
        got(2) == server.min(2),
        format!("a client at level 2 gets the lower of 2 and the server's {server}: got {}", got(2)),
    );
    Ok(())
}

async fn capabilities(cx: Ctx) -> CaseResult {
    let (conn, answer) = hello_answer(&cx, v1::Hello { capabilities: vec![], ..hello() }).await?;
    let Some(Body::Welcome(welcome)) = &answer.body else {
        return Err(Stop::Failed(format!("expected Welcome, got {}", show_frame(&answer))));
    };
    cx.check(
        "HELLO-3",
        welcome.capabilities.is_empty(),
        format!("a client asking for no capabilities gets none: {:?}", welcome.capabilities),
    );
    conn.close().await;

    let asked: Vec<String> = ["guests", "zz-unknown", "resume", "guests", "Resume"].map(String::from).into();
    let (conn, answer) = hello_answer(&cx, v1::Hello { capabilities: asked.clone(), ..hello() }).await?;
    let Some(Body::Welcome(welcome)) = &answer.body else {
        return Err(Stop::Failed(format!("expected Welcome, got {}", show_frame(&answer))));
    };
    let got = &welcome.capabilities;
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    cx.check(
        "HELLO-3",
        *got == sorted && got.iter().all(|c| asked.contains(c)) && !got.iter().any(|c| c == "zz-unknown"),
        format!("asked for {asked:?}: expected a sorted subset without duplicates, got {got:?}"),
    );
    cx.check(
        "HELLO-4",
        got.iter().all(|c| c == "resume" || c == "guests"),
        format!("a v1 server enables only resume and guests: {got:?}"),
    );
    cx.check("HELLO-4", got.iter().any(|c| c == "resume"), format!("resume is always enabled: {got:?}"));
    conn.close().await;
    Ok(())
}

async fn guests_capability(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("guest").await?;
    let enabled = conn.offers("guests");
    let name = cx.name("guest");
    let reply = conn.request(guest_command(&name)).await?;
    let disabled = is_error(&reply, v1::ErrorCode::GuestsDisabled);
    let answered = match &reply {
        Ok(_) => "an AuthResult".to_owned(),
        Err(error) => error.to_string(),
    };
    if enabled {
        cx.check(
            "HELLO-4",
            !disabled,
            format!("Welcome lists guests, so GuestLogin is not GUESTS_DISABLED: answered {answered}"),
        );
    } else {
        cx.check(
            "HELLO-4",
            disabled,
            format!("Welcome does not list guests, so GuestLogin is GUESTS_DISABLED: answered {answered}"),
        );
    }
    Ok(())
}

async fn handshake_timeout(cx: Ctx) -> CaseResult {
    let target = cx.target();
    let wait = cx.handshake_wait()?;
    let mut conn = cx.connect("client").await?;
    // A command that is not Hello (refused) opens the QUIC stream and does
    // not stand in for Hello.
    let reply = conn.request(Command::Ping(v1::Ping {})).await?;
    cx.check(
        "STATE-2",
        is_error(&reply, v1::ErrorCode::WrongState),
        format!("a Ping before Hello: expected WRONG_STATE, got {}", show_reply(&reply)),
    );
    let closing = conn.closed_within(wait).await?;
    cx.check_close(
        "HELLO-6",
        &closing,
        CloseCode::HandshakeTimeout,
        &format!(
            "no Hello (only a refused Ping) within the handshake timeout of {} ms",
            target.handshake_timeout.as_millis()
        ),
    );
    Ok(())
}

async fn server_ping(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let welcomed = Instant::now();
    let interval = conn.ping_interval();
    let wait = interval + interval / 2 + Duration::from_millis(500);
    if wait > cx.target().max_wait {
        return Err(Stop::Skipped(format!("ping_interval_ms ({} ms) is beyond --max-wait", interval.as_millis())));
    }
    let deadline = welcomed + wait;
    let ping = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.recv_within(left).await? {
            None => break None,
            Some(RawReceived::Frame(frame)) if matches!(frame.body, Some(Body::Ping(_))) => break Some(frame),
            Some(RawReceived::Closed { code, reason }) => {
                return Err(Stop::Failed(format!("closed while waiting for a Ping (code {code:?}, {reason:?})")));
            }
            Some(_) => {}
        }
    };
    let after = welcomed.elapsed();
    cx.should(
        "LIVE-1",
        ping.is_some(),
        match &ping {
            Some(_) => format!(
                "a Ping push {} ms after Welcome (ping_interval_ms {})",
                after.as_millis(),
                interval.as_millis()
            ),
            None => format!(
                "no Ping push within {} ms of Welcome (ping_interval_ms {})",
                wait.as_millis(),
                interval.as_millis()
            ),
        },
    );
    if let Some(ping) = ping {
        cx.check(
            "FRAME-5",
            ping.request_id == 0,
            format!("the Ping is a push (request id 0): request id {}", ping.request_id),
        );
    }
    Ok(())
}

async fn idle_timeout(cx: Ctx) -> CaseResult {
    let mut conn = cx.open("client").await?;
    let idle = conn.idle_timeout();
    if idle.is_zero() || idle + Duration::from_secs(1) > cx.target().max_wait {
        return Err(Stop::Skipped(format!("idle_timeout_ms ({} ms) is beyond --max-wait", idle.as_millis())));
    }
    // Frames keep the session alive: a Ping every third of the idle timeout
    // for one and a half idle timeouts.
    let busy_until = Instant::now() + idle + idle / 2;
    let mut pings = 0;
    let mut last_sent = Instant::now();
    let mut ended = None;
    while ended.is_none() && Instant::now() < busy_until {
        tokio::time::sleep(idle / 3).await;
        last_sent = Instant::now();
        let request_id = conn.command(Command::Ping(v1::Ping {})).await?;
        match conn.reply(request_id).await {
            Ok(_) => pings += 1,
            Err(stop) => ended = Some(stop.to_string()),
        }
    }
    let every = (idle / 3).as_millis();
    cx.check(
        "LIVE-2",
        ended.is_none(),
        match &ended {
            None => format!("a session sending a Ping every {every} ms stayed open for {pings} Pings"),
            Some(why) => format!("a session sending a Ping every {every} ms was ended after {pings} Pings: {why}"),
        },
    );
    if ended.is_some() {
        return Ok(());
    }
    match conn.closed_within(idle * 2 + Duration::from_secs(1)).await {
        Err(stop) => {
            cx.check("LIVE-4", false, format!("a silent session was not closed: {stop}"));
        }
        Ok(closing) => {
            let after = last_sent.elapsed();
            cx.check(
                "LIVE-4",
                closing.is(CloseCode::IdleTimeout),
                format!("silent after its last Ping: expected IDLE_TIMEOUT; {}", closing.describe()),
            );
            cx.check(
                "LIVE-4",
                after + Duration::from_millis(100) >= idle,
                format!("closed {} ms after the last frame (idle_timeout_ms {})", after.as_millis(), idle.as_millis()),
            );
            cx.check_close_form(&closing);
        }
    }
    Ok(())
}
