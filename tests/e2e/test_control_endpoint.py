"""`warden control`: the control endpoint the filter polls, run as a real process on a free port.

It serves policy.json and kill.json from a directory (a mounted ConfigMap, symlink swaps
included), compiles them with the filter's own code, refuses what does not compile (the last good
version stays served, the error shows at /status), and answers If-None-Match with 304.

Needs `target/release/warden` (`make build`); WARDEN_BIN overrides the path.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path

import pytest

from wardenkit import harness

WARDEN = harness.WARDEN

GOOD_POLICY = {
    "rules": [
        {"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]},
         "action": "deny", "reason": "deleting is not allowed here"},
        {"id": "per-user", "action": "rate_limit", "rate_limit": {"rate": 5, "key": "principal"}},
    ],
    "default_action": "allow",
}
KILL = [{"tool": "exec", "reason": "incident 4711"}]


class Control:
    def __init__(self, port: int, proc: harness.Proc, directory: Path):
        self.port = port
        self.proc = proc
        self.dir = directory

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def state(self):
        status, headers, body = self.get("/v1/state")
        assert status == 200, body
        return headers["etag"], json.loads(body)

    def status(self) -> dict:
        status, _, body = self.get("/status")
        assert status == 200
        return json.loads(body)


@pytest.fixture
def control(warden, tmp_path):
    directory = tmp_path / "config"
    directory.mkdir()
    port = harness.free_port()
    proc = harness.Proc("warden-control", [str(warden), "control", "--dir", str(directory),
                                           "--listen", f"127.0.0.1:{port}"], tmp_path / "logs")
    harness.LIVE_PROCS.append(proc)
    try:
        harness.wait_port(port, proc=proc)
        yield Control(port, proc, directory)
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


def write(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value if isinstance(value, str) else json.dumps(value))
    tmp.replace(path)


def test_serves_policy_and_kill_switch_with_etag(control):
    etag0, doc0 = control.state()
    assert doc0 == {"version": 1, "kill_switch": []}
    write(control.dir / "policy.json", GOOD_POLICY)
    write(control.dir / "kill.json", KILL)
    etag, doc = control.state()
    assert etag != etag0 and etag.startswith('"') and etag.endswith('"')
    assert doc["kill_switch"] == KILL
    assert doc["policy"] == GOOD_POLICY
    status, headers, body = control.get("/v1/state", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag
    assert control.get("/v1/state", {"If-None-Match": '"stale"'})[0] == 200
    assert control.status()["ok"] is True


def test_refuses_a_policy_that_does_not_compile_and_keeps_the_last_good(control):
    write(control.dir / "policy.json", GOOD_POLICY)
    etag, doc = control.state()
    bad = json.loads(json.dumps(GOOD_POLICY))
    bad["rules"][1]["rate_limit"]["rate"] = 0
    write(control.dir / "policy.json", bad)
    assert control.state() == (etag, doc), "the last good policy stays served"
    st = control.status()
    assert st["ok"] is False
    assert st["policy"]["error"]["field"] == "rules[1].rate_limit.rate"
    assert "rate of zero" in st["policy"]["error"]["message"]
    assert "refusing policy.json" in control.proc.tail()

    write(control.dir / "policy.json", '{"rules": [{"id": "a", "action": "allow", "colour": "red"}]}')
    st = control.status()
    assert st["policy"]["error"]["field"] == "rules[0].colour"
    assert control.state() == (etag, doc)

    fixed = dict(GOOD_POLICY, default_action="deny", default_reason="closed")
    write(control.dir / "policy.json", fixed)
    etag2, doc2 = control.state()
    assert etag2 != etag and doc2["policy"] == fixed
    assert control.status()["ok"] is True


def test_bad_kill_file_keeps_the_last_good_kill_list(control):
    write(control.dir / "kill.json", KILL)
    etag, doc = control.state()
    write(control.dir / "kill.json", [{"upstream": "fs", "tool": "exec", "reason": "two selectors"}])
    assert control.state() == (etag, doc)
    assert control.status()["kill"]["error"]["field"] == "kill[0]"
    (control.dir / "kill.json").unlink()
    _, doc = control.state()
    assert doc["kill_switch"] == [], "removing the file lifts the kill switch"


def test_configmap_symlink_swap(control):
    # Kubernetes mounts a ConfigMap as KEY -> ..data/KEY, ..data -> ..<timestamp>, swapped atomically.
    d = control.dir
    v1 = d / "..2026_11_21_v1"
    v1.mkdir()
    write(v1 / "kill.json", KILL)
    os.symlink(v1.name, d / "..data")
    os.symlink("..data/kill.json", d / "kill.json")
    _, doc = control.state()
    assert doc["kill_switch"] == KILL
    v2 = d / "..2026_11_21_v2"
    v2.mkdir()
    write(v2 / "kill.json", [{"all": True, "reason": "maintenance"}])
    os.symlink(v2.name, d / "..data_tmp")
    os.replace(d / "..data_tmp", d / "..data")
    _, doc = control.state()
    assert doc["kill_switch"] == [{"all": True, "reason": "maintenance"}]


def test_keep_alive_and_other_paths(control):
    conn = http.client.HTTPConnection("127.0.0.1", control.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/v1/state")
            r = conn.getresponse()
            assert r.status == 200
            json.loads(r.read())
    finally:
        conn.close()
    assert control.get("/healthz")[0] == 200
    assert control.get("/nope")[0] == 404
    status, headers, _ = control.get("/v1/state", method="POST")
    assert status == 405 and "GET" in headers["allow"]


def test_check_mode_names_the_field(warden, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    write(good / "policy.json", GOOD_POLICY)
    r = subprocess.run([str(warden), "control", "--dir", str(good), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    bad = tmp_path / "bad"
    bad.mkdir()
    write(bad / "policy.json", {"rules": [{"id": "a", "action": "allow"}, {"id": "a", "action": "deny"}]})
    r = subprocess.run([str(warden), "control", "--dir", str(bad), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "rules[1].id" in r.stderr and "duplicate rule id `a`" in r.stderr
    r = subprocess.run([str(warden), "control"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--dir" in r.stderr


# ---------------------------------------------------------------------------------------------
# Through Envoy: the filter polls `warden control`, and the policy core answers for it.
# ---------------------------------------------------------------------------------------------

import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

CONTROL_CLUSTER = """  clusters:
  - name: warden_control
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: warden_control
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {port} }}
"""

PLUGIN_CONFIG = {
    "rules": [
        {"id": "hide-blocked", "match": {"methods": ["tools/call"], "names": ["blocked_tool"]},
         "action": "deny", "reason": "not for you"},
        {"id": "sum-budget", "match": {"methods": ["tools/call"], "names": ["slow_sum"]},
         "action": "rate_limit", "rate_limit": {"rate": 1, "period_secs": 3600, "burst": 2, "key": "principal_tool"}},
    ],
    "control": {"cluster": "warden_control", "period_ms": 200, "timeout_ms": 1000},
}


def call(url: str, method: str, params: dict | None = None, name: str | None = None, rid: int = 1):
    """POST one 2026-07-28 request; returns (status, headers, JSON-RPC message)."""
    params = dict(params or {})
    params["_meta"] = harness.modern_meta()
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=harness.modern_headers(method, name))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, headers, raw = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
    text = raw.decode()
    if headers.get("content-type", "").startswith("text/event-stream"):
        datas = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
        msgs = [json.loads(d) for d in datas if d]
        msg = next(m for m in msgs if m.get("id") == rid)
    else:
        msg = json.loads(text)
    return status, headers, msg


def tool_call(url: str, tool: str, args: dict, rid: int):
    return call(url, "tools/call", {"name": tool, "arguments": args}, name=tool, rid=rid)


def eventually(check, what: str, proc_logs=(), timeout: float = 15.0):
    """Polls `check()` until it returns a truthy value (control state travels on a poll period)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    logs = "\n".join(p.tail() for p in proc_logs)
    raise AssertionError(f"{what}: not reached in {timeout}s (last: {last!r})\n{logs}")


