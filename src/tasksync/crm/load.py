"""Turning export rows into CRM records, with every problem named by file, line and column."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasksync.crm.readers import open_table
from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep
from tasksync.crm.values import (
    normalise_name,
    parse_amount,
    parse_bool,
    parse_date,
    parse_int,
    parse_list,
)
from tasksync.errors import ConfigError, CrmError
from tasksync.settings import CrmSettings

__all__ = ["FIELDS", "ColumnSpec", "load_crm"]


@dataclass(frozen=True)
class ColumnSpec:
    """One field of a record kind: its default header, its type and whether it is required."""

    header: str
    kind: str = "text"  # text | amount | int | date | bool | list | rep
    required: bool = False


#: Default headers per record kind; ``[crm.columns.<kind>]`` maps a field to another header.
FIELDS: dict[str, dict[str, ColumnSpec]] = {
    "reps": {
        "id": ColumnSpec("Rep ID", required=True),
        "name": ColumnSpec("Name", required=True),
        "email": ColumnSpec("Email"),
        "region": ColumnSpec("Region"),
        "role": ColumnSpec("Role"),
        "sectors": ColumnSpec("Sectors", "list"),
        "capacity": ColumnSpec("Capacity", "int"),
        "quota": ColumnSpec("Quota", "amount"),
        "available": ColumnSpec("Available", "bool"),
    },
    "accounts": {
        "id": ColumnSpec("Account ID", required=True),
        "name": ColumnSpec("Account Name", required=True),
        "sector": ColumnSpec("Sector"),
        "employees": ColumnSpec("Employees", "int"),
        "region": ColumnSpec("Region"),
        "owner": ColumnSpec("Owner", "rep"),
        "customer": ColumnSpec("Customer", "bool"),
    },
    "deals": {
        "id": ColumnSpec("Deal ID", required=True),
        "name": ColumnSpec("Deal Name", required=True),
        "stage": ColumnSpec("Stage", required=True),
        "account_id": ColumnSpec("Account ID"),
        "value": ColumnSpec("Amount", "amount"),
        "created": ColumnSpec("Created", "date"),
        "close_date": ColumnSpec("Close Date", "date"),
        "product": ColumnSpec("Product"),
        "owner": ColumnSpec("Owner", "rep"),
    },
    "history": {
        "id": ColumnSpec("Deal ID", required=True),
        "stage": ColumnSpec("Stage", required=True),
        "closed": ColumnSpec("Closed", "date", required=True),
        "account_id": ColumnSpec("Account ID"),
        "value": ColumnSpec("Amount", "amount"),
        "created": ColumnSpec("Created", "date"),
        "product": ColumnSpec("Product"),
        "owner": ColumnSpec("Owner", "rep"),
        "sector": ColumnSpec("Sector"),
        "region": ColumnSpec("Region"),
    },
}

_OPTIONAL_FILES = {"accounts", "history"}


class _RepIndex:
    """Resolves an owner cell (rep id, email or name) to a rep id."""

    def __init__(self, reps: list[Rep]) -> None:
        self.keys: dict[str, str] = {}
        for r in reps:
            for k in (r.name, r.email, r.id):
                if k:
                    self.keys.setdefault(normalise_name(k), r.id)

    def resolve(self, text: str) -> str:
        rep = self.keys.get(normalise_name(text))
        if rep is None:
            raise ValueError(f"expected a rep from the reps export, found unknown rep {text!r}")
        return rep


def _rows(
    path: Path,
    kind: str,
    columns: Mapping[str, str],
    settings: CrmSettings,
    reps: _RepIndex | None,
    problems: list[str],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Typed field values per row; rows with an unreadable cell are reported and skipped."""
    specs = FIELDS[kind]
    with open_table(path) as table:
        folded = {normalise_name(h): i for i, h in enumerate(table.headers)}
        index: dict[str, tuple[int, str]] = {}
        for name, spec in specs.items():
            header = columns.get(name, spec.header)
            i = folded.get(normalise_name(header))
            if i is not None:
                index[name] = (i, table.headers[i])
            elif spec.required:
                raise CrmError(
                    f"{path}: missing column {header!r} for {kind} field {name!r} "
                    f'(map it under [crm.columns.{kind}] {name} = "<header>")'
                )
        parsers: dict[str, Callable[[str], Any]] = {
            "text": str.strip,
            "amount": parse_amount,
            "int": parse_int,
            "date": lambda s: parse_date(s, settings.date_order),
            "bool": parse_bool,
            "list": parse_list,
            "rep": reps.resolve if reps else str.strip,
        }
        total = bad = 0
        for line, cells in table.rows:
            total += 1
            values: dict[str, Any] = {}
            ok = True
            for name, (i, header) in index.items():
                spec = specs[name]
                cell = cells[i].strip() if i < len(cells) else ""
                if not cell:
                    if spec.required:
                        problems.append(f"{path}:{line}:{header}: required value is empty")
                        ok = False
                    continue
                try:
                    values[name] = parsers[spec.kind](cell)
                except ValueError as e:
                    problems.append(f"{path}:{line}:{header}: {e}")
                    if spec.required or spec.kind != "rep":
                        ok = False
            if ok:
                yield line, values
            else:
                bad += 1
        if total and bad / total > settings.max_bad_rows:
            raise CrmError(
                f"{path}: {bad} of {total} rows cannot be read "
                f"(allowed: {settings.max_bad_rows:.0%}; see crm.max_bad_rows)",
                [p for p in problems if p.startswith(f"{path}:")],
            )


