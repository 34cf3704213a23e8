"""Fail closed on a plugin panic at every callback, through real Envoy 1.40 (V8).

The fault-injection build (`make build-fault`, crates/filter/src/fault.rs) panics (a wasm trap)
where it is told to:

- per request, header `x-warden-test-panic: request-body | request-trailers | response-headers |
  response-body` (`1` = request headers: tests/e2e/test_corpus_replay.py::test_vm_panic_fails_closed);
- per plugin, configuration key `"test_panic": "configure"` (in `on_configure`) or `"tick"` (in
  the root context's first `on_tick` at least `"test_panic_delay_ms"` after configure).

Envoy runs envoy/e2e-replay.yaml (one worker) in front of the recording upstream, so every test
knows exactly what reached the upstream. The invariant checked everywhere: the request whose filter
panicked is not answered by the upstream to its client, and no later request is ever forwarded
unfiltered (a hostile tools/call whose `Mcp-Name` names another tool than its body is never seen
by the upstream; a forwarded request carries the headers the filter writes from the body).

Observed on Envoy 1.40.0 (V8), one worker, `failure_policy: FAIL_CLOSED` (what envoy/*.yaml ship
except local.yaml) unless said otherwise:

- request body, request trailers (HTTP/1.1 and h2): the panicking request gets 503 with an empty
  body (HTTP/1.1: content-length 0) and the upstream sees nothing (the filter holds the request
  until it has read it). HTTP/1.1 request trailers reach filters only with the connection
  manager's `http_protocol_options.enable_trailers` (the test sets it; by default the codec drops
  them and the trailers callback never runs); without trailers there is no trailers callback and
  the same request is served normally.
- response headers: the upstream saw (and answered) the request; its client gets Envoy's own 503
  with an empty body instead of the answer.
- response body: the response headers had already gone to the client (the filter continues them
  at once, also when it buffers the body for the list filter): the client gets the upstream's
  200 and headers (the upstream's content-length, or chunked), then the stream is cut before any
  body byte: HTTP/1.1 closes the connection (IncompleteRead, 0 bytes), h2 resets the stream
  (RST_STREAM INTERNAL_ERROR, no DATA). A tools/list tool the policy hides never reaches it.
- after any of these, every later request on the worker (hostile, valid, lying legacy) is 503
  with an empty body and nothing reaches the upstream: the VM is not recreated.
- FAIL_RELOAD (request trailers over h2, request body, response body): the panicking request as
  above; the next requests are 503 for about a second (the reload back-off), then a fresh VM
  filters them (hostile 400 -32020, liar forwarded with rewritten headers).
- configure: at startup Envoy configures the plugin on its main thread first; the panic fails it
  ("Failed to configure base Wasm plugin", "Unable to create Wasm plugin mcp-warden") and Envoy
  exits 1 without ever listening, with FAIL_CLOSED and FAIL_RELOAD alike (and FAIL_OPEN, seen
  while writing this test); connection attempts meanwhile are refused.
- tick: every root context ticks, so the main thread's VM and the worker's both panic (tens of ms
  apart). Requests before it are filtered. A request already forwarded (filtered) whose answer is
  on its way when the worker's VM dies gets its 200 headers and then a cut body, as in the
  response-body case. It happened in every run: the recording upstream's header and body
  writes reach Envoy ~40 ms apart (Nagle on its side), most of each forwarded request's life, and
  the panicking tick lands in that gap. FAIL_CLOSED: every later request 503.
  FAIL_RELOAD: the first request after the panic already runs on a fresh VM (its root context
  configures again on the worker, and panics again a delay later); no 503 was seen.
- For contrast (not shipped, not tested here): with FAIL_OPEN a hostile request sent after the
  tick panic reached the upstream unfiltered, as FAIL_OPEN promises.
"""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from wardenkit import harness

TEMPLATE = "envoy/e2e-replay.yaml"
# Case ids are unique in the module (the recorder is shared by its tests).
_IDS = itertools.count(1)
PLUGIN_CONFIG = {"eras": {"modern": True, "legacy": True}, "supported_versions": ["2026-07-28"],
                 "max_body_bytes": 1048576}
