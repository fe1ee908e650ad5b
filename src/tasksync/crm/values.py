"""Parsing the values CRMs put in their exports: dates, amounts, flags, names, lists.

Each parser raises ``ValueError`` whose message says what was expected; the loader adds the
file, line and column.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Literal

__all__ = [
    "DateOrder",
    "normalise_name",
    "parse_amount",
    "parse_bool",
    "parse_date",
    "parse_int",
    "parse_list",
]

DateOrder = Literal["auto", "dmy", "mdy", "ymd"]

_EXCEL_EPOCH = date(1899, 12, 30)
_YMD = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$")
_XYZ = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:[ T].*)?$")


def parse_date(text: str, order: DateOrder = "auto") -> date:
    """ISO and ``2024/1/5``, ``2024年1月5日``, ``05.01.2024`` (day first), ``1/5/2024``
    (month first unless ``order`` says otherwise or the first part exceeds 12), Excel serials.
    """
    s = text.strip()
    m = _YMD.match(s)
    if m:
        return _mk(int(m[1]), int(m[2]), int(m[3]), text)
    m = _XYZ.match(s)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        sep_dot = "." in s[:6]
        if order == "dmy" or (order == "auto" and (sep_dot or a > 12)):
            return _mk(y, b, a, text)
        return _mk(y, a, b, text)
    if re.fullmatch(r"\d{4,5}(\.\d+)?", s):
        serial = float(s)
        if 20000 <= serial <= 80000:  # 1954..2119: plausible Excel serial dates
            return _EXCEL_EPOCH + timedelta(days=int(serial))
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    raise ValueError(f"expected a date like 2024-01-31, found {text!r}")


def _mk(y: int, m: int, d: int, text: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise ValueError(f"expected a valid calendar date, found {text!r}") from None


_CURRENCY = re.compile(r"[\s$€£¥￥₹₩]|US\$|USD|EUR|GBP|CNY|RMB|JPY|元|[A-Z]{3}$")


def parse_amount(text: str) -> float:
    """``$1,234.50``, ``¥1,234``, ``1.234,50 €``, ``1 234,5``, ``(120)`` (negative)."""
    s = unicodedata.normalize("NFKC", text).strip()
    negative = s.startswith("(") and s.endswith(")")
    s = s.strip("()")
    s = _CURRENCY.sub("", s).replace("\u202f", "").replace("'", "")
    if s.startswith("-"):
        negative, s = True, s[1:]
    if not s or not re.fullmatch(r"[\d.,]+", s):
        raise ValueError(f"expected an amount like 1234.50, found {text!r}")
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    if last_comma > last_dot:
        # 1.234,50 or 1234,5: comma is the decimal mark unless it groups thousands (1,234).
        decimals = len(s) - last_comma - 1
        if last_dot >= 0 or decimals != 3 or (s.count(",") == 1 and len(s) <= 4):
            s = s.replace(".", "").replace(",", ".")
        else:
            s = s.replace(",", "")
    else:
        s = s.replace(",", "")
        if s.count(".") > 1:  # 1.234.567 grouping with dots
            s = s.replace(".", "")
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"expected an amount like 1234.50, found {text!r}") from None
    return -value if negative else value


_TRUE = {"1", "true", "yes", "y", "x", "t", "是", "有", "available", "active"}
_FALSE = {"0", "false", "no", "n", "f", "", "否", "无", "away", "inactive", "-"}


def parse_bool(text: str) -> bool:
    s = text.strip().casefold()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"expected yes or no, found {text!r}")


def parse_int(text: str) -> int:
    try:
        return round(parse_amount(text))
    except ValueError:
        raise ValueError(f"expected a whole number, found {text!r}") from None


def parse_list(text: str) -> tuple[str, ...]:
    """``Retail; Health``, ``Retail, Health``, ``Retail|Health``, ``零售、医疗``."""
    return tuple(p.strip() for p in re.split(r"[;,|、，；]", text) if p.strip())


def normalise_name(text: str) -> str:
    """Full-width to half-width, whitespace folded, case folded: for matching names."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
