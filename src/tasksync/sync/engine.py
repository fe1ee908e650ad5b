"""The engine: snapshot → desired state → plan → apply → record, and undo.

Policies say what each task should look like; the engine turns that into the fewest changes,
leaves alone every field a person changed since tasksync last wrote it (a conflict, unless
forced), journals each change before and after it is sent, and resumes an interrupted apply.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from tasksync.connectors.base import Connector
from tasksync.crm.records import CrmData
from tasksync.errors import SafetyStop, StalePlanError
from tasksync.model import (
    BoardRef,
    Change,
    Conflict,
    Field,
    FieldValue,
    JournalStatus,
    NewTask,
    Plan,
    PlanKind,
    Snapshot,
    TaskWrite,
    WriteStatus,
    canonical,
)
from tasksync.policies import Book, Decisions, Policy, Reason, ReasonKind, Rules, build_book, get_policy
from tasksync.settings import Settings
from tasksync.sync.state import JournalRow, StateStore

__all__ = [
    "ApplyOutcome",
    "PlanResult",
    "SyncState",
    "apply_plan",
    "decide",
    "diff",
    "make_plan",
    "make_undo_plan",
    "prepare_book",
    "resume",
]

Progress = Callable[[int, int], None]


@dataclass
class PlanResult:
    """A plan with what it was computed from, for presentation."""

    plan: Plan
    snapshot: Snapshot
    book: Book
    decisions: Decisions


@dataclass
class ApplyOutcome:
    plan_id: str
    done: int = 0
    failed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    created: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def new_plan_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class SyncState:
    """What the state store knows of one board before a plan, as a plain value so that
    :func:`diff` stays pure: the last value tasksync wrote or saw per task and field, the fields
    a person owns for good, and the CRM keys of the cards tasksync created."""

    last_written: dict[tuple[str, Field], FieldValue] = field(default_factory=dict)
    person_owned: set[tuple[str, Field]] = field(default_factory=set)
    created: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, store: StateStore, board: BoardRef) -> SyncState:
        return cls(store.last_written(board), store.person_owned(board), store.created(board))


def human_edits(
    snapshot: Snapshot, last: dict[tuple[str, Field], FieldValue], person: set[tuple[str, Field]]
) -> dict[tuple[str, Field], FieldValue]:
    """Fields a person owns: changed since tasksync last wrote or saw them, or already marked
    as a person's. Maps each to the value tasksync last wrote."""
    edits: dict[tuple[str, Field], FieldValue] = {}
    for (task_id, f), written in last.items():
        task = snapshot.task(task_id)
        if task is not None and ((task_id, f) in person or task.value(f) != written):
            edits[(task_id, f)] = written
    return edits


def prepare_book(
    settings: Settings,
    snapshot: Snapshot,
    crm: CrmData,
    state: SyncState,
    *,
    force: bool = False,
    today: date | None = None,
) -> Book:
    """Join the board and the CRM into the book a policy decides on: cards whose owner a person
    changed are locked, and deals tasksync already made a card for are not offered again."""
    board = snapshot.board
    if not snapshot.tasks and state.last_written and not force:
        raise SafetyStop(
            f"{board}: the board reads empty but tasksync has written {len(state.last_written)} fields on it; "
            "refusing to plan (use --force if the board really was emptied)"
        )
    edits = {} if force else human_edits(snapshot, state.last_written, state.person_owned)
    locked = {task_id for (task_id, f) in edits if f is Field.ASSIGNEES}
    book = build_book(snapshot, crm, settings, locked, today)
    book.items = [i for i in book.items if not (i.task_id is None and i.deal and i.deal.id in state.created)]
    return book


def decide(book: Book, policy: Policy, settings: Settings) -> Decisions:
    """The policy's decisions for every item of the book (owner, priority, reason). The policy
    sees only the ``[policy]`` and ``[priority]`` sections (:class:`Rules`), never the secrets."""
    return policy.decide(book, Rules.of(settings))


def _reason(reason: Reason | str | None) -> tuple[str, str]:
    """(text, kind) of a decision's reason; a plug-in's plain text is of kind "other"."""
    if isinstance(reason, Reason):
        return reason.text(), reason.kind.value
    return (reason or "", ReasonKind.OTHER.value if reason else "")


