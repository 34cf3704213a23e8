//! The per-request state machine: the one orchestrator between the host and the pure core.
//!
//! It is written against [`HttpIo`], so the same code runs inside Envoy (`host::http`) and under
//! the fake host in tests. Request path: head → (buffer body) → classify and validate → edit
//! routing headers → resolve the principal → enforce policy (kill switch, rules, rate limits) →
//! forward, or answer locally. Response path: only a `tools/list` whose result the policy filters
//! is buffered; everything else (SSE streams included) passes as it arrives. Nothing here
//! panics: a host failure fails the request closed with a 500 that says so.

use std::rc::Rc;

use crate::killswitch::KillSwitch;
use crate::mcp::classify::{classify_body, classify_head, Classified, HeadDecision, HeaderEdit, RequestHead};
use crate::mcp::error::{jsonrpc_error_body, RejectKind, Rejection};
use crate::mcp::headers;
use crate::mcp::jsonrpc::salvage_id;
use crate::mcp::model::McpRequest;
use crate::mcp::sse::SseDecoder;
use crate::metrics::{self, method_label, Metrics};
use crate::policy::eval::{enforce, tool_visible, tools_list_varies, Action, Verdict};
use crate::policy::tools_list::filter_tools_list;
use crate::policy::Policy;
use crate::principal::{self, CorrelationKey, PeerFacts, Principal};
use crate::receipt::exchange::{Exchange, WireVerdict, QUEUE_FORMAT_VERSION};
use crate::store::Kv;

/// A host call failed. Always our side's (or the host's) fault, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub status: u32,
}

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
}

/// What the flow needs from the HTTP host. Header names are lowercase. A repeated request header
/// must be returned combined (`a, b`): the upstream receives every line, so validation must
/// see every line too.
pub trait HttpIo {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    /// The buffered request body, `len` bytes from the start.
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError>;
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError>;

    /// Names of all request headers (to strip the `x-warden-*` ones a client sent).
    fn request_header_names(&self) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }
    /// A peer fact; `None` when the host does not have it.
    fn peer_fact(&self, _fact: PeerFact, _sources: &principal::Sources) -> Result<Option<String>, HostError> {
        Ok(None)
    }
    /// Milliseconds on the host clock.
    fn now_ms(&self) -> u64 {
        0
    }
    /// Shared state for rate limits; `None` means no store (limits fail open and are counted).
    fn kv(&mut self) -> Option<&mut dyn Kv> {
        None
    }
    fn response_header(&self, _name: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
    fn remove_response_header(&mut self, _name: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn response_body(&self, _len: usize) -> Result<Vec<u8>, HostError> {
        Ok(Vec::new())
    }
    /// Replace the first `len` bytes of the buffered response body with `body`.
    fn set_response_body(&mut self, _len: usize, _body: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
}

/// What the host should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Let the message continue.
    Continue,
    /// Hold it and buffer the body (StopIterationAndBuffer).
    Buffer,
    /// A local reply was sent; stop processing this request.
    Answered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Headers,
    AwaitingBody,
    /// Content-Length is over the cap: wait for the first chunk only to read the id, then 413.
    Oversize,
    Done,
}

/// How much of an over-cap body is read to find the request id for the 413 reply.
const ID_SALVAGE_PREFIX: usize = 4096;

/// The head values classification needs, copied once from the host.
#[derive(Debug, Default)]
struct OwnedHead {
    http_method: String,
    content_type: Option<Vec<u8>>,
    protocol_version: Option<Vec<u8>>,
    mcp_method: Option<Vec<u8>>,
    mcp_name: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
    // Read with the rest at the headers callback, so the body callback needs no second header
    // map fetch: the identity inputs and the client's own `x-warden-*` header names.
    authority: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    trusted_header: Option<Vec<u8>>,
    warden_headers: Vec<String>,
}

impl OwnedHead {
    fn view(&self) -> RequestHead<'_> {
        RequestHead {
            http_method: &self.http_method,
            content_type: self.content_type.as_deref(),
            protocol_version: self.protocol_version.as_deref(),
            mcp_method: self.mcp_method.as_deref(),
            mcp_name: self.mcp_name.as_deref(),
            session_id: self.session_id.as_deref(),
        }
    }
}

/// How a `tools/list` response must be rewritten for this principal.
#[derive(Debug)]
enum ResponseRewrite {
    None,
    /// The policy varies this list by principal; the response headers say how it is framed.
    ToolsList,
    /// Buffer the JSON body, filter it at the end.
    ToolsListJson,
    /// An SSE-framed `tools/list` answer (legacy servers): buffered too, since it is one event.
    ToolsListSse,
}

