//! `confirm` through the whole flow on the fake host: the question, the approved retry forwarded
//! byte for byte as first sent, every way a retry is refused (declined, cancelled, not approved,
//! altered arguments, another caller, late, replayed, forged), clients that cannot be asked, the
//! upstream's own MRTR rounds carried behind the approval, and the receipts of each step; then
//! hostile retries: ambiguous URIs, arguments a server tells apart, duplicated answers, states
//! around their expiry, a carried approval used to restart the call; and a second review's:
//! the carry across SSE and after the content scan, the question's redaction, callers across
//! rounds, batches, odd ids and names, states of another gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::confirm::seal::ConfirmKey;
use mcp_warden_core::confirm::{ConfirmVm, INPUT_KEY};
use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::VmCache;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::policy::{self, KillSwitch, Policy};
use mcp_warden_core::ports::{PeerFact, Step};
use mcp_warden_core::receipt::exchange::Exchange;

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
    /// `source.address` and `user-agent` of the next request.
    address: Option<String>,
    agent: Option<String>,
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
        Gw { host, vm, policy, address: None, agent: None }
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

    /// Posts `body` as `user`; returns the flow and the step (what the upstream would receive is
    /// `host.http.body`). The routing headers are the body's method and name.
    fn post(&mut self, user: &str, body: &str, legacy: bool) -> (RequestFlow, Step) {
        let v: Value = serde_json::from_str(body).unwrap();
        let method = v["method"].as_str().unwrap().to_owned();
        self.post_as(user, body.as_bytes(), &method, v["params"]["name"].as_str(), legacy)
    }

    /// Posts raw `body` with these routing headers (none for `legacy`).
    fn post_as(&mut self, user: &str, body: &[u8], method: &str, name: Option<&str>, legacy: bool) -> (RequestFlow, Step) {
        let h = &mut self.host.http.headers;
        *h = vec![
            (":method".into(), b"POST".to_vec()),
            (":authority".into(), b"gateway".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("x-user".into(), user.as_bytes().to_vec()),
        ];
        if let Some(a) = &self.agent {
            h.push(("user-agent".into(), a.as_bytes().to_vec()));
        }
        if legacy {
            h.push(("mcp-protocol-version".into(), b"2025-11-25".to_vec()));
        } else {
            h.push(("mcp-protocol-version".into(), b"2026-07-28".to_vec()));
            h.push(("mcp-method".into(), method.as_bytes().to_vec()));
            h.extend(name.map(|n| ("mcp-name".to_owned(), n.as_bytes().to_vec())));
        }
        self.host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
        if let Some(a) = &self.address {
            self.host.http.peer.push((PeerFact::SourceAddress, a.clone()));
        }
        let mut flow = self.flow();
        let step = self.host.post(&mut flow, body.to_vec());
        (flow, step)
    }

    fn reply(&self) -> Option<(u32, Value)> {
        self.host.http.reply.as_ref().map(|(status, _, body)| (*status, serde_json::from_slice(body).unwrap()))
    }

    fn raw_reply(&self) -> Option<(u32, Vec<u8>)> {
        self.host.http.reply.as_ref().map(|(status, _, body)| (*status, body.clone()))
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

/// A first call with any JSON-RPC id (as JSON text) and any tool name.
fn first_with_id(id: &str, tool: &str, args: &str, caps: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{}, "arguments":{args},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#,
        serde_json::to_string(tool).unwrap()
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

#[test]
fn the_gateway_asks_then_forwards_the_approved_call_as_first_sent() {
    let mut g = Gw::new(policy(json!({})));
    let args = r#"{"env": "prod",  "n": 1.50}"#;
    let original = first(2, "deploy", args, CAPS);
    let (flow, step) = g.post("alice", &first(1, "deploy", args, CAPS), false);
    assert_eq!(step, Step::Answered);
    let (status, body) = g.reply().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["id"], 1);
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required");
    let q = &result["inputRequests"][INPUT_KEY];
    assert_eq!(q["method"], "elicitation/create");
    assert_eq!(q["params"]["requestedSchema"]["properties"]["approve"]["type"], "boolean");
    let message = q["params"]["message"].as_str().unwrap();
    assert!(message.contains("deploy") && message.contains("mcp_upstream") && message.contains(r#""env":"prod""#), "{message}");
    assert!(message.contains("production deploys need a human"), "{message}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    assert!(state.starts_with("mcpw1."), "{state}");
    let e = g.receipt(&flow);
    assert_eq!(mcp_warden_core::receipt::record::Verdict::from(e.verdict).as_str(), "ask");
    // (`unknown_tool`: no baseline for it yet, an info finding of tool integrity.)
    assert!(e.rule.starts_with("prod-deploys:confirm"), "{}", e.rule);
    assert_eq!(g.count("asked"), 1);

    let (flow, step) = g.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
    assert_eq!(String::from_utf8(g.host.http.body.clone()).unwrap(), original, "the upstream runs what was asked about");
    let e = g.receipt(&flow);
    assert_eq!(mcp_warden_core::receipt::record::Verdict::from(e.verdict).as_str(), "allow");
    assert_eq!((e.layer.as_str(), e.rule.as_str()), ("confirm", "prod-deploys:approved"));
    assert_eq!(e.principal, "alice");
    assert_eq!(g.count("approved"), 1);
}

#[test]
fn every_retry_that_is_no_approval_of_this_call_by_this_caller_is_refused() {
    let args = r#"{"env":"prod"}"#;
    type Retry = Box<dyn Fn(&mut Gw, &str) -> String>;
    let cases: Vec<(&str, Retry, u32, &str)> = vec![
        ("declined", Box::new(|_, s| retry(2, "deploy", args, &json!({INPUT_KEY: {"action": "decline"}}), s)), 403, "declined"),
        ("cancelled", Box::new(|_, s| retry(2, "deploy", args, &json!({INPUT_KEY: {"action": "cancel"}}), s)), 403, "cancelled"),
        (
            "not approved",
            Box::new(|_, s| {
                retry(2, "deploy", args, &json!({INPUT_KEY: {"action": "accept", "content": {"approve": false}}}), s)
            }),
            403,
            "rejected",
        ),
        (
            "approve as a string",
            Box::new(|_, s| {
                retry(2, "deploy", args, &json!({INPUT_KEY: {"action": "accept", "content": {"approve": "true"}}}), s)
            }),
            403,
            "rejected",
        ),
        ("altered arguments", Box::new(|_, s| retry(2, "deploy", r#"{"env":"dev"}"#, &accept(), s)), 400, "arguments"),
        ("another tool", Box::new(|_, s| retry(2, "deploy2", args, &accept(), s)), 400, "call"),
        (
            "forged",
            Box::new(|_, s| {
                let mut t = s.to_owned();
                t.insert(ConfirmKey::new([42; 32]).prefix().len() + 5, 'x');
                retry(2, "deploy", args, &accept(), &t)
            }),
            400,
            "forged",
        ),
    ];
    for (what, make, status, why) in cases {
        let mut g =
            Gw::new(policy(json!({"rules": [{"id": "prod-deploys", "match": {"names": ["deploy*"]}, "action": "confirm"}]})));
        let state = ask(&mut g, "alice", args);
        let body = make(&mut g, &state);
        let (flow, step) = g.post("alice", &body, false);
        assert_eq!(step, Step::Answered, "{what}");
        let e = g.receipt(&flow);
        assert_eq!(mcp_warden_core::receipt::record::Verdict::from(e.verdict).as_str(), "block", "{what}");
        assert!(e.rule.starts_with(&format!("prod-deploys:confirm_{why}")), "{what}: {}", e.rule);
        let (s, reply) = g.reply().unwrap();
        assert_eq!((s, reply["error"]["data"]["why"].as_str().unwrap()), (status, why), "{what}: {reply}");
        assert_eq!(reply["id"], 2, "{what}: the request id is kept");
        assert_eq!(g.count(why), 1, "{what}");
    }
}

#[test]
fn another_caller_a_late_retry_and_a_replay_are_refused() {
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({"confirm": {"ttl_secs": 60}})));
    let state = ask(&mut g, "alice", args);
    g.post("mallory", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "caller");

    let (_, step) = g.post("alice", &retry(3, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue);
    g.post("alice", &retry(4, "deploy", args, &accept(), &state), false);
    let (status, reply) = g.reply().unwrap();
    assert_eq!((status, reply["error"]["data"]["why"].as_str()), (400, Some("replayed")));
    assert_eq!(reply["error"]["code"], -32602);

    let state = ask(&mut g, "alice", args);
    g.host.clock.advance_ms(60_001);
    g.post("alice", &retry(5, "deploy", args, &accept(), &state), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "expired");
}

#[test]
fn the_retry_may_land_on_another_replica_with_the_same_key() {
    let args = r#"{"env":"prod"}"#;
    let mut a = Gw::new(policy(json!({})));
    let state = ask(&mut a, "alice", args);
    let mut b = a.replica();
    let (_, step) = b.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue, "{:?}", b.reply());
    // A gateway with another key cannot read it: to it, the state is an upstream's (another
    // mcp-warden's), so it asks itself, carrying that state behind its own.
    let mut c = Gw::with_key(policy(json!({})), Some(ConfirmKey::new([7; 32])));
    c.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    let asked = c.reply().unwrap().1["result"]["requestState"].as_str().unwrap().to_owned();
    assert!(asked.starts_with(ConfirmKey::new([7; 32]).prefix()) && asked.ends_with(&format!("~{state}")), "{asked}");
}

#[test]
fn clients_that_cannot_be_asked_are_refused_or_let_through_unconfirmed() {
    let legacy = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"deploy","arguments":{}}}"#;
    let no_elicitation = first(9, "deploy", "{}", "{}");
    let url_only = first(9, "deploy", "{}", r#"{"elicitation":{"url":{}}}"#);
    for (body, is_legacy) in [(legacy.to_owned(), true), (no_elicitation.clone(), false), (url_only, false)] {
        let mut g = Gw::new(policy(json!({})));
        let (flow, step) = g.post("alice", &body, is_legacy);
        assert_eq!(step, Step::Answered, "{body}");
        let (status, reply) = g.reply().unwrap();
        assert_eq!((status, reply["error"]["code"].as_i64()), (403, Some(-31403)), "{reply}");
        assert_eq!(reply["error"]["data"]["reason"], "confirmation_unsupported");
        assert_eq!(reply["id"], 9);
        assert!(g.receipt(&flow).rule.starts_with("prod-deploys:confirm_unsupported"));
    }
    let mut g = Gw::new(policy(json!({"confirm": {"unsupported": "allow"}})));
    let (flow, step) = g.post("alice", &no_elicitation, false);
    assert_eq!(step, Step::Continue);
    assert_eq!(g.host.http.body, no_elicitation.as_bytes());
    let e = g.receipt(&flow);
    assert_eq!(
        (mcp_warden_core::receipt::record::Verdict::from(e.verdict).as_str(), e.layer.as_str(), e.severity.as_str()),
        ("allow", "confirm", "warning")
    );
    assert!(e.rule.ends_with(":unconfirmed"), "{}", e.rule);
    assert_eq!(g.count("unconfirmed"), 1);
}

#[test]
fn without_a_key_confirmations_fail_closed() {
    let mut g = Gw::with_key(policy(json!({})), None);
    let (_, step) = g.post("alice", &first(1, "deploy", "{}", CAPS), false);
    assert_eq!(step, Step::Answered);
    let (status, reply) = g.reply().unwrap();
    assert_eq!((status, reply["error"]["data"]["why"].as_str()), (503, Some("unavailable")));
}

#[test]
fn the_upstreams_own_rounds_carry_the_approval_and_get_their_state_back() {
    let args = r#"{"destination":"Paris"}"#;
    let mut g = Gw::new(policy(json!({"rules": [{"id": "trips", "match": {"names": ["book_trip"]}, "action": "confirm"}]})));
    g.post("alice", &first(1, "book_trip", args, CAPS), false);
    let state = g.reply().unwrap().1["result"]["requestState"].as_str().unwrap().to_owned();
    let (mut flow, step) = g.post("alice", &retry(2, "book_trip", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue);
    // The upstream asks for preferences itself.
    let theirs = "v1.eyJzIjoxfQ~sig";
    let asked = json!({"jsonrpc":"2.0","id":2,"result":{"resultType":"input_required",
        "inputRequests":{"prefs":{"method":"elicitation/create","params":{"message":"Seat?","requestedSchema":{"type":"object","properties":{}}}}},
        "requestState": theirs}});
    let out =
        g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[asked.to_string().as_bytes()]);
    let seen: Value = serde_json::from_slice(&out.body).unwrap();
    let carried = seen["result"]["requestState"].as_str().unwrap().to_owned();
    assert!(carried.starts_with("mcpw1.") && carried.ends_with(&format!("~{theirs}")), "{carried}");
    assert_eq!(seen["result"]["inputRequests"], asked["result"]["inputRequests"]);

    // The client answers the upstream's question: no second approval, the upstream gets its own
    // state and answers back, and nothing of the gateway's.
    let prefs = json!({"prefs": {"action": "accept", "content": {"seat": "window"}}});
    let (_, step) = g.post("alice", &retry(3, "book_trip", args, &prefs, &carried), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
    let forwarded: Value = serde_json::from_slice(&g.host.http.body).unwrap();
    assert_eq!(forwarded["params"]["requestState"], theirs);
    assert_eq!(forwarded["params"]["inputResponses"], prefs);
    assert_eq!(g.count("asked"), 1, "asked once");
    // The carried state is good once too.
    g.post("alice", &retry(4, "book_trip", args, &prefs, &carried), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "replayed");
}

#[test]
fn the_gateways_entries_leave_and_the_clients_other_answers_stay() {
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({})));
    let state = ask(&mut g, "alice", args);
    let both = json!({ INPUT_KEY: {"action": "accept", "content": {"approve": true}}, "other": {"action": "decline"} });
    let (_, step) = g.post("alice", &retry(2, "deploy", args, &both, &state), false);
    assert_eq!(step, Step::Continue);
    let forwarded: Value = serde_json::from_slice(&g.host.http.body).unwrap();
    assert_eq!(forwarded["params"]["inputResponses"], json!({"other": {"action": "decline"}}));
    assert!(forwarded["params"].get("requestState").is_none());
}

#[test]
fn a_state_of_ours_never_reaches_an_upstream() {
    // A tool no rule covers: a valid state of ours is removed, a forged one refused.
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({"rules": [
        {"id": "prod-deploys", "match": {"names": ["deploy"]}, "action": "confirm"}]})));
    let state = ask(&mut g, "alice", args);
    let free = Gw::new(policy(json!({"rules": []})));
    let mut free = Gw { host: std::mem::take(&mut g.host), ..free };
    let (_, step) = free.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue);
    let forwarded: Value = serde_json::from_slice(&free.host.http.body).unwrap();
    assert!(forwarded["params"].get("requestState").is_none() && forwarded["params"].get("inputResponses").is_none());
    let forged = format!("{}AAAA.BBBB", ConfirmKey::new([42; 32]).prefix());
    free.post("alice", &retry(3, "echo", "{}", &accept(), &forged), false);
    assert_eq!(free.reply().unwrap().1["error"]["data"]["why"], "forged");
    // Another mcp-warden's state (another key) is the upstream's: it passes where no rule asks.
    let stacked = retry(5, "echo", "{}", &json!({"q": {"action": "accept"}}), "mcpw1.0badc0de.AAAA.BBBB");
    let (_, step) = free.post("alice", &stacked, false);
    assert_eq!(step, Step::Continue);
    assert_eq!(free.host.http.body, stacked.as_bytes());
    // The upstream's own state passes untouched where no rule asks.
    let (_, step) = free.post("alice", &retry(4, "echo", "{}", &json!({"q": {"action": "accept"}}), "v1.theirs"), false);
    assert_eq!(step, Step::Continue);
    assert_eq!(free.host.http.body, retry(4, "echo", "{}", &json!({"q": {"action": "accept"}}), "v1.theirs").as_bytes());
}

#[test]
fn an_unwrapped_upstream_state_is_carried_inside_the_question() {
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({})));
    g.post("alice", &retry(1, "deploy", args, &json!({"prefs": {"action": "accept"}}), "v1.theirs"), false);
    let state = g.reply().unwrap().1["result"]["requestState"].as_str().unwrap().to_owned();
    assert!(state.starts_with("mcpw1.") && state.ends_with("~v1.theirs"), "{state}");
    let (_, step) = g.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue);
    let forwarded: Value = serde_json::from_slice(&g.host.http.body).unwrap();
    assert_eq!(forwarded["params"]["requestState"], "v1.theirs");
    assert!(forwarded["params"].get("inputResponses").is_none());
}

