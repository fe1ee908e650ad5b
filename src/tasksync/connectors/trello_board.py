"""Trello's board JSON (API response or the UI's "Export as JSON") ↔ the neutral model.

Both the local connector (a board kept as an export file) and the Trello connector (the same
shape from ``GET /boards/{id}?cards=open&...``) use these functions, so a board behaves the
same offline and online.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from tasksync.connectors.base import marker_for, parse_marker
from tasksync.model import (
    BoardRef,
    Field,
    FieldValue,
    Member,
    NewTask,
    Snapshot,
    Stage,
    Task,
    canonical,
)
from tasksync.settings import Settings

__all__ = [
    "BoardFields",
    "apply_write",
    "card_from_new_task",
    "new_object_id",
    "snapshot_from_board",
]

Json = dict[str, Any]


class BoardFields:
    """The custom fields and labels of one board that tasksync reads and writes."""

    def __init__(self, board: Mapping[str, Any], settings: Settings) -> None:
        self.settings = settings
        fields = board.get("customFields") or []
        wanted_priority = settings.priority.field.strip().casefold()
        wanted_link = settings.link.field.strip().casefold()
        # Fields may share a name: the priority is the first dropdown ("list") of its name (a
        # hand-saved export may leave the type out), whatever other fields are called the same.
        self.priority_field: Json | None = next(
            (
                f
                for f in fields
                if str(f.get("name", "")).strip().casefold() == wanted_priority and f.get("type", "list") == "list"
            ),
            None,
        )
        self.link_field: Json | None = next(
            (f for f in fields if str(f.get("name", "")).strip().casefold() == wanted_link), None
        )
        self.option_text: dict[str, str] = {}
        self.option_id: dict[str, str] = {}
        if self.priority_field is not None:
            for opt in self.priority_field.get("options") or []:
                text = str((opt.get("value") or {}).get("text", ""))
                self.option_text[opt["id"]] = text
                self.option_id[text.casefold()] = opt["id"]
        self.link_option_text: dict[str, str] = {}  # a link field that is a dropdown
        if self.link_field is not None and self.link_field.get("type") == "list":
            for opt in self.link_field.get("options") or []:
                self.link_option_text[opt["id"]] = str((opt.get("value") or {}).get("text", ""))
        self.labels: dict[str, str] = {lab["id"]: str(lab.get("name") or "") for lab in board.get("labels") or []}
        tiers = settings.priority.tiers
        self.tier_names = {t.casefold(): t for t in tiers}
        # Trello lets labels share a name (two "P2" in different colours): the board's first one
        # is written; every one is read as its tier and taken off when the tier changes.
        self.label_by_name: dict[str, str] = {}
        for lid, name in self.labels.items():
            if name:
                self.label_by_name.setdefault(name.casefold(), lid)
        self.tier_label_ids = {lid for lid, name in self.labels.items() if name.casefold() in self.tier_names}

    @property
    def priority_options(self) -> tuple[str, ...]:
        if self.settings.priority.use_labels:
            return tuple(t for t in self.settings.priority.tiers if t.casefold() in self.label_by_name)
        return tuple(self.option_text[o] for o in self.option_text)

    def labels_with(self, label_ids: Sequence[str], tier: FieldValue) -> list[str]:
        """A card's labels with its priority set to ``tier`` (None: no tier): every tier label
        taken off, the tier's label put on; raises KeyError when the board has no such label."""
        ids = [lid for lid in label_ids if lid not in self.tier_label_ids]
        if isinstance(tier, str):
            lid = self.label_by_name.get(tier.casefold())
            if lid is None:
                raise KeyError(f"no label named {tier!r} on the board")
            ids.append(lid)
        return ids

    def link_item(self, key: str) -> Json | None:
        """The custom field item that puts the CRM key ``key`` in the link field, in the field's
        type (Trello refuses a text value in a number field); None when it cannot hold it."""
        kind = self.link_field.get("type", "text") if self.link_field is not None else None
        if kind == "text":
            return {"value": {"text": key}}
        if kind == "number":
            try:
                float(key)
            except ValueError:
                return None
            return {"value": {"number": key}}
        if kind == "list":
            option = next((oid for oid, text in self.link_option_text.items() if text == key), None)
            return {"idValue": option} if option else None
        return None

    def item_value(self, item: Mapping[str, Any]) -> str | None:
        """The text of a custom field item: option text, or its text/number/date value."""
        if item.get("idValue"):
            return self.option_text.get(item["idValue"]) or self.link_option_text.get(item["idValue"])
        value = item.get("value") or {}
        for kind in ("text", "number", "date", "checked"):
            if kind in value:
                return str(value[kind])
        return None


