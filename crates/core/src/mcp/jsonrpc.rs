//! JSON-RPC 2.0 envelope: one borrowed, single-pass parse of a posted body.
//!
//! Only the fields a gateway decides on are decoded (`jsonrpc`, `id`, `method`, `params.name`,
//! `params.uri`, `params.taskId`, `params._meta`, legacy `initialize` fields); everything else is
//! skipped without allocation. Strings borrow from the body unless they contain escapes.
//!
//! Duplicate keys: JSON parsers disagree on which of two equal keys wins (Python and JS take the
//! last, some take the first). If the filter and the upstream could read different values for a
//! key the filter decides on, the routing headers would stop being trustworthy, so a duplicate of
//! any key read here is recorded and the flow rejects the request.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::checked::{is_proto_key_error, readable, refuse_proto_key, skip_map, Checked, Key};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Most elements a legacy batch may hold.
pub const MAX_BATCH_ELEMENTS: usize = 64;

/// Deepest array/object nesting a body may have. serde_json stops at 128 levels only for values
/// it deserializes; values it skips or keeps raw (`arguments`, `clientCapabilities`, unknown keys)
/// are skipped iteratively with no bound, so without this check any depth would reach upstream
/// parsers (Python's `json` raises at ~1000 levels).
pub const MAX_DEPTH: usize = 128;

/// A JSON string that borrows from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'a>(pub Cow<'a, str>);

impl<'a> JsonStr<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A field that should be a string; anything else is remembered as `NotAString` instead of
/// failing the whole parse, so the error can still carry the request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrField<'a> {
    Str(JsonStr<'a>),
    NotAString,
}

impl<'a> StrField<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            StrField::Str(s) => Some(s.as_str()),
            StrField::NotAString => None,
        }
    }
}

impl<'de> Deserialize<'de> for StrField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrField::Str(JsonStr(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrField::Str(JsonStr(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrField::Str(JsonStr(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<Checked>()?.is_some() {}
                Ok(StrField::NotAString)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                skip_map(a)?;
                Ok(StrField::NotAString)
            }
        }
        d.deserialize_any(V)
    }
}

/// An array of strings as [`StrField`]s; any other value reads as empty (the server's own
/// validation answers it).
#[derive(Debug, Default, Clone)]
pub struct StrList<'a>(pub Vec<StrField<'a>>);

impl<'de> Deserialize<'de> for StrList<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = a.next_element::<StrField<'de>>()? {
                    out.push(s);
                }
                Ok(StrList(out))
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(StrList::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                skip_map(a)?;
                Ok(StrList::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// The shape of a JSON-RPC `id`, with its raw text kept for echoing it back byte-exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    String,
    Integer,
    /// `null`, a float, a bool, an object or an array: not a valid MCP request id.
    Invalid,
}

#[derive(Debug, Clone, Copy)]
pub struct RequestId<'a> {
    pub raw: &'a RawValue,
    pub kind: IdKind,
}

impl<'a> RequestId<'a> {
    fn from_raw(raw: &'a RawValue) -> Self {
        let text = raw.get();
        let kind = match text.as_bytes().first() {
            Some(b'"') => IdKind::String,
            Some(b'-' | b'0'..=b'9') if !text.contains(['.', 'e', 'E']) => IdKind::Integer,
            _ => IdKind::Invalid,
        };
        RequestId { raw, kind }
    }

    /// The id exactly as the client wrote it (JSON text).
    pub fn json(&self) -> &'a str {
        self.raw.get()
    }
}

/// `params._meta`: only the keys the gateway uses.
#[derive(Debug, Default, Clone)]
pub struct Meta<'a> {
    pub protocol_version: Option<StrField<'a>>,
    /// Present and a JSON object.
    pub client_capabilities: Option<&'a RawValue>,
    pub client_info: Option<ClientInfo<'a>>,
    /// SEP-414's W3C trace context keys (unprefixed).
    pub traceparent: Option<StrField<'a>>,
    pub tracestate: Option<StrField<'a>>,
    pub baggage: Option<StrField<'a>>,
    pub progress_token: bool,
    /// `mcp-warden.dev/tool-hash`: the fingerprint of the tool definition the client saw.
    pub tool_hash: Option<StrField<'a>>,
    pub duplicate_key: Option<&'static str>,
    pub unreadable: Option<&'static str>,
}

