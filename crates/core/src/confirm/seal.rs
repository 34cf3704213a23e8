//! The gateway's own `requestState`: what a confirmation binds, sealed so that any replica with
//! the key can check a retry and nobody without it can make or change one.
//!
//! `mcpw1.<kid>.<payload>.<mac>`: `kid` names the key (8 hex of a digest of it, so a state from
//! another gateway with another key, an upstream behind its own mcp-warden, is that upstream's
//! and passes); `payload` and `mac` are base64url without padding; `mac` is HMAC-SHA256 over
//! everything before it with the key from `WARDEN_CONFIRM_KEY`. The payload (106 bytes): a version
//! byte, a kind byte ([`Kind`]), the expiry (ms, big-endian), a 16-byte nonce (single use: the
//! replay table) and five 16-byte digests of what the state is bound to ([`Binding`]). The
//! digests are separate so that a refusal can say which binding failed. Nothing in it is a
//! secret: the client sees the request it made; the MAC is what matters.
//!
//! The token's alphabet (base64url and `.`) has no `~`, which separates it from an upstream's
//! own state carried behind it (`<ours>~<theirs>`, see [`split`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Every state an mcp-warden issues starts so, then its key's id ([`ConfirmKey::prefix`]).
pub const PREFIX: &str = "mcpw1.";
/// Between the gateway's state and the upstream's it carries.
pub const CARRY_SEPARATOR: char = '~';

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 2 + 8 + 16 + 5 * 16;

/// The confirmation key: 32 bytes, from the environment (a Kubernetes Secret), never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmKey {
    key: [u8; 32],
    /// `mcpw1.<kid>.`: what every state this key seals starts with.
    prefix: String,
}

impl std::fmt::Debug for ConfirmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmKey(..)")
    }
}

impl ConfirmKey {
    pub fn new(key: [u8; 32]) -> ConfirmKey {
        let kid = Sha256::new().chain_update(b"mcpw/confirm/kid\0").chain_update(key).finalize();
        let prefix = format!("{PREFIX}{}.", hex::encode(kid.get(..4).unwrap_or(&[])));
        ConfirmKey { key, prefix }
    }

    /// What every state this key seals starts with: a `requestState` that does not is not ours.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// 64 hex characters (what `warden keygen` writes), surrounding whitespace ignored.
    pub fn from_hex(text: &str) -> Result<ConfirmKey, &'static str> {
        let bytes = hex::decode(text.trim()).map_err(|_| "is not hex")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must be 32 bytes (64 hex characters)")?;
        Ok(ConfirmKey::new(key))
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.key, message)
    }
}

/// HMAC-SHA256 (RFC 2104) with a 32-byte key.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut pad = [0u8; 64];
    pad[..32].copy_from_slice(key);
    let ipad: Vec<u8> = pad.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = pad.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

/// What a state lets its retry do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Issued with the gateway's question: the retry must carry the user's answer.
    Ask,
    /// Issued after the user approved, wrapped around the upstream's own `input_required`: the
    /// approval holds for the upstream's further rounds of the same call.
    Approved,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Ask => 1,
            Kind::Approved => 2,
        }
    }

    fn of(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Ask),
            2 => Some(Kind::Approved),
            _ => None,
        }
    }
}

/// What a state is bound to, each as a 16-byte digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The principal and the correlation key (principal, upstream, client fingerprint).
    pub caller: [u8; 16],
    /// Upstream, method and name.
    pub call: [u8; 16],
    /// The arguments in canonical form (JCS).
    pub arguments: [u8; 16],
    /// The rule that asked.
    pub rule: [u8; 16],
    /// The upstream's state carried behind ours (or none): a retry cannot swap or drop it.
    pub carried: [u8; 16],
}

fn digest16(domain: &str, parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    out
}

impl Binding {
    pub fn new(caller: (&str, &str), call: (&str, &str, &str), arguments_jcs: &[u8], rule: &str) -> Binding {
        Binding {
            caller: digest16("mcpw/confirm/caller\0", &[caller.0.as_bytes(), caller.1.as_bytes()]),
            call: digest16("mcpw/confirm/call\0", &[call.0.as_bytes(), call.1.as_bytes(), call.2.as_bytes()]),
            arguments: digest16("mcpw/confirm/arguments\0", &[arguments_jcs]),
            rule: digest16("mcpw/confirm/rule\0", &[rule.as_bytes()]),
            carried: carried(None),
        }
    }

