//! An Aho–Corasick automaton compiled to a DFA over byte classes, ASCII case-insensitive, that
//! reports every match (overlapping ones too: `eyJ` inside `sk.eyJ`, a canary inside a longer
//! anchor). Its search loop is one table load per byte: a transition whose target state ends a
//! pattern carries a flag bit, so a clean text never leaves the loop.
//!
//! Built once per policy; bounded: at most [`MAX_STATES`] states.

/// Most states an automaton may have (the shipped anchors need about 4 000).
pub const MAX_STATES: usize = 1 << 16;

/// The flag on a transition into a state where a pattern ends.
const MATCH: u32 = 1 << 31;

/// What [`Automaton::scan`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Match { pattern: usize, start: usize, end: usize },
    Run { start: usize, end: usize, any: u16 },
}

pub struct Automaton {
    /// Byte → class (upper-case ASCII shares its lower-case letter's class; bytes no pattern
    /// uses share class 0).
    classes: [u8; 256],
    stride: usize,
    /// `state * stride + class` → next state premultiplied by `stride`, `| MATCH` when a pattern
    /// ends there.
    trans: Vec<u32>,
    /// Per state: the patterns that end there (its own and those of its suffixes).
    outputs: Vec<Vec<u32>>,
    lens: Vec<usize>,
}

impl std::fmt::Debug for Automaton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Automaton").field("states", &self.outputs.len()).field("classes", &self.stride).finish()
    }
}

#[inline]
#[allow(clippy::indexing_slicing)] // a `u8` indexes a 256-entry table
fn class_of(classes: &[u8; 256], b: u8) -> usize {
    classes[b as usize] as usize
}

