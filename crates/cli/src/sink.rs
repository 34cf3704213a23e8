//! `warden sink --listen ADDR --out DIR [--key HEX]`: a gRPC server for OTLP
//! `opentelemetry.proto.collector.logs.v1.LogsService/Export` that files receipts.
//!
//! Each log record's body (a string) is one receipt's JSON; its chain id comes from the record
//! attribute `warden.chain_id`, else the resource's. Receipts go to `DIR/<chain id>.jsonl`, one
//! per line, byte for byte, appended in arrival order and synced to disk before the RPC answers.
//! Files can be checked with `warden verify` or `pipelock-verify`.
//!
//! Rejected (counted in the response's `partial_success`): a body that is not a string or not a
//! receipt, a missing or unsafe chain id (allowed: `[A-Za-z0-9._-]`, 1..=128, no leading dot),
//! and with `--key` a receipt whose signature does not verify against that key. A receipt whose
//! `chain_seq` is not above the last one filed for its chain is a retried duplicate: skipped, not
//! rejected. A gap is filed anyway and logged (the verifier will show it). A failure to write is
//! the sink's fault: the call fails with UNAVAILABLE so the writer retries.
//!
//! A digest entry (`warden.kind=digest`: an exchange the writer did not sign on its own but
//! folded into a checkpoint batch under overload) goes to `DIR/<chain id>.digests.jsonl` as
//! `{"batch":n,"index":i,"record":<body verbatim>}`; retried duplicates (a `(batch, index)` not
//! after the last filed) are skipped. `warden verify` checks that file against the chain's
//! checkpoints. A chain id ending in `.digests` is refused (its file would be another chain's
//! digest file).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use mcp_warden_core::export::attr;
use mcp_warden_core::export::proto::{
    any_value, int_attr, str_attr, ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use mcp_warden_core::export::EXPORT_PATH;
use mcp_warden_core::receipt::checkpoint::{digest_line, digest_position, DIGEST_KIND};
use mcp_warden_core::receipt::sign::parse_hex32;
use mcp_warden_core::receipt::verify::verify_receipt;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service, StdError};

const USAGE: &str = "usage: warden sink --listen ADDR --out DIR [--key HEX]";
const SERVICE_NAME: &str = "opentelemetry.proto.collector.logs.v1.LogsService";
/// Chain files kept open at once (every writer restart starts a chain).
const MAX_OPEN_CHAINS: usize = 256;

pub fn run(args: &[String]) -> ExitCode {
    let mut listen = None;
    let mut out = None;
    let mut key = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => listen = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            "--key" => key = it.next().cloned(),
            _ => return usage(),
        }
    }
    let (Some(listen), Some(out)) = (listen, out) else { return usage() };
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        eprintln!("warden sink: --listen {listen}: expected IP:PORT");
        return ExitCode::from(2);
    };
    let key = match key.as_deref().map(parse_hex32).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("warden sink: --key: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("warden sink: --out {out}: {e}");
        return ExitCode::from(1);
    }
    let store = Store { dir: PathBuf::from(&out), key, chains: HashMap::new() };
    match serve(addr, store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden sink: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn serve(addr: SocketAddr, store: Store) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("warden sink: listening on {bound}, filing receipts under {}", store.dir.display());
        let svc = LogsServer { store: Arc::new(Mutex::new(store)) };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(svc, incoming, shutdown_signal())
            .await
            .map_err(|e| format!("server: {e}"))
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => std::future::pending::<()>().await,
    }
    eprintln!("warden sink: shutting down");
}

/// The chain files and what was filed last in each.
struct Store {
    dir: PathBuf,
    key: Option<[u8; 32]>,
    chains: HashMap<String, ChainFile>,
}

struct ChainFile {
    file: File,
    last_seq: Option<u64>,
}

#[derive(Default)]
struct Outcome {
    rejected: i64,
    errors: Vec<String>,
}

impl Outcome {
    fn reject(&mut self, why: String) {
        self.rejected += 1;
        if self.errors.len() < 5 {
            self.errors.push(why);
        }
    }
}

fn safe_chain_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && !id.ends_with(DIGESTS_SUFFIX)
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// File stem suffix of a chain's digest file.
const DIGESTS_SUFFIX: &str = ".digests";

/// A digest entry's place as one ordered number: batches before indexes (an index is below 2^32:
/// the writer's batches are far smaller).
fn digest_key(batch: u64, index: u64) -> Option<u64> {
    (batch < 1 << 31 && index < 1 << 32).then_some((batch << 32) | index)
}

