"""Apply, resume, settle and undo: the engine's writing half, through the journal.

A plan is written by :func:`apply_plan`: every change and create is journaled before it is sent
and marked with its outcome as each answer arrives, so a crash at any moment leaves enough to
:func:`resume` without losing or repeating a change. A write whose answer was lost is settled by
the next read (:func:`settle_unknown`); :func:`make_undo_plan` reverts an applied plan. The caller
holds the state store's writer lock (:class:`tasksync.sync.lock.WriterLock`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tasksync.connectors.base import Connector
from tasksync.errors import StalePlanError
from tasksync.model import (
    BoardRef,
    Change,
    Conflict,
    Field,
    FieldValue,
    JournalStatus,
    Plan,
    PlanKind,
    PlanStatus,
    Snapshot,
    TaskWrite,
    WriteStatus,
)
from tasksync.sync.state import JournalRow, StateStoreProtocol

__all__ = [
    "ApplyOutcome",
    "Progress",
    "apply_plan",
    "human_edits",
    "make_undo_plan",
    "new_plan_id",
    "resume",
    "settle_unknown",
]

Progress = Callable[[int, int], None]


@dataclass
class ApplyOutcome:
    plan_id: str
    done: int = 0
    failed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    created: int = 0
    unknown: list[str] = field(default_factory=list)  # sent, answer lost: settled at the next read
    missed: int = 0  # field changes not written (their cards failed, conflicted or got no answer)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unknown


def new_plan_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _check_fresh(plan: Plan, snapshot: Snapshot) -> None:
    if snapshot.fingerprint() != plan.base_fingerprint:
        raise StalePlanError(
            f"{plan.board}: the board changed since plan {plan.id} was computed; "
            "run `tasksync plan` again and review the new plan"
        )


def settle_unknown(store: StateStoreProtocol, snapshot: Snapshot, *, applying: bool = False) -> int:
    """Resolve the changes whose answer was lost (journal UNKNOWN) by what the board shows now.

    The card holds the value tasksync sent: the write landed, so it is done and recorded as
    tasksync's (never taken for a person's edit). The card still holds the old value: it did not
    land; the row fails and the next plan proposes the change again. Anything else: a person set
    the field meanwhile (a conflict). A write reported failed (a connector that could not tell a
    lost answer from a refusal) whose card nevertheless holds the value sent landed too, and is
    settled the same way. Creates with a lost answer are left for :func:`resume`, which sends them
    again (a create finds its card by marker and completes it). Returns the rows settled.

    Rows of a plan still ``applying`` may belong to a live writer (this read may predate its
    write): only :func:`resume`, under the writer lock, settles them (``applying=True``).
    """
    board = snapshot.board
    unknown = [
        r
        for r in store.journal_rows(board, JournalStatus.UNKNOWN)
        if r.op == "change" and (applying or store.plan_status(r.plan_id) is not PlanStatus.APPLYING)
    ]
    failed = [
        r
        for r in store.journal_rows(board, JournalStatus.FAILED)
        if r.op == "change" and store.plan_status(r.plan_id) is PlanStatus.PARTIAL
    ]
    if not unknown and not failed:
        return 0
    person = store.person_owned(board)
    plans: set[str] = set()
    settled = 0
    with store.transaction():
        for r in [*unknown, *failed]:
            task = snapshot.task(r.task_id or "")
            current = task.value(r.field) if task is not None and r.field is not None else None
            if task is not None and r.field is not None and current == r.after:
                store.mark(r.plan_id, [r.seq], JournalStatus.DONE)
                if (task.id, r.field) not in person:
                    store.record_written(board, task.id, r.field, r.after, r.plan_id)
            elif r.status is JournalStatus.FAILED:
                continue
            elif task is not None and current == r.before:
                store.mark(r.plan_id, [r.seq], JournalStatus.FAILED, "the answer was lost and the card kept its value")
            else:
                store.mark(r.plan_id, [r.seq], JournalStatus.CONFLICT, "changed by a person after an unanswered write")
            plans.add(r.plan_id)
            settled += 1
        for plan_id in plans:
            _settle_status(store, plan_id)
    return settled


def _settle_status(store: StateStoreProtocol, plan_id: str) -> None:
    """A finished plan's status from its journal: applied, or partial while a row failed or is
    still unknown. An applying plan is left to :func:`resume`."""
    status = store.plan_status(plan_id)
    if status not in (PlanStatus.APPLIED, PlanStatus.PARTIAL):
        return
    rows = store.journal(plan_id)
    bad = any(r.status in (JournalStatus.FAILED, JournalStatus.UNKNOWN, JournalStatus.PENDING) for r in rows)
    store.set_status(plan_id, PlanStatus.PARTIAL if bad else PlanStatus.APPLIED)


def apply_plan(
    plan: Plan,
    connector: Connector,
    store: StateStoreProtocol,
    *,
    snapshot: Snapshot | None = None,
    progress: Progress | None = None,
) -> ApplyOutcome:
    """Write a plan, journaling every change. Refuses a plan older than the board.

    The caller holds the state store's writer lock (:class:`tasksync.sync.lock.WriterLock`).
    """
    snapshot = snapshot or connector.read()
    _check_fresh(plan, snapshot)
    interrupted = store.latest(plan.board, PlanStatus.APPLYING)
    if interrupted:
        raise StalePlanError(
            f"{plan.board}: plan {interrupted} was interrupted; run `tasksync apply` to finish it first"
        )
    settle_unknown(store, snapshot)
    if store.plan_status(plan.id) is None:
        store.save_plan(plan, PlanStatus.PROPOSED)
    store.start_journal(plan)
    outcome = _run(plan, connector, store, store.journal(plan.id), progress)
    _record_baseline(plan, snapshot, store)
    return outcome


def _record_baseline(plan: Plan, snapshot: Snapshot, store: StateStoreProtocol) -> None:
    """After an apply, remember the owner, priority and list of every linked card as tasksync left
    them, so that a person's later change to any of them is recognised and respected (a list
    moved by hand is a person's only where ``[policy] sync_stage`` moves cards: :func:`diff`)."""
    if plan.kind is PlanKind.UNDO:
        return
    values: list[tuple[str, Field, FieldValue]] = []
    for t in snapshot.tasks:
        if t.crm_ref:
            values += [(t.id, f, t.value(f)) for f in (Field.ASSIGNEES, Field.PRIORITY, Field.STAGE)]
    store.record_baseline(plan.board, values, plan.id)
    # A person's edit, once applied around, stays theirs even if later set back to our value; the
    # value kept is still the one tasksync last wrote or saw, which later conflicts name.
    store.mark_person_owned(
        plan.board, [(c.task_id, c.field, c.last_written) for c in [*plan.conflicts, *plan.edits]], plan.id
    )


