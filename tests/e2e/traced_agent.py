"""An agent that traces: the Python `mcp` SDK client under a real OpenTelemetry SDK tracer, so the
SDK's own client spans inject their W3C context into each request's `params._meta` (SEP-414).
Run as a separate process by test_tracing.py (a tracer provider is process-global).

    traced_agent.py URL TOOL TEXT

Prints one JSON object: the tool's result, and every span this process finished (the root
`agent task` span and the SDK's `MCP send ...` client spans) with hex ids.
"""
from __future__ import annotations

import asyncio
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp.client import Client


async def main(url: str, tool: str, text: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with trace.get_tracer("mcp-warden-e2e-agent").start_as_current_span("agent task"):
        async with Client(url) as client:
            result = await client.call_tool(tool, {"text": text})
    spans = [{
        "name": s.name,
        "kind": s.kind.name,
        "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "",
    } for s in exporter.get_finished_spans()]
    print(json.dumps({"result": result.structured_content, "spans": spans}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
