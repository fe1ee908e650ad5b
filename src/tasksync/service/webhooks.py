"""Webhook receivers for Trello and Asana: signature checks and the Asana handshake policy.

The HTTP side lives in the ASGI app of :mod:`tasksync.web` (``/trello``, ``/asana``,
``/healthz``), served by uvicorn with per-connection timeouts, a real listen backlog and bounded
concurrency; :class:`HookServer` runs just those endpoints for ``tasksync serve --webhook-port``.

A verified delivery only wakes the service for an immediate incremental sync: the payload itself
is never trusted as data, so a replayed or forged-but-verified delivery costs at most one read.

- Trello: ``HEAD`` answers 200 (Trello checks the callback when the webhook is created); a
  ``POST`` must carry ``X-Trello-Webhook`` = base64(HMAC-SHA1(app secret, body + callback URL)).
- Asana: the handshake ``POST`` carries ``X-Hook-Secret``; a new secret is accepted only while
  tasksync itself is registering the webhook (:meth:`Webhooks.expect_asana_handshake`) or when it
  equals the configured ``TASKSYNC_ASANA_WEBHOOK_SECRET``; it is echoed back and kept in a 0600
  file. Later posts must carry ``X-Hook-Signature`` = hex(HMAC-SHA256(secret, body)). Each
  project's webhook delivers to ``/asana/<project gid>`` and has its own secret (one file per
  project), so every Asana project of a ``serve`` can have one; the path routes the delivery to
  its project (:func:`tasksync.cluster.webhook.target_ids`, as the cluster's endpoint does).
  ``/asana`` alone keeps the one secret of earlier versions (a webhook registered then).

Anything else is refused with 401 and logged (without the secret or signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasksync.service.logs import event

if TYPE_CHECKING:
    from tasksync.web.server import WebServer

__all__ = [
    "HookServer",
    "Webhooks",
    "asana_signature",
    "read_secret_file",
    "register_asana_webhook",
    "trello_signature",
    "verify_asana",
    "verify_trello",
    "write_secret_file",
]

MAX_BODY = 1 << 20  # deliveries are small; refuse anything larger than 1 MiB


def trello_signature(secret: str, body: bytes, callback_url: str) -> str:
    mac = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def asana_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_trello(secret: str | None, body: bytes, callback_url: str, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(trello_signature(secret, body, callback_url), signature.strip())


def verify_asana(secret: str | None, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(asana_signature(secret, body), signature.strip().lower())


def write_secret_file(path: Path, value: str) -> None:
    """Write a secret readable by its owner only (0600), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing temp file keeps its mode otherwise
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def read_secret_file(path: Path) -> str | None:
    """A secret written by :func:`write_secret_file`; a file others can read is made 0600 first."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


Health = Callable[[], tuple[bool, dict[str, Any]]]


class Webhooks:
    """What the endpoints decide; thread-safe. ``on_change(source, ids)`` runs for every verified
    delivery, with the board ids, short links or project gids it names (to route it to its board).

    ``asana_secret`` is the secret learned at an earlier handshake on ``/asana`` (or the configured
    one when ``asana_secret_fixed``: then every path's), ``asana_secrets`` those learned on
    ``/asana/<project gid>``, by gid; ``remember_asana_secret(project, secret)`` stores a newly
    accepted one (``project`` empty for ``/asana``).
    """

    def __init__(
        self,
        *,
        on_change: Callable[[str, list[str]], None] | None = None,
        trello_secret: str | None = None,
        trello_callback_url: str | None = None,
        asana_secret: str | None = None,
        asana_secret_fixed: bool = False,
        asana_secrets: Mapping[str, str] | None = None,
        remember_asana_secret: Callable[[str, str], None] | None = None,
        health: Health | None = None,
    ) -> None:
        self.on_change = on_change
        self.trello_secret = trello_secret
        self.trello_callback_url = trello_callback_url
        self.asana_secret = asana_secret
        self.asana_secret_fixed = asana_secret_fixed
        self.asana_secrets = dict(asana_secrets or {})
        self.remember_asana_secret = remember_asana_secret
        self.health = health
        self.accepted = 0
        self.rejected = 0
        self._registering = 0
        self._lock = threading.Lock()

    @contextmanager
    def expect_asana_handshake(self) -> Iterator[None]:
        """Accept a new ``X-Hook-Secret`` while the block runs (tasksync is registering the webhook)."""
        with self._lock:
            self._registering += 1
        try:
            yield
        finally:
            with self._lock:
                self._registering -= 1

    def _reject(self, source: str, why: str, peer: str) -> int:
        with self._lock:
            self.rejected += 1
        event("webhook.rejected", logging.WARNING, source=source, reason=why, peer=peer)
        return 401

    def _accept(self, source: str, body: bytes, target: str = "") -> int:
        from tasksync.cluster.webhook import delivery_ids  # pure Python: no cluster dependency

        with self._lock:
            self.accepted += 1
        ids = delivery_ids(source, body, target)
        event("webhook.accepted", source=source, ids=ids)
        if self.on_change is not None:
            self.on_change(source, ids)
        return 200

    def handle_trello(self, body: bytes, headers: Mapping[str, str], url: str, peer: str) -> int:
        if self.on_change is None or not self.trello_secret:
            return self._reject("trello", "Trello webhooks are not enabled (TASKSYNC_TRELLO_SECRET unset)", peer)
        callback = self.trello_callback_url or url
        if not verify_trello(self.trello_secret, body, callback, headers.get("X-Trello-Webhook")):
            return self._reject("trello", "bad or missing X-Trello-Webhook signature", peer)
        return self._accept("trello", body, url)

    def handle_asana(
        self, body: bytes, headers: Mapping[str, str], peer: str, target: str = ""
    ) -> tuple[int, dict[str, str]]:
        """A delivery to ``target`` (``/asana`` or ``/asana/<project gid>``: whose secret applies)."""
        from tasksync.cluster.webhook import target_ids  # the routing the cluster's endpoint uses

        if self.on_change is None:
            return self._reject("asana", "webhooks are not enabled", peer), {}
        named = target_ids(target)
        project = named[0] if named else ""
        if project and not project.isdigit():
            return self._reject("asana", "the path names no project gid (/asana/<project gid>)", peer), {}
        handshake = headers.get("X-Hook-Secret")
        if handshake:
            with self._lock:
                known = self.asana_secret if self.asana_secret_fixed else None
                registering = self._registering > 0
            if known is not None:
                if not hmac.compare_digest(handshake.encode(), known.encode()):
                    why = "handshake secret differs from TASKSYNC_ASANA_WEBHOOK_SECRET"
                    return self._reject("asana", why, peer), {}
            elif not registering:
                why = "handshake outside a webhook registration by tasksync (set TASKSYNC_ASANA_WEBHOOK_SECRET)"
                return self._reject("asana", why, peer), {}
            with self._lock:
                if project and known is None:
                    self.asana_secrets[project] = handshake
                elif known is None:
                    self.asana_secret = handshake
            if self.remember_asana_secret is not None and known is None:
                self.remember_asana_secret(project, handshake)
            event("webhook.handshake", source="asana", project=project or None)
            return 200, {"X-Hook-Secret": handshake}
        with self._lock:
            fixed_or_plain = self.asana_secret_fixed or not project
            secret = self.asana_secret if fixed_or_plain else self.asana_secrets.get(project)
        if not verify_asana(secret, body, headers.get("X-Hook-Signature")):
            return self._reject("asana", "bad or missing X-Hook-Signature", peer), {}
        return self._accept("asana", body, target), {}


class HookServer(Webhooks):
    """The webhook and health endpoints alone, on the uvicorn server of :mod:`tasksync.web`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        request_timeout: float = 10.0,
        max_active: int = 64,
        max_connections: int = 10000,
        backlog: int = 2048,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from tasksync.web.app import create_hooks_app
        from tasksync.web.server import WebServer

        app = create_hooks_app(self, request_timeout=request_timeout, max_active=max_active)
        self.server: WebServer = WebServer(
            app,
            host,
            port,
            request_timeout=request_timeout,
            max_connections=max_connections,
            backlog=backlog,
        )

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> HookServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


def register_asana_webhook(api_url: str, token: str, resource: str, target: str, hooks: Webhooks) -> str:
    """Register an Asana webhook on ``resource`` delivering to ``target``; returns its gid.

    Asana sends the handshake to ``target`` before it answers this request: the only time a new
    ``X-Hook-Secret`` is accepted without a configured secret.
    """
    import requests

    from tasksync.errors import ApiError

    with hooks.expect_asana_handshake():
        try:
            resp = requests.post(
                f"{api_url.rstrip('/')}/webhooks",
                json={"data": {"resource": resource, "target": target}},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        except requests.RequestException as e:
            raise ApiError(f"Asana webhook registration failed: {e}") from None
    if resp.status_code >= 400:
        raise ApiError(f"Asana refused the webhook on {target}: HTTP {resp.status_code} {resp.text[:200]}")
    return str(resp.json()["data"]["gid"])
