//! The flow on the complete fake host, through every port: identity from peer facts, rate limits
//! in the shared KV across streams, the response pipeline (findings, blocking, fail closed),
//! receipts through the queue, host failures, and the policy hash the receipts sign.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::fake_host::{FakeHost, FakeHttp, FakeKv};
use mcp_warden_core::flow::response::ResponsePipeline;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::inspect::{Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use mcp_warden_core::mcp::model::{Era, McpRequest, MessageKind};
use mcp_warden_core::mcp::Method;
use mcp_warden_core::metrics;
use mcp_warden_core::policy::{self, Policy};
use mcp_warden_core::ports::{Fault, Kv, PeerFact, Step};
use mcp_warden_core::principal::{Origin, Principal};
use mcp_warden_core::receipt::exchange::{Exchange, WireVerdict};

const META: &str =
    r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

fn call_body(id: u32, tool: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}},{META}}}}}"#)
}

/// A modern `tools/call` on `host`, driven as Envoy does (headers, then the whole body).
fn call(flow: &mut RequestFlow, host: &mut FakeHost, id: u32, tool: &str) -> Step {
    let body = call_body(id, tool);
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/mcp".to_vec()),
        (":authority".into(), b"gateway".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("mcp-protocol-version".into(), b"2026-07-28".to_vec()),
        ("mcp-method".into(), b"tools/call".to_vec()),
        ("mcp-name".into(), tool.as_bytes().to_vec()),
        ("content-length".into(), body.len().to_string().into_bytes()),
    ];
    host.http.body = body.into_bytes();
    host.http.reply = None;
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    let n = host.http.body.len();
    flow.on_request_body(&mut host.ports(), n, true)
}

fn policy(doc: Value) -> Rc<Policy> {
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

fn reply_json(http: &FakeHttp) -> (u32, Value) {
    let (status, _, body) = http.reply.clone().expect("a local reply");
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn identity_comes_from_peer_facts_and_client_warden_headers_are_stripped() {
    let p = policy(json!({"principal": {"sources": ["jwt"]}}));
    let mut host = FakeHost::default();
    host.http.peer = vec![
        (PeerFact::JwtPayload, r#"{"sub":"alice","act":{"sub":"agent-7"}}"#.into()),
        (PeerFact::SourceAddress, "10.0.0.9:5555".into()),
        (PeerFact::UpstreamCluster, "mcp-fs".into()),
    ];
    let mut flow = RequestFlow::new(p);
    let body = call_body(1, "echo");
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("mcp-protocol-version".into(), b"2026-07-28".to_vec()),
        ("mcp-method".into(), b"tools/call".to_vec()),
        ("mcp-name".into(), b"echo".to_vec()),
        ("X-Warden-Principal".into(), b"forged".to_vec()),
        ("x-warden-extra".into(), b"forged".to_vec()),
    ];
    host.http.body = body.into_bytes();
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    let n = host.http.body.len();
    assert_eq!(flow.on_request_body(&mut host.ports(), n, true), Step::Continue);

    let o = flow.outcome().unwrap();
    assert_eq!(o.principal.id, "alice");
    assert_eq!(o.principal.actors, vec!["agent-7".to_owned()]);
    assert_eq!(o.upstream, "mcp-fs");
    assert_eq!(host.http.header("x-warden-principal-source").as_deref(), Some(&b"jwt"[..]));
    // The state key every table uses, derived here independently of `Principal::key` (a change to
    // it silently re-keys all shared state): SHA-256 over the versioned domain, the origin, the id
    // and the delegation chain, first 16 bytes in hex.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(b"mcpw/principal/v1\0jwt\0alice\0agent-7");
    let want = hex::encode(&digest[..16]);
    assert_eq!(host.http.header("x-warden-principal").as_deref(), Some(want.as_bytes()));
    assert!(host.http.header("x-warden-extra").is_none(), "a client's x-warden-* header reached the upstream");
    assert!(host.http.lines("X-Warden-Principal").is_empty());
}

#[test]
fn rate_limits_keep_their_buckets_in_the_shared_kv_across_streams() {
    let p = policy(json!({"rules": [{"id": "one-per-minute", "match": {"methods": ["tools/call"]}, "action": "rate_limit",
        "rate_limit": {"rate": 1, "period_secs": 60, "burst": 1, "key": "principal"}}]}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let mut first = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut first, &mut host, 1, "echo"), Step::Continue);
    let mut second = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut second, &mut host, 2, "echo"), Step::Answered);
    let (status, body) = reply_json(&host.http);
    assert_eq!(status, 429);
    assert_eq!(body["id"], 2);
    assert_eq!(body["error"]["code"], -31429);
    let retry = host.http.reply.as_ref().unwrap().1.iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v.clone());
    assert_eq!(retry.as_deref(), Some("60"));
    assert_eq!(host.metrics.count_of("mcp_warden_rate_limited_total.rule.one-per-minute"), 1);
    assert!(host.kv.writes > 0, "the bucket lives in the KV port");

    // A minute later the bucket has refilled.
    host.clock.advance_ms(60_000);
    let mut third = RequestFlow::new(p);
    assert_eq!(call(&mut third, &mut host, 3, "echo"), Step::Continue);
}

