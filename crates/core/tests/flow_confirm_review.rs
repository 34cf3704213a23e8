//! Hostile review of `confirm`: ways around the confirmation, each a test that fails while the
//! hole is open. Harness copied from flow_confirm.rs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::confirm::seal::ConfirmKey;
use mcp_warden_core::confirm::{ConfirmVm, INPUT_KEY};
use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::policy::{self, KillSwitch, Policy};
use mcp_warden_core::ports::{PeerFact, Step};
use mcp_warden_core::receipt::exchange::Exchange;
use mcp_warden_core::state::vm::VmCache;

const CAPS: &str = r#"{"elicitation":{"form":{}}}"#;

fn policy(extra: Value) -> Rc<Policy> {
    let mut doc = json!({
        "principal": {"sources": ["header"], "trusted_header": "x-user"},
        "rules": [{"id": "prod-deploys", "match": {"names": ["deploy"]}, "action": "confirm",
                   "reason": "production deploys need a human"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

struct Gw {
    host: FakeHost,
    vm: Rc<RefCell<VmCache>>,
    policy: Rc<Policy>,
}

impl Gw {
    fn new(policy: Rc<Policy>) -> Gw {
        Gw::with_key(policy, Some(ConfirmKey::new([42; 32])))
    }

    fn with_key(policy: Rc<Policy>, key: Option<ConfirmKey>) -> Gw {
        let vm = Rc::new(RefCell::new(VmCache::default()));
        vm.borrow_mut().confirm = ConfirmVm::new(key, 1);
        let host = FakeHost::default();
        host.clock.advance_ms(1_700_000_000_000);
        Gw { host, vm, policy }
    }

    /// A second replica: its own shared data and VM, the same key.
    fn replica(&self) -> Gw {
        let g = Gw::new(Rc::clone(&self.policy));
        g.host.clock.nanos.set(self.host.clock.nanos.get());
        g
    }

    fn flow(&self) -> RequestFlow {
        RequestFlow::for_vm(Rc::clone(&self.policy), Rc::new(KillSwitch::default()), Rc::clone(&self.vm))
    }

    /// Posts `body` as `user`; returns the flow, the step and what the upstream would receive.
    fn post(&mut self, user: &str, body: &str, legacy: bool) -> (RequestFlow, Step) {
        let v: Value = serde_json::from_str(body).unwrap();
        self.host.http.headers = vec![
            (":method".into(), b"POST".to_vec()),
            (":authority".into(), b"gateway".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("x-user".into(), user.as_bytes().to_vec()),
        ];
        if legacy {
            self.host.http.headers.push(("mcp-protocol-version".into(), b"2025-11-25".to_vec()));
        } else {
            self.host.http.headers.push(("mcp-protocol-version".into(), b"2026-07-28".to_vec()));
            self.host.http.headers.push(("mcp-method".into(), v["method"].as_str().unwrap().as_bytes().to_vec()));
            if let Some(n) = v["params"]["name"].as_str() {
                self.host.http.headers.push(("mcp-name".into(), n.as_bytes().to_vec()));
            }
        }
        self.host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
        let mut flow = self.flow();
        let step = self.host.post(&mut flow, body.as_bytes().to_vec());
        (flow, step)
    }

    fn reply(&self) -> Option<(u32, Value)> {
        self.host.http.reply.as_ref().map(|(status, _, body)| (*status, serde_json::from_slice(body).unwrap()))
    }

    fn receipt(&mut self, flow: &RequestFlow) -> Exchange {
        self.host.queue.ready = true;
        self.host.queue.messages.clear();
        flow.on_log(ExchangeStats::default(), &mut self.host.queue, &mut self.host.metrics);
        Exchange::decode(&self.host.queue.messages[0]).unwrap()
    }

    fn count(&self, outcome: &str) -> u64 {
        self.host.metrics.count_of(&format!("mcp_warden_confirmations_total.outcome.{outcome}")) as u64
    }
}

/// A `tools/call` as the client first sends it.
fn first(id: u32, tool: &str, args: &str, caps: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}", "arguments":{args},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#
    )
}

/// The retry: the same call (new id) with the answers and the echoed state added, as the SDKs
/// add them (members of `params` after the original ones).
fn retry(id: u32, tool: &str, args: &str, responses: &Value, state: &str) -> String {
    let base = first(id, tool, args, CAPS);
    let cut = base.len() - 2;
    format!(r#"{},"inputResponses":{},"requestState":{}}}}}"#, &base[..cut], responses, serde_json::to_string(state).unwrap())
}

fn accept() -> Value {
    json!({ INPUT_KEY: {"action": "accept", "content": {"approve": true}} })
}

/// Asks and returns the question's state.
fn ask(g: &mut Gw, user: &str, args: &str) -> String {
    let (_, step) = g.post(user, &first(1, "deploy", args, CAPS), false);
    assert_eq!(step, Step::Answered);
    let (status, body) = g.reply().unwrap();
    assert_eq!(status, 200);
    body["result"]["requestState"].as_str().unwrap().to_owned()
}

/// Posts a raw body with explicit routing headers (method, name) and era.
fn post_raw(g: &mut Gw, user: &str, body: &[u8], method: &str, name: Option<&str>) -> Step {
    g.host.http.headers = vec![
        (":method".into(), b"POST".to_vec()),
        (":authority".into(), b"gateway".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        ("x-user".into(), user.as_bytes().to_vec()),
        ("mcp-protocol-version".into(), b"2026-07-28".to_vec()),
        ("mcp-method".into(), method.as_bytes().to_vec()),
    ];
    if let Some(n) = name {
        g.host.http.headers.push(("mcp-name".into(), n.as_bytes().to_vec()));
    }
    g.host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
    let mut flow = g.flow();
    g.host.post(&mut flow, body.to_vec())
}

fn resource_read(id: u32, uri: &str, caps: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"resources/read","params":{{"uri":{},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#,
        serde_json::to_string(uri).unwrap()
    )
}

/// A retry body with `inputResponses` given as raw JSON text (duplicate keys kept).
fn retry_raw(id: u32, tool: &str, args: &str, responses: &str, state: &str) -> String {
    let base = first(id, tool, args, CAPS);
    let cut = base.len() - 2;
    format!(r#"{},"inputResponses":{responses},"requestState":{}}}}}"#, &base[..cut], serde_json::to_string(state).unwrap())
}

/// (a) A `resources/read` whose URI has no single reading (`%2F` inside a segment) is matched
/// against the rules as sent: a `confirm` rule on the resolved form never matches it, and only
/// deny rules get the lenient second reading (`deny_for_ambiguous`). A server that decodes `%2F`
/// reads `file:///secrets/prod.key`, with nobody asked.
#[test]
fn an_ambiguous_resource_uri_walks_past_a_confirm_rule() {
    let rule = |action: &str| {
        policy(json!({"rules": [{"id": "secrets", "match": {"methods": ["resources/read"], "names": ["file:///secrets/*"]},
                                  "action": action}]}))
    };
    let uri = "file:///secrets%2Fprod.key";
    // The same spelling under a deny rule is refused (the lenient reading falls under it) ...
    let mut g = Gw::new(rule("deny"));
    assert_eq!(post_raw(&mut g, "alice", resource_read(1, uri, CAPS).as_bytes(), "resources/read", Some(uri)), Step::Answered);
    // ... and a clean spelling under the confirm rule is asked about ...
    let mut g = Gw::new(rule("confirm"));
    let clean = "file:///secrets/prod.key";
    assert_eq!(
        post_raw(&mut g, "alice", resource_read(1, clean, CAPS).as_bytes(), "resources/read", Some(clean)),
        Step::Answered
    );
    // ... but the ambiguous spelling under the confirm rule goes straight to the upstream.
    let mut g = Gw::new(rule("confirm"));
    let step = post_raw(&mut g, "alice", resource_read(1, uri, CAPS).as_bytes(), "resources/read", Some(uri));
    assert_eq!(step, Step::Answered, "forwarded without asking: {}", String::from_utf8_lossy(&g.host.http.body));
}

/// (b) The arguments are bound by their JCS form, which reads every number as an IEEE double
/// and sorts members: pairs of argument texts a Python (or Go) server executes differently
/// share one binding, so the approved state carries a retry with other arguments. (An honest
/// SDK re-sends the arguments exactly as first sent, so binding exact values breaks nobody.)
#[test]
fn arguments_jcs_equates_but_servers_execute_differently_share_one_approval() {
    let pairs = [
        // int beyond 2^53: Python / Go read 9007199254740993 exactly.
        (r#"{"record": 9007199254740992}"#, r#"{"record": 9007199254740993}"#),
        // beyond u64: both are the same double, different Python ints.
        (r#"{"amount": 100000000000000000000000}"#, r#"{"amount": 99999999999999991611392}"#),
        // int vs float: Python `range(n)`, `"x" * n`, strict pydantic tell them apart.
        (r#"{"n": 3}"#, r#"{"n": 3.0}"#),
        // member order: Python dicts and JS objects iterate in insertion order.
        (
            r#"{"steps": {"a_backup": "tar /data", "b_wipe": "rm -rf /data"}}"#,
            r#"{"steps": {"b_wipe": "rm -rf /data", "a_backup": "tar /data"}}"#,
        ),
    ];
    let mut accepted = Vec::new();
    for (approved, sent) in pairs {
        let mut g = Gw::new(policy(json!({})));
        let state = ask(&mut g, "alice", approved);
        let (_, step) = g.post("alice", &retry(2, "deploy", sent, &accept(), &state), false);
        if step == Step::Continue {
            accepted.push(format!("approved {approved}, upstream ran {sent}"));
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
}

/// (b) What the user is shown is the JCS form, not what the upstream runs: a Python server gets
/// 9007199254740993, the user read 9007199254740992.
#[test]
fn the_question_shows_the_number_the_upstream_will_run() {
    let mut g = Gw::new(policy(json!({})));
    g.post("alice", &first(1, "deploy", r#"{"record": 9007199254740993}"#, CAPS), false);
    let (_, body) = g.reply().unwrap();
    let message = body["result"]["inputRequests"][INPUT_KEY]["params"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("9007199254740993"), "{message}");
}

/// (d) `inputResponses` is only `Checked` by the classifier (duplicate keys allowed): with the
/// gateway's key twice, the answer is read from one and only the first is removed, so the
/// upstream receives the gateway's own entry.
#[test]
fn a_duplicated_gateway_answer_reaches_the_upstream() {
    let mut g = Gw::new(policy(json!({})));
    let args = r#"{"env":"prod"}"#;
    let state = ask(&mut g, "alice", args);
    let a = r#"{"action":"accept","content":{"approve":true}}"#;
    let responses = format!(r#"{{"mcp-warden.dev/confirm":{a},"mcp-warden.dev\/confirm":{a}}}"#);
    let (_, step) = g.post("alice", &retry_raw(2, "deploy", args, &responses, &state), false);
    if step == Step::Continue {
        let forwarded = String::from_utf8(g.host.http.body.clone()).unwrap();
        assert!(!forwarded.contains("mcp-warden.dev"), "the upstream sees the gateway's entry: {forwarded}");
    }
}

/// (c) At the millisecond a state expires, the gateway still takes it (`now > expires` is
/// late) while the replay table already counts its nonce as evictable (`expiry > now` is live):
/// two used states evict each other and both run again, as often as asked within that ms.
#[test]
fn used_states_replay_at_their_expiry_millisecond() {
    let mut g = Gw::new(policy(json!({"confirm": {"ttl_secs": 10, "replay_slots": 2}})));
    let a = ask(&mut g, "alice", r#"{"n":1}"#);
    let c = ask(&mut g, "alice", r#"{"n":2}"#);
    g.host.clock.advance_ms(1);
    let b = ask(&mut g, "alice", r#"{"n":3}"#);
    assert_eq!(g.post("alice", &retry(2, "deploy", r#"{"n":1}"#, &accept(), &a), false).1, Step::Continue);
    assert_eq!(g.post("alice", &retry(2, "deploy", r#"{"n":2}"#, &accept(), &c), false).1, Step::Continue);
    g.host.clock.advance_ms(10_000 - 1); // a's and c's expiry, to the ms
    assert_eq!(g.post("alice", &retry(2, "deploy", r#"{"n":3}"#, &accept(), &b), false).1, Step::Continue);
    let mut runs = 0;
    for i in 0..6 {
        let (args, st) = if i % 2 == 0 { (r#"{"n":1}"#, &a) } else { (r#"{"n":2}"#, &c) };
        if g.post("alice", &retry(3, "deploy", args, &accept(), st), false).1 == Step::Continue {
            runs += 1;
        }
    }
    assert_eq!(runs, 0, "used states ran again");
}

/// (c) The approved state carried behind the upstream's own `input_required` is not bound to
/// the upstream's state: the client can drop (or swap) it and the upstream gets a fresh call, whose
/// next `input_required` mints the next approval. One approval, a call restarted as often as
/// the client likes (an upstream that acts before it asks runs every time).
#[test]
fn the_carried_approval_restarts_the_call_instead_of_continuing_it() {
    let args = r#"{"destination":"Paris"}"#;
    let mut g = Gw::new(policy(json!({"rules": [{"id": "trips", "match": {"names": ["book_trip"]}, "action": "confirm"}]})));
    g.post("alice", &first(1, "book_trip", args, CAPS), false);
    let mut state = g.reply().unwrap().1["result"]["requestState"].as_str().unwrap().to_owned();
    let mut fresh_runs = 0;
    for round in 0..3 {
        let responses = if round == 0 { accept() } else { json!({}) };
        let (mut flow, step) = g.post("alice", &retry(2 + round, "book_trip", args, &responses, &state), false);
        if step != Step::Continue {
            break;
        }
        let forwarded: Value = serde_json::from_slice(&g.host.http.body).unwrap();
        if forwarded["params"].get("requestState").is_none() {
            fresh_runs += 1;
        }
        let asked = json!({"jsonrpc":"2.0","id":2,"result":{"resultType":"input_required",
            "inputRequests":{"prefs":{"method":"elicitation/create","params":{"message":"Seat?","requestedSchema":{"type":"object","properties":{}}}}},
            "requestState": format!("T{round}")}});
        let out = g.host.respond(
            &mut flow,
            &[(":status", "200"), ("content-type", "application/json")],
            &[asked.to_string().as_bytes()],
        );
        let carried = serde_json::from_slice::<Value>(&out.body).unwrap()["result"]["requestState"].as_str().unwrap().to_owned();
        // The client drops the upstream's state and keeps the gateway's approval.
        state = carried.split('~').next().unwrap().to_owned();
    }
    assert_eq!(g.count("asked"), 1);
    assert!(fresh_runs <= 1, "one approval started the call {fresh_runs} times");
}
