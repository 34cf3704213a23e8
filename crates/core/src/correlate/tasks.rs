//! A task's life as one budget: the inputs `tasks/update` sends (through [`super::account`])
//! and the outputs its `tasks/get` answers and `notifications/tasks` events carry ([`TaskDrip`],
//! a response inspector), kept in the task's own record.

use serde_json::Value;

use crate::inspect::{read_object, Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::mcp::Method;
use crate::policy::correlate::{CorrelationPolicy, TripAction};
use crate::ports::{Fault, Kv};
use crate::state::slots::StoreError;

use super::entropy::benign;
use super::record::{Hold, Record};
use super::sends::Bits;
use super::{disposition, eviction_cost, finding, table, task_key, window, Trip, INSPECTOR};

/// Holds a key that spent its budget for the cool-down; the cool-down is the penalty, so the
/// key starts a fresh window when it ends.
pub(super) fn hold_for_budget(rec: &mut Record, cooldown_ms: u64, now: u64) {
    rec.hold = Some(Hold::Budget);
    rec.held_until_ms = now.saturating_add(cooldown_ms);
    rec.window_start_ms = rec.held_until_ms;
    rec.window_bits = 0;
    rec.previous_bits = 0;
}

/// Spends `bits` of the task record `task`: over the task budget, the task is held for the
/// cool-down (block) or reported (warn). `output`: the fingerprint of an answer's strings; the
/// same answer again (a client polling a task that has not moved) spends nothing.
pub(super) fn spend_task(
    policy: &CorrelationPolicy,
    kv: &mut dyn Kv,
    task: &str,
    bits: u64,
    output: Option<u64>,
    acts: bool,
    now: u64,
) -> (Option<Trip>, Vec<Finding>, Option<StoreError>) {
    let b = &policy.budget;
    if b.action == TripAction::Off || (bits == 0 && !acts) {
        return (None, Vec::new(), None);
    }
    let t = table(policy.slots);
    let cost = eviction_cost(now, b.window_ms);
    let r = t.update(kv, task.as_bytes(), now, &cost, |cur| {
        let mut rec = Record::decode(cur);
        if rec.held_until_ms > now {
            let f = finding("held", Severity::Warning, Disposition::Block);
            return (None, (Some(Trip::Held { hold: Hold::Budget, until_ms: rec.held_until_ms }), vec![f]));
        }
        let seen = output.map(u64::to_le_bytes);
        if bits == 0 || (seen.is_some() && seen.as_ref().map(|s| s.as_slice()) == Some(rec.tail.as_slice())) {
            return (None, (None, Vec::new()));
        }
        window::roll(&mut rec, b.window_ms, now);
        let after = window::spent(&rec, b.window_ms, now).saturating_add(bits);
        let mut findings = Vec::new();
        let mut trip = None;
        if after > b.task_bits {
            let d = disposition(b.action);
            findings.push(finding("task_entropy_budget", Severity::High, d));
            if d == Disposition::Block {
                hold_for_budget(&mut rec, b.cooldown_ms, now);
                trip = Some(Trip::Held { hold: Hold::Budget, until_ms: rec.held_until_ms });
            }
        }
        if trip.is_none() {
            window::add(&mut rec, bits);
            if let Some(s) = seen {
                rec.tail = s.to_vec();
            }
        }
        (Some(rec.encode()), (trip, findings))
    });
    match r {
        Ok((trip, findings)) => (trip, findings, None),
        Err(e) => (None, vec![Finding::store_error(INSPECTOR, Disposition::Report)], Some(e)),
    }
}

/// The response inspector for task outputs: every `tasks/get` answer and every
/// `notifications/tasks` event (on a `subscriptions/listen` stream) spends the task's budget
/// with the bits of its result's strings. Over the budget under `block`, the message is
/// withheld (the task is held for the cool-down; its next `tasks/get` is refused).
pub struct TaskDrip {
    policy: std::rc::Rc<crate::policy::Policy>,
}

impl TaskDrip {
    pub fn new(policy: std::rc::Rc<crate::policy::Policy>) -> TaskDrip {
        TaskDrip { policy }
    }
}

impl Inspector for TaskDrip {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        let c = &self.policy.correlation;
        // Only messages that carry a task: a tasks/get answer, or a task notification.
        let task_id = match ex.request.op {
            Some(Method::TasksGet | Method::TasksResult) => ex.request.handles.task_id.clone(),
            _ => None,
        };
        let is_event = ex.request.op == Some(Method::SubscriptionsListen);
        if task_id.is_none() && !is_event {
            return Rewrite::Keep;
        }
        let Some(obj) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let (task, payload) = if is_event {
            if obj.get("method").and_then(|m| m.as_str()) != Some("notifications/tasks") {
                return Rewrite::Keep;
            }
            let params = obj.get("params");
            (params.and_then(|p| p.get("taskId")).and_then(|t| t.as_str()).map(str::to_owned), params)
        } else {
            (task_id, obj.get("result"))
        };
        let (Some(task), Some(payload)) = (task, payload) else { return Rewrite::Keep };
        let mut bits = Bits::new(&c.budget, Vec::new());
        let mut strings = Vec::new();
        collect_strings(payload, &mut strings, 0);
        // FNV-1a over the strings: the answer's fingerprint.
        let mut print = crate::fnv::OFFSET;
        for s in strings {
            print = crate::fnv::extend(crate::fnv::extend(print, s.as_bytes()), &[0]);
            bits.value(s.as_bytes(), benign(s.as_bytes(), &c.budget.ignore));
        }
        let key = task_key(ex.upstream, &task);
        let (_, found, _) = spend_task(c, state, &key, bits.total(), Some(print), false, ex.now_ms);
        // A Block finding withholds the message (the flow's rule for every inspector).
        findings.extend(found.into_iter().map(|f| Finding { fault: Fault::Upstream, ..f }));
        Rewrite::Keep
    }
}

fn collect_strings<'v>(v: &'v Value, out: &mut Vec<&'v str>, depth: usize) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) if depth < 64 => a.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        Value::Object(o) if depth < 64 => o.iter().for_each(|(_, x)| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}
