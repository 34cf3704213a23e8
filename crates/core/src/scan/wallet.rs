//! Wallet secrets, confirmed by their own checksums: base58check (WIF keys, extended private
//! keys) and BIP-39 mnemonics (the word list and the SHA-256 checksum bits), so that a random
//! base58 run or twelve ordinary words are not reported.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The BIP-39 English word list (2048 words, sorted; sha256 2f5eed53…dbda, the list the BIP
/// publishes).
static WORDS: &str = include_str!("bip39_english.txt");

/// The payload of a base58check string (without its 4-byte checksum), when the checksum holds.
/// Bounded: longer inputs than any key are refused.
pub fn base58check(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > 128 {
        return None;
    }
    // Big-endian base-256 digits, grown as the base-58 digits are folded in.
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    for c in s {
        let mut carry = ALPHABET.iter().position(|a| a == c)? as u32;
        for b in out.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.iter().take_while(|c| **c == b'1').count();
    let mut bytes = vec![0u8; zeros];
    bytes.extend(out);
    if bytes.len() < 5 {
        return None;
    }
    let (payload, check) = bytes.split_at(bytes.len() - 4);
    let digest = Sha256::digest(Sha256::digest(payload));
    (digest.get(..4) == Some(check)).then(|| payload.to_vec())
}

/// A Wallet Import Format private key: `5…` (51 characters, uncompressed) or `K…` / `L…` (52,
/// compressed), version byte 0x80, checksum valid.
pub fn is_wif(run: &[u8]) -> bool {
    let expected = match (run.len(), run.first()) {
        (51, Some(b'5')) => 33,
        (52, Some(b'K' | b'L')) => 34,
        _ => return false,
    };
    base58check(run).is_some_and(|p| p.len() == expected && p.first() == Some(&0x80) && (expected == 33 || p.last() == Some(&1)))
}

/// Slots of the word table (twice the list: short probe chains).
const TABLE: usize = 4096;

fn hash(word: &[u8]) -> usize {
    // FNV-1a: the words are fixed and public, nothing to key against.
    let h = word.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    h as usize % TABLE
}

/// Open addressing over the list's indexes, built once per VM: a lookup is one hash and a
/// compare or two (prose is checked word by word for seed phrases).
fn table() -> &'static [u16] {
    use std::sync::OnceLock;
    static T: OnceLock<Vec<u16>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = vec![u16::MAX; TABLE];
        for i in 0..offsets().len() {
            let Some(w) = nth_word(i) else { continue };
            let mut slot = hash(w.as_bytes());
            while t.get(slot).is_some_and(|v| *v != u16::MAX) {
                slot = (slot + 1) % TABLE;
            }
            if let Some(v) = t.get_mut(slot) {
                *v = u16::try_from(i).unwrap_or(u16::MAX);
            }
        }
        t
    })
}

/// The index of `word` in the BIP-39 list.
fn word_index(word: &[u8]) -> Option<u16> {
    let t = table();
    let mut slot = hash(word);
    loop {
        let i = *t.get(slot)?;
        if i == u16::MAX {
            return None;
        }
        if nth_word(usize::from(i)).is_some_and(|w| w.as_bytes() == word) {
            return Some(i);
        }
        slot = (slot + 1) % TABLE;
    }
}

fn nth_word(i: usize) -> Option<&'static str> {
    offsets().get(i).and_then(|(s, e)| WORDS.get(*s..*e))
}

/// Where each word of the list starts and ends, computed once per VM.
fn offsets() -> &'static [(usize, usize)] {
    use std::sync::OnceLock;
    static OFFSETS: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
    OFFSETS.get_or_init(|| {
        let mut v = Vec::with_capacity(2048);
        let mut start = 0;
        for (i, b) in WORDS.bytes().enumerate() {
            if b == b'\n' {
                v.push((start, i));
                start = i + 1;
            }
        }
        if start < WORDS.len() {
            v.push((start, WORDS.len()));
        }
        v
    })
}

/// True when `word` is in the BIP-39 list.
pub fn is_word(word: &[u8]) -> bool {
    (3..=8).contains(&word.len()) && word_index(word).is_some()
}

/// True when these words (12, 15, 18, 21 or 24 of the list) form a mnemonic whose checksum
/// bits match the SHA-256 of its entropy.
pub fn is_mnemonic(words: &[&[u8]]) -> bool {
    if !matches!(words.len(), 12 | 15 | 18 | 21 | 24) {
        return false;
    }
    let mut bits: Vec<bool> = Vec::with_capacity(words.len() * 11);
    for w in words {
        let Some(i) = word_index(w) else { return false };
        bits.extend((0..11).rev().map(|k| (i >> k) & 1 == 1));
    }
    let cs = words.len() * 11 / 33;
    let entropy_bits = bits.len() - cs;
    let entropy: Vec<u8> = bits
        .get(..entropy_bits)
        .unwrap_or_default()
        .chunks(8)
        .map(|c| c.iter().fold(0u8, |acc, b| (acc << 1) | u8::from(*b)))
        .collect();
    let digest = Sha256::digest(&entropy);
    let first = digest.first().copied().unwrap_or(0);
    let want = bits.get(entropy_bits..).unwrap_or_default().iter().fold(0u8, |acc, b| (acc << 1) | u8::from(*b));
    first >> (8 - cs) == want
}

/// A mnemonic among a run of list words: any window of a mnemonic's length with a valid
/// checksum, longest first. Returns `(first word, word count)`.
/// `tests` bounds the checksums computed (each a SHA-256): a hostile run of list words cannot
/// make the scan quadratic; at zero the search stops (the caller says the scan was cut short).
pub fn find_mnemonic(words: &[&[u8]], tests: &mut usize) -> Option<(usize, usize)> {
    for len in [24usize, 21, 18, 15, 12] {
        if words.len() < len {
            continue;
        }
        for start in 0..=words.len() - len {
            if *tests == 0 {
                return None;
            }
            *tests -= 1;
            if words.get(start..start + len).is_some_and(is_mnemonic) {
                return Some((start, len));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_list_is_the_bip39_list() {
        assert_eq!(offsets().len(), 2048);
        assert_eq!(nth_word(0), Some("abandon"));
        assert_eq!(nth_word(2047), Some("zoo"));
        assert!(is_word(b"ability") && !is_word(b"the"));
    }

    #[test]
    fn the_bip39_test_vector_is_a_mnemonic_and_a_changed_word_is_not() {
        // BIP-39 test vector: entropy 00…00.
        let v: Vec<&[u8]> = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
            .split(' ')
            .map(str::as_bytes)
            .collect();
        assert!(is_mnemonic(&v));
        let mut w = v.clone();
        w[11] = b"abandon";
        assert!(!is_mnemonic(&w));
        let mut prose: Vec<&[u8]> = vec![b"zoo"];
        prose.extend(v.iter().copied());
        assert_eq!(find_mnemonic(&prose, &mut 100), Some((1, 12)));
        let mut none = 0;
        assert_eq!(find_mnemonic(&prose, &mut none), None, "no checksum budget, no search");
    }

    #[test]
    fn wif_keys_are_checked_by_their_checksum() {
        // The private key 0x0C28FCA3… from the Bitcoin wiki's WIF example.
        assert!(is_wif(b"5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"));
        assert!(!is_wif(b"5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTK"));
    }
}
