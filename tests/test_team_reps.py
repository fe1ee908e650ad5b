"""`tasksync reps`: the table, and away / back / capacity / quota / reset as overrides of the reps
export, through the CLI on the local board, the fake Trello and the fake Asana."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasksync.examples import generate
from team_boards import DAY, KINDS, example_board, run, run_json


def rep_row(data: dict[str, Any], name: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in data["reps"] if r["name"] == name)
    return row


def plan_rows(config: Path, capsys: pytest.CaptureFixture[str], today: str = DAY) -> dict[str, Any]:
    data: dict[str, Any] = run_json(config, capsys, "plan", "--json", "--today", today)
    return data


@pytest.mark.parametrize("kind", KINDS)
def test_away_until_hands_on_cards_says_why_and_expires(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board(kind, tmp_path / "demo", monkeypatch) as config:
        assert run(config, "apply", "--now") == 0  # a balanced board to start from
        before = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Ana Alvarez")
        assert before["available"] and before["member"] and before["open_tasks"] > 0
        assert before["matched_by"] in ("name", "email", "username")

        assert run(config, "reps", "away", "ana", "--until", "2026-11-20", "--today", DAY) == 0
        listed = run_json(config, capsys, "reps", "--json", "--today", DAY)
        ana = rep_row(listed, "Ana Alvarez")
        assert not ana["available"] and ana["availability"] == "away until 2026-11-20, set by command"
        assert [o["setting"] for o in listed["overrides"]] == ["available"]

        plan = plan_rows(config, capsys)
        moved = [c for c in plan["changes"] if c["field"] == "assignees" and c["before"] == "Ana Alvarez"]
        assert moved and all("Ana Alvarez is away until 2026-11-20, set by command" in c["reason"] for c in moved)
        assert "Ana Alvarez: away until 2026-11-20, set by command" in plan["plan"]["notes"]

        assert run(config, "apply") == 0
        after = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Ana Alvarez")
        assert after["open_tasks"] < before["open_tasks"]  # the board itself changed

        # The day after `until` the override has expired by itself: Ana is available again.
        later = run_json(config, capsys, "reps", "--json", "--today", "2026-11-21")
        assert rep_row(later, "Ana Alvarez")["available"] and later["overrides"] == []
        notes = plan_rows(config, capsys, "2026-11-21")["plan"]["notes"]
        assert not any("set by command" in n for n in notes)


def test_back_ends_an_away_and_overrides_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "reps", "away", "Ana Alvarez", "--today", DAY) == 0
        assert (
            "away, set by command" in rep_row(run_json(config, capsys, "reps", "--json"), "Ana Alvarez")["availability"]
        )
        assert run(config, "reps", "back", "ana.alvarez@example.com") == 0
        data = run_json(config, capsys, "reps", "--json", "--today", DAY)
        assert rep_row(data, "Ana Alvarez")["available"] and data["overrides"] == []
        # Jonas Jansen is away in the export: `back` overrides the export, `reset` restores it.
        assert not rep_row(data, "Jonas Jansen")["available"]
        assert rep_row(data, "Jonas Jansen")["availability"] == "away (export)"
        assert run(config, "reps", "back", "jonas") == 0
        jonas = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Jonas Jansen")
        assert jonas["available"] and jonas["availability"] == "available, set by command"
        plan = plan_rows(config, capsys)
        assert "Jonas Jansen: available, set by command" in plan["plan"]["notes"]
        assert any(r["name"] == "Jonas Jansen" and r["after"] > 0 for r in plan["reps"])
        assert run(config, "reps", "reset", "jonas") == 0
        assert not rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Jonas Jansen")["available"]


def test_capacity_and_quota_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "apply", "--now") == 0
        ben = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Ben Brooks")
        assert run(config, "reps", "capacity", "ben", "2", "--value", "50000") == 0
        assert run(config, "reps", "quota", "ben", "100000") == 0
        data = run_json(config, capsys, "reps", "--json", "--today", DAY)
        row = rep_row(data, "Ben Brooks")
        assert (row["capacity"], row["capacity_value"], row["quota"]) == (2, 50000.0, 100000.0)
        assert row["target"]["target"] == 100000.0 * len(data["months"])
        assert sorted(o["setting"] for o in row["overrides"]) == ["capacity", "capacity_value", "quota"]
        plan = plan_rows(config, capsys)
        assert "Ben Brooks: capacity 2 tasks, set by command" in plan["plan"]["notes"]
        after = next(r for r in plan["reps"] if r["name"] == "Ben Brooks")["after"]
        assert after < ben["open_tasks"]  # the division follows the overridden capacity
        capsys.readouterr()
        assert run(config, "reps", "--today", DAY) == 0
        out = capsys.readouterr().out
        assert "Ben Brooks" in out and "2 / 50,000" in out and "100,000" in out and "Team" in out


def test_pinned_card_of_an_away_rep_is_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        board_file = config.parent / "board.json"
        board = json.loads(board_file.read_text(encoding="utf-8"))
        ana = next(m["id"] for m in board["members"] if m["fullName"] == "Ana Alvarez")
        card = next(c for c in board["cards"] if c["idMembers"] == [ana] and not c["closed"])
        label = next((lb for lb in board["labels"] if lb["name"] == "pinned"), None)
        if label is None:
            label = {"id": "pinnedlabel0000000000001", "name": "pinned", "color": "red", "idBoard": board["id"]}
            board["labels"].append(label)
        card["idLabels"] = [*card.get("idLabels", []), label["id"]]
        card["labels"] = [*card.get("labels", []), label]
        board_file.write_text(json.dumps(board), encoding="utf-8")
        assert run(config, "reps", "away", "ana", "--until", "2w", "--today", DAY) == 0
        notes = plan_rows(config, capsys)["plan"]["notes"]
        assert (
            f"card {card['name']!r} is pinned to Ana Alvarez, who is away until 2026-11-16, set by command: "
            "left with them (unpin it to hand it on)"
        ) in notes


def test_service_hands_on_cards_of_a_rep_away_by_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "apply", "--now") == 0
        before = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Chloe Chen")["open_tasks"]
        assert run(config, "reps", "away", "chloe", "--today", DAY) == 0
        assert run(config, "serve", "--once", "--today", DAY) == 0
        after = rep_row(run_json(config, capsys, "reps", "--json", "--today", DAY), "Chloe Chen")["open_tasks"]
        assert before > 0 and after < before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("away", "nobody"), "no rep named 'nobody'"),
        (("away", "e"), "names several reps"),
        (("away", "ana", "--until", "soon"), "--until 'soon': expected a date"),
        (("away", "ana", "--until", "2020-01-01"), "is before today"),
        (("capacity", "ana", "-3"), "cannot be negative"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with example_board("local", tmp_path / "demo", monkeypatch, cards=20) as config:
        capsys.readouterr()
        assert run(config, "reps", *args, "--today", DAY) == 2
        captured = capsys.readouterr()
        text = captured.err + captured.out
        assert message in text and "Traceback" not in text
        assert run_json(config, capsys, "reps", "--json", "--today", DAY)["overrides"] == []


def test_names_with_brackets_print_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=20) as config:
        reps = config.parent / "crm" / "reps.csv"
        reps.write_text(
            reps.read_text(encoding="utf-8").replace("Ana Alvarez,", "Ana [red]Alvarez[/] [/],"), encoding="utf-8"
        )
        capsys.readouterr()
        assert run(config, "reps", "--today", DAY) == 0
        out = capsys.readouterr().out
        assert out.count("Ana [red]Alvarez[/] [/]") == 2  # the reps table and the targets table


def test_reps_report_and_plan_show_one_band_before_and_after_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the first plan `reps` and `report` centred the band on the cards reps own today, while
    # the plan counts unowned cards and cards to create; after apply, cards no rep had room for
    # (capacities) stayed unowned and `report` dropped them from the mean the plan had counted.
    config = generate(tmp_path / "demo", seed=5, cards=60)
    config.write_text(config.read_text(encoding="utf-8").replace('"optimal"', '"balanced"'), encoding="utf-8")
    for r in run_json(config, capsys, "reps", "--json", "--today", DAY)["reps"]:
        assert run(config, "reps", "capacity", r["rep_id"], "5", "--today", DAY) == 0

    def band(*command: str) -> dict[str, float]:
        data = run_json(config, capsys, *command, "--json", "--today", DAY)
        return dict(data["band"]["workload"])

    plan = run_json(config, capsys, "plan", "--json", "--today", DAY)
    assert plan["plan"]["creates"] and plan["kpis_after"]["unowned_tasks"], "cards to create, and left unowned"
    held = plan["band"]["workload"]
    assert band("reps") == band("report") == held
    assert run(config, "apply") == 0
    assert band("reps") == band("report") == band("plan") == held
    capsys.readouterr()
    assert run(config, "report", "--today", DAY) == 0
    assert f"mean {held['mean']:.1f} " in capsys.readouterr().out
