"""Connectors plug in through the ``tasksync.connectors`` entry points; capabilities are protocols."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from contract import sample_trello_board
from tasksync.connectors import GROUP, available_connectors, connector_settings, open_connector
from tasksync.connectors.base import BoardFile, ChangeFeed, Commenter, Connector
from tasksync.errors import ConfigError
from tasksync.model import BoardRef, NewTask, Snapshot, TaskWrite, WriteResult
from tasksync.settings import Secrets, Settings, settings_from_mapping


class MemoryOptions(BaseModel):
    """A plugged-in connector's own settings model."""

    name: str
    cards: int = 0


class MemoryConnector:
    """A connector from outside the package (what a plugin brings)."""

    def __init__(self, options: MemoryOptions) -> None:
        self.options = options
        self.board = BoardRef("memory", options.name)

    def read(self) -> Snapshot:
        return Snapshot(self.board, self.options.name, (), (), ())

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        yield from (WriteResult(w.task_id, True) for w in writes)

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        yield from (WriteResult(f"m-{n.key}", True, key=n.key) for n in new_tasks)

    def find_created(self, key: str) -> str | None:
        return None


def open_memory(settings: Settings, board: str | None) -> Connector:
    return MemoryConnector(connector_settings(settings, MemoryOptions))


@pytest.fixture
def memory_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``memory`` as an installed distribution would, through its entry point."""
    real = importlib.metadata.entry_points
    plugin = importlib.metadata.EntryPoint("memory", f"{__name__}:open_memory", GROUP)

    def entry_points(**kw: Any) -> Any:
        found = list(real(**kw))
        return [*found, plugin] if kw.get("group") == GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_the_built_in_connectors_are_entry_points() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=GROUP)}
    assert names == {
        "local": "tasksync.connectors:open_local",
        "trello": "tasksync.connectors.trello:open_board",
        "asana": "tasksync.connectors.asana:open_project",
    }


def test_a_plugged_in_connector_with_its_own_settings(memory_plugin: None, tmp_path: Path) -> None:
    settings = settings_from_mapping({"connector": "memory", "connectors": {"memory": {"name": "north"}}}, tmp_path)
    conn = open_connector(settings)
    assert isinstance(conn, MemoryConnector) and conn.read().board == BoardRef("memory", "north")
    assert "memory" in available_connectors()
    bad = settings_from_mapping(
        {"connector": "memory", "connectors": {"memory": {"name": "n", "cards": "x"}}}, tmp_path
    )
    with pytest.raises(ConfigError, match=r"connectors\.memory\.cards"):
        open_connector(bad)


def test_an_unknown_connector_names_the_known_ones(tmp_path: Path) -> None:
    settings = settings_from_mapping({"connector": "jira"}, tmp_path)
    with pytest.raises(ConfigError, match=r"unknown connector 'jira'.*asana, local, trello"):
        open_connector(settings)


def test_capabilities_are_typed_protocols(tmp_path: Path) -> None:
    board = tmp_path / "board.json"
    board.write_text(json.dumps(sample_trello_board()), encoding="utf-8")
    local = open_connector(settings_from_mapping({"local": {"path": str(board)}}, tmp_path))
    assert isinstance(local, BoardFile) and not isinstance(local, ChangeFeed)
    trello = settings_from_mapping({"connector": "trello", "trello": {"boards": ["5f" + "0" * 22]}}, tmp_path)
    trello.secrets = Secrets(trello_key="k", trello_token="t")  # type: ignore[arg-type]
    asana = settings_from_mapping({"connector": "asana", "asana": {"project": "1200000000000001"}}, tmp_path)
    asana.secrets = Secrets(asana_token="a-token")  # type: ignore[arg-type]
    for remote in (open_connector(trello), open_connector(asana)):  # nothing is sent until asked
        assert isinstance(remote, ChangeFeed) and isinstance(remote, Commenter)
        assert not isinstance(remote, BoardFile)
    memory = MemoryConnector(MemoryOptions(name="x"))
    assert not isinstance(memory, ChangeFeed) and not isinstance(memory, Commenter)
    with pytest.raises(ConfigError, match="--board"):
        open_connector(settings_from_mapping({"local": {"path": str(board)}}, tmp_path), board="abc")
