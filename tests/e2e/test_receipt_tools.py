"""Receipts we emit, checked by tools nobody on this team wrote (pipelock-verify) and by our own
`warden verify`, plus `warden keygen` and the gRPC receipt sink (`warden sink`).

Needs `target/release/warden` (`make build`); WARDEN_BIN overrides the path.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from wardenkit import harness

from pipelock_verify import verify_chain as pl_verify_chain  # noqa: E402

ROOT = harness.ROOT
WARDEN = harness.WARDEN
PIPELOCK_VERIFY = harness.VENV_BIN / "pipelock-verify"
FIXTURES = ROOT / "fixtures" / "receipts"
SAMPLE = FIXTURES / "warden-sample-chain.jsonl"
TEST_PUB = harness.TEST_SIGNING_PUBLIC
TEST_SEED = harness.TEST_SIGNING_SEED


def run(*cmd, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, env=full_env)


def test_pipelock_verify_accepts_the_chain_we_emit():
    r = run(PIPELOCK_VERIFY, SAMPLE, "--key", TEST_PUB)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CHAIN VALID" in r.stdout and "Receipts:  6" in r.stdout


def test_pipelock_verify_rejects_every_one_byte_change(tmp_path):
    data = SAMPLE.read_bytes()
    target = tmp_path / "mutated.jsonl"
    accepted = []
    for i in range(len(data)):
        if data[i] == 0x0A:
            # The newline framing, not receipt bytes: "\n" ^ 1 is "\v", which Python's
            # splitlines() still reads as a line break, leaving every receipt intact.
            continue
        mutated = bytearray(data)
        mutated[i] ^= 0x01
        target.write_bytes(bytes(mutated))
        try:
            ok = pl_verify_chain(target, TEST_PUB).valid
        except (UnicodeDecodeError, ValueError):
            ok = False  # the verifier could not even read it
        if ok:
            accepted.append(i)
    assert not accepted, f"pipelock-verify accepted one-byte changes at offsets {accepted[:20]}"
    # The CLI (not only the library) fails too, on a change in the last receipt's record.
    lines = data.decode().splitlines()
    lines[-1] = lines[-1].replace('"verdict":"warn"', '"verdict":"allow"')
    target.write_text("\n".join(lines) + "\n")
    r = run(PIPELOCK_VERIFY, target, "--key", TEST_PUB)
    assert r.returncode == 1, r.stdout + r.stderr


def test_warden_verify_agrees_on_the_conformance_vectors(warden):
    conf = FIXTURES / "pipelock-conformance"
    for name, want in [("valid-single.json", 0), ("valid-chain.jsonl", 0), ("invalid-signature.json", 1),
                       ("broken-chain.jsonl", 1)]:
        r = run(warden, "verify", conf / name, "--key", TEST_PUB)
        assert r.returncode == want, f"{name}: {r.stdout}{r.stderr}"
    r = run(warden, "verify", conf / "broken-chain.jsonl", "--key", TEST_PUB)
    assert "chain_seq 3" in r.stdout and "chain_prev_hash" in r.stdout, r.stdout


def test_warden_verify_names_the_first_bad_receipt(warden, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    ok = run(warden, "verify", SAMPLE, "--key", TEST_PUB)
    assert ok.returncode == 0 and "chain id warden-sample.w0" in ok.stdout, ok.stdout + ok.stderr
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines[:2] + [lines[2].replace("get_weather", "get_weathes")] + lines[3:]) + "\n")
    r = run(warden, "verify", edited, "--key", TEST_PUB)
    assert r.returncode == 1
    assert "line 3 (chain_seq 2" in r.stdout and "signature does not verify" in r.stdout, r.stdout
    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    r = run(warden, "verify", dropped, "--key", TEST_PUB)
    assert r.returncode == 1 and "chain_seq gap: expected 3" in r.stdout, r.stdout
    wrong_key = run(warden, "verify", SAMPLE, "--key", "11" * 32)
    assert wrong_key.returncode == 1 and "not the expected key" in wrong_key.stdout, wrong_key.stdout
    # Nothing signs where a chain ends: a file cut short verifies as a prefix, and --root pins the end.
    assert "its end is not signed: a valid prefix" in ok.stdout, ok.stdout
    root = ok.stdout.split("root hash ")[1].split(",")[0].split(";")[0].strip()
    pinned = run(warden, "verify", SAMPLE, "--key", TEST_PUB, "--root", root)
    assert pinned.returncode == 0 and "ends at the pinned root" in pinned.stdout, pinned.stdout
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n")
    prefix = run(warden, "verify", cut, "--key", TEST_PUB)
    assert prefix.returncode == 0 and "valid prefix" in prefix.stdout, prefix.stdout
    r = run(warden, "verify", cut, "--key", TEST_PUB, "--root", root)
    assert r.returncode == 1 and "truncated or extended" in r.stdout, r.stdout


def test_keygen_writes_a_private_file_only_we_can_read(warden, tmp_path):
    key = tmp_path / "receipt.key"
    r = run(warden, "keygen", "--out", key)
    assert r.returncode == 0, r.stderr
    public_hex = r.stdout.strip()
    assert len(public_hex) == 64 and int(public_hex, 16) >= 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("pipelock-ed25519-private-v1\n")
    assert (tmp_path / "receipt.key.pub").read_text().startswith("pipelock-ed25519-public-v1\n")
    assert run(warden, "keygen", "--public", "--key", key).stdout.strip() == public_hex
    env_line = run(warden, "keygen", "--env", "--key", key).stdout.strip()
    assert env_line.startswith("WARDEN_SIGNING_KEY=") and len(env_line.split("=", 1)[1]) == 64
    from_env = run(warden, "keygen", "--public", env={"WARDEN_SIGNING_KEY": env_line.split("=", 1)[1]})
    assert from_env.stdout.strip() == public_hex
    again = run(warden, "keygen", "--out", key)
    assert again.returncode == 1 and "exists" in again.stderr
    # The published conformance seed maps to the published public key.
    assert run(warden, "keygen", "--public", env={"WARDEN_SIGNING_KEY": TEST_SEED}).stdout.strip() == TEST_PUB


# --- warden sink: OTLP logs Export over gRPC → one JSONL file per chain ------------------------

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
GOLDEN_EXPORT = FIXTURES / "warden-sample-export.binpb"  # written by crates/core/tests/receipts_export.rs


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _kv(key: str, value: str) -> bytes:
    return _field(1, key.encode()) + _field(2, _field(1, value.encode()))


def otlp_request(groups: list[tuple[str | None, list[tuple[str, str | None]]]]) -> bytes:
    """Independent (Python) OTLP encoding: [(resource chain id, [(body, record chain id)])]."""
    out = b""
    for resource_chain, records in groups:
        resource = _field(1, _kv("warden.chain_id", resource_chain)) if resource_chain else b""
        scope = _field(1, _field(1, b"test"))
        for body, record_chain in records:
            rec = _field(5, _field(1, body.encode()))
            if record_chain:
                rec += _field(6, _kv("warden.chain_id", record_chain))
            scope += _field(2, rec)
        out += _field(1, _field(1, resource) + _field(2, scope))
    return out


def rejected_count(response: bytes) -> int:
    """ExportLogsServiceResponse.partial_success.rejected_log_records (0 when absent)."""
    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = _read_varint(buf, i)
            num, wire = key >> 3, key & 7
            if wire == 0:
                val, i = _read_varint(buf, i)
            elif wire == 2:
                length, i = _read_varint(buf, i)
                val, i = buf[i:i + length], i + length
            else:
                raise ValueError(f"unexpected wire type {wire}")
            yield num, val
    for num, val in fields(response):
        if num == 1:
            return dict(fields(val)).get(1, 0)
    return 0


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


class Sink:
    def __init__(self, warden: Path, out_dir: Path, log_dir: Path, key: str | None = TEST_PUB):
        self.port = harness.free_port()
        cmd = [str(warden), "sink", "--listen", f"127.0.0.1:{self.port}", "--out", str(out_dir)]
        if key:
            cmd += ["--key", key]
        self.proc = harness.Proc(f"sink-{self.port}", cmd, log_dir)
        harness.wait_port(self.port, proc=self.proc)
        import grpc
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.export = self.channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)

    def send(self, request: bytes) -> int:
        return rejected_count(self.export(request, timeout=10))

    def stop(self):
        self.channel.close()
        self.proc.stop()


@pytest.fixture
def sink_factory(warden, tmp_path):
    started = []

    def start(out_dir: Path, key: str | None = TEST_PUB) -> Sink:
        s = Sink(warden, out_dir, tmp_path / "logs", key)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def conformance_bodies() -> list[str]:
    """The raw `detail` receipts of valid-chain.jsonl (Go's bytes, not re-serialized)."""
    bodies = []
    for line in (FIXTURES / "pipelock-conformance" / "valid-chain.jsonl").read_text().splitlines():
        bodies.append(line[line.index('"detail":') + len('"detail":'):line.rindex(',"prev_hash"')])
    return bodies


def test_sink_files_what_our_exporter_sends_byte_for_byte(sink_factory, tmp_path, warden):
    out = tmp_path / "receipts"
    sink = sink_factory(out)
    assert sink.send(GOLDEN_EXPORT.read_bytes()) == 0
    filed = out / "warden-sample.w0.jsonl"
    assert filed.read_bytes() == SAMPLE.read_bytes()
    r = run(PIPELOCK_VERIFY, filed, "--key", TEST_PUB)
    assert r.returncode == 0 and "Receipts:  6" in r.stdout, r.stdout + r.stderr
    assert run(warden, "verify", filed, "--key", TEST_PUB).returncode == 0


def test_sink_splits_chains_skips_retries_and_rejects_bad_records(sink_factory, tmp_path):
    out = tmp_path / "receipts"
    sink = sink_factory(out)
    ours = SAMPLE.read_text().splitlines()
    theirs = conformance_bodies()
    first = otlp_request([("a.w0", [(b, None) for b in ours[:3]]),
                          (None, [(b, "pipelock-conf") for b in theirs[:2]])])
    assert sink.send(first) == 0
    assert sink.send(first) == 0  # a retried batch: duplicates are skipped, not re-filed
    tampered = ours[4].replace('"verdict":"block"', '"verdict":"allow"')
    assert tampered != ours[4]
    second = otlp_request([
        ("a.w0", [(b, None) for b in ours[3:]]),
        ("pipelock-conf", [(b, None) for b in theirs[2:]]),
        ("../escape", [(ours[0], None)]),           # unsafe chain id
        (None, [(ours[0], None)]),                   # no chain id at all
        ("junk", [("not a receipt", None)]),         # not a receipt
        ("forged", [(tampered, None)]),              # signature does not verify under --key
    ])
    assert sink.send(second) == 4
    assert (out / "a.w0.jsonl").read_text() == SAMPLE.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["a.w0.jsonl", "pipelock-conf.jsonl"]
    r = run(PIPELOCK_VERIFY, out / "pipelock-conf.jsonl", "--key", TEST_PUB)
    assert r.returncode == 0 and "Receipts:  5" in r.stdout, r.stdout + r.stderr


def test_a_restarted_sink_continues_each_chain_without_duplicates(sink_factory, tmp_path):
    out = tmp_path / "receipts"
    lines = SAMPLE.read_text().splitlines()
    first = sink_factory(out)
    assert first.send(otlp_request([("c.w0", [(b, None) for b in lines[:4]])])) == 0
    first.stop()
    second = sink_factory(out)
    # The writer retries its last batch after the restart, then goes on.
    assert second.send(otlp_request([("c.w0", [(b, None) for b in lines[2:]])])) == 0
    assert (out / "c.w0.jsonl").read_text() == SAMPLE.read_text()
    r = run(PIPELOCK_VERIFY, out / "c.w0.jsonl", "--key", TEST_PUB)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_successor_chain_exposes_a_truncated_predecessor(warden, tmp_path):
    """fixtures/receipts/successor/: a writer's chain and its successor's, whose chain-open receipt
    names the predecessor's tail (written by crates/core/tests/receipts_writer.rs)."""
    first = FIXTURES / "successor" / "first.jsonl"
    second = FIXTURES / "successor" / "second.jsonl"
    for f in (first, second):
        r = run(PIPELOCK_VERIFY, f, "--key", TEST_PUB)
        assert r.returncode == 0, r.stdout + r.stderr
    ok = run(warden, "verify", second, "--prev", first, "--key", TEST_PUB)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "continues node-a.main.100 after chain_seq 3" in ok.stdout, ok.stdout
    # Cutting the predecessor's last receipt still leaves a valid chain on its own...
    truncated = tmp_path / "first.jsonl"
    truncated.write_text("".join(first.read_text().splitlines(keepends=True)[:-1]))
    assert run(PIPELOCK_VERIFY, truncated, "--key", TEST_PUB).returncode == 0
    # ...but not next to its successor.
    bad = run(warden, "verify", second, "--prev", truncated, "--key", TEST_PUB)
    assert bad.returncode == 1 and "truncated" in bad.stdout, bad.stdout


def test_a_sink_restarted_after_a_torn_write_cuts_the_partial_line(sink_factory, tmp_path):
    out = tmp_path / "receipts"
    out.mkdir()
    lines = SAMPLE.read_text().splitlines()
    # Three receipts filed, the fourth cut short by a crash (never acknowledged to the writer).
    (out / "t.w0.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:100])
    sink = sink_factory(out)
    assert sink.send(otlp_request([("t.w0", [(b, None) for b in lines[3:]])])) == 0
    assert (out / "t.w0.jsonl").read_text() == SAMPLE.read_text()
    assert "unfinished last line" in sink.proc.tail()


def _foreign_chain() -> list[str]:
    """Receipts with newer/optional Pipelock fields our emitter never writes (nested structs,
    maps with unsorted keys, taint sources, an `ext` bag, HTML-unsafe text), signed and chained
    with pipelock-verify's own canonicalizer: a differential check of our verifier's re-encoding."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pipelock_verify._canonical import canonicalize_action_record, canonicalize_receipt
    from pipelock_verify._verify import _parse_receipt

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(TEST_SEED))
    records = [
        {"chain_seq": 0, "action_type": "read", "parent_action_id": "p-0", "intent": "look <up> & read",
         "data_classes_in": ["pii"], "session_taint_level": "low", "session_contaminated": True,
         "recent_taint_sources": [{"level": 2, "kind": "url", "url": "https://x.example/?a=1&b=2",
                                   "timestamp": "2026-04-15T12:00:00.5Z", "match_reason": "m"}],
         "redaction": {"total_redactions": 3, "by_class": {"zeta": 1, "alpha": 2}, "profile": "strict"}},
        {"chain_seq": 1, "action_type": "write", "shield": {"partial": True, "total_rewrites": 4, "pipeline": "p"},
         "contract_policy_sources": ["a", "b"], "contract_generation": 7, "severity": "high",
         "delegation_chain": None, "precedent_refs": ["r1"], "task_override_applied": False},
        {"chain_seq": 2, "action_type": "delegate", "redaction": {}, "venue": "v\u2028x", "run_nonce": ""},
    ]
    receipts, prev = [], "genesis"
    for i, extra in enumerate(records):
        ar = {"version": 1, "action_id": f"foreign-{i}", "timestamp": f"2026-04-15T12:00:0{i}.12345Z",
              "principal": "org:x", "actor": "agent:y", "delegation_chain": ["d"], "target": "t<1>",
              "side_effect_class": "none", "reversibility": "unknown", "policy_hash": "sha256:00",
              "verdict": "allow", "transport": "mcp_http", "chain_prev_hash": prev}
        ar.update(extra)
        sig = key.sign(hashlib.sha256(canonicalize_action_record(ar)).digest())
        receipt = {"version": 1, "action_record": ar, "signature": "ed25519:" + sig.hex(), "signer_key": TEST_PUB}
        if i == 1:
            receipt["ext"] = {"z": [1, 2], "a": "<b>"}
        # Key order scrambled on purpose: verifiers re-encode in Go declaration order (except
        # inside `ext`, whose raw bytes count: so hash exactly the line as written).
        line = json.dumps(receipt, sort_keys=True)
        receipts.append(line)
        prev = hashlib.sha256(canonicalize_receipt(_parse_receipt(line))).hexdigest()
    return receipts


def test_warden_verify_agrees_with_pipelock_on_receipts_with_fields_we_never_emit(warden, tmp_path):
    chain = tmp_path / "foreign.jsonl"
    chain.write_text("".join(line + "\n" for line in _foreign_chain()))
    theirs = run(PIPELOCK_VERIFY, chain, "--key", TEST_PUB)
    ours = run(warden, "verify", chain, "--key", TEST_PUB)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    assert ours.returncode == 0, ours.stdout + ours.stderr
    for old, new in [('"alpha": 2', '"alpha": 3'), ('"partial": true', '"partial": false'),
                     ('"z": [1, 2]', '"z": [2, 1]'), ('"level": 2', '"level": 1')]:
        changed = tmp_path / "changed.jsonl"
        text = chain.read_text()
        assert old in text, old
        changed.write_text(text.replace(old, new, 1))
        assert run(PIPELOCK_VERIFY, changed, "--key", TEST_PUB).returncode == 1, old
        r = run(warden, "verify", changed, "--key", TEST_PUB)
        assert r.returncode == 1, f"{old}: {r.stdout}"


def test_the_sink_keeps_chains_right_past_its_open_file_limit(sink_factory, tmp_path):
    out = tmp_path / "receipts"
    sink = sink_factory(out)
    lines = SAMPLE.read_text().splitlines()
    # 300 chains (> the 256 files kept open), then each continues after the handles were recycled.
    assert sink.send(otlp_request([(f"many-{i}", [(lines[0], None)]) for i in range(300)])) == 0
    assert sink.send(otlp_request([(f"many-{i}", [(b, None) for b in lines]) for i in (0, 1, 299)])) == 0
    for i in (0, 1, 299):
        assert (out / f"many-{i}.jsonl").read_text() == SAMPLE.read_text(), i
    assert (out / "many-150.jsonl").read_text() == lines[0] + "\n"
