//! Header codec for the MCP routing headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`).
//!
//! Values are RFC 9110 field values; anything that cannot travel safely (non-ASCII, control
//! characters, leading/trailing whitespace, or a plain value that looks like the sentinel) is sent
//! as `=?base64?{standard Base64 of the UTF-8 bytes}?=`. Decoding is strict: the sentinel is
//! case-sensitive and its Base64 must be canonical, padded, standard-alphabet, and decode to UTF-8.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::borrow::Cow;
use std::fmt;

/// Header names, lowercase as Envoy presents them.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const SESSION_ID: &str = "mcp-session-id";
pub const PARAM_PREFIX: &str = "mcp-param-";

/// `name` starts with `prefix` (lowercase, with `-`) as a backend reads header names: any case,
/// `_` for `-` (CGI/WSGI-style servers fold them).
pub fn folds_to_prefix(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(c, p)| c.to_ascii_lowercase() == p || (c == b'_' && p == b'-'))
}

/// True for an `Mcp-Param-*` header in any spelling a backend may read as one.
pub fn is_param_header(name: &str) -> bool {
    name.len() > PARAM_PREFIX.len() && folds_to_prefix(name, PARAM_PREFIX)
}

/// True for a spelling of `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` or `Mcp-Session-Id`.
pub fn is_routing_header(name: &str) -> bool {
    [PROTOCOL_VERSION, METHOD, NAME, SESSION_ID].iter().any(|h| name.len() == h.len() && folds_to_prefix(name, h))
}

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";

/// Why a header value could not be decoded. Always the client's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValueError {
    /// The sentinel's payload is not canonical padded standard Base64.
    InvalidBase64,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A plain value holds a byte outside visible ASCII, space and tab.
    InvalidCharacter,
}

impl fmt::Display for HeaderValueError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            HeaderValueError::InvalidBase64 => "invalid Base64 inside the =?base64?…?= sentinel",
            HeaderValueError::NotUtf8 => "Base64 sentinel does not decode to UTF-8",
            HeaderValueError::InvalidCharacter => "header value contains a character outside RFC 9110 field-vchar",
        })
    }
}

/// Trims RFC 9110 optional whitespace (space, tab) around a field value.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|b| *b != b' ' && *b != b'\t').map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or_default()
}

/// Decodes a header value as received (raw bytes) into the string it stands for.
pub fn decode_value(raw: &[u8]) -> Result<Cow<'_, str>, HeaderValueError> {
    let v = trim_ows(raw);
    if let Some(inner) = v.strip_prefix(SENTINEL_PREFIX.as_bytes()).and_then(|r| r.strip_suffix(SENTINEL_SUFFIX.as_bytes())) {
        let bytes = STANDARD.decode(inner).map_err(|_| HeaderValueError::InvalidBase64)?;
        return String::from_utf8(bytes).map(Cow::Owned).map_err(|_| HeaderValueError::NotUtf8);
    }
    if v.iter().any(|b| !(*b == b'\t' || (0x20..=0x7e).contains(b))) {
        return Err(HeaderValueError::InvalidCharacter);
    }
    // Only visible ASCII, space and tab remain, so this cannot fail.
    std::str::from_utf8(v).map(Cow::Borrowed).map_err(|_| HeaderValueError::InvalidCharacter)
}

/// True when `value` can be sent as a plain header value.
fn is_plain_safe(value: &str) -> bool {
    let b = value.as_bytes();
    let edges_ok = !matches!(b.first(), Some(b' ' | b'\t')) && !matches!(b.last(), Some(b' ' | b'\t'));
    // Tab is a legal field character but a control character to the spec: encode it.
    let chars_ok = b.iter().all(|c| (0x20..=0x7e).contains(c));
    let looks_like_sentinel = value.starts_with(SENTINEL_PREFIX) && value.ends_with(SENTINEL_SUFFIX);
    edges_ok && chars_ok && !looks_like_sentinel
}

/// Encodes a body value for a header, using the Base64 sentinel where the spec requires it.
pub fn encode_value(value: &str) -> Cow<'_, str> {
    if is_plain_safe(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("{SENTINEL_PREFIX}{}{SENTINEL_SUFFIX}", STANDARD.encode(value.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_round_trip() {
        assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(decode_value(b"=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Ok("Hello, 世界"));
        assert_eq!(encode_value("get_weather"), "get_weather");
        assert_eq!(encode_value("file:///a b.txt?x=1"), "file:///a b.txt?x=1");
    }

    #[test]
    fn sentinel_lookalikes_are_encoded_and_uppercase_is_literal() {
        assert_eq!(encode_value("=?base64?abc?="), "=?base64?PT9iYXNlNjQ/YWJjPz0=?=");
        assert_eq!(decode_value(b"=?BASE64?Zm9v?=").as_deref(), Ok("=?BASE64?Zm9v?="));
    }

    #[test]
    fn strict_base64() {
        assert_eq!(decode_value(b"=?base64?Zm9v?="), Ok(Cow::Owned("foo".into())));
        assert_eq!(decode_value(b"=?base64?Zm9?="), Err(HeaderValueError::InvalidBase64));
        assert_eq!(decode_value(b"=?base64?Zg?="), Err(HeaderValueError::InvalidBase64));
        assert_eq!(decode_value(b"=?base64?_-8=?="), Err(HeaderValueError::InvalidBase64));
        assert_eq!(decode_value(b"=?base64?/w==?="), Err(HeaderValueError::NotUtf8));
    }

    #[test]
    fn trims_ows_and_rejects_raw_non_ascii() {
        assert_eq!(decode_value(b"  foo \t").as_deref(), Ok("foo"));
        assert_eq!(decode_value("wetter-ä".as_bytes()), Err(HeaderValueError::InvalidCharacter));
        assert_eq!(decode_value(b"a\x01b"), Err(HeaderValueError::InvalidCharacter));
        assert_eq!(decode_value(b"").as_deref(), Ok(""));
    }
}
