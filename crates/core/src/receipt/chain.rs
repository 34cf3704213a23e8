//! One hash chain per writer stream: `chain_seq` counts up from 0, `chain_prev_hash` is
//! `"genesis"` for seq 0 and otherwise the lowercase hex SHA-256 of the previous receipt's
//! canonical bytes.
//!
//! Naming a predecessor (restart or a second writer): every chain we write starts with a
//! **chain-open receipt** (seq 0, `"genesis"`) built by [`opening_record`]. It uses only fields
//! from the older compatible set, so any v1 verifier accepts it:
//! - `target` = `warden:chain/<chain id>` (binds the chain id, which otherwise travels only in the
//!   sink's metadata and file name, into signed bytes);
//! - `method` = `warden/chain_open`, `layer` = `receipt_chain`, `pattern` = `chain_open`;
//! - `intent` = `chain=<id>` alone for a fresh start, or
//!   `chain=<id> prior_chain=<id> prior_seq=<n> prior_tail=<64 hex>` when the writer knows the
//!   tail of the chain it continues (the hash of that chain's last receipt, which an auditor can
//!   recompute from the predecessor file: see [`Predecessor::parse_intent`]).
//!
//! We do not use Pipelock's `key_transition` / `session_control` (newer fields, and they change
//! how seq 0 is verified); the predecessor link is an assertion signed by the new chain's key.

use super::record::{
    envelope_json, receipt_hash_hex, signing_digest_of, ActionRecord, ActionType, Receipt, Reversibility, SideEffectClass,
    Verdict,
};
use super::sign::Signer;

/// The literal anchor of receipt 0.
pub const GENESIS: &str = "genesis";
/// `method` of a chain-open receipt.
pub const CHAIN_OPEN_METHOD: &str = "warden/chain_open";
/// `target` prefix of a chain-open receipt.
pub const CHAIN_TARGET_PREFIX: &str = "warden:chain/";
/// `principal` and `actor` of the writer's own receipts (chain-open, drop notice, checkpoint).
pub const WRITER_PRINCIPAL: &str = "mcp-warden";
/// `layer` of the writer's own receipts; no exchange record carries it.
pub const RECEIPT_CHAIN_LAYER: &str = "receipt_chain";

/// The tail of a chain that a new chain continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predecessor {
    pub chain_id: String,
    /// `chain_seq` of its last receipt.
    pub last_seq: u64,
    /// Hex SHA-256 of its last receipt.
    pub tail_hash: String,
}

impl Predecessor {
    /// `<chain id> <last seq> <tail hash>`: how a writer hands its tail to its successor (e.g. in
    /// Envoy shared data, which outlives a VM reload but not the process).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.chain_id, self.last_seq, self.tail_hash)
    }

    pub fn decode(text: &str) -> Option<Predecessor> {
        let mut parts = text.split(' ');
        let (id, seq, hash) = (parts.next()?, parts.next()?, parts.next()?);
        let hex64 = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if parts.next().is_some() || id.is_empty() || !hex64 {
            return None;
        }
        Some(Predecessor { chain_id: id.to_string(), last_seq: seq.parse().ok()?, tail_hash: hash.to_string() })
    }

    /// Reads `prior_chain`/`prior_seq`/`prior_tail` back out of a chain-open `intent`.
    pub fn parse_intent(intent: &str) -> Option<Predecessor> {
        let mut chain_id = None;
        let mut last_seq = None;
        let mut tail_hash = None;
        for part in intent.split(' ') {
            match part.split_once('=') {
                Some(("prior_chain", v)) => chain_id = Some(v.to_string()),
                Some(("prior_seq", v)) => last_seq = v.parse().ok(),
                Some(("prior_tail", v)) => tail_hash = Some(v.to_string()),
                _ => {}
            }
        }
        Some(Predecessor { chain_id: chain_id?, last_seq: last_seq?, tail_hash: tail_hash? })
    }
}

/// Chain-open record for `chain_id`: see the module doc. `chain_id` should contain no spaces.
pub fn opening_record(
    chain_id: &str,
    predecessor: Option<&Predecessor>,
    timestamp: String,
    principal: &str,
    policy_hash: &str,
) -> ActionRecord {
    let intent = match predecessor {
        None => format!("chain={chain_id}"),
        Some(p) => format!("chain={chain_id} prior_chain={} prior_seq={} prior_tail={}", p.chain_id, p.last_seq, p.tail_hash),
    };
    let mut record = writer_record(
        chain_id,
        WriterReceipt { method: CHAIN_OPEN_METHOD, pattern: "chain_open", severity: "" },
        intent,
        timestamp,
        policy_hash,
    );
    record.action_id = format!("{chain_id}-open");
    record.principal = principal.to_string();
    record.verdict = Verdict::Allow;
    record
}

