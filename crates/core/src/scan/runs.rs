//! The run pass: what has no anchor, found in the maximal runs of [`RUN`](super::chars::RUN)
//! bytes the scanner's one loop over the text hands it ([`super::automaton::Event::Run`]):
//! payment cards, SSNs and IBANs in their digit groups, WIF keys, seed phrases however their
//! word list is written, and the base64 / hex runs worth one level of decoding.

use super::catalog::{self, Span};
use super::chars::{class, count, Set, DASH, DIGIT, LOWER, UPPER};
use super::encoding::Encoding;
use super::hit::{Found, Hit};
use super::numbers;
use super::spread::Spread;
use super::wallet;

/// Shortest run worth decoding as base64 and as hex (10–12 bytes once decoded: the shortest
/// value a detector knows, an SSN, fits).
const MIN_BASE64_RUN: usize = 14;
const MIN_HEX_RUN: usize = 20;

/// The run pass, fed each maximal run of [`RUN`](super::chars::RUN) bytes by the anchor pass: what each may be
/// (digits of a card, SSN or IBAN; a base58 key; a word of a seed phrase; an encoded value).
/// Per run it costs a few comparisons; only runs that can be something are looked at further.
pub struct Runs {
    top: bool,
    spread: Spread,
    /// The run before this one: where it ended, its length.
    last: (usize, usize),
    /// Checksums a seed-phrase search may still compute in this text ([`MNEMONIC_TESTS`]).
    pub mnemonic_tests: usize,
    numbers_until: usize,
    /// The current streak of seed-phrase-shaped words: where it starts, ends, how many.
    streak_start: usize,
    streak_end: usize,
    streak_words: usize,
    /// A word spelled with digits for letters was seen ([`crate::fold::is_leet_word`]; top
    /// level only): the strings holding one are read again with their letters back.
    pub leet: bool,
}

impl Runs {
    pub fn new(top: bool) -> Runs {
        Runs {
            top,
            spread: Spread::default(),
            last: (0, usize::MAX),
            mnemonic_tests: MNEMONIC_TESTS,
            numbers_until: 0,
            streak_start: 0,
            streak_end: 0,
            streak_words: 0,
            leet: false,
        }
    }

