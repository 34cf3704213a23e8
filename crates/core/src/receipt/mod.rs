//! Signed receipts in the ActionReceipt v1 format (shared/spec/action-receipt-v1.md), verifiable
//! offline by `pipelock-verify` and by [`verify`].
//!
//! - [`record`]: the fields we emit and their canonical (Go `json.Marshal`) bytes;
//! - [`json`]: the Go-compatible JSON writer; [`time`]: `RFC3339Nano` from given nanoseconds;
//! - [`sign`]: the [`sign::Signer`] trait, Ed25519 over SHA-256(canonical record), key formats;
//! - [`chain`]: seq / prev-hash / `"genesis"`, and the chain-open receipt naming a predecessor;
//! - [`checkpoint`]: digest batches and the signed checkpoints that cover them under overload;
//! - [`classify`]: MCP method and tool name → `action_type` / `side_effect_class`;
//! - [`exchange`]: the compact per-exchange record the filter enqueues, and its action record;
//! - [`verify`] (with [`strict`] reading and [`canonical`] re-encoding): receipts and chains;
//!
//! The writer that drives chain and export lives above both, in [`crate::receipt_writer`].
//!
//! Pure: no clock, no randomness, no I/O. Compiles for wasm32-wasip1.

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod classify;
pub mod exchange;
pub mod json;
pub mod record;
pub mod sign;
pub mod strict;
pub mod time;
pub mod verify;

pub use chain::{Chain, Predecessor};
pub use record::{ActionRecord, ActionType, Receipt, Reversibility, SideEffectClass, Verdict};
pub use sign::{Ed25519Signer, Signer};
