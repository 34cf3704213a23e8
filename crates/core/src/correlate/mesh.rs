//! Mesh-wide budgets: the request to, and the answer of, an Envoy global rate limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), written and read as protobuf
//! by hand (the filter carries no protobuf runtime). Any RLS answers it: Limitador,
//! envoyproxy/ratelimit, both over Redis, so every replica's sidecar spends one budget.
//!
//! Descriptors, all in the policy's `domain`, each with its own `hits_addend`:
//! - `[("principal", <principal key>), ("kind", "entropy_bits")]`, hits = the bits sent;
//! - `[("principal", <principal key>), ("tool", <name>), ("kind", "tool_calls")]`, hits = 1;
//! - `[("confirm_nonce", <hex>), ("kind", "confirm_uses")]`, hits = 1: an approved confirmation
//!   used (README "Confirm"); a limit of 1 per nonce makes each approval good once mesh-wide.
//!
//! The limits themselves live in the service's configuration (per descriptor).

use crate::export::{pb, pb_fields, PbValue};

/// The gRPC service and method.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

/// One descriptor: entries and its hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(&'static str, String)>,
    pub hits: u64,
    /// What it counts (`entropy_bits`, `tool_calls`): the finding's name when it is over.
    pub kind: &'static str,
}

/// The descriptors of one request: bits sent, and the tool call.
pub fn descriptors(principal_key: &str, tool: Option<&str>, bits: u64, tool_calls: bool) -> Vec<Descriptor> {
    let mut out = Vec::new();
    if bits > 0 {
        out.push(Descriptor {
            entries: vec![("principal", principal_key.to_owned()), ("kind", "entropy_bits".to_owned())],
            hits: bits,
            kind: "entropy_bits",
        });
    }
    if let (true, Some(t)) = (tool_calls, tool) {
        out.push(Descriptor {
            entries: vec![("principal", principal_key.to_owned()), ("tool", t.to_owned()), ("kind", "tool_calls".to_owned())],
            hits: 1,
            kind: "tool_calls",
        });
    }
    out
}

/// What counts an approved confirmation's use: over its limit, the state was used before
/// (on any replica).
pub const CONFIRM_USES: &str = "confirm_uses";

/// The descriptor of one approved confirmation used (its nonce, hex).
pub fn confirm_use(nonce_hex: String) -> Descriptor {
    Descriptor { entries: vec![("confirm_nonce", nonce_hex), ("kind", CONFIRM_USES.to_owned())], hits: 1, kind: CONFIRM_USES }
}

/// `RateLimitRequest { domain = 1, descriptors = 2, hits_addend = 3 }`; each
/// `RateLimitDescriptor { entries = 1 { key = 1, value = 2 }, hits_addend = 3 (UInt64Value) }`.
pub fn request(domain: &str, descriptors: &[Descriptor]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + descriptors.len() * 96);
    pb::string(&mut out, 1, domain);
    for d in descriptors {
        let mut desc = Vec::with_capacity(96);
        for (k, v) in &d.entries {
            let mut entry = Vec::with_capacity(k.len() + v.len() + 4);
            pb::string(&mut entry, 1, k);
            pb::string(&mut entry, 2, v);
            pb::bytes(&mut desc, 1, &entry);
        }
        let mut addend = Vec::with_capacity(10);
        pb::uint(&mut addend, 1, d.hits);
        pb::bytes(&mut desc, 3, &addend);
        pb::bytes(&mut out, 2, &desc);
    }
    out
}

/// What the service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok,
    /// Over the limit: the index of the first descriptor over it, and seconds until it resets.
    OverLimit {
        descriptor: Option<usize>,
        reset_secs: u64,
    },
}

/// Reads a `RateLimitResponse { overall_code = 1, statuses = 2 { code = 1,
/// duration_until_reset = 4 { seconds = 1 } } }`; `None` when the bytes are not one (the
/// service's fault: the failure mode applies).
pub fn answer(bytes: &[u8]) -> Option<Answer> {
    let mut overall = 0;
    let mut first_over: Option<(usize, u64)> = None;
    let mut index = 0usize;
    for (field, value) in pb_fields(bytes)? {
        match (field, value) {
            (1, PbValue::Varint(code)) => overall = code,
            (2, PbValue::Bytes(status)) => {
                let mut code = 0;
                let mut reset = 0;
                for (f, v) in pb_fields(status)? {
                    match (f, v) {
                        (1, PbValue::Varint(c)) => code = c,
                        (4, PbValue::Bytes(d)) => {
                            for (g, w) in pb_fields(d)? {
                                if let (1, PbValue::Varint(s)) = (g, w) {
                                    reset = s;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if code == 2 && first_over.is_none() {
                    first_over = Some((index, reset));
                }
                index += 1;
            }
            _ => {}
        }
    }
    match overall {
        1 => Some(Answer::Ok),
        2 => Some(Answer::OverLimit {
            descriptor: first_over.map(|(i, _)| i),
            reset_secs: first_over.map_or(1, |(_, r)| r.max(1)),
        }),
        // UNKNOWN (0) or anything else: no answer the filter can act on.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_rls_wire_format() {
        let d = descriptors("pk", Some("send"), 40, true);
        assert_eq!(d.len(), 2);
        let bytes = request("dom", &d);
        let fields = pb_fields(&bytes).unwrap();
        assert!(matches!(fields.first(), Some((1, PbValue::Bytes(b"dom")))));
        let descs: Vec<&[u8]> =
            fields.iter().filter_map(|(f, v)| if let (2, PbValue::Bytes(b)) = (f, v) { Some(*b) } else { None }).collect();
        assert_eq!(descs.len(), 2);
        let first = pb_fields(descs[0]).unwrap();
        let addend = first.iter().find_map(|(f, v)| if let (3, PbValue::Bytes(b)) = (f, v) { Some(*b) } else { None }).unwrap();
        assert_eq!(addend, [0x08, 40]);
        assert!(descriptors("pk", None, 0, true).is_empty());
    }

    #[test]
    fn answers_are_read_and_garbage_is_none() {
        assert_eq!(answer(&[0x08, 0x01]), Some(Answer::Ok));
        // overall OVER_LIMIT, statuses [OK, OVER_LIMIT reset 30 s]
        let mut b = vec![0x08, 0x02];
        b.extend([0x12, 0x02, 0x08, 0x01]);
        b.extend([0x12, 0x06, 0x08, 0x02, 0x22, 0x02, 0x08, 30]);
        assert_eq!(answer(&b), Some(Answer::OverLimit { descriptor: Some(1), reset_secs: 30 }));
        assert_eq!(answer(&[0x08, 0x00]), None);
        assert_eq!(answer(&[0xff]), None);
    }
}
