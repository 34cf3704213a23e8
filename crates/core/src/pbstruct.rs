//! Reads one field of Envoy's request dynamic metadata out of its protobuf serialization, as JSON.
//!
//! Envoy's proxy-wasm `get_property(["metadata"])` returns the serialized
//! `envoy.config.core.v3.Metadata`:
//!
//! ```text
//! Metadata  { map<string, google.protobuf.Struct> filter_metadata = 1; typed_filter_metadata = 2 (skipped) }
//! Struct    { map<string, Value> fields = 1; }
//! Value     { oneof kind { NullValue null_value = 1; double number_value = 2; string string_value = 3;
//!                          bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; } }
//! ListValue { repeated Value values = 1; }
//! ```
//!
//! [`struct_field_json`] finds `filter_metadata[namespace].fields[key]` and renders that `Value`
//! as compact JSON (object keys sorted; integral numbers without a fraction, so a JWT's
//! `"exp": 1700000000` reads back as `1700000000`). Protobuf semantics are kept where hostile
//! bytes could exploit a difference: the last entry of a repeated map key wins, the last member
//! of a oneof wins, and repeated occurrences of one embedded message merge.
//!
//! Bounded and panic-free on any input: nesting deeper than [`MAX_DEPTH`] or output longer than
//! [`MAX_OUTPUT`] is an error, every read is checked.

use std::collections::BTreeMap;
use std::fmt;

/// Deepest `Value` nesting rendered (the top-level value is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Longest JSON text rendered, in bytes.
pub const MAX_OUTPUT: usize = 16 * 1024;

/// Why the bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PbError {
    /// A varint, fixed field or length-delimited field runs past the end.
    Truncated,
    /// A varint longer than 10 bytes.
    BadVarint,
    /// Wire type 3, 4, 6 or 7, or a known field with the wrong wire type.
    BadWireType,
    /// A map key or string value that is not UTF-8.
    InvalidUtf8,
    /// A NaN or infinite `number_value` (JSON has no spelling for it).
    NonFiniteNumber,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Rendered JSON longer than [`MAX_OUTPUT`].
    TooLarge,
}

impl fmt::Display for PbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PbError::Truncated => "protobuf field runs past the end of the buffer",
            PbError::BadVarint => "protobuf varint longer than 10 bytes",
            PbError::BadWireType => "unexpected protobuf wire type",
            PbError::InvalidUtf8 => "protobuf string is not UTF-8",
            PbError::NonFiniteNumber => "number_value is NaN or infinite",
            PbError::TooDeep => "metadata value nested too deeply",
            PbError::TooLarge => "metadata value too large",
        };
        f.write_str(s)
    }
}

impl std::error::Error for PbError {}

/// The JSON text of `filter_metadata[namespace].fields[key]`, `None` when either is absent.
pub fn struct_field_json(metadata_pb: &[u8], namespace: &str, key: &str) -> Result<Option<String>, PbError> {
    let Some(ns_struct) = map_lookup(&[metadata_pb], 1, namespace)? else {
        return Ok(None);
    };
    let Some(value) = map_lookup(&ns_struct, 1, key)? else {
        return Ok(None);
    };
    let mut out = String::new();
    render_value(&value, 1, &mut out)?;
    Ok(Some(out))
}

/// A message as the list of byte segments protobuf merges into it (repeated occurrences of one
/// embedded message field concatenate).
type Segments<'a> = Vec<&'a [u8]>;

