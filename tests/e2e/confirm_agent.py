#!/usr/bin/env python3
"""A real Python MCP SDK client (`mcp` 2.3.0, high-level `mcp.client.Client`) making one tools/call,
for the e2e tests of mcp-warden's human confirmation (MCP 2026-07-28 multi-round-trip requests,
SEP-2322): the gateway answers the call with `resultType: input_required` carrying an
`elicitation/create` under `mcp-warden.dev/confirm`, the SDK's MRTR driver asks the elicitation
callback below and retries the call (fresh JSON-RPC id) with `inputResponses` and the echoed
`requestState`. The upstream may use MRTR itself (demo/upstream.py's book_trip): any number of
rounds (the SDK caps them at 10), elicitations that are not ours are answered from their schema.

    .venv/bin/python tests/e2e/confirm_agent.py --url URL --tool NAME [--args JSON]
        --answer accept|reject|decline|cancel [--header NAME=VALUE ...]
        [--mode 2026-07-28|legacy|auto] [--no-elicitation]

Answers to an elicitation whose requested schema has a boolean property `approve` (ours):
accept -> {"action": "accept", "content": {"approve": true}}; reject -> action accept with
{"approve": false}; decline / cancel -> that action, no content. Any other form elicitation is
accepted with content filled from its schema (string: first enum value or "window", boolean: true,
integer/number: 1). `--no-elicitation` registers no callback: the client then declares no
elicitation capability and the SDK refuses embedded elicitations itself.

Prints ONE JSON object on stdout:
  {"result": CallToolResult dict | null, "error": {"code", "message", "data"} | null,
   "elicitations": [{"message", "requestedSchema"}, ...in order],
   "http": [{"method": JSON-RPC method (null for a JSON-RPC response / GET / DELETE),
             "httpMethod", "status", "request": body JSON | null,
             "response": body JSON | [SSE messages] | null}, ...]}
Exit 0 whenever it produced that (a JSON-RPC error is a normal outcome), 1 with
{"error": {"message": ...}} (plus what was recorded so far) on a crash or the 30 s total timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import zlib
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client._input_required import InputRequiredRoundsExceededError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

TOTAL_TIMEOUT_S = 30.0
ANSWERS = ("accept", "reject", "decline", "cancel")

http_log: list[dict[str, Any]] = []
elicitations: list[dict[str, Any]] = []
_printed = threading.Lock()


def emit(out: dict[str, Any], code: int) -> None:
    """Print the one JSON object (once, whoever gets here first) and exit."""
    if not _printed.acquire(blocking=False):
        return
    for entry in http_log:
        _finalize(entry)
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    os._exit(code)  # no lingering SDK tasks / sockets can keep the process alive


# --- HTTP recording ---------------------------------------------------------------------------

def _decode_body(raw: bytes, headers: httpx2.Headers) -> bytes:
    encoding = headers.get("content-encoding", "").lower().strip()
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
    except zlib.error:
        pass
    return raw


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_sse(text: str) -> list[Any]:
    messages: list[Any] = []
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data:
                messages.append(_json_or_text("\n".join(data)))
            data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # an unterminated last event (stream cut short)
        messages.append(_json_or_text("\n".join(data)))
    return messages


def _finalize(entry: dict[str, Any]) -> None:
    """Parse the bytes collected so far into entry["response"] (idempotent)."""
    raw = entry.pop("_raw", None)
    headers = entry.pop("_headers", None)
    if raw is None or headers is None:
        return
    body = _decode_body(bytes(raw), headers)
    if not body.strip():
        entry["response"] = None
        return
    text = body.decode("utf-8", errors="replace")
    if "text/event-stream" in headers.get("content-type", "").lower():
        entry["response"] = _parse_sse(text)
    else:
        entry["response"] = _json_or_text(text)


class _TeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, entry: dict[str, Any]) -> None:
        self._inner = inner
        self._entry = entry

    async def __aiter__(self):  # type: ignore[override]
        try:
            async for chunk in self._inner:
                raw = self._entry.get("_raw")
                if raw is not None:
                    raw.extend(chunk)
                yield chunk
        finally:
            _finalize(self._entry)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            _finalize(self._entry)


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Wraps the real transport: logs each request body and tees each response body."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        parsed = _json_or_text(body.decode("utf-8", errors="replace")) if body else None
        if isinstance(parsed, dict):
            method = parsed.get("method")
        elif isinstance(parsed, list):
            method = [m.get("method") if isinstance(m, dict) else None for m in parsed]
        else:
            method = None
        entry: dict[str, Any] = {"method": method, "httpMethod": request.method, "status": None,
                                 "request": parsed, "response": None}
        http_log.append(entry)
        response = await self._inner.handle_async_request(request)
        entry["status"] = response.status_code
        entry["_raw"] = bytearray()
        entry["_headers"] = response.headers
        response.stream = _TeeStream(response.stream, entry)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# --- elicitation answers ----------------------------------------------------------------------

def _fill(prop: dict[str, Any]) -> Any:
    kind = prop.get("type")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    if kind == "array":
        items = prop.get("items") or {}
        options = items.get("enum") or [o.get("const") for o in items.get("anyOf", items.get("oneOf", []))]
        return [options[0]] if options else []
    options = prop.get("enum") or [o.get("const") for o in prop.get("oneOf", prop.get("anyOf", []))]
    return options[0] if options else "window"


def make_elicitation_callback(answer: str):
    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        schema = getattr(params, "requested_schema", None)
        elicitations.append({"message": params.message, "requestedSchema": schema})
        props = (schema or {}).get("properties") or {}
        if isinstance(props.get("approve"), dict) and props["approve"].get("type") == "boolean":
            if answer == "accept":
                return types.ElicitResult(action="accept", content={"approve": True})
            if answer == "reject":
                return types.ElicitResult(action="accept", content={"approve": False})
            return types.ElicitResult(action=answer)  # decline / cancel
        if schema is None:  # URL mode: consent
            return types.ElicitResult(action="accept")
        return types.ElicitResult(action="accept", content={k: _fill(v) for k, v in props.items()})

    return on_elicit


# --- main -------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--args", default="{}", help="tool arguments, a JSON object")
    p.add_argument("--answer", choices=ANSWERS, default="accept")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--mode", default="2026-07-28", help="2026-07-28 (default, no probe) | legacy | auto")
    p.add_argument("--no-elicitation", action="store_true")
    return p.parse_args()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def error_dict(exc: BaseException) -> dict[str, Any] | None:
    """A JSON-RPC-level outcome as {"code", "message", "data"}; None for a real crash."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return error_dict(exc.exceptions[0])
    if isinstance(exc, MCPError):
        return {"code": exc.code, "message": exc.message, "data": exc.data}
    if isinstance(exc, InputRequiredRoundsExceededError):
        return {"code": None, "message": str(exc), "data": {"type": "InputRequiredRoundsExceededError",
                                                             "maxRounds": exc.max_rounds}}
    return None


