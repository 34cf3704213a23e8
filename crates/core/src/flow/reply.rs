//! Every local reply the filter sends, in one place: wire rejections, policy answers (hidden,
//! denied, rate limited, killed), host failures, and the JSON-RPC errors that replace a response
//! or end a stream. Status and code follow the spec's table (spec §13; README "Errors"); every
//! reply keeps the request id whenever it could be read.

use crate::mcp::error::{jsonrpc_error_body, push_json_string, Rejection};
use crate::mcp::model::McpRequest;
use crate::mcp::Method;
use crate::policy::Action;
use crate::ports::HostError;

/// JSON-RPC code for a visible policy denial (outside -32768..-32000, spec §13).
pub const CODE_DENIED: i32 = -31403;
/// JSON-RPC code for a rate-limited request.
pub const CODE_RATE_LIMITED: i32 = -31429;
/// JSON-RPC code for a request stopped by the kill switch.
pub const CODE_KILLED: i32 = -31503;
/// Invalid params: what a hidden tool / prompt / resource answers, as if it did not exist.
pub const CODE_UNKNOWN: i32 = -32602;
/// JSON-RPC internal error: the gateway itself failed.
pub const CODE_INTERNAL: i32 = -32603;
/// What a 2025-11-25 server answers for a session it does not know (with HTTP 404).
pub const CODE_SESSION_NOT_FOUND: i32 = -32001;
/// JSON-RPC code for a response the gateway withheld (an inspector blocked it).
pub const CODE_WITHHELD: i32 = -31502;

/// A reply the filter sends instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl LocalReply {
    fn json(status: u32, body: String) -> LocalReply {
        LocalReply { status, headers: vec![("content-type", "application/json".to_owned())], body }
    }

    /// The headers as the host's reply call takes them.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// The reply to a request that failed wire validation.
pub fn for_rejection(r: &Rejection) -> LocalReply {
    let mut reply = LocalReply::json(r.kind.http_status(), r.body());
    if let Some(allow) = r.allow {
        reply.headers.push(("allow", allow.to_owned()));
    }
    reply
}

/// The JSON-RPC error code [`for_action`] answers `action` with (`None` for allow).
pub fn code(action: &Action) -> Option<i32> {
    match action {
        Action::Allow => None,
        Action::Deny { hide: true, .. } | Action::TaskNotFound { .. } => Some(CODE_UNKNOWN),
        Action::Deny { hide: false, .. }
        | Action::ToolChanged { .. }
        | Action::ToolNotApproved { .. }
        | Action::ContentBlocked { .. } => Some(CODE_DENIED),
        Action::Correlated { why, until_ms, .. } => {
            let held = until_ms.is_some() || matches!(*why, "mesh_budget" | "mesh_unavailable" | "store_unavailable");
            Some(if held { CODE_RATE_LIMITED } else { CODE_DENIED })
        }
        Action::RateLimited { .. } => Some(CODE_RATE_LIMITED),
        Action::SessionNotFound => Some(CODE_SESSION_NOT_FOUND),
        Action::Kill { .. } => Some(CODE_KILLED),
        // A question is a result, not an error.
        Action::ConfirmAsk { .. } => None,
        Action::Confirm { .. } => Some(CODE_DENIED),
        Action::ConfirmRefused { why } => Some(confirm_refusal(why).1),
    }
}

