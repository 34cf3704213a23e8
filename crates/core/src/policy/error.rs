//! Configuration errors: what an operator got wrong and where (the JSON path of the field),
//! for serde's own errors too (located by [`super::jsonpath`]).

use std::fmt;

/// Longest reason accepted (it is sent to clients).
pub const MAX_REASON_LEN: usize = 512;

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

impl std::error::Error for ConfigError {}

pub fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

/// Parses a document into its spec, naming the JSON path of whatever serde rejects.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    serde_json::from_slice(bytes).map_err(|e| locate(bytes, &e))
}

/// Turns a serde_json error into a [`ConfigError`] with the JSON path of the failing field.
pub fn locate(bytes: &[u8], e: &serde_json::Error) -> ConfigError {
    use super::jsonpath::{offset_of, path_at, render, Seg};
    let full = e.to_string();
    // serde_json appends " at line L column C"; the path replaces it.
    let message = match full.rfind(" at line ") {
        Some(i) => full.get(..i).unwrap_or(&full).to_owned(),
        None => full,
    };
    if e.is_syntax() || e.is_eof() || e.line() == 0 {
        return err("", format!("{message} (line {}, column {})", e.line(), e.column()));
    }
    let mut segs = path_at(bytes, offset_of(bytes, e.line(), e.column()));
    // "missing field `x`" is reported after the object closed: the path is that object's.
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.strip_suffix('`') {
            segs.push(Seg::Key(name.to_owned()));
        }
    }
    err(render(&segs), message)
}

/// A reason is sent to clients: non-empty, bounded, no control characters.
pub fn check_reason(field: String, reason: &str) -> Result<(), ConfigError> {
    if reason.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(err(field, format!("longer than {MAX_REASON_LEN} bytes")));
    }
    if reason.chars().any(char::is_control) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(())
}
