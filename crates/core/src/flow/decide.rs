//! The decision on one valid request, as a pure function: policy + the facts the request path
//! gathered + shared state in, everything the host must do out (headers to strip and set, a
//! local reply or none, what the response pipeline must inspect, the exchange's outcome).
//! Nothing here touches the host but through the [`Kv`] port rate limits keep their buckets in.

use std::rc::Rc;

use crate::confirm;
use crate::content_scan::{judge_keeping_view, ContentScan};
use crate::correlate::{self, mesh, Call, TaskDrip, Trip};
use crate::flow::vm::VmCache;
use crate::inspect::{Disposition, Finding, Inspector, Severity};
use crate::integrity::apps::{is_ui_uri, ListChangedWatch, UiTemplate};
use crate::integrity::baseline::{ServerIdentity, ToolBaseline};
use crate::integrity::call::check_call;
use crate::integrity::call::Requester;
use crate::integrity::poison::{PoisonAction, PoisonCheck};
use crate::integrity::tasks::{check_task_access, TaskBinder};
use crate::mcp::model::{Era, McpRequest};
use crate::mcp::Method;
use crate::policy::correlate::FailureMode;
use crate::policy::integrity::ChangeAction;
use crate::policy::list_filter::ListFilter;
use crate::policy::scan::{Direction, Subject};
use crate::policy::spec::HiddenAnswer;
use crate::policy::{enforce_keyed, list_varies, task_tool_verdict, Action, KillSwitch, ListKind, Policy, Verdict};
use crate::ports::Kv;
use crate::principal::{self, CorrelationKey, PeerFacts, Principal};
use crate::scan::view::View;
use crate::state::owners::{self, Owner, OwnerCache};
use crate::state::slots::StoreError;

use super::batch::{decide_batch, BatchElement};
use super::reply::{self, LocalReply};

/// What the request path gathered for one valid request (its routing headers already true).
pub struct RequestFacts<'a> {
    pub request: McpRequest,
    /// Every element of a legacy batch, in order (empty for one message).
    pub batch: Vec<McpRequest>,
    /// The request body as the upstream would receive it (empty for a bodiless request).
    pub body: &'a [u8],
    pub peer: PeerFacts<'a>,
    /// The upstream cluster the route chose on the edited headers (`:authority` without one).
    pub upstream: String,
    /// `x-warden-*` header names the client sent (ours alone: they are stripped).
    pub client_warden_headers: &'a [String],
    pub now_ms: u64,
}

/// Everything the filter decided about one exchange, for the response path and for receipts.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: McpRequest,
    pub principal: Principal,
    /// [`Principal::key`], computed once.
    pub principal_key: String,
    pub correlation: CorrelationKey,
    pub upstream: String,
    pub verdict: Verdict,
    /// A legacy batch: each element and its own decision (empty for one message).
    pub batch: Vec<BatchElement>,
    /// What the request path's own checks found (tool integrity, task binding).
    pub findings: Vec<Finding>,
    /// A hidden call forwarded under a decoy ([`super::decoy`]): the client gets the upstream's
    /// answer, not the gateway's refusal (the verdict still says hidden).
    pub answered_by_upstream: bool,
}

