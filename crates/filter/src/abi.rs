//! The proxy-wasm ABI calls the filter makes, declared here so that every host status is mapped
//! to a [`HostError`] instead of the SDK's `panic!("unexpected status")`.
//!
//! Statuses are read as plain `u32` (a value outside the SDK's enum must not become UB).
//! Buffers the host returns were allocated through the SDK's exported allocator, so we own them.

use std::ops::Range;
use std::ptr::{null, null_mut};

use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};

use mcp_warden_core::ports::HostError;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: MapType, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: MapType, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_log(level: LogLevel, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
    fn proxy_set_buffer_bytes(buffer_type: BufferType, start: usize, size: usize, data: *const u8, data_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_define_metric(metric_type: MetricType, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

/// Envoy's status for a failed compare-and-swap on shared data.
pub const CAS_MISMATCH: u32 = 8;

fn check(call: &'static str, status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError { call, status })
    }
}

/// Takes ownership of a host-allocated buffer (empty when the host returned none).
///
/// # Safety
/// `data`/`size` must come from a successful host call that allocated through our allocator.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: pointers are valid for the call; on OK the host hands us `data`.
    unsafe {
        match proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) {
            OK => Ok(Some(take(data, size))),
            NOT_FOUND => Ok(None),
            status => Err(HostError { call: "get_header_map_value", status }),
        }
    }
}

/// The whole header map in the host's serialisation (see [`HeaderSnapshot`]): one host call.
pub fn header_map(map: MapType) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: pointers are valid for the call; on OK the host hands us `data`.
    unsafe {
        match proxy_get_header_map_pairs(map, &mut data, &mut size) {
            OK => Ok(take(data, size)),
            status => Err(HostError { call: "get_header_map_pairs", status }),
        }
    }
}

/// A header map read once, answering lookups by name.
///
/// Repeated lines of one name are joined with ", " as RFC 9110 §5.3 combines them: the upstream
/// receives every line, so validation must see every line too (a client sending `Mcp-Name: echo`
/// and `Mcp-Name: delete_all` must fail the header/body comparison, not pass on the first line).
pub struct HeaderSnapshot {
    raw: Vec<u8>,
    /// (name, value) byte ranges into `raw`, parsed once when the map is read.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

fn malformed_map() -> HostError {
    HostError { call: "get_header_map_pairs", status: u32::MAX }
}

impl HeaderSnapshot {
    pub fn read(map: MapType) -> Result<Self, HostError> {
        let raw = header_map(map)?;
        let pairs = pair_ranges(&raw).ok_or_else(malformed_map)?;
        Ok(HeaderSnapshot { raw, pairs })
    }

    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().filter_map(|(k, v)| Some((self.raw.get(k.clone())?, self.raw.get(v.clone())?)))
    }

    /// Every header name, lowercase as Envoy stores them.
    pub fn names(&self) -> Result<Vec<String>, HostError> {
        Ok(self.pairs().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect())
    }

    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        let mut out: Option<Vec<u8>> = None;
        for (k, v) in self.pairs() {
            if k.eq_ignore_ascii_case(name.as_bytes()) {
                match out.as_mut() {
                    None => out = Some(v.to_vec()),
                    Some(o) => {
                        o.extend_from_slice(b", ");
                        o.extend_from_slice(v);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<usize> {
    let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(w)).ok()
}

/// The host's map serialisation (see `serialize_pairs`) as byte ranges, read without trusting
/// any length.
fn pair_ranges(b: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    let n = read_u32(b, 0)?;
    let mut at = 4usize.checked_add(n.checked_mul(8)?)?;
    let mut out = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let size_at = 4usize.checked_add(i.checked_mul(8)?)?;
        let (kl, vl) = (read_u32(b, size_at)?, read_u32(b, size_at.checked_add(4)?)?);
        let k = at..at.checked_add(kl)?;
        at = k.end.checked_add(1)?;
        let v = at..at.checked_add(vl)?;
        at = v.end.checked_add(1)?;
        if v.end > b.len() {
            return None;
        }
        out.push((k, v));
    }
    Some(out)
}

pub fn set_header(map: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers are valid for the duration of the call.
    let status = unsafe { proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check("replace_header_map_value", status)
}

pub fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: pointers are valid for the duration of the call.
    let status = unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) };
    check("remove_header_map_value", status)
}

pub fn buffer(kind: BufferType, start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header`.
    unsafe {
        match proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) {
            OK => Ok(take(data, size)),
            NOT_FOUND => Ok(Vec::new()),
            status => Err(HostError { call: "get_buffer_bytes", status }),
        }
    }
}

/// Same wire layout as the SDK's map serialisation: count, (key_len, value_len)*, key\0value\0*.
fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + pairs.iter().map(|(k, v)| k.len() + v.len() + 10).sum::<usize>());
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8], details: &str) -> Result<(), HostError> {
    let hdrs = serialize_pairs(headers);
    // SAFETY: all pointers are valid for the duration of the call.
    let st = unsafe {
        proxy_send_local_response(
            status,
            if details.is_empty() { null() } else { details.as_ptr() },
            details.len(),
            body.as_ptr(),
            body.len(),
            hdrs.as_ptr(),
            hdrs.len(),
            -1,
        )
    };
    check("send_local_response", st)
}

/// Logging must never fail the request: a failed log call is dropped.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointers are valid for the duration of the call.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// A property by path (`["connection", "uri_san_peer_certificate"]`); `None` when absent.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // The ABI takes the path segments joined by NUL.
    let joined = path.join("\0");
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header`.
    unsafe {
        match proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) {
            OK => Ok(Some(take(data, size))),
            NOT_FOUND => Ok(None),
            status => Err(HostError { call: "get_property", status }),
        }
    }
}

/// Shared data (process-wide, all worker VMs of this vm_id): the value and its CAS token.
pub fn shared_get(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: as for `header`.
    unsafe {
        match proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) {
            OK => Ok(Some((take(data, size), cas))),
            NOT_FOUND => Ok(None),
            status => Err(HostError { call: "get_shared_data", status }),
        }
    }
}

/// Writes shared data; `cas` 0 writes unconditionally. A CAS conflict is `CAS_MISMATCH`.
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: pointers are valid for the duration of the call.
    let status = unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    check("set_shared_data", status)
}

/// Replaces the first `len` bytes of the buffered body of `kind` (all of it, when `len` is its size).
pub fn set_buffer(kind: BufferType, len: usize, data: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointers are valid for the duration of the call.
    let status = unsafe { proxy_set_buffer_bytes(kind, 0, len, data.as_ptr(), data.len()) };
    check("set_buffer_bytes", status)
}

/// Host wall clock in nanoseconds since the epoch (0 if the host cannot say).
pub fn now_nanos() -> u64 {
    let mut t: u64 = 0;
    // SAFETY: valid out-pointer.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    if status == OK {
        t
    } else {
        0
    }
}

pub fn set_tick_period_ms(ms: u32) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check("set_tick_period_milliseconds", unsafe { proxy_set_tick_period_milliseconds(ms) })
}

pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: pointers are valid for the duration of the call.
    let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    check("define_metric", status).map(|()| id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check("increment_metric", unsafe { proxy_increment_metric(id, by) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check("record_metric", unsafe { proxy_record_metric(id, value) })
}
