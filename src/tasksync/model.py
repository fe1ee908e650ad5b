"""The neutral task model: plain typed values shared by connectors, policies and the engine.

Nothing here does I/O. Connectors map their service's records to these values and back;
policies read them; the engine diffs them into a :class:`Plan`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

__all__ = [
    "BoardRef",
    "Change",
    "Conflict",
    "Field",
    "FieldValue",
    "JournalStatus",
    "Member",
    "NewTask",
    "Plan",
    "PlanKind",
    "PlanStatus",
    "Snapshot",
    "Stage",
    "Task",
    "TaskWrite",
    "WriteResult",
    "WriteStatus",
]


class Field(StrEnum):
    """A task field tasksync may write. Everything else on a card belongs to people."""

    ASSIGNEES = "assignees"
    PRIORITY = "priority"
    STAGE = "stage"
    CLOSED = "closed"  # only used to archive a card tasksync created, when its plan is undone


#: The value of one :class:`Field`: member ids for ASSIGNEES, an option name for PRIORITY,
#: a stage id for STAGE, a flag for CLOSED. ``None`` means unset.
FieldValue = tuple[str, ...] | str | bool | None


@dataclass(frozen=True, slots=True)
class BoardRef:
    """Which board or project a snapshot or plan belongs to: ``connector:id``."""

    connector: str
    id: str

    def __str__(self) -> str:
        return f"{self.connector}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> BoardRef:
        connector, _, ident = text.partition(":")
        return cls(connector, ident)


@dataclass(frozen=True, slots=True)
class Member:
    """A person on the board (Trello member, Asana user)."""

    id: str
    name: str
    username: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    """A column of the pipeline: a Trello list or an Asana section."""

    id: str
    name: str
    position: float = 0.0


@dataclass(frozen=True, slots=True)
class Task:
    """One card or task as read from the service.

    ``assignees`` is sorted so that equal sets compare equal. ``crm_ref`` is the CRM key found
    on the card (custom field value, marker or account name, by the link settings), or None.
    ``version`` is the service's change marker (Trello ``dateLastActivity``, Asana
    ``modified_at``); it is informational and never part of the snapshot fingerprint.
    """

    id: str
    title: str
    stage_id: str
    assignees: tuple[str, ...] = ()
    priority: str | None = None
    due: date | None = None
    labels: tuple[str, ...] = ()
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    crm_ref: str | None = None
    created_at: datetime | None = None
    version: str | None = None
    closed: bool = False
    pinned: bool = False

    def value(self, f: Field) -> FieldValue:
        if f is Field.ASSIGNEES:
            return self.assignees
        if f is Field.PRIORITY:
            return self.priority
        if f is Field.STAGE:
            return self.stage_id
        return self.closed


@dataclass(frozen=True)
class Snapshot:
    """One board or project as read at one moment."""

    board: BoardRef
    name: str
    members: tuple[Member, ...]
    stages: tuple[Stage, ...]
    tasks: tuple[Task, ...]
    priority_options: tuple[str, ...] = ()
    read_at: datetime | None = None
    max_assignees: int | None = None  # 1 on services with a single assignee (Asana)
    #: The CRM link of each card put away (archived, in an archived list, or a completed Asana
    #: task), by card id, as far as the read saw them: their deals get no new card (unless
    #: tasksync's own undo put the card away).
    archived_refs: Mapping[str, str] = field(default_factory=dict)
    #: People cards are assigned to who are no longer members (an Asana assignee who left the
    #: workspace), for their names only: they are not on the board and get no work.
    former_members: tuple[Member, ...] = ()

    @cached_property
    def tasks_by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}

    @cached_property
    def member_names(self) -> dict[str, str]:
        """Member id -> name, for display: the board's members and the former ones cards still name."""
        return {m.id: m.name or m.username or m.id for m in (*self.former_members, *self.members)}

    @cached_property
    def members_by_id(self) -> dict[str, Member]:
        return {m.id: m for m in self.members}

    def task(self, task_id: str) -> Task | None:
        return self.tasks_by_id.get(task_id)

    def stage_by_name(self, name: str) -> Stage | None:
        wanted = name.strip().casefold()
        return next((s for s in self.stages if s.name.strip().casefold() == wanted), None)

    def fingerprint(self) -> str:
        """A hash of everything a plan depends on: tasks' managed fields, links and members.

        Two reads with the same fingerprint give the same plan; ``apply`` refuses a plan whose
        fingerprint no longer matches the board.
        """
        h = hashlib.sha256()
        for m in sorted(self.members, key=lambda m: m.id):
            h.update(f"m|{m.id}|{m.name}|{m.email}\n".encode())
        for s in sorted(self.stages, key=lambda s: s.id):
            h.update(f"s|{s.id}|{s.name}\n".encode())
        for t in sorted(self.tasks, key=lambda t: t.id):
            h.update(
                f"t|{t.id}|{t.stage_id}|{','.join(t.assignees)}|{t.priority}|{t.crm_ref}|"
                f"{t.due}|{t.closed}|{t.pinned}\n".encode()
            )
        return h.hexdigest()[:16]