def test_policy_and_kill_switch_through_envoy(warden, gateway, demo_upstream, tmp_path):
    directory = tmp_path / "control"
    directory.mkdir()
    cport = harness.free_port()
    ctl = harness.Proc("warden-control", [str(warden), "control", "--dir", str(directory),
                                          "--listen", f"127.0.0.1:{cport}"], tmp_path / "logs")
    harness.LIVE_PROCS.append(ctl)
    try:
        harness.wait_port(cport, proc=ctl)
        gw = gateway(upstream_port=demo_upstream.port, plugin_config=PLUGIN_CONFIG,
                     replace={"  clusters:\n": CONTROL_CLUSTER.format(port=cport)}, wait_mcp=True)
        logs = (gw.proc, ctl)

        # Hidden tool: gone from tools/list (now private), and unknown when called.
        status, _, msg = call(gw.url, "tools/list", rid=10)
        assert status == 200, msg
        names = [t["name"] for t in msg["result"]["tools"]]
        assert "blocked_tool" not in names and "echo" in names, names
        assert msg["result"]["cacheScope"] == "private"
        status, _, msg = tool_call(gw.url, "blocked_tool", {}, rid=11)
        assert status == 200
        assert msg["id"] == 11
        assert msg["error"]["code"] == -32602
        assert msg["error"]["message"] == "Unknown tool: blocked_tool"

        # Rate limit: the burst of 2, then 429 with Retry-After and the id kept.
        for rid in (20, 21):
            status, _, msg = tool_call(gw.url, "slow_sum", {"a": 1, "b": 2, "steps": 1, "delay": 0}, rid)
            assert status == 200 and "error" not in msg, msg
        status, headers, msg = tool_call(gw.url, "slow_sum", {"a": 1, "b": 2, "steps": 1, "delay": 0}, 22)
        assert status == 429, msg
        assert int(headers["retry-after"]) > 0
        assert msg["id"] == 22 and msg["error"]["code"] == -31429
        assert msg["error"]["data"]["retryAfterSeconds"] == int(headers["retry-after"])

        # Kill switch from the control endpoint: 503 naming the reason, within a few polls.
        assert tool_call(gw.url, "echo", {"text": "hi"}, 30)[0] == 200
        write(directory / "kill.json", [{"tool": "echo", "reason": "incident 4711"}])
        status, _, msg = eventually(lambda: (r := tool_call(gw.url, "echo", {"text": "hi"}, 31))[0] == 503 and r,
                                    "kill switch installed", logs)
        assert msg["id"] == 31 and msg["error"]["code"] == -31503
        assert msg["error"]["data"] == {"reason": "incident 4711", "scope": "tool"}
        assert tool_call(gw.url, "open_gate", {"gate": "g"}, 32)[0] == 200, "only the named tool is stopped"

        # Fail-static: with the endpoint down, the filter keeps the kill switch it has.
        failures_before = sum(gw.stats("control_poll_failures").values())
        ctl.stop()
        eventually(lambda: sum(gw.stats("control_poll_failures").values()) >= failures_before + 2,
                   "the filter saw the endpoint down", logs)
        assert tool_call(gw.url, "echo", {"text": "hi"}, 33)[0] == 503

        # Back up, serving a policy as well: it replaces the plugin's rules; lifting the kill works.
        (directory / "kill.json").unlink()
        write(directory / "policy.json", {"rules": [
            {"id": "no-echo", "match": {"names": ["echo"]}, "action": "deny", "hide": False,
             "reason": "echo is switched off by policy"}]})
        ctl2 = harness.Proc("warden-control-2", [str(warden), "control", "--dir", str(directory),
                                                 "--listen", f"127.0.0.1:{cport}"], tmp_path / "logs")
        harness.LIVE_PROCS.append(ctl2)
        try:
            harness.wait_port(cport, proc=ctl2)
            status, _, msg = eventually(lambda: (r := tool_call(gw.url, "echo", {"text": "hi"}, 40))[0] == 403 and r,
                                        "served policy installed", (gw.proc, ctl2))
            assert msg["error"] == {"code": -31403, "message": "echo is switched off by policy"}
            # The served policy has no hide rule: blocked_tool is back.
            status, _, msg = tool_call(gw.url, "blocked_tool", {}, 41)
            assert status == 200 and "result" in msg, (status, msg)
        finally:
            harness.LIVE_PROCS.remove(ctl2)
            ctl2.stop()
    finally:
        if ctl in harness.LIVE_PROCS:
            harness.LIVE_PROCS.remove(ctl)
        ctl.stop()


