//! JUnit XML: one test suite per feature, one test case per case × wire.
//! Failures are `<failure>`; skipped and unsupported cases are `<skipped>`;
//! every check is listed in `<system-out>`, with the evidence file.

use std::fmt::Write as _;

use super::{Report, check_line, escape, failure_summary};
use crate::outcome::{Grade, Outcome};

pub fn render(report: &Report) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_time: f64 = report.outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
    let failures = report.outcomes.iter().filter(|o| o.grade == Grade::Fail).count();
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{total_time:.3}\">",
        escape(&format!("confab-conformance {} {}", report.mode, report.implementation)),
        report.outcomes.len()
    );
    for (feature, outcomes) in by_feature(&report.outcomes) {
        let failures = outcomes.iter().filter(|o| o.grade == Grade::Fail).count();
        let skipped = outcomes.iter().filter(|o| matches!(o.grade, Grade::Skipped | Grade::Unsupported)).count();
        let time: f64 = outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
            escape(feature),
            outcomes.len()
        );
        for outcome in outcomes {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                escape(&format!("{}.{}", report.mode, feature)),
                escape(&format!("{} [{}]", outcome.case, outcome.wire)),
                outcome.duration.as_secs_f64()
            );
            match outcome.grade {
                Grade::Fail => {
                    let _ = write!(xml, "<failure message=\"{}\"/>", escape(&failure_summary(outcome)));
                }
                Grade::Skipped | Grade::Unsupported => {
                    let why = outcome.message.clone().unwrap_or_else(|| outcome.grade.to_string());
                    let _ = write!(xml, "<skipped message=\"{}\"/>", escape(&format!("{}: {why}", outcome.grade)));
                }
                _ => {}
            }
            let mut out = format!("grade: {}\n", outcome.grade);
            for check in &outcome.checks {
                out.push_str(&check_line(check));
                out.push('\n');
            }
            if let Some(evidence) = &outcome.evidence {
                out.push_str(&format!("evidence: {evidence}\n"));
            }
            let _ = writeln!(xml, "<system-out>{}</system-out></testcase>", escape(&out));
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Outcomes grouped by feature, features in order of first appearance.
pub(super) fn by_feature(outcomes: &[Outcome]) -> Vec<(&str, Vec<&Outcome>)> {
    let mut groups: Vec<(&str, Vec<&Outcome>)> = Vec::new();
    for outcome in outcomes {
        match groups.iter_mut().find(|(feature, _)| *feature == outcome.feature) {
            Some((_, group)) => group.push(outcome),
            None => groups.push((&outcome.feature, vec![outcome])),
        }
    }
    groups
}
