//! The receipt writer inside Envoy: a singleton service VM (`envoy.bootstrap.wasm`,
//! `singleton: true`, root_id [`WRITER_ROOT_ID`]) that owns one chain per Envoy process.
//!
//! Request handling in the worker VMs only enqueues a compact exchange record on the shared queue
//! [`RECEIPT_QUEUE`] (`super::ports::EnvoyQueue`); this VM dequeues, signs, chains, batches and exports over
//! gRPC (OTLP logs), all off the request path, through [`mcp_warden_core::receipt_writer::Writer`].
//! The signing key comes from the Envoy process environment (`WARDEN_SIGNING_KEY`, 64 hex),
//! passed in through `vm_config.environment_variables` (in Kubernetes: from a Secret).

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel};
use serde::Deserialize;

use super::abi;
use super::metrics::EnvoyMetrics;
use mcp_warden_core::metrics;
use mcp_warden_core::ports::Metrics;
use mcp_warden_core::receipt::chain::Predecessor;
use mcp_warden_core::receipt::sign::{parse_seed, Ed25519Signer, Signer, SIGNING_KEY_ENV};
use mcp_warden_core::receipt_writer::{chain_id_for, Writer, WriterConfig, WriterStats};

/// `root_id` of the writer's plugin config; `vm_id` of its VM (producers resolve the queue by it).
pub const WRITER_ROOT_ID: &str = "mcp-warden-writer";
pub const WRITER_VM_ID: &str = "mcp-warden-writer";
/// The shared queue between the request path and the writer.
pub const RECEIPT_QUEUE: &str = "mcp-warden-receipts";
/// Shared-data key where the writer leaves its chain tail for a successor VM.
const TAIL_KEY: &str = "mcpw/v1/receipts/tail";
const TICK_MS: u32 = 100;
/// Tick period while messages are left in the queue (the per-enqueue callbacks may all have run
/// while the writer was not accepting): the backlog is taken in slices, with Envoy's I/O between.
const BACKLOG_TICK_MS: u32 = 1;
/// Queue messages handled per callback. Bounded so that a backlog (requests arriving faster than
/// the writer signs) cannot keep the writer inside one callback: between callbacks Envoy runs the
/// gRPC answers, so exports keep flowing and the buffer drains (unbounded, the loop never ended
/// under overload, nothing was exported and the buffer filled: drops with a healthy sink).
/// What is left is taken by the next callback (one is posted per enqueue) or the next tick.
const MAX_MESSAGES_PER_CALLBACK: usize = 64;

/// The writer VM's `configuration` JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriterSpec {
    /// Envoy cluster of the OTLP logs receiver (gRPC).
    sink_cluster: String,
    /// `:authority` of the export calls (default: the cluster name). Needed for a mesh's outbound
    /// cluster, whose name is no valid authority (`outbound|4317||warden-sink.mcp.svc.cluster.local`).
    #[serde(default)]
    sink_authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    max_batch_bytes: Option<usize>,
    #[serde(default)]
    max_age_ms: Option<u64>,
    /// Bound on receipts waiting for export; past it new exchanges are dropped and counted.
    #[serde(default)]
    max_buffer_bytes: Option<usize>,
    /// Exchanges older than this when the writer gets to them are dropped and reported (0: never).
    #[serde(default)]
    max_queue_lag_ms: Option<u64>,
    /// Signed checkpoints under overload (default on).
    #[serde(default = "default_true")]
    checkpoints: bool,
    /// Queue lag past which exchanges go into checkpoint batches instead of a signature each
    /// (default 500; 0: every exchange, one signature per batch always).
    #[serde(default)]
    checkpoint_lag_ms: Option<u64>,
    /// A checkpoint batch closes at this many exchanges (1..=65536; default 256) or this age
    /// (default 1000 ms).
    #[serde(default)]
    checkpoint_max_records: Option<u64>,
    #[serde(default)]
    checkpoint_max_age_ms: Option<u64>,
}

/// The largest checkpoint batch (the sink files positions below 2^32; a verifier holds a batch).
const MAX_CHECKPOINT_RECORDS: u64 = 65_536;