# HTTP/1 request trailers reach filters only with this (Envoy's HTTP/1 codec drops them by default).
HTTP1_TRAILERS = {"codec_type: AUTO": "codec_type: AUTO\n          http_protocol_options: { enable_trailers: true }"}
PANIC = "x-warden-test-panic"

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "fail-closed", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


@dataclass
class Req:
    """One MCP request: what the filter must do with it (`reject` code or forward headers)."""
    name: str
    headers: list[tuple[str, str]]
    body: bytes
    reject: int | None = None  # the JSON-RPC error code a healthy filter answers with (HTTP 400)
    forward: tuple[str, str | None] | None = None  # (mcp-method, mcp-name) the upstream must see
    answer: dict | None = None  # what the client must get when forwarded (else the recorder's own answer)


def modern_call(tool: str, rid: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}, "_meta": META}}).encode()


MODERN_HEADERS = [("content-type", "application/json"), ("accept", "application/json, text/event-stream"),
                  ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call")]
GOOD = Req("good", MODERN_HEADERS + [("mcp-name", "echo")], modern_call("echo", 3), forward=("tools/call", "echo"))
# Mcp-Name says read_file (what a router/RBAC would allow), the body calls delete_all.
HOSTILE = Req("hostile", MODERN_HEADERS + [("mcp-name", "read_file")], modern_call("delete_all", 41),
              reject=-32020)
# A legacy call whose client-sent Mcp-Method / Mcp-Name lie: forwarded only with both rewritten.
LIAR = Req("liar", [("content-type", "application/json"), ("accept", "application/json, text/event-stream"),
                    ("mcp-session-id", "5c0ffee"), ("mcp-protocol-version", "2025-11-25"),
                    ("mcp-method", "tools/list"), ("mcp-name", "admin_shutdown")],
           b'{"jsonrpc":"2.0","id":141,"method":"tools/call","params":{"name":"echo","arguments":{}}}',
           forward=("tools/call", "echo"))

# A tools/list the policy filters: the upstream's answer lists delete_all, which a deny rule hides,
# so the filter buffers the answer and removes it (the recorder answers as told, in 3 chunks).
LISTED_CONFIG = {**PLUGIN_CONFIG, "rules": [{"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]},
                                             "action": "deny"}]}
_TOOLS = [{"name": n, "description": f"{n} tool", "inputSchema": {"type": "object"}} for n in ("echo", "delete_all")]
_LIST_ANSWER = json.dumps({"jsonrpc": "2.0", "id": 2, "result": {"tools": _TOOLS}}).encode()
LISTED = Req("listed", MODERN_HEADERS[:3] + [("mcp-method", "tools/list"), ("x-corpus-response", base64.b64encode(json.dumps(
                 {"headers": [["content-type", "application/json"]], "body_b64": base64.b64encode(_LIST_ANSWER).decode(),
                  "chunks": [5, 40, 1]}).encode()).decode())],
             json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}}).encode(),
             forward=("tools/list", None),
             answer={"jsonrpc": "2.0", "id": 2, "result": {"tools": _TOOLS[:1], "cacheScope": "private"}})
TRAILERS = [("x-trailer", "1")]
# The tick panic's delay: long enough for the first requests to be answered before it.
TICK_DELAY_MS = 2000


def recorder_answer(rid, seq: int) -> bytes:
    """The recording upstream's own answer (tests/e2e/recording_upstream.py)."""
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"recorded": seq}}).encode()


# ------------------------------------------------------------------------------------------------
# Raw clients that report what the peer did, including a cut answer

@dataclass
class Answer:
    status: int  # 0: no response head at all
    headers: dict[str, str]
    body: bytes
    cut: str = ""  # how the answer ended early ("" = complete)

    def show(self) -> str:
        return f"{self.status or 'no status'} {self.body[:100]!r}" + (f" [{self.cut}]" if self.cut else "")


