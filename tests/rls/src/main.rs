//! `warden-rls`: a real Envoy global rate limit service for the e2e tests.
//!
//! `warden-rls --listen IP:PORT --limits FILE (--redis redis://IP:PORT | --memory) [--verbose]`
//!
//! Serves `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over gRPC with Kuadrant's
//! limitador as the engine, its counters in Redis (`--redis`) or in this process (`--memory`, for
//! debugging). The limits file is a JSON list of
//! `{"namespace", "max_value", "seconds", "conditions": [CEL], "variables": [CEL], "name"}`;
//! a request's `domain` is the namespace.
//!
//! Each descriptor is checked on its own: its entries become the limitador context (`key` is a
//! variable bound to `value`), and it adds its own `hits_addend` if set, else the request's, else
//! 1, to every limit that applies to it. A descriptor over a limit is answered OVER_LIMIT and
//! counts nothing; one under every limit counts (even when another descriptor of the same request
//! is over). The overall code is OVER_LIMIT when any descriptor is. A storage failure (Redis down)
//! fails the call with UNAVAILABLE, so Envoy's `failure_mode_deny` decides.
//!
//! Prints `listening on IP:PORT` on stdout once it accepts connections; exits 0 on SIGTERM/SIGINT.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use limitador::limit::{Context as LimitContext, Expression, Limit, Namespace, Predicate};
use limitador::storage::redis::AsyncRedisStorage;
use limitador::{AsyncRateLimiter, CheckResult, RateLimiter};
use serde::Deserialize;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service, StdError};
use warden_rls::{
    Code, DescriptorStatus, RateLimit, RateLimitDescriptor, RateLimitRequest, RateLimitResponse, Unit, SERVICE_NAME,
    SHOULD_RATE_LIMIT_PATH,
};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: warden-rls --listen IP:PORT --limits FILE (--redis redis://IP:PORT | --memory) [--verbose]";
/// How long in-flight calls get to finish after SIGTERM before the process exits anyway (Envoy
/// keeps its HTTP/2 connection open).
const DRAIN: Duration = Duration::from_secs(2);

struct Args {
    listen: SocketAddr,
    limits: String,
    redis: Option<String>,
    verbose: bool,
}

fn parse_args() -> Result<Args, BoxError> {
    let (mut listen, mut limits, mut redis, mut memory, mut verbose) = (None, None, None, false, false);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => listen = it.next(),
            "--limits" => limits = it.next(),
            "--redis" => redis = it.next(),
            "--memory" => memory = true,
            "--verbose" => verbose = true,
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
        }
    }
    let (Some(listen), Some(limits)) = (listen, limits) else { return Err(USAGE.into()) };
    if redis.is_some() == memory {
        return Err(format!("exactly one of --redis and --memory\n{USAGE}").into());
    }
    let listen = listen.parse().map_err(|e| format!("--listen {listen}: {e}"))?;
    Ok(Args { listen, limits, redis, verbose })
}

/// One entry of the limits file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSpec {
    namespace: String,
    max_value: u64,
    seconds: u64,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

fn load_limits(path: &str) -> Result<Vec<Limit>, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--limits {path}: {e}"))?;
    let specs: Vec<LimitSpec> = serde_json::from_str(&text).map_err(|e| format!("--limits {path}: {e}"))?;
    specs
        .into_iter()
        .map(|s| {
            let conditions = s.conditions.iter().map(Predicate::parse).collect::<Result<Vec<_>, _>>()?;
            let variables = s.variables.iter().map(Expression::parse).collect::<Result<Vec<_>, _>>()?;
            let mut limit = Limit::new(s.namespace, s.max_value, s.seconds, conditions, variables);
            if let Some(name) = s.name {
                limit.set_name(name);
            }
            Ok(limit)
        })
        .collect()
}

/// limitador's two front ends: async for Redis, blocking for the in-memory store.
enum Limiter {
    Redis(AsyncRateLimiter),
    Memory(RateLimiter),
}

impl Limiter {
    async fn new(redis: Option<&str>, limits: Vec<Limit>) -> Result<Self, BoxError> {
        let limiter = match redis {
            Some(url) => {
                let storage = AsyncRedisStorage::new(url).await.map_err(|e| format!("--redis {url}: {e}"))?;
                Limiter::Redis(AsyncRateLimiter::new_with_storage(Box::new(storage)))
            }
            None => Limiter::Memory(RateLimiter::new(10_000)),
        };
        for limit in limits {
            match &limiter {
                Limiter::Redis(l) => l.add_limit(limit),
                Limiter::Memory(l) => l.add_limit(limit),
            };
        }
        Ok(limiter)
    }

    async fn check_and_update(&self, ns: &Namespace, ctx: &LimitContext<'_>, hits: u64) -> Result<CheckResult, String> {
        match self {
            Limiter::Redis(l) => l.check_rate_limited_and_update(ns, ctx, hits).await,
            Limiter::Memory(l) => l.check_rate_limited_and_update(ns, ctx, hits),
        }
        .map_err(|e| e.to_string())
    }
}

struct Rls {
    limiter: Limiter,
    verbose: bool,
}