fn digest_key_of(line: &str) -> Option<u64> {
    digest_position(line).and_then(|(b, i)| digest_key(b, i))
}

/// Lines per file, in arrival order; files in first-seen order.
type Pending = Vec<(String, Vec<(u64, String)>)>;

/// Appends `line` to `file`'s group.
fn group(pending: &mut Pending, file: String, line: (u64, String)) {
    match pending.iter_mut().find(|(f, _)| *f == file) {
        Some((_, lines)) => lines.push(line),
        None => pending.push((file, vec![line])),
    }
}

fn chain_seq_of(body: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("action_record")?.get("chain_seq")?.as_u64()
}

/// `chain_seq` of the last receipt in an existing chain file. A trailing line without its newline
/// is a write cut short by a crash: it was never acknowledged, so it is cut off (the writer
/// resends it) rather than left to corrupt the line after it.
fn recover(path: &Path, position: fn(&str) -> Option<u64>) -> Result<Option<u64>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        eprintln!("warden sink: {}: cutting {} bytes of an unfinished last line", path.display(), text.len() - complete);
        let file = OpenOptions::new().write(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        file.set_len(complete as u64).and_then(|_| file.sync_data()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let complete_text = text.get(..complete).unwrap_or_default();
    Ok(complete_text.lines().rev().find(|l| !l.trim().is_empty()).and_then(position))
}

impl Store {
    fn ingest(&mut self, req: ExportLogsServiceRequest) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        let mut pending = Pending::new();
        let mut digests = Pending::new();
        for rl in req.resource_logs {
            let resource_chain = rl.resource.as_ref().and_then(|r| str_attr(&r.attributes, attr::CHAIN_ID)).map(str::to_owned);
            for record in rl.scope_logs.into_iter().flat_map(|s| s.log_records) {
                let chain = str_attr(&record.attributes, attr::CHAIN_ID).map(str::to_owned).or_else(|| resource_chain.clone());
                let Some(chain) = chain.filter(|c| safe_chain_id(c)) else {
                    out.reject("missing or unsafe warden.chain_id".into());
                    continue;
                };
                let Some(any_value::Value::StringValue(body)) = record.body.and_then(|b| b.value) else {
                    out.reject(format!("chain {chain}: log body is not a string"));
                    continue;
                };
                if str_attr(&record.attributes, attr::KIND) == Some(DIGEST_KIND) {
                    let at = |k| int_attr(&record.attributes, k).and_then(|v| u64::try_from(v).ok());
                    let key = at(attr::BATCH).zip(at(attr::INDEX)).and_then(|(b, i)| Some((b, i, digest_key(b, i)?)));
                    let is_object = serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v.is_object());
                    let Some((batch, index, key)) = key.filter(|_| is_object) else {
                        out.reject(format!(
                            "chain {chain}: digest entry without batch/index or with a body that is not a record"
                        ));
                        continue;
                    };
                    group(&mut digests, format!("{chain}{DIGESTS_SUFFIX}"), (key, digest_line(batch, index, &body)));
                    continue;
                }
                let Some(seq) = chain_seq_of(&body) else {
                    out.reject(format!("chain {chain}: log body is not a receipt"));
                    continue;
                };
                if let Some(key) = &self.key {
                    if let Err(e) = verify_receipt(&body, Some(key)) {
                        out.reject(format!("chain {chain} seq {seq}: {e}"));
                        continue;
                    }
                }
                group(&mut pending, chain, (seq, body));
            }
        }
        // Digests first: a checkpoint in this call then never reaches disk before its entries.
        for (stem, lines) in digests {
            self.append(&stem, lines, digest_key_of).map_err(|e| format!("{stem}: {e}"))?;
        }
        for (chain, lines) in pending {
            // Our fault (disk): fail the call so the writer retries; what was filed is deduplicated.
            self.append(&chain, lines, chain_seq_of).map_err(|e| format!("chain {chain}: {e}"))?;
        }
        Ok(out)
    }

    /// Appends `lines` (ordered by their position) to `<stem>.jsonl`, skipping those not after
    /// the last one filed; `position` reads a filed line's position back after a restart.
    fn append(&mut self, chain: &str, lines: Vec<(u64, String)>, position: fn(&str) -> Option<u64>) -> Result<(), String> {
        let path = self.dir.join(format!("{chain}.jsonl"));
        if !self.chains.contains_key(chain) {
            if self.chains.len() >= MAX_OPEN_CHAINS {
                // Bounded file handles: close them all; a chain reopens (and rereads its tail) on use.
                self.chains.clear();
            }
            let last_seq = recover(&path, position)?;
            let file =
                OpenOptions::new().create(true).append(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            self.chains.insert(chain.to_string(), ChainFile { file, last_seq });
        }
        let Some(cf) = self.chains.get_mut(chain) else { return Err("chain file vanished".into()) };
        let mut buf = String::new();
        let (mut filed, mut dups) = (0usize, 0usize);
        // Receipts count up by one; digest positions jump at each batch.
        let gaps_matter = !chain.ends_with(DIGESTS_SUFFIX);
        // What is filed counts only once it is on disk: a failed write leaves the position where it
        // was, so the writer's retry is filed, not skipped as a duplicate.
        let mut last_seq = cf.last_seq;
        for (seq, body) in lines {
            if last_seq.is_some_and(|last| seq <= last) {
                dups += 1;
                continue;
            }
            let expected = last_seq.map_or(0, |l| l.saturating_add(1));
            if seq != expected && gaps_matter {
                eprintln!("warden sink: chain {chain}: gap, expected chain_seq {expected}, got {seq}");
            }
            buf.push_str(&body);
            buf.push('\n');
            last_seq = Some(seq);
            filed += 1;
        }
        if !buf.is_empty() {
            if let Err(e) = cf.file.write_all(buf.as_bytes()).and_then(|_| cf.file.sync_data()) {
                // A partial write may have left half a line: reopen (and cut it) on the retry.
                self.chains.remove(chain);
                return Err(format!("{}: {e}", path.display()));
            }
        }
        cf.last_seq = last_seq;
        eprintln!("warden sink: chain {chain}: filed {filed}, skipped {dups} duplicate(s)");
        Ok(())
    }
}

