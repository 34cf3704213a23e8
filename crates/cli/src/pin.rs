//! `warden pin URL`: fetch a live MCP server's tool list (every page) as an MCP client does and
//! print the approved manifest a security team reviews and commits: one entry of
//! `tool_integrity.pins`, with each tool's fingerprint computed by the filter's own code (so the
//! manifest and the filter can never disagree on a hash).
//!
//! ```text
//! warden pin http://127.0.0.1:8080/mcp [--upstream CLUSTER] [--era modern|legacy|auto] [--ui] [--no-server]
//! ```
//!
//! The client speaks both eras over Streamable HTTP: 2026-07-28 first (`server/discover`, then
//! `tools/list` with `_meta` and the routing headers), and, when the server does not speak it,
//! 2025-11-25 (`initialize`, `notifications/initialized`, `tools/list` in the session). Answers in
//! JSON or SSE. `--ui` also reads every `ui://` template a tool links to and pins its content.
//! `http://` only: run it against the server's own address inside the mesh, or through a local
//! port-forward.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use mcp_warden_core::mcp::fingerprint::{tool_ui_resource, Fingerprint};
use mcp_warden_core::mcp::sse::{SseDecoder, SseEvent};
use serde_json::{json, Map, Value};

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
const MAX_PAGES: usize = 1000;
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

struct Target {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest =
        url.strip_prefix("http://").ok_or("only http:// URLs (run it against the server inside the mesh, or a port-forward)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("bad port in {url}"))?),
        None => (authority, 80),
    };
    Ok(Target { host: host.to_owned(), port, path: path.to_owned() })
}

/// One answer: status, headers (lowercase names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC answer to `id` (a JSON body, or the SSE event that carries it).
    fn message(&self, id: u64) -> Result<Value, String> {
        let ct = self.header("content-type").unwrap_or("").to_ascii_lowercase();
        if ct.starts_with("text/event-stream") {
            let mut decoder = SseDecoder::new(MAX_ANSWER_BYTES);
            let mut events: Vec<SseEvent> = Vec::new();
            decoder.feed(&self.body, &mut events).map_err(|e| format!("unreadable event stream: {e:?}"))?;
            decoder.feed(b"\n\n", &mut events).map_err(|e| format!("unreadable event stream: {e:?}"))?;
            for ev in events {
                if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                    if v.get("id").and_then(Value::as_u64) == Some(id) {
                        return Ok(v);
                    }
                }
            }
            return Err(format!("HTTP {}: no answer to request {id} in the event stream", self.status));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("HTTP {}: not a JSON-RPC answer ({e})", self.status))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(body.get(..eol).unwrap_or_default())
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(body.get(start..start + size).unwrap_or_default());
        body = body.get(start + size + 2..).unwrap_or_default();
    }
    out
}

fn post(t: &Target, headers: &[(&str, String)], body: &Value) -> Result<Answer, String> {
    let payload = body.to_string();
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n",
        t.path,
        t.host,
        t.port,
        payload.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    let mut s =
        TcpStream::connect((t.host.as_str(), t.port)).map_err(|e| format!("cannot connect to {}:{}: {e}", t.host, t.port))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.take(MAX_ANSWER_BYTES as u64).read_to_end(&mut raw).map_err(|e| format!("reading the answer: {e}"))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the server closed the connection without an answer")?;
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked")) {
        body = dechunk(&body);
    }
    Ok(Answer { status, headers, body })
}

/// A session with one server, in one era.
struct Session {
    target: Target,
    modern: bool,
    session_id: Option<String>,
    next_id: u64,
    server: Option<Value>,
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "warden-pin", "version": env!("CARGO_PKG_VERSION")},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

impl Session {
    fn request(&mut self, method: &str, name: Option<&str>, mut params: Map<String, Value>) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut headers: Vec<(&str, String)> = Vec::new();
        if self.modern {
            params.insert("_meta".to_owned(), modern_meta());
            headers.push(("mcp-protocol-version", MODERN.to_owned()));
            headers.push(("mcp-method", method.to_owned()));
            if let Some(n) = name {
                headers.push(("mcp-name", n.to_owned()));
            }
        } else if method != "initialize" {
            headers.push(("mcp-protocol-version", LEGACY.to_owned()));
        }
        if let Some(sid) = &self.session_id {
            headers.push(("mcp-session-id", sid.clone()));
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": Value::Object(params)});
        let answer = post(&self.target, &headers, &body)?;
        if method == "initialize" {
            self.session_id = answer.header("mcp-session-id").map(str::to_owned);
        }
        let msg = answer.message(id)?;
        if let Some(err) = msg.get("error") {
            return Err(format!("{method}: the server answered an error (HTTP {}): {err}", answer.status));
        }
        msg.get("result").cloned().ok_or_else(|| format!("{method}: an answer without a result"))
    }

