"""One trace from agent to tool, through the shipped config (`envoy/local.yaml`, what `make run`
serves) with real peers:

- the agent: the Python `mcp` 2.3.0 SDK client under the OpenTelemetry SDK (traced_agent.py, its
  own process); the SDK's client spans put their W3C context in `params._meta` (SEP-414);
- Envoy's OpenTelemetry tracer, in the config's tracing hop, exporting over OTLP/gRPC to a trace
  receiver made of the official generated service (wardenkit.otlp.Receiver);
- the demo MCP server, exporting the SDK's own server spans to the same receiver;
- the receipt writer, exporting to an OTLP logs collector of the official classes.

What it shows: Envoy's span of the MCP request is in the agent's trace, a child of the SDK's
client span, named `{mcp.method.name} {target}` with the conventions' attributes; the upstream's
spans join that trace; the receipt of the call carries the same trace and span ids and the
conventions' attribute names; a request without a context makes no span and skips the hop; an
unsampled context is followed; when the HTTP `traceparent` differs from the body's, the body wins
and the mismatch is a finding; and `mcp.server.operation.duration` is at /stats/prometheus with
the conventions' tags.

Needs `target/release/warden` and the filter (`make build`).
"""
from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from wardenkit import harness
from wardenkit.harness import wait_for
from wardenkit.otlp import LogsCollector, Receiver

TEMPLATE = "envoy/local.yaml"
AGENT = harness.ROOT / "tests" / "e2e" / "traced_agent.py"
GATEWAY_SERVICE = "mcp-warden-gateway"  # the tracer's service_name in TEMPLATE
DEMO_SERVICE = "mcp-warden-demo"  # demo/upstream.py's resource
TRACE_OTHER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_BODY = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_UNSAMPLED = "00-5af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"


def post(gw, rid: str, tool: str, meta_extra: dict | None = None, headers: dict | None = None,
         header_name: str | None = None) -> int:
    """One raw 2026-07-28 tools/call; returns the HTTP status."""
    return harness.tools_call(gw.url, rid, tool, meta=meta_extra, headers=headers, header_name=header_name)[0]


def envoy_spans(receiver: Receiver) -> list[dict]:
    return [s for s in receiver.spans() if s["resource"].get("service.name") == GATEWAY_SERVICE]


def by_request_id(spans: list[dict], rid: str) -> list[dict]:
    return [s for s in spans if s["attributes"].get("jsonrpc.request.id") == rid]


def hop_requests(gw) -> int:
    return gw.stats("cluster.mcp_traced.upstream_rq_total").get("cluster.mcp_traced.upstream_rq_total", 0)


