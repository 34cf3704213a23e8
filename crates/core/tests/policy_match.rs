//! Rule matching tables: (principal, request, upstream) → action, through `policy::enforce`, plus
//! the replies the filter sends, tools/list hiding, dry-run and the kill switch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use mcp_warden_core::fake_host::FakeKv;
use mcp_warden_core::flow::reply;
use mcp_warden_core::mcp::model::{Era, McpRequest, MessageKind, Target};
use mcp_warden_core::mcp::Method;
use mcp_warden_core::policy::killswitch::KillSwitch;
use mcp_warden_core::policy::{self, filter_list, filter_tools_list, Action, ListKind, Policy};
use mcp_warden_core::principal::{Origin, Principal};

fn req(era: Era, method: &str, name: Option<&str>) -> McpRequest {
    let mut r = McpRequest {
        era,
        kind: MessageKind::Request,
        id: Some("42".to_owned()),
        method: Some(method.to_owned()),
        op: Some(Method::parse(method)),
        name: name.map(str::to_owned),
        resolved_name: None,
        name_ambiguous: false,
        target: None,
        protocol_version: None,
        client_name: None,
        client_version: None,
        traceparent: None,
        tracestate: None,
        baggage: None,
        session_id: None,
        is_mrtr_retry: false,
        handles: Default::default(),
    };
    // As classification does: a resource URI is matched in its resolved form.
    r.resolve_name();
    r
}

fn who(origin: Origin, id: &str) -> Principal {
    Principal {
        origin,
        id: id.to_owned(),
        actors: Vec::new(),
        groups: Vec::new(),
        claims: Vec::new(),
        trust_domain: None,
        client_fingerprint: "fp".to_owned(),
    }
}

fn alice() -> Principal {
    let mut p = who(Origin::Jwt, "alice");
    p.groups = vec!["staff".into()];
    p.claims = vec![("tenant".into(), "acme-eu".into())];
    p
}

fn agent_chain() -> Principal {
    let mut p = who(Origin::Jwt, "alice");
    p.actors = vec!["agent-7".into(), "search".into()];
    p
}

fn workload() -> Principal {
    let mut p = who(Origin::Spiffe, "spiffe://corp.example/ns/prod/sa/indexer");
    p.trust_domain = Some("corp.example".into());
    p
}

fn anon() -> Principal {
    who(Origin::Anonymous, "anonymous")
}

const POLICY: &str = r#"{
  "rules": [
    {"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]}, "action": "deny", "reason": "no deletes"},
    {"id": "admins", "match": {"groups": ["admins"]}, "action": "allow"},
    {"id": "no-exec-via-search", "match": {"actors": ["search"], "names": ["exec"]}, "action": "deny", "hide": false, "reason": "not through search"},
    {"id": "anon-no-tools", "match": {"sources": ["anonymous"], "methods": ["tools/call"]}, "action": "deny", "hide": false, "reason": "sign in to call tools"},
    {"id": "mesh-internal", "match": {"trust_domains": ["corp.example"], "upstreams": ["internal-*"]}, "action": "allow"},
    {"id": "mesh-elsewhere", "match": {"trust_domains": ["corp.example"]}, "action": "deny", "hide": false, "reason": "workloads stay internal"},
    {"id": "acme-legacy-off", "match": {"claims": {"tenant": "acme-*"}, "eras": ["legacy"]}, "action": "deny", "hide": false, "reason": "acme uses the modern era"},
    {"id": "bob-only-reads", "match": {"principals": ["bob"], "names": ["write_*"]}, "action": "deny", "reason": "read only"}
  ],
  "default_action": "allow"
}"#;

fn policy(text: &str) -> Policy {
    policy::load(text.as_bytes()).unwrap()
}