/// The reply for a policy `action` (`None` for allow). Keeps the request id.
pub fn for_action(action: &Action, req: &McpRequest) -> Option<LocalReply> {
    let id = req.id.as_deref();
    match action {
        Action::Allow => None,
        Action::Deny { hide: true, .. } => {
            // A completion or subscription reaching a hidden item answers as a direct use would.
            let (op, name) = match &req.target {
                Some(t) => (Some(t.method), t.name.as_str()),
                None => (req.op, req.name.as_deref().unwrap_or("")),
            };
            let message = match op {
                Some(Method::PromptsGet) => format!("Unknown prompt: {name}"),
                Some(Method::ResourcesRead) => format!("Resource not found: {name}"),
                _ => format!("Unknown tool: {name}"),
            };
            // Handler errors travel with HTTP 200 (spec §13; what the SDKs do for unknown tools).
            Some(LocalReply::json(200, jsonrpc_error_body(id, CODE_UNKNOWN, &message, None)))
        }
        Action::Deny { reason, hide: false } => Some(LocalReply::json(403, jsonrpc_error_body(id, CODE_DENIED, reason, None))),
        Action::RateLimited { retry_after_secs, retry_after_ms } => {
            let message = format!("Rate limit exceeded; retry after {retry_after_secs} s");
            let data = format!("{{\"retryAfterSeconds\":{retry_after_secs},\"retryAfterMs\":{retry_after_ms}}}");
            let mut reply = LocalReply::json(429, jsonrpc_error_body(id, CODE_RATE_LIMITED, &message, Some(&data)));
            reply.headers.push(("retry-after", retry_after_secs.to_string()));
            Some(reply)
        }
        // As the server itself would answer an unknown session: the client starts a new one.
        Action::SessionNotFound => {
            Some(LocalReply::json(404, jsonrpc_error_body(id, CODE_SESSION_NOT_FOUND, "Session not found", None)))
        }
        Action::ToolChanged { tool, since_ms, seen } => {
            let since = crate::receipt::time::rfc3339_nano(since_ms.saturating_mul(1_000_000));
            let message = format!(
                "Tool {tool} changed since {since}: its definition is not the one the gateway trusted (re-pin it, or let its baseline expire)"
            );
            let mut data = String::from("{\"reason\":\"tool_changed\",\"tool\":");
            push_json_string(&mut data, tool);
            data.push_str(",\"changedSince\":");
            push_json_string(&mut data, &since);
            data.push_str(",\"seenBy\":");
            push_json_string(&mut data, seen.as_str());
            data.push('}');
            Some(LocalReply::json(403, jsonrpc_error_body(id, CODE_DENIED, &message, Some(&data))))
        }
        Action::ToolNotApproved { tool, why } => {
            let message = match *why {
                "unpinned_tool" => format!("Tool {tool} is not in the approved manifest for this server"),
                "stale_baseline" => format!("Tool {tool} is sensitive and its definition has not been confirmed since the server's tool list changed: list the tools again"),
                _ => format!("Tool {tool} has no trusted definition at the gateway: list the tools first"),
            };
            let mut data = String::from("{\"reason\":");
            push_json_string(&mut data, why);
            data.push_str(",\"tool\":");
            push_json_string(&mut data, tool);
            data.push('}');
            Some(LocalReply::json(403, jsonrpc_error_body(id, CODE_DENIED, &message, Some(&data))))
        }
        // As the server answers a task it does not know (spec: -32602; the SDK servers use 400).
        Action::TaskNotFound { task } => {
            Some(LocalReply::json(400, jsonrpc_error_body(id, CODE_UNKNOWN, &format!("Task {task} not found"), None)))
        }
        Action::ContentBlocked { what, class } => {
            let message = match class {
                Some(c) => format!("Request refused by the gateway: content_scan found {what} ({c})"),
                None => format!("Request refused by the gateway: content_scan found {what}"),
            };
            let mut data = String::from("{\"reason\":\"content_scan\",\"finding\":");
            push_json_string(&mut data, what);
            if let Some(c) = class {
                data.push_str(",\"class\":");
                push_json_string(&mut data, c);
            }
            data.push('}');
            Some(LocalReply::json(403, jsonrpc_error_body(id, CODE_DENIED, &message, Some(&data))))
        }
        Action::Correlated { why, detail, class, until_ms, retry_after_secs } => {
            let mut data = String::from("{\"reason\":\"correlation\",\"why\":");
            push_json_string(&mut data, why);
            if let Some(d) = detail {
                data.push_str(if *why == "tool_chain" { ",\"chain\":" } else { ",\"finding\":" });
                push_json_string(&mut data, d);
            }
            if let Some(c) = class {
                data.push_str(",\"class\":");
                push_json_string(&mut data, c);
            }
            let explain = match *why {
                "entropy_budget" => "this caller's entropy budget is spent",
                "escalation" => "this caller's findings escalated to a block",
                "tool_chain" => "this call completes a suspicious chain of tool calls",
                "fragmented_secret" => "the values sent complete a secret split over earlier requests",
                "mesh_budget" => "this caller's mesh-wide budget is spent",
                "mesh_unavailable" => "the mesh-wide budget service cannot answer",
                "store_unavailable" => "the gateway's shared state cannot answer",
                _ => "correlation",
            };
            let held = until_ms.is_some() || matches!(*why, "mesh_budget" | "mesh_unavailable" | "store_unavailable");
            if !held {
                let mut message = format!("Request refused by the gateway: {explain}");
                if let Some(d) = detail {
                    message.push_str(&format!(" ({d})"));
                }
                data.push('}');
                return Some(LocalReply::json(403, jsonrpc_error_body(id, CODE_DENIED, &message, Some(&data))));
            }
            let mut message = format!("Request refused by the gateway: {explain}; retry after {retry_after_secs} s");
            data.push_str(&format!(",\"retryAfterSeconds\":{retry_after_secs}"));
            if let Some(until) = until_ms {
                let at = crate::receipt::time::rfc3339_nano(until.saturating_mul(1_000_000));
                message.push_str(&format!(" (held until {at})"));
                data.push_str(",\"until\":");
                push_json_string(&mut data, &at);
            }
            data.push('}');
            let status = if matches!(*why, "mesh_unavailable" | "store_unavailable") { 503 } else { 429 };
            let mut reply = LocalReply::json(status, jsonrpc_error_body(id, CODE_RATE_LIMITED, &message, Some(&data)));
            reply.headers.push(("retry-after", retry_after_secs.to_string()));
            Some(reply)
        }
        Action::ConfirmAsk { body } => Some(LocalReply::json(200, body.clone())),
        Action::Confirm { .. } => Some(refused_confirmation(id, "unsupported")),
        Action::ConfirmRefused { why } => Some(refused_confirmation(id, why)),
        Action::Kill { reason, scope } => {
            let message = format!("Stopped by the gateway kill switch: {reason}");
            let mut data = String::from("{\"reason\":");
            push_json_string(&mut data, reason);
            data.push_str(",\"scope\":");
            push_json_string(&mut data, scope);
            data.push('}');
            Some(LocalReply::json(503, jsonrpc_error_body(id, CODE_KILLED, &message, Some(&data))))
        }
    }
}

