"""The rate limiter of the transport core (:mod:`tasksync.connectors.transport` re-exports it).

A :class:`SlidingWindowLimiter` per budget (a vendor's limit per token or key and window); its
record of recent requests lives in memory (:class:`MemoryWindow`) or in a small file locked with
``fcntl`` (:class:`FileWindow`, named by a hash of the token) so that consecutive commands and
several services on one token share one budget. :class:`LimiterRegistry` hands out one limiter
per (scope, secret) pair. Clocks are injectable so that tests run a vendor's minute in a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "Clock",
    "FileWindow",
    "LimiterRegistry",
    "MemoryWindow",
    "ScaledClock",
    "SlidingWindowLimiter",
    "SystemClock",
    "Window",
    "WindowStore",
    "secret_fingerprint",
]


def secret_fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a secret (limiter records, request logs)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    """Time as the limiter and the retry policy see it; tests and benchmarks inject their own."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time (``time.monotonic`` is one clock for every process of the machine)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Time running ``factor`` times faster than real time (shared by a fake and a limiter).

    With ``factor=10`` a 10-second rate-limit window passes in one real second, so a benchmark
    of a throttled workload runs ten times faster while every ratio stays the same.
    """

    def __init__(self, factor: float = 10.0) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor = factor
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)


# --------------------------------------------------------------------------- window records


@dataclass(slots=True)
class Window:
    """A limiter's record: when its recent requests were counted, and any block after a 429."""

    stamps: list[float]
    blocked_until: float = 0.0


class WindowStore(Protocol):
    """Where a limiter keeps its :class:`Window`; ``locked`` gives exclusive access to it."""

    def locked(self) -> contextlib.AbstractContextManager[Window]: ...


class MemoryWindow:
    """The record of one process."""

    def __init__(self) -> None:
        self._window = Window([])
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Window]:
        with self._lock:
            yield self._window


class FileWindow:
    """A record shared by every process on the machine, in a small JSON file locked with fcntl.

    The file holds stamps of :func:`time.monotonic` (one clock for the whole machine); stamps
    from before a reboot lie in the future and are dropped. It is created 0600 and holds no
    secret: its name carries a hash of the token.
    """

    def __init__(self, path: Path, horizon: float) -> None:
        self.path = path
        self.horizon = horizon  # no stamp or block lies further ahead than this (reboots)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Window]:
        import fcntl  # POSIX only; the registry falls back to memory where it is missing

        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                window = self._load(fd)
                yield window
                data = json.dumps({"stamps": window.stamps, "blocked_until": window.blocked_until})
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data.encode())
            finally:
                os.close(fd)  # closing releases the lock

    def _load(self, fd: int) -> Window:
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            data = json.loads(raw) if raw else {}
            stamps = [float(s) for s in data.get("stamps", [])]
            blocked = float(data.get("blocked_until", 0.0))
        except (ValueError, TypeError, AttributeError):
            stamps, blocked = [], 0.0  # a damaged record costs one window of caution, never a crash
        now = time.monotonic()
        # Stamps are never ahead of now (a stamp ahead was made before a reboot); a block after a
        # 429 may lie ahead, but not beyond the horizon.
        return Window([s for s in stamps if s <= now + 1.0], blocked if blocked <= now + self.horizon else 0.0)


