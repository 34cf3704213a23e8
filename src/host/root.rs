//! Root context (one per worker VM): loads and compiles the plugin configuration, polls the
//! control endpoint on a tick, and hands the policy and kill list in force to each request.
//!
//! Swaps are whole `Rc`s: a request keeps the policy it started with; the next one sees the new.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use super::abi;
use super::http::WardenHttp;
use super::metrics::EnvoyMetrics;
use crate::control::{PollOutcome, Poller};
use crate::killswitch::KillSwitch;
use crate::metrics::{self, Metrics};
use crate::policy::{self, Policy};

/// Shortest tick: polling is decided by the poller, the tick only bounds the reaction time.
const MIN_TICK_MS: u64 = 50;

#[derive(Default)]
pub struct WardenRoot {
    /// From the plugin configuration; replaced only by a configuration that compiles.
    configured: Option<Rc<Policy>>,
    /// From the control endpoint, when it serves a policy; wins over `configured`.
    remote_policy: Option<Rc<Policy>>,
    remote_kill: Rc<KillSwitch>,
    poller: Option<Poller>,
    poll_token: Option<u32>,
}

impl WardenRoot {
    fn policy(&self) -> Rc<Policy> {
        self.remote_policy
            .clone()
            .or_else(|| self.configured.clone())
            .unwrap_or_else(|| Rc::new(Policy::default()))
    }

    fn poll_failed(&self, message: &str) {
        abi::log(LogLevel::Warn, &format!("mcp-warden: {message}"));
        EnvoyMetrics.count(metrics::CONTROL_POLL_FAILURES, &[]);
    }

    fn apply(&mut self, outcome: PollOutcome) {
        match outcome {
            PollOutcome::Unchanged => {}
            PollOutcome::Failed(message) => self.poll_failed(&message),
            PollOutcome::Update(state) => {
                let kills = state.kill.entries.len();
                self.remote_kill = Rc::new(state.kill);
                self.remote_policy = state.policy.map(Rc::new);
                EnvoyMetrics.count(metrics::CONTROL_UPDATES, &[]);
                abi::log(
                    LogLevel::Info,
                    &format!(
                        "mcp-warden: control endpoint state installed ({kills} kill entries, policy from {})",
                        if self.remote_policy.is_some() { "control endpoint" } else { "plugin configuration" }
                    ),
                );
            }
        }
    }
}

impl Context for WardenRoot {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        if self.poll_token != Some(token) {
            return;
        }
        self.poll_token = None;
        let now = abi::now_nanos() / 1_000_000;
        let status = if num_headers == 0 {
            None
        } else {
            abi::header(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|s| String::from_utf8_lossy(&s).trim().parse::<u32>().ok())
        };
        let etag = abi::header(MapType::HttpCallResponseHeaders, "etag").ok().flatten();
        let etag = etag.map(|e| String::from_utf8_lossy(&e).into_owned());
        let body = abi::buffer(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default();
        let Some(poller) = self.poller.as_mut() else { return };
        let outcome = poller.on_response(now, status, etag.as_deref(), &body);
        self.apply(outcome);
    }
}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match abi::buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(b) => b,
            Err(e) => {
                abi::log(LogLevel::Error, &format!("mcp-warden: cannot read plugin configuration: {e:?}"));
                return self.configured.is_some();
            }
        };
        match policy::load(&bytes) {
            Ok(p) => {
                abi::log(LogLevel::Info, &format!("mcp-warden: configuration loaded ({} rules)", p.rules.len()));
                self.poller = p.control.clone().map(Poller::new);
                if let Some(c) = &p.control {
                    let tick = (c.period_ms / 4).max(MIN_TICK_MS);
                    if let Err(e) = abi::set_tick_period_ms(u32::try_from(tick).unwrap_or(u32::MAX)) {
                        abi::log(LogLevel::Error, &format!("mcp-warden: cannot start control polling: {e:?}"));
                    }
                }
                self.configured = Some(Rc::new(p));
                self.remote_policy = None;
                true
            }
            Err(e) => {
                // Refusing makes Envoy reject this configuration; a policy already in force stays.
                abi::log(LogLevel::Error, &format!("mcp-warden: {e}; configuration refused"));
                EnvoyMetrics.count(metrics::CONFIG_REJECTED, &[]);
                self.configured.is_some()
            }
        }
    }

    fn on_tick(&mut self) {
        let now = abi::now_nanos() / 1_000_000;
        let Some(poller) = self.poller.as_mut() else { return };
        if !poller.due(now) {
            return;
        }
        let req = poller.request(now);
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The SDK registers the callout token with its dispatcher, so this call goes through it.
        match hostcalls::dispatch_http_call(&req.cluster, headers, None, vec![], Duration::from_millis(req.timeout_ms)) {
            Ok(token) => self.poll_token = Some(token),
            Err(_) => {
                let outcome = poller.dispatch_failed(now);
                self.apply(outcome);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WardenHttp::new(self.policy(), Rc::clone(&self.remote_kill))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
