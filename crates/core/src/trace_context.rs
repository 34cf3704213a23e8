//! The agent's trace, from the body to the headers Envoy's tracer reads. SEP-414 carries W3C
//! `traceparent` / `tracestate` / `baggage` in `params._meta`; Envoy's tracers read HTTP headers
//! only. This decides, in pure code, the request header edits that hand the body's context to the
//! tracing hop (`envoy/e2e-tracing.yaml`, README "Tracing"): the W3C headers, the span name
//! `{mcp.method.name} {target}`, and the conventions' span attributes as `x-warden-*` headers
//! that the hop's `custom_tags` read (the filter strips any `x-warden-*` a client sends).
//!
//! Only a well-formed version-00 `traceparent` is copied, re-spelled canonically; `tracestate` and
//! `baggage` only when they are visible ASCII within the W3C size limits. When the HTTP
//! `traceparent` says something else, the body wins (it is the MCP request's own context, the one
//! the upstream's SDK parents its span on) and the mismatch is a finding.

use crate::export::TraceContext;
use crate::inspect::{Disposition, Finding, Severity};
use crate::mcp::model::McpRequest;
use crate::ports::Fault;
use crate::semconv;

/// The span name Envoy's tracing hop gives its spans (`operation: "%REQ(x-warden-span-name)%"`);
/// its presence is also what routes a request through the hop.
pub const SPAN_NAME_HEADER: &str = "x-warden-span-name";

/// The conventions' attributes, as the request headers the hop's `custom_tags` read.
pub const ATTRIBUTE_HEADERS: [(&str, &str); 7] = [
    ("x-warden-mcp-method-name", semconv::MCP_METHOD_NAME),
    ("x-warden-gen-ai-tool-name", semconv::GEN_AI_TOOL_NAME),
    ("x-warden-gen-ai-prompt-name", semconv::GEN_AI_PROMPT_NAME),
    ("x-warden-mcp-resource-uri", semconv::MCP_RESOURCE_URI),
    ("x-warden-gen-ai-operation-name", semconv::GEN_AI_OPERATION_NAME),
    ("x-warden-jsonrpc-request-id", semconv::JSONRPC_REQUEST_ID),
    ("x-warden-mcp-protocol-version", semconv::MCP_PROTOCOL_VERSION),
];

/// The finding's inspector (receipt `layer`, metric label).
pub const INSPECTOR: &str = "trace_context";

/// W3C Trace Context: vendors must propagate at least 512 characters of `tracestate`.
const MAX_TRACESTATE: usize = 512;
/// W3C Baggage: at least 8192 bytes.
const MAX_BAGGAGE: usize = 8192;
/// Longest attribute value carried in a header (a resource URI can be long; a span attribute
/// need not be).
const MAX_ATTRIBUTE: usize = 1024;

/// What to do with the request's headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub set: Vec<(&'static str, String)>,
    pub remove: Vec<&'static str>,
    /// The HTTP `traceparent` named another context than the body's.
    pub finding: Option<Finding>,
}

/// The edits for `request`, given the HTTP `traceparent` it arrived with. `None`: the body carries
/// no usable context, and nothing changes.
pub fn plan(request: &McpRequest, http_traceparent: Option<&[u8]>) -> Option<Plan> {
    let ctx = TraceContext::parse(request.traceparent.as_deref()?)?;
    let canonical =
        format!("00-{}-{}-{:02x}", crate::hex_text::lower(&ctx.trace_id), crate::hex_text::lower(&ctx.span_id), ctx.flags);
    // The method names the span: only a method that is plain header text (a legacy request's
    // method is whatever the client wrote).
    let method = request.method.as_deref().filter(|m| header_safe(m, MAX_ATTRIBUTE))?;
    let mut plan = Plan::default();
    // Byte for byte: a value another tracer would read differently (padding, upper case) is not
    // the same context.
    let agrees = http_traceparent == Some(canonical.as_bytes());
    if !agrees {
        plan.set.push(("traceparent", canonical));
        // An HTTP tracestate belongs to an HTTP traceparent, which is not the one in force.
        match request.tracestate.as_deref().filter(|v| header_safe(v, MAX_TRACESTATE)) {
            Some(v) => plan.set.push(("tracestate", v.to_owned())),
            None => plan.remove.push("tracestate"),
        }
        match request.baggage.as_deref().filter(|v| header_safe(v, MAX_BAGGAGE)) {
            Some(v) => plan.set.push(("baggage", v.to_owned())),
            // The HTTP baggage went with the HTTP context the body's replaced.
            None if http_traceparent.is_some() => plan.remove.push("baggage"),
            None => {}
        }
        if http_traceparent.is_some() {
            plan.finding = Some(Finding {
                inspector: INSPECTOR,
                what: "traceparent_mismatch",
                severity: Severity::Info,
                data_class: None,
                fault: Fault::Client,
                disposition: Disposition::Report,
            });
        }
    }
    let name = request.name.as_deref().filter(|n| header_safe(n, MAX_ATTRIBUTE)).unwrap_or_default();
    plan.set.push((SPAN_NAME_HEADER, semconv::span_name(method, name)));
    let name_attribute = semconv::name_attribute(method);
    let request_id = request.id.as_deref().and_then(semconv::request_id);
    for (header, attribute) in ATTRIBUTE_HEADERS {
        let value = match attribute {
            semconv::MCP_METHOD_NAME => Some(method),
            semconv::GEN_AI_OPERATION_NAME => (method == "tools/call").then_some(semconv::EXECUTE_TOOL),
            semconv::JSONRPC_REQUEST_ID => request_id.as_deref(),
            semconv::MCP_PROTOCOL_VERSION => request.protocol_version.as_deref(),
            a if Some(a) == name_attribute => Some(name),
            _ => None,
        };
        if let Some(v) = value.filter(|v| header_safe(v, MAX_ATTRIBUTE)) {
            plan.set.push((header, v.to_owned()));
        }
    }
    Some(plan)
}

