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
        0xE0000..=0xE0FFF       // tags and the rest of the ignorable plane-14 block
        | 0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C // bidi controls
        | 0x200B..=0x200D | 0x2060..=0x206F | 0xFEFF | 0x180E   // zero width, deprecated format
        | 0x1BCA0..=0x1BCA3 | 0xFFF0..=0xFFF8 | 0x0000..=0x0008 | 0x000E..=0x001F | 0x007F // shorthand format, unassigned specials, C0 controls but tab / newlines
        | 0x180B..=0x180F | 0x1D173..=0x1D17A | 0x2800           // more default-ignorables, braille blank
        | 0x00AD | 0x034F | 0x17B4 | 0x17B5                      // soft hyphen, grapheme joiner
        | 0xFE00..=0xFE0F                                        // variation selectors
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0                      // Hangul fillers
        | 0xFFF9..=0xFFFB | 0x13430..=0x1343F                    // interlinear annotation, Egyptian format controls
    )
}

/// [`is_invisible`] of an ASCII byte: the C0 controls but tab and the line breaks, and DEL (no
/// ASCII character is typographic).
fn is_invisible_ascii(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0E..=0x1F | 0x7F)
}

/// Invisible characters honest text uses: emoji presentation selectors (U+FE0E/FE0F, as in
/// `⚠️`) and the zero-width joiners of emoji sequences and Persian / Indic script (U+200C/200D).
/// Removed before matching like the rest, but not a finding on their own.
fn is_typographic(c: char) -> bool {
    matches!(c as u32, 0xFE0E | 0xFE0F | 0x200C | 0x200D)
}

/// True when `s` holds an [`is_invisible`] character that honest text has no use for: any but
/// the typographic ones, and those too between two ASCII letters (Latin script never joins or
/// breaks a ligature with them: `ignore\u{200c}all` is two words to a model).
pub fn has_invisible(s: &str) -> bool {
    if s.is_ascii() {
        return s.bytes().any(is_invisible_ascii);
    }
    let mut prev = ' ';
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if hides(prev, c, chars.peek().copied()) {
            return true;
        }
        prev = c;
    }
    false
}

/// `c`, between `prev` and `next`, is an invisible character honest text has no use for there
/// (see [`has_invisible`]).
fn hides(prev: char, c: char, next: Option<char>) -> bool {
    let between_ascii_letters = prev.is_ascii_alphabetic() && next.is_some_and(|n| n.is_ascii_alphabetic());
    is_invisible(c) && (!is_typographic(c) || between_ascii_letters)
}

/// A word that spells letters with digits (`1gn0r3`, `pr3v10us`): letters that are not all hex
/// digits, and digits only of those drawn as letters (`0 1 3 4 5 7`; an id with a `2`, `6`, `8`
/// or `9` is an id).
pub fn is_leet_word(w: &[u8]) -> bool {
    let mut piece = Piece::default();
    w.iter().all(|b| piece.add(*b)) && piece.is_leet(w)
}

/// True when `text` has an [`is_leet_word`] (its words: the runs of letters and digits), in one
/// pass over it.
pub fn has_leet_word(text: &[u8]) -> bool {
    let mut piece = Piece::default();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if !piece.add(*b) {
            if piece.is_leet(text.get(start..i).unwrap_or_default()) {
                return true;
            }
            piece = Piece::default();
            start = i + 1;
        }
    }
    piece.is_leet(text.get(start..).unwrap_or_default())
}

/// What [`is_leet_word`] asks of a word, gathered a byte at a time.
#[derive(Default)]
struct Piece {
    len: usize,
    drawn_digit: bool,
    other_digit: bool,
    word_letter: bool,
}

impl Piece {
    /// Adds `b` to the word; false when `b` is no letter or digit (it ends the word).
    fn add(&mut self, b: u8) -> bool {
        match b {
            b'0' | b'1' | b'3' | b'4' | b'5' | b'7' => self.drawn_digit = true,
            b'2' | b'6' | b'8' | b'9' => self.other_digit = true,
            b'g'..=b'z' | b'G'..=b'Z' => self.word_letter = true,
            b'a'..=b'f' | b'A'..=b'F' => {}
            _ => return false,
        }
        self.len += 1;
        true
    }

    fn is_leet(&self, w: &[u8]) -> bool {
        // The day and hour of an ISO 8601 time (`2026-12-01T17:47` has the piece `01T17`) spell
        // no word: every log line has one.
        let iso_day_hour = matches!(w, [d1, d2, b'T' | b't', h1, h2] if [d1, d2, h1, h2].iter().all(|d| d.is_ascii_digit()));
        (3..=20).contains(&self.len) && self.drawn_digit && !self.other_digit && self.word_letter && !iso_day_hour
    }
}

