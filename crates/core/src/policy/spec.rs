//! The plugin configuration as operators write it (JSON; in Kubernetes, a ConfigMap). The control
//! endpoint serves the same schema.
//!
//! Every struct rejects unknown fields so a typo is an error, not a silently ignored setting.
//! Defaults are what a fresh install should run with: both eras, no rules, allow by default.
//!
//! ```json
//! {
//!   "principal": { "sources": ["jwt", "spiffe", "istio", "header"], "trusted_header": "x-user" },
//!   "rules": [
//!     { "id": "no-deletes", "match": { "methods": ["tools/call"], "names": ["delete_*"] },
//!       "action": "deny", "reason": "deleting is not allowed here" },
//!     { "id": "per-user", "match": { "sources": ["jwt"] },
//!       "action": "rate_limit", "rate_limit": { "rate": 10, "period_secs": 1, "burst": 20, "key": "principal" } }
//!   ],
//!   "default_action": "allow",
//!   "kill_switch": [ { "upstream": "legacy-fs", "reason": "incident 4711" } ],
//!   "rate_limit_slots": 8192,
//!   "control": { "cluster": "warden_control", "period_ms": 1000 }
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::principal::{self, SourceKind};

/// Top level of the plugin configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Which MCP eras the gateway serves.
    #[serde(default)]
    pub eras: ErasSpec,
    /// Modern protocol versions let through; others get `-32022` with this list.
    #[serde(default = "default_supported_versions")]
    pub supported_versions: Vec<String>,
    /// Largest request body the filter buffers; larger gets 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Forward `OPTIONS` (CORS preflight) to the upstream instead of answering 405. Usually
    /// Envoy's own `cors` filter, placed before this one, answers preflights.
    #[serde(default)]
    pub forward_cors_preflight: bool,
    /// Where the principal comes from.
    #[serde(default)]
    pub principal: PrincipalSpec,
    /// Ordered rules; the first match decides.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// What happens when no rule matches.
    #[serde(default)]
    pub default_action: DefaultAction,
    /// The reason a client sees when `default_action` is `deny`.
    #[serde(default)]
    pub default_reason: Option<String>,
    /// Who answers a call of a hidden tool or prompt: `gateway` (default: `-32602 Unknown
    /// tool`) or `upstream` (its own answer to a name it does not have, so that a hidden name
    /// and a made-up one cannot be told apart).
    #[serde(default)]
    pub hidden_answer: HiddenAnswer,
    /// Kill switch entries in force from the configuration (the control endpoint may add more).
    #[serde(default)]
    pub kill_switch: Vec<KillSpec>,
    /// Capacity of the shared rate-limit slot table (buckets for all rules together).
    #[serde(default = "default_rate_limit_slots")]
    pub rate_limit_slots: u32,
    /// Capacity of the legacy session table (sessions bound to the principal that opened them).
    #[serde(default = "default_rate_limit_slots")]
    pub session_slots: u32,
    /// How long a legacy session stays bound to its principal after its last use; 0 turns the
    /// binding off.
    #[serde(default = "default_session_ttl_secs")]
    pub session_ttl_secs: u64,
    /// The control endpoint the filter polls for the kill switch and, optionally, the policy.
    #[serde(default)]
    pub control: Option<ControlSpec>,
    /// Tool integrity: poisoned definitions, baselines and pins, `ui://` templates.
    #[serde(default)]
    pub tool_integrity: ToolIntegritySpec,
    /// Tasks bound to the principal that created them.
    #[serde(default)]
    pub tasks: TasksSpec,
    /// Secrets, canaries and injected instructions, scanned both ways (on by default).
    #[serde(default)]
    pub content_scan: ContentScanSpec,
    /// Memory across requests: entropy budgets, fragments, tool-call chains, escalation, and
    /// mesh-wide budgets (on by default, per pod).
    #[serde(default)]
    pub correlation: super::correlate::CorrelationSpec,
    /// Asking a human before a call runs (`action: "confirm"`): question lifetime, what clients
    /// that cannot be asked get, sensitive tools.
    #[serde(default)]
    pub confirm: super::confirm::ConfirmSpec,
}

