"""Where the optimal policy's first LP spends its time on the 10k books: the seed, or the proof.

The first LP of a whole-book division (:func:`tasksync.policies.optimal.solve.solve_lp`) is solved
by column generation from a seed of columns. This bench builds the model and programme of the
policy's first pass on a seeded book and solves that LP three ways, each to the same optimum
(pricing runs until no column prices in):

* from the policy's own seed (each group's owner column, its column in a greedy division, and the
  Lagrangian picks), as the policy does; then again, each HiGHS run traced (the first restricted
  LP's and each pricing round's CPU seconds, pivots and columns), with how far the first restricted
  LP's objective falls short of the optimum's;
* from the LP's own optimal support (each group's column(s) in the answer of the first solve),
  with the programme's bounds ``x ≤ 1``, ``u ≤ 1``;
* from that same support with those bounds dropped (they are implied by each group's row
  ``Σ x + u = 1`` and ``x, u ≥ 0``).

It also counts how many of the movable groups share a shape (the same candidate reps and the
same net score and expected value per card, to two significant digits): the number of groups an
LP over an aggregated book would keep.

    python bench/policies/bench_lp_seed.py [--kinds synthetic real-shaped] [--cards 10000]
        [--reps 100] [--seed 1] [--highs OPTION=VALUE ...] [--repeat N]

``--highs`` solves the LP from the policy's seed again, ``--repeat`` times, with those HiGHS
options set on the column generation's solver (``simplex_strategy=3 threads=2
simplex_max_concurrency=2``: HiGHS's parallel dual simplex), printing CPU and wall seconds of each
run and whether its answer (primal values and row duals, to the bit) is the serial run's: the same
optimal vertex, hence the same rounding and plan.

CPU seconds are process time. Measured on the 10k/100 books (seed 1; 2 cores shared with other
jobs): from the policy's seed 2.6 s (real-shaped) and 0.9 s (synthetic), 5 pricing rounds each;
from the optimal support with the bounds kept 1.3 s and 0.8 s (the pricing rounds chase
degenerate duals: the objective does not move); with them dropped 0.06 s, 0 and 1 pricing rounds.
Those were measured before ``solve_lp`` priced with tight group duals (a group whose column sits at
its bound 1 gets the dual that makes its reduced cost 0); with them, from the support with the
bounds kept, the real-shaped LP is proved optimal at once (0.04 s, no pricing round) and from the
policy's seed it takes 2.1 s.
Every movable group had a shape of its own (6,071 of 6,071 and 3,693 of 3,693).
Traced in a later session (seed 1, load 3–9): the real-shaped LP 2.5 s, its first restricted LP 2.0%
short of the optimum's objective, 0.34 s and 5,206 pivots, then rounds of 1.09, 0.52, 0.31, 0.11 and
0.06 s (5,196, 1,628, 573, 109 and 36 pivots); the synthetic one 1.0 s, its first LP 19.4% short
(2.5% with each rep's 10 columns of highest expected value added to the seed: it lacked columns
that fill the value band), 0.23 s, then 0.37, 0.20, 0.07, 0.03 and 0.03 s.
With ``--highs`` in a later session (seed 1, 2 cores shared with three other engineers' jobs, load
2.7-6): serially the real-shaped LP 2.3-2.5 s CPU and 3.4-5.0 s wall; parallel (PAMI, strategy 3,
two threads) 5.5 s CPU and 3.5 s wall at load 2.7, then 13-51 s CPU and 15-88 s wall as the load
rose (HiGHS's threads wait for each other on a machine with no free core), on another vertex (the
same one in all 5 runs); ``simplex_strategy=2`` (SIP) kept the serial vertex but took 11.8-15.7 s
CPU and 14.9-18.8 s wall; the synthetic LP 0.99 s CPU and 1.6 s wall serially, 8.4-13 s CPU and
15-29 s wall with PAMI (another vertex, the same in 3 runs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import Bounds

from tasksync.policies.model_eval import real_shaped_book, synthetic_book
from tasksync.policies.optimal import fit_model
from tasksync.policies.optimal import solve as S
from tasksync.policies.optimal.dual import lagrangian_columns
from tasksync.policies.optimal.model import Model, build_model
from tasksync.policies.optimal.programme import Programme, build_programme
from tasksync.policies.optimal.repair import greedy
from tasksync.settings import PolicySettings


def first_programme(kind: str, cards: int, reps: int, seed: int) -> tuple[Model, list[int], Programme, np.ndarray]:
    """The policy's first-pass model and LP programme on a seeded book, and its seed columns."""
    book = (synthetic_book if kind == "synthetic" else real_shaped_book)(cards, reps, seed)
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    choice = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = [gi for gi in range(len(m.groups)) if not m.held[gi]]
    fixed = m.loads_for(choice, skip=set(movers))
    prog = build_programme(m, movers, fixed, False)
    start = choice.copy()
    start[movers] = -1
    greedy(movers, m, start, m.loads_for(start, skip=set(movers)))
    seed_cols = S.seed_columns(m, movers, prog, start) | lagrangian_columns(m, movers, prog, fixed)
    return m, movers, prog, seed_cols


@dataclass
class Run:
    """One HiGHS run of a column-generation LP: the first restricted LP or a pricing round's."""

    seconds: float  # CPU
    pivots: int  # simplex iterations
    columns: int  # in the restricted LP
    objective: float  # minimised


