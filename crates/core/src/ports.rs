//! The ports: everything the core needs from a host, in one place.
//!
//! The filter crate implements them over proxy-wasm (Envoy); [`crate::fake_host`] implements
//! them in memory for tests. No trait here has a default method: a host that forgets one does not
//! compile, so the fake host runs exactly the paths Envoy runs (identity, rate limits, the
//! response pipeline, receipts).
//!
//! | port | what it is in Envoy |
//! |---|---|
//! | [`HttpIo`] | the stream's header maps, body buffers, local replies and properties |
//! | [`Kv`] | shared data (per process, CAS, keys never deleted) |
//! | [`Clock`] | `proxy_get_current_time_nanoseconds` |
//! | [`Metrics`] | stats (counters, histograms) |
//! | [`ReceiptQueue`] | the shared queue to the singleton receipt writer |

use std::fmt;

use crate::principal::Sources;

/// Whose fault a failure is: decides the status, fail-open / fail-closed and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The client sent something it must not (4xx).
    Client,
    /// The upstream MCP server answered something the filter cannot accept.
    Upstream,
    /// The host (Envoy) or the filter itself failed (5xx).
    Host,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Upstream => "upstream",
            Fault::Host => "host",
        }
    }
}

/// A host call failed. Always the host's (or our) fault, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// The ABI call that failed (`get_buffer_bytes`, …).
    pub call: &'static str,
    /// The host's status code.
    pub status: u32,
}

impl HostError {
    pub fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gateway host call {} failed (status {})", self.call, self.status)
    }
}

impl std::error::Error for HostError {}

/// Where the host finds facts about the peer, beyond request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFact {
    /// `jwt_authn` payload for (namespace, key), as JSON text.
    JwtPayload,
    /// `connection.uri_san_peer_certificate`.
    UriSan,
    /// Istio `source.principal`.
    IstioPrincipal,
    /// `source.address`.
    SourceAddress,
    /// The upstream cluster the route chose (`xds.cluster_name`).
    UpstreamCluster,
    /// The address of the upstream host that served (`upstream.address`; an internal listener's
    /// is `envoy://…`).
    UpstreamAddress,
}

/// The HTTP stream. Header names are lowercase. A repeated request header is returned combined
/// (`a, b`): the upstream receives every line, so validation must see every line too.
pub trait HttpIo {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    /// Names of all request headers (to strip the `x-warden-*` ones a client sent).
    fn request_header_names(&self) -> Result<Vec<String>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    /// The buffered request body, `len` bytes from the start.
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError>;
    /// Replaces the first `len` bytes of the buffered request body with `body`.
    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError>;
    /// A peer fact; `None` when the host does not have it.
    fn peer_fact(&self, fact: PeerFact, sources: &Sources) -> Result<Option<String>, HostError>;
    fn response_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn set_response_header(&mut self, name: &str, value: &str) -> Result<(), HostError>;
    fn remove_response_header(&mut self, name: &str) -> Result<(), HostError>;
    /// The response body the host holds for this callback: `len` bytes from the start (the
    /// current chunk while streaming, everything while buffering).
    fn response_body(&self, len: usize) -> Result<Vec<u8>, HostError>;
    /// Replaces the first `len` bytes of that response body with `body`.
    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError>;
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError>;
    /// Starts a gRPC call (`service`/`method` on `cluster`, `body` the request message) whose
    /// answer the host hands to the flow in a later callback; the stream waits for it.
    fn dispatch_grpc(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<(), HostError>;
}

/// CAS token as Envoy returns it with a value.
pub type Cas = u32;

/// Errors of the key-value store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvError {
    /// Someone wrote the key after our read.
    CasMismatch,
    /// Any other host status (the host's numeric code).
    Host(u32),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::CasMismatch => f.write_str("shared data changed since it was read (CAS mismatch)"),
            KvError::Host(s) => write!(f, "shared data call failed (status {s})"),
        }
    }
}

/// A key-value store with compare-and-swap: Envoy shared data.
pub trait Kv {
    /// The value and its CAS token, or `None` when the key was never written.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError>;
    /// Writes `value`. With `Some(cas)` the write fails with [`KvError::CasMismatch`] if the key
    /// changed since the read that returned `cas`; `None` writes unconditionally (new keys).
    fn set(&mut self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), KvError>;
}

/// The host clock. Ambient clocks are banned in the core (clippy.toml): time is an input.
pub trait Clock {
    /// Unix time in nanoseconds.
    fn now_nanos(&self) -> u64;
}

/// Milliseconds on `clock`.
pub fn now_ms(clock: &dyn Clock) -> u64 {
    clock.now_nanos() / 1_000_000
}

/// Where the core records what happened. Names live in [`crate::metrics`].
pub trait Metrics {
    /// Add one to the counter `base` with `labels`.
    fn count(&mut self, base: &'static str, labels: &[(&str, &str)]);
    /// Add `n` to an unlabelled counter.
    fn add(&mut self, base: &'static str, n: u64);
    /// Record a sample of the histogram `base` with `labels`.
    fn record(&mut self, base: &'static str, labels: &[(&str, &str)], value: u64);
}

/// The queue from the request path to the receipt writer. Never blocks.
pub trait ReceiptQueue {
    /// True when a writer is there to take records (without one, no record is built at all).
    fn ready(&mut self) -> bool;
    fn enqueue(&mut self, message: &[u8]) -> Result<(), HostError>;
}

/// What the host should do after a stream callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Let the message continue.
    Continue,
    /// Hold it and buffer the body (StopIterationAndBuffer).
    Buffer,
    /// A local reply was sent; stop processing this request.
    Answered,
}

impl Step {
    /// The stream waits (for its body, or for a call's answer).
    pub fn pauses(self) -> bool {
        self != Step::Continue
    }
}

/// The ports one stream callback works with, lent by the host for the length of the callback.
pub struct Host<'a> {
    pub http: &'a mut dyn HttpIo,
    pub kv: &'a mut dyn Kv,
    pub clock: &'a dyn Clock,
    pub metrics: &'a mut dyn Metrics,
}