    /// The same, carrying `theirs`.
    pub fn carrying(self, theirs: Option<&str>) -> Binding {
        Binding { carried: carried(theirs), ..self }
    }
}

/// The digest of the upstream's state carried behind ours (`None`: none).
pub fn carried(theirs: Option<&str>) -> [u8; 16] {
    match theirs {
        Some(t) => digest16("mcpw/confirm/carried\0", &[b"1", t.as_bytes()]),
        None => digest16("mcpw/confirm/carried\0", &[b"0"]),
    }
}

/// A state as the gateway issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub kind: Kind,
    pub expires_ms: u64,
    pub nonce: [u8; 16],
    pub binding: Binding,
}

/// Why a state is not the gateway's valid state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Not made with the key (or changed since): forged, or from a gateway with another key.
    Forged,
}

impl State {
    /// The token: `mcpw1.<payload>.<mac>`.
    pub fn seal(&self, key: &ConfirmKey) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.push(VERSION);
        payload.push(self.kind.byte());
        payload.extend_from_slice(&self.expires_ms.to_be_bytes());
        payload.extend_from_slice(&self.nonce);
        let b = &self.binding;
        for d in [&b.caller, &b.call, &b.arguments, &b.rule, &b.carried] {
            payload.extend_from_slice(d);
        }
        let mut token = String::with_capacity(key.prefix.len() + 142 + 1 + 43);
        token.push_str(&key.prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mac = key.mac(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut token);
        token
    }

    /// The state `token` stands for, when the key made it.
    pub fn open(token: &str, key: &ConfirmKey) -> Result<State, Broken> {
        let (signed, mac) = token.rsplit_once('.').ok_or(Broken::Forged)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| Broken::Forged)?;
        let expected = key.mac(signed.as_bytes());
        // Constant-time comparison: a MAC checked byte by byte with an early exit leaks how much
        // of a guess was right.
        if mac.len() != expected.len() || mac.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(Broken::Forged);
        }
        let payload = signed.strip_prefix(key.prefix.as_str()).ok_or(Broken::Forged)?;
        let p = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Broken::Forged)?;
        if p.len() != PAYLOAD_LEN || p.first() != Some(&VERSION) {
            return Err(Broken::Forged);
        }
        let kind = p.get(1).copied().and_then(Kind::of).ok_or(Broken::Forged)?;
        let mut at = 2;
        let mut take = |n: usize| {
            let s = p.get(at..at + n).unwrap_or(&[]);
            at += n;
            s
        };
        let expires_ms = u64::from_be_bytes(take(8).try_into().map_err(|_| Broken::Forged)?);
        let mut d16 = || -> Result<[u8; 16], Broken> { take(16).try_into().map_err(|_| Broken::Forged) };
        let nonce = d16()?;
        let binding = Binding { caller: d16()?, call: d16()?, arguments: d16()?, rule: d16()?, carried: d16()? };
        Ok(State { kind, expires_ms, nonce, binding })
    }
}

/// A `requestState` as the client sent it: the gateway's token (when it starts with `ours`, the
/// key's [`ConfirmKey::prefix`]) and the upstream's state carried behind it (or the whole
/// string, when it is not ours; everything is the upstream's for a gateway without a key).
pub fn split<'s>(request_state: &'s str, ours: Option<&str>) -> (Option<&'s str>, Option<&'s str>) {
    if !ours.is_some_and(|p| request_state.starts_with(p)) {
        return (None, Some(request_state));
    }
    match request_state.split_once(CARRY_SEPARATOR) {
        Some((ours, theirs)) => (Some(ours), Some(theirs)),
        None => (Some(request_state), None),
    }
}

/// The `requestState` to hand out: ours, and the upstream's behind it when there is one.
pub fn join(ours: &str, theirs: Option<&str>) -> String {
    match theirs {
        Some(t) => format!("{ours}{CARRY_SEPARATOR}{t}"),
        None => ours.to_owned(),
    }
}

