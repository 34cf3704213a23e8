//! The in-Envoy writer state machine driven like the host will drive it: queue messages in,
//! ticks, gRPC results (success, failure, retry), a full buffer, and a successor writer that
//! names its predecessor's tail. What reaches a simulated sink must verify as one gap-free chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod receipts_support;

use mcp_warden_core::export::batch::BatchConfig;
use mcp_warden_core::export::proto::{any_value, ExportLogsServiceRequest};
use mcp_warden_core::receipt::sign::parse_hex32;
use mcp_warden_core::receipt::verify::verify_chain;
use mcp_warden_core::receipt::Ed25519Signer;
use mcp_warden_core::receipt_writer::{Recorded, Writer, WriterConfig};
use prost::Message;
use receipts_support::*;

const SEC: u64 = 1_000_000_000;

/// What the sink keeps: receipt lines, retried duplicates skipped by chain_seq.
#[derive(Default)]
struct FakeSink {
    lines: Vec<String>,
}

impl FakeSink {
    fn accept(&mut self, body: &[u8]) -> usize {
        let req = ExportLogsServiceRequest::decode(body).unwrap();
        let mut n = 0;
        for rec in req.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
            let Some(any_value::Value::StringValue(json)) = rec.body.as_ref().and_then(|b| b.value.clone()) else {
                panic!("body not a string")
            };
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let seq = v["action_record"]["chain_seq"].as_u64().unwrap();
            if seq as usize == self.lines.len() {
                self.lines.push(json);
                n += 1;
            }
        }
        n
    }

    fn verify(&self) -> mcp_warden_core::receipt::verify::ChainSummary {
        verify_chain(&self.lines.join("\n"), Some(&parse_hex32(TEST_PUB).unwrap())).unwrap()
    }
}

fn writer(chain_id: &str, batch: BatchConfig) -> Writer<Ed25519Signer> {
    let mut cfg = WriterConfig::new(chain_id.to_string());
    cfg.batch = batch;
    cfg.backoff_nanos = SEC;
    // The sample exchanges carry fixed timestamps; tests of queue lag (and of checkpoints, which
    // it switches on) set their own bounds.
    cfg.max_queue_lag_nanos = 0;
    cfg.checkpoint_lag_nanos = None;
    Writer::new(cfg, test_signer(), None)
}

fn small_batches() -> BatchConfig {
    BatchConfig { max_batch_bytes: 3_000, max_age_nanos: SEC, max_buffer_bytes: 1 << 20 }
}

#[test]
fn queue_to_sink_yields_one_verifiable_chain_in_order() {
    let mut w = writer("node-a.main.1", small_batches());
    let mut sink = FakeSink::default();
    let mut now = T0;
    for e in sample_exchanges() {
        assert!(matches!(w.on_record(&e.encode(), now).unwrap(), Recorded::Chained(_)));
        if let Some(body) = w.poll_send(now) {
            // Only one request in flight: nothing else goes out until it is answered.
            assert_eq!(w.poll_send(now + 10 * SEC), None);
            sink.accept(&body);
            w.on_export_result(true, now);
        }
        now += SEC / 10;
    }
    assert_eq!(w.poll_send(now), None, "the rest is younger than max_age");
    let body = w.poll_send(now + SEC).unwrap();
    sink.accept(&body);
    w.on_export_result(true, now + SEC);
    let summary = sink.verify();
    assert_eq!(summary.count, 6);
    assert_eq!(summary.chain_open.unwrap().chain_id, "node-a.main.1");
    let stats = w.stats();
    assert_eq!((stats.signed, stats.exported, stats.dropped, stats.export_failures), (6, 6, 0, 0));
    assert_eq!(w.tail().unwrap().tail_hash, summary.root_hash);
}