def _pending_writes(plan: Plan, rows: list[JournalRow]) -> tuple[list[TaskWrite], dict[str, list[int]]]:
    """``plan.writes()`` restricted to the fields whose journal rows are still pending, and the
    journal sequence numbers each write settles."""
    pending = {(r.task_id, r.field): r.seq for r in rows if r.op == "change" and r.status is JournalStatus.PENDING}
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
    plan: Plan, connector: Connector, store: StateStoreProtocol, rows: list[JournalRow], progress: Progress | None
) -> ApplyOutcome:
    """Send the pending journal rows of ``plan`` and record each result as it arrives; then
    settle the plan's status (and, for an undo, mark the plan it reverts as undone)."""
    outcome = ApplyOutcome(plan.id)
    total = sum(1 for r in rows if r.status is JournalStatus.PENDING)
    counter = _Progress(total, progress)
    _send_changes(plan, connector, store, rows, outcome, counter)
    _send_creates(plan, connector, store, rows, outcome, counter)
    with store.transaction():
        # Partial while a write failed or went unanswered, as the journal settles it later.
        store.set_status(plan.id, PlanStatus.PARTIAL if not outcome.ok else PlanStatus.APPLIED)
        if plan.kind is PlanKind.UNDO and plan.undoes and outcome.ok:
            # Undone once all is put back; until then it can be undone again, for the rest.
            store.set_status(plan.undoes, PlanStatus.UNDONE)
    return outcome


@dataclass
class _Progress:
    total: int
    report: Progress | None
    sent: int = 0

    def add(self, n: int) -> None:
        self.sent += n
        if self.report:
            self.report(self.sent, self.total)


def _send_changes(
    plan: Plan,
    connector: Connector,
    store: StateStoreProtocol,
    rows: list[JournalRow],
    outcome: ApplyOutcome,
    counter: _Progress,
) -> None:
    writes, seqs = _pending_writes(plan, rows)
    by_task = {w.task_id: w for w in writes}
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
        outcome.missed += 0 if status is WriteStatus.DONE else len(done)
        if status is WriteStatus.DONE:
            outcome.done += len(done)
        elif status is WriteStatus.CONFLICT:
            outcome.conflicts.append(result.error or f"card {result.task_id}: changed since the plan; left alone")
        elif status is WriteStatus.UNKNOWN:
            outcome.unknown.append(result.error or f"card {result.task_id}: no answer; checked at the next read")
        else:
            outcome.failed.append(result.error or f"card {result.task_id}: write failed")
        counter.add(len(done))


