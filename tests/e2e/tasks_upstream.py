#!/usr/bin/env python3
"""A FastMCP 4.1.6 server with the tasks extension (fastmcp-tasks, in-memory Docket backend), for
tests/e2e/test_task_binding.py: `slow_report` runs as a task for 2026-07-28 clients that declare
`io.modelcontextprotocol/tasks`, then answers `tasks/get` / `tasks/cancel`.

Runs in the peers venv (.venv-peers: fastmcp does not install beside the main venv's pins).

    .venv-peers/bin/python tasks_upstream.py --port N
"""
from __future__ import annotations

import argparse
import asyncio

from fastmcp import FastMCP
from fastmcp_tasks import TasksExtension

mcp = FastMCP("tasks-upstream")
mcp.add_extension(TasksExtension(url="memory://"))


@mcp.tool(task=True)
async def slow_report(topic: str, seconds: float = 0.2) -> str:
    await asyncio.sleep(seconds)
    return f"report on {topic}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    port = ap.parse_args().port
    mcp.run(transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False)
