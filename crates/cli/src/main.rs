//! `warden`: the host-side tools shipped with the filter (not part of the .wasm).
//!
//! Each subcommand lives in its own file next to this one; dispatch is one match arm each.

//!
//! A host tool only: built for wasm32 (the filter's target, when the whole workspace is built for
//! it) this is a stub that says so, and none of the server stack is compiled.

use std::process::ExitCode;

#[cfg(not(target_arch = "wasm32"))]
mod classify;
#[cfg(not(target_arch = "wasm32"))]
mod control;
#[cfg(not(target_arch = "wasm32"))]
mod keygen;
#[cfg(not(target_arch = "wasm32"))]
mod pin;
#[cfg(not(target_arch = "wasm32"))]
mod scan;
#[cfg(not(target_arch = "wasm32"))]
mod sink;
#[cfg(not(target_arch = "wasm32"))]
mod verify;

#[cfg(not(target_arch = "wasm32"))]
fn usage() -> ExitCode {
    eprintln!(
        "usage: warden <command> [args]\n\ncommands:\n  classify the filter's view of raw requests (JSONL in, JSONL out; the differential harness)\n  control  serve policy and kill switch from a directory to the filter (the control endpoint)\n  keygen   make or show the receipt-signing key\n  pin      fetch a live server's tools and print the approved manifest (tool_integrity.pins)\n  scan     the content scanner over samples (files, or JSONL in / JSONL out): corpora, false-positive reports\n  verify   check a signed receipt (.json) or chain (.jsonl) offline\n  sink     gRPC server (OTLP logs Export) filing receipts as one JSONL file per chain"
    );
    ExitCode::from(2)
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("classify") => classify::run(rest),
        Some("control") => control::run(rest),
        Some("keygen") => keygen::run(rest),
        Some("pin") => pin::run(rest),
        Some("verify") => verify::run(rest),
        Some("scan") => scan::run(rest),
        Some("sink") => sink::run(rest),
        _ => usage(),
    }
}

#[cfg(target_arch = "wasm32")]
fn main() -> ExitCode {
    eprintln!("warden is a host tool: build it for the host (cargo build --release -p warden-cli)");
    ExitCode::from(2)
}
