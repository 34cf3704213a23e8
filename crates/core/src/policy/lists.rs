//! List result filtering (`tools/list`, and likewise `prompts/list`, `resources/list`,
//! `resources/templates/list`): remove
//! the items a principal may not see and mark the result `cacheScope: "private"` (it now depends
//! on who asked; spec §7, SEP-2549).
//!
//! The rewrite keeps every other byte as the upstream sent it: objects are read as ordered lists
//! of (key, raw value), only `result.tools` and `result.cacheScope` change.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::error::push_json_string;
use crate::mcp::Method;

/// The kinds of list a policy can filter, with the method that uses one item of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list` → `result.tools[].name`, used by `tools/call`.
    Tools,
    /// `prompts/list` → `result.prompts[].name`, used by `prompts/get`.
    Prompts,
    /// `resources/list` → `result.resources[].uri`, used by `resources/read`.
    Resources,
    /// `resources/templates/list` → `result.resourceTemplates[].uriTemplate` (RFC 6570), whose
    /// expansions `resources/read` reads. A template is hidden when a hide rule matches its text
    /// as a name (`file:///vault/*` hides `file:///vault/{id}`: every expansion would be hidden);
    /// one that only some hidden URIs expand from stays listed, and reads of those are refused.
    ResourceTemplates,
}

impl ListKind {
    /// The list method whose result this filters (`tools/list`, …).
    pub fn from_list_method(method: Method) -> Option<ListKind> {
        match method {
            Method::ToolsList => Some(ListKind::Tools),
            Method::PromptsList => Some(ListKind::Prompts),
            Method::ResourcesList => Some(ListKind::Resources),
            Method::ResourceTemplatesList => Some(ListKind::ResourceTemplates),
            _ => None,
        }
    }

    /// The method that uses one item (`tools/call`, `prompts/get`, `resources/read`).
    pub fn item_method(self) -> Method {
        match self {
            ListKind::Tools => Method::ToolsCall,
            ListKind::Prompts => Method::PromptsGet,
            ListKind::Resources | ListKind::ResourceTemplates => Method::ResourcesRead,
        }
    }

    /// The result field holding the array, and the item field that names an item.
    pub fn fields(self) -> (&'static str, &'static str) {
        match self {
            ListKind::Tools => ("tools", "name"),
            ListKind::Prompts => ("prompts", "name"),
            ListKind::Resources => ("resources", "uri"),
            ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate"),
        }
    }
}

/// A JSON object as ordered (key, raw value) pairs.
struct RawObject(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawObject, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(RawObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawObject {
    fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    fn write(&self, out: &mut String, replace: &dyn Fn(&str) -> Option<String>, append: &[(&str, String)]) {
        out.push('{');
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
        };
        for (k, v) in &self.0 {
            sep(out);
            push_json_string(out, k);
            out.push(':');
            match replace(k) {
                Some(new) => out.push_str(&new),
                None => out.push_str(v.get()),
            }
        }
        for (k, v) in append {
            sep(out);
            push_json_string(out, k);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
    }
}

/// The naming field of one list item (`name`, or `uri` for resources).
fn item_name(item: &RawValue, field: &str) -> Option<String> {
    let obj: RawObject = serde_json::from_str(item.get()).ok()?;
    serde_json::from_str::<String>(obj.get(field)?.get()).ok()
}

/// Filters a `tools/list` JSON-RPC response (one message: a JSON body or one SSE event's data).
///
/// Removes every tool for which `visible(name)` is false (a tool without a readable name is
/// kept: the upstream is the one to judge it). Sets `cacheScope` to `"private"` when a tool was
/// removed or `force_private` is set (the policy varies the list by principal). Returns `None`
/// when the body needs no change or is not a successful `tools/list` result.
pub fn filter_tools_list(body: &[u8], visible: &dyn Fn(&str) -> bool, force_private: bool) -> Option<Vec<u8>> {
    filter_list(body, ListKind::Tools, visible, force_private)
}

/// [`filter_tools_list`] for any [`ListKind`]: `result.tools[].name`,
/// `result.prompts[].name`, `result.resources[].uri` or `result.resourceTemplates[].uriTemplate`.
pub fn filter_list(body: &[u8], kind: ListKind, visible: &dyn Fn(&str) -> bool, force_private: bool) -> Option<Vec<u8>> {
    let (array_field, name_field) = kind.fields();
    let envelope: RawObject = serde_json::from_slice(body).ok()?;
    let result: RawObject = serde_json::from_str(envelope.get("result")?.get()).ok()?;
    let tools: Vec<Box<RawValue>> = serde_json::from_str(result.get(array_field)?.get()).ok()?;

    let kept: Vec<&RawValue> =
        tools.iter().map(|t| &**t).filter(|t| item_name(t, name_field).is_none_or(|n| visible(&n))).collect();
    let removed = kept.len() != tools.len();
    let scope_private = result.get("cacheScope").is_some_and(|s| s.get() == "\"private\"");
    let want_private = removed || force_private;
    if !removed && (!want_private || scope_private) {
        return None;
    }

    let mut tools_json = String::from("[");
    for (i, t) in kept.iter().enumerate() {
        if i > 0 {
            tools_json.push(',');
        }
        tools_json.push_str(t.get());
    }
    tools_json.push(']');

    let has_scope = result.get("cacheScope").is_some();
    let mut result_json = String::with_capacity(body.len());
    let replace_result = |k: &str| {
        if k == array_field {
            Some(tools_json.clone())
        } else if k == "cacheScope" && want_private {
            Some("\"private\"".to_owned())
        } else {
            None
        }
    };
    let append: Vec<(&str, String)> =
        if want_private && !has_scope { vec![("cacheScope", "\"private\"".to_owned())] } else { Vec::new() };
    result.write(&mut result_json, &replace_result, &append);

    let mut out = String::with_capacity(body.len());
    envelope.write(&mut out, &|k| (k == "result").then(|| result_json.clone()), &[]);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_hidden_and_goes_private() {
        let body = br#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","tools":[{"name":"read","x":1},{"name":"delete_all"}],"ttlMs":5,"cacheScope":"public"}}"#;
        let out = filter_tools_list(body, &|n| !n.starts_with("delete"), false).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","tools":[{"name":"read","x":1}],"ttlMs":5,"cacheScope":"private"}}"#
        );
    }

    #[test]
    fn untouched_when_nothing_hidden() {
        let body = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"read"}],"cacheScope":"public"}}"#;
        assert!(filter_tools_list(body, &|_| true, false).is_none());
        let out = filter_tools_list(body, &|_| true, true).unwrap();
        assert!(std::str::from_utf8(&out).unwrap().contains(r#""cacheScope":"private""#));
        assert!(filter_tools_list(br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#, &|_| false, true).is_none());
    }

    #[test]
    fn legacy_result_without_scope_gets_one() {
        let body = br#"{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"a"},{"name":"b"}]}}"#;
        let out = filter_tools_list(body, &|n| n == "a", false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 1);
        assert_eq!(v["result"]["cacheScope"], "private");
        assert_eq!(v["id"], "a");
    }
}
