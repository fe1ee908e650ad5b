"""Parsing the values CRMs put in their exports: dates, amounts, flags, names, lists, stages.

Each parser raises ``ValueError`` whose message says what was expected and what was found; the
loader adds the file, line and column. Parsers take a fast path for the common clean forms
(``2024-01-31``, ``1234.5``) because they run once per cell of exports with 100,000s of rows.
"""

from __future__ import annotations

import decimal as decimal_module
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal

__all__ = [
    "GIVEN_NAME_HEADERS",
    "DateOrder",
    "Decimal",
    "StageClassifier",
    "StageKind",
    "account_key",
    "amount_decimal_hint",
    "date_order_hint",
    "header_key",
    "header_keys",
    "header_scale",
    "join_cells",
    "loose_name_key",
    "name_keys",
    "normalise_name",
    "parse_amount",
    "parse_bool",
    "parse_date",
    "parse_int",
    "parse_list",
    "parse_money",
]

DateOrder = Literal["auto", "dmy", "mdy", "ymd"]
Decimal = Literal[".", ","]
StageKind = Literal["won", "lost", "open"]

_EXCEL_EPOCH = date(1899, 12, 30)
_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_XYZ = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})[-/.](\d{4}|\d{2})(?:[ T,].*)?$")
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
# 5-Jan-2024, 05 Jan 2024, 5. Januar is not supported; Jan 5, 2024; January 5 2024.
_DMONY = re.compile(r"^(\d{1,2})[-\s.]+([A-Za-z]{3,9})\.?[-\s,]+(\d{4}|\d{2})(?:[ T].*)?$")
_MONDY = re.compile(r"^([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?:[ T,].*)?$")
_SERIAL = re.compile(r"^\d{4,5}(?:\.\d+)?$")


#: A weekday before a long date (``Tuesday, November 3, 2026``, ``Tue 3 Nov 2026``, ``星期二 2026年11月3日``)
#: or after it in brackets (``2026/11/3(周二)``, ``2026-11-03 (Tue)``).
_WEEKDAY = re.compile(
    r"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+|(?:星期|周|週)[一二三四五六日天]\s*)"
    r"|\s*\((?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?|(?:星期|周|週)?[一二三四五六日天])\)$",
    re.I,
)


def parse_date(text: str, order: DateOrder = "auto") -> date:
    """ISO, ``2024/1/5``, ``2024年1月5日``, ``05.01.2024`` (day first), ``1/5/2024`` (month
    first unless ``order`` is ``"dmy"`` or the first part exceeds 12), ``5-Jan-2024``,
    ``Jan 5, 2024`` and Excel serial numbers (``45296``).

    With ``order`` ``"dmy"`` or ``"mdy"`` (decided for the column) a value that only reads the
    other way round is an error rather than silently read differently from its neighbours.
    """
    s = text.strip()
    if len(s) >= 10 and s[4] == "-" and s[7] == "-" and (len(s) == 10 or s[10] in " T"):
        try:  # 2024-01-31, 2024-01-31 10:00, 2024-01-31T10:00:00Z
            return date(int(s[:4]), int(s[5:7]), int(s[8:10]))
        except ValueError:
            pass  # fall through to the full parser and its message
    s = unicodedata.normalize("NFKC", s)  # full-width digits and marks: ２０２４／１／５
    if (bare := _WEEKDAY.sub("", s).strip()) != s and bare:  # Tuesday, November 3, 2026; 2026/11/3(周二)
        try:
            return parse_date(bare, order)
        except ValueError:
            raise ValueError(f"expected a date like 2024-01-31, found {text!r}") from None
    m = _YMD.match(s)
    if m:
        return _mk(int(m[1]), int(m[2]), int(m[3]), text)
    m = _XYZ.match(s)
    if m:
        a, b, y = int(m[1]), int(m[3]), _year(m[4])
        if order == "dmy":
            if b > 12 and a <= 12:
                raise ValueError(
                    f"expected a day-first date like 31/01/2024 (this column is day-first), found {text!r}"
                )
            return _mk(y, b, a, text)
        if order == "mdy":
            if a > 12 and b <= 12:
                raise ValueError(
                    f"expected a month-first date like 01/31/2024 (this column is month-first), found {text!r}"
                )
            return _mk(y, a, b, text)
        if m[2] == "." or a > 12:
            return _mk(y, b, a, text)
        return _mk(y, a, b, text)
    if _SERIAL.match(s):
        serial = float(s)
        if 20000 <= serial <= 80000:  # 1954..2119: plausible Excel serial dates
            return _EXCEL_EPOCH + timedelta(days=int(serial))
        raise ValueError(f"expected a date (or an Excel date serial 20000-80000), found {text!r}")
    m = _DMONY.match(s)
    if m and m[2].casefold() in _MONTHS:
        return _mk(_year(m[3]), _MONTHS[m[2].casefold()], int(m[1]), text)
    m = _MONDY.match(s)
    if m and m[1].casefold() in _MONTHS:
        return _mk(int(m[3]), _MONTHS[m[1].casefold()], int(m[2]), text)
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    raise ValueError(f"expected a date like 2024-01-31, found {text!r}")