#[test]
fn a_failing_host_call_fails_the_request_closed_and_is_counted() {
    let mut host = FakeHost::default();
    host.http.fail_call = Some("get_buffer_bytes");
    let mut flow = RequestFlow::new(Rc::new(Policy::default()));
    assert_eq!(call(&mut flow, &mut host, 1, "echo"), Step::Answered);
    let (status, body) = reply_json(&host.http);
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], -32603);
    assert!(body["error"]["message"].as_str().unwrap().contains("get_buffer_bytes"), "{body}");
    assert_eq!(host.metrics.count_of("mcp_warden_host_errors_total.call.get_buffer_bytes"), 1);
}

#[test]
fn every_decision_reaches_the_receipt_queue_or_is_counted() {
    let p = policy(json!({"rules": [{"id": "no-deletes", "match": {"names": ["delete_*"]}, "action": "deny", "hide": false}]}));
    let mut host = FakeHost::default();
    host.queue.ready = true;
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut flow, &mut host, 7, "delete_all"), Step::Answered);
    assert_eq!(reply_json(&host.http).0, 403);
    flow.on_log(ExchangeStats { filter_micros: Some(12), ..ExchangeStats::default() }, &mut host.queue, &mut host.metrics);
    assert_eq!(host.queue.messages.len(), 1);
    let e = Exchange::decode(&host.queue.messages[0]).unwrap();
    assert_eq!((e.method.as_str(), e.name.as_str(), e.request_id.as_str()), ("tools/call", "delete_all", "7"));
    assert_eq!(e.verdict, WireVerdict::Block);
    assert_eq!(e.rule, "no-deletes");
    assert_eq!(e.policy_hash, p.hash);
    assert!(host.metrics.samples.contains(&(metrics::FILTER_TIME_US.to_owned(), 12)));

    // No writer deployed: nothing is built, the loss is counted. This request was not timed
    // (the host samples): the histogram gets no sample for it, not a zero.
    host.queue.ready = false;
    flow.on_log(ExchangeStats::default(), &mut host.queue, &mut host.metrics);
    assert_eq!(host.queue.messages.len(), 1);
    assert_eq!(host.metrics.count_of(metrics::RECEIPTS_UNQUEUED), 1);
    assert_eq!(host.metrics.samples.iter().filter(|(name, _)| name == metrics::FILTER_TIME_US).count(), 1);
}

