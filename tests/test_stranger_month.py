"""A sales manager's month with tasksync, reading only the README and ``--help``: weekly plans and
applies with reps leaving, joining, away and back, hand edits and undo. What each command says must
be plain and right: what it did, what it left as a person set it, and which file or name is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import xlsxgen
from tasksync.connectors.local import LocalConnector
from tasksync.examples import generate
from test_cli_cycle import DAY, board_of
from test_crm_exports import _cli
from test_stranger_boards import save_board


def _demo(folder: Path) -> Path:
    """A small copy of the built-in example divided by the fast ``balanced`` policy (the division
    is not what these tests check); returns its config."""
    config = generate(folder, cards=80)
    config.write_text(config.read_text(encoding="utf-8").replace('"optimal"', '"balanced"'), encoding="utf-8")
    return config


def _run(config: Path, *argv: str) -> tuple[int, str, str]:
    code, out, err = _cli(["--no-color", "-c", str(config), *argv])
    return code, " ".join(out.split()), " ".join(err.split())


def _plan(config: Path) -> dict[str, Any]:
    code, out, err = _cli(["-c", str(config), "plan", "--json", "--today", DAY])
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def test_undo_says_it_reverted_the_plan_and_what_it_skipped(tmp_path: Path) -> None:
    """`undo` printed "Applied plan <the undo's id>: N changes written": it says now that it undid
    the plan it was given, how many changes it reverted and how many it skipped as conflicts."""
    config = _demo(tmp_path / "demo")
    plan = _plan(config)["plan"]
    assert _run(config, "apply")[0] == 0
    applied = plan["id"]
    moved = next(c for c in plan["changes"] if c["field"] == "assignees")
    board = board_of(config)  # a person hands a card the plan moved on to someone else
    card = next(c for c in board["cards"] if c["id"] == moved["task_id"])
    card["idMembers"] = [m["id"] for m in board["members"] if m["id"] not in moved["after"] + moved["before"]][:1]
    save_board(config, board)
    code, out, err = _run(config, "undo", applied)
    assert code == 0, err
    assert "Applied plan" not in out, out
    assert f"Undid plan {applied} (undo plan " in out, out
    history = _run(config, "history")[1]
    undo_row = history.split(" undo ")[0].split()[-1]
    reverted = int(history.split(" undo ")[1].split()[1])
    assert f"): {reverted} changes reverted" in out and "1 skipped as conflicts" in out, out
    assert f"{card['name']!r} assignees was changed after the plan; left alone" in out, out
    assert undo_row in out


def test_crm_check_and_plan_agree_that_a_deals_export_without_records_has_none(tmp_path: Path) -> None:
    """A deals export of a header row alone (an export whose filter matched nothing) was "OK: 0 of 0
    rows usable" to `crm check`, and `plan` went on as if the board's cards linked to nothing.
    Both now reject it, naming the file (and the sheet of a workbook), and write nothing."""
    config = _demo(tmp_path / "demo")
    deals = config.parent / "crm" / "deals.csv"
    deals.write_text(deals.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    board = (config.parent / "board.json").read_bytes()
    said = f"{deals}: no records: a header row and nothing under it"
    code, out, err = _run(config, "crm", "check", str(deals))
    assert code == 3 and f"REJECTED (0 problems): {said}" in out, out + err
    code, out, err = _run(config, "plan", "--today", DAY)
    assert code == 3 and said in err, out + err
    assert (config.parent / "board.json").read_bytes() == board

    config = xlsxgen.write(tmp_path / "xlsx")
    deals = config.parent / "crm" / "商机.xlsx"
    wb = load_workbook(deals)
    wb["数据"].delete_rows(3, wb["数据"].max_row)  # the title row and the header stay
    wb.save(deals)
    said = f"{deals}: sheet '数据': no records: a header row and nothing under it"
    code, out, err = _run(config, "crm", "check", str(deals))
    assert code == 3 and said in out, out + err
    code, out, err = _run(config, "plan", "--today", xlsxgen.TODAY.isoformat())
    assert code == 3 and said in err, out + err


def test_a_history_export_without_records_is_named_by_crm_check_and_plan(tmp_path: Path) -> None:
    """A history export of a header alone (a team without closed deals yet) is read as no history,
    and both `crm check` and `plan` name the file as having no records."""
    config = _demo(tmp_path / "demo")
    history = config.parent / "crm" / "history.csv"
    history.write_text(history.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    said = f"{history}: no records: a header row and nothing under it; read as no history"
    code, out, err = _run(config, "crm", "check", str(history))
    assert code == 0 and said in out, out + err
    assert said in " ".join(_plan(config)["plan"]["notes"])


def test_a_conflict_says_what_the_plan_expected_what_a_person_set_and_that_it_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person set a priority on a card that had none while the plan giving it one was being
    applied. Every plan after said "'X' priority was set to P1 by a person (tasksync wrote (none))":
    tasksync had written nothing there. It says what the plan expected (no priority), what the
    person set and that the card is left as they set it."""
    config = _demo(tmp_path / "demo")
    plan = _plan(config)["plan"]
    target = [c for c in plan["changes"] if c["field"] == "priority" and c["before"] is None and c["after"] == "P4"][-1]
    board = board_of(config)
    field = next(f for f in board["customFields"] if f["name"] == "Priority")
    theirs = next(o for o in field["options"] if o["value"]["text"] == "P1")  # far from the plan's P4
    mine = (target["task_id"], field["id"])
    real_write = LocalConnector.write

    def write_while_a_person_sets_the_priority(self: LocalConnector, writes: Any) -> Iterator[Any]:
        for n, result in enumerate(real_write(self, writes)):
            if n == 0:
                data = board_of(config)
                data["customFieldItems"] = [
                    i for i in data["customFieldItems"] if (i["idModel"], i["idCustomField"]) != mine
                ]
                data["customFieldItems"].append(
                    {"idCustomField": field["id"], "idModel": target["task_id"], "idValue": theirs["id"]}
                )
                save_board(config, data)
            yield result

    monkeypatch.setattr(LocalConnector, "write", write_while_a_person_sets_the_priority)
    code, out, err = _run(config, "apply")
    assert code == 0 and "1 card in conflict" in out, out + err
    monkeypatch.setattr(LocalConnector, "write", real_write)
    again = _plan(config)["plan"]
    assert [(c["task_id"], c["current"]) for c in again["conflicts"]] == [(target["task_id"], theirs["value"]["text"])]
    code, out, err = _run(config, "plan", "--today", DAY)
    assert "tasksync wrote" not in out, out
    assert (
        f"{target['title']!r} priority: the plan expected no priority, a person set {theirs['value']['text']}; "
        f"left as the person set it, not changed to {again['conflicts'][0]['wanted']}"
    ) in out, out


