"""Conformance transparency through Envoy + mcp-warden (see run.py).

For each upstream (demo/upstream.py, the Python conformance peer demo/conformance_server.py, the
TypeScript SDK v2 peer tests/conformance/ts_server.mjs) and each requirement set (2026-07-28,
2025-11-25) the official conformance suite runs against the upstream directly and then through
the gateway; every scenario and every check that passes directly must pass through the gateway. Needs `make build deps deps-node`.
"""
from __future__ import annotations


import pytest

import run  # tests/conformance/run.py, next to this file (pytest puts this folder on the path)

# Every upstream, always: a missing script fails its run (never drops it, which would let the
# layer pass on fewer upstreams, or on none).
UPSTREAMS = list(run.DEFAULT_UPSTREAMS)


def test_every_upstream_script_is_there():
    missing = [f"{u}: {run.UPSTREAMS[u]}" for u in UPSTREAMS if not run.UPSTREAMS[u].is_file()]
    assert not missing, f"conformance upstreams missing: {missing}"
    assert len(UPSTREAMS) >= 3, UPSTREAMS


@pytest.fixture(scope="module", params=UPSTREAMS)
def comparisons(request, tmp_path_factory):
    upstream = request.param
    assert run.UPSTREAMS[upstream].is_file(), f"{upstream}: {run.UPSTREAMS[upstream]} is missing"
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


def test_a_gateway_that_breaks_a_scenario_is_caught(tmp_path):
    """Negative control: the comparison has teeth. A policy denying one of the suite's tools makes
    that scenario pass directly and fail through the gateway, and it is reported as a regression."""
    deny = {"eras": {"modern": True, "legacy": True}, "supported_versions": ["2026-07-28"],
            "max_body_bytes": 1048576,
            "rules": [{"id": "deny-simple-text", "match": {"methods": ["tools/call"], "names": ["test_simple_text"]},
                       "action": "deny", "reason": "negative control"}]}
    [c] = run.compare("conformance", ("2026-07-28",), scenario="tools-call-simple-text", run_dir=tmp_path,
                      plugin_config=deny)
    assert c.direct.scenarios["tools-call-simple-text"].ok
    assert not c.gateway.scenarios["tools-call-simple-text"].ok
    assert any(r.startswith("tools-call-simple-text: passes directly") for r in c.regressions()), c.regressions()
    assert any("Mcp-Name=test_simple_text" in x for x in c.local_replies()), c.local_replies()
