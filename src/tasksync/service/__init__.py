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

if TYPE_CHECKING:
    from tasksync.service.health import read_status
    from tasksync.service.lock import AlreadyRunning, ServiceLock
    from tasksync.service.loop import IterationResult, SyncService, scheduled_filter

__all__ = ["AlreadyRunning", "IterationResult", "ServiceLock", "SyncService", "read_status", "scheduled_filter"]


def __getattr__(name: str) -> Any:
    """Each part is imported on first use: `tasksync --help` imports none, `status` only the
    health module."""
    import importlib

    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"tasksync.service.{module}"), name)


_WHERE = {
    "read_status": "health",
    "AlreadyRunning": "lock",
    "ServiceLock": "lock",
    "IterationResult": "loop",
    "SyncService": "loop",
    "scheduled_filter": "loop",
}
