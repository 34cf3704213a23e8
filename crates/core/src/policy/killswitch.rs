//! The kill switch: stop all traffic, or one upstream, tool, method or principal, with a 503 and
//! a JSON-RPC error naming the reason. Entries come from the plugin configuration and from the
//! control endpoint; both lists are in force together ([`KillSwitch::merged`]).
//!
//! Checked before any rule, so a kill cannot be shadowed by an `allow`.

use super::error::{check_reason, err, ConfigError};
use super::glob::Glob;
use super::spec::KillSpec;
use crate::mcp::model::McpRequest;
use crate::mcp::Method;
use crate::principal::Principal;

/// Most entries in one list.
pub const MAX_ENTRIES: usize = 1024;

/// What an entry stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    All,
    Upstream(Glob),
    /// `tools/call` of a matching tool.
    Tool(Glob),
    Method(Glob),
    /// Matching principal id.
    Principal(Glob),
}

impl KillTarget {
    /// Short label for logs, metrics and `error.data.scope`.
    pub fn scope(&self) -> &'static str {
        match self {
            KillTarget::All => "all",
            KillTarget::Upstream(_) => "upstream",
            KillTarget::Tool(_) => "tool",
            KillTarget::Method(_) => "method",
            KillTarget::Principal(_) => "principal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillEntry {
    pub target: KillTarget,
    pub reason: String,
}

/// A compiled list of kill entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillSwitch {
    pub entries: Vec<KillEntry>,
}

impl KillSwitch {
    /// Compiles entries; `at` is the JSON path of the list (e.g. `kill_switch`).
    pub fn compile(specs: &[KillSpec], at: &str) -> Result<KillSwitch, ConfigError> {
        if specs.len() > MAX_ENTRIES {
            return Err(err(at.to_owned(), format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entries = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            let here = format!("{at}[{i}]");
            let glob = |name: &str, p: &str| Glob::new(p).map_err(|m| err(format!("{here}.{name}"), m));
            let mut targets = Vec::new();
            if s.all {
                targets.push(KillTarget::All);
            }
            if let Some(p) = &s.upstream {
                targets.push(KillTarget::Upstream(glob("upstream", p)?));
            }
            if let Some(p) = &s.tool {
                targets.push(KillTarget::Tool(glob("tool", p)?));
            }
            if let Some(p) = &s.method {
                targets.push(KillTarget::Method(glob("method", p)?));
            }
            if let Some(p) = &s.principal {
                targets.push(KillTarget::Principal(glob("principal", p)?));
            }
            let target = match targets.len() {
                1 => targets.pop(),
                _ => None,
            };
            let Some(target) = target else {
                return Err(err(here, "needs exactly one of `all: true`, `upstream`, `tool`, `method`, `principal`"));
            };
            check_reason(format!("{here}.reason"), &s.reason)?;
            entries.push(KillEntry { target, reason: s.reason.clone() });
        }
        Ok(KillSwitch { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Both lists in force (configuration first, so its reasons win ties).
    pub fn merged(&self, other: &KillSwitch) -> KillSwitch {
        let mut entries = self.entries.clone();
        entries.extend(other.entries.iter().cloned());
        KillSwitch { entries }
    }

    /// The first entry that stops a `tools/call` of `tool` by its tool or method (the entries a
    /// task of that tool answers to: everything else it shares with its own request). `whole`:
    /// false when `tool` is only the start of the name (then every tool entry stops it).
    pub fn check_tool_call(&self, tool: &str, whole: bool) -> Option<&KillEntry> {
        self.entries.iter().find(|e| match &e.target {
            KillTarget::Tool(g) => !whole || g.matches(tool),
            KillTarget::Method(g) => g.matches(Method::ToolsCall.as_str()),
            KillTarget::All | KillTarget::Upstream(_) | KillTarget::Principal(_) => false,
        })
    }

    /// The first entry that stops this request, if any.
    pub fn check(&self, principal: &Principal, req: &McpRequest, upstream: &str) -> Option<&KillEntry> {
        let method = req.method.as_deref();
        self.entries.iter().find(|e| match &e.target {
            KillTarget::All => true,
            KillTarget::Upstream(g) => g.matches(upstream),
            KillTarget::Tool(g) => req.op == Some(Method::ToolsCall) && req.name.as_deref().is_some_and(|n| g.matches(n)),
            // A message without a method (GET stream, DELETE, a posted response) is stopped by a
            // pattern that matches any method (`*`): "every method" has no side door.
            KillTarget::Method(g) => g.matches(method.unwrap_or_default()),
            KillTarget::Principal(g) => g.matches(&principal.id),
        })
    }
}
