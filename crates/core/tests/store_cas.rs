//! The shared slot table under contention and at scale: CAS retries with a fake KV that lets
//! another "worker" write between our read and our write, and 100 000 distinct principals driven
//! through a small table without growing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::RefCell;

use mcp_warden_core::fake_host::FakeKv;
use mcp_warden_core::ports::{Cas, Kv, KvError};
use mcp_warden_core::state::ratelimit::{self, take, Quota};
use mcp_warden_core::state::slots::{SlotTable, StoreError, MAX_CAS_RETRIES};

/// A KV where, before each of our CAS writes, a competing worker takes a token from the same
/// bucket (the classic lost-update interleaving), `interleave` times in total.
struct RacingKv {
    inner: RefCell<FakeKv>,
    interleave: u32,
    table: SlotTable,
    quota: Quota,
    now: u64,
    competitor_allowed: u32,
}

impl Kv for RacingKv {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError> {
        self.inner.borrow().get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), KvError> {
        if self.interleave > 0 && cas.is_some() {
            self.interleave -= 1;
            let d = take(&mut *self.inner.borrow_mut(), &self.table, "shared", &self.quota, self.now).unwrap();
            if d.allowed {
                self.competitor_allowed += 1;
            }
        }
        self.inner.borrow_mut().set(key, value, cas)
    }
}

#[test]
fn concurrent_writers_never_lose_a_token() {
    let quota = Quota { rate: 1, period_ms: 60_000, burst: 10 };
    let table = ratelimit::table(64);
    let mut kv = RacingKv {
        inner: RefCell::new(FakeKv::new()),
        interleave: 0,
        table: table.clone(),
        quota,
        now: 1_000,
        competitor_allowed: 0,
    };
    // Create the bucket first so later writes are CAS writes.
    assert!(take(&mut kv, &table, "shared", &quota, 1_000).unwrap().allowed);
    kv.interleave = 5;
    let mut ours = 1;
    for _ in 0..20 {
        if take(&mut kv, &table, "shared", &quota, 1_000).unwrap().allowed {
            ours += 1;
        }
    }
    let total = ours + kv.competitor_allowed;
    assert_eq!(total, 10, "ours {ours} + competitor {}: exactly the burst, no lost update", kv.competitor_allowed);
    assert!(kv.competitor_allowed >= 1);
    assert!(kv.inner.borrow().mismatches >= 1, "the interleaving really happened");
}

#[test]
fn after_init_even_the_first_write_is_protected() {
    // Without `init`, a competitor creating the same bucket between our read (absent) and our
    // write would be overwritten (Envoy cannot create keys conditionally). With every slot
    // pre-created, our first write is a CAS write and the race is caught.
    let quota = Quota { rate: 1, period_ms: 60_000, burst: 3 };
    let table = ratelimit::table(8);
    let mut kv = RacingKv {
        inner: RefCell::new(FakeKv::new()),
        interleave: 0,
        table: table.clone(),
        quota,
        now: 1_000,
        competitor_allowed: 0,
    };
    table.init(&mut *kv.inner.borrow_mut()).unwrap();
    kv.interleave = 1;
    assert!(take(&mut kv, &table, "shared", &quota, 1_000).unwrap().allowed);
    assert_eq!(kv.competitor_allowed, 1);
    let mut ours = 1;
    for _ in 0..5 {
        if take(&mut kv, &table, "shared", &quota, 1_000).unwrap().allowed {
            ours += 1;
        }
    }
    assert_eq!(ours + kv.competitor_allowed, 3, "exactly the burst across both writers");
    assert_eq!(kv.inner.borrow().len(), 8);
}

