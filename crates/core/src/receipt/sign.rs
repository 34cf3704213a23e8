//! Signing: the [`Signer`] trait, its Ed25519 implementation (PureEdDSA over the 32-byte
//! SHA-256 digest of the canonical record), and the key formats we read.
//!
//! Key formats accepted by [`parse_seed`]:
//! - 64 hex characters: the raw 32-byte seed (what `WARDEN_SIGNING_KEY` holds);
//! - Pipelock's private key file: `pipelock-ed25519-private-v1\n<base64(seed ‖ public key)>\n`,
//!   which `warden keygen` writes, so the same file works with Pipelock's own tools.

use base64::Engine as _;
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::Sha512;

use super::record::{ActionRecord, Receipt};

/// First line of a Pipelock private key file.
pub const PRIVATE_KEY_HEADER: &str = "pipelock-ed25519-private-v1";
/// First line of a Pipelock public key file.
pub const PUBLIC_KEY_HEADER: &str = "pipelock-ed25519-public-v1";
/// The environment variable that carries the seed (64 hex) to Envoy's writer and to the tools.
pub const SIGNING_KEY_ENV: &str = "WARDEN_SIGNING_KEY";

/// Something that signs a 32-byte digest. Implemented by [`Ed25519Signer`]; a test or an HSM
/// adapter can provide its own.
pub trait Signer {
    fn public_key(&self) -> [u8; 32];
    fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64];
}

/// Signs `record` (which must already carry its chain fields) and wraps it in an envelope.
pub fn sign_record(record: ActionRecord, signer: &dyn Signer) -> Receipt {
    let signature = signer.sign_digest(&record.signing_digest());
    Receipt { record, signature, signer_key: signer.public_key() }
}

/// Deterministic Ed25519 (RFC 8032, no added noise), so signatures are reproducible.
///
/// The seed is expanded (SHA-512, the clamped scalar) once, not per signature as
/// `SigningKey::sign` does; the expanded key and the public key both come from the one seed here,
/// so `raw_sign` can never be handed a public key of another secret.
pub struct Ed25519Signer {
    expanded: ExpandedSecretKey,
    verifying: VerifyingKey,
}

impl Ed25519Signer {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        Ed25519Signer { expanded: ExpandedSecretKey::from(&seed), verifying: key.verifying_key() }
    }
}

impl Signer for Ed25519Signer {
    fn public_key(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, digest, &self.verifying).to_bytes()
    }
}

/// True when `signature` is `public_key`'s Ed25519 signature over `digest`. Strict (RFC 8032
/// with the checks ed25519-compact made before): a canonical S, and no small-order public key or
/// R, so a signature that verifies for one key cannot be passed off as another's.
pub fn verify_digest(public_key: &[u8; 32], digest: &[u8; 32], signature: &[u8; 64]) -> bool {
    match VerifyingKey::from_bytes(public_key) {
        Ok(pk) => pk.verify_strict(digest, &Signature::from_bytes(signature)).is_ok(),
        Err(_) => false,
    }
}

/// Why a key could not be read. Always the key material's (the operator's) fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Neither 64 hex characters nor a Pipelock private key file.
    UnknownFormat,
    /// Hex of the wrong length or with non-hex characters.
    BadHex { expected_bytes: usize },
    /// The Pipelock file's base64 body does not decode to 64 bytes.
    BadKeyFile,
    /// The Pipelock file's public half does not belong to its seed.
    PublicKeyMismatch,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::UnknownFormat => {
                write!(f, "key is neither 64 hex characters nor a {PRIVATE_KEY_HEADER} file")
            }
            KeyError::BadHex { expected_bytes } => {
                write!(f, "key must be {} hex characters ({expected_bytes} bytes)", expected_bytes * 2)
            }
            KeyError::BadKeyFile => write!(f, "{PRIVATE_KEY_HEADER} body is not base64 of 64 bytes"),
            KeyError::PublicKeyMismatch => write!(f, "key file's public key does not match its seed"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Reads a seed from 64 hex characters or a Pipelock private key file (surrounding whitespace
/// ignored).
pub fn parse_seed(text: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    if let Some(body) = text.strip_prefix(PRIVATE_KEY_HEADER) {
        let raw = base64::engine::general_purpose::STANDARD.decode(body.trim()).map_err(|_| KeyError::BadKeyFile)?;
        let (seed, public) = raw.split_at_checked(32).ok_or(KeyError::BadKeyFile)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::BadKeyFile)?;
        if public.len() != 32 {
            return Err(KeyError::BadKeyFile);
        }
        if Ed25519Signer::from_seed(seed).public_key().as_slice() != public {
            return Err(KeyError::PublicKeyMismatch);
        }
        return Ok(seed);
    }
    if text.len() == 64 {
        return parse_hex32(text);
    }
    Err(KeyError::UnknownFormat)
}

/// Reads a 32-byte value (a seed or a public key) from 64 hex characters, either case.
pub fn parse_hex32(text: &str) -> Result<[u8; 32], KeyError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| KeyError::BadHex { expected_bytes: 32 })?;
    Ok(out)
}

