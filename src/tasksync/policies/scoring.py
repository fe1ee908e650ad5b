"""Win probability, expected value and priority tiers, learned from closed-deal history.

The win model is a small hierarchy with empirical-Bayes shrinkage: the global win rate, then
per sector (and region), then multiplicative lifts for product and for the rep, each pulled
towards 1 by ``smoothing`` pseudo-deals so that a rep with three deals is not rated 100%.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

import numpy as np

from tasksync.crm.records import ClosedDeal, CrmData, Rep
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.reasons import Reason, ReasonKind
from tasksync.settings import PolicySettings, PrioritySettings

__all__ = ["ItemTerms", "WinModel", "adjustment", "assign_tiers", "fit_bonus", "fit_terms", "prioritise", "tier_notes"]

_K = TypeVar("_K")


@dataclass
class _Rate:
    won: float = 0.0
    n: float = 0.0

    def smoothed(self, prior: float, k: float) -> float:
        return (self.won + k * prior) / (self.n + k)


@dataclass
class WinModel:
    """P(win) for a deal handled by a rep. Fit with :meth:`fit` on closed-deal history."""

    base: float = 0.3
    smoothing: float = 20.0
    sector: dict[str, float] = field(default_factory=dict)
    product: dict[str, float] = field(default_factory=dict)  # lift over the base
    rep: dict[str, float] = field(default_factory=dict)  # lift over the base
    rep_sector: dict[tuple[str, str], float] = field(default_factory=dict)  # lift over rep lift
    # Deal age: lift of P(win | still open at this age) over the base, per age band (lower bound in days),
    # learned from history as a survival estimate; used only when ``today`` is set.
    age: list[tuple[int, float]] = field(default_factory=list)
    today: date | None = None
    # Stage progress (0 earliest .. 1 latest) per CRM stage name (casefolded), with ``stage_weight``.
    stage_progress: dict[str, float] = field(default_factory=dict)
    stage_weight: float = 0.0

    @classmethod
    def fit(
        cls,
        history: Iterable[ClosedDeal],
        crm: CrmData | None = None,
        smoothing: float = 20.0,
        *,
        today: date | None = None,
        stage_order: Sequence[str] = (),
        stage_weight: float = 0.0,
    ) -> WinModel:
        """Fit on closed deals. ``today`` enables the age adjustment for open deals; ``stage_order``
        (earliest first) with ``stage_weight`` raises late-stage deals and lowers early ones."""
        deals = list(history)
        won = [bool(d.won) for d in deals]
        total = _Rate(float(sum(won)), float(len(deals)))
        base = total.smoothed(0.3, 2.0) if total.n else 0.3
        k = smoothing
        accounts = crm.accounts_by_id if crm else {}
        of = [d.sector or (accounts[d.account_id].sector if d.account_id in accounts else None) for d in deals]
        sectors = _rates(of, won)
        products = _rates([d.product for d in deals], won)
        reps = _rates([d.owner for d in deals], won)
        rep_sectors = _rates([(d.owner, s) if d.owner and s else None for d, s in zip(deals, of, strict=True)], won)
        model = cls(base=base, smoothing=k)
        model.sector = {s: r.smoothed(base, k) for s, r in sectors.items()}
        model.product = {p: r.smoothed(base, k) / base for p, r in products.items()}
        model.rep = {p: r.smoothed(base, k) / base for p, r in reps.items()}
        for (rep, sector), r in rep_sectors.items():
            rep_rate = model.rep.get(rep, 1.0) * base
            model.rep_sector[(rep, sector)] = r.smoothed(rep_rate, k) / rep_rate
        model.today = today
        model.age = _age_lifts(deals, base, k)
        if len(stage_order) > 1:
            last = len(stage_order) - 1
            model.stage_progress = {s.casefold(): i / last for i, s in enumerate(stage_order)}
            model.stage_weight = stage_weight
        return model

    def age_lift(self, item: WorkItem) -> float:
        if self.today is None or not self.age or item.created is None:
            return 1.0
        days = (self.today - item.created).days
        lift = 1.0
        for low, f in self.age:
            if days >= low:
                lift = f
        return lift

    def stage_lift(self, item: WorkItem) -> float:
        if not self.stage_weight or item.deal is None:
            return 1.0
        prog = self.stage_progress.get(item.deal.stage.casefold())
        return 1.0 if prog is None else max(0.05, 1.0 + self.stage_weight * (prog - 0.5))

    def probability(self, item: WorkItem, rep: str | None) -> float:
        sector = item.sector
        p = self.sector.get(sector, self.base) if sector else self.base
        if item.deal and item.deal.product:
            p *= self.product.get(item.deal.product, 1.0)
        if rep is not None:
            p *= self.rep.get(rep, 1.0)
            if sector:
                p *= self.rep_sector.get((rep, sector), 1.0)
        p *= self.age_lift(item) * self.stage_lift(item)
        return min(max(p, 0.01), 0.99)

    def expected_value(self, item: WorkItem, rep: str | None) -> float:
        return self.probability(item, rep) * item.value

    def terms(self, items: Sequence[WorkItem]) -> ItemTerms:
        """The parts of :meth:`probability` that do not depend on the rep, for ``items`` at once."""
        sectors = [i.sector for i in items]
        base = [self.sector.get(s, self.base) if s else self.base for s in sectors]
        prod = [self.product.get(i.deal.product, 1.0) if i.deal and i.deal.product else 1.0 for i in items]
        age = np.ones(len(items))
        if self.today is not None and self.age:
            today = self.today
            days = np.array([(today - i.created).days if i.created is not None else 0 for i in items], dtype=np.int64)
            dated = np.array([i.created is not None for i in items], dtype=bool)
            for low, f in self.age:  # the last band reached, as age_lift
                age[dated & (days >= low)] = f
        stage = np.ones(len(items))
        if self.stage_weight:
            stages: dict[str, float] = {}
            for k, i in enumerate(items):
                if i.deal is not None:
                    st = i.deal.stage
                    if st not in stages:
                        stages[st] = self.stage_lift(i)
                    stage[k] = stages[st]
        value = np.array([i.value for i in items], dtype=np.float64)
        return ItemTerms(self, sectors, np.array(base, dtype=np.float64) * np.array(prod), age, stage, value)


@dataclass(frozen=True)
class ItemTerms:
    """Per item of a list, the factors of :meth:`WinModel.probability` that do not depend on the
    rep: :meth:`probabilities` and :meth:`expected_values` give the same floats as the model's
    per-card methods (the same products in the same order), for many (card, rep) pairs at once."""

    model: WinModel
    sectors: list[str | None]
    base: np.ndarray  # the sector's win rate × the product's lift
    age: np.ndarray  # age lift (1 without ``today`` or a creation date)
    stage: np.ndarray  # stage lift
    value: np.ndarray

    def probabilities(self, reps: Sequence[str | None]) -> np.ndarray:
        """P(win) of item k with ``reps[k]`` (None: no rep's lifts)."""
        wm = self.model
        rl = [1.0 if r is None else wm.rep.get(r, 1.0) for r in reps]
        rs = [
            1.0 if r is None or not s else wm.rep_sector.get((r, s), 1.0)
            for r, s in zip(reps, self.sectors, strict=True)
        ]
        p = self.base * np.array(rl, dtype=np.float64) * np.array(rs, dtype=np.float64) * (self.age * self.stage)
        out: np.ndarray = np.minimum(np.maximum(p, 0.01), 0.99)
        return out

    def expected_values(self, reps: Sequence[str | None]) -> np.ndarray:
        """Expected won value of item k with ``reps[k]``."""
        out: np.ndarray = self.probabilities(reps) * self.value
        return out


AGE_BANDS = (0, 30, 60, 90, 180, 365)


def _age_lifts(deals: list[ClosedDeal], base: float, k: float) -> list[tuple[int, float]]:
    """P(win | still open at age a) / base per band: among deals whose cycle lasted at least ``a`` days."""
    cycles = [((d.closed - d.created).days, d.won) for d in deals if d.created is not None]
    if len(cycles) < 2 * k:
        return []
    out = []
    for low in AGE_BANDS:
        n = won = 0
        for days, w in cycles:
            if days >= low:
                n += 1
                won += 1 if w else 0
        out.append((low, _Rate(float(won), float(n)).smoothed(base, k) / base))
    return out


def _rates(keys: Sequence[_K | None], won: Sequence[bool]) -> dict[_K, _Rate]:
    """Per key (None and empty keys skipped, in order of first appearance): its deals and those won."""
    n = Counter(key for key in keys if key)
    w = Counter(key for key, x in zip(keys, won, strict=True) if key and x)
    return {key: _Rate(float(w[key]), float(c)) for key, c in n.items()}


@functools.lru_cache(maxsize=4096)
def _folded(names: tuple[str, ...]) -> frozenset[str]:
    """``names`` casefolded, as a set: a rep's sectors, once per rep instead of once per card."""
    return frozenset(n.casefold() for n in names)


def fit_bonus(item: WorkItem, rep: Rep, settings: PolicySettings) -> float:
    """Share of expected value added for a good match: sector strength, region, role, owner."""
    bonus = 0.0
    if item.sector and item.sector.casefold() in _folded(rep.sectors):
        bonus += settings.sector_weight
    if item.region and rep.region and item.region.casefold() == rep.region.casefold():
        bonus += settings.region_weight
    if rep.role in ("hunter", "farmer"):
        wants = "farmer" if item.existing_customer else "hunter"
        if rep.role == wants:
            bonus += settings.role_weight
    if item.account is not None and item.account.owner == rep.id:
        bonus += settings.continuity_weight
    return bonus


def fit_terms(item: WorkItem, rep: Rep, settings: PolicySettings) -> tuple[str, ...]:
    """Why ``rep`` fits ``item``, as short phrases: the same terms :func:`fit_bonus` weighs."""
    parts = []
    if item.sector and item.sector.casefold() in _folded(rep.sectors):
        parts.append(f"strong in {item.sector}")
    if item.region and rep.region and item.region.casefold() == rep.region.casefold():
        parts.append(f"covers {item.region}")
    if rep.role and settings.role_weight and rep.role == ("farmer" if item.existing_customer else "hunter"):
        parts.append(f"{rep.role} for {'a customer' if item.existing_customer else 'a prospect'}")
    if item.account is not None and item.account.owner == rep.id:
        parts.append("owns the account")
    return tuple(parts)


def adjustment(item: WorkItem, settings: PrioritySettings, today: date) -> tuple[float, str | None]:
    """(factor, label) of the priority adjustment for ``item``: due soon, stale, or none."""
    return _due_soon(item.due, settings, today) or _stale(item.created, settings, today) or (1.0, None)


def _due_soon(due: date | None, settings: PrioritySettings, today: date) -> tuple[float, str] | None:
    """The due-soon adjustment of a card due ``due`` (None: not due soon)."""
    if due is not None and 0 <= (days := (due - today).days) <= settings.due_soon_days:
        return (
            settings.due_soon_factor,
            "due soon: closes today" if days == 0 else f"due soon: closes in {days} day{'' if days == 1 else 's'}",
        )
    return None


def _stale(created: date | None, settings: PrioritySettings, today: date) -> tuple[float, str] | None:
    """The stale adjustment of a card created ``created`` (None: not stale)."""
    if created is not None and (days := (today - created).days) > settings.stale_days:
        return settings.stale_factor, f"stale: {days} days open"
    return None


def _adjustments(items: Iterable[WorkItem], settings: PrioritySettings, today: date) -> list[tuple[float, str | None]]:
    """:func:`adjustment` of each of ``items``, each due date's and creation date's once (a 10k
    book has ~130 due dates and ~400 creation dates)."""
    due: dict[date | None, tuple[float, str] | None] = {}
    stale: dict[date | None, tuple[float, str] | None] = {}
    out: list[tuple[float, str | None]] = []
    for i in items:
        d = due[i.due] if i.due in due else due.setdefault(i.due, _due_soon(i.due, settings, today))
        if d is None:
            c = i.created
            d = stale[c] if c in stale else stale.setdefault(c, _stale(c, settings, today))
        out.append(d or (1.0, None))
    return out


def tier_notes(settings: PrioritySettings) -> list[str]:
    """A warning when ``shares`` does not fit ``tiers`` (one share per tier but the last; a sum
    above 1 is refused when the settings are loaded)."""
    tiers, shares = settings.tiers, settings.shares
    notes = []
    if len(shares) != max(len(tiers) - 1, 0):
        notes.append(
            f"[priority] shares has {len(shares)} value(s) for {len(tiers)} tiers: give one share per tier "
            f"but the last ({max(len(tiers) - 1, 0)}); "
            + (
                "the extra shares are ignored"
                if len(shares) > len(tiers) - 1
                else "the missing tiers get no cards but the last"
            )
        )
    return notes


def assign_tiers(
    scores: Mapping[str, float],
    current: Mapping[str, str | None],
    items: Mapping[str, WorkItem],
    settings: PrioritySettings,
    today: date,
) -> dict[str, tuple[str, str | None]]:
    """Priority tier and adjustment label per item key from its score (expected value).

    The score is adjusted first (× ``due_soon_factor`` for deals closing within ``due_soon_days``,
    × ``stale_factor`` for deals open longer than ``stale_days``), then tiers are cut by rank shares
    (``settings.shares``) of the adjusted scores, so the shares hold whatever the adjustments.
    Hysteresis: a task already in a tier adjacent to its new one keeps it while its adjusted score
    lies within ``hysteresis`` (relative) of the cut between them.
    """
    tiers = settings.tiers
    if not scores or not tiers:
        return {}
    adj = dict(zip(scores, _adjustments([items[k] for k in scores], settings, today), strict=True))
    score = {k: scores[k] * adj[k][0] for k in scores}
    ordered = sorted(score, key=lambda k: (-score[k], k))
    n = len(ordered)
    # Rank cuts: ends[i] is the number of items in tiers 0..i.
    ends: list[int] = []
    acc = 0.0
    for share in settings.shares[: len(tiers) - 1]:
        acc += share
        ends.append(min(n, round(acc * n)))
    cuts = [score[ordered[e - 1]] if e > 0 else math.inf for e in ends]  # lowest score still in tier i
    h = settings.hysteresis
    result: dict[str, tuple[str, str | None]] = {}
    for rank, k in enumerate(ordered):
        tier = bisect.bisect_right(ends, rank)  # the first tier whose end lies beyond the rank (ends ascend)
        cur = current.get(k)
        if cur in tiers:
            ci = tiers.index(cur)
            low = min(ci, tier)
            near = low < len(cuts) and math.isfinite(cuts[low])
            if abs(ci - tier) == 1 and near and abs(score[k] - cuts[low]) <= h * max(abs(cuts[low]), 1e-9):
                tier = ci
        result[k] = (tiers[min(tier, len(tiers) - 1)], adj[k][1])
    return result


def prioritise(
    book: Book, owners: Mapping[str, str | None], settings: PrioritySettings, model: WinModel
) -> dict[str, tuple[str, float, Reason]]:
    """Tier, expected value and the tier's reason for every managed item, given the owner each will
    have: the decided owner, else the current one. A card still to create without a decided owner
    is created with its deal's owner in the CRM when that rep is on the board (its ``owner``), so
    it is scored with them: scored unowned, the re-run after the create scored it anew, moved the
    tier cuts and changed other cards' tiers."""
    managed = {i.key: i for i in book.items if i.managed}
    evs = model.terms(list(managed.values())).expected_values([owners.get(k) or i.owner for k, i in managed.items()])
    scores = dict(zip(managed, evs.tolist(), strict=True))
    tiers = assign_tiers(scores, {k: i.priority for k, i in managed.items()}, managed, settings, book.today)
    return {
        k: (tier, scores[k], Reason(ReasonKind.PRIORITY, figures=(("score", scores[k]),), adjustment=label))
        for k, (tier, label) in tiers.items()
    }
