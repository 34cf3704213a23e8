//! `warden control --dir DIR [--listen ADDR] [--check]`: the control endpoint the filter polls.
//!
//! Serves the policy, kill switch and tool pins found in DIR (a mounted ConfigMap: `policy.json`,
//! `kill.json`, `pins.json`), compiled with the filter's own code (`mcp_warden_core::control`). A file that does not
//! compile is refused: the last good version stays served and the error shows at `/status`.
//! The directory is re-read on every request, so an edited ConfigMap is live at the next poll.
//! `--check` compiles the directory once and exits non-zero, naming the field, if anything is
//! refused (for CI and admission hooks).
//!
//! HTTP/1.1 on std's `TcpListener`, one thread per connection, keep-alive, GET/HEAD only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_warden_core::control::{ControlServer, DirFiles, Response, KILL_FILE, PINS_FILE, POLICY_FILE};

const USAGE: &str = "usage: warden control --dir DIR [--listen ADDR] [--check]\n\
  --dir DIR      directory holding policy.json and/or kill.json (a mounted ConfigMap)\n\
  --listen ADDR  address to serve on (default 127.0.0.1:8181; port 0 picks one)\n\
  --check        compile the directory once, print the result, exit 1 if anything is refused";

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once (one thread each); more are closed at once. Pollers are a few
/// per Envoy worker, so this is generous.
const MAX_CONNECTIONS: usize = 256;

pub fn run(args: &[String]) -> ExitCode {
    let mut dir: Option<PathBuf> = None;
    let mut listen = "127.0.0.1:8181".to_owned();
    let mut check = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = it.next().map(PathBuf::from),
            "--listen" => match it.next() {
                Some(v) => listen = v.clone(),
                None => return usage(),
            },
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let Some(dir) = dir else { return usage() };

    let mut server = ControlServer::new();
    match read_dir(&dir) {
        Ok(files) => {
            server.refresh(&files, now_ms());
        }
        Err(e) => {
            eprintln!("warden control: cannot read {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    }
    report(&server);
    if check {
        println!("{}", server.status_json());
        return if server.healthy() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    }

    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("warden control: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(listen);
    println!("warden control: serving {} on http://{addr}", dir.display());
    let _ = std::io::stdout().flush();

    let shared = Arc::new(Mutex::new(server));
    let live = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = write_response(&mut stream, &plain(503, "too many connections"), true);
            continue;
        }
        live.fetch_add(1, Ordering::SeqCst);
        let (shared, live, dir) = (Arc::clone(&shared), Arc::clone(&live), dir.clone());
        std::thread::spawn(move || {
            serve_connection(stream, &shared, &dir);
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

// A native tool: the wall clock only stamps /status.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn read_opt(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_dir(dir: &Path) -> std::io::Result<DirFiles> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"));
    }
    Ok(DirFiles {
        policy: read_opt(&dir.join(POLICY_FILE))?,
        kill: read_opt(&dir.join(KILL_FILE))?,
        pins: read_opt(&dir.join(PINS_FILE))?,
    })
}

fn report(server: &ControlServer) {
    for (name, st) in [(POLICY_FILE, &server.policy_status), (KILL_FILE, &server.kill_status), (PINS_FILE, &server.pins_status)] {
        match &st.error {
            Some(e) => eprintln!("warden control: refusing {name} (still serving the last good version): {e}"),
            None if st.present => eprintln!("warden control: serving {name}"),
            None => {}
        }
    }
}

/// Re-reads the directory (keeping the current state if it cannot be read) and answers.
fn answer(shared: &Mutex<ControlServer>, dir: &Path, method: &str, path: &str, inm: Option<&str>) -> Response {
    let mut server = match shared.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    match read_dir(dir) {
        Ok(files) => {
            let before = (server.policy_status.clone(), server.kill_status.clone(), server.pins_status.clone());
            server.refresh(&files, now_ms());
            if before != (server.policy_status.clone(), server.kill_status.clone(), server.pins_status.clone()) {
                report(&server);
            }
        }
        Err(e) => eprintln!("warden control: cannot read {} (serving the last good state): {e}", dir.display()),
    }
    server.handle(method, path, inm)
}

fn serve_connection(stream: TcpStream, shared: &Mutex<ControlServer>, dir: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(write_half) = stream.try_clone() else { return };
    let mut out = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let mut head: Vec<String> = Vec::new();
        let mut size = 0usize;
        loop {
            let mut line = String::new();
            match reader.by_ref().take(MAX_HEAD as u64).read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(n) => size += n,
            }
            if size > MAX_HEAD {
                let _ = write_response(&mut out, &plain(431, "request head too large"), true);
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                if head.is_empty() {
                    continue; // stray CRLF between requests
                }
                break;
            }
            head.push(line);
        }
        let mut parts = head.first().map(|l| l.split(' ')).into_iter().flatten();
        let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut inm: Option<String> = None;
        let mut close = false;
        let mut content_length = 0usize;
        for h in head.iter().skip(1) {
            let Some((name, value)) = h.split_once(':') else { continue };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "if-none-match" => inm = Some(value.to_owned()),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "content-length" => content_length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        if content_length > 0 {
            // Requests we serve carry no body; read and drop a small one, refuse a large one.
            if content_length > MAX_HEAD {
                let _ = write_response(&mut out, &plain(413, "request body not accepted"), true);
                return;
            }
            let mut sink = vec![0u8; content_length];
            if reader.read_exact(&mut sink).is_err() {
                return;
            }
        }
        let path = target.split('?').next().unwrap_or("");
        let resp = answer(shared, dir, &method, path, inm.as_deref());
        if write_response(&mut out, &resp, close).is_err() || close {
            return;
        }
    }
}

fn plain(status: u16, msg: &str) -> Response {
    Response { status, headers: vec![("content-type", "text/plain".to_owned())], body: msg.as_bytes().to_vec() }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn write_response(out: &mut TcpStream, r: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if r.status != 304 {
        head.push_str(&format!("content-length: {}\r\n", r.body.len()));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&r.body)?;
    out.flush()
}
