//! Era classification (spec §12.3) and header/body validation: the rules that make the MCP
//! routing headers trustworthy for everything after the filter.
//!
//! Modern (2026-07-28) requests must carry headers equal to the body; a mismatch is the client's
//! fault and is rejected before the upstream sees anything. Legacy (2025-11-25) requests carry no
//! such headers, so the filter derives them from the body and overwrites whatever the client sent.
//! Either way, after this module `Mcp-Method` / `Mcp-Name` say what the body says.

use std::borrow::Cow;

use super::error::{push_json_string, RejectKind, Rejection};
use super::headers::{decode_value, encode_value};
use super::jsonrpc::Params;
use super::jsonrpc::{parse_body_str, salvage_id, Body, Envelope, IdKind, ParseError, StrField};
use super::method::Method;
use super::model::{name_source, Era, McpRequest, MessageKind, NameSource, Target};

/// The first revision with stateless semantics and validated routing headers.
pub const FIRST_MODERN_VERSION: &str = "2026-07-28";

/// The era switches and version list classification needs (a slice of the compiled policy).
#[derive(Debug, Clone)]
pub struct WireRules {
    pub modern_enabled: bool,
    pub legacy_enabled: bool,
    /// Modern protocol versions this gateway lets through (`-32022` otherwise).
    pub supported_versions: Vec<String>,
    /// `OPTIONS` (a CORS preflight) is forwarded instead of answered 405.
    pub forward_cors_preflight: bool,
    /// Legacy JSON-RPC batches are decided element by element instead of refused.
    pub legacy_batches: bool,
}

/// The parts of the HTTP request head that classification reads. Header values are raw bytes as
/// received: they may be anything a client sends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHead<'a> {
    pub http_method: &'a str,
    pub content_type: Option<&'a [u8]>,
    /// `Content-Encoding`: anything but `identity` is refused (a body the upstream inflates is
    /// not the body the filter read; the TS SDK 1.x server inflates gzip, deflate and br).
    pub content_encoding: Option<&'a [u8]>,
    pub protocol_version: Option<&'a [u8]>,
    pub mcp_method: Option<&'a [u8]>,
    pub mcp_name: Option<&'a [u8]>,
    pub session_id: Option<&'a [u8]>,
}

/// What to do with one routing header on the way upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Keep,
    Set(String),
    Remove,
}

/// A request that may go upstream, and the header edits that make its routing headers true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub request: McpRequest,
    pub mcp_method: HeaderEdit,
    pub mcp_name: HeaderEdit,
    /// `Content-Type` as the upstream must read it: the canonical `application/json`.
    pub content_type: HeaderEdit,
    /// A legacy batch (`eras.legacy_batches`): every element, in order (`request` is the first).
    /// Empty for a single message.
    pub batch: Vec<McpRequest>,
}

/// The media type every forwarded POST carries (UTF-8 is JSON's only encoding, RFC 8259 §8.1).
pub const CANONICAL_CONTENT_TYPE: &str = "application/json";

/// The decision on the request head alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadDecision {
    /// A POST: the body decides.
    NeedBody,
    /// Legacy GET (standalone SSE) / DELETE (end session) or another body-less method: forward,
    /// with any client-sent routing headers removed (they would be unvalidated).
    Forward(Box<Classified>),
    Reject(Rejection),
}

