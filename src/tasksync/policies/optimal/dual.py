"""The LP relaxation dual-first: from known rep-row duals, a small master over the marginal groups.

The LP couples the groups only through a few rows per rep (count band, capacity, expected value);
each group's own row picks one rep. With the rep rows priced by duals, a group's best column is an
argmin of its reduced costs, one numpy pass over every candidate column. Given rep-row duals near
the optimal ones (those of an earlier pass's LP on the same book):

1. a group whose best column beats its second by a clear margin (``MARGIN``) is fixed there; the
   others (the marginal ones) form a small master LP with every candidate of theirs, given the
   loads of the fixed groups (the same programme, :func:`build_programme`, on fewer groups);
2. the master's rep-row duals price every column of the fixed groups; a fixed group whose own
   column is no longer among its cheapest joins the master; repeat until none does.

Then each fixed group's column has the lowest reduced cost of its group under the master's rep
duals (completed by that lowest cost as the group row's dual): the primal assembled from the
master and the fixed groups is an optimum of the whole LP to the solver's tolerance, with the
whole LP's objective. Every count (rounds, master size) is a fixed work limit, never the clock;
when one is reached the caller solves the LP by column generation instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import OptimizeResult
from scipy.sparse import csr_array

from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.programme import Programme, build_programme

__all__ = ["MARGIN", "MasterRun", "dual_first"]

MARGIN = 0.005  # a group is marginal when its second-best column costs within this share of its best
MASTER_ROUNDS = 8  # pricing rounds of the master (work limit)
MASTER_SHARE = 0.4  # share of the movers beyond which the master is given up (the duals were far off)

MasterRun = Callable[[Programme], "tuple[np.ndarray, np.ndarray] | None"]


def _first_min(values: np.ndarray, starts: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group (columns contiguous from ``starts``): the lowest value and its first column."""
    low = np.minimum.reduceat(values, starts)
    hit = np.flatnonzero(values <= low[group])
    first = np.ones(len(hit), dtype=bool)
    first[1:] = group[hit[1:]] != group[hit[:-1]]
    return low, hit[first]


def dual_first(m: Model, movers: list[int], p: Programme, y_rep: np.ndarray, run: MasterRun) -> OptimizeResult | None:
    """The LP optimum of ``p`` (every mover, every candidate) from rep-row duals ``y_rep`` (of an
    LP with the same rep rows: an earlier pass on the same book), with the master rounds run as
    ``nit``. ``run`` solves a programme (HiGHS) and gives its primal and row duals, or None when it
    reaches no optimum. None: the master failed or grew past ``MASTER_SHARE`` of the movers (the
    duals were too far off to pay); the caller solves the LP another way."""
    n_m, n_x, n = len(movers), p.n_x, len(p.c)
    a = csr_array(p.constraints.A)
    rep_t = csr_array(a[n_m:].T)  # (columns, rep rows): what a column puts in the rep rows
    if rep_t.shape[1] != len(y_rep):
        return None
    group = np.r_[p.group, np.arange(n_m)]  # x columns, then each group's unassigned column u
    col = np.r_[np.arange(n_x), n_x + np.arange(n_m)]
    order = np.lexsort((col, group))
    group, col = group[order], col[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    cost = p.c[: n_x + n_m]
    red = (cost - rep_t[: n_x + n_m] @ y_rep)[col]
    low, pick = _first_min(red, starts, group)
    masked = red.copy()
    masked[pick] = np.inf
    second, _ = _first_min(masked, starts, group)
    # Marginal: a group whose second-best column is within MARGIN of its best's cost.
    in_master = (second - low) < MARGIN * np.maximum(np.abs(cost[col[pick]]), 1.0)
    choice_col = col[pick]  # per mover: its fixed column (x, or n_x + j: unassigned)
    tol = 1e-7 * max(1.0, float(np.abs(p.c).max(initial=0.0)) * 1e-6)
    mv = np.asarray(movers, dtype=np.int64)
    held = np.flatnonzero(np.asarray(m.held, dtype=bool))
    rounds = 0
    while True:
        rounds += 1
        if rounds > MASTER_ROUNDS or in_master.sum() > MASTER_SHARE * n_m:
            return None
        sub_j, out_j = np.flatnonzero(in_master), np.flatnonzero(~in_master)
        assign = np.full(len(m.groups), -1, dtype=np.int64)
        assign[held] = [int(m.cand[g][0]) for g in held.tolist()]
        fixed_col = choice_col[out_j]
        on = fixed_col < n_x
        assign[mv[out_j[on]]] = p.rep[fixed_col[on]]
        sub = mv[sub_j].tolist()
        sp = build_programme(m, sub, m.loads_for(assign, skip=set(sub)), False)
        got = run(sp)
        if got is None:
            return None
        sx, sy = got
        red = (cost - rep_t[: n_x + n_m] @ sy[len(sub) :])[col]
        best, _ = _first_min(red, starts, group)
        mine = cost[fixed_col] - rep_t[fixed_col] @ sy[len(sub) :]
        worse = out_j[mine > best[out_j] + tol]
        if not len(worse):
            break
        in_master[worse] = True
    x = np.zeros(n)
    x[fixed_col] = 1.0
    # The master's x columns are its groups' candidates, in the order of the whole programme's.
    sizes = np.bincount(p.group, minlength=n_m)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    pos = (
        np.concatenate([first[j] + np.arange(sizes[j]) for j in sub_j.tolist()])
        if len(sub_j)
        else np.zeros(0, dtype=np.int64)
    )
    x[pos] = sx[: sp.n_x]
    x[n_x + sub_j] = sx[sp.n_x : sp.n_x + len(sub_j)]
    x[n_x + n_m :] = sx[sp.n_x + len(sub_j) :]
    return OptimizeResult(x=x, status=0, message="Optimal", fun=float(p.c @ x), nit=rounds, y_rep=sy[len(sub) :].copy())
