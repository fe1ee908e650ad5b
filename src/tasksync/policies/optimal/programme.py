"""The (mixed-integer) linear programme for a set of movable groups, given the loads of the rest.

Variables: ``x[g, r]`` (group ``g`` to candidate ``r``), ``u[g]`` (left unassigned: its cards
stay with their owners), slacks on the count band (over, under), on capacity and value capacity
(bounded by today's excess: a rep over a capacity never gains), and, with a value band, the mean
expected value ``M``, each rep's expected value ``E_r`` and slacks on the value band (over, under).
An x column sits in three rows (its group's, its rep's count band, its rep's expected value) plus
its rep's capacity rows. Maximises fit-weighted expected
value − move costs − penalties on every slack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import csr_array

from tasksync.policies.optimal.model import Loads, Model

__all__ = ["Programme", "build_programme"]


@dataclass
class Programme:
    c: np.ndarray
    constraints: LinearConstraint
    bounds: Bounds
    integrality: np.ndarray
    group: np.ndarray  # per x column: index into the movers
    rep: np.ndarray  # per x column: rep index
    mean_col: int | None = None  # the value band's mean expected value
    count_row: int = 0  # first of the reps' count-band rows (one per rep)
    value_row: int | None = None  # first of the rows defining the reps' expected values ``E_r``
    cap_row: int = 0  # first of the capacity rows (one per capped rep, in rep order)...
    vcap_row: int = 0  # ...and of the value capacity rows

    @property
    def n_x(self) -> int:
        return len(self.group)


@dataclass
class _Rows:
    """A sparse matrix built row block by row block."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lb: list[np.ndarray] = field(default_factory=list)
    ub: list[np.ndarray] = field(default_factory=list)
    n: int = 0

    def entries(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        self.rows.append(self.n + rows)
        self.cols.append(cols)
        self.vals.append(vals)

    def close(self, lb: np.ndarray, ub: np.ndarray) -> None:
        self.lb.append(lb)
        self.ub.append(ub)
        self.n += len(lb)


@dataclass
class _Vars:
    cost: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    lower_bounds: dict[int, float] = field(default_factory=dict)  # columns with a lower bound above 0
    n: int = 0

    def add(self, cost: np.ndarray, upper: np.ndarray) -> np.ndarray:
        cols = self.n + np.arange(len(cost))
        self.cost.append(cost)
        self.upper.append(upper)
        self.n += len(cost)
        return cols


def build_programme(
    m: Model,
    movers: list[int],
    fixed: Loads,
    integral: bool,
    mean_ev: float | None = None,
    only: Mapping[int, set[int]] | None = None,
) -> Programme:
    """The programme for groups ``movers`` (sorted) given the loads ``fixed`` of everything else.
    ``mean_ev`` fixes the value band's mean (a small programme around an LP's answer), which
    keeps the reps' rows uncoupled; None: the mean is a variable of the programme. ``only``
    restricts a group's candidates to the reps given (a small programme around an LP's answer)."""
    n_r = len(m.reps)
    n_m = len(movers)
    gi_arr, ri_arr, net, ev, best = _x_columns(m, movers, only)
    mv_arr = np.array(movers, dtype=np.int64)
    mg = mv_arr[gi_arr]
    var = _Vars()
    x = var.add(-net, np.ones(len(net)))
    u = var.add(10.0 * (best + m.band_penalty * m.count[mv_arr] + 1.0), np.ones(n_m))
    s_over = var.add(np.full(n_r, m.band_penalty), np.full(n_r, np.inf))
    s_under = var.add(np.full(n_r, m.band_penalty), np.full(n_r, np.inf))
    in_prog = np.isin(m.own_g, mv_arr)
    u_col = u[np.searchsorted(mv_arr, m.own_g[in_prog])]
    u_rep, u_n, u_v, u_e = m.own_r[in_prog], m.own_n[in_prog], m.own_v[in_prog], m.own_e[in_prog]
    a = _Rows()
    a.entries(gi_arr, x, np.ones(len(x)))  # one rep per group: sum_r x + u = 1
    a.entries(np.arange(n_m), u, np.ones(n_m))
    a.close(np.ones(n_m), np.ones(n_m))
    # The count band, one ranged row per rep: lower ≤ cards − over + under ≤ upper.
    count_row = a.n
    a.entries(ri_arr, x, m.count[mg])
    a.entries(np.arange(n_r), s_over, -np.ones(n_r))
    a.entries(np.arange(n_r), s_under, np.ones(n_r))
    a.entries(u_rep, u_col, u_n)
    a.close(np.full(n_r, m.lower) - fixed[0], np.full(n_r, m.upper) - fixed[0])
    cap_pen = 2.0 * m.band_penalty * float(m.count.max(initial=1.0)) + float(np.abs(net).max(initial=0.0)) + 1.0
    stay = m.stay_loads()
    cap_row = a.n
    _capacity(a, var, m.cap, fixed[0], stay[0], ri_arr, x, m.count[mg], u_rep, u_col, u_n, cap_pen)
    pos_v = m.value_[m.value_ > 0]
    vcap_row = a.n
    v_unit = max(float(pos_v.min(initial=1.0)), 1e-3 * float(pos_v.mean()) if pos_v.size else 1.0)
    _capacity(
        a, var, m.vcap, fixed[1], stay[1], ri_arr, x, m.value_[mg], u_rep, u_col, u_v, cap_pen / max(v_unit, 1e-9)
    )
    mean_col = value_row = None
    if m.value_band and m.value_penalty > 0:
        value_row = a.n
        mean_col = _value_band(a, var, m, fixed[2], ri_arr, x, ev, u_rep, u_col, u_e, mean_ev)
    c = np.concatenate(var.cost)
    mat = csr_array((np.concatenate(a.vals), (np.concatenate(a.rows), np.concatenate(a.cols))), shape=(a.n, var.n))
    integrality = np.zeros(var.n)
    if integral:
        integrality[: len(x) + n_m] = 1
    return Programme(
        c,
        LinearConstraint(mat, np.concatenate(a.lb), np.concatenate(a.ub)),
        Bounds(_lower(var), np.concatenate(var.upper)),
        integrality,
        gi_arr,
        ri_arr,
        mean_col,
        count_row,
        value_row,
        cap_row,
        vcap_row,
    )


def _x_columns(
    m: Model, movers: list[int], only: Mapping[int, set[int]] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The x columns of ``movers`` (each group's candidates, or those in ``only``), for all groups
    at once: per column its group (index into the movers), rep, net score and expected value; and
    per group its best |score| plus value penalty × best |expected value| over all its candidates
    (the scale of its unassigned cost)."""
    n_m = len(movers)
    if not n_m:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty, empty
    sizes = np.array([len(m.cand[g]) for g in movers], dtype=np.int64)
    first = np.cumsum(sizes) - sizes
    cand = np.concatenate([m.cand[g] for g in movers])
    score = np.concatenate([m.score[g] for g in movers])
    move = np.concatenate([m.move[g] for g in movers])
    ev = np.concatenate([m.ev[g] for g in movers])
    keep = np.ones(len(cand), dtype=bool)
    for j, g in enumerate(movers if only else ()):
        if only is not None and g in only:
            keep[first[j] : first[j] + sizes[j]] = np.isin(m.cand[g], sorted(only[g]))
    gi_arr = np.repeat(np.arange(n_m, dtype=np.int64), sizes)[keep]
    best = np.maximum.reduceat(np.abs(score), first) + m.value_penalty * np.maximum.reduceat(np.abs(ev), first)
    return gi_arr, cand[keep], (score - move)[keep], ev[keep], best


def _lower(var: _Vars) -> np.ndarray:
    lb = np.zeros(var.n)
    for col, value in var.lower_bounds.items():
        lb[col] = value
    return lb


def _capacity(
    a: _Rows,
    var: _Vars,
    cap: np.ndarray,
    fixed: np.ndarray,
    stay: np.ndarray,
    ri_arr: np.ndarray,
    x: np.ndarray,
    amount: np.ndarray,
    u_rep: np.ndarray,
    u_col: np.ndarray,
    u_amount: np.ndarray,
    penalty: float,
) -> None:
    """Capacity rows for capped reps. A rep over capacity now may keep the excess (always
    feasible) at a high cost, never grow it: the slack is bounded by today's excess on the whole
    book, so a small programme cannot trade a fixed newcomer for a card that stays."""
    capped = np.isfinite(cap)
    if not capped.any():
        return
    row = np.cumsum(capped) - 1
    n_cap = int(capped.sum())
    slack = var.add(np.full(n_cap, penalty), np.maximum(stay - cap, 0.0)[capped])
    sel, u_sel = capped[ri_arr], capped[u_rep]
    a.entries(row[ri_arr[sel]], x[sel], amount[sel])
    a.entries(row[u_rep[u_sel]], u_col[u_sel], u_amount[u_sel])
    a.entries(np.arange(n_cap), slack, -np.ones(n_cap))
    a.close(np.full(n_cap, -np.inf), cap[capped] - fixed[capped])


def _value_band(
    a: _Rows,
    var: _Vars,
    m: Model,
    fixed_e: np.ndarray,
    ri_arr: np.ndarray,
    x: np.ndarray,
    ev: np.ndarray,
    u_rep: np.ndarray,
    u_col: np.ndarray,
    u_e: np.ndarray,
    mean_ev: float | None,
) -> int:
    """``(1 - b) w_r M ≤ E_r ≤ (1 + b) w_r M`` for every rep (``w_r``: its weight, see
    :meth:`Model.value_centre`), softly, with ``n M = Σ_r E_r`` (or ``M`` fixed at ``mean_ev``).
    ``E_r`` is a column of its own, defined by one row per rep: an x column then sits in that row
    only (not in both band rows and the mean row), which halves the programme's non-zeros."""
    n_r = len(m.reps)
    if mean_ev is None:
        mean_ev = m.value_mean  # a block of a big book: the team's mean
    fixed_m = mean_ev if mean_ev is not None else 0.0
    mean = var.add(np.zeros(1), np.full(1, np.inf) if mean_ev is None else np.full(1, fixed_m))
    if mean_ev is not None:
        var.lower_bounds[mean[0]] = fixed_m
    e_rep = var.add(np.zeros(n_r), np.full(n_r, np.inf))
    e_over = var.add(np.full(n_r, m.value_penalty), np.full(n_r, np.inf))
    e_under = var.add(np.full(n_r, m.value_penalty), np.full(n_r, np.inf))
    reps = np.arange(n_r)
    a.entries(ri_arr, x, ev)  # E_r = fixed + Σ x·ev + Σ u·(what stays with r)
    a.entries(u_rep, u_col, u_e)
    a.entries(reps, e_rep, -np.ones(n_r))
    a.close(-fixed_e, -fixed_e)
    b = m.value_band
    centre = m.weights()
    for sign, slack, factor in ((-1.0, e_over, 1 + b), (1.0, e_under, 1 - b)):
        a.entries(reps, e_rep, np.ones(n_r))
        a.entries(reps, np.full(n_r, mean[0]), -factor * centre)
        a.entries(reps, slack, np.full(n_r, sign))
        if sign < 0:
            a.close(np.full(n_r, -np.inf), np.zeros(n_r))
        else:
            a.close(np.zeros(n_r), np.full(n_r, np.inf))
    if mean_ev is not None:
        return int(mean[0])
    a.entries(np.zeros(n_r, dtype=np.int64), e_rep, -np.ones(n_r))
    a.entries(np.zeros(1, dtype=np.int64), mean, np.full(1, float(n_r)))
    a.close(np.zeros(1), np.zeros(1))
    return int(mean[0])
