//! `warden keygen`: make and inspect the Ed25519 receipt-signing key.
//!
//! - `warden keygen --out FILE [--force]`: 32 random bytes from the OS (`/dev/urandom`) become the
//!   seed. FILE (mode 0600) gets Pipelock's private key format
//!   (`pipelock-ed25519-private-v1\n<base64(seed ‖ public)>\n`), FILE.pub the public one; the
//!   public key is printed as 64 lowercase hex (what `--key` of both verifiers takes).
//! - `warden keygen --public [--key FILE]`: the public key hex of FILE, or of `$WARDEN_SIGNING_KEY`.
//! - `warden keygen --env [--key FILE]`: prints `WARDEN_SIGNING_KEY=<64 hex seed>` for Envoy's
//!   `vm_config.environment_variables` (a secret: redirect it, do not log it).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use mcp_warden_core::receipt::sign::{parse_seed, private_key_file, public_key_file, Ed25519Signer, Signer, SIGNING_KEY_ENV};

const USAGE: &str = "usage: warden keygen --out FILE [--force]\n       warden keygen --public [--key FILE]\n       warden keygen --env [--key FILE]";

/// Reads the signing seed from a key file (Pipelock private format or 64 hex), or from
/// `$WARDEN_SIGNING_KEY` when no file is given.
pub fn load_seed(key_file: Option<&str>) -> Result<[u8; 32], String> {
    let (text, source) = match key_file {
        Some(path) => (std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?, path.to_string()),
        None => (
            std::env::var(SIGNING_KEY_ENV).map_err(|_| format!("no key file given and ${SIGNING_KEY_ENV} is not set"))?,
            format!("${SIGNING_KEY_ENV}"),
        ),
    };
    parse_seed(&text).map_err(|e| format!("{source}: {e}"))
}

pub fn run(args: &[String]) -> ExitCode {
    let mut out = None;
    let mut key = None;
    let mut force = false;
    let mut mode = "";
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => out = it.next().cloned(),
            "--key" => key = it.next().cloned(),
            "--force" => force = true,
            "--public" => mode = "public",
            "--env" => mode = "env",
            _ => return usage(),
        }
    }
    let result = match (mode, out) {
        ("", Some(path)) => generate(&path, force),
        ("public", None) => load_seed(key.as_deref()).map(|s| hex::encode(Ed25519Signer::from_seed(s).public_key())),
        ("env", None) => load_seed(key.as_deref()).map(|s| format!("{SIGNING_KEY_ENV}={}", hex::encode(s))),
        _ => return usage(),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("warden keygen: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn generate(path: &str, force: bool) -> Result<String, String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("reading OS randomness: {e}"))?;
    let public = Ed25519Signer::from_seed(seed).public_key();
    write_file(path, private_key_file(&seed).as_bytes(), 0o600, force)?;
    write_file(&format!("{path}.pub"), public_key_file(&public).as_bytes(), 0o644, force)?;
    Ok(hex::encode(public))
}

fn write_file(path: &str, contents: &[u8], mode: u32, force: bool) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| format!("{path}: {e} (use --force to overwrite)"))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| format!("{path}: {e}"))
}
