//! Baselines: what a tool definition (or a `ui://` template) was when the filter first trusted
//! it, kept in shared data per (upstream, scope, name) instead of per session, so every request on
//! every worker is checked against the same record whatever replica served the list.
//!
//! A record holds the **trusted** fingerprint (the first one seen, or the one seen after the
//! record expired), the last **seen** one when it differs, and since when it differs. A change is
//! sticky: once a list showed another definition, the record says "changed since T" until it
//! expires, even if a later list shows the trusted definition again (two upstream replicas, one
//! honest and one swapped, must not take turns clearing it). Every list that shows the trusted
//! definition again confirms it and pushes the expiry out by the record's lifetime; a record
//! nobody confirms expires, and the next list is trusted afresh (how an operator accepts a change
//! without a pin: README, "Accepting a changed tool").
//!
//! Tables (bounded slot tables, `mcpw/v1/<table>/<slot>`): `tool` for tool definitions, `ui` for
//! `ui://` templates, `tlc` for the last `notifications/tools/list_changed` per upstream.
//! A scope is `public` (an answer with `cacheScope: "public"`: the same for every principal) or
//! the principal's key (`private` answers, and legacy answers, which carry no scope).

use super::slots::{SlotTable, StoreError};
use crate::ports::Kv;

/// Ways probed in the baseline tables.
pub const BASELINE_WAYS: u32 = 4;

/// A baseline's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Public,
    Principal(&'a str),
}

/// What a record is about: one name (tool, template URI, list page) of one upstream in one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub upstream: &'a str,
    pub scope: Scope<'a>,
    pub name: &'a str,
}

/// The record of one (upstream, scope, name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baseline {
    pub trusted: [u8; 16],
    /// When the trusted fingerprint was first seen.
    pub trusted_since_ms: u64,
    /// The last fingerprint seen that is not the trusted one (`== trusted` while unchanged).
    pub seen: [u8; 16],
    /// When a list first showed another definition (0: never, since it was trusted).
    pub changed_at_ms: u64,
    /// When the trusted definition was last seen.
    pub confirmed_ms: u64,
    /// The record expires here unless confirmed again.
    pub expires_ms: u64,
    /// The trusted definition's categories from its annotations (chain detection reads them
    /// with the baseline the call-time check reads anyway); 0 for none.
    pub categories: u8,
}

impl Baseline {
    pub fn changed(&self) -> bool {
        self.changed_at_ms != 0
    }
}

/// What one observation of a definition found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// No record (or an expired one): this definition is trusted from now on.
    New,
    /// The trusted definition again.
    Same,
    /// Another definition than the trusted one (`first`: this observation is the first that
    /// showed a change).
    Changed { since_ms: u64, first: bool },
}

const LEN: usize = 16 + 8 + 16 + 8 + 8 + 8 + 1;

fn encode(b: &Baseline) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(&b.trusted);
    out.extend_from_slice(&b.trusted_since_ms.to_le_bytes());
    out.extend_from_slice(&b.seen);
    out.extend_from_slice(&b.changed_at_ms.to_le_bytes());
    out.extend_from_slice(&b.confirmed_ms.to_le_bytes());
    out.extend_from_slice(&b.expires_ms.to_le_bytes());
    out.push(b.categories);
    out
}

fn decode(bytes: &[u8]) -> Option<Baseline> {
    let u64_at = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
    Some(Baseline {
        trusted: bytes.get(..16)?.try_into().ok()?,
        trusted_since_ms: u64_at(16)?,
        seen: bytes.get(24..40)?.try_into().ok()?,
        changed_at_ms: u64_at(40)?,
        confirmed_ms: u64_at(48)?,
        expires_ms: u64_at(56)?,
        // Absent in records written before categories were kept.
        categories: bytes.get(64).copied().unwrap_or(0),
    })
}

