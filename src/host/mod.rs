//! The only module that knows proxy-wasm: root and HTTP contexts, and the adapters that map
//! host calls onto the pure core ([`crate::flow`]). Compiled for wasm32 only.

mod abi;
mod http;
mod kv;
mod metrics;
mod root;
mod writer;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::WardenRoot::default()) });
}}