async def run(args: argparse.Namespace, out: dict[str, Any]) -> None:
    arguments = json.loads(args.args)
    headers = {}
    for h in args.header:
        name, sep, value = h.partition("=")
        if not sep:
            raise ValueError(f"--header wants NAME=VALUE, got {h!r}")
        headers[name] = value
    http_client = httpx2.AsyncClient(headers=headers, transport=RecordingTransport(),
                                     timeout=httpx2.Timeout(TOTAL_TIMEOUT_S))
    async with http_client:
        client = Client(
            streamable_http_client(args.url, http_client=http_client),
            mode=args.mode,
            read_timeout_seconds=TOTAL_TIMEOUT_S,
            client_info=types.Implementation(name="mcp-warden-confirm-agent", version="0.1.0"),
            elicitation_callback=None if args.no_elicitation else make_elicitation_callback(args.answer),
            cache=None,
        )
        async with client:
            try:
                result = await client.call_tool(args.tool, arguments)
                out["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            except Exception as exc:
                err = error_dict(exc)
                if err is None:
                    raise
                out["error"] = err


def main() -> None:
    args = parse_args()
    out: dict[str, Any] = {"result": None, "error": None, "elicitations": elicitations, "http": http_log}

    def watchdog() -> None:  # belt and braces: even a wedged event loop cannot hang the test
        emit({**out, "error": {"message": f"watchdog: no outcome after {TOTAL_TIMEOUT_S + 5:.0f} s"}}, 1)

    timer = threading.Timer(TOTAL_TIMEOUT_S + 5, watchdog)
    timer.daemon = True
    timer.start()

    async def guarded() -> None:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            await run(args, out)

    try:
        anyio.run(guarded)
    except BaseException as exc:  # noqa: BLE001 - the one place that turns anything into JSON
        err = error_dict(exc)
        if err is not None and out["result"] is None and out["error"] is None:
            out["error"] = err
            emit(out, 0)
        if out["result"] is not None or out["error"] is not None:
            emit(out, 0)  # the call's outcome is in; only the teardown failed
        leaves = _leaves(exc)
        if any(isinstance(e, TimeoutError) for e in leaves):
            message = f"timeout: no outcome within {TOTAL_TIMEOUT_S:.0f} s"
        else:
            message = "; ".join(f"{type(e).__name__}: {e}" for e in leaves)
        emit({**out, "error": {"message": message}}, 1)
    emit(out, 0)


if __name__ == "__main__":
    main()
