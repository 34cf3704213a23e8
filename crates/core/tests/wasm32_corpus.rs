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

    /// The memory across requests on 32 bits: bits, records and a secret sent in 8-byte pieces
    /// found when they line up (as `tests/flow_correlation.rs` runs it natively, through the flow).
    #[wasm_bindgen_test]
    fn correlation_on_wasm32() {
        use mcp_warden_core::correlate::{account, key_of, measure, Call, Trip};
        use mcp_warden_core::fake_host::FakeKv;
        use mcp_warden_core::policy::scan::{Direction, Subject};
        let policy = mcp_warden_core::policy::load(b"{}").unwrap();
        let mut kv = FakeKv::new();
        let pat = "ghp_R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0";
        let subject = Subject { tool: "notes", principal: "p", upstream: "u", direction: Direction::Request };
        let key = key_of("0123456789abcdef0123456789abcdef");
        let mut last = None;
        for (i, at) in (0..pat.len()).step_by(8).enumerate() {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"notes","arguments":{{"t":"{}"}}}}}}"#,
                &pat[at..(at + 8).min(pat.len())]
            );
            let sends = measure(&policy.correlation, body.as_bytes()).unwrap();
            assert!(sends.bits <= 24, "8 bytes carry at most 24 bits");
            let call = Call {
                key: &key,
                task: None,
                tool: Some("notes"),
                annotated: 0,
                sends: Some(&sends),
                points: 0,
                acts: true,
                refused: false,
                now_ms: 1_000_000 + i as u64,
            };
            last = account(&policy.correlation, &policy.scan, &subject, &mut kv, &call).trip;
        }
        assert!(matches!(last, Some(Trip::Fragment { what: "github_classic_pat", .. })), "{last:?}");
    }

    /// `confirm` on 32 bits: a sealed state opens with its key only, and the byte-level edit that
    /// removes the gateway's members finds them where they sit (pointer offsets on wasm32).
    #[wasm_bindgen_test]
    fn confirm_on_wasm32() {
        use mcp_warden_core::confirm::edit;
        use mcp_warden_core::confirm::seal::{Binding, ConfirmKey, Kind, State};
        let key = ConfirmKey::new([42; 32]);
        let st = State {
            kind: Kind::Ask,
            expires_ms: u64::MAX - 1,
            nonce: [3; 16],
            binding: Binding::new(("p", "c"), ("u", "tools/call", "deploy"), b"{}", "r"),
        };
        let token = st.seal(&key);
        assert_eq!(State::open(&token, &key), Ok(st));
        assert!(State::open(&token, &ConfirmKey::new([1; 32])).is_err());
        let body = br#"{"id":1,"params":{"name":"deploy","requestState":"x","arguments":{}}}"#;
        let top = edit::members(body, edit::whole(body)).unwrap();
        let params = edit::find(&top, "params").unwrap().value;
        let ms = edit::members(body, params).unwrap();
        let out = edit::apply(body, vec![edit::remove(body, params, &ms, 1).unwrap()]);
        assert_eq!(out, br#"{"id":1,"params":{"name":"deploy","arguments":{}}}"#.to_vec());
    }
}
