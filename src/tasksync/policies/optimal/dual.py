"""Rep prices of the LP's Lagrangian relaxation, and the columns they pick: the first restricted LP.

The LP couples the groups only through a few rows per rep (count band, expected value); each
group's own row picks one rep. With those rows priced (a price per card and one per unit of
expected value, per rep), a group's best column is an argmin of its priced cost: one numpy pass
over every candidate column. A fixed number of projected subgradient steps on those prices (a rep
above a band gets dearer, one below it cheaper) makes the groups' picks settle around the LP's
optimum; the columns picked in the later steps are nearly the LP's support. Column generation
(:func:`tasksync.policies.optimal.solve.solve_lp`) seeded with them starts next to the optimum
instead of from a division that ignores the value band, and needs fewer, smaller pricing rounds
(real-shaped 10k book: first LP 4.2 s -> 2.6 s CPU). The LP's optimum is the same: pricing still
runs until no column prices in. Fixed step counts: deterministic, never the clock.

The same relaxation bounds the objective from above (:func:`upper_bound`, weak duality): at the
LP's own duals (:func:`lp_prices`) it is the LP's optimum, and on the book a plan leaves it is
within a fraction of a percent of that book's. The settle pass uses it to prove, without solving,
that deciding again would keep the plan (:meth:`tasksync.policies.optimal.OptimalPolicy.kept`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from tasksync.policies.optimal.model import Loads, Model
from tasksync.policies.optimal.programme import Programme

__all__ = [
    "LAGRANGE_KEEP",
    "LAGRANGE_STEPS",
    "RepPrices",
    "lagrangian_columns",
    "lagrangian_prices",
    "lp_prices",
    "upper_bound",
]

LAGRANGE_STEPS = 200  # subgradient steps on the rep prices (work limit)
LAGRANGE_KEEP = 100  # the last steps whose picks seed the LP
STEP = 0.03  # the first step moves a price by this share of the net value per card (per band width)


def _first_min(values: np.ndarray, starts: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group (columns contiguous from ``starts``): its first column of lowest value."""
    low = np.minimum.reduceat(values, starts)
    hit = np.flatnonzero(values <= low[group])
    first = np.ones(len(hit), dtype=bool)
    first[1:] = group[hit[1:]] != group[hit[:-1]]
    out: np.ndarray = hit[first]
    return out


def lagrangian_columns(
    m: Model, movers: list[int], p: Programme, fixed: Loads, steps: int = LAGRANGE_STEPS, keep: int = LAGRANGE_KEEP
) -> np.ndarray:
    """Per x column of ``p``: whether some group picked it in the last ``keep`` of ``steps``
    projected subgradient steps on the count-band and value-band prices of the reps (``fixed``:
    the loads of the groups outside ``p``). Prices stay within the band penalties (beyond, a slack
    is cheaper than any move)."""
    return _subgradient(m, movers, p, fixed, steps, keep)[0]


