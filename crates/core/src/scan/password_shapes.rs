//! Passwords where files and command lines keep them, each confirmed by the shape around its
//! anchor: a connection string's `Password=` / `Pwd=` among its other keys, a password hash in
//! crypt(3) form (htpasswd, `/etc/shadow`), a Docker config's `auths` entry, a `.pgpass` line,
//! and the password flags of the clients that take one on the command line (`mysql -p…`,
//! `sshpass -p`, `redis-cli -a`, `curl -u user:pass`, `wget --password=`).
//!
//! None of these has a vendor prefix, so each validator asks for the file's or command's own
//! structure and turns away what stands in for a password (`${DB_PASS}`, `<password>`,
//! `your_password_here`, `$MYSQL_PWD`).

use super::chars::{count, Set, Span, B64, DIGIT, DOT, LOWER, PLUS_SLASH, UPPER};
use super::shapes::{find, left_boundary};

/// crypt(3)'s alphabet: `[./0-9A-Za-z]`.
const CRYPT: Set = Set(DIGIT | LOWER | UPPER | DOT | PLUS_SLASH);

/// What a password must look like to be one: not a stand-in, 6 to 128 bytes, and either two
/// kinds of characters or 12 bytes (a lowercase word of eight is a template's `changeme`).
fn real_password(v: &[u8]) -> bool {
    if !(6..=128).contains(&v.len()) || super::shapes::placeholder(v) || super::placeholder::token_body(v) {
        return false;
    }
    if v.first() == Some(&b'$') || v.starts_with(b"%") || v.contains(&b'\0') {
        return false;
    }
    super::chars::character_kinds(v) >= 2 || v.len() >= 12
}

/// The line holding `i`: its start and end (a line break, or 512 bytes either way).
fn line_around(t: &[u8], i: usize) -> Span {
    let from = i.saturating_sub(512);
    let start = t.get(from..i).and_then(|b| b.iter().rposition(|c| *c == b'\n')).map_or(from, |p| from + p + 1);
    let to = (i + 512).min(t.len());
    let end = t.get(i..to).and_then(|b| b.iter().position(|c| matches!(c, b'\n' | b'\r'))).map_or(to, |p| i + p);
    (start, end)
}

/// Keys a connection string carries beside its password (ADO.NET, ODBC, JDBC, libpq, Npgsql).
const CONNECTION_KEYS: &[&[u8]] = &[
    b"server=",
    b"data source=",
    b"host=",
    b"hostname=",
    b"address=",
    b"addr=",
    b"uid=",
    b"user id=",
    b"userid=",
    b"user=",
    b"username=",
    b"database=",
    b"initial catalog=",
    b"dbname=",
    b"driver=",
    b"dsn=",
    b"port=",
];

/// `Server=db01;Database=hr;User Id=sa;Password=…;` (and `Pwd=`, `{…}`-quoted ODBC values, the
/// `user=…&password=…` of a JDBC URL): the password, when the same line holds another key of a
/// connection string.
pub fn connection_string_password(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let before = s.checked_sub(1).and_then(|i| t.get(i)).copied();
    let separated = matches!(before, None | Some(b';' | b'&' | b'?' | b' ' | b'\t' | b'"' | b'\'' | b'{' | b'\n'));
    if !separated {
        return None;
    }
    let (line_start, line_end) = line_around(t, s);
    let line = t.get(line_start..line_end)?.to_ascii_lowercase();
    let at_key = s - line_start;
    let other_key = CONNECTION_KEYS.iter().any(|k| {
        let mut from = 0;
        while let Some(p) = line.get(from..).and_then(|l| find(l, k)) {
            let at = from + p;
            let bounded = at == 0 || line.get(at - 1).is_some_and(|b| matches!(b, b';' | b'&' | b'?' | b' ' | b'"' | b'\''));
            if bounded && at != at_key {
                return true;
            }
            from = at + 1;
        }
        false
    });
    if !other_key || !line.iter().any(|b| matches!(b, b';' | b'&')) {
        return None;
    }
    let (v, end) = match t.get(e) {
        Some(b'{') => (e + 1, e + 1 + t.get(e + 1..line_end)?.iter().position(|b| *b == b'}')?),
        Some(q @ (b'\'' | b'"')) => (e + 1, e + 1 + t.get(e + 1..line_end)?.iter().position(|b| b == q)?),
        _ => {
            let n = t
                .get(e..line_end)?
                .iter()
                .take_while(|b| !matches!(b, b';' | b'&' | b'"' | b'\'' | b' ' | b'\t' | b'\\'))
                .count();
            (e, e + n)
        }
    };
    let value = t.get(v..end)?;
    // `PWD=/srv/app` in a sudo log line is the working directory, beside `USER=root`.
    let path = t.get(s..e).is_some_and(|k| k.eq_ignore_ascii_case(b"pwd=")) && matches!(value.first(), Some(b'/' | b'~'));
    (!path && real_password(value)).then_some((v, end))
}

