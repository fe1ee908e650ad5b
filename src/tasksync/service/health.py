"""The service's recorded status, read by ``tasksync status`` and the health endpoint.

Kept apart from the service loop so that a health check run every minute imports only this
module and the state store, not the connectors, the CRM readers or the policies.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tasksync.defaults import SERVICE_INTERVAL, STATE_PATH
from tasksync.errors import ConfigError

if TYPE_CHECKING:
    from tasksync.sync.state import StateStore

__all__ = [
    "FAILING",
    "HEALTHY",
    "PAUSED",
    "STALE",
    "K",
    "StatusConfig",
    "forget_status",
    "health_of",
    "read_status",
    "read_status_at",
    "status_config",
]

K = "service."  # prefix of the service's keys in the store's per-board kv table
_INTERNAL = ("secret", "_sig", "bookmark", "trello_since", "asana_sync", "last_full")


#: Seconds ``tasksync status`` waits for a store another process holds locked before it reports so.
STATUS_WAIT = 2.0


def read_status(store: StateStore) -> dict[str, dict[str, str]]:
    """board -> the service's recorded values (``last_run``, ``paused``, ``errors``...), without
    its bookkeeping (change-detection bookmarks, file signatures, the webhook secret)."""
    return _status_rows(store.db)


def read_status_at(path: Path, wait: float = STATUS_WAIT) -> dict[str, dict[str, str]]:
    """:func:`read_status` of the store at ``path`` (which exists), for ``tasksync status``: one
    query on a plain SQLite connection, without the state store's module (no schema check, no
    migration, nothing written) so that a health check run every minute starts fast. A store
    without the service's table has no status; a locked or damaged one raises ``sqlite3.Error``."""
    import sqlite3

    db = sqlite3.connect(path, timeout=wait)
    try:
        return _status_rows(db)
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return {}
        raise
    finally:
        db.close()


def _status_rows(db: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for board, key, value in db.execute("SELECT board, key, value FROM kv WHERE key LIKE 'service.%'"):
        if not any(word in key for word in _INTERNAL):
            out.setdefault(board, {})[key[len(K) :]] = value
    return out


def forget_status(store: StateStore, board: str) -> None:
    """Drop the service's values recorded under ``board``: the name a board that could not be
    opened was recorded under (see :class:`tasksync.service.multi.WaitingBoard`), once it opens
    and records under its key."""
    with store.transaction():
        store.db.execute("DELETE FROM kv WHERE board = ? AND key LIKE 'service.%'", (board,))


HEALTHY, FAILING, STALE, PAUSED = 0, 1, 3, 4


def health_of(values: dict[str, str], now: float, stale_after: float) -> tuple[int, str]:
    """(exit code, one-line verdict) for one board's recorded service values.

    0 healthy; 1 failing (three or more failed iterations in a row, or at once when the
    service's token or key was refused: a wrong token never heals); 3 stale (never ran, stopped,
    or no run for ``stale_after`` seconds); 4 paused by a guard.
    """
    last = values.get("last_run")
    if not last:
        return STALE, "never ran"
    age = now - datetime.fromisoformat(last).timestamp()
    if values.get("paused"):
        return PAUSED, f"paused: {values['paused']}"
    if values.get("open_failed"):
        return FAILING, f"failing (the board cannot be opened; retrying on its back-off): {values.get('last_error')}"
    if values.get("auth_failed"):
        return FAILING, f"failing (the token or key was refused; fix it and restart): {values.get('last_error')}"
    if int(values.get("errors") or 0) >= 3:
        return FAILING, f"failing ({values.get('errors')} errors in a row): {values.get('last_error')}"
    if age > stale_after:
        return STALE, f"stale: last run {age:,.0f} s ago (limit {stale_after:,.0f} s)"
    if int(values.get("errors") or 0):
        return HEALTHY, f"healthy, retrying after: {values.get('last_error')}"
    return HEALTHY, "healthy"


def _seconds(service: dict[str, Any], key: str, default: float, source: Path) -> float:
    value = service.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{source}: service.{key} = {value!r}: expected a number of seconds")
    return float(value)


class StatusConfig(NamedTuple):
    state: Path  # the state store
    stale_after: float  # seconds without a run before a board counts as stale
    boards: tuple[str, ...]  # the names of the config's [[boards]] entries (none for a single-board config)


def status_config(config: Path, state: str | None = None) -> StatusConfig:
    """The state store's path, the staleness limit (``stale_after``, else three intervals) and
    the names of the ``[[boards]]``, read from the config's TOML without validating the rest
    (``serve`` does that): a health check run every minute starts in a few tens of
    milliseconds. ``state`` is ``--state``."""
    import tomllib

    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config}: config file not found") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{config}: not a valid TOML file: {e}") from None
    except OSError as e:
        raise ConfigError(f"{config}: cannot read: {e.strerror}") from None
    path = Path(state) if state else Path(str(raw.get("state_path", STATE_PATH)))
    if not path.is_absolute():
        path = (Path.cwd() if state else config.resolve().parent) / path
    service = raw.get("service", {})
    if not isinstance(service, dict):
        raise ConfigError(f"{config}: service: expected a table")
    interval = _seconds(service, "interval", SERVICE_INTERVAL, config) or SERVICE_INTERVAL
    stale_after = _seconds(service, "stale_after", 0.0, config) or 3 * interval
    entries = raw.get("boards", [])
    names = [_entry_name(e) for e in entries] if isinstance(entries, list) else []
    return StatusConfig(path, stale_after, tuple(n for n in names if n))


def _entry_name(entry: Any) -> str:
    """A ``[[boards]]`` entry's name as ``serve`` records it (its name, else its board)."""
    if not isinstance(entry, dict):
        return ""
    for key in ("name", "trello", "asana_project", "local"):
        if isinstance(entry.get(key), str) and entry[key].strip():
            return str(entry[key])
    return ""
