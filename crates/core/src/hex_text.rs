//! Lowercase hex text of bytes, written in one pass: the keys, labels and receipt fields that
//! every request and receipt formats (`hex::encode` collects an iterator of chars, a per-byte
//! cost that showed in the V8 profiles of the request path and of the writer).

/// Lowercase hex of `bytes`.
pub fn lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_matches_the_hex_crate() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(super::lower(&all), hex::encode(&all));
        assert_eq!(super::lower(&[]), "");
    }
}
