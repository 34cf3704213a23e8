//! The end of a stream: the compact [`Exchange`] record of what was decided (and what the
//! response inspectors found), handed to the receipt writer's queue. Every decision gets one;
//! one that cannot be queued is counted, never dropped silently.

use crate::inspect::Finding;
use crate::metrics;
use crate::policy::{Action, Verdict};
use crate::ports::{Metrics, ReceiptQueue};
use crate::receipt::exchange::{fingerprint, Exchange, WireVerdict};

use super::batch::RULE_NOT_DECIDED;
use super::reply;
use super::request::RequestFlow;

/// Facts the host measured about a finished exchange, for its receipt.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeStats {
    pub start_unix_nanos: u64,
    pub duration_micros: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Time spent inside the filter's callbacks, for the requests the host timed (it samples:
    /// timing is two clock reads per callback, host calls that cannot change a decision).
    pub filter_micros: Option<u64>,
}

impl RequestFlow {
    /// The stream is over: record the filter time (when it was measured), and queue the
    /// exchange's record when a writer is there to take it (no record is even built without one).
    pub fn on_log(&self, stats: ExchangeStats, queue: &mut dyn ReceiptQueue, m: &mut dyn Metrics) {
        if let Some(micros) = stats.filter_micros {
            m.record(metrics::FILTER_TIME_US, &[], micros);
        }
        self.record_operation(&stats, m);
        if !queue.ready() {
            m.count(metrics::RECEIPTS_UNQUEUED, &[]);
            return;
        }
        for exchange in self.exchanges(stats) {
            if queue.enqueue(&exchange.encode()).is_err() {
                m.count(metrics::RECEIPTS_UNQUEUED, &[]);
            }
        }
    }

    /// The records of this exchange: one, or one per element of a legacy batch (each with the
    /// element's own method, name, id and verdict; an element that was not decided because an
    /// earlier one refused the batch is a `block` by [`RULE_NOT_DECIDED`]).
    pub fn exchanges(&self, stats: ExchangeStats) -> Vec<Exchange> {
        let Some(base) = self.exchange(stats) else { return Vec::new() };
        let Some(o) = self.outcome().filter(|o| !o.batch.is_empty()) else { return vec![base] };
        o.batch
            .iter()
            .map(|el| {
                let mut e = base.clone();
                let r = &el.request;
                e.method = r.method.clone().unwrap_or_default();
                e.name = r.name.clone().unwrap_or_default();
                e.request_id = r.id.clone().unwrap_or_default();
                e.actor = r.client_name.clone().unwrap_or_default();
                let (verdict, rule) = match &el.verdict {
                    Some(v) => wire_verdict(v),
                    None => (WireVerdict::Block, RULE_NOT_DECIDED.to_owned()),
                };
                e.verdict = verdict;
                e.rule = rule;
                e
            })
            .collect()
    }

    /// The compact record of this exchange for the receipt writer; `None` when the filter never
    /// decided anything (e.g. the stream was reset before the request was complete).
    pub fn exchange(&self, stats: ExchangeStats) -> Option<Exchange> {
        let mut e = Exchange {
            duration_micros: stats.duration_micros,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
            ..Exchange::empty(stats.start_unix_nanos, WireVerdict::Block, &self.policy().hash)
        };
        if let Some(o) = self.outcome() {
            let r = &o.request;
            e.method = r.method.clone().unwrap_or_default();
            e.name = r.name.clone().unwrap_or_default();
            e.upstream = o.upstream.clone();
            e.principal = o.principal.id.clone();
            e.actor = r.client_name.clone().unwrap_or_default();
            e.delegation_chain = o.principal.actors.clone();
            e.request_id = r.id.clone().unwrap_or_default();
            e.traceparent = r.traceparent.clone().unwrap_or_default();
            e.protocol_version = r.protocol_version.clone().unwrap_or_default();
            e.era = r.era.as_str().to_owned();
            e.session = r.session_id.as_deref().map(fingerprint).unwrap_or_default();
            let (verdict, rule) = wire_verdict(&o.verdict);
            e.verdict = verdict;
            e.rule = rule;
            record_findings(&mut e, &self.findings());
            (e.error_code, e.tool_error, e.http_error, _) = self.outcome_of();
            return Some(e);
        }
        let r = self.rejection()?;
        (e.error_code, e.tool_error, e.http_error, _) = self.outcome_of();
        e.request_id = r.id.clone().unwrap_or_default();
        e.rule = format!("wire:{}", r.kind.label());
        e.severity = "invalid".to_owned();
        Some(e)
    }
}

