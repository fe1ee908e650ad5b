"""Balanced division: keep owners where the bands allow, move as little as the bands need.

Work is divided by account (all tasks of one account go to one rep; ``keep_accounts_together =
false``: card by card). Each rep's open cards are kept within ``±band`` of the mean of available
reps and under the rep's capacity (open tasks, ``Rep.capacity``, and open pipeline value,
``Rep.capacity_value``); then, with ``value_band``, single moves that keep both reps within the
count band and their capacities bring expected value towards each rep's value target (the mean, or
their share of the team's quota with ``value_target = "quota"``). Groups stay with their current
owner unless the owner is away, above the band or over a capacity; the groups that must move, and
unowned work, go to the available rep with room who fits best: expected value with that rep (win
rate learned from history) plus bonuses for sector strength, region, hunter/farmer role and CRM
account ownership. A rep left over a capacity (nobody else has room) gains nothing: accounts that
would bring them new tasks stay as they are.

The greedy passes are run again on the book as the plan leaves it until they change nothing, and
that division is proposed: a plan that was applied leaves nothing to do (it settles).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

from tasksync.crm.records import Rep
from tasksync.policies.base import Decision, Decisions, Rules
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.explain import Tables, moved_note
from tasksync.policies.reasons import Band, ReasonKind
from tasksync.policies.scoring import WinModel, fit_bonus, prioritise, tier_notes
from tasksync.policies.workload import (
    capacity,
    count_band,
    group_key,
    movable,
    value_band,
    value_capacity,
    value_targets,
    value_weights,
    within_value,
)
from tasksync.settings import PolicySettings

__all__ = ["BalancedPolicy", "prioritise"]


@dataclass
class _Group:
    key: str
    items: list[WorkItem]
    weight: float
    owner: str | None  # current majority owner
    value: float = 0.0  # open pipeline (sum of deal values), for value capacity
    # Sorting key that an apply does not change (a new card's key becomes a task id; its deal stays).
    order: str = ""
    ev: dict[str, float] = field(default_factory=dict)  # expected value with each available rep
    own_ev: list[float] = field(default_factory=list)  # per item: expected value with its current owner
    pinned_to: str | None = None
    assigned: str | None = None
    kind: ReasonKind = ReasonKind.KEPT  # why it went to ``assigned``
    frm: str | None = None  # the rep it was taken from (above the band, over capacity)
    fits: dict[str, float] = field(default_factory=dict)


class BalancedPolicy:
    """The greedy policy: fair workloads (open cards, then expected value), best fit, fewest moves."""

    name: ClassVar[str] = "balanced"
    rounds: ClassVar[int] = 8  # greedy passes on the book as the plan leaves it, until nothing moves

    def decide(self, book: Book, rules: Rules) -> Decisions:
        p = rules.policy
        model = WinModel.fit(book.crm.history, book.crm, p.smoothing)
        out = Decisions(notes=[*p.deprecation_notes(), *tier_notes(rules.priority)], model=model)
        reps = {r.id: r for r in book.available_reps}
        if not reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
        groups: dict[str, _Group] = {}
        decided: dict[str, str | None] = {}
        if reps:
            groups, decided = self.settle(book, p, model, reps, out)
        _explain(book, rules, model, groups, decided, out)
        for key, (tier, score, why) in prioritise(book, decided, rules.priority, model).items():
            out.by_key[key] = Decision(
                decided.get(key), tier, score, out.by_key[key].reason if key in out.by_key else None, why
            )
        return out

    def settle(
        self, book: Book, p: PolicySettings, model: WinModel, reps: dict[str, Rep], out: Decisions
    ) -> tuple[dict[str, _Group], dict[str, str | None]]:
        """Divide, then divide again the book as that plan leaves it, until the passes change
        nothing: the division proposed is one the greedy passes keep, so after ``apply`` the next
        plan is empty. Returns today's groups (assigned to their final rep, with why) and the
        final owner per item."""
        weights = value_weights(reps.values(), p)
        current = book
        first: dict[str, _Group] = {}
        last = Decisions()
        moves: dict[str, str] = {}  # group key -> rep a later pass moved it to
        owners: dict[str, str | None] = {i.key: i.owner for i in book.items}
        cache: dict[str, _Scores] = {}
        for k in range(self.rounds):
            last = Decisions()
            groups, count, pipe, ev = _groups(current, p, model, reps, cache)
            _Divider(reps, groups, count, pipe, ev, weights, p, last).run()
            if k == 0:
                first = groups
            changed: dict[str, str] = {}
            for g in groups.values():
                if g.assigned is not None and any(i.owner != g.assigned for i in g.items):
                    changed.update((i.key, g.assigned) for i in g.items)
                    if k > 0:
                        moves[g.key] = g.assigned
            if not changed:
                break
            owners.update(changed)
            current = _with_owners(current, changed)
        else:
            last.notes.append(
                f"the greedy division still changed after {self.rounds} passes: a re-run may move a few more cards"
            )
        out.notes.extend(last.notes)
        out.bands.update(last.bands)
        decided: dict[str, str | None] = {}
        for g in first.values():
            final = {owners[i.key] for i in g.items}
            to = next(iter(final)) if len(final) == 1 else None
            if to not in reps:
                g.assigned = None
                for i in g.items:
                    if i.task_id is None and owners[i.key] in reps:
                        # a card to create that no pass placed: it gets its CRM owner, where the
                        # passes counted it (without an owner it would be created unowned)
                        decided[i.key] = owners[i.key]
                continue
            if g.assigned != to:
                # Moved there by a later pass (the bands or capacities as the first pass left them).
                still = g.kind in (ReasonKind.UNOWNED, ReasonKind.REP_AWAY) or moves.get(g.key) != to
                g.kind, g.frm = (g.kind, g.frm) if still else (ReasonKind.REBALANCING, None)
            g.assigned = to
            for i in g.items:
                decided[i.key] = to
        return first, decided


def _with_owners(book: Book, owners: Mapping[str, str]) -> Book:
    """The book as a plan giving ``owners`` would leave it."""
    items = [replace(i, owner=owners[i.key]) if i.key in owners else i for i in book.items]
    return Book(book.reps, book.rep_member, items, book.crm, list(book.notes), book.today, book.policy)


_Scores = tuple[list[float], list[float]]


def _scores(
    item: WorkItem, reps: dict[str, Rep], p: PolicySettings, model: WinModel, cache: dict[str, _Scores]
) -> _Scores:
    """Per available rep (in ``reps`` order): the item's expected value and fit-weighted expected
    value with them. Neither depends on the board's owner, so passes share them."""
    if item.key not in cache:
        evs = [model.expected_value(item, r) for r in reps]
        cache[item.key] = (evs, [e * (1 + fit_bonus(item, rep, p)) for e, rep in zip(evs, reps.values(), strict=True)])
    return cache[item.key]


