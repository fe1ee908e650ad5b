"""A sales-ops analyst's one-off redistribution from XLSX exports (HubSpot, Zoho and a Chinese CRM:
merged title rows, 姓/名 or First/Last Name columns, 年月日 dates, ¥ and 万 amounts, a 合计 row, a
second sheet; ``xlsxgen``), through the CLI as the README runs it: each must read right, or say
clearly which file is wrong and write nothing."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import xlsxgen
from test_crm_exports import _cli
from test_stranger_boards import on_fake_trello

TODAY = xlsxgen.TODAY.isoformat()


def _plan(config: Path) -> dict[str, Any]:
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def test_a_deals_export_without_its_amount_column_is_rejected_naming_it(tmp_path: Path) -> None:
    """A deals sheet exported without its amount column read as deals all worth 0: the plan set
    priorities by 'expected value 0' and divided nothing by value, with no word of the missing
    column. It is now rejected (exit 3) naming the file and the headers tried; `value = ""`
    says the export has no amounts."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    wb = load_workbook(deals)
    wb["数据"].delete_cols(6)  # 商机金额
    wb.save(deals)
    board = (tmp_path / "board.json").read_bytes()
    code, out, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3, out + err
    assert f"{deals}: missing column for deals field 'value'" in err and "'商机金额'" in err, err
    assert 'value = "" if the export has none' in err
    assert (tmp_path / "board.json").read_bytes() == board
    code, out, _ = _cli(["crm", "check", str(deals)])
    assert code == 3 and "missing column for deals field 'value'" in out, out
    config.write_text(config.read_text(encoding="utf-8") + '[crm.columns.deals]\nvalue = ""\n', encoding="utf-8")
    _plan(config)


def _essence(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "changes": [(c["title"], c["field"], c["after"], c["reason"]) for c in plan["plan"]["changes"]],
        "reps": [(r["name"], r["before"], r["after"], r["won"], r["closed"]) for r in plan["reps"]],
    }


def test_chinese_names_split_over_two_columns_are_written_family_name_first(tmp_path: Path) -> None:
    """HubSpot's and Zoho's users exports split a Chinese name as First Name 伟, Last Name 王; joined
    with a space as for a Western name it read 伟 王, which matches no owner written 王伟 in the
    deals, companies and history, nor the board member 王伟: every owner counted for nobody. 姓 + 名
    read 王 伟, matched to the member only loosely, with a note per rep. Both read 王伟 now, and an
    owner shown given name first (伟 王, as HubSpot shows owners) is 王伟 too."""
    data = xlsxgen.dataset()
    chinese = _plan(xlsxgen.write(tmp_path / "cn", "chinese", data))
    hubspot = xlsxgen.write(tmp_path / "hs", "hubspot", data)
    shown = {r["name"]: f"{r['first']} {r['last']}" for r in data.reps}  # as HubSpot shows owners: 伟 王
    deals = tmp_path / "hs" / "crm" / "deals.xlsx"
    wb = load_workbook(deals)
    for (cell,) in wb.active.iter_rows(min_row=2, min_col=7, max_col=7):  # Deal owner
        cell.value = shown.get(str(cell.value), cell.value)
    wb.save(deals)
    code, out, _ = _cli(["-c", str(hubspot), "crm", "check"])
    assert code == 0 and "match no rep" not in out, out
    assert [r["name"] for r in chinese["reps"]] == sorted(r["name"] for r in data.reps)
    assert not [n for n in chinese["plan"]["notes"] if "by name (accents and word order ignored)" in n]
    assert _essence(_plan(hubspot)) == _essence(chinese)


def test_a_chinese_total_row_under_the_accounts_names_is_not_an_account(tmp_path: Path) -> None:
    """A Chinese CRM's accounts sheet ends with its count alone under the names (合计：40, or
    共40条): it read as a 41st account. A company whose name starts so (汇总科技) is one."""
    data = xlsxgen.dataset()
    xlsxgen.write(tmp_path, "chinese", data)
    accounts = tmp_path / "crm" / "客户.xlsx"
    wb = load_workbook(accounts)
    wb["数据"].append(["共40条"])
    wb["数据"].insert_rows(3)
    wb["数据"]["A3"] = "汇总科技"
    wb.save(accounts)
    code, out, _ = _cli(["crm", "check", str(accounts)])
    assert code == 0, out
    n = len(data.accounts) + 1
    assert f"rows: {n} read, {n} usable" in out and "2 report footer/total line(s) ignored" in out, out


def test_a_workbook_whose_first_sheet_is_a_cover_names_its_other_sheets(tmp_path: Path) -> None:
    """A Chinese CRM's export may open with a cover sheet (说明) before the data: the deals were
    refused with 'headers are: 导出说明' and no word of the sheet read or the others. The message
    names them and the key that reads the right one; with it the plan reads the deals."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    wb = load_workbook(deals)
    wb.create_sheet("说明", 0).append(["导出说明：本文件由系统导出"])
    wb.save(deals)
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3, err
    assert "That is sheet '说明', the workbook's first; its others: '数据', '汇总'" in err, err
    assert '[crm.options.deals] sheet = "数据"' in err
    config.write_text(config.read_text(encoding="utf-8") + '[crm.options.deals]\nsheet = "数据"\n', encoding="utf-8")
    assert len(_plan(config)["plan"]["changes"]) > 10


def test_a_members_table_entry_for_no_rep_is_named(tmp_path: Path) -> None:
    """A [members] entry whose rep is in no export (a typo, 王玮 for 王伟, or someone who left) was
    dropped without a word: the analyst believed the rep mapped. The plan's notes name it."""
    config = xlsxgen.write(tmp_path)
    config.write_text(
        config.read_text(encoding="utf-8") + '[members]\n"王玮" = "wangwei"\n"李娜" = "李娜"\n', encoding="utf-8"
    )
    notes = _plan(config)["plan"]["notes"]
    assert "members table names '王玮', who is no rep in the reps export (by id, name or email): not used" in notes
    assert not [n for n in notes if "'李娜'" in n and "members table" in n], notes