pub fn classify_head(head: &RequestHead<'_>, rules: &WireRules) -> HeadDecision {
    let allow = if rules.legacy_enabled { "POST, GET, DELETE" } else { "POST" };
    let bodyless = || {
        let mut request = McpRequest::bodyless(head.session_id.map(|s| String::from_utf8_lossy(s).into_owned()));
        request.handles.standalone_stream = head.http_method == "GET";
        HeadDecision::Forward(Box::new(Classified {
            request,
            mcp_method: remove_if_present(head.mcp_method),
            mcp_name: remove_if_present(head.mcp_name),
            content_type: HeaderEdit::Keep,
            batch: Vec::new(),
        }))
    };
    match head.http_method {
        "POST" => HeadDecision::NeedBody,
        "GET" | "DELETE" if rules.legacy_enabled => bodyless(),
        "GET" | "DELETE" => HeadDecision::Reject(
            Rejection::new(
                RejectKind::MethodNotAllowed,
                format!("{} is not served: this endpoint speaks MCP {FIRST_MODERN_VERSION} (POST only)", head.http_method),
            )
            .with_allow(allow),
        ),
        "OPTIONS" if rules.forward_cors_preflight => bodyless(),
        other => {
            let shown_method: String = other.chars().take(32).collect();
            HeadDecision::Reject(
                Rejection::new(
                    RejectKind::MethodNotAllowed,
                    format!("HTTP method {shown_method} is not served on the MCP endpoint (allowed: {allow})"),
                )
                .with_allow(allow),
            )
        }
    }
}

/// A header that matched its body value is rewritten to the canonical spelling (no padding
/// whitespace; the Base64 sentinel only where the spec requires it), so that an exact-match Envoy
/// route or RBAC rule downstream sees the same bytes however the client encoded the value.
fn canonical(raw: Option<&[u8]>, value: &str) -> HeaderEdit {
    let want = encode_value(value);
    if raw == Some(want.as_bytes()) {
        HeaderEdit::Keep
    } else {
        HeaderEdit::Set(want.into_owned())
    }
}

fn remove_if_present(h: Option<&[u8]>) -> HeaderEdit {
    if h.is_some() {
        HeaderEdit::Remove
    } else {
        HeaderEdit::Keep
    }
}

/// How a request's `Content-Type` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/json`, any case, parameters allowed; a `charset` must name UTF-8.
    Json,
    /// JSON in another character set: an upstream would decode other characters than we read.
    OtherCharset,
    NotJson,
}

fn media_type(ct: Option<&[u8]>) -> MediaType {
    let Some(ct) = ct else { return MediaType::NotJson };
    let mut parts = ct.split(|b| *b == b';');
    let essence = parts.next().unwrap_or_default().trim_ascii();
    if !essence.eq_ignore_ascii_case(b"application/json") {
        return MediaType::NotJson;
    }
    for param in parts {
        let mut kv = param.splitn(2, |b| *b == b'=');
        let name = kv.next().unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(b"charset") {
            continue;
        }
        let value = kv.next().unwrap_or_default().trim_ascii();
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
        if !value.eq_ignore_ascii_case(b"utf-8") {
            return MediaType::OtherCharset;
        }
    }
    MediaType::Json
}