#[test]
fn the_policy_hash_is_over_the_canonical_document() {
    let a = policy::load(br#"{"rules":[{"id":"r","match":{"names":["x"]},"action":"deny"}],"max_body_bytes":1000}"#).unwrap();
    let b = policy::load(
        b"{ \"max_body_bytes\" : 1000,\n  \"rules\": [ {\"action\":\"deny\", \"match\": {\"names\": [\"x\"]}, \"id\": \"r\"} ] }",
    )
    .unwrap();
    let c = policy::load(br#"{"rules":[{"id":"r","match":{"names":["y"]},"action":"deny"}],"max_body_bytes":1000}"#).unwrap();
    assert_eq!(a.hash, b.hash, "key order and whitespace do not change the hash");
    assert_ne!(a.hash, c.hash, "every value does");
    assert!(a.hash.starts_with("sha256:") && a.hash.len() == 7 + 64, "{}", a.hash);
    assert_eq!(Policy::default().hash, policy::load(b"").unwrap().hash, "empty document = {{}}");
    assert_eq!(Policy::default().hash, policy::compile::canonical_hash(b"{}"));
}

// ------------------------------------------------------------------------------------------
// The response pipeline with an inspector of the test's own.

/// Blocks any message containing `SECRET`, redacts `token` to `*****`.
struct Tripwire;

impl Inspector for Tripwire {
    fn name(&self) -> &'static str {
        "tripwire"
    }
    fn inspect(&mut self, _: &ExchangeView<'_>, message: &[u8], _state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        let text = String::from_utf8_lossy(message);
        let finding = |what, severity, disposition| Finding {
            inspector: "tripwire",
            what,
            severity,
            data_class: Some("credential"),
            fault: Fault::Upstream,
            disposition,
        };
        if text.contains("SECRET") {
            findings.push(finding("secret", Severity::Critical, Disposition::Block));
            return Rewrite::Keep;
        }
        if text.contains("token") {
            findings.push(finding("token", Severity::Warning, Disposition::Report));
            return Rewrite::Replace(text.replace("token", "*****").into_bytes());
        }
        Rewrite::Keep
    }
}

fn view() -> (McpRequest, Principal) {
    let mut req = McpRequest::bodyless(None);
    req.era = Era::Modern;
    req.kind = MessageKind::Request;
    req.id = Some("5".into());
    req.method = Some("tools/call".into());
    req.op = Some(Method::ToolsCall);
    let who = Principal {
        origin: Origin::Anonymous,
        id: "anonymous".into(),
        actors: vec![],
        groups: vec![],
        claims: vec![],
        trust_domain: None,
        client_fingerprint: "fp".into(),
    };
    (req, who)
}

/// Feeds `chunks` through a pipeline the way Envoy streams a response; returns what the client got.
fn stream(p: &mut ResponsePipeline, content_type: &str, chunks: &[&str]) -> String {
    let (req, who) = view();
    let ex = ExchangeView { request: &req, principal: &who, principal_key: "pk", upstream: "up", now_ms: 0 };
    let mut kv = FakeKv::new();
    let mut http = FakeHttp {
        response_headers: vec![
            ("content-type".into(), content_type.as_bytes().to_vec()),
            ("content-length".into(), b"1".to_vec()),
        ],
        ..FakeHttp::default()
    };
    assert_eq!(p.on_headers(&mut http, false).unwrap(), Step::Continue);
    assert!(http.response_headers.iter().all(|(k, _)| k != "content-length"), "a rewritable answer loses its length");
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        http.response_body.extend_from_slice(c.as_bytes());
        let held = http.response_body.len();
        if p.on_body(&mut http, &mut kv, &ex, held, i + 1 == chunks.len()).unwrap() == Step::Continue {
            out.append(&mut http.response_body);
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_blocking_finding_replaces_a_json_answer_with_an_error_that_keeps_the_id() {
    let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
    let out = stream(&mut p, "application/json", &[r#"{"jsonrpc":"2.0","id":5,"result":{"t":"SE"#, r#"CRET"}}"#]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], 5);
    assert_eq!(v["error"]["code"], -31502);
    assert_eq!(v["error"]["data"], json!({"inspector": "tripwire", "finding": "secret"}));
    assert!(!out.contains("SECRET"), "the content never reaches the client");
    assert_eq!(p.findings().len(), 1);
}

#[test]
fn sse_events_are_inspected_one_by_one_and_a_block_ends_the_stream() {
    let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
    let out = stream(
        &mut p,
        "text/event-stream",
        &[
            "data: {\"a\":\"tok",
            "en\"}\n\ndata: {\"b\":1}\n",
            "\ndata: {\"c\":\"SECRET\"}\n\ndata: {\"d\":\"after\"}\n\n",
            "data: {\"e\":\"later\"}\n\n",
        ],
    );
    let events: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "{out}");
    assert_eq!(events[0], "data: {\"a\":\"*****\"}", "redacted in place, the stream goes on");
    assert_eq!(events[1], "data: {\"b\":1}");
    assert!(
        events[2].starts_with("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-31502"),
        "{}",
        events[2]
    );
    assert!(!out.contains("SECRET") && !out.contains("after") && !out.contains("later"), "{out}");
    let what: Vec<&str> = p.findings().iter().map(|f| f.what).collect();
    assert_eq!(what, ["token", "secret"]);
}

#[test]
fn an_answer_the_filter_cannot_parse_is_withheld_as_a_client_could_read_it() {
    // Each parses for some client (the BOM, 1e400 and the lone surrogate for JavaScript's, the
    // nesting for Python's pydantic) as the answer to whichever request has id 8.
    let deep = format!("{}{}", "[".repeat(140), "]".repeat(140));
    let bodies = [
        "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"tools\":[]}}".to_owned(),
        r#"{"jsonrpc":"2.0","id":8,"result":{"tools":[],"x":1e400}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":8,"result":{"tools":[],"x":"\ud800"}}"#.to_owned(),
        format!(r#"{{"jsonrpc":"2.0","id":8,"result":{{"tools":[],"x":{deep}}}}}"#),
    ];
    for body in &bodies {
        let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
        let out = stream(&mut p, "application/json", &[body]);
        assert!(out.contains("unparsable_response") && !out.contains("tools"), "{body}: {out}");
        let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
        let out = stream(&mut p, "text/event-stream", &["data: ", body.trim_start_matches('\u{feff}'), "\n\n"]);
        // (Without its BOM the first is a readable answer to another request: withheld as such.)
        assert!(out.contains("-31502") && !out.contains("tools"), "SSE {body}: {out}");
    }
    // An HTTP error is an error to every client: a body that does not parse passes as it is.
    let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
    let (req, who) = view();
    let ex = ExchangeView { request: &req, principal: &who, principal_key: "pk", upstream: "up", now_ms: 0 };
    let mut http = FakeHttp {
        response_headers: vec![(":status".into(), b"404".to_vec()), ("content-type".into(), b"application/json".to_vec())],
        ..FakeHttp::default()
    };
    p.on_headers(&mut http, false).unwrap();
    http.response_body = b"not found".to_vec();
    p.on_body(&mut http, &mut FakeKv::new(), &ex, 9, true).unwrap();
    assert_eq!(http.response_body, b"not found");
    assert!(p.findings().is_empty());
}

#[test]
fn an_sse_event_too_large_to_inspect_ends_the_stream_with_an_error() {
    let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
    let big = "x".repeat(mcp_warden_core::flow::response::MAX_SSE_EVENT_BYTES + 1);
    let out = stream(&mut p, "text/event-stream", &["data: {\"ok\":1}\n\n", "data: ", &big, "\n\n"]);
    assert!(out.starts_with("data: {\"ok\":1}\n\n"), "events before it passed");
    assert!(out.contains("oversized_sse_event") && !out.contains("xxxx"), "fail closed: {}", &out[..out.len().min(300)]);
    assert_eq!(p.findings().last().map(|f| (f.what, f.disposition)), Some(("oversized_sse_event", Disposition::Block)));
}

/// One answer through a fresh pipeline in two chunks: (what the client got, its headers).
fn answer(headers: &[(&str, &str)]) -> (String, Vec<(String, Vec<u8>)>, ResponsePipeline) {
    let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
    let (req, who) = view();
    let ex = ExchangeView { request: &req, principal: &who, principal_key: "pk", upstream: "up", now_ms: 0 };
    let mut kv = FakeKv::new();
    let mut http = FakeHttp {
        response_headers: headers.iter().map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())).collect(),
        ..FakeHttp::default()
    };
    p.on_headers(&mut http, false).unwrap();
    let mut out = Vec::new();
    for (i, chunk) in [&b"SECRET "[..], b"content"].into_iter().enumerate() {
        // Envoy holds what a chunk answered with Buffer and hands it on with the next.
        http.response_body.extend_from_slice(chunk);
        let n = http.response_body.len();
        if p.on_body(&mut http, &mut kv, &ex, n, i == 1).unwrap() == Step::Continue {
            out.append(&mut http.response_body);
        }
    }
    (String::from_utf8(out).unwrap(), http.response_headers, p)
}

#[test]
fn an_answer_the_inspectors_cannot_read_is_withheld_never_passed() {
    for (headers, what) in [
        (vec![("content-type", "text/plain"), ("content-length", "14")], "unreadable_content_type"),
        (vec![(":status", "200"), ("content-type", "application/json"), ("content-encoding", "gzip")], "encoded_response"),
        // A 3xx without `Location` is parsed by Python's client as a 200 is.
        (vec![(":status", "300"), ("content-type", "application/json"), ("content-encoding", "gzip")], "encoded_response"),
        (vec![(":status", "399"), ("content-type", "text/plain")], "unreadable_content_type"),
        // httpx decodes an event stream in the charset it names: UTF-7 spells `ghp_` and `"` in
        // other bytes than the filter reads.
        (vec![(":status", "200"), ("content-type", "text/event-stream; charset=utf-7")], "unreadable_charset"),
        (vec![(":status", "200"), ("content-type", "text/event-stream;charset=\"UTF-16\"")], "unreadable_charset"),
        // RFC 2231 spellings, which Python's `email` parser (httpx's `encoding`) decodes too.
        (vec![(":status", "200"), ("content-type", "text/event-stream; charset*=''utf-7")], "unreadable_charset"),
        (vec![(":status", "200"), ("content-type", "text/event-stream; charset*0=utf-; charset*1=7")], "unreadable_charset"),
        (vec![(":status", "200"), ("content-type", "text/event-stream; charset*=us-ascii'en'utf-8")], "unreadable_charset"),
        (vec![(":status", "200"), ("content-type", "text/event-stream; charset=utf-8; charset*0*=utf-7")], "unreadable_charset"),
    ] {
        let (out, hdrs, p) = answer(&headers);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{headers:?}: {e}: {out}"));
        assert_eq!(v["error"]["code"], -31502, "{headers:?}");
        assert_eq!(v["error"]["data"]["finding"], what);
        assert_eq!(v["id"], 5);
        assert!(!out.contains("SECRET"));
        let h = |n: &str| hdrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(h("content-type").as_deref(), Some(&b"application/json"[..]));
        assert!(h("content-encoding").is_none() && h("content-length").is_none(), "{hdrs:?}");
        assert_eq!(p.findings().last().map(|f| f.disposition), Some(Disposition::Block));
    }
    // UTF-8 by name is UTF-8.
    for ct in ["text/event-stream; charset=utf-8", "text/event-stream; charset=\"UTF8\"", "text/event-stream"] {
        let mut p = ResponsePipeline::new(vec![Box::new(Tripwire)]);
        let out = stream(&mut p, ct, &["data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n"]);
        assert!(out.contains(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#), "{ct}: {out}");
        assert!(p.findings().is_empty(), "{ct}");
    }
    // An error answer that is not JSON carries no result: it passes as it is.
    let (out, _, p) = answer(&[(":status", "502"), ("content-type", "text/html")]);
    assert_eq!(out, "SECRET content");
    assert!(p.findings().is_empty());
}

// ------------------------------------------------------------------------------------------
// No side doors.

/// A body-less or method-less message on `host`: GET stream, DELETE, a posted response.
fn send(flow: &mut RequestFlow, host: &mut FakeHost, method: &str, body: Option<&str>) -> Step {
    host.http.headers = vec![
        (":method".into(), method.as_bytes().to_vec()),
        ("mcp-session-id".into(), b"s-1".to_vec()),
        ("mcp-protocol-version".into(), b"2025-11-25".to_vec()),
    ];
    host.http.reply = None;
    let Some(body) = body else { return flow.on_request_headers(&mut host.ports(), true) };
    host.http.headers.push(("content-type".into(), b"application/json".to_vec()));
    host.http.body = body.as_bytes().to_vec();
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    let n = host.http.body.len();
    flow.on_request_body(&mut host.ports(), n, true)
}

#[test]
fn a_kill_switch_on_every_method_stops_streams_deletes_notifications_and_posted_responses() {
    for doc in [
        json!({"kill_switch": [{"method": "*", "reason": "incident 1"}]}),
        json!({"kill_switch": [{"all": true, "reason": "incident 1"}]}),
    ] {
        let p = policy(doc);
        for (method, body) in [
            ("GET", None),
            ("DELETE", None),
            ("POST", Some(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)),
            ("POST", Some(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#)),
            ("POST", Some(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#)),
        ] {
            let mut host = FakeHost::default();
            let mut flow = RequestFlow::new(Rc::clone(&p));
            assert_eq!(send(&mut flow, &mut host, method, body), Step::Answered, "{method} {body:?} got through");
            let (status, v) = reply_json(&host.http);
            assert_eq!((status, v["error"]["code"].as_i64()), (503, Some(-31503)), "{method} {body:?}");
        }
    }
    // A narrower pattern still leaves method-less messages alone.
    let p = policy(json!({"kill_switch": [{"method": "tools/*", "reason": "incident 2"}]}));
    let mut host = FakeHost::default();
    assert_eq!(send(&mut RequestFlow::new(p), &mut host, "GET", None), Step::Continue);
}

#[test]
fn a_rate_limit_whose_state_is_unavailable_fails_closed_unless_told_otherwise() {
    for (on_store_error, want) in [(None, Step::Answered), (Some("deny"), Step::Answered), (Some("allow"), Step::Continue)] {
        let mut rl = json!({"rate": 100, "period_secs": 1, "key": "global"});
        if let Some(v) = on_store_error {
            rl["on_store_error"] = json!(v);
        }
        let p = policy(json!({"rules": [{"id": "rl", "match": {}, "action": "rate_limit", "rate_limit": rl}]}));
        let mut host = FakeHost::default();
        // Envoy's slots exist (created at configure time); every CAS write then loses the race.
        mcp_warden_core::state::ratelimit::table(p.rate_limit_slots).init(&mut host.kv).unwrap();
        host.kv.fail_next_cas = 1000;
        let mut flow = RequestFlow::new(Rc::clone(&p));
        assert_eq!(call(&mut flow, &mut host, 1, "echo"), want, "on_store_error {on_store_error:?}");
        if want == Step::Answered {
            assert_eq!(reply_json(&host.http).0, 429);
        }
        assert_eq!(host.metrics.count_of(metrics::STORE_ERRORS), 1, "counted either way");
    }
}

#[test]
fn the_upstream_reads_the_canonical_content_type() {
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::new(Policy::default()));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        ("content-type".into(), b"application/JSON ; charset=UTF-8; x=1".to_vec()),
        ("mcp-session-id".into(), b"s".to_vec()),
    ];
    host.http.body = body.as_bytes().to_vec();
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    assert_eq!(flow.on_request_body(&mut host.ports(), body.len(), true), Step::Continue);
    assert_eq!(host.http.lines("content-type"), vec![b"application/json".to_vec()]);
}

#[test]
fn every_spelling_of_our_headers_is_stripped_and_legacy_param_headers_go() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let mut host = FakeHost::default();
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("mcp-session-id".into(), b"s".to_vec()),
        ("x_warden_principal".into(), b"forged".to_vec()),
        ("X_Warden-Correlation".into(), b"forged".to_vec()),
        ("mcp_name".into(), b"read_file".to_vec()),
        ("mcp-param-path".into(), b"/etc/passwd".to_vec()),
        ("Mcp_Param_Mode".into(), b"rw".to_vec()),
    ];
    host.http.body = body.as_bytes().to_vec();
    let mut flow = RequestFlow::new(Rc::new(Policy::default()));
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    assert_eq!(flow.on_request_body(&mut host.ports(), body.len(), true), Step::Continue);
    let names: Vec<&str> = host.http.headers.iter().map(|(n, _)| n.as_str()).collect();
    for gone in ["x_warden_principal", "X_Warden-Correlation", "mcp_name", "mcp-param-path", "Mcp_Param_Mode"] {
        assert!(!names.contains(&gone), "{gone} reached the upstream: {names:?}");
    }
    assert_eq!(host.http.header("mcp-name").as_deref(), Some(&b"echo"[..]));
    assert!(host.http.header("x-warden-principal").is_some());
}

// ------------------------------------------------------------------------------------------
// Legacy sessions belong to the principal that opened them.

fn legacy_as(flow: &mut RequestFlow, host: &mut FakeHost, who: &str, session: Option<&str>, body: &str) -> Step {
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("x-user".into(), who.as_bytes().to_vec()),
    ];
    if let Some(s) = session {
        host.http.headers.push(("mcp-session-id".into(), s.as_bytes().to_vec()));
    }
    host.http.body = body.as_bytes().to_vec();
    host.http.reply = None;
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    flow.on_request_body(&mut host.ports(), body.len(), true)
}

#[test]
fn a_legacy_session_presented_by_another_principal_is_not_found() {
    let p = policy(json!({"principal": {"sources": ["header"], "trusted_header": "x-user"}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000);
    // alice opens a session: the server's answer names it.
    let mut init = RequestFlow::new(Rc::clone(&p));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    assert_eq!(legacy_as(&mut init, &mut host, "alice", None, body), Step::Continue);
    assert!(init.inspects_response(), "the initialize answer must be seen to bind its session");
    host.respond(&mut init, &[("content-type", "application/json"), ("mcp-session-id", "sess-42")], &[b"{}"]);

    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let mut own = RequestFlow::new(Rc::clone(&p));
    assert_eq!(legacy_as(&mut own, &mut host, "alice", Some("sess-42"), list), Step::Continue);

    let mut stolen = RequestFlow::new(Rc::clone(&p));
    assert_eq!(legacy_as(&mut stolen, &mut host, "mallory", Some("sess-42"), list), Step::Answered);
    let (status, v) = reply_json(&host.http);
    assert_eq!((status, v["error"]["code"].as_i64(), v["id"].as_i64()), (404, Some(-32001), Some(2)));
    assert_eq!(host.metrics.count_of(metrics::SESSION_HIJACKS), 1);
    host.queue.ready = true;
    stolen.on_log(ExchangeStats::default(), &mut host.queue, &mut host.metrics);
    let e = Exchange::decode(host.queue.messages.last().unwrap()).unwrap();
    assert_eq!((e.verdict, e.rule.as_str(), e.principal.as_str()), (WireVerdict::Block, "session:not_owner", "mallory"));

    // The GET stream of that session is refused to mallory too; alice's still works.
    let get = |who: &str, host: &mut FakeHost| {
        host.http.headers = vec![
            (":method".into(), b"GET".to_vec()),
            ("x-user".into(), who.as_bytes().to_vec()),
            ("mcp-session-id".into(), b"sess-42".to_vec()),
        ];
        host.http.reply = None;
        RequestFlow::new(Rc::clone(&p)).on_request_headers(&mut host.ports(), true)
    };
    assert_eq!(get("mallory", &mut host), Step::Answered);
    assert_eq!(get("alice", &mut host), Step::Continue);

    // Switched off, nothing is bound or refused.
    let off = policy(json!({"principal": {"sources": ["header"], "trusted_header": "x-user"}, "session_ttl_secs": 0}));
    assert_eq!(legacy_as(&mut RequestFlow::new(off), &mut host, "mallory", Some("sess-42"), list), Step::Continue);
}

/// Two `Mcp-Session-Id` lines are two sessions: the Python SDK (Starlette's `headers.get`) runs
/// the first line's, the binding would check the lines joined (a value nobody opened). Refused
/// on every method, before the session table is asked; so is a repeated protocol version.
#[test]
fn a_repeated_session_or_version_line_is_refused_never_joined() {
    let p = policy(json!({"principal": {"sources": ["header"], "trusted_header": "x-user"}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000);
    let mut init = RequestFlow::new(Rc::clone(&p));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    assert_eq!(legacy_as(&mut init, &mut host, "alice", None, body), Step::Continue);
    host.respond(&mut init, &[("content-type", "application/json"), ("mcp-session-id", "sess-42")], &[b"{}"]);
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let headers = |method: &str, lines: &[(&str, &str)]| {
        let mut h: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), method.as_bytes().to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("x-user".into(), b"mallory".to_vec()),
        ];
        h.extend(lines.iter().map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())));
        h
    };
    for method in ["POST", "GET", "DELETE"] {
        for (lines, code) in [
            (&[("mcp-session-id", "sess-42"), ("mcp-session-id", "x")][..], -32600),
            (&[("Mcp-Session-Id", "x"), ("mcp-session-id", "sess-42")], -32600),
            (
                &[("mcp-session-id", "sess-42"), ("mcp-protocol-version", "2025-11-25"), ("MCP-Protocol-Version", "2025-06-18")],
                -32020,
            ),
        ] {
            host.http.headers = headers(method, lines);
            // A POST is refused once its body is in, keeping the id; GET and DELETE at once.
            let mut flow = RequestFlow::new(Rc::clone(&p));
            let step = if method == "POST" {
                host.post(&mut flow, call.as_bytes().to_vec())
            } else {
                host.http.reply = None;
                flow.on_request_headers(&mut host.ports(), true)
            };
            assert_eq!(step, Step::Answered, "{method} {lines:?}");
            let (status, v) = reply_json(&host.http);
            assert_eq!((status, v["error"]["code"].as_i64()), (400, Some(code)), "{method} {lines:?}");
            assert!(v["error"]["message"].as_str().unwrap().contains("is repeated"), "{v}");
            assert_eq!(v["id"], if method == "POST" { json!(2) } else { json!(null) }, "{method} {lines:?}");
        }
    }
    // One line, padded: the binding's own normal form (alice's session, refused to mallory).
    assert_eq!(legacy_as(&mut RequestFlow::new(Rc::clone(&p)), &mut host, "mallory", Some(" sess-42 "), call), Step::Answered);
    assert_eq!(reply_json(&host.http).0, 404);
    assert_eq!(legacy_as(&mut RequestFlow::new(Rc::clone(&p)), &mut host, "alice", Some("sess-42"), call), Step::Continue);
}

#[test]
fn a_repeated_trusted_identity_header_is_refused_never_joined() {
    let p = policy(json!({"principal": {"sources": ["header"], "trusted_header": "x-user"}}));
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    host.http.headers = vec![
        (":method".into(), b"GET".to_vec()),
        ("mcp-session-id".into(), b"s".to_vec()),
        ("x-user".into(), b"alice".to_vec()),
        ("x-user".into(), b"admin".to_vec()),
    ];
    assert_eq!(flow.on_request_headers(&mut host.ports(), true), Step::Answered);
    let (status, v) = reply_json(&host.http);
    assert_eq!((status, v["error"]["code"].as_i64()), (400, Some(-32600)));
    assert!(v["error"]["message"].as_str().unwrap().contains("x-user"), "{v}");
    // One line is an identity.
    host.http.headers.pop();
    host.http.reply = None;
    assert_eq!(RequestFlow::new(p).on_request_headers(&mut host.ports(), true), Step::Continue);
}

/// Envoy re-evaluates the route after the filter's header edits, but the cluster a wasm filter
/// reads at decision time is the route's before them: a call decided for `cluster_a` that a
/// route on `mcp-name` sent to `cluster_b` (where a deny rule would have refused it) must not
/// hand its answer back. Once the router has run, the cluster the filter reads is the one that
/// served.
#[test]
fn an_answer_from_another_cluster_than_the_decision_named_is_withheld() {
    let p = policy(json!({"rules": [{"id": "b-closed", "match": {"upstreams": ["cluster_b"]}, "action": "deny"}]}));
    let json_h = [(":status", "200"), ("content-type", "application/json")];
    let answer = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"ran on b"}]}}"#;
    // (cluster at decision, cluster at the answer, withheld)
    for (decided, served, withheld) in [
        ("cluster_a", Some("cluster_a"), false),
        ("cluster_a", Some("cluster_b"), true),
        // A direct response or a local reply: no cluster served it.
        ("cluster_a", None, false),
    ] {
        let mut host = FakeHost::default();
        host.http.peer = vec![(PeerFact::UpstreamCluster, decided.into())];
        let mut flow = RequestFlow::new(Rc::clone(&p));
        assert_eq!(call(&mut flow, &mut host, 3, "echo"), Step::Continue);
        host.http.peer = served.map(|c| vec![(PeerFact::UpstreamCluster, c.into())]).unwrap_or_default();
        assert!(flow.inspects_response(), "the answer's cluster is always looked at");
        let got = host.respond(&mut flow, &json_h, &[&answer[..40], &answer[40..]]);
        let text = String::from_utf8(got.body).unwrap();
        let findings: Vec<&str> = flow.findings().iter().map(|f| f.what).collect();
        assert_eq!(findings.contains(&"upstream_changed"), withheld, "{served:?}: {findings:?}");
        if withheld {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!((v["id"].clone(), v["error"]["code"].clone()), (json!(3), json!(-31502)), "{text}");
            assert_eq!(v["error"]["data"]["finding"], "upstream_changed");
            assert!(!text.contains("ran on b"));
            assert!(host.metrics.counts.iter().any(|c| c.starts_with(metrics::FINDINGS) && c.contains("upstream_changed")));
        } else {
            assert_eq!(text.as_bytes(), answer);
        }
    }
    // Served through an internal listener (the tracing hop a filter-set header picks): its own
    // route table chose the upstream, not compared.
    let mut host = FakeHost::default();
    host.http.peer = vec![(PeerFact::UpstreamCluster, "cluster_a".into())];
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut flow, &mut host, 3, "echo"), Step::Continue);
    host.http.peer =
        vec![(PeerFact::UpstreamCluster, "mcp_traced".into()), (PeerFact::UpstreamAddress, "envoy://mcp_traced/".into())];
    let got = host.respond(&mut flow, &json_h, &[&answer[..]]);
    assert_eq!(got.body, answer);
    // An answer without a body keeps its headers; the finding still says where it came from.
    let mut host = FakeHost::default();
    host.http.peer = vec![(PeerFact::UpstreamCluster, "cluster_a".into())];
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut flow, &mut host, 3, "echo"), Step::Continue);
    host.http.peer = vec![(PeerFact::UpstreamCluster, "cluster_b".into())];
    host.respond(&mut flow, &[(":status", "202")], &[]);
    assert!(flow.findings().iter().any(|f| f.what == "upstream_changed"));
}

