//! `warden`: the host-side tools shipped with the filter (not part of the .wasm).
//!
//! Subcommands are added by their owning modules; each lives in its own file next to this one.

use std::process::ExitCode;

mod control;

fn usage() -> ExitCode {
    eprintln!("usage: warden <command> [args]\n\ncommands:\n  (none yet)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("control") => control::run(args.get(1..).unwrap_or_default()),
        _ => usage(),
    }
}