fn decide(p: &Policy, who: &Principal, r: &McpRequest, upstream: &str) -> (Action, Option<String>) {
    let mut kv = FakeKv::new();
    let v = policy::enforce(p, &KillSwitch::default(), who, r, upstream, &mut kv, 1_000);
    (v.action, v.rule_id)
}

fn deny(reason: &str, hide: bool) -> Action {
    Action::Deny { reason: reason.into(), hide }
}

#[test]
fn matching_table() {
    let p = policy(POLICY);
    let mut admin = alice();
    admin.groups.push("admins".into());
    let bob = who(Origin::Header, "bob");
    let m = Era::Modern;
    let l = Era::Legacy;
    // (case, principal, request, upstream, expected action, expected rule)
    type Case<'a> = (&'a str, Principal, McpRequest, &'a str, Action, Option<&'a str>);
    #[rustfmt::skip]
    let table: Vec<Case> = vec![
        ("plain call allowed by default", alice(), req(m, "tools/call", Some("read_file")), "fs", Action::Allow, None),
        ("delete hidden for everyone", alice(), req(m, "tools/call", Some("delete_file")), "fs", deny("no deletes", true), Some("no-deletes")),
        ("first match wins over admins", admin.clone(), req(m, "tools/call", Some("delete_file")), "fs", deny("no deletes", true), Some("no-deletes")),
        ("admins allowed before later denies", admin.clone(), req(l, "tools/call", Some("exec")), "fs", Action::Allow, Some("admins")),
        ("delegation chain actor matches", agent_chain(), req(m, "tools/call", Some("exec")), "fs", deny("not through search", false), Some("no-exec-via-search")),
        ("subject alone is not an actor", alice(), req(m, "tools/call", Some("exec")), "fs", Action::Allow, None),
        ("anonymous may list", anon(), req(m, "tools/list", None), "fs", Action::Allow, None),
        ("anonymous may not call", anon(), req(m, "tools/call", Some("read_file")), "fs", deny("sign in to call tools", false), Some("anon-no-tools")),
        ("trust domain + upstream glob", workload(), req(m, "tools/call", Some("index")), "internal-search", Action::Allow, Some("mesh-internal")),
        ("trust domain elsewhere", workload(), req(m, "tools/call", Some("index")), "public", deny("workloads stay internal", false), Some("mesh-elsewhere")),
        ("claim glob + era", alice(), req(l, "tools/list", None), "fs", deny("acme uses the modern era", false), Some("acme-legacy-off")),
        ("claim glob, other era", alice(), req(m, "tools/list", None), "fs", Action::Allow, None),
        ("principal id glob, tool", bob.clone(), req(m, "tools/call", Some("write_file")), "fs", deny("read only", true), Some("bob-only-reads")),
        ("names also match prompts", bob.clone(), req(m, "prompts/get", Some("write_poem")), "fs", deny("read only", true), Some("bob-only-reads")),
        ("a rule with names never matches a nameless request", bob.clone(), req(m, "tools/list", None), "fs", Action::Allow, None),
    ];
    for (what, who, r, upstream, action, rule) in table {
        let (got, got_rule) = decide(&p, &who, &r, upstream);
        assert_eq!((&got, got_rule.as_deref()), (&action, rule), "{what}");
    }
}

