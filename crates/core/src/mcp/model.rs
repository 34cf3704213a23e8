//! The one request model that policy, rate limiting and receipts use for both MCP eras.
//!
//! Built by [`super::classify`] from the HTTP head and the parsed body. It owns its few strings so
//! it can outlive the body buffer (the response side and receipts need it after the body is gone).

use super::method::Method;

/// Which protocol revision family an exchange belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2026-07-28 and later: stateless, `_meta` on every request, validated routing headers.
    Modern,
    /// 2025-11-25 and earlier: `initialize`, `Mcp-Session-Id`, GET streams, posted responses.
    Legacy,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Modern => "modern",
            Era::Legacy => "legacy",
        }
    }
}

/// What kind of JSON-RPC traffic an HTTP request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    /// A client's answer to a server-initiated request (legacy only).
    Response,
    /// GET (standalone SSE stream) or DELETE (end of session): no body.
    Bodyless,
}

/// The era-neutral view of one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRequest {
    pub era: Era,
    pub kind: MessageKind,
    /// The JSON-RPC id as the client wrote it (JSON text), when there is one.
    pub id: Option<String>,
    /// JSON-RPC `method` (= the validated or synthesised `Mcp-Method`).
    pub method: Option<String>,
    /// `method` as a known [`Method`] (`Other` for the rest), parsed once for every decision.
    pub op: Option<Method>,
    /// Tool / prompt name, resource URI or task id (= the validated or synthesised `Mcp-Name`).
    pub name: Option<String>,
    /// A resource URI as the server will resolve it ([`super::uri::normalize`]); `None` for
    /// other names, or when the URI has no single reading (then `name_ambiguous`).
    pub resolved_name: Option<String>,
    pub name_ambiguous: bool,
    /// What the request acts on besides its own name (a completion's `ref`, a subscription's
    /// resource): policy decides on it as on a `prompts/get` / `resources/read` of it.
    pub target: Option<Target>,
    /// `_meta` protocol version (modern) or `MCP-Protocol-Version` / initialize version (legacy).
    pub protocol_version: Option<String>,
    /// Self-reported client identity: `_meta` clientInfo (modern) or initialize clientInfo.
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    /// `_meta` W3C trace context (SEP-414), as sent.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
    /// Legacy session header was present (never a key for state; recorded for hijack checks).
    pub session_id: Option<String>,
    /// An MRTR retry (`requestState` / `inputResponses` present): results must not be cached.
    pub is_mrtr_retry: bool,
    /// What tool integrity and task binding read of the request.
    pub handles: Handles,
}

/// The handles a request carries that tool integrity and task binding check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handles {
    /// `_meta["mcp-warden.dev/tool-hash"]` of a `tools/call`: the definition the client saw.
    pub tool_hash: Option<String>,
    /// `params.taskId` (any method: the legacy `tasks/result` too).
    pub task_id: Option<String>,
    /// A list request's `params.cursor`.
    pub cursor: Option<String>,
    /// `subscriptions/listen`'s `notifications.taskIds`.
    pub listen_task_ids: Vec<String>,
    /// The answer may hand out a task: the request declares the tasks extension (modern) or is
    /// task-augmented (legacy `params.task`).
    pub may_create_task: bool,
    /// A legacy GET: the standalone SSE stream (or a resumption replaying earlier answers).
    pub standalone_stream: bool,
}

impl McpRequest {
    /// The name policy matches on: a resource URI in its resolved form, any other name as sent.
    pub fn policy_name(&self) -> Option<&str> {
        self.resolved_name.as_deref().or(self.name.as_deref())
    }

    /// Fills [`McpRequest::resolved_name`] for a resource URI.
    pub fn resolve_name(&mut self) {
        if self.op != Some(Method::ResourcesRead) {
            return;
        }
        if let Some(uri) = &self.name {
            match super::uri::normalize(uri) {
                Ok(n) => self.resolved_name = Some(n),
                Err(_) => self.name_ambiguous = true,
            }
        }
    }

    pub fn bodyless(session_id: Option<String>) -> Self {
        McpRequest {
            era: Era::Legacy,
            kind: MessageKind::Bodyless,
            id: None,
            method: None,
            op: None,
            name: None,
            resolved_name: None,
            name_ambiguous: false,
            target: None,
            protocol_version: None,
            client_name: None,
            client_version: None,
            traceparent: None,
            tracestate: None,
            baggage: None,
            session_id,
            is_mrtr_retry: false,
            handles: Handles::default(),
        }
    }
}

/// A prompt or resource a request reaches without naming it in `Mcp-Name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The method that uses the item directly: `prompts/get` or `resources/read`.
    pub method: Method,
    /// As sent.
    pub name: String,
    /// A resource URI as the server resolves it (`None` for prompts, or when ambiguous).
    pub resolved: Option<String>,
    pub ambiguous: bool,
}

impl Target {
    pub fn new(method: Method, name: &str) -> Target {
        let mut t = Target { method, name: name.to_owned(), resolved: None, ambiguous: false };
        if method == Method::ResourcesRead {
            match super::uri::normalize(name) {
                Ok(n) => t.resolved = Some(n),
                Err(_) => t.ambiguous = true,
            }
        }
        t
    }

    /// The name policy matches on.
    pub fn policy_name(&self) -> &str {
        self.resolved.as_deref().unwrap_or(&self.name)
    }
}

/// Which params field mirrors into `Mcp-Name` for a method, per spec §5.1 and the tasks extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    Name,
    Uri,
    TaskId,
}

pub fn name_source(method: Method) -> Option<NameSource> {
    match method {
        Method::ToolsCall | Method::PromptsGet => Some(NameSource::Name),
        Method::ResourcesRead => Some(NameSource::Uri),
        Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => Some(NameSource::TaskId),
        _ => None,
    }
}
