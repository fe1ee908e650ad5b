"""Heuristics around the solver: taking its answer, greedy placement, Lagrangian prices for books
too big for the LP, shedding excess capacity, closing band gaps and single-move improvements.
All deterministic: fixed round counts, stable orders, ties broken by index."""

from __future__ import annotations

import math

import numpy as np

from tasksync.policies.optimal.model import EPS, Loads, Model

IMPROVE_CHUNK = 128  # groups examined at once by improve (a move re-examines the rest from after it)

__all__ = ["greedy", "improve", "prices", "repair", "shed", "swap", "take"]


def take(
    m: Model, movers: list[int], x_all: np.ndarray, group: np.ndarray, rep: np.ndarray, choice: np.ndarray
) -> list[int]:
    """Assign the movers whose x is integral; return the positions (in ``movers``) of the others.
    A mover integrally left unassigned keeps ``choice`` -1."""
    n_x, n_m = len(group), len(movers)
    x = x_all[:n_x]
    order = np.lexsort((-x, group))  # per group, largest x first
    first = np.full(n_m, -1)
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    first[group[order][starts]] = order[starts]
    frac: list[int] = []
    for j in range(n_m):
        pos = int(first[j])
        if pos >= 0 and x[pos] > 1 - 1e-6:
            choice[movers[j]] = int(rep[pos])
        elif x_all[n_x + j] < 1 - 1e-6:
            frac.append(j)
        else:
            choice[movers[j]] = -1
    return frac


def greedy(groups: list[int], m: Model, choice: np.ndarray, loads: Loads) -> None:
    """Place ``groups`` one by one, biggest first, with the candidate of best net value after band
    penalties that has capacity (ties: the first candidate); none: left unassigned. ``loads`` are
    updated."""
    n, v, e = loads
    vcap = np.where(np.isfinite(m.vcap), m.vcap, 0.0)
    v_room = m.vcap + 1e-9 * np.abs(vcap) + 1e-6  # as Model.vfits
    pb, lower, upper = m.band_penalty, m.lower, m.upper
    order = sorted(groups, key=lambda g: (-float(m.count[g]), g))
    if not order:
        return
    # Every group's candidates with their net scores, capacities and room, looked up at once, and
    # the loads as Python floats while placing (a few candidates a group: a loop over floats costs
    # less than numpy's calls on tiny arrays; the same floats, the same sums).
    cands = [m.cand[g] for g in order]
    sizes = [len(c) for c in cands]
    flat = np.concatenate(cands).astype(np.int64)
    ends = np.cumsum(sizes).tolist()
    net_l = m.net_d[np.repeat(np.asarray(order, dtype=np.int64), sizes), flat].tolist()
    cap_l, room_l, flat_l = m.cap[flat].tolist(), v_room[flat].tolist(), flat.tolist()
    counts, values = m.count[order].tolist(), m.value_[order].tolist()
    nl, vl = n.tolist(), v.tolist()
    inf = math.inf
    start = 0
    for j, g in enumerate(order):
        end, wg, vg = ends[j], counts[j], values[j]
        best_r, best = -1, -inf
        for at in range(start, end):
            r = flat_l[at]
            nr = nl[r]
            if not (nr + wg <= cap_l[at] and vl[r] + vg <= room_l[at]):
                continue
            val = net_l[at] - pb * max(nr + wg - max(upper, nr), 0.0)
            val = val + pb * (max(lower - nr, 0.0) - max(lower - nr - wg, 0.0))
            if val > best:
                best_r, best = r, val
        start = end
        choice[g] = best_r
        if best_r >= 0:
            nl[best_r] += wg
            vl[best_r] += vg
            e[best_r] += m.ev_d[g, best_r]
        else:
            n[:], v[:] = nl, vl
            m.keep(g, loads)
            nl, vl = n.tolist(), v.tolist()
    n[:], v[:] = nl, vl


