//! The question the gateway asks: an `input_required` result with one form elicitation under
//! [`super::INPUT_KEY`] that shows the user what is about to run and asks for `approve: true`.
//!
//! What the user sees is bounded ([`MAX_SHOWN_ARGUMENTS`] bytes of the arguments in canonical
//! form) and has every secret the scanner finds redacted, whatever the policy does with it on
//! the wire: a question is shown on screens and kept in client logs.

use crate::mcp::error::push_json_string;
use crate::mcp::Method;
use crate::policy::scan::ScanPolicy;
use crate::scan::redact::{splice, Redaction};
use crate::scan::Found;

/// Most bytes of the arguments shown (cut at a character boundary, with `…`).
pub const MAX_SHOWN_ARGUMENTS: usize = 600;

/// What the question shows.
#[derive(Debug)]
pub struct Shown<'a> {
    pub method: Option<Method>,
    pub name: &'a str,
    pub upstream: &'a str,
    /// The arguments in their compact form (exactly what the state binds).
    pub arguments: Option<&'a [u8]>,
    pub reason: &'a str,
}

/// `text` with what the scanner finds in it (credentials, keys, personal numbers, canaries)
/// replaced by `[redacted]` (the scan's own [`splice`], spans widened to whole characters); as
/// it is with no `scan` (the content scan already found nothing).
pub fn redacted(text: &str, scan: Option<&ScanPolicy>) -> String {
    let Some(scanner) = scan.and_then(|s| s.scanner.as_deref().map(|x| (x, s.max_bytes))) else { return text.to_owned() };
    let (scanner, max_bytes) = scanner;
    let (hits, _) = scanner.scan_text(text.as_bytes(), max_bytes.max(text.len()));
    let redactions: Vec<Redaction> = hits
        .iter()
        .filter(|h| matches!(h.found, Found::Detector(_) | Found::Canary(_)))
        .map(|h| {
            let s = (0..=h.span.0.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let e = (h.span.1.min(text.len())..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            Redaction { span: (s, e), whole_string: false, marker: "[redacted]".to_owned() }
        })
        .collect();
    if redactions.is_empty() {
        return text.to_owned();
    }
    String::from_utf8_lossy(&splice(text.as_bytes(), 0, &redactions.iter().collect::<Vec<_>>())).into_owned()
}

/// The arguments as shown: their compact form, redacted, then cut to the bound.
fn shown_arguments(arguments: Option<&[u8]>, scan: Option<&ScanPolicy>) -> String {
    let Some(a) = arguments else { return "(none)".to_owned() };
    let text = String::from_utf8_lossy(a).into_owned();
    let mut shown = redacted(&text, scan);
    if shown.len() > MAX_SHOWN_ARGUMENTS {
        let cut = (0..=MAX_SHOWN_ARGUMENTS).rev().find(|i| shown.is_char_boundary(*i)).unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// The message the user reads.
pub fn message(s: &Shown<'_>, scan: Option<&ScanPolicy>) -> String {
    let what = match s.method {
        Some(Method::PromptsGet) => "Prompt",
        Some(Method::ResourcesRead) => "Resource",
        _ => "Tool",
    };
    format!(
        "The gateway asks for your approval before this runs.\n{what}: {} (upstream {})\nArguments: {}\nWhy: {}",
        redacted(s.name, scan),
        s.upstream,
        shown_arguments(s.arguments, scan),
        s.reason
    )
}

/// The JSON-RPC answer that asks: id kept, `requestState` the sealed state (and the upstream's
/// behind it).
/// `scan`: what redacts the arguments and the name (`None`: nothing to redact).
pub fn body(id: Option<&str>, s: &Shown<'_>, request_state: &str, scan: Option<&ScanPolicy>) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id.unwrap_or("null"));
    out.push_str(",\"result\":{\"resultType\":\"input_required\",\"inputRequests\":{");
    push_json_string(&mut out, super::INPUT_KEY);
    out.push_str(":{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":");
    push_json_string(&mut out, &message(s, scan));
    out.push_str(",\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"approve\":{\"type\":\"boolean\",\"title\":\"Approve\",\"description\":");
    push_json_string(&mut out, &format!("Run {} on {} as shown", redacted(s.name, scan), s.upstream));
    out.push_str("}},\"required\":[\"approve\"]}}}},\"requestState\":");
    push_json_string(&mut out, request_state);
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan() -> ScanPolicy {
        crate::policy::scan::compile(&Default::default()).unwrap()
    }

    #[test]
    fn the_question_is_one_valid_input_required_result_keeping_the_id() {
        let s = Shown {
            method: Some(Method::ToolsCall),
            name: "deploy",
            upstream: "demo",
            arguments: Some(br#"{"env":"prod","n":1.0}"#),
            reason: "production \"deploys\"",
        };
        let b = body(Some("\"a-7\""), &s, "mcpw1.x.y~theirs", Some(&scan()));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["id"], "a-7");
        assert_eq!(v["result"]["resultType"], "input_required");
        assert_eq!(v["result"]["requestState"], "mcpw1.x.y~theirs");
        let q = &v["result"]["inputRequests"][super::super::INPUT_KEY];
        assert_eq!(q["method"], "elicitation/create");
        assert_eq!(q["params"]["requestedSchema"]["required"][0], "approve");
        let m = q["params"]["message"].as_str().unwrap();
        assert!(m.contains("Tool: deploy (upstream demo)") && m.contains(r#"{"env":"prod","n":1.0}"#), "{m}");
        assert!(m.contains("production \"deploys\""));
    }

    #[test]
    fn secrets_are_redacted_and_long_arguments_cut() {
        let key = "AKIA".to_owned() + "Z7Q2LM4NX8PW3KJD";
        let args = serde_json::to_vec(&serde_json::json!({"a": key, "blob": "é".repeat(800)})).unwrap();
        let s = Shown { method: Some(Method::ToolsCall), name: "upload", upstream: "u", arguments: Some(&args), reason: "r" };
        let m = message(&s, Some(&scan()));
        assert!(!m.contains(&key), "{m}");
        assert!(m.contains("[redacted]"), "{m}");
        let args = m.split("Arguments: ").nth(1).unwrap().split('\n').next().unwrap();
        assert!(args.len() <= MAX_SHOWN_ARGUMENTS + '…'.len_utf8() && args.ends_with('…'), "{}", args.len());
    }
}
