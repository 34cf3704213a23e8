"""Policy through real Envoy, per verified principal, for both eras (legacy 2025-11-25 session
requests carry no routing headers: the filter derives them from the body).

jwt_authn (envoy/e2e-jwt.yaml, JWKS generated per run) -> mcp-warden -> demo/upstream.py:
- alice may not call `show_dashboard` (403, -31403, the rule's reason);
- `book_trip` is hidden from bob: calling it answers like an unknown tool (200, -32602
  "Unknown tool: book_trip") and it is missing from bob's `tools/list` (result `cacheScope`
  "private"), while alice still sees and can call it; under `hidden_answer: upstream` it
  answers as the upstream answers a made-up name (the call goes there under a decoy);
- alice's `echo` is rate limited (2 per hour): the third call gets 429, `Retry-After`, -31429, the
  request id kept; bob's echo is not limited;
- a rule on the delegation chain (`actors`) and one on groups;
- a dry-run rule does nothing to traffic but is counted;
- decisions show at the admin `/stats/prometheus` with era / method / decision / rule labels.
Every refused request is shown not to have reached the upstream (the demo upstream's own tool
counters are not observable, so this uses Envoy's upstream request counter for the cluster).
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from wardenkit import harness
import pki

TEMPLATE = "envoy/e2e-jwt.yaml"
ERAS = ["modern", "legacy"]

POLICY = {
    "principal": {"sources": ["jwt"]},
    "rules": [
        {"id": "alice-no-dashboard", "match": {"principals": ["alice"], "methods": ["tools/call"],
                                               "names": ["show_dashboard"]},
         "action": "deny", "hide": False, "reason": "alice may not open dashboards"},
        {"id": "bob-no-trips", "match": {"principals": ["bob"], "names": ["book_trip"]},
         "action": "deny", "reason": "bob does not book trips"},
        {"id": "search-agent-no-gates", "match": {"actors": ["search"], "methods": ["tools/call"],
                                                  "names": ["open_gate"]},
         "action": "deny", "hide": False, "reason": "the search agent may not open gates"},
        {"id": "contractors-no-announce", "match": {"groups": ["contractors"], "methods": ["tools/call"],
                                                    "names": ["announce_change"]},
         "action": "deny", "hide": False, "reason": "contractors may not announce changes"},
        {"id": "tier-2-no-book", "match": {"claims": {"tier": "2"}, "methods": ["tools/call"], "names": ["book_trip"]},
         "action": "deny", "hide": False, "reason": "tier 2 cannot book"},
        {"id": "dry-gate-status", "match": {"names": ["gate_status"]}, "action": "deny", "dry_run": True,
         "reason": "would deny gate_status"},
        {"id": "bob-no-dashboard-ui", "match": {"principals": ["bob"], "methods": ["resources/read"],
                                                "names": ["ui://dashboard/*"]},
         "action": "deny", "reason": "bob does not see the dashboard"},
        {"id": "alice-echo", "match": {"principals": ["alice"], "methods": ["tools/call"], "names": ["echo"]},
         "action": "rate_limit", "rate_limit": {"rate": 2, "period_secs": 3600, "burst": 2, "key": "principal_tool"}},
    ],
}


def placeholder_jwks() -> str:
    text = (harness.ROOT / TEMPLATE).read_text()
    m = re.search(r"inline_string: '(\{\"keys\".*\})'", text)
    assert m
    return m.group(1)


@pytest.fixture(scope="module")
def issuer() -> pki.JwtIssuer:
    return pki.JwtIssuer()


@pytest.fixture
def gw(gateway, demo_upstream, issuer):
    """A fresh Envoy per test: rate-limit state starts empty."""
    return gateway(TEMPLATE, upstream_port=demo_upstream.port, replace={placeholder_jwks(): issuer.jwks()},
                   plugin_config=POLICY, wait_mcp=True)


def upstream_requests(gw) -> int:
    stats = gw.stats(r"^cluster\.mcp_upstream\.upstream_rq_total$")
    return stats["cluster.mcp_upstream.upstream_rq_total"]  # the exact stat: a renamed cluster fails here


def client(gw, issuer, sub: str, **claims) -> pki.McpClient:
    return pki.McpClient(gw.url, token=issuer.token(sub, **claims))


def call(c: pki.McpClient, era: str, tool: str, arguments: dict | None = None):
    return c.call(era, "tools/call", {"name": tool, "arguments": arguments or {}})


def assert_ok(resp, msg, what=""):
    assert resp.status_code == 200, f"{what}: {resp.status_code} {resp.text}"
    assert msg is not None and "result" in msg, f"{what}: {msg}"


def tool_names(c: pki.McpClient, era: str) -> tuple[list[str], dict]:
    resp, msg = c.call(era, "tools/list")
    assert_ok(resp, msg, "tools/list")
    return [t["name"] for t in msg["result"]["tools"]], msg["result"]


@pytest.mark.parametrize("era", ERAS)
def test_deny_with_reason(gw, issuer, era):
    alice = client(gw, issuer, "alice")
    if era == "legacy":
        alice.initialize()
    before = upstream_requests(gw)
    resp, msg = call(alice, era, "show_dashboard", {"city": "Oslo"})
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert msg["error"]["code"] == -31403
    assert msg["error"]["message"] == "alice may not open dashboards"
    assert msg["id"] == alice._rid
    assert upstream_requests(gw) == before, "a denied call never reaches the upstream"
    # bob may.
    bob = client(gw, issuer, "bob")
    resp, msg = call(bob, era, "show_dashboard", {"city": "Oslo"})
    assert_ok(resp, msg, "bob show_dashboard")


@pytest.mark.parametrize("era", ERAS)
def test_hidden_tool_is_unknown_and_missing_from_the_list(gw, issuer, era):
    bob, alice = client(gw, issuer, "bob"), client(gw, issuer, "alice")
    bob_tools, bob_result = tool_names(bob, era)
    alice_tools, alice_result = tool_names(alice, era)
    assert "book_trip" in alice_tools
    assert "book_trip" not in bob_tools
    assert set(bob_tools) == set(alice_tools) - {"book_trip"}
    assert bob_result.get("cacheScope") == "private"
    assert alice_result.get("cacheScope") == "private", "the list varies by principal, for everyone"

    before = upstream_requests(gw)
    resp, msg = call(bob, era, "book_trip", {"destination": "Oslo"})
    assert resp.status_code == 200, resp.text
    assert msg["error"]["code"] == -32602
    assert msg["error"]["message"] == "Unknown tool: book_trip"
    assert "bob does not book trips" not in resp.text, "a hidden tool does not reveal the rule"
    assert msg["id"] == bob._rid
    assert upstream_requests(gw) == before


@pytest.mark.parametrize("era", ERAS)
def test_under_hidden_answer_upstream_a_hidden_tool_answers_as_a_made_up_one(gateway, demo_upstream, issuer, era):
    """The upstream itself says what it says of a name it does not have: the hidden tool's answer
    is the made-up name's, naming the tool asked for (the Python SDK's answer, not ours)."""
    gw = gateway(TEMPLATE, upstream_port=demo_upstream.port, replace={placeholder_jwks(): issuer.jwks()},
                 plugin_config={**POLICY, "hidden_answer": "upstream"}, wait_mcp=True)
    bob = client(gw, issuer, "bob")
    if era == "legacy":
        bob.initialize()
    before = upstream_requests(gw)
    hidden_resp, hidden = call(bob, era, "book_trip", {"destination": "Oslo"})
    made_up_resp, made_up = call(bob, era, "no_such_tool", {"destination": "Oslo"})
    assert upstream_requests(gw) == before + 2, "both went to the upstream, one round trip each"
    assert hidden_resp.status_code == made_up_resp.status_code == 200
    assert "mcpw-absent" not in hidden_resp.text, hidden_resp.text
    assert "Unknown tool: book_trip" not in hidden_resp.text or "Unknown tool: no_such_tool" in made_up_resp.text
    hidden.pop("id"), made_up.pop("id")
    assert json.loads(json.dumps(made_up).replace("no_such_tool", "book_trip")) == hidden, (hidden, made_up)
    assert "book_trip" in json.dumps(hidden), hidden
    assert "bob does not book trips" not in hidden_resp.text
    # For alice the tool is there: her call reaches it (it asks her preferences, which this
    # client cannot answer), not an unknown-tool answer.
    alice = client(gw, issuer, "alice")
    if era == "legacy":
        alice.initialize()
    _, msg = call(alice, era, "book_trip", {"destination": "Oslo"})
    msg.pop("id")
    assert msg != hidden and "ask_prefs" in json.dumps(msg), msg


@pytest.mark.parametrize("era", ERAS)
def test_a_hidden_resource_stays_hidden_in_every_spelling(gw, issuer, era):
    """The upstream resolves `UI://dashboard/%61pp.html` and `ui://dashboard/x/../app.html` to the
    dashboard; so does the filter. An encoded delimiter has no single reading: under the hide rule it
    is as unknown as the resource (a visible refusal would tell that something is hidden there)."""
    bob, alice = client(gw, issuer, "bob"), client(gw, issuer, "alice")
    if era == "legacy":
        bob.initialize()
        alice.initialize()
    resp, msg = alice.call(era, "resources/read", {"uri": "ui://dashboard/app.html"})
    assert_ok(resp, msg, "alice reads the dashboard")
    before = upstream_requests(gw)
    for uri in ["ui://dashboard/app.html", "UI://dashboard/%61pp.html", "ui://dashboard/x/../app.html", "ui://DASHBOARD/./app.html"]:
        resp, msg = bob.call(era, "resources/read", {"uri": uri})
        assert resp.status_code == 200 and msg["error"]["code"] == -32602, (uri, resp.text)
        assert msg["error"]["message"] == f"Resource not found: {uri}", msg
    resp, msg = bob.call(era, "resources/read", {"uri": "ui://dashboard%2fapp.html"})
    assert resp.status_code == 200 and msg["error"]["code"] == -32602, resp.text
    assert msg["error"]["message"] == "Resource not found: ui://dashboard%2fapp.html", msg
    assert upstream_requests(gw) == before, "no spelling of the hidden resource reached the upstream"


def test_a_legacy_session_belongs_to_the_principal_that_opened_it(gw, issuer):
    """bob presents alice's Mcp-Session-Id: 404 + -32001 (what a server answers for a session it
    does not know), never forwarded, counted; alice's session goes on working."""
    alice, bob = client(gw, issuer, "alice"), client(gw, issuer, "bob")
    alice.initialize()
    bob.session = dict(alice.session)
    before = upstream_requests(gw)
    resp, msg = bob.legacy("tools/list")
    assert resp.status_code == 404, resp.text
    assert msg["error"]["code"] == -32001 and msg["id"] == bob._rid, msg
    assert upstream_requests(gw) == before, "the hijacked session never reached the upstream"
    assert sum(gw.stats("mcp_warden_session_hijacks_total").values()) == 1
    resp, msg = alice.legacy("tools/list")
    assert_ok(resp, msg, "alice in her own session")


