"""One writer per board: the writer lock, undo finished by apply, and the guards on creates and on
a shrunken CRM export (issue 17 items 1, 7 and 12)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.local import LocalConnector
from tasksync.examples import TODAY, generate
from tasksync.model import PlanStatus
from tasksync.settings import load_settings
from tasksync.sync.lock import writer_lock_path
from tasksync.sync.state import StateStore
from test_service import SimClock, add_deal, new_service, settle

DAY = TODAY.isoformat()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo", cards=60)


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def state_path(config: Path) -> Path:
    settings = load_settings(config)
    return settings.path(settings.state_path)


def cards(config: Path) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    return list(data["cards"])


class OtherProcess:
    """Holds the writer lock through its own open file, as another process would."""

    def __init__(self, config: Path) -> None:
        self.path = writer_lock_path(state_path(config))

    def __enter__(self) -> OtherProcess:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.write(self.fd, b"pid 4242 (tasksync apply)\n")
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def test_a_second_writer_refuses_with_exit_7(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "0")
    assert run(demo, "plan", "--today", DAY) == 0
    before = (demo.parent / "board.json").read_bytes()
    capsys.readouterr()
    with OtherProcess(demo):
        for args in (["apply"], ["apply", "--now"], ["undo", "x"]):
            assert run(demo, *args) == 7
            err = capsys.readouterr().err
            assert "another tasksync process is writing" in err and "pid 4242" in err
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (demo.parent / "board.json").read_bytes() == before
    assert run(demo, "apply") == 0  # released: the next writer goes ahead


def test_the_in_flight_plan_of_a_live_writer_is_not_resumed(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one apply writes, a second `apply` (another thread here, another process in life)
    must not take its plan, in state `applying`, for an interrupted one and run it again."""
    monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "0")
    assert run(demo, "plan", "--today", DAY) == 0
    codes: list[int] = []
    real_write = LocalConnector.write

    def write_with_a_rival(self: LocalConnector, writes: Any) -> Iterator[Any]:
        for n, result in enumerate(real_write(self, writes)):
            if n == 3:
                rival = threading.Thread(target=lambda: codes.append(run(demo, "apply")))
                rival.start()
                rival.join()
            yield result

    monkeypatch.setattr(LocalConnector, "write", write_with_a_rival)
    assert run(demo, "apply") == 0
    assert codes == [7]
    with StateStore(state_path(demo)) as store:
        plans = store.plans()
        assert [p.status for p in plans] == [PlanStatus.APPLIED]
    monkeypatch.setattr(LocalConnector, "write", real_write)
    capsys.readouterr()
    assert run(demo, "plan", "--json", "--today", DAY) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["changes"] == []


def test_the_service_waits_for_a_cli_writer(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "0")
    clock = SimClock()
    svc = new_service(demo.parent, clock)
    before = (demo.parent / "board.json").read_bytes()
    with OtherProcess(demo):
        res = svc.run_once()
        assert res.error and "another tasksync process is writing" in res.error
        assert res.plan_id is None
    assert (demo.parent / "board.json").read_bytes() == before
    settle(svc, clock)
    assert (demo.parent / "board.json").read_bytes() != before
    svc.close()