/// What the host must do.
pub struct Decision<'a> {
    /// Request headers to remove (the client's `x-warden-*`), before `set_headers`.
    pub remove_headers: &'a [String],
    /// Request headers to set: the principal fingerprint, its source, the correlation key.
    pub set_headers: [(&'static str, String); 3],
    /// `Some`: answer locally instead of forwarding.
    pub reply: Option<LocalReply>,
    /// Inspectors the response must pass (empty: the response is not looked at).
    pub inspectors: Vec<Box<dyn Inspector>>,
    /// The answer opens a legacy session: bind its `Mcp-Session-Id` to the caller.
    pub binds_session: bool,
    /// `Some`: the body to forward instead of the client's (the content scan redacted it).
    pub request_body: Option<Vec<u8>>,
    /// `Some`: the decoy a hidden call is forwarded under ([`super::decoy`]): the `Mcp-Name`
    /// to send (2026-07-28 requests carry one).
    pub rename: Option<String>,
    /// `Some`: ask the mesh-wide rate limit service before forwarding.
    pub mesh: Option<MeshCheck>,
    pub outcome: Outcome,
}

/// The decoy and the body to forward for a call the policy hides, when the upstream answers
/// for hidden names (`hidden_answer: upstream`): a single `tools/call` or `prompts/get` of a
/// hidden name, with an id, that the gateway would otherwise answer itself.
fn decoy_call(
    policy: &Policy,
    verdict: &Verdict,
    answered_here: bool,
    (req, body, now_ms): (&McpRequest, &[u8], u64),
    principal_key: &str,
) -> Option<(String, Vec<u8>)> {
    let applies = policy.hidden_answer == HiddenAnswer::Upstream
        && answered_here
        && matches!(verdict.action, Action::Deny { hide: true, .. })
        && req.target.is_none()
        && matches!(req.op, Some(Method::ToolsCall | Method::PromptsGet));
    let id = req.id.as_deref().filter(|_| applies)?;
    let decoy = super::decoy::decoy_name(&[
        id.as_bytes(),
        principal_key.as_bytes(),
        req.name.as_deref().unwrap_or_default().as_bytes(),
        &now_ms.to_le_bytes(),
    ]);
    let body = super::decoy::forwarded_body(body, &decoy)?;
    Some((decoy, body))
}

/// A call to the mesh-wide rate limit service the request waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshCheck {
    pub cluster: String,
    pub timeout_ms: u64,
    /// The `RateLimitRequest`.
    pub body: Vec<u8>,
    /// What each descriptor counts, in order (the reply names the one over its limit).
    pub kinds: Vec<&'static str>,
    pub failure_mode: FailureMode,
}

/// Who the correlation step remembers a request under.
#[derive(Clone, Copy)]
struct Remembered<'a> {
    principal: &'a Principal,
    principal_key: &'a str,
    /// The peer's address (an anonymous caller's memory is kept by it).
    source_address: Option<&'a str>,
    /// The called tool's categories from its annotations (its baseline).
    annotated: u8,
    now_ms: u64,
}