impl Rls {
    async fn should_rate_limit(&self, req: RateLimitRequest) -> Result<RateLimitResponse, tonic::Status> {
        let ns = Namespace::from(req.domain.as_str());
        let mut statuses = Vec::with_capacity(req.descriptors.len());
        for d in &req.descriptors {
            let hits = descriptor_hits(d, req.hits_addend);
            let values: HashMap<String, String> = d.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
            let ctx = LimitContext::from(values);
            let result = self.limiter.check_and_update(&ns, &ctx, hits).await.map_err(|e| {
                eprintln!("warden-rls: {e}");
                tonic::Status::unavailable(format!("rate limit storage: {e}"))
            })?;
            statuses.push(status_of(&result));
        }
        let over = statuses.iter().any(|s| s.code == Code::OverLimit as i32);
        let overall = if over { Code::OverLimit } else { Code::Ok };
        if self.verbose {
            eprintln!("warden-rls: {} {} -> {}", req.domain, describe(&req), overall.name());
        }
        Ok(RateLimitResponse { overall_code: overall as i32, statuses })
    }
}

fn descriptor_hits(d: &RateLimitDescriptor, request_hits: u32) -> u64 {
    match (&d.hits_addend, request_hits) {
        (Some(h), _) => h.value,
        (None, 0) => 1,
        (None, n) => u64::from(n),
    }
}

/// The status of one descriptor: the tightest of the limits that applied (fewest remaining).
fn status_of(result: &CheckResult) -> DescriptorStatus {
    let code = if result.limited { Code::OverLimit } else { Code::Ok };
    let tightest = result.counters.iter().min_by_key(|c| c.remaining().unwrap_or(u64::MAX));
    let Some(c) = tightest else {
        return DescriptorStatus { code: code as i32, current_limit: None, limit_remaining: 0, duration_until_reset: None };
    };
    let reset = c.expires_in().unwrap_or_else(|| c.window());
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            name: c.limit().name().unwrap_or_default().to_owned(),
            requests_per_unit: u32::try_from(c.max_value()).unwrap_or(u32::MAX),
            unit: Unit::of_window(c.window().as_secs()) as i32,
        }),
        limit_remaining: u32::try_from(c.remaining().unwrap_or(0)).unwrap_or(u32::MAX),
        duration_until_reset: Some(warden_rls::Duration {
            seconds: i64::try_from(reset.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
        }),
    }
}

/// `[k=v,k=v]*hits ...` for the verbose log.
fn describe(req: &RateLimitRequest) -> String {
    let parts: Vec<String> = req
        .descriptors
        .iter()
        .map(|d| {
            let entries: Vec<String> = d.entries.iter().map(|e| format!("{}={}", e.key, e.value)).collect();
            format!("[{}]*{}", entries.join(","), descriptor_hits(d, req.hits_addend))
        })
        .collect();
    parts.join(" ")
}

/// The gRPC service, as tonic-build would generate it, without protoc.
#[derive(Clone)]
struct RlsServer(Arc<Rls>);

impl tonic::server::NamedService for RlsServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct ShouldRateLimitSvc(Arc<Rls>);

impl tonic::server::UnaryService<RateLimitRequest> for ShouldRateLimitSvc {
    type Response = RateLimitResponse;
    type Future = BoxFuture<tonic::Response<RateLimitResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<RateLimitRequest>) -> Self::Future {
        let rls = self.0.clone();
        Box::pin(async move { rls.should_rate_limit(request.into_inner()).await.map(tonic::Response::new) })
    }
}

impl<B> Service<http::Request<B>> for RlsServer
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
        if req.uri().path() != SHOULD_RATE_LIMIT_PATH {
            return Box::pin(async move { Ok(tonic::Status::unimplemented("only ShouldRateLimit").into_http()) });
        }
        let svc = ShouldRateLimitSvc(self.0.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(svc, req).await)
        })
    }
}

async fn terminated() {
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
}

async fn serve(args: Args) -> Result<(), BoxError> {
    let limits = load_limits(&args.limits)?;
    let count = limits.len();
    let limiter = Limiter::new(args.redis.as_deref(), limits).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("bind {}: {e}", args.listen))?;
    let bound = listener.local_addr()?;
    let store = args.redis.as_deref().unwrap_or("memory");
    eprintln!("warden-rls: {count} limits from {}, counters in {store}", args.limits);
    println!("listening on {bound}");

    let stop = Arc::new(tokio::sync::Notify::new());
    let server = tonic::transport::Server::builder().serve_with_incoming_shutdown(
        RlsServer(Arc::new(Rls { limiter, verbose: args.verbose })),
        tonic::transport::server::TcpIncoming::from(listener),
        {
            let stop = stop.clone();
            async move { stop.notified().await }
        },
    );
    let drained = async {
        terminated().await;
        eprintln!("warden-rls: shutting down");
        stop.notify_one();
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        res = server => res.map_err(|e| format!("server: {e}"))?,
        () = drained => eprintln!("warden-rls: connections still open after {DRAIN:?}; exiting"),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(serve(args))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden-rls: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
