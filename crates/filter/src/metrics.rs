//! [`Metrics`] over Envoy stats: each distinct stat name is defined once per VM and cached.
//! Names are bounded by construction (see `mcp_warden_core::metrics`), so the cache is too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use proxy_wasm::types::MetricType;

use super::abi;
use mcp_warden_core::fnv::Fnv;
use mcp_warden_core::metrics::write_stat_name;
use mcp_warden_core::ports::Metrics;

thread_local! {
    /// FNV-1a: the keys are the filter's own bounded stat names, looked up several times per
    /// request; SipHash's per-byte cost showed in the profile and its flood resistance buys
    /// nothing here (no client chooses how many names exist).
    static IDS: RefCell<HashMap<String, u32, BuildHasherDefault<Fnv>>> = RefCell::new(HashMap::default());
    /// The name being looked up, reused so that a count allocates nothing once its stat exists.
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

fn id_of(kind: MetricType, name: &str) -> Option<u32> {
    IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        let id = abi::define_metric(kind, name).ok()?;
        ids.insert(name.to_owned(), id);
        Some(id)
    })
}

/// The id of the stat `base` with `labels`.
fn labelled_id(kind: MetricType, base: &str, labels: &[(&str, &str)]) -> Option<u32> {
    NAME.with(|name| {
        let mut name = name.borrow_mut();
        write_stat_name(&mut name, base, labels);
        id_of(kind, &name)
    })
}

/// Defines [`mcp_warden_core::metrics::DEFINED_AT_START`], so they read 0 until they count.
pub fn define_at_start() {
    for name in mcp_warden_core::metrics::DEFINED_AT_START {
        let _ = id_of(MetricType::Counter, name);
    }
}

/// Envoy stats. A failed stat update is dropped: metrics never fail a request.
pub struct EnvoyMetrics;

impl Metrics for EnvoyMetrics {
    fn count(&mut self, base: &'static str, labels: &[(&str, &str)]) {
        if let Some(id) = labelled_id(MetricType::Counter, base, labels) {
            let _ = abi::increment_metric(id, 1);
        }
    }

    fn add(&mut self, base: &'static str, n: u64) {
        if let Some(id) = id_of(MetricType::Counter, base) {
            let _ = abi::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn record(&mut self, base: &'static str, labels: &[(&str, &str)], value: u64) {
        if let Some(id) = labelled_id(MetricType::Histogram, base, labels) {
            let _ = abi::record_metric(id, value);
        }
    }
}
