//! Root context (one per worker VM): loads and compiles the plugin configuration, polls the
//! control endpoint on a tick, and hands the policy and kill list in force to each request.
//!
//! Swaps are whole `Rc`s: a request keeps the policy it started with; the next one sees the new.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use super::abi;
#[cfg(feature = "fault-injection")]
use super::fault::RootFault;
use super::http::WardenHttp;
use super::metrics::EnvoyMetrics;
use super::ports::SharedDataKv;
use super::writer::{WriterHost, WRITER_ROOT_ID};
use mcp_warden_core::confirm::{self, seal::ConfirmKey, ConfirmVm};
use mcp_warden_core::control::{PollOutcome, Poller};
use mcp_warden_core::flow::VmCache;
use mcp_warden_core::integrity::baseline::name_sets;
use mcp_warden_core::metrics;
use mcp_warden_core::policy::{self, KillSwitch, Policy};
use mcp_warden_core::ports::Metrics;
use mcp_warden_core::state::baselines::{self, Baselines};
use mcp_warden_core::state::{owners, ratelimit};

#[derive(Default)]
pub struct WardenRoot {
    /// From the plugin configuration; replaced only by a configuration that compiles.
    configured: Option<Rc<Policy>>,
    /// From the control endpoint, when it serves a policy or pins (merged into the policy in
    /// force); wins over `configured`.
    remote_policy: Option<Rc<Policy>>,
    remote_kill: Rc<KillSwitch>,
    poller: Option<Poller>,
    poll_token: Option<u32>,
    /// Set when this root is the singleton receipt writer rather than the HTTP filter.
    writer: Option<WriterHost>,
    /// Session bindings this VM has confirmed (see `mcp_warden_core::state::owners`).
    sessions: Rc<RefCell<VmCache>>,
    /// The all-defaults policy, compiled once when neither the configuration nor the control
    /// endpoint has put one in force (compiling builds the content scanner's automata).
    fallback: std::cell::OnceCell<Rc<Policy>>,
    /// The fault-injection build's root-context panic, from the plugin configuration.
    #[cfg(feature = "fault-injection")]
    fault: RootFault,
}

/// Creates every slot of every state table that does not exist yet, so that all later updates
/// are CAS writes (shared data cannot create a key conditionally). Idempotent; once per VM and
/// policy.
fn init_state_tables(p: &Policy) {
    let slots = p.integrity.baseline_slots;
    for (what, table) in [
        ("rate-limit", ratelimit::table(p.rate_limit_slots)),
        ("session", owners::sessions(p.session_slots)),
        ("task", owners::tasks(p.tasks.slots)),
        ("tool baseline", Baselines::tools(slots).table),
        ("ui template baseline", Baselines::templates(slots).table),
        ("tool name set", name_sets(slots).table),
        ("list change", baselines::list_changes()),
        ("tool name skeleton", mcp_warden_core::integrity::poison::skeletons()),
        ("confirmation replay", confirm::replay::table()),
    ] {
        if let Err(e) = table.init(&mut SharedDataKv) {
            abi::log(LogLevel::Error, &format!("mcp-warden: cannot initialise the {what} table: {e:?}"));
        }
    }
    if let Err(e) = baselines::init_upstream_filter(&mut SharedDataKv) {
        abi::log(LogLevel::Error, &format!("mcp-warden: cannot initialise the upstream filter: {e:?}"));
    }
}

impl WardenRoot {
    /// The confirmation key from the VM's environment ([`confirm::KEY_ENV`]), kept for the
    /// request contexts. A policy that asks for confirmations cannot load without it (every such
    /// call would fail); one that does not loads either way (a control endpoint may serve one
    /// that does).
    fn install_confirm_key(&self, p: &Policy) -> Result<(), String> {
        let key = match std::env::var(confirm::KEY_ENV) {
            Ok(text) => Some(ConfirmKey::from_hex(&text).map_err(|e| format!("{}: {e}", confirm::KEY_ENV))?),
            Err(_) if p.confirm.used => {
                return Err(format!(
                    "the policy asks for confirmations and {} (64 hex) is not in the filter VM's environment_variables",
                    confirm::KEY_ENV
                ))
            }
            Err(_) => None,
        };
        self.sessions.borrow_mut().confirm = ConfirmVm::new(key, abi::now_nanos());
        Ok(())
    }

    fn policy(&self) -> Rc<Policy> {
        self.remote_policy.clone().or_else(|| self.configured.clone()).unwrap_or_else(|| self.fallback())
    }

    fn fallback(&self) -> Rc<Policy> {
        Rc::clone(self.fallback.get_or_init(|| Rc::new(Policy::default())))
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
                // Both ways in stay in force: a served policy replaces the plugin's rules, but
                // the plugin configuration's own kill entries are kept alongside the served ones.
                let configured = self.configured.clone().unwrap_or_else(|| self.fallback());
                self.remote_kill = Rc::new(state.extra_kill(&configured));
                self.remote_policy = state.policy_in_force(&configured).map(Rc::new);
                if let Some(p) = &self.remote_policy {
                    init_state_tables(p);
                }
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
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if let Some(w) = self.writer.as_mut() {
            w.on_grpc_call_response(token, status, size);
        }
    }

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
        let root_id = abi::property(&["plugin_root_id"]).ok().flatten().unwrap_or_default();
        if root_id == WRITER_ROOT_ID.as_bytes() {
            return match WriterHost::start(&bytes) {
                Ok(w) => {
                    self.writer = Some(w);
                    true
                }
                Err(e) => {
                    abi::log(LogLevel::Critical, &format!("mcp-warden receipt writer not started: {e}"));
                    false
                }
            };
        }
        #[cfg(feature = "fault-injection")]
        let bytes = self.fault.configure(bytes);
        super::metrics::define_at_start();
        match policy::load(&bytes).map_err(|e| e.to_string()).and_then(|p| self.install_confirm_key(&p).map(|()| p)) {
            Ok(p) => {
                abi::log(LogLevel::Info, &format!("mcp-warden: configuration loaded ({} rules)", p.rules.len()));
                self.poller = p.control.clone().map(Poller::new);
                if let Some(poller) = &self.poller {
                    let tick = poller.tick_ms();
                    if let Err(e) = abi::set_tick_period_ms(u32::try_from(tick).unwrap_or(u32::MAX)) {
                        abi::log(LogLevel::Error, &format!("mcp-warden: cannot start control polling: {e:?}"));
                    }
                }
                init_state_tables(&p);
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

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(w) = self.writer.as_mut() {
            w.on_queue_ready(queue_id);
        }
    }

    fn on_tick(&mut self) {
        #[cfg(feature = "fault-injection")]
        self.fault.on_tick();
        if let Some(w) = self.writer.as_mut() {
            w.on_tick();
            return;
        }
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
        Some(Box::new(WardenHttp::new(self.policy(), Rc::clone(&self.remote_kill), Rc::clone(&self.sessions))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