    fn open(target: Target, era: &str) -> Result<Session, String> {
        if era != "legacy" {
            let mut s = Session { target, modern: true, session_id: None, next_id: 0, server: None };
            match s.request("server/discover", None, Map::new()) {
                Ok(r) => {
                    s.server = r.get("serverInfo").cloned();
                    return Ok(s);
                }
                Err(e) if era == "modern" => return Err(e),
                Err(_) => return Session::open(s.target, "legacy"),
            }
        }
        let mut s = Session { target, modern: false, session_id: None, next_id: 0, server: None };
        let mut p = Map::new();
        p.insert("protocolVersion".into(), json!(LEGACY));
        p.insert("capabilities".into(), json!({}));
        p.insert("clientInfo".into(), json!({"name": "warden-pin", "version": env!("CARGO_PKG_VERSION")}));
        let r = s.request("initialize", None, p)?;
        s.server = r.get("serverInfo").cloned();
        let mut headers = vec![("mcp-protocol-version", LEGACY.to_owned())];
        if let Some(sid) = &s.session_id {
            headers.push(("mcp-session-id", sid.clone()));
        }
        post(&s.target, &headers, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(s)
    }

    fn tools(&mut self) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = Map::new();
            if let Some(c) = &cursor {
                p.insert("cursor".into(), json!(c));
            }
            let r = self.request("tools/list", None, p)?;
            if self.server.is_none() {
                self.server = r.pointer("/_meta/io.modelcontextprotocol~1serverInfo").cloned();
            }
            out.extend(r.get("tools").and_then(Value::as_array).cloned().unwrap_or_default());
            match r.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(out),
            }
        }
        Err(format!("more than {MAX_PAGES} pages of tools"))
    }

    fn template(&mut self, uri: &str) -> Result<Fingerprint, String> {
        let mut p = Map::new();
        p.insert("uri".into(), json!(uri));
        let r = self.request("resources/read", Some(uri), p)?;
        Ok(Fingerprint::of(r.get("contents").unwrap_or(&Value::Null)))
    }
}

pub fn run(args: &[String]) -> ExitCode {
    match pin(args) {
        Ok(manifest) => {
            println!("{}", serde_json::to_string_pretty(&manifest).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("warden pin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pin(args: &[String]) -> Result<Value, String> {
    let mut url = None;
    let (mut upstream, mut era, mut ui, mut server) = ("mcp_upstream".to_owned(), "auto".to_owned(), false, true);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--upstream" => upstream = it.next().ok_or("--upstream needs a cluster name")?.clone(),
            "--era" => era = it.next().ok_or("--era needs modern, legacy or auto")?.clone(),
            "--ui" => ui = true,
            "--no-server" => server = false,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => url = Some(s.to_owned()),
        }
    }
    if !matches!(era.as_str(), "modern" | "legacy" | "auto") {
        return Err(format!("--era {era}: expected modern, legacy or auto"));
    }
    let url = url.ok_or("usage: warden pin URL [--upstream CLUSTER] [--era modern|legacy|auto] [--ui] [--no-server]")?;
    let mut s = Session::open(parse_url(&url)?, &era)?;
    let tools = s.tools()?;
    let mut pinned = Map::new();
    let mut templates = Map::new();
    for t in &tools {
        let Some(name) = t.get("name").and_then(Value::as_str) else { continue };
        pinned.insert(name.to_owned(), json!(Fingerprint::of_tool(t).text()));
        if let Some(uri) = tool_ui_resource(t).filter(|u| ui && u.starts_with("ui://")) {
            if !templates.contains_key(uri) {
                let fp = s.template(uri)?;
                templates.insert(uri.to_owned(), json!(fp.text()));
            }
        }
    }
    let mut manifest = Map::new();
    manifest.insert("upstream".into(), json!(upstream));
    if let Some(info) = s.server.as_ref().filter(|_| server) {
        let mut id = Map::new();
        id.insert("name".into(), info.get("name").cloned().unwrap_or(json!("")));
        if let Some(v) = info.get("version").and_then(Value::as_str).filter(|v| !v.is_empty()) {
            id.insert("version".into(), json!(v));
        }
        manifest.insert("server".into(), Value::Object(id));
    }
    manifest.insert("tools".into(), Value::Object(pinned));
    if !templates.is_empty() {
        manifest.insert("ui".into(), Value::Object(templates));
    }
    Ok(Value::Object(manifest))
}
