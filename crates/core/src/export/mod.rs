//! Receipts as OpenTelemetry logs: the protobuf bytes of an OTLP
//! `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`, hand-encoded (only the few
//! fields we set, so the .wasm carries no protobuf runtime), plus [`batch`]: size/age batching
//! with a bounded buffer that counts what it refuses.
//!
//! One `LogRecord` per receipt: `body` = the receipt's canonical JSON as a string, byte for byte
//! (what the sink writes), `time_unix_nano` = the exchange time, `trace_id`/`span_id`/`flags`
//! from the request's W3C `traceparent`, and the attributes named in [`attr`]. Receipts are
//! grouped by chain: one `ResourceLogs` per chain with resource attribute `warden.chain_id`
//! (also repeated on each record), in the order they were pushed.

pub mod batch;
/// Decoding side (prost), for the native sink and tests only (feature `otlp-decode`).
#[cfg(feature = "otlp-decode")]
pub mod proto;

use crate::receipt::exchange::Exchange;
use crate::receipt::Receipt;

/// Attribute keys: OpenTelemetry's MCP conventions where they name the fact ([`crate::semconv`]),
/// ours under `warden.*` for the rest. The sink reads [`attr::CHAIN_ID`] (resource first, then
/// the record).
pub mod attr {
    pub use crate::semconv::{
        ERROR_TYPE, GEN_AI_OPERATION_NAME, GEN_AI_PROMPT_NAME, GEN_AI_TOOL_NAME, JSONRPC_REQUEST_ID, MCP_METHOD_NAME,
        MCP_PROTOCOL_VERSION, MCP_RESOURCE_URI, MCP_SESSION_ID, RPC_RESPONSE_STATUS_CODE,
    };
    pub const SERVICE_NAME: &str = "service.name";
    pub const CHAIN_ID: &str = "warden.chain_id";
    pub const CHAIN_SEQ: &str = "warden.chain_seq";
    /// An MCP name the conventions have no attribute for (a task id).
    pub const TARGET: &str = "warden.target";
    /// `modern` (2026-07-28) or `legacy` (2025-11-25).
    pub const ERA: &str = "warden.era";
    pub const VERDICT: &str = "warden.verdict";
    /// The rule (or finding) that decided: the receipt's `pattern`.
    pub const RULE: &str = "warden.rule";
    /// The inspector of the most severe finding, and its severity.
    pub const LAYER: &str = "warden.layer";
    pub const SEVERITY: &str = "warden.severity";
    /// Data classes found in what the client sent / what came back, comma-separated.
    pub const DATA_CLASSES_IN: &str = "warden.data_classes_in";
    pub const DATA_CLASSES_OUT: &str = "warden.data_classes_out";
    pub const PRINCIPAL_FINGERPRINT: &str = "warden.principal_fingerprint";
    pub const UPSTREAM: &str = "warden.upstream";
    pub const DURATION_US: &str = "warden.duration_us";
    pub const BYTES_IN: &str = "warden.bytes_in";
    pub const BYTES_OUT: &str = "warden.bytes_out";
    /// `digest` on a digest entry (an unsigned record covered by a later checkpoint); absent on
    /// receipts. Digest entries carry [`BATCH`] and [`INDEX`] instead of [`CHAIN_SEQ`].
    pub const KIND: &str = "warden.kind";
    pub const BATCH: &str = "warden.batch";
    pub const INDEX: &str = "warden.index";

    /// Every key a record may carry (for size bounds and tests).
    pub const RECORD_KEYS: [&str; 28] = [
        CHAIN_ID,
        CHAIN_SEQ,
        KIND,
        BATCH,
        INDEX,
        MCP_METHOD_NAME,
        GEN_AI_TOOL_NAME,
        GEN_AI_PROMPT_NAME,
        MCP_RESOURCE_URI,
        TARGET,
        GEN_AI_OPERATION_NAME,
        MCP_PROTOCOL_VERSION,
        ERA,
        MCP_SESSION_ID,
        JSONRPC_REQUEST_ID,
        ERROR_TYPE,
        RPC_RESPONSE_STATUS_CODE,
        VERDICT,
        RULE,
        LAYER,
        SEVERITY,
        DATA_CLASSES_IN,
        DATA_CLASSES_OUT,
        PRINCIPAL_FINGERPRINT,
        UPSTREAM,
        DURATION_US,
        BYTES_IN,
        BYTES_OUT,
    ];
}