def date_order_hint(text: str) -> Literal["dmy", "mdy"] | None:
    """What one value says about its column's day/month order, if anything."""
    m = _XYZ.match(unicodedata.normalize("NFKC", text).strip())
    if not m:
        return None
    a, b = int(m[1]), int(m[3])
    if a > 12 >= b:
        return "dmy"
    if b > 12 >= a:
        return "mdy"
    return None


def _year(s: str) -> int:
    y = int(s)
    if len(s) == 2:
        y += 2000 if y < 70 else 1900
    return y


def _mk(y: int, m: int, d: int, text: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise ValueError(f"expected a valid calendar date, found {text!r}") from None


_PLAIN_NUMBER = re.compile(r"-?\d+")
#: ``1234.5``, ``$12,345.67``, ``-$5``, ``USD 12,345.00``: the forms most exports use, read
#: without locale guessing.
SIMPLE_AMOUNT = re.compile(r"(-?)(?:[A-Z]{3} ?)?[$€£¥]?(-?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_SYMBOLS = "$€£¥₹₩₽"
_AMOUNT = re.compile(
    rf"""^(?P<open>\()?\s*(?P<neg1>-)?\s*
    (?:(?:[A-Z]{{1,2}}\s?)?[{_SYMBOLS}]|[A-Z]{{3}}(?=[\s\d-])|人民币)?\s*
    (?P<neg2>-)?\s*
    (?P<num>\d[\d.,' ]*)
    (?P<unit>百万|千|万|亿|[kK](?![A-Za-z])|MM(?![A-Za-z])|[mM](?![A-Za-z])|mn(?![A-Za-z])|bn(?![A-Za-z]))?\s*
    (?:[{_SYMBOLS}]|[A-Za-z]{{2,3}}\.?|元|圆|元人民币|人民币)?\s*(?P<neg3>-)?(?P<close>\))?$""",
    re.X,
)


def parse_amount(text: str, decimal: Decimal | None = None, scale: int = 0) -> float:
    """``$1,234.50``, ``¥1,234``, ``1.234,50 €``, ``1 234,5``, ``USD 1,234``, ``12.5万``,
    ``$1.2M``, ``350K``, ``(120)`` (negative).

    ``decimal`` is the column's decimal mark when known (see :func:`amount_decimal_hint`);
    otherwise each value is read on its own (``1,234`` is a thousand, ``1,23`` is 1.23).
    ``scale`` is the power of ten the column's header says its amounts are in (3 for
    ``Amount (K)``, 4 for ``金额（万元）``; see :func:`header_scale`): ``12.5`` is then 12,500 or
    125,000. A scale written in the cell itself (``12.5万``, ``1.2M``) is used instead.
    Scaled amounts are shifted in decimal, not multiplied in binary: ``0.07万`` is 700, not
    700.0000000000001.
    """
    if decimal != ",":
        m = SIMPLE_AMOUNT.fullmatch(text)
        if m:  # 1234.5, $12,345.67, 12,345.67, -$5
            digits = m[3].replace(",", "") + (m[4] or "")
            value = float(decimal_module.Decimal(digits).scaleb(scale)) if scale else float(digits)
            return -value if m[1] or m[2] else value
    elif _PLAIN_NUMBER.fullmatch(text) and not scale:
        return float(text)
    s = unicodedata.normalize("NFKC", text).replace("\u2212", "-").strip()
    m = _AMOUNT.match(s)
    if not m or bool(m["open"]) != bool(m["close"]):
        raise ValueError(f"expected an amount like 1234.50, found {text!r}")
    negative = bool(m["open"] or m["neg1"] or m["neg2"] or m["neg3"])
    num = m["num"].replace(" ", "").replace("'", "")
    if decimal is None:
        decimal = amount_decimal_hint(num) or "."
    num = num.replace(".", "").replace(",", ".") if decimal == "," else num.replace(",", "")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"expected an amount like 1234.50 (decimal mark {decimal!r}), found {text!r}") from None
    if m["unit"]:
        scale = _SCALES[m["unit"].casefold()]
    if scale:
        value = float(decimal_module.Decimal(num).scaleb(scale))
    return -value if negative else value


#: Currency codes and symbols an amount cell (or a currency column joined to it) may carry.
_MONEY_MARK = re.compile(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])|[$€£¥₹₩₽]|元|人民币")
#: The currencies a symbol may stand for, the most common first: a symbol is the plan's
#: currency when that is one of them (``$`` in an AUD book), else the first.
SYMBOL_CURRENCIES = {
    "$": ("USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"), "€": ("EUR",), "£": ("GBP",), "¥": ("CNY", "JPY"),
    "元": ("CNY",), "人民币": ("CNY",), "RMB": ("CNY",), "₹": ("INR",), "₩": ("KRW",), "₽": ("RUB",),
}  # fmt: skip