/// Non-empty visible ASCII (spaces inside), at most `max` bytes: a header value every hop passes
/// as it is.
fn header_safe(v: &str, max: usize) -> bool {
    !v.is_empty() && v.len() <= max && v.bytes().all(|b| (0x20..0x7f).contains(&b)) && v.trim() == v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::model::McpRequest;
    use crate::mcp::Method;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn call(traceparent: Option<&str>) -> McpRequest {
        McpRequest {
            id: Some("\"r-1\"".into()),
            method: Some("tools/call".into()),
            op: Some(Method::ToolsCall),
            name: Some("get_weather".into()),
            protocol_version: Some("2026-07-28".into()),
            traceparent: traceparent.map(str::to_owned),
            ..McpRequest::bodyless(None)
        }
    }

    fn value<'a>(plan: &'a Plan, header: &str) -> Option<&'a str> {
        plan.set.iter().find(|(h, _)| *h == header).map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_bodys_context_becomes_the_headers_with_the_conventions_attributes() {
        let mut r = call(Some(TP));
        r.tracestate = Some("rojo=00f067aa0ba902b7".into());
        r.baggage = Some("userId=alice".into());
        let p = plan(&r, None).unwrap();
        assert_eq!(value(&p, "traceparent"), Some(TP));
        assert_eq!(value(&p, "tracestate"), Some("rojo=00f067aa0ba902b7"));
        assert_eq!(value(&p, "baggage"), Some("userId=alice"));
        assert_eq!(value(&p, SPAN_NAME_HEADER), Some("tools/call get_weather"));
        assert_eq!(value(&p, "x-warden-mcp-method-name"), Some("tools/call"));
        assert_eq!(value(&p, "x-warden-gen-ai-tool-name"), Some("get_weather"));
        assert_eq!(value(&p, "x-warden-gen-ai-operation-name"), Some("execute_tool"));
        assert_eq!(value(&p, "x-warden-jsonrpc-request-id"), Some("r-1"));
        assert_eq!(value(&p, "x-warden-mcp-protocol-version"), Some("2026-07-28"));
        assert_eq!(value(&p, "x-warden-gen-ai-prompt-name"), None);
        assert!(p.remove.is_empty() && p.finding.is_none());
        // Without a body tracestate, a stray HTTP one (of no traceparent) goes.
        assert_eq!(plan(&call(Some(TP)), None).unwrap().remove, vec!["tracestate"]);
    }

    #[test]
    fn nothing_changes_without_a_well_formed_context_in_the_body() {
        assert_eq!(plan(&call(None), None), None);
        for bad in [
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx-evil: 1",
        ] {
            assert_eq!(plan(&call(Some(bad)), None), None, "{bad}");
        }
    }

    #[test]
    fn values_that_are_not_plain_header_text_are_not_copied() {
        let mut r = call(Some(TP));
        r.tracestate = Some("a=1\r\nx-evil: 1".into());
        r.baggage = Some("k=".to_owned() + &"v".repeat(MAX_BAGGAGE));
        r.name = Some("wetter-für-köln".into());
        let p = plan(&r, None).unwrap();
        assert_eq!(value(&p, "tracestate"), None);
        assert_eq!(value(&p, "baggage"), None);
        assert_eq!(value(&p, "x-warden-gen-ai-tool-name"), None);
        assert_eq!(value(&p, SPAN_NAME_HEADER), Some("tools/call"));
    }

    #[test]
    fn an_agreeing_http_header_is_left_alone_a_differing_one_loses_to_the_body() {
        let p = plan(&call(Some(TP)), Some(TP.as_bytes())).unwrap();
        assert_eq!(value(&p, "traceparent"), None);
        assert!(p.finding.is_none());

        let other = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = plan(&call(Some(TP)), Some(other)).unwrap();
        assert_eq!(value(&p, "traceparent"), Some(TP));
        assert_eq!(p.remove, vec!["tracestate", "baggage"]);
        assert_eq!(p.finding.as_ref().map(|f| f.what), Some("traceparent_mismatch"));
        // An unreadable HTTP header is replaced too (and is a mismatch), as is one another tracer
        // would read otherwise (padded, upper case).
        assert!(plan(&call(Some(TP)), Some(b"garbage")).unwrap().finding.is_some());
        let padded = format!("\u{2003}{TP}");
        assert!(plan(&call(Some(TP)), Some(padded.as_bytes())).unwrap().finding.is_some());
        assert!(plan(&call(Some(TP)), Some(TP.to_uppercase().as_bytes())).unwrap().finding.is_some());
    }

    #[test]
    fn a_method_that_is_not_header_text_names_no_span() {
        let mut r = call(Some(TP));
        r.method = Some("x\r\nx-warden-principal: admin".into());
        assert_eq!(plan(&r, None), None);
        r.method = Some("m".repeat(MAX_ATTRIBUTE + 1));
        assert_eq!(plan(&r, None), None);
    }

    #[test]
    fn resource_uris_are_attributes_but_not_span_names() {
        let r = McpRequest {
            method: Some("resources/read".into()),
            op: Some(Method::ResourcesRead),
            name: Some("file:///notes/today.md".into()),
            ..call(Some(TP))
        };
        let p = plan(&r, None).unwrap();
        assert_eq!(value(&p, SPAN_NAME_HEADER), Some("resources/read"));
        assert_eq!(value(&p, "x-warden-mcp-resource-uri"), Some("file:///notes/today.md"));
        assert_eq!(value(&p, "x-warden-gen-ai-operation-name"), None);
    }
}
