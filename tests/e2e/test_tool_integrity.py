"""Tool integrity without sessions, through real Envoy with the shipped `envoy/local.yaml` and an
empty `{}` configuration (on by default), against real Python `mcp` 2.3.0 servers
(`rugpull_upstream.py`) and real SDK clients in both eras:

- a server whose tool description changes between two lists: the changed tool leaves the list
  and its call is refused with an error that says it changed and since when;
- two upstream replicas round-robin behind one cluster, one honest and one swapped: the same,
  however the lists alternate;
- the capability hash: a client that saw the swapped list through one gateway replica is refused
  by another replica that only ever served the honest one;
- a pin (printed by `warden pin URL`) and a server that renamed a tool: not in the manifest, not
  listed, not callable;
- a swapped `ui://` template: withheld.

Every stop is counted (`mcp_warden_findings_total`) and receipted as a block.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request

import pytest

from mcp import Client
from wardenkit import harness

ERAS = ["2026-07-28", "legacy"]
# The raw client's user agent: an anonymous principal is keyed by it (baselines of private
# answers are per principal).
CLIENT = "mcp-warden-e2e-raw"


def rugpull(tmp_path, *flags: str):
    """A rugpull_upstream.py with `flags`, as a context manager yielding its port."""
    script = [str(harness.PYTHON), str(harness.ROOT / "tests/e2e/rugpull_upstream.py"), *flags]
    return harness.mcp_upstream(f"rugpull-{'-'.join(f.strip('-') for f in flags) or 'plain'}", script, tmp_path)


def swap(port: int, on: bool) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/__swap", data=b"1" if on else b"0", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def session(url: str, mode: str, *steps):
    """Runs `steps` (async callables taking the client) in one SDK client session."""
    async def run():
        async with Client(url, mode=mode) as c:
            return [await s(c) for s in steps]
    return asyncio.run(run())


async def names(c) -> list[str]:
    return [t.name for t in (await c.list_tools()).tools]


def call(name: str, meta: dict | None = None):
    async def step(c):
        try:
            r = await c.call_tool(name, {"text": "hi"} if name.startswith("echo") else {}, meta=meta)
            return ("ok", r)
        except Exception as e:  # the SDK raises the JSON-RPC error
            err = getattr(e, "error", None)
            return ("error", {"code": getattr(err, "code", None), "message": getattr(err, "message", str(e)),
                              "data": getattr(err, "data", None)})
    return step


def assert_refused_as_changed(outcome, seen_by: str = "list") -> None:
    kind, err = outcome
    assert kind == "error", outcome
    assert err["code"] == -31403, err
    assert "echo changed since" in err["message"], err
    assert err["data"]["reason"] == "tool_changed" and err["data"]["seenBy"] == seen_by, err
    assert err["data"]["changedSince"].endswith("Z"), err


def grew(gw, before: dict, what: str) -> bool:
    after = gw.stats("mcp_warden_findings_total")
    return any(f".finding.{what}." in k and v > before.get(k, 0) for k, v in after.items())


@pytest.mark.parametrize("mode", ERAS)
def test_a_description_that_changes_between_two_lists_is_refused_at_call_time(gateway, tmp_path, mode):
    with rugpull(tmp_path) as up:
        gw = gateway("envoy/local.yaml", upstream_port=up, plugin_config={}, wait_mcp=True)
        before = gw.stats("mcp_warden_findings_total")
        listed, ok = session(gw.url, mode, names, call("echo"))
        assert listed == ["echo", "search", "dashboard"] and ok[0] == "ok", (listed, ok)
        swap(up, True)
        listed, refused = session(gw.url, mode, names, call("echo"))
        assert listed == ["search", "dashboard"], "the changed tool left the list"
        assert_refused_as_changed(refused)
        # The server goes back to the honest text: the change stays on record until re-pinned or expired.
        swap(up, False)
        listed, refused = session(gw.url, mode, names, call("echo"))
        assert listed == ["search", "dashboard"]
        assert_refused_as_changed(refused)
        assert session(gw.url, mode, call("search"))[0][0] == "ok", "the other tools are untouched"
        assert grew(gw, before, "tool_changed")
        # Straight to the server the swapped tool is there: the gateway removed it.
        swap(up, True)
        assert "echo" in session(f"http://127.0.0.1:{up}/mcp", mode, names)[0]


@pytest.mark.parametrize("mode", ERAS)
def test_two_replicas_one_swapped_round_robin(gateway, tmp_path, mode):
    with rugpull(tmp_path, "--stateless") as honest, rugpull(tmp_path, "--stateless", "--swapped") as swapped:
        old = "        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: %d }" % honest
        new = ("        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: %d }\n"
               "        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: %d }") % (honest, swapped)
        gw = gateway("envoy/local.yaml", upstream_port=honest, plugin_config={}, replace={old: new}, wait_mcp=True)
        # One list per session: successive lists reach alternate replicas (round robin), however
        # many requests an era's session opens with.
        seen = {tuple(session(gw.url, mode, names)[0]) for _ in range(4)}
        # Whichever replica answered first became the baseline; once the other one answered a list,
        # the tool is gone from lists and every call is refused, whatever replica it would reach.
        assert ("search", "dashboard") in seen, seen
        for _ in range(2):
            assert_refused_as_changed(session(gw.url, mode, call("echo"))[0])


def tool_hash(tool: dict) -> str:
    """The README's recipe, as a client SDK implements it: RFC 8785 bytes of the definition's
    fields (for these values json.dumps with sorted keys is JCS), SHA-256, hex."""
    import hashlib
    view = {k: tool[k] for k in ("name", "title", "description", "inputSchema", "outputSchema", "annotations") if k in tool}
    if "ui" in tool.get("_meta", {}):
        view["ui"] = tool["_meta"]["ui"]
    canon = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(canon).hexdigest()


def raw_tools(url: str) -> dict[str, dict]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": harness.modern_meta()}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "accept": "application/json, text/event-stream",
                                          "user-agent": CLIENT, **harness.modern_headers("tools/list")})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    if not text.lstrip().startswith("{"):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:") and '"tools"' in line)
    return {t["name"]: t for t in json.loads(text)["result"]["tools"]}


def test_the_capability_hash_catches_drift_on_a_gateway_replica_that_never_saw_the_list(gateway, tmp_path, warden):
    with rugpull(tmp_path) as up:
        g1 = gateway("envoy/local.yaml", upstream_port=up, plugin_config={}, wait_mcp=True)
        g2 = gateway("envoy/local.yaml", upstream_port=up, plugin_config={}, wait_mcp=True)
        honest = raw_tools(f"http://127.0.0.1:{up}/mcp")["echo"]
        pinned = json.loads(subprocess.run([str(warden), "pin", f"http://127.0.0.1:{up}/mcp"], capture_output=True, text=True,
                                           check=True).stdout)
        assert tool_hash(honest) == pinned["tools"]["echo"], "the README recipe and `warden pin` agree"
        for gw in (g1, g2):
            assert "echo" in raw_tools(gw.url)
        swap(up, True)
        # The client lists through replica 2 (which now flags the tool) but the SDK kept what it saw
        # elsewhere; replica 1 never served the swapped list. What the client saw is in its hash.
        assert "echo" not in raw_tools(g2.url), "replica 2 saw the change"
        swapped = raw_tools(f"http://127.0.0.1:{up}/mcp")["echo"]
        saw = tool_hash(swapped)
        assert saw != tool_hash(honest)
        # Raw calls: the SDK lists the tools again around a call (for output validation), and that
        # list would tell replica 1 by itself; here only the hash speaks.
        assert "result" in raw_call(g1.url, "echo"), "replica 1 alone has no reason to refuse"
        refused = raw_call(g1.url, "echo", saw)
        assert refused["error"]["code"] == -31403 and refused["error"]["data"]["seenBy"] == "capability_hash", refused
        assert "result" in raw_call(g1.url, "echo", tool_hash(honest))
        assert raw_call(g1.url, "echo", "sha256:nonsense").get("result") is not None, "a malformed hash vouches for nothing"


def raw_call(url: str, name: str, tool_hash: str | None = None) -> dict:
    meta = harness.modern_meta(**({"mcp-warden.dev/tool-hash": tool_hash} if tool_hash else {}))
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {"text": "hi"}, "_meta": meta}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "accept": "application/json, text/event-stream",
                                          "user-agent": CLIENT, **harness.modern_headers("tools/call", name)})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
    except urllib.error.HTTPError as e:
        text = e.read().decode()
    if not text.lstrip().startswith("{"):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:") and '"id":7' in line.replace(" ", ""))
    return json.loads(text)


@pytest.mark.parametrize("mode", ERAS)
def test_a_renamed_tool_does_not_dodge_a_pin(gateway, tmp_path, warden, mode):
    with rugpull(tmp_path) as original:
        manifest = json.loads(subprocess.run([str(warden), "pin", f"http://127.0.0.1:{original}/mcp", "--ui"],
                                             capture_output=True, text=True, check=True).stdout)
    assert set(manifest["tools"]) == {"echo", "search", "dashboard"} and manifest["server"]["name"] == "rugpull-upstream"
    with rugpull(tmp_path, "--rename") as renamed:
        gw = gateway("envoy/local.yaml", upstream_port=renamed, plugin_config={"tool_integrity": {"pins": [manifest]}},
                     wait_mcp=True)
        before = gw.stats("mcp_warden_findings_total")
        listed, outcome = session(gw.url, mode, names, call("echo2"))
        assert listed == ["search", "dashboard"], listed
        kind, err = outcome
        assert kind == "error" and err["code"] == -31403 and err["data"]["reason"] == "unpinned_tool", outcome
        assert session(gw.url, mode, call("search"))[0][0] == "ok"
        assert grew(gw, before, "unpinned_tool")


@pytest.mark.parametrize("mode", ERAS)
def test_a_swapped_ui_template_is_withheld(gateway, tmp_path, mode):
    with rugpull(tmp_path) as up:
        gw = gateway("envoy/local.yaml", upstream_port=up, plugin_config={}, wait_mcp=True)

        async def read(c):
            try:
                r = await c.read_resource("ui://dashboard/app.html")
                return ("ok", r.contents[0].text)
            except Exception as e:
                err = getattr(e, "error", None)
                return ("error", {"code": getattr(err, "code", None), "data": getattr(err, "data", None)})

        first, again = session(gw.url, mode, read, read)
        assert first[0] == "ok" and "<h1>Dashboard</h1>" in first[1] and again == first
        swap(up, True)
        kind, err = session(gw.url, mode, read)[0]
        assert kind == "error" and err["code"] == -31502, err
        assert err["data"] == {"inspector": "ui_template", "finding": "ui_template_changed"}, err