def _items_by_card(board: Mapping[str, Any]) -> dict[str, list[Json]]:
    """Custom field items per card: the export keeps them on the board, the API on each card."""
    items: dict[str, list[Json]] = {}
    for item in board.get("customFieldItems") or []:
        items.setdefault(item.get("idModel", ""), []).append(item)
    for card in board.get("cards") or []:
        for item in card.get("customFieldItems") or []:
            items.setdefault(card["id"], []).append(item)
    return items


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _member_ids(value: object) -> list[str]:
    """A card's ``idMembers``: a list of ids; a single id written as text is one member, not
    one member per character."""
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def created_at_of(object_id: str) -> datetime | None:
    """Trello ids are MongoDB ObjectIds: the first 8 hex digits are the creation time."""
    try:
        return datetime.fromtimestamp(int(object_id[:8], 16), tz=UTC)
    except ValueError:
        return None


def snapshot_from_board(board: Mapping[str, Any], settings: Settings, ref: BoardRef) -> Snapshot:
    """Map a Trello board JSON to a :class:`Snapshot`: open cards in open lists are its tasks;
    the CRM links of the others (archived, or in an archived list) are its ``archived_refs``."""
    fields = BoardFields(board, settings)
    open_lists = {lst["id"] for lst in board.get("lists") or [] if not lst.get("closed")}
    stages = tuple(
        Stage(lst["id"], str(lst.get("name", "")), float(lst.get("pos") or 0))
        for lst in board.get("lists") or []
        if lst["id"] in open_lists
    )
    items = _items_by_card(board)
    use_labels = settings.priority.use_labels
    pin = settings.policy.pin_label.casefold()
    link_by = settings.link.by
    link_id = fields.link_field["id"] if fields.link_field else None
    prio_id = fields.priority_field["id"] if fields.priority_field else None
    tasks: list[Task] = []
    archived: dict[str, str] = {}
    for card in board.get("cards") or []:
        custom: dict[str, str] = {}
        priority: str | None = None
        crm_ref: str | None = None
        for item in items.get(card["id"], ()):
            value = fields.item_value(item)
            if value is None:
                continue
            if item.get("idCustomField") == prio_id:
                priority = value
            elif item.get("idCustomField") == link_id:
                crm_ref = value.strip() or None
            custom[item.get("idCustomField", "")] = value
        label_ids = card.get("idLabels") or [lab["id"] for lab in card.get("labels") or []]
        label_names = tuple(fields.labels.get(lid, "") for lid in label_ids)
        if use_labels:
            priority = next(
                (fields.tier_names[n.casefold()] for n in label_names if n.casefold() in fields.tier_names),
                None,
            )
        desc = str(card.get("desc") or "")
        marker = parse_marker(desc)
        if marker:
            crm_ref = marker
        elif link_by == "marker":
            crm_ref = None
        elif link_by == "account_name":
            crm_ref = str(card.get("name") or "").strip() or None
        if card.get("closed") or card.get("idList") not in open_lists:
            if crm_ref is not None:
                archived[card["id"]] = crm_ref
            continue
        tasks.append(
            Task(
                id=card["id"],
                title=str(card.get("name") or ""),
                stage_id=card["idList"],
                assignees=canonical(_member_ids(card.get("idMembers"))),
                priority=priority,
                due=_parse_date(card.get("due")),
                labels=tuple(n for n in label_names if n),
                custom_fields=custom,
                description=desc,
                crm_ref=crm_ref,
                created_at=created_at_of(card["id"]),
                version=card.get("dateLastActivity"),
                closed=bool(card.get("closed")),
                pinned=any(n.casefold() == pin for n in label_names),
            )
        )
    return Snapshot(
        board=ref,
        name=str(board.get("name") or ref.id),
        members=_members(board),
        stages=tuple(sorted(stages, key=lambda s: s.position)),
        tasks=tuple(tasks),
        priority_options=fields.priority_options,
        read_at=datetime.now(UTC),
        archived_refs=archived,
    )


