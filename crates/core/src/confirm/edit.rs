//! Byte-level edits of a JSON message: members found where they sit, removed, replaced or
//! inserted, every other byte left as the client or the upstream wrote it (the request the
//! upstream runs is the one the user approved, not a re-serialisation of it).
//!
//! Callers hand in messages that have one reading (duplicate keys were refused before:
//! [`crate::mcp::checked::unambiguous_object`], the request classifier), so a member named
//! once is the member every SDK reads.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One member of an object: its (decoded) key and where its value sits in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    pub value: (usize, usize),
}

struct Pairs<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Pairs<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key::<String>()? {
                    out.push((k, a.next_value::<&'de RawValue>()?));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The span of the whole message, whitespace around it trimmed.
pub fn whole(message: &[u8]) -> (usize, usize) {
    let start = message.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    let end = message.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    (start, end)
}

/// The members of the object at `span`, in order; `None` when it is no object.
pub fn members(message: &[u8], span: (usize, usize)) -> Option<Vec<Member>> {
    let text = message.get(span.0..span.1)?;
    let pairs: Pairs<'_> = serde_json::from_slice(text).ok()?;
    let base = message.as_ptr() as usize;
    pairs
        .0
        .into_iter()
        .map(|(key, raw)| {
            let start = (raw.get().as_ptr() as usize).checked_sub(base)?;
            let end = start + raw.get().len();
            (message.get(start..end)? == raw.get().as_bytes()).then_some(Member { key, value: (start, end) })
        })
        .collect()
}

/// The member `key` of `members`.
pub fn find<'m>(members: &'m [Member], key: &str) -> Option<&'m Member> {
    members.iter().find(|m| m.key == key)
}

/// A string value as every JSON parser reads it (escapes decoded); `None` for any other value.
pub fn string_at(message: &[u8], span: (usize, usize)) -> Option<String> {
    serde_json::from_slice::<String>(message.get(span.0..span.1)?).ok()
}

/// `text` (one JSON value) with the whitespace between tokens removed and every string in one
/// spelling (escapes decoded, written back as JCS writes strings); numbers and member order stay
/// as sent. Two texts with the same compact form are one value to every JSON parser: unlike a
/// canonical form, `3` and `3.0`, `9007199254740993` and `…992`, or members in another order
/// (which servers that keep insertion order see) stay different. `None` when a string cannot
/// be read.
pub fn compact(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => {
                let end = string_end(text, i)?;
                let s: String = serde_json::from_slice(text.get(i..end)?).ok()?;
                crate::jcs::write_string(&s, &mut out);
                i = end;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The index after the closing quote of the string that opens at `start`.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    loop {
        match text.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// One replacement of `range` by `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: (usize, usize),
    pub with: Vec<u8>,
}

/// The edit that removes member `index` of the object at `span` (its key, value and one comma).
pub fn remove(message: &[u8], span: (usize, usize), members: &[Member], index: usize) -> Option<Edit> {
    let m = members.get(index)?;
    let range = if index > 0 {
        // From the end of the previous value: `, "key": value`.
        (members.get(index - 1)?.value.1, m.value.1)
    } else if members.len() > 1 {
        // The first of several: from after `{` up to and including the comma after its value.
        let comma = m.value.1 + message.get(m.value.1..)?.iter().position(|b| *b == b',')?;
        (span.0 + 1, comma + 1)
    } else {
        (span.0 + 1, span.1.checked_sub(1)?)
    };
    Some(Edit { range, with: Vec::new() })
}

/// The edit that replaces a member's value.
pub fn replace(value: (usize, usize), with: Vec<u8>) -> Edit {
    Edit { range: value, with }
}

/// The edit that adds `"key":value` as the first member of the object at `span`.
pub fn insert_first(span: (usize, usize), members: &[Member], key: &str, value: &[u8]) -> Edit {
    let mut with = Vec::with_capacity(key.len() + value.len() + 4);
    crate::jcs::write_string(key, &mut with);
    with.push(b':');
    with.extend_from_slice(value);
    if !members.is_empty() {
        with.push(b',');
    }
    Edit { range: (span.0 + 1, span.0 + 1), with }
}

/// `message` with `edits` made (they must not overlap).
pub fn apply(message: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|e| std::cmp::Reverse(e.range.0));
    let mut out = message.to_vec();
    for e in edits {
        if e.range.0 <= e.range.1 && e.range.1 <= out.len() {
            out.splice(e.range.0..e.range.1, e.with);
        }
    }
    out
}

/// A JSON string literal of `s`.
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::jcs::write_string(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(m: &[u8]) -> Vec<Member> {
        members(m, whole(m)).unwrap()
    }

    #[test]
    fn members_are_found_where_they_sit_with_escaped_keys_decoded() {
        let m = br#" {"a": 1, "b\u0063" : {"x":[1,2]} ,"d":"e"} "#;
        let ms = top(m);
        let keys: Vec<&str> = ms.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["a", "bc", "d"]);
        let bc = find(&ms, "bc").unwrap();
        assert_eq!(&m[bc.value.0..bc.value.1], br#"{"x":[1,2]}"#);
        assert_eq!(string_at(m, find(&ms, "d").unwrap().value).as_deref(), Some("e"));
        assert!(members(b"[1]", (0, 3)).is_none());
    }

    #[test]
    fn removing_any_member_leaves_valid_json_with_the_rest_untouched() {
        let m = br#"{"a": 1, "b" : {"x":[1,2]} ,"c":"e"}"#;
        let ms = top(m);
        for (i, expect) in [r#"{"b":{"x":[1,2]},"c":"e"}"#, r#"{"a":1,"c":"e"}"#, r#"{"a":1,"b":{"x":[1,2]}}"#].iter().enumerate()
        {
            let out = apply(m, vec![remove(m, whole(m), &ms, i).unwrap()]);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v, serde_json::from_str::<serde_json::Value>(expect).unwrap(), "{}", String::from_utf8_lossy(&out));
        }
        let one = br#"{ "only": true }"#;
        let out = apply(one, vec![remove(one, whole(one), &top(one), 0).unwrap()]);
        assert_eq!(out, b"{}");
        // Two removals at once (the first and the last).
        let out = apply(m, vec![remove(m, whole(m), &ms, 0).unwrap(), remove(m, whole(m), &ms, 2).unwrap()]);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), serde_json::json!({"b":{"x":[1,2]}}));
    }

