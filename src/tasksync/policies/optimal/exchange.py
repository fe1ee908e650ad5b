"""Ejection chains and cyclic exchanges over many reps at once, after the pair polish.

The pair polish (:mod:`.polish`) re-divides two reps at a time with the value band's mean fixed; a
move that pays only when three or more reps trade at once, each gaining one account and giving
another, is out of its reach. This is the very large-scale neighbourhood of Ahuja, Orlin and
Sharma for partitioning problems: an improvement graph whose nodes are the movable groups and whose
arc ``g → h`` says "group ``g`` goes to the rep holding ``h``, which gives ``h`` up", so that a path
``g₁ → g₂ → … → g_k`` is a chain of transfers in which every rep on it but the first and the last
gains one group and loses one, and closing it (``g_k`` to the first group's rep, or to a rep off
the path) is a cyclic exchange or an ejection chain. Each rep's count and expected value move by
one group's difference, so a chain can hold both bands where no pair's share of it could.

Chains are found by a label-correcting search (one label per group: the best chain found so far
that ends with that group in hand), over every group at once in numpy: each label carries the
loads of every rep after its chain, so that each rep's count band and capacities are checked
exactly when the chain leaves it (and its value band around the mean so far, the group in hand
counted where it was), and the value band of every rep, on the chain or off it, exactly at the
close, around the mean the whole chain leaves (the team's mean expected value moves with every
transfer, so a chain that raises it must not leave a rep at the band's lower edge below it). While
chains are built, a group in hand keeps the one with the most fit value less a weight per unit of
expected value the reps hold outside their value bands around the mean so far (``CHAIN_WEIGHTS``):
a chain that moves the mean is steered through the reps it would push out of band. A rep is
visited at most once per chain. The best
closing chain of at most ``CHAIN_DEPTH`` transfers is applied when the model's objective rises and
both bands and capacities still hold; then the search starts again, ``CHAIN_SEARCHES`` times at
most. Fixed depths and counts, ties to the lowest group: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasksync.policies.optimal.model import Model

__all__ = ["CHAIN_DEPTH", "CHAIN_SEARCHES", "CHAIN_WEIGHTS", "CHAIN_WORK", "Chain", "best_chain", "exchange"]

CHAIN_DEPTH = 6  # transfers per chain at most (groups in hand in turn)
CHAIN_SEARCHES = 30  # searches (each applies at most one chain): a work limit
# Weights of the expected value a chain leaves outside the value bands while it is being built
# (per unit, against fit value), tried in turn until one finds a chain. Measured on the bench's
# books: 0 (only chains that keep the mean) finds next to nothing, 1-10 find the chains that pay.
CHAIN_WEIGHTS = (2.0, 1.0)
# Groups² + groups × reps above which the search is not run: each of its steps holds arrays of
# about that many cells, so its CPU grows with it (the bench's 2,000-card book: 662 movable groups,
# 40 reps, 0.46 million; 1,200 groups and 20 reps would be 1.46 million). A fixed size, not a clock.
CHAIN_WORK = 1_500_000
TOL = 1e-6


@dataclass(frozen=True)
class Chain:
    """Groups in the order they move and the rep each goes to; ``gain``: the objective's rise."""

    groups: tuple[int, ...]
    to: tuple[int, ...]
    gain: float


def exchange(
    m: Model,
    choice: np.ndarray,
    searches: int = CHAIN_SEARCHES,
    depth: int = CHAIN_DEPTH,
    weights: tuple[float, ...] = CHAIN_WEIGHTS,
) -> int:
    """Improve ``choice`` (in place) by ejection chains and cyclic exchanges; returns the chains
    applied. Each search runs :func:`best_chain` with the weights in ``weights`` in turn and
    applies the first chain that raises the objective with both bands and the capacities held
    after it. Only from a division inside them, and only up to ``CHAIN_WORK`` (else nothing is
    tried)."""
    if len(m.reps) < 3 or not m.feasible(choice) or (m.value_band and (m.weights() <= 0).any()):
        return 0
    k = int((~np.asarray(m.held, dtype=bool) & (choice >= 0)).sum())
    if k * k + k * len(m.reps) > CHAIN_WORK:
        return 0
    done = 0
    for _ in range(searches):
        now = m.objective(choice)
        for weight in weights:
            chain = best_chain(m, choice, depth, weight)
            if chain is None:
                continue
            trial = choice.copy()
            trial[list(chain.groups)] = chain.to
            if m.objective(trial) > now + 1e-9 * max(abs(now), 1.0) and m.feasible(trial):
                choice[:] = trial
                done += 1
                break
        else:
            break
    return done


