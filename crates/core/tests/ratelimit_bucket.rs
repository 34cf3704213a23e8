//! Token bucket math with a fake clock: burst, steady refill, retry hints, quota changes, and
//! the shared table through `ratelimit::take`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use mcp_warden_core::fake_host::FakeKv;
use mcp_warden_core::state::ratelimit::{self, check, take, Bucket, Quota};

/// Runs `n` takes at `now` and returns how many were allowed.
fn drain(state: &mut Option<Bucket>, q: &Quota, now: u64, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let (d, b) = check(*state, q, now);
        *state = Some(b);
        if d.allowed {
            ok += 1;
        }
    }
    ok
}

#[test]
fn a_fresh_bucket_allows_exactly_the_burst() {
    for (rate, burst) in [(1, 1), (10, 10), (5, 20), (1000, 3)] {
        let q = Quota { rate, period_ms: 1000, burst };
        let mut s = None;
        assert_eq!(drain(&mut s, &q, 1_000_000, 100_000.min(burst as usize + 50)), burst as usize, "{q:?}");
    }
}

#[test]
fn steady_rate_over_time() {
    // 10 per second, burst 5: over 10 simulated seconds of requests every 10 ms, about
    // 5 + 10 * 10 are allowed, never more.
    let q = Quota { rate: 10, period_ms: 1000, burst: 5 };
    let mut s = None;
    let mut allowed = 0;
    for t in (0..10_000).step_by(10) {
        allowed += drain(&mut s, &q, 1_000 + t, 1);
    }
    assert!((104..=105).contains(&allowed), "{allowed}");
}

#[test]
fn retry_after_is_exact_and_honest() {
    let q = Quota { rate: 3, period_ms: 60_000, burst: 3 };
    let mut s = None;
    assert_eq!(drain(&mut s, &q, 0, 3), 3);
    let (d, _) = check(s, &q, 0);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after_ms, 20_000);
    assert_eq!(d.retry_after_secs(), 20);
    // One ms before the hint: still refused, with 1 ms to go (rounded up to 1 s).
    let (d, _) = check(s, &q, 19_999);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, 1);
    assert_eq!(d.retry_after_secs(), 1);
    // At the hint: allowed.
    let (d, _) = check(s, &q, 20_000);
    assert!(d.allowed);
}

#[test]
fn refusals_do_not_consume() {
    let q = Quota { rate: 1, period_ms: 1000, burst: 1 };
    let mut s = None;
    assert_eq!(drain(&mut s, &q, 0, 1), 1);
    assert_eq!(drain(&mut s, &q, 500, 1000), 0);
    assert_eq!(drain(&mut s, &q, 1000, 1), 1, "hammering while limited does not push the refill back");
}

#[test]
fn remaining_counts_down_and_refills_to_burst_only() {
    let q = Quota { rate: 2, period_ms: 1000, burst: 4 };
    let (d, b) = check(None, &q, 0);
    assert_eq!(d.remaining, 3);
    let (d, _) = check(Some(b), &q, 3_600_000);
    assert_eq!(d.remaining, 3, "an idle hour refills to the burst, not beyond");
}

#[test]
fn clock_going_backwards_is_harmless() {
    let q = Quota { rate: 1, period_ms: 1000, burst: 1 };
    let mut s = None;
    assert_eq!(drain(&mut s, &q, 10_000, 1), 1);
    assert_eq!(drain(&mut s, &q, 9_000, 5), 0);
    assert_eq!(drain(&mut s, &q, 11_000, 1), 1);
}

#[test]
fn large_numbers_do_not_overflow() {
    let q = Quota { rate: ratelimit::MAX_RATE, period_ms: ratelimit::MAX_PERIOD_MS, burst: ratelimit::MAX_BURST };
    let (d, _) = check(None, &q, u64::MAX / 2);
    assert!(d.allowed);
}

