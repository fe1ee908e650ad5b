"""The cluster's webhook endpoint: a verified delivery queues one sync of the board it names.

``tasksync-cluster webhooks`` serves :func:`create_webhook_app` (``/trello``, ``/asana/<project
gid>``, ``/healthz``) on the web server of :mod:`tasksync.web`. For each delivery it asks
:func:`delivery_ids` for the identifiers it names, then :meth:`Cluster.enqueue_remote` queues the
boards they map to whose own secrets verify the signature (each board may have its own app secret,
through its ``secrets_prefix``): Trello's ``X-Trello-Webhook`` with ``TRELLO_SECRET`` and the
callback URL (``[service] trello_callback_url``, else the URL called), Asana's
``X-Hook-Signature`` with ``ASANA_WEBHOOK_SECRET``. An Asana handshake is accepted only when its
``X-Hook-Secret`` is the board's configured ``ASANA_WEBHOOK_SECRET``: the endpoint runs on many
machines and keeps no state. Anything else is refused with 401. Nothing else of the payload is
used: the sync reads the board itself.

- Trello (a webhook on a board): ``model.id`` / ``model.shortLink`` and ``action.data.board``.
- Asana: events name tasks, and a task's change event does not name its project, so register
  each project's webhook with a target naming the project (``https://host/asana/<project gid>``
  or ``?project=<gid>``); project events (``resource`` or ``parent`` of type ``project``) count too.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tasksync.errors import TasksyncError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from tasksync.cluster.jobs import Cluster
    from tasksync.settings import Settings

__all__ = ["ClusterWebhooks", "create_webhook_app", "delivery_ids", "target_ids"]

log = logging.getLogger("tasksync.cluster")


def _ids_of(obj: Any, *keys: str) -> list[str]:
    if not isinstance(obj, dict):
        return []
    return [str(obj[k]) for k in keys if isinstance(obj.get(k), str | int) and str(obj[k])]


def target_ids(target: str) -> list[str]:
    """The ids a delivery's target (its URL path and query) names: ``/asana/<project gid>``,
    ``/trello/<board>``, ``?project=<gid>`` (the cluster's endpoint and ``tasksync serve``'s)."""
    parts = urlsplit(target)
    ids = [p for p in parts.path.split("/") if p and p not in ("trello", "asana")]
    return ids + [v for _, v in parse_qsl(parts.query) if v]


def delivery_ids(source: str, body: bytes, target: str = "") -> list[str]:
    """The board ids, short links or project gids a delivery to ``target`` (its URL path and
    query) names; an unreadable body names nothing (the target may still)."""
    ids = target_ids(target)
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


class ClusterWebhooks:
    """What the endpoint decides, for one cluster: verify a delivery with the secrets of the
    board it names, and queue that board's sync (thread-safe)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._settings: dict[str, Settings] = {}

    def _board(self, key: str) -> Settings:
        settings = self._settings.get(key)
        if settings is None:
            settings = self._settings[key] = self.cluster.cfg.board(key).settings()
        return settings

    def _trello_ok(self, key: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        from tasksync.service.webhooks import verify_trello

        settings = self._board(key)
        secret = settings.secrets.trello_secret
        callback = settings.service.trello_callback_url or url
        value = secret.get_secret_value() if secret else None
        return verify_trello(value, body, callback, headers.get("X-Trello-Webhook"))

    def _asana_secret(self, key: str) -> str | None:
        secret = self._board(key).secrets.asana_webhook_secret
        return secret.get_secret_value() if secret else None

    def handle(
        self, source: str, body: bytes, headers: Mapping[str, str], url: str, target: str
    ) -> tuple[int, dict[str, str]]:
        """The HTTP status and headers for a delivery from ``source`` (``trello`` or ``asana``) to
        ``url`` (``target``: its path and query). A board whose config cannot be read answers 500,
        Redis out of reach 503 (the vendors deliver again later); each logs one line."""
        import redis

        try:
            return self._handle(source, body, headers, url, target)
        except TasksyncError as e:
            log.error("webhook: %s delivery not handled: %s", source, e)
            return 500, {}
        except redis.RedisError as e:
            log.error("webhook: %s delivery not queued: Redis: %s", source, e)
            return 503, {}

    def _handle(
        self, source: str, body: bytes, headers: Mapping[str, str], url: str, target: str
    ) -> tuple[int, dict[str, str]]:
        from tasksync.service.webhooks import verify_asana

        ids = delivery_ids(source, body, target)
        handshake = headers.get("X-Hook-Secret") if source == "asana" else None
        if handshake:
            keys = self.cluster.keys_for_remote(ids)
            known = [self._asana_secret(k) for k in keys]
            if keys and all(s is not None and hmac.compare_digest(s.encode(), handshake.encode()) for s in known):
                log.info("webhook: asana handshake accepted for %s", ", ".join(keys))
                return 200, {"X-Hook-Secret": handshake}
            return self._reject(source, "handshake secret is not the board's ASANA_WEBHOOK_SECRET", ids)
        verified: list[str] = []

        def verify(key: str) -> bool:
            if source == "trello":
                ok = self._trello_ok(key, body, headers, url)
            else:
                ok = verify_asana(self._asana_secret(key), body, headers.get("X-Hook-Signature"))
            if ok:
                verified.append(key)
            return ok

        queued = self.cluster.enqueue_remote(ids, "webhook", verify=verify)
        if not verified:
            return self._reject(source, "no board of the cluster it names verifies its signature", ids)
        log.info("webhook: %s delivery for %s (queued %d)", source, ", ".join(verified), len(queued))
        return 200, {}

    def _reject(self, source: str, why: str, ids: list[str]) -> tuple[int, dict[str, str]]:
        log.warning("webhook: %s delivery refused (%s); it names %s", source, why, ", ".join(ids) or "nothing")
        return 401, {}

    def healthy(self) -> bool:
        """Redis answers (the queue the endpoint feeds)."""
        try:
            return bool(self.cluster.redis.ping())
        except Exception:
            return False


def create_webhook_app(hooks: ClusterWebhooks, *, request_timeout: float = 10.0) -> ASGIApp:
    """The endpoint as an ASGI app: ``/trello``, ``/asana`` and ``/asana/<project gid>``
    (``HEAD``/``GET`` answer 200: the vendors check a callback URL before using it), ``/healthz``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tasksync.service.webhooks import MAX_BODY
    from tasksync.web.app import read_body

    def endpoint(source: str) -> Any:
        async def handler(request: Request) -> Response:
            if request.method in ("HEAD", "GET"):
                return Response(status_code=200)
            body = await read_body(request, MAX_BODY, request_timeout)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            host = request.headers.get("host") or "localhost"
            url = f"{request.url.scheme}://{host}{target}"
            status, headers = await run_in_threadpool(hooks.handle, source, body, request.headers, url, target)
            return Response(status_code=status, headers=headers)

        return handler

    async def healthz(request: Request) -> Response:
        return Response(status_code=200 if await run_in_threadpool(hooks.healthy) else 503)

    methods = ["GET", "HEAD", "POST"]
    return Starlette(
        routes=[
            Route("/trello", endpoint("trello"), methods=methods),
            Route("/trello/{rest:path}", endpoint("trello"), methods=methods),
            Route("/asana", endpoint("asana"), methods=methods),
            Route("/asana/{rest:path}", endpoint("asana"), methods=methods),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
        ]
    )
