//! `warden classify CASES.jsonl`: the filter's view of raw HTTP requests, one JSON line each, for
//! the differential harness (`tests/differential/`), which compares it with what real MCP SDK
//! servers execute for the same bytes.
//!
//! The view comes from the same core code the .wasm runs ([`classify_head`] + [`classify_body`]):
//! refused (status, JSON-RPC code), or the era, kind, method, name, target and the arguments in
//! a canonical form that the Python and JavaScript sides of the harness print identically
//! (`tests/differential/canonical.{py,mjs}`), plus the request headers as the filter forwards them.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use base64::Engine as _;
use mcp_warden_core::mcp::classify::{
    classify_body, classify_head, Classified, HeadDecision, HeaderEdit, RequestHead, WireRules,
};
use mcp_warden_core::mcp::model::{Era, MessageKind};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Case {
    id: String,
    #[serde(default = "post")]
    http_method: String,
    headers: Vec<(String, String)>,
    body_b64: String,
}

fn post() -> String {
    "POST".to_owned()
}

pub fn run(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        eprintln!("usage: warden classify CASES.jsonl   (one {{id, http_method, headers, body_b64}} per line; views on stdout)");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("warden classify: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let rules = WireRules {
        modern_enabled: true,
        legacy_enabled: true,
        supported_versions: vec!["2026-07-28".to_owned()],
        forward_cors_preflight: false,
        legacy_batches: false,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let view = line
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str::<Case>(&l).map_err(|e| e.to_string()))
            .and_then(|case| view_of(&case, &rules));
        match view {
            Ok(v) => {
                if writeln!(out, "{v}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("warden classify: {path}:{}: {e}", n + 1);
                return ExitCode::from(2);
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Repeated header lines read as Envoy hands them to the filter: joined with `,`.
fn header<'c>(case: &'c Case, name: &str, joined: &'c mut Option<String>) -> Option<&'c [u8]> {
    let mut values = case.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let first = values.next()?;
    let rest: Vec<&str> = values.collect();
    if rest.is_empty() {
        return Some(first.as_bytes());
    }
    let all = std::iter::once(first).chain(rest).collect::<Vec<_>>().join(",");
    Some(joined.insert(all).as_bytes())
}

fn view_of(case: &Case, rules: &WireRules) -> Result<Value, String> {
    let body = base64::engine::general_purpose::STANDARD.decode(&case.body_b64).map_err(|e| format!("body_b64: {e}"))?;
    let (mut ct, mut ce, mut pv, mut mm, mut mn, mut sid) = (None, None, None, None, None, None);
    let head = RequestHead {
        http_method: &case.http_method,
        content_type: header(case, "content-type", &mut ct),
        content_encoding: header(case, "content-encoding", &mut ce),
        protocol_version: header(case, "mcp-protocol-version", &mut pv),
        mcp_method: header(case, "mcp-method", &mut mm),
        mcp_name: header(case, "mcp-name", &mut mn),
        session_id: header(case, "mcp-session-id", &mut sid),
    };
    let decided = match classify_head(&head, rules) {
        HeadDecision::NeedBody => classify_body(&head, &body, rules),
        HeadDecision::Forward(c) => Ok(*c),
        HeadDecision::Reject(r) => Err(r),
    };
    Ok(match decided {
        Err(r) => json!({
            "id": case.id, "refused": true, "status": r.kind.http_status(), "code": r.kind.jsonrpc_code(), "message": r.message,
        }),
        Ok(c) => forwarded(case, &c, &body),
    })
}

fn forwarded(case: &Case, c: &Classified, body: &[u8]) -> Value {
    let r = &c.request;
    // The filter read every value of the body completely (it refuses what it cannot); the same
    // parser (serde_json) gives the arguments' value here.
    let arguments = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("params")?.get("arguments").cloned());
    let args = Value::String(arguments.as_ref().map_or_else(|| "null".to_owned(), canonical));
    let target = r.target.as_ref().map(|t| json!({"method": t.method.as_str(), "name": t.name, "resolved": t.resolved}));
    json!({
        "id": case.id,
        "refused": false,
        "era": match r.era { Era::Modern => "modern", Era::Legacy => "legacy" },
        "kind": match r.kind {
            MessageKind::Request => "request",
            MessageKind::Notification => "notification",
            MessageKind::Response => "response",
            MessageKind::Bodyless => "bodyless",
        },
        "method": r.method,
        "name": r.name,
        "resolved_name": r.resolved_name,
        "target": target,
        "args": args,
        "headers": forwarded_headers(case, c),
    })
}

/// The request headers as the filter sends them upstream: routing and content-type edits applied.
fn forwarded_headers(case: &Case, c: &Classified) -> Vec<(String, String)> {
    let edits = [("mcp-method", &c.mcp_method), ("mcp-name", &c.mcp_name), ("content-type", &c.content_type)];
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in &case.headers {
        match edits.iter().find(|(name, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, HeaderEdit::Keep)) | None => out.push((k.clone(), v.clone())),
            // Set/Remove replace every line of the header; Set's value is added once below.
            Some(_) => {}
        }
    }
    for (name, edit) in edits {
        if let HeaderEdit::Set(v) = edit {
            out.push((name.to_owned(), v.clone()));
        }
    }
    out
}

/// The harness's canonical JSON: keys sorted by UTF-16 code units, every code unit outside
/// printable ASCII (and `"` `\`) as `\uXXXX`, integers below 2^53 in decimal, other numbers as
/// `n:` + their float64 bits in hex. Byte-identical to `canonical.py` / `canonical.mjs`.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<(&String, &Value)> = map.iter().collect();
            keys.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, item)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

fn write_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() < 1 << 53) {
        out.push_str(&i.to_string());
        return;
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < EXACT_INTEGER_LIMIT {
        // Integral and exact: -0.0 prints as 0 like the other sides.
        out.push_str(&format!("{}", f.abs() as i64 * if f < 0.0 { -1 } else { 1 }));
    } else {
        out.push_str(&format!("n:{:016x}", f.to_bits()));
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for unit in s.encode_utf16() {
        match unit {
            0x20..=0x7e if unit != 0x22 && unit != 0x5c => out.push(char::from(unit as u8)),
            _ => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_matches_the_other_sides() {
        // The same vector as canonical.py's and canonical.mjs's self-checks.
        let v: Value = serde_json::from_str(r#"{"b":[1,2.5,"é😀"],"a":null,"A":-0.0,"c":1e300,"d":9007199254740993}"#).unwrap();
        assert_eq!(
            canonical(&v),
            r#"{"A":0,"a":null,"b":[1,n:4004000000000000,"\u00e9\ud83d\ude00"],"c":n:7e37e43c8800759c,"d":n:4340000000000000}"#
        );
    }
}