def diff(
    settings: Settings,
    snapshot: Snapshot,
    book: Book,
    decisions: Decisions,
    state: SyncState,
    *,
    plan_id: str,
    created_at: datetime,
    force: bool = False,
    kind: PlanKind = PlanKind.SYNC,
    notes: list[str] | None = None,
) -> Plan:
    """The fewest changes that take ``snapshot`` to what ``decisions`` want, leaving every field
    a person owns alone (a conflict). Pure: no I/O, the same inputs give the same plan."""
    board = snapshot.board
    person = set() if force else state.person_owned
    edits = {} if force else human_edits(snapshot, state.last_written, person)
    plan = Plan(
        id=plan_id,
        board=board,
        kind=kind,
        base_fingerprint=snapshot.fingerprint(),
        created_at=created_at,
        notes=[*(notes or []), *book.notes, *decisions.notes],
    )
    rep_members = set(book.rep_member.values())
    options = {o.casefold(): o for o in snapshot.priority_options}
    if not options:
        plan.notes.append(f"the board has no priority field {settings.priority.field!r}: priorities not written")
    stage_by_name = {s.name.casefold(): s.id for s in snapshot.stages}
    for item in book.items:
        d = decisions.by_key.get(item.key)
        if d is None:
            continue
        owner_member = book.rep_member.get(d.owner) if d.owner else None
        priority = options.get(d.priority.casefold()) if d.priority else None
        if item.task_id is None:
            if item.deal is None:
                continue  # a new-card item always carries its deal; nothing to create without one
            stage_id = stage_by_name.get(item.stage.casefold())
            if stage_id is None:
                plan.notes.append(f"deal {item.deal.id}: no list named {item.stage!r} for its card; not created")
                continue
            plan.creates.append(
                NewTask(
                    key=item.deal.id,
                    title=item.title,
                    stage_id=stage_id,
                    assignees=(owner_member,) if owner_member else (),
                    priority=priority,
                    description=f"CRM deal {item.deal.id}",
                    due=item.deal.close_date,
                    reason=f"open CRM deal without a card; {_reason(d.reason)[0]}",
                    reason_kind=ReasonKind.NEW_CARD.value,
                )
            )
            continue
        task = snapshot.task(item.task_id)
        if task is None:
            continue
        wanted: dict[Field, FieldValue] = {}
        if owner_member is not None:
            others = [] if snapshot.max_assignees == 1 else [m for m in task.assignees if m not in rep_members]
            wanted[Field.ASSIGNEES] = canonical([*others, owner_member])
        if priority is not None:
            wanted[Field.PRIORITY] = priority
        if settings.policy.sync_stage and item.deal is not None:
            target = stage_by_name.get(settings.stages.get(item.deal.stage, item.deal.stage).casefold())
            if target is not None:
                wanted[Field.STAGE] = target
        for f, value in wanted.items():
            current = task.value(f)
            if current == value:
                continue
            if (task.id, f) in edits:
                plan.conflicts.append(Conflict(task.id, f, edits[(task.id, f)], current, value, task.title))
                continue
            if f is Field.ASSIGNEES:
                reason, why = _reason(d.reason)
            elif f is Field.PRIORITY:
                reason, why = _reason(d.priority_reason or Reason(ReasonKind.PRIORITY, figures=(("score", d.score),)))
            else:
                reason, why = f"CRM stage {item.deal.stage if item.deal else ''}", ReasonKind.STAGE.value
            plan.changes.append(Change(task.id, f, current, value, reason, task.title, why))
    # New edits the policy did not want to touch are still worth showing once.
    seen = {(c.task_id, c.field) for c in plan.conflicts}
    for (task_id, f), written in edits.items():
        task = snapshot.task(task_id)
        if task is not None and (task_id, f) not in seen and (task_id, f) not in person:
            plan.conflicts.append(Conflict(task_id, f, written, task.value(f), task.value(f), task.title))
    return plan


def make_plan(
    settings: Settings,
    snapshot: Snapshot,
    crm: CrmData,
    store: StateStore,
    *,
    force: bool = False,
    kind: PlanKind = PlanKind.SYNC,
    today: date | None = None,
) -> PlanResult:
    """Read the board's state, then decide and diff: the plan that takes ``snapshot`` to what the
    configured policy wants."""
    state = SyncState.read(store, snapshot.board)
    book = prepare_book(settings, snapshot, crm, state, force=force, today=today)
    decisions = decide(book, get_policy(settings.policy.name), settings)
    plan = diff(
        settings,
        snapshot,
        book,
        decisions,
        state,
        plan_id=new_plan_id(),
        created_at=datetime.now(UTC),
        force=force,
        kind=kind,
        notes=_crm_notes(crm),
    )
    return PlanResult(plan, snapshot, book, decisions)


