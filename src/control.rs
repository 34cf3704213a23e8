//! The control endpoint, both ends, as pure logic.
//!
//! **Server** ([`ControlServer`], run by `warden control --dir DIR --listen ADDR`): a directory
//! (a mounted ConfigMap) holds `policy.json` (optional: the whole policy, plugin-config schema)
//! and `kill.json` (optional: a list of kill switch entries). Each refresh compiles them with the
//! same code as the filter; a file that does not compile is refused, the last good version stays
//! served, and the error is shown at `/status`. The served document, at [`STATE_PATH`]:
//!
//! ```json
//! {"version":1,"kill_switch":[{"tool":"delete_*","reason":"incident 4711"}],"policy":{ ... }}
//! ```
//!
//! with a strong `ETag` (hash of the body); a request with a matching `If-None-Match` gets 304.
//!
//! **Client** ([`Poller`], in the filter's root context): polls the cluster every
//! `control.period_ms` with `If-None-Match`, and on a new document yields a [`RemoteState`]. When
//! the endpoint is down or serves something invalid the filter keeps what it had (fail-static).

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::killswitch::KillSwitch;
use crate::mcp::error::push_json_string;
use crate::policy::compile::{load, parse, ConfigError, ControlConfig, Policy};
use crate::policy::spec::KillSpec;

/// Where the server serves the state document (the filter's default `control.path`).
pub const STATE_PATH: &str = crate::policy::spec::DEFAULT_CONTROL_PATH;
/// Where the server reports what it serves and what it refused.
pub const STATUS_PATH: &str = "/status";
pub const HEALTH_PATH: &str = "/healthz";
pub const POLICY_FILE: &str = "policy.json";
pub const KILL_FILE: &str = "kill.json";
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
}

/// What the control endpoint says is in force.
#[derive(Debug, Clone)]
pub struct RemoteState {
    /// In force together with the policy's own `kill_switch`.
    pub kill: KillSwitch,
    /// `Some`: use this policy (its `control` section is ignored: polling is configured by the
    /// plugin configuration only). `None`: the endpoint serves no policy; use the plugin's.
    pub policy: Option<Policy>,
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
}

/// Reads a state document. Errors name the JSON path inside it (`policy.rules[0].id`).
pub fn parse_state(body: &[u8]) -> Result<RemoteState, ConfigError> {
    if body.len() > MAX_DOC_BYTES {
        return Err(ConfigError { field: String::new(), message: format!("document larger than {MAX_DOC_BYTES} bytes") });
    }
    let doc: StateDoc = parse(body)?;
    if doc.version != 1 {
        return Err(ConfigError { field: "version".into(), message: format!("unsupported version {} (this filter reads 1)", doc.version) });
    }
    let kill = KillSwitch::compile(&doc.kill_switch, "kill_switch")?;
    let policy = match doc.policy {
        Some(raw) => Some(load(raw.get().as_bytes()).map_err(|e| ConfigError {
            field: if e.field.is_empty() { "policy".into() } else { format!("policy.{}", e.field) },
            message: e.message,
        })?),
        None => None,
    };
    Ok(RemoteState { kill, policy })
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

// ---------------------------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------------------------

/// The directory's current content, read by the caller (`None` = file absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirFiles {
    pub policy: Option<Vec<u8>>,
    pub kill: Option<Vec<u8>>,
}

/// How one file stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStatus {
    /// The file exists.
    pub present: bool,
    /// Hash of the version served (last good), if any.
    pub served: Option<String>,
    /// Why the current file content is refused (the served version is the last good one).
    pub error: Option<ConfigError>,
    /// When (caller's clock) the served version was accepted.
    pub accepted_at_ms: Option<u64>,
}

/// A response for the tiny HTTP server to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The control server's state: last good policy and kill list, and the document built from them.
#[derive(Debug, Default)]
pub struct ControlServer {
    policy_raw: Option<String>,
    kill_raw: String,
    seen_policy: Option<Option<String>>,
    seen_kill: Option<Option<String>>,
    pub policy_status: FileStatus,
    pub kill_status: FileStatus,
    body: Vec<u8>,
    etag: String,
    /// Times the served document changed.
    pub generation: u64,
}

