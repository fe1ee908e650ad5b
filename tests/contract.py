"""The connector contract: behaviour every connector (local, Trello, Asana) must have.

Use it by subclassing :class:`ConnectorContract` in a test module and providing a ``connector``
fixture that returns a fresh connector on a fresh board or project with at least two stages,
two members, two tasks and two priority options::

    class TestMyConnectorContract(ConnectorContract):
        @pytest.fixture
        def connector(self, tmp_path: Path) -> Connector:
            return MyConnector(...)

Nothing here knows a service: the tests speak only the :class:`Connector` protocol and the
neutral model. ``sample_trello_board`` builds a small board in Trello's JSON shape for the
connectors that use it (local file, fake Trello).
"""

from __future__ import annotations

import uuid
from typing import Any

from tasksync.connectors.base import Connector
from tasksync.model import Field, NewTask, Snapshot, TaskWrite, WriteStatus

__all__ = ["ConnectorContract", "sample_trello_board"]

MISSING_TASK_ID = "000000000000000000000000"  # well-formed for Trello ids and Asana gids


def sample_trello_board(board_id: str = "5f0000000000000000000001", cards: int = 4) -> dict[str, Any]:
    """A small board in Trello's JSON shape: 3 lists, 3 members, a Priority list field, a
    "CRM ID" text field, ``cards`` open cards (one archived card and one archived list too)."""

    def oid(n: int) -> str:
        return f"5f{n:022x}"

    lists = [
        {"id": oid(10 + i), "name": name, "pos": 1024.0 * (i + 1), "closed": False}
        for i, name in enumerate(("Lead", "Proposal", "Won"))
    ]
    lists.append({"id": oid(19), "name": "Old", "pos": 9999.0, "closed": True})
    members = [{"id": oid(20 + i), "fullName": f"Rep {c}", "username": f"rep{c.lower()}"} for i, c in enumerate("ABC")]
    prio = oid(30)
    options = [
        {"id": oid(31 + i), "idCustomField": prio, "value": {"text": t}, "pos": i}
        for i, t in enumerate(("P1", "P2", "P3"))
    ]
    link = oid(39)
    card_list = []
    items = []
    for i in range(cards):
        cid = oid(100 + i)
        card_list.append(
            {
                "id": cid,
                "name": f"Deal {i}",
                "desc": "",
                "idList": lists[i % 2]["id"],
                "idMembers": [members[i % 3]["id"]],
                "idLabels": [],
                "closed": False,
                "pos": 1000.0 + i,
                "dateLastActivity": "2026-01-01T00:00:00.000Z",
            }
        )
        items.append(
            {
                "id": oid(300 + i),
                "idCustomField": prio,
                "idModel": cid,
                "modelType": "card",
                "idValue": options[i % 3]["id"],
            }
        )
        items.append(
            {
                "id": oid(400 + i),
                "idCustomField": link,
                "idModel": cid,
                "modelType": "card",
                "value": {"text": f"D-{i}"},
            }
        )
    card_list.append(
        {
            "id": oid(199),
            "name": "Archived deal",
            "desc": "",
            "idList": lists[0]["id"],
            "idMembers": [],
            "closed": True,
        }
    )
    return {
        "id": board_id,
        "name": "Contract board",
        "lists": lists,
        "members": members,
        "labels": [{"id": oid(50), "name": "pinned", "color": "red"}],
        "customFields": [
            {"id": prio, "name": "Priority", "type": "list", "options": options},
            {"id": link, "name": "CRM ID", "type": "text"},
        ],
        "cards": card_list,
        "customFieldItems": items,
    }


def _other(values: tuple[str, ...], current: str | None) -> str:
    return next(v for v in values if v != current)


