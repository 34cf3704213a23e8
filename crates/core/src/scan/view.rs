//! What the scanner reads of a JSON message: its bytes with every string's escapes decoded
//! (`"\u0041KIA…"` is read as `AKIA…`, as every JSON parser hands it to the tool or the model),
//! and where each string sits in both forms, so that a finding can be redacted in place.
//!
//! Every byte of the message is in the view: strings decoded, everything between them as it is.
//! No JSON structure is trusted or needed: whatever a client could parse out of the message is
//! in the view (duplicate keys, odd whitespace and all). A string the view cannot decode (a bad
//! escape, no closing quote) is an unreadable message: the caller fails closed.
//!
//! The one-level decoders agents hide values behind live here too: base64 / base64url, hex,
//! percent encoding and a second level of JSON escapes.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// One JSON string of the message: `view` is its decoded content in the view, `raw` the string
/// in the message, quotes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringToken {
    pub view: (usize, usize),
    pub raw: (usize, usize),
    /// Its content has non-ASCII or control characters: injected instructions are looked for
    /// in its folded form too.
    pub needs_fold: bool,
}

/// The view of one message.
#[derive(Debug)]
pub struct View<'a> {
    pub text: Cow<'a, [u8]>,
    pub strings: Vec<StringToken>,
}

/// Why a message has no view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// A backslash escape no JSON parser accepts.
    BadEscape,
    /// A string without its closing quote.
    Unterminated,
    /// A NUL byte: no UTF-8 JSON text holds one raw, but UTF-16 and UTF-32 JSON do, and a
    /// parser that sniffs the encoding (Python's `json.loads` on bytes) reads it: a view of the
    /// bytes would not be what that client reads.
    NulByte,
}

/// The view of `message` (a JSON text).
pub fn view(message: &[u8]) -> Result<View<'_>, ViewError> {
    if memchr::memchr(0, message).is_some() {
        return Err(ViewError::NulByte);
    }
    let ascii = message.is_ascii();
    let mut strings = Vec::with_capacity(message.len() / 24 + 4);
    // Allocated at the first escape: until then the view is the message itself.
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0usize;
    while let Some(q) = memchr::memchr(b'"', message.get(i..).unwrap_or_default()) {
        let open = i + q;
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(message.get(i..=open).unwrap_or_default());
        }
        let view_start = out.as_ref().map_or(open + 1, Vec::len);
        let mut pos = open + 1;
        let mut escaped_special = false;
        loop {
            let rest = message.get(pos..).unwrap_or_default();
            let Some(k) = memchr::memchr2(b'"', b'\\', rest) else { return Err(ViewError::Unterminated) };
            let at = pos + k;
            if let Some(o) = out.as_mut() {
                o.extend_from_slice(message.get(pos..at).unwrap_or_default());
            }
            if message.get(at) == Some(&b'"') {
                let view_end = out.as_ref().map_or(at, Vec::len);
                let fold = !ascii && !message.get(open + 1..at).unwrap_or_default().is_ascii();
                strings.push(StringToken {
                    view: (view_start, view_end),
                    raw: (open, at + 1),
                    needs_fold: fold || escaped_special,
                });
                if let Some(o) = out.as_mut() {
                    o.push(b'"');
                }
                i = at + 1;
                break;
            }
            let o = out.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(message.len());
                v.extend_from_slice(message.get(..at).unwrap_or_default());
                v
            });
            let (c, used) = unescape_at(message, at)?;
            if !(c.is_ascii() && (c >= ' ' || matches!(c, '\t' | '\n' | '\r'))) {
                escaped_special = true;
            }
            let mut buf = [0u8; 4];
            o.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            pos = at + used;
        }
    }
    let text = match out {
        Some(mut o) => {
            o.extend_from_slice(message.get(i..).unwrap_or_default());
            Cow::Owned(o)
        }
        None => Cow::Borrowed(message),
    };
    Ok(View { text, strings })
}

