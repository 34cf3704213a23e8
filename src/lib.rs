//! mcp-warden: the runtime security layer for MCP traffic, as an Envoy proxy-wasm filter.
//!
//! Map of the crate:
//! - [`mcp`]: the wire. JSON-RPC envelope, era classification (2026-07-28 vs 2025-11-25), routing
//!   header codec, SSE decoder, and the one request model the rest of the crate uses.
//! - [`policy`]: the plugin configuration (serde, unknown fields rejected) compiled into an
//!   immutable [`policy::Policy`].
//! - [`flow`]: the per-request state machine, written against the [`flow::HttpIo`] trait so the
//!   same code runs in Envoy and under the fake host in tests.
//! - [`metrics`]: metric names (constants) and the recording trait.
//! - `host` (wasm32-wasip1 only): the only module that knows proxy-wasm.
//!
//! Everything outside `host` is plain Rust that `cargo test` runs natively.

pub mod control;
pub mod flow;
pub mod mcp;
pub mod metrics;
pub mod killswitch;
pub mod pbstruct;
pub mod policy;
pub mod principal;
pub mod ratelimit;
pub mod store;
pub mod receipt;
pub mod export;

#[cfg(target_os = "wasi")]
mod host;
