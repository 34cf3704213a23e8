//! The hand-written OTLP encoding (src/export.rs) decoded by prost (the sink's decoder): receipt
//! bodies byte for byte, attributes, trace context, one ResourceLogs per chain. Also writes the
//! golden request the Python sink e2e test sends (`fixtures/receipts/warden-sample-export.binpb`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod receipts_support;

use mcp_warden_core::export::proto::{any_value, int_attr, str_attr, ExportLogsServiceRequest};
use mcp_warden_core::export::{attr, export_request, LogEntry, Position};
use prost::Message;
use receipts_support::*;

fn sample_entries() -> Vec<LogEntry> {
    let receipts = sample_chain();
    let exchanges = sample_exchanges();
    // Receipt 0 is the chain-open receipt: export it with the first exchange's context.
    receipts.iter().enumerate().map(|(i, r)| LogEntry::new(SAMPLE_CHAIN_ID, r, &exchanges[i.saturating_sub(1)])).collect()
}

#[test]
fn prost_decodes_our_request_with_every_receipt_byte_for_byte() {
    let receipts = sample_chain();
    let exchanges = sample_exchanges();
    let bytes = export_request(&sample_entries());
    let req = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(req.resource_logs.len(), 1);
    let rl = &req.resource_logs[0];
    let res_attrs = &rl.resource.as_ref().unwrap().attributes;
    assert_eq!(str_attr(res_attrs, attr::CHAIN_ID), Some(SAMPLE_CHAIN_ID));
    assert_eq!(str_attr(res_attrs, attr::SERVICE_NAME), Some("mcp-warden"));
    assert_eq!(rl.scope_logs.len(), 1);
    let records = &rl.scope_logs[0].log_records;
    assert_eq!(records.len(), receipts.len());
    for (i, (rec, receipt)) in records.iter().zip(&receipts).enumerate() {
        let Some(any_value::Value::StringValue(body)) = rec.body.as_ref().and_then(|b| b.value.clone()) else {
            panic!("record {i}: body is not a string")
        };
        assert_eq!(body, receipt.canonical_json(), "record {i}");
        let ex = &exchanges[i.saturating_sub(1)];
        assert_eq!(rec.time_unix_nano, ex.unix_nanos);
        let a = &rec.attributes;
        assert_eq!(str_attr(a, attr::CHAIN_ID), Some(SAMPLE_CHAIN_ID));
        assert_eq!(int_attr(a, attr::CHAIN_SEQ), Some(i as i64));
        assert_eq!(str_attr(a, attr::MCP_METHOD_NAME), Some(ex.method.as_str()));
        assert_eq!(
            str_attr(a, mcp_warden_core::semconv::name_attribute(&ex.method).unwrap_or(attr::TARGET)),
            (!ex.name.is_empty()).then_some(ex.name.as_str())
        );
        assert_eq!(str_attr(a, attr::VERDICT), Some(receipt.record.verdict.as_str()));
        assert_eq!(str_attr(a, attr::UPSTREAM), Some("demo"));
        assert_eq!(str_attr(a, attr::PRINCIPAL_FINGERPRINT), Some(ex.principal_fingerprint().as_str()));
        assert_eq!(int_attr(a, attr::DURATION_US), Some(ex.duration_micros as i64));
        assert_eq!(int_attr(a, attr::BYTES_IN), Some(ex.bytes_in as i64));
        assert_eq!(int_attr(a, attr::BYTES_OUT), Some(ex.bytes_out as i64));
        // The conventions' names for what they cover, ours for the rest; nothing sent empty.
        assert_eq!(str_attr(a, attr::MCP_PROTOCOL_VERSION), Some(ex.protocol_version.as_str()));
        assert_eq!(str_attr(a, attr::ERA), Some(ex.era.as_str()));
        assert_eq!(str_attr(a, attr::MCP_SESSION_ID), (!ex.session.is_empty()).then_some(ex.session.as_str()));
        assert_eq!(str_attr(a, attr::JSONRPC_REQUEST_ID), Some(ex.request_id.as_str()));
        let code = ex.error_code.map(|c| c.to_string());
        assert_eq!(str_attr(a, attr::RPC_RESPONSE_STATUS_CODE), code.as_deref());
        let error_type = code.clone().or_else(|| ex.tool_error.then(|| "tool_error".to_owned()));
        assert_eq!(str_attr(a, attr::ERROR_TYPE), error_type.as_deref());
        let execute = (ex.method == "tools/call").then_some("execute_tool");
        assert_eq!(str_attr(a, attr::GEN_AI_OPERATION_NAME), execute);
        assert!(a.iter().all(|kv| attr::RECORD_KEYS.contains(&kv.key.as_str())), "{a:?}");
        assert!(str_attr(a, "mcp.method").is_none() && str_attr(a, "mcp.name").is_none());
        let tp: Vec<&str> = ex.traceparent.split('-').collect();
        assert_eq!(hex::encode(&rec.trace_id), tp[1]);
        assert_eq!(hex::encode(&rec.span_id), tp[2]);
        assert_eq!(rec.flags, 1);
    }
    // Our encoding is canonical protobuf: prost re-encodes it to the same bytes.
    assert_eq!(req.encode_to_vec(), bytes);
}

