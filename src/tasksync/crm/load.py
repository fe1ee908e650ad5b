"""Turning export rows into CRM records, with every problem named by file, line and column.

Per file: the reader finds the format, encoding and delimiter (:mod:`tasksync.crm.readers`),
the headers are matched to fields (:mod:`tasksync.crm.presets`), a look-ahead over the first
rows decides each date column's day/month order and each amount column's decimal mark, and
every row is typed. A cell that cannot be read is reported as
``file:line:column: expected ..., found ...`` and its row skipped; a file with more skipped
rows than ``crm.max_bad_rows`` allows is rejected whole with a :class:`CrmError` listing them.
"""

from __future__ import annotations

import dataclasses
import gc
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
            # Repeated cells (dates, owners, accounts, stages...) are parsed once per file.
            cache: dict[str, Any] | None = {} if spec.kind in _CACHED and parse and len(c.columns) == 1 else None
            required = spec.required or c.field == key_field
            plan.append((c.field, c.columns, c.header, parse, required, spec.kind == "rep", cache))

        stages = StageClassifier(settings.stage_won, settings.stage_lost)
        open_stages: Counter[str] = Counter()
        check_bytes = table.has_bad_bytes
        enc = table.encoding
        min_cells = len(table.headers)

        rows = chain(ahead, table.rows)  # the look-ahead (bounded) first, then the rest
        is_deals, is_history = kind == "deals", kind == "history"
        has_status = "status" in mapping.columns
        stage_of = stages.cached  # a dict lookup for stages already seen

        width = max((i for c in plan_cols for i in c.columns), default=0) + 1
        row_values = _compile_row(
            plan,
            [specs[step[0]].kind for step in plan],
            problems,
            str(path),
            enc if check_bytes else None,
        )
        # References: owners (when checked against reps) and accounts (when accounts are known).
        has_owner = "owner" in mapping.columns and reps is not None
        account_ids = accounts.ids if accounts is not None and "account_id" in mapping.columns else None
        unknown_owners, unknown_accounts = rep.unknown_owners, rep.unknown_accounts
        first_owner_line, first_account_line = rep.first_owner_line, rep.first_account_line
        owner_refs = account_refs = 0
        # Keys: explicit ids must be unique; natural keys (names) are folded; deal names made
        # from account and product are numbered when they repeat.
        keyed_by_id = key_field == "id"
        seen: dict[str, int] = {}
        key_header = mapping.columns[key_field].header if key_field else ""
        record = kind[:-1] if kind != "history" else "closed deal"
        names = accounts.names if accounts is not None else {}
        name_from_parts = kind == "deals" and "name" not in mapping.columns
        file_name = path.name
        total = bad = used = 0
        for line, cells in rows:
            total += 1
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            mark_p = len(problems)
            values = row_values(cells, line)
            if values is None:
                if min_cells >= 3 and _is_footer(cells):
                    del problems[mark_p:]
                    total -= 1
                    rep.footers += 1
                    continue
                bad += 1
                continue
            if is_deals:
                status = values.pop("status", None) if has_status else None
                outcome = stage_of(status) or stages(status) if status else "open"
                if outcome == "open":
                    stage = values["stage"]
                    outcome = stage_of(stage) or stages(stage)
                if outcome != "open":
                    rep.skipped += 1
                    continue
            elif is_history:
                stage = values.pop("stage")
                outcome = stage_of(stage) or stages(stage)
                if outcome == "open":
                    open_stages[stage] += 1
                    rep.skipped += 1
                    continue
                values["won"] = outcome == "won"
            if key_field is not None:
                if name_from_parts:
                    values["name"] = _deal_name(values, names)
                if keyed_by_id:
                    key = values["id"]
                else:
                    natural = values[key_field]
                    if key_field == "account_id":
                        natural = values["name"]
                    key = normalise_name(natural) if kind != "deals" else natural
                    values["id"] = natural
                first = seen.get(key)
                if first is not None:
                    if kind == "deals" and not keyed_by_id:
                        n = 2
                        while f"{natural} ({n})" in seen:
                            n += 1
                        values["id"] = key = f"{natural} ({n})"
                    elif keyed_by_id:  # an id must be unique: the row counts as unreadable
                        problems.append(
                            f"{path}:{line}:{key_header}: duplicate {record} id {values['id']!r}: line "
                            f"{first} has it too; this row is not read (the first is kept)"
                        )
                        bad += 1
                        continue
                    else:  # two records under one name: references cannot tell them apart
                        problems.append(
                            f"{path}:{line}:{key_header}: duplicate {record} {key_field} "
                            f"{values[key_field]!r} (the {kind}' key: no id column): line {first} has it "
                            "too; this row is left out (the first is kept)"
                        )
                        rep.skipped += 1
                        continue
                seen[key] = line
                if "name" not in values:
                    values["name"] = _deal_name(values, names) if is_deals else values.get("email") or values["id"]
            elif is_history and "id" not in values:
                values["id"] = f"{file_name}:{line}"
            if has_owner and "owner" in values:
                owner_refs += 1
                o = values["owner"]
                if o.__class__ is _Unknown:
                    unknown_owners[o] += 1
                    first_owner_line.setdefault(o, line)
                    del values["owner"]
            if account_ids is not None and "account_id" in values:
                account_refs += 1
                a = values["account_id"]
                if a not in account_ids:
                    unknown_accounts[a] += 1
                    first_account_line.setdefault(a, line)
            used += 1
            yield line, values

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


