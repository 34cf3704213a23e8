#!/usr/bin/env python3
"""Demo MCP server for mcp-warden (`make run`, e2e tests): one `/mcp` endpoint, both MCP eras.

Built on the Python `mcp` 2.3.0 SDK (`MCPServer`), which serves on the same endpoint:
- 2026-07-28 ("modern", stateless): every POST carries `params._meta` protocolVersion;
  `server/discover`, MRTR (`input_required`), `subscriptions/listen`;
- 2025-11-25 ("legacy", sessionful): `initialize` -> `Mcp-Session-Id`, GET SSE stream, DELETE.

Tools:
  echo(text)                   plain call, returns the text.
  show_dashboard(city)         MCP Apps: `_meta.ui.resourceUri` = ui://dashboard/app.html, which
                               `resources/read` serves as `text/html;profile=mcp-app`.
  book_trip(destination)       asks the user for seat/meal preferences: on 2026-07-28 an
                               `input_required` result (MRTR elicitation, sealed requestState);
                               on 2025-11-25 a server-sent `elicitation/create` on the POST's SSE
                               stream. Same code for both eras (SDK `Resolve(...)` + `Elicit`).
  slow_sum(a, b, steps, gate)  reports `steps` progress notifications (SSE) before its result.
                               With `gate` set it reports step 1, then waits until
                               `open_gate(gate)` is called (from another request), so a test can
                               prove that progress reaches the client while the tool is running.
  open_gate(gate)              releases a waiting slow_sum.
  gate_status(gate)            waiting | opened | cancelled (the client closed the stream) | unknown.
  announce_change()            notifications/tools/list_changed: to `subscriptions/listen` streams
                               (2026-07-28) and to the caller's legacy session GET stream.
  blocked_tool()               a harmless tool that gateway route tests block by `Mcp-Name`.

Tracing: with `--otlp HOST:PORT` (or OTEL_EXPORTER_OTLP_ENDPOINT) the SDK's own server spans
(`mcp.server._otel`, parented on the request's `_meta.traceparent`) are exported over OTLP/gRPC.

Run: `python demo/upstream.py --port 8080` (or UPSTREAM_PORT=8080).
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Annotated

import anyio
from pydantic import BaseModel, Field

from mcp.server.apps import Apps
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve

SERVER_NAME = "mcp-warden-demo"
SERVER_VERSION = "0.1.0"
DASHBOARD_URI = "ui://dashboard/app.html"
DASHBOARD_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>mcp-warden demo dashboard</title></head>
<body><h1>Weather dashboard</h1><p id="city">(city appears here)</p>
<script>
  // An MCP App receives the tool result from its host over postMessage (ext-apps).
  window.addEventListener("message", (e) => {
    const r = e.data && e.data.params && e.data.params.structuredContent;
    if (r) document.getElementById("city").textContent = r.result;
  });
</script></body></html>
"""
GATE_TIMEOUT_S = 60.0
MODERN_VERSION = "2026-07-28"

log = logging.getLogger("demo-upstream")

apps = Apps()
apps.add_html_resource(DASHBOARD_URI, DASHBOARD_HTML, name="dashboard", title="Demo dashboard")


@apps.tool(resource_uri=DASHBOARD_URI, description="Show a tiny dashboard UI")
def show_dashboard(city: str = "Paris") -> str:
    return f"Dashboard for {city}: 21°C, clear"


mcp = MCPServer(SERVER_NAME, version=SERVER_VERSION, extensions=[apps],
                instructions="Demo upstream behind mcp-warden: echo, an MCP App, MRTR and progress.")


@mcp.tool(description="Echo the text back")
def echo(text: str) -> str:
    return text


class TripPrefs(BaseModel):
    seat: str = Field(description="window or aisle")
    meal: bool = Field(description="meal on board?")


def ask_prefs(destination: str) -> Elicit[TripPrefs]:
    return Elicit(f"Seat and meal preference for the trip to {destination}?", TripPrefs)


@mcp.tool(description="Book a trip (asks the user for preferences)")
def book_trip(destination: str, prefs: Annotated[TripPrefs, Resolve(ask_prefs)]) -> str:
    return f"Booked {destination}: seat={prefs.seat}, meal={'yes' if prefs.meal else 'no'}"


# Named gates for slow_sum/open_gate. One process, one event loop: plain dicts are enough.
_gates: dict[str, anyio.Event] = {}
# What happened to the slow_sum waiting on each gate: waiting, opened, cancelled, timed out.
_gate_states: dict[str, str] = {}


def _gate(name: str) -> anyio.Event:
    if name not in _gates:
        _gates[name] = anyio.Event()
    return _gates[name]


@mcp.tool(description="Slowly add two numbers, reporting progress")
async def slow_sum(a: int, b: int, ctx: Context, steps: int = 4, delay: float = 0.05, gate: str = "") -> int:
    steps = max(1, min(steps, 100))
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
        if i == 1 and gate:
            log.info("slow_sum waiting on gate %r", gate)
            _gate_states[gate] = "waiting"
            try:
                with anyio.fail_after(GATE_TIMEOUT_S):
                    await _gate(gate).wait()
            except anyio.get_cancelled_exc_class():
                # The client went away (2026-07-28: closing the stream cancels the request).
                _gate_states[gate] = "cancelled"
                log.info("slow_sum on gate %r cancelled", gate)
                raise
            except TimeoutError:
                _gate_states[gate] = "timed out"
                raise
            finally:
                _gates.pop(gate, None)
            _gate_states[gate] = "opened"
        elif delay > 0:
            await anyio.sleep(min(delay, 5.0))
    return a + b


@mcp.tool(description="Release a slow_sum waiting on this gate")
def open_gate(gate: str) -> str:
    _gate(gate).set()
    return f"opened {gate}"


@mcp.tool(description="What happened to the slow_sum waiting on this gate")
def gate_status(gate: str) -> str:
    return _gate_states.get(gate, "unknown")


@mcp.tool(description="Announce that the tool list changed")
async def announce_change(ctx: Context) -> str:
    # 2026-07-28: to every subscriptions/listen stream that asked for toolsListChanged.
    await ctx.notify_tools_changed()
    # 2025-11-25: to the caller's session, on its standalone GET SSE stream.
    if (ctx.protocol_version or "") < MODERN_VERSION:
        await ctx.session.send_tool_list_changed()
    return "announced"


@mcp.tool(description="A harmless tool that the gateway's route tests block by Mcp-Name")
def blocked_tool() -> str:
    return "blocked_tool ran on the upstream"


def export_spans(endpoint: str) -> None:
    """The MCP SDK's server spans, to an OTLP/gRPC receiver at `endpoint` (host:port)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVER_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=200))
    trace.set_tracer_provider(provider)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("UPSTREAM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("UPSTREAM_PORT", "8080")))
    parser.add_argument("--log-level", default=os.environ.get("UPSTREAM_LOG_LEVEL", "INFO"))
    parser.add_argument("--otlp", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
                        help="host:port of an OTLP/gRPC trace receiver for the SDK's server spans")
    args = parser.parse_args()
    if args.otlp:
        export_spans(args.otlp)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    mcp.settings.log_level = args.log_level
    # Sessionful legacy mode (the SDK default): initialize mints Mcp-Session-Id, GET opens the
    # standalone SSE stream, DELETE ends the session. 2026-07-28 requests are served statelessly.
    mcp.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
