"""A bound on the optimal policy's optimum from the set-partitioning (Dantzig–Wolfe) relaxation.

Bench-only. The compact programme (:mod:`tasksync.policies.optimal.programme`) has a weak LP: a
group may split between reps to meet a band exactly. Here every rep picks one *column*, a whole set
of groups it holds (and the groups it keeps unassigned); each group is covered once. The master LP:

    min  Σ_j cost_j λ_j + Σ_g U_g u_g + p_v Σ_r (over_r + under_r)
    s.t. Σ_j [g ∈ x_j] λ_j + u_g = 1                    every movable group g
         Σ_{j of r} λ_j = 1                              every rep r (convexity)
         Σ_{j of r} [g ∈ y_j] λ_j − u_g = 0               every (group, owner r) of a group left unassigned
         Σ_{j of r} E_j λ_j − (1 + b) w_r M − over_r ≤ 0  the value band, with the mean M a master
         (1 − b) w_r M − Σ_{j of r} E_j λ_j − under_r ≤ 0 column (it couples the reps)
         n M − Σ_j E_j λ_j = 0

A column's cost holds the rep's whole share of the compact objective: −net score of its groups, the
count band's penalty and the capacity slack's cost at its card total (the compact programme's rows
for that rep). Pricing a rep is a knapsack over card totals, solved exactly by dynamic programming
(cards are integers; every group may go to every rep, as in the exact model). For any duals at
which the master's own columns (u, M, the slacks) price out, the Lagrangian bound
``Σ_g π_g + Σ_r (least reduced cost of a column of r)`` bounds the optimum, so every round gives a
valid bound and the best is kept. Column generation starts from the compact LP's duals (their
bound is the compact LP's), keeps the master's duals in a box around the best point so far
(boxstep: artificial columns, not in the problem, so any dual they give is still a valid point),
and stops when nothing prices in with the box not binding (the DW bound itself) or at ``rounds``
(a work limit). No clock anywhere: the same book gives the same bound.

The bound is on the compact programme's objective, which is :meth:`Model.objective` for any
division that leaves no group unassigned and no rep above a capacity (the exact reference's
bound is on the same programme).

Value capacities (a second knapsack dimension) are not priced here: :func:`dw_bound` says so and
returns no bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_array

from tasksync.policies.optimal.model import Model

__all__ = ["DWResult", "dw_bound"]

INF = np.inf


@dataclass
class _Column:
    rep: int
    x: np.ndarray  # indexes into movers: groups assigned to the rep
    y: np.ndarray  # indexes into the (group, owner) pairs: groups left unassigned, kept by the rep
    cost: float
    ev: float  # the rep's expected value E_r under this column


@dataclass
class DWResult:
    """The bound on the compact objective (maximised, same scale as :meth:`Model.objective`) and
    how it was found."""

    bound: float  # best Lagrangian bound: the optimum is at most this
    master: float  # the last box-restricted master's LP value (an estimate, not a bound)
    rounds: int
    columns: int
    converged: bool  # no column priced in: ``bound`` is the DW bound itself
    history: list[float] = field(default_factory=list)


@dataclass
class _Data:
    """The compact programme's terms for the movable groups, per rep."""

    movers: np.ndarray
    held_value: float  # objective of the held groups (constant)
    cx: np.ndarray  # (reps, movers): cost of the group at the rep (−net; inf: not a candidate)
    ev: np.ndarray  # (reps, movers): its expected value there
    cnt: np.ndarray  # (movers,) cards, integers
    u_cost: np.ndarray  # (movers,) cost of leaving a group unassigned
    pair_g: np.ndarray  # (pairs,) mover index of each (group, owner) pair
    pair_r: np.ndarray  # (pairs,) owner rep
    pair_n: np.ndarray  # (pairs,) its cards that stay
    pair_e: np.ndarray  # (pairs,) its expected value that stays
    fixed_n: np.ndarray  # (reps,) cards that cannot move
    fixed_e: np.ndarray  # (reps,) expected value that cannot move
    top: np.ndarray  # (reps,) most cards a rep may hold (capacity, or today's load above it)
    cap: np.ndarray  # (reps,) capacity (inf: none)
    cap_pen: float
    value_on: bool