#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, PbError> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let (&b, rest) = self.buf.split_first().ok_or(PbError::Truncated)?;
            self.buf = rest;
            v |= u64::from(b & 0x7f).checked_shl(7 * i).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(PbError::BadVarint)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PbError> {
        if n > self.buf.len() {
            return Err(PbError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `(field number, value)`, `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, PbError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Field::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| PbError::Truncated)?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            _ => return Err(PbError::BadWireType),
        };
        Ok(Some((number, field)))
    }
}

/// Calls `f` for every field of the message, in wire order across its segments.
fn for_each_field<'a>(msg: &[&'a [u8]], mut f: impl FnMut(u64, Field<'a>) -> Result<(), PbError>) -> Result<(), PbError> {
    for seg in msg {
        let mut r = Reader { buf: seg };
        while let Some((number, field)) = r.next_field()? {
            f(number, field)?;
        }
    }
    Ok(())
}

fn utf8(b: &[u8]) -> Result<&str, PbError> {
    std::str::from_utf8(b).map_err(|_| PbError::InvalidUtf8)
}

/// One map entry (`key = 1` string, `value = 2` message): its key and merged value.
fn map_entry<'a>(entry: &'a [u8]) -> Result<(&'a str, Segments<'a>), PbError> {
    let mut key: &[u8] = &[];
    let mut value: Segments<'a> = Vec::new();
    for_each_field(&[entry], |number, field| {
        match (number, field) {
            (1, Field::Bytes(b)) => key = b,
            (2, Field::Bytes(b)) => value.push(b),
            (1 | 2, _) => return Err(PbError::BadWireType),
            _ => {}
        }
        Ok(())
    })?;
    Ok((utf8(key)?, value))
}

/// Value of `wanted` in the map at field `map_field` of `msg`; the last entry with that key wins.
fn map_lookup<'a>(msg: &[&'a [u8]], map_field: u64, wanted: &str) -> Result<Option<Segments<'a>>, PbError> {
    let mut found = None;
    for_each_field(msg, |number, field| {
        if number == map_field {
            let Field::Bytes(entry) = field else {
                return Err(PbError::BadWireType);
            };
            let (k, v) = map_entry(entry)?;
            if k == wanted {
                found = Some(v);
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// The oneof member of a `Value` that is in force: the last one set, with repeated occurrences of
/// the same message member merged.
enum Kind<'a> {
    Null,
    Number(f64),
    Str(&'a [u8]),
    Bool(bool),
    Struct(Segments<'a>),
    List(Segments<'a>),
}

fn value_kind<'a>(value: &[&'a [u8]]) -> Result<Kind<'a>, PbError> {
    let mut kind = Kind::Null;
    for_each_field(value, |number, field| {
        kind = match (number, field, std::mem::replace(&mut kind, Kind::Null)) {
            (1, Field::Varint(_), _) => Kind::Null,
            (2, Field::Fixed64(bits), _) => Kind::Number(f64::from_bits(bits)),
            (3, Field::Bytes(b), _) => Kind::Str(b),
            (4, Field::Varint(v), _) => Kind::Bool(v != 0),
            (5, Field::Bytes(b), Kind::Struct(mut segs)) => {
                segs.push(b);
                Kind::Struct(segs)
            }
            (5, Field::Bytes(b), _) => Kind::Struct(vec![b]),
            (6, Field::Bytes(b), Kind::List(mut segs)) => {
                segs.push(b);
                Kind::List(segs)
            }
            (6, Field::Bytes(b), _) => Kind::List(vec![b]),
            (1..=6, _, _) => return Err(PbError::BadWireType),
            (_, _, previous) => previous,
        };
        Ok(())
    })?;
    Ok(kind)
}

fn push(out: &mut String, s: &str) -> Result<(), PbError> {
    if out.len().saturating_add(s.len()) > MAX_OUTPUT {
        return Err(PbError::TooLarge);
    }
    out.push_str(s);
    Ok(())
}

fn push_json_string(out: &mut String, raw: &[u8]) -> Result<(), PbError> {
    let s = utf8(raw)?;
    // Escaping at most sextuples a character; refuse before allocating when that cannot fit.
    if out.len().saturating_add(s.len()) > MAX_OUTPUT {
        return Err(PbError::TooLarge);
    }
    let quoted = serde_json::to_string(s).map_err(|_| PbError::InvalidUtf8)?;
    push(out, &quoted)
}

/// Largest magnitude printed as an integer: every integer up to 2^53 is exact in an f64.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn push_number(out: &mut String, x: f64) -> Result<(), PbError> {
    if !x.is_finite() {
        return Err(PbError::NonFiniteNumber);
    }
    if x.fract() == 0.0 && x.abs() <= MAX_EXACT_INT {
        // Exact: |x| <= 2^53 fits i64 and the conversion loses nothing.
        #[allow(clippy::cast_possible_truncation)]
        let i = x as i64;
        return push(out, &i.to_string());
    }
    let n = serde_json::Number::from_f64(x).ok_or(PbError::NonFiniteNumber)?;
    push(out, &n.to_string())
}

fn render_value(value: &[&[u8]], depth: usize, out: &mut String) -> Result<(), PbError> {
    if depth > MAX_DEPTH {
        return Err(PbError::TooDeep);
    }
    match value_kind(value)? {
        Kind::Null => push(out, "null"),
        Kind::Number(x) => push_number(out, x),
        Kind::Str(b) => push_json_string(out, b),
        Kind::Bool(b) => push(out, if b { "true" } else { "false" }),
        Kind::Struct(segs) => render_struct(&segs, depth, out),
        Kind::List(segs) => render_list(&segs, depth, out),
    }
}

fn render_struct(st: &[&[u8]], depth: usize, out: &mut String) -> Result<(), PbError> {
    let mut fields: BTreeMap<&str, Segments<'_>> = BTreeMap::new();
    for_each_field(st, |number, field| {
        if number == 1 {
            let Field::Bytes(entry) = field else {
                return Err(PbError::BadWireType);
            };
            let (k, v) = map_entry(entry)?;
            fields.insert(k, v);
        }
        Ok(())
    })?;
    push(out, "{")?;
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            push(out, ",")?;
        }
        push_json_string(out, k.as_bytes())?;
        push(out, ":")?;
        render_value(v, depth + 1, out)?;
    }
    push(out, "}")
}

fn render_list(list: &[&[u8]], depth: usize, out: &mut String) -> Result<(), PbError> {
    push(out, "[")?;
    let mut first = true;
    for_each_field(list, |number, field| {
        if number == 1 {
            let Field::Bytes(v) = field else {
                return Err(PbError::BadWireType);
            };
            if !first {
                push(out, ",")?;
            }
            first = false;
            render_value(&[v], depth + 1, out)?;
        }
        Ok(())
    })?;
    push(out, "]")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    // --- a tiny encoder, for hand-built inputs -------------------------------------------------

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(n << 3 | 2, &mut out);
        varint(b.len() as u64, &mut out);
        out.extend_from_slice(b);
        out
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        [bytes_field(1, k.as_bytes()), bytes_field(2, v)].concat()
    }

    fn num(x: f64) -> Vec<u8> {
        let mut out = vec![2 << 3 | 1];
        out.extend_from_slice(&x.to_bits().to_le_bytes());
        out
    }

    fn string(s: &str) -> Vec<u8> {
        bytes_field(3, s.as_bytes())
    }

    fn strukt(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
        fields.iter().flat_map(|(k, v)| bytes_field(1, &entry(k, v))).collect()
    }

    fn metadata(ns: &str, st: &[u8]) -> Vec<u8> {
        bytes_field(1, &entry(ns, st))
    }

    const NS: &str = "envoy.filters.http.jwt_authn";

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../fixtures/pbstruct/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn fixture_text(name: &str) -> String {
        String::from_utf8(fixture(name)).unwrap().trim_end().to_owned()
    }

    // --- fixtures produced by Python protobuf (fixtures/pbstruct/gen.py) ------------------------

    #[test]
    fn jwt_payload_fixture_matches_python_json() {
        let pb = fixture("jwt_metadata.binpb");
        let got = struct_field_json(&pb, NS, "jwt_payload").unwrap().unwrap();
        assert_eq!(got, fixture_text("jwt_payload.json"));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["sub"], "alice");
        assert_eq!(v["exp"].as_u64(), Some(1_900_000_000));
        assert_eq!(v["act"]["act"]["sub"], "search");
        assert_eq!(v["groups"][1], "ops");
    }

    #[test]
    fn metadata_captured_from_envoy_after_jwt_authn() {
        // Bytes Envoy 1.40 returned for get_property(["metadata"]) after jwt_authn verified a token.
        let pb = fixture("envoy_jwt_metadata.binpb");
        let got = struct_field_json(&pb, NS, "jwt_payload").unwrap().unwrap();
        assert_eq!(got, fixture_text("envoy_jwt_payload.json"));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["sub"], "alice");
        assert_eq!(v["act"]["sub"], "agent-7");
        assert!(v["exp"].is_u64(), "exp renders as an integer: {got}");
    }

    #[test]
    fn other_namespace_and_key_in_the_fixture() {
        let pb = fixture("jwt_metadata.binpb");
        assert_eq!(struct_field_json(&pb, "other.ns", "flag").unwrap().as_deref(), Some("true"));
        assert_eq!(struct_field_json(&pb, NS, "nope").unwrap(), None);
        assert_eq!(struct_field_json(&pb, "absent", "jwt_payload").unwrap(), None);
    }

    #[test]
    fn scalar_fixture_covers_every_kind() {
        let pb = fixture("scalars_metadata.binpb");
        let got = struct_field_json(&pb, "test.ns", "v").unwrap().unwrap();
        assert_eq!(got, fixture_text("scalars_v.json"));
    }

    #[test]
    fn every_fixture_prefix_is_handled_without_panic() {
        for name in ["jwt_metadata.binpb", "scalars_metadata.binpb", "envoy_jwt_metadata.binpb"] {
            let pb = fixture(name);
            for n in 0..pb.len() {
                let _ = struct_field_json(&pb[..n], NS, "jwt_payload");
                let _ = struct_field_json(&pb[..n], "test.ns", "v");
            }
        }
    }

    // --- hand-built inputs --------------------------------------------------------------------

    #[test]
    fn numbers() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1_700_000_000.0, "1700000000"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (1e300, "1e+300"),
        ];
        for (x, want) in cases {
            let pb = metadata(NS, &strukt(&[("n", num(*x))]));
            assert_eq!(struct_field_json(&pb, NS, "n").unwrap().as_deref(), Some(*want), "{x}");
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let pb = metadata(NS, &strukt(&[("n", num(bad))]));
            assert_eq!(struct_field_json(&pb, NS, "n"), Err(PbError::NonFiniteNumber));
        }
    }

    #[test]
    fn strings_are_escaped() {
        let pb = metadata(NS, &strukt(&[("s", string("a\"b\\c\n\u{1}é"))]));
        assert_eq!(struct_field_json(&pb, NS, "s").unwrap().as_deref(), Some(r#""a\"b\\c\n\u0001é""#));
        let pb = metadata(NS, &strukt(&[("s", bytes_field(3, &[0xff, 0xfe]))]));
        assert_eq!(struct_field_json(&pb, NS, "s"), Err(PbError::InvalidUtf8));
    }

    #[test]
    fn empty_value_is_null_and_empty_struct_is_object() {
        let pb = metadata(NS, &strukt(&[("v", Vec::new()), ("o", bytes_field(5, &[]))]));
        assert_eq!(struct_field_json(&pb, NS, "v").unwrap().as_deref(), Some("null"));
        assert_eq!(struct_field_json(&pb, NS, "o").unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn last_map_entry_and_last_oneof_member_win() {
        let st = strukt(&[("k", string("first")), ("k", string("second"))]);
        let pb = [metadata(NS, &strukt(&[("k", string("old-ns"))])), metadata(NS, &st)].concat();
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().as_deref(), Some(r#""second""#));
        let v = [string("s"), vec![4 << 3, 1]].concat();
        let pb = metadata(NS, &strukt(&[("k", v)]));
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().as_deref(), Some("true"));
    }

    #[test]
    fn repeated_embedded_messages_merge() {
        // Two struct_value occurrences merge; a list_value in between would have reset it.
        let a = bytes_field(5, &strukt(&[("a", num(1.0))]));
        let b = bytes_field(5, &strukt(&[("b", num(2.0))]));
        let pb = metadata(NS, &strukt(&[("k", [a.clone(), b.clone()].concat())]));
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().as_deref(), Some(r#"{"a":1,"b":2}"#));
        let l = bytes_field(6, &bytes_field(1, &num(3.0)));
        let pb = metadata(NS, &strukt(&[("k", [a, l, b].concat())]));
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().as_deref(), Some(r#"{"b":2}"#));
    }

    #[test]
    fn typed_filter_metadata_and_unknown_fields_are_skipped() {
        let mut pb = bytes_field(2, &entry(NS, b"\x0a\x03abc"));
        pb.extend(metadata(NS, &strukt(&[("k", string("v"))])));
        varint(15 << 3 | 5, &mut pb); // fixed32 unknown
        pb.extend([1, 2, 3, 4]);
        varint(16 << 3, &mut pb); // varint unknown
        varint(150, &mut pb);
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().as_deref(), Some(r#""v""#));
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = string("leaf");
        for _ in 0..MAX_DEPTH - 1 {
            v = bytes_field(6, &bytes_field(1, &v));
        }
        let pb = metadata(NS, &strukt(&[("k", v.clone())]));
        let got = struct_field_json(&pb, NS, "k").unwrap().unwrap();
        assert_eq!(got, format!("{}\"leaf\"{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1)));
        let v = bytes_field(6, &bytes_field(1, &v));
        let pb = metadata(NS, &strukt(&[("k", v)]));
        assert_eq!(struct_field_json(&pb, NS, "k"), Err(PbError::TooDeep));
    }

    #[test]
    fn output_is_bounded() {
        let big = "x".repeat(MAX_OUTPUT);
        let pb = metadata(NS, &strukt(&[("k", string(&big))]));
        assert_eq!(struct_field_json(&pb, NS, "k"), Err(PbError::TooLarge));
        let item = bytes_field(1, &string(&"y".repeat(100)));
        let list = bytes_field(6, &item.repeat(200));
        let pb = metadata(NS, &strukt(&[("k", list)]));
        assert_eq!(struct_field_json(&pb, NS, "k"), Err(PbError::TooLarge));
        let fits = "z".repeat(MAX_OUTPUT - 2);
        let pb = metadata(NS, &strukt(&[("k", string(&fits))]));
        assert_eq!(struct_field_json(&pb, NS, "k").unwrap().map(|s| s.len()), Some(MAX_OUTPUT));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(struct_field_json(&[], NS, "k"), Ok(None));
        assert_eq!(struct_field_json(&[0x0a], NS, "k"), Err(PbError::Truncated));
        assert_eq!(struct_field_json(&[0x0a, 0x05, 0x0a], NS, "k"), Err(PbError::Truncated));
        assert_eq!(struct_field_json(&[0x0b], NS, "k"), Err(PbError::BadWireType));
        assert_eq!(struct_field_json(&[0x08, 0x01], NS, "k"), Err(PbError::BadWireType));
        assert_eq!(struct_field_json(&[0x80; 11], NS, "k"), Err(PbError::BadVarint));
        // A length that does not fit in usize on 32-bit and runs past the end everywhere.
        let mut huge = vec![0x0a];
        varint(u64::MAX, &mut huge);
        assert_eq!(struct_field_json(&huge, NS, "k"), Err(PbError::Truncated));
        let bad_key = bytes_field(1, &[bytes_field(1, &[0xc3]), bytes_field(2, &[])].concat());
        assert_eq!(struct_field_json(&bad_key, NS, "k"), Err(PbError::InvalidUtf8));
    }

    /// Deterministic xorshift; no dependency needed.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let base = fixture("jwt_metadata.binpb");
        for _ in 0..20_000 {
            let len = (rng(&mut seed) % 96) as usize;
            let random: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            let _ = struct_field_json(&random, NS, "jwt_payload");
            let mut m = base.clone();
            for _ in 0..1 + rng(&mut seed) % 4 {
                let i = (rng(&mut seed) as usize) % m.len();
                m[i] = rng(&mut seed) as u8;
            }
            let cut = (rng(&mut seed) as usize) % (m.len() + 1);
            if let Ok(Some(json)) = struct_field_json(&m[..cut], NS, "jwt_payload") {
                assert!(json.len() <= MAX_OUTPUT);
                serde_json::from_str::<serde_json::Value>(&json).expect("rendered JSON parses");
            }
        }
    }

    #[test]
    fn deep_hostile_nesting_is_cheap_to_refuse() {
        // 10k nested list_values: refused at MAX_DEPTH, no stack overflow.
        let mut v = string("x");
        for _ in 0..10_000 {
            v = bytes_field(6, &bytes_field(1, &v));
        }
        let pb = metadata(NS, &strukt(&[("k", v)]));
        assert_eq!(struct_field_json(&pb, NS, "k"), Err(PbError::TooDeep));
    }
}
