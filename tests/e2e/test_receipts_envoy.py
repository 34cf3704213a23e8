"""Receipts through real Envoy (envoy/e2e-receipts.yaml, `--concurrency 2`): both workers enqueue
one exchange per decision, the singleton writer VM signs and chains them and exports them over
gRPC to a real `warden sink` (started, stopped and restarted by PID on a free port).

- mixed verdicts (allow, deny, hide, rate limit, kill switch, wire validation failure): exactly
  one exchange receipt per request plus the chain-open, one chain, accepted by `warden verify`
  and `pipelock-verify --key`; each receipt's target / method / verdict / pattern / request_id
  matches what the client saw;
- the sink down for a while: everything arrives once it is back, once each, chain valid, and
  `mcp_warden_receipt_export_failures_total` > 0;
- a tiny writer buffer with the sink down: exchanges are dropped, and the chain says how many in
  signed drop notices whose counts add up to `mcp_warden_receipts_dropped_total`.

Needs `target/release/warden` (`make build`).
"""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wardenkit import harness
from wardenkit.harness import wait_for, warden_stat as stat

TEMPLATE = "envoy/e2e-receipts.yaml"
WARDEN = harness.WARDEN
PIPELOCK_VERIFY = harness.VENV_BIN / "pipelock-verify"
KEY = harness.TEST_SIGNING_PUBLIC
WRITER_CONFIG = '{"sink_cluster": "receipt_sink", "max_age_ms": 200}'
UPSTREAM = "mcp_upstream"  # the route's cluster: the receipts' target is <upstream>/<name>


@pytest.fixture(autouse=True)
def _published_test_key(monkeypatch):
    # The writer signs with the published TEST key (harness default); verify against it.
    monkeypatch.delenv("WARDEN_SIGNING_KEY", raising=False)


class Sink:
    """`warden sink` on a fixed-for-the-test port, restartable on the same port and directory."""

    def __init__(self, warden: Path, port: int, out: Path, log_dir: Path):
        self.warden, self.port, self.out, self.log_dir = warden, port, out, log_dir
        self.proc: harness.Proc | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = harness.Proc(f"sink-{self.starts}", [str(self.warden), "sink", "--listen",
                                 f"127.0.0.1:{self.port}", "--out", str(self.out), "--key", KEY], self.log_dir)
        harness.LIVE_PROCS.append(self.proc)
        harness.wait_port(self.port, timeout=30, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc in harness.LIVE_PROCS:
                harness.LIVE_PROCS.remove(self.proc)
            self.proc.stop()
            self.proc = None

    def chains(self) -> list[Path]:
        return sorted(p for p in self.out.glob("*.jsonl") if not p.name.endswith(".digests.jsonl"))

    def digests(self) -> list[str]:
        files = sorted(self.out.glob("*.digests.jsonl"))
        return [line for f in files for line in f.read_text().splitlines() if line.strip()]

    def receipts(self) -> list[dict]:
        files = self.chains()
        assert len(files) <= 1, f"more than one chain from one Envoy: {files}"
        if not files:
            return []
        return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


@pytest.fixture
def sink(warden, tmp_path):
    s = Sink(warden, harness.free_port(), tmp_path / "receipts", tmp_path / "sink-logs")
    try:
        yield s
    finally:
        s.stop()


def start_gateway(gateway, demo_upstream, sink: Sink, writer_config: str = WRITER_CONFIG):
    replace = {} if writer_config == WRITER_CONFIG else {WRITER_CONFIG: writer_config}
    # No wait_mcp: its probe requests would leave receipts of their own.
    return gateway(TEMPLATE, upstream_port=demo_upstream.port, extra_ports={"SINK_PORT": sink.port},
                   replace=replace, concurrency=2)


# --- requests and what each should look like in its receipt --------------------------------------

def call(gw, rid: str, tool: str, arguments: dict, user: str = "alice", header_name: str | None = None) -> dict:
    """One 2026-07-28 tools/call on a fresh connection (so the two workers both take traffic);
    returns what the client saw."""
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments, "_meta": harness.modern_meta()}}).encode()
    headers = harness.modern_headers("tools/call", header_name or tool, **{"x-user": user})
    req = urllib.request.Request(gw.url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    return {"id": rid, "status": status, "body": payload, "user": user}


def mixed_requests(prefix: str) -> list[tuple[str, str, dict, dict]]:
    """(request id, tool, arguments, extra call kwargs), one list per batch: 5 echoes (3 allowed,
    then rate limited), denied, hidden, killed, and header/body mismatches."""
    out = []
    for i in range(5):
        out.append((f"{prefix}-echo-{i}", "echo", {"text": f"hi {i}"}, {}))
    for i in range(2):
        out.append((f"{prefix}-dash-{i}", "show_dashboard", {"city": "Oslo"}, {}))
        out.append((f"{prefix}-trip-{i}", "book_trip", {"destination": "Rome"}, {}))
        out.append((f"{prefix}-kill-{i}", "slow_sum", {"a": 1, "b": 2}, {}))
        out.append((f"{prefix}-wire-{i}", "echo", {"text": "x"}, {"header_name": "not-echo"}))
    return out


def send_all(gw, requests, user: str) -> list[dict]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda r: call(gw, r[0], r[1], r[2], user=user, **r[3]), requests))


