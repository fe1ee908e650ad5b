"""How each column of a CRM export is typed, decided on a look-ahead over its first rows.

A date column's day/month order and an amount column's decimal mark are read from its own
values (else the file's, else the configuration's); text that repeats (stages, products) and
typed values are cached per file. :func:`column_steps` gives the generated reader
(:mod:`tasksync.crm.reader_gen`) one step per mapped column.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from tasksync.crm.presets import ColumnMapping, ColumnMatch
from tasksync.crm.reader_gen import AMOUNT_PREFIX, AMOUNT_PREFIX_FORM, Step
from tasksync.crm.specs import FIELDS, ORDER_NAMES, TYPE_NAMES, FileReport
from tasksync.crm.values import (
    DateOrder,
    Decimal,
    amount_decimal_hint,
    currency_of,
    date_order_hint,
    header_key,
    header_scale,
    normalise_name,
    parse_amount,
    parse_bool,
    parse_date,
    parse_int,
    parse_list,
    parse_money,
)

__all__ = ["Money", "amount_prefix", "column_steps", "currency_note"]

_CACHED = {"date", "rep", "account", "bool", "int", "customer", "list"}


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


def column_steps(
    rep: FileReport,
    table_format: str,
    mapping: ColumnMapping,
    ahead: list[tuple[int, list[str]]],
    configured: DateOrder,
    rep_of: Callable[[str], str] | None,
    account_of: Callable[[str], str] | None,
    money: Money | None = None,
) -> list[Step]:
    """One step of the generated reader per mapped column, in column order: its parser (dates'
    order and amounts' decimal mark decided on the look-ahead ``ahead``), whether it is
    required and whether its values are cached; each column's type as read goes to the report.
    ``rep_of`` and ``account_of`` resolve owners and accounts (None: not checked); ``money``
    converts amounts into one currency (None: read as they are)."""
    specs = FIELDS[rep.kind]
    plan_cols = sorted(mapping.columns.values(), key=lambda c: c.index)
    date_cols = [c.index for c in plan_cols if specs[c.field].kind == "date"]
    amount_cols = [c.index for c in plan_cols if specs[c.field].kind == "amount"]
    orders, marks = _profile(ahead, date_cols, amount_cols)
    file_order: DateOrder | None = None
    if configured != "auto":
        file_order = configured
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
        "rep": rep_of,
        "account": account_of,
    }
    plan: list[Step] = []
    for c in plan_cols:
        spec = specs[c.field]
        parse = parsers.get(spec.kind)
        type_name = TYPE_NAMES[spec.kind]
        if spec.kind == "date":
            parse, type_name = _date_column(rep, c, configured, orders[c.index], file_order, ahead)
        elif spec.kind == "amount":
            mark = _column_mark(marks[c.index]) if table_format == "csv" else None
            word, scale = header_scale(c.header) if len(c.columns) == 1 else ("", 0)
            parse = partial(parse_amount, decimal=mark, scale=scale) if scale else _amount_parser(mark)
            type_name = f"amount (decimal mark {mark!r})" if mark else "amount"
            type_name += f" in {word} (×{10**scale:,})" if scale else ""
            if money is not None and len(c.columns) == 1:
                parse = partial(parse_money, decimal=mark, scale=scale, base=money.base, rates=money.rates)
                type_name += f", converted to {money.base}"
                if (at := money.column(c.header)) is not None:  # its cells joined after the amount's
                    type_name += f" (currency from {money.headers[at]})"
                    c = ColumnMatch(c.field, c.index, c.header, c.how, (c.index, at), c.shared)
        elif spec.kind == "rep" and rep_of is None:
            type_name = "rep (not checked: no reps export)"
        if len(c.columns) > 1 and spec.kind != "amount":
            type_name += " (columns joined)"
        rep.types[c.field] = type_name
        # Repeated cells (dates, owners, accounts, stages...) are parsed once per file;
        # text that repeats (stages, products, regions) is kept once (interned).
        single = len(c.columns) == 1
        cache: dict[str, Any] | None = None
        if single and ((spec.kind in _CACHED and parse) or (parse is None and _repeats(ahead, c.index))):
            cache = {}
        required = spec.required or c.field == rep.key_field
        plan.append((c.field, c.columns, c.header, parse, required, spec.kind == "rep", cache))
    return plan


def _date_column(
    rep: FileReport,
    c: ColumnMatch,
    configured: DateOrder,
    hints: Counter[str],
    file_order: DateOrder | None,
    ahead: list[tuple[int, list[str]]],
) -> tuple[Callable[[str], Any], str]:
    """A date column's parser and type as read: its order from the configuration, else from its
    own values in the look-ahead, else the file's; a note when the order cannot be told."""
    order = _column_order(configured, hints, file_order)
    type_name = f"date ({ORDER_NAMES[order]})"
    if order == "auto" and not _has_xyz(ahead, c.index):
        type_name = "date"
    if order == "auto" and hints["dmy"] and hints["mdy"]:
        rep.notes.append(
            f"{rep.path}: column {c.header!r} mixes day-first and month-first dates; "
            "each is read on its own (set crm.date_order)"
        )
    elif order == "auto" and hints["?"] and _has_xyz(ahead, c.index):
        type_name = "date (ambiguous order: read month first)"
        rep.notes.append(
            f"{rep.path}: column {c.header!r} has dates like {_xyz_sample(ahead, c.index)!r} that read "
            "either way and none that tells; read month first "
            '(set crm.date_order = "dmy" if they are day first)'
        )
    return _date_parser(order), type_name


def _repeats(rows: list[tuple[int, list[str]]], i: int) -> bool:
    """Whether a text column's values repeat (stages, products, regions: not names or ids),
    judged on the look-ahead: such values are then kept once, however many rows name them."""
    cells = [c[i] for _, c in rows if i < len(c) and c[i]]
    return len(cells) >= 8 and 4 * len(set(cells)) <= len(cells)


def amount_prefix(rows: list[tuple[int, list[str]]], i: int) -> str | None:
    """What an amount column's values usually start with before their digits ("USD ", "$",
    ""), judged on the look-ahead, when it is a currency code or symbol (not a sign)."""
    seen: Counter[str] = Counter()
    for _, c in rows:
        cell = c[i].strip() if i < len(c) else ""
        if cell:
            seen[cell[: len(cell) - len(cell.lstrip(AMOUNT_PREFIX))]] += 1
    if not seen:
        return None
    prefix = seen.most_common(1)[0][0]
    return prefix if "-" not in prefix and AMOUNT_PREFIX_FORM.fullmatch(prefix) else None


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


_XYZ = re.compile(r"\s*\d{1,2}[-/]\d{1,2}[-/]\d{2,4}")


def _has_xyz(rows: list[tuple[int, list[str]]], i: int) -> bool:
    """Whether the column holds dates like ``3/4/2024`` at all (not ISO or serials)."""
    return bool(_xyz_sample(rows, i))


def _xyz_sample(rows: list[tuple[int, list[str]]], i: int) -> str:
    """The column's first date like ``3/4/2024`` (its day and month either way round), or ""."""
    return next((c[i].strip() for _, c in rows if i < len(c) and _XYZ.match(c[i])), "")


_CURRENCY_IN = re.compile(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])|[$€£¥₹₩₽]|元|人民币")
#: Headers of a column giving each row's currency (Pipedrive, Salesforce, Zoho, Chinese CRMs).
_CURRENCY_HEADERS = {"currency", "dealcurrency", "opportunitycurrency", "币种", "货币"}
#: Amount columns already in the corporate currency (Salesforce's, HubSpot's): a currency
#: column beside them is the original amount's, not theirs.
_CONVERTED = re.compile(r"converted|companycurrency|defaultcurrency|本位币")


