//! The per-request state machine: the one orchestrator between the host and the pure core.
//!
//! It is written against [`HttpIo`], so the same code runs inside Envoy (`host::http`) and under
//! the fake host in tests. Order of work on the request path: head → (buffer body) → classify and
//! validate → edit routing headers → forward, or answer locally. Nothing here panics: a host
//! failure fails the request closed with a 500 that says so.

use std::rc::Rc;

use crate::mcp::classify::{classify_body, classify_head, Classified, HeadDecision, HeaderEdit, RequestHead};
use crate::mcp::error::{jsonrpc_error_body, RejectKind, Rejection};
use crate::mcp::headers;
use crate::mcp::jsonrpc::salvage_id;
use crate::mcp::model::McpRequest;
use crate::metrics::Metrics;
use crate::policy::Policy;

/// A host call failed. Always our side's (or the host's) fault, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub status: u32,
}

/// What the flow needs from the HTTP host. Header names are lowercase.
pub trait HttpIo {
    /// A request header's value; when the header is sent on several lines, all of them joined
    /// with ", " (RFC 9110 §5.3), never just the first: the upstream receives every line.
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &str) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    /// The buffered request body, `len` bytes from the start.
    fn request_body(&self, len: usize) -> Result<Vec<u8>, HostError>;
    fn send_local_reply(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError>;
}

/// What the host should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Let the request continue upstream.
    Continue,
    /// Hold the request and buffer the body (StopIterationAndBuffer).
    Buffer,
    /// A local reply was sent; stop processing this request.
    Answered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Headers,
    AwaitingBody,
    /// Content-Length is over the cap: wait for the first chunk only to read the id, then 413.
    Oversize,
    Done,
}

/// How much of an over-cap body is read to find the request id for the 413 reply.
const ID_SALVAGE_PREFIX: usize = 4096;

/// The head values classification needs, copied once from the host.
#[derive(Debug, Default)]
struct OwnedHead {
    http_method: String,
    content_type: Option<Vec<u8>>,
    protocol_version: Option<Vec<u8>>,
    mcp_method: Option<Vec<u8>>,
    mcp_name: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
}

impl OwnedHead {
    fn view(&self) -> RequestHead<'_> {
        RequestHead {
            http_method: &self.http_method,
            content_type: self.content_type.as_deref(),
            protocol_version: self.protocol_version.as_deref(),
            mcp_method: self.mcp_method.as_deref(),
            mcp_name: self.mcp_name.as_deref(),
            session_id: self.session_id.as_deref(),
        }
    }
}

pub struct RequestFlow {
    policy: Rc<Policy>,
    state: State,
    head: OwnedHead,
    request: Option<McpRequest>,
}

impl RequestFlow {
    pub fn new(policy: Rc<Policy>) -> Self {
        RequestFlow { policy, state: State::Headers, head: OwnedHead::default(), request: None }
    }

    /// The classified request, once the filter has let it through.
    pub fn request(&self) -> Option<&McpRequest> {
        self.request.as_ref()
    }

    pub fn on_request_headers(&mut self, io: &mut dyn HttpIo, end_of_stream: bool, m: &mut dyn Metrics) -> Step {
        match self.headers_inner(io, end_of_stream, m) {
            Ok(step) => step,
            Err(e) => self.host_failure(io, e),
        }
    }

    pub fn on_request_body(&mut self, io: &mut dyn HttpIo, body_size: usize, end_of_stream: bool, m: &mut dyn Metrics) -> Step {
        match self.body_inner(io, body_size, end_of_stream, m) {
            Ok(step) => step,
            Err(e) => self.host_failure(io, e),
        }
    }

    /// Trailers end the request body (HTTP/2 requests may finish with trailers, not a data frame).
    pub fn on_request_trailers(&mut self, io: &mut dyn HttpIo, body_size: usize, m: &mut dyn Metrics) -> Step {
        self.on_request_body(io, body_size, true, m)
    }

