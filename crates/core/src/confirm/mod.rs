//! `confirm`: a human approves a call before it runs, asked through the protocol's own
//! multi round-trip requests (MRTR, SEP-2322; spec digest §4), with nothing remembered between
//! the question and the answer but the sealed state the client echoes ([`seal`]), so the retry
//! may land on any replica that has the key.
//!
//! 1. **Ask.** A call a `confirm` rule (or `confirm.sensitive_tools`) covers, from a 2026-07-28
//!    client that declared form elicitation, is answered by the gateway: an `input_required`
//!    result whose `inputRequests["mcp-warden.dev/confirm"]` shows the user the tool, the
//!    upstream, the arguments (bounded, secrets redacted) and the rule's reason, and asks for
//!    `approve: true` ([`question`]). Its `requestState` binds the caller, the call, the exact
//!    arguments, the rule and an expiry.
//! 2. **Answer.** The retry's state is checked (MAC, expiry, binding); `accept` with
//!    `approve: true` uses it up (the per-pod replay table, [`replay`]) and the request goes on
//!    with the gateway's own `inputResponses` entry and state removed byte for byte
//!    ([`edit`]): the upstream runs the call the user saw. Decline, cancel, or anything but an
//!    approval is refused.
//! 3. **Upstream rounds.** When the upstream itself answers `input_required`, its state is
//!    carried behind a fresh approved state of ours (`<ours>~<theirs>`, [`carry`]), so its
//!    further rounds need no second approval; neither side reads the other's state.
//!
//! Clients that cannot be asked (2025-11-25, no form elicitation, other methods) get
//! `confirm.unsupported`: refused, or let through with an `unconfirmed` finding.

pub mod carry;
pub mod edit;
pub mod question;
pub mod replay;
pub mod seal;

use crate::inspect::{Disposition, Finding, Severity};
use crate::mcp::checked::unambiguous_object;
use crate::mcp::model::{Era, McpRequest};
use crate::mcp::Method;
use crate::policy::confirm::Unsupported;
use crate::policy::{Action, Policy};
use crate::ports::{Fault, Kv};
use crate::state::slots::StoreError;
use edit::Member;
use seal::{Binding, ConfirmKey, Kind, State};

/// The key of the gateway's entry in `inputRequests` / `inputResponses`.
pub const INPUT_KEY: &str = "mcp-warden.dev/confirm";
/// The environment variable the key comes from (64 hex; in Kubernetes, a Secret).
pub const KEY_ENV: &str = "WARDEN_CONFIRM_KEY";
/// The rule id of confirmations `confirm.sensitive_tools` asks for.
pub const SENSITIVE_RULE: &str = "confirm.sensitive_tools";
/// The inspector name of confirmation findings.
pub const INSPECTOR: &str = "confirm";

/// What a worker VM keeps for confirmations: the key, and a counter that makes nonces unique.
#[derive(Debug, Default)]
pub struct ConfirmVm {
    pub key: Option<ConfirmKey>,
    /// Distinguishes this VM's nonces from another worker's (its start time).
    pub vm_id: u64,
    issued: u64,
}

impl ConfirmVm {
    pub fn new(key: Option<ConfirmKey>, vm_id: u64) -> ConfirmVm {
        ConfirmVm { key, vm_id, issued: 0 }
    }
}

/// A confirmation the policy asks for: the rule and the reason shown to the user.
#[derive(Debug, Clone, Copy)]
pub struct Pending<'a> {
    pub rule: &'a str,
    pub reason: &'a str,
}

/// The call as it would be forwarded.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub req: &'a McpRequest,
    pub body: &'a [u8],
    pub principal_key: &'a str,
    pub correlation: &'a str,
    pub upstream: &'a str,
    pub now_ms: u64,
    /// The content scan read this body and found nothing in it: the question shows the arguments
    /// without scanning them again for what to redact.
    pub scanned_clean: bool,
}

