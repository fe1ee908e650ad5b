"""The engine's pieces on their own: human edits, the plan's JSON round trip, undo plans and the
settling of writes whose answer was lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync.errors import StalePlanError
from tasksync.model import (
    BoardRef,
    Change,
    Conflict,
    Field,
    JournalStatus,
    NewTask,
    Plan,
    PlanKind,
    PlanStatus,
    Snapshot,
    Stage,
    Task,
)
from tasksync.sync.engine import human_edits, make_undo_plan, settle_unknown
from tasksync.sync.state import StateStore

BOARD = BoardRef("local", "board.json")


def snapshot(*tasks: Task) -> Snapshot:
    return Snapshot(BOARD, "b", (), (Stage("s1", "Doing"), Stage("s2", "Done")), tasks, ("P1", "P2"))


def task(tid: str, owners: tuple[str, ...] = ("m1",), prio: str | None = "P1", stage: str = "s1") -> Task:
    return Task(tid, f"Card {tid}", stage, owners, prio, crm_ref=f"D{tid}")


def test_human_edits_are_changed_or_person_owned_fields_of_present_cards() -> None:
    snap = snapshot(task("a", ("m2",)), task("b"), task("c"))
    last = {
        ("a", Field.ASSIGNEES): ("m1",),  # changed by a person since
        ("b", Field.ASSIGNEES): ("m1",),  # unchanged
        ("c", Field.PRIORITY): "P1",  # unchanged, but a person's for good
        ("gone", Field.PRIORITY): "P2",  # card no longer on the board
    }
    person = {("c", Field.PRIORITY)}
    assert human_edits(snap, last, person) == {("a", Field.ASSIGNEES): ("m1",), ("c", Field.PRIORITY): "P1"}
    assert human_edits(snap, last, set()) == {("a", Field.ASSIGNEES): ("m1",)}


values = st.one_of(st.none(), st.text(max_size=5), st.tuples(st.text(min_size=1, max_size=4)))
changes = st.builds(
    lambda tid, f, b, a, r: Change(tid, f, b if f is not Field.ASSIGNEES else ("x",), a, r, tid),
    st.text(min_size=1, max_size=6),
    st.sampled_from([Field.PRIORITY, Field.STAGE]),
    st.one_of(st.none(), st.text(max_size=5)),
    st.one_of(st.none(), st.text(max_size=5)),
    st.text(max_size=20),
)
owner_changes = st.builds(
    lambda tid, b, a: Change(tid, Field.ASSIGNEES, tuple(sorted(b)), tuple(sorted(a)), "fit", ""),
    st.text(min_size=1, max_size=6),
    st.frozensets(st.text(min_size=1, max_size=4), max_size=3),
    st.frozensets(st.text(min_size=1, max_size=4), max_size=3),
)
new_tasks = st.builds(
    NewTask,
    key=st.text(min_size=1, max_size=8),
    title=st.text(max_size=20),
    stage_id=st.text(min_size=1, max_size=5),
    assignees=st.lists(st.text(min_size=1, max_size=4), max_size=2).map(tuple),
    priority=st.one_of(st.none(), st.text(max_size=4)),
    description=st.text(max_size=20),
    due=st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))),
    reason=st.text(max_size=10),
)


@given(
    ch=st.lists(st.one_of(changes, owner_changes), max_size=6),
    cr=st.lists(new_tasks, max_size=3),
    notes=st.lists(st.text(max_size=30), max_size=3),
    kind=st.sampled_from(list(PlanKind)),
    undoes=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
)
def test_plan_json_round_trip(
    ch: list[Change], cr: list[NewTask], notes: list[str], kind: PlanKind, undoes: str | None
) -> None:
    plan = Plan(
        id="20260101-000000-abcd",
        board=BOARD,
        kind=kind,
        base_fingerprint="0123456789abcdef",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        changes=ch,
        creates=cr,
        conflicts=[Conflict(c.task_id, c.field, c.before, c.after, c.after, c.title) for c in ch[:2]],
        notes=notes,
        undoes=undoes,
    )
    assert Plan.from_json(plan.to_json()) == plan
    writes = plan.writes()
    assert sum(len(w.values) for w in writes) == len({(c.task_id, c.field) for c in ch})
    for w in writes:
        assert w.values.keys() == w.before.keys()


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.sqlite3")


def applied(store: StateStore, changes: list[Change], creates: Sequence[NewTask] = ()) -> Plan:
    plan = Plan("p1", BOARD, PlanKind.SYNC, "f", datetime(2026, 1, 1, tzinfo=UTC), list(changes), list(creates))
    store.save_plan(plan)
    store.start_journal(plan)
    store.mark(plan.id, range(len(changes)), JournalStatus.DONE)
    store.set_status(plan.id, PlanStatus.APPLIED)
    return plan


def test_undo_puts_back_what_still_holds_our_value_and_nothing_else(store: StateStore) -> None:
    plan = applied(
        store,
        [
            Change("a", Field.ASSIGNEES, ("m1",), ("m2",)),  # still ours: put back
            Change("b", Field.PRIORITY, "P2", "P1"),  # a person set a third value: conflict
            Change("c", Field.PRIORITY, "P2", "P1"),  # already back at the old value: nothing
            Change("gone", Field.STAGE, "s1", "s2"),  # card gone: a note
        ],
        [NewTask("D1", "New", "s1")],
    )
    store.mark_created(BOARD, plan.id, 4, "D1", "new")
    snap = snapshot(task("a", ("m2",)), task("b", prio="P3"), task("c", prio="P2"), task("new"))
    undo = make_undo_plan(plan.id, snap, store)
    assert undo.kind is PlanKind.UNDO and undo.undoes == plan.id
    assert [(c.task_id, c.field, c.before, c.after) for c in undo.changes] == [
        ("a", Field.ASSIGNEES, ("m2",), ("m1",)),
        ("new", Field.CLOSED, False, True),
    ]
    assert [(c.task_id, c.current, c.wanted) for c in undo.conflicts] == [("b", "P3", "P2")]
    assert any("gone" in n for n in undo.notes)
    store.set_status(plan.id, PlanStatus.UNDONE)
    with pytest.raises(StalePlanError, match="is undone"):
        make_undo_plan(plan.id, snap, store)


def test_lost_answers_are_settled_by_the_next_read(store: StateStore) -> None:
    plan = applied(
        store,
        [
            Change("a", Field.PRIORITY, "P2", "P1"),  # landed
            Change("b", Field.PRIORITY, "P2", "P1"),  # did not land
            Change("c", Field.PRIORITY, "P2", "P1"),  # a person set P3 meanwhile
        ],
    )
    store.mark(plan.id, [0, 1, 2], JournalStatus.UNKNOWN, "no answer")
    store.set_status(plan.id, PlanStatus.PARTIAL)
    snap = snapshot(task("a", prio="P1"), task("b", prio="P2"), task("c", prio="P3"))
    assert settle_unknown(store, snap) == 3
    assert [r.status for r in store.journal(plan.id)] == [
        JournalStatus.DONE,
        JournalStatus.FAILED,
        JournalStatus.CONFLICT,
    ]
    # The landed write is tasksync's: not a person's edit at the next plan.
    assert store.last_written(BOARD) == {("a", Field.PRIORITY): "P1"}
    assert human_edits(snap, store.last_written(BOARD), store.person_owned(BOARD)) == {}
    assert store.plan_status(plan.id) is PlanStatus.PARTIAL  # one write failed
    assert settle_unknown(store, snap) == 0


def test_a_plan_whose_lost_answers_all_landed_becomes_applied(store: StateStore) -> None:
    plan = applied(store, [Change("a", Field.PRIORITY, "P2", "P1")])
    store.mark(plan.id, [0], JournalStatus.UNKNOWN)
    store.set_status(plan.id, PlanStatus.PARTIAL)
    settle_unknown(store, snapshot(task("a", prio="P1")))
    assert store.plan_status(plan.id) is PlanStatus.APPLIED


def test_a_live_writers_lost_answers_are_left_to_resume(store: StateStore) -> None:
    """A plan still applying may have a live writer whose write lands after this read: a reader
    (`plan`) must not settle its rows; resume, under the writer lock, does."""
    plan = applied(store, [Change("a", Field.PRIORITY, "P2", "P1")])
    store.set_status(plan.id, PlanStatus.APPLYING)
    store.mark(plan.id, [0], JournalStatus.UNKNOWN)
    stale_read = snapshot(task("a", prio="P2"))  # read before the write landed
    assert settle_unknown(store, stale_read) == 0
    assert store.journal(plan.id)[0].status is JournalStatus.UNKNOWN
    assert settle_unknown(store, snapshot(task("a", prio="P1")), applying=True) == 1
    assert store.journal(plan.id)[0].status is JournalStatus.DONE
