"""A real Envoy global rate limit service for a test: Redis + warden-rls (tests/rls/).

    with RlsService([{"namespace": "mcp", "max_value": 3, "seconds": 60,
                      "variables": ["principal"], "name": "per-principal"}], workdir=tmp_path) as rls:
        rls.addr                     # "127.0.0.1:PORT", the gRPC address for Envoy's rate limit cluster
        rls.probe("mcp", {"principal": "alice"})   # one ShouldRateLimit call through rls-probe
        rls.redis_flush()            # every counter reset
        rls.stop_rls(); ...; rls.start_rls()       # the RLS down and back, on the same port

Limits are limitador limits (tests/rls/src/main.rs): `namespace` is the request's domain,
`variables` and `conditions` are CEL over the descriptor entries (each entry key is a variable).
`limits` may be changed between `stop_rls()` and `start_rls()`. Counters live in Redis, so they
survive an RLS restart; `memory=True` keeps them in warden-rls instead (no Redis at all).

Needs `make rls deps-redis` (target/rls/release/warden-rls, .deps/redis/bin/redis-server).
Standard library only; processes are stopped by PID; logs go to `workdir` (`log_tail()`).
"""
from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RLS_BIN = ROOT / "target" / "rls" / "release" / "warden-rls"
RLS_PROBE = ROOT / "target" / "rls" / "release" / "rls-probe"
REDIS_SERVER = ROOT / ".deps" / "redis" / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require(path: Path) -> None:
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: build it with `make rls deps-redis`")


def _stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RlsService:
    def __init__(self, limits: list[dict], workdir: Path | None = None, verbose: bool = False,
                 memory: bool = False):
        self.limits = limits
        self.verbose = verbose
        self.memory = memory
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rls-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rls_port = free_port()
        self.redis_port = None if memory else free_port()
        self.redis: subprocess.Popen | None = None
        self.rls: subprocess.Popen | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.rls_port}"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> "RlsService":
        try:
            if not self.memory:
                self.start_redis()
            self.start_rls()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> "RlsService":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_redis(self, timeout: float = 10.0) -> None:
        _require(REDIS_SERVER)
        data = self.workdir / "redis-data"
        data.mkdir(exist_ok=True)
        cmd = [str(REDIS_SERVER), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(data)]
        with open(self.workdir / "redis.log", "ab") as log:
            self.redis = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.redis_command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not come up:\n{self.log_tail('redis.log')}")
            time.sleep(0.05)

    def start_rls(self, timeout: float = 10.0) -> None:
        """warden-rls on `rls_port` with `limits` (written to workdir/limits.json now)."""
        _require(RLS_BIN)
        limits_file = self.workdir / "limits.json"
        limits_file.write_text(json.dumps(self.limits, indent=1))
        store = ["--memory"] if self.memory else ["--redis", f"redis://127.0.0.1:{self.redis_port}"]
        cmd = [str(RLS_BIN), "--listen", self.addr, "--limits", str(limits_file), *store]
        if self.verbose:
            cmd.append("--verbose")
        with open(self.workdir / "rls.log", "ab") as log:
            self.rls = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.rls_port), timeout=0.5):
                    return
            except OSError:
                pass
            if self.rls.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"warden-rls did not come up:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop_rls(self) -> None:
        """The RLS down (Redis and its counters stay); `start_rls()` brings it back on the same port."""
        _stop(self.rls)
        self.rls = None

    def stop_redis(self) -> None:
        _stop(self.redis)
        self.redis = None

    def stop(self) -> None:
        self.stop_rls()
        self.stop_redis()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- Redis ----------------------------------------------------------------------------

    def redis_command(self, *args: str, timeout: float = 2.0) -> bytes:
        """One command in RESP over a raw socket; the reply's first line (e.g. b"+OK", b":3")."""
        if self.redis_port is None:
            raise RuntimeError("memory=True: there is no Redis")
        req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=timeout) as s:
            s.sendall(req)
            reply = b""
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    def redis_flush(self) -> None:
        """Every counter reset (FLUSHALL)."""
        reply = self.redis_command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL: {reply!r}")

    # --- calls and logs -------------------------------------------------------------------

    def probe(self, domain: str, *descriptors: dict[str, str], hits: int | None = None,
              descriptor_hits: list[int | None] | None = None, timeout_ms: int = 2000) -> dict:
        """One ShouldRateLimit call (tests/rls/src/bin/rls-probe.rs): one dict of entries per
        descriptor. Returns rls-probe's JSON: `{"overall_code": "OK" | "OVER_LIMIT", "statuses":
        [{"code", "limit", "limit_remaining", "reset_ms"}]}`, or `{"error", "grpc_code"?}` when
        the call fails (RLS down: no `grpc_code`; Redis down: `"grpc_code": "Unavailable"`)."""
        _require(RLS_PROBE)
        cmd = [str(RLS_PROBE), "--addr", self.addr, "--domain", domain, "--timeout-ms", str(timeout_ms)]
        if hits is not None:
            cmd += ["--hits", str(hits)]
        for i, entries in enumerate(descriptors):
            if i:
                cmd.append("--next-descriptor")
            for k, v in entries.items():
                cmd += ["--entry", f"{k}={v}"]
            if descriptor_hits and i < len(descriptor_hits) and descriptor_hits[i] is not None:
                cmd += ["--descriptor-hits", str(descriptor_hits[i])]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_ms / 1000 + 10)
        if out.returncode == 2 or not out.stdout.strip():
            raise RuntimeError(f"rls-probe {cmd[1:]}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def log_tail(self, name: str = "rls.log", lines: int = 40) -> str:
        path = self.workdir / name
        if not path.is_file():
            return f"({name}: no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