/// Who answers a call of a hidden tool or prompt ([`PolicySpec::hidden_answer`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAnswer {
    #[default]
    Gateway,
    Upstream,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolIntegritySpec {
    /// A tool whose definition carries invisible characters, instructions aimed at the model or
    /// a name confusable with another tool's: `drop` it from the list (default), `refuse` the
    /// whole answer, `warn` (report only) or `off`.
    #[serde(default)]
    pub poisoned_tools: PoisonedTools,
    /// A tool whose definition differs from its baseline or pin (a rug-pull): `deny` (default:
    /// it leaves lists, its calls are refused), `warn` (reported only) or `off` (no baselines).
    #[serde(default)]
    pub changed_tools: OnChange,
    /// A `tools/call` of a tool with neither baseline nor pin: `allow` (default; reported),
    /// `deny`, or `deny_sensitive` (only tools matching `sensitive_tools`).
    #[serde(default)]
    pub unknown_tools: UnknownTools,
    /// Tool name globs that run only with a fresh or pinned baseline.
    #[serde(default)]
    pub sensitive_tools: Vec<String>,
    /// A baseline lives this long past the last list that confirmed it: the answer's `ttlMs`,
    /// clamped to [min, max] (legacy answers carry none: max).
    #[serde(default = "default_min_baseline_ttl_secs")]
    pub min_baseline_ttl_secs: u64,
    #[serde(default = "default_max_baseline_ttl_secs")]
    pub max_baseline_ttl_secs: u64,
    /// Capacity of each baseline table (tool definitions; `ui://` templates).
    #[serde(default = "default_rate_limit_slots")]
    pub baseline_slots: u32,
    /// Approved manifests, one per upstream: a pin wins over what was learned.
    #[serde(default)]
    pub pins: Vec<PinSpec>,
    /// A `ui://` template whose content changed after it was trusted, or that declares a CSP
    /// domain outside `ui_csp_allow`: `deny` (default: the read is withheld), `warn` or `off`.
    #[serde(default)]
    pub ui_templates: OnChange,
    /// Domain globs a template's `_meta.ui.csp` may name (absent: any).
    #[serde(default)]
    pub ui_csp_allow: Option<Vec<String>>,
    /// A worker may reuse a baseline it read this recently (ms; 0, the default: every call reads
    /// shared data). Trades at most this long of not seeing a change another worker recorded for
    /// the one shared-data read a call costs (README, "Performance").
    #[serde(default)]
    pub baseline_cache_ms: u64,
}

impl Default for ToolIntegritySpec {
    fn default() -> Self {
        ToolIntegritySpec {
            poisoned_tools: PoisonedTools::default(),
            changed_tools: OnChange::default(),
            unknown_tools: UnknownTools::default(),
            sensitive_tools: Vec::new(),
            min_baseline_ttl_secs: default_min_baseline_ttl_secs(),
            max_baseline_ttl_secs: default_max_baseline_ttl_secs(),
            baseline_slots: DEFAULT_RATE_LIMIT_SLOTS,
            pins: Vec::new(),
            ui_templates: OnChange::default(),
            ui_csp_allow: None,
            baseline_cache_ms: 0,
        }
    }
}

/// An approved manifest for one upstream (what `warden pin URL` prints).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinSpec {
    /// The upstream cluster name, exactly.
    pub upstream: String,
    /// The server identity its answers must carry (`serverInfo`), when given.
    #[serde(default)]
    pub server: Option<ServerPinSpec>,
    /// Tool name → `sha256:<hex>` fingerprint. A tool not listed is not approved.
    pub tools: BTreeMap<String, String>,
    /// `ui://` URI → `sha256:<hex>` of its `contents`.
    #[serde(default)]
    pub ui: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPinSpec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    #[default]
    Deny,
    Warn,
    Off,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTools {
    #[default]
    Allow,
    Deny,
    DenySensitive,
}

