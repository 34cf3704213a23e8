//! Rejections: why the filter answered instead of the upstream, and the JSON-RPC body it sends.
//!
//! Status and code follow the spec's table (docs/architecture §4). Every rejection keeps the
//! request id whenever it could be read, so a client can match the error to its request.

use std::fmt::Write as _;

/// Why a request was rejected. The label doubles as the metric tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// Body is not JSON.
    ParseError,
    /// JSON, but not a valid JSON-RPC request for this era (bad envelope, modern element in a
    /// batch, duplicate keys, bad id).
    InvalidRequest,
    /// A routing header is missing, malformed, or differs from the body.
    HeaderMismatch,
    /// `_meta` names a protocol version this gateway does not serve.
    UnsupportedVersion,
    /// A required `_meta` key or params field is missing.
    InvalidParams,
    /// Body over the configured cap.
    BodyTooLarge,
    /// POST without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// The request's era is switched off in the config.
    EraDisabled,
    /// An HTTP method the MCP endpoint does not serve.
    MethodNotAllowed,
}

impl RejectKind {
    pub fn label(self) -> &'static str {
        match self {
            RejectKind::ParseError => "parse_error",
            RejectKind::InvalidRequest => "invalid_request",
            RejectKind::HeaderMismatch => "header_mismatch",
            RejectKind::UnsupportedVersion => "unsupported_version",
            RejectKind::InvalidParams => "invalid_params",
            RejectKind::BodyTooLarge => "body_too_large",
            RejectKind::UnsupportedMediaType => "unsupported_media_type",
            RejectKind::EraDisabled => "era_disabled",
            RejectKind::MethodNotAllowed => "method_not_allowed",
        }
    }

    pub fn http_status(self) -> u32 {
        match self {
            RejectKind::BodyTooLarge => 413,
            RejectKind::UnsupportedMediaType => 415,
            RejectKind::MethodNotAllowed => 405,
            _ => 400,
        }
    }

    pub fn jsonrpc_code(self) -> i32 {
        match self {
            RejectKind::ParseError => -32700,
            RejectKind::HeaderMismatch => -32020,
            RejectKind::UnsupportedVersion => -32022,
            RejectKind::InvalidParams => -32602,
            // Deliberately not a recognised modern code: a dual-era client that meets a
            // disabled era must read the answer as "the other era", not "fix and retry".
            RejectKind::InvalidRequest
            | RejectKind::BodyTooLarge
            | RejectKind::UnsupportedMediaType
            | RejectKind::EraDisabled
            | RejectKind::MethodNotAllowed => -32600,
        }
    }

    pub const ALL: [RejectKind; 9] = [
        RejectKind::ParseError,
        RejectKind::InvalidRequest,
        RejectKind::HeaderMismatch,
        RejectKind::UnsupportedVersion,
        RejectKind::InvalidParams,
        RejectKind::BodyTooLarge,
        RejectKind::UnsupportedMediaType,
        RejectKind::EraDisabled,
        RejectKind::MethodNotAllowed,
    ];
}

/// A request the filter answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectKind,
    pub message: String,
    /// The request id as JSON text, when it could be read.
    pub id: Option<String>,
    /// `error.data` as JSON text.
    pub data: Option<String>,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl Rejection {
    pub fn new(kind: RejectKind, message: impl Into<String>) -> Self {
        Rejection { kind, message: message.into(), id: None, data: None, allow: None }
    }

    pub fn with_id(mut self, id: Option<&str>) -> Self {
        self.id = id.map(str::to_owned);
        self
    }

    pub fn with_allow(mut self, allow: &'static str) -> Self {
        self.allow = Some(allow);
        self
    }

    pub fn with_data(mut self, data: String) -> Self {
        self.data = Some(data);
        self
    }

    /// The JSON-RPC error response body.
    pub fn body(&self) -> String {
        jsonrpc_error_body(self.id.as_deref(), self.kind.jsonrpc_code(), &self.message, self.data.as_deref())
    }
}

/// `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…,"data":…}}`; `id` is omitted when
/// unknown (MCP's error schema makes it optional; `null` trips strict clients).
pub fn jsonrpc_error_body(id: Option<&str>, code: i32, message: &str, data: Option<&str>) -> String {
    let mut out = String::with_capacity(96 + message.len());
    out.push_str("{\"jsonrpc\":\"2.0\",");
    if let Some(id) = id {
        let _ = write!(out, "\"id\":{id},");
    }
    let _ = write!(out, "\"error\":{{\"code\":{code},\"message\":");
    push_json_string(&mut out, message);
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    out.push_str("}}");
    out
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keeps_id_and_escapes_message() {
        let r = Rejection::new(RejectKind::HeaderMismatch, "Mcp-Name \"a\" ≠ \"b\"\n").with_id(Some("\"x\""));
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(v["error"]["code"], -32020);
        assert_eq!(v["error"]["message"], "Mcp-Name \"a\" ≠ \"b\"\n");
    }

    #[test]
    fn body_without_id_omits_it() {
        let v: serde_json::Value = serde_json::from_str(&Rejection::new(RejectKind::ParseError, "x").body()).unwrap();
        assert!(v.get("id").is_none());
        assert_eq!(v["error"]["code"], -32700);
    }
}