/// Decides one request. `remote_kill` is the kill list last served by the control endpoint.
/// `vm`: what the worker VM remembers between streams (confirmed session bindings, upstreams with
/// baselines).
pub fn decide<'a>(
    policy: &Rc<Policy>,
    remote_kill: &KillSwitch,
    facts: RequestFacts<'a>,
    kv: &mut dyn Kv,
    vm: &mut VmCache,
) -> Decision<'a> {
    let principal = principal::resolve_with(&policy.sources, &facts.peer, Some(&mut vm.digests));
    let principal_key = principal.key_with(Some(&mut vm.digests));
    let correlation = CorrelationKey::with_key_memo(&principal, &principal_key, &facts.upstream, Some(&mut vm.digests));
    let set_headers = principal.upstream_headers(&principal_key, &correlation);

    let owner = session_owner(policy, &facts.request, &principal_key, kv, &mut vm.sessions, facts.now_ms);
    let mut batch = Vec::new();
    let mut findings = Vec::new();
    let mut annotated = 0;
    let mut pending = None;
    let rate_key = match correlate::Caller::of(&principal, &principal_key, facts.peer.source_address) {
        correlate::Caller::Named(key) => std::borrow::Cow::Borrowed(key),
        correlate::Caller::Anonymous(address) => std::borrow::Cow::Owned(format!("a/{address}")),
    };
    let at = Requester { upstream: &facts.upstream, principal_key: &principal_key, rate_key: &rate_key, now_ms: facts.now_ms };
    let (verdict, reply) = match owner {
        Ok(Owner::Caller) if !facts.batch.is_empty() => {
            let (v, r, elements) = decide_batch(policy, remote_kill, &principal, at, facts.batch, kv, vm, &mut findings);
            batch = elements;
            (v, r)
        }
        Ok(Owner::Caller) => {
            let mut v =
                enforce_keyed(policy, remote_kill, (&principal, at.rate_key), &facts.request, &facts.upstream, kv, facts.now_ms);
            pending = pending_confirmation(policy, &mut v, &facts.request);
            if v.action == Action::Allow {
                annotated =
                    integrity_checks(policy, &mut v, &facts.request, (at, (&principal, remote_kill)), kv, vm, &mut findings);
            }
            let r = reply::for_action(&v.action, &facts.request);
            (v, r)
        }
        owner => {
            let store_errors = owner.err().map(|e| ("session".to_owned(), e)).into_iter().collect();
            let v = Verdict { action: Action::SessionNotFound, rule_id: None, dry_run: Vec::new(), store_errors };
            let r = reply::for_action(&v.action, &facts.request);
            (v, r)
        }
    };
    let (verdict, reply, request_body, view, flagged) =
        scan_request(policy, verdict, reply, &facts.request, &principal, &facts.upstream, facts.body, &mut findings);
    // What the content scan flags for confirmation (a detector or class whose action is
    // `confirm`) asks as a rule would, unless a rule already asks.
    let pending = pending.or_else(|| {
        flagged.map(|what| (format!("content_scan.{what}"), format!("The arguments hold what the content scan flags: {what}")))
    });
    let call = confirm::Call {
        req: &facts.request,
        body: request_body.as_deref().unwrap_or(facts.body),
        principal_key: &principal_key,
        correlation: correlation.as_str(),
        upstream: &facts.upstream,
        now_ms: facts.now_ms,
        // Nothing to redact in the question only when the scan looked for every detector and
        // found nothing (a detector switched off finds nothing, but its secret is still one).
        // Only a question reads it: requests nobody asks about skip the walk.
        scanned_clean: pending.is_some()
            && policy.scan.scans(Direction::Request)
            && policy.scan.looks_for_every_detector()
            && !findings.iter().any(|f| f.inspector == crate::content_scan::NAME),
    };
    let (verdict, reply, confirmed, carry, used) = if batch.is_empty() {
        confirm_call(policy, verdict, reply, pending, &call, kv, vm, &mut findings)
    } else {
        let (verdict, reply) = refuse_flagged_batch(verdict, reply, pending, &facts.request);
        (verdict, reply, None, None, None)
    };
    let request_body = confirmed.or(request_body);
    let at = Remembered {
        principal: &principal,
        principal_key: &principal_key,
        source_address: facts.peer.source_address,
        annotated,
        now_ms: facts.now_ms,
    };
    // What is remembered is what the upstream receives: a redacted body, if the scan redacted it
    // (its view is the original's, so it is measured afresh), never the redacted values.
    let sent = match &request_body {
        Some(redacted) => (redacted.as_slice(), None),
        None => (facts.body, view.as_ref()),
    };
    let used = used.map(|nonce| mesh::confirm_use(hex::encode(nonce)));
    let (verdict, reply, mesh) =
        remember(policy, verdict, reply, &facts.request, &facts.upstream, sent, at, used, kv, &mut findings);
    // A batch's answer is read only by the content scan (a JSON array of answers): elements
    // whose answer needs a request's own inspectors refuse the batch.
    let mut inspectors = if batch.is_empty() {
        response_inspectors(policy, &verdict, &facts.request, &facts.upstream)
    } else {
        message_inspectors(policy, &verdict)
    };
    let has_id = if batch.is_empty() { facts.request.id.is_some() } else { batch.iter().any(|e| e.request.id.is_some()) };
    if inspectors.is_empty() && verdict.action == Action::Allow && has_id {
        inspectors.push(Box::new(super::response::AnswerCheck));
    }
    // Last: it wraps the upstream's state as the client will receive it (after the content
    // scan, which may redact it), and its own token is nobody else's to read.
    if let Some(approval) = carry.filter(|_| verdict.action == Action::Allow) {
        inspectors.push(Box::new(approval));
    }
    // A hidden tool or prompt answered by its upstream, as a name it does not have.
    let mut rename = None;
    let (mut reply, mut request_body) = (reply, request_body);
    if let Some((decoy, body)) = decoy_call(
        policy,
        &verdict,
        reply.is_some() && batch.is_empty(),
        (&facts.request, facts.body, facts.now_ms),
        &principal_key,
    ) {
        let name = facts.request.name.as_deref().unwrap_or_default();
        inspectors = vec![Box::new(super::decoy::Undecoy::new(&decoy, name))];
        // The upstream's answer is read as any answer is (the verdict is not an allow).
        if policy.scan.scans(Direction::Response) {
            inspectors.push(Box::new(ContentScan::new(Rc::clone(policy))));
        }
        (reply, request_body) = (None, Some(body));
        rename = Some(decoy);
    }
    let binds_session = opens_session(policy, &facts.request, &verdict);
    let answered_by_upstream = rename.is_some();
    Decision {
        remove_headers: facts.client_warden_headers,
        set_headers,
        reply,
        inspectors,
        binds_session,
        request_body,
        rename,
        mesh,
        outcome: Outcome {
            request: facts.request,
            principal,
            principal_key,
            correlation,
            upstream: facts.upstream,
            verdict,
            batch,
            findings,
            answered_by_upstream,
        },
    }
}