def _groups(
    book: Book, p: PolicySettings, model: WinModel, reps: dict[str, Rep], cache: dict[str, _Scores]
) -> tuple[dict[str, _Group], Counter[str], dict[str, float], dict[str, float]]:
    """The movable groups of ``book`` and the load that cannot move: open cards, pipeline and
    expected value per available rep."""
    count: Counter[str] = Counter()
    pipe: dict[str, float] = defaultdict(float)  # open pipeline value per rep
    ev: dict[str, float] = defaultdict(float)  # expected value per rep
    groups: dict[str, _Group] = {}
    for item in book.items:
        if not movable(item, reps, p):
            if item.owner in reps:
                count[item.owner] += 1
                pipe[item.owner] += item.value
                ev[item.owner] += model.expected_value(item, item.owner)
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
        first = g.items[0]
        g.order = g.key if p.keep_accounts_together else f"item:{first.deal.id if first.deal else first.key}"
        owners = Counter(i.owner for i in g.items if i.owner)
        g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
        per_item = [_scores(i, reps, p, model, cache) for i in g.items]
        for k, r in enumerate(reps):
            g.ev[r] = sum(s[0][k] for s in per_item)
            g.fits[r] = sum(s[1][k] for s in per_item)
        g.own_ev = [model.expected_value(i, i.owner) if i.owner in reps else 0.0 for i in g.items]
    return groups, count, pipe, ev


