"""Exports as each CRM writes them, read without the user editing them.

Every fixture is written here, in the CRM's own headers, encoding, delimiter and value
formats, so a change in detection or mapping shows up as a failing field, not a crash.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tasksync.crm import PRESETS, load_crm, match_columns, read_export
from tasksync.crm.records import Account, Rep
from tasksync.errors import ConfigError, CrmError
from tasksync.settings import CrmSettings, settings_from_mapping

REPS = [Rep("R1", "Mei Chen", "mei.chen@example.com"), Rep("R2", "张三"), Rep("R3", "Ana Lopez")]
ACCOUNTS = [Account("A1", "Acme Corp"), Account("A2", "华为技术有限公司")]


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def deals(path: Path, settings: CrmSettings | None = None) -> tuple[list[dict[str, Any]], Any]:
    rows, report = read_export(path, "deals", settings or CrmSettings(), reps=REPS, accounts=ACCOUNTS)
    return [v for _, v in rows], report


def test_salesforce_report_csv_with_footer(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "report1700000000000.csv",
        [
            ["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Fiscal Period",
             "Amount", "Probability (%)", "Age", "Close Date", "Created Date", "Opportunity ID"],
            ["Mei Chen", "Acme Corp", "Acme - Core", "Proposal/Price Quote", "Q1-2024",
             "USD 12,500.00", "75", "30", "3/15/2024", "1/5/2024", "0065g00000AbCdE"],
            ["Ana Lopez", "Globex", "Globex - Analytics", "Closed Won", "Q1-2024", "USD 1,000.00",
             "100", "10", "2/1/2024", "1/20/2024", "0065g00000AbCdF"],
            ["Ana Lopez", "Acme Corp", "Acme - Support", "Qualification", "Q2-2024", "USD 900.00",
             "10", "3", "4/30/2024", "1/25/2024", "0065g00000AbCdG"],
            [""],
            [""],
            ["Confidential Information - Do Not Distribute"],
            ["Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."],
        ],
    )  # fmt: skip
    got, report = deals(path)
    assert report.mapping.preset == "salesforce"
    assert report.ok and report.problems == []
    assert report.footers == 2 and report.skipped == 1  # the won deal is not open work
    assert got[0] == {
        "owner": "R1",
        "account_id": "A1",
        "name": "Acme - Core",
        "stage": "Proposal/Price Quote",
        "value": 12500.0,
        "close_date": date(2024, 3, 15),
        "created": date(2024, 1, 5),
        "id": "0065g00000AbCdE",
    }
    assert got[1]["account_id"] == "A1" and got[1]["close_date"] == date(2024, 4, 30)
    assert report.types["close_date"] == "date (month first)"


def test_hubspot_export_utf8_bom(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "hubspot-crm-exports-all-deals-2024-01-05.csv",
        [
            ["Record ID", "Deal Name", "Deal Stage", "Close Date", "Deal owner", "Amount",
             "Create Date", "Pipeline", "Associated Company"],
            ["9876543210", "Acme renewal", "Appointment Scheduled", "2024-02-29 17:00",
             "mei.chen@example.com", "4500", "2024-01-02 09:13", "Sales Pipeline", "Acme Corp"],
            ["9876543211", "Initech", "closedlost", "2024-01-31 12:00", "Mei Chen", "", "2023-12-01",
             "Sales Pipeline", "Initech"],
        ],
        encoding="utf-8-sig",
    )  # fmt: skip
    got, report = deals(path)
    assert (report.mapping.preset, report.encoding) == ("hubspot", "utf-8-sig")
    assert got == [
        {
            "id": "9876543210",
            "name": "Acme renewal",
            "stage": "Appointment Scheduled",
            "close_date": date(2024, 2, 29),
            "owner": "R1",
            "value": 4500.0,
            "created": date(2024, 1, 2),
            "account_id": "A1",
        }
    ]
    assert report.skipped == 1


def test_zoho_xlsx_with_date_cells_and_serials(tmp_path: Path) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Deals")
    ws.append(["Record Id", "Deal Owner", "Deal Name", "Amount", "Stage", "Closing Date",
               "Account Name", "Created Time", "Probability (%)", "Expected Revenue"])  # fmt: skip
    ws.append(["zcrm_1", "Ana Lopez", "Big one", 25000.5, "Negotiation/Review",
               datetime(2024, 3, 1), "Acme Corp", 45296, 80, 20000])  # fmt: skip
    ws.append(["zcrm_2", "Mei Chen", "Lost one", 10, "Closed-Lost to Competition",
               datetime(2024, 3, 1), "Acme Corp", 45296.5, 0, 0])  # fmt: skip
    path = tmp_path / "Deals_2024_01_05.xlsx"
    wb.save(path)
    got, report = deals(path)
    assert (report.mapping.preset, report.format, report.sheet) == ("zoho", "xlsx", "Deals")
    assert got == [
        {
            "id": "zcrm_1",
            "owner": "R3",
            "name": "Big one",
            "value": 25000.5,
            "stage": "Negotiation/Review",
            "close_date": date(2024, 3, 1),
            "account_id": "A1",
            "created": date(2024, 1, 5),
        }
    ]


def test_pipedrive_semicolons_european_numbers_and_status(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "deals-export.csv",
        [
            ["Deal - ID", "Deal - Title", "Deal - Value", "Deal - Currency", "Deal - Stage",
             "Deal - Status", "Deal - Owner", "Deal - Expected close date", "Deal - Deal created",
             "Deal - Organization"],
            ["17", "Acme deal", "1.234,50", "EUR", "Proposal Made", "open", "Ana Lopez",
             "05.03.2024", "01.02.2024", "Acme Corp"],
            ["18", "Other deal", "1.500", "EUR", "Proposal Made", "won", "Ana Lopez",
             "05.03.2024", "01.02.2024", "Acme Corp"],
            ["19", "Third", "99", "EUR", "Qualified", "open", "Ana Lopez", "13.03.2024",
             "01.02.2024", "Globex"],
        ],
        encoding="cp1252",
        delimiter=";",
    )  # fmt: skip
    got, report = deals(path)
    assert (report.mapping.preset, report.delimiter) == ("pipedrive", ";")
    assert [d["id"] for d in got] == ["17", "19"]  # the won one is not open work
    assert got[0]["value"] == 1234.5
    assert got[0]["close_date"] == date(2024, 3, 5) and got[0]["created"] == date(2024, 2, 1)
    assert got[1]["account_id"] == "Globex"  # unknown accounts are kept as written
    assert "status" not in got[0]


def test_fxiaoke_gb18030_with_title_row_totals_and_chinese_dates(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["商机列表（导出时间：2024-01-05）"]]
    rows.append(["商机名称", "客户名称", "负责人", "商机阶段", "商机金额", "预计成交日期",
                 "创建时间", "商机编号", "负责人所在部门", "赢率"])  # fmt: skip
    rows.append(["华为云迁移", "华为技术有限公司", "张 三", "方案报价", "¥1,234,567.00",
                 "2024年3月5日", "2024/1/5 10:20", "SJ-001", "华东大区", "60%"])  # fmt: skip
    rows.append(["华为培训", "华为技术有限公司", "张三", "赢单", "￥5,000", "2024年2月1日",
                 "2024/1/6", "SJ-002", "华东大区", "100%"])  # fmt: skip
    rows.append(["新客户", "某某公司", "张三", "初步接洽", "12.5万", "2024-04-01", "2024/1/7",
                 "SJ-003", "华东大区", "10%"])  # fmt: skip
    rows.append(["合计", "", "", "", "¥1,364,567.00", "", "", "", "", ""])
    path = write_csv(tmp_path / "商机.csv", rows, encoding="gb18030")
    got, report = deals(path)
    assert (report.mapping.preset, report.encoding, report.header_line) == ("fxiaoke", "gb18030", 2)
    assert report.ok and report.problems == [] and report.footers == 1
    assert got[0] == {
        "name": "华为云迁移",
        "account_id": "A2",
        "owner": "R2",
        "stage": "方案报价",
        "value": 1234567.0,
        "close_date": date(2024, 3, 5),
        "created": date(2024, 1, 5),
        "id": "SJ-001",
    }
    assert [d["id"] for d in got] == ["SJ-001", "SJ-003"]
    assert got[1]["value"] == 125000.0


def test_xiaoshouyi_utf16_unicode_text(tmp_path: Path) -> None:
    rows = [
        ["商机ID", "商机名称", "客户名称", "所有人", "销售阶段", "商机金额", "结单日期", "创建日期",
         "赢率", "商机类型"],
        ["1001", "华为项目", "华为技术有限公司", "张三", "需求确认", "88,000.00", "2024-05-01",
         "2024-01-05", "30", "新客户"],
    ]  # fmt: skip
    path = write_csv(tmp_path / "opportunity.txt", rows, encoding="utf-16", delimiter="\t")
    got, report = deals(path)
    assert (report.mapping.preset, report.encoding, report.delimiter) == (
        "xiaoshouyi",
        "utf-16",
        "\t",
    )
    assert got == [
        {
            "id": "1001",
            "name": "华为项目",
            "account_id": "A2",
            "owner": "R2",
            "stage": "需求确认",
            "value": 88000.0,
            "close_date": date(2024, 5, 1),
            "created": date(2024, 1, 5),
        }
    ]


def test_generic_chinese_headers_match_by_synonym() -> None:
    m = match_columns("deals", ["编号", "机会名称", "阶段", "金额", "销售负责人", "预计关闭日期"])
    assert {f: c.header for f, c in m.columns.items()} == {
        "id": "编号",
        "name": "机会名称",
        "stage": "阶段",
        "value": "金额",
        "owner": "销售负责人",
        "close_date": "预计关闭日期",
    }


def test_explicit_mapping_wins_over_preset_and_synonyms() -> None:
    headers = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Weighted amount", "Pipeline"]
    m = match_columns("deals", headers, {"value": "Weighted amount", "stage": "Pipeline"})
    assert m.preset == "hubspot"
    assert m.columns["value"].header == "Weighted amount" and m.columns["value"].how == "configured"
    assert m.columns["stage"].header == "Pipeline"
    assert "Amount" in m.unused and "Deal Stage" in m.unused


def test_configured_preset_and_errors() -> None:
    headers = ["Deal ID", "Deal Name", "Stage", "Amount"]
    assert match_columns("deals", headers).preset == "generic"
    assert match_columns("deals", headers, preset="salesforce").preset == "salesforce"
    with pytest.raises(ConfigError, match="unknown preset 'sap'"):
        match_columns("deals", headers, preset="sap")
    with pytest.raises(ConfigError, match="unknown field"):
        match_columns("deals", headers, {"colour": "Amount"})
    with pytest.raises(ConfigError, match=r"x\.csv: crm\.columns\.deals\.id: the file has no column 'Opp'"):
        match_columns("deals", headers, {"id": "Opp"}, source="x.csv")
    with pytest.raises(CrmError, match=r"missing column for deals field 'stage'.*crm\.columns"):
        match_columns("deals", ["Deal ID", "Deal Name", "Amount"])


def test_every_preset_maps_required_fields_of_the_kinds_it_names() -> None:
    from tasksync.crm import FIELDS

    for preset in PRESETS.values():
        assert "deals" in preset.columns, preset.name
        for kind, cols in preset.columns.items():
            assert set(cols) <= set(FIELDS[kind]), (preset.name, kind)
            headers = [names[0] for names in cols.values()]
            required = [f for f, s in FIELDS[kind].items() if s.required]
            if all(f in cols for f in required):
                m = match_columns(kind, headers)
                assert m.preset == preset.name or preset.name in {"xiaoshouyi", "wukong"}, (
                    preset.name,
                    kind,
                    m.preset,
                )


def _chinese_set(folder: Path) -> None:
    folder.mkdir()
    write_csv(
        folder / "员工.csv",
        [
            ["员工编号", "姓名", "邮箱", "区域", "角色", "擅长行业", "最大任务数", "指标", "状态"],
            ["E01", "张三", "zhang@example.cn", "华东", "hunter", "零售、制造", "30", "¥500,000", "在职"],
            ["E02", "李 四", "", "华南", "farmer", "金融", "25", "¥400,000", "休假"],
        ],
        encoding="gb18030",
    )  # fmt: skip
    write_csv(
        folder / "客户.csv",
        [
            ["客户编号", "客户名称", "行业", "人员规模", "区域", "负责人", "成交状态"],
            ["C01", "华为技术有限公司", "制造", "10000人以上", "华东", "张三", "已成交"],
            ["C02", "招商银行", "金融", "1000-4999人", "华南", "李四", "未成交"],
        ],
        encoding="utf-8-sig",
    )
    write_csv(
        folder / "商机.csv",
        [
            ["商机编号", "商机名称", "客户名称", "负责人", "商机阶段", "商机金额", "预计成交日期", "创建时间"],
            ["S1", "华为扩容", "华为技术有限公司", "张三", "方案报价", "¥100,000", "2024年3月1日", "2024/1/2"],
            ["S2", "招行续约", "招商银行", "ＬＩ四", "需求确认", "¥50,000", "2024年3月2日", "2024/1/3"],
        ],
        encoding="gb18030",
    )  # fmt: skip
    write_csv(
        folder / "历史.csv",
        [
            ["商机编号", "商机阶段", "实际结单日期", "客户名称", "商机金额", "负责人", "客户行业", "区域"],
            ["H1", "赢单", "2023/12/1", "华为技术有限公司", "¥80,000", "张三", "制造", "华东"],
            ["H2", "输单", "2023/11/5", "招商银行", "¥20,000", "李四", "金融", "华南"],
            ["H3", "方案报价", "2023/11/5", "招商银行", "¥20,000", "李四", "金融", "华南"],
        ],
        encoding="gb18030",
    )  # fmt: skip


def test_load_crm_from_a_chinese_crm_without_any_column_mapping(tmp_path: Path) -> None:
    _chinese_set(tmp_path / "crm")
    settings = settings_from_mapping(
        {"crm": {"files": {"reps": "员工.csv", "accounts": "客户.csv", "deals": "商机.csv",
                           "history": "历史.csv"}}},
        base_dir=tmp_path,
    )  # fmt: skip
    data = load_crm(settings.crm, settings.base_dir)
    assert [r.id for r in data.reps] == ["E01", "E02"]
    assert data.reps[0].sectors == ("零售", "制造") and data.reps[0].quota == 500000.0
    assert data.reps[1].available is False
    assert data.accounts[0].employees == 10000 and data.accounts[0].customer is True
    assert data.accounts[1].owner == "E02" and data.accounts[1].customer is False
    assert [(d.id, d.account_id, d.owner, d.value) for d in data.deals] == [
        ("S1", "C01", "E01", 100000.0),
        ("S2", "C02", None, 50000.0),  # "ＬＩ四" is nobody: reported, owner left empty
    ]
    assert data.deals[0].close_date == date(2024, 3, 1)
    assert [(h.id, h.won, h.account_id, h.owner) for h in data.history] == [
        ("H1", True, "C01", "E01"),
        ("H2", False, "C02", "E02"),
    ]
    assert data.row_counts == {"reps": 2, "accounts": 2, "deals": 2, "history": 2}
    assert any(":3:负责人: 1 of 2 rows name an owner who matches no rep" in p and "ＬＩ四" in p for p in data.problems)
    assert any("neither won nor lost" in p and "'方案报价' (1)" in p for p in data.problems)
