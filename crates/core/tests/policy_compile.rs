//! Policy compile: every fixture under fixtures/policies/valid compiles; every one under
//! fixtures/policies/invalid is refused with exactly the error text in its `.expected` file
//! (field path included). `UPDATE_EXPECTED=1 cargo test --test policy_compile` rewrites the
//! `.expected` files (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use mcp_warden_core::policy::{self, RuleAction};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/policies").join(sub)
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn valid_fixtures_compile() {
    let files = fixtures("valid");
    assert!(files.len() >= 3);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if let Err(e) = policy::load(&bytes) {
            panic!("{} should compile: {e}", f.display());
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_expected_text() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let files = fixtures("invalid");
    assert!(files.len() >= 25);
    let mut failures = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let got = match policy::load(&bytes) {
            Ok(_) => {
                failures.push(format!("{}: compiled, but should have been refused", f.display()));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let expected_path = f.with_extension("expected");
        if update {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != got {
            failures.push(format!("{}:\n  expected: {}\n  received: {got}", f.display(), expected.trim_end()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_refusal_names_a_field_except_syntax() {
    for f in fixtures("invalid") {
        let e = policy::load(&std::fs::read(&f).unwrap()).unwrap_err();
        let syntax = f.file_name().unwrap().to_str().unwrap().starts_with("not-json");
        assert_eq!(e.field.is_empty(), syntax, "{}: {e}", f.display());
    }
}

#[test]
fn full_fixture_compiles_to_what_it_says() {
    let p = policy::load(&std::fs::read(dir("valid").join("full.json")).unwrap()).unwrap();
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "no-deletes",
            "admins-everything",
            "agents-via-search",
            "anon-read-only",
            "mesh-td",
            "tenant-acme",
            "per-principal",
            "try-global"
        ]
    );
    assert!(matches!(&p.rules[0].action, RuleAction::Deny { hide: true, reason } if reason.contains("deleting")));
    assert!(matches!(&p.rules[2].action, RuleAction::Deny { hide: false, .. }));
    match &p.rules[5].action {
        RuleAction::RateLimit { quota, .. } => {
            assert_eq!((quota.rate, quota.period_ms, quota.burst), (100, 60_000, 20));
        }
        other => panic!("{other:?}"),
    }
    match &p.rules[6].action {
        // burst defaults to rate, period to 1 s
        RuleAction::RateLimit { quota, .. } => assert_eq!((quota.rate, quota.period_ms, quota.burst), (10, 1000, 10)),
        other => panic!("{other:?}"),
    }
    assert!(p.rules[7].dry_run);
    assert_eq!(p.sources.trusted_header.as_deref(), Some("x-authenticated-user"));
    assert_eq!(p.kill.entries.len(), 1);
    assert_eq!(p.rate_limit_slots, 4096);
    let c = p.control.unwrap();
    assert_eq!((c.cluster.as_str(), c.authority.as_str(), c.period_ms), ("warden_control", "warden_control", 1000));
}

#[test]
fn defaults_keep_the_wire_settings() {
    let p = policy::load(b"{}").unwrap();
    assert!(p.wire.modern_enabled && p.wire.legacy_enabled);
    assert_eq!(p.max_body_bytes, 1 << 20);
    assert!(p.default_deny.is_none());
    assert!(p.control.is_none());
    let d = policy::load(&std::fs::read(dir("valid").join("default-deny.json")).unwrap()).unwrap();
    assert_eq!(d.default_deny.as_deref(), Some("not allowed by policy"));
}
