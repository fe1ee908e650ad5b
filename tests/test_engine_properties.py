"""Saves of the local board are atomic. (The engine's properties on the local board, fake Trello
and fake Asana are in test_engine_fakes.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tasksync.connectors.local import atomic_write_json
from tasksync.examples import TODAY, generate
from tasksync.model import Snapshot
from tasksync.settings import load_settings
from tasksync.sync.workspace import Workspace

_TEMPLATE: dict[str, Path] = {}


def fresh(tmp: Path) -> Path:
    """A small example board (60 cards), copied from a template made once per session."""
    if "t" not in _TEMPLATE:
        base = Path(__import__("tempfile").mkdtemp(prefix="tasksync-template-"))
        _TEMPLATE["t"] = generate(base / "demo", seed=11, cards=60).parent
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(_TEMPLATE["t"], tmp)
    return tmp / "tasksync.toml"


def workspace(config: Path, connector: Any = None) -> Workspace:
    return Workspace(load_settings(config), connector=connector, today=TODAY)


def state(snapshot: Snapshot) -> dict[str, tuple[Any, ...]]:
    return {t.id: (t.assignees, t.priority, t.stage_id) for t in snapshot.tasks}


def test_atomic_write_leaves_the_old_file_when_serialising_fails(tmp_path: Path) -> None:
    path = tmp_path / "board.json"
    path.write_text('{"lists": [], "cards": []}', encoding="utf-8")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"cards": [object()]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"lists": [], "cards": []}
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]  # no temp file left behind
