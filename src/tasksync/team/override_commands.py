"""Set or clear a rep's overrides by name: ``tasksync reps away|back|capacity|quota|reset`` and the
review page's reps table both go through :class:`OverrideCommands`, so both check the same rules
with the same messages.

Each command finds the rep (:func:`~tasksync.team.overrides.find_rep`) among the reps as exported,
checks every value before writing anything (a bad value raises :class:`~tasksync.errors.ConfigError`,
exit 2, and nothing is stored), writes the override naming who set it (``"command"`` for the
command line, the logged-in user for the page) and returns the line saying what it did.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from tasksync.crm.records import Rep
from tasksync.errors import ConfigError
from tasksync.team.overrides import RepOverrides, find_rep, parse_until

if TYPE_CHECKING:
    from tasksync.sync.workspace import Workspace

__all__ = ["OverrideCommands", "check_amount", "override_commands"]


def check_amount(what: str, value: float) -> None:
    """A capacity or quota: a finite number, not below zero (``what`` names it in the message)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"a {what} must be a number, not {value}")
    if value < 0:
        raise ConfigError(f"a {what} cannot be negative")


@dataclass(frozen=True)
class OverrideCommands:
    """The rep override commands on one store: ``exported`` are the reps as the reps export has
    them (without overrides), ``today`` dates ``--until`` spans, ``set_by`` names who sets them."""

    overrides: RepOverrides
    exported: list[Rep]
    today: date
    set_by: str = "command"

    def rep(self, name: str) -> Rep:
        return find_rep(self.exported, name)

    def away(self, name: str, until: str | None = None) -> str:
        """The rep gets nothing new and their cards are handed on, through ``until`` (a date or a span)."""
        rep = self.rep(name)
        last_day = parse_until(until, self.today) if until else None
        return f"{rep.name}: {self.overrides.set(rep.id, 'available', False, last_day, self.set_by).describe()}"

    def back(self, name: str) -> str:
        """Available again: the away override goes; a rep away in the export itself gets an override
        marking them available."""
        rep = self.rep(name)
        self.overrides.clear(rep.id, "available")
        if not rep.available:
            self.overrides.set(rep.id, "available", True, None, self.set_by)
        return f"{rep.name}: available from now on"

    def capacity(self, name: str, tasks: int, value: float | None = None) -> str:
        """Most open tasks (and, with ``value``, most open pipeline value) the rep should hold."""
        rep = self.rep(name)
        check_amount("capacity", tasks)
        if value is not None:
            check_amount("capacity", value)
        text = self.overrides.set(rep.id, "capacity", tasks, None, self.set_by).describe()
        if value is not None:
            text += "; " + self.overrides.set(rep.id, "capacity_value", value, None, self.set_by).describe()
        return f"{rep.name}: {text}"

    def quota(self, name: str, amount: float) -> str:
        """The rep's monthly quota."""
        rep = self.rep(name)
        check_amount("quota", amount)
        return f"{rep.name}: {self.overrides.set(rep.id, 'quota', amount, None, self.set_by).describe()}"

    def reset(self, name: str) -> str:
        """Every override of the rep removed: as in the reps export again."""
        rep = self.rep(name)
        return f"{rep.name}: {self.overrides.clear(rep.id)} override(s) removed; as in the reps export again"

    def run(self, action: str, args: argparse.Namespace) -> str:
        """One command as parsed from a command line (``reps ACTION NAME ...``: the arguments of
        ``tasksync reps`` and ``tasksync-cluster reps`` have the same names)."""
        if action == "away":
            return self.away(args.name, args.until)
        if action == "back":
            return self.back(args.name)
        if action == "capacity":
            return self.capacity(args.name, args.tasks, args.value)
        if action == "quota":
            return self.quota(args.name, args.amount)
        if action == "reset":
            return self.reset(args.name)
        raise ConfigError(f"unknown reps action {action!r}")


def override_commands(ws: Workspace, set_by: str = "command") -> OverrideCommands:
    """The commands on a workspace's state store and reps export (its ``today``, else the real date)."""
    from tasksync.crm import load_crm

    exported = load_crm(ws.settings.crm, ws.settings.base_dir).reps
    return OverrideCommands(RepOverrides(ws.store), exported, ws.today or date.today(), set_by)
