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
    let sent = values::outbound(message, v);
    if sent.strings.is_empty() && sent.scalars.is_empty() {
        return sends;
    }
    let b = &policy.budget;
    let echo = b.ignore.contains(&BenignShape::Echo);
    let mut bits = Bits::new(b, sent.scalars);
    // The values that join the fragment tail, in order.
    let mut joined: Vec<&[u8]> = Vec::with_capacity(sent.strings.len());
    for (i, ((s, t), is_key)) in sent.strings.iter().enumerate() {
        let value = v.text.get(*s..*t).unwrap_or_default();
        if value.is_empty() {
            continue;
        }
        // An echo: the same value among the 64 before it counts once (bounded: a message of many
        // values costs linear time).
        let repeated = echo
            && sent
                .strings
                .get(i.saturating_sub(64)..i)
                .unwrap_or_default()
                .iter()
                .any(|((a, z), _)| v.text.get(*a..*z) == Some(value));
        let shaped = benign(value, &b.ignore);
        // Keys count their bits but do not join the tail (pieces sent under the same key each
        // time would be cut apart by it); neither do benign shapes (a sequence number beside each
        // piece) nor what only separates (a lone space or comma between pieces).
        if !is_key && !shaped && value.iter().any(|c| c.is_ascii_alphanumeric() || *c >= 0x80) {
            joined.push(value);
        }
        if !repeated {
            bits.value(value, shaped);
        }
    }
    sends.bits = bits.total();
    sends.len = joined.iter().map(|j| j.len()).sum();
    sends.head.reserve(SEAM_READ.min(sends.len));
    for j in &joined {
        let room = SEAM_READ - sends.head.len();
        if room == 0 {
            break;
        }
        sends.head.extend_from_slice(j.get(..room.min(j.len())).unwrap_or_default());
    }
    // The last TAIL bytes, gathered back to front.
    let mut need = TAIL.min(sends.len);
    let mut parts: Vec<&[u8]> = Vec::new();
    for j in joined.iter().rev() {
        if need == 0 {
            break;
        }
        let take = need.min(j.len());
        parts.push(j.get(j.len() - take..).unwrap_or_default());
        need -= take;
    }
    sends.last.reserve(TAIL.min(sends.len));
    for p in parts.iter().rev() {
        sends.last.extend_from_slice(p);
    }
    sends
}
