//! The fixture corpus through `RequestFlow` on a fake `HttpIo` host: headers in a list, a body
//! buffer fed in 1-byte, 7-byte and whole pieces (and each chunked case's own chunk sizes), the
//! local reply captured. Checks the routing headers the upstream would see, that the body reaches
//! it unaltered, and every local reply's status, content type and JSON-RPC body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "corpus/support.rs"]
mod support;

use support::{check_flow, load, run_all, run_flow, Outcome, Pieces};

#[test]
fn every_case_through_the_flow_in_pieces() {
    let cases = load();
    let ran = run_all("flow (fake host)", &cases, check_flow);
    eprintln!("flow: {ran} cases, each under 1-byte, 7-byte and whole-body feeding");
}

/// A declared Content-Length over the cap is decided at the headers; the filter then buffers at
/// most the first 4 KiB (to read the id for the reply), never the body. Without a length the cap
/// trips on the first byte over it.
#[test]
fn body_cap_declared_reads_only_a_prefix_and_chunked_stops_at_the_first_byte_over() {
    let cases = load();
    let declared = cases.iter().find(|c| c.name == "oversize-default-cap-declared").unwrap();
    let (out, host, _) = run_flow(declared, Pieces::Every(1)).unwrap();
    assert!(matches!(out, Outcome::Reply { status: 413, .. }));
    assert_eq!(host.http.body.len(), 4096, "a declared-oversize body is read only as far as the id prefix");

    let chunked = cases.iter().find(|c| c.name == "oversize-chunked-no-length").unwrap();
    let (out, host, _) = run_flow(chunked, Pieces::Every(1)).unwrap();
    assert!(matches!(out, Outcome::Reply { status: 413, .. }));
    assert_eq!(host.http.body.len(), 513, "answered on the first byte over the 512-byte cap, not later");
}

/// A rejected request leaves the client's headers as they were (nothing half-edited goes anywhere).
#[test]
fn rejects_do_not_edit_headers() {
    for c in load().iter().filter(|c| matches!(c.expect, support::Expect::Reject { .. })) {
        let (_, host, _) = run_flow(c, Pieces::Whole).unwrap();
        for h in ["mcp-method", "mcp-name"] {
            assert_eq!(host.http.header(h), c.header(h), "{}: {h} edited on a rejected request", c.name);
        }
    }
}
