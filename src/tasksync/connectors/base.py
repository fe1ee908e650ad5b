"""What every connector offers the engine. A connector maps; it never decides."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from tasksync.model import BoardRef, NewTask, Snapshot, TaskWrite, WriteResult

__all__ = ["Connector", "marker_for", "parse_marker"]

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
    - ``write`` sends the writes and yields one :class:`WriteResult` per write as each completes,
      so the engine can journal it before the next; a failure of one write is a result, not an
      exception. Auth errors and a missing board raise :class:`tasksync.errors.ApiError`.
    - ``create`` makes new cards for CRM records, first looking for a card that already carries
      the record's marker (so a retried create never duplicates); yields results with ``key``.
    - ``find_created`` returns the id of the card carrying ``key``'s marker, or None.
    """

    board: BoardRef

    def read(self) -> Snapshot: ...

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]: ...

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]: ...

    def find_created(self, key: str) -> str | None: ...
