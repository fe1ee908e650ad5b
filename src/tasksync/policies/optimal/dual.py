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
"""

from __future__ import annotations

import numpy as np

from tasksync.policies.optimal.model import Loads, Model
from tasksync.policies.optimal.programme import Programme

__all__ = ["LAGRANGE_KEEP", "LAGRANGE_STEPS", "lagrangian_columns"]

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
    n_r, n_x = len(m.reps), p.n_x
    seen = np.zeros(n_x, dtype=bool)
    if not n_x:
        return seen
    g_of = np.asarray(movers, dtype=np.int64)[p.group]
    cost = p.c[:n_x]
    cnt, ev = m.count[g_of], m.ev_d[g_of, p.rep]
    starts = np.flatnonzero(np.r_[True, p.group[1:] != p.group[:-1]])
    lam, theta = np.zeros(n_r), np.zeros(n_r)
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
    return seen
