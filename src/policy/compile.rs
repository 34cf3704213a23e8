//! Stage two: validate a [`PolicySpec`] and freeze it into a [`Policy`].

use std::fmt;

use super::spec::PolicySpec;
use crate::mcp::classify::{WireRules, FIRST_MODERN_VERSION};

/// Bodies are buffered whole in the VM; this bounds what an operator can ask for.
pub const MAX_BODY_CAP: u64 = 64 * 1024 * 1024;

/// The compiled, immutable policy. Shared by reference for the life of a configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub wire: WireRules,
    pub max_body_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        // The default spec always compiles; fall back field by field if it ever stops doing so.
        compile(PolicySpec::default()).unwrap_or_else(|_| Policy {
            wire: WireRules {
                modern_enabled: true,
                legacy_enabled: true,
                supported_versions: vec![FIRST_MODERN_VERSION.to_owned()],
            },
            max_body_bytes: 1024 * 1024,
        })
    }
}

/// An operator error in the configuration, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the failing field, e.g. `supported_versions[1]`; empty for the document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid configuration: {}", self.message)
        } else {
            write!(f, "invalid configuration at `{}`: {}", self.field, self.message)
        }
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

/// Parses and compiles a configuration document. An empty document means all defaults.
pub fn load(bytes: &[u8]) -> Result<Policy, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return compile(PolicySpec::default());
    }
    let spec: PolicySpec = serde_json::from_slice(bytes).map_err(|e| err("", serde_message(&e)))?;
    compile(spec)
}

/// serde_json names the unknown or mistyped field in its message; keep it, add the position.
fn serde_message(e: &serde_json::Error) -> String {
    format!("{e}")
}

pub fn compile(spec: PolicySpec) -> Result<Policy, ConfigError> {
    if !spec.eras.modern && !spec.eras.legacy {
        return Err(err("eras", "at least one of `modern` and `legacy` must be true"));
    }
    if spec.eras.modern && spec.supported_versions.is_empty() {
        return Err(err("supported_versions", "must name at least one version when `eras.modern` is true"));
    }
    for (i, v) in spec.supported_versions.iter().enumerate() {
        let b = v.as_bytes();
        let shape_ok = b.len() == 10
            && b.iter().enumerate().all(|(j, c)| if j == 4 || j == 7 { *c == b'-' } else { c.is_ascii_digit() });
        if !shape_ok {
            return Err(err(format!("supported_versions[{i}]"), format!("`{v}` is not a YYYY-MM-DD version")));
        }
        if v.as_str() < FIRST_MODERN_VERSION {
            return Err(err(
                format!("supported_versions[{i}]"),
                format!("`{v}` is a legacy version; list only {FIRST_MODERN_VERSION} and later (legacy is `eras.legacy`)"),
            ));
        }
    }
    if spec.max_body_bytes == 0 || spec.max_body_bytes > MAX_BODY_CAP {
        return Err(err("max_body_bytes", format!("must be between 1 and {MAX_BODY_CAP}")));
    }
    Ok(Policy {
        wire: WireRules {
            modern_enabled: spec.eras.modern,
            legacy_enabled: spec.eras.legacy,
            supported_versions: spec.supported_versions,
        },
        max_body_bytes: usize::try_from(spec.max_body_bytes).unwrap_or(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_defaults() {
        let p = load(b"").unwrap();
        assert!(p.wire.modern_enabled && p.wire.legacy_enabled);
        assert_eq!(p.max_body_bytes, 1 << 20);
        assert_eq!(p.wire.supported_versions, vec!["2026-07-28"]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(br#"{"max_body_byte": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_body_byte`"), "{e}");
        let e = load(br#"{"eras": {"modern": true, "legcy": false}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `legcy`"), "{e}");
        let e = load(br#"{"supported_versions": ["2026-07-28", "2025-11-25"]}"#).unwrap_err();
        assert_eq!(e.field, "supported_versions[1]");
        let e = load(br#"{"max_body_bytes": 0}"#).unwrap_err();
        assert_eq!(e.field, "max_body_bytes");
        let e = load(br#"{"eras": {"modern": false, "legacy": false}}"#).unwrap_err();
        assert_eq!(e.field, "eras");
    }
}