def test_a_rep_written_family_name_first_is_one_rep_in_every_export_and_on_the_board(tmp_path: Path) -> None:
    """The reps export writes two reps family name first ("Brooks Ben", "Chen, Chloe"); the board
    and the accounts, deals and history exports write them given name first. The board matched
    them, but every deal, account and closed deal of "Ben Brooks" counted for nobody: his won value
    0, his win rate the team's. Each such owner is now the rep, where the name fits one rep only."""
    config = _demo(tmp_path / "demo")
    reps = config.parent / "crm" / "reps.csv"
    text = reps.read_text(encoding="utf-8")
    text = text.replace("R002,Ben Brooks,ben.brooks@example.com,", "R002,Brooks Ben,,")
    reps.write_text(text.replace("R003,Chloe Chen,", 'R003,"Chen, Chloe",'), encoding="utf-8")
    code, out, err = _run(config, "crm", "check")
    assert code == 0 and "4 file(s): 4 usable, 0 not; 0 problem(s) in all" in out, out + err
    rows = {r["name"]: r for r in json.loads(_cli(["-c", str(config), "reps", "--json", "--today", DAY])[1])["reps"]}
    assert rows["Brooks Ben"]["member"]["name"] == "Ben Brooks", rows["Brooks Ben"]
    assert rows["Chen, Chloe"]["member"]["name"] == "Chloe Chen", rows["Chen, Chloe"]
    report = {
        r["name"]: r for r in json.loads(_cli(["-c", str(config), "report", "--json", "--today", DAY])[1])["reps"]
    }
    assert report["Brooks Ben"]["closed"] > 0 and report["Brooks Ben"]["won"] > 0, report["Brooks Ben"]


