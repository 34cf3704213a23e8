//! One mediated MCP exchange as the request path reports it: the compact record that the filter
//! enqueues (Envoy shared queue) for the receipt writer, and its mapping to an [`ActionRecord`].
//!
//! Wire form on the queue: JSON of [`Exchange`] (unknown fields rejected) with `"v":1`, so a
//! writer built from a different filter version refuses rather than misreads a record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::classify::{action_type, side_effect_class};
use super::record::{ActionRecord, Reversibility, Verdict};
use super::time::rfc3339_nano;

/// Version of the queue encoding.
pub const QUEUE_FORMAT_VERSION: u32 = 1;

/// What the request path knows about one exchange. Strings may be empty where unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub v: u32,
    /// When the request arrived (Unix nanoseconds, host clock).
    pub unix_nanos: u64,
    /// MCP method (`Mcp-Method`); empty for a body-less request.
    pub method: String,
    /// `Mcp-Name`: tool / prompt name, resource URI or task id.
    pub name: String,
    /// Upstream MCP server (route / cluster name).
    pub upstream: String,
    /// Verified principal (SPIFFE id, JWT `sub`, trusted header), or `anonymous`.
    pub principal: String,
    /// Agent / client identity (clientInfo name).
    pub actor: String,
    /// RFC 8693 `act` chain, outermost first.
    pub delegation_chain: Vec<String>,
    /// JSON-RPC id as the client wrote it.
    pub request_id: String,
    pub verdict: WireVerdict,
    /// Name of the rule that decided (empty when the default allowed it).
    pub rule: String,
    pub severity: String,
    pub data_classes_in: Vec<String>,
    pub data_classes_out: Vec<String>,
    /// Where the deciding finding came from (a response inspector); empty: the request path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    pub policy_hash: String,
    /// W3C `traceparent` of the request, if any.
    pub traceparent: String,
    /// The MCP protocol version the request declared (`_meta` or `MCP-Protocol-Version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol_version: String,
    /// `modern` (2026-07-28) or `legacy` (2025-11-25); empty when no request was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub era: String,
    /// The legacy `Mcp-Session-Id` as a fingerprint ([`fingerprint`]): the id itself is a
    /// handle a log reader should not be able to present.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// The JSON-RPC error code the client got: the gateway's refusal, a withheld answer, or the
    /// upstream's own error (when the filter read the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// The answer was a `CallToolResult` with `isError: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tool_error: bool,
    /// The HTTP status of an answer that failed at the HTTP level (400..=599), when the filter
    /// read the answer's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_error: Option<u16>,
    pub duration_micros: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// [`Verdict`] in the queue encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireVerdict {
    Allow,
    Block,
    Warn,
    Ask,
    Strip,
    Forward,
}

impl From<WireVerdict> for Verdict {
    fn from(v: WireVerdict) -> Self {
        match v {
            WireVerdict::Allow => Verdict::Allow,
            WireVerdict::Block => Verdict::Block,
            WireVerdict::Warn => Verdict::Warn,
            WireVerdict::Ask => Verdict::Ask,
            WireVerdict::Strip => Verdict::Strip,
            WireVerdict::Forward => Verdict::Forward,
        }
    }
}

/// A queue message that is not an [`Exchange`] this writer understands (the producer's fault:
/// a different filter version, or a corrupted message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Invalid(String),
    Version(u32),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Invalid(e) => write!(f, "queue record is not an exchange: {e}"),
            DecodeError::Version(v) => write!(f, "queue record version {v}, this writer reads {QUEUE_FORMAT_VERSION}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// `sha256:` + the first 16 hex digits of SHA-256(`value`): a stable, non-reversible label.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("sha256:{}", crate::hex_text::lower(digest.get(..8).unwrap_or_default()))
}

/// Who a receipt names when the exchange has no principal (refused before one was resolved).
pub const ANONYMOUS: &str = "anonymous";