/// Classifies and validates a complete POST body.
pub fn classify_body(head: &RequestHead<'_>, body: &[u8], rules: &WireRules) -> Result<Classified, Rejection> {
    // The media type first: a body declared in another charset or encoding is refused as such
    // (415), whatever its bytes are.
    let media = media_type(head.content_type);
    let encoded = head.content_encoding.is_some_and(|e| !e.trim_ascii().eq_ignore_ascii_case(b"identity"));
    if media != MediaType::Json || encoded {
        let message = match media {
            _ if encoded => "Unsupported Media Type: MCP request bodies are sent without Content-Encoding",
            MediaType::OtherCharset => "Unsupported Media Type: MCP requests are UTF-8 JSON (charset=utf-8 or none)",
            _ => "Unsupported Media Type: MCP requests must be Content-Type: application/json",
        };
        return Err(Rejection::new(RejectKind::UnsupportedMediaType, message).with_id(salvage_id(body).as_deref()));
    }
    // Every byte, not only the fields read here: a skipped string with invalid UTF-8 is decoded
    // differently (or refused) by each SDK's parser, so the filter would not know what runs.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return Err(Rejection::new(
                RejectKind::ParseError,
                format!("Parse error: the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
            )
            .with_id(salvage_id(body).as_deref()));
        }
    };
    let parsed = parse_body_str(text).map_err(|e| match e {
        ParseError::NotJson(_) => {
            Rejection::new(RejectKind::ParseError, format!("Parse error: {e}")).with_id(salvage_id(body).as_deref())
        }
        ParseError::NotAnObject | ParseError::BadBatch => {
            Rejection::new(RejectKind::InvalidRequest, format!("Invalid Request: {e}"))
        }
    })?;
    let content_type = match head.content_type {
        Some(ct) if ct == CANONICAL_CONTENT_TYPE.as_bytes() => HeaderEdit::Keep,
        _ => HeaderEdit::Set(CANONICAL_CONTENT_TYPE.to_owned()),
    };
    let mut c = match parsed {
        Body::Batch(items) if rules.legacy_batches => classify_batch(head, &items, rules)?,
        Body::Batch(items) => return Err(batch_refused(&items)),
        Body::Single(env) => {
            if let Some(field) = env.unreadable() {
                let id = env.id.filter(|_| field != "id").map(|i| i.json());
                return Err(unreadable_value(field).with_id(id));
            }
            let c = if env.claims_modern() { classify_modern(head, &env, rules)? } else { classify_legacy(head, &env, rules)? };
            with_target(c, env.params(), env.id.map(|i| i.json()))?
        }
    };
    c.content_type = content_type;
    Ok(c)
}

/// What a request reaches besides its own name (see [`Target`]); `Err` names the field policy
/// needs and cannot read.
fn target_of(op: Option<Method>, params: Option<&Params<'_>>) -> Result<Option<Target>, &'static str> {
    match op {
        Some(Method::CompletionComplete) => {
            let r = params.and_then(|p| p.reference.as_ref()).ok_or("params.ref must be an object")?;
            match r.kind.as_ref().and_then(StrField::as_str) {
                Some("ref/prompt") => {
                    let name = r.name.as_ref().and_then(StrField::as_str).ok_or("params.ref.name must be a string")?;
                    Ok(Some(Target::new(Method::PromptsGet, name)))
                }
                Some("ref/resource") => {
                    let uri = r.uri.as_ref().and_then(StrField::as_str).ok_or("params.ref.uri must be a string")?;
                    Ok(Some(Target::new(Method::ResourcesRead, uri)))
                }
                _ => Err("params.ref.type must be \"ref/prompt\" or \"ref/resource\""),
            }
        }
        // Without a readable URI no server can subscribe to anything: the server answers it
        // (2026-07-28 servers answer these removed methods 404 method-not-found, SEP-2575).
        Some(Method::ResourcesSubscribe | Method::ResourcesUnsubscribe) => {
            Ok(params.and_then(|p| p.uri.as_ref()).and_then(StrField::as_str).map(|uri| Target::new(Method::ResourcesRead, uri)))
        }
        _ => Ok(None),
    }
}

/// Fills the request's [`Target`]; a request whose target cannot be read is refused (-32602):
/// policy cannot decide on what it cannot read.
fn with_target(mut c: Classified, params: Option<&Params<'_>>, id: Option<&str>) -> Result<Classified, Rejection> {
    if c.request.kind != MessageKind::Request {
        return Ok(c);
    }
    c.request.target = target_of(c.request.op, params)
        .map_err(|m| Rejection::new(RejectKind::InvalidParams, format!("Invalid params: {m}")).with_id(id))?;
    Ok(c)
}

/// A legacy batch an operator opted into: every element is classified as a message of its own
/// (and its target read) or the whole batch is refused, id-less. No element may claim 2026-07-28
/// or be `initialize`. The routing headers cannot name several messages: they are removed.
fn classify_batch(head: &RequestHead<'_>, items: &[Envelope<'_>], rules: &WireRules) -> Result<Classified, Rejection> {
    let element = |n: usize, r: Rejection| Rejection::new(r.kind, format!("batch element {n}: {}", r.message));
    let mut batch = Vec::with_capacity(items.len());
    for (n, env) in items.iter().enumerate() {
        if env.claims_modern() {
            return Err(batch_refused(items));
        }
        if let Some(field) = env.unreadable() {
            return Err(element(n, unreadable_value(field)));
        }
        let c = classify_legacy(head, env, rules).and_then(|c| with_target(c, env.params(), None)).map_err(|r| element(n, r))?;
        if c.request.op == Some(Method::Initialize) {
            return Err(element(
                n,
                Rejection::new(RejectKind::InvalidRequest, "Invalid Request: initialize cannot travel in a batch"),
            ));
        }
        batch.push(c.request);
    }
    let first =
        batch.first().cloned().ok_or_else(|| Rejection::new(RejectKind::InvalidRequest, "Invalid Request: empty batch"))?;
    Ok(Classified {
        request: first,
        mcp_method: remove_if_present(head.mcp_method),
        mcp_name: remove_if_present(head.mcp_name),
        content_type: HeaderEdit::Keep,
        batch,
    })
}