def send_h1(port: int, headers: list[tuple[str, str]], body: bytes, *, chunked: bool = False,
            trailers: list[tuple[str, str]] | None = None) -> Answer:
    """One POST /mcp on a fresh HTTP/1.1 connection (chunked: one chunk, then `trailers`)."""
    lines = [b"POST /mcp HTTP/1.1", b"host: 127.0.0.1"] + [f"{k}: {v}".encode() for k, v in headers]
    lines.append(b"transfer-encoding: chunked" if chunked else b"content-length: %d" % len(body))
    lines.append(b"connection: close")
    out = b"\r\n".join(lines) + b"\r\n\r\n"
    if chunked:
        out += b"%x\r\n" % len(body) + body + b"\r\n0\r\n"
        out += b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers or []) + b"\r\n"
    else:
        out += body
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)

    def write() -> None:
        try:
            sock.sendall(out)
        except OSError:
            pass  # Envoy answered early and closed; the answer is what we check

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    resp = http.client.HTTPResponse(sock, method="POST")
    try:
        try:
            resp.begin()
        except (http.client.HTTPException, OSError) as e:
            return Answer(0, {}, b"", f"no response: {type(e).__name__}")
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            return Answer(resp.status, hdrs, resp.read())
        except http.client.IncompleteRead as e:
            return Answer(resp.status, hdrs, e.partial, f"body cut after {len(e.partial)} bytes (IncompleteRead)")
        except OSError as e:
            return Answer(resp.status, hdrs, b"", f"body cut: {type(e).__name__}")
    finally:
        sock.close()
        writer.join(timeout=30)


