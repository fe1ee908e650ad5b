"""Trello's routes and answers as the connector uses them: queries, ids, error context.

Kept apart from :mod:`tasksync.connectors.trello` so that the connector reads as what it does
with a board; nothing here sends a request except through the client it is given.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import requests
from trello import TrelloClient

from tasksync.connectors.base import shared_dir_for
from tasksync.connectors.http import trello_session
from tasksync.errors import ApiError, ConfigError, TransientError
from tasksync.model import WriteResult, WriteStatus
from tasksync.settings import Settings

__all__ = [
    "ACTION_FILTER",
    "ARCHIVED_CARD_FIELDS",
    "BATCH_SIZE",
    "BOARD_META_QUERY",
    "BOARD_QUERY",
    "CARD_FIELDS",
    "CARD_READ",
    "PAGE_SIZE",
    "failed",
    "make_client",
    "object_id_at",
    "parse_board_id",
    "too_big",
    "with_context",
]

Json = dict[str, Any]

CARD_FIELDS = "name,desc,idList,idMembers,idLabels,due,dateLastActivity,pos,closed"
#: What an archived card is read for: its CRM link (by marker, custom field or title).
ARCHIVED_CARD_FIELDS = "name,desc,idList,closed"

#: The nested read of one board (API-NOTES: one request per board).
BOARD_QUERY: Mapping[str, str] = {
    "fields": "name,dateLastActivity",
    "lists": "open",
    "cards": "open",
    "card_fields": CARD_FIELDS,
    "card_customFieldItems": "true",
    "customFields": "true",
    "members": "all",
    "labels": "all",
}
#: One card read again before a conditional write.
CARD_READ: Mapping[str, str] = {"fields": CARD_FIELDS, "customFieldItems": "true"}
#: The same without cards, for the paged fallback on large boards.
BOARD_META_QUERY: Mapping[str, str] = {k: v for k, v in BOARD_QUERY.items() if not k.startswith("card")}

#: Card-changing action types the scheduled service watches.
ACTION_FILTER = ",".join(
    (
        "createCard",
        "updateCard",
        "deleteCard",
        "copyCard",
        "moveCardToBoard",
        "moveCardFromBoard",
        "addMemberToCard",
        "removeMemberFromCard",
        "addLabelToCard",
        "removeLabelFromCard",
        "updateCustomFieldItem",
        "convertToCardFromCheckItem",
    )
)

PAGE_SIZE = 1000  # the API's maximum for card pages and actions
BATCH_SIZE = 10  # routes per GET /batch
_TOO_BIG_STATUSES = (413, 449)

_BOARD_URL = re.compile(r"trello\.com/b/([A-Za-z0-9]+)")
_BOARD_ID = re.compile(r"[0-9a-fA-F]{24}|[A-Za-z0-9]{8}")


def parse_board_id(text: str) -> str:
    """A board id or shortLink from an id, a shortLink or a ``https://trello.com/b/...`` URL."""
    text = text.strip()
    m = _BOARD_URL.search(text)
    if m:
        return m.group(1)
    if _BOARD_ID.fullmatch(text):
        return text
    raise ConfigError(f"trello.boards: {text!r} is not a board id, shortLink or https://trello.com/b/... URL")


def make_client(settings: Settings, session: requests.Session | None = None) -> TrelloClient:
    """A py-trello client with plain key+token auth on the shared HTTP layer."""
    key = settings.secrets.trello_key
    token = settings.secrets.trello_token
    if key is None or token is None:
        raise ConfigError("Trello needs TASKSYNC_TRELLO_KEY and TASKSYNC_TRELLO_TOKEN in the environment")
    base_url = settings.trello.api_url or settings.secrets.trello_api_url
    http = session if session is not None else trello_session(base_url, shared_dir=shared_dir_for(settings))
    return TrelloClient(key.get_secret_value(), api_secret=token.get_secret_value(), http_service=http)


def with_context(error: ApiError, context: str) -> ApiError:
    """The same error (class, status, retry_after) with ``context`` in front of its message."""
    new = copy.copy(error)
    new.args = (f"{context}: {error.args[0] if error.args else error}",)
    return new


def too_big(error: ApiError) -> bool:
    """The board answer was refused for its size, or the gateway timed out building it (504).

    A failure without a status (refused, dropped or timed-out connection) says nothing about
    the board: it is not taken for "too big", so a dead host is not asked twice as often.
    """
    if error.status in _TOO_BIG_STATUSES or "TOO_MANY" in str(error):
        return True
    return isinstance(error, TransientError) and error.status == 504


def failed(task_id: str, error: str, landed: bool, *, retriable: bool = False) -> WriteResult:
    """A failed write; UNKNOWN when part of it (the card's PUT) landed before the failure."""
    if landed:
        return WriteResult(task_id, False, f"{error} (after the card's other fields were written)", retriable=True,
                           status=WriteStatus.UNKNOWN)  # fmt: skip
    return WriteResult(task_id, False, error, retriable=retriable, status=WriteStatus.FAILED)


def object_id_at(seconds: float) -> str:
    """The smallest Trello id (a MongoDB ObjectId) of an object made at ``seconds`` (epoch)."""
    return f"{max(0, int(seconds)):08x}{'0' * 16}"