def _send_creates(
    plan: Plan,
    connector: Connector,
    store: StateStoreProtocol,
    rows: list[JournalRow],
    outcome: ApplyOutcome,
    counter: _Progress,
) -> None:
    """Create the cards of the pending create rows. A row is done only when the connector says the
    card is complete (its marker, CRM link and priority); a create whose answer was lost stays
    unknown and is sent again by the next :func:`resume` (the marker finds the first card)."""
    creates = {r.key: r for r in rows if r.op == "create" and r.status is JournalStatus.PENDING}
    new_tasks = [n for n in plan.creates if n.key in creates]
    by_key = {n.key: n for n in new_tasks}
    for result in connector.create(new_tasks):
        row = creates[result.key or ""]
        new = by_key[row.key or ""]
        status = result.outcome
        if status is WriteStatus.DONE:
            with store.transaction():
                store.mark_created(plan.board, plan.id, row.seq, new.key, result.task_id)
                store.record_written(plan.board, result.task_id, Field.ASSIGNEES, new.assignees, plan.id)
                store.record_written(plan.board, result.task_id, Field.STAGE, new.stage_id, plan.id)
                # Open (a task an undo completed is opened again: no longer taken back).
                store.record_written(plan.board, result.task_id, Field.CLOSED, False, plan.id)
                if new.priority:
                    store.record_written(plan.board, result.task_id, Field.PRIORITY, new.priority, plan.id)
            outcome.created += 1
            outcome.done += 1
        elif status is WriteStatus.UNKNOWN:
            store.mark(plan.id, [row.seq], JournalStatus.UNKNOWN, result.error)
            outcome.unknown.append(result.error or f"new card {new.title!r}: no answer; sent again by the next apply")
        else:
            store.mark(plan.id, [row.seq], JournalStatus.FAILED, result.error)
            outcome.failed.append(result.error or f"new card {new.title!r}: create failed")
        counter.add(1)


def resume(
    connector: Connector, store: StateStoreProtocol, board: BoardRef, progress: Progress | None = None
) -> ApplyOutcome | None:
    """Finish a plan whose apply was interrupted, or None if there is none.

    The caller holds the writer lock, so a plan still ``applying`` has no live writer: it was
    interrupted. Writes whose answer was lost are settled first (:func:`settle_unknown`). A pending
    change whose card already holds the new value was sent before the crash: it is marked done.
    One whose card still holds the old value is sent (with that value as its ``before``).
    Anything else was changed by a person meanwhile and becomes a conflict. Pending creates, and
    creates whose answer was lost, are sent again: the connector finds a card already made by its
    marker and completes its CRM link and priority, so a create is never done half-made and never
    made twice.
    """
    snapshot: Snapshot | None = None
    plan_id = store.latest(board, PlanStatus.APPLYING)
    unknown_creates = [r for r in store.journal_rows(board, JournalStatus.UNKNOWN) if r.op == "create"]
    unknown_changes = any(r.op == "change" for r in store.journal_rows(board, JournalStatus.UNKNOWN))
    if plan_id is None and not unknown_creates:
        if unknown_changes:
            settle_unknown(store, connector.read(), applying=True)
        return None
    snapshot = connector.read()
    settle_unknown(store, snapshot, applying=True)
    outcome: ApplyOutcome | None = None
    if plan_id is not None:
        outcome = _resume_plan(plan_id, snapshot, connector, store, progress)
    for other in dict.fromkeys(r.plan_id for r in unknown_creates if r.plan_id != plan_id):
        store.mark(other, [r.seq for r in unknown_creates if r.plan_id == other], JournalStatus.PENDING)
        plan, _ = store.load_plan(other)
        more = ApplyOutcome(other)
        _send_creates(plan, connector, store, store.journal(other), more, _Progress(0, None))
        _settle_status(store, other)
        outcome = _merge(outcome, more)
    return outcome


def _merge(first: ApplyOutcome | None, second: ApplyOutcome) -> ApplyOutcome:
    if first is None:
        return second
    first.done += second.done
    first.missed += second.missed
    first.created += second.created
    first.failed.extend(second.failed)
    first.conflicts.extend(second.conflicts)
    first.unknown.extend(second.unknown)
    return first


