"""One configured board with its connector, CRM exports and state store: the operations the
CLI and the scheduled service run (plan, apply, undo, report), as a Python user would call them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from tasksync.connectors import Connector, open_connector
from tasksync.crm import CrmData, load_crm
from tasksync.errors import ConfigError, SafetyStop, StalePlanError
from tasksync.kpi import Kpis, compute_kpis
from tasksync.model import Change, Field, Plan, PlanKind, PlanStatus
from tasksync.policies import build_book
from tasksync.settings import Settings
from tasksync.sync.engine import (
    ApplyOutcome,
    PlanResult,
    Progress,
    apply_plan,
    make_plan,
    make_undo_plan,
    resume,
)
from tasksync.sync.lock import WriterLock
from tasksync.sync.state import StateStore, StateStoreProtocol

if TYPE_CHECKING:
    from tasksync.team.comments import CommentOutcome

__all__ = ["CRM_ROW_COUNTS", "Workspace"]

#: The per-board key of the last accepted CRM row counts (the service keeps the same).
CRM_ROW_COUNTS = "crm.row_counts"

_EMPTY = "plan.last_empty"  # kv key: "id fingerprint" of the board's latest plan when it found nothing to change


class Workspace:
    """Lazily opens what each operation needs; close it (or use ``with``) when done.

    Every operation that writes the board (:meth:`apply`, :meth:`undo`, :meth:`pending_resume`)
    holds the state store's writer lock while it runs; :meth:`writing` holds it across several
    (``apply --now`` resumes, plans and applies as one writer). A second writer waits up to
    ``lock_wait`` seconds (default ``TASKSYNC_LOCK_WAIT``, 10 s), then raises
    :class:`tasksync.sync.lock.BoardBusy` (exit code 7).

    ``store`` is the state store to use instead of the SQLite file the settings name (the cluster
    passes its PostgreSQL store); the workspace closes it like its own. ``lock`` replaces the
    writer lock file beside that SQLite file (the cluster passes its board lease).
    """

    def __init__(
        self,
        settings: Settings,
        connector: Connector | None = None,
        today: date | None = None,
        board: str | None = None,
        lock_wait: float | None = None,
        *,
        store: StateStoreProtocol | None = None,
        lock: WriterLock | None = None,
    ) -> None:
        self.settings = settings
        self._connector = connector
        self._opened_connector = False
        self.today = today
        self.board = board
        self.lock = lock or WriterLock(settings.path(settings.state_path), lock_wait)
        if store is not None:
            self.__dict__["store"] = store  # the cached_property's value: never opens the SQLite file
        self.comments: CommentOutcome | None = None  # of the last apply, undo or resume ([write] comment)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the state store, and the connector if the workspace opened it (a connector given
        to it stays its owner's)."""
        if "store" in self.__dict__:
            self.store.close()
        close = getattr(self._connector, "close", None) if self._opened_connector else None
        if callable(close):
            close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (re-entrant) for the operations inside."""
        with self.lock:
            yield

    @property
    def connector(self) -> Connector:
        if self._connector is None:
            self._connector = open_connector(self.settings, self.board)
            self._opened_connector = True
        return self._connector

    @cached_property
    def store(self) -> StateStoreProtocol:
        # A database locked by another process is waited for as long as the writer lock.
        return StateStore(self.settings.path(self.settings.state_path), timeout=max(self.lock.wait, 0.1))

    @cached_property
    def crm(self) -> CrmData:
        from tasksync.team.overrides import with_rep_overrides  # reps away/capacity/quota set by command

        return with_rep_overrides(load_crm(self.settings.crm, self.settings.base_dir), self.store, self.today)

    def plan(
        self,
        *,
        force: bool = False,
        kind: PlanKind = PlanKind.SYNC,
        save: bool = True,
        guard_crm: bool = False,
    ) -> PlanResult:
        """Read the board and the CRM, decide, and save the plan as the board's proposal.

        ``guard_crm`` (``apply --now``) first refuses CRM exports that lost more than
        ``[service] max_crm_drop`` of their rows since the last accepted run (:class:`SafetyStop`),
        the check the service makes, and then accepts the current row counts."""
        if guard_crm:
            self.check_crm_rows()
        result = make_plan(
            self.settings,
            self.connector.read(),
            self.crm,
            self.store,
            force=force,
            kind=kind,
            today=self.today,
        )
        from tasksync.team.comments import prepare_comments
        from tasksync.team.overrides import explain_overrides

        explain_overrides(result, self.store, self.today)
        prepare_comments(result, self.store, self.settings, self.connector)
        if save and result.plan.empty:  # nothing to apply: not a proposal, but the old one is out of date
            self.store.supersede_proposals(result.plan.board)
            self.store.put(result.plan.board, _EMPTY, f"{result.plan.id} {result.plan.base_fingerprint}")
        elif save:
            self.store.save_plan(result.plan, PlanStatus.PROPOSED)
            self.store.prune_plans(result.plan.board)
            self.store.put(result.plan.board, _EMPTY, "")
        return result

    def check_crm_rows(self, *, accept: bool = False) -> None:
        """Refuse exports that shrank since the last accepted read (unless ``accept``), then
        remember their row counts as the new baseline (shared with the service)."""
        from tasksync.crm import compare_row_counts

        board = self.connector.board
        counts = self.crm.row_counts
        raw = self.store.get(board, CRM_ROW_COUNTS)
        previous: dict[str, int] = json.loads(raw) if raw else {}
        threshold = self.settings.service.max_crm_drop
        lost = [] if accept or not 0 < threshold <= 1 else compare_row_counts(previous, counts, threshold)
        if lost:
            raise SafetyStop(
                "CRM export lost most of its rows since the last run: "
                + "; ".join(lost)
                + " (fix the export, or run with --accept-crm if the shrink is real)"
            )
        self.store.put(board, CRM_ROW_COUNTS, json.dumps(counts, sort_keys=True))

    def pending_resume(self, progress: Progress | None = None) -> ApplyOutcome | None:
        """Finish an interrupted apply, if any, and re-send creates whose answer was lost."""
        with self.writing():
            outcome = resume(self.connector, self.store, self.connector.board, progress)
            if outcome is not None:
                self.comments = self._comment(self.store.load_plan(outcome.plan_id)[0])
            return outcome

    def _comment(self, plan: Plan) -> CommentOutcome | None:
        """``[write] comment``: the reason on each card whose owner the applied plan changed."""
        from tasksync.team.comments import comment_after_apply

        return comment_after_apply(plan, self.connector, self.store, self.settings)

    def apply(self, plan_id: str | None = None, progress: Progress | None = None) -> tuple[Plan, ApplyOutcome]:
        """Apply the named plan, or the board's latest proposal; refuses a stale plan."""
        with self.writing():
            board = self.connector.board
            plan_id = plan_id or self.store.latest(board, PlanStatus.PROPOSED)
            if plan_id is None and self.store.get(board, _EMPTY):  # the latest plan found nothing to change
                empty_id, _, fingerprint = (self.store.get(board, _EMPTY) or "").partition(" ")
                if self.connector.read().fingerprint() != fingerprint:
                    raise StalePlanError(
                        f"{board}: the board changed since plan {empty_id} (which found nothing to change); "
                        "run `tasksync plan` again and review the new plan"
                    )
                return Plan(empty_id, board, PlanKind.SYNC, fingerprint, datetime.now(UTC)), ApplyOutcome(empty_id)
            if plan_id is None:
                raise StalePlanError(f"{board}: no plan to apply; run `tasksync plan` first")
            plan, status = self.store.load_plan(plan_id)
            if status is not PlanStatus.PROPOSED:
                raise StalePlanError(f"plan {plan_id} is {status.value}, not a proposal; run `tasksync plan`")
            outcome = apply_plan(plan, self.connector, self.store, progress=progress)
            self.comments = self._comment(plan)
            return plan, outcome

    def undo(self, plan_id: str, progress: Progress | None = None) -> tuple[Plan, ApplyOutcome]:
        """Revert ``plan_id`` where cards still hold what it wrote; it becomes ``undone`` once the
        undo is applied whole (also when an interrupted undo is finished by the next writer): after
        a write failed, undo it again to put back the rest."""
        with self.writing():
            resume(self.connector, self.store, self.connector.board)
            snapshot = self.connector.read()
            undo = make_undo_plan(plan_id, snapshot, self.store)
            self.store.save_plan(undo, PlanStatus.PENDING)
            outcome = apply_plan(undo, self.connector, self.store, snapshot=snapshot, progress=progress)
            self.comments = self._comment(undo)
            return undo, outcome

    def pin(self, plan_id: str, task_id: str, field: Field) -> Change:
        """Reject one change of a plan: the card's field keeps its value as a person's
        (``StateStore.mark_person_owned``), so every later plan leaves it alone (a conflict)
        until ``--force``. Returns the rejected change."""
        with self.writing():
            plan, _ = self.store.load_plan(plan_id)
            for c in plan.changes:
                if c.task_id == task_id and c.field is field:
                    self.store.mark_person_owned(plan.board, [(task_id, field, c.before)], plan.id)
                    return c
        raise ConfigError(f"plan {plan_id} has no change of {field.value} on card {task_id}")

    def kpis(self) -> Kpis:
        book = build_book(self.connector.read(), self.crm, self.settings, today=self.today, include_new=False)
        return compute_kpis(book)