fn hash_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    hex::encode(d.get(..16).unwrap_or(&d))
}

fn too_big(len: usize) -> Option<ConfigError> {
    (len > MAX_DOC_BYTES).then(|| ConfigError { field: String::new(), message: format!("file larger than {MAX_DOC_BYTES} bytes") })
}

impl ControlServer {
    pub fn new() -> ControlServer {
        let mut s = ControlServer { kill_raw: "[]".into(), ..ControlServer::default() };
        s.rebuild();
        s
    }

    /// Takes the directory's content; recompiles what changed. Returns true when the served
    /// document changed.
    pub fn refresh(&mut self, files: &DirFiles, now_ms: u64) -> bool {
        let mut changed = false;

        let p_hash = files.policy.as_deref().map(hash_hex);
        if self.seen_policy.as_ref() != Some(&p_hash) {
            self.seen_policy = Some(p_hash.clone());
            self.policy_status.present = files.policy.is_some();
            match files.policy.as_deref() {
                None => {
                    // Removing the file is how an operator stops serving a policy.
                    changed |= self.policy_raw.take().is_some();
                    self.policy_status.served = None;
                    self.policy_status.error = None;
                    self.policy_status.accepted_at_ms = None;
                }
                Some(bytes) => match too_big(bytes.len()).map_or_else(|| compile_policy_file(bytes), Err) {
                    Ok(text) => {
                        self.policy_raw = Some(text);
                        self.policy_status.served = p_hash;
                        self.policy_status.error = None;
                        self.policy_status.accepted_at_ms = Some(now_ms);
                        changed = true;
                    }
                    Err(e) => self.policy_status.error = Some(e),
                },
            }
        }

        let k_hash = files.kill.as_deref().map(hash_hex);
        if self.seen_kill.as_ref() != Some(&k_hash) {
            self.seen_kill = Some(k_hash.clone());
            self.kill_status.present = files.kill.is_some();
            match files.kill.as_deref() {
                None => {
                    changed |= self.kill_raw != "[]";
                    self.kill_raw = "[]".into();
                    self.kill_status.served = None;
                    self.kill_status.error = None;
                    self.kill_status.accepted_at_ms = None;
                }
                Some(bytes) => match too_big(bytes.len()).map_or_else(|| compile_kill_file(bytes), Err) {
                    Ok(text) => {
                        self.kill_raw = text;
                        self.kill_status.served = k_hash;
                        self.kill_status.error = None;
                        self.kill_status.accepted_at_ms = Some(now_ms);
                        changed = true;
                    }
                    Err(e) => self.kill_status.error = Some(e),
                },
            }
        }

        if changed {
            let before = self.etag.clone();
            self.rebuild();
            if self.etag != before {
                self.generation += 1;
                return true;
            }
        }
        false
    }

    fn rebuild(&mut self) {
        let mut doc = String::from("{\"version\":1,\"kill_switch\":");
        doc.push_str(&self.kill_raw);
        if let Some(p) = &self.policy_raw {
            doc.push_str(",\"policy\":");
            doc.push_str(p);
        }
        doc.push('}');
        self.body = doc.into_bytes();
        self.etag = etag_of(&self.body);
    }

    /// The served document and its ETag.
    pub fn state(&self) -> (&[u8], &str) {
        (&self.body, &self.etag)
    }

    /// True when no file is refused.
    pub fn healthy(&self) -> bool {
        self.policy_status.error.is_none() && self.kill_status.error.is_none()
    }