    #[test]
    fn the_compact_form_keeps_what_parsers_tell_apart() {
        let c = |t: &str| String::from_utf8(compact(t.as_bytes()).unwrap()).unwrap();
        assert_eq!(c(" { \"a\" : [1, 2.50 ,\"x y\"], \"\\u0062\":\"\\/\" } "), r#"{"a":[1,2.50,"x y"],"b":"/"}"#);
        assert_ne!(c(r#"{"n":3}"#), c(r#"{"n":3.0}"#));
        assert_ne!(c(r#"{"n":9007199254740993}"#), c(r#"{"n":9007199254740992}"#));
        assert_ne!(c(r#"{"a":1,"b":2}"#), c(r#"{"b":2,"a":1}"#));
        assert!(compact(br#"{"a":"\ud800"}"#).is_none());
    }

    #[test]
    fn replace_and_insert() {
        let m = br#"{"s":"old","n":2}"#;
        let ms = top(m);
        let out = apply(m, vec![replace(find(&ms, "s").unwrap().value, json_string("new~\"x"))]);
        assert_eq!(out, br#"{"s":"new~\"x","n":2}"#);
        let out = apply(m, vec![insert_first(whole(m), &ms, "k", b"1")]);
        assert_eq!(out, br#"{"k":1,"s":"old","n":2}"#);
        let e = b"{}";
        assert_eq!(apply(e, vec![insert_first(whole(e), &[], "k", b"1")]), br#"{"k":1}"#);
    }
}
