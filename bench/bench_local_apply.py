"""Benchmark: writing a plan to the local board (``LocalConnector.write``).

The baseline is the previous design, run in the same process on the same boards: load the file
once, change the cards in memory and re-save the whole document, indented and fsynced, every 25
cards (a person's edits made meanwhile are lost). The current connector re-reads and merges per
batch under a file lock, checks every card against the plan's ``before``, and saves a handful of
times per apply, compact when the file is compact.

Each trial writes a new owner and a new priority on every open card of a fresh copy of the
example board at 1x (320 cards) and 10x (3,200 cards); the figure is field changes per second.

    PYTHONPATH=src python bench/bench_local_apply.py [--trials 3] [--scales 1,10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasksync.connectors.local import LocalConnector
from tasksync.connectors.trello_board import BoardFields, apply_write
from tasksync.examples import generate
from tasksync.model import Field, FieldValue, TaskWrite
from tasksync.settings import load_settings


def baseline_write(conn: LocalConnector, writes: list[TaskWrite], every: int = 25) -> int:
    """The previous LocalConnector.write: one load, a full indented save every ``every`` cards."""
    data = json.loads(conn.path.read_text(encoding="utf-8"))
    fields = BoardFields(data, conn.settings)
    cards = {c["id"]: c for c in data["cards"]}

    def save() -> None:
        fd, tmp = tempfile.mkstemp(dir=conn.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(conn.path)

    n = 0
    for i, w in enumerate(writes, 1):
        for f, value in w.values.items():
            apply_write(data, cards[w.task_id], fields, f, value)
            n += 1
        if i % every == 0:
            save()
    save()
    return n


def current_write(conn: LocalConnector, writes: list[TaskWrite]) -> int:
    results = list(conn.write(writes))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return sum(len(w.values) for w in writes)


def make_writes(conn: LocalConnector) -> list[TaskWrite]:
    snap = conn.read()
    members = [m.id for m in snap.members]
    options = list(snap.priority_options)
    writes = []
    for i, t in enumerate(snap.tasks):
        owner = (members[i % len(members)],)
        if owner == t.assignees:
            owner = (members[(i + 1) % len(members)],)
        prio = options[i % len(options)]
        if prio == t.priority:
            prio = options[(i + 1) % len(options)]
        values: dict[Field, FieldValue] = {Field.ASSIGNEES: owner, Field.PRIORITY: prio}
        writes.append(TaskWrite(t.id, values, {Field.ASSIGNEES: t.assignees, Field.PRIORITY: t.priority}))
    return writes


def board_copy(template: Path, dest: Path, compact: bool) -> LocalConnector:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest)
    if compact:
        board = dest / "board.json"
        board.write_text(json.dumps(json.loads(board.read_text(encoding="utf-8")), separators=(",", ":")))
    return LocalConnector(load_settings(dest / "tasksync.toml"))


def measure(
    template: Path, work: Path, compact: bool, fn: Callable[[LocalConnector, list[TaskWrite]], int], trials: int
) -> float:
    rates = []
    for _ in range(trials):
        conn = board_copy(template, work, compact)
        writes = make_writes(conn)
        t0 = time.perf_counter()
        n = fn(conn, writes)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--scales", default="1,10")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-local-"))
    rows: list[tuple[Any, ...]] = []
    try:
        for scale in (int(x) for x in args.scales.split(",")):
            template = generate(root / f"t{scale}", seed=5, cards=320 * scale).parent
            cards = len(json.loads((template / "board.json").read_text(encoding="utf-8"))["cards"])
            base = measure(template, root / "w", False, baseline_write, args.trials)
            indented = measure(template, root / "w", False, current_write, args.trials)
            compact = measure(template, root / "w", True, current_write, args.trials)
            rows.append((f"{scale}x", cards, base, indented, compact))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"local apply, field changes per second (median of {args.trials} trials; baseline measured in this run)")
    print(f"{'scale':>5} {'cards':>6} {'baseline':>10} {'indented':>10} {'ratio':>6} {'compact':>10} {'ratio':>6}")
    for scale, cards, base, ind, comp in rows:
        ratios = f"{ind:>10,.0f} {ind / base:>5.1f}x {comp:>10,.0f} {comp / base:>5.1f}x"
        print(f"{scale:>5} {cards:>6} {base:>10,.0f} {ratios}")


if __name__ == "__main__":
    main()
