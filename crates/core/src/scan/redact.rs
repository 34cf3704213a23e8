//! A message with what the scan found replaced in place, still one valid JSON text: a string
//! stays a string (its found spans become markers such as `[REDACTED:github_classic_pat]`, or the
//! whole string one marker when the finding was in a decoded or folded form of it), and a
//! number that holds a card number becomes the marker string. Everything else is copied byte
//! for byte, so a redacted MCP result is still the result it was.

use super::catalog::Span;
use super::view::View;
use crate::mcp::error::push_json_string;

/// One replacement: the view span and the marker that stands in for it.
#[derive(Debug, Clone)]
pub struct Redaction {
    pub span: Span,
    /// The whole string that holds the span goes (a decoded or folded finding).
    pub whole_string: bool,
    pub marker: String,
}

/// `message` (whose view is `view`) with `redactions` applied.
pub fn redact(message: &[u8], view: &View<'_>, redactions: &[Redaction]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    // Raw bytes are copied up to here.
    let mut raw_at = 0usize;
    // Outside strings the view and the message differ by a fixed offset since the last string.
    let mut delta: isize = 0;
    let mut pending: Vec<&Redaction> = redactions.iter().collect();
    pending.sort_by_key(|r| r.span.0);
    let mut next = 0usize;
    let overlaps = |r: &Redaction, (s, e): Span| r.span.0 < e.max(s + 1) && s < r.span.1.max(r.span.0 + 1);
    for tok in &view.strings {
        // Redactions that end before this string's content lie between strings (numbers).
        while let Some(r) = pending.get(next) {
            if r.span.0 >= tok.view.0 {
                break;
            }
            if !overlaps(r, tok.view) {
                raw_at = number_redaction(message, &mut out, raw_at, r, delta, tok.raw.0);
            }
            next += 1;
        }
        let mine: Vec<&Redaction> = redactions.iter().filter(|r| overlaps(r, tok.view)).collect();
        if !mine.is_empty() {
            out.extend_from_slice(message.get(raw_at..tok.raw.0).unwrap_or_default());
            let content = view.text.get(tok.view.0..tok.view.1).unwrap_or_default();
            let replaced = replace_spans(content, tok.view.0, &mine);
            let mut s = String::with_capacity(replaced.len() + 2);
            push_json_string(&mut s, &replaced);
            out.extend_from_slice(s.as_bytes());
            raw_at = tok.raw.1;
        }
        delta = tok.raw.1 as isize - (tok.view.1 as isize + 1);
        while pending.get(next).is_some_and(|r| r.span.0 < tok.view.1) {
            next += 1;
        }
    }
    while let Some(r) = pending.get(next) {
        raw_at = number_redaction(message, &mut out, raw_at, r, delta, message.len());
        next += 1;
    }
    out.extend_from_slice(message.get(raw_at..).unwrap_or_default());
    out
}

/// The string content with the spans (view offsets; `base` is where the content starts)
/// replaced by their markers; a whole-string redaction replaces it all.
fn replace_spans(content: &[u8], base: usize, mine: &[&Redaction]) -> String {
    if let Some(w) = mine.iter().find(|r| r.whole_string) {
        return w.marker.clone();
    }
    String::from_utf8_lossy(&splice(content, base, mine)).into_owned()
}

/// `content` (starting at offset `base` of what the spans count in) with each span replaced by
/// its marker, in order; a span inside an earlier one is already gone, and of one that overlaps
/// an earlier one and goes on past it, the rest is replaced too.
pub fn splice(content: &[u8], base: usize, redactions: &[&Redaction]) -> Vec<u8> {
    let mut sorted: Vec<&&Redaction> = redactions.iter().collect();
    sorted.sort_by_key(|r| r.span.0);
    let mut out: Vec<u8> = Vec::with_capacity(content.len());
    let mut at = 0usize;
    for r in sorted {
        let s = r.span.0.saturating_sub(base).min(content.len());
        let e = r.span.1.saturating_sub(base).min(content.len());
        if s < at && e <= at {
            continue;
        }
        let s = s.max(at);
        out.extend_from_slice(content.get(at..s).unwrap_or_default());
        out.extend_from_slice(r.marker.as_bytes());
        at = e.max(s);
    }
    out.extend_from_slice(content.get(at..).unwrap_or_default());
    out
}

/// A redaction outside any string: the number token around it becomes the marker string.
/// Returns where raw copying resumes.
fn number_redaction(message: &[u8], out: &mut Vec<u8>, raw_at: usize, r: &Redaction, delta: isize, limit: usize) -> usize {
    let to_raw = |v: usize| (v as isize + delta).max(0) as usize;
    let is_num = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let (mut s, mut e) = (to_raw(r.span.0).max(raw_at), to_raw(r.span.1).min(limit));
    while s > raw_at && message.get(s - 1).is_some_and(is_num) {
        s -= 1;
    }
    while e < limit && message.get(e).is_some_and(is_num) {
        e += 1;
    }
    if s >= e {
        return raw_at;
    }
    out.extend_from_slice(message.get(raw_at..s).unwrap_or_default());
    let mut m = String::new();
    push_json_string(&mut m, &r.marker);
    out.extend_from_slice(m.as_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::view::view;

    fn red(s: usize, e: usize, whole: bool) -> Redaction {
        Redaction { span: (s, e), whole_string: whole, marker: "[X]".to_owned() }
    }

    #[test]
    fn spans_in_strings_are_replaced_and_the_rest_is_copied() {
        let m = br#"{"a": "key=\u0041BC tail", "n": 4111111111111111, "b": "ok"}"#;
        let v = view(m).unwrap();
        let text = &v.text;
        let s = text.windows(3).position(|w| w == b"ABC").unwrap();
        let n = text.windows(4).position(|w| w == b"4111").unwrap();
        let out = redact(m, &v, &[red(s, s + 3, false), red(n, n + 16, false)]);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["a"], "key=[X] tail");
        assert_eq!(parsed["n"], "[X]");
        assert_eq!(parsed["b"], "ok");
    }

    #[test]
    fn overlapping_spans_leave_nothing_of_either() {
        let text = b"0123456789abcdef";
        let (a, b, inside) = (red(2, 8, false), red(5, 12, false), red(3, 4, false));
        assert_eq!(splice(text, 0, &[&a, &b, &inside]), b"01[X][X]cdef".to_vec());
        assert_eq!(splice(text, 0, &[&a, &inside]), b"01[X]89abcdef".to_vec());
    }

    #[test]
    fn a_whole_string_redaction_replaces_the_string() {
        let m = br#"["x", "secret in here", "y"]"#;
        let v = view(m).unwrap();
        let out = redact(m, &v, &[red(v.strings[1].view.0 + 2, v.strings[1].view.0 + 4, true)]);
        assert_eq!(out, br#"["x", "[X]", "y"]"#);
    }
}
