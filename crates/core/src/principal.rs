//! Who is acting: the principal, resolved from identities Envoy has already verified.
//!
//! Sources are tried in the configured order ([`Sources`]); the first that yields an identity
//! wins, otherwise the principal is anonymous and known only by a client fingerprint (hash of the
//! source address without port and the user agent). The filter never sees or logs raw tokens: it
//! reads the *payload* `jwt_authn` wrote to dynamic metadata after verifying the signature.
//!
//! The JWT payload is read through [`Claims`]: either the payload as JSON text
//! ([`PeerFacts::jwt_payload`]) or the host's own reader ([`PeerFacts::jwt_claims`]), which in
//! Envoy walks `metadata.filter_metadata.<namespace>.<payload_key>.<path…>` with `get_property`
//! (Envoy serialises a string leaf as its raw bytes, and maps/lists as opaque pairs, so only
//! string leaves are asked for: `sub`, `act.sub`, `act.act.sub`, `groups.0`, `groups.1`, …).
//!
//! A JWT's RFC 8693 `act` claim is flattened into a delegation chain, subject first:
//! `{"sub":"alice","act":{"sub":"agent-7","act":{"sub":"search"}}}` is "alice via agent-7 via
//! search".
//!
//! Everything stateful keys on hashes defined here, once: [`Principal::key`] (who) and
//! [`CorrelationKey`] = hash(principal, upstream, client fingerprint).

use serde::Deserialize;
use serde_json::Value;

use crate::digest_memo::{digest16_with, DigestMemo};

/// Header prefix the filter owns: stripped from client requests, set by the filter.
pub const WARDEN_HEADER_PREFIX: &str = "x-warden-";
/// Principal fingerprint header sent upstream (hex of [`Principal::key`]; never the raw id).
pub const HEADER_PRINCIPAL: &str = "x-warden-principal";
/// How the principal was established (`jwt`, `spiffe`, `istio`, `header`, `anonymous`).
pub const HEADER_PRINCIPAL_SOURCE: &str = "x-warden-principal-source";
/// The correlation key of the exchange.
pub const HEADER_CORRELATION: &str = "x-warden-correlation";

/// Bounds on what a payload can make the filter keep.
pub const MAX_ID_LEN: usize = 256;
pub const MAX_GROUPS: usize = 64;
pub const MAX_CLAIMS: usize = 32;
pub const MAX_CHAIN: usize = 8;
pub const MAX_JWT_PAYLOAD: usize = 16 * 1024;

/// True for a header a client must not be able to set: `x-warden-*` in any spelling a backend may
/// read as the same header (any case; `_` for `-`, as CGI/WSGI-style servers fold them).
pub fn is_warden_header(name: &str) -> bool {
    crate::mcp::headers::folds_to_prefix(name, WARDEN_HEADER_PREFIX)
}

/// One place Envoy may have put a verified identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The payload `jwt_authn` wrote to dynamic metadata (`payload_in_metadata`).
    Jwt,
    /// `connection.uri_san_peer_certificate` (a SPIFFE id).
    Spiffe,
    /// Istio's `source.principal`.
    Istio,
    /// The configured trusted header (set by something in front that Envoy trusts).
    Header,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Jwt => "jwt",
            SourceKind::Spiffe => "spiffe",
            SourceKind::Istio => "istio",
            SourceKind::Header => "header",
        }
    }
}

/// Sources tried when the policy names none.
pub const DEFAULT_SOURCES: [SourceKind; 3] = [SourceKind::Jwt, SourceKind::Spiffe, SourceKind::Istio];
/// Where `jwt_authn`'s `payload_in_metadata` puts the verified payload.
pub const DEFAULT_JWT_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
pub const DEFAULT_JWT_PAYLOAD_KEY: &str = "jwt_payload";
pub const DEFAULT_SUBJECT_CLAIM: &str = "sub";
pub const DEFAULT_GROUP_CLAIMS: [&str; 4] = ["groups", "scope", "scp", "roles"];

/// Where the principal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Jwt,
    Spiffe,
    Istio,
    Header,
    Anonymous,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Jwt => "jwt",
            Origin::Spiffe => "spiffe",
            Origin::Istio => "istio",
            Origin::Header => "header",
            Origin::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "jwt" => Some(Origin::Jwt),
            "spiffe" => Some(Origin::Spiffe),
            "istio" => Some(Origin::Istio),
            "header" => Some(Origin::Header),
            "anonymous" => Some(Origin::Anonymous),
            _ => None,
        }
    }
}