def prices(
    m: Model, movers: list[int], choice: np.ndarray, fixed: Loads, rounds: int = 300, stop_after: int = 20
) -> None:
    """Lagrangian relaxation of the band and capacity rows, by projected subgradient steps, for
    books too big for the LP: each group takes its best candidate net of prices; prices rise where
    reps are over and fall where under. The best division seen (fewest violations, then highest
    objective) is kept. A fixed number of rounds: the answer never depends on the clock."""
    n_r = len(m.reps)
    mv = np.array(movers, dtype=np.int64)
    sizes = np.array([len(m.cand[g]) for g in movers])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rep = np.concatenate([m.cand[g] for g in movers])
    net = np.concatenate([m.score[g] - m.move[g] for g in movers])
    grp = np.repeat(np.arange(len(movers)), sizes)
    cnt, val = m.count[mv][grp], m.value_[mv][grp]
    v_scale = max(float(m.value_[mv].mean()) / max(float(m.count[mv].mean()), 1.0), 1e-9)
    scale = float(np.abs(net).mean()) / max(float(m.count[mv].mean()), 1e-9)
    lam, kap, vkap = np.zeros(n_r), np.zeros(n_r), np.zeros(n_r)
    best: tuple[float, float, np.ndarray] | None = None
    span = max(m.upper - m.lower, 1e-9 + 0.02 * m.band.mean)
    for k in range(rounds):
        adj = net - lam[rep] * cnt - kap[rep] * cnt - vkap[rep] * val
        top = np.maximum.reduceat(adj, starts)
        hit = np.flatnonzero(adj >= top[grp])
        first = np.ones(len(hit), dtype=bool)
        first[1:] = grp[hit[1:]] != grp[hit[:-1]]
        pick = hit[first]
        r_of = rep[pick]
        tasks = fixed[0] + np.bincount(r_of, weights=m.count[mv], minlength=n_r)
        pipe = fixed[1] + np.bincount(r_of, weights=m.value_[mv], minlength=n_r)
        over, under = np.maximum(tasks - m.upper, 0.0), np.maximum(m.lower - tasks, 0.0)
        cap_over = np.maximum(tasks - m.cap, 0.0)
        v_over = np.where(np.asarray(m.vfits(pipe, np.arange(n_r)), dtype=bool), 0.0, pipe - m.vcap)
        bad = float(over.sum() + under.sum()) + float(cap_over.sum() + v_over.sum() / v_scale) * float(
            m.count.max(initial=1.0)
        )
        value = float(net[pick].sum())
        if best is None or (bad, -value) < (best[0], -best[1]):
            best = (bad, value, r_of.copy())
        if bad == 0.0 and k > stop_after:
            break
        step = scale * (1.0 / (1.0 + 0.05 * k))
        lam = lam + step * (over - under) / span
        kap = np.maximum(kap + step * cap_over / max(float(m.count.mean()), 1.0), 0.0)
        vkap = np.maximum(vkap + step * v_over / (v_scale * v_scale * max(float(m.count.mean()), 1.0)), 0.0)
    assert best is not None
    for j, g in enumerate(movers):
        choice[g] = int(best[2][j])


def improve(m: Model, choice: np.ndarray, passes: int = 3) -> int:
    """Single-group moves that raise the objective and keep every rep within the count band,
    capacities and (not worse on) the value band; returns moves made.

    Groups are examined in a fixed order, each against the loads every move before it left, and
    moved to its best target that passes: the same moves as one group at a time, examined
    ``IMPROVE_CHUNK`` groups at once (the chunk after a move starts at the next group)."""
    n, v, e = m.loads_for(choice)
    free = np.flatnonzero(~np.asarray(m.held, dtype=bool) & (choice >= 0))
    if not len(free):
        return 0
    cur = m.net_d[free, choice[free]]
    best = m.net_d[free].max(axis=1)
    order = free[np.lexsort((free, cur - best))]
    vcap = np.where(np.isfinite(m.vcap), m.vcap, 0.0)
    v_room = m.vcap + 1e-9 * np.abs(vcap) + 1e-6  # as Model.vfits
    vb = _ValueBand(m, e) if m.value_band else None
    made = 0
    for _ in range(passes):
        moved = 0
        # Only a group some rep values more than its own can move: one look at all of them.
        at = m.net_d[order, choice[order]]
        bar = at + 1e-9 * np.maximum(np.abs(at), 1.0)
        may = order[(m.net_d[order] > bar[:, None]).any(axis=1)]
        i = 0
        while i < len(may):
            chunk = may[i : i + IMPROVE_CHUNK]
            target = _targets(m, chunk, choice, (n, v, e), v_room, vb)
            hit = np.flatnonzero(target >= 0)
            if not len(hit):
                i += len(chunk)
                continue
            j = int(hit[0])
            g, best_r = int(chunk[j]), int(target[j])
            frm = int(choice[g])
            m.add((n, v, e), g, frm, -1.0)
            m.add((n, v, e), g, best_r)
            choice[g] = best_r
            if vb is not None:
                vb.update(e)
            moved += 1
            i += j + 1
        made += moved
        if not moved:
            break
    return made


