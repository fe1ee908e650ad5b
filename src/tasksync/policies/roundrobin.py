"""Round robin: the baseline most lead routers use.

Unowned work (and work of reps who are away) goes to available reps in turn, one record at a
time, ignoring fit, value and accounts. Owned work stays where it is. Kept for comparison.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from tasksync.policies.balanced import prioritise
from tasksync.policies.base import Decision, Decisions
from tasksync.policies.book import Book
from tasksync.policies.scoring import WinModel
from tasksync.settings import Settings

__all__ = ["RoundRobinPolicy"]


class RoundRobinPolicy:
    name: ClassVar[str] = "round-robin"

    def decide(self, book: Book, settings: Settings) -> Decisions:
        model = WinModel.fit(book.crm.history, book.crm, settings.policy.smoothing)
        reps = sorted(r.id for r in book.available_reps)
        out = Decisions(model=model)
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
            if item.owner is not None and not settings.policy.move_from_unavailable:
                continue
            owners[item.key] = reps[(start + turn) % len(reps)]
            turn += 1
        for key, (tier, score) in prioritise(book, owners, settings, model).items():
            out.by_key[key] = Decision(owners.get(key), tier, score, "round robin")
        return out
