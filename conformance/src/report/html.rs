//! The HTML page: a summary, the failures first, then every feature as a
//! table of cases × wires, each cell a grade that opens the case's checks
//! and links to its frame log. One self-contained file, no scripts.

use std::fmt::Write as _;

use super::{Report, check_line, escape, failure_summary, junit::by_feature, requirement_text};
use crate::outcome::{Grade, Outcome};

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1d2330;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d8dce4}
.meta{color:#5a6272} table{border-collapse:collapse;width:100%} td,th{padding:.35em .5em;border-bottom:1px solid #eceef2;vertical-align:top;text-align:left}
th{font-weight:600;color:#5a6272;font-size:.9em} code{font-size:.92em}
.g{display:inline-block;min-width:6.5em;padding:.05em .5em;border-radius:.3em;font-size:.85em;font-weight:600;text-align:center}
.pass{background:#dff3e4;color:#17602b}.non-strict{background:#fff1c9;color:#7a5200}.informational{background:#e4ecfb;color:#23457e}
.unsupported{background:#eee;color:#444}.skipped{background:#f1f1f1;color:#666}.fail{background:#fbdcdc;color:#8c1b1b}
details summary{cursor:pointer;list-style:none} details pre{white-space:pre-wrap;font-size:.82em;background:#f7f8fa;padding:.5em;border-radius:.3em;margin:.3em 0}
.req{font-size:.82em;color:#5a6272} .counts span{margin-right:.8em}
@media (prefers-color-scheme: dark){body{background:#14171c;color:#dde2ea}td,th{border-color:#2a2f38}details pre{background:#1e232b}
.pass{background:#1d3b26;color:#9fe0b0}.non-strict{background:#45391a;color:#f3d88a}.informational{background:#1e2c45;color:#a9c4f5}
.unsupported,.skipped{background:#2a2d33;color:#bbb}.fail{background:#4a1f1f;color:#f5b0b0}}
";

pub fn render(report: &Report) -> String {
    let mut html = String::new();
    let title = format!("confab conformance: {} {}", report.mode, report.implementation);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let verdict = if report.summary.conforms() {
        "Conforms: every MUST held."
    } else {
        "Does not conform: at least one MUST failed."
    };
    let _ = writeln!(
        html,
        "<h1>{}</h1><p class=\"meta\">{} · finished {} · {} runs (cases × wires)</p><p><strong>{verdict}</strong></p>",
        escape(&title),
        escape(&report.tool),
        escape(&report.finished_at),
        report.outcomes.len()
    );
    html.push_str("<p class=\"counts\">");
    for grade in Grade::ALL {
        let count = report.outcomes.iter().filter(|o| o.grade == grade).count();
        let _ = write!(html, "<span><span class=\"g {grade}\">{grade}</span> {count}</span>");
    }
    html.push_str("</p>\n");

    let failures: Vec<&Outcome> = report.outcomes.iter().filter(|o| o.grade == Grade::Fail).collect();
    if !failures.is_empty() {
        html.push_str("<h2>Failures</h2><table><tr><th>case</th><th>wire</th><th>why</th></tr>\n");
        for outcome in failures {
            let _ = writeln!(
                html,
                "<tr><td><a href=\"#{}\"><code>{}</code></a></td><td>{}</td><td>{}</td></tr>",
                anchor(outcome),
                escape(&outcome.case),
                escape(&outcome.wire),
                escape(&failure_summary(outcome))
            );
        }
        html.push_str("</table>\n");
    }

    let wires = wires_of(&report.outcomes);
    for (feature, outcomes) in by_feature(&report.outcomes) {
        let _ = write!(html, "<h2>{}</h2><table><tr><th>case</th>", escape(feature));
        for wire in &wires {
            let _ = write!(html, "<th>{}</th>", escape(wire));
        }
        html.push_str("</tr>\n");
        let mut cases: Vec<&str> = Vec::new();
        for outcome in &outcomes {
            if !cases.contains(&outcome.case.as_str()) {
                cases.push(&outcome.case);
            }
        }
        for case in cases {
            let runs: Vec<&&Outcome> = outcomes.iter().filter(|o| o.case == case).collect();
            let first = runs[0];
            let requirements: Vec<String> = first
                .requirements
                .iter()
                .map(|id| format!("<span title=\"{}\">{}</span>", escape(&requirement_text(id)), escape(id)))
                .collect();
            let _ = write!(
                html,
                "<tr id=\"{}\"><td><code>{}</code><br>{}<br><span class=\"req\">{}</span></td>",
                escape(case).replace('/', "-"),
                escape(case),
                escape(&first.title),
                requirements.join(" ")
            );
            for wire in &wires {
                match runs.iter().find(|o| &o.wire == wire) {
                    Some(outcome) => {
                        let _ = write!(html, "<td>{}</td>", cell(outcome));
                    }
                    None => html.push_str("<td></td>"),
                }
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// A grade badge that opens the checks, with the link to the frame log.
fn cell(outcome: &Outcome) -> String {
    let mut details = String::new();
    if let Some(message) = &outcome.message {
        details.push_str(&format!("stopped: {message}\n"));
    }
    for check in &outcome.checks {
        details.push_str(&check_line(check));
        details.push('\n');
    }
    let link = outcome
        .evidence
        .as_ref()
        .map(|path| format!("<a href=\"{}\">frame log</a> · ", escape(path)))
        .unwrap_or_default();
    format!(
        "<details><summary><span class=\"g {}\">{}</span></summary><pre>{}</pre>{link}{} ms</details>",
        outcome.grade,
        outcome.grade,
        escape(details.trim_end()),
        outcome.duration.as_millis()
    )
}

fn anchor(outcome: &Outcome) -> String {
    escape(&outcome.case).replace('/', "-")
}

/// The wires in the report, in a stable order.
fn wires_of(outcomes: &[Outcome]) -> Vec<String> {
    let mut wires: Vec<String> = Vec::new();
    for outcome in outcomes {
        if !wires.contains(&outcome.wire) {
            wires.push(outcome.wire.clone());
        }
    }
    let order = |w: &String| ["quic+proto", "ws+proto", "ws+json"].iter().position(|x| x == w).unwrap_or(9);
    wires.sort_by_key(order);
    wires
}