def load_crm(settings: CrmSettings, base_dir: Path) -> CrmData:
    """Read all four exports. Raises :class:`CrmError` listing problems if a file is rejected.

    Unknown reps in owner columns are reported in ``CrmData.problems`` and the owner is left
    empty; a file whose unreadable rows exceed ``crm.max_bad_rows`` is rejected whole.
    """
    folder = settings.folder if settings.folder.is_absolute() else base_dir / settings.folder
    if not folder.is_dir():
        raise ConfigError(f"{folder}: CRM export folder not found (set crm.folder)")
    data = CrmData()
    files = settings.files

    def path_of(kind: str) -> Path | None:
        p = folder / str(getattr(files, kind))
        if not p.exists():
            if kind in _OPTIONAL_FILES:
                data.problems.append(f"{p}: not found; continuing without {kind}")
                return None
            raise ConfigError(f"{p}: CRM export not found (set crm.files.{kind})")
        return p

    def read(kind: str, reps: _RepIndex | None) -> list[tuple[int, dict[str, Any]]]:
        p = path_of(kind)
        if p is None:
            return []
        rows = list(_rows(p, kind, settings.columns.get(kind, {}), settings, reps, data.problems))
        data.row_counts[kind] = len(rows)
        return rows

    seen: set[str] = set()
    for line, v in read("reps", None):
        if v["id"] in seen:
            data.problems.append(f"{folder / files.reps}:{line}: duplicate rep id {v['id']!r}")
            continue
        seen.add(v["id"])
        role = str(v.get("role") or "").casefold() or None
        data.reps.append(Rep(**{**v, "role": role, "available": v.get("available", True)}))
    index = _RepIndex(data.reps)
    for _, v in read("accounts", index):
        data.accounts.append(Account(**{**v, "customer": v.get("customer", False)}))
    for _, v in read("deals", index):
        data.deals.append(Deal(**{**v, "value": v.get("value", 0.0)}))
    won = {normalise_name(s) for s in settings.stage_won}
    lost = {normalise_name(s) for s in settings.stage_lost}
    hist_path = folder / files.history
    for line, v in read("history", index):
        stage = normalise_name(v.pop("stage"))
        if stage not in won and stage not in lost:
            data.problems.append(
                f"{hist_path}:{line}: stage {stage!r} is neither won nor lost "
                "(see crm.stage_won / crm.stage_lost); row skipped"
            )
            continue
        data.history.append(ClosedDeal(won=stage in won, **{**v, "value": v.get("value", 0.0)}))
    return data
