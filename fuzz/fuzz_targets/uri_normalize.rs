//! Any URI: normalization never panics and is idempotent (the normal form of a normal form is
//! itself), and the lenient reading always yields a string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::mcp::uri::{lenient, normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else { return };
    if let Ok(n) = normalize(uri) {
        if let Ok(again) = normalize(&n) {
            assert_eq!(again, n, "normalize is not idempotent for {uri:?}");
        }
    }
    let _ = lenient(uri);
});
