"""The cluster's own configuration: which boards it syncs and where Redis and PostgreSQL are.

A small TOML file (``cluster.toml``) lists the existing per-board config files, so nothing about
a board changes when it moves from ``tasksync serve`` to the cluster::

    interval = 60                        # seconds between periodic syncs of each board
    boards = ["east/tasksync.toml", "west/tasksync.toml"]

    [[board]]                            # or one table per board, for per-board secrets
    config = "emea/tasksync.toml"
    secrets_prefix = "TASKSYNC_EMEA_"    # TASKSYNC_EMEA_TRELLO_TOKEN, ... instead of TASKSYNC_TRELLO_TOKEN

Server URLs carry passwords, so they come from the environment: ``TASKSYNC_REDIS_URL`` and
``TASKSYNC_DATABASE_URL`` (the file's ``redis_url``/``database_url`` are used when those are unset).
A board is named in jobs, leases and logs by its config path as written in the file (its *key*),
so every machine must see the same tree of config files (shared volume or the same deploy).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasksync.errors import ConfigError
from tasksync.settings import ENV_PREFIX, Settings, load_settings, secrets_by_prefix

__all__ = ["BoardEntry", "ClusterConfig", "load_cluster"]


@dataclass(frozen=True)
class BoardEntry:
    key: str  # the config path as written in cluster.toml
    config: Path  # resolved against cluster.toml's folder
    secrets_prefix: str = ENV_PREFIX

    def settings(self) -> Settings:
        """The board's settings; with its own ``secrets_prefix``, its secrets are the environment's
        ``<prefix>TRELLO_TOKEN``, ... instead of ``TASKSYNC_*`` (and its folder's ``.env``), with
        no fallback to those (as a ``[[boards]]`` entry's ``secrets_prefix``)."""
        settings = load_settings(self.config)
        if self.secrets_prefix != ENV_PREFIX:
            settings.secrets = secrets_by_prefix(self.secrets_prefix)
        return settings


@dataclass(frozen=True)
class ClusterConfig:
    path: Path
    boards: tuple[BoardEntry, ...]
    redis_url: str
    database_url: str
    interval: float = 60.0
    queue: str = "tasksync"
    lease_retry: float = 5.0  # seconds before a job finding its board busy runs again

    def board(self, key: str) -> BoardEntry:
        for b in self.boards:
            if b.key == key:
                return b
        raise ConfigError(f"{self.path}: no board {key!r} in the cluster")


def _str(raw: dict[str, Any], name: str, source: str, default: str = "") -> str:
    value = raw.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {name}: expected a string, found {value!r}")
    return value


def load_cluster(path: Path | str) -> ClusterConfig:
    """Read ``cluster.toml``; errors name the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: cluster file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    base = path.resolve().parent
    known = {"interval", "boards", "board", "redis_url", "database_url", "queue", "lease_retry"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (expected one of {', '.join(sorted(known))})")
    entries: list[BoardEntry] = []
    simple = raw.get("boards", [])
    if not isinstance(simple, list) or not all(isinstance(b, str) for b in simple):
        raise ConfigError(f"{path}: boards: expected a list of config file paths")
    for key in simple:
        entries.append(BoardEntry(key, base / key))
    tables = raw.get("board", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: board: expected [[board]] tables")
    for i, t in enumerate(tables):
        where = f"{path}: board[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("config"), str):
            raise ConfigError(f"{where}: config: expected a config file path")
        extra = sorted(set(t) - {"config", "secrets_prefix"})
        if extra:
            raise ConfigError(f"{where}: {extra[0]}: unknown key")
        entries.append(BoardEntry(t["config"], base / t["config"], _str(t, "secrets_prefix", where, "TASKSYNC_")))
    seen: set[str] = set()
    for entry in entries:
        if entry.key in seen:
            raise ConfigError(f"{path}: board {entry.key!r} is listed twice")
        seen.add(entry.key)
        if not entry.config.is_file():
            raise ConfigError(f"{path}: board {entry.key!r}: {entry.config} not found")
    interval = raw.get("interval", 60.0)
    if not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"{path}: interval: expected a positive number of seconds, found {interval!r}")
    lease_retry = raw.get("lease_retry", 5.0)
    if not isinstance(lease_retry, int | float) or lease_retry <= 0:
        raise ConfigError(f"{path}: lease_retry: expected a positive number of seconds, found {lease_retry!r}")
    redis_url = os.environ.get("TASKSYNC_REDIS_URL") or _str(raw, "redis_url", str(path))
    database_url = os.environ.get("TASKSYNC_DATABASE_URL") or _str(raw, "database_url", str(path))
    if not redis_url:
        raise ConfigError(f"{path}: no Redis: set TASKSYNC_REDIS_URL (or redis_url)")
    if not database_url:
        raise ConfigError(f"{path}: no PostgreSQL: set TASKSYNC_DATABASE_URL (or database_url)")
    return ClusterConfig(
        path=path,
        boards=tuple(entries),
        redis_url=redis_url,
        database_url=database_url,
        interval=float(interval),
        queue=_str(raw, "queue", str(path), "tasksync"),
        lease_retry=float(lease_retry),
    )