# --------------------------------------------------------------------------- limiter


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; thread-safe, blocking.

    ``margin`` (a share of the window) makes the local window slightly longer than the server's
    against clock skew; :meth:`settle` moves a slot's stamp to the moment its answer arrived, so
    latency cannot push a request into the server's next window. :meth:`block_for` stops every
    caller until a time (after a 429); :meth:`observe` takes the server's view of the budget from
    response headers. With a :class:`FileWindow` store all of this is shared between processes.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Clock | None = None,
        margin: float = 0.02,
        store: WindowStore | None = None,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.margin = margin
        self.clock: Clock = clock or SystemClock()
        self.store: WindowStore = store or MemoryWindow()
        self._stats = threading.Lock()
        self.waited = 0.0  # total seconds callers spent waiting (for reports and tests)
        self.acquired = 0

    @property
    def span(self) -> float:
        return self.window * (1.0 + self.margin)

    def _expire(self, w: Window, now: float) -> None:
        horizon = now - self.span
        if w.stamps and w.stamps[0] <= horizon:
            w.stamps[:] = [s for s in w.stamps if s > horizon]

    def _delay(self, w: Window, now: float) -> float:
        self._expire(w, now)
        if w.blocked_until > now:
            return w.blocked_until - now
        if len(w.stamps) < self.limit:
            return 0.0
        return w.stamps[len(w.stamps) - self.limit] + self.span - now

    def in_window(self) -> int:
        with self.store.locked() as w:
            self._expire(w, self.clock.monotonic())
            return len(w.stamps)

    def delay(self) -> float:
        """Seconds the next :meth:`acquire` would wait now (0 if a slot is free)."""
        with self.store.locked() as w:
            return self._delay(w, self.clock.monotonic())

    def try_acquire(self) -> tuple[float, float]:
        """``(0, stamp)`` after taking a slot, or ``(seconds to wait, 0)`` without taking one."""
        with self.store.locked() as w:
            now = self.clock.monotonic()
            wait = self._delay(w, now)
            if wait > 0:
                return wait, 0.0
            w.stamps.append(now)
        with self._stats:
            self.acquired += 1
        return 0.0, now

    def acquire(self) -> float:
        """Block until a slot is free and take it; returns the slot's stamp for :meth:`settle`."""
        while True:
            wait, stamp = self.try_acquire()
            if wait <= 0:
                return stamp
            # Small steps keep waiting callers responsive to ``observe``/``block_for``.
            step = min(wait, self.window / 20)
            self.clock.sleep(step)
            with self._stats:
                self.waited += step

    def settle(self, stamp: float) -> None:
        """Move a slot's stamp to now, when its request has been answered (or has failed).

        The server counted the request at some moment between sending and answering; stamping it
        at the answer keeps the local window at least as long as the server's whatever the
        latency or scheduling delays, so those cannot cause a 429.
        """
        with self.store.locked() as w:
            try:
                w.stamps.remove(stamp)
            except ValueError:  # already expired
                return
            w.stamps.append(self.clock.monotonic())

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Take a slot for one request and stamp it when the block ends (see :meth:`settle`)."""
        stamp = self.acquire()
        try:
            yield stamp
        finally:
            self.settle(stamp)

    def block_for(self, seconds: float) -> None:
        """Refuse every acquisition for ``seconds`` from now (after the server said 429)."""
        with self.store.locked() as w:
            w.blocked_until = max(w.blocked_until, self.clock.monotonic() + seconds)

    def observe(self, remaining: int, maximum: int | None = None) -> None:
        """Align with the server's count: ``remaining`` requests left in its current window.

        If the server saw more requests than we counted (a process that shares no record with
        us spends the same budget), phantom stamps take the difference so that we slow down.
        """
        if maximum is not None and maximum > 0:
            self.limit = maximum
        with self.store.locked() as w:
            now = self.clock.monotonic()
            self._expire(w, now)
            used = self.limit - max(remaining, 0)
            w.stamps.extend(now for _ in range(used - len(w.stamps)))


class LimiterRegistry:
    """Limiters shared process-wide, one per (scope, secret) pair; secrets are kept hashed.

    With ``shared_dir`` given to :meth:`get`, the limiter's record is a file in that folder
    (``limits-<scope>-<hash>.json``), shared by every process that uses the same folder and
    token; only a registry on the system clock shares records (a scaled clock is per process).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._limiters: dict[tuple[str, str, str], SlidingWindowLimiter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(secret: str) -> str:
        return secret_fingerprint(secret)

    def get(
        self, scope: str, secret: str, limit: int, window: float, *, shared_dir: Path | None = None
    ) -> SlidingWindowLimiter:
        folder = shared_dir if shared_dir is not None and isinstance(self.clock, SystemClock) else None
        ident = (scope, self.fingerprint(secret), str(folder or ""))
        with self._lock:
            lim = self._limiters.get(ident)
            if lim is None or lim.window != window:
                store = _file_store(folder, f"limits-{scope}-{ident[1]}.json", window) if folder else None
                lim = SlidingWindowLimiter(limit, window, clock=self.clock, store=store)
                self._limiters[ident] = lim
            return lim

    def clear(self) -> None:
        with self._lock:
            self._limiters.clear()


def _file_store(folder: Path, name: str, window: float) -> WindowStore | None:
    """A :class:`FileWindow` in ``folder`` (created 0700), or None where files cannot be shared."""
    try:
        import fcntl  # noqa: F401  (POSIX only)

        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = FileWindow(folder / name, horizon=window * 2 + 3600.0)
        with store.locked():
            pass
        return store
    except (ImportError, OSError):
        return None  # a read-only or missing state folder: this process keeps its own record
