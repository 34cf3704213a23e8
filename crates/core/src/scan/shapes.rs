//! The validators of the anchored detectors with a shape of their own (see
//! [`super::catalog::Rule::Check`]): each is handed the scanned text and where its anchor matched,
//! and returns the span of the secret, or `None` when the bytes around the anchor are not one.
//! Shared pieces: [`keyed_value_start`] (the separator after a keyword) and the left boundary.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

use super::chars::{
    self, at, count, count_back, Set, Span, ALNUM, B64, B64_BODY, DIGIT, HEX, HEX_ANY_CASE, LOWER_DIGIT, URLSAFE,
};
use super::wallet;

/// True when the byte before `s` cannot continue a token (start of text, or not a letter/digit).
pub fn left_boundary(t: &[u8], s: usize) -> bool {
    s == 0 || !at(t, s - 1, ALNUM)
}

/// After a keyword ending at `e`: the rest of a name (`_ID_2`), a closing quote, `=` / `:` (or
/// `=>` / `:=`), an opening quote, with spaces between. Where the value starts, or `None` when
/// no assignment follows.
pub fn keyed_value_start(t: &[u8], e: usize) -> Option<usize> {
    let mut i =
        e + count(t, e, Set(chars::DIGIT | chars::LOWER | chars::UPPER | chars::UNDERSCORE | chars::DASH | chars::DOT), 24);
    let skip = |i: &mut usize, f: &dyn Fn(u8) -> bool, cap: usize| {
        let mut n = 0;
        while n < cap && t.get(*i).is_some_and(|b| f(*b)) {
            *i += 1;
            n += 1;
        }
    };
    let quote = |b: u8| matches!(b, b'"' | b'\'' | b'`' | b'\\');
    // Any JSON or YAML whitespace, line breaks too (`"key"\n  : "value"` parses like the rest).
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    skip(&mut i, &quote, 2);
    skip(&mut i, &space, 16);
    // A name / value pair (Kubernetes and ECS `env`, CloudFormation parameters):
    // `{"name": "AWS_SECRET_ACCESS_KEY", "value": "…"}`.
    if t.get(i) == Some(&b',') {
        let mut j = i + 1;
        skip(&mut j, &space, 16);
        skip(&mut j, &quote, 1);
        let field = t.get(j..).unwrap_or_default();
        let named = ["value", "parametervalue"]
            .iter()
            .find(|n| field.get(..n.len()).is_some_and(|f| f.eq_ignore_ascii_case(n.as_bytes())));
        i = j + named?.len();
        skip(&mut i, &quote, 1);
        skip(&mut i, &space, 16);
    }
    match t.get(i) {
        Some(b'=') | Some(b':') => i += 1,
        _ => return None,
    }
    if matches!(t.get(i), Some(b'>') | Some(b'=')) {
        i += 1;
    }
    skip(&mut i, &space, 16);
    skip(&mut i, &quote, 2);
    Some(i)
}

/// `amzn.mws.` then a UUID.
pub fn uuid_after(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let hex = Set(HEX_ANY_CASE.0);
    let mut i = e;
    for (k, len) in [8usize, 4, 4, 4, 12].into_iter().enumerate() {
        if k > 0 {
            if t.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
        }
        if count(t, i, hex, len + 1) != len {
            return None;
        }
        i += len;
    }
    Some((s, i))
}

/// `"type": "service_account"` with a `private_key` in the same document: a Google service
/// account key file.
pub fn gcp_service_account(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let before = t.get(s.saturating_sub(24)..s)?;
    if !contains(before, b"type") {
        return None;
    }
    let window = t.get(s.saturating_sub(2048)..(e + 2048).min(t.len()))?;
    contains(window, b"private_key").then_some((s, e))
}