/// The compiled principal configuration (from `principal` in the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub order: Vec<SourceKind>,
    /// Dynamic metadata namespace and key where the host finds the JWT payload.
    pub jwt_metadata_namespace: String,
    pub jwt_payload_key: String,
    pub subject_claim: String,
    pub group_claims: Vec<String>,
    /// Claims the policy matches on (`match.claims`); only these are read into the principal.
    pub claim_names: Vec<String>,
    /// Lowercase header name for [`SourceKind::Header`].
    pub trusted_header: Option<String>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            order: DEFAULT_SOURCES.to_vec(),
            jwt_metadata_namespace: DEFAULT_JWT_NAMESPACE.to_owned(),
            jwt_payload_key: DEFAULT_JWT_PAYLOAD_KEY.to_owned(),
            subject_claim: DEFAULT_SUBJECT_CLAIM.to_owned(),
            group_claims: DEFAULT_GROUP_CLAIMS.iter().map(|c| (*c).to_owned()).collect(),
            claim_names: Vec::new(),
            trusted_header: None,
        }
    }
}

/// Reads string leaves of the verified JWT payload by path (`["sub"]`, `["act", "sub"]`,
/// `["groups", "0"]`). `None` when the path is absent or the leaf is not a string.
pub trait Claims {
    fn string(&self, path: &[&str]) -> Option<String>;
    /// A scalar for claim matching; by default only strings. [`JsonClaims`] also renders numbers
    /// and booleans as their JSON text.
    fn scalar(&self, path: &[&str]) -> Option<String> {
        self.string(path)
    }
}

/// [`Claims`] over a JSON payload.
#[derive(Debug, Clone)]
pub struct JsonClaims(pub Value);

impl JsonClaims {
    /// Parses a payload (bounded by [`MAX_JWT_PAYLOAD`]); `None` unless it is a JSON object.
    pub fn parse(payload: &[u8]) -> Option<JsonClaims> {
        if payload.len() > MAX_JWT_PAYLOAD {
            return None;
        }
        let v: Value = serde_json::from_slice(payload).ok()?;
        v.is_object().then_some(JsonClaims(v))
    }
}

