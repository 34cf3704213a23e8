//! Learning tool baselines from `tools/list` answers (JSON body or SSE event, every page), and
//! holding back what changed: the response inspector `tool_baseline`.
//!
//! For every tool of the answer: its [`Fingerprint`] is observed in the baseline table under
//! (upstream, scope, name) ([`crate::state::baselines`]); the scope is `public` when the answer
//! says `cacheScope: "public"`, else the caller's principal. Then, when the upstream has a pin,
//! the pin decides (a tool the manifest does not list, or lists with another fingerprint, is
//! not approved); without one the baseline does (a definition other than the trusted one is a
//! rug-pull). What is not approved leaves the list when `changed_tools` is `deny` (the model never
//! reads the new text, and its calls are refused at call time, [`super::call`]); with `warn` it
//! is only reported. The page's set of names is observed too: a renamed, added or removed tool
//! changes it (`tool_set_changed`), and a new tool beside known ones is `tool_added`.
//!
//! A pin that names the server (`serverInfo`) withholds the whole answer when the answer's
//! `_meta["io.modelcontextprotocol/serverInfo"]` names another (`server_identity_mismatch`).
//! A tool whose `_meta.ui.resourceUri` is not a `ui://` URI, or not one the pin approves, is not
//! approved either (`foreign_ui_resource`).

use std::rc::Rc;

use serde_json::Value;

use crate::inspect::{may_mention, read_object, Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::mcp::fingerprint::{names_fingerprint, tool_ui_resource, Fingerprint};
use crate::mcp::uri;
use crate::policy::integrity::{ChangeAction, Pin};
use crate::policy::{filter_list, ListKind, Policy};
use crate::ports::{Fault, Kv};
use crate::state::baselines::{mark_upstream, Baselines, Observed, Scope, Subject};
use crate::state::slots::SlotTable;

pub const INSPECTOR: &str = "tool_baseline";
/// The `_meta` key modern results name their server in.
pub const SERVER_INFO_META_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// The table of each list page's set of names (one record per (upstream, scope, page): an
/// eighth of the tool table).
pub fn name_sets(tool_slots: u32) -> Baselines {
    Baselines { table: SlotTable::new("tset", tool_slots.div_ceil(8).max(64), crate::state::baselines::BASELINE_WAYS) }
}

/// The scope an answer's baselines live in.
pub fn answer_scope<'a>(result: &Value, principal_key: &'a str) -> Scope<'a> {
    match result.get("cacheScope").and_then(Value::as_str) {
        Some("public") => Scope::Public,
        _ => Scope::Principal(principal_key),
    }
}

/// An answer's `ttlMs` hint (absent, negative or not a number: none).
pub fn answer_ttl(result: &Value) -> Option<u64> {
    result.get("ttlMs").and_then(Value::as_u64)
}

/// The server identity an answer states: the modern `_meta` key, or a legacy `initialize`
/// result's `serverInfo`.
pub fn server_info(result: &Value) -> Option<(&str, Option<&str>)> {
    let info = result.get("_meta").and_then(|m| m.get(SERVER_INFO_META_KEY)).or_else(|| result.get("serverInfo"))?;
    Some((info.get("name").and_then(Value::as_str)?, info.get("version").and_then(Value::as_str)))
}

/// True when the answer's server identity contradicts the pin's.
pub fn identity_mismatch(pin: &Pin, result: &Value) -> bool {
    let (Some((name, version)), Some(stated)) = (&pin.server, server_info(result)) else { return false };
    stated.0 != name || version.as_deref().is_some_and(|v| stated.1 != Some(v))
}

fn finding(what: &'static str, severity: Severity, disposition: Disposition) -> Finding {
    Finding { inspector: INSPECTOR, what, severity, data_class: None, fault: Fault::Upstream, disposition }
}

/// The categories a tool's own annotations name (only what they state outright: `openWorldHint`
/// defaults to true in the spec, and an unstated hint is no evidence): `readOnlyHint` read,
/// `destructiveHint` write, `openWorldHint` network. They add to what the name says, never take
/// away (a server cannot talk a tool out of a chain).
fn annotated_categories(tool: &Value) -> u8 {
    use crate::policy::correlate::Category;
    let Some(a) = tool.get("annotations") else { return 0 };
    let hint = |k: &str| a.get(k).and_then(Value::as_bool) == Some(true);
    let mut bits = 0;
    if hint("readOnlyHint") {
        bits |= Category::Read.bit();
    }
    if hint("destructiveHint") {
        bits |= Category::Write.bit();
    }
    if hint("openWorldHint") {
        bits |= Category::Network.bit();
    }
    bits
}

