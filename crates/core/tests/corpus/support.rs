//! The fixture corpus (`fixtures/corpus/*.json`, format in `fixtures/README.md`) and the two ways
//! the Rust tests run it: straight through `mcp::classify`, and through `RequestFlow` on a fake
//! `HttpIo` host that feeds the body in pieces.
//!
//! Shared by `tests/corpus.rs`, `tests/flow_fake_host.rs` and `examples/wasm32_corpus.rs` (the
//! last on wasm32-unknown-unknown under Node), so every layer checks the very same expectations.
//! The corpus is embedded with `include_str!`: no filesystem is needed on wasm.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use mcp_warden_core::fake_host::{combined, Delivered, FakeHost};
use mcp_warden_core::flow::RequestFlow;
use mcp_warden_core::mcp::classify::{classify_body, classify_head, HeadDecision, HeaderEdit, RequestHead};
use mcp_warden_core::mcp::model::MessageKind;
use mcp_warden_core::policy::{self, Policy};
use mcp_warden_core::ports::Step;

/// Every corpus file, embedded. `tests/corpus.rs` checks this list against the directory.
pub const FILES: &[(&str, &str)] = &[
    ("hostile.json", include_str!("../../../../fixtures/corpus/hostile.json")),
    ("responses.json", include_str!("../../../../fixtures/corpus/responses.json")),
    ("wire-samples.json", include_str!("../../../../fixtures/corpus/wire-samples.json")),
];

/// Tags the hostile part of the corpus must cover (the task's list); `tests/corpus.rs` fails if
/// one of them has no case.
pub const REQUIRED_TAGS: &[&str] = &[
    "header-body-mismatch",
    "duplicate-keys",
    "duplicate-headers",
    "base64-valid",
    "base64-invalid-padding",
    "base64-invalid-alphabet",
    "base64-uppercase",
    "non-ascii-encoded",
    "non-ascii-raw-header",
    "oversize-declared",
    "oversize-chunked",
    "truncated",
    "wrong-content-type",
    "batch-modern",
    "unsupported-version",
    "missing-meta-key",
    "method-case",
    "legacy-lying",
    "deep-nesting",
    "scalar-body",
    "empty-body",
    "batch-legacy",
    "ambiguous-kind",
    "legacy-unreadable-name",
    "invalid-utf8",
    "charset",
    "http-method",
    "unreadable-target",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Forward {
        era: String,
        kind: String,
        mcp_method: Option<String>,
        mcp_name: Option<String>,
    },
    /// `id: None` means the reply must carry no id at all.
    Reject {
        status: u32,
        code: i64,
        id: Option<Value>,
        data: Option<Value>,
    },
}

#[derive(Debug, Clone)]
pub struct Case {
    pub file: &'static str,
    pub name: String,
    pub tags: Vec<String>,
    pub http_method: String,
    /// Header names lowercased and values trimmed of optional whitespace (as Envoy presents them);
    /// values as raw bytes (UTF-8 of the JSON string).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Sent with `Transfer-Encoding: chunked` in these piece sizes (the rest in a last piece);
    /// `None`: sent with a `Content-Length`.
    pub chunks: Option<Vec<usize>>,
    /// The plugin configuration document for this case (`None`: all defaults).
    pub config: Option<String>,
    pub expect: Expect,
    /// The upstream's answer, for response cases (the request must be forwarded).
    pub response: Option<Response>,
}

/// An upstream answer and what the client must receive of it.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status (200 when the case gives none).
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub chunks: Option<Vec<usize>>,
    pub expect: ExpectResponse,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpectResponse {
    /// Byte for byte what the upstream sent.
    Unchanged,
    /// One JSON body, equal to this as JSON.
    Json(Value),
    /// An event stream whose events' data are these JSON values, in order.
    Sse(Vec<Value>),
}

impl Case {
    pub fn policy(&self) -> Policy {
        match &self.config {
            None => Policy::default(),
            Some(doc) => {
                policy::load(doc.as_bytes()).unwrap_or_else(|e| panic!("{}: config override does not load: {e}", self.name))
            }
        }
    }

    /// A header (lowercase name) as the flow reads it: repeated lines joined with ", ".
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        combined(&self.headers, name)
    }

    pub fn is_chunked(&self) -> bool {
        self.chunks.is_some()
    }
}

