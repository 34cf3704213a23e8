"""Every fixture-corpus case (fixtures/corpus/*.json, format in fixtures/README.md) replayed over a
raw socket to a real Envoy 1.40 running mcp-warden, in front of a recording upstream
(tests/e2e/recording_upstream.py).

- reject cases: the client gets the expected HTTP status and JSON-RPC error (code, id or no id,
  data) **and the upstream never saw the request**;
- forward cases: the client gets the upstream's answer, and the upstream saw the request exactly
  once, with exactly the expected `mcp-method` / `mcp-name` values (every occurrence of the header
  counts, so a duplicated header is caught) and the body byte for byte.

Every case is replayed over HTTP/1.1 and over HTTP/2 (h2c). Chunked cases are really sent with
`Transfer-Encoding: chunked`, one HTTP chunk per piece (over HTTP/2: one DATA frame per piece, no
content-length). Cases with a `config` override run on their own Envoy (one per distinct config).

Fail closed: `test_vm_panic_fails_closed` runs the fault-injection build (`make build-fault`),
which panics on a request carrying `x-warden-test-panic`, and checks what clients get then and
afterwards (see its docstring for what Envoy 1.40 was observed to do).
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from wardenkit import harness

ROOT = harness.ROOT
CORPUS_DIR = ROOT / "fixtures" / "corpus"
TEMPLATE = "envoy/e2e-replay.yaml"
DEFAULT_CONFIG_LINE = ('value: \'{"eras":{"modern":true,"legacy":true},"supported_versions":["2026-07-28"],'
                       '"max_body_bytes":1048576}\'')


# ------------------------------------------------------------------------------------------------
# The corpus

def _body(req: dict) -> bytes:
    if "body" in req:
        return req["body"].encode("utf-8")
    if "body_base64" in req:
        return base64.b64decode(req["body_base64"])
    if "body_parts" in req:
        return b"".join(p["text"].encode("utf-8") * p.get("repeat", 1) for p in req["body_parts"])
    return b""


def load_cases() -> list[dict]:
    cases = []
    for f in sorted(CORPUS_DIR.glob("*.json")):
        for c in json.loads(f.read_text(encoding="utf-8"))["cases"]:
            c["_file"] = f.name
            c["_body"] = _body(c["request"])
            cases.append(c)
    return cases


CASES = load_cases()


def config_key(case: dict) -> str:
    return json.dumps(case["config"], sort_keys=True, separators=(",", ":")) if case.get("config") else ""


# ------------------------------------------------------------------------------------------------
# Processes

class Gateways:
    """One Envoy per distinct plugin configuration, started on first use, stopped at the end."""

    def __init__(self, recorder: harness.Recorder, log_dir: Path, wasm: Path):
        self.recorder, self.log_dir, self.wasm = recorder, log_dir, wasm
        self.started: dict[str, tuple[int, int, harness.Proc]] = {}

    def get(self, key: str) -> int:
        if key not in self.started:
            n = len(self.started)
            port, admin = harness.free_port(), harness.free_port()
            replace = {DEFAULT_CONFIG_LINE: "value: '" + key + "'"} if key else None
            cfg = harness.render_envoy(TEMPLATE, self.log_dir / f"cfg{n}",
                                       {"GATEWAY_PORT": port, "ADMIN_PORT": admin, "UPSTREAM_PORT": self.recorder.port},
                                       wasm=self.wasm, replace=replace)
            proc = harness.start_envoy(cfg, admin, self.log_dir, name=f"envoy{n}")
            self.started[key] = (port, admin, proc)
        return self.started[key][0]

    def tail(self, key: str) -> str:
        return self.started[key][2].tail(40) if key in self.started else ""

    def stop(self) -> None:
        for _, _, proc in self.started.values():
            proc.stop()


@pytest.fixture(scope="module")
def gateways(recorder, tmp_path_factory):
    if not harness.WASM.is_file():
        pytest.fail(f"filter not built: {harness.WASM} is missing (make build)", pytrace=False)
    g = Gateways(recorder, tmp_path_factory.mktemp("envoy"), harness.WASM)
    yield g
    g.stop()


# ------------------------------------------------------------------------------------------------
# A raw HTTP/1.1 exchange

def pieces(body: bytes, chunks: list[int] | None) -> list[bytes]:
    out, at = [], 0
    for size in chunks or []:
        if at >= len(body):
            break
        out.append(body[at:at + size])
        at += size
    if at < len(body):
        out.append(body[at:])
    return out


def exchange(port: int, method: str, headers: list[tuple[str, bytes]], body: bytes,
             chunks: list[int] | None) -> tuple[int, dict[str, str], bytes]:
    """Sends one request on a fresh connection and returns (status, headers, body). The body is
    written from a second thread so an early answer (413 at the headers) is read even when Envoy
    stops reading the body."""
    lines = [f"{method} /mcp HTTP/1.1".encode(), b"host: 127.0.0.1"]
    lines += [k.encode() + b": " + v for k, v in headers]
    if chunks is not None:
        lines.append(b"transfer-encoding: chunked")
    elif method == "POST" or body:
        lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: close")
    head = b"\r\n".join(lines) + b"\r\n\r\n"

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)

    def write() -> None:
        try:
            sock.sendall(head)
            if chunks is not None:
                for p in pieces(body, chunks):
                    sock.sendall(b"%x\r\n" % len(p) + p + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            elif body:
                sock.sendall(body)
        except OSError:
            pass  # Envoy answered early and closed; the answer is what we check

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        sock.close()
        writer.join(timeout=30)


def exchange_h2(port: int, method: str, headers: list[tuple[str, bytes]], body: bytes,
                chunks: list[int] | None, trailers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[str, str], bytes]:
    """The same request over HTTP/2 (prior knowledge, h2c): one HEADERS frame, then the body as DATA
    frames (one per piece for chunked cases, no content-length), END_STREAM on the last. Returns
    (status, headers, body); status 0 when Envoy reset the stream without an answer."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sid = conn.get_next_available_stream_id()
    hdrs = [(b":method", method.encode()), (b":scheme", b"http"), (b":authority", b"127.0.0.1"), (b":path", b"/mcp")]
    hdrs += [(k.lower().encode(), v) for k, v in headers]
    if chunks is None and method == "POST":
        hdrs.append((b"content-length", str(len(body)).encode()))
    parts = pieces(body, chunks) if chunks is not None else ([body] if body else [])
    status, resp_headers, data, done = 0, {}, bytearray(), False

    def pump() -> None:
        nonlocal status, resp_headers, done
        raw = sock.recv(65536)
        if not raw:
            done = True
            return
        for ev in conn.receive_data(raw):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                resp_headers = {k.decode(): v.decode("latin-1") for k, v in ev.headers}
                status = int(resp_headers.get(":status", "0"))
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                data.extend(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and ev.stream_id == sid:
                done = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                done = True
        sock.sendall(conn.data_to_send())

    try:
        conn.send_headers(sid, hdrs, end_stream=not parts and chunks is None)
        if chunks is not None and not parts:
            conn.send_data(sid, b"", end_stream=True)
        sock.sendall(conn.data_to_send())
        for i, part in enumerate(parts):
            last = i + 1 == len(parts)
            view = memoryview(part)
            while True:
                if done:
                    break
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0 and len(view):
                    pump()  # wait for WINDOW_UPDATE (or an early answer)
                    continue
                n = min(room, len(view))
                conn.send_data(sid, bytes(view[:n]), end_stream=last and n == len(view) and not trailers)
                sock.sendall(conn.data_to_send())
                view = view[n:]
                if not len(view):
                    break
            if done:
                break
        if trailers and not done:
            conn.send_headers(sid, trailers, end_stream=True)
            sock.sendall(conn.data_to_send())
    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, OSError):
        pass  # Envoy answered early / reset the stream; read what it said
    try:
        while not done:
            pump()
    except OSError:
        pass
    finally:
        sock.close()
    return status, resp_headers, bytes(data)


