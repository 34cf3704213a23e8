//! Timestamps: Go `time.RFC3339Nano` output in UTC from a Unix nanosecond count the caller
//! supplies (the core never reads a clock), and the RFC 3339 shape check the verifiers apply.

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// Formats `unix_nanos` as Go's `RFC3339Nano` in UTC: `2026-04-15T12:00:00.5Z`, trailing zeros
/// of the fraction trimmed, no fraction at all when it is zero, always a `Z` suffix.
pub fn rfc3339_nano(unix_nanos: u64) -> String {
    let secs = unix_nanos / NANOS_PER_SEC;
    let frac = unix_nanos % NANOS_PER_SEC;
    let days = secs / SECS_PER_DAY;
    let rem = secs % SECS_PER_DAY;
    let (y, m, d) = civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// True when `s` is an RFC 3339 timestamp that Go's `time.Time` JSON decoding and pipelock-verify
/// both accept: `YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|±HH:MM)` with real calendar values.
pub fn is_valid_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) =
        (num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2))
    else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let digits = b.get(i + 1..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        i += 1 + digits;
    }
    let zone_ok = match b.get(i..) {
        Some(b"Z") => true,
        Some([sign, ..]) if (*sign == b'+' || *sign == b'-') && b.len() == i + 6 && at(i + 3, b':') => {
            matches!((num(i + 1, 2), num(i + 4, 2)), (Some(h), Some(m)) if h < 24 && m < 60)
        }
        _ => false,
    };
    zone_ok
        && year >= 1
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && min < 60
        && sec < 60
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        // 2026-04-15T12:00:00Z
        assert_eq!(rfc3339_nano(1_776_254_400 * NANOS_PER_SEC), "2026-04-15T12:00:00Z");
        assert_eq!(rfc3339_nano(1_776_254_400 * NANOS_PER_SEC + 500_000_000), "2026-04-15T12:00:00.5Z");
        assert_eq!(rfc3339_nano(1_776_254_400 * NANOS_PER_SEC + 120), "2026-04-15T12:00:00.00000012Z");
        assert_eq!(rfc3339_nano(951_782_400 * NANOS_PER_SEC + 999_999_999), "2000-02-29T00:00:00.999999999Z");
        assert_eq!(rfc3339_nano(4_107_542_399 * NANOS_PER_SEC), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn shape_check_matches_the_verifier_regex_and_calendar() {
        for ok in ["2026-04-15T12:00:00Z", "2026-04-15T12:00:00.123456789Z", "2024-02-29T00:00:00+05:30"] {
            assert!(is_valid_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "not-a-time",
            "2026-04-15 12:00:00Z",
            "2026-04-15T12:00:00",
            "2026-04-15T12:00:00z",
            "2026-04-15T12:00:00.Z",
            "2026-04-15T12:00:00.1234567890Z",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-04-15T24:00:00Z",
            "2026-04-15T12:00:00+0530",
            "2026-04-15T12:00:00Zjunk",
        ] {
            assert!(!is_valid_rfc3339(bad), "{bad}");
        }
    }
}