/// What tells the writer's own receipts apart: method, pattern, severity.
pub struct WriterReceipt {
    pub method: &'static str,
    pub pattern: &'static str,
    pub severity: &'static str,
}

/// A receipt the writer makes about its own chain (chain-open, drop notice, checkpoint): target
/// `warden:chain/<id>`, principal and actor `mcp-warden`, layer `receipt_chain`, verdict `warn`;
/// the chain fields are filled by the chain, the action id by the writer.
pub fn writer_record(chain_id: &str, kind: WriterReceipt, intent: String, timestamp: String, policy_hash: &str) -> ActionRecord {
    ActionRecord {
        action_id: String::new(),
        action_type: ActionType::Unclassified,
        timestamp,
        principal: WRITER_PRINCIPAL.to_string(),
        actor: WRITER_PRINCIPAL.to_string(),
        delegation_chain: Vec::new(),
        target: format!("{CHAIN_TARGET_PREFIX}{chain_id}"),
        intent,
        data_classes_in: Vec::new(),
        data_classes_out: Vec::new(),
        side_effect_class: SideEffectClass::None,
        reversibility: Reversibility::Full,
        policy_hash: policy_hash.to_string(),
        verdict: Verdict::Warn,
        transport: "mcp_http".to_string(),
        method: kind.method.to_string(),
        layer: RECEIPT_CHAIN_LAYER.to_string(),
        pattern: kind.pattern.to_string(),
        severity: kind.severity.to_string(),
        request_id: String::new(),
        chain_prev_hash: String::new(),
        chain_seq: 0,
    }
}

/// `method` of a drop notice: the writer had to drop exchanges (export buffer full) and says how
/// many before it chains anything else.
pub const DROPPED_METHOD: &str = "warden/dropped";

/// What a drop notice reports: `count` exchanges were not receipted after receipt `since_seq`
/// (the last one chained before the first drop; the chain-open when the chain had none yet), the
/// first and last of them having arrived at `first_nanos` / `last_nanos` (Unix nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropNotice {
    pub count: u64,
    pub since_seq: u64,
    pub first_nanos: u64,
    pub last_nanos: u64,
    /// How many of `count` were dropped because they had waited in the queue too long (the writer
    /// was behind: overload) rather than for a full export buffer.
    pub lagged: u64,
}

impl DropNotice {
    /// The signed `intent`: `dropped=<n> since_seq=<k> first=<RFC 3339> last=<RFC 3339>
    /// reason=<buffer_full|queue_lag|buffer_full,queue_lag>`, plus ` lagged=<m>` when some were
    /// dropped for queue lag.
    pub fn intent(&self) -> String {
        let reason = match (self.lagged, self.count.saturating_sub(self.lagged)) {
            (0, _) => "buffer_full",
            (_, 0) => "queue_lag",
            _ => "buffer_full,queue_lag",
        };
        let mut intent = format!(
            "dropped={} since_seq={} first={} last={} reason={reason}",
            self.count,
            self.since_seq,
            super::time::rfc3339_nano(self.first_nanos),
            super::time::rfc3339_nano(self.last_nanos)
        );
        if self.lagged > 0 {
            intent.push_str(&format!(" lagged={}", self.lagged));
        }
        intent
    }

    /// `(count, since_seq)` read back out of a drop notice's `intent`.
    pub fn parse_intent(intent: &str) -> Option<(u64, u64)> {
        let mut count = None;
        let mut since = None;
        for part in intent.split(' ') {
            match part.split_once('=') {
                Some(("dropped", v)) => count = v.parse().ok(),
                Some(("since_seq", v)) => since = v.parse().ok(),
                _ => {}
            }
        }
        Some((count?, since?))
    }
}

/// Drop-notice record for `chain_id` (only fields of the older compatible set, like the
/// chain-open): `target` `warden:chain/<id>`, `method` [`DROPPED_METHOD`], `verdict` `warn`,
/// `action_type` `unclassified`, `side_effect_class` `none`, `layer` `receipt_chain`, `pattern`
/// `dropped`, `severity` `high`, `intent` from [`DropNotice::intent`].
pub fn drop_notice_record(chain_id: &str, notice: &DropNotice, timestamp: String, policy_hash: &str) -> ActionRecord {
    let kind = WriterReceipt { method: DROPPED_METHOD, pattern: "dropped", severity: "high" };
    writer_record(chain_id, kind, notice.intent(), timestamp, policy_hash)
}

