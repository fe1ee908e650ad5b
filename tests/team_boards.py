"""The example board on the local connector, the fake Trello or the fake Asana, for the team tests.

``board(kind, folder, monkeypatch)`` writes a small example and returns (config path, context);
the context keeps the fake server running until it is closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.http import default_registry
from tasksync.examples import TODAY, generate
from tasksync.testing.fake_asana import FakeAsana
from tasksync.testing.fake_trello import FakeTrello

DAY = TODAY.isoformat()
KINDS = ("local", "trello", "asana")


@contextmanager
def example_board(kind: str, folder: Path, monkeypatch: pytest.MonkeyPatch, cards: int = 60) -> Iterator[Path]:
    """The example (``cards`` cards, seed 5) on a board of ``kind``; yields its config path."""
    with served_board(kind, folder, monkeypatch, cards) as (config, _):
        yield config


@contextmanager
def served_board(
    kind: str, folder: Path, monkeypatch: pytest.MonkeyPatch, cards: int = 60, extra: str = ""
) -> Iterator[tuple[Path, Any]]:
    """As :func:`example_board`, yielding (config path, the fake server or None for local);
    ``extra`` is appended to the config (TOML)."""
    config = generate(folder, seed=5, cards=cards)
    if extra:
        config.write_text(config.read_text(encoding="utf-8") + "\n" + extra + "\n", encoding="utf-8")
    if kind == "local":
        yield config, None
        return
    board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    text = config.read_text(encoding="utf-8")
    default_registry().clear()
    fake: FakeTrello | None = None
    asana: FakeAsana | None = None
    with ExitStack() as stack:
        if kind == "trello":
            fake = FakeTrello(key="team-key", tokens=["team-token"], enforce_limits=False)
            board_id = fake.add_board(board)
            url = stack.enter_context(fake.serve())
            monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", url)
            monkeypatch.setenv("TASKSYNC_TRELLO_KEY", "team-key")
            monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "team-token")
            text = text.replace('connector = "local"', 'connector = "trello"')
            text += f'\n[trello]\nboards = ["{board_id}"]\n'
        else:
            asana = stack.enter_context(FakeAsana(requests_per_minute=None))
            ids = asana.seed_from_trello_board(board)
            monkeypatch.setenv("TASKSYNC_ASANA_TOKEN", asana.token)
            text = text.replace('connector = "local"', 'connector = "asana"')
            text += f'\n[asana]\nproject = "{ids.project}"\nworkspace = "{ids.workspace}"\napi_url = "{asana.url}"\n'
        config.write_text(text, encoding="utf-8")
        yield config, (fake if kind == "trello" else asana)


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def run_json(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert run(config, *args) == 0
    return json.loads(capsys.readouterr().out)
