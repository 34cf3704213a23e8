//! The signed content: [`ActionRecord`] (the v1 fields we emit, in Go declaration order) and the
//! [`Receipt`] envelope, each with its canonical bytes.
//!
//! Only fields from the older compatible field set are emitted (spec §2, compatibility rule), so
//! the canonical bytes are the same under old and new Go verifiers and pipelock-verify ≥ 0.3.

use sha2::{Digest, Sha256};

use super::json::{write_str, Obj};
use crate::hex_text;

/// `action_type` (validated by every verifier against this enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    Read,
    Derive,
    Write,
    Delegate,
    Authorize,
    Spend,
    Commit,
    Actuate,
    Unclassified,
}

impl ActionType {
    pub const ALL: [ActionType; 9] = [
        ActionType::Read,
        ActionType::Derive,
        ActionType::Write,
        ActionType::Delegate,
        ActionType::Authorize,
        ActionType::Spend,
        ActionType::Commit,
        ActionType::Actuate,
        ActionType::Unclassified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Read => "read",
            ActionType::Derive => "derive",
            ActionType::Write => "write",
            ActionType::Delegate => "delegate",
            ActionType::Authorize => "authorize",
            ActionType::Spend => "spend",
            ActionType::Commit => "commit",
            ActionType::Actuate => "actuate",
            ActionType::Unclassified => "unclassified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `side_effect_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEffectClass {
    None,
    ExternalRead,
    ExternalWrite,
    Financial,
    Physical,
}

impl SideEffectClass {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(SideEffectClass::None),
            "external_read" => Some(SideEffectClass::ExternalRead),
            "external_write" => Some(SideEffectClass::ExternalWrite),
            "financial" => Some(SideEffectClass::Financial),
            "physical" => Some(SideEffectClass::Physical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SideEffectClass::None => "none",
            SideEffectClass::ExternalRead => "external_read",
            SideEffectClass::ExternalWrite => "external_write",
            SideEffectClass::Financial => "financial",
            SideEffectClass::Physical => "physical",
        }
    }
}

/// `reversibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reversibility {
    Full,
    Compensatable,
    Irreversible,
    Unknown,
}

impl Reversibility {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Reversibility::Full),
            "compensatable" => Some(Reversibility::Compensatable),
            "irreversible" => Some(Reversibility::Irreversible),
            "unknown" => Some(Reversibility::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reversibility::Full => "full",
            Reversibility::Compensatable => "compensatable",
            Reversibility::Irreversible => "irreversible",
            Reversibility::Unknown => "unknown",
        }
    }
}

/// `verdict`, in Pipelock's normalized vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block,
    Warn,
    Ask,
    Strip,
    Forward,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Verdict::Allow),
            "block" => Some(Verdict::Block),
            "warn" => Some(Verdict::Warn),
            "ask" => Some(Verdict::Ask),
            "strip" => Some(Verdict::Strip),
            "forward" => Some(Verdict::Forward),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Warn => "warn",
            Verdict::Ask => "ask",
            Verdict::Strip => "strip",
            Verdict::Forward => "forward",
        }
    }
}

/// One action record. Strings are free text; empty optional strings and lists are omitted
/// (Go `omitempty`), `delegation_chain` is always written (`null` when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub action_id: String,
    pub action_type: ActionType,
    /// Already in Go `RFC3339Nano` UTC form: build it with [`super::time::rfc3339_nano`].
    pub timestamp: String,
    pub principal: String,
    pub actor: String,
    pub delegation_chain: Vec<String>,
    pub target: String,
    pub intent: String,
    pub data_classes_in: Vec<String>,
    pub data_classes_out: Vec<String>,
    pub side_effect_class: SideEffectClass,
    pub reversibility: Reversibility,
    pub policy_hash: String,
    pub verdict: Verdict,
    pub transport: String,
    pub method: String,
    pub layer: String,
    pub pattern: String,
    pub severity: String,
    pub request_id: String,
    /// Set by [`super::chain::Chain`]: `"genesis"` or the previous receipt's hash (lowercase hex).
    pub chain_prev_hash: String,
    /// Set by [`super::chain::Chain`].
    pub chain_seq: u64,
}

impl ActionRecord {
    /// The bytes Go's `json.Marshal(ActionRecord)` prints for this record.
    pub fn canonical_json(&self) -> String {
        let mut out = String::with_capacity(512);
        let mut o = Obj::begin(&mut out);
        o.u64("version", 1);
        o.str("action_id", &self.action_id);
        o.str("action_type", self.action_type.as_str());
        o.str("timestamp", &self.timestamp);
        o.str("principal", &self.principal);
        o.str("actor", &self.actor);
        o.str_list_or_null("delegation_chain", &self.delegation_chain);
        o.str("target", &self.target);
        o.str_omitempty("intent", &self.intent);
        o.str_list_omitempty("data_classes_in", &self.data_classes_in);
        o.str_list_omitempty("data_classes_out", &self.data_classes_out);
        o.str("side_effect_class", self.side_effect_class.as_str());
        o.str("reversibility", self.reversibility.as_str());
        o.str("policy_hash", &self.policy_hash);
        o.str("verdict", self.verdict.as_str());
        o.str("transport", &self.transport);
        o.str_omitempty("method", &self.method);
        o.str_omitempty("layer", &self.layer);
        o.str_omitempty("pattern", &self.pattern);
        o.str_omitempty("severity", &self.severity);
        o.str_omitempty("request_id", &self.request_id);
        o.str("chain_prev_hash", &self.chain_prev_hash);
        o.u64("chain_seq", self.chain_seq);
        o.end();
        out
    }

    /// The 32 bytes that get signed: SHA-256 of the canonical record.
    pub fn signing_digest(&self) -> [u8; 32] {
        signing_digest_of(&self.canonical_json())
    }
}

/// [`ActionRecord::signing_digest`] of a record already serialised (its canonical JSON).
pub fn signing_digest_of(record_json: &str) -> [u8; 32] {
    Sha256::digest(record_json.as_bytes()).into()
}

/// [`Receipt::hash_hex`] of a receipt already serialised (its canonical JSON): the next
/// receipt's `chain_prev_hash`.
pub fn receipt_hash_hex(receipt_json: &str) -> String {
    hex_text::lower(&Sha256::digest(receipt_json.as_bytes()))
}

/// A signed receipt (ActionReceipt v1 envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub record: ActionRecord,
    pub signature: [u8; 64],
    pub signer_key: [u8; 32],
}

impl Receipt {
    /// The receipt as one canonical JSON line (no newline): what the sink writes and what the
    /// next receipt's `chain_prev_hash` hashes.
    pub fn canonical_json(&self) -> String {
        envelope_json(&self.record.canonical_json(), &self.signature, &self.signer_key)
    }

    /// Lowercase hex SHA-256 of [`Self::canonical_json`].
    pub fn hash_hex(&self) -> String {
        receipt_hash_hex(&self.canonical_json())
    }
}

/// `{"version":1,"action_record":…,"signature":"ed25519:…","signer_key":"…"}`.
pub fn envelope_json(record_json: &str, signature: &[u8; 64], signer_key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(record_json.len() + 256);
    let mut o = Obj::begin(&mut out);
    o.u64("version", 1);
    o.raw("action_record", record_json);
    let mut sig = String::with_capacity(8 + 128);
    sig.push_str("ed25519:");
    sig.push_str(&hex_text::lower(signature));
    write_str(o.key("signature"), &sig);
    o.str("signer_key", &hex_text::lower(signer_key));
    o.end();
    out
}
