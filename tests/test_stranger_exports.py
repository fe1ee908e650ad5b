"""Exports as a stranger brings them (report layouts the vendors' own exports use): each must
give the plan the same data gives from a flat export, or say clearly why not."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import defaultdict
from decimal import Decimal as Dec
from pathlib import Path
from typing import Any

from openpyxl import Workbook

import crmgen
from test_crm_exports import _cli

TODAY = crmgen.TODAY.isoformat()


def _board_with_members(
    folder: Path,
    files: dict[str, Any],
    data: crmgen.Dataset,
    renamed: dict[str, tuple[str, str]],
    added: tuple[dict[str, str], ...] = (),
) -> Path:
    """The dataset's board in ``folder`` with members renamed (full name -> (full name, username))
    and ``added`` ones, and its config; returns the config's path."""
    crmgen.write_board(folder / "board.json", data)
    board = json.loads((folder / "board.json").read_text(encoding="utf-8"))
    for member in board["members"]:
        if member["fullName"] in renamed:
            member["fullName"], member["username"] = renamed[member["fullName"]]
    board["members"].extend(added)
    (folder / "board.json").write_text(json.dumps(board, ensure_ascii=False), encoding="utf-8")
    config = folder / "tasksync.toml"
    config.write_text(crmgen.config_text(files), encoding="utf-8")
    return config


def _plan(folder: Path, files: dict[str, Any], data: crmgen.Dataset) -> dict[str, Any]:
    config = _board_with_members(folder, files, data, {})
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return {
        "changes": plan["plan"]["changes"],
        "creates": plan["plan"]["creates"],
        "reps": [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]],
        "segments": plan["segments"],
    }


def _grouped_report(folder: Path, data: crmgen.Dataset, merged: bool) -> dict[str, Any]:
    """Salesforce's formatted export of "Closed Opportunities by Account": title rows, each
    account once per group (in a cell merged down over the group's rows, or on its first row
    only), Subtotal rows, a Total and a footer."""
    files = crmgen.write_salesforce(folder, data)
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in data.history:
        by_account[h["account"]].append(h)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in (["Closed Opportunities by Account"], ["As of 11/2/2026 9:14 AM"], []):
        ws.append(row)
    ws.append(["Account Name", "Opportunity Owner", "Stage", "Amount", "Close Date", "Created Date", "Product Name"])
    for account in sorted(by_account):
        first = ws.max_row + 1
        for i, h in enumerate(by_account[account]):
            stage = "Closed Won" if h["won"] else "Closed Lost"
            ws.append([account if merged or not i else None, h["owner"], stage, h["value"], crmgen._mdy(h["closed"]),
                       crmgen._mdy(h["created"]), h["product"]])  # fmt: skip
        if merged and ws.max_row > first:
            ws.merge_cells(start_row=first, start_column=1, end_row=ws.max_row, end_column=1)
        ws.append(["Subtotal", None, None, sum(h["value"] for h in by_account[account])])
    ws.append(["Total", None, None, sum(h["value"] for h in data.history)])
    ws.append(["Confidential Information - Do Not Distribute"])
    (folder / "closed.csv").unlink()
    wb.save(folder / "closed.xlsx")
    files["files"]["history"] = "closed.xlsx"
    return files


def test_a_grouped_report_with_its_group_cells_merged_gives_the_flat_exports_plan(tmp_path: Path) -> None:
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    files = _grouped_report(tmp_path / "grouped" / "crm", data, merged=True)
    assert _plan(tmp_path / "grouped", files, data) == flat