impl JsonClaims {
    fn at(&self, path: &[&str]) -> Option<&Value> {
        let mut v = &self.0;
        for part in path {
            v = match v {
                Value::Object(m) => m.get(*part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

impl Claims for JsonClaims {
    fn string(&self, path: &[&str]) -> Option<String> {
        self.at(path)?.as_str().map(str::to_owned)
    }

    fn scalar(&self, path: &[&str]) -> Option<String> {
        match self.at(path)? {
            Value::String(s) => Some(s.clone()),
            v @ (Value::Bool(_) | Value::Number(_)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// What the host read for this request, as plain values. Absent = not available.
#[derive(Clone, Copy, Default)]
pub struct PeerFacts<'a> {
    /// JSON text of the verified JWT payload, when the host has it as JSON.
    pub jwt_payload: Option<&'a [u8]>,
    /// Otherwise: the host's reader of the payload in dynamic metadata (used when `jwt_payload`
    /// is `None`).
    pub jwt_claims: Option<&'a dyn Claims>,
    /// `connection.uri_san_peer_certificate`.
    pub uri_san: Option<&'a str>,
    /// Istio `source.principal` (with or without the `spiffe://` scheme).
    pub istio_principal: Option<&'a str>,
    /// Value of the configured trusted header.
    pub trusted_header: Option<&'a [u8]>,
    /// `source.address` (`ip:port` or `[v6]:port`).
    pub source_address: Option<&'a str>,
    pub user_agent: Option<&'a [u8]>,
}

impl std::fmt::Debug for PeerFacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // Never print payload contents (they may carry personal data).
        f.debug_struct("PeerFacts")
            .field("jwt_payload", &self.jwt_payload.map(<[u8]>::len))
            .field("jwt_claims", &self.jwt_claims.is_some())
            .field("uri_san", &self.uri_san)
            .field("istio_principal", &self.istio_principal)
            .field("trusted_header", &self.trusted_header.is_some())
            .field("source_address", &self.source_address)
            .finish()
    }
}

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub origin: Origin,
    /// Subject, SPIFFE id, trusted header value, or `anonymous`.
    pub id: String,
    /// Delegation chain after the subject: the RFC 8693 `act` subjects, outermost first.
    pub actors: Vec<String>,
    pub groups: Vec<String>,
    /// The claims the policy matches on, as read from the JWT payload.
    pub claims: Vec<(String, String)>,
    /// SPIFFE trust domain, for SPIFFE and Istio principals.
    pub trust_domain: Option<String>,
    /// Hex hash of source address (no port) and user agent.
    pub client_fingerprint: String,
}

impl Principal {
    /// "alice via agent-7 via search".
    pub fn display(&self) -> String {
        let mut s = self.id.clone();
        for a in &self.actors {
            s.push_str(" via ");
            s.push_str(a);
        }
        s
    }

    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Stable identity hash (hex, 32 chars): origin + id + delegation chain. Anonymous principals
    /// are told apart by their client fingerprint. This is the "principal" of every state key and
    /// the value of `x-warden-principal`.
    pub fn key(&self) -> String {
        self.key_with(None)
    }

    /// [`Principal::key`], remembered in the worker's `memo` (the same digest).
    pub fn key_with(&self, memo: Option<&mut DigestMemo>) -> String {
        let origin = self.origin.as_str().as_bytes();
        // Anonymous callers are told apart by their fingerprint; no delegation chain is theirs.
        let anonymous = self.origin == Origin::Anonymous;
        let who = if anonymous { &self.client_fingerprint } else { &self.id };
        let d = if anonymous || self.actors.is_empty() {
            digest16_with(memo, &[b"mcpw/principal/v1\0", origin, &[0], who.as_bytes()])
        } else {
            let mut parts: Vec<&[u8]> = vec![b"mcpw/principal/v1\0", origin, &[0], self.id.as_bytes()];
            for a in &self.actors {
                parts.push(&[0]);
                parts.push(a.as_bytes());
            }
            digest16_with(memo, &parts)
        };
        crate::hex_text::lower(&d)
    }

    /// Headers the filter sets upstream (after stripping every client `x-warden-*`); `key` is
    /// [`Principal::key`], which the caller already computed.
    pub fn upstream_headers(&self, key: &str, correlation: &CorrelationKey) -> [(&'static str, String); 3] {
        [
            (HEADER_PRINCIPAL, key.to_owned()),
            (HEADER_PRINCIPAL_SOURCE, self.origin.as_str().to_owned()),
            (HEADER_CORRELATION, correlation.0.clone()),
        ]
    }
}

/// hash(principal, upstream, client fingerprint), hex (32 chars). Defined once; used by
/// everything that keeps per-caller state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationKey(pub String);

impl CorrelationKey {
    pub fn new(principal: &Principal, upstream: &str) -> CorrelationKey {
        Self::with_key(principal, &principal.key(), upstream)
    }

    /// The same, for a caller that already holds `principal.key()` (it is a SHA-256: the
    /// request path computes it once).
    pub fn with_key(principal: &Principal, principal_key: &str, upstream: &str) -> CorrelationKey {
        Self::with_key_memo(principal, principal_key, upstream, None)
    }

    /// [`CorrelationKey::with_key`], remembered in the worker's `memo` (the same digest).
    pub fn with_key_memo(
        principal: &Principal,
        principal_key: &str,
        upstream: &str,
        memo: Option<&mut DigestMemo>,
    ) -> CorrelationKey {
        let d = digest16_with(
            memo,
            &[
                b"mcpw/correlation/v1\0",
                principal_key.as_bytes(),
                &[0],
                upstream.as_bytes(),
                &[0],
                principal.client_fingerprint.as_bytes(),
            ],
        );
        CorrelationKey(crate::hex_text::lower(&d))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hash of the client's network address (port dropped: it changes per connection) and user agent.
pub fn client_fingerprint(source_address: Option<&str>, user_agent: Option<&[u8]>) -> String {
    client_fingerprint_with(None, source_address, user_agent)
}

/// [`client_fingerprint`], remembered in the worker's `memo` (the same digest).
pub fn client_fingerprint_with(memo: Option<&mut DigestMemo>, source_address: Option<&str>, user_agent: Option<&[u8]>) -> String {
    let addr = source_address.map(strip_port).unwrap_or("");
    let d = digest16_with(memo, &[b"mcpw/client/v1\0", addr.as_bytes(), &[0], user_agent.unwrap_or_default()]);
    crate::hex_text::lower(&d)
}

/// The client's network address without its port (what stays the same across a client's
/// connections, whatever it claims as its user agent).
pub fn client_address(source_address: Option<&str>) -> &str {
    source_address.map(strip_port).unwrap_or("")
}

fn strip_port(addr: &str) -> &str {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        // One colon: v4:port or host:port. More: a bare v6 address without port.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    }
}

/// Resolves the principal. Pure: the host supplies the facts it read.
pub fn resolve(sources: &Sources, facts: &PeerFacts<'_>) -> Principal {
    resolve_with(sources, facts, None)
}

/// [`resolve`], with the client fingerprint remembered in the worker's `memo`.
pub fn resolve_with(sources: &Sources, facts: &PeerFacts<'_>, memo: Option<&mut DigestMemo>) -> Principal {
    let fp = client_fingerprint_with(memo, facts.source_address, facts.user_agent);
    for s in &sources.order {
        if let Some(p) = from_source(sources, *s, facts, &fp) {
            return p;
        }
    }
    simple(Origin::Anonymous, "anonymous".to_owned(), None, &fp)
}

/// True when source `kind` alone names a principal in `facts`: the sources after it in the
/// order are never consulted, so the host need not be asked for their facts.
pub fn names_one(sources: &Sources, kind: SourceKind, facts: &PeerFacts<'_>) -> bool {
    from_source(sources, kind, facts, "").is_some()
}

/// The principal source `kind` names in `facts` (`fp`: the client fingerprint it carries).
fn from_source(sources: &Sources, kind: SourceKind, facts: &PeerFacts<'_>, fp: &str) -> Option<Principal> {
    match kind {
        SourceKind::Jwt => match (facts.jwt_payload, facts.jwt_claims) {
            (Some(p), _) => JsonClaims::parse(p).and_then(|c| from_jwt(sources, &c, fp)),
            (None, Some(c)) => from_jwt(sources, c, fp),
            (None, None) => None,
        },
        SourceKind::Spiffe => facts.uri_san.and_then(|u| from_spiffe(Origin::Spiffe, u, fp)),
        SourceKind::Istio => facts.istio_principal.and_then(|u| from_spiffe(Origin::Istio, u, fp)),
        SourceKind::Header => facts.trusted_header.and_then(|v| {
            let v = std::str::from_utf8(v).ok()?.trim();
            let id = clean(v)?;
            Some(simple(Origin::Header, id, None, fp))
        }),
    }
}

fn simple(origin: Origin, id: String, trust_domain: Option<String>, fp: &str) -> Principal {
    Principal {
        origin,
        id,
        actors: Vec::new(),
        groups: Vec::new(),
        claims: Vec::new(),
        trust_domain,
        client_fingerprint: fp.to_owned(),
    }
}

/// An identity string we are willing to keep: non-empty, bounded, no control characters.
fn clean(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > MAX_ID_LEN || s.chars().any(char::is_control) {
        return None;
    }
    Some(s.to_owned())
}

fn from_spiffe(origin: Origin, raw: &str, fp: &str) -> Option<Principal> {
    let raw = raw.trim();
    let id = if raw.starts_with("spiffe://") {
        raw.to_owned()
    } else if origin == Origin::Istio {
        format!("spiffe://{raw}")
    } else {
        return None;
    };
    let id = clean(&id)?;
    let rest = id.strip_prefix("spiffe://")?;
    let td = rest.split('/').next().unwrap_or_default();
    if td.is_empty() {
        return None;
    }
    let td = td.to_ascii_lowercase();
    Some(simple(origin, id, Some(td), fp))
}

fn from_jwt(sources: &Sources, c: &dyn Claims, fp: &str) -> Option<Principal> {
    let id = clean(&c.string(&[sources.subject_claim.as_str()])?)?;

    let mut actors = Vec::new();
    let mut path: Vec<&str> = Vec::with_capacity(MAX_CHAIN + 1);
    while actors.len() < MAX_CHAIN {
        path.push("act");
        let mut sub_path = path.clone();
        sub_path.push("sub");
        match c.string(&sub_path).as_deref().and_then(clean) {
            Some(s) => actors.push(s),
            None => break,
        }
    }

    let mut groups: Vec<String> = Vec::new();
    let add = |g: &str, groups: &mut Vec<String>| {
        if groups.len() < MAX_GROUPS {
            if let Some(g) = clean(g) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    };
    for claim in &sources.group_claims {
        // A list (`groups: [..]`) reads element by element; a string (`scope: "a b"`) splits.
        let mut i = 0usize;
        while groups.len() < MAX_GROUPS {
            let idx = i.to_string();
            match c.string(&[claim.as_str(), idx.as_str()]) {
                Some(g) => add(&g, &mut groups),
                None => break,
            }
            i += 1;
        }
        if i == 0 {
            if let Some(s) = c.string(&[claim.as_str()]) {
                for g in s.split_ascii_whitespace() {
                    add(g, &mut groups);
                }
            }
        }
    }

    let claims = sources
        .claim_names
        .iter()
        .filter_map(|k| Some((k.clone(), clean(&c.scalar(&[k.as_str()])?)?)))
        .take(MAX_CLAIMS)
        .collect();

    Some(Principal { origin: Origin::Jwt, id, actors, groups, claims, trust_domain: None, client_fingerprint: fp.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The digests as they were computed before the worker remembered them (each a SHA-256 fed
    /// part by part): the values are the contract (state keys, `x-warden-principal`, receipts).
    fn streamed(parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        crate::hex_text::lower(h.finalize().get(..16).unwrap_or_default())
    }

    #[test]
    fn remembered_identity_digests_are_the_digests() {
        let mut memo = DigestMemo::default();
        let fp = client_fingerprint_with(Some(&mut memo), Some("10.1.2.3:5000"), Some(b"curl/8"));
        assert_eq!(fp, streamed(&[b"mcpw/client/v1\0", b"10.1.2.3", &[0], b"curl/8"]));
        assert_eq!(fp, client_fingerprint(Some("10.1.2.3:6000"), Some(b"curl/8")));
        let mut alice = simple(Origin::Jwt, "alice".into(), None, &fp);
        let mut anon = simple(Origin::Anonymous, "anonymous".into(), None, &fp);
        for _ in 0..2 {
            assert_eq!(alice.key_with(Some(&mut memo)), streamed(&[b"mcpw/principal/v1\0", b"jwt", &[0], b"alice"]));
            assert_eq!(anon.key_with(Some(&mut memo)), streamed(&[b"mcpw/principal/v1\0", b"anonymous", &[0], fp.as_bytes()]));
        }
        // An anonymous caller's key is its fingerprint's, whatever else it carries.
        anon.actors = vec!["agent-1".into()];
        assert_eq!(anon.key_with(Some(&mut memo)), streamed(&[b"mcpw/principal/v1\0", b"anonymous", &[0], fp.as_bytes()]));
        alice.actors = vec!["agent-1".into(), "agent-2".into()];
        let via = streamed(&[b"mcpw/principal/v1\0", b"jwt", &[0], b"alice", &[0], b"agent-1", &[0], b"agent-2"]);
        assert_eq!(alice.key_with(Some(&mut memo)), via);
        assert_eq!(alice.key(), via);
        let ck = CorrelationKey::with_key_memo(&alice, &via, "up", Some(&mut memo));
        assert_eq!(ck.0, streamed(&[b"mcpw/correlation/v1\0", via.as_bytes(), &[0], b"up", &[0], fp.as_bytes()]));
        assert_eq!(ck, CorrelationKey::new(&alice, "up"));
    }

    #[test]
    fn ports_are_dropped() {
        assert_eq!(strip_port("10.0.0.1:5555"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:5555"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn warden_headers() {
        assert!(is_warden_header("x-warden-principal"));
        assert!(is_warden_header("X-Warden-Anything"));
        assert!(!is_warden_header("x-ward"));
        assert!(!is_warden_header("mcp-method"));
        assert!(is_warden_header("x_warden_principal"), "underscores are folded to dashes by CGI-style servers");
        assert!(is_warden_header("X_Warden-Correlation"));
        assert!(!is_warden_header("x-wardens"));
    }
}
