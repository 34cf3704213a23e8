//! The request path of one stream, as gather → decide → apply, written against the
//! [`ports`](crate::ports) so the same code runs in Envoy and on the fake host.
//!
//! 1. **Gather** the head once at the headers callback (`gather::OwnedHead`), the body when it
//!    is complete.
//! 2. **Decide on the wire**: classify and validate ([`crate::mcp::classify`]); a rejection is
//!    answered here.
//! 3. **Apply the routing headers** the wire decision made true. Envoy re-evaluates the route on
//!    the edited headers, which is why the next facts are read only now.
//! 4. **Gather the peer facts** the configured principal sources use (each is a host call) and
//!    the upstream cluster the route chose.
//! 5. **Decide** ([`super::decide`]): principal, correlation key, policy, the reply, the
//!    response pipeline.
//! 6. **Apply**: strip and set `x-warden-*`, count, answer locally or forward.
//!
//! The response path hands every callback to the [`ResponsePipeline`] chosen in step 5; when
//! it is empty, response callbacks cost nothing. Nothing here panics: a host failure fails the
//! request closed with a 500 that says so.

use std::cell::RefCell;
use std::rc::Rc;

use crate::correlate::mesh;
use crate::flow::vm::VmCache;
use crate::inspect::{Disposition, ExchangeView, Finding, Severity};
use crate::mcp::classify::{classify_body, classify_head, Classified, HeadDecision, HeaderEdit};
use crate::mcp::error::{RejectKind, Rejection};
use crate::mcp::headers;
use crate::mcp::jsonrpc::salvage_id;
use crate::mcp::model::{Era, McpRequest};
use crate::mcp::Method;
use crate::metrics;
use crate::policy::{Action, KillSwitch, Policy, Verdict};
use crate::ports::{now_ms, Fault, Host, HostError, HttpIo, Metrics, PeerFact, Step};
use crate::principal::PeerFacts;
use crate::state::owners;
use crate::trace_context;

use super::decide::{decide, mesh_action, Decision, MeshCheck, Outcome, RequestFacts};
use super::gather::{OwnedHead, OwnedPeer};
use super::reply::{self, LocalReply};
use super::response::ResponsePipeline;

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

/// The finding of an answer served by another cluster than the decision's.
pub const UPSTREAM_CHANGED: &str = "upstream_changed";

pub struct RequestFlow {
    policy: Rc<Policy>,
    remote_kill: Rc<KillSwitch>,
    /// The worker VM's confirmed session bindings (shared by its streams).
    vm: Rc<RefCell<VmCache>>,
    state: State,
    head: OwnedHead,
    outcome: Option<Outcome>,
    rejection: Option<Rejection>,
    response: Option<ResponsePipeline>,
    /// A legacy `initialize` was let through: its answer's `Mcp-Session-Id` is bound to the caller.
    binds_session: bool,
    /// The mesh-wide check the request waits for (its reply arrives in [`RequestFlow::on_mesh_answer`]).
    pending_mesh: Option<MeshCheck>,
    /// The decision's upstream is the cluster Envoy's route named before the filter's header
    /// edits: checked against the cluster that served once the answer comes
    /// ([`RequestFlow::served_elsewhere`]).
    checks_route: bool,
}

impl RequestFlow {
    pub fn new(policy: Rc<Policy>) -> Self {
        Self::with_remote_kill(policy, Rc::new(KillSwitch::default()))
    }

    /// `remote_kill`: the kill list last served by the control endpoint.
    pub fn with_remote_kill(policy: Rc<Policy>, remote_kill: Rc<KillSwitch>) -> Self {
        Self::for_vm(policy, remote_kill, Rc::default())
    }

    /// A stream of a worker VM: its policy, kill list and session cache are the VM's.
    pub fn for_vm(policy: Rc<Policy>, remote_kill: Rc<KillSwitch>, vm: Rc<RefCell<VmCache>>) -> Self {
        RequestFlow {
            policy,
            remote_kill,
            vm,
            state: State::Headers,
            head: OwnedHead::default(),
            outcome: None,
            rejection: None,
            response: None,
            binds_session: false,
            pending_mesh: None,
            checks_route: false,
        }
    }