/// A password hash in crypt(3) form, as htpasswd files and `/etc/shadow` keep them: bcrypt
/// (`$2b$10$` + 53), md5-crypt (`$1$` / `$apr1$`, salt, 22), SHA-crypt (`$5$` / `$6$`, optional
/// `rounds=N$`, salt, 43 / 86) and yescrypt (`$y$`, parameters, salt, 43). Offline-crackable:
/// the password it stands for leaks with it.
pub fn password_hash(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let scheme = t.get(s..e)?;
    let field = |i: usize, min: usize, max: usize| -> Option<usize> {
        let n = count(t, i, CRYPT, max + 1);
        (n >= min && n <= max && t.get(i + n) == Some(&b'$')).then_some(i + n + 1)
    };
    let digest = |i: usize, len: usize| -> Option<Span> { (count(t, i, CRYPT, len + 1) == len).then_some((s, i + len)) };
    match scheme {
        b"$2a$" | b"$2b$" | b"$2y$" => {
            let cost = t.get(e..e + 2)?;
            (cost.iter().all(u8::is_ascii_digit) && t.get(e + 2) == Some(&b'$')).then_some(())?;
            digest(e + 3, 53)
        }
        b"$1$" | b"$apr1$" => digest(field(e, 1, 8)?, 22),
        b"$5$" | b"$6$" => {
            let mut i = e;
            if t.get(i..i + 7) == Some(b"rounds=") {
                let n = count(t, i + 7, Set(DIGIT), 10);
                (n > 0 && t.get(i + 7 + n) == Some(&b'$')).then_some(())?;
                i += 7 + n + 1;
            }
            digest(field(i, 1, 16)?, if scheme == b"$5$" { 43 } else { 86 })
        }
        b"$y$" => digest(field(field(e, 1, 16)?, 1, 64)?, 43),
        _ => None,
    }
}

/// A Docker config's registry login: `"auths": {"registry": {"auth": "<base64 of user:password>"}}`.
pub fn docker_config_auth(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let under_auths = t.get(s.saturating_sub(2048)..s).is_some_and(|b| find(b, b"\"auths\"").is_some());
    if t.get(s..e)? != b"\"auth\"" || !under_auths {
        return None;
    }
    let mut i = e + count(t, e, Set(super::chars::SPACE), 16);
    (t.get(i) == Some(&b':')).then_some(())?;
    i += 1;
    i += count(t, i, Set(super::chars::SPACE), 16);
    (t.get(i) == Some(&b'"')).then_some(())?;
    let v = i + 1;
    let n = count(t, v, B64, 1025);
    if !(8..=1024).contains(&n) || t.get(v + n) != Some(&b'"') {
        return None;
    }
    let (_, password) = super::shapes::base64_login(t.get(v..v + n)?)?;
    (!password.is_empty() && !super::shapes::placeholder(&password)).then_some((v, v + n))
}

/// A `.pgpass` entry on the default port: `host:5432:database:user:password` (`*` a wildcard,
/// `\:` an escaped colon). Read from the host name before the anchor to the password's end (a
/// space, a quote, a line break raw or escaped), so the entry is found as a line of a file, a
/// JSON string's `…\ndb:5432:…` or a decoded value alike.
pub fn pgpass_password(t: &[u8], s: usize, e: usize) -> Option<Span> {
    let name = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*');
    let host = t.get(s.saturating_sub(255)..s)?.iter().rev().take_while(|b| name(b)).count();
    let before_host = s.checked_sub(host + 1).and_then(|i| t.get(i));
    if host == 0 || before_host.is_some_and(|b| matches!(b, b':' | b'/' | b'@' | b'[')) {
        return None;
    }
    let mut i = e;
    for _ in 0..2 {
        let n = t.get(i..)?.iter().take(128).take_while(|b| name(b)).count();
        (n > 0 && t.get(i + n) == Some(&b':')).then_some(())?;
        i += n + 1;
    }
    let mut end = i;
    while let Some(b) = t.get(end) {
        match b {
            b'\\' if t.get(end + 1) == Some(&b':') => end += 2,
            b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'\\' | b':' => break,
            _ => end += 1,
        }
        if end - i > 128 {
            return None;
        }
    }
    // A sixth field is not a `.pgpass` entry (`10:5432:12:44:…:…` is a row of numbers).
    (t.get(end) != Some(&b':') && real_password(t.get(i..end)?)).then_some((i, end))
}

