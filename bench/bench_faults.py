"""The long fault matrix: every journal step killed, every board save failing, lost answers on
three connectors, Trello answers dropped after the write landed, a locked state store.

Each trial runs the fault on a copy of one planned example board, lets the next writer finish, and
counts against the same plan applied without faults:

- lost: cards whose owner, priority or list differ from the uninterrupted run (or missing cards);
- duplicated: cards created twice for one CRM record;
- false conflicts: conflicts the next plan reports (no person touched the board);
- bad errors: a faulty run that did not end with its documented exit code and one stderr line.

The short version of this matrix runs in the tests (tests/test_faults.py).

    PYTHONPATH=src python bench/bench_faults.py [--cards 60] [--every 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasksync.cli import main as cli
from tasksync.connectors.base import Connector
from tasksync.connectors.local import LocalConnector
from tasksync.examples import TODAY, generate
from tasksync.model import Snapshot
from tasksync.settings import Settings, load_settings
from tasksync.sync.workspace import Workspace
from tasksync.testing.boards import LostAnswers, fake_trello_board
from tasksync.testing.boards import end_state as board_state
from tasksync.testing.fake_trello import FakeTrello

SRC = str(Path(__file__).parents[1] / "src")


@dataclass
class Tally:
    trials: int = 0
    lost: int = 0
    duplicated: int = 0
    false_conflicts: int = 0
    bad_errors: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0


def end_state(snap: Snapshot) -> Counter[tuple[Any, ...]]:
    """What a person sees on the board (:func:`tasksync.testing.boards.end_state`), as a multiset."""
    return Counter(board_state(snap))


def quiet(*argv: str) -> int:
    with Path(os.devnull).open("w") as null:
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = null
        try:
            return cli(["--no-color", *argv])
        finally:
            sys.stdout, sys.stderr = out, err


def score(tally: Tally, ws: Workspace, expected: Counter[tuple[Any, ...]]) -> None:
    """Count what the finished board lost, duplicated and falsely reports as a person's."""
    snap = ws.connector.read()
    got = end_state(snap)
    tally.lost += sum((expected - got).values())
    markers = Counter(t.crm_ref for t in snap.tasks if "[tasksync:" in t.description)
    tally.duplicated += sum(n - 1 for n in markers.values() if n > 1)
    again = ws.plan(save=False).plan
    tally.false_conflicts += len(again.conflicts)
    tally.lost += len(again.changes) + len(again.creates)  # anything still to write was not written


def faulty(config: Path, *fault: str, command: tuple[str, ...] = ("apply",)) -> subprocess.CompletedProcess[str]:
    cli = ["--no-color", "-c", str(config), *command]
    cmd = [sys.executable, "-m", "tasksync.testing.faults", *fault, "--", *cli]
    env = {**os.environ, "PYTHONPATH": SRC, "TASKSYNC_LOCK_WAIT": "0.5"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)


def one_line(err: str) -> bool:
    text = err.strip()
    return len(text.splitlines()) == 1 and "Traceback" not in text


class Template:
    """A planned copy of the example, and what applying it without faults gives."""

    def __init__(self, root: Path, cards: int) -> None:
        self.root = root
        self._n = 0
        self.config = generate(root / "template", cards=cards)
        assert quiet("-c", str(self.config), "plan", "--today", TODAY.isoformat()) == 0
        clean = self.copy("clean")
        assert quiet("-c", str(clean), "apply") == 0
        with Workspace(load_settings(clean), today=TODAY) as ws:
            self.expected = end_state(ws.connector.read())
            plan, _ = ws.store.load_plan(ws.store.plans()[0].id)
        with Workspace(load_settings(self.config), today=TODAY) as ws:
            self.before = end_state(ws.connector.read())
        self.applied = clean
        self.plan_id = plan.id
        self.steps = len(plan.writes()) + len(plan.creates)

    def copy(self, name: str | None = None, source: Path | None = None) -> Path:
        self._n += 1
        dest = self.root / (name or f"trial{self._n}")
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree((source or self.config).parent, dest)
        return dest / "tasksync.toml"

    def finish(self, tally: Tally, config: Path) -> None:
        """The next writer: `apply` resumes; then score."""
        if quiet("-c", str(config), "apply") != 0:
            tally.bad_errors += 1
        with Workspace(load_settings(config), today=TODAY) as ws:
            score(tally, ws, self.expected)
        shutil.rmtree(config.parent, ignore_errors=True)


