//! What a case found: the checks it made, each against a requirement, and
//! the grade they add up to.

use std::{fmt, time::Duration};

use serde::Serialize;

use crate::spec::{self, Level};

/// A case's grade, from best to worst. A case gets the worst grade of its
/// checks, or the grade of how it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grade {
    /// Every check held.
    Pass,
    /// Observations only: what the implementation chose where the spec
    /// lets it choose (a MAY), or a check the case could not make here.
    Informational,
    /// The implementation says it does not support this case (a client
    /// driver exiting 127), or the server does not offer the feature.
    Unsupported,
    /// Not run, with the reason (a wait longer than `--max-wait`, a
    /// transport left out). Never counted as a pass.
    Skipped,
    /// A SHOULD was missed; everything the spec requires held.
    NonStrict,
    /// A MUST was broken, or the case could not complete.
    Fail,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Informational => "informational",
            Grade::Unsupported => "unsupported",
            Grade::Skipped => "skipped",
            Grade::NonStrict => "non-strict",
            Grade::Fail => "fail",
        }
    }

    pub const ALL: [Grade; 6] =
        [Grade::Pass, Grade::NonStrict, Grade::Informational, Grade::Unsupported, Grade::Skipped, Grade::Fail];
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check a case made.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// The requirement checked (`SEND-4`); empty for a plain observation.
    pub requirement: String,
    /// The level the check holds the implementation to: the requirement's
    /// own, or SHOULD for the SHOULD part of a MUST requirement.
    pub level: Option<Level>,
    pub verdict: Verdict,
    /// What was expected and what was seen.
    pub detail: String,
}

/// Whether a check held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Held,
    Missed,
    /// Nothing to hold to: an observation of what the implementation chose.
    Observed,
}

impl Check {
    /// The grade this check alone gives.
    pub fn grade(&self) -> Grade {
        match (self.verdict, self.level) {
            (Verdict::Held, _) => Grade::Pass,
            (Verdict::Observed, _) | (Verdict::Missed, None | Some(Level::May)) => Grade::Informational,
            (Verdict::Missed, Some(Level::Should)) => Grade::NonStrict,
            (Verdict::Missed, Some(Level::Must)) => Grade::Fail,
        }
    }

    /// A check of `requirement` at its own level.
    pub fn of(requirement: &str, held: bool, detail: impl Into<String>) -> Check {
        let level = spec::requirement(requirement).level;
        Check { requirement: requirement.into(), level: Some(level), verdict: held.into(), detail: detail.into() }
    }

    /// A check of the SHOULD part of `requirement`, whatever its level.
    pub fn should(requirement: &str, held: bool, detail: impl Into<String>) -> Check {
        spec::requirement(requirement);
        Check {
            requirement: requirement.into(),
            level: Some(Level::Should),
            verdict: held.into(),
            detail: detail.into(),
        }
    }

    /// An observation, graded informational.
    pub fn note(detail: impl Into<String>) -> Check {
        Check { requirement: String::new(), level: None, verdict: Verdict::Observed, detail: detail.into() }
    }
}

impl From<bool> for Verdict {
    fn from(held: bool) -> Self {
        if held { Verdict::Held } else { Verdict::Missed }
    }
}

/// How a case stopped, when not by returning normally.
#[derive(Debug)]
pub enum Stop {
    /// The case could not go on: a check it depends on failed (already
    /// recorded), or something unexpected happened (recorded as a failure).
    Failed(String),
    /// The implementation does not support what the case needs.
    Unsupported(String),
    /// The case was not run (too slow here, a transport left out).
    Skipped(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Failed(why) | Stop::Unsupported(why) | Stop::Skipped(why) => f.write_str(why),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(error: E) -> Self {
        Stop::Failed(format!("{:#}", error.into()))
    }
}

/// The outcome of a case body.
pub type CaseResult<T = ()> = Result<T, Stop>;

/// One case run once (on one wire, or against one client).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The case id (`auth/refresh-rotates`).
    pub case: String,
    /// The section of `PROTOCOL.md` it belongs to, for grouping.
    pub feature: String,
    pub title: String,
    /// Where it ran: `quic+proto`, `ws+proto`, `ws+json`.
    pub wire: String,
    pub requirements: Vec<String>,
    pub grade: Grade,
    /// Why the case stopped early, if it did.
    pub message: Option<String>,
    pub checks: Vec<Check>,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// The frame log, relative to the report directory (when one is written).
    pub evidence: Option<String>,
    /// The frame log itself, kept in memory until the report is written.
    #[serde(skip)]
    pub log: String,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

impl Outcome {
    /// The grade of a case that made `checks` and ended with `stop`.
    pub fn grade_of(checks: &[Check], stop: Option<&Stop>) -> Grade {
        let worst = checks.iter().map(Check::grade).max().unwrap_or(Grade::Pass);
        let stopped = match stop {
            None => Grade::Pass,
            Some(Stop::Failed(_)) => Grade::Fail,
            Some(Stop::Unsupported(_)) => Grade::Unsupported,
            Some(Stop::Skipped(_)) => Grade::Skipped,
        };
        // A failure outranks everything; otherwise how the case stopped
        // decides (a skipped case is no pass, even with passing checks).
        if worst == Grade::Fail || stopped == Grade::Fail {
            Grade::Fail
        } else if stopped != Grade::Pass {
            stopped
        } else {
            worst
        }
    }
}

/// Counts by grade, and whether anything failed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub non_strict: usize,
    pub informational: usize,
    pub unsupported: usize,
    pub skipped: usize,
    pub fail: usize,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut summary = Summary::default();
        for outcome in outcomes {
            *match outcome.grade {
                Grade::Pass => &mut summary.pass,
                Grade::NonStrict => &mut summary.non_strict,
                Grade::Informational => &mut summary.informational,
                Grade::Unsupported => &mut summary.unsupported,
                Grade::Skipped => &mut summary.skipped,
                Grade::Fail => &mut summary.fail,
            } += 1;
        }
        summary
    }

    /// Whether every MUST held (the exit status).
    pub fn conforms(&self) -> bool {
        self.fail == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pass, {} non-strict, {} informational, {} unsupported, {} skipped, {} fail",
            self.pass, self.non_strict, self.informational, self.unsupported, self.skipped, self.fail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_add_up_to_the_worst() {
        let pass = Check::of("SEND-4", true, "durable");
        let should = Check::should("CLOSE-2", false, "did not back off");
        let must = Check::of("SEND-4", false, "lost");
        let note = Check::note("server chose RESET");
        assert_eq!(Outcome::grade_of(std::slice::from_ref(&pass), None), Grade::Pass);
        assert_eq!(Outcome::grade_of(&[pass.clone(), note.clone()], None), Grade::Informational);
        assert_eq!(Outcome::grade_of(&[pass.clone(), should.clone()], None), Grade::NonStrict);
        assert_eq!(Outcome::grade_of(&[should.clone(), must], None), Grade::Fail);
        assert_eq!(Outcome::grade_of(std::slice::from_ref(&pass), Some(&Stop::Skipped("slow".into()))), Grade::Skipped);
        assert_eq!(Outcome::grade_of(&[], Some(&Stop::Unsupported("no".into()))), Grade::Unsupported);
        assert_eq!(Outcome::grade_of(&[pass], Some(&Stop::Failed("hung".into()))), Grade::Fail);
        assert_eq!(Outcome::grade_of(&[should], Some(&Stop::Skipped("slow".into()))), Grade::Skipped);
    }
}
