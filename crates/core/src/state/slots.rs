//! Bounded state over a key-value store with compare-and-swap (Envoy shared data).
//!
//! Envoy shared data is per process, shared by all worker VMs, and its keys can never be
//! deleted. So state lives in fixed-size **slot tables**: a logical key is hashed to a home slot
//! and probed over [`SlotTable::ways`] neighbours; the value records the logical key's hash so a
//! collision is detected, never confused. When every probed slot is taken by another key, the
//! entry whose loss costs least is reused: the owner scores each payload (0 = holds nothing worth
//! keeping, e.g. a refilled bucket; a rate limiter scores a bucket by how far it is from full, so
//! a flood of new keys evicts the calmest buckets, never the one limiting an abuser), ties going
//! to the least recently written. However many principals pass through, at most
//! `capacity` keys `mcpw/v1/<table>/<slot>` exist, each with a value of bounded size.
//!
//! Updates are optimistic: read (value, cas), compute, write with that cas; on a mismatch (another
//! worker wrote in between) start again, at most [`MAX_CAS_RETRIES`] times.
//!
//! Envoy cannot create a key conditionally (a write to an absent key ignores the cas), so two
//! workers that both find a slot absent could both "create" it and one update would be lost.
//! [`SlotTable::init`] closes that window: run once per VM at configuration time, it writes an
//! empty marker into every absent slot, after which every write to the table is a CAS write.

use sha2::{Digest, Sha256};

use crate::fnv;
use crate::ports::{Cas, Kv, KvError};

/// Attempts per update before giving up with [`StoreError::Contention`].
pub const MAX_CAS_RETRIES: u32 = 8;

/// Largest payload a slot holds (bytes).
pub const MAX_PAYLOAD: usize = 256;

/// Largest table an operator may configure.
pub const MAX_CAPACITY: u32 = 1 << 20;

/// Why an update did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Every attempt met a concurrent write.
    Contention,
    /// The store failed.
    Kv(KvError),
    /// The payload was larger than [`MAX_PAYLOAD`].
    TooLarge,
    /// Every slot of the key's window holds something the table may not evict for it
    /// ([`NEVER_EVICT`], or a live entry for [`SlotTable::update_without_eviction`]).
    Full,
}

/// An eviction cost that means "never": evidence a table must keep (a baseline that saw a change).
pub const NEVER_EVICT: u64 = u64::MAX;

/// A fixed-size table of slots under one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    /// Short table name in the key, e.g. `rl`.
    pub name: &'static str,
    pub capacity: u32,
    /// Slots probed per key (clamped to `capacity`).
    pub ways: u32,
    pub identity: Identity,
}

const MAGIC: [u8; 3] = *b"MW1";
/// The layout of tables that name their keys exactly ([`Identity::Exact`]).
const MAGIC_EXACT: [u8; 3] = *b"MW2";
/// Value of a slot that exists but holds nothing (written by [`SlotTable::init`]).
pub const EMPTY_SLOT: &[u8] = b"MW1-";
/// magic(3) + key hash(16) + last_used(8) + payload len(2).
const HEADER: usize = 3 + 16 + 8 + 2;
/// Logical keys up to this long are stored as they are by an exact table; longer ones by digest.
const MAX_EXACT_KEY: usize = 96;

/// How a table tells one logical key from another in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// By the first 16 bytes of SHA-256 over (table, key); the home slot from the next 8.
    Digest,
    /// By the key itself (its SHA-256 when longer than [`MAX_EXACT_KEY`]); the home slot from
    /// FNV-1a. No hash to compute on the read path: for tables read on every request (tool
    /// baselines). A key chosen to land in a given window can only make that window evict
    /// (cheapest first), never be mistaken for another key.
    Exact,
}

/// A slot's value, read in place.
struct Entry<'b> {
    key_id: &'b [u8],
    last_used: u64,
    payload: &'b [u8],
}

fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
    let (key_id, rest) = match bytes.get(..3)? {
        m if m == MAGIC => (bytes.get(3..19)?, bytes.get(19..)?),
        m if m == MAGIC_EXACT => {
            let n = usize::from(*bytes.get(3)?);
            (bytes.get(4..4 + n)?, bytes.get(4 + n..)?)
        }
        _ => return None,
    };
    let last_used = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(rest.get(8..10)?.try_into().ok()?));
    let payload = rest.get(10..10 + len)?;
    Some(Entry { key_id, last_used, payload })
}

fn encode(identity: Identity, key_id: &[u8], last_used: u64, payload: &[u8]) -> Result<Vec<u8>, StoreError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreError::TooLarge);
    }
    let mut out = Vec::with_capacity(HEADER + key_id.len() + payload.len());
    match identity {
        Identity::Digest => out.extend_from_slice(&MAGIC),
        Identity::Exact => {
            out.extend_from_slice(&MAGIC_EXACT);
            out.push(u8::try_from(key_id.len()).map_err(|_| StoreError::TooLarge)?);
        }
    }
    out.extend_from_slice(key_id);
    out.extend_from_slice(&last_used.to_le_bytes());
    out.extend_from_slice(&u16::try_from(payload.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// How a slot names its logical key (see [`Identity`]), without an allocation.
enum KeyId<'k> {
    Borrowed(&'k [u8]),
    Inline([u8; 17], usize),
}

impl KeyId<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            KeyId::Borrowed(k) => k,
            KeyId::Inline(id, n) => id.get(..*n).unwrap_or_default(),
        }
    }
}

/// What the probe found for a logical key.
enum Target {
    /// The key's slot, with the whole value as read (its payload is [`payload_of`] it).
    Own { slot: u32, cas: Cas, value: Vec<u8> },
    /// A slot to write, and what overwriting it loses (0: nothing).
    Free { slot: u32, cas: Option<Cas>, cost: u64 },
}

/// The payload inside a value [`decode`] accepted.
fn payload_of(value: &[u8]) -> &[u8] {
    decode(value).map(|e| e.payload).unwrap_or_default()
}

/// Digits of a slot number, written into `buf` from its end; returns where they start.
fn slot_digits(mut n: u32, buf: &mut [u8; 10]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            return i;
        }
    }
}

impl SlotTable {
    pub fn new(name: &'static str, capacity: u32, ways: u32) -> SlotTable {
        SlotTable { name, capacity: capacity.clamp(1, MAX_CAPACITY), ways: ways.max(1), identity: Identity::Digest }
    }

    /// A table that names its keys exactly ([`Identity::Exact`]).
    pub fn exact(name: &'static str, capacity: u32, ways: u32) -> SlotTable {
        SlotTable { identity: Identity::Exact, ..SlotTable::new(name, capacity, ways) }
    }

    /// Writes [`EMPTY_SLOT`] into every slot that does not exist yet, so that later updates are
    /// all CAS writes (see the module doc). Idempotent; the host calls it once per VM when the
    /// configuration is loaded (it costs `capacity` reads). Returns how many slots it created.
    pub fn init<K: Kv + ?Sized>(&self, kv: &mut K) -> Result<u32, StoreError> {
        let mut created = 0;
        for slot in 0..self.capacity {
            let key = self.slot_key(slot);
            if kv.get(&key).map_err(StoreError::Kv)?.is_none() {
                kv.set(&key, EMPTY_SLOT, None).map_err(StoreError::Kv)?;
                created += 1;
            }
        }
        Ok(created)
    }

    /// The shared-data key of a slot: `mcpw/v1/<name>/<slot>` (built by hand: every probe
    /// builds one, and the formatting machinery costs more than the lookup it names).
    pub fn slot_key(&self, slot: u32) -> String {
        let mut buf = [0u8; 96];
        self.slot_key_in(slot, &mut buf).to_owned()
    }