def kill_matrix(t: Template, every: int) -> Tally:
    tally = Tally()
    for step in range(1, t.steps + 1, every):
        start = time.perf_counter()
        config = t.copy()
        res = faulty(config, "--kill-at", str(step))
        tally.codes[res.returncode] += 1
        if res.returncode != -9:
            tally.bad_errors += 1
        t.finish(tally, config)
        tally.trials += 1
        tally.seconds += time.perf_counter() - start
    return tally


def undo_kill_matrix(t: Template, every: int) -> Tally:
    """Kill -9 an undo at each journal step; the next `apply` finishes it: the board is back as
    before the plan, the plan is undone, and undoing it again is refused (exit 4)."""
    tally = Tally()
    step = 1
    while True:
        start = time.perf_counter()
        config = t.copy(source=t.applied)
        res = faulty(config, "--kill-at", str(step), command=("undo", t.plan_id))
        tally.codes[res.returncode] += 1
        if res.returncode == 0:
            shutil.rmtree(config.parent, ignore_errors=True)
            break  # past the undo's last step
        if res.returncode != -9:
            tally.bad_errors += 1
        if quiet("-c", str(config), "apply") != 0 or quiet("-c", str(config), "undo", t.plan_id) != 4:
            tally.bad_errors += 1
        with Workspace(load_settings(config), today=TODAY) as ws:
            got = end_state(ws.connector.read())
            tally.lost += sum((t.before - got).values()) + sum((got - t.before).values())
            tally.false_conflicts += len(ws.plan(save=False).plan.conflicts)
        shutil.rmtree(config.parent, ignore_errors=True)
        tally.trials += 1
        tally.seconds += time.perf_counter() - start
        step += every
    return tally


def disk_full_matrix(t: Template) -> Tally:
    tally = Tally()
    for save in range(1, 12):
        start = time.perf_counter()
        config = t.copy()
        res = faulty(config, "--disk-full-at", str(save))
        tally.codes[res.returncode] += 1
        if res.returncode == 0:
            shutil.rmtree(config.parent, ignore_errors=True)
            break  # fewer saves than this: the matrix is complete
        if res.returncode != 1 or not one_line(res.stderr) or "No space left" not in res.stderr:
            tally.bad_errors += 1
        t.finish(tally, config)
        tally.trials += 1
        tally.seconds += time.perf_counter() - start
    return tally


