#!/usr/bin/env python3
"""Run the mcp-warden demo gateway: the demo MCP upstream, then Envoy with the filter.

    gateway.py run     in the foreground; Ctrl-C stops everything (by PID)
    gateway.py up      in the background; returns once /mcp answers through Envoy
    gateway.py down    stops what `up` (or `run`) started, by PID; idempotent
    gateway.py status  says what is running

`make run`, `make up` and `make down` call this. Ports come from the environment:
GATEWAY_PORT (10000), ADMIN_PORT (9901), UPSTREAM_PORT (8080), SINK_PORT (4317), TRACE_PORT (4319).
Other knobs: ENVOY_CONFIG (envoy/local.yaml), WARDEN_RUN_DIR (.run: pids/*.pid, logs/*.log).

What runs is the SERVICES list below, started in order and stopped in reverse order.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
from wardenkit import harness

PORT_DEFAULTS = {"GATEWAY_PORT": 10000, "ADMIN_PORT": 9901, "UPSTREAM_PORT": 8080, "SINK_PORT": 4317,
                 "TRACE_PORT": 4319}


@dataclass
class Ctx:
    ports: dict[str, int]
    run_dir: Path
    envoy_config: Path

    @property
    def pid_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}/mcp"


@dataclass
class Service:
    """One process of the demo, started in list order and ready before the next one starts.

    Either give `argv` (+ `ready_port`: the port it listens on when ready), or a custom `start`
    that returns a harness.Proc that is already serving. `ports` are checked to be free first.
    `marker` must appear in the process's command line: `down` never signals a PID whose command
    line lacks it (the PID may have been reused since `up`)."""
    name: str
    ports: list[str]
    marker: str
    argv: Callable[[Ctx], list[str]] | None = None
    ready_port: str | None = None
    start: Callable[[Ctx], harness.Proc] | None = None
    describe: Callable[[Ctx], str] = field(default=lambda ctx: "")

    def launch(self, ctx: Ctx) -> harness.Proc:
        if self.start is not None:
            return self.start(ctx)
        assert self.argv is not None, f"service {self.name}: give argv or start"
        proc = harness.Proc(self.name, self.argv(ctx), ctx.log_dir)
        try:
            if self.ready_port:
                harness.wait_port(ctx.ports[self.ready_port], timeout=30, proc=proc)
        except Exception:
            proc.stop()
            raise
        return proc


def _start_upstream(ctx: Ctx) -> harness.Proc:
    # The demo server's own MCP spans join the agent's trace at the same receiver as Envoy's.
    return harness.start_demo_upstream(ctx.ports["UPSTREAM_PORT"], ctx.log_dir, name="upstream",
                                       otlp=f"127.0.0.1:{ctx.ports['TRACE_PORT']}")


WARDEN = harness.WARDEN


def signing_key(ctx: Ctx) -> tuple[str, str]:
    """The demo's receipt-signing key: made once with `warden keygen` under .run/keys/ (0600),
    reused afterwards. Returns (seed hex for WARDEN_SIGNING_KEY, public key hex)."""
    key = ctx.run_dir / "keys" / "receipt-signing.key"
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(WARDEN), "keygen", "--out", str(key)], check=True, capture_output=True)
    env_line = subprocess.run([str(WARDEN), "keygen", "--env", "--key", str(key)], check=True,
                              capture_output=True, text=True).stdout.strip()
    public = subprocess.run([str(WARDEN), "keygen", "--public", "--key", str(key)], check=True,
                            capture_output=True, text=True).stdout.strip()
    return env_line.split("=", 1)[1], public


def _start_envoy(ctx: Ctx) -> harness.Proc:
    if not harness.WASM.is_file():
        raise RuntimeError(f"{harness.WASM} is missing: build the filter first (`make build`)")
    # The receipt writer VM reads its key from Envoy's environment (vm_config.environment_variables).
    os.environ["WARDEN_SIGNING_KEY"], _ = signing_key(ctx)
    # The filter VM reads the key that seals `confirm` questions the same way (README "Confirm");
    # one Envoy here, so a fresh key per run is enough (open questions end with the run).
    os.environ.setdefault("WARDEN_CONFIRM_KEY", secrets.token_hex(32))
    config = harness.render_envoy(ctx.envoy_config, ctx.run_dir, ctx.ports, wasm=harness.WASM)
    # --disable-hot-restart: with hot restart on, Envoy sets PR_SET_PDEATHSIG(SIGTERM) and so dies
    # as soon as its parent exits, which is exactly what `up` does after starting it.
    proc = harness.start_envoy(config, ctx.ports["ADMIN_PORT"], ctx.log_dir, name="envoy",
                               extra_args=["--disable-hot-restart"])
    try:
        harness.wait_mcp(ctx.gateway_url, timeout=30, proc=proc)
    except Exception:
        proc.stop()
        raise
    return proc


SERVICES: list[Service] = [
    # Spans of traced MCP requests (Envoy's tracing hop, the demo server), as JSON lines.
    Service("traces", ["TRACE_PORT"], marker="wardenkit.otlp", ready_port="TRACE_PORT",
            argv=lambda c: [str(harness.PYTHON), "-m", "wardenkit.otlp",
                            "--listen", f"127.0.0.1:{c.ports['TRACE_PORT']}", "--out", str(c.run_dir / "traces.jsonl")],
            describe=lambda c: f"trace receiver  127.0.0.1:{c.ports['TRACE_PORT']} -> {c.run_dir / 'traces.jsonl'}"),
    Service("upstream", ["UPSTREAM_PORT"], marker="demo/upstream.py", start=_start_upstream,
            describe=lambda c: f"demo MCP upstream  http://127.0.0.1:{c.ports['UPSTREAM_PORT']}/mcp"),
    # The receipt sink starts before Envoy, so the writer's first export finds it listening.
    Service("sink", ["SINK_PORT"], marker="warden", ready_port="SINK_PORT",
            argv=lambda c: [str(WARDEN), "sink",
                            "--listen", f"127.0.0.1:{c.ports['SINK_PORT']}", "--out", str(c.run_dir / "receipts")],
            describe=lambda c: f"receipt sink  127.0.0.1:{c.ports['SINK_PORT']} -> {c.run_dir / 'receipts'}/"),
    Service("envoy", ["GATEWAY_PORT", "ADMIN_PORT"], marker="envoy", start=_start_envoy,
            describe=lambda c: f"Envoy + mcp-warden {c.gateway_url}  (admin http://127.0.0.1:{c.ports['ADMIN_PORT']})"),
]


# --- PID files --------------------------------------------------------------------------------


def _pid_file(ctx: Ctx, svc: Service) -> Path:
    return ctx.pid_dir / f"{svc.name}.pid"


def _alive(pid: int, marker: str) -> bool:
    """True if `pid` runs (not a zombie) and its command line contains `marker`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and marker in cmdline