def test_a_name_two_reps_or_two_members_would_fit_is_refused_naming_both(tmp_path: Path) -> None:
    """Where a name in another word order fits two reps (an owner cell), or a rep's name fits two
    board members, nothing is guessed: `crm check` and `plan` name both, and the rep gets no cards."""
    config = _demo(tmp_path / "demo")
    reps, deals = config.parent / "crm" / "reps.csv", config.parent / "crm" / "deals.csv"
    lines = reps.read_text(encoding="utf-8").splitlines()
    ben = next(line for line in lines if line.startswith("R002,Ben Brooks,"))
    lines.append(ben.replace("R002,Ben Brooks,ben.brooks@example.com,", 'R099,"Brooks, Ben",,'))
    reps.write_text("\n".join(lines) + "\n", encoding="utf-8")
    deals.write_text(deals.read_text(encoding="utf-8").replace(",Ben Brooks\n", ",Brooks Ben\n"), encoding="utf-8")
    said = "rows) would fit reps 'Ben Brooks' and 'Brooks, Ben' (accents and word order ignored): none is guessed"
    code, out, err = _run(config, "crm", "check")
    assert code == 0, out + err
    assert said in out and "owner 'Brooks Ben' (" in out, out + err
    assert said in " ".join(_plan(config)["plan"]["notes"])

    reps.write_text(
        reps.read_text(encoding="utf-8").replace("R002,Ben Brooks,ben.brooks@example.com,", "R002,Brooks Ben,,")
    )
    notes = " ".join(_plan(config)["plan"]["notes"])
    assert "reps 'Brooks Ben' (R002) and 'Brooks, Ben' (R099) would fit one board member, 'Ben Brooks'" in notes, notes

    board = board_of(config)  # a second Ben Brooks joins the board; the reps export has one again
    reps.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    board["members"].append({"id": "b" * 24, "fullName": "Ben Brooks", "username": "benbrooks2"})
    save_board(config, board)
    plan = _plan(config)
    assert (
        "rep 'Ben Brooks' (R002) would fit board members 'Ben Brooks' (benbrooks) and 'Ben Brooks' (benbrooks2) "
        "by name: none is guessed" in " ".join(plan["plan"]["notes"])
    )
    bens = {m["id"] for m in board["members"] if m["fullName"] == "Ben Brooks"}
    given = [c for c in plan["plan"]["changes"] if c["field"] == "assignees" and set(c["after"]) & bens]
    assert not given and not [n for n in plan["plan"]["creates"] if set(n["assignees"]) & bens]


def test_a_band_written_as_a_percentage_is_refused_saying_how_to_write_it(tmp_path: Path) -> None:
    """`band = 10` (meant: ±10%) was taken as ±1000%: the plan's band read "-84–103 open tasks"
    and nothing was balanced. A band above 1 is refused, saying it is a share and how to write it."""
    config = _demo(tmp_path / "demo")
    good = config.read_text(encoding="utf-8")
    for key, written, meant in (("band", "10", "0.1"), ("value_band", "20", "0.2")):
        config.write_text(good.replace("[policy]\n", f"[policy]\n{key} = {written}\n").replace("band = 0.10  ", "#"))
        code, out, err = _run(config, "plan", "--today", DAY)
        assert code == 2, out + err
        assert f"policy.{key} = {written}: a band is a share of the mean, at most 1: 0.10 is ±10%" in err, err
        assert f"(for ±{written}%: {meant})" in err, err