/// Observes one tool in every scope a call may be judged by: a public answer is recorded as
/// public and as the caller's own (the caller's record is what its calls read first), a private
/// one as the caller's, checked against a public record of the same tool. A change seen in one
/// scope marks the other, so switching `cacheScope` between two lists never makes a swapped
/// definition new.
fn observe_in_scopes(
    table: &Baselines,
    state: &mut dyn Kv,
    ex: &ExchangeView<'_>,
    scope: Scope<'_>,
    name: &str,
    (fp, categories): ([u8; 16], u8),
    lifetime: u64,
) -> Result<Observed, crate::state::slots::StoreError> {
    let own = Subject { upstream: ex.upstream, scope: Scope::Principal(ex.principal_key), name };
    let public = Subject { upstream: ex.upstream, scope: Scope::Public, name };
    let mark = |state: &mut dyn Kv, at: Subject<'_>, since: u64| table.mark_changed(state, at, fp, since, ex.now_ms, lifetime);
    match scope {
        Scope::Public => {
            let shared = table.observe(state, public, (fp, categories), ex.now_ms, lifetime)?;
            let mine = table.observe(state, own, (fp, categories), ex.now_ms, lifetime)?;
            match (shared, mine) {
                (Observed::Changed { since_ms, first }, Observed::New | Observed::Same) => {
                    mark(state, own, since_ms)?;
                    Ok(Observed::Changed { since_ms, first })
                }
                (Observed::New | Observed::Same, Observed::Changed { since_ms, first }) => {
                    mark(state, public, since_ms)?;
                    Ok(Observed::Changed { since_ms, first })
                }
                (c @ Observed::Changed { .. }, _) => Ok(c),
                (Observed::New, Observed::New) => Ok(Observed::New),
                _ => Ok(Observed::Same),
            }
        }
        Scope::Principal(_) => {
            let mine = table.observe(state, own, (fp, categories), ex.now_ms, lifetime)?;
            let shared = table.lookup(state, ex.upstream, Scope::Public, name, ex.now_ms)?;
            match (mine, shared) {
                (c @ Observed::Changed { .. }, _) => Ok(c),
                (_, Some(b)) if b.trusted != fp || b.changed() => {
                    let since = if b.changed() { b.changed_at_ms } else { ex.now_ms };
                    mark(state, own, since)?;
                    Ok(Observed::Changed { since_ms: since, first: true })
                }
                (o, _) => Ok(o),
            }
        }
    }
}

/// The inspector `tool_baseline` (on `tools/list` answers).
pub struct ToolBaseline {
    policy: Rc<Policy>,
}

impl ToolBaseline {
    pub fn new(policy: Rc<Policy>) -> ToolBaseline {
        ToolBaseline { policy }
    }
}