impl Exchange {
    /// An exchange that knows only when it happened, its verdict and the policy in force; the
    /// caller fills in what it knows.
    pub fn empty(unix_nanos: u64, verdict: WireVerdict, policy_hash: &str) -> Exchange {
        Exchange {
            v: QUEUE_FORMAT_VERSION,
            unix_nanos,
            method: String::new(),
            name: String::new(),
            upstream: String::new(),
            principal: String::new(),
            actor: String::new(),
            delegation_chain: Vec::new(),
            request_id: String::new(),
            verdict,
            rule: String::new(),
            severity: String::new(),
            data_classes_in: Vec::new(),
            data_classes_out: Vec::new(),
            layer: String::new(),
            policy_hash: policy_hash.to_owned(),
            traceparent: String::new(),
            protocol_version: String::new(),
            era: String::new(),
            session: String::new(),
            error_code: None,
            tool_error: false,
            http_error: None,
            duration_micros: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Exchange, DecodeError> {
        let e: Exchange = serde_json::from_slice(bytes).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        if e.v != QUEUE_FORMAT_VERSION {
            return Err(DecodeError::Version(e.v));
        }
        Ok(e)
    }

    /// `<upstream>/<name>`, or `<upstream>/<method>` when there is no name (spec §8.5).
    pub fn target(&self) -> String {
        let what = if self.name.is_empty() { self.method.as_str() } else { self.name.as_str() };
        let upstream = if self.upstream.is_empty() { "upstream" } else { self.upstream.as_str() };
        if what.is_empty() {
            upstream.to_string()
        } else {
            format!("{upstream}/{what}")
        }
    }

    /// `sha256:` + the first 16 hex digits of SHA-256(principal): a stable, non-reversible label
    /// for log attributes (the receipt itself carries the principal).
    /// Of the principal the receipt names (an exchange refused before a principal was resolved is
    /// the receipt's `anonymous`, not the hash of nothing).
    pub fn principal_fingerprint(&self) -> String {
        fingerprint(if self.principal.is_empty() { ANONYMOUS } else { self.principal.as_str() })
    }

    /// The action record for this exchange; the chain fills `chain_seq` / `chain_prev_hash`.
    pub fn to_record(&self, action_id: String) -> ActionRecord {
        let name = (!self.name.is_empty()).then_some(self.name.as_str());
        let action = action_type(&self.method, name);
        let or = |s: &str, default: &str| if s.is_empty() { default.to_string() } else { s.to_string() };
        ActionRecord {
            action_id,
            action_type: action,
            timestamp: rfc3339_nano(self.unix_nanos),
            principal: or(&self.principal, ANONYMOUS),
            actor: or(&self.actor, ANONYMOUS),
            delegation_chain: self.delegation_chain.clone(),
            target: self.target(),
            intent: String::new(),
            data_classes_in: self.data_classes_in.clone(),
            data_classes_out: self.data_classes_out.clone(),
            side_effect_class: side_effect_class(action),
            reversibility: Reversibility::Unknown,
            policy_hash: self.policy_hash.clone(),
            verdict: self.verdict.into(),
            transport: "mcp_http".to_string(),
            method: self.method.clone(),
            layer: if self.layer.is_empty() { "mcp_request".to_string() } else { self.layer.clone() },
            pattern: self.rule.clone(),
            severity: self.severity.clone(),
            request_id: self.request_id.clone(),
            chain_prev_hash: String::new(),
            chain_seq: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::record::{ActionType, SideEffectClass};

    fn sample() -> Exchange {
        Exchange {
            v: 1,
            unix_nanos: 1_776_254_400_250_000_000,
            method: "tools/call".into(),
            name: "create_issue".into(),
            upstream: "github".into(),
            principal: "spiffe://cluster.local/ns/a/sa/agent".into(),
            actor: "claude-code".into(),
            delegation_chain: vec!["user:alice".into()],
            request_id: "7".into(),
            verdict: WireVerdict::Block,
            rule: "no-writes".into(),
            severity: "high".into(),
            data_classes_in: vec![],
            data_classes_out: vec![],
            layer: String::new(),
            policy_hash: "sha256:00".into(),
            traceparent: String::new(),
            protocol_version: "2026-07-28".into(),
            era: "modern".into(),
            session: String::new(),
            error_code: Some(-31403),
            tool_error: false,
            http_error: None,
            duration_micros: 1200,
            bytes_in: 300,
            bytes_out: 0,
        }
    }

    #[test]
    fn queue_encoding_round_trips_and_refuses_other_versions() {
        let e = sample();
        assert_eq!(Exchange::decode(&e.encode()), Ok(e.clone()));
        let mut other = e;
        other.v = 2;
        assert_eq!(Exchange::decode(&other.encode()), Err(DecodeError::Version(2)));
        assert!(matches!(Exchange::decode(b"{\"v\":1}"), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn maps_to_a_record_with_classified_action() {
        let r = sample().to_record("c-1".into());
        assert_eq!(r.action_type, ActionType::Write);
        assert_eq!(r.side_effect_class, SideEffectClass::ExternalWrite);
        assert_eq!(r.target, "github/create_issue");
        assert_eq!(r.timestamp, "2026-04-15T12:00:00.25Z");
        assert_eq!(r.verdict, Verdict::Block);
        assert_eq!(r.pattern, "no-writes");
        assert!(sample().principal_fingerprint().starts_with("sha256:"));
        assert_eq!(sample().principal_fingerprint().len(), 23);
        let nobody = Exchange { principal: String::new(), ..sample() };
        let anonymous = Exchange { principal: ANONYMOUS.to_owned(), ..sample() };
        assert_eq!(nobody.principal_fingerprint(), anonymous.principal_fingerprint(), "the principal the receipt names");
    }
}