def case_headers(case: dict, case_id: str) -> list[tuple[str, bytes]]:
    hs = [(k, v.encode("utf-8")) for k, v in case["request"]["headers"]]
    hs.append(("x-corpus-case", case_id.encode()))
    # Every case is an exchange of its own, as on the fake host (a fresh shared store per case):
    # an anonymous client is keyed by its user agent, so what one case's lists taught the tool
    # baselines does not judge the next case's. (Cases in a legacy session keep one client: the
    # session is bound to it, and tasks to their creator: only the methods baselines judge.)
    judged = re.search(rb'"method"\s*:\s*"(tools/list|tools/call|resources/read)"', case["_body"]) is not None
    if judged and not any(k.lower() in ("user-agent", "mcp-session-id") for k, _ in hs):
        hs.append(("user-agent", b"corpus/" + case_id.encode()))
    if "response" in case:
        r = case["response"]
        spec = {"status": r.get("status", 200), "headers": r["headers"], "body_b64": base64.b64encode(_body(r)).decode(),
                "chunks": r.get("chunks")}
        hs.append(("x-corpus-response", base64.b64encode(json.dumps(spec).encode())))
    return hs


def sse_data(body: bytes) -> list:
    """The JSON data of every event of an SSE body (`data:` lines joined, a blank line ends one;
    an event with no data, a resumability priming event, carries no message)."""
    out, data = [], None
    for line in body.decode("utf-8").split("\n"):
        line = line.removesuffix("\r")
        if not line:
            if data is not None and data.strip():
                out.append(json.loads(data))
            data = None
        elif line.startswith("data:"):
            v = line[5:].removeprefix(" ")
            data = v if data is None else data + "\n" + v
    if data is not None:
        raise ValueError("the stream ends inside an event")
    return out


