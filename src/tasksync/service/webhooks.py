"""Webhook receivers for Trello and Asana, and the ``/healthz`` endpoint, on stdlib ``http.server``.

A verified delivery only wakes the service for an immediate incremental sync: the payload itself
is never trusted as data, so a replayed or forged-but-verified delivery costs at most one read.

- Trello: ``HEAD`` answers 200 (Trello checks the callback when the webhook is created); a
  ``POST`` must carry ``X-Trello-Webhook`` = base64(HMAC-SHA1(app secret, body + callback URL)).
- Asana: the first ``POST`` carries ``X-Hook-Secret``; it is echoed back and kept; later posts
  must carry ``X-Hook-Signature`` = hex(HMAC-SHA256(secret, body)).

Anything else is refused with 401 and logged (without the secret or signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tasksync.service.logs import event

__all__ = ["HookServer", "asana_signature", "trello_signature", "verify_asana", "verify_trello"]

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


Health = Callable[[], tuple[bool, dict[str, Any]]]


class HookServer:
    """Serves ``/trello``, ``/asana`` (webhooks, when enabled) and ``/healthz`` in a daemon thread.

    ``on_change(source)`` is called for every verified delivery. ``asana_secret`` may be None
    until the handshake; ``remember_asana_secret`` is called with the handshake's secret.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_change: Callable[[str], None] | None = None,
        trello_secret: str | None = None,
        trello_callback_url: str | None = None,
        asana_secret: str | None = None,
        asana_secret_fixed: bool = False,
        remember_asana_secret: Callable[[str], None] | None = None,
        health: Health | None = None,
    ) -> None:
        self.on_change = on_change
        self.trello_secret = trello_secret
        self.trello_callback_url = trello_callback_url
        self.asana_secret = asana_secret
        self.asana_secret_fixed = asana_secret_fixed
        self.remember_asana_secret = remember_asana_secret
        self.health = health
        self.accepted = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> HookServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="tasksync-hooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ request handling
    def _reject(self, source: str, why: str, peer: str) -> int:
        with self._lock:
            self.rejected += 1
        event("webhook.rejected", logging.WARNING, source=source, reason=why, peer=peer)
        return 401

    def _accept(self, source: str) -> int:
        with self._lock:
            self.accepted += 1
        event("webhook.accepted", source=source)
        if self.on_change is not None:
            self.on_change(source)
        return 200

    def handle_trello(self, body: bytes, headers: Any, url: str, peer: str) -> int:
        if self.on_change is None or not self.trello_secret:
            return self._reject("trello", "Trello webhooks are not enabled (TASKSYNC_TRELLO_SECRET unset)", peer)
        callback = self.trello_callback_url or url
        if not verify_trello(self.trello_secret, body, callback, headers.get("X-Trello-Webhook")):
            return self._reject("trello", "bad or missing X-Trello-Webhook signature", peer)
        return self._accept("trello")

    def handle_asana(self, body: bytes, headers: Any, peer: str) -> tuple[int, dict[str, str]]:
        if self.on_change is None:
            return self._reject("asana", "webhooks are not enabled", peer), {}
        handshake = headers.get("X-Hook-Secret")
        if handshake:
            if self.asana_secret_fixed and not hmac.compare_digest(handshake, self.asana_secret or ""):
                return self._reject("asana", "handshake secret differs from TASKSYNC_ASANA_WEBHOOK_SECRET", peer), {}
            with self._lock:
                self.asana_secret = handshake
            if self.remember_asana_secret is not None:
                self.remember_asana_secret(handshake)
            event("webhook.handshake", source="asana")
            return 200, {"X-Hook-Secret": handshake}
        if not verify_asana(self.asana_secret, body, headers.get("X-Hook-Signature")):
            return self._reject("asana", "bad or missing X-Hook-Signature", peer), {}
        return self._accept("asana"), {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "tasksync"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                return  # access logs would repeat the webhook events

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                if body:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def _path(self) -> str:
                return self.path.split("?", 1)[0].rstrip("/") or "/"

            def do_HEAD(self) -> None:
                self._send(200)

            def do_GET(self) -> None:
                if self._path() == "/healthz" and server.health is not None:
                    ok, detail = server.health()
                    self._send(200 if ok else 503, json.dumps(detail, default=str).encode())
                elif self._path() in ("/trello", "/asana"):
                    self._send(200)
                else:
                    self._send(404)

            def do_POST(self) -> None:
                peer = self.client_address[0]
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    self._send(413)
                    return
                body = self.rfile.read(length)
                path = self._path()
                if path == "/trello":
                    host = self.headers.get("Host") or "localhost"
                    self._send(server.handle_trello(body, self.headers, f"http://{host}{self.path}", peer))
                elif path == "/asana":
                    status, headers = server.handle_asana(body, self.headers, peer)
                    self._send(status, headers=headers)
                else:
                    self._send(404)

        return Handler