/// Everything the filter decided about one exchange, for the response path and for receipts.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: McpRequest,
    pub principal: Principal,
    pub correlation: CorrelationKey,
    pub upstream: String,
    pub verdict: Verdict,
}

pub struct RequestFlow {
    policy: Rc<Policy>,
    remote_kill: Rc<KillSwitch>,
    state: State,
    head: OwnedHead,
    outcome: Option<Outcome>,
    rejection: Option<Rejection>,
    rewrite: ResponseRewrite,
}

impl RequestFlow {
    pub fn new(policy: Rc<Policy>) -> Self {
        Self::with_remote_kill(policy, Rc::new(KillSwitch::default()))
    }

    /// `remote_kill`: the kill list last served by the control endpoint.
    pub fn with_remote_kill(policy: Rc<Policy>, remote_kill: Rc<KillSwitch>) -> Self {
        RequestFlow {
            policy,
            remote_kill,
            state: State::Headers,
            head: OwnedHead::default(),
            outcome: None,
            rejection: None,
            rewrite: ResponseRewrite::None,
        }
    }

    /// The classified request, once the filter has classified it.
    pub fn request(&self) -> Option<&McpRequest> {
        self.outcome.as_ref().map(|o| &o.request)
    }

    /// What policy decided (for receipts and logs).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True while the response may need rewriting (a `tools/list` the policy filters).
    pub fn rewrites_response(&self) -> bool {
        !matches!(self.rewrite, ResponseRewrite::None)
    }

    /// The wire rejection, when the request failed validation.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }

    pub fn on_request_headers(&mut self, io: &mut dyn HttpIo, end_of_stream: bool, m: &mut dyn Metrics) -> Step {
        match self.headers_inner(io, end_of_stream, m) {
            Ok(step) => step,
            Err(e) => self.host_failure(io, e),
        }
    }

    pub fn on_request_body(&mut self, io: &mut dyn HttpIo, body_size: usize, end_of_stream: bool, m: &mut dyn Metrics) -> Step {
        match self.body_inner(io, body_size, end_of_stream, m) {
            Ok(step) => step,
            Err(e) => self.host_failure(io, e),
        }
    }

    /// Trailers end the request body (HTTP/2 requests may finish with trailers, not a data frame).
    pub fn on_request_trailers(&mut self, io: &mut dyn HttpIo, body_size: usize, m: &mut dyn Metrics) -> Step {
        self.on_request_body(io, body_size, true, m)
    }

