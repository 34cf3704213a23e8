//! Values written apart, read back together: a token with a separator between every character
//! (`g h p _ R 7 …`, `g-h-p-_-R-7-…`), its bytes one by one in hex (`67 68 70 5f`, `67:68:70`,
//! `\x67\x68`, `0x67, 0x68`) or in decimal (`[103, 104, 112, …]`), or cut into short lines
//! (`ghp_R7c0aW⏎q1zXy2Lm3N⏎…`, base64 in 8-column lines). Whoever receives such a value has the
//! secret back with one `join`; the scanner reads what the join gives.
//!
//! The run pass hands every maximal run of [`RUN`](super::chars::RUN) bytes to [`Spread::run`],
//! which keeps one streak of runs of the same length with the same bytes between them (and one
//! of small decimal numbers). A streak long enough to spell a token is handed to the decoders as
//! a span; [`collapse`] turns it back into the value. Per run: a few comparisons.

use super::chars::{class, Span, DASH, DIGIT, LOWER, PLUS_SLASH, UNDERSCORE, UPPER};
use super::encoding::Encoding;

/// Longest group a streak is made of (PEM's and hex dumps' lines; MIME's 76 columns are joined
/// by the base64 candidates' own rule).
const MAX_GROUP: usize = 64;
/// Fewest groups, and fewest bytes once joined, worth reading as one value.
const MIN_GROUPS: usize = 4;
const MIN_JOINED: usize = 16;
/// Fewest numbers of a decimal byte list (11 bytes: the shortest value a detector knows, an SSN).
const MIN_DECIMALS: usize = 11;
/// Fewest bytes of a hex byte list (`67 68 70 5f …`): hex of text is mostly digits, so such a
/// list is told by every group being hex, not by mixed alphabets.
const MIN_HEX_PAIRS: usize = 10;
/// Most bytes between two groups (`", "`, `"\r\n"`).
const MAX_GAP: usize = 2;
/// A run spelled with a separator between its characters (`g-h-p-_`): this long at least.
const MIN_INTERLEAVED: usize = 31;

/// A streak of runs (none while `groups` is 0).
#[derive(Debug, Default, Clone, Copy)]
struct Streak {
    start: usize,
    end: usize,
    /// Where the bytes between the first two runs are (every later gap must equal them).
    gap: Span,
    /// Length of every group (the last may be shorter, then the streak is over).
    len: usize,
    groups: usize,
    joined: usize,
    any: u16,
    /// Groups that mix alphabets themselves (`5f`, `R7c0aW`).
    mixed: usize,
    /// Groups that are one byte in hex (`5f`, `x5f`, `0x5f`).
    hex: usize,
}

impl Streak {
    fn start(t: &[u8], s: usize, e: usize, any: u16) -> Streak {
        let mixed = usize::from(classes(any) >= 2);
        let hex = usize::from(hex_byte(t, s, e));
        Streak { start: s, end: e, gap: (e, e), len: e - s, groups: 1, joined: e - s, any, mixed, hex }
    }

    /// Whether the run starting at `s` is the next group as far as the gap goes.
    fn gap_fits(&mut self, t: &[u8], s: usize) -> bool {
        let n = s - self.end;
        if n > MAX_GAP {
            return false;
        }
        if self.groups == 1 {
            self.gap = (self.end, s);
            return true;
        }
        n == self.gap.1 - self.gap.0 && t.get(self.end..s) == t.get(self.gap.0..self.gap.1)
    }
}

/// The streaks of one text (top level only: one level of decoding).
#[derive(Debug, Default)]
pub struct Spread {
    groups: Streak,
    decimals: Streak,
}

impl Spread {
    /// Whether the run `[s, s + len)` of classes `any`, after the run that ended at `last.0` and
    /// was `last.1` long, is this pass's business: it may start or continue a streak (as long as
    /// the run right before it, or a short number), or a streak is open (if only to end it).
    /// Other runs need [`Spread::interleaved`] alone.
    #[inline]
    pub fn sees(&self, last: (usize, usize), s: usize, len: usize, any: u16) -> bool {
        self.groups.groups > 0
            || self.decimals.groups > 0
            || (len == last.1 && s - last.0 <= MAX_GAP)
            || (len <= 3 && any & !DIGIT == 0)
    }

    /// One maximal run `[s, e)` made of the classes `any`, after the run that ended at
    /// `last.0` and was `last.1` long (the caller shows only runs that may start or continue a
    /// streak, and every run while one is open).
    pub fn run(&mut self, t: &[u8], (last, s, e): ((usize, usize), usize, usize), any: u16, encoded: &mut Vec<(Span, Encoding)>) {
        let len = e - s;
        if self.groups.groups == 0 && last.1 == len && s - last.0 <= MAX_GAP && len <= MAX_GROUP {
            // The run before was the same length: it starts the streak.
            let (ls, le) = (last.0 - last.1, last.0);
            self.groups = Streak::start(t, ls, le, any_of(t, ls, le));
        }
        if self.groups.groups > 0 {
            self.group(t, s, e, any, encoded);
        }
        if any & !DIGIT == 0 && len <= 3 {
            self.decimal(t, (s, e), encoded);
        } else if self.decimals.groups > 0 {
            self.end_decimals(encoded);
        }
        self.interleaved(t, s, e, encoded);
    }

