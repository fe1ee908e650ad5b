"""The HTML report in a real browser: headless Chromium loads the file, the page's own check
(run on ``load``) records how many charts were laid out with a size and how many bars were drawn,
``--dump-dom`` returns that, Chromium's log must show no console message, and a screenshot is kept.

Needs the Debian package ``chromium``; skipped when it is not installed. Screenshots go to
``$TASKSYNC_ARTIFACTS`` when set (CI keeps them), else to pytest's tmp path; the path is printed.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.examples import generate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium not installed (apt-get install -y chromium); browser test skipped"
    ),
]

DAY = "2026-03-02"
EVIL = '<img src=x onerror="alert(1)"></script><script>alert(2)</script>'


def chromium(url: str, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``url``; return stdout and the console lines of its log."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--window-size=1280,2000",
        *extra,
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def render_check(dom: str) -> dict[str, str]:
    m = re.search(r'<div id="render-check"([^>]*)>', dom)
    assert m, "the page's render check did not run"
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1))}


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture
def plan_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, Any]]:
    generate(tmp_path / "ex")
    config = tmp_path / "ex" / "tasksync.toml"
    capsys.readouterr()
    assert main(["-c", str(config), "plan", "--json", "--today", DAY]) == 0
    first = json.loads(capsys.readouterr().out)
    card_id = next(c["task_id"] for c in first["changes"] if c["field"] == "assignees")
    board_path = tmp_path / "ex" / "board.json"
    board = json.loads(board_path.read_text(encoding="utf-8"))
    next(c for c in board["cards"] if c["id"] == card_id)["name"] = EVIL  # user text must stay text
    board_path.write_text(json.dumps(board), encoding="utf-8")
    page = tmp_path / "plan.html"
    assert main(["-c", str(config), "plan", "--json", "--html", str(page), "--today", DAY]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return page, data


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TASKSYNC_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_charts_render_in_chromium(plan_page: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    page, data = plan_page
    dom, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console == [], console
    check = render_check(dom)
    assert check.get("done") == "yes"
    assert json.loads(check["errors"]) == []
    assert int(check["charts"]) == 7
    assert int(check["sized"]) == 7, check  # every chart laid out wider than 100px and taller than 40px
    # bars with a width: workload and EV (2 per rep, minus zero-width ones), segments, tiers, conversion...
    assert int(check["bars"]) > 4 * len(data["reps"]), check
    sizes = re.findall(r'<svg class="chart"[^>]*data-rendered="(\d+)x(\d+)"', dom)
    assert len(sizes) == 7 and all(int(w) > 400 and int(h) > 100 for w, h in sizes), sizes
    # the hostile card title stayed text: no element was created from it
    assert any(c["title"] == EVIL for c in data["changes"])
    assert "<img" not in dom and "<script>alert" not in dom
    assert "&lt;img src=x onerror=" in dom  # shown as text in the changes table
    assert sum(1 for _ in re.finditer(r"<tr data-reps=", dom)) == len(data["changes"])

    shot = artifacts(tmp_path) / "report-plan.png"
    chromium(page.as_uri(), tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 50_000
    assert png_size(shot) == (1280, 2000)
    print(f"\nscreenshot of the plan report: {shot}")


def test_report_page_renders_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = generate(tmp_path / "ex")
    page = tmp_path / "report.html"
    assert main(["-c", str(config), "report", "--html", str(page), "--today", DAY]) == 0
    dom, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console == [], console
    check = render_check(dom)
    assert check.get("done") == "yes" and json.loads(check["errors"]) == []
    assert int(check["charts"]) == 7 and int(check["sized"]) == 7, check
    shot = artifacts(tmp_path) / "report-kpis.png"
    chromium(page.as_uri(), tmp_path / "profile2", f"--screenshot={shot}")
    assert png_size(shot) == (1280, 2000)
    pdf = artifacts(tmp_path) / "report-kpis.pdf"
    chromium(page.as_uri(), tmp_path / "profile3", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF") and 1 <= len(re.findall(rb"/Type\s*/Page[^s]", body)) <= 6
    print(f"\nscreenshot of the KPI report: {shot}; printed: {pdf}")


def test_filters_from_the_address_hide_rows(plan_page: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    page, data = plan_page
    rep = next(r["name"] for r in data["reps"] if not r["available"])
    kind = "rep away"
    wanted = [c for c in data["changes"] if rep in c["reps"] and c["reason_kind"] == kind]
    assert wanted
    url = page.as_uri() + "#" + "rep=" + rep.replace(" ", "%20") + "&reason=" + kind.replace(" ", "%20")
    dom, console = chromium(url, tmp_path / "profile", "--dump-dom")
    assert console == [], console
    rows = re.findall(r"<tr data-reps=[^>]*>", dom)
    shown = [r for r in rows if " hidden" not in r]
    assert len(rows) == len(data["changes"])
    assert len(shown) == len(wanted)
    assert re.search(rf'<span id="shown">{len(wanted)}</span>', dom)


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    """The harness itself: a page with a script error is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script></body></html>")
    _, console = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in console) and any("nope" in line for line in console)