class PlanKind(StrEnum):
    SYNC = "sync"  # ordinary plan from policies
    REBALANCE = "rebalance"
    UNDO = "undo"


class PlanStatus(StrEnum):
    """Where a stored plan is in its life."""

    PROPOSED = "proposed"  # computed by `plan`, waiting to be applied
    PENDING = "pending"  # an undo plan saved just before it is applied
    APPLYING = "applying"  # journal started; an interruption leaves it here (resumed by the next writer)
    APPLIED = "applied"
    PARTIAL = "partial"  # applied, but some writes failed
    UNDONE = "undone"
    SUPERSEDED = "superseded"  # a newer proposal replaced it


class JournalStatus(StrEnum):
    """The state of one journaled change or create."""

    PENDING = "pending"  # journaled, not yet known to have landed
    DONE = "done"
    FAILED = "failed"
    CONFLICT = "conflict"  # the card changed since the plan: skipped
    UNKNOWN = "unknown"  # sent, but the answer was lost: resolved by the next read


class WriteStatus(StrEnum):
    """The outcome of one :class:`TaskWrite` as a connector reports it."""

    DONE = "done"
    FAILED = "failed"  # refused or failed for good (nothing was written)
    CONFLICT = "conflict"  # the card no longer holds :attr:`TaskWrite.before`: not written
    UNKNOWN = "unknown"  # the request may or may not have landed (answer lost after retries)


@dataclass(frozen=True, slots=True)
class Change:
    """Set one field of one existing task from ``before`` to ``after``, for ``reason``."""

    task_id: str
    field: Field
    before: FieldValue
    after: FieldValue
    reason: str = ""
    title: str = ""
    reason_kind: str = ""  # the kind of the reason (tasksync.policies.ReasonKind value), to filter by


@dataclass(frozen=True, slots=True)
class NewTask:
    """A card to create for a CRM record that has none yet.

    ``key`` is the CRM record's id; connectors put a marker built from it on the card so that a
    retried create finds the first card instead of making a second one.
    """

    key: str
    title: str
    stage_id: str
    assignees: tuple[str, ...] = ()
    priority: str | None = None
    description: str = ""
    due: date | None = None
    reason: str = ""
    reason_kind: str = ""  # the kind of the reason (tasksync.policies.ReasonKind value)


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field a person changed since tasksync last wrote it: left alone and reported."""

    task_id: str
    field: Field
    last_written: FieldValue
    current: FieldValue
    wanted: FieldValue
    title: str = ""


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """What a connector is asked to write on one task: several fields in one request.

    ``before`` holds, per field, what the plan expects the card to hold now. A connector that
    can see the card's current value must not write a field whose value differs from it (a person
    changed it since the plan) and reports :attr:`WriteStatus.CONFLICT` instead. A field missing
    from ``before`` is written unconditionally.
    """

    task_id: str
    values: Mapping[Field, FieldValue]
    before: Mapping[Field, FieldValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one :class:`TaskWrite` or one :class:`NewTask` (``key`` set)."""

    task_id: str
    ok: bool
    error: str | None = None
    key: str | None = None  # NewTask.key for creates
    retriable: bool = False
    status: WriteStatus | None = None  # None: DONE when ok, else FAILED

    @property
    def outcome(self) -> WriteStatus:
        if self.status is not None:
            return self.status
        return WriteStatus.DONE if self.ok else WriteStatus.FAILED


