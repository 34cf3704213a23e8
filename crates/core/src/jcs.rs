//! Canonical JSON (RFC 8785, JCS): the one byte form a JSON value is hashed in, so that key
//! order, whitespace, escapes and number spelling do not change a hash. Used for the policy hash
//! receipts sign and for tool fingerprints, which a client SDK recomputes (README, "Capability
//! hash"): any JCS library gives the same bytes.
//!
//! - objects: members sorted by their keys' UTF-16 code units, no whitespace;
//! - strings: `"` and `\` escaped, control characters as `\b \f \n \r \t` or `\u00xx`, everything
//!   else as is (UTF-8);
//! - numbers: the IEEE double the text denotes, written as ECMAScript's `Number.prototype.toString`
//!   writes it (`1.0` → `1`, `1e21` → `1e+21`, `0.000001` → `0.000001`, `1e-7` → `1e-7`).

use serde_json::Value;

/// `v` in canonical form.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Appends `v` in canonical form.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(n.as_f64().unwrap_or(f64::NAN), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, x)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(x, out);
            }
            out.push(b'}');
        }
    }
}

/// A string with JCS escapes.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A double as ECMAScript writes it (shortest round-trip digits, then the spec's layout).
/// JSON has no NaN or infinity; a value that is one (it cannot come from parsed JSON) is `null`.
fn write_number(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if x == 0.0 {
        out.push(b'0');
        return;
    }
    // `{:e}` gives the shortest digits that read back as `x`: `d[.ddd]e<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i64 = exp.parse().unwrap_or(0);
    let k = i64::try_from(digits.len()).unwrap_or(1);
    // ECMAScript's n: the value is 0.d1d2… × 10^n.
    let n = exp + 1;
    if x < 0.0 {
        out.push(b'-');
    }
    let zeros = |count: i64, out: &mut Vec<u8>| {
        for _ in 0..count.max(0) {
            out.push(b'0');
        }
    };
    if k <= n && n <= 21 {
        out.extend_from_slice(digits.as_bytes());
        zeros(n - k, out);
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0).min(digits.len()));
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        zeros(-n, out);
        out.extend_from_slice(digits.as_bytes());
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.extend_from_slice(first.as_bytes());
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest.as_bytes());
        }
        out.push(b'e');
        out.push(if n > 0 { b'+' } else { b'-' });
        out.extend_from_slice((n - 1).abs().to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(to_vec(&v)).unwrap()
    }

    #[test]
    fn numbers_are_written_as_ecmascript_writes_them() {
        // RFC 8785 appendix B and the usual corner cases.
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("1.0", "1"),
            ("-1.5", "-1.5"),
            ("100", "100"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("9007199254740993", "9007199254740992"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("333333333.3333333", "333333333.3333333"),
            ("1E+2", "100"),
        ] {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn keys_sort_by_utf16_and_strings_escape_as_jcs_says() {
        assert_eq!(canon(r#"{ "b" : [1, {"z":1,"a":2}], "a": "x" }"#), r#"{"a":"x","b":[1,{"a":2,"z":1}]}"#);
        // U+1F600 (surrogates D83D…) sorts before U+FB01 in UTF-16, after it in UTF-8 / code points.
        assert_eq!(canon("{\"\u{fb01}\":1,\"\u{1f600}\":2}"), "{\"\u{1f600}\":2,\"\u{fb01}\":1}");
        assert_eq!(canon(r#""a\"b\\c\n\u0001\u00e9\/""#), "\"a\\\"b\\\\c\\n\\u0001\u{e9}/\"");
    }
}