def check_response(case: dict, body: bytes) -> list[str]:
    """What the client received of a response case's answer, against `expect_response`."""
    exp = case["expect_response"]
    try:
        if exp.get("unchanged"):
            ok = body == _body(case["response"])
        elif "json" in exp:
            ok = json.loads(body) == exp["json"]
        else:
            ok = sse_data(body) == exp["sse"]
    except ValueError as e:
        return [f"response unreadable ({e}): {body[:300]!r}"]
    return [] if ok else [f"client received {body[:400]!r}, expected {exp}"]


def shown(vals: list[bytes]) -> str:
    return "<absent>" if not vals else " | ".join(repr(v.decode("utf-8", "replace")) for v in vals)


def check_case(case: dict, port: int, recorder: harness.Recorder, case_id: str, extra: list[tuple[str, bytes]] = (),
               proto: str = "http1") -> list[str]:
    """Replays one case; returns the list of mismatches (empty = pass)."""
    req = case["request"]
    send = exchange_h2 if proto == "h2" else exchange
    status, hdrs, body = send(port, req["method"], case_headers(case, case_id) + list(extra),
                              case["_body"], req.get("chunks"))
    seen = recorder.requests(case_id)
    errs: list[str] = []
    exp = case["expect"]
    if "reject" in exp:
        r = exp["reject"]
        if seen:
            errs.append(f"REJECTED REQUEST REACHED THE UPSTREAM ({len(seen)}x)")
        if status != r["status"]:
            errs.append(f"status: expected {r['status']}, got {status}")
        if not hdrs.get("content-type", "").startswith("application/json"):
            errs.append(f"content-type: {hdrs.get('content-type')!r}")
        try:
            v = json.loads(body)
        except ValueError:
            errs.append(f"reply body is not JSON: {body[:300]!r}")
            return errs
        code = (v.get("error") or {}).get("code")
        if code != r["code"]:
            errs.append(f"code: expected {r['code']}, got {code}")
        if ("id" in r) != ("id" in v) or v.get("id") != r.get("id"):
            errs.append(f"id: expected {r.get('id', '<none>')!r}, got {v.get('id', '<none>')!r}")
        if "data" in r and (v.get("error") or {}).get("data") != r["data"]:
            errs.append(f"error.data: expected {r['data']}, got {(v.get('error') or {}).get('data')}")
        if errs:
            errs.append(f"reply body: {body[:300]!r}")
    else:
        f = exp["forward"]
        want_status = (case.get("response") or {}).get("status", 200)
        if status != want_status:
            errs.append(f"status: expected the upstream's {want_status}, got {status}: {body[:300]!r}")
        if len(seen) != 1:
            errs.append(f"upstream saw the request {len(seen)} times, expected once")
        else:
            q = seen[0]
            for h, key in (("mcp-method", "mcp_method"), ("mcp-name", "mcp_name")):
                want = [] if f[key] is None else [f[key].encode("utf-8")]
                got = harness.header_values(q, h)
                if got != want:
                    errs.append(f"upstream {h}: expected {shown(want)}, got {shown(got)}")
            if base64.b64decode(q["body_b64"]) != case["_body"]:
                errs.append("upstream body differs from the body sent")
            if q["method"] != req["method"]:
                errs.append(f"upstream method {q['method']}")
        if "response" in case and status == want_status:
            errs += check_response(case, body)
        elif "response" not in case and len(seen) == 1:
            # The client got the upstream's own answer to this very request, unaltered.
            try:
                recorded = (json.loads(body).get("result") or {}).get("recorded")
            except (ValueError, AttributeError):
                recorded = None
            if recorded != seen[0]["seq"]:
                errs.append(f"client did not get the upstream's answer (seq {seen[0]['seq']}): {body[:300]!r}")
    return errs