def test_cells_of_dashes_alone_are_empty(tmp_path: Path) -> None:
    """Chinese CRMs export "--" for a field with no value, and accounting formats show none as
    "-" or "¥ -": each was a cell that could not be read (the whole deals export refused) or,
    under 负责人, an owner named "--" matching no rep. They are empty cells now."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    wb = load_workbook(deals)
    ws = wb["数据"]
    ws["F3"], ws["F4"], ws["G5"], ws["D6"], ws["F7"] = "--", "¥ -", "--", "--", "－"
    wb.save(deals)
    code, out, _ = _cli(["crm", "check", str(deals)])
    assert code == 0 and "rows: 32 read, 32 usable" in out and "problem" not in out, out
    plan = _plan(config)
    assert not [n for n in plan["plan"]["notes"] if "'--'" in n], plan["plan"]["notes"]


def test_a_wrong_trello_token_names_the_variables_to_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trello's 401 said 'invalid token' with no word of where tasksync took it from (Asana's names
    TASKSYNC_ASANA_TOKEN); the board is left as it was."""
    config = xlsxgen.write(tmp_path)
    with ExitStack() as stack:
        fake = on_fake_trello(stack, config, monkeypatch)
        monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "wrong")
        for command in (["plan"], ["apply", "--now"]):
            code, _, err = _cli(["-c", str(config), *command])
            assert code == 6, err
            assert "HTTP 401: invalid token; check TASKSYNC_TRELLO_KEY and TASKSYNC_TRELLO_TOKEN" in err, err
        assert not fake.changes


def test_a_header_written_over_two_lines_in_its_cell_is_named_on_one(tmp_path: Path) -> None:
    """A header typed with a line break in its cell (预计成交⏎日期, Alt+Enter in Excel) matched, but
    every problem naming its column broke the one-line `file:row:column: ...` message in two."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    wb = load_workbook(deals)
    wb["数据"]["G2"], wb["数据"]["G9"] = "预计成交\n日期", "下周"
    wb.save(deals)
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3, err
    problem = f"{deals}:9:预计成交 日期: expected a date like 2024-01-31, found '下周'"
    assert problem in [line.strip() for line in err.splitlines()], err


def test_a_file_named_xlsx_that_is_no_workbook_says_it_was_read_as_text(tmp_path: Path) -> None:
    """A deals.xlsx that is not a workbook (a text file, a CRM's CSV saved under the wrong name) was
    read as text without a word: 'headers are: this is not a zip' left the analyst guessing. The
    message says so; nothing is written."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    deals.write_text("this is not a zip\n", encoding="utf-8")
    board = (tmp_path / "board.json").read_bytes()
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3, err
    assert err.startswith(f"tasksync: {deals}: missing column for deals field 'stage'"), err
    assert "The file is named like a workbook but is not one (not a zip file): it was read as text" in err
    assert (tmp_path / "board.json").read_bytes() == board


_BAND_CLAIM = re.compile(
    r"^(\S+) (would go )?(above|below) the (value )?band(?: with the plan's other moves)? "
    r"\(([\d,]+) (?:expected value|open cards(?: held)?), band ([\d,]+)–([\d,]+)"
)


def test_a_reason_says_a_rep_is_outside_a_band_only_when_its_figures_show_it(tmp_path: Path) -> None:
    """The balanced policy's value pass moves a card off a rep the count pass has just filled: the
    reason said '刘洋 above the value band (60,556 expected value, band 41,217–61,825; ...)', a
    claim its own figures (the plan's tables: before the plan) contradict. Such a reason now says
    the rep would go above the band with the plan's other moves."""
    plan = _plan(xlsxgen.write(tmp_path))
    claims = [m for c in plan["plan"]["changes"] if (m := _BAND_CLAIM.match(c["reason"]))]
    reps = {r["name"]: r for r in plan["reps"]}
    for m in claims:
        before, lower, upper = (float(x.replace(",", "")) for x in m.group(5, 6, 7))
        outside = before > upper if m[3] == "above" else before < lower
        assert outside != bool(m[2]), m[0]
        table = reps[m[1]]["expected_value_before" if m[4] else "before"]
        assert round(table) == before, (m[0], table)
    assert any(m[2] for m in claims), "the book has a rep the plan's other moves would take out of a band"


def test_a_damaged_xlsx_is_named_as_such_not_as_text_of_unknown_encoding(tmp_path: Path) -> None:
    """A .xlsx whose bytes are neither a zip nor text (damaged in transfer) was refused with 'cannot
    tell the file's text encoding; set crm.encoding', sending the analyst after an encoding."""
    config = xlsxgen.write(tmp_path)
    deals = tmp_path / "crm" / "商机.xlsx"
    deals.write_bytes(bytes(range(256)) * 8)
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3, err
    assert f"{deals}: not an XLSX workbook (not a zip file: damaged, or not one) nor text" in err, err


def test_a_dash_in_a_yes_no_column_is_still_a_no(tmp_path: Path) -> None:
    """Dashes alone are empty cells, except in a yes/no column, where "-" is a no: a rep whose
    status reads "-" is away, as before."""
    config = xlsxgen.write(tmp_path)
    reps = tmp_path / "crm" / "员工.xlsx"
    wb = load_workbook(reps)
    wb["数据"]["H3"] = "-"  # 王伟's 状态
    wb.save(reps)
    assert not {r["name"]: r["available"] for r in _plan(config)["reps"]}["王伟"]
