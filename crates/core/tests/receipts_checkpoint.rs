//! Signed checkpoints under overload: the writer digests exchanges into batches when the queue
//! lag passes its threshold, closes each with one signed checkpoint, and goes back to a receipt
//! per exchange once it has caught up. What a sink files (receipts in `<chain>.jsonl`, digest
//! entries in `<chain>.digests.jsonl`) must verify as one chain whose checkpoints cover every
//! digested exchange, and any change to the digest file must fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod receipts_support;

use mcp_warden_core::export::attr;
use mcp_warden_core::export::batch::BatchConfig;
use mcp_warden_core::export::proto::{any_value, int_attr, str_attr, ExportLogsServiceRequest};
use mcp_warden_core::receipt::checkpoint::{
    digest_line, verify_batches, BatchFailure, Claim, Coverage, CoverageError, CHECKPOINT_METHOD,
};
use mcp_warden_core::receipt::exchange::{Exchange, WireVerdict};
use mcp_warden_core::receipt::sign::parse_hex32;
use mcp_warden_core::receipt::verify::verify_chain;
use mcp_warden_core::receipt_writer::{Recorded, Writer, WriterConfig};
use prost::Message;
use receipts_support::*;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// Files what the writer exports the way `warden sink` does.
#[derive(Default)]
struct Files {
    receipts: Vec<String>,
    digests: Vec<String>,
}

impl Files {
    fn accept(&mut self, body: &[u8]) {
        let req = ExportLogsServiceRequest::decode(body).unwrap();
        for rec in req.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
            let Some(any_value::Value::StringValue(json)) = rec.body.as_ref().and_then(|b| b.value.clone()) else {
                panic!("body not a string")
            };
            if str_attr(&rec.attributes, attr::KIND) == Some("digest") {
                assert!(
                    str_attr(&rec.attributes, attr::CHAIN_SEQ).is_none() && int_attr(&rec.attributes, attr::CHAIN_SEQ).is_none()
                );
                let batch = int_attr(&rec.attributes, attr::BATCH).unwrap() as u64;
                let index = int_attr(&rec.attributes, attr::INDEX).unwrap() as u64;
                self.digests.push(digest_line(batch, index, &json));
            } else {
                self.receipts.push(json);
            }
        }
    }

    fn chain(&self) -> String {
        self.receipts.join("\n")
    }

    fn digest_file(&self) -> String {
        self.digests.join("\n")
    }
}

/// The chain and its digest file checked together, against the test key.
fn cover(chain: &str, digests: &str) -> Result<Coverage, CoverageError> {
    match verify_batches(chain, digests, Some(&parse_hex32(TEST_PUB).unwrap())) {
        Ok((_, cover)) => Ok(cover),
        Err(BatchFailure::Coverage(e)) => Err(e),
        Err(BatchFailure::Chain(e)) => panic!("the chain itself failed: {e}"),
    }
}

fn writer(max_records: u64) -> Writer<mcp_warden_core::receipt::Ed25519Signer> {
    let mut cfg = WriterConfig::new("node-a.main.77".to_string());
    cfg.batch = BatchConfig { max_batch_bytes: 64 * 1024, max_age_nanos: SEC, max_buffer_bytes: 1 << 24 };
    cfg.max_queue_lag_nanos = 0;
    cfg.checkpoint_lag_nanos = Some(500 * MS);
    cfg.checkpoint_max_records = max_records;
    cfg.checkpoint_max_age_nanos = SEC;
    Writer::new(cfg, test_signer(), None)
}

/// Exchange `i`, enqueued at `at` (its time and duration put it there).
fn at(i: u64, at: u64) -> Exchange {
    let mut e = exchange(
        i,
        "tools/call",
        &format!("tool_{i}"),
        if i.is_multiple_of(5) { WireVerdict::Block } else { WireVerdict::Allow },
    );
    e.unix_nanos = at;
    e.duration_micros = 0;
    e
}

