//! Any body, under each header combination that changes the classification path: the wire
//! layer answers Ok or a rejection, never panics. The first byte picks the head.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::mcp::classify::{classify_body, RequestHead, WireRules};
use mcp_warden_core::mcp::jsonrpc::salvage_id;

fuzz_target!(|data: &[u8]| {
    let (pick, body) = data.split_first().map_or((0, data), |(p, b)| (*p, b));
    let rules = WireRules {
        modern_enabled: pick & 1 == 0,
        legacy_enabled: pick & 2 == 0,
        supported_versions: vec!["2026-07-28".into()],
        forward_cors_preflight: false,
        // Batches decided element by element whenever legacy is on with the second bit pattern.
        legacy_batches: pick & 3 == 1,
    };
    let names: [&[u8]; 4] = [b"echo", b"=?base64?ZWNobw==?=", b"", b"\xff"];
    let head = RequestHead {
        http_method: "POST",
        content_type: Some(if pick & 4 == 0 { b"application/json" } else { b"application/json; charset=utf-8" }),
        content_encoding: None,
        protocol_version: (pick & 8 == 0).then_some(&b"2026-07-28"[..]),
        mcp_method: (pick & 16 == 0).then_some(&b"tools/call"[..]),
        mcp_name: Some(names[usize::from(pick >> 6)]),
        session_id: (pick & 32 == 0).then_some(&b"s"[..]),
    };
    let _ = classify_body(&head, body, &rules);
    let _ = salvage_id(body);
});
