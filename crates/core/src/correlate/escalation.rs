//! Adaptive enforcement: findings raise a key's score; the score halves every half-life without
//! findings; at `warn_at` the key's requests carry an `escalated` finding, at `block_at` the key
//! is held for the cool-down. Scores are milli-points so that decay stays in integers.

use super::record::Record;

/// Points, in milli-points.
pub const MILLI: u32 = 1000;

/// Decays `r`'s score to `now_ms`.
pub fn decay(r: &mut Record, half_life_ms: u64, now_ms: u64) {
    if now_ms <= r.score_at_ms {
        return;
    }
    if r.score_milli == 0 {
        r.score_at_ms = now_ms;
        return;
    }
    let half = half_life_ms.max(1);
    let dt = now_ms - r.score_at_ms;
    let halvings = dt / half;
    let mut s = if halvings >= 32 { 0 } else { u64::from(r.score_milli) >> halvings };
    // Within a half-life, linear between s and s/2 (close to the exponential, in integers).
    let frac = dt % half;
    s -= s * frac / (2 * half);
    let s = u32::try_from(s).unwrap_or(u32::MAX);
    // Time that decayed nothing (requests closer together than the arithmetic resolves) is kept
    // for the next decay, not dropped: otherwise a steady stream would never decay at all.
    if s != r.score_milli {
        r.score_milli = s;
        r.score_at_ms = now_ms;
    }
}

/// Adds `points` (whole points).
pub fn raise(r: &mut Record, points: u32) {
    r.score_milli = r.score_milli.saturating_add(points.saturating_mul(MILLI));
}

/// The score in whole points (rounded down).
pub fn score(r: &Record) -> u32 {
    r.score_milli / MILLI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_halve_every_half_life() {
        let mut r = Record::default();
        decay(&mut r, 1000, 5_000);
        raise(&mut r, 8);
        decay(&mut r, 1000, 6_000);
        assert_eq!(score(&r), 4);
        decay(&mut r, 1000, 6_500);
        assert_eq!(r.score_milli, 3000);
        decay(&mut r, 1000, 100_000);
        assert_eq!(r.score_milli, 0);
    }
}