fn str_field(v: &Value, key: &str, ctx: &str) -> Result<String, String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("{ctx}: `{key}` must be a string"))
}

fn opt_string(v: &Value, key: &str, ctx: &str) -> Result<Option<String>, String> {
    match v.get(key) {
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(format!("{ctx}: `{key}` must be a string or null (null = absent upstream)")),
    }
}

fn parse_body(req: &Value, ctx: &str) -> Result<Vec<u8>, String> {
    let text = req.get("body");
    let b64 = req.get("body_base64");
    let parts = req.get("body_parts");
    match (text, b64, parts) {
        (None, None, None) => Ok(Vec::new()),
        (Some(Value::String(s)), None, None) => Ok(s.as_bytes().to_vec()),
        (None, Some(Value::String(s)), None) => STANDARD.decode(s).map_err(|e| format!("{ctx}: body_base64: {e}")),
        (None, None, Some(Value::Array(ps))) => {
            let mut out = Vec::new();
            for p in ps {
                let t = str_field(p, "text", ctx)?;
                let n = p.get("repeat").map_or(Some(1), Value::as_u64).ok_or_else(|| format!("{ctx}: repeat"))?;
                for _ in 0..n {
                    out.extend_from_slice(t.as_bytes());
                }
            }
            Ok(out)
        }
        _ => Err(format!("{ctx}: give at most one of body, body_base64, body_parts")),
    }
}

fn parse_expect(v: &Value, ctx: &str) -> Result<Expect, String> {
    if let Some(f) = v.get("forward") {
        return Ok(Expect::Forward {
            era: str_field(f, "era", ctx)?,
            kind: str_field(f, "kind", ctx)?,
            mcp_method: opt_string(f, "mcp_method", ctx)?,
            mcp_name: opt_string(f, "mcp_name", ctx)?,
        });
    }
    if let Some(r) = v.get("reject") {
        let status = r.get("status").and_then(Value::as_u64).ok_or_else(|| format!("{ctx}: reject.status"))?;
        let code = r.get("code").and_then(Value::as_i64).ok_or_else(|| format!("{ctx}: reject.code"))?;
        return Ok(Expect::Reject {
            status: u32::try_from(status).map_err(|e| e.to_string())?,
            code,
            id: r.get("id").cloned(),
            data: r.get("data").cloned(),
        });
    }
    Err(format!("{ctx}: expect must hold `forward` or `reject`"))
}

fn parse_case(file: &'static str, v: &Value) -> Result<Case, String> {
    let name = str_field(v, "name", file)?;
    let ctx = format!("{file}: {name}");
    const KNOWN: &[&str] =
        &["name", "source", "note", "tags", "request", "config", "expect", "replay", "response", "expect_response"];
    if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !KNOWN.contains(&k.as_str()))) {
        return Err(format!("{ctx}: unknown case field `{k}`"));
    }
    let req = v.get("request").ok_or_else(|| format!("{ctx}: request"))?;
    let headers = parse_headers(req, &ctx)?;
    let chunks = parse_chunks(req, &ctx)?;
    let config = match v.get("config") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.to_string()),
        Some(_) => return Err(format!("{ctx}: config must be an object (the whole plugin configuration)")),
    };
    Ok(Case {
        file,
        name,
        tags: v
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        http_method: str_field(req, "method", &ctx)?,
        headers,
        body: parse_body(req, &ctx)?,
        chunks,
        config,
        expect: parse_expect(v.get("expect").ok_or_else(|| format!("{ctx}: expect"))?, &ctx)?,
        response: parse_response(v, &ctx)?,
    })
}

fn parse_headers(req: &Value, ctx: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut headers = Vec::new();
    for h in req.get("headers").and_then(Value::as_array).ok_or_else(|| format!("{ctx}: headers"))? {
        match h.as_array().map(Vec::as_slice) {
            Some([Value::String(n), Value::String(val)]) => {
                let n = n.to_ascii_lowercase();
                if n == "content-length" || n == "transfer-encoding" || n == "host" {
                    return Err(format!("{ctx}: `{n}` is set by the runners, not the corpus"));
                }
                // As Envoy's codecs present it: optional whitespace around a value is not part
                // of it (HTTP/1 trims it; HTTP/2 forbids it).
                headers.push((n, val.trim_matches([' ', '\t']).as_bytes().to_vec()));
            }
            _ => return Err(format!("{ctx}: each header is a [name, value] pair of strings")),
        }
    }
    Ok(headers)
}

