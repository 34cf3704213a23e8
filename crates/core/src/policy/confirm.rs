//! The `confirm` section: how the gateway asks a human before a call runs (rules with
//! `action: "confirm"`, and, when `sensitive_tools` is set, every tool `tool_integrity` marks
//! sensitive). The asking itself is [`crate::confirm`].
//!
//! ```json
//! "confirm": { "ttl_secs": 300, "unsupported": "deny", "sensitive_tools": true }
//! ```

use serde::Deserialize;

use super::error::{err, ConfigError};

/// Longest a question stays open (and an approval carries through the upstream's own rounds).
pub const MAX_TTL_SECS: u64 = 3600;
const DEFAULT_TTL_SECS: u64 = 300;

/// What happens to a call that needs confirmation from a client that cannot be asked (a
/// 2025-11-25 client, a 2026-07-28 client that declared no form elicitation, a legacy batch, a
/// method MRTR does not cover).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unsupported {
    /// Refused (403, -31403, `data.reason: "confirmation_unsupported"`).
    #[default]
    Deny,
    /// Forwarded unconfirmed, with a `confirm` × `unconfirmed` finding in its receipt (a dry run
    /// while clients catch up).
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmSpec {
    /// How long a question stays answerable, in seconds (10 to 3600).
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    #[serde(default)]
    pub unsupported: Unsupported,
    /// Calls to tools matching `tool_integrity.sensitive_tools` need confirmation too.
    #[serde(default)]
    pub sensitive_tools: bool,
}

impl Default for ConfirmSpec {
    fn default() -> Self {
        ConfirmSpec { ttl_secs: DEFAULT_TTL_SECS, unsupported: Unsupported::Deny, sensitive_tools: false }
    }
}

fn default_ttl() -> u64 {
    DEFAULT_TTL_SECS
}

/// The compiled section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmPolicy {
    pub ttl_ms: u64,
    pub unsupported: Unsupported,
    pub sensitive_tools: bool,
    /// Some rule asks for confirmation, or `sensitive_tools` is set: the key must be there.
    pub used: bool,
}

pub fn compile(spec: &ConfirmSpec, rules_confirm: bool) -> Result<ConfirmPolicy, ConfigError> {
    if !(10..=MAX_TTL_SECS).contains(&spec.ttl_secs) {
        return Err(err("confirm.ttl_secs", format!("must be between 10 and {MAX_TTL_SECS}")));
    }
    Ok(ConfirmPolicy {
        ttl_ms: spec.ttl_secs * 1000,
        unsupported: spec.unsupported,
        sensitive_tools: spec.sensitive_tools,
        used: rules_confirm || spec.sensitive_tools,
    })
}

impl Default for ConfirmPolicy {
    fn default() -> Self {
        ConfirmPolicy { ttl_ms: DEFAULT_TTL_SECS * 1000, unsupported: Unsupported::Deny, sensitive_tools: false, used: false }
    }
}