    pub fn run(&mut self, t: &[u8], s: usize, i: usize, any: u16, hits: &mut Vec<Hit>, encoded: &mut Vec<(Span, Encoding)>) {
        // Which alphabets the run is made of (base58 membership is asked of the run itself).
        let any = any & !super::chars::BASE58;
        let len = i - s;
        if self.top {
            // Letters and digits both (the class union says so without a look), in a run short
            // enough to be words: each piece between separators (`1gn0r3-4ll-pr3v10us`).
            if !self.leet && any & DIGIT != 0 && any & LETTERS != 0 && (3..=MAX_LEET_RUN).contains(&len) {
                self.leet = t.get(s..i).is_some_and(crate::fold::has_leet_word);
            }
            if self.spread.sees(self.last, s, len, any) {
                self.spread.run(t, (self.last, s, i), any, encoded);
            } else {
                self.spread.interleaved(t, s, i, encoded);
            }
            self.last = (i, len);
        }
        // Seed phrases: words of 3–8 letters in any case, as a list is written: spaces, commas,
        // a JSON array's `","`, numbers (`1. legal 2. winner`) or dashes between them.
        if any & !LETTERS == 0 && (3..=8).contains(&len) {
            self.word(t, s, i, hits);
        } else if self.streak_words > 0 && any & !DIGIT == 0 && len <= 2 {
            // A list's numbering: the streak goes on.
        } else if any & !(LETTERS | DASH) == 0 && any & DASH != 0 {
            // `legal-winner-thank-…`: each piece a word.
            let mut at = s;
            for piece in t.get(s..i).unwrap_or_default().split(|b| *b == b'-') {
                if (3..=8).contains(&piece.len()) {
                    self.word(t, at, at + piece.len(), hits);
                } else if !piece.is_empty() {
                    self.finish(t, hits);
                }
                at += piece.len() + 1;
            }
        } else if self.streak_words > 0 {
            self.finish(t, hits);
        }
        if len < 4 {
            return;
        }
        // A card starts with a group of 4 or is 13+ digits; an SSN is 11 bytes; an IBAN starts
        // with a group of 4 or is 15+: shorter runs start none of them.
        if any & DIGIT != 0 && (len == 4 || len >= 11) && s >= self.numbers_until {
            if any & (super::chars::PLUS_SLASH | super::chars::UNDERSCORE) == 0 {
                // Right after a number found (a list of cards), a digit group starts afresh.
                let fresh = self.numbers_until > 0 && s == self.numbers_until + 1;
                if let Some(end) = numbers(t, s, i, len, any, fresh, hits) {
                    self.numbers_until = end;
                }
            } else {
                // A path or a name (`/records/536-90-4399`, `id_4111111111111111`): its pieces.
                let mut ps = s;
                for piece in t.get(s..i).unwrap_or_default().split(|b| matches!(b, b'/' | b'+' | b'_')) {
                    let pany = piece.iter().fold(0u16, |a, b| a | class(*b)) & !super::chars::BASE58;
                    if pany & DIGIT != 0 && (piece.len() == 4 || piece.len() >= 11) {
                        numbers(t, ps, ps + piece.len(), piece.len(), pany, false, hits);
                    }
                    ps += piece.len() + 1;
                }
            }
        }
        if len >= MIN_BASE64_RUN && self.top {
            let run = t.get(s..i).unwrap_or_default();
            if let Some(enc) = worth_decoding(run, any) {
                encoded.push(((s, i), enc));
            } else if matches!(run.get(..2), Some(b"0x" | b"0X"))
                && worth_decoding(run.get(2..).unwrap_or_default(), 0) == Some(Encoding::Hex)
            {
                // `0x6768…`: hex as a literal is written.
                encoded.push(((s + 2, i), Encoding::Hex));
            }
        }
        if (51..=52).contains(&len) && t.get(s..i).is_some_and(wallet::is_wif) {
            hits.push(Hit { found: Found::Detector(catalog::index_of(catalog::BITCOIN_WIF)), span: (s, i), decoded: false });
        }
    }

    /// One word-shaped run at `[s, e)`: it continues the streak when only a list's separators
    /// (no letters, at most [`MAX_WORD_GAP`] bytes) lie between it and the last word.
    fn word(&mut self, t: &[u8], s: usize, e: usize, hits: &mut Vec<Hit>) {
        let gap = s - self.streak_end;
        let follows =
            self.streak_words > 0 && (1..=MAX_WORD_GAP).contains(&gap) && t.get(self.streak_end..s).is_some_and(list_gap);
        if !follows {
            self.finish(t, hits);
            self.streak_start = s;
        }
        self.streak_words += 1;
        self.streak_end = e;
    }

    /// The text has ended.
    pub fn end(&mut self, t: &[u8], hits: &mut Vec<Hit>, encoded: &mut Vec<(Span, Encoding)>) {
        self.finish(t, hits);
        self.spread.finish(encoded);
    }

    /// The streak of words has ended.
    fn finish(&mut self, t: &[u8], hits: &mut Vec<Hit>) {
        if self.streak_words >= 12 {
            seed_phrases(t, self.streak_start, self.streak_end, &mut self.mnemonic_tests, hits);
        }
        self.streak_words = 0;
    }
}

/// Seed-phrase checksums one text may cost (each a SHA-256 of at most 32 bytes): far more than
/// any honest text needs (a checksum per window of 12–24 consecutive list words), and past it
/// the scan says it was cut short (the oversize action applies).
const MNEMONIC_TESTS: usize = 4096;

/// Longest run looked at for digits drawn as letters (a few words glued by `-`, `_`, `+`, `/`).
const MAX_LEET_RUN: usize = 96;

const LETTERS: u16 = LOWER | UPPER | super::chars::HEX_LOWER | super::chars::HEX_UPPER;

/// Most bytes between two words of a seed phrase written as a list (`", "`, ` 12. `).
const MAX_WORD_GAP: usize = 8;

