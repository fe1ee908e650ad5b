"""The service's recorded status, read by ``tasksync status`` and the health endpoint.

Kept apart from the service loop so that a health check run every minute imports only this
module and the state store, not the connectors, the CRM readers or the policies.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasksync.sync.state import StateStore

__all__ = ["FAILING", "HEALTHY", "PAUSED", "STALE", "K", "health_of", "read_status"]

K = "service."  # prefix of the service's keys in the store's per-board kv table
_INTERNAL = ("secret", "_sig", "trello_since", "asana_sync", "last_full")


def read_status(store: StateStore) -> dict[str, dict[str, str]]:
    """board -> the service's recorded values (``last_run``, ``paused``, ``errors``...), without
    its bookkeeping (change-detection bookmarks, file signatures, the webhook secret)."""
    out: dict[str, dict[str, str]] = {}
    for board, key, value in store.db.execute("SELECT board, key, value FROM kv WHERE key LIKE 'service.%'"):
        if not any(word in key for word in _INTERNAL):
            out.setdefault(board, {})[key[len(K) :]] = value
    return out


HEALTHY, FAILING, STALE, PAUSED = 0, 1, 3, 4


def health_of(values: dict[str, str], now: float, stale_after: float) -> tuple[int, str]:
    """(exit code, one-line verdict) for one board's recorded service values.

    0 healthy; 1 failing (three or more failed iterations in a row); 3 stale (never ran, stopped,
    or no run for ``stale_after`` seconds); 4 paused by a guard.
    """
    last = values.get("last_run")
    if not last:
        return STALE, "never ran"
    age = now - datetime.fromisoformat(last).timestamp()
    if values.get("paused"):
        return PAUSED, f"paused: {values['paused']}"
    if int(values.get("errors") or 0) >= 3:
        return FAILING, f"failing ({values.get('errors')} errors in a row): {values.get('last_error')}"
    if age > stale_after:
        return STALE, f"stale: last run {age:,.0f} s ago (limit {stale_after:,.0f} s)"
    if int(values.get("errors") or 0):
        return HEALTHY, f"healthy, retrying after: {values.get('last_error')}"
    return HEALTHY, "healthy"