/// `AccountKey=` then 86 base64 bytes and `==` (a 64-byte storage key).
pub fn azure_account_key(t: &[u8], _s: usize, e: usize) -> Option<Span> {
    (count(t, e, B64_BODY, 87) == 86 && t.get(e + 86..e + 88) == Some(b"==")).then_some((e, e + 88))
}

/// `SharedAccessKey=` then 43 base64 bytes and `=` (a 32-byte Service Bus / Event Hubs key).
pub fn azure_shared_access_key(t: &[u8], _s: usize, e: usize) -> Option<Span> {
    (count(t, e, B64_BODY, 44) == 43 && t.get(e + 43) == Some(&b'=')).then_some((e, e + 44))
}

/// `sig=` of a URL query that also carries `sv=` (a shared access signature).
pub fn azure_sas(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if !matches!(s.checked_sub(1).and_then(|p| t.get(p)), Some(b'&') | Some(b'?')) {
        return None;
    }
    if !contains(t.get(s.saturating_sub(400)..s)?, b"sv=") {
        return None;
    }
    // Base64, `%` for its percent-encoded `+`, `/`, `=`.
    let n = t.get(e..)?.iter().take(201).take_while(|b| B64.has(**b) || **b == b'%').count();
    (40..=200).contains(&n).then_some((e, e + n))
}

/// Three characters, `8Q~`, then 31–34 more: an Entra ID (Azure AD) client secret.
pub fn azure_client_secret(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let set = Set(ALNUM.0 | chars::UNDERSCORE | chars::TILDE | chars::DOT | chars::DASH);
    let start = s.checked_sub(3)?;
    if count_back(t, s, set, 4) != 3 {
        return None;
    }
    let n = count(t, e, set, 35);
    (31..=34).contains(&n).then_some((start, e + n))
}

/// 14 characters, `.atlasv1.`, then 60–70: a Terraform Cloud / Enterprise API token.
pub fn terraform_token(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if count_back(t, s, LOWER_DIGIT, 15) != 14 || !left_boundary(t, s - 14) {
        return None;
    }
    let n = count(t, e, URLSAFE, 71);
    (60..=70).contains(&n).then_some((s - 14, e + n))
}

/// `discord.com/api/webhooks/<id>/<token>`.
pub fn discord_webhook(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let id = count(t, e, Set(DIGIT), 21);
    if !(17..=20).contains(&id) || t.get(e + id) != Some(&b'/') {
        return None;
    }
    let from = e + id + 1;
    let n = count(t, from, URLSAFE, 69);
    (60..=68).contains(&n).then_some((s, from + n))
}

/// `<bot id>:AA<33>`: a Telegram bot token.
pub fn telegram_bot_token(t: &[u8], s: usize, _e: usize) -> Option<Span> {
    let digits = count_back(t, s, Set(DIGIT), 11);
    // In the Bot API's URLs the token follows `bot`: `/bot123456789:AA…/sendMessage`.
    let after_bot = s >= digits + 3 && t.get(s - digits - 3..s - digits) == Some(b"bot");
    if !(8..=10).contains(&digits) || !(left_boundary(t, s - digits) || after_bot) {
        return None;
    }
    let from = s + 1;
    (count(t, from, URLSAFE, 36) == 35).then_some((s - digits, from + 35))
}

/// `SG.<22>.<43>`: a SendGrid API key.
pub fn sendgrid(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if !left_boundary(t, s) || count(t, e, URLSAFE, 23) != 22 || t.get(e + 22) != Some(&b'.') {
        return None;
    }
    (count(t, e + 23, URLSAFE, 44) == 43).then_some((s, e + 66))
}

/// `<32 hex>-us<n>`: a Mailchimp API key (its data-centre suffix).
pub fn mailchimp(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if count_back(t, s, HEX, 33) != 32 || !left_boundary(t, s - 32) {
        return None;
    }
    let n = count(t, e, Set(DIGIT), 3);
    ((1..=2).contains(&n) && !at(t, e + n, ALNUM)).then_some((s - 32, e + n))
}