/// HTTP status, JSON-RPC code, `data.reason` and message of a call that runs without the
/// user's approval (README "Confirm").
fn confirm_refusal(why: &str) -> (u32, i32, &'static str, &'static str) {
    const DECLINED: &str = "confirmation_declined";
    const STATE: &str = "confirmation_state";
    match why {
        "declined" => (403, CODE_DENIED, DECLINED, "the user declined this call"),
        "cancelled" => (403, CODE_DENIED, DECLINED, "the user cancelled the confirmation"),
        "rejected" => (403, CODE_DENIED, DECLINED, "the user did not approve this call"),
        "unsupported" => (
            403,
            CODE_DENIED,
            "confirmation_unsupported",
            "this call needs a user's confirmation and the client cannot be asked (a 2026-07-28 client declaring form elicitation can)",
        ),
        "expired" => (400, CODE_UNKNOWN, STATE, "the confirmation expired; call again to be asked again"),
        "replayed" => (400, CODE_UNKNOWN, STATE, "the confirmation was already used; call again to be asked again"),
        "caller" => (400, CODE_UNKNOWN, STATE, "the confirmation was given to another caller"),
        "call" => (400, CODE_UNKNOWN, STATE, "the confirmation was given for another call (upstream, method or name)"),
        "arguments" => (400, CODE_UNKNOWN, STATE, "the confirmation was given for other arguments"),
        "forged" => (400, CODE_UNKNOWN, STATE, "requestState failed the gateway's integrity check"),
        "ambiguous" => (400, CODE_UNKNOWN, STATE, "the retry names a member twice: it has no single reading"),
        _ => (503, CODE_INTERNAL, "confirmation_unavailable", "the gateway cannot check confirmations now"),
    }
}

