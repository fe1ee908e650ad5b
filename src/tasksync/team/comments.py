"""Reasons on the card: one short comment on each card whose owner a plan changed or that it
created, naming the new owner and why, so the rep who gets the card (and the one who loses it)
learns it where they work; an undo says so on the cards it put back.

Comments are posted after the plan's writes, through the connector's :class:`Commenter`
capability (Trello: a comment action; Asana: a story), within the connector's rate budget. Each
comment is recorded in the state store (``record_comment``, SQLite or PostgreSQL) before the next
one is sent, so a resumed
or repeated run never comments twice; a comment whose answer was lost is not sent again.
Priority-only changes get no comment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tasksync.connectors.base import Commenter, Connector
from tasksync.model import Field, Plan, PlanKind, WriteStatus

if TYPE_CHECKING:
    from tasksync.settings import Settings
    from tasksync.sync.engine import PlanResult
    from tasksync.sync.state import StateStoreProtocol

__all__ = [
    "CommentOutcome",
    "comment_after_apply",
    "comments_enabled",
    "plan_comments",
    "post_comments",
    "prepare_comments",
    "remember_names",
]

_NAMES = "team.member_names"  # kv key: member id -> the name reps know (the CRM's, else the board's)
_MAX = 500  # characters: short enough to read in a card's activity


@dataclass
class CommentOutcome:
    posted: int = 0
    failed: list[str] = field(default_factory=list)
    unknown: int = 0  # sent, answer lost: not sent again (it may be on the card)


def comments_enabled(settings: Settings, service: bool = False) -> bool:
    """``[write] comment``; unset means on for ``serve`` and off for manual ``apply``."""
    value = settings.write.comment
    return service if value is None else value


def prepare_comments(
    result: PlanResult, store: StateStoreProtocol, settings: Settings, connector: Connector, service: bool = False
) -> None:
    """When comments are on: remember the names the comments use, and count the comments in the
    plan's notes (one request each, within the connector's rate budget)."""
    if not comments_enabled(settings, service) or result.plan.empty:
        return
    if not isinstance(connector, Commenter):
        result.plan.notes.append("comments: [write] comment is on, but this board cannot take comments")
        return
    names = remember_names(result, store)
    n = len(plan_comments(result.plan, names))
    if n:
        result.plan.notes.append(f"comments: {n} card(s) get a comment on apply ({n} more requests)")


def comment_after_apply(
    plan: Plan, connector: Connector, store: StateStoreProtocol, settings: Settings, service: bool = False
) -> CommentOutcome | None:
    """Post the comments of an applied ``plan`` when ``[write] comment`` is on (None when off)."""
    if not comments_enabled(settings, service) or plan.empty:
        return None
    return post_comments(plan, connector, store)


def remember_names(result: PlanResult, store: StateStoreProtocol) -> dict[str, str]:
    """Member id -> name (a rep's CRM name where the member is a rep), kept for the apply."""
    rep_name = {r.id: r.name for r in result.book.crm.reps}
    member_rep = {m: r for r, m in result.book.rep_member.items()}
    names = {i: rep_name.get(member_rep.get(i, ""), name) for i, name in result.snapshot.member_names.items()}
    store.put(result.plan.board, _NAMES, json.dumps(names, ensure_ascii=False, sort_keys=True))
    return names


def _who(members: object, names: Mapping[str, str]) -> str:
    if isinstance(members, tuple) and members:
        return ", ".join(names.get(m, "someone") for m in members)
    return "nobody"


def _text(text: str) -> str:
    return text if len(text) <= _MAX else text[: _MAX - 1] + "…"


def plan_comments(plan: Plan, names: Mapping[str, str]) -> dict[str, str]:
    """The comment for each card of ``plan`` that gets one: task id (``new:<key>`` for a card to
    create) -> text."""
    out: dict[str, str] = {}
    if plan.kind is PlanKind.UNDO:
        for c in plan.changes:
            if c.field is Field.ASSIGNEES:
                back = f"owner back to {_who(c.after, names)}" if c.after else "no owner again, as before"
                out[c.task_id] = _text(f"tasksync: plan {plan.undoes} was undone; {back}.")
            elif c.field is Field.CLOSED:
                out[c.task_id] = _text(f"tasksync: plan {plan.undoes} was undone; this card it created is archived.")
        return out
    for c in plan.changes:
        if c.field is Field.ASSIGNEES:
            was = f" (was {_who(c.before, names)})" if c.before else ""
            out[c.task_id] = _text(
                f"tasksync: {_who(c.after, names)} now owns this card{was}. "
                f"Why: {c.reason or 'the division'}. Plan {plan.id}."
            )
    for n in plan.creates:
        out[f"new:{n.key}"] = _text(
            f"tasksync: card created for CRM deal {n.key}, owned by {_who(n.assignees, names)}. "
            f"Why: {n.reason or 'an open CRM deal without a card'}. Plan {plan.id}."
        )
    return out


def post_comments(plan: Plan, connector: Connector, store: StateStoreProtocol) -> CommentOutcome:
    """Comment on the cards ``plan`` changed the owner of or created, where the write landed."""
    outcome = CommentOutcome()
    if not isinstance(connector, Commenter):
        return outcome
    raw = store.get(plan.board, _NAMES)
    names: dict[str, str] = json.loads(raw) if raw else {}
    texts = plan_comments(plan, names)
    done = store.commented(plan.id)
    for r in store.journal(plan.id):
        if r.status != "done" or r.task_id is None or r.task_id in done:
            continue
        key = f"new:{r.key}" if r.op == "create" else r.task_id
        text = texts.get(key)
        if text is None or (r.op != "create" and r.field not in (Field.ASSIGNEES, Field.CLOSED)):
            continue
        result = connector.comment(r.task_id, text)
        status = result.outcome
        store.record_comment(plan.id, r.task_id, status.value, result.error)
        done.add(r.task_id)
        if status is WriteStatus.DONE:
            outcome.posted += 1
        elif status is WriteStatus.UNKNOWN:
            outcome.unknown += 1
        else:
            outcome.failed.append(result.error or f"card {r.task_id}: comment failed")
    return outcome
