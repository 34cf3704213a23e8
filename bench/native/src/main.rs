//! classify-bench <payload-dir> [time|count N]
//!
//! `time`    : wall-clock ns per classify_body call for each payload (median of 7 batches).
//! `count N [modern|legacy]` : run classify_body N times per (selected) payload and nothing else
//!             heavy, for callgrind (instructions per call = Ir(classify_body, inclusive) / N).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use mcp_warden_core::mcp::classify::{classify_body, RequestHead, WireRules};

struct Case {
    name: &'static str,
    body: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

fn load(dir: &Path, name: &'static str) -> Case {
    let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let text = std::fs::read_to_string(dir.join(format!("{name}.headers"))).unwrap_or_default();
    let headers = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().as_bytes().to_vec()))
        .collect();
    Case { name, body, headers }
}

impl Case {
    fn h(&self, n: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_slice())
    }
    fn head(&self) -> RequestHead<'_> {
        RequestHead {
            http_method: "POST",
            content_type: self.h("content-type"),
            content_encoding: self.h("content-encoding"),
            protocol_version: self.h("mcp-protocol-version"),
            mcp_method: self.h("mcp-method"),
            mcp_name: self.h("mcp-name"),
            session_id: self.h("mcp-session-id"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map(String::as_str).unwrap_or("bench/payloads"));
    let mode = args.get(2).map(String::as_str).unwrap_or("time");
    let rules = WireRules {
        modern_enabled: true,
        legacy_enabled: true,
        supported_versions: vec!["2026-07-28".into()],
        forward_cors_preflight: false,
        legacy_batches: false,
    };
    let cases = [load(dir, "modern-tools_call-1k"), load(dir, "legacy-tools_call-1k")];
    for c in &cases {
        let head = c.head();
        let r = classify_body(&head, &c.body, &rules);
        assert!(r.is_ok(), "{}: {:?}", c.name, r.err());
    }
    match mode {
        "count" => {
            let n: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let only = args.get(4).map(String::as_str).unwrap_or("");
            for c in cases.iter().filter(|c| c.name.starts_with(only)) {
                let head = c.head();
                for _ in 0..n {
                    black_box(classify_body(black_box(&head), black_box(&c.body), &rules).is_ok());
                }
            }
        }
        _ => {
            for c in &cases {
                let head = c.head();
                let iters = 20_000u32;
                let mut samples = Vec::new();
                for _ in 0..7 {
                    let t = Instant::now();
                    for _ in 0..iters {
                        black_box(classify_body(black_box(&head), black_box(&c.body), &rules).is_ok());
                    }
                    samples.push(t.elapsed().as_nanos() as f64 / iters as f64);
                }
                samples.sort_by(f64::total_cmp);
                println!(
                    "{{\"payload\":\"{}\",\"bytes\":{},\"ns_per_call_median\":{:.0},\"ns_min\":{:.0},\"ns_max\":{:.0}}}",
                    c.name, c.body.len(), samples[3], samples[0], samples[6]
                );
            }
        }
    }
}
