//! Shared by tests/receipts*.rs: the conformance vectors and a sample chain that we emit.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use mcp_warden_core::receipt::chain::opening_record;
use mcp_warden_core::receipt::exchange::{Exchange, WireVerdict};
use mcp_warden_core::receipt::sign::{parse_seed, Ed25519Signer};
use mcp_warden_core::receipt::{Chain, Receipt};

pub const TEST_SEED: &str = "c8ee65622000420b20ff7ec4e790006b7883ddfd3823ff9ccc2fc050c389bd48";
pub const TEST_PUB: &str = "4655a7e605c12ebb00a46037881c33c5bca5eb74b45a02e8e7261a7ff5a21678";
pub const SAMPLE_CHAIN_ID: &str = "warden-sample.w0";
pub const T0: u64 = 1_776_254_400_000_000_000; // 2026-04-15T12:00:00Z

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn conformance(name: &str) -> String {
    let path = root().join("fixtures/receipts/pipelock-conformance").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn test_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(parse_seed(TEST_SEED).unwrap())
}

pub fn exchange(i: u64, method: &str, name: &str, verdict: WireVerdict) -> Exchange {
    Exchange {
        v: 1,
        unix_nanos: T0 + i * 1_001_000_000 + i * 120,
        method: method.into(),
        name: name.into(),
        upstream: "demo".into(),
        principal: "spiffe://cluster.local/ns/agents/sa/researcher".into(),
        actor: "claude-code".into(),
        delegation_chain: if i.is_multiple_of(2) { vec![] } else { vec!["user:alice".into(), "svc:planner".into()] },
        request_id: format!("{i}"),
        verdict,
        rule: if verdict == WireVerdict::Allow { String::new() } else { "deny-destructive".into() },
        severity: if verdict == WireVerdict::Allow { String::new() } else { "high".into() },
        data_classes_in: vec![],
        data_classes_out: if i == 3 { vec!["email".into()] } else { vec![] },
        layer: String::new(),
        policy_hash: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        traceparent: format!("00-4bf92f3577b34da6a3ce929d0e0e47{i:02x}-00f067aa0ba902b7-01"),
        protocol_version: if i.is_multiple_of(2) { "2026-07-28".into() } else { "2025-11-25".into() },
        era: if i.is_multiple_of(2) { "modern".into() } else { "legacy".into() },
        session: if i.is_multiple_of(2) {
            String::new()
        } else {
            mcp_warden_core::receipt::exchange::fingerprint(&format!("session-{i}"))
        },
        error_code: if verdict == WireVerdict::Allow { None } else { Some(-31403) },
        tool_error: i == 4,
        http_error: if i == 5 { Some(503) } else { None },
        duration_micros: 1500 + i,
        bytes_in: 200 + i,
        bytes_out: 1000 + i,
    }
}

/// The exchanges behind the sample chain: every mapping branch, and strings that need Go's
/// escaping (`<>&`, U+2028/9, control characters, non-ASCII).
pub fn sample_exchanges() -> Vec<Exchange> {
    vec![
        exchange(1, "tools/list", "", WireVerdict::Allow),
        exchange(2, "tools/call", "get_weather", WireVerdict::Allow),
        exchange(3, "resources/read", "file:///notes/a&b <draft>.md", WireVerdict::Allow),
        exchange(4, "tools/call", "delete_repo", WireVerdict::Block),
        exchange(5, "tools/call", "run\u{2028}shell\u{2029}\t\u{1}café 日本", WireVerdict::Warn),
    ]
}

/// A chain-open receipt followed by one receipt per sample exchange, signed with the test key.
pub fn sample_chain() -> Vec<Receipt> {
    let signer = test_signer();
    let mut chain = Chain::new(SAMPLE_CHAIN_ID);
    let mut out = vec![chain.append(
        opening_record(SAMPLE_CHAIN_ID, None, mcp_warden_core::receipt::time::rfc3339_nano(T0), "mcp-warden", "sha256:e3b0"),
        &signer,
    )];
    for e in sample_exchanges() {
        let id = format!("{SAMPLE_CHAIN_ID}-{}", chain.next_seq());
        out.push(chain.append(e.to_record(id), &signer));
    }
    out
}

pub fn to_jsonl(receipts: &[Receipt]) -> String {
    receipts.iter().map(|r| r.canonical_json() + "\n").collect()
}
