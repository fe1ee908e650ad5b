"""Who may use the review page: the admin token, or a Trello member of the board (Power-Up).

- The **admin token** is generated once into a 0600 file beside the state store and printed once
  by ``tasksync web``; ``POST /login`` with it opens a session (an HttpOnly, SameSite=Strict
  cookie).
- Inside Trello, the Power-Up gets the member's Trello token from Trello's REST API client and
  trades it at ``POST /powerup/session``: tasksync asks Trello who the token belongs to and
  whether that member is on the configured board; the session id comes back to the page's
  script, which sends it as ``Authorization: Bearer`` (a cookie would be third-party there).
- Every session has a CSRF token; every write must send it as ``X-CSRF-Token`` (and, when the
  browser sends an ``Origin``, it must be this server's).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tasksync.service.webhooks import read_secret_file, write_secret_file

__all__ = ["Session", "Sessions", "TrelloMembers", "ensure_admin_token"]

SESSION_COOKIE = "tasksync_session"
SESSION_SECONDS = 12 * 3600


def ensure_admin_token(path: Path) -> tuple[str, bool]:
    """The admin token, generated (0600) when missing; ``True`` when it was just created."""
    token = read_secret_file(path)
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    write_secret_file(path, token)
    return token, True


@dataclass
class Session:
    id: str
    who: str  # "admin" or "trello:<username>"
    csrf: str
    expires: float
    member_id: str | None = None


@dataclass
class Sessions:
    """Sessions in memory: a restart logs everyone out (the admin token stays)."""

    items: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, who: str, member_id: str | None = None) -> Session:
        s = Session(secrets.token_urlsafe(32), who, secrets.token_urlsafe(32), time.time() + SESSION_SECONDS, member_id)
        with self.lock:
            now = time.time()
            for sid in [k for k, v in self.items.items() if v.expires < now]:
                del self.items[sid]
            self.items[s.id] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.lock:
            s = self.items.get(sid)
        if s is None or s.expires < time.time():
            return None
        return s

    def close(self, sid: str) -> None:
        with self.lock:
            self.items.pop(sid, None)

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


class TrelloMembers:
    """Checks that a Trello token belongs to a member of the board (yes cached for 10 minutes, no for 1)."""

    TTL = 600.0
    TTL_REFUSED = 60.0

    def __init__(self, api_url: str, api_key: str | None, board: str | None, timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.board = board
        self.timeout = timeout
        self._cache: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._lock = threading.Lock()

    def member(self, token: str) -> tuple[str, str] | None:
        """``(member id, username)`` of the token's owner when on the board, else None."""
        if not self.api_key or not self.board or not token:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        answer = self._ask(token)
        with self._lock:
            if len(self._cache) >= 4096:  # random tokens must not grow the cache without bound
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= 4096:
                    self._cache.clear()
            self._cache[token] = (now + (self.TTL if answer else self.TTL_REFUSED), answer)
        return answer

    def _ask(self, token: str) -> tuple[str, str] | None:
        auth = {"key": self.api_key or "", "token": token}
        try:
            me = requests.get(
                f"{self.api_url}/members/me", params={**auth, "fields": "id,username"}, timeout=self.timeout
            )
            if me.status_code != 200:
                return None
            member = me.json()
            board = requests.get(
                f"{self.api_url}/boards/{self.board}",
                params={**auth, "fields": "id", "members": "all", "member_fields": "id,username"},
                timeout=self.timeout,
            )
            if board.status_code != 200:
                return None
            ids = {m.get("id") for m in board.json().get("members", [])}
        except (requests.RequestException, ValueError, AttributeError):
            return None
        if member.get("id") in ids:
            return str(member["id"]), str(member.get("username") or member["id"])
        return None
