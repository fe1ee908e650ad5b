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
retried on its own back-off, while the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from tasksync.service.logs import LOGGER_NAME
from tasksync.service.loop import Clock, IterationResult, Sleep, SyncService

__all__ = ["BoardScheduler", "exit_code"]


def exit_code(results: Sequence[IterationResult]) -> int:
    """``serve --once``: 0 every board done, 1 one failed (an error or a failed write), 4 one
    paused by a guard (the worst, as ``tasksync status`` counts it)."""
    return max((0 if r.ok else (4 if r.paused else 1) for r in results), default=0)


class BoardScheduler:
    """Runs the boards' iterations one at a time, the most overdue first.

    ``clock`` returns seconds (epoch); ``sleep(seconds)`` waits (default: waits on an event that
    a webhook or a stop request sets early)."""

    def __init__(
        self, services: Sequence[SyncService], *, clock: Clock = time.time, sleep: Sleep | None = None
    ) -> None:
        self.services = list(services)
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        start = clock()
        self._due = [start] * len(self.services)  # all due at the start: config order
        self._ran = [-1] * len(self.services)  # the iteration each board last ran in (ties: the longest waiting)
        self.iterations = 0
        self.order: list[str] = []  # the boards in the order their iterations ran (tests, benchmarks)

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
                    i = self.services.index(svc)
                    self._due[i] = min(self._due[i], now)
        self._wake.set()

    # ------------------------------------------------------------------ running
    def next_board(self) -> tuple[int, float]:
        """The index of the board to run next and when it is due."""
        with self._lock:
            due, _, i = min((d, self._ran[i], i) for i, d in enumerate(self._due))
        return i, due

    def run_board(self, i: int) -> IterationResult:
        svc = self.services[i]
        res = svc.run_once()
        self.iterations += 1
        self.order.append(svc.name or svc.board)
        with self._lock:
            self._due[i] = res.started + res.delay
            self._ran[i] = self.iterations
        return res

    def run_all_once(self) -> list[IterationResult]:
        """One iteration of every board, in config order (``serve --once``)."""
        return [self.run_board(i) for i in range(len(self.services)) if not self.stopping]

    def run(self, max_iterations: int | None = None) -> None:
        """Iterate until stopped (or ``max_iterations`` iterations in all)."""
        started: list[SyncService] = []
        try:
            for svc in self.services:
                svc.begin()
                started.append(svc)
            while self.services and not self.stopping:
                i, due = self.next_board()
                wait = due - self.clock()
                if wait > 0:
                    self.sleep(wait)
                    continue  # a webhook may have made another board due meanwhile
                res = self.run_board(i)
                if res.stopped or (max_iterations is not None and self.iterations >= max_iterations):
                    break
        finally:
            for svc in started:
                _quietly(svc.end)

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
