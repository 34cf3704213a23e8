//! Fault injection, compiled only with the `fault-injection` feature (`make build-fault`): a
//! filter that panics (a wasm trap) at a chosen callback, so the e2e suite
//! (tests/e2e/test_fail_closed.py, tests/e2e/test_corpus_replay.py) can prove that a trapped VM
//! fails closed at every point. Never in the shipped .wasm.
//!
//! - HTTP context: the request header `x-warden-test-panic` names the point, read once at
//!   request-headers time: `request-body`, `request-trailers`, `response-headers`,
//!   `response-body`; any other value (`1`, `request-headers`) panics at the request headers.
//! - Root context: the plugin configuration's `"test_panic": "configure"` panics in
//!   `on_configure`; `"test_panic": "tick"` panics in the first `on_tick` at least
//!   `"test_panic_delay_ms"` (default 1000) after the configuration. Both keys are removed before
//!   the configuration reaches the policy compiler (which refuses unknown fields), so they are
//!   accepted only by this build.

use proxy_wasm::types::{LogLevel, MapType};

use super::abi;

pub const HEADER: &str = "x-warden-test-panic";

/// Where an HTTP context panics after its request headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
}

impl Point {
    fn parse(v: &[u8]) -> Option<Point> {
        match v.trim_ascii() {
            b"request-body" => Some(Point::RequestBody),
            b"request-trailers" => Some(Point::RequestTrailers),
            b"response-headers" => Some(Point::ResponseHeaders),
            b"response-body" => Some(Point::ResponseBody),
            _ => None,
        }
    }
}

/// At request-headers time: panics now for the request-headers point, else returns the later
/// point the request asked for (None without the header).
pub fn on_request_headers() -> Option<Point> {
    let v = abi::header(MapType::HttpRequestHeaders, HEADER).ok().flatten()?;
    match Point::parse(&v) {
        Some(p) => Some(p),
        None => trap("request-headers"),
    }
}

/// Panics when `here` is the point this request asked for.
pub fn check(asked: Option<Point>, here: Point) {
    if asked == Some(here) {
        trap(&format!("{here:?}"));
    }
}

#[allow(clippy::panic)]
fn trap(point: &str) -> ! {
    panic!("fault injection: {HEADER} at {point}");
}

/// The root context's fault, from the plugin configuration.
#[derive(Default, Debug)]
pub struct RootFault {
    /// Panic on the first tick at or after this host time (ms).
    tick_at_ms: Option<u64>,
}

const KEY: &str = "test_panic";
const DELAY_KEY: &str = "test_panic_delay_ms";
const DEFAULT_DELAY_MS: u64 = 1000;

impl RootFault {
    /// Strips the fault keys from a plugin configuration (returned as is when it has none or is
    /// not a JSON object; a bad value is left in, so the compiler refuses the configuration).
    /// Panics for `"configure"`; for `"tick"` arms the tick and starts it.
    pub fn configure(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return bytes;
        };
        if !doc.contains_key(KEY) && !doc.contains_key(DELAY_KEY) {
            return bytes;
        }
        let delay = match doc.get(DELAY_KEY) {
            None => DEFAULT_DELAY_MS,
            Some(v) => match v.as_u64() {
                Some(ms) => ms,
                None => return bytes,
            },
        };
        match doc.get(KEY).and_then(serde_json::Value::as_str) {
            Some("configure") => trap_config("configure"),
            Some("tick") => {
                let now = abi::now_nanos() / 1_000_000;
                self.tick_at_ms = Some(now.saturating_add(delay));
                // A control-endpoint configuration sets its own tick period afterwards; the panic
                // then comes on the first of its ticks past the delay.
                let period = u32::try_from(delay.clamp(10, 100)).unwrap_or(100);
                if let Err(e) = abi::set_tick_period_ms(period) {
                    abi::log(LogLevel::Error, &format!("mcp-warden fault injection: cannot start the tick: {e:?}"));
                }
                abi::log(LogLevel::Warn, &format!("mcp-warden fault injection: will panic on the first tick after {delay} ms"));
            }
            None if !doc.contains_key(KEY) => {}
            _ => return bytes,
        }
        doc.remove(KEY);
        doc.remove(DELAY_KEY);
        serde_json::to_vec(&doc).unwrap_or(bytes)
    }

    pub fn on_tick(&self) {
        if let Some(at) = self.tick_at_ms {
            if abi::now_nanos() / 1_000_000 >= at {
                trap_config("tick");
            }
        }
    }
}

#[allow(clippy::panic)]
fn trap_config(point: &str) -> ! {
    panic!("fault injection: {KEY} at {point}");
}
