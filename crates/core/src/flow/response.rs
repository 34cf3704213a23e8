//! The response pipeline: chosen at request time (see [`super::decide`]), fed the response
//! headers and body chunks, it hands complete JSON-RPC messages to its inspectors in order and
//! puts back what they let through.
//!
//! - `application/json`: the body is buffered to its end (one message), inspected, replaced when
//!   an inspector rewrote it.
//! - `text/event-stream`: never buffered. Each chunk goes through the chunk-safe SSE decoder;
//!   every event completed by it is inspected and re-encoded into the chunk's place, the bytes of
//!   an incomplete event are held back until the chunk that completes it.
//! - a non-2xx answer's text body (an error page): buffered and read as text by the inspectors
//!   that read text (the content scan), else it passes untouched;
//! - anything else passes untouched.
//!
//! A finding with [`Disposition::Block`] replaces the message with a JSON-RPC error naming the
//! inspector (never the content); on a stream that error is the last event, and the rest of
//! the stream is dropped.
//!
//! An answer the inspectors must read but cannot is never passed through (fail closed): a
//! successful answer in a content encoding (the request asked for `identity`) or a content type
//! other than JSON or SSE is replaced by the same error, as is an SSE event larger than
//! [`MAX_SSE_EVENT_BYTES`]. Non-2xx answers without a JSON body pass (they carry no result).

use crate::inspect::{Disposition, ExchangeView, Finding, Inspector, Rewrite};
use crate::mcp::jsonrpc::{parse_body, Body, Envelope};
use crate::mcp::sse::{SseDecoder, SseEvent};
use crate::ports::{HostError, HttpIo, Kv, Step};

use super::reply;

/// Largest SSE event an inspected stream may carry.
pub const MAX_SSE_EVENT_BYTES: usize = 4 * 1024 * 1024;

enum Framing {
    /// Response headers not seen yet.
    Pending,
    /// One JSON message, buffered to the end.
    Json,
    /// An event stream, inspected event by event.
    Sse(Box<SseDecoder>),
    /// A blocked stream: everything after the error event is dropped.
    Closed,
    /// An answer that cannot be read: its bytes are dropped, the error replaces it at the end.
    Unreadable(&'static str),
    /// A non-2xx answer's text body, buffered to its end for the inspectors that read text.
    Text,
    /// Nothing the inspectors read: passes untouched.
    Pass,
}

/// What the request's own answer said, as far as the pipeline read it (receipts' and metrics'
/// `error.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// The request's own answer was read.
    pub seen: bool,
    /// The JSON-RPC error code of an error answer; `0` when its code is not an integer (JSON-RPC
    /// requires one: the answer is malformed, but still an error to the client).
    pub error_code: Option<i64>,
    /// A `CallToolResult` with `isError: true`.
    pub tool_error: bool,
    /// The HTTP status of an answer that failed at the HTTP level (400..=599).
    pub http_error: Option<u16>,
}

pub struct ResponsePipeline {
    inspectors: Vec<Box<dyn Inspector>>,
    framing: Framing,
    findings: Vec<Finding>,
    answer: Answer,
    /// The answer to a legacy batch: the ids of its elements. An array of answers to them is
    /// its own; an answer to any other id is foreign.
    batch: Option<Vec<String>>,
}

impl ResponsePipeline {
    pub fn new(inspectors: Vec<Box<dyn Inspector>>) -> ResponsePipeline {
        ResponsePipeline { inspectors, framing: Framing::Pending, findings: Vec::new(), answer: Answer::default(), batch: None }
    }

    /// The pipeline of a legacy batch's answer (message-wide inspectors only), `ids` its
    /// elements' ids.
    pub fn for_batch(inspectors: Vec<Box<dyn Inspector>>, ids: Vec<String>) -> ResponsePipeline {
        ResponsePipeline { batch: Some(ids), ..ResponsePipeline::new(inspectors) }
    }

