"""Checks a board file (Trello's "Export as JSON" shape) before it is mapped.

A board kept on disk can be edited by hand, so the local connector checks the parts tasksync
reads and refuses the file in one line naming the card, list or item that cannot be read,
instead of failing somewhere in the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasksync.errors import ConfigError

__all__ = ["check_board_export"]


def _fail(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}")


def _objects(path: Path, data: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    """The ``key`` list of ``data``: every entry an object with a text ``id``."""
    entries = data.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _fail(path, key, f"expected a list, found {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _fail(path, f"{what} #{i + 1}", f"expected an object, found {_kind(entry)}")
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            name = f" {entry['name']!r}" if isinstance(entry.get("name"), str) else ""
            raise _fail(path, f"{what} #{i + 1}{name}", "has no text 'id'")
    return entries


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_items(path: Path, items: object, where: str) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise _fail(path, where, f"customFieldItems: expected a list, found {_kind(items)}")
    for i, item in enumerate(items):
        at = f"{where}: custom field item #{i + 1}"
        if not isinstance(item, Mapping):
            raise _fail(path, at, f"expected an object, found {_kind(item)}")
        for key in ("idCustomField", "idModel", "idValue"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise _fail(path, at, f"{key}: expected text, found {_kind(item[key])}")
        if item.get("value") is not None and not isinstance(item["value"], Mapping):
            raise _fail(path, at, f"value: expected an object such as {{\"text\": ...}}, found {_kind(item['value'])}")


def _check_ids(path: Path, value: object, where: str, key: str) -> None:
    if value is None or isinstance(value, str):
        return  # a single id written as text is read as a list of one
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise _fail(path, where, f"{key}: expected a list of ids, found {value!r:.60}")


def check_board_export(data: Mapping[str, Any], path: Path) -> None:
    """Raise :class:`ConfigError` (one line, naming the entry) for what the board mapping cannot read."""
    for lst in _objects(path, data, "lists", "list"):
        pos = lst.get("pos")
        if pos is not None and (isinstance(pos, bool) or not isinstance(pos, int | float)):
            raise _fail(path, f"list {lst.get('name') or lst['id']!r}", f"pos: expected a number, found {pos!r:.40}")
    _objects(path, data, "members", "member")
    _objects(path, data, "labels", "label")
    for field in _objects(path, data, "customFields", "custom field"):
        options = field.get("options")
        if options is not None and (
            not isinstance(options, list)
            or not all(isinstance(o, Mapping) and isinstance(o.get("id"), str) for o in options)
            or not all(o.get("value") is None or isinstance(o["value"], Mapping) for o in options)
        ):
            raise _fail(path, f"custom field {field.get('name')!r}", "options: expected objects with an 'id'")
    _check_items(path, data.get("customFieldItems"), "board")
    for i, card in enumerate(_objects(path, data, "cards", "card")):
        where = f"card #{i + 1} {card['id']}"
        if card.get("idList") is not None and not isinstance(card["idList"], str):
            raise _fail(path, where, f"idList: expected text, found {_kind(card['idList'])}")
        _check_ids(path, card.get("idMembers"), where, "idMembers")
        _check_ids(path, card.get("idLabels"), where, "idLabels")
        if card.get("idLabels") is None:
            _objects(path, card, "labels", f"{where}: label")
        if card.get("due") is not None and not isinstance(card["due"], str):
            raise _fail(path, where, f"due: expected a date as text, found {card['due']!r:.40}")
        _check_items(path, card.get("customFieldItems"), where)
