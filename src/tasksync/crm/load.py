"""Turning export rows into CRM records, with every problem named by file, line and column.

Per file: the reader finds the format, encoding and delimiter (:mod:`tasksync.crm.readers`),
the headers are matched to fields (:mod:`tasksync.crm.presets`), a look-ahead over the first
rows decides each date column's day/month order and each amount column's decimal mark, and
every row is typed. A cell that cannot be read is reported as
``file:line:column: expected ..., found ...`` and its row skipped; a file with more skipped
rows than ``crm.max_bad_rows`` allows is rejected whole with a :class:`CrmError` listing them.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import keyword
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

from tasksync.crm.presets import ColumnMapping, match_columns
from tasksync.crm.readers import BAD_BYTES, bad_bytes, open_table
from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep
from tasksync.crm.values import (
    DateOrder,
    Decimal,
    StageClassifier,
    amount_decimal_hint,
    date_order_hint,
    name_keys,
    normalise_name,
    parse_amount,
    parse_bool,
    parse_date,
    parse_int,
    parse_list,
)
from tasksync.errors import ConfigError, CrmError, TasksyncError
from tasksync.settings import CrmSettings

__all__ = [
    "FIELDS",
    "KEYS",
    "KINDS",
    "ColumnSpec",
    "FileOptions",
    "FileReport",
    "SetReport",
    "compare_row_counts",
    "file_options",
    "iter_records",
    "load_crm",
    "read_export",
    "read_set",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One field of a record kind: its default header, its type and whether it is required.

    ``key`` marks the fields that may identify a record (see :data:`KEYS`): whichever of them
    the file has first is the record's key, and required in every row.
    """

    header: str
    kind: str = "text"  # text | amount | int | date | bool | list | rep | account | customer
    required: bool = False
    key: bool = False


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
        "value": ColumnSpec("Amount", "amount"),
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
_TYPE_NAMES = {
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

_OPTIONAL_FILES = {"accounts", "history"}
_CACHED = {"date", "rep", "account", "bool", "int", "customer", "list"}
_CACHE_SIZE = 20_000  # distinct values remembered per column
_MISS = object()
# field, column indexes, header, parser (None: text), required, soft (error keeps the row), cache
_Step = tuple[str, tuple[int, ...], str, Callable[[str], Any] | None, bool, bool, dict[str, Any] | None]
# What may come before an amount's digits on the fast path: a sign, a currency code, a symbol.
_AMOUNT_PREFIX = "-ABCDEFGHIJKLMNOPQRSTUVWXYZ $€£¥"
_AMOUNT_PREFIX_FORM = re.compile(r"-?(?:[A-Z]{3} ?)?[$€£¥]?-?")
_LOOKAHEAD = 1000  # rows read ahead to decide date orders and decimal marks per column
_FOOTER = re.compile(
    r"^(confidential information|copyright|generated by|grand totals?|totals?|subtotal|"
    r"count|合计|总计|小计|共\s*\d+|汇总)",
    re.I,
)


@dataclass(frozen=True)
class FileOptions:
    """How one export is read: ``[crm]`` keys overridden by ``[crm.options.<kind>]``."""

    preset: str = "auto"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None
    date_order: DateOrder = "auto"


def file_options(settings: CrmSettings, kind: str) -> FileOptions:
    for section, table in (("options", settings.options), ("columns", settings.columns)):
        unknown = sorted(set(table) - set(KINDS))
        if unknown:
            raise ConfigError(f"crm.{section}: unknown kind(s) {', '.join(map(repr, unknown))}; use {', '.join(KINDS)}")
    o = settings.options.get(kind)

    def pick(name: str) -> Any:
        v = getattr(o, name, None) if o is not None else None
        return v if v is not None else getattr(settings, name)

    return FileOptions(pick("preset"), pick("encoding"), pick("delimiter"), pick("sheet"), pick("date_order"))


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


class _Unknown(str):
    """An owner cell that matches no rep (kept apart so that it is tallied, not used)."""

    __slots__ = ()


class _RepIndex:
    """Resolves an owner cell (rep id, email or name, however written) to a rep id:
    by id first, then name, then email."""

    def __init__(self, reps: list[Rep]) -> None:
        self.keys: dict[str, str] = {}
        for attr in ("id", "name", "email"):
            for r in reps:
                k = getattr(r, attr)
                if k:
                    for key in name_keys(k):
                        self.keys.setdefault(key, r.id)
        self._memo: dict[str, str] = {}

    def resolve(self, text: str) -> str:
        try:
            return self._memo[text]
        except KeyError:
            pass
        rep = next((r for k in name_keys(text) if (r := self.keys.get(k))), None)
        out = rep if rep is not None else _Unknown(text.strip())
        if len(self._memo) < 100_000:
            self._memo[text] = out
        return out


class _AccountIndex:
    """Resolves an account cell (id, then name) to the account id; unknown text is kept."""

    def __init__(self, accounts: list[Account]) -> None:
        self.keys: dict[str, str] = {}
        self.ids = {a.id for a in accounts}
        self.names = {a.id: a.name for a in accounts}
        for a in accounts:
            self.keys.setdefault(normalise_name(a.id), a.id)
        for a in accounts:
            if a.name != a.id:  # accounts keyed by name have both the same
                self.keys.setdefault(normalise_name(a.name), a.id)

    def resolve(self, text: str) -> str:
        hit = self.keys.get(normalise_name(text))
        if hit is None and re.search(r"[;,|]", text):
            hit = self.keys.get(normalise_name(re.split(r"[;,|]", text)[0]))
        return hit or text.strip()


def _parse_customer(text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError:
        s = normalise_name(text)
        return ("customer" in s and "former" not in s) or s in {"成交客户", "签约客户", "老客户"}


def _profile(
    rows: list[tuple[int, list[str]]], dates: list[int], amounts: list[int]
) -> tuple[dict[int, Counter[str]], dict[int, Counter[str]]]:
    orders: dict[int, Counter[str]] = {i: Counter() for i in dates}
    marks: dict[int, Counter[str]] = {i: Counter() for i in amounts}
    for _, cells in rows:
        n = len(cells)
        for i in dates:
            if i < n and cells[i]:
                orders[i][date_order_hint(cells[i]) or "?"] += 1
        for i in amounts:
            if i < n and cells[i]:
                marks[i][amount_decimal_hint(cells[i].strip()) or "?"] += 1
    return orders, marks


def iter_records(
    path: Path,
    kind: str,
    settings: CrmSettings,
    report: FileReport | None = None,
    reps: _RepIndex | None = None,
    accounts: _AccountIndex | None = None,
    columns: Mapping[str, str | list[str]] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Typed field values per usable row of one export, streamed.

    Unreadable cells go to ``report.problems`` and their rows are skipped; at the end, a file
    whose skipped share exceeds ``crm.max_bad_rows`` raises :class:`CrmError`. Deals that are
    already won or lost are left out of ``deals``; for ``history`` each row gets ``won``.
    """
    yield from _stream(path, kind, settings, report, reps, accounts, columns, None)


def _stream(
    path: Path,
    kind: str,
    settings: CrmSettings,
    report: FileReport | None,
    reps: _RepIndex | None,
    accounts: _AccountIndex | None,
    columns: Mapping[str, str | list[str]] | None,
    add: Callable[[Any], object] | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Read one export: with ``add`` None, yield each usable row's values as a dict; else
    hand ``add`` each usable row's record (:data:`RECORDS`) and yield nothing."""
    if kind not in FIELDS:
        raise ConfigError(f"unknown CRM export kind {kind!r}; use {', '.join(KINDS)}")
    rep = report if report is not None else FileReport(path, kind)
    opts = file_options(settings, kind)
    specs = FIELDS[kind]
    problems = rep.problems
    cols = settings.columns.get(kind, {}) if columns is None else columns
    with open_table(path, encoding=opts.encoding, delimiter=opts.delimiter, sheet=opts.sheet) as table:
        rep.format, rep.encoding, rep.delimiter = table.format, table.encoding, table.delimiter
        rep.sheet, rep.header_line = table.sheet, table.header_line
        rep.notes.extend(table.notes)
        mapping = match_columns(kind, table.headers, cols, opts.preset, source=str(path))
        rep.mapping = mapping
        rep.notes.extend(mapping.notes)
        plan_cols = sorted(mapping.columns.values(), key=lambda c: c.index)

        ahead = list(islice(table.rows, _LOOKAHEAD))
        date_cols = [c.index for c in plan_cols if specs[c.field].kind == "date"]
        amount_cols = [c.index for c in plan_cols if specs[c.field].kind == "amount"]
        amount_fields = {c.field for c in plan_cols if specs[c.field].kind == "amount" and len(c.columns) == 1}
        orders, marks = _profile(ahead, date_cols, amount_cols)
        file_order: DateOrder | None = None
        if opts.date_order != "auto":
            file_order = opts.date_order
        else:
            told = {o for c in orders.values() for o in c if o != "?"}
            if len(told) == 1:
                file_order = "dmy" if "dmy" in told else "mdy"

        parsers: dict[str, Callable[[str], Any] | None] = {
            "text": None,
            "int": parse_int,
            "bool": parse_bool,
            "list": parse_list,
            "customer": _parse_customer,
            "rep": reps.resolve if reps else None,
            "account": accounts.resolve if accounts else None,
        }
        key_field = next((k for k in KEYS[kind] if k in mapping.columns), None)
        rep.key_field = key_field
        if key_field is not None:
            kc = mapping.columns[key_field]
            rep.key = (
                f"{kind} keyed by {kc.header} (id column)"
                if key_field == "id"
                else f"{kind} keyed by {kc.header}: no id column"
            )
            if kind == "deals" and key_field == "account_id":
                rep.key = f"deals keyed by account and product ({kc.header}): no id or name column"
        plan: list[_Step] = []
        for c in plan_cols:
            spec = specs[c.field]
            parse = parsers.get(spec.kind)
            type_name = _TYPE_NAMES[spec.kind]
            if spec.kind == "date":
                order = _column_order(opts.date_order, orders[c.index], file_order)
                parse = _date_parser(order)
                type_name = f"date ({_ORDER_NAMES[order]})"
                if order == "auto" and not _has_xyz(ahead, c.index):
                    type_name = "date"
                hints = orders[c.index]
                if order == "auto" and hints["dmy"] and hints["mdy"]:
                    rep.notes.append(
                        f"{path}: column {c.header!r} mixes day-first and month-first dates; "
                        "each is read on its own (set crm.date_order)"
                    )
                elif order == "auto" and hints["?"] and _has_xyz(ahead, c.index):
                    type_name = "date (ambiguous order: read month first)"
                    rep.notes.append(
                        f"{path}: column {c.header!r} has dates like 03/04/2024 that read "
                        "either way and none that tells; read month first "
                        '(set crm.date_order = "dmy" if they are day first)'
                    )
            elif spec.kind == "amount":
                mark = _column_mark(marks[c.index]) if table.format == "csv" else None
                parse = _amount_parser(mark)
                type_name = f"amount (decimal mark {mark!r})" if mark else "amount"
            elif spec.kind == "rep" and reps is None:
                type_name = "rep (not checked: no reps export)"
            if len(c.columns) > 1:
                type_name += " (columns joined)"
            rep.types[c.field] = type_name
            # Repeated cells (dates, owners, accounts, stages...) are parsed once per file;
            # text that repeats (stages, products, regions) is kept once (interned).
            single = len(c.columns) == 1
            cache: dict[str, Any] | None = None
            if single and ((spec.kind in _CACHED and parse) or (parse is None and _repeats(ahead, c.index))):
                cache = {}
            required = spec.required or c.field == key_field
            plan.append((c.field, c.columns, c.header, parse, required, spec.kind == "rep", cache))

        stages = StageClassifier(settings.stage_won, settings.stage_lost)
        open_stages: Counter[str] = Counter()
        check_bytes = table.has_bad_bytes
        min_cells = len(table.headers)
        width = max((i for c in plan_cols for i in c.columns), default=0) + 1
        names = accounts.names if accounts is not None else {}
        env: dict[str, Any] = {
            "problems": problems,
            "path": str(path),
            "file_name": path.name,
            "stage_of": stages.cached,
            "stages": stages,
            "open_stages": open_stages,
            "seen": {},  # key -> first line: explicit ids must be unique, names folded
            "normalise": normalise_name,
            "deal_name": partial(_deal_name, account_names=names),
            "unknown_owners": rep.unknown_owners,
            "first_owner_line": rep.first_owner_line,
            "unknown_accounts": rep.unknown_accounts,
            "first_account_line": rep.first_account_line,
            "account_ids": accounts.ids if accounts is not None else frozenset(),
            "Unknown": _Unknown,
            "is_footer": _is_footer,
            "add": add,
        }
        shape = _Shape(
            kind=kind,
            key_field=key_field,
            key_header=mapping.columns[key_field].header if key_field else "",
            id_header=mapping.columns["id"].header if "id" in mapping.columns else "",
            width=width,
            footers=min_cells >= 3,
            bad_bytes_in=table.encoding if check_bytes else None,
            has_owner="owner" in mapping.columns and reps is not None,
            check_accounts=accounts is not None and "account_id" in mapping.columns,
            records=add is not None,
            timestamped={
                c.field
                for c in plan_cols
                if c.index in date_cols and any(len(r[c.index]) > 10 for _, r in ahead if c.index < len(r))
            },
            amount_prefixes={
                c.field: p
                for c in plan_cols
                if c.field in amount_fields and (p := _amount_prefix(ahead, c.index)) is not None
            },
        )
        read, read_csv = _compile_reader(shape, plan, [specs[step[0]].kind for step in plan], env)
        # The look-ahead (bounded) first, then the rest: from the csv reader itself when it can.
        direct = table.rest_reader(len(ahead)) if table.rest_reader is not None else None
        counts: tuple[int, ...]
        if direct is None:
            rows = chain(ahead, table.rows)
            counts = (yield from read(rows)) if add is None else read(rows)
        elif add is None:
            first = yield from read(iter(ahead))
            counts = tuple(map(sum, zip(first, (yield from read_csv(*direct)), strict=True)))
        else:
            counts = tuple(map(sum, zip(read(iter(ahead)), read_csv(*direct), strict=True)))
        total, bad, used, skipped, footers, owner_refs, account_refs = counts
        rep.skipped += skipped
        rep.footers += footers

        cut = getattr(table, "cut_row", None)
        if cut is not None:
            if min_cells >= 3 and _is_footer(cut[1]):
                rep.footers += 1
            else:
                total += 1
                bad += 1
                problems.append(
                    f"{path}:{cut[0]}: the file ends in the middle of this row (no line break "
                    "after it): the export looks cut short, so the row is not read (export the "
                    "file again, or end it with a line break if the row is complete)"
                )
        rep.rows, rep.bad, rep.used = total, bad, used
        rep.owner_refs, rep.account_refs = owner_refs, account_refs
        if rep.footers:
            rep.notes.append(f"{path}: {rep.footers} report footer/total line(s) ignored")
        if kind == "deals" and rep.skipped:
            rep.notes.append(f"{path}: {rep.skipped} deal(s) already won or lost left out of open deals")
        if open_stages:
            top = ", ".join(f"{s!r} ({k})" for s, k in open_stages.most_common(5))
            rep.notes.append(
                f"{path}: {rep.skipped} row(s) whose stage is neither won nor lost left out "
                f"of history: {top} (add names to crm.stage_won / crm.stage_lost if they "
                "mean won or lost)"
            )
        if total and bad / total > settings.max_bad_rows:
            rep.rejected = (
                f"{path}: {bad} of {total} rows cannot be read "
                f"(allowed: {settings.max_bad_rows:.0%}; see crm.max_bad_rows)"
            )
            raise CrmError(rep.rejected, list(problems))


def _repeats(rows: list[tuple[int, list[str]]], i: int) -> bool:
    """Whether a text column's values repeat (stages, products, regions: not names or ids),
    judged on the look-ahead: such values are then kept once, however many rows name them."""
    cells = [c[i] for _, c in rows if i < len(c) and c[i]]
    return len(cells) >= 8 and 4 * len(set(cells)) <= len(cells)


def _amount_prefix(rows: list[tuple[int, list[str]]], i: int) -> str | None:
    """What an amount column's values usually start with before their digits ("USD ", "$",
    ""), judged on the look-ahead, when it is a currency code or symbol (not a sign)."""
    seen: Counter[str] = Counter()
    for _, c in rows:
        cell = c[i].strip() if i < len(c) else ""
        if cell:
            seen[cell[: len(cell) - len(cell.lstrip(_AMOUNT_PREFIX))]] += 1
    if not seen:
        return None
    prefix = seen.most_common(1)[0][0]
    return prefix if "-" not in prefix and _AMOUNT_PREFIX_FORM.fullmatch(prefix) else None


def _deal_name(account: str | None, product: str | None, deal_id: str | None, account_names: Mapping[str, str]) -> str:
    """A name for a deal exported without one: its account and product, else its id."""
    account = account_names.get(account, account) if account else None
    if account and product:
        return f"{account} - {product}"
    return str(account or product or deal_id or "")


_ORDER_NAMES = {
    "dmy": "day first",
    "mdy": "month first",
    "ymd": "year first",
    "auto": "order read per value",
}

#: The record each kind of export becomes.
RECORDS: dict[str, type] = {"reps": Rep, "accounts": Account, "deals": Deal, "history": ClosedDeal}
_DERIVED = {"reps": ("id", "name"), "accounts": ("id", "name"), "deals": ("id", "name"), "history": ("id", "won")}


@dataclass(frozen=True)
class _Shape:
    """What the generated reader of one file must do besides typing its cells."""

    kind: str
    key_field: str | None  # the field keying the records, if any
    key_header: str
    id_header: str  # the id column's header ("" without one)
    width: int  # cells a row needs (shorter rows are padded with empty cells)
    footers: bool  # whether a row that cannot be read may be a report footer
    bad_bytes_in: str | None  # the encoding, when some bytes did not decode
    has_owner: bool  # owners are checked against the reps
    check_accounts: bool  # accounts are checked against the accounts export
    records: bool  # build records (``add``) rather than yield dicts
    amount_prefixes: dict[str, str] = field(default_factory=dict)  # amount field -> usual prefix
    timestamped: set[str] = field(default_factory=set)  # date fields with times in the look-ahead


def _identifier(name: str) -> str:
    """A field name, checked before it goes into generated source code."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"CRM field name {name!r} is not a Python identifier: cannot generate the reader for it")
    return name


def _compile_reader(
    shape: _Shape, plan: list[_Step], kind_of: list[str], env: dict[str, Any]
) -> tuple[Callable[[Iterator[tuple[int, list[str]]]], Any], Callable[[Any, int], Any]]:
    """The reading loop of one file as one generated function: every cell of a row typed and
    checked, the row classified (open/won/lost), keyed, its references tallied and its
    record built (or its values yielded as a dict), all in straight-line code with the
    fields in local variables. Rows are the largest cost on files with 100,000s of them,
    and this does per row only what the file's columns need.

    Two functions: ``read(rows)`` over ``(line, cells)`` pairs and ``read_csv(reader, line)``
    over the rest of a CSV file (see ``Table.rest_reader``). Each returns
    ``(rows, bad, used, skipped, footers, owner refs, account refs)``; problems
    are appended as ``file:line:column: ...``, in the order of the cells, then the key.
    Only field names (checked identifiers) and numbers go into the generated source;
    headers, paths and parsers are passed in ``env``.
    """
    kind = shape.kind
    headers = [step[2] for step in plan]
    problems: list[str] = env["problems"]
    path: str = env["path"]
    bad_in = shape.bad_bytes_in

    def problem(line: int, k: int, message: object) -> None:
        problems.append(f"{path}:{line}:{headers[k]}: {message}")

    def undecodable(line: int, k: int, cell: str) -> None:
        problem(line, k, f"expected text in {bad_in}, found bytes that are not {bad_in}: {bad_bytes(cell)!r}")

    prefixes: dict[str, bool] = {}  # amount prefix -> whether it is a sign, code or symbol

    def prefix_ok(sign: str) -> bool:
        ok = _AMOUNT_PREFIX_FORM.fullmatch(sign) is not None
        if len(prefixes) < 1000:
            prefixes[sign] = ok
        return ok

    env.update(
        problem=problem,
        undecodable=undecodable,
        prefix_ok=prefix_ok,
        PREFIX=prefixes,
        SIZE=_CACHE_SIZE,
        BAD=BAD_BYTES.search,
    )
    mark = ["if mark < 0:", "    mark = len(problems)"]
    mapped = {_identifier(step[0]) for step in plan}
    body: list[str] = ["ok = True", "mark = -1", f"if len(cells) < {shape.width}:"]
    body += [f"    cells = cells + [''] * ({shape.width} - len(cells))"]
    for k, (name, cols, _header, parse, required, soft, cache) in enumerate(plan):
        f = f"f_{name}"
        env[f"parse_{k}"], env[f"cache_{k}"] = parse, cache
        fail = [*mark, f"problem(line, {k}, e)", f"{f} = None"] + ([] if soft else ["ok = False"])
        typed: list[str] = []
        if parse is None:
            pass
        elif kind_of[k] == "amount" and getattr(parse, "keywords", {}).get("decimal") != ",":
            # 1234.5, $12,345.67 and USD 12,345.67 without a call: a sign, currency code or
            # symbol (checked once per distinct prefix), then digits with grouping commas and
            # one decimal point, read as parse_amount reads them; anything else through it.
            prefix = shape.amount_prefixes.get(name)
            if prefix is not None:  # the column's usual prefix ("USD ", "$", ""), then digits
                env[f"prefix_{k}"] = prefix
                typed = [
                    f"if {f}.startswith(prefix_{k}) and {f}[{len(prefix)}:{len(prefix) + 1}].isdecimal() and "
                    f"(plain := {f}[{len(prefix)}:].replace(',', '')).replace('.', '', 1).isdecimal():",
                    f"    {f} = float(plain)",
                    "else:",
                ]
            typed += [
                f"digits = {f}.lstrip({_AMOUNT_PREFIX!r})",
                f"sign = {f}[: len({f}) - len(digits)]",
                "plain = digits.replace(',', '')",
                "fast = PREFIX.get(sign)",
                "if fast is None:",
                "    fast = prefix_ok(sign)",
                "if fast and digits[:1].isdecimal() and plain.replace('.', '', 1).isdecimal():",
                f"    {f} = -float(plain) if '-' in sign else float(plain)",
                "else:",
                "    try:",
                f"        {f} = parse_{k}({f})",
                "    except ValueError as e:",
                *("        " + x for x in fail),
            ]
            if prefix is not None:
                typed = typed[:3] + ["    " + x for x in typed[3:]]
        else:
            typed = ["try:", f"    {f} = parse_{k}({f})", "except ValueError as e:", *("    " + x for x in fail)]
            if cache is not None:
                typed += ["else:", f"    if len(cache_{k}) < SIZE:", f"        cache_{k}[raw] = {f}"]
        if parse is None and cache is not None:
            typed = [f"if len(cache_{k}) < SIZE:", f"    cache_{k}[raw] = {f}"]
        if bad_in is not None:  # undecodable bytes: the row cannot be read
            checked = [
                f"if BAD({f}):",
                *("    " + x for x in mark),
                f"    undecodable(line, {k}, {f})",
                "    ok = False",
            ]
            typed = checked + (["else:", *("    " + x for x in typed)] if typed else [])
        if not typed:
            typed = ["pass"]
        empty = [f"{f} = None"]
        if required:
            empty += [*mark, f"problem(line, {k}, 'required value is empty')", "ok = False"]
        if len(cols) == 1:
            fetch = [f"raw = cells[{cols[0]}]"]
        else:  # a field built from several columns: their non-empty cells joined with a space
            parts = "".join(f"cells[{c}].strip(), " for c in cols)
            fetch = [f"raw = ' '.join([x for x in ({parts}) if x])"]
        if cache is not None and kind_of[k] == "date" and name in shape.timestamped:
            # 2024-01-05 10:42 and 2024-01-05T10:42:00Z are cached under their date part.
            fetch += ["if len(raw) > 10 and raw[10] in ' T' and raw[4] == '-' and raw[7] == '-':", "    raw = raw[:10]"]
        field = [f"{f} = raw.strip()", f"if {f}:", *("    " + x for x in typed), "else:", *("    " + x for x in empty)]
        if cache is not None:
            field = [f"{f} = cache_{k}.get(raw)", f"if {f} is None:", *("    " + x for x in field)]
        body += fetch + field
    body += ["if not ok:"]
    if shape.footers:  # a report's footer or total line is not a row (its problems go)
        body += [
            "    if is_footer(cells):",
            "        del problems[mark:]",
            "        total -= 1",
            "        footers += 1",
        ]
        body += ["    else:", "        bad += 1"]
    else:
        body += ["    bad += 1"]
    body += ["    continue"]
    have = set(mapped)

    def val(name: str) -> str:
        return f"f_{name}" if name in have else "None"

    if kind == "deals":
        if "status" in mapped:
            body += ["outcome = (stage_of(f_status) or stages(f_status)) if f_status is not None else 'open'"]
            body += ["if outcome == 'open':", "    outcome = stage_of(f_stage) or stages(f_stage)"]
        else:
            body += ["outcome = stage_of(f_stage) or stages(f_stage)"]
        body += ["if outcome != 'open':", "    skipped += 1", "    continue"]
    elif kind == "history":
        body += ["outcome = stage_of(f_stage) or stages(f_stage)", "if outcome == 'open':"]
        body += ["    open_stages[f_stage] += 1", "    skipped += 1", "    continue", "f_won = outcome == 'won'"]
        have.add("won")
    record = {"reps": "rep", "accounts": "account", "deals": "deal", "history": "closed deal"}[kind]
    key_field = shape.key_field
    if key_field is not None:
        env["key_header"] = shape.key_header
        name_from_parts = kind == "deals" and "name" not in mapped
        if name_from_parts:
            body += [f"f_name = deal_name({val('account_id')}, {val('product')}, {val('id')})"]
            have.add("name")
        if key_field == "id":
            body += ["key = f_id"]
        else:
            natural = "f_name" if key_field == "account_id" else f"f_{key_field}"
            body += [f"natural = {natural}", "key = natural" if kind == "deals" else "key = normalise(natural)"]
            body += ["f_id = natural"]
        body += ["first = seen.get(key)", "if first is not None:"]
        if kind == "deals" and key_field != "id":
            body += ["    n = 2", "    while f'{natural} ({n})' in seen:", "        n += 1"]
            body += ["    f_id = key = f'{natural} ({n})'"]
        elif key_field == "id":  # an id must be unique: the row counts as unreadable
            body += [
                "    problems.append(",
                f"        f'{{path}}:{{line}}:{{key_header}}: duplicate {record} id {{f_id!r}}: line '",
                "        f'{first} has it too; this row is not read (the first is kept)'",
                "    )",
                "    bad += 1",
                "    continue",
            ]
        else:  # two records under one name: references cannot tell them apart
            body += [
                "    problems.append(",
                f"        f'{{path}}:{{line}}:{{key_header}}: duplicate {record} {key_field} {{f_{key_field}!r}} '",
                f"        f'(the {kind}\\' key: no id column): line {{first}} has it too; this row is left out '",
                "        '(the first is kept)'",
                "    )",
                "    skipped += 1",
                "    continue",
            ]
        body += ["seen[key] = line"]
        have.add("id")
        if not name_from_parts:
            if kind == "deals":
                fill = f"deal_name({val('account_id')}, {val('product')}, f_id)"
            else:
                fill = "f_email or f_id" if "email" in mapped else "f_id"
            body += ["if f_name is None:", f"    f_name = {fill}"] if "name" in mapped else [f"f_name = {fill}"]
            have.add("name")
    elif kind == "history":
        env["key_header"] = shape.id_header
        if "id" in mapped:  # closed deals' ids, when exported, are unique like open deals'
            body += ["if f_id is None:", "    f_id = f'{file_name}:{line}'", "else:", "    first = seen.get(f_id)"]
            body += [
                "    if first is not None:",
                "        problems.append(",
                f"            f'{{path}}:{{line}}:{{key_header}}: duplicate {record} id {{f_id!r}}: line '",
                "            f'{first} has it too; this row is not read (the first is kept)'",
                "        )",
                "        bad += 1",
                "        continue",
                "    seen[f_id] = line",
            ]
        else:
            body += ["f_id = f'{file_name}:{line}'"]
        have.add("id")
    refs: list[str] = []  # rows naming an owner, an account: all used rows but those naming none
    if shape.has_owner and "owner" in mapped:
        body += [
            "if f_owner is None:",  # rows naming an owner are counted as the others
            "    no_owner += 1",
            "elif f_owner.__class__ is Unknown:",
            "    unknown_owners[f_owner] += 1",
            "    if f_owner not in first_owner_line:",
            "        first_owner_line[f_owner] = line",
            "    f_owner = None",
        ]
        refs.append("owner_refs = used - no_owner")
    if shape.check_accounts and "account_id" in mapped:
        body += [
            "if f_account_id is None:",
            "    no_account += 1",
            "elif f_account_id not in account_ids:",
            "    unknown_accounts[f_account_id] += 1",
            "    if f_account_id not in first_account_line:",
            "        first_account_line[f_account_id] = line",
        ]
        refs.append("account_refs = used - no_account")
    body += _emit_record(kind, have, env) if shape.records else _emit_values(kind, mapped, have)
    counts = "total, bad, skipped, footers, owner_refs, account_refs, no_owner, no_account"
    start = f"    {counts.replace(', ', ' = ')} = 0"
    end = [
        "    used = total - bad - skipped  # every other row became a record",
        *("    " + x for x in refs),
        "    return total, bad, used, skipped, footers, owner_refs, account_refs",
    ]
    src = ["def read(rows):", start, "    for line, cells in rows:", "        total += 1"]
    src += [*("        " + x for x in body), *end]
    # The same for the rest of a CSV file, straight from its csv reader: lines counted and
    # blank rows skipped here as Table.rows does, without a generator between.
    src += ["def read_csv(reader, prev):", start, "    try:", "        for cells in reader:"]
    src += ["            line = prev + 1", "            prev = reader.line_num"]
    src += ["            if not cells or not (cells[0] or ''.join(cells).strip()):", "                continue"]
    src += ["            total += 1", *("            " + x for x in body)]
    src += ["    except csv_Error as e:", "        raise CrmError(f'{path}:{prev + 1}: not valid CSV: {e}') from None"]
    src += end
    env.update(csv_Error=csv.Error, CrmError=CrmError)
    code = compile("\n".join(src), f"<tasksync {kind} reader>", "exec")
    exec(code, env)
    # Taken out of their own globals: no reference cycle keeping the file's caches and seen
    # keys alive after them (the loader reads with the cyclic collector paused).
    read: Callable[[Iterator[tuple[int, list[str]]]], Any] = env.pop("read")
    read_csv: Callable[[Any, int], Any] = env.pop("read_csv")
    return read, read_csv


def _emit_values(kind: str, mapped: set[str], have: set[str]) -> list[str]:
    """Generated lines yielding a row's values: the fields it has, as a dict."""
    left_out = {"deals": {"status"}, "history": {"stage"}}.get(kind, set())
    out = ["values = {}"]
    for name in sorted(have - left_out, key=lambda n: (n not in mapped, n)):
        out += [f"if f_{name} is not None:", f"    values[{name!r}] = f_{name}"]
    return [*out, "yield line, values"]


def _emit_record(kind: str, have: set[str], env: dict[str, Any]) -> list[str]:
    """Generated lines building a row's record and handing it to ``add``: the frozen
    dataclass's fields set through their slots, without ``__init__``'s per-field
    ``object.__setattr__`` (a large share of the time on 100,000s of closed deals)."""
    cls = RECORDS[kind]
    env["new"], env["cls"] = object.__new__, cls
    out = ["o = new(cls)"]
    for fld in dataclasses.fields(cls):
        name = _identifier(fld.name)
        env[f"set_{name}"] = cls.__dict__[name].__set__
        default = fld.default
        if default is dataclasses.MISSING:
            if name not in have:
                raise CrmError(f"{kind}: no column gives the {name} of a {cls.__name__} record")
            expr = f"f_{name}"
        elif name not in have:
            env[f"default_{name}"] = default
            expr = f"default_{name}"
        elif kind == "reps" and name == "role":  # roles are words matched case-blind
            expr = "(f_role.casefold() or None) if f_role is not None else None"
        elif default is None:
            expr = f"f_{name}"
        else:
            env[f"default_{name}"] = default
            expr = f"f_{name} if f_{name} is not None else default_{name}"
        out.append(f"set_{name}(o, {expr})")
    return [*out, "add(o)"]


def _column_order(configured: DateOrder, hints: Counter[str], file_order: DateOrder | None) -> DateOrder:
    if configured in ("dmy", "mdy"):
        return configured
    dmy, mdy = hints["dmy"], hints["mdy"]
    if dmy and not mdy:
        return "dmy"
    if mdy and not dmy:
        return "mdy"
    if not dmy and not mdy and file_order in ("dmy", "mdy"):
        return file_order
    return "auto"


def _column_mark(hints: Counter[str]) -> Decimal | None:
    dot, comma = hints["."], hints[","]
    if comma and not dot:
        return ","
    if dot and not comma:
        return "."
    return None


def _date_parser(order: DateOrder) -> Callable[[str], Any]:
    return partial(parse_date, order=order)


def _amount_parser(mark: Decimal | None) -> Callable[[str], Any]:
    return partial(parse_amount, decimal=mark)


def _has_xyz(rows: list[tuple[int, list[str]]], i: int) -> bool:
    """Whether the column holds dates like ``3/4/2024`` at all (not ISO or serials)."""
    return any(i < len(c) and re.match(r"\s*\d{1,2}[-/]\d{1,2}[-/]\d{2,4}", c[i]) for _, c in rows)


def _is_footer(cells: list[str]) -> bool:
    filled = [c.strip() for c in cells if c.strip()]
    return len(filled) <= 2 and (not filled or bool(_FOOTER.match(filled[0])))


def read_export(
    path: Path,
    kind: str,
    settings: CrmSettings,
    reps: list[Rep] | None = None,
    accounts: list[Account] | None = None,
    *,
    keep: bool = True,
) -> tuple[list[tuple[int, dict[str, Any]]], FileReport]:
    """Read one export whole (for tests and tools): its usable rows and its report.

    With ``keep=False`` the rows are read and checked but not kept (memory stays flat).
    Never raises for a rejected file (``report.rejected`` says why); raises
    :class:`ConfigError` for a missing file or bad options, :class:`CrmError` when the file
    cannot be read at all (no header, a required column missing, not CSV/XLSX).
    """
    report = FileReport(path, kind)
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        it = iter_records(
            path,
            kind,
            settings,
            report,
            _RepIndex(reps) if reps is not None else None,
            _AccountIndex(accounts) if accounts is not None else None,
        )
        if keep:
            out.extend(it)
        else:
            for _ in it:
                pass
    except CrmError as e:
        if report.rejected is None:
            raise
        del e
    return out, report


@dataclass
class SetReport:
    """What reading a set of exports together found, per kind."""

    files: dict[str, FileReport] = field(default_factory=dict)
    errors: dict[str, TasksyncError] = field(default_factory=dict)  # files that cannot be read at all


def read_set(files: Mapping[str, Path], settings: CrmSettings, *, strict: bool = True) -> tuple[CrmData, SetReport]:
    """Read a set of exports together (any of reps, accounts, deals, history) into records.

    Reps are read first so that owners resolve to them (by id, then name, then email), then
    accounts so that deals and history resolve their accounts (by id, then name). Records are
    built row by row as the files stream (memory grows with the records, not the rows).
    Afterwards the cross-file problems are added to each file's report (``cross``, and
    ``failing`` when most of its references fail) and, first, to ``CrmData.problems``.

    ``strict`` (``load_crm``): a rejected or unreadable file raises. Otherwise its error or
    rejection is kept in the report and the other files are still read (``crm check``).
    """
    with _gc_paused():
        return _read_set(files, settings, strict)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while records pile up: records hold no cycles, and
    with 100,000s of them alive each collection would scan them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_set(files: Mapping[str, Path], settings: CrmSettings, strict: bool) -> tuple[CrmData, SetReport]:
    data = CrmData()
    out = SetReport()
    file_problems: list[str] = []
    rep_index: _RepIndex | None = None
    account_index: _AccountIndex | None = None
    for kind in KINDS:
        path = files.get(kind)
        if path is None:
            continue
        report = FileReport(path, kind)
        out.files[kind] = report
        before = {"reps": len(data.reps), "accounts": len(data.accounts), "deals": len(data.deals)}
        try:
            records: list[Any] = getattr(data, kind)
            for _ in _stream(path, kind, settings, report, rep_index, account_index, None, records.append):
                pass  # records are added as the file streams
        except TasksyncError as e:
            if strict:
                raise
            if report.rejected is None:
                out.errors[kind] = e
                report.rejected = str(e)
        finally:
            # Notes naming the file (mapping gaps, skipped rows) matter to the user; notes on
            # how it was read (encoding, delimiter) are for `tasksync crm check`.
            file_problems.extend(n for n in report.notes if n.startswith(str(path)))
            file_problems.extend(report.problems)
        data.row_counts[kind] = report.used
        if kind == "reps" and kind not in out.errors:
            rep_index = _RepIndex(data.reps[before["reps"] :])
        elif kind == "accounts" and data.accounts:
            account_index = _AccountIndex(data.accounts)
    cross = _cross_check(data, out.files)
    data.problems = [*cross, *file_problems]
    return data, out


def _sample(counts: Counter[str], first_line: Mapping[str, int], noun: str) -> str:
    top = counts.most_common(5)
    text = ", ".join(f"{v!r} ({k:,} {noun}{'s' if k != 1 else ''}, first on line {first_line[v]})" for v, k in top)
    if len(counts) > len(top):
        text += f" and {len(counts) - len(top):,} more"
    return text


def _cross_check(data: CrmData, files: Mapping[str, FileReport]) -> list[str]:
    """Problems between files: owners that match no rep, deals' accounts missing from the
    accounts export, rep regions and sectors that match no account's. Each goes to the
    report of the file whose references fail (``failing`` when more than half do)."""
    found: list[str] = []
    reps_r, accounts_r = files.get("reps"), files.get("accounts")

    def add(report: FileReport, message: str, failing: bool) -> None:
        report.cross.append(message)
        found.append(message)
        if failing:
            report.failing.append(message)

    for kind in ("accounts", "deals", "history"):
        r = files.get(kind)
        if r is None or r.mapping is None:
            continue
        if r.unknown_owners and reps_r is not None:
            n = sum(r.unknown_owners.values())
            header = r.mapping.columns["owner"].header
            first = min(r.first_owner_line.values())
            add(
                r,
                f"{r.path}:{first}:{header}: {n:,} of {r.owner_refs:,} rows name an owner who "
                f"matches no rep in {reps_r.path.name} (by id, name or email), so they count for "
                f"nobody: {_sample(r.unknown_owners, r.first_owner_line, 'row')}",
                2 * n > r.owner_refs,
            )
        if kind == "deals" and r.unknown_accounts and accounts_r is not None:
            n = sum(r.unknown_accounts.values())
            header = r.mapping.columns["account_id"].header
            first = min(r.first_account_line.values())
            add(
                r,
                f"{r.path}:{first}:{header}: {n:,} of {r.account_refs:,} deals name an account "
                f"that is not in {accounts_r.path.name} (by id or name), so they have no sector, "
                f"region or size: {_sample(r.unknown_accounts, r.first_account_line, 'deal')}",
                2 * n > r.account_refs,
            )
    if reps_r is not None and accounts_r is not None and data.reps and data.accounts:
        for what, rep_values, account_values in (
            ("region", [(r.region,) if r.region else () for r in data.reps], {a.region for a in data.accounts}),
            ("sector", [r.sectors for r in data.reps], {a.sector for a in data.accounts}),
        ):
            theirs = {v.casefold() for v in account_values if v}
            with_value = [vs for vs in rep_values if vs]
            if not theirs or not with_value:
                continue
            unmatched = Counter(v for vs in with_value for v in vs if v.casefold() not in theirs)
            if not unmatched:
                continue
            lost = sum(1 for vs in with_value if all(v.casefold() not in theirs for v in vs))
            shown = ", ".join(repr(v) for v, _ in unmatched.most_common(5))
            examples = ", ".join(repr(v) for v in sorted({v for v in account_values if v})[:5])
            add(
                reps_r,
                f"{reps_r.path}: {len(unmatched)} rep {what}(s) match no account's {what} in "
                f"{accounts_r.path.name}: {shown} (accounts' {what}s: {examples}"
                f"{', ...' if len(theirs) > 5 else ''}); {lost} of {len(with_value)} reps get no "
                f"{what} fit",
                2 * lost > len(with_value),
            )
    return found


def load_crm(settings: CrmSettings, base_dir: Path) -> CrmData:
    """Read all four exports. Raises :class:`CrmError` listing problems if a file is rejected.

    Owners that match no rep, deals whose account is missing and reps whose regions or
    sectors match no account's are reported in ``CrmData.problems`` (first); a file whose
    unreadable rows exceed ``crm.max_bad_rows`` is rejected whole. ``CrmData.row_counts``
    holds the usable rows per kind, for :func:`compare_row_counts`.
    """
    folder = settings.folder if settings.folder.is_absolute() else base_dir / settings.folder
    if not folder.is_dir():
        raise ConfigError(f"{folder}: CRM export folder not found (set crm.folder)")
    found: list[str] = []
    paths: dict[str, Path] = {}
    for kind in KINDS:
        p = folder / str(getattr(settings.files, kind))
        if not p.exists():
            alt = _same_stem(p)
            if alt is not None:
                found.append(f"{p}: not found; reading {alt.name} instead")
                paths[kind] = alt
                continue
            if kind in _OPTIONAL_FILES:
                found.append(f"{p}: not found; continuing without {kind}")
                continue
            raise ConfigError(f"{p}: CRM export not found (set crm.files.{kind})")
        paths[kind] = p
    data, _ = read_set(paths, settings, strict=True)
    data.problems = [*found, *data.problems]
    return data


def _same_stem(p: Path) -> Path | None:
    for ext in (".xlsx", ".csv", ".tsv", ".txt"):
        alt = p.with_suffix(ext)
        if alt != p and alt.exists():
            return alt
    return None


def compare_row_counts(previous: Mapping[str, int], current: Mapping[str, int], threshold: float = 0.5) -> list[str]:
    """Warnings for exports that lost more than ``threshold`` of their rows since the
    previous run (a truncated or filtered export would otherwise unassign most of a book).

    Keys are whatever the caller persists (kinds such as ``"deals"``, or paths); a key in
    ``previous`` missing from ``current`` counts as zero rows.
    """
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be a share of rows in (0, 1]")
    warnings: list[str] = []
    for key, before in sorted(previous.items()):
        now = current.get(key, 0)
        if before > 0 and (before - now) / before > threshold:
            warnings.append(
                f"{key}: {now:,} rows, down from {before:,} in the previous run "
                f"({(before - now) / before:.0%} fewer); the export may be truncated or "
                "filtered"
            )
    return warnings