def _targets(
    m: Model, gs: np.ndarray, choice: np.ndarray, loads: Loads, v_room: np.ndarray, vb: _ValueBand | None
) -> np.ndarray:
    """Per group of ``gs`` under ``loads``: the rep :func:`improve` would move it to (its best
    candidate by net score among those it rates above its own rep that keep the count band, both
    capacities and the value band no worse; ties: lowest rep), or -1."""
    n, v, e = loads
    k = np.arange(len(gs))
    frm = choice[gs]
    wg, vg = m.count[gs].astype(float), m.value_[gs].astype(float)
    nets = m.net_d[gs]
    here = nets[k, frm]
    with np.errstate(invalid="ignore"):
        ok = nets > (here + 1e-9 * np.maximum(np.abs(here), 1.0))[:, None]
    ok[k, frm] = False
    ok[(n[frm] - wg < m.lower - 1e-9) & (n[frm] <= m.upper + 1e-9)] = False
    nt = n[None, :] + wg[:, None]
    ok &= (nt <= m.upper + 1e-9) & (nt <= m.cap[None, :]) & (v[None, :] + vg[:, None] <= v_room[None, :])
    ok &= ~((n[None, :] < m.lower - 1e-9) & (nt > m.upper + 1e-9))
    if vb is not None:
        row, to = np.nonzero(ok)
        bad = vb.worse_pairs(e, gs[row], frm[row], to)
        ok[row[bad], to[bad]] = False
    out: np.ndarray = np.where(ok.any(axis=1), np.where(ok, nets, -np.inf).argmax(axis=1), -1)
    return out


