"""One service per state store: an exclusive ``flock`` on a file next to the store.

The kernel drops the lock when the process dies (even by ``kill -9``), so a stale lock file
never blocks a restart; the file itself is left in place and only records the holder's pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from tasksync.errors import TasksyncError
from tasksync.files import open_private

__all__ = ["AlreadyRunning", "ServiceLock", "lock_path_for"]


class AlreadyRunning(TasksyncError):
    """Another service holds the lock on this state store."""

    exit_code = 7


def lock_path_for(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".service.lock")


class ServiceLock:
    """``with ServiceLock(path):`` holds the lock or raises :class:`AlreadyRunning`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open_private(self.path)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise AlreadyRunning(
                f"another tasksync service (pid {holder}) already runs on this state store "
                f"(lock {self.path}); stop it first or give this board its own state_path"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def __enter__(self) -> ServiceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
