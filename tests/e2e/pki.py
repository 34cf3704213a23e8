"""Test-time keys, certificates and tokens for the identity e2e tests (nothing private is committed),
and the small MCP client those tests share.

- `JwtIssuer`: an ES256 signing key, its JWKS (JSON text for `jwt_authn`'s `local_jwks`), and
  `token(sub, **claims)`.
- `Pki`: a CA plus server and client certificates, client certs with SPIFFE URI SANs; everything
  written as PEM files under a directory the test owns.
- `McpClient`: one identity (token / headers) sending 2026-07-28 or 2025-11-25 requests.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


ISSUER = "https://issuer.e2e.mcp-warden.test"
AUDIENCE = "mcp-warden-e2e"


def _b64url(n: int, length: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(length, "big")).rstrip(b"=").decode()


class JwtIssuer:
    """An ES256 issuer whose JWKS the test hands to Envoy inline."""

    def __init__(self, kid: str = "e2e-1", issuer: str = ISSUER, audience: str = AUDIENCE):
        self.kid = kid
        self.issuer = issuer
        self.audience = audience
        self._key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> str:
        nums = self._key.public_key().public_numbers()
        return json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                                     "x": _b64url(nums.x, 32), "y": _b64url(nums.y, 32)}]})

    def token(self, sub: str, lifetime_s: int = 3600, **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "exp": now + lifetime_s}
        payload.update(claims)
        return jwt.encode(payload, self._key, algorithm="ES256", headers={"kid": self.kid})


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class CertFiles:
    cert: Path
    key: Path


class Pki:
    """A throwaway CA under `directory`; `server(...)` and `client(...)` write leaf certs."""

    def __init__(self, directory: Path, name: str = "mcp-warden e2e CA"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        self._name = subject
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self._key, hashes.SHA256()))
        self.ca_path = self.dir / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _leaf(self, stem: str, cn: str, sans: list[x509.GeneralName], usage) -> CertFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(self._name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(self._key, hashes.SHA256()))
        files = CertFiles(self.dir / f"{stem}.pem", self.dir / f"{stem}.key")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(_pem_key(key))
        files.key.chmod(0o600)
        return files

    def server(self, stem: str = "server", dns: str = "localhost") -> CertFiles:
        return self._leaf(stem, dns, [x509.DNSName(dns), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))],
                          ExtendedKeyUsageOID.SERVER_AUTH)

    def client(self, stem: str, spiffe_id: str | None) -> CertFiles:
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)] if spiffe_id else [x509.DNSName(f"{stem}.client")]
        return self._leaf(stem, stem, sans, ExtendedKeyUsageOID.CLIENT_AUTH)


# --- MCP requests for the identity / policy / kill switch tests (sync httpx) ---------------------
# (kept here, next to the identities they carry, so the five test modules share one copy)

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
ACCEPT = "application/json, text/event-stream"


def _modern_meta() -> dict:
    return {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-warden-e2e", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {}}


def jsonrpc_message(resp: httpx.Response, rid) -> dict | None:
    """The JSON-RPC message answering `rid` in a JSON or SSE body (None for an empty body)."""
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        data: list[str] = []
        for line in resp.text.splitlines() + [""]:
            if line == "":
                if data:
                    msg = json.loads("\n".join(data))
                    if isinstance(msg, dict) and msg.get("id") == rid and ("result" in msg or "error" in msg):
                        return msg
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        raise AssertionError(f"no response with id {rid!r} in the SSE body: {resp.text[:500]}")
    if not resp.content or not ctype.startswith("application/json"):
        return None  # empty, or not JSON-RPC (Envoy's own text replies, e.g. jwt_authn's 401)
    return resp.json()


class McpClient:
    """One client identity (bearer token / extra headers) speaking either era to `url`."""

    def __init__(self, url: str, token: str | None = None, headers: dict | None = None,
                 http: httpx.Client | None = None):
        self.url = url
        self.base = dict(headers or {})
        if token:
            self.base["Authorization"] = f"Bearer {token}"
        self.http = http or httpx.Client(timeout=30)
        self._rid = 0
        self.session: dict | None = None

    def _next_id(self) -> int:
        self._rid += 1
        return self._rid

    def modern(self, method: str, params: dict | None = None, name: str | None = None,
               headers: dict | None = None) -> tuple[httpx.Response, dict | None]:
        """A 2026-07-28 request; `Mcp-Name` defaults to params' name / uri."""
        rid = self._next_id()
        params = dict(params or {})
        if name is None:
            name = params.get("name") or params.get("uri")
        h = {"Content-Type": "application/json", "Accept": ACCEPT, "MCP-Protocol-Version": MODERN_VERSION,
             "Mcp-Method": method, **self.base}
        if name is not None:
            h["Mcp-Name"] = name
        h.update(headers or {})
        body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": _modern_meta()}}
        resp = self.http.post(self.url, json=body, headers=h)
        return resp, jsonrpc_message(resp, rid)

    def initialize(self) -> httpx.Response:
        """2025-11-25 initialize + notifications/initialized; later `legacy` calls use the session."""
        h = {"Content-Type": "application/json", "Accept": ACCEPT, **self.base}
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION, "capabilities": {},
            "clientInfo": {"name": "mcp-warden-e2e", "version": "0"}}}
        resp = self.http.post(self.url, json=body, headers=h)
        if resp.status_code != 200:
            return resp
        sid = resp.headers.get("mcp-session-id")
        assert sid, f"no Mcp-Session-Id: {dict(resp.headers)}"
        self.session = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY_VERSION}
        note = self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                              headers={**h, **self.session})
        assert note.status_code == 202, note.text
        return resp

    def legacy(self, method: str, params: dict | None = None,
               headers: dict | None = None) -> tuple[httpx.Response, dict | None]:
        """A 2025-11-25 request in the session (no routing headers: the filter derives them)."""
        if self.session is None:
            resp = self.initialize()
            assert resp.status_code == 200, f"initialize: {resp.status_code} {resp.text}"
        rid = self._next_id()
        h = {"Content-Type": "application/json", "Accept": ACCEPT, **self.base, **(self.session or {}),
             **(headers or {})}
        resp = self.http.post(self.url, json={"jsonrpc": "2.0", "id": rid, "method": method,
                                              "params": params or {}}, headers=h)
        return resp, jsonrpc_message(resp, rid)

    def call(self, era: str, method: str, params: dict | None = None,
             headers: dict | None = None) -> tuple[httpx.Response, dict | None]:
        return (self.modern(method, params, headers=headers) if era == "modern"
                else self.legacy(method, params, headers=headers))

    def close(self) -> None:
        self.http.close()
