//! [`Metrics`] over Envoy stats: each distinct stat name is defined once per VM and cached.
//! Names are bounded by construction (see `mcp_warden_core::metrics`), so the cache is too.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::types::MetricType;

use super::abi;
use mcp_warden_core::metrics::stat_name;
use mcp_warden_core::ports::Metrics;

thread_local! {
    static IDS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

fn id_of(kind: MetricType, name: String) -> Option<u32> {
    IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if let Some(id) = ids.get(&name) {
            return Some(*id);
        }
        let id = abi::define_metric(kind, &name).ok()?;
        ids.insert(name, id);
        Some(id)
    })
}

/// Defines [`mcp_warden_core::metrics::DEFINED_AT_START`], so they read 0 until they count.
pub fn define_at_start() {
    for name in mcp_warden_core::metrics::DEFINED_AT_START {
        let _ = id_of(MetricType::Counter, (*name).to_owned());
    }
}

/// Envoy stats. A failed stat update is dropped: metrics never fail a request.
pub struct EnvoyMetrics;

impl Metrics for EnvoyMetrics {
    fn count(&mut self, base: &'static str, labels: &[(&str, &str)]) {
        if let Some(id) = id_of(MetricType::Counter, stat_name(base, labels)) {
            let _ = abi::increment_metric(id, 1);
        }
    }

    fn add(&mut self, base: &'static str, n: u64) {
        if let Some(id) = id_of(MetricType::Counter, base.to_owned()) {
            let _ = abi::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn record(&mut self, base: &'static str, labels: &[(&str, &str)], value: u64) {
        if let Some(id) = id_of(MetricType::Histogram, stat_name(base, labels)) {
            let _ = abi::record_metric(id, value);
        }
    }
}