    /// A pipeline that lets nothing of the answer through (the host could not prepare it for
    /// inspection).
    pub fn refusing() -> ResponsePipeline {
        ResponsePipeline {
            inspectors: Vec::new(),
            framing: Framing::Closed,
            findings: vec![unreadable("unprepared_response")],
            answer: Answer::default(),
            batch: None,
        }
    }

    /// Replaces the whole answer with the withheld error (`what`, counted as an unreadable
    /// answer): it came from somewhere the decision did not cover. An answer without a body
    /// keeps its headers (there is nothing to replace) and the finding says so.
    pub fn withhold_all(&mut self, http: &mut dyn HttpIo, what: &'static str, end_of_stream: bool) -> Result<Step, HostError> {
        if end_of_stream {
            self.findings.push(unreadable(what));
            self.framing = Framing::Closed;
            return Ok(Step::Continue);
        }
        http.remove_response_header("content-length")?;
        http.remove_response_header("content-encoding")?;
        http.set_response_header("content-type", "application/json")?;
        self.framing = Framing::Unreadable(what);
        Ok(Step::Continue)
    }

    /// True while the pipeline may still need to see response callbacks.
    pub fn active(&self) -> bool {
        !matches!(self.framing, Framing::Pass)
    }

    /// What the request's own answer said (default until it was read).
    pub fn answer(&self) -> Answer {
        self.answer
    }

    /// Everything the inspectors found so far, in order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn on_headers(&mut self, http: &mut dyn HttpIo, end_of_stream: bool) -> Result<Step, HostError> {
        self.framing = Framing::Pass;
        if self.inspectors.is_empty() {
            return Ok(Step::Continue);
        }
        let text = |name| -> Result<String, HostError> {
            let v = http.response_header(name)?.unwrap_or_default();
            Ok(String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        };
        let status = text(":status")?;
        // An operation that failed at the HTTP level (an upstream down, a 5xx page) is an error too.
        self.answer.http_error = status.parse::<u16>().ok().filter(|s| (400..=599).contains(s));
        if end_of_stream {
            return Ok(Step::Continue);
        }
        let (ct, encoding) = (text("content-type")?, text("content-encoding")?);
        // What a client may read as an answer: below 400 (an SDK parses a 3xx without a
        // `Location` as it parses a 200), or a status the filter cannot read.
        let success = status.parse::<u16>().map_or(true, |s| s < 400);
        // An error page is read as text when an inspector reads text (the content scan).
        let reads_text = self.inspectors.iter().any(|i| i.reads_text());
        let framing = if !encoding.is_empty() && encoding != "identity" {
            if success || reads_text {
                Framing::Unreadable("encoded_response")
            } else {
                Framing::Pass
            }
        } else if ct.starts_with("application/json") {
            Framing::Json
        } else if ct.starts_with("text/event-stream") && !utf8_charset(&ct) {
            // A client decodes the stream in the charset it names (Python's httpx does: UTF-7
            // spells `ghp_` and even `"` in other bytes); the filter reads UTF-8 only.
            Framing::Unreadable("unreadable_charset")
        } else if ct.starts_with("text/event-stream") {
            Framing::Sse(Box::new(SseDecoder::new(MAX_SSE_EVENT_BYTES)))
        } else if success {
            Framing::Unreadable("unreadable_content_type")
        } else if reads_text {
            Framing::Text
        } else {
            Framing::Pass
        };
        if matches!(framing, Framing::Pass) {
            return Ok(Step::Continue);
        }
        // The length changes when a message is rewritten: it must go, or nothing is rewritten
        // (and an answer that must be read cannot pass either).
        http.remove_response_header("content-length")?;
        if let Framing::Unreadable(_) = framing {
            http.remove_response_header("content-encoding")?;
            http.set_response_header("content-type", "application/json")?;
        }
        self.framing = framing;
        Ok(Step::Continue)
    }

