//! HTTP context: adapts proxy-wasm callbacks to [`RequestFlow`] and host calls to [`HttpIo`].

use std::cell::OnceCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::abi;
use crate::flow::{HostError, HttpIo, RequestFlow, Step};
use crate::metrics::NoMetrics;
use crate::policy::Policy;

pub struct WardenHttp {
    flow: RequestFlow,
    body_size: usize,
}

impl WardenHttp {
    pub fn new(policy: Rc<Policy>) -> Self {
        WardenHttp { flow: RequestFlow::new(policy), body_size: 0 }
    }
}

/// Host I/O for the request side of the current HTTP stream, for one callback.
///
/// The request header map is fetched once, on the first lookup, and every later lookup in the
/// same callback is answered from it: one host call instead of one per header. Edits drop it.
#[derive(Default)]
struct EnvoyIo {
    headers: OnceCell<abi::HeaderSnapshot>,
}

impl HttpIo for EnvoyIo {
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        if self.headers.get().is_none() {
            let snapshot = abi::HeaderSnapshot::read(MapType::HttpRequestHeaders)?;
            let _ = self.headers.set(snapshot);
        }
        match self.headers.get() {
            Some(h) => h.get(name),
            None => abi::header(MapType::HttpRequestHeaders, name),
        }
    }
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError> {
        self.headers.take();
        abi::set_header(MapType::HttpRequestHeaders, name, value)
    }
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        self.headers.take();
        abi::remove_header(MapType::HttpRequestHeaders, name)
    }
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer(BufferType::HttpRequestBody, 0, len)
    }
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body, "mcp_warden")
    }
}

fn action(step: Step) -> Action {
    match step {
        Step::Continue => Action::Continue,
        Step::Buffer | Step::Answered => Action::Pause,
    }
}

impl Context for WardenHttp {}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        if matches!(abi::header(MapType::HttpRequestHeaders, "x-warden-test-panic"), Ok(Some(_))) {
            #[allow(clippy::panic)]
            {
                panic!("fault injection: x-warden-test-panic");
            }
        }
        action(self.flow.on_request_headers(&mut EnvoyIo::default(), end_of_stream, &mut NoMetrics))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.body_size = body_size;
        action(self.flow.on_request_body(&mut EnvoyIo::default(), body_size, end_of_stream, &mut NoMetrics))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.flow.on_request_trailers(&mut EnvoyIo::default(), self.body_size, &mut NoMetrics))
    }
}
