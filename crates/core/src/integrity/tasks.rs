//! Tasks bound to the principal that created them (the tasks extension, and the 2025-11-25
//! experimental tasks): the response inspector `task_binding` binds every task id a `tools/call`
//! answer hands out, [`check_task_access`] answers the rest as unknown tasks when they come from
//! another principal.
//!
//! - A modern answer `{"resultType": "task", "taskId", "ttlMs"}` or a legacy `CreateTaskResult`
//!   `{"task": {"taskId", "ttl"}}` binds the id to the caller for the task's lifetime (`null`:
//!   unlimited, then `tasks.max_ttl_secs`; never longer).
//! - `tasks/get`, `tasks/update`, `tasks/cancel` (and legacy `tasks/result`) name one task in
//!   `params.taskId`; `subscriptions/listen` may name several in `notifications.taskIds`. One
//!   that belongs to someone else → the spec's not-found answer (`-32602`), a receipt and
//!   `mcp_warden_task_hijacks_total`. A table that cannot answer refuses the same way (fail
//!   closed, counted as a store error).
//! - The binding also records the tool whose call created the task: `tasks/get`, `tasks/update`,
//!   `tasks/result` and `subscriptions/listen` on it answer to the kill switch and the rules as a
//!   call of that tool would (a killed tool's task cannot be fed, read or followed; cancelling it
//!   stays open). Names longer than the slot holds are recorded by their start.
//! - A task id whose [`estimated_bits`] fall below `tasks.min_id_bits` is a finding
//!   (`guessable_task_id`): a bearer handle another caller could guess.

use serde_json::Value;

use crate::inspect::{may_mention, read_object, Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::mcp::model::McpRequest;
use crate::mcp::Method;
use crate::policy::{Action, Policy};
use crate::ports::{Fault, Kv};
use crate::state::owners::{self, Owner};
use crate::state::slots::StoreError;

pub const INSPECTOR: &str = "task_binding";
/// Task ids one `subscriptions/listen` filter may name (more: refused as if unknown).
pub const MAX_LISTEN_TASK_IDS: usize = 64;

/// An estimate of the bits of entropy in an id: the smaller of (a) its length times the bits of
/// the smallest alphabet its characters fit (digits, hex, lowercase, letters and digits, base64,
/// printable) and (b) its length times the Shannon entropy of its own character distribution
/// (which catches repetition: `aaaa…` and `0000…1` are cheap, whatever their length).
pub fn estimated_bits(id: &str) -> f64 {
    let len = id.chars().count();
    if len == 0 {
        return 0.0;
    }
    let all = |f: fn(char) -> bool| id.chars().all(f);
    let alphabet: f64 = if all(|c| c.is_ascii_digit()) {
        10.0
    } else if all(|c| c.is_ascii_hexdigit() || c == '-') && (all(|c| !c.is_ascii_uppercase()) || all(|c| !c.is_ascii_lowercase()))
    {
        16.0
    } else if all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        38.0
    } else if all(|c| c.is_ascii_alphanumeric()) {
        62.0
    } else if all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')) {
        64.0
    } else {
        95.0
    };
    let mut counts: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for c in id.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = len as f64;
    let shannon: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum();
    (n * alphabet.log2()).min(n * shannon)
}

/// The task handle in a `tools/call` result, and its lifetime hint (ms; `None`: unlimited or
/// absent).
pub fn created_task(result: &Value) -> Option<(&str, Option<u64>)> {
    if result.get("resultType").and_then(Value::as_str) == Some("task") {
        return Some((result.get("taskId")?.as_str()?, result.get("ttlMs").and_then(Value::as_u64)));
    }
    let legacy = result.get("task")?;
    Some((legacy.get("taskId")?.as_str()?, legacy.get("ttl").and_then(Value::as_u64)))
}

fn finding(what: &'static str, severity: Severity, fault: Fault) -> Finding {
    Finding { inspector: INSPECTOR, what, severity, data_class: None, fault, disposition: Disposition::Report }
}

/// The inspector `task_binding` (on `tools/call` answers).
pub struct TaskBinder {
    slots: u32,
    min_id_bits: u32,
    max_ttl_ms: u64,
}

impl TaskBinder {
    pub fn new(policy: &Policy) -> TaskBinder {
        TaskBinder { slots: policy.tasks.slots, min_id_bits: policy.tasks.min_id_bits, max_ttl_ms: policy.tasks.max_ttl_ms }
    }
}

impl Inspector for TaskBinder {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        // Cheap first: only an answer that may mention a task is parsed.
        if !may_mention(message, b"taskId") {
            return Rewrite::Keep;
        }
        let Some(v) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let Some((task, ttl)) = v.get("result").and_then(created_task) else { return Rewrite::Keep };
        if estimated_bits(task) < f64::from(self.min_id_bits) {
            findings.push(finding("guessable_task_id", Severity::Warning, Fault::Upstream));
        }
        let lifetime = ttl.unwrap_or(self.max_ttl_ms).min(self.max_ttl_ms);
        let table = owners::tasks(self.slots);
        let tag = tool_tag(ex.request.name.as_deref().unwrap_or_default());
        if owners::bind_tagged(state, &table, task, ex.principal_key, &tag, ex.now_ms, lifetime.max(1)).is_err() {
            // Unbound, the task goes to its first user: counted, and the answer passes.
            findings.push(Finding::store_error(INSPECTOR, Disposition::Report));
        }
        Rewrite::Keep
    }
}

/// A task binding's tag: `t` and the tool's name, or `…` and as much of its start as fits.
fn tool_tag(tool: &str) -> Vec<u8> {
    let room = owners::MAX_TAG - 1;
    let (mark, name) = match tool.as_bytes().get(..room) {
        Some(start) if tool.len() > room => (b'~', start),
        _ => (b't', tool.as_bytes()),
    };
    let mut tag = Vec::with_capacity(1 + name.len());
    tag.push(mark);
    tag.extend_from_slice(name);
    tag
}