    fn headers_inner(&mut self, io: &mut dyn HttpIo, end_of_stream: bool, m: &mut dyn Metrics) -> Result<Step, HostError> {
        if self.state != State::Headers {
            return Ok(Step::Continue);
        }
        let method = io.request_header(":method")?.unwrap_or_default();
        self.head = OwnedHead {
            http_method: String::from_utf8_lossy(&method).into_owned(),
            content_type: io.request_header("content-type")?,
            protocol_version: io.request_header(headers::PROTOCOL_VERSION)?,
            mcp_method: io.request_header(headers::METHOD)?,
            mcp_name: io.request_header(headers::NAME)?,
            session_id: io.request_header(headers::SESSION_ID)?,
            authority: io.request_header(":authority")?,
            user_agent: io.request_header("user-agent")?,
            trusted_header: match &self.policy.sources.trusted_header {
                Some(h) if self.policy.sources.order.contains(&principal::SourceKind::Header) => io.request_header(h)?,
                _ => None,
            },
            warden_headers: io
                .request_header_names()?
                .into_iter()
                .filter(|n| principal::is_warden_header(n))
                .collect(),
        };
        match classify_head(&self.head.view(), &self.policy.wire) {
            HeadDecision::Forward(c) => self.forward(io, c, m),
            HeadDecision::Reject(r) => self.reject(io, r, m),
            HeadDecision::NeedBody => {
                let declared = io
                    .request_header("content-length")?
                    .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u64>().ok());
                if declared.is_some_and(|n| n > self.policy.max_body_bytes as u64) {
                    if end_of_stream {
                        return self.reject(io, self.too_large(None), m);
                    }
                    self.state = State::Oversize;
                    return Ok(Step::Buffer);
                }
                if end_of_stream {
                    return self.classify(io, &[], m);
                }
                self.state = State::AwaitingBody;
                Ok(Step::Buffer)
            }
        }
    }

    fn body_inner(&mut self, io: &mut dyn HttpIo, body_size: usize, end_of_stream: bool, m: &mut dyn Metrics) -> Result<Step, HostError> {
        if self.state != State::AwaitingBody && self.state != State::Oversize {
            return Ok(Step::Continue);
        }
        if self.state == State::Oversize && body_size < ID_SALVAGE_PREFIX && !end_of_stream {
            // Wait for the whole prefix (or the end): otherwise whether the 413 carries the id
            // would depend on how the client's bytes happened to be split into chunks.
            return Ok(Step::Buffer);
        }
        if self.state == State::Oversize || body_size > self.policy.max_body_bytes {
            let prefix = io.request_body(body_size.min(ID_SALVAGE_PREFIX))?;
            let id = salvage_id(&prefix);
            return self.reject(io, self.too_large(id.as_deref()), m);
        }
        if !end_of_stream {
            return Ok(Step::Buffer);
        }
        let body = io.request_body(body_size)?;
        self.classify(io, &body, m)
    }

    fn classify(&mut self, io: &mut dyn HttpIo, body: &[u8], m: &mut dyn Metrics) -> Result<Step, HostError> {
        match classify_body(&self.head.view(), body, &self.policy.wire) {
            Ok(c) => self.forward(io, c, m),
            Err(r) => self.reject(io, r, m),
        }
    }

    fn too_large(&self, id: Option<&str>) -> Rejection {
        Rejection::new(
            RejectKind::BodyTooLarge,
            format!("Request body exceeds the gateway limit of {} bytes", self.policy.max_body_bytes),
        )
        .with_id(id)
    }

    /// A valid request: make the routing headers true, then let policy decide.
    fn forward(&mut self, io: &mut dyn HttpIo, c: Classified, m: &mut dyn Metrics) -> Result<Step, HostError> {
        self.state = State::Done;
        apply(io, headers::METHOD, &c.mcp_method)?;
        apply(io, headers::NAME, &c.mcp_name)?;

        // Identity, after the route was re-evaluated on the edited headers.
        let policy = Rc::clone(&self.policy);
        let sources = &policy.sources;
        let fact = |f| io.peer_fact(f, sources);
        // Each lookup is a host call: only read what a configured source can use.
        let uses = |k| sources.order.contains(&k);
        let jwt = if uses(principal::SourceKind::Jwt) { fact(PeerFact::JwtPayload)? } else { None };
        let uri_san = if uses(principal::SourceKind::Spiffe) { fact(PeerFact::UriSan)? } else { None };
        let istio = if uses(principal::SourceKind::Istio) { fact(PeerFact::IstioPrincipal)? } else { None };
        let source_address = fact(PeerFact::SourceAddress)?;
        let upstream = match fact(PeerFact::UpstreamCluster)? {
            Some(cluster) => cluster,
            None => String::from_utf8_lossy(self.head.authority.as_deref().unwrap_or_default()).into_owned(),
        };
        let facts = PeerFacts {
            jwt_payload: jwt.as_deref().map(str::as_bytes),
            jwt_claims: None,
            uri_san: uri_san.as_deref(),
            istio_principal: istio.as_deref(),
            trusted_header: self.head.trusted_header.as_deref(),
            source_address: source_address.as_deref(),
            user_agent: self.head.user_agent.as_deref(),
        };
        let principal = principal::resolve(sources, &facts);
        let principal_key = principal.key();
        let correlation = CorrelationKey::with_key(&principal, &principal_key, &upstream);

        // Our headers are ours alone: drop whatever the client claimed, then set the real ones.
        for name in &self.head.warden_headers {
            io.remove_request_header(name)?;
        }
        for (name, value) in principal.upstream_headers(&principal_key, &correlation) {
            io.set_request_header(name, &value)?;
        }

        let now = io.now_ms();
        let verdict = match io.kv() {
            Some(kv) => enforce(&policy, &self.remote_kill, &principal, &c.request, &upstream, kv, now),
            None => enforce(&policy, &self.remote_kill, &principal, &c.request, &upstream, &mut NoStore, now),
        };
        record_verdict(m, &c.request, &verdict);

        let reply = verdict.local_reply(&c.request);
        if verdict.action == Action::Allow && c.request.method.as_deref() == Some("tools/list") {
            let era = c.request.era;
            if tools_list_varies(&policy, era, &upstream) {
                self.rewrite = ResponseRewrite::ToolsList;
            }
        }
        self.outcome = Some(Outcome { request: c.request, principal, correlation, upstream, verdict });
        match reply {
            None => Ok(Step::Continue),
            Some(r) => {
                let hdrs: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                io.send_local_reply(r.status, &hdrs, r.body.as_bytes())?;
                Ok(Step::Answered)
            }
        }
    }

    fn reject(&mut self, io: &mut dyn HttpIo, r: Rejection, m: &mut dyn Metrics) -> Result<Step, HostError> {
        self.state = State::Done;
        m.count(metrics::VALIDATION_FAILURES, &[("kind", r.kind.label())]);
        let mut hdrs: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if r.kind == RejectKind::MethodNotAllowed {
            hdrs.push(("allow", "POST"));
        }
        io.send_local_reply(r.kind.http_status(), &hdrs, r.body().as_bytes())?;
        self.rejection = Some(r);
        Ok(Step::Answered)
    }

    /// A host call failed mid-request: fail closed, say so, never panic.
    fn host_failure(&mut self, io: &mut dyn HttpIo, e: HostError) -> Step {
        self.state = State::Done;
        let msg = format!("Internal error: gateway host call {} failed (status {})", e.call, e.status);
        let body = jsonrpc_error_body(None, -32603, &msg, None);
        // If even the reply fails the host resets the stream; nothing else is left to try.
        let _ = io.send_local_reply(500, &[("content-type", "application/json")], body.as_bytes());
        Step::Answered
    }

    // ------------------------------------------------------------------------------------------
    // Response path

    pub fn on_response_headers(&mut self, io: &mut dyn HttpIo, end_of_stream: bool) -> Step {
        if !matches!(self.rewrite, ResponseRewrite::ToolsList) || end_of_stream {
            self.rewrite = ResponseRewrite::None;
            return Step::Continue;
        }
        let ct = io.response_header("content-type").ok().flatten().unwrap_or_default();
        let ct = String::from_utf8_lossy(&ct).to_ascii_lowercase();
        self.rewrite = if ct.starts_with("application/json") {
            ResponseRewrite::ToolsListJson
        } else if ct.starts_with("text/event-stream") {
            ResponseRewrite::ToolsListSse
        } else {
            ResponseRewrite::None
        };
        // The length changes when tools are removed; if it cannot be dropped, do not rewrite.
        if !matches!(self.rewrite, ResponseRewrite::None) && io.remove_response_header("content-length").is_err() {
            self.rewrite = ResponseRewrite::None;
        }
        Step::Continue
    }

    pub fn on_response_body(&mut self, io: &mut dyn HttpIo, body_size: usize, end_of_stream: bool) -> Step {
        if !matches!(self.rewrite, ResponseRewrite::ToolsListJson | ResponseRewrite::ToolsListSse) {
            return Step::Continue;
        }
        if !end_of_stream {
            return Step::Buffer;
        }
        let (Some(o), Ok(body)) = (self.outcome.as_ref(), io.response_body(body_size)) else {
            return Step::Continue;
        };
        let policy = &self.policy;
        let visible = |tool: &str| tool_visible(policy, &o.principal, o.request.era, &o.upstream, tool);
        let rewritten = match self.rewrite {
            ResponseRewrite::ToolsListJson => filter_tools_list(&body, &visible, true),
            ResponseRewrite::ToolsListSse => rewrite_sse(&body, &visible),
            ResponseRewrite::None | ResponseRewrite::ToolsList => None,
        };
        self.rewrite = ResponseRewrite::None;
        if let Some(new) = rewritten {
            // A failed rewrite must not leak hidden tools: drop the body instead.
            if io.set_response_body(body_size, &new).is_err() {
                let _ = io.set_response_body(body_size, b"");
            }
        }
        Step::Continue
    }
}