#[derive(Debug, Default, Clone)]
pub struct ClientInfo<'a> {
    pub name: Option<StrField<'a>>,
    pub version: Option<StrField<'a>>,
}

/// `params`: only the keys the gateway uses. `arguments` is read completely ([`Checked`]) in the
/// same pass, not kept: nothing decides on it yet, and a second pass over it would cost per byte.
#[derive(Debug, Default, Clone)]
pub struct Params<'a> {
    pub name: Option<StrField<'a>>,
    pub uri: Option<StrField<'a>>,
    pub task_id: Option<StrField<'a>>,
    /// `None` when absent; `Some(None)` when present but not an object.
    pub meta: Option<Option<Meta<'a>>>,
    pub has_arguments: bool,
    /// Legacy `initialize`: version, capabilities and client info are top-level params.
    pub protocol_version: Option<StrField<'a>>,
    pub client_info: Option<ClientInfo<'a>>,
    pub has_request_state: bool,
    pub has_input_responses: bool,
    /// `completion/complete`'s `ref`: the prompt or resource it completes for.
    pub reference: Option<Reference<'a>>,
    /// A list request's page cursor.
    pub cursor: Option<StrField<'a>>,
    /// `subscriptions/listen`'s `notifications.taskIds`.
    pub listen_task_ids: StrList<'a>,
    /// A legacy task-augmented request (`params.task`).
    pub has_task: bool,
    pub duplicate_key: Option<&'static str>,
    pub unreadable: Option<&'static str>,
}

/// `params.notifications` of `subscriptions/listen`: only the task filter.
#[derive(Debug, Default, Clone)]
struct ListenFilter<'a> {
    task_ids: StrList<'a>,
    duplicate_key: Option<&'static str>,
}

/// `params.ref` of `completion/complete` (`{"type": "ref/prompt", "name"}` or
/// `{"type": "ref/resource", "uri"}`).
#[derive(Debug, Default, Clone)]
pub struct Reference<'a> {
    pub kind: Option<StrField<'a>>,
    pub name: Option<StrField<'a>>,
    pub uri: Option<StrField<'a>>,
    pub duplicate_key: Option<&'static str>,
}

impl<'a> Params<'a> {
    pub fn meta(&self) -> Option<&Meta<'a>> {
        self.meta.as_ref().and_then(Option::as_ref)
    }
}

/// One JSON-RPC message object.
#[derive(Debug, Default, Clone)]
pub struct Envelope<'a> {
    pub jsonrpc: Option<StrField<'a>>,
    pub id: Option<RequestId<'a>>,
    pub method: Option<StrField<'a>>,
    /// `None` when absent; `Some(None)` when present but not an object.
    pub params: Option<Option<Params<'a>>>,
    pub has_result: bool,
    pub has_error: bool,
    /// `error.code` of an error response, when it is an integer.
    pub error_code: Option<i64>,
    /// `result.isError` is `true` (a `CallToolResult` reporting a tool error).
    pub tool_error: bool,
    pub duplicate_key: Option<&'static str>,
    /// The first value kept raw that cannot be read back ([`super::checked`]).
    pub unreadable: Option<&'static str>,
}