/// The logical key of (upstream, scope, name).
fn key(upstream: &str, scope: Scope<'_>, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(upstream.len() + name.len() + 16);
    k.extend_from_slice(upstream.as_bytes());
    k.push(0);
    match scope {
        Scope::Public => k.extend_from_slice(b"*"),
        Scope::Principal(p) => {
            k.push(b'p');
            k.extend_from_slice(p.as_bytes());
        }
    }
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// What evicting a record loses: nothing once expired; a record that saw a change is evidence
/// and is never evicted for another key while it lives (a flood of new names cannot erase it;
/// they go unlearned instead, counted as store errors).
fn eviction_cost(now_ms: u64) -> impl Fn(&[u8]) -> u64 {
    move |bytes: &[u8]| match decode(bytes) {
        Some(b) if b.expires_ms > now_ms && b.changed() => super::slots::NEVER_EVICT,
        Some(b) if b.expires_ms > now_ms => 1,
        _ => 0,
    }
}

/// One baseline table (`tool` or `ui`) of a configured capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baselines {
    pub table: SlotTable,
}

impl Baselines {
    /// Read on every `tools/call`: keys named exactly, no hash on the read path.
    pub fn tools(capacity: u32) -> Baselines {
        Baselines { table: SlotTable::exact("tool", capacity, BASELINE_WAYS) }
    }

    pub fn templates(capacity: u32) -> Baselines {
        Baselines { table: SlotTable::exact("ui", capacity, BASELINE_WAYS) }
    }