fn default_true() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    5000
}

pub struct WriterHost {
    writer: Writer<Ed25519Signer>,
    sink_cluster: String,
    timeout: Duration,
    queue_id: u32,
    in_flight: Option<u32>,
    published: WriterStats,
    tick_ms: u32,
}

impl WriterHost {
    /// Builds the writer from its configuration and the process environment; the error says
    /// what is wrong (the VM then refuses to start: receipts must not be silently missing).
    pub fn start(config: &[u8]) -> Result<WriterHost, String> {
        let spec: WriterSpec =
            serde_json::from_slice(config).map_err(|e| format!("invalid receipt writer configuration: {e}"))?;
        let key = std::env::var(SIGNING_KEY_ENV)
            .map_err(|_| format!("{SIGNING_KEY_ENV} is not set in the writer VM's environment_variables"))?;
        let seed = parse_seed(&key).map_err(|e| format!("{SIGNING_KEY_ENV}: {e:?}"))?;
        let signer = Ed25519Signer::from_seed(seed);
        let now = abi::now_nanos();
        let node = abi::property(&["node", "id"]).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut cfg = WriterConfig::new(chain_id_for(node.as_deref().unwrap_or("envoy"), "main", now));
        if let Some(b) = spec.max_batch_bytes {
            cfg.batch.max_batch_bytes = b;
        }
        if let Some(ms) = spec.max_age_ms {
            cfg.batch.max_age_nanos = ms.saturating_mul(1_000_000);
        }
        if let Some(b) = spec.max_buffer_bytes {
            cfg.batch.max_buffer_bytes = b;
        }
        if let Some(ms) = spec.max_queue_lag_ms {
            cfg.max_queue_lag_nanos = ms.saturating_mul(1_000_000);
        }
        if let Some(ms) = spec.checkpoint_lag_ms {
            cfg.checkpoint_lag_nanos = Some(ms.saturating_mul(1_000_000));
        }
        if !spec.checkpoints {
            cfg.checkpoint_lag_nanos = None;
        }
        if let Some(n) = spec.checkpoint_max_records {
            if !(1..=MAX_CHECKPOINT_RECORDS).contains(&n) {
                return Err(format!(
                    "invalid receipt writer configuration: checkpoint_max_records must be 1..={MAX_CHECKPOINT_RECORDS}"
                ));
            }
            cfg.checkpoint_max_records = n;
        }
        if let Some(ms) = spec.checkpoint_max_age_ms {
            if ms == 0 {
                return Err("invalid receipt writer configuration: checkpoint_max_age_ms must be above 0".into());
            }
            cfg.checkpoint_max_age_nanos = ms.saturating_mul(1_000_000);
        }
        let predecessor =
            abi::shared_get(TAIL_KEY).ok().flatten().and_then(|(bytes, _)| Predecessor::decode(&String::from_utf8_lossy(&bytes)));
        let queue_id = hostcalls::register_shared_queue(RECEIPT_QUEUE)
            .map_err(|s| format!("cannot register shared queue {RECEIPT_QUEUE}: {s:?}"))?;
        abi::set_tick_period_ms(TICK_MS).map_err(|e| format!("cannot set tick: {e:?}"))?;
        abi::log(
            LogLevel::Info,
            &format!(
                "mcp-warden receipt writer: chain {} signer_key {} (verify with: warden verify FILE --key {}){}",
                cfg.chain_id,
                hex::encode(signer.public_key()),
                hex::encode(signer.public_key()),
                predecessor.as_ref().map(|p| format!(", predecessor {}", p.encode())).unwrap_or_default(),
            ),
        );
        let sink_cluster = mcp_warden_core::export::grpc_upstream(&spec.sink_cluster, spec.sink_authority.as_deref())
            .map_err(|e| format!("invalid receipt writer configuration: {e}"))?;
        Ok(WriterHost {
            writer: Writer::new(cfg, signer, predecessor),
            sink_cluster,
            timeout: Duration::from_millis(spec.timeout_ms),
            queue_id,
            in_flight: None,
            published: WriterStats::default(),
            tick_ms: TICK_MS,
        })
    }

