//! The receipt writer as a pure state machine: the part of the in-Envoy singleton (or a worker's
//! root context) that owns a chain. The host feeds it queue messages, ticks and gRPC results,
//! passing the time in; it hands back OTLP request bodies to send.
//!
//! Host contract (one writer per chain, single-threaded):
//! 1. `Writer::new` at VM start, with the key from `WARDEN_SIGNING_KEY`, a chain id from
//!    [`chain_id_for`], and the predecessor tail the previous writer left (if any).
//! 2. Each shared-queue message → [`Writer::on_record`]. An exchange that finds the export buffer
//!    full is dropped before signing (so `chain_seq` has no gap) and counted; as soon as there is
//!    room again, and before any further exchange, the writer chains a signed **drop notice**
//!    ([`DROPPED_METHOD`], `intent` `dropped=<n> since_seq=<k> …`, see [`DropNotice`]). The
//!    counts in the notices add up to [`WriterStats::dropped`].
//! 3. On every tick and after every gRPC answer → [`Writer::poll_send`]; a returned body goes out
//!    with `dispatch_grpc_call(cluster, "opentelemetry.proto.collector.logs.v1.LogsService",
//!    "Export", body)`. At most one call is in flight, so receipts reach the sink in order.
//! 4. The gRPC answer → [`Writer::on_export_response`] (grpc-status and response message); a
//!    failure puts the batch back in front and backs off.
//! 5. After each `on_record`, the host may store [`Writer::tail`] (encoded) in shared data so a
//!    reloaded VM can name it as its predecessor.
//! 6. On shutdown → [`Writer::drain`] until it returns `None`.
//!
//! Overload without loss: when an exchange reaches the writer more than `checkpoint_lag_nanos`
//! after it was enqueued, the writer stops signing exchange by exchange and exports each one as
//! an unsigned digest entry folded into a batch, closed by one signed checkpoint receipt every
//! `checkpoint_max_records` entries or `checkpoint_max_age_nanos` (see
//! [`crate::receipt::checkpoint`]). Once the lag is back under a quarter of the threshold, the
//! open batch is closed and signing per exchange resumes.

use crate::export::batch::{BatchConfig, Batcher};
use crate::export::{export_request, LogEntry, Position};

use crate::receipt::chain::{
    drop_notice_record, opening_record, Chain, DropNotice, Predecessor, CHAIN_OPEN_METHOD, DROPPED_METHOD, WRITER_PRINCIPAL,
};
use crate::receipt::checkpoint::{checkpoint_record, Batch, CHECKPOINT_METHOD};
use crate::receipt::exchange::{DecodeError, Exchange, WireVerdict};
use crate::receipt::record::envelope_json;
use crate::receipt::sign::Signer;
use crate::receipt::time::rfc3339_nano;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    pub chain_id: String,
    /// `policy_hash` of the chain-open receipt (records carry their own).
    pub policy_hash: String,
    pub batch: BatchConfig,
    /// First retry delay after a failed export; doubles up to `max_backoff_nanos`.
    pub backoff_nanos: u64,
    pub max_backoff_nanos: u64,
    /// An exchange that reaches the writer more than this long after it was enqueued (its
    /// `unix_nanos + duration_micros`) is dropped, counted and reported like a buffer drop: the
    /// writer is behind (requests arrive faster than it signs), and dropping is much cheaper than
    /// signing, so the backlog (held in Envoy's shared queue, which has no bound) stops growing.
    /// `0` disables it.
    pub max_queue_lag_nanos: u64,
    /// Queue lag above which exchanges are digested into checkpoint batches instead of signed
    /// one by one (`None`: never; `Some(0)`: every exchange).
    pub checkpoint_lag_nanos: Option<u64>,
    /// A batch closes with its checkpoint at this many entries, or at this age.
    pub checkpoint_max_records: u64,
    pub checkpoint_max_age_nanos: u64,
}

impl WriterConfig {
    pub fn new(chain_id: String) -> Self {
        WriterConfig {
            chain_id,
            policy_hash: String::new(),
            batch: BatchConfig::default(),
            backoff_nanos: 500_000_000,
            max_backoff_nanos: 30_000_000_000,
            max_queue_lag_nanos: 10_000_000_000,
            checkpoint_lag_nanos: Some(500_000_000),
            checkpoint_max_records: 256,
            checkpoint_max_age_nanos: 1_000_000_000,
        }
    }
}