#[test]
fn each_chain_gets_its_own_resource_in_push_order() {
    let entries = sample_entries();
    let mut other = entries[1].clone();
    other.chain_id = "other.w1".into();
    let mixed = vec![entries[0].clone(), entries[1].clone(), other.clone(), entries[2].clone()];
    let req = ExportLogsServiceRequest::decode(export_request(&mixed).as_slice()).unwrap();
    let chains: Vec<(&str, usize)> = req
        .resource_logs
        .iter()
        .map(|rl| {
            let id = str_attr(&rl.resource.as_ref().unwrap().attributes, attr::CHAIN_ID).unwrap();
            (id, rl.scope_logs[0].log_records.len())
        })
        .collect();
    assert_eq!(chains, [(SAMPLE_CHAIN_ID, 2), ("other.w1", 1), (SAMPLE_CHAIN_ID, 1)]);
}

#[test]
fn golden_export_request_for_the_sink_e2e_test() {
    let bytes = export_request(&sample_entries());
    let golden = root().join("fixtures/receipts/warden-sample-export.binpb");
    if std::env::var_os("WARDEN_REGENERATE").is_some() {
        std::fs::write(&golden, &bytes).unwrap();
    }
    assert_eq!(std::fs::read(&golden).unwrap(), bytes, "regenerate with WARDEN_REGENERATE=1");
}

#[test]
fn the_writers_size_bound_is_never_below_the_encoded_size() {
    // Lengths around the varint boundaries (127/128, 16383/16384), the largest integers, a trace
    // context and none: the writer skips the exact size check when the bound fits, so a bound
    // below the real size would let the buffer outgrow max_buffer_bytes.
    let mut cases = sample_exchanges();
    for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let mut e = exchange(7, &"m".repeat(n), &"n".repeat(n), mcp_warden_core::receipt::exchange::WireVerdict::Warn);
        e.upstream = "u".repeat(n);
        e.duration_micros = u64::MAX;
        e.bytes_in = u64::MAX;
        e.bytes_out = u64::MAX;
        e.protocol_version = "v".repeat(n);
        e.era = "legacy".into();
        e.session = mcp_warden_core::receipt::exchange::fingerprint("s");
        e.request_id = format!("\"{}\"", "i".repeat(n));
        e.error_code = Some(i64::MIN);
        e.tool_error = true;
        e.rule = "r".repeat(n);
        e.layer = "content_scan".into();
        e.severity = "critical".into();
        e.data_classes_in = vec!["credential".into(), "pii".into()];
        e.data_classes_out = vec!["c".repeat(n)];
        if n % 2 == 0 {
            e.traceparent = String::new();
        }
        cases.push(e);
    }
    for e in &cases {
        for json_len in [0usize, 100, 127, 128, 1_000, 16_383, 16_384, 200_000] {
            let json = "x".repeat(json_len);
            for chain_id in ["c", &"c".repeat(200)] {
                for verdict in ["allow", "block", "warn"] {
                    let at = if verdict == "warn" {
                        Position::Digest { batch: u64::MAX, index: u64::MAX }
                    } else {
                        Position::Receipt { chain_seq: u64::MAX }
                    };
                    let entry = LogEntry::from_json(chain_id, &json, at, verdict, e);
                    let bound = LogEntry::max_encoded_len(chain_id, json_len, e);
                    assert!(bound >= entry.encoded_len(), "bound {bound} < {} (json {json_len})", entry.encoded_len());
                    // And not loose enough to refuse what fits by much.
                    assert!(bound <= entry.encoded_len() + 1_500, "bound {bound} vs {}", entry.encoded_len());
                }
            }
        }
    }
}