    /// A run spelled with a separator between its characters.
    pub fn interleaved(&mut self, t: &[u8], s: usize, e: usize, encoded: &mut Vec<(Span, Encoding)>) {
        if e - s >= MIN_INTERLEAVED && t.get(s..e).is_some_and(interleaved) {
            encoded.push(((s, e), Encoding::Interleaved));
        }
    }

    fn group(&mut self, t: &[u8], s: usize, e: usize, any: u16, encoded: &mut Vec<(Span, Encoding)>) {
        let len = e - s;
        let g = &mut self.groups;
        if g.groups > 0 && len <= g.len && g.gap_fits(t, s) {
            if len == g.len {
                g.end = e;
                g.groups += 1;
                g.joined += len;
                g.any |= any;
                g.mixed += usize::from(classes(any) >= 2);
                g.hex += usize::from(hex_byte(t, s, e));
                return;
            }
            // A shorter last group (the end of a wrapped value) is of the value's alphabet; the
            // first two runs fix the length (a shorter second one ends a streak of two).
            if g.groups >= 2 && any & !g.any & (DIGIT | LOWER | UPPER) == 0 {
                g.end = e;
                g.groups += 1;
                g.joined += len;
                self.end_groups(encoded);
                return;
            }
        }
        self.end_groups(encoded);
    }

    fn end_groups(&mut self, encoded: &mut Vec<(Span, Encoding)>) {
        if self.groups.groups < MIN_GROUPS || self.groups.joined < MIN_JOINED {
            self.groups.groups = 0;
            return;
        }
        let g = self.groups;
        self.groups.groups = 0;
        // Digits alone are numbers (a list of years joined is a "card"); one case of letters
        // alone is words; numbers and a word are a sentence. A token mixes alphabets, within its
        // groups once they are longer than a character.
        let mixes = classes(g.any) >= 2 && (g.len == 1 || g.mixed >= 2);
        // One digit at a time, as many as a card has: `4 1 1 1 …`.
        let card = g.len == 1 && g.any & !DIGIT == 0 && (13..=19).contains(&g.groups);
        if g.hex == g.groups && g.groups >= MIN_HEX_PAIRS {
            encoded.push(((g.start, g.end), Encoding::HexBytes));
        } else if mixes || card {
            encoded.push(((g.start, g.end), Encoding::Grouped));
        }
    }

    fn decimal(&mut self, t: &[u8], (s, e): Span, encoded: &mut Vec<(Span, Encoding)>) {
        if t.get(s..e).and_then(byte_value).is_none() {
            self.end_decimals(encoded);
            return;
        }
        let d = &mut self.decimals;
        if d.groups > 0 && d.gap_fits(t, s) {
            d.end = e;
            d.groups += 1;
            return;
        }
        self.end_decimals(encoded);
        self.decimals = Streak::start(t, s, e, DIGIT);
    }

    fn end_decimals(&mut self, encoded: &mut Vec<(Span, Encoding)>) {
        let d = &mut self.decimals;
        if d.groups >= MIN_DECIMALS {
            encoded.push(((d.start, d.end), Encoding::Decimal));
        }
        d.groups = 0;
    }

    /// The text has ended.
    pub fn finish(&mut self, encoded: &mut Vec<(Span, Encoding)>) {
        self.end_groups(encoded);
        self.end_decimals(encoded);
    }
}

/// How many of the alphabets digits, lower case, upper case and token punctuation `any` uses.
fn classes(any: u16) -> usize {
    // Digits, lower and upper case are one bit each; the punctuation three bits, counted once.
    (any & (DIGIT | LOWER | UPPER)).count_ones() as usize + usize::from(any & (UNDERSCORE | DASH | PLUS_SLASH) != 0)
}

/// One byte in hex, marked or not: `5f`, `x5f`, `0x5f`.
fn hex_byte(t: &[u8], s: usize, e: usize) -> bool {
    let digits = match t.get(s..e) {
        Some([b'0', b'x' | b'X', h @ ..]) | Some([b'x' | b'X', h @ ..]) | Some(h) => h,
        None => return false,
    };
    digits.len() == 2 && digits.iter().all(u8::is_ascii_hexdigit)
}

/// The classes of the bytes `[s, e)`.
fn any_of(t: &[u8], s: usize, e: usize) -> u16 {
    t.get(s..e).unwrap_or_default().iter().fold(0, |a, b| a | class(*b)) & !super::chars::BASE58
}