impl RequestFlow {
    /// The error the client got: `(JSON-RPC code, tool error, HTTP status)`: the gateway's own
    /// refusal, else the error that stood in for a withheld answer, else what the upstream's
    /// answer said (as far as the response pipeline read it); and whether that answer was read
    /// and said no error (what lets a tool name have a metric label of its own).
    fn outcome_of(&self) -> (Option<i64>, bool, Option<u16>, bool) {
        if let Some(r) = self.rejection() {
            return (Some(i64::from(r.kind.jsonrpc_code())), false, None, false);
        }
        if let Some(code) = self.outcome().filter(|o| !o.answered_by_upstream).and_then(|o| reply::code(&o.verdict.action)) {
            return (Some(i64::from(code)), false, None, false);
        }
        if self.withheld() {
            return (Some(i64::from(reply::CODE_WITHHELD)), false, None, false);
        }
        let answer = self.answer();
        let served = answer.seen && answer.error_code.is_none() && !answer.tool_error && answer.http_error.is_none();
        (answer.error_code, answer.tool_error, answer.http_error, served)
    }

    /// One sample of the conventions' per-operation histogram (milliseconds), labelled by method,
    /// tool (bounded, see [`metrics::ToolLabels`]) and error type (a closed set of codes). A body-less legacy stream is no
    /// operation; a request refused on the wire has no method the filter can vouch for.
    fn record_operation(&self, stats: &ExchangeStats, m: &mut dyn Metrics) {
        use crate::semconv::{ERROR_TYPE, GEN_AI_TOOL_NAME, MCP_METHOD_NAME, OTHER};
        let (method, name) = match self.outcome() {
            Some(o) => match o.request.op {
                Some(op) => (op, o.request.name.as_deref()),
                None => return,
            },
            None if self.rejection().is_some() => (crate::mcp::Method::Other, None),
            None => return,
        };
        let (code, tool_error, http_error, served) = self.outcome_of();
        let error = crate::semconv::error_label(code, tool_error, http_error);
        let method_label = if method == crate::mcp::Method::Other { OTHER } else { method.as_str() };
        let mut labels: Vec<(&str, &str)> = vec![(MCP_METHOD_NAME, method_label)];
        if let (crate::mcp::Method::ToolsCall, Some(name)) = (method, name) {
            let tool = match self.vm_cache().try_borrow_mut() {
                Ok(mut vm) => vm.tool_labels.label(name, served),
                Err(_) => OTHER,
            };
            labels.push((GEN_AI_TOOL_NAME, tool));
        }
        if let Some(e) = &error {
            labels.push((ERROR_TYPE, e));
        }
        m.record(metrics::OPERATION_DURATION, &labels, stats.duration_micros / 1000);
    }
}

