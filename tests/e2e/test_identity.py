"""Who is acting, through real Envoy: principal resolution from identities Envoy verified.

- JWT (envoy/e2e-jwt.yaml): `jwt_authn` verifies an ES256 token signed by a key this test generates
  and writes the payload to dynamic metadata; the filter reads it (`get_property(["metadata"])`,
  crates/core/src/pbstruct.rs) and tells the upstream who it is as a hash, never the raw id or the token.
- SPIFFE (envoy/e2e-mtls.yaml): the listener requires client certificates from a CA this test
  generates; the client cert's URI SAN is the principal; a rule matches on its trust domain.
- Client-sent `x-warden-*` headers never reach the upstream; the configured source order decides.

The upstream is tests/e2e/recording_upstream.py, so every assertion about what the upstream saw
is about the exact headers it received.
"""
from __future__ import annotations

import uuid

import json
import re
import ssl
from pathlib import Path

import httpx
import pytest

from wardenkit import harness
import pki

JWT_TEMPLATE = "envoy/e2e-jwt.yaml"
MTLS_TEMPLATE = "envoy/e2e-mtls.yaml"
HEX_KEY = re.compile(r"^[0-9a-f]{16,128}$")
ERAS = ["modern", "legacy"]


def placeholder_jwks() -> str:
    """The committed placeholder JWKS (the inline_string of the template), replaced per run."""
    text = (harness.ROOT / JWT_TEMPLATE).read_text()
    m = re.search(r"inline_string: '(\{\"keys\".*\})'", text)
    assert m, "placeholder JWKS not found in " + JWT_TEMPLATE
    return m.group(1)


def values(recorded: dict, name: str) -> list[str]:
    return [v for k, v in recorded["headers"] if k.lower() == name]


def one(recorded: dict, name: str) -> str:
    vs = values(recorded, name)
    assert len(vs) == 1, f"{name}: expected exactly one value upstream, got {vs!r}"
    return vs[0]


@pytest.fixture(scope="module")
def issuer() -> pki.JwtIssuer:
    return pki.JwtIssuer()


@pytest.fixture(scope="module")
def jwt_gw(module_gateway, recorder, issuer):
    """jwt_authn + mcp-warden with sources jwt, then the trusted header `x-user`."""
    return module_gateway(JWT_TEMPLATE, upstream_port=recorder.port,
                          replace={placeholder_jwks(): issuer.jwks()},
                          plugin_config={"principal": {"sources": ["jwt", "header"], "trusted_header": "x-user"}})


def call_tool(client: pki.McpClient, era: str, tool: str):
    """One tools/call of `tool` in `era` (legacy: body only, a made-up session id of its own: a
    session belongs to the principal that first used it); closes the client."""
    try:
        params = {"name": tool, "arguments": {"text": "hi"}}
        if era == "modern":
            return client.modern("tools/call", params)
        client.session = {"Mcp-Session-Id": f"e2e-session-{uuid.uuid4().hex}", "MCP-Protocol-Version": pki.LEGACY_VERSION}
        return client.legacy("tools/call", params)
    finally:
        client.close()


def send(gw, era: str, token: str | None = None, headers: dict | None = None, tool: str = "echo"):
    """One tools/call of `tool` in `era` (legacy: body only, a made-up session id)."""
    client = pki.McpClient(gw.url, token=token, headers=headers)
    return call_tool(client, era, tool)


def upstream_view(gw, recorder: harness.Recorder, era: str, **kw) -> dict:
    """Send one request that must be forwarded; return what the upstream received."""
    before = len(recorder.requests())
    resp, _ = send(gw, era, **kw)
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}\n{gw.log_tail()}"
    reqs = recorder.requests()
    assert len(reqs) == before + 1, "exactly one request reached the upstream"
    return reqs[-1]


# --- JWT -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
def test_jwt_principal_reaches_upstream_as_a_hash(jwt_gw, recorder, issuer, era):
    token = issuer.token("alice", groups=["eng"])
    seen = upstream_view(jwt_gw, recorder, era, token=token)
    assert one(seen, "x-warden-principal-source") == "jwt"
    key = one(seen, "x-warden-principal")
    assert HEX_KEY.match(key), key
    assert "alice" not in key
    assert one(seen, "x-warden-correlation")
    # jwt_authn (forward: false) removed the token; the raw subject is nowhere in the headers.
    assert values(seen, "authorization") == []
    assert not any("alice" in v for _, v in seen["headers"]), seen["headers"]
    # The routing headers the filter validated / synthesised are there for both eras.
    assert one(seen, "mcp-method") == "tools/call" and one(seen, "mcp-name") == "echo"