/// What the confirmation step decided.
#[derive(Debug, Default)]
pub struct Gate {
    /// `Some`: answer with this instead of forwarding (the question, or a refusal).
    pub action: Option<Action>,
    /// `Some`: forward this body (the gateway's own entries removed).
    pub body: Option<Vec<u8>>,
    /// `Some`: the approval the answer's own `input_required` carries (see [`carry`]).
    pub carry: Option<carry::CarryApproval>,
    pub finding: Option<Finding>,
    pub store_error: Option<StoreError>,
    /// The nonce of the approved state this request used up here (the mesh-wide check, when
    /// there is one, makes sure no other replica used it too).
    pub used: Option<[u8; 16]>,
}

impl Gate {
    fn act(action: Action) -> Gate {
        Gate { action: Some(action), ..Gate::default() }
    }

    fn refuse(why: &'static str) -> Gate {
        Gate::act(Action::ConfirmRefused { why })
    }
}

fn finding(what: &'static str, severity: Severity) -> Finding {
    Finding { inspector: INSPECTOR, what, severity, data_class: None, fault: Fault::Client, disposition: Disposition::Report }
}

/// The request's members the step reads, where they sit.
struct Parsed {
    params: Option<((usize, usize), Vec<Member>)>,
}

impl Parsed {
    fn of(body: &[u8]) -> Parsed {
        let params = edit::members(body, edit::whole(body)).and_then(|top| {
            let p = edit::find(&top, "params")?.value;
            Some((p, edit::members(body, p)?))
        });
        Parsed { params }
    }

    fn member(&self, key: &str) -> Option<&Member> {
        self.params.as_ref().and_then(|(_, ms)| edit::find(ms, key))
    }

    fn value(&self, body: &[u8], key: &str) -> Option<serde_json::Value> {
        let m = self.member(key)?;
        serde_json::from_slice(body.get(m.value.0..m.value.1)?).ok()
    }
}

/// The confirmation step for one request everything else let through. `pending`: what the
/// policy asks for (`None`: nothing; a state of ours on the request is still checked and
/// removed, so an upstream never sees it).
pub fn gate(policy: &Policy, vm: &mut ConfirmVm, pending: Option<Pending<'_>>, call: &Call<'_>, kv: &mut dyn Kv) -> Gate {
    if pending.is_none() && !call.req.is_mrtr_retry {
        return Gate::default();
    }
    // One reading of everything a retry's step reads and edits: a member named twice anywhere
    // (a second answer of ours, spelled with an escape) could be read in one copy and left in
    // the other.
    if call.req.is_mrtr_retry && !unambiguous_object(call.body) {
        return Gate::refuse("ambiguous");
    }
    let parsed = Parsed::of(call.body);
    let state = parsed.member("requestState").and_then(|m| edit::string_at(call.body, m.value));
    let (ours, theirs) = match state.as_deref() {
        Some(s) => seal::split(s, vm.key.as_ref().map(ConfirmKey::prefix)),
        None => (None, None),
    };
    let Some(token) = ours else {
        return match pending {
            Some(p) => ask(policy, vm, p, call, &parsed, theirs),
            None => Gate::default(),
        };
    };
    let Some(key) = vm.key.clone() else { return Gate::refuse("unavailable") };
    let Ok(st) = State::open(token, &key) else { return Gate::refuse("forged") };
    if call.now_ms >= st.expires_ms {
        return Gate::refuse("expired");
    }
    let binding = bind(call, &arguments(call, &parsed), pending.map_or("", |p| p.rule));
    if st.binding.caller != binding.caller {
        return Gate::refuse("caller");
    }
    if st.binding.call != binding.call {
        return Gate::refuse("call");
    }
    if st.binding.arguments != binding.arguments {
        return Gate::refuse("arguments");
    }
    if st.binding.carried != seal::carried(theirs) {
        // The upstream's state behind ours was swapped or dropped: it would restart the call.
        return Gate::refuse("forged");
    }
    if let Some(p) = pending {
        if st.binding.rule != binding.rule {
            // Asked under another rule (the policy changed since): ask again under this one.
            return ask(policy, vm, p, call, &parsed, theirs);
        }
    }
    if st.kind == Kind::Ask {
        let answer = parsed.value(call.body, "inputResponses").and_then(|r| r.get(INPUT_KEY).cloned());
        let Some(answer) = answer else {
            // The retry does not answer the question: ask it again (spec: a fresh
            // `input_required`, not an error).
            return match pending {
                Some(p) => ask(policy, vm, p, call, &parsed, theirs),
                None => forward(policy, vm, None, call, &st, theirs, kv),
            };
        };
        match verdict_of(&answer) {
            Ok(()) => {}
            Err(why) => return Gate::refuse(why),
        }
    }
    forward(policy, vm, pending, call, &st, theirs, kv)
}

