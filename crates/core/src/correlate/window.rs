//! The entropy budget's sliding window, as two fixed windows with the previous one weighted by
//! how much of it still overlaps the sliding one (the estimate Cloudflare's and Envoy's
//! limiters use: two numbers per key, never more than a window's worth of error in timing).

use super::record::Record;

/// Moves `r`'s windows to `now_ms`: a window that ended becomes the previous one.
pub fn roll(r: &mut Record, window_ms: u64, now_ms: u64) {
    let window_ms = window_ms.max(1);
    if now_ms < r.window_start_ms {
        r.window_start_ms = now_ms - now_ms % window_ms;
        r.window_bits = 0;
        r.previous_bits = 0;
        return;
    }
    let elapsed = now_ms - r.window_start_ms;
    if elapsed >= 2 * window_ms {
        r.previous_bits = 0;
        r.window_bits = 0;
        r.window_start_ms = now_ms - now_ms % window_ms;
    } else if elapsed >= window_ms {
        r.previous_bits = r.window_bits;
        r.window_bits = 0;
        r.window_start_ms += window_ms;
    }
}

/// Bits spent in the sliding window ending at `now_ms` (after [`roll`]).
pub fn spent(r: &Record, window_ms: u64, now_ms: u64) -> u64 {
    let window_ms = window_ms.max(1);
    let into = now_ms.saturating_sub(r.window_start_ms).min(window_ms);
    let previous = u128::from(r.previous_bits) * u128::from(window_ms - into) / u128::from(window_ms);
    u64::from(r.window_bits) + u64::try_from(previous).unwrap_or(u64::MAX)
}

/// Adds `bits` to the current window.
pub fn add(r: &mut Record, bits: u64) {
    r.window_bits = r.window_bits.saturating_add(u32::try_from(bits).unwrap_or(u32::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_window_fades_out() {
        let mut r = Record::default();
        roll(&mut r, 1000, 10_000);
        add(&mut r, 100);
        assert_eq!(spent(&r, 1000, 10_500), 100);
        roll(&mut r, 1000, 11_250);
        assert_eq!(spent(&r, 1000, 11_250), 75, "a quarter into the next window, 3/4 of the last one");
        add(&mut r, 10);
        assert_eq!(spent(&r, 1000, 11_250), 85);
        roll(&mut r, 1000, 13_500);
        assert_eq!(spent(&r, 1000, 13_500), 0);
    }
}