/// A client's password flag on a command line, within the command (up to a line break, `|`,
/// `;` or `&&`): `mysql -pPASS` / `--password=`, `sshpass -p PASS`, `redis-cli -a PASS`,
/// `curl -u user:PASS`, `wget --password=PASS`. A flag given no value (`mysql -p`, `curl -u
/// user`) prompts for it and is not a finding.
pub fn command_line_password(t: &[u8], s: usize, e: usize) -> Option<Span> {
    if !left_boundary(t, s) || s.checked_sub(1).and_then(|i| t.get(i)).is_some_and(|b| matches!(b, b'-' | b'_' | b'.' | b'/')) {
        return None;
    }
    let command = t.get(s..e)?.to_ascii_lowercase();
    let (_, line_end) = line_around(t, e);
    let stop = t
        .get(e..line_end)?
        .iter()
        .enumerate()
        .position(|(k, b)| matches!(b, b'|' | b';') || (*b == b'&' && t.get(e + k + 1) == Some(&b'&')))
        .map_or(line_end, |p| e + p);
    let words = shell_words(t, e, stop);
    let text = |(a, b): Span| t.get(a..b).unwrap_or_default();
    let value_after = |k: usize| words.get(k + 1).copied();
    let attached =
        |w: Span, flag: &[u8]| text(w).starts_with(flag).then(|| unquote(t, (w.0 + flag.len(), w.1))).filter(|(a, b)| a < b);
    for (k, w) in words.iter().copied().enumerate() {
        let word = text(w);
        let found = match command.as_slice() {
            b"mysql " | b"mysqldump " | b"mysqladmin " | b"mariadb " | b"mariadb-dump " => {
                attached(w, b"--password=").or_else(|| if word.starts_with(b"--") { None } else { attached(w, b"-p") })
            }
            b"sshpass " => match word {
                b"-p" => value_after(k),
                _ if !word.starts_with(b"-p") => None,
                _ => attached(w, b"-p"),
            },
            b"redis-cli " => match word {
                b"-a" | b"--pass" => value_after(k),
                _ => None,
            },
            b"curl " => match word {
                b"-u" | b"--user" | b"--proxy-user" | b"-U" => value_after(k).and_then(|v| after_colon(t, v)),
                _ => attached(w, b"-u").and_then(|v| after_colon(t, v)),
            },
            b"wget " => [b"--password=".as_slice(), b"--http-password=", b"--ftp-password=", b"--proxy-password="]
                .iter()
                .find_map(|f| attached(w, f)),
            _ => None,
        };
        if let Some(v) = found.filter(|v| real_password(text(*v))) {
            return Some(v);
        }
    }
    None
}

/// `user:password` → the password's span (none without a colon: curl prompts).
fn after_colon(t: &[u8], (a, b): Span) -> Option<Span> {
    let colon = t.get(a..b)?.iter().position(|c| *c == b':')?;
    Some((a + colon + 1, b)).filter(|(x, y)| x < y)
}

/// The words of a command between `from` and `to`, split on spaces and tabs, with a word's
/// surrounding single or double quotes left out of its span (at most 32 words).
fn shell_words(t: &[u8], from: usize, to: usize) -> Vec<Span> {
    let mut words = Vec::new();
    let mut i = from;
    while i < to && words.len() < 32 {
        while i < to && t.get(i).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            i += 1;
        }
        if i >= to {
            break;
        }
        let start = i;
        let mut quote = None;
        while i < to {
            match (t.get(i).copied(), quote) {
                (Some(q @ (b'\'' | b'"')), None) => quote = Some(q),
                (Some(b), Some(q)) if b == q => quote = None,
                (Some(b' ' | b'\t'), None) => break,
                _ => {}
            }
            i += 1;
        }
        words.push(unquote(t, (start, i)));
    }
    words
}

