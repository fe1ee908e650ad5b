"""The scheduled sync service against the local connector on copies of the demo, with simulated time."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors.local import LocalConnector
from tasksync.errors import TransientError
from tasksync.examples import TODAY, generate
from tasksync.model import NewTask, Snapshot, TaskWrite, WriteResult
from tasksync.service.lock import AlreadyRunning, ServiceLock, lock_path_for
from tasksync.service.logs import LOGGER_NAME, configure_logging, event
from tasksync.service.loop import PAUSED, IterationResult, SyncService, health_of, read_status
from tasksync.settings import Settings, load_settings

CARDS = 80
T0 = 1_800_000_000.0


class SimClock:
    """Simulated time: ``sleep`` advances the clock instantly."""

    def __init__(self, t: float = T0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def example(folder: Path) -> Path:
    """The built-in example (CARDS cards) in ``folder``, divided by the fast ``balanced`` policy:
    these tests check the service's loop (intervals, reads, writes, edits kept, outages, restarts),
    which every policy shares; the optimal policy's service runs are in test_engine_properties.py."""
    config = generate(folder, cards=CARDS)
    config.write_text(
        config.read_text(encoding="utf-8").replace('name = "optimal"', 'name = "balanced"'), encoding="utf-8"
    )
    return folder


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return example(tmp_path / "demo")


def settings_of(folder: Path) -> Settings:
    return load_settings(folder / "tasksync.toml")


def board(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "board.json").read_text(encoding="utf-8"))