/// `<36 hex>NRAL`: a New Relic license key.
pub fn newrelic_license(t: &[u8], s: usize, e: usize) -> Option<Span> {
    (count_back(t, s, HEX, 37) == 36 && left_boundary(t, s - 36) && !at(t, e, ALNUM)).then_some((s - 36, e))
}

/// `access_token$production$<16>$<32 hex>`: a Braintree access token.
pub fn braintree(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if count(t, e, LOWER_DIGIT, 17) != 16 || t.get(e + 16) != Some(&b'$') {
        return None;
    }
    (count(t, e + 17, HEX, 33) == 32).then_some((s, e + 49))
}

/// A legacy OpenAI key: `sk-…T3BlbkFJ…` (`T3BlbkFJ` is base64 for `OpenAI`).
pub fn openai_legacy(t: &[u8], s: usize, e: usize) -> Option<Span> {
    // The key as it was issued before the marker: `sk-` and exactly 48 letters and digits.
    if t.get(s..e) == Some(b"sk-") {
        let body = count(t, e, ALNUM, 49);
        return (body == 48 && left_boundary(t, s) && !at(t, e + body, URLSAFE)).then_some((s, e + body));
    }
    let back = count_back(t, s, URLSAFE, 200);
    let start = s - back;
    if t.get(start..start + 3) != Some(b"sk-") || !left_boundary(t, start) {
        return None;
    }
    let end = e + count(t, e, URLSAFE, 200);
    (end - start >= 40).then_some((start, end))
}

/// A PEM / OpenSSH / PGP private key block: the BEGIN line, optional armour headers, at least
/// 64 base64 characters of body, and the END line when there is one.
pub fn pem_block(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let mut i = e;
    let mut body = 0usize;
    let mut headers = 0;
    loop {
        i += count(t, i, Set(chars::SPACE), 64);
        // A literal `\n` left by a second level of escaping separates lines too.
        if t.get(i..i + 2) == Some(b"\\n") || t.get(i..i + 2) == Some(b"\\r") {
            i += 2;
            continue;
        }
        // So does the end of one string of a JSON array and the start of the next (a key sent
        // as its lines: `"-----BEGIN PRIVATE KEY-----","MIGH…",…`).
        if let Some(n) = next_string_of_list(t, i) {
            i += n;
            continue;
        }
        // An armour header (`Proc-Type: 4,ENCRYPTED`, `Version: …`) before the body.
        let name = count(t, i, Set(ALNUM.0 | chars::DASH), 32);
        if body == 0 && headers < 8 && name > 0 && t.get(i + name) == Some(&b':') {
            headers += 1;
            i += name + 1;
            i += t.get(i..).unwrap_or_default().iter().take(256).take_while(|b| !matches!(b, b'\n' | b'\\')).count();
            continue;
        }
        let line = count(t, i, B64, 4096);
        if line == 0 {
            break;
        }
        body += line;
        i += line;
    }
    if body < 64 {
        return None;
    }
    let mut end = i;
    if t.get(i..i + 8) == Some(b"-----END") {
        let rest = t.get(i + 8..).unwrap_or_default();
        if let Some(p) = find(rest.get(..rest.len().min(64)).unwrap_or_default(), b"-----") {
            end = i + 8 + p + 5;
        }
    }
    Some((s, end))
}

/// At `i`, `"` `,` `"` with whitespace around the comma: how many bytes it takes.
fn next_string_of_list(t: &[u8], i: usize) -> Option<usize> {
    if t.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    j += count(t, j, Set(chars::SPACE), 16);
    if t.get(j) != Some(&b',') {
        return None;
    }
    j += 1;
    j += count(t, j, Set(chars::SPACE), 16);
    (t.get(j) == Some(&b'"')).then_some(j + 1 - i)
}