def best_chain(m: Model, choice: np.ndarray, depth: int = CHAIN_DEPTH, weight: float = 1.0) -> Chain | None:
    """The best improving chain (ejection chain or cyclic exchange) of at most ``depth`` transfers
    from ``choice`` (inside both bands and capacities), or None. Each group in hand keeps the chain
    that leaves the most fit value less ``weight`` per unit of expected value outside the value
    bands around the mean the chain leaves so far (the reps off the chain included: a chain that
    moves the mean must make up for it on the reps it leaves at an edge of the band)."""
    n_r = len(m.reps)
    free = ~np.asarray(m.held, dtype=bool) & (choice >= 0)
    gs = np.flatnonzero(free)
    if len(gs) < 2:
        return None
    k = len(gs)
    rep = choice[gs]
    cnt = m.count[gs].astype(float)
    val = m.value_[gs].astype(float)
    net = m.net_d[gs]  # (k, reps)
    ev = m.ev_d[gs]
    can = m.pos_d[gs] >= 0  # (k, reps): whether the rep is a candidate of the group
    here = net[np.arange(k), rep]
    ev_here = ev[np.arange(k), rep]
    n0, v0, e0 = m.loads_for(choice)

    # Labels: one per group in hand (ejected from its rep, not yet placed).
    rows = np.arange(k)
    gain = -here.copy()
    big_n = np.repeat(n0[None, :], k, axis=0)
    big_v = np.repeat(v0[None, :], k, axis=0)
    big_e = np.repeat(e0[None, :], k, axis=0)
    big_n[rows, rep] -= cnt
    big_v[rows, rep] -= val
    big_e[rows, rep] -= ev_here
    start = rep.copy()
    seen = np.zeros((k, n_r), dtype=bool)
    seen[rows, rep] = True
    blocks = [np.flatnonzero(rep == r) for r in range(n_r)]  # each rep's groups
    preds: list[np.ndarray] = []  # per step: the label each group's new label extends
    best: tuple[float, int, int, int] | None = None  # gain, step, group in hand, rep it closes on
    floor = 1e-9 * max(abs(m.objective(choice)), 1.0)
    for step in range(depth):
        live = np.isfinite(gain)
        if not live.any():
            break
        # Close: the group in hand goes to a rep without ejecting one (its start rep: a cycle).
        close = _closing(m, big_n, big_v, big_e, start, seen, cnt, val, ev, can)
        c_gain = np.where(close & live[:, None], gain[:, None] + net, -np.inf)
        j = int(np.argmax(c_gain))
        h, s = divmod(j, n_r)
        if np.isfinite(c_gain[h, s]) and c_gain[h, s] > floor and (best is None or c_gain[h, s] > best[0] + floor):
            best = (float(c_gain[h, s]), step, h, s)
        if step == depth - 1:
            break
        # Extend: h in hand goes to rep s = rep[h2], which gives h2 up (h2 then in hand).
        pred, new_gain = _extend(
            gain, live, big_n, big_v, big_e, seen, blocks, cnt, val, ev, ev_here, net, here, can, weight, m
        )
        keep = np.isfinite(new_gain)
        pred = np.where(keep, pred, -1)
        preds.append(pred)
        p = np.where(keep, pred, 0)
        big_n, big_v, big_e = big_n[p].copy(), big_v[p].copy(), big_e[p].copy()
        big_n[rows, rep] += cnt[p] - cnt
        big_v[rows, rep] += val[p] - val
        big_e[rows, rep] += ev[p, rep] - ev_here
        start = start[p]
        seen = seen[p].copy()
        seen[rows, rep] = True
        gain = np.where(keep, new_gain, -np.inf)
    if best is None:
        return None
    g_gain, step, h, s = best
    groups, to = [int(gs[h])], [s]
    for t in range(step - 1, -1, -1):
        prev = int(preds[t][h])
        groups.append(int(gs[prev]))
        to.append(int(rep[h]))
        h = prev
    return Chain(tuple(reversed(groups)), tuple(reversed(to)), g_gain)


