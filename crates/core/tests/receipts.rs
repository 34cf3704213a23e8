//! Golden and tamper tests for ActionReceipt v1: we reproduce Pipelock's published conformance
//! vectors byte for byte, our verifier agrees with them, and any edit of a chain we emit is caught.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod receipts_support;

use mcp_warden_core::receipt::chain::GENESIS;
use mcp_warden_core::receipt::sign::{parse_hex32, Signer};
use mcp_warden_core::receipt::time::rfc3339_nano;
use mcp_warden_core::receipt::verify::{verify_chain, verify_receipt, ChainReason, ReceiptError};
use mcp_warden_core::receipt::{ActionRecord, ActionType, Chain, Reversibility, SideEffectClass, Verdict};
use receipts_support::*;
use serde_json::Value;

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The conformance records use only fields our ActionRecord has; anything else fails the test.
fn record_from_fixture(ar: &Value, timestamp: String) -> ActionRecord {
    let s = |k: &str| ar.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let known = [
        "version",
        "action_id",
        "action_type",
        "timestamp",
        "principal",
        "actor",
        "delegation_chain",
        "target",
        "side_effect_class",
        "reversibility",
        "policy_hash",
        "verdict",
        "transport",
        "method",
        "chain_prev_hash",
        "chain_seq",
    ];
    for k in ar.as_object().unwrap().keys() {
        assert!(known.contains(&k.as_str()), "fixture field {k} not mapped");
    }
    ActionRecord {
        action_id: s("action_id"),
        action_type: ActionType::parse(&s("action_type")).unwrap(),
        timestamp,
        principal: s("principal"),
        actor: s("actor"),
        delegation_chain: strs(&ar["delegation_chain"]),
        target: s("target"),
        intent: String::new(),
        data_classes_in: vec![],
        data_classes_out: vec![],
        side_effect_class: SideEffectClass::parse(&s("side_effect_class")).unwrap(),
        reversibility: Reversibility::parse(&s("reversibility")).unwrap(),
        policy_hash: s("policy_hash"),
        verdict: Verdict::parse(&s("verdict")).unwrap(),
        transport: s("transport"),
        method: s("method"),
        layer: String::new(),
        pattern: String::new(),
        severity: String::new(),
        request_id: String::new(),
        chain_prev_hash: String::new(),
        chain_seq: 0,
    }
}

#[test]
fn signing_valid_single_reproduces_its_signature_byte_for_byte() {
    let fixture: Value = serde_json::from_str(&conformance("valid-single.json")).unwrap();
    let ar = &fixture["action_record"];
    // The timestamp goes through our RFC3339Nano formatter from a nanosecond count.
    let record = record_from_fixture(ar, rfc3339_nano(T0));
    assert_eq!(record.timestamp, ar["timestamp"].as_str().unwrap());
    let signer = test_signer();
    assert_eq!(hex::encode(signer.public_key()), TEST_PUB);
    let mut chain = Chain::new("conformance");
    let receipt = chain.append(record, &signer);
    assert_eq!(receipt.record.chain_prev_hash, GENESIS);
    let sig = format!("ed25519:{}", hex::encode(receipt.signature));
    assert_eq!(sig, fixture["signature"].as_str().unwrap());
    assert_eq!(hex::encode(receipt.signer_key), fixture["signer_key"].as_str().unwrap());
}

#[test]
fn re_emitting_valid_chain_reproduces_every_receipt_byte_for_byte() {
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        detail: &'a serde_json::value::RawValue,
    }
    let text = conformance("valid-chain.jsonl");
    let signer = test_signer();
    let mut chain = Chain::new("conformance");
    for line in text.lines() {
        let entry: Entry = serde_json::from_str(line).unwrap();
        let detail: Value = serde_json::from_str(entry.detail.get()).unwrap();
        let ar = &detail["action_record"];
        let record = record_from_fixture(ar, ar["timestamp"].as_str().unwrap().to_string());
        let receipt = chain.append(record, &signer);
        // The fixture's `detail` is Go's json.Marshal(receipt): our canonical bytes must equal it.
        assert_eq!(receipt.canonical_json(), entry.detail.get());
    }
    assert_eq!(chain.next_seq(), 5);
}