def test_a_grouped_report_with_blank_group_cells_gives_the_flat_exports_plan(tmp_path: Path) -> None:
    """Without merged cells the rows below each group's first have no account: the account is
    carried down from the group's first row (subtotal lines start no group), and the note says
    so; `fill_down = false` keeps the cells blank, and then the file and what to do are named."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    files = _grouped_report(tmp_path / "grouped" / "crm", data, merged=False)
    assert _plan(tmp_path / "grouped", files, data) == flat
    blank = len(data.history) - len({h["account"] for h in data.history})
    code, out, _ = _cli(["-c", str(tmp_path / "grouped" / "tasksync.toml"), "crm", "check"])
    said = " ".join(out.split())
    assert code == 0 and "a report grouped by Account Name (account_id)" in said
    assert f"carried down over {blank} blank cell(s)" in said
    config = tmp_path / "grouped" / "tasksync.toml"
    config.write_text(config.read_text(encoding="utf-8") + "[crm.options.history]\nfill_down = false\n", "utf-8")
    expected = "row(s) name no account in a report with"
    code, out, _ = _cli(["-c", str(config), "crm", "check"])
    assert code == 0 and f"closed.xlsx: {blank} {expected}" in out and "carried down" not in out
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    assert any(expected in n and "Details Only" in n for n in json.loads(out)["plan"]["notes"])


def _grouped_csv(path: Path, column: str, then: str | None = None, blank: bool = True) -> None:
    """Rewrite a Salesforce CSV report as grouped by ``column`` (sorted by it, then by ``then``),
    with ``blank``, the value on each group's first row only; no subtotal lines."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    at, by = table[0].index(column), table[0].index(then or column)
    rows = [r for r in table[1:] if len(r) == len(table[0])]
    rows.sort(key=lambda r: (r[at].casefold(), r[by].casefold()))
    last = ""
    for row in rows if blank else ():
        value, row[at] = row[at], "" if row[at] == last else row[at]
        last = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([table[0], *rows, *table[len(rows) + 1 :]])
    path.write_text(out.getvalue(), encoding="utf-8-sig")


def test_a_csv_report_grouped_by_owner_with_blank_group_cells_gives_the_flat_exports_plan(tmp_path: Path) -> None:
    """Opportunities by owner as CSV, no subtotals: the owner on each owner's first row only.
    Read as they were, the other rows were unowned and planned as such."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    files = crmgen.write_salesforce(tmp_path / "grouped" / "crm", data)
    _grouped_csv(tmp_path / "grouped" / "crm" / "opportunities.csv", "Opportunity Owner", "Account Name")
    _grouped_csv(tmp_path / "grouped" / "crm" / "closed.csv", "Opportunity Owner", "Account Name")
    assert _plan(tmp_path / "grouped", files, data) == flat


def test_an_ungrouped_export_with_blank_owners_is_not_carried_down(tmp_path: Path) -> None:
    """Unowned leads in a flat export (owners repeat, blanks anywhere) keep their blank owner."""
    data = crmgen.dataset()
    for d in data.deals[::3]:
        d["owner"] = ""
    files = crmgen.write_salesforce(tmp_path / "crm", data)
    config = _board_with_members(tmp_path, files, data, {})
    code, out, _ = _cli(["-c", str(config), "crm", "check"])
    assert code == 0 and "carried down" not in out
    _grouped_csv(tmp_path / "crm" / "opportunities.csv", "Account Name", blank=False)  # sorted, accounts repeat
    code, out, _ = _cli(["-c", str(config), "crm", "check"])
    assert code == 0 and "carried down" not in out


def test_a_chinese_xlsx_with_a_two_row_merged_header_and_wan_amounts_gives_the_same_plan(tmp_path: Path) -> None:
    """Deals and history as XLSX: a merged title row, group headings merged across columns
    over the real headers, headers merged down over both rows, amounts in 万 and full-width
    digits in dates."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "cn" / "crm"
    files = crmgen.write_chinese(folder, data)
    width = str.maketrans("0123456789", "０１２３４５６７８９")
    words = crmgen.STAGE_WORDS["chinese"]

    def day(d: Any) -> str:
        return crmgen._cn_date(d).translate(width)

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["商机列表（导出时间：2026年11月2日）"])
    ws.append(["商机信息", None, None, None, "金额与日期", None, None, "其他", None])
    ws.append(["商机编号", "商机名称", "客户名称", "负责人", "商机金额", "预计成交日期", "创建时间", "商机阶段",
               "产品名称"])  # fmt: skip
    for d in data.deals:
        ws.append([f"SJ{d['n']:05d}", f"{d['account']} - {d['product']}", d["account"], d["owner"] or None,
                   f"{d['value'] / 10000:g}万", day(d["close"]), day(d["created"]), words[d["stage"]],
                   d["product"]])  # fmt: skip
    for cells in ("A1:I1", "A2:D2", "E2:G2", "H2:I2"):
        ws.merge_cells(cells)
    wb.save(folder / "商机.xlsx")
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["客户名称", "成交信息", None, None, "负责人", "产品名称", "创建时间"])
    ws.append([None, "商机阶段", "结单日期", "商机金额", None, None, None])
    for h in data.history:
        ws.append([h["account"], words[4 if h["won"] else 5], day(h["closed"]), f"{h['value'] / 10000:g}万",
                   h["owner"], h["product"], day(h["created"])])  # fmt: skip
    for cells in ("A1:A2", "E1:E2", "F1:F2", "G1:G2", "B1:D1"):
        ws.merge_cells(cells)
    wb.save(folder / "历史.xlsx")
    (folder / "商机.csv").unlink()
    (folder / "历史.csv").unlink()
    files["files"].update(deals="商机.xlsx", history="历史.xlsx")
    code, out, _ = _cli(["crm", "check", str(folder / "历史.xlsx")])
    assert code == 0 and "header on rows 1-2 (merged cells)" in out, out
    assert _plan(tmp_path / "cn", files, data) == flat


