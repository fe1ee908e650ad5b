"""The fault matrix, short version (the long one is ``bench/bench_faults.py``): kill -9 at a
journal step, an answer lost after the write landed, a full disk and a locked state store. Each
must end with 0 lost, 0 duplicated and 0 false conflicts, and fail with one line and its
documented exit code."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.local import LocalConnector
from tasksync.examples import TODAY, generate
from tasksync.model import JournalStatus, PlanStatus, Snapshot, WriteResult, WriteStatus
from tasksync.settings import load_settings
from tasksync.sync.state import StateStore
from tasksync.sync.workspace import Workspace
from tasksync.testing.boards import LostAnswers
from test_engine_fakes import BACKENDS, end_state, trello_fake_board

DAY = TODAY.isoformat()
SRC = str(Path(__file__).parents[1] / "src")


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def run_faulty(config: Path, *fault: str, command: str = "apply") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    cli = ["--no-color", "-c", str(config), *command.split()]
    cmd = [sys.executable, "-m", "tasksync.testing.faults", *fault, "--", *cli]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def snapshot_of(config: Path) -> Snapshot:
    return LocalConnector(load_settings(config)).read()


def plan_of(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(config, "plan", "--json", "--today", DAY) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)["plan"]
    return data


def assert_whole(config: Path, expected: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]) -> None:
    """0 lost (the board equals the uninterrupted run), 0 duplicated (one card per marker), 0 false
    conflicts (the next plan is empty and reports none)."""
    assert end_state(snapshot_of(config)) == expected
    descs = [t.description for t in snapshot_of(config).tasks if "[tasksync:" in t.description]
    assert len(descs) == len(set(descs))
    again = plan_of(config, capsys)
    assert again["changes"] == [] and again["creates"] == [] and again["conflicts"] == []


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[Any, ...]], int]:
    """A planned example board (template) and the end state of applying it without faults."""
    root = tmp_path_factory.mktemp("faults")
    config = generate(root / "template", cards=40)
    assert run(config, "plan", "--today", DAY) == 0
    clean = root / "clean"
    shutil.copytree(config.parent, clean)
    assert run(clean / "tasksync.toml", "apply") == 0
    with StateStore(clean / ".tasksync" / "state.sqlite3") as store:
        plan_id = store.plans()[0].id
        steps = len({(r.task_id if r.op == "change" else r.key) for r in store.journal(plan_id)})
    return config, end_state(snapshot_of(clean / "tasksync.toml")), steps


def copy_of(template: Path, dest: Path) -> Path:
    shutil.copytree(template.parent, dest)
    return dest / "tasksync.toml"


@pytest.mark.parametrize("where", ["first", "middle", "last change", "first create", "last"])
def test_kill_9_at_a_journal_step_resumes_whole(
    twins: tuple[Path, list[tuple[Any, ...]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    template, expected, steps = twins
    with StateStore(template.parent / ".tasksync" / "state.sqlite3") as store:
        plan, _ = store.load_plan(store.plans()[0].id)
    writes, creates = len(plan.writes()), len(plan.creates)
    assert writes and creates and steps == writes + creates
    step = {"first": 1, "middle": steps // 2, "last change": writes, "first create": writes + 1, "last": steps}[where]
    config = copy_of(template, tmp_path / "b")
    killed = run_faulty(config, "--kill-at", str(step))
    assert killed.returncode == -9, killed.stderr
    capsys.readouterr()
    assert run(config, "apply") == 0
    assert "Finished interrupted plan" in capsys.readouterr().out
    assert_whole(config, expected, capsys)


def test_disk_full_mid_apply_is_one_line_and_resumes(
    twins: tuple[Path, list[tuple[Any, ...]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template, expected, _ = twins
    config = copy_of(template, tmp_path / "b")
    full = run_faulty(config, "--disk-full-at", "2")
    assert full.returncode == 1, full.stderr
    err = full.stderr.strip()
    assert "cannot save the board" in err and "No space left" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    capsys.readouterr()
    assert run(config, "apply") == 0
    assert_whole(config, expected, capsys)


def test_a_locked_state_store_is_one_line_exit_7(
    twins: tuple[Path, list[tuple[Any, ...]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    template, expected, _ = twins
    config = copy_of(template, tmp_path / "b")
    before = (config.parent / "board.json").read_bytes()
    monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "0.2")
    holder = sqlite3.connect(config.parent / ".tasksync" / "state.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        capsys.readouterr()
        assert run(config, "apply") == 7
        err = capsys.readouterr().err.strip()
        assert "state store stayed locked" in err and len(err.splitlines()) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (config.parent / "board.json").read_bytes() == before
    assert run(config, "apply") == 0
    assert_whole(config, expected, capsys)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_lost_answer_is_not_a_person(tmp_path: Path, backend: str) -> None:
    """Writes and creates that landed but were reported UNKNOWN: settled at the next read as
    tasksync's own, never a conflict; creates finished by the next writer, never duplicated."""
    with ExitStack() as stack:
        s1, connect1 = BACKENDS[backend](stack, tmp_path / "clean")
        s2, connect2 = BACKENDS[backend](stack, tmp_path / "lossy")
        with Workspace(s1, connect1(), today=TODAY) as ws:
            ws.plan()
            ws.apply()
            expected = end_state(ws.connector.read())
        with Workspace(s2, LostAnswers(connect2()), today=TODAY) as ws:  # type: ignore[arg-type]
            ws.plan()
            _, outcome = ws.apply()
            assert outcome.unknown and not outcome.ok
        with Workspace(s2, connect2(), today=TODAY) as ws:
            again = ws.plan()
            assert again.plan.conflicts == [] and again.plan.creates == []
            resumed = ws.pending_resume()  # the creates whose answer was lost
            assert resumed is not None
            assert end_state(ws.connector.read()) == expected
            final = ws.plan()
            assert final.plan.empty and final.plan.conflicts == []
            plan_id = ws.store.plans()[-1].id
            statuses = {r.status for r in ws.store.journal(plan_id)}
            assert JournalStatus.UNKNOWN not in statuses and JournalStatus.PENDING not in statuses


