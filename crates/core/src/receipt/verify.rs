//! Offline verification of ActionReceipt v1 receipts and chains, with the checks and order of
//! pipelock-verify (which mirrors Go's `Validate`): envelope and record version, shape, required
//! fields, timestamp, signature format, signer key, then the Ed25519 signature over
//! SHA-256(canonical record). A chain adds: seq 0..n without gaps, `"genesis"` first, each
//! `chain_prev_hash` = SHA-256 of the previous receipt's canonical bytes, one signer throughout.
//! Every failure names the receipt (line, `chain_seq`, `action_id`) and the reason.

use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical;
use super::chain::{
    DropNotice, Predecessor, CHAIN_OPEN_METHOD, CHAIN_TARGET_PREFIX, DROPPED_METHOD, GENESIS, RECEIPT_CHAIN_LAYER,
    WRITER_PRINCIPAL,
};
use super::checkpoint::{CHECKPOINT_METHOD, CHECKPOINT_PATTERN};
use super::record::ActionType;
use super::sign::verify_digest;
use super::strict::read_envelope;
use super::time::is_valid_rfc3339;

/// Why one receipt is not valid. All of these are the receipt's fault (tampering, a buggy
/// producer, or the wrong key), never the verifier's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not JSON, a duplicate key, or not an object.
    Malformed(String),
    UnsupportedVersion {
        what: &'static str,
        found: String,
    },
    /// Unknown field, wrong type, or an unsupported newer construct.
    Shape(String),
    /// A required field is missing or empty.
    Missing(&'static str),
    InvalidActionType(String),
    InvalidTimestamp(String),
    SignatureFormat(String),
    SignerKeyFormat(String),
    /// `signer_key` is not the pinned (or the chain's first) key.
    WrongSigner {
        found: String,
        expected: String,
    },
    /// The Ed25519 signature does not match the record: the record or signature was changed.
    BadSignature,
}

impl fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptError::Malformed(e) => write!(f, "malformed receipt: {e}"),
            ReceiptError::UnsupportedVersion { what, found } => write!(f, "unsupported {what} version {found} (expected 1)"),
            ReceiptError::Shape(e) => write!(f, "invalid shape: {e}"),
            ReceiptError::Missing(field) => write!(f, "{field} is required"),
            ReceiptError::InvalidActionType(t) => write!(f, "invalid action_type {t:?}"),
            ReceiptError::InvalidTimestamp(t) => write!(f, "invalid RFC 3339 timestamp {t:?}"),
            ReceiptError::SignatureFormat(e) => write!(f, "invalid signature: {e}"),
            ReceiptError::SignerKeyFormat(e) => write!(f, "invalid signer_key: {e}"),
            ReceiptError::WrongSigner { found, expected } => {
                write!(f, "signer_key {found} is not the expected key {expected}")
            }
            ReceiptError::BadSignature => {
                write!(f, "signature does not verify: the action_record or the signature was altered")
            }
        }
    }
}

impl std::error::Error for ReceiptError {}

/// A receipt whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub action_id: String,
    pub chain_seq: u64,
    pub chain_prev_hash: String,
    pub signer_key: String,
    pub timestamp: String,
    /// Lowercase hex SHA-256 of the canonical receipt: the next receipt's `chain_prev_hash`.
    pub hash: String,
    /// Chain id and predecessor named by a warden chain-open receipt (see `chain.rs`).
    pub chain_open: Option<ChainOpen>,
    /// True when the record carries `key_transition` (Pipelock key rotation).
    pub key_transition: bool,
    /// The signed `intent` when the record is the writer's checkpoint (see `checkpoint.rs`).
    pub checkpoint_intent: Option<String>,
    /// The writer's drop notice: `Some((dropped, since_seq))`, `Some(None)` when its intent does
    /// not say.
    pub drop_notice: Option<Option<(u64, u64)>>,
}

/// What a chain-open receipt claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOpen {
    pub chain_id: String,
    pub predecessor: Option<Predecessor>,
}