def _members(board: Mapping[str, Any]) -> tuple[Member, ...]:
    """The board's members (a name from the full name, else the username, else the id)."""
    return tuple(
        Member(
            id=m["id"],
            name=str(m.get("fullName") or m.get("username") or m["id"]),
            username=m.get("username"),
            email=m.get("email"),
        )
        for m in board.get("members") or []
    )


def new_object_id() -> str:
    """A fresh 24-hex id in Trello's ObjectId form (time prefix, random rest)."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


def _set_priority(board: MutableMapping[str, Any], card: Json, fields: BoardFields, value: FieldValue) -> None:
    if fields.settings.priority.use_labels:
        card["idLabels"] = fields.labels_with(card.get("idLabels") or [], value)
        return
    if fields.priority_field is None:
        raise KeyError(f"the board has no custom field named {fields.settings.priority.field!r}")
    fid = fields.priority_field["id"]
    items = [
        i
        for i in board.setdefault("customFieldItems", [])
        if not (i.get("idModel") == card["id"] and i.get("idCustomField") == fid)
    ]
    # Items kept on the card (API shape) are replaced too.
    card_items = [i for i in card.get("customFieldItems") or [] if i.get("idCustomField") != fid]
    if "customFieldItems" in card:
        card["customFieldItems"] = card_items
    if isinstance(value, str):
        opt = fields.option_id.get(value.casefold())
        if opt is None:
            raise KeyError(f"custom field {fields.settings.priority.field!r} has no option {value!r}")
        items.append(
            {
                "id": new_object_id(),
                "idCustomField": fid,
                "idModel": card["id"],
                "modelType": "card",
                "idValue": opt,
                "value": None,
            }
        )
    board["customFieldItems"] = items


def apply_write(board: MutableMapping[str, Any], card: Json, fields: BoardFields, f: Field, value: FieldValue) -> None:
    """Set one field of one card in a board JSON, as the Trello API would."""
    if f is Field.ASSIGNEES:
        card["idMembers"] = list(value) if isinstance(value, tuple) else []
    elif f is Field.STAGE:
        card["idList"] = value
    elif f is Field.PRIORITY:
        _set_priority(board, card, fields, value)
    elif f is Field.CLOSED:
        card["closed"] = bool(value)
    card["dateLastActivity"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def card_from_new_task(new: NewTask, board_id: str) -> Json:
    """A card for a CRM record: the marker in the description makes it findable on retry."""
    desc = (new.description + "\n\n" if new.description else "") + marker_for(new.key)
    return {
        "id": new_object_id(),
        "name": new.title,
        "desc": desc,
        "idList": new.stage_id,
        "idBoard": board_id,
        "idMembers": list(new.assignees),
        "idLabels": [],
        "due": f"{new.due.isoformat()}T12:00:00.000Z" if new.due else None,
        "closed": False,
        "pos": "bottom",
        "dateLastActivity": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def set_link_item(board: MutableMapping[str, Any], card: Json, fields: BoardFields, key: str) -> None:
    """Put the CRM key in the link custom field of a new card, when the board has a field that
    can hold it."""
    item = fields.link_item(key)
    if fields.link_field is None or item is None:
        return
    board.setdefault("customFieldItems", []).append(
        {
            "id": new_object_id(),
            "idCustomField": fields.link_field["id"],
            "idModel": card["id"],
            "modelType": "card",
            **item,
        }
    )
