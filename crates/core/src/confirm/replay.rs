//! Each confirmation is good for one retry: the nonces of used states, per pod, in a bounded
//! slot table (`mcpw/v1/cfm/<slot>`) until they expire. A used nonce is never evicted for
//! another while it lives (it would make its state good again), so a table full of live
//! nonces refuses new ones ([`StoreError::Full`]): the step then fails closed.
//!
//! Per pod: a state replayed on another replica is not seen here (README "Confirm" says so;
//! the state's short lifetime bounds it). The size is fixed ([`SLOTS`]): a nonce's slot depends
//! on it, and a table that changed size under a policy swap would forget the nonces used.

use crate::ports::Kv;
use crate::state::slots::{SlotTable, StoreError, NEVER_EVICT};

/// Ways probed per nonce.
const WAYS: u32 = 8;
/// Used states each pod remembers at once (live ones are never evicted: past this many approvals
/// within one state lifetime, confirmations fail closed).
pub const SLOTS: u32 = 8192;

pub fn table() -> SlotTable {
    table_of(SLOTS)
}

fn table_of(capacity: u32) -> SlotTable {
    SlotTable::new("cfm", capacity, WAYS)
}

fn expiry(payload: &[u8]) -> u64 {
    payload.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Marks `nonce` used until `expires_ms`: `true` the first time, `false` when it was used before.
pub fn use_once(kv: &mut dyn Kv, table: &SlotTable, nonce: &[u8; 16], expires_ms: u64, now_ms: u64) -> Result<bool, StoreError> {
    // Kept while it is still good (a state is refused from its expiry on): never evicted before.
    let cost = move |p: &[u8]| if expiry(p) >= now_ms { NEVER_EVICT } else { 0 };
    table.update(kv, nonce, now_ms, &cost, |current| match current {
        Some(p) if expiry(p) >= now_ms => (None, false),
        _ => (Some(expires_ms.to_le_bytes().to_vec()), true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeKv;

    #[test]
    fn a_nonce_is_good_once_until_it_expires() {
        let mut kv = FakeKv::default();
        let t = table_of(16);
        t.init(&mut kv).unwrap();
        assert_eq!(use_once(&mut kv, &t, &[1; 16], 2000, 1000), Ok(true));
        assert_eq!(use_once(&mut kv, &t, &[1; 16], 2000, 1500), Ok(false));
        assert_eq!(use_once(&mut kv, &t, &[2; 16], 2000, 1500), Ok(true));
    }

    #[test]
    fn live_nonces_are_never_evicted_and_a_full_table_fails_closed() {
        let mut kv = FakeKv::default();
        let t = table_of(4);
        t.init(&mut kv).unwrap();
        for i in 0..4u8 {
            assert_eq!(use_once(&mut kv, &t, &[i; 16], 10_000, 1000), Ok(true));
        }
        assert_eq!(use_once(&mut kv, &t, &[9; 16], 10_000, 1000), Err(StoreError::Full));
        for i in 0..4u8 {
            assert_eq!(use_once(&mut kv, &t, &[i; 16], 10_000, 2000), Ok(false), "still used");
        }
        // At their expiry millisecond they are still kept (their states are refused from then
        // on, but evicting them then would make them good again one millisecond early).
        assert_eq!(use_once(&mut kv, &t, &[9; 16], 20_000, 10_000), Err(StoreError::Full));
        // Once they are past, the slots are free again.
        assert_eq!(use_once(&mut kv, &t, &[9; 16], 20_000, 10_001), Ok(true));
    }
}