    /// The policy this stream is decided under (a reload applies to the next stream).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The classified request, once the filter has classified it.
    pub fn request(&self) -> Option<&McpRequest> {
        self.outcome.as_ref().map(|o| &o.request)
    }

    /// What policy decided (for receipts and logs).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The wire rejection, when the request failed validation.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }

    /// True while response callbacks may need the filter (a response pipeline is pending).
    pub fn inspects_response(&self) -> bool {
        self.binds_session || self.checks_route || self.response.as_ref().is_some_and(ResponsePipeline::active)
    }

    /// The worker VM's cache (shared by its streams).
    pub(super) fn vm_cache(&self) -> &RefCell<VmCache> {
        &self.vm
    }

    /// What the upstream's answer said, as far as the response pipeline read it.
    pub fn answer(&self) -> super::response::Answer {
        self.response.as_ref().map(ResponsePipeline::answer).unwrap_or_default()
    }

    /// True when a finding so far withheld (blocked) the answer.
    pub fn withheld(&self) -> bool {
        let request = self.outcome.as_ref().map(|o| o.findings.as_slice()).unwrap_or_default();
        let response = self.response.as_ref().map(ResponsePipeline::findings).unwrap_or_default();
        request.iter().chain(response).any(|f| f.disposition == crate::inspect::Disposition::Block)
    }

    /// Everything found so far: the request path's checks, then the response pipeline's.
    pub fn findings(&self) -> Vec<crate::inspect::Finding> {
        let request = self.outcome.as_ref().map(|o| o.findings.as_slice()).unwrap_or_default();
        let response = self.response.as_ref().map(ResponsePipeline::findings).unwrap_or_default();
        request.iter().chain(response).cloned().collect()
    }

    pub fn on_request_headers(&mut self, host: &mut Host<'_>, end_of_stream: bool) -> Step {
        let r = self.headers_inner(host, end_of_stream);
        self.or_fail_closed(host, r)
    }

    pub fn on_request_body(&mut self, host: &mut Host<'_>, body_size: usize, end_of_stream: bool) -> Step {
        let r = self.body_inner(host, body_size, end_of_stream);
        self.or_fail_closed(host, r)
    }

    /// Trailers end the request body (HTTP/2 requests may finish with trailers, not a data frame).
    pub fn on_request_trailers(&mut self, host: &mut Host<'_>, body_size: usize) -> Step {
        self.on_request_body(host, body_size, true)
    }

    fn headers_inner(&mut self, host: &mut Host<'_>, end_of_stream: bool) -> Result<Step, HostError> {
        if self.state != State::Headers {
            return Ok(Step::Continue);
        }
        self.head = OwnedHead::read(host.http, &self.policy.sources)?;
        if self.head.trusted_header_repeated {
            // Two lines are two claims: joined, they would be an identity nobody asserted.
            let name = self.policy.sources.trusted_header.as_deref().unwrap_or_default();
            return self.refuse(
                host,
                Rejection::new(RejectKind::InvalidRequest, format!("Invalid Request: the identity header {name} is repeated")),
            );
        }
        match classify_head(&self.head.view(), &self.policy.wire) {
            // A request without a body has no id to keep: refused here. One with a body is
            // refused once the body is in, with its id (`classify`).
            HeadDecision::Forward(c) => match self.head.repeated_claim {
                Some(claim) => self.refuse(host, claim.rejection(None)),
                None => self.admit(host, *c, &[]),
            },
            HeadDecision::Reject(r) => self.refuse(host, r),
            HeadDecision::NeedBody => {
                if self.head.content_length.is_some_and(|n| n > self.policy.max_body_bytes as u64) {
                    if end_of_stream {
                        return self.refuse(host, self.too_large(None));
                    }
                    self.state = State::Oversize;
                    return Ok(Step::Buffer);
                }
                if end_of_stream {
                    return self.classify(host, &[]);
                }
                self.state = State::AwaitingBody;
                Ok(Step::Buffer)
            }
        }
    }

