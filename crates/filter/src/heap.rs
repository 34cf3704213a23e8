//! The VM's own heap in use, counted at the allocator: a leak inside the filter (a key kept per
//! principal, a buffer never freed) shows in `mcp_warden_vm_heap_bytes`, which Envoy's
//! `server.memory_allocated` cannot see (the VM's linear memory is outside Envoy's heap), and
//! which linear memory growth shows only once the allocator's free space is used up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use proxy_wasm::types::MetricType;

use super::abi;
use mcp_warden_core::metrics;

/// The system allocator, counting the bytes live (one add per allocation, one subtract per free;
/// the VM is single-threaded, the atomic is only what `GlobalAlloc: Sync` asks for).
pub struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the caller's own arguments.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Changes smaller than this are not reported (each report is a host call).
const REPORT_STEP: i64 = 16 * 1024;

thread_local! {
    static REPORTED: Cell<i64> = const { Cell::new(0) };
    static GAUGE: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Moves the shared gauge by what this VM's heap changed since its last report, once that is a
/// [`REPORT_STEP`] or more (the first report, whatever its size): the gauge is the sum of every
/// VM's heap, to within a step each.
pub fn report() {
    let live = i64::try_from(LIVE_BYTES.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    let delta = live - REPORTED.with(Cell::get);
    let first = GAUGE.with(Cell::get).is_none();
    if delta.abs() < REPORT_STEP && !(first && delta > 0) {
        return;
    }
    let id = match GAUGE.with(Cell::get) {
        Some(id) => id,
        None => match abi::define_metric(MetricType::Gauge, metrics::VM_HEAP_BYTES) {
            Ok(id) => {
                GAUGE.with(|g| g.set(Some(id)));
                id
            }
            Err(_) => return,
        },
    };
    if abi::increment_metric(id, delta).is_ok() {
        REPORTED.with(|r| r.set(live));
    }
}
