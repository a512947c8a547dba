//! The report files: every one written, linked and escaped.

use std::time::Duration;

use super::*;
use crate::outcome::{Check, Grade, Outcome};

fn outcome(case: &str, wire: &str, checks: Vec<Check>, message: Option<&str>) -> Outcome {
    let grade = Outcome::grade_of(&checks, message.map(|m| crate::outcome::Stop::Skipped(m.into())).as_ref());
    Outcome {
        case: case.into(),
        feature: "Sending messages".into(),
        title: "a <title> & more".into(),
        wire: wire.into(),
        requirements: vec!["SEND-4".into()],
        grade,
        message: message.map(Into::into),
        checks,
        duration: Duration::from_millis(12),
        evidence: None,
        log: "   1.0ms alice/1      -> {\"requestId\":\"1\"}\n".into(),
    }
}

#[test]
fn writes_every_file_and_links_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Report::new(
        "server",
        "ws://127.0.0.1:1".into(),
        vec![
            outcome("send/durable", "ws+json", vec![Check::of("SEND-4", true, "acknowledged")], None),
            outcome("send/durable", "quic+proto", vec![Check::of("SEND-4", false, "lost <after> restart")], None),
            outcome("send/slow", "ws+proto", vec![], Some("waits 60 s")),
        ],
    );
    write(dir.path(), &mut report).unwrap();

    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("index.json")).unwrap()).unwrap();
    let results = index["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[1]["grade"], "fail");
    assert_eq!(results[2]["grade"], "skipped");
    assert_eq!(index["summary"]["fail"], 1);
    let evidence = results[1]["evidence"].as_str().unwrap();
    let log = std::fs::read_to_string(dir.path().join(evidence)).unwrap();
    assert!(log.contains("MISSED SEND-4 (MUST): lost <after> restart"), "{log}");
    assert!(log.contains("alice/1      -> {\"requestId\":\"1\"}"), "{log}");

    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"1\""), "{junit}");
    assert!(junit.contains("<failure message=\"SEND-4 lost &lt;after&gt; restart\"/>"), "{junit}");
    assert!(junit.contains("<skipped message=\"skipped: waits 60 s\"/>"), "{junit}");

    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("Does not conform"), "{html}");
    assert!(html.contains("a &lt;title&gt; &amp; more"), "{html}");
    assert!(html.contains(&format!("href=\"{evidence}\"")), "{html}");
    assert!(!html.contains("<title>\n") && !html.contains("<after>"), "unescaped text in {html}");
}

#[test]
fn escape_keeps_xml_well_formed() {
    assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&#39;\u{fffd}");
    assert_eq!(Grade::ALL.len(), 6);
}