def test_a_session_on_two_lines_is_refused_never_joined(gw, issuer):
    """bob sends alice's Mcp-Session-Id and a second line: the Python SDK would run the first
    line's session (alice's), the binding would have checked the two joined. 400, never forwarded."""
    alice, bob = client(gw, issuer, "alice"), client(gw, issuer, "bob")
    alice.initialize()
    bob.initialize()
    sid = alice.session["Mcp-Session-Id"]
    before = upstream_requests(gw)
    headers = [("Content-Type", "application/json"), ("Accept", pki.ACCEPT), *bob.base.items(),
               ("MCP-Protocol-Version", pki.LEGACY_VERSION), ("Mcp-Session-Id", sid), ("Mcp-Session-Id", "x")]
    resp = bob.http.post(bob.url, content=json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
                         headers=headers)
    assert resp.status_code == 400, resp.text
    err = resp.json()
    assert err["error"]["code"] == -32600 and "is repeated" in err["error"]["message"], resp.text
    assert err["id"] == 9, "refused once the body is in, with the request's id"
    assert upstream_requests(gw) == before, "the request never reached the upstream"
    resp, msg = alice.legacy("tools/list")
    assert_ok(resp, msg, "alice in her own session")


@pytest.mark.parametrize("era", ERAS)
def test_rate_limit_per_principal_and_tool(gw, issuer, era):
    alice = client(gw, issuer, "alice")
    for i in range(2):
        resp, msg = call(alice, era, "echo", {"text": f"hi {i}"})
        assert_ok(resp, msg, f"echo #{i + 1}")
    before = upstream_requests(gw)
    resp, msg = call(alice, era, "echo", {"text": "one too many"})
    assert resp.status_code == 429, resp.text
    assert int(resp.headers["retry-after"]) >= 1
    assert msg["error"]["code"] == -31429
    assert msg["id"] == alice._rid
    assert upstream_requests(gw) == before
    # Another tool of alice's is not limited; neither is bob's echo.
    resp, msg = call(alice, era, "gate_status", {"gate": "g"})
    assert_ok(resp, msg, "alice gate_status")
    bob = client(gw, issuer, "bob")
    for i in range(4):
        resp, msg = call(bob, era, "echo", {"text": f"bob {i}"})
        assert_ok(resp, msg, f"bob echo #{i + 1}")
    stats = gw.stats("mcp_warden_rate_limited_total")
    assert sum(stats.values()) >= 1, stats


