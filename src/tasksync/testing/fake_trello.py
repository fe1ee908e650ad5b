"""A stateful fake of the Trello REST API for tests, benchmarks and offline demos.

One :class:`FakeTrello` keeps boards, lists, cards, members, labels, custom fields and actions,
and answers the routes tasksync (and py-trello's object model) uses, with Trello's status codes,
plain-text error bodies, 429 JSON bodies and ``x-rate-limit-*`` headers. The same state is served
two ways:

- through ``responses`` (``fake.install(rsps)``) for request-shape tests without sockets;
- on loopback (``with fake.serve() as url:``) by a ``ThreadingHTTPServer`` in a thread, so any
  HTTP client runs against it unchanged.

It enforces 100 requests per 10 s per token and 300 per 10 s per key on an injectable
(scalable) clock, locks a key out for the rest of the window after 200 429s, checks the key and
token, injects faults (a rate of 5xx, timeouts and dropped connections, before or after the
request is executed, plus scripted failures) and logs every request.

Run it for a demo::

    python -m tasksync.testing.fake_trello --port 8765 --board examples/demo/board.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tasksync.connectors.transport import Clock, SystemClock, secret_fingerprint

__all__ = ["FakeResponse", "FakeTrello", "LoggedRequest", "main"]

Json = dict[str, Any]

NOT_FOUND = "The requested resource was not found."
FAULT_KINDS = ("500", "502", "503", "504", "timeout", "timeout_after", "drop", "drop_after")

_CARD_DEFAULT_FIELDS = (
    "id",
    "name",
    "desc",
    "idList",
    "idBoard",
    "idMembers",
    "idLabels",
    "labels",
    "due",
    "dueComplete",
    "closed",
    "pos",
    "url",
    "shortUrl",
    "shortLink",
    "idShort",
    "badges",
    "idChecklists",
    "dateLastActivity",
)


@dataclass(slots=True)
class FakeResponse:
    """What the fake answers: a response, or a fault the transport must simulate."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # "timeout" or "drop": the client must not get this response


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the fake saw it (secrets removed)."""

    method: str
    path: str  # without the /1 prefix
    params: tuple[str, ...]  # query parameter names (key/token excluded)
    body_keys: tuple[str, ...]
    status: int
    fault: str | None
    via_batch: bool
    at: float
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    token: str = ""  # a fingerprint of the token (never the token): per-token rates in tests


@dataclass(slots=True)
class _Scripted:
    method: str
    pattern: re.Pattern[str]
    kind: str
    times: int


class _HttpError(Exception):
    def __init__(self, status: int, body: str | Json) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _strict_bool(value: Any, name: str) -> bool:
    """A boolean parameter as Trello takes it: true or false (JSON or text), nothing else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise _HttpError(400, f"invalid value for {name}")
    return text == "true"


#: The one key of a custom field item's ``value`` for each field type (list fields take idValue).
_VALUE_KEY = {"text": "text", "number": "number", "date": "date", "checkbox": "checked"}


def _check_item_value(ftype: str, raw: Any) -> None:
    """Refuse a ``value`` that does not fit the field's type, as Trello does."""
    if not isinstance(raw, dict) or set(raw) != {_VALUE_KEY[ftype]}:
        raise _HttpError(400, "Invalid custom field item value.")
    value = raw[_VALUE_KEY[ftype]]
    if not isinstance(value, str):
        raise _HttpError(400, "Invalid custom field item value.")
    if ftype == "number":
        try:
            float(value)
        except ValueError:
            raise _HttpError(400, "Invalid custom field item value.") from None
    elif ftype == "checkbox" and value not in ("true", "false"):
        raise _HttpError(400, "Invalid custom field item value.")
    elif ftype == "date":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _HttpError(400, "Invalid custom field item value.") from None


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.lower() in ("true", "1", "yes", "all", "open")