fn parse_chunks(req: &Value, ctx: &str) -> Result<Option<Vec<usize>>, String> {
    match req.get("chunks") {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(
            a.iter()
                .map(|n| n.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{ctx}: chunks are positive sizes"))?,
        )),
        Some(_) => Err(format!("{ctx}: chunks must be an array")),
    }
}

fn parse_response(v: &Value, ctx: &str) -> Result<Option<Response>, String> {
    let (resp, exp) = match (v.get("response"), v.get("expect_response")) {
        (None, None) => return Ok(None),
        (Some(r), Some(e)) => (r, e),
        _ => return Err(format!("{ctx}: `response` and `expect_response` go together")),
    };
    if !matches!(parse_expect(v.get("expect").unwrap_or(&Value::Null), ctx), Ok(Expect::Forward { .. })) {
        return Err(format!("{ctx}: a response case's request must be forwarded"));
    }
    let expect = match (exp.get("unchanged"), exp.get("json"), exp.get("sse")) {
        (Some(Value::Bool(true)), None, None) => ExpectResponse::Unchanged,
        (None, Some(j), None) => ExpectResponse::Json(j.clone()),
        (None, None, Some(Value::Array(events))) => ExpectResponse::Sse(events.clone()),
        _ => return Err(format!("{ctx}: expect_response is one of unchanged: true, json, sse: [...]")),
    };
    let status = match resp.get("status") {
        None => 200,
        Some(v) => v.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(|| format!("{ctx}: response.status"))?,
    };
    Ok(Some(Response {
        status,
        headers: parse_headers(resp, ctx)?,
        body: parse_body(resp, ctx)?,
        chunks: parse_chunks(resp, ctx)?,
        expect,
    }))
}

