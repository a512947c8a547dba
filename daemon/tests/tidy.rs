//! Repository rules as tests: every Rust file says what it is for, and the
//! crate dependencies keep the architecture (ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    for dir in ["protocol", "daemon", "clients", "conformance", "testkit", "bridges"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` line: {missing:?}");
}

/// The `[dependencies]` section of a manifest (not dev- or build-).
fn dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table.get("dependencies").and_then(|d| d.as_table()).map(|d| d.keys().cloned().collect()).unwrap_or_default()
}

fn all_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|section| table.get(*section).and_then(|d| d.as_table()))
        .flat_map(|d| d.keys().cloned())
        .collect()
}

#[test]
fn protocol_does_no_io() {
    let deps = dependencies("protocol/Cargo.toml");
    for forbidden in ["tokio", "tokio-util", "quinn", "redb", "tokio-tungstenite", "hyper", "rustls"] {
        assert!(!deps.iter().any(|d| d == forbidden), "protocol depends on {forbidden}");
    }
}

#[test]
fn clients_never_depend_on_the_daemon() {
    let manifests = [
        "clients/sdk/Cargo.toml",
        "clients/cli/Cargo.toml",
        "clients/bench/Cargo.toml",
        "conformance/Cargo.toml",
        "testkit/Cargo.toml",
    ];
    for manifest in manifests {
        let deps = all_dependencies(manifest);
        assert!(!deps.iter().any(|d| d == "confabd"), "{manifest} depends on the daemon");
        assert!(!deps.iter().any(|d| d == "redb"), "{manifest} depends on redb: only the daemon opens the store");
    }
    assert!(dependencies("clients/cli/Cargo.toml").contains(&"confab-sdk".to_string()));
}

/// Bridges are clients: they reach the daemon through the SDK (and the
/// protocol crate), never link to it, and never open the store. Every crate
/// under `bridges/` is checked, including the ones added later.
#[test]
fn bridges_never_depend_on_the_daemon() {
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(root().join("bridges")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if manifest.exists() {
            manifests.push(manifest.strip_prefix(root()).unwrap().display().to_string());
        }
    }
    assert!(manifests.iter().any(|m| m == "bridges/irc/Cargo.toml"), "{manifests:?}");
    for manifest in &manifests {
        let deps = all_dependencies(manifest);
        assert!(!deps.iter().any(|d| d == "redb"), "{manifest} depends on redb: only the daemon opens the store");
        let ours: Vec<_> = deps.iter().filter(|d| d.starts_with("confab")).collect();
        assert!(
            ours.iter().all(|d| *d == "confab-sdk" || *d == "confab-protocol" || *d == "confab-testkit"),
            "{manifest} may depend on the SDK, the protocol crate and the testkit only: {ours:?}"
        );
    }
}

/// The conformance suite is black-box: the protocol crate and the SDK, never
/// the daemon (which it must be able to fail).
#[test]
fn the_conformance_suite_knows_only_the_protocol_and_the_sdk() {
    let deps = dependencies("conformance/Cargo.toml");
    assert!(deps.contains(&"confab-protocol".to_string()) && deps.contains(&"confab-sdk".to_string()));
    assert!(!deps.iter().any(|d| d.starts_with("confab") && d != "confab-protocol" && d != "confab-sdk"), "{deps:?}");
}
