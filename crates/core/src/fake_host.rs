//! A complete in-memory host: every port of [`crate::ports`] implemented the way Envoy behaves,
//! so tests (and native tools) run the same paths the filter runs in Envoy: identity, rate
//! limits, the response pipeline, receipts. Behind the `fake-host` feature.
//!
//! Header semantics follow Envoy's: repeated request header lines are read joined with ", ",
//! `set` replaces every line, `remove` removes every line. The response side mirrors Envoy's
//! body buffering: [`FakeHost::respond`] hands the filter the data held so far, keeps it while
//! the filter buffers, and delivers it (as the filter left it) when the filter continues.

use std::cell::Cell;
use std::collections::HashMap;

use crate::flow::RequestFlow;
use crate::metrics::stat_name;
use crate::ports::{Cas, Clock, Host, HostError, HttpIo, Kv, KvError, Metrics, PeerFact, ReceiptQueue, Step};
use crate::principal::Sources;

/// A captured local reply: status, headers, body.
pub type LocalReply = (u32, Vec<(String, String)>, Vec<u8>);

/// Every value of `name`, joined with ", " (RFC 9110 §5.3), as the Envoy adapter reads it.
pub fn combined(headers: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == name) {
        match out.as_mut() {
            None => out = Some(v.clone()),
            Some(o) => {
                o.extend_from_slice(b", ");
                o.extend_from_slice(v);
            }
        }
    }
    out
}

/// The HTTP stream: request headers and body, peer facts, response headers and the response
/// data the host currently holds, and the captured local reply.
#[derive(Debug, Default)]
pub struct FakeHttp {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub peer: Vec<(PeerFact, String)>,
    /// Every peer fact the filter asked for, in order (each is a host call in Envoy).
    pub facts_read: std::cell::RefCell<Vec<PeerFact>>,
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// Response data handed to the filter in the current callback (see [`FakeHost::respond`]).
    pub response_body: Vec<u8>,
    pub reply: Option<LocalReply>,
    /// Host misuse seen (e.g. a header edit after the local reply, or two replies).
    pub misuse: Vec<String>,
    /// A host call that fails with status 1 (fault injection: `request_body`, …).
    pub fail_call: Option<&'static str>,
    /// gRPC calls dispatched: (cluster, service/method, body).
    pub grpc_calls: Vec<(String, String, Vec<u8>)>,
}

impl FakeHttp {
    /// Every line of a request header (what the upstream would receive).
    pub fn lines(&self, name: &str) -> Vec<Vec<u8>> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        combined(&self.headers, name)
    }

    fn check_not_answered(&mut self, what: &str) {
        if self.reply.is_some() {
            self.misuse.push(format!("{what} after the local reply"));
        }
    }

    fn call(&self, call: &'static str) -> Result<(), HostError> {
        match self.fail_call {
            Some(c) if c == call => Err(HostError { call, status: 1 }),
            _ => Ok(()),
        }
    }
}

impl HttpIo for FakeHttp {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.call("get_header_map_pairs")?;
        Ok(self.header(name))
    }
    fn request_header_names(&self) -> Result<Vec<String>, HostError> {
        self.call("get_header_map_pairs")?;
        Ok(self.headers.iter().map(|(n, _)| n.clone()).collect())
    }
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError> {
        self.call("replace_header_map_value")?;
        self.check_not_answered("set_request_header");
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.as_bytes().to_vec()));
        Ok(())
    }
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        self.call("remove_header_map_value")?;
        self.check_not_answered("remove_request_header");
        self.headers.retain(|(n, _)| n != name);
        Ok(())
    }
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        self.call("get_buffer_bytes")?;
        Ok(self.body.get(..len).map(<[u8]>::to_vec).unwrap_or_else(|| self.body.clone()))
    }
    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError> {
        self.call("set_buffer_bytes")?;
        let len = len.min(self.body.len());
        self.body.splice(..len, body.iter().copied());
        Ok(())
    }
    fn peer_fact(&self, fact: PeerFact, _sources: &Sources) -> Result<Option<String>, HostError> {
        self.call("get_property")?;
        self.facts_read.borrow_mut().push(fact);
        Ok(self.peer.iter().find(|(f, _)| *f == fact).map(|(_, v)| v.clone()))
    }
    fn response_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.call("get_header_map_value")?;
        Ok(combined(&self.response_headers, name))
    }
    fn set_response_header(&mut self, name: &str, value: &str) -> Result<(), HostError> {
        self.call("replace_header_map_value")?;
        self.response_headers.retain(|(n, _)| n != name);
        self.response_headers.push((name.to_owned(), value.as_bytes().to_vec()));
        Ok(())
    }
    fn remove_response_header(&mut self, name: &str) -> Result<(), HostError> {
        self.call("remove_header_map_value")?;
        self.response_headers.retain(|(n, _)| n != name);
        Ok(())
    }
    fn response_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        self.call("get_buffer_bytes")?;
        Ok(self.response_body.get(..len).map(<[u8]>::to_vec).unwrap_or_else(|| self.response_body.clone()))
    }
    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), HostError> {
        self.call("set_buffer_bytes")?;
        let len = len.min(self.response_body.len());
        self.response_body.splice(..len, body.iter().copied());
        Ok(())
    }
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        self.call("send_local_response")?;
        self.check_not_answered("send_local_reply");
        self.reply = Some((status, headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), body.to_vec()));
        Ok(())
    }
    fn dispatch_grpc(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<(), HostError> {
        self.call("dispatch_grpc_call")?;
        self.grpc_calls.push((cluster.to_owned(), format!("{service}/{method}"), body.to_vec()));
        Ok(())
    }
}

