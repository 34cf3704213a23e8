//! Metric names (the one place they are spelled) and how labels travel in a stat name. The
//! recording port is [`crate::ports::Metrics`].
//!
//! Labels travel inside the stat name as `.<label>.<value>` pairs after the base name; the
//! `stats_tags` block shipped in every `envoy/*.yaml` (and documented for Istio) turns them into
//! Prometheus labels, so `/stats/prometheus` shows e.g.
//! `mcp_warden_requests_total{era="modern",method="tools/call",decision="allow"}`.
//! Label values come from closed sets (a method outside [`crate::mcp::Method`] is `other`, a
//! rule id is bounded by the policy), so a client cannot grow the number of stats.

/// Requests seen, by era, MCP method and decision (`allow`, `deny`, `hide`, `rate_limited`,
/// `kill`, `invalid`).
pub const REQUESTS: &str = "mcp_warden_requests_total";
/// Requests denied by policy, by rule (`default` for the default action).
pub const DENIALS: &str = "mcp_warden_denials_total";
/// Requests answered 429, by rule.
pub const RATE_LIMITED: &str = "mcp_warden_rate_limited_total";
/// Requests stopped by the kill switch, by scope (`all`, `upstream`, `tool`, `method`, `principal`).
pub const KILL_SWITCH_BLOCKS: &str = "mcp_warden_kill_switch_blocks_total";
/// Legacy sessions presented by a principal other than the one that opened them (answered 404).
pub const SESSION_HIJACKS: &str = "mcp_warden_session_hijacks_total";
/// Tasks presented by a principal other than the one that created them (answered as unknown).
pub const TASK_HIJACKS: &str = "mcp_warden_task_hijacks_total";
/// Requests refused by what the filter remembers across requests, by why (`entropy_budget`,
/// `escalation`, `tool_chain`, `fragmented_secret`, `mesh_budget`, `mesh_unavailable`).
pub const CORRELATION_BLOCKS: &str = "mcp_warden_correlation_blocks_total";
/// Confirmations (`action: "confirm"`), by outcome: `asked`, `approved`, `unconfirmed` (let
/// through under `confirm.unsupported: allow`), or why none was given (`declined`, `cancelled`,
/// `rejected`, `unsupported`, `forged`, `expired`, `replayed`, `caller`, `call`, `arguments`,
/// `ambiguous`, `unavailable`).
pub const CONFIRMATIONS: &str = "mcp_warden_confirmations_total";
/// Calls to the mesh-wide rate limit service, by outcome (`ok`, `over_limit`, `failed`).
pub const MESH_CHECKS: &str = "mcp_warden_mesh_checks_total";
/// Dry-run rules that would have acted, by rule.
pub const DRY_RUN_HITS: &str = "mcp_warden_dry_run_hits_total";
/// Requests rejected by wire validation, by kind (`RejectKind::label`).
pub const VALIDATION_FAILURES: &str = "mcp_warden_validation_failures_total";
/// Shared state that could not be read or written: rate-limit buckets (refused with 429, or let
/// through when the rule says `on_store_error: allow`), session and task owners (refused),
/// baselines (the tool counts as unknown; a list passes unlearned).
pub const STORE_ERRORS: &str = "mcp_warden_store_errors_total";
/// Findings, by inspector, finding and severity: the response inspectors', and the request
/// path's tool-integrity and task checks (inspector `tool_baseline`, `task_binding`).
pub const FINDINGS: &str = "mcp_warden_findings_total";
/// Host calls that failed inside the filter, by call (the request got a 500, or an inspected
/// response was withheld).
pub const HOST_ERRORS: &str = "mcp_warden_host_errors_total";
/// Time spent in the filter per request, microseconds (histogram).
pub const FILTER_TIME_US: &str = "mcp_warden_filter_time_us";
/// Configurations refused at load (the last good one stayed in force).
pub const CONFIG_REJECTED: &str = "mcp_warden_config_rejected_total";
/// Control endpoint polls that failed (the last good state stayed in force).
pub const CONTROL_POLL_FAILURES: &str = "mcp_warden_control_poll_failures_total";
/// Control endpoint documents installed.
pub const CONTROL_UPDATES: &str = "mcp_warden_control_updates_total";

