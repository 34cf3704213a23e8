//! FNV-1a, 64-bit: the core's one cheap non-cryptographic hash, for what no client picks to
//! collide or where a collision only costs a lookup (slot homes of exact tables, the upstream
//! Bloom filter, a task answer's fingerprint, the host's stat-name cache). SHA-256 stays where
//! a collision would merge two identities.

use std::hash::Hasher;

/// The FNV-1a offset basis: the hash of nothing.
pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// `h` continued over `bytes`.
pub fn extend(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// FNV-1a of `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    extend(OFFSET, bytes)
}

/// FNV-1a as a [`Hasher`], for maps of keys that need no flood resistance.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = extend(self.0, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        // Test vectors of the FNV reference (draft-eastlake-fnv).
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(extend(hash(b"foo"), b"bar"), hash(b"foobar"));
        let mut h = Fnv::default();
        h.write(b"foobar");
        assert_eq!(h.finish(), hash(b"foobar"));
    }
}
