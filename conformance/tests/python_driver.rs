//! The Python example (`examples/python/driver.py`: a whole client in the
//! standard library, WebSocket and JSON only) plays the client suite on
//! ws+json through the `confab-conformance` binary. Nothing fails or misses a
//! SHOULD, the driver honours the contract's exit status 127, the cases that
//! pass are exactly [`PASSING`] (so the example can neither drop a case
//! silently nor regress), and every other case is unsupported.
//!
//! Needs `python3` (3.10 or later) on the PATH: without it the test fails,
//! it does not skip. `CONFAB_CONFORMANCE_REPORT=DIR` keeps the report in
//! `DIR/python-driver`; otherwise a failing run keeps it in a temporary
//! directory and names it.

use std::{
    collections::BTreeSet,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use serde_json::Value;

/// The cases the example passes on ws+json: all of the suite's that run on
/// that wire.
const PASSING: &[&str] = &[
    "hello/first-frame",
    "close/client-closes",
    "enc/unknown-fields",
    "enc/json-variants",
    "enc/unknown-enum-values",
    "enc/unknown-push-and-reply",
    "log/unknown-event-kind",
    "log/order-and-duplicates",
    "live/pings-when-quiet",
    "live/silent-server",
    "errors/temporary-retry",
    "close/reconnect-range",
    "close/stop-range",
    "close/transport-code-decides",
    "close/backoff",
    "auth/expired-token",
    "auth/stored-tokens",
    "idem/resend-after-drop",
    "idem/resend-several-in-order",
    "frame/reply-order",
    "resume/dropped-mid-stream",
    "resume/gap",
    "resume/reset",
    "resume/epoch-change",
    "resume/gone",
    "resume/live-before-result",
    "resume/slow-consumer",
    "resume/invitation-is-no-position",
    "limit/frame-size",
    "ws/fragmented-messages",
    "frame/malformed-from-server",
];

const WIRE: &str = "ws+json";
const CONTRACT_CASE: &str = "contract/unknown-case";
/// The whole suite on one wire takes about 20 s.
const TIME_LIMIT: Duration = Duration::from_secs(240);

#[test]
fn the_python_example_driver_plays_the_client_suite_on_ws_json() {
    require_python3();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/driver.py");
    assert!(driver.is_file(), "the Python example driver is missing: {}", driver.display());
    let (report, temporary) = match std::env::var_os("CONFAB_CONFORMANCE_REPORT") {
        Some(dir) => (PathBuf::from(dir).join("python-driver"), None),
        None => {
            let dir =
                tempfile::Builder::new().prefix("confab-python-driver-").tempdir().expect("a temporary directory");
            (dir.path().to_owned(), Some(dir))
        }
    };

    let (status, output) = run_suite(&driver, &report);
    let problems = grade_problems(&report, &output);
    if problems.is_empty() {
        assert!(status.success(), "confab-conformance exited with {status} although every case passed:\n{output}");
        return;
    }
    // Keep the evidence of a failing run.
    let kept = temporary.map_or(report.clone(), |dir| dir.keep());
    panic!(
        "the Python example driver does not play the client suite as expected (confab-conformance: {status}; report \
         and frame logs in {}):\n- {}\n\nconfab-conformance said:\n{output}",
        kept.display(),
        problems.join("\n- ")
    );
}

/// Fails (never skips) without a usable `python3`.
fn require_python3() {
    let output = Command::new("python3").arg("--version").output().unwrap_or_else(|error| {
        panic!(
            "python3 is required to test the Python example driver (conformance/examples/python/driver.py), but it \
             cannot be run: {error}. Install Python 3.10 or later."
        )
    });
    let version = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    let minor = version.trim().strip_prefix("Python 3.").and_then(|rest| rest.split('.').next()?.parse::<u32>().ok());
    assert!(
        output.status.success() && minor.is_some_and(|minor| minor >= 10),
        "the Python example driver needs Python 3.10 or later as python3; `python3 --version` says {:?}",
        version.trim()
    );
}

/// Runs `confab-conformance client` on ws+json with the example driver,
/// writing the report to `report`, within [`TIME_LIMIT`]. Its exit status
/// and what it printed.
fn run_suite(driver: &Path, report: &Path) -> (ExitStatus, String) {
    let exec = format!("python3 {}", shell_quote(&driver.display().to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab-conformance"))
        .args(["client", "--exec", &exec, "--transport", "ws", "--encoding", "json", "--report"])
        .arg(report)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start confab-conformance");
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    // Waits on a thread of its own, so this one can give up on time.
    let pid = child.id();
    let (exited, exit) = mpsc::channel();
    thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let status = match exit.recv_timeout(TIME_LIMIT) {
        Ok(status) => status.expect("wait for confab-conformance"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("confab-conformance did not finish the client suite within {} s", TIME_LIMIT.as_secs());
        }
    };
    let output = [stdout, stderr].map(|reader| reader.join().unwrap_or_default()).concat();
    (status, output)
}

/// Reads a pipe to its end on a thread of its own, so that the child never
/// blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// What is wrong with the grades in `report/index.json`, one line each.
fn grade_problems(report: &Path, output: &str) -> Vec<String> {
    let index = report.join("index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|error| {
        panic!("no report at {} ({error}); confab-conformance said:\n{output}", index.display())
    });
    let index: Value = serde_json::from_str(&text).expect("index.json is JSON");
    let results = index["results"].as_array().expect("index.json lists results");
    let field = |result: &Value, name: &str| result[name].as_str().unwrap_or_default().to_owned();

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut contract_passed = false;
    for result in results {
        let (case, wire, grade) = (field(result, "case"), field(result, "wire"), field(result, "grade"));
        let why = || {
            let message = result["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default();
            format!("{case} [{wire}] is graded {grade}{message} (evidence: {})", field(result, "evidence"))
        };
        if case == CONTRACT_CASE {
            contract_passed = grade == "pass";
            if !contract_passed {
                problems.push(why());
            }
            continue;
        }
        let expected = match wire.as_str() {
            // A case that never runs on ws+json.
            "-" => "skipped",
            WIRE if PASSING.contains(&case.as_str()) => "pass",
            WIRE => "unsupported",
            _ => "a result on ws+json only",
        };
        if grade != expected {
            problems.push(format!("{} ({expected} expected)", why()));
        }
        if wire == WIRE {
            seen.insert(case);
        }
    }
    if !contract_passed && !problems.iter().any(|p| p.starts_with(CONTRACT_CASE)) {
        problems.push(format!("{CONTRACT_CASE} is missing from the report"));
    }
    let missing: Vec<&str> = PASSING.iter().copied().filter(|case| !seen.contains(*case)).collect();
    if !missing.is_empty() {
        problems.push(format!("these cases should pass on {WIRE} but did not run there: {missing:?}"));
    }
    problems
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
