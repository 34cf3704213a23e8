"""Shared pytest fixtures for the real-Envoy e2e layer (tests/e2e/).

- `wasm`            (session) path of the built filter; fails with a clear message if missing.
- `demo_upstream`   (session) demo/upstream.py on a free port: `.port`, `.url`, `.proc`.
- `gateway`         (function) factory: `gateway(template="envoy/local.yaml", upstream_port=...,
                    plugin_config=None, replace=None, wasm=None, extra_ports=None)` renders the
                    config with free ports, starts Envoy, waits for /ready and returns a `Gateway`
                    (`.url`, `.port`, `.admin_port`, `.log_tail()`, `.stats()`). Stopped after the test.
- `module_gateway`  (module) the same factory, for gateways shared by a whole test module.

On a failing test the tail of every live process log (Envoy, upstream) is attached to the report.
The test clients' HTTP/2 transport gets a fix for a stall of its own (h2_read_lock_fix.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wardenkit import harness

import h2_read_lock_fix

h2_read_lock_fix.install()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    """A recording upstream (tests/e2e/recording_upstream.py) for the module's gateways."""
    r = harness.Recorder(tmp_path_factory.mktemp("recorder"))
    harness.LIVE_PROCS.append(r.proc)
    yield r
    harness.LIVE_PROCS.remove(r.proc)
    r.stop()


@pytest.fixture(scope="session")
def warden() -> Path:
    """The host tools binary, built by `make build`."""
    if not harness.WARDEN.is_file():
        pytest.fail(f"{harness.WARDEN} is missing: build it with `make build` (cargo build --release -p warden-cli)",
                    pytrace=False)
    return harness.WARDEN


@pytest.fixture(scope="session")
def wasm() -> Path:
    if not harness.WASM.is_file():
        pytest.fail(f"filter not built: {harness.WASM} is missing.\n"
                    "Build it with `make build` (or: cargo build --release --target wasm32-wasip1).",
                    pytrace=False)
    return harness.WASM


@dataclass
class Upstream:
    port: int
    proc: harness.Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def log_tail(self, lines: int = 60) -> str:
        return self.proc.tail(lines)


@pytest.fixture(scope="session")
def demo_upstream(tmp_path_factory) -> Upstream:
    port = harness.free_port()
    proc = harness.start_demo_upstream(port, tmp_path_factory.mktemp("upstream"))
    harness.LIVE_PROCS.append(proc)
    try:
        yield Upstream(port, proc)
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


@dataclass
class Gateway:
    port: int
    admin_port: int
    upstream_port: int
    config_path: Path
    proc: harness.Proc
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 80) -> str:
        return self.proc.tail(lines)

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        return harness.envoy_stats(self.admin_port, filter_regex)

    def stop(self) -> None:
        if self.proc in harness.LIVE_PROCS:
            harness.LIVE_PROCS.remove(self.proc)
        self.proc.stop()


class GatewayFactory:
    def __init__(self, out_dir: Path, default_wasm: Path):
        self._out_dir = out_dir
        self._wasm = default_wasm
        self._started: list[Gateway] = []

    def __call__(self, template: str | Path = "envoy/local.yaml", *, upstream_port: int,
                 plugin_config: dict | None = None, replace: dict[str, str] | None = None,
                 wasm: Path | None = None, extra_ports: dict[str, int] | None = None,
                 wait_mcp: bool = False, concurrency: int = 1, envoy_args: list[str] | None = None) -> Gateway:
        """Start Envoy with `template` rendered for free ports. `plugin_config` replaces the
        filter's JSON configuration; `replace` does literal text replacements; `extra_ports`
        (e.g. {"SINK_PORT": 1234}) adds ports to render; `wait_mcp` also waits until /mcp
        answers a 2026-07-28 server/discover with 200; `concurrency` / `envoy_args` go to Envoy."""
        n = len(self._started)
        ports = {"GATEWAY_PORT": harness.free_port(), "ADMIN_PORT": harness.free_port(),
                 "UPSTREAM_PORT": upstream_port, **(extra_ports or {})}
        out = self._out_dir / f"gw{n}"
        config = harness.render_envoy_config(template, out, ports, wasm=wasm or self._wasm, replace=replace,
                                             plugin_config=plugin_config)
        proc = harness.start_envoy(config, ports["ADMIN_PORT"], out, name=f"envoy-{Path(template).stem}-{n}",
                                   concurrency=concurrency, extra_args=envoy_args)
        gw = Gateway(ports["GATEWAY_PORT"], ports["ADMIN_PORT"], upstream_port, config, proc, ports)
        self._started.append(gw)
        harness.LIVE_PROCS.append(proc)
        if wait_mcp:
            harness.wait_mcp(gw.url, timeout=30, proc=proc)
        return gw

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()


@pytest.fixture
def gateway(tmp_path, wasm):
    factory = GatewayFactory(tmp_path, wasm)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory, wasm):
    factory = GatewayFactory(tmp_path_factory.mktemp("gateway"), wasm)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for proc in list(harness.LIVE_PROCS):
            report.sections.append((f"log of {proc.name} (pid {proc.pid})", proc.tail(150)))
