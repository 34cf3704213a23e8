//! Legacy JSON-RPC batches an operator opted into (`eras.legacy_batches`): every element is
//! decided on as if it had come alone (rules, hiding, kill switch, one rate-limit token each), in
//! order; the first element refused refuses the whole batch (nothing of it is forwarded), and the
//! elements after it are not decided. Each element gets its own receipt ([`BatchElement`]).
//!
//! An element a confirmation covers (a `confirm` rule, a sensitive tool) is refused as a client
//! that cannot be asked (MRTR answers one request), and so is an element that is an MRTR retry.
//!
//! Each element also passes the request-side integrity checks a lone request passes (a
//! `tools/call` against its baseline or pin, a task against its creator). An element whose answer
//! the response pipeline would have to read (a list the policy filters or tool integrity reads,
//! a `ui://` template, a task handed out, a server identity) refuses the batch too: the answer
//! would be a JSON array the inspectors do not take apart, and an answer the filter must inspect
//! but cannot is never passed.

use std::rc::Rc;

use crate::flow::vm::VmCache;
use crate::inspect::Finding;
use crate::integrity::call::Requester;
use crate::mcp::model::McpRequest;
use crate::policy::{enforce_keyed, Action, KillSwitch, Policy, Verdict};
use crate::ports::Kv;
use crate::principal::Principal;

use super::decide::{integrity_checks, request_inspectors};
use super::reply::{self, LocalReply};

/// Rule id of the refusal of a batch element whose answer must be inspected.
pub const RULE_INSPECTED_ANSWER: &str = "batch:inspected_answer";
/// Rule id of the refusal of a batch element that is an MRTR retry.
pub const RULE_MRTR_RETRY: &str = "batch:mrtr_retry";
/// Rule id in the receipt of an element that was not decided because an earlier one was refused.
pub const RULE_NOT_DECIDED: &str = "batch:refused";

/// One element of a batch and what was decided on it (`None`: not decided, the batch was
/// already refused).
#[derive(Debug, Clone)]
pub struct BatchElement {
    pub request: McpRequest,
    pub verdict: Option<Verdict>,
}

/// The verdict on the whole batch (the first refusal, else allow), the reply that refusal sends
/// (a JSON array holding the refused element's error), and every element's own decision.
#[allow(clippy::too_many_arguments)]
pub fn decide_batch(
    policy: &Rc<Policy>,
    remote_kill: &KillSwitch,
    principal: &Principal,
    at: Requester<'_>,
    elements: Vec<McpRequest>,
    kv: &mut dyn Kv,
    vm: &mut VmCache,
    findings: &mut Vec<Finding>,
) -> (Verdict, Option<LocalReply>, Vec<BatchElement>) {
    let (upstream, now_ms) = (at.upstream, at.now_ms);
    let mut out: Vec<BatchElement> = Vec::with_capacity(elements.len());
    let mut overall = Verdict { action: Action::Allow, rule_id: None, dry_run: Vec::new(), store_errors: Vec::new() };
    let mut reply = None;
    for request in elements {
        if reply.is_some() {
            out.push(BatchElement { request, verdict: None });
            continue;
        }
        let mut v = enforce_keyed(policy, remote_kill, (principal, at.rate_key), &request, upstream, kv, now_ms);
        if v.action == Action::Allow && crate::confirm::sensitive(policy, &request) {
            // Nobody can be asked about a batch element: refused as a client that cannot be.
            v.action = Action::ConfirmRefused { why: "unsupported" };
            v.rule_id = Some(crate::confirm::SENSITIVE_RULE.to_owned());
        }
        if v.action == Action::Allow && request.is_mrtr_retry {
            // MRTR answers one request: a retry has no place in a 2025-11-25 batch (and a state
            // of the gateway's in one must not reach the upstream unchecked).
            v.action = Action::Deny {
                reason: "a multi round-trip retry (requestState / inputResponses) cannot travel in a batch: send it on its own"
                    .to_owned(),
                hide: false,
            };
            v.rule_id = Some(RULE_MRTR_RETRY.to_owned());
        }
        if v.action == Action::Allow {
            integrity_checks(policy, &mut v, &request, (at, (principal, remote_kill)), kv, vm, findings);
        }
        if !request_inspectors(policy, &v, &request, upstream).is_empty() {
            v.action = Action::Deny {
                reason: "an answer the filter must read (a filtered or checked list, a ui:// template, a task, a server identity) cannot travel in a batch: send it on its own".to_owned(),
                hide: false,
            };
            v.rule_id = Some(RULE_INSPECTED_ANSWER.to_owned());
        }
        overall.dry_run.extend(v.dry_run.iter().cloned());
        overall.store_errors.extend(v.store_errors.iter().cloned());
        if v.action != Action::Allow {
            reply = reply::for_action(&v.action, &request).map(as_batch_answer);
            overall.action = v.action.clone();
            overall.rule_id = v.rule_id.clone();
        }
        out.push(BatchElement { request, verdict: Some(v) });
    }
    (overall, reply, out)
}

/// A batch is answered with an array (JSON-RPC 2.0 §6).
pub(super) fn as_batch_answer(mut r: LocalReply) -> LocalReply {
    r.body = format!("[{}]", r.body);
    r
}
