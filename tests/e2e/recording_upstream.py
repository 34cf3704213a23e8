#!/usr/bin/env python3
"""A recording HTTP upstream for e2e tests: records every request it receives (method, path, raw
header pairs, de-chunked body) and answers each with a fixed JSON-RPC result.

    python recording_upstream.py --port N

Control endpoints (called directly on the recorder's port, never through Envoy):
    GET  /__recorder/requests   -> {"requests": [{"seq", "method", "path", "headers": [[name, value]], "body_b64"}]}
    POST /__recorder/reset      -> clears the record

Header values are reported as received, decoded as Latin-1 (so `value.encode("latin-1")` gives the
exact bytes on the wire, UTF-8 included). Every other request gets 200 with
`{"jsonrpc":"2.0","id":<the request's id when the body has one, else null>,"result":{"recorded":<seq>}}`,
unless it carries `x-corpus-response: <base64 of {"headers": [[name, value]], "body_b64", "chunks"}>`
(the fixture corpus's response cases): then exactly that answer, chunked in those pieces (each
flushed on its own) or with a content-length when `chunks` is absent.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL = "/__recorder/"


class Record:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[dict] = []

    def add(self, item: dict) -> int:
        with self.lock:
            item["seq"] = len(self.items) + 1
            self.items.append(item)
            return item["seq"]

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.items)

    def reset(self) -> None:
        with self.lock:
            self.items.clear()


RECORD = Record()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle holds the body ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server_version = "recording-upstream/1"

    def log_message(self, fmt: str, *args) -> None:  # one short line per request on stderr
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            out = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)  # CRLF after the chunk
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reply_as_told(self, spec_b64: str) -> None:
        spec = json.loads(base64.b64decode(spec_b64))
        data = base64.b64decode(spec["body_b64"])
        self.send_response(spec.get("status") or 200)
        for k, v in spec["headers"]:
            self.send_header(k, v)
        chunks = spec.get("chunks")
        if chunks is None:
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        at = 0
        for size in [*chunks, len(data)]:
            piece = data[at:at + size]
            at += len(piece)
            if piece:
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _handle(self) -> None:
        body = self._read_body()
        if self.path.startswith(CONTROL):
            if self.path == CONTROL + "requests":
                return self._reply(200, {"requests": RECORD.snapshot()})
            if self.path == CONTROL + "reset" and self.command == "POST":
                RECORD.reset()
                return self._reply(200, {"ok": True})
            return self._reply(404, {"error": "unknown control endpoint"})
        seq = RECORD.add({
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.raw_items()],
            "body_b64": base64.b64encode(body).decode(),
        })
        told = self.headers.get("x-corpus-response")
        if told:
            return self._reply_as_told(told)
        rid = None
        try:
            parsed = json.loads(body) if body else None
            if isinstance(parsed, dict):
                rid = parsed.get("id")
        except ValueError:
            pass
        self._reply(200, {"jsonrpc": "2.0", "id": rid, "result": {"recorded": seq}})

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _handle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"recording upstream on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