def save_board(folder: Path, data: dict[str, Any]) -> None:
    (folder / "board.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def end_state(folder: Path) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """Every card by what a person sees: name, description, list, members, priority option."""
    data = board(folder)
    prio = next(f for f in data["customFields"] if f["name"] == "Priority")
    options = {o["id"]: o["value"]["text"] for o in prio["options"]}
    by_card = {
        i["idModel"]: options.get(i.get("idValue", ""), "")
        for i in data.get("customFieldItems", [])
        if i["idCustomField"] == prio["id"]
    }
    return sorted(
        (c["name"], c.get("desc", ""), c["idList"], tuple(sorted(c["idMembers"])), by_card.get(c["id"], ""))
        for c in data["cards"]
    )


def new_service(folder: Path, clock: SimClock, connector: Any = None) -> SyncService:
    return SyncService(settings_of(folder), connector=connector, clock=clock, sleep=clock.sleep, today=TODAY)


def settle(svc: SyncService, clock: SimClock, limit: int = 6) -> IterationResult:
    """Iterate until an iteration writes nothing."""
    for _ in range(limit):
        res = svc.run_once()
        assert res.error is None and res.paused is None, res
        if not res.plan_id:
            return res
        clock.sleep(res.delay)
    raise AssertionError("the service did not settle")


def rep_members(folder: Path) -> dict[str, str]:
    """Board member id -> availability ("yes"/"no") of the rep with that name."""
    reps = {r["Name"]: r["Available"] for r in csv.DictReader((folder / "crm" / "reps.csv").open())}
    out = {}
    for m in board(folder)["members"]:
        name = m["fullName"]
        if name in reps:
            out[m["id"]] = reps[name]
        elif m.get("username") == "kateoneil":
            out[m["id"]] = reps.get("Katherine O'Neil", "yes")
    return out


def add_deal(folder: Path, deal_id: str, stage: str = "Proposal") -> None:
    path = folder / "crm" / "deals.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    row = dict(rows[0])
    row.update({"Deal ID": deal_id, "Deal Name": f"New business {deal_id}", "Stage": stage, "Owner": ""})
    with path.open("a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(rows[0])).writerow(row)


def add_card(folder: Path, deal_id: str, members: Sequence[str] = ()) -> str:
    """A card for ``deal_id`` as a person would add it: in the Proposal list, linked by the CRM ID field."""
    data = board(folder)
    lst = next(lst for lst in data["lists"] if lst["name"] == "Proposal")
    link = next(f for f in data["customFields"] if f["name"] == "CRM ID")
    card_id = f"fe{len(data['cards']):022x}"
    data["cards"].append(
        {
            "id": card_id,
            "name": f"New business {deal_id}",
            "desc": "",
            "idBoard": data["id"],
            "idList": lst["id"],
            "idMembers": list(members),
            "idLabels": [],
            "due": None,
            "closed": False,
            "pos": 999999,
        }
    )
    data.setdefault("customFieldItems", []).append(
        {
            "id": f"ff{len(data['cards']):022x}",
            "idModel": card_id,
            "idCustomField": link["id"],
            "value": {"text": deal_id},
        }
    )
    save_board(folder, data)
    return card_id


def card(folder: Path, card_id: str) -> dict[str, Any]:
    return next(c for c in board(folder)["cards"] if c["id"] == card_id)


# ---------------------------------------------------------------------- scenarios
def test_new_card_is_assigned_within_one_interval(demo: Path) -> None:
    clock = SimClock()
    add_deal(demo, "D90001")
    svc = new_service(demo, clock)
    settle(svc, clock)
    clock.sleep(svc.cfg.interval)
    idle = svc.run_once()
    assert not idle.read, "an unchanged board and CRM must not be read"

    owners_before = {c["id"]: c["idMembers"] for c in board(demo)["cards"]}
    appeared = clock()
    card_id = add_card(demo, "D90001")
    while not card(demo, card_id)["idMembers"]:
        res = svc.run_once()
        assert res.error is None and res.paused is None
        if card(demo, card_id)["idMembers"]:
            break
        clock.sleep(res.delay)
        assert clock() - appeared <= 3 * svc.cfg.interval, "not assigned"
    assert clock() - appeared <= svc.cfg.interval
    (owner,) = card(demo, card_id)["idMembers"]
    assert rep_members(demo)[owner] == "yes", "given to a rep who is away"
    # scheduled mode: assigning one card moved nobody else's work
    assert res.held > 0
    assert {c["id"]: c["idMembers"] for c in board(demo)["cards"] if c["id"] != card_id} == owners_before


def test_status_lists_held_back_moves_and_the_log_names_people(
    demo: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """What scheduled mode holds back is listed by `status` with names and why; the log names
    members instead of their ids."""
    names = {m["id"]: m["fullName"] for m in board(demo)["members"]}
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    clock = SimClock()
    svc = new_service(demo, clock)
    res = svc.run_once()
    assert res.held > 0 and res.plan_id
    svc.close()
    capsys.readouterr()
    assert main(["-c", str(demo / "tasksync.toml"), "status", "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out).values()
    assert status["held"] == res.held and len(status["held_changes"]) == min(res.held, 50)
    first = status["held_changes"][0]
    assert first["title"] and "rebalance schedule" in first["why"]
    assert first["from"] in names.values() or ", " in first["from"]
    assert main(["-c", str(demo / "tasksync.toml"), "status"]) == 0
    text = capsys.readouterr().out
    assert "held back" in text and first["title"] in text
    applied = [r for r in caplog.records if r.getMessage() == "change.applied" and r.fields["field"] == "assignees"]
    assert applied
    for r in applied:
        assert not any(m in r.fields["after"] for m in names), "member ids in the log"
        assert r.fields["after"] == (", ".join(names[m] for m in r.fields["after_ids"]) or "(nobody)")


def test_scheduled_mode_moves_only_unowned_or_away_tasks(demo: Path) -> None:
    before = {c["id"]: tuple(c["idMembers"]) for c in board(demo)["cards"]}
    availability = rep_members(demo)
    clock = SimClock()
    svc = new_service(demo, clock)
    res = svc.run_once()
    assert res.held > 0, "the demo has owner changes a rebalance would make"
    for c in board(demo)["cards"]:
        old = before.get(c["id"])
        if old is None or tuple(c["idMembers"]) == old:
            continue
        owners = [m for m in old if m in availability]
        assert not owners or any(availability[m] == "no" for m in owners), f"moved {c['name']} from an available rep"


@pytest.mark.parametrize("seed", [140, 145])
def test_scheduled_plan_applies_whole_and_leaves_nothing_to_do(tmp_path: Path, seed: int) -> None:
    """Scheduled mode holds back the moves of available reps' cards; what it applies is decided with
    those cards kept, so its priorities match the owners the board really has and the next run,
    on the board as it left it, has nothing to do (it used to re-tier cards tiered for held moves)."""
    folder = tmp_path / "demo"
    config = generate(folder, seed=seed, cards=30)
    config.write_text(config.read_text().replace("enabled = true", "enabled = false", 1))
    clock = SimClock()
    svc = new_service(folder, clock)
    first = svc.run_once()
    assert first.error is None and first.paused is None and first.plan_id
    assert first.held > 0 and first.applied > 0
    after_first = end_state(folder)
    clock.sleep(first.delay)
    second = svc.run_once()
    assert second.read and second.error is None and second.paused is None
    assert (second.plan_id, second.applied) == (None, 0), "the scheduled plan left work for the next run"
    assert second.held > 0  # the moves a rebalance would make are still reported
    assert end_state(folder) == after_first
    svc.close()


def test_person_reassigning_a_card_is_left_alone(demo: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = SimClock()
    add_deal(demo, "D90002")
    svc = new_service(demo, clock)
    settle(svc, clock)
    card_id = add_card(demo, "D90002")
    clock.sleep(svc.cfg.interval)
    svc.run_once()
    (owner,) = card(demo, card_id)["idMembers"]
    other = next(m for m, avail in rep_members(demo).items() if avail == "yes" and m != owner)

    data = board(demo)
    next(c for c in data["cards"] if c["id"] == card_id)["idMembers"] = [other]
    save_board(demo, data)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()  # the change check sees the edit
    # The policy keeps the person's choice: an edit left as it is, not a conflict.
    assert res.read and res.conflicts == 0
    for _ in range(3):  # periodic full reads
        clock.sleep(svc.cfg.full_read_every)
        res = svc.run_once()
        assert res.error is None and res.paused is None
    assert card(demo, card_id)["idMembers"] == [other]
    kept = [r for r in caplog.records if r.getMessage() == "edit.kept" and r.fields.get("task") == card_id]
    assert len(kept) == 1, "each person's change is logged once, not at every iteration"
    assert not [r for r in caplog.records if r.getMessage() == "conflict.skipped" and r.fields.get("task") == card_id]


class Outage:
    """A connector whose every request fails with a 5xx while the clock is inside the outage."""

    def __init__(self, inner: LocalConnector, clock: SimClock) -> None:
        self.inner = inner
        self.board = inner.board
        self.clock = clock
        self.until = 0.0
        self.requests = 0
        self.failed = 0

    def _check(self) -> None:
        self.requests += 1
        if self.clock() < self.until:
            self.failed += 1
            raise TransientError("Trello: 503 Service Unavailable", 503)

    def read(self) -> Snapshot:
        self._check()
        return self.inner.read()

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        self._check()
        return self.inner.write(writes)

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        self._check()
        return self.inner.create(new_tasks)

    def find_created(self, key: str) -> str | None:
        self._check()
        return self.inner.find_created(key)


def test_api_outage_of_five_minutes_backs_off_and_recovers(demo: Path) -> None:
    clock = SimClock()
    add_deal(demo, "D90003")
    conn = Outage(LocalConnector(settings_of(demo)), clock)
    svc = new_service(demo, clock, connector=conn)
    settle(svc, clock)
    start = clock()
    conn.until = start + 300
    card_id = add_card(demo, "D90003")
    errors: list[IterationResult] = []
    while not card(demo, card_id)["idMembers"]:
        res = svc.run_once()
        if res.error:
            errors.append(res)
            assert "503" in res.error
            code, verdict = health_of(read_status(svc.store)[svc.board], clock(), 180)
            assert code in (0, 1), verdict
        clock.sleep(res.delay)
        assert clock() - start < 3600, "never recovered"
    recovered = clock()
    delays = [e.delay for e in errors]
    assert len(errors) >= 3
    assert delays == sorted(delays) and delays[-1] > delays[0], "back-off must grow"
    assert max(delays) <= svc.cfg.backoff_max
    assert conn.failed <= 10, "no retry storm during an outage"
    assert recovered - conn.until <= max(delays) + svc.cfg.interval
    status = read_status(svc.store)[svc.board]
    assert status["errors"] == "0" and status["last_error"] == ""


def test_truncated_crm_export_pauses_and_writes_nothing(demo: Path) -> None:
    clock = SimClock()
    add_deal(demo, "D90004")
    svc = new_service(demo, clock)
    settle(svc, clock)
    add_card(demo, "D90004")
    deals = demo / "crm" / "deals.csv"
    full = deals.read_text(encoding="utf-8")
    deals.write_text("\n".join(full.splitlines()[:11]) + "\n", encoding="utf-8")  # header + 10 rows
    before = (demo / "board.json").read_bytes()
    plans_before = len(svc.store.plans(limit=1000))

    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.paused and "deals" in res.paused and not res.read
    clock.sleep(svc.cfg.interval)
    assert svc.run_once().paused
    assert (demo / "board.json").read_bytes() == before, "nothing written while paused"
    assert len(svc.store.plans(limit=1000)) == plans_before
    code, verdict = health_of(read_status(svc.store)[svc.board], clock(), 180)
    assert code == PAUSED and "deals" in verdict
    assert main(["-c", str(demo / "tasksync.toml"), "status"]) == PAUSED

    deals.write_text(full, encoding="utf-8")  # the next export is whole again
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.paused is None and res.read and res.plan_id
    assert (demo / "board.json").read_bytes() != before


def test_empty_board_pauses(demo: Path) -> None:
    clock = SimClock()
    svc = new_service(demo, clock)
    settle(svc, clock)
    data = board(demo)
    data["cards"] = []
    save_board(demo, data)
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.paused and "empty" in res.paused
    assert board(demo)["cards"] == []


def test_plan_moving_too_many_tasks_pauses(demo: Path) -> None:
    clock = SimClock()
    svc = new_service(demo, clock)
    settle(svc, clock)
    before = (demo / "board.json").read_bytes()
    reps = demo / "crm" / "reps.csv"
    rows = list(csv.DictReader(reps.open(encoding="utf-8")))
    for r in rows[:6]:
        r["Available"] = "no"  # half the team away at once: their work would all move
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    reps.write_text(out.getvalue(), encoding="utf-8")
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.paused and "max_move_share" in res.paused
    assert (demo / "board.json").read_bytes() == before


class StoppingConnector(LocalConnector):
    """The local board; its service (``svc``) is asked to stop when the write ``after`` is done."""

    svc: SyncService

    def __init__(self, settings: Settings, save_every: int, after: int) -> None:
        super().__init__(settings, save_every=save_every)
        self.after = after

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        for n, r in enumerate(super().write(writes)):
            if n == self.after:
                self.svc.stop()
            yield r


def test_stop_request_finishes_the_change_in_flight_and_resumes(demo: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    example(reference)
    clock = SimClock()
    settle(new_service(reference, clock), clock)

    conn = StoppingConnector(settings_of(demo), save_every=4, after=10)
    svc = new_service(demo, clock, connector=conn)
    conn.svc = svc
    res = svc.run()
    assert res is not None and res.stopped
    assert svc.store.latest(conn.board, "applying") is not None
    svc.close()

    again = new_service(demo, clock)
    first = again.run_once()
    assert first.resumed > 0
    settle(again, clock)
    assert end_state(demo) == end_state(reference)


def test_rebalance_runs_only_on_its_schedule(demo: Path) -> None:
    (demo / "tasksync.toml").write_text((demo / "tasksync.toml").read_text() + "\n[service]\nrebalance_every = 86400\n")
    clock = SimClock()
    svc = new_service(demo, clock)
    res = settle(svc, clock)
    assert res.held > 0
    clock.sleep(86400)
    res = svc.run_once()
    assert res.rebalance and res.held == 0 and res.applied > 0
    plan_kinds = {p.kind for p in svc.store.plans(limit=100)}
    assert "rebalance" in plan_kinds


# ---------------------------------------------------------------------- lock, status, logs
def test_one_service_per_state_store(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_of(demo)
    path = lock_path_for(settings.path(settings.state_path))
    with ServiceLock(path):
        with pytest.raises(AlreadyRunning):
            ServiceLock(path).acquire()
        rc = main(["-c", str(demo / "tasksync.toml"), "serve", "--once"])
        assert rc == AlreadyRunning.exit_code
        assert "already runs on this state store" in capsys.readouterr().err
    with ServiceLock(path):  # released: a restart gets it
        pass


def test_status_exit_codes(demo: Path) -> None:
    cfg = str(demo / "tasksync.toml")
    assert main(["-c", cfg, "status"]) == 3  # never ran
    assert main(["-c", cfg, "serve", "--once", "--today", TODAY.isoformat()]) == 0
    assert main(["-c", cfg, "status"]) == 0
    assert main(["-c", cfg, "status", "--stale-after", "0.000001"]) == 3


def test_logs_are_json_and_redacted() -> None:
    out = io.StringIO()
    configure_logging(json_lines=True, secrets=["s3cr3t-token-value"], stream=out)
    try:
        event("change.applied", task="c1", url="https://api.trello.com/1/cards?key=abc123&token=s3cr3t-token-value")
        event("api.error", level=logging.ERROR, detail="Authorization: Bearer s3cr3t-token-value failed")
    finally:
        logging.getLogger(LOGGER_NAME).handlers.clear()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["event"] == "change.applied" and lines[0]["task"] == "c1"
    assert "s3cr3t" not in out.getvalue() and "abc123" not in out.getvalue()
    assert lines[1]["level"] == "error"


# ---------------------------------------------------------------------- processes
DRIVER = textwrap.dedent(
    """
    import sys, time
    from tasksync.connectors.local import LocalConnector
    from tasksync.examples import TODAY
    from tasksync.service.loop import SyncService
    from tasksync.settings import load_settings

    class Slow(LocalConnector):
        def write(self, writes):
            for r in super().write(writes):
                time.sleep(0.01)
                yield r

    settings = load_settings(sys.argv[1])
    svc = SyncService(settings, connector=Slow(settings, save_every=3), today=TODAY)
    svc.run_once()
    print("finished", flush=True)
    """
)


def _done_rows(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT count(*) FROM journal WHERE status='done'").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def test_kill_9_during_apply_resumes_to_the_same_end_state(demo: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    example(reference)
    clock = SimClock()
    settle(new_service(reference, clock), clock)

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    state = demo / ".tasksync" / "state.sqlite3"
    proc = subprocess.Popen([sys.executable, str(driver), str(demo / "tasksync.toml")], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _done_rows(state) < 15:
        assert proc.poll() is None, "the apply finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    svc = new_service(demo, clock)
    assert svc.store.latest(svc.connector.board, "applying") is not None, "killed mid-apply"
    first = svc.run_once()
    assert first.resumed > 0
    settle(svc, clock)
    assert end_state(demo) == end_state(reference)


def test_serve_stops_cleanly_on_sigterm(demo: Path) -> None:
    cfg = str(demo / "tasksync.toml")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasksync.cli",
            "-c",
            cfg,
            "serve",
            "--interval",
            "0.2",
            "--log-json",
            "--today",
            TODAY.isoformat(),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    state = demo / ".tasksync" / "state.sqlite3"
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        if state.exists():
            try:
                db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
                row = db.execute("SELECT value FROM kv WHERE key='service.last_ok'").fetchone()
                db.close()
                if row:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    err = proc.stderr.read() if proc.stderr else ""
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "service.signal" in events and events[-1] == "service.stop"


def test_daily_rebalance_at_a_time_of_day(demo: Path) -> None:
    (demo / "tasksync.toml").write_text((demo / "tasksync.toml").read_text() + '\n[service]\nrebalance_at = "06:00"\n')
    day = 86400.0
    clock = SimClock(T0 - T0 % day + 7 * 3600)  # 07:00 UTC: today's 06:00 has passed
    svc = new_service(demo, clock)
    assert not settle(svc, clock).rebalance
    clock.sleep(day - 7 * 3600 + 5 * 3600 - (clock() % day - 7 * 3600))  # to 05:00 the next day
    assert not svc.run_once().rebalance
    clock.sleep(2 * 3600)  # 07:00: 06:00 passed since the last rebalance
    assert svc.run_once().rebalance
    clock.sleep(svc.cfg.interval)
    assert not svc.run_once().rebalance


def test_rate_limit_waits_as_long_as_the_vendor_says(demo: Path) -> None:
    from tasksync.errors import RateLimitedError

    clock = SimClock()

    class Limited(Outage):
        def _check(self) -> None:
            self.requests += 1
            if self.clock() < self.until:
                raise RateLimitedError("429 Too Many Requests", retry_after=900)

    conn = Limited(LocalConnector(settings_of(demo)), clock)
    svc = new_service(demo, clock, connector=conn)
    settle(svc, clock)
    conn.until = clock() + 900
    data = board(demo)
    save_board(demo, data)  # a change to look at
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.error and res.delay == 900
    clock.sleep(res.delay)
    assert svc.run_once().error is None


def test_a_resumed_plan_is_logged_with_the_names_it_was_made_with(demo: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A service stopped mid-apply; the next process finished the plan before its first read, and
    # logged every owner it wrote by member id ("68d8... -> 68d8...").
    config = demo / "tasksync.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('"optimal"', '"balanced"'), encoding="utf-8")
    names = {m["id"]: m["fullName"] for m in board(demo)["members"]}
    clock = SimClock()

    conn = StoppingConnector(settings_of(demo), save_every=2, after=3)
    svc = new_service(demo, clock, connector=conn)
    conn.svc = svc
    assert svc.run_once().stopped
    svc.close()

    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    again = new_service(demo, clock)
    assert again.run_once().resumed > 0
    again.close()
    resumed = [r for r in caplog.records if r.getMessage() == "change.applied" and r.fields["field"] == "assignees"]
    assert resumed
    for r in resumed:
        assert r.fields["after"] == (", ".join(names[m] for m in r.fields["after_ids"]) or "(nobody)")
        assert r.fields["before"] == (", ".join(names[m] for m in r.fields["before_ids"]) or "(nobody)")
