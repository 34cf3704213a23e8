//! `rls-probe`: one `ShouldRateLimit` call to an Envoy rate limit service, answer as one JSON line.
//!
//! `rls-probe --addr IP:PORT --domain D [--hits N] --entry k=v [--entry k=v ...]
//!            [--descriptor-hits N] [--next-descriptor --entry k=v ...] [--timeout-ms MS]`
//!
//! `--entry` adds to the current descriptor, `--next-descriptor` starts another, and
//! `--descriptor-hits` sets the current descriptor's own `hits_addend`. Prints
//! `{"overall_code":"OK","statuses":[{"code":"OK","limit":{"name":..,"requests_per_unit":..,"unit":..},
//! "limit_remaining":..,"reset_ms":..}]}` and exits 0, or `{"error":"..."}` and exits 1 (a gRPC
//! failure adds `"grpc_code"`), or exits 2 on bad arguments.

use std::error::Error;
use std::time::Duration;

use serde_json::{json, Value};
use tonic::codegen::http::uri::PathAndQuery;
use warden_rls::{
    Code, DescriptorStatus, Entry, RateLimitDescriptor, RateLimitRequest, RateLimitResponse, UInt64Value, Unit,
    SHOULD_RATE_LIMIT_PATH,
};

const USAGE: &str = "usage: rls-probe --addr IP:PORT --domain D [--hits N] --entry k=v [--entry k=v ...] \
                     [--descriptor-hits N] [--next-descriptor ...] [--timeout-ms MS]";

struct Args {
    addr: String,
    request: RateLimitRequest,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let (mut addr, mut domain, mut hits, mut timeout_ms) = (None, None, 0u32, 2000u64);
    let (mut descriptors, mut current) = (Vec::new(), RateLimitDescriptor::default());
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = Some(value()?),
            "--domain" => domain = Some(value()?),
            "--hits" => hits = value()?.parse().map_err(|e| format!("--hits: {e}"))?,
            "--timeout-ms" => timeout_ms = value()?.parse().map_err(|e| format!("--timeout-ms: {e}"))?,
            "--entry" => {
                let v = value()?;
                let (key, value) = v.split_once('=').ok_or(format!("--entry {v}: expected k=v"))?;
                current.entries.push(Entry { key: key.into(), value: value.into() });
            }
            "--descriptor-hits" => {
                let n = value()?.parse().map_err(|e| format!("--descriptor-hits: {e}"))?;
                current.hits_addend = Some(UInt64Value { value: n });
            }
            "--next-descriptor" => descriptors.push(std::mem::take(&mut current)),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    descriptors.push(current);
    let (Some(addr), Some(domain)) = (addr, domain) else { return Err("--addr and --domain are required".into()) };
    if descriptors.iter().any(|d| d.entries.is_empty()) {
        return Err("every descriptor needs at least one --entry".into());
    }
    let request = RateLimitRequest { domain, descriptors, hits_addend: hits };
    Ok(Args { addr, request, timeout: Duration::from_millis(timeout_ms) })
}

async fn call(args: Args) -> Result<RateLimitResponse, Box<dyn Error>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", args.addr))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout);
    let channel = endpoint.connect().await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let path = PathAndQuery::from_static(SHOULD_RATE_LIMIT_PATH);
    let codec = tonic_prost::ProstCodec::<RateLimitRequest, RateLimitResponse>::default();
    Ok(grpc.unary(tonic::Request::new(args.request), path, codec).await?.into_inner())
}

fn code_name(code: i32) -> &'static str {
    Code::try_from(code).map_or("UNKNOWN", Code::name)
}

fn status_json(s: &DescriptorStatus) -> Value {
    let limit = s.current_limit.as_ref().map(|l| {
        json!({
            "name": l.name,
            "requests_per_unit": l.requests_per_unit,
            "unit": Unit::try_from(l.unit).map_or("UNKNOWN", Unit::name),
        })
    });
    let reset_ms = s.duration_until_reset.as_ref().map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
    json!({
        "code": code_name(s.code),
        "limit": limit,
        "limit_remaining": s.limit_remaining,
        "reset_ms": reset_ms,
    })
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rls-probe: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Box::<dyn Error>::from)
        .and_then(|rt| rt.block_on(call(args)));
    match result {
        Ok(resp) => {
            let statuses: Vec<Value> = resp.statuses.iter().map(status_json).collect();
            println!("{}", json!({"overall_code": code_name(resp.overall_code), "statuses": statuses}));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let out = match e.downcast_ref::<tonic::Status>() {
                Some(s) => json!({"error": s.message(), "grpc_code": format!("{:?}", s.code())}),
                None => json!({"error": error_chain(e.as_ref())}),
            };
            println!("{out}");
            std::process::ExitCode::from(1)
        }
    }
}

/// An error with its sources (tonic's transport errors say little at the top).
fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