/// Counters for the host to publish as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Receipts signed and chained (chain-open included).
    pub signed: u64,
    /// Exchanges not receipted because the export buffer was full.
    pub dropped: u64,
    /// Drop notices chained (each reports the drops since the previous one).
    pub drop_notices: u64,
    /// Queue messages that were not an exchange this writer understands.
    pub decode_errors: u64,
    /// Receipts the sink acknowledged.
    pub exported: u64,
    pub export_failures: u64,
    /// Receipts the sink answered as rejected (`partial_success.rejected_log_records`).
    pub sink_rejected: u64,
    /// Exchanges exported as digest entries of a checkpoint batch (not signed one by one).
    pub digested: u64,
    /// Checkpoint receipts chained (each also counts in `signed`).
    pub checkpoints: u64,
}

/// What `on_record` did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Signed and buffered as this `chain_seq`.
    Chained(u64),
    /// Buffered as a digest entry of this checkpoint batch.
    Digested(u64),
    /// Buffer full: not signed, counted in `dropped`.
    Dropped,
}

pub struct Writer<S: Signer> {
    cfg: WriterConfig,
    signer: S,
    chain: Chain,
    predecessor: Option<Predecessor>,
    batcher: Batcher,
    in_flight: Option<Vec<LogEntry>>,
    retry_at: u64,
    backoff: u64,
    stats: WriterStats,
    /// Drops not yet reported by a drop notice.
    pending_drops: Option<DropNotice>,
    /// Encoded size of the last log entry buffered (for [`Writer::accepting`]).
    last_entry_len: usize,
    /// The open checkpoint batch, while overloaded.
    batch: Option<Batch>,
    /// Batches opened so far (the next one is numbered `batches + 1`).
    batches: u64,
}

/// A chain id unique per writer: `<node id>.<worker or "main">.<VM start nanos>`, with characters
/// outside `[A-Za-z0-9._-]` replaced by `_` (the sink uses it as a file name).
pub fn chain_id_for(node_id: &str, worker: &str, start_unix_nanos: u64) -> String {
    let clean = |s: &str| -> String {
        let s: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        let s = s.trim_start_matches('.').to_string();
        if s.is_empty() {
            "envoy".to_string()
        } else {
            s.chars().take(80).collect()
        }
    };
    format!("{}.{}.{start_unix_nanos}", clean(node_id), clean(worker))
}

impl<S: Signer> Writer<S> {
    pub fn new(cfg: WriterConfig, signer: S, predecessor: Option<Predecessor>) -> Self {
        let batcher = Batcher::new(cfg.batch);
        let backoff = cfg.backoff_nanos;
        Writer {
            chain: Chain::new(cfg.chain_id.clone()),
            cfg,
            signer,
            predecessor,
            batcher,
            in_flight: None,
            retry_at: 0,
            backoff,
            stats: WriterStats::default(),
            pending_drops: None,
            last_entry_len: 0,
            batch: None,
            batches: 0,
        }
    }

    /// One shared-queue message. Opens the chain (chain-open receipt) on first use, and reports
    /// earlier drops (drop notice) before the exchange itself.
    pub fn on_record(&mut self, message: &[u8], now_nanos: u64) -> Result<Recorded, DecodeError> {
        let exchange = Exchange::decode(message).inspect_err(|_| {
            self.stats.decode_errors = self.stats.decode_errors.saturating_add(1);
        })?;
        let enqueued = exchange.unix_nanos.saturating_add(exchange.duration_micros.saturating_mul(1000));
        if self.cfg.max_queue_lag_nanos > 0 && now_nanos.saturating_sub(enqueued) > self.cfg.max_queue_lag_nanos {
            return Ok(self.drop_one(exchange.unix_nanos, true));
        }
        if !self.ensure_open(now_nanos) || !self.report_drops(now_nanos) {
            return Ok(self.drop_one(exchange.unix_nanos, false));
        }
        if self.digesting(now_nanos.saturating_sub(enqueued), now_nanos) {
            return Ok(self.digest(&exchange, now_nanos));
        }
        let action_id = format!("{}-{}", self.cfg.chain_id, self.chain.next_seq());
        let record = exchange.to_record(action_id);
        Ok(self.add(record, &exchange, now_nanos).map_or_else(|| self.drop_one(exchange.unix_nanos, false), Recorded::Chained))
    }