def test_principal_key_is_stable_and_distinguishes_subjects_and_chains(jwt_gw, recorder, issuer):
    alice = issuer.token("alice")
    k1 = one(upstream_view(jwt_gw, recorder, "modern", token=alice), "x-warden-principal")
    k2 = one(upstream_view(jwt_gw, recorder, "legacy", token=issuer.token("alice")), "x-warden-principal")
    assert k1 == k2, "same subject, same key (across tokens and eras)"
    kb = one(upstream_view(jwt_gw, recorder, "modern", token=issuer.token("bob")), "x-warden-principal")
    assert kb != k1
    chained = issuer.token("alice", act={"sub": "agent-7", "act": {"sub": "search"}})
    kc = one(upstream_view(jwt_gw, recorder, "modern", token=chained), "x-warden-principal")
    assert kc not in (k1, kb), "alice via agent-7 via search is not alice acting directly"


def test_client_sent_warden_headers_are_stripped(jwt_gw, recorder, issuer):
    token = issuer.token("alice")
    honest = upstream_view(jwt_gw, recorder, "modern", token=token)
    forged = {"x-warden-principal": "f" * 32, "X-Warden-Principal-Source": "spiffe",
              "x-warden-correlation": "forged", "x-warden-anything": "1"}
    for era in ERAS:
        seen = upstream_view(jwt_gw, recorder, era, token=token, headers=forged)
        assert one(seen, "x-warden-principal") == one(honest, "x-warden-principal")
        assert one(seen, "x-warden-principal-source") == "jwt"
        assert one(seen, "x-warden-correlation") != "forged"
        assert values(seen, "x-warden-anything") == []


def test_source_order_jwt_then_trusted_header_then_anonymous(jwt_gw, recorder, issuer):
    # A token wins over the trusted header.
    seen = upstream_view(jwt_gw, recorder, "modern", token=issuer.token("alice"), headers={"x-user": "mallory"})
    assert one(seen, "x-warden-principal-source") == "jwt"
    alice_key = one(seen, "x-warden-principal")
    # No token: the trusted header.
    seen = upstream_view(jwt_gw, recorder, "modern", headers={"x-user": "alice"})
    assert one(seen, "x-warden-principal-source") == "header"
    assert one(seen, "x-warden-principal") != alice_key, "a header 'alice' is not the JWT 'alice'"
    # Neither: anonymous, told apart by client fingerprint (user agent here; same source address).
    a = upstream_view(jwt_gw, recorder, "modern", headers={"user-agent": "agent-a"})
    b = upstream_view(jwt_gw, recorder, "modern", headers={"user-agent": "agent-b"})
    a2 = upstream_view(jwt_gw, recorder, "legacy", headers={"user-agent": "agent-a"})
    assert [one(x, "x-warden-principal-source") for x in (a, b, a2)] == ["anonymous"] * 3
    assert one(a, "x-warden-principal") != one(b, "x-warden-principal")
    assert one(a, "x-warden-principal") == one(a2, "x-warden-principal")


XFF_HOPS = "use_remote_address: true"


def anonymous_key(gw, recorder, xff: str | None) -> str:
    seen = upstream_view(gw, recorder, "modern", headers={"user-agent": "agent-xff", **({"x-forwarded-for": xff} if xff else {})})
    assert one(seen, "x-warden-principal-source") == "anonymous"
    return one(seen, "x-warden-principal")


def test_forwarded_for_moves_the_anonymous_fingerprint_only_through_trusted_hops(jwt_gw, module_gateway, recorder):
    """Shipped configs take the client address from the real peer: a client-written
    X-Forwarded-For cannot make one anonymous caller look like many (or like someone else).
    With `xff_num_trusted_hops: 1` (a trusted proxy in front) the address it appended counts."""
    honest = anonymous_key(jwt_gw, recorder, None)
    assert anonymous_key(jwt_gw, recorder, "203.0.113.7") == honest
    assert anonymous_key(jwt_gw, recorder, "198.51.100.1, 203.0.113.7") == honest
    behind_proxy = module_gateway(JWT_TEMPLATE, upstream_port=recorder.port,
                                  replace={XFF_HOPS: XFF_HOPS + "\n          xff_num_trusted_hops: 1"},
                                  plugin_config={"principal": {"sources": ["jwt", "header"], "trusted_header": "x-user"}})
    a = anonymous_key(behind_proxy, recorder, "203.0.113.7")
    b = anonymous_key(behind_proxy, recorder, "198.51.100.1")
    assert a != b, "behind one trusted hop, the address the proxy appended is the client's"
    assert anonymous_key(behind_proxy, recorder, "10.9.9.9, 203.0.113.7") == a, "only the trusted hop's entry counts"