/// The LogsService with its one method, written the way tonic's generator would write it.
#[derive(Clone)]
struct LogsServer {
    store: Arc<Mutex<Store>>,
}

impl tonic::server::NamedService for LogsServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct ExportSvc(Arc<Mutex<Store>>);

impl tonic::server::UnaryService<ExportLogsServiceRequest> for ExportSvc {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<tonic::Response<ExportLogsServiceResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportLogsServiceRequest>) -> Self::Future {
        let store = self.0.clone();
        Box::pin(async move {
            let outcome = match store.lock() {
                Ok(mut s) => s.ingest(request.into_inner()).map_err(|e| {
                    eprintln!("warden sink: {e}");
                    tonic::Status::unavailable(format!("sink could not file receipts: {e}"))
                })?,
                Err(_) => return Err(tonic::Status::internal("sink store poisoned by an earlier failure")),
            };
            let partial_success = (outcome.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: outcome.rejected,
                error_message: outcome.errors.join("; "),
            });
            Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success }))
        })
    }
}

impl<B> Service<http::Request<B>> for LogsServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT_PATH {
            return Box::pin(async move { Ok(tonic::Status::unimplemented("only LogsService/Export").into_http()) });
        }
        let svc = ExportSvc(self.store.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(svc, req).await)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn store(dir: &Path) -> Store {
        Store { dir: dir.to_path_buf(), key: None, chains: HashMap::new() }
    }

    fn entry(batch: u64, index: u64) -> (u64, String) {
        (digest_key(batch, index).unwrap(), digest_line(batch, index, &format!("{{\"action_id\":\"c-b{batch}-{index}\"}}")))
    }

    #[test]
    fn digest_entries_are_filed_once_across_retries_and_restarts() {
        let dir = std::env::temp_dir().join(format!("warden-sink-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stem = "node.main.1.digests";
        store(&dir).append(stem, vec![entry(1, 0), entry(1, 1)], digest_key_of).unwrap();
        let mut s = store(&dir);
        // A retried export (1/1 again), then the next batch: 1/1 skipped, positions jump at 2/0.
        s.append(stem, vec![entry(1, 1), entry(2, 0)], digest_key_of).unwrap();
        // A restarted sink reads the last position back from the file.
        store(&dir).append(stem, vec![entry(2, 0), entry(2, 1)], digest_key_of).unwrap();
        let text = std::fs::read_to_string(dir.join(format!("{stem}.jsonl"))).unwrap();
        let positions: Vec<_> = text.lines().map(|l| digest_position(l).unwrap()).collect();
        assert_eq!(positions, [(1, 0), (1, 1), (2, 0), (2, 1)]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!safe_chain_id("node.main.1.digests"), "a chain id may not name another chain's digest file");
        assert!(digest_key(1 << 31, 0).is_none() && digest_key(1, 1 << 32).is_none());
    }
}
