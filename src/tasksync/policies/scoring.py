"""Win probability, expected value and priority tiers, learned from closed-deal history.

The win model is a small hierarchy with empirical-Bayes shrinkage: the global win rate, then
per sector (and region), then multiplicative lifts for product and for the rep, each pulled
towards 1 by ``smoothing`` pseudo-deals so that a rep with three deals is not rated 100%.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from tasksync.crm.records import ClosedDeal, CrmData, Rep
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.reasons import Reason, ReasonKind
from tasksync.settings import PolicySettings, PrioritySettings

__all__ = ["ItemTerms", "WinModel", "adjustment", "assign_tiers", "fit_bonus", "fit_terms", "prioritise", "tier_notes"]


@dataclass
class _Rate:
    won: float = 0.0
    n: float = 0.0

    def add(self, won: bool) -> None:
        self.n += 1
        self.won += 1.0 if won else 0.0

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
        total = _Rate()
        for d in deals:
            total.add(d.won)
        base = total.smoothed(0.3, 2.0) if total.n else 0.3
        k = smoothing
        accounts = crm.accounts_by_id if crm else {}
        sectors: dict[str, _Rate] = defaultdict(_Rate)
        products: dict[str, _Rate] = defaultdict(_Rate)
        reps: dict[str, _Rate] = defaultdict(_Rate)
        rep_sectors: dict[tuple[str, str], _Rate] = defaultdict(_Rate)
        for d in deals:
            sector = d.sector or (accounts[d.account_id].sector if d.account_id in accounts else None)
            if sector:
                sectors[sector].add(d.won)
            if d.product:
                products[d.product].add(d.won)
            if d.owner:
                reps[d.owner].add(d.won)
                if sector:
                    rep_sectors[(d.owner, sector)].add(d.won)
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
        r = _Rate()
        for days, won in cycles:
            if days >= low:
                r.add(won)
        out.append((low, r.smoothed(base, k) / base))
    return out


def fit_bonus(item: WorkItem, rep: Rep, settings: PolicySettings) -> float:
    """Share of expected value added for a good match: sector strength, region, role, owner."""
    bonus = 0.0
    if item.sector and item.sector.casefold() in {s.casefold() for s in rep.sectors}:
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
    if item.sector and item.sector.casefold() in {s.casefold() for s in rep.sectors}:
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
    if item.due is not None and 0 <= (days := (item.due - today).days) <= settings.due_soon_days:
        return (
            settings.due_soon_factor,
            "due soon: closes today" if days == 0 else f"due soon: closes in {days} day{'' if days == 1 else 's'}",
        )
    if item.created is not None and (days := (today - item.created).days) > settings.stale_days:
        return settings.stale_factor, f"stale: {days} days open"
    return 1.0, None


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
    adj = {k: adjustment(items[k], settings, today) for k in scores}
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