def test_trello_answer_dropped_after_the_put_landed(tmp_path: Path) -> None:
    """The fake Trello applies a PUT, then drops the connection, on every attempt: the write landed
    though the connector could not say so. The next plan takes the value for tasksync's own."""
    with ExitStack() as stack:
        s, connect, fake = trello_fake_board(stack, tmp_path / "t", attempts=2)
        with Workspace(s, connect(), today=TODAY) as ws:
            plan = ws.plan().plan
            target = plan.changes[0].task_id
            fake.fail_next("PUT", f"/cards/{target}", "drop_after", times=50)
            _, outcome = ws.apply()
            assert not outcome.ok
            again = ws.plan().plan
            assert again.conflicts == [] and again.empty
            assert not any(c.task_id == target for c in again.conflicts)


def test_cli_reports_lost_answers_and_the_next_plan_has_no_false_conflicts(
    twins: tuple[Path, list[tuple[Any, ...]], int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template, expected, _ = twins
    config = copy_of(template, tmp_path / "b")
    real_write = LocalConnector.write

    def unanswered(self: LocalConnector, writes: Any) -> Iterator[WriteResult]:
        for n, r in enumerate(real_write(self, writes)):
            yield WriteResult(r.task_id, False, "no answer", status=WriteStatus.UNKNOWN) if n % 2 == 0 else r

    monkeypatch.setattr(LocalConnector, "write", unanswered)
    capsys.readouterr()
    assert run(config, "apply") == 1
    out = capsys.readouterr().out
    assert "without an answer" in out and "no answer" in out
    monkeypatch.setattr(LocalConnector, "write", real_write)
    assert_whole(config, expected, capsys)


def test_kill_9_during_an_undo_is_finished_by_apply(
    twins: tuple[Path, list[tuple[Any, ...]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17 item 12: the undo finished by the next `apply` leaves the plan undone, the board as
    before the plan, and a second undo is refused without false "changed after the plan" lines."""
    template, _, _ = twins
    before = end_state(snapshot_of(template))
    config = copy_of(template, tmp_path / "b")
    assert run(config, "apply") == 0
    with StateStore(config.parent / ".tasksync" / "state.sqlite3") as store:
        plan_id = store.plans()[0].id
    killed = run_faulty(config, "--kill-at", "7", command=f"undo {plan_id}")
    assert killed.returncode == -9, killed.stderr
    capsys.readouterr()
    assert run(config, "apply") == 0
    assert "Finished interrupted plan" in capsys.readouterr().out
    assert end_state(snapshot_of(config)) == before
    with StateStore(config.parent / ".tasksync" / "state.sqlite3") as store:
        assert store.plan_status(plan_id) is PlanStatus.UNDONE
    capsys.readouterr()
    assert run(config, "undo", plan_id) == 4
    captured = capsys.readouterr()
    assert "is undone" in captured.err and "changed after the plan" not in captured.out


def test_killed_right_after_post_cards_the_resume_completes_the_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 5: a run dying between `POST /cards` and the CRM ID/priority left a card the
    journal called done. The resume sends the create again: the card is found by its marker and
    completed, and only then journaled done; never a second card."""
    from tasksync.connectors.trello import TrelloConnector

    class Killed(BaseException):
        pass

    real_complete = TrelloConnector._complete

    def die_after_the_post(self: TrelloConnector, *args: Any, **kwargs: Any) -> None:
        raise Killed

    with ExitStack() as stack:
        s, connect, _ = trello_fake_board(stack, tmp_path / "t", attempts=2)
        with Workspace(s, connect(), today=TODAY) as ws:
            plan = ws.plan().plan
            first = plan.creates[0]
            monkeypatch.setattr(TrelloConnector, "_complete", die_after_the_post)
            with pytest.raises(Killed):
                ws.apply()
            monkeypatch.setattr(TrelloConnector, "_complete", real_complete)
        with Workspace(s, connect(), today=TODAY) as ws:
            resumed = ws.pending_resume()
            assert resumed is not None and resumed.ok
            snap = ws.connector.read()
            made = [t for t in snap.tasks if f"[tasksync:{first.key}]" in t.description]
            assert len(made) == 1
            card = made[0]
            assert card.priority == first.priority and first.priority
            assert first.key in card.custom_fields.values()  # the CRM ID field, not only the marker
            rows = [r for r in ws.store.journal(plan.id) if r.key == first.key]
            assert [r.status for r in rows] == [JournalStatus.DONE] and rows[0].task_id == card.id
            assert ws.plan().plan.empty
