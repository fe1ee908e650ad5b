"""The local connector: a board kept as a JSON file in Trello's board-export shape.

It is the offline default (the demo and the tests use it) and it previews a board exported
from Trello's UI. Every save is atomic: the new board goes to a temporary file in the same
folder, is flushed to disk, then renamed over the old one, so a crash leaves either the old
board or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tasksync.connectors.base import parse_marker
from tasksync.connectors.board_file import check_board_export
from tasksync.connectors.trello_board import (
    BoardFields,
    apply_write,
    card_from_new_task,
    set_link_item,
    snapshot_from_board,
)
from tasksync.errors import ConfigError, NotFoundError
from tasksync.model import BoardRef, Field, NewTask, Snapshot, TaskWrite, WriteResult
from tasksync.settings import Settings

__all__ = ["LocalConnector", "atomic_write_json"]


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that readers see the old file or the new one, nothing between."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if path.exists():  # the new file keeps the board's mode (mkstemp makes it 0600)
            Path(tmp).chmod(stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalConnector:
    """A Trello board export on disk. ``save_every`` writes are saved together."""

    def __init__(self, settings: Settings, save_every: int = 25) -> None:
        self.settings = settings
        self.path = settings.path(settings.local.path)
        self.board = BoardRef("local", str(self.path.name))
        self.save_every = max(1, save_every)

    def _load(self) -> dict[str, Any]:
        try:
            with self.path.open(encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: board file not found") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{self.path}: not a JSON text file (byte {e.start} is not UTF-8)") from None
        except RecursionError:
            raise ConfigError(f"{self.path}: nested too deeply to be a board export") from None
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot read the board file: {e.strerror}") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("cards"), list)
            or not isinstance(data.get("lists"), list)
        ):
            raise ConfigError(f"{self.path}: not a Trello board export (needs 'lists' and 'cards')")
        check_board_export(data, self.path)
        return data

    def read(self) -> Snapshot:
        return snapshot_from_board(self._load(), self.settings, self.board)

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        data = self._load()
        fields = BoardFields(data, self.settings)
        cards = {c["id"]: c for c in data["cards"]}
        done: list[WriteResult] = []
        for w in writes:
            card = cards.get(w.task_id)
            if card is None:
                done.append(WriteResult(w.task_id, False, f"card {w.task_id} not found on {self.path.name}"))
            else:
                try:
                    for f, value in w.values.items():
                        apply_write(data, card, fields, f, value)
                    done.append(WriteResult(w.task_id, True))
                except KeyError as e:
                    done.append(WriteResult(w.task_id, False, f"card {card.get('name')!r}: {e.args[0]}"))
            if len(done) >= self.save_every:
                atomic_write_json(self.path, data)
                yield from done
                done = []
        if done:
            atomic_write_json(self.path, data)
            yield from done

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        for new in new_tasks:
            data = self._load()
            existing = self._find(data, new.key)
            if existing is not None:
                yield WriteResult(existing, True, key=new.key)
                continue
            if not any(lst["id"] == new.stage_id for lst in data["lists"]):
                raise NotFoundError(f"{self.path.name}: list {new.stage_id} not found for new card {new.title!r}")
            fields = BoardFields(data, self.settings)
            card = card_from_new_task(new, str(data.get("id") or ""))
            data["cards"].append(card)
            set_link_item(data, card, fields, new.key)
            if new.priority:
                try:
                    apply_write(data, card, fields, Field.PRIORITY, new.priority)
                except KeyError as e:
                    yield WriteResult(card["id"], False, f"new card {new.title!r}: {e.args[0]}", key=new.key)
                    continue
            atomic_write_json(self.path, data)
            yield WriteResult(card["id"], True, key=new.key)

    def find_created(self, key: str) -> str | None:
        return self._find(self._load(), key)

    @staticmethod
    def _find(data: dict[str, Any], key: str) -> str | None:
        for card in data["cards"]:
            if parse_marker(str(card.get("desc") or "")) == key:
                return str(card["id"])
        return None