    fn body_inner(&mut self, host: &mut Host<'_>, body_size: usize, end_of_stream: bool) -> Result<Step, HostError> {
        if self.state != State::AwaitingBody && self.state != State::Oversize {
            return Ok(Step::Continue);
        }
        if self.state == State::Oversize && body_size < ID_SALVAGE_PREFIX && !end_of_stream {
            // Wait for the whole prefix (or the end): otherwise whether the 413 carries the id
            // would depend on how the client's bytes happened to be split into chunks.
            return Ok(Step::Buffer);
        }
        if self.state == State::Oversize || body_size > self.policy.max_body_bytes {
            let prefix = host.http.request_body(body_size.min(ID_SALVAGE_PREFIX))?;
            let id = salvage_id(&prefix);
            return self.refuse(host, self.too_large(id.as_deref()));
        }
        if !end_of_stream {
            return Ok(Step::Buffer);
        }
        let body = host.http.request_body(body_size)?;
        self.classify(host, &body)
    }

    fn classify(&mut self, host: &mut Host<'_>, body: &[u8]) -> Result<Step, HostError> {
        if let Some(claim) = self.head.repeated_claim {
            return self.refuse(host, claim.rejection(salvage_id(body).as_deref()));
        }
        match classify_body(&self.head.view(), body, &self.policy.wire) {
            Ok(c) => self.admit(host, c, body),
            Err(r) => self.refuse(host, r),
        }
    }

    fn too_large(&self, id: Option<&str>) -> Rejection {
        Rejection::new(
            RejectKind::BodyTooLarge,
            format!("Request body exceeds the gateway limit of {} bytes", self.policy.max_body_bytes),
        )
        .with_id(id)
    }

    /// A valid request: make its routing headers true, gather the rest, decide, apply.
    fn admit(&mut self, host: &mut Host<'_>, c: Classified, body: &[u8]) -> Result<Step, HostError> {
        self.state = State::Done;
        edit_header(host.http, headers::METHOD, &c.mcp_method)?;
        edit_header(host.http, headers::NAME, &c.mcp_name)?;
        edit_header(host.http, "content-type", &c.content_type)?;
        if c.request.era == Era::Legacy {
            // Legacy clients send no `Mcp-Param-*`: nothing in the body backs them, so they go.
            for name in &self.head.param_headers {
                host.http.remove_request_header(name)?;
            }
        }

        let policy = Rc::clone(&self.policy);
        let mut peer = OwnedPeer::read(host.http, &policy.sources, self.head.trusted_header.as_deref())?;
        let routed = peer.upstream.is_some();
        let upstream = match peer.upstream.take() {
            Some(cluster) => cluster,
            None => String::from_utf8_lossy(self.head.authority.as_deref().unwrap_or_default()).into_owned(),
        };
        let facts = RequestFacts {
            request: c.request,
            batch: c.batch,
            body,
            peer: PeerFacts {
                jwt_payload: peer.jwt.as_deref().map(str::as_bytes),
                jwt_claims: None,
                uri_san: peer.uri_san.as_deref(),
                istio_principal: peer.istio.as_deref(),
                trusted_header: self.head.trusted_header.as_deref(),
                source_address: peer.source_address.as_deref(),
                user_agent: self.head.user_agent.as_deref(),
            },
            upstream,
            client_warden_headers: &self.head.warden_headers,
            now_ms: now_ms(host.clock),
        };
        // Single-threaded VM: the cache is never borrowed twice; if it were, a fresh one serves.
        let mut spare = VmCache::default();
        let mut cache = self.vm.try_borrow_mut();
        let vm = match cache.as_deref_mut() {
            Ok(c) => c,
            Err(_) => &mut spare,
        };
        let mut decision = decide(&policy, &self.remote_kill, facts, host.kv, vm);
        drop(cache);
        self.binds_session = decision.binds_session;
        let mesh = decision.mesh.take().filter(|_| decision.reply.is_none());
        if decision.rename.is_some() {
            // A hidden call's `Mcp-Param-*` mirror arguments that do not leave.
            for name in &self.head.param_headers {
                host.http.remove_request_header(name)?;
            }
        }
        let (reply, response, mut outcome) = apply_decision(host, decision, body.len(), mesh.is_none())?;
        self.checks_route = routed && reply.is_none();
        // After apply_decision: its removal of the client's `x-warden-*` must not take ours.
        let handed_on = if reply.is_none() { hand_on_trace_context(host, &mut outcome) } else { Ok(()) };
        self.response = response;
        self.outcome = Some(outcome);
        // A failed header edit fails the request (500), with the decision kept for its receipt.
        handed_on?;
        if let Some(check) = mesh {
            return Ok(self.ask_mesh(host, check));
        }
        match reply {
            None => Ok(Step::Continue),
            Some(r) => {
                host.http.send_local_reply(r.status, &r.header_pairs(), r.body.as_bytes())?;
                Ok(Step::Answered)
            }
        }
    }

