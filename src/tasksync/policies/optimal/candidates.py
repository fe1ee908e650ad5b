"""Candidate reps per group, with their scores, expected values and move costs.

Small books (groups × reps ≤ ``FULL_MODEL``) give every group every rep. Big ones give each group
``policy.candidate_reps`` best-fitting reps for its kind of account plus a deterministic spread,
the reps under the band and its current and CRM owners, scored without a dense matrix. A group
whose owner has no reason to give it away and would gain nothing worth ``min_gain`` is held.
"""

from __future__ import annotations

import itertools

import numpy as np

from tasksync.policies.optimal.model import EPS, FULL_MODEL, Model, Scorer, over_under, spreads
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
    extra: np.ndarray | None = None,
) -> float:
    """Fill ``m.cand``, ``m.score``, ``m.ev``, ``m.move`` and ``m.held``, and the model's dense
    lookups (:meth:`.Model.index`); returns the span of net scores (the scale the band penalties
    must exceed). ``extra``: per group, a rep that is among its candidates on a big book too (-1:
    none; a division found on another book of the same groups, to be expressed in this one)."""
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
    if dense is not None:
        every = np.arange(n_r)
        cands = [every if pin < 0 else np.array([pin]) for pin in pin_idx]
        scored = [(dense[0][g, c], dense[1][g, c]) for g, c in enumerate(cands)]
    else:
        cands = _sparse_pools(m, scorer, st, k, pin_idx, under_idx, extra)
        scored = _sparse_scores(scorer, st, n_items, cands)
    # Unpinned groups whose every card is with the group's (available) owner.
    same = item_owner == np.repeat(m.owner, np.diff(np.append(st, n_items))) if n_g else np.zeros(0, dtype=bool)
    all_same = np.logical_and.reduceat(same, st) if n_g else np.zeros(0, dtype=bool)
    whole = np.flatnonzero(all_same & (np.asarray(pin_idx, dtype=np.int64) < 0) & (m.owner >= 0))
    must_give = over.copy()
    if under_idx.size:  # reps under the band: an owner above the mean gives too
        must_give |= above_mean
    must_give[[r for r in sorted(unhold) if 0 <= r < n_r]] = True
    return _fill(m, cands, scored, st, item_owner, item_move, mv_total, whole, must_give, p)


