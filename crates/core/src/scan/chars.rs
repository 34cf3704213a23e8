//! Byte classes: one table lookup tells which alphabets a byte belongs to. Detectors describe
//! their token bodies as a [`Set`] of these classes; the run pass of [`super::engine`] reads the
//! same table.

/// A matched region of the scanned text, `[start, end)`.
pub type Span = (usize, usize);

/// A set of byte classes (a bitmask over the bits [`class`] gives a byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set(pub u16);

pub const DIGIT: u16 = 1;
pub const LOWER: u16 = 1 << 1;
pub const UPPER: u16 = 1 << 2;
/// `a`–`f` (digits are [`DIGIT`]).
pub const HEX_LOWER: u16 = 1 << 3;
/// `A`–`F`.
pub const HEX_UPPER: u16 = 1 << 4;
pub const UNDERSCORE: u16 = 1 << 5;
pub const DASH: u16 = 1 << 6;
/// `+` and `/`.
pub const PLUS_SLASH: u16 = 1 << 7;
pub const EQUALS: u16 = 1 << 8;
pub const DOT: u16 = 1 << 9;
pub const TILDE: u16 = 1 << 10;
/// Letters and digits of Bitcoin's base58 alphabet (no `0`, `O`, `I`, `l`).
pub const BASE58: u16 = 1 << 11;
/// Spaces, tabs and line breaks.
pub const SPACE: u16 = 1 << 12;
/// Other printable ASCII punctuation a password may hold (`!@#$%^&*?` …).
pub const SYMBOL: u16 = 1 << 13;

pub const ALNUM: Set = Set(DIGIT | LOWER | UPPER);
/// `[A-Za-z0-9_]`.
pub const WORD: Set = Set(DIGIT | LOWER | UPPER | UNDERSCORE);
/// `[A-Za-z0-9_-]`: base64url, and most vendor token bodies.
pub const URLSAFE: Set = Set(DIGIT | LOWER | UPPER | UNDERSCORE | DASH);
/// `[A-Za-z0-9+/=]`.
pub const B64: Set = Set(DIGIT | LOWER | UPPER | PLUS_SLASH | EQUALS);
/// `[A-Za-z0-9+/]` (no padding).
pub const B64_BODY: Set = Set(DIGIT | LOWER | UPPER | PLUS_SLASH);
/// `[0-9a-f]`.
pub const HEX: Set = Set(DIGIT | HEX_LOWER);
/// `[0-9a-fA-F]`.
pub const HEX_ANY_CASE: Set = Set(DIGIT | HEX_LOWER | HEX_UPPER);
/// `[A-Z0-9]`.
pub const UPPER_DIGIT: Set = Set(DIGIT | UPPER);
/// `[a-z0-9]`.
pub const LOWER_DIGIT: Set = Set(DIGIT | LOWER);
/// `[A-Za-z0-9_.-]`.
pub const URLSAFE_DOT: Set = Set(DIGIT | LOWER | UPPER | UNDERSCORE | DASH | DOT);
/// What a run of the run pass is made of: every alphabet an encoded value or a key is spelled in
/// (base64 padding is not: `state=QUtJ…` is a name and a value, and the decoders do not need it).
pub const RUN: Set = Set(DIGIT | LOWER | UPPER | UNDERSCORE | DASH | PLUS_SLASH);

/// The class bits of every byte.
static CLASS: [u16; 256] = build();

/// The class bits of `b`.
#[inline]
#[allow(clippy::indexing_slicing)] // a `u8` indexes a 256-entry table: never out of bounds
pub fn class(b: u8) -> u16 {
    CLASS[b as usize]
}

const fn build() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0usize;
    while i < 256 {
        let b = i as u8;
        let mut c = 0u16;
        if b.is_ascii_digit() {
            c |= DIGIT;
        }
        if b.is_ascii_lowercase() {
            c |= LOWER;
        }
        if b.is_ascii_uppercase() {
            c |= UPPER;
        }
        if b >= b'a' && b <= b'f' {
            c |= HEX_LOWER;
        }
        if b >= b'A' && b <= b'F' {
            c |= HEX_UPPER;
        }
        if b.is_ascii_alphanumeric() && b != b'0' && b != b'O' && b != b'I' && b != b'l' {
            c |= BASE58;
        }
        c |= match b {
            b'_' => UNDERSCORE,
            b'-' => DASH,
            b'+' | b'/' => PLUS_SLASH,
            b'=' => EQUALS,
            b'.' => DOT,
            b'~' => TILDE,
            b' ' | b'\t' | b'\n' | b'\r' => SPACE,
            b'!' | b'@' | b'#' | b'$' | b'%' | b'^' | b'&' | b'*' | b'?' | b'|' | b',' | b';' | b':' | b'<' | b'>' | b'['
            | b']' | b'{' | b'}' | b'(' | b')' | b'\'' | b'"' | b'`' | b'\\' => SYMBOL,
            _ => 0,
        };
        #[allow(clippy::indexing_slicing)] // i < 256, the table's length
        {
            t[i] = c;
        }
        i += 1;
    }
    t
}

impl Set {
    #[inline]
    pub fn has(self, b: u8) -> bool {
        class(b) & self.0 != 0
    }

    pub const fn with(self, bits: u16) -> Set {
        Set(self.0 | bits)
    }
}

/// True when `b` is in `set`, and `false` past the end.
#[inline]
pub fn at(text: &[u8], i: usize, set: Set) -> bool {
    text.get(i).is_some_and(|b| set.has(*b))
}

/// How many bytes of `set` start at `from`, counting at most `cap`.
pub fn count(text: &[u8], from: usize, set: Set, cap: usize) -> usize {
    text.get(from..).unwrap_or_default().iter().take(cap).take_while(|b| set.has(**b)).count()
}

/// How many bytes of `set` end just before `to`, counting at most `cap`.
pub fn count_back(text: &[u8], to: usize, set: Set, cap: usize) -> usize {
    text.get(..to).unwrap_or_default().iter().rev().take(cap).take_while(|b| set.has(**b)).count()
}

/// Shannon entropy of `s` in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s {
        if let Some(c) = counts.get_mut(*b as usize) {
            *c += 1;
        }
    }
    let n = s.len() as f64;
    counts.iter().filter(|c| **c > 0).map(|c| f64::from(*c) / n).map(|p| -p * p.log2()).sum()
}

/// How many kinds of character `v` mixes: lower-case letters, upper-case letters, digits,
/// punctuation (0 to 4). What a password checker counts.
pub fn character_kinds(v: &[u8]) -> usize {
    let kinds = [
        v.iter().any(u8::is_ascii_lowercase),
        v.iter().any(u8::is_ascii_uppercase),
        v.iter().any(u8::is_ascii_digit),
        v.iter().any(u8::is_ascii_punctuation),
    ];
    kinds.iter().filter(|k| **k).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_the_alphabets_they_name() {
        assert!(HEX.has(b'f') && !HEX.has(b'g') && !HEX.has(b'A'));
        assert!(B64.has(b'+') && B64.has(b'=') && !B64.has(b'-'));
        assert!(URLSAFE.has(b'-') && URLSAFE.has(b'_') && !URLSAFE.has(b'.'));
        assert!(Set(BASE58).has(b'z') && !Set(BASE58).has(b'0') && !Set(BASE58).has(b'l'));
        assert_eq!(count(b"abc123-x", 0, ALNUM, 100), 6);
        assert_eq!(count_back(b"--abc", 5, ALNUM, 2), 2);
        assert!(entropy(b"aaaa") < 0.01 && entropy(b"abcd") > 1.99);
    }
}
