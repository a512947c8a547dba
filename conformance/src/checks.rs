//! [`Checks`]: how a case, server or client, records what it checked. Each
//! check cites a requirement the case declared; the frame log gets a line
//! for every check, so the evidence reads in order.

use std::fmt;

use crate::{
    evidence::FrameLog,
    outcome::{CaseResult, Check, Stop, Verdict},
    runner::Record,
};

/// The requirements a case declared, and where its checks go. Both modes'
/// contexts dereference to it, so a case writes `cx.check(..)`.
#[derive(Clone)]
pub struct Checks {
    requirements: &'static [&'static str],
    record: Record,
}

impl Checks {
    pub(crate) fn new(requirements: &'static [&'static str], record: Record) -> Checks {
        Checks { requirements, record }
    }

    /// The case's frame log.
    pub fn log(&self) -> &FrameLog {
        &self.record.log
    }

    /// Records a check of `requirement` at its own level; returns whether
    /// it held.
    pub fn check(&self, requirement: &str, held: bool, detail: impl fmt::Display) -> bool {
        self.push(Check::of(requirement, held, detail.to_string()))
    }

    /// Records a check of the SHOULD part of `requirement`.
    pub fn should(&self, requirement: &str, held: bool, detail: impl fmt::Display) -> bool {
        self.push(Check::should(requirement, held, detail.to_string()))
    }

    /// [`Checks::check`], stopping the case when it does not hold (for
    /// checks the rest of the case depends on).
    pub fn ensure(&self, requirement: &str, held: bool, detail: impl fmt::Display) -> CaseResult {
        let detail = detail.to_string();
        if self.check(requirement, held, &detail) {
            Ok(())
        } else {
            Err(Stop::Failed(format!("{requirement}: {detail}")))
        }
    }

    /// Records an observation (graded informational): what the
    /// implementation chose where the spec lets it choose.
    pub fn note(&self, detail: impl fmt::Display) {
        self.record.push(Check::note(detail.to_string()));
    }

    /// Whether the case declared `requirement`.
    pub fn declares(&self, requirement: &str) -> bool {
        self.requirements.contains(&requirement)
    }

    /// Records a check the suite makes in every case, whatever the case
    /// declared (client mode's audits of what a client sends and prints).
    pub(crate) fn audit(&self, check: Check) {
        self.record.push(check);
    }

    fn push(&self, check: Check) -> bool {
        assert!(
            self.declares(&check.requirement),
            "the case checks {} without listing it in its requirements",
            check.requirement
        );
        let held = check.verdict == Verdict::Held;
        self.record.push(check);
        held
    }
}