#[test]
fn hide_applies_only_to_named_items() {
    let p = policy(r#"{"rules": [{"id": "x", "match": {"principals": ["eve"]}, "action": "deny", "reason": "go away"}]}"#);
    let eve = who(Origin::Jwt, "eve");
    let (a, _) = decide(&p, &eve, &req(Era::Modern, "tools/call", Some("t")), "u");
    assert_eq!(a, deny("go away", true));
    let (a, _) = decide(&p, &eve, &req(Era::Modern, "tools/list", None), "u");
    assert_eq!(a, deny("go away", false), "a list cannot be hidden, only denied");
}

#[test]
fn default_deny_and_dry_run() {
    let p = policy(
        r#"{"rules": [
            {"id": "would-block", "dry_run": true, "match": {"names": ["read_*"]}, "action": "deny", "reason": "testing"},
            {"id": "readers", "match": {"names": ["read_*"]}, "action": "allow"}
        ], "default_action": "deny", "default_reason": "closed by default"}"#,
    );
    let mut kv = FakeKv::new();
    let v =
        policy::enforce(&p, &KillSwitch::default(), &alice(), &req(Era::Modern, "tools/call", Some("read_x")), "u", &mut kv, 0);
    assert_eq!(v.action, Action::Allow);
    assert_eq!(v.rule_id.as_deref(), Some("readers"));
    assert_eq!(v.dry_run.len(), 1);
    assert_eq!(v.dry_run[0].rule_id, "would-block");
    assert_eq!(v.dry_run[0].would, deny("testing", true));
    let v =
        policy::enforce(&p, &KillSwitch::default(), &alice(), &req(Era::Modern, "tools/call", Some("write_x")), "u", &mut kv, 0);
    assert_eq!(v.action, deny("closed by default", true));
    assert_eq!(v.rule_id, None);
}

#[test]
fn rate_limit_rules_stack_and_never_shadow_denies() {
    let p = policy(
        r#"{"rules": [
            {"id": "per-tool", "action": "rate_limit", "rate_limit": {"rate": 2, "period_secs": 60, "key": "principal_tool"}},
            {"id": "global", "action": "rate_limit", "rate_limit": {"rate": 3, "period_secs": 60, "key": "global"}},
            {"id": "no-rm", "match": {"names": ["rm"]}, "action": "deny", "reason": "no"}
        ]}"#,
    );
    let mut kv = FakeKv::new();
    let none = KillSwitch::default();
    let call = |n: &str| req(Era::Modern, "tools/call", Some(n));
    let mut go = |who: &Principal, n: &str| policy::enforce(&p, &none, who, &call(n), "u", &mut kv, 5_000);
    assert_eq!(go(&alice(), "a").action, Action::Allow);
    assert_eq!(go(&alice(), "rm").action, deny("no", true), "limits pass through to later rules");
    let v = go(&alice(), "a");
    assert_eq!(v.action, Action::Allow);
    // 4th request overall: per-tool for `a` is now empty (2 used)…
    let v4 = go(&alice(), "a");
    assert_eq!(v4.rule_id.as_deref(), Some("per-tool"));
    assert!(matches!(v4.action, Action::RateLimited { retry_after_secs: 30, .. }), "{:?}", v4.action);
    // …and the global bucket (3 taken) stops everyone.
    let v5 = go(&anon(), "b");
    assert_eq!(v5.rule_id.as_deref(), Some("global"));
    assert!(matches!(v5.action, Action::RateLimited { .. }));
    assert!(v.store_errors.is_empty());
}

