"""The optimal policy's model: movable groups, their candidate reps and scores, and fixed loads.

A group is all open managed cards of one account (``keep_accounts_together``) or one card. Only
groups that must or may move get more than one candidate (away, over-capacity or out-of-band
owners, unowned work, groups that would gain from a move); the rest are ``held`` and count as
fixed load. Loads are tracked three ways per rep: open cards (``n``, the count band and capacity),
open pipeline (``v``, value capacity) and expected value (``e``, the value band).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tasksync.crm.records import Rep
from tasksync.policies import workload
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.reasons import Band
from tasksync.policies.scoring import WinModel
from tasksync.policies.workload import capacity, count_band, group_key, group_order, item_order, movable, value_capacity
from tasksync.settings import PolicySettings

__all__ = ["FULL_MODEL", "Group", "Loads", "Model", "Scorer", "Team", "build_model"]

FULL_MODEL = 100_000  # groups × reps up to which every group may go to every rep
EPS = 1e-9

Loads = tuple[np.ndarray, np.ndarray, np.ndarray]  # per rep: open cards, pipeline, expected value


@dataclass(frozen=True)
class Team:
    """The whole team's centres, for a block of reps of a big book (:mod:`.blocks`): a block holds
    its reps' bands around the team's means, not its own."""

    count_mean: float  # open cards per available rep
    ev_mean: float  # expected value per available rep
    weights: Mapping[str, float]  # per available rep: its value weight within the whole team


@dataclass
class Group:
    key: str
    items: list[WorkItem]
    owner: str | None  # current majority owner (any rep, maybe away)
    pinned: str | None = None


@dataclass
class Model:
    """Movable groups with their candidate reps and scores; loads that cannot move."""

    reps: list[str]  # available reps, sorted
    groups: list[Group]
    count: np.ndarray  # (groups,) cards
    value_: np.ndarray  # (groups,) pipeline
    owner: np.ndarray  # (groups,) current owner's rep index, -1 when unowned or away
    fixed: Loads  # (reps,) load that cannot move
    cap: np.ndarray  # (reps,) capacity (inf when none)
    vcap: np.ndarray  # (reps,) value capacity (inf when none)
    band: Band  # the count band
    value_band: float  # ±ratio of the value band around the mean expected value; 0: off
    cand: list[np.ndarray] = field(default_factory=list)  # per group: sorted candidate rep indexes
    score: list[np.ndarray] = field(default_factory=list)  # aligned with cand: EV × (1 + fit)
    ev: list[np.ndarray] = field(default_factory=list)  # aligned with cand: EV (value band)
    move: list[np.ndarray] = field(default_factory=list)  # aligned with cand: move cost
    held: list[bool] = field(default_factory=list)  # per group: stays where it is
    band_penalty: float = 1.0  # per card outside the count band
    value_penalty: float = 0.0  # per unit of expected value outside the value band
    # Current load of movable cards by (group, available owner), sorted by group: a group left
    # unassigned keeps its cards with their current owners, so this load stays where it is.
    own_g: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    own_r: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    own_n: np.ndarray = field(default_factory=lambda: np.zeros(0))
    own_v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    own_e: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Per rep: where its value band sits, as a multiple of the mean expected value of available
    # reps (see :func:`value_weights`); empty: 1 for every rep.
    value_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # The value band's mean fixed from outside (a block of a big book: the team's); None: the mean
    # of the reps' expected values, which moves with the division.
    value_mean: float | None = None
    # Dense (groups, reps) lookups filled by :meth:`index` once the candidates are chosen: the
    # position of rep r in group g's candidates (-1: not a candidate), and its net score and
    # expected value there (-inf and 0 where not a candidate). The heuristics read them in bulk.
    pos_d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int32))
    net_d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ev_d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    # The book's cut into groups and its scorer, for the model of the book a plan leaves (``like``
    # of :func:`build_model`).
    source: tuple[_Parts, Scorer] | None = field(default=None, repr=False, compare=False)

    def index(self, flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Fill the dense lookups from ``cand``, ``score``, ``move`` and ``ev``; ``flat``: those
        already laid end to end (each group's number of candidates, then the candidates, their net
        scores and expected values), as :func:`.candidates.choose_candidates` has them."""
        n_g, n_r = len(self.groups), len(self.reps)
        if flat is None:
            flat = (
                np.array([len(c) for c in self.cand], dtype=np.int64),
                np.concatenate(self.cand).astype(np.int64) if n_g else np.zeros(0, dtype=np.int64),
                np.concatenate([s - mv for s, mv in zip(self.score, self.move, strict=True)]) if n_g else np.zeros(0),
                np.concatenate(self.ev) if n_g else np.zeros(0),
            )
        sizes, cols, net, ev = flat
        rows = np.repeat(np.arange(n_g), sizes)
        starts = np.cumsum(sizes) - sizes
        self.pos_d = np.full((n_g, n_r), -1, dtype=np.int32)
        self.pos_d[rows, cols] = (np.arange(len(cols)) - np.repeat(starts, sizes)).astype(np.int32)
        self.net_d = np.full((n_g, n_r), -np.inf)
        self.ev_d = np.zeros((n_g, n_r))
        self.net_d[rows, cols] = net
        self.ev_d[rows, cols] = ev

    @property
    def lower(self) -> float:
        return self.band.lower

    @property
    def upper(self) -> float:
        return self.band.upper

    def own(self, gi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.own_g, [gi, gi + 1])
        return self.own_r[lo:hi], self.own_n[lo:hi], self.own_v[lo:hi], self.own_e[lo:hi]

    def keep(self, gi: int, loads: Loads) -> None:
        """Add a group left unassigned to ``loads`` (its cards stay with their owners)."""
        r, on, ov, oe = self.own(gi)
        for load, amount in zip(loads, (on, ov, oe), strict=True):
            np.add.at(load, r, amount)

    def pos(self, gi: int, r: int) -> int:
        return int(self.pos_d[gi, r])

    def is_candidate(self, gi: int, r: int) -> bool:
        return bool(0 <= r < self.pos_d.shape[1] and self.pos_d[gi, r] >= 0)

    def net(self, gi: int, r: int) -> float:
        return float(self.net_d[gi, r])

    def amounts(self, gi: int, r: int) -> tuple[float, float, float]:
        """(cards, pipeline, expected value) group ``gi`` brings to rep index ``r``."""
        return float(self.count[gi]), float(self.value_[gi]), float(self.ev_d[gi, r])

    def add(self, loads: Loads, gi: int, r: int, sign: float = 1.0) -> None:
        for load, amount in zip(loads, self.amounts(gi, r), strict=True):
            load[r] += sign * amount

    def vfits(self, v: np.ndarray | float, r: np.ndarray | int) -> np.ndarray | bool:
        """Whether pipeline ``v`` is within the value capacity of rep(s) ``r`` (rounding tolerated)."""
        vc = self.vcap[r]
        ok: np.ndarray | bool = v <= vc + 1e-9 * np.abs(np.where(np.isfinite(vc), vc, 0.0)) + 1e-6
        return ok

    @property
    def value_capped(self) -> bool:
        return bool(np.isfinite(self.vcap).any())

    def loads_for(self, choice: np.ndarray, skip: set[int] | None = None) -> Loads:
        """Loads per rep under ``choice`` (rep index per group; -1: unassigned, whose cards stay
        with their owners), leaving out the groups in ``skip``."""
        n_r = len(self.reps)
        use = np.ones(len(self.groups), dtype=bool)
        if skip:
            use[np.fromiter(skip, dtype=np.int64, count=len(skip))] = False
        on = use & (choice >= 0)
        g, r = np.flatnonzero(on), choice[on]
        kept = np.zeros(len(self.groups), dtype=bool)
        kept[use & (choice < 0)] = True
        k = kept[self.own_g] if len(self.own_g) else np.zeros(0, dtype=bool)
        return (
            self.fixed[0] + _sum_by(r, self.count[g], n_r) + _sum_by(self.own_r[k], self.own_n[k], n_r),
            self.fixed[1] + _sum_by(r, self.value_[g], n_r) + _sum_by(self.own_r[k], self.own_v[k], n_r),
            self.fixed[2] + _sum_by(r, self.ev_d[g, r], n_r) + _sum_by(self.own_r[k], self.own_e[k], n_r),
        )

    def stay_loads(self) -> Loads:
        """Loads if no group moved: held groups where they are held, others with their owners.
        A rep above a capacity may keep up to this much, never more."""
        choice = np.array([int(c[0]) if h else -1 for c, h in zip(self.cand, self.held, strict=True)], dtype=np.int64)
        return self.loads_for(choice)

    def weights(self) -> np.ndarray:
        """Per rep: its value weight (1 for every rep when none were set)."""
        n_r = len(self.reps)
        out: np.ndarray = self.value_weight if len(self.value_weight) == n_r else np.ones(n_r)
        return out

    def value_centre(self, e: np.ndarray) -> np.ndarray:
        """Per rep: the centre of its value band when the reps hold expected values ``e`` (the
        mean of ``e``, or ``value_mean`` when fixed, × the rep's weight from :func:`value_weights`)."""
        if not len(e):
            return np.zeros(0)
        mean = self.value_mean if self.value_mean is not None else float(e.mean())
        out: np.ndarray = mean * self.weights()
        return out

    def value_violation(self, e: np.ndarray) -> np.ndarray:
        """Expected value outside the value band, per rep, around its centre under ``e``."""
        if not self.value_band or not len(e):
            return np.zeros(len(e))
        c = self.value_centre(e)
        out: np.ndarray = np.maximum(e - c * (1 + self.value_band), 0.0) + np.maximum(
            c * (1 - self.value_band) - e, 0.0
        )
        return out

    def count_violation(self, n: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(n - self.upper, 0.0) + np.maximum(self.lower - n, 0.0)
        return out

    def objective(self, choice: np.ndarray) -> float:
        """Fit value − move cost − band penalties of ``choice``."""
        on = choice >= 0
        val = float(self.net_d[np.flatnonzero(on), choice[on]].sum())
        n, _, e = self.loads_for(choice)
        return float(
            val - self.band_penalty * self.count_violation(n).sum() - self.value_penalty * self.value_violation(e).sum()
        )

    def excess(self, choice: np.ndarray) -> tuple[float, float]:
        """Cards and pipeline above the reps' capacities under ``choice``."""
        n, v, _ = self.loads_for(choice)
        over_v = np.where(np.asarray(self.vfits(v, np.arange(len(self.reps))), dtype=bool), 0.0, v - self.vcap)
        return float(np.maximum(n - self.cap, 0.0).sum()), float(over_v.sum())

    def feasible(self, choice: np.ndarray, tol: float = 1e-6) -> bool:
        """Every rep within both bands and both capacities under ``choice``."""
        n, v, e = self.loads_for(choice)
        if (n > self.cap).any() or not np.all(self.vfits(v, np.arange(len(self.reps)))):
            return False
        if (self.count_violation(n) > tol).any():
            return False
        return not (self.value_violation(e) > tol * max(float(e.mean()) if len(e) else 1.0, 1.0)).any()


def _sum_by(r: np.ndarray, w: np.ndarray, n_r: int) -> np.ndarray:
    out: np.ndarray = np.bincount(r, weights=w, minlength=n_r).astype(float)
    return out


class Scorer:
    """Vectorised ``WinModel.expected_value(item, rep) * (1 + fit_bonus(item, rep))`` for item × rep blocks."""

    def __init__(self, items: list[WorkItem], reps: list[Rep], wm: WinModel, p: PolicySettings) -> None:
        self.w = (p.sector_weight, p.region_weight, p.role_weight, p.continuity_weight)
        self.terms = wm.terms(items)
        accounts = [i.account for i in items]
        item_regions = [a.region if a is not None else None for a in accounts]
        folded = {g: g.casefold() for g in set(item_regions) if g}  # each region casefolded once
        sectors = sorted({s for s in self.terms.sectors if s} | {s for (_, s) in wm.rep_sector})
        regions = sorted(set(folded.values()))
        s_idx = {s: k for k, s in enumerate(sectors)}
        g_idx = {g: k for k, g in enumerate(regions)}
        r_idx = {r.id: k for k, r in enumerate(reps)}
        n_r = len(reps)
        self.value = self.terms.value
        # ``WinModel.probability`` before the rep's lifts and the clip (the block methods apply them).
        self.p0 = self.terms.base * self.terms.age * self.terms.stage
        self.sec = np.array([s_idx[s] if s else -1 for s in self.terms.sectors])
        self.reg = np.array([g_idx[folded[g]] if g else -1 for g in item_regions])
        self.cust = np.array([1 if a is not None and a.customer else 0 for a in accounts])
        self.acct_owner = np.array([r_idx.get(a.owner, -1) if a is not None and a.owner else -1 for a in accounts])
        self.rep_lift = np.array([wm.rep.get(r.id, 1.0) for r in reps])
        # Row -1 (no sector/region) is an extra last row of neutral values.
        self.rep_sector = np.ones((len(sectors) + 1, n_r))
        for (rid, sec), lift in wm.rep_sector.items():
            if rid in r_idx and sec in s_idx:
                self.rep_sector[s_idx[sec], r_idx[rid]] = lift
        self.strong = np.zeros((len(sectors) + 1, n_r))
        self.covers = np.zeros((len(regions) + 1, n_r))
        self.role = np.zeros((2, n_r))  # row 0: prospect (hunter), row 1: customer (farmer)
        for k, r in enumerate(reps):
            mine = {x.casefold() for x in r.sectors}
            for sec, j in s_idx.items():
                if sec.casefold() in mine:
                    self.strong[j, k] = 1.0
            if r.region and r.region.casefold() in g_idx:
                self.covers[g_idx[r.region.casefold()], k] = 1.0
            if r.role in ("hunter", "farmer"):
                self.role[0 if r.role == "hunter" else 1, k] = 1.0

    def lift_row(self, sec: int) -> np.ndarray:
        out: np.ndarray = self.rep_lift * self.rep_sector[sec]
        return out

    def combo_row(self, sec: int, reg: int, cust: int) -> np.ndarray:
        """Per rep: P(win) lift × (1 + sector, region and role bonus) for cards of one kind of account."""
        bonus = self.w[0] * self.strong[sec] * (sec >= 0) + self.w[1] * self.covers[reg] * (reg >= 0)
        out: np.ndarray = self.lift_row(sec) * (1.0 + bonus + self.w[2] * self.role[cust])
        return out

    def lift_range(self, sec: int) -> tuple[float, float]:
        lift = self.lift_row(sec)
        return float(lift.min(initial=1.0)), float(lift.max(initial=1.0))

    def block(self, rows: np.ndarray) -> np.ndarray:
        """Scores of items ``rows`` with every rep: shape (len(rows), reps)."""
        return self.block_ev(rows)[0]

    def block_ev(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, expected values) of items ``rows`` with every rep, each (len(rows), reps)."""
        sec, reg = self.sec[rows], self.reg[rows]
        p = self.p0[rows, None] * self.rep_lift[None, :]
        p = p * np.where(sec[:, None] >= 0, self.rep_sector[sec], 1.0)
        ev = self.value[rows, None] * np.clip(p, 0.01, 0.99)
        bonus = self.w[0] * self.strong[sec] * (sec[:, None] >= 0)
        bonus = bonus + self.w[1] * self.covers[reg] * (reg[:, None] >= 0)
        bonus = bonus + self.w[2] * self.role[self.cust[rows]]
        ao = self.acct_owner[rows]
        bonus = bonus + self.w[3] * (ao[:, None] == np.arange(p.shape[1])[None, :])
        return ev * (1.0 + bonus), ev


@dataclass
class _Parts:
    """A book cut into fixed load and movable groups, before candidates are chosen."""

    reps: list[Rep]
    ridx: dict[str, int]
    groups: list[Group]
    items: list[WorkItem]
    starts: np.ndarray
    fixed: Loads


def _cut(book: Book, p: PolicySettings, wm: WinModel) -> _Parts:
    rep_objs = sorted(book.available_reps, key=lambda r: r.id)
    ridx = {r.id: i for i, r in enumerate(rep_objs)}
    n_r = len(rep_objs)
    fixed: Loads = (np.zeros(n_r), np.zeros(n_r), np.zeros(n_r))
    groups: dict[str, Group] = {}
    pins: dict[str, str] = {}
    for item in book.items:
        if not movable(item, ridx, p):
            if item.owner in ridx:
                k = ridx[item.owner]
                fixed[0][k] += 1
                fixed[1][k] += item.value
                fixed[2][k] += wm.expected_value(item, item.owner)
            if item.pinned and item.owner and item.managed:
                pins.setdefault(group_key(item, p), item.owner)
            continue
        key = group_key(item, p)
        if key not in groups:
            groups[key] = Group(key, [], None)
        groups[key].items.append(item)
    for g in groups.values():
        if len(g.items) > 1:
            g.items.sort(key=item_order)
    glist = sorted(groups.values(), key=lambda g: (group_order(g.items[0], p), g.key))
    items: list[WorkItem] = []
    starts: list[int] = []
    for g in glist:
        g.owner = _majority(g.items)
        g.pinned = pins.get(g.key)
        starts.append(len(items))
        items.extend(g.items)
    return _Parts(rep_objs, ridx, glist, items, np.array(starts, dtype=np.int64), fixed)


def _majority(items: list[WorkItem]) -> str | None:
    """The owner of most of ``items`` (ties: the first id), None when none is owned."""
    if len(items) == 1:
        return items[0].owner or None
    owners: dict[str, int] = {}  # not a Counter: its checks cost more than counting a few cards
    for i in items:
        if i.owner:
            owners[i.owner] = owners.get(i.owner, 0) + 1
    return min(owners, key=lambda o: (-owners[o], o)) if owners else None


def _recut(parts: _Parts, book: Book) -> _Parts:
    """``parts`` of another book for ``book``, whose cards are that book's but for the owners of
    movable ones (:func:`.blocks.replace_owners`): then the same cards are movable, in the same
    groups and order, with the same fixed load; only the groups holding a card that changed are
    made again (their cards and majority owner)."""
    now = {i.key: i for i in book.items}
    items = [now[i.key] for i in parts.items]
    changed = [k for k, (a, b) in enumerate(zip(items, parts.items, strict=True)) if a is not b]
    groups = list(parts.groups)
    for gi in sorted(set((np.searchsorted(parts.starts, changed, side="right") - 1).tolist())):
        g = groups[gi]
        mine = items[int(parts.starts[gi]) : int(parts.starts[gi]) + len(g.items)]
        groups[gi] = Group(g.key, mine, _majority(mine), g.pinned)
    return _Parts(parts.reps, parts.ridx, groups, items, parts.starts, parts.fixed)


def build_model(
    book: Book,
    p: PolicySettings,
    wm: WinModel,
    exact: bool,
    team: Team | None = None,
    unhold: frozenset[int] = frozenset(),
    like: Model | None = None,
    extra: np.ndarray | None = None,
) -> Model:
    """The model of ``book``: every group with every rep on small books (or ``exact``), pruned
    candidates on big ones. ``team`` (a block of a big book) gives the whole team's centres for
    both bands; the groups of the reps (indexes) in ``unhold`` may move even when today nothing
    asks them to. ``like``: a model built with the same ``p``, ``wm`` and ``team`` of a book that
    ``book`` differs from only in the owners of its movable cards (the book a plan of it leaves,
    :func:`.blocks.replace_owners`): its groups and scorer are reused (:func:`_recut`). ``extra``:
    per group (in ``like``'s order), a rep index that is a candidate whatever the pruning (-1: none)."""
    if like is not None and like.source is not None:
        parts, scorer = _recut(like.source[0], book), like.source[1]
    else:
        parts = _cut(book, p, wm)
        scorer = Scorer(parts.items, parts.reps, wm, p)
    n_r, n_g = len(parts.reps), len(parts.groups)
    st = parts.starts
    base_ev = np.clip(scorer.p0, 0.01, 0.99) * scorer.value
    item_owner = np.array([parts.ridx.get(i.owner, -1) if i.owner else -1 for i in parts.items], dtype=np.int64)
    move_cost = p.gain_threshold if p.keep_current_owner else 0.0
    item_move = np.where(item_owner >= 0, move_cost * np.maximum(base_ev, 1e-6), 0.0)
    count = np.diff(np.append(st, len(parts.items))).astype(float) if n_g else np.zeros(0)
    if p.rebalance_only:  # moving costs more than any fit gain: only what the bands need moves
        bound = float(scorer.value.max(initial=0.0)) * 0.99 * (1 + sum(scorer.w)) * float(count.max(initial=1))
        item_move = np.where(item_owner >= 0, item_move + 2.0 * bound + 1.0, 0.0)
    total = float(parts.fixed[0].sum() + count.sum())
    mean = team.count_mean if team is not None else (total / n_r if n_r else 0.0)
    m = Model(
        [r.id for r in parts.reps],
        parts.groups,
        count,
        np.add.reduceat(scorer.value, st).astype(float) if n_g else np.zeros(0),
        np.array([parts.ridx.get(g.owner, -1) if g.owner else -1 for g in parts.groups], dtype=np.int64),
        parts.fixed,
        np.array([capacity(r) for r in parts.reps]),
        np.array([value_capacity(r) for r in parts.reps]),
        count_band(mean, p.band),
        p.value_band,
    )
    m.source = (parts, scorer)
    if team is None:
        m.value_weight = value_weights(parts.reps, p)
    else:
        m.value_weight = np.array([team.weights[r.id] for r in parts.reps])
        m.value_mean = team.ev_mean
    _own_loads(m, st, len(parts.items), item_owner, scorer, base_ev, wm, parts)
    from tasksync.policies.optimal.candidates import choose_candidates

    span = choose_candidates(m, scorer, st, item_owner, item_move, exact, p, unhold, extra)  # and m.index()
    ev_all = np.concatenate(m.ev) if m.ev else np.zeros(0)
    ev_g = _means(m.ev)
    pos = ev_g[ev_g > 0]
    ev_typical = max(float(np.median(pos)) if pos.size else 1.0, 1e-6)
    # A card outside the count band costs more than any fit gain; expected value outside the value
    # band as much as half that per typical group's worth: the count band wins where both cannot hold.
    m.band_penalty = 4.0 * span
    m.value_penalty = (2.0 * span / ev_typical) if p.value_band and ev_all.size else 0.0
    return m


def _means(rows: list[np.ndarray]) -> np.ndarray:
    """``[float(r.mean()) for r in rows]`` to the bit, a few numpy calls instead of one per row:
    the rows of each length stacked and averaged along the last axis (numpy sums each row the
    same way as a lone array: the 10k-card books' 4,000-6,000 groups in 2 ms instead of 15)."""
    sizes = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full(len(rows), np.nan)
    if not len(rows):
        return out
    flat = np.concatenate(rows)
    starts = np.cumsum(sizes) - sizes
    for k in np.unique(sizes[sizes > 0]).tolist():
        at = np.flatnonzero(sizes == k)
        out[at] = flat[starts[at, None] + np.arange(k)[None, :]].mean(axis=1)
    return out


def value_weights(reps: list[Rep], p: PolicySettings) -> np.ndarray:
    """Per available rep (sorted by id): the centre of its value band as a multiple of the mean
    expected value of available reps, with mean 1 over the reps. The one place that says where
    each rep's value band sits: :func:`tasksync.policies.workload.value_weights` (the plain mean,
    or the rep's share of the team's quota with ``value_target = "quota"``)."""
    w = workload.value_weights(reps, p)
    return np.array([w[r.id] for r in reps])


def _own_loads(
    m: Model,
    st: np.ndarray,
    n_items: int,
    item_owner: np.ndarray,
    scorer: Scorer,
    base_ev: np.ndarray,
    wm: WinModel,
    parts: _Parts,
) -> None:
    """Per (group, available owner): the cards, pipeline and expected value that stay if the
    group is left unassigned."""
    n_g, n_r = len(m.groups), max(len(m.reps), 1)
    group_of = np.repeat(np.arange(n_g), m.count.astype(np.int64)) if n_g else np.zeros(0, dtype=np.int64)
    sel = item_owner >= 0
    keys = group_of[sel] * n_r + item_owner[sel]
    uniq, inv = np.unique(keys, return_inverse=True)
    m.own_g, m.own_r = uniq // n_r, uniq % n_r
    m.own_n = np.bincount(inv, minlength=len(uniq)).astype(float)
    m.own_v = np.bincount(inv, weights=scorer.value[sel], minlength=len(uniq)).astype(float)
    own_ev = scorer.terms.expected_values([i.owner for i in parts.items])[sel]
    m.own_e = np.bincount(inv, weights=own_ev if own_ev.size else None, minlength=len(uniq)).astype(float)


def over_under(m: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rep, today: over a band or a capacity; under a band; above the mean (of either measure
    under a band). Only reps over, and reps above the mean while someone is under, must give."""
    n, v, e = m.fixed[0].copy(), m.fixed[1].copy(), m.fixed[2].copy()
    np.add.at(n, m.own_r, m.own_n)
    np.add.at(v, m.own_r, m.own_v)
    np.add.at(e, m.own_r, m.own_e)
    over = (n > m.upper + EPS) | (n > m.cap) | ~np.asarray(m.vfits(v, np.arange(len(m.reps))), dtype=bool)
    under = n < m.lower - EPS
    above = n > m.band.mean + EPS
    if m.value_band and len(e):
        centre = m.value_centre(e)
        over |= e > centre * (1 + m.value_band) + EPS
        low = e < centre * (1 - m.value_band) - EPS
        if low.any():
            under |= low
            above |= e > centre + EPS
    return over, under, above


def spreads(keys: list[str], n_r: int, k: int) -> np.ndarray:
    """Per key of ``keys``: a deterministic spread of ``k`` rep indexes (of ``n_r``), from the
    key's CRC-32; shape (len(keys), k)."""
    h = np.array([zlib.crc32(key.encode()) for key in keys], dtype=np.int64)
    out: np.ndarray = (h[:, None] + np.arange(k, dtype=np.int64)[None, :] * 7919) % n_r
    return out


def inf_or(x: float) -> float:
    return x if math.isfinite(x) else 0.0