def expected_receipt(seen: dict, tool: str) -> dict:
    """What the receipt of a request must say, given what its client saw."""
    status, body = seen["status"], seen["body"] or {}
    err = body.get("error") or {}
    if status == 400:
        assert err.get("code") == -32020, seen  # header/body mismatch
        return {"verdict": "block", "pattern": "wire:header_mismatch", "method": "", "target": "upstream"}
    target = f"{UPSTREAM}/{tool}"
    if status == 200 and "result" in body:
        # Allowed, and flagged: these clients call tools without listing them first, so the
        # gateway holds no baseline for them (tool_integrity.unknown_tools: allow).
        return {"verdict": "allow", "pattern": "unknown_tool", "method": "tools/call", "target": target}
    if status == 200 and err.get("code") == -32602:
        return {"verdict": "block", "pattern": "hide-trips:hide", "method": "tools/call", "target": target}
    if status == 403:
        return {"verdict": "block", "pattern": "no-dashboard", "method": "tools/call", "target": target}
    if status == 429:
        return {"verdict": "block", "pattern": "echo-limit:rate_limit", "method": "tools/call", "target": target}
    if status == 503:
        return {"verdict": "block", "pattern": "kill_switch:tool", "method": "tools/call", "target": target}
    raise AssertionError(f"unexpected answer {seen}")


def check_verdict_mix(requests, seen) -> None:
    by_status: dict[int, int] = {}
    for s in seen:
        by_status[s["status"]] = by_status.get(s["status"], 0) + 1
    # 3 echoes allowed + 2 hidden book_trip answered 200, 2 rate limited, 2 denied, 2 killed, 2 wire.
    assert by_status == {200: 5, 429: 2, 403: 2, 503: 2, 400: 2}, by_status
    assert sum(1 for s in seen if s["status"] == 200 and "result" in (s["body"] or {})) == 3


def request_id_of(receipt: dict) -> str:
    return receipt["action_record"].get("request_id", "")


def match_receipts(exchanges: list[dict], requests, seen) -> None:
    """Every request has exactly one receipt, saying what its client saw."""
    by_id: dict[str, dict] = {}
    for r in exchanges:
        rid = json.loads(request_id_of(r)) if request_id_of(r).startswith('"') else request_id_of(r)
        assert rid not in by_id, f"two receipts for request {rid}"
        by_id[rid] = r["action_record"]
    assert set(by_id) == {r[0] for r in requests}, (sorted(by_id), sorted(r[0] for r in requests))
    for (rid, tool, _, _), s in zip(requests, seen):
        want = expected_receipt(s, tool)
        got = by_id[rid]
        # Empty fields are omitted from the canonical JSON (Go omitempty).
        assert {k: got.get(k, "") for k in want} == want, (rid, s, got)
        # A request refused on the wire is refused before identity is looked at.
        assert got["principal"] == ("anonymous" if want["pattern"].startswith("wire:") else s["user"]), got