def _extend(
    gain: np.ndarray,
    live: np.ndarray,
    big_n: np.ndarray,
    big_v: np.ndarray,
    big_e: np.ndarray,
    seen: np.ndarray,
    blocks: list[np.ndarray],
    cnt: np.ndarray,
    val: np.ndarray,
    ev: np.ndarray,
    ev_here: np.ndarray,
    net: np.ndarray,
    here: np.ndarray,
    can: np.ndarray,
    weight: float,
    m: Model,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the search: per group ``h2`` (ejected from its rep ``s``), the label whose
    group in hand goes to ``s`` in its place with the best fit value less ``weight`` × value band
    excess (``pred``, lowest label on ties; -1: none) and the fit value of that chain (-inf: none).
    Rep ``s`` must then hold its count band and capacities, and its value band around the
    label's mean; rep by rep, so every array is one rep's groups against the labels that may
    enter it."""
    k, n_r = big_n.shape
    band, lower, upper = m.value_band, m.lower, m.upper
    w, vroom = m.weights(), _vroom(m)
    pred = np.full(k, -1, dtype=np.int64)
    new_gain = np.full(k, -np.inf)
    fixed = m.value_mean is not None
    held_e = big_e.sum(axis=1)  # every rep's expected value but the group in hand's
    # The mean each label's chain leaves, the group in hand counted where it was (it goes on).
    mean = np.full(k, m.value_mean) if fixed else (held_e + ev_here) / n_r
    tot = np.zeros(k)
    vv = np.zeros((k, n_r))
    if band and weight:
        cen = w[None, :] * mean[:, None]
        vv = np.maximum(big_e - (1 + band) * cen, 0.0) + np.maximum((1 - band) * cen - big_e, 0.0)
        tot = vv.sum(axis=1)
    for s, cols in enumerate(blocks):
        if not len(cols):
            continue
        rows = np.flatnonzero(live & ~seen[:, s] & can[:, s])
        if not len(rows):
            continue
        n_s = (big_n[rows, s] + cnt[rows])[:, None] - cnt[None, cols]
        ok = (n_s >= lower - TOL) & (n_s <= upper + TOL) & (n_s <= m.cap[s] + TOL)
        ok &= (big_v[rows, s] + val[rows])[:, None] - val[None, cols] <= vroom[s]
        score = (gain[rows] + net[rows, s])[:, None] - here[None, cols]
        ext = score
        if band:
            e_s = (big_e[rows, s] + ev[rows, s])[:, None] - ev_here[None, cols]
            # The mean with the group in hand at s, the group ejected counted where it was.
            at_s = mean[rows] if fixed else (held_e[rows] + ev[rows, s]) / n_r
            hi_s, lo_s = ((1 + band) * w[s] * at_s)[:, None], ((1 - band) * w[s] * at_s)[:, None]
            ok &= (e_s <= hi_s + TOL) & (e_s >= lo_s - TOL)
            if weight:  # within the band here, so only the other reps' excess counts
                score = score - weight * (tot[rows] - vv[rows, s])[:, None]
        score = np.where(ok, score, -np.inf)
        best = np.argmax(score, axis=0)
        at = np.arange(len(cols))
        found = np.isfinite(score[best, at])
        pred[cols[found]] = rows[best[found]]
        new_gain[cols[found]] = ext[best[found], at[found]]
    return pred, new_gain


def _vroom(m: Model) -> np.ndarray:
    vc = np.where(np.isfinite(m.vcap), m.vcap, 0.0)
    out: np.ndarray = m.vcap + 1e-9 * np.abs(vc) + 1e-6  # as Model.vfits
    return out


def _closing(
    m: Model,
    big_n: np.ndarray,
    big_v: np.ndarray,
    big_e: np.ndarray,
    start: np.ndarray,
    seen: np.ndarray,
    cnt: np.ndarray,
    val: np.ndarray,
    ev: np.ndarray,
    can: np.ndarray,
) -> np.ndarray:
    """(labels, reps): whether the group in hand may go to the rep and close the chain there (a
    rep off the chain, or its start rep), every rep then inside both bands and capacities."""
    k, n_r = big_n.shape
    rows = np.arange(k)
    band, lower, upper, w = m.value_band, m.lower, m.upper, m.weights()
    n_new = big_n + cnt[:, None]
    ok: np.ndarray = can & ((~seen) | (np.arange(n_r)[None, :] == start[:, None]))
    ok &= (n_new >= lower - TOL) & (n_new <= upper + TOL) & (n_new <= m.cap[None, :] + TOL)
    ok &= big_v + val[:, None] <= _vroom(m)[None, :]
    # The start rep, unless the chain closes on it, has lost a group: its count band.
    n_start = big_n[rows, start]
    ok &= (n_start >= lower - TOL)[:, None] | (np.arange(n_r)[None, :] == start[:, None])
    if not band:
        return ok
    e_new = big_e + ev  # (labels, reps): the receiving rep's expected value
    tot = big_e.sum(axis=1)
    mean = np.full((k, n_r), m.value_mean) if m.value_mean is not None else (tot[:, None] + ev) / n_r
    q = big_e / w[None, :]  # every rep's load over its weight, before the close
    hi1, hi2, arg_hi = _top2(q)
    lo1, lo2, arg_lo = _top2(-q)
    cols = np.arange(n_r)[None, :]
    q_max = np.maximum(np.where(arg_hi[:, None] == cols, hi2[:, None], hi1[:, None]), e_new / w[None, :])
    q_min = np.minimum(np.where(arg_lo[:, None] == cols, -lo2[:, None], -lo1[:, None]), e_new / w[None, :])
    scale = TOL * np.maximum(mean, 1.0)
    ok &= (q_max <= (1 + band) * mean + scale) & (q_min >= (1 - band) * mean - scale)
    return ok


def _top2(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the largest value, the second largest and the column of the largest."""
    arg = np.argmax(q, axis=1)
    first = q[np.arange(len(q)), arg]
    rest = q.copy()
    rest[np.arange(len(q)), arg] = -np.inf
    second: np.ndarray = rest.max(axis=1) if q.shape[1] > 1 else np.full(len(q), -np.inf)
    top: np.ndarray = first
    return top, second, arg
