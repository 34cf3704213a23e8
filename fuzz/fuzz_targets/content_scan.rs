//! Any message, judged by the content scan under the default policy (with a canary) both ways
//! and as an error page's text: findings, a rewrite or a block, never a panic; and a rewrite is
//! itself JSON-readable whenever the input was (redaction keeps the message valid).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::content_scan::{judge, judge_text};
use mcp_warden_core::policy::scan::{Direction, Subject};
use mcp_warden_core::policy::{load, Policy};

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| load(br#"{"content_scan": {"canaries": ["mcpw-canary-fuzz01"], "injection": "redact"}}"#).unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let scan = &policy().scan;
    for direction in [Direction::Request, Direction::Response] {
        let subject = Subject { tool: "t", principal: "p", upstream: "u", direction };
        let j = judge(scan, &subject, data);
        if let Some(new) = j.rewrite {
            if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
                assert!(serde_json::from_slice::<serde_json::Value>(&new).is_ok(), "a redaction broke the JSON");
            }
        }
    }
    let subject = Subject { tool: "t", principal: "p", upstream: "u", direction: Direction::Response };
    let _ = judge_text(scan, &subject, data);
});
