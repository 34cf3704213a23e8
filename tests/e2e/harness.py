"""Shared e2e harness: start real processes (Envoy, MCP upstreams, sinks), wait for them, stop
them by PID. Every test run picks free ports, so several runs can share a machine.

Used by every file under tests/e2e/ (through conftest.py fixtures) and by scripts/gateway.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from render_envoy import render  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
ENVOY = VENV_BIN / "envoy"
PYTHON = VENV_BIN / "python"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "mcp_warden.wasm"
WASM_FAULT = ROOT / "target" / "fault-injection" / "wasm32-wasip1" / "release" / "mcp_warden.wasm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before listening on {port}\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s" + (f"\n{proc.tail()}" if proc else ""))


class Proc:
    """A child process with its own log file, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, env: dict | None = None, cwd: Path = ROOT):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=full_env,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        self._log.close()


def render_envoy(template: str | Path, out_dir: Path, ports: dict[str, int], wasm: Path | None = None,
                 replace: dict[str, str] | None = None) -> Path:
    """Render an envoy/*.yaml with the given ports (keys: GATEWAY_PORT, ADMIN_PORT, UPSTREAM_PORT,
    SINK_PORT) and optional extra literal replacements; return the rendered file's path."""
    template = ROOT / template if not Path(template).is_absolute() else Path(template)
    env = {k: str(v) for k, v in ports.items()}
    if wasm is not None:
        env["WARDEN_WASM"] = str(wasm)
    text = render(template.read_text(), env)
    for old, new in (replace or {}).items():
        if old not in text:
            raise ValueError(f"{old!r} not found in {template}")
        text = text.replace(old, new)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{template.stem}.rendered.yaml"
    out.write_text(text)
    return out


def start_envoy(config: Path, admin_port: int, log_dir: Path, name: str = "envoy",
                concurrency: int = 1, extra_args: list[str] | None = None) -> Proc:
    """Start Envoy and wait until its admin /ready says LIVE."""
    cmd = [str(ENVOY), "-c", str(config), "--concurrency", str(concurrency), "--base-id", str(admin_port),
           "-l", "info", *(extra_args or [])]
    proc = Proc(name, cmd, log_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"envoy exited with {proc.popen.returncode}\n{proc.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.stop()
    raise TimeoutError(f"envoy not ready after 60s\n{proc.tail()}")


def envoy_stats(admin_port: int, filter_regex: str = "") -> dict[str, int]:
    """Counter and gauge values from Envoy's admin /stats (name -> int)."""
    url = f"http://127.0.0.1:{admin_port}/stats?format=json"
    if filter_regex:
        url += "&filter=" + urllib.request.quote(filter_regex)
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    return {s["name"]: s["value"] for s in data.get("stats", []) if isinstance(s.get("value"), int)}
