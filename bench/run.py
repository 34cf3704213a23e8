#!/usr/bin/env python3
"""A/B benchmark of mcp-warden against bare Envoy (`make bench`, `make bench-profile`).

Variants (columns), each its own Envoy --concurrency 1, measured in the same rounds:
  bare        envoy/bench-bare.yaml: no filter
  native-mcp  envoy/bench-native-mcp.yaml: Envoy's own C++ MCP filter + an RBAC rule on the tool
              name (the alternative a platform team would pick)
  warden      envoy/bench-warden.yaml: mcp-warden, wire validation only
  full        envoy/bench-full.yaml: mcp-warden with the README's example policy and the receipt
              writer signing every decision to a real `warden sink` (what users run)

Topology (2+ cores):
  core 0   the Envoy under test
  core 1   fixed-response upstream (bench/upstream.c), the load generator (wrk, 1 thread,
           bench/post.lua) and the receipt sink
All Envoys stay up for the whole run on free ports; runs alternate A/B/A/B so drift and
neighbours' load hit both sides. Per run it records wrk throughput and latency, the Envoy under
test's CPU time (utime+stime from /proc/<pid>/stat, and the per-thread schedstat sum in ns), its
completed-request counter, and core 0/1 busy time from /proc/stat (to see interference).

Before measuring it proves the filter is live: through the warden config a modern request with a
wrong Mcp-Name gets 400/-32020 (bare: 200), and for a legacy request the upstream echoes the
Mcp-Method/Mcp-Name the filter derived (bare: none).

For `full`, the receipts at the sink are counted against the requests Envoy completed once the
writer has caught up (zero loss means equal); the sink's files are deleted afterwards (they grow
by ~1 KB a request). Per variant, the time from start to ready (VM start included) and the
.wasm size are in meta.json and the summary.

Results: bench/out/<UTC timestamp>/{runs.jsonl,summary.json,summary.txt,*.log}, bench/out/latest.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
from wardenkit import harness
from wardenkit.render import render  # the repo's port/wasm substitution convention

ENVOY = ROOT / ".venv" / "bin" / "envoy"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "mcp_warden.wasm"
PROFILE_WASM = ROOT / "target" / "bench" / "wasm32-wasip1" / "release" / "warden_profile_filter.wasm"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# BENCH_NICE=-10 runs the bench processes at a higher CFS weight so neighbours' builds disturb
# them less (default 0: same priority as everyone else).
NICE = ["nice", "-n", os.environ["BENCH_NICE"]] if os.environ.get("BENCH_NICE", "0") != "0" else []

PAYLOADS = {
    "modern": "modern-tools_call-1k",
    "legacy": "legacy-tools_call-1k",
    # The same modern call answered with a 10 KB clean result (the content scan's answer side).
    "result10k": "modern-tools_call-1k-result10k",
    # tools/call whose arguments make the request 10 KB / 100 KB (the request side's scans).
    "modern10k": "modern-tools_call-10k",
    "modern100k": "modern-tools_call-100k",
    # The 1 KB call answered as an SSE stream: three notifications/progress, then the result.
    "sse": "modern-tools_call-1k-sse",
    # The 1 KB call carrying the agent's trace context in `_meta.traceparent` (the filter hands
    # it to the headers Envoy's tracer reads).
    "traced": "modern-tools_call-1k-traced",
    # The 1 KB call from a client that declared form elicitation: with a `confirm` rule on the
    # tool (`--warden-config`), every request is answered with the gateway's question.
    "confirm": "modern-tools_call-1k-confirm",
}
DEFAULT_PAYLOADS = "modern,modern10k,modern100k,result10k,legacy,sse"
WARDEN_BIN = ROOT / "target" / "release" / "warden"
# The published pipelock conformance TEST key (never a production key) for the `full` writer.
TEST_SIGNING_SEED = harness.TEST_SIGNING_SEED
# Profiling variants: mode words of bench/profile-filter (see its lib.rs), in cost order.
PROFILE_MODES = ["noop", "hdr7", "hdr70", "pairs", "buffer", "read", "classify", "classify11", "set2",
                 "time20", "prop5", "metric10", "hist4", "shared4"]


def log(msg: str) -> None:
    print(msg, flush=True)


free_port = harness.free_port


# --- processes ----------------------------------------------------------------------------------

class Envoy(harness.Proc):
    """One Envoy pinned to a CPU (and optionally wrapped, e.g. by valgrind), on fresh ports."""

    def __init__(self, name: str, template: Path, cpu: int, out: Path, upstream_port: int | None,
                 wasm: Path | None = None, mode: str | None = None, wrap: list[str] | None = None,
                 binary: str | None = None, sink_port: int | None = None, concurrency: int = 1):
        self.port = free_port()
        self.admin = free_port()
        env = {"ADMIN_PORT": str(self.admin)}
        if sink_port is not None:
            env["SINK_PORT"] = str(sink_port)
        if upstream_port is None:  # the upstream itself listens on UPSTREAM_PORT
            env["UPSTREAM_PORT"] = str(self.port)
        else:
            env["GATEWAY_PORT"] = str(self.port)
            env["UPSTREAM_PORT"] = str(upstream_port)
        if wasm is not None:
            env["WARDEN_WASM"] = str(wasm)
        text = render(template.read_text(), env)
        if mode is not None:
            text = set_plugin_configuration(text, mode)
        self.config = out / f"{name}.yaml"
        self.config.write_text(text)
        cmd = [*NICE, "taskset", "-c", str(cpu), *(wrap or []), binary or str(ENVOY), "-c", str(self.config), "--concurrency", str(concurrency),
               "--base-id", str(self.admin), "-l", "warning"]
        key = {} if os.environ.get("WARDEN_SIGNING_KEY") else {"WARDEN_SIGNING_KEY": TEST_SIGNING_SEED}
        super().__init__(name, cmd, out, env=key)  # nice and taskset exec envoy: same pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        harness.wait_envoy_ready(self, self.admin, timeout)

    def counter(self, name: str) -> int:
        url = f"http://127.0.0.1:{self.admin}/stats?format=json&usedonly&filter=" + urllib.request.quote(f"^{name}$")
        with urllib.request.urlopen(url, timeout=5) as r:
            for s in json.load(r).get("stats", []):
                if s.get("name") == name:
                    return int(s.get("value", 0))
        return 0

    def user_sys(self) -> tuple[float, float]:
        """(utime, stime) seconds from /proc/<pid>/stat (fields 14, 15)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def cpu(self) -> tuple[float, float]:
        """(utime+stime seconds from /proc/<pid>/stat, sum of per-thread schedstat run time seconds)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        ns = 0
        for t in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except OSError:
                pass
        return ticks / CLK_TCK, ns / 1e9


UPSTREAM_BIN = ROOT / "target" / "bench" / "upstream"


class CUpstream(harness.Proc):
    """bench/upstream.c: the default fixed-response upstream (much cheaper than an Envoy)."""

    def __init__(self, cpu: int, out: Path):
        if not UPSTREAM_BIN.exists() or UPSTREAM_BIN.stat().st_mtime < (BENCH / "upstream.c").stat().st_mtime:
            UPSTREAM_BIN.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cc", "-O2", "-o", str(UPSTREAM_BIN), str(BENCH / "upstream.c")], check=True)
        for _ in range(3):
            self.port = free_port()
            super().__init__("upstream", [*NICE, "taskset", "-c", str(cpu), str(UPSTREAM_BIN), str(self.port)], out)
            try:
                harness.wait_port(self.port, timeout=10, proc=self)
                return
            except (RuntimeError, TimeoutError):
                self.stop(kill=True)
        raise RuntimeError("bench upstream did not start")

    def cpu(self) -> tuple[float, float]:
        t = self.cpu_seconds()
        return t, t


def start_upstream(kind: str, cpu: int, out: Path):
    if kind == "envoy":
        return launch("upstream", ROOT / "envoy" / "bench-upstream.yaml", cpu, out, None)
    return CUpstream(cpu, out)


def launch(*args, timeout: float = 60.0, tries: int = 3, **kw) -> Envoy:
    """Start an Envoy and wait until ready; retry on fresh ports if a port was taken meanwhile
    (free_port() cannot reserve: another process on the machine may bind it first)."""
    for attempt in range(tries):
        e = Envoy(*args, **kw)
        try:
            e.wait_ready(timeout=timeout)
            return e
        except RuntimeError:
            e.stop(kill=True)
            if "Address already in use" not in e.tail() or attempt == tries - 1:
                raise
            log(f"{e.name}: port taken by someone else, retrying on new ports")
    raise AssertionError("unreachable")


def set_plugin_configuration(text: str, value: str) -> str:
    """Replace the block under `value: |` of the wasm plugin configuration with one line."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() == "value: |":
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            lines[i + 1:j] = [" " * (indent + 2) + value + "\n"]
            return "".join(lines)
    raise ValueError("no `value: |` plugin configuration block")


