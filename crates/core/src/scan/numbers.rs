//! Personal numbers with rules of their own: payment cards (issuer prefix, length, Luhn), IBANs
//! (country length, mod-97) and US Social Security numbers (the SSA's area / group / serial
//! rules). Each takes the candidate the run pass cut out and says whether it is one.

/// True when `digits` (ASCII digits only) pass the Luhn check.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// True when `digits` have a card issuer's prefix and length and pass Luhn.
pub fn is_card(digits: &[u8]) -> bool {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits.get(..k).map(|p| p.iter().fold(0u32, |a, d| a * 10 + u32::from(d.wrapping_sub(b'0')))).unwrap_or(0)
    };
    let issuer = match digits.first() {
        Some(b'4') => matches!(n, 16 | 19),                          // Visa
        Some(b'5') => n == 16 && (51..=55).contains(&prefix(2)),     // Mastercard
        Some(b'2') => n == 16 && (2221..=2720).contains(&prefix(4)), // Mastercard 2-series
        Some(b'3') => {
            (n == 15 && matches!(prefix(2), 34 | 37))
                || (n == 14 && matches!(prefix(2), 30 | 36 | 38 | 39))
                || ((16..=19).contains(&n) && (3528..=3589).contains(&prefix(4)))
        } // Amex, Diners, JCB
        Some(b'6') => {
            (16..=19).contains(&n)
                && (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)) || prefix(2) == 62)
        } // Discover, UnionPay
        _ => false,
    };
    issuer && !digits.iter().all(|d| Some(d) == digits.first()) && luhn(digits)
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// True when `s` (upper-case letters and digits, no spaces) is an IBAN: a known country, its
/// length, two check digits and the mod-97 remainder 1.
pub fn is_iban(s: &[u8]) -> bool {
    let Some(country) = s.get(..2) else { return false };
    let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_slice() == country) else { return false };
    if s.len() != *len || !s.get(2..4).is_some_and(|d| d.iter().all(u8::is_ascii_digit)) {
        return false;
    }
    let mut rem = 0u32;
    for b in s.iter().skip(4).chain(s.iter().take(4)) {
        match b {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(b - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// True when `s` is `AAA-GG-SSSS` under the SSA's rules: area not 000, 666 or 900–999, group
/// not 00, serial not 0000, and not one of the numbers famous for being printed on samples.
pub fn is_ssn(s: &[u8]) -> bool {
    let shape =
        s.len() == 11 && s.iter().enumerate().all(|(i, b)| if i == 3 || i == 6 { *b == b'-' } else { b.is_ascii_digit() });
    if !shape {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).map(|d| d.iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'))).unwrap_or(0);
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999) | (123, 45, 6789))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_need_an_issuer_a_length_and_luhn() {
        assert!(is_card(b"4111111111111111"));
        assert!(is_card(b"378282246310005"));
        assert!(is_card(b"5555555555554444"));
        assert!(!is_card(b"4111111111111112"), "Luhn");
        assert!(!is_card(b"1234567812345670"), "no issuer");
        assert!(!is_card(b"0000000000000000"));
    }

    #[test]
    fn ibans_are_checked_mod_97() {
        assert!(is_iban(b"DE89370400440532013000"));
        assert!(is_iban(b"GB82WEST12345698765432"));
        assert!(!is_iban(b"DE89370400440532013001"));
        assert!(!is_iban(b"DE8937040044053201300"), "length");
    }

    #[test]
    fn ssns_follow_the_ssa_rules() {
        assert!(is_ssn(b"536-90-4399"));
        for bad in [&b"000-12-3456"[..], b"666-12-3456", b"912-12-3456", b"536-00-4399", b"536-90-0000", b"078-05-1120"] {
            assert!(!is_ssn(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
