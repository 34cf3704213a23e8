"""E2E: real MCP clients -> real Envoy 1.40 + mcp-warden (.wasm) -> demo MCP upstream (Python mcp 2.3.0).

Three layers:
1. The real Python `mcp` 2.3.0 client (`mcp.Client`, modes "auto", "2026-07-28", "legacy") against
   the gateway (HTTP/1.1 and HTTP/2) AND directly against the upstream: the same assertions must
   hold on all three, which is what "the gateway is transparent" means. A recording httpx2 client
   checks what went over the wire.
2. Raw httpx over HTTP/1.1 and HTTP/2 (prior knowledge, h2c) against the gateway: streamed progress
   and `subscriptions/listen` events are read *while the upstream is still blocked* on a gate that
   only the test can open, so buffering anywhere in the path deadlocks the test (bounded by
   `fail_after`); closing the stream cancels the upstream tool (HTTP/2: RST_STREAM via raw `h2`);
   a full legacy session (initialize, Mcp-Session-Id, GET stream, DELETE).
3. Envoy routes keyed on `Mcp-Name` / `Mcp-Method` (envoy/e2e-routes.yaml) for both eras: the router
   must see the headers the filter validated or set from the body, never what the client claimed.
4. Era switches in the plugin config, as the real client experiences them.

Run: .venv/bin/pytest -q tests/e2e/test_clients.py
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ToolsListChanged
from mcp_types import ElicitResult

from wardenkit import harness

MODERN = harness.MODERN_VERSION
LEGACY = "2025-11-25"
DASHBOARD_URI = "ui://dashboard/app.html"
APP_MIME = "text/html;profile=mcp-app"
ROUTE_BLOCKED = "route-blocked: mcp-name=blocked_tool"
ROUTE_NO_PROMPTS = "route-no-prompts: mcp-method=prompts/get"
# Deadlock guard only (never asserted as a duration): a stream that is buffered instead of
# streamed never delivers the event that unblocks the upstream, and the test fails here.
GUARD_S = 45

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


# Each stream is logged when it starts and when it ends (Envoy's own log, attached to a failing
# test's report): a stalled exchange shows whether the upstream answered, how many bytes Envoy
# sent on, and the response flags.
ACCESS_LOG = """stat_prefix: mcp_gateway
          access_log_options: { flush_access_log_on_new_request: true }
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string: "access %START_TIME% %ACCESS_LOG_TYPE% %PROTOCOL% conn=%CONNECTION_ID% stream=%STREAM_ID% %REQ(:METHOD)% mcp-method=%REQ(MCP-METHOD)% mcp-name=%REQ(MCP-NAME)% status=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% ms=%DURATION% first-byte-ms=%RESPONSE_DURATION% in=%BYTES_RECEIVED% out=%BYTES_SENT% upstream-in=%UPSTREAM_WIRE_BYTES_RECEIVED%\\n"
"""


@pytest.fixture(scope="module")
def gw(module_gateway, demo_upstream):
    """The `make run` config (envoy/local.yaml) in front of the demo upstream, with an access log."""
    return module_gateway("envoy/local.yaml", upstream_port=demo_upstream.port, wait_mcp=True,
                          replace={"stat_prefix: mcp_gateway\n": ACCESS_LOG})


@pytest.fixture(scope="module")
def routes_gw(module_gateway, demo_upstream):
    """envoy/e2e-routes.yaml: local.yaml plus routes on mcp-name / mcp-method."""
    return module_gateway("envoy/e2e-routes.yaml", upstream_port=demo_upstream.port, wait_mcp=True)


@dataclass
class Target:
    url: str
    http2: bool = False


@pytest.fixture(params=["gateway", "gateway-h2", "direct"])
def target(request, gw, demo_upstream) -> Target:
    """Where the SDK client connects: through Envoy + the filter over HTTP/1.1, the same over HTTP/2
    (h2c prior knowledge), or straight to the upstream (uvicorn, HTTP/1.1) for comparison."""
    if request.param == "direct":
        return Target(demo_upstream.url)
    return Target(gw.url, http2=request.param == "gateway-h2")


# --- the real Python SDK client, with a recording HTTP client ------------------------------------


@dataclass
class Exchange:
    method: str
    req_headers: dict[str, str]
    body: Any
    status: int
    resp_headers: dict[str, str]
    http_version: str


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    async def on_response(self, response: httpx2.Response) -> None:
        req = response.request
        try:
            body = json.loads(req.content) if req.content else None
        except (ValueError, httpx2.RequestNotRead):
            body = None
        self.exchanges.append(Exchange(req.method, {k.lower(): v for k, v in req.headers.items()}, body,
                                       response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                       response.http_version))

    def posts(self, method: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and isinstance(e.body, dict)
                and e.body.get("method") == method]

    def of(self, http_method: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == http_method]


class SdkClient:
    """`mcp.Client` over Streamable HTTP with an httpx2 client that records every exchange."""

    def __init__(self, target: Target, mode: str, **client_kwargs: Any):
        self.rec = Recorder()
        self.http_version = "HTTP/2" if target.http2 else "HTTP/1.1"
        self.http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300), http1=not target.http2,
                                       http2=target.http2, event_hooks={"response": [self.rec.on_response]})
        self.client = Client(streamable_http_client(target.url, http_client=self.http), mode=mode, **client_kwargs)

    async def __aenter__(self) -> Client:
        await self.http.__aenter__()
        return await self.client.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.client.__aexit__(*exc)
        finally:
            await self.http.__aexit__(*exc)


MODES = ["auto", MODERN, "legacy"]
EXPECTED_VERSION = {"auto": MODERN, MODERN: MODERN, "legacy": LEGACY}


@pytest.mark.parametrize("mode", MODES)
async def test_sdk_discover_list_call_and_ui_read(target, mode):
    sdk = SdkClient(target, mode)
    async with sdk as client:
        assert client.protocol_version == EXPECTED_VERSION[mode]
        if mode != MODERN:  # a pinned 2026 client adopts a synthesized discover result, no probe
            assert client.server_info is not None and client.server_info.name == "mcp-warden-demo"

        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"echo", "show_dashboard", "book_trip", "slow_sum", "blocked_tool"} <= tools.keys()
        assert tools["show_dashboard"].meta["ui"]["resourceUri"] == DASHBOARD_URI

        text = "héllo, wörld ✓"
        result = await client.call_tool("echo", {"text": text})
        assert not result.is_error
        assert result.structured_content == {"result": text}

        ui = await client.read_resource(DASHBOARD_URI)
        assert ui.contents[0].mime_type == APP_MIME
        assert "<html>" in ui.contents[0].text

    rec = sdk.rec
    assert all(e.status < 400 for e in rec.exchanges), [(e.method, e.body, e.status) for e in rec.exchanges]
    assert {e.http_version for e in rec.exchanges} == {sdk.http_version}
    if mode == "auto":
        first = rec.exchanges[0]
        assert first.body["method"] == "server/discover" and first.status == 200
    if mode == "legacy":
        init = rec.posts("initialize")
        assert len(init) == 1 and init[0].status == 200 and init[0].resp_headers.get("mcp-session-id")
        assert not rec.posts("server/discover")
    else:
        (call,) = rec.posts("tools/call")
        assert call.req_headers["mcp-method"] == "tools/call"
        assert call.req_headers["mcp-protocol-version"] == MODERN
        # Non-ASCII values would be sentinel-encoded; a plain tool name travels as-is.
        assert call.req_headers["mcp-name"] == "echo"
        (read,) = rec.posts("resources/read")
        assert read.req_headers["mcp-name"] == DASHBOARD_URI


@pytest.mark.parametrize("mode", MODES)
async def test_sdk_elicitation_round_trip(target, mode):
    """book_trip asks for preferences: MRTR `input_required` + retry on 2026-07-28, a server-sent
    elicitation/create on the POST's SSE stream (answered by a posted JSON-RPC response) on legacy."""
    asked: list[str] = []

    async def on_elicit(_ctx, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"seat": "window", "meal": True})

    sdk = SdkClient(target, mode, elicitation_callback=on_elicit)
    async with sdk as client:
        result = await client.call_tool("book_trip", {"destination": "Rome"})
    assert result.structured_content == {"result": "Booked Rome: seat=window, meal=yes"}
    assert asked == ["Seat and meal preference for the trip to Rome?"]

    calls = sdk.rec.posts("tools/call")
    if mode == "legacy":
        assert len(calls) == 1
        answers = [e for e in sdk.rec.of("POST") if isinstance(e.body, dict) and "result" in e.body
                   and "method" not in e.body]
        assert len(answers) == 1 and answers[0].status == 202
        assert answers[0].body["result"]["action"] == "accept"
    else:
        # Round 1 -> input_required; round 2 is a new request (new id) with the answers and the
        # sealed requestState echoed back, routed with the same Mcp-Name.
        assert len(calls) == 2
        first, retry = (c.body for c in calls)
        assert first["id"] != retry["id"]
        assert "requestState" not in first["params"]
        assert retry["params"]["requestState"]
        assert list(retry["params"]["inputResponses"].values())[0]["action"] == "accept"
        assert all(c.req_headers["mcp-name"] == "book_trip" and c.status == 200 for c in calls)


