"""The engine's properties on the three connectors (local board, fake Trello, fake Asana over
loopback): an applied plan settles and a re-run writes nothing, people's edits survive, and a
crash at any change resumes to the same end state as an uninterrupted apply."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.connectors.asana import AsanaConnector
from tasksync.connectors.base import Connector
from tasksync.connectors.http import ScaledClock, SlidingWindowLimiter
from tasksync.connectors.local import LocalConnector
from tasksync.examples import TODAY, generate
from tasksync.model import Field, Snapshot, TaskWrite, WriteResult
from tasksync.settings import Settings, load_settings
from tasksync.sync.workspace import Workspace
from tasksync.testing.boards import end_state, fake_trello_board
from tasksync.testing.fake_asana import FakeAsana
from tasksync.testing.fake_trello import FakeTrello
from test_service_asana import AsanaDemo

KEY, TOKEN = "fake-key", "fake-token"
RATE_CLOCK = ScaledClock(50.0)
CARDS = 40
_n = itertools.count()

Make = Callable[[ExitStack, Path], tuple[Settings, Callable[[], Connector]]]


def local_board(stack: ExitStack, folder: Path) -> tuple[Settings, Callable[[], Connector]]:
    s = load_settings(generate(folder, cards=CARDS))
    return s, lambda: LocalConnector(s)


def trello_board(stack: ExitStack, folder: Path) -> tuple[Settings, Callable[[], Connector]]:
    s, connect, _ = trello_fake_board(stack, folder)
    return s, connect


def trello_fake_board(
    stack: ExitStack, folder: Path, attempts: int = 6
) -> tuple[Settings, Callable[[], Connector], FakeTrello]:
    return fake_trello_board(stack, folder, cards=CARDS, clock=RATE_CLOCK, attempts=attempts)


def asana_board(stack: ExitStack, folder: Path) -> tuple[Settings, Callable[[], Connector]]:
    fake = stack.enter_context(FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7))
    demo = AsanaDemo(folder, fake)

    def connect() -> Connector:
        limiter = SlidingWindowLimiter(10_000, 60.0 / fake.time_scale)
        return AsanaConnector(demo.settings, limiter=limiter, backoff=0.01, timeout=5.0)

    return demo.settings, connect


def balanced(make: Make) -> Make:
    """``make`` with the board divided by the ``balanced`` policy: these properties are the engine's
    (writes, resumes, people's edits), not the division's, and ``optimal``'s exact steps cost
    seconds a plan; every policy's settling has its own properties (``test_engine_properties.py``)."""

    def made(stack: ExitStack, folder: Path) -> tuple[Settings, Callable[[], Connector]]:
        s, connect = make(stack, folder)
        return s.model_copy(update={"policy": s.policy.model_copy(update={"name": "balanced"})}), connect

    return made


BACKENDS = {"local": balanced(local_board), "trello": balanced(trello_board), "asana": balanced(asana_board)}
EXAMPLES = {"local": 8, "trello": 4, "asana": 4}


class _Crash(Exception):
    pass


class Crashing:
    """A connector that dies after ``limit`` write results (a crash mid-apply)."""

    def __init__(self, inner: Connector, limit: int) -> None:
        self.inner, self.limit, self.board = inner, limit, inner.board

    def read(self) -> Snapshot:
        return self.inner.read()

    def write(self, writes: Any) -> Iterator[WriteResult]:
        for n, result in enumerate(self.inner.write(writes)):
            if n >= self.limit:
                raise _Crash
            yield result

    def create(self, new_tasks: Any) -> Iterator[WriteResult]:
        return self.inner.create(new_tasks)

    def find_created(self, key: str) -> str | None:
        return self.inner.find_created(key)


def workspace(s: Settings, conn: Connector) -> Workspace:
    return Workspace(s, connector=conn, today=TODAY)


def check_settled(ws: Workspace) -> None:
    again = ws.plan()
    assert again.plan.empty, (again.plan.changes[:3], again.plan.creates[:3])


def prop_people_edits_survive(make: Make, tmp: Path, data: st.DataObject) -> None:
    with ExitStack() as stack:
        s, connect = make(stack, tmp / f"b{next(_n)}")
        with workspace(s, connect()) as ws:
            ws.plan()
            _, outcome = ws.apply()
            assert outcome.ok, outcome
            check_settled(ws)
            snap = ws.connector.read()
            members = [m.id for m in snap.members]
            linked = [t for t in snap.tasks if t.crm_ref]
            edited = data.draw(st.lists(st.sampled_from(linked), min_size=1, max_size=4, unique_by=lambda t: t.id))
            edits = {t.id: (data.draw(st.sampled_from([m for m in members if (m,) != t.assignees])),) for t in edited}
            list(ws.connector.write([TaskWrite(tid, {Field.ASSIGNEES: owner}) for tid, owner in edits.items()]))
            result = ws.plan()
            assert not any(c.task_id in edits and c.field is Field.ASSIGNEES for c in result.plan.changes)
            # Each hand-moved card is noticed: an edit the policy keeps (or a conflict where it wants another).
            noticed = [*result.plan.conflicts, *result.plan.edits]
            assert {c.task_id for c in noticed if c.field is Field.ASSIGNEES} >= set(edits)
            ws.apply()
            after = ws.connector.read()
            assert {tid: after.tasks_by_id[tid].assignees for tid in edits} == edits
            check_settled(ws)


def prop_crash_resumes_to_the_same_end_state(make: Make, tmp: Path, limit: int) -> None:
    with ExitStack() as stack:
        n = next(_n)
        s1, connect1 = make(stack, tmp / f"clean{n}")
        s2, connect2 = make(stack, tmp / f"crash{n}")
        with workspace(s1, connect1()) as ws:
            ws.plan()
            ws.apply()
            expected = end_state(ws.connector.read())
        with workspace(s2, Crashing(connect2(), limit)) as ws:  # type: ignore[arg-type]
            ws.plan()
            with contextlib.suppress(_Crash):
                ws.apply()
        with workspace(s2, connect2()) as ws:
            ws.pending_resume()
            assert end_state(ws.connector.read()) == expected
            check_settled(ws)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_people_edits_survive_and_a_rerun_is_a_no_op(tmp_path: Path, backend: str) -> None:
    make = BACKENDS[backend]

    @settings(max_examples=EXAMPLES[backend], deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        prop_people_edits_survive(make, tmp_path, data)

    prop()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_crash_at_any_change_resumes_to_the_same_end_state(tmp_path: Path, backend: str) -> None:
    make = BACKENDS[backend]

    @settings(max_examples=EXAMPLES[backend], deadline=None, suppress_health_check=list(HealthCheck))
    @given(limit=st.integers(min_value=0, max_value=60))
    def prop(limit: int) -> None:
        prop_crash_resumes_to_the_same_end_state(make, tmp_path, limit)

    prop()


class EditedMidway:
    """A board on which a person sets owners (through ``person``, with no expectation) after the
    ``after``-th write result of an apply."""

    def __init__(self, inner: Connector, person: Connector, after: int) -> None:
        self.inner, self.person, self.after, self.board = inner, person, after, inner.board
        self.edits: dict[str, tuple[str, ...]] = {}

    def read(self) -> Snapshot:
        return self.inner.read()

    def write(self, writes: Any) -> Iterator[WriteResult]:
        edited = False
        for n, result in enumerate(self.inner.write(writes)):
            if n == self.after:
                self._edit()
                edited = True
            yield result
        if not edited:
            self._edit()  # a short plan: the person's edit lands before its creates

    def _edit(self) -> None:
        list(self.person.write([TaskWrite(tid, {Field.ASSIGNEES: o}) for tid, o in self.edits.items()]))

    def create(self, new_tasks: Any) -> Iterator[WriteResult]:
        return self.inner.create(new_tasks)

    def find_created(self, key: str) -> str | None:
        return self.inner.find_created(key)


def prop_edits_during_an_apply_survive(make: Make, tmp: Path, data: st.DataObject) -> None:
    with ExitStack() as stack:
        s, connect = make(stack, tmp / f"m{next(_n)}")
        conn = connect()
        snap = conn.read()
        one_owner = snap.max_assignees == 1
        members = [m.id for m in snap.members]
        linked = [t for t in snap.tasks if t.crm_ref]
        edited = data.draw(st.lists(st.sampled_from(linked), min_size=1, max_size=5, unique_by=lambda t: t.id))
        midway = EditedMidway(conn, connect(), data.draw(st.integers(min_value=0, max_value=40)))
        with workspace(s, midway) as ws:  # type: ignore[arg-type]
            wanted = {c.task_id: c.after for c in ws.plan().plan.changes if c.field is Field.ASSIGNEES}
            # A real edit: a value neither the card's nor the plan's.
            choices = {t.id: [m for m in members if (m,) not in (t.assignees, wanted.get(t.id))] for t in edited}
            midway.edits = {tid: (data.draw(st.sampled_from(c)),) for tid, c in choices.items() if c}
            ws.apply()
        edits = midway.edits
        with workspace(s, connect()) as ws:
            now = ws.connector.read()
            assert {tid: now.tasks_by_id[tid].assignees for tid in edits} == edits, one_owner
            ws.plan()
            ws.apply()
            now = ws.connector.read()
            assert {tid: now.tasks_by_id[tid].assignees for tid in edits} == edits
            check_settled(ws)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_owners_set_by_a_person_during_an_apply_survive(tmp_path: Path, backend: str) -> None:
    make = BACKENDS[backend]

    @settings(max_examples=EXAMPLES[backend] - 2, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        prop_edits_during_an_apply_survive(make, tmp_path, data)

    prop()