#[test]
fn sensitive_tools_are_confirmed_when_the_policy_says_so() {
    let p = policy(json!({"rules": [], "tool_integrity": {"sensitive_tools": ["wire_*"]}, "confirm": {"sensitive_tools": true}}));
    let mut g = Gw::new(p);
    // Sensitive tools run only with a fresh baseline: the gateway sees the tool list first.
    let list = r#"{"jsonrpc":"2.0","id":0,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let (mut flow, step) = g.post("alice", list, false);
    assert_eq!(step, Step::Continue);
    let tools = json!({"jsonrpc":"2.0","id":0,"result":{"resultType":"complete","tools":[
        {"name":"wire_money","description":"Sends money","inputSchema":{"type":"object"}}]}});
    g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[tools.to_string().as_bytes()]);
    let (flow, step) = g.post("alice", &first(1, "wire_money", "{}", CAPS), false);
    assert_eq!(step, Step::Answered);
    assert_eq!(g.reply().unwrap().1["result"]["resultType"], "input_required", "{:?}", g.reply());
    assert_eq!(g.receipt(&flow).rule, "confirm.sensitive_tools:confirm");
    let (_, step) = g.post("alice", &first(2, "echo", "{}", CAPS), false);
    assert_eq!(step, Step::Continue);
}

