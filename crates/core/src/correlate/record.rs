//! What the filter remembers about one key (a caller at an upstream, or a task), as one slot payload
//! of at most [`MAX_RECORD`] bytes: read and written once per request by a CAS update.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | layout version ([`VERSION`]) |
//! | 8 + 4 + 4 | the budget window: start (ms), bits in it, bits in the window before |
//! | 8 + 1 | blocked until (ms), and why ([`Hold`]) |
//! | 4 + 8 | escalation score (milli-points) and when it was last decayed (ms) |
//! | 1 + 8 × 5 | the last calls: count, then (seconds, category bits) each |
//! | 1 + ≤ [`TAIL`] | the tail of recent outbound values (fragment reassembly); in a task's record, the fingerprint of its last answer |
//!
//! A payload in another layout, or cut short, reads as a fresh record: the state is advisory
//! memory, and a foreign writer must not be able to make it fail.

/// Calls remembered per key (the longest chain).
pub const CALLS: usize = 8;
/// Bytes of recent outbound values kept per key.
pub const TAIL: usize = 128;
pub const VERSION: u8 = 1;
const FIXED: usize = 1 + 16 + 9 + 12 + 1 + CALLS * 5 + 1;
pub const MAX_RECORD: usize = FIXED + TAIL;

/// Why a key is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    None,
    /// It spent its entropy budget.
    Budget,
    /// Its escalation score reached the block threshold.
    Escalation,
}

impl Hold {
    fn byte(self) -> u8 {
        match self {
            Hold::None => 0,
            Hold::Budget => 1,
            Hold::Escalation => 2,
        }
    }

    fn from_byte(b: u8) -> Hold {
        match b {
            1 => Hold::Budget,
            2 => Hold::Escalation,
            _ => Hold::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hold::None => "none",
            Hold::Budget => "entropy_budget",
            Hold::Escalation => "escalation",
        }
    }
}

/// One remembered call: when (unix seconds) and its category bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallMark {
    pub at_secs: u32,
    pub categories: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub window_start_ms: u64,
    pub window_bits: u32,
    pub previous_bits: u32,
    pub held_until_ms: u64,
    pub hold: Option<Hold>,
    pub score_milli: u32,
    pub score_at_ms: u64,
    /// Oldest first, at most [`CALLS`].
    pub calls: Vec<CallMark>,
    pub tail: Vec<u8>,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Record {
    /// The record in `bytes`, or a fresh one.
    pub fn decode(bytes: Option<&[u8]>) -> Record {
        bytes.and_then(Self::try_decode).unwrap_or_default()
    }

    fn try_decode(b: &[u8]) -> Option<Record> {
        if *b.first()? != VERSION {
            return None;
        }
        let hold = Hold::from_byte(*b.get(25)?);
        let n = usize::from(*b.get(38)?).min(CALLS);
        // Room for the call and the tail this request adds.
        let mut calls = Vec::with_capacity(CALLS + 1);
        for i in 0..n {
            let at = 39 + i * 5;
            calls.push(CallMark { at_secs: u32_at(b, at)?, categories: *b.get(at + 4)? });
        }
        let tail_at = 39 + CALLS * 5;
        let tail_len = usize::from(*b.get(tail_at)?).min(TAIL);
        Some(Record {
            window_start_ms: u64_at(b, 1)?,
            window_bits: u32_at(b, 9)?,
            previous_bits: u32_at(b, 13)?,
            held_until_ms: u64_at(b, 17)?,
            hold: (hold != Hold::None).then_some(hold),
            score_milli: u32_at(b, 26)?,
            score_at_ms: u64_at(b, 30)?,
            calls,
            tail: {
                let mut t = Vec::with_capacity(2 * TAIL + 32);
                t.extend_from_slice(b.get(tail_at + 1..tail_at + 1 + tail_len)?);
                t
            },
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.tail.len());
        out.push(VERSION);
        out.extend_from_slice(&self.window_start_ms.to_le_bytes());
        out.extend_from_slice(&self.window_bits.to_le_bytes());
        out.extend_from_slice(&self.previous_bits.to_le_bytes());
        out.extend_from_slice(&self.held_until_ms.to_le_bytes());
        out.push(self.hold.unwrap_or(Hold::None).byte());
        out.extend_from_slice(&self.score_milli.to_le_bytes());
        out.extend_from_slice(&self.score_at_ms.to_le_bytes());
        let calls = self.calls.get(self.calls.len().saturating_sub(CALLS)..).unwrap_or_default();
        out.push(calls.len() as u8);
        for i in 0..CALLS {
            let c = calls.get(i).copied().unwrap_or_default();
            out.extend_from_slice(&c.at_secs.to_le_bytes());
            out.push(c.categories);
        }
        let tail = self.tail.get(self.tail.len().saturating_sub(TAIL)..).unwrap_or_default();
        out.push(tail.len() as u8);
        out.extend_from_slice(tail);
        out
    }

    /// True when the record holds nothing worth keeping at `now_ms` (a table may reuse its slot).
    pub fn is_spent(&self, now_ms: u64, window_ms: u64) -> bool {
        self.held_until_ms <= now_ms
            && self.score_milli == 0
            && now_ms.saturating_sub(self.window_start_ms) >= window_ms.saturating_mul(2)
            && self.calls.last().is_none_or(|c| u64::from(c.at_secs) * 1000 + window_ms <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_the_slot_bound() {
        let r = Record {
            window_start_ms: 7,
            window_bits: 9,
            previous_bits: 11,
            held_until_ms: 13,
            hold: Some(Hold::Escalation),
            score_milli: 2500,
            score_at_ms: 17,
            calls: (0..12).map(|i| CallMark { at_secs: i, categories: i as u8 }).collect(),
            tail: vec![b'x'; 300],
        };
        let bytes = r.encode();
        assert!(bytes.len() <= MAX_RECORD && MAX_RECORD <= crate::state::slots::MAX_PAYLOAD);
        let back = Record::decode(Some(&bytes));
        assert_eq!(back.calls.len(), CALLS);
        assert_eq!(back.calls.first().map(|c| c.at_secs), Some(4), "the newest calls are kept");
        assert_eq!(back.tail.len(), TAIL);
        assert_eq!(back.hold, Some(Hold::Escalation));
        assert_eq!((back.window_bits, back.previous_bits, back.score_milli), (9, 11, 2500));
        assert_eq!(Record::decode(Some(b"\x02junk")), Record::default());
        assert_eq!(Record::decode(Some(&bytes[..20])), Record::default());
    }
}