#[test]
fn verifier_accepts_the_valid_vectors() {
    let key = parse_hex32(TEST_PUB).unwrap();
    let single = verify_receipt(&conformance("valid-single.json"), Some(&key)).unwrap();
    assert_eq!((single.action_id.as_str(), single.chain_seq), ("conformance-00000", 0));
    let chain = verify_chain(&conformance("valid-chain.jsonl"), Some(&key)).unwrap();
    assert_eq!((chain.count, chain.final_seq), (5, 4));
    // Unpinned: the first receipt's key is pinned for the rest.
    assert!(verify_chain(&conformance("valid-chain.jsonl"), None).is_ok());
    // The published link: hash(receipt 0) = receipt 1's chain_prev_hash.
    assert!(single.hash.starts_with("9994a67b9cb324ba"));
}

#[test]
fn verifier_rejects_the_invalid_vectors() {
    let key = parse_hex32(TEST_PUB).unwrap();
    assert_eq!(verify_receipt(&conformance("invalid-signature.json"), Some(&key)), Err(ReceiptError::BadSignature));
    let broken = verify_chain(&conformance("broken-chain.jsonl"), Some(&key)).unwrap_err();
    assert_eq!(broken.seq, Some(3), "{broken}");
    assert_eq!(broken.line, 4);
    assert!(broken.to_string().contains("chain_seq 3"), "{broken}");
    let other = parse_hex32(&"11".repeat(32)).unwrap();
    assert!(matches!(verify_receipt(&conformance("valid-single.json"), Some(&other)), Err(ReceiptError::WrongSigner { .. })));
}

#[test]
fn emitted_sample_chain_verifies_and_matches_the_committed_golden_file() {
    let receipts = sample_chain();
    let jsonl = to_jsonl(&receipts);
    let key = parse_hex32(TEST_PUB).unwrap();
    let summary = verify_chain(&jsonl, Some(&key)).unwrap();
    assert_eq!(summary.count, 6);
    assert_eq!(summary.root_hash, receipts.last().unwrap().hash_hex());
    assert_eq!(summary.chain_open.unwrap().chain_id, SAMPLE_CHAIN_ID);
    for r in &receipts {
        assert!(verify_receipt(&r.canonical_json(), Some(&key)).is_ok());
    }
    let golden = root().join("fixtures/receipts/warden-sample-chain.jsonl");
    if std::env::var_os("WARDEN_REGENERATE").is_some() {
        std::fs::write(&golden, &jsonl).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&golden).unwrap(), jsonl, "regenerate with WARDEN_REGENERATE=1");
}

