"""What the engine and the service need from a state store, as one typed interface.

:class:`tasksync.sync.state.StateStore` (SQLite, the embedded default) and
:class:`tasksync.cluster.pgstore.PgStateStore` (PostgreSQL, the cluster mode) both satisfy
:class:`StateStoreProtocol`; ``tests/test_cluster_store.py`` runs one contract over both.

Semantics every implementation keeps:

- outside :meth:`StateStoreProtocol.transaction`, every call that writes is committed when it
  returns (the journal relies on it: a row marked ``done`` survives a crash right after);
- inside it, everything commits together or not at all;
- ``latest``/``plans`` order by creation time, then by insertion order (a re-saved plan counts as
  inserted again).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from tasksync.model import BoardRef, Field, FieldValue, JournalStatus, Plan, PlanStatus
from tasksync.sync.state import JournalRow, PlanRecord
from tasksync.sync.workspace import Workspace

__all__ = ["StateStoreProtocol", "use_store"]


class StateStoreProtocol(Protocol):
    """The state store: what tasksync wrote, every plan, the journal, small per-board values."""

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    # what tasksync last wrote, and what people own
    def last_written(self, board: BoardRef) -> dict[tuple[str, Field], FieldValue]: ...

    def record_written(self, board: BoardRef, task_id: str, f: Field, value: FieldValue, plan_id: str) -> None: ...

    def person_owned(self, board: BoardRef) -> set[tuple[str, Field]]: ...

    def mark_person_owned(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None: ...

    def record_baseline(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None: ...

    # plans
    def save_plan(self, plan: Plan, status: PlanStatus | str = PlanStatus.PROPOSED) -> None: ...

    def load_plan(self, plan_id: str) -> tuple[Plan, PlanStatus]: ...

    def plan_status(self, plan_id: str) -> PlanStatus | None: ...

    def set_status(self, plan_id: str, status: PlanStatus | str) -> None: ...

    def plans(self, board: BoardRef | None = None, limit: int = 50) -> list[PlanRecord]: ...

    def supersede_proposals(self, board: BoardRef) -> None: ...

    def prune_plans(self, board: BoardRef, keep: int = 50) -> int: ...

    def latest(self, board: BoardRef, status: PlanStatus | str) -> str | None: ...

    # the journal
    def start_journal(self, plan: Plan) -> None: ...

    def journal(self, plan_id: str) -> list[JournalRow]: ...

    def journal_rows(self, board: BoardRef, status: JournalStatus) -> list[JournalRow]: ...

    def mark(
        self, plan_id: str, seqs: Iterable[int], status: JournalStatus | str, error: str | None = None
    ) -> None: ...

    def mark_created(self, board: BoardRef, plan_id: str, seq: int, key: str, task_id: str) -> None: ...

    def created(self, board: BoardRef) -> dict[str, str]: ...

    # small per-board values (sync tokens, row counts, service status)
    def get(self, board: BoardRef | str, key: str) -> str | None: ...

    def put(self, board: BoardRef | str, key: str, value: str) -> None: ...


if TYPE_CHECKING:  # mypy proves that the SQLite store satisfies the protocol

    def _sqlite_is_a_store(s: Any) -> StateStoreProtocol:
        from tasksync.sync.state import StateStore

        store: StateStore = s
        return store


def use_store(ws: Workspace, store: StateStoreProtocol) -> None:
    """Make a workspace (and the engine and service over it) use ``store`` instead of opening
    the SQLite file its settings name. Call before anything reads ``ws.store``.

    ``Workspace.store`` is a ``cached_property`` typed as the SQLite store; filling its cache is
    the one seam until the engine's signatures take :class:`StateStoreProtocol`.
    """
    if "store" in ws.__dict__:
        raise RuntimeError("the workspace already opened its own state store")
    ws.__dict__["store"] = store
