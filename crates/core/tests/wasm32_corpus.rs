//! The fixture corpus on a 32-bit target: compiled to wasm32-unknown-unknown and run under Node
//! by wasm-bindgen-test (`make test-wasm32`, see mk/wasmtest.mk). Same cases, same checks as
//! `tests/corpus.rs` (classify) and `tests/flow_fake_host.rs` (flow fed in 1-byte, 7-byte and
//! whole pieces): the corpus is embedded with `include_str!`, so no filesystem is needed.
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
}
