//! OpenTelemetry's MCP conventions through the whole flow on the fake host: what the receipt
//! record says about an exchange (protocol version, era, the error the client got: the gateway's,
//! a withheld answer's, the upstream's JSON-RPC error or tool error), and the per-operation
//! histogram with its bounded labels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::VmCache;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::metrics::MAX_TOOL_LABELS;
use mcp_warden_core::policy::{self, KillSwitch, Policy};
use mcp_warden_core::ports::{PeerFact, Step};
use mcp_warden_core::receipt::exchange::Exchange;

const HISTOGRAM: &str = "mcp.server.operation.duration";

fn policy() -> Rc<Policy> {
    // The content scan reads every answer (so the pipeline sees the upstream's errors); one rule denies.
    let doc = json!({
        "content_scan": {"canaries": ["mcpw-canary-5c1e9b"]},
        "rules": [{"id": "no-deletes", "match": {"names": ["delete_*"]}, "action": "deny", "hide": false}],
    });
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

fn call(host: &mut FakeHost, flow: &mut RequestFlow, tool: &str, legacy: bool) -> Step {
    let meta = if legacy {
        String::new()
    } else {
        r#","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#
            .to_owned()
    };
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":"r-7","method":"tools/call","params":{{"name":"{tool}","arguments":{{}}{meta}}}}}"#);
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        (":authority".into(), b"gateway".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    if legacy {
        host.http.headers.push(("mcp-protocol-version".into(), b"2025-11-25".to_vec()));
        host.http.headers.push(("mcp-session-id".into(), b"sess-1".to_vec()));
    } else {
        host.http.headers.push(("mcp-protocol-version".into(), b"2026-07-28".to_vec()));
        host.http.headers.push(("mcp-method".into(), b"tools/call".to_vec()));
        host.http.headers.push(("mcp-name".into(), tool.as_bytes().to_vec()));
    }
    host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
    host.post(flow, body.into_bytes())
}

fn answer(host: &mut FakeHost, flow: &mut RequestFlow, body: &Value) {
    host.respond(flow, &[(":status", "200"), ("content-type", "application/json")], &[body.to_string().as_bytes()]);
}

/// Ends the stream; returns its receipt record and the histogram sample's stat name.
fn finish(host: &mut FakeHost, flow: &RequestFlow) -> (Exchange, String) {
    host.queue.ready = true;
    host.queue.messages.clear();
    host.metrics.samples.clear();
    flow.on_log(ExchangeStats { duration_micros: 2_500, ..ExchangeStats::default() }, &mut host.queue, &mut host.metrics);
    let e = Exchange::decode(&host.queue.messages[0]).unwrap();
    let samples: Vec<_> = host.metrics.samples.iter().filter(|(n, _)| n.starts_with(HISTOGRAM)).cloned().collect();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].1, 2, "milliseconds");
    (e, samples[0].0.clone())
}

fn vm_flow(vm: &Rc<RefCell<VmCache>>) -> RequestFlow {
    RequestFlow::for_vm(policy(), Rc::new(KillSwitch::default()), Rc::clone(vm))
}

#[test]
fn a_served_call_names_its_version_era_and_tool() {
    let vm = Rc::default();
    let mut host = FakeHost::default();
    let mut flow = vm_flow(&vm);
    assert_eq!(call(&mut host, &mut flow, "echo", false), Step::Continue);
    answer(&mut host, &mut flow, &json!({"jsonrpc": "2.0", "id": "r-7", "result": {"content": []}}));
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!((e.protocol_version.as_str(), e.era.as_str(), e.session.as_str()), ("2026-07-28", "modern", ""));
    assert_eq!((e.error_code, e.tool_error), (None, false));
    assert_eq!(sample, "mcp.server.operation.duration.mcp.method.name.tools/call.gen_ai.tool.name.echo");
}

#[test]
fn the_error_the_client_got_is_recorded_whoever_made_it() {
    let vm = Rc::default();
    let mut host = FakeHost::default();

    // The upstream's tool error: `isError: true` (only the literal true).
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "flaky", false);
    answer(&mut host, &mut flow, &json!({"jsonrpc": "2.0", "id": "r-7", "result": {"content": [], "isError": true}}));
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!((e.error_code, e.tool_error), (None, true));
    // A tool never answered without an error gets no label of its own.
    assert!(sample.ends_with(".gen_ai.tool.name._OTHER.error.type.tool_error"), "{sample}");

    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "flaky", false);
    answer(&mut host, &mut flow, &json!({"jsonrpc": "2.0", "id": "r-7", "result": {"content": [], "isError": "true"}}));
    assert!(!finish(&mut host, &flow).0.tool_error);

    // The upstream's JSON-RPC error.
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "missing", false);
    let error = json!({"jsonrpc": "2.0", "id": "r-7", "error": {"code": -32602, "message": "Unknown tool: missing"}});
    answer(&mut host, &mut flow, &error);
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!((e.error_code, e.tool_error), (Some(-32602), false));
    assert!(sample.ends_with(".error.type.-32602"), "{sample}");

    // The gateway's own refusal: what its reply carries.
    let mut flow = vm_flow(&vm);
    assert_eq!(call(&mut host, &mut flow, "delete_all", false), Step::Answered);
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!(e.error_code, Some(-31403));
    assert!(sample.ends_with(".gen_ai.tool.name._OTHER.error.type.-31403"), "{sample}");

    // A withheld answer: the client got the gateway's -31502, not the upstream's result.
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "echo", false);
    let leak = json!({"jsonrpc": "2.0", "id": "r-7", "result": {"content": [{"type": "text", "text": "mcpw-canary-5c1e9b"}]}});
    answer(&mut host, &mut flow, &leak);
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!(e.error_code, Some(-31502));
    assert!(sample.ends_with(".error.type.-31502"), "{sample}");
}