#[test]
fn a_failed_export_is_retried_after_backoff_in_the_same_order() {
    let mut w = writer("node-a.main.2", small_batches());
    let mut sink = FakeSink::default();
    let exchanges = sample_exchanges();
    for e in &exchanges[..3] {
        w.on_record(&e.encode(), T0).unwrap();
    }
    let first = w.poll_send(T0 + SEC).unwrap();
    w.on_export_result(false, T0 + SEC);
    assert_eq!(w.poll_send(T0 + SEC + SEC / 2), None, "backing off");
    for e in &exchanges[3..] {
        w.on_record(&e.encode(), T0 + SEC + SEC / 2).unwrap();
    }
    let retry = w.poll_send(T0 + 2 * SEC).unwrap();
    // The retried request starts with the same receipts as the failed one.
    let bodies = |b: &[u8]| -> Vec<String> {
        let req = ExportLogsServiceRequest::decode(b).unwrap();
        req.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .map(|r| match r.body.as_ref().unwrap().value.as_ref().unwrap() {
                any_value::Value::StringValue(s) => s.clone(),
                _ => panic!(),
            })
            .collect()
    };
    let (first_bodies, retry_bodies) = (bodies(&first), bodies(&retry));
    assert_eq!(retry_bodies[..first_bodies.len()], first_bodies[..]);
    sink.accept(&retry);
    w.on_export_result(true, T0 + 2 * SEC);
    while let Some(body) = w.drain() {
        sink.accept(&body);
        w.on_export_result(true, T0 + 3 * SEC);
    }
    assert_eq!(sink.verify().count, 6);
    assert_eq!(w.stats().export_failures, 1);
}

#[test]
fn a_full_buffer_drops_exchanges_without_breaking_the_chain() {
    let tiny = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 4_000 };
    let mut w = writer("node-a.main.3", tiny);
    let mut outcomes = Vec::new();
    for e in sample_exchanges() {
        outcomes.push(w.on_record(&e.encode(), T0).unwrap());
    }
    let dropped = outcomes.iter().filter(|o| **o == Recorded::Dropped).count();
    assert!(dropped > 0, "{outcomes:?}");
    assert_eq!(w.stats().dropped, dropped as u64);
    let mut sink = FakeSink::default();
    while let Some(body) = w.drain() {
        sink.accept(&body);
        w.on_export_result(true, T0);
    }
    assert_eq!(sink.verify().count as u64, w.stats().signed);
    assert!(w.buffered_bytes() == 0);
}

#[test]
fn a_message_from_another_version_is_counted_not_chained() {
    let mut w = writer("node-a.main.4", small_batches());
    assert!(w.on_record(b"{\"v\":2}", T0).is_err());
    assert!(w.on_record(b"garbage", T0).is_err());
    assert_eq!(w.stats().decode_errors, 2);
    assert_eq!(w.stats().signed, 0);
}

#[test]
fn a_successor_writer_names_the_predecessor_tail() {
    let mut first = writer("node-a.main.5", small_batches());
    let mut sink1 = FakeSink::default();
    for e in &sample_exchanges()[..2] {
        first.on_record(&e.encode(), T0).unwrap();
    }
    while let Some(body) = first.drain() {
        sink1.accept(&body);
        first.on_export_result(true, T0);
    }
    // The tail travels as a string (Envoy shared data in the host).
    let handed_over = first.tail().unwrap().encode();
    let predecessor = mcp_warden_core::receipt::Predecessor::decode(&handed_over).unwrap();
    let mut cfg = WriterConfig::new("node-a.main.6".into());
    cfg.batch = small_batches();
    cfg.checkpoint_lag_nanos = None;
    let mut second = Writer::new(cfg, test_signer(), Some(predecessor));
    let mut sink2 = FakeSink::default();
    second.on_record(&sample_exchanges()[2].encode(), T0 + SEC).unwrap();
    while let Some(body) = second.drain() {
        sink2.accept(&body);
        second.on_export_result(true, T0 + SEC);
    }
    let prior = sink1.verify();
    let named = sink2.verify().chain_open.unwrap().predecessor.unwrap();
    assert_eq!(named.chain_id, "node-a.main.5");
    assert_eq!((named.last_seq, named.tail_hash), (prior.final_seq, prior.root_hash));
}

#[test]
fn records_arriving_while_a_send_is_in_flight_never_push_it_out_of_the_buffer() {
    let bound = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 6_000 };
    let mut w = writer("node-a.main.7", bound);
    let ex = sample_exchanges();
    w.on_record(&ex[0].encode(), T0).unwrap();
    w.on_record(&ex[1].encode(), T0).unwrap();
    let _in_flight = w.poll_send(T0 + SEC).unwrap();
    // The buffer is empty but the in-flight batch still counts: new records are dropped.
    for e in &ex[2..] {
        w.on_record(&e.encode(), T0 + SEC).unwrap();
    }
    w.on_export_result(false, T0 + SEC);
    let mut sink = FakeSink::default();
    while let Some(body) = w.drain() {
        sink.accept(&body);
        w.on_export_result(true, T0 + 2 * SEC);
    }
    // Everything signed reached the sink; what did not fit was dropped before signing.
    assert_eq!(sink.verify().count as u64, w.stats().signed);
    assert!(w.stats().dropped > 0);
}

