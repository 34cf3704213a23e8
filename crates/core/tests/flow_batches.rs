//! Legacy batches through the flow on the fake host (`eras.legacy_batches`): off, refused; on,
//! every element is decided as if alone (rules, hiding, kill switch, one rate-limit token each),
//! one refusal refuses all and the answer is an array, every element has its own receipt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::metrics;
use mcp_warden_core::policy::{self, Policy};
use mcp_warden_core::ports::Step;
use mcp_warden_core::receipt::exchange::{Exchange, WireVerdict};

fn call(id: u32, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

fn policy(mut doc: Value, batches: bool) -> Rc<Policy> {
    doc["eras"] = json!({"legacy_batches": batches});
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

/// A legacy POST of `batch` with lying routing headers; returns the step and the reply, if any.
fn send(flow: &mut RequestFlow, host: &mut FakeHost, batch: &[Value]) -> (Step, Option<(u32, Value)>) {
    let body = serde_json::to_vec(batch).unwrap();
    host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        (":authority".into(), b"gateway".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("mcp-protocol-version".into(), b"2025-11-25".to_vec()),
        ("mcp-method".into(), b"tools/call".to_vec()),
        ("mcp-name".into(), b"echo".to_vec()),
        ("content-length".into(), body.len().to_string().into_bytes()),
    ];
    host.http.body = body;
    host.http.reply = None;
    assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
    let n = host.http.body.len();
    let step = flow.on_request_body(&mut host.ports(), n, true);
    let reply = host.http.reply.clone().map(|(s, _, b)| (s, serde_json::from_slice(&b).unwrap()));
    (step, reply)
}

fn receipts(flow: &RequestFlow, host: &mut FakeHost) -> Vec<Exchange> {
    host.queue.ready = true;
    host.queue.messages.clear();
    flow.on_log(ExchangeStats::default(), &mut host.queue, &mut host.metrics);
    host.queue.messages.iter().map(|m| Exchange::decode(m).unwrap()).collect()
}

fn header(host: &FakeHost, name: &str) -> Option<Vec<u8>> {
    host.http.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

const DENY: &str = r#"{"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]}, "action": "deny", "hide": false, "reason": "deletes need a ticket"}"#;

fn deny_rule() -> Value {
    serde_json::from_str(DENY).unwrap()
}

#[test]
fn off_by_default_a_batch_is_refused_whole() {
    let p = policy(json!({}), false);
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(p);
    let (step, reply) = send(&mut flow, &mut host, &[call(1, "echo"), call(2, "delete_all")]);
    assert_eq!(step, Step::Answered);
    let (status, body) = reply.unwrap();
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(-32600)));
    assert!(body.get("id").is_none_or(Value::is_null), "a batch has no id of its own: {body}");
}

#[test]
fn an_allowed_batch_goes_upstream_without_routing_headers_and_each_element_has_a_receipt() {
    let p = policy(json!({"rules": [deny_rule()]}), true);
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 0}});
    let (step, reply) = send(&mut flow, &mut host, &[call(1, "echo"), note, call(2, "read_file")]);
    assert_eq!((step, reply), (Step::Continue, None));
    assert_eq!(header(&host, "mcp-name"), None, "no single name can stand for a batch");
    assert_eq!(header(&host, "mcp-method"), None);
    let r = receipts(&flow, &mut host);
    let seen: Vec<(&str, &str, &str, WireVerdict)> =
        r.iter().map(|e| (e.method.as_str(), e.name.as_str(), e.request_id.as_str(), e.verdict)).collect();
    assert_eq!(
        seen,
        [
            ("tools/call", "echo", "1", WireVerdict::Allow),
            ("notifications/cancelled", "", "", WireVerdict::Allow),
            ("tools/call", "read_file", "2", WireVerdict::Allow),
        ]
    );
    assert_eq!(host.metrics.count_of("mcp_warden_requests_total.era.legacy.method.tools/call.decision.allow"), 2);
}

#[test]
fn one_denied_element_refuses_the_batch_and_later_elements_are_not_decided() {
    let p = policy(json!({"rules": [deny_rule()]}), true);
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(p);
    let (step, reply) = send(&mut flow, &mut host, &[call(3, "echo"), call(4, "delete_all"), call(5, "echo")]);
    assert_eq!(step, Step::Answered);
    let (status, body) = reply.unwrap();
    assert_eq!(status, 403);
    let errors = body.as_array().expect("a batch is answered with an array");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0]["id"].as_i64(), errors[0]["error"]["code"].as_i64()), (Some(4), Some(-31403)));
    assert!(errors[0]["error"]["message"].as_str().unwrap().contains("deletes need a ticket"));
    let r = receipts(&flow, &mut host);
    let seen: Vec<(&str, &str, WireVerdict)> = r.iter().map(|e| (e.request_id.as_str(), e.rule.as_str(), e.verdict)).collect();
    assert_eq!(
        seen,
        [("3", "", WireVerdict::Allow), ("4", "no-deletes", WireVerdict::Block), ("5", "batch:refused", WireVerdict::Block)]
    );
    assert_eq!(host.metrics.count_of(&format!("{}.rule.no-deletes", metrics::DENIALS)), 1);
}