    /// Sends the mesh-wide check; the stream waits for its answer. A call that cannot be made
    /// is a service that cannot answer (the failure mode decides at once).
    fn ask_mesh(&mut self, host: &mut Host<'_>, check: MeshCheck) -> Step {
        let sent = host.http.dispatch_grpc(&check.cluster, mesh::SERVICE, mesh::METHOD, &check.body, check.timeout_ms);
        self.pending_mesh = Some(check);
        match sent {
            Ok(()) => Step::Buffer,
            Err(e) => {
                host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                self.on_mesh_answer(host, None)
            }
        }
    }

    /// True while the request waits for the mesh-wide service.
    pub fn awaits_mesh(&self) -> bool {
        self.pending_mesh.is_some()
    }

    /// The mesh-wide service answered (`None`: it failed, timed out or cannot be reached).
    /// `Continue`: resume the request; `Answered`: it was refused with a local reply.
    pub fn on_mesh_answer(&mut self, host: &mut Host<'_>, answer: Option<&[u8]>) -> Step {
        let Some(check) = self.pending_mesh.take() else { return Step::Continue };
        let parsed = answer.and_then(mesh::answer);
        let outcome_label = match &parsed {
            Some(mesh::Answer::Ok) => "ok",
            Some(mesh::Answer::OverLimit { .. }) => "over_limit",
            None => "failed",
        };
        host.metrics.count(metrics::MESH_CHECKS, &[("outcome", outcome_label)]);
        let action = mesh_action(&check, parsed.clone());
        let Some(o) = self.outcome.as_mut() else { return Step::Continue };
        if parsed.is_none() {
            // Counted and receipted whichever way the failure mode decided.
            let disposition = if action == Action::Allow { Disposition::Report } else { Disposition::Block };
            o.findings.push(Finding {
                inspector: crate::correlate::INSPECTOR,
                what: "mesh_unavailable",
                severity: Severity::Warning,
                data_class: None,
                fault: Fault::Host,
                disposition,
            });
            host.metrics.count(metrics::STORE_ERRORS, &[]);
        }
        if action != Action::Allow {
            o.verdict.action = action;
        }
        count_verdict(host.metrics, &o.request, &o.verdict);
        let Some(reply) = reply::for_action(&o.verdict.action, &o.request) else { return Step::Continue };
        self.response = None;
        self.binds_session = false;
        match host.http.send_local_reply(reply.status, &reply.header_pairs(), reply.body.as_bytes()) {
            Ok(()) => Step::Answered,
            Err(e) => {
                host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                Step::Answered
            }
        }
    }

