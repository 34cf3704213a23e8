//! The core's ports over Envoy: [`EnvoyIo`] (the stream's header maps, bodies, local replies,
//! properties), [`SharedDataKv`] (shared data with CAS), [`EnvoyClock`] and [`EnvoyQueue`] (the
//! shared queue to the receipt writer). Metrics are in `super::metrics`.

use std::cell::{Cell, OnceCell};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use super::abi;
use super::writer::{RECEIPT_QUEUE, WRITER_VM_ID};
use mcp_warden_core::pbstruct;
use mcp_warden_core::ports::{Cas, Clock, HostError, HttpIo, Kv, KvError, PeerFact, ReceiptQueue};
use mcp_warden_core::principal::Sources;

/// Host I/O for the current HTTP stream, for one callback.
///
/// Each header map (request, response) is fetched once, on its first lookup, and every later
/// lookup in the same callback is answered from it: one host call instead of one per header.
/// Edits drop it.
#[derive(Default)]
pub struct EnvoyIo {
    headers: OnceCell<abi::HeaderSnapshot>,
    response_headers: OnceCell<abi::HeaderSnapshot>,
}

impl EnvoyIo {
    fn snapshot(&self) -> Result<&abi::HeaderSnapshot, HostError> {
        Self::snapshot_of(&self.headers, MapType::HttpRequestHeaders)
    }

    fn snapshot_of(cell: &OnceCell<abi::HeaderSnapshot>, map: MapType) -> Result<&abi::HeaderSnapshot, HostError> {
        if cell.get().is_none() {
            let snapshot = abi::HeaderSnapshot::read(map)?;
            let _ = cell.set(snapshot);
        }
        cell.get().ok_or(HostError { call: "get_header_map_pairs", status: u32::MAX })
    }
}

fn property_text(path: &[&str]) -> Result<Option<String>, HostError> {
    Ok(abi::property(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()).filter(|s| !s.is_empty()))
}

impl HttpIo for EnvoyIo {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.snapshot()?.get(name)
    }
    fn request_header_names(&self) -> Result<Vec<String>, HostError> {
        self.snapshot()?.names()
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
    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError> {
        abi::set_buffer(BufferType::HttpRequestBody, len, body)
    }
    fn peer_fact(&self, fact: PeerFact, sources: &Sources) -> Result<Option<String>, HostError> {
        match fact {
            PeerFact::JwtPayload => {
                let Some(md) = abi::property(&["metadata"])? else { return Ok(None) };
                // An unreadable payload is no identity (never a failure of the request).
                Ok(pbstruct::struct_field_json(&md, &sources.jwt_metadata_namespace, &sources.jwt_payload_key).ok().flatten())
            }
            PeerFact::UriSan => property_text(&["connection", "uri_san_peer_certificate"]),
            PeerFact::IstioPrincipal => property_text(&["source", "principal"]),
            PeerFact::SourceAddress => property_text(&["source", "address"]),
            PeerFact::UpstreamCluster => property_text(&["xds", "cluster_name"]),
            PeerFact::UpstreamAddress => property_text(&["upstream", "address"]),
        }
    }
    fn response_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        Self::snapshot_of(&self.response_headers, MapType::HttpResponseHeaders)?.get(name)
    }
    fn set_response_header(&mut self, name: &str, value: &str) -> Result<(), HostError> {
        self.response_headers.take();
        abi::set_header(MapType::HttpResponseHeaders, name, value)
    }
    fn remove_response_header(&mut self, name: &str) -> Result<(), HostError> {
        self.response_headers.take();
        abi::remove_header(MapType::HttpResponseHeaders, name)
    }
    fn response_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer(BufferType::HttpResponseBody, 0, len)
    }
    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError> {
        abi::set_buffer(BufferType::HttpResponseBody, len, body)
    }
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body, "mcp_warden")
    }
    fn dispatch_grpc(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<(), HostError> {
        // Dispatched from the stream's callback: the SDK routes the answer to this stream's context.
        hostcalls::dispatch_grpc_call(cluster, service, method, vec![], Some(body), std::time::Duration::from_millis(timeout_ms))
            .map(|_| ())
            .map_err(|_| HostError { call: "dispatch_grpc_call", status: 1 })
    }
}

/// [`Kv`] over Envoy shared data: process-wide, shared by every worker VM with the same vm_id.
///
/// Shared data cannot be deleted through the ABI, which is why everything stateful lives in
/// bounded slot tables (`mcp_warden_core::state::slots`) whose keys are reused, never accumulated.
#[derive(Default)]
pub struct SharedDataKv;

impl Kv for SharedDataKv {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError> {
        abi::shared_get(key).map_err(|e| KvError::Host(e.status))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), KvError> {
        match abi::shared_set(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(e) if e.status == abi::CAS_MISMATCH => Err(KvError::CasMismatch),
            Err(e) => Err(KvError::Host(e.status)),
        }
    }
}

/// The host clock.
pub struct EnvoyClock;

impl Clock for EnvoyClock {
    fn now_nanos(&self) -> u64 {
        abi::now_nanos()
    }
}

thread_local! {
    /// The writer's queue as this worker VM resolved it (0 = not yet / not found).
    static QUEUE: Cell<u32> = const { Cell::new(0) };
    /// When resolving last failed (ms): without a writer, look again at most once a second
    /// instead of paying a host call on every request.
    static LAST_MISS_MS: Cell<u64> = const { Cell::new(0) };
}

const RESOLVE_RETRY_MS: u64 = 1000;

/// The shared queue to the singleton receipt writer, resolved once per VM; without a writer VM
/// it is looked up again at most once a second.
pub struct EnvoyQueue;

impl ReceiptQueue for EnvoyQueue {
    fn ready(&mut self) -> bool {
        if QUEUE.with(Cell::get) != 0 {
            return true;
        }
        let now_ms = abi::now_nanos() / 1_000_000;
        let last_miss = LAST_MISS_MS.with(Cell::get);
        if last_miss != 0 && now_ms.saturating_sub(last_miss) < RESOLVE_RETRY_MS {
            return false;
        }
        match hostcalls::resolve_shared_queue(WRITER_VM_ID, RECEIPT_QUEUE).ok().flatten() {
            Some(id) => {
                QUEUE.with(|q| q.set(id));
                true
            }
            None => {
                LAST_MISS_MS.with(|t| t.set(now_ms.max(1)));
                false
            }
        }
    }

    /// Never blocks; a failure forgets the queue (it is resolved again on the next request).
    fn enqueue(&mut self, message: &[u8]) -> Result<(), HostError> {
        let id = QUEUE.with(Cell::get);
        hostcalls::enqueue_shared_queue(id, Some(message)).map_err(|_| {
            QUEUE.with(|q| q.set(0));
            HostError { call: "enqueue_shared_queue", status: 1 }
        })
    }
}
