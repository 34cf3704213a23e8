//! Token buckets (rate + burst) as pure functions of (state, quota, now), plus [`take`], which
//! keeps the state in a shared [`SlotTable`] so all worker VMs of an Envoy process share a bucket.
//!
//! The bucket is kept as GCRA's "theoretical arrival time" (one number; exactly equivalent to a
//! token bucket refilled continuously at `rate / period` up to `burst`). Arithmetic is integer:
//! time is scaled by `rate`, so one token costs exactly `period_ms` scaled units and nothing is
//! lost to rounding. Time is an input in milliseconds.

use super::slots::{SlotTable, StoreError};
use crate::ports::Kv;

/// Largest `rate` accepted per period.
pub const MAX_RATE: u64 = 1_000_000;
/// Largest period (one day).
pub const MAX_PERIOD_MS: u64 = 86_400_000;
/// Largest burst.
pub const MAX_BURST: u64 = 10_000_000;
/// Ways probed in the rate-limit slot table.
pub const RL_WAYS: u32 = 4;

/// `rate` tokens every `period_ms`, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub rate: u64,
    pub period_ms: u64,
    pub burst: u64,
}

/// A bucket's state: the theoretical arrival time, in ms × rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub tat: u128,
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Whole tokens left after this request (0 when refused).
    pub remaining: u64,
    /// When refused: milliseconds until one token is available.
    pub retry_after_ms: u64,
}

impl RateDecision {
    /// Seconds for `Retry-After` (rounded up, at least 1 when refused, 0 when allowed).
    pub fn retry_after_secs(&self) -> u64 {
        if self.allowed {
            0
        } else {
            self.retry_after_ms.div_ceil(1000).max(1)
        }
    }
}

impl Quota {
    fn interval(&self) -> u128 {
        u128::from(self.period_ms.max(1))
    }

    fn scaled(&self, now_ms: u64) -> u128 {
        u128::from(now_ms) * u128::from(self.rate.max(1))
    }

    /// True when a bucket holds nothing worth keeping (it is full again).
    pub fn is_full(&self, b: &Bucket, now_ms: u64) -> bool {
        b.tat <= self.scaled(now_ms)
    }
}

/// Takes one token. Pure: returns the decision and the new state (unchanged when refused).
pub fn check(state: Option<Bucket>, quota: &Quota, now_ms: u64) -> (RateDecision, Bucket) {
    let now = quota.scaled(now_ms);
    let t = quota.interval();
    let tau = t * u128::from(quota.burst.max(1));
    let tat = state.map_or(now, |b| b.tat.max(now));
    let new_tat = tat + t;
    let used = new_tat - now;
    if used > tau {
        let wait = used - tau;
        let rate = u128::from(quota.rate.max(1));
        let ms = wait.div_ceil(rate);
        let d = RateDecision { allowed: false, remaining: 0, retry_after_ms: u64::try_from(ms).unwrap_or(u64::MAX) };
        return (d, Bucket { tat });
    }
    let remaining = u64::try_from((tau - used) / t).unwrap_or(u64::MAX);
    (RateDecision { allowed: true, remaining, retry_after_ms: 0 }, Bucket { tat: new_tat })
}

/// Payload: rate(8) + period(8) + tat(16). A payload written under another quota is a fresh
/// bucket (the scale differs).
fn encode(q: &Quota, b: &Bucket) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    v.extend_from_slice(&q.rate.to_le_bytes());
    v.extend_from_slice(&q.period_ms.to_le_bytes());
    v.extend_from_slice(&b.tat.to_le_bytes());
    v
}

fn decode(q: &Quota, bytes: &[u8]) -> Option<Bucket> {
    let rate = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let period = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    if rate != q.rate || period != q.period_ms {
        return None;
    }
    Some(Bucket { tat: u128::from_le_bytes(bytes.get(16..32)?.try_into().ok()?) })
}

/// What evicting a stored bucket (under any quota) loses: milliseconds until it is full again
/// (0 = full: nothing is lost). A bucket deep in debt, i.e. one limiting a heavy caller, is the
/// last to go.
fn eviction_cost(bytes: &[u8], now_ms: u64) -> u64 {
    let (Some(rate), Some(tat)) = (
        bytes.get(0..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes),
        bytes.get(16..32).and_then(|b| b.try_into().ok()).map(u128::from_le_bytes),
    ) else {
        return 0;
    };
    let debt = tat.saturating_sub(u128::from(now_ms) * u128::from(rate.max(1))) / u128::from(rate.max(1));
    u64::try_from(debt).unwrap_or(u64::MAX)
}

/// The rate-limit slot table for a configured capacity: keys `mcpw/v1/rl/<slot>`.
pub fn table(capacity: u32) -> SlotTable {
    SlotTable::new("rl", capacity, RL_WAYS)
}

/// Takes one token from the shared bucket `key`. On [`StoreError`] the caller decides (the rule's
/// `on_store_error`: refuse by default, or let through; counted either way).
pub fn take<K: Kv + ?Sized>(
    kv: &mut K,
    table: &SlotTable,
    key: &str,
    quota: &Quota,
    now_ms: u64,
) -> Result<RateDecision, StoreError> {
    let cost = move |b: &[u8]| eviction_cost(b, now_ms);
    table.update(kv, key.as_bytes(), now_ms, &cost, |cur| {
        let state = cur.and_then(|b| decode(quota, b));
        let (d, next) = check(state, quota, now_ms);
        let write = if d.allowed { Some(encode(quota, &next)) } else { None };
        (write, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let q = Quota { rate: 2, period_ms: 1000, burst: 3 };
        let mut s = None;
        for expect_left in [2, 1, 0] {
            let (d, b) = check(s, &q, 0);
            assert!(d.allowed);
            assert_eq!(d.remaining, expect_left);
            s = Some(b);
        }
        let (d, _) = check(s, &q, 0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 500);
        assert_eq!(d.retry_after_secs(), 1);
        let (d, _) = check(s, &q, 500);
        assert!(d.allowed);
    }
}
