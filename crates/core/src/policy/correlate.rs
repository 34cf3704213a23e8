//! The `correlation` section: what the filter remembers across requests about one correlation
//! key (principal + upstream + client fingerprint) and one task, and what it does when that
//! memory adds up: entropy budgets, fragment reassembly, tool-call chains, escalation, and the
//! mesh-wide budgets kept by an Envoy global rate limit service. Spec (as operators write it)
//! and compiled form both live here; the accounting itself is [`crate::correlate`].
//!
//! ```json
//! "correlation": {
//!   "entropy": { "budget_bits": 65536, "window_secs": 600, "action": "block", "cooldown_secs": 600 },
//!   "fragments": { "action": "block" },
//!   "chains": { "action": "block", "tools": { "fetch_*": ["network"] } },
//!   "escalation": { "warn_at": 5, "block_at": 20, "half_life_secs": 900, "cooldown_secs": 600 },
//!   "mesh": { "cluster": "warden_rls", "domain": "mcp-warden", "failure_mode": "deny" }
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{err, ConfigError};
use super::glob::Glob;

/// Largest table an operator may configure (the slot table's own bound).
const MAX_SLOTS: u32 = crate::state::slots::MAX_CAPACITY;

/// What a correlation check does when it trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TripAction {
    /// Refuse (the request that trips it; for budgets and escalation, the key's further sends
    /// for the cool-down).
    #[default]
    Block,
    /// Report it (finding, metric, receipt); the request passes.
    Warn,
    /// Not checked.
    Off,
}

/// What the filter does when the rate limit service cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Refuse the request (fail closed; counted and receipted).
    #[default]
    Deny,
    /// Let it through (counted and receipted).
    Allow,
}

/// A value shape that carries no secret worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum BenignShape {
    /// `8-4-4-4-12` hex.
    Uuid,
    /// A value the same request already carried (counted once), or its own tool name / task id.
    Echo,
    /// An RFC 3339 timestamp or a date.
    Timestamp,
    /// A decimal number written as a string.
    Number,
}

/// A tool's category, from its annotations and name (or the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Read,
    Write,
    Execute,
    Network,
    Credential,
    Persist,
    List,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Read,
        Category::Write,
        Category::Execute,
        Category::Network,
        Category::Credential,
        Category::Persist,
        Category::List,
    ];

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Read => "read",
            Category::Write => "write",
            Category::Execute => "execute",
            Category::Network => "network",
            Category::Credential => "credential",
            Category::Persist => "persist",
            Category::List => "list",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSpec {
    /// Off: nothing is remembered across requests.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Capacity of the shared table of per-key records (one per caller and upstream, and per task).
    #[serde(default = "default_slots")]
    pub slots: u32,
    #[serde(default)]
    pub entropy: EntropySpec,
    #[serde(default)]
    pub fragments: FragmentSpec,
    #[serde(default)]
    pub chains: ChainSpec,
    #[serde(default)]
    pub escalation: EscalationSpec,
    /// Mesh-wide budgets through an Envoy global rate limit service (absent: per pod only).
    #[serde(default)]
    pub mesh: Option<MeshSpec>,
    /// When shared data cannot answer: `allow` (default: the memory is advisory; counted as a
    /// store error) or `deny` (the request is refused).
    #[serde(default = "allow")]
    pub on_store_error: FailureMode,
}

