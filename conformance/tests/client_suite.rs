//! The SDK passes the client suite: its reference driver
//! (`confab-sdk-driver`, built by `cargo build --workspace`) plays every
//! client case on every wire, and every case must pass, so a regression of
//! the SDK fails CI. And the suite can fail: a driver that supports nothing
//! is graded unsupported (and the binary exits 1 for it), a missing, a
//! broken and a lying one are failed.
//!
//! `CONFAB_CONFORMANCE_CASES=resume/,close/` runs only the cases whose ids
//! start with one of those prefixes; `CONFAB_CONFORMANCE_REPORT=DIR` keeps
//! the report there.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use confab_conformance::{
    client::{self, CONTRACT_CASE, Case, Target},
    outcome::{Grade, Outcome, Summary},
    report::{self, Report},
    wire::Wire,
};

/// `target/<profile>/confab-sdk-driver`, next to the directory of this test
/// executable (`target/<profile>/deps/NAME-HASH`), as `cargo build
/// --workspace` leaves it. The conformance crate cannot ask cargo to build
/// another package's binary for its tests.
fn sdk_driver() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let dir = exe.parent().and_then(Path::parent).expect("the test executable lives in target/<profile>/deps");
    let path = dir.join(format!("confab-sdk-driver{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the SDK's driver is not at {}; build it first with `cargo build -p confab-sdk --bin confab-sdk-driver` \
         (`cargo build --workspace` and scripts/test build it too)",
        path.display()
    );
    path
}

fn selected() -> Vec<Case> {
    let prefixes: Vec<String> = std::env::var("CONFAB_CONFORMANCE_CASES")
        .map(|v| v.split(',').filter(|p| !p.is_empty()).map(Into::into).collect())
        .unwrap_or_default();
    client::cases()
        .into_iter()
        .filter(|case| prefixes.is_empty() || prefixes.iter().any(|p| case.id.starts_with(p.as_str())))
        .collect()
}

/// A few cases, for the drivers that are expected to get nowhere.
fn sample() -> Vec<Case> {
    client::cases()
        .into_iter()
        .filter(|case| ["hello/first-frame", "resume/gap", "close/stop-range"].contains(&case.id))
        .collect()
}

async fn run(exec: &str, cases: &[Case], name: &str) -> Vec<Outcome> {
    let mut target = Target::new(exec, Wire::ALL.to_vec()).expect("the scripted server's certificate");
    if !exec.ends_with("confab-sdk-driver") {
        // The drivers expected to get nowhere need not be waited for long.
        target.answer_timeout = Duration::from_secs(3);
    }
    let outcomes = client::run(Arc::new(target), cases, 6, Duration::from_secs(90)).await;
    let mut report = Report::new("client", exec.into(), outcomes);
    let dir = match std::env::var_os("CONFAB_CONFORMANCE_REPORT") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => std::env::temp_dir().join(format!("confab-conformance-{name}-{}", std::process::id())),
    };
    report::write(&dir, &mut report).expect("write the report");
    eprintln!("{name}: {} (report in {})", Summary::of(&report.outcomes), dir.display());
    report.outcomes
}

fn describe(outcomes: &[&Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| format!("{} [{}] {}: {}", o.case, o.wire, o.grade, report::failure_summary(o)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sdk_driver_passes_every_client_case() {
    let cases = selected();
    let driver = sdk_driver();
    let outcomes = run(&driver.display().to_string(), &cases, "sdk-driver").await;
    let not_passed: Vec<&Outcome> = outcomes.iter().filter(|o| o.grade != Grade::Pass).collect();
    assert!(not_passed.is_empty(), "the SDK's driver should pass every client case:\n{}", describe(&not_passed));
    // The contract check, then each case once per wire it applies to.
    let runs: usize = cases.iter().map(|c| c.wires.select(&Wire::ALL).len()).sum();
    assert_eq!(outcomes.len(), runs + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_supports_nothing_is_graded_unsupported() {
    let outcomes = run("exit 127", &sample(), "unsupported-driver").await;
    let (contract, cases) = outcomes.split_first().expect("the contract check comes first");
    assert_eq!(contract.case, CONTRACT_CASE);
    assert_eq!(contract.grade, Grade::Pass, "exit 127 for an unknown case is the contract");
    assert!(!cases.is_empty());
    let other: Vec<&Outcome> = cases.iter().filter(|o| o.grade != Grade::Unsupported).collect();
    assert!(other.is_empty(), "every case should be unsupported:\n{}", describe(&other));
    assert_eq!(Summary::of(&outcomes).pass, 1, "only the contract check passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_driver_fails() {
    let outcomes = run("echo 'about to fail' >&2; exit 3", &sample(), "broken-driver").await;
    let passed: Vec<&Outcome> = outcomes.iter().filter(|o| o.grade != Grade::Fail).collect();
    assert!(passed.is_empty(), "a driver that exits 3 must fail everything:\n{}", describe(&passed));
    assert!(!Summary::of(&outcomes).conforms());
    assert!(outcomes[1].log.contains("about to fail"), "stderr is evidence:\n{}", outcomes[1].log);
}

/// A driver that honours 127 and answers every command with a plausible
/// line, without ever connecting.
const LIAR: &str = r#"
case "$CONFAB_CASE" in */*) ;; *) exit 127 ;; esac
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  case "$line" in
    *'"quit"'*) exit 0 ;;
    *'"connect"'*) printf '{"type":"connected","id":"%s"}\n' "$id" ;;
    *'"send"'*) printf '{"type":"sent","id":"%s","room_id":"7","epoch":"1","seq":"3","duplicate":false}\n' "$id" ;;
    *) printf '{"type":"error","id":"%s","message":"no"}\n' "$id" ;;
  esac
done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_lies_fails() {
    let outcomes = run(LIAR, &sample(), "lying-driver").await;
    let (contract, cases) = outcomes.split_first().expect("the contract check comes first");
    assert_eq!(contract.grade, Grade::Pass);
    let passed: Vec<&Outcome> = cases.iter().filter(|o| o.grade != Grade::Fail).collect();
    assert!(passed.is_empty(), "claims without a connection must fail:\n{}", describe(&passed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_driver_command_fails_the_contract_check() {
    // `sh -c` exits 127 for a command it cannot find, as a driver does for
    // an unsupported case: the contract check must tell them apart.
    let exec = "confab-no-such-driver-7f3a --flag";
    let outcomes = run(exec, &sample(), "missing-driver").await;
    let contract = &outcomes[0];
    assert_eq!(contract.case, CONTRACT_CASE);
    assert_eq!(contract.grade, Grade::Fail, "a command not found is no driver:\n{}", describe(&[contract]));
    let summary = report::failure_summary(contract);
    assert!(summary.contains("confab-no-such-driver-7f3a"), "the failure names the command: {summary}");
    assert!(!Summary::of(&outcomes).conforms());
}

#[test]
fn the_binary_fails_a_run_in_which_no_case_is_supported() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_confab-conformance"))
        .args(["client", "--exec", "exit 127", "--case", "hello/first-frame", "--answer-timeout", "3"])
        .output()
        .expect("run confab-conformance");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "exit status 1 expected:\n{stderr}");
    assert!(stderr.contains("the driver supports no case"), "{stderr}");
}
