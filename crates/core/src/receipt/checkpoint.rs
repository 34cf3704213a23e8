//! Signed checkpoints: how every exchange stays covered by a signature when the writer cannot
//! sign each one (docs/receipts.md, "Checkpointed digest batches").
//!
//! Under overload the writer stops signing exchange by exchange. Each exchange's action record
//! (chain fields empty) is exported unsigned as a **digest entry** (`warden.kind=digest`,
//! `warden.batch`, `warden.index`; the sink files them in `<chain>.digests.jsonl`), and folded
//! into the batch's running root:
//!
//! ```text
//! root_0 = anchor = SHA-256 of the last receipt chained before the batch opened (the chain tail)
//! root_i = SHA-256(root_{i-1} || SHA-256(canonical record_i))
//! ```
//!
//! The batch closes with one ordinary signed receipt in the chain, the **checkpoint**: method
//! [`CHECKPOINT_METHOD`], target `warden:chain/<id>`, verdict `warn`, intent
//! `batch=<n> count=<k> first=<RFC 3339> last=<RFC 3339> root=<64 hex> anchor=<64 hex>`.
//! Checkpoints are v1 receipts, so `pipelock-verify` accepts the chain as before;
//! [`verify_batches`] verifies the chain and recomputes every batch from its digest entries: a record
//! changed, removed, added, reordered or moved to another batch fails, and so does a batch whose
//! anchor is not a receipt of the chain before its checkpoint.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::chain::{writer_record, WriterReceipt};
use super::record::ActionRecord;
use super::time::rfc3339_nano;
use super::verify::{verify_chain_visiting, ChainFailure, ChainSummary, VerifiedReceipt};

/// `method` of a checkpoint receipt.
pub const CHECKPOINT_METHOD: &str = "warden/checkpoint";
/// `pattern` of a checkpoint receipt.
pub const CHECKPOINT_PATTERN: &str = "checkpoint";
/// `warden.kind` attribute value of a digest entry.
pub const DIGEST_KIND: &str = "digest";

/// One step of a batch's root: `SHA-256(root || SHA-256(record_json))`.
pub fn fold(root: &[u8; 32], record_json: &str) -> [u8; 32] {
    let digest: [u8; 32] = Sha256::digest(record_json.as_bytes()).into();
    let mut h = Sha256::new();
    h.update(root);
    h.update(digest);
    h.finalize().into()
}

/// An open batch of digest entries, in the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// 1, 2, … per chain: the `warden.batch` of its entries and the `batch=` of its checkpoint.
    pub number: u64,
    pub anchor: [u8; 32],
    pub root: [u8; 32],
    pub count: u64,
    /// Exchange times of the first and last entry (nanoseconds).
    pub first_nanos: u64,
    pub last_nanos: u64,
    /// When the writer opened it (its age closes it).
    pub opened_nanos: u64,
}

impl Batch {
    pub fn open(number: u64, anchor: [u8; 32], now_nanos: u64) -> Batch {
        Batch { number, anchor, root: anchor, count: 0, first_nanos: 0, last_nanos: 0, opened_nanos: now_nanos }
    }

    /// Folds one record in; returns its `warden.index`.
    pub fn push(&mut self, record_json: &str, exchange_nanos: u64) -> u64 {
        let index = self.count;
        self.root = fold(&self.root, record_json);
        if self.count == 0 {
            self.first_nanos = exchange_nanos;
        }
        self.first_nanos = self.first_nanos.min(exchange_nanos);
        self.last_nanos = self.last_nanos.max(exchange_nanos);
        self.count += 1;
        index
    }

    /// The checkpoint's signed `intent`.
    pub fn intent(&self) -> String {
        format!(
            "batch={} count={} first={} last={} root={} anchor={}",
            self.number,
            self.count,
            rfc3339_nano(self.first_nanos),
            rfc3339_nano(self.last_nanos),
            hex::encode(self.root),
            hex::encode(self.anchor)
        )
    }
}

/// The checkpoint receipt's record for a closed `batch` (chain fields filled by the chain).
pub fn checkpoint_record(chain_id: &str, batch: &Batch, timestamp: String, policy_hash: &str) -> ActionRecord {
    let kind = WriterReceipt { method: CHECKPOINT_METHOD, pattern: CHECKPOINT_PATTERN, severity: "info" };
    writer_record(chain_id, kind, batch.intent(), timestamp, policy_hash)
}

