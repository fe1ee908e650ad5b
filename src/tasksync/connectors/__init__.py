"""Connectors: one module per service, all mapping to the neutral model."""

from __future__ import annotations

from tasksync.connectors.base import Connector, marker_for, parse_marker
from tasksync.errors import ConfigError
from tasksync.settings import Settings

__all__ = ["Connector", "marker_for", "open_connector", "parse_marker"]


def open_connector(settings: Settings, board: str | None = None) -> Connector:
    """The connector the settings name, ready to read and write.

    ``board`` picks one of several configured Trello boards (id, short link or URL); with more
    than one configured it is required, so a run never lands on a board by accident.
    """
    if settings.connector == "trello":
        from tasksync.connectors.trello import TrelloConnector

        boards = settings.trello.boards
        if board is None and len(boards) > 1:
            raise ConfigError(
                f"trello.boards names {len(boards)} boards; choose one with --board "
                f"({', '.join(boards)}), or keep one config (and state store) per board"
            )
        return TrelloConnector(settings, board=board)
    if board is not None:
        raise ConfigError(f"--board applies to Trello boards; this config's connector is {settings.connector!r}")
    if settings.connector == "asana":
        from tasksync.connectors.asana import AsanaConnector

        return AsanaConnector(settings)
    from tasksync.connectors.local import LocalConnector

    return LocalConnector(settings)