/// Verifies one receipt (bare JSON or a flight-recorder entry). `pinned`: the trusted public key.
pub fn verify_receipt(text: &str, pinned: Option<&[u8; 32]>) -> Result<VerifiedReceipt, ReceiptError> {
    match read_envelope(text).map_err(ReceiptError::Malformed)? {
        Some(env) => verify_envelope(&env.members, env.ext_raw.as_deref(), pinned.map(hex::encode).as_deref()),
        None => Err(ReceiptError::Malformed("flight-recorder entry does not carry an action receipt".into())),
    }
}

fn get_str<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn verify_envelope(
    env: &Map<String, Value>,
    ext_raw: Option<&str>,
    expected_key: Option<&str>,
) -> Result<VerifiedReceipt, ReceiptError> {
    let version = env.get("version").cloned().unwrap_or(Value::Null);
    if version.as_u64() != Some(1) {
        return Err(ReceiptError::UnsupportedVersion { what: "receipt", found: version.to_string() });
    }
    let Some(Value::Object(record)) = env.get("action_record") else {
        return Err(ReceiptError::Missing("action_record"));
    };
    if let Some(unknown) =
        env.keys().find(|k| !matches!(k.as_str(), "version" | "action_record" | "signature" | "signer_key" | "ext"))
    {
        return Err(ReceiptError::Shape(format!("receipt carries unknown field {unknown:?}")));
    }
    for k in ["signature", "signer_key"] {
        if env.get(k).is_some_and(|v| !v.is_string()) {
            return Err(ReceiptError::Shape(format!("{k} must be a string")));
        }
    }
    let record_json = canonical::action_record(record).map_err(ReceiptError::Shape)?;
    let record_version = record.get("version").cloned().unwrap_or(Value::Null);
    if record_version.as_u64() != Some(1) {
        return Err(ReceiptError::UnsupportedVersion { what: "action_record", found: record_version.to_string() });
    }
    if get_str(record, "action_id").is_empty() {
        return Err(ReceiptError::Missing("action_id"));
    }
    let action_type = get_str(record, "action_type");
    if ActionType::parse(action_type).is_none() {
        return Err(ReceiptError::InvalidActionType(action_type.to_string()));
    }
    let timestamp = get_str(record, "timestamp");
    if timestamp.is_empty() {
        return Err(ReceiptError::Missing("timestamp"));
    }
    if !is_valid_rfc3339(timestamp) {
        return Err(ReceiptError::InvalidTimestamp(timestamp.to_string()));
    }
    for field in ["target", "verdict", "transport"] {
        if get_str(record, field).is_empty() {
            return Err(ReceiptError::Missing(field));
        }
    }
    let signature_text = get_str(env, "signature");
    if signature_text.is_empty() {
        return Err(ReceiptError::Missing("signature"));
    }
    let sig_hex = signature_text
        .strip_prefix("ed25519:")
        .ok_or_else(|| ReceiptError::SignatureFormat("missing the ed25519: prefix".into()))?;
    let signer_key = get_str(env, "signer_key");
    if signer_key.is_empty() {
        return Err(ReceiptError::Missing("signer_key"));
    }
    if let Some(expected) = expected_key {
        if signer_key != expected {
            return Err(ReceiptError::WrongSigner { found: signer_key.into(), expected: expected.into() });
        }
    }
    // Lowercase, as the format writes it: the chain hash covers the text as written, so an
    // upper-cased copy would verify with another root hash.
    if sig_hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReceiptError::SignatureFormat("upper-case hex (the format writes lowercase)".into()));
    }
    if signer_key.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReceiptError::SignerKeyFormat("upper-case hex (the format writes lowercase)".into()));
    }
    let mut signature = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut signature)
        .map_err(|_| ReceiptError::SignatureFormat("not 128 hex characters (64 bytes)".into()))?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(signer_key, &mut key)
        .map_err(|_| ReceiptError::SignerKeyFormat("not 64 hex characters (32 bytes)".into()))?;
    let digest: [u8; 32] = Sha256::digest(record_json.as_bytes()).into();
    if !verify_digest(&key, &digest, &signature) {
        return Err(ReceiptError::BadSignature);
    }
    let receipt_json = canonical::receipt(1, &record_json, signature_text, signer_key, ext_raw);
    Ok(VerifiedReceipt {
        action_id: get_str(record, "action_id").to_string(),
        chain_seq: record.get("chain_seq").and_then(Value::as_u64).unwrap_or_default(),
        chain_prev_hash: get_str(record, "chain_prev_hash").to_string(),
        signer_key: signer_key.to_string(),
        timestamp: timestamp.to_string(),
        hash: hex::encode(Sha256::digest(receipt_json.as_bytes())),
        chain_open: chain_open(record),
        key_transition: record.get("key_transition").is_some_and(|v| !v.is_null()),
        checkpoint_intent: checkpoint_intent(record),
        drop_notice: drop_notice(record),
    })
}

