//! The fixture corpus (`fixtures/corpus/`, see `fixtures/README.md`) straight through
//! `mcp::classify`: every case's expected upstream routing headers or JSON-RPC error.
//!
//! The same corpus also runs through the flow on a fake host (`tests/flow_fake_host.rs`), on
//! wasm32 under Node (`examples/wasm32_corpus.rs`) and through a real Envoy
//! (`tests/e2e/test_corpus_replay.py`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "corpus/support.rs"]
mod support;

use std::collections::BTreeSet;

use support::{check_classify, load, needs_flow, run_all, Expect, FILES, REQUIRED_TAGS};

#[test]
fn every_case_through_classify() {
    let cases = load();
    let ran = run_all("classify", &cases, check_classify);
    let skipped = cases.iter().filter(|c| needs_flow(c)).count();
    eprintln!("classify: {} cases checked, {skipped} left to the flow layers (body cap)", ran - skipped);
}

#[test]
fn corpus_files_are_all_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let embedded: BTreeSet<String> = FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, embedded, "add new corpus files to FILES in tests/corpus/support.rs");
}

#[test]
fn corpus_is_well_formed_and_covers_the_hostile_list() {
    let cases = load();
    let mut names = BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case name {}", c.name);
        if let Expect::Reject { status, code, .. } = c.expect {
            assert!(matches!(status, 400 | 405 | 413 | 415), "{}: unexpected status {status}", c.name);
            assert!((-32768..=-32000).contains(&code), "{}: code {code} is not a JSON-RPC error code", c.name);
        }
        if let Expect::Forward { era, kind, .. } = &c.expect {
            assert!(matches!(era.as_str(), "modern" | "legacy"), "{}: era {era}", c.name);
            assert!(matches!(kind.as_str(), "request" | "notification" | "response" | "bodyless"), "{}: kind {kind}", c.name);
        }
    }
    let tags: BTreeSet<&str> = cases.iter().flat_map(|c| c.tags.iter().map(String::as_str)).collect();
    let missing: Vec<&&str> = REQUIRED_TAGS.iter().filter(|t| !tags.contains(**t)).collect();
    assert!(missing.is_empty(), "hostile categories without a case: {missing:?}");
    // Both eras, every message kind, both outcomes.
    let kinds: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Forward { era, kind, .. } => Some(format!("{era}/{kind}")),
            Expect::Reject { .. } => None,
        })
        .collect();
    for k in
        ["modern/request", "modern/notification", "legacy/request", "legacy/notification", "legacy/response", "legacy/bodyless"]
    {
        assert!(kinds.contains(k), "no forwarded {k} case in the corpus");
    }
    assert!(!kinds.iter().any(|k| k.ends_with("/batch")), "batches are refused: no case may expect one forwarded");
    eprintln!("corpus: {} cases, {} files", cases.len(), FILES.len());
}

/// The corpus actually exercises rejection: if classification stopped rejecting (e.g. always
/// forwarded), this very check must notice. Guards the checker itself.
#[test]
fn checker_notices_a_wrong_outcome() {
    let cases = load();
    let c = cases.iter().find(|c| c.name == "hostile-mcp-name-names-other-tool").unwrap();
    let fake = support::Outcome::Forward {
        era: "modern".into(),
        kind: "request".into(),
        mcp_method: Some(b"tools/call".to_vec()),
        mcp_name: Some(b"read_file".to_vec()),
    };
    assert!(support::check(c, &fake).is_err());
    let c = cases.iter().find(|c| c.name == "wire-03-modern-tools_call-plain").unwrap();
    let wrong_name = support::Outcome::Forward {
        era: "modern".into(),
        kind: "request".into(),
        mcp_method: Some(b"tools/call".to_vec()),
        mcp_name: Some(b"other".to_vec()),
    };
    assert!(support::check(c, &wrong_name).is_err());
}