#[test]
fn a_policy_with_confirm_rules_compiles_and_names_its_errors() {
    let e = policy::load(br#"{"confirm": {"ttl_secs": 5}}"#).unwrap_err();
    assert_eq!(e.field, "confirm.ttl_secs");
    let e = policy::load(br#"{"confirm": {"unsupported": "maybe"}}"#).unwrap_err();
    assert_eq!(e.field, "confirm.unsupported");
    let e = policy::load(br#"{"rules": [{"id": "a", "action": "allow", "reason": "x"}]}"#).unwrap_err();
    assert_eq!(e.field, "rules[0].reason");
    assert!(policy::load(br#"{"rules": [{"id": "a", "action": "confirm"}]}"#).unwrap().confirm.used);
    assert!(!policy::load(b"{}").unwrap().confirm.used);
}

#[test]
fn what_the_content_scan_flags_for_confirmation_is_asked_about_with_it_redacted() {
    let p = policy(json!({"rules": [], "content_scan": {"classes": {"pii": "confirm"}}}));
    let mut g = Gw::new(p);
    let iban = "DE89370400440532013000";
    let args = format!(r#"{{"to":"{iban}","amount":5}}"#);
    let (flow, step) = g.post("alice", &first(1, "pay", &args, CAPS), false);
    assert_eq!(step, Step::Answered, "{:?}", g.host.http.reply);
    let (_, body) = g.reply().unwrap();
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required", "{body}");
    let message = result["inputRequests"][INPUT_KEY]["params"]["message"].as_str().unwrap();
    assert!(!message.contains(iban) && message.contains("[redacted]"), "{message}");
    let e = g.receipt(&flow);
    assert!(e.rule.starts_with("content_scan.iban:confirm"), "{}", e.rule);
    let state = result["requestState"].as_str().unwrap().to_owned();
    let (_, step) = g.post("alice", &retry(2, "pay", &args, &accept(), &state), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
    assert_eq!(String::from_utf8(g.host.http.body.clone()).unwrap(), first(2, "pay", &args, CAPS));

    // In what comes back there is nobody to ask: `confirm` blocks it.
    let (mut flow, step) = g.post("alice", &first(3, "lookup", "{}", CAPS), false);
    assert_eq!(step, Step::Continue);
    let answer = json!({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text": format!("account {iban}")}]}});
    let out =
        g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[answer.to_string().as_bytes()]);
    let seen: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(seen["error"]["code"], -31502, "{seen}");
}

// --- hostile retries (a review's findings, each a regression test) ---

/// Posts a raw body with explicit routing headers (method, name).
fn post_raw(g: &mut Gw, user: &str, body: &[u8], method: &str, name: Option<&str>) -> Step {
    g.post_as(user, body, method, name, false).1
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

/// A `resources/read` whose URI has no single reading (`%2F` inside a segment) falls under a
/// `confirm` rule in either reading and is refused (a server that decodes `%2F` reads
/// `file:///secrets/prod.key`; nobody can be shown what it reads).
#[test]
fn an_ambiguous_resource_uri_under_a_confirm_rule_is_refused() {
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
    // ... and the ambiguous spelling under the confirm rule is refused, never forwarded unasked.
    let mut g = Gw::new(rule("confirm"));
    let step = post_raw(&mut g, "alice", resource_read(1, uri, CAPS).as_bytes(), "resources/read", Some(uri));
    assert_eq!(step, Step::Answered, "forwarded without asking: {}", String::from_utf8_lossy(&g.host.http.body));
    assert_eq!(g.reply().unwrap().0, 403);
}

/// Arguments a server executes differently never share an approval: the state binds their
/// compact form (numbers and member order as sent), not a canonical one that reads every number
/// as an IEEE double and sorts members. (An honest SDK re-sends the arguments as first sent.)
#[test]
fn arguments_a_server_tells_apart_never_share_an_approval() {
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

/// The user is shown the number the upstream runs (a Python server reads 9007199254740993
/// exactly; its double is 9007199254740992).
#[test]
fn the_question_shows_the_number_the_upstream_will_run() {
    let mut g = Gw::new(policy(json!({})));
    g.post("alice", &first(1, "deploy", r#"{"record": 9007199254740993}"#, CAPS), false);
    let (_, body) = g.reply().unwrap();
    let message = body["result"]["inputRequests"][INPUT_KEY]["params"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("9007199254740993"), "{message}");
}

/// The gateway's answer named twice (once spelled with an escape) has no single reading: refused,
/// never half removed with the other copy forwarded.
#[test]
fn a_duplicated_gateway_answer_is_refused() {
    let mut g = Gw::new(policy(json!({})));
    let args = r#"{"env":"prod"}"#;
    let state = ask(&mut g, "alice", args);
    let a = r#"{"action":"accept","content":{"approve":true}}"#;
    let responses = format!(r#"{{"mcp-warden.dev/confirm":{a},"mcp-warden.dev\/confirm":{a}}}"#);
    let (_, step) = g.post("alice", &retry_raw(2, "deploy", args, &responses, &state), false);
    assert_eq!(step, Step::Answered);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "ambiguous");
}

/// At the millisecond a state expires it is refused (the replay table keeps a nonce through that
/// millisecond: `replay.rs` tests that a live nonce is never evicted), and a used state never runs
/// again before.
#[test]
fn used_states_never_run_again_around_their_expiry() {
    let mut g = Gw::new(policy(json!({"confirm": {"ttl_secs": 10}})));
    let a = ask(&mut g, "alice", r#"{"n":1}"#);
    assert_eq!(g.post("alice", &retry(2, "deploy", r#"{"n":1}"#, &accept(), &a), false).1, Step::Continue);
    g.host.clock.advance_ms(10_000 - 1);
    g.post("alice", &retry(3, "deploy", r#"{"n":1}"#, &accept(), &a), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "replayed");
    g.host.clock.advance_ms(1); // its expiry, to the ms
    g.post("alice", &retry(4, "deploy", r#"{"n":1}"#, &accept(), &a), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "expired");
}

/// The approval carried behind the upstream's own `input_required` is bound to the upstream's
/// state it wraps: a client that drops (or swaps) that state to restart the call under the same
/// approval is refused, so one approval starts the call once.
#[test]
fn the_carried_approval_cannot_restart_the_call() {
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
        let asked = json!({"jsonrpc":"2.0","id":2 + round,"result":{"resultType":"input_required",
            "inputRequests":{"prefs":{"method":"elicitation/create","params":{"message":"Seat?","requestedSchema":{"type":"object","properties":{}}}}},
            "requestState": format!("T{round}")}});
        let out = g.host.respond(
            &mut flow,
            &[(":status", "200"), ("content-type", "application/json")],
            &[asked.to_string().as_bytes()],
        );
        let seen: Value = serde_json::from_slice(&out.body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.body)));
        let carried = seen["result"]["requestState"].as_str().unwrap_or_else(|| panic!("round {round}: {seen}")).to_owned();
        // The client drops the upstream's state and keeps the gateway's approval.
        state = carried.split('~').next().unwrap().to_owned();
    }
    assert_eq!(g.count("asked"), 1);
    assert!(fresh_runs <= 1, "one approval started the call {fresh_runs} times");
}

// --- a second review: the carry across SSE, the question's redaction, callers, batches, ids ---

fn question_state(g: &Gw) -> String {
    let (_, body) = g.reply().unwrap_or_else(|| panic!("no question"));
    body["result"]["requestState"].as_str().unwrap_or_else(|| panic!("no state: {body}")).to_owned()
}

fn question_message(g: &Gw) -> String {
    let (_, body) = g.reply().unwrap();
    body["result"]["inputRequests"][INPUT_KEY]["params"]["message"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

/// Asks about `tool` and retries approved; returns the flow of the forwarded retry.
fn approved(g: &mut Gw, tool: &str, args: &str) -> RequestFlow {
    let (_, step) = g.post("alice", &first(1, tool, args, CAPS), false);
    assert_eq!(step, Step::Answered);
    let state = question_state(g);
    let (flow, step) = g.post("alice", &retry(2, tool, args, &accept(), &state), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
    flow
}

fn upstream_asks(id: u32, theirs: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"result":{"resultType":"input_required",
        "inputRequests":{"prefs":{"method":"elicitation/create","params":{"message":"Seat?","requestedSchema":{"type":"object","properties":{}}}}},
        "requestState": theirs}})
}

fn trips() -> Rc<Policy> {
    policy(json!({"rules": [{"id": "trips", "match": {"names": ["book_trip"]}, "action": "confirm"}]}))
}

fn sse_events(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    text.split("\n\n")
        .filter_map(|ev| {
            let data: Vec<&str> = ev.lines().filter_map(|l| l.strip_prefix("data:").map(str::trim_start)).collect();
            (!data.is_empty() && !data.join("").trim().is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

// --- (1) the carry inspector across SSE ---

/// The upstream's `input_required` on a stream: after a progress notification, with SSE `id:`
/// fields, split across chunks in the middle of its state. The carried state works.
#[test]
fn sse_carry_survives_chunks_ids_and_notifications() {
    let args = r#"{"destination":"Paris"}"#;
    let mut g = Gw::new(trips());
    let mut flow = approved(&mut g, "book_trip", args);
    let theirs = "v1.eyJzIjoxfQ~sig";
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#;
    let stream = format!("id: 1\nretry: 500\ndata: {progress}\n\nid: 2\nevent: message\ndata: {}\n\n", upstream_asks(2, theirs));
    let cut = stream.find("eyJzIjox").unwrap() + 3;
    let (a, b) = stream.as_bytes().split_at(cut);
    let out = g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "text/event-stream")], &[a, b]);
    let events = sse_events(&out.body);
    assert_eq!(events.len(), 2, "{}", String::from_utf8_lossy(&out.body));
    let carried = events[1]["result"]["requestState"].as_str().unwrap().to_owned();
    assert!(carried.starts_with("mcpw1.") && carried.ends_with(&format!("~{theirs}")), "{carried}");
    let prefs = json!({"prefs": {"action": "accept", "content": {"seat": "window"}}});
    let (_, step) = g.post("alice", &retry(3, "book_trip", args, &prefs, &carried), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
    let forwarded: Value = serde_json::from_slice(&g.host.http.body).unwrap();
    assert_eq!(forwarded["params"]["requestState"], theirs);
}

/// What held: on an approved call's stream, an answer to another id is withheld (never
/// carried), an error answer passes untouched, and a result that is not `input_required` gets
/// no state of ours.
#[test]
fn sse_foreign_answers_errors_and_complete_results_get_no_state() {
    let args = r#"{"destination":"Paris"}"#;
    for (message, expect) in [
        (upstream_asks(7, "v1.x").to_string(), "withheld"),
        (r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"input_required"}}"#.to_owned(), "error"),
        (r#"{"jsonrpc":"2.0","id":2,"result":{"resultType":"complete","content":[],"requestState":"x"}}"#.to_owned(), "complete"),
    ] {
        let mut g = Gw::new(trips());
        let mut flow = approved(&mut g, "book_trip", args);
        let stream = format!("data: {message}\n\n");
        let out = g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "text/event-stream")], &[stream.as_bytes()]);
        let events = sse_events(&out.body);
        let text = events[0].to_string();
        assert!(!text.contains("mcpw1."), "{expect}: {text}");
        match expect {
            "withheld" => assert_eq!(events[0]["error"]["code"], -31502, "{text}"),
            "error" => assert_eq!(events[0], serde_json::from_str::<Value>(&message).unwrap()),
            _ => assert_eq!(events[0]["result"]["requestState"], "x"),
        }
    }
}

/// The carry inspector runs after the content scan: when the scan redacts the upstream's state (a
/// plain-text state holding an IBAN: `pii` redacts by default), ours is bound to the state as the
/// client receives it, and the client's echo of it is no forgery.
#[test]
fn a_state_the_content_scan_redacts_is_not_refused_as_forged() {
    let args = r#"{"destination":"Paris"}"#;
    let mut g = Gw::new(trips());
    let mut flow = approved(&mut g, "book_trip", args);
    let theirs = "step2;payee=DE89370400440532013000";
    let out = g.host.respond(
        &mut flow,
        &[(":status", "200"), ("content-type", "application/json")],
        &[upstream_asks(2, theirs).to_string().as_bytes()],
    );
    let seen: Value = serde_json::from_slice(&out.body).unwrap();
    let carried = seen["result"]["requestState"].as_str().unwrap_or_else(|| panic!("{seen}")).to_owned();
    let prefs = json!({"prefs": {"action": "accept", "content": {"seat": "window"}}});
    g.post("alice", &retry(3, "book_trip", args, &prefs, &carried), false);
    let why = g.reply().map(|(_, r)| r["error"]["data"]["why"].clone());
    assert_ne!(why, Some(json!("forged")), "the client echoed what the gateway sent it ({carried}) and was called a forger");
}

// --- (2) the question's redaction skip ---

/// A detector the policy turns `off` finds nothing on the wire, yet the question still redacts
/// its secret (the redaction scan is skipped only when every detector looked and found nothing).
#[test]
fn a_detector_turned_off_still_never_shows_its_secret_in_the_question() {
    let key = "AKIA".to_owned() + "Z7Q2LM4NX8PW3KJD";
    let iban = "DE89370400440532013000";
    let mut shown = Vec::new();
    for (scan, args, secret) in [
        (json!({"detectors": {"aws_access_key_id": "off"}}), format!(r#"{{"key":"{key}"}}"#), key.as_str()),
        (json!({"classes": {"pii": "off"}}), format!(r#"{{"to":"{iban}"}}"#), iban),
    ] {
        let mut g = Gw::new(policy(json!({"content_scan": scan})));
        let (_, step) = g.post("alice", &first(1, "deploy", &args, CAPS), false);
        assert_eq!(step, Step::Answered);
        let m = question_message(&g);
        if m.contains(secret) {
            shown.push(format!("{scan}: {m}"));
        }
    }
    assert!(shown.is_empty(), "{shown:#?}");
}

/// What held: a suppression is reported at `info`, counts as a finding, and the question
/// redacts; so does a body the scan did not reach the end of (oversize warn) and a policy
/// that scans responses only.
#[test]
fn suppressions_oversize_and_response_only_scans_still_redact_the_question() {
    let key = "AKIA".to_owned() + "Z7Q2LM4NX8PW3KJD";
    let pad = "x".repeat(2000);
    for scan in [
        json!({"suppressions": [{"detectors": ["aws_access_key_id"], "tools": ["deploy"]}]}),
        json!({"max_scan_bytes": 1024, "oversize": "warn"}),
        json!({"directions": ["response"]}),
    ] {
        let mut g = Gw::new(policy(json!({"content_scan": scan})));
        let args = format!(r#"{{"pad":"{pad}","key":"{key}"}}"#);
        let (_, step) = g.post("alice", &first(1, "deploy", &args, CAPS), false);
        assert_eq!(step, Step::Answered, "{scan}");
        let m = question_message(&g);
        assert!(!m.contains(&key), "{scan}: {m}");
    }
}

// --- (3) the caller across rounds ---

/// The state binds the correlation key (README "Confirm"), which includes the client fingerprint
/// (source address without its port, user agent) for every principal: the same user's retry
/// from another address is another caller. What the issue asks the state to bind; a new
/// connection from the same client keeps it (below).
#[test]
fn a_retry_from_another_address_is_another_caller() {
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({})));
    g.agent = Some("node".into());
    g.address = Some("203.0.113.7:50123".into());
    g.post("alice", &first(1, "deploy", args, CAPS), false);
    let state = question_state(&g);
    g.address = Some("203.0.113.8:40001".into());
    g.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(g.reply().unwrap().1["error"]["data"]["why"], "caller");
}

/// What held: a new connection (another port) and the same user agent keep the binding.
#[test]
fn a_new_connection_from_the_same_client_keeps_the_binding() {
    let args = r#"{"env":"prod"}"#;
    let mut g = Gw::new(policy(json!({"principal": {"sources": []}})));
    g.agent = Some("node".into());
    g.address = Some("203.0.113.7:50123".into());
    g.post("anyone", &first(1, "deploy", args, CAPS), false);
    let state = question_state(&g);
    g.address = Some("203.0.113.7:50999".into());
    let (_, step) = g.post("anyone", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Continue, "{:?}", g.reply());
}

// --- (4) confirmations left unasked ---

fn legacy_call(id: u32, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

fn post_batch(g: &mut Gw, batch: &[Value]) -> Step {
    let body = serde_json::to_vec(batch).unwrap();
    g.post_as("alice", &body, "tools/call", None, true).1
}

/// `confirm.sensitive_tools` holds in a legacy batch too: the element cannot be asked, so the
/// batch is refused, as the lone call is.
#[test]
fn a_sensitive_tool_in_a_legacy_batch_is_refused() {
    let p = policy(json!({"rules": [], "eras": {"legacy_batches": true},
        "tool_integrity": {"sensitive_tools": ["wire_*"]}, "confirm": {"sensitive_tools": true}}));
    let mut g = Gw::new(p);
    let list = r#"{"jsonrpc":"2.0","id":0,"method":"tools/list","params":{}}"#;
    let (mut flow, step) = g.post_as("alice", list.as_bytes(), "tools/list", None, true);
    assert_eq!(step, Step::Continue);
    let tools = json!({"jsonrpc":"2.0","id":0,"result":{"tools":[
        {"name":"wire_money","description":"Sends money","inputSchema":{"type":"object"}}]}});
    g.host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[tools.to_string().as_bytes()]);
    // Alone, the legacy call cannot be asked: refused.
    let one = legacy_call(1, "wire_money", json!({"to": "mallory"}));
    let (_, step) = g.post_as("alice", one.to_string().as_bytes(), "tools/call", None, true);
    assert_eq!(step, Step::Answered, "the lone call is refused");
    // In a batch too.
    let step = post_batch(&mut g, &[legacy_call(2, "echo", json!({})), legacy_call(3, "wire_money", json!({"to": "mallory"}))]);
    assert_eq!(step, Step::Answered, "forwarded unconfirmed: {}", String::from_utf8_lossy(&g.host.http.body));
}

/// A content-scan class set to `confirm` flagging a batch element refuses the batch, under
/// `unsupported: allow` too, with the array a batch is answered with.
#[test]
fn a_batch_element_the_content_scan_flags_for_confirmation_is_refused_as_a_batch() {
    let iban = "DE89370400440532013000";
    let mut wrong = Vec::new();
    for unsupported in ["allow", "deny"] {
        let p = policy(json!({"rules": [], "eras": {"legacy_batches": true},
            "content_scan": {"classes": {"pii": "confirm"}}, "confirm": {"unsupported": unsupported}}));
        let mut g = Gw::new(p);
        let step = post_batch(&mut g, &[legacy_call(1, "echo", json!({})), legacy_call(2, "pay", json!({"to": iban}))]);
        match g.reply() {
            _ if step != Step::Answered => {
                wrong.push(format!("{unsupported}: forwarded: {}", String::from_utf8_lossy(&g.host.http.body)))
            }
            Some((_, body)) if !body.is_array() => wrong.push(format!("{unsupported}: answered with one object: {body}")),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// --- (5), (6) ids, names, malformed replies ---

/// What held: id 0, string ids with escapes and names with quotes, newlines and non-ASCII
/// give one valid question keeping the id; a missing id is refused, never asked.
#[test]
fn odd_ids_and_names_give_valid_questions() {
    let p = policy(json!({"rules": [{"id": "all", "match": {"methods": ["tools/call"]}, "action": "confirm",
                                      "reason": "\"why\" \\ é </script>"}]}));
    let mut asked = 0;
    for (id, name) in [("0", "deploy"), (r#""a\"b\\c\u00e9""#, "de\"p\\loy"), ("-1.5e3", "d\u{e9}ploy\u{2028}x")] {
        let mut g = Gw::new(Rc::clone(&p));
        let body = first_with_id(id, name, r#"{"s":"\u0000\"\n"}"#, CAPS);
        let (_, step) = g.post_as("alice", body.as_bytes(), "tools/call", Some(name), false);
        if step != Step::Answered {
            continue; // the name did not pass the routing-header check
        }
        let (status, raw) = g.raw_reply().unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{id}: {e}: {}", String::from_utf8_lossy(&raw)));
        if status == 200 {
            assert_eq!(v["id"], serde_json::from_str::<Value>(id).unwrap(), "{v}");
            assert!(v["result"]["inputRequests"][INPUT_KEY]["params"]["message"].as_str().unwrap().contains(name));
            asked += 1;
        }
    }
    assert!(asked >= 2, "{asked}");
    // A notification under the rule.
    let mut g = Gw::new(Rc::clone(&p));
    let note = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"deploy","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}}"#;
    let (_, step) = g.post_as("alice", note.as_bytes(), "tools/call", Some("deploy"), false);
    assert_eq!(step, Step::Answered, "{}", String::from_utf8_lossy(&g.host.http.body));
    if let Some((_, r)) = g.reply() {
        assert!(r.get("result").is_none(), "a notification is never asked: {r}");
    }
}

// --- (7) README claims ---

/// A state the upstream hands out that is not ours passes untouched where no rule asks, also
/// one spelled `mcpw1.…` (an upstream behind its own mcp-warden, with another key: ours carry
/// our key's id).
#[test]
fn an_upstream_state_spelled_like_ours_passes_where_no_rule_asks() {
    let mut g = Gw::new(policy(json!({"rules": []})));
    let (mut flow, step) = g.post("alice", &first(1, "echo", "{}", CAPS), false);
    assert_eq!(step, Step::Continue);
    let theirs = "mcpw1.AQEAAAGLz-VoAA.inner-gateway-mac";
    let out = g.host.respond(
        &mut flow,
        &[(":status", "200"), ("content-type", "application/json")],
        &[upstream_asks(1, theirs).to_string().as_bytes()],
    );
    let seen: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(seen["result"]["requestState"], theirs);
    let prefs = json!({"prefs": {"action": "accept", "content": {}}});
    let (_, step) = g.post("alice", &retry(2, "echo", "{}", &prefs, theirs), false);
    assert_eq!(step, Step::Continue, "the upstream's own state was refused: {:?}", g.reply());
}

/// The carried approval lives from when the upstream's question passes: a slow upstream does not
/// hand the user a state that is already expired.
#[test]
fn the_carried_approval_lives_from_when_the_upstream_asks() {
    let args = r#"{"destination":"Paris"}"#;
    let mut g = Gw::new(policy(json!({"rules": [{"id": "trips", "match": {"names": ["book_trip"]}, "action": "confirm"}],
                                       "confirm": {"ttl_secs": 60}})));
    let mut flow = approved(&mut g, "book_trip", args);
    g.host.clock.advance_ms(59_000); // the upstream works for 59 s, then asks
    let out = g.host.respond(
        &mut flow,
        &[(":status", "200"), ("content-type", "application/json")],
        &[upstream_asks(2, "v1.theirs").to_string().as_bytes()],
    );
    let seen: Value = serde_json::from_slice(&out.body).unwrap();
    let carried = seen["result"]["requestState"].as_str().unwrap().to_owned();
    g.host.clock.advance_ms(5_000); // the user answers within 5 s
    let prefs = json!({"prefs": {"action": "accept", "content": {"seat": "window"}}});
    let (_, step) = g.post("alice", &retry(3, "book_trip", args, &prefs, &carried), false);
    assert_eq!(step, Step::Continue, "answered 5 s after being asked: {:?}", g.reply());
}

/// With the mesh-wide rate limit service configured, an approved state's use is also counted
/// there (`confirm_uses`, one per nonce): a state already used on another replica is refused as
/// replayed when the service says it is over its limit of one.
#[test]
fn a_used_state_is_counted_mesh_wide_and_refused_when_another_replica_used_it() {
    let args = r#"{"env":"prod"}"#;
    let p = policy(json!({"correlation": {"mesh": {"cluster": "warden_rls", "domain": "d"}}}));
    let mut g = Gw::new(Rc::clone(&p));
    let state = ask(&mut g, "alice", args);
    let (mut flow, step) = g.post("alice", &retry(2, "deploy", args, &accept(), &state), false);
    assert_eq!(step, Step::Buffer, "the approved call waits for the rate limit service");
    let (_, _, body) = g.host.http.grpc_calls.last().cloned().unwrap();
    assert!(body.windows(12).any(|w| w == b"confirm_uses"), "the use is counted mesh-wide");
    assert!(body.windows(13).any(|w| w == b"confirm_nonce"));
    // The service: the last descriptor (the confirmation's) is over its limit.
    let n = body.windows(4).filter(|w| w == b"kind").count();
    let mut over = vec![0x08, 0x02];
    for i in 0..n {
        over.extend_from_slice(&[0x12, 0x02, 0x08, if i + 1 == n { 0x02 } else { 0x01 }]);
    }
    assert_eq!(flow.on_mesh_answer(&mut g.host.ports(), Some(&over)), Step::Answered);
    let (status, reply) = g.reply().unwrap();
    assert_eq!((status, reply["error"]["data"]["why"].as_str()), (400, Some("replayed")), "{reply}");
    // The service says OK: the call goes on.
    let state = ask(&mut g, "alice", args);
    let (mut flow, _) = g.post("alice", &retry(3, "deploy", args, &accept(), &state), false);
    assert_eq!(flow.on_mesh_answer(&mut g.host.ports(), Some(&[0x08, 0x01])), Step::Continue);
}
