"""Rep overrides: away, back, capacity and quota set by command instead of by editing the reps export.

The export stays the source of every rep; an override replaces one setting of one rep until it is
cleared or its ``until`` date has passed (it expires by itself). Overrides live in the state store
(its ``rep_overrides`` table, SQLite or PostgreSQL, through
:class:`~tasksync.sync.state.StateStoreProtocol`), and are applied to the CRM reps before the book is built, so every
policy, report and the service see the same team.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from tasksync.crm.records import CrmData, Rep
from tasksync.crm.values import loose_name_key, normalise_name
from tasksync.errors import ConfigError

if TYPE_CHECKING:
    from tasksync.sync.engine import PlanResult
    from tasksync.sync.state import StateStoreProtocol

__all__ = [
    "SETTINGS",
    "RepOverride",
    "RepOverrides",
    "apply_overrides",
    "explain_overrides",
    "find_rep",
    "parse_until",
    "with_rep_overrides",
]

#: The rep settings an override may replace (the fields of :class:`tasksync.crm.Rep`).
SETTINGS = ("available", "capacity", "capacity_value", "quota")


@dataclass(frozen=True, slots=True)
class RepOverride:
    """One setting of one rep, set by command (or from the review page: ``set_by`` names who);
    in force through ``until`` (inclusive) if given."""

    rep_id: str
    setting: str
    value: bool | int | float
    until: date | None = None
    set_at: str = ""
    set_by: str = "command"

    def active(self, today: date) -> bool:
        return self.until is None or today <= self.until

    def describe(self) -> str:
        """What it says, for a plan note or the reps table: ``away until 2026-12-14, set by command``."""
        until = f" until {self.until.isoformat()}" if self.until else ""
        if self.setting == "available":
            what = "away" if not self.value else "available"
        elif self.setting == "capacity":
            what = f"capacity {self.value} tasks"
        elif self.setting == "capacity_value":
            what = f"capacity value {self.value:,.0f}"
        else:
            what = f"quota {self.value:,.0f}"
        return f"{what}{until}, set by {self.set_by}"

    def as_dict(self) -> dict[str, object]:
        return {
            "rep_id": self.rep_id,
            "setting": self.setting,
            "value": self.value,
            "until": self.until.isoformat() if self.until else None,
            "set_at": self.set_at,
            "set_by": self.set_by,
            "text": self.describe(),
        }


class RepOverrides:
    """The overrides of an open state store (SQLite or PostgreSQL)."""

    def __init__(self, store: StateStoreProtocol) -> None:
        self.store = store

    def set(
        self, rep_id: str, setting: str, value: bool | int | float, until: date | None = None, set_by: str = "command"
    ) -> RepOverride:
        if setting not in SETTINGS:
            raise ValueError(f"unknown rep setting {setting!r}")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.store.set_rep_override(
            (rep_id, setting, _encode(value, set_by), until.isoformat() if until else None, now)
        )
        return RepOverride(rep_id, setting, value, until, now, set_by)

    def clear(self, rep_id: str, setting: str | None = None) -> int:
        """Remove one setting's override (or all of the rep's); returns how many were removed."""
        return self.store.clear_rep_overrides(rep_id, setting)

    def all(self) -> list[RepOverride]:
        return [
            RepOverride(rep_id, setting, *_decode(value, until, set_at))
            for rep_id, setting, value, until, set_at in self.store.rep_overrides()
        ]

    def active(self, today: date) -> list[RepOverride]:
        """The overrides in force on ``today``; expired ones are left out (they expire by themselves)."""
        return [o for o in self.all() if o.active(today)]


def _encode(value: bool | int | float, set_by: str) -> str:
    """The stored ``value``: the setting's JSON, or ``{"value": …, "set_by": who}`` when someone
    other than the command line set it (rows written by ``tasksync reps`` keep the plain form)."""
    return json.dumps(value if set_by == "command" else {"value": value, "set_by": set_by})


def _decode(text: str, until: str | None, set_at: str) -> tuple[bool | int | float, date | None, str, str]:
    """``value, until, set_at, set_by`` of a stored row (see :func:`_encode`)."""
    data = json.loads(text)
    value, set_by = (data["value"], str(data.get("set_by") or "command")) if isinstance(data, dict) else (data, "")
    return value, date.fromisoformat(until) if until else None, set_at, set_by or "command"


def apply_overrides(crm: CrmData, overrides: list[RepOverride]) -> CrmData:
    """The CRM data with each overridden rep setting replaced; everything else as exported."""
    if not overrides:
        return crm
    by_rep: dict[str, dict[str, object]] = {}
    for o in overrides:
        by_rep.setdefault(o.rep_id, {})[o.setting] = o.value
    reps: list[Rep] = []
    for r in crm.reps:
        changes = by_rep.get(r.id)
        if not changes:
            reps.append(r)
            continue
        reps.append(
            dataclasses.replace(
                r,
                available=bool(changes.get("available", r.available)),
                capacity=_int_or(changes.get("capacity"), r.capacity),
                capacity_value=_float_or(changes.get("capacity_value"), r.capacity_value),
                quota=_float_or(changes.get("quota"), r.quota),
            )
        )
    return dataclasses.replace(crm, reps=reps)


def _int_or(value: object, default: int | None) -> int | None:
    return int(value) if isinstance(value, (int, float)) else default


def _float_or(value: object, default: float | None) -> float | None:
    return float(value) if isinstance(value, (int, float)) else default


def with_rep_overrides(crm: CrmData, store: StateStoreProtocol, today: date | None = None) -> CrmData:
    """``crm`` with the overrides in force on ``today`` (default: the real date) applied."""
    return apply_overrides(crm, RepOverrides(store).active(today or date.today()))


def find_rep(reps: list[Rep], text: str) -> Rep:
    """The one rep named by ``text``: id, full name, email or email name, else the name with accents
    and word order ignored (``Brooks, Ben``), else a unique part of the name. Raises
    :class:`ConfigError` (exit 2) naming the candidates, or the name nearest a typo, otherwise."""
    wanted = normalise_name(text)
    exact = [
        r
        for r in reps
        if wanted in {normalise_name(k) for k in (r.id, r.name, r.email or "", (r.email or "").split("@")[0]) if k}
    ]
    if len(exact) == 1:
        return exact[0]
    loose = loose_name_key(text)
    partial = (
        exact
        or [r for r in reps if loose and loose_name_key(r.name) == loose]
        or [r for r in reps if wanted and wanted in normalise_name(r.name)]
    )
    if len(partial) == 1:
        return partial[0]
    if not partial:
        near = difflib.get_close_matches(text, [r.name for r in reps], n=1, cutoff=0.7)
        raise ConfigError(
            f"no rep named {text!r} in the reps export"
            + (f" (did you mean {near[0]!r}?)" if near else "")
            + " (see `tasksync reps`)"
        )
    names = ", ".join(f"{r.name} ({r.id})" for r in partial[:10])
    raise ConfigError(f"{text!r} names several reps: {names}; give the id or the full name")


_RELATIVE = re.compile(r"^\+?(\d+)\s*([dw])$", re.IGNORECASE)


def parse_until(text: str, today: date) -> date:
    """``YYYY-MM-DD``, or a span from ``today``: ``14d``, ``2w`` (the last day still away)."""
    m = _RELATIVE.match(text.strip())
    if m:
        n = int(m.group(1)) * (7 if m.group(2).lower() == "w" else 1)
        return today + timedelta(days=n)
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--until {text!r}: expected a date (YYYY-MM-DD) or a span such as 14d or 2w") from None
    if until < today:
        raise ConfigError(f"--until {until.isoformat()} is before today ({today.isoformat()})")
    return until


def explain_overrides(result: PlanResult, store: StateStoreProtocol, today: date | None = None) -> None:
    """Say in the plan what the overrides did: one note per override in force, the reason of each
    card moved off a rep marked away by command, and a note for every pinned card of a rep who
    is away (it stays with them)."""
    plan, book = result.plan, result.book
    reps = book.crm.reps_by_id
    active = RepOverrides(store).active(today or book.today)
    away_by_command = {o.rep_id: o for o in active if o.setting == "available" and not o.value}
    for o in active:
        rep = reps.get(o.rep_id)
        plan.notes.append(f"{rep.name if rep else o.rep_id}: {o.describe()}")
    if away_by_command:
        patterns = {
            f"{reps[rid].name} is away": f"{reps[rid].name} is {o.describe()}"
            for rid, o in away_by_command.items()
            if rid in reps
        }
        for i, c in enumerate(plan.changes):
            for old, new in patterns.items():
                if old in c.reason and new not in c.reason:
                    plan.changes[i] = dataclasses.replace(c, reason=c.reason.replace(old, new, 1))
                    break
    for item in book.items:
        task = result.snapshot.task(item.task_id) if item.task_id else None
        rep = reps.get(item.owner) if item.owner else None
        if task is None or not task.pinned or rep is None or rep.available:
            continue
        by_command = away_by_command.get(rep.id)
        why = by_command.describe() if by_command else "away in the reps export"
        plan.notes.append(
            f"card {task.title!r} is pinned to {rep.name}, who is {why}: left with them (unpin it to hand it on)"
        )