/// At `i`, where one string of a message ends: where the next string value of the same array
/// or object starts (`","`, `", "`, or `","key":"`, whitespace between). A token cut into the
/// strings of one message is read on there: a tool that joins them has it whole.
pub fn next_string_value(t: &[u8], i: usize) -> Option<usize> {
    let j = i + next_string_of_list(t, i)?;
    // An object's next member: its key, then the value.
    if let Some(k) = t.get(j..).unwrap_or_default().iter().take(64).position(|b| *b == b'"') {
        let mut m = j + k + 1;
        m += count(t, m, Set(chars::SPACE), 16);
        if t.get(m) == Some(&b':') {
            m += 1;
            m += count(t, m, Set(chars::SPACE), 16);
            return (t.get(m) == Some(&b'"')).then_some(m + 1);
        }
    }
    Some(j)
}

/// Decoded bytes that begin as a DER private key without its PEM armour: a SEQUENCE whose
/// first element is the version INTEGER 0 followed by an algorithm SEQUENCE (PKCS#8) or the
/// modulus INTEGER (PKCS#1 RSA, DSA), or the version 1 followed by the key's OCTET STRING (SEC1
/// EC). Only the header is read: the first line of a key sent line by line is enough.
/// Certificates, public keys, CSRs and CMS start otherwise (a SEQUENCE or an OID first).
pub fn der_private_key(d: &[u8]) -> bool {
    let start = match (d.first(), d.get(1)) {
        (Some(0x30), Some(&l)) if l < 0x80 => 2,
        (Some(0x30), Some(0x81)) => 3,
        (Some(0x30), Some(0x82)) => 4,
        _ => return false,
    };
    matches!(d.get(start..start + 4), Some([0x02, 0x01, 0x00, 0x30 | 0x02] | [0x02, 0x01, 0x01, 0x04]))
}

/// A PuTTY key file: the header and, within the file, its `Private-Lines:`.
pub fn putty(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let rest = t.get(e..(e + 4096).min(t.len()))?;
    let p = find(rest, b"Private-Lines:")?;
    Some((s, e + p + 14))
}

