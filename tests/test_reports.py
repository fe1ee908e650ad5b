"""Reports: the shared JSON schema, the HTML page built from it, and the terminal views."""

from __future__ import annotations

import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tasksync.cli import main
from tasksync.examples import generate
from tasksync.policies import ReasonKind
from tasksync.render import SCHEMA, apply_progress, plan_json, print_plan, print_report, reason_kind
from tasksync.report_html import embedded_data, render_html
from tasksync.settings import load_settings
from tasksync.sync.workspace import Workspace

DAY = "2026-03-02"
EVIL = '<img src=x onerror="alert(1)"></script><script>alert(2)</script> & \u2028 "Ünïcode"'


@pytest.fixture
def example(tmp_path: Path) -> Path:
    generate(tmp_path / "ex")
    return tmp_path / "ex" / "tasksync.toml"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(list(argv)) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_plan_json_equals_the_data_embedded_in_the_html(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "out" / "plan.html"
    data = run_json(capsys, "-c", str(example), "plan", "--json", "--html", str(page), "--today", DAY)
    assert data["schema"] == SCHEMA and data["kind"] == "plan"
    assert embedded_data(page.read_text(encoding="utf-8")) == data
    # the old keys scripts rely on are still there
    assert {"plan", "reps", "kpis_before", "kpis_after"} <= data.keys()
    assert data["plan"]["changes"]


def test_report_json_equals_the_data_embedded_in_the_html(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    data = run_json(capsys, "-c", str(example), "report", "--json", "--html", str(page), "--today", DAY)
    assert data["schema"] == SCHEMA and data["kind"] == "report" and data["plan"] is None
    assert embedded_data(page.read_text(encoding="utf-8")) == data
    assert data["changes"] == []
    assert all(r["before"] == r["after"] and r["gained"] == r["lost"] == 0 for r in data["reps"])
    assert data["kpis_before"] == data["kpis_after"]
    # KPI fields are on the rep rows, as `report --json` always had them
    for r in data["reps"]:
        assert {"open_tasks", "pipeline", "expected_value", "conversion", "won_by_month"} <= r.keys()
    assert len(data["months"]) == 6


def test_plan_data_adds_up(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "-c", str(example), "plan", "--json", "--today", DAY)
    plan = data["plan"]
    reps = data["reps"]
    board = json.loads((example.parent / "board.json").read_text(encoding="utf-8"))
    open_cards = [c for c in board["cards"] if not c["closed"]]
    for r in reps:
        assert r["after"] - r["before"] == r["gained"] - r["lost"], r["name"]
        assert sum(r["segments"].values()) == r["after"], r["name"]
        assert sum(r["priorities"].values()) == r["after"], r["name"]
    away = [r for r in reps if not r["available"]]
    assert away and all(r["after"] == 0 and r["lost"] == r["before"] for r in away)
    avail = [r["after"] for r in reps if r["available"]]
    band = data["band"]
    assert band["ratio"] == 0.10 and band["value_ratio"] == 0.20
    assert band["workload"]["mean"] == pytest.approx(sum(avail) / len(avail), abs=1e-3)
    # whole cards: the ±10% band rounded inwards, as the policy keeps it
    assert band["workload"]["upper"] == math.floor(band["workload"]["mean"] * 1.1 + 1e-9)
    prios = data["priorities"]
    assert prios["tiers"][:4] == ["P1", "P2", "P3", "P4"] and prios["tiers"][-1] == "(none)"
    assert sum(prios["before"].values()) == len(open_cards)
    assert sum(prios["after"].values()) == len(open_cards) + len(plan["creates"])
    n_prio = sum(1 for c in plan["changes"] if c["field"] == "priority")
    moved = sum(abs(prios["after"][t] - prios["before"][t]) for t in prios["tiers"])
    assert 0 < moved <= 2 * n_prio + len(plan["creates"])
    assert len(data["changes"]) == len(plan["changes"]) + len(plan["creates"])
    assert {c["reason_kind"] for c in data["changes"]} <= {k.value for k in ReasonKind}
    names = {r["name"] for r in reps}
    for c in data["changes"]:
        assert set(c["reps"]) <= names
        if c["field"] == "assignees":
            assert c["after"] in c["reps"] or c["after"] == "(nobody)"
    before = {r["rep_id"]: r for r in data["kpis_before"]["reps"]}
    after = {r["rep_id"]: r for r in data["kpis_after"]["reps"]}
    for r in reps:
        assert r["expected_value_before"] == before[r["rep_id"]]["expected_value"]
        assert r["expected_value"] == after[r["rep_id"]]["expected_value"]
    assert any(r["expected_value_before"] != r["expected_value"] for r in reps)


def test_reason_kind_is_the_policys_kind_not_a_phrase() -> None:
    assert reason_kind("above the band", "Ben Brooks above the band (44 open cards, band 30–34)") == "above the band"
    assert reason_kind("", "a reason from a plan saved before reasons had kinds") == "other"
    assert reason_kind("", "") == "(no reason)"


def _rename_card(config: Path, card_id: str, title: str) -> None:
    path = config.parent / "board.json"
    board = json.loads(path.read_text(encoding="utf-8"))
    next(c for c in board["cards"] if c["id"] == card_id)["name"] = title
    path.write_text(json.dumps(board), encoding="utf-8")


def test_html_escapes_card_titles(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "-c", str(example), "plan", "--json", "--today", DAY)
    card_id = next(c["task_id"] for c in first["changes"] if c["field"] == "assignees")
    _rename_card(example, card_id, EVIL)
    page_path = tmp_path / "plan.html"
    data = run_json(capsys, "-c", str(example), "plan", "--json", "--html", str(page_path), "--today", DAY)
    assert any(c["task_id"] == card_id and c["title"] == EVIL for c in data["changes"])
    page = page_path.read_text(encoding="utf-8")
    assert "<img" not in page and "alert(2)</script>" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page  # shown, as text, in the table
    # exactly our two scripts, and the JSON one cannot be closed early
    assert len(re.findall(r"<script\b", page)) == 2 and page.count("</script>") == 2
    assert embedded_data(page) == data


def test_html_has_every_chart_and_the_filters(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "-c", str(example), "plan", "--json", "--today", DAY)
    page = render_html(data)
    for heading in (
        "Workload per rep",
        "Expected value per rep",
        "Segment mix per rep",
        "Priority distribution",
        "Conversion rate per rep",
        "Won value per month",
        "Changes",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert page.count('<svg class="chart"') == 7
    assert 'class="band"' in page and "@media print" in page
    assert 'id="f-rep"' in page and 'id="f-kind"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert page.count('<tr data-reps="') == len(data["changes"])
    for name in {n for c in data["changes"] for n in c["reps"]}:
        assert f'<option value="{html.escape(name)}">' in page


def test_report_html_without_plan(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "r.html"
    assert main(["-c", str(example), "report", "--html", str(page), "--today", DAY]) == 0
    out = capsys.readouterr().out
    assert "Wrote the report to" in out and "KPIs per rep" in out and "Workload per rep" in out
    text = page.read_text(encoding="utf-8")
    assert "<h2>Won value per month</h2>" in text and 'id="changes"' not in text


def _result(config: Path) -> Any:
    ws = Workspace(load_settings(config))
    return ws, ws.plan(save=False)


def test_terminal_plain_is_ascii_with_band_markers(example: Path) -> None:
    ws, result = _result(example)
    with ws:
        buf = io.StringIO()
        print_plan(result, Console(file=buf, width=140, force_terminal=False), settings=ws.settings)
    out = buf.getvalue()
    assert "Workload per rep" in out and "Priority tiers" in out and "owner changes" in out
    assert "█" not in out and "░" not in out and "\x1b[" not in out
    data = plan_json(result, ws.settings)
    band = data["band"]["workload"]
    assert f"{band['lower']:.0f}–{band['upper']:.0f}" in out
    # each available rep's "after" bar shows the band brackets
    lines = [ln for ln in out.splitlines() if "[" in ln and "]" in ln and "#" in ln]
    assert len(lines) >= sum(1 for r in data["reps"] if r["available"])


def test_terminal_rich_has_bars_and_colour(example: Path) -> None:
    ws, result = _result(example)
    with ws:
        buf = io.StringIO()
        console = Console(file=buf, width=140, force_terminal=True, color_system="truecolor")
        print_plan(result, console, settings=ws.settings)
        print_report(plan_json(result, ws.settings), console)
    out = buf.getvalue()
    assert "█" in out and "░" in out and "\x1b[" in out
    assert "KPIs per rep" in out and any(ch in out for ch in "▁▂▃▄▅▆▇")


def test_no_color_gives_plain_output(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-color", "-c", str(example), "plan", "--today", DAY]) == 0
    out = capsys.readouterr().out
    assert "owner changes" in out and "Workload per rep" in out
    assert "\x1b[" not in out and "█" not in out and "░" not in out
    assert "Band [ ]" in out


def test_apply_progress_plain_reports_rate_and_eta() -> None:
    buf = io.StringIO()
    with apply_progress(Console(file=buf, force_terminal=False), "Writing") as cb:
        for i in range(1, 101):
            cb(i, 100)
    lines = buf.getvalue().splitlines()
    assert 10 <= len(lines) <= 12
    assert lines[-1].startswith("Writing: 100/100 (100%)") and "/s" in lines[-1] and "ETA" in lines[-1]


def test_apply_progress_rich_bar() -> None:
    buf = io.StringIO()
    with apply_progress(Console(file=buf, force_terminal=True, width=120), "Writing") as cb:
        for i in range(1, 51):
            cb(i, 50)
    out = buf.getvalue()
    assert "50/50" in out and "/s" in out and "ETA" in out and "100%" in out


def test_apply_shows_progress(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(example), "plan", "--today", DAY]) == 0
    capsys.readouterr()
    assert main(["-c", str(example), "apply"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Writing: (\d+)/\1 \(100%\)", out), out[-500:]
    assert "Applied plan" in out
