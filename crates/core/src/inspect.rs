//! Response inspection, as an interface: what an inspector sees, what it may do to a message, and
//! the findings it reports. The pipeline that feeds inspectors (JSON bodies whole, SSE streams
//! event by event) is [`crate::flow::response`]; inspectors live with the capability they serve
//! (list filtering in [`crate::policy::lists`], later tool integrity and content scanning) and
//! never import `flow`: they report, and the flow alone turns findings into actions, metrics and
//! receipt fields.

use crate::mcp::checked::unambiguous_object;
use crate::mcp::model::McpRequest;
use crate::ports::{Fault, Kv};
use crate::principal::Principal;

/// The exchange a response belongs to, as the request path decided it.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeView<'a> {
    pub request: &'a McpRequest,
    pub principal: &'a Principal,
    /// [`Principal::key`]: what per-principal state is keyed by.
    pub principal_key: &'a str,
    pub upstream: &'a str,
    /// When the message passes (ms).
    pub now_ms: u64,
}

/// What an inspector does with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Pass it as it is.
    Keep,
    /// Pass these bytes instead (still one valid JSON-RPC message).
    Replace(Vec<u8>),
}

/// How bad a finding is (receipt `severity`, metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What the inspector's own configuration asks for when it finds something. The flow carries it
/// out: `Block` replaces the message (or ends the stream) with a JSON-RPC error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Record it; the message passes (possibly rewritten by the inspector).
    Report,
    /// The message must not reach the client.
    Block,
}

/// One thing an inspector found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The inspector (receipt `layer`, metric label), e.g. `lists`.
    pub inspector: &'static str,
    /// What was found (receipt `pattern`, metric label), from a closed set per inspector.
    pub what: &'static str,
    pub severity: Severity,
    /// The data class for receipts' `data_classes_out` (e.g. `credential`), when there is one.
    pub data_class: Option<&'static str>,
    /// Whose fault: an upstream serving it, or a client sending it.
    pub fault: Fault,
    pub disposition: Disposition,
}

impl Finding {
    /// `inspector` could not read or write shared data: counted, and the message follows the
    /// inspector's failure mode.
    pub fn store_error(inspector: &'static str, disposition: Disposition) -> Finding {
        Finding { inspector, what: "store_error", severity: Severity::Warning, data_class: None, fault: Fault::Host, disposition }
    }

    /// An answer `inspector` must read and cannot: the upstream's fault, and it must not pass.
    pub fn unreadable(inspector: &'static str, what: &'static str) -> Finding {
        Finding {
            inspector,
            what,
            severity: Severity::High,
            data_class: None,
            fault: Fault::Upstream,
            disposition: Disposition::Block,
        }
    }
}

/// `message` as one JSON object with one reading ([`unambiguous_object`]), or `None` after
/// recording that `inspector` must withhold it (an answer it must read and cannot).
pub fn read_object(inspector: &'static str, message: &[u8], findings: &mut Vec<Finding>) -> Option<serde_json::Value> {
    let parsed = if unambiguous_object(message) { serde_json::from_slice(message).ok() } else { None };
    if parsed.is_none() {
        findings.push(Finding::unreadable(inspector, "unreadable_message"));
    }
    parsed
}

/// True when `message` may hold `literal` once its JSON escapes are decoded: it holds it as is,
/// or it holds an escape at all (`"task\u0049d"` and `"a\/b"` read as `taskId` and `a/b`). The
/// cheap test before a full parse, that an escaped spelling cannot walk around.
pub fn may_mention(message: &[u8], literal: &[u8]) -> bool {
    message.contains(&b'\\') || (!literal.is_empty() && message.windows(literal.len()).any(|w| w == literal))
}

/// One response inspector. It is fed complete JSON-RPC messages: a whole JSON body, or the data
/// of one SSE event, in order; each inspector sees what the previous one let through.
pub trait Inspector {
    /// Short name (findings' `inspector`, logs).
    fn name(&self) -> &'static str;
    /// Inspects one message; findings are appended to `findings`. `state` is shared data, for
    /// the inspectors that remember (baselines, task owners); a failed store call is a
    /// [`Finding::store_error`], never a silent pass.
    fn inspect(
        &mut self,
        exchange: &ExchangeView<'_>,
        message: &[u8],
        state: &mut dyn Kv,
        findings: &mut Vec<Finding>,
    ) -> Rewrite;

    /// True when this inspector also reads answers that are not JSON-RPC messages: a non-2xx
    /// answer's text body (an upstream's error page, which an SDK hands on as the error's text).
    fn reads_text(&self) -> bool {
        false
    }

    /// Inspects such a text body (only called when [`Inspector::reads_text`]).
    fn inspect_text(&mut self, _exchange: &ExchangeView<'_>, _text: &[u8], _findings: &mut Vec<Finding>) -> Rewrite {
        Rewrite::Keep
    }
}
