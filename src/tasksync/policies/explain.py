"""Reasons from the final division: one place that turns a cause into a :class:`Reason` whose
figures are the numbers the plan's tables show (open cards and expected value per rep before
and after the plan, the bands, capacities), and the plan's summary of owned cards moved."""

from __future__ import annotations

import copy
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from tasksync.crm.records import Rep
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.reasons import Band, Reason, ReasonKind, weight_text
from tasksync.policies.scoring import WinModel, fit_terms
from tasksync.policies.workload import capacity, value_capacity, value_targets, value_weights
from tasksync.settings import PolicySettings

__all__ = ["Tables", "moved_note"]

_PLAIN = {ReasonKind.KEPT, ReasonKind.PINNED}  # reasons that cite nothing: the card stays
# The kinds whose reason cites the figures of the rep it is about (:meth:`Tables._cite`).
_CITED = {
    ReasonKind.ABOVE_BAND,
    ReasonKind.BELOW_BAND,
    ReasonKind.ABOVE_VALUE_BAND,
    ReasonKind.BELOW_VALUE_BAND,
    ReasonKind.OVER_CAPACITY,
    ReasonKind.OVER_VALUE_CAPACITY,
}
_ABOUT_FROM = {
    ReasonKind.REP_AWAY,
    ReasonKind.OVER_CAPACITY,
    ReasonKind.OVER_VALUE_CAPACITY,
    ReasonKind.ABOVE_BAND,
    ReasonKind.ABOVE_VALUE_BAND,
    ReasonKind.SHARE_FULL,
}