def test_a_typo_in_a_config_key_is_named_with_the_key_meant(tmp_path: Path) -> None:
    """A mistyped key (`bnad` for `band`) was "policy.bnad = 0.1: Extra inputs are not permitted":
    it is an unknown key, and the message names the key it was likely meant to be."""
    config = _demo(tmp_path / "demo")
    good = config.read_text(encoding="utf-8")
    for typo, said in (
        (good.replace("band = 0.10", "bnad = 0.10"), "policy.bnad = 0.1: unknown key (did you mean 'band'?)"),
        (good.replace("[policy]", "[polcy]"), "polcy: unknown key (did you mean 'policy'?)"),
    ):
        config.write_text(typo, encoding="utf-8")
        code, out, err = _run(config, "plan", "--today", DAY)
        assert code == 2 and f"{config}: {said}" in err, out + err


def test_team_commands_take_a_rep_written_family_name_first_and_name_the_rep_a_typo_meant(tmp_path: Path) -> None:
    """`reps away "Brooks, Ben"` (as the CRM writes him) found no rep 'Ben Brooks', and a typo
    ("Ben Broks") was only "no rep named 'Ben Broks'". The first is Ben Brooks, the word order
    ignored as for the board and the exports; the second names the rep it was likely meant for."""
    config = _demo(tmp_path / "demo")
    code, out, err = _run(config, "reps", "away", "Brooks, Ben", "--today", DAY)
    assert code == 0 and out.startswith("Ben Brooks: away"), out + err
    code, out, err = _run(config, "reps", "back", "Ben Broks", "--today", DAY)
    assert code == 2 and "no rep named 'Ben Broks' in the reps export (did you mean 'Ben Brooks'?)" in err, out + err
    away = {r["name"]: r["available"] for r in json.loads(_cli(["-c", str(config), "reps", "--json"])[1])["reps"]}
    assert away["Ben Brooks"] is False


def test_the_cards_people_changed_that_the_plan_leaves_are_named(tmp_path: Path) -> None:
    """A person takes the owner off a card after an apply; every plan after leaves it unowned (their
    edit) and said only "1 field(s) changed by people ...": a manager could not tell which card
    stays out of the division. The plan names the cards and fields."""
    config = _demo(tmp_path / "demo")
    assert _run(config, "plan", "--today", DAY)[0] == 0 and _run(config, "apply")[0] == 0
    board = board_of(config)
    card = next(c for c in board["cards"] if c["idMembers"] and not c["closed"] and c["name"].count(" - "))
    card["idMembers"] = []
    save_board(config, board)
    plan = _plan(config)["plan"]
    assert not [c for c in plan["changes"] if c["task_id"] == card["id"]]  # left unowned, as the person set it
    code, out, err = _run(config, "plan", "--today", DAY)
    assert code == 0, err
    said = "1 field(s) changed by people since tasksync wrote them, which the policy leaves as they are"
    assert f"{said} ({card['name']!r} assignees)" in out, out


def test_a_standing_conflict_on_a_value_tasksync_wrote_does_not_repeat_it(tmp_path: Path) -> None:
    """tasksync wrote P4 on a card and a person later set P1 there: the plan still wants P4. The
    conflict read "the plan expected P4, a person set P1; left as the person set it, not changed to
    P4": it says once what tasksync wrote and that --force would set it back."""
    config = _demo(tmp_path / "demo")
    plan = _plan(config)["plan"]
    target = next(c for c in plan["changes"] if c["field"] == "priority" and c["after"] == "P4")
    assert _run(config, "apply")[0] == 0
    board = board_of(config)
    field = next(f for f in board["customFields"] if f["name"] == "Priority")
    theirs = next(o for o in field["options"] if o["value"]["text"] == "P1")
    items = board["customFieldItems"]
    board["customFieldItems"] = [
        i for i in items if (i["idModel"], i["idCustomField"]) != (target["task_id"], field["id"])
    ]
    board["customFieldItems"].append(
        {"idCustomField": field["id"], "idModel": target["task_id"], "idValue": theirs["id"]}
    )
    save_board(config, board)
    code, out, err = _run(config, "plan", "--today", DAY)
    assert code == 0, err
    assert "not changed to P4" not in out, out
    assert (
        f"{target['title']!r} priority: the plan expected P4, a person set P1; left as the person set it "
        "(use --force to set it back to P4)"
    ) in out, out