    /// Records that `subject` was just seen with fingerprint `seen` (and, for a tool, the
    /// `categories` its annotations name); `lifetime_ms` is how long the record lives past this
    /// confirmation.
    pub fn observe<K: Kv + ?Sized>(
        &self,
        kv: &mut K,
        subject: Subject<'_>,
        (seen, categories): ([u8; 16], u8),
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<Observed, StoreError> {
        let expires_ms = now_ms.saturating_add(lifetime_ms);
        let logical = key(subject.upstream, subject.scope, subject.name);
        self.table.update(kv, &logical, now_ms, &eviction_cost(now_ms), |cur| {
            match cur.and_then(decode).filter(|b| b.expires_ms > now_ms) {
                None => {
                    let b = Baseline {
                        trusted: seen,
                        trusted_since_ms: now_ms,
                        seen,
                        changed_at_ms: 0,
                        confirmed_ms: now_ms,
                        expires_ms,
                        categories,
                    };
                    (Some(encode(&b)), Observed::New)
                }
                Some(mut b) if b.trusted == seen => {
                    b.categories = categories;
                    b.confirmed_ms = now_ms;
                    b.expires_ms = expires_ms;
                    let out =
                        if b.changed() { Observed::Changed { since_ms: b.changed_at_ms, first: false } } else { Observed::Same };
                    (Some(encode(&b)), out)
                }
                Some(mut b) => {
                    let first = !b.changed();
                    if first {
                        b.changed_at_ms = now_ms.max(1);
                    }
                    b.seen = seen;
                    (Some(encode(&b)), Observed::Changed { since_ms: b.changed_at_ms, first })
                }
            }
        })
    }

    /// Marks `subject` changed since `since_ms` (another scope's record of the same tool saw the
    /// change): a record that did not exist is created already changed, so a call judged by it
    /// is refused like one judged by the record that saw the change.
    pub fn mark_changed<K: Kv + ?Sized>(
        &self,
        kv: &mut K,
        subject: Subject<'_>,
        seen: [u8; 16],
        since_ms: u64,
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<(), StoreError> {
        let logical = key(subject.upstream, subject.scope, subject.name);
        self.table.update(kv, &logical, now_ms, &eviction_cost(now_ms), |cur| {
            let mut b = cur.and_then(decode).filter(|b| b.expires_ms > now_ms).unwrap_or(Baseline {
                trusted: [0; 16],
                trusted_since_ms: since_ms,
                seen,
                changed_at_ms: 0,
                confirmed_ms: now_ms,
                expires_ms: now_ms.saturating_add(lifetime_ms),
                categories: 0,
            });
            if b.changed() {
                return (None, ());
            }
            b.changed_at_ms = since_ms.max(1);
            b.seen = seen;
            (Some(encode(&b)), ())
        })
    }

    /// The live record of (upstream, scope, name), if any.
    pub fn lookup<K: Kv + ?Sized>(
        &self,
        kv: &K,
        upstream: &str,
        scope: Scope<'_>,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<Baseline>, StoreError> {
        let found = self.table.read_with(kv, &key(upstream, scope, name), decode)?;
        Ok(found.flatten().filter(|b| b.expires_ms > now_ms))
    }

    /// The live record under the principal's scope, else under the public one. Every list the
    /// principal received wrote its own record (a public answer too), so the public one is read
    /// only by a principal that never listed: one read on the common path.
    pub fn lookup_any<K: Kv + ?Sized>(
        &self,
        kv: &K,
        upstream: &str,
        principal_key: &str,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<Baseline>, StoreError> {
        match self.lookup(kv, upstream, Scope::Principal(principal_key), name, now_ms)? {
            Some(b) => Ok(Some(b)),
            None => self.lookup(kv, upstream, Scope::Public, name, now_ms),
        }
    }
}

/// The process-wide filter of upstreams that have baselines at all: one shared-data key holding a
/// 2048-bit Bloom filter over upstream names (FNV-1a; a false positive only costs the lookup it
/// would have skipped). A call to an upstream nobody ever listed is judged unknown after one
/// read and no hashing; a worker caches a set bit ([`BaselinedUpstreams`]), since bits are
/// never cleared.
pub const UPSTREAM_FILTER_KEY: &str = "mcpw/v1/tup/0";
const FILTER_BYTES: usize = 256;

fn filter_bits(upstream: &str) -> [usize; 2] {
    let h = crate::fnv::hash(upstream.as_bytes());
    let bits = (FILTER_BYTES * 8) as u64;
    [(h % bits) as usize, ((h >> 32) % bits) as usize]
}

fn has_bits(filter: &[u8], bits: [usize; 2]) -> bool {
    bits.iter().all(|b| filter.get(b / 8).is_some_and(|byte| byte & (1 << (b % 8)) != 0))
}

/// Creates the filter key if absent (once per VM at configuration, like [`SlotTable::init`]), so
/// that every later write is a CAS write.
pub fn init_upstream_filter<K: Kv + ?Sized>(kv: &mut K) -> Result<(), StoreError> {
    if kv.get(UPSTREAM_FILTER_KEY).map_err(StoreError::Kv)?.is_none() {
        kv.set(UPSTREAM_FILTER_KEY, &[0u8; FILTER_BYTES], None).map_err(StoreError::Kv)?;
    }
    Ok(())
}

/// Records that `upstream` has baselines.
pub fn mark_upstream<K: Kv + ?Sized>(kv: &mut K, upstream: &str) -> Result<(), StoreError> {
    let bits = filter_bits(upstream);
    for _ in 0..super::slots::MAX_CAS_RETRIES {
        let (mut filter, cas) = match kv.get(UPSTREAM_FILTER_KEY).map_err(StoreError::Kv)? {
            Some((v, cas)) => (v, Some(cas)),
            None => (vec![0u8; FILTER_BYTES], None),
        };
        if has_bits(&filter, bits) {
            return Ok(());
        }
        filter.resize(FILTER_BYTES, 0);
        for b in bits {
            if let Some(byte) = filter.get_mut(b / 8) {
                *byte |= 1 << (b % 8);
            }
        }
        match kv.set(UPSTREAM_FILTER_KEY, &filter, cas) {
            Ok(()) => return Ok(()),
            Err(crate::ports::KvError::CasMismatch) => continue,
            Err(e) => return Err(StoreError::Kv(e)),
        }
    }
    Err(StoreError::Contention)
}

/// What one worker VM keeps of baselines between its streams, to spare shared-data reads: the
/// upstreams it saw marked as having baselines, and (`tool_integrity.baseline_cache_ms`)
/// baselines read a moment ago. Shared data stays the one authority.
#[derive(Debug, Default)]
pub struct BaselineCache {
    pub baselined: BaselinedUpstreams,
    pub recent: RecentBaselines,
}

/// The upstreams one worker VM has seen marked (bounded; never wrong, since marks stay).
#[derive(Debug, Default)]
pub struct BaselinedUpstreams {
    known: Vec<String>,
}

/// Upstreams one VM remembers as marked.
pub const BASELINED_CACHE_ENTRIES: usize = 64;

impl BaselinedUpstreams {
    /// True when `upstream` may have baselines: known to this VM, or marked in the filter.
    pub fn may_have<K: Kv + ?Sized>(&mut self, kv: &K, upstream: &str) -> Result<bool, StoreError> {
        if self.known.iter().any(|u| u == upstream) {
            return Ok(true);
        }
        let marked =
            kv.get(UPSTREAM_FILTER_KEY).map_err(StoreError::Kv)?.is_some_and(|(f, _)| has_bits(&f, filter_bits(upstream)));
        if marked && self.known.len() < BASELINED_CACHE_ENTRIES {
            self.known.push(upstream.to_owned());
        }
        Ok(marked)
    }
}

/// Baselines one worker VM read recently (`tool_integrity.baseline_cache_ms`): bounded, the
/// oldest entry makes room; an entry is reused only until its time is up.
#[derive(Debug, Default)]
pub struct RecentBaselines {
    /// (upstream, principal key, tool, the record as read, reusable until ms)
    entries: Vec<(String, String, String, Option<Baseline>, u64)>,
    next: usize,
}

/// Entries one VM keeps.
pub const RECENT_BASELINES: usize = 256;

impl RecentBaselines {
    pub fn get(&self, upstream: &str, principal_key: &str, tool: &str, now_ms: u64) -> Option<Option<Baseline>> {
        self.entries
            .iter()
            .find(|(u, p, t, _, until)| *until > now_ms && u == upstream && p == principal_key && t == tool)
            .map(|(_, _, _, b, _)| *b)
    }

    pub fn put(&mut self, upstream: &str, principal_key: &str, tool: &str, found: Option<Baseline>, until_ms: u64) {
        let entry = (upstream.to_owned(), principal_key.to_owned(), tool.to_owned(), found, until_ms);
        if let Some(e) = self.entries.iter_mut().find(|(u, p, t, _, _)| u == upstream && p == principal_key && t == tool) {
            *e = entry;
        } else if self.entries.len() < RECENT_BASELINES {
            self.entries.push(entry);
        } else if let Some(e) = self.entries.get_mut(self.next) {
            *e = entry;
            self.next = (self.next + 1) % RECENT_BASELINES;
        }
    }
}

/// Slots of the `tlc` table: one per upstream cluster behind the gateway.
pub const LIST_CHANGE_SLOTS: u32 = 256;

/// The table of the last `notifications/tools/list_changed` seen per upstream.
pub fn list_changes() -> SlotTable {
    SlotTable::new("tlc", LIST_CHANGE_SLOTS, BASELINE_WAYS)
}

/// Records that `upstream` announced its tool list changed.
pub fn mark_list_changed<K: Kv + ?Sized>(kv: &mut K, table: &SlotTable, upstream: &str, now_ms: u64) -> Result<(), StoreError> {
    table.update(kv, upstream.as_bytes(), now_ms, &|_| 1, |_| (Some(now_ms.to_le_bytes().to_vec()), ()))
}

/// When `upstream` last announced its tool list changed (`None`: never, as far as the table
/// knows).
pub fn list_changed_at<K: Kv + ?Sized>(kv: &K, table: &SlotTable, upstream: &str) -> Result<Option<u64>, StoreError> {
    let bytes = table.read(kv, upstream.as_bytes())?;
    Ok(bytes.and_then(|b| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeKv;
    use crate::state::slots::StoreError;

    const A: [u8; 16] = [1; 16];
    const B: [u8; 16] = [2; 16];

    #[test]
    fn a_change_is_sticky_until_the_record_expires_unconfirmed() {
        let (mut kv, t) = (FakeKv::new(), Baselines::tools(64));
        let me = Scope::Principal("alice");
        let obs = |kv: &mut FakeKv, h, now| {
            t.observe(kv, Subject { upstream: "up", scope: me, name: "echo" }, (h, 0), now, 1000).unwrap()
        };
        assert_eq!(obs(&mut kv, A, 10), Observed::New);
        assert_eq!(obs(&mut kv, A, 20), Observed::Same);
        assert_eq!(obs(&mut kv, B, 30), Observed::Changed { since_ms: 30, first: true });
        // The honest replica again: still changed (since 30), and confirmed.
        assert_eq!(obs(&mut kv, A, 40), Observed::Changed { since_ms: 30, first: false });
        assert_eq!(obs(&mut kv, B, 50), Observed::Changed { since_ms: 30, first: false });
        let b = t.lookup(&kv, "up", me, "echo", 60).unwrap().unwrap();
        assert_eq!((b.trusted, b.seen, b.changed_at_ms, b.trusted_since_ms), (A, B, 30, 10));
        // Nobody confirms A for a lifetime: B is trusted afresh.
        assert_eq!(t.lookup(&kv, "up", me, "echo", 1040).unwrap(), None);
        assert_eq!(obs(&mut kv, B, 1041), Observed::New);
        assert_eq!(obs(&mut kv, B, 1042), Observed::Same);
    }

    #[test]
    fn scopes_upstreams_and_names_are_separate_records() {
        let (mut kv, t) = (FakeKv::new(), Baselines::tools(64));
        t.observe(&mut kv, Subject { upstream: "up", scope: Scope::Public, name: "echo" }, (A, 0), 0, 100).unwrap();
        assert_eq!(
            t.observe(&mut kv, Subject { upstream: "up", scope: Scope::Principal("bob"), name: "echo" }, (B, 0), 0, 100),
            Ok(Observed::New)
        );
        assert_eq!(
            t.observe(&mut kv, Subject { upstream: "other", scope: Scope::Public, name: "echo" }, (B, 0), 0, 100),
            Ok(Observed::New)
        );
        assert_eq!(t.lookup_any(&kv, "up", "bob", "echo", 1).unwrap().map(|b| b.trusted), Some(B));
        assert_eq!(t.lookup_any(&kv, "up", "carol", "echo", 1).unwrap().map(|b| b.trusted), Some(A), "public serves everyone");
        assert_eq!(t.lookup_any(&kv, "up", "carol", "nope", 1).unwrap(), None);
        let m = list_changes();
        assert_eq!(list_changed_at(&kv, &m, "up"), Ok(None));
        mark_list_changed(&mut kv, &m, "up", 77).unwrap();
        assert_eq!(list_changed_at(&kv, &m, "up"), Ok(Some(77)));
    }

    #[test]
    fn the_upstream_filter_says_maybe_only_for_marked_upstreams_and_a_worker_remembers_it() {
        let mut kv = FakeKv::new();
        init_upstream_filter(&mut kv).unwrap();
        let mut vm = BaselinedUpstreams::default();
        assert_eq!(vm.may_have(&kv, "mcp_upstream"), Ok(false));
        mark_upstream(&mut kv, "mcp_upstream").unwrap();
        let writes = kv.writes;
        mark_upstream(&mut kv, "mcp_upstream").unwrap();
        assert_eq!(kv.writes, writes, "a set bit is not written again");
        assert_eq!(vm.may_have(&kv, "mcp_upstream"), Ok(true));
        assert_eq!(vm.may_have(&FakeKv::new(), "mcp_upstream"), Ok(true), "remembered without a read");
        let unmarked = (0..200).filter(|i| vm.may_have(&kv, &format!("other-{i}")) == Ok(false)).count();
        assert!(unmarked >= 198, "{unmarked}");
        assert_eq!(kv.len(), 1, "one key, whatever the number of upstreams");
    }

    #[test]
    fn the_table_stays_bounded_and_evicts_evidence_last() {
        let (mut kv, t) = (FakeKv::new(), Baselines::tools(8));
        t.table.init(&mut kv).unwrap();
        t.observe(&mut kv, Subject { upstream: "up", scope: Scope::Public, name: "victim" }, (A, 0), 0, 1_000_000).unwrap();
        t.observe(&mut kv, Subject { upstream: "up", scope: Scope::Public, name: "victim" }, (B, 0), 1, 1_000_000).unwrap();
        for i in 0..500 {
            t.observe(
                &mut kv,
                Subject { upstream: "up", scope: Scope::Public, name: &format!("flood-{i}") },
                (A, 0),
                2 + i,
                1_000_000,
            )
            .unwrap();
        }
        assert_eq!(kv.len(), 8);
        assert!(t.lookup(&kv, "up", Scope::Public, "victim", 600).unwrap().is_some_and(|b| b.changed()));
        // A window holding only changed records refuses a new name rather than forget one.
        let full = Baselines::tools(4);
        let mut kv = FakeKv::new();
        full.table.init(&mut kv).unwrap();
        for i in 0..4 {
            let at = Subject { upstream: "up", scope: Scope::Public, name: &format!("t{i}") };
            full.observe(&mut kv, at, (A, 0), 1, 1_000_000).unwrap();
            full.observe(&mut kv, at, (B, 0), 2, 1_000_000).unwrap();
        }
        let at = Subject { upstream: "up", scope: Scope::Public, name: "flood" };
        assert_eq!(full.observe(&mut kv, at, (A, 0), 3, 1_000_000), Err(StoreError::Full));
    }
}
