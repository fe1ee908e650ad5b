"""Connectors: one module per service, all mapping to the neutral model."""

from __future__ import annotations

from tasksync.connectors.base import Connector, marker_for, parse_marker
from tasksync.settings import Settings

__all__ = ["Connector", "marker_for", "open_connector", "parse_marker"]


def open_connector(settings: Settings) -> Connector:
    """The connector the settings name, ready to read and write."""
    if settings.connector == "trello":
        from tasksync.connectors.trello import TrelloConnector  # type: ignore[import-not-found,unused-ignore]

        connector: Connector = TrelloConnector(settings)
        return connector
    if settings.connector == "asana":
        from tasksync.connectors.asana import AsanaConnector  # type: ignore[import-not-found,unused-ignore]

        asana: Connector = AsanaConnector(settings)
        return asana
    from tasksync.connectors.local import LocalConnector

    return LocalConnector(settings)