def locked_store(t: Template) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    config = t.copy()
    holder = sqlite3.connect(config.parent / ".tasksync" / "state.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        res = faulty(config)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    tally.codes[res.returncode] += 1
    if res.returncode != 7 or not one_line(res.stderr):
        tally.bad_errors += 1
    t.finish(tally, config)
    tally.trials += 1
    tally.seconds += time.perf_counter() - start
    return tally


def on_fake_trello(stack: ExitStack, folder: Path, cards: int) -> tuple[Settings, Callable[[], Connector], FakeTrello]:
    return fake_trello_board(stack, folder, cards=cards, attempts=2)


def lost_answers(root: Path, cards: int, backend: str, every: int) -> Tally:
    """Lost answers on the local board or the fake Trello; expected: the same board without faults."""
    tally = Tally()
    start = time.perf_counter()
    with ExitStack() as stack:
        boards = []
        for name in ("clean", "lossy"):
            folder = root / f"{backend}-{every}-{name}"
            if backend == "local":
                s = load_settings(generate(folder, cards=cards))
                boards.append((s, lambda s=s: LocalConnector(s)))
            else:
                s, connect, _ = on_fake_trello(stack, folder, cards)
                boards.append((s, connect))
        (s1, c1), (s2, c2) = boards
        with Workspace(s1, c1(), today=TODAY) as ws:
            ws.plan()
            ws.apply()
            expected = end_state(ws.connector.read())
        with Workspace(s2, LostAnswers(c2(), every), today=TODAY) as ws:  # type: ignore[arg-type]
            ws.plan()
            _, outcome = ws.apply()
            tally.codes[len(outcome.unknown)] += 1
        with Workspace(s2, c2(), today=TODAY) as ws:
            ws.pending_resume()
            score(tally, ws, expected)
    tally.trials += 1
    tally.seconds += time.perf_counter() - start
    return tally


def dropped_after_put(root: Path, cards: int, drops: int) -> Tally:
    """The fake Trello applies ``drops`` PUTs and drops each answer on every attempt."""
    tally = Tally()
    start = time.perf_counter()
    with ExitStack() as stack:
        s, connect, fake = on_fake_trello(stack, root / f"drop-{drops}", cards)
        with Workspace(s, connect(), today=TODAY) as ws:
            plan = ws.plan().plan
            targets = list(dict.fromkeys(c.task_id for c in plan.changes))[:drops]
            for tid in targets:
                fake.fail_next("PUT", f"/cards/{tid}", "drop_after", times=20)
            _, outcome = ws.apply()
            tally.codes[len(outcome.failed)] += 1
            again = ws.plan().plan  # the next run: what did not land is written again, nothing is a person's
            tally.false_conflicts += len(again.conflicts)
            if not again.empty:
                ws.apply()
            final = ws.plan(save=False).plan
            tally.lost += len(final.changes) + len(final.creates)
    tally.trials += 1
    tally.seconds += time.perf_counter() - start
    return tally


def add(total: Tally, part: Tally) -> Tally:
    total.trials += part.trials
    total.lost += part.lost
    total.duplicated += part.duplicated
    total.false_conflicts += part.false_conflicts
    total.bad_errors += part.bad_errors
    total.codes.update(part.codes)
    total.seconds += part.seconds
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=60, help="cards on the example board")
    ap.add_argument("--every", type=int, default=1, help="kill at every N-th journal step")
    ap.add_argument("--quick", action="store_true", help="a few trials per row (a smoke run)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    rows: list[tuple[str, Tally]] = []
    try:
        t = Template(root, args.cards)
        every = max(args.every, t.steps // 4) if args.quick else args.every
        rows.append((f"kill -9 at journal steps (of {t.steps})", kill_matrix(t, every)))
        rows.append(("kill -9 during undo, at each step", undo_kill_matrix(t, every)))
        rows.append(("disk full at each board save", disk_full_matrix(t)))
        rows.append(("state store locked", locked_store(t)))
        for backend in ("local", "trello"):
            lossy = Tally()
            for n in (1, 2, 3) if not args.quick else (2,):
                add(lossy, lost_answers(root, args.cards, backend, n))
            rows.append((f"answers lost ({backend})", lossy))
        drops = Tally()
        for n in (1, 5, 20) if not args.quick else (3,):
            add(drops, dropped_after_put(root, args.cards, n))
        rows.append(("Trello answer dropped after PUT", drops))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"fault matrix on the example board ({args.cards} cards); each trial against the same plan without faults")
    head = f"{'scenario':38} {'trials':>6} {'lost':>5} {'dup':>4} {'false conf':>10} {'bad errors':>10} {'s':>6}"
    print(head)
    total = Tally()
    for name, tally in rows:
        add(total, tally)
        print(
            f"{name:38} {tally.trials:>6} {tally.lost:>5} {tally.duplicated:>4} {tally.false_conflicts:>10} "
            f"{tally.bad_errors:>10} {tally.seconds:>6.0f}"
        )
    print(
        f"{'total':38} {total.trials:>6} {total.lost:>5} {total.duplicated:>4} {total.false_conflicts:>10} "
        f"{total.bad_errors:>10} {total.seconds:>6.0f}"
    )


if __name__ == "__main__":
    main()