def cpu_times() -> dict[int, float]:
    """Busy seconds per CPU from /proc/stat (everything but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(x) for x in parts[1:]]
                out[int(parts[0][3:])] = (sum(vals[:8]) - vals[3] - vals[4]) / CLK_TCK
    return out


# --- requests -----------------------------------------------------------------------------------

def read_headers(path: Path) -> dict[str, str]:
    hdrs = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip()] = v.strip()
    return hdrs


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/mcp", body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def check_variant(name: str, port: int, filtered: bool, warden: bool, payloads: list[str]) -> list[str]:
    """Prove what the Envoy under test does. Returns human-readable check lines; raises on failure."""
    lines = []
    for p in payloads:
        stem = PAYLOADS[p]
        body = (BENCH / "payloads" / f"{stem}.json").read_bytes()
        hdrs = read_headers(BENCH / "payloads" / f"{stem}.headers")
        st, rh, rb = post(port, body, hdrs)
        if st != 200:
            raise RuntimeError(f"{name}: {p} request got {st}: {rb[:300]!r}")
        seen = (rh.get("x-upstream-mcp-method", ""), rh.get("x-upstream-mcp-name", ""))
        lines.append(f"{name}: {p} tools/call -> 200, upstream saw Mcp-Method={seen[0]!r} Mcp-Name={seen[1]!r}")
        if p == "legacy" and warden and seen != ("tools/call", "search_documents"):
            raise RuntimeError(f"{name}: legacy request reached upstream without derived headers: {seen}")
        if p == "legacy" and not filtered and any(seen):
            raise RuntimeError(f"{name}: bare Envoy forwarded routing headers on a legacy request: {seen}")
    body = (BENCH / "payloads" / "modern-tools_call-1k.json").read_bytes()
    hdrs = read_headers(BENCH / "payloads" / "modern-tools_call-1k.headers")
    hdrs["Mcp-Name"] = "not_the_body_name"
    st, _, rb = post(port, body, hdrs)
    lines.append(f"{name}: modern with wrong Mcp-Name -> {st} {rb[:160].decode(errors='replace')}")
    if warden and (st != 400 or b"-32020" not in rb):
        raise RuntimeError(f"{name}: wrong Mcp-Name was not rejected with 400/-32020 (got {st}) - filter not running?")
    if not filtered and st != 200:
        raise RuntimeError(f"{name}: bare Envoy answered {st} to a wrong Mcp-Name")
    if name in ("native-mcp", "full"):
        # The README policy's `no-deletes` rule, as RBAC on the C++ filter's metadata or as policy.
        deny = json.loads(body)
        deny["params"]["name"] = "delete_everything"
        hdrs = read_headers(BENCH / "payloads" / "modern-tools_call-1k.headers")
        hdrs["Mcp-Name"] = "delete_everything"
        st, _, rb = post(port, json.dumps(deny).encode(), hdrs)
        lines.append(f"{name}: tools/call delete_everything -> {st} {rb[:160].decode(errors='replace')}")
        # RBAC answers 403; mcp-warden hides a denied tool by default (an unknown-tool JSON-RPC error).
        if st != 403 and b'"error"' not in rb:
            raise RuntimeError(f"{name}: the no-deletes rule did not refuse delete_everything (got {st}: {rb[:300]!r})")
    return lines


class Sink(harness.Proc):
    """`warden sink` (the real gRPC OTLP receiver) for the `full` variant's receipts."""

    def __init__(self, cpu: int, out: Path):
        if not WARDEN_BIN.exists():
            raise SystemExit(f"{WARDEN_BIN} missing: run make build")
        self.dir = out / "receipts"
        self.port = free_port()
        super().__init__("sink", [*NICE, "taskset", "-c", str(cpu), str(WARDEN_BIN), "sink", "--listen",
                                  f"127.0.0.1:{self.port}", "--out", str(self.dir)], out)
        harness.wait_port(self.port, timeout=30, proc=self)

    def receipts(self) -> int:
        """Lines filed: receipts, and the digest entries of checkpoint batches (`*.digests.jsonl`)."""
        n = 0
        for f in self.dir.glob("*.jsonl"):
            with open(f, "rb") as fh:
                n += sum(1 for line in fh if line.strip())
        return n


