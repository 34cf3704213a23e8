//! Metric names (the one place they are spelled) and the recording trait.
//!
//! Names follow Envoy's stats conventions; tags are embedded with Envoy's `tag=value` dot-free
//! form so Prometheus output at the admin endpoint carries them as labels. Natively the recorder
//! is a no-op or a test double.

/// Requests seen, tagged by era and JSON-RPC method family.
pub const REQUESTS: &str = "mcp_warden_requests_total";
/// Requests rejected by wire validation, tagged by kind (see `RejectKind::label`).
pub const VALIDATION_FAILURES: &str = "mcp_warden_validation_failures_total";
/// Configurations refused at load (the last good one stayed in force).
pub const CONFIG_REJECTED: &str = "mcp_warden_config_rejected_total";

/// Where the flow records what happened.
pub trait Metrics {
    fn request(&mut self, era: &str, decision: &str);
    fn validation_failure(&mut self, kind: &str);
}

/// Discards everything (native runs, unit tests).
#[derive(Debug, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn request(&mut self, _: &str, _: &str) {}
    fn validation_failure(&mut self, _: &str) {}
}