/// A verdict as the receipt states it: allow or block, and the rule (with why) that decided.
fn wire_verdict(v: &Verdict) -> (WireVerdict, String) {
    match &v.action {
        Action::Allow => (WireVerdict::Allow, v.rule_id.clone().unwrap_or_default()),
        Action::Deny { hide, .. } => {
            let id = v.rule_id.clone().unwrap_or_else(|| "default".to_owned());
            (WireVerdict::Block, if *hide { format!("{id}:hide") } else { id })
        }
        Action::RateLimited { .. } => (WireVerdict::Block, format!("{}:rate_limit", v.rule_id.as_deref().unwrap_or("default"))),
        Action::Kill { scope, .. } => (WireVerdict::Block, format!("kill_switch:{scope}")),
        Action::SessionNotFound => (WireVerdict::Block, "session:not_owner".to_owned()),
        Action::ToolChanged { .. } => (WireVerdict::Block, "tool_integrity".to_owned()),
        Action::ToolNotApproved { .. } => (WireVerdict::Block, "tool_integrity".to_owned()),
        Action::TaskNotFound { .. } => (WireVerdict::Block, "task:not_owner".to_owned()),
        Action::ContentBlocked { .. } => (WireVerdict::Block, "content_scan".to_owned()),
        Action::Correlated { why, .. } => (WireVerdict::Block, format!("correlation:{why}")),
        Action::ConfirmAsk { .. } => (WireVerdict::Ask, format!("{}:confirm", v.rule_id.as_deref().unwrap_or("confirm"))),
        Action::ConfirmRefused { why } => {
            (WireVerdict::Block, format!("{}:confirm_{why}", v.rule_id.as_deref().unwrap_or("confirm")))
        }
        Action::Confirm { .. } => {
            (WireVerdict::Block, format!("{}:confirm_unsupported", v.rule_id.as_deref().unwrap_or("confirm")))
        }
    }
}

/// Findings into the record: the most severe one names the `layer`, `pattern` and `severity`;
/// every data class is listed once in `data_classes_out`; a blocked response is a `block`.
fn record_findings(e: &mut Exchange, findings: &[Finding]) {
    let Some(worst) = findings.iter().max_by_key(|f| f.severity) else { return };
    e.severity = worst.severity.as_str().to_owned();
    e.layer = worst.inspector.to_owned();
    e.rule = if e.rule.is_empty() { worst.what.to_owned() } else { format!("{}:{}", e.rule, worst.what) };
    // What the client sent is `in`, what came back is `out`.
    for f in findings {
        let Some(class) = f.data_class else { continue };
        let list = if f.fault == crate::ports::Fault::Client { &mut e.data_classes_in } else { &mut e.data_classes_out };
        if !list.iter().any(|c| c == class) {
            list.push(class.to_owned());
        }
    }
    if findings.iter().any(|f| f.disposition == crate::inspect::Disposition::Block) {
        e.verdict = WireVerdict::Block;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Disposition, Severity};
    use crate::ports::Fault;

    fn finding(what: &'static str, severity: Severity, class: Option<&'static str>, disposition: Disposition) -> Finding {
        Finding { inspector: "scan", what, severity, data_class: class, fault: Fault::Upstream, disposition }
    }

    #[test]
    fn the_worst_finding_names_the_record_and_every_data_class_is_listed_once() {
        let mut e = Exchange::decode(br#"{"v":1,"unix_nanos":0,"method":"tools/call","name":"t","upstream":"u","principal":"p","actor":"","delegation_chain":[],"request_id":"1","verdict":"allow","rule":"","severity":"","data_classes_in":[],"data_classes_out":[],"policy_hash":"h","traceparent":"","duration_micros":0,"bytes_in":0,"bytes_out":0}"#).unwrap();
        record_findings(&mut e, &[]);
        assert_eq!((e.severity.as_str(), e.layer.as_str(), e.verdict), ("", "", WireVerdict::Allow), "no findings, no change");
        let findings = [
            finding("email", Severity::Warning, Some("pii"), Disposition::Report),
            finding("aws_key", Severity::Critical, Some("credential"), Disposition::Block),
            finding("phone", Severity::Warning, Some("pii"), Disposition::Report),
        ];
        record_findings(&mut e, &findings);
        assert_eq!(e.severity, "critical");
        assert_eq!(e.layer, "scan");
        assert_eq!(e.rule, "aws_key");
        assert_eq!(e.data_classes_out, ["pii", "credential"]);
        assert_eq!(e.verdict, WireVerdict::Block);
        assert_eq!(e.to_record(String::new()).layer, "scan");
    }
}
