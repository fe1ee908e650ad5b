"""A big, messy, real-shaped book as a stranger brings it (``strangergen``), shrunk to the
smallest that shows each defect, through the CLI: the figures a manager checks must agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import strangergen
from test_crm_exports import _cli

TODAY = strangergen.TODAY.isoformat()


def _json(config: Path, *argv: str) -> dict[str, Any]:
    code, out, err = _cli(["-c", str(config), *argv, "--json", "--today", TODAY])
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_plan_kpis_before_count_the_board_as_report_does(tmp_path: Path) -> None:
    """The plan's KPIs before it (open tasks, pipeline, expected value before) are the board's as
    it is, the figures `report` gives: a card the plan would create does not exist yet (they
    counted for the deal's CRM owner before the plan, so a rep's 'before' disagreed with itself)."""
    config = strangergen.write(tmp_path, cards=40, reps=5, accounts=20)
    plan = _json(config, "plan")
    assert plan["plan"]["creates"], "the book has deals without a card, at a stage cards are made for"
    report = {r["rep_id"]: r for r in _json(config, "report")["kpis_before"]["reps"]}
    for before, row in zip(plan["kpis_before"]["reps"], plan["reps"], strict=True):
        assert before["open_tasks"] == row["before"] == report[row["rep_id"]]["open_tasks"], row["name"]
        assert before["pipeline"] == row["pipeline_before"] == report[row["rep_id"]]["pipeline"], row["name"]


def test_report_footer_under_a_name_key_is_not_a_record(tmp_path: Path) -> None:
    """A Salesforce report's footer ('Confidential Information - Do Not Distribute') under the
    accounts' or reps' name column is a footer, not an account or a rep (it read as one: the only
    required cell, the key, was filled)."""
    config = strangergen.write(tmp_path, cards=30, reps=5, accounts=12)
    users = tmp_path / "crm" / "users.csv"
    users.write_bytes(users.read_bytes() + b"\r\nConfidential Information - Do Not Distribute\r\n")
    code, out, err = _cli(["-c", str(config), "crm", "check"])
    assert code == 0, err
    for path, rows in ((users, "6 read"), (tmp_path / "crm" / "accounts.csv", "12 read")):
        section = out.split(f"{path}:", 1)[1].split("\n\n", 1)[0]
        assert f"rows: {rows}" in section and "1 report footer/total line(s) ignored" in section, section
    reps = _json(config, "reps")["reps"]
    assert not [r for r in reps if "Confidential" in r["name"]]
