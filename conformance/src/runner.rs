//! Runs planned cases a few at a time, each bounded in time, and turns what
//! they recorded into [`Outcome`]s. Shared by server and client mode.

use std::{
    future::Future,
    io::Write as _,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    evidence::FrameLog,
    outcome::{CaseResult, Check, Grade, Outcome, Stop},
};

/// What a running case writes down: its frame log and its checks.
#[derive(Clone, Default)]
pub struct Record {
    pub log: FrameLog,
    checks: Arc<Mutex<Vec<Check>>>,
}

impl Record {
    pub fn push(&self, check: Check) {
        let mark = if check.grade() == Grade::Pass { "ok" } else { check.grade().as_str() };
        self.log.note(&format!("{mark} {} {}", check.requirement, check.detail));
        self.checks.lock().expect("checks poisoned").push(check);
    }

    fn take(&self) -> Vec<Check> {
        std::mem::take(&mut *self.checks.lock().expect("checks poisoned"))
    }
}

/// The parts of an [`Outcome`] known before the case runs.
#[derive(Clone, Debug)]
pub struct Meta {
    pub case: String,
    pub feature: String,
    pub title: String,
    pub wire: String,
    pub requirements: Vec<String>,
}

type Body = Box<dyn FnOnce(Record) -> Pin<Box<dyn Future<Output = CaseResult> + Send>> + Send>;

/// A case ready to run, or one that will not run and why.
pub struct Planned {
    meta: Meta,
    body: Result<Body, String>,
}

impl Planned {
    pub fn new<F, Fut>(meta: Meta, body: F) -> Planned
    where
        F: FnOnce(Record) -> Fut + Send + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Planned { meta, body: Ok(Box::new(move |record| Box::pin(body(record)))) }
    }

    pub fn skipped(meta: Meta, why: impl Into<String>) -> Planned {
        Planned { meta, body: Err(why.into()) }
    }
}

/// Where progress lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// One line per finished case on standard error.
    Stderr,
    Quiet,
}

/// Runs `plan`, at most `jobs` cases at once, each cut off after
/// `case_timeout`. Outcomes come back in plan order.
pub async fn run(plan: Vec<Planned>, jobs: usize, case_timeout: Duration, progress: Progress) -> Vec<Outcome> {
    let total = plan.len();
    let slots = Arc::new(Semaphore::new(jobs.max(1)));
    let done = Arc::new(Mutex::new(0usize));
    let mut tasks = JoinSet::new();
    for (index, planned) in plan.into_iter().enumerate() {
        let slots = slots.clone();
        let done = done.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore never closed");
            let outcome = run_one(planned, case_timeout).await;
            if progress == Progress::Stderr {
                let mut done = done.lock().expect("counter poisoned");
                *done += 1;
                let width = total.to_string().len();
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>width$}/{total}] {:<13} {:<11} {} ({} ms){}",
                    *done,
                    outcome.grade.as_str(),
                    outcome.wire,
                    outcome.case,
                    outcome.duration.as_millis(),
                    outcome.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
                );
            }
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..total).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined.expect("a case task panicked outside its own guard");
        outcomes[index] = Some(outcome);
    }
    outcomes.into_iter().map(|o| o.expect("every case ran")).collect()
}

async fn run_one(planned: Planned, case_timeout: Duration) -> Outcome {
    let Planned { meta, body } = planned;
    let record = Record::default();
    let started = Instant::now();
    let stop = match body {
        Err(why) => Some(Stop::Skipped(why)),
        Ok(body) => {
            // A panic in a case is a bug of the suite; it fails that case only.
            let task = tokio::spawn(body(record.clone()));
            let abort = task.abort_handle();
            match tokio::time::timeout(case_timeout, task).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(stop))) => Some(stop),
                Ok(Err(join)) => Some(Stop::Failed(format!("the case panicked (a bug in the suite): {join}"))),
                Err(_) => {
                    abort.abort();
                    Some(Stop::Failed(format!("did not finish within {} s", case_timeout.as_secs())))
                }
            }
        }
    };
    if let Some(stop) = &stop {
        record.log.note(&format!("stopped: {stop}"));
    }
    let checks = record.take();
    Outcome {
        grade: Outcome::grade_of(&checks, stop.as_ref()),
        message: stop.map(|s| s.to_string()),
        case: meta.case,
        feature: meta.feature,
        title: meta.title,
        wire: meta.wire,
        requirements: meta.requirements,
        checks,
        duration: started.elapsed(),
        evidence: None,
        log: record.log.text(),
    }
}