def currency_column(headers: list[str], amount_header: str) -> int | None:
    """The column giving the currency of ``amount_header``'s cells: its own (``Amount Currency``,
    ``Amount (converted) Currency``), else a deal's (``Currency``, ``Opportunity Currency``) unless
    the amount is a converted one."""
    key = header_key(amount_header)
    keys = [header_key(h) for h in headers]
    if key + "currency" in keys:
        return keys.index(key + "currency")
    if _CONVERTED.search(key):
        return None
    return next((i for i, k in enumerate(keys) if k in _CURRENCY_HEADERS), None)


@dataclass(frozen=True)
class Money:
    """Amounts converted into ``base`` at ``rates`` (``crm.currency``, ``crm.rates``), with the
    file's ``headers`` to find each amount column's currency column."""

    base: str
    rates: dict[str, float]
    headers: list[str]

    def column(self, amount_header: str) -> int | None:
        return currency_column(self.headers, amount_header)


def currency_note(
    path: str,
    headers: list[str],
    mapping: ColumnMapping,
    ahead: list[tuple[int, list[str]]],
    money: Money | None = None,
) -> str | None:
    """A note when the look-ahead shows amounts in more than one currency (in the amount cells,
    or in their currency column): tasksync adds them as they are, or, with ``money``, says what
    it converts at which rates."""
    specs = FIELDS[mapping.kind]
    amounts = [c for c in mapping.columns.values() if specs[c.field].kind == "amount" and len(c.columns) == 1]
    for c in amounts:
        at = currency_column(headers, c.header)
        seen: set[str] = set()
        for _, cells in ahead:
            cell = cells[c.index] if c.index < len(cells) else ""
            codes = _CURRENCY_IN.findall(cell)
            if at is not None and at < len(cells) and cells[at].strip():
                codes.append(cells[at].strip().upper())
            seen.update(currency_of(x, money.base if money else "") for x in codes)
        if money is not None:
            other = sorted(seen - {money.base})
            if other:
                rates = ", ".join(f"1 {x} = {money.rates[x]:g} {money.base}" for x in other if x in money.rates)
                return (
                    f"{path}:{c.header}: amounts in {', '.join(other)} (in the first {len(ahead):,} rows) are "
                    f"converted to {money.base}" + (f" at {rates}" if rates else "")
                )
        elif len(seen) > 1:
            return (
                f"{path}:{c.header}: amounts in more than one currency ({', '.join(sorted(seen))} in the first "
                f"{len(ahead):,} rows) are added as they are, without conversion; export them in one currency "
                "(e.g. Salesforce's Amount (converted)) or set crm.currency and crm.rates"
            )
    return None