def test_zoho_users_with_first_and_last_names_keep_their_territories(tmp_path: Path) -> None:
    """Zoho's users export names reps in First Name and Last Name and their region in
    Territories; the region must be read (it was left out when the pair of name columns made
    the file look like HubSpot's, whose preset has no Territories)."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    files = crmgen.write_salesforce(tmp_path / "zoho" / "crm", data)
    crmgen._csv(
        tmp_path / "zoho" / "crm" / "Users.csv",
        [["First Name", "Last Name", "Email", "Territories", "Role", "Sectors", "Capacity", "Status"]]
        + [
            [r["first"], r["last"], r["email"], r["region"], r["role"], ",".join(r["sectors"]), r["capacity"],
             "Active" if r["available"] else "Inactive"]
            for r in data.reps
        ],
    )  # fmt: skip
    files["files"]["reps"] = "Users.csv"
    code, out, _ = _cli(["crm", "check", str(tmp_path / "zoho" / "crm" / "Users.csv")])
    assert code == 0, out
    assert any(line.split()[:2] == ["Territories", "region"] for line in out.splitlines()), out
    assert _plan(tmp_path / "zoho", files, data) == flat


def test_reps_whose_board_names_lack_accents_or_run_last_first_are_matched(tmp_path: Path) -> None:
    """Trello full names often drop accents (``Chloe Dubois`` for the CRM's ``Chloé Dubois``) or
    run last-first; such a rep matched nobody, and the cards their member held were taken for
    unowned and given a second owner."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "board"
    files = crmgen.write_salesforce(folder / "crm", data)
    renamed = {"Chloé Dubois": ("Chloe Dubois", "chloedubois"), "Grace García": ("Grace Garcia", "gracegarcia1"),
               "Hiro Hayashi": ("Hayashi Hiro", "hhayashi")}  # fmt: skip
    config = _board_with_members(folder, files, data, renamed)
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan = json.loads(out)
    essence = {
        "changes": plan["plan"]["changes"],
        "creates": plan["plan"]["creates"],
        "reps": [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]],
        "segments": plan["segments"],
    }
    assert essence == flat
    code, out, err = _cli(["-c", str(config), "reps", "--json", "--today", TODAY])
    assert code == 0, err
    matched = {r["name"]: (r["member"] or {}).get("name") for r in json.loads(out)["reps"]}
    how = {r["name"]: r["matched_by"] for r in json.loads(out)["reps"]}
    assert matched["Chloé Dubois"] == "Chloe Dubois" and matched["Hiro Hayashi"] == "Hayashi Hiro"
    assert how["Grace García"] == "name (accents and word order ignored)"


