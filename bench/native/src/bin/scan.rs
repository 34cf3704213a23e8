//! scan-bench [time|count N CASE]: the content scan on its own, natively, under the shipped
//! default policy (`{}`): `judge` of one message, the call the filter makes per request and per
//! answer.
//!
//! Cases: a clean 1 KB `tools/call` (the bench payload), a clean 10 KB tool result (the text
//! `bench/upstream.c` serves for `result10k`), and the same 10 KB result with one secret in it.
//! `time` prints ns per message and ns per byte (median of 7 batches); `count N CASE` judges
//! CASE N times and nothing else, for `valgrind --tool=callgrind` (instructions per byte =
//! Ir / N / bytes).

use std::hint::black_box;
use std::time::Instant;

use mcp_warden_core::policy::scan::{Direction, Subject};
use mcp_warden_core::policy::load;
use mcp_warden_core::content_scan::judge;

const LINE: &str = "2026-12-01T17:47:37.512Z INFO request 7c9e6679-7425-40de-944b-e07fc1f90ae7 GET /api/v1/documents?page=3 \
200 in 12 ms; commit 9fceb02d0ae598e95dc970b74767f19372d61af8, user ann, region eu-west-1.\\n\
The search found twelve documents about quarterly planning; the newest was updated by the finance team \
and links the budget sheet, the roadmap and two meeting notes.\\n";

fn result(kb: usize, secret: Option<&str>) -> Vec<u8> {
    let mut text = String::new();
    while text.len() + LINE.len() < kb * 1024 {
        text.push_str(LINE);
        if let Some(s) = secret {
            if text.len() > kb * 512 && !text.contains(s) {
                text.push_str(s);
            }
        }
    }
    format!(r#"{{"jsonrpc":"2.0","id":3,"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false,"resultType":"complete"}}}}"#)
        .into_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let policy = load(b"{}").expect("the default policy");
    let call = std::fs::read("bench/payloads/modern-tools_call-1k.json").expect("run from the repo root");
    let cases: Vec<(&str, Direction, Vec<u8>)> = vec![
        ("call1k", Direction::Request, call),
        ("result10k", Direction::Response, result(10, None)),
        ("result10k_hit", Direction::Response, result(10, Some(" token ghp_R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0 "))),
    ];
    let run = |direction: Direction, msg: &[u8]| {
        let subject = Subject { tool: "search_documents", principal: "bench", upstream: "mcp_upstream", direction };
        black_box(judge(&policy.scan, &subject, black_box(msg)))
    };
    match args.get(1).map(String::as_str).unwrap_or("time") {
        "count" => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let which = args.get(3).map(String::as_str).unwrap_or("result10k");
            let (_, d, msg) = cases.iter().find(|c| c.0 == which).expect("a case name");
            for _ in 0..n {
                run(*d, msg);
            }
            println!("{which}: {n} judgements of {} bytes", msg.len());
        }
        _ => {
            for (name, d, msg) in &cases {
                let verdict = run(*d, msg);
                let mut batches = Vec::new();
                for _ in 0..7 {
                    let iters = 2000;
                    let t = Instant::now();
                    for _ in 0..iters {
                        run(*d, msg);
                    }
                    batches.push(t.elapsed().as_nanos() as f64 / iters as f64);
                }
                batches.sort_by(|a, b| a.total_cmp(b));
                let ns = batches[3];
                println!(
                    "{name:14} {:6} B  {:9.0} ns/message  {:6.2} ns/byte  findings {:?}",
                    msg.len(),
                    ns,
                    ns / msg.len() as f64,
                    verdict.findings.iter().map(|f| f.what).collect::<Vec<_>>()
                );
            }
        }
    }
}
