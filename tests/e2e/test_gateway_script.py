"""scripts/gateway.py (what `make run`, `make up`, `make down` call), on free ports and a private
run directory so it never touches a developer's own `make up` (.run/) or ports 10000/9901/8080."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import sys
import urllib.request
from pathlib import Path

import pytest

from wardenkit import harness

SCRIPT = harness.ROOT / "scripts" / "gateway.py"


@pytest.fixture
def env(tmp_path, wasm):
    e = dict(os.environ)
    e.update({"GATEWAY_PORT": str(harness.free_port()), "ADMIN_PORT": str(harness.free_port()),
              "UPSTREAM_PORT": str(harness.free_port()), "SINK_PORT": str(harness.free_port()),
              "TRACE_PORT": str(harness.free_port()), "WARDEN_RUN_DIR": str(tmp_path / "run"),
              "PYTHONUNBUFFERED": "1"})
    yield e
    # Whatever a failed test left behind is stopped by PID (the script's own `down`).
    subprocess.run([str(harness.PYTHON), str(SCRIPT), "down"], env=e, capture_output=True, timeout=60)


def gateway(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(harness.PYTHON), str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def echo_through(url: str, text: str, **meta) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": text}, "_meta": harness.modern_meta(**meta)}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=harness.modern_headers("tools/call", "echo"))
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_status_down(env):
    run_dir = Path(env["WARDEN_RUN_DIR"])
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/mcp"

    up = gateway(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"Gateway URL: {url}" in up.stdout
    assert "curl -sS " + url in up.stdout and "Mcp-Name: echo" in up.stdout
    pids = {p.stem: int(p.read_text()) for p in (run_dir / "pids").glob("*.pid")}
    assert pids.keys() == {"traces", "upstream", "sink", "envoy"}
    assert all(pid_alive(p) for p in pids.values())
    assert (run_dir / "logs" / "envoy.log").is_file() and (run_dir / "logs" / "upstream.log").is_file()

    # `up` has exited; the gateway keeps serving, through the filter.
    assert echo_through(url, "after up")["result"]["structuredContent"] == {"result": "after up"}

    # The README's story: the call left a signed receipt at the local sink that both verifiers accept.
    public = next(line.split("--key ")[1].split()[0] for line in up.stdout.splitlines() if "warden verify" in line)
    deadline = time.monotonic() + 30
    chains: list[Path] = []
    while time.monotonic() < deadline:
        chains = list((run_dir / "receipts").glob("*.jsonl"))
        if chains and any('"target":"' in l and "/echo" in l for l in chains[0].read_text().splitlines()):
            break
        time.sleep(0.2)
    assert len(chains) == 1, chains
    ours = subprocess.run([str(harness.ROOT / "target/release/warden"), "verify", str(chains[0]), "--key", public],
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    theirs = subprocess.run([str(harness.VENV_BIN / "pipelock-verify"), "--key", public, str(chains[0])],
                            capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0 and "CHAIN VALID" in theirs.stdout, theirs.stdout + theirs.stderr
    # A call carrying the agent's trace context: Envoy's span and the demo server's land in
    # traces.jsonl, both in the agent's trace.
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = echo_through(url, "traced", traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    assert traced["result"]["structuredContent"] == {"result": "traced"}
    deadline = time.monotonic() + 30
    services: set = set()
    while time.monotonic() < deadline and services != {"mcp-warden-gateway", "mcp-warden-demo"}:
        spans = [json.loads(l) for l in (run_dir / "traces.jsonl").read_text().splitlines()] \
            if (run_dir / "traces.jsonl").is_file() else []
        services = {s["resource"].get("service.name") for s in spans if s["trace_id"] == trace}
        time.sleep(0.2)
    assert services == {"mcp-warden-gateway", "mcp-warden-demo"}, services

    again = gateway(env, "up")
    assert again.returncode == 0 and "already running" in again.stdout
    assert {p.stem: int(p.read_text()) for p in (run_dir / "pids").glob("*.pid")} == pids
    assert gateway(env, "status").returncode == 0

    down = gateway(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(p) for p in pids.values())
    assert not list((run_dir / "pids").glob("*.pid"))
    # Idempotent.
    down2 = gateway(env, "down")
    assert down2.returncode == 0 and "nothing running" in down2.stdout
    assert gateway(env, "status").returncode == 3


def test_up_refuses_busy_port(env):
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", int(env["GATEWAY_PORT"])))
        s.listen()
        up = gateway(env, "up")
    assert up.returncode == 1
    assert f"GATEWAY_PORT={env['GATEWAY_PORT']}" in up.stderr
    assert not list((Path(env["WARDEN_RUN_DIR"]) / "pids").glob("*.pid"))


def test_run_foreground_stops_everything_on_ctrl_c(env):
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/mcp"
    proc = subprocess.Popen([str(harness.PYTHON), str(SCRIPT), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Gateway URL:"):
                break
        assert lines and lines[-1].strip() == f"Gateway URL: {url}", "".join(lines)
        run_dir = Path(env["WARDEN_RUN_DIR"])
        pids = {p.stem: int(p.read_text()) for p in (run_dir / "pids").glob("*.pid")}
        assert pids.keys() == {"traces", "upstream", "sink", "envoy"}
        assert echo_through(url, "foreground")["result"]["structuredContent"] == {"result": "foreground"}

        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + out
    assert "stopped envoy" in out and "stopped sink" in out and "stopped upstream" in out
    assert not any(pid_alive(p) for p in pids.values())
    assert not list((run_dir / "pids").glob("*.pid"))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