/// What the user answered: approved, or why not.
fn verdict_of(answer: &serde_json::Value) -> Result<(), &'static str> {
    match answer.get("action").and_then(serde_json::Value::as_str) {
        Some("accept") if answer.pointer("/content/approve") == Some(&serde_json::Value::Bool(true)) => Ok(()),
        Some("decline") => Err("declined"),
        Some("cancel") => Err("cancelled"),
        _ => Err("rejected"),
    }
}

/// The arguments in their compact form ([`edit::compact`]): what the user is shown and what the
/// state binds, exactly as every parser reads them (`null` for none).
fn arguments(call: &Call<'_>, parsed: &Parsed) -> Vec<u8> {
    parsed
        .member("arguments")
        .and_then(|m| call.body.get(m.value.0..m.value.1))
        .and_then(edit::compact)
        .unwrap_or_else(|| b"null".to_vec())
}

/// What a state is bound to, for this call and its `arguments` ([`arguments`]).
fn bind(call: &Call<'_>, arguments: &[u8], rule: &str) -> Binding {
    Binding::new(
        (call.principal_key, call.correlation),
        (call.upstream, call.req.method.as_deref().unwrap_or(""), call.req.name.as_deref().unwrap_or("")),
        arguments,
        rule,
    )
}

fn issue(vm: &mut ConfirmVm, key: &ConfirmKey, kind: Kind, binding: Binding, now_ms: u64, ttl_ms: u64) -> String {
    state(vm, key, kind, binding, now_ms, ttl_ms).seal(key)
}

fn state(vm: &mut ConfirmVm, key: &ConfirmKey, kind: Kind, binding: Binding, now_ms: u64, ttl_ms: u64) -> State {
    vm.issued = vm.issued.wrapping_add(1);
    let nonce = seal::nonce(key, now_ms, vm.issued, &binding, vm.vm_id);
    State { kind, expires_ms: now_ms.saturating_add(ttl_ms), nonce, binding }
}

/// True when the client can be asked on this request: 2026-07-28, a method MRTR covers, and
/// form elicitation declared on the request itself (`elicitation: {}` means form).
fn can_ask(req: &McpRequest, parsed: &Parsed, body: &[u8]) -> bool {
    if req.era != Era::Modern || req.id.is_none() {
        return false;
    }
    if !matches!(req.op, Some(Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead)) {
        return false;
    }
    let caps = parsed.value(body, "_meta").and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities").cloned());
    match caps.as_ref().and_then(|c| c.get("elicitation")) {
        Some(serde_json::Value::Object(e)) => e.contains_key("form") || !e.contains_key("url"),
        _ => false,
    }
}

