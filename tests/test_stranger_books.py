"""A big, messy, real-shaped book as a stranger brings it (``strangergen``), shrunk to the
smallest that shows each defect, through the CLI: the figures a manager checks must agree."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import strangergen
from test_crm_exports import _cli

TODAY = strangergen.TODAY.isoformat()


def _book(folder: Path, cards: int, reps: int, accounts: int, policy: str = "balanced") -> Path:
    """The book shrunk, divided by the fast ``balanced`` policy (what is checked is not the policy's)."""
    config = strangergen.write(folder, cards=cards, reps=reps, accounts=accounts)
    config.write_text(config.read_text(encoding="utf-8").replace('"optimal"', f'"{policy}"'), encoding="utf-8")
    return config


def _json(config: Path, *argv: str) -> dict[str, Any]:
    code, out, err = _cli(["-c", str(config), *argv, "--json", "--today", TODAY])
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_plan_kpis_before_count_the_board_as_report_does(tmp_path: Path) -> None:
    """The plan's KPIs before it (open tasks, pipeline, expected value before) are the board's as
    it is, the figures `report` gives: a card the plan would create does not exist yet (they
    counted for the deal's CRM owner before the plan, so a rep's 'before' disagreed with itself)."""
    config = _book(tmp_path, cards=40, reps=5, accounts=20)
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


def test_an_account_named_like_a_total_is_an_account(tmp_path: Path) -> None:
    """An account whose name starts like a total ('Total Wine', 'Count Labs') is read as one, even
    with its other cells empty: only a footer's own phrases, alone on their line, are footers."""
    config = _book(tmp_path, cards=30, reps=5, accounts=12)
    accounts = tmp_path / "crm" / "accounts.csv"
    head, rest = accounts.read_bytes().decode("utf-8-sig").split("\r\n", 1)
    accounts.write_bytes(f"{head}\r\nTotal Wine,,,,,\r\nCount Labs\r\n{rest}".encode("utf-8-sig"))
    code, out, err = _cli(["-c", str(config), "crm", "check", str(accounts)])
    assert code == 0, err
    assert "rows: 14 read, 14 usable" in out and "1 report footer/total line(s) ignored" in out, out


def _moved_note(plan: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
    note = next(n for n in plan["plan"]["notes"] if n.startswith("owned cards moved: "))
    head, _, causes = note.removeprefix("owned cards moved: ").partition(" (")
    moved, _, owned = head.partition(" of ")
    counts = {k: int(n) for k, _, n in (c.rpartition(" ") for c in causes.rstrip(")").split(", ") if c)}
    return int(moved), int(owned), counts


@pytest.mark.parametrize("policy", ["balanced", "optimal"])
def test_owned_cards_moved_add_up_to_the_plans_owner_changes(tmp_path: Path, policy: str) -> None:
    """The summary's owned cards moved, by cause, are the plan's owner changes of owned cards, by
    reason (a card to create given to another rep than its deal's CRM owner counted as an owned
    card moved, and in 'of N' owned cards)."""
    config = _book(tmp_path, cards=60, reps=5, accounts=25, policy=policy)
    board = json.loads((tmp_path / "board.json").read_text(encoding="utf-8"))
    linked = {i["value"]["text"] for i in board["customFieldItems"] if "value" in i}
    with (tmp_path / "crm" / "opportunities.csv").open(encoding="utf-8-sig") as fh:
        cardless = [d for d in csv.DictReader(fh) if d["Opportunity Name"] not in linked and d["Opportunity Owner"]]
    owner = next(d["Opportunity Owner"] for d in cardless if d["Stage"] in ("Prospecting", "Qualification"))
    assert _cli(["-c", str(config), "reps", "away", owner])[0] == 0  # their new card goes to another rep
    plan = _json(config, "plan")
    assert any(owner in c["reason"] and c["reason_kind"] == "new card" for c in plan["plan"]["creates"])
    moved, owned, counts = _moved_note(plan)
    owner_changes = [c for c in plan["plan"]["changes"] if c["field"] == "assignees" and c["before"]]
    by_kind: dict[str, int] = {}
    for c in owner_changes:
        by_kind[c["reason_kind"]] = by_kind.get(c["reason_kind"], 0) + 1
    assert (moved, counts) == (len(owner_changes), by_kind)
    assert owned <= sum(1 for c in board["cards"] if c["idMembers"])


def test_a_pinned_card_without_owner_is_named(tmp_path: Path) -> None:
    """A pinned card with no owner keeps none (a person's pin): the plan names it, as it names
    pinned cards of reps who are away (it was left unowned in silence)."""
    config = _book(tmp_path, cards=30, reps=5, accounts=12)
    board = json.loads((tmp_path / "board.json").read_text(encoding="utf-8"))
    pin = next(label["id"] for label in board["labels"] if label["name"] == "pinned")
    card = next(c for c in board["cards"] if not c["idMembers"] and pin not in c["idLabels"])
    card["idLabels"].append(pin)
    (tmp_path / "board.json").write_text(json.dumps(board), encoding="utf-8")
    plan = _json(config, "plan")
    assert not [c for c in plan["plan"]["changes"] if c["task_id"] == card["id"] and c["field"] == "assignees"]
    assert any("pinned card(s) have no owner" in n and repr(card["name"]) in n for n in plan["plan"]["notes"])


def test_report_says_over_what_the_conversion_is_counted(tmp_path: Path) -> None:
    """The report's conversion is won ÷ closed over the whole history, years of it, beside won value
    of six months: the report says so, with the history's months (it said only the six months)."""
    config = _book(tmp_path, cards=30, reps=5, accounts=12)
    with (tmp_path / "crm" / "closed.csv").open(encoding="utf-8-sig") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Stage"]]
    months = sorted(f"{y}-{int(m):02d}" for m, _, y in (r["Close Date"].split("/") for r in rows))
    report = _json(config, "report")
    said = f"Conversion: won ÷ closed over the whole history ({months[0]} to {months[-1]})"
    assert said in report["window"]["explain"]
    assert months[0] < report["months"][0]
    for rep in report["kpis_before"]["reps"]:
        mine = [r for r in rows if r["Opportunity Owner"] == rep["name"]]
        assert (rep["won"], rep["closed"]) == (sum(r["Stage"] == "Closed Won" for r in mine), len(mine))