/// Receipts signed and chained by the writer (chain-open receipts included).
pub const RECEIPTS_SIGNED: &str = "mcp_warden_receipts_signed_total";
/// Exchanges the writer could not receipt because its export buffer was full (the next receipt
/// carries the count, signed).
pub const RECEIPTS_DROPPED: &str = "mcp_warden_receipts_dropped_total";
/// Receipts the sink acknowledged.
pub const RECEIPTS_EXPORTED: &str = "mcp_warden_receipts_exported_total";
/// Export calls that failed (retried with backoff).
pub const RECEIPT_EXPORT_FAILURES: &str = "mcp_warden_receipt_export_failures_total";
/// Queue messages the writer could not read (a different filter version).
pub const RECEIPT_DECODE_ERRORS: &str = "mcp_warden_receipt_decode_errors_total";
/// Receipts the sink refused (OTLP partial success).
pub const RECEIPTS_SINK_REJECTED: &str = "mcp_warden_receipts_sink_rejected_total";
/// Exchanges the request path could not hand to a writer (none deployed, or queue error).
pub const RECEIPTS_UNQUEUED: &str = "mcp_warden_receipts_unqueued_total";
/// Exchanges the writer, behind, exported as digest entries of a checkpoint batch instead of
/// signing each (every one is covered by its batch's signed checkpoint).
pub const RECEIPTS_DIGESTED: &str = "mcp_warden_receipts_digested_total";
/// Checkpoint receipts chained (also counted in `mcp_warden_receipts_signed_total`).
pub const RECEIPT_CHECKPOINTS: &str = "mcp_warden_receipt_checkpoints_total";

/// Gauge: heap in use inside the filter's request VMs, summed over them (each moves it by its own
/// change, in steps of 16 KiB). A leak inside the filter shows here, where Envoy's own
/// `server.memory_allocated` does not look.
pub const VM_HEAP_BYTES: &str = "mcp_warden_vm_heap_bytes";

/// The counters without labels a request VM defines when it loads a configuration, so they read
/// 0 (not absent) until they count: a dashboard, or a test asserting "no store errors", can tell
/// "none happened" from "no such metric".
pub const DEFINED_AT_START: &[&str] =
    &[STORE_ERRORS, SESSION_HIJACKS, TASK_HIJACKS, CONFIG_REJECTED, CONTROL_POLL_FAILURES, CONTROL_UPDATES, RECEIPTS_UNQUEUED];

/// The conventions' histogram [`crate::semconv::SERVER_OPERATION_DURATION`] (milliseconds, Envoy's
/// unit for durations), by `mcp.method.name`, `gen_ai.tool.name` (tools/call, bounded by
/// [`ToolLabels`]) and `error.type` (present only when the operation failed).
pub use crate::semconv::SERVER_OPERATION_DURATION as OPERATION_DURATION;

/// Most tool names one VM gives a label of their own.
pub const MAX_TOOL_LABELS: usize = 64;

/// The tool names one VM labels its metrics with: a name gets its own label once the filter read
/// the upstream's answer to a call of it and the answer was no error (a tool the upstream does
/// not have is an error), while fewer than [`MAX_TOOL_LABELS`] have one; every other name is
/// [`crate::semconv::OTHER`]. Tool names are the client's to choose: this is what keeps them from
/// growing the number of stats, or taking the labels real tools need.
#[derive(Debug, Default)]
pub struct ToolLabels {
    names: std::collections::HashSet<String>,
}

impl ToolLabels {
    /// The label for `name`; `answered` admits a new name while there is room.
    pub fn label<'a>(&mut self, name: &'a str, answered: bool) -> &'a str {
        if self.names.contains(name) {
            return name;
        }
        if answered && self.names.len() < MAX_TOOL_LABELS {
            self.names.insert(name.to_owned());
            return name;
        }
        crate::semconv::OTHER
    }
}

/// `base.label1.value1.label2.value2`: the stat name Envoy's tag extraction splits into labels.
/// Dots inside values would break the split, so they become `_`.
pub fn stat_name(base: &str, labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    write_stat_name(&mut s, base, labels);
    s
}

/// [`stat_name`] into `out` (cleared first): the host keeps one buffer and looks the name up
/// without allocating one per count.
pub fn write_stat_name(out: &mut String, base: &str, labels: &[(&str, &str)]) {
    out.clear();
    out.push_str(base);
    for (k, v) in labels {
        out.push('.');
        out.push_str(k);
        out.push('.');
        if v.contains('.') {
            out.extend(v.chars().map(|c| if c == '.' { '_' } else { c }));
        } else {
            out.push_str(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_labels_are_bounded_and_only_for_answered_tools() {
        let mut labels = ToolLabels::default();
        assert_eq!(labels.label("invented", false), "_OTHER");
        assert_eq!(labels.label("echo", true), "echo");
        assert_eq!(labels.label("echo", false), "echo"); // once labelled, an error keeps the label
        for i in 0..MAX_TOOL_LABELS * 2 {
            labels.label(&format!("t{i}"), true);
        }
        assert_eq!(labels.names.len(), MAX_TOOL_LABELS);
        assert_eq!(labels.label("late", true), "_OTHER");
    }

    #[test]
    fn names_are_splittable() {
        assert_eq!(
            stat_name(REQUESTS, &[("era", "modern"), ("method", "tools/call"), ("decision", "allow")]),
            "mcp_warden_requests_total.era.modern.method.tools/call.decision.allow"
        );
        assert_eq!(stat_name(DENIALS, &[("rule", "a.b")]), "mcp_warden_denials_total.rule.a_b");
    }
}