/// The Pipelock private key file text for `seed`.
pub fn private_key_file(seed: &[u8; 32]) -> String {
    let mut raw = seed.to_vec();
    raw.extend_from_slice(&Ed25519Signer::from_seed(*seed).public_key());
    format!("{PRIVATE_KEY_HEADER}\n{}\n", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// The Pipelock public key file text for `public_key`.
pub fn public_key_file(public_key: &[u8; 32]) -> String {
    format!("{PUBLIC_KEY_HEADER}\n{}\n", base64::engine::general_purpose::STANDARD.encode(public_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "c8ee65622000420b20ff7ec4e790006b7883ddfd3823ff9ccc2fc050c389bd48";
    const PUB: &str = "4655a7e605c12ebb00a46037881c33c5bca5eb74b45a02e8e7261a7ff5a21678";

    #[test]
    fn conformance_seed_derives_the_published_public_key() {
        let seed = parse_seed(SEED).unwrap();
        assert_eq!(hex::encode(Ed25519Signer::from_seed(seed).public_key()), PUB);
    }

    #[test]
    fn key_file_round_trips_and_rejects_a_foreign_public_half() {
        let seed = parse_seed(SEED).unwrap();
        let file = private_key_file(&seed);
        assert!(file.starts_with("pipelock-ed25519-private-v1\n"));
        assert_eq!(parse_seed(&file), Ok(seed));
        let mut raw = seed.to_vec();
        raw.extend_from_slice(&[7u8; 32]);
        let forged = format!("{PRIVATE_KEY_HEADER}\n{}\n", base64::engine::general_purpose::STANDARD.encode(raw));
        assert_eq!(parse_seed(&forged), Err(KeyError::PublicKeyMismatch));
        assert_eq!(parse_seed("abc"), Err(KeyError::UnknownFormat));
        assert_eq!(parse_seed(&"zz".repeat(32)), Err(KeyError::BadHex { expected_bytes: 32 }));
    }

    #[test]
    fn signatures_verify_and_detect_a_changed_digest() {
        let signer = Ed25519Signer::from_seed([1u8; 32]);
        let sig = signer.sign_digest(&[9u8; 32]);
        assert!(verify_digest(&signer.public_key(), &[9u8; 32], &sig));
        assert!(!verify_digest(&signer.public_key(), &[8u8; 32], &sig));
    }

    /// The group order L, little-endian: S and S + L verify the same equation, so only the
    /// canonical S < L may be accepted (else one receipt has two valid signatures).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn a_non_canonical_s_or_a_small_order_key_is_refused() {
        let signer = Ed25519Signer::from_seed([1u8; 32]);
        let mut sig = signer.sign_digest(&[9u8; 32]);
        let mut carry = 0u16;
        for (s, l) in sig[32..].iter_mut().zip(L) {
            let v = u16::from(*s) + u16::from(l) + carry;
            *s = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert!(!verify_digest(&signer.public_key(), &[9u8; 32], &sig));
        // The identity point (small order) as a public key, with an all-zero-ish signature.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(!verify_digest(&identity, &[9u8; 32], &forged));
    }
}
