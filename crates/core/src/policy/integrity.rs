//! The compiled tool-integrity and task settings (`tool_integrity`, `tasks` in the plugin
//! configuration; see [`crate::policy::spec::ToolIntegritySpec`]): part of the immutable
//! [`Policy`](super::Policy); the checks that use them are [`crate::integrity`].

use std::collections::BTreeMap;

use crate::mcp::fingerprint::Fingerprint;
use crate::mcp::uri;
use crate::policy::error::{err, ConfigError};
use crate::policy::glob::{globs, Glob};
use crate::policy::spec::{OnChange, PinSpec, PoisonedTools, TasksSpec, ToolIntegritySpec, UnknownTools};
use crate::state::slots::MAX_CAPACITY;

/// The longest a worker may reuse a baseline it read.
pub const MAX_BASELINE_CACHE_MS: u64 = 5000;
/// Pins one configuration may carry (one per upstream).
pub const MAX_PINS: usize = 256;
/// Tools (and templates) one pin may list.
pub const MAX_PINNED_ITEMS: usize = 4096;

/// What a poisoned tool causes (`tool_integrity.poisoned_tools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonAction {
    Drop,
    Refuse,
    Warn,
    Off,
}

/// How a change was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSeen {
    /// A `tools/list` answer showed another definition.
    List,
    /// The client's capability hash names another definition.
    CapabilityHash,
}

impl ChangeSeen {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSeen::List => "list",
            ChangeSeen::CapabilityHash => "capability_hash",
        }
    }
}

/// What a definition that differs from its baseline or pin causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// Withheld: the tool leaves lists and its calls are refused; a template read is withheld.
    Deny,
    /// Reported only.
    Warn,
    /// Not checked (no baselines kept).
    Off,
}

/// A `tools/call` of a tool with neither baseline nor pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownAction {
    Allow,
    Deny,
    DenySensitive,
}

