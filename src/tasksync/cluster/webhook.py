"""Which board a verified webhook delivery concerns, for :meth:`Cluster.enqueue_remote`.

The web endpoint verifies a delivery's signature first (:mod:`tasksync.service.webhooks`), then
asks :func:`delivery_ids` for the identifiers it names and queues those boards' syncs. Nothing
else of the payload is used: the sync reads the board itself.

- Trello (a webhook on a board): ``model.id`` / ``model.shortLink`` and ``action.data.board``.
- Asana: events name tasks, and a task's change event does not name its project, so register
  each project's webhook with a target naming the project (``https://host/asana/<project gid>``
  or ``?project=<gid>``); project events (``resource`` or ``parent`` of type ``project``) count too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["delivery_ids"]


def _ids_of(obj: Any, *keys: str) -> list[str]:
    if not isinstance(obj, dict):
        return []
    return [str(obj[k]) for k in keys if isinstance(obj.get(k), str | int) and str(obj[k])]


def delivery_ids(source: str, body: bytes, target: str = "") -> list[str]:
    """The board ids, short links or project gids a delivery to ``target`` (its URL path and
    query) names; an unreadable body names nothing (the target may still)."""
    parts = urlsplit(target)
    ids = [p for p in parts.path.split("/") if p and p not in ("trello", "asana")]
    ids += [v for _, v in parse_qsl(parts.query) if v]
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        return ids
    if source == "trello":
        ids += _ids_of(data.get("model"), "id", "shortLink")
        action = data.get("action")
        board = action.get("data", {}).get("board") if isinstance(action, dict) else None
        ids += _ids_of(board, "id", "shortLink")
    elif source == "asana":
        for event in data.get("events") or []:
            if not isinstance(event, dict):
                continue
            for side in ("resource", "parent"):
                ref = event.get(side)
                if isinstance(ref, dict) and ref.get("resource_type") == "project":
                    ids += _ids_of(ref, "gid")
    return list(dict.fromkeys(ids))