def test_a_loose_name_shared_by_two_members_matches_neither(tmp_path: Path) -> None:
    data = crmgen.dataset()
    folder = tmp_path / "board"
    files = crmgen.write_salesforce(folder / "crm", data)
    other = {"id": "5f0000000000000000000001", "fullName": "Dubois Chloe", "username": "cdubois2"}
    config = _board_with_members(folder, files, data, {"Chloé Dubois": ("Chloe Dubois", "chloedubois")}, (other,))
    code, out, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 0, err
    assert (
        "rep 'Chloé Dubois' (Chloé Dubois) would fit board members 'Chloe Dubois' (chloedubois) and "
        "'Dubois Chloe' (cdubois2) by name (accents and word order ignored): none is guessed"
    ) in " ".join(out.split())


def test_a_chinese_export_with_full_width_dates_and_renminbi_amounts_gives_the_same_plan(tmp_path: Path) -> None:
    """UTF-8 with a byte-order mark, dates typed with full-width digits and marks (２０２６／３／５,
    day first ５．３．２０２６), amounts as 人民币12,000元: each was a rejected cell."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "cn" / "crm"
    files = crmgen.write_chinese(folder, data)
    width = str.maketrans("0123456789/.-", "０１２３４５６７８９／．－")
    words = crmgen.STAGE_WORDS["chinese"]
    crmgen._csv(
        folder / "商机.csv",
        [["商机编号", "商机名称", "客户名称", "负责人", "商机阶段", "商机金额", "预计成交日期", "创建时间", "产品名称"]]
        + [
            [f"SJ{d['n']:05d}", f"{d['account']} - {d['product']}", d["account"], d["owner"], words[d["stage"]],
             f"人民币{d['value']:,.0f}元", f"{d['close']:%Y/%m/%d}".translate(width),
             f"{d['created'].day}.{d['created'].month}.{d['created'].year}".translate(width), d["product"]]
            for d in data.deals
        ],
        "utf-8-sig",
    )  # fmt: skip
    assert _plan(tmp_path / "cn", files, data) == flat


def test_export_owners_refuses_a_crm_import_that_needs_ids_the_exports_lack(tmp_path: Path) -> None:
    """Salesforce report exports name reps (no User ID column): `--format salesforce` wrote
    their names as OwnerId, which Data Loader refuses row by row. Deals exported without their
    id gave their names as Record ID. Both are now named, exit 2, and nothing is written."""
    data = crmgen.dataset()
    files = crmgen.write_salesforce(tmp_path / "crm", data)
    config = _board_with_members(tmp_path, files, data, {})
    assert _cli(["-c", str(config), "plan", "--today", TODAY])[0] == 0
    assert _cli(["-c", str(config), "apply"])[0] == 0
    out = tmp_path / "owners.csv"
    code, _, err = _cli(["-c", str(config), "export", "owners", "--format", "salesforce", str(out)])
    assert code == 2 and "salesforce matches owners by their CRM user id" in err and "User ID" in err
    assert not out.exists() and err.count("\n") == 1
    assert _cli(["-c", str(config), "export", "owners", "--format", "hubspot", str(out)])[0] == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("0065g")
    out.unlink()
    table = (tmp_path / "crm" / "opportunities.csv").read_text(encoding="utf-8-sig").splitlines()
    (tmp_path / "crm" / "opportunities.csv").write_text(
        "\n".join(line.rsplit(",", 1)[0] if "," in line else line for line in table) + "\n", encoding="utf-8"
    )
    code, _, err = _cli(["-c", str(config), "export", "owners", "--format", "hubspot", str(out)])
    assert code == 2 and "hubspot matches deals by their record id" in err and not out.exists()
    assert _cli(["-c", str(config), "export", "owners", "--format", "csv", str(out)])[0] == 0


def test_amounts_in_several_currencies_are_named_not_added_silently(tmp_path: Path) -> None:
    """A multi-currency Pipedrive or Salesforce export: each amount is in its deal's currency
    (a Deal - Currency column, or a code in the cell). tasksync does not convert; the file and
    the currencies are named in `crm check` and the plan's notes."""
    data = crmgen.dataset()
    files = crmgen.write_pipedrive(tmp_path / "crm", data)
    config = _board_with_members(tmp_path, files, data, {})
    expected = "amounts in more than one currency (EUR, USD in the first"
    code, out, _ = _cli(["-c", str(config), "crm", "check"])
    assert code == 0 and "currency" not in out.replace("Deal - Currency ", "")
    deals = (tmp_path / "crm" / "deals.csv").read_text(encoding="utf-8").splitlines()
    deals[2] = deals[2].replace(",USD,", ",EUR,")
    (tmp_path / "crm" / "deals.csv").write_text("\n".join(deals) + "\n", encoding="utf-8")
    code, out, _ = _cli(["-c", str(config), "crm", "check"])
    assert code == 0 and f"deals.csv:Deal - Value: {expected}" in " ".join(out.split())
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0 and any(expected in n for n in json.loads(out)["plan"]["notes"]), err
    sf = crmgen.write_salesforce(tmp_path / "sf", data)["files"]["deals"]
    rows = (tmp_path / "sf" / sf).read_text(encoding="utf-8-sig").splitlines()
    rows[1] = rows[1].replace('"USD ', '"EUR ')
    (tmp_path / "sf" / sf).write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, _ = _cli(["-c", str(config), "crm", "check", str(tmp_path / "sf" / sf)])
    assert f"{sf}:Amount: {expected}" in " ".join(out.split())