def _resume_plan(
    plan_id: str, snapshot: Snapshot, connector: Connector, store: StateStoreProtocol, progress: Progress | None
) -> ApplyOutcome:
    plan, _ = store.load_plan(plan_id)
    board = plan.board
    conflicts: list[str] = []
    with store.transaction():
        for r in store.journal(plan_id):
            if r.status is JournalStatus.UNKNOWN and r.op == "create":
                store.mark(plan_id, [r.seq], JournalStatus.PENDING)
            if r.status is not JournalStatus.PENDING or r.op != "change" or r.field is None:
                continue
            task = snapshot.task(r.task_id or "")
            current = task.value(r.field) if task is not None else None
            if task is not None and current == r.after:
                store.mark(plan_id, [r.seq], JournalStatus.DONE)
                store.record_written(board, task.id, r.field, r.after, plan_id)
            elif task is None or current != r.before:
                store.mark(plan_id, [r.seq], JournalStatus.CONFLICT, "changed by a person during the interrupted apply")
                conflicts.append(f"{task.title if task else r.task_id}: {r.field.value} changed meanwhile")
    outcome = _run(plan, connector, store, store.journal(plan_id), progress)
    _record_baseline(plan, snapshot, store)
    outcome.conflicts.extend(conflicts)
    return outcome


def make_undo_plan(plan_id: str, snapshot: Snapshot, store: StateStoreProtocol) -> Plan:
    """A plan that puts back what ``plan_id`` changed, where cards still hold what it wrote.

    A card already back at its old value needs nothing; one holding a third value was changed
    after the plan and is left alone (a conflict)."""
    settle_unknown(store, snapshot)
    original, status = store.load_plan(plan_id)
    if status not in (PlanStatus.APPLIED, PlanStatus.PARTIAL):
        raise StalePlanError(f"plan {plan_id} is {status.value}; only an applied plan can be undone")
    undo = Plan(
        id=new_plan_id(),
        board=original.board,
        kind=PlanKind.UNDO,
        base_fingerprint=snapshot.fingerprint(),
        created_at=datetime.now(UTC),
        undoes=plan_id,
    )
    rows = store.journal(plan_id)
    taken = _created_cards_taken_on(original.board, rows, snapshot, store)
    for r in rows:
        if r.status is not JournalStatus.DONE or r.task_id is None:
            continue
        task = snapshot.task(r.task_id)
        if r.op == "create":
            if task is not None and task.id in taken:
                undo.conflicts.extend(taken[task.id])
            elif task is not None and not task.closed:
                undo.changes.append(
                    Change(task.id, Field.CLOSED, False, True, f"created by plan {plan_id}", task.title)
                )
            continue
        if r.field is None:
            continue
        if task is None:
            undo.notes.append(f"card {r.task_id} is gone; nothing to put back")
        elif task.value(r.field) == r.after:
            before = _still_on_board(r.before, snapshot, undo, task.title) if r.field is Field.ASSIGNEES else r.before
            if before != r.after:
                undo.changes.append(Change(task.id, r.field, r.after, before, f"undo plan {plan_id}", task.title))
        elif task.value(r.field) != r.before:
            undo.conflicts.append(Conflict(task.id, r.field, r.after, task.value(r.field), r.before, task.title))
    return undo


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


def _created_cards_taken_on(
    board: BoardRef, rows: list[JournalRow], snapshot: Snapshot, store: StateStoreProtocol
) -> dict[str, list[Conflict]]:
    """The open cards the plan of ``rows`` created that a person has changed since (owner, priority or
    list against what tasksync last wrote or saw): someone works on them, so undo leaves them
    open. Per card, a conflict for each changed field."""
    made = {r.task_id for r in rows if r.op == "create" and r.status is JournalStatus.DONE and r.task_id}
    if not made:
        return {}
    edits = human_edits(snapshot, store.last_written(board), store.person_owned(board))
    taken: dict[str, list[Conflict]] = {}
    for (task_id, f), written in edits.items():
        task = snapshot.task(task_id)
        if task_id in made and task is not None and not task.closed:
            current = task.value(f)
            taken.setdefault(task_id, []).append(Conflict(task_id, f, written, current, current, task.title))
    return taken


def _still_on_board(members: FieldValue, snapshot: Snapshot, undo: Plan, title: str) -> FieldValue:
    """The members to put back on a card, without those who have left the board since (the
    service refuses them); a note names the card."""
    if not isinstance(members, tuple) or not snapshot.members:
        return members
    kept = tuple(m for m in members if m in snapshot.members_by_id)
    if kept != members:
        undo.notes.append(f"card {title!r}: {len(members) - len(kept)} former owner(s) left the board; not put back")
    return kept
