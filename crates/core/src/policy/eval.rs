//! Rule evaluation and enforcement: principal + request + upstream → [`Verdict`].
//!
//! Order: kill switch (configuration and control endpoint) → rules in order → default.
//! - `allow` / `deny`: the first matching rule decides.
//! - `rate_limit`: takes a token from the rule's bucket; over the limit → 429, otherwise the
//!   evaluation goes on to the next rule (so limits stack and never shadow a later `deny`).
//! - `dry_run: true`: the rule's would-be outcome is recorded in [`Verdict::dry_run`] and the
//!   evaluation goes on as if it had not matched (a dry-run rate limit still counts its bucket).

use super::compile::{Matcher, Policy, Rule, RuleAction};
use super::killswitch::KillSwitch;
use super::lists::ListKind;
use super::spec::{BucketKey, OnStoreError};
use crate::mcp::model::{Era, McpRequest, Target};
use crate::mcp::uri;
use crate::mcp::Method;
use crate::ports::Kv;
use crate::principal::Principal;
use crate::state::ratelimit::{self, RateDecision};
use crate::state::slots::StoreError;

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// `hide` is true only when the request names a tool, prompt or resource the rule hides.
    Deny {
        reason: String,
        hide: bool,
    },
    RateLimited {
        retry_after_secs: u64,
        retry_after_ms: u64,
    },
    Kill {
        reason: String,
        scope: &'static str,
    },
    /// A legacy session presented by a principal other than the one that opened it.
    SessionNotFound,
    /// A tool whose definition differs from its baseline or pin (a rug-pull), since `since_ms`.
    ToolChanged {
        tool: String,
        since_ms: u64,
        seen: super::integrity::ChangeSeen,
    },
    /// A tool the pin does not list, or without the baseline the policy requires (`why`).
    ToolNotApproved {
        tool: String,
        why: &'static str,
    },
    /// A task presented by a principal other than the one that created it.
    TaskNotFound {
        task: String,
    },
    /// The request carries what the content scan blocks (a credential, a canary): `what` names
    /// the detector, never the content.
    ContentBlocked {
        what: &'static str,
        class: Option<&'static str>,
    },
    /// What the filter remembers across requests refuses it (`why`: `entropy_budget`,
    /// `escalation`, `tool_chain`, `fragmented_secret`, `mesh_budget`, `mesh_unavailable`).
    /// `detail` names the chain or the detector; a hold says until when.
    Correlated {
        why: &'static str,
        detail: Option<String>,
        class: Option<&'static str>,
        until_ms: Option<u64>,
        retry_after_secs: u64,
    },
    /// A `confirm` rule matched. The confirmation step ([`crate::confirm`]) turns it into the
    /// question, the approved call or a refusal; left as it is (a legacy batch element), it is
    /// refused as a client that cannot be asked.
    Confirm {
        reason: String,
    },
    /// The gateway asks the client's user: `body` is the `input_required` answer to send.
    ConfirmAsk {
        body: String,
    },
    /// The call runs without the user's approval: `why` is `declined`, `cancelled`, `rejected`
    /// (accepted without approving), `unsupported` (the client cannot be asked), a broken state
    /// (`forged`, `expired`, `replayed`, `caller`, `call`, `arguments`, `ambiguous`) or `unavailable` (no key,
    /// or the replay table cannot answer).
    ConfirmRefused {
        why: &'static str,
    },
}

impl Action {
    /// Metric / log label.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny { hide: true, .. } => "hide",
            Action::Deny { .. } => "deny",
            Action::RateLimited { .. } => "rate_limited",
            Action::Kill { .. } => "kill",
            Action::SessionNotFound => "session_not_found",
            Action::ToolChanged { .. } => "tool_changed",
            Action::ToolNotApproved { .. } => "tool_not_approved",
            Action::TaskNotFound { .. } => "task_not_found",
            Action::ContentBlocked { .. } => "content_blocked",
            Action::Correlated { .. } => "correlated",
            Action::Confirm { .. } => "confirm",
            Action::ConfirmAsk { .. } => "ask",
            Action::ConfirmRefused { .. } => "confirm_refused",
        }
    }
}

/// A dry-run rule that matched, and what it would have done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunHit {
    pub rule_id: String,
    pub would: Action,
}

/// The outcome of [`enforce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The rule that decided; `None` for the default or the kill switch.
    pub rule_id: Option<String>,
    /// Dry-run rules that matched on the way (log them; they change nothing).
    pub dry_run: Vec<DryRunHit>,
    /// Rate-limit buckets that could not be read or written (each rule's `on_store_error` said
    /// what happened: 429 by default, or let through). Count these.
    pub store_errors: Vec<(String, StoreError)>,
}

