"""Targets (quota, won, attainment, coverage) in `report`, its HTML page and `reps`; conflicts in
the HTML page with who changed what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasksync.report_html import embedded_data
from team_boards import DAY, example_board, run, run_json


def test_targets_add_up_in_report_json_html_and_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "reps", "quota", "ben", "100000") == 0
        page = tmp_path / "report.html"
        data = run_json(config, capsys, "report", "--json", "--today", DAY, "--html", str(page))
        targets = data["targets"]
        months = data["months"]
        assert targets["months"] == months and len(months) == 6
        kpi = {r["rep_id"]: r for r in data["kpis_after"]["reps"]}
        for t in targets["reps"]:
            k = kpi[t["rep_id"]]
            won = sum(k["won_by_month"][m] for m in months)
            assert t["won"] == pytest.approx(won)
            if k["quota"]:
                assert t["target"] == pytest.approx(k["quota"] * 6)
                assert t["attainment"] == pytest.approx(won / t["target"], abs=1e-4)
                left = max(0.0, t["target"] - won)
                assert t["coverage"] == (pytest.approx(k["expected_value"] / left, abs=1e-4) if left else None)
        ben = next(t for t in targets["reps"] if t["name"] == "Ben Brooks")
        assert ben["quota"] == 100000.0  # the override reaches the report
        team = targets["team"]
        with_quota = [t for t in targets["reps"] if t["target"]]
        assert team["target"] == pytest.approx(sum(t["target"] for t in with_quota))
        assert team["won"] == pytest.approx(sum(t["won"] for t in with_quota))
        assert team["attainment"] == pytest.approx(team["won"] / team["target"], abs=1e-4)

        html = page.read_text(encoding="utf-8")
        assert embedded_data(html)["targets"] == targets
        assert '<section id="targets">' in html and "<td>Team</td>" in html
        capsys.readouterr()
        assert run(config, "report", "--today", DAY) == 0
        out = capsys.readouterr().out
        assert "Targets" in out and "Attainment" in out and "Coverage" in out
        assert f"Targets over {months[0]} to {months[-1]} (6 months)" in out
        reps = run_json(config, capsys, "reps", "--json", "--today", DAY)
        assert reps["targets"] == targets


def test_conflicts_in_the_html_page_with_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch) as config:
        assert run(config, "apply", "--now") == 0
        board_file = config.parent / "board.json"
        board = json.loads(board_file.read_text(encoding="utf-8"))
        members = {m["fullName"]: m["id"] for m in board["members"]}
        prio = next(f for f in board["customFields"] if f["name"] == "Priority")
        options = {o["value"]["text"]: o["id"] for o in prio["options"]}
        owned = [c for c in board["cards"] if c["idMembers"] and not c["closed"]]
        moved, reprioritised = owned[0], owned[1]
        new_owner = next(n for n, m in members.items() if m not in moved["idMembers"] and n != "Jonas Jansen")
        old_owner = next(n for n, m in members.items() if m == moved["idMembers"][0])
        moved["idMembers"] = [members[new_owner]]
        item = next(
            i
            for i in board["customFieldItems"]
            if i["idModel"] == reprioritised["id"] and i["idCustomField"] == prio["id"]
        )
        old_tier = next(t for t, oid in options.items() if oid == item["idValue"])
        order = list(options)  # the farthest tier: more than hysteresis can absorb, so the policy wants the old one
        new_tier = max(order, key=lambda t: (abs(order.index(t) - order.index(old_tier)), t))
        item["idValue"] = options[new_tier]
        board_file.write_text(json.dumps(board), encoding="utf-8")

        page = tmp_path / "plan.html"
        data = run_json(config, capsys, "plan", "--json", "--today", DAY, "--html", str(page))
        by_title = {c["title"]: c for c in data["conflicts"]}
        # The hand-moved card stays with the person's choice: the policy wants what the card holds,
        # so it is a person's edit left as it is, not a conflict.
        assert moved["name"] not in by_title
        assert all(c["current"] != c["wanted"] for c in data["conflicts"])
        edits = {e["title"]: e for e in data["edits"]}
        owner = edits[moved["name"]]
        assert owner["field"] == "assignees" and owner["current"] == new_owner.replace("Kate", "Katherine")
        assert old_owner != new_owner
        tier = by_title[reprioritised["name"]]
        assert tier["current"] == new_tier and tier["wanted"] != new_tier
        html = page.read_text(encoding="utf-8")
        assert '<section id="conflicts">' in html
        assert f"<td>{new_tier}</td><td>{tier['wanted']}</td>" in html
        assert embedded_data(html)["conflicts"] == data["conflicts"]


def test_the_team_row_says_whom_it_totals() -> None:
    # With no quota at all the team's row showed won 0 and open expected 0 beside reps who had won;
    # with some quotas it totalled only those reps under the name "Team".
    from tasksync.team.targets import targets_of

    def rep(rid: str, quota: float | None, won: float) -> dict[str, object]:
        return {"rep_id": rid, "name": rid, "quota": quota, "won_by_month": {"2026-11": won}, "expected_value": 10.0}

    none = targets_of([rep("a", None, 100.0), rep("b", None, 50.0)], ["2026-11"])["team"]
    assert (none["label"], none["won"], none["expected_value"], none["target"]) == ("Team", 150.0, 20.0, None)
    some = targets_of([rep("a", 200.0, 100.0), rep("b", None, 50.0)], ["2026-11"])["team"]
    assert (some["label"], some["won"], some["target"], some["attainment"]) == (
        "Team (1 of 2 reps: with a quota)",
        100.0,
        200.0,
        0.5,
    )