/// Every case of every embedded file, in file order.
pub fn load() -> Vec<Case> {
    let mut out = Vec::new();
    for (file, text) in FILES {
        let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let cases = doc.get("cases").and_then(Value::as_array).unwrap_or_else(|| panic!("{file}: no `cases` array"));
        for c in cases {
            out.push(parse_case(file, c).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// What a layer produced, and the one check all layers share.

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The request went upstream with these routing headers (None = absent).
    Forward {
        era: String,
        kind: String,
        mcp_method: Option<Vec<u8>>,
        mcp_name: Option<Vec<u8>>,
    },
    Reply {
        status: u32,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

pub fn kind_str(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Request => "request",
        MessageKind::Notification => "notification",
        MessageKind::Response => "response",
        MessageKind::Bodyless => "bodyless",
    }
}

fn show(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "<absent>".to_owned(),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

/// Compares an outcome with the case's expectation; the error names expected and received.
pub fn check(case: &Case, got: &Outcome) -> Result<(), String> {
    match (&case.expect, got) {
        (
            Expect::Forward { era, kind, mcp_method, mcp_name },
            Outcome::Forward { era: g_era, kind: g_kind, mcp_method: g_m, mcp_name: g_n },
        ) => {
            let want_m = mcp_method.as_ref().map(|s| s.as_bytes().to_vec());
            let want_n = mcp_name.as_ref().map(|s| s.as_bytes().to_vec());
            let mut errs = Vec::new();
            if era != g_era || kind != g_kind {
                errs.push(format!("era/kind: expected {era}/{kind}, got {g_era}/{g_kind}"));
            }
            if &want_m != g_m {
                errs.push(format!("upstream mcp-method: expected {}, got {}", show(&want_m), show(g_m)));
            }
            if &want_n != g_n {
                errs.push(format!("upstream mcp-name: expected {}, got {}", show(&want_n), show(g_n)));
            }
            if errs.is_empty() {
                Ok(())
            } else {
                Err(errs.join("; "))
            }
        }
        (Expect::Reject { status, code, id, data }, Outcome::Reply { status: g_status, content_type, body }) => {
            let mut errs = Vec::new();
            if status != g_status {
                errs.push(format!("status: expected {status}, got {g_status}"));
            }
            if content_type.as_deref() != Some("application/json") {
                errs.push(format!("content-type: expected application/json, got {content_type:?}"));
            }
            match serde_json::from_slice::<Value>(body) {
                Err(e) => errs.push(format!("reply body is not JSON ({e}): {:?}", String::from_utf8_lossy(body))),
                Ok(v) => {
                    if v.get("jsonrpc") != Some(&Value::from("2.0")) {
                        errs.push("reply lacks jsonrpc 2.0".to_owned());
                    }
                    let g_code = v.pointer("/error/code").and_then(Value::as_i64);
                    if g_code != Some(*code) {
                        errs.push(format!("code: expected {code}, got {g_code:?}"));
                    }
                    if v.get("id") != id.as_ref() {
                        errs.push(format!("id: expected {id:?}, got {:?}", v.get("id")));
                    }
                    if let Some(d) = data {
                        if v.pointer("/error/data") != Some(d) {
                            errs.push(format!("error.data: expected {d}, got {:?}", v.pointer("/error/data")));
                        }
                    }
                    if v.pointer("/error/message").and_then(Value::as_str).is_none_or(str::is_empty) {
                        errs.push("error.message missing".to_owned());
                    }
                }
            }
            if errs.is_empty() {
                Ok(())
            } else {
                Err(format!("{} (body {})", errs.join("; "), String::from_utf8_lossy(body)))
            }
        }
        (Expect::Forward { .. }, Outcome::Reply { status, body, .. }) => {
            Err(format!("expected forward, got local reply {status} {}", String::from_utf8_lossy(body)))
        }
        (Expect::Reject { status, code, .. }, Outcome::Forward { mcp_method, mcp_name, .. }) => Err(format!(
            "expected reject {status}/{code}, but it was forwarded (mcp-method {}, mcp-name {})",
            show(mcp_method),
            show(mcp_name)
        )),
    }
}

/// Runs every case through `run`, collects every failure, and fails once listing them all.
pub fn run_all(layer: &str, cases: &[Case], mut run: impl FnMut(&Case) -> Result<(), String>) -> usize {
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases {
        ran += 1;
        if let Err(e) = run(c) {
            failures.push(format!("  [{}] {}: {e}", c.file, c.name));
        }
    }
    assert!(failures.is_empty(), "{layer}: {} of {ran} corpus cases failed:\n{}", failures.len(), failures.join("\n"));
    ran
}

// ---------------------------------------------------------------------------------------------
// Layer 1: `mcp::classify` directly.

fn apply_edit(current: Option<&[u8]>, edit: &HeaderEdit) -> Option<Vec<u8>> {
    match edit {
        HeaderEdit::Keep => current.map(<[u8]>::to_vec),
        HeaderEdit::Set(v) => Some(v.as_bytes().to_vec()),
        HeaderEdit::Remove => None,
    }
}

/// The body cap lives in the flow, not in classification: such cases return `None` here (the
/// flow layers check them).
pub fn needs_flow(case: &Case) -> bool {
    matches!(case.expect, Expect::Reject { status: 413, .. })
}

pub fn run_classify(case: &Case) -> Result<Outcome, String> {
    let policy = case.policy();
    let (ct, ce, pv, mm, mn, sid) = (
        case.header("content-type"),
        case.header("content-encoding"),
        case.header("mcp-protocol-version"),
        case.header("mcp-method"),
        case.header("mcp-name"),
        case.header("mcp-session-id"),
    );
    let head = RequestHead {
        http_method: &case.http_method,
        content_type: ct.as_deref(),
        content_encoding: ce.as_deref(),
        protocol_version: pv.as_deref(),
        mcp_method: mm.as_deref(),
        mcp_name: mn.as_deref(),
        session_id: sid.as_deref(),
    };
    let classified = match classify_head(&head, &policy.wire) {
        HeadDecision::Forward(c) => Ok(*c),
        HeadDecision::Reject(r) => Err(r),
        HeadDecision::NeedBody => classify_body(&head, &case.body, &policy.wire),
    };
    Ok(match classified {
        Ok(c) => Outcome::Forward {
            era: c.request.era.as_str().to_owned(),
            kind: kind_str(c.request.kind).to_owned(),
            mcp_method: apply_edit(head.mcp_method, &c.mcp_method),
            mcp_name: apply_edit(head.mcp_name, &c.mcp_name),
        },
        Err(r) => Outcome::Reply {
            status: r.kind.http_status(),
            content_type: Some("application/json".to_owned()),
            body: r.body().into_bytes(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Layer 2: `RequestFlow` on a fake host.

/// How a body is cut into the pieces the host hands the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pieces {
    /// Fixed-size pieces (1 byte, 7 bytes…).
    Every(usize),
    /// One piece.
    Whole,
    /// The case's own `chunks` sizes, the remainder last.
    AsCase,
}

fn cut(body: &[u8], pieces: Pieces, own: Option<&Vec<usize>>) -> Vec<Vec<u8>> {
    let sizes: Vec<usize> = match pieces {
        Pieces::Whole => vec![body.len()],
        Pieces::Every(n) => std::iter::repeat_n(n.max(1), body.len().div_ceil(n.max(1))).collect(),
        Pieces::AsCase => own.cloned().unwrap_or_default(),
    };
    let mut out = Vec::new();
    let mut at = 0;
    for s in sizes {
        if at >= body.len() {
            break;
        }
        let end = (at + s).min(body.len());
        out.push(body[at..end].to_vec());
        at = end;
    }
    if at < body.len() {
        out.push(body[at..].to_vec());
    }
    out
}

/// Drives one case through `RequestFlow` on the fake host the way Envoy does: headers
/// (end_of_stream when there is no body), then the body piece by piece with the buffered size so
/// far; for a response case, then the upstream's answer cut the same way (see
/// [`FakeHost::respond`]), returning what the client received.
pub fn run_flow(case: &Case, pieces: Pieces) -> Result<(Outcome, FakeHost, Option<Delivered>), String> {
    let policy = Rc::new(case.policy());
    let mut host = FakeHost::default();
    host.http.headers.push((":method".to_owned(), case.http_method.as_bytes().to_vec()));
    host.http.headers.push((":path".to_owned(), b"/mcp".to_vec()));
    host.http.headers.extend(case.headers.iter().cloned());
    let has_body_phase = case.is_chunked() || !case.body.is_empty();
    if !case.is_chunked() && case.http_method == "POST" {
        host.http.headers.push(("content-length".to_owned(), case.body.len().to_string().into_bytes()));
    }
    let mut flow = RequestFlow::new(policy);
    let mut step = flow.on_request_headers(&mut host.ports(), !has_body_phase);
    if step == Step::Buffer {
        let parts = cut(&case.body, pieces, case.chunks.as_ref());
        if parts.is_empty() {
            step = flow.on_request_body(&mut host.ports(), 0, true);
        }
        let n = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            host.http.body.extend_from_slice(&p);
            let buffered = host.http.body.len();
            step = flow.on_request_body(&mut host.ports(), buffered, i + 1 == n);
            if step != Step::Buffer {
                break;
            }
        }
        if step == Step::Buffer {
            return Err("the flow still buffers after end_of_stream".to_owned());
        }
    }
    if !host.http.misuse.is_empty() {
        return Err(format!("host misuse: {:?}", host.http.misuse));
    }
    let outcome = match (step, &host.http.reply) {
        (Step::Answered, Some((status, hdrs, body))) => Outcome::Reply {
            status: *status,
            content_type: hdrs.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.clone()),
            body: body.clone(),
        },
        (Step::Continue, None) => {
            let req = flow.request().ok_or("forwarded, but the flow kept no classified request")?;
            Outcome::Forward {
                era: req.era.as_str().to_owned(),
                kind: kind_str(req.kind).to_owned(),
                mcp_method: single_line(&host, "mcp-method")?,
                mcp_name: single_line(&host, "mcp-name")?,
            }
        }
        (s, r) => return Err(format!("inconsistent end state: step {s:?}, local reply {:?}", r.as_ref().map(|r| r.0))),
    };
    let delivered = match (&case.response, &outcome) {
        (Some(resp), Outcome::Forward { .. }) => {
            let mut headers: Vec<(&str, &str)> = Vec::new();
            let texts: Vec<(String, String)> =
                resp.headers.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect();
            let length = resp.body.len().to_string();
            let status = resp.status.to_string();
            headers.push((":status", &status));
            headers.extend(texts.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            headers.push(("content-length", &length));
            let parts = cut(&resp.body, pieces, resp.chunks.as_ref());
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let d = host.respond(&mut flow, &headers, &parts);
            if !host.http.misuse.is_empty() {
                return Err(format!("host misuse on the response: {:?}", host.http.misuse));
            }
            Some(d)
        }
        _ => None,
    };
    Ok((outcome, host, delivered))
}

/// Compares what the client received with a response case's expectation.
pub fn check_response(resp: &Response, got: &Delivered) -> Result<(), String> {
    let shown = || String::from_utf8_lossy(&got.body).into_owned();
    match &resp.expect {
        ExpectResponse::Unchanged if got.body == resp.body => Ok(()),
        ExpectResponse::Unchanged => Err(format!("the response was altered: {}", shown())),
        ExpectResponse::Json(want) => match serde_json::from_slice::<Value>(&got.body) {
            Ok(v) if &v == want => Ok(()),
            Ok(v) => Err(format!("client received {v}, expected {want}")),
            Err(e) => Err(format!("client received no JSON ({e}): {}", shown())),
        },
        ExpectResponse::Sse(want) => {
            let events = sse_data(&got.body).map_err(|e| format!("{e}: {}", shown()))?;
            if &events == want {
                Ok(())
            } else {
                Err(format!("client received events {events:?}, expected {want:?}"))
            }
        }
    }
}

/// The data of every event in an SSE body, each parsed as JSON (an independent, line-based
/// reading: `data:` lines joined with newlines, events ended by a blank line); an event with no
/// data (a resumability priming event) carries no message and is not listed.
fn sse_data(body: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("SSE body is not UTF-8: {e}"))?;
    let mut out = Vec::new();
    let mut data: Option<String> = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            if let Some(d) = data.take().filter(|d| !d.trim().is_empty()) {
                out.push(serde_json::from_str(&d).map_err(|e| format!("event data is not JSON ({e}): {d}"))?);
            }
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match data.as_mut() {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_owned()),
            }
        }
    }
    if data.is_some() {
        return Err("the stream ends inside an event".to_owned());
    }
    Ok(out)
}

/// The one line of a routing header the upstream receives; two lines are a failure in themselves.
fn single_line(host: &FakeHost, name: &str) -> Result<Option<Vec<u8>>, String> {
    let mut lines = host.http.lines(name);
    if lines.len() > 1 {
        return Err(format!("the upstream would receive {} `{name}` lines: {lines:?}", lines.len()));
    }
    Ok(lines.pop())
}

/// The piece strategies a case runs under: 1 byte, 7 bytes and whole for every body; the case's
/// own chunk sizes when it has them.
pub fn strategies(case: &Case) -> Vec<Pieces> {
    let mut s = vec![Pieces::Every(1), Pieces::Every(7), Pieces::Whole];
    if case.is_chunked() || case.response.as_ref().is_some_and(|r| r.chunks.is_some()) {
        s.push(Pieces::AsCase);
    }
    s
}

/// The flow check for one case under every piece strategy, with the body seen upstream intact.
pub fn check_flow(case: &Case) -> Result<(), String> {
    for p in strategies(case) {
        let (outcome, host, delivered) = run_flow(case, p).map_err(|e| format!("{p:?}: {e}"))?;
        check(case, &outcome).map_err(|e| format!("{p:?}: {e}"))?;
        if matches!(outcome, Outcome::Forward { .. }) && host.http.body != case.body {
            return Err(format!("{p:?}: the body was altered on the way upstream"));
        }
        if let Some(resp) = &case.response {
            let got = delivered.ok_or_else(|| format!("{p:?}: the response was never delivered"))?;
            check_response(resp, &got).map_err(|e| format!("{p:?}: response: {e}"))?;
        }
    }
    Ok(())
}

/// The classify check; cases whose answer belongs to the flow (body cap) are skipped here.
pub fn check_classify(case: &Case) -> Result<(), String> {
    if needs_flow(case) {
        return Ok(());
    }
    check(case, &run_classify(case)?)
}