/// An in-memory [`Kv`] with Envoy's CAS semantics, for tests and native tools. It can be told to
/// fail the next CAS writes as if another worker had written first.
#[derive(Debug, Default)]
pub struct FakeKv {
    map: HashMap<String, (Vec<u8>, Cas)>,
    next_cas: Cas,
    /// CAS writes still to fail (the key's cas is bumped as a concurrent writer would).
    pub fail_next_cas: u32,
    /// Successful writes so far.
    pub writes: u64,
    /// CAS mismatches reported so far.
    pub mismatches: u64,
}

impl FakeKv {
    pub fn new() -> FakeKv {
        FakeKv::default()
    }

    /// Number of keys ever written (shared data never shrinks).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held in keys and values.
    pub fn bytes(&self) -> usize {
        self.map.iter().map(|(k, (v, _))| k.len() + v.len()).sum()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

impl Kv for FakeKv {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError> {
        Ok(self.map.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), KvError> {
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        if let Some(expected) = cas {
            if self.fail_next_cas > 0 {
                self.fail_next_cas -= 1;
                self.mismatches += 1;
                if let Some(entry) = self.map.get_mut(key) {
                    entry.1 = self.next_cas;
                }
                return Err(KvError::CasMismatch);
            }
            if self.map.get(key).is_some_and(|(_, c)| *c != expected) {
                self.mismatches += 1;
                return Err(KvError::CasMismatch);
            }
        }
        self.writes += 1;
        self.map.insert(key.to_owned(), (value.to_vec(), self.next_cas));
        Ok(())
    }
}

/// A clock that stands still until told otherwise.
#[derive(Debug, Default)]
pub struct FakeClock {
    pub nanos: Cell<u64>,
}

impl FakeClock {
    pub fn at_ms(ms: u64) -> FakeClock {
        FakeClock { nanos: Cell::new(ms.saturating_mul(1_000_000)) }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.nanos.set(self.nanos.get().saturating_add(ms.saturating_mul(1_000_000)));
    }
}

impl Clock for FakeClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.get()
    }
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn count(&mut self, _: &'static str, _: &[(&str, &str)]) {}
    fn add(&mut self, _: &'static str, _: u64) {}
    fn record(&mut self, _: &'static str, _: &[(&str, &str)], _: u64) {}
}

/// Remembers every counter increment (as the full stat name) and every histogram sample.
#[derive(Debug, Default)]
pub struct RecordingMetrics {
    pub counts: Vec<String>,
    /// Histogram samples, by full stat name (labels included).
    pub samples: Vec<(String, u64)>,
}

impl RecordingMetrics {
    /// How many times the stat `name` (with its labels, see [`stat_name`]) was counted.
    pub fn count_of(&self, name: &str) -> usize {
        self.counts.iter().filter(|c| *c == name).count()
    }
}

impl Metrics for RecordingMetrics {
    fn count(&mut self, base: &'static str, labels: &[(&str, &str)]) {
        self.counts.push(stat_name(base, labels));
    }
    fn add(&mut self, base: &'static str, n: u64) {
        for _ in 0..n {
            self.counts.push(base.to_owned());
        }
    }
    fn record(&mut self, base: &'static str, labels: &[(&str, &str)], value: u64) {
        self.samples.push((stat_name(base, labels), value));
    }
}

/// The receipt queue: records what was enqueued; `ready: false` is "no writer deployed".
#[derive(Debug, Default)]
pub struct FakeQueue {
    pub ready: bool,
    pub messages: Vec<Vec<u8>>,
}

impl ReceiptQueue for FakeQueue {
    fn ready(&mut self) -> bool {
        self.ready
    }
    fn enqueue(&mut self, message: &[u8]) -> Result<(), HostError> {
        if !self.ready {
            return Err(HostError { call: "enqueue_shared_queue", status: 1 });
        }
        self.messages.push(message.to_vec());
        Ok(())
    }
}

/// Every port at once, for one stream (the KV outlives streams when a test moves it along).
#[derive(Debug, Default)]
pub struct FakeHost {
    pub http: FakeHttp,
    pub kv: FakeKv,
    pub clock: FakeClock,
    pub metrics: RecordingMetrics,
    pub queue: FakeQueue,
}

/// What the client received of a response, after the filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl FakeHost {
    /// The ports for one callback.
    pub fn ports(&mut self) -> Host<'_> {
        Host { http: &mut self.http, kv: &mut self.kv, clock: &self.clock, metrics: &mut self.metrics }
    }

    /// Drives a request as Envoy does: the headers set in `http.headers` (the filter pauses on them
    /// to read the body), then `body` whole. Returns what the filter answered the body.
    pub fn post(&mut self, flow: &mut RequestFlow, body: Vec<u8>) -> Step {
        let n = body.len();
        self.http.body = body;
        self.http.reply = None;
        let step = flow.on_request_headers(&mut self.ports(), false);
        if step != Step::Buffer {
            return step;
        }
        flow.on_request_body(&mut self.ports(), n, true)
    }

    /// A JSON-RPC POST as the flow tests send one: `body` with the request line a client's
    /// HTTP stack writes (`POST`, `:authority`, the JSON content type) and then `headers`. See
    /// [`FakeHost::post`].
    pub fn post_json(&mut self, flow: &mut RequestFlow, body: String, headers: &[(&str, &[u8])]) -> Step {
        self.http.headers = vec![
            (":method".into(), b"POST".to_vec()),
            (":authority".into(), b"gateway".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
        ];
        self.http.headers.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())));
        self.post(flow, body.into_bytes())
    }

