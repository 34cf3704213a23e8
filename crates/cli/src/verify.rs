//! `warden verify FILE [--key HEX|PUBFILE] [--mode single|chain] [--prev FILE] [--digests FILE] [--root HASH]`:
//! offline check of one receipt (`.json`) or a chain (`.jsonl`, bare receipts or flight-recorder
//! entries).
//!
//! Exit 0 when valid, 1 when not (the message names the first bad receipt and why), 2 on usage
//! errors. Without `--key` the embedded `signer_key` of the first receipt is trusted (with a
//! warning). `--prev FILE` also checks that this chain's chain-open receipt names FILE's tail.
//! `--digests FILE` (default: `<chain>.digests.jsonl` next to the chain, when it exists) checks
//! that the chain's signed checkpoints cover every digest entry the writer exported under
//! overload: each batch folds, in order, to its checkpoint's signed root from an anchor in the
//! chain (`mcp_warden_core::receipt::checkpoint`). A chain with checkpoints and no digest file
//! fails: the exchanges its checkpoints cover cannot be checked without it. Nothing signs where
//! a chain ends, so a file cut short verifies as the prefix it is: `--root HASH` (the root hash
//! an earlier run printed, or one published) pins the end. The writer's signed drop notices and
//! skipped non-receipt lines are reported.

use std::process::ExitCode;

use base64::Engine as _;
use mcp_warden_core::receipt::checkpoint::ChainCheckpoints;
use mcp_warden_core::receipt::sign::{parse_hex32, PUBLIC_KEY_HEADER};
use mcp_warden_core::receipt::verify::{verify_chain, verify_chain_visiting, verify_receipt, ChainSummary};

const USAGE: &str =
    "usage: warden verify FILE [--key HEX|PUBLIC_KEY_FILE] [--mode single|chain] [--prev FILE] [--digests FILE] [--root HASH]";

