//! OpenTelemetry's semantic conventions for MCP, as this filter speaks them: the attribute names
//! on receipts' OTLP log records, the tags of the per-operation histogram, and the span name and
//! target that Envoy's span gets. The conventions are Development status and move; every name
//! is spelled here once, so following a renamed attribute is a change of one constant.
//!
//! What the conventions do not cover (verdict, rule, findings, principal fingerprint, upstream,
//! bytes) is ours, under `warden.*` ([`crate::export::attr`]).

use crate::mcp::Method;

/// The conventions followed: repository and release (README "Observability").
pub const VERSION: &str = "open-telemetry/semantic-conventions-genai v0.1.0";

pub const MCP_METHOD_NAME: &str = "mcp.method.name";
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
pub const MCP_SESSION_ID: &str = "mcp.session.id";
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
pub const ERROR_TYPE: &str = "error.type";

/// `gen_ai.operation.name` of a `tools/call`.
pub const EXECUTE_TOOL: &str = "execute_tool";
/// `error.type` of a `CallToolResult` with `isError: true`.
pub const TOOL_ERROR: &str = "tool_error";
/// `error.type` / tag value for a label outside the closed set a metric may carry.
pub const OTHER: &str = "_OTHER";

/// Histogram of the time from request to the end of its answer, as the gateway saw it.
/// Envoy histograms hold integers: recorded in milliseconds, Envoy's unit for durations (the
/// conventions' unit is `s`; their bucket bounds start at 10 ms, Envoy's default ones at 0.5 ms).
pub const SERVER_OPERATION_DURATION: &str = "mcp.server.operation.duration";

/// The attribute an MCP name goes under, by method: a tool's or prompt's name, a resource's URI;
/// `None` for a name the conventions have no attribute for (a task id).
pub fn name_attribute(method: &str) -> Option<&'static str> {
    match Method::parse(method) {
        Method::ToolsCall => Some(GEN_AI_TOOL_NAME),
        Method::PromptsGet => Some(GEN_AI_PROMPT_NAME),
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => Some(MCP_RESOURCE_URI),
        _ => None,
    }
}

/// The span name `{mcp.method.name} {target}`: the target is a tool or prompt name (low
/// cardinality); anything else (a resource URI, a task id) leaves the method alone.
pub fn span_name(method: &str, name: &str) -> String {
    let target = matches!(name_attribute(method), Some(GEN_AI_TOOL_NAME | GEN_AI_PROMPT_NAME)) && !name.is_empty();
    if target {
        format!("{method} {name}")
    } else {
        method.to_owned()
    }
}

/// `error.type` for an exchange: the JSON-RPC error code the client got, else `tool_error`, else
/// the HTTP status of an answer that failed at the HTTP level (the conventions' `500`).
pub fn error_type(code: Option<i64>, tool_error: bool, http_error: Option<u16>) -> Option<String> {
    match code {
        Some(c) => Some(c.to_string()),
        None if tool_error => Some(TOOL_ERROR.to_owned()),
        None => http_error.map(|s| s.to_string()),
    }
}

/// JSON-RPC error codes a metric label may name: the protocol's, MCP's and the gateway's own.
/// Any other code (an upstream may answer with any integer) is labelled [`OTHER`], so an upstream
/// cannot grow the number of stats; receipts keep the exact code.
const LABELLED_CODES: [i64; 15] = [
    -32700, -32600, -32601, -32602, -32603, // JSON-RPC
    -32000, -32001, -32002, -32020, -32022, -32042, // MCP and the wire checks
    -31403, -31429, -31502, -31503, // the gateway
];

/// `error.type` as a metric label: [`error_type`] within a closed set (HTTP statuses are
/// 400..=599 by construction).
pub fn error_label(code: Option<i64>, tool_error: bool, http_error: Option<u16>) -> Option<String> {
    match code {
        Some(c) if LABELLED_CODES.contains(&c) => Some(c.to_string()),
        Some(_) => Some(OTHER.to_owned()),
        None => error_type(None, tool_error, http_error.filter(|s| (400..=599).contains(s))),
    }
}

/// `jsonrpc.request.id`: "a string representation of the id" — a string id without its JSON
/// quotes, a number as written; `None` for a `null` id (the conventions leave it out).
pub fn request_id(json_text: &str) -> Option<String> {
    if json_text.is_empty() || json_text == "null" {
        return None;
    }
    if json_text.starts_with('"') {
        return serde_json::from_str::<String>(json_text).ok();
    }
    Some(json_text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_under_the_attribute_of_their_method() {
        assert_eq!(name_attribute("tools/call"), Some(GEN_AI_TOOL_NAME));
        assert_eq!(name_attribute("prompts/get"), Some(GEN_AI_PROMPT_NAME));
        assert_eq!(name_attribute("resources/read"), Some(MCP_RESOURCE_URI));
        assert_eq!(name_attribute("resources/subscribe"), Some(MCP_RESOURCE_URI));
        assert_eq!(name_attribute("tasks/get"), None);
        assert_eq!(name_attribute("tools/list"), None);
    }

    #[test]
    fn span_names_carry_only_low_cardinality_targets() {
        assert_eq!(span_name("tools/call", "get-weather"), "tools/call get-weather");
        assert_eq!(span_name("prompts/get", "review"), "prompts/get review");
        assert_eq!(span_name("resources/read", "file:///etc/x"), "resources/read");
        assert_eq!(span_name("tools/call", ""), "tools/call");
        assert_eq!(span_name("tools/list", ""), "tools/list");
    }

    #[test]
    fn request_ids_are_strings_without_json_quotes() {
        assert_eq!(request_id("7").as_deref(), Some("7"));
        assert_eq!(request_id("\"req-7\"").as_deref(), Some("req-7"));
        assert_eq!(request_id("\"a\\u0062\"").as_deref(), Some("ab"));
        assert_eq!(request_id("null"), None);
        assert_eq!(request_id(""), None);
    }

    #[test]
    fn error_labels_are_a_closed_set() {
        assert_eq!(error_label(Some(-32602), false, None).as_deref(), Some("-32602"));
        assert_eq!(error_label(Some(-31403), false, None).as_deref(), Some("-31403"));
        assert_eq!(error_label(Some(123_456), false, None).as_deref(), Some("_OTHER"));
        assert_eq!(error_label(Some(0), false, None).as_deref(), Some("_OTHER"));
        assert_eq!(error_label(None, true, None).as_deref(), Some("tool_error"));
        assert_eq!(error_label(None, false, None), None);
    }

    #[test]
    fn error_type_prefers_the_jsonrpc_code() {
        assert_eq!(error_type(Some(-32602), true, Some(500)).as_deref(), Some("-32602"));
        assert_eq!(error_type(None, true, Some(500)).as_deref(), Some("tool_error"));
        assert_eq!(error_type(None, false, None), None);
        assert_eq!(error_type(None, false, Some(503)).as_deref(), Some("503"));
        assert_eq!(error_label(None, false, Some(503)).as_deref(), Some("503"));
    }
}
