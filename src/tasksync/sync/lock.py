"""One writer per state store: an exclusive ``flock`` on a file beside the store.

Every command that writes a board (``apply``, ``undo``, ``serve``'s apply path, the review
page) holds the *writer lock* while it resumes, plans and writes, so two processes never run the
same plan at once and an in-flight plan of a live writer is never taken for an interrupted one.
The kernel drops the lock when the process dies (even by ``kill -9``), so a stale lock file never
blocks the next writer; the file only records the holder's pid and command.

The lock is re-entrant within one thread (a service iteration that resumes and then applies takes
it twice) and exclusive between threads and processes. A second writer waits up to ``wait``
seconds, then refuses with :class:`BoardBusy` (exit code 7).
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from tasksync.errors import ConfigError, TasksyncError
from tasksync.files import open_private

__all__ = ["BoardBusy", "FileLock", "WriterLock", "lock_wait_default", "writer_lock_path"]

#: Seconds a second writer waits for the lock before refusing (``TASKSYNC_LOCK_WAIT``).
DEFAULT_WAIT = 10.0


class BoardBusy(TasksyncError):
    """Another tasksync process holds the lock of this state store."""

    exit_code = 7


def lock_wait_default() -> float:
    """``TASKSYNC_LOCK_WAIT`` seconds, or :data:`DEFAULT_WAIT` when unset or not a number."""
    raw = os.environ.get("TASKSYNC_LOCK_WAIT", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT


def writer_lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


@dataclass
class _Held:
    fh: IO[str]
    owner: int  # thread ident
    count: int


class FileLock:
    """An exclusive ``flock`` on ``path``, re-entrant in the thread that holds it.

    ``with FileLock(path, wait=5):`` holds it, or raises what :meth:`busy` returns after waiting
    ``wait`` seconds (0: refuse at once). With ``reentrant=False`` a second acquire from the
    holding thread is refused too.
    """

    _held: ClassVar[dict[str, _Held]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()
    _thread_locks: ClassVar[dict[str, threading.Lock]] = {}
    poll = 0.05

    def __init__(self, path: Path, wait: float = 0.0, *, reentrant: bool = True) -> None:
        self.path = path
        self.wait = wait
        self.reentrant = reentrant
        self._key = str(path.absolute())

    def busy(self, holder: str) -> TasksyncError:
        return BoardBusy(f"{self.path}: locked by {holder}")

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._guard:
            held = self._held.get(self._key)
            if held is not None and held.owner == me:
                if not self.reentrant:
                    raise self.busy(f"pid {os.getpid()}")
                held.count += 1
                return
            tlock = self._thread_locks.setdefault(self._key, threading.Lock())
        deadline = time.monotonic() + self.wait
        got = tlock.acquire(timeout=self.wait) if self.wait > 0 else tlock.acquire(blocking=False)
        if not got:
            raise self.busy(f"another thread of this process (pid {os.getpid()})")
        try:
            fh = self._lock_file(deadline)
        except BaseException:
            tlock.release()
            raise
        with self._guard:
            self._held[self._key] = _Held(fh, me, 1)

    def _lock_file(self, deadline: float) -> IO[str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open_private(self.path)  # 0600, like the store it guards
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot create the lock file: {e.strerror or e}") from None
        try:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        fh.seek(0)
                        holder = fh.read().strip() or "another process"
                        raise self.busy(holder) from None
                    time.sleep(self.poll)
            fh.seek(0)
            fh.truncate()
            command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:100] if sys.argv else "python"
            fh.write(f"pid {os.getpid()} ({command})\n")
            fh.flush()
        except BaseException:
            fh.close()
            raise
        return fh

    def release(self) -> None:
        with self._guard:
            held = self._held.get(self._key)
            if held is None or held.owner != threading.get_ident():
                return
            held.count -= 1
            if held.count > 0:
                return
            del self._held[self._key]
            tlock = self._thread_locks[self._key]
        fcntl.flock(held.fh.fileno(), fcntl.LOCK_UN)
        held.fh.close()
        tlock.release()

    @property
    def held(self) -> bool:
        with self._guard:
            held = self._held.get(self._key)
            return held is not None and held.owner == threading.get_ident()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class WriterLock(FileLock):
    """The writer lock of the state store at ``state_path`` (``<state>.lock``)."""

    def __init__(self, state_path: Path, wait: float | None = None) -> None:
        super().__init__(writer_lock_path(state_path), lock_wait_default() if wait is None else wait)

    def busy(self, holder: str) -> TasksyncError:
        return BoardBusy(
            f"another tasksync process is writing with this state store ({holder}; lock {self.path}); "
            f"waited {self.wait:g} s: try again when it has finished (TASKSYNC_LOCK_WAIT sets the wait)"
        )
