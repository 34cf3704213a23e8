//! What one message sends out, measured once per request: the Shannon bits of its values
//! ([`super::values`], [`super::entropy`]) and, for the fragment tail, the first and last bytes
//! of its values joined.

use crate::policy::correlate::{BenignShape, Budget, CorrelationPolicy};
use crate::scan::view::{view, View};

use super::entropy::{benign, Estimator};
use super::record::TAIL;
use super::values;

/// Bytes of a request's values read across the seam with the tail (a secret up to [`TAIL`]
/// bytes long, split anywhere, is found).
pub const SEAM_READ: usize = TAIL + 32;

/// What one message sends out, measured once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sends {
    /// Shannon bits of the counted values.
    pub bits: u64,
    /// The first [`SEAM_READ`] bytes of the values, joined.
    pub head: Vec<u8>,
    /// The last [`TAIL`] bytes of the values, joined.
    pub last: Vec<u8>,
    /// How many bytes the joined values have.
    pub len: usize,
}

impl Sends {
    /// Nothing sent: no bits and nothing for the fragment tail.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.bits == 0
    }
}

/// The values of `message` (see [`values`]), measured; `None` when the message has no view.
pub fn measure(policy: &CorrelationPolicy, message: &[u8]) -> Option<Sends> {
    let v = view(message).ok()?;
    Some(measure_view(policy, message, &v))
}

/// The bits of a message's values, by one rule for what clients send and what task answers
/// carry: a value of a known-benign shape (a UUID, a timestamp, a number) costs a bit per byte,
/// not nothing (ids are information too, and an unlimited free shape is a channel); values under
/// the floor are estimated together, as one text (many short ones carry as much as one long
/// one); any other value its Shannon bits, at least one character's worth (a run of one
/// repeated byte still says which byte and how many).
pub struct Bits<'p> {
    budget: &'p Budget,
    e: Estimator,
    shorts: Vec<u8>,
    bits: u64,
}

impl<'p> Bits<'p> {
    /// `shorts`: text already gathered to be estimated together (a message's scalars).
    pub fn new(budget: &'p Budget, shorts: Vec<u8>) -> Bits<'p> {
        Bits { budget, e: Estimator::default(), shorts, bits: 0 }
    }

    /// Counts one value; `shaped`: it has one of the budget's benign shapes.
    pub fn value(&mut self, value: &[u8], shaped: bool) {
        if value.is_empty() {
            return;
        }
        if shaped {
            self.bits += value.len() as u64;
        } else if value.len() < self.budget.min_value_bytes {
            if !self.shorts.is_empty() {
                self.shorts.push(b',');
            }
            self.shorts.extend_from_slice(value);
        } else {
            self.bits += self.e.bits(value).max(8);
        }
    }

    pub fn total(mut self) -> u64 {
        if self.shorts.len() >= self.budget.min_value_bytes {
            self.bits += self.e.bits(&self.shorts);
        }
        self.bits
    }
}

/// [`measure`] on a view already made.
pub fn measure_view(policy: &CorrelationPolicy, message: &[u8], v: &View<'_>) -> Sends {
    let mut sends = Sends::default();
    let mut sent = values::outbound(message, v);
    if sent.strings.is_empty() && sent.scalars.is_empty() {
        return sends;
    }
    let b = &policy.budget;
    let echo = b.ignore.contains(&BenignShape::Echo);
    let mut shorts = std::mem::take(&mut sent.scalars);
    shorts.reserve(SHORTS_RESERVE);
    let mut bits = Bits::new(b, shorts);
    // One pass: each value's bits, and whether it joins the fragment tail (its flag is reused
    // to say so, for the head and tail gathered below).
    let mut seen = 0u64;
    for i in 0..sent.strings.len() {
        let Some(&((s, t), is_key)) = sent.strings.get(i) else { break };
        let value = v.text.get(s..t).unwrap_or_default();
        let shaped = !value.is_empty() && benign(value, &b.ignore);
        // Keys count their bits but do not join the tail (pieces sent under the same key each
        // time would be cut apart by it); neither do benign shapes (a sequence number beside each
        // piece) nor what only separates (a lone space or comma between pieces).
        let joins = !is_key && !shaped && value.iter().any(|c| c.is_ascii_alphanumeric() || *c >= 0x80);
        if let Some(first) = value.first() {
            // A filter on (length, first byte) over the values before: most values are unlike
            // every earlier one and skip the comparisons.
            let mark = 1u64 << ((value.len() as u64).wrapping_mul(31).wrapping_add(u64::from(*first)) % 64);
            let repeated = echo && seen & mark != 0 && sent_before(&sent.strings, v.text.as_ref(), i, value);
            seen |= mark;
            if !repeated {
                bits.value(value, shaped);
            }
        }
        if let Some(flag) = sent.strings.get_mut(i).map(|e| &mut e.1) {
            *flag = joins;
        }
        if joins {
            sends.len += value.len();
        }
    }
    sends.bits = bits.total();
    let joined = || sent.strings.iter().filter(|(_, joins)| *joins).map(|((s, t), _)| v.text.get(*s..*t).unwrap_or_default());
    sends.head.reserve(SEAM_READ.min(sends.len));
    for j in joined() {
        let room = SEAM_READ - sends.head.len();
        if room == 0 {
            break;
        }
        sends.head.extend_from_slice(j.get(..room.min(j.len())).unwrap_or_default());
    }
    // The last TAIL bytes: skip what comes before them, then copy forward.
    let mut skip = sends.len.saturating_sub(TAIL);
    sends.last.reserve(TAIL.min(sends.len));
    for j in joined() {
        if skip >= j.len() {
            skip -= j.len();
            continue;
        }
        sends.last.extend_from_slice(j.get(skip..).unwrap_or_default());
        skip = 0;
    }
    sends
}

/// Room reserved for a message's short values, estimated together (most fit: no regrowth).
const SHORTS_RESERVE: usize = 256;

/// An echo: the same value among the 64 strings before `i` (bounded: a message of many values
/// costs linear time). Lengths and first bytes are compared before the bytes.
fn sent_before(strings: &[((usize, usize), bool)], text: &[u8], i: usize, value: &[u8]) -> bool {
    let Some(first) = value.first() else { return false };
    strings
        .get(i.saturating_sub(64)..i)
        .unwrap_or_default()
        .iter()
        .any(|((a, z), _)| z - a == value.len() && text.get(*a) == Some(first) && text.get(*a..*z) == Some(value))
}