/// JSON-RPC batches are in neither 2025-11-25 nor 2026-07-28: servers that still accept them run
/// every element, so a batch would carry calls past per-message policy. Refused, without an id
/// (a batch has none of its own).
fn batch_refused(items: &[Envelope<'_>]) -> Rejection {
    let message = if items.iter().any(Envelope::claims_modern) {
        "Invalid Request: a 2026-07-28 message cannot travel in a batch"
    } else {
        "Invalid Request: JSON-RPC batches are not part of MCP 2025-11-25 or 2026-07-28"
    };
    Rejection::new(RejectKind::InvalidRequest, message)
}

fn base_request(era: Era, kind: MessageKind, env: Option<&Envelope<'_>>, head: &RequestHead<'_>) -> McpRequest {
    let mut r = McpRequest::bodyless(head.session_id.map(|s| String::from_utf8_lossy(s).into_owned()));
    r.era = era;
    r.kind = kind;
    if let Some(env) = env {
        r.id = env.id.map(|i| i.json().to_owned());
        r.method = env.method_str().map(str::to_owned);
        r.op = env.method_str().map(Method::parse);
        if let Some(p) = env.params() {
            r.is_mrtr_retry = p.has_request_state || p.has_input_responses;
            let info = p.meta().and_then(|m| m.client_info.as_ref()).or(p.client_info.as_ref());
            if let Some(info) = info {
                r.client_name = info.name.as_ref().and_then(StrField::as_str).map(str::to_owned);
                r.client_version = info.version.as_ref().and_then(StrField::as_str).map(str::to_owned);
            }
            if let Some(m) = p.meta() {
                r.traceparent = m.traceparent.as_ref().and_then(StrField::as_str).map(str::to_owned);
                r.tracestate = m.tracestate.as_ref().and_then(StrField::as_str).map(str::to_owned);
                r.baggage = m.baggage.as_ref().and_then(StrField::as_str).map(str::to_owned);
                r.handles.tool_hash = m.tool_hash.as_ref().and_then(StrField::as_str).map(str::to_owned);
                r.handles.may_create_task = m.client_capabilities.is_some_and(|c| declares_tasks(c.get()));
            }
            r.handles.may_create_task |= p.has_task;
            let text = |f: &Option<StrField<'_>>| f.as_ref().and_then(StrField::as_str).map(str::to_owned);
            r.handles.task_id = text(&p.task_id);
            r.handles.cursor = text(&p.cursor);
            r.handles.listen_task_ids = p.listen_task_ids.0.iter().filter_map(StrField::as_str).map(str::to_owned).collect();
        }
    }
    r
}

/// The key that declares the tasks extension among the client's capabilities.
const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Whether raw `clientCapabilities` declare the tasks extension, as a server reads them: an
/// escaped spelling of the key (`io.modelcontextprotocol\/tasks`, `task\u0073`) is the same key
/// to every JSON parser. Anywhere in the capabilities counts (binding a task that could not have
/// been created costs nothing; missing one leaves it unbound), and capabilities that do not parse
/// count as declaring it.
fn declares_tasks(raw: &str) -> bool {
    if !raw.contains('\\') {
        // No escape anywhere: the key can only be spelled plainly.
        return raw.contains("\"io.modelcontextprotocol/tasks\"");
    }
    serde_json::from_str::<serde_json::Value>(raw).map_or(true, |v| has_key(&v, TASKS_EXTENSION))
}

/// `key` is a key of some object in `v` (depth is bounded by the parser's recursion limit).
fn has_key(v: &serde_json::Value, key: &str) -> bool {
    match v {
        serde_json::Value::Object(m) => m.iter().any(|(k, inner)| k == key || has_key(inner, key)),
        serde_json::Value::Array(a) => a.iter().any(|inner| has_key(inner, key)),
        _ => false,
    }
}

/// A value kept raw that the filter cannot read back ([`Envelope::unreadable`]).
fn unreadable_value(field: &str) -> Rejection {
    Rejection::new(
        RejectKind::ParseError,
        format!("Parse error: {field} holds a value JSON parsers read differently (a lone surrogate escape, a number beyond float64, a \"__proto__\" key)"),
    )
}

fn duplicate(key: &str, id: Option<&str>) -> Rejection {
    Rejection::new(
        RejectKind::InvalidRequest,
        format!("Invalid Request: duplicate JSON key \"{key}\" (ambiguous between parsers)"),
    )
    .with_id(id)
}

fn legacy_disabled(id: Option<&str>) -> Rejection {
    Rejection::new(
        RejectKind::EraDisabled,
        format!("Invalid Request: this endpoint serves only MCP {FIRST_MODERN_VERSION} and later"),
    )
    .with_id(id)
}

/// `-32022` with the `data.supported` / `data.requested` the spec requires.
fn unsupported_version(rules: &WireRules, requested: &str, id: Option<&str>) -> Rejection {
    let mut data = String::from("{\"supported\":[");
    for (i, v) in rules.supported_versions.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_json_string(&mut data, v);
    }
    data.push_str("],\"requested\":");
    push_json_string(&mut data, requested);
    data.push('}');
    Rejection::new(RejectKind::UnsupportedVersion, "Unsupported protocol version").with_id(id).with_data(data)
}

