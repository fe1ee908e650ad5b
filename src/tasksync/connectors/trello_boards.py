"""Several Trello boards at once: one client (one connection pool), ``GET /batch`` reads.

Nothing in tasksync's commands or service reads several boards yet (each runs on one board);
this is the library function for a caller that does, e.g. a report over every board of a team.
"""

from __future__ import annotations

from collections.abc import Sequence

import requests

from tasksync.connectors.http import error_for_status
from tasksync.connectors.trello import TrelloConnector
from tasksync.connectors.trello_api import BATCH_SIZE, make_client, too_big
from tasksync.errors import ApiError, AuthError, ConfigError, NotFoundError
from tasksync.model import Snapshot
from tasksync.settings import Settings

__all__ = ["connectors_for", "read_boards"]


def connectors_for(
    settings: Settings, *, session: requests.Session | None = None, max_workers: int = 4
) -> list[TrelloConnector]:
    """One connector per configured board, all on one client (one connection pool)."""
    if not settings.trello.boards:
        raise ConfigError("trello.boards is empty: give a board id or https://trello.com/b/ URL")
    client = make_client(settings, session)
    return [TrelloConnector(settings, board=b, client=client, max_workers=max_workers) for b in settings.trello.boards]


def read_boards(connectors: Sequence[TrelloConnector]) -> list[Snapshot | ApiError]:
    """Read several boards with ``GET /batch`` (10 boards per request), in the given order.

    A board that failed is an :class:`ApiError` in its place (one failed route does not fail
    the others); a board too large for the nested read is read again with paging. A refused
    token raises :class:`AuthError`.
    """
    out: list[Snapshot | ApiError] = []
    for start in range(0, len(connectors), BATCH_SIZE):
        chunk = connectors[start : start + BATCH_SIZE]
        lead = chunk[0]
        urls = ",".join(c._board_route() for c in chunk)
        boards = ", ".join(c.board_id for c in chunk)
        try:
            items = lead._call("/batch", f"Trello boards {boards}", query={"urls": urls})
        except (AuthError, NotFoundError):
            raise
        except ApiError as e:
            out.extend(e for _ in chunk)
            continue
        if not isinstance(items, list) or len(items) != len(chunk):
            raise ApiError(f"Trello boards {boards}: /batch answered {len(items)} results")
        for conn, item in zip(chunk, items, strict=True):
            status_text, body = next(iter(item.items())) if item else ("0", None)
            status = int(status_text) if str(status_text).isdigit() else 0
            try:
                if status == 200:
                    out.append(conn.accept(body))
                    continue
                text = body if isinstance(body, str) else str(body)
                err = error_for_status(status, text, conn._label)
                out.append(conn.accept(conn._read_paged()) if too_big(err) else err)
            except ApiError as e:
                out.append(e)
    return out
