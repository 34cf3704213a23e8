//! Fragment reassembly: where a key's tail of earlier sends meets this request's values, a
//! secret cut into pieces lines up again. The seam is read only where a run of token bytes
//! crosses it ([`seam_window`]), by the content scan's detectors
//! ([`crate::content_scan::secret_across`]).

/// A byte a token can be made of (keys, tokens, base64 / hex runs, URLs with credentials,
/// `name=value` pairs): a secret that crosses the seam runs through such bytes on both sides.
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+/=_-.~:@%?&!$*#".contains(&b)
}

/// Context kept left of a crossing run: what keyed detectors read before a value
/// (`password=`, `Authorization: Bearer `).
pub const SEAM_CONTEXT: usize = 40;

/// The part of `tail` (from) and `head` (to) a secret crossing the seam can lie in: the run of
/// token bytes (or of digits and separators: a card number cut at a space) that crosses it, with
/// some context on the left. `None` when no run crosses it (nothing to read; the common case for
/// prose, whose pieces meet at a space). Bounds the re-scan by what a secret could be, not by
/// the tail.
pub fn seam_window(tail: &[u8], head: &[u8]) -> Option<(usize, usize)> {
    if tail.is_empty() || head.is_empty() {
        return None;
    }
    let digits = |b: u8| b.is_ascii_digit() || b == b' ' || b == b'-';
    let run = |class: &dyn Fn(u8) -> bool| {
        let left = tail.iter().rev().take_while(|b| class(**b)).count();
        let right = head.iter().take_while(|b| class(**b)).count();
        (left > 0 && right > 0).then_some((left, right))
    };
    let (left, right) = match (run(&token_byte), run(&digits)) {
        (None, None) => return None,
        (Some(a), None) | (None, Some(a)) => a,
        (Some((l1, r1)), Some((l2, r2))) => (l1.max(l2), r1.max(r2)),
    };
    let from = tail.len().saturating_sub(left + SEAM_CONTEXT);
    // The right side ends where the run does, plus a byte for the validators' boundary check.
    Some((from, (right + 1).min(head.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seam_window_is_the_token_that_crosses_it() {
        // Prose meets at a space: nothing crosses, nothing to read.
        assert_eq!(seam_window(b"lorem ipsum dolor ", b"sit amet"), None);
        assert_eq!(seam_window(b"lorem ipsum dolor", b" sit amet"), None);
        // A token cut anywhere: the run on both sides, 40 bytes of context on the left.
        let tail = [b"x".repeat(60).as_slice(), b" key=ghp_R7c0aWq1"].concat();
        let (from, to) = seam_window(&tail, b"zXy2Lm3N rest").unwrap();
        assert_eq!(tail.len() - from, "key=ghp_R7c0aWq1".len() + SEAM_CONTEXT);
        assert_eq!(to, 9, "the run and one byte past it");
        // A card number cut at a space still crosses (digits and separators).
        assert!(seam_window(b"card 4111 1111 ", b"1111 1111").is_some());
        assert_eq!(seam_window(b"", b"abc"), None);
    }
}