@pytest.mark.parametrize("mode", MODES)
async def test_sdk_progress_arrives_before_result(target, mode):
    """slow_sum reports step 1 and then blocks on a gate that the test opens only after the
    client's progress callback has fired: the call can only complete if that progress
    notification reached the client while the tool was still running."""
    gate = f"gate-{uuid.uuid4().hex}"
    first_progress = anyio.Event()
    progress: list[tuple[float, str | None]] = []
    outcome: dict[str, Any] = {}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))
        first_progress.set()

    async with SdkClient(target, mode) as client:

        async def call() -> None:
            outcome["result"] = await client.call_tool(
                "slow_sum", {"a": 2, "b": 3, "steps": 3, "delay": 0, "gate": gate}, progress_callback=on_progress)

        with anyio.fail_after(GUARD_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await first_progress.wait()
                assert "result" not in outcome  # the tool is still blocked on the gate
                assert progress == [(1.0, "step 1")]
                opened = await client.call_tool("open_gate", {"gate": gate})
                assert opened.structured_content == {"result": f"opened {gate}"}

    assert outcome["result"].structured_content == {"result": 5}
    assert progress == [(1.0, "step 1"), (2.0, "step 2"), (3.0, "step 3")]


async def test_sdk_concurrent_requests_beside_a_get_stream(gw):
    """A 2025-11-25 session over HTTP/2 keeps an idle GET stream open on the connection that its
    requests share; two requests at once must both be answered, round after round (the client's
    own HTTP/2 stall that this once hit is fixed in h2_read_lock_fix.py)."""
    for _ in range(100):
        sdk = SdkClient(Target(gw.url, http2=True), "legacy")
        async with sdk as client:
            with anyio.fail_after(GUARD_S):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.list_tools)
                    tg.start_soon(client.list_tools)
        lists = sdk.rec.posts("tools/list")
        assert len(lists) == 2 and all(e.status == 200 and e.http_version == "HTTP/2" for e in lists)
        assert [e.status for e in sdk.rec.of("GET")] == [200]


