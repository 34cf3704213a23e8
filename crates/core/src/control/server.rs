//! The control endpoint's server side (`warden control --dir DIR`): a directory (a mounted
//! ConfigMap) compiled with the filter's own code and served as one document with an ETag.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{etag_matches, etag_of, HEALTH_PATH, MAX_DOC_BYTES, STATE_PATH, STATUS_PATH};
use crate::mcp::error::push_json_string;
use crate::policy::compile::load;
use crate::policy::error::parse;
use crate::policy::spec::{KillSpec, PinSpec};
use crate::policy::{ConfigError, KillSwitch};

/// The directory's current content, read by the caller (`None` = file absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirFiles {
    pub policy: Option<Vec<u8>>,
    pub kill: Option<Vec<u8>>,
    /// `pins.json`: approved tool manifests (what `warden pin URL` prints), one or a list.
    pub pins: Option<Vec<u8>>,
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
    policy: ServedFile,
    kill: ServedFile,
    pins: ServedFile,
    pub policy_status: FileStatus,
    pub kill_status: FileStatus,
    pub pins_status: FileStatus,
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
    (len > MAX_DOC_BYTES)
        .then(|| ConfigError { field: String::new(), message: format!("file larger than {MAX_DOC_BYTES} bytes") })
}

/// One file of the directory: its last good compiled text, and the hash of the content last
/// looked at (so an unchanged file is not recompiled).
#[derive(Debug, Default)]
struct ServedFile {
    raw: Option<String>,
    seen: Option<Option<String>>,
}

impl ServedFile {
    /// Takes the file's current content; true when what is served changed.
    fn refresh(
        &mut self,
        bytes: Option<&[u8]>,
        status: &mut FileStatus,
        compile: fn(&[u8]) -> Result<String, ConfigError>,
        now_ms: u64,
    ) -> bool {
        let hash = bytes.map(hash_hex);
        if self.seen.as_ref() == Some(&hash) {
            return false;
        }
        self.seen = Some(hash.clone());
        status.present = bytes.is_some();
        match bytes {
            None => {
                // Removing the file is how an operator stops serving it.
                *status = FileStatus::default();
                self.raw.take().is_some()
            }
            Some(bytes) => match too_big(bytes.len()).map_or_else(|| compile(bytes), Err) {
                Ok(text) => {
                    let changed = self.raw.as_deref() != Some(text.as_str());
                    self.raw = Some(text);
                    *status = FileStatus { present: true, served: hash, error: None, accepted_at_ms: Some(now_ms) };
                    changed
                }
                Err(e) => {
                    status.error = Some(e);
                    false
                }
            },
        }
    }
}

impl ControlServer {
    pub fn new() -> ControlServer {
        let mut s = ControlServer::default();
        s.rebuild();
        s
    }

    /// Takes the directory's content; recompiles what changed. Returns true when the served
    /// document changed.
    pub fn refresh(&mut self, files: &DirFiles, now_ms: u64) -> bool {
        let mut changed = self.policy.refresh(files.policy.as_deref(), &mut self.policy_status, compile_policy_file, now_ms);
        changed |= self.kill.refresh(files.kill.as_deref(), &mut self.kill_status, compile_kill_file, now_ms);
        changed |= self.pins.refresh(files.pins.as_deref(), &mut self.pins_status, compile_pins_file, now_ms);
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
        doc.push_str(self.kill.raw.as_deref().unwrap_or("[]"));
        if let Some(p) = &self.policy.raw {
            doc.push_str(",\"policy\":");
            doc.push_str(p);
        }
        if let Some(p) = &self.pins.raw {
            doc.push_str(",\"pins\":");
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
        [&self.policy_status, &self.kill_status, &self.pins_status].iter().all(|st| st.error.is_none())
    }

    /// The `/status` document.
    pub fn status_json(&self) -> String {
        let mut s = String::from("{\"ok\":");
        s.push_str(if self.healthy() { "true" } else { "false" });
        s.push_str(",\"etag\":");
        push_json_string(&mut s, &self.etag);
        s.push_str(&format!(",\"generation\":{}", self.generation));
        for (name, st) in [("policy", &self.policy_status), ("kill", &self.kill_status), ("pins", &self.pins_status)] {
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
        let json = |status: u16, body: Vec<u8>| Response {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body,
        };
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
        (
            parse::<Vec<KillSpec>>(bytes).map_err(|e| ConfigError { field: format!("kill{}", e.field), message: e.message })?,
            "kill",
        )
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

/// A pins file that compiles: one manifest (`warden pin URL` prints one) or a list of them;
/// served as a list.
pub fn compile_pins_file(bytes: &[u8]) -> Result<String, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok("[]".into());
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let pins: Vec<PinSpec> = if first == Some(b'{') {
        vec![parse::<PinSpec>(bytes).map_err(|e| ConfigError { field: format!("pins.{}", e.field), message: e.message })?]
    } else {
        parse::<Vec<PinSpec>>(bytes).map_err(|e| ConfigError { field: format!("pins{}", e.field), message: e.message })?
    };
    crate::policy::integrity::compile_pins(&pins, "pins")?;
    let raw: Box<RawValue> = parse(bytes)?;
    let text = raw.get().trim();
    Ok(if first == Some(b'{') { format!("[{text}]") } else { text.to_owned() })
}