def send_h2(port: int, headers: list[tuple[str, str]], body: bytes, *,
            trailers: list[tuple[str, str]] | None = None) -> Answer:
    """One POST /mcp as one stream on a fresh h2c (prior knowledge) connection: HEADERS, one DATA
    frame, then a trailers HEADERS frame ending the stream when `trailers` is given."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    hdrs = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"), (b":path", b"/mcp")]
    hdrs += [(k.encode(), v.encode()) for k, v in headers]
    if not trailers:
        hdrs.append((b"content-length", str(len(body)).encode()))
    status, resp_headers, data, cut, done = 0, {}, bytearray(), "", False
    try:
        conn.send_headers(sid, hdrs)
        conn.send_data(sid, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(sid, [(k.encode(), v.encode()) for k, v in trailers], end_stream=True)
        sock.sendall(conn.data_to_send())
        while not done:
            raw = sock.recv(65536)
            if not raw:
                cut = cut or "connection closed"
                break
            for ev in conn.receive_data(raw):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    resp_headers = {k.decode(): v.decode("latin-1") for k, v in ev.headers}
                    status = int(resp_headers.get(":status", "0"))
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data.extend(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    cut, done = f"RST_STREAM {ev.error_code!r}", True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    cut, done = f"GOAWAY {ev.error_code!r}", True
            sock.sendall(conn.data_to_send())
    except (h2.exceptions.ProtocolError, OSError) as e:
        cut = cut or f"{type(e).__name__}: {e}"
    finally:
        sock.close()
    return Answer(status, resp_headers, bytes(data), cut)


def send(proto: str, port: int, headers: list[tuple[str, str]], body: bytes,
         trailers: list[tuple[str, str]] | None = None) -> Answer:
    if proto == "h2":
        return send_h2(port, headers, body, trailers=trailers)
    return send_h1(port, headers, body, chunked=trailers is not None, trailers=trailers)


# ------------------------------------------------------------------------------------------------
# One gateway running the fault build, and the checks on what passed

class FaultGateway:
    """Envoy (envoy/e2e-replay.yaml, one worker) running the fault build, and what it did."""

    def __init__(self, recorder: harness.Recorder, tmp: Path, policy: str = "FAIL_CLOSED",
                 plugin_config: dict | None = None, replace: dict[str, str] | None = None, wait: bool = True):
        if not harness.WASM_FAULT.is_file():
            pytest.fail(f"fault-injection filter not built: {harness.WASM_FAULT} (make build-fault)", pytrace=False)
        self.recorder, self.policy = recorder, policy
        self.port, self.admin = harness.free_port(), harness.free_port()
        cfg = harness.render_envoy_config(
            TEMPLATE, tmp, {"GATEWAY_PORT": self.port, "ADMIN_PORT": self.admin, "UPSTREAM_PORT": recorder.port},
            wasm=harness.WASM_FAULT, plugin_config=plugin_config or PLUGIN_CONFIG,
            replace={"failure_policy: FAIL_CLOSED": f"failure_policy: {policy}", **(replace or {})})
        self.observed: list[str] = [f"failure_policy: {policy}"]
        self.cids: list[str] = []
        # Root-context panics only: a request may be in flight when the VM dies (see probe).
        self.in_flight_ok = False
        self.in_flight = 0
        self._panics_before = 0
        self.started = time.monotonic()
        if wait:
            self.proc = harness.start_envoy(cfg, self.admin, tmp, name="envoy-fault")
        else:  # started, not waited for (an Envoy expected never to be ready)
            self.proc = harness.Proc("envoy-fault", [str(harness.ENVOY), "-c", str(cfg), "--concurrency", "1",
                                                     "--base-id", str(self.admin), "-l", "info"], tmp)
        harness.LIVE_PROCS.append(self.proc)

    def stop(self) -> None:
        if self.proc.popen.poll() is None:
            try:
                self.observed.append("wasm stats: " + self.wasm_stats())
            except OSError:
                pass
        if self.proc in harness.LIVE_PROCS:
            harness.LIVE_PROCS.remove(self.proc)
        self.proc.stop()

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def panics(self) -> int:
        return self.log().count("fault injection:")

    def worker_tick_panics(self) -> int:
        """Tick panics logged by a worker thread (Envoy's main thread has the process's pid as id)."""
        tids = re.findall(r"^\[[^\]]*\]\[(\d+)\]\[critical\]\[wasm\][^\n]*panicked at [^\n]*\n"
                          r"fault injection: test_panic at tick", self.log(), re.M)
        return sum(1 for t in tids if int(t) != self.proc.pid)

    def worker_configures(self) -> int:
        """Plugin configurations loaded by a worker's VM (one per VM the worker had)."""
        tids = re.findall(r"^\[[^\]]*\]\[(\d+)\]\[info\]\[wasm\][^\n]*mcp-warden: configuration loaded", self.log(), re.M)
        return sum(1 for t in tids if int(t) != self.proc.pid)

    def cid(self, label: str) -> str:
        c = f"{self.policy}-{next(_IDS)}-{label}"
        self.cids.append(c)
        return c

    def cases_seen(self) -> list[dict]:
        """Every request of this gateway's probes that reached the upstream."""
        mine = {c.encode() for c in self.cids}
        return [q for q in self.recorder.requests() if set(harness.header_values(q, "x-corpus-case")) & mine]

    def probe(self, req: Req, label: str, proto: str = "http1", extra: list[tuple[str, str]] = ()) -> Answer:
        """One request: filtered correctly or refused, never passed unfiltered. Returns the answer."""
        cid = self.cid(f"{label}-{req.name}")
        a = send(proto, self.port, req.headers + [("x-corpus-case", cid), *extra], req.body)
        seen = self.recorder.requests(cid)
        self.observed.append(f"{label}: {req.name} over {proto}: {a.show()} upstream-saw={len(seen)}")
        if req.reject is not None:
            assert seen == [], f"{label}: hostile request reached the upstream ({a.show()})\n{self.report()}"
            assert a.status in (400, 503), self.report()
            if a.status == 400:
                assert json.loads(a.body)["error"]["code"] == req.reject, a.show()
        elif a.status == 200 and not a.cut:
            # Forwarded: the filter must have run (routing headers written from the body).
            self.filtered(req, seen)
            want = req.answer or json.loads(recorder_answer(json.loads(req.body)["id"], seen[0]["seq"]))
            assert json.loads(a.body) == want, self.report()
        elif a.status == 200 and self.in_flight_ok:
            # Forwarded (filtered) before a root-context panic, whose answer then met the dead VM:
            # its headers had gone out, the body is cut before any byte.
            assert a.body == b"" and a.cut, self.report()
            self.filtered(req, seen)
            self.in_flight += 1
            self.observed.append("  ^ in flight at the panic")
        elif a.status == 503 and seen and self.in_flight_ok:
            # The same race one step earlier: forwarded (filtered) before the panic, and the dead
            # VM met the upstream's answer before its headers went out, so Envoy answered 503
            # (seen on a fresh clone once the recording upstream answered without a Nagle delay).
            self.filtered(req, seen)
            self.in_flight += 1
            self.observed.append("  ^ in flight at the panic (503)")
        else:
            assert a.status == 503 and seen == [], self.report()
        return a

    def filtered(self, req: Req, seen: list[dict]) -> None:
        """The upstream saw `req` once, with the routing headers the filter writes from the body."""
        assert len(seen) == 1, f"upstream saw {len(seen)}\n{self.report()}"
        assert harness.header_values(seen[0], "mcp-method") == [req.forward[0].encode()], self.report()
        want_name = [req.forward[1].encode()] if req.forward[1] else []
        assert harness.header_values(seen[0], "mcp-name") == want_name, self.report()

    def healthy(self, proto: str = "http1") -> None:
        """The filter runs: the hostile request is refused 400 -32020, good and liar are forwarded."""
        assert self.probe(HOSTILE, "healthy", proto).status == 400, self.report()
        assert self.probe(GOOD, "healthy", proto).status == 200, self.report()
        assert self.probe(LIAR, "healthy", proto).status == 200, self.report()

    def panicking(self, req: Req, point: str, proto: str,
                  trailers: list[tuple[str, str]] | None = None) -> tuple[Answer, list[dict]]:
        """Sends `req` asking for a panic at `point`; returns the client's answer and what the
        upstream saw of it (check them, then `panicked_at`)."""
        cid = self.cid(f"panic-{point}-{req.name}")
        self._panics_before = self.panics()
        a = send(proto, self.port, req.headers + [("x-corpus-case", cid), (PANIC, point)], req.body, trailers=trailers)
        seen = self.recorder.requests(cid)
        self.observed.append(f"PANIC at {point} ({req.name} over {proto}{', with trailers' if trailers else ''}): "
                             f"{a.show()} upstream-saw={len(seen)} headers={a.headers}")
        return a, seen

    def panicked_at(self, point: str) -> None:
        """The panic is in Envoy's log, at that very callback (before any later probe)."""
        callback = "".join(w.capitalize() for w in point.split("-"))
        wait_for(lambda: self.panics() > self._panics_before, f"a panic in Envoy's log after the {point} request", timeout=10)
        assert f"fault injection: {PANIC} at {callback}\n" in self.log(), f"the panic was not at {callback}\n{self.proc.tail()}"

    def stays_closed(self, proto: str) -> None:
        """FAIL_CLOSED after a panic: every later request on the worker is 503, for a while."""
        for i in range(5):
            for r in (HOSTILE, GOOD, LIAR):
                assert self.probe(r, f"after-{i}", proto).status == 503, self.report()

    def recovers(self, proto: str, timeout: float = 30.0) -> None:
        """FAIL_RELOAD after a panic: refused or filtered until a fresh VM filters again."""
        deadline = time.monotonic() + timeout
        n = 0
        while self.probe(LIAR, f"reload-poll-{n}", proto).status != 200:
            assert self.probe(HOSTILE, f"reload-poll-{n}", proto).status in (400, 503)
            assert time.monotonic() < deadline, f"no VM reload within {timeout} s\n{self.report()}"
            n += 1
            time.sleep(0.1)
        self.observed.append(f"recovered after {n} refused polls")
        assert self.probe(HOSTILE, "recovered", proto).status == 400, self.report()
        assert self.probe(GOOD, "recovered", proto).status == 200, self.report()

    def report(self) -> str:
        return "\n  ".join(self.observed)

    def wasm_stats(self) -> str:
        stats = harness.envoy_stats(self.admin, "wasm")
        return json.dumps({k: v for k, v in stats.items() if v}, sort_keys=True)