fn any_glob(globs: &[super::glob::Glob], s: Option<&str>) -> bool {
    globs.is_empty() || s.is_some_and(|s| globs.iter().any(|g| g.matches(s)))
}

impl Matcher {
    /// True when every condition holds.
    pub fn matches(&self, p: &Principal, req: &McpRequest, upstream: &str) -> bool {
        self.matches_parts(p, req.era, req.method.as_deref(), req.policy_name(), upstream)
    }

    fn matches_parts(&self, p: &Principal, era: Era, method: Option<&str>, name: Option<&str>, upstream: &str) -> bool {
        any_glob(&self.principals, Some(&p.id))
            && (self.origins.is_empty() || self.origins.contains(&p.origin))
            && (self.groups.is_empty() || self.groups.iter().any(|g| p.groups.contains(g)))
            && self.claims.iter().all(|(k, g)| p.claim(k).is_some_and(|v| g.matches(v)))
            && (self.trust_domains.is_empty() || p.trust_domain.as_ref().is_some_and(|t| self.trust_domains.contains(t)))
            && (self.actors.is_empty() || p.actors.iter().any(|a| self.actors.iter().any(|g| g.matches(a))))
            && (self.eras.is_empty() || self.eras.contains(&era))
            && any_glob(&self.methods, method)
            && any_glob(&self.names, name)
            && any_glob(&self.upstreams, Some(upstream))
    }

    /// Could this rule match some principal's `method` on `upstream`?
    fn may_match_method(&self, era: Era, upstream: &str, method: &str) -> bool {
        (self.eras.is_empty() || self.eras.contains(&era))
            && any_glob(&self.methods, Some(method))
            && any_glob(&self.upstreams, Some(upstream))
    }
}

/// The first deny rule (`hiding`: only one that hides) matching a resource URI with no single
/// reading, as sent or as leniently decoded: the server may resolve it into what the rule
/// protects, so either spelling falling under the rule is enough. A `confirm` rule counts as a
/// visible deny: a user cannot be shown what such a URI reads.
fn deny_for_ambiguous<'p>(
    policy: &'p Policy,
    principal: &Principal,
    era: Era,
    method: Option<&str>,
    sent: &str,
    upstream: &str,
    hiding: bool,
) -> Option<&'p Rule> {
    let decoded = uri::lenient(sent);
    policy.rules.iter().find(|r| {
        !r.dry_run
            && (matches!(r.action, RuleAction::Deny { hide, .. } if hide || !hiding)
                || (!hiding && matches!(r.action, RuleAction::Confirm { .. })))
            && [sent, decoded.as_str()].iter().any(|n| r.matcher.matches_parts(principal, era, method, Some(n), upstream))
    })
}

/// The refusal of an ambiguous URI under `rule`: under a hide rule it answers as the hidden
/// resources do (unknown: naming the rule would tell that something is hidden there); under a
/// visible deny, a refusal that says why.
fn ambiguous_denied(rule: &Rule) -> (Action, Option<String>) {
    if let RuleAction::Deny { reason, hide: true } = &rule.action {
        return (Action::Deny { reason: reason.clone(), hide: true }, Some(rule.id.clone()));
    }
    let reason =
        format!("Resource URI has no single reading (encoded delimiter or invalid escape) and falls under rule {}", rule.id);
    (Action::Deny { reason, hide: false }, Some(rule.id.clone()))
}

/// What policy says of the prompt or resource a request reaches without naming it (a
/// completion's `ref`, a subscription): decided as a `prompts/get` / `resources/read` of it
/// would be, rate limits aside. `None` when that would be allowed.
fn target_verdict(
    policy: &Policy,
    principal: &Principal,
    era: Era,
    upstream: &str,
    t: &Target,
) -> Option<(Action, Option<String>)> {
    let method = Some(t.method.as_str());
    if t.ambiguous {
        return deny_for_ambiguous(policy, principal, era, method, &t.name, upstream, false).map(ambiguous_denied);
    }
    use_verdict(policy, principal, era, upstream, method, t.policy_name())
}

/// What the rules say of a use (`method` of `name`) reached indirectly, rate limits and
/// confirmations aside: `None` when it would be allowed.
fn use_verdict(
    policy: &Policy,
    principal: &Principal,
    era: Era,
    upstream: &str,
    method: Option<&str>,
    name: &str,
) -> Option<(Action, Option<String>)> {
    for rule in &policy.rules {
        if rule.dry_run || !rule.matcher.matches_parts(principal, era, method, Some(name), upstream) {
            continue;
        }
        return match &rule.action {
            RuleAction::Allow => None,
            RuleAction::Deny { reason, hide } => {
                Some((Action::Deny { reason: reason.clone(), hide: *hide }, Some(rule.id.clone())))
            }
            RuleAction::RateLimit { .. } => continue,
            // Reaching a prompt or resource without running it (a completion, a subscription)
            // asks nobody: the rule confirms uses.
            RuleAction::Confirm { .. } => None,
        };
    }
    policy.default_deny.as_ref().map(|reason| (Action::Deny { reason: reason.clone(), hide: true }, None))
}