#[test]
fn escapes_and_mapping_show_in_the_signed_bytes() {
    let receipts = sample_chain();
    let json = receipts[5].canonical_json();
    assert!(json.contains(r#""target":"demo/run\u2028shell\u2029\t\u0001café 日本""#), "{json}");
    let json3 = receipts[3].canonical_json();
    assert!(json3.contains(r#"file:///notes/a\u0026b \u003cdraft\u003e.md"#), "{json3}");
    assert!(json3.contains(r#""action_type":"read""#));
    assert!(json3.contains(r#""delegation_chain":["user:alice","svc:planner"]"#));
    let json2 = receipts[2].canonical_json();
    assert!(json2.contains(r#""delegation_chain":null"#), "{json2}");
    assert!(receipts[4].canonical_json().contains(r#""action_type":"write","#));
    assert!(receipts[4].canonical_json().contains(r#""verdict":"block","#));
    assert!(receipts[2].canonical_json().contains(r#""timestamp":"2026-04-15T12:00:02.00200024Z""#));
}

#[test]
fn every_one_byte_change_is_detected() {
    let jsonl = to_jsonl(&sample_chain());
    let key = parse_hex32(TEST_PUB).unwrap();
    let bytes = jsonl.as_bytes();
    let mut missed = Vec::new();
    for i in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[i] ^= 0x01;
        let Ok(text) = String::from_utf8(changed) else { continue }; // not UTF-8: unreadable anyway
        if verify_chain(&text, Some(&key)).is_ok() {
            missed.push(i);
        }
    }
    assert!(missed.is_empty(), "undetected one-byte changes at offsets {missed:?}");
}

fn lines() -> Vec<String> {
    to_jsonl(&sample_chain()).lines().map(str::to_string).collect()
}

fn check(lines: &[String]) -> Result<(), (Option<u64>, ChainReason)> {
    let key = parse_hex32(TEST_PUB).unwrap();
    verify_chain(&lines.join("\n"), Some(&key)).map(|_| ()).map_err(|f| (f.seq, f.reason))
}

#[test]
fn deleting_reordering_or_replaying_a_receipt_is_detected() {
    let all = lines();
    let mut deleted = all.clone();
    deleted.remove(2);
    assert_eq!(check(&deleted), Err((Some(3), ChainReason::SeqGap { expected: 2 })));

    let mut reordered = all.clone();
    reordered.swap(2, 3);
    assert_eq!(check(&reordered), Err((Some(3), ChainReason::SeqGap { expected: 2 })));

    let mut replayed = all.clone();
    replayed.insert(3, all[2].clone());
    assert_eq!(check(&replayed), Err((Some(2), ChainReason::SeqGap { expected: 3 })));

    let mut headless = all.clone();
    headless.remove(0);
    assert_eq!(check(&headless), Err((Some(1), ChainReason::SeqGap { expected: 0 })));

    // Splicing in a receipt from another chain (same key, same seq) breaks the hash link.
    let signer = test_signer();
    let mut other = Chain::new("other");
    let foreign: Vec<_> = sample_exchanges().into_iter().map(|e| other.append(e.to_record("x".into()), &signer)).collect();
    let mut spliced = all.clone();
    spliced[3] = foreign[3].canonical_json();
    assert!(matches!(check(&spliced), Err((Some(3), ChainReason::PrevHashMismatch { .. }))));
}

#[test]
fn truncating_the_tail_is_only_visible_through_the_root_hash() {
    // A chain cut after any receipt still verifies (as with every hash chain): auditors pin the
    // root hash the writer published, or the successor chain's chain-open receipt names the tail.
    let all = lines();
    let key = parse_hex32(TEST_PUB).unwrap();
    let full = verify_chain(&all.join("\n"), Some(&key)).unwrap();
    let cut = verify_chain(&all[..4].join("\n"), Some(&key)).unwrap();
    assert_ne!(full.root_hash, cut.root_hash);
}

#[test]
fn one_text_per_receipt_and_one_receipt_per_line() {
    let all = lines();
    let key = parse_hex32(TEST_PUB).unwrap();
    let verify = |lines: &[String]| verify_chain(&lines.join("\n"), Some(&key));
    // An upper-cased signature decodes to the same bytes but is another text, another root hash.
    let mut upper = all.clone();
    let last = upper.len() - 1;
    let sig = serde_json::from_str::<Value>(&upper[last]).unwrap()["signature"].as_str().unwrap().to_owned();
    upper[last] = upper[last].replace(&sig, &format!("ed25519:{}", sig.trim_start_matches("ed25519:").to_uppercase()));
    assert!(verify(&upper).unwrap_err().to_string().contains("upper-case hex"));
    // A zero of the wrong type in an omitted field is not the omission it hashes as.
    for wrong in [r#""intent":false,"#, r#""parent_action_id":[],"#, r#""contract_generation":0.0,"#] {
        let mut typed = all.clone();
        typed[2] = typed[2].replacen(r#""action_record":{"#, &format!(r#""action_record":{{{wrong}"#), 1);
        assert!(verify(&typed).is_err(), "{wrong}");
    }
    // Receipts wrapped once as flight-recorder entries verify; an entry inside an entry does not.
    let wrapped: Vec<String> = all.iter().map(|l| format!(r#"{{"type":"action_receipt","detail":{l}}}"#)).collect();
    assert_eq!(verify(&wrapped).unwrap().count, all.len());
    let mut nested = wrapped.clone();
    nested[1] = format!(r#"{{"type":"action_receipt","detail":{}}}"#, wrapped[1]);
    assert!(verify(&nested).is_err());
    // Other entries are skipped, and counted.
    let mut noted = all.clone();
    noted.insert(2, r#"{"type":"note","detail":{}}"#.to_owned());
    assert_eq!(verify(&noted).unwrap().skipped, 1);
}