/// Tool integrity and task binding on a request policy let through: a refusal replaces the
/// verdict (its rule is the integrity layer's), findings and store errors are kept. Returns the
/// categories the called tool's baseline recorded from its annotations (0: none).
pub(super) fn integrity_checks(
    policy: &Policy,
    v: &mut Verdict,
    req: &McpRequest,
    (at, refusers): (Requester<'_>, (&Principal, &KillSwitch)),
    kv: &mut dyn Kv,
    vm: &mut VmCache,
    findings: &mut Vec<Finding>,
) -> u8 {
    let (principal_key, now_ms) = (at.principal_key, at.now_ms);
    let mut categories = 0;
    let (action, store_error) = match req.op {
        Some(Method::ToolsCall) => {
            let c = check_call(policy, kv, &mut vm.baselines, req, at);
            categories = c.categories;
            findings.extend(c.findings);
            (c.action, c.store_error.map(|e| ("tool_baseline".to_owned(), e)))
        }
        Some(
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel | Method::TasksResult | Method::SubscriptionsListen,
        ) => {
            let (principal, remote_kill) = refusers;
            let tool_verdict =
                |tool: &str, whole: bool| task_tool_verdict(policy, remote_kill, principal, (req.era, at.upstream), tool, whole);
            let access = check_task_access(policy, kv, req, (principal_key, now_ms), &tool_verdict);
            findings.extend(access.finding);
            if access.rule_id.is_some() {
                v.rule_id = access.rule_id;
            }
            (access.action, access.store_error.map(|e| ("task".to_owned(), e)))
        }
        _ => (None, None),
    };
    v.store_errors.extend(store_error);
    if let Some(a) = action {
        v.action = a;
    }
    categories
}

/// The confirmation a request the rules let through still needs: a `confirm` rule's (its
/// verdict becomes allow, pending the answer), or `confirm.sensitive_tools`'.
fn pending_confirmation(policy: &Policy, v: &mut Verdict, req: &McpRequest) -> Option<(String, String)> {
    if let Action::Confirm { reason } = &v.action {
        let pending = (v.rule_id.clone().unwrap_or_default(), reason.clone());
        v.action = Action::Allow;
        return Some(pending);
    }
    (v.action == Action::Allow && confirm::sensitive(policy, req))
        .then(|| (confirm::SENSITIVE_RULE.to_owned(), "This tool is marked sensitive".to_owned()))
}

/// The confirmation step ([`crate::confirm`]) on a request everything else let through: the
/// question or a refusal replaces the verdict and the reply; an approved call is forwarded
/// without the gateway's own entries (the body returned), its answer carrying the approval
/// through the upstream's own rounds (the inspector returned).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn confirm_call(
    policy: &Policy,
    mut verdict: Verdict,
    reply: Option<LocalReply>,
    pending: Option<(String, String)>,
    call: &confirm::Call<'_>,
    kv: &mut dyn Kv,
    vm: &mut VmCache,
    findings: &mut Vec<Finding>,
) -> (Verdict, Option<LocalReply>, Option<Vec<u8>>, Option<confirm::carry::CarryApproval>, Option<[u8; 16]>) {
    if verdict.action != Action::Allow {
        return (verdict, reply, None, None, None);
    }
    let asked = pending.as_ref().map(|(rule, reason)| confirm::Pending { rule, reason });
    let g = confirm::gate(policy, &mut vm.confirm, asked, call, kv);
    findings.extend(g.finding);
    if let Some(e) = g.store_error {
        verdict.store_errors.push(("confirm".to_owned(), e));
    }
    if pending.is_some() && verdict.rule_id.is_none() {
        verdict.rule_id = pending.map(|(rule, _)| rule);
    }
    match g.action {
        Some(action) => {
            verdict.action = action;
            let reply = reply::for_action(&verdict.action, call.req);
            (verdict, reply, None, None, None)
        }
        None => (verdict, reply, g.body, g.carry, g.used),
    }
}

