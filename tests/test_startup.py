"""A lean pipeline (issue 13, item 6): what each command imports and computes, counted (the
timings are in bench/bench_pipeline.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.examples import TODAY, generate

DAY = TODAY.isoformat()
HEAVY = ("rich", "pydantic", "pydantic_settings", "tasksync.crm.load", "tasksync.service.loop", "scipy", "numpy")


def imported_by(*argv: str, cwd: Path) -> tuple[int, set[str]]:
    """Run the CLI in a fresh interpreter; the heavy modules it imported."""
    code = (
        "import json, sys\nfrom tasksync.cli import main\n"
        "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        f"print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    rc, mods = json.loads(out.strip().splitlines()[-1])
    return int(rc or 0), set(mods)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo")


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    rc, mods = imported_by("--help", cwd=tmp_path)
    assert rc == 0 and not mods, mods


def test_status_imports_nothing_heavy(demo: Path) -> None:
    assert main(["-c", str(demo), "serve", "--once", "--today", DAY]) in (0, 4)
    rc, mods = imported_by("-c", str(demo), "status", cwd=demo.parent)
    assert rc in (0, 3) and not mods, mods


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "plan", "apply", "undo", "report", "history", "crm", "serve", "status"):
        assert command in out


def test_idle_serve_iteration_does_not_import_the_solver(demo: Path) -> None:
    """Board and exports unchanged since the last iteration: nothing is planned, scipy never loads."""
    board = demo.parent / "board.json"
    for _ in range(5):  # iterate until one leaves the board as it was (scheduled mode may take two rounds)
        before = board.read_bytes()
        assert main(["-c", str(demo), "serve", "--once", "--today", DAY]) in (0, 4)
        if board.read_bytes() == before:
            break
    else:
        raise AssertionError("the service did not settle in five iterations")
    rc, mods = imported_by("-c", str(demo), "serve", "--once", "--today", DAY, cwd=demo.parent)
    assert rc == 0
    assert "scipy" not in mods and "tasksync.service.loop" in mods


def test_plan_builds_its_json_once_and_fits_the_win_model_once(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tasksync.render as render
    from tasksync.policies.scoring import WinModel

    counts = {"plan_json": 0, "fit": 0}
    real_plan_json, real_fit = render.plan_json, WinModel.fit.__func__  # type: ignore[attr-defined]

    def plan_json(*a: Any, **k: Any) -> Any:
        counts["plan_json"] += 1
        return real_plan_json(*a, **k)

    def fit(cls: type[WinModel], *a: Any, **k: Any) -> WinModel:
        counts["fit"] += 1
        return real_fit(cls, *a, **k)  # type: ignore[no-any-return]

    monkeypatch.setattr(render, "plan_json", plan_json)
    monkeypatch.setattr(WinModel, "fit", classmethod(fit))
    for extra in ((), ("--json",), ("--html", str(demo.parent / "plan.html"))):
        counts.update(plan_json=0, fit=0)
        assert main(["--no-color", "-c", str(demo), "plan", "--today", DAY, *extra]) == 0
        assert counts == {"plan_json": 1, "fit": 1}, (extra, counts)
    capsys.readouterr()


def test_status_is_one_line_for_a_locked_or_damaged_store(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A health check run from cron: a store held by another process or damaged gives one line
    naming the store and exit 1 (unhealthy), never a traceback; status writes nothing to it."""
    import sqlite3

    assert main(["-c", str(demo), "serve", "--once", "--today", DAY]) in (0, 4)
    state = demo.parent / ".tasksync" / "state.sqlite3"
    capsys.readouterr()
    holder = sqlite3.connect(state, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("SELECT count(*) FROM kv").fetchall()
        assert main(["-c", str(demo), "status"]) == 1
    finally:
        holder.close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "state.sqlite3" in err and "locked" in err, err
    assert main(["-c", str(demo), "status"]) in (0, 3, 4)  # released: readable again
    capsys.readouterr()
    for suffix in ("-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    state.write_bytes(b"not a database " * 100)
    before = state.read_bytes()
    assert main(["-c", str(demo), "status"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "state.sqlite3" in err and "not a database" in err, err
    assert state.read_bytes() == before
