//! The fixture corpus on a 32-bit target: compiled to wasm32-unknown-unknown and run under Node
//! by wasm-bindgen-test (`make test-wasm32`, see mk/wasmtest.mk). Same cases, same checks as
//! `tests/corpus.rs` (classify) and `tests/flow_fake_host.rs` (flow fed in 1-byte, 7-byte and
//! whole pieces), and the content scanner's true positives (`tests/scan_corpus.rs`): the corpora
//! are embedded with `include_str!`, so no filesystem is needed.
//!
//! An ordinary test target of the core crate (which has no binaries and no host-only
//! dependencies, so it builds for wasm32-unknown-unknown as it is). Natively it holds no tests:
//! the native runs are the two test files above.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
#[path = "corpus/support.rs"]
mod support;

#[cfg(target_arch = "wasm32")]
mod on_wasm32 {
    use super::support;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn pointer_width_is_32() {
        assert_eq!(std::mem::size_of::<usize>(), 4);
    }

    #[wasm_bindgen_test]
    fn corpus_through_classify_on_wasm32() {
        let cases = support::load();
        let n = support::run_all("classify (wasm32)", &cases, support::check_classify);
        assert!(n > 100, "corpus shrank to {n} cases");
    }

    #[wasm_bindgen_test]
    fn corpus_through_flow_on_wasm32() {
        let cases = support::load();
        support::run_all("flow (wasm32)", &cases, support::check_flow);
    }

    /// The content scanner's true positives (`fixtures/scan/true_positives.jsonl`, as
    /// `tests/scan_corpus.rs` runs them natively): each found by its own detector on 32 bits too
    /// (the automaton's premultiplied states, the run pass, the checksums).
    #[wasm_bindgen_test]
    fn scan_true_positives_on_wasm32() {
        use mcp_warden_core::scan::{Found, Scanner, DETECTORS};
        let scanner = Scanner::new(&[]).unwrap();
        let corpus = include_str!("../../../fixtures/scan/true_positives.jsonl");
        let mut n = 0;
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (want, text) = (v["detector"].as_str().unwrap(), v["text"].as_str().unwrap());
            let (hits, _) = scanner.scan_text(text.as_bytes(), 1 << 24);
            let found = hits.iter().any(|h| matches!(h.found, Found::Detector(i) if DETECTORS[i].id == want));
            assert!(found, "{want} missed on wasm32: {text:.120}");
            n += 1;
        }
        assert!(n > 900, "true-positive corpus shrank to {n}");
    }
}