def _running(ctx: Ctx, svc: Service) -> int | None:
    try:
        pid = int(_pid_file(ctx, svc).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, svc.marker) else None


def _stop_pid(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM the process group of `pid` (each service leads its own session), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid, marker):
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid, marker):
            time.sleep(0.05)


def _write_state(ctx: Ctx, svc: Service, proc: harness.Proc) -> None:
    ctx.pid_dir.mkdir(parents=True, exist_ok=True)
    _pid_file(ctx, svc).write_text(f"{proc.pid}\n")


def _write_env(ctx: Ctx) -> None:
    (ctx.run_dir / "gateway.json").write_text(json.dumps({"ports": ctx.ports, "url": ctx.gateway_url}, indent=2))


# --- commands ---------------------------------------------------------------------------------


def _ctx() -> Ctx:
    ports = {k: int(os.environ.get(k, v)) for k, v in PORT_DEFAULTS.items()}
    run_dir = Path(os.environ.get("WARDEN_RUN_DIR", ROOT / ".run")).resolve()
    config = Path(os.environ.get("ENVOY_CONFIG", "envoy/local.yaml"))
    return Ctx(ports, run_dir, config if config.is_absolute() else ROOT / config)


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _example(ctx: Ctx) -> str:
    url = ctx.gateway_url
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},'
            '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
            '"io.modelcontextprotocol/clientCapabilities":{}}}}')
    common = ("  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n"
              "  -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' ")
    return (f"Try a 2026-07-28 tools/call through the gateway:\n\n"
            f"curl -sS {url} \\\n{common}-H 'Mcp-Name: echo' \\\n  -d '{body}'\n\n"
            f"The same with a lying Mcp-Name is rejected by mcp-warden (HTTP 400, JSON-RPC -32020):\n\n"
            f"curl -sS {url} \\\n{common}-H 'Mcp-Name: not-echo' \\\n  -d '{body}'\n\n"
            f"Python client:  .venv/bin/python -c \"import asyncio; from mcp import Client\n"
            f"async def m():\n"
            f"    async with Client('{url}') as c: print((await c.call_tool('echo', {{'text': 'hi'}})).structured_content)\n"
            f"asyncio.run(m())\"\n")