#[test]
fn kill_switch_from_config_and_remote() {
    let p = policy(r#"{"kill_switch": [{"tool": "exec", "reason": "incident 1"}], "rules": [{"id": "all", "action": "allow"}]}"#);
    let remote_specs: Vec<mcp_warden_core::policy::spec::KillSpec> =
        serde_json::from_str(r#"[{"upstream": "legacy-*", "reason": "incident 2"}, {"principal": "mallory", "reason": "banned"}, {"method": "tasks/*", "reason": "tasks off"}]"#).unwrap();
    let remote = KillSwitch::compile(&remote_specs, "kill_switch").unwrap();
    let mut kv = FakeKv::new();
    let mut run = |who: &Principal, r: &McpRequest, up: &str| policy::enforce(&p, &remote, who, r, up, &mut kv, 0).action;
    let kill = |reason: &str, scope: &'static str| Action::Kill { reason: reason.into(), scope };
    assert_eq!(run(&alice(), &req(Era::Modern, "tools/call", Some("exec")), "fs"), kill("incident 1", "tool"));
    assert_eq!(run(&alice(), &req(Era::Modern, "tools/list", None), "legacy-fs"), kill("incident 2", "upstream"));
    assert_eq!(run(&who(Origin::Jwt, "mallory"), &req(Era::Modern, "tools/list", None), "fs"), kill("banned", "principal"));
    assert_eq!(run(&alice(), &req(Era::Modern, "tasks/get", Some("t1")), "fs"), kill("tasks off", "method"));
    assert_eq!(run(&alice(), &req(Era::Modern, "tools/call", Some("read")), "fs"), Action::Allow);
    let all = KillSwitch::compile(&serde_json::from_str::<Vec<_>>(r#"[{"all": true, "reason": "maintenance"}]"#).unwrap(), "k")
        .unwrap();
    let v = policy::enforce(&p, &all, &alice(), &McpRequest::bodyless(None), "fs", &mut kv, 0);
    assert_eq!(v.action, kill("maintenance", "all"));
}

#[test]
fn replies_keep_the_id_and_use_the_agreed_codes() {
    let r = req(Era::Modern, "tools/call", Some("delete_file"));
    let body = |a: &Action| {
        let rep = reply::for_action(a, &r).unwrap();
        (rep.status, rep.headers.clone(), serde_json::from_str::<serde_json::Value>(&rep.body).unwrap())
    };
    assert!(reply::for_action(&Action::Allow, &r).is_none());

    let (s, _, v) = body(&deny("no deletes", true));
    assert_eq!(s, 200);
    assert_eq!(v["id"], 42);
    assert_eq!(v["error"]["code"], -32602);
    assert_eq!(v["error"]["message"], "Unknown tool: delete_file");

    let (s, _, v) = body(&deny("no deletes", false));
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], -31403);
    assert_eq!(v["error"]["message"], "no deletes");

    let (s, h, v) = body(&Action::RateLimited { retry_after_secs: 3, retry_after_ms: 2500 });
    assert_eq!(s, 429);
    assert!(h.contains(&("retry-after", "3".to_owned())));
    assert_eq!(v["id"], 42);
    assert_eq!(v["error"]["code"], -31429);
    assert_eq!(v["error"]["data"]["retryAfterSeconds"], 3);

    let (s, _, v) = body(&Action::Kill { reason: "incident \"4711\"".into(), scope: "tool" });
    assert_eq!(s, 503);
    assert_eq!(v["error"]["code"], -31503);
    assert_eq!(v["error"]["data"]["reason"], "incident \"4711\"");
    assert!(v["error"]["message"].as_str().unwrap().contains("incident \"4711\""));

    for code in [-31403, -31429, -31503] {
        assert!(!(-32768..=-32000).contains(&code), "app codes stay outside the reserved range");
    }
}

#[test]
fn tools_list_is_filtered_per_principal() {
    let p = policy(POLICY);
    let body = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","tools":[{"name":"read_file"},{"name":"delete_file"},{"name":"write_file"}],"ttlMs":60000,"cacheScope":"public"}}"#;
    let list = |who: &Principal| {
        let visible = |t: &str| policy::tool_visible(&p, who, Era::Modern, "fs", t);
        let force = policy::tools_list_varies(&p, Era::Modern, "fs");
        filter_tools_list(body, &visible, force).map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
    };
    let names = |v: &serde_json::Value| {
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let a = list(&alice()).unwrap();
    assert_eq!(names(&a), ["read_file", "write_file"]);
    assert_eq!(a["result"]["cacheScope"], "private");
    let b = list(&who(Origin::Header, "bob")).unwrap();
    assert_eq!(names(&b), ["read_file"]);
    // Visible-deny rules (hide: false) do not remove tools; dry-run rules never do.
    assert!(policy::tool_visible(&p, &agent_chain(), Era::Modern, "fs", "exec"));

    let open = policy("{}");
    assert!(!policy::tools_list_varies(&open, Era::Modern, "fs"));
    assert!(filter_tools_list(body, &|t| policy::tool_visible(&open, &alice(), Era::Modern, "fs", t), false).is_none());
}

#[test]
fn prompts_and_resources_lists_are_filtered_too() {
    let p = policy(
        r#"{"rules": [
            {"id": "no-secret-prompts", "match": {"methods": ["prompts/get"], "names": ["secret-*"]}, "action": "deny"},
            {"id": "no-etc", "match": {"methods": ["resources/read"], "names": ["file:///etc/*"]}, "action": "deny"}
        ]}"#,
    );
    let who = alice();
    let (pr, wr) = (&p, &who);
    let visible = |kind: ListKind| move |n: &str| policy::item_visible(pr, wr, Era::Modern, "fs", kind, n);
    let prompts =
        br#"{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"secret-plan"},{"name":"summary"}],"cacheScope":"public"}}"#;
    let out = filter_list(prompts, ListKind::Prompts, &visible(ListKind::Prompts), false).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"]["prompts"], serde_json::json!([{"name": "summary"}]));
    assert_eq!(v["result"]["cacheScope"], "private");
    let resources = br#"{"jsonrpc":"2.0","id":3,"result":{"resources":[{"uri":"file:///etc/passwd","name":"passwd"},{"uri":"file:///srv/a","name":"a"}]}}"#;
    let out = filter_list(resources, ListKind::Resources, &visible(ListKind::Resources), false).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"]["resources"], serde_json::json!([{"uri": "file:///srv/a", "name": "a"}]));
    assert!(policy::list_varies(&p, Era::Modern, "fs", ListKind::Prompts));
    assert!(!policy::list_varies(&p, Era::Modern, "fs", ListKind::Tools));
    assert_eq!(ListKind::from_list_method(Method::ResourcesList), Some(ListKind::Resources));
    // Templates: hidden when every expansion would be (the rule matches the template's text);
    // one that also expands to visible URIs stays, and its hidden expansions are refused on read.
    let templates = br#"{"jsonrpc":"2.0","id":4,"result":{"resourceTemplates":[{"uriTemplate":"file:///etc/{name}","name":"etc"},{"uriTemplate":"file:///{path}","name":"any"}]}}"#;
    let out = filter_list(templates, ListKind::ResourceTemplates, &visible(ListKind::ResourceTemplates), false).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"]["resourceTemplates"], serde_json::json!([{"uriTemplate": "file:///{path}", "name": "any"}]));
    assert_eq!(v["result"]["cacheScope"], "private");
    assert_eq!(ListKind::from_list_method(Method::ResourceTemplatesList), Some(ListKind::ResourceTemplates));
    assert!(policy::list_varies(&p, Era::Modern, "fs", ListKind::ResourceTemplates));
    // The hidden items answer as unknown when used directly.
    let (a, _) = decide(&p, &alice(), &req(Era::Modern, "resources/read", Some("file:///etc/passwd")), "fs");
    let reply = reply::for_action(&a, &req(Era::Modern, "resources/read", Some("file:///etc/passwd"))).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("Resource not found: file:///etc/passwd"), "{}", reply.body);
}

