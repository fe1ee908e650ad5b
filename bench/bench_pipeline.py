"""A lean pipeline (issue 13, item 6): start-up, the plan's presentation and an idle service
iteration, before and after, measured in one run on the same inputs.

* Start-up of ``tasksync --help`` and ``tasksync status`` (what cron runs every minute), against
  ``python -c pass`` as the floor. "Before" is the source tree of an earlier commit
  (``--baseline``, default: main when this work began) extracted with ``git archive`` and run
  with the same interpreter; runs alternate between the trees and the median is kept, as wall
  time and as CPU time (user + system, steadier on a loaded machine).
* The plan's presentation (``plan`` in text mode after the plan is computed) on the demo (320
  cards) and a 10x copy (3,200), in this tree with the old behaviour toggled: before, the plan's
  JSON is built twice (once for ``--json``/``--html``, again by the terminal view) and each build
  computes the KPIs twice, each refitting the win model over the whole history; after, the JSON
  is built once and the KPIs share the model the policy fitted. Counted too, in a whole ``plan``
  command of each tree: JSON builds, KPI computations, win-model fits.
* ``tasksync serve --once`` when neither the board nor the exports changed: wall time and whether
  the solver (scipy) was imported, in each tree.

    python bench/bench_pipeline.py [--baseline REF] [--runs 9] [--render-runs 5] [--x100] [--startup-only]

``--startup-only`` measures start-up and the idle iteration alone (seconds, not minutes: no plan
of the 10x copy).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

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
try:  # the plan's data moved out of render.py into report_data.py
    import tasksync.report_data as data
except ImportError:
    data = render
from tasksync.policies.scoring import WinModel
counted(render, "plan_json", "plan_json")
counted(data, "compute_kpis", "compute_kpis")
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


def run(src: Path, code: str, args: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU seconds (user + system) of one interpreter running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(src), "NO_COLOR": "1"}
    env.pop("TASKSYNC_STATE", None)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), proc


def alternate(n: int, runs: dict[str, tuple[Path, list[str]]], code: str, cwd: Path) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) per tree over ``n`` runs that alternate between the trees; ``runs``
    maps a tree's name to its source folder and the arguments to run it with."""
    for src, argv in runs.values():
        run(src, code, argv, cwd)  # warm the file cache and the bytecode
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(n):
        for name, (src, argv) in runs.items():
            wall, cpu, _proc = run(src, code, argv, cwd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in runs}


