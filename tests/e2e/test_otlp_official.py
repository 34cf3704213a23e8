"""The OTLP receipt export decoded with the official OpenTelemetry definitions (the
`opentelemetry-proto` package's generated classes), not with our own hand-written structs
(`crates/core/src/export/proto.rs`, which share the encoder's idea of every field number).

What it proves: every field the filter writes sits at the field number and wire type that
`opentelemetry/proto/{collector/logs,logs,common,resource}/v1/*.proto` give it. A wrong number or
wire type shows up here as an unknown field (checked at every message level), as a value in the
wrong field, or as a missing value, so it can no longer hide behind an encoder and a decoder that
agree with each other.

- (a) the golden request `fixtures/receipts/warden-sample-export.binpb` (written by
  crates/core/tests/receipts_export.rs): parsed with no unknown field anywhere, re-serialized by
  the official classes to the same bytes, and carrying, field by field, the resource
  (`service.name`, `warden.chain_id`), the scope (name, crate version), and per LogRecord the
  receipt JSON as the string body (byte for byte the sample chain), the attributes, a non-zero
  time equal to the receipt's timestamp, severity INFO, and the W3C trace context;
- (b) what a real Envoy (envoy/e2e-receipts.yaml, the singleton receipt writer) sends: the sink
  cluster points at an OTLP logs collector run here with the official
  `logs_service_pb2_grpc.LogsServiceServicer` (service path, request parser and response from the
  generated code), and every request it receives is checked the same way against what the test's
  clients sent (tool, principal, verdict, traceparent); the bodies form a chain that
  pipelock-verify accepts.

Needs `target/release/warden` and the filter (`make build`).
"""
from __future__ import annotations

import hashlib
import json
import time
import tomllib
from datetime import datetime, timezone

import pytest
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from pipelock_verify import verify as pl_verify
from pipelock_verify import verify_chain as pl_verify_chain

from wardenkit import harness
from wardenkit.harness import wait_for, warden_stat as stat
from wardenkit.otlp import LogsCollector

ROOT = harness.ROOT
FIXTURES = ROOT / "fixtures" / "receipts"
GOLDEN_EXPORT = FIXTURES / "warden-sample-export.binpb"  # written by crates/core/tests/receipts_export.rs
SAMPLE = FIXTURES / "warden-sample-chain.jsonl"
KEY = harness.TEST_SIGNING_PUBLIC
TEMPLATE = "envoy/e2e-receipts.yaml"
UPSTREAM = "mcp_upstream"  # the route's cluster in TEMPLATE

SCOPE_NAME = "mcp-warden.receipts"
# Every attribute key a record may carry, and the AnyValue variant each must use: OpenTelemetry's
# MCP conventions (semantic-conventions-genai v0.1.0) where they name the fact, warden.* for ours.
# A fact an exchange does not have is absent, never an empty string.
RECORD_ATTRS = {
    "warden.chain_id": "string_value", "warden.chain_seq": "int_value",
    "mcp.method.name": "string_value", "gen_ai.tool.name": "string_value", "gen_ai.prompt.name": "string_value",
    "mcp.resource.uri": "string_value", "warden.target": "string_value", "gen_ai.operation.name": "string_value",
    "mcp.protocol.version": "string_value", "warden.era": "string_value", "mcp.session.id": "string_value",
    "jsonrpc.request.id": "string_value", "error.type": "string_value", "rpc.response.status_code": "string_value",
    "warden.verdict": "string_value", "warden.rule": "string_value", "warden.layer": "string_value",
    "warden.severity": "string_value", "warden.data_classes_in": "string_value",
    "warden.data_classes_out": "string_value", "warden.principal_fingerprint": "string_value",
    "warden.upstream": "string_value", "warden.duration_us": "int_value", "warden.bytes_in": "int_value",
    "warden.bytes_out": "int_value",
}
# What every record carries.
REQUIRED_ATTRS = {"warden.chain_id", "warden.chain_seq", "warden.verdict", "warden.principal_fingerprint",
                  "warden.duration_us", "warden.bytes_in", "warden.bytes_out"}
# The attribute an MCP name goes under.
NAME_ATTRS = ("gen_ai.tool.name", "gen_ai.prompt.name", "mcp.resource.uri", "warden.target")
# The LogRecord fields the encoder sets (trace context only when the request had a traceparent).
RECORD_FIELDS = {"time_unix_nano", "severity_number", "severity_text", "body", "attributes"}
TRACE_FIELDS = {"flags", "trace_id", "span_id"}


def crate_version() -> str:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


# --- decoding and field-by-field checks (official classes only) ----------------------------------