/// Golden pair for the `warden verify --prev` e2e test: a chain and its successor.
#[test]
fn golden_predecessor_pair_for_the_verify_prev_e2e_test() {
    let ex = sample_exchanges();
    let mut first = writer("node-a.main.100", small_batches());
    let mut sink1 = FakeSink::default();
    for e in &ex[..3] {
        first.on_record(&e.encode(), T0).unwrap();
    }
    while let Some(body) = first.drain() {
        sink1.accept(&body);
        first.on_export_result(true, T0);
    }
    let mut cfg = WriterConfig::new("node-a.main.200".into());
    cfg.batch = small_batches();
    cfg.checkpoint_lag_nanos = None;
    let mut second = Writer::new(cfg, test_signer(), first.tail());
    let mut sink2 = FakeSink::default();
    for e in &ex[3..] {
        second.on_record(&e.encode(), T0 + 10 * SEC).unwrap();
    }
    while let Some(body) = second.drain() {
        sink2.accept(&body);
        second.on_export_result(true, T0 + 10 * SEC);
    }
    let dir = root().join("fixtures/receipts/successor");
    for (name, sink) in [("first.jsonl", &sink1), ("second.jsonl", &sink2)] {
        let text: String = sink.lines.iter().map(|l| format!("{l}\n")).collect();
        let path = dir.join(name);
        if std::env::var_os("WARDEN_REGENERATE").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "regenerate with WARDEN_REGENERATE=1");
    }
}

#[test]
fn the_sinks_partial_success_is_counted_and_a_grpc_error_retried() {
    use mcp_warden_core::export::proto::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
    let one_batch = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 1 << 20 };
    let mut w = writer("node-a.main.8", one_batch);
    for e in &sample_exchanges()[..2] {
        w.on_record(&e.encode(), T0).unwrap();
    }
    let first = w.poll_send(T0 + SEC).unwrap();
    w.on_export_response(14, &[], T0 + SEC); // UNAVAILABLE
    assert_eq!(w.stats().export_failures, 1);
    let again = w.poll_send(T0 + 2 * SEC).unwrap();
    assert_eq!(again, first);
    let response = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess { rejected_log_records: 2, error_message: "bad".into() }),
    };
    w.on_export_response(0, &response.encode_to_vec(), T0 + 2 * SEC);
    let s = w.stats();
    assert_eq!((s.exported, s.sink_rejected, s.export_failures), (3, 2, 1));
}

// --- drop notices ------------------------------------------------------------------------------

use mcp_warden_core::receipt::chain::{DropNotice, DROPPED_METHOD};

/// The drop notices in what reached the sink: (chain_seq, count, since_seq, the receipt JSON).
fn notices(sink: &FakeSink) -> Vec<(u64, u64, u64, serde_json::Value)> {
    sink.lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["action_record"]["method"] == DROPPED_METHOD)
        .map(|v| {
            let (count, since) = DropNotice::parse_intent(v["action_record"]["intent"].as_str().unwrap()).unwrap();
            (v["action_record"]["chain_seq"].as_u64().unwrap(), count, since, v)
        })
        .collect()
}

fn drain_into(w: &mut Writer<Ed25519Signer>, sink: &mut FakeSink, now: u64) {
    while let Some(body) = w.drain() {
        sink.accept(&body);
        w.on_export_result(true, now);
    }
}

#[test]
fn drops_are_reported_by_one_signed_notice_with_the_exact_count_before_the_next_exchange() {
    let tiny = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 4_000 };
    let mut w = writer("node-a.main.9", tiny);
    let ex = sample_exchanges();
    let mut dropped = 0u64;
    for round in 0..4u64 {
        for e in &ex {
            if w.on_record(&e.encode(), T0 + round).unwrap() == Recorded::Dropped {
                dropped += 1;
            }
        }
    }
    assert!(dropped > 10, "{dropped}");
    assert_eq!((w.stats().dropped, w.pending_drops(), w.stats().drop_notices), (dropped, dropped, 0));
    let signed_before = w.stats().signed;
    // The sink takes the first batch: room again, and the notice is chained right away (before
    // any further exchange arrives), with every drop counted.
    let mut sink = FakeSink::default();
    let body = w.poll_send(T0 + SEC).unwrap();
    sink.accept(&body);
    w.on_export_result(true, T0 + SEC);
    assert_eq!((w.pending_drops(), w.stats().drop_notices, w.stats().signed), (0, 1, signed_before + 1));
    assert!(matches!(w.on_record(&ex[0].encode(), T0 + SEC).unwrap(), Recorded::Chained(_)));
    drain_into(&mut w, &mut sink, T0 + 2 * SEC);

    let summary = sink.verify();
    assert_eq!(summary.count as u64, w.stats().signed);
    // The verifier reports what the notices say was lost.
    assert_eq!((summary.dropped, summary.drop_notices), (dropped, 1));
    let found = notices(&sink);
    assert_eq!(found.len(), 1);
    let (seq, count, since, v) = &found[0];
    assert_eq!(*count, dropped);
    assert_eq!(*count, w.stats().dropped);
    assert_eq!(*seq, signed_before, "the notice follows the last receipt signed before the drops");
    assert_eq!(*since, signed_before - 1);
    let r = &v["action_record"];
    assert_eq!(r["verdict"], "warn");
    assert_eq!(r["target"], "warden:chain/node-a.main.9");
    assert_eq!(r["action_type"], "unclassified");
    assert_eq!(r["side_effect_class"], "none");
    assert_eq!(r["intent"].as_str().unwrap().split(' ').next().unwrap(), format!("dropped={dropped}"));
    // The exchange after the notice is the one offered after the room came back.
    let next: serde_json::Value = serde_json::from_str(&sink.lines[*seq as usize + 1]).unwrap();
    assert_eq!(next["action_record"]["request_id"], ex[0].request_id);
}