#[test]
fn a_legacy_call_names_its_session_by_fingerprint_only() {
    let vm = Rc::default();
    let mut host = FakeHost::default();
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "echo", true);
    let (e, _) = finish(&mut host, &flow);
    assert_eq!((e.protocol_version.as_str(), e.era.as_str()), ("2025-11-25", "legacy"));
    assert_eq!(e.session, mcp_warden_core::receipt::exchange::fingerprint("sess-1"));
    assert!(!String::from_utf8_lossy(&host.queue.messages[0]).contains("sess-1"));
}

#[test]
fn tool_labels_stay_bounded_whatever_names_clients_send() {
    let vm: Rc<RefCell<VmCache>> = Rc::default();
    let mut host = FakeHost::default();
    let mut labelled = std::collections::BTreeSet::new();
    for i in 0..MAX_TOOL_LABELS + 20 {
        let mut flow = vm_flow(&vm);
        let tool = format!("tool_{i}");
        call(&mut host, &mut flow, &tool, false);
        answer(&mut host, &mut flow, &json!({"jsonrpc": "2.0", "id": "r-7", "result": {"content": []}}));
        let (_, sample) = finish(&mut host, &flow);
        labelled.insert(sample);
    }
    // MAX_TOOL_LABELS names of their own, then one `_OTHER` for every later name.
    assert_eq!(labelled.len(), MAX_TOOL_LABELS + 1);
    assert!(labelled.iter().any(|s| s.ends_with(".gen_ai.tool.name._OTHER")));
}

#[test]
fn an_upstream_cannot_grow_the_error_labels() {
    let vm = Rc::default();
    let mut host = FakeHost::default();
    let mut labels = std::collections::BTreeSet::new();
    for code in 1..50 {
        let mut flow = vm_flow(&vm);
        call(&mut host, &mut flow, "echo", false);
        let error = json!({"jsonrpc": "2.0", "id": "r-7", "error": {"code": -40000 - code, "message": "odd"}});
        answer(&mut host, &mut flow, &error);
        let (e, sample) = finish(&mut host, &flow);
        assert_eq!(e.error_code, Some(-40000 - code)); // the receipt keeps the exact code
        labels.insert(sample);
    }
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert!(labels.iter().all(|s| s.ends_with(".error.type._OTHER")));
}

#[test]
fn an_error_whose_code_is_no_integer_is_still_an_error_and_admits_no_label() {
    let vm = Rc::default();
    let mut host = FakeHost::default();
    for error in [json!({"code": -32602.5, "message": "x"}), json!({"code": "x"}), json!("boom")] {
        let mut flow = vm_flow(&vm);
        call(&mut host, &mut flow, "fresh_tool", false);
        answer(&mut host, &mut flow, &json!({"jsonrpc": "2.0", "id": "r-7", "error": error}));
        let (e, sample) = finish(&mut host, &flow);
        assert_eq!(e.error_code, Some(0), "{error}");
        assert!(sample.ends_with(".gen_ai.tool.name._OTHER.error.type._OTHER"), "{sample}");
    }
}

#[test]
fn an_answer_that_failed_at_the_http_level_is_an_error_by_its_status() {
    let vm = Rc::default();
    let mut host = FakeHost::default();
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "echo", false);
    host.respond(&mut flow, &[(":status", "503"), ("content-type", "text/plain")], &[b"upstream connect error"]);
    let (e, sample) = finish(&mut host, &flow);
    assert_eq!((e.error_code, e.http_error), (None, Some(503)));
    assert!(sample.ends_with(".gen_ai.tool.name._OTHER.error.type.503"), "{sample}");
    // A headers-only failure too.
    let mut flow = vm_flow(&vm);
    call(&mut host, &mut flow, "echo", false);
    host.respond(&mut flow, &[(":status", "502")], &[]);
    assert_eq!(finish(&mut host, &flow).0.http_error, Some(502));
}
