//! The content scanner against its corpora (`fixtures/scan/`): every true positive (each
//! detector, plain and encoded) is found by its own detector; the benign corpus (source code,
//! logs, ids, base64 images, JSON APIs, prose in several languages, real MCP exchanges), each
//! file sent as a tool's argument and as a tool's result under the shipped default policy, is
//! never blocked nor redacted; every injected instruction of `injections.jsonl` (each family,
//! plain, paraphrased and disguised) is found as its family both ways. The per-detector false-positive counts are printed (README,
//! "Content scanning"; `tools/scan_crosscheck.py` writes the full report).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mcp_warden_core::content_scan::judge;
use mcp_warden_core::inspect::Disposition;
use mcp_warden_core::policy::scan::{Direction, Subject};
use mcp_warden_core::policy::{self};
use mcp_warden_core::scan::{Found, Scanner, DETECTORS};
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scan")
}

fn true_positives() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(root().join("true_positives.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["detector"].as_str().unwrap().to_owned(),
                v["variant"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `text` as a tool's argument (request) and as a tool's result (response).
fn both_ways(text: &str) -> [(Direction, Value); 2] {
    [
        (
            Direction::Request,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t", "arguments": {"input": text}}}),
        ),
        (Direction::Response, json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}})),
    ]
}

fn id_of(found: Found) -> String {
    match found {
        Found::Detector(i) => DETECTORS[i].id.to_owned(),
        Found::Canary(_) => "canary".to_owned(),
        Found::Injection(f) => mcp_warden_core::scan::phrases::FAMILIES[f].to_owned(),
    }
}

#[test]
fn every_true_positive_is_found_by_its_detector_plain_and_encoded() {
    let scanner = Scanner::new(&[]).unwrap();
    let samples = true_positives();
    let mut covered: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut missed = Vec::new();
    for (detector, variant, text) in &samples {
        let (hits, _) = scanner.scan_text(text.as_bytes(), 1 << 24);
        let ids: Vec<String> = hits.iter().map(|h| id_of(h.found)).collect();
        if ids.contains(detector) {
            covered
                .entry(DETECTORS.iter().find(|d| d.id == detector).map(|d| d.id).unwrap_or("?"))
                .or_default()
                .insert(variant.clone());
        } else {
            missed.push(format!("{detector} ({variant}): found {ids:?} in {:?}", text.chars().take(120).collect::<String>()));
        }
    }
    assert!(missed.is_empty(), "{} of {} missed:\n{}", missed.len(), samples.len(), missed.join("\n"));
    for d in DETECTORS {
        let variants = covered.get(d.id).cloned().unwrap_or_default();
        for v in ["plain", "base64", "base64url", "hex", "percent", "json_escape", "base32", "hex_pairs", "decimal"] {
            assert!(variants.contains(v), "{}: no {v} true positive in the corpus", d.id);
        }
    }
}

#[test]
fn true_positives_in_arguments_and_results_are_acted_on_under_the_default_policy() {
    let p = policy::load(b"{}").unwrap();
    for (detector, variant, text) in true_positives() {
        let d = DETECTORS.iter().find(|d| d.id == detector).unwrap();
        if d.mild {
            continue;
        }
        for (direction, message) in both_ways(&text) {
            let subject = Subject { tool: "t", principal: "p", upstream: "u", direction };
            let j = judge(&p.scan, &subject, message.to_string().as_bytes());
            let acted = j.blocked().is_some() || j.rewrite.is_some();
            assert!(acted, "{detector} ({variant}, {direction:?}) passed: {:?}", j.findings);
            if let Some(new) = j.rewrite {
                let v: Value = serde_json::from_slice(&new).expect("a redacted message is JSON");
                assert!(v.is_object());
            }
        }
    }
}

#[test]
fn every_injected_instruction_is_found_as_its_family_in_arguments_and_results() {
    let p = policy::load(b"{}").unwrap();
    let text = std::fs::read_to_string(root().join("injections.jsonl")).unwrap();
    let mut missed = Vec::new();
    let mut families = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let (family, variant, sample) =
            (v["family"].as_str().unwrap(), v["variant"].as_str().unwrap(), v["text"].as_str().unwrap());
        families.insert(family.to_owned());
        for (direction, message) in both_ways(sample) {
            let subject = Subject { tool: "t", principal: "p", upstream: "u", direction };
            let j = judge(&p.scan, &subject, message.to_string().as_bytes());
            if !j.findings.iter().any(|f| f.what == family) {
                missed.push(format!("{family}/{variant} ({direction:?}): {sample}"));
            }
        }
    }
    assert_eq!(families.len(), mcp_warden_core::scan::phrases::FAMILIES.len(), "every family has samples");
    assert!(missed.is_empty(), "injected instructions missed:\n{}", missed.join("\n"));
}

fn benign_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("benign")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "README.md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_benign_corpus_is_never_blocked_nor_redacted_and_its_false_positives_are_counted() {
    let p = policy::load(b"{}").unwrap();
    let files = benign_files();
    assert!(files.len() >= 400, "benign corpus: {} files", files.len());
    let mut flagged: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut acted = Vec::new();
    let mut bytes = 0usize;
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        bytes += text.len();
        let mut seen = BTreeSet::new();
        for (direction, message) in both_ways(&text) {
            let subject = Subject { tool: "t", principal: "p", upstream: "u", direction };
            let j = judge(&p.scan, &subject, message.to_string().as_bytes());
            for finding in &j.findings {
                seen.insert(finding.what);
                if finding.disposition == Disposition::Block {
                    acted.push(format!("{}: {} blocked ({direction:?})", f.display(), finding.what));
                }
            }
            if j.rewrite.is_some() {
                acted.push(format!("{}: redacted ({direction:?}) for {:?}", f.display(), j.findings));
            }
        }
        for what in seen {
            *flagged.entry(what).or_default() += 1;
        }
    }
    println!("benign corpus: {} files, {bytes} bytes; files flagged (reported, not acted on) by finding:", files.len());
    for (what, n) in &flagged {
        println!("  {what}: {n} ({:.2}%)", 100.0 * *n as f64 / files.len() as f64);
    }
    assert!(acted.is_empty(), "benign payloads acted on:\n{}", acted.join("\n"));
}