/// What policy says now of the tool whose task a request reaches (`tasks/get|update|result`,
/// `subscriptions/listen`): a task runs its tool's work and carries its output, so a tool that
/// has since been killed (by name, or every `tools/call`) or denied to this principal stops its
/// tasks too. `None`: the tool may still be called. A request's own kill entries (everything,
/// the upstream, the principal, its method) were checked before. `whole`: false when only the
/// start of an overlong name was recorded: then any kill entry naming a tool stops it.
pub fn task_tool_verdict(
    policy: &Policy,
    remote_kill: &KillSwitch,
    principal: &Principal,
    (era, upstream): (Era, &str),
    tool: &str,
    whole: bool,
) -> Option<(Action, Option<String>)> {
    for ks in [&policy.kill, remote_kill] {
        if let Some(k) = ks.check_tool_call(tool, whole) {
            return Some((Action::Kill { reason: k.reason.clone(), scope: k.target.scope() }, None));
        }
    }
    let (action, rule) = use_verdict(policy, principal, era, upstream, Some(Method::ToolsCall.as_str()), tool)?;
    // A hidden tool's task is the caller's own, created while it could see the tool: the
    // refusal names neither the rule's reason nor the tool.
    let reason = "this task belongs to a tool that policy no longer lets this principal use".to_owned();
    Some((if matches!(action, Action::Deny { .. }) { Action::Deny { reason, hide: false } } else { action }, rule))
}

/// Methods whose `Mcp-Name` names something a policy can hide.
fn hideable(req: &McpRequest) -> bool {
    req.name.is_some() && matches!(req.op, Some(Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead))
}

/// The bucket of `rule` for this request (logical key; the slot table hashes it).
/// `who`: whom the principal's limits count ([`enforce_keyed`]). The name is the one rules
/// match (a resource URI in its normal form: `FILE:///a/./b` is `file:///a/b`'s bucket).
pub fn bucket_key(rule: &Rule, key: BucketKey, who: &str, req: &McpRequest, upstream: &str) -> String {
    let method = req.method.as_deref().unwrap_or("");
    let name = req.policy_name().unwrap_or("");
    match key {
        BucketKey::Principal => format!("{}\0p\0{who}", rule.id),
        BucketKey::PrincipalTool => format!("{}\0pt\0{who}\0{method}\0{name}", rule.id),
        BucketKey::PrincipalMethod => format!("{}\0pm\0{who}\0{method}", rule.id),
        BucketKey::Upstream => format!("{}\0u\0{upstream}", rule.id),
        BucketKey::Global => format!("{}\0g", rule.id),
    }
}

/// Decides what happens to one request. `remote_kill` is the kill list from the control endpoint
/// (empty when there is none); the policy's own `kill_switch` is always in force. Buckets live in
/// `kv` (a slot table of `policy.rate_limit_slots`); `now_ms` is the host clock.
pub fn enforce<K: Kv + ?Sized>(
    policy: &Policy,
    remote_kill: &KillSwitch,
    principal: &Principal,
    req: &McpRequest,
    upstream: &str,
    kv: &mut K,
    now_ms: u64,
) -> Verdict {
    enforce_keyed(policy, remote_kill, (principal, &principal.key()), req, upstream, kv, now_ms)
}