@pytest.mark.parametrize("mode", ["auto", MODERN])
async def test_sdk_subscriptions_listen(target, mode):
    sdk = SdkClient(target, mode)
    async with sdk as client:
        with anyio.fail_after(GUARD_S):
            async with client.listen(tools_list_changed=True) as sub:
                # Entering waited for notifications/subscriptions/acknowledged.
                assert sub.honored.tools_list_changed is True
                await client.call_tool("announce_change", {})
                event = await sub.__anext__()
                assert isinstance(event, ToolsListChanged)
    (listen,) = sdk.rec.posts("subscriptions/listen")
    assert listen.status == 200 and listen.resp_headers["content-type"].startswith("text/event-stream")


async def test_sdk_legacy_session_get_stream_and_delete(target):
    """mode="legacy": initialize -> Mcp-Session-Id, the SDK opens the standalone GET SSE stream,
    a server notification arrives on it, and closing the client DELETEs the session."""
    received = anyio.Event()
    notes: list[str] = []

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if method:
            notes.append(method)
            if method == "notifications/tools/list_changed":
                received.set()

    sdk = SdkClient(target, "legacy", message_handler=on_message)
    async with sdk as client:
        with anyio.fail_after(GUARD_S):
            # The SDK opens its GET stream in the background; wait until Envoy answered it.
            while not sdk.rec.of("GET"):
                await anyio.sleep(0.05)
            await client.call_tool("announce_change", {})
            await received.wait()

    session_id = sdk.rec.posts("initialize")[0].resp_headers["mcp-session-id"]
    (get,) = sdk.rec.of("GET")
    assert get.status == 200 and get.resp_headers["content-type"].startswith("text/event-stream")
    assert get.req_headers["mcp-session-id"] == session_id
    (delete,) = sdk.rec.of("DELETE")
    assert delete.status == 200 and delete.req_headers["mcp-session-id"] == session_id
    assert "notifications/tools/list_changed" in notes