#[test]
fn while_the_sink_stays_down_drops_accumulate_and_each_outage_gets_its_own_notice() {
    let tiny = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 5_000 };
    let mut w = writer("node-a.main.10", tiny);
    let mut sink = FakeSink::default();
    let ex = sample_exchanges();
    let mut now = T0;
    let mut offered = 0u64;
    let mut chained = 0u64;
    for outage in 0..2 {
        // Sink down: every send fails, the buffer fills, later exchanges are dropped.
        for _ in 0..5 {
            for e in &ex {
                offered += 1;
                if let Recorded::Chained(_) = w.on_record(&e.encode(), now).unwrap() {
                    chained += 1;
                }
            }
            if let Some(_body) = w.poll_send(now) {
                w.on_export_result(false, now);
            }
            now += 40 * SEC; // past any backoff
        }
        // A notice needs room; a failing sink frees none, so the last drops are still pending
        // (a notice may have got in earlier where a larger exchange did not fit).
        assert!(w.pending_drops() > 0, "outage {outage}");
        // Sink back.
        while let Some(body) = w.poll_send(now) {
            sink.accept(&body);
            w.on_export_result(true, now);
            now += SEC;
        }
        assert_eq!(w.pending_drops(), 0);
    }
    drain_into(&mut w, &mut sink, now);
    let found = notices(&sink);
    assert!(found.len() >= 2, "{}", found.len());
    assert_eq!(w.stats().drop_notices, found.len() as u64);
    let reported: u64 = found.iter().map(|n| n.1).sum();
    assert_eq!(reported, w.stats().dropped);
    assert_eq!(offered, chained + w.stats().dropped);
    for (seq, _, since, _) in &found {
        assert_eq!(*since + 1, *seq);
    }
    // Gap-free: every chain_seq once, in order, signed by the writer's key.
    let summary = sink.verify();
    assert_eq!(summary.count as u64, w.stats().signed);
    assert_eq!(w.stats().signed, 1 + chained + found.len() as u64);
}

#[test]
fn a_drop_before_the_chain_could_open_is_reported_right_after_the_chain_open() {
    // Room for nothing while a (failed) batch is in flight.
    let tiny = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 1_500 };
    let mut w = writer("node-a.main.11", tiny);
    let ex = sample_exchanges();
    w.on_record(&ex[0].encode(), T0).unwrap(); // chain-open fits, the exchange may not
    for e in &ex {
        w.on_record(&e.encode(), T0).unwrap();
    }
    let mut sink = FakeSink::default();
    let mut now = T0 + SEC;
    for _ in 0..20 {
        if let Some(body) = w.poll_send(now) {
            sink.accept(&body);
            w.on_export_result(true, now);
        }
        now += SEC;
    }
    let found = notices(&sink);
    assert_eq!(found.iter().map(|n| n.1).sum::<u64>(), w.stats().dropped);
    assert!(w.stats().dropped > 0);
    assert_eq!(sink.verify().count as u64, w.stats().signed);
}

