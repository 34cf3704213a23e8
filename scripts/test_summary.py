#!/usr/bin/env python3
"""The last step of `make test`: how many tests each layer ran, from the logs the layers left in
.run/ (`test_summary.py .run`). Fails when a layer's log is missing or shows no test at all, so
no layer can pass on nothing."""
import re
import sys
from pathlib import Path


def cargo(text: str) -> int:
    return sum(int(n) for n in re.findall(r"test result: ok\. (\d+) passed", text))


def pytest(text: str) -> int:
    m = re.findall(r"(\d+) passed", text.splitlines()[-1] if text.strip() else "")
    return int(m[0]) if m else 0


LAYERS = [
    ("cargo test (native: unit, corpus, fake host)", "test-unit.log", cargo),
    ("wasm32 corpus under Node", "wasm32.log", cargo),
    ("envoy --mode validate", "validate.log", lambda t: t.count("envoy validate OK")),
    ("differential vs Python / TS v2 / TS 1.x SDKs", "test-differential.log", pytest),
    ("e2e through real Envoy", "test-e2e.log", pytest),
    ("conformance transparency", "test-conformance.log", pytest),
]


def main(run_dir: str) -> int:
    failed = False
    print("\ntests per layer:")
    for name, log, count in LAYERS:
        path = Path(run_dir) / log
        n = count(path.read_text(errors="replace")) if path.is_file() else 0
        failed |= n == 0
        print(f"  {name:<46} {n:>5}{'  <-- NO TESTS RAN' if n == 0 else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".run"))