impl Inspector for ToolBaseline {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        // On a GET stream most messages are no list: only one that may name `tools` is parsed.
        if ex.request.handles.standalone_stream && !may_mention(message, b"\"tools\"") {
            return Rewrite::Keep;
        }
        let Some(v) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let Some(result) = v.get("result") else { return Rewrite::Keep };
        let Some(tools) = result.get("tools").and_then(Value::as_array) else { return Rewrite::Keep };
        let ip = &self.policy.integrity;
        let pin = ip.pin(ex.upstream);
        if pin.is_some_and(|p| identity_mismatch(p, result)) {
            findings.push(finding("server_identity_mismatch", Severity::High, Disposition::Block));
            return Rewrite::Keep;
        }
        let scope = answer_scope(result, ex.principal_key);
        let lifetime = ip.lifetime_ms(answer_ttl(result));
        let table = Baselines::tools(ip.baseline_slots);
        if !tools.is_empty() && mark_upstream(state, ex.upstream).is_err() {
            findings.push(Finding::store_error(INSPECTOR, Disposition::Report));
        }
        let deny = ip.changed == ChangeAction::Deny;
        let disposition = Disposition::Report;
        let mut withheld: Vec<&str> = Vec::new();
        let mut added = Vec::new();
        let mut known = false;
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
            let fp = Fingerprint::of_tool(tool);
            // The pin decides without the store; a NUL is in no honest tool name (and would
            // reach the records this table keeps under NUL-prefixed names).
            let pinned = pin.map(|p| match p.tools.get(name) {
                None => Some("unpinned_tool"),
                Some(h) if *h != fp => Some("tool_changed"),
                Some(_) => None,
            });
            let invalid = name.contains('\0').then_some("invalid_tool_name");
            let observed = if invalid.is_some() {
                Ok(Observed::New)
            } else {
                observe_in_scopes(&table, state, ex, scope, name, (fp.short(), annotated_categories(tool)), lifetime)
            };
            let observed = match observed {
                Ok(o) => o,
                Err(_) => {
                    findings.push(Finding::store_error(INSPECTOR, Disposition::Report));
                    Observed::Same
                }
            };
            known |= observed != Observed::New;
            let verdict = match pinned {
                Some(v) => v,
                None => match observed {
                    Observed::Changed { .. } => Some("tool_changed"),
                    Observed::New => {
                        added.push(name);
                        None
                    }
                    Observed::Same => None,
                },
            };
            let ui = tool_ui_resource(tool).and_then(|u| ui_resource_problem(u, pin));
            if let Some(what) = invalid.or(verdict).or(ui) {
                findings.push(finding(what, Severity::High, disposition));
                withheld.push(name);
            }
        }
        if known {
            for _ in &added {
                findings.push(finding("tool_added", Severity::Warning, Disposition::Report));
            }
        }
        let names = names_fingerprint(tools.iter().filter_map(|t| t.get("name").and_then(Value::as_str)));
        let page = ex.request.handles.cursor.as_deref().unwrap_or("");
        match name_sets(ip.baseline_slots).observe(
            state,
            Subject { upstream: ex.upstream, scope, name: page },
            (names.short(), 0),
            ex.now_ms,
            lifetime,
        ) {
            Ok(Observed::Changed { first: true, .. }) => {
                findings.push(finding("tool_set_changed", Severity::Warning, Disposition::Report))
            }
            Ok(_) => {}
            Err(_) => findings.push(Finding::store_error(INSPECTOR, Disposition::Report)),
        }
        if withheld.is_empty() || !deny {
            return Rewrite::Keep;
        }
        match filter_list(message, ListKind::Tools, &|n| !withheld.contains(&n), false) {
            Some(body) => Rewrite::Replace(body),
            None => {
                findings.push(Finding::unreadable(INSPECTOR, "undroppable_tool"));
                Rewrite::Keep
            }
        }
    }
}

/// Why a tool's `_meta.ui.resourceUri` is not acceptable, if it is not.
fn ui_resource_problem(resource: &str, pin: Option<&Pin>) -> Option<&'static str> {
    let normalized = uri::normalize(resource).ok()?;
    if !normalized.starts_with("ui://") {
        return Some("foreign_ui_resource");
    }
    match pin {
        Some(p) if !p.ui.is_empty() && !p.ui.contains_key(&normalized) => Some("foreign_ui_resource"),
        _ => None,
    }
}

/// The record name of an upstream's server identity in the tool table (no tool name holds a NUL).
const SERVER_RECORD: &str = "\0server";

/// The inspector on `initialize` and `server/discover` answers: the server identity is learned
/// (a change is `server_identity_changed`), and an answer from another server than a pin names
/// is withheld (`server_identity_mismatch`).
pub struct ServerIdentity {
    policy: Rc<Policy>,
}

impl ServerIdentity {
    pub fn new(policy: Rc<Policy>) -> ServerIdentity {
        ServerIdentity { policy }
    }
}

impl Inspector for ServerIdentity {
    fn name(&self) -> &'static str {
        INSPECTOR
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        let Some(v) = read_object(INSPECTOR, message, findings) else { return Rewrite::Keep };
        let Some(result) = v.get("result") else { return Rewrite::Keep };
        let ip = &self.policy.integrity;
        if ip.pin(ex.upstream).is_some_and(|pin| identity_mismatch(pin, result)) {
            findings.push(finding("server_identity_mismatch", Severity::High, Disposition::Block));
            return Rewrite::Keep;
        }
        // The identity is learned like a tool (public: the same server for everyone); a server
        // that starts announcing another name or version is worth a look, not a refusal.
        if let Some((name, version)) = server_info(result) {
            let fp = Fingerprint::of(&serde_json::json!({"name": name, "version": version}));
            let at = Subject { upstream: ex.upstream, scope: Scope::Public, name: SERVER_RECORD };
            match Baselines::tools(ip.baseline_slots).observe(state, at, (fp.short(), 0), ex.now_ms, ip.max_ttl_ms) {
                Ok(Observed::Changed { first: true, .. }) => {
                    findings.push(finding("server_identity_changed", Severity::Warning, Disposition::Report));
                }
                Ok(_) => {}
                Err(_) => findings.push(Finding::store_error(INSPECTOR, Disposition::Report)),
            }
        }
        Rewrite::Keep
    }
}
