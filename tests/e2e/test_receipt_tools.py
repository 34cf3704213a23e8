"""Receipts we emit, checked by tools nobody on this team wrote (pipelock-verify) and by our own
`warden verify`, plus `warden keygen` and the gRPC receipt sink (`warden sink`).

Needs `target/release/warden` (`make build`); WARDEN_BIN overrides the path.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from pipelock_verify import verify_chain as pl_verify_chain  # noqa: E402

ROOT = harness.ROOT
WARDEN = Path(os.environ.get("WARDEN_BIN", ROOT / "target" / "release" / "warden"))
PIPELOCK_VERIFY = harness.VENV_BIN / "pipelock-verify"
FIXTURES = ROOT / "fixtures" / "receipts"
SAMPLE = FIXTURES / "warden-sample-chain.jsonl"
TEST_PUB = "4655a7e605c12ebb00a46037881c33c5bca5eb74b45a02e8e7261a7ff5a21678"
TEST_SEED = "c8ee65622000420b20ff7ec4e790006b7883ddfd3823ff9ccc2fc050c389bd48"


@pytest.fixture(scope="module")
def warden() -> Path:
    if not WARDEN.is_file():
        pytest.fail(f"{WARDEN} is missing: build it with `make build` (cargo build --release --bin warden)",
                    pytrace=False)
    return WARDEN


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
