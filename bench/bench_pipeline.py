"""A lean pipeline (issue 13, item 6): start-up, plan and an idle service iteration, before and after.

The "before" is the source tree of an earlier commit (``--baseline``, default: main when this work
began), extracted with ``git archive`` and run with the same interpreter on the same inputs in
the same run, so the ratios compare code, not machines or load. Measured, for each tree:

* start-up of ``tasksync --help`` and ``tasksync status`` (what cron runs every minute), against
  ``python -c pass`` as the floor;
* ``tasksync plan`` in text mode on the demo (320 cards) and on a 10x copy (3,200 cards): wall
  time, and how often the plan's JSON is built, the KPIs computed and the win model fitted
  (counted by wrapping those functions in the measured process);
* ``tasksync serve --once`` when neither the board nor the exports changed: wall time and
  whether the solver (scipy) was imported.

    python bench/bench_pipeline.py [--baseline REF] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "37acebe"  # main before issue 13's lean pipeline and issue 17's hardening

# Runs inside the measured process: counts calls, then runs the CLI; prints the counts as JSON.
PROBE = r"""
import json, sys, time
counts = {"plan_json": 0, "compute_kpis": 0, "win_model_fit": 0}

def counted(owner, name, key):
    real = getattr(owner, name)
    def wrapper(*a, **k):
        counts[key] += 1
        return real(*a, **k)
    setattr(owner, name, wrapper)

import tasksync.render as render, tasksync.kpi as kpi
from tasksync.policies.scoring import WinModel
counted(render, "plan_json", "plan_json")
counted(render, "compute_kpis", "compute_kpis")
counted(kpi, "compute_kpis", "compute_kpis")
real_fit = WinModel.fit.__func__
def fit(cls, *a, **k):
    counts["win_model_fit"] += 1
    return real_fit(cls, *a, **k)
WinModel.fit = classmethod(fit)
from tasksync.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
counts["seconds"] = time.perf_counter() - t0
counts["rc"] = rc
counts["scipy"] = "scipy" in sys.modules
print("PROBE" + json.dumps(counts), file=sys.stderr)
"""

# Imports like the entry point does, then reports whether the solver was loaded.
RUN = "import sys; from tasksync.cli import main; rc = main(sys.argv[1:]); sys.exit(rc)"


def extract(ref: str, dest: Path) -> Path:
    """The ``src`` folder of ``ref``, unpacked under ``dest``."""
    data = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def run(src: Path, code: str, args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(src), "NO_COLOR": "1"}
    env.pop("TASKSYNC_STATE", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def best_of(n: int, src: Path, code: str, args: list[str], cwd: Path) -> float:
    """Median wall time of ``n`` runs (after one warm-up for the file cache)."""
    run(src, code, args, cwd)
    return statistics.median(run(src, code, args, cwd)[0] for _ in range(n))


def probe(src: Path, args: list[str], cwd: Path) -> dict[str, float]:
    _, proc = run(src, PROBE, args, cwd)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("PROBE")), None)
    if line is None:
        raise SystemExit(f"probe failed ({args}):\n{proc.stderr[-2000:]}")
    out: dict[str, float] = json.loads(line[5:])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=BASELINE, help=f"git ref of the 'before' tree (default {BASELINE})")
    ap.add_argument("--runs", type=int, default=7, help="runs per start-up timing (median)")
    ap.add_argument("--plan-runs", type=int, default=3, help="runs per plan timing (median)")
    args = ap.parse_args()

    from tasksync.examples import TODAY, generate

    day = TODAY.isoformat()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        trees = {"before": extract(args.baseline, work / "before"), "after": ROOT / "src"}
        inputs = {"demo": generate(work / "inputs" / "demo"), "10x": generate(work / "inputs" / "x10", cards=3200)}
        rows: list[tuple[str, str, str, str]] = []
        results: dict[str, dict[str, float | dict[str, float]]] = {}
        floor = best_of(args.runs, trees["after"], "pass", [], work)
        for name, src in trees.items():
            r: dict[str, float | dict[str, float]] = {}
            folders = {}
            for size, config in inputs.items():
                folder = work / name / size
                shutil.copytree(config.parent, folder)
                folders[size] = folder / "tasksync.toml"
            demo = folders["demo"]
            # the service has run once and applied: status has something to report, serve nothing to do
            run(src, RUN, ["-c", str(demo), "serve", "--once", "--today", day], work)
            run(src, RUN, ["-c", str(demo), "serve", "--once", "--today", day], work)
            r["help"] = best_of(args.runs, src, RUN, ["--help"], work)
            r["status"] = best_of(args.runs, src, RUN, ["-c", str(demo), "status"], work)
            for size, config in folders.items():
                counts = probe(src, ["--no-color", "-c", str(config), "plan", "--today", day], work)
                times = [
                    probe(src, ["--no-color", "-c", str(config), "plan", "--today", day], work)["seconds"]
                    for _ in range(args.plan_runs)
                ]
                r[f"plan {size}"] = statistics.median(times)
                r[f"counts {size}"] = counts
            idle = probe(src, ["-c", str(demo), "serve", "--once", "--today", day], work)
            r["serve idle"] = idle["seconds"]
            r["serve idle scipy"] = idle["scipy"]
            results[name] = r

        b, a = results["before"], results["after"]

        def t(key: str) -> tuple[str, str, str]:
            before, after = float(b[key]), float(a[key])  # type: ignore[arg-type]
            return f"{before * 1000:,.0f} ms", f"{after * 1000:,.0f} ms", f"{before / after:.2f}x faster"

        rows.append(("python -c pass (floor)", f"{floor * 1000:,.0f} ms", f"{floor * 1000:,.0f} ms", ""))
        rows.append(("tasksync --help", *t("help")))
        rows.append(("tasksync status", *t("status")))
        for size in inputs:
            rows.append((f"plan (text) {size}: wall", *t(f"plan {size}")))
            cb, ca = b[f"counts {size}"], a[f"counts {size}"]
            assert isinstance(cb, dict) and isinstance(ca, dict)
            for key in ("plan_json", "compute_kpis", "win_model_fit"):
                rows.append((f"plan (text) {size}: {key} calls", f"{cb[key]:.0f}", f"{ca[key]:.0f}", ""))
        rows.append(("serve --once, nothing changed", *t("serve idle")))
        rows.append(
            ("  ...imports the solver (scipy)", str(bool(b["serve idle scipy"])), str(bool(a["serve idle scipy"])), "")
        )
        start_after = {k: float(a[k]) - floor for k in ("help", "status")}  # type: ignore[arg-type]

    widths = [max(len(r[i]) for r in [*rows, ("metric", "before", "after", "ratio")]) for i in range(4)]
    head = ("metric", f"before ({args.baseline})", "after (this tree)", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(
        f"\nstart-up above the interpreter's floor: --help {start_after['help'] * 1000:,.0f} ms, "
        f"status {start_after['status'] * 1000:,.0f} ms (target: whole command <= 200 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