#[test]
fn shared_take_keeps_state_per_key() {
    let table = ratelimit::table(128);
    let mut kv = FakeKv::new();
    let q = Quota { rate: 2, period_ms: 1000, burst: 2 };
    let mut now = 50_000;
    for _ in 0..2 {
        assert!(take(&mut kv, &table, "alice", &q, now).unwrap().allowed);
    }
    let d = take(&mut kv, &table, "alice", &q, now).unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, 500);
    assert!(take(&mut kv, &table, "bob", &q, now).unwrap().allowed, "another key has its own bucket");
    now += 500;
    assert!(take(&mut kv, &table, "alice", &q, now).unwrap().allowed);
    // A changed quota starts a fresh bucket instead of misreading the old state.
    let q2 = Quota { rate: 5, period_ms: 1000, burst: 5 };
    assert_eq!(take(&mut kv, &table, "alice", &q2, now).unwrap().remaining, 4);
    assert!(kv.keys().all(|k| k.starts_with("mcpw/v1/rl/")));
}

// ------------------------------------------------------------------------------------------
// Whom and what a limit counts, through the whole flow.

use std::rc::Rc;

use mcp_warden_core::fake_host::FakeHost;
use mcp_warden_core::flow::RequestFlow;
use mcp_warden_core::policy;
use mcp_warden_core::ports::{PeerFact, Step};

/// One modern request on a fresh flow from 10.0.0.7 with this user agent: forwarded or not.
fn request(host: &mut FakeHost, p: &Rc<policy::Policy>, user_agent: &str, method: &str, name: &str, params: &str) -> bool {
    host.http.peer = vec![(PeerFact::UpstreamCluster, "mcp_upstream".into()), (PeerFact::SourceAddress, "10.0.0.7:41000".into())];
    let mut flow = RequestFlow::new(Rc::clone(p));
    let extra: [(&str, &[u8]); 2] = [("user-agent", user_agent.as_bytes()), ("x-user", b"alice")];
    host.post_modern(&mut flow, method, Some(name), params, &extra) == Step::Continue && host.http.reply.is_none()
}

#[test]
fn an_anonymous_caller_is_limited_by_its_address_whatever_its_user_agent() {
    let rule = r#"{"id":"rl","match":{"methods":["tools/call"]},"action":"rate_limit","rate_limit":{"rate":1,"period_secs":3600,"burst":1,"key":"principal"}}"#;
    let p = Rc::new(policy::load(format!(r#"{{"content_scan":{{"enabled":false}},"rules":[{rule}]}}"#).as_bytes()).unwrap());
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let params = r#""name":"echo","arguments":{}"#;
    let forwarded = (0..20).filter(|i| request(&mut host, &p, &format!("agent/{i}"), "tools/call", "echo", params)).count();
    assert_eq!(forwarded, 1, "one call an hour, however many agent strings");
}

#[test]
fn a_resource_limit_counts_every_spelling_of_its_uri() {
    let rule = r#"{"id":"rl","match":{"methods":["resources/read"],"names":["file:///srv/report.txt"]},"action":"rate_limit","rate_limit":{"rate":1,"period_secs":3600,"burst":1,"key":"principal_tool"}}"#;
    let doc = format!(
        r#"{{"principal":{{"sources":["header"],"trusted_header":"x-user"}},"content_scan":{{"enabled":false}},"rules":[{rule}]}}"#
    );
    let p = Rc::new(policy::load(doc.as_bytes()).unwrap());
    let mut host = FakeHost::default();
    host.clock.advance_ms(1_000_000);
    let spellings =
        ["file:///srv/report.txt", "FILE:///srv/report.txt", "file:///srv/./report.txt", "file:///srv/x/../report.txt"];
    let forwarded: Vec<&str> = spellings
        .iter()
        .copied()
        .filter(|uri| request(&mut host, &p, "agent", "resources/read", uri, &format!(r#""uri":"{uri}""#)))
        .collect();
    assert_eq!(forwarded, ["file:///srv/report.txt"], "one bucket for the resource");
}
