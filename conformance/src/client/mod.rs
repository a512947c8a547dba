//! Client mode: the suite plays a scripted, adversarial server and runs the
//! client under test once per case through the driver contract
//! (`conformance/driver-contract.md`): environment variables, JSON lines on
//! stdin and stdout, exit status 127 for "not supported".
//!
//! - [`transport`]: the listeners (QUIC, WebSocket on 127.0.0.1) and what a
//!   connection reads and writes, byte for byte;
//! - [`model`]: the protocol model, a tiny server in memory with the
//!   case's adversity as data ([`model::Script`]);
//! - [`server`]: the two together, with the frame log and what the client
//!   did, for cases to wait on;
//! - [`craft`]: frames made by hand (unknown fields, kinds, values;
//!   non-canonical encodings; undecodable bytes);
//! - [`driver`]: the client's process;
//! - `cases.rs`: the cases, each citing the requirements it checks, graded
//!   from what the client did on the wire and what it reported.
//!
//! Alongside the cases, the harness starts the driver with a case id no
//! case has and requires exit status 127 (and no shell saying the command
//! was not found), so that 127 can be trusted to mean "unsupported".

mod cases;
pub mod craft;
mod ctx;
pub mod driver;
pub mod model;
pub mod server;
pub mod transport;

use std::{sync::Arc, time::Duration};

pub use ctx::{Client, Ctx, Reconnect};
use driver::{Driver, Env, UNSUPPORTED};
use transport::Identity;

use crate::{
    outcome::{CaseResult, Outcome, Stop},
    runner::{self, Planned, Progress},
    wire::{Transport, Wire},
};

/// A case of this mode.
pub type Case = crate::case::Case<Ctx>;

/// Every client case, in report order.
pub fn cases() -> Vec<Case> {
    cases::all()
}

/// The client under test and how the suite runs it.
pub struct Target {
    /// The driver command, run through `sh -c`.
    pub exec: String,
    /// The wires to test, in order.
    pub wires: Vec<Wire>,
    /// The scripted server's certificate (QUIC).
    pub identity: Identity,
    /// How long the driver may take to answer one command.
    pub answer_timeout: Duration,
    pub username: String,
    pub password: String,
}

impl Target {
    pub fn new(exec: impl Into<String>, wires: Vec<Wire>) -> anyhow::Result<Target> {
        Ok(Target {
            exec: exec.into(),
            wires,
            identity: Identity::generate()?,
            answer_timeout: Duration::from_secs(10),
            username: "ada".into(),
            password: format!("conformance-{:016x}", rand::random::<u64>()),
        })
    }
}

/// The id of the contract check's outcome.
pub const CONTRACT_CASE: &str = "contract/unknown-case";

/// Runs the contract check and `cases` on each wire they apply to, `jobs`
/// at a time (the contract check first in the plan, alongside the cases,
/// not before them), each cut off after `case_timeout`.
pub async fn run(target: Arc<Target>, cases: &[Case], jobs: usize, case_timeout: Duration) -> Vec<Outcome> {
    // On the first wire under test, so that a driver which supports only
    // some wires must still look at the case id.
    let contract_wire = target.wires.first().copied().unwrap_or(Wire::WS_PROTO);
    let contract = Planned::new(
        runner::Meta {
            case: CONTRACT_CASE.into(),
            feature: "Driver contract".into(),
            title: "The driver exits 127 for a case id it does not know".into(),
            wire: contract_wire.name().into(),
            requirements: Vec::new(),
        },
        {
            let target = target.clone();
            move |record| unknown_case(target, contract_wire, record)
        },
    );
    let mut plan = vec![contract];
    for case in cases {
        let wires = case.wires.select(&target.wires);
        if wires.is_empty() {
            plan.push(Planned::skipped(case.meta("-"), "no wire under test suits this case"));
        }
        for wire in wires {
            let (case, target) = (case.clone(), target.clone());
            plan.push(Planned::new(case.meta(wire.name()), move |record| async move {
                let cx = Ctx::new(target, case.id, wire, case.requirements, record).await?;
                let result = case.run(cx.clone()).await;
                cx.finish().await;
                result
            }));
        }
    }
    runner::run(plan, jobs, case_timeout, Progress::Stderr).await
}

/// The contract check: a random case id must be answered with exit status
/// 127, so that 127 means "unsupported" and not "the command failed".
async fn unknown_case(target: Arc<Target>, wire: Wire, record: runner::Record) -> CaseResult {
    let id = format!("no-such-case-{:08x}", rand::random::<u32>());
    let state = tempfile::tempdir().map_err(|e| Stop::Failed(format!("cannot make a state directory: {e}")))?;
    let mut env = Env::default();
    for (name, value) in [
        // Nothing listens there: the driver must not get as far as connecting.
        (
            "CONFAB_URL",
            if wire.transport == Transport::Quic { "quic://127.0.0.1:9" } else { "ws://127.0.0.1:9/ws" }.to_owned(),
        ),
        ("CONFAB_TRANSPORT", if wire.transport == Transport::Quic { "quic" } else { "ws" }.to_owned()),
        ("CONFAB_ENCODING", if wire.is_json() { "json" } else { "proto" }.to_owned()),
        ("CONFAB_FINGERPRINT", target.identity.fingerprint.to_string()),
        ("CONFAB_CASE", id.clone()),
        ("CONFAB_USERNAME", target.username.clone()),
        ("CONFAB_PASSWORD", target.password.clone()),
        ("CONFAB_STATE_DIR", state.path().display().to_string()),
    ] {
        env.set(name, value);
    }
    record.log.note(&format!("starting the driver with CONFAB_CASE={id}; it must exit 127"));
    let dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let mut driver =
        Driver::spawn(&target.exec, &env, &dir, record.log.clone(), "driver".into(), target.answer_timeout)?;
    match driver.exit_status(target.answer_timeout).await {
        Some(status) if status.code() == Some(UNSUPPORTED) => {
            driver.drained(Duration::from_secs(1)).await;
            let printed = driver.printed.lock().map(|p| p.clone()).unwrap_or_default();
            match shell_failure(&printed, &id) {
                Some(line) => Err(Stop::Failed(format!(
                    "the driver command {:?} could not be run (the shell said {line:?}): its exit status 127 \
                     means \"command not found\" here, not \"unsupported\"; check --exec",
                    target.exec
                ))),
                None => Ok(()),
            }
        }
        Some(status) => Err(Stop::Failed(format!(
            "the driver exited with {} for the unknown case {id}; the contract requires 127, so that 127 can \
             mean \"unsupported\"",
            driver::describe(status)
        ))),
        None => Err(Stop::Failed(format!(
            "the driver did not exit within {} s for the unknown case {id} (127 required)",
            target.answer_timeout.as_secs()
        ))),
    }
}

/// The line of `printed` in which a shell (or `env`, or a `#!` line)
/// says it could not find or run a command, as `sh -c` does with status
/// 127. A driver may name the unknown case `case_id` when it refuses it;
/// such a line is not the shell's.
fn shell_failure<'a>(printed: &'a str, case_id: &str) -> Option<&'a str> {
    const SIGNS: [&str; 3] = ["not found", "Permission denied", "No such file"];
    printed.lines().find(|line| !line.contains(case_id) && SIGNS.iter().any(|sign| line.contains(sign)))
}
