"""Cell values as CRMs export them: dates, amounts, flags, numbers, names and stages."""

from __future__ import annotations

from datetime import date

import pytest

from tasksync.crm import compare_row_counts
from tasksync.crm.values import (
    StageClassifier,
    account_key,
    amount_decimal_hint,
    date_order_hint,
    header_key,
    header_keys,
    header_scale,
    name_keys,
    normalise_name,
    parse_amount,
    parse_bool,
    parse_date,
    parse_int,
    parse_list,
)

JAN5 = date(2024, 1, 5)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-05",
        "2024/1/5",
        "2024.01.05",
        "2024年1月5日",
        "2024年01月05日 10:30",
        "05.01.2024",
        "1/5/2024",
        "01/05/2024 1:45 PM",
        "1/5/24",
        "45296",
        "45296.75",
        "5-Jan-2024",
        "05 Jan 2024",
        "Jan 5, 2024",
        "January 5 2024",
        "2024-01-05T10:00:00Z",
        "2024-01-05 23:59:59",
        " 2024-01-05 ",
    ],
)
def test_dates_in_every_export_form(text: str) -> None:
    assert parse_date(text) == JAN5


def test_day_first_when_configured_or_obvious() -> None:
    assert parse_date("5/1/2024", "dmy") == JAN5
    assert parse_date("13/1/2024") == date(2024, 1, 13)
    assert parse_date("1/13/2024", "mdy") == date(2024, 1, 13)


def test_a_column_order_rejects_a_value_that_only_reads_the_other_way() -> None:
    with pytest.raises(ValueError, match=r"month-first date .* found '13/1/2024'"):
        parse_date("13/1/2024", "mdy")
    with pytest.raises(ValueError, match=r"day-first date .* found '1/13/2024'"):
        parse_date("1/13/2024", "dmy")


@pytest.mark.parametrize("text", ["2024-02-30", "31/31/2024", "tomorrow", "", "123", "99999"])
def test_bad_dates_say_what_was_expected_and_found(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected .*found"):
        parse_date(text)


def test_date_order_hints() -> None:
    assert date_order_hint("13/01/2024") == "dmy"
    assert date_order_hint("01/13/2024") == "mdy"
    assert date_order_hint("01/02/2024") is None
    assert date_order_hint("2024-01-13") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$1,234.50", 1234.5),
        ("¥1,234", 1234.0),
        ("￥1,234", 1234.0),
        ("1.234,50 €", 1234.5),
        ("€ 1.234,50", 1234.5),
        ("1 234,50", 1234.5),
        ("1\u00a0234,50 €", 1234.5),
        ("1'234.50", 1234.5),
        ("USD 1,234.50", 1234.5),
        ("1,234.50 USD", 1234.5),
        ("CN¥1,234", 1234.0),
        ("RMB 1,000元", 1000.0),
        ("12.5万", 125000.0),
        ("(120)", -120.0),
        ("-$5", -5.0),
        ("$-5", -5.0),
        ("\u22125", -5.0),
        ("１２３", 123.0),
        ("1234", 1234.0),
        ("1234.5", 1234.5),
        ("1.234.567", 1234567.0),
        ("1,23", 1.23),
    ],
)
def test_amounts_with_symbols_and_locale_separators(text: str, value: float) -> None:
    assert parse_amount(text) == pytest.approx(value)


def test_a_columns_decimal_mark_decides_ambiguous_amounts() -> None:
    assert parse_amount("1.234") == pytest.approx(1.234)
    assert parse_amount("1.234", ",") == pytest.approx(1234.0)
    assert parse_amount("1,234", ",") == pytest.approx(1.234)
    assert parse_amount("1,234", ".") == pytest.approx(1234.0)
    assert amount_decimal_hint("1.234,50") == ","
    assert amount_decimal_hint("1,234.50") == "."
    assert amount_decimal_hint("99,5") == ","
    assert amount_decimal_hint("1,234") is None
    assert amount_decimal_hint("1.234.567") == ","


@pytest.mark.parametrize("text", ["abc", "1-2", "12 apples", "$", "(12", "1.2.3,4,5", ""])
def test_bad_amounts_say_what_was_found(text: str) -> None:
    with pytest.raises(ValueError, match="expected an amount"):
        parse_amount(text)


def test_flags_numbers_and_lists() -> None:
    assert parse_bool("Yes") and parse_bool("是") and parse_bool("TRUE") and parse_bool("在职")
    assert not parse_bool("no") and not parse_bool("否") and not parse_bool("离职")
    with pytest.raises(ValueError, match="expected yes or no, found 'maybe'"):
        parse_bool("maybe")
    assert parse_int("1,200") == 1200
    assert parse_int("51-200") == 125
    assert parse_int("100-499人") == 299
    assert parse_int("10,000+") == 10000
    assert parse_int("1000人以上") == 1000
    with pytest.raises(ValueError, match="whole number"):
        parse_int("many")
    assert parse_list("零售、医疗") == ("零售", "医疗")
    assert parse_list("Retail; Health|Finance") == ("Retail", "Health", "Finance")


def test_names_are_normalised_before_matching() -> None:
    assert normalise_name("  Mei\u3000CHEN ") == "mei chen"
    assert normalise_name("ＭＥＩ　Ｃｈｅｎ") == "mei chen"
    assert "mei chen" in name_keys("Chen, Mei")
    assert "王伟" in name_keys("王 伟")
    assert "mei@x.com" in name_keys("Mei Chen <MEI@x.com>")
    assert header_key("Close Date") == header_key("close_date") == header_key("*CloseDate")