/// A legacy batch whose body the content scan flags for confirmation: nobody can be asked about
/// a batch (MRTR answers one request), so it is refused as a client that cannot be asked, with
/// a batch's answer (an array; no one element's id: the scan read the whole body).
fn refuse_flagged_batch(
    mut verdict: Verdict,
    reply: Option<LocalReply>,
    pending: Option<(String, String)>,
    req: &McpRequest,
) -> (Verdict, Option<LocalReply>) {
    let Some((rule, _)) = pending.filter(|_| verdict.action == Action::Allow) else { return (verdict, reply) };
    verdict.action = Action::ConfirmRefused { why: "unsupported" };
    verdict.rule_id = Some(rule);
    let whole = McpRequest { id: None, ..req.clone() };
    let reply = reply::for_action(&verdict.action, &whole).map(super::batch::as_batch_answer);
    (verdict, reply)
}

/// The content scan of what the client sends, on a request everything else let through: a
/// block replaces the verdict and the reply; a redaction is the body to forward instead. Also
/// hands back the body's view, for the correlation step, and the detector that asks for a
/// confirmation (`confirm` action), if any.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn scan_request<'b>(
    policy: &Policy,
    mut verdict: Verdict,
    reply: Option<LocalReply>,
    req: &McpRequest,
    principal: &Principal,
    upstream: &str,
    body: &'b [u8],
    findings: &mut Vec<Finding>,
) -> (Verdict, Option<LocalReply>, Option<Vec<u8>>, Option<View<'b>>, Option<&'static str>) {
    if verdict.action != Action::Allow || body.is_empty() || !policy.scan.scans(Direction::Request) {
        return (verdict, reply, None, None, None);
    }
    let subject = Subject {
        tool: req.name.as_deref().unwrap_or_default(),
        principal: &principal.id,
        upstream,
        direction: Direction::Request,
    };
    let (j, view) = judge_keeping_view(&policy.scan, &subject, body);
    let mut blocked = j.blocked().map(|f| Action::ContentBlocked { what: f.what, class: f.data_class });
    if blocked.is_none() && j.rewrite.as_deref().is_some_and(|new| !same_routing(body, new)) {
        // A redaction inside the method, name, URI or task id would forward a request that no
        // longer matches its routing headers (and the policy's decision): refuse it instead.
        blocked = j.findings.first().map(|f| Action::ContentBlocked { what: f.what, class: f.data_class });
    }
    findings.extend(j.findings);
    match blocked {
        Some(action) => {
            verdict.action = action;
            let reply = reply::for_action(&verdict.action, req);
            (verdict, reply, None, view, None)
        }
        None => (verdict, reply, j.rewrite, view, j.confirm),
    }
}

