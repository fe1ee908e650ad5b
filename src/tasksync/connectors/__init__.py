"""Connectors: one module per service, all mapping to the neutral model."""

from __future__ import annotations

from tasksync.connectors.base import Connector, marker_for, parse_marker
from tasksync.settings import Settings

__all__ = ["Connector", "marker_for", "open_connector", "parse_marker"]


def open_connector(settings: Settings) -> Connector:
    """The connector the settings name, ready to read and write."""
    if settings.connector == "trello":
        from tasksync.connectors.trello import TrelloConnector

        return TrelloConnector(settings)
    if settings.connector == "asana":
        from tasksync.connectors.asana import AsanaConnector

        return AsanaConnector(settings)
    from tasksync.connectors.local import LocalConnector

    return LocalConnector(settings)
