//! What a tool definition (or a `ui://` template) is, as one hash that survives key order,
//! whitespace and number spelling, and that a client SDK can recompute (README, "Capability
//! hash").
//!
//! A tool's fingerprint is `sha256:` + hex of SHA-256 over the RFC 8785 ([`crate::jcs`]) bytes of
//! the object made of the tool's `name`, `title`, `description`, `inputSchema`, `outputSchema`,
//! `annotations` (each as the server sent it, left out when absent) and `ui` = its `_meta.ui`
//! (plus the deprecated flat `_meta["ui/resourceUri"]` as `ui/resourceUri`). Everything the model
//! reads or the host acts on is in it; `_meta` bookkeeping (`io.modelcontextprotocol/*`, progress)
//! is not, so it does not change from one request to the next.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `_meta` key of `tools/call` that carries the fingerprint of the definition the client
/// saw (ours: not under a reserved MCP prefix).
pub const TOOL_HASH_META_KEY: &str = "mcp-warden.dev/tool-hash";

/// The fields of a tool definition that are hashed, in the order the README lists them.
const TOOL_FIELDS: [&str; 6] = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"];

/// A SHA-256 fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// SHA-256 of `value`'s canonical bytes.
    pub fn of(value: &Value) -> Fingerprint {
        Fingerprint(Sha256::digest(crate::jcs::to_vec(value)).into())
    }

    /// The fingerprint of one tool definition (see the module doc).
    pub fn of_tool(tool: &Value) -> Fingerprint {
        Fingerprint::of(&Value::Object(tool_view(tool)))
    }

    /// The 16 bytes shared data keeps (collision-safe for integrity: 2^64 work for a birthday
    /// pair the attacker must also make meaningful, 2^128 to match a given definition).
    pub fn short(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (dst, src) in out.iter_mut().zip(self.0.iter()) {
            *dst = *src;
        }
        out
    }

    /// `sha256:<64 hex>`.
    pub fn text(&self) -> String {
        format!("sha256:{}", crate::hex_text::lower(&self.0))
    }

    /// Reads `sha256:<64 hex>` (hex in either case).
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let hex_part = text.strip_prefix("sha256:")?;
        let bytes = hex::decode(hex_part).ok()?;
        Some(Fingerprint(bytes.try_into().ok()?))
    }
}

/// The object a tool's fingerprint is taken over.
pub fn tool_view(tool: &Value) -> Map<String, Value> {
    let mut view = Map::new();
    for field in TOOL_FIELDS {
        if let Some(v) = tool.get(field) {
            view.insert(field.to_owned(), v.clone());
        }
    }
    if let Some(meta) = tool.get("_meta") {
        let mut ui = match meta.get("ui") {
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                let mut m = Map::new();
                m.insert(String::new(), other.clone());
                m
            }
            None => Map::new(),
        };
        if let Some(flat) = meta.get("ui/resourceUri") {
            ui.insert("ui/resourceUri".to_owned(), flat.clone());
        }
        if !ui.is_empty() || meta.get("ui").is_some() {
            view.insert("ui".to_owned(), Value::Object(ui));
        }
    }
    view
}

/// The `ui://` resource a tool links to (`_meta.ui.resourceUri`, or the deprecated flat key).
pub fn tool_ui_resource(tool: &Value) -> Option<&str> {
    let meta = tool.get("_meta")?;
    meta.pointer("/ui/resourceUri").or_else(|| meta.get("ui/resourceUri")).and_then(Value::as_str)
}

/// Fingerprint of a set of names (order and repeats do not matter): renaming a tool changes it.
pub fn names_fingerprint<'a>(names: impl Iterator<Item = &'a str>) -> Fingerprint {
    let mut sorted: Vec<&str> = names.collect();
    sorted.sort_unstable();
    sorted.dedup();
    Fingerprint::of(&Value::Array(sorted.into_iter().map(|n| Value::String(n.to_owned())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_ignores_key_order_whitespace_number_spelling_and_bookkeeping_meta() {
        let a: Value = serde_json::from_str(
            r#"{"name":"echo","description":"Echo","inputSchema":{"type":"object","properties":{"n":{"type":"number","default":1.0}}},
                "_meta":{"ui":{"resourceUri":"ui://x/app"},"io.modelcontextprotocol/anything":1}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{ "inputSchema" : { "properties" : { "n" : { "default" : 1, "type" : "number" } }, "type" : "object" },
                 "_meta" : { "ui" : { "resourceUri" : "ui://x/app" } }, "description" : "Echo", "name" : "echo" }"#,
        )
        .unwrap();
        assert_eq!(Fingerprint::of_tool(&a), Fingerprint::of_tool(&b));
        // Documented vector (README, "Capability hash"): a client SDK checks itself against it.
        let doc = json!({"name": "echo", "description": "Echo the text back",
                         "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}});
        assert_eq!(
            crate::jcs::to_vec(&Value::Object(tool_view(&doc))),
            br#"{"description":"Echo the text back","inputSchema":{"properties":{"text":{"type":"string"}},"required":["text"],"type":"object"},"name":"echo"}"#
        );
        assert_eq!(Fingerprint::of_tool(&doc).text(), "sha256:25501b2c3967bb0978cae435b8f5400d49fcfbe1c4a92cca1368562aaef0815e");
    }

    #[test]
    fn every_field_the_model_or_host_reads_changes_it() {
        let base = json!({"name": "t", "title": "T", "description": "d", "inputSchema": {"type": "object"},
                          "outputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}, "_meta": {"ui": {"resourceUri": "ui://a"}}});
        let h = Fingerprint::of_tool(&base);
        for (ptr, v) in [
            ("/name", json!("u")),
            ("/title", json!("U")),
            ("/description", json!("d ")),
            ("/inputSchema/type", json!("array")),
            ("/outputSchema/type", json!("string")),
            ("/annotations/readOnlyHint", json!(false)),
            ("/_meta/ui/resourceUri", json!("ui://b")),
        ] {
            let mut t = base.clone();
            *t.pointer_mut(ptr).unwrap() = v;
            assert_ne!(Fingerprint::of_tool(&t), h, "{ptr}");
        }
        let mut t = base.clone();
        t["_meta"]["progressToken"] = json!(7);
        t["icons"] = json!([]);
        assert_eq!(Fingerprint::of_tool(&t), h, "bookkeeping is not the definition");
    }

    #[test]
    fn texts_round_trip_and_name_sets_ignore_order() {
        let f = Fingerprint::of(&json!(1));
        assert_eq!(Fingerprint::parse(&f.text()), Some(f));
        assert_eq!(Fingerprint::parse(&f.text().to_uppercase().replace("SHA256", "sha256")), Some(f));
        assert_eq!(Fingerprint::parse("sha256:00"), None);
        assert_eq!(Fingerprint::parse("md5:00"), None);
        assert_eq!(names_fingerprint(["b", "a", "a"].into_iter()), names_fingerprint(["a", "b"].into_iter()));
        assert_ne!(names_fingerprint(["a", "b"].into_iter()), names_fingerprint(["a", "c"].into_iter()));
    }
}
