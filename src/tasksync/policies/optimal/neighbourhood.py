"""Exact re-divisions of several reps at once: the large-neighbourhood step at the end of the polish.

The pair polish (:mod:`.polish`) re-divides two reps at a time and its chains (:mod:`.exchange`)
move one account per rep along a path; a better division that differs from the current one in
many accounts spread over several reps is out of reach of both. This re-opens every movable group
a set of reps holds and solves the whole model's MILP over those groups between those reps
(:func:`.programme.build_programme`: the model's own objective, its capacities, every other rep's
load fixed, the value band's mean a column of the programme, so the objective is exactly the
model's). From a division inside both bands and the capacities every band and capacity slack is
bounded at 0: both bands are held exactly. HiGHS starts from the current division (its first
incumbent) and stops at a node and a simplex-iteration limit, never the clock. A re-division is
kept when the model's objective rises and both bands and the capacities hold at least as well (the
polish's rule, :func:`.polish.holds`).

The polish runs it once, over every rep (:func:`whole_book`), on books whose movable groups have
at most ``WHOLE_MAX`` (group, rep) columns: there the pairs and chains leave 0.1-4% of the
objective (the seeded books of 100-300 cards and 6-10 reps), which the MILP from their division
finds at ``WHOLE_NODES`` nodes. Above it the MILP's root alone costs seconds and finds nothing
within its limits (500 cards, 12 reps). From ``REDIVIDE_MIN`` columns the polish runs a few sets
of five reps at a time instead (:func:`redivide`, grown from the pairs' potential): 3 sets gain
0.00-0.02% for about 1-2 s CPU on the bench's 664-2,000-card books (20 sets about as much for
4-6 s). Not more: the polish leaves reps at both edges of the value band there, which pin its
mean, so that any re-division of some reps, the rest fixed, must leave the team's expected value
where it is (``bench/policies/bench_polish.py`` prints that room and measures :func:`redivide`).
From ``EDGE_MIN`` columns the polish then re-opens one edge of the value band with its interior
(:func:`reopen_edge`): the reps at the lower edge and the reps inside the band, in ``EDGE_PARTS``
sets, each group among its own rep and the few of the set its LP reduced cost ranks first, HiGHS at
1 node (its root's RENS): the lower edge leaves the band's edge, the interior takes the swing, and
the mean moves. On the 2,000-card bench book +0.15% for about 4 s of CPU.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize._highspy._core import (
    HighsLp,
    HighsModelStatus,
    HighsSolution,
    HighsSparseMatrix,
    HighsVarType,
    MatrixFormat,
    _Highs,
)
from scipy.sparse import csc_array

from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.native import quiet_solver
from tasksync.policies.optimal.programme import Programme, build_programme

__all__ = [
    "EDGE_CANDIDATES",
    "EDGE_MIN",
    "EDGE_PARTS",
    "NEIGHBOURHOODS",
    "NEIGHBOURHOOD_ITERATIONS",
    "NEIGHBOURHOOD_NODES",
    "NEIGHBOURHOOD_REPS",
    "REDIVIDE_MIN",
    "WHOLE_MAX",
    "WHOLE_NODES",
    "edge_sets",
    "movable_columns",
    "neighbourhoods",
    "redivide",
    "reduced_costs",
    "reopen_edge",
    "whole_book",
]

Options = dict[str, float | int | bool | str]  # HiGHS options by name

NEIGHBOURHOOD_REPS = 5  # reps re-divided at once
NEIGHBOURHOODS = 20  # neighbourhoods solved in all: a work limit
NEIGHBOURHOOD_NODES = 50  # HiGHS branch-and-bound nodes per neighbourhood
NEIGHBOURHOOD_ITERATIONS = 20_000  # HiGHS simplex iterations per neighbourhood
# The policy's step: the whole book at once when its movable groups have at most WHOLE_MAX
# (group, rep) columns, at WHOLE_NODES nodes. Measured on seeded books (100-300 cards, 6-10 reps,
# 228-880 columns): +0.12% to +1.4% objective for 0.6-2.1 s CPU at 30 nodes, the same at 100
# nodes; 1,836-2,088 columns (300-500 cards, 12 reps): +0.00% for 4-6 s.
WHOLE_MAX = 1_000
WHOLE_NODES = 30
# The polish's step on books of at least REDIVIDE_MIN columns: a few reps at a time (:func:`redivide`,
# :data:`.polish.POLISH_NEIGHBOURHOODS`). Measured: the bench's 664- and 2,000-card books (13,335
# and 25,700 columns) +0.024% and +0.020% objective, the 1,000-card one (6,774) unchanged, a seeded
# real-shaped 400/20 (4,680) +0.29%, each for about 1-3 s of CPU; on 10-12-rep books of 1,500-1,600
# columns (400-500 cards, the test suite's) +0.02-0.04% for 0.5-2 s more per decision: not run there.
REDIVIDE_MIN = 4_000
# Then the value band's lower edge with the band's interior (:func:`reopen_edge`): the reps at that
# edge and the reps inside the band, split in EDGE_PARTS sets, each re-divided at EDGE_NODES nodes
# with each group's EDGE_CANDIDATES reps of least LP reduced cost in the set (and its own).
# Measured on the 2,000-card bench book from the policy's division: +0.119% for 4.1 s CPU (the
# upper edge after it +0.048% more for 3.2 s; 4 sets instead of 2: +0.074%; the groups' best fit
# instead of the LP's reduced costs: +0.014%).
EDGE_MIN = 10_000  # movable (group, rep) columns from which the polish runs it
EDGE_PARTS = 2
EDGE_CANDIDATES = 6
EDGE_NODES = 1
EDGE = 0.005  # a rep within this much of its value band's edge (relative to its centre) is at it
# At 1 node HiGHS's root sub-MIP heuristic RENS finds the gains; its RINS (off) costs 1.1 s more
# for +0.004% there.
EDGE_OPTIONS: Options = {"mip_heuristic_run_rins": False}
LP_ITERATIONS = 200_000  # simplex iterations for the whole book's LP (its reduced costs)


def neighbourhoods(m: Model, choice: np.ndarray, free: np.ndarray, size: int) -> list[tuple[int, ...]]:
    """Sets of ``size`` reps (sorted), most promising first, one grown from each rep with any
    potential: the seed, then in turn the rep whose potential with the set is highest."""
    n_r = len(m.reps)
    size = min(size, n_r)
    g = np.flatnonzero(free & (choice >= 0))
    here = m.net_d[g, choice[g]]
    gain = np.where(np.isfinite(m.net_d[g]), np.maximum(m.net_d[g] - here[:, None], 0.0), 0.0)
    by = np.zeros((n_r, n_r))
    np.add.at(by, choice[g], gain)
    pot = by + by.T
    np.fill_diagonal(pot, 0.0)
    seeds = np.lexsort((np.arange(n_r), -pot.sum(axis=1)))
    out: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    for s in seeds.tolist():
        if pot[s].sum() <= 0:
            continue
        members = [s]
        link = pot[s].copy()
        link[s] = -np.inf
        while len(members) < size:
            r = int(np.argmax(link))  # ties: lowest index
            if not np.isfinite(link[r]):
                break
            members.append(r)
            link += pot[r]
            link[members] = -np.inf
        key = tuple(sorted(members))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def edge_sets(m: Model, choice: np.ndarray, parts: int = EDGE_PARTS) -> list[tuple[int, ...]]:
    """The reps at the value band's lower edge under ``choice`` and the reps inside the band,
    each split in ``parts`` (every ``parts``-th by index): ``parts`` sets of reps (sorted). None
    (an empty list) without a value band around the team's mean, or when no rep sits at its lower
    edge or at its upper one (the band's mean is then free to move)."""
    if not m.value_band or m.value_mean is not None or not len(m.reps):
        return []
    e = m.loads_for(choice)[2]
    on = m.weights() > 0
    ratio = np.where(on, e / np.maximum(m.value_centre(e), 1e-12), 1.0)
    lower = on & (ratio <= 1 - m.value_band + EDGE)
    upper = on & (ratio >= 1 + m.value_band - EDGE)
    if not lower.any() or not upper.any():
        return []
    low, inside = np.flatnonzero(lower), np.flatnonzero(on & ~lower & ~upper)
    sets = [tuple(sorted(np.r_[inside[k::parts], low[k::parts]].tolist())) for k in range(parts)]
    return [s for s in sets if len(s) > 1]


def reduced_costs(m: Model, choice: np.ndarray) -> np.ndarray | None:
    """Per (group, rep): the reduced cost of that column in the LP relaxation of the whole book's
    programme (every movable group among every candidate, :func:`.programme.build_programme`;
    ``inf`` where the rep is no candidate, or the group is held); None when HiGHS does not solve
    it within ``LP_ITERATIONS`` simplex iterations."""
    free = ~np.asarray(m.held, dtype=bool)
    movers = np.flatnonzero(free).tolist()
    prog = build_programme(m, movers, m.loads_for(choice, skip=set(movers)), False)
    with quiet_solver():
        h = highs_for(prog, False, {"simplex_iteration_limit": LP_ITERATIONS})
        h.run()
        solved = h.getModelStatus() == HighsModelStatus.kOptimal
        dual = np.asarray(h.getSolution().col_dual) if solved else None
    if dual is None:
        return None
    out = np.full(m.net_d.shape, np.inf)
    out[np.array(movers, dtype=np.int64)[prog.group], prog.rep] = dual[: prog.n_x]
    return out


def reopen_edge(
    m: Model,
    choice: np.ndarray,
    parts: int = EDGE_PARTS,
    most: int = EDGE_CANDIDATES,
    nodes: int = EDGE_NODES,
) -> int:
    """Improve ``choice`` (in place) by re-dividing the reps at the value band's lower edge with
    the reps inside it, ``parts`` sets (:func:`edge_sets`), each group with its own rep and its
    ``most`` reps of the set with the least LP reduced cost (:func:`reduced_costs`): the move the
    pinned mean forbids any set of a few reps (the lower edge leaves it, the interior takes the
    swing). Returns the re-divisions kept; never lowers the objective or widens a violation."""
    free = ~np.asarray(m.held, dtype=bool)
    sets = edge_sets(m, choice, parts)
    rc = reduced_costs(m, choice) if sets else None
    if rc is None:
        return 0
    kept = 0
    for reps in sets:
        cols = np.array(reps, dtype=np.int64)
        mine = _groups_of(choice, free, reps)
        cost = rc[np.ix_(mine, cols)]
        best = np.argsort(cost, axis=1, kind="stable")[:, :most]
        only: dict[int, set[int]] = {}
        for g, row, c in zip(mine.tolist(), best, cost, strict=True):
            cand = {int(cols[j]) for j in row if np.isfinite(c[j])} | {int(choice[g])}
            if len(cand) > 1:
                only[g] = cand
        if _try(m, choice, free, reps, nodes, NEIGHBOURHOOD_ITERATIONS, only, EDGE_OPTIONS) is not None:
            kept += 1
    return kept


def _groups_of(choice: np.ndarray, free: np.ndarray, reps: tuple[int, ...]) -> np.ndarray:
    """The movable groups ``reps`` hold under ``choice`` (sorted)."""
    out: np.ndarray = np.flatnonzero(free & np.isin(choice, reps))
    return out


def movable_columns(m: Model) -> int:
    """The (group, rep) columns of the movable groups: the whole book's MILP's size. The polish
    runs :func:`whole_book` up to ``WHOLE_MAX`` of them, :func:`redivide` from ``REDIVIDE_MIN``."""
    free = ~np.asarray(m.held, dtype=bool)
    return sum(len(m.cand[g]) for g in np.flatnonzero(free).tolist())


def whole_book(m: Model, choice: np.ndarray, nodes: int = WHOLE_NODES) -> bool:
    """The polish's last step: every movable group re-divided among every rep by one MILP from
    ``choice`` (in place), on books of at most ``WHOLE_MAX`` (group, rep) columns; True when kept."""
    free = ~np.asarray(m.held, dtype=bool)
    if len(m.reps) < 2 or movable_columns(m) > WHOLE_MAX:
        return False
    return _try(m, choice, free, tuple(range(len(m.reps))), nodes, NEIGHBOURHOOD_ITERATIONS) is not None


def redivide(
    m: Model,
    choice: np.ndarray,
    size: int = NEIGHBOURHOOD_REPS,
    budget: int = NEIGHBOURHOODS,
    nodes: int = NEIGHBOURHOOD_NODES,
    iterations: int = NEIGHBOURHOOD_ITERATIONS,
) -> int:
    """Improve ``choice`` (in place) by exact re-divisions of ``size`` reps at a time, at most
    ``budget`` of them; returns the re-divisions kept. Never lowers the objective, never widens a
    band or capacity violation."""
    free = ~np.asarray(m.held, dtype=bool)
    if len(m.reps) < 2 or not free.any():
        return 0
    kept = 0
    tried: dict[tuple[int, ...], int] = {}  # neighbourhood -> the kept count when last tried
    changed_at = np.full(len(m.reps), -1)  # per rep: the kept count when its groups last changed
    while budget > 0:
        todo = [
            s for s in neighbourhoods(m, choice, free, size) if s not in tried or changed_at[list(s)].max() >= tried[s]
        ]
        if not todo:
            break
        s = todo[0]
        budget -= 1
        tried[s] = kept
        moved = _try(m, choice, free, s, nodes, iterations)
        if moved is not None:
            changed_at[moved] = kept
            kept += 1
    return kept


def _try(
    m: Model,
    choice: np.ndarray,
    free: np.ndarray,
    reps: tuple[int, ...],
    nodes: int,
    iterations: int,
    only: dict[int, set[int]] | None = None,
    options: Options | None = None,
) -> np.ndarray | None:
    """Re-divide the movable groups of ``reps`` (:func:`_solve`; ``only``: just these groups, each
    among these reps; ``options``: HiGHS's, over the step's own) and keep the answer in ``choice``
    when the objective rises and both bands and capacities hold at least as well; the reps whose
    groups changed (None: nothing kept)."""
    from tasksync.policies.optimal.polish import holds  # the polish runs this step: imported late

    trial = _solve(m, choice, free, reps, nodes, iterations, only, options)
    if trial is None or np.array_equal(trial, choice):
        return None
    before, after = m.objective(choice), m.objective(trial)
    if after <= before + 1e-9 * max(abs(before), 1.0) or not holds(m, trial, choice):
        return None
    moved = np.flatnonzero(trial != choice)
    touched: np.ndarray = np.unique(np.r_[choice[moved], trial[moved]])
    choice[:] = trial
    return touched


def _solve(
    m: Model,
    choice: np.ndarray,
    free: np.ndarray,
    reps: tuple[int, ...],
    nodes: int,
    iterations: int,
    only: dict[int, set[int]] | None = None,
    options: Options | None = None,
) -> np.ndarray | None:
    """The division of the movable groups of ``reps`` among them by HiGHS from ``choice`` (``only``:
    just these groups, each among these reps; None: nothing to re-divide, or HiGHS found none)."""
    movers = sorted(only) if only is not None else _groups_of(choice, free, reps).tolist()
    if len(movers) < 2:
        return None
    fixed = m.loads_for(choice, skip=set(movers))
    cand = only if only is not None else {g: set(reps) for g in movers}
    prog = build_programme(m, movers, fixed, True, only=cand)
    if m.feasible(choice):  # hold both bands and the capacities exactly
        slack = prog.n_x + len(movers) + np.flatnonzero(prog.c[prog.n_x + len(movers) :] > 0)
        prog.bounds.ub[slack] = 0.0
    start = np.zeros(len(prog.c))
    mv = np.array(movers, dtype=np.int64)
    start[: prog.n_x] = choice[mv[prog.group]] == prog.rep
    x = _run(prog, start, nodes, iterations, options)
    if x is None:
        return None
    pick = x[: prog.n_x] > 0.5
    out = choice.copy()
    if pick.sum() != len(movers) or len(np.unique(prog.group[pick])) != len(movers):
        return None  # a group left unassigned: not a division this step keeps
    out[mv[prog.group[pick]]] = prog.rep[pick]
    return out


def highs_for(prog: Programme, integral: bool, options: dict[str, float | int | bool | str]) -> _Highs:
    """A HiGHS instance holding ``prog`` (as a MILP, or its LP relaxation), quiet, with ``options`` (the
    bench's bounds use it too)."""
    a = csc_array(prog.constraints.A)
    h = _Highs()
    h.setOptionValue("output_flag", False)
    for name, value in options.items():
        h.setOptionValue(name, value)
    lp = HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = prog.c, prog.bounds.lb, prog.bounds.ub
    lp.row_lower_, lp.row_upper_ = prog.constraints.lb, prog.constraints.ub
    mat = HighsSparseMatrix()
    mat.format_, mat.num_col_, mat.num_row_ = MatrixFormat.kColwise, a.shape[1], a.shape[0]
    mat.start_, mat.index_, mat.value_ = a.indptr, a.indices, a.data
    lp.a_matrix_ = mat
    if integral:
        lp.integrality_ = [HighsVarType.kInteger if v else HighsVarType.kContinuous for v in prog.integrality]
    h.passModel(lp)
    return h


def _run(
    prog: Programme, start: np.ndarray, nodes: int, iterations: int, more: Options | None = None
) -> np.ndarray | None:
    """HiGHS on ``prog`` from the incumbent ``start`` (its integer columns; HiGHS completes the
    rest), at most ``nodes`` nodes and ``iterations`` simplex iterations (``more``: other options)."""
    options: dict[str, float | int | bool | str] = {
        "mip_max_nodes": nodes,
        "mip_max_leaves": nodes,
        "simplex_iteration_limit": iterations,
        "mip_rel_gap": 1e-6,
        "presolve": "off",  # measured: the same answers at about half the CPU here
        **(more or {}),
    }
    with quiet_solver():
        h = highs_for(prog, True, options)
        sol = HighsSolution()
        sol.col_value, sol.value_valid = list(start), True
        h.setSolution(sol)
        h.run()
        found = h.getInfo().primal_solution_status
        x = np.asarray(h.getSolution().col_value) if found else None
    return x
