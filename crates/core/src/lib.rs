//! mcp-warden-core: everything mcp-warden decides, as plain Rust that `cargo test` runs natively
//! and on wasm32. It cannot see proxy-wasm: the host is reached only through [`ports`].
//!
//! Map of the crate, from the wire up:
//! - [`ports`]: what a host must provide (HTTP I/O, shared-data KV with CAS, clock, metrics,
//!   receipt queue), host errors and whose fault they are. [`fake_host`] implements every port
//!   in memory (feature `fake-host`).
//! - [`mcp`]: the wire. JSON-RPC envelope (one pass, borrowed), era classification (2026-07-28 vs
//!   2025-11-25), routing-header codec, SSE decoder, the MCP [`mcp::Method`] type and the one
//!   request model the rest of the crate uses.
//! - [`principal`]: who is acting (JWT payload, SPIFFE, Istio, trusted header, anonymous), the
//!   delegation chain and the correlation key.
//! - [`policy`]: the plugin configuration (serde, unknown fields rejected) compiled into an
//!   immutable [`policy::Policy`] with a hash of its canonical bytes; rule evaluation, the kill
//!   switch, list filtering.
//! - [`state`]: bounded slot tables over the KV port, and the token buckets on them.
//! - [`inspect`]: the response inspector interface and the findings inspectors report.
//! - [`fold`]: the comparison form of a text (NFKC, case, invisibles, look-alikes), shared by
//!   the description scan and the content scan.
//! - [`scan`]: the content scanner (secrets, canaries, injected instructions), below the policy;
//!   [`content_scan`]: a scan judged under the policy, and the response inspector that runs it.
//! - [`integrity`]: tool integrity: poisoned definitions, baselines and pins, the call-time check,
//!   `ui://` templates, task binding.
//! - [`correlate`]: memory across requests without sessions, per correlation key and task:
//!   entropy budgets, fragment reassembly, tool-call chains, escalation, and the mesh-wide
//!   budgets of an Envoy global rate limit service.
//! - [`confirm`]: `action: "confirm"`: a human approves a call first, asked through MRTR with
//!   a sealed, stateless `requestState`.
//! - [`control`]: the control endpoint's document, its server and the filter's poller.
//! - [`flow`]: one request and its response. [`flow::request`] (gather → decide → apply),
//!   [`flow::decide`] (the pure decision), [`flow::response`] (the pipeline of inspectors fed
//!   chunks and SSE events), [`flow::reply`] (every local reply), [`flow::exchange`] (the
//!   receipt record).
//! - [`receipt`]: ActionReceipt v1 (canonical JSON, Ed25519 signing, hash chain, verifier).
//! - [`export`]: receipts as OTLP logs (hand-encoded protobuf) and export batching.
//! - [`receipt_writer`]: the writer that signs, chains, batches and exports (the singleton VM).
//! - [`jcs`]: canonical JSON (RFC 8785), the byte form every hash is taken over.
//! - [`metrics`]: metric names, the one place they are spelled.
//! - [`pbstruct`]: a bounded reader for Envoy's serialized dynamic metadata.

pub mod confirm;
pub mod content_scan;
pub mod control;
pub mod correlate;
pub mod digest_memo;
pub mod export;
#[cfg(any(test, feature = "fake-host"))]
pub mod fake_host;
pub mod flow;
pub mod fnv;
pub mod fold;
pub mod hex_text;
pub mod inspect;
pub mod integrity;
pub mod jcs;
pub mod mcp;
pub mod metrics;
pub mod pbstruct;
pub mod policy;
pub mod ports;
pub mod principal;
pub mod receipt;
pub mod receipt_writer;
pub mod scan;
pub mod semconv;
pub mod state;
pub mod trace_context;
