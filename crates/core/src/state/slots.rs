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
}

/// A fixed-size table of slots under one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    /// Short table name in the key, e.g. `rl`.
    pub name: &'static str,
    pub capacity: u32,
    /// Slots probed per key (clamped to `capacity`).
    pub ways: u32,
}

const MAGIC: [u8; 3] = *b"MW1";
/// Value of a slot that exists but holds nothing (written by [`SlotTable::init`]).
pub const EMPTY_SLOT: &[u8] = b"MW1-";
/// magic(3) + key hash(16) + last_used(8) + payload len(2).
const HEADER: usize = 3 + 16 + 8 + 2;

struct Entry {
    key_hash: [u8; 16],
    last_used: u64,
    payload: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    if bytes.get(..3)? != MAGIC {
        return None;
    }
    let key_hash: [u8; 16] = bytes.get(3..19)?.try_into().ok()?;
    let last_used = u64::from_le_bytes(bytes.get(19..27)?.try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(bytes.get(27..29)?.try_into().ok()?));
    let payload = bytes.get(HEADER..HEADER + len)?.to_vec();
    Some(Entry { key_hash, last_used, payload })
}

fn encode(key_hash: &[u8; 16], last_used: u64, payload: &[u8]) -> Result<Vec<u8>, StoreError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreError::TooLarge);
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(key_hash);
    out.extend_from_slice(&last_used.to_le_bytes());
    out.extend_from_slice(&u16::try_from(payload.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// What the probe found for a logical key.
enum Target {
    Own { slot: u32, cas: Cas, payload: Vec<u8> },
    Free { slot: u32, cas: Option<Cas> },
}

impl SlotTable {
    pub fn new(name: &'static str, capacity: u32, ways: u32) -> SlotTable {
        SlotTable { name, capacity: capacity.clamp(1, MAX_CAPACITY), ways: ways.max(1) }
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

    /// The shared-data key of a slot: `mcpw/v1/<name>/<slot>`.
    pub fn slot_key(&self, slot: u32) -> String {
        format!("mcpw/v1/{}/{slot}", self.name)
    }

    fn hash(&self, logical_key: &[u8]) -> ([u8; 16], u32) {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(logical_key);
        let d = h.finalize();
        let mut kh = [0u8; 16];
        for (dst, src) in kh.iter_mut().zip(d.iter()) {
            *dst = *src;
        }
        let mut home = [0u8; 8];
        for (dst, src) in home.iter_mut().zip(d.iter().skip(16)) {
            *dst = *src;
        }
        let home = u64::from_le_bytes(home) % u64::from(self.capacity);
        (kh, u32::try_from(home).unwrap_or(0))
    }

    fn probe<K: Kv + ?Sized>(
        &self,
        kv: &K,
        key_hash: &[u8; 16],
        home: u32,
        cost: &dyn Fn(&[u8]) -> u64,
    ) -> Result<Target, StoreError> {
        let ways = self.ways.min(self.capacity);
        let mut empty: Option<u32> = None;
        // (slot, cas, eviction cost, last used)
        let mut victim: Option<(u32, Cas, u64, u64)> = None;
        for i in 0..ways {
            let slot = u32::try_from((u64::from(home) + u64::from(i)) % u64::from(self.capacity)).unwrap_or(0);
            match kv.get(&self.slot_key(slot)).map_err(StoreError::Kv)? {
                None => {
                    if empty.is_none() {
                        empty = Some(slot);
                    }
                }
                Some((bytes, cas)) => match decode(&bytes) {
                    Some(e) if e.key_hash == *key_hash => return Ok(Target::Own { slot, cas, payload: e.payload }),
                    Some(e) => {
                        let c = cost(&e.payload);
                        if victim.is_none_or(|(_, _, vc, vt)| (c, e.last_used) < (vc, vt)) {
                            victim = Some((slot, cas, c, e.last_used));
                        }
                    }
                    // The empty marker, or unreadable (older layout, foreign writer): free to
                    // reuse, guarded by its cas.
                    None => {
                        if victim.is_none_or(|(_, _, vc, vt)| (0, 0) < (vc, vt)) {
                            victim = Some((slot, cas, 0, 0));
                        }
                    }
                },
            }
        }
        if let Some(slot) = empty {
            return Ok(Target::Free { slot, cas: None });
        }
        match victim {
            Some((slot, cas, _, _)) => Ok(Target::Free { slot, cas: Some(cas) }),
            None => Ok(Target::Free { slot: home, cas: None }),
        }
    }

    /// Reads, transforms and writes the payload of `logical_key`.
    ///
    /// `f` gets the current payload (`None` for a key not in the table) and returns the new
    /// payload (`None` = leave the store as it is) and a result. `cost` scores what is lost by
    /// overwriting another key's payload (0 = nothing). `f` may run several times (once per
    /// attempt); only the last attempt's result is returned.
    pub fn update<K, T, F>(
        &self,
        kv: &mut K,
        logical_key: &[u8],
        now_ms: u64,
        cost: &dyn Fn(&[u8]) -> u64,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        K: Kv + ?Sized,
        F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
    {
        let (key_hash, home) = self.hash(logical_key);
        for _ in 0..MAX_CAS_RETRIES {
            let (slot, cas, current) = match self.probe(kv, &key_hash, home, cost)? {
                Target::Own { slot, cas, payload } => (slot, Some(cas), Some(payload)),
                Target::Free { slot, cas } => (slot, cas, None),
            };
            let (new, out) = f(current.as_deref());
            let Some(new) = new else { return Ok(out) };
            let bytes = encode(&key_hash, now_ms, &new)?;
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
        let (key_hash, home) = self.hash(logical_key);
        match self.probe(kv, &key_hash, home, &|_| 0)? {
            Target::Own { payload, .. } => Ok(Some(payload)),
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
