"""What every connector offers the engine. A connector maps; it never decides."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tasksync.errors import ApiError
from tasksync.model import BoardRef, NewTask, Snapshot, TaskWrite, WriteResult

if TYPE_CHECKING:
    from tasksync.settings import Settings

__all__ = [
    "BatchReader",
    "BoardFile",
    "ChangeFeed",
    "Commenter",
    "Connector",
    "ConnectorFactory",
    "marker_for",
    "parse_marker",
    "shared_dir_for",
]

MARKER_PREFIX = "tasksync:"


def marker_for(key: str) -> str:
    """The marker written into a created card's description (or Asana ``external.gid``).

    It makes a retried create find the first card instead of duplicating it, and links the card
    to its CRM record.
    """
    return f"[{MARKER_PREFIX}{key}]"


def parse_marker(text: str) -> str | None:
    """The CRM key in a ``[tasksync:KEY]`` marker inside ``text``, or None."""
    start = text.find("[" + MARKER_PREFIX)
    if start < 0:
        return None
    end = text.find("]", start)
    if end < 0:
        return None
    key = text[start + 1 + len(MARKER_PREFIX) : end].strip()
    return key or None


@runtime_checkable
class Connector(Protocol):
    """One board or project on one service.

    - ``read`` returns the whole board as a :class:`Snapshot` (open tasks, members, stages,
      priority options), with ``Task.crm_ref`` filled from the link settings.
    - ``write`` sends the writes and yields one :class:`WriteResult` per write, as each completes
      or (a connector that sends a group of writes at once) when its group has answered, so the
      engine can journal it before anything else is sent; a failure of one write is a result, not
      an exception. Auth errors and a missing board raise :class:`tasksync.errors.ApiError`.
    - ``create`` makes new cards for CRM records, first looking for a card that already carries
      the record's marker (so a retried create never duplicates); yields results with ``key``.
    - ``find_created`` returns the id of the card carrying ``key``'s marker, or None.
    """

    board: BoardRef

    def read(self) -> Snapshot: ...

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]: ...

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]: ...

    def find_created(self, key: str) -> str | None: ...


# ---------------------------------------------------------------------- optional capabilities
# A connector offers these by having the methods; the service asks ``isinstance(conn, ChangeFeed)``.


@runtime_checkable
class ChangeFeed(Protocol):
    """Incremental change detection: which tasks changed since a bookmark the caller keeps.

    ``changed_since(None)`` returns ``(None, bookmark)``: no bookmark yet, read everything.
    Later calls return the ids of the tasks changed since ``bookmark`` (an empty set: nothing
    changed) and the bookmark for next time, or ``None`` when only a full read can tell (an
    expired bookmark, a change that is not about one task).
    """

    def changed_since(self, bookmark: str | None) -> tuple[set[str] | None, str]: ...


@runtime_checkable
class BoardFile(Protocol):
    """A board kept in a local file: a change shows in the file's modification time and size."""

    @property
    def path(self) -> Path: ...


@runtime_checkable
class BatchReader(Protocol):
    """Several boards of the service read together, on this connector's credentials (Trello:
    ten boards per ``GET /batch``). A board that failed is its error, in its place."""

    def read_many(self, boards: Sequence[str]) -> list[Snapshot | ApiError]: ...


@runtime_checkable
class Commenter(Protocol):
    """Comments on tasks (a reason a card changed, for the people who own it)."""

    def comment(self, task_id: str, text: str) -> WriteResult: ...


class ConnectorFactory(Protocol):
    """What a ``tasksync.connectors`` entry point names: builds a connector from the settings.

    ``board`` is the ``--board`` option (None when not given); a connector with one board per
    configuration refuses it with a :class:`~tasksync.errors.ConfigError`.
    """

    def __call__(self, settings: Settings, board: str | None, /) -> Connector: ...


def shared_dir_for(settings: Settings) -> Path:
    """The state folder, where rate-limit records shared between processes are kept."""
    return settings.path(settings.state_path).parent