/// An approved manifest for one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub upstream: String,
    /// `serverInfo` name and (optionally) version the upstream must announce.
    pub server: Option<(String, Option<String>)>,
    pub tools: BTreeMap<String, Fingerprint>,
    /// Keyed by the normalized `ui://` URI.
    pub ui: BTreeMap<String, Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityPolicy {
    pub poisoned: PoisonAction,
    pub changed: ChangeAction,
    pub unknown: UnknownAction,
    pub sensitive: Vec<Glob>,
    pub min_ttl_ms: u64,
    pub max_ttl_ms: u64,
    pub baseline_slots: u32,
    pub pins: Vec<Pin>,
    pub ui: ChangeAction,
    pub csp_allow: Option<Vec<Glob>>,
    /// How long a worker may reuse a baseline it read (0: never).
    pub cache_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPolicy {
    pub bind: bool,
    pub slots: u32,
    pub min_id_bits: u32,
    pub max_ttl_ms: u64,
}

impl IntegrityPolicy {
    /// The pin of `upstream`, if the policy has one.
    pub fn pin(&self, upstream: &str) -> Option<&Pin> {
        self.pins.iter().find(|p| p.upstream == upstream)
    }

    pub fn is_sensitive(&self, tool: &str) -> bool {
        self.sensitive.iter().any(|g| g.matches(tool))
    }

    /// A baseline's lifetime for an answer's `ttlMs` (`None`: a legacy answer, or no hint).
    pub fn lifetime_ms(&self, ttl_ms: Option<u64>) -> u64 {
        ttl_ms.unwrap_or(self.max_ttl_ms).clamp(self.min_ttl_ms, self.max_ttl_ms)
    }

    /// True when anything in a `tools/list` answer needs reading for baselines or pins.
    pub fn learns(&self) -> bool {
        self.changed != ChangeAction::Off
    }
}

fn action(a: OnChange) -> ChangeAction {
    match a {
        OnChange::Deny => ChangeAction::Deny,
        OnChange::Warn => ChangeAction::Warn,
        OnChange::Off => ChangeAction::Off,
    }
}

fn fingerprint(text: &str, field: String) -> Result<Fingerprint, ConfigError> {
    Fingerprint::parse(text).ok_or_else(|| err(field, format!("`{text}` is not a `sha256:<64 hex>` fingerprint")))
}

pub fn compile(spec: &ToolIntegritySpec) -> Result<IntegrityPolicy, ConfigError> {
    const F: &str = "tool_integrity";
    if spec.min_baseline_ttl_secs > spec.max_baseline_ttl_secs {
        return Err(err(format!("{F}.min_baseline_ttl_secs"), "must not exceed max_baseline_ttl_secs"));
    }
    if spec.baseline_cache_ms > MAX_BASELINE_CACHE_MS {
        return Err(err(format!("{F}.baseline_cache_ms"), format!("must be at most {MAX_BASELINE_CACHE_MS}")));
    }
    if spec.baseline_slots == 0 || spec.baseline_slots > MAX_CAPACITY {
        return Err(err(format!("{F}.baseline_slots"), format!("must be between 1 and {MAX_CAPACITY}")));
    }
    let pins = compile_pins(&spec.pins, &format!("{F}.pins"))?;
    Ok(IntegrityPolicy {
        poisoned: match spec.poisoned_tools {
            PoisonedTools::Drop => PoisonAction::Drop,
            PoisonedTools::Refuse => PoisonAction::Refuse,
            PoisonedTools::Warn => PoisonAction::Warn,
            PoisonedTools::Off => PoisonAction::Off,
        },
        changed: action(spec.changed_tools),
        unknown: match spec.unknown_tools {
            UnknownTools::Allow => UnknownAction::Allow,
            UnknownTools::Deny => UnknownAction::Deny,
            UnknownTools::DenySensitive => UnknownAction::DenySensitive,
        },
        sensitive: globs(&spec.sensitive_tools, &format!("{F}.sensitive_tools"))?,
        min_ttl_ms: spec.min_baseline_ttl_secs.saturating_mul(1000),
        max_ttl_ms: spec.max_baseline_ttl_secs.saturating_mul(1000),
        baseline_slots: spec.baseline_slots,
        pins,
        ui: action(spec.ui_templates),
        csp_allow: spec.ui_csp_allow.as_deref().map(|l| globs(l, &format!("{F}.ui_csp_allow"))).transpose()?,
        cache_ms: spec.baseline_cache_ms,
    })
}

/// Compiles pins; `at` is where they are in the document (`tool_integrity.pins`, or `pins` in the
/// control endpoint's pins file).
pub fn compile_pins(specs: &[PinSpec], at: &str) -> Result<Vec<Pin>, ConfigError> {
    if specs.len() > MAX_PINS {
        return Err(err(at, format!("at most {MAX_PINS} pins")));
    }
    let mut pins: Vec<Pin> = Vec::with_capacity(specs.len());
    for (i, p) in specs.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if p.upstream.is_empty() {
            return Err(err(format!("{at}.upstream"), "must name an upstream cluster"));
        }
        if pins.iter().any(|q| q.upstream == p.upstream) {
            return Err(err(format!("{at}.upstream"), format!("`{}` is pinned twice", p.upstream)));
        }
        if p.tools.len() + p.ui.len() > MAX_PINNED_ITEMS {
            return Err(err(format!("{at}.tools"), format!("at most {MAX_PINNED_ITEMS} tools and templates per pin")));
        }
        let mut tools = BTreeMap::new();
        for (name, h) in &p.tools {
            tools.insert(name.clone(), fingerprint(h, format!("{at}.tools.{name}"))?);
        }
        let mut ui = BTreeMap::new();
        for (u, h) in &p.ui {
            let normalized = uri::normalize(u).map_err(|_| err(format!("{at}.ui.{u}"), "not a URI with one reading"))?;
            if !normalized.starts_with("ui://") {
                return Err(err(format!("{at}.ui.{u}"), "must be a ui:// URI"));
            }
            ui.insert(normalized, fingerprint(h, format!("{at}.ui.{u}"))?);
        }
        pins.push(Pin {
            upstream: p.upstream.clone(),
            server: p.server.as_ref().map(|s| (s.name.clone(), s.version.clone())),
            tools,
            ui,
        });
    }
    Ok(pins)
}

impl IntegrityPolicy {
    /// These pins in force too: each replaces a pin of the same upstream.
    pub fn merge_pins(&mut self, extra: &[Pin]) {
        self.pins.retain(|p| !extra.iter().any(|e| e.upstream == p.upstream));
        self.pins.extend(extra.iter().cloned());
    }
}

pub fn compile_tasks(spec: &TasksSpec) -> Result<TaskPolicy, ConfigError> {
    if spec.slots == 0 || spec.slots > MAX_CAPACITY {
        return Err(err("tasks.slots", format!("must be between 1 and {MAX_CAPACITY}")));
    }
    if spec.min_id_bits > 256 {
        return Err(err("tasks.min_id_bits", "must be at most 256"));
    }
    Ok(TaskPolicy {
        bind: spec.bind_to_creator,
        slots: spec.slots,
        min_id_bits: spec.min_id_bits,
        max_ttl_ms: spec.max_ttl_secs.max(1).saturating_mul(1000),
    })
}
