//! Strict reading of receipt JSON, as the verifiers do it: duplicate keys rejected at any depth,
//! nesting bounded (serde_json's limit of 128), top-level members kept as raw text so `ext` can
//! be hashed with its producer's exact bytes, and flight-recorder wrappers unwrapped.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// A JSON value parsed with duplicate keys rejected.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Top-level members of an object, in document order, values as raw JSON text.
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawMembers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMembers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMembers, A::Error> {
                let mut out: Vec<(String, Box<RawValue>)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    out.push((key, map.next_value()?));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A receipt envelope as read: parsed members plus `ext`'s raw text.
pub struct Envelope {
    pub members: Map<String, Value>,
    /// `ext` compacted and HTML-escaped the way Go re-marshals a `json.RawMessage`.
    pub ext_raw: Option<String>,
}

/// Reads one line/document: a bare receipt, or a flight-recorder entry wrapping one.
/// `Ok(None)` for a recorder entry that carries something other than a receipt.
pub fn read_envelope(text: &str) -> Result<Option<Envelope>, String> {
    read_envelope_in(text, false)
}

/// [`read_envelope`]; `wrapped`: `text` is a flight-recorder entry's `detail`, which holds a
/// receipt, never another entry (each level would be parsed again: nesting is a way to make the
/// verifier's memory grow with the file's square).
fn read_envelope_in(text: &str, wrapped: bool) -> Result<Option<Envelope>, String> {
    let RawMembers(members) = serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let has = |name: &str| members.iter().any(|(k, _)| k == name);
    if has("type") && has("detail") {
        if wrapped {
            return Err("a flight-recorder entry's detail is another entry, not a receipt".into());
        }
        if ["version", "action_record", "signature", "signer_key"].iter().any(|f| has(f)) {
            // Two receipts in one line: which one an auditor's tool reads is not ours to guess.
            return Err("a flight-recorder entry carries receipt fields beside its detail".into());
        }
        let mut kind = None;
        let mut detail = None;
        for (k, v) in &members {
            match k.as_str() {
                "type" => kind = Some(parse_strict(v.get())?),
                "detail" => detail = Some(v),
                _ => {}
            }
        }
        if kind != Some(Value::String("action_receipt".into())) {
            return Ok(None);
        }
        let Some(detail) = detail else { return Ok(None) };
        return match parse_strict(detail.get())? {
            Value::String(inner) => read_envelope_in(&inner, true),
            Value::Object(_) => read_envelope_in(detail.get(), true),
            _ => Err("flight-recorder detail is neither an object nor a JSON string".into()),
        };
    }
    let mut out = Map::new();
    let mut ext_raw = None;
    for (k, v) in members {
        if k == "ext" {
            ext_raw = Some(compact_raw(v.get()));
        }
        out.insert(k, parse_strict(v.get())?);
    }
    Ok(Some(Envelope { members: out, ext_raw }))
}

fn parse_strict(text: &str) -> Result<Value, String> {
    serde_json::from_str::<StrictValue>(text).map(|s| s.0).map_err(|e| format!("invalid JSON: {e}"))
}

/// Go `json.Marshal` of a `RawMessage`: whitespace outside strings dropped, HTML-unsafe
/// characters inside strings escaped, everything else byte for byte.
fn compact_raw(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\r' | '\n') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        assert!(read_envelope(r#"{"a":1,"a":2}"#).is_err());
        assert!(read_envelope(r#"{"action_record":{"x":{"y":1,"y":1}}}"#).is_err());
        assert!(read_envelope(r#"{"action_record":{"x":1}}"#).unwrap().is_some());
    }

    #[test]
    fn recorder_wrappers_are_unwrapped_or_skipped() {
        let wrapped = r#"{"type":"action_receipt","detail":{"version":1}}"#;
        let env = read_envelope(wrapped).unwrap().unwrap();
        assert_eq!(env.members.get("version"), Some(&Value::from(1)));
        let as_string = r#"{"type":"action_receipt","detail":"{\"version\":1}"}"#;
        assert!(read_envelope(as_string).unwrap().is_some());
        assert!(read_envelope(r#"{"type":"checkpoint","detail":{}}"#).unwrap().is_none());
    }

    #[test]
    fn ext_keeps_its_raw_order_and_gets_go_escaping() {
        let env = read_envelope(r#"{"ext": {"z": 1, "a": "<x> y"}}"#).unwrap().unwrap();
        assert_eq!(env.ext_raw.as_deref(), Some(r#"{"z":1,"a":"\u003cx\u003e y"}"#));
    }
}