/// What a checkpoint's intent claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub batch: u64,
    pub count: u64,
    pub root: [u8; 32],
    pub anchor: [u8; 32],
}

impl Claim {
    /// `None` unless every field is there, once, well formed.
    pub fn parse_intent(intent: &str) -> Option<Claim> {
        let (mut batch, mut count, mut root, mut anchor, mut times) = (None, None, None, None, 0);
        for part in intent.split(' ') {
            let (k, v) = part.split_once('=')?;
            let hex32 = |v: &str| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(v, &mut out).ok().filter(|_| !v.bytes().any(|b| b.is_ascii_uppercase())).map(|_| out)
            };
            let slot_was_empty = match k {
                "batch" => batch.replace(v.parse::<u64>().ok()?).is_none(),
                "count" => count.replace(v.parse::<u64>().ok()?).is_none(),
                "root" => root.replace(hex32(v)?).is_none(),
                "anchor" => anchor.replace(hex32(v)?).is_none(),
                "first" | "last" => {
                    times += 1;
                    true
                }
                _ => return None,
            };
            if !slot_was_empty {
                return None;
            }
        }
        (times == 2).then_some(())?;
        Some(Claim { batch: batch?, count: count?, root: root?, anchor: anchor? })
    }
}

/// One line of `<chain>.digests.jsonl`, as the sink files it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestLine<'a> {
    batch: u64,
    index: u64,
    #[serde(borrow)]
    record: &'a RawValue,
}

/// The sink's line for a digest entry: `{"batch":n,"index":i,"record":<the record, verbatim>}`.
pub fn digest_line(batch: u64, index: u64, record_json: &str) -> String {
    format!("{{\"batch\":{batch},\"index\":{index},\"record\":{record_json}}}")
}

/// `(batch, index)` of a digest line, or `None` when it is not one.
pub fn digest_position(line: &str) -> Option<(u64, u64)> {
    serde_json::from_str::<DigestLine<'_>>(line).ok().map(|d| (d.batch, d.index))
}

/// What [`verify_batches`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub checkpoints: usize,
    /// Digest entries covered by a checkpoint's signature.
    pub exchanges: u64,
}

/// Why a digest file does not match the chain's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageError {
    /// Line `line` of the digest file is not a digest entry.
    BadDigestLine { line: usize },
    /// A checkpoint (after `receipt` receipts of the chain) whose intent does not parse.
    BadCheckpoint { receipt: usize },
    /// Two checkpoints name the same batch.
    DuplicateCheckpoint { batch: u64 },
    /// Entries of `batch` without a checkpoint: not covered by any signature.
    Uncovered { batch: u64, entries: u64 },
    /// The entries of `batch` are not exactly indexes 0..count, each once.
    Incomplete { batch: u64, expected: u64, found: u64 },
    /// The recomputed root differs from the signed one: an entry was changed, reordered or moved.
    RootMismatch { batch: u64 },
    /// The anchor is not the hash of a receipt before the checkpoint in the chain.
    AnchorNotInChain { batch: u64 },
}

impl std::fmt::Display for CoverageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoverageError::BadDigestLine { line } => write!(f, "digest line {line} is not a digest entry"),
            CoverageError::BadCheckpoint { receipt } => {
                write!(f, "the checkpoint after {receipt} receipts of the chain has an unreadable intent")
            }
            CoverageError::DuplicateCheckpoint { batch } => write!(f, "batch {batch} has two checkpoints"),
            CoverageError::Uncovered { batch, entries } => {
                write!(f, "batch {batch}: {entries} digest entries and no checkpoint (not covered by a signature)")
            }
            CoverageError::Incomplete { batch, expected, found } => {
                write!(f, "batch {batch}: the checkpoint covers {expected} entries, the file has {found} (indexes 0..{expected}, each once)")
            }
            CoverageError::RootMismatch { batch } => {
                write!(f, "batch {batch}: the entries do not fold to the signed root (changed, reordered or moved)")
            }
            CoverageError::AnchorNotInChain { batch } => {
                write!(f, "batch {batch}: its anchor is not a receipt of the chain before its checkpoint")
            }
        }
    }
}

