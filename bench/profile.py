#!/usr/bin/env python3
"""`make bench-profile`: where the filter's time goes.

1. Real Envoy, 16 connections, modern (and legacy) 1 KB tools/call: bare, each mode of
   bench/profile-filter (noop .. set2, see its lib.rs) and the real warden, alternated in rounds
   (bench/run.py --profile). Envoy CPU us/request per step gives the cost ladder.
2. Native wall time of mcp_warden::mcp::classify::classify_body on the same bodies.
3. callgrind instruction counts per classify_body call ((Ir at N calls - Ir at 0 calls) / N)
   and the top self-cost functions.

Writes bench/out/<stamp>/profile.txt (and everything run.py writes).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
NATIVE = ROOT / "target" / "bench" / "release" / "classify-bench"
PY = sys.executable


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)


def callgrind(payload: str, n: int, out: Path) -> int:
    f = out / f"callgrind-{payload}-{n}.out"
    p = sh(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}", str(NATIVE), "bench/payloads", "count", str(n), payload])
    m = re.search(r"refs:\s+([\d,]+)", p.stderr)
    if not m:
        raise RuntimeError(p.stderr[-2000:])
    return int(m.group(1).replace(",", ""))


def top_self(payload: str, n: int, out: Path, k: int = 12) -> list[str]:
    p = sh(["callgrind_annotate", str(out / f"callgrind-{payload}-{n}.out")])
    rows = []
    for line in p.stdout.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            ir = int(m.group(1).replace(",", ""))
            name = re.sub(r"\[.*\]$", "", m.group(3)).strip()
            name = re.sub(r"^.*?/(serde_json-[\d.]+|library|src|malloc|string)/", r"\1/", name)
            rows.append(f"{ir / n:8.0f} instr/call  {m.group(2):>5}%  {name[:150]}")
        if len(rows) >= k:
            break
    return rows


def main() -> int:
    duration = os.environ.get("BENCH_PROFILE_DURATION", "5")
    reps = os.environ.get("BENCH_PROFILE_REPS", "3")
    payloads = os.environ.get("BENCH_PROFILE_PAYLOADS", "modern")
    conns = os.environ.get("BENCH_CONNS", "16")
    r = subprocess.run([PY, str(BENCH / "run.py"), "--profile", "--duration", duration, "--reps", reps,
                        "--conns", conns, "--payloads", payloads], cwd=ROOT)
    out = (BENCH / "out" / "latest").resolve()
    lines = []

    # 1. The cost ladder from the Envoy runs.
    summary = json.loads((out / "summary.json").read_text())["summary"]
    steps = [
        ("noop", "bare", "VM dispatch: a wasm filter that does nothing (all callbacks)"),
        ("hdr7", "noop", "7 x proxy_get_header_map_value (what the request path reads)"),
        ("pairs", "noop", "instead: 1 x proxy_get_header_map_pairs (all headers at once)"),
        ("buffer", "noop", "pause on headers + buffer the body + resume (no reads)"),
        ("read", "buffer", "1 x proxy_get_buffer_bytes of the 1 KB body"),
        ("classify", "read", "classify_body in V8 + the 7 header reads (classify - read)"),
        ("set2", "classify", "2 x proxy_replace_header_map_value (legacy header edits)"),
        ("warden", "bare", "the real mcp-warden filter"),
    ]
    for p, by_conns in summary.items():
        for c, s in by_conns.items():
            cpu = {v: d["cpu_us_per_req_median"] for v, d in s.items()}
            lines.append(f"== Envoy CPU per request, {p} 1 KB tools/call, {c} connections (median of rounds) ==")
            for v, d in s.items():
                lo, hi = d["cpu_us_per_req_range"]
                lines.append(f"  {v:11} {d['cpu_us_per_req_median']:7.2f} us/rq  ({lo:.2f}..{hi:.2f})  "
                             f"rps ratio {d['ratio_median']:.3f}  cpu-bound ratio {cpu['bare'] / d['cpu_us_per_req_median']:.3f}")
            lines.append("  steps:")
            for v, base, what in steps:
                if v in cpu and base in cpu:
                    lines.append(f"    {v:9} - {base:9} {cpu[v] - cpu[base]:+7.2f} us   {what}")
            if "hdr70" in cpu and "hdr7" in cpu:
                lines.append(f"    per header read ((hdr70 - hdr7) / 63): {(cpu['hdr70'] - cpu['hdr7']) / 63 * 1000:.0f} ns")
            for v, n, what in (("time20", 20, "proxy_get_current_time_nanoseconds"), ("prop5", 5, "proxy_get_property"),
                               ("metric10", 10, "proxy_increment_metric"), ("hist4", 4, "proxy_record_metric"),
                               ("shared4", 4, "shared data get/set")):
                if v in cpu and "noop" in cpu:
                    lines.append(f"    per {what} call (({v} - noop) / {n}): {(cpu[v] - cpu['noop']) / n * 1000:.0f} ns")
            if "classify11" in cpu and "classify" in cpu:
                lines.append(f"    per classify_body call in V8 ((classify11 - classify) / 10): {(cpu['classify11'] - cpu['classify']) / 10:.2f} us")
            lines.append("")

    # 2. Native wall time.
    if NATIVE.exists():
        t = sh(["taskset", "-c", "1", str(NATIVE), "bench/payloads", "time"])
        lines.append("== native classify_body wall time (x86_64, core 1, 7 batches x 20k calls) ==")
        lines += ["  " + l for l in t.stdout.splitlines()]
        lines.append("")
        # 3. callgrind.
        if shutil.which("valgrind"):
            n = 2000
            for p in ("modern", "legacy"):
                per = (callgrind(p, n, out) - callgrind(p, 0, out)) / n
                lines.append(f"== callgrind: classify_body on {p} 1 KB = {per:.0f} instructions/call; top self cost ==")
                lines += ["  " + l for l in top_self(p, n, out)]
                lines.append("")
    text = "\n".join(lines)
    (out / "profile.txt").write_text(text + "\n")
    print("\n" + text)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