@pytest.mark.parametrize(
    ("stage", "kind"),
    [
        ("Closed Won", "won"),
        ("closedwon", "won"),
        ("Won", "won"),
        ("赢单", "won"),
        ("成交", "won"),
        ("Closed Lost", "lost"),
        ("Closed-Lost to Competition", "lost"),
        ("输单", "lost"),
        ("丢单", "lost"),
        ("Proposal", "open"),
        ("初步接洽", "open"),
    ],
)
def test_stages_map_to_won_lost_or_open(stage: str, kind: str) -> None:
    assert StageClassifier()(stage) == kind


def test_configured_stage_names_are_added() -> None:
    classify = StageClassifier(won=["Signed"], lost=["Dead"])
    assert classify("signed") == "won"
    assert classify("DEAD") == "lost"
    assert classify("Closed Won") == "won"


def test_compare_row_counts_flags_exports_that_lost_most_rows() -> None:
    warnings = compare_row_counts(
        {"deals": 1000, "reps": 12, "history": 900, "accounts": 160},
        {"deals": 120, "reps": 12, "history": 880},
    )
    assert len(warnings) == 2
    assert warnings[0].startswith("accounts: 0 rows, down from 160")
    assert warnings[1].startswith("deals: 120 rows, down from 1,000")
    assert "88% fewer" in warnings[1]
    assert compare_row_counts({"deals": 100}, {"deals": 50}) == []
    assert compare_row_counts({"deals": 100}, {"deals": 50}, threshold=0.4)
    assert compare_row_counts({}, {"deals": 5}) == []
    with pytest.raises(ValueError):
        compare_row_counts({}, {}, threshold=0)


def test_wan_and_yi_amounts_are_exact() -> None:
    assert [parse_amount(f"{v / 10000:g}万") for v in (700, 1400, 23400, 1234500)] == [700, 1400, 23400, 1234500]
    assert parse_amount("1.1亿") == 110_000_000 and parse_amount("-0.07万") == -700


@pytest.mark.parametrize(
    ("text", "value"),
    [("$1.2M", 1_200_000), ("350K", 350_000), ("350k", 350_000), ("(12.5K)", -12_500), ("1.5MM", 1_500_000),
     ("5mn", 5_000_000), ("3bn", 3_000_000_000), ("12 千元", 12_000), ("0.07百万", 70_000),
     ("12.5 MXN", 12.5), ("1234 kr", 1234)],
)  # fmt: skip
def test_amounts_with_a_scale_in_the_cell_are_exact(text: str, value: float) -> None:
    """``$1.2M`` and ``350K`` as CRMs display them; a currency code starting with M or k is no scale."""
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    ("header", "word", "power"),
    [("Amount (K)", "K", 3), ("Amount (USD, in thousands)", "thousands", 3), ("Amount ('000)", "'000", 3),
     ("Amount (TEUR)", "TEUR", 3), ("Amount [$M]", "M", 6), ("Amount (EURm)", "EURm", 6),
     ("金额（万元）", "万", 4), ("金额/万元", "万", 4), ("金额（百万元）", "百万", 6), ("Amount (USD)", "", 0),
     ("Amount (converted)", "", 0), ("Won/Lost", "", 0)],
)  # fmt: skip
def test_a_header_names_the_scale_of_its_amounts(header: str, word: str, power: int) -> None:
    assert header_scale(header) == (word, power)
    if power:
        assert parse_amount("12.5", scale=power) == 12.5 * 10**power
        assert parse_amount("1,5", ",", scale=power) == 1.5 * 10**power
        assert parse_amount("(0.07)", scale=power) == -(7 * 10 ** (power - 2))
        assert len(header_keys(header)) == 2
    assert parse_amount("1.2万", scale=power) == 12_000  # the cell's own scale first


@pytest.mark.parametrize(
    "text",
    ["Tuesday, November 3, 2026", "Tue 3 Nov 2026", "星期二 2026年11月3日", "2026/11/3(周二)", "2026-11-03 (Tue)",
     "Tue, 11/3/2026"],
)  # fmt: skip
def test_long_dates_with_a_weekday_are_read(text: str) -> None:
    """Excel's and Chinese CRMs' long date formats name the weekday."""
    assert parse_date(text) == date(2026, 11, 3)


def test_a_weekday_alone_is_no_date() -> None:
    with pytest.raises(ValueError, match="found 'Tuesday'"):
        parse_date("Tuesday")


@pytest.mark.parametrize(
    ("stage", "kind"),
    [("Won - Signed", "won"), ("Lost: no budget", "lost"), ("赢单（新签）", "won"), ("6 - Closed Won", "won"),
     ("7. Closed Lost", "lost"), ("S6: Won", "won"), ("Negotiation | Lost", "lost"),
     ("Closed Won (Sales Pipeline)", "won"), ("Lost Contact - Reengage", "open"),
     ("Qualification (lost interest)", "open"), ("3 - Proposal", "open"), ("Re-engage / Won back", "open")],
)  # fmt: skip
def test_a_won_or_lost_stage_with_a_number_or_a_qualifier_is_closed(stage: str, kind: str) -> None:
    """Pipelines number their stages and qualify closed ones: those histories read as all open."""
    assert StageClassifier()(stage) == kind


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("Acme, Inc.", "ACME Inc", True), ("Acme Corporation", "Acme", True), ("Smith & Sons Co.", "Smith and Sons", True),
     ("北京星辰科技有限公司", "北京星辰科技", True), ("Société Générale SA", "Societe Generale", True),
     ("AB Foods", "Foods", False), ("Acme Labs", "Acme", False)],
)  # fmt: skip
def test_account_names_written_differently_share_a_key(a: str, b: str, same: bool) -> None:
    """Legal forms only where they end a name (`AB Foods` is not `Foods`)."""
    assert (account_key(a) == account_key(b)) is same
