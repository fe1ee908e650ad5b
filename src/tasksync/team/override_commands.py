"""Set or clear a rep's overrides by name: ``tasksync reps away|back|capacity|quota|reset`` and the
review page's reps table both call these, so both check the same rules with the same messages.

Each function finds the rep (:func:`~tasksync.team.overrides.find_rep`), checks every value before
writing anything (a bad value raises :class:`~tasksync.errors.ConfigError`, exit 2, and nothing is
stored), writes the override with who set it (``"command"`` for the CLI, the logged-in user for the
page) and returns the one line the CLI prints.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING

from tasksync.crm.records import Rep
from tasksync.errors import ConfigError
from tasksync.team.overrides import RepOverrides, find_rep, parse_until

if TYPE_CHECKING:
    from tasksync.sync.workspace import Workspace

__all__ = ["check_amount", "mark_away", "mark_back", "reset_rep", "set_capacity", "set_quota"]


def check_amount(what: str, value: float) -> None:
    """A capacity or quota: a finite number, not below zero (``what`` names it in the message)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"a {what} must be a number, not {value}")
    if value < 0:
        raise ConfigError(f"a {what} cannot be negative")


def _today(ws: Workspace) -> date:
    return ws.today or date.today()


def _rep(ws: Workspace, name: str) -> Rep:
    return find_rep(ws.crm.reps, name)


def mark_away(ws: Workspace, name: str, until: str | None = None, set_by: str = "command") -> str:
    """The rep gets nothing new and their cards are handed on, through ``until`` (a date or a span)."""
    rep = _rep(ws, name)
    last_day = parse_until(until, _today(ws)) if until else None
    o = RepOverrides(ws.store).set(rep.id, "available", False, last_day, set_by)
    return f"{rep.name}: {o.describe()}; `tasksync plan` hands on their cards"


def mark_back(ws: Workspace, name: str, set_by: str = "command") -> str:
    """The rep is available again: the away override goes; a rep away in the export itself is
    marked available by an override of their own."""
    rep = _rep(ws, name)
    overrides = RepOverrides(ws.store)
    overrides.clear(rep.id, "available")
    if not _exported_rep(ws, rep.id).available:
        overrides.set(rep.id, "available", True, None, set_by)
    return f"{rep.name}: available from now on"


def set_capacity(ws: Workspace, name: str, tasks: int, value: float | None = None, set_by: str = "command") -> str:
    """Most open tasks (and, with ``value``, most open pipeline value) the rep should hold."""
    rep = _rep(ws, name)
    check_amount("capacity", tasks)
    if value is not None:
        check_amount("capacity", value)
    overrides = RepOverrides(ws.store)
    text = overrides.set(rep.id, "capacity", tasks, None, set_by).describe()
    if value is not None:
        text += "; " + overrides.set(rep.id, "capacity_value", value, None, set_by).describe()
    return f"{rep.name}: {text}"


def set_quota(ws: Workspace, name: str, amount: float, set_by: str = "command") -> str:
    """The rep's monthly quota."""
    rep = _rep(ws, name)
    check_amount("quota", amount)
    o = RepOverrides(ws.store).set(rep.id, "quota", amount, None, set_by)
    return f"{rep.name}: {o.describe()}"


def reset_rep(ws: Workspace, name: str) -> str:
    """Every override of the rep removed: as in the reps export again."""
    rep = _rep(ws, name)
    n = RepOverrides(ws.store).clear(rep.id)
    return f"{rep.name}: {n} override(s) removed; as in the reps export again"


def _exported_rep(ws: Workspace, rep_id: str) -> Rep:
    """The rep as the reps export has them, without overrides."""
    from tasksync.crm import load_crm

    return load_crm(ws.settings.crm, ws.settings.base_dir).reps_by_id[rep_id]