    /// Whether this exchange goes into a checkpoint batch: opens one when the queue lag passes
    /// the threshold, closes it (checkpoint) once the lag is under a quarter of it.
    fn digesting(&mut self, lag_nanos: u64, now_nanos: u64) -> bool {
        let Some(threshold) = self.cfg.checkpoint_lag_nanos else { return false };
        if self.batch.is_some() {
            // A checkpoint that does not fit yet keeps the batch open (and digesting).
            return lag_nanos >= threshold / 4 || !self.close_batch(now_nanos);
        }
        if lag_nanos < threshold {
            return false;
        }
        let Some(anchor) = self.chain.tail_digest() else { return false };
        self.batches = self.batches.saturating_add(1);
        self.batch = Some(Batch::open(self.batches, anchor, now_nanos));
        true
    }

    /// Buffers `exchange` as the open batch's next digest entry (unsigned; the checkpoint covers
    /// it) if it fits, and closes the batch when it is full.
    fn digest(&mut self, exchange: &Exchange, now_nanos: u64) -> Recorded {
        let Some(batch) = self.batch.as_ref() else { return self.drop_one(exchange.unix_nanos, false) };
        let (number, index) = (batch.number, batch.count);
        let record = exchange.to_record(format!("{}-b{number}-{index}", self.cfg.chain_id));
        let record_json = record.canonical_json();
        let at = Position::Digest { batch: number, index };
        // Nothing to sign here, so the entry is built first and its exact size checked (the
        // in-flight batch counts against the bound, as for receipts).
        let entry = LogEntry::from_json(&self.cfg.chain_id, &record_json, at, record.verdict.as_str(), exchange);
        let len = entry.encoded_len();
        if !self.batcher.has_room(len.saturating_add(self.in_flight_bytes())) || self.batcher.push(entry, now_nanos).is_err() {
            return self.drop_one(exchange.unix_nanos, false);
        }
        self.last_entry_len = len;
        // Folded only once buffered: the root covers exactly what is exported.
        let full = self.batch.as_mut().is_some_and(|b| {
            b.push(&record_json, exchange.unix_nanos);
            b.count >= self.cfg.checkpoint_max_records
        });
        self.stats.digested = self.stats.digested.saturating_add(1);
        if full {
            self.close_batch(now_nanos);
        }
        Recorded::Digested(number)
    }

    /// Chains the open batch's checkpoint; true when there is no batch or the checkpoint fit.
    fn close_batch(&mut self, now_nanos: u64) -> bool {
        let Some(batch) = self.batch.take() else { return true };
        if batch.count == 0 {
            return true;
        }
        let mut record = checkpoint_record(&self.cfg.chain_id, &batch, rfc3339_nano(now_nanos), &self.cfg.policy_hash);
        record.action_id = format!("{}-{}", self.cfg.chain_id, self.chain.next_seq());
        let context = writer_context(CHECKPOINT_METHOD, WireVerdict::Warn, now_nanos, &self.cfg.policy_hash);
        if self.add(record, &context, now_nanos).is_none() {
            self.batch = Some(batch);
            return false;
        }
        self.stats.checkpoints = self.stats.checkpoints.saturating_add(1);
        true
    }

    /// Whether the host should hand over more queue messages now. False only while an export is
    /// in flight and the buffer has no room for another receipt: the messages then wait in the
    /// queue (backpressure) instead of being dropped, and the host lets Envoy run the gRPC answer
    /// first. With no export in flight (the sink failing, backing off) messages are taken, and
    /// dropped and counted when they do not fit.
    pub fn accepting(&self) -> bool {
        self.in_flight.is_none() || self.batcher.has_room(self.in_flight_bytes().saturating_add(self.last_entry_len.max(1024)))
    }

    /// Chains the chain-open receipt if the chain has none yet; false when it does not fit.
    fn ensure_open(&mut self, now_nanos: u64) -> bool {
        if self.chain.next_seq() > 0 {
            return true;
        }
        let open = opening_record(
            &self.cfg.chain_id,
            self.predecessor.as_ref(),
            rfc3339_nano(now_nanos),
            "mcp-warden",
            &self.cfg.policy_hash,
        );
        let context = writer_context(CHAIN_OPEN_METHOD, WireVerdict::Allow, now_nanos, &self.cfg.policy_hash);
        self.add(open, &context, now_nanos).is_some()
    }