def unknown_fields_anywhere(msg, path: str = "request") -> list[str]:
    """Every message in the tree that holds fields its official definition does not declare
    (a wrong field number, or a right number with the wrong wire type, lands there)."""
    found = []
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        found.append(f"{path}: {[(f.field_number, f.wire_type) for f in unknown]}")
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.is_repeated:
            for i, item in enumerate(value):
                found += unknown_fields_anywhere(item, f"{path}.{fd.name}[{i}]")
        else:
            found += unknown_fields_anywhere(value, f"{path}.{fd.name}")
    return found


def decode(raw: bytes) -> logs_service_pb2.ExportLogsServiceRequest:
    msg = logs_service_pb2.ExportLogsServiceRequest()
    msg.ParseFromString(raw)
    return msg


def assert_clean(msg) -> None:
    """No unknown field at any level, and nothing lost by discarding unknown fields."""
    assert unknown_fields_anywhere(msg) == []
    stripped = type(msg)()
    stripped.CopyFrom(msg)
    stripped.DiscardUnknownFields()
    assert stripped.SerializeToString() == msg.SerializeToString()


def field_names(msg) -> set[str]:
    return {fd.name for fd, _ in msg.ListFields()}


def attrs(kvs) -> dict:
    """KeyValue list -> {key: (variant, value)}; each key once."""
    out = {}
    for kv in kvs:
        assert field_names(kv) == {"key", "value"}, kv
        assert kv.key not in out, f"attribute {kv.key} twice"
        variant = kv.value.WhichOneof("value")
        out[kv.key] = (variant, getattr(kv.value, variant) if variant else None)
    return out


def rfc3339_nanos(ts: str) -> int:
    """'2026-04-15T12:00:01.00100012Z' -> Unix nanoseconds (exact, no float)."""
    assert ts.endswith("Z"), ts
    whole, _, frac = ts[:-1].partition(".")
    secs = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def fingerprint(principal: str) -> str:
    return "sha256:" + hashlib.sha256(principal.encode()).hexdigest()[:16]


def check_resource_and_scope(rl, chain_id: str | None = None) -> str:
    """One ResourceLogs: resource attributes exactly service.name + warden.chain_id, one ScopeLogs
    named for us with the crate version. Returns the chain id."""
    assert field_names(rl) == {"resource", "scope_logs"}, rl
    assert field_names(rl.resource) == {"attributes"}
    res = attrs(rl.resource.attributes)
    assert set(res) == {"service.name", "warden.chain_id"}, res
    assert res["service.name"] == ("string_value", "mcp-warden")
    variant, chain = res["warden.chain_id"]
    assert variant == "string_value" and chain, res
    if chain_id is not None:
        assert chain == chain_id
    assert len(rl.scope_logs) == 1
    sl = rl.scope_logs[0]
    assert field_names(sl) == {"scope", "log_records"}
    assert field_names(sl.scope) == {"name", "version"}
    assert sl.scope.name == SCOPE_NAME
    assert sl.scope.version == crate_version()
    assert len(sl.log_records) >= 1
    return chain


def check_record(rec, chain_id: str) -> tuple[dict, dict, dict]:
    """What every LogRecord must carry. Returns (receipt, action_record, attributes)."""
    names = field_names(rec)
    assert names - TRACE_FIELDS == RECORD_FIELDS, names
    # trace_id and span_id together or not at all; flags (fixed32) only with them.
    assert names & TRACE_FIELDS in (set(), {"trace_id", "span_id"}, TRACE_FIELDS), names
    assert rec.time_unix_nano > 0
    assert rec.observed_time_unix_nano == 0
    assert rec.severity_number == logs_pb2.SEVERITY_NUMBER_INFO
    assert rec.severity_text == "INFO"
    # The body is the receipt's canonical JSON as a string, signed under the test key.
    assert field_names(rec.body) == {"string_value"} and rec.body.WhichOneof("value") == "string_value"
    body = rec.body.string_value
    receipt = json.loads(body)
    assert set(receipt) == {"version", "action_record", "signature", "signer_key"}, receipt
    assert receipt["version"] == 1 and receipt["signer_key"] == KEY
    assert receipt["signature"].startswith("ed25519:") and len(receipt["signature"]) == len("ed25519:") + 128
    verdict = pl_verify(body, KEY)
    assert verdict.valid, verdict.error
    ar = receipt["action_record"]
    for key in ("action_id", "action_type", "timestamp", "principal", "target", "verdict", "chain_prev_hash"):
        assert ar.get(key), (key, ar)
    # Attributes: every key, each with its AnyValue variant, saying what the receipt says.
    a = attrs(rec.attributes)
    assert REQUIRED_ATTRS <= set(a), a
    assert {k: v[0] for k, v in a.items()} == {k: RECORD_ATTRS.get(k) for k in a}, a
    a = {k: v[1] for k, v in a.items()}
    assert all(v != "" for v in a.values()), a
    assert a["warden.chain_id"] == chain_id
    assert a["warden.chain_seq"] == ar["chain_seq"]
    assert a["warden.verdict"] == ar["verdict"]
    for k in ("warden.duration_us", "warden.bytes_in", "warden.bytes_out"):
        assert a[k] >= 0, (k, a[k])
    if names & TRACE_FIELDS:
        assert len(rec.trace_id) == 16 and any(rec.trace_id), rec.trace_id
        assert len(rec.span_id) == 8 and any(rec.span_id), rec.span_id
        assert rec.flags <= 0xFF  # only the W3C trace flags byte
    else:
        assert rec.trace_id == b"" and rec.span_id == b"" and rec.flags == 0
    return receipt, ar, a


