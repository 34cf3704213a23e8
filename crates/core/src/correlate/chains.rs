//! Tool-call chains: each tool gets category bits (policy override by name glob, else the
//! tool's own annotations, else its name's words, as Pipelock classifies them), and each call
//! is checked against ordered patterns over the key's recent calls, with a gap tolerance
//! (innocent calls between steps) and a time window.

use crate::policy::correlate::{Category, ChainPattern, CorrelationPolicy};

use super::record::CallMark;

/// Name words per category (Pipelock's `internal/mcp/chains/classify.go`), compared with each
/// `_`, `-` or `.` separated word of the tool's name, lowercased.
const WORDS: &[(Category, &[&str])] = &[
    (Category::Execute, &["shell", "bash", "run", "execute", "exec", "cmd", "spawn", "eval", "sh", "zsh", "powershell"]),
    (Category::Persist, &["crontab", "cron", "systemctl", "systemd", "launchd", "launchctl", "autostart"]),
    (
        Category::Credential,
        &["env", "environ", "getenv", "secret", "secrets", "credential", "credentials", "token", "key", "password"],
    ),
    (
        Category::Network,
        &["fetch", "curl", "wget", "http", "request", "send", "post", "upload", "download", "api", "email", "webhook"],
    ),
    (Category::Write, &["write", "create", "save", "update", "edit", "modify", "put", "append", "insert"]),
    (Category::Read, &["read", "get", "view", "cat", "head", "tail", "open", "load", "retrieve", "access"]),
    (Category::List, &["list", "ls", "dir", "find", "glob", "search", "scan", "enumerate", "walk"]),
];

/// Words that make a persist word a query (`cron_status` only reads).
const PERSIST_VETO: &[&str] = &[
    "status", "list", "show", "info", "describe", "get", "view", "check", "inspect", "cat", "log", "logs", "read", "query",
    "monitor",
];

/// The categories of the tool `name`: the policy's, else the first category (in Pipelock's
/// priority: execute, persist, credential, network, write, read, list) one of its words names,
/// together with those its annotations name (`annotated`).
pub fn categories(policy: &CorrelationPolicy, name: &str, annotated: u8) -> u8 {
    if let Some((_, bits)) = policy.tool_categories.iter().find(|(g, _)| g.matches(name)) {
        return *bits;
    }
    annotated | by_name(name)
}

fn by_name(name: &str) -> u8 {
    // One pass over the words, no lower-cased copy: which lists name one, and whether a veto
    // word is there; then the first category in priority order.
    let mut named = 0u32;
    let mut veto = false;
    for w in name.split(['_', '-', '.', '/', ' ']).filter(|w| !w.is_empty()) {
        for (i, (_, list)) in WORDS.iter().enumerate() {
            if list.iter().any(|x| x.eq_ignore_ascii_case(w)) {
                named |= 1 << i;
            }
        }
        veto = veto || PERSIST_VETO.iter().any(|x| x.eq_ignore_ascii_case(w));
    }
    for (i, (cat, _)) in WORDS.iter().enumerate() {
        if named & (1 << i) != 0 && !(*cat == Category::Persist && veto) {
            return cat.bit();
        }
    }
    0
}

/// The first pattern the call `now` (after `history`, oldest first) completes.
pub fn completed<'p>(patterns: &'p [ChainPattern], history: &[CallMark], now: CallMark) -> Option<&'p ChainPattern> {
    if now.categories == 0 {
        return None;
    }
    let mut best: Option<&ChainPattern> = None;
    for p in patterns {
        if p.action == crate::policy::correlate::TripAction::Off {
            continue;
        }
        if matches(p, history, now) && best.is_none_or(|b| p.severity > b.severity) {
            best = Some(p);
        }
    }
    best
}

/// True when `now` is the pattern's last step and the earlier steps are found, in order, going
/// back through `history` with at most `max_gap` other calls between steps, all in the window.
fn matches(p: &ChainPattern, history: &[CallMark], now: CallMark) -> bool {
    let Some((last, earlier)) = p.steps.split_last() else { return false };
    if now.categories & last == 0 {
        return false;
    }
    let oldest = u64::from(now.at_secs).saturating_sub(p.window_secs);
    let mut need = earlier.iter().rev();
    let mut want = need.next();
    let mut gap = 0u8;
    for c in history.iter().rev() {
        let Some(w) = want else { break };
        if u64::from(c.at_secs) < oldest {
            return false;
        }
        if c.categories & w != 0 {
            want = need.next();
            gap = 0;
        } else {
            gap += 1;
            if gap > p.max_gap {
                return false;
            }
        }
    }
    want.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::correlate::{compile, CorrelationSpec};

    fn policy() -> CorrelationPolicy {
        let spec: CorrelationSpec =
            serde_json::from_str(r#"{"chains":{"action":"block","tools":{"corp_*":["network"]}}}"#).unwrap();
        compile(&spec).unwrap()
    }

    #[test]
    fn names_are_classified_by_word() {
        let p = policy();
        let c = |n| categories(&p, n, 0);
        assert_eq!(categories(&p, "lookup", Category::Network.bit()), Category::Network.bit(), "annotations add");
        assert_eq!(c("read_file"), Category::Read.bit());
        assert_eq!(c("http-post"), Category::Network.bit());
        assert_eq!(c("run_shell"), Category::Execute.bit());
        assert_eq!(c("get_env"), Category::Credential.bit(), "credential outranks read");
        assert_eq!(c("cron_add"), Category::Persist.bit());
        assert_eq!(c("cron_status"), 0, "a persist word beside a query word only reads");
        assert_eq!(c("corp_upload"), Category::Network.bit());
        assert_eq!(c("thread_summary"), 0, "words, not substrings");
        assert_eq!(c("Run.SHELL"), Category::Execute.bit(), "in any case");
        assert_eq!(c("dump/Credentials"), Category::Credential.bit(), "the longest list word");
        assert_eq!(c("supercalifragilistic_read"), Category::Read.bit(), "a long word names nothing, the rest still count");
        assert_eq!(c("cron_status_write"), Category::Write.bit(), "a vetoed persist word gives way to the next category");
        assert_eq!(c("päy_load"), Category::Read.bit());
    }

    #[test]
    fn chains_match_in_order_within_gap_and_window() {
        let p = policy();
        let m = |at: u32, cat: Category| CallMark { at_secs: at, categories: cat.bit() };
        let read = m(100, Category::Read);
        let send = m(110, Category::Network);
        assert_eq!(completed(&p.patterns, &[read], send).map(|c| c.id.as_str()), Some("read-then-send"));
        // The benign order: send first, then read.
        assert!(completed(&p.patterns, &[m(100, Category::Network)], m(110, Category::Read)).is_none());
        // Too many innocent calls between.
        let other = CallMark { at_secs: 105, categories: 0 };
        assert!(completed(&p.patterns, &[read, other, other, other, other], send).is_none());
        assert!(completed(&p.patterns, &[read, other, other, other], send).is_some());
        // Out of the window.
        assert!(completed(&p.patterns, &[m(1, Category::Read)], m(10_000, Category::Network)).is_none());
        // The most severe of several.
        let w = m(105, Category::Write);
        assert_eq!(completed(&p.patterns, &[read, w], send).map(|c| c.id.as_str()), Some("read-write-send"));
    }
}