def test_rate_limit_is_shared_by_all_workers(demo_upstream, wasm, tmp_path):
    """Four Envoy workers (four VMs), one bucket in shared data: after a warm-up request creates
    it, concurrent requests spread over the workers get exactly the rest of the burst."""
    from concurrent.futures import ThreadPoolExecutor

    burst = 6
    config = {"rules": [{"id": "echo-budget", "match": {"names": ["echo"]}, "action": "rate_limit",
                         "rate_limit": {"rate": 1, "period_secs": 3600, "burst": burst, "key": "principal"}}]}
    ports = {"GATEWAY_PORT": harness.free_port(), "ADMIN_PORT": harness.free_port(), "UPSTREAM_PORT": demo_upstream.port}
    rendered = harness.render_envoy_config("envoy/local.yaml", tmp_path / "gw", ports, wasm=wasm, plugin_config=config)
    envoy = harness.start_envoy(rendered, ports["ADMIN_PORT"], tmp_path / "gw", name="envoy-4-workers", concurrency=4)
    harness.LIVE_PROCS.append(envoy)
    try:
        url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/mcp"
        harness.wait_mcp(url, timeout=30, proc=envoy)
        assert tool_call(url, "echo", {"text": "warm-up"}, 1)[0] == 200
        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(lambda i: tool_call(url, "echo", {"text": str(i)}, 100 + i), range(24)))
        statuses = sorted(r[0] for r in results)
        assert statuses.count(200) == burst - 1, statuses
        assert statuses.count(429) == 24 - (burst - 1), statuses
        for status, _, msg in results:
            if status == 429:
                assert msg["error"]["code"] == -31429
        stats = harness.envoy_stats(ports["ADMIN_PORT"], r"worker_\d+\.downstream_cx_total")
        busy = [k for k, v in stats.items() if k.startswith("listener.") and v > 0]
        assert len(busy) >= 2, f"connections did not spread over workers: {stats}"
    finally:
        harness.LIVE_PROCS.remove(envoy)
        envoy.stop()


