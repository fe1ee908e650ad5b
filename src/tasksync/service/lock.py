"""One service per state store: an exclusive ``flock`` on a file next to the store.

The kernel drops the lock when the process dies (even by ``kill -9``), so a stale lock file
never blocks a restart; the file itself is left in place and only records the holder's pid.
The flock itself is :class:`tasksync.sync.lock.FileLock`, shared with the writer lock that every
writing command takes.
"""

from __future__ import annotations

from pathlib import Path

from tasksync.errors import TasksyncError
from tasksync.sync.lock import FileLock

__all__ = ["AlreadyRunning", "ServiceLock", "lock_path_for"]


class AlreadyRunning(TasksyncError):
    """Another service holds the lock on this state store."""

    exit_code = 7


def lock_path_for(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".service.lock")


class ServiceLock(FileLock):
    """``with ServiceLock(path):`` holds the lock or raises :class:`AlreadyRunning` at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, wait=0.0, reentrant=False)

    def busy(self, holder: str) -> TasksyncError:
        return AlreadyRunning(
            f"another tasksync service ({holder}) already runs on this state store "
            f"(lock {self.path}); stop it first or give this board its own state_path"
        )