def _banner(ctx: Ctx, started: list[tuple[Service, harness.Proc]], foreground: bool) -> str:
    lines = ["", "mcp-warden demo gateway is ready:"]
    for svc, proc in started:
        lines.append(f"  {svc.name:<9} pid {proc.pid:<7} {svc.describe(ctx)}")
    lines += [f"  logs      {ctx.log_dir}/", "", f"Gateway URL: {ctx.gateway_url}", "", _example(ctx)]
    if any(svc.name == "sink" for svc, _ in started):
        _, public = signing_key(ctx)
        receipts = ctx.run_dir / "receipts"
        lines += ["Signed receipts of every decision land in " + f"{receipts}/<chain>.jsonl; verify them offline:",
                  f"  target/release/warden verify {receipts}/<chain>.jsonl --key {public}",
                  f"  .venv/bin/pipelock-verify --key {public} {receipts}/<chain>.jsonl", ""]
    lines.append("Press Ctrl-C to stop." if foreground else "Stop it with: make down")
    return "\n".join(lines)


def _start_all(ctx: Ctx) -> list[tuple[Service, harness.Proc]]:
    busy = [f"{k}={ctx.ports[k]}" for svc in SERVICES for k in svc.ports if _port_busy(ctx.ports[k])]
    if busy:
        raise RuntimeError(f"port(s) already in use: {', '.join(busy)}. Another gateway running? "
                           "Try `make down`, or set other ports, e.g. GATEWAY_PORT=10001 ADMIN_PORT=9902 "
                           "UPSTREAM_PORT=8081.")
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    started: list[tuple[Service, harness.Proc]] = []
    try:
        for svc in SERVICES:
            print(f"starting {svc.name} ...", flush=True)
            proc = svc.launch(ctx)
            started.append((svc, proc))
            _write_state(ctx, svc, proc)
    except BaseException:
        _stop_started(ctx, started)
        raise
    _write_env(ctx)
    return started


def _stop_started(ctx: Ctx, started: list[tuple[Service, harness.Proc]]) -> None:
    for svc, proc in reversed(started):
        proc.stop()
        _pid_file(ctx, svc).unlink(missing_ok=True)


def cmd_up(ctx: Ctx) -> int:
    running = [(svc, pid) for svc in SERVICES if (pid := _running(ctx, svc))]
    if running and len(running) == len(SERVICES):
        print(f"already running ({', '.join(f'{s.name} pid {p}' for s, p in running)}): {ctx.gateway_url}")
        return 0
    if running:
        print("a previous gateway is partly running; stopping it first")
        cmd_down(ctx)
    try:
        started = _start_all(ctx)
    except Exception as e:  # noqa: BLE001 - report and fail
        print(f"gateway failed to start: {e}", file=sys.stderr)
        return 1
    print(_banner(ctx, started, foreground=False), flush=True)
    return 0


def cmd_run(ctx: Ctx) -> int:
    if any(_running(ctx, svc) for svc in SERVICES):
        print("a gateway started by `make up` is running; stop it with `make down` first", file=sys.stderr)
        return 1
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        started = _start_all(ctx)
    except Exception as e:  # noqa: BLE001
        print(f"gateway failed to start: {e}", file=sys.stderr)
        return 1
    print(_banner(ctx, started, foreground=True), flush=True)
    code = 0
    while stop["signal"] is None:
        dead = [(svc, proc) for svc, proc in started if proc.popen.poll() is not None]
        if dead:
            for svc, proc in dead:
                print(f"{svc.name} exited with {proc.popen.returncode}\n{proc.tail(40)}", file=sys.stderr)
            code = 1
            break
        time.sleep(0.2)
    print("\nstopping ...", flush=True)
    _stop_started(ctx, started)
    for svc, proc in reversed(started):
        print(f"  stopped {svc.name} (pid {proc.pid})")
    return code


def cmd_down(ctx: Ctx) -> int:
    stopped = 0
    for svc in reversed(SERVICES):
        pid_file = _pid_file(ctx, svc)
        pid = _running(ctx, svc)
        if pid is not None:
            _stop_pid(pid, svc.marker)
            print(f"stopped {svc.name} (pid {pid})")
            stopped += 1
        pid_file.unlink(missing_ok=True)
    (ctx.run_dir / "gateway.json").unlink(missing_ok=True)
    if not stopped:
        print("nothing running")
    return 0


def cmd_status(ctx: Ctx) -> int:
    any_running = False
    for svc in SERVICES:
        pid = _running(ctx, svc)
        any_running |= pid is not None
        print(f"{svc.name:<9} {'pid ' + str(pid) if pid else 'not running'}")
    if any_running:
        print(f"gateway URL: {ctx.gateway_url}")
    return 0 if any_running else 3


def main(argv: list[str]) -> int:
    commands = {"run": cmd_run, "up": cmd_up, "down": cmd_down, "status": cmd_status}
    if len(argv) != 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[1]](_ctx())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
