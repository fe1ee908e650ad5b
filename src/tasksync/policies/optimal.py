"""Optimal division: one mixed-integer programme over the whole book (scipy's HiGHS).

Decision variables are ``x[g, r]`` = 1 when account group ``g`` (all open managed tasks of one
account) goes to rep ``r``. The objective maximises expected won value with that rep (rep-specific
P(win) × value) times ``1 + fit bonus`` (sector strength, region, hunter/farmer role, CRM account
ownership), minus a move cost (``policy.move_cost`` × the task's expected value) for every task that
leaves an available current owner. Constraints:

* one rep per group (account unity); a group with a locked task stays with that task's owner;
* capacity: a rep's open tasks (including locked and unmanaged ones) stay within ``Rep.capacity``,
  and their open pipeline (the deal values of those tasks) within ``Rep.capacity_value``; a rep
  already above either never gains and sheds the excess wherever another rep has room;
* availability: reps who are away get nothing; their tasks move when ``move_from_unavailable``;
* band: each available rep's workload (count or expected value) within ``±band`` of the mean.
  The band is soft with a penalty far above any fit gain, so settings that cannot be met still give
  the closest division plus a note naming the reps and the cause, never a crash.

Solving and scaling:

* only groups that must or may move enter the model (groups of away, over-capacity or out-of-band
  reps, unowned work, groups that would gain from a move); the rest stay as fixed load;
* small books (groups × reps ≤ ``FULL_MODEL``) give every group every rep; big ones give each group
  ``policy.candidate_reps`` best-fitting reps for its kind of account plus a deterministic spread,
  the reps under the band and its current and CRM owners, scored without a dense matrix;
* LP-and-fix: the LP relaxation (HiGHS) assigns nearly every group integrally; the fractional ones
  plus a few small groups of the reps they touch are solved as a small MILP; a vectorised repair
  closes any band gap left by integral loads; today's division is kept when it is within
  ``stay_tolerance`` of the new one (so a re-run after applying the plan changes nothing);
* books with more than ``BLOCK_ITEMS`` tasks and at least two hundred reps are cut in blocks of about
  ``BLOCK_REPS`` reps (dealt round robin, so each block is a small copy of the team); accounts go to
  their owner's block, unowned work and the excess of overloaded blocks to the blocks with most room,
  and each block is one programme as above (``policy.time_limit`` is shared, at least
  ``MIN_BLOCK_SECONDS`` per block);
* beyond ``LP_MAX`` candidate pairs in one programme, or when the LP runs out of time, Lagrangian
  prices on the band and capacity rows (or a best-fit greedy) replace the LP, followed by shedding
  what is left over a capacity, the repair and an improvement pass;
* ``OptimalPolicy(exact=True)`` solves the full MILP without limits (benchmarks measure the gap).

``policy.rebalance_only`` (or ``tasksync plan --rebalance`` with ``[policy] name = "optimal"`` and
``rebalance_only = true``): only tasks of away reps, unowned tasks and tasks of reps outside the band
or over capacity may move, and moving costs more than any fit gain, so the plan moves as few tasks
as the band needs. Every moved task says why (unowned / rep away / above the band / better fit).

Adding your own policy
----------------------
A policy is any class with a ``name`` and ``decide(book, settings) -> Decisions``; it must be
deterministic and do no I/O. Register it under the ``tasksync.policies`` entry-point group of your
package and select it with ``[policy] name``::

    # my_team/policy.py
    from tasksync.policies import Book, Decision, Decisions
    from tasksync.settings import PolicySettings, Settings

    class TerritoryPolicy:
        name = "territory"

        def decide(self, book: Book, settings: Settings) -> Decisions:
            out = Decisions()
            by_region = {r.region: r.id for r in book.available_reps}
            for item in book.items:
                if item.managed and not item.locked and item.region in by_region:
                    out.by_key[item.key] = Decision(by_region[item.region], reason="territory")
            return out

    # pyproject.toml of my_team
    [project.entry-points."tasksync.policies"]
    territory = "my_team.policy:TerritoryPolicy"

    # tasksync.toml
    [policy]
    name = "territory"
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from tasksync.crm.records import Rep
from tasksync.policies.balanced import BalancedPolicy, prioritise
from tasksync.policies.base import Decision, Decisions
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.scoring import WinModel, fit_reasons
from tasksync.settings import PolicySettings, Settings

__all__ = ["OptimalPolicy", "SolveInfo", "workload_stats"]

LP_MAX = 120_000  # candidate pairs above which Lagrangian prices replace the LP
FULL_MODEL = 100_000  # groups × reps up to which every group may go to every rep
_EPS = 1e-9
BLOCK_REPS = 100  # big books are divided in blocks of about this many reps...
BLOCK_ITEMS = 25_000  # ...when they have more tasks than this
MIN_BLOCK_SECONDS = 4.0  # solver time per block at least (the time limit is shared between blocks)


def workload_stats(loads: Sequence[float]) -> tuple[float, float]:
    """(max/mean, coefficient of variation) of rep workloads; (0, 0) for no load."""
    if not loads:
        return 0.0, 0.0
    arr = np.asarray(loads, dtype=float)
    mean = float(arr.mean())
    if mean <= 0:
        return 0.0, 0.0
    return float(arr.max() / mean), float(arr.std() / mean)


NEIGHBOURS = 1  # small groups per rep re-opened around the LP's fractional groups


def _band(mean: float, band: float, by_value: bool) -> tuple[float, float]:
    """(lower, upper) workload; task counts are whole, so the count band is rounded inwards when it can be."""
    lo, hi = mean * (1 - band), mean * (1 + band)
    if not by_value and math.ceil(lo - 1e-9) <= math.floor(hi + 1e-9):
        return float(math.ceil(lo - 1e-9)), float(math.floor(hi + 1e-9))
    return lo, hi


@dataclass
class SolveInfo:
    """What the last :meth:`OptimalPolicy.decide` did (for benchmarks and tests)."""

    method: str = ""  # "milp", "lp+rounding", "greedy-fallback", "none"
    status: str = ""
    groups: int = 0  # groups in the model
    variables: int = 0
    objective: float = 0.0  # value of the full objective for the chosen division
    seconds: float = 0.0
    moved: int = 0  # tasks whose owner changes
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase


@dataclass
class _Group:
    key: str
    items: list[WorkItem]
    owner: str | None  # current majority owner (any rep, maybe away)
    weight: float = 0.0
    pinned: str | None = None
    assigned: str | None = None
    reason: str = ""


@dataclass
class _Model:
    """Movable groups with their candidate reps, scores and move costs; loads that cannot move."""

    reps: list[str]  # available reps
    groups: list[_Group]
    cand: list[np.ndarray]  # per group: candidate rep indexes (one: held fixed)
    score: list[np.ndarray]  # per group, aligned with cand: EV × (1 + fit)
    move: list[np.ndarray]  # per group, aligned with cand: move cost
    weight: np.ndarray  # (groups,) band weight
    count: np.ndarray  # (groups,) tasks
    owner: np.ndarray  # (groups,) current owner's rep index, -1 when unowned or away
    fixed_w: np.ndarray  # (reps,) band load that cannot move
    fixed_n: np.ndarray  # (reps,) tasks that cannot move
    cap: np.ndarray  # (reps,) capacity (inf when none)
    lower: float
    upper: float
    mean: float
    band_penalty: float = 1.0
    # Value capacity: open pipeline value (sum of deal values) per group, value that cannot move,
    # and each rep's ``Rep.capacity_value`` (inf when none).
    value_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fixed_v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vcap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    held: list[bool] = field(default_factory=list)  # per group: stays where it is (no reason to move)
    # Current load of movable tasks by (group, available owner), sorted by group: a group left
    # unassigned keeps its tasks with their current owners, so this load stays where it is.
    own_g: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    own_r: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    own_w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    own_n: np.ndarray = field(default_factory=lambda: np.zeros(0))
    own_v: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def own(self, gi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.own_g, [gi, gi + 1])
        return self.own_r[lo:hi], self.own_w[lo:hi], self.own_n[lo:hi], self.own_v[lo:hi]

    def keep(self, gi: int, w: np.ndarray, n: np.ndarray, v: np.ndarray | None = None) -> None:
        """Add a group left unassigned to the loads ``w``, ``n`` and ``v`` (its tasks stay with their owners)."""
        r, ow, on, ov = self.own(gi)
        np.add.at(w, r, ow)
        np.add.at(n, r, on)
        if v is not None:
            np.add.at(v, r, ov)

    def vfits(self, v: np.ndarray | float, r: np.ndarray | int) -> np.ndarray | bool:
        """Whether pipeline value ``v`` is within the value capacity of rep(s) ``r`` (rounding tolerated)."""
        vc = self.vcap[r]
        ok: np.ndarray | bool = v <= vc + 1e-9 * np.abs(np.where(np.isfinite(vc), vc, 0.0)) + 1e-6
        return ok

    @property
    def value_capped(self) -> bool:
        return bool(np.isfinite(self.vcap).any())

    def is_candidate(self, gi: int, r: int) -> bool:
        pos = int(np.searchsorted(self.cand[gi], r))
        return pos < len(self.cand[gi]) and int(self.cand[gi][pos]) == r

    def value(self, gi: int, r: int) -> tuple[float, float]:
        """(score, move cost) of giving group ``gi`` to rep index ``r`` (must be a candidate)."""
        pos = int(np.searchsorted(self.cand[gi], r))
        return float(self.score[gi][pos]), float(self.move[gi][pos])

    def loads_for(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band load, task count and pipeline value per rep under ``choice`` (rep index per group,
        -1: unassigned, whose tasks stay with their current owners)."""
        w, n, v = self.fixed_w.copy(), self.fixed_n.copy(), self.fixed_v.copy()
        for gi in range(len(self.groups)):
            r = int(choice[gi])
            if r >= 0:
                w[r] += self.weight[gi]
                n[r] += self.count[gi]
                v[r] += self.value_[gi]
            else:
                self.keep(gi, w, n, v)
        return w, n, v

    def stay_loads(self) -> tuple[np.ndarray, np.ndarray]:
        """Task count and pipeline value per rep if no group in the programme moved: fixed load, held
        groups with the rep they are held with, other groups' tasks with their current owners. A rep
        above a capacity may keep up to this much, never more."""
        n, v = self.fixed_n.copy(), self.fixed_v.copy()
        held = np.array(self.held, dtype=bool)
        if held.any():
            at = np.array([int(c[0]) for c, h in zip(self.cand, self.held, strict=True) if h], dtype=np.int64)
            np.add.at(n, at, self.count[held])
            np.add.at(v, at, self.value_[held])
        free = ~held[self.own_g] if held.size else np.ones(len(self.own_g), dtype=bool)
        np.add.at(n, self.own_r[free], self.own_n[free])
        np.add.at(v, self.own_r[free], self.own_v[free])
        return n, v

    def current_loads(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band load, task count and pipeline value per rep if nothing moved (unowned and away reps'
        work excluded)."""
        w, n, v = self.fixed_w.copy(), self.fixed_n.copy(), self.fixed_v.copy()
        own = self.owner >= 0
        np.add.at(w, self.owner[own], self.weight[own])
        np.add.at(n, self.owner[own], self.count[own])
        np.add.at(v, self.owner[own], self.value_[own])
        return w, n, v


class _Scorer:
    """Vectorised ``WinModel.expected_value(item, rep) * (1 + fit_bonus(item, rep))`` for item × rep blocks."""

    def __init__(self, items: list[WorkItem], reps: list[Rep], wm: WinModel, settings: Settings) -> None:
        p = settings.policy
        self.w = (p.sector_weight, p.region_weight, p.role_weight, p.continuity_weight)
        sectors = sorted({i.sector for i in items if i.sector} | {s for (_, s) in wm.rep_sector})
        regions = sorted({i.region.casefold() for i in items if i.region})
        s_idx = {s: k for k, s in enumerate(sectors)}
        g_idx = {g: k for k, g in enumerate(regions)}
        r_idx = {r.id: k for k, r in enumerate(reps)}
        n_r = len(reps)
        self.value = np.array([i.value for i in items])
        self.p0 = np.array([_p_without_rep(wm, i) for i in items])
        self.sec = np.array([s_idx[i.sector] if i.sector else -1 for i in items])
        self.reg = np.array([g_idx.get(i.region.casefold(), -1) if i.region else -1 for i in items])
        self.cust = np.array([1 if i.existing_customer else 0 for i in items])
        self.acct_owner = np.array(
            [r_idx.get(i.account.owner, -1) if i.account is not None and i.account.owner else -1 for i in items]
        )
        self.rep_lift = np.array([wm.rep.get(r.id, 1.0) for r in reps])
        # Row -1 (no sector/region) is an extra last row of neutral values.
        self.rep_sector = np.ones((len(sectors) + 1, n_r))
        for (rid, sec), lift in wm.rep_sector.items():
            if rid in r_idx and sec in s_idx:
                self.rep_sector[s_idx[sec], r_idx[rid]] = lift
        self.strong = np.zeros((len(sectors) + 1, n_r))
        for k, r in enumerate(reps):
            mine = {x.casefold() for x in r.sectors}
            for sec, j in s_idx.items():
                if sec.casefold() in mine:
                    self.strong[j, k] = 1.0
        self.covers = np.zeros((len(regions) + 1, n_r))
        for k, r in enumerate(reps):
            if r.region and r.region.casefold() in g_idx:
                self.covers[g_idx[r.region.casefold()], k] = 1.0
        self.role = np.zeros((2, n_r))  # row 0: prospect (hunter), row 1: customer (farmer)
        for k, r in enumerate(reps):
            if r.role == "hunter":
                self.role[0, k] = 1.0
            elif r.role == "farmer":
                self.role[1, k] = 1.0

    def combo_row(self, sec: int, reg: int, cust: int) -> np.ndarray:
        """Per rep: P(win) lift × (1 + sector, region and role bonus) for tasks of one kind of account."""
        lift = self.rep_lift * self.rep_sector[sec]
        bonus = self.w[0] * self.strong[sec] * (sec >= 0) + self.w[1] * self.covers[reg] * (reg >= 0)
        out: np.ndarray = lift * (1.0 + bonus + self.w[2] * self.role[cust])
        return out

    def lift_range(self, sec: int) -> tuple[float, float]:
        lift = self.rep_lift * self.rep_sector[sec]
        return float(lift.min(initial=1.0)), float(lift.max(initial=1.0))

    def block(self, rows: np.ndarray) -> np.ndarray:
        """Scores of items ``rows`` with every rep: shape (len(rows), reps)."""
        sec, reg = self.sec[rows], self.reg[rows]
        p = self.p0[rows, None] * self.rep_lift[None, :]
        p = p * np.where(sec[:, None] >= 0, self.rep_sector[sec], 1.0)
        p = np.clip(p, 0.01, 0.99)
        bonus = self.w[0] * self.strong[sec] * (sec[:, None] >= 0)
        bonus = bonus + self.w[1] * self.covers[reg] * (reg[:, None] >= 0)
        bonus = bonus + self.w[2] * self.role[self.cust[rows]]
        ao = self.acct_owner[rows]
        n_r = p.shape[1]
        bonus = bonus + self.w[3] * (ao[:, None] == np.arange(n_r)[None, :])
        out: np.ndarray = self.value[rows, None] * p * (1.0 + bonus)
        return out


def _p_without_rep(wm: WinModel, item: WorkItem) -> float:
    """``WinModel.probability`` before the rep's lifts and the clip (the vectorised scorer applies them)."""
    sector = item.sector
    p = wm.sector.get(sector, wm.base) if sector else wm.base
    if item.deal and item.deal.product:
        p *= wm.product.get(item.deal.product, 1.0)
    return p * wm.age_lift(item) * wm.stage_lift(item)



def _shift(loads: tuple[np.ndarray, ...], amounts: tuple[float, ...], frm: int, to: int) -> None:
    """Move one group's amounts (band weight, task count, pipeline value) from rep ``frm`` to ``to``."""
    for load, amount in zip(loads, amounts, strict=True):
        load[frm] -= amount
        load[to] += amount

class OptimalPolicy:
    """Whole-book division by mixed-integer programming; priorities as in the balanced policy."""

    name: ClassVar[str] = "optimal"

    def __init__(self, exact: bool = False) -> None:
        # exact: every group with every rep in one MILP, no time limit, zero gap (for benchmarks).
        self.exact = exact
        self.mip_gap = 2e-3  # relative MIP gap at which HiGHS stops (the benchmark checks the true gap)
        self.sub_time = 1.0  # seconds for the small MILP around the LP's fractional groups
        self.stay_tolerance = 0.005  # relative objective gain below which today's division is kept
        self.info = SolveInfo()

    def _fit(self, book: Book, settings: Settings) -> WinModel:
        p = settings.policy
        return WinModel.fit(
            book.crm.history,
            book.crm,
            p.smoothing,
            today=book.today,
            stage_order=p.stage_order,
            stage_weight=p.stage_weight,
        )

    # -- model ---------------------------------------------------------------------------------
    def _model(self, book: Book, settings: Settings, wm: WinModel, exact: bool, mean: float | None = None) -> _Model:
        p = settings.policy
        rep_objs = sorted(book.available_reps, key=lambda r: r.id)
        avail = [r.id for r in rep_objs]
        ridx = {r: i for i, r in enumerate(avail)}
        by_ev = p.balance_by == "expected_value"
        n_r = len(avail)
        fixed_w = np.zeros(n_r)
        fixed_n = np.zeros(n_r)
        fixed_v = np.zeros(n_r)
        groups: dict[str, _Group] = {}
        pins: dict[str, str] = {}
        for item in book.items:
            movable = item.managed and not item.locked
            stuck = item.owner is not None and item.owner not in ridx and not p.move_from_unavailable
            if not movable or stuck:
                if item.owner in ridx:
                    k = ridx[item.owner]
                    fixed_w[k] += wm.expected_value(item, None) if by_ev else 1.0
                    fixed_n[k] += 1
                    fixed_v[k] += item.value
                if item.locked and item.owner:
                    pins.setdefault(item.group, item.owner)
                continue
            groups.setdefault(item.group, _Group(item.group, [], None)).items.append(item)
        glist = [groups[k] for k in sorted(groups)]
        items: list[WorkItem] = []
        starts: list[int] = []
        for g in glist:
            owners = Counter(i.owner for i in g.items if i.owner)
            g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
            g.pinned = pins.get(g.key)
            starts.append(len(items))
            items.extend(g.items)
        n_g = len(glist)
        scorer = _Scorer(items, rep_objs, wm, settings)
        base_ev = np.clip(scorer.p0, 0.01, 0.99) * scorer.value
        item_w = base_ev if by_ev else np.ones(len(items))
        item_owner = np.array([ridx.get(i.owner, -1) if i.owner else -1 for i in items], dtype=np.int64)
        move_cost = p.move_cost if p.keep_current_owner else 0.0  # keep_current_owner = false: no pull to stay
        item_move = np.where(item_owner >= 0, move_cost * np.maximum(base_ev, 1e-6), 0.0)
        st = np.array(starts, dtype=np.int64)
        weight = np.add.reduceat(item_w, st) if n_g else np.zeros(0)
        count = np.diff(np.append(st, len(items))).astype(float) if n_g else np.zeros(0)
        mv_total = np.add.reduceat(item_move, st) if n_g else np.zeros(0)
        g_value = np.add.reduceat(scorer.value, st) if n_g else np.zeros(0)
        g_owner = np.array([ridx.get(g.owner, -1) if g.owner else -1 for g in glist], dtype=np.int64)
        total = float(fixed_w.sum() + weight.sum())
        if mean is None:  # a block of a big book uses the whole team's mean
            mean = total / n_r if n_r else 0.0
        cap = np.array([float(r.capacity) if r.capacity is not None else math.inf for r in rep_objs])
        m = _Model(
            avail, glist, [], [], [], weight, count, g_owner, fixed_w, fixed_n, cap,
            *_band(mean, p.band, by_ev), mean,
        )  # fmt: skip
        m.value_, m.fixed_v = g_value.astype(float), fixed_v
        m.vcap = np.array([float(r.capacity_value) if r.capacity_value is not None else math.inf for r in rep_objs])
        if p.rebalance_only:
            # Moving costs more than any fit gain: only what the band needs moves.
            bound = float(scorer.value.max(initial=0.0)) * 0.99 * (1 + sum(scorer.w)) * float(count.max(initial=1))
            item_move = np.where(item_owner >= 0, item_move + 2.0 * bound + 1.0, 0.0)
            mv_total = np.add.reduceat(item_move, st) if n_g else np.zeros(0)
        group_of = np.repeat(np.arange(n_g), count.astype(np.int64)) if n_g else np.zeros(0, dtype=np.int64)
        sel_own = item_owner >= 0
        keys = group_of[sel_own] * max(n_r, 1) + item_owner[sel_own]
        uniq, inv = np.unique(keys, return_inverse=True)
        m.own_g, m.own_r = uniq // max(n_r, 1), uniq % max(n_r, 1)
        m.own_w = np.bincount(inv, weights=item_w[sel_own], minlength=len(uniq)).astype(float)
        m.own_n = np.bincount(inv, minlength=len(uniq)).astype(float)
        m.own_v = np.bincount(inv, weights=scorer.value[sel_own], minlength=len(uniq)).astype(float)
        own_mv = np.bincount(inv, weights=item_move[sel_own], minlength=len(uniq)).astype(float)
        cur_w, cur_n, cur_v = m.current_loads()
        over = (cur_w > m.upper + _EPS) | (cur_n > cap) | ~np.asarray(m.vfits(cur_v, np.arange(n_r)), dtype=bool)
        under = cur_w < m.lower - _EPS
        above_mean = cur_w > mean + _EPS
        # Small books: every group with every rep (the LP is cheap); big ones: pruned candidates.
        full = exact or n_g * n_r <= FULL_MODEL
        k = n_r if full else max(2, min(n_r, p.candidate_reps))
        under_idx = np.flatnonzero(under)[: max(2, k // 3)]
        pin_idx = [ridx.get(g.pinned, -1) if g.pinned else -1 for g in glist]
        span = 1.0
        chunk = max(1, 4_000_000 // max(n_r, 1))
        gi = 0 if full or n_r <= k else n_g  # the dense loop below; big books take the sparse path
        if gi == n_g and n_g:
            span = self._sparse_candidates(
                m, scorer, st, len(items), item_owner, mv_total, own_mv, pin_idx, k, over, under_idx, above_mean, p
            )
        while gi < n_g:
            g_end = gi
            while g_end < n_g and (g_end == gi or st[g_end] - st[gi] < chunk):
                g_end += 1
            lo, hi = int(st[gi]), int(st[g_end]) if g_end < n_g else len(items)
            rows = np.arange(lo, hi)
            sc_items = scorer.block(rows)
            sc = np.add.reduceat(sc_items, st[gi:g_end] - lo, axis=0)
            own = np.zeros((g_end - gi, n_r))
            sel = item_owner[rows] >= 0
            np.add.at(own, (group_of[rows][sel] - gi, item_owner[rows][sel]), item_move[rows][sel])
            mv = mv_total[gi:g_end, None] - own
            net = sc - mv
            span = max(span, float(np.abs(net).max(initial=0.0)) + 1.0)
            for j in range(g_end - gi):
                g_i = gi + j
                o = int(g_owner[g_i])
                held = False
                if pin_idx[g_i] >= 0:
                    cand = np.array([pin_idx[g_i]])  # one candidate; may still stay unassigned (capacity)
                elif full or n_r <= k:
                    cand = np.arange(n_r)
                else:
                    must = o < 0 or bool(over[o]) or (under_idx.size > 0 and bool(above_mean[o]))
                    gain = o >= 0 and bool(net[j].max() > net[j, o] + _EPS)
                    if not must and (p.rebalance_only or not gain):
                        cand = np.array([o])
                        held = True
                    else:
                        best = np.argpartition(-net[j], k - 1)[:k]
                        h = zlib.crc32(glist[g_i].key.encode())
                        spread = [(h + t * 7919) % n_r for t in range(max(2, k // 3))]
                        pool = set(best.tolist()) | set(spread) | set(under_idx.tolist())
                        if o >= 0:
                            pool.add(o)
                        cand = np.array(sorted(pool))
                m.cand.append(cand)
                m.held.append(held)
                m.score.append(sc[j, cand])
                m.move.append(mv[j, cand])
            gi = g_end
        positive = weight[weight > 0]
        w_floor = max(float(positive.min(initial=1.0)), 1e-3 * (float(weight.mean()) if n_g else 1.0))
        m.band_penalty = 4.0 * span / w_floor
        return m

    @staticmethod
    def _sparse_candidates(
        m: _Model,
        sc: _Scorer,
        st: np.ndarray,
        n_items: int,
        item_owner: np.ndarray,
        mv_total: np.ndarray,
        own_mv: np.ndarray,
        pin_idx: list[int],
        k: int,
        over: np.ndarray,
        under_idx: np.ndarray,
        above_mean: np.ndarray,
        p: PolicySettings,
    ) -> float:
        """Candidates and scores without the dense group × rep matrix (big books).

        The tasks of one account share sector, region and customer status, so a group's score with
        every rep is its rep-free expected value times one row per kind of account (plus the CRM
        owner's continuity bonus), exact unless a P(win) reaches the 1%/99% clip; such groups are
        scored task by task. Each group considers the best reps for its kind of account (half from
        the very top, half from a deterministic slice of the next ranks, so that accounts of one kind
        do not all compete for the same few reps), a spread of others, reps under the band, and its
        current and CRM owners.
        """
        n_g, n_r = len(m.groups), len(m.reps)
        ends = np.append(st[1:], n_items)
        v_p0 = sc.value * sc.p0
        grp_v = np.add.reduceat(v_p0, st)
        p0_max = np.maximum.reduceat(np.where(sc.value > 0, sc.p0, 0.0), st)
        p0_min = np.minimum.reduceat(np.where(sc.value > 0, sc.p0, np.inf), st)
        rows_cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        seen: Counter[tuple[int, int, int]] = Counter()
        own_lo = np.searchsorted(m.own_g, np.arange(n_g))
        own_hi = np.searchsorted(m.own_g, np.arange(n_g), side="right")
        half = max(1, k // 2)
        window = max(1, min(n_r - half, 4 * k))
        span = 1.0
        for g in range(n_g):
            i0 = int(st[g])
            sec, reg, cust, ao = int(sc.sec[i0]), int(sc.reg[i0]), int(sc.cust[i0]), int(sc.acct_owner[i0])
            key = (sec, reg, cust)
            if key not in rows_cache:
                row = sc.combo_row(sec, reg, cust)
                rows_cache[key] = (row, np.argsort(-row, kind="stable"))
            row, rank = rows_cache[key]
            q = seen[key]
            seen[key] += 1
            o = int(m.owner[g])
            if pin_idx[g] >= 0:
                cand = np.array([pin_idx[g]])
            else:
                pool = set(rank[:half].tolist())
                pool.update(rank[half + (q * 7 + t * 13) % window].tolist() for t in range(k - half))
                h = zlib.crc32(m.groups[g].key.encode())
                pool.update((h + t * 7919) % n_r for t in range(max(2, k // 3)))
                pool.update(under_idx.tolist())
                if o >= 0:
                    pool.add(o)
                if ao >= 0:
                    pool.add(ao)
                cand = np.array(sorted(pool))
            lo_l, hi_l = sc.lift_range(sec)
            if p0_max[g] * hi_l > 0.99 or p0_min[g] * lo_l < 0.01:
                score = sc.block(np.arange(i0, int(ends[g]))).sum(axis=0)[cand]
            else:
                score = grp_v[g] * row[cand]
                if ao >= 0:
                    score = score + (cand == ao) * grp_v[g] * sc.w[3] * float(sc.rep_lift[ao] * sc.rep_sector[sec, ao])
            mv = np.full(len(cand), mv_total[g])
            for e in range(int(own_lo[g]), int(own_hi[g])):
                mv[cand == m.own_r[e]] -= own_mv[e]
            net = score - mv
            held = False
            if pin_idx[g] < 0 and o >= 0:
                must = bool(over[o]) or (under_idx.size > 0 and bool(above_mean[o]))
                at_o = float(net[np.searchsorted(cand, o)])
                gain = bool(net.max() > at_o + _EPS)
                if not must and (p.rebalance_only or not gain):
                    pos = int(np.searchsorted(cand, o))
                    keep = slice(pos, pos + 1)
                    cand, score, mv, net = cand[keep], score[keep], mv[keep], net[keep]
                    held = True
            span = max(span, float(np.abs(net).max(initial=0.0)) + 1.0)
            m.cand.append(cand)
            m.held.append(held)
            m.score.append(score)
            m.move.append(mv)
        return span

    # -- solve -----------------------------------------------------------------------------------
    @staticmethod
    def _programme(
        m: _Model, movers: list[int], fw: np.ndarray, fn: np.ndarray, fv: np.ndarray, integral: bool
    ) -> tuple[np.ndarray, LinearConstraint, Bounds, np.ndarray, np.ndarray, np.ndarray]:
        """The (MI)LP for groups ``movers`` given fixed loads; returns c, A, bounds, integrality, group, rep."""
        n_r = len(m.reps)
        gi_arr = np.concatenate([np.full(len(m.cand[g]), j) for j, g in enumerate(movers)])
        ri_arr = np.concatenate([m.cand[g] for g in movers])
        net = np.concatenate([m.score[g] - m.move[g] for g in movers])
        mg = np.array(movers)[gi_arr]
        n_x, n_m = len(gi_arr), len(movers)
        # variables: x (n_x), u (n_m: group left unassigned), s_over (n_r), s_under (n_r)
        n_var = n_x + n_m + 2 * n_r
        best = np.array([float(np.abs(m.score[g]).max()) for g in movers])
        u_pen = 10.0 * (best + m.band_penalty * m.weight[movers] + 1.0)
        c = np.concatenate([-net, u_pen, np.full(2 * n_r, m.band_penalty)])
        x_cols = np.arange(n_x)
        w = m.weight[mg]
        mv_arr = np.array(movers, dtype=np.int64)
        in_prog = np.isin(m.own_g, mv_arr)
        u_col = n_x + np.searchsorted(mv_arr, m.own_g[in_prog])  # movers are sorted
        u_rep, u_w, u_n, u_v = m.own_r[in_prog], m.own_w[in_prog], m.own_n[in_prog], m.own_v[in_prog]
        rows = [gi_arr, np.arange(n_m)]  # one rep per group: sum_r x + u = 1
        cols = [x_cols, n_x + np.arange(n_m)]
        vals = [np.ones(n_x), np.ones(n_m)]
        lb = [np.ones(n_m)]
        ub = [np.ones(n_m)]
        base = n_m
        # band: sum w x - s_over <= upper - fixed ; sum w x + s_under >= lower - fixed
        rows += [base + ri_arr, base + np.arange(n_r), base + u_rep]
        cols += [x_cols, n_x + n_m + np.arange(n_r), u_col]
        vals += [w, -np.ones(n_r), u_w]
        lb += [np.full(n_r, -np.inf)]
        ub += [m.upper - fw]
        base += n_r
        rows += [base + ri_arr, base + np.arange(n_r), base + u_rep]
        cols += [x_cols, n_x + n_m + n_r + np.arange(n_r), u_col]
        vals += [w, np.ones(n_r), u_w]
        lb += [m.lower - fw]
        ub += [np.full(n_r, np.inf)]
        base += n_r
        capped = np.isfinite(m.cap)
        stay_n, stay_v = m.stay_loads()
        if capped.any():  # capacity (task count), variables s_cap (one per capped rep) appended
            cap_row = np.cumsum(capped) - 1
            sel = capped[ri_arr]
            u_sel = capped[u_rep]
            n_cap = int(capped.sum())
            rows += [base + cap_row[ri_arr[sel]], base + cap_row[u_rep[u_sel]], base + np.arange(n_cap)]
            cols += [x_cols[sel], u_col[u_sel], n_var + np.arange(n_cap)]
            vals += [m.count[mg][sel], u_n[u_sel], -np.ones(n_cap)]
            lb += [np.full(n_cap, -np.inf)]
            ub += [m.cap[capped] - fn[capped]]
            # Over capacity now: the excess may stay (always feasible) at a high cost, never grow. The
            # bound is on the whole book (not this programme's groups), so that the small MILP after
            # LP-and-fix cannot trade a fixed newcomer for a task that stays.
            cap_slack_ub = np.maximum(stay_n - m.cap, 0.0)[capped]
            base += n_cap
        else:
            n_cap = 0
            cap_slack_ub = np.zeros(0)
        cap_pen = 2.0 * m.band_penalty * float(m.weight.max(initial=1.0)) + float(np.abs(net).max(initial=0.0)) + 1.0
        vcapped = np.isfinite(m.vcap)
        if vcapped.any():  # value capacity (open pipeline), variables s_val (one per capped rep) after s_cap
            vrow = np.cumsum(vcapped) - 1
            sel = vcapped[ri_arr]
            u_sel = vcapped[u_rep]
            n_vc = int(vcapped.sum())
            rows += [base + vrow[ri_arr[sel]], base + vrow[u_rep[u_sel]], base + np.arange(n_vc)]
            cols += [x_cols[sel], u_col[u_sel], n_var + n_cap + np.arange(n_vc)]
            vals += [m.value_[mg][sel], u_v[u_sel], -np.ones(n_vc)]
            lb += [np.full(n_vc, -np.inf)]
            ub += [m.vcap[vcapped] - fv[vcapped]]
            vslack_ub = np.maximum(stay_v - m.vcap, 0.0)[vcapped]
            base += n_vc
            # A unit of excess value costs as much as a whole task over capacity costs per smallest account.
            pos_v = m.value_[m.value_ > 0]
            v_unit = max(float(pos_v.min(initial=1.0)), 1e-3 * float(pos_v.mean()) if pos_v.size else 1.0)
            vcap_pen = cap_pen / max(v_unit, 1e-9)
        else:
            n_vc = 0
            vslack_ub = np.zeros(0)
            vcap_pen = 0.0
        c = np.concatenate([c, np.full(n_cap, cap_pen), np.full(n_vc, vcap_pen)])
        n_var += n_cap + n_vc
        a = csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(base, n_var))
        cons = LinearConstraint(a, np.concatenate(lb), np.concatenate(ub))
        bounds = Bounds(
            np.zeros(n_var), np.concatenate([np.ones(n_x + n_m), np.full(2 * n_r, np.inf), cap_slack_ub, vslack_ub])
        )
        integrality = np.zeros(n_var)
        if integral:
            integrality[: n_x + n_m] = 1
        return c, cons, bounds, integrality, gi_arr, ri_arr

    def _solve(self, m: _Model, time_limit: float | None) -> tuple[np.ndarray | None, str, str, int]:
        """Rep index per group (-1 unassigned), method, status, number of variables.

        Exact: one MILP. Otherwise LP-and-fix: solve the LP relaxation, keep the groups it assigns
        integrally (nearly all: an assignment LP has at most one fractional group per binding rep
        constraint), solve the few fractional ones as a small MILP, and place any left greedily.
        """
        t0 = time.perf_counter()
        n_g = len(m.groups)
        choice = np.full(n_g, -1)
        movers = [gi for gi in range(n_g) if not m.held[gi]]
        fw, fn, fv = m.fixed_w.copy(), m.fixed_n.copy(), m.fixed_v.copy()
        for gi in range(n_g):
            if m.held[gi]:  # constant load
                r = int(m.cand[gi][0])
                choice[gi] = r
                fw[r] += m.weight[gi]
                fn[r] += m.count[gi]
                fv[r] += m.value_[gi]
        if not movers:
            return choice, "fixed", "nothing to move", 0
        base = (fw.copy(), fn.copy(), fv.copy())  # loads with every mover still to place

        def options(limit: float | None, gap: float) -> dict[str, float | bool]:
            o: dict[str, float | bool] = {"presolve": True, "mip_rel_gap": gap}
            if limit is not None:
                o["time_limit"] = max(float(limit), 0.05)
            return o

        def left() -> float | None:
            return None if time_limit is None else time_limit - (time.perf_counter() - t0)

        if self.exact:
            c, cons, bounds, integ, gi_arr, ri_arr = self._programme(m, movers, fw, fn, fv, True)
            res = milp(c, constraints=cons, integrality=integ, bounds=bounds, options=options(time_limit, 0.0))
            if res.x is None:
                return None, "milp", str(res.message), len(c)
            self._take(m, movers, res.x, gi_arr, ri_arr, choice, fw, fn, fv, [])
            return choice, "milp", "optimal" if res.status == 0 else str(res.message), len(c)
        n_x = sum(len(m.cand[g]) for g in movers)
        if n_x > LP_MAX:  # too big for the LP in good time: Lagrangian prices, then repair
            self._prices(m, movers, choice, fw, fn, fv, left)
            self._shed(m, choice)
            self._repair(m, choice)
            self._improve(m, choice)
            return choice, "prices+repair", "heuristic", n_x
        c, cons, bounds, integ, gi_arr, ri_arr = self._programme(m, movers, fw, fn, fv, False)
        n_var = len(c)
        res = milp(c, constraints=cons, integrality=integ, bounds=bounds, options=options(left(), 0.0))
        if res.x is None:  # out of time (or numerical trouble): best fit with room, group by group
            self._greedy(movers, m, choice, fw, fn, fv)
            self._shed(m, choice)
            self._repair(m, choice)
            self._improve(m, choice)
            return choice, "greedy-fallback", str(res.message), n_var
        frac: list[int] = []
        self._take(m, movers, res.x, gi_arr, ri_arr, choice, fw, fn, fv, frac)
        method = "lp"
        if frac:
            # The fractional groups, plus a few small groups of each rep they touch, as a small MILP:
            # the freedom to swap a small account is what lets integral loads meet the band.
            x = res.x[: len(gi_arr)]
            touched = set(ri_arr[np.isin(gi_arr, frac) & (x > 1e-6)].tolist())
            sub_set = {movers[j] for j in frac}
            by_rep: dict[int, list[tuple[float, int]]] = defaultdict(list)
            for g in movers:
                if choice[g] in touched and g not in sub_set:
                    by_rep[int(choice[g])].append((float(m.count[g]), g))
            for r, gs in by_rep.items():
                for _, g in sorted(gs)[:NEIGHBOURS]:
                    sub_set.add(g)
                    choice[g] = -1
                    fw[r] -= m.weight[g]
                    fn[r] -= m.count[g]
                    fv[r] -= m.value_[g]
            sub = sorted(sub_set)
            c2, cons2, b2, integ2, g2, r2 = self._programme(m, sub, fw, fn, fv, True)
            # The small MILP gets a share of the time; its incumbent is used if it does not prove optimality.
            budget = self.sub_time if time_limit is None else min(self.sub_time, left() or 0.0)
            res2 = milp(c2, constraints=cons2, integrality=integ2, bounds=b2, options=options(budget, self.mip_gap))
            rest: list[int] = []
            remaining = left()
            if res2.x is not None:
                self._take(m, sub, res2.x, g2, r2, choice, fw, fn, fv, rest)
                method = f"lp+milp({len(sub)})"
            elif res2.status == 2 and (remaining is None or remaining > 0.2):
                # The LP's integral groups leave the fractional ones no feasible rounding (it can happen
                # when reps are over capacity): one MILP over every mover instead.
                fw, fn, fv = (a.copy() for a in base)
                choice[movers] = -1
                c3, cons3, b3, integ3, g3, r3 = self._programme(m, movers, fw, fn, fv, True)
                opts = options(remaining, self.mip_gap)
                res3 = milp(c3, constraints=cons3, integrality=integ3, bounds=b3, options=opts)
                if res3.x is not None:
                    sub = movers
                    self._take(m, movers, res3.x, g3, r3, choice, fw, fn, fv, rest)
                    method = "milp"
                else:
                    self._take(m, movers, res.x, gi_arr, ri_arr, choice, fw, fn, fv, [])
                    rest = list(range(len(sub)))
                    for g in sub:
                        if choice[g] >= 0:
                            r = int(choice[g])
                            choice[g] = -1
                            fw[r] -= m.weight[g]
                            fn[r] -= m.count[g]
                            fv[r] -= m.value_[g]
                    method = "lp+rounding"
            else:
                rest = list(range(len(sub)))
                method = "lp+rounding"
            self._greedy([sub[j] for j in rest], m, choice, fw, fn, fv)
        if self._repair(m, choice):
            method += "+repair"
        return choice, method, "optimal" if res.status == 0 else str(res.message), n_var

    def _stay_if_close(self, m: _Model, choice: np.ndarray) -> np.ndarray:
        """Keep today's division when it is feasible and within ``stay_tolerance`` of the new one.

        LP-and-fix is near-optimal, not exact; without this a second run could find a slightly
        different near-optimum and reshuffle tasks for a gain below the solver's own tolerance.
        """
        if (m.owner < 0).any():
            return choice
        for gi, g in enumerate(m.groups):
            if any(i.owner != g.owner for i in g.items) or int(m.owner[gi]) not in m.cand[gi].tolist():
                return choice
        stay = m.owner.copy()
        w, n, v = m.current_loads()
        over_v = not np.all(m.vfits(v, np.arange(len(m.reps))))
        if (n > m.cap).any() or over_v or (w > m.upper + 1e-6).any() or (w < m.lower - 1e-6).any():
            return choice
        new, old = self._objective(m, choice), self._objective(m, stay)
        return stay if old >= new - self.stay_tolerance * abs(new) else choice

    @staticmethod
    def _prices(
        m: _Model,
        movers: list[int],
        choice: np.ndarray,
        fw: np.ndarray,
        fn: np.ndarray,
        fv: np.ndarray,
        left: Callable[[], float | None],
        rounds: int = 300,
        min_rounds: int = 60,
        stop_after: int = 20,
    ) -> None:
        """Lagrangian relaxation of the band and capacity rows, by projected subgradient steps.

        With a price per rep on load above the band (and on tasks above capacity) and a reward for
        load below it, each group simply takes its best candidate net of prices; prices rise where
        reps are over and fall where they are under. The best division seen (fewest violations,
        then highest objective) is kept; :meth:`_repair` then fixes the last few violations.
        """
        n_r = len(m.reps)
        mv = np.array(movers, dtype=np.int64)
        sizes = np.array([len(m.cand[g]) for g in movers])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rep = np.concatenate([m.cand[g] for g in movers])
        net = np.concatenate([m.score[g] - m.move[g] for g in movers])
        grp = np.repeat(np.arange(len(movers)), sizes)
        w = m.weight[mv][grp]
        cnt = m.count[mv][grp]
        val = m.value_[mv][grp]
        cap = np.where(np.isfinite(m.cap), m.cap, np.inf)
        vcap = m.vcap
        v_scale = max(float(m.value_[mv].mean()) / max(float(m.count[mv].mean()), 1.0), 1e-9)
        scale = float(np.abs(net).mean()) / max(float(m.weight[mv].mean()), 1e-9)
        lam = np.zeros(n_r)  # price of band load (negative: reward)
        kap = np.zeros(n_r)  # price of a task above capacity
        vkap = np.zeros(n_r)  # price of pipeline value above value capacity
        best: tuple[float, float, np.ndarray] | None = None
        span = max(m.upper - m.lower, 1e-9 + 0.02 * m.mean)
        for k in range(rounds):
            adj = net - lam[rep] * w - kap[rep] * cnt - vkap[rep] * val
            # Per group, the position of its best candidate: sort by (group, -adj) and take firsts.
            top = np.maximum.reduceat(adj, starts)
            hit = np.flatnonzero(adj >= top[grp])
            first = np.ones(len(hit), dtype=bool)
            first[1:] = grp[hit[1:]] != grp[hit[:-1]]
            pick = hit[first]
            r_of = rep[pick]
            load = fw + np.bincount(r_of, weights=m.weight[mv], minlength=n_r)
            tasks = fn + np.bincount(r_of, weights=m.count[mv], minlength=n_r)
            over = np.maximum(load - m.upper, 0.0)
            under = np.maximum(m.lower - load, 0.0)
            cap_over = np.maximum(tasks - cap, 0.0)
            pipe = fv + np.bincount(r_of, weights=m.value_[mv], minlength=n_r)
            v_over = np.where(np.asarray(m.vfits(pipe, np.arange(n_r)), dtype=bool), 0.0, pipe - vcap)
            bad = float(over.sum() + under.sum()) + float(cap_over.sum() + v_over.sum() / v_scale) * float(
                m.weight.max(initial=1.0)
            )
            value = float(net[pick].sum())
            if best is None or (bad, -value) < (best[0], -best[1]):
                best = (bad, value, r_of.copy())
            if bad == 0.0 and k > stop_after:
                break
            remaining = left()
            if k >= min_rounds and remaining is not None and remaining < 0.5:
                break
            step = scale * (1.0 / (1.0 + 0.05 * k))
            lam = lam + step * (over - under) / span
            kap = np.maximum(kap + step * cap_over / max(float(m.count.mean()), 1.0), 0.0)
            vkap = np.maximum(vkap + step * v_over / (v_scale * v_scale * max(float(m.count.mean()), 1.0)), 0.0)
        assert best is not None
        for j, g in enumerate(movers):
            r = int(best[2][j])
            choice[g] = r
            fw[r] += m.weight[g]
            fn[r] += m.count[g]
            fv[r] += m.value_[g]

    @staticmethod
    def _improve(m: _Model, choice: np.ndarray, passes: int = 3) -> int:
        """Single-group moves that raise the objective and keep every rep in the band and capacity.

        Run after the price heuristic (whose division is feasible but not LP-optimal); returns moves made.
        """
        n_g = len(m.groups)
        w, n, v = m.loads_for(choice)
        nets = [m.score[g] - m.move[g] for g in range(n_g)]
        gains = []
        for g in range(n_g):
            if m.held[g] or choice[g] < 0:
                continue
            cur = float(nets[g][np.searchsorted(m.cand[g], choice[g])])
            gains.append((cur - float(nets[g].max()), g))  # most to gain first
        gains.sort()
        made = 0
        for _ in range(passes):
            moved = 0
            for _, g in gains:
                frm = int(choice[g])
                cur = float(nets[g][np.searchsorted(m.cand[g], frm)])
                wg, ng, vg = float(m.weight[g]), float(m.count[g]), float(m.value_[g])
                if w[frm] - wg < m.lower - 1e-9 and w[frm] <= m.upper + 1e-9:
                    continue
                best, best_r = cur + 1e-9 * max(abs(cur), 1.0), -1
                for pos in np.flatnonzero(nets[g] > best).tolist():
                    r = int(m.cand[g][pos])
                    if r == frm or w[r] + wg > m.upper + 1e-9 or n[r] + ng > m.cap[r] or not m.vfits(v[r] + vg, r):
                        continue
                    if w[r] < m.lower - 1e-9 and w[r] + wg > m.upper + 1e-9:
                        continue
                    if nets[g][pos] > best:
                        best, best_r = float(nets[g][pos]), r
                if best_r >= 0:
                    choice[g] = best_r
                    _shift((w, n, v), (wg, ng, vg), frm, best_r)
                    moved += 1
            made += moved
            if not moved:
                break
        return made

    @staticmethod
    def _shed(m: _Model, choice: np.ndarray) -> int:
        """Move groups off reps above their capacity (task count or pipeline value) to candidates with
        room, least objective lost first, within the band where possible; returns groups moved.

        The price heuristic meets capacity only approximately; the LP's rows are exact and need no shedding.
        """
        n_g, n_r = len(m.groups), len(m.reps)
        if not (np.isfinite(m.cap).any() or m.value_capped):
            return 0
        w, n, v = m.loads_for(choice)
        moved = 0
        for r in range(n_r):
            if n[r] <= m.cap[r] and m.vfits(float(v[r]), r):
                continue
            options: list[tuple[float, int, int]] = []  # (objective lost, group, to)
            for g in range(n_g):
                if int(choice[g]) != r or m.held[g]:
                    continue
                net = m.score[g] - m.move[g]
                here = float(net[np.searchsorted(m.cand[g], r)])
                options.extend((here - float(net[pos]), g, to) for pos, to in enumerate(m.cand[g].tolist()) if to != r)
            options.sort()
            for within_band in (True, False):
                for _, g, to in options:
                    over_n = n[r] > m.cap[r]
                    if not over_n and m.vfits(float(v[r]), r):
                        break
                    wg, ng, vg = float(m.weight[g]), float(m.count[g]), float(m.value_[g])
                    if int(choice[g]) != r or (not over_n and vg <= 0):  # moved already, or no help
                        continue
                    if n[to] + ng > m.cap[to] or not m.vfits(float(v[to] + vg), to):
                        continue
                    if within_band and w[to] + wg > m.upper + 1e-9:
                        continue
                    choice[g] = to
                    _shift((w, n, v), (wg, ng, vg), r, to)
                    moved += 1
        return moved

    @staticmethod
    def _repair(m: _Model, choice: np.ndarray, rounds: int = 200) -> bool:
        """Single-group moves that shrink band violations, best objective change first (vectorised per rep).

        Integral loads after LP-and-fix (or prices) can miss the band by a task or two; this closes such gaps.
        A move never takes a rep above its capacity.
        """
        n_g, n_r = len(m.groups), len(m.reps)
        w, n, v = m.loads_for(choice)
        movable = np.array([not m.held[g] and choice[g] >= 0 for g in range(n_g)], dtype=bool)
        if not movable.any():
            return False
        sizes = np.array([len(c) for c in m.cand])
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        f_rep = np.concatenate(m.cand)
        f_net = np.concatenate([m.score[g] - m.move[g] for g in range(n_g)])
        f_grp = np.repeat(np.arange(n_g), sizes)
        ok = movable[f_grp]
        f_rep_m, f_idx = f_rep[ok], np.flatnonzero(ok)
        order = np.argsort(f_rep_m, kind="stable")
        by_rep = np.split(f_idx[order], np.searchsorted(f_rep_m[order], np.arange(1, n_r)))
        cur_pos = np.full(n_g, -1)
        for gm in np.flatnonzero(movable).tolist():
            cur_pos[gm] = offset[gm] + int(np.searchsorted(m.cand[gm], choice[gm]))

        def viol(load: np.ndarray) -> np.ndarray:
            out: np.ndarray = np.maximum(load - m.upper, 0.0) + np.maximum(m.lower - load, 0.0)
            return out

        changed = False
        for _ in range(rounds):
            bad = np.flatnonzero(viol(w) > 1e-9)
            progress = False
            for r in bad.tolist():
                if viol(w[r : r + 1])[0] <= 1e-9:
                    continue
                if w[r] < m.lower:  # pull a group in: entries (g, r) of groups now elsewhere
                    idx = by_rep[r]
                    g = f_grp[idx]
                    idx, g = idx[choice[g] != r], g[choice[g] != r]
                    frm, to = choice[g], np.full(len(g), r)
                else:  # push a group out: every other candidate of r's groups
                    mine = np.flatnonzero(movable & (choice == r))
                    if not mine.size:
                        continue
                    idx = np.concatenate([np.arange(offset[x], offset[x] + sizes[x]) for x in mine.tolist()])
                    g = f_grp[idx]
                    keep = f_rep[idx] != r
                    idx, g = idx[keep], g[keep]
                    frm, to = np.full(len(g), r), f_rep[idx]
                if not len(g):
                    continue
                wg, ng = m.weight[g], m.count[g]
                fits = (n[to] + ng <= m.cap[to]) & np.asarray(m.vfits(v[to] + m.value_[g], to), dtype=bool)
                dv = viol(w[frm] - wg) + viol(w[to] + wg) - viol(w[frm]) - viol(w[to])
                gain = -dv * m.band_penalty + f_net[idx] - f_net[cur_pos[g]]
                gain[~fits | (dv >= -1e-9)] = -np.inf
                b = int(np.argmax(gain))
                if not gain[b] > 0:
                    continue
                gb, fb, tb = int(g[b]), int(frm[b]), int(to[b])
                choice[gb] = tb
                cur_pos[gb] = int(idx[b])
                w[fb] -= m.weight[gb]
                n[fb] -= m.count[gb]
                v[fb] -= m.value_[gb]
                w[tb] += m.weight[gb]
                n[tb] += m.count[gb]
                v[tb] += m.value_[gb]
                changed = progress = True
            if not progress:
                break
        return changed

    @staticmethod
    def _take(
        m: _Model,
        movers: list[int],
        x_all: np.ndarray,
        gi_arr: np.ndarray,
        ri_arr: np.ndarray,
        choice: np.ndarray,
        fw: np.ndarray,
        fn: np.ndarray,
        fv: np.ndarray,
        frac: list[int],
    ) -> None:
        """Assign groups whose x is integral (updating loads); list the others in ``frac``."""
        n_x, n_m = len(gi_arr), len(movers)
        x = x_all[:n_x]
        order = np.lexsort((-x, gi_arr))  # per group, largest x first
        first = np.full(n_m, -1)
        seen = np.zeros(n_m, dtype=bool)
        for pos in order.tolist():
            j = int(gi_arr[pos])
            if not seen[j]:
                seen[j] = True
                first[j] = pos
        for j in range(n_m):
            pos = int(first[j])
            if x[pos] > 1 - 1e-6:
                r = int(ri_arr[pos])
                g = movers[j]
                choice[g] = r
                fw[r] += m.weight[g]
                fn[r] += m.count[g]
                fv[r] += m.value_[g]
            elif x_all[n_x + j] < 1 - 1e-6:  # not (integrally) left unassigned
                frac.append(j)
            else:
                m.keep(movers[j], fw, fn, fv)

    @staticmethod
    def _greedy(
        groups: list[int], m: _Model, choice: np.ndarray, fw: np.ndarray, fn: np.ndarray, fv: np.ndarray
    ) -> None:
        for g in sorted(groups, key=lambda g: (-float(m.weight[g]), g)):
            best_r, best_v = -1, -math.inf
            for pos, r in enumerate(m.cand[g].tolist()):
                if fn[r] + m.count[g] > m.cap[r] or not m.vfits(fv[r] + m.value_[g], r):
                    continue
                v = float(m.score[g][pos] - m.move[g][pos])
                over = fw[r] + m.weight[g] - max(m.upper, fw[r])
                if over > _EPS:
                    v -= m.band_penalty * over
                under = max(m.lower - fw[r], 0.0) - max(m.lower - fw[r] - m.weight[g], 0.0)
                v += m.band_penalty * under
                if v > best_v:
                    best_r, best_v = r, v
            if best_r >= 0:
                choice[g] = best_r
                fw[best_r] += m.weight[g]
                fn[best_r] += m.count[g]
                fv[best_r] += m.value_[g]
            else:
                m.keep(g, fw, fn, fv)

    @staticmethod
    def _objective(m: _Model, choice: np.ndarray) -> float:
        loads = m.fixed_w.copy()
        counts = m.fixed_n.copy()
        val = 0.0
        for gi, r in enumerate(choice.tolist()):
            if r >= 0:
                s, mv = m.value(gi, r)
                val += s - mv
                loads[r] += m.weight[gi]
            else:
                m.keep(gi, loads, counts)
        viol = np.maximum(loads - m.upper, 0) + np.maximum(m.lower - loads, 0)
        return val - m.band_penalty * float(viol.sum())

    def evaluate(self, book: Book, settings: Settings, owners: Mapping[str, str | None]) -> float:
        """The full objective (fit value − move cost − band penalty) of a division of ``book``.

        ``owners`` maps item keys to rep ids (missing: current owner). A group is scored with the
        owner of its first task; groups whose owner is away or unknown count as unassigned.
        """
        wm = self._fit(book, settings)
        if not book.available_reps:
            return 0.0
        m = self._model(book, settings, wm, exact=True)
        ridx = {r: i for i, r in enumerate(m.reps)}
        choice = np.array(
            [ridx.get(owners.get(g.items[0].key) or g.items[0].owner or "", -1) for g in m.groups], dtype=np.int64
        )
        for gi, r in enumerate(choice.tolist()):
            if r >= 0 and r not in set(m.cand[gi].tolist()):
                choice[gi] = -1
        return self._objective(m, choice)

    # -- decide ----------------------------------------------------------------------------------
    def decide(self, book: Book, settings: Settings) -> Decisions:
        t0 = time.perf_counter()
        wm = self._fit(book, settings)
        out = Decisions(model=wm)
        self.info = SolveInfo()
        if not book.available_reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
            self.info.method = "none"
            return self._finish(book, settings, wm, out, {}, {})
        self.info.phases["fit"] = time.perf_counter() - t0
        n_avail = len(book.available_reps)
        if not self.exact and n_avail >= 2 * BLOCK_REPS and len(book.items) > BLOCK_ITEMS:
            decided, reasons = self._divide_blocks(book, settings, wm, out)
        else:
            res = self._divide(book, settings, wm, out, t0)
            if res is None:  # only the exact mode gets here
                greedy = BalancedPolicy().decide(book, settings)
                out.by_key = greedy.by_key
                out.notes.extend(greedy.notes)
                self.info.method = "balanced-fallback"
                self.info.seconds = time.perf_counter() - t0
                return out
            decided, reasons = res
        self.info.moved = sum(1 for i in book.items if decided.get(i.key) is not None and decided[i.key] != i.owner)
        t1 = time.perf_counter()
        out = self._finish(book, settings, wm, out, decided, reasons)
        self.info.phases["priority"] = time.perf_counter() - t1
        self.info.seconds = time.perf_counter() - t0
        return out

    def _divide(
        self, book: Book, settings: Settings, wm: WinModel, out: Decisions, t0: float, mean: float | None = None
    ) -> tuple[dict[str, str | None], dict[str, str]] | None:
        """Owner and reason per movable item of ``book`` (one programme); None if the exact MILP failed."""
        p = settings.policy
        t1 = time.perf_counter()
        m = self._model(book, settings, wm, self.exact, mean)
        self.info.phases["model"] = self.info.phases.get("model", 0.0) + time.perf_counter() - t1
        names = {r.id: r.name for r in book.crm.reps}
        out.notes.extend(self._feasibility_notes(m, names, settings))
        limit = None if self.exact else max(p.time_limit - (time.perf_counter() - t0), 0.1)
        t1 = time.perf_counter()
        choice, method, status, n_var = self._solve(m, limit)
        self.info.phases["solve"] = self.info.phases.get("solve", 0.0) + time.perf_counter() - t1
        self.info.method, self.info.status = method, status
        self.info.variables += n_var
        self.info.groups += sum(1 for h in m.held if not h)
        if method == "greedy-fallback":
            out.notes.append(f"the optimiser found no division in {p.time_limit:g} s ({status}): greedy division used")
        if choice is None:
            out.notes.append(f"the exact optimiser failed ({status}): balanced policy used")
            return None
        if not self.exact:
            choice = self._stay_if_close(m, choice)
        self.info.objective += self._objective(m, choice)
        decided: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        t1 = time.perf_counter()
        self._explain(book, m, choice, names, settings, decided, reasons, out)
        self.info.phases["explain"] = self.info.phases.get("explain", 0.0) + time.perf_counter() - t1
        return decided, reasons

    def _divide_blocks(
        self, book: Book, settings: Settings, wm: WinModel, out: Decisions
    ) -> tuple[dict[str, str | None], dict[str, str]]:
        """Big books: reps in blocks of about ``BLOCK_REPS`` (dealt round robin, so every block is a
        small copy of the team), accounts to the block of their owner (or pinned owner), unowned work
        and the excess of overloaded blocks to the blocks with most room; then one programme per block.
        """
        p = settings.policy
        # Dealt by capacity, so that every block gets its share of room.
        big = 10**9
        avail = sorted(book.available_reps, key=lambda r: (-(r.capacity if r.capacity is not None else big), r.id))
        n_b = math.ceil(len(avail) / BLOCK_REPS)
        block_of = {r.id: k % n_b for k, r in enumerate(avail)}
        room = np.zeros(n_b)
        vroom = np.zeros(n_b)  # value capacity per block (inf when a rep of it has none)
        for r in avail:
            room[block_of[r.id]] += r.capacity if r.capacity is not None else big
            vroom[block_of[r.id]] += r.capacity_value if r.capacity_value is not None else math.inf
        by_ev = p.balance_by == "expected_value"

        def weight(i: WorkItem) -> float:
            return wm.expected_value(i, None) if by_ev else 1.0

        groups: dict[str, list[WorkItem]] = defaultdict(list)
        fixed: list[WorkItem] = []
        pins: dict[str, str] = {}
        load = np.zeros(n_b)
        tasks = np.zeros(n_b)
        pipe = np.zeros(n_b)
        rep_load: Counter[str] = Counter()
        for i in book.items:
            stuck = i.owner is not None and i.owner not in block_of and not p.move_from_unavailable
            if not (i.managed and not i.locked) or stuck:
                fixed.append(i)
                if i.locked and i.owner:
                    pins.setdefault(i.group, i.owner)
                if i.owner in block_of:
                    load[block_of[i.owner]] += weight(i)
                    tasks[block_of[i.owner]] += 1
                    pipe[block_of[i.owner]] += i.value
                    rep_load[i.owner] += 1
            else:
                groups[i.group].append(i)
                if i.owner in block_of:
                    rep_load[i.owner] += 1
        g_weight = {k: sum(weight(i) for i in its) for k, its in groups.items()}
        g_value = {k: sum(i.value for i in its) for k, its in groups.items()}
        g_block: dict[str, int] = {}
        free: list[str] = []
        owner_of: dict[str, str] = {}
        for key in sorted(groups):
            pin = pins.get(key)
            owners = Counter(i.owner for i in groups[key] if i.owner in block_of)
            o = pin if pin in block_of else (min(owners, key=lambda r: (-owners[r], r)) if owners else None)
            if o is None:
                free.append(key)
                continue
            owner_of[key] = o
            g_block[key] = block_of[o]
            load[block_of[o]] += g_weight[key]
            tasks[block_of[o]] += len(groups[key])
            pipe[block_of[o]] += g_value[key]
        size = np.bincount(np.array(list(block_of.values())), minlength=n_b)
        team_mean = (load.sum() + sum(g_weight[k] for k in free)) / len(avail)
        target = team_mean * size
        # Blocks above what their reps can hold within the band (or their capacity), or above their
        # share while another block is short, give away accounts of their most loaded reps.
        short = bool((load + sum(g_weight[k] for k in free) < target * (1 - p.band)).any())
        for b in range(n_b):
            goal = target[b] if short else target[b] * (1 + p.band / 2)
            if load[b] <= (goal if short else target[b] * (1 + p.band)) and tasks[b] <= room[b] and pipe[b] <= vroom[b]:
                continue
            mine = [k for k, v in g_block.items() if v == b and pins.get(k) not in block_of]
            mine.sort(key=lambda k: (-rep_load[owner_of[k]], g_weight[k], k))
            for k in mine:
                if load[b] <= goal and tasks[b] <= room[b] and pipe[b] <= vroom[b]:
                    break
                del g_block[k]
                load[b] -= g_weight[k]
                tasks[b] -= len(groups[k])
                pipe[b] -= g_value[k]
                free.append(k)
        for key in sorted(free, key=lambda k: (-g_weight[k], k)):
            n_k = len(groups[key])
            fits = (tasks + n_k <= room) & (pipe + g_value[key] <= vroom)
            spare = np.where(fits, target - load, -np.inf)
            if np.isfinite(spare).any():
                b = int(np.argmax(spare))
            else:  # no block has room for both: the most spare tasks, then the most spare value
                b = int(np.lexsort((-(vroom - pipe), -(room - tasks)))[0])
            g_block[key] = b
            load[b] += g_weight[key]
            tasks[b] += n_k
            pipe[b] += g_value[key]
        items: list[list[WorkItem]] = [[] for _ in range(n_b)]
        for key, its in groups.items():
            items[g_block[key]].extend(its)
        for i in fixed:
            b = block_of.get(i.owner or "", g_block.get(i.group, 0))
            items[b].append(i)
        away = [r for r in book.reps if not r.available]
        limit = max(p.time_limit / n_b, MIN_BLOCK_SECONDS)
        sub_settings = settings.model_copy(update={"policy": p.model_copy(update={"time_limit": limit})})
        decided: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        methods: Counter[str] = Counter()
        for b in range(n_b):
            reps = [r for r in avail if block_of[r.id] == b] + away
            sub = Book(reps, {r.id: book.rep_member[r.id] for r in reps}, items[b], book.crm, [], book.today)
            res = self._divide(sub, sub_settings, wm, out, time.perf_counter(), team_mean)
            assert res is not None  # only the exact mode fails without a division
            decided.update(res[0])
            reasons.update(res[1])
            methods[self.info.method.split("(")[0]] += 1
        self.info.method = f"blocks({n_b}): " + ", ".join(f"{k}×{v}" for k, v in sorted(methods.items()))
        return decided, reasons

    def _finish(
        self,
        book: Book,
        settings: Settings,
        wm: WinModel,
        out: Decisions,
        decided: Mapping[str, str | None],
        reasons: Mapping[str, str],
    ) -> Decisions:
        for key, (tier, score) in prioritise(book, dict(decided), settings, wm).items():
            out.by_key[key] = Decision(decided.get(key), tier, score, reasons.get(key, ""))
        return out

    @staticmethod
    def _feasibility_notes(m: _Model, names: dict[str, str], settings: Settings) -> list[str]:
        notes: list[str] = []
        n_r = len(m.reps)
        tasks = float(m.fixed_n.sum() + m.count.sum())
        if np.isfinite(m.cap).all():
            total_cap = float(m.cap.sum())
            if total_cap < tasks:
                notes.append(
                    f"capacity of {n_r} available reps totals {total_cap:.0f} < {tasks:.0f} open tasks: "
                    "some accounts keep their current owner or stay unassigned"
                )
        over_fixed = [names.get(r, r) for k, r in enumerate(m.reps) if m.fixed_n[k] > m.cap[k]]
        if over_fixed:
            notes.append(f"locked or unmanaged tasks alone exceed the capacity of: {', '.join(over_fixed)}")
        if m.value_capped:
            pipeline = float(m.fixed_v.sum() + m.value_.sum())
            if np.isfinite(m.vcap).all():
                total_v = float(m.vcap.sum())
                if not total_v >= pipeline - 1e-6 * max(pipeline, 1.0):
                    notes.append(
                        f"value capacity of {n_r} available reps totals {total_v:,.0f} < {pipeline:,.0f} open "
                        "pipeline: some accounts keep their current owner or stay unassigned"
                    )
            over_v = [
                f"{names.get(r, r)} ({m.fixed_v[k]:,.0f} > {m.vcap[k]:,.0f})"
                for k, r in enumerate(m.reps)
                if not m.vfits(float(m.fixed_v[k]), k)
            ]
            if over_v:
                notes.append(f"locked or unmanaged tasks alone exceed the value capacity of: {', '.join(over_v)}")
        if settings.policy.balance_by == "count":
            low_cap = [names.get(r, r) for k, r in enumerate(m.reps) if m.cap[k] < m.lower - _EPS]
            if low_cap:
                notes.append(
                    f"capacity below the band's lower bound {m.lower:.1f} for: {', '.join(low_cap)} "
                    f"(band ±{settings.policy.band:.0%} around {m.mean:.1f})"
                )
        return notes

    def _explain(
        self,
        book: Book,
        m: _Model,
        choice: np.ndarray,
        names: dict[str, str],
        settings: Settings,
        decided: dict[str, str | None],
        reasons: dict[str, str],
        out: Decisions,
    ) -> None:
        ridx = {r: i for i, r in enumerate(m.reps)}
        reps = {r.id: r for r in book.reps}
        cur_w, cur_n, cur_v = m.current_loads()
        loads = m.fixed_w.copy()
        counts = m.fixed_n.copy()
        pipe = m.fixed_v.copy()
        unassigned: list[str] = []
        for gi, g in enumerate(m.groups):
            r = int(choice[gi])
            if r < 0:
                unassigned.append(g.items[0].title)
                m.keep(gi, loads, counts, pipe)
                continue
            loads[r] += m.weight[gi]
            pipe[r] += m.value_[gi]
            to = m.reps[r]
            who = names.get(to, to)
            for item in g.items:
                decided[item.key] = to
                if item.owner == to:
                    reasons[item.key] = f"kept with {'the pinned owner ' if g.pinned else ''}{who}"
                    continue
                fit = fit_reasons(item, reps[to], settings.policy)
                o = ridx.get(item.owner, -1) if item.owner else -1
                if item.owner is None:
                    why = f"unowned; to {who} ({fit})"
                elif o < 0 and (away := book.crm.reps_by_id.get(item.owner)) is not None and away.available:
                    # A big book's block: the owner is in another block, which had to give work away.
                    why = f"{names.get(item.owner, item.owner)}'s share of the team is full; to {who} ({fit})"
                elif o < 0:
                    why = f"{names.get(item.owner, item.owner)} is away; to {who} ({fit})"
                elif cur_n[o] > m.cap[o]:
                    held = f"their accounts hold {cur_n[o]:.0f} tasks > {m.cap[o]:.0f}"
                    why = f"{names[item.owner]} over capacity ({held}); to {who} ({fit})"
                elif not m.vfits(float(cur_v[o]), o):
                    held = f"their accounts hold {cur_v[o]:,.0f} open pipeline > {m.vcap[o]:,.0f}"
                    why = f"{names[item.owner]} over value capacity ({held}); to {who} ({fit})"
                elif cur_w[o] > m.upper + _EPS:
                    why = f"{names[item.owner]} above the band ({cur_w[o]:.0f} > {m.upper:.0f}); to {who} ({fit})"
                elif cur_w[r] < m.lower - _EPS:
                    why = f"{who} below the band ({cur_w[r]:.0f} < {m.lower:.0f}); from {names[item.owner]}"
                elif g.owner != item.owner:
                    why = f"joins the account's other tasks with {who}"
                elif not m.is_candidate(gi, o):  # the owner fits so poorly it was not even considered
                    why = f"better fit with {who} ({fit})"
                else:
                    gain = m.value(gi, r)[0] - m.value(gi, o)[0]
                    if gain > 0 and not settings.policy.rebalance_only:
                        why = f"better fit with {who} ({fit}; {gain:+,.0f} fit-weighted expected value)"
                    else:  # part of a chain of moves that keeps every rep in the band
                        why = f"rebalancing: {names[item.owner]} to {who} makes room within the band ({fit})"
                reasons[item.key] = why
        if unassigned:
            sample = ", ".join(repr(t) for t in unassigned[:5])
            out.notes.append(
                f"{len(unassigned)} account(s) fit no rep's remaining capacity and stay as they are "
                f"(current owner or unowned): {sample}"
            )
        over_v = [
            f"{names.get(r, r)} ({pipe[k]:,.0f} > {m.vcap[k]:,.0f})"
            for k, r in enumerate(m.reps)
            if not m.vfits(float(pipe[k]), k)
        ]
        if over_v:
            out.notes.append(
                "still above their value capacity (no other rep has room, or locked cards): "
                + ", ".join(sorted(over_v))
            )
        # Load that cannot leave a rep: locked or unmanaged tasks and the accounts a locked card pins.
        pinned = m.fixed_w.copy()
        for gi, g in enumerate(m.groups):
            if g.pinned in ridx:
                pinned[ridx[g.pinned]] += m.weight[gi]

        def cause(k: int) -> str:
            if loads[k] > m.upper and pinned[k] > m.upper + 1e-6:
                return f"{pinned[k]:.0f} held by locked cards and their accounts"
            if loads[k] < m.lower and m.cap[k] < m.lower:
                return f"capacity {m.cap[k]:.0f}"
            return f"{loads[k]:.0f}"

        outside = [
            f"{names.get(r, r)} ({cause(k)})"
            for k, r in enumerate(m.reps)
            if not m.lower - 1e-6 <= loads[k] <= m.upper + 1e-6
        ]
        if outside:
            out.notes.append(
                f"band ±{settings.policy.band:.0%} around {m.mean:.1f} ({m.lower:.1f}..{m.upper:.1f}) not reachable "
                f"for: {', '.join(sorted(outside))} (locked tasks, capacity or account sizes)"
            )