#[test]
fn a_rule_written_in_another_spelling_than_the_normal_form_still_holds() {
    // Found in review: the rule's own text must match its resolved spelling.
    let p = policy::load(
        br#"{"rules":[{"id":"admin","match":{"methods":["resources/read"],"names":["ui://Admin/*","file:///srv/My%20Docs/*"]},"action":"deny"}]}"#,
    )
    .unwrap();
    let a = alice();
    for uri in ["ui://Admin/panel", "UI://admin/panel", "file:///srv/My%20Docs/a", "file:///srv/My Docs/a"] {
        let r = req(Era::Modern, "resources/read", Some(uri));
        let action = policy::enforce(&p, &KillSwitch::default(), &a, &r, "fs", &mut FakeKv::new(), 0).action;
        assert!(matches!(action, Action::Deny { hide: true, .. }), "{uri}: {action:?}");
    }
}

#[test]
fn a_hidden_resource_stays_hidden_in_every_spelling_the_server_resolves_to_it() {
    let p = policy::load(
        br#"{"rules":[{"id":"no-etc","match":{"methods":["resources/read"],"names":["file:///etc/*"]},"action":"deny"}]}"#,
    )
    .unwrap();
    let a = alice();
    let decide = |uri: &str| {
        let r = req(Era::Modern, "resources/read", Some(uri));
        policy::enforce(&p, &KillSwitch::default(), &a, &r, "fs", &mut FakeKv::new(), 0).action
    };
    for uri in [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file:///etc/%70asswd",
        "file:///srv/../etc/passwd",
        "file:///srv/%2E%2E/etc/passwd",
    ] {
        assert!(matches!(decide(uri), Action::Deny { hide: true, .. }), "{uri} was not hidden");
    }
    // No single reading, under a hide rule as sent or decoded: as unknown as the resource itself
    // (a visible refusal would say that something is hidden there).
    assert!(matches!(decide("file:///etc%2fpasswd"), Action::Deny { hide: true, .. }));
    assert!(matches!(decide("file:///etc/passwd%00"), Action::Deny { hide: true, .. }));
    // Elsewhere the same oddities are the upstream's business.
    assert_eq!(decide("file:///srv/a%2fb"), Action::Allow);
    assert_eq!(decide("file:///srv/readme"), Action::Allow);

    let visible = |uri: &str| policy::item_visible(&p, &a, Era::Modern, "fs", ListKind::Resources, uri);
    assert!(!visible("file:///etc/%70asswd") && !visible("FILE:///srv/../etc/shadow") && !visible("file:///etc%2fpasswd"));
    assert!(visible("file:///srv/readme"));
}

