//! The MCP methods the filter knows by name: one type instead of string literals across the
//! crate. Anything else is [`Method::Other`]; the wire string itself stays in the request model
//! (policy globs, receipts), this type is for deciding.

/// A JSON-RPC `method` of either era, as far as the filter treats it specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Initialized,
    Ping,
    ServerDiscover,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourceTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    SubscriptionsListen,
    CompletionComplete,
    LoggingSetLevel,
    TasksGet,
    TasksUpdate,
    TasksCancel,
    TasksResult,
    TasksList,
    Cancelled,
    Progress,
    RootsListChanged,
    /// Any other method (its label is `other`).
    Other,
}

impl Method {
    /// Every named method, in the order of the spec's method table.
    pub const KNOWN: [Method; 24] = [
        Method::Initialize,
        Method::Initialized,
        Method::Ping,
        Method::ServerDiscover,
        Method::ToolsList,
        Method::ToolsCall,
        Method::PromptsList,
        Method::PromptsGet,
        Method::ResourcesList,
        Method::ResourceTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::SubscriptionsListen,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::TasksGet,
        Method::TasksUpdate,
        Method::TasksCancel,
        Method::TasksResult,
        Method::TasksList,
        Method::Cancelled,
        Method::Progress,
        Method::RootsListChanged,
    ];

    /// The method on the wire (`other` for [`Method::Other`]); doubles as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Initialized => "notifications/initialized",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourceTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::SubscriptionsListen => "subscriptions/listen",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::TasksGet => "tasks/get",
            Method::TasksUpdate => "tasks/update",
            Method::TasksCancel => "tasks/cancel",
            Method::TasksResult => "tasks/result",
            Method::TasksList => "tasks/list",
            Method::Cancelled => "notifications/cancelled",
            Method::Progress => "notifications/progress",
            Method::RootsListChanged => "notifications/roots/list_changed",
            Method::Other => "other",
        }
    }

    /// Exact, case-sensitive (JSON-RPC method names are).
    pub fn parse(s: &str) -> Method {
        Method::KNOWN.iter().copied().find(|m| m.as_str() == s).unwrap_or(Method::Other)
    }

    /// The metric label of an optional method: `none` when the message has none.
    pub fn label(method: Option<Method>) -> &'static str {
        method.map_or("none", Method::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn every_known_method_round_trips_and_the_rest_is_other() {
        for m in Method::KNOWN {
            assert_eq!(Method::parse(m.as_str()), m);
        }
        assert_eq!(Method::parse("Tools/Call"), Method::Other);
        assert_eq!(Method::parse("x".repeat(500).as_str()), Method::Other);
        assert_eq!(Method::label(None), "none");
        assert_eq!(Method::label(Some(Method::parse("tools/call"))), "tools/call");
    }
}
