"""CRM exports as they come out of the CRM (issue 12) and exports that must not pass
silently (issue 17): one dataset, four CRMs, one plan; natural keys; several columns per
field; honest cross-file checks; duplicate ids, cut rows, encodings and mapping typos."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

import crmgen
from tasksync.cli import main
from tasksync.crm import load_crm, read_export
from tasksync.crm.readers import open_table
from tasksync.settings import CrmSettings, load_settings

TODAY = crmgen.TODAY.isoformat()


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _set(root: Path, crm: str, data: crmgen.Dataset | None = None) -> Path:
    data = data or crmgen.dataset()
    folder = root / crm
    files = crmgen.WRITERS[crm](folder / "crm", data)
    crmgen.write_board(folder / "board.json", data)
    config = folder / "tasksync.toml"
    config.write_text(crmgen.config_text(files), encoding="utf-8")
    return config


def _plan(config: Path) -> dict[str, Any]:
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", TODAY])
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def _essence(plan: dict[str, Any]) -> dict[str, Any]:
    """What a plan decides, without what names the records inside one CRM (rep ids)."""
    return {
        "changes": plan["plan"]["changes"],
        "creates": plan["plan"]["creates"],
        "reps": [{k: v for k, v in r.items() if k != "rep_id"} for r in plan["reps"]],
        "segments": plan["segments"],
    }


def test_one_dataset_exported_by_four_crms_gives_one_plan(tmp_path: Path) -> None:
    data = crmgen.dataset()
    plans = {crm: _plan(_set(tmp_path, crm, data)) for crm in crmgen.WRITERS}
    first = _essence(plans["salesforce"])
    assert len(first["changes"]) > 20  # a real plan: owners and priorities change
    assert any(c["field"] == "assignees" for c in first["changes"])
    for crm, plan in plans.items():
        assert _essence(plan) == first, crm
        assert not any("match" in n and "no rep" in n for n in plan["plan"]["notes"]), crm
    # The files really are as the CRMs write them.
    sf = tmp_path / "salesforce" / "crm" / "users.csv"
    assert sf.read_bytes().startswith(b"\xef\xbb\xbfFull Name,") and b"\r\n" in sf.read_bytes()
    cn = (tmp_path / "chinese" / "crm" / "商机.csv").read_bytes().decode("gb18030")
    assert "年" in cn and "¥" in cn and "方案报价" in cn
    with open_table(tmp_path / "hubspot" / "crm" / "users.xlsx") as t:
        assert t.headers[:3] == ["User ID", "First Name", "Last Name"]


def test_crm_check_reads_each_set_together_and_names_its_keys(tmp_path: Path) -> None:
    for crm in crmgen.WRITERS:
        config = _set(tmp_path, crm)
        files = load_settings(config).crm.files
        paths = [str(config.parent / "crm" / getattr(files, k)) for k in ("reps", "accounts", "deals", "history")]
        code, out, _ = _cli(["--no-color", "crm", "check", "-c", str(config), *paths])
        assert code == 0, out
        assert "4 file(s): 4 usable, 0 not; 0 problem(s) in all" in out, crm
    code, out, _ = _cli(["--no-color", "crm", "check", str(tmp_path / "salesforce" / "crm" / "accounts.csv")])
    assert "key: accounts keyed by Account Name: no id column" in out


def test_natural_keys_resolve_references_by_id_then_name_then_email(tmp_path: Path) -> None:
    config = _set(tmp_path, "salesforce")
    settings = load_settings(config)
    data = load_crm(settings.crm, settings.base_dir)
    assert data.problems == [
        f"{settings.base_dir / 'crm' / f}: 2 report footer/total line(s) ignored"
        for f in ("accounts.csv", "opportunities.csv", "closed.csv")
    ]
    assert data.reps[2].id == data.reps[2].name == "Chloé Dubois"
    account = data.accounts_by_id["Atlas Foods"]
    assert account.owner in data.reps_by_id and account.customer
    deal = data.deals[0]
    assert deal.account_id in data.accounts_by_id
    assert deal.name == f"{deal.account_id} - {deal.product}"  # no name column: account and product
    assert all(h.owner in data.reps_by_id for h in data.history)
    # Owners written by email resolve too.
    users = settings.base_dir / "crm" / "users.csv"
    rows, _ = read_export(users, "reps", settings.crm)
    reps = [crmgen_rep(v) for _, v in rows]
    path = tmp_path / "deals.csv"
    path.write_text(
        "Opportunity ID,Stage,Opportunity Owner,Account Name,Amount\nX1,Prospecting,ana.alvarez@example.com,Acme,900\n",
        encoding="utf-8",
    )
    got, _ = read_export(path, "deals", CrmSettings(), reps=reps)
    assert got[0][1]["owner"] == "Ana Alvarez"


def crmgen_rep(v: dict[str, Any]) -> Any:
    from tasksync.crm import Rep

    return Rep(**v)


def test_several_columns_feed_one_field_and_one_header_feeds_two(tmp_path: Path) -> None:
    path = tmp_path / "team.csv"
    path.write_text("First Name,Last Name,Email\nMei,Chen,mei@x.com\nAna,,ana@x.com\n", encoding="utf-8")
    rows, report = read_export(path, "reps", CrmSettings())  # HubSpot's users export, no mapping
    assert [(v["id"], v["name"]) for _, v in rows] == [("Mei Chen", "Mei Chen"), ("Ana", "Ana")]
    assert report.mapping is not None and report.mapping.columns["name"].header == "First Name + Last Name"
    configured = CrmSettings(columns={"reps": {"id": "Email", "name": ["First Name", "Last Name"]}})
    rows, report = read_export(path, "reps", configured)
    assert [(v["id"], v["name"]) for _, v in rows] == [("mei@x.com", "Mei Chen"), ("ana@x.com", "Ana")]
    assert report.key == "reps keyed by Email (id column)"
    path.write_text("Full Name,Email\nMei Chen,mei@x.com\n", encoding="utf-8")
    rows, report = read_export(path, "reps", CrmSettings(columns={"reps": {"id": "Full Name"}}))
    assert [(v["id"], v["name"], v["email"]) for _, v in rows] == [("Mei Chen", "Mei Chen", "mei@x.com")]


def test_a_configured_header_missing_from_the_file_is_a_config_error(tmp_path: Path) -> None:
    config = _set(tmp_path, "pipedrive")
    board = (config.parent / "board.json").read_bytes()
    text = config.read_text(encoding="utf-8")
    config.write_text(text + '[crm.columns.deals]\nvalue = "Deal - Valuee"\n', encoding="utf-8")
    code, _, err = _cli(["-c", str(config), "apply", "--now"])
    assert code == 2
    assert "crm.columns.deals.value: the file has no column 'Deal - Valuee'; did you mean 'Deal - Value'?" in err
    assert "Traceback" not in err
    assert (config.parent / "board.json").read_bytes() == board
    # An optional field the user says the file does not have: read without it.
    config.write_text(text + '[crm.columns.deals]\nproduct = ""\n', encoding="utf-8")
    settings = load_settings(config)
    data = load_crm(settings.crm, settings.base_dir)
    assert data.deals and all(d.product is None for d in data.deals)
    config.write_text(text + '[crm.columns.deals]\nstage = ""\n', encoding="utf-8")
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 2 and "deals field 'stage' is required and cannot be left empty" in err


def test_duplicate_deal_ids_are_named_with_both_rows(tmp_path: Path) -> None:
    config = _set(tmp_path, "pipedrive")
    deals = config.parent / "crm" / "deals.csv"
    lines = deals.read_text(encoding="utf-8").splitlines()
    lines[5] = "1," + lines[5].split(",", 1)[1]  # line 6 reuses line 2's id
    deals.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3
    assert f"{deals}:6:Deal - ID: duplicate deal id '1': line 2 has it too; this row is not read" in err


def test_a_row_cut_mid_line_is_named_not_read(tmp_path: Path) -> None:
    config = _set(tmp_path, "pipedrive")
    users = config.parent / "crm" / "users.csv"
    raw = users.read_bytes().rstrip(b"\n")
    users.write_bytes(raw[:-3])  # "...,14,true" -> "...,14,t": cut mid-line, no line break
    code, _, err = _cli(["-c", str(config), "plan", "--today", TODAY])
    assert code == 3
    assert f"{users}:9: the file ends in the middle of this row" in err
    path = tmp_path / "reps.csv"
    path.write_text("Rep ID,Name,Quota\nR1,Ann,60000\nR2,Bob,600", encoding="utf-8")
    rows, report = read_export(path, "reps", CrmSettings(max_bad_rows=0.5))
    assert [v["id"] for _, v in rows] == ["R1"] and report.bad == 1


def test_shift_jis_is_read_with_the_detected_encoding(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    rows = "Deal ID,Deal Name,Stage,Product,Amount\n" + "".join(f"D{i},案件{i},Lead,コア{i},{i}\n" for i in range(30))
    path.write_bytes(rows.encode("shift_jis"))
    got, report = read_export(path, "deals", CrmSettings())
    assert report.encoding in {"cp932", "shift_jis"}
    assert got[0][1]["product"] == "コア0"


def test_owners_matching_no_rep_make_crm_check_fail_and_reach_plan_notes(tmp_path: Path) -> None:
    config = _set(tmp_path, "hubspot")
    config.write_text(
        config.read_text(encoding="utf-8") + '[crm.columns.reps]\nname = "Team"\nemail = ""\n', encoding="utf-8"
    )
    crm = config.parent / "crm"
    code, out, _ = _cli(["--no-color", "crm", "check", "-c", str(config), str(crm / "closed-deals.xlsx")])
    assert code == 3
    assert "rows name an owner who matches no rep in users.xlsx" in out
    line = next(x for x in out.splitlines() if "matches no rep" in x)
    assert ":2:Deal owner: 700 of 700 rows" in line
    assert line.count("first on line") == 5 and "and 3 more" in line
    assert "NOT OK (1 problem)" in out
    notes = _plan(config)["plan"]["notes"]
    assert "matches no rep in users.xlsx" in notes[0] or "matches no rep in users.xlsx" in notes[1]


def test_rep_regions_matching_no_account_region_are_a_problem(tmp_path: Path) -> None:
    data = crmgen.dataset()
    for a in data.accounts:
        a["region"] = "US"  # the accounts' Billing Country, not the reps' East/West/Central
    config = _set(tmp_path, "salesforce", data)
    crm = config.parent / "crm"
    code, out, _ = _cli(["--no-color", "crm", "check", "-c", str(config), str(crm / "users.csv")])
    assert code == 3
    assert "3 rep region(s) match no account's region in accounts.csv: 'East', 'West', 'Central'" in out
    assert "8 of 8 reps get no region fit" in out
    assert any("rep region(s) match no account's region" in n for n in _plan(config)["plan"]["notes"][:3])


@pytest.mark.parametrize("crm", ["chinese"])
def test_the_chinese_region_header_is_mapped(tmp_path: Path, crm: str) -> None:
    config = _set(tmp_path, crm)
    settings = load_settings(config)
    data = load_crm(settings.crm, settings.base_dir)
    assert {r.region for r in data.reps} == {"East", "West", "Central"}
    assert {a.region for a in data.accounts} == {"East", "West", "Central"}


def test_deals_whose_account_is_missing_are_counted_with_the_first_five(tmp_path: Path) -> None:
    data = crmgen.dataset()
    config = _set(tmp_path, "salesforce", data)
    accounts = config.parent / "crm" / "accounts.csv"
    lines = accounts.read_bytes().split(b"\r\n")
    accounts.write_bytes(b"\r\n".join(lines[:11]) + b"\r\n")  # 10 of 90 accounts left
    deals = config.parent / "crm" / "opportunities.csv"
    code, out, _ = _cli(["--no-color", "crm", "check", "-c", str(config), str(deals)])
    assert code == 3
    line = next(x for x in out.splitlines() if "name an account that is not in accounts.csv" in x)
    missing = sum(1 for d in data.deals if d["account"] not in {a["name"] for a in data.accounts[:10]})
    assert f"{missing} of {len(data.deals)} deals name an account" in line
    assert line.count("first on line") == 5
    assert "NOT OK" in out


def test_a_name_repeated_where_names_are_the_key_is_named_and_left_out(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("Account Name,Industry\nAcme,Retail\nGlobex,Finance\nACME ,Health\n", encoding="utf-8")
    rows, report = read_export(path, "accounts", CrmSettings())
    assert [(v["id"], v["sector"]) for _, v in rows] == [("Acme", "Retail"), ("Globex", "Finance")]
    assert report.ok and report.skipped == 1
    assert report.problems == [
        f"{path}:4:Account Name: duplicate account name 'ACME' (the accounts' key: no id column): "
        "line 2 has it too; this row is left out (the first is kept)"
    ]