def test_report_and_reps_show_the_open_card_band_plan_holds(tmp_path: Path) -> None:
    """`report` and `reps` drew the band as mean ±10% unrounded (8.49–10.37, printed "8–10") where
    the plan holds whole cards rounded inwards (9–10): a rep with 8 cards was in band in one,
    below it in the other."""
    data = crmgen.dataset()
    files = crmgen.write_salesforce(tmp_path / "crm", data)
    config = _board_with_members(tmp_path, files, data, {})
    assert _cli(["-c", str(config), "plan", "--today", TODAY])[0] == 0
    assert _cli(["-c", str(config), "apply"])[0] == 0
    bands = []
    for command in ("plan", "report", "reps"):
        code, out, err = _cli(["-c", str(config), command, "--json", "--today", TODAY])
        assert code == 0, err
        bands.append(json.loads(out)["band"]["workload"])
    assert bands[0] == bands[1] == bands[2]
    assert bands[0]["lower"].is_integer() and bands[0]["upper"].is_integer()


def test_an_amount_column_in_wan_by_its_header_gives_the_same_plan(tmp_path: Path) -> None:
    """Chinese reports give amounts in 万元 by the header (``商机金额（万元）``, cells ``2.33``):
    the column was not recognised, so every deal was worth nothing."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "cn" / "crm"
    files = crmgen.write_chinese(folder, data)
    words = crmgen.STAGE_WORDS["chinese"]
    crmgen._csv(
        folder / "商机.csv",
        [["商机编号", "商机名称", "客户名称", "负责人", "商机阶段", "商机金额（万元）", "预计成交日期", "创建时间",
          "产品名称"]]
        + [
            [f"SJ{d['n']:05d}", f"{d['account']} - {d['product']}", d["account"], d["owner"], words[d["stage"]],
             f"{d['value'] / 10000:g}", crmgen._cn_date(d["close"]), crmgen._cn_date(d["created"]), d["product"]]
            for d in data.deals
        ],
        "gb18030",
    )  # fmt: skip
    crmgen._csv(
        folder / "历史.csv",
        [["商机阶段", "结单日期", "客户名称", "金额(万元)", "负责人", "产品名称", "创建时间"]]
        + [
            [words[4 if h["won"] else 5], crmgen._cn_date(h["closed"]), h["account"], f"{h['value'] / 10000:g}",
             h["owner"], h["product"], crmgen._cn_date(h["created"])]
            for h in data.history
        ],
        "gb18030",
    )  # fmt: skip
    code, out, _ = _cli(["crm", "check", str(folder / "商机.csv")])
    assert code == 0 and "amount (decimal mark '.') in 万 (×10,000)" in out, out
    assert _plan(tmp_path / "cn", files, data) == flat


def test_a_chinese_rep_written_with_a_space_matches_the_board_member_without(tmp_path: Path) -> None:
    """The CRM writes 王 伟 where the board's member is 王伟 (or the other way round)."""
    data = crmgen.dataset()
    old = data.reps[2]["name"]
    data.reps[2]["name"] = "王 伟"
    for row in (*data.accounts, *data.deals, *data.history):
        if row["owner"] == old:
            row["owner"] = "王 伟"
    same = _plan(tmp_path / "same", crmgen.write_chinese(tmp_path / "same" / "crm", data), data)
    folder = tmp_path / "joined"
    files = crmgen.write_chinese(folder / "crm", data)
    config = _board_with_members(folder, files, data, {"王 伟": ("王伟", "wangwei")})
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan = json.loads(out)
    assert [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]] == same["reps"]
    assert plan["plan"]["changes"] == same["changes"]


