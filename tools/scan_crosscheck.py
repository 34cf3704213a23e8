#!/usr/bin/env python3
"""Cross-checks mcp-warden's content scanner against detect-secrets (Yelp), an established scanner,
on the true-positive corpus and the benign corpus, and prints a markdown report.

Run from the repository root (no Makefile target; the first run needs PyPI to build the venv):

    cargo build --release -p mcp-warden-cli             # or however target/release/warden is built
    python3 fixtures/scan/make_true_positives.py        # (re)writes fixtures/scan/true_positives.jsonl
    python3 tools/scan_crosscheck.py                    # report on stdout
    python3 tools/scan_crosscheck.py --out bench/out/scan_crosscheck.md --details /tmp/cc.jsonl

Options: --warden CMD (default target/release/warden; split like a shell word list, so
"python3 fake.py" works), --venv DIR (default .venv-tools: a project-local venv that gets
detect-secrets==1.5.0 from PyPI when missing; keep it out of git with `.venv-tools/` in
.gitignore), --tp FILE, --benign DIR (default fixtures/scan/benign, every file below it one sample),
--ds-mode api|cli, --out FILE, --details FILE (one JSON line per sample: what each scanner found).

What is run:
  * detect-secrets: each sample's text is written to its own file (tp/<n>.txt) in a temp folder;
    benign files are scanned where they are (their names and extensions matter to its plugins).
    --ds-mode api (default) runs this same file under the venv's python as a worker, which scans
    every file with `SecretsCollection().scan_file(path)` inside `detect_secrets.settings.
    default_settings()` (every plugin enabled with its default options, the default filters; what
    `detect-secrets scan` does). --ds-mode cli runs `DIR/bin/detect-secrets scan --all-files
    <folder>` and reads the baseline JSON it prints (results per file). Both give the same answers.
  * mcp-warden: `CMD scan --jsonl FILE`, FILE holding lines {"id": "<n>", "text": "..."}; it prints one
    line per input, {"id": "<n>", "findings": [{"detector": "<id>", "class": "<class>",
    "decoded": true|false}]}.

A true positive counts as caught by mcp-warden when its own detector is among the findings (a
finding under another detector is reported separately); by detect-secrets when any plugin reports
anything in its file (detect-secrets has no per-vendor ids to compare). A benign file counts as a
false positive of every detector / plugin that reports something in it.

Outside the worker, this script uses the standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

DS_VERSION = "1.5.0"
ROOT = Path(__file__).resolve().parent.parent
ENCODED = ("base64", "base64url", "hex", "percent", "json_escape")
# detect-secrets plugins that flag any random-looking string, whatever it is.
ENTROPY_PLUGINS = {"Base64 High Entropy String", "Hex High Entropy String"}


# --------------------------------------------------------------------------------------------
# detect-secrets worker (runs under the venv's python, where detect_secrets is importable).
# --------------------------------------------------------------------------------------------


def ds_worker(manifest: str, out: str) -> int:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    paths = json.loads(Path(manifest).read_text())
    result: dict[str, list[str]] = {}
    with default_settings():
        for p in paths:
            coll = SecretsCollection()
            coll.scan_file(p)
            result[p] = sorted({s.type for _, s in coll})
    Path(out).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Setup.
# --------------------------------------------------------------------------------------------


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = "import detect_secrets.__version__ as v; print(v.VERSION)"
    have = None
    if py.exists():
        r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        have = r.stdout.strip() if r.returncode == 0 else None
    if have != DS_VERSION:
        if not py.exists():
            print(f"creating venv {venv} ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        print(f"installing detect-secrets=={DS_VERSION} into {venv} (from PyPI) ...", file=sys.stderr)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"detect-secrets=={DS_VERSION}"], check=True)
        r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True)
        have = r.stdout.strip()
    if have != DS_VERSION:
        raise SystemExit(f"{venv}: detect-secrets {have!r} installed, want {DS_VERSION}")
    return py


def check_gitignore(venv: Path) -> None:
    try:
        rel = venv.resolve().relative_to(ROOT)
    except ValueError:
        return  # outside the repository: nothing to ignore
    gi = ROOT / ".gitignore"
    lines = {ln.strip() for ln in gi.read_text().splitlines()} if gi.exists() else set()
    name = rel.as_posix()
    if not lines & {name, name + "/", "/" + name, "/" + name + "/"}:
        print(f"note: .gitignore has no `{name}/` line; it should be added (this script does not edit it)", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The two scanners.
# --------------------------------------------------------------------------------------------


def run_detect_secrets(py: Path, venv: Path, mode: str, paths: list[Path], roots: list[Path]) -> dict[str, list[str]]:
    """Plugin types found per path (str of the absolute path)."""
    abspaths = [str(p.resolve()) for p in paths]
    if mode == "api":
        with tempfile.TemporaryDirectory() as td:
            manifest, out = Path(td) / "manifest.json", Path(td) / "out.json"
            manifest.write_text(json.dumps(abspaths))
            subprocess.run([str(py), str(Path(__file__).resolve()), "--_ds-worker", str(manifest), str(out)], check=True)
            return json.loads(out.read_text())
    # cli: `detect-secrets scan --all-files <files>`, run in a folder above the files (the temp
    # folder of samples, the repository, or the file's own folder) and given their relative paths,
    # so that the baseline names each file by that path; in batches, to keep the command short.
    found: dict[str, list[str]] = {p: [] for p in abspaths}
    exe = str((venv / "bin" / "detect-secrets").resolve())
    groups: dict[str, list[str]] = defaultdict(list)
    for p in abspaths:
        root = next((str(r) for r in roots if Path(p).is_relative_to(r)), str(Path(p).parent))
        groups[root].append(os.path.relpath(p, root))
    for root, rels in sorted(groups.items()):
        for k in range(0, len(rels), 500):
            r = subprocess.run([exe, "scan", "--all-files", *rels[k : k + 500]], cwd=root, capture_output=True, text=True, check=True)
            for fname, items in json.loads(r.stdout)["results"].items():
                full = str((Path(root) / fname).resolve())
                if full in found:
                    found[full] = sorted({it["type"] for it in items})
    return found


def run_warden(cmd: str, texts: list[str]) -> tuple[list[list[dict]] | None, str]:
    """Findings per text, or None and why."""
    argv = shlex.split(cmd)
    exe = argv[0]
    if os.sep in exe and not Path(exe).exists():
        return None, f"`{exe}` does not exist (build it first)"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": str(i), "text": t}) + "\n")
        path = f.name
    try:
        r = subprocess.run(argv + ["scan", "--jsonl", path], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"`{cmd} scan --jsonl` failed to run: {e}"
    finally:
        os.unlink(path)
    if r.returncode != 0:
        err = (r.stderr or r.stdout).strip().splitlines()
        return None, f"`{cmd} scan --jsonl` exited {r.returncode}: {' / '.join(err[:3])[:300]}"
    out: list[list[dict] | None] = [None] * len(texts)
    bad = 0
    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            i = int(obj["id"])
            out[i] = [f for f in obj.get("findings", []) if isinstance(f, dict)]
        except (ValueError, KeyError, TypeError, IndexError):
            bad += 1
    missing = sum(1 for o in out if o is None)
    if missing == len(texts):
        return None, f"`{cmd} scan --jsonl` printed no usable line ({bad} unreadable)"
    note = ""
    if missing or bad:
        note = f"{missing} inputs had no output line, {bad} output lines were unreadable (counted as no findings)"
    return [o or [] for o in out], note


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------


def frac(n: int, d: int) -> str:
    return f"{n}/{d}" if d else "-"


def pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "-"


def report(tp: list[dict], benign: list[Path], benign_root: Path, ds_tp, ds_bn, w_tp, w_bn, w_note: str, args) -> str:
    L: list[str] = []
    have_w = w_tp is not None
    L.append("# Content scanner cross-check: mcp-warden vs detect-secrets")
    L.append("")
    L.append(f"- true positives: `{args.tp}` ({len(tp)} samples, {len({r['detector'] for r in tp})} detectors)")
    L.append(f"- benign corpus: `{args.benign}` ({len(benign)} files)")
    L.append(f"- detect-secrets {DS_VERSION}, all plugins, default filters (`--ds-mode {args.ds_mode}`)")
    L.append(f"- mcp-warden: `{args.warden} scan --jsonl`" + ("" if have_w else f": **not run**: {w_note}"))
    if have_w and w_note:
        L.append(f"  - warning: {w_note}")
    L.append("")

    order: list[str] = []
    for r in tp:
        if r["detector"] not in order:
            order.append(r["detector"])
    rows = defaultdict(lambda: Counter())
    plugins = defaultdict(Counter)
    other = defaultdict(Counter)
    undecoded = Counter()
    by_variant = defaultdict(Counter)
    for i, r in enumerate(tp):
        d, enc = r["detector"], r["variant"] != "plain"
        k = "enc" if enc else "plain"
        c = rows[d]
        c[k] += 1
        by_variant[r["variant"]]["n"] += 1
        if ds_tp[i]:
            c["ds_" + k] += 1
            by_variant[r["variant"]]["ds"] += 1
            for t in ds_tp[i]:
                plugins[d][t] += 1
        if set(ds_tp[i]) - ENTROPY_PLUGINS:
            c["dsn_" + k] += 1
            by_variant[r["variant"]]["dsn"] += 1
        if have_w:
            ids = {f.get("detector") for f in w_tp[i]}
            if d in ids:
                c["w_" + k] += 1
                by_variant[r["variant"]]["w"] += 1
                if enc and not any(f.get("detector") == d and f.get("decoded") for f in w_tp[i]):
                    undecoded[d] += 1
            elif ids:
                for x in sorted(j for j in ids if j):
                    other[d][x] += 1
                c["w_other"] += 1

    def cell(c: Counter, key: str, k: str) -> str:
        return frac(c[key + "_" + k], c[k]) if (key != "w" or have_w) else "n/a"

    L.append("## True positives per detector")
    L.append("")
    L.append("Caught = mcp-warden reported the sample's own detector / detect-secrets reported anything; "
             "\"non-entropy\" = detect-secrets caught it with a plugin other than Base64 / Hex High Entropy String "
             "(which flag any random-looking string). Encoded = base64, base64url, hex, percent, json_escape variants.")
    L.append("")
    L.append("| detector | samples (plain + encoded) | mcp-warden plain | mcp-warden encoded | detect-secrets plain | detect-secrets encoded | detect-secrets non-entropy plain / encoded | detect-secrets plugins (samples) |")
    L.append("|---|---|---|---|---|---|---|---|")
    tot = Counter()
    for d in order:
        c = rows[d]
        tot.update(c)
        pl = ", ".join(f"{p} ({n})" for p, n in sorted(plugins[d].items(), key=lambda kv: (-kv[1], kv[0]))) or "-"
        L.append(f"| `{d}` | {c['plain']} + {c['enc']} | {cell(c, 'w', 'plain')} | {cell(c, 'w', 'enc')} | {cell(c, 'ds', 'plain')} | {cell(c, 'ds', 'enc')} | {c['dsn_plain']} / {c['dsn_enc']} | {pl} |")
    L.append(
        f"| **total** | {tot['plain']} + {tot['enc']} | {cell(tot, 'w', 'plain')} | {cell(tot, 'w', 'enc')} | "
        f"{cell(tot, 'ds', 'plain')} | {cell(tot, 'ds', 'enc')} | {tot['dsn_plain']} / {tot['dsn_enc']} | |"
    )
    L.append("")
    det_any = lambda key, k: sum(1 for d in order if rows[d][key + "_" + k] > 0)  # noqa: E731
    L.append("## Totals")
    L.append("")
    L.append("| | mcp-warden | detect-secrets |")
    L.append("|---|---|---|")
    wv = lambda s: s if have_w else "n/a"  # noqa: E731
    L.append(f"| plain samples caught | {wv(frac(tot['w_plain'], tot['plain']) + ' (' + pct(tot['w_plain'], tot['plain']) + ')')} | {frac(tot['ds_plain'], tot['plain'])} ({pct(tot['ds_plain'], tot['plain'])}) |")
    L.append(f"| encoded samples caught | {wv(frac(tot['w_enc'], tot['enc']) + ' (' + pct(tot['w_enc'], tot['enc']) + ')')} | {frac(tot['ds_enc'], tot['enc'])} ({pct(tot['ds_enc'], tot['enc'])}) |")
    L.append(f"| plain samples caught by a non-entropy plugin | | {frac(tot['dsn_plain'], tot['plain'])} ({pct(tot['dsn_plain'], tot['plain'])}) |")
    L.append(f"| encoded samples caught by a non-entropy plugin | | {frac(tot['dsn_enc'], tot['enc'])} ({pct(tot['dsn_enc'], tot['enc'])}) |")
    L.append(f"| detectors with >= 1 plain sample caught | {wv(frac(det_any('w', 'plain'), len(order)))} | {frac(det_any('ds', 'plain'), len(order))} |")
    L.append(f"| detectors with >= 1 encoded sample caught | {wv(frac(det_any('w', 'enc'), len(order)))} | {frac(det_any('ds', 'enc'), len(order))} |")
    L.append(f"| detectors with every sample caught | {wv(frac(sum(1 for d in order if rows[d]['w_plain'] + rows[d]['w_enc'] == rows[d]['plain'] + rows[d]['enc']), len(order)))} | "
             f"{frac(sum(1 for d in order if rows[d]['ds_plain'] + rows[d]['ds_enc'] == rows[d]['plain'] + rows[d]['enc']), len(order))} |")
    L.append("")
    L.append("| variant | samples | mcp-warden | detect-secrets | detect-secrets non-entropy |")
    L.append("|---|---|---|---|---|")
    for v in ("plain",) + ENCODED:
        c = by_variant[v]
        L.append(f"| {v} | {c['n']} | {wv(frac(c['w'], c['n']))} | {frac(c['ds'], c['n'])} | {frac(c['dsn'], c['n'])} |")
    L.append("")
    if have_w:
        if other:
            L.append("### mcp-warden findings under another detector (sample's own detector missing)")
            L.append("")
            L.append("| detector | samples | reported instead |")
            L.append("|---|---|---|")
            for d in order:
                if other[d]:
                    L.append(f"| `{d}` | {rows[d]['w_other']} | {', '.join(f'`{x}` ({n})' for x, n in sorted(other[d].items()))} |")
            L.append("")
        if undecoded:
            L.append("### Encoded samples caught without `decoded: true`")
            L.append("")
            L.append(", ".join(f"`{d}` ({n})" for d, n in sorted(undecoded.items())))
            L.append("")

    L.append("## Benign corpus: false positives")
    L.append("")
    if not benign:
        L.append(f"No files under `{args.benign}`.")
    else:
        names = [str(p.relative_to(benign_root)) if p.is_relative_to(benign_root) else str(p) for p in benign]
        n = len(benign)
        ds_flagged = sum(1 for x in ds_bn if x)
        L.append(f"- detect-secrets: {ds_flagged}/{n} files flagged ({pct(ds_flagged, n)})")
        if w_bn is not None:
            w_flagged = sum(1 for x in w_bn if x)
            L.append(f"- mcp-warden: {w_flagged}/{n} files flagged ({pct(w_flagged, n)})")
        else:
            L.append("- mcp-warden: n/a")
        L.append("")
        if w_bn is not None:
            per = defaultdict(list)
            for i, fs in enumerate(w_bn):
                for d in sorted({f.get("detector") for f in fs if f.get("detector")}):
                    per[d].append(names[i])
            L.append("### mcp-warden, per detector")
            L.append("")
            if per:
                L.append("| detector | files flagged / scanned | examples |")
                L.append("|---|---|---|")
                for d, fs in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                    L.append(f"| `{d}` | {len(fs)}/{n} | {', '.join(f'`{x}`' for x in fs[:3])}{' …' if len(fs) > 3 else ''} |")
            else:
                L.append(f"No finding in any of the {n} files.")
            L.append("")
        per = defaultdict(list)
        for i, ts in enumerate(ds_bn):
            for t in ts:
                per[t].append(names[i])
        L.append("### detect-secrets, per plugin")
        L.append("")
        if per:
            L.append("| plugin | files flagged / scanned | examples |")
            L.append("|---|---|---|")
            for t, fs in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                L.append(f"| {t} | {len(fs)}/{n} | {', '.join(f'`{x}`' for x in fs[:3])}{' …' if len(fs) > 3 else ''} |")
        else:
            L.append(f"No finding in any of the {n} files.")
        L.append("")
    return "\n".join(L) + "\n"


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--_ds-worker":
        return ds_worker(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", default="target/release/warden", help="mcp-warden CLI (default: %(default)s)")
    ap.add_argument("--venv", default=".venv-tools", help="venv with detect-secrets (default: %(default)s)")
    ap.add_argument("--tp", default="fixtures/scan/true_positives.jsonl", help="true-positive corpus (default: %(default)s)")
    ap.add_argument("--benign", default="fixtures/scan/benign", help="benign corpus folder (default: %(default)s)")
    ap.add_argument("--ds-mode", choices=("api", "cli"), default="api", help="detect-secrets via its Python API or its CLI")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--details", help="write per-sample results (JSON lines) here")
    args = ap.parse_args()

    os.chdir(ROOT)
    venv = Path(args.venv)
    py = ensure_venv(venv)
    check_gitignore(venv)

    tp = [json.loads(line) for line in Path(args.tp).read_text(encoding="utf-8").splitlines() if line.strip()]
    benign_root = Path(args.benign)
    benign = sorted(p for p in benign_root.rglob("*") if p.is_file()) if benign_root.is_dir() else []
    benign_texts = [p.read_bytes().decode("utf-8", errors="replace") for p in benign]

    with tempfile.TemporaryDirectory(prefix="scan-crosscheck-") as td:
        tp_dir = Path(td) / "tp"
        tp_dir.mkdir()
        tp_paths = []
        width = len(str(len(tp)))
        for i, r in enumerate(tp):
            p = tp_dir / f"{i:0{width}d}.txt"
            p.write_text(r["text"], encoding="utf-8")
            tp_paths.append(p)
        found = run_detect_secrets(py, venv, args.ds_mode, tp_paths + benign, [tp_dir.resolve(), ROOT])
        ds_tp = [found.get(str(p.resolve()), []) for p in tp_paths]
        ds_bn = [found.get(str(p.resolve()), []) for p in benign]

    w_all, w_note = run_warden(args.warden, [r["text"] for r in tp] + benign_texts)
    w_tp = w_all[: len(tp)] if w_all is not None else None
    w_bn = w_all[len(tp) :] if w_all is not None else None
    if w_all is None:
        print(f"note: mcp-warden not run: {w_note}", file=sys.stderr)

    md = report(tp, benign, benign_root, ds_tp, ds_bn, w_tp, w_bn, w_note, args)
    sys.stdout.write(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md, encoding="utf-8")
    if args.details:
        with open(args.details, "w", encoding="utf-8") as f:
            for i, r in enumerate(tp):
                f.write(json.dumps({"source": "tp", "index": i, "detector": r["detector"], "variant": r["variant"], "detect_secrets": ds_tp[i], "warden": w_tp[i] if w_tp is not None else None}) + "\n")
            for i, p in enumerate(benign):
                f.write(json.dumps({"source": "benign", "file": str(p), "detect_secrets": ds_bn[i], "warden": w_bn[i] if w_bn is not None else None}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
