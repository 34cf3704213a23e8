"""An HTTP/2 (h2c) upstream that ends every answer with a trailers frame instead of END_STREAM on
its last DATA frame, for tests/e2e/test_response_trailers.py. The request header `x-test-answer`
picks the answer (JSON-RPC id 7): `json-secret` (a GitHub token cut across two DATA frames),
`json-clean`, `gzip` (bytes a client would inflate), `sse-cut` (one whole event, then one the
trailers cut off). `python h2_trailers_upstream.py --port N`; stopped by its PID."""
import argparse
import json
import socket
import threading

import h2.config
import h2.connection
import h2.events

TOKEN = "ghp_R7c0aWq1zXy2Lm3Nb4Vc5Xd6Fe7Gh8Jk9Ab0"


def result(text: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}]}})


SECRET = result(f"export GITHUB_TOKEN={TOKEN}")
CUT = SECRET.index("ghp_") + 6
ANSWERS = {
    "json-secret": ([("content-type", "application/json")], [SECRET[:CUT].encode(), SECRET[CUT:].encode()]),
    "json-clean": ([("content-type", "application/json")], [result("all good").encode()]),
    "gzip": ([("content-type", "application/json"), ("content-encoding", "gzip")], [b"\x1f\x8b\x08\x00", b"SECRETSTUFF"]),
    "sse-cut": ([("content-type", "text/event-stream")],
                [f"event: message\ndata: {result('first')}\n\n".encode(), f"event: message\ndata: {SECRET}".encode()]),
}


def serve(sock: socket.socket) -> None:
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    asked: dict[int, str] = {}
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    asked[ev.stream_id] = dict(ev.headers).get("x-test-answer", "json-clean")
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    headers, chunks = ANSWERS[asked.pop(ev.stream_id, "json-clean")]
                    conn.send_headers(ev.stream_id, [(":status", "200"), *headers])
                    for chunk in chunks:
                        conn.send_data(ev.stream_id, chunk)
                        sock.sendall(conn.data_to_send())
                    conn.send_headers(ev.stream_id, [("x-upstream-trailer", "1")], end_stream=True)
            sock.sendall(conn.data_to_send())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    port = ap.parse_args().port
    listener = socket.create_server(("127.0.0.1", port))
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
