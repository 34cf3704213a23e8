//! Glob patterns for rule matching: `*` (any run of characters, `/` included), `?` (exactly one
//! character) and `\` (escapes the next character). Nothing else is special; `[` is reserved so a
//! character class written by habit is an error instead of a literal that never matches.
//!
//! Matching is linear in practice (the classic two-pointer algorithm with one backtrack point),
//! so a hostile `Mcp-Name` cannot make a rule expensive.

use std::fmt;

use super::error::{err, ConfigError};

/// Longest pattern accepted (bytes).
pub const MAX_GLOB_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A compiled glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    toks: Vec<Tok>,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl Glob {
    /// Compiles a pattern; the error says what is wrong with it (the caller adds the field).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty glob".to_owned());
        }
        if pattern.len() > MAX_GLOB_LEN {
            return Err(format!("glob longer than {MAX_GLOB_LEN} bytes"));
        }
        let mut toks = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '\\' => match chars.next() {
                    Some(n) => toks.push(Tok::Lit(n)),
                    None => return Err(format!("bad glob `{pattern}`: trailing `\\` escapes nothing")),
                },
                '[' | ']' | '{' | '}' => {
                    return Err(format!(
                    "bad glob `{pattern}`: `{c}` is reserved (only `*`, `?` and `\\` are special; write `\\{c}` for a literal)"
                ))
                }
                c if c.is_control() => return Err(format!("bad glob {pattern:?}: control character")),
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob { source: pattern.to_owned(), toks })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern has no wildcard (matches exactly one string).
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    /// Whole-string match. No allocation; `text` is walked by char with one backtrack point.
    pub fn matches(&self, text: &str) -> bool {
        let p = &self.toks;
        let (mut ti, mut pi) = (0usize, 0usize);
        // (index of the last `*`, byte offset in `text` where its run may resume)
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = text.get(ti..).and_then(|r| r.chars().next()) {
            match p.get(pi) {
                Some(Tok::Star) => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                Some(Tok::Any) => {
                    pi += 1;
                    ti += c.len_utf8();
                    continue;
                }
                Some(Tok::Lit(a)) if *a == c => {
                    pi += 1;
                    ti += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            let Some((sp, st)) = star else { return false };
            // Let the last `*` swallow one more character and retry after it.
            let width = text.get(st..).and_then(|r| r.chars().next()).map_or(1, char::len_utf8);
            pi = sp + 1;
            ti = st + width;
            star = Some((sp, ti));
        }
        p.iter().skip(pi).all(|t| *t == Tok::Star)
    }
}

/// Compiles every glob of a configuration list; a bad one is refused at `at[i]`.
pub fn globs(list: &[String], at: &str) -> Result<Vec<Glob>, ConfigError> {
    list.iter().enumerate().map(|(i, p)| Glob::new(p).map_err(|m| err(format!("{at}[{i}]"), m))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at/all"));
        assert!(m("delete_*", "delete_file"));
        assert!(!m("delete_*", "undelete_file"));
        assert!(m("*_file", "delete_file"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("spiffe://corp/ns/*/sa/agent", "spiffe://corp/ns/prod/sa/agent"));
        assert!(m("ü*", "über"));
        assert!(m("*r", "über"));
        assert!(m("?ber", "über"));
        assert!(m("*ü*", "xxüyy"));
        assert!(!m("*ü", "xxüyy"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(!m("abc", "abcd"));
    }

    /// Reference matcher: plain recursion over chars.
    fn naive(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| naive(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && naive(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
        }
    }

    #[test]
    fn agrees_with_a_naive_matcher() {
        let alphabet = ['a', 'b', 'ü', '*', '?'];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..20_000 {
            let pat: String = (0..1 + next(6)).map(|_| alphabet[next(5)]).collect();
            let text: String = (0..next(8)).map(|_| alphabet[next(3)]).collect();
            let p: Vec<char> = pat.chars().collect();
            let t: Vec<char> = text.chars().collect();
            assert_eq!(Glob::new(&pat).unwrap().matches(&text), naive(&p, &t), "{pat:?} vs {text:?}");
        }
    }

    #[test]
    fn hostile_text_is_cheap() {
        let text = "a".repeat(10_000);
        assert!(!m("*a*a*a*a*a*b", &text));
    }

    #[test]
    fn bad_globs() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a[bc]").unwrap_err().contains("reserved"));
        assert!(Glob::new("a\\").unwrap_err().contains("trailing"));
        assert!(Glob::new(&"x".repeat(300)).is_err());
    }
}
