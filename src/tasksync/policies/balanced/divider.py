"""The greedy passes of the balanced policy, on arrays: per rep (open cards, pipeline, expected
value, capacities) and per group (cards, pipeline, order), with the groups' expected value and fit
with a rep computed from :class:`~tasksync.policies.balanced.scores.GroupScores` when a pass needs
them. Candidates are filtered and ranked with numpy; ties are broken exactly as documented (rep id,
the groups' stable order), so the result is the same on any machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tasksync.crm.records import Rep
from tasksync.policies.balanced.scores import Bools, Floats, GroupScores, Ints
from tasksync.policies.base import Decisions
from tasksync.policies.book import WorkItem
from tasksync.policies.reasons import ReasonKind
from tasksync.policies.scoring import WinModel
from tasksync.policies.workload import capacity, count_band, value_capacity
from tasksync.settings import PolicySettings

__all__ = ["Divider", "Group", "Loads"]

EPS = 1e-9
CHUNK = 1_000_000  # cards × reps computed at once when a pass scans many reps (8 MB per array)


@dataclass
class Group:
    key: str
    items: list[WorkItem]
    weight: float
    owner: str | None  # current majority owner
    value: float = 0.0  # open pipeline (sum of deal values), for value capacity
    # Sorting key that an apply does not change (a new card's key becomes a task id; its deal stays).
    order: str = ""
    pinned_to: str | None = None
    assigned: str | None = None
    kind: ReasonKind = ReasonKind.KEPT  # why it went to ``assigned``
    frm: str | None = None  # the rep it was taken from (above the band, over capacity)


@dataclass
class Loads:
    """The load that cannot move, per available rep: open cards, pipeline, expected value."""

    count: Counter[str]
    pipe: dict[str, float]
    ev: dict[str, float]


def pick(mask: Bools, *keys: Floats | Ints) -> int:
    """The index where ``mask`` holds with the largest ``keys``, compared in order (the last key
    must be unique, e.g. a rank)."""
    idx = np.flatnonzero(mask)
    for k in keys:
        vals = k[idx]
        idx = idx[vals == vals.max()]
    return int(idx[0])


class Divider:
    """The greedy passes: keep owners, shed what is above the band or a capacity, place the pool
    by fit, pull work to reps under the band, bring expected value into the value band by moves
    the count band and capacities allow; a rep left over a capacity gains nothing."""

    def __init__(
        self,
        reps: dict[str, Rep],
        groups: list[Group],
        scores: GroupScores,
        loads: Loads,
        weights: Mapping[str, float],
        policy: PolicySettings,
        model: WinModel,
        out: Decisions,
    ) -> None:
        self.reps, self.groups, self.scores, self.out, self.model = reps, groups, scores, out, model
        self.ids = list(reps)
        self.ix = {r: k for k, r in enumerate(self.ids)}
        self.idr = np.empty(len(self.ids), dtype=np.int64)  # rank of each rep's id: ties go to the larger id
        self.idr[np.array(sorted(range(len(self.ids)), key=lambda k: self.ids[k]), dtype=np.int64)] = np.arange(
            len(self.ids)
        )
        self.weights = np.array([weights[r] for r in self.ids], dtype=np.float64)
        self.value_ratio = policy.value_band
        self.keep_owner = policy.keep_current_owner
        total = sum(loads.count.values()) + sum(g.weight for g in groups)
        self.band = count_band(total / len(reps), policy.band)
        out.bands["count"] = self.band
        self.count = np.array([float(loads.count[r]) for r in self.ids])
        self.pipe = np.array([loads.pipe.get(r, 0.0) for r in self.ids])
        self.ev = np.array([loads.ev.get(r, 0.0) for r in self.ids])
        self.cap = np.array([capacity(reps[r]) for r in self.ids])
        vcap = [value_capacity(reps[r]) for r in self.ids]
        self.vcap = np.array(vcap)
        # within_value(pipeline, cap) is ``pipeline <= limit``: the same sum of floats, once per rep.
        self.vlim = np.array([c + 1e-9 * (c if np.isfinite(c) else 0.0) + 1e-6 for c in vcap])
        self.n = np.array([len(g.items) for g in groups], dtype=np.float64)
        self.w = np.array([g.weight for g in groups], dtype=np.float64)
        self.val = np.array([g.value for g in groups], dtype=np.float64)
        self.pinned = np.array([g.pinned_to is not None for g in groups], dtype=bool)
        self.asg = np.full(len(groups), -1, dtype=np.int64)
        # Each group's expected value and fit with the rep it is assigned to (what ``give`` added).
        self.ev_here, self.fit_here = np.zeros(len(groups)), np.zeros(len(groups))
        # Unique rank of each group's order; equal orders rank the earlier group higher (as ``max`` keeps it).
        by_order = sorted(range(len(groups)), key=lambda k: (groups[k].order, -k))
        self.rank = np.empty(len(groups), dtype=np.int64)
        self.rank[np.array(by_order, dtype=np.int64)] = np.arange(len(groups))

    # -- per rep and per group -----------------------------------------------------------------

    def fits_capacity(self, g: int) -> Bools:
        """Per rep: whether group ``g`` fits their capacities (open cards, pipeline)."""
        ok: Bools = (self.count + self.n[g] <= self.cap) & (self.pipe + self.val[g] <= self.vlim)
        return ok

    def room(self, g: int) -> Bools:
        """Per rep: whether group ``g`` fits within the count band's upper bound and their capacities."""
        ok: Bools = (self.count + self.w[g] <= self.band.upper + EPS) & self.fits_capacity(g)
        return ok

    def room_for(self, r: int, gs: Ints) -> Bools:
        """Per group of ``gs``: whether rep ``r`` has room for it."""
        c, p = self.count[r], self.pipe[r]
        ok: Bools = (
            (c + self.w[gs] <= self.band.upper + EPS)
            & (c + self.n[gs] <= self.cap[r])
            & (p + self.val[gs] <= self.vlim[r])
        )
        return ok

    def within(self, r: int) -> bool:
        return bool(self.count[r] <= self.cap[r] and self.pipe[r] <= self.vlim[r])

    def give(self, g: int, r: int, ev: float, fit: float, kind: ReasonKind | None = None) -> None:
        """Assign group ``g`` to rep ``r``, with whom its expected value is ``ev`` and its fit ``fit``."""
        grp = self.groups[g]
        grp.assigned = self.ids[r]
        self.asg[g], self.ev_here[g], self.fit_here[g] = r, ev, fit
        if kind is not None:
            grp.kind = kind
        elif self.ids[r] == grp.owner:  # back with its owner: nothing left to explain
            grp.kind, grp.frm = ReasonKind.KEPT, None
        self.count[r] += self.n[g]
        self.pipe[r] += grp.value
        self.ev[r] += ev

    def leave(self, g: int, kind: ReasonKind) -> None:
        """Take ``g`` from the rep holding it, for ``kind``. A plan shows why a card leaves its board
        owner, and from whom: a group still with its owner records ``kind`` and the owner; a later
        move in the pass (a pull under the band, a value swap) keeps the cause it left its owner for."""
        grp = self.groups[g]
        if grp.kind in (ReasonKind.KEPT, ReasonKind.PINNED):
            grp.kind, grp.frm = kind, self.ids[int(self.asg[g])]
        self.take(g)

    def take(self, g: int) -> None:
        grp, r = self.groups[g], int(self.asg[g])
        assert r >= 0
        self.count[r] -= self.n[g]
        self.pipe[r] -= grp.value
        self.ev[r] -= self.ev_here[g]
        self.asg[g] = -1
        grp.assigned = None

    def stay(self, g: int) -> None:
        """``g`` is left unassigned: its tasks stay with their current owners and count there."""
        for i in self.groups[g].items:
            if i.owner in self.ix:
                r = self.ix[i.owner]
                self.count[r] += 1
                self.pipe[r] += i.value
                self.ev[r] += self.model.expected_value(i, i.owner)

    def members(self) -> list[list[int]]:
        """Per rep, their movable (not pinned) groups, in the groups' order of creation."""
        by: list[list[int]] = [[] for _ in self.ids]
        for g in np.flatnonzero((self.asg >= 0) & ~self.pinned).tolist():
            by[int(self.asg[g])].append(g)
        return by

    # -- the passes ----------------------------------------------------------------------------

    def run(self) -> None:
        pool: list[int] = []
        keep: list[tuple[int, int, ReasonKind]] = []
        for g in sorted(range(len(self.groups)), key=lambda k: self.groups[k].order):
            grp = self.groups[g]
            if grp.pinned_to in self.ix:
                keep.append((g, self.ix[grp.pinned_to], ReasonKind.PINNED))
            elif grp.owner in self.ix and self.keep_owner:
                keep.append((g, self.ix[grp.owner], ReasonKind.KEPT))
            else:
                grp.kind = (
                    ReasonKind.REP_AWAY
                    if grp.owner and grp.owner not in self.ix
                    else ReasonKind.OWNER_LEFT
                    if any(i.owner_left for i in grp.items)
                    else ReasonKind.UNOWNED
                )
                pool.append(g)
        if keep:
            gs = np.array([k[0] for k in keep], dtype=np.int64)
            evs, fits = self.scores.pairs(gs, np.array([k[1] for k in keep], dtype=np.int64))
            for (g, r, kind), e, f in zip(keep, evs.tolist(), fits.tolist(), strict=True):
                self.give(g, r, e, f, kind)
        pool += self.shed()
        self.place(pool)
        self.fill()
        if self.value_ratio:
            from tasksync.policies.balanced.value import balance_value

            balance_value(self)
        self.unload()
        self.notes()

    def notes(self) -> None:
        over_value = [
            f"{self.reps[r].name} ({self.pipe[k]:,.0f} > {self.vcap[k]:,.0f})"
            for k, r in enumerate(self.ids)
            if not self.pipe[k] <= self.vlim[k]
        ]
        if over_value:
            self.out.notes.append(
                "still above their value capacity (no other rep has room, or pinned cards): "
                + ", ".join(sorted(over_value))
            )
        b = self.band
        outside = [
            self.reps[r].name for k, r in enumerate(self.ids) if not b.lower - EPS <= self.count[k] <= b.upper + EPS
        ]
        if outside:
            self.out.notes.append(
                f"band {b.text()} open cards not reachable for: {', '.join(sorted(outside))} "
                "(pinned cards, capacity or account sizes)"
            )

    def shed(self) -> list[int]:
        """Over the band (or a capacity): give away the groups that fit their owner least."""
        pool: list[int] = []
        upper = self.band.upper
        by = self.members()
        for r in sorted(range(len(self.ids)), key=lambda k: self.ids[k]):
            if not by[r] or (self.count[r] <= upper + EPS and self.within(r)):
                continue
            fit = self.scores.column(np.array(by[r], dtype=np.int64), r)[1].tolist()
            mine = sorted(
                zip(by[r], fit, strict=True),
                key=lambda gf: (
                    gf[1] / max(self.groups[gf[0]].weight, 1e-9),
                    self.groups[gf[0]].weight,
                    self.groups[gf[0]].order,
                ),
            )
            for g, _ in mine:
                if self.count[r] <= upper + EPS and self.within(r):
                    break
                if self.count[r] > upper + EPS or self.count[r] > self.cap[r]:
                    ok = self.room(g)
                    ok[r] = False
                    if ok.any():
                        kind = ReasonKind.OVER_CAPACITY if self.count[r] > self.cap[r] else ReasonKind.ABOVE_BAND
                        self.leave(g, kind)
                        pool.append(g)
                else:
                    ok = self.fits_capacity(g)
                    ok[r] = False
                    if ok.any():
                        self.leave(g, ReasonKind.OVER_VALUE_CAPACITY)
                        pool.append(g)
        return pool

    def chunks(self, gs: Ints) -> list[slice]:
        """``gs`` cut into runs of about ``CHUNK`` cards × reps (at least one group each)."""
        ends = np.cumsum(self.n[gs])
        per_block = max(1.0, CHUNK / max(len(self.ids), 1))
        out, k = [], 0
        while k < len(gs):
            j = max(k + 1, int(np.searchsorted(ends, (ends[k - 1] if k else 0.0) + per_block, side="right")))
            out.append(slice(k, j))
            k = j
        return out

    def place(self, pool: list[int]) -> None:
        """Place the pool, biggest first, with the best-fitting rep that has room."""
        cols = np.arange(len(self.ids), dtype=np.int64)
        gs = np.array(pool, dtype=np.int64)
        best = np.zeros(len(gs))
        for c in self.chunks(gs):
            best[c] = self.scores.block(gs[c], cols)[1].max(axis=1)
        ordered = sorted(
            zip(pool, best.tolist(), strict=True),
            key=lambda gb: (-self.groups[gb[0]].weight, -gb[1], self.groups[gb[0]].order),
        )
        gs = np.array([g for g, _ in ordered], dtype=np.int64)
        for c in self.chunks(gs):
            evs, fits = self.scores.block(gs[c], cols)
            for g, ev, fit in zip(gs[c].tolist(), evs, fits, strict=True):
                self.place_one(g, ev, fit)

    def place_one(self, g: int, ev: Floats, fit: Floats) -> None:
        """Give ``g`` (``ev``, ``fit``: with every rep) to the best-fitting rep with room, else to
        the least loaded one with capacity, else leave it as it is."""
        ok = self.room(g)
        if ok.any():
            r = pick(ok, fit, -self.count, self.idr)
        else:
            spare = self.fits_capacity(g)
            if not spare.any():
                self.out.notes.append(f"no rep has capacity for {self.groups[g].items[0].title!r}: left unassigned")
                self.stay(g)
                return
            r = pick(spare, -self.count, -self.idr)
        self.give(g, r, float(ev[r]), float(fit[r]))

    def fill(self) -> None:
        """Under the band: pull groups from the most loaded reps."""
        lower = self.band.lower
        for r in sorted(range(len(self.ids)), key=lambda k: (self.count[k], self.ids[k])):
            known = np.zeros(len(self.groups), dtype=bool)  # groups whose ev and fit with r are in col
            col = np.zeros((2, len(self.groups)))
            while self.count[r] < lower - EPS:
                g = self.donor(r, known, col)
                if g is None:
                    break
                self.leave(g, ReasonKind.BELOW_BAND)
                self.give(g, r, float(col[0, g]), float(col[1, g]))

    def donor(self, r: int, known: Bools, col: Floats) -> int | None:
        """The group to pull to ``r``: from the most loaded rep above the mean that stays within the
        band, then the best fit with ``r``, then the groups' order. ``col`` holds the groups' expected
        value and fit with ``r`` where ``known`` (filled here as needed)."""
        lower, mean = self.band.lower, self.band.mean
        gs = np.flatnonzero((self.asg >= 0) & ~self.pinned)
        level = self.count[self.asg[gs]]
        sel = (self.asg[gs] != r) & (level > mean)
        gs, level = gs[sel], level[sel]
        ok = (level - self.w[gs] >= lower - EPS) & self.room_for(r, gs)
        if not ok.any():
            return None
        gs, level = gs[ok], level[ok]
        gs = gs[level == level.max()]
        todo = gs[~known[gs]]
        if len(todo):
            col[0, todo], col[1, todo] = self.scores.column(todo, r)
            known[todo] = True
        return int(gs[pick(np.ones(len(gs), dtype=bool), col[1, gs], self.rank[gs])])

    def unload(self) -> None:
        """A rep still over a capacity gains nothing: accounts that would bring them tasks they do
        not hold today stay as they are; repeat until no rep over a capacity gains."""
        full: list[str] = []
        changed = True
        while changed:
            changed = False
            for r in sorted(range(len(self.ids)), key=lambda k: self.ids[k]):
                if self.within(r):
                    continue
                rid = self.ids[r]
                gaining = [
                    (g, sum(i.owner != rid for i in self.groups[g].items))
                    for g in np.flatnonzero(self.asg == r).tolist()
                ]
                for g, _ in sorted((x for x in gaining if x[1]), key=lambda x: (-x[1], self.groups[x[0]].order)):
                    if self.within(r):
                        break
                    self.take(g)
                    full.append(self.groups[g].items[0].title)
                    changed = True
                    self.stay(g)
        if full:
            self.out.notes.append(
                f"{len(full)} account(s) fit no rep's remaining capacity (tasks or value) and stay as they are "
                f"(current owner or unowned): {', '.join(repr(t) for t in full[:5])}"
            )