def render_phase(config: Path, day: str, runs: int) -> dict[str, float]:
    """Median seconds of the plan's presentation with the old behaviour and the new, alternating."""
    from rich.console import Console

    from tasksync.examples import TODAY
    from tasksync.render import plan_json, print_plan
    from tasksync.settings import load_settings
    from tasksync.sync.workspace import Workspace

    settings = load_settings(config)
    with Workspace(settings, today=TODAY) as ws:
        result = ws.plan(save=False)
    old_result = replace(result, decisions=replace(result.decisions, model=None))  # as before: no shared model

    def before() -> None:
        console = Console(file=io.StringIO(), no_color=True, width=120)
        plan_json(old_result, settings)  # for --json / --html
        print_plan(old_result, console, settings=settings)  # built again inside

    def after() -> None:
        console = Console(file=io.StringIO(), no_color=True, width=120)
        data = plan_json(result, settings)
        print_plan(result, console, settings=settings, data=data)

    before()  # warm-up: imports, caches
    after()
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(runs):
        for name, fn in (("before", before), ("after", after)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def probe(src: Path, args: list[str], cwd: Path) -> dict[str, Any]:
    _, _, proc = run(src, PROBE, args, cwd)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("PROBE")), None)
    if line is None:
        raise SystemExit(f"probe failed ({args}):\n{proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(line[5:])
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=BASELINE, help=f"git ref of the 'before' tree (default {BASELINE})")
    ap.add_argument("--runs", type=int, default=9, help="runs per start-up timing and tree (median)")
    ap.add_argument("--render-runs", type=int, default=5, help="runs per presentation timing (median)")
    ap.add_argument("--x100", action="store_true", help="also a 100x copy (32,000 cards; minutes per plan)")
    ap.add_argument("--startup-only", action="store_true", help="start-up and the idle iteration only")
    args = ap.parse_args()

    from tasksync.examples import TODAY, generate

    day = TODAY.isoformat()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        trees = {"before": extract(args.baseline, work / "before"), "after": ROOT / "src"}
        inputs = {"demo": generate(work / "inputs" / "demo")}
        if not args.startup_only:
            inputs["10x"] = generate(work / "inputs" / "x10", cards=3200)
        if args.x100 and not args.startup_only:
            inputs["100x"] = generate(work / "inputs" / "x100", cards=32000)
        configs: dict[str, dict[str, Path]] = {}
        for name in trees:
            configs[name] = {}
            for size, config in inputs.items():
                shutil.copytree(config.parent, work / name / size)
                configs[name][size] = work / name / size / "tasksync.toml"
            demo = configs[name]["demo"]
            for _ in range(2):  # the service ran and applied: status has a report, serve nothing to do
                run(trees[name], RUN, ["-c", str(demo), "serve", "--once", "--today", day], work)

        floor = alternate(args.runs, {"floor": (trees["after"], [])}, "pass", work)["floor"]
        rows.append(("python -c pass (floor): wall / CPU", f"{ms(floor[0])} / {ms(floor[1])}", "", ""))
        startup: dict[str, dict[str, tuple[float, float]]] = {}
        for label in ("--help", "status"):
            runs = {  # status reads each tree's own state store
                name: (src, ["--help"] if label == "--help" else ["-c", str(configs[name]["demo"]), "status"])
                for name, src in trees.items()
            }
            startup[label] = alternate(args.runs, runs, RUN, work)
            b, a = startup[label]["before"], startup[label]["after"]
            rows.append((f"tasksync {label}: wall", ms(b[0]), ms(a[0]), f"{b[0] / a[0]:.2f}x"))
            rows.append((f"tasksync {label}: CPU", ms(b[1]), ms(a[1]), f"{b[1] / a[1]:.2f}x"))

        for size in () if args.startup_only else inputs:
            phase = render_phase(configs["after"][size], day, args.render_runs)
            rows.append(
                (
                    f"plan {size}: presentation (JSON + terminal)",
                    ms(phase["before"]),
                    ms(phase["after"]),
                    f"{phase['before'] / phase['after']:.2f}x",
                )
            )
            counts = {
                name: probe(src, ["--no-color", "-c", str(configs[name][size]), "plan", "--today", day], work)
                for name, src in trees.items()
            }
            for key in ("plan_json", "compute_kpis", "win_model_fit"):
                rows.append((f"plan {size}: {key} calls", str(counts["before"][key]), str(counts["after"][key]), ""))
        idle_runs = {
            name: (src, ["-c", str(configs[name]["demo"]), "serve", "--once", "--today", day])
            for name, src in trees.items()
        }
        idle = alternate(args.runs, idle_runs, RUN, work)
        b, a = idle["before"], idle["after"]
        rows.append(("serve --once, nothing changed: wall", ms(b[0]), ms(a[0]), f"{b[0] / a[0]:.2f}x"))
        rows.append(("serve --once, nothing changed: CPU", ms(b[1]), ms(a[1]), f"{b[1] / a[1]:.2f}x"))
        scipy = {name: probe(src, argv, work)["scipy"] for name, (src, argv) in idle_runs.items()}
        rows.append(("  ...imports the solver (scipy)", str(scipy["before"]), str(scipy["after"]), ""))

    head = ("metric", f"before ({args.baseline})", "after (this tree)", "before/after")
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    a_help, a_status = startup["--help"]["after"], startup["status"]["after"]
    print(
        f"\nafter, above the interpreter's floor (wall): --help {ms(a_help[0] - floor[0])}, "
        f"status {ms(a_status[0] - floor[0])}; target: the whole command within 200 ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
