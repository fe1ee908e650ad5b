"""One seeded CRM dataset written as four CRMs export it (for tests and benchmarks).

The data is messy the way real exports are: reps and accounts named rather than numbered,
history years older than today, split first and last names, many small accounts (one open
deal each, so that board cards link by account name). :func:`dataset` builds it;
:func:`write_salesforce`, :func:`write_chinese`, :func:`write_hubspot` and
:func:`write_pipedrive` write it in each CRM's own headers, encoding, line ends, date and
amount formats and stage words; :func:`write_board` writes the local board all four share.
Each writer returns the ``[crm]`` table a user would configure: only file names.

Where an export has numeric ids, they are given in the order of the names, so that records
sort the same whichever key they get (policies break ties by key).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tasksync.examples import _board

TODAY = date(2026, 11, 2)
SECTORS = ["Retail", "Healthcare", "Manufacturing", "Finance", "Software"]
REGIONS = ["East", "West", "Central"]
PRODUCTS = ["Core", "Analytics", "Support Plan"]
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro"]
LAST = ["Alvarez", "Brooks", "Dubois", "Ivanov", "Eriksen", "Farouk", "García", "Hayashi"]
WORDS_A = ["Blue", "North", "Silver", "Bright", "Green", "Iron", "Summit", "Harbor", "Atlas", "Cedar"]
WORDS_B = ["Foods", "Health", "Works", "Capital", "Labs", "Freight", "Systems", "Clinics", "Metals"]

#: Open stage words per CRM (by progress), then won and lost.
STAGE_WORDS = {
    "salesforce": ["Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
                   "Closed Lost"],
    "chinese": ["初步接洽", "需求确定", "方案报价", "谈判审核", "赢单", "输单"],
    "hubspot": ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "contractsent", "closedwon",
                "closedlost"],
    "pipedrive": ["Lead In", "Contact Made", "Proposal Made", "Negotiations Started", "won", "lost"],
}  # fmt: skip
BOARD_STAGES = ["Lead", "Qualified", "Proposal", "Negotiation"]


@dataclass
class Dataset:
    reps: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def dataset(seed: int = 11, accounts: int = 90, history: int = 700) -> Dataset:
    """Reps, accounts, open deals (one per account for most accounts) and closed deals."""
    rng = random.Random(seed)
    data = Dataset()
    for i in range(len(FIRST)):
        data.reps.append(
            {
                "first": FIRST[i],
                "last": LAST[i],
                "name": f"{FIRST[i]} {LAST[i]}",
                "email": f"{FIRST[i].lower()}.{LAST[i].lower()}@example.com".replace("é", "e").replace("í", "i"),
                "region": REGIONS[i % 3],
                "role": "hunter" if i % 3 != 2 else "farmer",
                "sectors": rng.sample(SECTORS, 2),
                "capacity": 14 if i % 4 else 16,
                "available": i != 6,
            }
        )
    names: set[str] = set()
    while len(data.accounts) < accounts:
        name = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}"
        if name in names:
            name = f"{name} {len(data.accounts) + 1}"
        names.add(name)
        region = rng.choice(REGIONS)
        data.accounts.append(
            {
                "name": name,
                "sector": rng.choice(SECTORS),
                "employees": rng.choice([5, 12, 25, 40, 80, 150, 400, 1200]),
                "region": region,
                "owner": rng.choice([r for r in data.reps if r["region"] == region])["name"],
                "customer": rng.random() < 0.4,
            }
        )
    skill = {r["name"]: rng.uniform(0.6, 1.4) for r in data.reps}
    for i in range(history):
        acc = rng.choice(data.accounts)
        rep = rng.choice(data.reps)
        product = rng.choice(PRODUCTS)
        p = 0.3 * skill[rep["name"]] * (1.4 if acc["sector"] in rep["sectors"] else 1.0)
        closed = date(2019, 1, 1) + timedelta(days=rng.randint(0, 5 * 365))  # years before today
        data.history.append(
            {
                "n": i + 1,
                "account": acc["name"],
                "product": product,
                "value": round(rng.lognormvariate(9.5, 0.7), -2),
                "won": rng.random() < min(p, 0.9),
                "created": closed - timedelta(days=rng.randint(10, 120)),
                "closed": closed,
                "owner": rep["name"],
            }
        )
    heavy = [data.reps[0]["name"], data.reps[1]["name"]]
    for i, acc in enumerate(data.accounts[: int(accounts * 0.8)]):
        created = TODAY - timedelta(days=rng.randint(1, 150))
        stage = rng.choices(range(4), weights=[4, 3, 2, 1])[0]
        roll = rng.random()
        owner = "" if stage == 0 and roll < 0.3 else rng.choice(heavy) if roll < 0.5 else acc["owner"]
        data.deals.append(
            {
                "n": i + 1,
                "account": acc["name"],
                "product": rng.choice(PRODUCTS),
                "value": round(rng.lognormvariate(9.8, 0.8), -2),
                "stage": stage,
                "created": created,
                "close": created + timedelta(days=rng.randint(20, 150)),
                "owner": owner,
            }
        )
    return data


def _ids(rows: list[dict[str, Any]], start: int) -> dict[str, str]:
    """Numeric ids in the order of the names (see the module docstring)."""
    return {r["name"]: str(start + i) for i, r in enumerate(sorted(rows, key=lambda r: r["name"]))}


def _csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8", crlf: bool = False) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def _xlsx(path: Path, rows: list[list[Any]], sheet: str) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for r in rows:
        ws.append(r)
    wb.save(path)


def _mdy(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def write_salesforce(folder: Path, data: Dataset) -> dict[str, Any]:
    """Salesforce reports as CSV: UTF-8 with BOM, CRLF, month-first dates, "USD 1,234.00",
    no id columns for users and accounts, open deals without a name, report footers."""
    folder.mkdir(parents=True, exist_ok=True)
    words = STAGE_WORDS["salesforce"]
    footer = [[""], ["Confidential Information - Do Not Distribute"], ["Copyright (c) 2000-2026 salesforce.com"]]
    _csv(
        folder / "users.csv",
        [["Full Name", "Email", "Role", "Division", "Sectors", "Capacity", "Active"]]
        + [
            [r["name"], r["email"], r["role"].title(), r["region"], "; ".join(r["sectors"]), r["capacity"],
             "1" if r["available"] else "0"]
            for r in data.reps
        ],
        "utf-8-sig",
        crlf=True,
    )  # fmt: skip
    _csv(
        folder / "accounts.csv",
        [["Account Owner", "Account Name", "Industry", "Employees", "Region", "Type", "Billing City"]]
        + [
            [a["owner"], a["name"], a["sector"], a["employees"], a["region"],
             "Customer - Direct" if a["customer"] else "Prospect", "Springfield"]
            for a in data.accounts
        ]
        + footer,
        "utf-8-sig",
        crlf=True,
    )  # fmt: skip
    _csv(
        folder / "opportunities.csv",
        [["Opportunity Owner", "Account Name", "Stage", "Fiscal Period", "Amount", "Probability (%)", "Close Date",
          "Created Date", "Product Name", "Opportunity ID"]]
        + [
            [d["owner"], d["account"], words[d["stage"]], f"Q{(d['close'].month - 1) // 3 + 1}-{d['close'].year}",
             f"USD {d['value']:,.2f}", "20", _mdy(d["close"]), _mdy(d["created"]), d["product"],
             f"0065g000{d['n']:07d}"]
            for d in data.deals
        ]
        + footer,
        "utf-8-sig",
        crlf=True,
    )  # fmt: skip
    _csv(
        folder / "closed.csv",
        [["Opportunity Owner", "Account Name", "Stage", "Amount", "Close Date", "Created Date", "Product Name"]]
        + [
            [h["owner"], h["account"], words[4 if h["won"] else 5], f"USD {h['value']:,.2f}", _mdy(h["closed"]),
             _mdy(h["created"]), h["product"]]
            for h in data.history
        ]
        + footer,
        "utf-8-sig",
        crlf=True,
    )  # fmt: skip
    return {"files": {"reps": "users.csv", "accounts": "accounts.csv", "deals": "opportunities.csv",
                      "history": "closed.csv"}}  # fmt: skip


def write_chinese(folder: Path, data: Dataset) -> dict[str, Any]:
    """A Chinese CRM's export: GB18030, 年月日 dates, ¥ amounts, Chinese stage words and
    headers (国家/地区 for the region), accounts and reps by name only."""
    folder.mkdir(parents=True, exist_ok=True)
    words = STAGE_WORDS["chinese"]
    enc = "gb18030"
    _csv(
        folder / "员工.csv",
        [["姓名", "邮箱", "国家/地区", "角色", "擅长行业", "最大任务数", "状态"]]
        + [
            [r["name"], r["email"], r["region"], r["role"], "、".join(r["sectors"]), r["capacity"],
             "在职" if r["available"] else "休假"]
            for r in data.reps
        ],
        enc,
    )  # fmt: skip
    _csv(
        folder / "客户.csv",
        [["客户名称", "行业", "人员规模", "国家/地区", "负责人", "成交状态"]]
        + [
            [a["name"], a["sector"], f"{a['employees']}人", a["region"], a["owner"],
             "已成交" if a["customer"] else "未成交"]
            for a in data.accounts
        ],
        enc,
    )  # fmt: skip
    _csv(
        folder / "商机.csv",
        [["商机编号", "商机名称", "客户名称", "负责人", "商机阶段", "商机金额", "预计成交日期", "创建时间", "产品名称"]]
        + [
            [f"SJ{d['n']:05d}", f"{d['account']} - {d['product']}", d["account"], d["owner"], words[d["stage"]],
             f"¥{d['value']:,.2f}", _cn_date(d["close"]), _cn_date(d["created"]), d["product"]]
            for d in data.deals
        ],
        enc,
    )  # fmt: skip
    _csv(
        folder / "历史.csv",
        [["商机阶段", "结单日期", "客户名称", "商机金额", "负责人", "产品名称", "创建时间"]]
        + [
            [words[4 if h["won"] else 5], _cn_date(h["closed"]), h["account"], f"¥{h['value']:,.2f}", h["owner"],
             h["product"], _cn_date(h["created"])]
            for h in data.history
        ],
        enc,
    )  # fmt: skip
    return {"files": {"reps": "员工.csv", "accounts": "客户.csv", "deals": "商机.csv", "history": "历史.csv"}}


def _dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


def write_hubspot(folder: Path, data: Dataset) -> dict[str, Any]:
    """HubSpot object exports as XLSX: users with first and last names apart, companies and
    deals with record ids, owners by full name, date cells, closedwon/closedlost."""
    folder.mkdir(parents=True, exist_ok=True)
    words = STAGE_WORDS["hubspot"]
    users, companies = _ids(data.reps, 51000), _ids(data.accounts, 8800100)
    _xlsx(
        folder / "users.xlsx",
        [["User ID", "First Name", "Last Name", "Email", "Team", "Role", "Sectors", "Capacity", "Active"]]
        + [
            [int(users[r["name"]]), r["first"], r["last"], r["email"], r["region"], r["role"],
             ", ".join(r["sectors"]), r["capacity"], r["available"]]
            for r in data.reps
        ],
        "Users",
    )  # fmt: skip
    _xlsx(
        folder / "companies.xlsx",
        [["Record ID", "Company name", "Industry", "Number of Employees", "Sales Region", "Company owner",
          "Lifecycle Stage", "Create Date"]]
        + [
            [int(companies[a["name"]]), a["name"], a["sector"], a["employees"], a["region"], a["owner"],
             "Customer" if a["customer"] else "Lead", _dt(TODAY - timedelta(days=900))]
            for a in data.accounts
        ],
        "Companies",
    )  # fmt: skip
    _xlsx(
        folder / "deals.xlsx",
        [["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Deal owner",
          "Associated Company", "Product", "Pipeline"]]
        + [
            [9100000 + d["n"], f"{d['account']} - {d['product']}", words[d["stage"]], d["value"], _dt(d["close"]),
             _dt(d["created"]), d["owner"] or None, d["account"], d["product"], "Sales Pipeline"]
            for d in data.deals
        ],
        "Deals",
    )  # fmt: skip
    _xlsx(
        folder / "closed-deals.xlsx",
        [["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Deal owner",
          "Associated Company", "Product", "Pipeline"]]
        + [
            [7000000 + h["n"], f"{h['account']} - {h['product']}", words[4 if h["won"] else 5], h["value"],
             _dt(h["closed"]), _dt(h["created"]), h["owner"], h["account"], h["product"], "Sales Pipeline"]
            for h in data.history
        ],
        "Deals",
    )  # fmt: skip
    return {"files": {"reps": "users.xlsx", "accounts": "companies.xlsx", "deals": "deals.xlsx",
                      "history": "closed-deals.xlsx"}}  # fmt: skip


def write_pipedrive(folder: Path, data: Dataset) -> dict[str, Any]:
    """Pipedrive CSV exports: "Deal - ..." and "Organization - ..." headers, numeric ids,
    the outcome in ``Deal - Status`` (open/won/lost), ISO timestamps."""
    folder.mkdir(parents=True, exist_ok=True)
    words = STAGE_WORDS["pipedrive"]
    users, orgs = _ids(data.reps, 700), _ids(data.accounts, 1000)
    _csv(
        folder / "users.csv",
        [["ID", "Name", "Email", "Region", "Role", "Sectors", "Capacity", "Active"]]
        + [
            [users[r["name"]], r["name"], r["email"], r["region"], r["role"], "; ".join(r["sectors"]),
             r["capacity"], "true" if r["available"] else "false"]
            for r in data.reps
        ],
    )  # fmt: skip
    _csv(
        folder / "organizations.csv",
        [["Organization - ID", "Organization - Name", "Organization - Industry",
          "Organization - Number of employees", "Organization - Region", "Organization - Owner",
          "Organization - Label"]]
        + [
            [orgs[a["name"]], a["name"], a["sector"], a["employees"], a["region"], a["owner"],
             "Customer" if a["customer"] else "Hot lead"]
            for a in data.accounts
        ],
    )  # fmt: skip
    head = ["Deal - ID", "Deal - Title", "Deal - Organization", "Deal - Owner", "Deal - Stage", "Deal - Status",
            "Deal - Value", "Deal - Currency", "Deal - Deal created", "Deal - Expected close date",
            "Deal - Deal closed on", "Deal - Product name"]  # fmt: skip
    _csv(
        folder / "deals.csv",
        [head]
        + [
            [d["n"], f"{d['account']} - {d['product']}", d["account"], d["owner"], words[d["stage"]], "open",
             f"{d['value']:.0f}", "USD", f"{d['created'].isoformat()} 09:30:00", d["close"].isoformat(), "",
             d["product"]]
            for d in data.deals
        ],
    )  # fmt: skip
    _csv(
        folder / "closed-deals.csv",
        [head]
        + [
            [5000 + h["n"], f"{h['account']} - {h['product']}", h["account"], h["owner"], words[3],
             words[4 if h["won"] else 5], f"{h['value']:.0f}", "USD", f"{h['created'].isoformat()} 09:30:00", "",
             f"{h['closed'].isoformat()} 16:00:00", h["product"]]
            for h in data.history
        ],
    )  # fmt: skip
    return {"files": {"reps": "users.csv", "accounts": "organizations.csv", "deals": "deals.csv",
                      "history": "closed-deals.csv"}}  # fmt: skip


WRITERS = {
    "salesforce": write_salesforce,
    "chinese": write_chinese,
    "hubspot": write_hubspot,
    "pipedrive": write_pipedrive,
}


def write_board(path: Path, data: Dataset, seed: int = 3) -> None:
    """A local board (Trello export shape) with a card per open deal; its ``CRM ID`` is the
    account's name, which every export has (their deal ids differ)."""
    reps = [{"Name": r["name"]} for r in data.reps]
    deals = [
        {
            "Deal ID": d["account"],
            "Deal Name": f"{d['account']} - {d['product']}",
            "Product": d["product"],
            "Stage": BOARD_STAGES[d["stage"]],
            "Owner": d["owner"],
            "Created": d["created"].isoformat(),
            "Close Date": d["close"].isoformat(),
        }
        for d in data.deals
    ]
    board = _board(random.Random(seed), reps, deals)
    path.write_text(json.dumps(board, ensure_ascii=False, indent=1), encoding="utf-8")


def config_text(crm: dict[str, Any], board: str = "board.json") -> str:
    """A tasksync.toml for one export set: the board and the export file names only."""
    files = "\n".join(f'{k} = "{v}"' for k, v in crm["files"].items())
    return (
        f'connector = "local"\n[local]\npath = "{board}"\n[link]\nby = "custom_field"\nfield = "CRM ID"\n'
        f'[crm]\nfolder = "crm"\n[crm.files]\n{files}\n'
    )
