"""Reports that match: one count of changes in plan, apply and history; no empty proposals;
superseded proposals pruned; `status --json` typed."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tasksync.model import BoardRef, Plan, PlanKind
from tasksync.settings import load_settings
from tasksync.sync.state import StateStore
from team_boards import DAY, KINDS, example_board, run, run_json


@pytest.mark.parametrize("kind", KINDS)
def test_one_count_of_changes_in_plan_apply_and_history(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board(kind, tmp_path / "demo", monkeypatch) as config:
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        changes, creates = len(plan["changes"]), len(plan["creates"])
        assert changes and creates  # the example has both, which is what made the counts differ
        assert run(config, "apply") == 0
        out = capsys.readouterr().out
        assert f"Applied plan {plan['id']}: {changes} changes written, {creates} cards created" in out
        assert run(config, "history") == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(plan["id"]))
        assert re.search(rf"applied\s+{changes} changes\s+{creates} creates", line)


def test_empty_plans_are_not_proposals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=30) as config:
        first = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        assert run(config, "apply") == 0
        for _ in range(3):
            assert run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]["changes"] == []
        capsys.readouterr()
        assert run(config, "history") == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1 and lines[0].startswith(first["id"])  # no empty proposals
        assert run(config, "apply") == 0  # nothing to apply, and nothing stored for it
        assert "Nothing to apply: plan" in capsys.readouterr().out
        assert run(config, "history") == 0
        assert len(capsys.readouterr().out.splitlines()) == 1
        # ... unless the board changed since that empty plan: plan again (as with a stale proposal).
        board_file = config.parent / "board.json"
        board = json.loads(board_file.read_text(encoding="utf-8"))
        next(c for c in board["cards"] if c["idMembers"])["idMembers"] = []
        board_file.write_text(json.dumps(board), encoding="utf-8")
        assert run(config, "apply") == 4
        assert "the board changed since plan" in capsys.readouterr().err


def _plan(board: BoardRef, n: int, at: datetime) -> Plan:
    return Plan(id=f"old-{n:03d}", board=board, kind=PlanKind.SYNC, base_fingerprint="x", created_at=at)


def test_superseded_proposals_are_pruned_to_the_last_50_and_applied_plans_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=30) as config:
        first = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        applied = first["id"]
        assert run(config, "apply") == 0
        settings = load_settings(config)
        board = BoardRef("local", "board.json")
        start = datetime.fromisoformat(first["created_at"])  # newer than the applied plan, older than the next
        with StateStore(settings.path(settings.state_path)) as store:
            for n in range(70):  # 70 proposals, each superseding the one before
                store.save_plan(_plan(board, n, start + timedelta(microseconds=n + 1)), "proposed")
            assert len(store.plans(board, limit=1000)) == 71
        # A rep away makes the next plan non-empty, so it is saved as a proposal (and prunes).
        assert run(config, "reps", "away", "ana", "--today", DAY) == 0
        newest = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]["id"]
        with StateStore(settings.path(settings.state_path)) as store:
            plans = store.plans(board, limit=1000)
        ids = [p.id for p in plans]
        assert newest in ids and applied in ids  # the applied plan is older than the 50 kept, and stays
        assert len(plans) == 51
        assert "old-000" not in ids and "old-069" in ids


def test_status_json_has_typed_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=20) as config:
        assert run(config, "apply", "--now") == 0  # the service's create guard would pause on a new board
        assert run(config, "serve", "--once", "--today", DAY) == 0
        status = run_json(config, capsys, "status", "--json")
        (values,) = status.values()
        assert values["code"] == 0 and isinstance(values["errors"], int) and values["errors"] == 0
        assert isinstance(values["interval"], float) and isinstance(values["conflicts"], int)
        assert values["last_error"] is None and values["paused"] is None


def test_report_window_is_the_last_months_with_data_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with example_board("local", tmp_path / "demo", monkeypatch, cards=20) as config:
        # Four months after the history ends: the window still ends with the last month of data.
        page = tmp_path / "r.html"
        data = run_json(config, capsys, "report", "--json", "--today", "2027-03-01", "--html", str(page))
        assert data["months"] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
        assert data["window"]["months"] == data["months"] == data["targets"]["months"]
        assert "the last 6 months with closed deals (the history ends 2026-11-01)" in data["window"]["explain"]
        assert any(sum(r["won_by_month"].values()) > 0 for r in data["reps"])
        assert "the history ends 2026-11-01" in page.read_text(encoding="utf-8")
        capsys.readouterr()
        assert run(config, "report", "--today", "2027-03-01") == 0
        assert "Won value over 2026-06 to 2026-11: the last 6 months with closed deals" in capsys.readouterr().out
        asked = run_json(config, capsys, "report", "--json", "--today", DAY, "--since", "2026-01", "--until", "2026-03")
        assert asked["months"] == ["2026-01", "2026-02", "2026-03"]
        assert "2026-01 to 2026-03 as asked" in asked["window"]["explain"]
        capsys.readouterr()
        assert run(config, "report", "--since", "2026-05", "--until", "2026-03") == 2
        assert "--since 2026-05-01 is after --until 2026-03-01" in capsys.readouterr().err
        assert run(config, "report", "--since", "May") == 2
        assert "--since 'May': expected YYYY-MM" in capsys.readouterr().err


def test_report_of_a_past_period_gives_no_coverage_from_todays_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `report --until` a past month divided today's open expected value by what was left of that
    # period's target: a coverage no sales manager can use (the pipeline as it was then is not kept).
    with example_board("local", tmp_path / "demo", monkeypatch, cards=20) as config:
        now = run_json(config, capsys, "report", "--json", "--today", DAY)
        assert not now["window"]["ended"] and now["targets"]["team"]["coverage"] is not None
        assert "coverage = today's open expected value ÷ target left" in now["targets"]["explain"]
        past = run_json(config, capsys, "report", "--json", "--today", DAY, "--since", "2026-04", "--until", "2026-06")
        assert past["targets"]["months"] == ["2026-04", "2026-05", "2026-06"]
        assert past["targets"]["team"]["coverage"] is None
        assert all(r["coverage"] is None for r in past["targets"]["reps"])
        assert past["window"]["ended"]
        assert any(r["remaining"] for r in past["targets"]["reps"]), "targets left unmet: coverage was given"
        capsys.readouterr()
        assert run(config, "report", "--today", DAY, "--since", "2026-04", "--until", "2026-06") == 0
        assert "no coverage: the period has ended" in " ".join(capsys.readouterr().out.split())