impl Default for CorrelationSpec {
    fn default() -> Self {
        CorrelationSpec {
            enabled: true,
            slots: default_slots(),
            entropy: EntropySpec::default(),
            fragments: FragmentSpec::default(),
            chains: ChainSpec::default(),
            escalation: EscalationSpec::default(),
            mesh: None,
            on_store_error: FailureMode::Allow,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntropySpec {
    /// `block`: a key over its budget is refused further sends for `cooldown_secs`; `warn`
    /// (default: reported, and it raises the key's escalation score); `off`.
    #[serde(default = "warn")]
    pub action: TripAction,
    /// Bits one caller may send to one upstream per window.
    #[serde(default = "default_budget_bits")]
    pub budget_bits: u64,
    /// Bits one task may carry over its life (inputs sent, outputs answered), per window.
    #[serde(default = "default_budget_bits")]
    pub task_budget_bits: u64,
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    #[serde(default = "default_cooldown_secs")]
    pub cooldown_secs: u64,
    /// Values shorter than this (bytes) carry too little to count.
    #[serde(default = "default_min_value_bytes")]
    pub min_value_bytes: usize,
    /// Shapes that do not count.
    #[serde(default = "default_ignore")]
    pub ignore: Vec<BenignShape>,
}

impl Default for EntropySpec {
    fn default() -> Self {
        EntropySpec {
            action: TripAction::Warn,
            budget_bits: default_budget_bits(),
            task_budget_bits: default_budget_bits(),
            window_secs: default_window_secs(),
            cooldown_secs: default_cooldown_secs(),
            min_value_bytes: default_min_value_bytes(),
            ignore: default_ignore(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FragmentSpec {
    /// `block` (default): the request whose values complete a secret split over earlier ones is
    /// refused; `warn`; `off`.
    #[serde(default)]
    pub action: TripAction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// `block`: the call that completes a chain is refused; `warn` (default: common chains such
    /// as read-then-send are often benign; escalation turns repeated ones into a block); `off`.
    #[serde(default = "warn")]
    pub action: TripAction,
    /// Keep the built-in chains (README, "Correlation").
    #[serde(default = "yes")]
    pub builtin: bool,
    /// More chains (or a built-in one replaced by id).
    #[serde(default)]
    pub patterns: Vec<ChainPatternSpec>,
    /// Categories per tool-name glob, instead of what annotations and the name say.
    #[serde(default)]
    pub tools: BTreeMap<String, Vec<Category>>,
}

impl Default for ChainSpec {
    fn default() -> Self {
        ChainSpec { action: TripAction::Warn, builtin: true, patterns: Vec::new(), tools: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPatternSpec {
    pub id: String,
    /// Categories in order; other calls may come between them (`max_gap`).
    pub sequence: Vec<Category>,
    #[serde(default = "default_max_gap")]
    pub max_gap: u8,
    #[serde(default = "default_chain_window_secs")]
    pub window_secs: u64,
    /// This chain's own action (absent: the section's).
    #[serde(default)]
    pub action: Option<TripAction>,
    /// Escalation points when it matches: `medium` 1, `high` 2 (default), `critical` 3.
    #[serde(default = "default_severity")]
    pub severity: ChainSeverity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSpec {
    /// `block` (default): a key whose score reaches `block_at` is refused for `cooldown_secs`;
    /// `warn`: reported only; `off`.
    #[serde(default)]
    pub action: TripAction,
    /// Score at which the key's requests are marked escalated (warn).
    #[serde(default = "default_warn_at")]
    pub warn_at: u32,
    /// Score at which the key is blocked for the cool-down.
    #[serde(default = "default_block_at")]
    pub block_at: u32,
    /// The score halves every `half_life_secs` without findings.
    #[serde(default = "default_half_life_secs")]
    pub half_life_secs: u64,
    #[serde(default = "default_cooldown_secs")]
    pub cooldown_secs: u64,
}

impl Default for EscalationSpec {
    fn default() -> Self {
        EscalationSpec {
            action: TripAction::Block,
            warn_at: default_warn_at(),
            block_at: default_block_at(),
            half_life_secs: default_half_life_secs(),
            cooldown_secs: default_cooldown_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshSpec {
    /// The Envoy cluster of the rate limit service (HTTP/2).
    pub cluster: String,
    /// The RLS `domain` the descriptors are in.
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default = "default_mesh_timeout_ms")]
    pub timeout_ms: u64,
    /// When the service cannot answer: `deny` (default) or `allow`; counted and receipted.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Send the `tool_calls` descriptor (one hit per tool call) beside the entropy bits.
    #[serde(default = "yes")]
    pub tool_calls: bool,
}

fn allow() -> FailureMode {
    FailureMode::Allow
}
fn warn() -> TripAction {
    TripAction::Warn
}
fn yes() -> bool {
    true
}
fn default_slots() -> u32 {
    16_384
}
fn default_budget_bits() -> u64 {
    65_536
}
fn default_window_secs() -> u64 {
    600
}
fn default_cooldown_secs() -> u64 {
    600
}
fn default_min_value_bytes() -> usize {
    8
}
fn default_ignore() -> Vec<BenignShape> {
    vec![BenignShape::Uuid, BenignShape::Echo, BenignShape::Timestamp, BenignShape::Number]
}
fn default_max_gap() -> u8 {
    3
}
fn default_chain_window_secs() -> u64 {
    600
}
fn default_severity() -> ChainSeverity {
    ChainSeverity::High
}
fn default_warn_at() -> u32 {
    5
}
fn default_block_at() -> u32 {
    20
}
fn default_half_life_secs() -> u64 {
    900
}
fn default_domain() -> String {
    "mcp-warden".to_owned()
}
fn default_mesh_timeout_ms() -> u64 {
    250
}

// ------------------------------------------------------------------------------------------
// Compiled.

/// One chain, compiled: a sequence of category bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPattern {
    pub id: String,
    pub steps: Vec<u8>,
    pub max_gap: u8,
    pub window_secs: u64,
    pub action: TripAction,
    pub severity: ChainSeverity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub action: TripAction,
    pub bits: u64,
    pub task_bits: u64,
    pub window_ms: u64,
    pub cooldown_ms: u64,
    pub min_value_bytes: usize,
    pub ignore: Vec<BenignShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub action: TripAction,
    pub warn_at: u32,
    pub block_at: u32,
    pub half_life_ms: u64,
    pub cooldown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mesh {
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    pub failure_mode: FailureMode,
    pub tool_calls: bool,
}

/// The compiled section. `enabled == false`: nothing is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationPolicy {
    pub enabled: bool,
    pub slots: u32,
    pub budget: Budget,
    pub fragments: TripAction,
    pub chains: TripAction,
    pub patterns: Vec<ChainPattern>,
    /// Tool-name globs and their categories (first match wins), before annotations and names.
    pub tool_categories: Vec<(Glob, u8)>,
    pub escalation: Escalation,
    pub mesh: Option<Mesh>,
    pub on_store_error: FailureMode,
}

impl CorrelationPolicy {
    /// True when a request's argument values are worth extracting (something reads them).
    pub fn reads_values(&self) -> bool {
        self.enabled && (self.budget.action != TripAction::Off || self.fragments != TripAction::Off || self.mesh.is_some())
    }
}

/// How bad a chain is: its escalation points (medium 1, high 2, critical 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ChainSeverity {
    Medium,
    High,
    Critical,
}

impl ChainSeverity {
    pub fn points(self) -> u32 {
        match self {
            ChainSeverity::Medium => 1,
            ChainSeverity::High => 2,
            ChainSeverity::Critical => 3,
        }
    }
}

/// The chains shipped by default: Pipelock's ten (`internal/mcp/chains/matcher.go`, its `env`
/// category is our `credential`) and the plain read-then-send.
pub const BUILTIN_CHAINS: &[(&str, &[Category], ChainSeverity)] = {
    use Category::*;
    use ChainSeverity::*;
    &[
        ("read-then-exec", &[Read, Execute], High),
        ("read-write-send", &[Read, Write, Network], Critical),
        ("read-then-send", &[Read, Network], High),
        ("env-then-network", &[Credential, Network], Critical),
        ("directory-scan", &[List, List, Read], Medium),
        ("write-execute", &[Write, Execute], High),
        ("write-chmod-execute", &[Write, Execute, Execute], Critical),
        ("read-sensitive-write", &[Read, Write], Medium),
        ("shell-burst", &[Execute, Execute, Execute, Execute], High),
        ("write-persist", &[Write, Persist], Critical),
        ("persist-callback", &[Persist, Network], Critical),
    ]
};

/// Longest chain accepted (the per-key record remembers this many calls).
pub const MAX_CHAIN_STEPS: usize = 8;

/// Nothing remembered.
pub fn off() -> CorrelationPolicy {
    let spec = CorrelationSpec { enabled: false, ..CorrelationSpec::default() };
    compile(&spec).unwrap_or(CorrelationPolicy {
        enabled: false,
        slots: 1,
        budget: Budget {
            action: TripAction::Off,
            bits: 1,
            task_bits: 1,
            window_ms: 1,
            cooldown_ms: 0,
            min_value_bytes: 1,
            ignore: Vec::new(),
        },
        fragments: TripAction::Off,
        chains: TripAction::Off,
        patterns: Vec::new(),
        tool_categories: Vec::new(),
        escalation: Escalation { action: TripAction::Off, warn_at: 1, block_at: 1, half_life_ms: 1, cooldown_ms: 0 },
        mesh: None,
        on_store_error: FailureMode::Allow,
    })
}

pub fn compile(spec: &CorrelationSpec) -> Result<CorrelationPolicy, ConfigError> {
    let f = "correlation";
    if spec.slots == 0 || spec.slots > MAX_SLOTS {
        return Err(err(format!("{f}.slots"), format!("must be between 1 and {MAX_SLOTS}")));
    }
    let e = &spec.entropy;
    if e.window_secs == 0 || e.window_secs > 7 * 86_400 {
        return Err(err(format!("{f}.entropy.window_secs"), "must be between 1 and 604800 (one week)"));
    }
    if e.budget_bits == 0
        || e.task_budget_bits == 0
        || e.budget_bits > u64::from(u32::MAX)
        || e.task_budget_bits > u64::from(u32::MAX)
    {
        return Err(err(format!("{f}.entropy.budget_bits"), "budgets must be between 1 and 4294967295 bits"));
    }
    if e.cooldown_secs > 86_400 {
        return Err(err(format!("{f}.entropy.cooldown_secs"), "must be at most 86400 (one day)"));
    }
    if e.min_value_bytes == 0 || e.min_value_bytes > 4096 {
        return Err(err(format!("{f}.entropy.min_value_bytes"), "must be between 1 and 4096"));
    }
    let mut patterns = Vec::new();
    if spec.chains.builtin {
        for (id, steps, severity) in BUILTIN_CHAINS {
            patterns.push(ChainPattern {
                id: (*id).to_owned(),
                steps: steps.iter().map(|c| c.bit()).collect(),
                max_gap: default_max_gap(),
                window_secs: default_chain_window_secs(),
                action: spec.chains.action,
                severity: *severity,
            });
        }
    }
    for (i, p) in spec.chains.patterns.iter().enumerate() {
        let pf = format!("{f}.chains.patterns[{i}]");
        if p.id.is_empty() || p.id.len() > 64 || !p.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(err(format!("{pf}.id"), "must be 1 to 64 letters, digits, '-', '_' or '.'"));
        }
        if p.sequence.len() < 2 || p.sequence.len() > MAX_CHAIN_STEPS {
            return Err(err(format!("{pf}.sequence"), format!("must name 2 to {MAX_CHAIN_STEPS} categories")));
        }
        if p.window_secs == 0 || p.window_secs > 86_400 {
            return Err(err(format!("{pf}.window_secs"), "must be between 1 and 86400"));
        }
        let compiled = ChainPattern {
            id: p.id.clone(),
            steps: p.sequence.iter().map(|c| c.bit()).collect(),
            max_gap: p.max_gap.min(16),
            window_secs: p.window_secs,
            action: p.action.unwrap_or(spec.chains.action),
            severity: p.severity,
        };
        match patterns.iter_mut().find(|q| q.id == p.id) {
            Some(q) => *q = compiled,
            None => patterns.push(compiled),
        }
    }
    let mut tool_categories = Vec::new();
    for (glob, cats) in &spec.chains.tools {
        let g = Glob::new(glob).map_err(|m| err(format!("{f}.chains.tools.{glob}"), m))?;
        tool_categories.push((g, cats.iter().fold(0u8, |a, c| a | c.bit())));
    }
    let x = &spec.escalation;
    if x.warn_at == 0 || x.block_at == 0 || x.warn_at > x.block_at || x.block_at > 1_000_000 {
        return Err(err(format!("{f}.escalation"), "needs 1 <= warn_at <= block_at <= 1000000"));
    }
    if x.half_life_secs == 0 || x.half_life_secs > 7 * 86_400 || x.cooldown_secs > 86_400 {
        return Err(err(format!("{f}.escalation.half_life_secs"), "half_life_secs in 1..=604800, cooldown_secs at most 86400"));
    }
    let mesh = match &spec.mesh {
        None => None,
        Some(m) => {
            if m.cluster.is_empty() {
                return Err(err(format!("{f}.mesh.cluster"), "must name the Envoy cluster of the rate limit service"));
            }
            if m.domain.is_empty() || m.domain.len() > 128 {
                return Err(err(format!("{f}.mesh.domain"), "must be 1 to 128 characters"));
            }
            if m.timeout_ms == 0 || m.timeout_ms > 10_000 {
                return Err(err(format!("{f}.mesh.timeout_ms"), "must be between 1 and 10000"));
            }
            Some(Mesh {
                cluster: m.cluster.clone(),
                domain: m.domain.clone(),
                timeout_ms: m.timeout_ms,
                failure_mode: m.failure_mode,
                tool_calls: m.tool_calls,
            })
        }
    };
    let mut ignore = e.ignore.clone();
    ignore.sort();
    ignore.dedup();
    Ok(CorrelationPolicy {
        enabled: spec.enabled,
        slots: spec.slots,
        budget: Budget {
            action: e.action,
            bits: e.budget_bits,
            task_bits: e.task_budget_bits,
            window_ms: e.window_secs * 1000,
            cooldown_ms: e.cooldown_secs * 1000,
            min_value_bytes: e.min_value_bytes,
            ignore,
        },
        fragments: spec.fragments.action,
        chains: if patterns.is_empty() { TripAction::Off } else { spec.chains.action },
        patterns,
        tool_categories,
        escalation: Escalation {
            action: x.action,
            warn_at: x.warn_at,
            block_at: x.block_at,
            half_life_ms: x.half_life_secs * 1000,
            cooldown_ms: x.cooldown_secs * 1000,
        },
        mesh,
        on_store_error: spec.on_store_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<CorrelationPolicy, ConfigError> {
        let spec: CorrelationSpec = serde_json::from_str(json).map_err(|e| err("correlation", e.to_string()))?;
        compile(&spec)
    }

    #[test]
    fn defaults_compile_with_the_builtin_chains() {
        let p = load("{}").unwrap();
        assert!(p.enabled && p.reads_values());
        assert_eq!(p.patterns.len(), BUILTIN_CHAINS.len());
        assert!(p.mesh.is_none());
    }

    #[test]
    fn a_pattern_replaces_a_builtin_by_id_and_bad_values_name_their_field() {
        let p =
            load(r#"{"chains":{"patterns":[{"id":"read-then-send","sequence":["read","write","network"],"action":"warn"}]}}"#)
                .unwrap();
        let q = p.patterns.iter().find(|q| q.id == "read-then-send").unwrap();
        assert_eq!(q.steps.len(), 3);
        assert_eq!(q.action, TripAction::Warn);
        for (json, field) in [
            (r#"{"slots":0}"#, "correlation.slots"),
            (r#"{"entropy":{"window_secs":0}}"#, "correlation.entropy.window_secs"),
            (r#"{"chains":{"patterns":[{"id":"x","sequence":["read"]}]}}"#, "correlation.chains.patterns[0].sequence"),
            (r#"{"escalation":{"warn_at":9,"block_at":3}}"#, "correlation.escalation"),
            (r#"{"mesh":{"cluster":""}}"#, "correlation.mesh.cluster"),
        ] {
            assert_eq!(load(json).unwrap_err().field, field, "{json}");
        }
    }
}