def _scaled_amounts(path: Path, header: str, power: int) -> None:
    """Rewrite a Salesforce CSV report's ``Amount`` column as ``header`` with its amounts in
    10^power (``USD 12,345.00`` -> ``12.345`` under ``Amount (K)``), exactly (decimal shift)."""
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    at = rows[0].index("Amount")
    rows[0][at] = header
    for row in rows[1:]:
        if len(row) > at and row[at]:
            row[at] = format(Dec(row[at].removeprefix("USD ").replace(",", "")).scaleb(-power).normalize(), "f")
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8-sig")


def test_amount_columns_in_thousands_or_millions_by_their_header_give_the_same_plan(tmp_path: Path) -> None:
    """Reports round amounts to a scale the header names (``Amount (K)``, ``Amount (USD, in
    thousands)``, ``Amount ($M)``): the column was not recognised, so every deal was worth nothing."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    for name, header, power in (("k", "Amount (K)", 3), ("thousands", "Amount (USD, in thousands)", 3),
                                ("m", "Amount ($M)", 6)):  # fmt: skip
        folder = tmp_path / name
        files = crmgen.write_salesforce(folder / "crm", data)
        _scaled_amounts(folder / "crm" / "opportunities.csv", header, power)
        _scaled_amounts(folder / "crm" / "closed.csv", header, power)
        code, out, _ = _cli(["crm", "check", str(folder / "crm" / "opportunities.csv")])
        assert code == 0 and f"(×{10**power:,})" in out, out
        assert _plan(folder, files, data) == flat, header


def _in_euros(path: Path, rows: slice) -> None:
    """Rewrite a Pipedrive export's ``rows`` (data rows, 0-based) in euros at 1 EUR = 1.25 USD."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    value, currency = table[0].index("Deal - Value"), table[0].index("Deal - Currency")
    for row in table[1:][rows]:
        row[value], row[currency] = format(Dec(row[value]) * Dec("0.8"), "f"), "EUR"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    path.write_text(out.getvalue(), encoding="utf-8")