fn mismatch(id: Option<&str>, msg: String) -> Rejection {
    Rejection::new(RejectKind::HeaderMismatch, format!("Header mismatch: {msg}")).with_id(id)
}

/// Quotes a value for an error message without letting it grow unbounded.
fn shown(v: &str) -> String {
    let mut s = String::new();
    let cut: String = v.chars().take(128).collect();
    push_json_string(&mut s, &cut);
    if cut.len() < v.len() {
        s.push('…');
    }
    s
}

fn header_text(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok().map(|s| s.trim_matches([' ', '\t']))
}

/// A `YYYY-MM-DD` version at or after 2026-07-28 (string order is date order).
fn is_modern_version(v: &str) -> bool {
    v.len() == 10 && v >= FIRST_MODERN_VERSION
}

fn classify_modern(head: &RequestHead<'_>, env: &Envelope<'_>, rules: &WireRules) -> Result<Classified, Rejection> {
    let id = env.id.map(|i| i.json());
    if !rules.modern_enabled {
        // Not a recognised modern error: a dual-era client falls back to `initialize`.
        return Err(Rejection::new(
            RejectKind::EraDisabled,
            format!("Invalid Request: MCP {FIRST_MODERN_VERSION} requests are not served here"),
        )
        .with_id(id));
    }
    if let Some(key) = env.duplicate_key() {
        return Err(duplicate(key, id));
    }
    let invalid = |m: &str| Rejection::new(RejectKind::InvalidRequest, format!("Invalid Request: {m}")).with_id(id);
    if env.jsonrpc.as_ref().and_then(StrField::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    if env.has_result || env.has_error {
        return Err(invalid("clients must not post JSON-RPC responses"));
    }
    let Some(method) = env.method_str() else {
        return Err(invalid("\"method\" must be a string"));
    };
    let kind = match env.id {
        None => MessageKind::Notification,
        Some(i) if i.kind == IdKind::Invalid => return Err(invalid("\"id\" must be a string or an integer")),
        Some(_) => MessageKind::Request,
    };
    // `claims_modern` guarantees params and _meta are objects.
    let params = env.params().ok_or_else(|| invalid("\"params\" must be an object"))?;
    let meta = params.meta().ok_or_else(|| invalid("\"params._meta\" must be an object"))?;
    let invalid_params = |m: String| Rejection::new(RejectKind::InvalidParams, format!("Invalid params: {m}")).with_id(id);

    let Some(version) = meta.protocol_version.as_ref().and_then(StrField::as_str) else {
        return Err(invalid_params("_meta \"io.modelcontextprotocol/protocolVersion\" must be a string".to_owned()));
    };
    if kind == MessageKind::Request && meta.client_capabilities.is_none() {
        return Err(invalid_params("missing required _meta key \"io.modelcontextprotocol/clientCapabilities\"".to_owned()));
    }

    // MCP-Protocol-Version must mirror _meta (required on every POST request).
    match head.protocol_version.map(header_text) {
        None if kind == MessageKind::Notification => {}
        None => return Err(mismatch(id, "missing required MCP-Protocol-Version header".to_owned())),
        Some(None) => return Err(mismatch(id, "MCP-Protocol-Version header is not valid text".to_owned())),
        Some(Some(h)) if h != version => {
            return Err(mismatch(
                id,
                format!("MCP-Protocol-Version header {} does not match body value {}", shown(h), shown(version)),
            ))
        }
        Some(Some(_)) => {}
    }
    if !rules.supported_versions.iter().any(|v| v == version) {
        return Err(unsupported_version(rules, version, id));
    }

    // Mcp-Method must mirror `method` (required on requests; checked when present otherwise).
    let mcp_method = match head.mcp_method.map(header_text) {
        None if kind == MessageKind::Notification => HeaderEdit::Set(method.to_owned()),
        None => return Err(mismatch(id, "missing required Mcp-Method header".to_owned())),
        Some(None) => return Err(mismatch(id, "Mcp-Method header is not valid text".to_owned())),
        Some(Some(h)) if h != method => {
            return Err(mismatch(id, format!("Mcp-Method header value {} does not match body value {}", shown(h), shown(method))))
        }
        Some(Some(_)) => canonical(head.mcp_method, method),
    };

    let mut request = base_request(Era::Modern, kind, Some(env), head);
    request.protocol_version = Some(version.to_owned());

    // Mcp-Name must mirror params.name / params.uri / params.taskId.
    let mcp_name = match request.op.and_then(name_source) {
        None => remove_if_present(head.mcp_name),
        Some(source) => {
            let (field, value) = match source {
                NameSource::Name => ("params.name", params.name.as_ref()),
                NameSource::Uri => ("params.uri", params.uri.as_ref()),
                NameSource::TaskId => ("params.taskId", params.task_id.as_ref()),
            };
            let body_value = match value {
                Some(StrField::Str(s)) => Some(s.as_str()),
                Some(StrField::NotAString) => return Err(invalid_params(format!("{field} must be a string"))),
                None if source == NameSource::TaskId => None,
                None => return Err(invalid_params(format!("{field} is required for {method}"))),
            };
            let edit = match (head.mcp_name, body_value) {
                // Tasks: clients observed in the wild omit Mcp-Name; derive it so routing works.
                (None, Some(v)) if source == NameSource::TaskId => HeaderEdit::Set(encode_value(v).into_owned()),
                (None, None) => HeaderEdit::Keep,
                (None, Some(_)) => return Err(mismatch(id, format!("missing required Mcp-Name header for {method}"))),
                (Some(raw), body_value) => {
                    let decoded: Cow<'_, str> = decode_value(raw).map_err(|e| mismatch(id, format!("Mcp-Name header: {e}")))?;
                    match body_value {
                        Some(v) if v == decoded => canonical(Some(raw), v),
                        Some(v) => {
                            return Err(mismatch(
                                id,
                                format!("Mcp-Name header value {} does not match body value {}", shown(&decoded), shown(v)),
                            ))
                        }
                        None => return Err(mismatch(id, format!("Mcp-Name header present but {field} is absent"))),
                    }
                }
            };
            request.name = body_value.map(str::to_owned);
            edit
        }
    };
    request.resolve_name();
    Ok(Classified { request, mcp_method, mcp_name, content_type: HeaderEdit::Keep, batch: Vec::new() })
}

fn classify_legacy(head: &RequestHead<'_>, env: &Envelope<'_>, rules: &WireRules) -> Result<Classified, Rejection> {
    let id = env.id.map(|i| i.json());
    let method = env.method_str();
    if !rules.legacy_enabled {
        if method.map(Method::parse) == Some(Method::Initialize) {
            // A modern-only server names its versions in any error to `initialize` (spec §12.3).
            let requested = env.params().and_then(|p| p.protocol_version.as_ref()).and_then(StrField::as_str).unwrap_or("");
            return Err(unsupported_version(rules, requested, id));
        }
        return Err(legacy_disabled(id));
    }
    if let Some(key) = env.duplicate_key() {
        return Err(duplicate(key, id));
    }
    if env.method.is_some() && (env.has_result || env.has_error) {
        // A request to one SDK, a response to another: no single view of what it is.
        return Err(Rejection::new(
            RejectKind::InvalidRequest,
            "Invalid Request: a message with \"method\" cannot also carry \"result\" or \"error\"",
        )
        .with_id(id));
    }
    let kind = if env.has_result || env.has_error {
        MessageKind::Response
    } else if env.id.is_none() {
        MessageKind::Notification
    } else {
        MessageKind::Request
    };
    let invalid = |m: &str| Rejection::new(RejectKind::InvalidRequest, format!("Invalid Request: {m}")).with_id(id);
    let mut request = base_request(Era::Legacy, kind, Some(env), head);
    request.protocol_version = head
        .protocol_version
        .and_then(header_text)
        .map(str::to_owned)
        .or_else(|| env.params().and_then(|p| p.protocol_version.as_ref()).and_then(StrField::as_str).map(str::to_owned));
    if kind == MessageKind::Response {
        return Ok(Classified {
            request,
            mcp_method: remove_if_present(head.mcp_method),
            mcp_name: remove_if_present(head.mcp_name),
            content_type: HeaderEdit::Keep,
            batch: Vec::new(),
        });
    }
    let Some(method) = method else {
        return Err(invalid("\"method\" must be a string"));
    };
    // A modern version header with no modern body claim is a malformed modern request (TS SDK).
    let op = Method::parse(method);
    if kind == MessageKind::Request && op != Method::Initialize {
        if let Some(v) = head.protocol_version.and_then(header_text) {
            if is_modern_version(v) {
                return Err(Rejection::new(
                    RejectKind::InvalidParams,
                    "Invalid params: missing required _meta key \"io.modelcontextprotocol/protocolVersion\"",
                )
                .with_id(id));
            }
        }
    }
    let source = name_source(op);
    let name = source.and_then(|source| {
        let p = env.params()?;
        match source {
            NameSource::Name => p.name.as_ref(),
            NameSource::Uri => p.uri.as_ref(),
            NameSource::TaskId => p.task_id.as_ref(),
        }
        .and_then(StrField::as_str)
    });
    if let (Some(source), None, MessageKind::Request) = (source, name, kind) {
        // The modern rule, for legacy too: what policy matches on must be readable.
        let field = match source {
            NameSource::Name => "params.name",
            NameSource::Uri => "params.uri",
            NameSource::TaskId => "params.taskId",
        };
        return Err(Rejection::new(RejectKind::InvalidParams, format!("Invalid params: {field} must be a string")).with_id(id));
    }
    request.name = name.map(str::to_owned);
    request.resolve_name();
    let mcp_name = match name {
        Some(n) if kind == MessageKind::Request => HeaderEdit::Set(encode_value(n).into_owned()),
        _ => remove_if_present(head.mcp_name),
    };
    Ok(Classified {
        request,
        mcp_method: HeaderEdit::Set(encode_value(method).into_owned()),
        mcp_name,
        content_type: HeaderEdit::Keep,
        batch: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> WireRules {
        WireRules {
            modern_enabled: true,
            legacy_enabled: true,
            supported_versions: vec![FIRST_MODERN_VERSION.into()],
            forward_cors_preflight: false,
            legacy_batches: false,
        }
    }

    const CALL_ADMIN: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

    fn head<'a>(method: &'a [u8], name: &'a [u8]) -> RequestHead<'a> {
        RequestHead {
            http_method: "POST",
            content_type: Some(b"application/json"),
            content_encoding: None,
            protocol_version: Some(b"2026-07-28"),
            mcp_method: Some(method),
            mcp_name: Some(name),
            session_id: None,
        }
    }

    #[test]
    fn matching_headers_in_another_spelling_are_canonicalised() {
        // "admin" sent as a Base64 sentinel: equal after decoding, but an exact-match route on
        // `mcp-name: admin` must see the plain spelling.
        let c = classify_body(&head(b"tools/call", b"=?base64?YWRtaW4=?="), CALL_ADMIN.as_bytes(), &rules()).unwrap();
        assert_eq!(c.mcp_name, HeaderEdit::Set("admin".into()));
        let c = classify_body(&head(b" tools/call\t", b" admin "), CALL_ADMIN.as_bytes(), &rules()).unwrap();
        assert_eq!(c.mcp_method, HeaderEdit::Set("tools/call".into()));
        assert_eq!(c.mcp_name, HeaderEdit::Set("admin".into()));
        let c = classify_body(&head(b"tools/call", b"admin"), CALL_ADMIN.as_bytes(), &rules()).unwrap();
        assert_eq!((c.mcp_method, c.mcp_name), (HeaderEdit::Keep, HeaderEdit::Keep));
    }

    #[test]
    fn the_tasks_extension_is_read_as_a_server_parses_the_capabilities() {
        let call = |caps: &str| {
            let body = CALL_ADMIN.replace(
                r#""io.modelcontextprotocol/clientCapabilities":{}"#,
                &format!(r#""io.modelcontextprotocol/clientCapabilities":{caps}"#),
            );
            classify_body(&head(b"tools/call", b"admin"), body.as_bytes(), &rules()).unwrap().request.handles.may_create_task
        };
        assert!(!call("{}"));
        assert!(call(r#"{"extensions":{"io.modelcontextprotocol/tasks":{}}}"#));
        // Every escaped spelling of the key is the same key to json.loads and JSON.parse.
        assert!(call(r#"{"extensions":{"io.modelcontextprotocol\/tasks":{}}}"#));
        assert!(call(r#"{"extensions":{"io.modelcontextprotocol/task\u0073":{}}}"#));
        assert!(call(r#"{"extensions":{"\u0069o.modelcontextprotocol\u002Ftasks":{"x":"\n"}}}"#));
        // An escape elsewhere does not make an undeclared extension declared.
        assert!(!call(r#"{"extensions":{"io.modelcontextprotocol\/other":{}}}"#));
    }
}
