"""The service loop: detect changes cheaply, plan, apply in scheduled mode, record, repeat.

Time is injected (``clock`` and ``sleep``) so that tests and benchmarks run weeks of schedule in
a second. One iteration:

1. finish an interrupted apply, if the journal holds one;
2. re-read the CRM exports if any of their files changed (mtime/size), and pause if an export
   lost more than ``service.max_crm_drop`` of its rows since the last accepted read;
3. decide whether to read the board: a changed board file (a :class:`BoardFile` connector), a
   change its :class:`ChangeFeed` reports (Trello card actions, Asana events), a webhook, changed CRM exports, a
   periodic full read (``service.full_read_every``), a due rebalance or a pause to re-check;
4. plan; in scheduled mode keep only owner changes of tasks with no rep owner or whose owner is
   away (plus priorities, stages and created cards); pause if the plan still moves more than
   ``service.max_move_share`` of the tasks or the engine stops on an empty board;
5. apply, logging one line per change and per newly seen conflict; record the status.

An API outage (``TransientError``/``ApiError``) backs off exponentially up to
``service.backoff_max`` and resumes; a stop request lets the change in flight finish and leaves
the rest of its plan to the resume at the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tasksync.connectors.base import BoardFile, ChangeFeed, Connector
from tasksync.crm import CrmData, load_crm
from tasksync.errors import ApiError, AuthError, ConfigError, CrmError, SafetyStop, TasksyncError
from tasksync.model import PlanKind, PlanStatus, Snapshot
from tasksync.service.guards import check_plan_limits, compare_counts, scheduled_filter, scheduled_locks
from tasksync.service.health import FAILING, PAUSED, K, health_of, read_status
from tasksync.service.logs import LOGGER_NAME, event
from tasksync.service.outcome import OutcomeLog
from tasksync.settings import ServiceSettings, Settings
from tasksync.sync.engine import PlanResult, apply_plan, make_plan
from tasksync.sync.state import StateStoreProtocol
from tasksync.sync.workspace import Workspace

__all__ = [
    "FAILING",
    "PAUSED",
    "IterationResult",
    "SyncService",
    "backoff",
    "compare_counts",
    "health_of",
    "read_status",
    "scheduled_filter",
]

Clock = Callable[[], float]
Sleep = Callable[[float], None]

CRM_COUNTS = "crm.row_counts"
BOOKMARK = "changes_bookmark"  # the ChangeFeed's bookmark (Trello action id, Asana sync token)
LOG_NAMES = "log_names"  # the log's names (members, former ones too, and lists) of the plan being applied


class StopNow(Exception):
    """Raised between two changes when a stop was requested."""


@dataclass
class IterationResult:
    """What one iteration did (also what the tests and the benchmark look at)."""

    started: float
    read: bool = False
    reason: str = ""  # why the board was read: first, full, board, crm, webhook, rebalance, paused
    plan_id: str | None = None
    applied: int = 0
    created: int = 0
    failed: int = 0
    held: int = 0  # owner changes left for the rebalance schedule
    conflicts: int = 0
    resumed: int = 0
    paused: str | None = None
    error: str | None = None
    stopped: bool = False
    delay: float = 0.0  # seconds until the next iteration
    rebalance: bool = False
    auth_failed: bool = False  # the token or key was refused: no retry will heal it

    @property
    def ok(self) -> bool:
        return self.error is None and self.paused is None and not self.failed


def backoff(cfg: ServiceSettings, errors: int, e: BaseException) -> float:
    """Seconds before retrying a board after ``errors`` failed iterations in a row, the last
    failing with ``e``: doubling from ``min(interval, 5)`` (from the interval for a refused token,
    which will not heal in seconds) up to ``backoff_max``, or later if the vendor said when."""
    base = cfg.interval if isinstance(e, AuthError) else min(cfg.interval, 5.0)
    delay = float(min(max(cfg.backoff_max, 1.0), base * 2 ** min(errors - 1, 30)))
    retry_after = getattr(e, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > delay:
        delay = float(retry_after)  # the vendor said when: asking earlier only counts against us
    return delay


def _iso(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((p.name, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append((p.name, -1, -1))
    return tuple(out)


@dataclass
class _Detection:
    read: bool
    reason: str
    commit: Callable[[], None] = field(default=lambda: None)


class SyncService:
    """The scheduled sync of one configured board.

    ``clock`` returns seconds (epoch); ``sleep(seconds)`` waits (default: waits on an event that
    a webhook or a stop request sets early). ``today`` fixes the planning date (tests).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connector: Connector | None = None,
        clock: Clock = time.time,
        sleep: Sleep | None = None,
        today: date | None = None,
        workspace: Workspace | None = None,
        name: str = "",
    ) -> None:
        self.settings = settings
        self.name = name  # the board's name in a config of several ([[boards]] name)
        self.cfg = settings.service
        # ``workspace``: one built on another state store and writer lock (the cluster's job)
        self.ws = workspace or Workspace(settings, connector=connector, today=today)
        self.today = today
        self.clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._hooked = threading.Event()  # a webhook asked for a sync
        self._rebalance_requested = False
        self._crm: CrmData | None = None
        self._crm_sig: tuple[tuple[str, int, int], ...] | None = None
        self._crm_block: str | None = None
        self._board_sig: tuple[tuple[str, int, int], ...] | None = None
        self._last_full: float | None = None
        self._paused: str | None = None
        self._errors = 0
        self._log: OutcomeLog | None = None
        self._held: list[dict[str, str]] = []  # owner changes held back by the last scheduled plan
        self.iterations = 0  # iterations started
        self.completed = 0  # iterations finished
        self.last_result: IterationResult | None = None

    # ------------------------------------------------------------------ control
    @property
    def store(self) -> StateStoreProtocol:
        return self.ws.store

    @property
    def connector(self) -> Connector:
        return self.ws.connector

    @property
    def board(self) -> str:
        return str(self.connector.board)

    @property
    def who(self) -> dict[str, Any]:
        """The board in a log line: its key in the store, and its configured name if it has one."""
        return {"board": self.board} | ({"board_name": self.name} if self.name else {})

    @property
    def log(self) -> OutcomeLog:
        if self._log is None:
            self._log = OutcomeLog(self.board)
        return self._log

    def stop(self) -> None:
        """Stop after the change in flight (safe from a signal handler or another thread)."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def retrying(self) -> bool:
        """The last iteration failed: the service is backing off (webhooks do not hurry it)."""
        return self._errors > 0

    def trigger(self, source: str = "webhook", ids: Sequence[str] = ()) -> None:
        """Run an incremental sync now (a webhook arrived; ``ids``, the boards it names, are for a
        scheduler of several boards: with one, every delivery concerns it)."""
        self._hooked.set()
        self._wake.set()

    def request_rebalance(self) -> None:
        self._rebalance_requested = True

    def accept_crm(self) -> None:
        """Forget the row counts of the last accepted CRM read (after a deliberate shrink)."""
        self.store.put(self.board, CRM_COUNTS, "{}")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.ProgrammingError):  # opened by the thread that ran the loop
            self.ws.close()

    def sleep(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        # Wake early for a stop request, or for a webhook unless backing off from errors (a burst
        # of deliveries during an outage must not turn into a burst of requests).
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._hooked.is_set() and not self.retrying):
                break
            self._wake.wait(remaining)
            self._wake.clear()

    def run(self, max_iterations: int | None = None) -> IterationResult | None:
        """Iterate until stopped (or ``max_iterations``); returns the last iteration's result."""
        self.begin()
        last: IterationResult | None = None
        try:
            while not self.stopping:
                last = self.run_once()
                if last.stopped or self.stopping or (max_iterations is not None and self.iterations >= max_iterations):
                    break
                self.sleep(last.delay)
        finally:
            self.end()
        return last

    def begin(self) -> None:
        """Record that the service runs this board (``run`` does; so does a many-board scheduler)."""
        values = {"state": "running", "pid": str(os.getpid()), "started_at": _iso(self.clock())}
        self._put(values | ({"name": self.name} if self.name else {}))
        event("service.start", **self.who, interval=self.cfg.interval, pid=os.getpid())

    def end(self) -> None:
        self._put({"state": "stopped", "next_run": ""})
        event("service.stop", board=self.board, iterations=self.iterations)

    # ------------------------------------------------------------------ one iteration
    def run_once(self) -> IterationResult:
        now = self.clock()
        res = IterationResult(started=now, delay=self.cfg.interval)
        self.iterations += 1
        try:
            self._resume(res)
            crm_changed = self._refresh_crm(now)
            if self._crm_block is not None:
                res.paused = self._crm_block
            else:
                rebalance = self._rebalance_requested or self._rebalance_due(now)
                det = self._detect(now, crm_changed, rebalance)
                if det.read:
                    res.read, res.reason, res.rebalance = True, det.reason, rebalance
                    with self.ws.writing():  # one writer per state store (CLI apply/undo wait for it)
                        full = self._sync(res, rebalance)
                    det.commit()
                    if full:
                        self._last_full = now
                        self.store.put(self.board, K + "last_full", str(now))
                    if rebalance:
                        self._rebalance_requested = False
                        self.store.put(self.board, K + "last_rebalance", str(now))
                    self._paused = None
            self._errors = 0
        except StopNow:
            res.stopped = True
            event(
                "service.stopping",
                logging.WARNING,
                board=self.board,
                detail="stopped between two changes; the rest of the plan is finished at the next start",
            )
        except SafetyStop as e:
            self._paused = res.paused = str(e)
            self._errors = 0
            event("service.paused", logging.ERROR, **self.who, reason=str(e))
        except (ApiError, TasksyncError, OSError, sqlite3.Error) as e:  # a full disk or store: one line
            self._error(res, e)
        except Exception as e:  # a bug must not end a service meant to run for weeks
            self._error(res, e, trace=True)
        try:
            self._record(res)
        except Exception as e:  # e.g. the store locked by another process for longer than its timeout
            known = isinstance(e, OSError | sqlite3.Error | TasksyncError)
            logging.getLogger(LOGGER_NAME).error(
                "service.status_not_recorded",
                exc_info=None if known else e,
                extra={"fields": {"board": self.board, "error": f"{type(e).__name__}: {e}"}},
            )
        self.last_result = res
        self.completed += 1
        return res

    def _error(self, res: IterationResult, e: BaseException, trace: bool = False) -> None:
        self._errors += 1
        res.error = f"{type(e).__name__}: {e}"
        res.auth_failed = isinstance(e, AuthError)
        res.delay = backoff(self.cfg, self._errors, e)
        fields = {**self.who, "error": res.error, "consecutive": self._errors, "retry_in": round(res.delay, 1)}
        logging.getLogger(LOGGER_NAME).error("service.error", exc_info=e if trace else None, extra={"fields": fields})

    def _progress(self, done: int, total: int) -> None:
        if self._stop.is_set():
            raise StopNow

    def _resume(self, res: IterationResult) -> None:
        # Under the writer lock: an interrupted plan, or creates whose answer was lost.
        outcome = self.ws.pending_resume(progress=self._progress)
        if outcome is not None:
            event("plan.resume", board=self.board, plan=outcome.plan_id)
            res.resumed = outcome.done
            if not self.log.names:  # a new process, no read yet: the names the plan was made with
                raw = self.store.get(self.board, K + LOG_NAMES)
                self.log.names = json.loads(raw) if raw else {}
            self.log.outcome(self.store, outcome.plan_id, outcome)

    # ------------------------------------------------------------------ CRM exports
    def _crm_paths(self) -> list[Path]:
        crm = self.settings.crm
        folder = self.settings.path(crm.folder)
        return [folder / str(getattr(crm.files, k)) for k in ("reps", "accounts", "deals", "history")]

    def _refresh_crm(self, now: float) -> bool:
        """Re-read the exports when their files changed; True when they were re-read and accepted."""
        sig = _signature(self._crm_paths())
        if self._crm is not None and sig == self._crm_sig and self._crm_block is None:
            return False
        if sig == self._crm_sig and self._crm_block is not None:
            return False  # still the same rejected files
        stored = self.store.get(self.board, K + "crm_sig")
        changed = stored is None or json.loads(stored) != [list(x) for x in sig]
        self._crm_sig = sig
        try:
            crm = load_crm(self.settings.crm, self.settings.base_dir)
        except (CrmError, ConfigError) as e:
            self._block_crm(f"CRM exports unusable: {e}")
            return False
        raw = self.store.get(self.board, CRM_COUNTS)
        previous: dict[str, int] = json.loads(raw) if raw else {}
        lost = compare_counts(previous, crm.row_counts, self.cfg.max_crm_drop)
        if lost:
            self._block_crm(
                "CRM export lost most of its rows since the last run: "
                + "; ".join(lost)
                + " (fix the export, or run `tasksync serve --accept-crm` if the shrink is real)"
            )
            return False
        if self._crm_block is not None:
            event("crm.accepted", board=self.board, detail="CRM exports usable again; resuming")
        self._crm_block = None
        self._crm = crm
        self.ws.__dict__["crm"] = crm  # so workspace operations see the same exports
        self.store.put(self.board, CRM_COUNTS, json.dumps(crm.row_counts, sort_keys=True))
        self.store.put(self.board, K + "crm_sig", json.dumps(sig))
        event("crm.read", board=self.board, rows=crm.row_counts, problems=len(crm.problems), changed=changed)
        return changed

    def _block_crm(self, reason: str) -> None:
        if reason != self._crm_block:
            event("service.paused", logging.ERROR, **self.who, reason=reason)
        self._crm_block = reason

    # ------------------------------------------------------------------ change detection
    def _rebalance_due(self, now: float) -> bool:
        every, at = self.cfg.rebalance_every, self.cfg.rebalance_at
        if not every and not at:
            return False
        raw = self.store.get(self.board, K + "last_rebalance")
        if raw is None:  # never: start counting from now rather than rebalancing at first start
            self.store.put(self.board, K + "last_rebalance", str(now))
            return False
        last = float(raw)
        if every and now - last >= every:
            return True
        if at:
            hh, mm = (int(x) for x in at.split(":", 1))
            today_at = datetime.fromtimestamp(now, UTC).replace(hour=hh, minute=mm, second=0, microsecond=0)
            if today_at.timestamp() > now:
                today_at -= timedelta(days=1)
            return last < today_at.timestamp() <= now
        return False

    def _detect(self, now: float, crm_changed: bool, rebalance: bool) -> _Detection:
        conn = self.connector
        board = self.board
        forced = ""
        if self._last_full is None and self._board_sig is None:  # a new process: pick up where the last left
            raw_full, raw_sig = self.store.get(board, K + "last_full"), self.store.get(board, K + "board_sig")
            self._last_full = float(raw_full) if raw_full else None
            self._board_sig = tuple(tuple(x) for x in json.loads(raw_sig)) if raw_sig else None
        if self._last_full is None:
            forced = "first"
        elif now - self._last_full >= self.cfg.full_read_every:
            forced = "full"
        elif rebalance:
            forced = "rebalance"
        elif self._paused is not None:
            forced = "paused"
        elif self._hooked.is_set():
            forced = "webhook"
        elif crm_changed:
            forced = "crm"
        self._hooked.clear()

        if isinstance(conn, BoardFile):
            sig = _signature([conn.path])

            def commit_local() -> None:
                self._board_sig = sig
                self.store.put(board, K + "board_sig", json.dumps(sig))

            changed = sig != self._board_sig
            return _Detection(bool(forced) or changed, forced or ("board" if changed else ""), commit_local)
        if not isinstance(conn, ChangeFeed):
            return _Detection(True, forced or "poll")  # no change detection: read every interval
        if forced in ("full", "paused"):
            # The board is read anyway: skip the change check (its bookmark stays; the next check
            # may report changes this read already saw, which costs one read, never a miss).
            return _Detection(True, forced)
        ids, bookmark = conn.changed_since(self.store.get(board, K + BOOKMARK))

        def commit_bookmark() -> None:
            self.store.put(board, K + BOOKMARK, bookmark)

        if ids is None:
            return _Detection(True, forced or "full", commit_bookmark)
        return _Detection(bool(forced) or bool(ids), forced or ("board" if ids else ""), commit_bookmark)

    # ------------------------------------------------------------------ plan and apply
    def _sync(self, res: IterationResult, rebalance: bool) -> bool:
        """Read, plan, guard and apply. Returns True (every read is a full read of the board)."""
        if self._crm is None:  # _refresh_crm accepted no export yet; run_once never gets here then
            raise CrmError("no usable CRM exports read yet")
        snapshot = self.connector.read()
        kind = PlanKind.REBALANCE if rebalance else PlanKind.SYNC
        result = self._plan(self._crm, snapshot, kind, res)
        plan = result.plan
        check_plan_limits(plan, snapshot, self.cfg, self.board, rebalance)
        if plan.empty:
            return True
        if self.stopping:
            raise StopNow  # stop before starting a plan rather than after its first change
        self.store.save_plan(plan, PlanStatus.PENDING)  # not "proposed": a person's proposal stays theirs
        res.plan_id = plan.id
        event("plan.apply", board=self.board, plan=plan.id, kind=kind.value, changes=len(plan.changes),
              creates=len(plan.creates), held=res.held, reason=res.reason)  # fmt: skip
        self._apply(result, snapshot, res)
        return True

    def _plan(self, exports: CrmData, snapshot: Snapshot, kind: PlanKind, res: IterationResult) -> PlanResult:
        """The plan for this read. In scheduled mode the owner changes it may not make (cards of
        available reps) are held back for the rebalance schedule, and the plan applied is decided
        again with those cards' owners kept, so that its priorities and the rest of its division
        hold for the board as it will be (a plan tiered for moves that never happen would re-tier
        cards on the next run)."""
        from tasksync.team.overrides import explain_overrides, with_rep_overrides  # reps set by command

        crm = with_rep_overrides(exports, self.store, self.today)
        result = make_plan(self.settings, snapshot, crm, self.store, kind=kind, today=self.today)
        self.log.names = snapshot.member_names | {s.id: s.name for s in snapshot.stages}
        if kind is not PlanKind.REBALANCE:
            held = scheduled_filter(result.plan, snapshot, result.book)
            res.held = len(held)
            self._held = [
                {
                    "title": c.title,
                    "from": self.log.named(c.before),
                    "to": self.log.named(c.after),
                    "why": f"{c.reason}; scheduled mode moves only unowned cards and cards of reps away, so this "
                    "waits for the rebalance schedule (or `tasksync plan` and `apply` by hand)",
                }
                for c in held
            ]
            if held:
                locks = scheduled_locks(snapshot, result.book)
                result = make_plan(self.settings, snapshot, crm, self.store, kind=kind, today=self.today, locked=locks)
                scheduled_filter(result.plan, snapshot, result.book)  # a guard: policies keep locked owners
                result.plan.notes.append(
                    f"scheduled mode: {len(held)} owner change(s) left for the next rebalance; this plan keeps "
                    f"the owners of the {len(locks)} cards of available reps"
                )
        explain_overrides(result, self.store, self.today)
        self.log.conflicts(result.plan)
        res.conflicts = len(result.plan.conflicts)
        return result

    def _apply(self, result: PlanResult, snapshot: Snapshot, res: IterationResult) -> None:
        from tasksync.team.comments import comment_after_apply, prepare_comments  # [write] comment, on by default

        plan = result.plan
        # For the log of a resume by the next process (its members may have left the board by then).
        self.store.put(self.board, K + LOG_NAMES, json.dumps(self.log.names, ensure_ascii=False, sort_keys=True))
        prepare_comments(result, self.store, self.settings, self.connector, service=True)
        outcome = apply_plan(plan, self.connector, self.store, snapshot=snapshot, progress=self._progress)
        res.applied += outcome.done - outcome.created
        res.created += outcome.created
        res.failed += len(outcome.failed)
        self.log.outcome(self.store, plan.id, outcome)
        comments = comment_after_apply(plan, self.connector, self.store, self.settings, service=True)
        if comments is not None and (comments.posted or comments.failed or comments.unknown):
            event("comments.posted", board=self.board, plan=plan.id, posted=comments.posted,
                  failed=len(comments.failed), unknown=comments.unknown)  # fmt: skip

    # ------------------------------------------------------------------ status
    def _put(self, values: dict[str, str]) -> None:
        with self.store.transaction():
            for k, v in values.items():
                self.store.put(self.board, K + k, v)

    def _record(self, res: IterationResult) -> None:
        values = {
            "last_run": _iso(res.started),
            "next_run": _iso(res.started + res.delay),
            "interval": str(self.cfg.interval),
            "paused": res.paused or "",
            "errors": str(self._errors),
            "last_error": res.error or "",
            "auth_failed": "1" if res.auth_failed else "",
        }
        if self.name:
            values["name"] = self.name
        if res.error is None and res.paused is None:
            values["last_ok"] = _iso(res.started)
        if res.read:
            values["conflicts"] = str(res.conflicts)
            values["held"] = str(res.held)
            values["held_changes"] = json.dumps(self._held[:50], ensure_ascii=False)
        if res.plan_id:
            values["last_plan"] = res.plan_id
        if res.error is not None:
            values["last_error_at"] = _iso(res.started)
        self._put(values)
        if res.read or res.error or res.plan_id or res.resumed:
            event(
                "iteration",
                logging.INFO if res.error is None else logging.WARNING,
                board=self.board,
                read=res.read,
                reason=res.reason,
                plan=res.plan_id,
                applied=res.applied,
                created=res.created,
                failed=res.failed,
                held=res.held,
                conflicts=res.conflicts,
                resumed=res.resumed,
                paused=res.paused,
                next_in=round(res.delay, 1),
            )
