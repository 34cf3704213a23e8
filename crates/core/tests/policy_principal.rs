//! Principal resolution: source order, JWT payload claims and the RFC 8693 `act` chain, SPIFFE
//! and Istio ids, the trusted header, anonymous fingerprints, and the keys derived from them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use mcp_warden_core::policy;
use mcp_warden_core::principal::{self, resolve, CorrelationKey, Origin, PeerFacts};

fn sources(json: &str) -> principal::Sources {
    policy::load(json.as_bytes()).unwrap().sources
}

const JWT: &[u8] = br#"{"iss":"https://idp.example","sub":"alice","aud":"mcp","exp":1900000000,
  "groups":["staff","admins"],"scope":"tools:read tools:write","tenant":"acme","email_verified":true,
  "act":{"sub":"agent-7","act":{"sub":"search"}}}"#;

const CLAIM_RULES: &str = r#"{"rules": [
    {"id": "t", "match": {"claims": {"tenant": "acme", "email_verified": "true"}}, "action": "allow"},
    {"id": "e", "match": {"claims": {"exp": "*", "act": "*"}}, "action": "allow"}
]}"#;

#[test]
fn jwt_subject_groups_claims_and_chain() {
    let s = sources(CLAIM_RULES);
    assert_eq!(s.claim_names, ["email_verified", "tenant", "act", "exp"]);
    let p = resolve(&s, &PeerFacts { jwt_payload: Some(JWT), ..PeerFacts::default() });
    assert_eq!(p.origin, Origin::Jwt);
    assert_eq!(p.id, "alice");
    assert_eq!(p.actors, ["agent-7", "search"]);
    assert_eq!(p.display(), "alice via agent-7 via search");
    assert_eq!(p.groups, ["staff", "admins", "tools:read", "tools:write"]);
    assert_eq!(p.claim("tenant"), Some("acme"));
    assert_eq!(p.claim("email_verified"), Some("true"));
    assert_eq!(p.claim("exp"), Some("1900000000"));
    assert_eq!(p.claim("act"), None, "objects are not claims");
    assert_eq!(p.claim("iss"), None, "claims no rule matches on are not kept");
}

/// What the Envoy host offers: string leaves by path; maps and lists are not strings.
struct EnvoyLike(Vec<(&'static str, &'static str)>);

