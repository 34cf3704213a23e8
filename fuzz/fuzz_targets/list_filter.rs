//! Any answer to a list request: filtering never panics, and what it writes back is JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::policy::{filter_list, ListKind};

fuzz_target!(|data: &[u8]| {
    for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
        if let Some(out) = filter_list(data, kind, &|name: &str| !name.starts_with('d'), true) {
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }
});