    /// [`SlotTable::slot_key`] written into `buf`, no allocation (table names are short ASCII).
    fn slot_key_in<'b>(&self, slot: u32, buf: &'b mut [u8; 96]) -> &'b str {
        let mut digits = [0u8; 10];
        let at = slot_digits(slot, &mut digits);
        let parts: [&[u8]; 4] = [b"mcpw/v1/", self.name.as_bytes(), b"/", digits.get(at..).unwrap_or_default()];
        let mut n = 0;
        for part in parts {
            for b in part {
                if let Some(d) = buf.get_mut(n) {
                    *d = *b;
                    n += 1;
                }
            }
        }
        std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default()
    }

    fn digest(&self, logical_key: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(logical_key);
        h.finalize().into()
    }

    /// How the table names `logical_key` in a slot, and its home slot.
    fn hash<'k>(&self, logical_key: &'k [u8]) -> (KeyId<'k>, u32) {
        let (id, home) = match self.identity {
            Identity::Digest => {
                let d = self.digest(logical_key);
                let mut id = [0u8; 17];
                let mut home = [0u8; 8];
                for (dst, src) in id.iter_mut().zip(d.iter()) {
                    *dst = *src;
                }
                for (dst, src) in home.iter_mut().zip(d.iter().skip(16)) {
                    *dst = *src;
                }
                (KeyId::Inline(id, 16), u64::from_le_bytes(home))
            }
            Identity::Exact => {
                let h = fnv::extend(fnv::extend(fnv::extend(fnv::OFFSET, self.name.as_bytes()), &[0]), logical_key);
                // The key itself; a long key (or one that starts with 0xFF, which UTF-8 text
                // never does) as 0xFF + 16 bytes of its digest, so the two forms never meet.
                let id = if logical_key.len() <= MAX_EXACT_KEY && logical_key.first() != Some(&0xFF) {
                    KeyId::Borrowed(logical_key)
                } else {
                    let mut id = [0xFFu8; 17];
                    for (dst, src) in id.iter_mut().skip(1).zip(self.digest(logical_key).iter()) {
                        *dst = *src;
                    }
                    KeyId::Inline(id, 17)
                };
                (id, h)
            }
        };
        (id, u32::try_from(home % u64::from(self.capacity)).unwrap_or(0))
    }

    fn probe<K: Kv + ?Sized>(&self, kv: &K, key_id: &[u8], home: u32, cost: &dyn Fn(&[u8]) -> u64) -> Result<Target, StoreError> {
        let ways = self.ways.min(self.capacity);
        let mut empty: Option<u32> = None;
        // (slot, cas, eviction cost, last used)
        let mut victim: Option<(u32, Cas, u64, u64)> = None;
        for i in 0..ways {
            let slot = u32::try_from((u64::from(home) + u64::from(i)) % u64::from(self.capacity)).unwrap_or(0);
            let mut buf = [0u8; 96];
            match kv.get(self.slot_key_in(slot, &mut buf)).map_err(StoreError::Kv)? {
                // A slot never written, or written empty, ends the probe: every update of this
                // window takes the first such slot (nothing costs less to overwrite), and slots
                // never become empty again, so the key is not further on. A miss in a sparse
                // table costs one read.
                None => {
                    empty = Some(slot);
                    break;
                }
                Some((bytes, cas)) => match decode(&bytes) {
                    Some(e) if e.key_id == key_id => return Ok(Target::Own { slot, cas, value: bytes }),
                    Some(e) => {
                        let c = cost(e.payload);
                        if victim.is_none_or(|(_, _, vc, vt)| (c, e.last_used) < (vc, vt)) {
                            victim = Some((slot, cas, c, e.last_used));
                        }
                    }
                    // The empty marker, or unreadable (older layout, foreign writer): free to
                    // reuse, guarded by its cas; the probe ends here (see above).
                    None => {
                        if victim.is_none_or(|(_, _, vc, vt)| (0, 0) < (vc, vt)) {
                            victim = Some((slot, cas, 0, 0));
                        }
                        break;
                    }
                },
            }
        }
        if let Some(slot) = empty {
            return Ok(Target::Free { slot, cas: None, cost: 0 });
        }
        match victim {
            Some((slot, cas, cost, _)) => Ok(Target::Free { slot, cas: Some(cas), cost }),
            None => Ok(Target::Free { slot: home, cas: None, cost: 0 }),
        }
    }

    /// Reads, transforms and writes the payload of `logical_key`.
    ///
    /// `f` gets the current payload (`None` for a key not in the table) and returns the new
    /// payload (`None` = leave the store as it is) and a result. `cost` scores what is lost by
    /// overwriting another key's payload (0 = nothing). `f` may run several times (once per
    /// attempt); only the last attempt's result is returned.
    /// An entry scored [`NEVER_EVICT`] is never overwritten for another key
    /// ([`StoreError::Full`] when the whole window holds such entries).
    pub fn update<K, T, F>(
        &self,
        kv: &mut K,
        logical_key: &[u8],
        now_ms: u64,
        cost: &dyn Fn(&[u8]) -> u64,
        f: F,
    ) -> Result<T, StoreError>
    where
        K: Kv + ?Sized,
        F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
    {
        self.update_inner(kv, logical_key, now_ms, cost, f, NEVER_EVICT)
    }

    /// [`SlotTable::update`] that creates the key only in a slot whose loss costs nothing
    /// (empty, expired): a key nobody vouched for (an id first seen in a request) must not push
    /// out a live one. With the window full, `f`'s result for an absent key is returned and
    /// nothing is written.
    pub fn update_without_eviction<K, T, F>(
        &self,
        kv: &mut K,
        logical_key: &[u8],
        now_ms: u64,
        cost: &dyn Fn(&[u8]) -> u64,
        f: F,
    ) -> Result<T, StoreError>
    where
        K: Kv + ?Sized,
        F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
    {
        self.update_inner(kv, logical_key, now_ms, cost, f, 1)
    }

    fn update_inner<K, T, F>(
        &self,
        kv: &mut K,
        logical_key: &[u8],
        now_ms: u64,
        cost: &dyn Fn(&[u8]) -> u64,
        mut f: F,
        refuse_at: u64,
    ) -> Result<T, StoreError>
    where
        K: Kv + ?Sized,
        F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
    {
        let (key_id, home) = self.hash(logical_key);
        for _ in 0..MAX_CAS_RETRIES {
            let (slot, cas, current, loss) = match self.probe(kv, key_id.as_slice(), home, cost)? {
                Target::Own { slot, cas, value } => (slot, Some(cas), Some(value), 0),
                Target::Free { slot, cas, cost } => (slot, cas, None, cost),
            };
            let (new, out) = f(current.as_deref().map(payload_of));
            let Some(new) = new else { return Ok(out) };
            if loss >= refuse_at {
                return if refuse_at == NEVER_EVICT { Err(StoreError::Full) } else { Ok(out) };
            }
            let bytes = encode(self.identity, key_id.as_slice(), now_ms, &new)?;
            match kv.set(&self.slot_key(slot), &bytes, cas) {
                Ok(()) => return Ok(out),
                Err(KvError::CasMismatch) => continue,
                Err(e) => return Err(StoreError::Kv(e)),
            }
        }
        Err(StoreError::Contention)
    }

    /// The payload of `logical_key`, if it is in the table.
    pub fn read<K: Kv + ?Sized>(&self, kv: &K, logical_key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_with(kv, logical_key, <[u8]>::to_vec)
    }

    /// `f` of the payload of `logical_key`, if it is in the table (read in place: no copy).
    pub fn read_with<K: Kv + ?Sized, T>(
        &self,
        kv: &K,
        logical_key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        let (key_id, home) = self.hash(logical_key);
        match self.probe(kv, key_id.as_slice(), home, &|_| 0)? {
            Target::Own { value, .. } => Ok(Some(f(payload_of(&value)))),
            Target::Free { .. } => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeKv;

    fn bump(kv: &mut FakeKv, t: &SlotTable, key: &str) -> Result<u64, StoreError> {
        t.update(kv, key.as_bytes(), 0, &|_| 0, |cur| {
            let n = cur.and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0) + 1;
            (Some(n.to_le_bytes().to_vec()), n)
        })
    }

    #[test]
    fn counts_per_key() {
        let t = SlotTable::new("t", 64, 4);
        let mut kv = FakeKv::new();
        assert_eq!(bump(&mut kv, &t, "a"), Ok(1));
        assert_eq!(bump(&mut kv, &t, "a"), Ok(2));
        assert_eq!(bump(&mut kv, &t, "b"), Ok(1));
        assert!(kv.keys().all(|k| k.starts_with("mcpw/v1/t/")));
    }

    #[test]
    fn exact_tables_tell_keys_apart_by_the_key_and_long_keys_by_digest() {
        let t = SlotTable::exact("t", 64, 4);
        let mut kv = FakeKv::new();
        t.init(&mut kv).unwrap();
        let long = "x".repeat(200);
        for k in ["a", "b", long.as_str()] {
            bump(&mut kv, &t, k).unwrap();
        }
        assert_eq!(bump(&mut kv, &t, "a"), Ok(2));
        assert_eq!(bump(&mut kv, &t, &long), Ok(2));
        assert_eq!(t.read(&kv, b"c"), Ok(None));
        assert!(kv.keys().all(|k| k.starts_with("mcpw/v1/t/")));
    }

    #[test]
    fn slot_keys_name_table_and_slot() {
        let t = SlotTable::new("tool", MAX_CAPACITY, 4);
        for (slot, want) in
            [(0, "mcpw/v1/tool/0"), (7, "mcpw/v1/tool/7"), (10, "mcpw/v1/tool/10"), (1_048_575, "mcpw/v1/tool/1048575")]
        {
            assert_eq!(t.slot_key(slot), want);
        }
        assert_eq!(t.slot_key(u32::MAX), format!("mcpw/v1/tool/{}", u32::MAX));
    }

    #[test]
    fn a_miss_in_a_sparse_table_reads_one_slot_and_never_skips_a_key() {
        let t = SlotTable::new("t", 64, 4);
        let mut kv = FakeKv::new();
        t.init(&mut kv).unwrap();
        assert_eq!(t.read(&kv, b"absent"), Ok(None));
        // Keys that share windows are all found again, whichever slot of the window they took
        // (live entries cost something to evict, as every owner scores them).
        let put =
            |kv: &mut FakeKv, key: &str| t.update(kv, key.as_bytes(), 1, &|_| 1, |_| (Some(1u64.to_le_bytes().to_vec()), ()));
        for i in 0..16 {
            put(&mut kv, &format!("k{i}")).unwrap();
        }
        for i in 0..16 {
            assert_eq!(t.read(&kv, format!("k{i}").as_bytes()), Ok(Some(1u64.to_le_bytes().to_vec())), "k{i}");
        }
        // A full table still answers misses (after probing the whole window).
        for i in 16..200 {
            put(&mut kv, &format!("k{i}")).unwrap();
        }
        assert_eq!(t.read(&kv, b"absent"), Ok(None));
    }

    #[test]
    fn init_creates_every_slot_once() {
        let t = SlotTable::new("t", 16, 4);
        let mut kv = FakeKv::new();
        assert_eq!(t.init(&mut kv), Ok(16));
        assert_eq!(bump(&mut kv, &t, "a"), Ok(1));
        assert_eq!(t.init(&mut kv), Ok(0), "idempotent, and never touches a live slot");
        assert_eq!(bump(&mut kv, &t, "a"), Ok(2));
        assert_eq!(kv.len(), 16);
    }

    #[test]
    fn retries_then_gives_up() {
        let t = SlotTable::new("t", 8, 2);
        let mut kv = FakeKv::new();
        bump(&mut kv, &t, "a").unwrap();
        kv.fail_next_cas = 3;
        assert_eq!(bump(&mut kv, &t, "a"), Ok(2));
        kv.fail_next_cas = MAX_CAS_RETRIES;
        assert_eq!(bump(&mut kv, &t, "a"), Err(StoreError::Contention));
    }
}