def currency_of(mark: str, base: str = "") -> str:
    """The currency code a code or symbol found in a cell stands for, in a book planned in ``base``."""
    options = SYMBOL_CURRENCIES.get(mark)
    if options is None:
        return mark
    return base if base in options else options[0]


def parse_money(
    text: str, decimal: Decimal | None = None, scale: int = 0, base: str = "", rates: dict[str, float] | None = None
) -> float | None:
    """An amount (as :func:`parse_amount` reads it) converted into the ``base`` currency: its
    currency is the code or symbol in the cell, or in the currency column joined after it
    (``1,234.50 EUR``), else ``base``; ``rates[code]`` is the ``base`` worth of one unit of it.
    None when the text holds a currency but no amount (an open deal not yet priced)."""
    marks = {currency_of(m, base) for m in _MONEY_MARK.findall(text)}
    if len(marks) > 1:
        raise ValueError(f"expected one currency, found {' and '.join(sorted(marks))} in {text!r}")
    code = marks.pop() if marks else base
    number = _MONEY_MARK.sub("", text).strip()
    if not number.strip(" .,()-"):
        return None
    try:
        value = parse_amount(number, decimal, scale)
    except ValueError:
        raise ValueError(f"expected an amount like 1234.50 EUR, found {text!r}") from None
    if code == base:
        return value
    rate = (rates or {}).get(code)
    if rate is None:
        known = ", ".join(sorted(rates or {})) or "none"
        raise ValueError(f"an amount in {code} and no rate for it in [crm.rates] (rates known: {known}): {text!r}")
    return float(decimal_module.Decimal(repr(value)) * decimal_module.Decimal(repr(rate)))


def amount_decimal_hint(text: str) -> Decimal | None:
    """The decimal mark one amount reveals: the later of ``.``/``,`` when both appear, a mark
    followed by other than three digits, or the one that repeats (grouping) by elimination."""
    dot, comma = text.rfind("."), text.rfind(",")
    if dot >= 0 and comma >= 0:
        return "." if dot > comma else ","
    if dot < 0 and comma < 0:
        return None
    mark: Decimal = "." if dot >= 0 else ","
    if text.count(mark) > 1:
        return "," if mark == "." else "."
    digits = len(text.rstrip(" €$£¥元)")) - text.rfind(mark) - 1
    if digits != 3:
        return mark
    return None