def _explain(
    book: Book, rules: Rules, model: WinModel, groups: dict[str, _Group], decided: dict[str, str | None], out: Decisions
) -> None:
    """Reasons with the final figures, the bands used, reps outside their value band, and owned
    cards moved by cause."""
    p = rules.policy
    band = out.bands.get("count") or count_band(0.0, p.band)
    value: Band | None = None
    avail = [r.id for r in book.available_reps]
    if p.value_band and avail:
        probe = Tables(book, model, p, decided, band, None)
        value = value_band(sum(probe.after_ev.get(r, 0.0) for r in avail) / len(avail), p.value_band)
        out.bands["value"] = value
    tables = Tables(book, model, p, decided, band, value)
    out.value_targets = dict(tables.targets)
    outside = []
    for r in book.available_reps:
        own = tables.value_of(r.id)
        e = tables.after_ev.get(r.id, 0.0)
        if own is None or own.lower - 1e-6 * max(own.mean, 1.0) <= e <= own.upper + 1e-6 * max(own.mean, 1.0):
            continue
        side = "above" if e > own.upper else "below"
        target = tables.target_text(r.id)
        outside.append(f"{r.name} ({e:,.0f} {side} the band {own.text(money=True)}{'; ' + target if target else ''})")
    if outside:
        out.notes.append(
            f"value band not met for: {', '.join(sorted(outside))}; the nearest division the greedy passes "
            "find within the count band and capacities is kept"
        )
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
    by fit, pull work to reps under the band, bring expected value into the value band by moves
    the count band and capacities allow; a rep left over a capacity gains nothing."""

    def __init__(
        self,
        reps: dict[str, Rep],
        groups: dict[str, _Group],
        count: Counter[str],
        pipe: dict[str, float],
        ev: dict[str, float],
        weights: Mapping[str, float],
        policy: PolicySettings,
        out: Decisions,
    ) -> None:
        self.reps, self.groups, self.count, self.pipe, self.ev, self.out = reps, groups, count, pipe, ev, out
        self.weights, self.value_ratio = weights, policy.value_band
        self.keep_owner = policy.keep_current_owner
        total = sum(count.values()) + sum(g.weight for g in groups.values())
        self.band = count_band(total / len(reps), policy.band)
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
        self.ev[r] += g.ev[r]

    def take(self, g: _Group) -> None:
        assert g.assigned is not None
        self.count[g.assigned] -= len(g.items)
        self.pipe[g.assigned] -= g.value
        self.ev[g.assigned] -= g.ev[g.assigned]
        g.assigned = None

    def stay(self, g: _Group) -> None:
        """``g`` is left unassigned: its tasks stay with their current owners and count there."""
        for i, e in zip(g.items, g.own_ev, strict=True):
            if i.owner in self.reps:
                self.count[i.owner] += 1
                self.pipe[i.owner] += i.value
                self.ev[i.owner] += e

    def run(self) -> None:
        pool: list[_Group] = []
        for g in sorted(self.groups.values(), key=lambda g: g.order):
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
        if self.value_ratio:
            self.balance_value()
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
                key=lambda g: (g.fits[r] / max(g.weight, 1e-9), g.weight, g.order),
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
        for g in sorted(pool, key=lambda g: (-g.weight, -max(g.fits.values(), default=0), g.order)):
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
                g = max(donors, key=lambda g: (self.count[g.assigned or ""], g.fits[r], g.order))
                g.frm = g.assigned
                self.take(g)
                self.give(g, r, ReasonKind.BELOW_BAND)

    def value_bands(self) -> dict[str, Band]:
        """Each rep's value band around their target, from today's mean expected value."""
        mean = sum(self.ev[r] for r in self.reps) / len(self.reps)
        return value_targets(self.weights, mean, self.value_ratio)

    def balance_value(self, budget: int = 1_000_000) -> None:
        """Reps outside their value band, the furthest first: the single move into or out of that
        rep (from a rep above their target, or to one below it) that most lowers the expected value
        outside the bands while both reps stay within the count band and capacities, else the best
        exchange of two groups (at most 50,000 pairs examined per rep); a rep nothing helps is left
        as it is. Stops when every rep is within their band, nothing helps, or after ``budget``
        candidates examined (a work limit, never the clock: the same result on any machine)."""
        stuck: set[str] = set()
        by_rep: dict[str, list[_Group]] = defaultdict(list)
        for g in sorted(self.groups.values(), key=lambda g: g.order):
            if g.assigned is not None and g.pinned_to is None:
                by_rep[g.assigned].append(g)
        work = 0
        while work < budget:
            bands = self.value_bands()
            off = {r: _outside(self.ev[r], bands[r]) for r in self.reps if r not in stuck}
            off = {r: x for r, x in off.items() if x > 1e-6 * max(bands[r].mean, 1.0)}
            if not off:
                return
            r = max(off, key=lambda k: (off[k] / max(bands[k].mean, 1.0), k))
            high = self.ev[r] > bands[r].upper
            if high:
                pairs = [(g, r, b) for g in by_rep[r] for b in self.reps if b != r and self.ev[b] < bands[b].mean]
            else:
                pairs = [(g, a, r) for a in self.reps if a != r and self.ev[a] > bands[a].mean for g in by_rep[a]]
            work += len(pairs)
            move = self.best_move(pairs, bands)
            if move is not None:
                g, a, b = move
                self.shift(by_rep, g, a, b, ReasonKind.ABOVE_VALUE_BAND if high else ReasonKind.BELOW_VALUE_BAND)
                continue
            partners = [b for b in self.reps if b != r and (self.ev[b] < bands[b].mean) == high]
            swap, seen = self.best_swap(r, partners, by_rep, bands, min(budget - work, 50_000))
            work += seen
            if swap is None:
                stuck.add(r)
                continue
            g, h = swap
            a, b = r, h.assigned or ""
            if not high:
                g, h, a, b = h, g, b, r
            self.shift(by_rep, g, a, b, ReasonKind.ABOVE_VALUE_BAND if high else ReasonKind.BELOW_VALUE_BAND)
            self.shift(by_rep, h, b, a, ReasonKind.REBALANCING)

    def shift(self, by_rep: dict[str, list[_Group]], g: _Group, a: str, b: str, kind: ReasonKind) -> None:
        """Move ``g`` from ``a`` to ``b`` for ``kind``."""
        self.take(g)
        g.frm = a
        self.give(g, b, kind)
        by_rep[a].remove(g)
        by_rep[b].append(g)

    def best_move(self, pairs: list[tuple[_Group, str, str]], bands: dict[str, Band]) -> tuple[_Group, str, str] | None:
        """Of the moves (group, from, to), the one that most lowers the expected value outside the
        bands with both reps within the count band and capacities."""
        lower, upper = self.band.lower, self.band.upper
        best: tuple[float, float, str, str] | None = None
        pick: tuple[_Group, str, str] | None = None
        for g, a, b in pairs:
            if self.count[a] - g.weight < lower - 1e-9 or self.count[b] + g.weight > upper + 1e-9:
                continue
            drop = (
                _outside(self.ev[a], bands[a])
                + _outside(self.ev[b], bands[b])
                - _outside(self.ev[a] - g.ev[a], bands[a])
                - _outside(self.ev[b] + g.ev[b], bands[b])
            )
            if drop <= 1e-6 * max(bands[b].mean, 1.0) or not self.fits_capacity(b, g):
                continue
            key = (drop, g.fits[b] - g.fits[a], g.order, b)
            if best is None or key > best:
                best, pick = key, (g, a, b)
        return pick

    def best_swap(
        self, r: str, partners: list[str], by_rep: dict[str, list[_Group]], bands: dict[str, Band], budget: int
    ) -> tuple[tuple[_Group, _Group] | None, int]:
        """The exchange of a group of ``r`` for a group of a partner that most lowers the expected
        value outside the bands, both reps staying within the count band and capacities: what
        single moves cannot do when reps sit at the edge of the count band. Returns it (``r``'s
        group first) and the pairs examined, at most ``budget``."""
        lower, upper = self.band.lower, self.band.upper
        best: tuple[float, float, str, str] | None = None
        pick: tuple[_Group, _Group] | None = None
        seen = 0
        for b in partners:
            for g in by_rep[r]:
                for h in by_rep[b]:
                    seen += 1
                    if seen > budget:
                        return pick, seen
                    dn = g.weight - h.weight
                    na, nb = self.count[r] - dn, self.count[b] + dn
                    if not (lower - 1e-9 <= na <= upper + 1e-9 and lower - 1e-9 <= nb <= upper + 1e-9):
                        continue
                    ea = self.ev[r] - g.ev[r] + h.ev[r]
                    eb = self.ev[b] - h.ev[b] + g.ev[b]
                    drop = (
                        _outside(self.ev[r], bands[r])
                        + _outside(self.ev[b], bands[b])
                        - _outside(ea, bands[r])
                        - _outside(eb, bands[b])
                    )
                    if drop <= 1e-6 * max(bands[b].mean, 1.0) or na > self.cap[r] or nb > self.cap[b]:
                        continue
                    dv = g.value - h.value
                    if not within_value(self.pipe[r] - dv, self.vcap[r]) or not within_value(
                        self.pipe[b] + dv, self.vcap[b]
                    ):
                        continue
                    key = (drop, g.fits[b] + h.fits[r] - g.fits[r] - h.fits[b], g.order, h.order)
                    if best is None or key > best:
                        best, pick = key, (g, h)
        return pick, seen

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
                for g in sorted(gaining, key=lambda g: (-sum(i.owner != r for i in g.items), g.order)):
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


def _outside(x: float, band: Band) -> float:
    """How far ``x`` is outside ``band``."""
    return max(x - band.upper, 0.0) + max(band.lower - x, 0.0)
