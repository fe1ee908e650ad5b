"""Defaults that light code paths need without importing the validated settings (pydantic):
``tasksync status`` reads only these keys (see :func:`tasksync.service.health.status_config`)."""

from __future__ import annotations

__all__ = ["SERVICE_INTERVAL", "STATE_PATH"]

STATE_PATH = ".tasksync/state.sqlite3"  # the state store, relative to the config file's folder
SERVICE_INTERVAL = 60.0  # seconds between the service's change checks