/// `(dropped, since_seq)` of the writer's own drop notice (its method, principal and layer).
fn drop_notice(record: &Map<String, Value>) -> Option<Option<(u64, u64)>> {
    let own = get_str(record, "method") == DROPPED_METHOD
        && get_str(record, "principal") == WRITER_PRINCIPAL
        && get_str(record, "layer") == RECEIPT_CHAIN_LAYER;
    own.then(|| DropNotice::parse_intent(get_str(record, "intent")))
}

/// A checkpoint is the writer's own receipt: its method, and the principal, layer and pattern no
/// exchange record carries (an exchange's layer is `mcp_request` or a finding's, its principal
/// the caller's); a client that sends the method `warden/checkpoint` gets an ordinary receipt.
fn checkpoint_intent(record: &Map<String, Value>) -> Option<String> {
    let own = get_str(record, "method") == CHECKPOINT_METHOD
        && get_str(record, "principal") == WRITER_PRINCIPAL
        && get_str(record, "layer") == RECEIPT_CHAIN_LAYER
        && get_str(record, "pattern") == CHECKPOINT_PATTERN;
    own.then(|| get_str(record, "intent").to_string())
}

fn chain_open(record: &Map<String, Value>) -> Option<ChainOpen> {
    if get_str(record, "method") != CHAIN_OPEN_METHOD {
        return None;
    }
    let chain_id = get_str(record, "target").strip_prefix(CHAIN_TARGET_PREFIX)?.to_string();
    Some(ChainOpen { chain_id, predecessor: Predecessor::parse_intent(get_str(record, "intent")) })
}

/// Why a chain is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReason {
    NoReceipts,
    Receipt(ReceiptError),
    /// `chain_seq` is not the previous one plus one (or the first is not 0).
    SeqGap {
        expected: u64,
    },
    /// The first receipt is not anchored at `"genesis"`.
    NotGenesis,
    /// `chain_prev_hash` is not the hash of the previous receipt: one was edited, removed,
    /// reordered or replayed.
    PrevHashMismatch {
        expected: String,
    },
    /// Key rotation (`key_transition`) needs Pipelock's endorsement files; not supported here.
    RotationUnsupported,
    /// A drop notice whose intent does not say how many it dropped since which earlier receipt.
    BadDropNotice,
}

/// The first bad receipt of a chain and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFailure {
    /// 1-based line in the JSONL text (0 when the chain is empty).
    pub line: usize,
    /// Declared `chain_seq`, when it could be read.
    pub seq: Option<u64>,
    pub action_id: Option<String>,
    pub reason: ChainReason,
}

