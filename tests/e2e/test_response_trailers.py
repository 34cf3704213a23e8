"""HTTP/2 lets an upstream end its answer with trailers instead of a last DATA frame: no body
callback then says the answer is over. Through real Envoy with an h2 upstream that always does
(`h2_trailers_upstream.py`): a secret cut across two frames is still withheld, a clean answer
arrives as sent, an answer the filter cannot read is replaced, and an SSE event the trailers cut
off never reaches the client."""
import json
from pathlib import Path

import httpx
import pytest

from wardenkit import harness

H2_CLUSTER = """    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    connect_timeout: 2s
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    logs = tmp_path_factory.mktemp("trailers")
    up_port, port, admin = harness.free_port(), harness.free_port(), harness.free_port()
    script = Path(__file__).with_name("h2_trailers_upstream.py")
    upstream = harness.Proc("h2-trailers-upstream", [str(harness.PYTHON), str(script), "--port", str(up_port)], logs)
    envoy = None
    try:
        harness.wait_port(up_port, proc=upstream)
        cfg = harness.render_envoy("envoy/e2e-replay.yaml", logs,
                                   {"GATEWAY_PORT": port, "ADMIN_PORT": admin, "UPSTREAM_PORT": up_port},
                                   wasm=harness.WASM, replace={"    connect_timeout: 2s\n": H2_CLUSTER})
        envoy = harness.start_envoy(cfg, admin, logs, name="envoy-trailers")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.stop()


def ask(url: str, answer: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "read", "arguments": {}, "_meta": harness.modern_meta()}}
    headers = {**harness.modern_headers("tools/call", "read"), "x-test-answer": answer}
    return httpx.post(url, json=body, headers=headers, timeout=30)


def test_a_secret_cut_across_frames_of_an_answer_ended_by_trailers_is_withheld(gateway):
    r = ask(gateway, "json-secret")
    assert r.status_code == 200, r.text
    assert "ghp_" not in r.text, r.text
    v = r.json()
    assert v["id"] == 7 and v["error"]["code"] == -31502 and v["error"]["data"]["finding"] == "github_classic_pat", v


def test_a_clean_answer_ended_by_trailers_arrives_as_sent(gateway):
    r = ask(gateway, "json-clean")
    assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "all good", r.text


def test_an_unreadable_answer_ended_by_trailers_is_replaced(gateway):
    r = ask(gateway, "gzip")
    assert "SECRETSTUFF" not in r.text
    assert r.json()["error"]["data"]["finding"] == "encoded_response", r.text


def test_an_sse_event_cut_by_trailers_is_never_delivered(gateway):
    r = ask(gateway, "sse-cut")
    assert r.status_code == 200
    assert "first" in r.text and "ghp_" not in r.text, r.text
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert events[0]["result"]["content"][0]["text"] == "first", events
