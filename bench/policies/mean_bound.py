"""A bound on the optimal policy's optimum by branching on the value band's mean.

Bench-only. With a value band the compact programme (:mod:`tasksync.policies.optimal.programme`)
has one column that couples every rep: the mean expected value ``M`` the bands sit around. In any
relaxation a rep's expected value may sit anywhere in a band around a mean that is itself free,
which is what keeps the exact solve's bound (and the set-partitioning one, :mod:`dw_bound`) loose.
Here the mean is branched on by hand, and HiGHS's own branch-and-cut does the rest:

1. The range of the mean any division at least as good as a given one (``start``) can have: the
   compact LP with the row "objective ≥ the start's", minimising and then maximising ``M``. The LP
   holds every division, so the optimum's mean lies in that range.
2. The range is split into ``intervals`` equal intervals; in each, the whole MILP with ``M``
   bounded to the interval, solved by HiGHS under deterministic work limits (a node limit and a
   simplex iteration limit, never the clock), with the start's objective as the cutoff (nothing
   worse is searched) and the start itself as the first incumbent where its mean lies in the
   interval. With the mean pinned to a narrow interval the band rows are knapsack-like rows per
   rep, which HiGHS closes the way it closes the count band.
3. The bound is the largest of the intervals' proven dual bounds (the optimum's mean lies in one
   of them); an interval whose bound is at or below the start's objective is closed. Then up to
   ``refine`` times the open interval with the highest bound is split in two and both halves are
   solved again (their bounds replace it).

The bound is on the compact programme's objective, which is :meth:`Model.objective` for any
division that leaves no group unassigned and no rep above a capacity (as the exact reference's).
Any better division an interval finds is kept (``best``, ``best_choice``): it means the policy's
search, not the bound, is what to improve. No clock anywhere: the same book gives the same bound.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize._highspy._core import (
    HighsSolution,
    ObjSense,
)

from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.neighbourhood import highs_for
from tasksync.policies.optimal.programme import Programme, build_programme

__all__ = ["Interval", "MeanBound", "Whole", "highs_for", "mean_bound", "whole_programme"]


@dataclass
class Whole:
    """The whole model as one programme (every movable group at once, the held ones as constants),
    and a division ``start`` as a vector of its columns."""

    prog: Programme
    held: float  # objective of the held groups: objective = held − c·x
    movers: np.ndarray
    start_x: np.ndarray  # the start's x and u columns (the slacks left at 0: HiGHS completes them)
    start_mean: float  # the start's mean expected value


def whole_programme(m: Model, start: np.ndarray, held: bool = False) -> Whole:
    """The compact programme over every movable group, with the mean as a column, and ``start``
    (rep index per group, -1: unassigned) as its x and u columns. ``held``: every penalised slack
    (the count and value bands', the capacities') bounded at 0, so the programme holds only the
    divisions inside both bands and the capacities (the "bands held" objective)."""
    movers = [g for g in range(len(m.groups)) if not m.held[g]]
    base = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    fixed_value = sum(m.net(g, int(base[g])) for g in range(len(m.groups)) if m.held[g])
    prog = build_programme(m, movers, m.loads_for(base, skip=set(movers)), True)
    mv = np.array(movers, dtype=np.int64)
    if held:  # the slacks are the columns after x and u with a cost (M and E_r cost nothing)
        slack = prog.n_x + len(movers) + np.flatnonzero(prog.c[prog.n_x + len(movers) :] > 0)
        prog.bounds.ub[slack] = 0.0
    x = np.zeros(len(prog.c))
    x[: prog.n_x] = start[mv[prog.group]] == prog.rep
    x[prog.n_x : prog.n_x + len(movers)] = start[mv] < 0
    mean = float(m.loads_for(start)[2].mean()) if len(m.reps) else 0.0
    return Whole(prog, float(fixed_value), mv, x, mean)


@dataclass
class Interval:
    """One interval of the mean and what the MILP restricted to it proved."""

    lo: float
    hi: float
    bound: float  # the optimum over divisions with their mean in [lo, hi] is at most this
    best: float | None  # the best objective found there (None: nothing at least as good as the start)
    status: str  # HiGHS's model status ("Optimal", "Infeasible": nothing beats the cutoff, ...)
    nodes: int
    iterations: int
    choice: np.ndarray | None = None  # the best division found there, rep index per group

    @property
    def closed(self) -> bool:
        """Solved to the end: its bound is exact (or nothing in it beats the cutoff)."""
        return self.status in ("Optimal", "Infeasible")


@dataclass
class MeanBound:
    """The bound on the compact objective (maximised, same scale as :meth:`Model.objective`) and
    how it was found."""

    bound: float
    start: float  # the start's objective (as the programme prices it)
    best: float  # the best objective found (≥ start)
    best_choice: np.ndarray | None  # a division better than the start, when one was found
    mean_range: tuple[float, float]  # the mean of any division at least as good as the start
    start_mean: float
    intervals: list[Interval] = field(default_factory=list)  # the final partition, by mean
    solves: int = 0  # MILPs solved (each under the work limits)
    nodes: int = 0  # branch-and-bound nodes over all of them
    iterations: int = 0  # simplex iterations over all of them (and the range LPs)


def mean_range(w: Whole, cutoff: float, iterations: int | None = None) -> tuple[float, float, int]:
    """The least and the greatest mean over the LP relaxation restricted to c·x ≤ ``cutoff``
    (at most ``iterations`` simplex iterations each; None: no limit), and the iterations used."""
    prog = w.prog
    assert prog.mean_col is not None
    out = []
    used = 0
    options: dict[str, float | int | bool | str] = {} if iterations is None else {"simplex_iteration_limit": iterations}
    for sense in (ObjSense.kMinimize, ObjSense.kMaximize):
        h = highs_for(prog, False, options)
        nz = np.flatnonzero(prog.c)
        h.addRow(-np.inf, cutoff, len(nz), nz.astype(np.int32), prog.c[nz])
        cost = np.zeros(len(prog.c))
        cost[prog.mean_col] = 1.0
        h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        h.changeObjectiveSense(sense)
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        used += int(h.getInfo().simplex_iteration_count)
        if status != "Optimal":
            raise RuntimeError(f"the range of the mean: LP {status}")
        out.append(float(h.getSolution().col_value[prog.mean_col]))
    return out[0], out[1], used


def _solve_interval(m: Model, w: Whole, lo: float, hi: float, cutoff: float, nodes: int, iterations: int) -> Interval:
    prog = w.prog
    assert prog.mean_col is not None
    h = highs_for(
        prog,
        True,
        {
            "mip_max_nodes": nodes,
            "simplex_iteration_limit": iterations,
            "mip_rel_gap": 1e-6,
            "objective_bound": cutoff,
        },
    )
    h.changeColBounds(prog.mean_col, lo, hi)
    if lo - 1e-9 <= w.start_mean <= hi + 1e-9:
        sol = HighsSolution()
        sol.col_value, sol.value_valid = list(w.start_x), True
        h.setSolution(sol)
    h.run()
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    start_value = w.held - cutoff
    found = info.primal_solution_status >= 2 and status != "Infeasible"
    best = w.held - float(info.objective_function_value) if found else None
    # Infeasible: nothing in the interval beats the cutoff (the start).
    bound = start_value if status == "Infeasible" else w.held - float(info.mip_dual_bound)
    choice = None
    if best is not None and best > start_value:
        col = np.asarray(h.getSolution().col_value)
        choice = np.full(len(m.groups), -1, dtype=np.int64)
        on = col[: prog.n_x] > 0.5
        choice[w.movers[prog.group[on]]] = prog.rep[on]
        base = np.array([int(c[0]) if hd else -1 for c, hd in zip(m.cand, m.held, strict=True)], dtype=np.int64)
        held = np.array(m.held, dtype=bool)
        choice[held] = base[held]
    nodes_used, iterations_used = int(info.mip_node_count), int(info.simplex_iteration_count)
    return Interval(lo, hi, max(bound, start_value), best, status, nodes_used, iterations_used, choice)


def mean_bound(
    m: Model,
    start: np.ndarray,
    *,
    intervals: int = 4,
    refine: int = 2,
    nodes: int = 20,
    iterations: int = 200_000,
    held: bool = False,
) -> MeanBound | None:
    """Bound the optimum of ``m`` by branching on the value band's mean (see the module's text),
    from the division ``start`` (rep index per group, -1: unassigned): ``intervals`` first
    intervals, then up to ``refine`` splits of the open interval with the highest bound, each MILP
    limited to ``nodes`` branch-and-bound nodes and ``iterations`` simplex iterations; ``held``:
    over the divisions inside both bands and the capacities only (``start`` must be one). None
    when the model has no value band (no mean to branch on)."""
    w = whole_programme(m, start, held)
    if w.prog.mean_col is None:
        return None
    cutoff = float(w.prog.c @ _completed(w))
    start_value = w.held - cutoff
    lo, hi, used = mean_range(w, cutoff + 1e-9 * max(abs(cutoff), 1.0), iterations)
    pad = 1e-7 * max(abs(hi), 1.0)
    lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, intervals + 1)
    res = MeanBound(start_value, start_value, start_value, None, (lo, hi), w.start_mean, iterations=used)

    def solve(a: float, b: float) -> Interval:
        iv = _solve_interval(m, w, a, b, cutoff, nodes, iterations)
        res.solves += 1
        res.nodes += iv.nodes
        res.iterations += iv.iterations
        if iv.best is not None and iv.best > res.best + 1e-9 * max(abs(res.best), 1.0):
            res.best, res.best_choice = iv.best, iv.choice
        return iv

    parts = [solve(float(a), float(b)) for a, b in itertools.pairwise(edges)]
    for _ in range(refine):
        open_ = [k for k, iv in enumerate(parts) if not iv.closed and iv.bound > res.best]
        if not open_:
            break
        k = max(open_, key=lambda j: (parts[j].bound, -j))
        iv = parts[k]
        mid = 0.5 * (iv.lo + iv.hi)
        parts[k : k + 1] = [solve(iv.lo, mid), solve(mid, iv.hi)]
    res.intervals = parts
    res.bound = max(max(iv.bound for iv in parts), res.best)
    return res


def _completed(w: Whole) -> np.ndarray:
    """The start's full column vector: its x and u columns, and the least slacks and the mean
    they imply (an LP with those columns fixed)."""
    prog = w.prog
    n_fix = prog.n_x + len(w.movers)
    h = highs_for(prog, False, {})
    idx = np.arange(n_fix, dtype=np.int32)
    h.changeColsBounds(n_fix, idx, w.start_x[:n_fix], w.start_x[:n_fix])
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        raise RuntimeError(f"the start division: LP {status}")
    return np.asarray(h.getSolution().col_value)
