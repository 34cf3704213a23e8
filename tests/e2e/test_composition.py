"""Envoy's native filters composed *after* mcp-warden (envoy/e2e-compose.yaml), keyed on what the
filter guarantees:

- `rbac` denies the tool `open_gate` by the `mcp-name` header;
- `local_ratelimit` gives each principal 2 `echo` calls, by descriptors built from the `mcp-name`
  and `x-warden-principal` request headers.

Both eras: a 2025-11-25 request carries no `Mcp-Name` from the client, so what the native filters
see is the header mcp-warden synthesised from the body; a client header that lies is overwritten
(legacy) or refused (2026-07-28), and a client-sent `x-warden-principal` is replaced, so lying
does not get a request past either native filter.
"""
from __future__ import annotations

import uuid

import pytest

import pki

TEMPLATE = "envoy/e2e-compose.yaml"
ERAS = ["modern", "legacy"]


@pytest.fixture
def gw(gateway, demo_upstream):
    """A fresh Envoy per test: native token buckets start full."""
    return gateway(TEMPLATE, upstream_port=demo_upstream.port, wait_mcp=True)


def user(gw, era: str, name: str | None = None) -> pki.McpClient:
    c = pki.McpClient(gw.url, headers={"x-user": name or f"user-{uuid.uuid4().hex[:8]}"})
    if era == "legacy":
        resp = c.initialize()
        assert resp.status_code == 200, resp.text
    return c


def call(c: pki.McpClient, era: str, tool: str, args: dict | None = None, headers: dict | None = None):
    return c.call(era, "tools/call", {"name": tool, "arguments": args or {}}, headers=headers)


def native_limited(gw) -> int:
    return gw.stats(r"^mcp_native\.http_local_rate_limit\.rate_limited$").get(
        "mcp_native.http_local_rate_limit.rate_limited", 0)


def rbac_denied(gw) -> int:
    return sum(v for k, v in gw.stats(r"rbac\.denied$").items())


def upstream_requests(gw) -> int:
    return gw.stats(r"^cluster\.mcp_upstream\.upstream_rq_total$")["cluster.mcp_upstream.upstream_rq_total"]


@pytest.mark.parametrize("era", ERAS)
def test_native_rate_limit_per_principal_and_tool(gw, era):
    alice, bob = user(gw, era, "alice"), user(gw, era, "bob")
    for i in range(2):
        resp, msg = call(alice, era, "echo", {"text": str(i)})
        assert resp.status_code == 200 and "result" in msg, resp.text
    before = upstream_requests(gw)
    resp, _ = call(alice, era, "echo", {"text": "third"})
    assert resp.status_code == 429, resp.text
    assert "local_rate_limited" in resp.text, "answered by Envoy's local_ratelimit, not by mcp-warden"
    assert upstream_requests(gw) == before
    assert native_limited(gw) == 1
    # Another tool, and another principal's echo, are not limited.
    resp, msg = call(alice, era, "gate_status", {"gate": "g"})
    assert resp.status_code == 200 and "result" in msg, resp.text
    for i in range(2):
        resp, msg = call(bob, era, "echo", {"text": str(i)})
        assert resp.status_code == 200 and "result" in msg, resp.text


@pytest.mark.parametrize("era", ERAS)
def test_lying_headers_do_not_escape_the_native_limit(gw, era):
    alice = user(gw, era, "alice")
    for i in range(2):
        resp, _ = call(alice, era, "echo", {"text": str(i)})
        assert resp.status_code == 200, resp.text
    limited0 = native_limited(gw)
    before = upstream_requests(gw)
    # A fresh principal hash per request would be a fresh bucket: the filter replaces it.
    resp, _ = call(alice, era, "echo", {"text": "x"}, headers={"x-warden-principal": uuid.uuid4().hex})
    assert resp.status_code == 429, resp.text
    # Naming an unlimited tool in Mcp-Name while the body calls echo.
    resp, msg = call(alice, era, "echo", {"text": "y"}, headers={"Mcp-Name": "gate_status"})
    if era == "legacy":
        assert resp.status_code == 429, "the synthesised Mcp-Name (echo) is what local_ratelimit sees"
    else:
        assert resp.status_code == 400, resp.text  # refused by mcp-warden: header and body disagree
        assert msg["error"]["code"] < 0
    assert upstream_requests(gw) == before, "none of the lying requests reached the upstream"
    assert native_limited(gw) == limited0 + (2 if era == "legacy" else 1)


@pytest.mark.parametrize("era", ERAS)
def test_native_rbac_on_the_validated_tool_name(gw, era):
    c = user(gw, era)
    before, denied0 = upstream_requests(gw), rbac_denied(gw)
    resp, _ = call(c, era, "open_gate", {"gate": "g"})
    assert resp.status_code == 403 and "RBAC" in resp.text, resp.text
    # Legacy: the client's header says echo, the body open_gate: the filter's header wins.
    # Modern: header and body disagree, so mcp-warden refuses before RBAC runs.
    resp, _ = call(c, era, "open_gate", {"gate": "g"}, headers={"Mcp-Name": "echo"})
    if era == "legacy":
        assert resp.status_code == 403 and "RBAC" in resp.text, resp.text
    else:
        assert resp.status_code == 400, resp.text
    assert upstream_requests(gw) == before
    assert rbac_denied(gw) - denied0 == (2 if era == "legacy" else 1)
    resp, msg = call(c, era, "gate_status", {"gate": "g"})
    assert resp.status_code == 200 and "result" in msg, resp.text