def check_exchange_record(rec, ar: dict, a: dict) -> None:
    """A receipt of an MCP exchange: its record's attributes describe the same exchange."""
    assert rec.time_unix_nano == rfc3339_nanos(ar["timestamp"]), (rec.time_unix_nano, ar["timestamp"])
    assert ar["policy_hash"].startswith("sha256:"), ar
    assert a.get("mcp.method.name", "") == ar.get("method", "")
    # Refused before identity too: the attribute fingerprints the principal the receipt names.
    assert a["warden.principal_fingerprint"] == fingerprint(ar["principal"])
    names = [a[k] for k in NAME_ATTRS if k in a]
    assert len(names) <= 1, a
    if a.get("mcp.method.name"):
        assert ar["target"] == f"{a['warden.upstream']}/{names[0] if names else a['mcp.method.name']}", (ar, a)
    assert a.get("jsonrpc.request.id") == (str(json.loads(ar["request_id"])) if ar.get("request_id") else None)


# --- (a) the golden request ----------------------------------------------------------------------

def test_golden_export_decodes_with_the_official_definitions():
    raw = GOLDEN_EXPORT.read_bytes()
    msg = decode(raw)
    assert_clean(msg)
    # The official classes write back exactly our bytes: nothing moved, nothing extra.
    assert msg.SerializeToString() == raw
    assert field_names(msg) == {"resource_logs"} and len(msg.resource_logs) == 1
    rl = msg.resource_logs[0]
    chain = check_resource_and_scope(rl, chain_id="warden-sample.w0")
    records = rl.scope_logs[0].log_records
    lines = SAMPLE.read_text().splitlines()
    assert len(records) == len(lines) == 6
    for i, (rec, line) in enumerate(zip(records, lines)):
        assert rec.body.string_value == line, f"record {i}: body is not the filed receipt byte for byte"
        receipt, ar, a = check_record(rec, chain)
        assert ar["chain_seq"] == i
        # The golden request carries a traceparent on every exchange (flags 01, sampled).
        assert field_names(rec) >= TRACE_FIELDS and rec.flags == 1
        if i == 0:
            # The chain-open receipt (exported with the first exchange's context in the golden).
            assert ar["method"] == "warden/chain_open" and ar["target"] == f"warden:chain/{chain}"
        else:
            check_exchange_record(rec, ar, a)
            assert a["warden.upstream"] == "demo"
            assert a["warden.bytes_in"] > 0 and a["warden.bytes_out"] > 0 and a["warden.duration_us"] > 0
    assert [json.loads(r.body.string_value)["action_record"]["verdict"] for r in records] == \
        ["allow", "allow", "allow", "allow", "block", "warn"]


# --- (b) what a real Envoy sends -----------------------------------------------------------------

class Collector(LogsCollector):
    """The shared official-classes collector (wardenkit.otlp), started and waited for."""

    def start(self) -> None:
        super().start()
        harness.wait_port(self.port, timeout=30)


def call(gw, rid: str, tool: str, user: str, traceparent: str | None = None, header_name: str | None = None) -> int:
    """One 2026-07-28 tools/call; returns the HTTP status."""
    status, _ = harness.tools_call(gw.url, rid, tool, arguments={"text": "hi", "city": "Oslo"},
                                   meta={"traceparent": traceparent} if traceparent else None,
                                   headers={"x-user": user}, header_name=header_name)
    return status


TRACE_A = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_B = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
# (request id, tool, user, traceparent, header name, HTTP status, verdict)
REQUESTS = [
    ("otlp-echo", "echo", "alice", TRACE_A, None, 200, "allow"),
    ("otlp-dash", "show_dashboard", "bob", TRACE_B, None, 403, "block"),
    ("otlp-wire", "echo", "carol", None, "not-echo", 400, "block"),
]