/// What separates the words of a list: whitespace, commas, quotes and dashes, and numbers
/// (`12.`, `3)`); not code's `.` and `(` (`this.catch.bind(this)` is no phrase).
fn list_gap(g: &[u8]) -> bool {
    let mut after_digit = false;
    g.iter().all(|&b| {
        let ok = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b'"' | b'\'' | b'-' => true,
            b'0'..=b'9' => true,
            b'.' | b')' => after_digit,
            _ => false,
        };
        after_digit = b.is_ascii_digit();
        ok
    })
}

/// Cards, SSNs and IBANs starting at the run `[s, e)`: where the number found ends.
fn numbers(t: &[u8], s: usize, e: usize, len: usize, any: u16, fresh: bool, hits: &mut Vec<Hit>) -> Option<usize> {
    let hit = |hits: &mut Vec<Hit>, id: &str, end: usize| {
        hits.push(Hit { found: Found::Detector(catalog::index_of(id)), span: (s, end), decoded: false });
        Some(end)
    };
    let run = t.get(s..e)?;
    if any & DIGIT != 0 && any & !(DIGIT | DASH) == 0 {
        if len == 11 && numbers::is_ssn(run) {
            return hit(hits, catalog::US_SSN, e);
        }
        if let Some(end) = card_at(t, s, fresh) {
            return hit(hits, catalog::CREDIT_CARD, end);
        }
        return None;
    }
    let starts_iban = run.len() >= 4
        && run.get(..2).is_some_and(|c| c.iter().all(u8::is_ascii_uppercase))
        && run.get(2..4).is_some_and(|c| c.iter().all(u8::is_ascii_digit));
    if starts_iban && any & !(UPPER | super::chars::HEX_UPPER | DIGIT) == 0 {
        if (15..=34).contains(&len) && numbers::is_iban(run) {
            return hit(hits, catalog::IBAN, e);
        }
        if len == 4 {
            if let Some(end) = iban_grouped_at(t, s) {
                return hit(hits, catalog::IBAN, end);
            }
        }
    }
    None
}

/// What may separate a card number's printed groups (the same one throughout).
const CARD_SEPARATORS: &[u8] = b" -._/";

/// A card number at `s`: all digits, or in the groups cards are printed in (4-4-4-4, 4-4-4-4-3,
/// Amex 4-6-5, Diners 4-6-4) separated by one space, dash, dot, underscore or slash (the same one throughout); the
/// longest such prefix that is a card. A run inside a longer sequence of digit groups (a log
/// line's numbers) is not one, unless `fresh`: it starts right after a number already found.
fn card_at(t: &[u8], s: usize, fresh: bool) -> Option<usize> {
    if s > 0 && t.get(s - 1).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if !fresh
        && s >= 2
        && t.get(s - 1).is_some_and(|b| CARD_SEPARATORS.contains(b))
        && t.get(s - 2).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    let mut ends: Vec<(usize, usize)> = Vec::new(); // (digit count, byte end) at each group end
    let mut groups: Vec<usize> = Vec::new();
    let mut i = s;
    let mut sep: Option<u8> = None;
    loop {
        let g = count(t, i, Set(DIGIT), 20);
        if g == 0 || digits.len() + g > 19 {
            break;
        }
        digits.extend_from_slice(t.get(i..i + g)?);
        i += g;
        groups.push(g);
        let printed = groups.len() == 1 || matches!(groups.as_slice(), [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]);
        if printed {
            ends.push((digits.len(), i));
        }
        match (t.get(i), t.get(i + 1)) {
            (Some(&c), Some(d)) if CARD_SEPARATORS.contains(&c) && d.is_ascii_digit() && sep.is_none_or(|x| x == c) => {
                sep = Some(c);
                i += 1;
            }
            _ => break,
        }
    }
    ends.iter().rev().find_map(|&(n, end)| {
        let boundary = !t.get(end).is_some_and(|b| b.is_ascii_alphanumeric());
        (n >= 13 && boundary && digits.get(..n).is_some_and(numbers::is_card)).then_some(end)
    })
}

/// An IBAN written in groups of four (`DE89 3704 0044 0532 0130 00`) at `s`.
fn iban_grouped_at(t: &[u8], s: usize) -> Option<usize> {
    let mut chars: Vec<u8> = Vec::with_capacity(34);
    let mut i = s;
    loop {
        let g = count(t, i, Set(UPPER | DIGIT), 5);
        if g == 0 || g > 4 {
            return None;
        }
        chars.extend_from_slice(t.get(i..i + g)?);
        i += g;
        if chars.len() >= 15 && numbers::is_iban(&chars) && !t.get(i).is_some_and(|b| b.is_ascii_alphanumeric()) {
            return Some(i);
        }
        if g < 4 || chars.len() >= 34 || t.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
    }
}

