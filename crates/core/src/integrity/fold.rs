//! One form of a text for comparison: what a reader (a model) would read, with the tricks that
//! hide it from a naive matcher undone.
//!
//! [`fold`]: Unicode NFKC (fullwidth and mathematical letters, ligatures become plain letters),
//! lower case, invisible characters removed (a phrase split by zero-width spaces is still the
//! phrase), letters from other scripts that look like Latin ones folded to them (`іgnоre` with
//! Cyrillic `і` and `о` is `ignore`), every run of whitespace one space. [`skeleton`] is the same
//! for names, where separators (`_`, `-`, `.`, spaces) do not count either.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (or only change direction) and so can carry or hide text a
/// human reviewer does not see: Unicode tag characters (which spell ASCII invisibly),
/// bidirectional controls, zero-width characters, variation selectors, fillers.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0xE0000..=0xE007F       // tags
        | 0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C // bidi controls
        | 0x200B..=0x200D | 0x2060..=0x2064 | 0xFEFF | 0x180E   // zero width
        | 0x00AD | 0x034F | 0x17B4 | 0x17B5                      // soft hyphen, grapheme joiner
        | 0xFE00..=0xFE0F | 0xE0100..=0xE01EF                    // variation selectors
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0                      // Hangul fillers
    )
}

/// True when `s` holds any [`is_invisible`] character.
pub fn has_invisible(s: &str) -> bool {
    s.chars().any(is_invisible)
}

/// A Latin letter a character of another script is drawn as (the confusables that matter for
/// English words and tool names), else the character itself.
fn latin_lookalike(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'с' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' => 'e',
        'һ' => 'h',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ԝ' => 'w',
        'ь' => 'b',
        'ɡ' => 'g',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        'ϲ' => 'c',
        // Latin look-alikes outside ASCII
        'ı' => 'i',
        'ł' => 'l',
        'ø' => 'o',
        'ɩ' => 'i',
        'ʀ' => 'r',
        'ꜱ' => 's',
        // Apostrophes: "don’t" is "don't".
        '\u{2019}' | '\u{02BC}' | '\u{2018}' => '\'',
        _ => c,
    }
}

/// The comparison form of a text (see the module doc).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.nfkc().filter(|c| !is_invisible(*c)).flat_map(char::to_lowercase).map(latin_lookalike) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// A name's comparison form: [`fold`] without separators, so `read_file`, `Read-File` and
/// `rеad_fіle` (Cyrillic `е`, `і`) share one skeleton.
pub fn skeleton(name: &str) -> String {
    fold(name).chars().filter(|c| !matches!(c, '_' | '-' | '.' | ' ' | '/' | ':')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricks_that_hide_a_phrase_are_undone() {
        assert_eq!(fold("Ignore  PREVIOUS\tinstructions"), "ignore previous instructions");
        assert_eq!(fold("ｉｇｎｏｒｅ 𝐩𝐫𝐞𝐯𝐢𝐨𝐮𝐬"), "ignore previous", "fullwidth and mathematical letters");
        assert_eq!(fold("ig\u{200b}no\u{2060}re"), "ignore", "zero-width characters inside a word");
        assert_eq!(fold("іgnоrе"), "ignore", "Cyrillic look-alikes");
        assert_eq!(fold("ﬁle"), "file", "ligature");
        assert_eq!(fold("déjà vu"), "déjà vu", "other letters stay");
    }

    #[test]
    fn invisible_characters() {
        assert!(has_invisible("read\u{E0041}\u{E0042}"), "tag characters");
        assert!(has_invisible("abc\u{202E}fed"), "bidi override");
        assert!(has_invisible("a\u{200D}b") && has_invisible("\u{FEFF}x") && has_invisible("x\u{FE0F}"));
        assert!(!has_invisible("plain text, émoji 😀 and 中文"));
    }

    #[test]
    fn names_that_look_alike_share_a_skeleton() {
        assert_eq!(skeleton("read_file"), skeleton("Read-File"));
        assert_eq!(skeleton("read_file"), skeleton("rеad_fіle"));
        assert_ne!(skeleton("read_file"), skeleton("read_files"));
    }
}