    /// Trailers end the answer (an HTTP/2 upstream may finish with them, not a data frame): the
    /// body callbacks never saw `end_of_stream`. A buffered answer (JSON, a text error page, an
    /// unreadable one) is finished as at its end, `size` being what is held. A stream passed
    /// event by event cannot take bytes any more: an event the trailers cut stays unsent (it was
    /// never inspected), counted as an unreadable answer.
    pub fn on_trailers(
        &mut self,
        http: &mut dyn HttpIo,
        kv: &mut dyn Kv,
        ex: &ExchangeView<'_>,
        size: usize,
    ) -> Result<Step, HostError> {
        match &self.framing {
            Framing::Sse(decoder) => {
                if decoder.holds_event() {
                    self.findings.push(unreadable("sse_event_cut_by_trailers"));
                }
                self.framing = Framing::Closed;
                Ok(Step::Continue)
            }
            Framing::Json | Framing::Text | Framing::Unreadable(_) => self.on_body(http, kv, ex, size, true),
            Framing::Pending | Framing::Pass | Framing::Closed => Ok(Step::Continue),
        }
    }

    pub fn on_body(
        &mut self,
        http: &mut dyn HttpIo,
        kv: &mut dyn Kv,
        ex: &ExchangeView<'_>,
        size: usize,
        end_of_stream: bool,
    ) -> Result<Step, HostError> {
        match &mut self.framing {
            Framing::Pending | Framing::Pass => Ok(Step::Continue),
            Framing::Closed => {
                if size > 0 {
                    http.set_response_body(size, b"")?;
                }
                Ok(Step::Continue)
            }
            Framing::Unreadable(what) => {
                let what = *what;
                if !end_of_stream {
                    if size > 0 {
                        http.set_response_body(size, b"")?;
                    }
                    // Held (empty) rather than passed: an answer ended by trailers is written
                    // at the trailers, which only a buffered body can take.
                    return Ok(Step::Buffer);
                }
                self.findings.push(unreadable(what));
                self.framing = Framing::Pass;
                http.set_response_body(size, reply::withheld(ex.request, "response", what).as_bytes())?;
                Ok(Step::Continue)
            }
            Framing::Json | Framing::Text if !end_of_stream => Ok(Step::Buffer),
            Framing::Json | Framing::Text => {
                let text = matches!(self.framing, Framing::Text);
                self.framing = Framing::Pass;
                let body = http.response_body(size)?;
                // An error page's headers (status, content type) have passed: if it is withheld,
                // the body says why.
                let (out, blocked) = if text {
                    self.run_inspectors(ex, &body, |i, input, f| i.reads_text().then(|| i.inspect_text(ex, input, f)))
                } else {
                    self.inspect(ex, &body, kv)
                };
                if let Some(new) = blocked.or(out) {
                    // A failed rewrite must not leak what the inspectors removed: drop the body.
                    if http.set_response_body(size, &new).is_err() {
                        http.set_response_body(size, b"")?;
                    }
                }
                Ok(Step::Continue)
            }
            Framing::Sse(decoder) => {
                let chunk = http.response_body(size)?;
                let mut events = Vec::new();
                let mut decoded = decoder.feed(&chunk, &mut events);
                if end_of_stream && decoded.is_ok() {
                    // A last event without its blank line is still an event.
                    decoded = decoder.feed(b"\n\n", &mut events);
                }
                let mut out = Vec::with_capacity(chunk.len());
                for ev in events {
                    if ev.data.trim_ascii().is_empty() {
                        // No message (an SDK's resumability priming event `id: N` + empty
                        // `data:`): nothing for an inspector to read, nothing to hide.
                        push_event(&mut out, &ev, ev.data.as_bytes());
                        continue;
                    }
                    let (rewritten, blocked) = self.inspect(ex, ev.data.as_bytes(), kv);
                    if let Some(error) = blocked {
                        push_error_event(&mut out, &error);
                        self.framing = Framing::Closed;
                        break;
                    }
                    push_event(&mut out, &ev, rewritten.as_deref().unwrap_or(ev.data.as_bytes()));
                }
                if decoded.is_err() && !matches!(self.framing, Framing::Closed) {
                    self.findings.push(unreadable("oversized_sse_event"));
                    let error = reply::withheld(ex.request, "response", "oversized_sse_event");
                    push_error_event(&mut out, error.as_bytes());
                    self.framing = Framing::Closed;
                }
                if out != chunk {
                    http.set_response_body(size, &out)?;
                }
                if end_of_stream && !matches!(self.framing, Framing::Closed) {
                    self.framing = Framing::Pass;
                }
                Ok(Step::Continue)
            }
        }
    }

