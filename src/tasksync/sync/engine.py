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
    NewTask,
    Plan,
    PlanKind,
    Snapshot,
    TaskWrite,
    canonical,
)
from tasksync.policies import Book, Decisions, build_book, get_policy
from tasksync.settings import Settings
from tasksync.sync.state import JournalRow, StateStore

__all__ = ["ApplyOutcome", "PlanResult", "apply_plan", "make_plan", "make_undo_plan", "resume"]

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
    """Compute the plan that takes ``snapshot`` to what the configured policy wants."""
    board = snapshot.board
    last = store.last_written(board)
    if not snapshot.tasks and last and not force:
        raise SafetyStop(
            f"{board}: the board reads empty but tasksync has written {len(last)} fields on it; "
            "refusing to plan (use --force if the board really was emptied)"
        )
    person = set() if force else store.person_owned(board)
    edits = {} if force else human_edits(snapshot, last, person)
    locked = {task_id for (task_id, f) in edits if f is Field.ASSIGNEES}
    book = build_book(snapshot, crm, settings, locked, today)
    already = store.created(board)
    book.items = [i for i in book.items if not (i.task_id is None and i.deal and i.deal.id in already)]
    decisions = get_policy(settings.policy.name).decide(book, settings)

    plan = Plan(
        id=new_plan_id(),
        board=board,
        kind=kind,
        base_fingerprint=snapshot.fingerprint(),
        created_at=datetime.now(UTC),
        notes=[*_crm_notes(crm), *book.notes, *decisions.notes],
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
            assert item.deal is not None
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
                    reason=f"open CRM deal without a card; {d.reason}",
                )
            )
            continue
        task = snapshot.task(item.task_id)
        assert task is not None
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
            reason = (
                d.reason
                if f is Field.ASSIGNEES
                else (
                    f"expected value {d.score:,.0f}"
                    if f is Field.PRIORITY
                    else f"CRM stage {item.deal.stage if item.deal else ''}"
                )
            )
            plan.changes.append(Change(task.id, f, current, value, reason, task.title))
    # New edits the policy did not want to touch are still worth showing once.
    seen = {(c.task_id, c.field) for c in plan.conflicts}
    for (task_id, f), written in edits.items():
        task = snapshot.task(task_id)
        if task is not None and (task_id, f) not in seen and (task_id, f) not in person:
            plan.conflicts.append(Conflict(task_id, f, written, task.value(f), task.value(f), task.title))
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


def _run(
    plan: Plan, connector: Connector, store: StateStore, rows: list[JournalRow], progress: Progress | None
) -> ApplyOutcome:
    """Send the pending journal rows of ``plan`` and record each result as it arrives."""
    outcome = ApplyOutcome(plan.id)
    pending = [r for r in rows if r.status == "pending"]
    total = len(pending)
    changes = [r for r in pending if r.op == "change"]
    by_task: dict[str, list[tuple[int, Field, FieldValue]]] = {}
    for r in changes:
        if r.task_id is not None and r.field is not None:
            by_task.setdefault(r.task_id, []).append((r.seq, r.field, r.after))
    writes = [TaskWrite(tid, {f: after for _, f, after in rs}) for tid, rs in by_task.items()]
    sent = 0
    for result in connector.write(writes):
        rs = by_task.get(result.task_id, [])
        with store.transaction():
            if result.ok:
                store.mark(plan.id, [seq for seq, _, _ in rs], "done")
                for _, f, after in rs:
                    store.record_written(plan.board, result.task_id, f, after, plan.id)
            else:
                store.mark(plan.id, [seq for seq, _, _ in rs], "failed", result.error)
        if result.ok:
            outcome.done += len(rs)
        else:
            outcome.failed.append(result.error or f"card {result.task_id}: write failed")
        sent += len(rs)
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
