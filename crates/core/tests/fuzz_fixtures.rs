//! Inputs the fuzzers once crashed on (`fixtures/fuzz/<target>/`, see `fuzz/`), replayed through
//! the same checks as the fuzz targets, so a fixed crash stays fixed without a fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use mcp_warden_core::mcp::uri::{lenient, normalize};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn uri_normalize_crashes_stay_fixed() {
    let cases = inputs("uri_normalize");
    assert!(!cases.is_empty(), "no fixtures: the replay would pass on nothing");
    for (name, data) in cases {
        let Ok(uri) = std::str::from_utf8(&data) else { continue };
        if let Ok(n) = normalize(uri) {
            assert_eq!(normalize(&n), Ok(n.clone()), "{name}: normalize is not idempotent for {uri:?}");
        }
        let _ = lenient(uri);
    }
}
