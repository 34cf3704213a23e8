//! The control endpoint's client side: the filter's polling state machine (root context tick).
//! Time is an input; fail-static when the endpoint is down or serves something invalid.
//!
//! The bound it keeps: polls are *dispatched* at most `period_ms` apart (the next one is due a
//! period minus one tick after the last dispatch, and the host ticks every [`Poller::tick_ms`]), so
//! a change the endpoint serves is in force at most one period plus that poll's round trip after
//! it was published, while the endpoint answers within a period less a tick (one poll at a time:
//! a slower endpoint sets the pace itself); polls are at least `period_ms - tick_ms` apart.

use super::{etag_of, parse_state, RemoteState};
use crate::policy::ControlConfig;

/// One poll to dispatch (Envoy `dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, and `if-none-match` when a document is held.
    pub headers: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
}

/// What a poll response means for the filter.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// 304, or the same ETag again: nothing to do.
    Unchanged,
    /// A new document: install it.
    Update(Box<RemoteState>),
    /// The endpoint is down or served something invalid: keep the current state (fail-static);
    /// log and count the message.
    Failed(String),
}

/// Shortest tick: the tick only bounds how late a due poll is dispatched.
pub const MIN_TICK_MS: u64 = 50;

/// The filter's polling state machine. Time is an input.
#[derive(Debug, Clone)]
pub struct Poller {
    pub config: ControlConfig,
    etag: Option<String>,
    next_due_ms: u64,
    in_flight_since: Option<u64>,
    /// Consecutive failures (for logs and metrics).
    pub failures: u32,
}

impl Poller {
    pub fn new(config: ControlConfig) -> Poller {
        Poller { config, etag: None, next_due_ms: 0, in_flight_since: None, failures: 0 }
    }

    /// How often the host must call [`Poller::due`] (the root context's tick period): a quarter
    /// period, at least [`MIN_TICK_MS`].
    pub fn tick_ms(&self) -> u64 {
        (self.config.period_ms / 4).max(MIN_TICK_MS)
    }

    /// True when a poll should be dispatched now. A poll in flight longer than its timeout plus
    /// one period is considered lost.
    pub fn due(&self, now_ms: u64) -> bool {
        match self.in_flight_since {
            Some(t) => now_ms.saturating_sub(t) > self.config.timeout_ms + self.config.period_ms,
            None => now_ms >= self.next_due_ms,
        }
    }

    /// The request to dispatch; marks a poll in flight.
    pub fn request(&mut self, now_ms: u64) -> PollRequest {
        self.in_flight_since = Some(now_ms);
        let mut headers = vec![
            (":method", "GET".to_owned()),
            (":path", self.config.path.clone()),
            (":authority", self.config.authority.clone()),
        ];
        if let Some(e) = &self.etag {
            headers.push(("if-none-match", e.clone()));
        }
        PollRequest { cluster: self.config.cluster.clone(), headers, timeout_ms: self.config.timeout_ms }
    }

    /// The dispatch itself failed (no such cluster, …): try again next period.
    pub fn dispatch_failed(&mut self, now_ms: u64) -> PollOutcome {
        self.finish(now_ms);
        self.failures += 1;
        PollOutcome::Failed(format!("control endpoint: dispatch to cluster `{}` failed", self.config.cluster))
    }

    /// The poll dispatched at `in_flight_since` is over: the next is due a period after that
    /// dispatch, less one tick (the tick that notices it may come up to a tick late).
    fn finish(&mut self, now_ms: u64) {
        let dispatched = self.in_flight_since.take().unwrap_or(now_ms);
        self.next_due_ms = dispatched.saturating_add(self.config.period_ms.saturating_sub(self.tick_ms()));
    }

    /// A poll's answer: `status` is `None` when the call failed or timed out.
    pub fn on_response(&mut self, now_ms: u64, status: Option<u32>, etag: Option<&str>, body: &[u8]) -> PollOutcome {
        self.finish(now_ms);
        match status {
            Some(304) => {
                self.failures = 0;
                PollOutcome::Unchanged
            }
            Some(200) => {
                let tag = etag.map(str::to_owned).unwrap_or_else(|| etag_of(body));
                if self.etag.as_deref() == Some(tag.as_str()) {
                    self.failures = 0;
                    return PollOutcome::Unchanged;
                }
                match parse_state(body) {
                    Ok(mut s) => {
                        if !self.config.policy {
                            // `control.policy: false`: only the kill switch comes from the endpoint.
                            s.policy = None;
                        }
                        self.failures = 0;
                        self.etag = Some(tag);
                        PollOutcome::Update(Box::new(s))
                    }
                    Err(e) => {
                        self.failures += 1;
                        PollOutcome::Failed(format!("control endpoint served an invalid document, keeping the current one: {e}"))
                    }
                }
            }
            Some(s) => {
                self.failures += 1;
                PollOutcome::Failed(format!("control endpoint answered HTTP {s}, keeping the current state"))
            }
            None => {
                self.failures += 1;
                PollOutcome::Failed("control endpoint unreachable, keeping the current state".to_owned())
            }
        }
    }
}
