"""One configured board with its connector, CRM exports and state store: the operations the
CLI and the scheduled service run (plan, apply, undo, report), as a Python user would call them.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property

from tasksync.connectors import Connector, open_connector
from tasksync.crm import CrmData, load_crm
from tasksync.errors import ConfigError, StalePlanError
from tasksync.kpi import Kpis, compute_kpis
from tasksync.model import Change, Field, Plan, PlanKind
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
from tasksync.sync.state import StateStore

__all__ = ["Workspace"]


class Workspace:
    """Lazily opens what each operation needs; close it (or use ``with``) when done."""

    def __init__(
        self,
        settings: Settings,
        connector: Connector | None = None,
        today: date | None = None,
        board: str | None = None,
    ) -> None:
        self.settings = settings
        self._connector = connector
        self.today = today
        self.board = board

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    @property
    def connector(self) -> Connector:
        if self._connector is None:
            self._connector = open_connector(self.settings, self.board)
        return self._connector

    @cached_property
    def store(self) -> StateStore:
        return StateStore(self.settings.path(self.settings.state_path))

    @cached_property
    def crm(self) -> CrmData:
        return load_crm(self.settings.crm, self.settings.base_dir)

    def plan(self, *, force: bool = False, kind: PlanKind = PlanKind.SYNC, save: bool = True) -> PlanResult:
        """Read the board and the CRM, decide, and save the plan as the board's proposal."""
        result = make_plan(
            self.settings,
            self.connector.read(),
            self.crm,
            self.store,
            force=force,
            kind=kind,
            today=self.today,
        )
        if save:
            self.store.save_plan(result.plan, "proposed")
        return result

    def pending_resume(self, progress: Progress | None = None) -> ApplyOutcome | None:
        """Finish an interrupted apply, if any."""
        return resume(self.connector, self.store, self.connector.board, progress)

    def apply(self, plan_id: str | None = None, progress: Progress | None = None) -> tuple[Plan, ApplyOutcome]:
        """Apply the named plan, or the board's latest proposal; refuses a stale plan."""
        board = self.connector.board
        plan_id = plan_id or self.store.latest(board, "proposed")
        if plan_id is None:
            raise StalePlanError(f"{board}: no plan to apply; run `tasksync plan` first")
        plan, status = self.store.load_plan(plan_id)
        if status != "proposed":
            raise StalePlanError(f"plan {plan_id} is {status}, not a proposal; run `tasksync plan`")
        return plan, apply_plan(plan, self.connector, self.store, progress=progress)

    def undo(self, plan_id: str, progress: Progress | None = None) -> tuple[Plan, ApplyOutcome]:
        snapshot = self.connector.read()
        undo = make_undo_plan(plan_id, snapshot, self.store)
        self.store.save_plan(undo, "pending")
        outcome = apply_plan(undo, self.connector, self.store, snapshot=snapshot, progress=progress)
        self.store.set_status(plan_id, "undone")
        return undo, outcome

    def pin(self, plan_id: str, task_id: str, field: Field) -> Change:
        """Reject one change of a plan: the card's field keeps its value as a person's
        (``StateStore.mark_person_owned``), so every later plan leaves it alone (a conflict)
        until ``--force``. Returns the rejected change."""
        plan, _ = self.store.load_plan(plan_id)
        for c in plan.changes:
            if c.task_id == task_id and c.field is field:
                self.store.mark_person_owned(plan.board, [(task_id, field, c.before)], plan.id)
                return c
        raise ConfigError(f"plan {plan_id} has no change of {field.value} on card {task_id}")

    def kpis(self) -> Kpis:
        book = build_book(self.connector.read(), self.crm, self.settings, today=self.today, include_new=False)
        return compute_kpis(book)
