//! MCP Apps: `ui://` templates (active HTML the host renders) read with `resources/read`, checked
//! by the response inspector `ui_template`.
//!
//! - The template's content is pinned per (upstream, scope, URI): the fingerprint of the answer's
//!   `contents` array (text or blob, mime type, `_meta.ui` with its CSP) is observed in the `ui`
//!   baseline table ([`crate::state::baselines`]) and, when the upstream's pin lists the URI,
//!   compared with the pin. A template that changed after it was trusted → `ui_template_changed`.
//! - Every domain its `_meta.ui.csp` declares (`connectDomains`, `resourceDomains`,
//!   `frameDomains`, `baseUriDomains`) must match `tool_integrity.ui_csp_allow` when the policy
//!   has that list → `csp_domain_not_allowed`.
//!
//! `ui_templates: deny` (the default) withholds the answer (-31502); `warn` reports only.

use std::rc::Rc;

use serde_json::Value;

use super::baseline::{answer_scope, answer_ttl, identity_mismatch};
use crate::inspect::{may_mention, read_object, Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::mcp::fingerprint::Fingerprint;
use crate::policy::integrity::ChangeAction;
use crate::policy::Policy;
use crate::ports::{Fault, Kv};
use crate::state::baselines::{Baselines, Observed, Subject};

pub const INSPECTOR: &str = "ui_template";
const CSP_LISTS: [&str; 4] = ["connectDomains", "resourceDomains", "frameDomains", "baseUriDomains"];

/// True when a `resources/read` of this (resolved) URI is an app template.
pub fn is_ui_uri(uri: &str) -> bool {
    uri.starts_with("ui://")
}

pub struct UiTemplate {
    policy: Rc<Policy>,
}

impl UiTemplate {
    pub fn new(policy: Rc<Policy>) -> UiTemplate {
        UiTemplate { policy }
    }
}

impl Inspector for UiTemplate {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        let Some(v) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let Some(result) = v.get("result") else { return Rewrite::Keep };
        let Some(contents) = result.get("contents") else { return Rewrite::Keep };
        let ip = &self.policy.integrity;
        let disposition = if ip.ui == ChangeAction::Deny { Disposition::Block } else { Disposition::Report };
        let found = |what| Finding {
            inspector: INSPECTOR,
            what,
            severity: Severity::High,
            data_class: None,
            fault: Fault::Upstream,
            disposition,
        };
        let Some(uri) = ex.request.policy_name() else { return Rewrite::Keep };
        let pin = ip.pin(ex.upstream);
        if pin.is_some_and(|p| identity_mismatch(p, result)) {
            findings.push(found("server_identity_mismatch"));
            return Rewrite::Keep;
        }
        let fp = Fingerprint::of(contents);
        let scope = answer_scope(result, ex.principal_key);
        let table = Baselines::templates(ip.baseline_slots);
        match table.observe(
            state,
            Subject { upstream: ex.upstream, scope, name: uri },
            (fp.short(), 0),
            ex.now_ms,
            ip.lifetime_ms(answer_ttl(result)),
        ) {
            Ok(Observed::Changed { .. }) if pin.and_then(|p| p.ui.get(uri)).is_none() => {
                findings.push(found("ui_template_changed"))
            }
            Ok(_) => {}
            Err(_) => findings.push(Finding::store_error(INSPECTOR, Disposition::Report)),
        }
        match pin.map(|p| (&p.ui, p.ui.get(uri))) {
            Some((_, Some(pinned))) if *pinned != fp => findings.push(found("ui_template_changed")),
            // A pin that lists templates approves those alone.
            Some((listed, None)) if !listed.is_empty() => findings.push(found("unpinned_ui_template")),
            _ => {}
        }
        if let Some(allow) = &ip.csp_allow {
            let items = contents.as_array().map(Vec::as_slice).unwrap_or_default();
            // A list that is not an array of strings cannot be checked: it is not allowed.
            let denied = items.iter().filter_map(|c| c.pointer("/_meta/ui/csp")).any(|csp| {
                !csp.is_object()
                    || CSP_LISTS.iter().filter_map(|k| csp.get(*k)).any(|list| match list.as_array() {
                        Some(domains) => {
                            domains.iter().any(|d| d.as_str().is_none_or(|domain| !allow.iter().any(|g| g.matches(domain))))
                        }
                        None => true,
                    })
            });
            if denied {
                findings.push(found("csp_domain_not_allowed"));
            }
        }
        Rewrite::Keep
    }
}

/// The inspector `list_changed` (on `subscriptions/listen` streams and `tools/call` SSE
/// answers): a `notifications/tools/list_changed` marks the upstream's baselines stale (a
/// sensitive tool then needs a new list before it runs) instead of passing unnoticed.
pub struct ListChangedWatch;

impl Inspector for ListChangedWatch {
    fn name(&self) -> &'static str {
        "list_changed"
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        if !may_mention(message, b"notifications/tools/list_changed") {
            return Rewrite::Keep;
        }
        let Some(v) = read_object("list_changed", message, findings) else { return Rewrite::Keep };
        if v.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
            let table = crate::state::baselines::list_changes();
            if crate::state::baselines::mark_list_changed(state, &table, ex.upstream, ex.now_ms).is_err() {
                findings.push(Finding::store_error("list_changed", Disposition::Report));
            }
        }
        Rewrite::Keep
    }
}