class ConnectorContract:
    """The tests; subclasses provide the ``connector`` fixture (a fresh board per test)."""

    # ------------------------------------------------------------------ reading

    def test_read_gives_consistent_snapshot(self, connector: Connector) -> None:
        snap = connector.read()
        assert isinstance(snap, Snapshot)
        assert snap.board == connector.board
        assert len(snap.stages) >= 2 and len(snap.members) >= 2 and len(snap.tasks) >= 2
        assert len(snap.priority_options) >= 2
        ids = [t.id for t in snap.tasks]
        assert len(ids) == len(set(ids)), "task ids are unique"
        stage_ids = {s.id for s in snap.stages}
        member_ids = {m.id for m in snap.members}
        positions = [s.position for s in snap.stages]
        assert positions == sorted(positions), "stages come in board order"
        for t in snap.tasks:
            assert t.stage_id in stage_ids, f"{t.id} is in a stage of the board"
            assert set(t.assignees) <= member_ids, f"{t.id} has only board members"
            assert list(t.assignees) == sorted(set(t.assignees)), "assignees are canonical"
            assert t.priority is None or t.priority in snap.priority_options
            assert not t.closed, "only open tasks are read"

    def test_read_twice_gives_same_fingerprint(self, connector: Connector) -> None:
        assert connector.read().fingerprint() == connector.read().fingerprint()

    # ------------------------------------------------------------------ writing

    def test_written_fields_read_back_equal(self, connector: Connector) -> None:
        before = connector.read()
        task = before.tasks[0]
        members = tuple(sorted(m.id for m in before.members))
        # One new assignee: every service has single-assignee tasks (Asana has no other kind).
        new_assignees = tuple(sorted(m for m in members if m not in task.assignees)[:1])
        new_stage = _other(tuple(s.id for s in before.stages), task.stage_id)
        new_priority = _other(before.priority_options, task.priority)
        write = TaskWrite(
            task.id,
            {
                Field.ASSIGNEES: new_assignees,
                Field.STAGE: new_stage,
                Field.PRIORITY: new_priority,
            },
        )
        results = list(connector.write([write]))
        assert [(r.task_id, r.ok) for r in results] == [(task.id, True)], results
        after = connector.read()
        got = after.task(task.id)
        assert got is not None
        assert got.assignees == new_assignees
        assert got.stage_id == new_stage
        assert got.priority == new_priority
        others_before = {t.id: t for t in before.tasks if t.id != task.id}
        for t in after.tasks:
            if t.id in others_before:
                old = others_before[t.id]
                assert (t.assignees, t.stage_id, t.priority) == (
                    old.assignees,
                    old.stage_id,
                    old.priority,
                ), f"{t.id} was not touched"

    def test_assignees_can_be_cleared_and_priority_unset(self, connector: Connector) -> None:
        task = connector.read().tasks[1]
        results = list(connector.write([TaskWrite(task.id, {Field.ASSIGNEES: (), Field.PRIORITY: None})]))
        assert all(r.ok for r in results), results
        got = connector.read().task(task.id)
        assert got is not None and got.assignees == () and got.priority is None

    def test_one_result_per_write_and_failures_are_results(self, connector: Connector) -> None:
        snap = connector.read()
        a, b = snap.tasks[0], snap.tasks[1]
        stage = _other(tuple(s.id for s in snap.stages), a.stage_id)
        writes = [
            TaskWrite(a.id, {Field.STAGE: stage}),
            TaskWrite(MISSING_TASK_ID, {Field.STAGE: stage}),
            TaskWrite(b.id, {Field.ASSIGNEES: (snap.members[0].id,)}),
        ]
        results = list(connector.write(writes))
        assert sorted(r.task_id for r in results) == sorted(w.task_id for w in writes)
        by_id = {r.task_id: r for r in results}
        assert by_id[a.id].ok and by_id[b.id].ok
        missing = by_id[MISSING_TASK_ID]
        assert not missing.ok and missing.error and MISSING_TASK_ID in missing.error

    def test_write_expecting_the_current_values_lands(self, connector: Connector) -> None:
        snap = connector.read()
        task = snap.tasks[0]
        stage = _other(tuple(s.id for s in snap.stages), task.stage_id)
        write = TaskWrite(task.id, {Field.STAGE: stage}, {Field.STAGE: task.stage_id})
        (result,) = connector.write([write])
        assert result.outcome is WriteStatus.DONE, result
        got = connector.read().task(task.id)
        assert got is not None and got.stage_id == stage

    def test_stale_write_is_a_conflict_and_not_written(self, connector: Connector) -> None:
        """A card that no longer holds what the plan expected (``before``) is left alone."""
        snap = connector.read()
        task = snap.tasks[0]
        others = tuple(sorted(m.id for m in snap.members if m.id not in task.assignees))
        stage = _other(tuple(s.id for s in snap.stages), task.stage_id)
        stale = TaskWrite(
            task.id,
            {Field.ASSIGNEES: others[:1], Field.STAGE: stage},
            {Field.ASSIGNEES: others[1:2], Field.STAGE: task.stage_id},  # the plan saw another owner
        )
        (result,) = connector.write([stale])
        assert result.outcome is WriteStatus.CONFLICT and not result.ok, result
        got = connector.read().task(task.id)
        assert got is not None and (got.assignees, got.stage_id) == (task.assignees, task.stage_id), "nothing written"

    def test_unknown_priority_option_fails_naming_the_task(self, connector: Connector) -> None:
        task = connector.read().tasks[0]
        results = list(connector.write([TaskWrite(task.id, {Field.PRIORITY: "No such tier"})]))
        assert len(results) == 1 and not results[0].ok
        assert results[0].error and "No such tier" in results[0].error

    # ------------------------------------------------------------------ creating

    def _new_task(self, snap: Snapshot) -> NewTask:
        return NewTask(
            key=f"CT-{uuid.uuid4().hex[:8]}",
            title="Contract deal",
            stage_id=snap.stages[0].id,
            assignees=(snap.members[0].id,),
            priority=snap.priority_options[0],
            description="Created by the contract test.",
        )

    def test_create_then_find_created(self, connector: Connector) -> None:
        snap = connector.read()
        new = self._new_task(snap)
        results = list(connector.create([new]))
        assert len(results) == 1 and results[0].ok and results[0].key == new.key, results
        card_id = results[0].task_id
        assert connector.find_created(new.key) == card_id
        assert connector.find_created("no-such-key") is None
        got = connector.read().task(card_id)
        assert got is not None
        assert got.crm_ref == new.key
        assert got.title == new.title
        assert got.stage_id == new.stage_id
        assert got.assignees == new.assignees
        assert got.priority == new.priority

    def test_second_create_with_same_key_does_not_duplicate(self, connector: Connector) -> None:
        snap = connector.read()
        new = self._new_task(snap)
        first = list(connector.create([new]))
        second = list(connector.create([new]))
        assert first[0].ok and second[0].ok
        assert first[0].task_id == second[0].task_id
        after = connector.read()
        assert sum(1 for t in after.tasks if t.crm_ref == new.key) == 1
        assert len(after.tasks) == len(snap.tasks) + 1