/// Tasks bound to the principal that created them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksSpec {
    /// `tasks/*` and `subscriptions/listen` task filters from another principal answer as an
    /// unknown task (default on).
    #[serde(default = "yes")]
    pub bind_to_creator: bool,
    #[serde(default = "default_rate_limit_slots")]
    pub slots: u32,
    /// Task ids whose estimated entropy is below this many bits are a finding (guessable).
    #[serde(default = "default_min_task_id_bits")]
    pub min_id_bits: u32,
    /// A binding's lifetime when the task's `ttlMs` is `null` (unlimited), and its upper bound.
    #[serde(default = "default_max_task_ttl_secs")]
    pub max_ttl_secs: u64,
}

impl Default for TasksSpec {
    fn default() -> Self {
        TasksSpec {
            bind_to_creator: true,
            slots: DEFAULT_RATE_LIMIT_SLOTS,
            min_id_bits: default_min_task_id_bits(),
            max_ttl_secs: default_max_task_ttl_secs(),
        }
    }
}

fn default_min_baseline_ttl_secs() -> u64 {
    24 * 3600
}

fn default_max_baseline_ttl_secs() -> u64 {
    7 * 24 * 3600
}

fn default_min_task_id_bits() -> u32 {
    64
}

fn default_max_task_ttl_secs() -> u64 {
    7 * 24 * 3600
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoisonedTools {
    #[default]
    Drop,
    Refuse,
    Warn,
    Off,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            eras: ErasSpec::default(),
            supported_versions: default_supported_versions(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            forward_cors_preflight: false,
            principal: PrincipalSpec::default(),
            rules: Vec::new(),
            default_action: DefaultAction::Allow,
            default_reason: None,
            hidden_answer: HiddenAnswer::Gateway,
            kill_switch: Vec::new(),
            rate_limit_slots: DEFAULT_RATE_LIMIT_SLOTS,
            session_slots: DEFAULT_RATE_LIMIT_SLOTS,
            session_ttl_secs: default_session_ttl_secs(),
            control: None,
            tool_integrity: ToolIntegritySpec::default(),
            tasks: TasksSpec::default(),
            content_scan: ContentScanSpec::default(),
            correlation: super::correlate::CorrelationSpec::default(),
            confirm: super::confirm::ConfirmSpec::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasSpec {
    /// 2026-07-28 and later (stateless).
    #[serde(default = "yes")]
    pub modern: bool,
    /// 2025-11-25 and earlier (sessionful).
    #[serde(default = "yes")]
    pub legacy: bool,
    /// JSON-RPC batches from legacy clients (in neither 2025-11-25 nor 2026-07-28): off, they are
    /// refused; on, every element is decided on as if sent alone and one refused element refuses
    /// the batch.
    #[serde(default)]
    pub legacy_batches: bool,
}

impl Default for ErasSpec {
    fn default() -> Self {
        ErasSpec { modern: true, legacy: true, legacy_batches: false }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// Sources tried in order; the first that yields an identity wins; otherwise anonymous.
    #[serde(default = "default_sources")]
    pub sources: Vec<SourceKind>,
    #[serde(default)]
    pub jwt: JwtSpec,
    /// Header name (lowercase) for the `header` source. Required when `header` is listed.
    #[serde(default)]
    pub trusted_header: Option<String>,
}

impl Default for PrincipalSpec {
    fn default() -> Self {
        PrincipalSpec { sources: default_sources(), jwt: JwtSpec::default(), trusted_header: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// Dynamic metadata namespace the host reads the payload from.
    #[serde(default = "default_jwt_namespace")]
    pub metadata_namespace: String,
    /// The key `jwt_authn`'s `payload_in_metadata` names.
    #[serde(default = "default_jwt_key")]
    pub payload_key: String,
    /// Claim holding the subject.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Claims whose values become groups (arrays of strings, or space-separated strings as
    /// `scope` is).
    #[serde(default = "default_group_claims")]
    pub group_claims: Vec<String>,
}

impl Default for JwtSpec {
    fn default() -> Self {
        JwtSpec {
            metadata_namespace: default_jwt_namespace(),
            payload_key: default_jwt_key(),
            subject_claim: default_subject_claim(),
            group_claims: default_group_claims(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique within the policy; names the rule in logs, metrics and bucket keys.
    pub id: String,
    #[serde(default, rename = "match")]
    pub matcher: MatchSpec,
    pub action: ActionKind,
    /// What a client sees when the rule denies (unless the tool is hidden); for `confirm`, why
    /// the user is asked (shown in the question).
    #[serde(default)]
    pub reason: Option<String>,
    /// For `deny` on a named tool / prompt / resource: answer as if it did not exist, and remove
    /// it from `tools/list`. Default true.
    #[serde(default)]
    pub hide: Option<bool>,
    /// Log what the rule would do, do not do it (evaluation goes on to the next rule).
    #[serde(default)]
    pub dry_run: bool,
    /// Required for `rate_limit`, rejected otherwise.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
}

/// All listed fields must match (AND); within a list any entry may match (OR). An absent or
/// empty field matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// Globs over the principal id (`sub`, SPIFFE id, header value, `anonymous`).
    #[serde(default)]
    pub principals: Vec<String>,
    /// Where the principal came from: `jwt`, `spiffe`, `istio`, `header`, `anonymous`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Any of these groups (exact).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Every listed claim must be present with a value matching the glob.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// SPIFFE trust domains (exact).
    #[serde(default)]
    pub trust_domains: Vec<String>,
    /// Globs over the actors of the delegation chain; any actor may match.
    #[serde(default)]
    pub actors: Vec<String>,
    /// `modern` and/or `legacy`.
    #[serde(default)]
    pub eras: Vec<String>,
    /// Globs over `Mcp-Method`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Globs over `Mcp-Name` (tool, prompt, resource URI, task id); requests without one never match.
    #[serde(default)]
    pub names: Vec<String>,
    /// Globs over the upstream name.
    #[serde(default)]
    pub upstreams: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Allow,
    Deny,
    RateLimit,
    /// Ask the client's user first (MRTR elicitation; see the `confirm` section).
    Confirm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketKey {
    Principal,
    PrincipalTool,
    PrincipalMethod,
    Upstream,
    Global,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Tokens added per period.
    pub rate: u64,
    #[serde(default = "one")]
    pub period_secs: u64,
    /// Bucket size (largest burst); defaults to `rate`.
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default = "default_bucket_key")]
    pub key: BucketKey,
    /// When the bucket cannot be read or written (shared data failed, or CAS contention past the
    /// retries): `deny` answers 429 (fail closed), `allow` lets the request through. Counted
    /// either way (`mcp_warden_store_errors_total`).
    #[serde(default)]
    pub on_store_error: OnStoreError,
}

/// What a rate limit does when its state is unavailable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    #[default]
    Deny,
    Allow,
}

/// One kill switch entry: exactly one selector, and the reason clients see.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSpec {
    /// Stop all traffic.
    #[serde(default)]
    pub all: bool,
    /// Glob over the upstream name.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Glob over the tool name (`tools/call`).
    #[serde(default)]
    pub tool: Option<String>,
    /// Glob over `Mcp-Method`.
    #[serde(default)]
    pub method: Option<String>,
    /// Glob over the principal id.
    #[serde(default)]
    pub principal: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    /// Envoy cluster that reaches the control endpoint.
    pub cluster: String,
    #[serde(default = "default_control_path")]
    pub path: String,
    /// `:authority` of the poll; defaults to the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_period_ms")]
    pub period_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Also take the policy (rules, default, principal sources) from the endpoint when it serves one.
    #[serde(default = "yes")]
    pub policy: bool,
}

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

pub fn default_supported_versions() -> Vec<String> {
    vec!["2026-07-28".to_owned()]
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_RATE_LIMIT_SLOTS: u32 = 8192;
pub const DEFAULT_CONTROL_PATH: &str = "/v1/state";

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

fn default_session_ttl_secs() -> u64 {
    crate::state::owners::DEFAULT_SESSION_TTL_MS / 1000
}

fn default_rate_limit_slots() -> u32 {
    DEFAULT_RATE_LIMIT_SLOTS
}

fn default_sources() -> Vec<SourceKind> {
    principal::DEFAULT_SOURCES.to_vec()
}

fn default_jwt_namespace() -> String {
    principal::DEFAULT_JWT_NAMESPACE.to_owned()
}

fn default_jwt_key() -> String {
    principal::DEFAULT_JWT_PAYLOAD_KEY.to_owned()
}

fn default_subject_claim() -> String {
    principal::DEFAULT_SUBJECT_CLAIM.to_owned()
}

fn default_group_claims() -> Vec<String> {
    principal::DEFAULT_GROUP_CLAIMS.iter().map(|c| (*c).to_owned()).collect()
}

fn default_bucket_key() -> BucketKey {
    BucketKey::Principal
}

fn default_control_path() -> String {
    DEFAULT_CONTROL_PATH.to_owned()
}

fn default_period_ms() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    500
}

// --- content_scan: compiled in `policy/scan.rs` -------------------------------------------

/// The default budget per message (view and decoded forms together).
pub const DEFAULT_MAX_SCAN_BYTES: u64 = 8 * 1024 * 1024;

/// What a finding causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanAction {
    /// The message does not pass: a JSON-RPC error naming the detector stands in for it.
    Block,
    /// What was found is replaced in place; the message passes, still valid.
    Redact,
    /// Reported (receipt, metric); the message passes as it is.
    Warn,
    /// In what a client sends: the call waits for its user's approval, as under a `confirm` rule
    /// (README "Confirm"). In what comes back (nobody to ask): `block`.
    Confirm,
    /// Not looked for.
    Off,
}

/// What a message past the byte budget causes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OversizeAction {
    #[default]
    Block,
    /// Passes with a finding (`oversize`) saying it was not scanned to its end.
    Warn,
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to upstream (`tools/call` arguments, prompt arguments, `inputResponses`, URIs).
    Request,
    /// Upstream to client (results, resource contents, prompt messages, every SSE event).
    Response,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentScanSpec {
    /// `false` turns the whole scan off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which directions are scanned (default both).
    #[serde(default = "both_directions")]
    pub directions: Vec<Direction>,
    /// Action per data class: `credential`, `private_key`, `crypto_key` (default `block`),
    /// `pii` (default `redact`).
    #[serde(default)]
    pub classes: BTreeMap<String, ScanAction>,
    /// Action per detector id (README "Content scanning" lists them); wins over its class.
    #[serde(default)]
    pub detectors: BTreeMap<String, ScanAction>,
    /// Injected instructions in what comes back: `warn` (default), `redact` (the string that
    /// holds one is replaced), `block` or `off`.
    #[serde(default = "default_injection")]
    pub injection: ScanAction,
    /// Strings whose appearance anywhere, either way, is an incident: always blocked, severity
    /// `critical`. At least 8 characters; a prefix is a canary too (the match is a substring).
    #[serde(default)]
    pub canaries: Vec<String>,
    /// Known false positives let through.
    #[serde(default)]
    pub suppressions: Vec<SuppressionSpec>,
    /// Bytes scanned per message (its decoded view and the decoded forms together).
    #[serde(default = "default_max_scan_bytes")]
    pub max_scan_bytes: u64,
    /// A message past `max_scan_bytes`: `block` (default) or `warn`.
    #[serde(default)]
    pub oversize: OversizeAction,
}

impl Default for ContentScanSpec {
    fn default() -> Self {
        ContentScanSpec {
            enabled: true,
            directions: both_directions(),
            classes: BTreeMap::new(),
            detectors: BTreeMap::new(),
            injection: default_injection(),
            canaries: Vec::new(),
            suppressions: Vec::new(),
            max_scan_bytes: default_max_scan_bytes(),
            oversize: OversizeAction::default(),
        }
    }
}

/// One suppression: findings of these detectors on this tool, principal, upstream and
/// direction pass unacted on (reported at severity `info`). Every list empty or absent: any.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionSpec {
    /// Detector ids, data classes, `injection`, or `*`. Required; canaries are never suppressed.
    pub detectors: Vec<String>,
    /// Globs over the request's name: the tool, the prompt, the resource URI.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Globs over the principal id.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Globs over the upstream cluster.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Absent: both.
    #[serde(default)]
    pub direction: Option<Direction>,
}

fn both_directions() -> Vec<Direction> {
    vec![Direction::Request, Direction::Response]
}

fn default_injection() -> ScanAction {
    ScanAction::Warn
}

fn default_max_scan_bytes() -> u64 {
    DEFAULT_MAX_SCAN_BYTES
}
