"""CRM exports as XLSX the way HubSpot, Zoho and a Chinese CRM (纷享销客 / 销售易 style) give them, on
one seeded dataset (:func:`crmgen.dataset` with Chinese rep names), for a board today (2026-12-01):

- Chinese: a merged title row above the header, Chinese headers, reps' 姓 and 名 in two columns,
  dates as ``2023年4月5日`` or ``2023/4/5``, amounts as ``¥1,234,567.00`` or ``12.5万``, a 合计 row
  at the bottom and a second sheet (a summary) after the data;
- HubSpot / Zoho: their own headers, date cells, first and last names apart.

A few deals name their owner with a typo (a rep no export has) and the reps export repeats one
rep. ``write(folder, vendor)`` writes ``crm/``, ``board.json`` and ``tasksync.toml`` (local
board, ``balanced`` policy) and returns the config's path.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook

import crmgen

TODAY = date(2026, 12, 1)
#: Chinese rep names (surname, given name), one per crmgen rep.
CN_NAMES = [("王", "伟"), ("李", "娜"), ("张", "敏"), ("刘", "洋"),
            ("陈", "静"), ("杨", "磊"), ("赵", "丽"), ("黄", "强")]  # fmt: skip
CN_REPS = ["姓", "名", "邮箱", "国家/地区", "角色", "擅长行业", "最大任务数", "状态"]
CN_ACCOUNTS = ["客户名称", "行业", "人员规模", "国家/地区", "负责人", "成交状态"]
CN_DEALS = ["商机编号", "商机名称", "客户名称", "负责人", "商机阶段", "商机金额",
            "预计成交日期", "创建时间", "产品名称"]  # fmt: skip
CN_HISTORY = ["商机编号", "商机阶段", "结单日期", "客户名称", "商机金额", "负责人", "产品名称", "创建时间"]
STAGES_CN = crmgen.STAGE_WORDS["chinese"]


def dataset(seed: int = 11, accounts: int = 40, history: int = 300) -> crmgen.Dataset:
    """crmgen's dataset with Chinese rep names everywhere a rep is named."""
    data = crmgen.dataset(seed=seed, accounts=accounts, history=history)
    rename: dict[str, str] = {}
    for rep, (last, first) in zip(data.reps, CN_NAMES, strict=True):
        rename[rep["name"]] = last + first
        rep.update(first=first, last=last, name=last + first)
    for row in (*data.accounts, *data.deals, *data.history):
        if row["owner"]:
            row["owner"] = rename[row["owner"]]
    return data


def _cn_amount(i: int, value: float) -> str:
    return f"{value / 10000:g}万" if i % 3 == 0 else f"¥{value:,.2f}"


def _cn_day(i: int, d: date) -> str:
    return crmgen._cn_date(d) if i % 2 else f"{d.year}/{d.month}/{d.day}"


def _sheet(path: Path, title: str, header: list[str], rows: list[list[Any]], total: list[Any] | None) -> None:
    """One export: a merged title row, the header, the rows, a total row, a second sheet."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "数据"
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    ws.append(header)
    for r in rows:
        ws.append(r)
    if total is not None:
        ws.append(total)
    summary = wb.create_sheet("汇总")
    summary.append(["统计项", "数值"])
    summary.append(["记录数", len(rows)])
    wb.save(path)


def write_chinese(crm: Path, data: crmgen.Dataset) -> dict[str, str]:
    crm.mkdir(parents=True, exist_ok=True)
    stamp = "（导出时间：2026年12月1日 09:12）"
    reps = [[r["last"], r["first"], r["email"], r["region"], r["role"], "、".join(r["sectors"]), r["capacity"],
             "在职" if r["available"] else "休假"] for r in data.reps]  # fmt: skip
    reps.append(list(reps[2]))  # one rep exported twice
    _sheet(crm / "员工.xlsx", "员工列表" + stamp, CN_REPS, reps, None)
    _sheet(crm / "客户.xlsx", "客户列表" + stamp, CN_ACCOUNTS,
           [[a["name"], a["sector"], f"{a['employees']}人", a["region"], a["owner"],
             "已成交" if a["customer"] else "未成交"] for a in data.accounts],
           [f"合计：{len(data.accounts)}", None, None, None, None, None])  # fmt: skip
    deals_total = f"¥{sum(d['value'] for d in data.deals):,.2f}"
    _sheet(crm / "商机.xlsx", "商机列表" + stamp, CN_DEALS,
           [[f"SJ{d['n']:05d}", f"{d['account']} - {d['product']}", d["account"], d["owner"] or None,
             STAGES_CN[d["stage"]], _cn_amount(i, d["value"]), _cn_day(i, d["close"]), _cn_day(i + 1, d["created"]),
             d["product"]] for i, d in enumerate(data.deals)],
           ["合计", None, None, None, None, deals_total, None, None, None])  # fmt: skip
    _sheet(crm / "历史.xlsx", "已结束商机" + stamp, CN_HISTORY,
           [[f"LS{h['n']:05d}", STAGES_CN[4 if h["won"] else 5], _cn_day(i, h["closed"]), h["account"],
             _cn_amount(i, h["value"]), h["owner"], h["product"], _cn_day(i, h["created"])]
            for i, h in enumerate(data.history)],
           ["合计", None, None, None, f"¥{sum(h['value'] for h in data.history):,.2f}", None, None, None])  # fmt: skip
    return {"reps": "员工.xlsx", "accounts": "客户.xlsx", "deals": "商机.xlsx", "history": "历史.xlsx"}


def _dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


def write_hubspot(crm: Path, data: crmgen.Dataset) -> dict[str, str]:
    """HubSpot's XLSX exports (crmgen's): users' first and last names apart, owners by full name."""
    return dict(crmgen.write_hubspot(crm, data)["files"])


