//! Ids bound to the principal that created them: legacy (2025-11-25) sessions and tasks.
//!
//! - The `Mcp-Session-Id` a server hands out in its `initialize` answer belongs to that caller,
//!   and another principal presenting it is answered as if the session did not exist. The
//!   session id is never a key for anything else (state is keyed by principal).
//! - The `taskId` a `tools/call` answer hands out (`resultType: "task"`, or a legacy
//!   `CreateTaskResult`) belongs to the caller; `tasks/get|update|cancel|result` and
//!   `subscriptions/listen` task filters from another principal get the spec's not-found answer.
//!
//! Bounded slot tables (`mcpw/v1/sess/<slot>`, `mcpw/v1/task/<slot>`), like every table: the
//! logical key is the id, the payload the owner's principal key and an expiry. Expired bindings
//! cost nothing to evict; an id the table no longer knows (evicted, expired, or handed out before
//! the filter was deployed) is bound to the first principal that uses it.

use super::slots::{SlotTable, StoreError};
use crate::ports::Kv;

/// Ways probed in the owner tables.
pub const OWNER_WAYS: u32 = 4;
/// Default lifetime of a binding since its last use.
pub const DEFAULT_SESSION_TTL_MS: u64 = 24 * 3600 * 1000;

/// Who an id belongs to, as the table knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The caller opened it (or was the first to use it): bound (again) to the caller.
    Caller,
    /// Another principal's.
    Other,
}

/// The legacy session table for a configured capacity.
pub fn sessions(capacity: u32) -> SlotTable {
    SlotTable::new("sess", capacity, OWNER_WAYS)
}

/// The task table for a configured capacity.
pub fn tasks(capacity: u32) -> SlotTable {
    SlotTable::new("task", capacity, OWNER_WAYS)
}

/// Bytes a binding's tag may take (a slot holds [`super::slots::MAX_PAYLOAD`]: the expiry, the
/// owner's 32-character key and a separator take the rest).
pub const MAX_TAG: usize = 200;

/// `expiry (u64 LE) | owner's principal key [| 0 | tag]`: principal keys are hex, so the first
/// NUL ends the owner (bindings written before tags existed read as untagged).
fn encode(owner: &str, expires_ms: u64, tag: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + owner.len() + tag.len());
    out.extend_from_slice(&expires_ms.to_le_bytes());
    out.extend_from_slice(owner.as_bytes());
    if !tag.is_empty() {
        out.push(0);
        out.extend_from_slice(tag);
    }
    out
}

/// `(expiry, owner, tag)`: an untagged binding's tag is empty.
fn decode(bytes: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let expires = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let rest = bytes.get(8..)?;
    Some(match rest.iter().position(|&b| b == 0) {
        Some(nul) => (expires, rest.get(..nul)?, rest.get(nul + 1..)?),
        None => (expires, rest, &[]),
    })
}

/// What evicting a stored binding loses: nothing once it has expired.
fn eviction_cost(now_ms: u64) -> impl Fn(&[u8]) -> u64 {
    move |b: &[u8]| decode(b).map_or(0, |(exp, _, _)| u64::from(exp > now_ms))
}