/// The character of the escape at `at` (a backslash) and how many bytes it took. A lone
/// surrogate reads as U+FFFD (it is no letter of any secret).
fn unescape_at(s: &[u8], at: usize) -> Result<(char, usize), ViewError> {
    let c = match s.get(at + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let hi = hex4(s, at + 2).ok_or(ViewError::BadEscape)?;
            if (0xD800..0xDC00).contains(&hi) && s.get(at + 6) == Some(&b'\\') && s.get(at + 7) == Some(&b'u') {
                if let Some(lo) = hex4(s, at + 8).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return Ok((char::from_u32(cp).unwrap_or('\u{FFFD}'), 12));
                }
            }
            return Ok((char::from_u32(hi).unwrap_or('\u{FFFD}'), 6));
        }
        _ => return Err(ViewError::BadEscape),
    };
    Ok((c, 2))
}

fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let h = s.get(at..at + 4)?;
    let text = std::str::from_utf8(h).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Base64 in either alphabet, padded or not, as lenient as the decoders agents use.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent).with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// `run` decoded as base64 (standard or URL-safe, by the characters it uses; both at once as
/// Python's `urlsafe_b64decode` reads them: `-` and `_` are `+` and `/`).
pub fn base64(run: &[u8]) -> Option<Vec<u8>> {
    let url = run.iter().any(|b| matches!(b, b'-' | b'_'));
    let std = run.iter().any(|b| matches!(b, b'+' | b'/'));
    if url && std {
        let translated: Vec<u8> = run
            .iter()
            .map(|b| match b {
                b'-' => b'+',
                b'_' => b'/',
                b => *b,
            })
            .collect();
        return STANDARD.decode(translated).ok();
    }
    let engine = if url { &URL_SAFE } else { &STANDARD };
    engine.decode(run).ok()
}

/// True when `s` holds an HTML character reference (`&#103;`, `&#x67;`, `&lt;`).
pub fn has_html_entity(s: &[u8]) -> bool {
    memchr::memchr_iter(b'&', s).any(|i| html_entity_at(s, i).is_some())
}

/// The character of the reference at `at` (an `&`) and how many bytes it takes: numeric ones
/// with or without their `;` (as Python's `html.unescape` and browsers read them), and the
/// named ones markup escapes with.
fn html_entity_at(s: &[u8], at: usize) -> Option<(char, usize)> {
    let rest = s.get(at + 1..)?;
    if rest.first() == Some(&b'#') {
        let (hex, digits_from) = if matches!(rest.get(1), Some(b'x' | b'X')) { (true, 2) } else { (false, 1) };
        let digits = rest.get(digits_from..)?;
        let n = digits.iter().take(8).take_while(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() }).count();
        if n == 0 {
            return None;
        }
        let text = std::str::from_utf8(digits.get(..n)?).ok()?;
        let cp = u32::from_str_radix(text, if hex { 16 } else { 10 }).ok()?;
        let semi = usize::from(digits.get(n) == Some(&b';'));
        return Some((char::from_u32(cp).unwrap_or('\u{FFFD}'), 1 + digits_from + n + semi));
    }
    const NAMED: [(&[u8], char); 6] =
        [(b"amp;", '&'), (b"lt;", '<'), (b"gt;", '>'), (b"quot;", '"'), (b"apos;", '\''), (b"nbsp;", ' ')];
    NAMED.iter().find(|(name, _)| rest.starts_with(name)).map(|(name, c)| (*c, 1 + name.len()))
}

/// `s` with its HTML character references decoded once (other bytes as they are).
pub fn html_unescape(s: &[u8]) -> Vec<u8> {
    unescape_once(s, b'&', html_entity_at)
}

/// `s` with each escape `decode` reads at a `marker` byte decoded once; what does not decode is
/// kept as it is.
fn unescape_once(s: &[u8], marker: u8, decode: impl Fn(&[u8], usize) -> Option<(char, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(b) = s.get(i) {
        if *b == marker {
            if let Some((c, used)) = decode(s, i) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += used;
                continue;
            }
        }
        out.push(*b);
        i += 1;
    }
    out
}