def test_four_processes_on_one_board_leave_nothing_unwritten(demo: Path) -> None:
    env = {**os.environ, "TASKSYNC_LOCK_WAIT": "120", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "tasksync.cli", "--no-color", "-c", str(demo), "apply", "--now"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    results = [(p.wait(timeout=600), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], results
    markers = [c["desc"] for c in cards(demo) if "[tasksync:" in c["desc"]]
    assert len(markers) == len(set(markers))  # no card created twice
    with StateStore(state_path(demo)) as store:
        writing = [p for p in store.plans() if p.changes + p.creates > 0]
        assert [p.status for p in writing] == [PlanStatus.APPLIED]  # the others found nothing left to do
    assert run(demo, "apply", "--now") == 0  # and nothing is left to do (empty plans are not stored)
    with StateStore(state_path(demo)) as store:
        assert [p.id for p in store.plans()] == [p.id for p in writing]


def test_undo_interrupted_then_finished_by_apply(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = {c["id"]: (c["idMembers"], c["idList"]) for c in cards(demo)}
    capsys.readouterr()
    assert run(demo, "plan", "--json", "--today", DAY) == 0
    plan_id = json.loads(capsys.readouterr().out)["plan"]["id"]
    assert run(demo, "apply") == 0
    real_write = LocalConnector.write

    def dying_write(self: LocalConnector, writes: Any) -> Iterator[Any]:
        for n, result in enumerate(real_write(self, writes)):
            if n == 5:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(LocalConnector, "write", dying_write)
    assert run(demo, "undo", plan_id) == 130
    monkeypatch.setattr(LocalConnector, "write", real_write)
    with StateStore(state_path(demo)) as store:
        assert store.plan_status(plan_id) is PlanStatus.APPLIED
    capsys.readouterr()
    assert run(demo, "apply") == 0
    assert "Finished interrupted plan" in capsys.readouterr().out
    with StateStore(state_path(demo)) as store:
        assert store.plan_status(plan_id) is PlanStatus.UNDONE
        undo = next(p for p in store.plans() if p.kind == "undo")
        assert undo.status is PlanStatus.APPLIED
    now = {c["id"]: (c["idMembers"], c["idList"]) for c in cards(demo) if c["id"] in original}
    assert now == original
    capsys.readouterr()
    assert run(demo, "undo", plan_id) == 4  # already undone: refused, nothing printed as "changed"
    captured = capsys.readouterr()
    assert "is undone" in captured.err and "changed after the plan" not in captured.out


def shrink_deals(folder: Path, keep: int) -> None:
    path = folder / "crm" / "deals.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[: keep + 1]) + "\n", encoding="utf-8")


def test_apply_now_refuses_a_shrunken_export(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo, "apply", "--now") == 0
    assert len(list(csv.DictReader((demo.parent / "crm" / "deals.csv").open(encoding="utf-8")))) > 40
    shrink_deals(demo.parent, 10)
    before = (demo.parent / "board.json").read_bytes()
    capsys.readouterr()
    assert run(demo, "apply", "--now") == 5
    err = capsys.readouterr().err
    assert "deals" in err and "--accept-crm" in err and "Traceback" not in err
    assert (demo.parent / "board.json").read_bytes() == before
    assert run(demo, "apply", "--now", "--accept-crm") == 0
    assert run(demo, "apply", "--now") == 0  # the new counts are the baseline


def test_the_service_pauses_before_creating_too_many_cards(demo: Path) -> None:
    folder = demo.parent
    clock = SimClock()
    svc = new_service(folder, clock)
    settle(svc, clock)
    before = len(cards(demo))
    for n in range(40):
        add_deal(folder, f"NEW{n:03d}", stage="Lead")
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.paused and "max_create_share" in res.paused and "40 cards" in res.paused
    assert len(cards(demo)) == before
    svc.close()


def test_apply_while_serve_writes_does_not_run_the_service_plan_again(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 1: `apply` during the service's apply took the service's plan (applying) for
    an interrupted one and wrote it a second time (duplicated cards)."""
    monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "0")
    folder = demo.parent
    codes: list[int] = []

    class ServiceBoard(LocalConnector):
        def write(self, writes: Any) -> Iterator[Any]:
            for n, result in enumerate(super().write(writes)):
                if n == 2 and not codes:
                    rival = threading.Thread(target=lambda: codes.append(run(demo, "apply")))
                    rival.start()
                    rival.join()
                yield result

    clock = SimClock()
    svc = new_service(folder, clock, connector=ServiceBoard(load_settings(demo)))
    res = svc.run_once()
    assert res.error is None and res.plan_id and codes == [7]
    markers = [c["desc"] for c in cards(demo) if "[tasksync:" in c["desc"]]
    assert markers and len(markers) == len(set(markers))
    with StateStore(state_path(demo)) as store:
        assert store.plan_status(res.plan_id) is PlanStatus.APPLIED
        assert len(store.journal(res.plan_id)) == res.applied + res.created
    svc.close()
