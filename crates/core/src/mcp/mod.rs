//! The MCP wire: everything about bytes and headers, nothing about policy.
//!
//! - [`jsonrpc`]: borrowed single-pass parse of a posted body.
//! - [`headers`]: `Mcp-Name` / `Mcp-Param-*` value codec (Base64 sentinel).
//! - [`classify`]: era classification (spec §12.3) and header/body validation.
//! - [`model`]: the era-neutral request model.
//! - [`method`]: the MCP methods the filter knows by name ([`Method`]).
//! - [`error`]: rejections and their JSON-RPC error bodies.
//! - [`sse`]: chunk-safe `text/event-stream` decoder.
//! - [`uri`]: resource URIs in the form a server resolves them, for policy matching.
//! - [`checked`]: skipping a value while reading it completely (no lone surrogates, no Infinity).
//! - [`fingerprint`]: a tool definition (or a template's contents) as one canonical hash, and the
//!   `_meta` key a client sends it in.

pub mod checked;
pub mod classify;
pub mod error;
pub mod fingerprint;
pub mod headers;
pub mod jsonrpc;
pub mod method;
pub mod model;
pub mod sse;
pub mod uri;

pub use method::Method;