    pub fn on_queue_ready(&mut self, queue_id: u32) {
        if queue_id != self.queue_id {
            return;
        }
        self.take_messages();
    }

    /// Up to [`MAX_MESSAGES_PER_CALLBACK`] queue messages into the writer, then a send.
    fn take_messages(&mut self) {
        let mut taken = 0;
        let mut empty = false;
        while taken < MAX_MESSAGES_PER_CALLBACK && self.writer.accepting() {
            let Ok(Some(message)) = hostcalls::dequeue_shared_queue(self.queue_id) else {
                empty = true;
                break;
            };
            taken += 1;
            if let Err(e) = self.writer.on_record(&message, abi::now_nanos()) {
                abi::log(LogLevel::Warn, &format!("mcp-warden receipt writer: {e}"));
            }
        }
        if taken > 0 {
            if let Some(tail) = self.writer.tail() {
                let _ = abi::shared_set(TAIL_KEY, tail.encode().as_bytes(), 0);
            }
        }
        self.publish();
        self.send();
        // Messages may be left: come back in 1 ms rather than wait for an enqueue or 100 ms.
        let want = if empty { TICK_MS } else { BACKLOG_TICK_MS };
        if want != self.tick_ms && abi::set_tick_period_ms(want).is_ok() {
            self.tick_ms = want;
        }
    }

    pub fn on_tick(&mut self) {
        self.take_messages();
    }

    fn send(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let now = abi::now_nanos();
        let Some(body) = self.writer.poll_send(now) else { return };
        match hostcalls::dispatch_grpc_call(
            &self.sink_cluster,
            "opentelemetry.proto.collector.logs.v1.LogsService",
            "Export",
            vec![],
            Some(&body),
            self.timeout,
        ) {
            Ok(token) => self.in_flight = Some(token),
            Err(s) => {
                abi::log(LogLevel::Warn, &format!("mcp-warden receipt writer: gRPC dispatch failed: {s:?}"));
                self.writer.on_export_result(false, now);
            }
        }
    }

    pub fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if self.in_flight != Some(token) {
            return;
        }
        self.in_flight = None;
        let body = abi::buffer(BufferType::GrpcReceiveBuffer, 0, size).unwrap_or_default();
        if status != 0 {
            abi::log(LogLevel::Warn, &format!("mcp-warden receipt writer: export failed (grpc-status {status}), will retry"));
        }
        self.writer.on_export_response(status, &body, abi::now_nanos());
        // A success may have chained a drop notice (room again): the tail moved.
        if let Some(tail) = self.writer.tail() {
            let _ = abi::shared_set(TAIL_KEY, tail.encode().as_bytes(), 0);
        }
        self.publish();
        self.send();
    }

    /// Publishes the writer's counters as Envoy stats (deltas since the last publish).
    fn publish(&mut self) {
        let now = self.writer.stats();
        let was = self.published;
        let mut m = EnvoyMetrics;
        for (name, n) in [
            (metrics::RECEIPTS_SIGNED, now.signed.saturating_sub(was.signed)),
            (metrics::RECEIPTS_DROPPED, now.dropped.saturating_sub(was.dropped)),
            (metrics::RECEIPTS_EXPORTED, now.exported.saturating_sub(was.exported)),
            (metrics::RECEIPT_EXPORT_FAILURES, now.export_failures.saturating_sub(was.export_failures)),
            (metrics::RECEIPT_DECODE_ERRORS, now.decode_errors.saturating_sub(was.decode_errors)),
            (metrics::RECEIPTS_SINK_REJECTED, now.sink_rejected.saturating_sub(was.sink_rejected)),
            (metrics::RECEIPTS_DIGESTED, now.digested.saturating_sub(was.digested)),
            (metrics::RECEIPT_CHECKPOINTS, now.checkpoints.saturating_sub(was.checkpoints)),
        ] {
            if n > 0 {
                m.add(name, n);
            }
        }
        self.published = now;
    }
}
