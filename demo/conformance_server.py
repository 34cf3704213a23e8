#!/usr/bin/env python3
"""An MCP server that implements the fixed-name tools, resources and prompts the official
conformance suite (`@modelcontextprotocol/conformance`, server scenarios) calls, so that more of
its checks are meaningful when the suite runs through mcp-warden (tests/conformance/run.py
--upstream conformance). Both eras on one `/mcp` endpoint, on the Python `mcp` 2.3.0 SDK.

Written here from the scenario descriptions the suite ships; it is a test peer, not a demo.
What it covers: content tools (text, image, audio, embedded resource, mixed, error, progress,
logging), legacy server->client sampling/elicitation (incl. SEP-1034 defaults and SEP-1330
enums), the 2026-07-28 multi-round-trip (`input_required`) tools and prompt, the SEP-2575
`test_missing_capability` probe, list-change triggers, a tool with an `x-mcp-header` parameter
(SEP-2243 `Mcp-Param-*`), the JSON Schema 2020-12 tool, static/binary/templated resources,
subscribe/unsubscribe, prompts, completion and logging/setLevel, and the SEP-2663 tasks extension
(in-memory task store behind MCPServer's Extension seam: tasks/get, tasks/update, tasks/cancel,
server-directed task creation, MRTR-then-task). Measured: all 50 scenarios of the 2026-07-28
requirement set and all 33 of 2025-11-25 pass directly against it.

Run: `python demo/conformance_server.py --port 8081`.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import logging
import os
import uuid
from typing import Annotated, Any

import anyio
import mcp_types as types
from mcp_types import (
    HEADER_MISMATCH,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    InputRequiredResult,
    TextContent,
    TextResourceContents,
)
from pydantic import ConfigDict, Field

from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError

log = logging.getLogger("conformance-server")

# 1x1 red PNG and a minimal WAV.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_B64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

# ---- tasks extension (SEP-2663), served through MCPServer's Extension seam -----------------
# A small in-memory task store. Task-supporting tools create a task when the request declares
# the extension (session or per-request clientCapabilities); otherwise optional ones run
# synchronously and required ones answer -32021. Jobs run as asyncio tasks on the server's loop.

TASKS_EXT = "io.modelcontextprotocol/tasks"
TASK_TTL_MS = 300_000
TASK_POLL_MS = 100


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _declares_tasks(ctx) -> bool:
    caps = ctx.session.client_capabilities
    exts = getattr(caps, "extensions", None) if caps is not None else None
    return bool(exts) and TASKS_EXT in exts


def _missing_tasks_capability() -> MCPError:
    return MCPError(code=MISSING_REQUIRED_CLIENT_CAPABILITY, message=f"Missing required client capability: {TASKS_EXT}",
                    data={"requiredCapabilities": {"extensions": {TASKS_EXT: {}}}})


class TaskRecord:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.status = "working"
        self.created = self.updated = _now()
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.pending: dict[str, Any] = {}  # inputRequests still unanswered
        self.answers: dict[str, Any] = {}
        self.answered = asyncio.Event()
        self.job: asyncio.Task | None = None

    def touch(self, status: str) -> None:
        self.status, self.updated = status, _now()

    def envelope(self) -> dict[str, Any]:
        return {"taskId": self.id, "status": self.status, "createdAt": self.created, "lastUpdatedAt": self.updated,
                "ttlMs": TASK_TTL_MS, "pollIntervalMs": TASK_POLL_MS}

    async def ask(self, requests: dict[str, Any]) -> dict[str, Any]:
        """Park in input_required until every request is answered; return the answers."""
        self.pending.update(requests)
        self.touch("input_required")
        while any(k not in self.answers for k in requests):
            self.answered.clear()
            await self.answered.wait()
        self.touch("working")
        return {k: self.answers[k] for k in requests}


TASKS: dict[str, TaskRecord] = {}


def _tool_result(t: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": t}], "isError": is_error}


async def _job_slow_compute(task: TaskRecord, args: dict[str, Any]) -> None:
    seconds = float(args.get("seconds", 1) or 0)
    await asyncio.sleep(min(max(seconds, 0), 120))
    task.result = _tool_result(f"slow_compute done after {seconds:g}s ({args.get('label', '')})")


async def _job_failing(task: TaskRecord, args: dict[str, Any]) -> None:
    await asyncio.sleep(0.5)
    task.result = _tool_result("failing_job failed as designed", is_error=True)


async def _job_protocol_error(task: TaskRecord, args: dict[str, Any]) -> None:
    await asyncio.sleep(0.1)
    raise RuntimeError("protocol_error_job crashed as designed")


async def _job_confirm_delete(task: TaskRecord, args: dict[str, Any]) -> None:
    a = await task.ask({f"confirm-{task.id[:8]}": _elicit_req("Really delete?", "confirm", "boolean")})
    task.result = _tool_result(f"delete confirmed: {json.dumps(next(iter(a.values())))}")


async def _job_multi_input(task: TaskRecord, args: dict[str, Any]) -> None:
    a = await task.ask({f"first-{task.id[:8]}": _elicit_req("First value?", "first"),
                        f"second-{task.id[:8]}": _elicit_req("Second value?", "second")})
    task.result = _tool_result(f"multi_input got {len(a)} answers")


async def _job_greeting_for(task: TaskRecord, args: dict[str, Any]) -> None:
    await asyncio.sleep(0.1)
    task.result = _tool_result(f"Hello, {args.get('_user_name', 'unknown')}! (from a task)")


# tool name -> (job, task support)
TASK_TOOLS = {
    "slow_compute": (_job_slow_compute, "optional"),
    "failing_job": (_job_failing, "required"),
    "protocol_error_job": (_job_protocol_error, "optional"),
    "confirm_delete": (_job_confirm_delete, "optional"),
    "multi_input": (_job_multi_input, "optional"),
    "test_tool_with_task": (_job_greeting_for, "required"),
}


async def _run_job(task: TaskRecord, job, args: dict[str, Any]) -> None:
    try:
        await job(task, args)
        task.touch("completed")
    except asyncio.CancelledError:
        task.touch("cancelled")
    except Exception as e:  # noqa: BLE001 - a protocol-level failure of the task
        task.error = {"code": types.INTERNAL_ERROR, "message": str(e)}
        task.touch("failed")


class TaskIdParams(types.RequestParams):
    model_config = ConfigDict(extra="allow")
    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


class TasksExtension(Extension):
    identifier = TASKS_EXT

    def methods(self):
        return [MethodBinding("tasks/get", TaskIdParams, self.get),
                MethodBinding("tasks/update", TaskIdParams, self.update),
                MethodBinding("tasks/cancel", TaskIdParams, self.cancel)]

    @staticmethod
    def _task(ctx, params: TaskIdParams) -> TaskRecord:
        if not _declares_tasks(ctx):
            raise _missing_tasks_capability()
        # SEP-2663: tasks/* carry Mcp-Name: <taskId>; a present, different value is a mismatch.
        headers = getattr(ctx.request, "headers", None)
        name = headers.get("mcp-name") if headers is not None else None
        if name is not None and name.strip() != params.task_id:
            raise MCPError(code=HEADER_MISMATCH, message="Mcp-Name header does not match params.taskId")
        task = TASKS.get(params.task_id)
        if task is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown taskId: {params.task_id}",
                           data={"taskId": params.task_id})
        return task

    async def get(self, ctx, params: TaskIdParams) -> dict[str, Any]:
        task = self._task(ctx, params)
        out = {"resultType": "complete", **task.envelope()}
        if task.status == "completed" and task.result is not None:
            out["result"] = task.result
        elif task.status == "failed" and task.error is not None:
            out["error"] = task.error
        elif task.status == "input_required":
            out["inputRequests"] = dict(task.pending)
        return out

    async def update(self, ctx, params: TaskIdParams) -> dict[str, Any]:
        task = self._task(ctx, params)
        for k, v in (params.input_responses or {}).items():
            if k in task.pending:
                task.pending.pop(k)
                task.answers[k] = v
        task.answered.set()
        return {"resultType": "complete"}

    async def cancel(self, ctx, params: TaskIdParams) -> dict[str, Any]:
        task = self._task(ctx, params)
        if task.status in ("working", "input_required") and task.job is not None:
            task.job.cancel()
            try:
                await task.job
            except asyncio.CancelledError:
                pass
            task.touch("cancelled")
        return {"resultType": "complete"}

    async def intercept_tool_call(self, params, ctx, call_next):
        spec = TASK_TOOLS.get(params.name)
        if spec is None:
            return await call_next(ctx)
        job, support = spec
        if not _declares_tasks(ctx):
            if support == "required":
                raise _missing_tasks_capability()
            return await call_next(ctx)  # optional task support: run synchronously
        args = dict(params.arguments or {})
        if params.name == "test_tool_with_task":
            # MRTR first (synchronously), then escalate to a task carrying the answer.
            answers = plain_responses(params.input_responses)
            if "user_name" not in answers:
                return input_required(USER_NAME)
            args["_user_name"] = ((answers["user_name"] or {}).get("content") or {}).get("name", "unknown")
        task = TaskRecord()
        TASKS[task.id] = task
        task.job = asyncio.get_running_loop().create_task(_run_job(task, job, args))
        return {"resultType": "task", **task.envelope()}


mcp = MCPServer("mcp-warden-conformance-peer", version="0.1.0", extensions=[TasksExtension()],
                instructions="Conformance-suite peer for mcp-warden's transparency tests.")
low = mcp._lowlevel_server  # for the handful of methods MCPServer has no decorator for


def text(t: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=t)])


def client_caps(ctx: Context) -> types.ClientCapabilities | None:
    return ctx.client_capabilities


def is_modern(ctx: Context) -> bool:
    return (ctx.protocol_version or "") >= "2026-07-28"


# ---- plain content tools ------------------------------------------------------------------

@mcp.tool(description="Tests simple text content response")
def test_simple_text() -> CallToolResult:
    return text("This is a simple text response for testing.")


@mcp.tool(description="Tests image content response")
def test_image_content() -> CallToolResult:
    return CallToolResult(content=[ImageContent(type="image", data=PNG_B64, mime_type="image/png")])


@mcp.tool(description="Tests audio content response")
def test_audio_content() -> CallToolResult:
    return CallToolResult(content=[AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")])


def _embedded(uri: str, mime: str, body: str) -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime, text=body))


@mcp.tool(description="Tests embedded resource content response")
def test_embedded_resource() -> CallToolResult:
    return CallToolResult(content=[_embedded("test://embedded-resource", "text/plain",
                                             "This is an embedded resource content.")])


@mcp.tool(description="Tests response with multiple content types (text, image, resource)")
def test_multiple_content_types() -> CallToolResult:
    return CallToolResult(content=[
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
        _embedded("test://mixed-content-resource", "application/json", json.dumps({"test": "data", "value": 123})),
    ])


@mcp.tool(description="Tests error response handling")
def test_error_handling() -> CallToolResult:
    raise ToolError("This tool intentionally returns an error for testing")


@mcp.tool(description="Tests tool that reports progress notifications")
async def test_tool_with_progress(ctx: Context) -> CallToolResult:
    for i, p in enumerate((0, 50, 100)):
        if i:
            await anyio.sleep(0.05)
        await ctx.report_progress(p, 100, f"Completed step {p} of 100")
    meta = ctx.request_context.meta
    token = getattr(meta, "progress_token", None) if meta is not None else None
    return text(str(token if token is not None else 0))


@mcp.tool(description="Tests tool that emits log messages during execution")
async def test_tool_with_logging(ctx: Context) -> CallToolResult:
    for i, msg in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
        if i:
            await anyio.sleep(0.05)
        await ctx.info(msg)
    return text("Tool with logging executed successfully")


@mcp.tool(description="Closes the SSE stream mid-call, then answers (SEP-1699)")
async def test_reconnection(ctx: Context) -> CallToolResult:
    await ctx.close_sse_stream()
    await anyio.sleep(0.1)
    return text("Reconnection test completed successfully. If you received this, the client properly "
                "reconnected after stream closure.")


# ---- legacy server->client requests (2025-11-25) ------------------------------------------

@mcp.tool(description="Tests server-initiated sampling (LLM completion request)")
async def test_sampling(prompt: str, ctx: Context) -> CallToolResult:
    try:
        res = await ctx.request_context.session.create_message(
            [types.SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100, related_request_id=ctx.request_id)
        content = res.content
        reply = getattr(content, "text", None) or "No response"
        return text(f"LLM response: {reply}")
    except Exception as e:  # noqa: BLE001 - reported to the caller like the reference server does
        return text(f"Sampling not supported or error: {e}")


async def _elicit(ctx: Context, message: str, schema: dict[str, Any], prefix: str) -> CallToolResult:
    try:
        res = await ctx.request_context.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        return text(f"{prefix}: action={res.action}, content={json.dumps(res.content or {})}")
    except Exception as e:  # noqa: BLE001
        return text(f"Elicitation not supported or error: {e}")


@mcp.tool(description="Tests server-initiated elicitation (user input request)")
async def test_elicitation(message: str, ctx: Context) -> CallToolResult:
    return await _elicit(ctx, message, {
        "type": "object",
        "properties": {"username": {"type": "string", "description": "User's response"},
                       "email": {"type": "string", "description": "User's email address"}},
        "required": ["username", "email"]}, "User response")


@mcp.tool(description="Tests elicitation with default values per SEP-1034")
async def test_elicitation_sep1034_defaults(ctx: Context) -> CallToolResult:
    return await _elicit(ctx, "Please review and update the form fields with defaults", {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"],
                       "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": True},
        },
        "required": []}, "Elicitation completed")


@mcp.tool(description="Tests elicitation with enum schema improvements per SEP-1330")
async def test_elicitation_sep1330_enums(ctx: Context) -> CallToolResult:
    return await _elicit(ctx, "Please select options from the enum fields", {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Select one option",
                               "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Select one option with titles",
                             "oneOf": [{"const": "value1", "title": "First Option"},
                                       {"const": "value2", "title": "Second Option"},
                                       {"const": "value3", "title": "Third Option"}]},
            "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                           "enum": ["opt1", "opt2", "opt3"],
                           "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Select multiple options",
                              "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                            "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                {"const": "value2", "title": "Second Choice"},
                                                {"const": "value3", "title": "Third Choice"}]}},
        },
        "required": []}, "Elicitation completed")


# ---- 2026-07-28 multi-round trip (SEP-2322) -----------------------------------------------

def _elicit_req(message: str, prop: str, ptype: str = "string") -> dict[str, Any]:
    return {"method": "elicitation/create", "params": {
        "message": message,
        "requestedSchema": {"type": "object", "properties": {prop: {"type": ptype}}, "required": [prop]}}}


def _sampling_req(prompt: str, max_tokens: int) -> dict[str, Any]:
    return {"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": max_tokens}}


ROOTS_REQ = {"method": "roots/list", "params": {}}


def input_required(requests: dict[str, Any] | None = None, state: str | None = None) -> InputRequiredResult:
    body: dict[str, Any] = {"resultType": "input_required"}
    if requests is not None:
        body["inputRequests"] = requests
    if state is not None:
        body["requestState"] = state
    return InputRequiredResult.model_validate(body)


def _responses(ctx: Context) -> dict[str, Any]:
    """inputResponses as plain JSON ({} when absent); invalid shapes are a protocol error."""
    return plain_responses(ctx.input_responses)


def plain_responses(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(raw, dict) and "root" in raw and len(raw) == 1:
        raw = raw["root"]
    if not isinstance(raw, dict):
        raise MCPError(code=types.INVALID_PARAMS, message="inputResponses must be an object")
    out = {}
    for k, v in raw.items():
        out[k] = v.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(v, "model_dump") else v
    return out


def _accepted(resp: Any) -> dict[str, Any]:
    if not isinstance(resp, dict):
        raise MCPError(code=types.INVALID_PARAMS, message="input response must be an object")
    return resp.get("content") or {}


USER_NAME = {"user_name": _elicit_req("What is your name?", "name")}


@mcp.tool(description="SEP-2322: one elicitation input request (user_name)")
def test_input_required_result_elicitation(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    if "user_name" not in r:
        return input_required(USER_NAME)
    return text(f"Hello, {_accepted(r['user_name']).get('name', 'unknown')}!")


@mcp.tool(description="SEP-2322: one sampling input request (capital_question)")
def test_input_required_result_sampling(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    if "capital_question" not in r:
        return input_required({"capital_question": _sampling_req("What is the capital of France?", 100)})
    content = (r["capital_question"] or {}).get("content") or {}
    return text(f"Sampling said: {content.get('text', '') if isinstance(content, dict) else content}")


@mcp.tool(description="SEP-2322: one roots/list input request (client_roots)")
def test_input_required_result_list_roots(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    if "client_roots" not in r:
        return input_required({"client_roots": ROOTS_REQ})
    roots = (r["client_roots"] or {}).get("roots") or []
    return text("Client roots: " + ", ".join(str(x.get("uri")) for x in roots if isinstance(x, dict)))


@mcp.tool(description="SEP-2322: requestState round trip (confirm)")
def test_input_required_result_request_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    if "confirm" not in r or ctx.request_state != "request-state-round-1":
        return input_required({"confirm": _elicit_req("Please confirm", "ok", "boolean")}, "request-state-round-1")
    return text(f"state-ok: confirmed={_accepted(r['confirm']).get('ok')}")


@mcp.tool(description="SEP-2322: elicitation + sampling + roots in one round")
def test_input_required_result_multiple_inputs(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    wanted = {"user_name": USER_NAME["user_name"], "greeting": _sampling_req("Generate a greeting", 50),
              "client_roots": ROOTS_REQ}
    missing = {k: v for k, v in wanted.items() if k not in r}
    if missing or ctx.request_state != "multiple-inputs":
        return input_required(missing or wanted, "multiple-inputs")
    return text(f"All inputs received for {_accepted(r['user_name']).get('name', 'unknown')}")


@mcp.tool(description="SEP-2322: two rounds with evolving requestState")
def test_input_required_result_multi_round(ctx: Context) -> CallToolResult | InputRequiredResult:
    r, state = _responses(ctx), ctx.request_state
    if state == "round-2" and "step2" in r:
        return text(f"Multi-round complete: color={_accepted(r['step2']).get('color')}")
    if state == "round-1" and "step1" in r:
        return input_required({"step2": _elicit_req("Step 2: What is your favorite color?", "color")}, "round-2")
    return input_required({"step1": _elicit_req("Step 1: What is your name?", "name")}, "round-1")


@mcp.tool(description="SEP-2322: integrity-protected requestState (the SDK seals it)")
def test_input_required_result_tampered_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    if ctx.request_state != "untampered" or "confirm" not in r:
        return input_required({"confirm": _elicit_req("Please confirm", "ok", "boolean")}, "untampered")
    return text("state verified")


@mcp.tool(description="SEP-2322: input requests limited to the capabilities the client declared")
def test_input_required_result_capabilities(ctx: Context) -> CallToolResult | InputRequiredResult:
    r = _responses(ctx)
    caps = client_caps(ctx)
    wanted = {}
    if caps is not None and caps.sampling is not None:
        wanted["capital_question"] = _sampling_req("What is the capital of France?", 100)
    if caps is not None and caps.elicitation is not None:
        wanted.update(USER_NAME)
    if caps is not None and caps.roots is not None:
        wanted["client_roots"] = ROOTS_REQ
    missing = {k: v for k, v in wanted.items() if k not in r}
    if missing:
        return input_required(missing)
    return text("capabilities respected")


@mcp.prompt(name="test_input_required_result_prompt", description="SEP-2322: prompts/get needing elicitation")
def test_input_required_result_prompt(ctx: Context) -> list[Message] | InputRequiredResult:
    r = _responses(ctx)
    if "user_context" not in r:
        return input_required({"user_context": _elicit_req("What context should the prompt use?", "context")})
    return [UserMessage(f"Prompt with context: {_accepted(r['user_context']).get('context', '')}")]


# ---- SEP-2575 / list changes / SEP-2243 / SEP-1613 ----------------------------------------

@mcp.tool(description="Needs the client's sampling capability; without it: -32021")
def test_missing_capability(ctx: Context) -> CallToolResult:
    caps = client_caps(ctx)
    if caps is None or caps.sampling is None:
        raise MCPError(code=MISSING_REQUIRED_CLIENT_CAPABILITY, message="Missing required client capability: sampling",
                       data={"requiredCapabilities": {"sampling": {}}})
    return text("sampling capability present")


_toggle = {"tool": False, "prompt": False}


def _extra_tool() -> CallToolResult:
    return text("a tool that comes and goes")


def _extra_prompt() -> str:
    return "a prompt that comes and goes"


@mcp.tool(description="Adds or removes a tool, then announces tools/list_changed")
async def test_trigger_tool_change(ctx: Context) -> CallToolResult:
    if _toggle["tool"]:
        mcp.remove_tool("test_dynamic_tool")
    else:
        mcp.add_tool(_extra_tool, name="test_dynamic_tool", description="A tool that comes and goes")
    _toggle["tool"] = not _toggle["tool"]
    await ctx.notify_tools_changed()
    return text("tool list changed")


@mcp.tool(description="Adds or removes a prompt, then announces prompts/list_changed")
async def test_trigger_prompt_change(ctx: Context) -> CallToolResult:
    from mcp.server.mcpserver.prompts import Prompt
    if _toggle["prompt"]:
        mcp.remove_prompt("test_dynamic_prompt")
    else:
        mcp.add_prompt(Prompt.from_function(_extra_prompt, name="test_dynamic_prompt",
                                            description="A prompt that comes and goes"))
    _toggle["prompt"] = not _toggle["prompt"]
    await ctx.notify_prompts_changed()
    return text("prompt list changed")


@mcp.tool(description="Echoes a parameter mirrored into the Mcp-Param-Region header (SEP-2243)")
def test_custom_headers(region: Annotated[str, Field(description="Region", json_schema_extra={"x-mcp-header": "Region"})],
                        ) -> CallToolResult:
    return text(f"region={region}")


JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {"$anchor": "addr", "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}},
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contact": {"anyOf": [{"type": "string", "format": "email"}, {"type": "string", "pattern": "^\\+?[0-9]+$"}]},
        "kind": {"type": "string", "enum": ["person", "company"]},
    },
    "allOf": [{"required": ["name"]}, {"anyOf": [{"required": ["contact"]}, {"required": ["address"]}]}],
    "if": {"properties": {"kind": {"const": "company"}}},
    "then": {"required": ["address"]},
    "else": {},
    "additionalProperties": False,
}


def json_schema_2020_12_tool(**kwargs: Any) -> CallToolResult:
    return text(json.dumps(kwargs, sort_keys=True))


mcp.add_tool(json_schema_2020_12_tool, name="json_schema_2020_12_tool",
             description="Tool with JSON Schema 2020-12 features (SEP-1613, SEP-2106)")
# The schema is served verbatim in tools/list: MCPServer derives it from the signature, so swap it in.
mcp._tool_manager.get_tool("json_schema_2020_12_tool").parameters = JSON_SCHEMA_2020_12


# ---- resources ----------------------------------------------------------------------------

@mcp.resource("test://static-text", name="static-text", description="A static text resource", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", name="static-binary", description="A static binary resource (PNG)",
              mime_type="image/png")
def static_binary() -> bytes:
    return base64.b64decode(PNG_B64)


@mcp.resource("test://template/{id}/data", name="template-data", description="A templated resource",
              mime_type="application/json")
def template_data(id: str) -> str:  # noqa: A002 - the template variable's name
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource("test://watched-resource", name="watched-resource", description="A resource to subscribe to",
              mime_type="text/plain")
def watched_resource() -> str:
    return "Watched resource content"


_subscriptions: set[str] = set()


async def _subscribe(ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    _subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    _subscriptions.discard(str(params.uri))
    return types.EmptyResult()


async def _set_level(ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe)
low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe)
low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)


# ---- prompts and completion ---------------------------------------------------------------

@mcp.prompt(name="test_simple_prompt", description="A simple prompt without arguments")
def test_simple_prompt() -> list[Message]:
    return [UserMessage("This is a simple prompt for testing.")]


@mcp.prompt(name="test_prompt_with_arguments", description="A prompt with required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[Message]:
    return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@mcp.prompt(name="test_prompt_with_embedded_resource", description="A prompt with an embedded resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Message]:  # noqa: N803 - wire name
    return [UserMessage(_embedded(resourceUri, "text/plain", "Embedded resource content for testing.")),
            UserMessage("Please process the embedded resource above.")]


@mcp.prompt(name="test_prompt_with_image", description="A prompt with image content")
def test_prompt_with_image() -> list[Message]:
    return [UserMessage(ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
            UserMessage("Please analyze the image above.")]


@mcp.completion()
async def complete(ref, argument, context) -> types.Completion:
    candidates = ["paris", "park", "party", "hello", "world"]
    prefix = getattr(argument, "value", "") or ""
    values = [c for c in candidates if c.startswith(prefix)]
    return types.Completion(values=values, total=len(values), has_more=False)


@mcp.tool(description="Sync-only tool (tasks scenarios): greets")
def greet(name: str = "World") -> CallToolResult:
    return text(f"Hello, {name}!")


@mcp.tool(description="Task-supporting: sleeps `seconds` then answers")
async def slow_compute(seconds: float = 1, label: str = "") -> CallToolResult:
    await anyio.sleep(min(max(seconds, 0), 120))
    return text(f"slow_compute done after {seconds:g}s ({label})")


@mcp.tool(description="Task support required: reports a tool error")
def failing_job() -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text="failing_job failed as designed")], is_error=True)


@mcp.tool(description="Task-supporting: fails at the protocol level")
def protocol_error_job() -> CallToolResult:
    raise MCPError(code=types.INTERNAL_ERROR, message="protocol_error_job crashed as designed")


@mcp.tool(description="Task-supporting: asks for confirmation (elicitation) first")
def confirm_delete(path: str = "/tmp/x") -> CallToolResult:
    return text(f"would delete {path} (no tasks: no confirmation asked)")


@mcp.tool(description="Task-supporting: asks two questions at once")
def multi_input() -> CallToolResult:
    return text("multi_input (no tasks: no questions asked)")


@mcp.tool(description="Task support required: MRTR for user_name, then a task")
def test_tool_with_task() -> CallToolResult:
    return text("unreachable without the tasks extension")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("UPSTREAM_PORT", "8081")))
    parser.add_argument("--log-level", default=os.environ.get("UPSTREAM_LOG_LEVEL", "WARNING"))
    parser.add_argument("--stateless", action="store_true", help="session-less 2025-11-25 (no Mcp-Session-Id)")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON instead of SSE")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    mcp.settings.log_level = args.log_level
    mcp.run("streamable-http", host=args.host, port=args.port, stateless_http=args.stateless,
            json_response=args.json_response)


if __name__ == "__main__":
    main()