@pytest.fixture(scope="module")
def live_export(module_gateway, demo_upstream, tmp_path_factory):
    """Envoy's receipt writer exporting to the official collector: the requests above sent one by
    one, then every receipt (chain-open + one per request) received and counted exported."""
    collector = Collector()
    collector.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("WARDEN_SIGNING_KEY", raising=False)  # the writer signs with the TEST key
            # No wait_mcp: its probe requests would leave receipts of their own.
            gw = module_gateway(TEMPLATE, upstream_port=demo_upstream.port,
                                extra_ports={"SINK_PORT": collector.port})
        started = time.time_ns()
        statuses = [call(gw, rid, tool, user, tp, hn) for rid, tool, user, tp, hn, _, _ in REQUESTS]
        assert statuses == [r[5] for r in REQUESTS], statuses
        n = len(REQUESTS) + 1

        def all_exported():
            signed = stat(gw, "receipts_signed_total")
            return signed == n and stat(gw, "receipts_exported_total") == n and len(collector.records()) == n

        wait_for(f"{n} receipts at the official collector", all_exported, gw=gw)
        yield {"requests": collector.requests(), "started": started, "ended": time.time_ns(),
               "dir": tmp_path_factory.mktemp("otlp-official")}
    finally:
        collector.stop()


def test_envoy_export_requests_have_no_field_the_official_definitions_lack(live_export):
    assert live_export["requests"]
    for i, msg in enumerate(live_export["requests"]):
        assert unknown_fields_anywhere(msg, f"request {i}") == []
        assert_clean(msg)
        assert field_names(msg) == {"resource_logs"}
        # Re-parsing what the official classes write gives the same message (no loss either way).
        assert decode(msg.SerializeToString()) == msg


def test_envoy_export_carries_each_receipt_field_by_field(live_export):
    receipts, chains = [], set()
    by_id = {}
    for msg in live_export["requests"]:
        for rl in msg.resource_logs:
            chain = check_resource_and_scope(rl)
            chains.add(chain)
            for rec in rl.scope_logs[0].log_records:
                receipt, ar, a = check_record(rec, chain)
                assert live_export["started"] - 60 * 10**9 < rec.time_unix_nano <= live_export["ended"]
                receipts.append(rec.body.string_value)
                if ar.get("method") == "warden/chain_open":
                    assert ar["chain_seq"] == 0 and ar["target"] == f"warden:chain/{chain}"
                    assert a["mcp.method.name"] == "warden/chain_open" and a["warden.principal_fingerprint"] == \
                        fingerprint("mcp-warden")
                    assert field_names(rec).isdisjoint(TRACE_FIELDS)
                    assert rec.time_unix_nano == rfc3339_nanos(ar["timestamp"])
                    continue
                check_exchange_record(rec, ar, a)
                rid = json.loads(ar["request_id"])
                by_id[rid] = (rec, ar, a)
    assert len(chains) == 1, chains  # one writer, one chain
    assert sorted(by_id) == sorted(r[0] for r in REQUESTS)
    for rid, tool, user, tp, header_name, _, verdict in REQUESTS:
        rec, ar, a = by_id[rid]
        assert ar["verdict"] == a["warden.verdict"] == verdict, (rid, ar)
        assert a["warden.bytes_in"] > 0, (rid, a)
        if header_name is None:
            assert (a["mcp.method.name"], a["gen_ai.tool.name"], a["warden.upstream"]) == ("tools/call", tool, UPSTREAM), a
            assert a["gen_ai.operation.name"] == "execute_tool"
            assert (a["mcp.protocol.version"], a["warden.era"]) == (harness.MODERN_VERSION, "modern"), a
            assert ar["principal"] == user and ar["target"] == f"{UPSTREAM}/{tool}"
        else:
            # Refused on the wire, before routing and identity.
            assert ar["principal"] == "anonymous" and ar["pattern"] == "wire:header_mismatch", ar
        assert a["jsonrpc.request.id"] == rid
        # The JSON-RPC error the client got: none for the echo, the policy's denial (-31403),
        # the header mismatch (-32020).
        code = {"allow": None, "block": "-31403" if header_name is None else "-32020"}[verdict]
        assert (a.get("error.type"), a.get("rpc.response.status_code")) == (code, code), (rid, a)
        assert "mcp.session.id" not in a  # 2026-07-28 has no sessions
        if tp is None:
            assert field_names(rec).isdisjoint(TRACE_FIELDS), rec
        else:
            _, trace, span, flags = tp.split("-")
            assert (rec.trace_id.hex(), rec.span_id.hex(), rec.flags) == (trace, span, int(flags, 16)), rid
            # flags 00 is the protobuf default, so it is (rightly) absent from the wire.
            assert ("flags" in field_names(rec)) == (int(flags, 16) != 0)
    # In the order received, the bodies are one chain that pipelock-verify accepts.
    chain_file = live_export["dir"] / "received.jsonl"
    chain_file.write_text("".join(r + "\n" for r in receipts))
    result = pl_verify_chain(chain_file, KEY)
    assert result.valid, result
    assert [json.loads(r)["action_record"]["chain_seq"] for r in receipts] == list(range(len(REQUESTS) + 1))