/// What the filter remembers across requests (see [`crate::correlate`]), on a request that got
/// this far: an allowed one is accounted and may be refused; one the content scan refused only
/// adds its points. Returns the mesh-wide check an allowed request still waits for, with
/// `confirmed` in it (an approved confirmation this request used: good once mesh-wide).
#[allow(clippy::too_many_arguments)]
fn remember(
    policy: &Policy,
    mut verdict: Verdict,
    reply: Option<LocalReply>,
    req: &McpRequest,
    upstream: &str,
    (body, view): (&[u8], Option<&View<'_>>),
    at: Remembered<'_>,
    confirmed: Option<mesh::Descriptor>,
    kv: &mut dyn Kv,
    findings: &mut Vec<Finding>,
) -> (Verdict, Option<LocalReply>, Option<MeshCheck>) {
    let c = &policy.correlation;
    let refused = match verdict.action {
        Action::Allow => false,
        Action::ContentBlocked { .. } => true,
        _ => return (verdict, reply, None),
    };
    if !c.enabled {
        return (verdict, reply, None);
    }
    let sends = match view {
        _ if !c.reads_values() || body.is_empty() => None,
        Some(v) => Some(correlate::measure_view(c, body, v)),
        None => correlate::measure(c, body),
    };
    let sends_something = sends.as_ref().is_some_and(|s| !s.is_empty());
    // What this request's other checks found in what the client sent raises the key's score:
    // a block 3, a report 1 (an upstream's rug-pull is not the caller's doing).
    let points = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning && f.fault == crate::ports::Fault::Client)
        .map(|f| if f.disposition == Disposition::Block { 3 } else { 1 })
        .sum();
    let caller = correlate::Caller::of(at.principal, at.principal_key, at.source_address);
    let key = caller.memory_key(upstream);
    let task = match (req.op, &req.handles.task_id) {
        (Some(Method::TasksUpdate | Method::TasksGet | Method::TasksResult), Some(t)) => Some(correlate::task_key(upstream, t)),
        _ => None,
    };
    let tool = if req.op == Some(Method::ToolsCall) { req.name.as_deref() } else { None };
    let call = Call {
        key: &key,
        task,
        tool,
        annotated: at.annotated,
        sends: sends.as_ref(),
        points,
        acts: correlate::acts(req.op, sends_something),
        refused,
        now_ms: at.now_ms,
    };
    let subject =
        Subject { tool: tool.unwrap_or_default(), principal: &at.principal.id, upstream, direction: Direction::Request };
    let a = correlate::account(c, &policy.scan, &subject, kv, &call);
    findings.extend(a.findings);
    if let Some(e) = a.store_error {
        verdict.store_errors.push(("correlation".to_owned(), e));
        if c.on_store_error == FailureMode::Deny && !refused {
            verdict.action =
                Action::Correlated { why: "store_unavailable", detail: None, class: None, until_ms: None, retry_after_secs: 1 };
            let reply = reply::for_action(&verdict.action, req);
            return (verdict, reply, None);
        }
    }
    if refused {
        return (verdict, reply, None);
    }
    if let Some(trip) = a.trip {
        verdict.action = trip_action(trip, at.now_ms);
        let reply = reply::for_action(&verdict.action, req);
        return (verdict, reply, None);
    }
    let mesh = c.mesh.as_ref().and_then(|m| {
        let bits = sends.as_ref().map_or(0, |s| s.bits);
        let mut descriptors = mesh::descriptors(&caller.descriptor(), tool, bits, m.tool_calls);
        descriptors.extend(confirmed);
        (!descriptors.is_empty()).then(|| MeshCheck {
            cluster: m.cluster.clone(),
            timeout_ms: m.timeout_ms,
            body: mesh::request(&m.domain, &descriptors),
            kinds: descriptors.iter().map(|d| d.kind).collect(),
            failure_mode: m.failure_mode,
        })
    });
    (verdict, reply, mesh)
}

/// The refusal a correlation trip stands for.
fn trip_action(trip: Trip, now_ms: u64) -> Action {
    match trip {
        Trip::Held { hold, until_ms } => Action::Correlated {
            why: hold.as_str(),
            detail: None,
            class: None,
            until_ms: Some(until_ms),
            retry_after_secs: until_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
        },
        Trip::Fragment { what, class } => Action::Correlated {
            why: "fragmented_secret",
            detail: Some(what.to_owned()),
            class,
            until_ms: None,
            retry_after_secs: 0,
        },
        Trip::Chain { id } => {
            Action::Correlated { why: "tool_chain", detail: Some(id), class: None, until_ms: None, retry_after_secs: 0 }
        }
    }
}

