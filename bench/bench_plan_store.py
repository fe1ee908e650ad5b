"""Benchmark: the state store after many plans, pruned (last 50 plans, every applied plan kept)
against the baseline that keeps every superseded proposal.

Plans a full-size example board once (323 cards) to get a real plan body, then stores it
``--plans`` times as a new proposal (each superseding the previous, one in ``--apply-every``
marked applied), in two stores in the same run: the baseline (``save_plan`` only, as before) and
tasksync now (``save_plan`` then ``prune_plans``, as ``tasksync plan`` does). Prints the file
size, plan rows and the CPU time of ``history`` (listing the plans) and of saving, per store.

    PYTHONPATH=src python bench/bench_plan_store.py [--plans 400] [--apply-every 25]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tasksync.examples import TODAY, generate
from tasksync.model import Plan
from tasksync.settings import load_settings
from tasksync.sync.state import StateStore
from tasksync.sync.workspace import Workspace


def fill(path: Path, plan: Plan, n: int, apply_every: int, prune: bool) -> tuple[float, int, int, float]:
    """(CPU seconds saving, file bytes, plan rows, CPU seconds for one `history` listing)."""
    with StateStore(path) as store:
        t0 = time.process_time()
        for i in range(n):
            p = dataclasses.replace(plan, id=f"p{i:05d}", created_at=plan.created_at + timedelta(seconds=i))
            store.save_plan(p, "proposed")
            if (i + 1) % apply_every == 0:
                store.set_status(p.id, "applied")
            if prune:
                store.prune_plans(p.board)
        saving = time.process_time() - t0
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = store.db.execute("SELECT COUNT(*) FROM plans").fetchone()[0]
        t0 = time.process_time()
        store.plans(plan.board, limit=20)
        listing = time.process_time() - t0
    return saving, path.stat().st_size, rows, listing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plans", type=int, default=400)
    ap.add_argument("--apply-every", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = generate(Path(tmp) / "demo")
        with Workspace(load_settings(config), today=TODAY) as ws:
            plan = ws.plan(save=False).plan
        body = len(str(plan.to_json()))
        print(
            f"plan body ~{body / 1024:.0f} KB ({len(plan.changes)} changes, {len(plan.creates)} creates); "
            f"{args.plans} plans, one in {args.apply_every} applied"
        )
        base = fill(Path(tmp) / "baseline.sqlite3", plan, args.plans, args.apply_every, prune=False)
        ours = fill(Path(tmp) / "pruned.sqlite3", plan, args.plans, args.apply_every, prune=True)
    print(f"{'store':28} {'plans kept':>10} {'file MB':>9} {'save s':>8} {'history ms':>11}")
    for name, (saving, size, rows, listing) in (("baseline (no pruning)", base), ("tasksync (pruned)", ours)):
        print(f"{name:28} {rows:>10} {size / 1e6:>9.1f} {saving:>8.2f} {listing * 1000:>11.1f}")
    print(
        f"ratio pruned/baseline: file {ours[1] / base[1]:.2f}, history {ours[3] / max(base[3], 1e-9):.2f}, "
        f"save {ours[0] / max(base[0], 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