@pytest.mark.parametrize("era", ERAS)
def test_delegation_chain_and_groups(gw, issuer, era):
    via_search = client(gw, issuer, "alice", act={"sub": "agent-7", "act": {"sub": "search"}})
    resp, msg = call(via_search, era, "open_gate", {"gate": "g1"})
    assert resp.status_code == 403, resp.text
    assert msg["error"]["message"] == "the search agent may not open gates"
    direct = client(gw, issuer, "alice")
    resp, msg = call(direct, era, "open_gate", {"gate": "g1"})
    assert_ok(resp, msg, "alice directly")
    via_agent7_only = client(gw, issuer, "alice", act={"sub": "agent-7"})
    resp, msg = call(via_agent7_only, era, "open_gate", {"gate": "g1"})
    assert_ok(resp, msg, "alice via agent-7")

    contractor = client(gw, issuer, "carol", groups=["eng", "contractors"])
    resp, msg = call(contractor, era, "announce_change")
    assert resp.status_code == 403, resp.text
    assert msg["error"]["message"] == "contractors may not announce changes"
    employee = client(gw, issuer, "dave", groups=["eng"])
    resp, msg = call(employee, era, "announce_change")
    assert_ok(resp, msg, "employee announce_change")


def test_dry_run_rule_is_counted_not_enforced(gw, issuer):
    alice = client(gw, issuer, "alice")
    for era in ERAS:
        resp, msg = call(alice, era, "gate_status", {"gate": "g"})
        assert_ok(resp, msg, f"{era} gate_status under a dry-run deny")
    stats = gw.stats("mcp_warden_dry_run_hits_total")
    assert sum(stats.values()) == 2, stats


