//! confabd passes the server suite: every case, on every wire, against a
//! real `confabd` process. A MUST that fails here fails CI.
//!
//! The daemon is configured so the suite runs quickly: short idle and
//! handshake timeouts (so those cases run instead of being skipped) and
//! log-in limits loose enough for the many accounts the suite makes from
//! one address (the rate-limit cases lower their own).

use std::{sync::Arc, time::Duration};

use confab_conformance::{
    outcome::{Grade, Summary},
    report::{self, Report},
    server::{self, Target},
    wire::Wire,
};
use confab_sdk::Trust;
use confab_testkit::{Daemon, DaemonSpec};

const CONFIG: &str = "\
[limits]
idle_timeout_ms = 3000
ping_interval_ms = 1000
handshake_timeout_ms = 2000

[rate_limits]
logins_per_address = { per_second = 200.0, burst = 400 }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabd_passes_the_server_suite() {
    let daemon = Daemon::start_with(DaemonSpec { extra_config: CONFIG.into(), ..Default::default() });
    let mut target = Target::new(
        Some(daemon.quic_url()),
        Some(daemon.ws_url()),
        Trust::Fingerprint(daemon.fingerprint.parse().unwrap()),
        Wire::ALL.to_vec(),
    );
    target.handshake_timeout = Duration::from_millis(2000);
    let cases = server::cases();
    let outcomes = server::run(Arc::new(target), &cases, 4, Duration::from_secs(90)).await;

    let mut report = Report::new("server", daemon.ws_url(), outcomes);
    let dir = std::env::var_os("CONFAB_CONFORMANCE_REPORT")
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("confab-conformance-confabd"));
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