@pytest.fixture
def fault_gateway(recorder, tmp_path):
    started: list[FaultGateway] = []

    def start(**kw) -> FaultGateway:
        gw = FaultGateway(recorder, tmp_path / f"gw{len(started)}", **kw)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        print("\n" + gw.report())
        gw.stop()


def wait_for(cond, what: str, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(step)


# ------------------------------------------------------------------------------------------------
# Per-request panic points: request body and trailers

@pytest.mark.parametrize("proto", ["http1", "h2"])
@pytest.mark.parametrize("point", ["request-body", "request-trailers"])
def test_request_path_panic_fails_closed(point, proto, fault_gateway, recorder):
    """A panic while the filter holds the request (body, trailers): 503, nothing reaches the
    upstream, and every later request on the worker is 503 (FAIL_CLOSED)."""
    gw = fault_gateway(replace=HTTP1_TRAILERS)
    gw.healthy(proto)
    if point == "request-trailers":
        # Without trailers there is no trailers callback: the same request is filtered and served
        # (the hook sits in on_http_request_trailers only, and the VM is alive).
        a = gw.probe(GOOD, "no-trailers-control", proto, extra=[(PANIC, point)])
        assert a.status == 200, gw.report()
        assert gw.panics() == 0, gw.report()
    a, seen = gw.panicking(GOOD, point, proto, trailers=TRAILERS if point == "request-trailers" else None)
    assert seen == [], f"the upstream saw the request whose filter panicked at {point}\n{gw.report()}"
    assert (a.status, a.body, a.cut) == (503, b"", ""), gw.report()
    gw.panicked_at(point)
    gw.stays_closed(proto)


# ------------------------------------------------------------------------------------------------
# Per-request panic points: response headers and body

@pytest.mark.parametrize("proto", ["http1", "h2"])
@pytest.mark.parametrize("answer", ["plain", "listed"])
@pytest.mark.parametrize("point", ["response-headers", "response-body"])
def test_response_path_panic_fails_closed(point, answer, proto, fault_gateway, recorder):
    """A panic on the way back. The upstream did see the (valid) request; its client must not get
    the upstream's answer. `plain`: a tools/call whose answer only the content scan reads (its
    headers pass at once, without the length the scan may change); `listed`: a tools/list whose answer the list filter buffers to remove a
    hidden tool (`delete_all`), so what leaks here would be exactly what the policy hides."""
    gw = fault_gateway(plugin_config=LISTED_CONFIG if answer == "listed" else PLUGIN_CONFIG)
    gw.healthy(proto)
    req = LISTED if answer == "listed" else GOOD
    if answer == "listed":
        a = gw.probe(LISTED, "healthy", proto)
        assert a.status == 200 and b"delete_all" not in a.body, gw.report()  # the filter reads this answer
    a, seen = gw.panicking(req, point, proto)
    assert len(seen) == 1, f"the upstream should have seen the request once\n{gw.report()}"
    assert b"recorded" not in a.body and b"delete_all" not in a.body, f"the upstream's answer leaked\n{gw.report()}"
    if point == "response-headers":
        # Nothing of the answer was sent yet: Envoy answers 503 itself.
        assert (a.status, a.body, a.cut) == (503, b"", ""), gw.report()
    else:
        # The upstream's response headers already went out (the filter lets them pass, also when
        # it buffers the body to filter it): the client gets them, then the stream is cut before
        # any body byte.
        assert a.status == 200 and a.body == b"", gw.report()
        if answer == "plain":
            assert "content-length" not in a.headers, gw.report()
        want_cut = "RST_STREAM" if proto == "h2" else "IncompleteRead"
        assert want_cut in a.cut, gw.report()
    gw.panicked_at(point)
    gw.stays_closed(proto)


# ------------------------------------------------------------------------------------------------
# FAIL_RELOAD at the new points

@pytest.mark.parametrize("point,proto", [("request-trailers", "h2"), ("request-body", "http1"),
                                         ("response-body", "http1")])
def test_panic_fail_reload(point, proto, fault_gateway, recorder):
    """FAIL_RELOAD: the panicking request fails as with FAIL_CLOSED; the requests right after it
    are refused (503) or already filtered by a fresh VM, never passed unfiltered; once the VM is
    recreated the filter works again (hostile 400 -32020, liar rewritten)."""
    gw = fault_gateway(policy="FAIL_RELOAD", replace=HTTP1_TRAILERS)
    gw.healthy(proto)
    a, seen = gw.panicking(GOOD, point, proto, trailers=TRAILERS if point == "request-trailers" else None)
    if point.startswith("request"):
        assert seen == [] and (a.status, a.body) == (503, b""), gw.report()
    else:
        assert len(seen) == 1 and a.body == b"" and a.cut, gw.report()
    gw.panicked_at(point)
    gw.recovers(proto)


# ------------------------------------------------------------------------------------------------
# The root context: configure and tick

@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_RELOAD"])
def test_configure_panic_never_serves(policy, fault_gateway, recorder):
    """A panic in on_configure at startup: Envoy configures the plugin on the main thread first
    ("Failed to configure base Wasm plugin"), refuses the listener ("Unable to create Wasm plugin
    mcp-warden") and exits 1, with either policy. It never listens: nothing is ever served, so
    nothing passes unfiltered."""
    gw = fault_gateway(policy=policy, plugin_config={**PLUGIN_CONFIG, "test_panic": "configure"}, wait=False)
    refused = 0
    while gw.proc.popen.poll() is None:  # until Envoy gives up (bounded below)
        assert time.monotonic() - gw.started < 30, f"envoy still running 30 s after a configure panic\n{gw.proc.tail()}"
        try:
            gw.probe(HOSTILE, "during-startup")
            gw.observed.append("  (a connection was accepted)")
        except ConnectionRefusedError:
            refused += 1
            time.sleep(0.05)
    gw.observed.append(f"envoy exited {gw.proc.popen.returncode}; {refused} connection attempts refused meanwhile")
    log = gw.log()
    assert gw.proc.popen.returncode != 0, gw.report()
    assert "fault injection: test_panic at configure" in log, gw.proc.tail()
    assert "proxy_on_configure failed" in log and "Unable to create Wasm plugin mcp-warden" in log, gw.proc.tail()
    assert gw.cases_seen() == [], "a request reached the upstream through an Envoy whose plugin never configured"


@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_RELOAD"])
def test_tick_panic_fails_closed(policy, fault_gateway, recorder):
    """A panic in the root context's on_tick, TICK_DELAY_MS after configure: requests before it
    are filtered; after it nothing passes unfiltered. Observed: every root context ticks, so the
    main thread's VM panics as well as the worker's. FAIL_CLOSED: every later request on the
    worker is 503. FAIL_RELOAD: Envoy recreates the worker's VM within about 0.1 s (its new root
    context configures, arms the same fault, and panics again a delay later); requests keep being
    filtered, a 503 is possible only in the gap."""
    cfg = {**PLUGIN_CONFIG, "test_panic": "tick", "test_panic_delay_ms": TICK_DELAY_MS}
    gw = fault_gateway(policy=policy, plugin_config=cfg)
    gw.in_flight_ok = True
    # Before the tick: filtered, as by the normal build.
    gw.healthy()
    assert gw.worker_tick_panics() == 0, f"the tick came before the first requests were answered: raise TICK_DELAY_MS\n{gw.report()}"
    rounds = 0
    while gw.worker_tick_panics() == 0:
        assert time.monotonic() - gw.started < 30 + TICK_DELAY_MS / 1000, f"no tick panic on the worker\n{gw.proc.tail()}"
        for r in (HOSTILE, GOOD, LIAR):  # filtered or refused, never raw, right up to the panic
            gw.probe(r, "until-tick")
        rounds += 1
    gw.observed.append(f"worker tick panic after {rounds} more rounds of probes")
    if policy == "FAIL_CLOSED":
        gw.stays_closed("http1")
    else:
        gw.recovers("http1")
        assert gw.worker_configures() >= 2, f"no fresh VM on the worker after the panic\n{gw.proc.tail()}"
    # A cut answer only for a request in flight at a panic, not from a live VM.
    assert gw.in_flight <= gw.worker_tick_panics(), gw.report()
    gw.observed.append(f"worker VMs configured: {gw.worker_configures()}, worker tick panics: {gw.worker_tick_panics()}")