@pytest.fixture(scope="module")
def traced(module_gateway, tmp_path_factory):
    receiver = Receiver().start()
    logs = LogsCollector().start()
    harness.wait_port(receiver.port, timeout=30)
    harness.wait_port(logs.port, timeout=30)
    upstream_port = harness.free_port()
    upstream = harness.start_demo_upstream(upstream_port, tmp_path_factory.mktemp("traced-upstream"),
                                           name="traced-upstream", otlp=f"127.0.0.1:{receiver.port}")
    harness.LIVE_PROCS.append(upstream)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("WARDEN_SIGNING_KEY", raising=False)  # the writer signs with the TEST key
            gw = module_gateway(TEMPLATE, upstream_port=upstream_port,
                                extra_ports={"SINK_PORT": logs.port, "TRACE_PORT": receiver.port})
        run = subprocess.run([str(harness.PYTHON), str(AGENT), gw.url, "echo", "traced hello"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        agent = json.loads(run.stdout)
        yield {"gw": gw, "receiver": receiver, "logs": logs, "agent": agent}
    finally:
        harness.LIVE_PROCS.remove(upstream)
        upstream.stop()
        logs.stop()
        receiver.stop()


def agent_call_span(agent: dict) -> dict:
    """The SDK's client span of the tools/call (the parent the agent's context names)."""
    (span,) = [s for s in agent["spans"] if s["kind"] == "CLIENT" and s["name"].endswith("tools/call echo")]
    return span


def test_envoy_continues_the_agents_trace_with_the_conventions_names(traced):
    agent, receiver = traced["agent"], traced["receiver"]
    assert agent["result"] == {"result": "traced hello"}
    call = agent_call_span(agent)
    (root,) = [s for s in agent["spans"] if s["name"] == "agent task"]
    assert call["trace_id"] == root["trace_id"]

    def server_and_client():
        spans = [s for s in envoy_spans(receiver) if s["trace_id"] == root["trace_id"]
                 and s["name"] == "tools/call echo"]
        return spans if len(spans) == 2 else None

    spans = wait_for("Envoy's spans of the traced tools/call", server_and_client, timeout=60, gw=traced["gw"])
    (server,) = [s for s in spans if s["kind"] == "SPAN_KIND_SERVER"]
    (client,) = [s for s in spans if s["kind"] == "SPAN_KIND_CLIENT"]
    # The agent's trace continues: Envoy's span is the child of the SDK's client span.
    assert server["parent_span_id"] == call["span_id"]
    assert client["parent_span_id"] == server["span_id"]
    a = server["attributes"]
    assert a["mcp.method.name"] == "tools/call"
    assert a["gen_ai.tool.name"] == "echo"
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["mcp.protocol.version"] == harness.MODERN_VERSION
    assert a["jsonrpc.request.id"]
    assert "gen_ai.prompt.name" not in a and "mcp.resource.uri" not in a
    # The SDK's discovery and listing before the call are in the same trace, named by method.
    names = {s["name"] for s in envoy_spans(receiver) if s["trace_id"] == root["trace_id"]}
    assert {"server/discover", "tools/call echo"} <= names, names


def test_the_upstreams_own_spans_join_the_same_trace(traced):
    call = agent_call_span(traced["agent"])

    def demo_span():
        spans = [s for s in traced["receiver"].spans() if s["resource"].get("service.name") == DEMO_SERVICE
                 and s["trace_id"] == call["trace_id"] and s["name"] == "tools/call echo"]
        return spans[0] if spans else None

    span = wait_for("the demo server's span of the call", demo_span, timeout=60, gw=traced["gw"])
    # The MCP SDK parents its server span on `_meta.traceparent`, as the conventions say.
    assert span["parent_span_id"] == call["span_id"]
    assert span["attributes"]["gen_ai.tool.name"] == "echo"


def test_the_receipt_carries_the_same_trace_and_the_conventions_names(traced):
    call = agent_call_span(traced["agent"])

    def receipt():
        for rec in traced["logs"].records():
            a = {kv.key: kv.value for kv in rec.attributes}
            if "gen_ai.tool.name" in a and a["gen_ai.tool.name"].string_value == "echo" \
                    and rec.trace_id.hex() == call["trace_id"]:
                return rec, a
        return None

    rec, a = wait_for("the receipt of the traced call at the collector", receipt, timeout=60, gw=traced["gw"])
    assert rec.span_id.hex() == call["span_id"]
    assert a["mcp.method.name"].string_value == "tools/call"
    assert a["gen_ai.operation.name"].string_value == "execute_tool"
    assert a["mcp.protocol.version"].string_value == harness.MODERN_VERSION
    assert a["warden.era"].string_value == "modern"
    assert a["warden.verdict"].string_value == "allow"
    assert "mcp.method" not in a and "mcp.name" not in a
    assert json.loads(rec.body.string_value)["action_record"]["method"] == "tools/call"


def test_a_request_without_a_context_makes_no_span_and_skips_the_hop(traced):
    gw = traced["gw"]
    before = hop_requests(gw)
    assert post(gw, "untraced-1", "echo") == 200
    assert post(gw, "traced-unsampled", "echo", meta_extra={"traceparent": TRACE_UNSAMPLED}) == 200
    # The unsampled one went through the hop (it has a context) but made no span: its flag is followed.
    assert hop_requests(gw) == before + 1
    # A sampled request after both: once its span is in, the earlier ones would be too.
    assert post(gw, "traced-after", "echo", meta_extra={"traceparent": TRACE_BODY}) == 200
    wait_for("the span of the sampled request", lambda: by_request_id(envoy_spans(traced["receiver"]), "traced-after"),
             timeout=60, gw=gw)
    spans = envoy_spans(traced["receiver"])
    assert by_request_id(spans, "untraced-1") == [] and by_request_id(spans, "traced-unsampled") == []


def test_the_body_wins_over_a_differing_http_traceparent(traced):
    gw = traced["gw"]
    finding = "wasmcustom.mcp_warden_findings_total.inspector.trace_context.finding.traceparent_mismatch.severity.info"
    before = gw.stats("mcp_warden_findings_total").get(finding, 0)
    status = post(gw, "mismatch-1", "echo", meta_extra={"traceparent": TRACE_BODY},
                  headers={"traceparent": TRACE_OTHER, "tracestate": "other=1"})
    assert status == 200
    spans = wait_for("the span of the mismatched request",
                     lambda: by_request_id(envoy_spans(traced["receiver"]), "mismatch-1"), timeout=60, gw=gw)
    assert {s["trace_id"] for s in spans} == {TRACE_BODY.split("-")[1]}
    server = [s for s in spans if s["kind"] == "SPAN_KIND_SERVER"]
    assert [s["parent_span_id"] for s in server] == [TRACE_BODY.split("-")[2]]
    assert gw.stats("mcp_warden_findings_total").get(finding, 0) == before + 1

    def receipt():
        for rec in traced["logs"].records():
            ar = json.loads(rec.body.string_value)["action_record"]
            if ar.get("request_id") == '"mismatch-1"':
                return rec, ar
        return None

    rec, ar = wait_for("the receipt of the mismatched request", receipt, timeout=60, gw=gw)
    assert rec.trace_id.hex() == TRACE_BODY.split("-")[1]
    assert (ar["layer"], ar["pattern"], ar["severity"]) == ("trace_context", "traceparent_mismatch", "info")


def test_the_operation_histogram_carries_the_conventions_tags(traced):
    gw = traced["gw"]
    # A request refused on the wire: no method the gateway can vouch for, and the error it got.
    assert post(gw, "histogram-bad", "echo", header_name="not-echo") == 400

    def prometheus():
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/stats/prometheus", timeout=10) as r:
            text = r.read().decode()
        ok = 'mcp_server_operation_duration_count{mcp_method_name="tools/call",gen_ai_tool_name="echo"}' in text \
            and 'mcp_server_operation_duration_count{mcp_method_name="_OTHER",error_type="-32020"}' in text
        return text if ok else None

    text = wait_for("mcp_server_operation_duration at /stats/prometheus", prometheus, timeout=30, gw=gw)
    assert "# TYPE mcp_server_operation_duration histogram" in text
