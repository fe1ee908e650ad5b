"""A bound on the optimal policy's optimum among divisions that hold both bands: set partitioning
by intervals of the value band's mean, with stabilised column generation.

Bench-only. The objective the bound is on ("bands held"): the compact programme's
(:mod:`tasksync.policies.optimal.programme`, the same as :meth:`Model.objective` for a division
that leaves no group unassigned) over the divisions that are inside the count band, the value band
and the capacities on every rep, as the start (the policy's division) is. The policy keeps a change
only when both bands hold at least as well, so from a division that holds them it can only reach
divisions that hold them: their optimum is the one its gap is measured against. A division
outside a band is not bounded here (:func:`partition_bound` returns None).

The formulation is the set-partitioning one, strong where accounts are lumpy against two bands:
every rep picks one *column*, a whole set of groups it holds (and of the groups left unassigned
whose cards stay with it), whose card total lies in the count band and under the capacity and
whose expected value lies in the value band; every group is covered once. The value band's centre
is the mean ``M`` of the reps' expected values, which couples every rep; it is handled by
intervals. The range of ``M`` over divisions at least as good as the start that hold the bands
comes from the compact LP (minimise, then maximise ``M``); it is cut into intervals
``[m_lo, m_hi]``. Within one, a column's expected value must lie in
``[(1 − b) w_r m_lo, (1 + b) w_r m_hi]`` (it holds its band for some mean in the interval), and the
master keeps the exact band rows ``(1 − b) w_r M ≤ E_r ≤ (1 + b) w_r M`` with ``n M = Σ_r E_r`` and
``M ∈ [m_lo, m_hi]``. Every division of the interval is a solution, so the interval's LP bound is
valid, and the optimum's mean lies in one interval: the bound is the largest interval bound.

Column generation per interval, on fixed work limits only (no clock: the same book gives the
same bound):

* the Lagrangian bound at every round: ``Σ_g π_g + Σ_r (the rep's least reduced cost) + the
  least reduced cost of the unassigned columns (u ∈ [0, 1]) and of ``M`` (its interval)``, valid
  at any duals of the right signs; the rep's least reduced cost is its pricing MILP's dual bound
  (exact when it closes, still a valid lower bound when it stops at its node limit);
* pricing: per rep, a 0/1 knapsack with two ranged rows (cards, expected value) and one row per
  group the rep owns today (kept or moved, not both), HiGHS at a node limit;
* dual stabilisation by Wentges smoothing: pricing at ``α·centre + (1 − α)·master duals``, the
  centre being the duals of the best Lagrangian bound so far; when nothing priced there would
  enter the master (a mispricing) the point moves towards the master's duals;
* the master keeps artificial columns (not in the problem: they only keep it feasible before it
  has columns; the Lagrangian bound ignores them, so it stays valid);
* warm columns: the start's, those of the compact LP's division rounded to each group's largest
  share, and every round's; one pool shared by the intervals (a column enters an interval's
  master when its expected value lies in that interval's range).

Subset-row cuts (Jepsen, Petersen, Spoorendonk and Pisinger's rank-1 Chvátal–Gomory cuts on triples
of cover rows: at most one column of a division holds two or more of three given movers) may be
added at a node at its LP bound; a cut's dual (≤ 0) is paid by every column crossing it, in the
pricing one more variable per cut, 1 when two of its movers are (``x_i + x_j − z ≤ 1``; continuous:
at whole movers it is whole at its least, so HiGHS branches on the movers only), and the
Lagrangian bound adds the cuts' duals times their right-hand side 1, so it stays valid.

An interval whose bound is at or below the start's objective is closed, as is one where some rep
has no column at all (no division there holds the bands). Then up to ``refine`` times the open
interval with the highest bound is split in two and both halves are bounded again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from dw_bound import _Data, _data
from mean_bound import Whole, highs_for, mean_range, whole_programme
from scipy.optimize._highspy._core import (
    HighsLp,
    HighsSolution,
    HighsSparseMatrix,
    HighsVarType,
    MatrixFormat,
    _Highs,
)
from scipy.sparse import csc_array, hstack, vstack

from tasksync.policies.optimal.model import Model

__all__ = ["BRANCHINGS", "PartitionBound", "PartitionInterval", "partition_bound"]

INF = np.inf


@dataclass
class PartitionInterval:
    """One interval of the mean and what column generation proved there."""

    lo: float
    hi: float
    bound: float  # the optimum over band-holding divisions with their mean in [lo, hi] is at most this
    master: float  # the last restricted master's value (without its artificials in use, the
    # interval's LP bound lies between this and ``bound``: more rounds cannot take it below this)
    master_exact: bool  # the master's artificials were not in use: ``master`` is a floor of its LP bound
    rounds: int
    converged: bool  # the Lagrangian bound met the master's value: ``bound`` is the interval's LP bound
    infeasible: bool  # some rep has no column holding its bands there
    history: list[float] = field(default_factory=list)  # the best bound after each round
    depth: int = 0  # branching rules of the node (0: the interval's root)


@dataclass
class PartitionBound:
    """The bound on the compact objective over band-holding divisions (maximised, the scale of
    :meth:`Model.objective`) and how it was found."""

    bound: float
    start: float  # the start's objective
    mean_range: tuple[float, float]  # the mean of any band-holding division at least as good as the start
    start_mean: float
    intervals: list[PartitionInterval] = field(default_factory=list)  # the final partition, by mean
    rounds: int = 0  # column generation rounds over all intervals
    pricings: int = 0  # pricing MILPs solved
    stopped: int = 0  # of them, stopped at their node limit (their dual bound used)
    nodes: int = 0  # branch-and-bound nodes over all pricing MILPs
    columns: int = 0  # columns in the shared pool
    best: float = -INF  # the best division known: the start's objective or a better one found
    best_choice: np.ndarray | None = None  # that better division (rep index per group), if any
    branched: int = 0  # nodes made by branching (branch-and-price)
    open: int = 0  # nodes left above the best division known (each a part of the bound)
    ip: float | None = None  # the restricted master MILP's division's objective, when run
    cuts: int = 0  # subset-row cuts added, over all nodes


_Triple = tuple[int, int, int]  # a subset-row cut: three movers, at most one column holding two or more of them
_Rule = tuple[int, int, bool]  # a branch: (mover, rep, whether the mover is on that rep)
_Limit = tuple[int, str, float, float]  # a branch on a rep's load: (rep, "n" cards or "e" expected value, lo, hi)
BRANCHINGS = ("pair", "count", "value", "count-value")  # what branch-and-price branches on (:func:`partition_bound`)


@dataclass(frozen=True)
class _Column:
    rep: int
    x: tuple[int, ...]  # movers assigned to the rep
    y: tuple[int, ...]  # (group, owner) pairs of the rep whose group is left unassigned
    cost: float  # −net score of its groups
    ev: float  # the rep's expected value with it (fixed load included)
    n: int = 0  # its movable cards


@dataclass
class _Duals:
    """Duals of the master's rows (minimised form): cover, link, value band over (≤ 0) and under
    (≥ 0) per rep, the mean row."""

    pi: np.ndarray
    sigma: np.ndarray
    over: np.ndarray
    under: np.ndarray
    gamma: float
    cuts: tuple[_Triple, ...] = ()  # the node's subset-row cuts, in the master's order
    rho: np.ndarray = field(default_factory=lambda: np.zeros(0))  # their duals (≤ 0)

    def mix(self, other: _Duals, a: float) -> _Duals:
        """``a·self + (1 − a)·other`` (over the longer list of cuts: the other's duals of the cuts
        it has not got are 0)."""
        mine, theirs = self.on(other.cuts), other.on(self.cuts)
        return _Duals(
            a * mine.pi + (1 - a) * theirs.pi,
            a * mine.sigma + (1 - a) * theirs.sigma,
            a * mine.over + (1 - a) * theirs.over,
            a * mine.under + (1 - a) * theirs.under,
            a * mine.gamma + (1 - a) * theirs.gamma,
            mine.cuts,
            a * mine.rho + (1 - a) * theirs.rho,
        )

    def on(self, cuts: tuple[_Triple, ...]) -> _Duals:
        """These duals over ``cuts`` when those extend this point's own (a dual of 0 for each
        cut added since), else these duals as they are."""
        if len(cuts) <= len(self.cuts):
            return self
        rho = np.r_[self.rho, np.zeros(len(cuts) - len(self.cuts))]
        return _Duals(self.pi, self.sigma, self.over, self.under, self.gamma, cuts, rho)

    def cut_cost(self, x: tuple[int, ...] | np.ndarray) -> float:
        """What a column with the movers ``x`` pays for the cuts it crosses (at least two movers
        of a cut's three): minus their duals, so at least 0."""
        if not self.cuts:
            return 0.0
        return -float(self.rho[_crossed(self.cuts, x)].sum())

    def k_e(self, r: int) -> float:
        """What one unit of rep ``r``'s expected value earns in the rows (its reduced cost is
        minus this)."""
        return float(self.over[r] + self.under[r] + self.gamma)

    def rc(self, col: _Column) -> float:
        """The column's reduced cost without its convexity dual."""
        return float(
            col.cost - self.pi[list(col.x)].sum() - self.sigma[list(col.y)].sum() - self.k_e(col.rep) * col.ev
        ) + self.cut_cost(col.x)


def _crossed(cuts: tuple[_Triple, ...] | list[_Triple], x: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Whether a column with the movers ``x`` crosses each cut: holds at least two of its three
    movers (its coefficient in the cut's row, ⌊|x ∩ T| / 2⌋, is then 1)."""
    if not len(cuts):
        return np.zeros(0, dtype=bool)
    held = np.isin(np.asarray(cuts, dtype=np.int64), np.asarray(x, dtype=np.int64))
    out: np.ndarray = held.sum(axis=1) >= 2
    return out


class _Pricer:
    """One rep's pricing MILP: binaries x (each mover) and y (each group it owns today, left
    unassigned with the rep keeping its cards), x_g + y_g ≤ 1, the card total in the count band and
    under the capacity, the expected value in the interval's band range. Built once; costs and
    the value row's range change per call."""

    def __init__(self, m: Model, d: _Data, r: int, nodes: int, abs_gap: float, per_rep: int) -> None:
        self.r, self.per_rep = r, per_rep
        n_m = len(d.movers)
        self.xs = np.flatnonzero(np.isfinite(d.cx[r]))
        self.ys = np.flatnonzero(d.pair_r == r)
        n_x, n_y = len(self.xs), len(self.ys)
        lo = float(np.ceil(m.lower - 1e-9)) - d.fixed_n[r]
        hi_n = min(m.upper, float(d.cap[r])) if np.isfinite(d.cap[r]) else m.upper
        hi = float(np.floor(hi_n + 1e-9)) - d.fixed_n[r]
        self.fixed_e = float(d.fixed_e[r])
        # Rows: cards, expected value, then one per owned group (x_g + y_g ≤ 1).
        rows = [np.zeros(n_x, dtype=np.int64), np.zeros(n_y, dtype=np.int64)]
        cols = [np.arange(n_x), n_x + np.arange(n_y)]
        vals = [d.cnt[self.xs].astype(float), d.pair_n[self.ys].astype(float)]
        rows += [np.ones(n_x, dtype=np.int64), np.ones(n_y, dtype=np.int64)]
        cols += [np.arange(n_x), n_x + np.arange(n_y)]
        vals += [d.ev[r, self.xs], d.pair_e[self.ys]]
        x_of = np.full(n_m, -1)
        x_of[self.xs] = np.arange(n_x)
        pg = x_of[d.pair_g[self.ys]]
        both = np.flatnonzero(pg >= 0)
        rows += [2 + both, 2 + both]
        cols += [pg[both], n_x + both]
        vals += [np.ones(len(both)), np.ones(len(both))]
        a = csc_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(2 + n_y, n_x + n_y))
        self.a, self.a_c, self.n_lo, self.n_hi = a.tocsr(), a, lo, hi
        self.rlo, self.rhi = np.r_[lo, -INF, np.full(n_y, -INF)], np.r_[hi, INF, np.ones(n_y)]
        self.lp = _milp(
            np.zeros(n_x + n_y),
            np.r_[lo, -INF, np.full(n_y, -INF)],
            np.r_[hi, INF, np.ones(n_y)],
            a,
            {"threads": 1},
            integer=False,
        )
        self.options: dict[str, float | int | bool | str] = {
            "mip_max_nodes": nodes,
            "mip_rel_gap": 0.0,
            "mip_abs_gap": abs_gap,
            "threads": 1,
            # Presolve finds next to nothing in a knapsack whose fixings the LP made already, and
            # took a fifth of each pricing's time (the 664-card book: 39.6 s instead of 48.8 s
            # for its first 60 rounds, the same bounds at the same duals).
            "presolve": "off",
            "mip_improving_solution_save": per_rep > 1,
            # The sub-MIP and reduced-cost heuristics took a third of each pricing's time (a
            # knapsack of a few hundred binaries whose root fixes most of them); its dual
            # bound, the part that counts, is the same without them.
            "mip_heuristic_run_rins": False,
            "mip_heuristic_run_rens": False,
            "mip_heuristic_run_root_reduced_cost": False,
            "mip_heuristic_run_feasibility_jump": False,
        }
        self.h = _milp(np.zeros(n_x + n_y), self.rlo, self.rhi, a, self.options)
        self.n_x, self.n_y = n_x, n_y
        self.x_of = x_of  # each mover's x variable in this MILP (-1: not a candidate)
        self.ev_x, self.ev_y = d.ev[r, self.xs], d.pair_e[self.ys]
        self.cx, self.cnt, self.cnt_y = d.cx[r, self.xs], d.cnt[self.xs], d.pair_n[self.ys]
        self.last: np.ndarray | None = None  # the last column found, as the MILP's variables: a first incumbent

    def fixes(self, d: _Data, rules: tuple[_Rule, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The MILP's variables a node's branching rules fix at 0 and at 1 for this rep: an account
        on rep r is in r's column and in no other rep's (neither assigned nor left unassigned with
        its owner); an account off rep r is not in r's column."""
        zero: list[int] = []
        one: list[int] = []
        x_at = {int(g): k for k, g in enumerate(self.xs)}
        for g, r, on in rules:
            k = x_at.get(g)
            if on:
                if r == self.r:
                    if k is None:  # never a candidate: this rep has no column at the node
                        return np.zeros(0, dtype=np.int32), np.array([-1], dtype=np.int32)
                    one.append(k)
                elif k is not None:
                    zero.append(k)
                zero += (self.n_x + np.flatnonzero(d.pair_g[self.ys] == g)).tolist()
            elif r == self.r and k is not None:
                zero.append(k)
        return np.array(sorted(set(zero)), dtype=np.int32), np.array(sorted(set(one)), dtype=np.int32)

    def price(
        self,
        d: _Data,
        dual: _Duals,
        e_lo: float,
        e_hi: float,
        fix: tuple[np.ndarray, np.ndarray] | None = None,
        n_range: tuple[float, float] | None = None,
    ) -> tuple[float, list[_Column], bool, int]:
        """The least reduced cost of a column of the rep (a lower bound when the MILP stops at its
        node limit; inf: no column holds the bands), the columns found (the best first, then up to
        ``per_rep`` − 1 of the incumbents the search improved on), whether the MILP was stopped,
        and its nodes. ``fix``: the variables a branch fixes at 0 and at 1 (:meth:`fixes`);
        ``n_range``: the column's movable cards, when a branch narrows the count band's."""
        zero, one = fix if fix is not None else (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
        if len(one) and one[0] < 0:
            return INF, [], False, 0
        n_lo, n_hi = n_range if n_range is not None else (self.n_lo, self.n_hi)
        if n_lo > n_hi or e_lo > e_hi:
            return INF, [], False, 0
        k = dual.k_e(self.r)
        cost = np.r_[self.cx - dual.pi[self.xs] - k * self.ev_x, -dual.sigma[self.ys] - k * self.ev_y]
        e_lo, e_hi = e_lo - self.fixed_e, e_hi - self.fixed_e
        cuts = self._cut_pairs(dual)
        priced = cuts if len(cuts[1]) else None
        zero2, one2 = self._reduced_cost_fixing(cost, (e_lo, e_hi), (zero, one), (n_lo, n_hi), dual, priced)
        if priced is not None:  # cuts priced: a MILP with one more variable per cut this rep may cross
            return self._price_free(dual, cost, e_lo, e_hi, zero2, one2, n_lo, n_hi, priced)
        if len(zero2) + len(one2) > len(zero) + len(one):  # the LP fixed some: a MILP of the others
            return self._price_free(dual, cost, e_lo, e_hi, zero2, one2, n_lo, n_hi)
        self.h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        self.h.changeRowBounds(0, n_lo, n_hi)
        self.h.changeRowBounds(1, e_lo, e_hi)
        fixed = np.r_[zero2, one2].astype(np.int32)
        if len(fixed):
            at = np.r_[np.zeros(len(zero2)), np.ones(len(one2))]
            self.h.changeColsBounds(len(fixed), fixed, at, at)
        if self.last is not None:  # HiGHS ignores it where it is outside this interval's range or a branch
            sol = HighsSolution()
            sol.col_value, sol.value_valid = list(self.last), True
            self.h.setSolution(sol)
        try:
            self.h.run()
            return self._read(self.h, dual, lambda v: v, 0.0)
        finally:
            self.h.changeRowBounds(0, self.n_lo, self.n_hi)
            if len(fixed):
                self.h.changeColsBounds(len(fixed), fixed, np.zeros(len(fixed)), np.ones(len(fixed)))

    def _cut_pairs(self, dual: _Duals) -> tuple[np.ndarray, np.ndarray]:
        """The cuts this rep's column may cross at a cost (a dual below 0 and at least two of its
        movers candidates here): one row per pair of those movers, as (the pair's two x
        variables, the cut's place among them), and each such cut's cost (minus its dual). A
        column crosses a cut when it holds two of its movers, so its binary must be 1 when both
        of a pair are (x_i + x_j − z ≤ 1), and its cost makes it 0 otherwise."""
        rows: list[tuple[int, int, int]] = []
        penalty: list[float] = []
        for cut, rho in zip(dual.cuts, dual.rho, strict=True):
            local = [int(k) for k in self.x_of[list(cut)] if k >= 0]
            if rho >= -1e-12 or len(local) < 2:
                continue
            rows += [(i, j, len(penalty)) for i, j in itertools.combinations(local, 2)]
            penalty.append(-float(rho))
        return np.array(rows, dtype=np.int64).reshape(-1, 3), np.array(penalty)

    def _reduced_cost_fixing(
        self,
        cost: np.ndarray,
        e_range: tuple[float, float],
        fix: tuple[np.ndarray, np.ndarray],
        n_range: tuple[float, float],
        dual: _Duals,
        cuts: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The variables fixed at 0 and at 1 for this call: a branch's (``zero``, ``one``) and, when
        the last column found is still a solution (an upper bound ``u`` on the optimum), those the
        LP relaxation's reduced costs fix: a variable whose change from its LP bound would cost more
        than ``u`` − the LP's optimum is at that bound in every optimum. The MILP's dual bound stays
        a lower bound on the optimum (what it leaves out costs more than ``u``), and HiGHS gets a
        model a tenth of the size instead of finding that out at its root. With ``cuts`` priced
        (:meth:`_cut_pairs`), ``u`` is the last column's cost with what it pays for them, and the LP
        is the MILP's with the cuts' variables relaxed to [0, 1] (it still bounds the MILP's from
        below): without their rows the LP would leave out what a column pays for its cuts, and
        ``u`` − its optimum would grow by it, fixing fewer variables. The cuts' variables are
        never fixed; the indices returned are the rep's own variables only."""
        (e_lo, e_hi), (zero, one), (n_lo, n_hi) = e_range, fix, n_range
        x = self.last
        if x is None or (x[zero] > 0.5).any() or (x[one] < 0.5).any():
            return zero, one
        act = self.a @ x
        ev_tol = 1e-9 * max(abs(e_lo), abs(e_hi), 1.0)
        if not (n_lo - 1e-9 <= act[0] <= n_hi + 1e-9 and e_lo - ev_tol <= act[1] <= e_hi + ev_tol):
            return zero, one
        if (act[2:] > 1 + 1e-9).any():
            return zero, one
        u = float(cost @ x) + dual.cut_cost(self.xs[x[: self.n_x] > 0.5])
        if cuts is None:
            lp = self.lp
            lp.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        else:
            lp = _milp(*self._with_cuts(cost, cuts), {"threads": 1}, integer=False)
        lp.changeRowBounds(0, n_lo, n_hi)
        lp.changeRowBounds(1, e_lo, e_hi)
        fixed = np.r_[zero, one].astype(np.int32)
        if len(fixed):
            at = np.r_[np.zeros(len(zero)), np.ones(len(one))]
            lp.changeColsBounds(len(fixed), fixed, at, at)
        try:
            lp.run()
            if lp.modelStatusToString(lp.getModelStatus()) != "Optimal":
                return zero, one
            z = float(lp.getInfo().objective_function_value)
            sol = lp.getSolution()
            v, rc = np.asarray(sol.col_value)[: len(cost)], np.asarray(sol.col_dual)[: len(cost)]
        finally:
            lp.changeRowBounds(0, self.n_lo, self.n_hi)
            if len(fixed):
                lp.changeColsBounds(len(fixed), fixed, np.zeros(len(fixed)), np.ones(len(fixed)))
        slack = u - z + 1e-6 * max(abs(u), 1.0)
        off = np.flatnonzero((v <= 1e-9) & (rc > slack))
        on = np.flatnonzero((v >= 1 - 1e-9) & (-rc > slack))
        return (
            np.union1d(zero, off).astype(np.int32),
            np.union1d(one, on).astype(np.int32),
        )

    def _price_free(
        self,
        dual: _Duals,
        cost: np.ndarray,
        e_lo: float,
        e_hi: float,
        zero: np.ndarray,
        one: np.ndarray,
        n_lo: float,
        n_hi: float,
        cuts: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[float, list[_Column], bool, int]:
        """:meth:`price` by a MILP over the variables not fixed at 0 (``zero``) or 1 (``one``), the
        fixed ones' cards, expected value and cost moved to its rows' bounds and its offset;
        ``cuts``: the cuts priced (:meth:`_cut_pairs`), each one more variable (never fixed), in
        [0, 1] but not required whole: it costs more than 0 and its rows only hold it up, so at
        whole movers it is whole at its least (0, or 1 when the column holds two of the cut's
        movers), and HiGHS branches on the movers only."""
        n_v = len(cost)
        if cuts is not None:  # a pair with one mover fixed at 0 can never make its cut's binary 1
            pairs, penalty = cuts
            pairs = pairs[~(np.isin(pairs[:, 0], zero) | np.isin(pairs[:, 1], zero))]
            used, pairs[:, 2] = np.unique(pairs[:, 2], return_inverse=True)
            cuts = (pairs, penalty[used])
        cost, rlo, rhi, a = self._with_cuts(cost, cuts)
        rlo[:2], rhi[:2] = (n_lo, e_lo), (n_hi, e_hi)
        n_z = len(cost) - n_v
        free = np.r_[np.setdiff1d(np.arange(n_v), np.r_[zero, one]), n_v + np.arange(n_z)].astype(np.int64)
        base = np.zeros(n_v + n_z)
        base[one] = 1.0
        act = a @ base
        h = _milp(cost[free], rlo - act, rhi - act, a[:, free], self.options, continuous=n_z)
        if self.last is not None:
            last = np.r_[self.last, np.zeros(n_z)]
            if cuts is not None and n_z:  # each cut's binary as the last column crosses it
                on = last[cuts[0][:, 0]] + last[cuts[0][:, 1]] > 1.5
                last[n_v + cuts[0][on, 2]] = 1.0
            sol = HighsSolution()
            sol.col_value, sol.value_valid = list(last[free]), True
            h.setSolution(sol)
        h.run()

        def whole(v: np.ndarray) -> np.ndarray:
            out = base.copy()
            out[free] = v
            return out[:n_v]

        return self._read(h, dual, whole, float(cost[one].sum()))

    def _with_cuts(
        self, cost: np.ndarray, cuts: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, csc_array]:
        """The knapsack's costs, row bounds and matrix (columns: the rep's variables) with, for
        ``cuts`` (:meth:`_cut_pairs`), one more variable per cut costing what crossing it costs and
        one row per pair of its movers (x_i + x_j − z ≤ 1)."""
        a, rlo, rhi = self.a_c, self.rlo.copy(), self.rhi.copy()
        if cuts is None:
            return cost, rlo, rhi, a
        pairs, penalty = cuts
        n_v, n_z, n_p = len(cost), len(penalty), len(pairs)
        k = np.arange(n_p)
        crossing = csc_array(
            (
                np.r_[np.ones(2 * n_p), -np.ones(n_p)],
                (np.r_[k, k, k], np.r_[pairs[:, 0], pairs[:, 1], n_v + pairs[:, 2]]),
            ),
            shape=(n_p, n_v + n_z),
        )
        a = csc_array(vstack([hstack([a, csc_array((a.shape[0], n_z))]), crossing], format="csc"))
        return np.r_[cost, penalty], np.r_[rlo, np.full(n_p, -INF)], np.r_[rhi, np.ones(n_p)], a

    def _read(
        self, h: _Highs, dual: _Duals, whole: Callable[[np.ndarray], np.ndarray], offset: float
    ) -> tuple[float, list[_Column], bool, int]:
        """What the MILP ``h`` just run found (see :meth:`price`): ``whole`` maps its variables to
        the rep's, ``offset`` is the cost of the variables it leaves out."""
        k = dual.k_e(self.r)
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        nodes = int(info.mip_node_count)
        if status == "Infeasible":
            return INF, [], False, nodes
        if status != "Optimal" and not np.isfinite(info.mip_dual_bound):
            raise RuntimeError(f"pricing rep {self.r}: MILP {status} without a dual bound")
        cols: list[_Column] = []
        if info.primal_solution_status >= 2:
            best = whole(np.asarray(h.getSolution().col_value)) > 0.5
            self.last = best.astype(float)
            seen = {best.tobytes()}
            cols.append(self._column(best))
            for saved in reversed(h.getSavedMipSolutions()):  # the better ones last
                if len(cols) >= self.per_rep:
                    break
                v = whole(np.asarray(saved.col_value)) > 0.5
                if v.tobytes() not in seen:
                    seen.add(v.tobytes())
                    cols.append(self._column(v))
        return -k * self.fixed_e + offset + float(info.mip_dual_bound), cols, status != "Optimal", nodes

    def _column(self, v: np.ndarray) -> _Column:
        """The column the MILP's 0/1 values ``v`` choose."""
        vx, vy = v[: self.n_x], v[self.n_x :]
        return _Column(
            self.r,
            tuple(int(g) for g in self.xs[vx]),
            tuple(int(p) for p in self.ys[vy]),
            float(self.cx[vx].sum()),
            self.fixed_e + float(self.ev_x[vx].sum() + self.ev_y[vy].sum()),
            int(self.cnt[vx].sum() + self.cnt_y[vy].sum()),
        )


def _milp(
    cost: np.ndarray,
    rlo: np.ndarray,
    rhi: np.ndarray,
    a: csc_array,
    options: dict[str, float | int | bool | str],
    integer: bool = True,
    continuous: int = 0,
) -> _Highs:
    """A quiet HiGHS holding min cost·x over binary x (``integer``, but the last ``continuous``
    variables; else x ∈ [0, 1]) with rlo ≤ a x ≤ rhi."""
    h = _Highs()
    h.setOptionValue("output_flag", False)
    for name, value in options.items():
        h.setOptionValue(name, value)
    lp = HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(a.shape[1]), np.ones(a.shape[1])
    lp.row_lower_, lp.row_upper_ = rlo, rhi
    mat = HighsSparseMatrix()
    mat.format_, mat.num_col_, mat.num_row_ = MatrixFormat.kColwise, a.shape[1], a.shape[0]
    mat.start_, mat.index_, mat.value_ = a.indptr, a.indices, a.data
    lp.a_matrix_ = mat
    if integer:
        lp.integrality_ = [HighsVarType.kInteger] * (a.shape[1] - continuous) + [HighsVarType.kContinuous] * continuous
    h.passModel(lp)
    return h


class _Master:
    """The restricted master LP of one interval (minimised: −objective), grown column by column.

    Rows: cover (one per mover, = 1), convexity (one per rep, = 1), link (one per (group, owner)
    pair, = 0: a group left unassigned keeps its cards with its owners), value band over
    (E_r − (1 + b) w_r M ≤ 0) and under (E_r − (1 − b) w_r M ≥ 0) per rep, mean (Σ_r E_r − n M = 0).
    Columns: u per mover, M in the interval, two artificials per row but the convexity ones
    (+1 costing the centre's dual + δ, −1 costing −(the centre's dual − δ): they hold the master's
    duals in a box around the centre, and are not in the problem), then the reps' columns."""

    def __init__(self, m: Model, d: _Data, lo: float, hi: float, u_zero: np.ndarray | None = None) -> None:
        n_m, n_r, n_p = len(d.movers), len(m.reps), len(d.pair_g)
        self.n_m, self.n_r, self.n_p, self.value_on = n_m, n_r, n_p, d.value_on
        n_v = 2 * n_r + 1 if d.value_on else 0
        self.n_row = n_m + n_r + n_p + n_v
        self.cover, self.conv, self.link, self.band = 0, n_m, n_m + n_r, n_m + n_r + n_p
        rlo = np.r_[np.ones(n_m + n_r), np.zeros(n_p)]
        rhi = np.r_[np.ones(n_m + n_r), np.zeros(n_p)]
        if d.value_on:
            rlo = np.r_[rlo, np.full(n_r, -INF), np.zeros(n_r + 1)]
            rhi = np.r_[rhi, np.zeros(n_r), np.full(n_r, INF), 0.0]
        h = _Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.addRows(self.n_row, rlo, rhi, 0, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        self.h = h
        # u: +1 in its cover row, −1 in each of its link rows.
        starts, idx, vals = [], [], []
        pair_of = [np.flatnonzero(d.pair_g == g) for g in range(n_m)]
        for g in range(n_m):
            starts.append(len(idx))
            idx += [self.cover + g, *(self.link + pair_of[g]).tolist()]
            vals += [1.0] + [-1.0] * len(pair_of[g])
        u_hi = np.ones(n_m)
        if u_zero is not None:
            u_hi[u_zero] = 0.0  # a mover a branch puts on a rep is not left unassigned
        self._add(d.u_cost, np.zeros(n_m), u_hi, starts, idx, vals)
        self.n_col = n_m
        self.art_rows = np.r_[np.arange(n_m), self.link + np.arange(n_p)].astype(np.int64)
        if d.value_on:
            w, b = m.weights(), m.value_band
            rr = self.band + np.arange(n_r)
            col_idx = np.r_[rr, n_r + rr, self.band + 2 * n_r].astype(np.int32)
            col_val = np.r_[-(1 + b) * w, -(1 - b) * w, -float(n_r)]
            self._add(np.zeros(1), np.array([lo]), np.array([hi]), [0], col_idx.tolist(), col_val.tolist())
            self.n_col += 1
            self.art_rows = np.r_[self.art_rows, self.band + np.arange(2 * n_r + 1)]
        k = len(self.art_rows)
        self.art = self.n_col + np.arange(2 * k)
        self._add(
            np.zeros(2 * k),
            np.zeros(2 * k),
            np.full(2 * k, INF),
            list(range(2 * k)),
            np.r_[self.art_rows, self.art_rows].tolist(),
            np.r_[np.ones(k), -np.ones(k)].tolist(),
        )
        self.n_col += 2 * k
        self.first = self.n_col  # the reps' columns start here
        self.cols: list[_Column] = []
        self.keys: set[tuple[int, tuple[int, ...], tuple[int, ...]]] = set()
        self.cuts: list[_Triple] = []  # subset-row cuts, one row each after the others
        self.value = INF
        self.artificial = 0.0
        self.x = np.zeros(0)

    def box(self, centre: _Duals, delta: np.ndarray) -> None:
        """Hold the duals of the artificials' rows within ``centre ± delta`` (in their order)."""
        hat = np.r_[centre.pi, centre.sigma]
        if self.value_on:
            hat = np.r_[hat, centre.over, centre.under, centre.gamma]
        cost = np.r_[hat + delta, -(hat - delta)]
        self.h.changeColsCost(len(cost), self.art.astype(np.int32), cost)

    def _add(
        self, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray, starts: list[int], idx: list[int], vals: list[float]
    ) -> None:
        self.h.addCols(
            len(cost),
            np.asarray(cost, dtype=float),
            np.asarray(lb, dtype=float),
            np.asarray(ub, dtype=float),
            len(idx),
            np.asarray(starts, dtype=np.int32),
            np.asarray(idx, dtype=np.int32),
            np.asarray(vals, dtype=float),
        )

    def add(self, cols: list[_Column]) -> None:
        cols = [c for c in cols if (c.rep, c.x, c.y) not in self.keys]
        if not cols:
            return
        starts, idx, vals = [], [], []
        for c in cols:
            starts.append(len(idx))
            idx += [self.cover + g for g in c.x] + [self.conv + c.rep] + [self.link + p for p in c.y]
            vals += [1.0] * (len(c.x) + 1 + len(c.y))
            if self.value_on:
                idx += [self.band + c.rep, self.band + self.n_r + c.rep, self.band + 2 * self.n_r]
                vals += [c.ev, c.ev, c.ev]
            crossed = (self.n_row + np.flatnonzero(_crossed(self.cuts, c.x))).tolist()
            idx += crossed
            vals += [1.0] * len(crossed)
        self._add(np.array([c.cost for c in cols]), np.zeros(len(cols)), np.full(len(cols), INF), starts, idx, vals)
        self.cols += cols
        self.keys.update((c.rep, c.x, c.y) for c in cols)
        self.n_col += len(cols)

    def add_cuts(self, cuts: list[_Triple]) -> None:
        """One row per subset-row cut: the columns holding at least two of its three movers sum to
        at most 1 (each mover is covered once, so a division uses at most one such column)."""
        held = [set(c.x) for c in self.cols]
        starts, idx = [], []
        for cut in cuts:
            starts.append(len(idx))
            idx += [self.first + k for k, x in enumerate(held) if sum(g in x for g in cut) >= 2]
        self.h.addRows(
            len(cuts),
            np.full(len(cuts), -INF),
            np.ones(len(cuts)),
            len(idx),
            np.asarray(starts, dtype=np.int32),
            np.asarray(idx, dtype=np.int32),
            np.ones(len(idx)),
        )
        self.cuts += cuts

    def lam(self) -> np.ndarray:
        """The reps' columns' values in the last solution (0 for those added since)."""
        lam = self.x[self.first : self.first + len(self.cols)]
        out: np.ndarray = np.r_[lam, np.zeros(len(self.cols) - len(lam))]
        return out

    def solve(self) -> tuple[_Duals, np.ndarray]:
        """The master's duals (signs clipped to the rows' senses) and its convexity duals."""
        self.h.run()
        status = self.h.modelStatusToString(self.h.getModelStatus())
        if status != "Optimal":  # HiGHS's simplex from the last basis may stop short (seen after rows are
            self.h.clearSolver()  # added): solved again from scratch
            self.h.run()
            status = self.h.modelStatusToString(self.h.getModelStatus())
        if status != "Optimal":
            raise RuntimeError(f"restricted master: LP {status}")
        self.value = float(self.h.getInfo().objective_function_value)
        sol = self.h.getSolution()
        self.x = np.asarray(sol.col_value)
        self.artificial = float(self.x[self.art].sum())
        y = np.asarray(sol.row_dual)
        n_m, n_r = self.n_m, self.n_r
        if self.value_on:
            over, under = y[self.band : self.band + n_r], y[self.band + n_r : self.band + 2 * n_r]
            gamma = y[self.band + 2 * n_r]
        else:
            over, under, gamma = np.zeros(n_r), np.zeros(n_r), 0.0
        dual = _Duals(
            y[:n_m].copy(),
            y[self.link : self.link + self.n_p].copy(),
            np.minimum(over, 0.0),
            np.maximum(under, 0.0),
            float(gamma),
            tuple(self.cuts),
            np.minimum(y[self.n_row :], 0.0),
        )
        return dual, y[self.conv : self.conv + n_r].copy()


@dataclass
class _Run:
    """What the whole bound shares: the data, the pricers, the column pool and the counters."""

    m: Model
    d: _Data
    pricers: list[_Pricer]
    pool: dict[tuple[int, tuple[int, ...], tuple[int, ...]], _Column]
    res: PartitionBound
    whole: Whole
    scale: np.ndarray  # per artificial row (cover, link, then the value band's): its dual's scale
    width: float  # the box's first half-width, as a share of ``scale``
    start: np.ndarray  # the start's division (rep index per group)


def _lagrangian(run: _Run, dual: _Duals, st: _State) -> tuple[float, list[_Column]]:
    """The Lagrangian bound (minimised form) at ``dual`` for the node ``st`` (its interval of the
    mean and its branching rules), and the columns its pricing found; inf when some rep has no
    column (no band-holding division has its mean in the interval and keeps the node's rules)."""
    lo, hi, e_range = st.lo, st.hi, st.e_range
    m, d = run.m, run.d
    total = float(dual.pi.sum() + dual.rho.sum())  # the cover rows' right-hand sides, then the cuts'
    # u ∈ [0, 1] (0 for a mover a rule puts on a rep): cost − cover dual + its link duals.
    rc_u = d.u_cost - dual.pi + np.bincount(d.pair_g, weights=dual.sigma, minlength=len(d.movers))
    rc_u[st.u_zero] = 0.0
    total += float(np.minimum(rc_u, 0.0).sum())
    if d.value_on:
        w, b = m.weights(), m.value_band
        rc_m = (1 + b) * float(w @ dual.over) + (1 - b) * float(w @ dual.under) + len(m.reps) * dual.gamma
        total += min(rc_m * lo, rc_m * hi)
    found: list[_Column] = []
    for r, pr in enumerate(run.pricers):
        n_range = (float(st.n_range[r, 0]), float(st.n_range[r, 1])) if st.limits else None
        least, cols, stopped, nodes = pr.price(d, dual, float(e_range[r, 0]), float(e_range[r, 1]), st.fix[r], n_range)
        run.res.pricings += 1
        run.res.stopped += int(stopped)
        run.res.nodes += nodes
        if not np.isfinite(least):
            return INF, []
        total += least
        found += cols
    return total, found


class _State:
    """A node: column generation on one interval [lo, hi] of the mean under branching ``rules``
    on (mover, rep) pairs and ``limits`` on reps' loads (none at an interval's root): its master,
    the best Lagrangian point so far (the box's centre) and the box's half-width. ``cap``: the
    parent's bound (maximised form), which the node's keeps under (its divisions are some of the
    parent's)."""

    def __init__(
        self,
        run: _Run,
        lo: float,
        hi: float,
        centre: _Duals | None,
        rules: tuple[_Rule, ...] = (),
        cap: float = INF,
        limits: tuple[_Limit, ...] = (),
        cuts: tuple[_Triple, ...] = (),
    ) -> None:
        m, d = run.m, run.d
        self.cuts = cuts  # subset-row cuts in its master (its parent's, then its own)
        self.separations = 0  # rounds of cuts separated at this node
        n_r = len(m.reps)
        self.lo, self.hi, self.rules, self.cap, self.limits = lo, hi, rules, cap, limits
        self.depth = len(rules) + len(limits)
        self.u_zero = np.array(sorted({g for g, _, on in rules if on}), dtype=np.int64)
        self.fix = [pr.fixes(d, rules) if rules else None for pr in run.pricers]
        if d.value_on:
            w, b = m.weights(), m.value_band
            pad = 1e-9 * max(abs(hi), 1.0)
            self.e_range = np.c_[(1 - b) * w * lo - pad, (1 + b) * w * hi + pad]
        else:
            self.e_range = np.c_[np.full(n_r, -INF), np.full(n_r, INF)]
        self.n_range = np.array([[pr.n_lo, pr.n_hi] for pr in run.pricers], dtype=float).reshape(n_r, 2)
        for r, kind, a, b2 in limits:  # a branch narrows one rep's movable cards or expected value
            rng = self.n_range if kind == "n" else self.e_range
            rng[r] = max(rng[r, 0], a), min(rng[r, 1], b2)
        self.rounds, self.converged, self.infeasible = 0, False, False
        self.integral: np.ndarray | None = None  # at its LP bound with an integral master: the node's optimum
        self.history: list[float] = []
        self.delta = run.width * run.scale
        self.best = -INF  # the best Lagrangian bound (minimised form)
        self.centre = _compact_duals(run, lo, hi) if centre is None else centre
        if self.centre is not None:
            self.centre = self.centre.on(cuts)
        self.ms: _Master | None = None
        if self.centre is None:  # not even a split division of the interval holds the bands
            self.infeasible = True
            return
        self.best, found = _lagrangian(run, self.centre, self)
        if not np.isfinite(self.best):
            self.infeasible = True
            return
        run.pool.update({(c.rep, c.x, c.y): c for c in found})
        self.ms = _Master(m, d, lo, hi, self.u_zero)
        self.ms.add_cuts(list(cuts))
        self.ms.add([c for c in run.pool.values() if self.fits(c, d)])
        self.history.append(min(d.held_value - self.best, cap))

    def fits(self, c: _Column, d: _Data) -> bool:
        """The column holds its band for some mean of the interval and keeps the node's rules."""
        if not self.e_range[c.rep, 0] <= c.ev <= self.e_range[c.rep, 1]:
            return False
        if not self.n_range[c.rep, 0] <= c.n <= self.n_range[c.rep, 1]:
            return False
        for g, r, on in self.rules:
            has = g in c.x
            if on and (has != (c.rep == r) or (c.y and bool((d.pair_g[list(c.y)] == g).any()))):
                return False
            if not on and c.rep == r and has:
                return False
        return True

    @property
    def open(self) -> bool:
        return not (self.converged or self.infeasible)

    def bound(self, held: float) -> float:
        """The node's bound (maximised form; -inf: no band-holding division in it)."""
        return -INF if self.infeasible else min(held - self.best, self.cap)

    def step(self, run: _Run, smoothing: float, tol: float) -> None:
        """One round: the master in the box, pricing at the smoothed point (and at the master's
        own duals on a mispricing), the box moved to a better Lagrangian point or widened when it
        binds and nothing prices in."""
        assert self.ms is not None and self.centre is not None
        ms, centre = self.ms, self.centre
        scale = max(1.0, abs(ms.value) if np.isfinite(ms.value) else 1.0, abs(self.best))
        ms.box(centre, self.delta)
        own, mu = ms.solve()
        point = centre.mix(own, smoothing)
        lagr, found = _lagrangian(run, point, self)
        self.rounds += 1
        run.res.rounds += 1
        entering = [c for c in found if own.rc(c) - mu[c.rep] < -tol * scale]
        if not entering and smoothing > 0 and np.isfinite(lagr):  # a mispricing: the master's own duals
            lagr2, found2 = _lagrangian(run, own, self)
            if lagr2 > lagr:
                lagr, point = lagr2, own
            found += found2
            entering = [c for c in found2 if own.rc(c) - mu[c.rep] < -tol * scale]
        if not np.isfinite(lagr):
            self.infeasible = True
            return
        run.pool.update({(c.rep, c.x, c.y): c for c in found})
        if lagr > self.best:  # a serious step: the box moves to the better point
            self.best, self.centre = lagr, point
        self.history.append(min(run.d.held_value - self.best, self.cap))
        if not entering:
            if ms.artificial <= 1e-9:  # nothing prices in and the box does not bind: the LP bound
                self.converged = True
                self.integral = _integral(run, ms)
                if self.integral is not None:  # the LP's optimum is a division: the node's optimum
                    self.best = max(self.best, ms.value)
                return
            self.delta = self.delta * 4  # the box binds: widen it
        ms.add(entering)

    def add_cuts(self, cuts: list[_Triple]) -> None:
        """Add subset-row cuts to the node's master (their duals 0 at the box's centre): the node
        is open again, its LP bound now that of the master with them."""
        assert self.ms is not None and self.centre is not None
        self.ms.add_cuts(cuts)
        self.cuts = (*self.cuts, *cuts)
        self.centre = self.centre.on(self.cuts)
        self.converged, self.integral = False, None

    def split(self, run: _Run, branching: str = "pair") -> tuple[_State, _State] | None:
        """The node's two children (their divisions together are the node's), None when the
        master's solution gives nothing to branch on. ``branching`` (see :func:`partition_bound`):
        ``pair``, the (mover, rep) pair the master splits most (its share nearest one half; the
        lowest mover, then rep, on a tie): on that rep, or not; ``count``, the rep whose movable
        cards the master mixes furthest from a whole number (the lowest rep on a tie): at most
        its floor, or at least its ceiling; ``value``, the rep whose columns' expected values the
        master spreads most (the mean absolute difference from their mix): its expected value at
        most the mix's, or at least; ``count-value``: count while some rep's count is split, then
        value. When a rep's load gives nothing to branch on (every rep's mix whole in cards, or of
        columns of one expected value), a pair."""
        if self.ms is None:
            return None
        cap = self.bound(run.d.held_value)
        limits = self._load_split(run, branching) if branching != "pair" else None
        if limits is not None:
            return (
                _State(run, self.lo, self.hi, self.centre, self.rules, cap, (*self.limits, limits[0]), self.cuts),
                _State(run, self.lo, self.hi, self.centre, self.rules, cap, (*self.limits, limits[1]), self.cuts),
            )
        share = _shares(run, self.ms)
        frac = np.minimum(share, 1.0 - share)
        if not (frac > 1e-6).any():
            return None
        g, r = np.unravel_index(int(np.argmax(frac)), frac.shape)  # first maximum: lowest mover, rep
        return (
            _State(
                run, self.lo, self.hi, self.centre, (*self.rules, (int(g), int(r), True)), cap, self.limits, self.cuts
            ),
            _State(
                run, self.lo, self.hi, self.centre, (*self.rules, (int(g), int(r), False)), cap, self.limits, self.cuts
            ),
        )

    def _load_split(self, run: _Run, branching: str) -> tuple[_Limit, _Limit] | None:
        """The two children's limits of a branch on a rep's card count or expected value (see
        :meth:`split`), None when there is none to make."""
        assert self.ms is not None
        n_r = len(run.m.reps)
        lam = self.ms.lam()
        use = lam > 1e-9
        reps = np.array([c.rep for c in self.ms.cols], dtype=np.int64)[use]
        n = np.array([c.n for c in self.ms.cols], dtype=float)[use]
        ev = np.array([c.ev for c in self.ms.cols], dtype=float)[use]
        lam = lam[use]
        limits: tuple[_Limit, _Limit] | None = None
        if branching in ("count", "count-value"):
            mix = np.bincount(reps, weights=lam * n, minlength=n_r)
            frac = np.minimum(mix - np.floor(mix), np.ceil(mix) - mix)
            if (frac > 1e-6).any():
                r = int(np.argmax(frac))
                k = float(np.floor(mix[r]))
                limits = (r, "n", -INF, k), (r, "n", k + 1.0, INF)
        if limits is None and branching in ("value", "count-value"):
            mix = np.bincount(reps, weights=lam * ev, minlength=n_r)
            spread = np.bincount(reps, weights=lam * np.abs(ev - mix[reps]), minlength=n_r)
            tiny = 1e-9 * max(float(np.abs(mix).max(initial=0.0)), 1.0)
            if (spread > tiny).any():
                r = int(np.argmax(spread))
                v = float(mix[r])
                limits = (r, "e", -INF, v), (r, "e", v, INF)
        return limits

    def result(self, held: float) -> PartitionInterval:
        master = held - self.ms.value if self.ms is not None and np.isfinite(self.ms.value) else -INF
        exact = self.ms is not None and np.isfinite(self.ms.value) and self.ms.artificial <= 1e-9
        return PartitionInterval(
            self.lo,
            self.hi,
            self.bound(held),
            master,
            exact,
            self.rounds,
            self.converged,
            self.infeasible,
            self.history,
            self.depth,
        )


def _shares(run: _Run, ms: _Master) -> np.ndarray:
    """(movers, reps): the share of each mover the master's last solution puts on each rep."""
    lam = ms.lam()
    share = np.zeros((len(run.d.movers), len(run.m.reps)))
    for c, v in zip(ms.cols, lam, strict=True):
        if v > 1e-9 and c.x:
            share[list(c.x), c.rep] += v
    return share


def _separate(ms: _Master, limit: int, tol: float = 1e-4) -> list[_Triple]:
    """Up to ``limit`` subset-row cuts (Jepsen et al.: rank-1 Chvátal–Gomory cuts on triples of
    cover rows) the master's last solution breaks: triples of movers whose columns holding at
    least two of them sum to more than 1 + ``tol``, the most broken first (the lowest movers on a
    tie), at most two per mover and none the master has. For a triple T, that sum is the sum
    over its three pairs of the columns holding both, less twice that of the columns holding all
    three; only movers on a column of the master below 1 can be in one."""
    lam = ms.lam()
    use = [k for k, v in enumerate(lam) if v > 1e-9 and ms.cols[k].x]
    movers = sorted({g for k in use if lam[k] < 1 - 1e-9 for g in ms.cols[k].x})
    if len(movers) < 3:
        return []
    at = {g: j for j, g in enumerate(movers)}
    a = np.zeros((len(use), len(movers)))
    for row, k in enumerate(use):
        a[row, [at[g] for g in ms.cols[k].x if g in at]] = 1.0
    w = lam[use]
    both = (a * w[:, None]).T @ a  # columns holding both of a pair
    f = len(movers)
    found: list[tuple[float, _Triple]] = []
    for i in range(f - 2):
        s = both[i, :, None] + both[i, None, :] + both
        s[np.tril_indices(f)] = 0.0
        s[: i + 1, :] = 0.0
        j, k = np.nonzero(s > 1 + tol)
        if not len(j):
            continue
        three = (a[:, [i]] * a[:, j] * a[:, k] * w[:, None]).sum(axis=0)
        broken = s[j, k] - 2 * three
        for v, jj, kk in zip(broken, j, k, strict=True):
            if v > 1 + tol:
                found.append((float(v), (movers[i], movers[int(jj)], movers[int(kk)])))
    found.sort(key=lambda t: (-t[0], t[1]))
    have, uses = set(ms.cuts), dict.fromkeys(movers, 0)
    out: list[_Triple] = []
    for _, cut in found:
        if len(out) >= limit:
            break
        if cut in have or any(uses[g] >= 2 for g in cut):
            continue
        out.append(cut)
        for g in cut:
            uses[g] += 1
    return out


def _integral(run: _Run, ms: _Master) -> np.ndarray | None:
    """The division the master's last solution is, when it assigns every mover whole to one rep
    (rep index per group, the held groups as in the start), else None."""
    share = _shares(run, ms)
    if not (np.abs(share - np.rint(share)) <= 1e-6).all() or not (np.abs(share.sum(axis=1) - 1.0) <= 1e-6).all():
        return None
    choice = run.start.copy()
    choice[run.d.movers] = np.argmax(share, axis=1)
    return choice


def _compact_duals(run: _Run, lo: float, hi: float) -> _Duals | None:
    """Duals for the master from the compact LP with the bands held and the mean in [lo, hi]
    (the rows the two share: cover, value band, mean; the count band and capacity rows are in
    the pricing): a first centre whose Lagrangian bound is at least that LP's. None: the LP has
    no solution (no division of the interval holds the bands, even split)."""
    m, d, w = run.m, run.d, run.whole
    prog = w.prog
    h = highs_for(prog, False, {})
    if prog.mean_col is not None:
        h.changeColBounds(prog.mean_col, lo, hi)
    h.run()
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        return None
    y = np.asarray(h.getSolution().row_dual)
    n_m, n_r = len(d.movers), len(m.reps)
    pi = np.minimum(y[:n_m], d.u_cost)
    # A group's cost of being left unassigned goes to its owners' link rows (u then prices at 0):
    # a rep keeping such a group's cards pays it, as the compact programme's u column does.
    owners = np.bincount(d.pair_g, minlength=n_m)
    sigma = -(d.u_cost - pi)[d.pair_g] / np.maximum(owners[d.pair_g], 1)
    zero = np.zeros(n_r)
    if prog.value_row is None:
        return _Duals(pi, sigma, zero, zero.copy(), 0.0)
    v = prog.value_row + n_r  # after the rows defining E_r: over, under, then the mean row
    return _Duals(
        pi,
        sigma,
        np.minimum(y[v : v + n_r], 0.0),
        np.maximum(y[v + n_r : v + 2 * n_r], 0.0),
        -float(y[v + 2 * n_r]),
    )


def _mean_range(m: Model, start: np.ndarray, cutoff_obj: float) -> tuple[float, float]:
    """The least and the greatest mean over the compact LP with the bands held and the objective
    at least ``cutoff_obj``."""
    w = whole_programme(m, start, held=True)
    limit = w.held - cutoff_obj
    lo, hi, _ = mean_range(w, limit + 1e-9 * max(abs(limit), 1.0))
    return lo, hi


def _warm_columns(m: Model, d: _Data, start: np.ndarray) -> list[_Column]:
    """The start's columns and those of the compact LP's division (bands held) rounded to each
    group's largest share."""
    cols = [_columns_of(m, d, start)]
    w = whole_programme(m, start, held=True)
    h = highs_for(w.prog, False, {})
    h.run()
    if h.modelStatusToString(h.getModelStatus()) == "Optimal":
        x = np.asarray(h.getSolution().col_value)[: w.prog.n_x]
        rounded = start.copy()
        share = np.zeros((len(m.groups), len(m.reps)))
        share[w.movers[w.prog.group], w.prog.rep] = x
        rounded[w.movers] = np.argmax(share[w.movers], axis=1)
        cols.append(_columns_of(m, d, rounded))
    n_lo = np.ceil(m.lower - 1e-9) - d.fixed_n
    n_hi = np.floor(np.minimum(m.upper, d.cap) + 1e-9) - d.fixed_n
    return [c for group in cols for c in group if n_lo[c.rep] <= c.n <= n_hi[c.rep] and np.isfinite(c.cost)]


def _columns_of(m: Model, d: _Data, choice: np.ndarray) -> list[_Column]:
    """Each rep's column in ``choice`` (rep index per group, -1: unassigned)."""
    at = choice[d.movers]
    out = []
    for r in range(len(m.reps)):
        xs = np.flatnonzero(at == r)
        ys = np.flatnonzero((d.pair_r == r) & (at[d.pair_g] < 0))
        ev = float(d.fixed_e[r] + d.ev[r, xs].sum() + d.pair_e[ys].sum())
        n = int(d.cnt[xs].sum() + d.pair_n[ys].sum())
        out.append(_Column(r, tuple(xs.tolist()), tuple(ys.tolist()), float(d.cx[r, xs].sum()), ev, n))
    return out


def _progress(res: PartitionBound, parts: list[_State], held: float, top: _State) -> str:
    """One line on where the bound stands: rounds, the bound and the best division known (as a
    share of the start's objective), the nodes, the highest node's rounds and depth."""
    bound = max(max(st.bound(held) for st in parts), res.best)
    return (
        f"round {res.rounds}: bound {(bound - res.start) / abs(bound):.4%}, best known "
        f"{(res.best - res.start) / abs(res.start):+.4%}; {len(parts)} nodes ({res.branched} by branching); "
        f"the highest: {top.rounds} rounds, depth {top.depth}{', at its LP' if top.converged else ''}"
    )


def _branch_text(child: _State, parent: _State) -> str:
    """What the branch that made ``child`` (the first of two) from ``parent`` splits."""
    if len(child.rules) > len(parent.rules):
        g, r, _ = child.rules[-1]
        return f"mover {g}, rep {r}"
    r, kind, _, hi = child.limits[-1]
    return f"rep {r}'s {'movable cards' if kind == 'n' else 'expected value'} at {hi:,.2f}"


def _restricted_ip(run: _Run, lo: float, hi: float, nodes: int) -> np.ndarray | None:
    """The restricted master over every column of the pool as a MILP (price-and-branch): each rep
    one whole column, every mover covered once, both bands held around a mean in [lo, hi]; HiGHS
    at ``nodes`` nodes from the start's division. The best division it finds (rep index per
    group), None when it finds none."""
    m, d = run.m, run.d
    ms = _Master(m, d, lo, hi)
    ms.add(list(run.pool.values()))
    h = ms.h
    art = ms.art.astype(np.int32)
    h.changeColsBounds(len(art), art, np.zeros(len(art)), np.zeros(len(art)))  # no artificials
    ints = np.r_[np.arange(ms.n_m), np.arange(ms.first, ms.n_col)].astype(np.int32)
    h.changeColsIntegrality(len(ints), ints, np.array([HighsVarType.kInteger] * len(ints)))
    for name, value in (("mip_max_nodes", nodes), ("mip_rel_gap", 0.0), ("threads", 1)):
        h.setOptionValue(name, value)
    at = {(c.rep, c.x, c.y): k for k, c in enumerate(ms.cols)}
    keys = [(c.rep, c.x, c.y) for c in _columns_of(m, d, run.start)]
    if all(k in at for k in keys):  # the start as the first incumbent
        x = np.zeros(ms.n_col)
        x[: ms.n_m] = run.start[d.movers] < 0
        if d.value_on:
            x[ms.n_m] = float(m.loads_for(run.start)[2].mean())
        x[[ms.first + at[k] for k in keys]] = 1.0
        sol = HighsSolution()
        sol.col_value, sol.value_valid = list(x), True
        h.setSolution(sol)
    h.run()
    if h.getInfo().primal_solution_status < 2:
        return None
    lam = np.asarray(h.getSolution().col_value)[ms.first : ms.n_col]
    choice = run.start.copy()
    choice[d.movers] = -1
    for c, v in zip(ms.cols, lam, strict=True):
        if v > 0.5:
            choice[d.movers[list(c.x)]] = c.rep
    return choice


def partition_bound(
    m: Model,
    start: np.ndarray,
    *,
    intervals: int = 4,
    refine: int = 2,
    rounds: int = 200,
    nodes: int = 500,
    smoothing: float = 0.5,
    width: float = 0.05,
    pricing_gap: float = 1e-6,
    per_rep: int = 4,
    tol: float = 1e-7,
    branch: int = 0,
    node_rounds: int = 30,
    ip_nodes: int = 0,
    branching: str = "pair",
    cut_rounds: int = 0,
    cuts: int = 50,
    log: Callable[[str], None] | None = None,
) -> PartitionBound | None:
    """Bound the optimum of ``m`` over divisions that hold both bands and the capacities (see the
    module's text), from the division ``start`` (rep index per group, -1: unassigned; it must hold
    them): ``intervals`` first intervals of the mean; ``rounds`` rounds of column generation in
    all, each on the node with the highest bound (best first); up to ``refine`` times the
    highest interval split in two once it is at its LP bound; then up to ``branch`` times the
    highest node branched in two, once it is at its LP bound or has had ``node_rounds`` rounds
    (branch-and-price; ``branching`` says on what: ``pair``, the (mover, rep) pair its master
    splits most, the mover on the rep or not; ``count``, a rep's movable cards the master mixes
    to a fraction, at most its floor or at least its ceiling; ``value``, a rep's expected value
    the master mixes from the most spread columns, at most or at least the mix; ``count-value``,
    count while it can, then value); each pricing MILP at most ``nodes``
    nodes; Wentges smoothing ``smoothing``; the master's duals
    first held within ``width`` × each row's scale of the compact LP's; each pricing MILP stops
    within ``pricing_gap`` × the start's objective / reps of its optimum (its dual bound is what
    counts, so this loosens the bound by at most ``pricing_gap`` of the objective per round) and
    gives up to ``per_rep`` columns (its best, then incumbents its search found on the way). With
    ``ip_nodes``, the restricted master over every column found is then solved as a MILP at that
    node limit, for a better division. ``log``: told the bound every 25 rounds and at every
    branching. ``cut_rounds``: at a node at its LP bound (with rounds left to price, as above), up to
    that many times up to ``cuts`` subset-row cuts its master breaks are added (:func:`_separate`;
    children and split intervals keep their parent's) and column generation goes on, each cut
    one more variable in each rep's pricing MILP it may cross. None when ``start``
    is outside a band or a capacity, or with value capacities (not priced here)."""
    if m.value_capped or not m.feasible(start):
        return None
    d = _data(m)
    start_value = m.objective(start)
    res = PartitionBound(start_value, start_value, (0.0, 0.0), 0.0, best=start_value)
    if d.value_on:
        res.start_mean = float(m.loads_for(start)[2].mean())
        lo, hi = _mean_range(m, start, start_value)
        pad = 1e-7 * max(abs(hi), 1.0)
        lo, hi = lo - pad, hi + pad
    else:
        lo = hi = 0.0
        intervals, refine = 1, 0
    res.mean_range = (lo, hi)
    typical = np.where(np.isfinite(d.cx), np.abs(d.cx), np.nan)
    scale_pi = np.nanmedian(typical, axis=0) + 1.0
    scale = np.r_[scale_pi, scale_pi[d.pair_g], np.ones(2 * len(m.reps) + 1) if d.value_on else np.zeros(0)]
    abs_gap = pricing_gap * max(abs(start_value), 1.0) / max(len(m.reps), 1)
    pricers = [_Pricer(m, d, r, nodes, abs_gap, per_rep) for r in range(len(m.reps))]
    pool = {(c.rep, c.x, c.y): c for c in _warm_columns(m, d, start)}
    run = _Run(m, d, pricers, pool, res, whole_programme(m, start, held=True), scale, width, start.copy())

    def note(choice: np.ndarray | None) -> None:
        """Keep ``choice`` as the best division known when it holds both bands and beats it."""
        if choice is not None and m.feasible(choice) and (value := m.objective(choice)) > res.best:
            res.best, res.best_choice = value, choice

    held = d.held_value
    edges = np.linspace(lo, hi, intervals + 1)
    parts = [_State(run, float(a), float(b), None) for a, b in itertools.pairwise(edges)]
    left, logged = rounds, -1
    while True:
        closed = res.best + tol * max(abs(res.best), 1.0)  # a node bounded below this is closed
        live = [k for k, st in enumerate(parts) if st.bound(held) > closed]
        if not live:
            break
        k = max(live, key=lambda j: (parts[j].bound(held), -j))
        st = parts[k]
        if st.integral is not None:  # the highest node's optimum is a division: the optimum
            break
        if log is not None and res.rounds % 25 == 0 and res.rounds != logged:
            logged = res.rounds
            log(_progress(res, parts, held, st))
        if left <= 0:
            break
        if st.open and (st.depth == 0 or st.rounds < node_rounds):
            st.step(run, smoothing, tol)
            left -= 1
            note(st.integral)
            continue
        if (
            not st.open
            and st.ms is not None
            and st.separations < cut_rounds
            and (st.depth == 0 or st.rounds < node_rounds)
        ):  # at its LP bound, with rounds left to price under cuts: cut it
            st.separations += 1
            found_cuts = _separate(st.ms, cuts)
            if found_cuts:
                st.add_cuts(found_cuts)
                res.cuts += len(found_cuts)
                if log is not None:
                    log(f"{_progress(res, parts, held, st)}; {len(found_cuts)} subset-row cuts added")
                continue
        if st.depth == 0 and not st.open and refine > 0:  # the highest interval is at its LP bound: split it
            refine -= 1
            mid = 0.5 * (st.lo + st.hi)
            parts[k : k + 1] = [
                _State(run, st.lo, mid, st.centre, cuts=st.cuts),
                _State(run, mid, st.hi, st.centre, cuts=st.cuts),
            ]
            continue
        children = st.split(run, branching) if res.branched < branch else None
        if children is not None:
            parts[k : k + 1] = list(children)
            res.branched += 2
            if log is not None:
                log(f"{_progress(res, parts, held, st)}; branched on {_branch_text(children[0], st)}")
            continue
        if st.open and res.branched < branch:  # a whole master short of its LP: more rounds
            st.step(run, smoothing, tol)
            left -= 1
            note(st.integral)
            continue
        break
    closed = res.best + tol * max(abs(res.best), 1.0)
    res.open = sum(1 for st in parts if st.bound(held) > closed)
    res.intervals = [st.result(held) for st in parts]
    if ip_nodes > 0:
        ip = _restricted_ip(run, lo, hi, ip_nodes)
        res.ip = m.objective(ip) if ip is not None and m.feasible(ip) else None
        note(ip)
    res.columns = len(pool)
    res.bound = max(max(iv.bound for iv in res.intervals), res.best)
    return res