def verify_both(path: Path, count: int) -> None:
    ours = subprocess.run([str(WARDEN), "verify", str(path), "--key", KEY], capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    theirs = subprocess.run([str(PIPELOCK_VERIFY), "--key", KEY, str(path)], capture_output=True, text=True,
                            timeout=60)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    assert "CHAIN VALID" in theirs.stdout and f"Receipts:  {count}" in theirs.stdout, theirs.stdout


def assert_gap_free(receipts: list[dict]) -> None:
    seqs = [r["action_record"]["chain_seq"] for r in receipts]
    assert seqs == list(range(len(seqs))), seqs
    assert receipts[0]["action_record"]["method"] == "warden/chain_open"


def exchanges_of(receipts: list[dict]) -> list[dict]:
    return [r for r in receipts if not r["action_record"].get("method", "").startswith("warden/")]


def all_exported(gw, sink: Sink, lines: int):
    """True once the sink holds `lines` receipts and the writer counts every signed one exported."""
    signed = stat(gw, "receipts_signed_total")
    return signed == lines and stat(gw, "receipts_exported_total") == signed and len(sink.receipts()) == lines


# --- tests ---------------------------------------------------------------------------------------

def test_every_decision_leaves_exactly_one_receipt_in_one_valid_chain(gateway, demo_upstream, sink):
    sink.start()
    gw = start_gateway(gateway, demo_upstream, sink)
    requests = mixed_requests("a")
    seen = send_all(gw, requests, user="alice")
    check_verdict_mix(requests, seen)
    n = len(requests)
    wait_for(f"{n} receipts + chain-open at the sink", lambda: all_exported(gw, sink, n + 1), gw=gw)
    receipts = sink.receipts()
    assert_gap_free(receipts)
    assert [r["action_record"].get("method", "") for r in receipts].count("warden/chain_open") == 1
    exchanges = exchanges_of(receipts)
    assert len(exchanges) == n and len(receipts) == n + 1, "chain-open + one per request, nothing else"
    match_receipts(exchanges, requests, seen)
    # The two workers both served requests, and one chain holds them all (the singleton writer).
    assert len(sink.chains()) == 1
    workers = [v for k, v in gw.stats(r"^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$").items()]
    assert len(workers) == 2 and all(v > 0 for v in workers), f"connections per worker: {workers}"
    verify_both(sink.chains()[0], n + 1)
    assert stat(gw, "receipts_dropped_total") == 0 and stat(gw, "receipts_unqueued_total") == 0


def test_receipts_made_while_the_sink_is_down_arrive_once_it_is_back(gateway, demo_upstream, sink):
    sink.start()
    gw = start_gateway(gateway, demo_upstream, sink)
    first = mixed_requests("before")
    seen_first = send_all(gw, first, user="alice")
    wait_for("first batch at the sink", lambda: all_exported(gw, sink, len(first) + 1), gw=gw)

    sink.stop()
    during = mixed_requests("during")
    seen_during = send_all(gw, during, user="bob")
    check_verdict_mix(during, seen_during)
    wait_for("a failed export", lambda: stat(gw, "receipt_export_failures_total") > 0, gw=gw)
    total = 1 + len(first) + len(during)
    # Signed and held, not lost (the writer signs from its queue on its own ticks: wait for it).
    wait_for(f"{total} receipts signed while the sink is down", lambda: stat(gw, "receipts_signed_total") == total, gw=gw)
    assert len(sink.receipts()) == 1 + len(first)

    sink.start()  # same port, same directory
    wait_for("every receipt after the sink came back", lambda: all_exported(gw, sink, total), timeout=90, gw=gw)
    receipts = sink.receipts()
    assert_gap_free(receipts)
    assert len(receipts) == total
    match_receipts(exchanges_of(receipts), first + during, seen_first + seen_during)
    verify_both(sink.chains()[0], total)
    assert stat(gw, "receipt_export_failures_total") > 0
    assert stat(gw, "receipts_dropped_total") == 0


def test_a_full_writer_buffer_drops_and_the_chain_says_how_many(gateway, demo_upstream, sink):
    # Room for a handful of receipts; the sink is down from the start, so the buffer fills.
    tiny = '{"sink_cluster": "receipt_sink", "max_age_ms": 200, "max_buffer_bytes": 6000}'
    gw = start_gateway(gateway, demo_upstream, sink, writer_config=tiny)
    requests = [(f"drop-{i}", "echo", {"text": f"{i}"}, {}) for i in range(40)]
    seen = send_all(gw, requests, user="carol")
    assert all(s["status"] in (200, 429) for s in seen), seen
    wait_for("all 40 exchanges signed or dropped",
             lambda: stat(gw, "receipts_signed_total") - 1 + stat(gw, "receipts_dropped_total") >= 40, gw=gw)
    dropped = stat(gw, "receipts_dropped_total")
    assert dropped > 0
    wait_for("a failed export", lambda: stat(gw, "receipt_export_failures_total") > 0, gw=gw)

    sink.start()

    def settled():
        receipts = sink.receipts()
        notices = [r for r in receipts if r["action_record"].get("method", "") == "warden/dropped"]
        reported = sum(int(r["action_record"]["intent"].split()[0].split("=")[1]) for r in notices)
        return reported == stat(gw, "receipts_dropped_total") and all_exported(gw, sink, len(receipts)) and receipts

    receipts = wait_for("the drop notice at the sink", settled, timeout=90, gw=gw)
    assert_gap_free(receipts)
    notices = [r["action_record"] for r in receipts if r["action_record"].get("method", "") == "warden/dropped"]
    assert notices, receipts
    dropped = stat(gw, "receipts_dropped_total")
    assert sum(int(n["intent"].split()[0].removeprefix("dropped=")) for n in notices) == dropped
    for n in notices:
        assert n["verdict"] == "warn" and n["target"].startswith("warden:chain/"), n
        since = int(n["intent"].split()[1].removeprefix("since_seq="))
        assert since == n["chain_seq"] - 1, n
    # Every request is accounted for: receipted or counted in a signed notice.
    exchanges = exchanges_of(receipts)
    assert len(exchanges) + dropped == len(requests)
    assert len({request_id_of(r) for r in exchanges}) == len(exchanges)
    verify_both(sink.chains()[0], len(receipts))


def test_behind_the_writer_signs_one_checkpoint_per_batch_and_covers_every_exchange(gateway, demo_upstream, sink):
    """`checkpoint_lag_ms: 0` puts every exchange into a checkpoint batch (8 at most, or 300 ms):
    the chain holds the chain-open and one signed checkpoint per batch and passes both verifiers;
    the exchanges are digest entries in `<chain>.digests.jsonl`, which `warden verify` checks
    against the checkpoints, and a changed entry fails that check."""
    sink.start()
    config = ('{"sink_cluster": "receipt_sink", "max_age_ms": 200, "checkpoint_lag_ms": 0, '
              '"checkpoint_max_records": 8, "checkpoint_max_age_ms": 300}')
    gw = start_gateway(gateway, demo_upstream, sink, writer_config=config)
    requests = mixed_requests("cp")
    send_all(gw, requests, user="alice")
    n = len(requests)

    def settled():
        checkpoints = stat(gw, "receipt_checkpoints_total")
        signed = stat(gw, "receipts_signed_total")  # the chain-open and the checkpoints
        return (stat(gw, "receipts_digested_total") == n and len(sink.digests()) == n
                and checkpoints == -(-n // 8) and signed == 1 + checkpoints == len(sink.receipts())
                and stat(gw, "receipts_exported_total") == signed + n)

    wait_for(f"{n} digest entries and their checkpoints at the sink", settled, gw=gw)
    receipts = sink.receipts()
    assert_gap_free(receipts)
    assert {r["action_record"]["method"] for r in receipts[1:]} == {"warden/checkpoint"}
    assert exchanges_of(receipts) == [], "no exchange signed on its own"
    verify_both(sink.chains()[0], len(receipts))
    ours = subprocess.run([str(WARDEN), "verify", str(sink.chains()[0]), "--key", KEY], capture_output=True, text=True,
                          timeout=60)
    assert ours.returncode == 0 and f"cover the {n} digested exchanges" in ours.stdout, ours.stdout + ours.stderr
    # Every request is in the digest file once, with what was decided.
    records = [json.loads(line)["record"] for line in sink.digests()]
    assert sorted(json.loads(r["request_id"]) for r in records) == sorted(rid for rid, *_ in requests)
    tampered = sink.out.parent / "tampered.digests.jsonl"
    lines = sink.digests()
    lines[0] = lines[0].replace('"verdict":"block"', '"verdict":"allow"').replace('"verdict":"warn"', '"verdict":"allow"')
    if lines[0] == sink.digests()[0]:
        lines[0] = lines[0].replace('"principal":"', '"principal":"x', 1)
    tampered.write_text("\n".join(lines) + "\n")
    bad = subprocess.run([str(WARDEN), "verify", str(sink.chains()[0]), "--key", KEY, "--digests", str(tampered)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "do not fold to the signed root" in bad.stdout, bad.stdout + bad.stderr
    # Without its digest file the chain's checkpoints cannot be checked: that is a failure, not an OK.
    chain_copy = sink.out.parent / "alone.jsonl"
    chain_copy.write_text(sink.chains()[0].read_text())
    alone = subprocess.run([str(WARDEN), "verify", str(chain_copy), "--key", KEY], capture_output=True, text=True,
                           timeout=60)
    assert alone.returncode == 1 and "no digest file" in alone.stdout, alone.stdout + alone.stderr