def lagrangian_prices(
    m: Model, movers: list[int], p: Programme, fixed: Loads, steps: int = LAGRANGE_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """The rep prices (per card, per unit of expected value; in the units of ``p``'s minimised
    costs) after the ``steps`` subgradient steps of :func:`lagrangian_columns`."""
    _, lam, theta = _subgradient(m, movers, p, fixed, steps, 0)
    return lam, theta


def _subgradient(
    m: Model, movers: list[int], p: Programme, fixed: Loads, steps: int, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lagrangian_columns`' steps: the columns picked in the last ``keep``, and the last prices."""
    n_r, n_x = len(m.reps), p.n_x
    seen = np.zeros(n_x, dtype=bool)
    lam, theta = np.zeros(n_r), np.zeros(n_r)
    if not n_x:
        return seen, lam, theta
    g_of = np.asarray(movers, dtype=np.int64)[p.group]
    cost = p.c[:n_x]
    cnt, ev = m.count[g_of], m.ev_d[g_of, p.rep]
    starts = np.flatnonzero(np.r_[True, p.group[1:] != p.group[:-1]])
    per_card = float(np.abs(cost).mean()) / max(float(cnt.mean()), 1e-9)
    per_ev = float(np.abs(cost).sum()) / max(float(np.abs(ev).sum()), 1e-9)
    span = max(m.upper - m.lower, 1e-9 + 0.02 * m.band.mean)
    w = m.weights()
    b = m.value_band if m.value_penalty > 0 else 0.0
    for k in range(steps):
        pick = _first_min(cost + cnt * lam[p.rep] + ev * theta[p.rep], starts, p.group)
        if k >= steps - keep:
            seen[pick] = True
        r_of = p.rep[pick]
        step = STEP / (1.0 + 0.05 * k)
        n = fixed[0] + np.bincount(r_of, weights=cnt[pick], minlength=n_r)
        off = np.maximum(n - m.upper, 0.0) - np.maximum(m.lower - n, 0.0)
        lam = np.clip(lam + step * per_card * off / span, -m.band_penalty, m.band_penalty)
        if b:
            e = fixed[2] + np.bincount(r_of, weights=ev[pick], minlength=n_r)
            mean = m.value_mean if m.value_mean is not None else float(e.mean())
            hi, lo = w * (1 + b) * mean, w * (1 - b) * mean
            off = np.maximum(e - hi, 0.0) - np.maximum(lo - e, 0.0)
            theta = np.clip(theta + step * per_ev * off / max(b * mean, 1e-9), -m.value_penalty, m.value_penalty)
    return seen, lam, theta


@dataclass(frozen=True)
class RepPrices:
    """The LP's prices of the reps' rows, per rep: of an open card (count band) and of a unit of
    expected value (value band), in the objective's units (what a rep's next card or unit of
    expected value costs the division); and of a card and a unit of pipeline within the rep's
    capacities (0 for a rep without)."""

    count: np.ndarray
    ev: np.ndarray
    cap: np.ndarray
    vcap: np.ndarray


def lp_prices(p: Programme, row_dual: np.ndarray, m: Model) -> RepPrices:
    """The rep prices in the duals ``row_dual`` of ``p``'s LP (HiGHS, minimising ``c·x``): a row's
    dual is the objective's change per unit of its bound, so a rep's price is its negation."""
    n_r = len(m.reps)
    y = np.asarray(row_dual, dtype=float)
    count = -y[p.count_row : p.count_row + n_r]
    ev = np.zeros(n_r) if p.value_row is None else -y[p.value_row : p.value_row + n_r]
    cap, vcap = np.zeros(n_r), np.zeros(n_r)
    capped, vcapped = np.isfinite(m.cap), np.isfinite(m.vcap)
    cap[capped] = -y[p.cap_row : p.cap_row + int(capped.sum())]
    vcap[vcapped] = -y[p.vcap_row : p.vcap_row + int(vcapped.sum())]
    return RepPrices(count, ev, cap, vcap)


def upper_bound(m: Model, prices: RepPrices) -> float:
    """An upper bound on :meth:`Model.objective` over every division of ``m`` within the reps'
    capacities (each group to one of its candidates, or left with its owners): the Lagrangian
    relaxation of the reps' loads (cards, pipeline, expected value) at ``prices`` (weak duality:
    valid for any prices; the nearer they are to the LP's optimal duals, the tighter). Each group
    takes its best priced option; each rep's load, freed from the groups, takes its best priced
    level against the band penalties; room left within a capacity is worth its price (≥ 0)."""
    n_r = len(m.reps)
    if not n_r:
        return 0.0
    lam = np.clip(prices.count, -m.band_penalty, m.band_penalty)
    value_on = bool(m.value_band) and m.value_penalty > 0
    theta = prices.ev if value_on else np.zeros(n_r)
    mu = np.where(np.isfinite(m.cap), np.maximum(prices.cap, 0.0), 0.0)
    nu = np.where(np.isfinite(m.vcap), np.maximum(prices.vcap, 0.0), 0.0)
    per_card = lam + mu
    # Room within capacity (pipeline: with Model.vfits' tolerance, and a little more).
    room = np.where(mu > 0, m.cap - m.fixed[0], 0.0)
    vcap = np.where(nu > 0, m.vcap, 0.0)
    vroom = vcap + 1e-9 * np.abs(vcap) + 2e-6 - np.where(nu > 0, m.fixed[1], 0.0)
    total = float(mu @ room + nu @ vroom - lam @ m.fixed[0] - theta @ m.fixed[2])
    if len(m.groups):
        priced = (
            m.net_d - m.count[:, None] * per_card[None, :] - m.value_[:, None] * nu[None, :] - m.ev_d * theta[None, :]
        )
        own = per_card[m.own_r] * m.own_n + nu[m.own_r] * m.own_v + theta[m.own_r] * m.own_e
        stay = -np.bincount(m.own_g, weights=own, minlength=len(m.groups))
        total += float(np.maximum(priced.max(axis=1), stay).sum())
    total += float(np.where(lam >= 0, lam * m.upper, lam * m.lower).sum())
    if value_on:
        e_max = m.fixed[2] + np.maximum(m.ev_d, 0.0).sum(axis=0)
        e_max += np.bincount(m.own_r, weights=np.maximum(m.own_e, 0.0), minlength=n_r)
        total += _value_term(m, theta, e_max)
    return total


def _value_term(m: Model, theta: np.ndarray, e_max: np.ndarray) -> float:
    """``max θ·E − value_penalty × (E outside the value band)`` over reps' expected values
    ``0 ≤ E ≤ e_max`` (the band's centre moving with their mean, or at ``value_mean``): a small LP."""
    n_r = len(m.reps)
    w, b, pv = m.weights(), m.value_band, m.value_penalty
    # Columns: E (n_r), over (n_r), under (n_r), M.
    c = np.concatenate([-theta, np.full(2 * n_r, pv), [0.0]])
    eye = sparse.identity(n_r, format="csr")
    zero = sparse.csr_array((n_r, n_r))
    rows = sparse.vstack(
        [
            sparse.hstack([eye, -eye, zero, sparse.csr_array(-(1 + b) * w[:, None])]),
            sparse.hstack([-eye, zero, -eye, sparse.csr_array((1 - b) * w[:, None])]),
        ]
    )
    a_ub, b_ub = rows, np.zeros(2 * n_r)
    if m.value_mean is None:
        a_eq, b_eq = sparse.csr_array(np.r_[np.ones(n_r), np.zeros(2 * n_r), [-float(n_r)]][None, :]), np.zeros(1)
        m_bounds: tuple[float, float | None] = (0.0, None)
    else:
        a_eq, b_eq = None, None
        m_bounds = (m.value_mean, m.value_mean)
    bounds = [(0.0, float(x)) for x in e_max] + [(0.0, None)] * (2 * n_r) + [m_bounds]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    return float(-res.fun) if res.status == 0 else math.inf
