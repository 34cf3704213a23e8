//! A hidden tool or prompt answered by its upstream (`hidden_answer: upstream`). The gateway's
//! own `-32602 Unknown tool` differs from what each SDK says of a name it does not have (a
//! Python server returns an `isError` result, a TypeScript one `-32602 Tool X not found`), so a
//! client comparing a hidden name with a made-up one could tell that the hidden one exists.
//! Instead the call goes to the upstream under a name no server has (a decoy, without its
//! arguments), and the upstream's own answer comes back with the decoy replaced by the name
//! the client asked for: byte for byte what a made-up name gets, one round trip later, as a
//! made-up name's answer is. The hidden tool never runs, and its arguments never leave.

use serde_json::{Map, Value};

use crate::fnv;
use crate::inspect::{ExchangeView, Finding, Inspector, Rewrite};
use crate::ports::Kv;

/// Findings' `inspector`.
pub const NAME: &str = "hidden_answer";

/// The decoy for one request: `mcpw-absent-` and 16 hex digits of a hash of what differs
/// between requests (no server names a tool so, and the answer cannot hold it by chance).
pub fn decoy_name(seed: &[&[u8]]) -> String {
    let h = seed.iter().fold(fnv::hash(b"mcpw-absent"), |h, part| fnv::extend(fnv::extend(h, part), b"\0"));
    format!("mcpw-absent-{h:016x}")
}

/// The body forwarded instead of the client's: `jsonrpc`, `id` and `method` as sent, `params`
/// with the decoy for its `name`, a tool's `arguments` an empty object (as a client without
/// any sends), and of `_meta` only what 2026-07-28 requires (`protocolVersion`, and
/// `clientCapabilities` empty). Nothing else the client wrote leaves: not its arguments, a
/// task, MRTR state, or other `_meta`. `None` when the body is not one JSON-RPC request object
/// with `params` (never the case for a call the classifier let through).
pub fn forwarded_body(body: &[u8], decoy: &str) -> Option<Vec<u8>> {
    let message: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let method = message.get("method")?.as_str()?;
    let sent = message.get("params")?.as_object()?;
    let mut params = Map::new();
    params.insert("name".to_owned(), Value::String(decoy.to_owned()));
    if method == "tools/call" {
        params.insert("arguments".to_owned(), Value::Object(Map::new()));
    }
    let version = sent.get("_meta").and_then(|m| m.get(PROTOCOL_VERSION));
    if let Some(version) = version {
        let mut meta = Map::new();
        meta.insert(PROTOCOL_VERSION.to_owned(), version.clone());
        meta.insert(CLIENT_CAPABILITIES.to_owned(), Value::Object(Map::new()));
        params.insert("_meta".to_owned(), Value::Object(meta));
    }
    let mut out = Map::new();
    for key in ["jsonrpc", "id", "method"] {
        out.insert(key.to_owned(), message.get(key)?.clone());
    }
    out.insert("params".to_owned(), Value::Object(params));
    serde_json::to_vec(&out).ok()
}

const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The response inspector that puts the name back: every occurrence of the decoy in the
/// upstream's answer (its JSON messages, and a non-2xx text body) becomes the name as the
/// client sent it, escaped for where it stands (a JSON string).
pub struct Undecoy {
    decoy: Vec<u8>,
    /// The name as JSON string content (escaped, without quotes).
    name: Vec<u8>,
}

impl Undecoy {
    pub fn new(decoy: &str, name: &str) -> Undecoy {
        let mut quoted = String::new();
        crate::mcp::error::push_json_string(&mut quoted, name);
        let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(&quoted);
        Undecoy { decoy: decoy.as_bytes().to_vec(), name: inner.as_bytes().to_vec() }
    }

    fn restore(&self, message: &[u8]) -> Rewrite {
        let Some(first) = memchr::memmem::find(message, &self.decoy) else { return Rewrite::Keep };
        let mut out = Vec::with_capacity(message.len() + self.name.len());
        out.extend_from_slice(message.get(..first).unwrap_or_default());
        let mut rest = message.get(first..).unwrap_or_default();
        while let Some(at) = memchr::memmem::find(rest, &self.decoy) {
            out.extend_from_slice(rest.get(..at).unwrap_or_default());
            out.extend_from_slice(&self.name);
            rest = rest.get(at + self.decoy.len()..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
        Rewrite::Replace(out)
    }
}

impl Inspector for Undecoy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inspect(&mut self, _: &ExchangeView<'_>, message: &[u8], _: &mut dyn Kv, _: &mut Vec<Finding>) -> Rewrite {
        self.restore(message)
    }

    fn reads_text(&self) -> bool {
        true
    }

    fn inspect_text(&mut self, _: &ExchangeView<'_>, text: &[u8], _: &mut Vec<Finding>) -> Rewrite {
        self.restore(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_goes_out_under_the_decoy_without_its_arguments() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"admin_reset","arguments":{"token":"s3cr3t"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let decoy = decoy_name(&[b"7", b"principal"]);
        assert!(decoy.starts_with("mcpw-absent-") && decoy.len() == 28, "{decoy}");
        let out: Value = serde_json::from_slice(&forwarded_body(body, &decoy).unwrap()).unwrap();
        assert_eq!(out["params"]["name"], decoy.as_str());
        assert_eq!(out["params"]["arguments"], serde_json::json!({}));
        assert_eq!(out["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
        let extra = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","task":{"ttl":1},"requestState":"s","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"x":{}},"k":"AKIA"}}}"#;
        let out: Value = serde_json::from_slice(&forwarded_body(extra, &decoy).unwrap()).unwrap();
        assert_eq!(out["params"].as_object().unwrap().len(), 3, "name, arguments, _meta: {out}");
        assert_eq!(out["params"]["_meta"].as_object().unwrap().len(), 2, "{out}");
        assert_eq!(out["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"], serde_json::json!({}));
        assert_eq!(out["id"], 7);
        assert!(!String::from_utf8_lossy(&forwarded_body(body, &decoy).unwrap()).contains("s3cr3t"));
        let prompt = br#"{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}"#;
        let out: Value = serde_json::from_slice(&forwarded_body(prompt, &decoy).unwrap()).unwrap();
        assert!(out["params"].get("arguments").is_none(), "a prompt's arguments are optional");
        assert_ne!(decoy_name(&[b"8", b"principal"]), decoy, "each request its own");
    }

    #[test]
    fn the_answer_names_what_the_client_asked_for() {
        let decoy = "mcpw-absent-0123456789abcdef";
        let u = Undecoy::new(decoy, "admin\"reset");
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":7,"error":{{"code":-32602,"message":"Tool {decoy} not found","data":"{decoy}"}}}}"#
        );
        let Rewrite::Replace(out) = u.restore(answer.as_bytes()) else { panic!("rewritten") };
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "Tool admin\"reset not found");
        assert_eq!(v["error"]["data"], "admin\"reset");
        assert!(matches!(u.restore(b"{\"id\":1,\"result\":{}}"), Rewrite::Keep));
    }
}
