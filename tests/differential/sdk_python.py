#!/usr/bin/env python3
"""Differential harness, Python `mcp` SDK side: what does a real Python SDK server execute?

Usage: python sdk_python.py CASES.jsonl OUT.jsonl
       python sdk_python.py --serve PORT --log FILE

Owns: one low-level `mcp.server.lowlevel.Server` (mcp 2.3.0) whose handlers, for ANY name,
record what they were called with into the global `executed` list and return a minimal valid
result; served by `streamable_http_app(stateless_http=True, json_response=True)` under uvicorn
on 127.0.0.1:<ephemeral> in a background thread (default DNS-rebinding protection, which
accepts `Host: 127.0.0.1:*`). Each case of CASES.jsonl is sent, sequentially and on its own
connection, with `http.client` exactly as given (method, /mcp, raw header list in order, raw
body bytes; Host and Content-Length are added only when absent). One line per case goes to
OUT.jsonl: {"id", "status", "executed"} (+ "timeout": true after 5 s, or "error" when the
request could not be sent, e.g. a header `http.client` refuses). Header values are sent as
latin-1 bytes when they fit, else UTF-8. (The handlers are instant, so only requests that never
dispatch time out: incomplete bodies, a GET's SSE stream.)

Executed entries (args = `canonical(arguments)`, see canonical.py):
  tools/call, prompts/get         {"method", "name", "args"}
  resources/read|subscribe|unsubscribe  {"method", "uri"}
  completion/complete             {"method", "ref_type", "name", "uri"}
  tools/list, prompts/list, resources/list, resources/templates/list  {"method"}

Serve mode (`--serve PORT --log FILE`, for tests/e2e/test_sdk_replay.py): the same server and app
under uvicorn on 127.0.0.1:PORT, in the foreground until killed (SIGTERM); every executed entry
is also appended to FILE as one JSON line, flushed at once.

`get_tool_input_schema` answers None, so the 2026-07-28 path's Mcp-Param-* check never runs
the tools/list handler behind a tools/call (it would find no schema in our empty list anyway).
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mcp_types as types
import uvicorn

from mcp.server.lowlevel import Server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from canonical import canonical  # noqa: E402

CASE_TIMEOUT_S = 5.0
executed: list[dict[str, Any]] = []
_log = None  # serve mode: the file every executed entry is appended to


def record(entry: dict[str, Any]) -> None:
    executed.append(entry)
    if _log is not None:
        _log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        _log.flush()


def _args(value: Any) -> str:
    try:
        return canonical(value)
    except Exception as exc:  # never crash a handler on an odd value; make it visible instead
        return f"!canonical-error:{type(exc).__name__}"


async def call_tool(ctx, p: types.CallToolRequestParams) -> types.CallToolResult:
    record({"method": "tools/call", "name": p.name, "args": _args(p.arguments)})
    return types.CallToolResult(content=[])


async def get_prompt(ctx, p: types.GetPromptRequestParams) -> types.GetPromptResult:
    record({"method": "prompts/get", "name": p.name, "args": _args(p.arguments)})
    return types.GetPromptResult(messages=[])


def _uri_handler(method: str, result: Any):
    async def handler(ctx, p) -> Any:
        record({"method": method, "uri": str(p.uri)})
        return result()

    return handler


async def complete(ctx, p: types.CompleteRequestParams) -> types.CompleteResult:
    ref = p.ref
    uri = getattr(ref, "uri", None)
    record({"method": "completion/complete", "ref_type": ref.type, "name": getattr(ref, "name", None),
                     "uri": None if uri is None else str(uri)})
    return types.CompleteResult(completion=types.Completion(values=[]))


def _list_handler(method: str, result: Any):
    async def handler(ctx, p) -> Any:
        record({"method": method})
        return result()

    return handler


def build_server() -> Server:
    return Server(
        "differential-python",
        version="0.0.0",
        get_tool_input_schema=lambda name: None,
        on_call_tool=call_tool,
        on_get_prompt=get_prompt,
        on_read_resource=_uri_handler("resources/read", lambda: types.ReadResourceResult(contents=[])),
        on_subscribe_resource=_uri_handler("resources/subscribe", types.EmptyResult),
        on_unsubscribe_resource=_uri_handler("resources/unsubscribe", types.EmptyResult),
        on_completion=complete,
        on_list_tools=_list_handler("tools/list", lambda: types.ListToolsResult(tools=[])),
        on_list_prompts=_list_handler("prompts/list", lambda: types.ListPromptsResult(prompts=[])),
        on_list_resources=_list_handler("resources/list", lambda: types.ListResourcesResult(resources=[])),
        on_list_resource_templates=_list_handler(
            "resources/templates/list", lambda: types.ListResourceTemplatesResult(resource_templates=[])),
    )


def start_uvicorn(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread, port


def _header_bytes(s: str) -> bytes:
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def run_case(port: int, case: dict[str, Any]) -> dict[str, Any]:
    executed.clear()
    out: dict[str, Any] = {"id": case["id"], "status": None}
    body = base64.b64decode(case.get("body_b64", ""))
    headers = [(str(k), str(v)) for k, v in case.get("headers", [])]
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers.insert(0, ("Host", f"127.0.0.1:{port}"))
    if "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    deadline = time.monotonic() + CASE_TIMEOUT_S
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CASE_TIMEOUT_S)
    try:
        conn.putrequest(case.get("http_method", "POST"), "/mcp", skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, _header_bytes(v))
        conn.endheaders(body)
        sock = conn.sock  # conn drops it in getresponse() when the response will close
        resp = conn.getresponse()
        out["status"] = resp.status
        while not resp.isclosed():  # read it all, SSE included, within the case's time budget
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not resp.read(65536):
                break
            if time.monotonic() >= deadline:
                raise TimeoutError
    except (TimeoutError, socket.timeout):
        out["timeout"] = True
    except (ValueError, OSError, http.client.HTTPException) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    out["executed"] = list(executed)
    return out


def serve(port: int, log_path: str) -> int:
    """Serve mode: run until killed, logging every executed entry to `log_path`."""
    global _log
    _log = open(log_path, "a", encoding="utf-8")
    logging.getLogger("mcp").setLevel(logging.ERROR)
    app = build_server().streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False, lifespan="on")
    uvicorn.Server(config).run()  # SIGTERM / SIGINT: uvicorn's graceful shutdown
    _log.close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "--serve" and argv[3] == "--log":
        return serve(int(argv[2]), argv[4])
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    cases = [json.loads(line) for line in Path(argv[1]).read_text(encoding="utf-8").splitlines() if line.strip()]
    logging.getLogger("mcp").setLevel(logging.ERROR)  # per-case refusals (e.g. a foreign Host) are expected
    mcp_server = build_server()
    app = mcp_server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    server, thread, port = start_uvicorn(app)
    started = time.monotonic()
    n_exec = n_timeout = n_error = 0
    try:
        with open(argv[2], "w", encoding="utf-8") as out:
            for case in cases:
                result = run_case(port, case)
                n_exec += bool(result["executed"])
                n_timeout += bool(result.get("timeout"))
                n_error += "error" in result
                out.write(json.dumps(result, separators=(",", ":")) + "\n")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(f"sdk_python: {len(cases)} cases in {time.monotonic() - started:.1f}s, {n_exec} executed something, "
          f"{n_timeout} timed out, {n_error} not sent", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
