"""``tasksync web``: build the app from the configuration and serve it."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

from tasksync.service.webhooks import Webhooks
from tasksync.settings import Settings, load_settings, select_board
from tasksync.web.app import WebOptions, create_app
from tasksync.web.auth import TrelloMembers, ensure_admin_token
from tasksync.web.review import Review
from tasksync.web.server import WebServer

__all__ = ["build_app", "run_web", "web_server"]


def _trello_board(settings: Settings, board: str | None) -> str | None:
    if settings.connector != "trello":
        return None
    from tasksync.connectors.trello import parse_board_id

    boards = settings.trello.boards
    ident = board or (boards[0] if len(boards) == 1 else None)
    return parse_board_id(ident) if ident else None


def build_app(
    settings: Settings,
    *,
    board: str | None = None,
    today: date | None = None,
    hooks: Webhooks | None = None,
    out: Any = None,
) -> Any:
    """The whole app for one configured board; prints the admin token once, when it is created."""
    web = settings.web
    token_path = settings.path(web.admin_token_path)
    token, created = ensure_admin_token(token_path)
    if created:
        print(
            f"tasksync web: admin token (shown once; kept in {token_path}, mode 0600): {token}",
            file=out or sys.stdout,
            flush=True,
        )
    members = None
    if settings.connector == "trello" and web.powerup_api_key:
        members = TrelloMembers(settings.secrets.trello_api_url, web.powerup_api_key, _trello_board(settings, board))
    options = WebOptions(
        admin_token=token,
        request_timeout=web.request_timeout,
        max_active=web.max_active,
        public_url=web.public_url,
        powerup_api_key=web.powerup_api_key,
        powerup_app_name=web.powerup_app_name,
        powerup_script=web.powerup_script,
        members=members,
    )
    return create_app(Review(settings, board=board, today=today), options, hooks)


def web_server(settings: Settings, app: Any, host: str | None = None, port: int | None = None) -> WebServer:
    web = settings.web
    return WebServer(
        app,
        host or web.host,
        web.port if port is None else port,
        request_timeout=web.request_timeout,
        max_connections=web.max_connections,
        backlog=web.backlog,
        forwarded_allow_ips="127.0.0.1" if web.public_url else None,
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_web(args: argparse.Namespace) -> int:
    # the one board of the config's boards --board names (by name, id, short link or URL)
    settings = select_board(load_settings(Path(args.config)), getattr(args, "board", None), args.config)
    today = date.fromisoformat(args.today) if getattr(args, "today", None) else None
    app = build_app(settings, today=today)
    server = web_server(settings, app, args.host, args.port)
    host = args.host or settings.web.host
    if not _loopback(host) and not (settings.web.public_url or "").startswith("https://"):
        print(
            f"tasksync web: listening on {host}, beyond this machine: put an HTTPS reverse proxy in front "
            "and set [web] public_url (docs/web.md)",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"tasksync web: the review page is at http://{shown}:{server.port}/review (Ctrl-C stops)", flush=True)

    def stopped(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # uvicorn passes SIGTERM on once it has shut down: a clean stop

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # the same for Ctrl-C
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
