"""The local connector: a board kept as a JSON file in Trello's board-export shape.

It is the offline default (the demo and the tests use it) and it previews a board exported
from Trello's UI. Every save is atomic: the new board goes to a temporary file in the same
folder, is flushed to disk, then renamed over the old one, so a crash leaves either the old
board or the new one, never half of one.

People may edit the file while tasksync writes it. Writes go in batches; each batch takes an
exclusive ``flock`` on ``.<board>.lock`` beside the file (other tasksync processes wait for it),
re-reads the board, checks every card against what the plan expected (``TaskWrite.before``: a
card changed since the plan is left alone and reported as a conflict), changes only the fields
written, and saves once. If the file changed between that read and the save (an editor that does
not take the lock), the batch is done again on the new file, so no change made beside tasksync
is lost. A board file saved compact stays compact (fast to write); an indented one stays indented.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tasksync.connectors.base import parse_marker
from tasksync.connectors.trello_board import (
    BoardFields,
    apply_write,
    card_from_new_task,
    set_link_item,
    snapshot_from_board,
)
from tasksync.errors import ConfigError, NotFoundError, TasksyncError
from tasksync.model import BoardRef, Field, NewTask, Snapshot, TaskWrite, WriteResult, WriteStatus
from tasksync.settings import Settings

__all__ = ["BoardSaveError", "LocalConnector", "atomic_write_json", "check_board_shape"]


def atomic_write_json(path: Path, data: Any, *, compact: bool = False) -> None:
    """Write JSON to ``path`` so that readers see the old file or the new one, nothing between.

    ``compact`` writes without indentation (several times faster on a big board)."""
    if compact:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(data, ensure_ascii=False, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if path.exists():  # the new file keeps the board's mode (mkstemp makes it 0600)
            Path(tmp).chmod(stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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


class BoardSaveError(TasksyncError):
    """The board file could not be saved (disk full, read-only folder): exit code 1, a write failed."""

    exit_code = 1


_Types = type | tuple[type, ...]
_STR, _OPT_STR, _NUM = str, (str, type(None)), (int, float, type(None))
_LIST_OF_STR = "list of ids"
_ITEM = {"idCustomField": _STR, "idValue": _OPT_STR, "value": (dict, type(None))}
_SHAPES: dict[str, dict[str, Any]] = {
    "lists": {"id": _STR, "name": _OPT_STR, "pos": _NUM, "closed": (bool, type(None))},
    "members": {"id": _STR, "fullName": _OPT_STR, "username": _OPT_STR, "email": _OPT_STR},
    "labels": {"id": _STR, "name": _OPT_STR},
    "customFields": {"id": _STR, "name": _OPT_STR, "options": (list, type(None))},
    "customFieldItems": {"idModel": _STR, **_ITEM},
    "cards": {
        "id": _STR,
        "idList": _STR,
        "name": _OPT_STR,
        "desc": _OPT_STR,
        "idMembers": _LIST_OF_STR,
        "idLabels": _LIST_OF_STR,
        "due": _OPT_STR,
        "closed": (bool, type(None)),
        "dateLastActivity": _OPT_STR,
        "customFieldItems": (list, type(None)),
        "labels": (list, type(None)),
    },
}


def check_board_shape(data: dict[str, Any], name: str) -> None:
    """Refuse a board export whose parts tasksync reads have the wrong type, naming the first
    one (``board.json: cards[12] ('Acme'): 'idMembers' must be a list of ids``)."""
    for part, fields in _SHAPES.items():
        objects = data.get(part)
        if objects is None and part not in ("lists", "cards"):
            continue
        if not isinstance(objects, list):
            raise ConfigError(f"{name}: '{part}' must be a list")
        for i, obj in enumerate(objects):
            where = f"{name}: {part}[{i}]"
            if not isinstance(obj, dict):
                raise ConfigError(f"{where}: must be an object, not {type(obj).__name__}")
            if isinstance(obj.get("name"), str):
                where += f" ({obj['name'][:40]!r})"
            _check_fields(obj, fields, where)
            if part == "cards":
                for j, item in enumerate(obj.get("customFieldItems") or []):
                    if not isinstance(item, dict):
                        raise ConfigError(f"{where}: customFieldItems[{j}] must be an object")
                    _check_fields(item, _ITEM, f"{where}: customFieldItems[{j}]")
                for j, label in enumerate(obj.get("labels") or []):
                    if not isinstance(label, dict) or not isinstance(label.get("id"), str):
                        raise ConfigError(f"{where}: labels[{j}] must be an object with an 'id'")
            if part == "customFields":
                for j, opt in enumerate(obj.get("options") or []):
                    if not isinstance(opt, dict) or not isinstance(opt.get("id"), str):
                        raise ConfigError(f"{where}: options[{j}] must be an object with an 'id'")
                    if not isinstance(opt.get("value") or {}, dict):
                        raise ConfigError(f"{where}: options[{j}].value must be an object")


def _check_fields(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for key, kind in fields.items():
        value = obj.get(key)
        if kind is _LIST_OF_STR:
            if value is not None and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
                raise ConfigError(f"{where}: {key!r} must be a list of ids")
        elif kind is _STR:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: {key!r} is missing or not a text id")
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is _NUM):
            raise ConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")


_T = TypeVar("_T")
_Identity = tuple[int, int, int]  # inode, mtime in ns, size: changes whenever the file is replaced or edited


class _Board:
    """One read of the board file: its JSON, its identity on disk and how it was formatted."""

    def __init__(self, data: dict[str, Any], identity: _Identity, compact: bool) -> None:
        self.data = data
        self.identity = identity
        self.compact = compact


class LocalConnector:
    """A Trello board export on disk.

    Writes are saved in batches of at least ``save_every`` (more on a big board, so that a whole
    apply rewrites the file a handful of times, not once per 25 cards)."""

    #: Saves per apply on a big plan: batches hold at least ``writes / SAVES`` writes.
    SAVES = 4
    #: How many times a batch is redone when the file keeps changing under it.
    RETRIES = 20

    def __init__(self, settings: Settings, save_every: int = 25) -> None:
        self.settings = settings
        self.path = settings.path(settings.local.path)
        self.board = BoardRef("local", str(self.path.name))
        self.save_every = max(1, save_every)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")

    # ------------------------------------------------------------------ reading
    def _read(self) -> _Board:
        try:
            with self.path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                raw = fh.read()
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: board file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{self.path}: is a folder, not a board file") from None
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot read the board file: {e.strerror or e}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"{self.path}: not UTF-8 text (byte {e.start}); export the board as JSON again") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
        except RecursionError:
            raise ConfigError(f"{self.path}: nested too deeply to be a board export") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("cards"), list)
            or not isinstance(data.get("lists"), list)
        ):
            raise ConfigError(f"{self.path}: not a Trello board export (needs 'lists' and 'cards')")
        check_board_shape(data, self.path.name)
        compact = b"\n" not in raw[:4096].strip()
        return _Board(data, (st.st_ino, st.st_mtime_ns, st.st_size), compact)

    def _load(self) -> dict[str, Any]:
        return self._read().data

    def read(self) -> Snapshot:
        return snapshot_from_board(self._load(), self.settings, self.board)

    def _identity(self) -> _Identity | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The board file's lock: one tasksync process changes the file at a time."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _update(self, change: Callable[[_Board], tuple[bool, _T]]) -> _T:
        """Read the board, let ``change`` edit it, save it when it says so; done again on a new
        read when the file changed between the read and the save (nothing written beside
        tasksync is overwritten)."""
        with self._locked():
            for _ in range(self.RETRIES):
                board = self._read()
                dirty, result = change(board)
                if not dirty:
                    return result
                if self._identity() != board.identity:
                    continue  # edited meanwhile by someone not taking the lock: start again from their version
                try:
                    atomic_write_json(self.path, board.data, compact=board.compact)
                except OSError as e:
                    raise BoardSaveError(
                        f"{self.path}: cannot save the board ({e.strerror or e}); nothing of this batch was "
                        "written: free the space or fix the permissions, then run `tasksync apply` to finish"
                    ) from None
                return result
        raise ConfigError(f"{self.path}: the board file kept changing while tasksync wrote it; try again")

    def _batch(self, count: int) -> int:
        return max(self.save_every, -(-count // self.SAVES))

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        size = self._batch(len(writes))
        for start in range(0, len(writes), size):
            chunk = writes[start : start + size]
            yield from self._update(functools.partial(self._write_batch, writes=chunk))

    def _write_batch(self, board: _Board, writes: Sequence[TaskWrite]) -> tuple[bool, list[WriteResult]]:
        data = board.data
        fields = BoardFields(data, self.settings)
        wanted = {w.task_id for w in writes}
        cards = {c.get("id"): c for c in data["cards"] if isinstance(c, dict) and c.get("id") in wanted}
        # Each card's custom field items on a board of its own: reading the batch and writing a
        # priority then cost the card, not the whole board (a big apply was quadratic).
        all_items = [i for i in data.get("customFieldItems") or [] if isinstance(i, dict)]
        items: dict[Any, list[dict[str, Any]]] = {cid: [] for cid in cards}
        for item in all_items:
            if item.get("idModel") in items:
                items[item["idModel"]].append(item)
        batch_board = {
            **data,
            "cards": list(cards.values()),
            "customFieldItems": [i for v in items.values() for i in v],
        }
        snapshot = snapshot_from_board(batch_board, self.settings, self.board)
        results: list[WriteResult] = []
        dirty = False
        for w in writes:
            card, task = cards.get(w.task_id), snapshot.task(w.task_id)
            if card is None or task is None:
                missing = f"card {w.task_id} not found (or archived) on {self.path.name}"
                results.append(WriteResult(w.task_id, False, missing))
                continue
            stale = [f.value for f, before in w.before.items() if task.value(f) != before]
            if stale:
                message = f"card {task.title!r}: {', '.join(stale)} changed since the plan; left alone"
                results.append(WriteResult(w.task_id, False, message, status=WriteStatus.CONFLICT))
                continue
            view: dict[str, Any] = {"customFieldItems": items[w.task_id]}
            backup = copy.deepcopy(card)
            try:
                for f, value in w.values.items():
                    apply_write(view, card, fields, f, value)
            except KeyError as e:
                card.clear()
                card.update(backup)  # all of the write or none of it
                results.append(WriteResult(w.task_id, False, f"card {task.title!r}: {e.args[0]}"))
                continue
            items[w.task_id] = view["customFieldItems"]
            dirty = True
            results.append(WriteResult(w.task_id, True))
        if dirty and ("customFieldItems" in data or any(items.values())):
            kept = [i for i in all_items if i.get("idModel") not in cards]
            data["customFieldItems"] = kept + [i for v in items.values() for i in v]
        return dirty, results

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        size = self._batch(len(new_tasks))
        for start in range(0, len(new_tasks), size):
            chunk = new_tasks[start : start + size]
            yield from self._update(functools.partial(self._create_batch, new_tasks=chunk))

    def _create_batch(self, board: _Board, new_tasks: Sequence[NewTask]) -> tuple[bool, list[WriteResult]]:
        """Make each card, or complete the one already carrying its marker (CRM link, priority)."""
        data = board.data
        fields = BoardFields(data, self.settings)
        # Open cards only, as Trello's board read gives them: an archived card (an undo of the plan
        # that made it) is left archived and a new card made.
        by_marker = {
            parse_marker(str(c.get("desc") or "")): c
            for c in data["cards"]
            if isinstance(c, dict) and not c.get("closed")
        }
        items: dict[Any, list[dict[str, Any]]] = {}
        for item in data.get("customFieldItems") or []:
            if isinstance(item, dict):
                items.setdefault(item.get("idModel"), []).append(item)
        lists = {lst.get("id") for lst in data["lists"] if isinstance(lst, dict)}
        results: list[WriteResult] = []
        dirty = False
        for new in new_tasks:
            card = by_marker.get(new.key)
            if card is None:
                if new.stage_id not in lists:
                    raise NotFoundError(f"{self.path.name}: list {new.stage_id} not found for new card {new.title!r}")
                card = card_from_new_task(new, str(data.get("id") or ""))
                data["cards"].append(card)
                by_marker[new.key] = card
                dirty = True
            try:
                dirty = self._complete(data, card, items.get(card["id"], []), fields, new) or dirty
            except KeyError as e:
                results.append(WriteResult(str(card["id"]), False, f"new card {new.title!r}: {e.args[0]}", key=new.key))
                continue
            results.append(WriteResult(str(card["id"]), True, key=new.key))
        return dirty, results

    def _complete(
        self, data: dict[str, Any], card: dict[str, Any], items: list[dict[str, Any]], fields: BoardFields, new: NewTask
    ) -> bool:
        """Give a created card its CRM link and priority where it lacks them; True if it changed."""
        changed = False
        if fields.link_field is not None and not any(i.get("idCustomField") == fields.link_field["id"] for i in items):
            set_link_item(data, card, fields, new.key)
            changed = True
        if new.priority:
            task = snapshot_from_board(
                {**data, "cards": [card], "customFieldItems": items}, self.settings, self.board
            ).task(str(card["id"]))
            if task is None or task.priority is None:
                apply_write(data, card, fields, Field.PRIORITY, new.priority)
                changed = True
        return changed

    def find_created(self, key: str) -> str | None:
        return self._find(self._load(), key)

    @staticmethod
    def _find(data: dict[str, Any], key: str) -> str | None:
        for card in data["cards"]:
            if isinstance(card, dict) and not card.get("closed") and parse_marker(str(card.get("desc") or "")) == key:
                return str(card["id"])
        return None