class _ValueBand:
    """The value band's total violation under loads ``e``, and what a single move does to it
    (the band's centre moves with the mean)."""

    def __init__(self, m: Model, e: np.ndarray) -> None:
        self.m = m
        w = m.weights()
        self.hi_w, self.lo_w = w * (1 + m.value_band), w * (1 - m.value_band)
        # Every rep's band has a positive top and bottom (the usual case): the total violation at
        # any mean is then read off the reps' sorted breakpoints, not summed over every rep.
        self.sorted = bool((self.hi_w > 0).all() and (self.lo_w > 0).all())
        self.update(e)

    def update(self, e: np.ndarray) -> None:
        self.total = float(e.sum())
        mean = self.m.value_mean if self.m.value_mean is not None else self.total / len(e)
        if self.sorted:  # rep r is above its band at means below e_r / hi_r, below it above e_r / lo_r
            a = e / self.hi_w
            oa = np.argsort(a, kind="stable")
            self.a = a[oa]
            self.a_e = np.r_[np.cumsum(e[oa][::-1])[::-1], 0.0]  # sums over the reps from each on
            self.a_w = np.r_[np.cumsum(self.hi_w[oa][::-1])[::-1], 0.0]
            b = e / self.lo_w
            ob = np.argsort(b, kind="stable")
            self.b = b[ob]
            self.b_e = np.r_[0.0, np.cumsum(e[ob])]  # sums over the reps before each
            self.b_w = np.r_[0.0, np.cumsum(self.lo_w[ob])]
        # Summed as every move's total is (a move that changes nothing then changes it by exactly 0).
        self.before = float(self._total_at(e, np.full(1, mean))[0])

    def _total_at(self, e: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Per mean in ``mean``: the total violation of loads ``e`` around it."""
        if not self.sorted:
            hi, lo = self.hi_w[None, :] * mean[:, None], self.lo_w[None, :] * mean[:, None]
            out: np.ndarray = (np.maximum(e[None, :] - hi, 0.0) + np.maximum(lo - e[None, :], 0.0)).sum(axis=1)
            return out
        ka = np.searchsorted(self.a, mean, side="right")  # reps above: breakpoint > mean
        kb = np.searchsorted(self.b, mean, side="left")  # reps below: breakpoint < mean
        out = (self.a_e[ka] - mean * self.a_w[ka]) + (mean * self.b_w[kb] - self.b_e[kb])
        return out

    def _viol(self, r: np.ndarray, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(x - self.hi_w[r] * mean, 0.0) + np.maximum(self.lo_w[r] * mean - x, 0.0)
        return out

    def worse_pairs(self, e: np.ndarray, g: np.ndarray, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """Per move (group ``g[i]`` from rep ``frm[i]`` to rep ``to[i]``): whether it widens the
        violations."""
        d_frm, d_to = self.m.ev_d[g, frm], self.m.ev_d[g, to]
        if self.m.value_mean is not None:  # a block of a big book: the team's mean, fixed
            mean = np.full(len(to), self.m.value_mean)
        else:
            mean = (self.total - d_frm + d_to) / len(e)  # per move
        tot = self._total_at(e, mean) - self._viol(frm, e[frm], mean) - self._viol(to, e[to], mean)
        tot += self._viol(frm, e[frm] - d_frm, mean)
        tot += self._viol(to, e[to] + d_to, mean)
        out: np.ndarray = tot > self.before + 1e-9
        return out


def shed(m: Model, choice: np.ndarray) -> int:
    """Move groups off reps above a capacity (cards or pipeline) to candidates with room, least
    objective lost first, within the band where possible; returns groups moved."""
    if not (np.isfinite(m.cap).any() or m.value_capped):
        return 0
    loads = m.loads_for(choice)
    n, v, _ = loads
    moved = 0
    for r in range(len(m.reps)):
        if n[r] <= m.cap[r] and m.vfits(float(v[r]), r):
            continue
        options = sorted(
            (m.net(g, r) - float(m.score[g][pos] - m.move[g][pos]), g, to)
            for g in range(len(m.groups))
            if int(choice[g]) == r and not m.held[g]
            for pos, to in enumerate(m.cand[g].tolist())
            if to != r
        )
        for within_band in (True, False):
            for _, g, to in options:
                over_n = n[r] > m.cap[r]
                if not over_n and m.vfits(float(v[r]), r):
                    break
                wg, vg = float(m.count[g]), float(m.value_[g])
                if int(choice[g]) != r or (not over_n and vg <= 0):
                    continue
                if n[to] + wg > m.cap[to] or not m.vfits(float(v[to] + vg), to):
                    continue
                if within_band and n[to] + wg > m.upper + 1e-9:
                    continue
                m.add(loads, g, r, -1.0)
                m.add(loads, g, to)
                choice[g] = to
                moved += 1
    return moved


def repair(m: Model, choice: np.ndarray, rounds: int = 200) -> bool:
    """Single-group moves that shrink band violations (count, then value), best objective change
    first; a move never takes a rep above a capacity. Integral loads after rounding can miss a
    band by a card or two; this closes such gaps."""
    loads = m.loads_for(choice)
    n, _, e = loads
    movable = ~np.asarray(m.held, dtype=bool)
    changed = False
    for _ in range(rounds):
        bad = np.flatnonzero((m.count_violation(n) > 1e-9) | (m.value_violation(e) > 1e-9))
        progress = False
        for r in bad.tolist():
            best = _best_fix(m, choice, loads, r, movable)
            if best is None:
                continue
            g, frm, to = best
            m.add(loads, g, frm, -1.0)
            m.add(loads, g, to)
            choice[g] = to
            changed = progress = True
        if not progress:
            break
    return changed


def _best_fix(m: Model, choice: np.ndarray, loads: Loads, r: int, movable: np.ndarray) -> tuple[int, int, int] | None:
    """The single move into or out of rep ``r`` that most lowers the band penalties plus value
    lost (the value band's mean held at today's: one move shifts it negligibly); ties go to the
    lowest group, then the lowest receiving rep. ``movable``: per group, not held."""
    n, v, e = loads
    b = m.value_band
    centre = m.value_centre(e)
    elo, ehi = centre * (1 - b), centre * (1 + b)
    pb, pv = m.band_penalty, m.value_penalty if b else 0.0
    free = movable & (choice >= 0)
    out_g = np.flatnonzero(free & (choice == r))
    og, ot = np.nonzero(m.pos_d[out_g] >= 0)
    og, ot = out_g[og], ot
    keep = ot != r
    in_g = np.flatnonzero(free & (choice != r) & (m.pos_d[:, r] >= 0))
    g = np.concatenate([og[keep], in_g])
    frm = np.concatenate([np.full(int(keep.sum()), r), choice[in_g]]).astype(np.int64)
    to = np.concatenate([ot[keep], np.full(len(in_g), r)]).astype(np.int64)
    if not len(g):
        return None
    wg, vg = m.count[g], m.value_[g]
    ok = (n[to] + wg <= m.cap[to]) & np.asarray(m.vfits(v[to] + vg, to), dtype=bool)
    drop = pb * (
        _viols(n[frm], m.lower, m.upper)
        + _viols(n[to], m.lower, m.upper)
        - _viols(n[frm] - wg, m.lower, m.upper)
        - _viols(n[to] + wg, m.lower, m.upper)
    )
    if pv:
        ef, et = m.ev_d[g, frm], m.ev_d[g, to]
        drop = drop + pv * (
            _viols(e[frm], elo[frm], ehi[frm])
            + _viols(e[to], elo[to], ehi[to])
            - _viols(e[frm] - ef, elo[frm], ehi[frm])
            - _viols(e[to] + et, elo[to], ehi[to])
        )
    gain = drop + m.net_d[g, to] - m.net_d[g, frm]
    ok &= (drop > 1e-9) & (gain > EPS)
    if not ok.any():
        return None
    g, frm, to, gain = g[ok], frm[ok], to[ok], gain[ok]
    k = int(np.lexsort((to, g, -gain))[0])
    return int(g[k]), int(frm[k]), int(to[k])


def swap(m: Model, choice: np.ndarray, rounds: int = 30, budget: int = 50_000) -> int:
    """Pair swaps (group ``g`` of rep ``r`` for group ``h`` of rep ``t``) that lower the value band's
    penalty plus value lost while keeping both reps' open cards within the count band and
    capacity: what single moves cannot do when every rep is at the edge of the count band.
    Each round makes the best swap of the pairs it examines: the groups of the reps outside the
    value band, in order, each with the groups of its candidate reps that may take its place
    (partner reps in order, partners whose rep may take ``g``'s), ``budget`` pairs in all; once
    the budget is spent, each group with the first partner rep that has any. Returns swaps made."""
    if not m.value_band or m.value_penalty <= 0:
        return 0
    loads = m.loads_for(choice)
    e = loads[2]
    held = np.asarray(m.held, dtype=bool)
    n_r = len(m.reps)
    made = 0
    for _ in range(rounds):
        mean = m.value_centre(e)
        lo, hi = mean * (1 - m.value_band), mean * (1 + m.value_band)
        bad = np.flatnonzero((e > hi + 1e-6) | (e < lo - 1e-6))
        free = np.flatnonzero(~held & (choice >= 0))
        f = free[np.lexsort((free, choice[free]))]  # by rep, then group
        f_rep = choice[f]
        seen = 0
        pairs: list[tuple[int, int, np.ndarray]] = []
        for r in bad.tolist():
            mine = f[f_rep == r]
            if not len(mine):
                continue
            may = m.pos_d[f, r] >= 0  # partners that may go to r
            fm = f[may]
            per_rep = np.bincount(f_rep[may], minlength=n_r)
            first = np.r_[0, np.cumsum(per_rep)]  # fm's partners of each rep: fm[first[t]:first[t + 1]]
            elig = np.arange(n_r) != r
            if e[r] > hi[r]:
                elig &= ~(e > mean)
            if e[r] < lo[r]:
                elig &= ~(e < mean)
            # Over Python ints: a group has about ten candidate reps (numpy's calls on arrays that
            # small cost more than the loop).
            per_l, first_l, elig_l = per_rep.tolist(), first.tolist(), elig.tolist()
            for g in mine.tolist():
                ts = [t for t in m.cand[g].tolist() if elig_l[t]]
                if not ts:
                    continue
                take = []
                for t in ts:  # up to the first rep taking seen past the budget
                    take.append(t)
                    seen += per_l[t]
                    if seen > budget:
                        break
                hs = np.concatenate([fm[first_l[t] : first_l[t] + per_l[t]] for t in take])
                if len(hs):
                    pairs.append((g, r, hs))
        if not pairs:
            break
        sizes = [len(hs) for _, _, hs in pairs]
        gs = np.repeat(np.array([g for g, _, _ in pairs], dtype=np.int64), sizes)
        rs = np.repeat(np.array([r for _, r, _ in pairs], dtype=np.int64), sizes)
        hs = np.concatenate([hs for _, _, hs in pairs])
        gains = _swap_gains(m, loads, gs, rs, hs, choice[hs], lo, hi)
        k = int(np.argmax(gains))  # the first best: in the order the pairs were examined
        if not gains[k] > EPS:
            break
        g, r, h, t = int(gs[k]), int(rs[k]), int(hs[k]), int(choice[hs[k]])
        for grp, frm, to in ((g, r, t), (h, t, r)):
            m.add(loads, grp, frm, -1.0)
            m.add(loads, grp, to)
            choice[grp] = to
        made += 1
    return made


def _viols(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    out: np.ndarray = np.maximum(x - hi, 0.0) + np.maximum(lo - x, 0.0)
    return out


def _swap_gains(
    m: Model,
    loads: Loads,
    g: np.ndarray,
    r: np.ndarray,
    hs: np.ndarray,
    ts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """Gain of swapping each group of ``g`` (of rep ``r``) with the group of ``hs`` (of rep ``ts``)
    aligned with it; -inf where a capacity forbids it or no band penalty drops."""
    n, v, e = loads
    dn = m.count[g] - m.count[hs]
    dv = m.value_[g] - m.value_[hs]
    ok = (n[ts] + dn <= m.cap[ts]) & (n[r] - dn <= m.cap[r])
    ok &= np.asarray(m.vfits(v[ts] + dv, ts), dtype=bool) & np.asarray(m.vfits(v[r] - dv, r), dtype=bool)
    er = e[r] - m.ev_d[g, r] + m.ev_d[hs, r]
    et = e[ts] - m.ev_d[hs, ts] + m.ev_d[g, ts]
    lr, hr, lt, ht = lo[r], hi[r], lo[ts], hi[ts]
    drop = m.value_penalty * (_viols(e[r], lr, hr) + _viols(e[ts], lt, ht) - _viols(er, lr, hr) - _viols(et, lt, ht))
    drop = drop + m.band_penalty * (
        _viols(n[r], m.lower, m.upper)
        + _viols(n[ts], m.lower, m.upper)
        - _viols(n[r] - dn, m.lower, m.upper)
        - _viols(n[ts] + dn, m.lower, m.upper)
    )
    gain = drop + m.net_d[g, ts] + m.net_d[hs, r] - m.net_d[g, r] - m.net_d[hs, ts]
    out: np.ndarray = np.where(ok & (drop > 1e-9), gain, -math.inf)
    return out