def receipts_caught_up(env: Envoy, sink: Sink, timeout: float = 600.0) -> dict:
    """Wait until the writer has dealt with the exchange of every completed request (signed it,
    digested it into a checkpoint batch, or dropped it, signed and counted) and exported it all,
    then count what is at the sink (receipt and digest lines)."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while True:
        c = harness.receipt_counters(env.admin, "bench")
        done = harness.receipts_all_out(c)
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    c["catch_up_s"] = round(time.monotonic() - t0, 1)
    c["at_sink"] = sink.receipts()
    c["caught_up"] = done
    return c


# --- wrk ----------------------------------------------------------------------------------------

def run_wrk(port: int, payload: str, conns: int, seconds: float, cpu: int, timeout_s: int = 2) -> dict:
    stem = PAYLOADS[payload]
    env = dict(os.environ, BENCH_BODY=str(BENCH / "payloads" / f"{stem}.json"),
               BENCH_HEADERS=str(BENCH / "payloads" / f"{stem}.headers"))
    cmd = [*NICE, "taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
           "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/mcp"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30)
    for line in p.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-800:]} {p.stderr[-800:]}")


def measure(env: Envoy, payload: str, conns: int, seconds: float, wrk_cpu: int, env_cpu: int, upstream=None) -> dict:
    rq0 = env.counter("http.bench.downstream_rq_completed")
    up0 = upstream.cpu()[0] if upstream is not None else 0.0
    cores0 = cpu_times()
    t0, s0 = env.cpu()
    u0, k0 = env.user_sys()
    w0 = time.monotonic()
    w = run_wrk(env.port, payload, conns, seconds, wrk_cpu)
    wall = time.monotonic() - w0
    t1, s1 = env.cpu()
    u1, k1 = env.user_sys()
    cores1 = cpu_times()
    rq1 = env.counter("http.bench.downstream_rq_completed")
    up1 = upstream.cpu()[0] if upstream is not None else 0.0
    rq = rq1 - rq0
    wrk_s = w["duration_us"] / 1e6
    errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_status"] + w["err_timeout"]
    core_busy = {c: cores1[c] - cores0[c] for c in cores1}
    return {
        "variant": env.name, "payload": payload, "conns": conns,
        "requests": w["requests"], "envoy_requests": rq, "errors": errors, "non_2xx": w["err_status"],
        "rps": w["requests"] / wrk_s,
        "lat_p50_us": w["lat_p50"], "lat_p90_us": w["lat_p90"], "lat_p99_us": w["lat_p99"],
        "lat_mean_us": w["lat_mean"], "lat_max_us": w["lat_max"],
        "cpu_us_per_req": (t1 - t0) * 1e6 / rq if rq else None,            # /proc/<pid>/stat, 10 ms ticks
        "cpu_us_per_req_sched": (s1 - s0) * 1e6 / rq if rq else None,       # schedstat, ns resolution
        "user_us_per_req": (u1 - u0) * 1e6 / rq if rq else None,
        "sys_us_per_req": (k1 - k0) * 1e6 / rq if rq else None,
        "envoy_util": (s1 - s0) / wall,                                     # share of one core
        "core_busy": {str(c): round(v / wall, 3) for c, v in core_busy.items()},  # share of wall per core
        "core_other_on_envoy_cpu": round(max(0.0, core_busy.get(env_cpu, 0.0) - (s1 - s0)) / wall, 3),
        "upstream_cpu_us_per_req": (up1 - up0) * 1e6 / rq if rq and upstream is not None else None,
        "wall_s": wall,
    }


# --- statistics ---------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt_range(xs, f="{:.2f}"):
    lo, hi = spread(xs)
    return "-" if lo is None else f"{f.format(lo)}..{f.format(hi)}"


def summarize(runs: list[dict], base: str, variants: list[str], payloads: list[str], conns_list: list[int]) -> tuple[dict, str]:
    summary: dict = {}
    out = []
    hdr = (f"{'payload':7} {'conns':>5} {'variant':11} {'rps':>8} {'ratio':>6} {'ratio range':>12} "
           f"{'p50 us':>7} {'p99 us':>7} {'cpu us/rq':>9} {'(range)':>13} {'+cpu us':>7} {'stat':>6} {'usr/sys':>11} {'util':>5}")
    out.append(hdr)
    out.append("-" * len(hdr))
    for p in payloads:
        for c in conns_list:
            sel = [r for r in runs if r["payload"] == p and r["conns"] == c]
            base_runs = [r for r in sel if r["variant"] == base]
            base_cpu = med([r["cpu_us_per_req_sched"] for r in base_runs])
            for v in variants:
                vr = [r for r in sel if r["variant"] == v]
                if not vr:
                    continue
                # Ratio per round: run i of the variant against run i of the base (same round).
                ratios = [a["rps"] / b["rps"] for a, b in zip(vr, base_runs)]
                cpu = [r["cpu_us_per_req_sched"] for r in vr]
                s = {
                    "runs": len(vr),
                    "rps_median": med([r["rps"] for r in vr]),
                    "ratio_median": med(ratios), "ratio_range": spread(ratios),
                    "p50_us_median": med([r["lat_p50_us"] for r in vr]),
                    "p99_us_median": med([r["lat_p99_us"] for r in vr]),
                    "p50_us_range": spread([r["lat_p50_us"] for r in vr]),
                    "p99_us_range": spread([r["lat_p99_us"] for r in vr]),
                    "cpu_us_per_req_median": med(cpu), "cpu_us_per_req_range": spread(cpu),
                    "cpu_us_per_req_stat_median": med([r["cpu_us_per_req"] for r in vr]),
                    "user_us_per_req_median": med([r.get("user_us_per_req") for r in vr]),
                    "sys_us_per_req_median": med([r.get("sys_us_per_req") for r in vr]),
                    "cpu_us_delta_vs_base": (med(cpu) - base_cpu) if base_cpu is not None and med(cpu) is not None else None,
                    "envoy_util_median": med([r["envoy_util"] for r in vr]),
                    "errors": sum(r["errors"] for r in vr),
                }
                summary.setdefault(p, {}).setdefault(str(c), {})[v] = s
                delta = s["cpu_us_delta_vs_base"]
                out.append(
                    f"{p:7} {c:>5} {v:11} {s['rps_median']:>8.0f} {s['ratio_median']:>6.3f} "
                    f"{fmt_range(ratios, '{:.3f}'):>12} {s['p50_us_median']:>7.0f} {s['p99_us_median']:>7.0f} "
                    f"{s['cpu_us_per_req_median']:>9.2f} {fmt_range(cpu):>13} "
                    f"{'' if delta is None else f'{delta:+.2f}':>7} {s['cpu_us_per_req_stat_median']:>6.1f} "
                    f"{s['user_us_per_req_median']:>5.0f}/{s['sys_us_per_req_median']:<5.0f} {s['envoy_util_median']:>5.2f}"
                    + (f"  ERRORS={s['errors']}" if s["errors"] else ""))
            out.append("")
    return summary, "\n".join(out)


# --- main ---------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 8)))
    ap.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", 3)))
    ap.add_argument("--conns", default=os.environ.get("BENCH_CONNS", "1,16"))
    ap.add_argument("--payloads", default=os.environ.get("BENCH_PAYLOADS", DEFAULT_PAYLOADS))
    ap.add_argument("--variants", default=os.environ.get("BENCH_VARIANTS", "bare,native-mcp,warden,full"),
                    help="columns besides bare: native-mcp, warden, full")
    ap.add_argument("--profile", action="store_true", help="also run the profiling filter modes")
    ap.add_argument("--modes", default=",".join(PROFILE_MODES), help="profiling modes (with --profile)")
    ap.add_argument("--envoy-cpu", type=int, default=0)
    ap.add_argument("--aux-cpu", type=int, default=1, help="core for the upstream and wrk")
    ap.add_argument("--upstream", choices=["c", "envoy"], default=os.environ.get("BENCH_UPSTREAM", "c"),
                    help="fixed-response upstream: bench/upstream.c (default) or envoy/bench-upstream.yaml")
    ap.add_argument("--out", default=str(BENCH / "out"))
    args = ap.parse_args()

    conns_list = [int(c) for c in args.conns.split(",") if c]
    payloads = [p for p in args.payloads.split(",") if p]
    ncpu = os.cpu_count() or 1
    if ncpu < 2:
        log("WARNING: fewer than 2 CPUs: Envoy, upstream and wrk share one core; numbers mean little.")
        args.aux_cpu = args.envoy_cpu
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (make bench installs it)")
    if not WASM.exists():
        raise SystemExit(f"{WASM} missing: run make build")
    if args.profile and not PROFILE_WASM.exists():
        raise SystemExit(f"{PROFILE_WASM} missing: run make bench-profile")

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.out) / stamp
    out.mkdir(parents=True, exist_ok=True)
    latest = Path(args.out) / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(stamp)

    # Snapshot the .wasm so a rebuild by someone else mid-run cannot change what is measured.
    wasm = out / "mcp_warden.wasm"
    shutil.copy2(WASM, wasm)
    meta = {
        "utc": stamp, "argv": sys.argv, "duration_s": args.duration, "warmup_s": args.warmup, "reps": args.reps,
        "wasm_sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(), "wasm_bytes": wasm.stat().st_size,
        "wasm_mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(WASM.stat().st_mtime)),
        "git_head": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "git_dirty_src": bool(subprocess.run(["git", "status", "--porcelain", "crates"], cwd=ROOT, capture_output=True, text=True).stdout.strip()),
        "envoy": subprocess.run([str(ENVOY), "--version"], capture_output=True, text=True).stdout.strip().split()[-1],
        "upstream": args.upstream, "cpus": ncpu, "envoy_cpu": args.envoy_cpu, "aux_cpu": args.aux_cpu, "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }
    all_variants: list[tuple[str, Path, Path | None, str | None]] = [
        ("bare", ROOT / "envoy" / "bench-bare.yaml", None, None),
        ("native-mcp", ROOT / "envoy" / "bench-native-mcp.yaml", None, None),
        ("warden", ROOT / "envoy" / "bench-warden.yaml", wasm, None),
        ("full", ROOT / "envoy" / "bench-full.yaml", wasm, None),
    ]
    wanted = ["bare", *[v for v in args.variants.split(",") if v and v != "bare"]]
    unknown = set(wanted) - {v[0] for v in all_variants}
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}")
    variants = [v for v in all_variants if v[0] in wanted]
    if args.profile:
        pwasm = out / "warden_profile_filter.wasm"
        shutil.copy2(PROFILE_WASM, pwasm)
        meta["profile_wasm_sha256"] = hashlib.sha256(pwasm.read_bytes()).hexdigest()
        for m in [m for m in args.modes.split(",") if m]:
            variants.append((m, ROOT / "envoy" / "bench-warden.yaml", pwasm, m))
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    log(f"bench: results in {out}")
    log(f"bench: wasm {meta['wasm_sha256'][:16]} ({meta['wasm_bytes']} B, built {meta['wasm_mtime']}), git {meta['git_head']}"
        + (" (crates/ has uncommitted changes)" if meta["git_dirty_src"] else ""))

    procs: list[Envoy] = []
    try:
        upstream = start_upstream(args.upstream, args.aux_cpu, out)
        procs.append(upstream)
        sink = None
        if any(v[0] == "full" for v in variants):
            sink = Sink(args.aux_cpu, out)
            procs.append(sink)
        envoys: dict[str, Envoy] = {}
        meta["ready_s"] = {}
        for name, tmpl, w, mode in variants:
            t0 = time.monotonic()
            e = launch(name, tmpl, args.envoy_cpu, out, upstream.port, wasm=w, mode=mode,
                       sink_port=sink.port if name == "full" and sink else None)
            meta["ready_s"][name] = round(time.monotonic() - t0, 2)  # process start to /ready: VM starts included
            procs.append(e)
            envoys[name] = e
        checks = []
        for name, _, w, mode in variants:
            checks += check_variant(name, envoys[name].port, filtered=name != "bare",
                                    warden=name in ("warden", "full"), payloads=payloads)
        (out / "checks.txt").write_text("\n".join(checks) + "\n")
        for c in checks:
            log("check: " + c)

        runs: list[dict] = []
        names = [v[0] for v in variants]
        with open(out / "runs.jsonl", "w") as rf:
            for p in payloads:
                for c in conns_list:
                    for name in names:  # warm-up: JIT, connection pools, allocator
                        run_wrk(envoys[name].port, p, c, args.warmup, args.aux_cpu)
                    for rep in range(args.reps):
                        for name in names:  # A/B/A/B: every rep visits every variant in turn
                            r = measure(envoys[name], p, c, args.duration, args.aux_cpu, args.envoy_cpu, upstream)
                            r["rep"] = rep
                            runs.append(r)
                            rf.write(json.dumps(r) + "\n")
                            rf.flush()
                            log(f"  {p:6} c={c:<3} rep {rep} {name:11} {r['rps']:8.0f} rps  p50 {r['lat_p50_us']:5d} us"
                                f"  p99 {r['lat_p99_us']:6d} us  cpu {r['cpu_us_per_req_sched']:6.2f} us/rq"
                                f"  util {r['envoy_util']:.2f}  other-on-core{args.envoy_cpu} {r['core_other_on_envoy_cpu']:.2f}"
                                f"  core{args.aux_cpu} {r['core_busy'].get(str(args.aux_cpu), 0):.2f}"
                                + (f"  ERRORS {r['errors']} (non-2xx {r['non_2xx']})" if r["errors"] else ""))
        meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        receipts_line = ""
        if sink is not None:
            r = receipts_caught_up(envoys["full"], sink)
            meta["receipts"] = r
            lost = r["completed"] - r["at_sink"]
            verdict = "zero loss" if lost <= 0 and not r["dropped"] else f"{lost} missing, {r['dropped']} dropped"
            receipts_line = (f"full: {r['completed']} requests completed, {r['signed']} receipts signed, {r['dropped']} dropped "
                             f"(signed drop notices), {r['at_sink']} at the sink after {r['catch_up_s']} s of catch-up"
                             f" -> {verdict}\n")
            shutil.rmtree(sink.dir, ignore_errors=True)
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        summary, text = summarize(runs, "bare", names, payloads, conns_list)
        legend = (
            "ratio = variant rps / bare rps in the same round (median over rounds, range = min..max);\n"
            "cpu us/rq = Envoy-under-test CPU (all threads, schedstat) / requests it completed; +cpu = minus bare;\n"
            "stat = the same from /proc/<pid>/stat utime+stime (10 ms ticks); usr/sys = its user and kernel parts;\n"
            "util = Envoy's share of its core during the run (<0.95 at 16 conns: something else limited it).\n"
        )
        header = (f"mcp-warden bench {stamp}  envoy {meta['envoy']}  wasm {meta['wasm_sha256'][:12]} ({meta['wasm_bytes']} B)  git {meta['git_head']}\n"
                  f"start to ready (s): {', '.join(f'{k} {v}' for k, v in meta['ready_s'].items())}\n" + receipts_line +
                  f"{args.reps} rounds x {args.duration:g}s (+{args.warmup:g}s warm-up), envoy on core {args.envoy_cpu}, "
                  f"upstream ({args.upstream}) + wrk on core {args.aux_cpu}, loadavg {' '.join(meta['loadavg_start'])} -> {' '.join(meta['loadavg_end'])}\n")
        (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=2))
        (out / "summary.txt").write_text(header + legend + "\n" + text + "\n")
        log("\n" + header + legend + "\n" + text)
        bad = [r for r in runs if r["errors"]]
        if bad:
            log(f"bench: {len(bad)} runs had errors or non-2xx responses; see runs.jsonl")
            return 1
        return 0
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