    fn refuse(&mut self, host: &mut Host<'_>, r: Rejection) -> Result<Step, HostError> {
        self.state = State::Done;
        host.metrics.count(metrics::VALIDATION_FAILURES, &[("kind", r.kind.label())]);
        let reply = reply::for_rejection(&r);
        self.rejection = Some(r);
        host.http.send_local_reply(reply.status, &reply.header_pairs(), reply.body.as_bytes())?;
        Ok(Step::Answered)
    }

    /// A host call failed mid-request: fail closed, say so, never panic.
    fn or_fail_closed(&mut self, host: &mut Host<'_>, r: Result<Step, HostError>) -> Step {
        match r {
            Ok(step) => step,
            Err(e) => {
                self.state = State::Done;
                host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                let reply = reply::for_host_failure(&e);
                // If even the reply fails the host resets the stream; nothing else is left to try.
                let _ = host.http.send_local_reply(reply.status, &reply.header_pairs(), reply.body.as_bytes());
                Step::Answered
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Response path: everything goes to the pipeline chosen at request time.

    pub fn on_response_headers(&mut self, host: &mut Host<'_>, end_of_stream: bool) -> Step {
        if std::mem::take(&mut self.binds_session) {
            self.bind_session(host);
        }
        if std::mem::take(&mut self.checks_route) && self.served_elsewhere(host) {
            let pipeline = self.response.get_or_insert_with(|| ResponsePipeline::new(Vec::new()));
            return match pipeline.withhold_all(host.http, UPSTREAM_CHANGED, end_of_stream) {
                Ok(step) => step,
                Err(e) => {
                    host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                    self.response = Some(ResponsePipeline::refusing());
                    Step::Continue
                }
            };
        }
        let Some(pipeline) = self.response.as_mut() else { return Step::Continue };
        match pipeline.on_headers(host.http, end_of_stream) {
            Ok(step) => step,
            Err(e) => {
                // The answer cannot be prepared for inspection: it must not pass uninspected.
                host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                self.response = Some(ResponsePipeline::refusing());
                Step::Continue
            }
        }
    }

    /// The answer came from another cluster than the one the decision was made for. Envoy
    /// re-evaluates the route after the filter's header edits (`Mcp-Name` set from the body, a
    /// sentinel decoded, `x-warden-*` stripped), but the cluster a wasm filter reads is the
    /// route's before them until the router asks again (Envoy 1.40): a route that picks its
    /// cluster by what the filter edits sends the request where no rule, kill switch or
    /// baseline was looked up. Once the router has run, the cluster is the one that served.
    /// A cluster that is an internal listener (`envoy://…`, the shipped tracing hop that a
    /// filter-set `x-warden-span-name` picks) is a hop in front of the upstream, whose own route
    /// table chose what served: not compared. Not readable: assumed elsewhere (the answer is
    /// withheld, never passed on a guess).
    fn served_elsewhere(&self, host: &mut Host<'_>) -> bool {
        let Some(o) = self.outcome.as_ref() else { return false };
        let sources = &self.policy.sources;
        let read = host.http.peer_fact(PeerFact::UpstreamCluster, sources).and_then(|served| match served {
            Some(c) if c != o.upstream => {
                let hop = host.http.peer_fact(PeerFact::UpstreamAddress, sources)?;
                Ok(!hop.is_some_and(|a| a.starts_with("envoy://")))
            }
            _ => Ok(false),
        });
        read.unwrap_or_else(|e| {
            host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
            true
        })
    }

    /// The `initialize` answer's session id now belongs to the caller. A binding that cannot be
    /// written is counted; the session is then bound to its first user (see `state::owners`).
    fn bind_session(&self, host: &mut Host<'_>) {
        let (Some(o), Ok(Some(sid))) = (self.outcome.as_ref(), host.http.response_header(headers::SESSION_ID)) else { return };
        let sid = String::from_utf8_lossy(&sid);
        let table = owners::sessions(self.policy.session_slots);
        let now = now_ms(host.clock);
        if owners::bind(host.kv, &table, sid.trim(), &o.principal_key, now, self.policy.session_ttl_ms).is_err() {
            host.metrics.count(metrics::STORE_ERRORS, &[]);
        }
    }

    /// Trailers end the answer: what the body callbacks held is finished as at its end
    /// (`body_size`: the size of the last body callback, what Envoy holds).
    pub fn on_response_trailers(&mut self, host: &mut Host<'_>, body_size: usize) -> Step {
        self.response_step(host, body_size, None)
    }

    pub fn on_response_body(&mut self, host: &mut Host<'_>, body_size: usize, end_of_stream: bool) -> Step {
        self.response_step(host, body_size, Some(end_of_stream))
    }

    /// One response callback through the pipeline: a body chunk (`Some(end_of_stream)`) or the
    /// trailers (`None`).
    fn response_step(&mut self, host: &mut Host<'_>, body_size: usize, end_of_stream: Option<bool>) -> Step {
        let (Some(pipeline), Some(o)) = (self.response.as_mut(), self.outcome.as_ref()) else {
            return Step::Continue;
        };
        let ex = ExchangeView {
            request: &o.request,
            principal: &o.principal,
            principal_key: &o.principal_key,
            upstream: &o.upstream,
            now_ms: now_ms(host.clock),
        };
        let before = pipeline.findings().len();
        let result = match end_of_stream {
            Some(eos) => pipeline.on_body(host.http, host.kv, &ex, body_size, eos),
            None => pipeline.on_trailers(host.http, host.kv, &ex, body_size),
        };
        let step = match result {
            Ok(step) => step,
            Err(e) => {
                // The response cannot be read or rewritten: it must not pass uninspected.
                host.metrics.count(metrics::HOST_ERRORS, &[("call", e.call)]);
                let _ = host.http.set_response_body(body_size, b"");
                Step::Continue
            }
        };
        count_findings(host.metrics, pipeline.findings().get(before..).unwrap_or_default().iter());
        step
    }
}

/// Step 6: the host-side effects of a decision, in order; returns what the flow keeps.
/// `count`: count the verdict now (false while the mesh-wide service still has a say).
fn apply_decision(
    host: &mut Host<'_>,
    d: Decision<'_>,
    body_len: usize,
    count: bool,
) -> Result<(Option<LocalReply>, Option<ResponsePipeline>, Outcome), HostError> {
    // Our headers are ours alone: drop whatever the client claimed, then set the real ones.
    for name in d.remove_headers {
        host.http.remove_request_header(name)?;
    }
    for (name, value) in &d.set_headers {
        host.http.set_request_header(name, value)?;
    }
    if d.outcome.batch.is_empty() && count {
        count_verdict(host.metrics, &d.outcome.request, &d.outcome.verdict);
    }
    // Request-side store errors are counted with the verdict's; these are the other findings.
    count_findings(host.metrics, d.outcome.findings.iter().filter(|f| f.what != "store_error"));
    // A batch counts as its elements: each decided one as a request of its own.
    for e in &d.outcome.batch {
        if let Some(v) = &e.verdict {
            count_verdict(host.metrics, &e.request, v);
        }
    }
    if let Some(body) = &d.request_body {
        // The upstream receives the redacted body, with its own length.
        host.http.set_request_body(body_len, body)?;
        host.http.set_request_header("content-length", &body.len().to_string())?;
    }
    // A hidden call forwarded under its decoy: the routing header says what the body says
    // (both eras: a legacy request carries the one the classifier derived).
    if let Some(decoy) = d.rename.as_deref() {
        host.http.set_request_header(headers::NAME, decoy)?;
    }
    let batch = !d.outcome.batch.is_empty();
    let response = (!d.inspectors.is_empty()).then(|| {
        if batch {
            let ids = d.outcome.batch.iter().filter_map(|e| e.request.id.clone()).collect();
            ResponsePipeline::for_batch(d.inspectors, ids)
        } else {
            ResponsePipeline::new(d.inspectors)
        }
    });
    if response.is_some() {
        // An answer the filter must read is asked for in a form it can read.
        host.http.set_request_header("accept-encoding", "identity")?;
    }
    Ok((d.reply, response, d.outcome))
}

/// Every finding by inspector, kind and severity; a store that could not answer also as a store
/// error.
fn count_findings<'f>(m: &mut dyn Metrics, findings: impl Iterator<Item = &'f crate::inspect::Finding>) {
    for f in findings {
        m.count(metrics::FINDINGS, &[("inspector", f.inspector), ("finding", f.what), ("severity", f.severity.as_str())]);
        if f.what == "store_error" {
            m.count(metrics::STORE_ERRORS, &[]);
        }
        // A call that goes on approved, or unconfirmed (`confirm.unsupported: allow`).
        if f.inspector == crate::confirm::INSPECTOR {
            m.count(metrics::CONFIRMATIONS, &[("outcome", f.what)]);
        }
    }
}

fn count_verdict(m: &mut dyn Metrics, req: &McpRequest, v: &Verdict) {
    let method = Method::label(req.op);
    m.count(metrics::REQUESTS, &[("era", req.era.as_str()), ("method", method), ("decision", v.action.label())]);
    let rule = v.rule_id.as_deref().unwrap_or("default");
    match &v.action {
        Action::Allow => {}
        Action::Deny { .. } => m.count(metrics::DENIALS, &[("rule", rule)]),
        Action::RateLimited { .. } => m.count(metrics::RATE_LIMITED, &[("rule", rule)]),
        Action::Kill { scope, .. } => m.count(metrics::KILL_SWITCH_BLOCKS, &[("scope", scope)]),
        Action::SessionNotFound => m.count(metrics::SESSION_HIJACKS, &[]),
        Action::TaskNotFound { .. } => m.count(metrics::TASK_HIJACKS, &[]),
        // Counted as the finding that decided it.
        Action::ContentBlocked { .. } => {}
        Action::Correlated { why, .. } => m.count(metrics::CORRELATION_BLOCKS, &[("why", why)]),
        Action::ConfirmAsk { .. } => m.count(metrics::CONFIRMATIONS, &[("outcome", "asked")]),
        Action::ConfirmRefused { why } => m.count(metrics::CONFIRMATIONS, &[("outcome", why)]),
        Action::Confirm { .. } => m.count(metrics::CONFIRMATIONS, &[("outcome", "unsupported")]),
        // Counted as the findings that decided them.
        Action::ToolChanged { .. } | Action::ToolNotApproved { .. } => {}
    }
    for hit in &v.dry_run {
        m.count(metrics::DRY_RUN_HITS, &[("rule", hit.rule_id.as_str())]);
    }
    for _ in &v.store_errors {
        m.count(metrics::STORE_ERRORS, &[]);
    }
}

/// The body's trace context onto the headers Envoy's tracer reads ([`trace_context`]). The HTTP
/// `traceparent` is read only when the body carries a context (one host call, for traced
/// requests alone).
fn hand_on_trace_context(host: &mut Host<'_>, outcome: &mut Outcome) -> Result<(), HostError> {
    // A legacy batch has no one context, span name or id: it is not handed on.
    if outcome.request.traceparent.is_none() || !outcome.batch.is_empty() {
        return Ok(());
    }
    let http = host.http.request_header("traceparent")?;
    let Some(plan) = trace_context::plan(&outcome.request, http.as_deref()) else { return Ok(()) };
    for name in &plan.remove {
        host.http.remove_request_header(name)?;
    }
    for (name, value) in &plan.set {
        host.http.set_request_header(name, value)?;
    }
    if let Some(f) = plan.finding {
        count_findings(host.metrics, std::iter::once(&f));
        outcome.findings.push(f);
    }
    Ok(())
}

fn edit_header(http: &mut dyn HttpIo, name: &str, edit: &HeaderEdit) -> Result<(), HostError> {
    match edit {
        HeaderEdit::Keep => Ok(()),
        HeaderEdit::Set(v) => http.set_request_header(name, v),
        HeaderEdit::Remove => http.remove_request_header(name),
    }
}
