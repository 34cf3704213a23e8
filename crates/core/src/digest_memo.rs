//! The identity digests a worker computes again and again, remembered per VM: every request
//! hashes its client fingerprint, its principal key and its correlation key with SHA-256 (one
//! compression or two each, the largest hashing cost of the request path in V8), and a sidecar
//! sees the same few callers over and over.
//!
//! A memo entry is keyed by the exact bytes SHA-256 would read, so a hit is the digest itself,
//! never an approximation: whoever picks an input (a user agent) can only evict entries, which
//! costs a recomputation. Bounded: [`SLOTS`] direct-mapped entries of at most [`MAX_INPUT`]
//! bytes; longer inputs are hashed every time.

use sha2::{Digest, Sha256};

use crate::fnv;

/// Entries per VM.
pub const SLOTS: usize = 64;
/// Longest input remembered (bytes).
pub const MAX_INPUT: usize = 512;

/// The first 16 bytes of a SHA-256 digest.
pub type Digest16 = [u8; 16];

#[derive(Debug, Default)]
pub struct DigestMemo {
    entries: Vec<Option<(Vec<u8>, Digest16)>>,
    /// The input being assembled (reused between calls).
    input: Vec<u8>,
}

/// The first 16 bytes of SHA-256 over `parts`, joined.
pub fn digest16(parts: &[&[u8]]) -> Digest16 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    first16(&h.finalize())
}

fn first16(d: &[u8]) -> Digest16 {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(d) {
        *o = *b;
    }
    out
}

impl DigestMemo {
    /// [`digest16`] of `parts`, remembered.
    pub fn digest16(&mut self, parts: &[&[u8]]) -> Digest16 {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_INPUT {
            return digest16(parts);
        }
        self.input.clear();
        for p in parts {
            self.input.extend_from_slice(p);
        }
        if self.entries.len() != SLOTS {
            self.entries.resize_with(SLOTS, || None);
        }
        let slot = (fnv::hash(&self.input) % SLOTS as u64) as usize;
        let Some(entry) = self.entries.get_mut(slot) else { return digest16(parts) };
        if let Some((input, digest)) = entry.as_ref() {
            if *input == self.input {
                return *digest;
            }
        }
        let digest = first16(&Sha256::digest(&self.input));
        // The input moves into the entry and the evicted one's buffer is reused for the next
        // input: a run of misses (a client rotating its user agent) allocates nothing.
        match entry {
            Some((input, d)) => {
                std::mem::swap(input, &mut self.input);
                *d = digest;
            }
            None => *entry = Some((std::mem::take(&mut self.input), digest)),
        }
        digest
    }
}

/// [`DigestMemo::digest16`] when there is a memo, else [`digest16`].
pub fn digest16_with(memo: Option<&mut DigestMemo>, parts: &[&[u8]]) -> Digest16 {
    match memo {
        Some(m) => m.digest16(parts),
        None => digest16(parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_digest_is_the_digest_and_a_collision_in_the_slot_is_recomputed() {
        let mut m = DigestMemo::default();
        let inputs: Vec<Vec<u8>> = (0..500u32).map(|i| format!("mcpw/principal/v1\0jwt\0user-{i}").into_bytes()).collect();
        for _ in 0..2 {
            for i in &inputs {
                assert_eq!(m.digest16(&[i]), digest16(&[i.as_slice()]));
            }
        }
        // Parts are joined: the same bytes cut elsewhere are the same input.
        assert_eq!(m.digest16(&[b"ab", b"c"]), m.digest16(&[b"a", b"bc"]));
        assert_eq!(m.digest16(&[b"ab", b"c"]), digest16(&[b"abc"]));
        // Long inputs are hashed every time, and still right.
        let long = vec![7u8; MAX_INPUT + 1];
        assert_eq!(m.digest16(&[&long]), digest16(&[&long]));
        assert_eq!(m.entries.len(), SLOTS, "bounded");
        assert!(m.entries.iter().flatten().all(|(i, _)| i.len() <= MAX_INPUT));
    }
}
