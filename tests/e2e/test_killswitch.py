"""Kill switch under load, through real Envoy with two workers polling `warden control`.

Envoy (envoy/e2e-policy.yaml, `--concurrency 2`) runs mcp-warden, which polls `warden control`
every `period_ms` from each worker. A pool of client threads keeps both eras busy (2026-07-28
calls and calls in 2025-11-25 sessions; fast `echo` and slow streaming `slow_sum`), every request
on a new connection so both workers serve traffic. Then `kill.json` is swapped in (atomic rename):

- every request sent later than the stated bound after the swap, one poll period plus the poll's
  round trip (crates/core/src/control/poller.rs; proved exactly on a fake clock in
  tests/policy_control.rs), is answered 503 / -31503 with the reason and scope: the number of 200s
  among them must be 0;
- no request is cut: each one got a complete HTTP response (a JSON-RPC result, or the kill
  reply); requests already in flight at the swap finish normally;
- Envoy is not restarted: same PID, `server.uptime` keeps counting, the filter's counters keep
  their totals (the 503s counted by `mcp_warden_kill_switch_blocks_total` equal the 503s seen);
- both workers served requests after the deadline (per-worker listener connection counters);
- removing the kill switch lets traffic through again on the same terms.

Observation is by counts around deadlines, not by measured durations.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from wardenkit import harness
import pki

WARDEN = harness.WARDEN
TEMPLATE = "envoy/e2e-policy.yaml"
PERIOD_MS = 200
REASON = "incident 4711: all MCP traffic stopped"
THREADS = 8
AFTER_DEADLINE = 60  # requests that must be sent after each deadline before a phase ends
# The round trip of one poll on this loaded 2-core machine (localhost HTTP plus a late timer).
ROUND_TRIP_S = 0.1

PLUGIN_CONFIG = {
    "principal": {"sources": ["header"], "trusted_header": "x-user"},
    "rules": [],
    "control": {"cluster": "warden_control", "period_ms": PERIOD_MS, "timeout_ms": 1000},
}


@dataclass
class Record:
    thread: int
    era: str
    tool: str
    start: float
    end: float
    status: int | None
    outcome: str  # "result" | "killed" | "other: ..." | "exception: ..."


def classify(resp: httpx.Response, msg: dict | None) -> str:
    if resp.status_code == 200 and msg is not None and "result" in msg:
        return "result"
    if resp.status_code == 503 and msg is not None:
        err = msg.get("error") or {}
        if (err.get("code") == -31503 and err.get("data") == {"reason": REASON, "scope": "all"}
                and msg.get("id") is not None):
            return "killed"
    return f"other: {resp.status_code} {resp.text[:300]}"


class Load:
    """THREADS client threads, each alternating echo and slow_sum, until stopped."""

    def __init__(self, url: str):
        self.url = url
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(THREADS)]

    def _run(self, i: int) -> None:
        era = "modern" if i % 2 == 0 else "legacy"
        # A new connection per request: the kernel spreads them over both workers.
        http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
        client = pki.McpClient(self.url, headers={"x-user": f"load-{i}"}, http=http)
        if era == "legacy":
            resp = client.initialize()
            assert resp.status_code == 200, resp.text
        n = 0
        while not self.stop.is_set():
            tool, args = (("echo", {"text": f"t{i}-{n}"}) if n % 2 == 0
                          else ("slow_sum", {"a": i, "b": n, "steps": 5, "delay": 0.03}))
            start = time.monotonic()
            try:
                resp, msg = client.call(era, "tools/call", {"name": tool, "arguments": args})
                status, outcome = resp.status_code, classify(resp, msg)
            except Exception as e:  # noqa: BLE001 - every failure is recorded and asserted on
                status, outcome = None, f"exception: {type(e).__name__}: {e}"
            with self.lock:
                self.records.append(Record(i, era, tool, start, time.monotonic(), status, outcome))
            n += 1
        client.close()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def sent_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for r in self.records if r.start >= t)

    def wait_sent_since(self, t: float, n: int, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.sent_since(t) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: only {self.sent_since(t)} requests in {timeout}s")
            time.sleep(0.02)

    def finish(self) -> list[Record]:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"
        with self.lock:
            return list(self.records)


def write_atomic(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def worker_cx(admin_port: int, gw_port: int) -> dict[str, int]:
    stats = harness.envoy_stats(admin_port, rf"^listener\.127\.0\.0\.1_{gw_port}\.worker_\d+\.downstream_cx_total$")
    return {k.split(".")[-2]: v for k, v in stats.items()}


def uptime(admin_port: int) -> int:
    return harness.envoy_stats(admin_port, r"^server\.uptime$")["server.uptime"]


def started_at(pid: int) -> int:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): tells one
    process from another that got the same PID."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def kill_blocks(admin_port: int) -> int:
    return sum(harness.envoy_stats(admin_port, "mcp_warden_kill_switch_blocks_total").values())


@pytest.fixture
def control(tmp_path):
    if not WARDEN.is_file():
        pytest.fail(f"{WARDEN} is missing: build it with `cargo build --release -p warden-cli`", pytrace=False)
    directory = tmp_path / "control"
    directory.mkdir()
    port = harness.free_port()
    proc = harness.Proc("warden-control", [str(WARDEN), "control", "--dir", str(directory),
                                           "--listen", f"127.0.0.1:{port}"], tmp_path / "logs")
    harness.LIVE_PROCS.append(proc)
    try:
        harness.wait_port(port, proc=proc)
        yield directory, port, proc
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


@pytest.fixture
def envoy2(tmp_path, wasm, demo_upstream, control):
    """Envoy with two workers, polling the control endpoint."""
    _, cport, _ = control
    ports = {"GATEWAY_PORT": harness.free_port(), "ADMIN_PORT": harness.free_port(),
             "UPSTREAM_PORT": demo_upstream.port}
    config = harness.render_envoy_config(TEMPLATE, tmp_path / "envoy", ports, wasm=wasm,
                                         replace={"port_value: 8181": f"port_value: {cport}"},
                                         plugin_config=PLUGIN_CONFIG)
    proc = harness.start_envoy(config, ports["ADMIN_PORT"], tmp_path / "envoy", name="envoy-c2", concurrency=2)
    harness.LIVE_PROCS.append(proc)
    try:
        url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/mcp"
        harness.wait_mcp(url, proc=proc)
        yield url, ports, proc
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


def test_kill_switch_flip_under_load(envoy2, control):
    url, ports, proc = envoy2
    directory, _, ctl = control
    admin, period = ports["ADMIN_PORT"], PERIOD_MS / 1000
    pid, started = proc.pid, started_at(proc.pid)
    blocks0 = kill_blocks(admin)

    load = Load(url)
    load.start()
    try:
        t0 = time.monotonic()
        load.wait_sent_since(t0, 4 * THREADS, "warm-up")
        up_before, t_up = uptime(admin), time.monotonic()

        # Kill everything.
        t_kill = time.monotonic()
        write_atomic(directory / "kill.json", [{"all": True, "reason": REASON}])
        kill_deadline = t_kill + period + ROUND_TRIP_S
        while time.monotonic() < kill_deadline:
            time.sleep(0.01)
        cx_at_kill_deadline = worker_cx(admin, ports["GATEWAY_PORT"])
        load.wait_sent_since(kill_deadline, AFTER_DEADLINE, "load after the kill deadline")
        cx_after_kill = worker_cx(admin, ports["GATEWAY_PORT"])

        # Lift it.
        t_lift = time.monotonic()
        write_atomic(directory / "kill.json", [])
        lift_deadline = t_lift + period + ROUND_TRIP_S
        while time.monotonic() < lift_deadline:
            time.sleep(0.01)
        load.wait_sent_since(lift_deadline, AFTER_DEADLINE, "load after the lift deadline")
    finally:
        records = load.finish()

    # Every request got a complete HTTP response of one of the two expected kinds.
    bad = [r for r in records if r.outcome not in ("result", "killed")]
    assert not bad, f"{len(bad)} requests cut or malformed, e.g. {bad[:5]}\n{proc.tail(40)}"

    before_kill = [r for r in records if r.end < t_kill]
    killed_phase = [r for r in records if kill_deadline <= r.start and r.end < t_lift]
    lifted_phase = [r for r in records if r.start >= lift_deadline]
    assert before_kill and all(r.outcome == "result" for r in before_kill)

    ok_after_deadline = [r for r in killed_phase if r.status == 200]
    assert len(killed_phase) >= AFTER_DEADLINE - THREADS
    assert ok_after_deadline == [], (
        f"{len(ok_after_deadline)} of {len(killed_phase)} requests sent >= one poll period + round trip after the kill got 200: "
        f"{ok_after_deadline[:5]}")
    assert {r.era for r in killed_phase} == {"modern", "legacy"}

    # In-flight at the swap: finished normally, not cut.
    in_flight = [r for r in records if r.start < t_kill < r.end]
    assert in_flight, "no request was in flight at the swap (the load is too light to show anything)"
    assert all(r.outcome in ("result", "killed") for r in in_flight)
    assert any(r.outcome == "result" and r.tool == "slow_sum" for r in in_flight), \
        [(r.tool, r.outcome) for r in in_flight]

    # Lifted: traffic flows again, both eras (legacy sessions survived at the upstream).
    assert len(lifted_phase) >= AFTER_DEADLINE - THREADS
    assert [r for r in lifted_phase if r.outcome != "result"] == []
    assert {r.era for r in lifted_phase} == {"modern", "legacy"}

    # Both workers took connections after the kill deadline (and so answered 503 to them).
    assert len(cx_after_kill) == 2, cx_after_kill
    grew = {w for w in cx_after_kill if cx_after_kill[w] > cx_at_kill_deadline.get(w, 0)}
    assert grew == set(cx_after_kill), (cx_at_kill_deadline, cx_after_kill)

    # No restart, nothing lost: the same process (not only the same PID), its uptime went on for
    # as long as the test ran (a restart starts it again near 0), every 503 was counted.
    assert proc.popen.poll() is None and started_at(pid) == started
    assert uptime(admin) - up_before >= int(time.monotonic() - t_up) - 2
    seen_503 = sum(1 for r in records if r.status == 503)
    assert seen_503 >= AFTER_DEADLINE - THREADS
    assert kill_blocks(admin) - blocks0 == seen_503
    assert ctl.popen.poll() is None
    print(f"\nkill switch under load: {len(records)} requests, {seen_503} answered 503, "
          f"{len(killed_phase)} sent after the kill deadline (0 got 200), {len(in_flight)} in flight at the swap, "
          f"{len(lifted_phase)} after the lift deadline (all 200); worker connections {cx_after_kill}")