/// Whether a long run is worth one level of decoding, and as what (`any`: its classes, or 0 to
/// have them read).
pub fn worth_decoding(run: &[u8], any: u16) -> Option<Encoding> {
    if run.len() < MIN_BASE64_RUN {
        return None;
    }
    if run.len() >= MIN_HEX_RUN && run.len().is_multiple_of(2) && run.iter().all(u8::is_ascii_hexdigit) {
        return Some(Encoding::Hex);
    }
    let any = if any == 0 { run.iter().fold(0, |a, b| a | class(*b)) } else { any };
    // Base32 is one case of letters with the digits 2–7 (and a length its groups allow).
    let base32 = |upper: bool| {
        run.iter().all(|b| matches!(b, b'2'..=b'7') || if upper { b.is_ascii_uppercase() } else { b.is_ascii_lowercase() })
    };
    // (Lower case only with a digit: an all-letter word is no base32 value.)
    if run.len() >= 16 && matches!(run.len() % 8, 0 | 2 | 4 | 5 | 7) && (base32(true) || (any & DIGIT != 0 && base32(false))) {
        return Some(Encoding::Base32);
    }
    // Base64 of text mixes both cases and digits: a run without all three is a word, a path, an
    // id or a UUID, and decodes to noise.
    (any & DIGIT != 0 && any & LOWER != 0 && any & UPPER != 0).then_some(Encoding::Base64)
}

/// A streak of 12+ seed-phrase-shaped words `[from, to)` ended: its BIP-39 list words, checked
/// for a mnemonic.
fn seed_phrases(t: &[u8], from: usize, to: usize, tests: &mut usize, hits: &mut Vec<Hit>) {
    let region = t.get(from..to).unwrap_or_default();
    // Each list word where it stands, and lower-cased (the list's spelling) in place: list words
    // are at most 8 letters, so no word needs an allocation of its own.
    let mut streak: Vec<(Span, Lower)> = Vec::new();
    let mut check = |streak: &mut Vec<(Span, Lower)>, hits: &mut Vec<Hit>| {
        if streak.len() >= 12 {
            let w: Vec<&[u8]> = streak.iter().map(|(_, lower)| lower.as_slice()).collect();
            if let Some((first, n)) = wallet::find_mnemonic(&w, tests) {
                if let (Some((a, _)), Some((b, _))) = (streak.get(first), streak.get(first + n - 1)) {
                    hits.push(Hit {
                        found: Found::Detector(catalog::index_of(catalog::BIP39)),
                        span: (a.0, b.1),
                        decoded: false,
                    });
                }
            }
        }
        streak.clear();
    };
    let mut at = 0usize;
    let mut last_end = from;
    for word in region.split(|b| !b.is_ascii_alphabetic()) {
        let (s, e) = (from + at, from + at + word.len());
        at += word.len() + 1;
        if word.is_empty() {
            continue;
        }
        let listed = Lower::of(word).filter(|l| wallet::is_word(l.as_slice()));
        let apart = s - last_end > MAX_WORD_GAP || !t.get(last_end..s).is_some_and(list_gap);
        if apart || listed.is_none() {
            check(&mut streak, hits);
        }
        if let Some(l) = listed {
            streak.push(((s, e), l));
        }
        last_end = e;
    }
    check(&mut streak, hits);
}

/// A word of at most 8 letters, lower-cased (the longest BIP-39 word has 8).
#[derive(Clone, Copy)]
struct Lower {
    bytes: [u8; 8],
    len: usize,
}

impl Lower {
    /// `None` for a word longer than any list word.
    fn of(word: &[u8]) -> Option<Lower> {
        if word.len() > 8 {
            return None;
        }
        let mut bytes = [0u8; 8];
        for (d, b) in bytes.iter_mut().zip(word) {
            *d = b.to_ascii_lowercase();
        }
        Some(Lower { bytes, len: word.len() })
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}