/// Where a log entry sits: a receipt at its `chain_seq`, or a digest entry of a checkpoint batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Receipt { chain_seq: u64 },
    Digest { batch: u64, index: u64 },
}

/// Instrumentation scope name on every batch.
pub const SCOPE_NAME: &str = "mcp-warden.receipts";
/// gRPC path of the OTLP logs Export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// What the proxy-wasm gRPC call takes as its upstream: the cluster name, or, to give the call an
/// `:authority` of its own, a serialized `envoy.config.core.v3.GrpcService { envoy_grpc {
/// cluster_name, authority } }`. Without one Envoy sends the cluster name as the authority, which
/// a mesh's outbound cluster names (`outbound|4317||sink.ns.svc.cluster.local`) make invalid, and
/// an HTTP/2 server refuses the stream. The host API takes a string: the message must be valid
/// UTF-8, so it must fit single-byte lengths (under 128 bytes).
pub fn grpc_upstream(cluster: &str, authority: Option<&str>) -> Result<String, String> {
    let Some(authority) = authority else { return Ok(cluster.to_owned()) };
    let mut envoy_grpc = Vec::new();
    pb::string(&mut envoy_grpc, 1, cluster);
    pb::string(&mut envoy_grpc, 2, authority);
    if cluster.len() >= 128 || authority.len() >= 128 || envoy_grpc.len() >= 128 {
        return Err(format!("sink_cluster and sink_authority must fit in {} bytes together", 128 - 4));
    }
    let mut service = Vec::new();
    pb::bytes(&mut service, 1, &envoy_grpc);
    String::from_utf8(service).map_err(|_| "sink_cluster and sink_authority must be ASCII".to_owned())
}

/// Protobuf wire-format writing: varints, tags, length-delimited fields.
pub(crate) mod pb {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire));
    }
    pub fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        tag(out, field, 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    pub fn string(out: &mut Vec<u8>, field: u32, s: &str) {
        bytes(out, field, s.as_bytes());
    }
    pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
        tag(out, field, 0);
        varint(out, v);
    }
    pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
        tag(out, field, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
        tag(out, field, 5);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// An OTLP attribute value (the `AnyValue` variants we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string_value = 1; int_value = 3 }`.
/// A `KeyValue` { key, AnyValue } written in place (the nested lengths are computed, not
/// buffered: no allocation per attribute).
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value<'_>) {
    let any_len = match value {
        Value::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
        Value::Int(i) => 1 + varint_len(*i as u64),
    };
    let kv_len = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any_len as u64) + any_len;
    pb::tag(out, field, 2);
    pb::varint(out, kv_len as u64);
    pb::string(out, 1, key);
    pb::tag(out, 2, 2);
    pb::varint(out, any_len as u64);
    match value {
        Value::Str(s) => pb::string(out, 1, s),
        Value::Int(i) => pb::uint(out, 3, *i as u64),
    }
}

/// Trace context parsed from a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceContext {
    /// `None` for anything but a well-formed version-00 header with non-zero ids.
    pub fn parse(traceparent: &str) -> Option<TraceContext> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let mut ctx = TraceContext { trace_id: [0; 16], span_id: [0; 8], flags: 0 };
        hex::decode_to_slice(trace, &mut ctx.trace_id).ok()?;
        hex::decode_to_slice(span, &mut ctx.span_id).ok()?;
        let mut f = [0u8; 1];
        hex::decode_to_slice(flags, &mut f).ok()?;
        ctx.flags = f[0];
        let lowercase = |s: &str| !s.bytes().any(|b| b.is_ascii_uppercase());
        let valid = ctx.trace_id != [0; 16] && ctx.span_id != [0; 8] && lowercase(trace) && lowercase(span);
        valid.then_some(ctx)
    }
}