/// `header.payload.signature`, each base64url, the header a JSON object with `alg`: where the
/// token ends and its decoded payload.
fn jwt_parts(t: &[u8], s: usize) -> Option<(usize, Vec<u8>)> {
    if s > 0 && (at(t, s - 1, URLSAFE) || t.get(s - 1) == Some(&b'.')) {
        return None;
    }
    let h = count(t, s, URLSAFE, 2048);
    if h < 10 || t.get(s + h) != Some(&b'.') {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(t.get(s..s + h)?).ok()?;
    if header.first() != Some(&b'{') || !contains(&header, b"\"alg\"") {
        return None;
    }
    let p0 = s + h + 1;
    let p = count(t, p0, URLSAFE, 65536);
    if p < 10 || t.get(p0..p0 + 3) != Some(b"eyJ") || t.get(p0 + p) != Some(&b'.') {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(t.get(p0..p0 + p)?).ok()?;
    let s0 = p0 + p + 1;
    let sig = count(t, s0, URLSAFE, 4096);
    if sig < 16 && !contains(&header, b"none") {
        return None;
    }
    Some((s0 + sig, payload))
}

fn is_kubernetes(payload: &[u8]) -> bool {
    contains(payload, b"kubernetes.io") || contains(payload, b"kubernetes/serviceaccount")
}

/// A JSON Web Token (not a Kubernetes one: that detector names those).
pub fn jwt(t: &[u8], s: usize, _e: usize) -> Option<Span> {
    let (end, payload) = jwt_parts(t, s)?;
    (!is_kubernetes(&payload)).then_some((s, end))
}

/// A Kubernetes service-account token: a JWT issued by the cluster.
pub fn kubernetes_jwt(t: &[u8], s: usize, _e: usize) -> Option<Span> {
    let (end, payload) = jwt_parts(t, s)?;
    is_kubernetes(&payload).then_some((s, end))
}

/// `scheme://user:password@host`: the password, unless it is a placeholder (`${DB_PASS}`,
/// `<password>`, `password`, `****`).
pub fn url_password(t: &[u8], _s: usize, e: usize) -> Option<Span> {
    let authority = t
        .get(e..)?
        .iter()
        .take(512)
        .take_while(|b| {
            !matches!(b, b'/' | b'?' | b'#' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')
        })
        .count();
    let auth = t.get(e..e + authority)?;
    let at_sign = auth.iter().rposition(|b| *b == b'@')?;
    let colon = auth.get(..at_sign)?.iter().position(|b| *b == b':')?;
    let password = auth.get(colon + 1..at_sign)?;
    let host_ok = auth.get(at_sign + 1).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'[');
    let user = auth.get(..colon).unwrap_or_default();
    let dev_default = super::placeholder::url_password(user, password);
    (host_ok && !password.is_empty() && !placeholder(password) && !dev_default).then_some((e + colon + 1, e + at_sign))
}

/// Values that stand for a secret without being one.
pub(super) fn placeholder(v: &[u8]) -> bool {
    let lower = v.to_ascii_lowercase();
    // `${DB_PASS}`, `$(cat f)`, `$DB_PASSWORD`, `%(password)s`, `{{ secret }}`, `<password>`.
    let variable = v.first() == Some(&b'$')
        && v.get(1).is_some_and(|b| matches!(b, b'{' | b'(') || b.is_ascii_uppercase())
        && v.iter()
            .skip(1)
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'_' | b'{' | b'}' | b'(' | b')' | b':' | b'-'));
    variable
        || matches!(v.first(), Some(b'{') | Some(b'<') | Some(b'['))
        || v.starts_with(b"%(")
        || v.starts_with(b"%s")
        || v.iter().all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'#'))
        || matches!(
            lower.as_slice(),
            b"password"
                | b"pass"
                | b"passwd"
                | b"pwd"
                | b"secret"
                | b"pw"
                | b"p"
                | b"yourpassword"
                | b"your_password"
                | b"mypassword"
                | b"changeme_in_production"
                | b"redacted"
                | b"hidden"
                | b"token"
        )
}

