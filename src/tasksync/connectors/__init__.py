"""Connectors: one module per service, all mapping to the neutral model.

A connector plugs in through the ``tasksync.connectors`` entry-point group: the entry point
names a :class:`~tasksync.connectors.base.ConnectorFactory`, a callable ``(settings, board)``
returning a :class:`~tasksync.connectors.base.Connector`. ``connector = "<name>"`` in the
configuration picks it; a third-party connector reads its own table ``[connectors.<name>]``
through :func:`connector_settings` and its own pydantic model. Optional capabilities
(:class:`~tasksync.connectors.base.ChangeFeed`, :class:`~tasksync.connectors.base.Commenter`,
:class:`~tasksync.connectors.base.BatchReader`,
:class:`~tasksync.connectors.base.BoardFile`) are typed protocols the callers check with
``isinstance``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from tasksync.connectors.base import Connector, ConnectorFactory, marker_for, parse_marker
from tasksync.errors import ConfigError

if TYPE_CHECKING:  # kept out of the import: `tasksync.connectors.transport` must stay light
    from pydantic import BaseModel

    from tasksync.settings import Settings

__all__ = [
    "GROUP",
    "Connector",
    "available_connectors",
    "connector_settings",
    "marker_for",
    "open_connector",
    "open_local",
    "parse_marker",
]

GROUP = "tasksync.connectors"
M = TypeVar("M", bound="BaseModel")


def open_local(settings: Settings, board: str | None = None) -> Connector:
    """The local connector (a board kept as a Trello export file)."""
    if board is not None:
        raise ConfigError(f"--board applies to Trello boards; this config's connector is {settings.connector!r}")
    from tasksync.connectors.local import LocalConnector

    return LocalConnector(settings)


def _builtin(name: str) -> ConnectorFactory | None:
    """The built-in connectors, found even where the package metadata is not installed."""
    if name == "local":
        return open_local
    if name == "trello":
        from tasksync.connectors.trello import open_board

        return open_board
    if name == "asana":
        from tasksync.connectors.asana import open_project

        return open_project
    return None


def available_connectors() -> dict[str, str]:
    """Connector names and the factory each entry point names."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    for name in ("local", "trello", "asana"):
        found.setdefault(name, f"(built in) {name}")
    return found


def open_connector(settings: Settings, board: str | None = None) -> Connector:
    """The connector the settings name, ready to read and write.

    ``board`` picks one of several configured boards where the connector has several (Trello);
    the others refuse it.
    """
    from importlib.metadata import entry_points

    name = settings.connector
    factory: ConnectorFactory | None = None
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            try:
                factory = ep.load()
            except Exception as e:  # a third-party plugin that fails to import
                raise ConfigError(f"connector {name!r} ({ep.value}) cannot be loaded: {e}") from None
            break
    factory = factory or _builtin(name)
    if factory is None:
        known = ", ".join(sorted(available_connectors()))
        raise ConfigError(f"unknown connector {name!r} (connector); known: {known}")
    connector = factory(settings, board)
    if not isinstance(connector, Connector):
        raise ConfigError(f"connector {name!r} does not offer read, write, create and find_created")
    return connector


def connector_settings(settings: Settings, model: type[M]) -> M:
    """A plugged-in connector's own settings: the ``[connectors.<name>]`` table, validated by
    ``model``. Errors name the table and the key."""
    from pydantic import ValidationError

    raw = settings.connectors.get(settings.connector, {})
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"connectors.{settings.connector}.{where}: {first['msg']}") from None