# --- raw HTTP/1.1 and HTTP/2 ---------------------------------------------------------------------


@pytest.fixture(params=["HTTP/1.1", "HTTP/2"])
def http_version(request) -> str:
    return request.param


def raw_client(http_version: str) -> httpx.AsyncClient:
    # http1=False + http2=True = HTTP/2 with prior knowledge (h2c), which Envoy's AUTO codec detects.
    h2 = http_version == "HTTP/2"
    return httpx.AsyncClient(http1=not h2, http2=h2, timeout=httpx.Timeout(30, read=GUARD_S))


def modern_call(rid: Any, method: str, params: dict | None = None, **meta_extra: Any) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": method,
            "params": {**(params or {}), "_meta": harness.modern_meta(**meta_extra)}}


async def sse_events(response: httpx.Response):
    """Yield the JSON payload of each SSE event as soon as its blank line arrives."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


async def jsonrpc_result(response: httpx.Response, rid: Any) -> dict:
    """The JSON-RPC response with `rid` from a JSON or SSE response body."""
    if response.headers["content-type"].startswith("application/json"):
        return json.loads(await response.aread())
    async for msg in sse_events(response):
        if msg.get("id") == rid:
            return msg
    raise AssertionError(f"no JSON-RPC response with id {rid!r} in the stream")


async def test_raw_progress_is_streamed_not_buffered(gw, http_version):
    gate = f"gate-{uuid.uuid4().hex}"
    body = modern_call(7, "tools/call", {"name": "slow_sum", "arguments":
                                         {"a": 20, "b": 22, "steps": 3, "delay": 0, "gate": gate}}, progressToken="p7")
    async with raw_client(http_version) as http:
        with anyio.fail_after(GUARD_S):
            async with http.stream("POST", gw.url, json=body,
                                   headers=harness.modern_headers("tools/call", "slow_sum")) as resp:
                assert resp.status_code == 200
                assert resp.http_version == http_version
                assert resp.headers["content-type"].startswith("text/event-stream")
                events = sse_events(resp)
                first = await events.__anext__()
                # Read while slow_sum is blocked on the gate: nothing has buffered the stream.
                assert first["method"] == "notifications/progress"
                assert first["params"] == {"progressToken": "p7", "progress": 1, "total": 3, "message": "step 1"}
                opened = await http.post(gw.url, json=modern_call(8, "tools/call", {
                    "name": "open_gate", "arguments": {"gate": gate}}), headers=harness.modern_headers(
                    "tools/call", "open_gate"))
                assert opened.status_code == 200, opened.text
                rest = [msg async for msg in events]
    assert [m["params"]["progress"] for m in rest[:-1]] == [2, 3]
    final = rest[-1]
    assert final["id"] == 7 and final["result"]["structuredContent"] == {"result": 42}
    assert final["result"]["resultType"] == "complete"


async def gate_status(http: httpx.AsyncClient, url: str, gate: str) -> str:
    resp = await http.post(url, json=modern_call("status", "tools/call", {"name": "gate_status", "arguments": {
        "gate": gate}}), headers=harness.modern_headers("tools/call", "gate_status"))
    return resp.json()["result"]["structuredContent"]["result"]


class RawH2:
    """A minimal HTTP/2 (prior knowledge) client over one TCP connection, built on `h2`, because
    httpx never sends RST_STREAM when a response is closed early (it just forgets the stream)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.status: dict[int, int] = {}

    async def __aenter__(self) -> "RawH2":
        self.sock = await anyio.connect_tcp("127.0.0.1", self.port)
        self.conn.initiate_connection()
        await self._flush()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.sock.aclose()

    async def _flush(self) -> None:
        if out := self.conn.data_to_send():
            await self.sock.send(out)

    async def post(self, path: str, headers: dict[str, str], body: dict) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.data[sid] = bytearray()
        self.conn.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "http"),
                                     (":authority", f"127.0.0.1:{self.port}")]
                               + [(k.lower(), v) for k, v in headers.items()])
        self.conn.send_data(sid, json.dumps(body).encode(), end_stream=True)
        await self._flush()
        return sid

    async def read_until(self, sid: int, done: Callable[[bytes], bool]) -> bytes:
        while not done(bytes(self.data[sid])) and sid not in self.ended:
            for event in self.conn.receive_data(await self.sock.receive()):
                if isinstance(event, h2.events.ResponseReceived):
                    self.status[event.stream_id] = int(dict(event.headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self.data.setdefault(event.stream_id, bytearray()).extend(event.data)
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    self.ended.add(event.stream_id)
            await self._flush()
        return bytes(self.data[sid])

    async def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        await self._flush()


async def test_raw_closing_the_stream_cancels_upstream(gw, http_version):
    """2026-07-28: closing the SSE response stream is the cancellation. The downstream close must
    reach the upstream through Envoy and the filter (HTTP/1.1: the client closes its connection;
    HTTP/2: RST_STREAM on that one stream while the connection stays up), and cancel the tool,
    which is blocked on its gate, so it can only end by cancellation."""
    gate = f"gate-{uuid.uuid4().hex}"
    body = modern_call(11, "tools/call", {"name": "slow_sum", "arguments":
                                          {"a": 1, "b": 2, "steps": 3, "delay": 0, "gate": gate}}, progressToken=11)
    headers = harness.modern_headers("tools/call", "slow_sum")
    with anyio.fail_after(GUARD_S):
        async with httpx.AsyncClient() as side:
            if http_version == "HTTP/1.1":
                async with raw_client(http_version) as http:
                    async with http.stream("POST", gw.url, json=body, headers=headers) as resp:
                        events = sse_events(resp)  # keep a reference: a collected generator closes the stream
                        first = await events.__anext__()
                        assert first["params"]["progress"] == 1
                        assert await gate_status(side, gw.url, gate) == "waiting"
                    # Leaving the block closes the unfinished response, and with it the connection.
                while (state := await gate_status(side, gw.url, gate)) == "waiting":
                    await anyio.sleep(0.05)
            else:
                async with RawH2(gw.port) as h2c:
                    sid = await h2c.post("/mcp", headers, body)
                    await h2c.read_until(sid, lambda b: b"notifications/progress" in b and b"\n" in b.split(b"notifications/progress", 1)[1])
                    assert h2c.status[sid] == 200
                    assert await gate_status(side, gw.url, gate) == "waiting"
                    await h2c.reset(sid)
                    # The connection stays up: poll on it, each poll a new stream.
                    while True:
                        poll = await h2c.post("/mcp", harness.modern_headers("tools/call", "gate_status"),
                                              modern_call("status", "tools/call", {"name": "gate_status",
                                                                                   "arguments": {"gate": gate}}))
                        reply = json.loads(await h2c.read_until(poll, lambda b: False))
                        if (state := reply["result"]["structuredContent"]["result"]) != "waiting":
                            break
                        await anyio.sleep(0.05)
    assert state == "cancelled"


async def test_raw_subscriptions_listen_streams_events(gw, http_version):
    listen = modern_call("listen-1", "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    async with raw_client(http_version) as http:
        with anyio.fail_after(GUARD_S):
            async with http.stream("POST", gw.url, json=listen,
                                   headers=harness.modern_headers("subscriptions/listen")) as resp:
                assert resp.status_code == 200 and resp.http_version == http_version
                assert resp.headers["content-type"].startswith("text/event-stream")
                events = sse_events(resp)
                ack = await events.__anext__()
                assert ack["method"] == "notifications/subscriptions/acknowledged"
                assert ack["params"]["notifications"] == {"toolsListChanged": True}
                assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
                announced = await http.post(gw.url, json=modern_call(2, "tools/call", {
                    "name": "announce_change", "arguments": {}}), headers=harness.modern_headers(
                    "tools/call", "announce_change"))
                assert announced.status_code == 200, announced.text
                change = await events.__anext__()
                assert change["method"] == "notifications/tools/list_changed"
                assert change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"


LEGACY_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "mcp-warden-e2e", "version": "0"}}}
LEGACY_ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def legacy_initialize(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    """initialize + notifications/initialized; returns the headers later session requests carry."""
    async with http.stream("POST", url, json=LEGACY_INIT, headers=LEGACY_ACCEPT) as resp:
        assert resp.status_code == 200
        session_id = resp.headers.get("mcp-session-id")
        assert session_id, dict(resp.headers)
        init = await jsonrpc_result(resp, 1)
    assert init["result"]["protocolVersion"] == LEGACY
    session = {**LEGACY_ACCEPT, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": LEGACY}
    note = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    assert note.status_code == 202, note.text
    return session


async def legacy_call(http: httpx.AsyncClient, url: str, session: dict, rid: int, method: str,
                      params: dict, headers: dict | None = None) -> tuple[httpx.Response, dict | None]:
    async with http.stream("POST", url, json={"jsonrpc": "2.0", "id": rid, "method": method, "params": params},
                           headers={**session, **(headers or {})}) as resp:
        if resp.status_code != 200:
            await resp.aread()
            return resp, None
        return resp, await jsonrpc_result(resp, rid)


async def test_raw_legacy_session(gw, http_version):
    """initialize -> Mcp-Session-Id -> GET SSE stream (a notification arrives on it) -> tools/call
    -> DELETE -> the session is gone (404), over HTTP/1.1 and HTTP/2."""
    async with raw_client(http_version) as http:
        with anyio.fail_after(GUARD_S):
            session = await legacy_initialize(http, gw.url)
            get_headers = {k: v for k, v in session.items() if k != "Content-Type"}
            get_headers["Accept"] = "text/event-stream"
            async with http.stream("GET", gw.url, headers=get_headers) as stream:
                assert stream.status_code == 200 and stream.http_version == http_version
                assert stream.headers["content-type"].startswith("text/event-stream")
                resp, msg = await legacy_call(http, gw.url, session, 2, "tools/call",
                                              {"name": "announce_change", "arguments": {}})
                assert resp.status_code == 200 and msg["result"]["content"][0]["text"] == "announced"
                stream_events = sse_events(stream)
                note = await stream_events.__anext__()
                assert note["method"] == "notifications/tools/list_changed"

            resp, msg = await legacy_call(http, gw.url, session, 3, "tools/call",
                                          {"name": "echo", "arguments": {"text": "legacy"}})
            assert resp.status_code == 200 and msg["result"]["structuredContent"] == {"result": "legacy"}

            deleted = await http.delete(gw.url, headers=session)
            assert deleted.status_code == 200, deleted.text
            gone, _ = await legacy_call(http, gw.url, session, 4, "tools/call",
                                        {"name": "echo", "arguments": {"text": "late"}})
            assert gone.status_code == 404


async def test_raw_filter_is_in_the_path(gw, http_version):
    """A modern Mcp-Name mismatch is answered by the filter (400, -32020, id kept) and never
    reaches the upstream (Envoy's upstream request counter does not move)."""
    counter = "cluster.mcp_upstream.upstream_rq_total"
    before = gw.stats(counter)[counter]
    async with raw_client(http_version) as http:
        resp = await http.post(gw.url, json=modern_call(9, "tools/call", {"name": "echo", "arguments": {"text": "x"}}),
                               headers=harness.modern_headers("tools/call", "not-echo"))
    assert resp.status_code == 400 and resp.http_version == http_version
    err = resp.json()
    assert err["id"] == 9 and err["error"]["code"] == -32020
    assert gw.stats(counter)[counter] == before


# --- Envoy routes on the headers the filter made trustworthy (envoy/e2e-routes.yaml) --------------


CALL_BLOCKED = {"name": "blocked_tool", "arguments": {}}


async def test_route_legacy_name_set_by_filter(routes_gw, http_version):
    """Legacy tools/call of blocked_tool, no Mcp-Name from the client: the filter sets it from the
    body and the route table is re-evaluated, so the mcp-name route answers 403."""
    async with raw_client(http_version) as http:
        resp, _ = await legacy_call(http, routes_gw.url, LEGACY_ACCEPT, 1, "tools/call", CALL_BLOCKED)
    assert resp.status_code == 403 and resp.text == ROUTE_BLOCKED


async def test_an_answer_from_a_cluster_the_decision_did_not_name_is_withheld(routes_gw, http_version):
    """envoy/e2e-routes.yaml routes `mcp-name: echo` + `x-route-test: elsewhere` to mcp_upstream_b.
    A legacy call (no Mcp-Name) and a modern one naming echo in the Base64 sentinel reach that route
    only after the filter's edits, while the cluster the filter decided for is the route's before
    them (mcp_upstream): their answers are withheld (-31502 upstream_changed), never passed. A
    modern call that names echo plainly is routed there from the start and served."""
    elsewhere = {"x-route-test": "elsewhere"}
    echo = {"name": "echo", "arguments": {"text": "where"}}
    async with raw_client(http_version) as http:
        session = await legacy_initialize(http, routes_gw.url)
        resp, msg = await legacy_call(http, routes_gw.url, session, 2, "tools/call", echo, headers=elsewhere)
        assert resp.status_code == 200 and msg["error"]["code"] == -31502, (resp.status_code, msg)
        assert msg["error"]["data"]["finding"] == "upstream_changed" and msg["id"] == 2, msg
        for name, served in (("=?base64?ZWNobw==?=", False), ("echo", True)):
            headers = {**LEGACY_ACCEPT, **elsewhere, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
                       "Mcp-Name": name}
            async with http.stream("POST", routes_gw.url, json=modern_call(3, "tools/call", echo),
                                   headers=headers) as r:
                assert r.status_code == 200, name
                msg = await jsonrpc_result(r, 3)
            if served:
                assert msg["result"]["structuredContent"] == {"result": "where"}, msg
            else:
                assert msg["error"]["data"]["finding"] == "upstream_changed", msg
        # Without the header the route is the same before and after the edits: served.
        resp, msg = await legacy_call(http, routes_gw.url, session, 4, "tools/call", echo)
        assert resp.status_code == 200 and msg["result"]["structuredContent"] == {"result": "where"}, msg


async def test_route_legacy_lying_client_is_routed_by_body(routes_gw, http_version):
    async with raw_client(http_version) as http:
        # Claims echo, body says blocked_tool: routed by the body.
        resp, _ = await legacy_call(http, routes_gw.url, LEGACY_ACCEPT, 1, "tools/call", CALL_BLOCKED,
                                    headers={"Mcp-Name": "echo", "Mcp-Method": "tools/list"})
        assert resp.status_code == 403 and resp.text == ROUTE_BLOCKED
        # Claims blocked_tool, body says echo: the filter overwrites the header, the request is
        # routed away from the 403 route to the upstream, which runs echo.
        session = await legacy_initialize(http, routes_gw.url)
        resp, msg = await legacy_call(http, routes_gw.url, session, 2, "tools/call",
                                      {"name": "echo", "arguments": {"text": "routed"}},
                                      headers={"Mcp-Name": "blocked_tool"})
        assert resp.status_code == 200, resp.text
        assert msg["result"]["structuredContent"] == {"result": "routed"}
        # Legacy method route: the filter sets Mcp-Method from the body.
        resp, _ = await legacy_call(http, routes_gw.url, session, 3, "prompts/get", {"name": "any"})
        assert resp.status_code == 404 and resp.text == ROUTE_NO_PROMPTS
        # A notification and a posted JSON-RPC response carry no name: a client Mcp-Name is removed.
        for message in ({"jsonrpc": "2.0", "method": "notifications/initialized"},
                        {"jsonrpc": "2.0", "id": 99, "result": {"action": "cancel"}}):
            resp = await http.post(routes_gw.url, json=message, headers={**session, "Mcp-Name": "blocked_tool"})
            assert resp.status_code == 202, (message, resp.status_code, resp.text)
        # A GET stream carrying a client Mcp-Name: the filter strips it, so it is not blocked.
        get_headers = {k: v for k, v in session.items() if k != "Content-Type"}
        async with http.stream("GET", routes_gw.url, headers={**get_headers, "Accept": "text/event-stream",
                                                              "Mcp-Name": "blocked_tool"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        await http.delete(routes_gw.url, headers=session)


async def test_route_modern(routes_gw, http_version):
    async with raw_client(http_version) as http:
        # Validated Mcp-Name: routed to the 403.
        resp = await http.post(routes_gw.url, json=modern_call(1, "tools/call", CALL_BLOCKED),
                               headers=harness.modern_headers("tools/call", "blocked_tool"))
        assert resp.status_code == 403 and resp.text == ROUTE_BLOCKED
        # Client claims blocked_tool for echo: the filter rejects the mismatch before any route acts.
        resp = await http.post(routes_gw.url, json=modern_call(2, "tools/call", {"name": "echo", "arguments": {}}),
                               headers=harness.modern_headers("tools/call", "blocked_tool"))
        assert resp.status_code == 400 and resp.json()["error"]["code"] == -32020
        # Claims echo for blocked_tool: also a mismatch, never reaches the upstream's blocked_tool.
        resp = await http.post(routes_gw.url, json=modern_call(3, "tools/call", CALL_BLOCKED),
                               headers=harness.modern_headers("tools/call", "echo"))
        assert resp.status_code == 400 and resp.json()["error"]["code"] == -32020
        # A method without a name: a client Mcp-Name is removed, so the request is not blocked.
        resp = await http.post(routes_gw.url, json=modern_call(4, "server/discover"),
                               headers=harness.modern_headers("server/discover", "blocked_tool"))
        assert resp.status_code == 200, resp.text
        assert MODERN in resp.json()["result"]["supportedVersions"]
        # And the Mcp-Method route for a validated modern prompts/get.
        resp = await http.post(routes_gw.url, json=modern_call(5, "prompts/get", {"name": "p"}),
                               headers=harness.modern_headers("prompts/get", "p"))
        assert resp.status_code == 404 and resp.text == ROUTE_NO_PROMPTS



async def test_route_modern_header_spellings_cannot_dodge_the_route(routes_gw, http_version):
    """Routes compare bytes. A 2026-07-28 client may sentinel-encode a plain name
    (`=?base64?YmxvY2tlZF90b29s?=` decodes to blocked_tool, so it matches the body); the filter
    must hand the router the canonical spelling, else the route is bypassed. Repeated Mcp-Name
    lines must be judged as a whole, never by their first line."""
    encoded = "=?base64?" + base64.b64encode(b"blocked_tool").decode() + "?="
    counter = "cluster.mcp_upstream.upstream_rq_total"
    before = routes_gw.stats(counter)[counter]
    async with raw_client(http_version) as http:
        resp = await http.post(routes_gw.url, json=modern_call(1, "tools/call", CALL_BLOCKED),
                               headers=harness.modern_headers("tools/call", encoded))
        assert resp.status_code == 403 and resp.text == ROUTE_BLOCKED, resp.text
        for lines in (["blocked_tool", "echo"], ["echo", "blocked_tool"], ["blocked_tool", "blocked_tool"]):
            headers = list(harness.modern_headers("tools/call").items()) + [("Mcp-Name", v) for v in lines]
            resp = await http.post(routes_gw.url, json=modern_call(2, "tools/call", CALL_BLOCKED), headers=headers)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == -32020, (lines, resp.text)
    assert routes_gw.stats(counter)[counter] == before

# --- era switches, seen by the real client -------------------------------------------------------

PLUGIN_CONFIG = {"supported_versions": [MODERN], "max_body_bytes": 1048576}


async def connects(url: str, mode: str) -> str | None:
    """The negotiated protocol version after an echo call, or None if the client failed."""
    try:
        async with SdkClient(Target(url), mode) as client:
            result = await client.call_tool("echo", {"text": "era"})
            assert result.structured_content == {"result": "era"}
            return client.protocol_version
    except Exception:  # noqa: BLE001 - any failure to connect/call counts as "not served"
        return None


async def test_era_switch_modern_only(gateway, demo_upstream):
    gw = gateway(upstream_port=demo_upstream.port, wait_mcp=True,
                 plugin_config={"eras": {"modern": True, "legacy": False}, **PLUGIN_CONFIG})
    assert await connects(gw.url, "auto") == MODERN
    assert await connects(gw.url, MODERN) == MODERN
    assert await connects(gw.url, "legacy") is None
    counter = "cluster.mcp_upstream.upstream_rq_total"
    before = gw.stats(counter)[counter]
    async with httpx.AsyncClient() as http:
        get = await http.get(gw.url, headers={"Accept": "text/event-stream"})
        assert get.status_code == 405
        init = await http.post(gw.url, json=LEGACY_INIT, headers=LEGACY_ACCEPT)
        assert init.status_code == 400
        # A dual-era client learns which versions are served (spec: name them on initialize errors).
        assert init.json()["error"]["code"] == -32022 and MODERN in init.json()["error"]["data"]["supported"]
    assert gw.stats(counter)[counter] == before


async def test_era_switch_legacy_only(gateway, demo_upstream):
    """With 2026-07-28 switched off, the filter's 400 carries no modern error code, so the SDK's
    "auto" client falls back to initialize, as the spec's fallback rules intend."""
    gw = gateway(upstream_port=demo_upstream.port,
                 plugin_config={"eras": {"modern": False, "legacy": True}, **PLUGIN_CONFIG})
    assert await connects(gw.url, "auto") == LEGACY
    assert await connects(gw.url, "legacy") == LEGACY
    assert await connects(gw.url, MODERN) is None