    /// The `/status` document.
    pub fn status_json(&self) -> String {
        let mut s = String::from("{\"ok\":");
        s.push_str(if self.healthy() { "true" } else { "false" });
        s.push_str(",\"etag\":");
        push_json_string(&mut s, &self.etag);
        s.push_str(&format!(",\"generation\":{}", self.generation));
        for (name, st) in [("policy", &self.policy_status), ("kill", &self.kill_status)] {
            s.push_str(",\"");
            s.push_str(name);
            s.push_str("\":{\"present\":");
            s.push_str(if st.present { "true" } else { "false" });
            s.push_str(",\"served\":");
            match &st.served {
                Some(h) => push_json_string(&mut s, h),
                None => s.push_str("null"),
            }
            s.push_str(",\"accepted_at_ms\":");
            match st.accepted_at_ms {
                Some(t) => s.push_str(&t.to_string()),
                None => s.push_str("null"),
            }
            s.push_str(",\"error\":");
            match &st.error {
                Some(e) => {
                    s.push_str("{\"field\":");
                    push_json_string(&mut s, &e.field);
                    s.push_str(",\"message\":");
                    push_json_string(&mut s, &e.message);
                    s.push_str(",\"text\":");
                    push_json_string(&mut s, &e.to_string());
                    s.push('}');
                }
                None => s.push_str("null"),
            }
            s.push('}');
        }
        s.push('}');
        s
    }

    /// Answers one HTTP request (method, path without query, `If-None-Match`).
    pub fn handle(&self, method: &str, path: &str, if_none_match: Option<&str>) -> Response {
        let json = |status: u16, body: Vec<u8>| Response { status, headers: vec![("content-type", "application/json".to_owned())], body };
        if method != "GET" && method != "HEAD" {
            let mut r = json(405, b"{\"error\":\"method not allowed\"}".to_vec());
            r.headers.push(("allow", "GET, HEAD".to_owned()));
            return r;
        }
        let mut r = match path {
            STATE_PATH => {
                if if_none_match.is_some_and(|v| etag_matches(v, &self.etag)) {
                    Response { status: 304, headers: vec![("etag", self.etag.clone())], body: Vec::new() }
                } else {
                    let mut r = json(200, self.body.clone());
                    r.headers.push(("etag", self.etag.clone()));
                    r.headers.push(("cache-control", "no-cache".to_owned()));
                    r
                }
            }
            STATUS_PATH => json(200, self.status_json().into_bytes()),
            HEALTH_PATH => json(200, b"{\"ok\":true}".to_vec()),
            _ => json(404, b"{\"error\":\"not found\"}".to_vec()),
        };
        if method == "HEAD" {
            r.body.clear();
        }
        r
    }
}

/// A policy file that compiles, re-serialised compactly for embedding in the state document.
pub fn compile_policy_file(bytes: &[u8]) -> Result<String, ConfigError> {
    load(bytes)?;
    let text = std::str::from_utf8(bytes).map_err(|_| ConfigError { field: String::new(), message: "not UTF-8".into() })?;
    if text.trim().is_empty() {
        return Ok("{}".into());
    }
    let raw: Box<RawValue> = parse(bytes)?;
    Ok(raw.get().trim().to_owned())
}

/// A kill file that compiles: a JSON array of entries (or `{"kill_switch": [...]}`).
pub fn compile_kill_file(bytes: &[u8]) -> Result<String, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        kill_switch: Vec<KillSpec>,
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok("[]".into());
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let (specs, at) = if first == Some(b'{') {
        (parse::<Wrapped>(bytes)?.kill_switch, "kill_switch")
    } else {
        // Paths inside a bare list read `[0].tool`; say which file they are in.
        (parse::<Vec<KillSpec>>(bytes).map_err(|e| ConfigError { field: format!("kill{}", e.field), message: e.message })?, "kill")
    };
    KillSwitch::compile(&specs, at)?;
    // Re-emit as a bare array (the served document's `kill_switch`).
    let raw: Box<RawValue> = if first == Some(b'{') {
        #[derive(Deserialize)]
        struct RawWrapped {
            kill_switch: Box<RawValue>,
        }
        parse::<RawWrapped>(bytes)?.kill_switch
    } else {
        parse(bytes)?
    };
    Ok(raw.get().trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// Client side (the filter)
// ---------------------------------------------------------------------------------------------

/// One poll to dispatch (Envoy `dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, and `if-none-match` when a document is held.
    pub headers: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
}

