//! flow-bench count N [POLICY.json]: one whole exchange through the request flow on the fake
//! host, N times: the 1 KB bench `tools/call` (its headers from `bench/payloads`) and the bench
//! upstream's small answer, under the shipped default policy (`{}`) or the given one, for
//! `valgrind --tool=callgrind` (instructions per exchange = (Ir(N) − Ir(1)) / (N − 1)). Envoy's
//! own work and the host calls are not in it; what the filter's core does per exchange is, with
//! a function-level breakdown that the stripped Envoy build cannot give.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;

use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::exchange::ExchangeStats;
use mcp_warden_core::flow::vm::VmCache;
use mcp_warden_core::flow::RequestFlow;
use mcp_warden_core::policy::killswitch::KillSwitch;
use mcp_warden_core::policy::load;
use mcp_warden_core::ports::{PeerFact, Step};

/// The bench upstream's small answer (`bench/upstream.c`, `SMALL_BODY`).
const ANSWER: &str = concat!(
    r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"echo: hello","type":"text"}],"#,
    r#""isError":false,"resultType":"complete","structuredContent":{"result":"echo: hello"},"#,
    r#""tools":[{"name":"search_documents","description":"Searches documents.","inputSchema":{"type":"object"}}],"#,
    r#""_meta":{"io.modelcontextprotocol/serverInfo":{"name":"bench-upstream","version":"0.1.0"}}}}"#
);

fn main() {
    let n: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let doc = std::env::args().nth(3).map(|p| std::fs::read(p).expect("the policy file")).unwrap_or_else(|| b"{}".to_vec());
    let policy = Rc::new(load(&doc).expect("a valid policy"));
    let body = std::fs::read("bench/payloads/modern-tools_call-1k.json").expect("run from the repo root");
    let head = std::fs::read_to_string("bench/payloads/modern-tools_call-1k.headers").expect("the headers");
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/mcp".to_vec()),
        (":authority".into(), b"gateway".to_vec()),
    ];
    headers.extend(
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().as_bytes().to_vec())),
    );
    let mut host = FakeHost::default();
    // One worker VM's caches, kept across its streams as the filter keeps them.
    let vm = Rc::new(RefCell::new(VmCache::default()));
    let kill = Rc::new(KillSwitch::default());
    host.clock.advance_ms(1_000_000);
    for _ in 0..n {
        host.clock.advance_ms(1);
        host.http.peer =
            vec![(PeerFact::UpstreamCluster, "mcp_upstream".into()), (PeerFact::SourceAddress, "127.0.0.1:40000".into())];
        host.http.headers = headers.clone();
        let mut flow = RequestFlow::for_vm(Rc::clone(&policy), Rc::clone(&kill), Rc::clone(&vm));
        let step = host.post(&mut flow, body.clone());
        assert_eq!(step, Step::Continue, "the bench call is forwarded: {:?}", host.http.reply);
        let out = host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[ANSWER.as_bytes()]);
        black_box(out);
        let stats = ExchangeStats {
            start_unix_nanos: 0,
            duration_micros: 100,
            bytes_in: body.len() as u64,
            bytes_out: ANSWER.len() as u64,
            filter_micros: None,
        };
        flow.on_log(stats, &mut host.queue, &mut host.metrics);
        host.queue.messages.clear();
    }
}
