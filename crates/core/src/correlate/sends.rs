//! What one message sends out, measured once per request: the Shannon bits of its values
//! ([`super::values`], [`super::entropy`]) and, for the fragment tail, the first and last bytes
//! of its values joined.

use crate::policy::correlate::{BenignShape, CorrelationPolicy};
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

/// [`measure`] on a view already made.
pub fn measure_view(policy: &CorrelationPolicy, message: &[u8], v: &View<'_>) -> Sends {
    let mut sends = Sends::default();
    let sent = values::outbound(message, v);
    if sent.strings.is_empty() && sent.scalars.is_empty() {
        return sends;
    }
    let b = &policy.budget;
    let echo = b.ignore.contains(&BenignShape::Echo);
    let mut e = Estimator::default();
    if sent.scalars.len() >= b.min_value_bytes {
        sends.bits += e.bits(&sent.scalars);
    }
    // The values that join the fragment tail, in order.
    let mut joined: Vec<&[u8]> = Vec::with_capacity(sent.strings.len());
    for (i, ((s, t), is_key)) in sent.strings.iter().enumerate() {
        let value = v.text.get(*s..*t).unwrap_or_default();
        if value.is_empty() || benign(value, &b.ignore) {
            continue;
        }
        if !is_key {
            joined.push(value);
        }
        // Keys count their bits but do not join the tail (pieces sent under the same key each
        // time would be cut apart by it); pieces shorter than the floor still join it.
        if value.len() < b.min_value_bytes {
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
        if !repeated {
            sends.bits += e.bits(value);
        }
    }
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
