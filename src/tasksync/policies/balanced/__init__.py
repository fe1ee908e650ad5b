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

Memory and time grow with cards + reps, not cards × reps: a group's expected value and fit with a
rep are computed in numpy blocks when a pass needs them (:mod:`.scores`), the passes work on arrays
(:mod:`.divider`, the value pass in :mod:`.value`), and every search is bounded by a count of
candidates examined, never by the clock. 100,000 cards / 1,000 reps: about 0.3 GiB.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from tasksync.crm.records import Rep
from tasksync.policies.balanced.divider import Divider, Group, Loads
from tasksync.policies.balanced.scores import GroupScores, Scorer
from tasksync.policies.base import Decision, Decisions, Rules
from tasksync.policies.book import Book
from tasksync.policies.explain import Tables, moved_note
from tasksync.policies.reasons import Band, ReasonKind
from tasksync.policies.scoring import WinModel, prioritise, tier_notes
from tasksync.policies.workload import (
    count_band,
    group_key,
    group_order,
    movable,
    value_band,
    value_weights,
)
from tasksync.settings import PolicySettings

__all__ = ["BalancedPolicy", "prioritise"]


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
        groups: list[Group] = []
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
    ) -> tuple[list[Group], dict[str, str | None]]:
        """Divide, then divide again the book as that plan leaves it, until the passes change
        nothing: the division proposed is one the greedy passes keep, so after ``apply`` the next
        plan is empty. Returns today's groups (assigned to their final rep, with why) and the
        final owner per item."""
        weights = value_weights(reps.values(), p)
        current = book
        first: list[Group] = []
        last = Decisions()
        moves: dict[str, str] = {}  # group key -> rep a later pass moved it to
        owners: dict[str, str | None] = {i.key: i.owner for i in book.items}
        # The cards' scores do not depend on the board's owners: every pass shares them.
        scorer = Scorer(book.items, list(reps.values()), model, p)
        for k in range(self.rounds):
            last = Decisions()
            groups, scores, loads = _groups(current, p, model, reps, scorer)
            Divider(reps, groups, scores, loads, weights, p, model, last).run()
            if k == 0:
                first = groups
            changed: dict[str, str] = {}
            for g in groups:
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
        for g in first:
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
                still = (
                    g.kind in (ReasonKind.UNOWNED, ReasonKind.OWNER_LEFT, ReasonKind.REP_AWAY) or moves.get(g.key) != to
                )
                g.kind, g.frm = (g.kind, g.frm) if still else (ReasonKind.REBALANCING, None)
            g.assigned = to
            for i in g.items:
                decided[i.key] = to
        return first, decided


def _with_owners(book: Book, owners: Mapping[str, str]) -> Book:
    """The book as a plan giving ``owners`` would leave it."""
    items = [replace(i, owner=owners[i.key]) if i.key in owners else i for i in book.items]
    return Book(book.reps, book.rep_member, items, book.crm, list(book.notes), book.today, book.policy)


def _groups(
    book: Book, p: PolicySettings, model: WinModel, reps: dict[str, Rep], scorer: Scorer
) -> tuple[list[Group], GroupScores, Loads]:
    """The movable groups of ``book`` (with their cards' scores) and the load that cannot move:
    open cards, pipeline and expected value per available rep."""
    count: Counter[str] = Counter()
    pipe: dict[str, float] = defaultdict(float)  # open pipeline value per rep
    ev: dict[str, float] = defaultdict(float)  # expected value per rep
    groups: dict[str, Group] = {}
    for item in book.items:
        if not movable(item, reps, p):
            if item.owner in reps:
                count[item.owner] += 1
                pipe[item.owner] += item.value
                ev[item.owner] += model.expected_value(item, item.owner)
            if item.pinned and item.owner and item.managed:
                g = groups.setdefault(group_key(item, p), Group(group_key(item, p), [], 0.0, None))
                g.pinned_to = g.pinned_to or item.owner
            continue
        g = groups.setdefault(group_key(item, p), Group(group_key(item, p), [], 0.0, None))
        g.items.append(item)
    for g in list(groups.values()):
        if not g.items:
            del groups[g.key]
            continue
        g.weight = float(len(g.items))
        g.value = sum(i.value for i in g.items)
        first = g.items[0]
        g.order = group_order(first, p)
        owners = Counter(i.owner for i in g.items if i.owner)
        g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
    out = list(groups.values())
    return out, GroupScores(scorer, [g.items for g in out]), Loads(count, pipe, ev)


def _explain(
    book: Book, rules: Rules, model: WinModel, groups: list[Group], decided: dict[str, str | None], out: Decisions
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
    # Owned cards are those on the board: a card to create counts for its deal's CRM owner only in scoring.
    owned = sum(1 for g in groups for i in g.items if i.owner is not None and i.task_id is not None)
    for g in groups:
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
            if i.owner is not None and i.task_id is not None:
                out.moved[kind.value] += 1
    note = moved_note(out.moved, owned)
    if note:
        out.notes.append(note)