impl<'a> Envelope<'a> {
    pub fn params(&self) -> Option<&Params<'a>> {
        self.params.as_ref().and_then(Option::as_ref)
    }

    pub fn method_str(&self) -> Option<&str> {
        self.method.as_ref().and_then(StrField::as_str)
    }

    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` is present (any type): the
    /// request claims the 2026-07-28 era.
    pub fn claims_modern(&self) -> bool {
        self.params().and_then(Params::meta).is_some_and(|m| m.protocol_version.is_some())
    }

    /// The first value kept raw (id, arguments, capabilities) holding a lone surrogate escape or a
    /// number beyond float64: the filter could not read what the upstream would.
    pub fn unreadable(&self) -> Option<&'static str> {
        self.unreadable
            .or_else(|| self.params().and_then(|p| p.unreadable))
            .or_else(|| self.params().and_then(Params::meta).and_then(|m| m.unreadable))
    }

    /// The first duplicated key found at any level read by the parser.
    pub fn duplicate_key(&self) -> Option<&'static str> {
        self.duplicate_key
            .or_else(|| self.params().and_then(|p| p.duplicate_key))
            .or_else(|| self.params().and_then(Params::meta).and_then(|m| m.duplicate_key))
            .or_else(|| self.params().and_then(|p| p.reference.as_ref()).and_then(|r| r.duplicate_key))
    }
}

/// What a posted body is, before era rules apply.
#[derive(Debug)]
// The single-message case is the hot path: keep it on the stack rather than boxing it.
#[allow(clippy::large_enum_variant)]
pub enum Body<'a> {
    Single(Envelope<'a>),
    Batch(Vec<Envelope<'a>>),
}

/// Why a body could not be read as JSON-RPC at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON (syntax, encoding, trailing bytes, too deep).
    NotJson(String),
    /// JSON, but neither an object nor an array of objects.
    NotAnObject,
    /// An empty batch array, or more elements than [`MAX_BATCH_ELEMENTS`].
    BadBatch,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ParseError::NotJson(e) => write!(f, "body is not valid JSON: {e}"),
            ParseError::NotAnObject => f.write_str("body is not a JSON-RPC message object"),
            ParseError::BadBatch => f.write_str("batch must hold 1 to 64 message objects"),
        }
    }
}

/// Parses a posted body once. Batches are split into borrowed elements.
pub fn parse_body(body: &[u8]) -> Result<Body<'_>, ParseError> {
    let text =
        std::str::from_utf8(body).map_err(|e| ParseError::NotJson(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    parse_body_str(text)
}

/// [`parse_body`] of a body already known to be UTF-8: strings are then not validated again.
pub fn parse_body_str(text: &str) -> Result<Body<'_>, ParseError> {
    let body = text.as_bytes();
    if nesting_exceeds(body, MAX_DEPTH) {
        return Err(ParseError::NotJson(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => {
            let raws: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| ParseError::NotJson(e.to_string()))?;
            if raws.is_empty() || raws.len() > MAX_BATCH_ELEMENTS {
                return Err(ParseError::BadBatch);
            }
            let mut out = Vec::with_capacity(raws.len());
            for raw in raws {
                out.push(parse_object(raw.get())?);
            }
            Ok(Body::Batch(out))
        }
        Some(b'{') => Ok(Body::Single(parse_object(text)?)),
        Some(_) => match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Err(ParseError::NotAnObject),
            Err(e) => Err(ParseError::NotJson(e.to_string())),
        },
        None => Err(ParseError::NotJson("empty body".to_owned())),
    }
}

/// True when arrays/objects nest deeper than `max` (brackets inside strings do not count). One
/// linear pass, no allocation; malformed input is left to the parser.
fn nesting_exceeds(body: &[u8], max: usize) -> bool {
    // Fast path (every ordinary request): nesting can never be deeper than the number of opening
    // brackets, counted here without the string tracking (brackets in strings only over-count).
    if body.iter().filter(|b| matches!(b, b'[' | b'{')).count() <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Best effort for error replies: the top-level `"id"` of a body that could not be parsed (cut
/// short, over the cap, invalid further on), provided it appeared before the fault and is a
/// valid id. Returns the id's JSON text.
pub fn salvage_id(body: &[u8]) -> Option<String> {
    struct Seed<'s>(&'s mut Option<String>);
    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON-RPC message object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
            while let Some(Key(k)) = a.next_key::<Key>()? {
                if k == "id" && self.0.is_none() {
                    let raw: &'de RawValue = a.next_value()?;
                    if RequestId::from_raw(raw).kind != IdKind::Invalid {
                        *self.0 = Some(raw.get().to_owned());
                    }
                } else {
                    a.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Seed(&mut found).deserialize(&mut de);
    found
}

fn parse_object(text: &str) -> Result<Envelope<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let env = Envelope::deserialize(&mut de).map_err(classify_serde_error)?;
    de.end().map_err(|e| ParseError::NotJson(e.to_string()))?;
    Ok(env)
}

fn classify_serde_error(e: serde_json::Error) -> ParseError {
    if is_proto_key_error(&e) {
        return ParseError::NotJson(e.to_string());
    }
    match e.classify() {
        serde_json::error::Category::Data => ParseError::NotAnObject,
        _ => ParseError::NotJson(e.to_string()),
    }
}

/// Records `field` when a raw-kept value cannot be read completely.
fn unreadable_if(raw: &RawValue, field: &'static str, slot: &mut Option<&'static str>) {
    if slot.is_none() && !readable(raw) {
        *slot = Some(field);
    }
}

/// Records the first duplicate among the keys a visitor reads.
fn mark_dup(seen: &mut u32, bit: u32, key: &'static str, dup: &mut Option<&'static str>) -> bool {
    if *seen & bit != 0 {
        if dup.is_none() {
            *dup = Some(key);
        }
        false
    } else {
        *seen |= bit;
        true
    }
}

/// Deserializes `T` if the value is an object, otherwise skips it and yields `None`.
struct ObjectOr<T>(Option<T>);

impl<'de, T: ObjectVisit<'de>> Deserialize<'de> for ObjectOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: ObjectVisit<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                T::visit(a).map(|t| ObjectOr(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<Checked>()?.is_some() {}
                Ok(ObjectOr(None))
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ObjectOr(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

trait ObjectVisit<'de>: Sized {
    fn visit<A: MapAccess<'de>>(a: A) -> Result<Self, A::Error>;
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                Envelope::visit(a)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> ObjectVisit<'de> for Envelope<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut env = Envelope::default();
        let mut seen = 0u32;
        let dup = &mut env.duplicate_key;
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                "jsonrpc" if mark_dup(&mut seen, 1, "jsonrpc", dup) => {
                    env.jsonrpc = Some(a.next_value()?);
                }
                "id" if mark_dup(&mut seen, 2, "id", dup) => {
                    let raw: &'de RawValue = a.next_value()?;
                    unreadable_if(raw, "id", &mut env.unreadable);
                    env.id = Some(RequestId::from_raw(raw));
                }
                "method" if mark_dup(&mut seen, 4, "method", dup) => {
                    env.method = Some(a.next_value()?);
                }
                "params" if mark_dup(&mut seen, 8, "params", dup) => {
                    let p: ObjectOr<Params<'de>> = a.next_value()?;
                    env.params = Some(p.0);
                }
                "result" if mark_dup(&mut seen, 16, "result", dup) => {
                    let r: ObjectOr<ResultHead> = a.next_value()?;
                    env.tool_error = r.0.is_some_and(|r| r.is_error);
                    env.has_result = true;
                }
                "error" if mark_dup(&mut seen, 32, "error", dup) => {
                    let e: ObjectOr<ErrorHead> = a.next_value()?;
                    env.error_code = e.0.and_then(|e| e.code);
                    env.has_error = true;
                }
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(env)
    }
}

/// The top level of a response's `result`: whether it reports a tool error. Every other value is
/// only checked, as [`Checked`] would.
#[derive(Debug)]
struct ResultHead {
    is_error: bool,
}

impl<'de> ObjectVisit<'de> for ResultHead {
    fn visit<A: MapAccess<'de>>(a: A) -> Result<Self, A::Error> {
        // Only the literal `true` is a tool error to an SDK's boolean field.
        let raw = last_member(a, "isError", "result.isError cannot be read")?;
        Ok(ResultHead { is_error: raw.is_some_and(|r| r.get() == "true") })
    }
}

/// The top level of a response's `error`: its integer `code`.
#[derive(Debug)]
struct ErrorHead {
    code: Option<i64>,
}

impl<'de> ObjectVisit<'de> for ErrorHead {
    fn visit<A: MapAccess<'de>>(a: A) -> Result<Self, A::Error> {
        let raw = last_member(a, "code", "error.code cannot be read")?;
        Ok(ErrorHead { code: raw.and_then(|r| r.get().parse().ok()) })
    }
}

/// The raw value of an object's member `key` (the last one, as the SDKs' parsers keep it), every
/// other value only checked as [`Checked`] would. The member is read raw but refused as `Checked`
/// would refuse it (a lone surrogate, a number past f64), with `unreadable` as the error.
fn last_member<'de, A: MapAccess<'de>>(mut a: A, key: &str, unreadable: &'static str) -> Result<Option<&'de RawValue>, A::Error> {
    let mut found = None;
    while let Some(Key(k)) = a.next_key::<Key>()? {
        refuse_proto_key(&k)?;
        if k.as_ref() == key {
            let raw: &'de RawValue = a.next_value()?;
            if !readable(raw) {
                return Err(serde::de::Error::custom(unreadable));
            }
            found = Some(raw);
        } else {
            a.next_value::<Checked>()?;
        }
    }
    Ok(found)
}

impl<'de> ObjectVisit<'de> for Params<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut p = Params::default();
        let mut seen = 0u32;
        let dup = &mut p.duplicate_key;
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                "name" if mark_dup(&mut seen, 1, "params.name", dup) => {
                    p.name = Some(a.next_value()?);
                }
                "uri" if mark_dup(&mut seen, 2, "params.uri", dup) => {
                    p.uri = Some(a.next_value()?);
                }
                "taskId" if mark_dup(&mut seen, 4, "params.taskId", dup) => {
                    p.task_id = Some(a.next_value()?);
                }
                "_meta" if mark_dup(&mut seen, 8, "params._meta", dup) => {
                    let m: ObjectOr<Meta<'de>> = a.next_value()?;
                    p.meta = Some(m.0);
                }
                "arguments" if mark_dup(&mut seen, 16, "params.arguments", dup) => {
                    a.next_value::<Checked>()?;
                    p.has_arguments = true;
                }
                "protocolVersion" if mark_dup(&mut seen, 32, "params.protocolVersion", dup) => {
                    p.protocol_version = Some(a.next_value()?);
                }
                "clientInfo" if mark_dup(&mut seen, 64, "params.clientInfo", dup) => {
                    let c: ObjectOr<ClientInfo<'de>> = a.next_value()?;
                    p.client_info = c.0;
                }
                "requestState" if mark_dup(&mut seen, 128, "params.requestState", dup) => {
                    a.next_value::<Checked>()?;
                    p.has_request_state = true;
                }
                "inputResponses" if mark_dup(&mut seen, 256, "params.inputResponses", dup) => {
                    a.next_value::<Checked>()?;
                    p.has_input_responses = true;
                }
                "ref" if mark_dup(&mut seen, 512, "params.ref", dup) => {
                    let r: ObjectOr<Reference<'de>> = a.next_value()?;
                    p.reference = r.0;
                }
                "cursor" if mark_dup(&mut seen, 1024, "params.cursor", dup) => {
                    p.cursor = Some(a.next_value()?);
                }
                "task" if mark_dup(&mut seen, 4096, "params.task", dup) => {
                    a.next_value::<Checked>()?;
                    p.has_task = true;
                }
                "notifications" if mark_dup(&mut seen, 2048, "params.notifications", dup) => {
                    let f: ObjectOr<ListenFilter<'de>> = a.next_value()?;
                    if let Some(f) = f.0 {
                        if dup.is_none() {
                            *dup = f.duplicate_key;
                        }
                        p.listen_task_ids = f.task_ids;
                    }
                }
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(p)
    }
}

const KEY_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const KEY_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const KEY_INFO: &str = "io.modelcontextprotocol/clientInfo";
use super::fingerprint::TOOL_HASH_META_KEY;

impl<'de> ObjectVisit<'de> for Meta<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut m = Meta::default();
        let mut seen = 0u32;
        let dup = &mut m.duplicate_key;
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                KEY_VERSION if mark_dup(&mut seen, 1, "params._meta.protocolVersion", dup) => {
                    m.protocol_version = Some(a.next_value()?);
                }
                KEY_CAPS if mark_dup(&mut seen, 2, "params._meta.clientCapabilities", dup) => {
                    let raw: &'de RawValue = a.next_value()?;
                    unreadable_if(raw, "params._meta.clientCapabilities", &mut m.unreadable);
                    if raw.get().starts_with('{') {
                        m.client_capabilities = Some(raw);
                    }
                }
                KEY_INFO if mark_dup(&mut seen, 4, "params._meta.clientInfo", dup) => {
                    let c: ObjectOr<ClientInfo<'de>> = a.next_value()?;
                    m.client_info = c.0;
                }
                "traceparent" if mark_dup(&mut seen, 8, "params._meta.traceparent", dup) => {
                    m.traceparent = Some(a.next_value()?);
                }
                "progressToken" if mark_dup(&mut seen, 16, "params._meta.progressToken", dup) => {
                    a.next_value::<Checked>()?;
                    m.progress_token = true;
                }
                TOOL_HASH_META_KEY if mark_dup(&mut seen, 32, "params._meta.tool-hash", dup) => {
                    m.tool_hash = Some(a.next_value()?);
                }
                "tracestate" if mark_dup(&mut seen, 64, "params._meta.tracestate", dup) => {
                    m.tracestate = Some(a.next_value()?);
                }
                "baggage" if mark_dup(&mut seen, 128, "params._meta.baggage", dup) => {
                    m.baggage = Some(a.next_value()?);
                }
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(m)
    }
}

impl<'de> ObjectVisit<'de> for ListenFilter<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut f = ListenFilter::default();
        let mut seen = 0u32;
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                "taskIds" if mark_dup(&mut seen, 1, "params.notifications.taskIds", &mut f.duplicate_key) => {
                    f.task_ids = a.next_value()?;
                }
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(f)
    }
}

impl<'de> ObjectVisit<'de> for Reference<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut r = Reference::default();
        let mut seen = 0u32;
        let dup = &mut r.duplicate_key;
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                "type" if mark_dup(&mut seen, 1, "params.ref.type", dup) => r.kind = Some(a.next_value()?),
                "name" if mark_dup(&mut seen, 2, "params.ref.name", dup) => r.name = Some(a.next_value()?),
                "uri" if mark_dup(&mut seen, 4, "params.ref.uri", dup) => r.uri = Some(a.next_value()?),
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(r)
    }
}

impl<'de> ObjectVisit<'de> for ClientInfo<'de> {
    fn visit<A: MapAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
        let mut c = ClientInfo::default();
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key(&k)?;
            match k.as_ref() {
                "name" => c.name = Some(a.next_value()?),
                "version" => c.version = Some(a.next_value()?),
                _ => {
                    a.next_value::<Checked>()?;
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &str) -> Envelope<'_> {
        match parse_body(body.as_bytes()) {
            Ok(Body::Single(e)) => e,
            other => panic!("expected a single envelope, got {other:?}"),
        }
    }

    #[test]
    fn borrows_plain_strings_and_decodes_escapes() {
        let e = single(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ec\u0068o"}}"#);
        assert!(matches!(e.method, Some(StrField::Str(JsonStr(Cow::Borrowed("tools/call"))))));
        assert_eq!(e.params().and_then(|p| p.name.as_ref()).and_then(StrField::as_str), Some("echo"));
        assert_eq!(e.id.map(|i| i.kind), Some(IdKind::Integer));
    }

    #[test]
    fn records_duplicate_keys_at_every_level_read() {
        let e = single(r#"{"id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#);
        assert_eq!(e.duplicate_key(), Some("params.name"));
        let e = single(r#"{"id":1,"id":2,"method":"x"}"#);
        assert_eq!(e.duplicate_key(), Some("id"));
        let e = single(
            r#"{"id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"a","io.modelcontextprotocol/protocolVersion":"b"}}}"#,
        );
        assert_eq!(e.duplicate_key(), Some("params._meta.protocolVersion"));
    }

    #[test]
    fn id_kinds() {
        assert_eq!(single(r#"{"id":"a"}"#).id.map(|i| i.kind), Some(IdKind::String));
        assert_eq!(single(r#"{"id":-3}"#).id.map(|i| i.kind), Some(IdKind::Integer));
        assert_eq!(single(r#"{"id":1.5}"#).id.map(|i| i.kind), Some(IdKind::Invalid));
        assert_eq!(single(r#"{"id":null}"#).id.map(|i| i.kind), Some(IdKind::Invalid));
        assert_eq!(single(r#"{"id":"x\"y"}"#).id.map(|i| i.json()), Some(r#""x\"y""#));
    }

    #[test]
    fn non_objects_and_garbage() {
        assert!(matches!(parse_body(b"42"), Err(ParseError::NotAnObject)));
        assert!(matches!(parse_body(b"[]"), Err(ParseError::BadBatch)));
        assert!(matches!(parse_body(b"[1]"), Err(ParseError::NotAnObject)));
        assert!(matches!(parse_body(b"{\"id\":1"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse_body(b"{} x"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse_body(b"  "), Err(ParseError::NotJson(_))));
        assert!(matches!(parse_body(b"\xff"), Err(ParseError::NotJson(_))));
    }

    #[test]
    fn nesting_is_bounded_even_where_values_are_skipped() {
        let nest = |pre: &str, d: usize, post: &str| format!("{pre}{}{}{post}", "[".repeat(d), "]".repeat(d));
        // Skipped values: serde_json alone bounds neither.
        for (pre, post) in [(r#"{"id":1,"method":"x","params":{"arguments":"#, "}}"), (r#"{"id":1,"zzz":"#, "}")] {
            let deep = nest(pre, 200, post);
            assert!(matches!(parse_body(deep.as_bytes()), Err(ParseError::NotJson(_))), "{pre}");
            let ok = nest(pre, 100, post);
            assert!(parse_body(ok.as_bytes()).is_ok(), "{pre}");
        }
        // Many brackets side by side are not depth (past the fast path's count, the precise scan decides).
        let wide = format!(r#"{{"id":1,"method":"x","params":{{"arguments":[{}[]]}}}}"#, "[],".repeat(300));
        assert!(parse_body(wide.as_bytes()).is_ok());
        // Brackets inside strings are text, not nesting.
        let s = format!(r#"{{"id":1,"method":"x","params":{{"name":"{}\"{}"}}}}"#, "[".repeat(300), "{".repeat(300));
        assert!(parse_body(s.as_bytes()).is_ok());
    }

    #[test]
    fn salvages_the_id_of_broken_bodies() {
        assert_eq!(salvage_id(br#"{"jsonrpc":"2.0","id":4,"method":"tools/ca"#).as_deref(), Some("4"));
        assert_eq!(salvage_id(br#"{"id":"a\"b","x":[1,2"#).as_deref(), Some(r#""a\"b""#));
        assert_eq!(salvage_id(br#"{"method":"x","params":{"id":9"#), None);
        assert_eq!(salvage_id(br#"{"id":null,"x"#), None);
        assert_eq!(salvage_id(b"garbage"), None);
    }

    #[test]
    fn wrong_types_do_not_lose_the_id() {
        let e = single(r#"{"id":5,"method":3,"params":[1,2]}"#);
        assert_eq!(e.id.map(|i| i.json()), Some("5"));
        assert_eq!(e.method, Some(StrField::NotAString));
        assert!(matches!(e.params, Some(None)));
    }

    #[test]
    fn values_no_two_parsers_read_alike_are_refused() {
        for body in [
            r#"{"id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":"\ud800"}}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1e400}}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"a","zzz":["\udfff"]}}"#,
            r#"{"id":"\ud800","method":"ping"}"#,
            r#"{"id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"a":-1e999}}}}"#,
        ] {
            let unreadable = match parse_body(body.as_bytes()) {
                Ok(Body::Single(e)) => e.unreadable(),
                Ok(Body::Batch(_)) => None,
                Err(e) => Some(if matches!(e, ParseError::NotJson(_)) { "not json" } else { "other" }),
            };
            assert!(matches!(unreadable, Some(f) if f != "other"), "{body}: {unreadable:?}");
        }
    }
}
