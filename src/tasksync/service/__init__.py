"""The scheduled sync service: ``tasksync serve`` and ``tasksync status``.

One service runs per state store (a lock file beside it), for every board the config names
(:mod:`tasksync.service.multi` schedules them). Each iteration checks cheaply whether
the board or the CRM exports changed, reads and plans only when something did (or a periodic
full read is due), and applies plans in *scheduled mode*: new or unowned tasks get an owner,
owners who are away hand their tasks on, new CRM leads get cards and priorities are refreshed;
nobody else's work moves except on the rebalance schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasksync.service.health import read_status
from tasksync.service.lock import AlreadyRunning, ServiceLock

if TYPE_CHECKING:
    from tasksync.service.loop import IterationResult, SyncService, scheduled_filter

__all__ = ["AlreadyRunning", "IterationResult", "ServiceLock", "SyncService", "read_status", "scheduled_filter"]


def __getattr__(name: str) -> Any:
    """The service loop is imported on first use: `tasksync status` needs only the health module."""
    if name in ("IterationResult", "SyncService", "scheduled_filter"):
        from tasksync.service import loop

        return getattr(loop, name)
    raise AttributeError(name)
