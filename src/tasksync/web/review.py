"""What the review page does, on the engine: plan, reject (pin), apply with progress, history, undo,
the reps table and its overrides.

Every operation opens its own :class:`~tasksync.sync.workspace.Workspace` in the thread that
runs it (SQLite connections stay in their thread). The page's data is :func:`tasksync.render.plan_json`
of the plan the page asked for: the schema of ``plan --json``, computed once per plan.
One write at a time per app: a second one is refused (409) while the first runs.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tasksync.errors import ConfigError, TasksyncError
from tasksync.model import Field, FieldValue, PlanKind, PlanStatus
from tasksync.render import plan_json
from tasksync.settings import Settings
from tasksync.sync.engine import PlanResult
from tasksync.sync.workspace import Workspace
from tasksync.team.override_commands import OverrideCommands, override_commands

__all__ = ["Busy", "Job", "Review"]

HISTORY = (PlanStatus.APPLIED, PlanStatus.PARTIAL, PlanStatus.UNDONE)  # plans whose changes were written
UNDOABLE = (PlanStatus.APPLIED, PlanStatus.PARTIAL)


class Busy(TasksyncError):
    """Another write of this app is running."""

    exit_code = 5


@dataclass
class Job:
    id: str
    kind: str  # apply | undo
    plan_id: str
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 0
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "plan_id": self.plan_id,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "message": self.message,
            "result": self.result,
        }


def _left_alone(result: PlanResult) -> list[dict[str, Any]]:
    """The plan's conflicts (a person's values, rejected changes) with names instead of ids."""
    snap = result.snapshot
    names = dict(snap.member_names)
    stages = {st.id: st.name for st in snap.stages}

    def show(value: FieldValue) -> str:
        if isinstance(value, tuple):
            return ", ".join(names.get(str(v), str(v)) for v in value) or "(nobody)"
        if value is None:
            return "(none)"
        return stages.get(str(value), str(value))

    return [
        {
            "task_id": c.task_id,
            "title": c.title,
            "field": c.field.value,
            "now": show(c.current),
            "wanted": show(c.wanted),
        }
        for c in result.plan.conflicts
    ]


class Review:
    """The review page's operations on one configured board."""

    def __init__(self, settings: Settings, *, board: str | None = None, today: date | None = None) -> None:
        self.settings = settings
        self.board = board
        self.today = today
        self._write = threading.Lock()
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}  # plan id -> plan_json
        self._jobs: dict[str, Job] = {}
        self._cards: tuple[tuple[str, ...], dict[str, list[dict[str, Any]]]] | None = None
        self._planning: threading.Event | None = None  # set while a plan() runs; waiters share its plan

    def workspace(self) -> Workspace:
        return Workspace(self.settings, today=self.today, board=self.board)

    # ------------------------------------------------------------------ reading
    def current(self) -> dict[str, Any] | None:
        """The data of the board's latest proposal when this app computed it, else None."""
        with self.workspace() as ws:
            latest = ws.store.latest(ws.connector.board, PlanStatus.PROPOSED)
        with self._lock:
            return self._data.get(latest) if latest else None

    def history(self, limit: int = 30) -> list[dict[str, Any]]:
        with self.workspace() as ws:
            records = ws.store.plans(ws.connector.board, limit=limit)
        return [
            {
                "id": p.id,
                "kind": p.kind,
                "status": p.status,
                "created_at": p.created_at,
                "applied_at": p.applied_at,
                "changes": p.changes,
                "creates": p.creates,
                "can_undo": p.status in UNDOABLE and p.kind != PlanKind.UNDO.value,
            }
            for p in records
        ]

    def reps(self) -> dict[str, Any]:
        """The reps table: the data of ``tasksync reps --json`` (one schema)."""
        from tasksync.team.roster import reps_data

        with self.workspace() as ws:
            return reps_data(ws)

    # ------------------------------------------------------------------ writing
    def _writer(self) -> None:
        if not self._write.acquire(blocking=False):
            raise Busy("another plan, apply or undo is running on this board; wait for it to finish")

    def plan(self, wait: float = 600.0) -> dict[str, Any]:
        """A new plan, saved as the board's proposal. While another request is planning, this one
        waits for that plan and answers with it (one computation, no refusal); while an apply or
        undo runs, it is refused (:class:`Busy`)."""
        running = threading.Event()
        with self._lock:  # taking the write lock and saying "planning" at once: a waiter sees both
            acquired = self._write.acquire(blocking=False)
            pending = None if acquired else self._planning
            if acquired:
                self._planning = running
        if not acquired:
            if pending is None:
                raise Busy("another plan, apply or undo is running on this board; wait for it to finish")
            pending.wait(wait)
            data = self.current()
            if data is None:
                raise Busy("another request was planning and its plan is not ready; try again")
            return data
        try:
            return self._plan()
        finally:
            with self._lock:
                self._planning = None
            running.set()
            self._write.release()

    def _plan(self) -> dict[str, Any]:
        with self.workspace() as ws:
            result = ws.plan()
            data = plan_json(result, ws.settings)
        data["left_alone"] = _left_alone(result)
        with self._lock:
            self._data = {result.plan.id: data}
        return data

    def set_rep(self, change: Callable[[OverrideCommands], str], set_by: str) -> dict[str, Any]:
        """Run one of the rep override commands (``change``, bound to its arguments) as ``set_by``;
        the board's proposal is then out of date: superseded, so it can no longer be applied, and
        the page plans again. Answers with the command's line and the new reps table."""
        self._writer()
        try:
            with self.workspace() as ws:
                board = ws.connector.board  # opened first: a board that cannot be reached changes nothing
                said = change(override_commands(ws, set_by))
                ws.store.supersede_proposals(board)
            with self._lock:
                self._data = {}
            return {"message": said, "plan_stale": True, "data": self.reps()}
        finally:
            self._write.release()

    def reject(self, plan_id: str, task_id: str, field_name: str) -> dict[str, Any]:
        """Pin the card's field as it is (a person's), then plan again: the new plan respects the pin."""
        try:
            fld = Field(field_name)
        except ValueError:
            raise ConfigError(f"unknown field {field_name!r}") from None
        self._writer()
        try:
            with self.workspace() as ws:
                latest = ws.store.latest(ws.connector.board, PlanStatus.PROPOSED)
                if latest != plan_id:
                    raise ConfigError(f"plan {plan_id} is not the board's latest proposal; reload the page")
                ws.pin(plan_id, task_id, fld)
            return self._plan()
        finally:
            self._write.release()

    def start(self, kind: str, plan_id: str) -> Job:
        """Apply a proposal or undo an applied plan in a thread; poll :meth:`job` for progress."""
        if kind not in ("apply", "undo"):
            raise ConfigError(f"unknown operation {kind!r}")
        self._writer()
        job = Job(secrets.token_hex(8), kind, plan_id)
        with self._lock:
            self._jobs[job.id] = job
        thread = threading.Thread(target=self._run, args=(job,), name=f"tasksync-{kind}", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._write.release()
            raise
        return job

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        progress_cb: Callable[[int, int], None] = progress
        try:
            with self.workspace() as ws:
                if job.kind == "apply":
                    ws.pending_resume()
                    plan, outcome = ws.apply(job.plan_id, progress=progress_cb)
                else:
                    plan, outcome = ws.undo(job.plan_id, progress=progress_cb)
            job.total = job.total or len(plan.changes) + len(plan.creates)
            job.done = job.total if outcome.ok else job.done
            job.result = {
                "plan_id": plan.id,
                "written": outcome.done,
                "created": outcome.created,
                "failed": list(outcome.failed),
                "conflicts": list(outcome.conflicts) + [f"{c.title}: {c.field.value}" for c in plan.conflicts],
            }
            job.state = "done" if outcome.ok else "failed"
            job.message = (
                f"{outcome.done} changes written, {outcome.created} cards created"
                if outcome.ok
                else f"{len(outcome.failed)} writes failed: {'; '.join(outcome.failed[:3])}"
            )
        except TasksyncError as e:
            job.state, job.message = "failed", str(e)
        except Exception as e:  # the page shows it; the thread must not die silently
            job.state, job.message = "failed", f"{type(e).__name__}: {e}"
        finally:
            self._write.release()

    # ------------------------------------------------------------------ cards (Power-Up)
    def card(self, task_id: str) -> dict[str, Any]:
        """Priority tier, owner reason and reason history of one card, from the state store."""
        with self.workspace() as ws:
            board = ws.connector.board
            # the newest plan in each history status: any plan applied, resumed or undone changes it
            key = tuple(ws.store.latest(board, status) or "" for status in HISTORY)
            with self._lock:
                cached = self._cards
            if cached is None or cached[0] != key:
                index: dict[str, list[dict[str, Any]]] = {}
                for p in ws.store.plans(board, limit=200):  # newest first
                    if p.status not in HISTORY:
                        continue
                    plan, _ = ws.store.load_plan(p.id)
                    for c in plan.changes:
                        index.setdefault(c.task_id, []).append(
                            {
                                "plan_id": p.id,
                                "kind": p.kind,
                                "status": p.status,
                                "at": p.applied_at or p.created_at,
                                "field": c.field.value,
                                "after": list(c.after) if isinstance(c.after, tuple) else c.after,
                                "reason": c.reason,
                            }
                        )
                cached = (key, index)
                with self._lock:
                    self._cards = cached
            pinned = sorted(f.value for t, f in ws.store.person_owned(board) if t == task_id)
        history = cached[1].get(task_id, [])
        live = [h for h in history if h["status"] != PlanStatus.UNDONE]
        tier = next((h["after"] for h in live if h["field"] == Field.PRIORITY.value), None)
        owner = next((h["reason"] for h in live if h["field"] == Field.ASSIGNEES.value), None)
        return {"card": task_id, "tier": tier, "owner_reason": owner, "pinned": pinned, "history": history}