def prometheus(gw) -> dict[str, float]:
    """`name{labels}` -> value for every mcp_warden sample at the admin /stats/prometheus."""
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/stats/prometheus", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("mcp_warden") and "_bucket{" not in line:
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_decisions_show_in_prometheus_with_labels(gw, issuer):
    alice, bob = client(gw, issuer, "alice"), client(gw, issuer, "bob")
    assert call(alice, "modern", "show_dashboard")[0].status_code == 403
    for _ in range(3):
        call(alice, "modern", "echo", {"text": "x"})
    assert call(bob, "legacy", "book_trip", {"destination": "Oslo"})[0].status_code == 200
    metrics = prometheus(gw)
    expect = {
        'mcp_warden_requests_total{era="modern",method="tools/call",decision="deny"}': 1,
        'mcp_warden_requests_total{era="modern",method="tools/call",decision="rate_limited"}': 1,
        'mcp_warden_requests_total{era="modern",method="tools/call",decision="allow"}': 2,
        'mcp_warden_requests_total{era="legacy",method="tools/call",decision="hide"}': 1,
        'mcp_warden_denials_total{rule="alice-no-dashboard"}': 1,
        'mcp_warden_denials_total{rule="bob-no-trips"}': 1,
        'mcp_warden_rate_limited_total{rule="alice-echo"}': 1,
    }
    got = {k: metrics.get(k) for k in expect}
    assert got == expect, {k: v for k, v in metrics.items() if "total" in k}


@pytest.mark.parametrize("era", ERAS)
def test_numeric_claim_matches_as_an_integer(gw, issuer, era):
    """`"tier": 2` in the token reaches the policy as "2" (Envoy stores JSON numbers as doubles;
    crates/core/src/pbstruct.rs renders integral ones without ".0"), so a claims rule on "2" matches."""
    resp, msg = call(client(gw, issuer, "erin", tier=2), era, "book_trip", {"destination": "Oslo"})
    assert resp.status_code == 403, resp.text
    assert msg["error"]["message"] == "tier 2 cannot book"
    for other in (3, 2.5, "two"):
        before = upstream_requests(gw)
        resp, msg = call(client(gw, issuer, "erin", tier=other), era, "book_trip", {"destination": "Oslo"})
        # Not denied: forwarded, and the answer is the upstream's own (book_trip asks for the
        # elicitation capability these clients do not declare), not the filter's.
        assert upstream_requests(gw) > before, (other, resp.text)  # (legacy: the initialize too)
        assert msg["error"]["code"] == -32021 and "elicitation" in msg["error"]["message"], (other, resp.text)


def test_filter_time_is_sampled_one_request_in_sixteen(gw, issuer):
    """The filter-time histogram times one request in 16 per worker (its clock reads are host
    calls that cannot change a decision): 64 more requests add 4 samples on a one-worker Envoy."""
    def samples() -> float:
        return sum(v for k, v in prometheus(gw).items() if k.startswith("mcp_warden_filter_time_us_count"))

    carol = client(gw, issuer, "carol")
    before = samples()
    for _ in range(64):
        call(carol, "modern", "gate_status", {"gate": "g"})
    # Histograms reach the admin endpoint at Envoy's stats flush (every 5 s).
    deadline = time.monotonic() + 30
    while (added := samples() - before) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert added == 4, added
