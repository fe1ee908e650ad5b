"""The example board on the fakes, and connectors that fail on purpose: the set-up the engine's
properties (``tests/test_engine_fakes.py``), the fault tests and ``bench/bench_faults.py`` share.

- :func:`fake_trello_board` serves the built-in example on a :class:`FakeTrello` and gives the
  settings and a factory of connectors to it (each with its own session, as a new process has);
- :func:`end_state` is what a person sees on a board, comparable across twin boards;
- :class:`LostAnswers` reports every ``every``-th successful write or create as having no answer
  (:attr:`~tasksync.model.WriteStatus.UNKNOWN`) although it landed.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tasksync.connectors.base import Connector
from tasksync.connectors.http import trello_session
from tasksync.connectors.transport import LimiterRegistry, ScaledClock
from tasksync.connectors.trello import TrelloConnector
from tasksync.examples import generate
from tasksync.model import Snapshot, WriteResult, WriteStatus
from tasksync.settings import Secrets, Settings, settings_from_mapping
from tasksync.testing.fake_trello import FakeTrello

__all__ = ["KEY", "TOKEN", "LostAnswers", "end_state", "fake_trello_board"]

KEY, TOKEN = "fake-key", "fake-token"


def fake_trello_board(
    stack: ExitStack, folder: Path, *, cards: int, clock: ScaledClock | None = None, attempts: int = 6
) -> tuple[Settings, Callable[[], Connector], FakeTrello]:
    """The example (``cards`` cards) written into ``folder`` and served by a fake Trello that
    lives as long as ``stack``; its rate limits are not enforced, time runs 50 times faster."""
    clock = clock or ScaledClock(50.0)
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock, enforce_limits=False)
    url = stack.enter_context(fake.serve())
    generate(folder, cards=cards)
    board_id = fake.add_board(json.loads((folder / "board.json").read_text(encoding="utf-8")))
    raw = tomllib.loads((folder / "tasksync.toml").read_text(encoding="utf-8"))
    raw["connector"] = "trello"
    raw["trello"] = {"boards": [board_id], "api_url": url}
    s = settings_from_mapping(raw, base_dir=folder)
    s.secrets = Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url)  # type: ignore[arg-type]

    def connect() -> Connector:
        session = trello_session(url, registry=LimiterRegistry(clock), timeout=(2.0, 5.0), max_attempts=attempts)
        return TrelloConnector(s, session=session)

    return s, connect, fake


def end_state(snap: Snapshot) -> list[tuple[Any, ...]]:
    """What a person sees, comparable across twin boards (ids of created cards and users differ):
    per card its CRM link (or title), owners' names, priority and list name, sorted."""
    names = {m.id: m.name for m in snap.members}
    stages = {s.id: s.name for s in snap.stages}
    return sorted(
        (t.crm_ref or t.title, tuple(sorted(names.get(a, a) for a in t.assignees)), t.priority, stages[t.stage_id])
        for t in snap.tasks
    )


class LostAnswers:
    """Every ``every``-th write or create lands, but the connector reports its answer lost."""

    def __init__(self, inner: Connector, every: int = 3) -> None:
        self.inner, self.every, self.board = inner, every, inner.board

    def read(self) -> Snapshot:
        return self.inner.read()

    def _lose(self, results: Iterator[WriteResult]) -> Iterator[WriteResult]:
        for n, r in enumerate(results):
            if n % self.every == 0 and r.ok:
                yield WriteResult(r.task_id, False, "no answer", key=r.key, status=WriteStatus.UNKNOWN)
            else:
                yield r

    def write(self, writes: Any) -> Iterator[WriteResult]:
        return self._lose(self.inner.write(writes))

    def create(self, new_tasks: Any) -> Iterator[WriteResult]:
        return self._lose(self.inner.create(new_tasks))

    def find_created(self, key: str) -> str | None:
        return self.inner.find_created(key)
