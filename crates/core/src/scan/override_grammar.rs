//! The override grammar (a verb, fillers and qualifiers, an object: `ignore all of the previous
//! instructions`) and what every injected-instruction matcher reads between two words: the
//! gap bytes ([`is_gap`]) and the words on either side ([`word_after`], [`word_before`]). Used by the fixed phrases
//! ([`super::phrases`]) and the word-set patterns ([`super::patterns`]).

/// Overriding instructions in the words a payload varies (`Ignore all of the previous
/// instructions`, `please ignore the instructions above`, `disregard any prior directives`): a
/// verb, then up to [`OVERRIDE_WORDS`] words of [`OVERRIDE_FILLERS`] and [`OVERRIDE_QUALIFIERS`],
/// then an object; at least one qualifier, before the object or right after it
/// ([`OVERRIDE_AFTER`]): `ignore the instructions on the box` is not one.
pub static OVERRIDE_VERBS: &[&str] = &["ignore", "ignoring", "disregard", "forget", "override", "bypass", "discard"];
pub static OVERRIDE_FILLERS: &[&str] = &[
    "of",
    "the",
    "my",
    "this",
    "that",
    "and",
    "or",
    "given",
    "other",
    "set",
    "instructions'",
    "their",
    "our",
    "its",
    "policy",
    "security",
    "content",
    "ethical",
    "built",
    "in",
];
pub static OVERRIDE_QUALIFIERS: &[&str] = &[
    "all",
    "your",
    "any",
    "every",
    "these",
    "those",
    "previous",
    "prior",
    "above",
    "earlier",
    "preceding",
    "former",
    "original",
    "initial",
    "existing",
    "system",
    "developer",
    "safety",
    "old",
    "current",
];
pub static OVERRIDE_OBJECTS: &[&str] = &[
    "instruction",
    "instructions",
    "prompt",
    "prompts",
    "directive",
    "directives",
    "direction",
    "directions",
    "guideline",
    "guidelines",
    "rules",
    "commands",
    "orders",
    "constraints",
    "restrictions",
    "guardrails",
    "programming",
    "context",
    "policies",
    "safeguards",
    "guidance",
    "everything",
];
pub static OVERRIDE_AFTER: &[&str] = &["above", "before", "earlier", "previously", "so"];
/// Most words between the verb and the object.
pub const OVERRIDE_WORDS: usize = 5;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A byte that may stand between two words of a phrase: whitespace, or the punctuation that
/// glues words into one token (`ignore_previous_instructions`, `ignore-previous`, `a.b/c`).
pub fn is_gap(b: u8) -> bool {
    is_space(b)
        || matches!(
            b,
            b'_' | b'-'
                | b'.'
                | b','
                | b';'
                | b':'
                | b'!'
                | b'?'
                | b'/'
                | b'\\'
                | b'*'
                | b'|'
                | b'+'
                | b'='
                | b'#'
                | b'"'
                | b'\''
                | b'`'
                | b'('
                | b')'
                | b'['
                | b']'
        )
}

/// Inline markup a renderer drops between two words (`<b>`, `</strong>`, `<br/>`, `<br />`):
/// its length when `rest` starts with one.
fn tag_len(rest: &[u8]) -> Option<usize> {
    let inner = rest.strip_prefix(b"<")?;
    let inner = inner.strip_prefix(b"/").unwrap_or(inner);
    let name = inner.iter().take(MAX_TAG_NAME + 1).take_while(|b| b.is_ascii_alphanumeric()).count();
    if name == 0 || name > MAX_TAG_NAME || !inner.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let after = inner.get(name..)?;
    let close = [&b">"[..], b"/>", b" />"].iter().find(|c| after.starts_with(c))?.len();
    Some(rest.len() - inner.len() + name + close)
}

/// The inline tag that ends right before `end` of `text`, as [`tag_len`] reads one forwards.
fn tag_len_before(text: &[u8], end: usize) -> Option<usize> {
    let before = text.get(..end)?;
    if before.last() != Some(&b'>') {
        return None;
    }
    let open = before.iter().rev().take(MAX_TAG_NAME + 5).position(|b| *b == b'<')?;
    let start = end - open - 1;
    (tag_len(text.get(start..end)?) == Some(end - start)).then_some(end - start)
}

/// Longest tag name skipped as markup.
const MAX_TAG_NAME: usize = 10;
/// Most tags skipped in one gap.
const MAX_TAGS: usize = 3;