def _data(m: Model) -> _Data:
    """The terms of :func:`tasksync.policies.optimal.programme.build_programme` over every mover."""
    n_r = len(m.reps)
    base = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = np.array([g for g in range(len(m.groups)) if not m.held[g]], dtype=np.int64)
    held = sum(m.net(g, int(base[g])) for g in range(len(m.groups)) if m.held[g])
    fixed = m.loads_for(base, skip=set(movers.tolist()))
    net = m.net_d[movers].T  # (reps, movers), -inf where not a candidate
    cx = np.where(np.isfinite(net), -net, INF)
    best = np.array([float(np.abs(m.score[g]).max()) + m.value_penalty * float(np.abs(m.ev[g]).max()) for g in movers])
    in_prog = np.isin(m.own_g, movers)
    finite_net = net[np.isfinite(net)]
    cap_pen = 2.0 * m.band_penalty * float(m.count.max(initial=1.0)) + float(np.abs(finite_net).max(initial=0.0)) + 1.0
    stay = m.stay_loads()[0]
    return _Data(
        movers=movers,
        held_value=float(held),
        cx=cx,
        ev=m.ev_d[movers].T.copy(),
        cnt=np.rint(m.count[movers]).astype(np.int64),
        u_cost=10.0 * (best + m.band_penalty * m.count[movers] + 1.0),
        pair_g=np.searchsorted(movers, m.own_g[in_prog]),
        pair_r=m.own_r[in_prog].astype(np.int64),
        pair_n=np.rint(m.own_n[in_prog]).astype(np.int64),
        pair_e=m.own_e[in_prog].astype(float),
        fixed_n=np.rint(fixed[0]).astype(np.int64),
        fixed_e=fixed[2].astype(float),
        top=np.where(np.isfinite(m.cap), np.maximum(m.cap, stay), INF)[:n_r],
        cap=m.cap.astype(float),
        cap_pen=cap_pen,
        value_on=bool(m.value_band and m.value_penalty > 0),
    )


def _count_cost(m: Model, d: _Data, r: int, n: np.ndarray) -> np.ndarray:
    """The count band's penalty and the capacity slack's cost of rep ``r`` holding ``n`` movable
    cards (inf above what it may hold)."""
    total = d.fixed_n[r] + n
    band = m.band_penalty * (np.maximum(total - m.upper, 0.0) + np.maximum(m.lower - total, 0.0))
    over = np.where(np.isfinite(d.cap[r]), np.maximum(total - d.cap[r], 0.0), 0.0)
    out: np.ndarray = np.where(total <= d.top[r] + 1e-9, band + d.cap_pen * over, INF)
    return out


def _column(m: Model, d: _Data, r: int, xs: np.ndarray, ys: np.ndarray) -> _Column:
    n = int(d.cnt[xs].sum() + d.pair_n[ys].sum())
    cost = float(d.cx[r, xs].sum()) + float(_count_cost(m, d, r, np.array([n]))[0])
    ev = float(d.fixed_e[r] + d.ev[r, xs].sum() + d.pair_e[ys].sum())
    return _Column(r, np.sort(xs), np.sort(ys), cost, ev)