/// Sends what is due (`drain`: everything, as at shutdown, which closes the open batch).
fn flush(w: &mut Writer<mcp_warden_core::receipt::Ed25519Signer>, files: &mut Files, now: u64, drain: bool) {
    while let Some(body) = if drain { w.drain() } else { w.poll_send(now) } {
        files.accept(&body);
        w.on_export_result(true, now);
    }
}

/// 10 exchanges on time, 700 behind by 2 s (digested: batches of 256, 256, 188), 10 on time
/// again (the open batch closes first, then a receipt each).
fn overloaded_run() -> (Files, Writer<mcp_warden_core::receipt::Ed25519Signer>) {
    let mut w = writer(256);
    let mut files = Files::default();
    let mut now = T0;
    let mut kinds = Vec::new();
    for i in 0..720u64 {
        now += MS;
        let lag = if (10..710).contains(&i) { 2 * SEC } else { 0 };
        kinds.push(w.on_record(&at(i, now - lag).encode(), now).unwrap());
        if i % 50 == 0 {
            flush(&mut w, &mut files, now, false);
        }
    }
    flush(&mut w, &mut files, now + 10 * SEC, true);
    let chained = |r: &&Recorded| matches!(r, Recorded::Chained(_));
    assert_eq!(kinds.iter().filter(chained).count(), 20, "on time: one receipt each");
    assert_eq!(kinds.iter().filter(|r| matches!(r, Recorded::Digested(_))).count(), 700);
    let batches: std::collections::BTreeSet<String> = kinds[10..710].iter().map(|r| format!("{r:?}")).collect();
    assert!(kinds[10..710].iter().all(|r| matches!(r, Recorded::Digested(1..=3))), "three batches: {batches:?}");
    (files, w)
}

