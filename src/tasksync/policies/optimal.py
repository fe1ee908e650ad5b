"""Optimal division: one mixed-integer programme over the whole book (scipy's HiGHS).

Decision variables are ``x[g, r]`` = 1 when account group ``g`` (all open managed tasks of one
account) goes to rep ``r``. The objective maximises expected won value with that rep (rep-specific
P(win) × value) times ``1 + fit bonus`` (sector strength, region, hunter/farmer role, CRM account
ownership), minus a move cost (``policy.move_cost`` × the task's expected value) for every task that
leaves an available current owner. Constraints:

* one rep per group (account unity); a group with a locked task stays with that task's owner;
* capacity: a rep's open tasks (including locked and unmanaged ones) stay within ``Rep.capacity``;
* availability: reps who are away get nothing; their tasks move when ``move_from_unavailable``;
* band: each available rep's workload (count or expected value) within ``±band`` of the mean.
  The band is soft with a penalty far above any fit gain, so settings that cannot be met still give
  the closest division plus a note naming the reps and the cause, never a crash.

Scaling: only groups that must or may move enter the model (groups of away or out-of-band reps,
unowned work, and groups that would gain from a move); each group considers its current owner, its
best-fitting reps and a deterministic spread of others (``policy.candidate_reps``); big models are
solved as an LP relaxation and rounded (assignment LPs are nearly integral); if the solver runs out
of ``policy.time_limit`` without a solution, the greedy :class:`BalancedPolicy` is used instead.

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
    from tasksync.settings import Settings

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from tasksync.crm.records import Rep
from tasksync.policies.balanced import BalancedPolicy, prioritise
from tasksync.policies.base import Decision, Decisions
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.scoring import WinModel, fit_bonus
from tasksync.settings import Settings

__all__ = ["OptimalPolicy", "SolveInfo", "workload_stats"]

LP_THRESHOLD = 150_000  # variables above which the LP relaxation is solved and rounded
_EPS = 1e-9


def workload_stats(loads: Sequence[float]) -> tuple[float, float]:
    """(max/mean, coefficient of variation) of rep workloads; (0, 0) for no load."""
    if not loads:
        return 0.0, 0.0
    arr = np.asarray(loads, dtype=float)
    mean = float(arr.mean())
    if mean <= 0:
        return 0.0, 0.0
    return float(arr.max() / mean), float(arr.std() / mean)


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
    """Scores of every movable group with every available rep, shared by solve and evaluation."""

    reps: list[str]
    groups: list[_Group]
    score: np.ndarray  # (groups, reps): EV × (1 + fit)
    move: np.ndarray  # (groups, reps): move cost of sending the group there
    weight: np.ndarray  # (groups,) band weight
    count: np.ndarray  # (groups,) tasks
    fixed_w: np.ndarray  # (reps,) band load that cannot move
    fixed_n: np.ndarray  # (reps,) tasks that cannot move
    cap: np.ndarray  # (reps,) capacity (inf when none)
    lower: float
    upper: float
    mean: float
    band_penalty: float
    pinned: list[int] = field(default_factory=list)  # group index -> rep index or -1


class OptimalPolicy:
    """Whole-book division by mixed-integer programming; priorities as in the balanced policy."""

    name: ClassVar[str] = "optimal"

    def __init__(self, exact: bool = False) -> None:
        # exact: every group and every rep in one MILP, no time limit, zero gap (for benchmarks).
        self.exact = exact
        self.info = SolveInfo()

    # -- model ---------------------------------------------------------------------------------
    def _model(self, book: Book, settings: Settings, wm: WinModel) -> tuple[_Model, dict[str, str]]:
        p = settings.policy
        avail = sorted(r.id for r in book.available_reps)
        ridx = {r: i for i, r in enumerate(avail)}
        reps: dict[str, Rep] = {r.id: r for r in book.reps}
        by_ev = p.balance_by == "expected_value"
        fixed_w = np.zeros(len(avail))
        fixed_n = np.zeros(len(avail))
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
                if item.locked and item.owner:
                    pins.setdefault(item.group, item.owner)
                continue
            groups.setdefault(item.group, _Group(item.group, [], None)).items.append(item)
        glist = [groups[k] for k in sorted(groups)]
        for g in glist:
            owners = Counter(i.owner for i in g.items if i.owner)
            g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
            g.pinned = pins.get(g.key)
        n_g, n_r = len(glist), len(avail)
        score = np.zeros((n_g, n_r))
        move = np.zeros((n_g, n_r))
        weight = np.zeros(n_g)
        count = np.zeros(n_g)
        rep_objs = [reps[r] for r in avail]
        for gi, g in enumerate(glist):
            for item in g.items:
                base_ev = wm.expected_value(item, None)
                weight[gi] += base_ev if by_ev else 1.0
                count[gi] += 1
                row = np.array([wm.expected_value(item, r.id) * (1 + fit_bonus(item, r, p)) for r in rep_objs])
                score[gi] += row
                if item.owner in ridx:
                    # A weighted Hamming distance: re-running after the plan is applied moves nothing.
                    m = p.move_cost * max(base_ev, 1e-6)
                    move[gi] += m
                    move[gi, ridx[item.owner]] -= m
        total = float(fixed_w.sum() + weight.sum())
        mean = total / n_r if n_r else 0.0
        upper, lower = mean * (1 + p.band), mean * (1 - p.band)
        cap = np.array([float(r.capacity) if r.capacity is not None else math.inf for r in rep_objs])
        if p.rebalance_only:
            # Moving costs more than any fit gain: only what the band needs moves.
            big = 2.0 * float(score.max(initial=0.0)) + 1.0
            for gi, g in enumerate(glist):
                for item in g.items:
                    if item.owner in ridx:
                        move[gi] += big
                        move[gi, ridx[item.owner]] -= big
        net = score - move
        span = float(np.abs(net).max(initial=0.0)) + 1.0
        w_floor = max(float(weight[weight > 0].min(initial=1.0)), 1e-3 * (float(weight.mean()) if n_g else 1.0))
        band_penalty = 4.0 * span / w_floor
        names = {r.id: r.name for r in book.crm.reps}
        model = _Model(
            avail, glist, score, move, weight, count, fixed_w, fixed_n, cap, lower, upper, mean, band_penalty
        )
        model.pinned = [ridx.get(g.pinned, -1) if g.pinned else -1 for g in glist]
        return model, names

    # -- candidate selection (decomposition) -----------------------------------------------------
    def _candidates(self, m: _Model, settings: Settings) -> list[np.ndarray]:
        """Rep indexes each group may go to; [] for groups held fixed at their current owner."""
        n_g, n_r = len(m.groups), len(m.reps)
        ridx = {r: i for i, r in enumerate(m.reps)}
        p = settings.policy
        if self.exact:
            return [
                np.array([m.pinned[gi]]) if m.pinned[gi] >= 0 else np.arange(n_r) for gi in range(n_g)
            ]
        # Current loads if nothing moved (away reps' and unowned work excluded).
        cur_w = m.fixed_w.copy()
        cur_n = m.fixed_n.copy()
        for gi, g in enumerate(m.groups):
            if g.owner in ridx:
                cur_w[ridx[g.owner]] += m.weight[gi]
                cur_n[ridx[g.owner]] += m.count[gi]
        over = (cur_w > m.upper + _EPS) | (cur_n > m.cap)
        under = cur_w < m.lower - _EPS
        above_mean = cur_w > m.mean + _EPS
        k = max(2, min(n_r, p.candidate_reps))
        net = m.score - m.move
        out: list[np.ndarray] = []
        for gi, g in enumerate(m.groups):
            if m.pinned[gi] >= 0:
                out.append(np.array([m.pinned[gi]]))
                continue
            o = ridx.get(g.owner, -1) if g.owner else -1
            if o >= 0:
                must = bool(over[o]) or (bool(under.any()) and bool(above_mean[o]))
                gain = bool(net[gi].max() > net[gi, o] + _EPS)
                if not must and (p.rebalance_only or not gain):
                    out.append(np.array([o]))
                    continue
            if n_r <= k:
                out.append(np.arange(n_r))
                continue
            best = np.argpartition(-net[gi], k - 1)[:k]
            # A deterministic spread so that every rep (also low-fit ones under the band) can receive.
            h = zlib.crc32(g.key.encode())
            spread = [(h + j * 7919) % n_r for j in range(max(2, k // 3))]
            under_idx = np.flatnonzero(under)[: max(2, k // 3)]
            cand = set(best.tolist()) | set(spread) | set(under_idx.tolist())
            if o >= 0:
                cand.add(o)
            out.append(np.array(sorted(cand)))
        return out

    # -- solve -----------------------------------------------------------------------------------
    def _solve(
        self, m: _Model, cands: list[np.ndarray], time_limit: float | None
    ) -> tuple[np.ndarray | None, str, str, int]:
        """Rep index per group (-1 unassigned), method, status, number of variables."""
        n_g, n_r = len(m.groups), len(m.reps)
        choice = np.full(n_g, -1)
        movers = [gi for gi in range(n_g) if len(cands[gi]) > 1]
        # Groups with one candidate are fixed: their load is constant.
        fw = m.fixed_w.copy()
        fn = m.fixed_n.copy()
        for gi in range(n_g):
            if len(cands[gi]) == 1:
                r = int(cands[gi][0])
                choice[gi] = r
                fw[r] += m.weight[gi]
                fn[r] += m.count[gi]
        if not movers:
            return choice, "fixed", "nothing to move", 0
        gi_arr = np.concatenate([np.full(len(cands[g]), j) for j, g in enumerate(movers)])
        ri_arr = np.concatenate([cands[g] for g in movers])
        mg = np.array(movers)[gi_arr]
        n_x = len(gi_arr)
        n_m = len(movers)
        # variables: x (n_x), u (n_m unassigned), s_over (n_r), s_under (n_r)
        n_var = n_x + n_m + 2 * n_r
        net = m.score[mg, ri_arr] - m.move[mg, ri_arr]
        u_pen = 10.0 * (np.abs(m.score[movers]).max(axis=1) + m.band_penalty * m.weight[movers] + 1.0)
        c = np.concatenate([-net, u_pen, np.full(2 * n_r, m.band_penalty)])
        rows, cols, vals = [], [], []
        lb, ub = [], []
        # one rep per group: sum_r x + u = 1
        rows += [gi_arr, np.arange(n_m)]
        cols += [np.arange(n_x), n_x + np.arange(n_m)]
        vals += [np.ones(n_x), np.ones(n_m)]
        lb += [np.ones(n_m)]
        ub += [np.ones(n_m)]
        base = n_m
        # band upper: sum w x - s_over <= upper - fixed ; band lower: sum w x + s_under >= lower - fixed
        w = m.weight[mg]
        rows += [base + ri_arr, base + np.arange(n_r)]
        cols += [np.arange(n_x), n_x + n_m + np.arange(n_r)]
        vals += [w, -np.ones(n_r)]
        lb += [np.full(n_r, -np.inf)]
        ub += [m.upper - fw]
        base += n_r
        rows += [base + ri_arr, base + np.arange(n_r)]
        cols += [np.arange(n_x), n_x + n_m + n_r + np.arange(n_r)]
        vals += [w, np.ones(n_r)]
        lb += [m.lower - fw]
        ub += [np.full(n_r, np.inf)]
        base += n_r
        # capacity (count)
        capped = np.isfinite(m.cap)
        if capped.any():
            cap_row = np.cumsum(capped) - 1
            sel = capped[ri_arr]
            rows += [base + cap_row[ri_arr[sel]]]
            cols += [np.arange(n_x)[sel]]
            vals += [m.count[mg][sel]]
            n_cap = int(capped.sum())
            lb += [np.full(n_cap, -np.inf)]
            ub += [np.maximum(m.cap[capped] - fn[capped], 0.0)]
            base += n_cap
        a = csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(base, n_var))
        cons = LinearConstraint(a, np.concatenate(lb), np.concatenate(ub))
        bounds = Bounds(np.zeros(n_var), np.concatenate([np.ones(n_x + n_m), np.full(2 * n_r, np.inf)]))
        lp = n_var > LP_THRESHOLD and not self.exact
        integrality = np.zeros(n_var)
        if not lp:
            integrality[: n_x + n_m] = 1
        options: dict[str, float | bool] = {"presolve": True}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        options["mip_rel_gap"] = 0.0 if self.exact else 1e-4
        res = milp(c, constraints=cons, integrality=integrality, bounds=bounds, options=options)
        if res.x is None:
            return None, "lp" if lp else "milp", str(res.message), n_var
        x = res.x[:n_x]
        # Round: groups take their largest x; capacity is repaired greedily for fractional groups.
        order = np.lexsort((-x, gi_arr))  # per group, largest x first
        firsts: dict[int, int] = {}
        for pos in order:
            firsts.setdefault(int(gi_arr[pos]), int(pos))
        frac: list[int] = []
        load_n = fn.copy()
        load_w = fw.copy()
        for j in range(n_m):
            pos = firsts[j]
            if x[pos] > 1 - 1e-6:
                r = int(ri_arr[pos])
                choice[movers[j]] = r
                load_n[r] += m.count[movers[j]]
                load_w[r] += m.weight[movers[j]]
            elif res.x[n_x + j] < 0.5 or lp:
                frac.append(j)
        for j in sorted(frac, key=lambda j: -float(m.weight[movers[j]])):
            gidx = movers[j]
            best_r, best_v = -1, -math.inf
            for r in cands[gidx]:
                r = int(r)
                if load_n[r] + m.count[gidx] > m.cap[r]:
                    continue
                v = m.score[gidx, r] - m.move[gidx, r]
                if load_w[r] + m.weight[gidx] > m.upper + _EPS:
                    v -= m.band_penalty * (load_w[r] + m.weight[gidx] - max(m.upper, load_w[r]))
                if v > best_v:
                    best_r, best_v = r, v
            if best_r >= 0:
                choice[gidx] = best_r
                load_n[best_r] += m.count[gidx]
                load_w[best_r] += m.weight[gidx]
        status = "optimal" if res.status == 0 else str(res.message)
        return choice, "lp+rounding" if lp else "milp", status, n_var

    @staticmethod
    def objective(m: _Model, choice: np.ndarray) -> float:
        """The full objective (fit value − move cost − band penalty) of a division."""
        loads = m.fixed_w.copy()
        val = 0.0
        for gi, r in enumerate(choice):
            if r >= 0:
                val += float(m.score[gi, r] - m.move[gi, r])
                loads[r] += m.weight[gi]
        viol = np.maximum(loads - m.upper, 0) + np.maximum(m.lower - loads, 0)
        return val - m.band_penalty * float(viol.sum())

    # -- decide ----------------------------------------------------------------------------------
    def decide(self, book: Book, settings: Settings) -> Decisions:
        t0 = time.perf_counter()
        p = settings.policy
        wm = WinModel.fit(
            book.crm.history,
            book.crm,
            p.smoothing,
            today=book.today,
            stage_order=p.stage_order,
            stage_weight=p.stage_weight,
        )
        out = Decisions()
        self.info = SolveInfo()
        if not book.available_reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
            self.info.method = "none"
            return self._finish(book, settings, wm, out, {}, {})
        m, names = self._model(book, settings, wm)
        out.notes.extend(self._feasibility_notes(book, m, names, settings))
        cands = self._candidates(m, settings)
        limit = None if self.exact else max(p.time_limit - (time.perf_counter() - t0), 0.1)
        choice, method, status, n_var = self._solve(m, cands, limit)
        self.info.method, self.info.status, self.info.variables = method, status, n_var
        self.info.groups = sum(1 for c in cands if len(c) > 1)
        if choice is None:
            out.notes.append(f"the optimiser found no division in {p.time_limit:g} s ({status}): greedy division used")
            greedy = BalancedPolicy().decide(book, settings)
            out.by_key = greedy.by_key
            out.notes.extend(greedy.notes)
            self.info.method = "greedy-fallback"
            self.info.seconds = time.perf_counter() - t0
            return out
        self.info.objective = self.objective(m, choice)
        decided: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        self._explain(book, m, choice, names, settings, decided, reasons, out)
        self.info.moved = sum(
            1 for g in m.groups for i in g.items if decided.get(i.key) is not None and decided[i.key] != i.owner
        )
        out = self._finish(book, settings, wm, out, decided, reasons)
        self.info.seconds = time.perf_counter() - t0
        return out

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

    def _feasibility_notes(self, book: Book, m: _Model, names: dict[str, str], settings: Settings) -> list[str]:
        notes: list[str] = []
        n_r = len(m.reps)
        tasks = float(m.fixed_n.sum() + m.count.sum())
        if np.isfinite(m.cap).all():
            total_cap = float(m.cap.sum())
            if total_cap < tasks:
                notes.append(
                    f"capacity of {n_r} available reps totals {total_cap:.0f} < {tasks:.0f} open tasks: "
                    "some tasks stay with their current owner or unassigned"
                )
        over_fixed = [names.get(r, r) for k, r in enumerate(m.reps) if m.fixed_n[k] > m.cap[k]]
        if over_fixed:
            notes.append(f"locked or unmanaged tasks alone exceed the capacity of: {', '.join(over_fixed)}")
        if np.isfinite(m.cap).any() and settings.policy.balance_by == "count":
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
        cur_w = m.fixed_w.copy()
        cur_n = m.fixed_n.copy()
        for gi, g in enumerate(m.groups):
            if g.owner in ridx:
                cur_w[ridx[g.owner]] += m.weight[gi]
                cur_n[ridx[g.owner]] += m.count[gi]
        loads = m.fixed_w.copy()
        unassigned: list[str] = []
        for gi, g in enumerate(m.groups):
            r = int(choice[gi])
            if r < 0:
                unassigned.append(g.items[0].title)
                continue
            loads[r] += m.weight[gi]
            rep = m.reps[r]
            for item in g.items:
                decided[item.key] = rep
                reasons[item.key] = self._reason(item, g, gi, r, m, cur_w, cur_n, names, reps, settings, ridx)
        if unassigned:
            sample = ", ".join(repr(t) for t in unassigned[:5])
            out.notes.append(
                f"{len(unassigned)} account(s) fit no rep's remaining capacity and keep their owner: {sample}"
            )
        outside = [
            f"{names.get(r, r)} ({loads[k]:.0f})"
            for k, r in enumerate(m.reps)
            if not m.lower - 1e-6 <= loads[k] <= m.upper + 1e-6
        ]
        if outside:
            out.notes.append(
                f"band ±{settings.policy.band:.0%} around {m.mean:.1f} ({m.lower:.1f}..{m.upper:.1f}) not reachable "
                f"for: {', '.join(sorted(outside))} (locked tasks, capacity or account sizes)"
            )

    @staticmethod
    def _reason(
        item: WorkItem,
        g: _Group,
        gi: int,
        r: int,
        m: _Model,
        cur_w: np.ndarray,
        cur_n: np.ndarray,
        names: dict[str, str],
        reps: dict[str, Rep],
        settings: Settings,
        ridx: dict[str, int],
    ) -> str:
        to = m.reps[r]
        who = names.get(to, to)
        if item.owner == to:
            if g.pinned:
                return f"kept with the account's pinned owner {who}"
            return f"kept with {who}"
        fit = _why(item, reps[to], settings)
        if item.owner is None:
            return f"unowned; to {who} ({fit})"
        o = ridx.get(item.owner)
        if o is None:
            return f"{names.get(item.owner, item.owner)} is away; to {who} ({fit})"
        if cur_n[o] > m.cap[o]:
            return f"{names[item.owner]} over capacity ({cur_n[o]:.0f} > {m.cap[o]:.0f}); to {who} ({fit})"
        if cur_w[o] > m.upper + _EPS:
            return f"{names[item.owner]} above the band ({cur_w[o]:.0f} > {m.upper:.0f}); to {who} ({fit})"
        if cur_w[r] < m.lower - _EPS:
            return f"{who} below the band ({cur_w[r]:.0f} < {m.lower:.0f}); from {names[item.owner]}"
        if g.owner != item.owner:
            return f"the account's other tasks are with {who}"
        gain = m.score[gi, r] - m.score[gi, o]
        return f"better fit with {who} ({fit}; +{gain:,.0f} expected value for the account)"


def _why(item: WorkItem, rep: Rep, settings: Settings) -> str:
    parts = []
    p = settings.policy
    if item.sector and item.sector.casefold() in {s.casefold() for s in rep.sectors}:
        parts.append(f"strong in {item.sector}")
    if item.region and rep.region and item.region.casefold() == rep.region.casefold():
        parts.append(f"covers {item.region}")
    if rep.role and p.role_weight and rep.role == ("farmer" if item.existing_customer else "hunter"):
        parts.append(f"{rep.role} for {'a customer' if item.existing_customer else 'a prospect'}")
    if item.account is not None and item.account.owner == rep.id:
        parts.append("owns the account")
    return ", ".join(parts) or "most room"


def loads_by_rep(book: Book, owners: Mapping[str, str | None], weight: Mapping[str, float] | None = None) -> dict[
    str, float
]:
    """Workload per available rep (count, or summed ``weight`` per item key) under ``owners``."""
    out: dict[str, float] = defaultdict(float)
    avail = {r.id for r in book.available_reps}
    for r in avail:
        out[r] = 0.0
    for item in book.items:
        o = owners.get(item.key) or item.owner
        if o in avail:
            out[o] += weight[item.key] if weight is not None else 1.0
    return dict(out)
