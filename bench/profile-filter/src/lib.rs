//! Profiling filter (bench only). The plugin configuration is one mode word:
//!
//! | mode         | per request                                                              |
//! |--------------|--------------------------------------------------------------------------|
//! | `noop`       | nothing: every callback returns Continue (pure VM dispatch cost)         |
//! | `hdr7`       | the 7 `proxy_get_header_map_value` calls the warden makes, then Continue |
//! | `hdr70`      | the same 7 names read 10 times each (per-call cost = (hdr70-hdr7)/63)    |
//! | `pairs`      | one `proxy_get_header_map_pairs` instead of 7 single reads               |
//! | `buffer`     | pause on headers, buffer the body, Continue at end of stream; no reads   |
//! | `read`       | `buffer` + one `proxy_get_buffer_bytes` of the whole body                |
//! | `classify`   | `hdr7` + `read` + the real `classify_body` (no header edits)             |
//! | `classify11` | as `classify` but `classify_body` runs 11 times (per-call V8 cost)       |
//! | `set2`       | `classify` + 2 `proxy_replace_header_map_value` (the legacy edit path)   |
//! | `time20`     | 20 `proxy_get_current_time_nanoseconds` (a host call with no data back)   |
//! | `prop5`      | 5 `proxy_get_property` (metadata, uri_san, source.principal/address, cluster) |
//! | `metric10`   | 10 `proxy_increment_metric` on counters defined at configure time        |
//! | `hist4`      | 4 `proxy_record_metric` on a histogram                                   |
//! | `shared4`    | 2 `proxy_get_shared_data` + 2 `proxy_set_shared_data` (CAS) on a 64 B value |

#![allow(dead_code, clippy::all)]

use std::cell::Cell;
use std::ptr::null_mut;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use mcp_warden_core::mcp::classify::{classify_body, RequestHead, WireRules};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Noop,
    Hdr7,
    Hdr70,
    Pairs,
    Buffer,
    Read,
    Classify,
    Classify11,
    Set2,
    Time20,
    Prop5,
    Metric10,
    Hist4,
    Shared4,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s.trim() {
            "noop" => Mode::Noop,
            "hdr7" => Mode::Hdr7,
            "hdr70" => Mode::Hdr70,
            "pairs" => Mode::Pairs,
            "buffer" => Mode::Buffer,
            "read" => Mode::Read,
            "classify" => Mode::Classify,
            "classify11" => Mode::Classify11,
            "set2" => Mode::Set2,
            "time20" => Mode::Time20,
            "prop5" => Mode::Prop5,
            "metric10" => Mode::Metric10,
            "hist4" => Mode::Hist4,
            "shared4" => Mode::Shared4,
            _ => return None,
        })
    }
    fn buffers(self) -> bool {
        matches!(self, Mode::Buffer | Mode::Read | Mode::Classify | Mode::Classify11 | Mode::Set2)
    }
    fn reads_headers(self) -> bool {
        matches!(self, Mode::Hdr7 | Mode::Hdr70 | Mode::Classify | Mode::Classify11 | Mode::Set2)
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(map_type: MapType, key_data: *const u8, key_size: usize,
        return_value_data: *mut *mut u8, return_value_size: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: MapType, return_map_data: *mut *mut u8,
        return_map_size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(map_type: MapType, key_data: *const u8, key_size: usize,
        value_data: *const u8, value_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_property(path_data: *const u8, path_size: usize, return_value_data: *mut *mut u8,
        return_value_size: *mut usize) -> u32;
    fn proxy_define_metric(metric_type: MetricType, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_shared_data(key_data: *const u8, key_size: usize, return_value_data: *mut *mut u8,
        return_value_size: *mut usize, return_cas: *mut u32) -> u32;
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
    fn proxy_get_buffer_bytes(buffer_type: BufferType, start: usize, max_size: usize,
        return_buffer_data: *mut *mut u8, return_buffer_size: *mut usize) -> u32;
}

unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() { Vec::new() } else { Vec::from_raw_parts(data, size, size) }
}

fn header(name: &str) -> Option<Vec<u8>> {
    let mut d = null_mut();
    let mut n = 0;
    unsafe {
        (proxy_get_header_map_value(MapType::HttpRequestHeaders, name.as_ptr(), name.len(), &mut d, &mut n) == 0)
            .then(|| take(d, n))
    }
}

fn pairs() -> Vec<u8> {
    let mut d = null_mut();
    let mut n = 0;
    unsafe {
        if proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut d, &mut n) == 0 { take(d, n) } else { Vec::new() }
    }
}

fn set_header(name: &str, value: &str) {
    unsafe {
        proxy_replace_header_map_value(MapType::HttpRequestHeaders, name.as_ptr(), name.len(), value.as_ptr(), value.len());
    }
}

fn body(len: usize) -> Vec<u8> {
    let mut d = null_mut();
    let mut n = 0;
    unsafe {
        if proxy_get_buffer_bytes(BufferType::HttpRequestBody, 0, len, &mut d, &mut n) == 0 { take(d, n) } else { Vec::new() }
    }
}

fn now() -> u64 {
    let mut t = 0u64;
    unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    t
}

/// Properties are a `\0`-joined path, as the SDK serialises them.
fn property(path: &[&str]) -> Vec<u8> {
    let joined = path.join("\0");
    let mut d = null_mut();
    let mut n = 0;
    unsafe {
        if proxy_get_property(joined.as_ptr(), joined.len(), &mut d, &mut n) == 0 { take(d, n) } else { Vec::new() }
    }
}

fn define(kind: MetricType, name: &str) -> u32 {
    let mut id = 0;
    unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    id
}

fn shared_get(key: &str) -> (Vec<u8>, u32) {
    let mut d = null_mut();
    let mut n = 0;
    let mut cas = 0;
    unsafe {
        if proxy_get_shared_data(key.as_ptr(), key.len(), &mut d, &mut n, &mut cas) == 0 { (take(d, n), cas) } else { (Vec::new(), 0) }
    }
}

fn shared_set(key: &str, v: &[u8], cas: u32) -> u32 {
    unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), v.as_ptr(), v.len(), cas) }
}

