//! What stands where a secret would go in documentation and templates: the `ghp_xxxx…`,
//! `sk_live_XXXX…` and `xoxb-your-bot-token-here` of READMEs and `.env.example` files, and the
//! `postgres:postgres@db` or `guest:guest@` of a compose file. None of these is a finding
//! (blocking a README is how a scanner gets switched off).
//!
//! Deliberately narrow: a value is a placeholder only in a shape no drawn secret takes and no
//! test suite uses for a real-looking one. AWS's documented pair (`AKIAIOSFODNN7EXAMPLE`),
//! alphabets in order (`ghp_ABC…789`) and one letter repeated stay findings: they are what
//! scanners' own test corpora carry as true positives. Each rule is about the whole value: a
//! real token with filler glued on is judged on the token's own length (`engine::detect`).

/// A token's body after its vendor prefix (`ghp_`, `sk_live_`, `xoxb-`) that is `x` filler or
/// words.
pub fn token_body(body: &[u8]) -> bool {
    filler(body) || words(body)
}

/// `xxxx…`, `XXXX…`, `****`, `....`: at least eight filler characters, four in five of all
/// (separators aside).
fn filler(body: &[u8]) -> bool {
    let mut n = 0usize;
    let mut fill = 0usize;
    for &b in body.iter().filter(|b| !matches!(b, b'-' | b'_')) {
        n += 1;
        if matches!(b, b'x' | b'X' | b'*' | b'.' | b'#') {
            fill += 1;
        }
    }
    fill >= 8 && fill * 5 >= n * 4
}

/// `your-bot-token-here`, `YOUR_API_KEY_HERE_123`: three parts or more joined by `-` or `_`,
/// each a word of one case or a number, two at least words. Random tokens mix case inside a
/// part or carry digits in it.
fn words(body: &[u8]) -> bool {
    let mut letter_words = 0;
    let mut parts = 0;
    for part in body.split(|b| matches!(b, b'-' | b'_')) {
        if part.is_empty() {
            continue;
        }
        parts += 1;
        let lower = part.iter().all(u8::is_ascii_lowercase);
        let upper = part.iter().all(u8::is_ascii_uppercase);
        if lower || upper {
            letter_words += 1;
        } else if !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts >= 3 && letter_words >= 2
}

/// A URL's password that is a dev default, not a secret: a lowercase word that is the user's
/// own name (`postgres:postgres`, `guest:guest`, `minioadmin:minioadmin`), or the default an
/// image's documentation ships (`root:example` for mongo, `default:redispw`).
pub fn url_password(user: &[u8], password: &[u8]) -> bool {
    let word = password.len() >= 3 && password.len() <= 24 && password.iter().all(u8::is_ascii_lowercase);
    word && (password == user || DEFAULTS.contains(&password))
}

/// Passwords images and tutorials ship as their defaults.
const DEFAULTS: &[&[u8]] = &[b"example", b"changeme", b"changeit", b"guest", b"redispw"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_stand_ins_are_placeholders() {
        for body in [
            &b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"[..],
            b"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            b"xxxxxxxxxxxx-xxxxxxxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx",
            b"api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            b"your-bot-token-here-please",
            b"YOUR_API_KEY_HERE_123",
        ] {
            assert!(token_body(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn random_tokens_and_test_suites_fakes_are_not() {
        for body in [
            &b"R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0"[..],
            b"4f9c2e7a1b3d5f6081a9c0e2d4b6f8a1",
            b"123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            b"api03-Xk2_pQ9z-L0mN4bV7cR1tY8uW3eA6sD5fG2hJ0kL9zXcVbNm",
            b"IOSFODNN7EXAMPLE",
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"000000000000000000000000000000000000",
            // Filler with a real token's worth of other characters between it.
            b"xRx7xcx0xaxWxqx1xzxXxyx2",
            // Letters only, but mixed case inside the parts.
            b"AbcDef-GhiJkl-MnoPqr",
        ] {
            assert!(!token_body(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn dev_default_passwords_are_placeholders_and_others_are_not() {
        assert!(url_password(b"postgres", b"postgres"));
        assert!(url_password(b"root", b"example"));
        assert!(url_password(b"default", b"redispw"));
        assert!(!url_password(b"admin", b"supersecret"));
        assert!(!url_password(b"app", b"Xk9pQ2zL"));
        assert!(!url_password(b"Xk9pQ2zLwq", b"Xk9pQ2zLwq"));
    }
}
