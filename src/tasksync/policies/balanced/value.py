"""The value pass of the balanced policy: bring each rep's expected value into their value band by
single moves, else exchanges of two groups, that keep both reps within the count band and their
capacities. Candidates are scored in numpy blocks; the work done is counted in candidate pairs
examined (a work limit, never the clock: the same result on any machine)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasksync.policies.balanced.divider import CHUNK, EPS, Divider, pick
from tasksync.policies.balanced.scores import Bools, Floats, Ints
from tasksync.policies.reasons import ReasonKind

__all__ = ["balance_value"]

SWAP_BUDGET = 50_000  # pairs examined per exchange search
MIN_BUDGET = 1_000_000  # pairs examined per pass, at least
PAIRS_PER_CELL = 8  # pairs examined per pass, per group × rep


@dataclass
class _Bands:
    """Each rep's value band as arrays, and how far each rep's expected value is outside theirs."""

    mean: Floats
    lower: Floats
    upper: Floats
    off: Floats

    def outside(self, x: Floats, reps: Ints | int) -> Floats:
        out: Floats = np.maximum(x - self.upper[reps], 0.0) + np.maximum(self.lower[reps] - x, 0.0)
        return out

    def tolerance(self, reps: Ints | int) -> Floats:
        out: Floats = 1e-6 * np.maximum(self.mean[reps], 1.0)
        return out


# A candidate found: its key (compared as a tuple, larger is better) and what to do with it.
_Key = tuple[float, float, int, int]
_Move = tuple[_Key, int, int, int, tuple[float, float]]  # key, group, from, to, (expected value, fit) there
# key, g (of r), h (of the partner), (expected value, fit) of g at the partner and of h at r
_Swap = tuple[_Key, int, int, tuple[float, float], tuple[float, float]]


def balance_value(d: Divider, budget: int | None = None) -> None:
    """Reps outside their value band, the furthest first: the single move into or out of that rep
    (from a rep above their target, or to one below it) that most lowers the expected value outside
    the bands while both reps stay within the count band and capacities, else the best exchange of
    two groups (at most ``SWAP_BUDGET`` pairs examined per rep); a rep nothing helps is left as it is.
    Stops when every rep is within their band, nothing helps, or after ``budget`` candidates examined
    (by default ``PAIRS_PER_CELL`` × groups × reps, at least ``MIN_BUDGET``: each pass can then reach
    every rep, so that the passes settle on big books too)."""
    n_r = len(d.ids)
    if budget is None:
        budget = max(MIN_BUDGET, PAIRS_PER_CELL * len(d.groups) * n_r)
    stuck = np.zeros(n_r, dtype=bool)
    by: list[list[int]] = [[] for _ in d.ids]
    for g in sorted(range(len(d.groups)), key=lambda k: d.groups[k].order):
        if d.asg[g] >= 0 and not d.pinned[g]:
            by[int(d.asg[g])].append(g)
    reps = np.arange(n_r)
    work = 0
    while work < budget:
        mean = sum(d.ev.tolist()) / n_r * d.weights  # each rep's target (value_targets)
        bands = _Bands(mean, mean * (1 - d.value_ratio), mean * (1 + d.value_ratio), np.zeros(n_r))
        bands.off = bands.outside(d.ev, reps)
        off = ~stuck & (bands.off > bands.tolerance(reps))
        if not off.any():
            return
        r = pick(off, bands.off / np.maximum(mean, 1.0), d.idr)  # the furthest out, then the larger id
        high = bool(d.ev[r] > bands.upper[r])
        if high:
            tos = np.flatnonzero((d.ev < mean) & (reps != r))
            work += len(by[r]) * len(tos)
            move = _move_out(d, bands, by[r], r, tos)
        else:
            froms = (d.ev > mean) & (reps != r)
            gs = np.flatnonzero((d.asg >= 0) & ~d.pinned & froms[np.maximum(d.asg, 0)])  # all of by[froms]
            work += len(gs)
            move = _move_in(d, bands, gs, r)
        if move is not None:
            _, g, a, b, there = move
            _shift(d, by, g, a, b, there, ReasonKind.ABOVE_VALUE_BAND if high else ReasonKind.BELOW_VALUE_BAND)
            continue
        partners = np.flatnonzero(((d.ev < mean) == high) & (reps != r)).tolist()
        swap, seen = _best_swap(d, bands, r, partners, by, min(budget - work, SWAP_BUDGET))
        work += seen
        if swap is None:
            stuck[r] = True
            continue
        _, g, h, g_there, h_there = swap
        a, b = r, int(d.asg[h])
        if not high:
            g, h, a, b, g_there, h_there = h, g, b, r, h_there, g_there
        _shift(d, by, g, a, b, g_there, ReasonKind.ABOVE_VALUE_BAND if high else ReasonKind.BELOW_VALUE_BAND)
        _shift(d, by, h, b, a, h_there, ReasonKind.REBALANCING)


def _shift(
    d: Divider, by: list[list[int]], g: int, a: int, b: int, there: tuple[float, float], kind: ReasonKind
) -> None:
    """Move group ``g`` from ``a`` to ``b`` (``there``: its expected value and fit with ``b``) for ``kind``."""
    d.leave(g, kind)
    d.give(g, b, *there)
    by[a].remove(g)
    by[b].append(g)


def _move_out(d: Divider, bands: _Bands, mine: list[int], r: int, tos: Ints) -> _Move | None:
    """The best move of one of ``r``'s groups ``mine`` to a rep of ``tos`` (see :func:`_best`)."""
    if not mine or not len(tos):
        return None
    lower, upper = d.band.lower, d.band.upper
    gs_all = np.array(mine, dtype=np.int64)
    ev_r, fit_r = d.ev_here[gs_all], d.fit_here[gs_all]
    best: _Move | None = None
    per_card = max(1, CHUNK // len(tos))
    k = 0
    while k < len(gs_all):
        j = k + 1
        cards = int(d.n[gs_all[k]])
        while j < len(gs_all) and cards + d.n[gs_all[j]] <= per_card:
            cards += int(d.n[gs_all[j]])
            j += 1
        gs = gs_all[k:j]
        ev, fit = d.scores.block(gs, tos)
        w = d.w[gs][:, None]
        ok = (d.count[r] - w >= lower - EPS) & (d.count[tos][None, :] + w <= upper + EPS)
        gone = bands.outside(d.ev[r] - ev_r[k:j], r)[:, None]
        came = bands.outside(d.ev[tos][None, :] + ev, tos[None, :])
        drop = bands.off[r] + bands.off[tos][None, :] - gone - came
        ok &= drop > bands.tolerance(tos)[None, :]
        ok &= (d.count[tos][None, :] + d.n[gs][:, None] <= d.cap[tos][None, :]) & (
            d.pipe[tos][None, :] + d.val[gs][:, None] <= d.vlim[tos][None, :]
        )
        gain = fit - fit_r[k:j][:, None]
        found = _best(
            ok,
            drop,
            gain,
            np.broadcast_to(d.rank[gs][:, None], ok.shape),
            np.broadcast_to(d.idr[tos][None, :], ok.shape),
        )
        if found is not None:
            key, (x, y) = found
            if best is None or key > best[0]:
                best = (key, int(gs[x]), r, int(tos[y]), (float(ev[x, y]), float(fit[x, y])))
        k = j
    return best


def _move_in(d: Divider, bands: _Bands, gs: Ints, r: int) -> _Move | None:
    """The best move to ``r`` of a group ``gs`` held by a rep above their target (see :func:`_best`)."""
    if not len(gs):
        return None
    lower, upper = d.band.lower, d.band.upper
    w = d.w[gs]
    # What needs no score first: both reps within the count band, ``r``'s capacities.
    ok = (d.count[d.asg[gs]] - w >= lower - EPS) & (d.count[r] + w <= upper + EPS)
    ok &= (d.count[r] + d.n[gs] <= d.cap[r]) & (d.pipe[r] + d.val[gs] <= d.vlim[r])
    gs = gs[ok]
    if not len(gs):
        return None
    frm = d.asg[gs]
    ev_r, fit_r = d.scores.column(gs, r)
    drop = bands.off[frm] + bands.off[r] - bands.outside(d.ev[frm] - d.ev_here[gs], frm)
    drop = drop - bands.outside(d.ev[r] + ev_r, r)
    found = _best(drop > bands.tolerance(r), drop, fit_r - d.fit_here[gs], d.rank[gs], np.full(len(gs), d.idr[r]))
    if found is None:
        return None
    key, (x,) = found
    return key, int(gs[x]), int(frm[x]), r, (float(ev_r[x]), float(fit_r[x]))


def _best(
    ok: Bools, drop: Floats, gain: Floats, first: Ints, second: Ints
) -> tuple[tuple[float, float, int, int], tuple[int, ...]] | None:
    """Where ``ok`` holds, the candidate with the largest (drop, fit gain, first rank, second rank):
    its key and its index."""
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    flat = [drop.ravel(), gain.ravel(), np.ascontiguousarray(first).ravel(), np.ascontiguousarray(second).ravel()]
    for a in flat:
        vals = a[idx]
        idx = idx[vals == vals.max()]
    at = int(idx[0])
    key = (float(flat[0][at]), float(flat[1][at]), int(flat[2][at]), int(flat[3][at]))
    return key, tuple(int(x) for x in np.unravel_index(at, ok.shape))


def _best_swap(
    d: Divider, bands: _Bands, r: int, partners: list[int], by: list[list[int]], budget: int
) -> tuple[_Swap | None, int]:
    """The exchange of a group of ``r`` for a group of a partner that most lowers the expected
    value outside the bands, both reps staying within the count band and capacities: what single
    moves cannot do when reps sit at the edge of the count band. Pairs are examined partner by
    partner, ``r``'s group then the partner's, at most ``budget`` of them (all partners at once, in
    one block). Returns the best (``r``'s group first, with each group's expected value at the other
    rep) and the pairs examined (one more than ``budget`` when it stopped there, as the loop it
    replaces counted)."""
    if not by[r]:
        return None, 0
    gs = np.array(by[r], dtype=np.int64)
    m = len(gs)
    used = [b for b in partners if by[b]]
    total = m * sum(len(by[b]) for b in used)
    left = max(budget, 0)
    # The partners whose pairs start before the budget runs out, and their groups in that order.
    hs_list: list[int] = []
    pb_list: list[int] = []  # per partner group: the index of its partner in ``used``
    starts: list[int] = []  # per partner group: pairs examined before its partner's block
    for k, b in enumerate(used):
        if m * len(hs_list) >= left:
            used = used[:k]
            break
        base = m * len(hs_list)
        hs_list += by[b]
        pb_list += [k] * len(by[b])
        starts += [base] * len(by[b])
    best = _swap_block(d, bands, r, gs, np.array(used, dtype=np.int64), hs_list, pb_list, starts, left)
    return (best, left + 1) if total > left else (best, total)


def _swap_block(
    d: Divider,
    bands: _Bands,
    r: int,
    gs: Ints,
    used: Ints,
    hs_list: list[int],
    pb_list: list[int],
    starts: list[int],
    left: int,
) -> _Swap | None:
    """The best exchange of a group ``gs`` of ``r`` with a group ``hs_list`` of partner
    ``used[pb_list[k]]``, among the first ``left`` pairs in the order partner, ``r``'s group,
    partner's group."""
    if not hs_list:
        return None
    lower, upper = d.band.lower, d.band.upper
    hs, pb = np.array(hs_list, dtype=np.int64), np.array(pb_list, dtype=np.int64)
    b = used[pb]  # each partner group's rep
    local = np.arange(len(hs)) - np.searchsorted(pb, pb, side="left")  # its place in its partner's list
    size = np.bincount(pb, minlength=len(used))[pb]
    seq = np.array(starts, dtype=np.int64)[None, :] + np.arange(len(gs))[:, None] * size[None, :] + local[None, :]
    g_r, gf_r = d.ev_here[gs], d.fit_here[gs]
    g_b, gf_b = (x[:, pb] for x in d.scores.block(gs, used))
    h_r, hf_r = d.scores.column(hs, r)
    h_b, hf_b = d.ev_here[hs], d.fit_here[hs]
    dn = d.w[gs][:, None] - d.w[hs][None, :]
    na, nb = d.count[r] - dn, d.count[b][None, :] + dn
    ok = (seq < left) & (lower - EPS <= na) & (na <= upper + EPS) & (lower - EPS <= nb) & (nb <= upper + EPS)
    ea = (d.ev[r] - g_r)[:, None] + h_r[None, :]
    eb = (d.ev[b] - h_b)[None, :] + g_b
    drop = bands.off[r] + bands.off[b][None, :] - bands.outside(ea, r) - bands.outside(eb, b[None, :])
    ok &= (drop > bands.tolerance(b)[None, :]) & (na <= d.cap[r]) & (nb <= d.cap[b][None, :])
    dv = d.val[gs][:, None] - d.val[hs][None, :]
    ok &= (d.pipe[r] - dv <= d.vlim[r]) & (d.pipe[b][None, :] + dv <= d.vlim[b][None, :])
    gain = ((gf_b + hf_r[None, :]) - gf_r[:, None]) - hf_b[None, :]
    ranks = np.broadcast_to(d.rank[gs][:, None], ok.shape), np.broadcast_to(d.rank[hs][None, :], ok.shape)
    found = _best(ok, drop, gain, *ranks)
    if found is None:
        return None
    key, (x, y) = found
    return key, int(gs[x]), int(hs[y]), (float(g_b[x, y]), float(gf_b[x, y])), (float(h_r[y]), float(hf_r[y]))
