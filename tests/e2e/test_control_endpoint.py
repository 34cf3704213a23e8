"""`warden control`: the control endpoint the filter polls, run as a real process on a free port.

It serves policy.json and kill.json from a directory (a mounted ConfigMap, symlink swaps
included), compiles them with the filter's own code, refuses what does not compile (the last good
version stays served, the error shows at /status), and answers If-None-Match with 304.

Needs `target/release/warden` (`make build`); WARDEN_BIN overrides the path.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

WARDEN = Path(os.environ.get("WARDEN_BIN", harness.ROOT / "target" / "release" / "warden"))

GOOD_POLICY = {
    "rules": [
        {"id": "no-deletes", "match": {"methods": ["tools/call"], "names": ["delete_*"]},
         "action": "deny", "reason": "deleting is not allowed here"},
        {"id": "per-user", "action": "rate_limit", "rate_limit": {"rate": 5, "key": "principal"}},
    ],
    "default_action": "allow",
}
KILL = [{"tool": "exec", "reason": "incident 4711"}]


@pytest.fixture(scope="module")
def warden() -> Path:
    if not WARDEN.is_file():
        pytest.fail(f"{WARDEN} is missing: build it with `make build` (cargo build --release --bin warden)",
                    pytrace=False)
    return WARDEN


class Control:
    def __init__(self, port: int, proc: harness.Proc, directory: Path):
        self.port = port
        self.proc = proc
        self.dir = directory

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def state(self):
        status, headers, body = self.get("/v1/state")
        assert status == 200, body
        return headers["etag"], json.loads(body)

    def status(self) -> dict:
        status, _, body = self.get("/status")
        assert status == 200
        return json.loads(body)


@pytest.fixture
def control(warden, tmp_path):
    directory = tmp_path / "config"
    directory.mkdir()
    port = harness.free_port()
    proc = harness.Proc("warden-control", [str(warden), "control", "--dir", str(directory),
                                           "--listen", f"127.0.0.1:{port}"], tmp_path / "logs")
    harness.LIVE_PROCS.append(proc)
    try:
        harness.wait_port(port, proc=proc)
        yield Control(port, proc, directory)
    finally:
        harness.LIVE_PROCS.remove(proc)
        proc.stop()


def write(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value if isinstance(value, str) else json.dumps(value))
    tmp.replace(path)


def test_serves_policy_and_kill_switch_with_etag(control):
    etag0, doc0 = control.state()
    assert doc0 == {"version": 1, "kill_switch": []}
    write(control.dir / "policy.json", GOOD_POLICY)
    write(control.dir / "kill.json", KILL)
    etag, doc = control.state()
    assert etag != etag0 and etag.startswith('"') and etag.endswith('"')
    assert doc["kill_switch"] == KILL
    assert doc["policy"] == GOOD_POLICY
    status, headers, body = control.get("/v1/state", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag
    assert control.get("/v1/state", {"If-None-Match": '"stale"'})[0] == 200
    assert control.status()["ok"] is True


def test_refuses_a_policy_that_does_not_compile_and_keeps_the_last_good(control):
    write(control.dir / "policy.json", GOOD_POLICY)
    etag, doc = control.state()
    bad = json.loads(json.dumps(GOOD_POLICY))
    bad["rules"][1]["rate_limit"]["rate"] = 0
    write(control.dir / "policy.json", bad)
    assert control.state() == (etag, doc), "the last good policy stays served"
    st = control.status()
    assert st["ok"] is False
    assert st["policy"]["error"]["field"] == "rules[1].rate_limit.rate"
    assert "rate of zero" in st["policy"]["error"]["message"]
    assert "refusing policy.json" in control.proc.tail()

    write(control.dir / "policy.json", '{"rules": [{"id": "a", "action": "allow", "colour": "red"}]}')
    st = control.status()
    assert st["policy"]["error"]["field"] == "rules[0].colour"
    assert control.state() == (etag, doc)

    fixed = dict(GOOD_POLICY, default_action="deny", default_reason="closed")
    write(control.dir / "policy.json", fixed)
    etag2, doc2 = control.state()
    assert etag2 != etag and doc2["policy"] == fixed
    assert control.status()["ok"] is True


def test_bad_kill_file_keeps_the_last_good_kill_list(control):
    write(control.dir / "kill.json", KILL)
    etag, doc = control.state()
    write(control.dir / "kill.json", [{"upstream": "fs", "tool": "exec", "reason": "two selectors"}])
    assert control.state() == (etag, doc)
    assert control.status()["kill"]["error"]["field"] == "kill[0]"
    (control.dir / "kill.json").unlink()
    _, doc = control.state()
    assert doc["kill_switch"] == [], "removing the file lifts the kill switch"


def test_configmap_symlink_swap(control):
    # Kubernetes mounts a ConfigMap as KEY -> ..data/KEY, ..data -> ..<timestamp>, swapped atomically.
    d = control.dir
    v1 = d / "..2026_11_21_v1"
    v1.mkdir()
    write(v1 / "kill.json", KILL)
    os.symlink(v1.name, d / "..data")
    os.symlink("..data/kill.json", d / "kill.json")
    _, doc = control.state()
    assert doc["kill_switch"] == KILL
    v2 = d / "..2026_11_21_v2"
    v2.mkdir()
    write(v2 / "kill.json", [{"all": True, "reason": "maintenance"}])
    os.symlink(v2.name, d / "..data_tmp")
    os.replace(d / "..data_tmp", d / "..data")
    _, doc = control.state()
    assert doc["kill_switch"] == [{"all": True, "reason": "maintenance"}]


def test_keep_alive_and_other_paths(control):
    conn = http.client.HTTPConnection("127.0.0.1", control.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/v1/state")
            r = conn.getresponse()
            assert r.status == 200
            json.loads(r.read())
    finally:
        conn.close()
    assert control.get("/healthz")[0] == 200
    assert control.get("/nope")[0] == 404
    status, headers, _ = control.get("/v1/state", method="POST")
    assert status == 405 and "GET" in headers["allow"]


def test_check_mode_names_the_field(warden, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    write(good / "policy.json", GOOD_POLICY)
    r = subprocess.run([str(warden), "control", "--dir", str(good), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    bad = tmp_path / "bad"
    bad.mkdir()
    write(bad / "policy.json", {"rules": [{"id": "a", "action": "allow"}, {"id": "a", "action": "deny"}]})
    r = subprocess.run([str(warden), "control", "--dir", str(bad), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "rules[1].id" in r.stderr and "duplicate rule id `a`" in r.stderr
    r = subprocess.run([str(warden), "control"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--dir" in r.stderr