#[test]
fn hiding_the_kill_switch_and_rate_limits_apply_to_every_element() {
    // A hidden tool is unknown in a batch as alone.
    let p = policy(
        json!({"rules": [{"id": "admin", "match": {"methods": ["tools/call"], "names": ["admin_*"]}, "action": "deny"}]}),
        true,
    );
    let (mut host, mut flow) = (FakeHost::default(), RequestFlow::new(p));
    let (_, reply) = send(&mut flow, &mut host, &[call(1, "echo"), call(2, "admin_reset")]);
    let (status, body) = reply.unwrap();
    assert_eq!((status, body[0]["error"]["code"].as_i64(), body[0]["id"].as_i64()), (200, Some(-32602), Some(2)));

    // The kill switch stops the element it names.
    let p = policy(json!({"kill_switch": [{"tool": "delete_*", "reason": "incident 4711"}]}), true);
    let (mut host, mut flow) = (FakeHost::default(), RequestFlow::new(p));
    let (_, reply) = send(&mut flow, &mut host, &[call(1, "echo"), call(2, "delete_all")]);
    let (status, body) = reply.unwrap();
    assert_eq!((status, body[0]["error"]["code"].as_i64()), (503, Some(-31503)));

    // One token per element: a bucket of 2 lets two calls of a batch through, not three.
    let limit = json!({"id": "two", "match": {"methods": ["tools/call"]}, "action": "rate_limit", "rate_limit": {"rate": 2, "period_secs": 3600}});
    let p = policy(json!({"rules": [limit]}), true);
    let mut host = FakeHost::default();
    let (_, reply) = send(&mut RequestFlow::new(Rc::clone(&p)), &mut host, &[call(1, "echo"), call(2, "echo"), call(3, "echo")]);
    let (status, body) = reply.unwrap();
    assert_eq!((status, body[0]["error"]["code"].as_i64(), body[0]["id"].as_i64()), (429, Some(-31429), Some(3)));
}

#[test]
fn a_list_the_policy_filters_cannot_travel_in_a_batch() {
    let hide = json!({"id": "secret", "match": {"methods": ["prompts/get"], "names": ["secret_*"]}, "action": "deny"});
    let p = policy(json!({"rules": [hide]}), true);
    let (mut host, mut flow) = (FakeHost::default(), RequestFlow::new(p));
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "prompts/list"});
    let (_, reply) = send(&mut flow, &mut host, &[call(1, "echo"), list]);
    let (status, body) = reply.unwrap();
    assert_eq!((status, body[0]["error"]["code"].as_i64(), body[0]["id"].as_i64()), (403, Some(-31403), Some(9)));
    assert_eq!(receipts(&flow, &mut host)[1].rule, "batch:inspected_answer");
}

#[test]
fn a_batch_cannot_carry_a_call_past_tool_integrity_or_a_task_past_its_owner() {
    let p = policy(json!({"tool_integrity": {"unknown_tools": "deny"}}), true);
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    // No baseline for `echo` and unknown tools are denied: alone it is refused, so in a batch too.
    let (step, reply) = send(&mut flow, &mut host, &[call(1, "echo"), call(2, "echo")]);
    assert_eq!(step, Step::Answered);
    let (_, body) = reply.unwrap();
    assert_eq!(body[0]["error"]["data"]["reason"], "unknown_tool", "{body}");
    // A task-augmented call's answer hands out a task the filter must bind: not in a batch.
    let p = policy(json!({}), true);
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let mut task_call = call(3, "slow");
    task_call["params"]["task"] = json!({"ttl": 60000});
    let (step, reply) = send(&mut flow, &mut host, &[call(4, "echo"), task_call]);
    assert_eq!(step, Step::Answered);
    assert!(reply.unwrap().1[0]["error"]["message"].as_str().unwrap().contains("cannot travel in a batch"));
}

/// The SDKs hand an answer to whichever pending request has its id: an answer to a batch that
/// answers an id outside the batch would reach another request past the inspectors that one
/// chose. Withheld, with the content scan on or off.
#[test]
fn a_batch_answer_to_an_id_outside_the_batch_is_withheld() {
    for doc in [json!({}), json!({"content_scan": {"enabled": false}})] {
        let p = policy(doc.clone(), true);
        let json_h = [(":status", "200"), ("content-type", "application/json")];
        for (answer, foreign) in [
            (json!([{"jsonrpc": "2.0", "id": 1, "result": {}}, {"jsonrpc": "2.0", "id": 2, "result": {}}]), false),
            (json!([{"jsonrpc": "2.0", "id": 2.0, "result": {}}]), false),
            (json!({"jsonrpc": "2.0", "id": 1, "result": {}}), false),
            // A null id answers no request.
            (json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "bad batch"}}), false),
            (json!([{"jsonrpc": "2.0", "id": 1, "result": {}}, {"jsonrpc": "2.0", "id": 7, "result": {"tools": []}}]), true),
            (json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": []}}), true),
        ] {
            let mut host = FakeHost::default();
            let mut flow = RequestFlow::new(Rc::clone(&p));
            let (step, _) = send(&mut flow, &mut host, &[call(1, "echo"), call(2, "echo")]);
            assert_eq!(step, Step::Continue);
            let got = host.respond(&mut flow, &json_h, &[answer.to_string().as_bytes()]);
            let v: Value = serde_json::from_slice(&got.body).unwrap();
            let withheld = v.get("error").is_some_and(|e| e["data"]["finding"] == "foreign_response");
            assert_eq!(withheld, foreign, "{doc} {answer} -> {v}");
            if !foreign {
                assert_eq!(v, answer);
            }
        }
    }
}