def traced_lp(prog: Programme, seed: np.ndarray) -> list[Run]:
    """Each HiGHS run of the LP from ``seed`` (the solver's own run, traced from outside)."""
    runs: list[Run] = []
    rerun = S._rerun

    def traced(h: S._Highs, limits: S.Limits, started: float) -> None:
        t = time.process_time()
        rerun(h, limits, started)
        info = h.getInfo()
        runs.append(
            Run(time.process_time() - t, info.simplex_iteration_count, h.getNumCol(), info.objective_function_value)
        )

    S._rerun = traced
    try:
        S.solve_lp(prog, seed, S.Limits(), time.perf_counter())
    finally:
        S._rerun = rerun
    return runs


def timed_lp(prog: Programme, seed: np.ndarray) -> tuple[float, float, int, np.ndarray]:
    """CPU seconds, objective (minimised), pricing rounds and answer of the LP from ``seed``."""
    t = time.process_time()
    res, _, rounds = S.solve_lp(prog, seed, S.Limits(), time.perf_counter())
    assert res.x is not None, res.message
    return time.process_time() - t, float(res.fun), rounds, np.asarray(res.x)


def with_options(prog: Programme, seed: np.ndarray, options: dict[str, str]) -> tuple[float, float, bytes | None, str]:
    """CPU and wall seconds of the LP from ``seed`` with HiGHS ``options`` (name to value, as text)
    set before each run, its answer's bytes (primal values, then row duals; None when HiGHS did not
    reach an optimum) and HiGHS's status. A name HiGHS does not know, or a value it refuses, stops
    with a message naming it."""
    rerun = S._rerun

    def opted(h: S._Highs, limits: S.Limits, started: float) -> None:
        for key, text in options.items():
            known, now = h.getOptionValue(key)
            kind = type(now)
            value = text.lower() == "true" if kind is bool else kind(text)
            if known.name != "kOk" or h.setOptionValue(key, value).name != "kOk":
                raise SystemExit(f"--highs {key}={text}: HiGHS has no such option, or refuses that value")
        rerun(h, limits, started)

    S._rerun = opted
    S._Highs.resetGlobalScheduler(True)  # HiGHS's threads start with the first run after this
    try:
        t, w = time.process_time(), time.perf_counter()
        res, _, _ = S.solve_lp(prog, seed, S.Limits(), time.perf_counter())
        secs, wall = time.process_time() - t, time.perf_counter() - w
    finally:
        S._rerun = rerun
        S._Highs.resetGlobalScheduler(True)
    if res.x is None:
        return secs, wall, None, str(res.message)
    return secs, wall, np.asarray(res.x).tobytes() + np.asarray(res.row_dual).tobytes(), str(res.message)


def shapes(m: Model, movers: list[int]) -> int:
    """Distinct (candidate reps, net score and expected value per card to 2 significant digits)."""

    def sig2(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.floor(np.log10(np.abs(v)))
            return np.where(v == 0, 0.0, np.round(v / 10**e, 1) * 10**e)

    keys = {
        (
            tuple(m.cand[g].tolist()),
            tuple(sig2((m.score[g] - m.move[g]) / m.count[g]).tolist()),
            tuple(sig2(m.ev[g] / m.count[g]).tolist()),
        )
        for g in movers
    }
    return len(keys)


def main() -> None:
    """Per book: its groups and shapes, then one line per solve of its first LP."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["synthetic", "real-shaped"])
    ap.add_argument("--cards", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--highs", nargs="+", default=[], metavar="OPTION=VALUE")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    options = dict(o.split("=", 1) for o in a.highs)
    for kind in a.kinds:
        m, movers, prog, seed_cols = first_programme(kind, a.cards, a.reps, a.seed)
        print(
            f"{kind} {a.cards}/{a.reps}: {len(movers)} movable groups, {prog.n_x} candidate pairs, "
            f"{shapes(m, movers)} distinct group shapes"
        )
        secs, best, rounds, x = timed_lp(prog, seed_cols)
        print(f"  policy's seed ({int(seed_cols.sum())} columns): {secs:.2f} s CPU, {rounds} pricing rounds")
        if options:
            _, wall, serial, _ = with_options(prog, seed_cols, {})
            print(f"    serial again: {wall:.2f} s wall; with {' '.join(a.highs)}:")
            for _ in range(a.repeat):
                secs, wall, answer, status = with_options(prog, seed_cols, options)
                same = "the same vertex" if answer == serial else "another vertex"
                print(f"    {secs:.2f} s CPU, {wall:.2f} s wall, {same if answer else status}")
        runs = traced_lp(prog, seed_cols)
        gap = (runs[0].objective - best) / max(abs(best), 1.0)
        print(f"    the first restricted LP {gap:.2%} short of the optimum's objective; each HiGHS run:")
        for k, r in enumerate(runs):
            label = "first LP" if k == 0 else f"round {k}"
            print(f"    {label}: {r.seconds:.2f} s CPU, {r.pivots:,} pivots, {r.columns:,} columns")
        support = x[: prog.n_x] > 1e-9
        ub = prog.bounds.ub.copy()
        ub[: prog.n_x + len(movers)] = np.inf
        free = replace(prog, bounds=Bounds(prog.bounds.lb, ub))
        for label, pr in (("optimal support, x, u <= 1", prog), ("optimal support, bounds dropped", free)):
            secs, obj, rounds, _ = timed_lp(pr, support.copy())
            rel = abs(obj - best) / max(abs(best), 1.0)
            print(
                f"  {label} ({int(support.sum())} columns): {secs:.2f} s CPU, {rounds} pricing rounds, "
                f"objective {rel:.1e} from the first"
            )


if __name__ == "__main__":
    main()