@dataclass
class Tables:
    """Per rep, before and after a division: what the plan's tables show, for reasons to cite."""

    book: Book
    model: WinModel
    policy: PolicySettings
    owners: Mapping[str, str | None]  # item key -> owner after (missing or None: unchanged)
    count: Band
    value: Band | None  # the value band around the mean (None: no value band)
    names: dict[str, str] = field(default_factory=dict)
    # Per available rep: their value target as a multiple of the mean, and their own value band.
    weights: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Band] = field(default_factory=dict)
    reps: dict[str, Rep] = field(default_factory=dict)
    before_n: Counter[str] = field(default_factory=Counter)
    after_n: Counter[str] = field(default_factory=Counter)
    before_ev: dict[str, float] = field(default_factory=dict)
    after_ev: dict[str, float] = field(default_factory=dict)
    before_pipe: dict[str, float] = field(default_factory=dict)
    _fits: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.names = {r.id: r.name for r in self.book.crm.reps}
        self.reps = {r.id: r for r in self.book.reps}
        ev_b: dict[str, float] = defaultdict(float)
        ev_a: dict[str, float] = defaultdict(float)
        pipe: dict[str, float] = defaultdict(float)
        items = self.book.items
        afters = [self.owners.get(i.key) or i.owner for i in items]
        terms = self.model.terms(items)  # every card's expected value before and after at once
        evs_b = terms.expected_values([i.owner for i in items]).tolist()
        evs_a = terms.expected_values(afters).tolist()
        for i, after, e_b, e_a in zip(items, afters, evs_b, evs_a, strict=True):
            if i.owner is not None and i.task_id is not None:  # before: the cards on the board
                self.before_n[i.owner] += 1
                ev_b[i.owner] += e_b
                pipe[i.owner] += i.value
            if after is not None:
                self.after_n[after] += 1
                ev_a[after] += e_a
        self.before_ev, self.after_ev, self.before_pipe = dict(ev_b), dict(ev_a), dict(pipe)
        self._targets()

    def _targets(self) -> None:
        if self.value is not None:
            self.weights = value_weights(self.book.available_reps, self.policy)
            self.targets = value_targets(self.weights, self.value.mean, self.policy.value_band)

    def with_value(self, value: Band | None) -> Tables:
        """These tables with the value band ``value``: the same as building them again with it
        (the per-rep figures do not depend on the band), without going over the book again."""
        out = copy.copy(self)
        out.value, out.weights, out.targets = value, {}, {}
        out._targets()
        return out

    def value_of(self, rep: str) -> Band | None:
        """``rep``'s value band: around their own target (``value_target``), else the team's."""
        return self.targets.get(rep, self.value)

    def target_text(self, rep: str) -> str:
        """What ``rep``'s value target is, for notes: "" with ``value_target = "mean"``."""
        if self.policy.value_target != "quota" or rep not in self.weights:
            return ""
        return f"target: {weight_text(self.weights[rep])} team mean quota"

    def name(self, rep: str | None) -> str | None:
        return None if rep is None else self.names.get(rep, rep)

    def reason(
        self,
        kind: ReasonKind,
        item: WorkItem,
        frm: str | None,
        to: str | None,
        known: tuple[float, float, float] | None = None,
    ) -> Reason:
        """The reason of ``kind`` for ``item`` moving from ``frm`` to ``to``, citing final figures;
        ``known``: the card's win rate and expected value with ``to`` and its expected value with
        ``frm``, computed already (:meth:`.WinModel.terms` for many cards at once)."""
        if kind in _PLAIN:  # no figures, no fit terms
            return Reason(kind, self.name(frm), self.name(to))
        figs: list[tuple[str, float]] = []
        about = frm if kind in _ABOUT_FROM else to
        if about is not None and kind in _CITED:
            self._cite(kind, about, figs)
        fit: tuple[str, ...] = ()
        if to is not None and kind is not ReasonKind.ACCOUNT_TOGETHER:
            fit = self._fit_terms(item, to)
            ev_frm: float | None = None
            if known is not None:
                win, ev_to, ev_frm = known
            else:
                win, ev_to = self.model.probability(item, to), self.model.expected_value(item, to)
            figs.append(("win_rate", win))
            figs.append(("expected_value", ev_to))
            if kind not in (ReasonKind.BELOW_BAND, ReasonKind.BELOW_VALUE_BAND) and math.isfinite(self.count.upper):
                figs.append(("room", max(self.count.upper - self.after_n[to], 0.0)))
            if kind is ReasonKind.BETTER_FIT and frm is not None:
                if ev_frm is None:
                    ev_frm = self.model.expected_value(item, frm)
                figs.append(("gain", ev_to - ev_frm))
        return Reason(kind, self.name(frm), self.name(to), tuple(figs), fit)

    def _fit_terms(self, item: WorkItem, to: str) -> tuple[str, ...]:
        """:func:`.fit_terms` of ``item`` with rep ``to`` (none for a rep not on the board), once
        per (account, rep): they depend on the card's account alone (its sector, region, customer
        flag and owner; no account: none of them)."""
        key = (id(item.account), to)
        fit = self._fits.get(key)
        if fit is None:
            rep = self.reps.get(to)
            fit = self._fits[key] = fit_terms(item, rep, self.policy) if rep is not None else ()
        return fit

    def _cite(self, kind: ReasonKind, rep: str, figs: list[tuple[str, float]]) -> None:
        if kind in (ReasonKind.ABOVE_BAND, ReasonKind.BELOW_BAND):
            figs += [
                ("before", float(self.before_n[rep])),
                ("lower", self.count.lower),
                ("upper", self.count.upper),
                ("after", float(self.after_n[rep])),
            ]
        elif kind in (ReasonKind.ABOVE_VALUE_BAND, ReasonKind.BELOW_VALUE_BAND) and self.value is not None:
            band = self.value_of(rep) or self.value
            figs += [
                ("ev_before", self.before_ev.get(rep, 0.0)),
                ("ev_lower", band.lower),
                ("ev_upper", band.upper),
                ("ev_after", self.after_ev.get(rep, 0.0)),
            ]
            if self.policy.value_target == "quota" and rep in self.weights:
                figs.append(("target", self.weights[rep]))
        elif kind is ReasonKind.OVER_CAPACITY and rep in self.reps:
            figs += [("before", float(self.before_n[rep])), ("capacity", capacity(self.reps[rep]))]
        elif kind is ReasonKind.OVER_VALUE_CAPACITY and rep in self.reps:
            figs += [("pipeline", self.before_pipe.get(rep, 0.0)), ("capacity_value", value_capacity(self.reps[rep]))]


_CAUSE_ORDER = [k.value for k in ReasonKind]


def moved_note(moved: Counter[str], owned: int) -> str | None:
    """The plan's summary line: owned cards moved, by cause (``moved`` counts per ReasonKind value)."""
    total = sum(moved.values())
    if not owned:
        return None
    parts = ", ".join(f"{kind} {moved[kind]}" for kind in sorted(moved, key=_CAUSE_ORDER.index) if moved[kind])
    return f"owned cards moved: {total} of {owned}" + (f" ({parts})" if parts else "")
