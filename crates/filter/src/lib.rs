//! mcp-warden as an Envoy proxy-wasm filter: the only crate that knows proxy-wasm. It adapts
//! Envoy's callbacks and host calls onto the ports of `mcp-warden-core`, and nothing else; every
//! decision is made in the core. Built for wasm32-wasip1 (`mcp_warden.wasm`); natively it is
//! empty, so `cargo test` of the workspace builds it too.
//!
//! - `root`: the root context (one per worker VM): configuration, control-endpoint polling.
//! - `http`: the HTTP context: callbacks → [`mcp_warden_core::flow::RequestFlow`].
//! - `ports`: the core's ports over Envoy: HTTP I/O, shared data, clock, metrics, receipt queue.
//! - `writer`: the singleton receipt writer VM (shared queue → sign → chain → gRPC export).
//! - `heap`: the allocator, counting the VM's heap in use (`mcp_warden_vm_heap_bytes`).
//! - `abi`: the proxy-wasm ABI calls, declared here so every host status maps to our errors.
//! - `fault`: only with the `fault-injection` feature: panics on request, for the e2e suite.

#[cfg(target_os = "wasi")]
mod abi;
#[cfg(all(target_os = "wasi", feature = "fault-injection"))]
mod fault;
#[cfg(target_os = "wasi")]
mod heap;
#[cfg(target_os = "wasi")]
mod http;
#[cfg(target_os = "wasi")]
mod metrics;
#[cfg(target_os = "wasi")]
mod ports;
#[cfg(target_os = "wasi")]
mod root;
#[cfg(target_os = "wasi")]
mod writer;

#[cfg(target_os = "wasi")]
#[global_allocator]
static ALLOC: heap::CountingAlloc = heap::CountingAlloc;

#[cfg(target_os = "wasi")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::WardenRoot::default()) });
}}