/// A decimal byte value that is text (tab to `~`).
fn byte_value(d: &[u8]) -> Option<u8> {
    let v = d.iter().try_fold(0u32, |v, c| Some(v * 10 + u32::from(c.checked_sub(b'0')?)))?;
    u8::try_from(v).ok().filter(|b| (9..=126).contains(b))
}

/// Every second byte of `run` is the same separator (`-`, `_`, `+` or `/`).
fn interleaved(run: &[u8]) -> bool {
    let Some(&sep) = run.get(1) else { return false };
    matches!(sep, b'-' | b'_' | b'+' | b'/')
        && run.iter().skip(1).step_by(2).all(|b| *b == sep)
        && run.iter().step_by(2).any(|b| class(*b) & (DIGIT | LOWER | UPPER) != 0)
}

/// The value a spread span spells: its groups joined, hex bytes (`x67` / `0x67` without their
/// marker) and a decimal list as the bytes they write, an interleaved run without its
/// separators.
pub fn collapse(text: &[u8], span: Span, enc: Encoding) -> Option<Vec<u8>> {
    let region = text.get(span.0..span.1)?;
    let runs = || region.split(|b| class(*b) & super::chars::RUN.0 == 0).filter(|r| !r.is_empty());
    match enc {
        Encoding::HexBytes => {
            let digits = |r: &'_ [u8]| r.get(r.len().saturating_sub(2)..).unwrap_or_default().to_vec();
            super::view::hex(&runs().flat_map(digits).collect::<Vec<u8>>())
        }
        Encoding::Grouped => Some(runs().flatten().copied().collect()),
        Encoding::Decimal => runs().map(byte_value).collect(),
        Encoding::Interleaved => Some(region.iter().step_by(2).copied().collect()),
        Encoding::Base64 | Encoding::Hex | Encoding::Base32 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every run of `text` shown to the spread pass (the run pass shows fewer: the same answer).
    fn spans(text: &str) -> Vec<(String, Encoding)> {
        let t = text.as_bytes();
        let mut spread = Spread::default();
        let mut encoded = Vec::new();
        let mut last = (0, usize::MAX);
        let mut start = None;
        for i in 0..=t.len() {
            let inside = t.get(i).is_some_and(|b| class(*b) & super::super::chars::RUN.0 != 0);
            match (inside, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    spread.run(t, (last, s, i), any_of(t, s, i), &mut encoded);
                    last = (i, i - s);
                    start = None;
                }
                _ => {}
            }
        }
        spread.finish(&mut encoded);
        encoded.into_iter().map(|(span, enc)| (String::from_utf8(collapse(t, span, enc).unwrap()).unwrap(), enc)).collect()
    }

    #[test]
    fn values_written_apart_are_joined() {
        let token = "ghp_R7c0aWq1zXy2Lm3N";
        let spaced: Vec<String> = token.chars().map(String::from).collect();
        assert_eq!(spans(&spaced.join(" ")), [(token.to_owned(), Encoding::Grouped)]);
        assert_eq!(spans(&format!("k: {}.", spaced.join("-"))), [(token.to_owned(), Encoding::Interleaved)]);
        let hex: Vec<String> = token.bytes().map(|b| format!("{b:02x}")).collect();
        for (sep, mark) in [(" ", ""), (":", ""), ("\\", "x"), (", ", "0x")] {
            let written: Vec<String> = hex.iter().map(|h| format!("{mark}{h}")).collect();
            let text = format!("{}{}", if mark == "x" { "\\" } else { "" }, written.join(sep));
            assert_eq!(spans(&text), [(token.to_owned(), Encoding::HexBytes)], "{text}");
        }
        let decimal: Vec<String> = token.bytes().map(|b| b.to_string()).collect();
        assert_eq!(spans(&format!("[{}]", decimal.join(", "))), [(token.to_owned(), Encoding::Decimal)]);
        assert_eq!(spans("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1."), [("4111111111111111".to_owned(), Encoding::Grouped)]);
        let lines = "ghp_R7c0aW\nq1zXy2Lm3N\nkLmN0pQrSt\nuv";
        assert_eq!(spans(lines), [("ghp_R7c0aWq1zXy2Lm3NkLmN0pQrStuv".to_owned(), Encoding::Grouped)]);
    }

    #[test]
    fn prose_numbers_and_words_are_not_spread_values() {
        for text in [
            "the cat sat on the mat and the dog ate the hat",
            "2021, 2022, 2023, 2024, 2025",
            "call 555 123 456 789 012 now",
            "this that with from into over",
            "a list: 1, 2, 3, 4, 5, 6, 7, 8",
            "0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3",
            "pixels 0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0",
            "well-known-long-compound-words-joined-by-dashes",
        ] {
            assert!(spans(text).is_empty(), "{text}: {:?}", spans(text));
        }
    }
}