/// A `.netrc` entry (`machine HOST login USER password PASS`, on one line or several): the
/// password, unless it is a placeholder. Read within the entry (the next `machine` ends it).
pub fn netrc_password(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if !left_boundary(t, s) {
        return None;
    }
    let entry = t.get(e..(e + 512).min(t.len()))?;
    let entry = entry.get(..find(entry, b"machine ").unwrap_or(entry.len()))?;
    let words: Vec<(usize, &[u8])> = entry
        .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .scan(0usize, |at, w| {
            let start = *at;
            *at += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let key = |k: &[u8]| words.iter().position(|(_, w)| w.eq_ignore_ascii_case(k));
    key(b"login")?;
    let (at, value) = *words.get(key(b"password")? + 1)?;
    let ok = value.len() >= 6 && value.len() <= 128 && !placeholder(value) && !super::placeholder::token_body(value);
    ok.then_some((e + at, e + at + value.len()))
}

/// `Authorization: Basic <base64 of user:password>`.
pub fn basic_auth(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let before = t.get(s.saturating_sub(32)..s)?.to_ascii_lowercase();
    if !contains(&before, b"authorization") {
        return None;
    }
    let n = count(t, e, B64, 1025);
    if !(8..=1024).contains(&n) {
        return None;
    }
    let (_, password) = base64_login(t.get(e..e + n)?)?;
    (!password.is_empty()).then_some((e, e + n))
}

/// A base64 `user:password` (Basic auth, a Docker config's `auth`): the two halves, when the
/// token decodes to printable text with a user before its first colon.
pub fn base64_login(token: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let decoded = STANDARD_NO_PAD.decode(trim_padding(token)).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let printable = decoded.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    (printable && colon > 0)
        .then(|| (decoded.get(..colon).unwrap_or_default().to_vec(), decoded.get(colon + 1..).unwrap_or_default().to_vec()))
}

/// `Bearer <token>`: a token of 20+ characters with letters and digits and no placeholder look.
pub fn bearer(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if !left_boundary(t, s) {
        return None;
    }
    let set = Set(URLSAFE.0 | chars::DOT | chars::TILDE | chars::PLUS_SLASH | chars::EQUALS);
    let n = count(t, e, set, 4097);
    if !(20..=4096).contains(&n) {
        return None;
    }
    let token = t.get(e..e + n)?;
    let mixed = token.iter().any(u8::is_ascii_digit) && token.iter().any(u8::is_ascii_alphabetic);
    let stand_in = super::placeholder::token_body(token);
    (mixed && !stand_in && chars::entropy(token) >= 3.0).then_some((e, e + n))
}

/// `xprv…` (and its testnet and segwit cousins): 111 base58 characters with a valid checksum.
pub fn extended_private_key(t: &[u8], s: usize, _e: usize) -> Option<Span> {
    if !left_boundary(t, s) {
        return None;
    }
    let n = count(t, s, Set(chars::BASE58), 112);
    let run = t.get(s..s + n)?;
    (n == 111 && wallet::base58check(run).is_some_and(|p| p.len() == 78)).then_some((s, s + n))
}

/// A keyword such as `private_key`, then 64 hex digits (with or without `0x`).
pub fn hex_private_key(t: &[u8], _s: usize, e: usize) -> Option<Span> {
    let mut v = keyed_value_start(t, e)?;
    if t.get(v..v + 2) == Some(b"0x") {
        v += 2;
    }
    (count(t, v, HEX_ANY_CASE, 65) == 64).then_some((v, v + 64))
}

/// A keyword (`password`, `client_secret`, `api_key` …) assigned a value that looks generated:
/// 12+ characters, letters and digits, not an identifier, not a placeholder.
pub fn secret_assignment(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let v = keyed_value_start(t, e).or_else(|| php_define_value(t, s, e))?;
    let n = t
        .get(v..)?
        .iter()
        .take(129)
        .take_while(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'"' | b'\'' | b'`' | b'(' | b')' | b'{' | b'}' | b'<' | b'>' | b',' | b';' | b'[' | b']' | b'\\')
        })
        .count();
    let value = t.get(v..v + n)?;
    // Twelve bytes, or eight that mix three kinds of characters (`Vq7#mR2p`): a short value of
    // one or two kinds is a word, a version or an identifier more often than a secret.
    let long_enough = n >= 12 || (n >= 8 && chars::character_kinds(value) >= 3);
    if !long_enough || n > 128 {
        return None;
    }
    let has_digit = value.iter().any(u8::is_ascii_digit);
    let has_alpha = value.iter().any(u8::is_ascii_alphabetic);
    let identifier = value.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'.' || *b == b'-')
        || value.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    let url = contains(value, b"://");
    let ok = has_digit && has_alpha && !identifier && !url && !placeholder(value) && chars::entropy(value) >= 3.0;
    ok.then_some((v, v + n))
}

/// PHP's `define('DB_PASSWORD', 'value')` (WordPress's `wp-config.php`): where the value
/// starts, when the keyword is the first argument of a `define` call.
fn php_define_value(t: &[u8], s: usize, e: usize) -> Option<usize> {
    let before = t.get(s.saturating_sub(24)..s)?.to_ascii_lowercase();
    if !contains(&before, b"define(") && !contains(&before, b"define (") {
        return None;
    }
    let spaces = |i: usize| i + count(t, i, Set(chars::SPACE), 16);
    let mut i = e + count(t, e, Set(chars::DIGIT | chars::LOWER | chars::UPPER | chars::UNDERSCORE), 24);
    (matches!(t.get(i), Some(b'\'' | b'"'))).then_some(())?;
    i = spaces(i + 1);
    (t.get(i) == Some(&b',')).then_some(())?;
    i = spaces(i + 1);
    matches!(t.get(i), Some(b'\'' | b'"')).then_some(i + 1)
}