def _price(
    m: Model, d: _Data, r: int, gx: np.ndarray, gy: np.ndarray, const: float, per_rep: int
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Rep ``r``'s columns of least reduced cost, at most one per card total and ``per_rep`` in all
    (best first): a knapsack over card totals by dynamic programming. ``gx``: per mover, the reduced
    cost of the group going to ``r`` (inf: not a candidate); ``gy``: per pair, of leaving it with
    ``r`` (only ``r``'s pairs are finite); ``const``: the column's constant reduced cost."""
    n_m = len(d.cnt)
    limit = d.cnt[np.isfinite(gx)].sum() + d.pair_n[np.isfinite(gy)].sum()
    if np.isfinite(d.top[r]):
        limit = min(int(limit), max(int(np.floor(d.top[r] + 1e-9)) - int(d.fixed_n[r]), 0))
    size = int(limit) + 1
    y_of = np.full(n_m, -1, dtype=np.int64)
    mine = np.flatnonzero(np.isfinite(gy))
    y_of[d.pair_g[mine]] = mine
    steps = [g for g in range(n_m) if np.isfinite(gx[g]) or y_of[g] >= 0]
    dp = np.full(size, INF)
    dp[0] = 0.0
    took = np.zeros((len(steps), size), dtype=np.int8)  # 1: x, 2: y
    for k, g in enumerate(steps):
        new = dp.copy()
        for flag, w, c in ((1, int(d.cnt[g]), gx[g]), (2, int(d.pair_n[y_of[g]]) if y_of[g] >= 0 else 0, INF)):
            if flag == 2 and y_of[g] >= 0:
                c = gy[y_of[g]]
            if not np.isfinite(c) or w >= size:
                continue
            cand = np.full(size, INF)
            cand[w:] = dp[: size - w] + c
            better = cand < new - 1e-12
            new[better] = cand[better]
            took[k, better] = flag
        dp = new
    total = dp + _count_cost(m, d, r, np.arange(size)) + const
    order = [n for n in np.argsort(total, kind="stable").tolist() if np.isfinite(total[n])][:per_rep]
    out = []
    for n in order:
        xs, ys, left = [], [], n
        for k in range(len(steps) - 1, -1, -1):
            g = steps[k]
            if took[k, left] == 1:
                xs.append(g)
                left -= int(d.cnt[g])
            elif took[k, left] == 2:
                ys.append(int(y_of[g]))
                left -= int(d.pair_n[y_of[g]])
        out.append((float(total[n]), np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)))
    return out


@dataclass
class _Master:
    """The restricted master LP's layout (rows, master-only columns) and its last solution."""

    n_r: int
    n_m: int
    n_p: int
    value_on: bool
    scale_pi: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per cover row: its dual's scale
    scale_sigma: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per link row
    scale_gamma: float = 1.0  # the mean row
    z: float = 0.0
    artificial: float = 0.0
    duals_eq: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duals_ub: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _solve_master(m: Model, d: _Data, cols: list[_Column], ms: _Master, box: tuple[_Duals, float]) -> bool:
    """Solve the restricted master LP over ``cols``, its duals of the cover, link and mean rows
    held within ``box`` (a centre and a half-width, as a share of each row's scale) by artificial
    columns (boxstep stabilisation: not in the original problem, so any dual they give is still
    a valid point for the Lagrangian bound); store its value, duals and the artificials' use.
    False: not solved."""
    n_r, n_m, n_p = ms.n_r, ms.n_m, ms.n_p
    n_c = len(cols)
    # Columns: λ (n_c), u (n_m), then with the value band M, over (n_r), under (n_r).
    n_var = n_c + n_m + ((1 + 2 * n_r) if ms.value_on else 0)
    eq_r: list[np.ndarray] = []
    eq_c: list[np.ndarray] = []
    eq_v: list[np.ndarray] = []
    ub_r: list[np.ndarray] = []
    ub_c: list[np.ndarray] = []
    ub_v: list[np.ndarray] = []
    cover, conv, link, mean_row = 0, n_m, n_m + n_r, n_m + n_r + n_p
    for j, col in enumerate(cols):
        eq_r += [cover + col.x, np.array([conv + col.rep]), link + col.y]
        eq_c += [np.full(len(col.x) + 1 + len(col.y), j)]
        eq_v += [np.ones(len(col.x) + 1 + len(col.y))]
        if ms.value_on:
            eq_r.append(np.array([mean_row]))
            eq_c.append(np.array([j]))
            eq_v.append(np.array([-col.ev]))
            ub_r.append(np.array([col.rep, n_r + col.rep]))
            ub_c.append(np.array([j, j]))
            ub_v.append(np.array([col.ev, -col.ev]))
    u = n_c + np.arange(n_m)
    eq_r += [cover + np.arange(n_m), link + np.arange(n_p)]
    eq_c += [u, u[d.pair_g]]
    eq_v += [np.ones(n_m), -np.ones(n_p)]
    cost = np.r_[[c.cost for c in cols], d.u_cost]
    bounds: list[tuple[float, float | None]] = [(0.0, None)] * n_var
    n_eq = n_m + n_r + n_p + (1 if ms.value_on else 0)
    b_eq = np.r_[np.ones(n_m + n_r), np.zeros(n_p), np.zeros(1 if ms.value_on else 0)]
    a_ub = b_ub = None
    if ms.value_on:
        mcol = n_c + n_m
        over, under = mcol + 1 + np.arange(n_r), mcol + 1 + n_r + np.arange(n_r)
        w, b = m.weights(), m.value_band
        eq_r.append(np.array([mean_row]))
        eq_c.append(np.array([mcol]))
        eq_v.append(np.array([float(n_r)]))
        rr = np.arange(n_r)
        ub_r += [rr, n_r + rr, rr, n_r + rr]
        ub_c += [np.full(n_r, mcol), np.full(n_r, mcol), over, under]
        ub_v += [-(1 + b) * w, (1 - b) * w, -np.ones(n_r), -np.ones(n_r)]
        cost = np.r_[cost, 0.0, np.full(2 * n_r, m.value_penalty)]
        if m.value_mean is not None:
            bounds[mcol] = (m.value_mean, m.value_mean)
        a_ub = coo_array((np.concatenate(ub_v), (np.concatenate(ub_r), np.concatenate(ub_c))), shape=(2 * n_r, n_var))
        b_ub = np.zeros(2 * n_r)
    # Artificials: +1 and −1 in each cover, link and mean row, costing the centre's dual ± δ.
    centre, width = box
    rows = np.r_[cover + np.arange(n_m), link + np.arange(n_p), [mean_row] if ms.value_on else []].astype(np.int64)
    hat = np.r_[centre.pi, centre.sigma, [centre.gamma] if ms.value_on else []]
    delta = width * np.r_[ms.scale_pi, ms.scale_sigma, [ms.scale_gamma] if ms.value_on else []]
    n_a = len(rows)
    art = n_var + np.arange(2 * n_a)
    eq_r += [rows, rows]
    eq_c += [art[:n_a], art[n_a:]]
    eq_v += [np.ones(n_a), -np.ones(n_a)]
    cost = np.r_[cost, hat + delta, -(hat - delta)]
    bounds += [(0.0, None)] * (2 * n_a)
    if a_ub is not None:
        a_ub = coo_array((a_ub.data, (a_ub.row, a_ub.col)), shape=(2 * n_r, n_var + 2 * n_a))
    a_eq = coo_array(
        (np.concatenate(eq_v), (np.concatenate(eq_r), np.concatenate(eq_c))), shape=(n_eq, n_var + 2 * n_a)
    )
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        return False
    ms.z = float(res.fun)
    ms.artificial = float(np.abs(res.x[n_var:]).sum())
    ms.duals_eq = np.asarray(res.eqlin.marginals)
    ms.duals_ub = np.asarray(res.ineqlin.marginals) if ms.value_on else np.zeros(0)
    return True


@dataclass
class _Duals:
    """Duals of the master's rows: cover, convexity, link, value band (over, under) and mean."""

    pi: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: float

    def k_e(self, r: int) -> float:
        """Reduced cost per unit of rep ``r``'s expected value (its rows: mean, over, under)."""
        return float(-self.gamma + self.alpha[r] - self.beta[r])

    def rc(self, col: _Column) -> float:
        """The column's reduced cost, without its convexity dual."""
        return float(col.cost - self.pi[col.x].sum() - self.sigma[col.y].sum() - self.k_e(col.rep) * col.ev)


def _duals(ms: _Master) -> _Duals:
    n_m, n_r, n_p = ms.n_m, ms.n_r, ms.n_p
    e = ms.duals_eq
    zero = np.zeros(n_r)
    return _Duals(
        e[:n_m],
        e[n_m : n_m + n_r],
        e[n_m + n_r : n_m + n_r + n_p],
        ms.duals_ub[:n_r] if ms.value_on else zero,
        ms.duals_ub[n_r:] if ms.value_on else zero,
        float(e[n_m + n_r + n_p]) if ms.value_on else 0.0,
    )


def _master_feasible(m: Model, d: _Data, dual: _Duals, tol: float = 1e-6) -> bool:
    """Whether the master's own columns (u, M, the value band's slacks) price out at ``dual``:
    then its Lagrangian bound is valid."""
    scale = tol * max(1.0, float(np.abs(d.u_cost).max(initial=1.0)))
    rc_u = d.u_cost - dual.pi + np.bincount(d.pair_g, weights=dual.sigma, minlength=len(d.movers))
    if (rc_u < -scale).any():
        return False
    if not d.value_on:
        return True
    w, b = m.weights(), m.value_band
    ok = bool((dual.alpha <= scale).all() and (dual.beta <= scale).all())
    ok = ok and bool((m.value_penalty + dual.alpha >= -scale).all() and (m.value_penalty + dual.beta >= -scale).all())
    rc_m = -len(m.reps) * dual.gamma + (1 + b) * float(w @ dual.alpha) - (1 - b) * float(w @ dual.beta)
    return ok and (m.value_mean is not None or rc_m >= -scale)


def _price_all(m: Model, d: _Data, dual: _Duals, per_rep: int) -> tuple[float, list[_Column]]:
    """The Lagrangian bound at ``dual`` (of the minimised objective: Σ_g π_g + Σ_r the rep's least
    reduced cost, valid whenever the master's own columns price out at ``dual``) and every rep's
    best columns there."""
    lagr = float(dual.pi.sum())
    cols: list[_Column] = []
    for r in range(len(m.reps)):
        k_e = dual.k_e(r)
        gx = d.cx[r] - dual.pi - k_e * d.ev[r]
        gy = np.where(d.pair_r == r, -dual.sigma - k_e * d.pair_e, INF)
        found = _price(m, d, r, gx, gy, -k_e * d.fixed_e[r], per_rep)
        if not found:  # no column at all for this rep: the model is infeasible
            return -INF, []
        lagr += found[0][0]
        cols += [_column(m, d, r, xs, ys) for _, xs, ys in found]
    return lagr, cols


@dataclass
class _Compact:
    """The compact programme's LP in linprog's form; ``mcol``: the value band's mean column."""

    cost: np.ndarray
    a_ub: coo_array
    b_ub: np.ndarray
    a_eq: coo_array
    b_eq: np.ndarray
    bounds: np.ndarray
    mcol: int
    v0: int  # first value band row among the ≤ rows


def _compact_duals(m: Model, d: _Data) -> _Duals | None:
    """Duals for the master from the compact programme's LP (the same rows where the two share
    them: cover, value band, mean), made master-dual feasible: a starting point whose Lagrangian
    bound is already at least the compact LP's."""
    n_r, n_m = len(m.reps), len(d.movers)
    lp = _compact(m, d)
    res = linprog(lp.cost, A_ub=lp.a_ub, b_ub=lp.b_ub, A_eq=lp.a_eq, b_eq=lp.b_eq, bounds=lp.bounds, method="highs")
    if res.status != 0:
        return None
    v0 = lp.v0
    y_eq, y_ub = np.asarray(res.eqlin.marginals), np.asarray(res.ineqlin.marginals)
    zero = np.zeros(n_r)
    alpha = np.maximum(y_ub[v0 : v0 + n_r], -m.value_penalty) if d.value_on else zero
    beta = np.maximum(y_ub[v0 + n_r :], -m.value_penalty) if d.value_on else zero
    gamma = float(y_eq[n_m]) if d.value_on else 0.0
    pi = np.minimum(y_eq[:n_m], d.u_cost)
    # A group's cost of being left unassigned goes to its owners' link rows: a rep keeping it
    # pays its share (the reduced cost of u stays 0, so these duals remain master-feasible).
    owners = np.bincount(d.pair_g, minlength=n_m)
    sigma = -(d.u_cost - pi)[d.pair_g] / np.maximum(owners[d.pair_g], 1)
    return _Duals(pi, zero.copy(), sigma, alpha, beta, gamma)


def _sparse(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], shape: tuple[int, int]) -> coo_array:
    """A sparse matrix from (rows, columns, values) blocks."""
    rows, cols, vals = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return coo_array((vals, (rows, cols)), shape=shape)


def _compact(m: Model, d: _Data) -> _Compact:
    """The compact programme's LP over every mover, as :func:`build_programme` writes it (the
    value band's ``E_r`` substituted out)."""
    n_r, n_m, n_p = len(m.reps), len(d.movers), len(d.pair_g)
    rr, gg = np.nonzero(np.isfinite(d.cx))
    n_x = len(rr)
    # Columns: x, u, count over, count under, capacity slack, then M, value over, value under.
    cap_r = np.flatnonzero(np.isfinite(d.cap))
    n_c = len(cap_r)
    off = n_x + n_m
    so, su, cs = off + np.arange(n_r), off + n_r + np.arange(n_r), off + 2 * n_r + np.arange(n_c)
    mcol = off + 2 * n_r + n_c
    vo, vu = mcol + 1 + np.arange(n_r), mcol + 1 + n_r + np.arange(n_r)
    n_var = mcol + 1 + 2 * n_r
    cost = np.r_[d.cx[rr, gg], d.u_cost, np.full(2 * n_r, m.band_penalty), np.full(n_c, d.cap_pen), 0.0]
    cost = np.r_[cost, np.full(2 * n_r, m.value_penalty if d.value_on else 0.0)]
    ub = np.full(n_var, INF)
    ub[: n_x + n_m] = 1.0
    ub[cs] = np.maximum(d.top[cap_r] - d.cap[cap_r], 0.0)
    lb = np.zeros(n_var)
    if d.value_on and m.value_mean is not None:  # off: M and the slacks settle the rows at no cost
        lb[mcol] = ub[mcol] = m.value_mean
    x, u = np.arange(n_x), n_x + np.arange(n_m)
    ev_x = d.ev[rr, gg]
    w, b, big_e = m.weights(), m.value_band, d.fixed_e
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    # ≤ rows: count upper, count lower (negated), capacity, value over, value under (negated).
    rows.append((rr, x, d.cnt[gg].astype(float)))
    rows.append((d.pair_r, u[d.pair_g], d.pair_n.astype(float)))
    rows.append((np.arange(n_r), so, -np.ones(n_r)))
    rows.append((n_r + rr, x, -d.cnt[gg].astype(float)))
    rows.append((n_r + d.pair_r, u[d.pair_g], -d.pair_n.astype(float)))
    rows.append((n_r + np.arange(n_r), su, -np.ones(n_r)))
    cap_row = np.full(n_r, -1)
    cap_row[cap_r] = 2 * n_r + np.arange(n_c)
    sel, psel = np.isfinite(d.cap[rr]), np.isfinite(d.cap[d.pair_r])
    rows.append((cap_row[rr[sel]], x[sel], d.cnt[gg[sel]].astype(float)))
    rows.append((cap_row[d.pair_r[psel]], u[d.pair_g[psel]], d.pair_n[psel].astype(float)))
    rows.append((2 * n_r + np.arange(n_c), cs, -np.ones(n_c)))
    v0 = 2 * n_r + n_c
    for k, sign, factor, slack in ((0, 1.0, 1 + b, vo), (1, -1.0, 1 - b, vu)):
        base = v0 + k * n_r
        rows.append((base + rr, x, sign * ev_x))
        rows.append((base + d.pair_r, u[d.pair_g], sign * d.pair_e))
        rows.append((base + np.arange(n_r), np.full(n_r, mcol), -sign * factor * w))
        rows.append((base + np.arange(n_r), slack, -np.ones(n_r)))
    b_ub = np.r_[m.upper - d.fixed_n, d.fixed_n - m.lower, d.cap[cap_r] - d.fixed_n[cap_r], -big_e, big_e]
    a_ub = _sparse(rows, (v0 + 2 * n_r, n_var))
    eq = [(gg, x, np.ones(n_x)), (np.arange(n_m), u, np.ones(n_m))]
    eq += [(np.full(n_x, n_m), x, -ev_x), (np.full(n_p, n_m), u[d.pair_g], -d.pair_e)]
    eq += [(np.array([n_m]), np.array([mcol]), np.array([float(n_r)]))]
    a_eq = _sparse(eq, (n_m + 1, n_var))
    b_eq = np.r_[np.ones(n_m), big_e.sum()]
    return _Compact(cost, a_ub, b_ub, a_eq, b_eq, np.c_[lb, ub], mcol, v0)


def dw_bound(
    m: Model, start: np.ndarray, rounds: int = 40, per_rep: int = 8, width: float = 0.05, tol: float = 1e-7
) -> DWResult | None:
    """The DW bound on ``m``'s objective (maximised), by column generation from the division
    ``start`` (rep index per group, as :meth:`Model.objective` takes) and the compact LP's duals.
    At most ``rounds`` pricing rounds, ``per_rep`` columns per rep each round; the master's duals
    kept within a box around the best bound's (``width`` × each row's scale, widened when the
    box binds and nothing prices in). None with value capacities (not priced here) or when the
    compact LP or the master cannot be solved."""
    if m.value_capped:
        return None
    d = _data(m)
    ms = _Master(len(m.reps), len(d.movers), len(d.pair_g), d.value_on)
    centre = _compact_duals(m, d)
    if centre is None or not _master_feasible(m, d, centre):
        return None
    typical = np.where(np.isfinite(d.cx), np.abs(d.cx), np.nan)
    ms.scale_pi = np.nanmedian(typical, axis=0) + 1.0
    ms.scale_sigma = ms.scale_pi[d.pair_g]
    ms.scale_gamma = max(m.value_penalty, 1.0)
    cols = [c for c in _start_columns(m, d, start) if np.isfinite(c.cost)]  # a rep over what it may hold: none
    seen = {(c.rep, c.x.tobytes(), c.y.tobytes()) for c in cols}
    best, found = _price_all(m, d, centre, per_rep)
    history: list[float] = []
    converged, done = False, 0
    for done in range(1, rounds + 1):  # noqa: B007 - the count is reported
        new = [c for c in found if (c.rep, c.x.tobytes(), c.y.tobytes()) not in seen]
        seen.update((c.rep, c.x.tobytes(), c.y.tobytes()) for c in new)
        cols += new
        if not _solve_master(m, d, cols, ms, (centre, width)):
            return None
        own = _duals(ms)
        lagr, found = _price_all(m, d, own, per_rep)
        if lagr > best:  # a serious step: the box moves to the better point
            best, centre = lagr, own
        history.append(d.held_value - best)
        scale = tol * max(1.0, abs(ms.z))
        found = [c for c in found if own.rc(c) - own.mu[c.rep] < -scale]
        if not found:
            if ms.artificial <= 1e-9:  # the box does not bind and nothing prices in: the DW bound
                converged = True
                best = max(best, lagr)
                break
            centre, width = own, width * 4  # the box binds: widen it around the master's duals
    return DWResult(d.held_value - best, d.held_value - ms.z, done, len(cols), converged, history)


def _start_columns(m: Model, d: _Data, start: np.ndarray) -> list[_Column]:
    """Each rep's column in ``start`` (its groups; a group left unassigned stays with its owners),
    in rep order, then the empty column of each rep that has groups."""
    at = start[d.movers]
    cols, empty = [], []
    for r in range(len(m.reps)):
        xs = np.flatnonzero(at == r)
        ys = np.flatnonzero((d.pair_r == r) & (at[d.pair_g] < 0))
        cols.append(_column(m, d, r, xs, ys))
        if len(xs) or len(ys):
            empty.append(_column(m, d, r, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))
    return cols + empty


def objective_of(m: Model, start: np.ndarray) -> float:
    """The compact objective of ``start`` as the master prices it (a check of the reformulation:
    equal to :meth:`Model.objective` for any division)."""
    d = _data(m)
    cols = _start_columns(m, d, start)
    own = cols[: len(m.reps)]
    at = start[d.movers]
    total = sum(c.cost for c in own) + float(d.u_cost[at < 0].sum())
    if d.value_on:
        e = np.array([c.ev for c in own])
        total += m.value_penalty * float(m.value_violation(e).sum())
    return d.held_value - total
