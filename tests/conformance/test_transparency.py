"""Conformance transparency through Envoy + mcp-warden (see run.py).

For each upstream (demo/upstream.py, the Python conformance peer demo/conformance_server.py, the
TypeScript SDK v2 peer tests/conformance/ts_server.mjs) and each requirement set (2026-07-28,
2025-11-25) the official conformance suite runs against the upstream directly and then through
the gateway; every scenario and every check that passes directly must pass through the gateway. Needs `make build deps deps-node`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402

UPSTREAMS = [u for u in run.DEFAULT_UPSTREAMS if run.UPSTREAMS[u].is_file()]


@pytest.fixture(scope="module", params=UPSTREAMS)
def comparisons(request, tmp_path_factory):
    upstream = request.param
    comps = run.compare(upstream, run.REQUIREMENT_SETS, run_dir=tmp_path_factory.mktemp(f"conformance-{upstream}"))
    return upstream, {c.requirements: c for c in comps}


@pytest.mark.parametrize("requirements", run.REQUIREMENT_SETS)
def test_gateway_is_transparent(comparisons, requirements):
    upstream, comps = comparisons
    c = comps[requirements]
    print(f"\n== {upstream} {requirements} ==\n{c.table()}")
    # The suite really ran, in both directions, over the same scenarios, and really went through Envoy.
    assert c.direct.scenarios, f"no scenario ran directly ({c.direct.output_path})"
    assert set(c.gateway.scenarios) == set(c.direct.scenarios)
    assert c.direct.n_ok > 0, "nothing passes directly: the upstream is not serving MCP"
    assert c.gateway.envoy_requests > 0, "the gateway run sent no request through Envoy"
    if upstream == "conformance":
        # The peer written for the suite must keep every check meaningful: all scenarios of both
        # requirement sets (tasks extension included) pass directly.
        failing = sorted(n for n, sc in c.direct.scenarios.items() if not sc.ok)
        assert not failing, f"demo/conformance_server.py fails these directly: {failing}"
    regressions = c.regressions()
    assert not regressions, (f"passes against {upstream} directly but not through the gateway "
                             f"(logs: {c.gateway.output_path}):\n" + "\n".join(regressions))
