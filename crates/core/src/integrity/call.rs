//! Enforcement at call time: a `tools/call` checked against the tool's pin or baseline, with at
//! most the one shared-data read of its baseline (two for a `public` baseline, one more for a
//! sensitive tool's freshness) and nothing re-parsed: the capability hash was read with the
//! request's own single parse.
//!
//! In order:
//! 1. **Pin** (the upstream has an approved manifest): a tool it does not list is not approved
//!    (`unpinned_tool`, whatever the baseline says: renaming a tool does not dodge a pin); a
//!    capability hash or a last-seen definition other than the pinned one is a change.
//! 2. **Baseline**: a record that saw another definition since it was trusted is a change
//!    (`tool_changed`, "since T"); so is a capability hash other than the trusted fingerprint,
//!    which catches a client that saw a swapped list this replica never served.
//! 3. **Unknown** (no pin, no live baseline): `unknown_tools` decides; a tool matching
//!    `sensitive_tools` also needs its baseline confirmed after the upstream's last
//!    `notifications/tools/list_changed` (`stale_baseline`).
//!
//! `changed_tools: warn` turns every refusal of 1–2 into a reported finding.

use super::baseline::INSPECTOR;
use crate::inspect::{Disposition, Finding, Severity};
use crate::mcp::fingerprint::Fingerprint;
use crate::mcp::model::McpRequest;
use crate::policy::integrity::ChangeSeen;
use crate::policy::integrity::{ChangeAction, UnknownAction};
use crate::policy::{Action, Policy};
use crate::ports::{Fault, Kv};
use crate::state::baselines::BaselineCache;
use crate::state::baselines::{list_changed_at, list_changes, Baseline, Baselines};
use crate::state::slots::StoreError;

/// What the check found for one call.
#[derive(Debug, Default)]
pub struct CallCheck {
    /// `Some`: refuse the call with this.
    pub action: Option<Action>,
    pub findings: Vec<Finding>,
    pub store_error: Option<StoreError>,
    /// The categories the tool's baseline recorded from its annotations (0: none known).
    pub categories: u8,
}

fn finding(what: &'static str, severity: Severity, blocked: bool) -> Finding {
    Finding {
        inspector: INSPECTOR,
        what,
        severity,
        data_class: None,
        fault: Fault::Upstream,
        disposition: if blocked { Disposition::Block } else { Disposition::Report },
    }
}

impl CallCheck {
    fn changed(&mut self, deny: bool, tool: &str, since_ms: u64, seen: ChangeSeen) {
        self.findings.push(finding("tool_changed", Severity::High, deny));
        if deny {
            self.action = Some(Action::ToolChanged { tool: tool.to_owned(), since_ms, seen });
        }
    }

    fn not_approved(&mut self, tool: &str, why: &'static str) {
        self.findings.push(finding(why, Severity::High, true));
        self.action = Some(Action::ToolNotApproved { tool: tool.to_owned(), why });
    }
}

/// Who calls, through which upstream, when.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub upstream: &'a str,
    pub principal_key: &'a str,
    /// Whom rate limits count: the principal's key, or an anonymous caller's address (its key
    /// includes the user agent, which a client rotates freely).
    pub rate_key: &'a str,
    pub now_ms: u64,
}

/// Checks an allowed `tools/call` (other requests pass unchecked). `cache`: what the worker
/// remembers (upstreams with baselines: a call to an upstream nobody listed reads one key and
/// hashes nothing; with `baseline_cache_ms`, baselines read a moment ago).
pub fn check_call(policy: &Policy, kv: &dyn Kv, cache: &mut BaselineCache, req: &McpRequest, at: Requester<'_>) -> CallCheck {
    let Requester { upstream, principal_key, now_ms, .. } = at;
    let mut out = CallCheck::default();
    let ip = &policy.integrity;
    let Some(tool) = req.name.as_deref().filter(|_| req.op == Some(crate::mcp::Method::ToolsCall)) else { return out };
    if ip.changed == ChangeAction::Off {
        return out;
    }
    let deny = ip.changed == ChangeAction::Deny;
    // A capability hash that is not a fingerprint names no definition: it cannot vouch for one.
    let claimed = req.handles.tool_hash.as_deref().map(Fingerprint::parse);
    if claimed == Some(None) {
        out.findings.push(finding("invalid_capability_hash", Severity::Warning, false));
    }
    let claimed = claimed.flatten();
    let tables = Baselines::tools(ip.baseline_slots);
    let baseline = |out: &mut CallCheck, cache: &mut BaselineCache| -> Option<Baseline> {
        if let Some(recent) = cache.recent.get(upstream, principal_key, tool, now_ms) {
            out.categories = recent.map_or(0, |b| b.categories);
            return recent;
        }
        let found = match cache.baselined.may_have(kv, upstream) {
            Ok(false) => Ok(None),
            Ok(true) => tables.lookup_any(kv, upstream, principal_key, tool, now_ms),
            Err(e) => Err(e),
        };
        if let (Ok(found), true) = (&found, ip.cache_ms > 0) {
            cache.recent.put(upstream, principal_key, tool, *found, now_ms.saturating_add(ip.cache_ms));
        }
        match found {
            Ok(b) => {
                out.categories = b.map_or(0, |b| b.categories);
                b
            }
            Err(e) => {
                out.store_error = Some(e);
                out.findings.push(Finding::store_error(INSPECTOR, Disposition::Report));
                None
            }
        }
    };

    if let Some(pin) = ip.pin(upstream) {
        let Some(pinned) = pin.tools.get(tool) else {
            out.not_approved(tool, "unpinned_tool");
            return out;
        };
        if claimed.is_some_and(|c| c != *pinned) {
            out.changed(deny, tool, now_ms, ChangeSeen::CapabilityHash);
            return out;
        }
        if let Some(b) = baseline(&mut out, cache) {
            if b.seen != pinned.short() || b.trusted != pinned.short() {
                let since = if b.changed() { b.changed_at_ms } else { b.trusted_since_ms };
                out.changed(deny, tool, since, ChangeSeen::List);
            }
        }
        return out;
    }

    let sensitive = ip.is_sensitive(tool);
    match baseline(&mut out, cache) {
        Some(b) if b.changed() => out.changed(deny, tool, b.changed_at_ms, ChangeSeen::List),
        Some(b) if claimed.is_some_and(|c| c.short() != b.trusted) => out.changed(deny, tool, now_ms, ChangeSeen::CapabilityHash),
        Some(b) if sensitive => {
            // Fresh: confirmed by a list after the upstream last said its tools changed.
            match list_changed_at(kv, &list_changes(), upstream) {
                Ok(None) => {}
                Ok(Some(at)) if at < b.confirmed_ms => {}
                Ok(_) => out.not_approved(tool, "stale_baseline"),
                Err(e) => {
                    out.store_error = Some(e);
                    out.not_approved(tool, "stale_baseline");
                }
            }
        }
        Some(_) => {}
        None => {
            let refuse = match ip.unknown {
                UnknownAction::Allow => sensitive,
                UnknownAction::Deny => true,
                UnknownAction::DenySensitive => sensitive,
            };
            if refuse {
                out.not_approved(tool, "unknown_tool");
            } else {
                out.findings.push(finding("unknown_tool", Severity::Info, false));
            }
        }
    }
    out
}