class FakeTrello:
    """The fake service. Thread-safe: one lock guards state, limits and logs."""

    def __init__(
        self,
        *,
        key: str = "fake-key",
        tokens: Sequence[str] = ("fake-token",),
        clock: Clock | None = None,
        token_limit: int = 100,
        key_limit: int = 300,
        window: float = 10.0,
        lockout_after: int = 200,
        enforce_limits: bool = True,
        max_board_cards: int = 5000,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        fault_methods: Sequence[str] | None = None,
        timeout_delay: float = 1.0,
        latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.key = key
        self.tokens = set(tokens)
        self.clock: Clock = clock or SystemClock()
        self.token_limit = token_limit
        self.key_limit = key_limit
        self.window = window
        self.lockout_after = lockout_after
        self.enforce_limits = enforce_limits
        self.max_board_cards = max_board_cards  # larger boards refuse nested cards
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.fault_methods = {m.upper() for m in fault_methods} if fault_methods else None
        self.timeout_delay = timeout_delay  # real seconds a "timeout" fault holds the response
        self.latency = latency  # real seconds added to every response
        self.rng = random.Random(seed)
        self.boards: dict[str, Json] = {}
        self.cards: dict[str, Json] = {}
        self.actions: list[Json] = []
        self.log: list[LoggedRequest] = []
        self.counts: Counter[str] = Counter()
        self.changes: list[tuple[str, str, Any]] = []  # (card id, field, new value)
        self.comments: dict[str, list[str]] = {}  # card id -> comment texts
        self.denied: dict[str, set[str]] = {}  # board id -> tokens without access
        self.token_members: dict[str, str] = {}  # token -> member id (GET /members/me)
        self._scripted: list[_Scripted] = []
        self._token_hits: dict[str, deque[float]] = {}
        self._key_hits: deque[float] = deque()
        self._key_429s: deque[float] = deque()
        self._lock = threading.RLock()
        self._id_counter = 0
        self._id_base = int(time.time())

    # ------------------------------------------------------------------ state helpers

    def new_id(self) -> str:
        """An ObjectId-like id: creation time (seconds) then a counter, so ids grow with time."""
        with self._lock:
            self._id_counter += 1
            self._id_base = max(self._id_base, int(time.time()))
            return f"{self._id_base:08x}{self._id_counter:016x}"

    def add_board(self, board: Mapping[str, Any]) -> str:
        """Load a board (API response or UI export); returns its id."""
        with self._lock:
            b = copy.deepcopy(dict(board))
            bid = str(b.get("id") or self.new_id())
            b["id"] = bid
            b.setdefault("name", "Board")
            b.setdefault("desc", "")
            b.setdefault("closed", False)
            b.setdefault("shortLink", bid[-8:])
            b.setdefault("url", f"https://trello.com/b/{b['shortLink']}/board")
            b.setdefault("dateLastActivity", _now_iso())
            for key in ("lists", "members", "labels", "customFields"):
                b[key] = list(b.get(key) or [])
            for lst in b["lists"]:
                lst.setdefault("closed", False)
                lst.setdefault("idBoard", bid)
            for cf in b["customFields"]:
                cf.setdefault("idModel", bid)
                cf.setdefault("modelType", "board")
            items: dict[str, list[Json]] = {}
            for item in b.pop("customFieldItems", None) or []:
                items.setdefault(str(item.get("idModel")), []).append(item)
            cards = []
            for i, raw in enumerate(b.pop("cards", None) or []):
                card = self._complete_card(dict(raw), b, i)
                card["customFieldItems"] = list(raw.get("customFieldItems") or []) + items.get(card["id"], [])
                cards.append(card)
                self.cards[card["id"]] = card
            b["cards"] = cards
            self.boards[bid] = b
            return bid

    def _complete_card(self, card: Json, board: Json, index: int) -> Json:
        cid = str(card.get("id") or self.new_id())
        card["id"] = cid
        card["idBoard"] = board["id"]
        card.setdefault("name", "")
        card.setdefault("desc", "")
        card["idMembers"] = list(card.get("idMembers") or [])
        card["idLabels"] = list(card.get("idLabels") or [lab["id"] for lab in card.get("labels") or []])
        card.pop("labels", None)
        card.setdefault("due", None)
        card.setdefault("dueComplete", False)
        card.setdefault("closed", False)
        card.setdefault("pos", 16384.0 * (index + 1))
        card.setdefault("shortLink", cid[-8:])
        card.setdefault("url", f"https://trello.com/c/{card['shortLink']}")
        card.setdefault("shortUrl", f"https://trello.com/c/{card['shortLink']}")
        card.setdefault("idShort", index + 1)
        card.setdefault("badges", {"checkItems": 0, "checkItemsChecked": 0, "comments": 0})
        card.setdefault("idChecklists", [])
        card.setdefault("dateLastActivity", _now_iso())
        return card

    def make_board(
        self,
        *,
        cards: int = 100,
        members: int = 10,
        lists: Sequence[str] = ("Lead", "Qualified", "Proposal", "Negotiation"),
        priority_tiers: Sequence[str] | None = ("P1", "P2", "P3", "P4"),
        link_field: str | None = "CRM ID",
        name: str = "Sales",
        seed: int = 1,
    ) -> str:
        """Generate a board: ``cards`` open cards spread over ``lists``, each with one member."""
        rng = random.Random(seed)
        bid = self.new_id()
        board: Json = {"id": bid, "name": name, "shortLink": f"sl{bid[-6:]}"}
        board["lists"] = [
            {"id": self.new_id(), "name": n, "pos": 1024.0 * (i + 1), "closed": False} for i, n in enumerate(lists)
        ]
        board["members"] = [
            {"id": self.new_id(), "fullName": f"Rep {i:02d}", "username": f"rep{i:02d}"} for i in range(members)
        ]
        board["labels"] = [{"id": self.new_id(), "name": "pinned", "color": "red"}]
        fields: list[Json] = []
        prio_opts: list[str] = []
        prio_id = None
        if priority_tiers:
            prio_id = self.new_id()
            opts: list[Json] = [
                {"id": self.new_id(), "idCustomField": prio_id, "value": {"text": t}, "pos": i}
                for i, t in enumerate(priority_tiers)
            ]
            prio_opts = [o["id"] for o in opts]
            fields.append({"id": prio_id, "name": "Priority", "type": "list", "options": opts})
        link_id = None
        if link_field:
            link_id = self.new_id()
            fields.append({"id": link_id, "name": link_field, "type": "text"})
        board["customFields"] = fields
        out = []
        for i in range(cards):
            cid = self.new_id()
            items: list[Json] = []
            if prio_id:
                items.append(
                    {
                        "id": self.new_id(),
                        "idCustomField": prio_id,
                        "idModel": cid,
                        "modelType": "card",
                        "idValue": rng.choice(prio_opts),
                    }
                )
            if link_id:
                items.append(
                    {
                        "id": self.new_id(),
                        "idCustomField": link_id,
                        "idModel": cid,
                        "modelType": "card",
                        "value": {"text": f"D-{i:05d}"},
                    }
                )
            out.append(
                {
                    "id": cid,
                    "name": f"Deal {i:05d}",
                    "idList": rng.choice(board["lists"])["id"],
                    "idMembers": [rng.choice(board["members"])["id"]] if members else [],
                    "customFieldItems": items,
                }
            )
        board["cards"] = out
        return self.add_board(board)

    def board(self, board_id: str) -> Json:
        b = self._find_board(board_id)
        if b is None:
            raise KeyError(board_id)
        return b

    def card(self, card_id: str) -> Json:
        return self.cards[card_id]

    def export(self, board_id: str) -> Json:
        """The board in the API's nested shape (cards with their custom field items)."""
        with self._lock:
            return copy.deepcopy(self.board(board_id))

    def _find_board(self, ident: str) -> Json | None:
        b = self.boards.get(ident)
        if b is not None:
            return b
        return next((b for b in self.boards.values() if b.get("shortLink") == ident), None)

    # ------------------------------------------------------------------ faults and logs

    def fail_next(self, method: str, path_regex: str, kind: str = "500", times: int = 1) -> None:
        """Script ``times`` faults for requests matching ``method`` and ``path_regex``."""
        if kind not in FAULT_KINDS and not kind.removesuffix("_after").isdigit():
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._scripted.append(_Scripted(method.upper(), re.compile(path_regex), kind, max(1, times)))

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.counts.clear()
            self.changes.clear()

    def requests_to(self, method: str | None = None, pattern: str | None = None) -> int:
        """How many (non-batch-inner) requests matched ``method`` and ``pattern``."""
        rx = re.compile(pattern) if pattern else None
        return sum(
            1
            for r in self.log
            if not r.via_batch and (method is None or r.method == method.upper()) and (rx is None or rx.search(r.path))
        )

    def _pick_fault(self, method: str, path: str) -> str | None:
        for s in self._scripted:
            if s.method in (method, "*") and s.pattern.search(path):
                s.times -= 1
                if s.times <= 0:
                    self._scripted.remove(s)
                return s.kind
        if self.fault_rate <= 0 or (self.fault_methods and method not in self.fault_methods):
            return None
        if self.rng.random() < self.fault_rate:
            return self.rng.choice(self.fault_kinds)
        return None

    # ------------------------------------------------------------------ limits

    def _limit_headers(self, token: str) -> dict[str, str]:
        hits = self._token_hits.get(token, deque())
        ms = str(int(self.window * 1000))
        return {
            "x-rate-limit-api-token-interval-ms": ms,
            "x-rate-limit-api-token-max": str(self.token_limit),
            "x-rate-limit-api-token-remaining": str(max(0, self.token_limit - len(hits))),
            "x-rate-limit-api-key-interval-ms": ms,
            "x-rate-limit-api-key-max": str(self.key_limit),
            "x-rate-limit-api-key-remaining": str(max(0, self.key_limit - len(self._key_hits))),
        }

    def _admit(self, token: str) -> str | None:
        """Count the request against the limits; the 429 error code if it is refused."""
        now = self.clock.monotonic()
        horizon = now - self.window
        hits = self._token_hits.setdefault(token, deque())
        for q in (hits, self._key_hits, self._key_429s):
            while q and q[0] <= horizon:
                q.popleft()
        if not self.enforce_limits:
            hits.append(now)
            self._key_hits.append(now)
            return None
        refused: str | None = None
        if len(self._key_429s) >= self.lockout_after or len(self._key_hits) >= self.key_limit:
            refused = "API_KEY_LIMIT_EXCEEDED"
        elif len(hits) >= self.token_limit:
            refused = "API_TOKEN_LIMIT_EXCEEDED"
        if refused:
            self._key_429s.append(now)
            return refused
        hits.append(now)
        self._key_hits.append(now)
        return None

    # ------------------------------------------------------------------ entry point

    def handle(self, method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] = {}) -> FakeResponse:
        """Answer one HTTP request (``url`` with its query string, path starting with /1/)."""
        method = method.upper()
        parts = urlsplit(url)
        path = parts.path
        if path.startswith("/1/") or path == "/1":
            path = path[2:] or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        payload: Json = {}
        if body:
            ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
            try:
                if "json" in ctype or body.lstrip()[:1] in (b"{", b"["):
                    loaded = json.loads(body)
                    payload = loaded if isinstance(loaded, dict) else {}
                else:
                    payload = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            except (ValueError, UnicodeDecodeError):
                return self._finish(method, path, query, payload, FakeResponse(400, b"invalid"))
        if self.latency:
            time.sleep(self.latency)
        key, token = query.get("key", ""), query.get("token", "")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth.startswith("OAuth "):
            pairs = dict(_OAUTH_PAIR.findall(auth))
            key = pairs.get("oauth_consumer_key", key)
            token = pairs.get("oauth_token", token)
        if "token=" in url or "key=" in url:
            self.counts["secrets_in_url"] += 1
        with self._lock:
            refused = self._admit(token) if key == self.key else None
            if refused:
                self.counts["429"] += 1
                resp = FakeResponse(
                    429,
                    json.dumps({"error": refused, "message": "Rate limit exceeded"}).encode(),
                    {"Content-Type": "application/json; charset=utf-8"},
                )
                resp.headers.update(self._limit_headers(token))
                return self._finish(method, path, query, payload, resp, token=token)
            fault = self._pick_fault(method, path)
            if fault and fault.isdigit():
                resp = FakeResponse(int(fault), b"Internal Server Error")
                resp.headers.update(self._limit_headers(token))
                return self._finish(method, path, query, payload, resp, fault, token=token)
            if fault in ("timeout", "drop"):
                return self._finish(method, path, query, payload, FakeResponse(0, fault=fault), fault, token=token)
            resp = self._auth_and_route(method, path, query, payload, key, token)
            resp.headers.update(self._limit_headers(token))
            if fault in ("timeout_after", "drop_after"):
                resp = FakeResponse(0, fault=fault.removesuffix("_after"))
            elif fault is not None and fault.endswith("_after"):  # e.g. "500_after": done, then a 5xx
                resp = FakeResponse(int(fault.removesuffix("_after")), b"Internal Server Error", resp.headers)
            return self._finish(method, path, query, payload, resp, fault, token=token)

    def _finish(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        payload: Mapping[str, Any],
        resp: FakeResponse,
        fault: str | None = None,
        via_batch: bool = False,
        token: str = "",
    ) -> FakeResponse:
        with self._lock:
            self.log.append(
                LoggedRequest(
                    method=method,
                    path=path,
                    params=tuple(sorted(k for k in query if k not in ("key", "token"))),
                    body_keys=tuple(sorted(payload)),
                    status=resp.status,
                    fault=fault,
                    via_batch=via_batch,
                    at=self.clock.monotonic(),
                    query={k: v for k, v in query.items() if k not in ("key", "token")},
                    body=copy.deepcopy(dict(payload)),
                    token=secret_fingerprint(token) if token else "",
                )
            )
            if not via_batch:
                self.counts["requests"] += 1
                self.counts[f"status:{resp.status}"] += 1
                if fault:
                    self.counts[f"fault:{fault}"] += 1
        return resp

    def _auth_and_route(
        self, method: str, path: str, query: Mapping[str, str], payload: Json, key: str, token: str
    ) -> FakeResponse:
        if not key:
            return FakeResponse(401, b"invalid key")
        if key != self.key:
            return FakeResponse(401, b"invalid key")
        if token not in self.tokens:
            return FakeResponse(401, b"invalid token")
        try:
            status, body = self._route(method, path, query, payload, token)
        except _HttpError as e:
            status, body = e.status, e.body
        if isinstance(body, str):
            return FakeResponse(status, body.encode(), {"Content-Type": "text/plain"})
        return FakeResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})

    # ------------------------------------------------------------------ routes

    _ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
        (m, re.compile(p), name)
        for m, p, name in (
            ("GET", r"^/batch/?$", "batch"),
            ("GET", r"^/boards/([^/]+)/?$", "get_board"),
            ("GET", r"^/boards/([^/]+)/cards(?:/([a-z]*))?/?$", "get_board_cards"),
            ("GET", r"^/boards/([^/]+)/customFields/?$", "get_board_custom_fields"),
            ("GET", r"^/boards/([^/]+)/actions/?$", "get_board_actions"),
            ("GET", r"^/cards/([^/]+)/?$", "get_card"),
            ("GET", r"^/members/me/?$", "get_me"),
            ("PUT", r"^/cards/([^/]+)/?$", "put_card"),
            ("PUT", r"^/cards/([^/]+)/idList/?$", "put_card_id_list"),
            ("POST", r"^/cards/([^/]+)/(?:idMembers|members)/?$", "add_member"),
            ("DELETE", r"^/cards/([^/]+)/idMembers/([^/]+)/?$", "remove_member"),
            ("PUT", r"^/cards/([^/]+)/customField/([^/]+)/item/?$", "put_item"),
            ("POST", r"^/cards/?$", "post_card"),
            ("POST", r"^/cards/([^/]+)/actions/comments/?$", "post_comment"),
            ("POST", r"^/customFields/?$", "post_custom_field"),
        )
    )

    def _route(self, method: str, path: str, query: Mapping[str, str], payload: Json, token: str) -> tuple[int, Any]:
        args: Json = {**query, **payload}
        for m, rx, name in self._ROUTES:
            match = rx.match(path)
            if match and m == method:
                handler: Callable[..., tuple[int, Any]] = getattr(self, f"_r_{name}")
                return handler(*match.groups(), args=args, token=token)
        if any(rx.match(path) for _, rx, _ in self._ROUTES):
            return 404, "Cannot " + method + " " + path
        return 404, NOT_FOUND

    def _board_or_404(self, ident: str, token: str) -> Json:
        board = self._find_board(ident)
        if board is None:
            if not re.fullmatch(r"[0-9a-zA-Z]{8}|[0-9a-f]{24}|sl[0-9a-f]{6}", ident):
                raise _HttpError(400, "invalid id")
            raise _HttpError(404, NOT_FOUND)
        if token in self.denied.get(board["id"], set()):
            raise _HttpError(401, "unauthorized permission requested")
        return board

    def _card_or_404(self, ident: str, token: str) -> Json:
        card = self.cards.get(ident)
        if card is None:
            raise _HttpError(404, NOT_FOUND)
        if token in self.denied.get(card["idBoard"], set()):
            raise _HttpError(401, "unauthorized card permission requested")
        return card

    def _card_view(self, board: Json, card: Json, fields: str | None, items: bool) -> Json:
        names = _CARD_DEFAULT_FIELDS if not fields or fields == "all" else fields.split(",")
        out: Json = {"id": card["id"]}
        labels = {lab["id"]: lab for lab in board["labels"]}
        for name in names:
            if name == "labels":
                out["labels"] = [labels[i] for i in card["idLabels"] if i in labels]
            elif name in card and name != "customFieldItems":
                out[name] = copy.deepcopy(card[name])
        if items:
            out["customFieldItems"] = copy.deepcopy(card.get("customFieldItems") or [])
        return out

    def _cards_by_filter(self, board: Json, card_filter: str) -> list[Json]:
        """Trello's card filters: ``open`` is every card not archived, also in an archived list;
        ``visible`` leaves out those; ``closed`` is the archived cards."""
        if card_filter == "all":
            return list(board["cards"])
        if card_filter == "closed":
            return [c for c in board["cards"] if c["closed"]]
        open_lists = {lst["id"] for lst in board["lists"] if not lst.get("closed")}
        return [c for c in board["cards"] if not c["closed"] and (card_filter == "open" or c["idList"] in open_lists)]

    def _r_get_board(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        board = self._board_or_404(ident, token)
        fields = args.get("fields")
        base = ("id", "name", "desc", "closed", "url", "shortLink", "dateLastActivity")
        names = base if not fields or fields == "all" else ("id", *fields.split(","))
        out: Json = {n: board[n] for n in names if n in board}
        if "limits" in names:
            out["limits"] = {"cards": {"openPerBoard": {"status": "ok", "disableAt": self.max_board_cards}}}
        lists = args.get("lists")
        if lists and lists != "none":
            out["lists"] = [copy.deepcopy(lst) for lst in board["lists"] if lists == "all" or not lst.get("closed")]
        cards = args.get("cards")
        if cards and cards != "none":
            chosen = self._cards_by_filter(board, cards)
            if len(chosen) > self.max_board_cards:
                return 449, {
                    "error": "API_TOO_MANY_CARDS_REQUESTED",
                    "message": "Requested too many cards",
                }
            items = _flag(args.get("card_customFieldItems"))
            out["cards"] = [self._card_view(board, c, args.get("card_fields"), items) for c in chosen]
        if _flag(args.get("customFields")):
            out["customFields"] = copy.deepcopy(board["customFields"])
        if args.get("members") in ("all", "normal", "admins", "owners", "members"):
            out["members"] = copy.deepcopy(board["members"])
        if args.get("labels") == "all":
            out["labels"] = copy.deepcopy(board["labels"])
        return 200, out

    def _r_get_board_cards(self, ident: str, card_filter: str | None, *, args: Json, token: str) -> tuple[int, Any]:
        board = self._board_or_404(ident, token)
        chosen = self._cards_by_filter(board, card_filter or args.get("filter") or "open")
        if "limit" in args or "before" in args or "since" in args:
            try:
                limit = int(args.get("limit") or 1000)
            except ValueError:
                return 400, "invalid value for limit"
            if not 0 < limit <= 1000:
                return 400, "invalid value for limit"
            chosen.sort(key=lambda c: c["id"], reverse=True)
            if args.get("before"):
                chosen = [c for c in chosen if c["id"] < args["before"]]
            if args.get("since"):
                chosen = [c for c in chosen if c["id"] > args["since"]]
            chosen = chosen[:limit]
        items = _flag(args.get("customFieldItems"))
        return 200, [self._card_view(board, c, args.get("fields"), items) for c in chosen]

    def _r_get_board_custom_fields(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._board_or_404(ident, token)["customFields"])

    def _r_get_board_actions(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        board = self._board_or_404(ident, token)
        try:
            limit = int(args.get("limit") or 50)
        except ValueError:
            return 400, "invalid value for limit"
        if not 0 <= limit <= 1000:
            return 400, "invalid value for limit"
        types = set(str(args.get("filter") or "all").split(","))
        since, before = args.get("since"), args.get("before")
        out = []
        for a in reversed(self.actions):  # newest first, as Trello answers
            if a["data"]["board"]["id"] != board["id"]:
                continue
            if "all" not in types and a["type"] not in types:
                continue
            if since and a["id"] <= since:
                continue
            if before and a["id"] >= before:
                continue
            out.append(copy.deepcopy(a))
            if len(out) >= limit:
                break
        return 200, out

    def _r_get_me(self, *, args: Json, token: str) -> tuple[int, Any]:
        member_id = self.token_members.get(token)
        for board in self.boards.values():
            for m in board["members"]:
                if m["id"] == member_id:
                    return 200, copy.deepcopy(m)
        return 404, NOT_FOUND

    def _r_get_card(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        board = self.boards[card["idBoard"]]
        return 200, self._card_view(board, card, args.get("fields"), _flag(args.get("customFieldItems")))

    def _record(self, card: Json, atype: str, field_name: str, value: Any) -> None:
        card["dateLastActivity"] = _now_iso()
        self.changes.append((card["id"], field_name, copy.deepcopy(value)))
        self.actions.append(
            {
                "id": self.new_id(),
                "type": atype,
                "date": card["dateLastActivity"],
                "idMemberCreator": "fake-member",
                "data": {
                    "card": {"id": card["id"], "name": card["name"]},
                    "board": {"id": card["idBoard"]},
                    "field": field_name,
                },
            }
        )

    def _set(self, card: Json, name: str, value: Any, atype: str = "updateCard") -> None:
        if card.get(name) != value:
            card[name] = value
            self._record(card, atype, name, value)

    @staticmethod
    def _ids(value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(v) for v in value if v]
        return [v for v in str(value or "").split(",") if v]

    def _check_list(self, board: Json, list_id: str) -> None:
        if not any(lst["id"] == list_id for lst in board["lists"]):
            raise _HttpError(400, "invalid value for idList")

    def _check_members(self, board: Json, ids: list[str]) -> None:
        known = {m["id"] for m in board["members"]}
        if any(i not in known for i in ids):
            raise _HttpError(400, "invalid value for idMembers")

    def _r_put_card(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        board = self.boards[card["idBoard"]]
        if "idList" in args:
            self._check_list(board, str(args["idList"]))
        if "idMembers" in args:
            self._check_members(board, self._ids(args["idMembers"]))
        if "idMembers" in args:
            self._set(card, "idMembers", self._ids(args["idMembers"]))
        if "idList" in args:
            self._set(card, "idList", str(args["idList"]))
        if "idLabels" in args:
            self._set(card, "idLabels", self._ids(args["idLabels"]))
        if "closed" in args:
            self._set(card, "closed", _strict_bool(args["closed"], "closed"))
        for name in ("name", "desc", "due", "pos"):
            if name in args:
                self._set(card, name, args[name])
        return 200, self._card_view(board, card, None, False)

    def _r_put_card_id_list(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        board = self.boards[card["idBoard"]]
        self._check_list(board, str(args.get("value", "")))
        self._set(card, "idList", str(args["value"]))
        return 200, self._card_view(board, card, None, False)

    def _r_add_member(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        board = self.boards[card["idBoard"]]
        member = str(args.get("value", ""))
        self._check_members(board, [member])
        if member in card["idMembers"]:
            return 400, "member is already on the card"
        self._set(card, "idMembers", [*card["idMembers"], member], "addMemberToCard")
        return 200, [m for m in board["members"] if m["id"] in card["idMembers"]]

    def _r_remove_member(self, ident: str, member: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        if member not in card["idMembers"]:
            return 400, "member is not on the card"
        self._set(card, "idMembers", [m for m in card["idMembers"] if m != member], "removeMemberFromCard")
        return 200, card["idMembers"]

    def _r_put_item(self, ident: str, field_id: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        board = self.boards[card["idBoard"]]
        cf = next((f for f in board["customFields"] if f["id"] == field_id), None)
        if cf is None:
            return 404, NOT_FOUND
        items = card.setdefault("customFieldItems", [])
        current = next((i for i in items if i["idCustomField"] == field_id), None)
        new: Json | None
        if cf["type"] == "list":
            if args.get("value"):  # list fields take an option id; a value would be dropped
                return 400, "Invalid custom field item value."
            value = str(args.get("idValue") or "")
            if value and not any(o["id"] == value for o in cf.get("options") or []):
                return 400, "invalid value for idValue"
            new = {"idValue": value} if value else None
        else:
            if args.get("idValue"):
                return 400, "Invalid custom field item value."
            raw = args.get("value")
            if raw:
                _check_item_value(str(cf["type"]), raw)
            new = {"value": raw} if raw else None
        old = None if current is None else {k: current.get(k) for k in ("idValue", "value")}
        old_clean = None if old is None else {k: v for k, v in old.items() if v}
        if old_clean == new:
            return 200, current or {}
        items[:] = [i for i in items if i["idCustomField"] != field_id]
        item: Json = {}
        if new is not None:
            item = {
                "id": self.new_id(),
                "idCustomField": field_id,
                "idModel": card["id"],
                "modelType": "card",
                **new,
            }
            items.append(item)
        self._record(card, "updateCustomFieldItem", f"customField:{cf['name']}", new)
        return 200, item

    def _r_post_card(self, *, args: Json, token: str) -> tuple[int, Any]:
        list_id = str(args.get("idList") or "")
        if not list_id:
            return 400, "invalid value for idList"
        board = next(
            (b for b in self.boards.values() if any(lst["id"] == list_id for lst in b["lists"])),
            None,
        )
        if board is None:
            return 400, "invalid value for idList"
        if token in self.denied.get(board["id"], set()):
            return 401, "unauthorized permission requested"
        members = self._ids(args.get("idMembers"))
        self._check_members(board, members)
        card = self._complete_card(
            {
                "name": str(args.get("name") or ""),
                "desc": str(args.get("desc") or ""),
                "idList": list_id,
                "idMembers": members,
                "idLabels": self._ids(args.get("idLabels")),
                "due": args.get("due") or None,
            },
            board,
            len(board["cards"]),
        )
        card["customFieldItems"] = []
        board["cards"].append(card)
        self.cards[card["id"]] = card
        self._record(card, "createCard", "card", card["name"])
        return 200, self._card_view(board, card, None, False)

    def _r_post_comment(self, ident: str, *, args: Json, token: str) -> tuple[int, Any]:
        card = self._card_or_404(ident, token)
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            return 400, "invalid value for text"
        action: Json = {
            "id": self.new_id(),
            "type": "commentCard",
            "date": _now_iso(),
            "idMemberCreator": "fake-member",
            "data": {"text": text, "card": {"id": card["id"], "name": card["name"]}, "board": {"id": card["idBoard"]}},
        }
        self.actions.append(action)
        self.comments.setdefault(card["id"], []).append(text)
        return 200, copy.deepcopy(action)

    def _r_post_custom_field(self, *, args: Json, token: str) -> tuple[int, Any]:
        board = self._board_or_404(str(args.get("idModel") or ""), token)
        if args.get("modelType") != "board" or not args.get("name"):
            return 400, "invalid value for modelType"
        ftype = str(args.get("type") or "")
        if ftype not in ("checkbox", "list", "number", "text", "date"):
            return 400, "invalid value for type"
        fid = self.new_id()
        options = []
        raw = args.get("options") or []
        for i, opt in enumerate(raw if isinstance(raw, list) else []):
            text = opt.get("value", {}).get("text") if isinstance(opt, dict) else str(opt)
            options.append({"id": self.new_id(), "idCustomField": fid, "value": {"text": text}, "pos": i})
        cf: Json = {
            "id": fid,
            "idModel": board["id"],
            "modelType": "board",
            "name": str(args["name"]),
            "type": ftype,
            "pos": args.get("pos", "bottom"),
        }
        if ftype == "list":
            cf["options"] = options
        board["customFields"].append(cf)
        return 200, copy.deepcopy(cf)

    def _r_batch(self, *, args: Json, token: str) -> tuple[int, Any]:
        urls = [u for u in str(args.get("urls") or "").split(",") if u]
        if not urls:
            return 400, "invalid value for urls"
        if len(urls) > 10:
            return 400, "Too many urls"
        out = []
        for route in urls:
            parts = urlsplit(route)
            if not parts.path.startswith("/") or parts.path.startswith("/1/"):
                out.append({"400": "invalid url"})
                continue
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            try:
                status, body = self._route("GET", parts.path, query, {}, token)
            except _HttpError as e:
                status, body = e.status, e.body
            self._finish("GET", parts.path, query, {}, FakeResponse(status), via_batch=True, token=token)
            out.append({str(status): body})
        return 200, out

    # ------------------------------------------------------------------ transports

    def install(self, rsps: Any, base_url: str = "https://api.trello.com/1") -> None:
        """Register the fake on a ``responses.RequestsMock`` for every method under ``base_url``."""
        import requests

        root = base_url.rstrip("/")
        prefix = urlsplit(root).path  # e.g. "/1"
        pattern = re.compile(re.escape(root) + r"(/.*)?$")

        def callback(request: Any) -> tuple[int, dict[str, str], bytes | Exception]:
            parts = urlsplit(request.url)
            path = parts.path
            if prefix and path.startswith(prefix):
                path = "/1" + path[len(prefix) :]
            url = path + ("?" + parts.query if parts.query else "")
            body = request.body
            if isinstance(body, str):
                body = body.encode()
            resp = self.handle(request.method, url, body, dict(request.headers))
            if resp.fault == "timeout":
                return 0, {}, requests.ReadTimeout("fake: read timed out")
            if resp.fault == "drop":
                return 0, {}, requests.ConnectionError("fake: connection dropped")
            return resp.status, resp.headers, resp.body

        for method in ("GET", "PUT", "POST", "DELETE"):
            rsps.add_callback(method, pattern, callback=callback)

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the fake on loopback in a thread; yields the base URL (``http://.../1``)."""
        server = self._make_server(host, port)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-trello", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}/1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def _make_server(self, host: str, port: int) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms stall
            wbufsize = -1  # buffered: one write per response, flushed after each request

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                resp = fake.handle(self.command, self.path, body, dict(self.headers.items()))
                if resp.fault == "timeout":
                    time.sleep(fake.timeout_delay)
                    self.close_connection = True
                    return
                if resp.fault == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return
                try:
                    self.send_response(resp.status, _REASONS.get(resp.status))
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(resp.body)))
                    self.end_headers()
                    self.wfile.write(resp.body)
                except OSError:
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = _any

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server


_OAUTH_PAIR = re.compile(r'(\w+)="([^"]*)"')
_REASONS = {449: "Retry With", 429: "Too Many Requests"}


def load_board_file(path: Path) -> Json:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "lists" not in data or "cards" not in data:
        raise SystemExit(f"{path}: not a Trello board export (needs 'lists' and 'cards')")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake Trello on loopback with the given board files until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tasksync.testing.fake_trello", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--board", type=Path, action="append", default=[], help="board JSON")
    parser.add_argument("--cards", type=int, default=0, help="generate a board of N cards")
    parser.add_argument("--key", default="fake-key")
    parser.add_argument("--token", default="fake-token")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--no-limits", action="store_true", help="do not enforce rate limits")
    args = parser.parse_args(argv)
    fake = FakeTrello(
        key=args.key,
        tokens=[args.token],
        fault_rate=args.fault_rate,
        enforce_limits=not args.no_limits,
    )
    ids = [fake.add_board(load_board_file(p)) for p in args.board]
    if args.cards or not ids:
        ids.append(fake.make_board(cards=args.cards or 50))
    with fake.serve(args.host, args.port) as url:
        print(f"fake Trello at {url}")
        print(f"  export TASKSYNC_TRELLO_API_URL={url}")
        print(f"  export TASKSYNC_TRELLO_KEY={fake.key}")
        print(f"  export TASKSYNC_TRELLO_TOKEN={args.token}")
        for bid in ids:
            b = fake.boards[bid]
            print(f"  board {b['name']!r}: id {bid} (shortLink {b['shortLink']})")
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