/// Binds `id` to `principal_key` (an `initialize` answer handed it out), for `ttl_ms`.
pub fn bind<K: Kv + ?Sized>(
    kv: &mut K,
    table: &SlotTable,
    id: &str,
    principal_key: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(), StoreError> {
    bind_tagged(kv, table, id, principal_key, b"", now_ms, ttl_ms)
}

/// [`bind`] with what the binding is for (a task: the tool that created it), at most
/// [`MAX_TAG`] bytes (the caller shortens it and says so in the tag).
pub fn bind_tagged<K: Kv + ?Sized>(
    kv: &mut K,
    table: &SlotTable,
    id: &str,
    principal_key: &str,
    tag: &[u8],
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(), StoreError> {
    let expires = now_ms.saturating_add(ttl_ms);
    let tag = tag.get(..MAX_TAG).unwrap_or(tag);
    table.update(kv, id.as_bytes(), now_ms, &eviction_cost(now_ms), |_| (Some(encode(principal_key, expires, tag)), ()))
}

/// Whose session `id` is, and until when that answer holds. An unknown or expired one is
/// bound to the caller; the caller's own has its lifetime extended once less than half of it is
/// left (a write only now and then).
pub fn check<K: Kv + ?Sized>(
    kv: &mut K,
    table: &SlotTable,
    id: &str,
    principal_key: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(Owner, u64), StoreError> {
    check_tagged(kv, table, id, principal_key, now_ms, ttl_ms).map(|(owner, exp, _)| (owner, exp))
}

/// [`check`], with the caller's binding's tag (empty: untagged, or bound just now). Extending a
/// binding keeps its tag.
pub fn check_tagged<K: Kv + ?Sized>(
    kv: &mut K,
    table: &SlotTable,
    id: &str,
    principal_key: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(Owner, u64, Vec<u8>), StoreError> {
    let expires = now_ms.saturating_add(ttl_ms);
    // An id first seen in a request is bound to its user only where that evicts nothing: ids
    // ground to land in another's window must not push a live binding out.
    table.update_without_eviction(kv, id.as_bytes(), now_ms, &eviction_cost(now_ms), |cur| match cur.and_then(decode) {
        Some((exp, owner, _)) if exp > now_ms && owner != principal_key.as_bytes() => (None, (Owner::Other, exp, Vec::new())),
        Some((exp, _, tag)) if exp.saturating_sub(now_ms) > ttl_ms / 2 => (None, (Owner::Caller, exp, tag.to_vec())),
        // The caller's own, due to be extended, keeps what it was for; an expired or unknown one
        // is the caller's from now on, for nothing in particular.
        Some((exp, _, tag)) if exp > now_ms => {
            (Some(encode(principal_key, expires, tag)), (Owner::Caller, expires, tag.to_vec()))
        }
        _ => (Some(encode(principal_key, expires, b"")), (Owner::Caller, expires, Vec::new())),
    })
}

/// Bindings one worker VM has recently confirmed: a binding cannot change owner before it
/// expires, so until then (for the owner: until it is due to be extended) the answer is known
/// without a shared-data read. Bounded; the oldest entry makes room.
#[derive(Debug, Default)]
pub struct OwnerCache {
    /// (session id, owner's principal key, the answer holds until this time, ms)
    entries: Vec<(String, String, u64)>,
    next: usize,
}

/// Entries one VM keeps.
pub const SESSION_CACHE_ENTRIES: usize = 256;

impl OwnerCache {
    fn lookup(&self, id: &str, principal_key: &str, now_ms: u64) -> Option<Owner> {
        let (_, owner, until) = self.entries.iter().find(|(s, _, _)| s == id)?;
        (*until > now_ms).then(|| if owner == principal_key { Owner::Caller } else { Owner::Other })
    }

    fn remember(&mut self, id: &str, owner: &str, until_ms: u64) {
        let entry = (id.to_owned(), owner.to_owned(), until_ms);
        if let Some(e) = self.entries.iter_mut().find(|(s, _, _)| s == id) {
            *e = entry;
        } else if self.entries.len() < SESSION_CACHE_ENTRIES {
            self.entries.push(entry);
        } else if let Some(e) = self.entries.get_mut(self.next) {
            *e = entry;
            self.next = (self.next + 1) % SESSION_CACHE_ENTRIES;
        }
    }
}

/// [`check`] through the VM's cache.
pub fn check_cached<K: Kv + ?Sized>(
    cache: &mut OwnerCache,
    kv: &mut K,
    table: &SlotTable,
    id: &str,
    principal_key: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<Owner, StoreError> {
    if let Some(owner) = cache.lookup(id, principal_key, now_ms) {
        return Ok(owner);
    }
    let (owner, expires) = check(kv, table, id, principal_key, now_ms, ttl_ms)?;
    if owner == Owner::Caller {
        // Known until it is due to be extended. (A refusal is not kept: it is the rare case, and
        // the table answers it again.)
        cache.remember(id, principal_key, expires.saturating_sub(ttl_ms / 2));
    }
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeKv;

    fn owner(kv: &mut FakeKv, t: &SlotTable, sid: &str, who: &str, now: u64) -> Result<Owner, StoreError> {
        check(kv, t, sid, who, now, 1000).map(|(o, _)| o)
    }

    #[test]
    fn a_session_belongs_to_whoever_opened_it_until_it_expires() {
        let (mut kv, t) = (FakeKv::new(), sessions(16));
        bind(&mut kv, &t, "s-1", "alice", 0, 1000).unwrap();
        assert_eq!(owner(&mut kv, &t, "s-1", "alice", 10), Ok(Owner::Caller));
        assert_eq!(owner(&mut kv, &t, "s-1", "mallory", 20), Ok(Owner::Other));
        // Use extends it (once half of it is gone, without a write before); after the last
        // extension plus the TTL it is free again.
        let writes = kv.writes;
        assert_eq!(owner(&mut kv, &t, "s-1", "alice", 400), Ok(Owner::Caller));
        assert_eq!(kv.writes, writes, "a fresh binding is not rewritten on every use");
        assert_eq!(owner(&mut kv, &t, "s-1", "alice", 900), Ok(Owner::Caller));
        assert_eq!(kv.writes, writes + 1);
        assert_eq!(owner(&mut kv, &t, "s-1", "mallory", 1500), Ok(Owner::Other));
        assert_eq!(owner(&mut kv, &t, "s-1", "mallory", 2000), Ok(Owner::Caller));
        assert_eq!(owner(&mut kv, &t, "s-1", "alice", 2001), Ok(Owner::Other));
        // Unknown sessions go to their first user.
        assert_eq!(owner(&mut kv, &t, "s-2", "bob", 0), Ok(Owner::Caller));
        assert_eq!(owner(&mut kv, &t, "s-2", "carol", 1), Ok(Owner::Other));
    }

    #[test]
    fn a_tag_is_kept_while_the_binding_lives_and_dropped_with_it() {
        let (mut kv, t) = (FakeKv::new(), tasks(16));
        bind_tagged(&mut kv, &t, "t-1", "alice", b"tslow", 0, 1000).unwrap();
        assert_eq!(check_tagged(&mut kv, &t, "t-1", "alice", 10, 1000), Ok((Owner::Caller, 1000, b"tslow".to_vec())));
        // Extended (past half its life): the tag stays.
        assert_eq!(check_tagged(&mut kv, &t, "t-1", "alice", 900, 1000), Ok((Owner::Caller, 1900, b"tslow".to_vec())));
        assert_eq!(check_tagged(&mut kv, &t, "t-1", "alice", 1000, 1000), Ok((Owner::Caller, 1900, b"tslow".to_vec())));
        // Nobody else learns it.
        assert_eq!(check_tagged(&mut kv, &t, "t-1", "mallory", 1001, 1000), Ok((Owner::Other, 1900, Vec::new())));
        // Expired: whoever comes next takes it over, untagged.
        assert_eq!(check_tagged(&mut kv, &t, "t-1", "mallory", 2000, 1000), Ok((Owner::Caller, 3000, Vec::new())));
        // Untagged bindings (and those written before tags) read as such; a long tag is cut.
        bind(&mut kv, &t, "t-2", "alice", 0, 1000).unwrap();
        assert_eq!(check_tagged(&mut kv, &t, "t-2", "alice", 1, 1000).map(|(_, _, tag)| tag), Ok(Vec::new()));
        bind_tagged(&mut kv, &t, "t-3", "alice", &[b'x'; 400], 0, 1000).unwrap();
        assert_eq!(check_tagged(&mut kv, &t, "t-3", "alice", 1, 1000).map(|(_, _, tag)| tag.len()), Ok(MAX_TAG));
    }

    #[test]
    fn the_cache_answers_as_the_table_would_and_stays_bounded() {
        let (mut kv, t, mut cache) = (FakeKv::new(), sessions(16), OwnerCache::default());
        bind(&mut kv, &t, "s-1", "alice", 0, 1000).unwrap();
        assert_eq!(check_cached(&mut cache, &mut kv, &t, "s-1", "alice", 10, 1000), Ok(Owner::Caller));
        let reads = kv.writes;
        // Answered from the cache: no write (and the table is not even read: break it).
        let mut broken = FakeKv::new();
        assert_eq!(check_cached(&mut cache, &mut broken, &t, "s-1", "alice", 20, 1000), Ok(Owner::Caller));
        assert_eq!(check_cached(&mut cache, &mut broken, &t, "s-1", "mallory", 30, 1000), Ok(Owner::Other));
        assert_eq!(check_cached(&mut cache, &mut kv, &t, "s-1", "mallory", 40, 1000), Ok(Owner::Other));
        assert_eq!(check_cached(&mut cache, &mut broken, &t, "s-1", "alice", 50, 1000), Ok(Owner::Caller));
        assert_eq!(kv.writes, reads);
        // Past the refresh point the table is asked again (and extends the binding).
        assert_eq!(check_cached(&mut cache, &mut kv, &t, "s-1", "alice", 600, 1000), Ok(Owner::Caller));
        assert_eq!(kv.writes, reads + 1);
        for i in 0..1000 {
            let _ = check_cached(&mut cache, &mut kv, &t, &format!("x-{i}"), "p", 700, 1000);
        }
        assert_eq!(cache.entries.len(), SESSION_CACHE_ENTRIES);
    }

    #[test]
    fn ids_first_seen_in_requests_never_push_a_live_binding_out() {
        let (mut kv, t) = (FakeKv::new(), SlotTable::new("task", 4, 4));
        t.init(&mut kv).unwrap();
        for i in 0..4 {
            bind(&mut kv, &t, &format!("t-{i}"), "alice", 0, 1000).unwrap();
        }
        // Mallory's guesses fill nothing: the table is full of live bindings.
        for i in 0..50 {
            assert_eq!(check(&mut kv, &t, &format!("guess-{i}"), "mallory", 10, 1000).map(|(o, _)| o), Ok(Owner::Caller));
        }
        for i in 0..4 {
            assert_eq!(check(&mut kv, &t, &format!("t-{i}"), "mallory", 20, 1000).map(|(o, _)| o), Ok(Owner::Other), "t-{i}");
        }
    }

    #[test]
    fn the_table_stays_bounded_however_many_sessions_pass() {
        let (mut kv, t) = (FakeKv::new(), sessions(64));
        t.init(&mut kv).unwrap();
        for i in 0..10_000u64 {
            bind(&mut kv, &t, &format!("s-{i}"), "p", i, 1_000_000).unwrap();
        }
        assert_eq!(kv.len(), 64);
    }
}
