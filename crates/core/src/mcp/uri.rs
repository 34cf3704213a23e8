//! Resource URIs as a server will resolve them, for policy matching: `file:///etc/%70asswd`,
//! `FILE:///srv/../etc/passwd` and `file:///etc/passwd` are one resource, and a rule on one
//! must hold for all of them.
//!
//! The normal form (RFC 3986 §6.2.2 and §5.2.4, plus what resource handlers do): scheme and host
//! lowercased, percent-encodings in the path decoded, dot segments removed, runs of `/` in the
//! path folded into one; query and fragment as sent. An encoding whose decoded meaning depends on the server (`%2F` or `%5C` inside a
//! segment, `%00`, an invalid `%` escape, bytes that decode to no UTF-8) has no single normal
//! form: [`normalize`] says so, and policy refuses such a URI wherever a deny or hide rule
//! would match it.
//!
//! Before that, what the URL Standard's parser (Node's `URL` / `fileURLToPath`, which the TS
//! SDK servers' resource handlers use; Python's `urllib` agrees on most) does first: leading and
//! trailing C0 controls and spaces go, ASCII tabs and newlines anywhere go, `\` is `/` in the
//! special schemes, and a `file:` URL's missing `//`, missing leading `/` and `localhost` host
//! all mean the same local path: `file:/etc/passwd`, `file:etc/passwd`,
//! `file://LOCALHOST/etc/passwd`, `file:\\\etc\passwd` and `" file:///et\tc/passwd"` are all
//! `file:///etc/passwd`.

/// The URI has no single reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;

/// The normal form of `uri` (see the module doc). A URI whose normal form would normalize to
/// something else again (removed dot segments exposing a control character, decoding that
/// forms a new escape) has no single reading either.
pub fn normalize(uri: &str) -> Result<String, Ambiguous> {
    let once = normalize_once(uri)?;
    match normalize_once(&once) {
        Ok(again) if again == once => Ok(once),
        _ => Err(Ambiguous),
    }
}

fn normalize_once(uri: &str) -> Result<String, Ambiguous> {
    let mut prepared = url_standard_prepare(uri);
    // A special scheme (http, https, ws, wss, ftp, file) is read by the URL Standard's own parser
    // first, as Node's `new URL` / `fileURLToPath` in the TS SDKs' resource lookup reads it:
    // IDNA (`ｌｏｃａｌｈｏｓｔ`, `internal。example`), default and empty ports, empty userinfo,
    // missing or extra `//`, numeric IPv4 hosts. A URL it refuses has no single reading.
    let scheme_end = prepared.find(':').filter(|&i| is_scheme(prepared.get(..i).unwrap_or_default()));
    if let Some(i) = scheme_end {
        if SPECIAL_SCHEMES.iter().any(|s| prepared.get(..i).is_some_and(|p| p.eq_ignore_ascii_case(s))) {
            prepared = url::Url::parse(&prepared).map_err(|_| Ambiguous)?.as_str().to_owned();
        }
    }
    let uri = prepared.as_str();
    let (scheme, rest) = match uri.find(':') {
        Some(i) if is_scheme(uri.get(..i).unwrap_or_default()) => {
            (uri.get(..i).unwrap_or_default(), uri.get(i + 1..).unwrap_or_default())
        }
        _ => ("", uri),
    };
    let mut out = String::with_capacity(uri.len());
    if !scheme.is_empty() {
        out.push_str(&scheme.to_ascii_lowercase());
        out.push(':');
    }
    let special = SPECIAL_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s));
    let backslashes_as_slashes;
    let mut rest = if special && rest.contains('\\') {
        backslashes_as_slashes = rest.replace('\\', "/");
        backslashes_as_slashes.as_str()
    } else {
        rest
    };
    let file_path;
    if scheme.eq_ignore_ascii_case("file") {
        match rest.strip_prefix("//") {
            // `file://localhost/p` is `file:///p`.
            Some(after)
                if after.get(..9).is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
                    && matches!(after.as_bytes().get(9), None | Some(b'/' | b'?' | b'#')) =>
            {
                file_path = format!("//{}", after.get(9..).unwrap_or_default());
                rest = file_path.as_str();
            }
            Some(_) => {}
            // `file:/p` and `file:p` are `file:///p`.
            None => {
                file_path = format!("///{}", rest.trim_start_matches('/'));
                rest = file_path.as_str();
            }
        }
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = after.get(..end).unwrap_or_default();
        out.push_str("//");
        // userinfo keeps its case; the host does not matter in case.
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(authority.get(..=at).unwrap_or_default());
                out.push_str(&decode(authority.get(at + 1..).unwrap_or_default())?.to_ascii_lowercase());
            }
            None => out.push_str(&decode(authority)?.to_ascii_lowercase()),
        }
        rest = after.get(end..).unwrap_or_default();
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (path, tail) = (rest.get(..end).unwrap_or_default(), rest.get(end..).unwrap_or_default());
    let mut segments: Vec<String> = Vec::new();
    for seg in path.split('/') {
        segments.push(decode(seg)?);
    }
    let path = remove_dots(&segments, path.starts_with('/'));
    if out.is_empty() && path.split('/').next().is_some_and(|first| first.contains(':')) {
        // `../a:b` resolves to `a:b`, which reads as a scheme: a relative reference whose first
        // segment holds a colon has no single reading (RFC 3986 §4.2).
        return Err(Ambiguous);
    }
    out.push_str(&path);
    // Query and fragment stay as sent (resource handlers do not resolve them as paths), but for
    // `file:`, whose handlers (`fileURLToPath`) drop them: `file:///etc/passwd#x` is that file.
    if !scheme.eq_ignore_ascii_case("file") {
        out.push_str(tail);
    }
    Ok(out)
}

