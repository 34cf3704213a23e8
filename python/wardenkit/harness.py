"""Start real processes (Envoy, MCP upstreams, sinks), wait for them, stop them by PID. Every
test run picks free ports, so several runs can share a machine.

Used by every file under tests/e2e/ (through conftest.py fixtures), tests/conformance,
scripts/gateway.py and bench/receipts.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from wardenkit.render import render

ROOT = Path(__file__).resolve().parents[2]

VENV_BIN = ROOT / ".venv" / "bin"
ENVOY = VENV_BIN / "envoy"
PYTHON = VENV_BIN / "python"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "mcp_warden.wasm"
WASM_FAULT = ROOT / "target" / "fault-injection" / "wasm32-wasip1" / "release" / "mcp_warden.wasm"
# The host tools (keygen, verify, sink, control); WARDEN_BIN overrides the path.
WARDEN = Path(os.environ.get("WARDEN_BIN", ROOT / "target" / "release" / "warden"))


# sha256("pipelock-conformance-test-key-v1"): ../shared/fixtures/pipelock-conformance/test-key.json.
TEST_SIGNING_SEED = "c8ee65622000420b20ff7ec4e790006b7883ddfd3823ff9ccc2fc050c389bd48"
TEST_SIGNING_PUBLIC = "4655a7e605c12ebb00a46037881c33c5bca5eb74b45a02e8e7261a7ff5a21678"
# sha256("mcp-warden-confirm-test-key-v1"): the tests' confirmation key (never a production key).
TEST_CONFIRM_KEY = "213e37ababa50e7f389f47f12fc6664ca6f6edc7dfec892d4779d56d813f4257"


_ISSUED_PORTS: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and never one this process handed out before: the kernel
    may offer a just-closed ephemeral port again, and two of one test's ports were once the same
    (Envoy's admin took it, its listener could not bind)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ISSUED_PORTS:
            _ISSUED_PORTS.add(port)
            return port


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

    def stop(self, timeout: float = 10.0, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with `kill`) to the process group, SIGKILL after `timeout`."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        self._log.close()

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far, from /proc/<pid>/stat (fields 14, 15)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
                concurrency: int = 1, extra_args: list[str] | None = None,
                prefix: list[str] | None = None) -> Proc:
    """Start Envoy and wait until its admin /ready says LIVE. `prefix`: a command that execs
    Envoy (e.g. `taskset -c 0`: the pid stays Envoy's)."""
    cmd = [*(prefix or []), str(ENVOY), "-c", str(config), "--concurrency", str(concurrency), "--base-id", str(admin_port),
           "-l", "info", *(extra_args or [])]
    # Configs with the receipt writer need a signing key in Envoy's environment; tests that do not
    # bring their own get the published pipelock conformance TEST key (never a production key).
    env = {} if os.environ.get("WARDEN_SIGNING_KEY") else {"WARDEN_SIGNING_KEY": TEST_SIGNING_SEED}
    # Configs whose policy asks for confirmations need the key that seals the questions; every
    # gateway a test starts gets the same one (so a second Envoy is a replica of the first).
    if not os.environ.get("WARDEN_CONFIRM_KEY"):
        env["WARDEN_CONFIRM_KEY"] = TEST_CONFIRM_KEY
    proc = Proc(name, cmd, log_dir, env=env)
    try:
        wait_envoy_ready(proc, admin_port)
    except TimeoutError:
        proc.stop()
        raise
    return proc


def wait_envoy_ready(proc: Proc, admin_port: int, timeout: float = 60.0) -> None:
    """Until Envoy's admin /ready answers 200; RuntimeError if it exits, TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name}: envoy exited with {proc.popen.returncode}\n{proc.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{proc.name}: envoy not ready after {timeout}s\n{proc.tail()}")


def envoy_stats(admin_port: int, filter_regex: str = "") -> dict[str, int]:
    """Counter and gauge values from Envoy's admin /stats (name -> int)."""
    url = f"http://127.0.0.1:{admin_port}/stats?format=json"
    if filter_regex:
        url += "&filter=" + urllib.request.quote(filter_regex)
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    return {s["name"]: s["value"] for s in data.get("stats", []) if isinstance(s.get("value"), int)}


# --- additions for the demo upstream, plugin-config overrides and HTTP readiness -------------

DEMO_UPSTREAM = ROOT / "demo" / "upstream.py"

# Every process started through start_demo_upstream / the conftest fixtures is listed here
# while it runs, so a failing test can attach the tail of each live log to its report.
LIVE_PROCS: list[Proc] = []

MODERN_VERSION = "2026-07-28"


def modern_meta(capabilities: dict | None = None, **extra) -> dict:
    """The `_meta` every 2026-07-28 request carries."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "mcp-warden-e2e", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities if capabilities is not None else {},
    }
    meta.update(extra)
    return meta


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    """HTTP headers of a well-formed 2026-07-28 POST (routing headers mirror the body)."""
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
    if name is not None:
        h["Mcp-Name"] = name
    h.update(extra)
    return h


def tools_call(url: str, rid: str, tool: str, arguments: dict | None = None, meta: dict | None = None,
               headers: dict | None = None, header_name: str | None = None, timeout: float = 20.0) -> tuple[int, dict]:
    """One raw 2026-07-28 `tools/call` (`meta` added to the standard `_meta`; `header_name` sent
    as `Mcp-Name` instead of the tool's): (HTTP status, the JSON answer or {} when it is none)."""
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments if arguments is not None else {"text": rid},
        "_meta": modern_meta(**(meta or {}))}}).encode()
    h = modern_headers("tools/call", header_name or tool, **(headers or {}))
    req = urllib.request.Request(url, data=body, method="POST", headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError:
        return status, {}


def mcp_post_ok(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers a well-formed 2026-07-28 server/discover with HTTP 200."""
    body = json.dumps({"jsonrpc": "2.0", "id": "ready", "method": "server/discover",
                       "params": {"_meta": modern_meta()}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=modern_headers("server/discover"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def wait_mcp(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """Wait until an MCP endpoint answers server/discover with 200 (through Envoy or direct)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}\n{proc.tail()}")
        if mcp_post_ok(url):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer server/discover with 200 after {timeout}s"
                       + (f"\n{proc.tail()}" if proc else ""))