/// The mesh-wide service's answer (`None`: it could not answer) as the request's action.
pub fn mesh_action(check: &MeshCheck, answer: Option<mesh::Answer>) -> Action {
    match answer {
        Some(mesh::Answer::Ok) => Action::Allow,
        Some(mesh::Answer::OverLimit { descriptor, .. })
            if descriptor.and_then(|i| check.kinds.get(i)) == Some(&mesh::CONFIRM_USES) =>
        {
            Action::ConfirmRefused { why: "replayed" }
        }
        Some(mesh::Answer::OverLimit { descriptor, reset_secs }) => Action::Correlated {
            why: "mesh_budget",
            detail: descriptor.and_then(|i| check.kinds.get(i)).map(|k| (*k).to_owned()),
            class: None,
            until_ms: None,
            retry_after_secs: reset_secs,
        },
        None if check.failure_mode == FailureMode::Allow => Action::Allow,
        None => Action::Correlated { why: "mesh_unavailable", detail: None, class: None, until_ms: None, retry_after_secs: 1 },
    }
}

/// True when `new` (a redaction of `old`) names the same methods and targets: what routing and
/// policy decided on is unchanged.
fn same_routing(old: &[u8], new: &[u8]) -> bool {
    fn one(m: &serde_json::Value) -> [Option<&serde_json::Value>; 4] {
        let p = m.get("params");
        [m.get("method"), p.and_then(|p| p.get("name")), p.and_then(|p| p.get("uri")), p.and_then(|p| p.get("taskId"))]
    }
    fn targets(v: &serde_json::Value) -> Vec<Option<&serde_json::Value>> {
        match v {
            serde_json::Value::Array(items) => items.iter().flat_map(one).collect(),
            other => one(other).to_vec(),
        }
    }
    match (serde_json::from_slice::<serde_json::Value>(old), serde_json::from_slice::<serde_json::Value>(new)) {
        (Ok(a), Ok(b)) => targets(&a) == targets(&b),
        _ => false,
    }
}

/// Whose legacy session this is (sessions are bound to the principal that opened them; see
/// [`crate::state::owners`]). Requests without one, modern requests, `initialize` and a switched
/// off binding are the caller's. A table that cannot answer refuses the session (fail closed:
/// the client opens a new one).
fn session_owner(
    policy: &Policy,
    req: &McpRequest,
    principal_key: &str,
    kv: &mut dyn Kv,
    cache: &mut OwnerCache,
    now_ms: u64,
) -> Result<Owner, StoreError> {
    match (&req.session_id, req.era) {
        (Some(sid), Era::Legacy) if policy.session_ttl_ms > 0 && req.op != Some(Method::Initialize) => {
            let table = owners::sessions(policy.session_slots);
            owners::check_cached(cache, kv, &table, sid, principal_key, now_ms, policy.session_ttl_ms)
        }
        _ => Ok(Owner::Caller),
    }
}

/// True when this exchange's answer may open a legacy session to bind to the caller.
fn opens_session(policy: &Policy, req: &McpRequest, verdict: &Verdict) -> bool {
    policy.session_ttl_ms > 0 && req.era == Era::Legacy && req.op == Some(Method::Initialize) && verdict.action == Action::Allow
}

/// A `resources/read` of an app template: its URI resolves to `ui://…`, or has no single reading
/// and is spelled like one (an ambiguous spelling must not skip the template check).
fn reads_ui_template(req: &McpRequest) -> bool {
    match (&req.resolved_name, &req.name) {
        (Some(resolved), _) => is_ui_uri(resolved),
        (None, Some(raw)) => raw.trim_start().get(..3).is_some_and(|s| s.eq_ignore_ascii_case("ui:")),
        (None, None) => false,
    }
}

