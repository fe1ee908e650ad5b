"""The big books' LP from near its optimal rep prices: a dual path to the prices, then HiGHS's dual
simplex from a basis that is dual feasible at them.

The LP couples its groups only through the reps' rows (count band, expected value). Its Lagrangian
dual over those rows is a concave function of a few hundred prices whose maximum is the LP's optimum
(each group picks the cheapest of its columns at the prices). :func:`path_prices` follows the path
of a smoothed version of it: each group's minimum replaced by a soft minimum at temperature ``τ``
(``−τ log Σ exp(−d/τ)``), the prices' boxes (a price beyond a band penalty is never optimal) by a
log barrier of weight ``τ``, maximised by damped Newton steps (the Hessian is a few hundred square:
per rep its two rows, less one rank-one term per group whose soft pick is split) while ``τ`` falls
geometrically. The value band's mean is a variable of the LP: its price is eliminated (the mean's
reduced cost is zero at the optimum), so the value-band prices are the two sides' (above, below)
and every point of the path is dual feasible. Fixed stage and step counts: a work limit, no clock.

:func:`crash_lp` then solves the LP exactly: its costs shifted by the prices (so each group's
cheapest priced column is its cheapest), each count-band row an equality with its activity a boxed
column, each rep's expected value boxed by what no division exceeds; the basis holds each group's
cheapest column, the mean and every rep row's logical, and every reduced cost is ≥ 0. HiGHS skips
phase 1 and its pivots undo only what the prices get wrong. The answer is the programme's LP optimum
(objective and duals mapped back); past ``CRASH_PIVOTS`` it gives up (the caller then generates
columns). Real-shaped 10k/100 book: the path 0.5-0.6 s and the crash 0.3-0.4 s CPU, against 3.0-3.5 s
for column generation with its greedy and Lagrangian seeds (docs/policies.md, Speed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.optimize import OptimizeResult
from scipy.sparse import coo_array, csc_array, csr_array, hstack
from threadpoolctl import threadpool_limits

from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.programme import Programme

try:  # HiGHS with a basis to start from: scipy ≥ 1.15 bundles it.
    from scipy.optimize._highspy._core import HighsBasis, HighsLp, _Highs
    from scipy.optimize._highspy._core import HighsBasisStatus as Status
except ImportError:  # pragma: no cover - older scipy: column generation only
    _Highs = None

__all__ = ["PATH_STAGES", "Shifted", "crash_lp", "path_prices", "shifted", "started", "tight_duals", "usable"]

PATH_STAGES = 9  # temperatures on the path, from TAU_FIRST to TAU_LAST × the mean |cost| (work limit)
PATH_STEPS = 8  # Newton steps per temperature at most...
CENTRED = 10.0  # ...until the Newton decrement² is at most this × τ per rep
TAU_FIRST, TAU_LAST = 0.3, 1e-3
SPLIT = 1e-3  # a column weighs in the Hessian's group term when its soft pick is within (SPLIT, 1 − SPLIT)
HALVINGS = 8  # a Newton step is halved at most this many times (then the temperature's steps end)
NEAR = 0.1  # the crash's LP starts on the columns within this × the mean |cost| of their group's cheapest priced...
CRASH_ROUNDS = 20  # ...and adds the columns that price in, at most this many times (then all: a work limit)
CRASH_PIVOTS = 2_000  # dual simplex pivots in all; beyond, the prices were far off: column generation instead
GRID = 1e-9  # prices are rounded to this share of their scale before the crash (the same basis on any machine)


def usable(p: Programme, m: Model) -> bool:
    """Whether the crash applies to ``p``: HiGHS with a basis to start from, a value band whose
    mean is a variable of the programme (a block of a big book fixes it) and no rep with a value
    capacity (a third kind of rep row the path does not price): else column generation."""
    return (
        _Highs is not None
        and p.value_row is not None
        and p.mean_col is not None
        and m.value_mean is None
        and not np.isfinite(m.vcap).any()
    )


@dataclass
class _Path:
    """The smoothed dual over ``v = (λ⁺, λ⁻, φ⁺, φ⁻, μ)`` ≥ 0 (count prices above/below, value-band
    prices above/below, capped reps' capacity prices), boxed by the penalties; ``T`` maps ``v`` to
    the rep rows' duals."""

    cost: np.ndarray  # per x column
    cards: np.ndarray  # its coefficient in its rep's count row
    ev: np.ndarray  # ...and in its rep's expected-value row
    rep: np.ndarray
    group: np.ndarray
    starts: np.ndarray  # first column of each group (columns are grouped)
    sizes: np.ndarray
    t: np.ndarray  # (2R, 4R): the count rows' duals, then the expected-value rows'
    linear: np.ndarray  # gradient of the terms linear in v (the rows' bounds)
    upper: np.ndarray  # the boxes

    def value(self, v: np.ndarray, tau: float, hessian: bool) -> tuple[float, np.ndarray, np.ndarray | None]:
        """The smoothed dual with its barrier at ``v``: value, gradient and (if asked) Hessian."""
        n_r = len(self.t) // 2
        y = self.t @ v
        d = self.cost - self.cards * y[:n_r][self.rep] - self.ev * y[n_r:][self.rep]
        low = np.minimum.reduceat(d, self.starts)
        e = np.exp(-(d - np.repeat(low, self.sizes)) / tau)
        z = np.add.reduceat(e, self.starts)
        pick = e / np.repeat(z, self.sizes)
        room = self.upper - v
        val = float((low - tau * np.log(z)).sum() + self.linear @ v + tau * (np.log(v).sum() + np.log(room).sum()))
        pc, pe = pick * self.cards, pick * self.ev
        g_y = -np.r_[np.bincount(self.rep, weights=pc, minlength=n_r), np.bincount(self.rep, weights=pe, minlength=n_r)]
        grad = self.t.T @ g_y + self.linear + tau * (1.0 / v - 1.0 / room)
        if not hessian:
            return val, grad, None
        k = np.flatnonzero((pick > SPLIT) & (pick < 1.0 - SPLIT))  # the groups' split picks
        r, i = self.rep[k], np.arange(n_r)
        h = np.zeros((2 * n_r, 2 * n_r))
        h[i, i] = np.bincount(r, weights=pc[k] * self.cards[k], minlength=n_r)
        h[n_r + i, n_r + i] = np.bincount(r, weights=pe[k] * self.ev[k], minlength=n_r)
        h[i, n_r + i] = h[n_r + i, i] = np.bincount(r, weights=pc[k] * self.ev[k], minlength=n_r)
        h -= _group_term(k, self.group[k], r, pc[k], pe[k], n_r)
        hess = -(self.t.T @ h @ self.t) / tau - np.diag(tau * (1.0 / v**2 + 1.0 / room**2))
        return val, grad, hess


def _group_term(
    k: np.ndarray, group: np.ndarray, rep: np.ndarray, pc: np.ndarray, pe: np.ndarray, n_r: int
) -> np.ndarray:
    """``Σ_g v_g v_gᵀ`` over the groups, ``v_g`` the soft-picked columns ``k`` of group ``g``
    (grouped, as the columns are) in the count rows (``pc``) and the expected-value rows (``pe``):
    ``WᵀW`` for the sparse matrix ``W`` whose row ``g`` is ``v_g`` (one product term per pair of a
    group's columns, summed in compiled code: a third of the time of summing the pairs by index)."""
    if not len(k):
        return np.zeros((2 * n_r, 2 * n_r))
    row = np.cumsum(np.r_[0, group[1:] != group[:-1]])
    w = csr_array((np.r_[pc, pe], (np.r_[row, row], np.r_[rep, rep + n_r])), shape=(int(row[-1]) + 1, 2 * n_r))
    out: np.ndarray = (w.T @ w).toarray()
    return out


def _path(m: Model, p: Programme) -> _Path:
    """The smoothed dual of ``p``'s LP over its x columns (a group left unassigned costs far more
    than any of its columns: it never weighs in)."""
    n_r, n_x = len(m.reps), p.n_x
    assert p.value_row is not None
    a = csr_array(p.constraints.A)
    cr, vr = p.count_row, p.value_row
    cards = np.asarray(a[cr : cr + n_r, :n_x].sum(axis=0)).ravel()
    ev = np.asarray(a[vr : vr + n_r, :n_x].sum(axis=0)).ravel()
    starts = np.flatnonzero(np.r_[True, p.group[1:] != p.group[:-1]])
    w, b = m.weights(), m.value_band
    # The value rows' duals θ = φ − κ, κ = (w·φ − b·w·(φ⁺ + φ⁻)) / n: the mean's reduced cost zero.
    # A capped rep's capacity price μ acts on its cards as the count band's does (the same
    # coefficients): the count row's dual is λ⁺ − λ⁻ − μ.
    capped = np.flatnonzero(np.isfinite(m.cap))
    n_c = len(capped)
    eye, ones = np.eye(n_r), np.ones((n_r, 1))
    t = np.zeros((2 * n_r, 4 * n_r + n_c))
    t[:n_r, :n_r], t[:n_r, n_r : 2 * n_r] = eye, -eye
    t[n_r:, 2 * n_r : 3 * n_r] = eye - ones * ((1 - b) * w)[None, :] / n_r
    t[n_r:, 3 * n_r : 4 * n_r] = -eye + ones * ((1 + b) * w)[None, :] / n_r
    t[capped, 4 * n_r + np.arange(n_c)] = -1.0
    lo, hi = p.constraints.lb[cr : cr + n_r], p.constraints.ub[cr : cr + n_r]
    rhs = p.constraints.lb[vr : vr + n_r]
    room = p.constraints.ub[p.cap_row : p.cap_row + n_c]
    linear = np.r_[lo, -hi, t[n_r:, 2 * n_r : 4 * n_r].T @ rhs, -room]
    cap_box = 10.0 * m.band_penalty * max(float(cards.max(initial=1.0)), 1.0)
    upper = np.r_[np.full(2 * n_r, m.band_penalty), np.full(2 * n_r, m.value_penalty), np.full(n_c, cap_box)]
    sizes = np.diff(np.r_[starts, n_x])
    return _Path(p.c[:n_x], cards, ev, p.rep, p.group, starts, sizes, t, linear, upper)


def path_prices(m: Model, p: Programme) -> tuple[np.ndarray, np.ndarray]:
    """Near-optimal duals of ``p``'s count-band and expected-value rows (HiGHS's sign: the
    minimised objective's change per unit of the row), from the smoothed dual's path."""
    s = _path(m, p)
    n_r = len(m.reps)
    scale = float(np.abs(s.cost).mean()) or 1.0
    n_c = len(s.upper) - 4 * n_r
    v = np.r_[
        np.full(2 * n_r, min(50.0, 0.5 * m.band_penalty)), np.full(2 * n_r, 0.05 * m.value_penalty), np.full(n_c, 1.0)
    ]
    with threadpool_limits(1):  # a few hundred square: one thread, no waiting on a busy machine
        for tau in np.geomspace(TAU_FIRST, TAU_LAST, PATH_STAGES) * scale:
            for _ in range(PATH_STEPS):
                val, grad, hess = s.value(v, tau, True)
                assert hess is not None
                try:
                    step = cho_solve(cho_factor(-hess), grad)
                except LinAlgError:
                    break
                moved = _line_search(s, v, step, val, grad, tau)
                stuck, v = moved is v, moved
                if stuck or float(grad @ step) <= CENTRED * tau * n_r:  # near the path's point: the next temperature
                    break
    y = s.t @ v
    return _grid(y[:n_r]), _grid(y[n_r:])


def _line_search(s: _Path, v: np.ndarray, step: np.ndarray, val: float, grad: np.ndarray, tau: float) -> np.ndarray:
    """``v`` moved along ``step``, inside the boxes (99% of the way to the nearest), by the
    longest halving that raises the smoothed dual enough (Armijo)."""
    a = 1.0
    down, up = step < 0, step > 0
    if down.any():
        a = min(a, 0.99 * float(np.min(-v[down] / step[down])))
    if up.any():
        a = min(a, 0.99 * float(np.min((s.upper - v)[up] / step[up])))
    rise = float(grad @ step)
    for _ in range(HALVINGS):
        moved = v + a * step
        if s.value(moved, tau, False)[0] >= val + 1e-4 * a * rise:
            return moved
        a *= 0.5
    return v


def _grid(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to ``GRID`` × its largest magnitude: the last bits of floating point (another
    BLAS, another machine) do not reach the crash's basis."""
    unit = GRID * (float(np.abs(x).max(initial=0.0)) or 1.0)
    out: np.ndarray = np.round(x / unit) * unit
    return out


def tight_duals(
    y: np.ndarray,
    val: np.ndarray,
    cols: np.ndarray,
    c: np.ndarray,
    a_t: csr_array,
    group: np.ndarray,
    n_x: int,
    n_m: int = 0,
) -> np.ndarray:
    """Row duals ``y`` (modified) of an LP over columns ``cols`` (answer ``val``; costs ``c`` and
    transposed matrix ``a_t`` over every column) with each group row's as tight as the answer
    allows: a group whose column sits at 1 gets the dual that makes that column's reduced cost 0
    (why: :func:`tasksync.policies.optimal.solve._tight_duals`). The x columns (``group``: each
    one's) come first, then, when ``n_m`` is given, each group's u column."""
    one = cols[(val > 1 - 1e-9) & (cols < n_x + n_m)]
    grp = np.where(one < n_x, group[np.minimum(one, n_x - 1)], one - n_x)
    y[grp] = c[one] - (a_t[one] @ y - y[grp])  # c_j − (its rep rows' part of aⱼᵀy): reduced cost 0
    return y


def _run(h: _Highs, pivots: int) -> int:
    """Run HiGHS within what is left of ``CRASH_PIVOTS`` after ``pivots``; the pivots so far."""
    h.setOptionValue("simplex_iteration_limit", max(CRASH_PIVOTS - pivots, 0))
    h.run()
    return pivots + int(h.getInfo().simplex_iteration_count)


@dataclass
class Shifted:
    """``p``'s LP with its costs shifted by the rep rows' prices and each count row an equality
    whose activity is a boxed column (appended), with the start: every column's and row's status."""

    a: csc_array
    c: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    row_lb: np.ndarray
    row_ub: np.ndarray
    status: np.ndarray
    row_status: np.ndarray
    shift: np.ndarray  # per row: the price the costs were shifted by (the duals map back by it)
    offset: float  # the shifted objective less this is the programme's
    reach: np.ndarray  # per x column: within NEAR × the mean |cost| of its group's cheapest


def shifted(m: Model, p: Programme, count: np.ndarray, value: np.ndarray) -> Shifted:
    """The shifted LP of ``p`` at the rep rows' duals ``count`` and ``value``: basic, each group's
    cheapest priced column, the mean, and every rep row's logical; each ``E_r`` and count activity
    at the bound its shifted cost asks for (``E_r`` boxed by what no division exceeds)."""
    n_r, n_x, n_m = len(m.reps), p.n_x, p.count_row
    assert p.value_row is not None and p.mean_col is not None
    lam, theta = np.clip(-count, -m.band_penalty, m.band_penalty), -value
    a = csc_array(p.constraints.A)
    rows, n = a.shape
    cr, vr, e0 = p.count_row, p.value_row, p.mean_col + 1
    shift = np.zeros(rows)
    shift[cr : cr + n_r], shift[vr : vr + n_r] = lam, theta
    z = coo_array((-np.ones(n_r), (cr + np.arange(n_r), np.arange(n_r))), shape=(rows, n_r)).tocsc()
    row_lb, row_ub = p.constraints.lb.copy(), p.constraints.ub.copy()
    lb, ub = np.r_[p.bounds.lb, row_lb[cr : cr + n_r]], np.r_[p.bounds.ub, row_ub[cr : cr + n_r]]
    row_lb[cr : cr + n_r] = row_ub[cr : cr + n_r] = 0.0
    e_rows = a[:, : n_x + n_m].tocsr()[vr : vr + n_r]
    e_max = -row_lb[vr : vr + n_r] + np.asarray(e_rows.maximum(0).sum(axis=1)).ravel()
    ub[e0 : e0 + n_r] = e_max + 1e-6 * np.abs(e_max) + 1.0
    c = np.r_[p.c + a.T @ shift, -lam]
    starts = np.flatnonzero(np.r_[True, p.group[1:] != p.group[:-1]])
    low = np.minimum.reduceat(c[:n_x], starts)
    hit = np.flatnonzero(c[:n_x] <= low[p.group])
    pick = hit[np.r_[True, p.group[hit[1:]] != p.group[hit[:-1]]]]  # each group's first cheapest
    status = np.full(n + n_r, Status.kLower, dtype=object)
    status[pick] = status[p.mean_col] = Status.kBasic
    status[e0 : e0 + n_r] = np.where(theta > 0, Status.kUpper, Status.kLower)
    status[n:] = np.where(lam > 0, Status.kUpper, Status.kLower)
    row_status = np.full(rows, Status.kBasic, dtype=object)
    row_status[:n_m] = row_status[rows - 1] = Status.kLower  # the group rows and the mean's row
    reach = c[:n_x] - low[p.group] <= NEAR * (float(np.abs(p.c[:n_x]).mean()) or 1.0)
    offset = float(theta @ row_lb[vr : vr + n_r])
    return Shifted(hstack([a, z]).tocsc(), c, lb, ub, row_lb, row_ub, status, row_status, shift, offset, reach)


def _add(h: _Highs, s: Shifted, add: np.ndarray) -> None:
    """Columns ``add`` of ``s`` into HiGHS's LP (after its own)."""
    sub = s.a[:, add]
    h.addCols(len(add), s.c[add], s.lb[add], s.ub[add], sub.nnz, sub.indptr[:-1], sub.indices, sub.data)


def started(s: Shifted, cols: np.ndarray, time_left: float | None = None) -> _Highs:
    """HiGHS holding the columns ``cols`` of ``s`` and every row, at ``s``'s start, not yet run
    (``time_left``: the safety net's time limit, if any)."""
    h = _Highs()
    h.setOptionValue("output_flag", False)
    if time_left is not None:
        h.setOptionValue("time_limit", max(time_left, 0.05))
    lp = HighsLp()
    lp.num_col_, lp.num_row_ = 0, len(s.row_lb)
    lp.row_lower_, lp.row_upper_ = s.row_lb, s.row_ub
    h.passModel(lp)
    _add(h, s, cols)
    basis = HighsBasis()
    basis.col_status, basis.row_status, basis.valid = list(s.status[cols]), list(s.row_status), True
    h.setBasis(basis)
    return h


def crash_lp(
    m: Model, p: Programme, count: np.ndarray, value: np.ndarray, time_left: float | None = None
) -> OptimizeResult:
    """The LP relaxation of ``p`` solved by HiGHS's dual simplex from a basis dual feasible at
    the rep rows' duals ``count`` and ``value`` (as :func:`path_prices` gives them): ``x`` over
    ``p``'s columns, ``fun`` and ``row_dual`` as of ``p`` itself. ``time_left``: the safety net's
    time limit (seconds), if any. It starts on the columns in reach of the prices and adds those
    that price in under its duals until none does (then every one left, a work limit)."""
    s = shifted(m, p, count, value)
    n_x, n_all = p.n_x, s.a.shape[1]
    inset = np.ones(n_all, dtype=bool)
    inset[:n_x] = s.reach
    cols = np.flatnonzero(inset)
    h = started(s, cols, time_left)
    pivots = _run(h, 0)
    a_t = s.a[:, :n_x].T.tocsr()
    tol = 1e-7 * max(1.0, float(np.abs(s.c).max(initial=0.0)) * 1e-6)
    for rounds in range(CRASH_ROUNDS + 1):  # columns left out that price in under the duals: in
        if h.modelStatusToString(h.getModelStatus()) != "Optimal":
            break
        sol = h.getSolution()
        y = tight_duals(np.array(sol.row_dual), np.asarray(sol.col_value), cols, s.c, a_t, p.group, n_x)
        add = np.flatnonzero(~inset[:n_x] & (s.c[:n_x] - a_t @ y < -tol))
        if rounds == CRASH_ROUNDS:  # work limit: every column left, from this basis
            add = np.flatnonzero(~inset)
        if not len(add):
            break
        inset[add] = True
        cols = np.r_[cols, add]
        _add(h, s, add)
        pivots = _run(h, pivots)
    message = h.modelStatusToString(h.getModelStatus())
    if message != "Optimal":
        return OptimizeResult(x=None, status=1, message=message, fun=None)
    sol = h.getSolution()
    x = np.zeros(n_all)
    x[cols] = np.asarray(sol.col_value)
    res = OptimizeResult(
        x=x[: len(p.c)], status=0, message=message, fun=h.getInfo().objective_function_value - s.offset
    )
    res.row_dual = np.asarray(sol.row_dual) - s.shift
    return res
