"""What each kind of CRM export holds: its fields (default header, type, key), how a file of it is
read (:class:`FileOptions`) and what reading it found (:class:`FileReport`).

The fields are the contract between the column matching (:mod:`tasksync.crm.presets`), the
generated per-file reader (:mod:`tasksync.crm.reader_gen`) and the loader (:mod:`tasksync.crm.load`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasksync.crm.records import Account, ClosedDeal, Deal, Rep
from tasksync.crm.values import DateOrder
from tasksync.errors import ConfigError

if TYPE_CHECKING:
    from tasksync.crm.presets import ColumnMapping
    from tasksync.settings import CrmSettings

__all__ = [
    "FIELDS",
    "KEYS",
    "KINDS",
    "ORDER_NAMES",
    "RECORDS",
    "TYPE_NAMES",
    "ColumnSpec",
    "FileOptions",
    "FileReport",
    "file_options",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One field of a record kind: its default header, its type and whether it is required.

    ``key`` marks the fields that may identify a record (see :data:`KEYS`): whichever of them
    the file has first is the record's key, and required in every row. ``expected`` marks a
    field whose column the file must have unless ``[crm.columns.<kind>]`` maps it to ``""``,
    though its cells may be empty (a deal not yet priced).
    """

    header: str
    kind: str = "text"  # text | amount | int | date | bool | list | rep | account | customer
    required: bool = False
    key: bool = False
    expected: bool = False


#: Default headers per record kind; ``[crm.columns.<kind>]`` maps a field to another header.
FIELDS: dict[str, dict[str, ColumnSpec]] = {
    "reps": {
        "id": ColumnSpec("Rep ID", key=True),
        "name": ColumnSpec("Name", key=True),
        "email": ColumnSpec("Email"),
        "region": ColumnSpec("Region"),
        "role": ColumnSpec("Role"),
        "sectors": ColumnSpec("Sectors", "list"),
        "capacity": ColumnSpec("Capacity", "int"),
        "capacity_value": ColumnSpec("Capacity Value", "amount"),
        "quota": ColumnSpec("Quota", "amount"),
        "available": ColumnSpec("Available", "bool"),
    },
    "accounts": {
        "id": ColumnSpec("Account ID", key=True),
        "name": ColumnSpec("Account Name", key=True),
        "sector": ColumnSpec("Sector"),
        "employees": ColumnSpec("Employees", "int"),
        "region": ColumnSpec("Region"),
        "owner": ColumnSpec("Owner", "rep"),
        "customer": ColumnSpec("Customer", "customer"),
    },
    "deals": {
        "id": ColumnSpec("Deal ID", key=True),
        "name": ColumnSpec("Deal Name", key=True),
        "stage": ColumnSpec("Stage", required=True),
        "status": ColumnSpec("Status"),  # open/won/lost where the CRM keeps it apart (Pipedrive)
        "account_id": ColumnSpec("Account ID", "account"),
        "value": ColumnSpec("Amount", "amount", expected=True),  # without it every deal is worth 0
        "created": ColumnSpec("Created", "date"),
        "close_date": ColumnSpec("Close Date", "date"),
        "product": ColumnSpec("Product"),
        "owner": ColumnSpec("Owner", "rep"),
    },
    "history": {
        "id": ColumnSpec("Deal ID", key=True),
        "stage": ColumnSpec("Stage", required=True),
        "closed": ColumnSpec("Closed", "date", required=True),
        "account_id": ColumnSpec("Account ID", "account"),
        "value": ColumnSpec("Amount", "amount"),
        "created": ColumnSpec("Created", "date"),
        "product": ColumnSpec("Product"),
        "owner": ColumnSpec("Owner", "rep"),
        "sector": ColumnSpec("Sector"),
        "region": ColumnSpec("Region"),
    },
}
KINDS = tuple(FIELDS)
#: The fields that may key a record, in order: an export without an id column keys its
#: records by name (reps: or email; deals: a name built from account and product). Closed
#: deals need no key (history rows are counted, not looked up).
KEYS: dict[str, tuple[str, ...]] = {
    "reps": ("id", "name", "email"),
    "accounts": ("id", "name"),
    "deals": ("id", "name", "account_id"),
    "history": (),
}
TYPE_NAMES = {
    "text": "text",
    "amount": "amount",
    "int": "whole number",
    "date": "date",
    "bool": "yes/no",
    "list": "list",
    "rep": "rep (id, email or name)",
    "account": "account (id or name)",
    "customer": "customer flag",
}

#: How each date order is named in a file's report.
ORDER_NAMES = {
    "dmy": "day first",
    "mdy": "month first",
    "ymd": "year first",
    "auto": "order read per value",
}

#: The record each kind of export becomes.
RECORDS: dict[str, type] = {"reps": Rep, "accounts": Account, "deals": Deal, "history": ClosedDeal}


@dataclass(frozen=True)
class FileOptions:
    """How one export is read: ``[crm]`` keys overridden by ``[crm.options.<kind>]``."""

    preset: str = "auto"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None
    date_order: DateOrder = "auto"
    fill_down: bool | None = None  # a grouped report's blank group cells (None: as detected)


def file_options(settings: CrmSettings, kind: str) -> FileOptions:
    for section, table in (("options", settings.options), ("columns", settings.columns)):
        unknown = sorted(set(table) - set(KINDS))
        if unknown:
            raise ConfigError(f"crm.{section}: unknown kind(s) {', '.join(map(repr, unknown))}; use {', '.join(KINDS)}")
    o = settings.options.get(kind)

    def pick(name: str) -> Any:
        v = getattr(o, name, None) if o is not None else None
        return v if v is not None else getattr(settings, name)

    return FileOptions(
        pick("preset"), pick("encoding"), pick("delimiter"), pick("sheet"), pick("date_order"), pick("fill_down")
    )


@dataclass
class FileReport:
    """What reading one export found: how it was read, its columns, counts and problems."""

    path: Path
    kind: str
    format: str = ""
    encoding: str = ""
    delimiter: str = ""
    sheet: str | None = None
    header_line: int = 1
    mapping: ColumnMapping | None = None
    types: dict[str, str] = field(default_factory=dict)  # field -> type as read
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int = 0  # data rows (footers excluded)
    used: int = 0  # rows that became records
    bad: int = 0  # rows skipped for an unreadable cell (or a duplicate id, or a cut last row)
    skipped: int = 0  # rows left out on purpose (closed deals among open ones, open in history)
    footers: int = 0
    rejected: str | None = None  # why the file cannot be used
    key: str = ""  # how records are keyed: "accounts keyed by Account Name: no id column"
    key_field: str | None = None  # the field keying the records (id, name, email, account_id)
    # References to other files, tallied while reading (see :func:`read_set`):
    owner_refs: int = 0  # rows naming an owner
    unknown_owners: Counter[str] = field(default_factory=Counter)  # owner text -> rows
    account_refs: int = 0  # rows naming an account
    unknown_accounts: Counter[str] = field(default_factory=Counter)  # account text -> rows
    first_owner_line: dict[str, int] = field(default_factory=dict)  # unknown owner -> first line
    first_account_line: dict[str, int] = field(default_factory=dict)  # unknown account -> first line
    #: Problems found by reading this file with the others (owners matching no rep...).
    cross: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)  # cross problems where most references fail

    @property
    def ok(self) -> bool:
        return self.rejected is None

    @property
    def usable(self) -> bool:
        """Read, and its references to the other files mostly resolve."""
        return self.rejected is None and not self.failing

    @property
    def problem_count(self) -> int:
        return len(self.problems) + len(self.cross)