/// One receipt ready to export: the receipt JSON and the context that becomes attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub chain_id: String,
    /// Encoded `LogRecord` message (without its field tag).
    pub record: Vec<u8>,
}

impl LogEntry {
    /// The `LogRecord` for `receipt`, which the writer made from `exchange` in chain `chain_id`.
    pub fn new(chain_id: &str, receipt: &Receipt, exchange: &Exchange) -> LogEntry {
        let verdict = receipt.record.verdict.as_str();
        let at = Position::Receipt { chain_seq: receipt.record.chain_seq };
        LogEntry::from_json(chain_id, &receipt.canonical_json(), at, verdict, exchange)
    }

    /// The same for a body given as JSON (the writer has it already): a receipt's canonical JSON,
    /// or a digest entry's record.
    pub fn from_json(chain_id: &str, body_json: &str, at: Position, verdict: &str, exchange: &Exchange) -> LogEntry {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut r = Vec::with_capacity(body_json.len() + 512);
        pb::fixed64(&mut r, 1, exchange.unix_nanos); // time_unix_nano
        pb::uint(&mut r, 2, 9); // severity_number = SEVERITY_NUMBER_INFO
        pb::string(&mut r, 3, "INFO"); // severity_text

        // body: AnyValue { string_value = the JSON }, written in place.
        pb::tag(&mut r, 5, 2);
        pb::varint(&mut r, (1 + varint_len(body_json.len() as u64) + body_json.len()) as u64);
        pb::string(&mut r, 1, body_json);
        key_value(&mut r, 6, attr::CHAIN_ID, &Value::Str(chain_id));
        match at {
            Position::Receipt { chain_seq } => key_value(&mut r, 6, attr::CHAIN_SEQ, &Value::Int(clamp(chain_seq))),
            Position::Digest { batch, index } => {
                key_value(&mut r, 6, attr::KIND, &Value::Str(crate::receipt::checkpoint::DIGEST_KIND));
                key_value(&mut r, 6, attr::BATCH, &Value::Int(clamp(batch)));
                key_value(&mut r, 6, attr::INDEX, &Value::Int(clamp(index)));
            }
        }
        write_record_attributes(&mut r, exchange, verdict);
        if let Some(ctx) = TraceContext::parse(&exchange.traceparent) {
            pb::fixed32(&mut r, 8, u32::from(ctx.flags));
            pb::bytes(&mut r, 9, &ctx.trace_id);
            pb::bytes(&mut r, 10, &ctx.span_id);
        }
        LogEntry { chain_id: chain_id.to_string(), record: r }
    }

    /// At least [`LogEntry::from_json`]'s `encoded_len()` for a body of `json_len` bytes (any
    /// verdict, either position), computed without encoding: every tag and length prefix counted at its
    /// widest, every integer attribute at 10 bytes.
    pub fn max_encoded_len(chain_id: &str, json_len: usize, exchange: &Exchange) -> usize {
        const PREFIX: usize = 1 + 10; // a tag and a length
        const FINGERPRINT: usize = 23; // "sha256:" + 16 hex
        const VERDICT: usize = 8;
        const CODE: usize = 20; // an i64 in decimal
        let e = exchange;
        let classes = |c: &[String]| c.iter().map(|s| s.len() + 1).sum::<usize>();
        let values = chain_id.len()
            + e.method.len()
            + e.name.len()
            + crate::semconv::EXECUTE_TOOL.len()
            + e.protocol_version.len()
            + e.era.len()
            + e.session.len()
            + e.request_id.len()
            + 2 * CODE
            + crate::semconv::TOOL_ERROR.len()
            + e.rule.len()
            + e.layer.len()
            + e.severity.len()
            + classes(&e.data_classes_in)
            + classes(&e.data_classes_out)
            + e.upstream.len()
            + crate::receipt::checkpoint::DIGEST_KIND.len();
        // Per attribute: KeyValue tag + length (5: a value under 2^35 bytes), key tag + length
        // (2: keys are short), AnyValue tag + length (1 + 5), value tag + length or varint (1 + 10).
        const PER_ATTRIBUTE: usize = 1 + 5 + 2 + 1 + 5 + 1 + 10;
        let attrs = attr::RECORD_KEYS.iter().map(|k| k.len() + PER_ATTRIBUTE).sum::<usize>() + values + FINGERPRINT + VERDICT;
        let fixed = 9 + 2 + PREFIX + 4 + 3 * PREFIX + 5 + PREFIX + 16 + PREFIX + 8;
        PREFIX + fixed + 2 * PREFIX + json_len + attrs
    }

