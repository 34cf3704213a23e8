"""Poisoned tool definitions stopped through real Envoy with the default (empty) configuration:
a real Python `mcp` 2.3.0 server (`poisoned_upstream.py`) lists a tool whose description hides an
instruction in Unicode tag characters, one carrying a tool-poisoning payload in fullwidth letters,
and a look-alike of `read_file` with a Cyrillic `е`; real SDK clients in both eras list the tools
through the gateway and see only the honest ones, and each stop is counted by kind
(`mcp_warden_findings_total`). Straight to the server (no gateway) the poisoned tools are listed:
the test proves the gateway removed them.
"""
from __future__ import annotations

import asyncio

import pytest

from mcp import Client
from wardenkit import harness

HONEST = ["echo", "read_file"]
POISONED = ["add", "notes", "r\u0435ad_file"]


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    with harness.mcp_upstream("poisoned-upstream", [str(harness.PYTHON), str(harness.ROOT / "tests/e2e/poisoned_upstream.py")],
                              tmp_path_factory.mktemp("poisoned")) as port:
        yield port


@pytest.fixture(scope="module")
def gw(module_gateway, poisoned):
    return module_gateway("envoy/local.yaml", upstream_port=poisoned, plugin_config={}, wait_mcp=True)


def tool_names(url: str, mode: str) -> list[str]:
    async def run():
        async with Client(url, mode=mode) as c:
            return [t.name for t in (await c.list_tools()).tools]
    return asyncio.run(run())


def test_the_server_really_lists_the_poisoned_tools(poisoned):
    assert tool_names(f"http://127.0.0.1:{poisoned}/mcp", "2026-07-28") == HONEST[:1] + POISONED[:2] + [HONEST[1], POISONED[2]]


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_poisoned_tools_leave_the_list_and_are_counted(gw, mode):
    before = gw.stats("mcp_warden_findings_total")
    assert tool_names(gw.url, mode) == HONEST
    after = gw.stats("mcp_warden_findings_total")
    grew = {k for k in after if after[k] > before.get(k, 0)}
    for what in ("invisible_unicode", "injected_instruction", "confusable_name"):
        assert any(f"inspector.tool_text.finding.{what}." in k for k in grew), (what, sorted(grew))
