"""Balanced division: keep owners where the band allows, move as little as the band needs.

Work is divided by account (all tasks of one account go to one rep). Each rep's workload (task
count or expected value) is kept within ``±band`` of the mean of available reps and under the
rep's capacity (open tasks, ``Rep.capacity``, and open pipeline value, ``Rep.capacity_value``).
Groups stay with their current owner unless the owner is away, above the band or over a capacity;
the groups that must move, and unowned work, go to the available rep with room who fits best:
expected value with that rep (win rate learned from history) plus bonuses for sector strength,
region, hunter/farmer role and CRM account ownership. A rep left over a capacity (nobody else has
room) gains nothing: accounts that would bring them new tasks stay as they are.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

from tasksync.policies.base import Decision, Decisions
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.scoring import WinModel, assign_tiers, fit_bonus, fit_reasons
from tasksync.settings import Settings

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
    reason: str = ""
    fits: dict[str, float] = field(default_factory=dict)


def prioritise(
    book: Book, owners: dict[str, str | None], settings: Settings, model: WinModel
) -> dict[str, tuple[str, float]]:
    """Tier and expected value for every managed item, given the owner each will have."""
    managed = {i.key: i for i in book.items if i.managed}
    scores = {k: model.expected_value(i, owners.get(k, i.owner)) for k, i in managed.items()}
    tiers = assign_tiers(scores, {k: i.priority for k, i in managed.items()}, managed, settings.priority, book.today)
    return {k: (tiers[k], scores[k]) for k in tiers}


class BalancedPolicy:
    """The default policy: fair workloads, best fit, fewest moves."""

    name: ClassVar[str] = "balanced"

    def decide(self, book: Book, settings: Settings) -> Decisions:
        p = settings.policy
        model = WinModel.fit(book.crm.history, book.crm, p.smoothing)
        out = Decisions(model=model)
        reps = {r.id: r for r in book.available_reps}
        names = {r.id: r.name for r in book.crm.reps}
        if not reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
        by_ev = p.balance_by == "expected_value"

        def weight(item: WorkItem, rep: str | None = None) -> float:
            return model.expected_value(item, rep) if by_ev else 1.0

        load: dict[str, float] = defaultdict(float)
        count: Counter[str] = Counter()
        pipe: dict[str, float] = defaultdict(float)  # open pipeline value per rep
        groups: dict[str, _Group] = {}
        for item in book.items:
            movable = item.managed and not item.locked
            if not movable or (item.owner is not None and item.owner not in reps and not p.move_from_unavailable):
                if item.owner in reps:
                    load[item.owner] += weight(item, item.owner)
                    count[item.owner] += 1
                    pipe[item.owner] += item.value
                if item.locked and item.owner:
                    g = groups.setdefault(item.group, _Group(item.group, [], 0.0, None))
                    g.pinned_to = g.pinned_to or item.owner
                continue
            g = groups.setdefault(item.group, _Group(item.group, [], 0.0, None))
            g.items.append(item)
        for g in list(groups.values()):
            if not g.items:
                del groups[g.key]
                continue
            g.weight = sum(weight(i) for i in g.items)
            g.value = sum(i.value for i in g.items)
            owners = Counter(i.owner for i in g.items if i.owner)
            g.owner = min(owners, key=lambda o: (-owners[o], o)) if owners else None
            g.fits = {
                r: sum(model.expected_value(i, r) * (1 + fit_bonus(i, reps[r], p)) for i in g.items) for r in reps
            }

        if reps:
            total = sum(load.values()) + sum(g.weight for g in groups.values())
            mean = total / len(reps)
            upper, lower = mean * (1 + p.band), mean * (1 - p.band)
            cap = {r: rep.capacity if rep.capacity is not None else 10**9 for r, rep in reps.items()}
            vcap = {r: rep.capacity_value if rep.capacity_value is not None else math.inf for r, rep in reps.items()}

            def within_value(r: str, extra: float = 0.0) -> bool:
                return pipe[r] + extra <= vcap[r] + 1e-9 * (vcap[r] if math.isfinite(vcap[r]) else 0.0) + 1e-6

            def capacity_for(r: str, g: _Group) -> bool:
                return count[r] + len(g.items) <= cap[r] and within_value(r, g.value)

            def room(r: str, g: _Group) -> bool:
                return load[r] + g.weight <= upper + 1e-9 and capacity_for(r, g)

            def give(g: _Group, r: str, reason: str) -> None:
                g.assigned, g.reason = r, reason
                load[r] += g.weight
                count[r] += len(g.items)
                pipe[r] += g.value

            def take(g: _Group) -> None:
                assert g.assigned is not None
                load[g.assigned] -= g.weight
                count[g.assigned] -= len(g.items)
                pipe[g.assigned] -= g.value
                g.assigned = None

            def stay(g: _Group) -> None:
                """``g`` is left unassigned: its tasks stay with their current owners and count there."""
                for i in g.items:
                    if i.owner in reps:
                        load[i.owner] += weight(i)
                        count[i.owner] += 1
                        pipe[i.owner] += i.value

            pool: list[_Group] = []
            for g in sorted(groups.values(), key=lambda g: g.key):
                if g.pinned_to in reps:
                    give(g, g.pinned_to, "kept with the account's pinned owner")
                elif g.owner in reps and p.keep_current_owner:
                    give(g, g.owner, f"the account's other tasks are with {names[g.owner]}")
                else:
                    g.reason = (
                        f"{names.get(g.owner, g.owner)} is away" if g.owner and g.owner not in reps else "unowned"
                    )
                    pool.append(g)
            # Over the band (or over capacity): give away the groups that fit their owner least.
            for r in sorted(reps):
                mine = sorted(
                    (g for g in groups.values() if g.assigned == r and g.pinned_to is None),
                    key=lambda g: (g.fits[r] / max(g.weight, 1e-9), g.weight, g.key),
                )
                held = f"{pipe[r]:,.0f} open pipeline > {vcap[r]:,.0f}"  # before any of it is shed
                for g in mine:
                    if load[r] <= upper + 1e-9 and count[r] <= cap[r] and within_value(r):
                        break
                    if load[r] > upper + 1e-9 or count[r] > cap[r]:
                        if any(room(o, g) for o in reps if o != r):
                            over = f"{load[r]:.0f} > {upper:.0f}" if load[r] > upper else f"over capacity {cap[r]}"
                            take(g)
                            g.reason = f"{names[r]} above the band ({over})"
                            pool.append(g)
                    elif any(capacity_for(o, g) for o in reps if o != r):
                        # Over value capacity only: shed to any rep with room for it, even above the band.
                        take(g)
                        g.reason = f"{names[r]} over value capacity ({held})"
                        pool.append(g)
            # Place the pool, most valuable first, with the best-fitting rep that has room.
            for g in sorted(pool, key=lambda g: (-g.weight, -max(g.fits.values(), default=0), g.key)):
                fits = [r for r in reps if room(r, g)]
                if fits:
                    best = max(fits, key=lambda r: (g.fits[r], -load[r], r))
                else:
                    spare = [r for r in reps if capacity_for(r, g)]
                    if not spare:
                        out.notes.append(f"no rep has capacity for {g.items[0].title!r}: left unassigned")
                        stay(g)
                        continue
                    best = min(spare, key=lambda r: (load[r], r))
                why = fit_reasons(g.items[0], reps[best], settings.policy)
                give(g, best, f"{g.reason}; to {names[best]} ({why})")
            # Under the band: pull groups from the most loaded reps.
            for r in sorted(reps, key=lambda r: (load[r], r)):
                while load[r] < lower - 1e-9:
                    donors = [
                        g
                        for g in groups.values()
                        if g.assigned
                        and g.assigned != r
                        and g.pinned_to is None
                        and load[g.assigned] - g.weight >= lower - 1e-9
                        and load[g.assigned] > mean
                        and room(r, g)
                    ]
                    if not donors:
                        break
                    g = max(donors, key=lambda g: (load[g.assigned or ""], g.fits[r], g.key))
                    donor = g.assigned or ""
                    take(g)
                    give(
                        g,
                        r,
                        f"{names[r]} below the band ({load[r]:.0f} < {lower:.0f}); from {names[donor]}",
                    )
            # A rep still over capacity (tasks or value) gains nothing: accounts that would bring it
            # tasks it does not hold today stay as they are (their pinned owner or the team is full).
            # Tasks that stay can take their owner over a capacity in turn: repeat until no rep over
            # a capacity holds an account with tasks that are new to them.
            full: list[str] = []
            changed = True
            while changed:
                changed = False
                for r in sorted(reps):
                    if count[r] <= cap[r] and within_value(r):
                        continue
                    gaining = [g for g in groups.values() if g.assigned == r and any(i.owner != r for i in g.items)]
                    for g in sorted(gaining, key=lambda g: (-sum(i.owner != r for i in g.items), g.key)):
                        if count[r] <= cap[r] and within_value(r):
                            break
                        take(g)
                        g.reason = ""
                        full.append(g.items[0].title)
                        changed = True
                        stay(g)
            if full:
                out.notes.append(
                    f"{len(full)} account(s) fit no rep's remaining capacity (tasks or value) and stay as they are "
                    f"(current owner or unowned): {', '.join(repr(t) for t in full[:5])}"
                )
            over_value = [f"{names[r]} ({pipe[r]:,.0f} > {vcap[r]:,.0f})" for r in reps if not within_value(r)]
            if over_value:
                out.notes.append(
                    "still above their value capacity (no other rep has room, or pinned cards): "
                    + ", ".join(sorted(over_value))
                )
            infeasible = [names[r] for r in reps if not lower - 1e-9 <= load[r] <= upper + 1e-9]
            if infeasible:
                out.notes.append(
                    f"band ±{p.band:.0%} around {mean:.1f} not reachable for: {', '.join(sorted(infeasible))} "
                    "(pinned cards, capacity or account sizes)"
                )

        decided: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        for g in groups.values():
            for i in g.items:
                decided[i.key] = g.assigned
                reasons[i.key] = g.reason
        for key, (tier, score) in prioritise(book, decided, settings, model).items():
            out.by_key[key] = Decision(decided.get(key), tier, score, reasons.get(key, ""))
        return out
