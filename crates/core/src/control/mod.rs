//! The control endpoint, both ends, as pure logic.
//!
//! **Server** ([`ControlServer`], run by `warden control --dir DIR --listen ADDR`): a directory
//! (a mounted ConfigMap) holds `policy.json` (optional: the whole policy, plugin-config schema),
//! `kill.json` (optional: a list of kill switch entries) and `pins.json` (optional: approved tool
//! manifests as `warden pin URL` prints them, one or a list). Each refresh compiles them with the
//! same code as the filter; a file that does not compile is refused, the last good version stays
//! served, and the error is shown at `/status`. The served document, at [`STATE_PATH`]:
//!
//! ```json
//! {"version":1,"kill_switch":[{"tool":"delete_*","reason":"incident 4711"}],"policy":{ ... },"pins":[ ... ]}
//! ```
//!
//! with a strong `ETag` (hash of the body); a request with a matching `If-None-Match` gets 304.
//!
//! **Client** ([`Poller`], in the filter's root context): polls the cluster every
//! `control.period_ms` with `If-None-Match`, and on a new document yields a [`RemoteState`]. When
//! the endpoint is down or serves something invalid the filter keeps what it had (fail-static).
//!
//! Layout: this module holds the served document ([`RemoteState`], [`parse_state`], ETags);
//! [`server`] is the directory-backed endpoint, [`poller`] the filter's polling state machine.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::policy::compile::{load, Policy};
use crate::policy::error::parse;
use crate::policy::integrity::Pin;
use crate::policy::spec::{KillSpec, PinSpec};
use crate::policy::{ConfigError, KillSwitch};

mod poller;
mod server;

pub use poller::{PollOutcome, PollRequest, Poller};
pub use server::{compile_kill_file, compile_pins_file, compile_policy_file, ControlServer, DirFiles, FileStatus, Response};

/// Where the server serves the state document (the filter's default `control.path`).
pub const STATE_PATH: &str = crate::policy::spec::DEFAULT_CONTROL_PATH;
/// Where the server reports what it serves and what it refused.
pub const STATUS_PATH: &str = "/status";
pub const HEALTH_PATH: &str = "/healthz";
pub const POLICY_FILE: &str = "policy.json";
pub const KILL_FILE: &str = "kill.json";
pub const PINS_FILE: &str = "pins.json";
/// Largest file or document accepted.
pub const MAX_DOC_BYTES: usize = 4 * 1024 * 1024;

/// The served document as the filter reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    version: u32,
    #[serde(default)]
    kill_switch: Vec<KillSpec>,
    #[serde(default)]
    policy: Option<Box<RawValue>>,
    #[serde(default)]
    pins: Vec<PinSpec>,
}

/// What the control endpoint says is in force.
#[derive(Debug, Clone)]
pub struct RemoteState {
    /// In force together with the policy's own `kill_switch`.
    pub kill: KillSwitch,
    /// `Some`: use this policy (its `control` section is ignored: polling is configured by the
    /// plugin configuration only). `None`: the endpoint serves no policy; use the plugin's.
    pub policy: Option<Policy>,
    /// Approved tool manifests (`pins.json`): in force over the policy's own pins, upstream by
    /// upstream.
    pub pins: Vec<Pin>,
    /// The pins as served (canonical JSON), for the policy hash.
    pins_raw: String,
}

impl RemoteState {
    /// The kill list to pass to [`crate::policy::enforce`] as `remote_kill`, next to the active
    /// policy (which brings its own `kill_switch`). Both ways in stay in force: when the served
    /// policy replaces the plugin's, the plugin configuration's kill entries are kept here.
    pub fn extra_kill(&self, config: &Policy) -> KillSwitch {
        if self.policy.is_some() {
            config.kill.merged(&self.kill)
        } else {
            self.kill.clone()
        }
    }

    /// The policy to enforce: the served one, else the plugin configuration's.
    pub fn active<'a>(&'a self, config: &'a Policy) -> &'a Policy {
        self.policy.as_ref().unwrap_or(config)
    }

    /// The policy the endpoint puts in force over `config`: `None` when it serves neither a
    /// policy nor pins (the plugin configuration's stays). With pins, the policy hash receipts
    /// sign covers them: `sha256:` of the canonical `{"pins": [...], "policy_hash": "<hash>"}`.
    pub fn policy_in_force(&self, config: &Policy) -> Option<Policy> {
        if self.pins.is_empty() {
            return self.policy.clone();
        }
        let mut p = self.active(config).clone();
        p.integrity.merge_pins(&self.pins);
        let mut doc = String::from("{\"pins\":");
        doc.push_str(&self.pins_raw);
        doc.push_str(",\"policy_hash\":");
        crate::mcp::error::push_json_string(&mut doc, &p.hash);
        doc.push('}');
        p.hash = crate::policy::compile::canonical_hash(doc.as_bytes());
        Some(p)
    }
}

/// Reads a state document. Errors name the JSON path inside it (`policy.rules[0].id`).
pub fn parse_state(body: &[u8]) -> Result<RemoteState, ConfigError> {
    if body.len() > MAX_DOC_BYTES {
        return Err(ConfigError { field: String::new(), message: format!("document larger than {MAX_DOC_BYTES} bytes") });
    }
    let doc: StateDoc = parse(body)?;
    if doc.version != 1 {
        return Err(ConfigError {
            field: "version".into(),
            message: format!("unsupported version {} (this filter reads 1)", doc.version),
        });
    }
    let kill = KillSwitch::compile(&doc.kill_switch, "kill_switch")?;
    let pins = crate::policy::integrity::compile_pins(&doc.pins, "pins")?;
    let pins_raw = serde_json::to_string(&pins_json(&pins)).unwrap_or_default();
    let policy = match doc.policy {
        Some(raw) => Some(load(raw.get().as_bytes()).map_err(|e| ConfigError {
            field: if e.field.is_empty() { "policy".into() } else { format!("policy.{}", e.field) },
            message: e.message,
        })?),
        None => None,
    };
    Ok(RemoteState { kill, policy, pins, pins_raw })
}

/// Pins as JSON (what the policy hash covers).
fn pins_json(pins: &[Pin]) -> serde_json::Value {
    let text = |f: &crate::mcp::fingerprint::Fingerprint| serde_json::Value::String(f.text());
    serde_json::Value::Array(
        pins.iter()
            .map(|p| {
                serde_json::json!({
                    "upstream": p.upstream,
                    "server": p.server.as_ref().map(|(n, v)| serde_json::json!({"name": n, "version": v})),
                    "tools": p.tools.iter().map(|(k, f)| (k.clone(), text(f))).collect::<serde_json::Map<_, _>>(),
                    "ui": p.ui.iter().map(|(k, f)| (k.clone(), text(f))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect(),
    )
}

/// A strong ETag for a body: `"<32 hex>"`.
pub fn etag_of(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    format!("\"{}\"", hex::encode(d.get(..16).unwrap_or(&d)))
}

/// True when an `If-None-Match` value matches `etag` (a list, `*`, or weak forms).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}
