"""Candidate reps per group, with their scores, expected values and move costs.

Small books (groups × reps ≤ ``FULL_MODEL``) give every group every rep. Big ones give each group
``policy.candidate_reps`` best-fitting reps for its kind of account plus a deterministic spread,
the reps under the band and its current and CRM owners, scored without a dense matrix. A group
whose owner has no reason to give it away and would gain nothing worth ``min_gain`` is held.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tasksync.policies.optimal.model import EPS, FULL_MODEL, Model, Scorer, over_under, spread
from tasksync.settings import PolicySettings

__all__ = ["choose_candidates"]


def choose_candidates(
    m: Model,
    scorer: Scorer,
    st: np.ndarray,
    item_owner: np.ndarray,
    item_move: np.ndarray,
    exact: bool,
    p: PolicySettings,
    unhold: frozenset[int] = frozenset(),
) -> float:
    """Fill ``m.cand``, ``m.score``, ``m.ev``, ``m.move`` and ``m.held``; returns the span of net
    scores (the scale the band penalties must exceed)."""
    n_g, n_r = len(m.groups), len(m.reps)
    full = exact or n_g * n_r <= FULL_MODEL
    k = n_r if full else max(2, min(n_r, p.candidate_reps))
    over, under, above_mean = over_under(m)
    under_idx = np.flatnonzero(under)[: max(2, k // 3)]
    ridx = {r: i for i, r in enumerate(m.reps)}
    pin_idx = [ridx.get(g.pinned, -1) if g.pinned else -1 for g in m.groups]
    n_items = len(item_owner)
    mv_total = np.add.reduceat(item_move, st) if n_g else np.zeros(0)
    dense = _dense_scores(scorer, st, n_items) if full or n_r <= k else None
    span = 1.0
    rows_cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    seen: Counter[tuple[int, int, int]] = Counter()
    if dense is not None:
        every = np.arange(n_r)
        cands = [every if pin < 0 else np.array([pin]) for pin in pin_idx]
        scored = [(dense[0][g, c], dense[1][g, c]) for g, c in enumerate(cands)]
    else:
        cands = [_sparse_pool(m, scorer, g, int(st[g]), k, pin_idx[g], under_idx, rows_cache, seen) for g in range(n_g)]
        scored = _sparse_scores(scorer, st, n_items, cands)
    for g in range(n_g):
        lo, hi = int(st[g]), int(st[g + 1]) if g + 1 < n_g else n_items
        cand, (score, ev) = cands[g], scored[g]
        mv = np.full(len(cand), mv_total[g])
        sel = item_owner[lo:hi] >= 0
        for r, cost in zip(item_owner[lo:hi][sel].tolist(), item_move[lo:hi][sel].tolist(), strict=True):
            mv[cand == r] -= cost
        net = score - mv
        o = int(m.owner[g])
        held = False
        if pin_idx[g] < 0 and o >= 0 and o in cand.tolist():
            whole = all(i.owner == m.groups[g].owner for i in m.groups[g].items)
            must = not whole or o in unhold or bool(over[o]) or (under_idx.size > 0 and bool(above_mean[o]))
            at_o = float(net[np.searchsorted(cand, o)])
            gain = bool(net.max() > at_o + EPS)
            if not must and (p.rebalance_only or not gain):
                keep = slice(int(np.searchsorted(cand, o)), int(np.searchsorted(cand, o)) + 1)
                cand, score, ev, mv, net = cand[keep], score[keep], ev[keep], mv[keep], net[keep]
                held = True
        span = max(span, float(np.abs(net).max(initial=0.0)) + 1.0)
        m.cand.append(cand)
        m.score.append(score)
        m.ev.append(ev)
        m.move.append(mv)
        m.held.append(held)
    return span


def _dense_scores(sc: Scorer, st: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and expected values of every group with every rep, (groups, reps) each, by chunks."""
    n_g, n_r = len(st), len(sc.rep_lift)
    score, ev = np.zeros((n_g, n_r)), np.zeros((n_g, n_r))
    chunk = max(1, 4_000_000 // max(n_r, 1))
    g0 = 0
    while g0 < n_g:
        g1 = g0 + 1
        while g1 < n_g and st[g1] - st[g0] < chunk:
            g1 += 1
        lo, hi = int(st[g0]), int(st[g1]) if g1 < n_g else n_items
        s_i, e_i = sc.block_ev(np.arange(lo, hi))
        score[g0:g1] = np.add.reduceat(s_i, st[g0:g1] - lo, axis=0)
        ev[g0:g1] = np.add.reduceat(e_i, st[g0:g1] - lo, axis=0)
        g0 = g1
    return score, ev


def _sparse_pool(
    m: Model,
    sc: Scorer,
    g: int,
    i0: int,
    k: int,
    pin: int,
    under_idx: np.ndarray,
    rows_cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]],
    seen: Counter[tuple[int, int, int]],
) -> np.ndarray:
    """Candidates of a big book's group: the best reps for its kind of account (half from the very
    top, half from a deterministic slice of the next ranks, so that accounts of one kind do not all
    compete for the same few reps), a spread of others, reps under the band, current and CRM owners."""
    if pin >= 0:
        return np.array([pin])
    n_r = len(m.reps)
    key = (int(sc.sec[i0]), int(sc.reg[i0]), int(sc.cust[i0]))
    if key not in rows_cache:
        row = sc.combo_row(*key)
        rows_cache[key] = (row, np.argsort(-row, kind="stable"))
    _, rank = rows_cache[key]
    q = seen[key]
    seen[key] += 1
    half = max(1, k // 2)
    window = max(1, min(n_r - half, 4 * k))
    pool = set(rank[:half].tolist())
    pool.update(int(rank[half + (q * 7 + t * 13) % window]) for t in range(k - half))
    pool.update(spread(m.groups[g].key, n_r, max(2, k // 3)))
    pool.update(under_idx.tolist())
    if int(m.owner[g]) >= 0:
        pool.add(int(m.owner[g]))
    if int(sc.acct_owner[i0]) >= 0:
        pool.add(int(sc.acct_owner[i0]))
    return np.array(sorted(pool))


def _sparse_scores(
    sc: Scorer, st: np.ndarray, n_items: int, cands: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per group: scores and expected values of its items (``st``: each group's first item) with
    its candidate reps ``cands`` only, summed over the items; computed for every (item, candidate)
    pair in one pass."""
    if not cands:
        return []
    sizes = np.diff(np.append(st, n_items))
    k = np.array([len(c) for c in cands], dtype=np.int64)
    seg = np.repeat(sizes, k)  # one segment per (group, candidate): that group's items
    reps = np.repeat(np.concatenate(cands), seg)
    ends = np.cumsum(seg)
    rows = np.repeat(np.repeat(st, k), seg) + np.arange(int(ends[-1])) - np.repeat(ends - seg, seg)
    secs, regs = sc.sec[rows], sc.reg[rows]
    p = sc.p0[rows] * sc.rep_lift[reps]
    p = p * np.where(secs >= 0, sc.rep_sector[secs, reps], 1.0)
    ev = sc.value[rows] * np.clip(p, 0.01, 0.99)
    bonus = sc.w[0] * sc.strong[secs, reps] * (secs >= 0)
    bonus = bonus + sc.w[1] * sc.covers[regs, reps] * (regs >= 0)
    bonus = bonus + sc.w[2] * sc.role[sc.cust[rows], reps]
    bonus = bonus + sc.w[3] * (sc.acct_owner[rows] == reps)
    starts = ends - seg
    score_s = np.add.reduceat(ev * (1.0 + bonus), starts)
    ev_s = np.add.reduceat(ev, starts)
    cut = np.cumsum(k)[:-1]
    return list(zip(np.split(score_s, cut), np.split(ev_s, cut), strict=True))
