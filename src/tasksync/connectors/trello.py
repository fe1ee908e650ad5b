"""The Trello connector: one board through py-trello's ``fetch_json`` and the shared HTTP layer.

Requests (routes from Trello's official OpenAPI spec, not py-trello's legacy object model):

- read: one ``GET /boards/{id}`` with nested lists, open cards (with their custom field items),
  custom fields, members and labels; several boards in one ``GET /batch`` (≤ 10 routes each,
  :mod:`tasksync.connectors.trello_boards`).
  A board too large for nested cards (HTTP 449/413 or ``API_TOO_MANY_CARDS_REQUESTED``) is read
  as the board without cards plus ``GET /boards/{id}/cards?limit=1000&before=...`` pages.
- write: one ``PUT /cards/{id}`` per card for members, list and archive state (and labels when
  priority is kept in labels), plus one ``PUT /cards/{id}/customField/{idCustomField}/item``
  when the priority custom field changes. Results are yielded as each write completes.
- create (:mod:`tasksync.connectors.trello_create`): the ``[tasksync:KEY]`` marker is looked
  up first, then ``POST /cards`` carries it in ``desc``; a create whose answer was lost is looked
  up again before it is retried, so it never duplicates. Then the link custom field and priority
  are set. Nothing is ever deleted.

Throttling, retries, timeouts and error classification live in :mod:`tasksync.connectors.transport`
(under :mod:`tasksync.connectors.http`);
this module adds which board or card a failure concerns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import urlencode

import requests
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from tasksync.connectors.transport import AnswerLost, Page, paginate, whole_group
from tasksync.connectors.trello_api import (
    ACTION_FILTER,
    ARCHIVED_CARD_FIELDS,
    BATCH_SIZE,
    BOARD_META_QUERY,
    BOARD_QUERY,
    CARD_FIELDS,
    CARD_READ,
    PAGE_SIZE,
    failed,
    make_client,
    object_id_at,
    parse_board_id,
    too_big,
    with_context,
)
from tasksync.connectors.trello_board import BoardFields, snapshot_from_board
from tasksync.connectors.trello_create import CreatingCards
from tasksync.errors import (
    ApiError,
    AuthError,
    ConfigError,
    NotFoundError,
    TransientError,
)
from tasksync.model import (
    BoardRef,
    Field,
    FieldValue,
    Snapshot,
    Task,
    TaskWrite,
    WriteResult,
    WriteStatus,
)
from tasksync.settings import Settings

__all__ = ["TrelloConnector", "open_board", "parse_board_id"]

Json = dict[str, Any]


class TrelloConnector(CreatingCards):
    """One Trello board. ``board`` is an id, shortLink or URL (default: the first configured).

    Connectors for several boards can share a ``session`` (and so one connection pool); the rate
    limiter is shared by every session in the process anyway. ``max_workers`` writes run at
    once, which keeps a high-latency connection near the token's budget of 10 requests/s.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        board: str | None = None,
        session: requests.Session | None = None,
        client: TrelloClient | None = None,
        max_workers: int = 4,
        page_size: int = PAGE_SIZE,
        check_every: int = 20,
    ) -> None:
        spec = board if board is not None else next(iter(settings.trello.boards), None)
        if not spec:
            raise ConfigError("trello.boards is empty: give a board id or https://trello.com/b/ URL")
        self.settings = settings
        self.board_id = parse_board_id(spec)
        self.board = BoardRef("trello", self.board_id)
        self.client: TrelloClient = client if client is not None else make_client(settings, session)
        self.max_workers = max(1, max_workers)
        self.page_size = max(1, min(page_size, PAGE_SIZE))
        self._data: Json | None = None  # the last board JSON read, kept up to date by writes
        self._since: str | None = None  # conditional writes look at card actions after this id
        self._touched: set[str] = set()  # cards touched since the read, not read again since
        self.check_every = max(1, check_every)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ requests

    @property
    def _label(self) -> str:
        name = (self._data or {}).get("name")
        return f"Trello board {self.board_id}" + (f" ({name!r})" if name else "")

    def _call(
        self,
        path: str,
        context: str,
        method: str = "GET",
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return self.client.fetch_json(
                path,
                http_method=method,
                query_params=dict(query or {}),
                post_args=dict(body) if body is not None else None,
            )
        except ApiError as e:
            err = with_context(e, context)
            if isinstance(e, AuthError) and e.status == 401:  # a wrong key or token (403: no access)
                err.args = (f"{err.args[0]}; check TASKSYNC_TRELLO_KEY and TASKSYNC_TRELLO_TOKEN",)
            raise err from None
        except ResourceUnavailable as e:  # only if a session without classification is used
            status = getattr(e, "_status", None)
            raise ApiError(f"{context}: HTTP {status}", status) from None
        except ValueError as e:  # a 200 whose body is not JSON
            raise TransientError(f"{context}: invalid JSON in answer ({e})") from None

    def _board_route(self) -> str:
        """The board read as a /batch route (commas inside values are escaped)."""
        return f"/boards/{self.board_id}?{urlencode(BOARD_QUERY)}"

    # ------------------------------------------------------------------ reading

    def read(self) -> Snapshot:
        """The board as a snapshot: one request, or the paged fallback for large boards."""
        try:
            data = self._call(f"/boards/{self.board_id}", self._label, query=BOARD_QUERY)
        except ApiError as e:
            if not too_big(e) or isinstance(e, (AuthError, NotFoundError)):
                raise
            data = self._read_paged()
        return self.accept(data)

    def accept(self, data: Any) -> Snapshot:
        """Take a board JSON read elsewhere (``/batch``) as this connector's current state."""
        if not isinstance(data, dict) or not isinstance(data.get("lists"), list):
            raise ApiError(f"{self._label}: the answer is not a board")
        data.setdefault("cards", [])
        # With cards to create, the archived ones too (a page per 1,000): their deals get none.
        archived = (
            self._cards(ARCHIVED_CARD_FIELDS, items=True, card_filter="closed") if self.settings.create.enabled else []
        )
        with self._lock:
            self._data = data
            # Changes made from now on are found among the actions after this id; a margin of
            # five minutes covers clock skew (it costs a few re-reads, never a miss).
            self._since = object_id_at(time.time() - 300)
            self._touched = set()
            return snapshot_from_board({**data, "cards": [*data["cards"], *archived]}, self.settings, self.board)

    def _read_paged(self) -> Json:
        """The board without nested cards, then its cards page by page (in board order)."""
        data = self._call(f"/boards/{self.board_id}", self._label, query=BOARD_META_QUERY)
        order = {lst["id"]: i for i, lst in enumerate(data.get("lists") or [])}
        cards = self._cards(fields=CARD_FIELDS, items=True)
        cards.sort(key=lambda c: (order.get(c.get("idList"), len(order)), float(c.get("pos") or 0)))
        data["cards"] = cards
        return dict(data)

    def _cards(self, fields: str, items: bool, card_filter: str = "open") -> list[Json]:
        """Every open card (or every one ``card_filter`` names), page by page (newest id first),
        without loss or repetition."""

        def fetch(before: str | None) -> Page[Json, str]:
            query = {"limit": str(self.page_size), "fields": fields, "filter": card_filter}
            if items:
                query["customFieldItems"] = "true"
            if before:
                query["before"] = before
            page = self._call(f"/boards/{self.board_id}/cards", f"{self._label} cards", query=query)
            if not isinstance(page, list):
                raise ApiError(f"{self._label}: the card page is not a list")
            oldest = min((str(c["id"]) for c in page), default=None)
            return Page(page, oldest, len(page) >= self.page_size)

        cards, _ = paginate(fetch, what=f"{self._label} cards")
        unique: dict[str, Json] = {}
        for card in cards:
            unique.setdefault(str(card["id"]), card)
        return list(unique.values())

    def _current(self) -> Json:
        with self._lock:
            if self._data is not None:
                return self._data
        self.read()
        with self._lock:
            if self._data is None:  # read() always sets it; this keeps the type checker honest
                raise ApiError(f"{self._label}: board could not be read")
            return self._data

    # ------------------------------------------------------------------ priority field

    def _fields(self, need_priority: bool) -> BoardFields:
        data = self._current()
        fields = BoardFields(data, self.settings)
        if not need_priority or self.settings.priority.use_labels:
            return fields
        if fields.priority_field is not None:
            return fields
        name = self.settings.priority.field
        if not self.settings.trello.create_priority_field:
            raise ConfigError(
                f"{self._label} has no custom field named {name!r} for priority: add a "
                f"dropdown field with options {', '.join(self.settings.priority.tiers)}, set "
                "trello.create_priority_field = true to let tasksync create it, or set "
                "priority.use_labels = true"
            )
        created = self._call(
            "/customFields",
            f"{self._label}: creating custom field {name!r}",
            method="POST",
            body={
                "idModel": data["id"],
                "modelType": "board",
                "name": name,
                "type": "list",
                "options": [
                    {"value": {"text": t}, "color": "none", "pos": 1024 * (i + 1)}
                    for i, t in enumerate(self.settings.priority.tiers)
                ],
                "pos": "bottom",
                "display_cardFront": True,
            },
        )
        with self._lock:
            data.setdefault("customFields", []).append(created)
            return BoardFields(data, self.settings)

    # ------------------------------------------------------------------ writing

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        """Send the writes (up to ``max_workers`` at once); yield a result per write.

        Conditional: before each group of ``check_every`` writes, one ``GET
        /boards/{id}/actions?since=...`` names the cards someone touched since the last look
        (the first look goes back to this connector's read); only those are read again
        (``/batch``, ten per request), and a write whose card no longer holds its ``before`` is
        not sent but reported :attr:`WriteStatus.CONFLICT`. A write that may have landed without
        an answer is :attr:`WriteStatus.UNKNOWN`. A group's results are handed on when the whole
        group has answered, so no write is in flight between two results: whatever a person
        changes after a result is seen by the next group's look.

        Raises :class:`AuthError` (token refused) and :class:`ConfigError` (no priority field)
        before or instead of writing; any other failure is a result naming the card.
        """
        writes = list(writes)
        if not writes:
            return
        fields = self._fields(any(Field.PRIORITY in w.values for w in writes))
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="trello-write")
        try:
            for start in range(0, len(writes), self.check_every):
                chunk = writes[start : start + self.check_every]
                stale = self._stale(chunk)
                futures: list[Future[WriteResult]] = []
                for w in chunk:
                    if w.task_id in stale:
                        yield stale[w.task_id]
                    else:
                        futures.append(pool.submit(self._write_one, w, fields))
                yield from whole_group(fut.result() for fut in as_completed(futures))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _card(self, card_id: str) -> Json | None:
        with self._lock:
            data = self._data or {}
            return next((c for c in data.get("cards") or [] if c.get("id") == card_id), None)

    def _task_of(self, card: Json) -> Task | None:
        """The card as the neutral model sees it (None when archived or in an archived list)."""
        with self._lock:
            view = {k: v for k, v in (self._data or {}).items() if k != "cards"}
        view["cards"] = [card]
        snap = snapshot_from_board(view, self.settings, self.board)
        return snap.tasks[0] if snap.tasks else None

    def _stale(self, writes: Sequence[TaskWrite]) -> dict[str, WriteResult]:
        """The writes whose card no longer holds their ``before``, as CONFLICT results."""
        guarded = {w.task_id: w for w in writes if w.before}
        if not guarded:
            return {}
        touched, self._since = self._actions(self._since or object_id_at(time.time() - 300))
        self._touched |= touched  # a card reported now may be written only in a later group
        fresh = [cid for cid in guarded if cid in self._touched]
        self._touched -= set(fresh)
        for start in range(0, len(fresh), BATCH_SIZE):
            routes = [f"/cards/{cid}?{urlencode(CARD_READ)}" for cid in fresh[start : start + BATCH_SIZE]]
            answers = self._call("/batch", f"{self._label}: re-reading changed cards", query={"urls": ",".join(routes)})
            for item in answers if isinstance(answers, list) else []:
                status, body = next(iter(item.items())) if item else ("0", None)
                if str(status) == "200" and isinstance(body, dict) and body.get("id"):
                    self._refresh(body)
        out: dict[str, WriteResult] = {}
        for cid, w in guarded.items():
            card = self._card(cid)
            if card is None:
                continue  # not on the board as read: the PUT answers for itself (404)
            task = self._task_of(card)
            changed = [
                f"{f.value} is {task.value(f) if task else 'archived'!r}, the plan expected {expected!r}"
                for f, expected in w.before.items()
                if task is None or task.value(f) != expected
            ]
            if changed:
                label = f"{self._label}: card {cid} {card.get('name')!r}"
                message = f"{label}: changed since the plan ({'; '.join(changed)}); not written"
                out[cid] = WriteResult(cid, False, message, status=WriteStatus.CONFLICT)
        return out

    def _refresh(self, fresh: Json) -> None:
        """Take a card read again into the cached board."""
        with self._lock:
            cards = (self._data or {}).setdefault("cards", [])
            for i, card in enumerate(cards):
                if card.get("id") == fresh["id"]:
                    cards[i] = {**card, **fresh}
                    return
            cards.append(fresh)

    def _write_one(self, w: TaskWrite, fields: BoardFields) -> WriteResult:
        card = self._card(w.task_id)
        label = f"card {w.task_id}" + (f" {card.get('name')!r}" if card else "")
        context = f"{self._label}: {label}"
        try:
            body, item = self._request_for(w, card, fields)
        except KeyError as e:
            return WriteResult(w.task_id, False, f"{context}: {e.args[0]}")
        landed = False
        try:
            if body:
                self._call(f"/cards/{w.task_id}", context, method="PUT", body=body)
                landed = True
            if item is not None:
                fid, value = item
                self._call(f"/cards/{w.task_id}/customField/{fid}/item", context, method="PUT", body=value)
        except AuthError:
            raise
        except NotFoundError as e:
            return failed(w.task_id, f"{e} (the card was deleted or moved?)", landed)
        except AnswerLost as e:
            return WriteResult(w.task_id, False, str(e), retriable=True, status=WriteStatus.UNKNOWN)
        except TransientError as e:
            return failed(w.task_id, str(e), landed, retriable=True)
        except ApiError as e:
            return failed(w.task_id, str(e), landed)
        self._remember(w.task_id, body, item)
        return WriteResult(w.task_id, True)

    def _request_for(
        self, w: TaskWrite, card: Json | None, fields: BoardFields
    ) -> tuple[Json, tuple[str, Json] | None]:
        """The ``PUT /cards/{id}`` body and the custom field item write for one TaskWrite."""
        body: Json = {}
        item: tuple[str, Json] | None = None
        for f, value in w.values.items():
            if f is Field.ASSIGNEES:
                body["idMembers"] = ",".join(value) if isinstance(value, tuple) else ""
            elif f is Field.STAGE:
                if not isinstance(value, str) or not value:
                    raise KeyError(f"no list given for the stage ({value!r})")
                body["idList"] = value
            elif f is Field.CLOSED:
                body["closed"] = bool(value)
            elif f is Field.PRIORITY:
                if self.settings.priority.use_labels:
                    body["idLabels"] = ",".join(self._labels_with(w.task_id, card, fields, value))
                else:
                    item = self._priority_item(fields, value)
        return body, item

    def _priority_item(self, fields: BoardFields, value: FieldValue) -> tuple[str, Json]:
        if fields.priority_field is None:
            raise KeyError(f"the board has no custom field named {self.settings.priority.field!r}")
        fid = str(fields.priority_field["id"])
        if value is None:
            return fid, {"idValue": ""}
        option = fields.option_id.get(str(value).casefold())
        if option is None:
            raise KeyError(f"custom field {self.settings.priority.field!r} has no option {value!r}")
        return fid, {"idValue": option}

    def _labels_with(self, card_id: str, card: Json | None, fields: BoardFields, value: FieldValue) -> list[str]:
        if card is None:
            card = self._call(f"/cards/{card_id}", f"{self._label}: card {card_id}", query={"fields": "idLabels"})
        return fields.labels_with((card or {}).get("idLabels") or [], value)

    def _remember(self, card_id: str, body: Json, item: tuple[str, Json] | None) -> None:
        """Keep the cached board in step with what was written."""
        with self._lock:
            card = self._card(card_id)
            if card is None:
                return
            if "idMembers" in body:
                card["idMembers"] = [m for m in str(body["idMembers"]).split(",") if m]
            if "idList" in body:
                card["idList"] = body["idList"]
            if "closed" in body:
                card["closed"] = body["closed"]
            if "idLabels" in body:
                card["idLabels"] = [m for m in str(body["idLabels"]).split(",") if m]
            if item is not None:
                fid, value = item
                items = [i for i in card.get("customFieldItems") or [] if i.get("idCustomField") != fid]
                if value.get("idValue") or value.get("value"):
                    items.append({"idCustomField": fid, "idModel": card_id, **value})
                card["customFieldItems"] = items

    def read_many(self, boards: Sequence[str]) -> list[Snapshot | ApiError]:
        """Several boards (ids, short links or URLs) on this connector's client, ten per
        ``GET /batch``; see :func:`tasksync.connectors.trello_boards.read_boards`."""
        from tasksync.connectors.trello_boards import read_boards

        others = [TrelloConnector(self.settings, board=b, client=self.client) for b in boards]
        return read_boards(others)

    # ------------------------------------------------------------------ change detection

    def _actions(self, since: str) -> tuple[set[str], str]:
        """Cards touched by card actions newer than ``since`` (an action id), and the newest id."""
        path = f"/boards/{self.board_id}/actions"
        context = f"{self._label} actions"
        touched: set[str] = set()
        newest = since

        def fetch(before: str | None) -> Page[Json, str]:
            nonlocal newest
            query = {"since": since, "limit": str(PAGE_SIZE), "filter": ACTION_FILTER}
            if before:
                query["before"] = before
            page = self._call(path, context, query=query)
            if not isinstance(page, list):
                raise ApiError(f"{context}: the answer is not a list")
            for action in page:
                newest = max(newest, str(action["id"]))
                card = (action.get("data") or {}).get("card") or {}
                if card.get("id"):
                    touched.add(str(card["id"]))
            oldest = min((str(a["id"]) for a in page), default=None)
            return Page(page, oldest, len(page) >= PAGE_SIZE)

        paginate(fetch, what=context)
        return touched, newest

    def changed_since(self, bookmark: str | None) -> tuple[set[str] | None, str]:
        """Cards changed since ``bookmark`` (an action id), and the bookmark for next time.

        Without a bookmark only the newest card action is fetched and ``None`` says "read the
        whole board" (on a board without card actions the bookmark is an id made from the time
        five minutes ago: Trello takes ids and dates for ``since``, so clock skew can cost a
        re-read but never a miss).
        """
        if bookmark is None:
            path = f"/boards/{self.board_id}/actions"
            page = self._call(path, f"{self._label} actions", query={"limit": "1", "filter": ACTION_FILTER})
            return None, (str(page[0]["id"]) if page else object_id_at(time.time() - 300))
        return self._actions(bookmark)


def open_board(settings: Settings, board: str | None = None) -> TrelloConnector:
    """The ``tasksync.connectors`` factory: the board named by ``board`` (``--board``), or the
    one configured board; with several configured, ``board`` is required so that a run never
    lands on a board by accident."""
    boards = settings.trello.boards
    if board is None and len(boards) > 1:
        raise ConfigError(
            f"trello.boards names {len(boards)} boards; choose one with --board "
            f"({', '.join(boards)}), or keep one config (and state store) per board"
        )
    return TrelloConnector(settings, board=board)