def _crm_notes(crm: CrmData, limit: int = 20) -> list[str]:
    notes = crm.problems[:limit]
    if len(crm.problems) > limit:
        notes.append(f"... and {len(crm.problems) - limit} more CRM problems (see `tasksync crm check`)")
    return notes


def _check_fresh(plan: Plan, snapshot: Snapshot) -> None:
    if snapshot.fingerprint() != plan.base_fingerprint:
        raise StalePlanError(
            f"{plan.board}: the board changed since plan {plan.id} was computed; "
            "run `tasksync plan` again and review the new plan"
        )


def apply_plan(
    plan: Plan,
    connector: Connector,
    store: StateStore,
    *,
    snapshot: Snapshot | None = None,
    progress: Progress | None = None,
) -> ApplyOutcome:
    """Write a plan, journaling every change. Refuses a plan older than the board."""
    snapshot = snapshot or connector.read()
    _check_fresh(plan, snapshot)
    if store.latest(plan.board, "applying"):
        raise StalePlanError(
            f"{plan.board}: plan {store.latest(plan.board, 'applying')} was interrupted; "
            "run `tasksync apply` to finish it first"
        )
    try:
        store.load_plan(plan.id)
    except Exception:
        store.save_plan(plan, "proposed")
    store.start_journal(plan)
    outcome = _run(plan, connector, store, store.journal(plan.id), progress)
    _record_baseline(plan, snapshot, store)
    return outcome


def _record_baseline(plan: Plan, snapshot: Snapshot, store: StateStore) -> None:
    """After an apply, remember the owner and priority of every linked card as tasksync left
    them, so that a person's later change to any of them is recognised and respected."""
    if plan.kind is PlanKind.UNDO:
        return
    values: list[tuple[str, Field, FieldValue]] = []
    for t in snapshot.tasks:
        if t.crm_ref:
            values.append((t.id, Field.ASSIGNEES, t.assignees))
            values.append((t.id, Field.PRIORITY, t.priority))
    store.record_baseline(plan.board, values, plan.id)
    # A person's edit, once applied around, stays theirs even if later set back to our value.
    store.mark_person_owned(plan.board, [(c.task_id, c.field, c.current) for c in plan.conflicts], plan.id)


def _pending_writes(plan: Plan, rows: list[JournalRow]) -> tuple[list[TaskWrite], dict[str, list[int]]]:
    """``plan.writes()`` restricted to the fields whose journal rows are still pending, and the
    journal sequence numbers each write settles."""
    pending = {(r.task_id, r.field): r.seq for r in rows if r.op == "change" and r.status == JournalStatus.PENDING}
    writes: list[TaskWrite] = []
    seqs: dict[str, list[int]] = {}
    for w in plan.writes():
        fields = [f for f in w.values if (w.task_id, f) in pending]
        if not fields:
            continue
        writes.append(TaskWrite(w.task_id, {f: w.values[f] for f in fields}, {f: w.before[f] for f in fields}))
        seqs[w.task_id] = [pending[(w.task_id, f)] for f in fields]
    return writes, seqs


