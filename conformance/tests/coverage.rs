//! The suite covers the specification: every requirement of PROTOCOL.md is
//! checked by at least one case, or listed in `spec::NOT_TESTED` with the
//! reason, and every id a case cites exists. When a change adds
//! requirements to PROTOCOL.md, this fails until their cases exist.

use std::collections::BTreeSet;

use confab_conformance::{client, server, spec};

/// Every requirement a case cites, server and client cases alike.
fn cited() -> BTreeSet<String> {
    let mut cited = BTreeSet::new();
    for case in server::cases() {
        cited.extend(case.requirements.iter().map(|id| id.to_string()));
    }
    for case in client::cases() {
        cited.extend(case.requirements.iter().map(|id| id.to_string()));
    }
    cited
}

#[test]
fn every_requirement_is_checked_or_explained() {
    let cited = cited();
    let explained: BTreeSet<&str> = spec::NOT_TESTED.iter().map(|(id, _)| *id).collect();
    let missing: Vec<&String> =
        spec::REQUIREMENTS.keys().filter(|id| !cited.contains(*id) && !explained.contains(id.as_str())).collect();
    assert!(
        missing.is_empty(),
        "requirements no case checks (add a case, or a reason to spec::NOT_TESTED): {missing:?}"
    );
    let both: Vec<&&str> = explained.iter().filter(|id| cited.contains(**id)).collect();
    assert!(both.is_empty(), "requirements listed as not tested although a case checks them: {both:?}");
}

#[test]
fn every_cited_requirement_exists() {
    for id in cited() {
        assert!(spec::REQUIREMENTS.contains_key(&id), "a case cites {id}, which PROTOCOL.md does not define");
    }
}

#[test]
fn case_ids_are_unique_and_well_formed() {
    let server_cases = server::cases().into_iter().map(|c| (c.id, c.requirements));
    let client_cases = client::cases().into_iter().map(|c| (c.id, c.requirements));
    check_ids(server_cases.collect());
    check_ids(client_cases.collect());
}

fn check_ids(cases: Vec<(&'static str, &'static [&'static str])>) {
    let mut seen = BTreeSet::new();
    for case in cases {
        let (id, requirements) = case;
        assert!(seen.insert(id), "two cases are called {id}");
        let (area, what) = id.split_once('/').unwrap_or_else(|| panic!("{id} is not area/what"));
        for part in [area, what] {
            assert!(
                !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{id} is not lowercase words with dashes"
            );
        }
        assert!(!requirements.is_empty(), "{id} cites no requirement");
    }
}