pub fn run(args: &[String]) -> ExitCode {
    let mut file = None;
    let mut key = None;
    let mut mode = None;
    let mut prev = None;
    let mut digests = None;
    let mut root = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--key" => key = it.next().cloned(),
            "--mode" => mode = it.next().cloned(),
            "--prev" => prev = it.next().cloned(),
            "--digests" => digests = it.next().cloned(),
            "--root" => root = it.next().cloned(),
            s if !s.starts_with("--") && file.is_none() => file = Some(s.to_string()),
            _ => return usage(),
        }
    }
    let Some(file) = file else { return usage() };
    let chain_mode = match mode.as_deref() {
        Some("chain") => true,
        Some("single") => false,
        None => file.ends_with(".jsonl"),
        Some(_) => return usage(),
    };
    let pinned = match key.as_deref().map(read_public_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("warden verify: --key: {e}");
            return ExitCode::from(2);
        }
    };
    if pinned.is_none() {
        eprintln!("warden verify: warning: no --key, trusting the embedded signer_key");
    }
    if digests.is_none() && chain_mode {
        let sibling = file.strip_suffix(".jsonl").map(|stem| format!("{stem}.digests.jsonl"));
        digests = sibling.filter(|f| std::path::Path::new(f).is_file());
    }
    match check(&file, chain_mode, pinned.as_ref(), prev.as_deref(), digests.as_deref(), root.as_deref()) {
        Ok(msg) => {
            println!("OK {file}: {msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            println!("FAIL {file}: {msg}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// 64 hex characters, or a Pipelock public key file.
fn read_public_key(arg: &str) -> Result<[u8; 32], String> {
    if let Ok(k) = parse_hex32(arg) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(arg).map_err(|_| "not 64 hex characters nor a readable key file".to_string())?;
    let body = text.trim().strip_prefix(PUBLIC_KEY_HEADER).ok_or("key file is not a Pipelock public key")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(body.trim()).map_err(|e| e.to_string())?;
    raw.try_into().map_err(|_| "public key is not 32 bytes".to_string())
}

fn check(
    file: &str,
    chain_mode: bool,
    pinned: Option<&[u8; 32]>,
    prev: Option<&str>,
    digests: Option<&str>,
    root: Option<&str>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    if !chain_mode {
        let r = verify_receipt(&text, pinned).map_err(|e| e.to_string())?;
        return Ok(format!("receipt {} (chain_seq {}) signed by {}, hash {}", r.action_id, r.chain_seq, r.signer_key, r.hash));
    }
    let mut checkpoints = ChainCheckpoints::default();
    let summary = verify_chain_visiting(&text, pinned, &mut |r| checkpoints.visit(r)).map_err(|e| e.to_string())?;
    if let Some(prev_file) = prev {
        check_predecessor(&summary, prev_file, pinned)?;
    }
    let mut msg = format!(
        "chain of {} receipts (chain_seq 0..={}) signed by {}, root hash {}",
        summary.count, summary.final_seq, summary.signer_key, summary.root_hash
    );
    if let Some(open) = &summary.chain_open {
        msg.push_str(&format!(", chain id {}", open.chain_id));
        if let Some(p) = &open.predecessor {
            msg.push_str(&format!(", continues {} after chain_seq {} (tail {})", p.chain_id, p.last_seq, p.tail_hash));
        }
    }
    match digests {
        Some(digest_file) => {
            let digest_text =
                std::fs::read_to_string(digest_file).map_err(|e| format!("--digests {digest_file}: {e}"))?;
            let cover = checkpoints.cover(&digest_text).map_err(|e| format!("{digest_file}: {e}"))?;
            msg.push_str(&format!(
                "; {} checkpoints cover the {} digested exchanges of {digest_file}",
                cover.checkpoints, cover.exchanges
            ));
        }
        None if checkpoints.count() > 0 => {
            return Err(format!(
                "{} checkpoints cover digested exchanges, but there is no digest file (<chain>.digests.jsonl, or --digests FILE): they cannot be checked",
                checkpoints.count()
            ))
        }
        None => {}
    }
    if summary.drop_notices > 0 {
        msg.push_str(&format!(
            "; {} exchanges dropped, not receipted (the writer's {} signed drop notices)",
            summary.dropped, summary.drop_notices
        ));
    }
    if summary.skipped > 0 {
        msg.push_str(&format!("; {} lines that are no receipts skipped", summary.skipped));
    }
    // Nothing signs where a chain ends: a file cut short is a valid prefix of its chain.
    match root {
        Some(want) if !want.eq_ignore_ascii_case(&summary.root_hash) => {
            return Err(format!(
                "the chain ends at chain_seq {} with hash {}, not at the pinned root {want}: it was truncated or extended",
                summary.final_seq, summary.root_hash
            ))
        }
        Some(_) => msg.push_str("; ends at the pinned root"),
        None => msg.push_str("; its end is not signed: a valid prefix (pin the end with --root HASH)"),
    }
    Ok(msg)
}

fn check_predecessor(summary: &ChainSummary, prev_file: &str, pinned: Option<&[u8; 32]>) -> Result<(), String> {
    let text = std::fs::read_to_string(prev_file).map_err(|e| format!("--prev {prev_file}: {e}"))?;
    let prior = verify_chain(&text, pinned).map_err(|e| format!("--prev {prev_file}: {e}"))?;
    let named = summary
        .chain_open
        .as_ref()
        .and_then(|o| o.predecessor.as_ref())
        .ok_or("the first receipt does not name a predecessor chain")?;
    if named.tail_hash != prior.root_hash || named.last_seq != prior.final_seq {
        return Err(format!(
            "chain-open names predecessor tail {} at chain_seq {}, but {prev_file} ends at chain_seq {} with hash {}: the predecessor was truncated or extended",
            named.tail_hash, named.last_seq, prior.final_seq, prior.root_hash
        ));
    }
    Ok(())
}