impl std::error::Error for CoverageError {}

/// Why a chain and its digest file do not verify together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchFailure {
    /// The chain itself is not valid (signatures, links).
    Chain(ChainFailure),
    Coverage(CoverageError),
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchFailure::Chain(e) => write!(f, "{e}"),
            BatchFailure::Coverage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BatchFailure {}

/// What the chain's verified receipts say about checkpoints: every receipt's hash in order, and
/// the checkpoints' intents with how many receipts came before each.
#[derive(Debug, Default)]
pub struct ChainCheckpoints {
    hashes: Vec<[u8; 32]>,
    checkpoints: Vec<(usize, String)>,
}

impl ChainCheckpoints {
    /// Records one verified receipt (hand this to [`verify_chain_visiting`]).
    pub fn visit(&mut self, receipt: &VerifiedReceipt) {
        if let Some(intent) = &receipt.checkpoint_intent {
            self.checkpoints.push((self.hashes.len(), intent.clone()));
        }
        let mut hash = [0u8; 32];
        // The verifier computed it: always 64 lowercase hex.
        if hex::decode_to_slice(&receipt.hash, &mut hash).is_ok() {
            self.hashes.push(hash);
        }
    }

    /// The checkpoints in the chain (whose digest entries [`ChainCheckpoints::cover`] checks).
    pub fn count(&self) -> usize {
        self.checkpoints.len()
    }

    /// Checks `digests` (the sink's `<chain>.digests.jsonl`) against these checkpoints. Every
    /// digest entry must belong to a checkpointed batch whose entries fold, in index order from
    /// the anchor, to the signed root; every anchor must be a receipt before its checkpoint.
    pub fn cover(&self, digests: &str) -> Result<Coverage, CoverageError> {
        let mut batches: BTreeMap<u64, Vec<(u64, &str)>> = BTreeMap::new();
        for (i, line) in digests.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let d: DigestLine<'_> = serde_json::from_str(line).map_err(|_| CoverageError::BadDigestLine { line: i + 1 })?;
            batches.entry(d.batch).or_default().push((d.index, d.record.get()));
        }
        let mut checked = BTreeSet::new();
        let mut exchanges = 0u64;
        for (before, intent) in &self.checkpoints {
            let claim = Claim::parse_intent(intent).ok_or(CoverageError::BadCheckpoint { receipt: *before })?;
            if !checked.insert(claim.batch) {
                return Err(CoverageError::DuplicateCheckpoint { batch: claim.batch });
            }
            if !self.hashes.get(..*before).is_some_and(|earlier| earlier.contains(&claim.anchor)) {
                return Err(CoverageError::AnchorNotInChain { batch: claim.batch });
            }
            let mut entries = batches.remove(&claim.batch).unwrap_or_default();
            let found = entries.len() as u64;
            entries.sort_by_key(|(index, _)| *index);
            let in_order = entries.iter().enumerate().all(|(k, (index, _))| *index == k as u64);
            if found != claim.count || !in_order {
                return Err(CoverageError::Incomplete { batch: claim.batch, expected: claim.count, found });
            }
            let root = entries.iter().fold(claim.anchor, |root, (_, record)| fold(&root, record));
            if root != claim.root {
                return Err(CoverageError::RootMismatch { batch: claim.batch });
            }
            exchanges += claim.count;
        }
        if let Some((batch, entries)) = batches.into_iter().next() {
            return Err(CoverageError::Uncovered { batch, entries: entries.len() as u64 });
        }
        Ok(Coverage { checkpoints: checked.len(), exchanges })
    }
}

/// Verifies `chain` (its `<chain>.jsonl`: signatures and links, as `verify_chain` does) and
/// `digests` against its checkpoints, reading the checkpoints only from receipts the chain check
/// verified (a line it skips, or a wrapper around a receipt, carries no claim here).
pub fn verify_batches(chain: &str, digests: &str, pinned: Option<&[u8; 32]>) -> Result<(ChainSummary, Coverage), BatchFailure> {
    let mut seen = ChainCheckpoints::default();
    let summary = verify_chain_visiting(chain, pinned, &mut |r| seen.visit(r)).map_err(BatchFailure::Chain)?;
    let cover = seen.cover(digests).map_err(BatchFailure::Coverage)?;
    Ok((summary, cover))
}