/// The gap after `at`: gap bytes (at most [`MAX_GAP`]) and up to [`MAX_TAGS`] inline tags
/// between them (`Ignore all previous <strong>instructions</strong>`). Its length.
pub fn gap_after(text: &[u8], at: usize) -> usize {
    let mut n = 0;
    let mut plain = 0;
    for _ in 0..=MAX_TAGS {
        let rest = text.get(at + n..).unwrap_or_default();
        let g = rest.iter().take(MAX_GAP - plain).take_while(|b| is_gap(**b)).count();
        n += g;
        plain += g;
        match tag_len(text.get(at + n..).unwrap_or_default()) {
            Some(t) => n += t,
            None => break,
        }
    }
    n
}

/// The gap before `at`, read backwards as [`gap_after`] reads forwards.
pub fn gap_before(text: &[u8], at: usize) -> usize {
    let mut n = 0;
    let mut plain = 0;
    for _ in 0..=MAX_TAGS {
        let before = text.get(..at - n).unwrap_or_default();
        let g = before.iter().rev().take(MAX_GAP - plain).take_while(|b| is_gap(**b)).count();
        n += g;
        plain += g;
        match tag_len_before(text, at - n) {
            Some(t) => n += t,
            None => break,
        }
    }
    n
}

/// The most gap bytes between two words.
pub const MAX_GAP: usize = 16;

/// Longest word read: no word of the grammar or the patterns is as long, so a longer one (an
/// id, a hash) is read only this far and then matches nothing.
const MAX_WORD: usize = 24;

fn is_word_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'\''
}

/// The word after `at`: past at least one gap byte (at most [`MAX_GAP`]), a run of letters and
/// digits (and `'`). Its span.
pub fn word_after(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let gaps = gap_after(text, at);
    if gaps == 0 {
        return None;
    }
    let start = at + gaps;
    let len = text.get(start..)?.iter().take(MAX_WORD).take_while(|b| is_word_byte(b)).count();
    (len > 0).then_some((start, start + len))
}

/// The word before `at`, read backwards as [`word_after`] reads forwards.
pub fn word_before(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let gaps = gap_before(text, at.min(text.len()));
    if gaps == 0 {
        return None;
    }
    let end = at - gaps;
    let len = text.get(..end)?.iter().rev().take(MAX_WORD).take_while(|b| is_word_byte(b)).count();
    (len > 0).then_some((end - len, end))
}

/// The word at `span` is `w` (lower case), in any ASCII case.
pub fn is(text: &[u8], span: (usize, usize), w: &[u8]) -> bool {
    text.get(span.0..span.1).is_some_and(|x| x.eq_ignore_ascii_case(w))
}

fn listed(list: &[&str], text: &[u8], span: (usize, usize)) -> bool {
    list.iter().any(|w| is(text, span, w.as_bytes()))
}

/// What follows an override verb ending at `e`: up to [`OVERRIDE_WORDS`] fillers and
/// qualifiers, then an object (at least one qualifier, before it or right after it). The end.
pub fn override_tail(text: &[u8], e: usize) -> Option<usize> {
    let mut end = e;
    let mut qualified = false;
    for _ in 0..=OVERRIDE_WORDS {
        let w = word_after(text, end)?;
        end = w.1;
        if listed(OVERRIDE_OBJECTS, text, w) {
            if !qualified {
                let after = word_after(text, end)?;
                qualified = listed(OVERRIDE_AFTER, text, after);
                end = after.1;
            }
            return qualified.then_some(end);
        }
        if listed(OVERRIDE_QUALIFIERS, text, w) {
            qualified = true;
        } else if !listed(OVERRIDE_FILLERS, text, w) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_between_words_is_part_of_the_gap() {
        let t = b"all previous <strong>instructions</strong>";
        assert_eq!(word_after(t, 12), Some((21, 33)));
        assert_eq!(word_before(t, 21), Some((4, 12)));
        assert_eq!(word_after(b"previous<br/>instructions", 8), Some((13, 25)));
        assert_eq!(word_after(b"previous<br />instructions", 8), Some((14, 26)));
        // Not markup: an expression, a long or unclosed tag name.
        assert_eq!(word_after(b"a <b c", 1), None);
        assert_eq!(gap_after(b" <averyverylongtag>x", 0), 1);
        assert_eq!(gap_after(b" a<b>c", 0), 1);
        assert_eq!(gap_before(b"x</b> ", 6), 5);
    }
}