fn trim_padding(s: &[u8]) -> &[u8] {
    let n = s.iter().rev().take_while(|b| **b == b'=').count();
    s.get(..s.len() - n).unwrap_or(s)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_separator_after_a_keyword_is_read_in_its_common_spellings() {
        for (text, value) in [
            (&b"password=abc"[..], 9),
            (b"password: abc", 10),
            (b"\"password\": \"abc\"", 13),
            (b"PASSWORD_PROD = 'abc'", 17),
            (b"password => abc", 12),
        ] {
            assert_eq!(keyed_value_start(text, 8), Some(value), "{}", String::from_utf8_lossy(text));
        }
        assert_eq!(keyed_value_start(b"password reset", 8), None);
    }

    #[test]
    fn url_passwords_are_found_and_placeholders_are_not() {
        let t = b"postgres://app:Zx9kq2Lm@db:5432/x";
        assert_eq!(url_password(t, 0, 11), Some((15, 23)));
        assert_eq!(url_password(b"postgres://app:${DB_PASSWORD}@db/x", 0, 11), None);
        assert_eq!(url_password(b"postgres://app@db/x", 0, 11), None);
        assert_eq!(url_password(b"https://example.com/a@b", 0, 8), None);
        assert_eq!(url_password(b"redis://:s3cr3tpw@cache:6379", 0, 8), Some((9, 17)));
    }

    #[test]
    fn a_pem_header_without_a_body_is_not_a_key() {
        let header = b"-----BEGIN RSA PRIVATE KEY-----";
        assert_eq!(pem_block(b"if line == '-----BEGIN RSA PRIVATE KEY-----':", 10, 10 + header.len()), None);
        let mut key = header.to_vec();
        key.extend_from_slice(
            b"\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpI\n-----END RSA PRIVATE KEY-----",
        );
        assert_eq!(pem_block(&key, 0, header.len()), Some((0, key.len())));
    }

    #[test]
    fn jwts_need_three_parts_and_a_header_with_alg() {
        let jwt_text =
            b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(jwt(jwt_text, 0, 3), Some((0, jwt_text.len())));
        assert_eq!(jwt(b"eyJhbGciOiJIUzI1NiJ9 is a header only", 0, 3), None);
        assert_eq!(kubernetes_jwt(jwt_text, 0, 3), None);
    }
}

#[cfg(test)]
mod netrc_tests {
    use super::*;

    fn at(t: &str) -> Option<String> {
        let s = t.find("machine ")?;
        netrc_password(t.as_bytes(), s, s + 8).map(|(a, b)| t[a..b].to_owned())
    }

    #[test]
    fn a_netrc_entrys_password_is_found_and_its_stand_ins_are_not() {
        assert_eq!(at("machine h login u password Xk9#pQ2zLw").as_deref(), Some("Xk9#pQ2zLw"));
        assert_eq!(at("machine h\n  login u\n  password Xk9#pQ2zLw\n").as_deref(), Some("Xk9#pQ2zLw"));
        assert_eq!(at("machine h login u password <password>"), None);
        assert_eq!(at("machine h login u password xxxxxxxxxx"), None);
        // No login in the entry: not a netrc entry; the next machine's words are not this one's.
        assert_eq!(at("the machine learning password policy Xk9#pQ2zLw"), None);
        assert_eq!(at("machine a login u\nmachine b password Xk9#pQ2zLw"), None);
        // Inside a word: not the keyword.
        assert_eq!(netrc_password(b"timemachine h login u password Xk9#pQ2zLw", 4, 12), None);
    }
}
