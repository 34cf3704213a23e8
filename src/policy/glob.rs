//! Glob patterns for rule matching: `*` (any run of characters, `/` included), `?` (exactly one
//! character) and `\` (escapes the next character). Nothing else is special; `[` is reserved so a
//! character class written by habit is an error instead of a literal that never matches.
//!
//! Matching is linear in practice (the classic two-pointer algorithm with one backtrack point),
//! so a hostile `Mcp-Name` cannot make a rule expensive.

use std::fmt;

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

    pub fn matches(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let p = &self.toks;
        let (mut ti, mut pi) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match (p.get(pi), t.get(ti)) {
                (Some(Tok::Star), _) => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                (Some(Tok::Any), Some(_)) => {
                    pi += 1;
                    ti += 1;
                }
                (Some(Tok::Lit(a)), Some(b)) if a == b => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p.iter().skip(pi).all(|t| *t == Tok::Star)
    }
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
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(!m("abc", "abcd"));
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