/// The tool a task binding's tag names (`whole`: false when only its start was kept).
fn tagged_tool(tag: &[u8]) -> Option<(std::borrow::Cow<'_, str>, bool)> {
    let (&mark, name) = tag.split_first()?;
    let whole = match mark {
        b't' => true,
        b'~' => false,
        _ => return None,
    };
    Some((String::from_utf8_lossy(name), whole))
}

/// What policy says now of the tool a task belongs to (`whole`: the name is complete): a
/// refusal and its rule, or `None`.
pub type ToolVerdict<'a> = &'a dyn Fn(&str, bool) -> Option<(Action, Option<String>)>;

/// What [`check_task_access`] decided: a refusal (and the rule that made it), its finding, and
/// a table error.
#[derive(Debug, Default)]
pub struct TaskAccess {
    pub action: Option<Action>,
    pub rule_id: Option<String>,
    pub finding: Option<Finding>,
    pub store_error: Option<StoreError>,
}

/// The task ids a request acts on.
fn task_ids(req: &McpRequest) -> Vec<&str> {
    match req.op {
        Some(Method::TasksGet | Method::TasksUpdate | Method::TasksCancel | Method::TasksResult) => {
            req.handles.task_id.as_deref().into_iter().collect()
        }
        Some(Method::SubscriptionsListen) => req.handles.listen_task_ids.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Refuses a request that acts on another principal's task, or (but to cancel it) on a task of a
/// tool `tool_verdict` refuses now.
pub fn check_task_access(
    policy: &Policy,
    kv: &mut dyn Kv,
    req: &McpRequest,
    (principal_key, now_ms): (&str, u64),
    tool_verdict: ToolVerdict<'_>,
) -> TaskAccess {
    if !policy.tasks.bind {
        return TaskAccess::default();
    }
    let refuse = |action, finding| TaskAccess { action: Some(action), finding: Some(finding), ..TaskAccess::default() };
    // The legacy `tasks/list` would show the caller every task the server holds, other
    // principals' too (a session-less server does not scope it): binding cannot filter what it
    // does not know, so it is refused, as the 2026-07-28 tasks extension removed it.
    if req.op == Some(Method::TasksList) {
        let f = finding("task_list_refused", Severity::Info, Fault::Client);
        let reason =
            "tasks/list is not served through this gateway (it would list other principals' tasks): poll your tasks by id"
                .to_owned();
        return refuse(Action::Deny { reason, hide: false }, f);
    }
    let ids = task_ids(req);
    if ids.len() > MAX_LISTEN_TASK_IDS {
        let task = format!("{} (and {} more)", ids.first().copied().unwrap_or_default(), ids.len() - 1);
        return refuse(Action::TaskNotFound { task }, finding("too_many_task_ids", Severity::Warning, Fault::Client));
    }
    let table = owners::tasks(policy.tasks.slots);
    for id in ids {
        match owners::check_tagged(kv, &table, id, principal_key, now_ms, policy.tasks.max_ttl_ms) {
            Ok((Owner::Caller, _, tag)) => {
                // Cancelling stops the tool's work: never refused for the tool's sake.
                if req.op == Some(Method::TasksCancel) {
                    continue;
                }
                let Some((tool, whole)) = tagged_tool(&tag) else { continue };
                if let Some((action, rule_id)) = tool_verdict(&tool, whole) {
                    let f = finding("task_of_refused_tool", Severity::Warning, Fault::Client);
                    return TaskAccess { rule_id, ..refuse(action, f) };
                }
            }
            Ok((Owner::Other, _, _)) => {
                let f = finding("foreign_task", Severity::High, Fault::Client);
                return refuse(Action::TaskNotFound { task: id.to_owned() }, f);
            }
            Err(e) => {
                let f = Finding::store_error(INSPECTOR, Disposition::Block);
                return TaskAccess { store_error: Some(e), ..refuse(Action::TaskNotFound { task: id.to_owned() }, f) };
            }
        }
    }
    TaskAccess::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_ids_estimate_low_and_random_ones_high() {
        for (id, lo, hi) in [
            ("1", 0.0, 1.0),
            ("task-1", 0.0, 20.0),
            ("42", 0.0, 7.0),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0.0, 1.0),
            ("00000000000000000000000000000001", 0.0, 10.0),
            ("2026-12-01T10:00:00Z", 0.0, 64.0),
            ("786512e2-9e0d-44bd-8f29-789f320fe840", 100.0, 150.0),
            ("HJwjXrt9AWnm0kndtalPt3FcWohONCpfP2HDfDCy8Wg", 150.0, 260.0),
        ] {
            let b = estimated_bits(id);
            assert!((lo..=hi).contains(&b), "{id}: {b}");
        }
    }

    #[test]
    fn created_tasks_are_read_in_both_eras() {
        let modern = serde_json::json!({"resultType": "task", "taskId": "t1", "ttlMs": 60000, "status": "working"});
        let unlimited = serde_json::json!({"resultType": "task", "taskId": "t2", "ttlMs": null});
        let legacy = serde_json::json!({"task": {"taskId": "t3", "ttl": 5000, "status": "working"}});
        let plain = serde_json::json!({"resultType": "complete", "content": [], "taskId": "not-a-task"});
        assert_eq!(created_task(&modern), Some(("t1", Some(60000))));
        assert_eq!(created_task(&unlimited), Some(("t2", None)));
        assert_eq!(created_task(&legacy), Some(("t3", Some(5000))));
        assert_eq!(created_task(&plain), None);
    }
}
