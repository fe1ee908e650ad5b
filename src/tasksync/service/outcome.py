"""The service's log of what a plan did: one line per change written, failed or skipped, and
each person's edit once, when first seen (not at every iteration)."""

from __future__ import annotations

import json
import logging
from typing import Any

from tasksync.model import Plan
from tasksync.service.logs import event
from tasksync.sync.engine import ApplyOutcome
from tasksync.sync.state import StateStoreProtocol

__all__ = ["OutcomeLog"]


class OutcomeLog:
    """The log lines of one board's service; ``names`` (member and stage ids -> names, from the
    last read) makes them readable."""

    def __init__(self, board: str) -> None:
        self.board = board
        self.names: dict[str, str] = {}
        self._conflicts_seen: set[tuple[str, str, str]] = set()

    def named(self, value: object) -> str:
        """A field value as the log shows it: member and list names instead of ids."""
        if isinstance(value, tuple):
            return ", ".join(self.names.get(str(v), str(v)) for v in value) or "(nobody)"
        if isinstance(value, str):
            return self.names.get(value, value)
        return "" if value is None else str(value)

    def outcome(self, store: StateStoreProtocol, plan_id: str, outcome: ApplyOutcome) -> None:
        """One line per journal entry of the plan, and per conflict the apply met."""
        plan, _ = store.load_plan(plan_id)
        titles = {c.task_id: c.title for c in plan.changes}
        new_titles = {n.key: n.title for n in plan.creates}
        for r in store.journal(plan_id):
            if r.op == "create":
                if r.status == "done":
                    title = new_titles.get(r.key or "", "")
                    event("task.created", board=self.board, plan=plan_id, key=r.key, task=r.task_id, title=title)
                elif r.status == "failed":
                    event("task.create_failed", logging.WARNING, board=self.board, plan=plan_id, key=r.key,
                          error=r.error)  # fmt: skip
                continue
            fields: dict[str, Any] = {
                "board": self.board,
                "plan": plan_id,
                "task": r.task_id,
                "title": titles.get(r.task_id or "", ""),
                "field": r.field.value if r.field else None,
                "before": self.named(r.before),
                "after": self.named(r.after),
                "before_ids": r.before,
                "after_ids": r.after,
            }
            if r.status == "done":
                event("change.applied", **fields)
            elif r.status == "failed":
                event("change.failed", logging.WARNING, error=r.error, **fields)
            elif r.status == "conflict":
                event("conflict.skipped", logging.WARNING, reason=r.error, **fields)
        for text in outcome.conflicts:
            event("conflict.skipped", logging.WARNING, board=self.board, plan=plan_id, reason=text)

    def conflicts(self, plan: Plan) -> None:
        """Log each person's change once (when first seen), not at every iteration: a conflict when
        the policy wants another value, an edit kept when it does not."""
        seen: set[tuple[str, str, str]] = set()
        for name, items, level in (
            ("conflict.skipped", plan.conflicts, logging.WARNING),
            ("edit.kept", plan.edits, logging.INFO),
        ):
            for c in items:
                key = (c.task_id, c.field.value, json.dumps(c.current, default=str))
                seen.add(key)
                if key in self._conflicts_seen:
                    continue
                event(
                    name,
                    level,
                    board=self.board,
                    task=c.task_id,
                    title=c.title,
                    field=c.field.value,
                    current=c.current,
                    wanted=c.wanted,
                    reason="changed by a person since tasksync wrote it; left alone",
                )
        self._conflicts_seen = seen
