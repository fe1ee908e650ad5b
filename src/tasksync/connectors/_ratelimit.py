"""Client-side throttling shared by connectors: a sliding-window limiter with an injectable clock.

The limiter keeps the send times of the last ``limit`` requests and makes a caller wait until
sending one more keeps the count inside any ``window`` seconds at or below ``limit``. It is
thread-safe, so one limiter per token and process can be shared by every connector using that
token. ``pause`` holds every caller back (for a ``Retry-After`` the server sent).

Usage::

    limiter = SlidingWindowLimiter(limit=150, window=60.0)
    with limiter.slot():       # blocks until one more request fits the budget
        ...send the request...  # the slot is stamped with the time the answer came back
    limiter.pause(retry_after) # the server said 429: nobody sends for that long

``acquire()`` takes a slot stamped with the send time, for callers without a block.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "SlidingWindowLimiter"]


class Clock(Protocol):
    """Where the limiter reads time and how it waits; tests inject a fake one."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """Real time: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds, shared by threads.

    The server counts a request when it arrives, somewhere between the client's send and the
    answer. Using :meth:`slot` around a request re-stamps it with the time its answer came
    back, so the client's count in any window is never below the server's, whatever the
    latency. ``slack`` widens the window a little more (as a fraction) for clock drift.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        clock: Clock | None = None,
        slack: float = 0.01,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window * (1.0 + slack)
        self.clock: Clock = clock or MonotonicClock()
        self._sent: list[float] = []  # stamps in the window, sorted
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds callers spent waiting (for reports and benchmarks)
        self.acquired = 0

    def _delay(self, now: float) -> float:
        """Seconds until one more request fits; 0 when it fits now. Caller holds the lock."""
        expired = bisect.bisect_right(self._sent, now - self.window)
        if expired:
            del self._sent[:expired]
        delay = max(0.0, self._paused_until - now)
        if len(self._sent) >= self.limit:
            # The oldest of the last `limit` stamps must leave the window first.
            oldest = self._sent[len(self._sent) - self.limit]
            delay = max(delay, oldest + self.window - now)
        return delay

    def _take(self, now: float) -> float:
        bisect.insort(self._sent, now)
        self.acquired += 1
        return now

    def try_acquire(self) -> bool:
        """Take one slot if it is free now; never waits."""
        with self._lock:
            now = self.clock.now()
            if self._delay(now) > 0:
                return False
            self._take(now)
            return True

    def _acquire(self) -> tuple[float, float]:
        total = 0.0
        while True:
            with self._lock:
                now = self.clock.now()
                delay = self._delay(now)
                if delay <= 0:
                    self.waited += total
                    return self._take(now), total
            # Sleep outside the lock; re-check afterwards since other threads may have taken it.
            self.clock.sleep(delay)
            total += delay

    def acquire(self) -> float:
        """Wait until one more request fits, take the slot, and return the seconds waited."""
        return self._acquire()[1]

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Acquire a slot for one request; when the block ends, stamp it with that moment.

        Yields the seconds waited.
        """
        stamp, waited = self._acquire()
        try:
            yield waited
        finally:
            self._restamp(stamp)

    def _restamp(self, stamp: float) -> None:
        with self._lock:
            now = self.clock.now()
            i = bisect.bisect_left(self._sent, stamp)
            if i < len(self._sent) and self._sent[i] == stamp:
                del self._sent[i]
            bisect.insort(self._sent, now)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (e.g. the server's ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock.now() + max(0.0, seconds))

    def in_window(self) -> int:
        """How many slots were taken in the current window."""
        with self._lock:
            self._delay(self.clock.now())
            return len(self._sent)