def test_amounts_in_several_currencies_are_converted_at_the_configured_rates(tmp_path: Path) -> None:
    """A multi-currency Pipedrive export (Deal - Currency) with `crm.currency` and `crm.rates`
    plans as the same deals exported in one currency; a currency without a rate is a problem
    naming the file, row and column, and nothing is planned from it."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_pipedrive(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "mixed"
    files = crmgen.write_pipedrive(folder / "crm", data)
    _in_euros(folder / "crm" / "deals.csv", slice(0, None, 2))
    _in_euros(folder / "crm" / "closed-deals.csv", slice(1, None, 3))
    config = _board_with_members(folder, files, data, {})
    text = config.read_text(encoding="utf-8").replace("[crm]\n", '[crm]\ncurrency = "USD"\n')
    config.write_text(text + "[crm.rates]\nEUR = 1.25\n", encoding="utf-8")
    code, out, err = _cli(["-c", str(config), "crm", "check"])
    assert code == 0, err
    said = " ".join(out.split())
    assert "converted to USD (currency from Deal - Currency)" in said
    assert "deals.csv:Deal - Value: amounts in EUR (in the first" in said and "1 EUR = 1.25 USD" in said
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan = json.loads(out)
    assert {
        "changes": plan["plan"]["changes"],
        "creates": plan["plan"]["creates"],
        "reps": [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]],
        "segments": plan["segments"],
    } == flat
    deals = (folder / "crm" / "deals.csv").read_text(encoding="utf-8").splitlines()
    deals[3] = deals[3].replace(",EUR,", ",GBP,")
    (folder / "crm" / "deals.csv").write_text("\n".join(deals) + "\n", encoding="utf-8")
    code, out, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code != 0 and not out
    assert "deals.csv:4:Deal - Value: an amount in GBP and no rate for it in [crm.rates]" in " ".join(err.split())


def test_salesforce_amount_converted_is_preferred_to_the_amount_in_each_deals_currency(tmp_path: Path) -> None:
    """A multi-currency Salesforce report has Amount (each deal's currency) and Amount (converted)
    (the corporate currency): the converted one is added up, and nothing mixed is noted."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "multi"
    files = crmgen.write_salesforce(folder / "crm", data)
    for name in ("opportunities.csv", "closed.csv"):
        path = folder / "crm" / name
        table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
        at = table[0].index("Amount")
        table[0][at:at] = ["Opportunity Currency"]
        table[0][at + 1 :] = ["Amount (converted)", "Amount", *table[0][at + 2 :]]
        for i, row in enumerate(table[1:]):
            if len(row) > at and row[at].startswith("USD "):  # currency, converted (USD), amount in it
                usd = Dec(row[at].removeprefix("USD ").replace(",", ""))
                row[at : at + 1] = (
                    ["EUR", row[at], f"EUR {usd * Dec('0.8'):,.2f}"] if i % 2 else ["USD", row[at], row[at]]
                )
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(table)
        path.write_text(out.getvalue(), encoding="utf-8-sig")
    code, out, _ = _cli(["crm", "check", str(folder / "crm" / "opportunities.csv")])
    assert (
        code == 0
        and "Amount (converted)" in out
        and "currency" not in out.lower().replace("opportunity currency", "").replace("amount (converted)", "")
    ), out
    assert _plan(folder, files, data) == flat


def _relink(path: Path, ref: Any) -> None:
    """Set each card's ``CRM ID`` to ``ref(i, text)`` (i: the card's index, text: its CRM ID)."""
    board = json.loads(path.read_text(encoding="utf-8"))
    order = {c["id"]: i for i, c in enumerate(board["cards"])}
    for item in board["customFieldItems"]:
        if "text" in item.get("value", {}):
            item["value"]["text"] = ref(order[item["idModel"]], item["value"]["text"])
    path.write_text(json.dumps(board, ensure_ascii=False), encoding="utf-8")


FORMS = ("ids", "mixed")


def test_cards_linked_by_record_urls_and_either_salesforce_id_form_plan_as_by_ids(tmp_path: Path) -> None:
    """People paste the record's URL into the card, or its 18-character id where the report
    exports the 15-character one: every such card was read as linked to nothing."""
    data = crmgen.dataset()
    ids = [f"0065g000{d['n']:07d}" for d in data.deals]
    forms = (
        lambda i: ids[i],
        lambda i: ids[i] + "AAQ",
        lambda i: f"https://acme.lightning.force.com/lightning/r/Opportunity/{ids[i]}AAQ/view",
        lambda i: f"https://acme.my.salesforce.com/{ids[i]}",
    )
    plans = []
    for name, form in zip(FORMS, (lambda i: ids[i], lambda i: forms[i % len(forms)](i)), strict=True):
        folder = tmp_path / name
        files = crmgen.write_salesforce(folder / "crm", data)
        config = _board_with_members(folder, files, data, {})
        _relink(folder / "board.json", lambda i, text, form=form: form(i) if i < len(ids) else text)
        code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
        assert code == 0, err
        plans.append(json.loads(out))
    assert plans[0]["plan"]["changes"] == plans[1]["plan"]["changes"]
    notes = [
        [n.replace(str(tmp_path / name), "") for n in p["plan"]["notes"]] for name, p in zip(FORMS, plans, strict=True)
    ]
    assert plans[0]["reps"] == plans[1]["reps"] and notes[0] == notes[1]
    unlinked = [n for n in notes[1] if "link to no CRM record" in n]  # at most the 3 cards of no deal
    assert plans[1]["plan"]["changes"] and all(n.split()[0] in "123" for n in unlinked), unlinked


def test_cards_linked_by_a_title_that_starts_with_the_account_name_plan_as_by_the_name(tmp_path: Path) -> None:
    """`link.by = "account_name"` reads the title as the account's name, or its start: cards
    titled `Harbor Works - Core` (or `Harbor Works: Core`) were linked to nothing."""
    data = crmgen.dataset()
    by_field = _plan(tmp_path / "field", crmgen.write_salesforce(tmp_path / "field" / "crm", data), data)
    folder = tmp_path / "title"
    files = crmgen.write_salesforce(folder / "crm", data)
    config = _board_with_members(folder, files, data, {})
    board = json.loads((folder / "board.json").read_text(encoding="utf-8"))
    for i, card in enumerate(board["cards"][::2]):
        card["name"] = card["name"].replace(" - ", ": " if i % 2 else "(", 1) + (")" if not i % 2 else "")
    (folder / "board.json").write_text(json.dumps(board, ensure_ascii=False), encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace('by = "custom_field"', 'by = "account_name"'), "utf-8")
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    plan = json.loads(out)
    assert [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]] == by_field["reps"]
    assert [{k: v for k, v in c.items() if k != "title"} for c in plan["plan"]["changes"]] == [
        {k: v for k, v in c.items() if k != "title"} for c in by_field["changes"]
    ]