def _deal_name(values: dict[str, Any], account_names: Mapping[str, str]) -> str:
    """A name for a deal exported without one: its account and product, else its id."""
    account = values.get("account_id")
    account = account_names.get(account, account) if account else None
    product = values.get("product")
    if account and product:
        return f"{account} - {product}"
    return str(account or product or values.get("id") or "")


_ORDER_NAMES = {
    "dmy": "day first",
    "mdy": "month first",
    "ymd": "year first",
    "auto": "order read per value",
}


def _compile_row(
    plan: list[_Step],
    kind_of: list[str],
    problems: list[str],
    path: str,
    bad_bytes_in: str | None,
) -> Callable[[list[str], int], dict[str, Any] | None]:
    """A function typing one row for this file's plan: the per-field loop unrolled into
    straight-line code (a large share of the time on files with 100,000s of rows).

    It returns the row's values, or None when a cell that matters cannot be read; problems
    are appended as ``file:line:column: ...``. Only field names (identifiers from
    ``FIELDS``) and numbers go into the generated source; headers and parsers are passed in.
    """
    prefixes: dict[str, bool] = {}  # amount prefix -> whether it is a sign, code or symbol

    def prefix_ok(sign: str) -> bool:
        ok = _AMOUNT_PREFIX_FORM.fullmatch(sign) is not None
        if len(prefixes) < 1000:
            prefixes[sign] = ok
        return ok

    env: dict[str, Any] = {
        "MISS": _MISS,
        "SIZE": _CACHE_SIZE,
        "BAD": BAD_BYTES.search,
        "PREFIX": prefixes,
        "prefix_ok": prefix_ok,
    }
    headers = [step[2] for step in plan]

    def problem(line: int, k: int, message: object) -> None:
        problems.append(f"{path}:{line}:{headers[k]}: {message}")

    def undecodable(line: int, k: int, cell: str) -> None:
        problem(
            line,
            k,
            f"expected text in {bad_bytes_in}, found bytes that are not {bad_bytes_in}: {bad_bytes(cell)!r}",
        )

    env.update(problem=problem, undecodable=undecodable)
    src = ["def row(cells, line):", "    values = {}", "    ok = True"]
    for k, (name, cols, _header, parse, required, soft, cache) in enumerate(plan):
        i = cols[0]
        # A field built from several columns: their non-empty cells joined with a space.
        read = (
            f"cells[{i}]"
            if len(cols) == 1
            else ("' '.join([x for x in (" + "".join(f"cells[{c}].strip(), " for c in cols) + ") if x])")
        )
        assert name.isidentifier()
        key = repr(name)
        env[f"parse_{k}"], env[f"cache_{k}"] = parse, cache
        body: list[str] = []
        if bad_bytes_in is not None:
            body += ["if BAD(cell):", f"    undecodable(line, {k}, cell)", "    ok = False"]
            body += ["else:"]
            ind = "    "
        else:
            ind = ""
        if parse is None:
            body += [f"{ind}values[{key}] = cell"]
        elif kind_of[k] == "amount" and getattr(parse, "keywords", {}).get("decimal") != ",":
            # 1234.5, $12,345.67 and USD 12,345.67 without a call: a sign, currency code or
            # symbol (checked once per distinct prefix), then digits with grouping commas and
            # one decimal point, read as parse_amount reads them; anything else through it.
            body += [
                f"{ind}digits = cell.lstrip({_AMOUNT_PREFIX!r})",
                f"{ind}sign = cell[: len(cell) - len(digits)]",
                f"{ind}plain = digits.replace(',', '')",
                f"{ind}fast = PREFIX.get(sign)",
                f"{ind}if fast is None:",
                f"{ind}    fast = prefix_ok(sign)",
                f"{ind}if fast and plain.replace('.', '', 1).isdecimal():",
                f"{ind}    v = float(plain)",
                f"{ind}    values[{key}] = -v if '-' in sign else v",
                f"{ind}else:",
                f"{ind}    try:",
                f"{ind}        values[{key}] = parse_{k}(cell)",
                f"{ind}    except ValueError as e:",
                f"{ind}        problem(line, {k}, e)",
                f"{ind}        ok = False",
            ]
        else:
            body += [
                f"{ind}try:",
                f"{ind}    v = values[{key}] = parse_{k}(cell)",
                f"{ind}except ValueError as e:",
                f"{ind}    problem(line, {k}, e)",
                f"{ind}    {'pass' if soft else 'ok = False'}",
            ]
            if cache is not None:
                body += [
                    f"{ind}else:",
                    f"{ind}    if len(cache_{k}) < SIZE:",
                    f"{ind}        cache_{k}[raw] = v",
                ]
        empty = [f"    problem(line, {k}, 'required value is empty')", "    ok = False"] if required else ["    pass"]
        field_src = [
            f"raw = {read}",
            "cell = raw.strip()",
            "if cell:",
            *("    " + b for b in body),
            "else:",
            *empty,
        ]
        if cache is not None and kind_of[k] == "date":
            # 2024-01-05 10:42 and 2024-01-05T10:42:00Z are cached under their date part.
            field_src = [
                f"raw = cells[{i}]",
                "if len(raw) > 10 and raw[10] in ' T' and raw[4] == '-' and raw[7] == '-':",
                "    raw = raw[:10]",
                f"hit = cache_{k}.get(raw, MISS)",
                "if hit is not MISS:",
                f"    values[{key}] = hit",
                "else:",
                *("    " + line for line in field_src[1:]),
            ]
        elif cache is not None:
            field_src = [
                f"hit = cache_{k}.get(cells[{i}], MISS)",
                "if hit is not MISS:",
                f"    values[{key}] = hit",
                "else:",
                *("    " + line for line in field_src),
            ]
        src += ["    " + line for line in field_src]
    src += ["    return values if ok else None"]
    exec("\n".join(src), env)
    fn: Callable[[list[str], int], dict[str, Any] | None] = env["row"]
    return fn


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
            rows = iter_records(path, kind, settings, report, rep_index, account_index)
            records: list[Any] = getattr(data, kind)
            add, build = records.append, _BUILDERS[kind]
            if kind == "reps":
                for _, v in rows:
                    if "role" in v:
                        v["role"] = v["role"].casefold() or None
                    add(build(v))
            else:
                for _, v in rows:
                    add(build(v))
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


def _record_builder(cls: type) -> Callable[[Mapping[str, Any]], Any]:
    """A function making a ``cls`` record from a row's values: the frozen dataclass's fields
    set through their slots, without ``__init__``'s per-field ``object.__setattr__`` (a large
    share of the time on 100,000s of closed deals). Values for other keys are ignored."""
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    src = ["def build(v):", "    o = new(cls)"]
    for f in dataclasses.fields(cls):
        assert f.name.isidentifier()
        env[f"set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is not dataclasses.MISSING:
            env[f"default_{f.name}"] = f.default
            src.append(f"    set_{f.name}(o, v.get({f.name!r}, default_{f.name}))")
        else:
            assert f.default_factory is dataclasses.MISSING
            src.append(f"    set_{f.name}(o, v[{f.name!r}])")
    src.append("    return o")
    exec("\n".join(src), env)
    fn: Callable[[Mapping[str, Any]], Any] = env["build"]
    return fn


_BUILDERS = {kind: _record_builder(cls) for kind, cls in zip(KINDS, (Rep, Account, Deal, ClosedDeal), strict=True)}


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