def _run(
    plan: Plan, connector: Connector, store: StateStore, rows: list[JournalRow], progress: Progress | None
) -> ApplyOutcome:
    """Send the pending journal rows of ``plan`` and record each result as it arrives."""
    outcome = ApplyOutcome(plan.id)
    pending = [r for r in rows if r.status == JournalStatus.PENDING]
    total = len(pending)
    writes, seqs = _pending_writes(plan, rows)
    by_task = {w.task_id: w for w in writes}
    sent = 0
    for result in connector.write(writes):
        w = by_task[result.task_id]
        done = seqs.get(result.task_id, [])
        status = result.outcome
        with store.transaction():
            if status is WriteStatus.DONE:
                store.mark(plan.id, done, JournalStatus.DONE)
                for f, after in w.values.items():
                    store.record_written(plan.board, result.task_id, f, after, plan.id)
            elif status is WriteStatus.CONFLICT:
                store.mark(plan.id, done, JournalStatus.CONFLICT, result.error or "changed since the plan")
            elif status is WriteStatus.UNKNOWN:
                store.mark(plan.id, done, JournalStatus.UNKNOWN, result.error)
            else:
                store.mark(plan.id, done, JournalStatus.FAILED, result.error)
        if status is WriteStatus.DONE:
            outcome.done += len(done)
        elif status is WriteStatus.CONFLICT:
            outcome.conflicts.append(result.error or f"card {result.task_id}: changed since the plan; left alone")
        else:
            outcome.failed.append(result.error or f"card {result.task_id}: write failed")
        sent += len(done)
        if progress:
            progress(sent, total)
    creates = {r.key: r for r in pending if r.op == "create"}
    new_tasks = [n for n in plan.creates if n.key in creates]
    for result in connector.create(new_tasks):
        row = creates[result.key or ""]
        new = next(n for n in new_tasks if n.key == result.key)
        if result.ok:
            store.mark_created(plan.board, plan.id, row.seq, new.key, result.task_id)
            with store.transaction():
                store.record_written(plan.board, result.task_id, Field.ASSIGNEES, new.assignees, plan.id)
                if new.priority:
                    store.record_written(plan.board, result.task_id, Field.PRIORITY, new.priority, plan.id)
            outcome.created += 1
            outcome.done += 1
        else:
            store.mark(plan.id, [row.seq], "failed", result.error)
            outcome.failed.append(result.error or f"new card {new.title!r}: create failed")
        sent += 1
        if progress:
            progress(sent, total)
    store.set_status(plan.id, "partial" if outcome.failed else "applied")
    return outcome


def resume(
    connector: Connector, store: StateStore, board: BoardRef, progress: Progress | None = None
) -> ApplyOutcome | None:
    """Finish a plan whose apply was interrupted, or None if there is none.

    A pending change whose card already holds the new value was sent before the crash: it is
    marked done. One whose card still holds the old value is sent. Anything else was changed by
    a person meanwhile and becomes a conflict. A pending create first looks for its marker.
    """
    plan_id = store.latest(board, "applying")
    if plan_id is None:
        return None
    plan, _ = store.load_plan(plan_id)
    snapshot = connector.read()
    rows = store.journal(plan_id)
    conflicts: list[str] = []
    for r in rows:
        if r.status != "pending":
            continue
        if r.op == "create":
            found = connector.find_created(r.key or "")
            if found is not None:
                store.mark_created(board, plan_id, r.seq, r.key or "", found)
            continue
        task = snapshot.task(r.task_id or "")
        current = task.value(r.field) if task and r.field else None
        if task is not None and r.field is not None and current == r.after:
            with store.transaction():
                store.mark(plan_id, [r.seq], "done")
                store.record_written(board, task.id, r.field, r.after, plan_id)
        elif task is None or current != r.before:
            store.mark(plan_id, [r.seq], "conflict", "changed by a person during the interrupted apply")
            conflicts.append(f"{task.title if task else r.task_id}: {r.field} changed meanwhile")
    outcome = _run(plan, connector, store, store.journal(plan_id), progress)
    _record_baseline(plan, snapshot, store)
    outcome.conflicts.extend(conflicts)
    return outcome


def make_undo_plan(plan_id: str, snapshot: Snapshot, store: StateStore) -> Plan:
    """A plan that puts back what ``plan_id`` changed, where cards still hold what it wrote."""
    original, status = store.load_plan(plan_id)
    if status not in ("applied", "partial"):
        raise StalePlanError(f"plan {plan_id} is {status}; only an applied plan can be undone")
    undo = Plan(
        id=new_plan_id(),
        board=original.board,
        kind=PlanKind.UNDO,
        base_fingerprint=snapshot.fingerprint(),
        created_at=datetime.now(UTC),
        undoes=plan_id,
    )
    for r in store.journal(plan_id):
        if r.status != "done" or r.task_id is None:
            continue
        task = snapshot.task(r.task_id)
        if r.op == "create":
            if task is not None and not task.closed:
                undo.changes.append(
                    Change(task.id, Field.CLOSED, False, True, f"created by plan {plan_id}", task.title)
                )
            continue
        assert r.field is not None
        if task is None:
            undo.notes.append(f"card {r.task_id} is gone; nothing to put back")
        elif task.value(r.field) == r.after:
            undo.changes.append(Change(task.id, r.field, r.after, r.before, f"undo plan {plan_id}", task.title))
        else:
            undo.conflicts.append(Conflict(task.id, r.field, r.after, task.value(r.field), r.before, task.title))
    return undo