impl fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == ChainReason::NoReceipts {
            return write!(f, "no receipts in the chain");
        }
        write!(f, "receipt at line {}", self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (chain_seq {seq}")?;
            if let Some(id) = &self.action_id {
                write!(f, ", action_id {id}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": ")?;
        match &self.reason {
            ChainReason::NoReceipts => Ok(()),
            ChainReason::Receipt(e) => write!(f, "{e}"),
            ChainReason::SeqGap { expected } => write!(f, "chain_seq gap: expected {expected}"),
            ChainReason::NotGenesis => write!(f, "first receipt's chain_prev_hash is not \"genesis\""),
            ChainReason::PrevHashMismatch { expected } => write!(
                f,
                "chain_prev_hash does not match the previous receipt's hash {expected}: a receipt was edited, removed, reordered or replayed"
            ),
            ChainReason::RotationUnsupported => write!(f, "key_transition (key rotation) is not supported by this verifier"),
            ChainReason::BadDropNotice => {
                write!(f, "a drop notice that does not say how many exchanges it dropped after which earlier receipt")
            }
        }
    }
}

impl std::error::Error for ChainFailure {}

/// A valid chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub count: usize,
    pub final_seq: u64,
    /// Hash of the last receipt (the transcript root an auditor can publish or pin).
    pub root_hash: String,
    pub signer_key: String,
    pub chain_open: Option<ChainOpen>,
    /// Exchanges the writer's signed drop notices say it dropped, and how many notices.
    pub dropped: u64,
    pub drop_notices: usize,
    /// Lines that are flight-recorder entries of another type (not receipts).
    pub skipped: usize,
}

/// Verifies a JSONL chain (bare receipts or flight-recorder entries, one per line; blank lines
/// and non-receipt recorder entries skipped). Without `pinned`, the first receipt's key is pinned.
pub fn verify_chain(jsonl: &str, pinned: Option<&[u8; 32]>) -> Result<ChainSummary, ChainFailure> {
    verify_chain_visiting(jsonl, pinned, &mut |_| {})
}

/// [`verify_chain`], handing each receipt to `visit` once it is verified and linked, in chain
/// order: what a further check (the checkpoints' digest batches) may rely on.
pub fn verify_chain_visiting(
    jsonl: &str,
    pinned: Option<&[u8; 32]>,
    visit: &mut dyn FnMut(&VerifiedReceipt),
) -> Result<ChainSummary, ChainFailure> {
    let mut expected_key = pinned.map(hex::encode);
    let mut prev: Option<VerifiedReceipt> = None;
    let mut first_open = None;
    let mut count = 0usize;
    let (mut dropped, mut drop_notices, mut skipped) = (0u64, 0usize, 0usize);
    for (i, line) in jsonl.lines().enumerate() {
        let line_no = i + 1;
        let fail = |seq, action_id, reason| ChainFailure { line: line_no, seq, action_id, reason };
        if line.trim().is_empty() {
            continue;
        }
        let env = match read_envelope(line) {
            Ok(Some(env)) => env,
            Ok(None) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(fail(None, None, ChainReason::Receipt(ReceiptError::Malformed(e)))),
        };
        let record = env.members.get("action_record").and_then(Value::as_object);
        let seq = record.and_then(|r| r.get("chain_seq")).and_then(Value::as_u64);
        let action_id = record.map(|r| get_str(r, "action_id").to_string());
        if expected_key.is_none() {
            expected_key = Some(get_str(&env.members, "signer_key").to_ascii_lowercase());
        }
        let receipt = verify_envelope(&env.members, env.ext_raw.as_deref(), expected_key.as_deref())
            .map_err(|e| fail(seq, action_id.clone(), ChainReason::Receipt(e)))?;
        if receipt.key_transition {
            return Err(fail(seq, action_id, ChainReason::RotationUnsupported));
        }
        let expected_seq = prev.as_ref().map_or(0, |p| p.chain_seq.saturating_add(1));
        if receipt.chain_seq != expected_seq {
            return Err(fail(seq, action_id, ChainReason::SeqGap { expected: expected_seq }));
        }
        match &prev {
            None if receipt.chain_prev_hash != GENESIS => return Err(fail(seq, action_id, ChainReason::NotGenesis)),
            Some(p) if receipt.chain_prev_hash != p.hash => {
                return Err(fail(seq, action_id, ChainReason::PrevHashMismatch { expected: p.hash.clone() }))
            }
            _ => {}
        }
        if prev.is_none() {
            first_open = receipt.chain_open.clone();
        }
        if let Some(notice) = receipt.drop_notice {
            // A notice counts what was lost since a receipt before it.
            match notice {
                Some((n, since)) if since < receipt.chain_seq => {
                    dropped = dropped.saturating_add(n);
                    drop_notices += 1;
                }
                _ => return Err(fail(seq, action_id, ChainReason::BadDropNotice)),
            }
        }
        count += 1;
        visit(&receipt);
        prev = Some(receipt);
    }
    match prev {
        Some(last) => Ok(ChainSummary {
            count,
            final_seq: last.chain_seq,
            root_hash: last.hash,
            signer_key: last.signer_key,
            chain_open: first_open,
            dropped,
            drop_notices,
            skipped,
        }),
        None => Err(ChainFailure { line: 0, seq: None, action_id: None, reason: ChainReason::NoReceipts }),
    }
}