def test_pins_from_the_control_endpoint_are_in_force_within_a_poll(warden, control, gateway, demo_upstream):
    """`warden pin URL > pins.json` in the control directory: the manifest is in force over the
    plugin configuration at the next poll (a tool it does not approve leaves lists and is refused),
    and removing the file lifts it."""
    gw = gateway(upstream_port=demo_upstream.port, plugin_config={"control": PLUGIN_CONFIG["control"]},
                 replace={"  clusters:\n": CONTROL_CLUSTER.format(port=control.port)}, wait_mcp=True)
    logs = (gw.proc, control.proc)
    manifest = json.loads(subprocess.run([str(warden), "pin", demo_upstream.url], capture_output=True, text=True,
                                         check=True).stdout)
    assert "echo" in manifest["tools"] and manifest["upstream"] == "mcp_upstream"
    del manifest["tools"]["echo"]  # the security team does not approve echo
    write(control.dir / "pins.json", manifest)
    status, _, msg = eventually(lambda: (r := tool_call(gw.url, "echo", {"text": "hi"}, 50))[0] == 403 and r,
                                "served pins installed", logs)
    assert msg["error"]["data"] == {"reason": "unpinned_tool", "tool": "echo"}, msg
    names = [t["name"] for t in call(gw.url, "tools/list", rid=51)[2]["result"]["tools"]]
    assert "echo" not in names and "open_gate" in names, names
    assert tool_call(gw.url, "open_gate", {"gate": "g"}, 52)[0] == 200, "approved tools run"
    (control.dir / "pins.json").unlink()
    eventually(lambda: tool_call(gw.url, "echo", {"text": "hi"}, 53)[0] == 200, "pins lifted", logs)