# ------------------------------------------------------------------------------------------------
# The replay

@pytest.mark.parametrize("proto", ["http1", "h2"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_replay(case, proto, gateways, recorder):
    skip = (case.get("replay") or {}).get("skip")
    if skip:
        pytest.skip(f"{case['name']}: {skip}")
    key = config_key(case)
    port = gateways.get(key)
    errs = check_case(case, port, recorder, case_id=f"{proto}:{case['name']}", proto=proto)
    assert not errs, f"[{case['_file']}] {case['name']} over {proto}:\n  " + "\n  ".join(errs) + "\n" + gateways.tail(key)


def test_corpus_is_large_and_has_both_outcomes():
    rejects = [c for c in CASES if "reject" in c["expect"]]
    forwards = [c for c in CASES if "forward" in c["expect"]]
    assert len(CASES) >= 120 and len(rejects) >= 60 and len(forwards) >= 40, (len(CASES), len(rejects), len(forwards))


@pytest.mark.parametrize("name", ["hostile-mcp-name-names-other-tool", "dup-header-mcp-name-second-line-other-tool",
                                  "legacy-lying-mcp-name-and-method", "wire-03-modern-tools_call-plain",
                                  "oversize-chunked-no-length"])
def test_h2_body_ended_by_trailers(name, gateways, recorder):
    """HTTP/2 lets a request body end with a trailers frame instead of END_STREAM on DATA: the
    filter must still classify the whole body (not forward it unvalidated when no end-of-stream
    body callback comes)."""
    case = _case(name)
    port = gateways.get(config_key(case))
    cid = f"h2-trailers:{name}"
    status, hdrs, body = exchange_h2(port, "POST", case_headers(case, cid), case["_body"], [64],
                                     trailers=[(b"x-trailer", b"1")])
    seen = recorder.requests(cid)
    exp = case["expect"]
    if "reject" in exp:
        assert seen == [], f"{name}: a rejected request reached the upstream when its body ended with trailers"
        assert status == exp["reject"]["status"], (status, body[:300])
        assert json.loads(body)["error"]["code"] == exp["reject"]["code"]
    else:
        assert status == 200 and len(seen) == 1, (status, body[:300], len(seen))
        f = exp["forward"]
        assert harness.header_values(seen[0], "mcp-method") == ([f["mcp_method"].encode()] if f["mcp_method"] else [])
        assert harness.header_values(seen[0], "mcp-name") == ([f["mcp_name"].encode()] if f["mcp_name"] else [])
        assert base64.b64decode(seen[0]["body_b64"]) == case["_body"]


def test_shipped_config_answers_chunked_overcap_with_jsonrpc_413(recorder, tmp_path):
    """The same over-cap chunked case against the shipped envoy/local.yaml."""
    if not harness.WASM.is_file():
        pytest.fail(f"filter not built: {harness.WASM} is missing (make build)", pytrace=False)
    port, admin = harness.free_port(), harness.free_port()
    ports = {"GATEWAY_PORT": port, "ADMIN_PORT": admin, "UPSTREAM_PORT": recorder.port, "SINK_PORT": harness.free_port()}
    cfg = harness.render_envoy("envoy/local.yaml", tmp_path, ports, wasm=harness.WASM)
    envoy = harness.start_envoy(cfg, admin, tmp_path, name="envoy-local")
    try:
        errs = check_case(_case("oversize-default-cap-chunked"), port, recorder, "local-yaml-overcap-chunked")
    finally:
        envoy.stop()
    assert not any("REACHED THE UPSTREAM" in e for e in errs), errs  # never forwarded, in any case
    assert errs == [], errs


def test_shipped_config_refuses_underscored_headers(recorder, tmp_path):
    """envoy/local.yaml rejects header names with underscores (`x_warden_principal`, `mcp_name`:
    ours, to a backend that folds `_` into `-`), before anything reaches the upstream."""
    port, admin = harness.free_port(), harness.free_port()
    ports = {"GATEWAY_PORT": port, "ADMIN_PORT": admin, "UPSTREAM_PORT": recorder.port, "SINK_PORT": harness.free_port()}
    cfg = harness.render_envoy("envoy/local.yaml", tmp_path, ports, wasm=harness.WASM)
    envoy = harness.start_envoy(cfg, admin, tmp_path, name="envoy-local")
    try:
        base = _case("wire-03-modern-tools_call-plain")
        for i, extra in enumerate([("x_warden_principal", b"forged"), ("mcp_name", b"read_file")]):
            status, _, _ = exchange(port, "POST", case_headers(base, f"underscore-{i}") + [extra], base["_body"], None)
            assert status == 400, (extra, status)
            assert recorder.requests(f"underscore-{i}") == [], f"{extra[0]} reached the upstream"
        # The same request without it passes (the config is not refusing everything).
        status, _, _ = exchange(port, "POST", case_headers(base, "underscore-control"), base["_body"], None)
        assert status == 200 and len(recorder.requests("underscore-control")) == 1
    finally:
        envoy.stop()


# ------------------------------------------------------------------------------------------------
# Fail closed after a VM panic

def _case(name: str) -> dict:
    return next(c for c in CASES if c["name"] == name)


@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_RELOAD"])
def test_vm_panic_fails_closed(policy, recorder, tmp_path):
    """The fault-injection build panics (wasm trap) on `x-warden-test-panic`. The client of that
    request must not be served by the upstream, and later requests must never pass unfiltered:
    either the filter still runs (a hostile request is still rejected, a lying legacy header is
    still rewritten) or Envoy refuses them; never forwarded with the client's own headers.

    Observed on Envoy 1.40.0 (V8), one worker:
    - FAIL_CLOSED (what envoy/*.yaml ship): the panicking request gets 503 with an empty body, and
      so does EVERY later request on that worker: the VM is not recreated, the filter fails
      closed for good (until a config reload/restart). Safe, but one panic = a worker outage.
    - FAIL_RELOAD: the panicking request and the requests right after it get 503 too; once the
      reload backoff (1 s default) has passed, the next request runs on a fresh VM and is filtered
      normally (hostile -> 400 -32020, legacy liar forwarded with rewritten headers).
    """
    if not harness.WASM_FAULT.is_file():
        pytest.fail(f"fault-injection filter not built: {harness.WASM_FAULT} (make build-fault)", pytrace=False)
    port, admin = harness.free_port(), harness.free_port()
    cfg = harness.render_envoy(TEMPLATE, tmp_path, {"GATEWAY_PORT": port, "ADMIN_PORT": admin,
                                                     "UPSTREAM_PORT": recorder.port}, wasm=harness.WASM_FAULT,
                               replace={"failure_policy: FAIL_CLOSED": f"failure_policy: {policy}"})
    envoy = harness.start_envoy(cfg, admin, tmp_path, name="envoy-fault")
    observed: list[str] = []
    try:
        observed.append(f"failure_policy: {policy}")
        liar = _case("legacy-lying-mcp-name-and-method")
        hostile = _case("hostile-mcp-name-names-other-tool")
        # Before: the fault build filters like the real one.
        assert check_case(liar, port, recorder, f"{policy}-before-liar") == []
        assert check_case(hostile, port, recorder, f"{policy}-before-hostile") == []

        # The panic.
        good = _case("wire-03-modern-tools_call-plain")
        status, hdrs, body = exchange(port, "POST", case_headers(good, f"{policy}-panic") + [("x-warden-test-panic", b"1")],
                                      good["_body"], None)
        observed.append(f"panicking request: {status} {body[:120]!r}")
        assert status >= 500, f"a request whose filter VM trapped got {status}: {body[:300]!r}"
        assert recorder.requests(f"{policy}-panic") == [], "the upstream saw the request whose filter panicked"

        def probe(case: dict, cid: str) -> int:
            """One request after the panic: filtered correctly or refused, never passed raw."""
            status, _, body = exchange(port, "POST", case_headers(case, cid), case["_body"], case["request"].get("chunks"))
            seen = recorder.requests(cid)
            observed.append(f"after: {case['name']}: {status} upstream-saw={len(seen)}")
            if "reject" in case["expect"]:
                assert seen == [], f"after the panic, hostile request {case['name']} reached the upstream ({status})"
                assert status == 400 or status >= 500, (status, body[:300])
            elif status == 200:
                assert len(seen) == 1  # forwarded: the filter must have run (headers rewritten from the body)
                f = case["expect"]["forward"]
                assert harness.header_values(seen[0], "mcp-method") == [f["mcp_method"].encode()], observed
                assert harness.header_values(seen[0], "mcp-name") == ([f["mcp_name"].encode()] if f["mcp_name"] else []), observed
            else:
                assert status >= 500 and seen == [], (status, len(seen))
            return status

        # Straight after the panic.
        immediate = [probe(case, f"{policy}-after-{i}-{case['name']}") for i in range(3) for case in (hostile, liar, good)]
        if policy == "FAIL_CLOSED":
            assert set(immediate) == {503}, observed
            # ...and it stays closed: keep asking for a while, nothing is ever served.
            for i in range(10):
                assert probe(good, f"{policy}-later-{i}") == 503, observed
        else:
            # FAIL_RELOAD recreates the VM after its backoff (1 s by default): wait for it, then the
            # hostile request must be rejected by the filter and the liar's headers rewritten.
            deadline = time.monotonic() + 30
            n = 0
            while probe(liar, f"{policy}-poll-{n}") != 200:
                assert time.monotonic() < deadline, f"no VM reload within 30 s: {observed[-3:]}"
                n += 1
                time.sleep(0.2)
            observed.append(f"recovered after {n} refused polls")
            assert probe(hostile, f"{policy}-recovered-hostile") == 400
            assert probe(good, f"{policy}-recovered-good") == 200
        stats = harness.envoy_stats(admin, "wasm")
        observed.append("wasm stats: " + json.dumps({k: v for k, v in stats.items() if v}, sort_keys=True))
    finally:
        envoy.stop()
        print("\nVM panic, as observed:\n  " + "\n  ".join(observed))
        print(envoy.tail(30))
