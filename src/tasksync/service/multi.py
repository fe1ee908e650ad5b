"""Many boards in one process: ``tasksync serve`` on a config naming several boards.

Every board keeps its own :class:`~tasksync.service.loop.SyncService` (its CRM exports, policy,
guards, change detection and status), all on the one state store (keyed by board) and, for
boards on one token or key, the one request budget (the transport's limiters are per token and
key, shared by every connector of the process and, through the state folder, of the machine).

Scheduling is deterministic and fair: each board is due at its last iteration's start plus the
delay that iteration asked for (the interval, or the back-off after an error); the board most
overdue runs next (of boards due at the same time, the one that ran longest ago, then config
order), one iteration at a time. A webhook makes its board due
*now*, which puts it behind every board already overdue, so a board flooded with deliveries
cannot starve the others; a board backing off from errors is not hurried by webhooks. A board's
failure is that iteration's error: logged with the board's name, recorded in its status and
retried on its own back-off, while the others go on. A board whose connector cannot be opened
at the start (its token not set yet, a plug-in connector's server down) is a
:class:`WaitingBoard`: retried on the same back-off, its secrets read again each time (the
environment and the ``.env`` beside the config), recorded as failing with the reason under its
name, and joining the others when it opens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from tasksync.errors import ConfigError, TasksyncError
from tasksync.service.health import K, forget_status
from tasksync.service.logs import LOGGER_NAME, event
from tasksync.service.loop import Clock, IterationResult, Sleep, SyncService, backoff

if TYPE_CHECKING:
    from tasksync.settings import ConfiguredBoard
    from tasksync.sync.state import StateStore

__all__ = ["BoardScheduler", "WaitingBoard", "exit_code", "open_boards"]

Prepare = Callable[[SyncService], None]


def exit_code(results: Sequence[IterationResult]) -> int:
    """``serve --once``: 0 every board done, 1 one failed (an error or a failed write), 4 one
    paused by a guard (the worst, as ``tasksync status`` counts it)."""
    return max((0 if r.ok else (4 if r.paused else 1) for r in results), default=0)


class WaitingBoard:
    """A board of the config whose connector could not be opened: each :meth:`attempt` reads its
    secrets again and opens it; a failure is recorded under the board's name (``open_failed``,
    ``errors``, ``last_error``: ``tasksync status`` shows it failing with the reason) and the
    next attempt waits the back-off of a board failing that many times in a row."""

    def __init__(
        self,
        board: ConfiguredBoard,
        error: TasksyncError,
        *,
        today: date | None = None,
        clock: Clock = time.time,
        sleep: Sleep | None = None,
    ) -> None:
        self.configured = board
        self.name = board.name
        self.settings = board.settings
        self.today = today
        self.clock = clock
        self._sleep = sleep
        self._first = error  # why the board did not open at the start (recorded at its first attempt)
        self._errors = 0
        self._store: StateStore | None = None
        self.last_result: IterationResult | None = None

    @property
    def retrying(self) -> bool:
        return True  # backing off from errors: webhooks do not hurry it

    @property
    def store(self) -> StateStore:
        if self._store is None:
            from tasksync.sync.state import StateStore

            self._store = StateStore(self.settings.path(self.settings.state_path))
        return self._store

    def open(self, taken: Sequence[str] = ()) -> SyncService:
        """The board's service, its connector opened with its secrets as they are now; ``taken``
        are the keys of the boards already served (a board is served once)."""
        from tasksync.connectors import open_connector

        self.settings.secrets = self.configured.read_secrets()
        connector = open_connector(self.settings)
        key = str(connector.board)
        if key in taken:
            raise ConfigError(f"board {self.name!r} is {key}, which another board of the config names: name each once")
        return SyncService(
            self.settings, connector=connector, clock=self.clock, sleep=self._sleep, today=self.today, name=self.name
        )

    @property
    def first_error(self) -> str:
        return f"{type(self._first).__name__}: {self._first}"

    def attempt(self, taken: Sequence[str] = ()) -> SyncService | IterationResult:
        """Open the board (the service; its status under the name forgotten) or record why not.
        The first attempt records the failure seen at the start."""
        now = self.clock()
        error: TasksyncError = self._first
        if self._errors:
            try:
                service = self.open(taken)
            except TasksyncError as e:
                error = e
            else:
                forget_status(self.store, self.name)
                event("service.board_opened", board=service.board, board_name=self.name, attempts=self._errors + 1)
                return service
        self._errors += 1
        res = IterationResult(started=now, error=f"{type(error).__name__}: {error}")
        res.delay = backoff(self.settings.service, self._errors, error)
        event("service.error", logging.ERROR, board_name=self.name, error=res.error, consecutive=self._errors,
              retry_in=round(res.delay, 1))  # fmt: skip
        self._put(
            {
                "name": self.name,
                "state": "not opened",
                "open_failed": "1",
                "last_run": _iso(now),
                "next_run": _iso(now + res.delay),
                "interval": str(self.settings.service.interval),
                "errors": str(self._errors),
                "last_error": res.error or "",
                "last_error_at": _iso(now),
            }
        )
        self.last_result = res
        return res

    def end(self) -> None:
        self._put({"state": "stopped", "next_run": ""})

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _put(self, values: dict[str, str]) -> None:
        with self.store.transaction():
            for k, v in values.items():
                self.store.put(self.name, K + k, v)


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def open_boards(
    boards: Sequence[ConfiguredBoard],
    *,
    today: date | None = None,
    clock: Clock = time.time,
    sleep: Sleep | None = None,
    prepare: Prepare | None = None,
) -> BoardScheduler:
    """The scheduler of ``serve``: a service per board whose connector opens, a
    :class:`WaitingBoard` for each that does not (its first iteration logs and records why; the
    others run). A config of one board that cannot be opened raises, as does one none of whose
    boards opens (naming each board and why)."""
    from tasksync.connectors import open_connector
    from tasksync.sync.state import StateStore

    slots: list[SyncService | WaitingBoard] = []
    keys: dict[str, str] = {}
    for b in boards:
        name = b.name if b.explicit or len(boards) > 1 else ""  # a single-board config's board has its id
        try:
            connector = open_connector(b.settings)
        except TasksyncError as e:
            if len(boards) == 1:
                raise
            slots.append(WaitingBoard(b, e, today=today, clock=clock, sleep=sleep))
            continue
        key = str(connector.board)
        if key in keys:
            raise ConfigError(
                f"boards {keys[key]!r} and {b.name!r} are both {key} in the state store: name each board once"
            )
        keys[key] = b.name
        slots.append(SyncService(b.settings, connector=connector, clock=clock, sleep=sleep, today=today, name=name))
    waiting = [w for w in slots if isinstance(w, WaitingBoard)]
    if waiting and len(waiting) == len(slots):
        why = "; ".join(f"{w.name}: {w.first_error}" for w in waiting)
        raise ConfigError(f"none of the boards could be opened ({why})")
    if len(boards) > 1:  # a board recorded as not opened by an earlier run, opened now
        with StateStore(boards[0].settings.path(boards[0].settings.state_path)) as store:
            for svc in slots:
                if isinstance(svc, SyncService) and svc.name:
                    forget_status(store, svc.name)
    return BoardScheduler(slots, clock=clock, sleep=sleep, prepare=prepare)


class BoardScheduler:
    """Runs the boards' iterations one at a time, the most overdue first.

    ``clock`` returns seconds (epoch); ``sleep(seconds)`` waits (default: waits on an event that
    a webhook or a stop request sets early). The boards are services, or boards waiting to be
    opened (:class:`WaitingBoard`), which take their place once they open; ``prepare`` is called
    with each service before its first iteration (``--accept-crm``, ``--rebalance``)."""

    def __init__(
        self,
        boards: Sequence[SyncService | WaitingBoard],
        *,
        clock: Clock = time.time,
        sleep: Sleep | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.boards = list(boards)
        self.clock = clock
        self._sleep = sleep
        self._prepare = prepare
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = False
        self._started: list[SyncService] = []
        start = clock()
        self._due = [start] * len(self.boards)  # all due at the start: config order
        self._ran = [-1] * len(self.boards)  # the iteration each board last ran in (ties: the longest waiting)
        for svc in self.services:
            if prepare is not None:
                prepare(svc)
        self.iterations = 0
        self.order: list[str] = []  # the boards in the order their iterations ran (tests, benchmarks)

    @property
    def services(self) -> list[SyncService]:
        """The boards being served (opened), in config order."""
        return [b for b in self.boards if isinstance(b, SyncService)]

    @property
    def waiting(self) -> list[WaitingBoard]:
        """The boards not opened yet."""
        return [b for b in self.boards if isinstance(b, WaitingBoard)]

    @property
    def keys(self) -> list[str]:
        """Each board's key in the store's status: a service's board, a waiting board's name."""
        return [b.board if isinstance(b, SyncService) else b.name for b in self.boards]

    def close(self) -> None:
        for b in self.boards:
            b.close()

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Stop after the change in flight (safe from a signal handler or another thread)."""
        self._stop.set()
        for svc in self.services:
            svc.stop()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def trigger(self, source: str = "webhook", ids: Sequence[str] = ()) -> None:
        """A verified webhook delivery from ``source`` (trello, asana) naming ``ids`` (board ids,
        short links, project gids): those boards are due now. One naming no board of this
        process wakes every board of that vendor (their change feeds find nothing to read where
        nothing changed, at one request each)."""
        wanted = {i.casefold() for i in ids}
        named = [s for s in self.services if s.connector.board.id.casefold() in wanted]
        targets = named or [s for s in self.services if s.connector.board.connector == source]
        now = self.clock()
        with self._lock:
            for svc in targets:
                svc.trigger(source)
                if not svc.retrying:
                    i = self.boards.index(svc)
                    self._due[i] = min(self._due[i], now)
        self._wake.set()

    # ------------------------------------------------------------------ running
    def next_board(self) -> tuple[int, float]:
        """The index of the board to run next and when it is due."""
        with self._lock:
            due, _, i = min((d, self._ran[i], i) for i, d in enumerate(self._due))
        return i, due

    def run_board(self, i: int) -> IterationResult:
        """One iteration of board ``i``; for a waiting board an attempt to open it, and once it
        opens, its first iteration."""
        board = self.boards[i]
        if isinstance(board, WaitingBoard):
            opened = board.attempt(taken=[svc.board for svc in self.services])
            if isinstance(opened, IterationResult):
                return self._ran_board(i, board.name, opened)
            board.close()
            with self._lock:
                self.boards[i] = opened
            if self._prepare is not None:
                self._prepare(opened)
            if self._running:
                opened.begin()
                self._started.append(opened)
            board = opened
        return self._ran_board(i, board.name or board.board, board.run_once())

    def _ran_board(self, i: int, name: str, res: IterationResult) -> IterationResult:
        self.iterations += 1
        self.order.append(name)
        with self._lock:
            self._due[i] = res.started + res.delay
            self._ran[i] = self.iterations
        return res

    def run_all_once(self) -> list[IterationResult]:
        """One iteration of every board, in config order (``serve --once``)."""
        return [self.run_board(i) for i in range(len(self.boards)) if not self.stopping]

    def run(self, max_iterations: int | None = None) -> None:
        """Iterate until stopped (or ``max_iterations`` iterations in all)."""
        started: list[SyncService] = []
        self._started = started
        self._running = True
        try:
            for svc in self.services:
                svc.begin()
                started.append(svc)
            while self.boards and not self.stopping:
                i, due = self.next_board()
                wait = due - self.clock()
                if wait > 0:
                    self.sleep(wait)
                    continue  # a webhook may have made another board due meanwhile
                res = self.run_board(i)
                if res.stopped or (max_iterations is not None and self.iterations >= max_iterations):
                    break
        finally:
            self._running = False
            for svc in started:
                _quietly(svc.end)
            for waiting in self.waiting:
                _quietly(waiting.end)

    def sleep(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        self._wake.wait(seconds)
        self._wake.clear()


def _quietly(fn: Callable[[], None]) -> None:
    """Record a board's stop; a store failing then must not hide the others' (it is logged)."""
    try:
        fn()
    except Exception as e:
        logging.getLogger(LOGGER_NAME).error("service.status_not_recorded", extra={"fields": {"error": f"{e}"}})