#[test]
fn bounded_retries_then_contention_error() {
    let table = ratelimit::table(16);
    let q = Quota { rate: 100, period_ms: 1000, burst: 100 };
    let mut kv = FakeKv::new();
    take(&mut kv, &table, "k", &q, 0).unwrap();
    kv.fail_next_cas = MAX_CAS_RETRIES - 1;
    assert!(take(&mut kv, &table, "k", &q, 0).unwrap().allowed, "succeeds on the last attempt");
    kv.fail_next_cas = MAX_CAS_RETRIES;
    assert_eq!(take(&mut kv, &table, "k", &q, 0), Err(StoreError::Contention));
    assert_eq!(kv.fail_next_cas, 0);
}

#[test]
fn host_errors_surface() {
    struct Broken;
    impl Kv for Broken {
        fn get(&self, _: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError> {
            Err(KvError::Host(5))
        }
        fn set(&mut self, _: &str, _: &[u8], _: Option<Cas>) -> Result<(), KvError> {
            Err(KvError::Host(5))
        }
    }
    let q = Quota { rate: 1, period_ms: 1000, burst: 1 };
    assert_eq!(take(&mut Broken, &ratelimit::table(4), "k", &q, 0), Err(StoreError::Kv(KvError::Host(5))));
}

#[test]
fn hundred_thousand_principals_stay_within_capacity() {
    const CAPACITY: u32 = 1024;
    let table = ratelimit::table(CAPACITY);
    let mut kv = FakeKv::new();
    let q = Quota { rate: 1, period_ms: 60_000, burst: 5 };
    let mut now = 1_000_000u64;
    for i in 0..100_000u32 {
        now += 1;
        let d = take(&mut kv, &table, &format!("principal-{i}"), &q, now).unwrap();
        assert!(d.allowed, "a new principal always starts with a full bucket");
    }
    assert!(kv.len() <= CAPACITY as usize, "{} keys", kv.len());
    // Fixed-size keys and values: memory is capacity × (key + value), whatever the traffic.
    let max_entry = kv.keys().map(str::len).max().unwrap() + 29 + 32;
    assert!(kv.bytes() <= CAPACITY as usize * max_entry, "{} bytes", kv.bytes());
    assert!(kv.keys().all(|k| k.starts_with("mcpw/v1/rl/")));
}

#[test]
fn a_hot_key_survives_a_flood_of_one_shot_keys() {
    // The hot principal is limited; a flood of other principals must not evict its bucket while
    // idle slots are available (refilled buckets are reused first).
    let table = SlotTable::new("rl", 64, 4);
    let mut kv = FakeKv::new();
    let hot = Quota { rate: 1, period_ms: 3_600_000, burst: 1 };
    let cold = Quota { rate: 1000, period_ms: 1000, burst: 1000 };
    assert!(take(&mut kv, &table, "hot", &hot, 0).unwrap().allowed);
    for i in 0..10_000u64 {
        // Each cold bucket is full again 1 ms later, so it is the one to reuse.
        take(&mut kv, &table, &format!("cold-{i}"), &cold, 10 + i * 10).unwrap();
        assert!(!take(&mut kv, &table, "hot", &hot, 10 + i * 10 + 5).unwrap().allowed, "hot bucket lost at {i}");
    }
    assert!(kv.len() <= 64);
}

#[test]
fn a_full_table_evicts_the_calmest_bucket_not_the_limited_one() {
    // No bucket is ever full again here, so every new key must evict someone: the victim is the
    // bucket closest to full, never the one deep in debt that limits the hot caller.
    let table = SlotTable::new("rl", 32, 4);
    let mut kv = FakeKv::new();
    let hot = Quota { rate: 1, period_ms: 3_600_000, burst: 1 };
    let cold = Quota { rate: 1, period_ms: 60_000, burst: 5 };
    assert!(take(&mut kv, &table, "hot", &hot, 0).unwrap().allowed);
    for i in 0..5_000u64 {
        take(&mut kv, &table, &format!("cold-{i}"), &cold, i).unwrap();
        assert!(!take(&mut kv, &table, "hot", &hot, i).unwrap().allowed, "hot bucket evicted at {i}");
    }
    assert!(kv.len() <= 32);
}