/// A writer's chain position. Not `Clone`: two copies would fork the chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Chain {
    chain_id: String,
    next_seq: u64,
    prev_hash: String,
}

impl Chain {
    /// A fresh chain; its first receipt is anchored at `"genesis"`.
    pub fn new(chain_id: impl Into<String>) -> Self {
        Chain { chain_id: chain_id.into(), next_seq: 0, prev_hash: GENESIS.to_string() }
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// `chain_seq` the next receipt will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// `"genesis"` before the first receipt, then the hash of the last one.
    pub fn tail_hash(&self) -> &str {
        &self.prev_hash
    }

    /// The tail hash as bytes, once there is a tail (`None` at `"genesis"`).
    pub fn tail_digest(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.prev_hash, &mut out).ok().map(|_| out)
    }

    /// The tail as a [`Predecessor`] for the chain that follows this one, once there is a tail.
    pub fn as_predecessor(&self) -> Option<Predecessor> {
        let last_seq = self.next_seq.checked_sub(1)?;
        Some(Predecessor { chain_id: self.chain_id.clone(), last_seq, tail_hash: self.prev_hash.clone() })
    }

    /// `record` with the chain fields the next [`Self::append`] would give it (nothing advances).
    pub fn preview(&self, mut record: ActionRecord) -> ActionRecord {
        record.chain_seq = self.next_seq;
        record.chain_prev_hash = self.prev_hash.clone();
        record
    }

    /// Sets `record`'s chain fields, signs it and advances the chain.
    pub fn append(&mut self, record: ActionRecord, signer: &dyn Signer) -> Receipt {
        let record = self.preview(record);
        let record_json = record.canonical_json();
        self.append_previewed(record, &record_json, signer).0
    }

    /// Signs `record`, which [`Chain::preview`] of this chain in its current state gave its chain
    /// fields and whose canonical JSON is `record_json`, and advances the chain. Returns the
    /// receipt and its canonical JSON: the record is serialised once for the signature, the
    /// chain hash and the export.
    pub fn append_previewed(&mut self, record: ActionRecord, record_json: &str, signer: &dyn Signer) -> (Receipt, String) {
        let signature = signer.sign_digest(&signing_digest_of(record_json));
        let signer_key = signer.public_key();
        let json = envelope_json(record_json, &signature, &signer_key);
        self.prev_hash = receipt_hash_hex(&json);
        self.next_seq = self.next_seq.saturating_add(1);
        (Receipt { record, signature, signer_key }, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::sign::Ed25519Signer;

    #[test]
    fn links_each_receipt_to_the_hash_of_the_previous_one() {
        let signer = Ed25519Signer::from_seed([3u8; 32]);
        let mut chain = Chain::new("pod-a.w0.1");
        assert_eq!(chain.as_predecessor(), None);
        let r0 = chain.append(opening_record("pod-a.w0.1", None, "2026-01-01T00:00:00Z".into(), "warden", "p"), &signer);
        let r1 = chain.append(opening_record("x", None, "2026-01-01T00:00:01Z".into(), "warden", "p"), &signer);
        assert_eq!((r0.record.chain_seq, r0.record.chain_prev_hash.as_str()), (0, GENESIS));
        assert_eq!(r1.record.chain_seq, 1);
        assert_eq!(r1.record.chain_prev_hash, r0.hash_hex());
        assert_eq!(chain.tail_hash(), r1.hash_hex());
        let p = chain.as_predecessor().unwrap();
        assert_eq!((p.chain_id.as_str(), p.last_seq), ("pod-a.w0.1", 1));
    }

    #[test]
    fn opening_intent_round_trips_the_predecessor() {
        let p = Predecessor { chain_id: "old".into(), last_seq: 41, tail_hash: "ab".repeat(32) };
        let rec = opening_record("new", Some(&p), "2026-01-01T00:00:00Z".into(), "warden", "p");
        assert_eq!(Predecessor::parse_intent(&rec.intent), Some(p));
        let fresh = opening_record("new", None, "2026-01-01T00:00:00Z".into(), "warden", "p");
        assert_eq!(fresh.intent, "chain=new");
        assert_eq!(Predecessor::parse_intent(&fresh.intent), None);
    }

    #[test]
    fn tail_hand_over_round_trips_and_rejects_junk() {
        let p = Predecessor { chain_id: "node-1.17".into(), last_seq: 9, tail_hash: "0f".repeat(32) };
        assert_eq!(Predecessor::decode(&p.encode()), Some(p));
        for junk in ["", "a 1", "a x 00", "a 1 zz", &format!("a 1 {} extra", "0f".repeat(32))] {
            assert_eq!(Predecessor::decode(junk), None, "{junk}");
        }
    }
}
