"""`tasksync export owners`: the deals whose owner tasksync changed, in each CRM's import headers,
through the CLI on the local board, the fake Trello and the fake Asana."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from team_boards import DAY, KINDS, example_board, run, run_json


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def deal_owner_in_export(config: Path) -> dict[str, str]:
    with (config.parent / "crm" / "deals.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    reps = {r["Name"]: r["Rep ID"] for r in csv.DictReader((config.parent / "crm" / "reps.csv").open(encoding="utf-8"))}
    id_col = next(k for k in rows[0] if k.lower().startswith("deal id") or k == "Deal ID")
    return {r[id_col]: reps.get(r["Owner"], r["Owner"]) for r in rows}


@pytest.mark.parametrize("kind", KINDS)
def test_owner_changes_in_every_crm_format(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board(kind, tmp_path / "demo", monkeypatch) as config:
        out = tmp_path / "owners.csv"
        assert run(config, "export", "owners", str(out)) == 0
        assert read_rows(out) == []  # nothing applied yet: nothing to tell the CRM
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)
        moved = {c["task_id"] for c in plan["plan"]["changes"] if c["field"] == "assignees"}
        assert moved
        assert run(config, "apply") == 0
        capsys.readouterr()
        assert run(config, "export", "owners", str(out)) == 0
        assert "owner change(s) from 1 applied plan(s)" in capsys.readouterr().out
        rows = read_rows(out)
        assert rows and {r["card_id"] for r in rows} <= moved | {
            r["card_id"] for r in rows if r["card_id"] not in moved
        }
        crm_owner = deal_owner_in_export(config)
        for r in rows:
            assert r["owner_id"] != r["crm_owner_id"] == crm_owner[r["deal_id"]]
        assert len({r["deal_id"] for r in rows}) == len(rows)  # one row per deal
        by_deal = {r["deal_id"]: r for r in rows}
        expected = {
            "salesforce": (["Id", "OwnerId"], lambda r: [r["deal_id"], r["owner_id"]]),
            "hubspot": (["Record ID", "Deal owner"], lambda r: [r["deal_id"], r["owner_email"]]),
            "zoho": (["Record Id", "Deal Owner"], lambda r: [r["deal_id"], r["owner_email"]]),
            "pipedrive": (["Deal - ID", "Deal - Owner"], lambda r: [r["deal_id"], r["owner_email"]]),
        }
        for fmt, (headers, cells) in expected.items():
            path = tmp_path / f"{fmt}.csv"
            assert run(config, "export", "owners", "--format", fmt, str(path)) == 0
            with path.open(encoding="utf-8", newline="") as f:
                table = list(csv.reader(f))
            assert table[0] == headers
            assert sorted(table[1:]) == sorted(cells(by_deal[d]) for d in by_deal)


def test_card_owners_on_the_board_and_since_and_undo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "apply", "--now") == 0
        out = tmp_path / "owners.csv"
        assert run(config, "export", "owners", str(out)) == 0
        rows = read_rows(out)
        board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
        member_name = {m["id"]: m["fullName"] for m in board["members"]}
        cards = {c["id"]: c for c in board["cards"]}
        for r in rows:  # the owner written is the one the card holds
            names = [
                member_name[m].replace("Kate O'Neil", "Katherine O'Neil") for m in cards[r["card_id"]]["idMembers"]
            ]
            assert names == [r["owner_name"]]

        # A second plan: Chloe away; --since that plan gives only its cards.
        assert run(config, "reps", "away", "chloe", "--today", DAY) == 0
        second = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        assert run(config, "apply") == 0
        assert run(config, "export", "owners", "--since", second["id"], str(out)) == 0
        since_rows = read_rows(out)
        second_cards = {c["task_id"] for c in second["changes"] if c["field"] == "assignees"}
        assert since_rows and {r["card_id"] for r in since_rows} <= second_cards

        # Undone, the second plan changed nothing the CRM needs to hear about.
        assert run(config, "undo", second["id"]) == 0
        assert run(config, "export", "owners", "--since", second["id"], str(out)) == 0
        assert read_rows(out) == []


def test_bad_input_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=30) as config:
        assert run(config, "apply", "--now") == 0
        out = tmp_path / "owners.csv"
        capsys.readouterr()
        assert run(config, "export", "owners", "--since", "nope", str(out)) == 2
        err = capsys.readouterr().err
        assert "--since nope: no such plan" in err and "Traceback" not in err and not out.exists()
        # HubSpot matches owners by email: a rep without one is named, nothing written.
        reps = config.parent / "crm" / "reps.csv"
        with reps.open(encoding="utf-8", newline="") as f:
            table = list(csv.reader(f))
        email = table[0].index("Email")
        for row in table[1:]:
            row[email] = ""
        with reps.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(table)
        assert run(config, "export", "owners", "--format", "hubspot", str(out)) == 2
        err = capsys.readouterr().err
        assert "hubspot matches owners by email" in err and "Traceback" not in err
        assert not out.exists() and list(tmp_path.glob(".owners.csv.*")) == []