/// `run` (an even number of hex digits) decoded.
pub fn hex(run: &[u8]) -> Option<Vec<u8>> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    if !run.len().is_multiple_of(2) {
        return None;
    }
    // Sized once: collecting an `Option<Vec>` from the pairs grows the vector step by step.
    let mut out = Vec::with_capacity(run.len() / 2);
    for p in run.chunks_exact(2) {
        out.push((nibble(*p.first()?)? << 4) | nibble(*p.get(1)?)?);
    }
    Some(out)
}

/// `run` decoded as RFC 4648 base32 (either case; without padding, trailing bits dropped).
pub fn base32(run: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(run.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in run {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// True when `s` holds a `%XX` escape.
pub fn has_percent_escape(s: &[u8]) -> bool {
    memchr::memchr_iter(b'%', s).any(|i| s.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

/// `s` with every `%XX` decoded (other bytes as they are).
pub fn percent(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(b) = s.get(i) {
        if *b == b'%' {
            if let Some(v) =
                s.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(*b);
        i += 1;
    }
    out
}

/// `s` with JSON escapes decoded once more (text that is itself an escaped JSON document);
/// escapes that do not decode are kept as they are.
pub fn json_unescape(s: &[u8]) -> Vec<u8> {
    unescape_once(s, b'\\', |s, i| unescape_at(s, i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_escapes_is_its_own_view() {
        let m = br#"{"a":"xy","b":[1,"z"]}"#;
        let v = view(m).unwrap();
        assert!(matches!(v.text, Cow::Borrowed(_)));
        let contents: Vec<&[u8]> = v.strings.iter().map(|s| &v.text[s.view.0..s.view.1]).collect();
        assert_eq!(contents, [&b"a"[..], b"xy", b"b", b"z"]);
        assert_eq!(&m[v.strings[1].raw.0..v.strings[1].raw.1], b"\"xy\"");
    }

    #[test]
    fn escapes_are_decoded_as_a_parser_reads_them() {
        let m = br#"{"k":"\u0041KIA\"x\ud83d\ude00","n":"\ud800"}"#;
        let v = view(m).unwrap();
        let s = v.strings[1];
        assert_eq!(&v.text[s.view.0..s.view.1], "AKIA\"x😀".as_bytes());
        assert!(s.needs_fold, "non-ASCII after decoding");
        let n = v.strings[3];
        assert_eq!(&v.text[n.view.0..n.view.1], "\u{FFFD}".as_bytes());
        assert_eq!(&m[s.raw.0..s.raw.1], br#""\u0041KIA\"x\ud83d\ude00""#);
    }

    #[test]
    fn unreadable_strings_are_errors() {
        assert_eq!(view(br#"{"a":"\q"}"#).unwrap_err(), ViewError::BadEscape);
        assert_eq!(view(br#"{"a":"open"#).unwrap_err(), ViewError::Unterminated);
        let utf16: Vec<u8> = "{\"a\":\"ghp_x\"}".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(view(&utf16).unwrap_err(), ViewError::NulByte, "UTF-16 JSON is not read as bytes");
    }

    #[test]
    fn one_level_decoders() {
        assert_eq!(base64(b"QUtJQQ").unwrap(), b"AKIA");
        assert_eq!(base64(b"QUtJQQ==").unwrap(), b"AKIA");
        assert_eq!(hex(b"414b4941").unwrap(), b"AKIA");
        assert_eq!(percent(b"%41KIA%2"), b"AKIA%2");
        assert!(has_percent_escape(b"a%2Fb") && !has_percent_escape(b"100%"));
        assert_eq!(json_unescape(br#"\u0041KIA \q"#), br#"AKIA \q"#);
        assert_eq!(html_unescape(b"&#103;hp_ &#x67&#X68;p &lt;b&gt; &amp;amp; & &#;"), b"ghp_ ghp <b> &amp; & &#;");
        assert!(has_html_entity(b"a &#65; b") && !has_html_entity(b"fish & chips"));
        assert_eq!(base64(b"Pz8/Z2hw-x").unwrap(), base64(b"Pz8/Z2hw+x").unwrap(), "both alphabets at once");
    }
}
