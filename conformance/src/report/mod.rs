//! Reports: `index.json` (every case × wire with its grade, duration and
//! evidence file), `junit.xml` for CI systems, `index.html` for people, and
//! one frame log per case under `evidence/`.

mod html;
mod junit;

use std::{fs, io, path::Path};

use serde::Serialize;

use crate::{
    outcome::{Outcome, Summary, Verdict},
    spec::{self, Level},
};

/// One run of the suite against one implementation.
#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: String,
    /// `server` or `client`.
    pub mode: String,
    /// What was tested: the server URLs, or the client's command.
    pub implementation: String,
    /// When the run ended (UTC, RFC 3339).
    pub finished_at: String,
    pub summary: Summary,
    #[serde(rename = "results")]
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn new(mode: &str, implementation: String, outcomes: Vec<Outcome>) -> Report {
        Report {
            tool: format!("confab-conformance {}", env!("CARGO_PKG_VERSION")),
            mode: mode.into(),
            implementation,
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            summary: Summary::of(&outcomes),
            outcomes,
        }
    }
}

/// Writes the report into `dir` (created if need be), setting each
/// outcome's `evidence` to the path of its frame log.
pub fn write(dir: &Path, report: &mut Report) -> io::Result<()> {
    let evidence = dir.join("evidence");
    fs::create_dir_all(&evidence)?;
    for outcome in &mut report.outcomes {
        let file = format!("{}.{}.log", outcome.case.replace('/', "__"), outcome.wire.replace('+', "-"));
        fs::write(evidence.join(&file), evidence_text(outcome))?;
        outcome.evidence = Some(format!("evidence/{file}"));
    }
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    fs::write(dir.join("index.json"), json + "\n")?;
    fs::write(dir.join("junit.xml"), junit::render(report))?;
    fs::write(dir.join("index.html"), html::render(report))?;
    Ok(())
}

/// The evidence file: what the case is, its checks, then the frame log.
fn evidence_text(outcome: &Outcome) -> String {
    let mut text = format!(
        "case:         {}\nwire:         {}\ntitle:        {}\nrequirements: {}\ngrade:        {}\n",
        outcome.case,
        outcome.wire,
        outcome.title,
        outcome.requirements.join(", "),
        outcome.grade
    );
    if let Some(message) = &outcome.message {
        text.push_str(&format!("stopped:      {message}\n"));
    }
    text.push_str("\nchecks:\n");
    for check in &outcome.checks {
        text.push_str(&format!("  {}\n", check_line(check)));
    }
    text.push_str(
        "\nframes (-> sent to the implementation, <- received from it, ** connection events, # the suite):\n",
    );
    text.push_str(&outcome.log);
    text
}

/// A check in one line: verdict, requirement and level, detail.
pub fn check_line(check: &crate::outcome::Check) -> String {
    let verdict = match check.verdict {
        Verdict::Held => "held",
        Verdict::Missed => "MISSED",
        Verdict::Observed => "note",
    };
    match check.level {
        Some(level) => format!("{verdict:<6} {} ({level}): {}", check.requirement, check.detail),
        None => format!("{verdict:<6} {}", check.detail),
    }
}

/// Why a failed case failed, in one line: its first missed MUST, else how
/// it stopped.
pub fn failure_summary(outcome: &Outcome) -> String {
    let missed = outcome.checks.iter().find(|c| c.verdict == Verdict::Missed && c.level == Some(Level::Must));
    match (missed, &outcome.message) {
        (Some(check), _) => format!("{} {}", check.requirement, check.detail),
        (None, Some(message)) => message.clone(),
        (None, None) => "failed".into(),
    }
}

/// The text of a requirement, for tooltips and details.
fn requirement_text(id: &str) -> String {
    spec::REQUIREMENTS.get(id).map(|r| format!("{} {}", r.level, r.text)).unwrap_or_default()
}

/// Escapes text for HTML and XML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