_TRUE = {
    "1", "true", "yes", "y", "x", "t", "是", "有", "available", "active", "在职", "启用",
    "customer", "已成交", "成交客户", "正式客户", "on", "✓", "✔", "√",
}  # fmt: skip
_FALSE = {
    "0", "false", "no", "n", "f", "", "否", "无", "away", "inactive", "-", "离职", "休假",
    "停用", "禁用", "prospect", "lead", "潜在客户", "未成交", "off",
}  # fmt: skip


def parse_bool(text: str) -> bool:
    s = text.strip().casefold()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"expected yes or no, found {text!r}")


_RANGE = re.compile(r"^(\d[\d,]*)\s*(?:-|–|~|～|至|到|to)\s*(\d[\d,]*)\s*人?$")
_AT_LEAST = re.compile(r"^(?:>|≥|over\s+)?\s*(\d[\d,]*)\s*(?:\+|人以上|以上|人)?$")


def parse_int(text: str) -> int:
    """Whole numbers; employee bands (``51-200``, ``100-499人``) give their midpoint,
    open bands (``10,000+``, ``1000人以上``) their bound."""
    s = text.strip()
    if s.isascii() and s.isdigit():
        return int(s)
    try:
        return round(parse_amount(s))
    except ValueError:
        pass
    t = unicodedata.normalize("NFKC", s)
    m = _RANGE.match(t)
    if m:
        return (int(m[1].replace(",", "")) + int(m[2].replace(",", ""))) // 2
    m = _AT_LEAST.match(t)
    if m:
        return int(m[1].replace(",", ""))
    raise ValueError(f"expected a whole number (or a range like 51-200), found {text!r}")


def parse_list(text: str) -> tuple[str, ...]:
    """``Retail; Health``, ``Retail, Health``, ``Retail|Health``, ``零售、医疗``."""
    return tuple(p.strip() for p in re.split(r"[;,|、，；]", text) if p.strip())


@lru_cache(maxsize=1 << 16)
def normalise_name(text: str) -> str:
    """Full-width to half-width, whitespace folded, case folded: for matching names.
    (Remembered for the 65,536 last names: the same names recur across a set of exports.)"""
    return " ".join(unicodedata.normalize("NFKC", text).replace("\u200b", "").split()).casefold()


#: Legal forms a company's name may end with in one export and not in another.
_LEGAL_FORM = re.compile(
    r"(?:\s(?:incorporated|inc|corporation|corp|company|co|limited|ltd|llc|llp|lp|plc|gmbh|ag|sa|sas|sarl|srl|"
    r"spa|bv|nv|oy|ab|as|kk|pte|pty|group|holdings?))+$|(?:(?:股份)?有限(?:责任)?公司|集团|株式会社)+$",
)


def account_key(text: str) -> str:
    """A company's name with case, accents, punctuation and the legal forms it ends with dropped
    (``Acme, Inc.``, ``ACME Inc`` and ``Acme`` are one; ``北京星辰科技有限公司`` and ``北京星辰科技``
    too): for matching an account named differently in two exports, used only when unique. Empty
    when nothing but a legal form is left."""
    n = "".join(c for c in unicodedata.normalize("NFKD", normalise_name(text)) if not unicodedata.combining(c))
    words = " " + " ".join(re.sub(r"[^\w\s]+", " ", n.replace("&", " and ")).split())
    return "".join(_LEGAL_FORM.sub("", words).split())


def loose_name_key(text: str) -> str:
    """A name with accents dropped and its words sorted (``García, Grace`` and ``Grace Garcia``
    are one; ``王 伟`` and ``王伟``): the last resort for matching a rep to a board member, used
    only when unique."""
    words = normalise_name(text).replace(",", " ").replace(".", " ").split()
    if any(unicodedata.east_asian_width(c) == "W" for w in words for c in w):
        return "".join(words)  # spaces in CJK names are arbitrary, the order is not
    return " ".join(
        sorted("".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c)) for w in words)
    )