    /// Chains a drop notice for the drops not yet reported; true when there were none or the
    /// notice fit (false: the drops stay pending and keep being counted).
    fn report_drops(&mut self, now_nanos: u64) -> bool {
        let Some(notice) = self.pending_drops else { return true };
        let mut record = drop_notice_record(&self.cfg.chain_id, &notice, rfc3339_nano(now_nanos), &self.cfg.policy_hash);
        record.action_id = format!("{}-{}", self.cfg.chain_id, self.chain.next_seq());
        let context = writer_context(DROPPED_METHOD, WireVerdict::Warn, now_nanos, &self.cfg.policy_hash);
        if self.add(record, &context, now_nanos).is_none() {
            return false;
        }
        self.pending_drops = None;
        self.stats.drop_notices = self.stats.drop_notices.saturating_add(1);
        true
    }

    /// Counts one exchange (that arrived at `arrived_nanos`) as dropped.
    fn drop_one(&mut self, arrived_nanos: u64, lagged: bool) -> Recorded {
        self.batcher.count_drop();
        self.stats.dropped = self.stats.dropped.saturating_add(1);
        let since_seq = self.chain.next_seq().saturating_sub(1);
        let p = self.pending_drops.get_or_insert(DropNotice {
            count: 0,
            since_seq,
            first_nanos: arrived_nanos,
            last_nanos: arrived_nanos,
            lagged: 0,
        });
        p.count = p.count.saturating_add(1);
        p.lagged = p.lagged.saturating_add(u64::from(lagged));
        p.first_nanos = p.first_nanos.min(arrived_nanos);
        p.last_nanos = p.last_nanos.max(arrived_nanos);
        Recorded::Dropped
    }

    /// Signs and buffers `record` if its log entry fits; the chain only advances when it does.
    /// The record is serialised once: the size check, the signature, the chain hash and the log
    /// entry all read that JSON.
    fn add(&mut self, record: crate::receipt::ActionRecord, context: &Exchange, now_nanos: u64) -> Option<u64> {
        let record = self.chain.preview(record);
        let record_json = record.canonical_json();
        // Size check before signing. The in-flight batch still counts against the bound, so a
        // failed send always fits back. An upper bound of the entry's size settles it without
        // encoding; only near the bound is the entry encoded with a placeholder signature (same
        // length) to know exactly.
        let in_flight = self.in_flight_bytes();
        // The envelope adds a fixed length to the record (its signature and key are hex of fixed width).
        let receipt_len = record_json.len() + envelope_json("", &[0; 64], &[0; 32]).len();
        let bound = LogEntry::max_encoded_len(&self.cfg.chain_id, receipt_len, context);
        if !self.batcher.has_room(bound.saturating_add(in_flight)) {
            let placeholder = envelope_json(&record_json, &[0; 64], &[0; 32]);
            let verdict = record.verdict.as_str();
            let exact = LogEntry::from_json(
                &self.cfg.chain_id,
                &placeholder,
                Position::Receipt { chain_seq: record.chain_seq },
                verdict,
                context,
            );
            if !self.batcher.has_room(exact.encoded_len().saturating_add(in_flight)) {
                return None;
            }
        }
        let (receipt, json) = self.chain.append_previewed(record, &record_json, &self.signer);
        let seq = receipt.record.chain_seq;
        let at = Position::Receipt { chain_seq: seq };
        let entry = LogEntry::from_json(&self.cfg.chain_id, &json, at, receipt.record.verdict.as_str(), context);
        self.last_entry_len = entry.encoded_len();
        self.batcher.push(entry, now_nanos).ok()?;
        self.stats.signed = self.stats.signed.saturating_add(1);
        Some(seq)
    }

