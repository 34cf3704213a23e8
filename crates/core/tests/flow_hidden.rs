//! A hidden tool answered by its upstream (`hidden_answer: upstream`) through the whole flow on
//! the fake host: the call leaves under a decoy name, without its arguments, with `Mcp-Name`
//! saying the same; the upstream's answer to a name it does not have comes back naming the tool
//! the client asked for, exactly as a made-up name's answer does; the gateway's own answer
//! stays the default, and nothing else is forwarded that way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::RequestFlow;
use mcp_warden_core::policy::{self, Policy};
use mcp_warden_core::ports::{PeerFact, Step};

fn policy(hidden_answer: Option<&str>) -> Rc<Policy> {
    let mut doc = json!({"rules": [{"id": "no-reset", "match": {"names": ["admin_reset"]}, "action": "deny"}]});
    if let Some(a) = hidden_answer {
        doc["hidden_answer"] = json!(a);
    }
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

fn call(host: &mut FakeHost, flow: &mut RequestFlow, tool: &str) -> Step {
    host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
    let params = format!(r#""name":"{tool}","arguments":{{"token":"s3cr3t-argument"}}"#);
    host.post_modern(flow, "tools/call", Some(tool), &params, &[])
}

/// What a TypeScript server answers for a tool it does not have.
fn not_found(name: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": format!("Tool {name} not found")}})
        .to_string()
        .into_bytes()
}

#[test]
fn a_hidden_call_goes_to_the_upstream_as_a_name_it_does_not_have_and_comes_back_as_asked() {
    let p = policy(Some("upstream"));
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut host, &mut flow, "admin_reset"), Step::Continue, "forwarded, not answered here");
    assert!(host.http.reply.is_none());
    let sent: Value = serde_json::from_slice(&host.http.body).unwrap();
    let decoy = sent["params"]["name"].as_str().unwrap().to_owned();
    assert!(decoy.starts_with("mcpw-absent-"), "{sent}");
    assert_eq!(sent["params"]["arguments"], json!({}), "the hidden tool's arguments never leave");
    assert!(!String::from_utf8_lossy(&host.http.body).contains("s3cr3t-argument"));
    assert_eq!(host.http.header("mcp-name").unwrap(), decoy.as_bytes(), "the routing header says what the body says");
    assert_eq!(sent["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");

    let got = host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[&not_found(&decoy)]);
    assert_eq!(got.body, not_found("admin_reset"), "what a made-up name gets, naming what was asked");

    // A made-up name passes as it is, and its answer with it: the two cannot be told apart.
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(call(&mut host, &mut flow, "made_up"), Step::Continue);
    let sent: Value = serde_json::from_slice(&host.http.body).unwrap();
    assert_eq!(sent["params"]["name"], "made_up");
    let got = host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[&not_found("made_up")]);
    assert_eq!(got.body, not_found("made_up"));

    // Each hidden call has a decoy of its own.
    let mut flow = RequestFlow::new(Rc::clone(&p));
    host.clock.nanos.set(host.clock.nanos.get() + 1_000_000);
    call(&mut host, &mut flow, "admin_reset");
    let again: Value = serde_json::from_slice(&host.http.body).unwrap();
    assert_ne!(again["params"]["name"].as_str().unwrap(), decoy);
    assert!(host.http.misuse.is_empty(), "{:?}", host.http.misuse);
}

#[test]
fn nothing_of_the_hidden_call_leaves_but_its_decoy() {
    let p = policy(Some("upstream"));
    let mut host = FakeHost::default();
    // 2026-07-28 with an argument mirrored in a header, a task and MRTR state in the body.
    let mut flow = RequestFlow::new(Rc::clone(&p));
    host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
    let params = r#""name":"admin_reset","arguments":{"region":"eu"},"task":{"ttl":60000},"requestState":"abc""#;
    host.post_modern(&mut flow, "tools/call", Some("admin_reset"), params, &[("mcp-param-region", b"eu")]);
    assert!(host.http.reply.is_none());
    assert!(host.http.header("mcp-param-region").is_none(), "the mirrored argument goes with the arguments");
    let sent: Value = serde_json::from_slice(&host.http.body).unwrap();
    assert_eq!(sent["params"].as_object().unwrap().keys().collect::<Vec<_>>(), ["_meta", "arguments", "name"], "{sent}");
    // 2025-11-25: the routing header the classifier derived says the decoy too.
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"admin_reset","arguments":{}}}"#;
    host.post_json(&mut flow, body.to_owned(), &[("mcp-protocol-version", b"2025-11-25")]);
    assert!(host.http.reply.is_none());
    let sent: Value = serde_json::from_slice(&host.http.body).unwrap();
    let decoy = sent["params"]["name"].as_str().unwrap();
    assert!(decoy.starts_with("mcpw-absent-"));
    assert_eq!(host.http.header("mcp-name").unwrap(), decoy.as_bytes());
}

#[test]
fn the_gateway_answers_hidden_calls_itself_by_default() {
    let p = policy(None);
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    call(&mut host, &mut flow, "admin_reset");
    let (status, _, body) = host.http.reply.clone().expect("answered here");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_i64(), v["error"]["message"].as_str()),
        (200, Some(-32602), Some("Unknown tool: admin_reset"))
    );
}

#[test]
fn a_visible_refusal_is_still_the_gateways_own() {
    let doc = json!({"hidden_answer": "upstream", "rules": [{"id": "no-reset", "match": {"names": ["admin_reset"]}, "action": "deny", "hide": false, "reason": "resets are off"}]});
    let p = Rc::new(policy::load(doc.to_string().as_bytes()).unwrap());
    let mut host = FakeHost::default();
    let mut flow = RequestFlow::new(Rc::clone(&p));
    call(&mut host, &mut flow, "admin_reset");
    let (status, _, _) = host.http.reply.clone().expect("answered here");
    assert_eq!(status, 403);
}

#[test]
fn an_unknown_answer_mode_is_refused_with_its_field() {
    let err = policy::load(br#"{"hidden_answer": "server"}"#).unwrap_err();
    assert!(err.to_string().contains("hidden_answer"), "{err}");
}