/// Rewrites every `data:` event of a buffered SSE `tools/list` answer. `None` when unchanged.
fn rewrite_sse(body: &[u8], visible: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut decoder = SseDecoder::new(body.len().saturating_add(1));
    let mut events = Vec::new();
    decoder.feed(body, &mut events).ok()?;
    decoder.feed(b"\n\n", &mut events).ok()?;
    let mut out = Vec::with_capacity(body.len());
    for ev in events {
        let data = filter_tools_list(ev.data.as_bytes(), visible, true).unwrap_or_else(|| ev.data.into_bytes());
        if let Some(name) = ev.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        if let Some(id) = ev.id {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.push(b'\n');
        }
        for line in data.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    Some(out)
}

fn record_verdict(m: &mut dyn Metrics, req: &McpRequest, v: &Verdict) {
    let method = method_label(req.method.as_deref());
    m.count(metrics::REQUESTS, &[("era", req.era.as_str()), ("method", method), ("decision", v.action.label())]);
    let rule = v.rule_id.as_deref().unwrap_or("default");
    match &v.action {
        Action::Allow => {}
        Action::Deny { .. } => m.count(metrics::DENIALS, &[("rule", rule)]),
        Action::RateLimited { .. } => m.count(metrics::RATE_LIMITED, &[("rule", rule)]),
        Action::Kill { scope, .. } => m.count(metrics::KILL_SWITCH_BLOCKS, &[("scope", scope)]),
    }
    for hit in &v.dry_run {
        m.count(metrics::DRY_RUN_HITS, &[("rule", hit.rule_id.as_str())]);
    }
    for _ in &v.store_errors {
        m.count(metrics::STORE_ERRORS, &[]);
    }
}

/// A store that has nothing and accepts nothing: rate limits fail open and are counted.
struct NoStore;

impl Kv for NoStore {
    fn get(&self, _: &str) -> Result<Option<(Vec<u8>, crate::store::Cas)>, crate::store::KvError> {
        Err(crate::store::KvError::Host(u32::MAX))
    }
    fn set(&mut self, _: &str, _: &[u8], _: Option<crate::store::Cas>) -> Result<(), crate::store::KvError> {
        Err(crate::store::KvError::Host(u32::MAX))
    }
}

fn apply(io: &mut dyn HttpIo, name: &str, edit: &HeaderEdit) -> Result<(), HostError> {
    match edit {
        HeaderEdit::Keep => Ok(()),
        HeaderEdit::Set(v) => io.set_request_header(name, v),
        HeaderEdit::Remove => io.remove_request_header(name),
    }
}

/// Facts the host measured about a finished exchange, for its receipt.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeStats {
    pub start_unix_nanos: u64,
    pub duration_micros: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl RequestFlow {
    /// The compact record of this exchange for the receipt writer; `None` when the filter never
    /// decided anything (e.g. the stream was reset before the request was complete).
    pub fn exchange(&self, stats: ExchangeStats, policy_hash: &str) -> Option<Exchange> {
        let mut e = Exchange {
            v: QUEUE_FORMAT_VERSION,
            unix_nanos: stats.start_unix_nanos,
            method: String::new(),
            name: String::new(),
            upstream: String::new(),
            principal: String::new(),
            actor: String::new(),
            delegation_chain: Vec::new(),
            request_id: String::new(),
            verdict: WireVerdict::Block,
            rule: String::new(),
            severity: String::new(),
            data_classes_in: Vec::new(),
            data_classes_out: Vec::new(),
            policy_hash: policy_hash.to_owned(),
            traceparent: String::new(),
            duration_micros: stats.duration_micros,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
        };
        if let Some(o) = &self.outcome {
            let r = &o.request;
            e.method = r.method.clone().unwrap_or_default();
            e.name = r.name.clone().unwrap_or_default();
            e.upstream = o.upstream.clone();
            e.principal = o.principal.id.clone();
            e.actor = r.client_name.clone().unwrap_or_default();
            e.delegation_chain = o.principal.actors.clone();
            e.request_id = r.id.clone().unwrap_or_default();
            e.traceparent = r.traceparent.clone().unwrap_or_default();
            let (verdict, rule) = match &o.verdict.action {
                Action::Allow => (WireVerdict::Allow, o.verdict.rule_id.clone().unwrap_or_default()),
                Action::Deny { hide, .. } => {
                    let id = o.verdict.rule_id.clone().unwrap_or_else(|| "default".to_owned());
                    (WireVerdict::Block, if *hide { format!("{id}:hide") } else { id })
                }
                Action::RateLimited { .. } => {
                    (WireVerdict::Block, format!("{}:rate_limit", o.verdict.rule_id.as_deref().unwrap_or("default")))
                }
                Action::Kill { scope, .. } => (WireVerdict::Block, format!("kill_switch:{scope}")),
            };
            e.verdict = verdict;
            e.rule = rule;
            return Some(e);
        }
        let r = self.rejection.as_ref()?;
        e.request_id = r.id.clone().unwrap_or_default();
        e.rule = format!("wire:{}", r.kind.label());
        e.severity = "invalid".to_owned();
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite_sse;

    #[test]
    fn sse_tools_list_is_filtered_event_by_event() {
        let body = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"secret\"}]}}\r\n\r\n";
        let out = rewrite_sse(body, &|t: &str| t != "secret").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message\ndata: "), "{text}");
        assert!(text.ends_with("\n\n"));
        let data: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["result"]["tools"], serde_json::json!([{"name": "echo"}]));
        assert_eq!(data["result"]["cacheScope"], "private");
    }
}