    /// The next OTLP request body to send, if one is due and nothing is in flight.
    pub fn poll_send(&mut self, now_nanos: u64) -> Option<Vec<u8>> {
        // An old batch closes on time even while an export is in flight or backing off.
        if self.batch.as_ref().is_some_and(|b| now_nanos.saturating_sub(b.opened_nanos) >= self.cfg.checkpoint_max_age_nanos) {
            self.close_batch(now_nanos);
        }
        if self.in_flight.is_some() || now_nanos < self.retry_at {
            return None;
        }
        self.report_pending(now_nanos);
        let batch = self.batcher.poll(now_nanos)?;
        Some(self.send(batch))
    }

    fn in_flight_bytes(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |b| b.iter().map(LogEntry::encoded_len).sum())
    }

    fn send(&mut self, batch: Vec<LogEntry>) -> Vec<u8> {
        let body = export_request(&batch);
        self.in_flight = Some(batch);
        body
    }

    /// The gRPC answer as the host sees it: `grpc_status` (0 = OK) and the response message.
    /// Records the sink refused (`partial_success`) are counted in `sink_rejected`; they are
    /// not resent (the sink refuses them for what they are, e.g. a bad signature).
    pub fn on_export_response(&mut self, grpc_status: u32, response: &[u8], now_nanos: u64) {
        if grpc_status == 0 {
            let rejected = crate::export::rejected_in_response(response).unwrap_or(0);
            self.stats.sink_rejected = self.stats.sink_rejected.saturating_add(u64::try_from(rejected).unwrap_or(0));
        }
        self.on_export_result(grpc_status == 0, now_nanos);
    }

    /// The answer to the request `poll_send` or `drain` returned.
    pub fn on_export_result(&mut self, ok: bool, now_nanos: u64) {
        let Some(batch) = self.in_flight.take() else { return };
        if ok {
            self.stats.exported = self.stats.exported.saturating_add(batch.len() as u64);
            self.backoff = self.cfg.backoff_nanos;
            self.retry_at = 0;
            // The sink took a batch: room again, so pending drops are reported now, not only
            // when the next exchange arrives.
            self.report_pending(now_nanos);
        } else {
            self.stats.export_failures = self.stats.export_failures.saturating_add(1);
            self.batcher.requeue(batch, now_nanos);
            self.retry_at = now_nanos.saturating_add(self.backoff);
            self.backoff = self.backoff.saturating_mul(2).min(self.cfg.max_backoff_nanos);
        }
    }

    /// Everything buffered, regardless of age and backoff (shutdown). `None` while a request is in
    /// flight or when nothing is left.
    pub fn drain(&mut self) -> Option<Vec<u8>> {
        if self.in_flight.is_some() {
            return None;
        }
        let last = self.batch.as_ref().map_or(0, |b| b.last_nanos);
        self.close_batch(last);
        let batch = self.batcher.flush()?;
        Some(self.send(batch))
    }

    /// Chains the pending drop notice (after the chain-open) if it fits now.
    fn report_pending(&mut self, now_nanos: u64) {
        if self.pending_drops.is_some() && self.ensure_open(now_nanos) {
            self.report_drops(now_nanos);
        }
    }

    /// Drops not yet reported in the chain (reported by the next drop notice).
    pub fn pending_drops(&self) -> u64 {
        self.pending_drops.map_or(0, |p| p.count)
    }

    /// The chain's tail, once it has one (for the successor's chain-open receipt).
    pub fn tail(&self) -> Option<Predecessor> {
        self.chain.as_predecessor()
    }

    pub fn chain_id(&self) -> &str {
        &self.cfg.chain_id
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Bytes waiting to be exported (in flight not included).
    pub fn buffered_bytes(&self) -> usize {
        self.batcher.buffered_bytes()
    }
}

/// Log attributes for the writer's own receipts (chain-open, drop notice).
fn writer_context(method: &str, verdict: WireVerdict, now_nanos: u64, policy_hash: &str) -> Exchange {
    Exchange {
        method: method.to_string(),
        principal: WRITER_PRINCIPAL.to_string(),
        actor: WRITER_PRINCIPAL.to_string(),
        ..Exchange::empty(now_nanos, verdict, policy_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_are_file_name_safe() {
        assert_eq!(chain_id_for("sidecar~10.0.0.1~pod.ns", "main", 7), "sidecar_10.0.0.1_pod.ns.main.7");
        assert_eq!(chain_id_for("", "w/1", 1), "envoy.w_1.1");
        assert_eq!(chain_id_for("..x", "0", 1), "x.0.1");
    }
}
