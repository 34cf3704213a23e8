//! Bits of information in a value: its length times the Shannon entropy of its own byte
//! distribution (`n·log2 n − Σ c·log2 c`), in integer arithmetic on a table of `x·log2 x` built
//! once, so the request path does no floating point. Values past [`BLOCK`] bytes are estimated
//! block by block (a bound on the work; it only ever counts more).
//!
//! Known-benign shapes (UUIDs, timestamps, numbers written as strings) and values the same
//! message already sent count nothing when the policy says so.

use std::sync::OnceLock;

use crate::policy::correlate::BenignShape;

/// Longest stretch estimated at once.
pub const BLOCK: usize = 4096;
/// Fixed point of the table: `x·log2 x · 2^FRAC`.
const FRAC: u32 = 8;

fn xlog_table() -> &'static [u32] {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=BLOCK)
            .map(|x| if x < 2 { 0 } else { ((x as f64) * (x as f64).log2() * f64::from(1u32 << FRAC)).round() as u32 })
            .collect()
    })
}

/// Counts kept between values so that each estimate only touches its own bytes.
pub struct Estimator {
    counts: [u16; 256],
    table: &'static [u32],
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator { counts: [0; 256], table: xlog_table() }
    }
}

impl Estimator {
    /// Shannon bits of `value` (rounded down).
    pub fn bits(&mut self, value: &[u8]) -> u64 {
        value.chunks(BLOCK).map(|b| self.block_bits(b)).sum()
    }

    fn block_bits(&mut self, block: &[u8]) -> u64 {
        for b in block {
            if let Some(c) = self.counts.get_mut(usize::from(*b)) {
                *c += 1;
            }
        }
        let xlog = |x: usize| u64::from(self.table.get(x).copied().unwrap_or(0));
        let mut sum = 0u64;
        if block.len() > self.counts.len() {
            // Longer than the alphabet: one branch-free pass over the 256 counts is cheaper than a
            // second pass over the bytes (x·log2 x is 0 for 0 and 1).
            for c in &mut self.counts {
                sum += xlog(usize::from(*c));
                *c = 0;
            }
        } else {
            for b in block {
                if let Some(c) = self.counts.get_mut(usize::from(*b)) {
                    // Each distinct byte once: the first occurrence takes the count and clears it.
                    if *c > 0 {
                        sum += xlog(usize::from(*c));
                        *c = 0;
                    }
                }
            }
        }
        xlog(block.len()).saturating_sub(sum) >> FRAC
    }
}

/// True when `value` has one of the `ignore` shapes.
pub fn benign(value: &[u8], ignore: &[BenignShape]) -> bool {
    ignore.iter().any(|s| match s {
        BenignShape::Uuid => is_uuid(value),
        BenignShape::Timestamp => is_timestamp(value),
        BenignShape::Number => is_number(value),
        // Handled by the caller (it needs the message's other values).
        BenignShape::Echo => false,
    })
}

fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { *b == b'-' } else { b.is_ascii_hexdigit() })
}

/// `YYYY-MM-DD`, optionally followed by a time in RFC 3339's alphabet.
fn is_timestamp(v: &[u8]) -> bool {
    let date = v.len() >= 10
        && v.iter().take(10).enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    date && v.len() <= 40 && v.iter().skip(10).all(|b| b.is_ascii_digit() || b"T:.Z+- ".contains(b))
}

fn is_number(v: &[u8]) -> bool {
    // Long digit runs are what card numbers and keys are made of: only short numbers are benign.
    // (Length first: most values are not numbers, and this runs on every value.)
    v.len() <= 24
        && v.iter().any(u8::is_ascii_digit)
        && v.iter().all(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        && v.iter().filter(|b| b.is_ascii_digit()).count() <= 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_shannon() {
        let mut e = Estimator::default();
        assert_eq!(e.bits(b""), 0);
        assert_eq!(e.bits(b"aaaaaaaa"), 0);
        assert_eq!(e.bits(b"abababab"), 8);
        assert_eq!(e.bits(b"abcdefgh"), 24);
        // 256 distinct bytes: 8 bits each.
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(e.bits(&all), 2048);
        // The counts were cleared between values.
        assert_eq!(e.bits(b"abcdefgh"), 24);
        let long = vec![b'x'; 10_000];
        assert_eq!(e.bits(&long), 0);
        // Past 256 bytes the counts are summed, not the bytes: the same bits, and cleared.
        let mixed: Vec<u8> = (0..600u32).map(|i| b"abcdefgh"[(i % 8) as usize]).collect();
        assert_eq!(e.bits(&mixed), 1800);
        assert_eq!(e.bits(b"abcdefgh"), 24);
    }

    #[test]
    fn benign_shapes() {
        let all = [BenignShape::Uuid, BenignShape::Timestamp, BenignShape::Number];
        for v in ["123e4567-e89b-12d3-a456-426614174000", "2026-12-01T20:45:10.5Z", "2026-12-01", "42", "-3.5e10"] {
            assert!(benign(v.as_bytes(), &all), "{v}");
        }
        for v in ["123e4567-e89b-12d3-a456-42661417400g", "AKIAIOSFODNN7EXAMPLE", "4111111111111111111111111", "12:00"] {
            assert!(!benign(v.as_bytes(), &all), "{v}");
        }
        assert!(!benign(b"42", &[BenignShape::Uuid]));
    }
}
