//! Control endpoint logic: the server refuses what does not compile and keeps serving the last
//! good state (error visible at /status), ETags and 304s; the filter's poller is ETag-aware and
//! fail-static.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use mcp_warden_core::control::{self, ControlServer, DirFiles, PollOutcome, Poller};
use mcp_warden_core::policy::ControlConfig;

fn files(policy: Option<&str>, kill: Option<&str>) -> DirFiles {
    DirFiles { policy: policy.map(|s| s.as_bytes().to_vec()), kill: kill.map(|s| s.as_bytes().to_vec()), pins: None }
}

fn status(s: &ControlServer) -> serde_json::Value {
    serde_json::from_str(&s.status_json()).unwrap()
}

const GOOD: &str = r#"{"rules": [{"id": "no-rm", "match": {"names": ["rm"]}, "action": "deny"}]}"#;
const BAD: &str = r#"{"rules": [{"id": "no-rm", "match": {"names": ["rm["]}, "action": "deny"}]}"#;

#[test]
fn serves_policy_and_kill_and_keeps_the_last_good() {
    let mut s = ControlServer::new();
    let empty_etag = s.state().1.to_owned();
    assert!(s.refresh(&files(Some(GOOD), Some(r#"[{"tool": "exec", "reason": "incident 9"}]"#)), 1));
    let (body, etag) = s.state();
    let etag = etag.to_owned();
    assert_ne!(etag, empty_etag);
    let st = control::parse_state(body).unwrap();
    assert_eq!(st.kill.entries.len(), 1);
    assert_eq!(st.policy.as_ref().unwrap().rules[0].id, "no-rm");
    assert!(status(&s)["ok"].as_bool().unwrap());

    // A bad policy is refused: same document, error at /status naming the field.
    assert!(!s.refresh(&files(Some(BAD), Some(r#"[{"tool": "exec", "reason": "incident 9"}]"#)), 2));
    assert_eq!(s.state().1, etag);
    let st = status(&s);
    assert_eq!(st["ok"], false);
    assert_eq!(st["policy"]["error"]["field"], "rules[0].match.names[0]");
    assert!(st["policy"]["error"]["text"].as_str().unwrap().contains("bad glob `rm[`"));
    assert_eq!(st["kill"]["error"], serde_json::Value::Null);

    // A bad kill file likewise; fixing the policy serves it and clears its error.
    assert!(!s.refresh(&files(Some(BAD), Some(r#"[{"reason": "no selector"}]"#)), 3));
    assert_eq!(status(&s)["kill"]["error"]["field"], "kill[0]");
    let fixed = r#"{"rules": [{"id": "no-rm", "match": {"names": ["rm*"]}, "action": "deny"}]}"#;
    assert!(s.refresh(&files(Some(fixed), Some(r#"[{"reason": "no selector"}]"#)), 4));
    let st = status(&s);
    assert_eq!(st["policy"]["error"], serde_json::Value::Null);
    assert_eq!(st["kill"]["error"]["field"], "kill[0]");
    let served = control::parse_state(s.state().0).unwrap();
    assert_eq!(served.kill.entries.len(), 1, "the last good kill list is still served");

    // Removing the files stops serving them.
    assert!(s.refresh(&files(None, None), 5));
    let served = control::parse_state(s.state().0).unwrap();
    assert!(served.policy.is_none() && served.kill.is_empty());
    assert!(status(&s)["ok"].as_bool().unwrap());
}

#[test]
fn unchanged_files_are_not_recompiled() {
    let mut s = ControlServer::new();
    assert!(s.refresh(&files(Some(GOOD), None), 1));
    let g = s.generation;
    assert!(!s.refresh(&files(Some(GOOD), None), 2));
    assert_eq!(s.generation, g);
    assert_eq!(status(&s)["policy"]["accepted_at_ms"], 1);
}

#[test]
fn kill_file_may_be_wrapped() {
    let mut s = ControlServer::new();
    assert!(s.refresh(&files(None, Some(r#"{"kill_switch": [{"all": true, "reason": "maintenance"}]}"#)), 1));
    assert_eq!(control::parse_state(s.state().0).unwrap().kill.entries[0].reason, "maintenance");
}

#[test]
fn http_answers() {
    let mut s = ControlServer::new();
    s.refresh(&files(Some(GOOD), None), 1);
    let r = s.handle("GET", control::STATE_PATH, None);
    assert_eq!(r.status, 200);
    let etag = r.headers.iter().find(|(k, _)| *k == "etag").unwrap().1.clone();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(s.handle("GET", control::STATE_PATH, Some(&etag)).status, 304);
    assert_eq!(s.handle("GET", control::STATE_PATH, Some(&format!("\"x\", W/{etag}"))).status, 304);
    assert_eq!(s.handle("GET", control::STATE_PATH, Some("\"other\"")).status, 200);
    assert_eq!(s.handle("GET", control::STATUS_PATH, None).status, 200);
    assert_eq!(s.handle("GET", "/nope", None).status, 404);
    assert_eq!(s.handle("POST", control::STATE_PATH, None).status, 405);
}

fn cfg() -> ControlConfig {
    ControlConfig {
        cluster: "warden_control".into(),
        path: "/v1/state".into(),
        authority: "control".into(),
        period_ms: 1000,
        timeout_ms: 500,
        policy: true,
    }
}

/// The README's bound, exactly: with the host ticking every `tick_ms` (any phase) and each poll
/// answered after `rtt`, a change published at any moment is in the filter's hands at most one
/// period plus that round trip later; and polls never come closer than a period less a tick.
#[test]
fn a_published_change_is_in_force_within_one_period_plus_the_round_trip() {
    for period in [200u64, 1000, mcp_warden_core::policy::compile::MIN_CONTROL_PERIOD_MS] {
        for rtt in [0u64, 1, 40, 150] {
            let config = ControlConfig { period_ms: period, ..cfg() };
            let mut p = Poller::new(config);
            let tick = p.tick_ms();
            if rtt + tick > period {
                continue; // one poll at a time: past that, the round trip sets the pace (README)
            }
            // Simulate 40 periods of ticks; record every poll's (dispatch, answer) times.
            let mut polls: Vec<(u64, u64)> = Vec::new();
            let mut pending: Option<(u64, u64)> = None;
            let phase = period / 7;
            let mut now = phase;
            while now < 40 * period {
                if let Some((sent, answer_at)) = pending {
                    if now >= answer_at {
                        p.on_response(answer_at, Some(304), None, b"");
                        polls.push((sent, answer_at));
                        pending = None;
                    }
                }
                if pending.is_none() && p.due(now) {
                    p.request(now);
                    pending = Some((now, now + rtt));
                }
                // Answers arrive between ticks: deliver them on time, not on the next tick.
                let next_tick = now + tick;
                if let Some((sent, answer_at)) = pending {
                    if answer_at < next_tick && answer_at > now {
                        p.on_response(answer_at, Some(304), None, b"");
                        polls.push((sent, answer_at));
                        pending = None;
                    }
                }
                now = next_tick;
            }
            assert!(polls.len() > 35, "period {period}: polled {} times in 40 periods", polls.len());
            for w in polls.windows(2) {
                let gap = w[1].0 - w[0].0;
                assert!(gap <= period, "period {period}, rtt {rtt}: dispatches {gap} ms apart");
                assert!(gap + tick >= period, "period {period}, rtt {rtt}: polls only {gap} ms apart");
            }
            // A change published at any t after the first poll is answered by the first poll
            // dispatched after t: in force by that poll's answer.
            for t in (polls[0].0..polls[polls.len() - 2].0).step_by(7) {
                let (_, answer) = polls.iter().find(|(sent, _)| *sent > t).copied().unwrap();
                assert!(answer <= t + period + rtt, "period {period}, rtt {rtt}: published at {t}, in force at {answer}");
            }
        }
    }
}

#[test]
fn poller_is_etag_aware_and_fail_static() {
    let mut server = ControlServer::new();
    server.refresh(&files(Some(GOOD), Some(r#"[{"upstream": "fs", "reason": "r"}]"#)), 0);
    let (body, etag) = (server.state().0.to_vec(), server.state().1.to_owned());

    let mut p = Poller::new(cfg());
    assert!(p.due(0));
    let req = p.request(0);
    assert_eq!(req.cluster, "warden_control");
    assert!(req.headers.contains(&(":path", "/v1/state".to_owned())));
    assert!(!req.headers.iter().any(|(k, _)| *k == "if-none-match"));
    assert!(!p.due(10), "one poll at a time");
    let PollOutcome::Update(st) = p.on_response(20, Some(200), Some(&etag), &body) else { panic!("expected an update") };
    assert_eq!(st.kill.entries.len(), 1);
    assert!(st.policy.is_some());

    assert_eq!(p.tick_ms(), 250);
    assert!(!p.due(749));
    assert!(p.due(750), "next poll due a period less one tick after the last dispatch");
    let req = p.request(1020);
    assert!(req.headers.contains(&("if-none-match", etag.clone())));
    assert!(matches!(p.on_response(1030, Some(304), None, b""), PollOutcome::Unchanged));
    // Same ETag with a 200 is also unchanged.
    p.request(2030);
    assert!(matches!(p.on_response(2040, Some(200), Some(&etag), &body), PollOutcome::Unchanged));

    // Down, erroring or invalid: keep what we have, count failures, poll again next period.
    p.request(3040);
    assert!(matches!(p.on_response(3050, None, None, b""), PollOutcome::Failed(_)));
    p.request(4050);
    assert!(matches!(p.on_response(4060, Some(503), None, b""), PollOutcome::Failed(_)));
    p.request(5060);
    let PollOutcome::Failed(msg) =
        p.on_response(5070, Some(200), Some("\"new\""), br#"{"version":1,"kill_switch":[{"reason":"x"}]}"#)
    else {
        panic!("invalid document must fail")
    };
    assert!(msg.contains("kill_switch[0]"), "{msg}");
    assert_eq!(p.failures, 3);
    assert!(p.due(6070));
    // The held ETag is still the last good one.
    assert!(p.request(6070).headers.contains(&("if-none-match", etag)));
    assert!(matches!(p.dispatch_failed(6071), PollOutcome::Failed(_)));
}

#[test]
fn lost_polls_are_retried() {
    let mut p = Poller::new(cfg());
    p.request(0);
    assert!(!p.due(1000));
    assert!(p.due(1501), "a poll with no answer after timeout + period is abandoned");
}

#[test]
fn state_documents_are_validated_with_paths() {
    let e = control::parse_state(br#"{"version":1,"policy":{"rules":[{"id":"a","action":"deny","hide":"no"}]}}"#).unwrap_err();
    assert_eq!(e.field, "policy.rules[0].hide");
    let e = control::parse_state(br#"{"version":2}"#).unwrap_err();
    assert_eq!(e.field, "version");
    let e = control::parse_state(br#"{"version":1,"extra":true}"#).unwrap_err();
    assert_eq!(e.field, "extra");
}

#[test]
fn poller_ignores_a_served_policy_when_told_to() {
    let mut server = ControlServer::new();
    server.refresh(&files(Some(GOOD), Some(r#"[{"all": true, "reason": "stop"}]"#)), 0);
    let mut p = Poller::new(ControlConfig { policy: false, ..cfg() });
    p.request(0);
    let PollOutcome::Update(st) = p.on_response(1, Some(200), None, server.state().0) else { panic!("expected an update") };
    assert!(st.policy.is_none(), "control.policy = false: kill switch only");
    assert_eq!(st.kill.entries.len(), 1);
}

#[test]
fn both_ways_in_stay_in_force() {
    use mcp_warden_core::fake_host::FakeKv;
    use mcp_warden_core::mcp::model::McpRequest;
    use mcp_warden_core::principal::{resolve, PeerFacts};

    let config = mcp_warden_core::policy::load(br#"{"kill_switch": [{"upstream": "legacy", "reason": "from config"}]}"#).unwrap();
    let doc = br#"{"version":1,"kill_switch":[{"upstream":"other","reason":"from control"}],
                   "policy":{"kill_switch":[{"upstream":"third","reason":"from served policy"}]}}"#;
    let remote = control::parse_state(doc).unwrap();
    let policy = remote.active(&config);
    let extra = remote.extra_kill(&config);
    let who = resolve(&policy.sources, &PeerFacts::default());
    let req = McpRequest::bodyless(None);
    let mut kv = FakeKv::new();
    let mut reason = |up: &str| match mcp_warden_core::policy::enforce(policy, &extra, &who, &req, up, &mut kv, 0).action {
        mcp_warden_core::policy::Action::Kill { reason, .. } => reason,
        other => format!("{other:?}"),
    };
    assert_eq!(reason("legacy"), "from config");
    assert_eq!(reason("other"), "from control");
    assert_eq!(reason("third"), "from served policy");
    assert_eq!(reason("fine"), "Allow");

    // Without a served policy the configuration's own list comes with the policy itself.
    let remote = control::parse_state(br#"{"version":1,"kill_switch":[{"upstream":"other","reason":"from control"}]}"#).unwrap();
    assert_eq!(remote.extra_kill(&config).entries.len(), 1);
    assert!(std::ptr::eq(remote.active(&config), &config));
}

#[test]
fn pins_are_served_from_their_own_file_and_put_in_force_over_the_policy() {
    let mut s = ControlServer::new();
    let echo = "sha256:25501b2c3967bb0978cae435b8f5400d49fcfbe1c4a92cca1368562aaef0815e";
    let manifest = format!(r#"{{"upstream": "mcp_upstream", "server": {{"name": "demo"}}, "tools": {{"echo": "{echo}"}}}}"#);
    let mut f = files(None, None);
    f.pins = Some(manifest.into_bytes());
    assert!(s.refresh(&f, 1));
    let st = control::parse_state(s.state().0).unwrap();
    assert_eq!(st.pins.len(), 1);
    let config = mcp_warden_core::policy::Policy::default();
    let p = st.policy_in_force(&config).unwrap();
    assert_eq!(p.integrity.pin("mcp_upstream").map(|p| p.tools.len()), Some(1));
    assert_ne!(p.hash, config.hash, "receipts sign the pins in force");
    // A bad pins file is refused and named; the last good pins stay served.
    f.pins = Some(br#"[{"upstream": "mcp_upstream", "tools": {"echo": "sha256:zz"}}]"#.to_vec());
    assert!(!s.refresh(&f, 2));
    assert_eq!(status(&s)["pins"]["error"]["field"], "pins[0].tools.echo");
    assert_eq!(control::parse_state(s.state().0).unwrap().pins.len(), 1);
    // Neither policy nor pins served: the plugin configuration's policy stays.
    assert!(s.refresh(&files(None, None), 3));
    assert!(control::parse_state(s.state().0).unwrap().policy_in_force(&config).is_none());
}
