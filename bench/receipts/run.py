#!/usr/bin/env python3
"""Receipt throughput inside one Envoy (not part of `make test`; see docs/receipts.md).

Topology: wrk (1 thread, bench/post.lua, the 1 KiB modern tools/call) -> Envoy under test
(envoy/e2e-receipts.yaml with an allow-all policy: every request is an allowed exchange, one
receipt each) -> fixed-response upstream (envoy/bench-upstream.yaml). The singleton writer VM
signs and exports to a real `warden sink` on a free port.

Per run (variant x connections) it records: wrk rps and latency; the exchanges Envoy completed;
the writer's counters (signed / exported / dropped / export failures) at the end of the load and
once it has caught up; the backlog at the end of the load (exchanges not yet signed nor dropped:
they wait in Envoy's shared queue, which has no bound); how long the writer took to catch up; CPU
of Envoy's main thread (where the singleton writer runs) and of its workers; the sink's file.

Variants:
  writer    the writer VM exports to a live sink (the normal case)
  nowriter  no writer VM (bootstrap extension removed): the request path's enqueue fails and is
            counted; the baseline for "is request latency affected by receipts?"
  sinkdown  the sink is stopped during the load (tiny writer buffer, --buffer bytes): drops,
            signed drop notices; the sink is started again afterwards and the counts compared
  perexchange  the writer with checkpoints off: one signature per exchange, however far behind
  checkpoints  `checkpoint_lag_ms: 0`: every exchange a digest entry, one signed checkpoint per
            batch (256 entries or 1 s); what the writer does when it is behind, all the time
(`writer` is the shipped default: a signature per exchange until the queue lag passes 500 ms,
then checkpoint batches until it is back under 125 ms.)

Usage:
  .venv/bin/python bench/receipts/run.py                       # writer + nowriter, 1 and 16 conns, 10 s
  .venv/bin/python bench/receipts/run.py --variants writer --conns 16 --duration 20 --concurrency 2
  .venv/bin/python bench/receipts/run.py --variants sinkdown --buffer 65536

Results: bench/out/receipts-<UTC>/{runs.jsonl,summary.txt,...}; summary printed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
from wardenkit import harness

WARDEN = ROOT / "target" / "release" / "warden"
TEMPLATE = "envoy/e2e-receipts.yaml"
WRITER_CONFIG = '{"sink_cluster": "receipt_sink", "max_age_ms": 200}'
PAYLOAD = ROOT / "bench" / "payloads" / "modern-tools_call-1k"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, flush=True)


def thread_cpu(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of `pid` (utime+stime)."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        secs = (int(fields[11]) + int(fields[12])) / CLK_TCK
        if int(task.name) == pid:
            main += secs
        else:
            other += secs
    return main, other


def counters(admin_port: int) -> dict[str, int]:
    return harness.receipt_counters(admin_port, "mcp_gateway")


# --pin: the gateway (its workers and the writer's main thread) on CPU 0, everything else on
# CPU 1, as `make bench` places them: "the worker at its own limit with the writer on the same
# core" is then what is measured, not how the scheduler shares two cores among five processes.
PIN: dict[str, list[str]] = {"gateway": [], "rest": []}


def run_wrk(port: int, conns: int, seconds: int) -> dict:
    env = dict(os.environ, BENCH_BODY=f"{PAYLOAD}.json", BENCH_HEADERS=f"{PAYLOAD}.headers")
    cmd = [*PIN["rest"], "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout=5s", "-s", str(ROOT / "bench" / "post.lua"),
           f"http://127.0.0.1:{port}/mcp"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in p.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-800:]} {p.stderr[-800:]}")


class Sink:
    def __init__(self, port: int, out: Path, logs: Path):
        self.port, self.out, self.logs, self.proc, self.n = port, out, logs, None, 0

    def start(self) -> None:
        self.n += 1
        self.proc = harness.Proc(f"sink-{self.n}", [*PIN["rest"], str(WARDEN), "sink", "--listen", f"127.0.0.1:{self.port}",
                                                    "--out", str(self.out)], self.logs)
        harness.wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None

    def lines(self) -> dict[str, list[dict]]:
        return {p.name: [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
                for p in sorted(self.out.glob("*.jsonl")) if not p.name.endswith(".digests.jsonl")}

    def digests(self) -> int:
        return sum(sum(1 for l in p.read_text().splitlines() if l.strip()) for p in self.out.glob("*.digests.jsonl"))


covered = harness.receipts_covered


def strip_writer(path: Path) -> None:
    text = path.read_text()
    start, end = text.index("bootstrap_extensions:"), text.index("admin:")
    path.write_text(text[:start] + text[end:])


def one_run(variant: str, conns: int, args, out: Path, upstream_port: int) -> dict:
    tag = f"{variant}-c{conns}"
    run_dir = out / tag
    sink = Sink(harness.free_port(), run_dir / "sink", run_dir)
    ports = {"GATEWAY_PORT": harness.free_port(), "ADMIN_PORT": harness.free_port(),
             "UPSTREAM_PORT": upstream_port, "SINK_PORT": sink.port}
    writer_config = WRITER_CONFIG
    if args.batch_bytes:
        writer_config = writer_config[:-1] + f', "max_batch_bytes": {args.batch_bytes}}}'
    if variant == "sinkdown":
        writer_config = writer_config[:-1] + f', "max_buffer_bytes": {args.buffer}}}'
    if variant == "perexchange":
        writer_config = writer_config[:-1] + ', "checkpoints": false}'
    if variant == "checkpoints":
        writer_config = writer_config[:-1] + ', "checkpoint_lag_ms": 0}'
    replace = {} if writer_config == WRITER_CONFIG else {WRITER_CONFIG: writer_config}
    config = harness.render_envoy_config(TEMPLATE, run_dir, ports, wasm=out / "mcp_warden.wasm", replace=replace,
                                         plugin_config={})
    if variant == "nowriter":
        strip_writer(config)
    if variant != "sinkdown":
        sink.start()
    env = harness.start_envoy(config, ports["ADMIN_PORT"], run_dir, name="envoy", concurrency=args.concurrency,
                              prefix=PIN["gateway"])
    try:
        harness.wait_mcp(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/mcp", proc=env)
        run_wrk(ports["GATEWAY_PORT"], conns, 2)  # warm-up
        if variant in ("writer", "perexchange", "checkpoints"):  # let the writer catch up with the warm-up first
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                c = counters(ports["ADMIN_PORT"])
                if covered(c) >= c["completed"]:
                    break
                time.sleep(0.2)
        c0 = counters(ports["ADMIN_PORT"])
        cpu0 = thread_cpu(env.pid)
        t0 = time.monotonic()
        w = run_wrk(ports["GATEWAY_PORT"], conns, args.duration)
        wall = time.monotonic() - t0
        c1 = counters(ports["ADMIN_PORT"])
        cpu1 = thread_cpu(env.pid)
        completed = c1["completed"] - c0["completed"]
        signed = c1["signed"] - c0["signed"]
        dropped = c1["dropped"] - c0["dropped"]
        digested = c1["digested"] - c0["digested"]
        backlog_at_end = c1["completed"] - covered(c1) - c1["unqueued"]
        # Catch-up: the writer keeps going after the load stops.
        catch_up_s = None
        c2 = c1
        if variant == "sinkdown":
            sink.start()
        if variant != "nowriter":
            t1 = time.monotonic()
            deadline = t1 + args.catch_up_timeout
            while time.monotonic() < deadline:
                c2 = counters(ports["ADMIN_PORT"])
                # Every exchange signed, digested or dropped (notices: >=), all exported.
                done = harness.receipts_all_out(c2)
                if done and c2["digested"]:
                    # The last checkpoint batch closes by age (1 s): done once 1.5 s more change nothing.
                    time.sleep(1.5)
                    c3 = counters(ports["ADMIN_PORT"])
                    done = (c3["checkpoints"], c3["exported"]) == (c2["checkpoints"], c2["exported"])
                if done:
                    break
                time.sleep(0.2)
            catch_up_s = time.monotonic() - t1
        cpu2 = thread_cpu(env.pid)
        # The export leg as Envoy saw it (gRPC call latency histogram, retries, flow control).
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['ADMIN_PORT']}/stats?filter=receipt_sink|mcp_warden",
                                    timeout=10) as r:
            (run_dir / "stats-after.txt").write_bytes(r.read())
        files = sink.lines()
        receipts = [r for lines in files.values() for r in lines]
        notices = [r["action_record"] for r in receipts if r["action_record"].get("method") == "warden/dropped"]
        noticed = sum(int(n["intent"].split()[0].removeprefix("dropped=")) for n in notices)
        verify = None
        if files and variant != "nowriter":
            path = sink.out / next(iter(files))  # warden verify checks its .digests.jsonl sibling too
            v = subprocess.run([str(WARDEN), "verify", str(path), "--key", harness.TEST_SIGNING_PUBLIC],
                               capture_output=True, text=True, timeout=600)
            verify = v.returncode == 0
        wrk_s = w["duration_us"] / 1e6
        errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_status"] + w["err_timeout"]
        row = {
            "variant": variant, "conns": conns, "concurrency": args.concurrency, "duration_s": args.duration,
            "rps": round(w["requests"] / wrk_s), "requests": w["requests"], "errors": errors,
            "lat_p50_us": w["lat_p50"], "lat_p99_us": w["lat_p99"], "lat_max_us": w["lat_max"],
            "completed": completed,
            "signed_during_load": signed, "signed_per_s_during_load": round(signed / wall),
            "digested_during_load": digested, "digested_per_s_during_load": round(digested / wall),
            "sink_digests": sink.digests(), "checkpoints_total": c2["checkpoints"],
            "dropped_during_load": dropped, "backlog_at_end": backlog_at_end,
            "catch_up_s": None if catch_up_s is None else round(catch_up_s, 2),
            "signed_total": c2["signed"], "exported_total": c2["exported"], "dropped_total": c2["dropped"],
            "unqueued_total": c2["unqueued"], "export_failures": c2["export_failures"],
            "sink_receipts": len(receipts), "sink_chains": len(files), "drop_notices": len(notices),
            "dropped_in_notices": noticed, "verify_ok": verify,
            "main_thread_cpu_s_load": round(cpu1[0] - cpu0[0], 2), "workers_cpu_s_load": round(cpu1[1] - cpu0[1], 2),
            "main_thread_cpu_s_catch_up": round(cpu2[0] - cpu1[0], 2),
            "memory_allocated_end_of_load": c1["memory_allocated"], "memory_allocated_after": c2["memory_allocated"],
        }
        handled = (c2["signed"] - c0["signed"]) + (c2["dropped"] - c0["dropped"]) + (c2["digested"] - c0["digested"])
        if handled and variant != "nowriter":
            # Main-thread CPU per queue message the writer handled (signed, digested or dropped).
            row["main_thread_us_per_message"] = round((cpu2[0] - cpu0[0]) * 1e6 / handled, 1)
        if catch_up_s and backlog_at_end > 100:
            row["catch_up_receipts_per_s"] = round(backlog_at_end / catch_up_s)
        return row
    finally:
        env.stop()
        sink.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="writer,nowriter")
    ap.add_argument("--conns", default="1,16")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads of the gateway")
    ap.add_argument("--pin", action="store_true",
                    help="the gateway on CPU 0 (workers and writer share it), wrk, sink and upstream on CPU 1")
    ap.add_argument("--buffer", type=int, default=65536, help="writer max_buffer_bytes for the sinkdown variant")
    ap.add_argument("--batch-bytes", type=int, default=0, help="writer max_batch_bytes (default: the writer's, 256 KiB)")
    ap.add_argument("--catch-up-timeout", type=float, default=300)
    args = ap.parse_args()
    for need in (harness.WASM, WARDEN, harness.ENVOY):
        if not Path(need).is_file():
            log(f"missing {need}: cargo build --release --target wasm32-wasip1 && cargo build --release -p warden-cli")
            return 2
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "out" / f"receipts-{stamp}"
    out.mkdir(parents=True)
    # A private copy: a rebuild by someone else mid-run cannot change what is measured.
    (out / "mcp_warden.wasm").write_bytes(harness.WASM.read_bytes())
    meta = {"writer_config": WRITER_CONFIG, "git_head": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(),
            "nproc": os.cpu_count(), "loadavg_start": os.getloadavg(), "args": vars(args)}
    upstream_port = harness.free_port()
    upstream_admin = harness.free_port()
    up = harness.render_envoy("envoy/bench-upstream.yaml", out / "upstream",
                              {"UPSTREAM_PORT": upstream_port, "ADMIN_PORT": upstream_admin})
    upstream = harness.start_envoy(up, upstream_admin, out / "upstream", name="upstream", prefix=PIN["rest"])
    rows = []
    try:
        for variant in args.variants.split(","):
            for conns in [int(c) for c in args.conns.split(",")]:
                log(f"--- {variant} conns={conns} concurrency={args.concurrency} {args.duration}s")
                row = one_run(variant, conns, args, out, upstream_port)
                log(json.dumps(row))
                rows.append(row)
                with open(out / "runs.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
    finally:
        upstream.stop()
    meta["loadavg_end"] = os.getloadavg()
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    cols = ["variant", "conns", "rps", "lat_p50_us", "lat_p99_us", "signed_per_s_during_load",
            "digested_per_s_during_load", "backlog_at_end", "catch_up_s", "dropped_total", "dropped_in_notices",
            "sink_receipts", "sink_digests", "checkpoints_total", "verify_ok", "main_thread_us_per_message"]
    lines = ["\t".join(cols)] + ["\t".join(str(r.get(c, "")) for c in cols) for r in rows]
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)
    log(summary)
    log(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