    /// One message through every inspector: `(rewritten, blocked)`, where `blocked` is the
    /// JSON-RPC error that must stand in for the message.
    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], kv: &mut dyn Kv) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let reading = match &self.batch {
            Some(ids) => Some(answers_outside_batch(ids, message)),
            None => self.read_answer(ex, message),
        };
        if reading == Some(Reading::Foreign) {
            // The SDKs hand a response to whichever pending request has its id: on this
            // request's answer it would reach another request past the inspectors that one chose.
            return self.withhold(ex, "foreign_response");
        }
        let (out, blocked) = self.run_inspectors(ex, message, |i, input, f| Some(i.inspect(ex, input, kv, f)));
        if blocked.is_none() && reading == Some(Reading::Unparsed) && self.answer.http_error.is_none() {
            // Nor can a message the filter cannot parse pass: it may still parse for a client (a
            // BOM, `1e400`, a lone surrogate, nesting past the limit) and answer another request.
            // (An HTTP error is an error to every client, whatever its body says.)
            return self.withhold(ex, "unparsable_response");
        }
        (out, blocked)
    }

    fn withhold(&mut self, ex: &ExchangeView<'_>, what: &'static str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        self.findings.push(unreadable(what));
        (None, Some(reply::withheld(ex.request, "response", what).into_bytes()))
    }

    /// One message through every inspector `call` reads it with (`None`: that inspector does not
    /// read it), each seeing what the previous one let through: `(rewritten, blocked)`.
    fn run_inspectors(
        &mut self,
        ex: &ExchangeView<'_>,
        message: &[u8],
        mut call: impl FnMut(&mut dyn Inspector, &[u8], &mut Vec<Finding>) -> Option<Rewrite>,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut current: Option<Vec<u8>> = None;
        for inspector in &mut self.inspectors {
            let before = self.findings.len();
            let input = current.as_deref().unwrap_or(message);
            if let Some(Rewrite::Replace(new)) = call(inspector.as_mut(), input, &mut self.findings) {
                current = Some(new);
            }
            let new = self.findings.get(before..).unwrap_or_default();
            if let Some(block) = new.iter().find(|f| f.disposition == Disposition::Block) {
                return (None, Some(reply::withheld(ex.request, block.inspector, block.what).into_bytes()));
            }
        }
        (current, None)
    }
}

impl ResponsePipeline {
    /// What `message` is to this request: a JSON-RPC response (or a batch of them) to another
    /// id, its own answer (noted in [`ResponsePipeline::answer`]), something else, or nothing
    /// the filter can parse. `None` for a legacy GET stream, which has no request id: what it
    /// replays is judged by shape.
    fn read_answer(&mut self, ex: &ExchangeView<'_>, message: &[u8]) -> Option<Reading> {
        let own = ex.request.id.as_deref()?;
        if ex.request.handles.standalone_stream {
            return None;
        }
        let reading = answers_another_request(own, message);
        if let Reading::Own { error_code, tool_error } = reading {
            self.answer.seen = true;
            self.answer.error_code = error_code;
            self.answer.tool_error = tool_error;
        }
        Some(reading)
    }
}

/// What one message is to the request that `own` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Foreign,
    /// The request's own answer: its error code (0 when not an integer), and `isError: true`.
    Own {
        error_code: Option<i64>,
        tool_error: bool,
    },
    /// Not an answer (a notification, a server request).
    Other,
    /// Not a JSON-RPC message the filter can parse.
    Unparsed,
}

