"""Loading exports: problems named by file, line and column; thresholds; column profiles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl
import pytest

from tasksync.crm import FileReport, load_crm, read_export
from tasksync.crm.values import parse_amount
from tasksync.errors import ConfigError, CrmError
from tasksync.examples import generate
from tasksync.settings import CrmSettings, load_settings, settings_from_mapping

DEALS_HEADER = "Deal ID,Deal Name,Stage,Amount,Close Date,Owner\n"


def _deals(tmp_path: Path, body: str, **crm: object) -> tuple[list[dict[str, object]], FileReport]:
    path = tmp_path / "deals.csv"
    path.write_text(DEALS_HEADER + body, encoding="utf-8")
    rows, report = read_export(path, "deals", CrmSettings(**crm))  # type: ignore[arg-type]
    return [v for _, v in rows], report


def test_every_unreadable_cell_is_named_by_file_line_and_column(tmp_path: Path) -> None:
    _, report = _deals(
        tmp_path,
        "D1,A,Lead,100,2024-01-05,x\nD2,B,Lead,lots,2024-01-05,x\n,C,Lead,100,someday,x\nD4,D,Lead,100,2024-01-05,x\n",
        max_bad_rows=0.6,
    )
    path = tmp_path / "deals.csv"
    assert report.problems == [
        f"{path}:3:Amount: expected an amount like 1234.50, found 'lots'",
        f"{path}:4:Deal ID: required value is empty",
        f"{path}:4:Close Date: expected a date like 2024-01-31, found 'someday'",
    ]
    assert (report.rows, report.used, report.bad, report.ok) == (4, 2, 2, True)


def test_max_bad_rows_decides_use_or_reject(tmp_path: Path) -> None:
    body = "".join(f"D{i},N,Lead,{'x' if i < 2 else i},2024-01-05,o\n" for i in range(10))
    rows, report = _deals(tmp_path, body, max_bad_rows=0.2)
    assert len(rows) == 8 and report.ok
    rows, report = _deals(tmp_path, body, max_bad_rows=0.1)
    assert not report.ok
    assert report.rejected is not None
    assert "2 of 10 rows cannot be read (allowed: 10%" in report.rejected


def test_load_crm_rejects_a_file_with_its_problems(tmp_path: Path) -> None:
    config = generate(tmp_path / "demo")
    deals = tmp_path / "demo" / "crm" / "deals.csv"
    lines = deals.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",Lead,", ",,").replace(",Qualified,", ",,")
    lines[5] = lines[5].replace(",Proposal,", ",,").replace(",Negotiation,", ",,")
    deals.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(config)
    with pytest.raises(CrmError) as e:
        load_crm(settings.crm, settings.base_dir)
    assert "1 of 336 rows cannot be read" in str(e.value)
    assert e.value.problems == [f"{deals}:6:Stage: required value is empty"]
    settings.crm.max_bad_rows = 0.01
    data = load_crm(settings.crm, settings.base_dir)
    assert len(data.deals) == 335
    assert f"{deals}:6:Stage: required value is empty" in data.problems


def test_the_demo_example_still_loads_unchanged(tmp_path: Path) -> None:
    settings = load_settings(generate(tmp_path))
    data = load_crm(settings.crm, settings.base_dir)
    assert (len(data.reps), len(data.accounts), len(data.deals), len(data.history)) == (
        12,
        160,
        336,
        900,
    )
    assert data.problems == []
    assert sum(h.won for h in data.history) > 0 and not all(h.won for h in data.history)
    assert data.deals_by_id["D00001"].account_id == "A0090"


def test_date_order_is_detected_per_column_and_shared_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "Deal ID,Stage,Closed,Created\nH1,Won,03/04/2024,01/02/2024\nH2,Lost,25/04/2024,02/03/2024\n",
        encoding="utf-8",
    )
    rows, report = read_export(path, "history", CrmSettings())
    got = [v for _, v in rows]
    assert got[0]["closed"] == date(2024, 4, 3)  # day first: the column has 25/04
    assert got[0]["created"] == date(2024, 2, 1)  # no telling value: follows the file
    assert report.types["closed"] == "date (day first)"
    assert report.types["created"] == "date (day first)"


def test_a_column_mixing_orders_is_read_per_value_with_a_note(tmp_path: Path) -> None:
    rows, report = _deals(tmp_path, "D1,A,Lead,1,01/31/2024,o\nD2,B,Lead,1,02/03/2024,o\nD3,C,Lead,1,31/01/2024,o\n")
    assert [r["close_date"] for r in rows] == [date(2024, 1, 31), date(2024, 2, 3), date(2024, 1, 31)]
    assert report.types["close_date"] == "date (order read per value)"
    assert any("mixes day-first and month-first" in n for n in report.notes)


def test_a_date_contradicting_its_column_after_the_look_ahead_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasksync.crm.load as load

    monkeypatch.setattr(load, "_LOOKAHEAD", 2)
    rows, report = _deals(
        tmp_path,
        "D1,A,Lead,1,01/31/2024,o\nD2,B,Lead,1,02/03/2024,o\nD3,C,Lead,1,31/01/2024,o\n",
        max_bad_rows=0.5,
    )
    assert [r["close_date"] for r in rows] == [date(2024, 1, 31), date(2024, 2, 3)]
    assert report.problems == [
        f"{tmp_path / 'deals.csv'}:4:Close Date: expected a month-first date like 01/31/2024 "
        "(this column is month-first), found '31/01/2024'"
    ]


def test_configured_date_order_and_ambiguity_note(tmp_path: Path) -> None:
    body = "D1,A,Lead,1,03/04/2024,o\n"
    rows, report = _deals(tmp_path, body)
    assert rows[0]["close_date"] == date(2024, 3, 4)
    assert any("has dates like '03/04/2024' that read either way" in n for n in report.notes)
    _, report = _deals(tmp_path, "D1,A,Lead,1,12/1/2027 10:30 AM,o\n")  # the file's own date is quoted
    assert any("has dates like '12/1/2027 10:30 AM' that read either way" in n for n in report.notes)
    rows, _ = _deals(tmp_path, body, date_order="dmy")
    assert rows[0]["close_date"] == date(2024, 4, 3)


def test_decimal_comma_is_detected_per_column(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text("Deal ID;Deal Name;Stage;Amount\nD1;A;Lead;1.234\nD2;B;Lead;99,50\n", encoding="utf-8")
    rows, report = read_export(path, "deals", CrmSettings())
    assert [v["value"] for _, v in rows] == [1234.0, 99.5]
    assert report.types["value"] == "amount (decimal mark ',')"


def test_undecodable_bytes_are_a_cell_problem(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes(
        (DEALS_HEADER + "D1,Café,Lead,1,2024-01-05,o\n").encode("utf-8") + b"D2,Caf\xe9,Lead,1,2024-01-05,o\n"
    )
    rows, report = read_export(path, "deals", CrmSettings(encoding="utf-8", max_bad_rows=0.5))
    assert [v["name"] for _, v in rows] == ["Café"]
    assert report.problems == [f"{path}:3:Deal Name: expected text in utf-8, found bytes that are not utf-8: b'\\xe9'"]


def test_per_kind_options_and_xlsx_files_in_load_crm(tmp_path: Path) -> None:
    config = generate(tmp_path)
    crm = tmp_path / "crm"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Summary"
    ws.append(["nothing here"])
    sheet = wb.create_sheet("Deals")
    for line in (crm / "deals.csv").read_text(encoding="utf-8").splitlines():
        sheet.append(line.split(","))
    wb.save(crm / "deals.xlsx")
    (crm / "deals.csv").unlink()
    raw = {"crm": {"files": {"deals": "deals.xlsx"}, "options": {"deals": {"sheet": "Deals"}}}}
    settings = settings_from_mapping(raw, base_dir=config.parent)
    data = load_crm(settings.crm, settings.base_dir)
    assert len(data.deals) == 336 and data.deals[0].value == 33900.0
    raw["crm"]["options"] = {"deal": {"sheet": "Deals"}}
    with pytest.raises(ConfigError, match=r"crm\.options: unknown kind\(s\) 'deal'"):
        load_crm(settings_from_mapping(raw, base_dir=config.parent).crm, config.parent)
    raw["crm"]["options"] = {}
    raw["crm"]["columns"] = {"opportunities": {"id": "Id"}}
    with pytest.raises(ConfigError, match=r"crm\.columns: unknown kind\(s\) 'opportunities'"):
        load_crm(settings_from_mapping(raw, base_dir=config.parent).crm, config.parent)


def test_a_missing_default_csv_falls_back_to_the_xlsx_of_the_same_name(tmp_path: Path) -> None:
    config = generate(tmp_path)
    crm = tmp_path / "crm"
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("x")
    for line in (crm / "reps.csv").read_text(encoding="utf-8").splitlines():
        ws.append(line.split(","))
    wb.save(crm / "reps.xlsx")
    (crm / "reps.csv").unlink()
    settings = load_settings(config)
    data = load_crm(settings.crm, settings.base_dir)
    assert len(data.reps) == 12
    assert any("reading reps.xlsx instead" in p for p in data.problems)


def test_repeated_bad_cells_are_each_reported_and_odd_headers_are_safe(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    odd = "Amount'); raise SystemExit('x') #\n"
    path.write_text(
        f'Deal ID,Deal Name,Stage,"{odd}",Close Date\n'
        "D1,A,Lead,5,2024-13-01\nD2,B,Lead,6,2024-13-01\nD3,C,Lead,7,2024-01-05\n",
        encoding="utf-8",
    )
    settings = CrmSettings(columns={"deals": {"value": odd.strip()}}, max_bad_rows=1.0)
    rows, report = read_export(path, "deals", settings)
    assert [(v["id"], v["value"]) for _, v in rows] == [("D3", 7.0)]
    assert [p.split(":")[-3] for p in report.problems] == ["3", "4"]  # the header takes 2 lines
    assert all("expected a valid calendar date, found '2024-13-01'" in p for p in report.problems)


def test_repeated_closed_deal_ids_are_named_like_repeated_deal_ids(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "Deal ID,Stage,Closed\nH1,Won,2024-01-05\nH2,Lost,2024-01-06\nH1,Lost,2024-02-01\n,Won,2024-03-01\n",
        encoding="utf-8",
    )
    rows, report = read_export(path, "history", CrmSettings(max_bad_rows=0.5))
    assert [(v["id"], v["won"]) for _, v in rows] == [("H1", True), ("H2", False), ("history.csv:5", True)]
    assert report.problems == [
        f"{path}:4:Deal ID: duplicate closed deal id 'H1': line 2 has it too; this row is not read (the first is kept)"
    ]
    assert (report.rows, report.used, report.bad) == (4, 3, 1)


def test_repeated_closed_deal_ids_reach_load_crm_and_can_reject_history(tmp_path: Path) -> None:
    config = generate(tmp_path)
    history = tmp_path / "crm" / "history.csv"
    lines = history.read_text(encoding="utf-8").splitlines()
    first = lines[1]
    history.write_text("\n".join([*lines, first, first]) + "\n", encoding="utf-8")
    settings = load_settings(config)
    with pytest.raises(CrmError) as e:
        load_crm(settings.crm.model_copy(update={"max_bad_rows": 0.0}), settings.base_dir)
    assert f"{history}:{len(lines) + 1}:" in str(e.value.problems)
    data = load_crm(settings.crm.model_copy(update={"max_bad_rows": 0.01}), settings.base_dir)
    assert len(data.history) == len(lines) - 1
    assert sum("duplicate closed deal id" in p for p in data.problems) == 2


def test_amounts_read_on_the_fast_path_match_the_amount_parser(tmp_path: Path) -> None:
    cells = ["USD 1,234.50", "USD -5.00", "-USD 7", "$12", "USD 1e5", "USD +5", "USD", "USD 1,2,3.4.5", "(120)"]
    cells += ["12.5万", "USD ,5", "USD 1_000", "USD nan"]
    body = "".join(f'D{i},N{i},Lead,"{c}",2024-01-05,o\n' for i, c in enumerate(["USD 1.00"] * 20 + cells))
    rows, _ = _deals(tmp_path, body, max_bad_rows=1.0)
    got = {str(v["id"]): v.get("value") for v in rows}
    for i, cell in enumerate(cells, 20):
        try:
            expected: float | None = parse_amount(cell, ".")
        except ValueError:
            expected = None
        assert got.get(f"D{i}") == expected, cell


def test_repeated_text_is_kept_once_in_the_records(tmp_path: Path) -> None:
    config = generate(tmp_path)
    settings = load_settings(config)
    data = load_crm(settings.crm, settings.base_dir)
    products = {h.product for h in data.history if h.product}
    assert products and len({id(h.product) for h in data.history if h.product}) == len(products)


def test_field_names_going_into_generated_code_are_checked() -> None:
    from tasksync.crm.load import _identifier

    assert _identifier("close_date") == "close_date"
    for bad in ("close date", "x) or (y", "class", ""):
        with pytest.raises(ValueError, match="is not a Python identifier"):
            _identifier(bad)


@pytest.mark.parametrize("lookahead", [1, 3, 30])
def test_rows_after_the_look_ahead_are_read_as_rows_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookahead: int
) -> None:
    import tasksync.crm.load as load

    body = "".join(
        f"D{i},N{i},Lead,{'lots' if i % 7 == 3 else i},2024-01-05,o\n"
        + ("\n" if i % 5 == 0 else "")
        + (",,,,,\n" if i % 9 == 0 else "")
        + (f'D{i}b,"two\nlines",Lead,1,2024-01-06,o\n' if i % 11 == 0 else "")
        for i in range(60)
    )
    monkeypatch.setattr(load, "_LOOKAHEAD", 100_000)
    expected = _deals(tmp_path, body, max_bad_rows=1.0)
    monkeypatch.setattr(load, "_LOOKAHEAD", lookahead)
    rows, report = _deals(tmp_path, body, max_bad_rows=1.0)
    assert (rows, report.problems) == (expected[0], expected[1].problems)
    assert (report.rows, report.used, report.bad) == (expected[1].rows, expected[1].used, expected[1].bad)
    physical = (DEALS_HEADER + body).splitlines()
    lots = [n for n, text in enumerate(physical, 1) if ",lots," in text]
    assert len(lots) == 9 and lots[-1] > 60
    assert report.problems == [
        f"{tmp_path / 'deals.csv'}:{n}:Amount: expected an amount like 1234.50, found 'lots'" for n in lots
    ]

    (tmp_path / "deals.csv").write_text(DEALS_HEADER + body + f"D99,{'x' * 200_000},Lead\n", encoding="utf-8")
    monkeypatch.setattr(load, "_LOOKAHEAD", 100_000)
    with pytest.raises(CrmError) as whole:
        read_export(tmp_path / "deals.csv", "deals", CrmSettings(max_bad_rows=1.0))
    monkeypatch.setattr(load, "_LOOKAHEAD", lookahead)
    with pytest.raises(CrmError) as direct:
        read_export(tmp_path / "deals.csv", "deals", CrmSettings(max_bad_rows=1.0))
    assert str(direct.value) == str(whole.value)
    assert f"deals.csv:{len(physical) + 1}: not valid CSV: field larger than field limit" in str(direct.value)