def write_zoho(crm: Path, data: crmgen.Dataset) -> dict[str, str]:
    crm.mkdir(parents=True, exist_ok=True)

    def book(name: str, header: list[str], rows: list[list[Any]]) -> None:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.append(header)
        for r in rows:
            ws.append(r)
        wb.save(crm / name)

    book("Users.xlsx", ["First Name", "Last Name", "Email", "Territories", "Role", "Sectors", "Capacity", "Status"],
         [[r["first"], r["last"], r["email"], r["region"], r["role"], ",".join(r["sectors"]), r["capacity"],
           "Active" if r["available"] else "Inactive"] for r in data.reps])  # fmt: skip
    book("Accounts.xlsx", ["Account Name", "Industry", "Employees", "Territories", "Account Owner", "Account Type"],
         [[a["name"], a["sector"], a["employees"], a["region"], a["owner"], "Customer" if a["customer"] else "Prospect"]
          for a in data.accounts])  # fmt: skip
    stages = ["Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
              "Closed Lost"]  # fmt: skip
    head = ["Record Id", "Deal Name", "Account Name", "Deal Owner", "Stage", "Amount", "Closing Date", "Created Time"]
    book("Deals.xlsx", head,
         [[f"zcrm_{4000 + d['n']}", f"{d['account']} - {d['product']}", d["account"], d["owner"] or None,
           stages[d["stage"]], d["value"], _dt(d["close"]), _dt(d["created"])] for d in data.deals])  # fmt: skip
    book("Closed.xlsx", head,
         [[f"zcrm_{9000 + h['n']}", f"{h['account']} - {h['product']}", h["account"], h["owner"],
           stages[4 if h["won"] else 5], h["value"], _dt(h["closed"]), _dt(h["created"])]
          for h in data.history])  # fmt: skip
    return {"reps": "Users.xlsx", "accounts": "Accounts.xlsx", "deals": "Deals.xlsx", "history": "Closed.xlsx"}


def _board(path: Path, data: crmgen.Dataset) -> None:
    """crmgen's board, its members named as the CRM names the reps (no space in a Chinese name)."""
    spaced = {r["name"]: r["name"] if " " in r["name"] else f"{r['last']} {r['first']}" for r in data.reps}
    shadow = crmgen.Dataset(
        reps=[{**r, "name": spaced[r["name"]]} for r in data.reps],
        deals=[{**d, "owner": spaced.get(d["owner"], d["owner"])} for d in data.deals],
    )
    crmgen.write_board(path, shadow)
    board = json.loads(path.read_text(encoding="utf-8"))
    back = {v: k for k, v in spaced.items()}
    for member in board["members"]:
        member["fullName"] = back.get(member["fullName"], member["fullName"])
    path.write_text(json.dumps(board, ensure_ascii=False, indent=1), encoding="utf-8")


WRITERS = {"chinese": write_chinese, "hubspot": write_hubspot, "zoho": write_zoho}


def write(folder: Path, vendor: str = "chinese", data: crmgen.Dataset | None = None) -> Path:
    """The vendor's exports, the board and the config in ``folder``; the config's path."""
    data = data or dataset()
    files = WRITERS[vendor](folder / "crm", data)
    _board(folder / "board.json", data)
    config = folder / "tasksync.toml"
    config.write_text(
        crmgen.config_text({"files": files}) + '[policy]\nname = "balanced"\n'
        '[priority]\nfield = "Priority"\ntiers = ["P1", "P2", "P3", "P4"]\n',
        encoding="utf-8",
    )
    return config