    /// A 2026-07-28 POST ([`FakeHost::post_json`]): `method` with `params` (JSON members;
    /// `_meta` with the version and empty capabilities is added), `name` mirrored into
    /// `Mcp-Name`, and `extra` headers after the era's own.
    pub fn post_modern(
        &mut self,
        flow: &mut RequestFlow,
        method: &str,
        name: Option<&str>,
        params: &str,
        extra: &[(&str, &[u8])],
    ) -> Step {
        let meta =
            r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
        let members = if params.is_empty() { meta.to_owned() } else { format!("{params},{meta}") };
        let body = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{{members}}}}}"#);
        let mut headers: Vec<(&str, &[u8])> = vec![("mcp-protocol-version", b"2026-07-28"), ("mcp-method", method.as_bytes())];
        headers.extend(name.map(|n| ("mcp-name", n.as_bytes())));
        headers.extend_from_slice(extra);
        self.post_json(flow, body, &headers)
    }

    /// Drives the response side as Envoy does: headers, then each chunk added to what the host
    /// holds; while the filter answers [`Step::Buffer`] the data stays held, when it continues the
    /// held data (as the filter left it) goes to the client. Returns what the client received.
    pub fn respond(&mut self, flow: &mut RequestFlow, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Delivered {
        self.respond_ending(flow, headers, chunks, false)
    }

    /// [`FakeHost::respond`], the answer ended by trailers (HTTP/2): no body callback sees
    /// `end_of_stream`; the trailers callback gets what Envoy holds, and only a held body can
    /// still be written (a streamed one has gone).
    pub fn respond_with_trailers(&mut self, flow: &mut RequestFlow, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Delivered {
        self.respond_ending(flow, headers, chunks, true)
    }

    fn respond_ending(
        &mut self,
        flow: &mut RequestFlow,
        headers: &[(&str, &str)],
        chunks: &[&[u8]],
        trailers: bool,
    ) -> Delivered {
        self.http.response_headers = headers.iter().map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())).collect();
        self.http.response_body.clear();
        let mut out = Delivered::default();
        let step = flow.on_response_headers(&mut self.ports(), chunks.is_empty() && !trailers);
        if step != Step::Continue {
            self.http.misuse.push(format!("response headers answered {step:?}"));
        }
        out.headers = self.http.response_headers.clone();
        let mut held = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            self.http.response_body.extend_from_slice(chunk);
            held = self.http.response_body.len();
            let step = flow.on_response_body(&mut self.ports(), held, i + 1 == chunks.len() && !trailers);
            if step == Step::Continue {
                out.body.append(&mut self.http.response_body);
                held = 0;
            }
        }
        if trailers {
            let step = flow.on_response_trailers(&mut self.ports(), held);
            if step == Step::Continue {
                out.body.append(&mut self.http.response_body);
            }
        }
        if !self.http.response_body.is_empty() {
            self.http.misuse.push("response data still held after the end of the stream".to_owned());
        }
        out
    }
}