/// A nonce no other state of this VM shares: derived from the key, the clock, a VM counter and
/// the binding (the MAC key makes it unpredictable to anyone without the key; it only has to be
/// unique for the replay table).
pub fn nonce(key: &ConfirmKey, now_nanos: u64, counter: u64, binding: &Binding, vm_id: u64) -> [u8; 16] {
    let mut m = Vec::with_capacity(24 + 64);
    m.extend_from_slice(b"mcpw/confirm/nonce\0");
    m.extend_from_slice(&now_nanos.to_be_bytes());
    m.extend_from_slice(&counter.to_be_bytes());
    m.extend_from_slice(&vm_id.to_be_bytes());
    m.extend_from_slice(&binding.caller);
    m.extend_from_slice(&binding.call);
    let full = key.mac(&m);
    let mut out = [0u8; 16];
    out.copy_from_slice(full.get(..16).unwrap_or(&[0; 16]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            kind: Kind::Ask,
            expires_ms: 1_700_000_000_000,
            nonce: [7; 16],
            binding: Binding::new(("p", "c"), ("u", "tools/call", "deploy"), b"{\"env\":\"prod\"}", "r1"),
        }
    }

    #[test]
    fn hmac_matches_an_independent_implementation() {
        // python3: hmac.new(bytes(range(32)), b"what do ya want for nothing?", "sha256").hexdigest()
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a");
    }

    #[test]
    fn a_sealed_state_opens_with_its_key_only() {
        let k = ConfirmKey::new([1; 32]);
        let token = state().seal(&k);
        assert!(token.starts_with(k.prefix()) && !token.contains(CARRY_SEPARATOR));
        assert!(k.prefix().starts_with(PREFIX) && k.prefix() != ConfirmKey::new([2; 32]).prefix());
        assert_eq!(State::open(&token, &k), Ok(state()));
        assert_eq!(State::open(&token, &ConfirmKey::new([2; 32])), Err(Broken::Forged));
    }

    #[test]
    fn any_change_to_a_token_breaks_it() {
        let k = ConfirmKey::new([1; 32]);
        let token = state().seal(&k);
        for i in 0..token.len() {
            let mut b = token.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(b).unwrap();
            if t != token {
                assert_eq!(State::open(&t, &k), Err(Broken::Forged), "byte {i}");
            }
        }
        assert_eq!(State::open(&token[..token.len() - 1], &k), Err(Broken::Forged));
        assert_eq!(State::open("mcpw1.", &k), Err(Broken::Forged));
        assert_eq!(State::open("", &k), Err(Broken::Forged));
    }

    #[test]
    fn split_and_join_keep_the_upstreams_state_byte_for_byte() {
        let ours = Some("mcpw1.0a0b0c0d.");
        let theirs = "eyJ4IjoxfQ.~weird~";
        let joined = join("mcpw1.0a0b0c0d.AAA.BBB", Some(theirs));
        assert_eq!(split(&joined, ours), (Some("mcpw1.0a0b0c0d.AAA.BBB"), Some(theirs)));
        assert_eq!(split("mcpw1.0a0b0c0d.AAA.BBB", ours), (Some("mcpw1.0a0b0c0d.AAA.BBB"), None));
        assert_eq!(split("theirs~x", ours), (None, Some("theirs~x")));
        // Another gateway's state (another key) is the upstream's; without a key, all is.
        assert_eq!(split("mcpw1.ffffffff.AAA.BBB", ours), (None, Some("mcpw1.ffffffff.AAA.BBB")));
        assert_eq!(split(&joined, None), (None, Some(joined.as_str())));
    }

    #[test]
    fn key_from_hex() {
        assert!(ConfirmKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(ConfirmKey::from_hex("abc").is_err());
        assert!(ConfirmKey::from_hex(&"ab".repeat(31)).is_err());
        assert_eq!(format!("{:?}", ConfirmKey::new([9; 32])), "ConfirmKey(..)");
        assert_eq!(ConfirmKey::from_hex(&"09".repeat(32)).unwrap(), ConfirmKey::new([9; 32]));
    }
}
