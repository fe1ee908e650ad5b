"""Round robin: the baseline most lead routers use.

Unowned work (and work of reps who are away) goes to available reps in turn, one record at a
time, ignoring fit, value and accounts. Owned work stays where it is. Kept for comparison.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from tasksync.policies.base import Decision, Decisions, Rules
from tasksync.policies.book import Book
from tasksync.policies.reasons import Reason, ReasonKind
from tasksync.policies.scoring import WinModel, prioritise, tier_notes

__all__ = ["RoundRobinPolicy"]


class RoundRobinPolicy:
    name: ClassVar[str] = "round-robin"

    def decide(self, book: Book, rules: Rules) -> Decisions:
        model = WinModel.fit(book.crm.history, book.crm, rules.policy.smoothing)
        reps = sorted(r.id for r in book.available_reps)
        names = {r.id: r.name for r in book.crm.reps}
        out = Decisions(notes=tier_notes(rules.priority), model=model)
        if not reps:
            out.notes.append("no available rep is on the board: owners left unchanged")
        held = Counter(i.owner for i in book.items if i.owner in reps)
        # Start the rotation with the least loaded rep so repeated runs stay fair.
        start = min(range(len(reps)), key=lambda k: (held[reps[k]], k)) if reps else 0
        turn = 0
        owners: dict[str, str | None] = {}
        for item in sorted(book.items, key=lambda i: i.key):
            if not item.managed or item.locked or not reps:
                continue
            if item.owner in reps:
                owners[item.key] = item.owner
                continue
            if item.owner is not None and not rules.policy.move_from_unavailable:
                continue
            owners[item.key] = reps[(start + turn) % len(reps)]
            turn += 1
        for key, (tier, score, why) in prioritise(book, owners, rules.priority, model).items():
            owner = owners.get(key)
            reason = Reason(ReasonKind.ROUND_ROBIN, to=names.get(owner, owner)) if owner else None
            out.by_key[key] = Decision(owner, tier, score, reason, why)
        return out