def _rewrite_column(path: Path, column: str, change: Any, drop: str | None = None) -> None:
    """Rewrite a Salesforce CSV report's ``column`` cell by cell (``change(cell)``), dropping the
    column ``drop``."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    at = table[0].index(column)
    for row in table[1:]:
        if len(row) == len(table[0]) and row[at]:
            row[at] = change(row[at])
    if drop is not None:
        gone = table[0].index(drop)
        table = [[c for i, c in enumerate(r) if i != gone] if len(r) == len(table[0]) else r for r in table]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    path.write_text(out.getvalue(), encoding="utf-8-sig")


def test_owners_written_as_emails_or_without_accents_match_a_reps_export_of_names(tmp_path: Path) -> None:
    """The users report has names only (no Email column); the opportunities name their owner by
    email (``chloe.dubois@…``), the history without accents (``Chloe Dubois``): those owners
    matched no rep, so their deals were unowned and their history taught nothing."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "emails" / "crm"
    files = crmgen.write_salesforce(folder, data)

    def plain(name: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))

    _rewrite_column(folder / "users.csv", "Full Name", str, drop="Email")
    _rewrite_column(
        folder / "opportunities.csv",
        "Opportunity Owner",
        lambda n: plain(n).lower().replace(" ", ".") + "@acme.example",
    )
    _rewrite_column(folder / "closed.csv", "Opportunity Owner", plain)
    assert any(plain(r["name"]) != r["name"] for r in data.reps)
    assert _plan(tmp_path / "emails", files, data) == flat


def test_account_names_written_differently_across_exports_match_when_unique(tmp_path: Path) -> None:
    """The opportunities report writes `Harbor Works, Inc.`, the history `HARBOR WORKS LLC`, the
    accounts export `Harbor Works`: the deals were read as of unknown accounts (no sector, region
    or size), the history as of none."""
    data = crmgen.dataset()
    flat = _plan(tmp_path / "flat", crmgen.write_salesforce(tmp_path / "flat" / "crm", data), data)
    folder = tmp_path / "forms" / "crm"
    files = crmgen.write_salesforce(folder, data)
    _rewrite_column(folder / "opportunities.csv", "Account Name", lambda n: f"{n}, Inc.")
    _rewrite_column(folder / "closed.csv", "Account Name", lambda n: f"{n.upper()} LLC")
    assert _plan(tmp_path / "forms", files, data) == flat