impl Automaton {
    /// The automaton for `patterns` (matched ASCII case-insensitively; non-empty).
    pub fn new(patterns: &[Vec<u8>]) -> Result<Automaton, String> {
        let mut classes = [0u8; 256];
        let mut next_class = 1usize;
        for p in patterns {
            for b in p.iter().map(u8::to_ascii_lowercase) {
                if let Some(c) = classes.get_mut(b as usize) {
                    if *c == 0 {
                        *c = u8::try_from(next_class).map_err(|_| "too many byte classes".to_owned())?;
                        next_class += 1;
                    }
                }
            }
        }
        for b in b'A'..=b'Z' {
            let lower = class_of(&classes, b.to_ascii_lowercase());
            if let Some(c) = classes.get_mut(b as usize) {
                *c = lower as u8;
            }
        }
        let stride = next_class;
        // The trie: children per state, and the patterns ending at each node.
        let mut children: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
        let mut outputs: Vec<Vec<u32>> = vec![Vec::new()];
        let mut lens = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            if p.is_empty() {
                return Err(format!("pattern {i} is empty"));
            }
            let mut s = 0usize;
            for b in p {
                let c = class_of(&classes, *b);
                let existing = children.get(s).and_then(|ch| ch.iter().find(|(k, _)| *k == c).map(|(_, t)| *t));
                s = match existing {
                    Some(t) => t,
                    None => {
                        let t = children.len();
                        if t >= MAX_STATES {
                            return Err(format!("more than {MAX_STATES} states"));
                        }
                        children.push(Vec::new());
                        outputs.push(Vec::new());
                        if let Some(ch) = children.get_mut(s) {
                            ch.push((c, t));
                        }
                        t
                    }
                };
            }
            if let Some(o) = outputs.get_mut(s) {
                o.push(u32::try_from(i).map_err(|_| "too many patterns".to_owned())?);
            }
            lens.push(p.len());
        }
        // Breadth first: each state's failure state is complete before the state itself.
        let n = children.len();
        let mut delta = vec![0usize; n * stride];
        let mut fail = vec![0usize; n];
        let mut queue = std::collections::VecDeque::new();
        for &(c, t) in children.first().map(Vec::as_slice).unwrap_or_default() {
            if let Some(d) = delta.get_mut(c) {
                *d = t;
            }
            queue.push_back(t);
        }
        while let Some(s) = queue.pop_front() {
            let f = fail.get(s).copied().unwrap_or(0);
            for c in 0..stride {
                let via_fail = delta.get(f * stride + c).copied().unwrap_or(0);
                let child = children.get(s).and_then(|ch| ch.iter().find(|(k, _)| *k == c).map(|(_, t)| *t));
                let target = match child {
                    Some(t) => {
                        if let Some(x) = fail.get_mut(t) {
                            *x = via_fail;
                        }
                        let inherited = outputs.get(via_fail).cloned().unwrap_or_default();
                        if let Some(o) = outputs.get_mut(t) {
                            o.extend(inherited);
                        }
                        queue.push_back(t);
                        t
                    }
                    None => via_fail,
                };
                if let Some(d) = delta.get_mut(s * stride + c) {
                    *d = target;
                }
            }
        }
        let trans = delta
            .iter()
            .map(|&t| {
                let flag = if outputs.get(t).is_some_and(|o| !o.is_empty()) { MATCH } else { 0 };
                u32::try_from(t * stride).map(|v| v | flag).map_err(|_| "automaton too large".to_owned())
            })
            .collect::<Result<Vec<u32>, String>>()?;
        Ok(Automaton { classes, stride, trans, outputs, lens })
    }

    /// One pass for both the anchors and the run pass ([`super::engine`]): `f` gets every match
    /// and, when it ends, every maximal run of [`chars::RUN`](super::chars::RUN) bytes with the
    /// union of its bytes' classes. The byte is loaded once for both.
    // Always inlined: it has two callers (the anchor-and-run pass, the folded pass), and as a
    // call of its own the per-byte loop could no longer inline their closures (measured: +4%
    // instructions per message natively).
    #[inline(always)]
    pub fn scan(&self, text: &[u8], mut f: impl FnMut(Event)) {
        let run_bits = super::chars::RUN.0;
        let mut s = 0usize;
        let mut bytes = text.iter().enumerate();
        // Two loops, one pass: outside a run, then inside one (no per-byte test of whether a
        // run is open); every byte takes its automaton step first, so a match at a byte is
        // reported before the run that the byte ends.
        'text: loop {
            let (start, mut any) = loop {
                let Some((i, &b)) = bytes.next() else { break 'text };
                s = self.step(s, b, i, &mut f);
                let k = super::chars::class(b);
                if k & run_bits != 0 {
                    break (i, k);
                }
            };
            loop {
                let Some((i, &b)) = bytes.next() else {
                    f(Event::Run { start, end: text.len(), any });
                    break 'text;
                };
                s = self.step(s, b, i, &mut f);
                let k = super::chars::class(b);
                if k & run_bits == 0 {
                    f(Event::Run { start, end: i, any });
                    break;
                }
                any |= k;
            }
        }
    }

    /// The automaton's step on byte `b` at `i` from state `s`: the next state, and every
    /// pattern that ends here reported.
    #[inline(always)]
    fn step(&self, s: usize, b: u8, i: usize, f: &mut impl FnMut(Event)) -> usize {
        let v = self.trans.get(s + class_of(&self.classes, b)).copied().unwrap_or(0);
        let next = (v & !MATCH) as usize;
        if v & MATCH != 0 {
            for &p in self.outputs.get(next / self.stride).map(Vec::as_slice).unwrap_or_default() {
                let len = self.lens.get(p as usize).copied().unwrap_or(0);
                f(Event::Match { pattern: p as usize, start: i + 1 - len.min(i + 1), end: i + 1 });
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(a: &Automaton, text: &str) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        a.scan(text.as_bytes(), |event| {
            if let Event::Match { pattern, start, end } = event {
                v.push((pattern, start, end));
            }
        });
        v
    }

    #[test]
    fn every_match_is_reported_overlapping_and_in_any_ascii_case() {
        let a =
            Automaton::new(&[b"eyj".to_vec(), b"sk.eyj".to_vec(), b"he".to_vec(), b"she".to_vec(), b"hers".to_vec()]).unwrap();
        assert_eq!(all(&a, "x SK.eyJ"), [(1, 2, 8), (0, 5, 8)]);
        assert_eq!(all(&a, "ushers"), [(3, 1, 4), (2, 2, 4), (4, 2, 6)]);
        assert!(all(&a, "nothing here at all? h-e").len() == 1, "only `he` of `here`");
    }

    #[test]
    fn runs_and_matches_come_in_byte_order() {
        let a = Automaton::new(&[b"b ".to_vec(), b"cd".to_vec()]).unwrap();
        let mut events = Vec::new();
        a.scan(b"ab cd", |e| {
            events.push(match e {
                Event::Match { pattern, start, end } => ('m', pattern, start, end),
                Event::Run { start, end, .. } => ('r', 0, start, end),
            })
        });
        // `b ` ends at the space that ends the run `ab`: the match first; the last run ends with
        // the text.
        assert_eq!(events, [('m', 0, 1, 3), ('r', 0, 0, 2), ('m', 1, 3, 5), ('r', 0, 3, 5)]);
        let mut none = 0;
        a.scan(b"", |_| none += 1);
        a.scan(b"  ", |_| none += 1);
        assert_eq!(none, 0, "no run in nothing or in spaces");
    }

    #[test]
    fn non_ascii_patterns_match_their_bytes() {
        let a = Automaton::new(&["忽略".as_bytes().to_vec(), b"ab".to_vec()]).unwrap();
        assert_eq!(all(&a, "请忽略AB"), [(0, 3, 9), (1, 9, 11)]);
    }
}