/// The id as the client wrote it, else the same value spelled otherwise (`1.0`, `"\u0061"`).
fn same_id(id: &str, own: &str) -> bool {
    id == own
        || match (serde_json::from_str::<serde_json::Value>(id), serde_json::from_str::<serde_json::Value>(own)) {
            (Ok(a), Ok(b)) => a == b || a.as_f64().is_some_and(|x| b.as_f64() == Some(x)),
            _ => false,
        }
}

/// What one message is to a legacy batch whose elements have `ids`: an answer (alone or in an
/// array) to an id outside them is foreign, as a single request's answer to another id is.
fn answers_outside_batch(ids: &[String], message: &[u8]) -> Reading {
    // A `null` id answers no request (a server's error for a batch it could not read): it
    // reaches no other request either.
    let outside = |env: &Envelope<'_>| {
        (env.has_result || env.has_error)
            && env.id.as_ref().is_some_and(|i| i.json() != "null" && !ids.iter().any(|own| same_id(i.json(), own)))
    };
    match parse_body(message) {
        Ok(Body::Single(env)) if outside(&env) => Reading::Foreign,
        Ok(Body::Batch(items)) if items.iter().any(outside) => Reading::Foreign,
        Ok(_) => Reading::Other,
        Err(_) => Reading::Unparsed,
    }
}

fn answers_another_request(own: &str, message: &[u8]) -> Reading {
    let same = |id: &str| same_id(id, own);
    match parse_body(message) {
        Ok(Body::Single(env)) if env.has_result || env.has_error => match env.id {
            Some(i) if !same(i.json()) => Reading::Foreign,
            _ => Reading::Own {
                error_code: if env.has_error { Some(env.error_code.unwrap_or(0)) } else { None },
                tool_error: env.tool_error,
            },
        },
        // An array answers several requests at once: never this single request's own answer.
        Ok(Body::Batch(items)) if items.iter().any(|e| e.has_result || e.has_error) => Reading::Foreign,
        Ok(_) => Reading::Other,
        Err(_) => Reading::Unparsed,
    }
}

/// True when a (lower-cased) content type names no charset or UTF-8 (the spellings Python's
/// codec registry and the WHATWG encoding list share). Any other parameter whose name starts
/// with `charset` is not: Python's `email` parser (behind httpx's `encoding`) decodes the
/// RFC 2231 forms `charset*=''utf-7`, `charset*0=utf-; charset*1=7` as the charset.
fn utf8_charset(ct: &str) -> bool {
    ct.split(';').skip(1).filter_map(|p| p.split_once('=')).filter(|(k, _)| k.trim().starts_with("charset")).all(|(k, v)| {
        let v = v.trim().trim_matches('"').trim();
        k.trim() == "charset" && matches!(v, "utf-8" | "utf8" | "utf_8" | "u8" | "unicode-1-1-utf-8")
    })
}

/// An answer that must be read and holds nothing the filter reads: the pipeline's own check of
/// whose answer it is ([`ResponsePipeline::inspect`]) still runs. Policies without response
/// inspectors for this request get it, since the answer could be another request's (a
/// `tools/list` the policy filters) in disguise.
pub struct AnswerCheck;

impl Inspector for AnswerCheck {
    fn name(&self) -> &'static str {
        "answer"
    }

    fn inspect(&mut self, _: &ExchangeView<'_>, _: &[u8], _: &mut dyn Kv, _: &mut Vec<Finding>) -> Rewrite {
        Rewrite::Keep
    }
}

/// The pipeline's own finding: an answer the inspectors must read and cannot.
fn unreadable(what: &'static str) -> Finding {
    Finding::unreadable("response", what)
}

/// Appends the error event that ends a blocked stream.
fn push_error_event(out: &mut Vec<u8>, error: &[u8]) {
    push_event(out, &SseEvent { event: Some("message".to_owned()), data: String::new(), id: None }, error);
}

/// Appends one event with `data` as its data (one `data:` line per line of it).
fn push_event(out: &mut Vec<u8>, ev: &SseEvent, data: &[u8]) {
    if let Some(name) = &ev.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = &ev.id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    for line in data.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}
