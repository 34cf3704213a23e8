//! The plugin configuration as operators write it (JSON; in Kubernetes, a ConfigMap).
//!
//! Every struct rejects unknown fields so a typo is an error, not a silently ignored setting.
//! Defaults are what a fresh install should run with.

use serde::Deserialize;

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
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            eras: ErasSpec::default(),
            supported_versions: default_supported_versions(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
}

impl Default for ErasSpec {
    fn default() -> Self {
        ErasSpec { modern: true, legacy: true }
    }
}

fn yes() -> bool {
    true
}

pub fn default_supported_versions() -> Vec<String> {
    vec!["2026-07-28".to_owned()]
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
