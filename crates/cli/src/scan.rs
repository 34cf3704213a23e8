//! `warden scan`: the content scanner the filter runs, over samples on disk, for the corpora
//! (`fixtures/scan/`), the false-positive report and the cross-check against other scanners
//! (`tools/scan_crosscheck.py`).
//!
//! - `warden scan --jsonl SAMPLES.jsonl`: one `{"id", "text"}` per line in, one
//!   `{"id", "findings": [{"detector", "class", "decoded", "span"}]}` per line out (every detector,
//!   whatever its default action).
//! - `warden scan FILE...`: each file as one sample; one line per finding.
//!
//! The text is scanned as a tool would receive it (plain text, one level of decoding, folded for
//! injected instructions): the same [`Scanner`] the .wasm builds from the policy.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use mcp_warden_core::scan::{Found, Hit, Scanner, DETECTORS};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Sample {
    id: serde_json::Value,
    text: String,
}

/// The budget per sample: generous, the corpora are small files.
const MAX_BYTES: usize = 64 * 1024 * 1024;

pub fn run(args: &[String]) -> ExitCode {
    let scanner = match Scanner::new(&[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warden scan: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.first().map(String::as_str) {
        Some("--jsonl") => match args.get(1) {
            Some(path) => jsonl(&scanner, path),
            None => usage(),
        },
        Some(_) => files(&scanner, args),
        None => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: warden scan --jsonl SAMPLES.jsonl | warden scan FILE...");
    ExitCode::from(2)
}

fn describe(h: &Hit) -> serde_json::Value {
    let (detector, class) = match h.found {
        Found::Detector(i) => DETECTORS.get(i).map(|d| (d.id, d.class.as_str())).unwrap_or(("?", "?")),
        Found::Canary(_) => ("canary", "canary"),
        Found::Injection(f) => (mcp_warden_core::scan::phrases::FAMILIES.get(f).copied().unwrap_or("?"), "injection"),
    };
    json!({"detector": detector, "class": class, "decoded": h.decoded, "span": [h.span.0, h.span.1]})
}

fn jsonl(scanner: &Scanner, path: &str) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("warden scan: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let Ok(line) = line else { return ExitCode::FAILURE };
        if line.trim().is_empty() {
            continue;
        }
        let sample: Sample = match serde_json::from_str(&line) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warden scan: {path}:{}: {e}", n + 1);
                return ExitCode::FAILURE;
            }
        };
        let (hits, _) = scanner.scan_text(sample.text.as_bytes(), MAX_BYTES);
        let findings: Vec<serde_json::Value> = hits.iter().map(describe).collect();
        if writeln!(out, "{}", json!({"id": sample.id, "findings": findings})).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn files(scanner: &Scanner, paths: &[String]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut found = false;
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warden scan: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (hits, _) = scanner.scan_text(&bytes, MAX_BYTES);
        for h in &hits {
            found = true;
            let _ = writeln!(out, "{path}: {}", describe(h));
        }
    }
    if found {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
