"""Saves of the local board are atomic. (The engine's properties on the local board, fake Trello
and fake Asana are in test_engine_fakes.py.)"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tasksync.cli import main
from tasksync.connectors.local import atomic_write_json
from tasksync.examples import TODAY, generate
from tasksync.model import Field, Snapshot, TaskWrite
from tasksync.settings import load_settings
from tasksync.sync.workspace import Workspace
from test_service import SimClock

_TEMPLATE: dict[str, Path] = {}


def fresh(tmp: Path) -> Path:
    """A small example board (60 cards), copied from a template made once per session."""
    if "t" not in _TEMPLATE:
        base = Path(__import__("tempfile").mkdtemp(prefix="tasksync-template-"))
        _TEMPLATE["t"] = generate(base / "demo", seed=11, cards=60).parent
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(_TEMPLATE["t"], tmp)
    return tmp / "tasksync.toml"


def workspace(config: Path, connector: Any = None) -> Workspace:
    return Workspace(load_settings(config), connector=connector, today=TODAY)


def state(snapshot: Snapshot) -> dict[str, tuple[Any, ...]]:
    return {t.id: (t.assignees, t.priority, t.stage_id) for t in snapshot.tasks}


def test_atomic_write_leaves_the_old_file_when_serialising_fails(tmp_path: Path) -> None:
    path = tmp_path / "board.json"
    path.write_text('{"lists": [], "cards": []}', encoding="utf-8")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"cards": [object()]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"lists": [], "cards": []}
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]  # no temp file left behind


def _reshape_reps(crm: Path, data: st.DataObject) -> None:
    """Random away reps, capacities by count and by value, and quotas (none, the export's, twice
    the usual) in the reps export."""
    path = crm / "reps.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for k, row in enumerate(rows):
        row["Available"] = "yes" if k == 0 or data.draw(st.integers(0, 5)) else "no"
        row["Capacity"] = data.draw(st.sampled_from(["", row["Capacity"], "3", "8"]))
        row["Capacity Value"] = data.draw(st.sampled_from(["", "", "150000", "400000"]))
        row["Quota"] = data.draw(st.sampled_from(["", row["Quota"], row["Quota"], "150000"]))
    note(str([(r["Available"], r["Capacity"], r["Capacity Value"], r["Quota"]) for r in rows]))
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def _pin_cards(config: Path, data: st.DataObject) -> None:
    path = config.parent / "board.json"
    board = json.loads(path.read_text(encoding="utf-8"))
    pin = next(lb["id"] for lb in board["labels"] if lb["name"] == "pinned")
    pinned = [c for c in board["cards"] if c["idMembers"] and data.draw(st.integers(0, 12)) == 0]
    for card in pinned:
        card["idLabels"] = [*card["idLabels"], pin]
    note(f"pinned: {[c['name'] for c in pinned]}")
    path.write_text(json.dumps(board), encoding="utf-8")


# Examples per policy: optimal's plans cost seconds each on this book (its whole-book MILP), so it
# gets fewer here; its settling is also checked on the bench's books, the fakes and random boards.
SETTLE_EXAMPLES = {"optimal": 5, "balanced": 8, "round-robin": 8}


@pytest.mark.parametrize("name", ["optimal", "balanced", "round-robin"])
def test_an_applied_plan_settles(tmp_path: Path, name: str) -> None:
    """After apply of any plan, plan is empty: every policy, both bands, value targets by mean or
    quota, accounts together or not, owners kept or not, away reps, pins, capacity by count and by
    value, and after people's edits (which lock the cards they moved)."""

    @settings(max_examples=SETTLE_EXAMPLES[name], deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        _applied_plan_settles(tmp_path, name, data)

    prop()


def _applied_plan_settles(tmp_path: Path, name: str, data: st.DataObject) -> None:
    config = fresh(tmp_path / "s")
    _reshape_reps(config.parent / "crm", data)
    _pin_cards(config, data)
    base = load_settings(config)
    policy = base.policy.model_copy(
        update={
            "name": name,
            "band": data.draw(st.sampled_from([0.0, 0.1, 0.3])),
            "value_band": data.draw(st.sampled_from([0.0, 0.1, 0.2])),
            "keep_accounts_together": data.draw(st.booleans()),
            "keep_current_owner": data.draw(st.booleans()),
            "min_gain": data.draw(st.sampled_from([0.0, 0.2, 1.0])),
            "value_target": data.draw(st.sampled_from(["mean", "quota"])),
        }
    )
    note(str(policy))
    s = base.model_copy(update={"policy": policy})
    with Workspace(s, today=TODAY) as ws:
        ws.plan()
        ws.apply()
        assert ws.plan().plan.changes == []
        snap = ws.connector.read()
        members = [m.id for m in snap.members]
        linked = [t for t in snap.tasks if t.crm_ref]
        edited = data.draw(st.lists(st.sampled_from(linked), max_size=5, unique_by=lambda t: t.id))
        writes = [TaskWrite(t.id, {Field.ASSIGNEES: (data.draw(st.sampled_from(members)),)}) for t in edited]
        list(ws.connector.write(writes))
        note(f"second plan: {ws.plan().plan.notes}")
        ws.apply()
        again = ws.plan().plan
        note(f"third plan: {again.notes}")
        assert again.changes == [] and again.creates == []


# Found by a search on the greedy policy before it settled: value capacities that bind and a
# wide band; after apply, plan moved 7 more cards.
_BINDING_VALUE_CAPACITY = [
    ("yes", "", "150000"),
    ("no", "8", "150000"),
    ("yes", "8", ""),
    ("no", "3", ""),
    ("yes", "3", "400000"),
    ("yes", "3", "400000"),
    ("yes", "8", ""),
    ("yes", "8", "150000"),
    ("yes", "", "150000"),
    ("yes", "34", "150000"),
    ("yes", "8", "400000"),
    ("yes", "3", "400000"),
]


def test_balanced_settles_when_a_value_capacity_binds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fresh(tmp_path / "v")
    path = config.parent / "crm" / "reps.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row, (available, cap, cap_value) in zip(rows, _BINDING_VALUE_CAPACITY, strict=True):
        row["Available"], row["Capacity"], row["Capacity Value"] = available, cap, cap_value
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    text = config.read_text(encoding="utf-8").replace('name = "optimal"', 'name = "balanced"\nvalue_band = 0')
    config.write_text(text.replace("band = 0.10 ", "band = 0.30 "), encoding="utf-8")
    first = _plan_doc(config, capsys)
    assert first["changes"] and first["band"]["ratio"] == 0.3
    assert main(["--no-color", "-c", str(config), "apply"]) == 0
    again = _plan_doc(config, capsys)
    assert again["changes"] == [] and again["plan"]["creates"] == []


# Found by the search above: with cards created for deals and cards not kept together by account,
# the run after apply met the new cards (ids new, made at apply) in another order than the planning
# run met their deals, and the optimal policy moved 15-37 more cards (each run a different number).
_CREATED_CARDS_REPS = [
    ("yes", "3", "", ""),
    ("yes", "", "150000", ""),
    ("yes", "8", "", "70000"),
    ("yes", "", "150000", ""),
    ("yes", "40", "400000", "150000"),
    ("yes", "", "400000", "150000"),
    ("yes", "3", "", ""),
    ("yes", "", "", "70000"),
    ("yes", "8", "400000", "75000"),
    ("yes", "", "400000", "80000"),
    ("yes", "", "400000", "60000"),
    ("yes", "3", "150000", "65000"),
]
_CREATED_CARDS_PINS = {
    "Harbor Health 44 - Core",
    "Green Labs 159 - Support Plan",
    "Crescent Clinics 80 - Core",
    "Cedar Bank 149 - Core",
    "Bright Capital 47 - Analytics",
    "North Bank 41 - Support Plan",
    "Granite Markets 111 - Core",
}


def _reshaped(tmp: Path, reps: list[tuple[str, str, str, str]], pins: set[str]) -> Path:
    """The small example board with its reps' availability, capacities (count, value) and quotas
    set as ``reps`` says, and the cards named in ``pins`` pinned (when owned)."""
    config = fresh(tmp)
    path = config.parent / "crm" / "reps.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row, (available, cap, cap_value, quota) in zip(rows, reps, strict=True):
        row["Available"], row["Capacity"], row["Capacity Value"], row["Quota"] = available, cap, cap_value, quota
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    board_path = config.parent / "board.json"
    board = json.loads(board_path.read_text(encoding="utf-8"))
    pin = next(lb["id"] for lb in board["labels"] if lb["name"] == "pinned")
    for card in board["cards"]:
        if card["name"] in pins and card["idMembers"]:
            card["idLabels"] = [*card["idLabels"], pin]
    board_path.write_text(json.dumps(board), encoding="utf-8")
    return config


def test_optimal_settles_after_creating_cards_for_deals(tmp_path: Path) -> None:
    config = _reshaped(tmp_path / "n", _CREATED_CARDS_REPS, _CREATED_CARDS_PINS)
    base = load_settings(config)
    policy = base.policy.model_copy(
        update={
            "band": 0.0,
            "value_band": 0.1,
            "value_target": "quota",
            "keep_accounts_together": False,
            "keep_current_owner": False,
            "min_gain": 0.2,
        }
    )
    with Workspace(base.model_copy(update={"policy": policy}), today=TODAY) as ws:
        first = ws.plan().plan
        assert first.creates and first.changes
        ws.apply()
        again = ws.plan().plan
        assert again.changes == [] and again.creates == []


# Found by the search above: a deal without a card in an account pinned to a rep already over
# their value capacity was left where it is (its deal's owner, as the policy counted it) but its
# card was created with no owner; the run after apply then met an unowned card and moved 5 more.
_PINNED_OVER_CAPACITY_REPS = [
    ("yes", "8", "", ""),
    ("no", "", "", ""),
    ("no", "", "", ""),
    ("no", "", "", ""),
    ("yes", "", "150000", ""),
    ("no", "", "", ""),
    ("no", "", "", ""),
    ("no", "", "", ""),
    ("yes", "", "", ""),
    ("yes", "34", "400000", "80000"),
    ("yes", "3", "", "150000"),
    ("no", "8", "150000", "65000"),
]
_PINNED_OVER_CAPACITY_PINS = {
    "Green Capital 155 - Core",
    "Summit Systems 54 - Core",
    "Summit Clinics 152 - Support Plan",
    "Green Markets 14 - Core",
}


def test_a_card_created_where_its_deal_is_left_gets_the_deals_owner_and_settles(tmp_path: Path) -> None:
    config = _reshaped(tmp_path / "p", _PINNED_OVER_CAPACITY_REPS, _PINNED_OVER_CAPACITY_PINS)
    base = load_settings(config)
    policy = base.policy.model_copy(
        update={"band": 0.3, "value_band": 0.1, "keep_current_owner": False, "min_gain": 0.0, "value_target": "mean"}
    )
    with Workspace(base.model_copy(update={"policy": policy}), today=TODAY) as ws:
        first = ws.plan().plan
        left = [n for n in first.creates if n.title.startswith("Green Markets 14 ")]
        assert left and all(n.assignees for n in left), left
        assert all("with its deal's owner in the CRM" in n.reason for n in left)
        ws.apply()
        again = ws.plan().plan
        assert again.changes == [] and again.creates == []


def _plan_doc(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``plan --json`` without the plan's identity (its id and creation time)."""
    capsys.readouterr()
    assert main(["--no-color", "-c", str(config), "plan", "--json", "--today", TODAY.isoformat()]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    doc["plan"].pop("id")
    doc["plan"].pop("created_at")
    return doc


@pytest.mark.parametrize("name", ["optimal", "balanced"])
def test_same_plan_under_cpu_contention(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """Nothing that shapes the plan depends on the clock: with capacities by count and value, an
    away rep, quotas as value targets and both bands, the plan computed while two busy processes
    compete for the CPU is byte for byte the plan of a quiet machine, and applied under that load
    it settles."""
    config = fresh(tmp_path / "c")
    path = config.parent / "crm" / "reps.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for k, row in enumerate(rows):
        row["Capacity Value"] = "150000" if k % 4 == 1 else ""
        row["Capacity"] = "4" if k % 5 == 2 else row["Capacity"]
        row["Quota"] = "150000" if k % 3 == 0 else ("" if k % 3 == 1 else row["Quota"])
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    text = config.read_text(encoding="utf-8").replace('name = "optimal"', f'name = "{name}"\nvalue_target = "quota"')
    config.write_text(text, encoding="utf-8")

    quiet = _plan_doc(config, capsys)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = _plan_doc(config, capsys)
        assert main(["--no-color", "-c", str(config), "apply"]) == 0
        after = _plan_doc(config, capsys)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert quiet["changes"]
    assert json.dumps(loaded, sort_keys=True) == json.dumps(quiet, sort_keys=True)
    assert after["changes"] == [] and after["plan"]["creates"] == []


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scheduled_mode_settles(tmp_path: Path, data: st.DataObject) -> None:
    """`serve` in scheduled mode holds back moves between available reps, and what it applies
    leaves nothing for its next run: with away reps, capacities, pins, both balance measures, and
    after people's edits between runs."""
    from tasksync.service.loop import SyncService

    config = fresh(tmp_path / "sched")
    _reshape_reps(config.parent / "crm", data)
    _pin_cards(config, data)
    base = load_settings(config)
    policy = base.policy.model_copy(
        update={
            "name": data.draw(st.sampled_from(["optimal", "balanced"])),
            "band": data.draw(st.sampled_from([0.1, 0.3])),
            "value_band": data.draw(st.sampled_from([0.0, 0.2])),
            "keep_accounts_together": data.draw(st.booleans()),
        }
    )
    note(str(policy))
    service = base.service.model_copy(update={"max_move_share": 1.0, "max_create_share": 1.0})
    s = base.model_copy(update={"policy": policy, "service": service})
    clock = SimClock()
    svc = SyncService(s, clock=clock, sleep=clock.sleep, today=TODAY)
    try:
        first = svc.run_once()
        assert first.error is None and first.paused is None, first
        clock.sleep(first.delay)
        second = svc.run_once()
        assert second.plan_id is None and second.applied == 0, f"held {first.held}, then {second}"
        snap = svc.connector.read()
        members = [m.id for m in snap.members]
        linked = [t for t in snap.tasks if t.crm_ref]
        edited = data.draw(st.lists(st.sampled_from(linked), max_size=4, unique_by=lambda t: t.id))
        list(
            svc.connector.write(
                [TaskWrite(t.id, {Field.ASSIGNEES: (data.draw(st.sampled_from(members)),)}) for t in edited]
            )
        )
        clock.sleep(second.delay)
        third = svc.run_once()
        assert third.error is None and third.paused is None, third
        clock.sleep(third.delay)
        fourth = svc.run_once()
        assert fourth.plan_id is None and fourth.applied == 0, f"after edits {third}, then {fourth}"
    finally:
        svc.close()


# A book the property above found: reps at small capacities, two away, three cards pinned. The away
# rep's account (one card, two deals to create) was left with them by the rounding MILP, which saw
# only the two reps the LP spread it over, both full; the next run moved its three cards.
_FOUND_REPS = {  # rep id: (capacity, quota, available, value capacity)
    "R001": ("", "", "yes", ""),
    "R002": ("", "", "yes", ""),
    "R003": ("3", "150000", "yes", "400000"),
    "R004": ("3", "75000", "yes", "150000"),
    "R005": ("3", "80000", "yes", ""),
    "R006": ("8", "150000", "yes", ""),
    "R007": ("34", "150000", "no", "150000"),
    "R008": ("", "150000", "no", ""),
    "R009": ("8", "75000", "yes", "400000"),
    "R010": ("34", "150000", "yes", ""),
    "R011": ("3", "60000", "yes", "400000"),
    "R012": ("8", "65000", "yes", "400000"),
}


def test_scheduled_mode_hands_on_an_away_reps_account_with_cards_to_create_in_one_run(tmp_path: Path) -> None:
    from tasksync.service.loop import SyncService

    config = fresh(tmp_path / "found")
    path = config.parent / "crm" / "reps.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["Capacity"], row["Quota"], row["Available"], row["Capacity Value"] = _FOUND_REPS[row["Rep ID"]]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    pin = next(lb["id"] for lb in board["labels"] if lb["name"] == "pinned")
    for card in board["cards"]:
        if card["name"] in ("Harbor Health 44 - Core", "Green Retail 22 - Core", "Granite Labs 105 - Core"):
            card["idLabels"] = [*card["idLabels"], pin]
    (config.parent / "board.json").write_text(json.dumps(board), encoding="utf-8")
    base = load_settings(config)
    policy = base.policy.model_copy(update={"band": 0.1, "value_band": 0.0})
    service = base.service.model_copy(update={"max_move_share": 1.0, "max_create_share": 1.0})
    clock = SimClock()
    s = base.model_copy(update={"policy": policy, "service": service})
    svc = SyncService(s, clock=clock, sleep=clock.sleep, today=TODAY)
    try:
        first = svc.run_once()
        assert first.error is None and first.created > 0, first
        clock.sleep(first.delay)
        second = svc.run_once()
        assert second.plan_id is None and second.applied == 0, f"held {first.held}, then {second}"
    finally:
        svc.close()
