//! The override grammar (a verb, fillers and qualifiers, an object: `ignore all of the previous
//! instructions`) and what every injected-instruction matcher reads between two words: the
//! gap bytes ([`is_gap`]) and the next word ([`next_word`]). Used by the fixed phrases
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
        )
}

/// The most gap bytes between two words.
pub const MAX_GAP: usize = 16;

/// The next word after `at`: past at least one gap byte (at most [`MAX_GAP`]), a run of
/// letters and digits (and `'`), lower-cased. `(start, end, word)`.
pub fn next_word(text: &[u8], at: usize) -> Option<(usize, usize, Vec<u8>)> {
    let gaps = text.get(at..)?.iter().take(MAX_GAP).take_while(|b| is_gap(**b)).count();
    if gaps == 0 {
        return None;
    }
    let start = at + gaps;
    let len = text.get(start..)?.iter().take(32).take_while(|b| b.is_ascii_alphanumeric() || **b == b'\'').count();
    (len > 0).then(|| (start, start + len, text.get(start..start + len).unwrap_or_default().to_ascii_lowercase()))
}

fn listed(list: &[&str], word: &[u8]) -> bool {
    list.iter().any(|w| w.as_bytes() == word)
}

/// What follows an override verb ending at `e`: up to [`OVERRIDE_WORDS`] fillers and
/// qualifiers, then an object (at least one qualifier, before it or right after it). The end.
pub fn override_tail(text: &[u8], e: usize) -> Option<usize> {
    let mut end = e;
    let mut qualified = false;
    for _ in 0..=OVERRIDE_WORDS {
        let (_, we, w) = next_word(text, end)?;
        end = we;
        if listed(OVERRIDE_OBJECTS, &w) {
            if !qualified {
                let (_, ae, after) = next_word(text, end)?;
                qualified = listed(OVERRIDE_AFTER, &after);
                end = ae;
            }
            return qualified.then_some(end);
        }
        if listed(OVERRIDE_QUALIFIERS, &w) {
            qualified = true;
        } else if !listed(OVERRIDE_FILLERS, &w) {
            return None;
        }
    }
    None
}
