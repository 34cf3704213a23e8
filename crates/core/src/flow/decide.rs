//! The decision on one valid request, as a pure function: policy + the facts the request path
//! gathered + shared state in, everything the host must do out (headers to strip and set, a
//! local reply or none, what the response pipeline must inspect, the exchange's outcome).
//! Nothing here touches the host but through the [`Kv`] port rate limits keep their buckets in.

use std::rc::Rc;

use crate::inspect::Inspector;
use crate::mcp::model::McpRequest;
use crate::policy::list_filter::ListFilter;
use crate::policy::{enforce, list_varies, Action, KillSwitch, ListKind, Policy, Verdict};
use crate::ports::Kv;
use crate::principal::{self, CorrelationKey, PeerFacts, Principal};

use super::reply::{self, LocalReply};

/// What the request path gathered for one valid request (its routing headers already true).
pub struct RequestFacts<'a> {
    pub request: McpRequest,
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
    pub correlation: CorrelationKey,
    pub upstream: String,
    pub verdict: Verdict,
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
    pub outcome: Outcome,
}

/// Decides one request. `remote_kill` is the kill list last served by the control endpoint.
pub fn decide<'a>(policy: &Rc<Policy>, remote_kill: &KillSwitch, facts: RequestFacts<'a>, kv: &mut dyn Kv) -> Decision<'a> {
    let principal = principal::resolve(&policy.sources, &facts.peer);
    let principal_key = principal.key();
    let correlation = CorrelationKey::with_key(&principal, &principal_key, &facts.upstream);
    let set_headers = principal.upstream_headers(&principal_key, &correlation);

    let verdict = enforce(policy, remote_kill, &principal, &facts.request, &facts.upstream, kv, facts.now_ms);
    let reply = reply::for_action(&verdict.action, &facts.request);
    let inspectors = response_inspectors(policy, &verdict, &facts.request, &facts.upstream);
    Decision {
        remove_headers: facts.client_warden_headers,
        set_headers,
        reply,
        inspectors,
        outcome: Outcome { request: facts.request, principal, correlation, upstream: facts.upstream, verdict },
    }
}

/// The response pipeline an allowed request's answer must pass, chosen now so that responses
/// nobody needs to read cost nothing.
fn response_inspectors(policy: &Rc<Policy>, verdict: &Verdict, req: &McpRequest, upstream: &str) -> Vec<Box<dyn Inspector>> {
    let mut out: Vec<Box<dyn Inspector>> = Vec::new();
    if verdict.action != Action::Allow {
        return out;
    }
    // A list whose items the policy may hide varies by principal: filtered and marked private
    // (tools, prompts and resources alike: a hidden item must not show in any list).
    if let Some(kind) = req.op.and_then(ListKind::from_list_method) {
        if list_varies(policy, req.era, upstream, kind) {
            out.push(Box::new(ListFilter::new(Rc::clone(policy), kind)));
        }
    }
    out
}