#[test]
fn behind_the_writer_digests_and_every_exchange_is_covered_by_a_checkpoint() {
    let (files, w) = overloaded_run();
    let stats = w.stats();
    assert_eq!((stats.digested, stats.checkpoints, stats.dropped), (700, 3, 0));
    // chain-open + 20 receipts + 3 checkpoints, one valid chain (any v1 verifier reads it).
    let summary = verify_chain(&files.chain(), Some(&parse_hex32(TEST_PUB).unwrap())).unwrap();
    assert_eq!(summary.count, 24);
    let methods: Vec<String> = files
        .receipts
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action_record"]["method"].as_str().unwrap().to_string())
        .collect();
    let checkpoints: Vec<usize> = methods.iter().enumerate().filter(|(_, m)| *m == CHECKPOINT_METHOD).map(|(i, _)| i).collect();
    // Batches close at 256 entries; the third when the lag is gone, before the next receipt.
    assert_eq!(checkpoints.len(), 3);
    assert_eq!(methods[checkpoints[2] + 1], "tools/call");
    let cover = cover(&files.chain(), &files.digest_file()).unwrap();
    assert_eq!((cover.checkpoints, cover.exchanges), (3, 700));
    let intents: Vec<Claim> = checkpoints
        .iter()
        .map(|&i| {
            let v: serde_json::Value = serde_json::from_str(&files.receipts[i]).unwrap();
            Claim::parse_intent(v["action_record"]["intent"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(intents.iter().map(|c| (c.batch, c.count)).collect::<Vec<_>>(), [(1, 256), (2, 256), (3, 188)]);
}

#[test]
fn a_changed_removed_added_reordered_or_moved_entry_fails() {
    let (files, _) = overloaded_run();
    let chain = files.chain();
    let lines = files.digests.clone();
    let check = |digests: Vec<String>| cover(&chain, &digests.join("\n"));

    let mut changed = lines.clone();
    changed[3] = changed[3].replace("tool_13", "tool_14");
    assert_eq!(check(changed), Err(CoverageError::RootMismatch { batch: 1 }));

    let mut removed = lines.clone();
    removed.remove(300);
    assert_eq!(check(removed), Err(CoverageError::Incomplete { batch: 2, expected: 256, found: 255 }));

    let mut added = lines.clone();
    added.push(added[5].clone());
    assert_eq!(check(added), Err(CoverageError::Incomplete { batch: 1, expected: 256, found: 257 }));

    // Swapping the records of two entries (their indexes stay): the fold order changes.
    let mut swapped = lines.clone();
    let record = |l: &str| l.split_once(",\"record\":").unwrap().1.strip_suffix('}').unwrap().to_string();
    let (a, b) = (record(&swapped[1]), record(&swapped[2]));
    swapped[1] = swapped[1].replace(&a, &b);
    swapped[2] = swapped[2].replace(&b, &a);
    assert_eq!(check(swapped), Err(CoverageError::RootMismatch { batch: 1 }));

    // Moved to another batch: one short, one long.
    let mut moved = lines.clone();
    moved[0] = moved[0].replacen("\"batch\":1,", "\"batch\":2,", 1);
    assert!(matches!(check(moved), Err(CoverageError::Incomplete { batch: 1, .. })));

    // Entries no checkpoint covers (the writer died before closing the batch).
    let mut orphan = lines.clone();
    orphan.push(digest_line(9, 0, &record(&lines[0])));
    assert_eq!(check(orphan), Err(CoverageError::Uncovered { batch: 9, entries: 1 }));

    // A line that wraps a forged claim beside its detail (a note, or a receipt) is refused by the
    // chain check: two claims in one line, and a reader's tool may take the forged one.
    let key = parse_hex32(TEST_PUB).unwrap();
    let forged_claim = |batch: u64| {
        format!(
            r#""action_record":{{"method":"warden/checkpoint","principal":"mcp-warden","layer":"receipt_chain","pattern":"checkpoint","intent":"batch={batch} count=1 first=2026-04-15T12:00:00Z last=2026-04-15T12:00:00Z root={} anchor={}"}}"#,
            "00".repeat(32),
            "00".repeat(32)
        )
    };
    let refused = |r: Result<_, BatchFailure>| matches!(r, Err(BatchFailure::Chain(f)) if f.to_string().contains("receipt fields beside its detail"));
    let mut noted = files.receipts.clone();
    noted.insert(5, format!(r#"{{"type":"note","detail":{{}},{}}}"#, forged_claim(99)));
    let mut forged_digests = lines.clone();
    forged_digests.push(digest_line(99, 0, &record(&lines[0])));
    assert!(refused(verify_batches(&noted.join("\n"), &forged_digests.join("\n"), Some(&key))));
    let checkpoint_line = files.receipts.iter().position(|l| l.contains(CHECKPOINT_METHOD)).unwrap();
    let mut wrapped = files.receipts.clone();
    wrapped[checkpoint_line] =
        format!(r#"{{"type":"action_receipt","detail":{},{}}}"#, files.receipts[checkpoint_line], forged_claim(1));
    assert!(refused(verify_batches(&wrapped.join("\n"), &files.digest_file(), Some(&key))));
    // Wrapped once and nothing beside it, the checkpoint is the receipt it wraps.
    let mut honest = files.receipts.clone();
    honest[checkpoint_line] = format!(r#"{{"type":"action_receipt","detail":{}}}"#, files.receipts[checkpoint_line]);
    assert!(verify_batches(&honest.join("\n"), &files.digest_file(), Some(&key)).is_ok());
    // A note line with nothing forged in it is skipped (and counted by the chain check).
    let mut with_note = files.receipts.clone();
    with_note.insert(5, r#"{"type":"note","detail":{}}"#.to_owned());
    assert!(verify_batches(&with_note.join("\n"), &files.digest_file(), Some(&key)).is_ok());
    // Nor can an entry wrap another (each level would be parsed again).
    let mut nested = files.receipts.clone();
    nested[3] = format!(r#"{{"type":"action_receipt","detail":{{"type":"action_receipt","detail":{}}}}}"#, files.receipts[3]);
    assert!(matches!(verify_batches(&nested.join("\n"), &files.digest_file(), Some(&key)), Err(BatchFailure::Chain(_))));

    // A chain without the receipt the batch was anchored to (receipts[10] is the last one before
    // batch 1 opened: its anchor). Without it the chain
    // itself fails; the batch check alone also refuses the anchor.
    let mut without_anchor = files.receipts.clone();
    without_anchor.remove(10);
    assert!(matches!(verify_batches(&without_anchor.join("\n"), &files.digest_file(), Some(&key)), Err(BatchFailure::Chain(_))));

    assert_eq!(check(vec!["{\"batch\":1}".into()]), Err(CoverageError::BadDigestLine { line: 1 }));
    assert_eq!(check(lines), Ok(Coverage { checkpoints: 3, exchanges: 700 }));
}

#[test]
fn an_old_batch_closes_by_age_and_shutdown_closes_the_last_one() {
    let mut w = writer(10_000);
    let mut files = Files::default();
    let base = T0 + 10 * SEC;
    w.on_record(&at(1, base).encode(), base).unwrap(); // on time: the chain-open and a receipt
    for i in 2..6 {
        assert_eq!(w.on_record(&at(i, base).encode(), base + SEC).unwrap(), Recorded::Digested(1));
    }
    // An export goes out and waits for its answer; a tick after the batch's max age closes the
    // batch all the same (the checkpoint waits in the buffer for the next send).
    let in_flight = w.poll_send(base + SEC + 1).unwrap();
    assert_eq!(w.stats().checkpoints, 0);
    assert_eq!(w.poll_send(base + 3 * SEC), None);
    assert_eq!(w.stats().checkpoints, 1);
    files.accept(&in_flight);
    w.on_export_result(true, base + 3 * SEC);
    files.accept(&w.poll_send(base + 5 * SEC).unwrap());
    w.on_export_result(true, base + 5 * SEC);
    assert_eq!(w.on_record(&at(6, base).encode(), base + 4 * SEC).unwrap(), Recorded::Digested(2));
    while let Some(body) = w.drain() {
        files.accept(&body);
        w.on_export_result(true, base + 5 * SEC);
    }
    assert_eq!(w.stats().checkpoints, 2);
    let cover = cover(&files.chain(), &files.digest_file()).unwrap();
    assert_eq!((cover.checkpoints, cover.exchanges), (2, 5));
}

#[test]
fn checkpoint_intents_parse_only_when_complete_and_canonical() {
    let h = "ab".repeat(32);
    let ok = format!("batch=3 count=2 first=2026-04-15T12:00:00Z last=2026-04-15T12:00:01Z root={h} anchor={h}");
    let c = Claim::parse_intent(&ok).unwrap();
    assert_eq!((c.batch, c.count), (3, 2));
    for bad in [
        ok.replace("batch=3 ", ""),
        format!("{ok} batch=4"),
        ok.replace(&format!("root={h}"), &format!("root={}", h.to_uppercase())),
        ok.replace("count=2", "count=-2"),
        format!("{ok} extra=1"),
        ok.replace(" last=2026-04-15T12:00:01Z", ""),
    ] {
        assert_eq!(Claim::parse_intent(&bad), None, "{bad}");
    }
}

#[test]
fn a_client_sending_the_checkpoint_method_gets_an_ordinary_receipt_that_verification_passes_over() {
    let mut w = writer(4);
    let mut files = Files::default();
    let base = T0 + 10 * SEC;
    let mut forged = at(1, base);
    forged.method = CHECKPOINT_METHOD.to_string();
    assert!(matches!(w.on_record(&forged.encode(), base).unwrap(), Recorded::Chained(_)));
    for i in 2..6 {
        assert_eq!(w.on_record(&at(i, base).encode(), base + SEC).unwrap(), Recorded::Digested(1));
    }
    flush(&mut w, &mut files, base + 5 * SEC, true);
    let methods: Vec<String> = files
        .receipts
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action_record"]["method"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(methods, ["warden/chain_open", CHECKPOINT_METHOD, CHECKPOINT_METHOD]);
    let cover = cover(&files.chain(), &files.digest_file()).unwrap();
    assert_eq!((cover.checkpoints, cover.exchanges), (1, 4));
}
