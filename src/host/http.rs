//! HTTP context: adapts proxy-wasm callbacks to [`RequestFlow`] and host calls to [`HttpIo`].

use std::cell::OnceCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::abi;
use super::kv::SharedDataKv;
use super::metrics::EnvoyMetrics;
use super::writer;
use crate::flow::{ExchangeStats, HostError, HttpIo, PeerFact, RequestFlow, Step};
use crate::killswitch::KillSwitch;
use crate::metrics::{self, Metrics};
use crate::pbstruct;
use crate::policy::Policy;
use crate::principal::Sources;
use crate::store::Kv;

pub struct WardenHttp {
    flow: RequestFlow,
    body_size: usize,
    /// Nanoseconds spent inside this filter's callbacks (the filter-time histogram).
    busy_ns: u64,
    start_nanos: u64,
    bytes_out: u64,
    policy_hash: Rc<str>,
}

impl WardenHttp {
    pub fn new(policy: Rc<Policy>, remote_kill: Rc<KillSwitch>, policy_hash: Rc<str>) -> Self {
        WardenHttp {
            flow: RequestFlow::with_remote_kill(policy, remote_kill),
            body_size: 0,
            busy_ns: 0,
            start_nanos: 0,
            bytes_out: 0,
            policy_hash,
        }
    }

    /// Runs one callback, accounting the time spent in it (two clock reads: each is a host call,
    /// so only callbacks that do work are timed).
    fn timed<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = abi::now_nanos();
        if self.start_nanos == 0 {
            self.start_nanos = start;
        }
        let out = f(self);
        self.busy_ns = self.busy_ns.saturating_add(abi::now_nanos().saturating_sub(start));
        out
    }
}

/// Host I/O for the current HTTP stream, for one callback.
///
/// The request header map is fetched once, on the first lookup, and every later lookup in the
/// same callback is answered from it: one host call instead of one per header. Edits drop it.
#[derive(Default)]
struct EnvoyIo {
    headers: OnceCell<abi::HeaderSnapshot>,
    kv: SharedDataKv,
}

impl EnvoyIo {
    fn snapshot(&self) -> Result<&abi::HeaderSnapshot, HostError> {
        if self.headers.get().is_none() {
            let snapshot = abi::HeaderSnapshot::read(MapType::HttpRequestHeaders)?;
            let _ = self.headers.set(snapshot);
        }
        self.headers.get().ok_or(HostError { call: "get_header_map_pairs", status: u32::MAX })
    }
}

fn property_text(path: &[&str]) -> Result<Option<String>, HostError> {
    Ok(abi::property(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()).filter(|s| !s.is_empty()))
}

impl HttpIo for EnvoyIo {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.snapshot()?.get(name)
    }
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError> {
        self.headers.take();
        abi::set_header(MapType::HttpRequestHeaders, name, value)
    }
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        self.headers.take();
        abi::remove_header(MapType::HttpRequestHeaders, name)
    }
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer(BufferType::HttpRequestBody, 0, len)
    }
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body, "mcp_warden")
    }
    fn request_header_names(&self) -> Result<Vec<String>, HostError> {
        self.snapshot()?.names()
    }
    fn peer_fact(&self, fact: PeerFact, sources: &Sources) -> Result<Option<String>, HostError> {
        match fact {
            PeerFact::JwtPayload => {
                let Some(md) = abi::property(&["metadata"])? else { return Ok(None) };
                // An unreadable payload is no identity (never a failure of the request).
                Ok(pbstruct::struct_field_json(&md, &sources.jwt_metadata_namespace, &sources.jwt_payload_key)
                    .ok()
                    .flatten())
            }
            PeerFact::UriSan => property_text(&["connection", "uri_san_peer_certificate"]),
            PeerFact::IstioPrincipal => property_text(&["source", "principal"]),
            PeerFact::SourceAddress => property_text(&["source", "address"]),
            PeerFact::UpstreamCluster => property_text(&["xds", "cluster_name"]),
        }
    }
    fn now_ms(&self) -> u64 {
        abi::now_nanos() / 1_000_000
    }
    fn kv(&mut self) -> Option<&mut dyn Kv> {
        Some(&mut self.kv)
    }
    fn response_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        abi::header(MapType::HttpResponseHeaders, name)
    }
    fn remove_response_header(&mut self, name: &str) -> Result<(), HostError> {
        abi::remove_header(MapType::HttpResponseHeaders, name)
    }
    fn response_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer(BufferType::HttpResponseBody, 0, len)
    }
    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError> {
        abi::set_buffer(BufferType::HttpResponseBody, len, body)
    }
}

fn action(step: Step) -> Action {
    match step {
        Step::Continue => Action::Continue,
        Step::Buffer | Step::Answered => Action::Pause,
    }
}

impl Context for WardenHttp {}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        if matches!(abi::header(MapType::HttpRequestHeaders, "x-warden-test-panic"), Ok(Some(_))) {
            #[allow(clippy::panic)]
            {
                panic!("fault injection: x-warden-test-panic");
            }
        }
        self.timed(|s| action(s.flow.on_request_headers(&mut EnvoyIo::default(), end_of_stream, &mut EnvoyMetrics)))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.body_size = body_size;
        self.timed(|s| action(s.flow.on_request_body(&mut EnvoyIo::default(), body_size, end_of_stream, &mut EnvoyMetrics)))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let size = self.body_size;
        self.timed(|s| action(s.flow.on_request_trailers(&mut EnvoyIo::default(), size, &mut EnvoyMetrics)))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if !self.flow.rewrites_response() {
            return Action::Continue;
        }
        self.timed(|s| action(s.flow.on_response_headers(&mut EnvoyIo::default(), end_of_stream)))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.bytes_out = self.bytes_out.saturating_add(body_size as u64);
        if !self.flow.rewrites_response() {
            return Action::Continue;
        }
        self.timed(|s| action(s.flow.on_response_body(&mut EnvoyIo::default(), body_size, end_of_stream)))
    }

    fn on_log(&mut self) {
        EnvoyMetrics.record(metrics::FILTER_TIME_US, self.busy_ns / 1000);
        let stats = ExchangeStats {
            start_unix_nanos: self.start_nanos,
            duration_micros: abi::now_nanos().saturating_sub(self.start_nanos) / 1000,
            bytes_in: self.body_size as u64,
            bytes_out: self.bytes_out,
        };
        // The record is only built when a writer is there to take it.
        let Some(queue) = writer::queue() else { return };
        if let Some(exchange) = self.flow.exchange(stats, &self.policy_hash) {
            writer::enqueue(queue, &exchange);
        }
    }
}