/// The response pipeline an allowed request's answer must pass, chosen now so that responses
/// nobody needs to read cost nothing: the request's own inspectors, then the message-wide ones.
pub(super) fn response_inspectors(
    policy: &Rc<Policy>,
    verdict: &Verdict,
    req: &McpRequest,
    upstream: &str,
) -> Vec<Box<dyn Inspector>> {
    let mut out = request_inspectors(policy, verdict, req, upstream);
    out.extend(message_inspectors(policy, verdict));
    out
}

/// What reads every answer whatever it answers (the content scan), last: it reads what the
/// client would receive.
fn message_inspectors(policy: &Rc<Policy>, verdict: &Verdict) -> Vec<Box<dyn Inspector>> {
    let mut out: Vec<Box<dyn Inspector>> = Vec::new();
    if verdict.action == Action::Allow && policy.scan.scans(Direction::Response) {
        out.push(Box::new(ContentScan::new(Rc::clone(policy))));
    }
    out
}

/// The inspectors this request's answer needs because of what it asked (lists, baselines,
/// templates, tasks).
pub(super) fn request_inspectors(
    policy: &Rc<Policy>,
    verdict: &Verdict,
    req: &McpRequest,
    upstream: &str,
) -> Vec<Box<dyn Inspector>> {
    let mut out: Vec<Box<dyn Inspector>> = Vec::new();
    if verdict.action != Action::Allow {
        return out;
    }
    let ip = &policy.integrity;
    // What reads a tools/list result: baselines learn what the upstream sent, before anything
    // is dropped from it; then poisoned definitions leave it; then what the policy hides.
    let tool_list = |out: &mut Vec<Box<dyn Inspector>>| {
        if ip.learns() {
            out.push(Box::new(ToolBaseline::new(Rc::clone(policy))));
        }
        if ip.poisoned != PoisonAction::Off {
            out.push(Box::new(PoisonCheck::new(ip.poisoned)));
        }
    };
    match req.op {
        Some(Method::ToolsList) => tool_list(&mut out),
        Some(Method::ToolsCall) if policy.tasks.bind && req.handles.may_create_task => {
            out.push(Box::new(TaskBinder::new(policy)))
        }
        Some(Method::ResourcesRead) if ip.ui != ChangeAction::Off && reads_ui_template(req) => {
            out.push(Box::new(UiTemplate::new(Rc::clone(policy))));
        }
        Some(Method::SubscriptionsListen) if ip.learns() => out.push(Box::new(ListChangedWatch)),
        _ => {}
    }
    // Task outputs spend the task's budget (a tasks/get answer, a listen stream's task events).
    if policy.correlation.enabled
        && policy.correlation.budget.action != crate::policy::correlate::TripAction::Off
        && matches!(req.op, Some(Method::TasksGet | Method::TasksResult | Method::SubscriptionsListen))
    {
        out.push(Box::new(TaskDrip::new(Rc::clone(policy))));
    }
    match req.op {
        // A legacy GET stream: where a 2025-11-25 server announces list changes, and where a
        // resumption replays earlier answers (a tools/list result among them: judged by its shape,
        // as on the POST that asked for it).
        None if req.handles.standalone_stream => {
            if ip.learns() {
                out.push(Box::new(ListChangedWatch));
            }
            tool_list(&mut out);
        }
        Some(Method::Initialize | Method::ServerDiscover) if ip.learns() => {
            out.push(Box::new(ServerIdentity::new(Rc::clone(policy))));
        }
        _ => {}
    }
    // A list whose items the policy may hide varies by principal: filtered and marked private
    // (tools, prompts and resources alike: a hidden item must not show in any list; a GET
    // stream's replayed tool lists too).
    let kind = if req.handles.standalone_stream { Some(ListKind::Tools) } else { req.op.and_then(ListKind::from_list_method) };
    if let Some(kind) = kind {
        if list_varies(policy, req.era, upstream, kind) {
            out.push(Box::new(ListFilter::new(Rc::clone(policy), kind)));
        }
    }
    out
}
