"""A big book's round of blocks solved in this process or in worker processes (:meth:`.OptimalPolicy.divide_blocks`):
each block's division, the key that says a block need not be solved again, and a block's model
with today's cards."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from tasksync.policies.book import Book, WorkItem
from tasksync.policies.optimal.blocks import Split, slim
from tasksync.policies.optimal.model import Group, Model, Team
from tasksync.policies.scoring import WinModel
from tasksync.settings import PolicySettings

if TYPE_CHECKING:
    from tasksync.policies.optimal import OptimalPolicy

__all__ = ["POOL_MIN_CARDS", "BlockDivision", "BlockSolver", "as_today", "block_key", "block_workers"]

# A round's blocks may be solved in up to ``[policy] workers`` processes (fewer on fewer cores; each
# holds one block's model, about 200 MiB at 10k cards) when they hold at least POOL_MIN_CARDS
# cards. One by default: sending the sub-books and their models between processes cost 22 s of
# CPU on the synthetic 100k book (33 s in the parent instead of 11 s, 76 s in two workers), which
# more than two free cores are needed to win back in wall time.
POOL_MIN_CARDS = 20_000


@dataclass
class BlockDivision:
    """One block's division in a round of :meth:`.OptimalPolicy.divide_blocks`."""

    model: Model
    choice: np.ndarray
    notes: list[str]
    status: str
    variables: int


def as_today(
    m: Model, choice: np.ndarray, items: Mapping[str, WorkItem], owners: Mapping[str, str]
) -> tuple[Model, np.ndarray]:
    """A block's model of a later round (the book as earlier rounds leave it) with today's cards,
    and its division: a group it left where it was goes to the rep the earlier rounds gave it."""
    groups = [Group(g.key, [items[i.key] for i in g.items], g.owner, g.pinned) for g in m.groups]
    ridx = {r: k for k, r in enumerate(m.reps)}
    choice = choice.copy()
    for gi, g in enumerate(groups):
        reps = {owners.get(i.key) for i in g.items}
        if choice[gi] < 0 and len(reps) == 1:
            r = next(iter(reps))
            choice[gi] = ridx.get(r, -1) if r is not None else -1
    return replace(m, groups=groups), choice


def block_key(sub: Book, split: Split) -> tuple[object, ...]:
    """What a block's division depends on besides the policy and the win model: the centres, its
    reps and its cards with their owners (a block with the same key is not solved again)."""
    return (
        split.team.count_mean,
        split.team.ev_mean,
        tuple(r.id for r in sub.reps),
        tuple((i.key, i.owner) for i in sub.items),
    )


_WORKER: tuple[OptimalPolicy, PolicySettings, WinModel] | None = None  # in a worker process


def _start_worker(stay_tolerance: float, p: PolicySettings, wm: WinModel) -> None:
    global _WORKER
    from tasksync.policies.optimal import OptimalPolicy

    pol = OptimalPolicy()
    pol.stay_tolerance = stay_tolerance
    _WORKER = (pol, p, wm)


def _solve_in_worker(job: tuple[Book, Team, float, float]) -> tuple[BlockDivision, dict[str, float]]:
    assert _WORKER is not None
    pol, p, wm = _WORKER
    sub, team, value_band, stay_band = job
    from tasksync.policies.optimal import SolveInfo

    pol.info = SolveInfo()
    blk = pol.block(sub, p, wm, team, value_band, stay_band)
    return blk, pol.info.phases


def block_workers(jobs: int, workers: int) -> int:
    """Processes that solve ``jobs`` blocks at once: ``workers`` (``[policy] workers``) at most, no
    more than the cores this process may use; 1 (no pool) on one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(workers, cores, jobs))


class BlockSolver:
    """Solves the blocks of a round, in worker processes when there is enough work and more than
    one core. Each block's division depends only on its sub-book, the centres, the policy and the
    win model, never on the process that computed it, and the results are taken in block order:
    the plan is the same with any number of workers."""

    def __init__(self, pol: OptimalPolicy, p: PolicySettings, wm: WinModel) -> None:
        self.pol, self.p, self.wm = pol, p, wm
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BlockSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def solve(self, subs: list[Book], split: Split, of: list[Book] | None = None) -> list[BlockDivision]:
        """The divisions of ``subs`` around the centres of ``split``; in worker processes when the
        blocks ``of`` the round (``subs`` unless given) hold enough cards for more than one."""
        of = subs if of is None else of
        cards = sum(len(sub.items) for sub in of)
        workers = block_workers(len(of), self.p.workers)
        if workers < 2 or cards < POOL_MIN_CARDS:
            return [self.pol.block(sub, self.p, self.wm, split.team, split.value_band, split.stay_band) for sub in subs]
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.pol.stay_tolerance, self.p, self.wm),
            )
        jobs = [(slim(sub), split.team, split.value_band, split.stay_band) for sub in subs]
        out = []
        for blk, phases in self.pool.map(_solve_in_worker, jobs):
            for k, secs in phases.items():
                self.pol.info.phases[k] = self.pol.info.phases.get(k, 0.0) + secs
            out.append(blk)
        return out