thread_local! {
    static METRICS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

const NAMES: [&str; 7] =
    [":method", "content-type", "mcp-protocol-version", "mcp-method", "mcp-name", "mcp-session-id", "content-length"];

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Rc::new(Cell::new(Mode::Noop)) }) });
}}

struct Root {
    mode: Rc<Cell<Mode>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let cfg = proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size).ok().flatten().unwrap_or_default();
        match Mode::parse(&String::from_utf8_lossy(&cfg)) {
            Some(m) => {
                self.mode.set(m);
                let c = define(MetricType::Counter, "bench_profile_counter");
                let h = define(MetricType::Histogram, "bench_profile_histogram");
                METRICS.with(|x| x.set((c, h)));
                true
            }
            None => false,
        }
    }
    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { mode: self.mode.get(), head: Vec::new() }))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    mode: Mode,
    head: Vec<Option<Vec<u8>>>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, eos: bool) -> Action {
        match self.mode {
            Mode::Pairs => {
                let p = pairs();
                std::hint::black_box(p);
            }
            Mode::Hdr70 => {
                for _ in 0..10 {
                    for n in NAMES {
                        std::hint::black_box(header(n));
                    }
                }
            }
            m if m.reads_headers() => self.head = NAMES.iter().map(|n| header(n)).collect(),
            Mode::Time20 => {
                for _ in 0..20 {
                    std::hint::black_box(now());
                }
            }
            Mode::Prop5 => {
                for p in [&["metadata"][..], &["connection", "uri_san_peer_certificate"], &["source", "principal"],
                          &["source", "address"], &["xds", "cluster_name"]] {
                    std::hint::black_box(property(p));
                }
            }
            Mode::Metric10 => {
                let (c, _) = METRICS.with(Cell::get);
                for _ in 0..10 {
                    unsafe { proxy_increment_metric(c, 1) };
                }
            }
            Mode::Hist4 => {
                let (_, h) = METRICS.with(Cell::get);
                for i in 0..4 {
                    unsafe { proxy_record_metric(h, 1000 + i) };
                }
            }
            Mode::Shared4 => {
                for k in ["bench_profile_slot_a", "bench_profile_slot_b"] {
                    let (mut v, cas) = shared_get(k);
                    v.resize(64, 0);
                    if let Some(b) = v.first_mut() {
                        *b = b.wrapping_add(1);
                    }
                    std::hint::black_box(shared_set(k, &v, cas));
                }
            }
            _ => {}
        }
        if self.mode.buffers() && !eos { Action::Pause } else { Action::Continue }
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if !self.mode.buffers() {
            return Action::Continue;
        }
        if !eos {
            return Action::Pause;
        }
        if self.mode == Mode::Buffer {
            return Action::Continue;
        }
        let b = body(size);
        let runs = match self.mode {
            Mode::Read => 0,
            Mode::Classify11 => 11,
            _ => 1,
        };
        if runs > 0 {
            let method = self.head.first().cloned().flatten().unwrap_or_default();
            let method = String::from_utf8_lossy(&method);
            let h = |i: usize| self.head.get(i).and_then(|v| v.as_deref());
            let head = RequestHead {
                http_method: &method,
                content_type: h(1),
                content_encoding: None,
                protocol_version: h(2),
                mcp_method: h(3),
                mcp_name: h(4),
                session_id: h(5),
            };
            let rules = WireRules {
                modern_enabled: true,
                legacy_enabled: true,
                supported_versions: vec!["2026-07-28".to_owned()],
                forward_cors_preflight: false,
                legacy_batches: false,
            };
            for _ in 0..runs {
                let r = classify_body(std::hint::black_box(&head), std::hint::black_box(&b), &rules);
                std::hint::black_box(r.is_ok());
            }
        }
        if self.mode == Mode::Set2 {
            set_header("mcp-method", "tools/call");
            set_header("mcp-name", "search_documents");
        }
        Action::Continue
    }
}
