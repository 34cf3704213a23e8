//! HTTP context: each proxy-wasm callback becomes one call into
//! [`RequestFlow`], with the ports lent for the length of the callback.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType};

use super::abi;
#[cfg(feature = "fault-injection")]
use super::fault;
use super::metrics::EnvoyMetrics;
use super::ports::{EnvoyClock, EnvoyIo, EnvoyQueue, SharedDataKv};
use mcp_warden_core::flow::VmCache;
use mcp_warden_core::flow::{ExchangeStats, RequestFlow};
use mcp_warden_core::policy::{KillSwitch, Policy};
use mcp_warden_core::ports::{Host, Step};

/// One request in this many has its callbacks timed for the filter-time histogram. Timing is two
/// clock reads per callback: host calls whose answers cannot change a decision (~10 of the ~33
/// host calls of a 1 KB `tools/call`). A sample of one in 16 keeps the histogram's shape.
const FILTER_TIME_SAMPLE: u32 = 16;

thread_local! {
    /// Requests this worker VM has started (which of them are timed).
    static STARTED: Cell<u32> = const { Cell::new(0) };
}

pub struct WardenHttp {
    flow: RequestFlow,
    body_size: usize,
    /// Whether this request's callbacks are timed (one in [`FILTER_TIME_SAMPLE`]).
    timed: bool,
    /// Nanoseconds spent inside this filter's callbacks (the filter-time histogram), when timed.
    busy_ns: u64,
    start_nanos: u64,
    bytes_out: u64,
    /// What Envoy holds of the answer since the last response body callback paused (0 after
    /// one that continued): handed over again with the next chunk, and to the trailers.
    response_held: usize,
    /// The fault-injection build's later panic point, named by the request headers.
    #[cfg(feature = "fault-injection")]
    panic_at: Option<fault::Point>,
}

impl WardenHttp {
    pub fn new(policy: Rc<Policy>, remote_kill: Rc<KillSwitch>, sessions: Rc<RefCell<VmCache>>) -> Self {
        let n = STARTED.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        WardenHttp {
            flow: RequestFlow::for_vm(policy, remote_kill, sessions),
            body_size: 0,
            timed: n.is_multiple_of(FILTER_TIME_SAMPLE),
            busy_ns: 0,
            start_nanos: 0,
            bytes_out: 0,
            response_held: 0,
            #[cfg(feature = "fault-injection")]
            panic_at: None,
        }
    }

    /// Runs one callback into the flow with fresh ports; in a timed request, accounts the time
    /// spent in it (two clock reads: each is a host call, so only callbacks that do work are
    /// timed). Every request reads the clock once at its first callback (its receipt's time).
    fn timed(&mut self, f: impl FnOnce(&mut RequestFlow, &mut Host<'_>) -> Step) -> Action {
        let start = if self.timed || self.start_nanos == 0 { abi::now_nanos() } else { 0 };
        if self.start_nanos == 0 {
            self.start_nanos = start;
        }
        let (mut io, mut kv, mut m) = (EnvoyIo::default(), SharedDataKv, EnvoyMetrics);
        let mut host = Host { http: &mut io, kv: &mut kv, clock: &EnvoyClock, metrics: &mut m };
        let step = f(&mut self.flow, &mut host);
        if self.timed {
            self.busy_ns = self.busy_ns.saturating_add(abi::now_nanos().saturating_sub(start));
        }
        match step {
            Step::Continue => Action::Continue,
            Step::Buffer | Step::Answered => Action::Pause,
        }
    }
}

impl Context for WardenHttp {
    /// The mesh-wide rate limit service answered (or failed: any non-zero gRPC status).
    fn on_grpc_call_response(&mut self, _token_id: u32, status_code: u32, response_size: usize) {
        if !self.flow.awaits_mesh() {
            return;
        }
        let body = if status_code == 0 { abi::buffer(BufferType::GrpcReceiveBuffer, 0, response_size).ok() } else { None };
        let action = self.timed(|flow, host| flow.on_mesh_answer(host, body.as_deref()));
        if action == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        {
            self.panic_at = fault::on_request_headers();
        }
        self.timed(|flow, host| flow.on_request_headers(host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        fault::check(self.panic_at, fault::Point::RequestBody);
        self.body_size = body_size;
        self.timed(|flow, host| flow.on_request_body(host, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        #[cfg(feature = "fault-injection")]
        fault::check(self.panic_at, fault::Point::RequestTrailers);
        let size = self.body_size;
        self.timed(|flow, host| flow.on_request_trailers(host, size))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        fault::check(self.panic_at, fault::Point::ResponseHeaders);
        if !self.flow.inspects_response() {
            return Action::Continue;
        }
        self.timed(|flow, host| flow.on_response_headers(host, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        fault::check(self.panic_at, fault::Point::ResponseBody);
        // What Envoy hands over again (held since a paused callback) is not counted twice.
        let new = body_size.saturating_sub(self.response_held);
        self.bytes_out = self.bytes_out.saturating_add(new as u64);
        self.response_held = 0;
        if !self.flow.inspects_response() {
            return Action::Continue;
        }
        let action = self.timed(|flow, host| flow.on_response_body(host, body_size, end_of_stream));
        if action == Action::Pause {
            self.response_held = body_size;
        }
        action
    }

    /// An HTTP/2 upstream may end its answer with trailers: the body callbacks then never see
    /// `end_of_stream`, and a buffered answer would pass as it came.
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        if !self.flow.inspects_response() {
            return Action::Continue;
        }
        let held = self.response_held;
        self.timed(|flow, host| flow.on_response_trailers(host, held))
    }

    fn on_log(&mut self) {
        let stats = ExchangeStats {
            start_unix_nanos: self.start_nanos,
            duration_micros: abi::now_nanos().saturating_sub(self.start_nanos) / 1000,
            bytes_in: self.body_size as u64,
            bytes_out: self.bytes_out,
            filter_micros: self.timed.then_some(self.busy_ns / 1000),
        };
        self.flow.on_log(stats, &mut EnvoyQueue, &mut EnvoyMetrics);
        super::heap::report();
    }
}