impl principal::Claims for EnvoyLike {
    fn string(&self, path: &[&str]) -> Option<String> {
        let key = path.join(".");
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn host_claim_reader_gives_the_same_principal() {
    // The host reads numbers and booleans as binary, so its reader offers strings only: a policy
    // matching `exp` or `email_verified` needs the JSON form (or a host `scalar`).
    let s = sources(r#"{"rules": [{"id": "t", "match": {"claims": {"tenant": "acme"}}, "action": "allow"}]}"#);
    let reader = EnvoyLike(vec![
        ("sub", "alice"),
        ("groups.0", "staff"),
        ("groups.1", "admins"),
        ("scope", "tools:read tools:write"),
        ("tenant", "acme"),
        ("act.sub", "agent-7"),
        ("act.act.sub", "search"),
    ]);
    let via_reader = resolve(&s, &PeerFacts { jwt_claims: Some(&reader), ..PeerFacts::default() });
    let via_json = resolve(&s, &PeerFacts { jwt_payload: Some(JWT), ..PeerFacts::default() });
    assert_eq!(via_reader, via_json);
    // JSON text wins when both are given; neither means the next source.
    let none = resolve(&s, &PeerFacts { jwt_claims: Some(&EnvoyLike(vec![("aud", "x")])), ..PeerFacts::default() });
    assert_eq!(none.origin, Origin::Anonymous);
    let dbg = format!("{:?}", PeerFacts { jwt_payload: Some(JWT), ..PeerFacts::default() });
    assert!(!dbg.contains("alice"), "payload contents are never printed: {dbg}");
}

#[test]
fn configured_order_decides() {
    let jwt_first = sources(r#"{"principal": {"sources": ["jwt", "spiffe", "header"], "trusted_header": "x-user"}}"#);
    let mtls_first = sources(r#"{"principal": {"sources": ["spiffe", "jwt"]}}"#);
    let facts = PeerFacts {
        jwt_payload: Some(JWT),
        uri_san: Some("spiffe://Corp.Example/ns/prod/sa/agent"),
        trusted_header: Some(b"carol"),
        ..PeerFacts::default()
    };
    assert_eq!(resolve(&jwt_first, &facts).id, "alice");
    let p = resolve(&mtls_first, &facts);
    assert_eq!(p.origin, Origin::Spiffe);
    assert_eq!(p.id, "spiffe://Corp.Example/ns/prod/sa/agent");
    assert_eq!(p.trust_domain.as_deref(), Some("corp.example"));
    // A source that yields nothing falls through to the next one.
    let facts = PeerFacts { jwt_payload: Some(br#"{"aud":"x"}"#), trusted_header: Some(b" carol "), ..PeerFacts::default() };
    let p = resolve(&jwt_first, &facts);
    assert_eq!((p.origin, p.id.as_str()), (Origin::Header, "carol"));
}

#[test]
fn istio_principal_gets_the_scheme() {
    let s = sources(r#"{"principal": {"sources": ["istio"]}}"#);
    let p = resolve(&s, &PeerFacts { istio_principal: Some("cluster.local/ns/default/sa/sleep"), ..PeerFacts::default() });
    assert_eq!(p.origin, Origin::Istio);
    assert_eq!(p.id, "spiffe://cluster.local/ns/default/sa/sleep");
    assert_eq!(p.trust_domain.as_deref(), Some("cluster.local"));
    // A URI SAN that is not SPIFFE is no identity.
    let s = sources(r#"{"principal": {"sources": ["spiffe"]}}"#);
    let p = resolve(&s, &PeerFacts { uri_san: Some("https://example.com/x"), ..PeerFacts::default() });
    assert_eq!(p.origin, Origin::Anonymous);
}

#[test]
fn unusable_identities_are_refused() {
    let s = sources(r#"{"principal": {"sources": ["jwt", "header"], "trusted_header": "x-user"}}"#);
    let long = format!(r#"{{"sub":"{}"}}"#, "a".repeat(300));
    for payload in [&b"not json"[..], br#"{"sub":""}"#, br#"{"sub":42}"#, br#"{"sub":"a\nb"}"#, long.as_bytes(), br#"[]"#] {
        let p = resolve(&s, &PeerFacts { jwt_payload: Some(payload), ..PeerFacts::default() });
        assert_eq!(p.origin, Origin::Anonymous, "{}", String::from_utf8_lossy(payload));
    }
    let p = resolve(&s, &PeerFacts { trusted_header: Some(&[0xff, 0xfe]), ..PeerFacts::default() });
    assert_eq!(p.origin, Origin::Anonymous);
}

#[test]
fn act_chain_is_bounded() {
    let mut payload = String::from(r#"{"sub":"u""#);
    for i in 0..50 {
        payload.push_str(&format!(r#","act":{{"sub":"a{i}""#));
    }
    payload.push_str(&"}".repeat(51));
    let p = resolve(&sources("{}"), &PeerFacts { jwt_payload: Some(payload.as_bytes()), ..PeerFacts::default() });
    assert_eq!(p.actors.len(), principal::MAX_CHAIN);
    assert_eq!(p.actors[0], "a0");
}

#[test]
fn anonymous_fingerprint_and_keys() {
    let s = sources("{}");
    let a1 =
        resolve(&s, &PeerFacts { source_address: Some("10.1.2.3:5000"), user_agent: Some(b"curl/8"), ..PeerFacts::default() });
    let a2 =
        resolve(&s, &PeerFacts { source_address: Some("10.1.2.3:6000"), user_agent: Some(b"curl/8"), ..PeerFacts::default() });
    let a3 =
        resolve(&s, &PeerFacts { source_address: Some("10.1.2.4:5000"), user_agent: Some(b"curl/8"), ..PeerFacts::default() });
    assert_eq!(a1.origin, Origin::Anonymous);
    assert_eq!(a1.client_fingerprint, a2.client_fingerprint, "the port changes per connection");
    assert_ne!(a1.client_fingerprint, a3.client_fingerprint);
    assert_eq!(a1.key(), a2.key());
    assert_ne!(a1.key(), a3.key(), "anonymous callers are told apart by fingerprint");

    let alice = resolve(
        &s,
        &PeerFacts { jwt_payload: Some(br#"{"sub":"alice"}"#), source_address: Some("10.1.2.3:1"), ..PeerFacts::default() },
    );
    let alice_elsewhere = resolve(
        &s,
        &PeerFacts { jwt_payload: Some(br#"{"sub":"alice"}"#), source_address: Some("10.9.9.9:1"), ..PeerFacts::default() },
    );
    let alice_via = resolve(&s, &PeerFacts { jwt_payload: Some(JWT), ..PeerFacts::default() });
    assert_eq!(alice.key(), alice_elsewhere.key(), "an identified principal is the same from anywhere");
    assert_ne!(alice.key(), alice_via.key(), "acting through an agent is a different principal");
    assert_eq!(alice.key().len(), 32);
    assert!(!alice.key().contains("alice"));

    let c1 = CorrelationKey::new(&alice, "fs");
    assert_eq!(c1, CorrelationKey::new(&alice, "fs"));
    assert_ne!(c1, CorrelationKey::new(&alice, "git"));
    assert_ne!(c1, CorrelationKey::new(&alice_elsewhere, "fs"), "the client fingerprint is part of the key");

    let h = alice.upstream_headers(&alice.key(), &c1);
    assert_eq!(h[0], ("x-warden-principal", alice.key()));
    assert_eq!(h[1], ("x-warden-principal-source", "jwt".to_owned()));
    assert_eq!(h[2].1, c1.as_str());
    assert!(h.iter().all(|(n, _)| principal::is_warden_header(n)));
}