/// For a URI without a single reading: the reading that decodes every valid escape (delimiters
/// included, `%00` dropped, invalid UTF-8 replaced) and then normalizes as [`normalize`] does.
/// Policy checks deny rules against it and against the URI as sent, so neither spelling
/// escapes a rule.
pub fn lenient(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| {
                bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match escaped {
            Some(0) => i += 3,
            Some(v) => {
                out.push(if v == b'\\' { b'/' } else { v });
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&out).into_owned();
    normalize(&decoded.replace('%', "%25")).unwrap_or(decoded)
}

/// The URL Standard's special schemes: in them `\` is a path separator.
const SPECIAL_SCHEMES: [&str; 6] = ["file", "http", "https", "ws", "wss", "ftp"];

/// What the URL Standard's basic parser removes before it reads anything: leading and trailing
/// C0 controls and spaces, and ASCII tab and newline anywhere.
fn url_standard_prepare(uri: &str) -> String {
    uri.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect()
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Percent-decodes one segment; a decoded delimiter or NUL, a bad escape or bad UTF-8 is ambiguous.
fn decode(seg: &str) -> Result<String, Ambiguous> {
    if !seg.contains('%') {
        return Ok(seg.to_owned());
    }
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or(Ambiguous)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| Ambiguous)?;
            if matches!(v, b'/' | b'\\' | 0 | b'%' | b'?' | b'#') {
                return Err(Ambiguous);
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Ambiguous)
}

/// RFC 3986 §5.2.4 over decoded segments; empty segments (runs of `/`) fold away.
fn remove_dots(segments: &[String], absolute: bool) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match seg.as_str() {
            "" => trailing_slash = i == last && i > 0,
            "." => trailing_slash = i == last,
            ".." => {
                kept.pop();
                trailing_slash = i == last;
            }
            s => {
                kept.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::new();
    if absolute {
        out.push('/');
    }
    out.push_str(&kept.join("/"));
    if trailing_slash && !kept.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_resource_share_one_form() {
        for u in [
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "file:///etc/%70asswd",
            "file:///srv/../etc/passwd",
            "file:///srv/%2e%2e/etc/passwd",
            "file:///./etc//passwd",
            "file:////etc/passwd",
            // What the URL Standard's parser reads as the same file (found by the SDK replay).
            "file:/etc/passwd",
            "file:etc/passwd",
            "file://localhost/etc/passwd",
            "file://LOCALHOST/etc/passwd",
            "file:\\\\\\etc\\passwd",
            "file:///et\tc/passwd",
            " file:///etc/passwd",
            "\u{0}file:///etc/passwd\n",
        ] {
            assert_eq!(normalize(u).as_deref(), Ok("file:///etc/passwd"), "{u}");
        }
        assert_eq!(normalize("HTTPS://Example.COM/a/./b/../c?q=%41").as_deref(), Ok("https://example.com/a/c?q=%41"));
        assert_eq!(normalize("ui://widget/app.html").as_deref(), Ok("ui://widget/app.html"));
        assert_eq!(normalize("notes/today").as_deref(), Ok("notes/today"));
        assert_eq!(normalize("file:///a/b/").as_deref(), Ok("file:///a/b/"));
        // What the URL Standard reads as the same resource (found in review).
        for u in ["file://ｌｏｃａｌｈｏｓｔ/etc/passwd", "file:///etc/passwd"] {
            assert_eq!(normalize(u).as_deref(), Ok("file:///etc/passwd"), "{u}");
        }
        for u in [
            "https://internal.example:443/secret",
            "https://internal.example:0443/secret",
            "https://internal.example:/secret",
            "https:internal.example/secret",
            "https:///internal.example/secret",
            "https://@internal.example/secret",
            "https://:@internal.example/secret",
            "https://internal\u{3002}example/secret",
            "HTTPS://INTERNAL.example/./secret",
        ] {
            assert_eq!(normalize(u).as_deref(), Ok("https://internal.example/secret"), "{u}");
        }
        assert_eq!(normalize("http://0x7f.1/a").as_deref(), Ok("http://127.0.0.1/a"));
        assert_eq!(normalize("file:///srv/My%20Docs/a").as_deref(), Ok("file:///srv/My Docs/a"));
        assert_eq!(normalize("file:///etc/passwd#x").as_deref(), Ok("file:///etc/passwd"), "a file has no fragment");
        assert_eq!(normalize("file:///etc/passwd?v=1").as_deref(), Ok("file:///etc/passwd"));
        assert_eq!(normalize("file://server/share/a").as_deref(), Ok("file://server/share/a"), "a real host stays");
        assert_eq!(normalize("file://localhostx/a").as_deref(), Ok("file://localhostx/a"));
        assert_eq!(normalize("ui://w\\x").as_deref(), Ok("ui://w\\x"), "not a special scheme: \\ is data");
    }

    #[test]
    fn the_lenient_reading_decodes_what_a_server_might() {
        assert_eq!(lenient("file:///etc%2fpasswd"), "file:///etc/passwd");
        assert_eq!(lenient("file:///etc%5cpasswd"), "file:///etc/passwd");
        assert_eq!(lenient("file:///etc/passwd%00"), "file:///etc/passwd");
        assert_eq!(lenient("FILE:///srv/%2e%2e%2fetc/shadow"), "file:///etc/shadow");
        assert_eq!(lenient("file:///a/%zz"), "file:///a/%zz");
    }

    #[test]
    fn encodings_whose_meaning_depends_on_the_server_are_ambiguous() {
        for u in [
            "file:///etc%2fpasswd",
            "file:///etc/pa%5Csswd",
            "file:///etc/passwd%00.txt",
            "file:///etc/%zz",
            "file:///%ff%fe",
            "file:///a%",
        ] {
            assert_eq!(normalize(u), Err(Ambiguous), "{u}");
        }
    }
}