/// [`enforce`] with the identity rate limits count the principal by (`rate_key`: its
/// [`Principal::key`], or for an anonymous caller its address, which the request path knows).
pub fn enforce_keyed<K: Kv + ?Sized>(
    policy: &Policy,
    remote_kill: &KillSwitch,
    (principal, rate_key): (&Principal, &str),
    req: &McpRequest,
    upstream: &str,
    kv: &mut K,
    now_ms: u64,
) -> Verdict {
    let mut v = Verdict { action: Action::Allow, rule_id: None, dry_run: Vec::new(), store_errors: Vec::new() };
    for ks in [&policy.kill, remote_kill] {
        if let Some(k) = ks.check(principal, req, upstream) {
            v.action = Action::Kill { reason: k.reason.clone(), scope: k.target.scope() };
            return v;
        }
    }
    if let Some(sent) = req.name.as_deref().filter(|_| req.name_ambiguous) {
        if let Some(rule) = deny_for_ambiguous(policy, principal, req.era, req.method.as_deref(), sent, upstream, false) {
            (v.action, v.rule_id) = ambiguous_denied(rule);
            return v;
        }
    }
    if let Some(t) = &req.target {
        if let Some((action, rule)) = target_verdict(policy, principal, req.era, upstream, t) {
            v.action = action;
            v.rule_id = rule;
            return v;
        }
    }
    let table = ratelimit::table(policy.rate_limit_slots);
    let hide_ok = hideable(req);
    for rule in &policy.rules {
        if !rule.matcher.matches(principal, req, upstream) {
            continue;
        }
        let outcome = match &rule.action {
            RuleAction::Allow => Some(Action::Allow),
            RuleAction::Deny { reason, hide } => Some(Action::Deny { reason: reason.clone(), hide: *hide && hide_ok }),
            RuleAction::Confirm { reason } => Some(Action::Confirm { reason: reason.clone() }),
            RuleAction::RateLimit { quota, key, on_store_error } => {
                let k = bucket_key(rule, *key, rate_key, req, upstream);
                match ratelimit::take(kv, &table, &k, quota, now_ms) {
                    Ok(RateDecision { allowed: true, .. }) => None,
                    Ok(d) => {
                        Some(Action::RateLimited { retry_after_secs: d.retry_after_secs(), retry_after_ms: d.retry_after_ms })
                    }
                    Err(e) => {
                        v.store_errors.push((rule.id.clone(), e));
                        // The budget cannot be checked: fail closed unless the rule says otherwise.
                        match on_store_error {
                            OnStoreError::Deny => Some(Action::RateLimited { retry_after_secs: 1, retry_after_ms: 1000 }),
                            OnStoreError::Allow => None,
                        }
                    }
                }
            }
        };
        let Some(action) = outcome else { continue };
        if rule.dry_run {
            v.dry_run.push(DryRunHit { rule_id: rule.id.clone(), would: action });
            continue;
        }
        v.action = action;
        v.rule_id = Some(rule.id.clone());
        return v;
    }
    if let Some(reason) = &policy.default_deny {
        v.action = Action::Deny { reason: reason.clone(), hide: hide_ok };
    }
    v
}

/// Whether `principal` may see the item `name` of a `kind` list from `upstream`: false when the
/// rule that would decide using it (ignoring rate limits and dry-run rules) denies with `hide`.
pub fn item_visible(policy: &Policy, principal: &Principal, era: Era, upstream: &str, kind: ListKind, name: &str) -> bool {
    if kind == ListKind::Resources {
        // Listed URIs are matched as requests for them will be: resolved, or, without a single
        // reading, hidden wherever a hide rule matches them as listed.
        return match uri::normalize(name) {
            Ok(resolved) => visible_as(policy, principal, era, upstream, kind, &resolved),
            Err(_) => {
                let method = Some(kind.item_method().as_str());
                visible_as(policy, principal, era, upstream, kind, name)
                    && deny_for_ambiguous(policy, principal, era, method, name, upstream, true).is_none()
            }
        };
    }
    visible_as(policy, principal, era, upstream, kind, name)
}

fn visible_as(policy: &Policy, principal: &Principal, era: Era, upstream: &str, kind: ListKind, name: &str) -> bool {
    for rule in &policy.rules {
        if rule.dry_run || matches!(rule.action, RuleAction::RateLimit { .. }) {
            continue;
        }
        if !rule.matcher.matches_parts(principal, era, Some(kind.item_method().as_str()), Some(name), upstream) {
            continue;
        }
        return !matches!(rule.action, RuleAction::Deny { hide: true, .. });
    }
    policy.default_deny.is_none()
}

/// [`item_visible`] for tools.
pub fn tool_visible(policy: &Policy, principal: &Principal, era: Era, upstream: &str, tool: &str) -> bool {
    item_visible(policy, principal, era, upstream, ListKind::Tools, tool)
}

/// True when the policy may hide items of a `kind` list from `upstream` for someone: then every
/// such list result varies by principal and must carry `cacheScope: "private"`, filtered or not.
pub fn list_varies(policy: &Policy, era: Era, upstream: &str, kind: ListKind) -> bool {
    policy.default_deny.is_some()
        || policy.rules.iter().any(|r| {
            !r.dry_run
                && matches!(r.action, RuleAction::Deny { hide: true, .. })
                && r.matcher.may_match_method(era, upstream, kind.item_method().as_str())
        })
}

/// [`list_varies`] for tools.
pub fn tools_list_varies(policy: &Policy, era: Era, upstream: &str) -> bool {
    list_varies(policy, era, upstream, ListKind::Tools)
}
