"""The local board while people edit it: nothing a person changes during an apply is lost, a card
changed since the plan is a conflict, and the file keeps its format (issue 17 item 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.local import LocalConnector
from tasksync.examples import TODAY, generate
from tasksync.model import Field, JournalStatus, TaskWrite, WriteStatus
from tasksync.settings import load_settings
from tasksync.sync.state import StateStore

DAY = TODAY.isoformat()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo", cards=60)


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def board_of(config: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    return data


def save(config: Path, data: dict[str, Any]) -> None:
    """A person saving the board (an editor: no lock taken)."""
    (config.parent / "board.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def plan_of(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(config, "plan", "--json", "--today", DAY) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)["plan"]
    return data


def test_edits_made_during_an_apply_survive(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_of(demo, capsys)
    owner_changes = [c for c in plan["changes"] if c["field"] == "assignees"]
    assert len(plan["changes"]) > 30
    target = owner_changes[-1]  # written in the last batch, after the person's edit
    members = [m["id"] for m in board_of(demo)["members"]]
    person_owner = next(m for m in members if [m] not in (target["before"], target["after"]))
    real_write = LocalConnector.write
    edited: dict[str, Any] = {}

    def write_while_a_person_edits(self: LocalConnector, writes: Any) -> Iterator[Any]:
        for n, result in enumerate(real_write(self, writes)):
            if n == 0:
                data = board_of(demo)
                added = {**data["cards"][0], "id": "ab" * 12, "name": "Added by hand", "desc": ""}
                data["cards"].append(added)
                renamed = next(c for c in data["cards"] if c["id"] != target["task_id"])
                renamed["name"] = "Renamed by hand"
                edited["renamed"] = renamed["id"]
                next(c for c in data["cards"] if c["id"] == target["task_id"])["idMembers"] = [person_owner]
                save(demo, data)
            yield result

    monkeypatch.setattr(LocalConnector, "write", write_while_a_person_edits)
    capsys.readouterr()
    assert run(demo, "apply") == 0
    monkeypatch.setattr(LocalConnector, "write", real_write)
    after = {c["id"]: c for c in board_of(demo)["cards"]}
    assert after["ab" * 12]["name"] == "Added by hand"
    assert after[edited["renamed"]]["name"] == "Renamed by hand"
    assert after[target["task_id"]]["idMembers"] == [person_owner]
    settings = load_settings(demo)
    with StateStore(settings.path(settings.state_path)) as store:
        rows = [r for r in store.journal(plan["id"]) if r.task_id == target["task_id"] and r.field is Field.ASSIGNEES]
        assert [r.status for r in rows] == [JournalStatus.CONFLICT]
    # The next plan notices the person's owner (a conflict, or an edit the policy keeps) and leaves it.
    again = plan_of(demo, capsys)
    noticed = [*again["conflicts"], *again["edits"]]
    assert any(c["task_id"] == target["task_id"] and c["field"] == "assignees" for c in noticed)
    assert not any(c["task_id"] == target["task_id"] and c["field"] == "assignees" for c in again["changes"])
    assert run(demo, "apply", "--now") == 0
    assert {c["id"]: c for c in board_of(demo)["cards"]}[target["task_id"]]["idMembers"] == [person_owner]


def test_a_save_between_read_and_write_is_merged_not_overwritten(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saving while a batch is being written (after tasksync read the file, before it
    saved): the batch is done again on the person's version."""
    conn = LocalConnector(load_settings(demo))
    snap = conn.read()
    t = snap.tasks[0]
    other = next(m.id for m in snap.members if (m.id,) != t.assignees)
    real_read = LocalConnector._read
    calls = {"n": 0}

    def read_then_person_saves(self: LocalConnector) -> Any:
        board = real_read(self)
        calls["n"] += 1
        if calls["n"] == 1:
            data = board_of(demo)
            data["cards"][-1]["name"] = "Saved meanwhile"
            save(demo, data)
        return board

    monkeypatch.setattr(LocalConnector, "_read", read_then_person_saves)
    (result,) = conn.write([TaskWrite(t.id, {Field.ASSIGNEES: (other,)}, {Field.ASSIGNEES: t.assignees})])
    assert result.ok and calls["n"] == 2
    data = board_of(demo)
    assert data["cards"][-1]["name"] == "Saved meanwhile"
    assert next(c for c in data["cards"] if c["id"] == t.id)["idMembers"] == [other]


def test_a_write_whose_card_changed_since_the_plan_is_a_conflict(demo: Path) -> None:
    conn = LocalConnector(load_settings(demo))
    t = conn.read().tasks[0]
    before = (demo.parent / "board.json").read_bytes()
    stale = ("someone-else",)
    (result,) = conn.write([TaskWrite(t.id, {Field.ASSIGNEES: ()}, {Field.ASSIGNEES: stale})])
    assert result.outcome is WriteStatus.CONFLICT and "changed since the plan" in (result.error or "")
    assert (demo.parent / "board.json").read_bytes() == before  # nothing saved


def test_the_file_keeps_its_format(demo: Path) -> None:
    path = demo.parent / "board.json"
    conn = LocalConnector(load_settings(demo))
    for compact in (False, True):
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=1))
        t = conn.read().tasks[1]
        flipped = () if t.assignees else (conn.read().members[0].id,)
        (result,) = conn.write([TaskWrite(t.id, {Field.ASSIGNEES: flipped}, {Field.ASSIGNEES: t.assignees})])
        assert result.ok
        text = path.read_text(encoding="utf-8")
        assert ("\n" not in text.strip()) is compact


def test_a_write_that_cannot_be_made_changes_nothing_of_its_card(demo: Path) -> None:
    conn = LocalConnector(load_settings(demo))
    snap = conn.read()
    t, other = snap.tasks[0], snap.tasks[1]
    member = next(m.id for m in snap.members if (m.id,) != t.assignees)
    good_owner = next(m.id for m in snap.members if (m.id,) != other.assignees)
    results = list(
        conn.write(
            [
                TaskWrite(t.id, {Field.ASSIGNEES: (member,), Field.PRIORITY: "P9"}, {Field.ASSIGNEES: t.assignees}),
                TaskWrite(other.id, {Field.ASSIGNEES: (good_owner,)}, {Field.ASSIGNEES: other.assignees}),
            ]
        )
    )
    assert [r.ok for r in results] == [False, True]
    assert "no option 'P9'" in (results[0].error or "")
    after = conn.read()
    assert after.tasks_by_id[t.id].assignees == t.assignees  # all of the write or none of it
    assert after.tasks_by_id[other.id].assignees == (good_owner,)