/// Each peer fact is a host call (~11k instructions in Envoy): the sources after the first that
/// names a principal are never read, and the principal is the one every source read would give.
#[test]
fn peer_facts_after_the_first_source_that_names_a_principal_are_not_read() {
    use mcp_warden_core::principal::{self, PeerFacts};
    let p = policy(json!({"principal": {"sources": ["jwt", "spiffe", "istio", "header"], "trusted_header": "x-user"}}));
    let jwt = (PeerFact::JwtPayload, r#"{"sub":"alice"}"#.to_owned());
    let no_sub = (PeerFact::JwtPayload, r#"{"aud":"x"}"#.to_owned());
    let san = (PeerFact::UriSan, "spiffe://corp/ns/a/sa/b".to_owned());
    let istio = (PeerFact::IstioPrincipal, "corp/ns/c/sa/d".to_owned());
    let base = [(PeerFact::SourceAddress, "10.0.0.9:5555".to_owned()), (PeerFact::UpstreamCluster, "up".to_owned())];
    use PeerFact::{IstioPrincipal as I, JwtPayload as J, UriSan as U};
    for (present, header, read, origin) in [
        (vec![jwt.clone(), san.clone(), istio.clone()], true, vec![J], "jwt"),
        (vec![no_sub.clone(), san.clone(), istio.clone()], true, vec![J, U], "spiffe"),
        (vec![istio.clone()], true, vec![J, U, I], "istio"),
        (vec![], true, vec![J, U, I], "header"),
        (vec![no_sub.clone()], false, vec![J, U, I], "anonymous"),
    ] {
        let mut host = FakeHost::default();
        host.http.peer = base.iter().cloned().chain(present.iter().cloned()).collect();
        let mut flow = RequestFlow::new(Rc::clone(&p));
        let body = call_body(1, "echo");
        host.http.headers = vec![
            (":method".into(), b"POST".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("mcp-protocol-version".into(), b"2026-07-28".to_vec()),
            ("mcp-method".into(), b"tools/call".to_vec()),
            ("mcp-name".into(), b"echo".to_vec()),
        ];
        if header {
            host.http.headers.push(("x-user".into(), b"carol".to_vec()));
        }
        host.http.body = body.into_bytes();
        assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
        let n = host.http.body.len();
        assert_eq!(flow.on_request_body(&mut host.ports(), n, true), Step::Continue);
        let sources_read: Vec<PeerFact> =
            host.http.facts_read.borrow().iter().copied().filter(|f| [J, U, I].contains(f)).collect();
        assert_eq!(sources_read, read, "{origin}");
        // The principal every fact read at once would give.
        let fact = |k| present.iter().find(|(f, _)| *f == k).map(|(_, v)| v.as_str());
        let all = PeerFacts {
            jwt_payload: fact(J).map(str::as_bytes),
            jwt_claims: None,
            uri_san: fact(U),
            istio_principal: fact(I),
            trusted_header: header.then_some(&b"carol"[..]),
            source_address: Some("10.0.0.9:5555"),
            user_agent: None,
        };
        let want = principal::resolve(&p.sources, &all);
        let got = &flow.outcome().unwrap().principal;
        assert_eq!((got.origin, &got.id), (want.origin, &want.id), "{origin}");
        assert_eq!(got.origin.as_str(), origin);
    }
}