def _fill(
    m: Model,
    cands: list[np.ndarray],
    scored: list[tuple[np.ndarray, np.ndarray]],
    st: np.ndarray,
    item_owner: np.ndarray,
    item_move: np.ndarray,
    mv_total: np.ndarray,
    whole: np.ndarray,
    must_give: np.ndarray,
    p: PolicySettings,
) -> float:
    """Fill ``m.cand``, ``m.score``, ``m.ev``, ``m.move`` and ``m.held`` from every group's
    candidates and scores at once; returns the span of net scores. A group's move cost with a rep
    is its owned cards' costs less those of the cards that rep owns already (taken off card by card,
    in card order). A group of ``whole`` (unpinned, every card with the group's owner) is held, its
    owner its only candidate, when its owner need not give (``must_give``, per rep) and no other
    candidate gains on the owner (with ``rebalance_only``: whatever the gain)."""
    n_g, n_r = len(m.groups), len(m.reps)
    if not n_g:
        m.index()
        return 1.0
    k = np.array([len(c) for c in cands], dtype=np.int64)
    first = np.cumsum(k) - k
    grp = np.repeat(np.arange(n_g, dtype=np.int64), k)
    cand = np.concatenate(cands).astype(np.int64)
    score = np.concatenate([sc for sc, _ in scored])
    ev = np.concatenate([e for _, e in scored])
    keys = grp * n_r + cand  # ascending: groups in order, each one's candidates sorted

    def find(g: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Flat position of rep ``r`` among group ``g``'s candidates (-1: not a candidate)."""
        want = g * n_r + r
        at = np.searchsorted(keys, want)
        ok = at < len(keys)
        ok[ok] = keys[at[ok]] == want[ok]
        return np.where(ok, at, -1)

    mv = mv_total[grp].astype(float)
    item_grp = np.repeat(np.arange(n_g, dtype=np.int64), np.diff(np.append(st, len(item_owner))))
    sel = np.flatnonzero(item_owner >= 0)
    at = find(item_grp[sel], item_owner[sel])
    np.subtract.at(mv, at[at >= 0], item_move[sel][at >= 0])  # one subtraction per card, in order
    net = score - mv
    nonempty = k > 0
    top, absmax = np.full(n_g, -np.inf), np.zeros(n_g)
    if len(net):
        top[nonempty] = np.maximum.reduceat(net, first[nonempty])
        absmax[nonempty] = np.maximum.reduceat(np.abs(net), first[nonempty])
    held = np.zeros(n_g, dtype=bool)
    own = np.full(n_g, -1, dtype=np.int64)
    if len(whole):
        o = m.owner[whole]
        at_o = find(whole, o)
        w, o, at_o = whole[at_o >= 0], o[at_o >= 0], at_o[at_o >= 0]
        gain = top[w] > net[at_o] + EPS
        keep = ~must_give[o] & (p.rebalance_only | ~gain)
        held[w[keep]], own[w[keep]] = True, at_o[keep]
        absmax[held] = np.abs(net[own[held]])
    span = max(1.0, float((absmax + 1.0).max(initial=1.0)))
    cut = first[1:]
    for out, flat in ((m.cand, cand), (m.score, score), (m.ev, ev), (m.move, mv)):
        parts = _split(flat, cut)
        for g in np.flatnonzero(held).tolist():
            parts[g] = flat[own[g] : own[g] + 1]
        out.extend(parts)
    m.held.extend(held.tolist())
    at = np.ones(len(cand), dtype=bool)  # the candidates kept: a held group's owner alone
    at[np.repeat(held, k)] = False
    at[own[held]] = True
    m.index((np.where(held, 1, k), cand[at], net[at], ev[at]))
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


def _sparse_pools(
    m: Model,
    sc: Scorer,
    st: np.ndarray,
    k: int,
    pin_idx: list[int],
    under_idx: np.ndarray,
    extra: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Candidates of a big book's groups (sorted rep indexes): the best reps for a group's kind of
    account (half from the very top, half from a deterministic slice of the next ranks, the slice
    moving on with each group of that kind, so that accounts of one kind do not all compete for the
    same few reps), a spread of others, reps under the band, current and CRM owners; a pinned
    group, its pinned rep alone. All groups at once: one row of possible picks per group."""
    n_g, n_r = len(m.groups), len(m.reps)
    if not n_g:
        return []
    half = max(1, k // 2)
    window = max(1, min(n_r - half, 4 * k))
    kinds = np.stack([sc.sec[st], sc.reg[st], sc.cust[st]], axis=1)
    uniq, kind_of = np.unique(kinds, axis=0, return_inverse=True)
    kind_of = kind_of.reshape(-1)
    ranks = np.stack([np.argsort(-sc.combo_row(*map(int, key)), kind="stable") for key in uniq])
    pinned = np.asarray(pin_idx, dtype=np.int64) >= 0
    # The how-many-th unpinned group of its kind each group is (0 for the first).
    q = np.zeros(n_g, dtype=np.int64)
    free = np.flatnonzero(~pinned)
    order = free[np.argsort(kind_of[free], kind="stable")]
    ko = kind_of[order]
    starts = np.r_[0, np.flatnonzero(ko[1:] != ko[:-1]) + 1] if len(ko) else np.zeros(0, dtype=np.int64)
    q[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = ranks[kind_of]  # (groups, reps)
    slice_at = half + (q[:, None] * 7 + np.arange(k - half)[None, :] * 13) % window
    picks = np.concatenate(
        [
            rank[:, :half],
            np.take_along_axis(rank, slice_at, axis=1),
            spreads([g.key for g in m.groups], n_r, max(2, k // 3)),
            np.broadcast_to(under_idx.astype(np.int64), (n_g, len(under_idx))),
            m.owner[:, None],
            sc.acct_owner[st][:, None].astype(np.int64),
            (np.full(n_g, -1, dtype=np.int64) if extra is None else np.asarray(extra, dtype=np.int64))[:, None],
        ],
        axis=1,
    )
    picks = np.sort(picks, axis=1)
    keep = picks >= 0
    keep[:, 1:] &= picks[:, 1:] != picks[:, :-1]
    per = keep.sum(axis=1)
    pools = _split(picks[keep], np.cumsum(per)[:-1])
    for g in np.flatnonzero(pinned).tolist():
        pools[g] = np.array([pin_idx[g]])
    return pools


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
    return list(zip(_split(score_s, cut), _split(ev_s, cut), strict=True))


def _split(flat: np.ndarray, cut: np.ndarray) -> list[np.ndarray]:
    """``np.split(flat, cut)`` (views of ``flat`` between the cuts), without its per-piece
    overhead: a 10k-card book splits ~60,000 pieces a model."""
    bounds = [0, *cut.tolist(), len(flat)]
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]
