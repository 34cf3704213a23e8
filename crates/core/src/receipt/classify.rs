//! MCP method / tool name → `action_type` and `side_effect_class` (spec §8.4, after Pipelock's
//! `classify.go`). MCP reversibility is always `unknown`: the proxy cannot tell.

use super::record::{ActionType, SideEffectClass};
use crate::mcp::Method;

const READ_PREFIXES: &[&str] = &["get", "list", "read", "search", "find", "query", "fetch", "show", "describe", "check"];
const WRITE_PREFIXES: &[&str] =
    &["set", "create", "update", "delete", "remove", "write", "put", "post", "add", "modify", "edit", "patch"];
const DELEGATE_PREFIXES: &[&str] = &["run", "exec", "execute", "spawn", "invoke", "call"];

/// `action_type` for an MCP request. `name` is the tool name for `tools/call` (ignored otherwise).
pub fn action_type(method: &str, name: Option<&str>) -> ActionType {
    match Method::parse(method) {
        Method::ToolsList
        | Method::ResourcesList
        | Method::ResourceTemplatesList
        | Method::PromptsList
        | Method::ResourcesRead
        | Method::PromptsGet => ActionType::Read,
        Method::ToolsCall => name.map_or(ActionType::Unclassified, tool_action_type),
        _ => ActionType::Unclassified,
    }
}

/// Classifies a tool by the first word of its name (`get_weather`, `createIssue`, `fs.read`…).
pub fn tool_action_type(tool: &str) -> ActionType {
    let word = first_word(tool);
    let has = |list: &[&str]| list.iter().any(|p| word == *p);
    if has(READ_PREFIXES) {
        ActionType::Read
    } else if has(WRITE_PREFIXES) {
        ActionType::Write
    } else if has(DELEGATE_PREFIXES) {
        ActionType::Delegate
    } else {
        ActionType::Unclassified
    }
}

/// The leading word, lowercased: up to the first `_ - . / :` or space, or the first capital
/// letter after a lowercase one (camelCase). A server prefix such as `github.` is skipped when a
/// separator-delimited word follows (`github.create_issue` → `create`).
fn first_word(tool: &str) -> String {
    let last_segment = tool.rsplit(['.', '/', ':']).next().unwrap_or(tool);
    let mut word = String::new();
    let mut prev_lower = false;
    for c in last_segment.chars() {
        if matches!(c, '_' | '-' | ' ') || (c.is_uppercase() && prev_lower) {
            break;
        }
        prev_lower = c.is_lowercase();
        word.extend(c.to_lowercase());
    }
    word
}

/// `side_effect_class` implied by an `action_type`.
pub fn side_effect_class(action: ActionType) -> SideEffectClass {
    match action {
        ActionType::Read => SideEffectClass::ExternalRead,
        ActionType::Write | ActionType::Commit | ActionType::Delegate => SideEffectClass::ExternalWrite,
        ActionType::Spend => SideEffectClass::Financial,
        ActionType::Actuate => SideEffectClass::Physical,
        ActionType::Derive | ActionType::Authorize | ActionType::Unclassified => SideEffectClass::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_read_methods_are_reads() {
        for m in ["tools/list", "resources/list", "prompts/list", "resources/read", "prompts/get"] {
            assert_eq!(action_type(m, None), ActionType::Read, "{m}");
        }
        assert_eq!(action_type("initialize", None), ActionType::Unclassified);
        assert_eq!(action_type("tools/call", None), ActionType::Unclassified);
    }

    #[test]
    fn tools_are_classified_by_their_first_word() {
        let cases = [
            ("get_weather", ActionType::Read),
            ("searchDocs", ActionType::Read),
            ("github.create_issue", ActionType::Write),
            ("delete-file", ActionType::Write),
            ("exec", ActionType::Delegate),
            ("run_shell", ActionType::Delegate),
            ("getaway", ActionType::Unclassified),
            ("transfer_funds", ActionType::Unclassified),
            ("", ActionType::Unclassified),
        ];
        for (tool, want) in cases {
            assert_eq!(action_type("tools/call", Some(tool)), want, "{tool}");
        }
    }

    #[test]
    fn side_effects_follow_the_action_type() {
        assert_eq!(side_effect_class(ActionType::Read), SideEffectClass::ExternalRead);
        assert_eq!(side_effect_class(ActionType::Delegate), SideEffectClass::ExternalWrite);
        assert_eq!(side_effect_class(ActionType::Spend), SideEffectClass::Financial);
        assert_eq!(side_effect_class(ActionType::Actuate), SideEffectClass::Physical);
        assert_eq!(side_effect_class(ActionType::Unclassified), SideEffectClass::None);
    }
}
