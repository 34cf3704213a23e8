//! Stage two: validate a [`PolicySpec`] and freeze it into a [`Policy`].
//!
//! Every error names the JSON path of the failing field (`rules[2].match.names[0]`), including
//! the ones serde finds (unknown field, wrong type), which are located by [`super::jsonpath`].

use sha2::{Digest, Sha256};

use super::error::{check_reason, err, parse, ConfigError};
use super::glob::{globs, Glob};
use super::killswitch::KillSwitch;
use super::spec::{ActionKind, BucketKey, ControlSpec, DefaultAction, MatchSpec, OnStoreError, PolicySpec, RuleSpec};
use crate::mcp::classify::{WireRules, FIRST_MODERN_VERSION};
use crate::mcp::model::Era;
use crate::policy::integrity::PoisonAction;
use crate::policy::integrity::{IntegrityPolicy, TaskPolicy};
use crate::principal::{Origin, SourceKind, Sources};
use crate::state::ratelimit::{Quota, MAX_BURST, MAX_PERIOD_MS, MAX_RATE};
use crate::state::slots::MAX_CAPACITY;

/// Bodies are buffered whole in the VM; this bounds what an operator can ask for.
pub const MAX_BODY_CAP: u64 = 64 * 1024 * 1024;
/// Most rules in one policy.
pub const MAX_RULES: usize = 1024;
/// Longest rule id (it is part of bucket keys and metric tags).
pub const MAX_RULE_ID_LEN: usize = 64;
/// Longest legacy session binding.
pub const MAX_SESSION_TTL_SECS: u64 = 30 * 86_400;
/// Shortest control poll period.
pub const MIN_CONTROL_PERIOD_MS: u64 = 100;

/// The compiled, immutable policy. Shared by reference for the life of a configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub wire: WireRules,
    pub max_body_bytes: usize,
    /// How to resolve the principal (see [`crate::principal::resolve`]).
    pub sources: Sources,
    /// Ordered; the first (non-dry-run) match decides.
    pub rules: Vec<Rule>,
    /// `Some(reason)` when no match means deny.
    pub default_deny: Option<String>,
    /// Who answers a call of a hidden tool or prompt.
    pub hidden_answer: super::spec::HiddenAnswer,
    /// Kill entries from this document.
    pub kill: KillSwitch,
    /// Capacity of the shared rate-limit slot table.
    pub rate_limit_slots: u32,
    /// Capacity of the legacy session table, and a binding's lifetime (0: no binding).
    pub session_slots: u32,
    pub session_ttl_ms: u64,
    pub control: Option<ControlConfig>,
    /// Poisoned definitions, baselines and pins, `ui://` templates.
    pub integrity: IntegrityPolicy,
    /// Tasks bound to the principal that created them.
    pub tasks: TaskPolicy,
    /// Secrets, canaries and injected instructions in both directions.
    pub scan: super::scan::ScanPolicy,
    /// Memory across requests (budgets, fragments, chains, escalation, mesh-wide budgets).
    pub correlation: super::correlate::CorrelationPolicy,
    /// Asking a human before a call runs.
    pub confirm: super::confirm::ConfirmPolicy,
    /// `sha256:<hex>` of the document's canonical bytes (keys sorted, no whitespace): the
    /// `policy_hash` every receipt signs. Set by [`load`]; empty for a policy compiled directly.
    pub hash: String,
}