def wait_for(what: str, cond, timeout: float = 60.0, gw=None):
    """Polls `cond()` until it returns a truthy value (returned), for at most `timeout` s; the
    failure names `what` and shows the gateway's log tail when `gw` is given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{gw.log_tail()}" if gw else ""))


def receipt_counters(admin_port: int, stat_prefix: str) -> dict[str, int]:
    """The receipt writer's counters, the requests Envoy completed on the HTTP connection manager
    `stat_prefix`, and `server.memory_allocated` (the benches' view of the writer)."""
    s = envoy_stats(admin_port, r"mcp_warden_receipt|downstream_rq_completed|memory_allocated")
    names = {"signed": "receipts_signed_total", "exported": "receipts_exported_total",
             "dropped": "receipts_dropped_total", "unqueued": "receipts_unqueued_total",
             "digested": "receipts_digested_total", "checkpoints": "receipt_checkpoints_total",
             "export_failures": "receipt_export_failures_total"}
    out = {k: s.get(f"wasmcustom.mcp_warden_{v}", 0) for k, v in names.items()}
    out["completed"] = s.get(f"http.{stat_prefix}.downstream_rq_completed", 0)
    out["memory_allocated"] = s.get("server.memory_allocated", 0)
    return out


def receipts_covered(c: dict) -> int:
    """Exchanges the writer has dealt with, from `receipt_counters`: signed on their own (not the
    chain-open, not the checkpoints), digested into a checkpoint batch, or dropped and counted."""
    own = c["signed"] - (1 if c["signed"] else 0) - c["checkpoints"]
    return own + c["digested"] + c["dropped"]


def receipts_all_out(c: dict) -> bool:
    """Every completed request's exchange dealt with, and everything made of them exported."""
    return receipts_covered(c) >= c["completed"] and c["exported"] >= c["signed"] + c["digested"]


def warden_stat(gw, name: str) -> int:
    """The filter's counter `mcp_warden_<name>` on gateway `gw` (0 until it first counts)."""
    return gw.stats(f"mcp_warden_{name}").get(f"wasmcustom.mcp_warden_{name}", 0)


@contextlib.contextmanager
def mcp_upstream(name: str, argv: list[str], log_dir: Path):
    """Runs an MCP server script (`argv`, to which `--port N` is added) on a free port, waits
    until /mcp answers, yields the port, stops it by PID; its log is attached to a failing test."""
    port = free_port()
    proc = Proc(name, [*argv, "--port", str(port)], log_dir)
    LIVE_PROCS.append(proc)
    try:
        wait_port(port, proc=proc)
        wait_mcp(f"http://127.0.0.1:{port}/mcp", proc=proc)
        yield port
    finally:
        LIVE_PROCS.remove(proc)
        proc.stop()


def start_demo_upstream(port: int, log_dir: Path, name: str = "upstream", otlp: str | None = None) -> Proc:
    """Start demo/upstream.py on 127.0.0.1:`port` and wait until /mcp answers; with `otlp`
    (host:port) it exports the MCP SDK's server spans there."""
    argv = [str(PYTHON), str(DEMO_UPSTREAM), "--port", str(port)] + (["--otlp", otlp] if otlp else [])
    proc = Proc(name, argv, log_dir, env={"PYTHONUNBUFFERED": "1"})
    try:
        wait_port(port, timeout=30, proc=proc)
        wait_mcp(f"http://127.0.0.1:{port}/mcp", timeout=30, proc=proc)
    except Exception:
        proc.stop()
        raise
    return proc


def set_plugin_config(yaml_text: str, config: dict, occurrence: int = 0) -> str:
    """Replace the JSON plugin configuration (`value: |` block under a
    google.protobuf.StringValue) of the `occurrence`-th mcp-warden *filter* block in an Envoy YAML
    (the receipt writer's block, root_id mcp-warden-writer, is never counted)."""
    lines = yaml_text.split("\n")
    seen = -1
    root_id = ""
    for i, line in enumerate(lines):
        if line.strip().startswith("root_id:"):
            root_id = line.split(":", 1)[1].strip()
        if "type.googleapis.com/google.protobuf.StringValue" not in line or root_id == "mcp-warden-writer":
            continue
        seen += 1
        if seen != occurrence:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("value:"):
            j += 1
        if j == len(lines):
            break
        head = lines[j]
        value_indent = len(head) - len(head.lstrip())
        k = j + 1
        block_indent = None
        while k < len(lines):
            stripped = lines[k].strip()
            indent = len(lines[k]) - len(lines[k].lstrip())
            if stripped and indent <= value_indent:
                break
            if stripped and block_indent is None:
                block_indent = indent
            k += 1
        pad = " " * (block_indent if block_indent is not None else value_indent + 2)
        body = [pad + ln for ln in json.dumps(config, indent=2).split("\n")]
        new_head = head[:value_indent] + "value: |"
        return "\n".join(lines[:j] + [new_head] + body + lines[k:])
    raise ValueError(f"no StringValue plugin configuration #{occurrence} found")


def render_envoy_config(template: str | Path, out_dir: Path, ports: dict[str, int], wasm: Path | None = None,
                        replace: dict[str, str] | None = None, plugin_config: dict | None = None) -> Path:
    """render_envoy plus an optional plugin configuration override (a dict, written as JSON)."""
    out = render_envoy(template, out_dir, ports, wasm=wasm, replace=replace)
    if plugin_config is not None:
        out.write_text(set_plugin_config(out.read_text(), plugin_config))
    return out


def header_values(recorded: dict, name: str) -> list[bytes]:
    """All values of a header as the recording upstream received them (exact bytes)."""
    return [v.encode("latin-1") for k, v in recorded["headers"] if k == name]


class Recorder:
    """tests/e2e/recording_upstream.py on a free port: what the upstream received."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.proc = Proc("recorder", [str(PYTHON), str(ROOT / "tests" / "e2e" / "recording_upstream.py"),
                                      "--port", str(self.port)], log_dir)
        wait_port(self.port, proc=self.proc)

    def requests(self, case_id: str | None = None) -> list[dict]:
        """Every request received, or only those of one corpus case (header `x-corpus-case`)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__recorder/requests", timeout=10) as r:
            reqs = json.load(r)["requests"]
        if case_id is None:
            return reqs
        return [q for q in reqs if header_values(q, "x-corpus-case") == [case_id.encode()]]

    def last(self) -> dict:
        reqs = self.requests()
        assert reqs, "the upstream received nothing"
        return reqs[-1]

    def stop(self) -> None:
        self.proc.stop()