/// `folded` with the digits of its [`is_leet_word`]s read as the letters they are drawn as.
pub fn unleet(folded: &str) -> String {
    let mut out = Vec::with_capacity(folded.len());
    for (i, word) in folded.as_bytes().split(|b| !b.is_ascii_alphanumeric()).enumerate() {
        if i > 0 {
            // The separator split on: the byte right before this word.
            out.push(0);
        }
        if is_leet_word(word) {
            out.extend(word.iter().map(|b| match b {
                b'0' => b'o',
                b'1' => b'i',
                b'3' => b'e',
                b'4' => b'a',
                b'5' => b's',
                b'7' => b't',
                _ => b.to_ascii_lowercase(),
            }));
        } else {
            out.extend_from_slice(word);
        }
    }
    // Put the separators back (split drops them): same length, same places.
    for (o, b) in out.iter_mut().zip(folded.as_bytes()) {
        if !b.is_ascii_alphanumeric() {
            *o = *b;
        }
    }
    String::from_utf8(out).unwrap_or_default()
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
        'г' => 'r',
        'п' => 'n',
        // Latin small capitals and IPA letters drawn as plain letters
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ꜰ' => 'f',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        // Armenian
        'օ' => 'o',
        'ս' => 'u',
        'հ' => 'h',
        'ո' => 'n',
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

/// The comparison form of a text (see the module doc): compatibility decomposition, combining
/// marks dropped (`i̇gnore` is `ignore`), invisible characters dropped, lower case, look-alikes
/// folded, whitespace runs one space.
pub fn fold(s: &str) -> String {
    // ASCII has nothing to decompose, no marks and no look-alikes: the same form without the
    // Unicode tables (a long ASCII string is folded when it holds digits for letters).
    if s.is_ascii() {
        return spaced(s.bytes().filter(|b| !is_invisible_ascii(*b)).map(|b| char::from(b.to_ascii_lowercase())), s.len());
    }
    let letters = s.nfkd().filter(|c| !is_invisible(*c) && !unicode_normalization::char::is_combining_mark(*c));
    spaced(letters.flat_map(char::to_lowercase).map(latin_lookalike), s.len())
}

/// `chars` with every run of whitespace one space, none leading or trailing.
fn spaced(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut space = false;
    for c in chars {
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

/// [`fold`] of `s` as a model may read what is hidden in it: an invisible character between
/// two words separates them (`ignore\u{200b}previous`, `do\u{ad}not`), and a tag character
/// (U+E0020–E007E, "ASCII smuggling") is the ASCII character it shadows.
pub fn fold_revealed(s: &str) -> String {
    let mut revealed = String::with_capacity(s.len());
    let mut prev = ' ';
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        revealed.push(match c as u32 {
            0xE0020..=0xE007E => char::from_u32(c as u32 - 0xE0000).unwrap_or(' '),
            _ if hides(prev, c, chars.peek().copied()) => ' ',
            _ => c,
        });
        prev = c;
    }
    fold(&revealed)
}

/// `s` as whoever strips the disguise reads it: NFKC (fullwidth and mathematical letters become
/// plain ones) without invisible characters, look-alikes of other scripts as the Latin letters
/// they are drawn as, case and everything else kept. What a secret with a zero-width space in it
/// (`gh\u{200b}p_…`) or a Cyrillic `о` (`ghp_…о…`) is to its receiver.
pub fn unhide(s: &str) -> String {
    // Combining marks go too (`g\u{336}h\u{336}p\u{336}_…` strikes through a token that is
    // still there): NFKC has already composed the ones that belong to a letter.
    s.nfkc()
        .filter(|c| !is_invisible(*c) && !unicode_normalization::char::is_combining_mark(*c))
        .map(latin_lookalike_cased)
        .collect()
}

/// [`latin_lookalike`] keeping case: a capital is drawn as the Latin capital (`О`, `Ο` are `O`).
fn latin_lookalike_cased(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    match c {
        // Capitals drawn as another letter than their small form's look-alike.
        'Н' | 'Η' => 'H',
        'В' | 'Β' => 'B',
        'Ν' => 'N',
        'Μ' | 'М' => 'M',
        'Ζ' => 'Z',
        'Υ' | 'Ү' => 'Y',
        'Р' | 'Ρ' => 'P',
        'Т' | 'Τ' => 'T',
        'Х' | 'Χ' => 'X',
        'К' | 'Κ' => 'K',
        _ if c.is_uppercase() => {
            let small = c.to_lowercase().next().unwrap_or(c);
            let latin = latin_lookalike(small);
            if latin.is_ascii_lowercase() {
                latin.to_ascii_uppercase()
            } else {
                c
            }
        }
        _ => latin_lookalike(c),
    }
}

/// A name's comparison form: [`fold`] without separators, so `read_file`, `Read-File` and
/// `rеad_fіle` (Cyrillic `е`, `і`) share one skeleton.
pub fn skeleton(name: &str) -> String {
    fold(name)
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'))
        // ASCII look-alikes in names: `read_fiIe` (capital I, lowered to i), `de1ete`, `t0ol`.
        .map(|c| match c {
            'i' | '1' | '|' => 'l',
            '0' => 'o',
            c => c,
        })
        .collect()
}

/// [`fold`], with every character that is not a letter or digit a space: `Ignore-previous_
/// instructions` reads as the words it is.
pub fn words(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        let c = if c.is_alphanumeric() || c == '\'' { c } else { ' ' };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_form_is_the_unicode_form() {
        let all: String = (0u8..=0x7f).map(char::from).collect();
        for s in [all.as_str(), "  Ignore\tALL\u{7f}  previous\n\ninstructions ", "\u{1}x\u{b}y\u{c}z"] {
            let unicode: String =
                spaced(s.nfkd().filter(|c| !is_invisible(*c)).flat_map(char::to_lowercase).map(latin_lookalike), s.len());
            assert_eq!(fold(s), unicode, "{s:?}");
            assert_eq!(has_invisible(s), s.chars().any(is_invisible), "{s:?}");
        }
        assert!(!is_leet_word(b"01T17"), "a timestamp's day and hour");
        assert!(is_leet_word(b"1gn0r3") && is_leet_word(b"7h3"));
    }

    #[test]
    fn tricks_that_hide_a_phrase_are_undone() {
        assert_eq!(fold("Ignore  PREVIOUS\tinstructions"), "ignore previous instructions");
        assert_eq!(fold("ｉｇｎｏｒｅ 𝐩𝐫𝐞𝐯𝐢𝐨𝐮𝐬"), "ignore previous", "fullwidth and mathematical letters");
        assert_eq!(fold("ig\u{200b}no\u{2060}re"), "ignore", "zero-width characters inside a word");
        assert_eq!(fold("іgnоrе"), "ignore", "Cyrillic look-alikes");
        assert_eq!(fold("ɪɢɴᴏʀᴇ ᴘʀᴇᴠɪᴏᴜꜱ"), "ignore previous", "Latin small capitals");
        assert_eq!(
            fold("dis\u{1bca0}regard the a\u{206a}bove"),
            "disregard the above",
            "shorthand and deprecated format controls"
        );
        assert_eq!(fold("ﬁle"), "file", "ligature");
        assert_eq!(fold("déjà vu"), "deja vu", "marks go, letters stay");
        assert_eq!(fold("i\u{307}gnore"), "ignore", "a combining mark on a letter");
        assert_eq!(words(&fold("Ignore-previous_instructions!")), "ignore previous instructions");
    }

    #[test]
    fn invisible_characters() {
        assert!(has_invisible("read\u{E0041}\u{E0042}"), "tag characters");
        assert!(has_invisible("abc\u{202E}fed"), "bidi override");
        assert!(has_invisible("a\u{200B}b") && has_invisible("\u{FEFF}x") && has_invisible("x\u{E0101}"));
        assert!(!has_invisible("plain text, émoji 😀 and 中文"));
        assert!(!has_invisible("⚠\u{FE0F} deletes; 👩\u{200D}💻; می\u{200C}خواهم"), "emoji selectors and joiners are typography");
        assert!(has_invisible("a\u{2800}b") && has_invisible("x\u{180B}"));
    }

    #[test]
    fn names_that_look_alike_share_a_skeleton() {
        assert_eq!(skeleton("read_file"), skeleton("Read-File"));
        assert_eq!(skeleton("read_file"), skeleton("rеad_fіle"));
        assert_ne!(skeleton("read_file"), skeleton("read_files"));
        assert_eq!(skeleton("read_file"), skeleton("read_fiIe"), "capital I for l");
        assert_eq!(skeleton("delete_file"), skeleton("de1ete_file"));
    }
}