impl Default for Policy {
    fn default() -> Self {
        // The default spec always compiles; fall back field by field if it ever stops doing so.
        load(b"{}").unwrap_or_else(|_| Policy {
            wire: WireRules {
                modern_enabled: true,
                legacy_enabled: true,
                legacy_batches: false,
                supported_versions: vec![FIRST_MODERN_VERSION.to_owned()],
                forward_cors_preflight: false,
            },
            max_body_bytes: 1024 * 1024,
            sources: Sources::default(),
            rules: Vec::new(),
            default_deny: None,
            hidden_answer: super::spec::HiddenAnswer::Gateway,
            kill: KillSwitch::default(),
            rate_limit_slots: super::spec::DEFAULT_RATE_LIMIT_SLOTS,
            session_slots: super::spec::DEFAULT_RATE_LIMIT_SLOTS,
            session_ttl_ms: crate::state::owners::DEFAULT_SESSION_TTL_MS,
            control: None,
            integrity: crate::policy::integrity::compile(&Default::default()).unwrap_or_else(|_| IntegrityPolicy {
                poisoned: PoisonAction::Drop,
                changed: crate::policy::integrity::ChangeAction::Deny,
                unknown: crate::policy::integrity::UnknownAction::Allow,
                sensitive: Vec::new(),
                min_ttl_ms: 24 * 3600 * 1000,
                max_ttl_ms: 7 * 24 * 3600 * 1000,
                baseline_slots: super::spec::DEFAULT_RATE_LIMIT_SLOTS,
                pins: Vec::new(),
                ui: crate::policy::integrity::ChangeAction::Deny,
                csp_allow: None,
                cache_ms: 0,
            }),
            tasks: TaskPolicy {
                bind: true,
                slots: super::spec::DEFAULT_RATE_LIMIT_SLOTS,
                min_id_bits: 64,
                max_ttl_ms: 7 * 24 * 3600 * 1000,
            },
            scan: super::scan::compile(&Default::default()).unwrap_or_else(|_| super::scan::ScanPolicy::off()),
            correlation: super::correlate::off(),
            confirm: super::confirm::ConfirmPolicy::default(),
            hash: canonical_hash(b"{}"),
        })
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub matcher: Matcher,
    pub action: RuleAction,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    Allow,
    /// `hide`: a denied tool / prompt / resource answers as unknown and leaves `tools/list`.
    Deny {
        reason: String,
        hide: bool,
    },
    RateLimit {
        quota: Quota,
        key: BucketKey,
        on_store_error: OnStoreError,
    },
    /// Ask the client's user first; `reason` is shown in the question.
    Confirm {
        reason: String,
    },
}

/// Compiled match conditions (see [`MatchSpec`]: AND across fields, OR within one).
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub principals: Vec<Glob>,
    pub origins: Vec<Origin>,
    pub groups: Vec<String>,
    pub claims: Vec<(String, Glob)>,
    pub trust_domains: Vec<String>,
    pub actors: Vec<Glob>,
    pub eras: Vec<Era>,
    pub methods: Vec<Glob>,
    pub names: Vec<Glob>,
    pub upstreams: Vec<Glob>,
}

/// Where and how often the filter polls the control endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub period_ms: u64,
    pub timeout_ms: u64,
    /// Take the policy from the endpoint when it serves one.
    pub policy: bool,
}

/// Parses and compiles a configuration document. An empty document means all defaults.
pub fn load(bytes: &[u8]) -> Result<Policy, ConfigError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    let mut policy = compile(parse(bytes)?)?;
    policy.hash = canonical_hash(bytes);
    Ok(policy)
}

/// `sha256:` of the canonical form of a JSON document: parsed, then written back with object
/// keys sorted and no whitespace, so key order and formatting do not change the hash while every
/// value does. (A document that does not parse hashes its raw bytes; `load` refuses it anyway.)
pub fn canonical_hash(bytes: &[u8]) -> String {
    let digest = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => {
            let mut out = Vec::with_capacity(bytes.len());
            crate::jcs::write(&v, &mut out);
            Sha256::digest(&out)
        }
        Err(_) => Sha256::digest(bytes),
    };
    format!("sha256:{}", hex::encode(digest))
}

