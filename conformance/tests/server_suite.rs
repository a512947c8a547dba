//! confabd passes the server suite: every case, on every wire, against a
//! real `confabd` process. A MUST that fails here fails CI.
//!
//! Two daemons: one configured so the suite runs quickly (short idle and
//! handshake timeouts, so those cases run instead of being skipped; loose
//! request limits for the many accounts and messages the suite makes from
//! one address), and one with confabd's default limits for the `rate/`
//! cases, which check that those limits are enforced.
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
";

/// The cases that need confabd's default request limits.
const RATE_CASES: &str = "rate/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_passes_the_server_suite() {
    let cases = selected(|case| !case.id.starts_with(RATE_CASES));
    check(FAST, 2000, cases, "confabd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_enforces_its_default_rate_limits() {
    let cases = selected(|case| case.id.starts_with(RATE_CASES));
    check("", 10_000, cases, "confabd-rate").await;
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

async fn check(config: &str, handshake_timeout_ms: u64, cases: Vec<Case>, name: &str) {
    if cases.is_empty() {
        return;
    }
    let daemon = Daemon::start_with(DaemonSpec { extra_config: config.into(), ..Default::default() });
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
    let not_passed: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| o.grade != Grade::Pass)
        .map(|o| format!("{} [{}] {}: {}", o.case, o.wire, o.grade, report::failure_summary(o)))
        .collect();
    assert!(
        not_passed.is_empty(),
        "confabd should pass every case ({summary}); report in {}:\n{}",
        dir.display(),
        not_passed.join("\n")
    );
    assert_eq!(summary.pass, report.outcomes.len());
}
