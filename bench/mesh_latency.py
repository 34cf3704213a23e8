#!/usr/bin/env python3
"""What the mesh-wide mode costs (`make bench-mesh`): per-pod correlation vs the same policy with
`correlation.mesh`, where every tools/call waits for one gRPC `ShouldRateLimit` round trip to an
Envoy global rate limit service (tests/rls's warden-rls = limitador over Redis) on loopback.

Topology (as bench/run.py, whose helpers this reuses): each Envoy under test `--concurrency 1` on
core 0; the C upstream (bench/upstream.c), wrk (bench/post.lua), warden-rls and Redis on core 1.
Both Envoys come from envoy/bench-mesh.yaml; the per-pod one has `correlation.mesh` removed, so
the mesh check is the only difference. The payload is bench/payloads/modern-tools_call-1k.

Before measuring: waits until no valgrind runs (someone's callgrind would steal the cores), then
proves the check happens: a sample request through the mesh Envoy gets 200 and its
`mcp_warden_mesh_checks_total.outcome.ok` grows (the per-pod one's stays 0). During each mesh run
the `ok` count must grow by one per request, with no `failed` / `over_limit`. Redis is flushed
before every mesh run so the RLS limits (1e9 per hour) are never near.

Rounds alternate per-pod, mesh, per-pod, mesh... after a warm-up, per connection count. Reported:
rps, p50/p99 (wrk, us) and Envoy CPU us/request, medians over rounds, and mesh - per-pod.

  bench/mesh_latency.py [--rounds 3] [--seconds 8] [--warmup 2] [--conns 1,16]
Results: bench/out/<UTC stamp>-mesh/{runs.jsonl,summary.json,summary.txt,*.log}, bench/out/latest-mesh.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import run as ab  # bench/run.py, next to this script  # noqa: E402
from rls_service import RlsService  # noqa: E402
from wardenkit.harness import set_plugin_config  # noqa: E402

TEMPLATE = ROOT / "envoy" / "bench-mesh.yaml"
RLS_PORT_PLACEHOLDER = "port_value: 8282"
PAYLOAD = "modern"
# Far above anything one bench sends (Redis is also flushed before every mesh run).
LIMITS = [
    {"namespace": "mcp-warden", "max_value": 1000000000, "seconds": 3600, "name": "bits",
     "conditions": ["kind == 'entropy_bits'"], "variables": ["principal"]},
    {"namespace": "mcp-warden", "max_value": 1000000000, "seconds": 3600, "name": "calls",
     "conditions": ["kind == 'tool_calls'"], "variables": ["principal", "tool"]},
]
MESH_STAT = "wasmcustom.mcp_warden_mesh_checks_total.outcome."
VARIANTS = ["perpod", "mesh"]
log = ab.log


def wait_no_valgrind(max_wait: float = 1200, poll: float = 10) -> float:
    """Block while a valgrind process runs (polls every `poll` s, at most `max_wait`); seconds waited."""
    t0 = time.monotonic()
    polls = 0
    while subprocess.run(["pgrep", "-f", "valgrind"], capture_output=True).returncode == 0:
        waited = time.monotonic() - t0
        if waited >= max_wait:
            raise SystemExit(f"valgrind still running after {max_wait:.0f}s; not measuring")
        if polls % 6 == 0:
            log(f"waiting for valgrind to finish ({waited:.0f}s so far)")
        polls += 1
        time.sleep(poll)
    return time.monotonic() - t0


def plugin_config(text: str) -> dict:
    """The JSON under the first `value: |` (the mcp-warden plugin configuration)."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip() == "value: |")
    indent = len(lines[i]) - len(lines[i].lstrip())
    block = []
    for line in lines[i + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return json.loads("\n".join(block))


def templates(out: Path, rls_port: int) -> dict[str, Path]:
    """envoy/bench-mesh.yaml with the RLS port, as is (mesh) and without `correlation.mesh` (perpod)."""
    text = TEMPLATE.read_text()
    if RLS_PORT_PLACEHOLDER not in text:
        raise SystemExit(f"{TEMPLATE}: no `{RLS_PORT_PLACEHOLDER}` to rewrite")
    text = text.replace(RLS_PORT_PLACEHOLDER, f"port_value: {rls_port}")
    cfg = plugin_config(text)
    if "mesh" not in cfg.get("correlation", {}):
        raise SystemExit(f"{TEMPLATE}: the plugin configuration has no correlation.mesh")
    perpod = json.loads(json.dumps(cfg))
    del perpod["correlation"]["mesh"]
    paths = {}
    for name, c in (("mesh", cfg), ("perpod", perpod)):
        paths[name] = out / f"template-{name}.yaml"
        paths[name].write_text(set_plugin_config(text, c) + "\n")
    return paths


def mesh_stats(env: ab.Envoy) -> dict[str, int]:
    return {k: env.counter(MESH_STAT + k) for k in ("ok", "over_limit", "failed")}


def check(envoys: dict[str, ab.Envoy]) -> list[str]:
    """A sample request through each: 200, and only the mesh Envoy asks the RLS (ok grows)."""
    body = (BENCH / "payloads" / f"{ab.PAYLOADS[PAYLOAD]}.json").read_bytes()
    hdrs = ab.read_headers(BENCH / "payloads" / f"{ab.PAYLOADS[PAYLOAD]}.headers")
    lines = []
    for name, env in envoys.items():
        before = mesh_stats(env)
        st, _, rb = ab.post(env.port, body, hdrs)
        after = mesh_stats(env)
        grew = {k: after[k] - before[k] for k in after}
        lines.append(f"{name}: {PAYLOAD} tools/call -> {st}, mesh checks +{grew}")
        if st != 200:
            raise RuntimeError(f"{name}: sample request got {st}: {rb[:300]!r}")
        want = {"ok": 1, "over_limit": 0, "failed": 0} if name == "mesh" else {"ok": 0, "over_limit": 0, "failed": 0}
        if grew != want:
            raise RuntimeError(f"{name}: mesh checks grew by {grew}, expected {want} (stat {MESH_STAT}*)")
    return lines


def summarize(runs: list[dict], conns_list: list[int]) -> tuple[dict, str]:
    med = ab.med
    summary: dict = {}
    hdr = f"{'conns':>5} {'variant':8} {'rps':>7} {'p50 us':>7} {'p99 us':>7} {'cpu us/rq':>9} {'util':>5}"
    out = [hdr, "-" * len(hdr)]
    for c in conns_list:
        s = {}
        for v in VARIANTS:
            vr = [r for r in runs if r["conns"] == c and r["variant"] == v]
            s[v] = {k: med([r[src] for r in vr]) for k, src in (
                ("rps", "rps"), ("p50_us", "lat_p50_us"), ("p99_us", "lat_p99_us"),
                ("cpu_us_per_req", "cpu_us_per_req_sched"), ("envoy_util", "envoy_util"))}
            s[v]["runs"] = len(vr)
            s[v]["errors"] = sum(r["errors"] for r in vr)
            x = s[v]
            out.append(f"{c:>5} {v:8} {x['rps']:>7.0f} {x['p50_us']:>7.0f} {x['p99_us']:>7.0f} "
                       f"{x['cpu_us_per_req']:>9.1f} {x['envoy_util']:>5.2f}" + (f"  ERRORS={x['errors']}" if x["errors"] else ""))
        pairs = [(m, p) for m, p in zip([r for r in runs if r["conns"] == c and r["variant"] == "mesh"],
                                        [r for r in runs if r["conns"] == c and r["variant"] == "perpod"])]
        added = {k: s["mesh"][k] - s["perpod"][k] for k in ("p50_us", "p99_us", "cpu_us_per_req")}
        added["rps_ratio"] = s["mesh"]["rps"] / s["perpod"]["rps"]
        added["p50_us_per_round"] = [m["lat_p50_us"] - p["lat_p50_us"] for m, p in pairs]
        added["p99_us_per_round"] = [m["lat_p99_us"] - p["lat_p99_us"] for m, p in pairs]
        s["added"] = added
        out.append(f"{c:>5} {'added':8} {'x' + format(added['rps_ratio'], '.2f'):>7} {added['p50_us']:>+7.0f} "
                   f"{added['p99_us']:>+7.0f} {added['cpu_us_per_req']:>+9.1f}   "
                   f"(per round p50 {added['p50_us_per_round']}, p99 {added['p99_us_per_round']})")
        out.append("")
        summary[str(c)] = s
    return summary, "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--conns", default="1,16")
    ap.add_argument("--envoy-cpu", type=int, default=0)
    ap.add_argument("--aux-cpu", type=int, default=1, help="core for the upstream, wrk, warden-rls and Redis")
    ap.add_argument("--out", default=str(BENCH / "out"))
    args = ap.parse_args()
    conns_list = [int(c) for c in args.conns.split(",") if c]
    for path in (ab.WASM, ab.ENVOY):
        if not path.exists():
            raise SystemExit(f"{path} missing: make build deps")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops every process

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.out) / f"{stamp}-mesh"
    out.mkdir(parents=True)
    latest = Path(args.out) / "latest-mesh"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out.name)
    wasm = out / "mcp_warden.wasm"  # a rebuild by someone else mid-run cannot change what is measured
    shutil.copy2(ab.WASM, wasm)
    meta = {
        "utc": stamp, "argv": sys.argv, "rounds": args.rounds, "seconds": args.seconds, "warmup": args.warmup,
        "payload": ab.PAYLOADS[PAYLOAD], "wasm_sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(),
        "git_head": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "envoy_cpu": args.envoy_cpu, "aux_cpu": args.aux_cpu, "valgrind_wait_s": [],
    }
    log(f"bench-mesh: results in {out}; wasm {meta['wasm_sha256'][:12]}, git {meta['git_head']}")

    procs: list = []
    with RlsService(LIMITS, workdir=out / "rls") as rls:
        try:
            for p in (rls.rls, rls.redis):  # every thread of both onto the aux core
                subprocess.run(["taskset", "-a", "-p", "-c", str(args.aux_cpu), str(p.pid)], check=True, capture_output=True)
            upstream = ab.CUpstream(args.aux_cpu, out)
            procs.append(upstream)
            tmpl = templates(out, rls.rls_port)
            envoys = {}
            for v in VARIANTS:
                envoys[v] = ab.launch(v, tmpl[v], args.envoy_cpu, out, upstream.port, wasm=wasm)
                procs.append(envoys[v])
            checks = check(envoys)
            (out / "checks.txt").write_text("\n".join(checks) + "\n")
            for c in checks:
                log("check: " + c)

            meta["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
            runs: list[dict] = []
            with open(out / "runs.jsonl", "w") as rf:
                for c in conns_list:
                    meta["valgrind_wait_s"].append(round(wait_no_valgrind()))
                    for v in VARIANTS:  # warm-up: JIT, connection pools (the RLS one too)
                        ab.run_wrk(envoys[v].port, PAYLOAD, c, args.warmup, args.aux_cpu)
                    for rnd in range(args.rounds):
                        meta["valgrind_wait_s"].append(round(wait_no_valgrind()))
                        for v in VARIANTS:
                            if v == "mesh":
                                rls.redis_flush()
                            m0 = mesh_stats(envoys[v])
                            r = ab.measure(envoys[v], PAYLOAD, c, args.seconds, args.aux_cpu, args.envoy_cpu, upstream)
                            m1 = mesh_stats(envoys[v])
                            r.update(round=rnd, mesh_checks={k: m1[k] - m0[k] for k in m1})
                            runs.append(r)
                            rf.write(json.dumps(r) + "\n")
                            rf.flush()
                            log(f"  c={c:<3} round {rnd} {v:7} {r['rps']:7.0f} rps  p50 {r['lat_p50_us']:5d} us  p99 {r['lat_p99_us']:6d} us"
                                f"  cpu {r['cpu_us_per_req_sched']:6.1f} us/rq  util {r['envoy_util']:.2f}  mesh checks {r['mesh_checks']}"
                                + (f"  ERRORS {r['errors']} (non-2xx {r['non_2xx']})" if r["errors"] else ""))
                            mc = r["mesh_checks"]
                            if v == "mesh" and (mc["failed"] or mc["over_limit"] or mc["ok"] < r["envoy_requests"]):
                                raise RuntimeError(f"mesh run: {mc} for {r['envoy_requests']} requests: not one ok check per request")
                            if v == "perpod" and any(mc.values()):
                                raise RuntimeError(f"per-pod run made mesh checks: {mc}")
            meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        finally:
            for p in reversed(procs):
                p.stop()

    summary, table = summarize(runs, conns_list)
    header = (f"mcp-warden bench-mesh {stamp}  wasm {meta['wasm_sha256'][:12]}  git {meta['git_head']}\n"
              f"{PAYLOAD} 1 KB tools/call, {args.rounds} rounds x {args.seconds:g}s (+{args.warmup:g}s warm-up), per-pod/mesh alternating;\n"
              f"Envoy on core {args.envoy_cpu}; upstream, wrk, warden-rls, Redis on core {args.aux_cpu}; "
              f"loadavg {' '.join(meta['loadavg_start'])} -> {' '.join(meta['loadavg_end'])}\n"
              "medians over rounds; added = mesh - per-pod (rps column: mesh/per-pod); cpu = Envoy CPU per request\n")
    (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=2))
    (out / "summary.txt").write_text(header + "\n" + table + "\n")
    log("\n" + header + "\n" + table)
    if any(r["errors"] for r in runs):
        log("bench-mesh: some runs had errors or non-2xx responses; see runs.jsonl")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
