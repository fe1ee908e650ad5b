"""uvicorn with limits a slow or hostile client cannot get around.

- **Per-connection timeout**: a client has ``request_timeout`` seconds from connecting (or from
  its previous response) to send a whole request head; the app gives it as long again for the
  body (:mod:`tasksync.web.app`). uvicorn alone waits forever for a head that never ends.
- **A real backlog**: the socket is opened here and listens with ``backlog`` (2048) pending
  connections, not the 5 of ``http.server``.
- **Bounded concurrency**: at most ``max_connections`` open connections (then 503), and the app
  handles at most ``max_active`` requests at once, with ``/healthz`` outside that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import threading
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tasksync.errors import ConfigError

__all__ = ["WebServer"]


class _TimedH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head does not arrive in time."""

    request_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._seen_cycle: object = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle  # a whole request head arrived
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _raise_fd_limit(wanted: int) -> None:
    """Each connection is a file descriptor: lift the soft limit toward ``wanted`` (within the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class WebServer:
    """An ASGI app on uvicorn, in a daemon thread (:meth:`start`/:meth:`stop`) or in the foreground (:meth:`run`)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        request_timeout: float = 10.0,
        max_connections: int = 10000,
        backlog: int = 2048,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        protocol = type("TimedH11", (_TimedH11,), {"request_timeout": request_timeout})
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=protocol,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_keep_alive=max(1, min(5, int(request_timeout))),
            limit_concurrency=max_connections,
            backlog=backlog,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
        )
        _raise_fd_limit(max_connections + 256)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(backlog)
        except OSError as e:
            self.sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self.sock.set_inheritable(True)
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn's handlers, in the main thread)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.name = "tasksync-web"
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