fn ask(policy: &Policy, vm: &mut ConfirmVm, p: Pending<'_>, call: &Call<'_>, parsed: &Parsed, theirs: Option<&str>) -> Gate {
    if !can_ask(call.req, parsed, call.body) {
        return match policy.confirm.unsupported {
            Unsupported::Deny => Gate::refuse("unsupported"),
            Unsupported::Allow => Gate { finding: Some(finding("unconfirmed", Severity::Warning)), ..Gate::default() },
        };
    }
    let Some(key) = vm.key.clone() else { return Gate::refuse("unavailable") };
    let args = arguments(call, parsed);
    let binding = bind(call, &args, p.rule).carrying(theirs);
    let token = issue(vm, &key, Kind::Ask, binding, call.now_ms, policy.confirm.ttl_ms);
    let shown = question::Shown {
        method: call.req.op,
        name: call.req.name.as_deref().unwrap_or(""),
        upstream: call.upstream,
        arguments: parsed.member("arguments").map(|_| args.as_slice()),
        reason: p.reason,
    };
    let redact = (!call.scanned_clean).then_some(&policy.scan);
    let body = question::body(call.req.id.as_deref(), &shown, &seal::join(&token, theirs), redact);
    Gate::act(Action::ConfirmAsk { body })
}

/// The approved call goes on: its state used up, the gateway's entries removed.
fn forward(
    policy: &Policy,
    vm: &mut ConfirmVm,
    pending: Option<Pending<'_>>,
    call: &Call<'_>,
    st: &State,
    theirs: Option<&str>,
    kv: &mut dyn Kv,
) -> Gate {
    let table = replay::table();
    match replay::use_once(kv, &table, &st.nonce, st.expires_ms, call.now_ms) {
        Ok(true) => {}
        Ok(false) => return Gate::refuse("replayed"),
        Err(e) => return Gate { store_error: Some(e), ..Gate::refuse("unavailable") },
    }
    let Some(body) = strip(call.body, theirs) else { return Gate::refuse("forged") };
    let carry = match (pending, vm.key.clone()) {
        (Some(_), Some(key)) => {
            // Its lifetime starts when the upstream asks (the inspector seals it then).
            let approved = state(vm, &key, Kind::Approved, st.binding, call.now_ms, policy.confirm.ttl_ms);
            Some(carry::CarryApproval::new(key, approved, policy.confirm.ttl_ms))
        }
        _ => None,
    };
    Gate { body: Some(body), carry, finding: Some(finding("approved", Severity::Info)), used: Some(st.nonce), ..Gate::default() }
}

/// The request without the gateway's own `requestState` and `inputResponses` entry: the
/// upstream's state (if any) in its place, an `inputResponses` left empty removed. One edit at
/// a time, each on a fresh reading (two neighbouring removals share a comma).
fn strip(body: &[u8], theirs: Option<&str>) -> Option<Vec<u8>> {
    let mut out = body.to_vec();
    let parsed = Parsed::of(&out);
    let (span, members) = parsed.params.as_ref()?;
    if let Some(i) = members.iter().position(|m| m.key == "requestState") {
        let e = match theirs {
            Some(t) => edit::replace(members.get(i)?.value, edit::json_string(t)),
            None => edit::remove(&out, *span, members, i)?,
        };
        out = edit::apply(&out, vec![e]);
    }
    let parsed = Parsed::of(&out);
    let (span, members) = parsed.params.as_ref()?;
    if let Some(i) = members.iter().position(|m| m.key == "inputResponses") {
        let responses = members.get(i)?.value;
        let inner = edit::members(&out, responses)?;
        if let Some(j) = inner.iter().position(|m| m.key == INPUT_KEY) {
            let e =
                if inner.len() == 1 { edit::remove(&out, *span, members, i)? } else { edit::remove(&out, responses, &inner, j)? };
            out = edit::apply(&out, vec![e]);
        }
    }
    Some(out)
}

/// The pending confirmation for a request the rules let through: `confirm.sensitive_tools`.
pub fn sensitive(policy: &Policy, req: &McpRequest) -> bool {
    policy.confirm.sensitive_tools
        && req.op == Some(Method::ToolsCall)
        && req.name.as_deref().is_some_and(|t| policy.integrity.is_sensitive(t))
}
