//! correlate-bench count N: the memory across requests on its own, natively, under the shipped
//! default policy (`{}`): measuring the 1 KB bench `tools/call` and accounting it against one
//! correlation key in an in-memory store, N times (the calls the filter makes per request, on
//! the view the content scan already made), for
//! `valgrind --tool=callgrind` (instructions per request = Ir / N).

use std::hint::black_box;

use mcp_warden_core::correlate::{account, key_of, measure_view, Call};
use mcp_warden_core::scan::view::view;
use mcp_warden_core::fake_host::FakeKv;
use mcp_warden_core::policy::load;
use mcp_warden_core::policy::scan::{Direction, Subject};

fn main() {
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let policy = load(b"{}").expect("the default policy");
    let call = std::fs::read("bench/payloads/modern-tools_call-1k.json").expect("run from the repo root");
    let mut kv = FakeKv::new();
    let key = key_of("0123456789abcdef0123456789abcdef");
    let subject = Subject { tool: "search_documents", principal: "p", upstream: "u", direction: Direction::Request };
    // The request path hands over the content scan's view of the body: not this step's cost.
    let v = view(&call).expect("a view");
    // `CORRELATE_PART=measure|account`: one half alone (the other runs once, outside the loop).
    let part = std::env::var("CORRELATE_PART").unwrap_or_default();
    let once = measure_view(&policy.correlation, &call, &v);
    for i in 0..n {
        let sends = if part == "account" { once.clone() } else { measure_view(&policy.correlation, black_box(&call), &v) };
        if part == "measure" {
            black_box(&sends);
            continue;
        }
        let c = Call {
            key: &key,
            task: None,
            tool: Some("search_documents"),
            annotated: 0,
            sends: Some(&sends),
            points: 0,
            acts: true,
            refused: false,
            now_ms: 1_000_000 + i as u64,
        };
        black_box(account(&policy.correlation, &policy.scan, &subject, &mut kv, &c));
    }
}