_EMAIL_IN = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def name_keys(text: str) -> list[str]:
    """The ways a rep's name may be written: ``Mei Chen``, ``chen, mei``, ``王 伟`` or ``伟 王`` for
    ``王伟``, ``Mei Chen <mei@x.com>``, ``mei.chen@x.com``, ``Chloe`` for ``Chloé``: each
    normalised, most exact first."""
    n = normalise_name(text)
    keys = [n]
    m = _EMAIL_IN.search(n)
    if m and m[0] != n:
        keys.append(m[0])
        bare = normalise_name(_EMAIL_IN.sub("", n).strip(" <>()[]"))
        if bare:
            keys.append(bare)
    if "," in n:
        last, _, first = n.partition(",")
        keys.append(normalise_name(f"{first} {last}"))
    squeezed = n.replace(" ", "")
    if squeezed != n:
        keys.append(squeezed)
        words = n.split()
        if len(words) == 2 and _wide(words):
            keys.append(words[1] + words[0])  # 伟 王: a CJK name written given name first, as HubSpot shows it
    if _EMAIL_IN.fullmatch(n) and len(words := re.split(r"[._-]+", n.partition("@")[0])) > 1:
        keys.append(" ".join(words))  # mei.chen@x.com: Mei Chen, in a reps export without emails
    plain = "".join(c for c in unicodedata.normalize("NFKD", n) if not unicodedata.combining(c))
    if plain != n:
        keys.append(plain)  # Chloé Dubois written Chloe Dubois by an export that drops accents
    return keys


#: Headers of a given-name column (folded by :func:`header_key`): joined with a family-name column
#: after it, a CJK name is written family name first.
GIVEN_NAME_HEADERS = frozenset({"firstname", "first", "givenname", "forename", "名", "名字"})


def _wide(words: list[str]) -> bool:
    """Whether every character of ``words`` is wide (Chinese, Japanese, Korean)."""
    return all(unicodedata.east_asian_width(c) in "WF" for w in words for c in w)


def join_cells(parts: tuple[str, ...], given_first: bool = False) -> str:
    """The cells of a field built from several columns, joined: with a space, except that CJK
    parts are written together, family name first (``伟`` + ``王`` from First Name + Last Name
    columns, ``given_first``, is ``王伟``; ``王`` + ``伟`` from 姓 + 名 too), as the CRM writes the
    name in its owner columns."""
    kept = [p for p in parts if p]
    if len(kept) > 1 and _wide(kept):
        return "".join(reversed(kept) if given_first and len(kept) == 2 else kept)
    return " ".join(kept)


def header_key(text: str) -> str:
    """A header folded for matching: case, width, spaces and punctuation ignored, so
    ``Close Date``, ``CloseDate``, ``close_date`` and ``*Close Date`` are one."""
    return re.sub(r"[\W_]+", "", normalise_name(text))


#: Scale words an amount or its column's header may carry, as powers of ten. ``M`` is a million
#: (as CRMs display ``$1.2M``), ``MM`` too (finance's usage); ``T``/``Tsd`` (German Tausend:
#: ``TEUR``) a thousand.
_SCALES = {
    "k": 3, "000": 3, "'000": 3, "000s": 3, "thousand": 3, "thousands": 3, "t": 3, "tsd": 3, "千": 3,
    "万": 4,
    "m": 6, "mm": 6, "mn": 6, "mio": 6, "million": 6, "millions": 6, "百万": 6,
    "亿": 8,
    "bn": 9, "mrd": 9, "billion": 9, "billions": 9,
}  # fmt: skip
_CURRENCIES = {"usd", "eur", "gbp", "cny", "rmb", "jpy", "hkd", "sgd", "aud", "cad", "chf", "inr", "人民币", "元"}
#: A header's trailing unit: ``Amount (K)``, ``Amount (USD)``, ``金额（万元）``, ``Amount [$M]``,
#: ``金额/万元``, ``Amount ('000)``.
_UNIT = re.compile(r"^(.+?)\s*(?:[（(\[【]([^()（）\[\]【】]+)[)）\]】]|/\s*([^/]+))\s*$")
_UNIT_TOKEN = re.compile(r"[$€£¥￥]|[^\s,;$€£¥￥]+")


