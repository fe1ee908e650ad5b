"""The CLI cycle on a Trello board (the fake Trello on loopback), and choosing among boards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.http import default_registry
from tasksync.examples import TODAY, generate
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN = "cli-key", "cli-token"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeTrello, str, Path]]:
    """The example board on a fake Trello, and a config pointing at it through the environment."""
    config = generate(tmp_path / "demo", seed=5, cards=80)
    board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    fake = FakeTrello(key=KEY, tokens=[TOKEN], enforce_limits=False)
    board_id = fake.add_board(board)
    other_config = generate(tmp_path / "other", seed=6, cards=10)
    other_board = json.loads((other_config.parent / "board.json").read_text(encoding="utf-8"))
    other = fake.add_board({**other_board, "name": "Other board"})
    text = config.read_text(encoding="utf-8").replace('connector = "local"', 'connector = "trello"')
    config.write_text(text + f'\n[trello]\nboards = ["{board_id}", "{other}"]\n', encoding="utf-8")
    default_registry().clear()
    with fake.serve() as url:
        monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", url)
        monkeypatch.setenv("TASKSYNC_TRELLO_KEY", KEY)
        monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", TOKEN)
        yield fake, board_id, config


def plan(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["-c", str(config), *args, "plan", "--json", "--today", TODAY.isoformat()]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_several_boards_need_a_choice(served: tuple[FakeTrello, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, _, config = served
    capsys.readouterr()
    assert main(["-c", str(config), "plan"]) == 2
    err = capsys.readouterr().err
    assert "choose one with --board" in err and "Traceback" not in err


def test_plan_apply_replan_on_trello(served: tuple[FakeTrello, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    fake, board_id, config = served
    other_id = next(b for b in fake.boards if b != board_id)
    other_before = json.dumps(fake.boards[other_id], sort_keys=True)
    first = plan(config, capsys, "--board", board_id)
    assert first["plan"]["board"] == f"trello:{board_id}"
    assert first["plan"]["changes"]
    assert main(["-c", str(config), "--board", board_id, "apply"]) == 0
    assert plan(config, capsys, "--board", board_id)["plan"]["changes"] == []
    assert json.dumps(fake.boards[other_id], sort_keys=True) == other_before  # the other board untouched


def test_wrong_token_names_the_board(
    served: tuple[FakeTrello, str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, board_id, config = served
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "not-the-token")
    capsys.readouterr()
    assert main(["-c", str(config), "--board", board_id, "plan"]) == 6
    err = capsys.readouterr().err
    assert board_id in err and "401" in err and "not-the-token" not in err