/// What a poll response means for the filter.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// 304, or the same ETag again: nothing to do.
    Unchanged,
    /// A new document: install it.
    Update(Box<RemoteState>),
    /// The endpoint is down or served something invalid: keep the current state (fail-static);
    /// log and count the message.
    Failed(String),
}

/// The filter's polling state machine. Time is an input.
#[derive(Debug, Clone)]
pub struct Poller {
    pub config: ControlConfig,
    etag: Option<String>,
    next_due_ms: u64,
    in_flight_since: Option<u64>,
    /// Consecutive failures (for logs and metrics).
    pub failures: u32,
}

impl Poller {
    pub fn new(config: ControlConfig) -> Poller {
        Poller { config, etag: None, next_due_ms: 0, in_flight_since: None, failures: 0 }
    }

    /// True when a poll should be dispatched now. A poll in flight longer than its timeout plus
    /// one period is considered lost.
    pub fn due(&self, now_ms: u64) -> bool {
        match self.in_flight_since {
            Some(t) => now_ms.saturating_sub(t) > self.config.timeout_ms + self.config.period_ms,
            None => now_ms >= self.next_due_ms,
        }
    }

    /// The request to dispatch; marks a poll in flight.
    pub fn request(&mut self, now_ms: u64) -> PollRequest {
        self.in_flight_since = Some(now_ms);
        let mut headers = vec![
            (":method", "GET".to_owned()),
            (":path", self.config.path.clone()),
            (":authority", self.config.authority.clone()),
        ];
        if let Some(e) = &self.etag {
            headers.push(("if-none-match", e.clone()));
        }
        PollRequest { cluster: self.config.cluster.clone(), headers, timeout_ms: self.config.timeout_ms }
    }

    /// The dispatch itself failed (no such cluster, …): try again next period.
    pub fn dispatch_failed(&mut self, now_ms: u64) -> PollOutcome {
        self.finish(now_ms);
        self.failures += 1;
        PollOutcome::Failed(format!("control endpoint: dispatch to cluster `{}` failed", self.config.cluster))
    }

    fn finish(&mut self, now_ms: u64) {
        self.in_flight_since = None;
        self.next_due_ms = now_ms.saturating_add(self.config.period_ms);
    }

    /// A poll's answer: `status` is `None` when the call failed or timed out.
    pub fn on_response(&mut self, now_ms: u64, status: Option<u32>, etag: Option<&str>, body: &[u8]) -> PollOutcome {
        self.finish(now_ms);
        match status {
            Some(304) => {
                self.failures = 0;
                PollOutcome::Unchanged
            }
            Some(200) => {
                let tag = etag.map(str::to_owned).unwrap_or_else(|| etag_of(body));
                if self.etag.as_deref() == Some(tag.as_str()) {
                    self.failures = 0;
                    return PollOutcome::Unchanged;
                }
                match parse_state(body) {
                    Ok(mut s) => {
                        if !self.config.policy {
                            // `control.policy: false`: only the kill switch comes from the endpoint.
                            s.policy = None;
                        }
                        self.failures = 0;
                        self.etag = Some(tag);
                        PollOutcome::Update(Box::new(s))
                    }
                    Err(e) => {
                        self.failures += 1;
                        PollOutcome::Failed(format!("control endpoint served an invalid document, keeping the current one: {e}"))
                    }
                }
            }
            Some(s) => {
                self.failures += 1;
                PollOutcome::Failed(format!("control endpoint answered HTTP {s}, keeping the current state"))
            }
            None => {
                self.failures += 1;
                PollOutcome::Failed("control endpoint unreachable, keeping the current state".to_owned())
            }
        }
    }
}
