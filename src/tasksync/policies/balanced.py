"""Balanced division: keep owners where the band allows, move as little as the band needs.

Work is divided by account (all tasks of one account go to one rep; ``keep_accounts_together =
false``: card by card). Each rep's open cards are kept within ``±band`` of the mean of available
reps (the greedy policy keeps this one band; the value band is the optimal policy's) and under the
rep's capacity (open tasks, ``Rep.capacity``, and open pipeline value, ``Rep.capacity_value``).
Groups stay with their current owner unless the owner is away, above the band or over a capacity;
the groups that must move, and unowned work, go to the available rep with room who fits best:
expected value with that rep (win rate learned from history) plus bonuses for sector strength,
region, hunter/farmer role and CRM account ownership. A rep left over a capacity (nobody else has
room) gains nothing: accounts that would bring them new tasks stay as they are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

from tasksync.crm.records import Rep
from tasksync.policies.base import Decision, Decisions, Rules
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.explain import Tables, moved_note
from tasksync.policies.reasons import ReasonKind
from tasksync.policies.scoring import WinModel, fit_bonus, prioritise, tier_notes
from tasksync.policies.workload import capacity, count_band, group_key, movable, value_capacity, within_value

__all__ = ["BalancedPolicy", "prioritise"]


@dataclass
class _Group:
    key: str
    items: list[WorkItem]
    weight: float
    owner: str | None  # current majority owner
    value: float = 0.0  # open pipeline (sum of deal values), for value capacity
    pinned_to: str | None = None
    assigned: str | None = None
    kind: ReasonKind = ReasonKind.KEPT  # why it went to ``assigned``
    frm: str | None = None  # the rep it was taken from (above the band, over capacity)
    fits: dict[str, float] = field(default_factory=dict)


class BalancedPolicy:
    """The greedy policy: fair workloads (open cards), best fit, fewest moves."""

    name: ClassVar[str] = "balanced"

    def decide(self, book: Book, rules: Rules) -> Decisions:
        p = rules.policy
        model = WinModel.fit(book.crm.history, book.crm, p.smoothing)
        out = Decisions(notes=[*p.deprecation_notes(), *tier_notes(rules.priority)], model=model)
        reps = {r.id: r for r in book.available_reps}
        if not reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
        count: Counter[str] = Counter()
        pipe: dict[str, float] = defaultdict(float)  # open pipeline value per rep
        groups: dict[str, _Group] = {}
        for item in book.items:
            if not movable(item, reps, p):
                if item.owner in reps:
                    count[item.owner] += 1
                    pipe[item.owner] += item.value
                if item.pinned and item.owner and item.managed:
                    g = groups.setdefault(group_key(item, p), _Group(group_key(item, p), [], 0.0, None))
                    g.pinned_to = g.pinned_to or item.owner
                continue
            g = groups.setdefault(group_key(item, p), _Group(group_key(item, p), [], 0.0, None))
            g.items.append(item)
        for g in list(groups.values()):
            if not g.items:
                del groups[g.key]
                continue
            g.weight = float(len(g.items))
            g.value = sum(i.value for i in g.items)
            owners = Counter(i.owner for i in g.items if i.owner)
            g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
            g.fits = {
                r: sum(model.expected_value(i, r) * (1 + fit_bonus(i, reps[r], p)) for i in g.items) for r in reps
            }
        decided: dict[str, str | None] = {}
        if reps:
            _Divider(reps, groups, count, pipe, p.band, p.keep_current_owner, out).run()
            for g in groups.values():
                for i in g.items:
                    decided[i.key] = g.assigned
        _explain(book, rules, model, groups, decided, out)
        for key, (tier, score, why) in prioritise(book, decided, rules.priority, model).items():
            out.by_key[key] = Decision(
                decided.get(key), tier, score, out.by_key[key].reason if key in out.by_key else None, why
            )
        return out


def _explain(
    book: Book, rules: Rules, model: WinModel, groups: dict[str, _Group], decided: dict[str, str | None], out: Decisions
) -> None:
    """Reasons with the final figures, the bands used, and owned cards moved by cause."""
    band = out.bands.get("count") or count_band(0.0, rules.policy.band)
    tables = Tables(book, model, rules.policy, decided, band, None)
    owned = sum(1 for g in groups.values() for i in g.items if i.owner is not None)
    for g in groups.values():
        for i in g.items:
            to = g.assigned
            if to is None:
                continue
            if i.owner == to:
                kind = ReasonKind.PINNED if g.pinned_to == to else ReasonKind.KEPT
                out.by_key[i.key] = Decision(to, reason=tables.reason(kind, i, None, to))
                continue
            kind = ReasonKind.ACCOUNT_TOGETHER if g.kind is ReasonKind.KEPT else g.kind
            out.by_key[i.key] = Decision(to, reason=tables.reason(kind, i, g.frm or i.owner, to))
            if i.owner is not None:
                out.moved[kind.value] += 1
    note = moved_note(out.moved, owned)
    if note:
        out.notes.append(note)


class _Divider:
    """The greedy passes: keep owners, shed what is above the band or a capacity, place the pool
    by fit, then pull work to reps under the band; a rep left over a capacity gains nothing."""

    def __init__(
        self,
        reps: dict[str, Rep],
        groups: dict[str, _Group],
        count: Counter[str],
        pipe: dict[str, float],
        band: float,
        keep_owner: bool,
        out: Decisions,
    ) -> None:
        self.reps, self.groups, self.count, self.pipe, self.out = reps, groups, count, pipe, out
        self.keep_owner = keep_owner
        total = sum(count.values()) + sum(g.weight for g in groups.values())
        self.band = count_band(total / len(reps), band)
        out.bands["count"] = self.band
        self.cap = {r: capacity(rep) for r, rep in reps.items()}
        self.vcap = {r: value_capacity(rep) for r, rep in reps.items()}

    def fits_capacity(self, r: str, g: _Group) -> bool:
        return self.count[r] + len(g.items) <= self.cap[r] and within_value(self.pipe[r] + g.value, self.vcap[r])

    def room(self, r: str, g: _Group) -> bool:
        return self.count[r] + g.weight <= self.band.upper + 1e-9 and self.fits_capacity(r, g)

    def within(self, r: str) -> bool:
        return self.count[r] <= self.cap[r] and within_value(self.pipe[r], self.vcap[r])

    def give(self, g: _Group, r: str, kind: ReasonKind | None = None) -> None:
        g.assigned = r
        if kind is not None:
            g.kind = kind
        self.count[r] += len(g.items)
        self.pipe[r] += g.value

    def take(self, g: _Group) -> None:
        assert g.assigned is not None
        self.count[g.assigned] -= len(g.items)
        self.pipe[g.assigned] -= g.value
        g.assigned = None

    def stay(self, g: _Group) -> None:
        """``g`` is left unassigned: its tasks stay with their current owners and count there."""
        for i in g.items:
            if i.owner in self.reps:
                self.count[i.owner] += 1
                self.pipe[i.owner] += i.value

    def run(self) -> None:
        pool: list[_Group] = []
        for g in sorted(self.groups.values(), key=lambda g: g.key):
            if g.pinned_to in self.reps:
                self.give(g, g.pinned_to, ReasonKind.PINNED)
            elif g.owner in self.reps and self.keep_owner:
                self.give(g, g.owner, ReasonKind.KEPT)
            else:
                g.kind = ReasonKind.REP_AWAY if g.owner and g.owner not in self.reps else ReasonKind.UNOWNED
                pool.append(g)
        pool += self.shed()
        self.place(pool)
        self.fill()
        self.unload()
        over_value = [
            f"{self.reps[r].name} ({self.pipe[r]:,.0f} > {self.vcap[r]:,.0f})"
            for r in self.reps
            if not within_value(self.pipe[r], self.vcap[r])
        ]
        if over_value:
            self.out.notes.append(
                "still above their value capacity (no other rep has room, or pinned cards): "
                + ", ".join(sorted(over_value))
            )
        b = self.band
        outside = [self.reps[r].name for r in self.reps if not b.lower - 1e-9 <= self.count[r] <= b.upper + 1e-9]
        if outside:
            self.out.notes.append(
                f"band {b.text()} open cards not reachable for: {', '.join(sorted(outside))} "
                "(pinned cards, capacity or account sizes)"
            )

    def shed(self) -> list[_Group]:
        """Over the band (or a capacity): give away the groups that fit their owner least."""
        pool: list[_Group] = []
        upper = self.band.upper
        for r in sorted(self.reps):
            mine = sorted(
                (g for g in self.groups.values() if g.assigned == r and g.pinned_to is None),
                key=lambda g: (g.fits[r] / max(g.weight, 1e-9), g.weight, g.key),
            )
            for g in mine:
                if self.count[r] <= upper + 1e-9 and self.within(r):
                    break
                if self.count[r] > upper + 1e-9 or self.count[r] > self.cap[r]:
                    if any(self.room(o, g) for o in self.reps if o != r):
                        kind = ReasonKind.OVER_CAPACITY if self.count[r] > self.cap[r] else ReasonKind.ABOVE_BAND
                        self.take(g)
                        g.kind, g.frm = kind, r
                        pool.append(g)
                elif any(self.fits_capacity(o, g) for o in self.reps if o != r):
                    self.take(g)
                    g.kind, g.frm = ReasonKind.OVER_VALUE_CAPACITY, r
                    pool.append(g)
        return pool

    def place(self, pool: list[_Group]) -> None:
        """Place the pool, biggest first, with the best-fitting rep that has room."""
        for g in sorted(pool, key=lambda g: (-g.weight, -max(g.fits.values(), default=0), g.key)):
            fits = [r for r in self.reps if self.room(r, g)]
            if fits:
                best = max(fits, key=lambda r: (g.fits[r], -self.count[r], r))
            else:
                spare = [r for r in self.reps if self.fits_capacity(r, g)]
                if not spare:
                    self.out.notes.append(f"no rep has capacity for {g.items[0].title!r}: left unassigned")
                    self.stay(g)
                    continue
                best = min(spare, key=lambda r: (self.count[r], r))
            self.give(g, best)

    def fill(self) -> None:
        """Under the band: pull groups from the most loaded reps."""
        lower, mean = self.band.lower, self.band.mean
        for r in sorted(self.reps, key=lambda r: (self.count[r], r)):
            while self.count[r] < lower - 1e-9:
                donors = [
                    g
                    for g in self.groups.values()
                    if g.assigned
                    and g.assigned != r
                    and g.pinned_to is None
                    and self.count[g.assigned] - g.weight >= lower - 1e-9
                    and self.count[g.assigned] > mean
                    and self.room(r, g)
                ]
                if not donors:
                    break
                g = max(donors, key=lambda g: (self.count[g.assigned or ""], g.fits[r], g.key))
                g.frm = g.assigned
                self.take(g)
                self.give(g, r, ReasonKind.BELOW_BAND)

    def unload(self) -> None:
        """A rep still over a capacity gains nothing: accounts that would bring them tasks they do
        not hold today stay as they are; repeat until no rep over a capacity gains."""
        full: list[str] = []
        changed = True
        while changed:
            changed = False
            for r in sorted(self.reps):
                if self.within(r):
                    continue
                gaining = [g for g in self.groups.values() if g.assigned == r and any(i.owner != r for i in g.items)]
                for g in sorted(gaining, key=lambda g: (-sum(i.owner != r for i in g.items), g.key)):
                    if self.within(r):
                        break
                    self.take(g)
                    full.append(g.items[0].title)
                    changed = True
                    self.stay(g)
        if full:
            self.out.notes.append(
                f"{len(full)} account(s) fit no rep's remaining capacity (tasks or value) and stay as they are "
                f"(current owner or unowned): {', '.join(repr(t) for t in full[:5])}"
            )