    fn headers_inner(&mut self, io: &mut dyn HttpIo, end_of_stream: bool, m: &mut dyn Metrics) -> Result<Step, HostError> {
        if self.state != State::Headers {
            return Ok(Step::Continue);
        }
        let method = io.request_header(":method")?.unwrap_or_default();
        self.head = OwnedHead {
            http_method: String::from_utf8_lossy(&method).into_owned(),
            content_type: io.request_header("content-type")?,
            protocol_version: io.request_header(headers::PROTOCOL_VERSION)?,
            mcp_method: io.request_header(headers::METHOD)?,
            mcp_name: io.request_header(headers::NAME)?,
            session_id: io.request_header(headers::SESSION_ID)?,
        };
        match classify_head(&self.head.view(), &self.policy.wire) {
            HeadDecision::Forward(c) => self.forward(io, c, m),
            HeadDecision::Reject(r) => self.reject(io, &r, m),
            HeadDecision::NeedBody => {
                let declared = io
                    .request_header("content-length")?
                    .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u64>().ok());
                if declared.is_some_and(|n| n > self.policy.max_body_bytes as u64) {
                    if end_of_stream {
                        return self.reject(io, &self.too_large(None), m);
                    }
                    self.state = State::Oversize;
                    return Ok(Step::Buffer);
                }
                if end_of_stream {
                    return self.classify(io, &[], m);
                }
                self.state = State::AwaitingBody;
                Ok(Step::Buffer)
            }
        }
    }

    fn body_inner(&mut self, io: &mut dyn HttpIo, body_size: usize, end_of_stream: bool, m: &mut dyn Metrics) -> Result<Step, HostError> {
        if self.state != State::AwaitingBody && self.state != State::Oversize {
            return Ok(Step::Continue);
        }
        if self.state == State::Oversize && body_size < ID_SALVAGE_PREFIX && !end_of_stream {
            // Wait for the whole prefix (or the end): otherwise whether the 413 carries the id
            // would depend on how the client's bytes happened to be split into chunks.
            return Ok(Step::Buffer);
        }
        if self.state == State::Oversize || body_size > self.policy.max_body_bytes {
            let prefix = io.request_body(body_size.min(ID_SALVAGE_PREFIX))?;
            let id = salvage_id(&prefix);
            return self.reject(io, &self.too_large(id.as_deref()), m);
        }
        if !end_of_stream {
            return Ok(Step::Buffer);
        }
        let body = io.request_body(body_size)?;
        self.classify(io, &body, m)
    }

    fn classify(&mut self, io: &mut dyn HttpIo, body: &[u8], m: &mut dyn Metrics) -> Result<Step, HostError> {
        match classify_body(&self.head.view(), body, &self.policy.wire) {
            Ok(c) => self.forward(io, c, m),
            Err(r) => self.reject(io, &r, m),
        }
    }

    fn too_large(&self, id: Option<&str>) -> Rejection {
        Rejection::new(
            RejectKind::BodyTooLarge,
            format!("Request body exceeds the gateway limit of {} bytes", self.policy.max_body_bytes),
        )
        .with_id(id)
    }

    fn forward(&mut self, io: &mut dyn HttpIo, c: Classified, m: &mut dyn Metrics) -> Result<Step, HostError> {
        apply(io, headers::METHOD, &c.mcp_method)?;
        apply(io, headers::NAME, &c.mcp_name)?;
        m.request(c.request.era.as_str(), "forward");
        self.request = Some(c.request);
        self.state = State::Done;
        Ok(Step::Continue)
    }

    fn reject(&mut self, io: &mut dyn HttpIo, r: &Rejection, m: &mut dyn Metrics) -> Result<Step, HostError> {
        self.state = State::Done;
        m.validation_failure(r.kind.label());
        let mut hdrs: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if r.kind == RejectKind::MethodNotAllowed {
            hdrs.push(("allow", "POST"));
        }
        io.send_local_reply(r.kind.http_status(), &hdrs, r.body().as_bytes())?;
        Ok(Step::Answered)
    }

    /// A host call failed mid-request: fail closed, say so, never panic.
    fn host_failure(&mut self, io: &mut dyn HttpIo, e: HostError) -> Step {
        self.state = State::Done;
        let msg = format!("Internal error: gateway host call {} failed (status {})", e.call, e.status);
        let body = jsonrpc_error_body(None, -32603, &msg, None);
        // If even the reply fails the host resets the stream; nothing else is left to try.
        let _ = io.send_local_reply(500, &[("content-type", "application/json")], body.as_bytes());
        Step::Answered
    }
}

fn apply(io: &mut dyn HttpIo, name: &str, edit: &HeaderEdit) -> Result<(), HostError> {
    match edit {
        HeaderEdit::Keep => Ok(()),
        HeaderEdit::Set(v) => io.set_request_header(name, v),
        HeaderEdit::Remove => io.remove_request_header(name),
    }
}
