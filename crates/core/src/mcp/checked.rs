//! Skipping a JSON value while still reading it the way an SDK will: every string decoded (so a
//! lone UTF-16 surrogate escape such as `"\ud800"` is refused), every number parsed (so `1e400`,
//! which JavaScript and Python read as Infinity, is refused) and every key compared with
//! `__proto__` (an own key to `JSON.parse`, which the TypeScript SDKs' schema parsing then drops:
//! the tool gets other arguments than the filter read), without allocating.
//!
//! serde's `IgnoredAny` only checks the syntax: a value it skips could mean something to an
//! upstream parser that the filter can never read back (RFC 7493, I-JSON, forbids both). The filter
//! must be able to read every value the upstream executes on (arguments above all), so skipped
//! values go through [`Checked`] and raw-kept ones through [`readable`]; an answer the filter
//! rewrites goes through [`Unambiguous`] (no key twice either).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A value read completely and thrown away; with `UNIQUE`, also with no key twice in any object.
/// Use it as [`Checked`] or [`Unambiguous`].
pub struct Read<const UNIQUE: bool>;

/// A value that was read completely and thrown away.
pub type Checked = Read<false>;

/// A value read as [`Checked`] reads it and with no key twice in any object, at any depth: an
/// answer the filter rewrites must mean one thing to every client (JavaScript and Python keep
/// the last of two equal keys, a first-wins reader the first, so a list item
/// `{"name":"echo","name":"delete_all"}` would be judged on one name and shown with the other).
pub type Unambiguous = Read<true>;

impl<'de, const UNIQUE: bool> Deserialize<'de> for Read<UNIQUE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // deserialize_any (unlike deserialize_ignored_any) decodes strings and parses numbers;
        // serde_json's recursion limit still bounds the depth.
        d.deserialize_any(ReadVisitor::<UNIQUE>)
    }
}

struct ReadVisitor<const UNIQUE: bool>;

impl<'de, const UNIQUE: bool> Visitor<'de> for ReadVisitor<UNIQUE> {
    type Value = Read<UNIQUE>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Read)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Read)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Read)
    }
    // serde_json refuses a number beyond float64 itself ("number out of range").
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Read)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Read)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Read)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<Read<UNIQUE>>()?.is_some() {}
        Ok(Read)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut keys = KeySet::default();
        while let Some(Key(k)) = a.next_key::<Key>()? {
            refuse_proto_key::<A::Error>(&k)?;
            if UNIQUE && !keys.insert(k) {
                return Err(A::Error::custom("a duplicate key"));
            }
            a.next_value::<Read<UNIQUE>>()?;
        }
        Ok(Read)
    }
}

/// Reads the rest of an object as [`Checked`] does, for a visitor that met an object where it
/// wanted something else (the value is refused by its caller, but read all the same).
pub fn skip_map<'de, A: MapAccess<'de>>(a: A) -> Result<(), A::Error> {
    ReadVisitor::<false>.visit_map(a).map(|_| ())
}

/// The keys of one object: a short object is searched, past 16 keys a set keeps it linear (an
/// upstream may send one object with a million keys).
/// Nothing is allocated or seeded until a key is inserted.
#[derive(Default)]
struct KeySet<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<std::collections::HashSet<Cow<'de, str>>>,
}

impl<'de> KeySet<'de> {
    /// False when `k` was there already.
    fn insert(&mut self, k: Cow<'de, str>) -> bool {
        if let Some(many) = self.many.as_mut() {
            return many.insert(k);
        }
        if self.few.contains(&k) {
            return false;
        }
        self.few.push(k);
        if self.few.len() == 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// An object key, borrowed from the input when it has no escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// What the parse error says when a key is `__proto__` ([`is_proto_key_error`] finds it).
pub const PROTO_KEY: &str = "a \"__proto__\" key (JavaScript SDKs drop it from what they hand on)";

/// Refuses `__proto__` as a key (escaped spellings included: they decode to the same key).
pub fn refuse_proto_key<E: Error>(key: &str) -> Result<(), E> {
    if key == "__proto__" {
        Err(E::custom(PROTO_KEY))
    } else {
        Ok(())
    }
}

/// True when a serde_json error is [`refuse_proto_key`]'s.
pub fn is_proto_key_error(e: &serde_json::Error) -> bool {
    e.is_data() && e.to_string().starts_with(PROTO_KEY)
}

/// True when `message` is one JSON object every parser reads alike: complete, no lone surrogate,
/// no number beyond float64, no `__proto__`, no key twice (see [`Unambiguous`]).
pub fn unambiguous_object(message: &[u8]) -> bool {
    message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && serde_json::from_slice::<Unambiguous>(message).is_ok()
}

/// Reads a value the parser kept raw (`id`, `arguments`, `clientCapabilities`) as [`Checked`]
/// does: true when every string and number in it is readable.
pub fn readable(raw: &RawValue) -> bool {
    serde_json::from_str::<Checked>(raw.get()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(s: &str) -> bool {
        serde_json::from_str::<Checked>(s).is_ok()
    }

    #[test]
    fn refuses_what_no_two_parsers_read_alike() {
        assert!(readable(&serde_json::from_str::<Box<RawValue>>(r#"{"a":[1]}"#).unwrap_or_else(|_| unreachable!())));
        assert!(checks(r#"{"a":["x\ud83d\ude00y",1,-0,1.5e300,true,null,{"b":"\u00e9"}]}"#));
        assert!(!checks(r#"{"a":"\ud800"}"#), "lone high surrogate");
        assert!(!checks(r#"["\udc00"]"#), "lone low surrogate");
        assert!(!checks(r#"{"\ud800":1}"#), "in a key");
        assert!(!checks(r#"{"a":1e400}"#), "beyond float64");
        assert!(!checks(r#"[-1e400]"#));
        assert!(!checks(r#"{"a":{"__proto__":{"admin":true}}}"#), "a prototype key");
        assert!(!checks(r#"[{"__pro\u0074o__":1}]"#), "escaped, it is the same key");
        assert!(checks(r#"{"constructor":{"prototype":1},"__proto":1,"proto__":2}"#), "only __proto__ itself");
    }

    #[test]
    fn an_answer_to_rewrite_has_one_reading() {
        assert!(unambiguous_object(br#"{"result":{"tools":[{"name":"a"},{"name":"b","x":{"name":1}}]}}"#));
        assert!(!unambiguous_object(br#"{"result":{"tools":[{"name":"echo","name":"delete_all"}]}}"#), "in an item");
        assert!(!unambiguous_object(br#"{"result":{"tools":[],"tools":[{"name":"x"}]}}"#), "in the result");
        assert!(!unambiguous_object(br#"{"result":{"a":{"k":1,"\u006b":2}}}"#), "escaped, the same key");
        assert!(!unambiguous_object(br#"{"result":{"a":"\ud800"}}"#));
        assert!(!unambiguous_object(br#"[{"result":{}}]"#), "one object, not an array");
        // Integers past 64 bits are floats to serde_json, Infinity to nobody: read.
        assert!(checks("123456789012345678901234567890"));
    }
}