    /// Bytes this entry adds to a request (its `LogRecord` field, tag and length included).
    pub fn encoded_len(&self) -> usize {
        self.record.len() + 1 + varint_len(self.record.len() as u64)
    }
}

/// Writes the attributes of `e`'s record (after the position ones), in order; a fact the
/// exchange does not have is left out rather than sent empty.
fn write_record_attributes(r: &mut Vec<u8>, e: &Exchange, verdict: &str) {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let text = |r: &mut Vec<u8>, k: &str, v: &str| {
        if !v.is_empty() {
            key_value(r, 6, k, &Value::Str(v));
        }
    };
    text(r, attr::MCP_METHOD_NAME, &e.method);
    text(r, crate::semconv::name_attribute(&e.method).unwrap_or(attr::TARGET), &e.name);
    if e.method == "tools/call" {
        text(r, attr::GEN_AI_OPERATION_NAME, crate::semconv::EXECUTE_TOOL);
    }
    text(r, attr::MCP_PROTOCOL_VERSION, &e.protocol_version);
    text(r, attr::ERA, &e.era);
    text(r, attr::MCP_SESSION_ID, &e.session);
    text(r, attr::JSONRPC_REQUEST_ID, crate::semconv::request_id(&e.request_id).as_deref().unwrap_or_default());
    let error = crate::semconv::error_type(e.error_code, e.tool_error, e.http_error);
    text(r, attr::ERROR_TYPE, error.as_deref().unwrap_or_default());
    text(r, attr::RPC_RESPONSE_STATUS_CODE, e.error_code.map(|c| c.to_string()).as_deref().unwrap_or_default());
    text(r, attr::VERDICT, verdict);
    text(r, attr::RULE, &e.rule);
    text(r, attr::LAYER, &e.layer);
    text(r, attr::SEVERITY, &e.severity);
    text(r, attr::DATA_CLASSES_IN, &e.data_classes_in.join(","));
    text(r, attr::DATA_CLASSES_OUT, &e.data_classes_out.join(","));
    text(r, attr::PRINCIPAL_FINGERPRINT, &e.principal_fingerprint());
    text(r, attr::UPSTREAM, &e.upstream);
    key_value(r, 6, attr::DURATION_US, &Value::Int(clamp(e.duration_micros)));
    key_value(r, 6, attr::BYTES_IN, &Value::Int(clamp(e.bytes_in)));
    key_value(r, 6, attr::BYTES_OUT, &Value::Int(clamp(e.bytes_out)));
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// `ExportLogsServiceRequest` for `entries`: consecutive entries of the same chain share one
/// `ResourceLogs` (resource attrs `service.name`, `warden.chain_id`) and one `ScopeLogs`.
pub fn export_request(entries: &[LogEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(LogEntry::encoded_len).sum::<usize>() + 256);
    for group in entries.chunk_by(|a, b| a.chain_id == b.chain_id) {
        let Some(first) = group.first() else { continue };
        let mut resource = Vec::new();
        key_value(&mut resource, 1, attr::SERVICE_NAME, &Value::Str("mcp-warden"));
        key_value(&mut resource, 1, attr::CHAIN_ID, &Value::Str(&first.chain_id));
        let mut scope = Vec::new();
        pb::string(&mut scope, 1, SCOPE_NAME);
        pb::string(&mut scope, 2, env!("CARGO_PKG_VERSION"));
        let mut scope_logs = Vec::new();
        pb::bytes(&mut scope_logs, 1, &scope);
        for e in group {
            pb::bytes(&mut scope_logs, 2, &e.record);
        }
        let mut resource_logs = Vec::new();
        pb::bytes(&mut resource_logs, 1, &resource);
        pb::bytes(&mut resource_logs, 2, &scope_logs);
        pb::bytes(&mut out, 1, &resource_logs);
    }
    out
}

/// `partial_success.rejected_log_records` of an `ExportLogsServiceResponse` (0 when absent), or
/// `None` when the bytes are not a well-formed response (the sink's fault).
pub fn rejected_in_response(response: &[u8]) -> Option<i64> {
    let mut rejected = 0;
    for (field, value) in pb_fields(response)? {
        if let (1, PbValue::Bytes(partial)) = (field, value) {
            for (inner, v) in pb_fields(partial)? {
                if let (1, PbValue::Varint(n)) = (inner, v) {
                    rejected = n as i64;
                }
            }
        }
    }
    Some(rejected)
}

pub(crate) enum PbValue<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Top-level fields of a protobuf message; `None` on malformed input.
pub(crate) fn pb_fields(mut buf: &[u8]) -> Option<Vec<(u64, PbValue<'_>)>> {
    fn read_varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let value = match key & 7 {
            0 => PbValue::Varint(read_varint(&mut buf)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                buf = buf.get(n..)?;
                PbValue::Fixed
            }
            2 => {
                let len = usize::try_from(read_varint(&mut buf)?).ok()?;
                let (bytes, rest) = buf.split_at_checked(len)?;
                buf = rest;
                PbValue::Bytes(bytes)
            }
            _ => return None,
        };
        out.push((key >> 3, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rejected_count_of_an_export_response() {
        assert_eq!(rejected_in_response(&[]), Some(0));
        // partial_success { rejected_log_records: 3, error_message: "x" }
        assert_eq!(rejected_in_response(&[0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, b'x']), Some(3));
        assert_eq!(rejected_in_response(&[0x0a, 0x05, 0x08]), None);
        assert_eq!(rejected_in_response(&[0x0f]), None);
    }

    #[test]
    fn varints_match_the_protobuf_spec() {
        let enc = |v| {
            let mut out = Vec::new();
            pb::varint(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
        assert_eq!(varint_len(300), 2);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn a_grpc_upstream_with_an_authority_is_a_grpc_service_message() {
        assert_eq!(grpc_upstream("sink", None).unwrap(), "sink");
        let s = grpc_upstream("outbound|4317||s.ns.svc", Some("s.ns.svc")).unwrap();
        let outer = pb_fields(s.as_bytes()).unwrap();
        let [(1, PbValue::Bytes(inner))] = outer.as_slice() else { panic!("not one GrpcService.envoy_grpc") };
        let fields: Vec<(u64, &[u8])> = pb_fields(inner)
            .unwrap()
            .into_iter()
            .map(|(n, v)| match v {
                PbValue::Bytes(b) => (n, b),
                _ => panic!(),
            })
            .collect();
        assert_eq!(fields, vec![(1, b"outbound|4317||s.ns.svc".as_slice()), (2, b"s.ns.svc".as_slice())]);
        assert!(grpc_upstream(&"c".repeat(100), Some(&"a".repeat(30))).is_err());
        assert!(grpc_upstream("c", Some("ä")).is_ok_and(|s| s.is_char_boundary(0)));
    }

    #[test]
    fn traceparent_parsing_follows_w3c() {
        let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(ctx.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(ctx.span_id), "00f067aa0ba902b7");
        assert_eq!(ctx.flags, 1);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
