//! The fixture corpus on a 32-bit target: this file compiles to wasm32-unknown-unknown and runs
//! under Node with wasm-bindgen-test (`make test-wasm32`, see mk/wasmtest.mk). Same cases, same
//! checks as `tests/corpus.rs` (classify) and `tests/flow_fake_host.rs` (flow fed in pieces): the
//! corpus is embedded with `include_str!`, so no filesystem is needed.
//!
//! Natively this file is empty (the native runs are the other two files).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "corpus/support.rs"]
mod support;

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
