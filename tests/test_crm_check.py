"""`tasksync crm check`: how exports are read, every problem, and the exit code."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tasksync.crm import check
from tasksync.examples import generate


def run(argv: list[str]) -> int:
    """The way the main CLI wires the command: a global -c, then ``args.func(args)``."""
    parser = argparse.ArgumentParser(prog="tasksync")
    parser.add_argument("-c", "--config", default="tasksync.toml")
    sub = parser.add_subparsers(dest="command", required=True)
    check.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    generate(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_shows_mapping_types_encoding_and_counts(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["crm", "check", "crm/deals.csv"]) == 0
    out = capsys.readouterr().out
    assert "crm/deals.csv: deals, delimited text" in out
    assert "encoding utf-8 (valid UTF-8); delimiter comma (sniffed)" in out
    assert "preset: generic" in out
    assert "Close Date  close_date        date" in out
    assert "Owner       owner             rep (id, email or name)" in out
    assert "owners checked against" in out and "(12 reps)" in out
    assert "rows: 336 read, 336 usable, 0 unreadable, 0 left out" in out
    assert "OK: 336 of 336 rows usable" in out


def test_check_lists_every_problem_and_fails_on_a_rejected_file(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = demo / "hubspot.csv"
    bad.write_text(
        "Record ID,Deal Name,Deal Stage,Amount,Close Date,Deal owner,Pipeline\n"
        "1,A,Qualified,lots,2024-01-05,Ana Alvarez,Sales\n"
        "2,B,Qualified,10,never,Nobody,Sales\n"
        "3,C,Qualified,10,2024-01-05,Nobody Else,Sales\n",
        encoding="utf-8-sig",
    )
    assert run(["crm", "check", str(bad), "--kind", "deals"]) == 3
    out = capsys.readouterr().out
    assert "preset: hubspot (best header match" in out
    assert f"{bad}:2:Amount: expected an amount like 1234.50, found 'lots'" in out
    assert f"{bad}:3:Close Date: expected a date like 2024-01-31, found 'never'" in out
    assert (
        f"{bad}:4:Deal owner: 1 of 1 rows name an owner who matches no rep in reps.csv (by id, name or "
        "email), so they count for nobody: 'Nobody Else' (1 row, first on line 4)"
    ) in out
    assert "REJECTED" in out and "2 of 3 rows cannot be read" in out
    assert "Pipeline" in out and "not used" in out


def test_check_with_a_config_threshold_accepts_skipped_rows(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = demo / "deals2.csv"
    bad.write_text(
        "Deal ID,Deal Name,Stage,Amount\nD1,A,Lead,x\n" + "".join(f"D{i},N,Lead,{i}\n" for i in range(2, 12)),
        encoding="utf-8",
    )
    cfg = demo / "strict.toml"
    cfg.write_text('[crm]\nfolder = "crm"\nmax_bad_rows = 0.2\n', encoding="utf-8")
    assert run(["-c", str(cfg), "crm", "check", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "OK: 10 of 11 rows usable; 1 skipped as unreadable (allowed: 20%)" in out
    assert run(["crm", "check", str(bad), "-c", str(cfg), "--preset", "sap"]) == 2
    assert "unknown preset 'sap'" in capsys.readouterr().err


def test_check_guesses_the_kind_and_reads_xlsx(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("客户")
    ws.append(["客户编号", "客户名称", "行业", "负责人"])
    ws.append(["C1", "华为", "制造", "Ana Alvarez"])
    path = demo / "export_2024.xlsx"
    wb.save(path)
    # Read together, the reps' sectors match none of this one account's: not OK (exit 3).
    assert run(["crm", "check", str(path), "crm/reps.csv"]) == 3
    out = capsys.readouterr().out
    assert f"{path}: accounts, XLSX workbook" in out
    assert "sheet '客户'" in out
    assert "crm/reps.csv: reps" in out
    assert "match no account's sector in export_2024.xlsx" in out and "12 of 12 reps get no sector fit" in out
    assert "NOT OK (1 problem)" in out and "2 file(s): 1 usable, 1 not; 1 problem(s) in all" in out


def test_check_on_unreadable_or_missing_files(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (demo / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    assert run(["crm", "check", "old.xls", "nope.csv", "crm/reps.csv"]) == 3
    out = capsys.readouterr().out
    assert "old.xls: cannot be used" in out and "Excel 97-2003" in out
    assert "nope.csv: cannot be used" in out and "not found" in out
    assert "crm/reps.csv: reps" in out  # the other files are still checked


def test_check_without_config_uses_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "商机.csv"
    path.write_bytes(
        "商机编号,商机名称,商机阶段,商机金额,负责人\nS1,项目,赢单,100,张三\nS2,项目2,初步接洽,¥abc,张三\n".encode(
            "gb18030"
        )
    )
    assert run(["crm", "check", str(path)]) == 3
    out = capsys.readouterr().out
    assert "deals, delimited text" in out and "encoding gb18030" in out
    assert "preset: fxiaoke" in out
    assert f"{path}:3:商机金额: expected an amount like 1234.50, found '¥abc'" in out
    assert "1 deal(s) already won or lost left out of open deals" in out
    assert "owners not checked against reps (no reps export found" in out
    assert "rep (not checked: no reps export)" in out


def test_bad_config_is_reported_not_raised(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = demo / "bad.toml"
    cfg.write_text("[crm]\nmax_bad_rows = 'lots'\n", encoding="utf-8")
    assert run(["-c", str(cfg), "crm", "check", "crm/deals.csv"]) == 2
    assert "max_bad_rows" in capsys.readouterr().err


def test_standalone_module_entry_point(demo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tasksync.crm.check", "crm", "check", "crm/history.csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "history" in proc.stdout and "OK: 900 of 900 rows usable" in proc.stdout


def test_through_the_main_cli(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tasksync.cli import main

    assert main(["crm", "check", "crm/accounts.csv", "--kind", "accounts"]) == 0
    assert "OK: 160 of 160 rows usable" in capsys.readouterr().out
    assert main(["--no-color", "crm", "check", "nope.csv"]) == 2
