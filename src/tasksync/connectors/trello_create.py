"""Creating cards and comments on a Trello board, never twice: part of :class:`TrelloConnector`.

A create looks the ``[tasksync:KEY]`` marker up first; ``POST /cards`` carries it in ``desc``
(with name, list, members, due and a priority label); a create whose answer was lost is looked
up again before it is retried. Then the link custom field and the priority are set, also on a
card found by its marker (a run killed right after its POST). A comment is never repeated
after a lost answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tasksync.connectors.base import parse_marker
from tasksync.connectors.transport import post_once
from tasksync.connectors.trello_api import CARD_FIELDS, CARD_READ
from tasksync.connectors.trello_board import BoardFields, card_from_new_task
from tasksync.errors import ApiError, AuthError, NotFoundError, TransientError
from tasksync.model import Field, NewTask, Task, TaskWrite, WriteResult

if TYPE_CHECKING:
    from tasksync.settings import Settings

__all__ = ["CreatingCards"]

Json = dict[str, Any]


class CreatingCards:
    """The creating half of :class:`~tasksync.connectors.trello.TrelloConnector` (a mixin: the
    connector owns the state and the requests below)."""

    settings: Settings
    _data: Json | None
    _lock: threading.RLock

    if TYPE_CHECKING:  # the connector's, used here

        @property
        def _label(self) -> str: ...
        def _call(
            self,
            path: str,
            context: str,
            method: str = "GET",
            query: Mapping[str, str] | None = None,
            body: Mapping[str, Any] | None = None,
        ) -> Any: ...
        def _cards(self, fields: str, items: bool) -> list[Json]: ...
        def _current(self) -> Json: ...
        def _fields(self, need_priority: bool) -> BoardFields: ...
        def _card(self, card_id: str) -> Json | None: ...
        def _task_of(self, card: Json) -> Task | None: ...
        def _refresh(self, fresh: Json) -> None: ...
        def _request_for(
            self, w: TaskWrite, card: Json | None, fields: BoardFields
        ) -> tuple[Json, tuple[str, Json] | None]: ...
        def _remember(self, card_id: str, body: Json, item: tuple[str, Json] | None) -> None: ...

    # ------------------------------------------------------------------ creating

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        """Create cards for CRM records that have none, never twice for one key."""
        new_tasks = list(new_tasks)
        if not new_tasks:
            return
        fields = self._fields(any(n.priority for n in new_tasks))
        data = self._current()
        with self._lock:
            markers = {
                key: str(c["id"]) for c in data.get("cards") or [] if (key := parse_marker(str(c.get("desc") or "")))
            }
            lists = {str(lst["id"]) for lst in data.get("lists") or []}
        for new in new_tasks:
            context = f"{self._label}: new card {new.title!r} ({new.key})"
            card_id = markers.get(new.key)
            if card_id is None:
                if new.stage_id not in lists:
                    raise NotFoundError(f"{self._label}: list {new.stage_id} not found for new card {new.title!r}")
                try:
                    card_id = str(self._post_card(new, data, fields, context)["id"])
                except AuthError:
                    raise
                except ApiError as e:
                    yield WriteResult("", False, str(e), key=new.key, retriable=isinstance(e, TransientError))
                    continue
                markers[new.key] = card_id
            try:
                # Also for a card found by its marker: a run killed right after its POST left it
                # without CRM ID and priority, and this is the only moment they can be set.
                self._complete(card_id, new, fields, context)
            except AuthError:
                raise
            except (ApiError, KeyError) as e:
                # The calls name the card already (their context is this one): said once.
                msg = (str(e.args[0]) if isinstance(e, KeyError) else str(e)).removeprefix(f"{context}: ")
                yield WriteResult(
                    card_id, False, f"{context}: created, but {msg}", key=new.key, retriable=not isinstance(e, KeyError)
                )
                continue
            yield WriteResult(card_id, True, key=new.key)

    def _post_card(self, new: NewTask, data: Json, fields: BoardFields, context: str, attempts: int = 3) -> Json:
        """``POST /cards`` once; when its answer is lost, look for the marker before retrying.

        The POST carries all it can: name, list, members, due, the marker in ``desc`` and, when
        priority is kept in labels, the priority label (custom fields cannot be set by it).
        """
        draft = card_from_new_task(new, str(data.get("id") or ""))
        body = {
            "idList": draft["idList"],
            "name": draft["name"],
            "desc": draft["desc"],
            "idMembers": ",".join(draft["idMembers"]),
            "pos": "bottom",
        }
        if draft.get("due"):
            body["due"] = draft["due"]
        if new.priority and self.settings.priority.use_labels:
            label = fields.label_by_name.get(new.priority.casefold())
            if label is not None:
                body["idLabels"] = label
        last: ApiError | None = None
        for _ in range(attempts):
            try:
                card = self._call("/cards", context, method="POST", body=body)
            except TransientError as e:
                last = e
                found = self.find_created(new.key)
                if found is None:
                    continue
                card = self._card(found) or {**draft, "id": found}
            card = dict(card)
            card.setdefault("customFieldItems", [])
            with self._lock:
                if self._card(str(card["id"])) is None:
                    data.setdefault("cards", []).append(card)
            return card
        raise last if last is not None else ApiError(f"{context}: not created")

    def _complete(self, card_id: str, new: NewTask, fields: BoardFields, context: str) -> None:
        """Set what a created card still lacks: its CRM ID field, then its priority (if unset)."""
        card = self._card(card_id)
        if card is None or "customFieldItems" not in card:
            card = self._call(f"/cards/{card_id}", context, query=CARD_READ)
            self._refresh(card)
        items = card.get("customFieldItems") or []
        if fields.link_field is not None and self.settings.link.by == "custom_field":
            fid = str(fields.link_field["id"])
            value = fields.link_item(new.key)
            if value is not None and not any(i.get("idCustomField") == fid and fields.item_value(i) for i in items):
                self._call(f"/cards/{card_id}/customField/{fid}/item", context, "PUT", body=value)
                self._remember(card_id, {}, (fid, value))
        task = self._task_of(self._card(card_id) or card)
        if new.priority and task is not None and task.priority is None:
            body, item = self._request_for(TaskWrite(card_id, {Field.PRIORITY: new.priority}), card, fields)
            if body:
                self._call(f"/cards/{card_id}", context, "PUT", body=body)
            if item is not None:
                fid, value = item
                self._call(f"/cards/{card_id}/customField/{fid}/item", context, "PUT", body=value)
            self._remember(card_id, body, item)

    def find_created(self, key: str) -> str | None:
        """The id of the open card carrying ``key``'s marker (a fresh read of the cards)."""
        for card in self._cards(fields=CARD_FIELDS, items=True):
            if parse_marker(str(card.get("desc") or "")) == key:
                if self._data is not None:
                    self._refresh(card)
                return str(card["id"])
        return None

    # ------------------------------------------------------------------ comments

    def comment(self, task_id: str, text: str) -> WriteResult:
        """Comment on a card: ``POST /cards/{id}/actions/comments``, never repeated after a lost
        answer (it would be posted twice): that is :attr:`WriteStatus.UNKNOWN`."""
        context = f"{self._label}: comment on card {task_id}"
        path = f"/cards/{task_id}/actions/comments"
        return post_once(task_id, lambda: self._call(path, context, method="POST", query={"text": text}))