pub fn compile(spec: PolicySpec) -> Result<Policy, ConfigError> {
    if !spec.eras.modern && !spec.eras.legacy {
        return Err(err("eras", "at least one of `modern` and `legacy` must be true"));
    }
    if spec.eras.modern && spec.supported_versions.is_empty() {
        return Err(err("supported_versions", "must name at least one version when `eras.modern` is true"));
    }
    for (i, v) in spec.supported_versions.iter().enumerate() {
        let b = v.as_bytes();
        let shape_ok =
            b.len() == 10 && b.iter().enumerate().all(|(j, c)| if j == 4 || j == 7 { *c == b'-' } else { c.is_ascii_digit() });
        if !shape_ok {
            return Err(err(format!("supported_versions[{i}]"), format!("`{v}` is not a YYYY-MM-DD version")));
        }
        if v.as_str() < FIRST_MODERN_VERSION {
            return Err(err(
                format!("supported_versions[{i}]"),
                format!("`{v}` is a legacy version; list only {FIRST_MODERN_VERSION} and later (legacy is `eras.legacy`)"),
            ));
        }
    }
    if spec.max_body_bytes == 0 || spec.max_body_bytes > MAX_BODY_CAP {
        return Err(err("max_body_bytes", format!("must be between 1 and {MAX_BODY_CAP}")));
    }

    let mut sources = compile_sources(&spec)?;
    let rules = compile_rules(&spec.rules)?;
    let rules_confirm = rules.iter().any(|r| matches!(r.action, RuleAction::Confirm { .. }));
    for r in &rules {
        for (k, _) in &r.matcher.claims {
            if !sources.claim_names.contains(k) {
                sources.claim_names.push(k.clone());
            }
        }
    }

    let default_deny = match spec.default_action {
        DefaultAction::Allow => {
            if spec.default_reason.is_some() {
                return Err(err("default_reason", "only allowed when `default_action` is `deny`"));
            }
            None
        }
        DefaultAction::Deny => {
            let reason = spec.default_reason.clone().unwrap_or_else(|| "Denied by gateway policy".to_owned());
            check_reason("default_reason".to_owned(), &reason)?;
            Some(reason)
        }
    };

    let kill = KillSwitch::compile(&spec.kill_switch, "kill_switch")?;

    if spec.rate_limit_slots == 0 || spec.rate_limit_slots > MAX_CAPACITY {
        return Err(err("rate_limit_slots", format!("must be between 1 and {MAX_CAPACITY}")));
    }
    if spec.session_slots == 0 || spec.session_slots > MAX_CAPACITY {
        return Err(err("session_slots", format!("must be between 1 and {MAX_CAPACITY}")));
    }
    if spec.session_ttl_secs > MAX_SESSION_TTL_SECS {
        return Err(err("session_ttl_secs", format!("must be at most {MAX_SESSION_TTL_SECS} (30 days)")));
    }

    let control = spec.control.as_ref().map(compile_control).transpose()?;

    Ok(Policy {
        wire: WireRules {
            modern_enabled: spec.eras.modern,
            legacy_enabled: spec.eras.legacy,
            legacy_batches: spec.eras.legacy && spec.eras.legacy_batches,
            supported_versions: spec.supported_versions,
            forward_cors_preflight: spec.forward_cors_preflight,
        },
        max_body_bytes: usize::try_from(spec.max_body_bytes).unwrap_or(usize::MAX),
        sources,
        rules,
        default_deny,
        hidden_answer: spec.hidden_answer,
        kill,
        rate_limit_slots: spec.rate_limit_slots,
        session_slots: spec.session_slots,
        session_ttl_ms: spec.session_ttl_secs.saturating_mul(1000),
        control,
        integrity: crate::policy::integrity::compile(&spec.tool_integrity)?,
        tasks: crate::policy::integrity::compile_tasks(&spec.tasks)?,
        scan: super::scan::compile(&spec.content_scan)?,
        correlation: super::correlate::compile(&spec.correlation)?,
        confirm: super::confirm::compile(&spec.confirm, rules_confirm)?,
        hash: String::new(),
    })
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn compile_sources(spec: &PolicySpec) -> Result<Sources, ConfigError> {
    let p = &spec.principal;
    for (i, s) in p.sources.iter().enumerate() {
        if p.sources.iter().take(i).any(|x| x == s) {
            return Err(err(format!("principal.sources[{i}]"), format!("`{}` is listed twice", s.as_str())));
        }
    }
    let trusted_header = match &p.trusted_header {
        Some(h) => {
            if !is_header_name(h) {
                return Err(err("principal.trusted_header", format!("`{h}` is not a lowercase header name")));
            }
            if crate::principal::is_warden_header(h) {
                return Err(err(
                    "principal.trusted_header",
                    format!("`{h}`: x-warden-* headers are stripped from client requests"),
                ));
            }
            if h.starts_with(':') || h == "host" || h == "authorization" {
                return Err(err("principal.trusted_header", format!("`{h}` cannot carry a verified identity")));
            }
            Some(h.clone())
        }
        None => None,
    };
    if p.sources.contains(&SourceKind::Header) && trusted_header.is_none() {
        return Err(err("principal.trusted_header", "required when `principal.sources` lists `header`"));
    }
    if trusted_header.is_some() && !p.sources.contains(&SourceKind::Header) {
        return Err(err("principal.trusted_header", "set, but `principal.sources` does not list `header`"));
    }
    let nonempty = |field: &str, v: &str| if v.is_empty() { Err(err(field, "must not be empty")) } else { Ok(()) };
    nonempty("principal.jwt.metadata_namespace", &p.jwt.metadata_namespace)?;
    nonempty("principal.jwt.payload_key", &p.jwt.payload_key)?;
    nonempty("principal.jwt.subject_claim", &p.jwt.subject_claim)?;
    for (i, c) in p.jwt.group_claims.iter().enumerate() {
        nonempty(&format!("principal.jwt.group_claims[{i}]"), c)?;
    }
    Ok(Sources {
        order: p.sources.clone(),
        jwt_metadata_namespace: p.jwt.metadata_namespace.clone(),
        jwt_payload_key: p.jwt.payload_key.clone(),
        subject_claim: p.jwt.subject_claim.clone(),
        group_claims: p.jwt.group_claims.clone(),
        claim_names: Vec::new(),
        trusted_header,
    })
}

fn valid_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_RULE_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn compile_rules(specs: &[RuleSpec]) -> Result<Vec<Rule>, ConfigError> {
    if specs.len() > MAX_RULES {
        return Err(err("rules", format!("more than {MAX_RULES} rules")));
    }
    let mut out: Vec<Rule> = Vec::with_capacity(specs.len());
    for (i, r) in specs.iter().enumerate() {
        let at = format!("rules[{i}]");
        if !valid_rule_id(&r.id) {
            return Err(err(
                format!("{at}.id"),
                format!("`{}`: rule ids are 1 to {MAX_RULE_ID_LEN} characters of A-Z a-z 0-9 - _ .", r.id),
            ));
        }
        if let Some(j) = out.iter().position(|o| o.id == r.id) {
            return Err(err(format!("{at}.id"), format!("duplicate rule id `{}` (first used at rules[{j}])", r.id)));
        }
        let matcher = compile_match(&r.matcher, &format!("{at}.match"))?;
        if r.rate_limit.is_some() && r.action != ActionKind::RateLimit {
            return Err(err(format!("{at}.rate_limit"), "only allowed when `action` is `rate_limit`"));
        }
        if r.hide.is_some() && r.action != ActionKind::Deny {
            return Err(err(format!("{at}.hide"), "only allowed when `action` is `deny`"));
        }
        if r.reason.is_some() && !matches!(r.action, ActionKind::Deny | ActionKind::Confirm) {
            return Err(err(format!("{at}.reason"), "only allowed when `action` is `deny` or `confirm`"));
        }
        let action = match r.action {
            ActionKind::Allow => RuleAction::Allow,
            ActionKind::Deny => {
                let reason = r.reason.clone().unwrap_or_else(|| "Denied by gateway policy".to_owned());
                check_reason(format!("{at}.reason"), &reason)?;
                RuleAction::Deny { reason, hide: r.hide.unwrap_or(true) }
            }
            ActionKind::Confirm => {
                let reason = r.reason.clone().unwrap_or_else(|| "This call needs your approval".to_owned());
                check_reason(format!("{at}.reason"), &reason)?;
                RuleAction::Confirm { reason }
            }
            ActionKind::RateLimit => {
                let Some(rl) = &r.rate_limit else {
                    return Err(err(format!("{at}.rate_limit"), "required when `action` is `rate_limit`"));
                };
                let f = |n: &str| format!("{at}.rate_limit.{n}");
                if rl.rate == 0 {
                    return Err(err(f("rate"), "rate of zero: must be at least 1 (to block, use `action: deny`)"));
                }
                if rl.rate > MAX_RATE {
                    return Err(err(f("rate"), format!("must be at most {MAX_RATE}")));
                }
                let period_ms = rl.period_secs.saturating_mul(1000);
                if rl.period_secs == 0 || period_ms > MAX_PERIOD_MS {
                    return Err(err(f("period_secs"), format!("must be between 1 and {}", MAX_PERIOD_MS / 1000)));
                }
                let burst = rl.burst.unwrap_or(rl.rate);
                if burst == 0 || burst > MAX_BURST {
                    return Err(err(f("burst"), format!("must be between 1 and {MAX_BURST}")));
                }
                RuleAction::RateLimit {
                    quota: Quota { rate: rl.rate, period_ms, burst },
                    key: rl.key,
                    on_store_error: rl.on_store_error,
                }
            }
        };
        out.push(Rule { id: r.id.clone(), matcher, action, dry_run: r.dry_run });
    }
    Ok(out)
}

/// Name globs, each URI-like one also in the normal form names are matched in
/// ([`crate::mcp::uri::normalize`]): a rule on `ui://Admin/*` or `file:///srv/My%20Docs/*` holds
/// for the resolved `ui://admin/panel` and `file:///srv/My Docs/a` too.
fn name_globs(list: &[String], at: &str) -> Result<Vec<Glob>, ConfigError> {
    let mut out = globs(list, at)?;
    for (i, p) in list.iter().enumerate() {
        if !p.contains(':') || p.contains(['\\', '?']) {
            continue;
        }
        if let Ok(n) = crate::mcp::uri::normalize(p) {
            if &n != p {
                out.push(Glob::new(&n).map_err(|m| err(format!("{at}[{i}]"), m))?);
            }
        }
    }
    Ok(out)
}

fn exact(list: &[String], at: &str) -> Result<Vec<String>, ConfigError> {
    for (i, v) in list.iter().enumerate() {
        if v.is_empty() {
            return Err(err(format!("{at}[{i}]"), "must not be empty"));
        }
    }
    Ok(list.to_vec())
}

fn compile_match(m: &MatchSpec, at: &str) -> Result<Matcher, ConfigError> {
    let origins = m
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Origin::parse(s).ok_or_else(|| {
                err(format!("{at}.sources[{i}]"), format!("unknown source `{s}` (one of jwt, spiffe, istio, header, anonymous)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let eras = m
        .eras
        .iter()
        .enumerate()
        .map(|(i, e)| match e.as_str() {
            "modern" => Ok(Era::Modern),
            "legacy" => Ok(Era::Legacy),
            _ => Err(err(format!("{at}.eras[{i}]"), format!("unknown era `{e}` (one of modern, legacy)"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut claims = Vec::with_capacity(m.claims.len());
    for (k, v) in &m.claims {
        if k.is_empty() {
            return Err(err(format!("{at}.claims"), "claim names must not be empty"));
        }
        claims.push((k.clone(), Glob::new(v).map_err(|e| err(format!("{at}.claims.{k}"), e))?));
    }
    Ok(Matcher {
        principals: globs(&m.principals, &format!("{at}.principals"))?,
        origins,
        groups: exact(&m.groups, &format!("{at}.groups"))?,
        claims,
        trust_domains: exact(&m.trust_domains, &format!("{at}.trust_domains"))?
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect(),
        actors: globs(&m.actors, &format!("{at}.actors"))?,
        eras,
        methods: globs(&m.methods, &format!("{at}.methods"))?,
        names: name_globs(&m.names, &format!("{at}.names"))?,
        upstreams: globs(&m.upstreams, &format!("{at}.upstreams"))?,
    })
}

fn compile_control(c: &ControlSpec) -> Result<ControlConfig, ConfigError> {
    if c.cluster.is_empty() {
        return Err(err("control.cluster", "must not be empty"));
    }
    if !c.path.starts_with('/') || c.path.chars().any(|ch| ch.is_control() || ch == ' ') {
        return Err(err("control.path", format!("`{}` is not an absolute request path", c.path)));
    }
    if c.period_ms < MIN_CONTROL_PERIOD_MS {
        return Err(err("control.period_ms", format!("must be at least {MIN_CONTROL_PERIOD_MS}")));
    }
    if c.timeout_ms == 0 {
        return Err(err("control.timeout_ms", "must be at least 1"));
    }
    Ok(ControlConfig {
        cluster: c.cluster.clone(),
        path: c.path.clone(),
        authority: c.authority.clone().unwrap_or_else(|| c.cluster.clone()),
        period_ms: c.period_ms,
        timeout_ms: c.timeout_ms,
        policy: c.policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_defaults() {
        let p = load(b"").unwrap();
        assert!(p.wire.modern_enabled && p.wire.legacy_enabled);
        assert_eq!(p.max_body_bytes, 1 << 20);
        assert_eq!(p.wire.supported_versions, vec!["2026-07-28"]);
        assert!(p.rules.is_empty() && p.default_deny.is_none() && p.kill.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(br#"{"max_body_byte": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_body_byte`"), "{e}");
        assert_eq!(e.field, "max_body_byte");
        let e = load(br#"{"eras": {"modern": true, "legcy": false}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `legcy`"), "{e}");
        assert_eq!(e.field, "eras.legcy");
        let e = load(br#"{"supported_versions": ["2026-07-28", "2025-11-25"]}"#).unwrap_err();
        assert_eq!(e.field, "supported_versions[1]");
        let e = load(br#"{"max_body_bytes": 0}"#).unwrap_err();
        assert_eq!(e.field, "max_body_bytes");
        let e = load(br#"{"eras": {"modern": false, "legacy": false}}"#).unwrap_err();
        assert_eq!(e.field, "eras");
        let e = load(br#"{"rules": [{"id": "a", "action": "allow"}, {"action": "deny"}]}"#).unwrap_err();
        assert_eq!(e.field, "rules[1].id");
        assert!(e.message.contains("missing field `id`"), "{e}");
    }
}