@dataclass(slots=True)
class Plan:
    """The changes that take a board from its snapshot to the policies' desired state."""

    id: str
    board: BoardRef
    kind: PlanKind
    base_fingerprint: str
    created_at: datetime
    changes: list[Change] = field(default_factory=list)
    creates: list[NewTask] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)  # a person's value where the policy wants another
    # A person's changes the policy leaves as they are (it wants the same, or does not manage the field):
    # not conflicts, but recorded as theirs when the plan is applied.
    edits: list[Conflict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # unknown reps, unlinked cards, ...
    undoes: str | None = None  # for UNDO plans: the plan id reverted

    @property
    def empty(self) -> bool:
        return not self.changes and not self.creates

    def writes(self) -> list[TaskWrite]:
        """Group changes by task: one write per task, fields in a stable order, each carrying
        the value the plan expects to find (``before``) so a connector can refuse a stale write."""
        after: dict[str, dict[Field, FieldValue]] = {}
        before: dict[str, dict[Field, FieldValue]] = {}
        for c in self.changes:
            after.setdefault(c.task_id, {})[c.field] = c.after
            before.setdefault(c.task_id, {})[c.field] = c.before
        return [TaskWrite(tid, values, before[tid]) for tid, values in after.items()]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _to_jsonable(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            id=data["id"],
            board=BoardRef.parse(data["board"]),
            kind=PlanKind(data["kind"]),
            base_fingerprint=data["base_fingerprint"],
            created_at=datetime.fromisoformat(data["created_at"]),
            changes=[_change_from(c) for c in data.get("changes", [])],
            creates=[_new_task_from(n) for n in data.get("creates", [])],
            conflicts=[_conflict_from(c) for c in data.get("conflicts", [])],
            edits=[_conflict_from(c) for c in data.get("edits", [])],
            notes=list(data.get("notes", [])),
            undoes=data.get("undoes"),
        )


def value_from_json(f: Field, raw: Any) -> FieldValue:
    """Rebuild a :data:`FieldValue` from its JSON form (lists become tuples)."""
    if f is Field.ASSIGNEES:
        return tuple(raw or ())
    if f is Field.CLOSED:
        return bool(raw)
    return None if raw is None else str(raw)


def value_to_json(v: FieldValue) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BoardRef):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, StrEnum):
        return obj.value
    if isinstance(obj, tuple):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, list):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _to_jsonable(getattr(obj, name)) for name in obj.__dataclass_fields__}
    return obj


def _change_from(d: Mapping[str, Any]) -> Change:
    f = Field(d["field"])
    return Change(
        task_id=d["task_id"],
        field=f,
        before=value_from_json(f, d["before"]),
        after=value_from_json(f, d["after"]),
        reason=d.get("reason", ""),
        title=d.get("title", ""),
        reason_kind=d.get("reason_kind", ""),
    )


def _new_task_from(d: Mapping[str, Any]) -> NewTask:
    return NewTask(
        key=d["key"],
        title=d["title"],
        stage_id=d["stage_id"],
        assignees=tuple(d.get("assignees", ())),
        priority=d.get("priority"),
        description=d.get("description", ""),
        due=date.fromisoformat(d["due"]) if d.get("due") else None,
        reason=d.get("reason", ""),
        reason_kind=d.get("reason_kind", ""),
    )


def _conflict_from(d: Mapping[str, Any]) -> Conflict:
    f = Field(d["field"])
    return Conflict(
        task_id=d["task_id"],
        field=f,
        last_written=value_from_json(f, d["last_written"]),
        current=value_from_json(f, d["current"]),
        wanted=value_from_json(f, d["wanted"]),
        title=d.get("title", ""),
    )


def canonical(values: Iterable[str]) -> tuple[str, ...]:
    """Assignee ids in the one order used everywhere (sorted, unique)."""
    return tuple(sorted(set(values)))


def dumps(obj: Any) -> str:
    return json.dumps(_to_jsonable(obj), ensure_ascii=False, sort_keys=True)
