//! §6 Handshake and negotiation, §7 Liveness.

use confab_sdk::v1::{self, client_frame::Command, server_frame::Body};

use super::{Case, Ctx, conn::hello};
use crate::{outcome::CaseResult, wire::Wires};

const FEATURE: &str = "Handshake and negotiation";

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
        welcome.feature_level == 1,
        format!("feature level {} for a client at 1", welcome.feature_level),
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
    cx.check("LIVE-3", matches!(reply, Ok(Body::Pong(_))), super::conn::show_reply(&reply));
    Ok(())
}
