"""Benchmark: the webhook and health endpoints under slow clients (issue 17, item 12).

N clients connect and send half a request head, then nothing. Then, on the same server:

- ``/healthz``: its status and how long it took to answer (10 s at most);
- after ``request_timeout`` (2 s here) plus a margin: how many slow clients the server has
  disconnected.

Baseline, measured in the same run: the previous receiver, stdlib ``ThreadingHTTPServer``
(listen backlog 5, no timeouts, a thread per connection), with the same handler logic.

    PYTHONPATH=src python bench/bench_web.py [--clients 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tasksync.service.webhooks import HookServer

TIMEOUT = 2.0
BUDGET = 60.0  # seconds for connecting the slow clients


@contextlib.contextmanager
def baseline() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # the slow clients hang up at the end: not news

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def tasksync_server() -> Iterator[int]:
    server = HookServer(
        "127.0.0.1", 0, on_change=lambda s: None, health=lambda: (True, {"ok": True}), request_timeout=TIMEOUT
    ).start()
    try:
        yield server.port
    finally:
        server.stop()


def healthz(port: int) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
        status = head.split(b" ", 2)[1].decode() if head else "closed"
    except OSError as e:
        status = type(e).__name__
    return status, time.perf_counter() - start


def measure(name: str, serve: Callable[[], contextlib.AbstractContextManager[int]], clients: int) -> list[str]:
    with serve() as port:
        slow: list[socket.socket] = []
        refused = 0
        started = time.perf_counter()
        for _ in range(clients):
            if time.perf_counter() - started > BUDGET:
                refused += 1  # not even connected within the budget
                continue
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"POST /asana HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
            except OSError:
                refused += 1
        connect_time = time.perf_counter() - started
        print(f"{name}: {len(slow)} slow clients connected in {connect_time:.1f} s", file=sys.stderr, flush=True)
        status, seconds = healthz(port)
        time.sleep(TIMEOUT + 1.0)
        ready, _, _ = select.select(slow, [], [], 0) if len(slow) < 1000 else _poll(slow)
        cut = sum(1 for s in ready if _closed(s))
        for s in slow:
            s.close()
    return [name, str(clients), f"{connect_time:.1f}", str(refused), status, f"{seconds:.3f}", f"{cut}/{len(slow)}"]


def _poll(socks: list[socket.socket]) -> tuple[list[socket.socket], list[Any], list[Any]]:
    p = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        p.register(fd, select.POLLIN | select.POLLHUP)
    return [by_fd[fd] for fd, _ in p.poll(0)], [], []


def _closed(s: socket.socket) -> bool:
    try:
        s.setblocking(False)
        return s.recv(1) == b""
    except OSError:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = [
        measure("baseline: http.server (backlog 5, no timeouts)", baseline, args.clients),
        measure(f"tasksync: uvicorn (timeout {TIMEOUT:.0f} s, backlog 2048)", tasksync_server, args.clients),
    ]
    head = [
        "server",
        "slow clients",
        "connect s",
        f"not connected (2 s each, {BUDGET:.0f} s budget)",
        "/healthz",
        "seconds",
        f"cut off after {TIMEOUT + 1:.0f} s",
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
