"""Tasks bound to the principal that created them, through real Envoy, against a real FastMCP
4.1.6 server with the tasks extension (fastmcp-tasks; `tasks_upstream.py`): a task created by one
principal and polled, updated, cancelled or listened for by another is answered as the server
answers an unknown task (-32602), counted (`mcp_warden_task_hijacks_total`) and receipted; its
creator polls it to completion. On by default: the `{}` configuration binds tasks to the
(anonymous) client that created them; with a trusted identity header, to the named principal.
A task also answers to what policy says of its tool now: once the kill switch (served by `warden
control`) stops `slow_report`, its creator can no longer read or feed its task, only cancel it.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from wardenkit import harness
from test_control_endpoint import CONTROL_CLUSTER, write

PEERS_PYTHON = harness.ROOT / ".venv-peers" / "bin" / "python"
TASKS = {"extensions": {"io.modelcontextprotocol/tasks": {}}}


@pytest.fixture(scope="module")
def tasks_upstream(tmp_path_factory):
    if not PEERS_PYTHON.is_file():
        pytest.fail(f"{PEERS_PYTHON} is missing: `make deps-peers` installs fastmcp + fastmcp-tasks", pytrace=False)
    with harness.mcp_upstream("tasks-upstream", [str(PEERS_PYTHON), str(harness.ROOT / "tests/e2e/tasks_upstream.py")],
                              tmp_path_factory.mktemp("tasks")) as port:
        yield port


def rpc(url: str, method: str, params: dict, who: dict[str, str], name: str | None = None) -> tuple[int, dict]:
    body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {**params, "_meta": harness.modern_meta(TASKS)}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               **harness.modern_headers(method, name), **who}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if not text.lstrip().startswith("{"):
        text = [line[5:] for line in text.splitlines() if line.startswith("data:")][-1]
    return status, json.loads(text)


def create(url: str, who: dict[str, str], seconds: float = 0.2) -> str:
    arguments = {"topic": "gateways", "seconds": seconds}
    status, answer = rpc(url, "tools/call", {"name": "slow_report", "arguments": arguments}, who, "slow_report")
    assert status == 200 and answer["result"]["resultType"] == "task", answer
    return answer["result"]["taskId"]


def refused_as_unknown(status: int, answer: dict, task: str) -> bool:
    return status == 400 and answer.get("error", {}).get("code") == -32602 and task in answer["error"]["message"]


@pytest.mark.parametrize("config, alice, mallory", [
    ({}, {"user-agent": "agent-alice"}, {"user-agent": "agent-mallory"}),
    ({"principal": {"sources": ["header"], "trusted_header": "x-user"}}, {"x-user": "alice"}, {"x-user": "mallory"}),
], ids=["default-config-anonymous-clients", "named-principals"])
def test_a_task_is_answered_only_to_its_creator(gateway, tasks_upstream, config, alice, mallory):
    gw = gateway("envoy/local.yaml", upstream_port=tasks_upstream, plugin_config=config, wait_mcp=True)
    task = create(gw.url, alice)
    for method, params in [("tasks/get", {"taskId": task}), ("tasks/update", {"taskId": task, "inputResponses": {}}),
                           ("tasks/cancel", {"taskId": task})]:
        before = harness.warden_stat(gw, "task_hijacks_total")
        status, answer = rpc(gw.url, method, params, mallory, task)
        assert refused_as_unknown(status, answer, task), (method, status, answer)
        assert harness.warden_stat(gw, "task_hijacks_total") == before + 1, f"{method} was refused by the server, not the gateway"
    status, answer = rpc(gw.url, "subscriptions/listen", {"notifications": {"taskIds": [task]}}, mallory)
    assert refused_as_unknown(status, answer, task), answer
    assert harness.warden_stat(gw, "task_hijacks_total") == 4
    # The creator polls it to completion, through the same gateway.
    final = harness.wait_for("the task to complete", lambda: (lambda a: a if a.get("status") == "completed" else None)(
        rpc(gw.url, "tasks/get", {"taskId": task}, alice, task)[1].get("result", {})), timeout=30, gw=gw)
    assert final["result"]["content"][0]["text"] == "report on gateways", final
    # An id the server never handed out reaches the server (which answers it as unknown itself).
    status, answer = rpc(gw.url, "tasks/get", {"taskId": "no-such-task"}, mallory, "no-such-task")
    assert answer["error"]["code"] == -32602


def test_a_killed_tools_task_can_be_cancelled_but_not_read_or_fed(warden, gateway, tasks_upstream, tmp_path):
    directory = tmp_path / "control"
    directory.mkdir()
    port = harness.free_port()
    ctl = harness.Proc("warden-control", [str(warden), "control", "--dir", str(directory),
                                          "--listen", f"127.0.0.1:{port}"], tmp_path / "logs")
    harness.LIVE_PROCS.append(ctl)
    try:
        harness.wait_port(port, proc=ctl)
        config = {"control": {"cluster": "warden_control", "period_ms": 200, "timeout_ms": 1000}}
        gw = gateway("envoy/local.yaml", upstream_port=tasks_upstream, plugin_config=config,
                     replace={"  clusters:\n": CONTROL_CLUSTER.format(port=port)}, wait_mcp=True)
        alice = {"user-agent": "agent-alice"}
        task = create(gw.url, alice, seconds=60)
        assert rpc(gw.url, "tasks/get", {"taskId": task}, alice, task)[1]["result"]["status"] == "working"
        write(directory / "kill.json", [{"tool": "slow_report", "reason": "incident 4711"}])
        harness.wait_for("the kill switch installed", lambda: rpc(gw.url, "tools/call", {
            "name": "slow_report", "arguments": {"topic": "x"}}, alice, "slow_report")[0] == 503, timeout=15, gw=gw)
        for method, params in [("tasks/get", {"taskId": task}), ("tasks/update", {"taskId": task, "inputResponses": {}})]:
            status, answer = rpc(gw.url, method, params, alice, task)
            assert status == 503 and answer["error"]["code"] == -31503, (method, status, answer)
            assert answer["error"]["data"] == {"reason": "incident 4711", "scope": "tool"}, answer
        status, answer = rpc(gw.url, "subscriptions/listen", {"notifications": {"taskIds": [task]}}, alice)
        assert status == 503, answer
        # Stopping the work reaches the server, which cancels it.
        status, answer = rpc(gw.url, "tasks/cancel", {"taskId": task}, alice, task)
        assert status == 200 and "result" in answer, answer
        assert harness.warden_stat(gw, "task_hijacks_total") == 0
    finally:
        harness.LIVE_PROCS.remove(ctl)
        ctl.stop()