/// Not a test: what one receipt costs the pure writer natively (decode, chain, sign, encode,
/// batch, OTLP request), for docs/receipts.md. Prints, asserts nothing about time.
/// `cargo test --release --test receipts_writer -- --ignored --nocapture native_cost`
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // a measurement: reads the clock on purpose
fn native_cost_per_receipt() {
    use mcp_warden_core::receipt::sign::{sign_record, Signer};
    let n = 20_000u64;
    let ex = sample_exchanges();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| ex[(i % ex.len() as u64) as usize].encode()).collect();
    let big = BatchConfig { max_batch_bytes: 256 * 1024, max_age_nanos: SEC, max_buffer_bytes: 1 << 30 };
    let mut w = writer("node-a.main.cost", big);
    let t = std::time::Instant::now();
    let mut bodies = 0usize;
    for (i, m) in msgs.iter().enumerate() {
        w.on_record(m, T0 + i as u64).unwrap();
        if let Some(b) = w.poll_send(T0 + i as u64) {
            bodies += b.len();
            w.on_export_result(true, T0 + i as u64);
        }
    }
    let total = t.elapsed();
    let signer = test_signer();
    let rec = ex[1].to_record("x-1".into());
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(sign_record(rec.clone(), &signer as &dyn Signer));
    }
    let sign = t.elapsed();
    let t = std::time::Instant::now();
    for m in &msgs {
        std::hint::black_box(mcp_warden_core::receipt::exchange::Exchange::decode(m).unwrap());
    }
    let decode = t.elapsed();
    println!(
        "native per receipt: writer total {:.1} us, of which sign_record (canonical+sha256+ed25519) {:.1} us, queue decode {:.1} us; {} bytes of OTLP",
        total.as_secs_f64() * 1e6 / n as f64,
        sign.as_secs_f64() * 1e6 / n as f64,
        decode.as_secs_f64() * 1e6 / n as f64,
        bodies
    );
}

#[test]
fn exchanges_that_waited_too_long_in_the_queue_are_dropped_and_reported_as_queue_lag() {
    let mut cfg = WriterConfig::new("node-a.main.12".into());
    cfg.batch = small_batches();
    cfg.max_queue_lag_nanos = 5 * SEC;
    cfg.checkpoint_lag_nanos = None;
    let mut w = Writer::new(cfg, test_signer(), None);
    let ex = sample_exchanges(); // enqueued at about T0 + i s (+ their duration)
    assert!(matches!(w.on_record(&ex[0].encode(), T0 + 2 * SEC).unwrap(), Recorded::Chained(_)));
    // The writer fell behind: it gets the next two 30 s after they were enqueued.
    assert_eq!(w.on_record(&ex[1].encode(), T0 + 33 * SEC).unwrap(), Recorded::Dropped);
    assert_eq!(w.on_record(&ex[2].encode(), T0 + 33 * SEC).unwrap(), Recorded::Dropped);
    // A fresh one is chained, after the notice.
    let mut fresh = ex[3].clone();
    fresh.unix_nanos = T0 + 33 * SEC;
    assert!(matches!(w.on_record(&fresh.encode(), T0 + 34 * SEC).unwrap(), Recorded::Chained(3)));
    let mut sink = FakeSink::default();
    drain_into(&mut w, &mut sink, T0 + 35 * SEC);
    let found = notices(&sink);
    assert_eq!(found.len(), 1);
    let intent = found[0].3["action_record"]["intent"].as_str().unwrap().to_string();
    assert!(intent.starts_with("dropped=2 since_seq=1 "), "{intent}");
    assert!(intent.contains("reason=queue_lag") && intent.ends_with(" lagged=2"), "{intent}");
    assert_eq!((w.stats().dropped, w.stats().drop_notices), (2, 1));
    assert_eq!(sink.verify().count, 4);
}

#[test]
fn while_an_export_is_in_flight_a_full_writer_asks_for_no_more_messages() {
    let bound = BatchConfig { max_batch_bytes: 100_000, max_age_nanos: SEC, max_buffer_bytes: 5_000 };
    let mut w = writer("node-a.main.13", bound);
    let ex = sample_exchanges();
    assert!(w.accepting());
    let mut i = 0;
    while w.accepting() && i < 100 {
        w.on_record(&ex[i % ex.len()].encode(), T0).unwrap();
        i += 1;
        if i == 2 {
            let _ = w.poll_send(T0 + SEC).unwrap(); // in flight from now on
        }
    }
    assert!(!w.accepting(), "full while a send is in flight");
    w.on_export_result(true, T0 + SEC);
    assert!(w.accepting(), "the answer frees room");
    // Without a send in flight (sink failing, backing off) the writer takes messages and drops.
    let _ = w.poll_send(T0 + 2 * SEC);
    w.on_export_result(false, T0 + 2 * SEC);
    assert!(w.accepting());
}
