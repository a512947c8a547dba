//! confabd passes the server suite: every case, on every wire, against a
//! real `confabd` process. A MUST that fails here fails CI.
//!
//! Three daemons: one configured so the suite runs quickly (short idle and
//! handshake timeouts, so those cases run instead of being skipped; loose
//! request limits for the many accounts and messages the suite makes from
//! one address; small file limits, so the quota is reached in a few
//! uploads); one with confabd's default request limits for the `rate/`
//! cases (the limits are enforced); and one whose tokens expire within
//! seconds for the `expiry/` cases (expired tokens are refused).
//!
//! `CONFAB_CONFORMANCE_CASES=auth/,rooms/` runs only the cases whose ids
//! start with one of those prefixes (while developing cases);
//! `CONFAB_CONFORMANCE_REPORT=DIR` keeps the report there.

use std::{path::PathBuf, sync::Arc, time::Duration};

use confab_conformance::{
    outcome::{Grade, Summary},
    report::{self, Report},
    server::{self, Case, Target},
    wire::Wire,
};
use confab_sdk::Trust;
use confab_testkit::{Daemon, DaemonSpec};

const FAST: &str = "\
[limits]
idle_timeout_ms = 3000
ping_interval_ms = 1000
handshake_timeout_ms = 2000
max_outbound_queue_bytes = 262144

[rate_limits]
logins_per_address = { per_second = 500.0, burst = 1000 }
sends_per_user = { per_second = 5000.0, burst = 10000 }
joins_per_user = { per_second = 500.0, burst = 1000 }
resumes_per_user = { per_second = 500.0, burst = 1000 }
edits_per_user = { per_second = 500.0, burst = 1000 }
typing_per_user = { per_second = 500.0, burst = 1000 }
receipts_per_user = { per_second = 500.0, burst = 1000 }
lookups_per_user = { per_second = 500.0, burst = 1000 }
uploads_per_user = { per_second = 500.0, burst = 1000 }

[files]
max_file_bytes = 1048576
quota_bytes_per_user = 4194304
";

/// The cases that run on a daemon of their own.
fn own_daemon(case: &Case) -> bool {
    case.id.starts_with("rate/") || case.id.starts_with("expiry/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_passes_the_server_suite() {
    let spec = DaemonSpec { extra_config: FAST.into(), ..Default::default() };
    check(spec, 2000, selected(|case| !own_daemon(case)), "confabd", &[Grade::Pass, Grade::Informational]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_enforces_its_default_rate_limits() {
    // Strict: a `rate/` case that sees no limit is only informational, but
    // confabd has limits and must show them.
    check(DaemonSpec::default(), 10_000, selected(|case| case.id.starts_with("rate/")), "confabd-rate", &[Grade::Pass])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_refuses_expired_tokens() {
    let spec = DaemonSpec {
        access_token_ttl_secs: Some(2),
        refresh_token_ttl_secs: Some(4),
        // The cases wait for tokens to expire with an idle timeout shorter
        // than the wait (they keep their sessions alive with pings), and
        // log-in limits loose enough not to outlast a token.
        extra_config: "[limits]\nidle_timeout_ms = 3000\nping_interval_ms = 1000\n\n\
                       [rate_limits]\nlogins_per_address = { per_second = 500.0, burst = 1000 }\n"
            .into(),
        ..Default::default()
    };
    check(spec, 10_000, selected(|case| case.id.starts_with("expiry/")), "confabd-expiry", &[Grade::Pass]).await;
}

fn selected(keep: impl Fn(&Case) -> bool) -> Vec<Case> {
    let prefixes: Vec<String> = std::env::var("CONFAB_CONFORMANCE_CASES")
        .map(|v| v.split(',').filter(|p| !p.is_empty()).map(Into::into).collect())
        .unwrap_or_default();
    server::cases()
        .into_iter()
        .filter(|case| keep(case))
        .filter(|case| prefixes.is_empty() || prefixes.iter().any(|p| case.id.starts_with(p.as_str())))
        .collect()
}

/// Runs `cases` against a daemon started with `spec`; every case must end
/// with one of the `accepted` grades (informational observations report a
/// choice the spec permits).
async fn check(spec: DaemonSpec, handshake_timeout_ms: u64, cases: Vec<Case>, name: &str, accepted: &[Grade]) {
    if cases.is_empty() {
        return;
    }
    let daemon = Daemon::start_with(spec);
    let mut target = Target::new(
        Some(daemon.quic_url()),
        Some(daemon.ws_url()),
        Trust::Fingerprint(daemon.fingerprint.parse().unwrap()),
        Wire::ALL.to_vec(),
    );
    target.handshake_timeout = Duration::from_millis(handshake_timeout_ms);
    let outcomes = server::run(Arc::new(target), &cases, 4, Duration::from_secs(90)).await;

    let mut report = Report::new("server", daemon.ws_url(), outcomes);
    let dir = match std::env::var_os("CONFAB_CONFORMANCE_REPORT") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => std::env::temp_dir().join(format!("confab-conformance-{name}-{}", std::process::id())),
    };
    report::write(&dir, &mut report).expect("write the report");

    let summary = Summary::of(&report.outcomes);
    assert!(!report.outcomes.is_empty());
    let not_passed: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| !accepted.contains(&o.grade))
        .map(|o| format!("{} [{}] {}: {}", o.case, o.wire, o.grade, report::failure_summary(o)))
        .collect();
    assert!(
        not_passed.is_empty(),
        "confabd should pass every case ({summary}); report in {}:\n{}",
        dir.display(),
        not_passed.join("\n")
    );
}