#[test]
fn completions_and_subscriptions_are_decided_on_the_item_they_reach() {
    let p = policy::load(
        br#"{"rules":[
            {"id":"no-secret-prompts","match":{"methods":["prompts/get"],"names":["secret_*"]},"action":"deny"},
            {"id":"no-etc","match":{"methods":["resources/read"],"names":["file:///etc/*"]},"action":"deny","hide":false,"reason":"not /etc"}]}"#,
    )
    .unwrap();
    let a = alice();
    let decide = |method: &str, target: Target| {
        let mut r = req(Era::Modern, method, None);
        r.target = Some(target);
        let v = policy::enforce(&p, &KillSwitch::default(), &a, &r, "fs", &mut FakeKv::new(), 0);
        (v.action.clone(), reply::for_action(&v.action, &r))
    };
    let (action, reply) = decide("completion/complete", Target::new(Method::PromptsGet, "secret_admin"));
    assert!(matches!(action, Action::Deny { hide: true, .. }));
    assert!(reply.unwrap().body.contains("Unknown prompt: secret_admin"));
    let (action, _) = decide("completion/complete", Target::new(Method::ResourcesRead, "FILE:///etc/%70asswd"));
    assert_eq!(action, Action::Deny { reason: "not /etc".into(), hide: false });
    let (action, _) = decide("resources/subscribe", Target::new(Method::ResourcesRead, "file:///srv/../etc/shadow"));
    assert!(matches!(action, Action::Deny { hide: false, .. }));
    let (action, _) = decide("resources/subscribe", Target::new(Method::ResourcesRead, "file:///etc%2fshadow"));
    assert!(matches!(action, Action::Deny { hide: false, .. }), "ambiguous under a deny rule");
    assert_eq!(decide("completion/complete", Target::new(Method::PromptsGet, "greet")).0, Action::Allow);
    assert_eq!(decide("resources/unsubscribe", Target::new(Method::ResourcesRead, "file:///srv/a")).0, Action::Allow);
}