fn refused_confirmation(id: Option<&str>, why: &str) -> LocalReply {
    let (status, code, reason, explain) = confirm_refusal(why);
    let message = format!("Request refused by the gateway: {explain}");
    let mut data = String::from("{\"reason\":");
    push_json_string(&mut data, reason);
    data.push_str(",\"why\":");
    push_json_string(&mut data, why);
    data.push('}');
    LocalReply::json(status, jsonrpc_error_body(id, code, &message, Some(&data)))
}

/// A host call failed mid-request: 500, and the request never reaches the upstream.
pub fn for_host_failure(e: &HostError) -> LocalReply {
    LocalReply::json(500, jsonrpc_error_body(None, CODE_INTERNAL, &format!("Internal error: {e}"), None))
}

/// The JSON-RPC error that stands in for a response message an inspector blocked: the client
/// learns which inspector and what kind of finding, never the content.
pub fn withheld(req: &McpRequest, inspector: &str, what: &str) -> String {
    let message = format!("Response withheld by the gateway: {inspector} found {what}");
    let mut data = String::from("{\"inspector\":");
    push_json_string(&mut data, inspector);
    data.push_str(",\"finding\":");
    push_json_string(&mut data, what);
    data.push('}');
    jsonrpc_error_body(req.id.as_deref(), CODE_WITHHELD, &message, Some(&data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::model::McpRequest;

    fn sent_code(action: &Action) -> Option<i64> {
        let req = McpRequest { id: Some("1".into()), ..McpRequest::bodyless(None) };
        let reply = for_action(action, &req)?;
        let body: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        body.pointer("/error/code").and_then(serde_json::Value::as_i64)
    }

    /// `code` (receipts' and metrics' `error.type`) says what `for_action` sends, for every action.
    #[test]
    fn code_is_the_code_each_reply_carries() {
        let actions = [
            Action::Allow,
            Action::Deny { reason: "r".into(), hide: true },
            Action::Deny { reason: "r".into(), hide: false },
            Action::RateLimited { retry_after_secs: 1, retry_after_ms: 1000 },
            Action::Kill { reason: "r".into(), scope: "all" },
            Action::SessionNotFound,
            Action::ToolChanged { tool: "t".into(), since_ms: 0, seen: crate::policy::integrity::ChangeSeen::List },
            Action::ToolNotApproved { tool: "t".into(), why: "unpinned_tool" },
            Action::TaskNotFound { task: "t".into() },
            Action::ContentBlocked { what: "aws_key", class: None },
            Action::Correlated { why: "tool_chain", detail: None, class: None, until_ms: None, retry_after_secs: 0 },
            Action::Correlated { why: "entropy_budget", detail: None, class: None, until_ms: Some(5), retry_after_secs: 1 },
            Action::Correlated { why: "mesh_unavailable", detail: None, class: None, until_ms: None, retry_after_secs: 1 },
            Action::Confirm { reason: "r".into() },
            Action::ConfirmRefused { why: "declined" },
            Action::ConfirmRefused { why: "expired" },
            Action::ConfirmRefused { why: "unavailable" },
        ];
        for a in &actions {
            assert_eq!(code(a).map(i64::from), sent_code(a), "{a:?}");
        }
    }
}