def test_bad_tokens_are_refused_by_jwt_authn_before_the_upstream(jwt_gw, recorder, issuer):
    other = pki.JwtIssuer(kid=issuer.kid)  # same kid, different key: signature does not verify
    before = len(recorder.requests())
    for token in ["not-a-jwt", other.token("alice"), issuer.token("alice", lifetime_s=-120)]:
        for era in ERAS:
            resp, _ = send(jwt_gw, era, token=token)
            assert resp.status_code == 401, (token, resp.status_code, resp.text)
    assert len(recorder.requests()) == before


# --- SPIFFE over mTLS ------------------------------------------------------------------------------


def sds_file(path: Path, secret: dict) -> Path:
    path.write_text(json.dumps({"resources": [
        {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", **secret}]}))
    return path


@pytest.fixture(scope="module")
def mtls(module_gateway, recorder, tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = pki.Pki(d)
    server = ca.server()
    clients = {
        "x": ca.client("client-x", "spiffe://example.org/ns/a/sa/x"),
        "partner": ca.client("client-partner", "spiffe://partner.test/ns/b/sa/y"),
        "nospiffe": ca.client("client-nospiffe", None),
    }
    server_sds = sds_file(d / "sds-server.json", {"name": "server", "tls_certificate": {
        "certificate_chain": {"filename": str(server.cert)}, "private_key": {"filename": str(server.key)}}})
    ca_sds = sds_file(d / "sds-ca.json", {"name": "client_ca", "validation_context": {
        "trusted_ca": {"filename": str(ca.ca_path)}}})
    template = (harness.ROOT / MTLS_TEMPLATE).read_text()
    # The two /dev/null SDS placeholders, in order: server certificate, then client CA.
    placeholder = "{ path: /dev/null }"
    assert template.count(placeholder) == 2
    text = template.replace(placeholder, f"{{ path: {server_sds} }}", 1).replace(placeholder, f"{{ path: {ca_sds} }}", 1)
    rendered_template = d / "e2e-mtls.yaml"
    rendered_template.write_text(text)
    gw = module_gateway(rendered_template, upstream_port=recorder.port)
    return gw, ca, clients


def tls_client(ca: pki.Pki, cert: pki.CertFiles | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(ca.ca_path))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(verify=ctx, timeout=30)


def tls_send(gw, ca, cert, era: str, tool: str = "echo"):
    url = f"https://localhost:{gw.port}/mcp"
    client = pki.McpClient(url, http=tls_client(ca, cert))
    return call_tool(client, era, tool)


@pytest.mark.parametrize("era", ERAS)
def test_spiffe_id_from_the_client_certificate(mtls, recorder, era):
    gw, ca, clients = mtls
    before = len(recorder.requests())
    resp, _ = tls_send(gw, ca, clients["x"], era)
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}\n{gw.log_tail()}"
    reqs = recorder.requests()
    assert len(reqs) == before + 1
    seen = reqs[-1]
    assert one(seen, "x-warden-principal-source") == "spiffe"
    assert HEX_KEY.match(one(seen, "x-warden-principal"))
    assert values(seen, "x-forwarded-client-cert") == []
    # Another workload of the same trust domain is another principal.
    resp, _ = tls_send(gw, ca, clients["partner"], era, tool="gate_status")
    assert resp.status_code == 200, resp.text
    partner = recorder.last()
    assert one(partner, "x-warden-principal-source") == "spiffe"
    assert one(partner, "x-warden-principal") != one(seen, "x-warden-principal")


@pytest.mark.parametrize("era", ERAS)
def test_rule_on_trust_domain(mtls, recorder, era):
    gw, ca, clients = mtls
    before = len(recorder.requests())
    resp, msg = tls_send(gw, ca, clients["partner"], era, tool="echo")
    assert resp.status_code == 403, f"{resp.status_code} {resp.text}\n{gw.log_tail()}"
    assert msg["error"]["code"] == -31403
    assert "partner workloads may not call echo" in msg["error"]["message"]
    assert msg["id"] is not None
    assert len(recorder.requests()) == before, "a denied request never reaches the upstream"
    # example.org may.
    resp, _ = tls_send(gw, ca, clients["x"], era, tool="echo")
    assert resp.status_code == 200, resp.text


def test_client_cert_without_spiffe_id_is_anonymous(mtls, recorder):
    gw, ca, clients = mtls
    resp, _ = tls_send(gw, ca, clients["nospiffe"], "modern")
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}\n{gw.log_tail()}"
    assert one(recorder.last(), "x-warden-principal-source") == "anonymous"


def test_listener_requires_a_client_certificate(mtls, recorder):
    gw, ca, _ = mtls
    before = len(recorder.requests())
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        tls_send(gw, ca, None, "modern")
    assert len(recorder.requests()) == before