/// A span without the pair of quotes around it (`'secret'`, `"user:x"`).
fn unquote(t: &[u8], (a, b): Span) -> Span {
    let first = t.get(a).copied();
    let quoted = b >= a + 2 && matches!(first, Some(b'\'' | b'"')) && t.get(b - 1).copied() == first;
    if quoted {
        (a + 1, b - 1)
    } else {
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(f: fn(&[u8], usize, usize) -> Option<Span>, anchor: &str, text: &str) -> Option<String> {
        let lower = text.to_ascii_lowercase();
        let s = lower.find(&anchor.to_ascii_lowercase())?;
        f(text.as_bytes(), s, s + anchor.len()).map(|(a, b)| text[a..b].to_owned())
    }

    #[test]
    fn connection_strings_give_up_their_password_and_templates_do_not() {
        let ado =
            "Server=tcp:prod.database.windows.net,1433;Initial Catalog=orders;User ID=svc;Password=Vq7#mR2pLx9w;Encrypt=True;";
        assert_eq!(found(connection_string_password, "password=", ado).as_deref(), Some("Vq7#mR2pLx9w"));
        let odbc = "Driver={ODBC Driver 18};Server=db01;Database=hr;Uid=hradmin;Pwd={Tr0ub4dor&3x};";
        assert_eq!(found(connection_string_password, "pwd=", odbc).as_deref(), Some("Tr0ub4dor&3x"));
        let jdbc = "jdbc:postgresql://db01/hr?user=hradmin&password=Tr0ub4dor7Qx";
        assert_eq!(found(connection_string_password, "password=", jdbc).as_deref(), Some("Tr0ub4dor7Qx"));
        for template in [
            "Server=db01;Database=hr;User Id=sa;Password=<your_password>;",
            "Server=db01;Database=hr;User Id=sa;Password=${DB_PASSWORD};",
            "Server=db01;Database=hr;User Id=sa;Password=your_password_here;",
            "Server=db01;Database=hr;User Id=sa;Password=********;",
            "Server=db01;Database=hr;User Id=sa;Password=;",
        ] {
            assert_eq!(found(connection_string_password, "password=", template), None, "{template}");
        }
        // A form's field, a sentence: no other key of a connection string on the line.
        assert_eq!(found(connection_string_password, "password=", "set password=Vq7#mR2pLx9w in the form"), None);
        assert_eq!(found(connection_string_password, "password=", "oldpassword=Vq7#mR2pLx9w;"), None);
        let sudo = "web-01 sudo[53201]:   deploy : TTY=pts/0 ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/systemctl";
        assert_eq!(found(connection_string_password, "pwd=", sudo), None);
    }

    #[test]
    fn crypt_hashes_are_read_to_their_exact_lengths() {
        // Each made by `openssl passwd` or Python's `crypt` for `hunter2`.
        let cases = [
            ("$2b$", "deploy:$2b$10$N9qo8uLOickgx2ZMRZoMyerQKEVFj1vJdjpgp6AGhdEpgLcn6nAea"),
            ("$apr1$", "admin:$apr1$Kq3Lm9Zx$OxjICOpQI9y.vVudwg3gv1"),
            ("$1$", "u:$1$abc$9dV135Rc3U8Xbm2DxadgF0:1"),
            (
                "$6$",
                "root:$6$Zr8Qp1Lk$c9fciVe7HlPQ9G7.sOfdttJcv76/NisnJxvyPFEA1MR7cDAt0ga87npW1s4McZjgwQ5XlAKXaINi50ZWrr7vo0:19700:0:99999:7:::",
            ),
            ("$5$", "u:$5$rounds=5000$salt$HcpxOfa925mFNRuYAscuC4oWpw6c8l.YtrFMtUG7fp9:1"),
            ("$y$", "u:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33:19700"),
        ];
        for (anchor, line) in cases {
            let hash = found(password_hash, anchor, line);
            assert!(hash.as_deref().is_some_and(|h| h.starts_with(anchor) && !h.contains(':')), "{line}: {hash:?}");
        }
        for not in ["costs $2y$ per month", "$6$abc$short", "$2b$10$tooShort", "price $1$ and $5$"] {
            let anchor = ["$2y$", "$6$", "$2b$", "$1$"].into_iter().find(|a| not.contains(a)).unwrap_or("$");
            assert_eq!(found(password_hash, anchor, not), None, "{not}");
        }
    }

    #[test]
    fn a_docker_configs_auth_is_a_login_and_other_auth_fields_are_not() {
        let config = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"ZGVwbG95Ym90OlF3ZXJ0eTEyMyFAIw=="}}}"#;
        assert_eq!(found(docker_config_auth, "\"auth\"", config).as_deref(), Some("ZGVwbG95Ym90OlF3ZXJ0eTEyMyFAIw=="));
        // Not under `auths`; a value that decodes to no `user:password`.
        assert_eq!(found(docker_config_auth, "\"auth\"", r#"{"auth":"ZGVwbG95Ym90OlF3ZXJ0eTEyMyFAIw=="}"#), None);
        assert_eq!(found(docker_config_auth, "\"auth\"", r#"{"auths":{"r":{"auth":"aGVsbG8gd29ybGQ="}}}"#), None);
    }

    #[test]
    fn a_pgpass_line_has_five_fields_and_a_real_password() {
        assert_eq!(
            found(pgpass_password, ":5432:", "db.internal:5432:orders:orders_app:Zk4vP9qL2mWx8").as_deref(),
            Some("Zk4vP9qL2mWx8")
        );
        assert_eq!(found(pgpass_password, ":5432:", "*:5432:*:app:Zk4v\\:P9qL").as_deref(), Some("Zk4v\\:P9qL"));
        let escaped = r##"{"text": "# ~/.pgpass\ndb.internal:5432:orders:app:Zk4vP9qL2mWx8\n"}"##;
        assert_eq!(found(pgpass_password, ":5432:", escaped).as_deref(), Some("Zk4vP9qL2mWx8"));
        for not in [
            "localhost:5432:db:user:password",
            "listening on 0.0.0.0:5432: ready",
            "h:5432:db:u:${PGPASS}",
            "postgres://u:p@[::1]:5432:x:y:Zk4vP9qL2mWx8",
            "ratio 10:5432:12:44:Zk4vP9qL2mWx8:extra",
        ] {
            assert_eq!(found(pgpass_password, ":5432:", not), None, "{not}");
        }
    }

    #[test]
    fn password_flags_on_command_lines_are_found_and_prompts_are_not() {
        let cases = [
            ("mysql ", "mysql -h db01 -u root -pVq7mR2pLx9w orders", "Vq7mR2pLx9w"),
            ("mysqldump ", "mysqldump --password=Vq7mR2pLx9w --all-databases", "Vq7mR2pLx9w"),
            ("sshpass ", "sshpass -p 'Vq7mR2pLx9w' ssh root@10.0.0.4", "Vq7mR2pLx9w"),
            ("redis-cli ", "redis-cli -h cache01 -a Vq7mR2pLx9wZk4 ping", "Vq7mR2pLx9wZk4"),
            ("curl ", "curl -u admin:Vq7mR2pLx9wZ https://api.internal/v1/", "Vq7mR2pLx9wZ"),
            ("curl ", "curl -s --user \"svc:Vq7mR2pLx9wZ\" https://api.internal/", "Vq7mR2pLx9wZ"),
            ("wget ", "wget --http-password=Vq7mR2pLx9w https://files/x", "Vq7mR2pLx9w"),
        ];
        for (anchor, line, want) in cases {
            assert_eq!(found(command_line_password, anchor, line).as_deref(), Some(want), "{line}");
        }
        for not in [
            "mysql -h db01 -u root -p orders",
            "mysql -u root -p$MYSQL_ROOT_PASSWORD",
            "mysql -h db -P3306 -u app",
            "curl -u admin https://x/",
            "curl -u \"$USER:$TOKEN\" https://x/",
            "curl -u username:password https://x/",
            "curl -u api:YOUR_API_KEY https://x/",
            "redis-cli -a <password> ping",
            "curl https://x/ | sshpass -p",
            "libcurl -u a:Vq7mR2pLx9wZ",
        ] {
            let anchor = ["mysql ", "curl ", "redis-cli ", "sshpass "].into_iter().find(|a| not.contains(a)).unwrap_or("curl ");
            assert_eq!(found(command_line_password, anchor, not), None, "{not}");
        }
    }
}