def _unit_scale(unit: str) -> tuple[str, int] | None:
    """The scale a header's unit (``K``, ``USD, in thousands``, ``万元``, ``$M``, ``TEUR``) gives, with
    the word it is written as (``("", 0)``: a currency alone), or None when it is no unit."""
    word, scale = "", 0
    text = unicodedata.normalize("NFKC", unit).strip()
    for cn in ("百万", "千", "万", "亿"):  # 万元, 千元, 百万人民币: the scale, then the currency
        if text.startswith(cn):
            word, scale, text = cn, _SCALES[cn], text[len(cn) :]
            break
    for token in _UNIT_TOKEN.findall(text):
        t = token.casefold().rstrip(".")
        if t in "$€£¥￥" or t in _CURRENCIES or t == "in":
            continue
        if len(t) > 3 and t[0] in "tk" and t[1:] in _CURRENCIES:  # TEUR, kUSD
            t = t[0]
        elif len(t) == 4 and t[-1] in "km" and t[:3] in _CURRENCIES:  # USDk, EURm
            t = t[-1]
        if t not in _SCALES or scale:
            return None
        word, scale = token, _SCALES[t]
    return word, scale


def header_keys(text: str) -> tuple[str, ...]:
    """A header's :func:`header_key`, then, for a header naming its unit (``商机金额（万元）``,
    ``Amount (USD)``, ``Amount (K)``), the key without it: either matches a field's names."""
    m = _UNIT.match(text)
    if m and _unit_scale(m[2] or m[3]) is not None:
        return header_key(text), header_key(m[1])
    return (header_key(text),)


def header_scale(text: str) -> tuple[str, int]:
    """The scale a header says its amounts are in, as the word it uses and a power of ten:
    ``("万", 4)`` for ``金额（万元）``, ``("K", 3)`` for ``Amount (K)``, ``("thousands", 3)`` for
    ``Amount (USD, in thousands)``; ``("", 0)`` when it names none."""
    m = _UNIT.match(text)
    return (_unit_scale(m[2] or m[3]) or ("", 0)) if m else ("", 0)


#: Stage names that mean a deal was won or lost, in the CRMs tasksync knows; configured
#: ``crm.stage_won`` / ``crm.stage_lost`` names are added to these.
WON_STAGES = (
    "won", "closed won", "closedwon", "closed - won", "win", "deal won", "赢单", "成交",
    "已成交", "赢单关闭", "签约", "已签约", "赢单成交", "合同签订", "结束-赢单", "关闭-赢单",
)  # fmt: skip
LOST_STAGES = (
    "lost", "closed lost", "closedlost", "closed - lost", "lose", "deal lost", "输单",
    "丢单", "已输单", "输单关闭", "失败", "已失败", "无效", "结束-输单", "关闭-输单",
    "closed lost to competition", "closed-lost to competition",
)  # fmt: skip


#: A stage's parts: "Won - Signed", "Lost: no budget", "赢单（新签）", "Negotiation | Lost".
_STAGE_PARTS = re.compile(r"\s+[-–—|/]\s+|[:：(（)）|/]")
#: A stage's number in the pipeline: "6 - Closed Won", "7. Closed Lost", "S6: Won".
_STAGE_NUMBER = re.compile(r"^\s*[A-Za-z]?\d+\s*[.)]?\s*(?:[-–—:：]\s*)?(?=\D)")


class StageClassifier:
    """Says whether a stage name means won, lost or still open, with synonyms."""

    def __init__(self, won: Iterable[str] = (), lost: Iterable[str] = ()) -> None:
        self.won = {header_key(s) for s in (*WON_STAGES, *won)} - {""}
        self.lost = {header_key(s) for s in (*LOST_STAGES, *lost)} - {""}
        self._cache: dict[str, StageKind] = {}
        self.cached = self._cache.get  # for hot loops: the answer for a stage seen before, or None

    def __call__(self, stage: str) -> StageKind:
        seen = self._cache.get(stage)
        if seen is not None:
            return seen
        kind = self._kind(header_key(stage))
        if kind == "open":  # "6 - Closed Won", "Won - Signed", "Lost: no budget", "赢单(新签)"
            parts = _STAGE_PARTS.split(_STAGE_NUMBER.sub("", stage))
            kind = next((k for k in map(self._kind, map(header_key, parts)) if k != "open"), kind)
        if len(self._cache) < 10_000:
            self._cache[stage] = kind
        return kind

    def _kind(self, key: str) -> StageKind:
        if key in self.won or key.startswith("closedwon"):
            return "won"
        if key in self.lost or key.startswith("closedlost"):
            return "lost"
        return "open"
