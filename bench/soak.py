#!/usr/bin/env python3
"""Soak (`make soak`, not part of `make test`): minutes of varied load through one real Envoy
`--concurrency 2` running the README's example policy and the receipt writer to a real
`warden sink`, with many principals, tools and tasks (bench/soak.lua), so every shared-data table
the filter keeps (rate-limit buckets, correlation records, tool baselines, task bindings) fills
to its bound while the run goes on.

Passes when, measured by the script (each is printed with its numbers):
- memory is flat after warm-up: Envoy's `server.memory_allocated` and every VM's heap gauge grow
  by at most max(5 %, 4 MiB) from the end of warm-up (the first 40 % of the run) to the end;
- zero receipts lost: once the writer has caught up, the receipts at the sink are at least the
  requests Envoy completed and none was dropped;
- no error but the policy's own answers: no 5xx from Envoy or the upstream, no host or store
  errors counted by the filter, no wrk socket errors.

Config: envoy/bench-full.yaml with the README's rate limit and entropy budget (the load is spread
over SOAK_PRINCIPALS principals, named by the trusted `x-user` header, so none reaches them) and
upstream bench/upstream.c. Knobs (environment): SOAK_SECONDS (180), SOAK_CONNS (16),
SOAK_PRINCIPALS (20000), SOAK_TOOLS (5000), SOAK_TASKS (5000).

Results: bench/out/soak-<UTC>/{soak.json,memory.jsonl,summary.txt,*.log}; summary printed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import run  # bench/run.py, next to this script

from wardenkit import harness

ROOT = run.ROOT
SECONDS = int(os.environ.get("SOAK_SECONDS", "180"))
CONNS = int(os.environ.get("SOAK_CONNS", "16"))
WARMUP_SHARE = 0.4
# The README policy's values, instead of bench-full.yaml's raised ones, and the header source.
SOAK_POLICY = {
    '"principal": { "sources": ["jwt", "istio", "spiffe"] },':
        '"principal": { "sources": ["header"], "trusted_header": "x-user" },',
    '"rate": 1000000, "period_secs": 1, "burst": 1000000,': '"rate": 20, "period_secs": 1, "burst": 40,',
    '"budget_bits": 4294967295, "window_secs": 10,': '"budget_bits": 262144, "window_secs": 600,',
}


def memory(admin: int) -> dict[str, int]:
    s = harness.envoy_stats(admin, r"server\.memory_|mcp_warden_vm_heap_bytes")
    return {k: v for k, v in s.items()}


def main() -> int:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = run.BENCH / "out" / f"soak-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    template = out / "soak.yaml"
    text = (ROOT / "envoy" / "bench-full.yaml").read_text()
    for old, new in SOAK_POLICY.items():
        if old not in text:
            raise SystemExit(f"envoy/bench-full.yaml no longer has {old!r}")
        text = text.replace(old, new)
    template.write_text(text)
    procs: list[harness.Proc] = []
    try:
        upstream = run.CUpstream(1, out)
        procs.append(upstream)
        sink = run.Sink(1, out)
        procs.append(sink)
        envoy = run.launch("envoy", template, "0-1", out, upstream.port, wasm=run.WASM, sink_port=sink.port,
                           concurrency=2)
        procs.append(envoy)
        samples: list[dict] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            with open(out / "memory.jsonl", "w") as f:
                while not stop.is_set():
                    m = {"t": round(time.monotonic() - t0, 1), **memory(envoy.admin)}
                    samples.append(m)
                    f.write(json.dumps(m) + "\n")
                    f.flush()
                    stop.wait(5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        env = dict(os.environ)
        cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNS}", f"-d{SECONDS}s", "--timeout=5s", "-s",
               str(run.BENCH / "soak.lua"), f"http://127.0.0.1:{envoy.port}/mcp"]
        run.log(f"soak: {SECONDS} s, {CONNS} connections, results in {out}")
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
        stop.set()
        sampler.join()
        (out / "wrk.txt").write_text(p.stdout + p.stderr)
        wrk = next((json.loads(l[len("BENCH_JSON "):]) for l in p.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
        if wrk is None:
            raise SystemExit(f"wrk failed: {p.stdout[-500:]} {p.stderr[-500:]}")
        receipts = run.receipts_caught_up(envoy, sink)
        stats = harness.envoy_stats(envoy.admin, r"downstream_rq_[245]xx|upstream_rq_5xx|mcp_warden_(host|store)_errors|"
                                                 r"mcp_warden_(denials|rate_limited|requests)_total")
        checks = verdicts(samples, receipts, stats, wrk)
        summary = {"seconds": SECONDS, "conns": CONNS, "wrk": wrk, "receipts": receipts, "stats": stats,
                   "memory_first": samples[0] if samples else {}, "memory_last": samples[-1] if samples else {},
                   "checks": checks}
        (out / "soak.json").write_text(json.dumps(summary, indent=2))
        lines = [f"mcp-warden soak {stamp}: {SECONDS} s, {CONNS} conns, Envoy --concurrency 2, "
                 f"{wrk['requests']} requests ({wrk['requests'] / max(1, SECONDS):.0f}/s), p99 {wrk['lat_p99']} us"]
        lines += [f"  {'ok  ' if ok else 'FAIL'} {what}" for what, ok in checks]
        text = "\n".join(lines)
        (out / "summary.txt").write_text(text + "\n")
        shutil.rmtree(sink.dir, ignore_errors=True)  # ~1 KB a request; counted above
        run.log(text)
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        for p in reversed(procs):
            p.stop()


def verdicts(samples: list[dict], receipts: dict, stats: dict, wrk: dict) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    after = [s for s in samples if s["t"] >= SECONDS * WARMUP_SHARE]
    if len(after) >= 2:
        for key in sorted(k for k in after[0] if k != "t" and (k.endswith("memory_allocated") or "vm_heap_bytes" in k)):
            start, end = after[0].get(key, 0), max(s.get(key, 0) for s in after)
            allowed = max(start * 0.05, 4 << 20)
            checks.append((f"{key}: {start / 2**20:.1f} MiB after warm-up -> at most {end / 2**20:.1f} MiB "
                           f"(+{(end - start) / 2**20:.2f}, allowed +{allowed / 2**20:.1f})", end - start <= allowed))
    else:
        checks.append(("memory samples after warm-up", False))
    lost = receipts["completed"] - receipts["at_sink"]
    checks.append((f"receipts: {receipts['completed']} requests, {receipts['at_sink']} receipts at the sink, "
                   f"{receipts['dropped']} dropped, caught up in {receipts['catch_up_s']} s",
                   lost <= 0 and receipts["dropped"] == 0 and receipts["caught_up"]))
    fives = sum(v for k, v in stats.items() if "5xx" in k)
    errors = sum(v for k, v in stats.items() if "host_errors" in k or "store_errors" in k)
    sock = wrk["err_connect"] + wrk["err_read"] + wrk["err_write"] + wrk["err_timeout"]
    answers = {k.rsplit(".", 1)[-1]: v for k, v in stats.items() if "downstream_rq_" in k and "http.bench." in k}
    checks.append((f"no 5xx ({fives}), no host/store errors ({errors}), no socket errors ({sock}); answers {answers}",
                   fives == 0 and errors == 0 and sock == 0))
    return checks


if __name__ == "__main__":
    sys.exit(main())
