"""The service against the fake Asana over loopback: change detection by the Events API."""

from __future__ import annotations

import csv
import json
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync.connectors.asana import AsanaConnector
from tasksync.connectors.http import SlidingWindowLimiter
from tasksync.examples import TODAY, generate
from tasksync.service.loop import SyncService
from tasksync.settings import Secrets, Settings, settings_from_mapping
from tasksync.testing.fake_asana import FakeAsana
from test_service import CARDS, SimClock, add_deal, settle


@pytest.fixture
def fake() -> Iterator[FakeAsana]:
    with FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7) as f:
        yield f


class AsanaDemo:
    """The demo board and CRM, as an Asana project in the fake."""

    def __init__(self, folder: Path, fake: FakeAsana) -> None:
        generate(folder, cards=CARDS)
        self.folder, self.fake = folder, fake
        board = json.loads((folder / "board.json").read_text(encoding="utf-8"))
        reps = list(csv.DictReader((folder / "crm" / "reps.csv").open(encoding="utf-8")))
        self.ws = fake.add_workspace("Acme Sales")
        self.project = fake.add_project(self.ws, "Pipeline")
        self.sections = {lst["id"]: fake.add_section(self.project, lst["name"]) for lst in board["lists"]}
        self.section_by_name = {lst["name"]: self.sections[lst["id"]] for lst in board["lists"]}
        self.priority = fake.add_enum_field(self.project, "Priority", ["P1", "P2", "P3", "P4"])
        self.options = {o["name"]: o["gid"] for o in fake.custom_fields[self.priority]["enum_options"]}
        self.crm = fake.add_text_field(self.project, "CRM ID")
        users = {r["Name"]: fake.add_user(self.ws, r["Name"], r["Email"]) for r in reps}
        raw = tomllib.loads((folder / "tasksync.toml").read_text(encoding="utf-8"))
        by_username = {v: k for k, v in raw.get("members", {}).items()}
        member_user = {}
        for m in board["members"]:
            name = m["fullName"] if m["fullName"] in users else by_username.get(m.get("username"))
            if name in users:
                member_user[m["id"]] = users[name]
        fields = {f["id"]: f for f in board["customFields"]}
        items: dict[str, dict[str, Any]] = {}
        for item in board.get("customFieldItems", []):
            f = fields[item["idCustomField"]]
            if f["name"] == "CRM ID":
                items.setdefault(item["idModel"], {})[self.crm] = item["value"]["text"]
            elif f["name"] == "Priority":
                text = next(o["value"]["text"] for o in f["options"] if o["id"] == item["idValue"])
                items.setdefault(item["idModel"], {})[self.priority] = self.options[text]
        for c in board["cards"]:
            owners = [member_user[m] for m in c["idMembers"] if m in member_user]
            fake.add_task(
                self.project, self.sections[c["idList"]], c["name"], notes=c.get("desc", ""),
                assignee=owners[0] if owners else None, custom_values=items.get(c["id"], {}),
            )  # fmt: skip
        raw.pop("members", None)  # Asana users match reps by email
        raw["connector"] = "asana"
        raw["policy"]["name"] = "balanced"  # the service against the fake: every policy shares it; fast
        raw["asana"] = {"project": self.project, "workspace": self.ws, "api_url": fake.url}
        self.settings: Settings = settings_from_mapping(raw, base_dir=folder)
        self.settings.secrets = Secrets(asana_token=fake.token)  # type: ignore[call-arg]

    def service(self, clock: SimClock) -> SyncService:
        conn = AsanaConnector(
            self.settings, limiter=SlidingWindowLimiter(10_000, 60.0 / self.fake.time_scale), backoff=0.01, timeout=5.0
        )
        return SyncService(self.settings, connector=conn, clock=clock, sleep=clock.sleep, today=TODAY)

    def person(self, method: str, path: str, data: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.fake.url}{path}",
            data=json.dumps({"data": data}).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.fake.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())["data"]

    def new_task(self, deal_id: str) -> str:
        section = self.section_by_name["Proposal"]
        created = self.person(
            "POST",
            "/tasks",
            {
                "name": f"New business {deal_id}",
                "projects": [self.project],
                "memberships": [{"project": self.project, "section": section}],
                "custom_fields": {self.crm: deal_id},
            },
        )
        return str(created["gid"])

    def assignee(self, gid: str) -> str | None:
        return self.fake.tasks[gid].assignee


def test_idle_project_costs_one_events_request_per_interval(tmp_path: Path, fake: FakeAsana) -> None:
    demo = AsanaDemo(tmp_path / "demo", fake)
    clock = SimClock()
    svc = demo.service(clock)
    settle(svc, clock)
    clock.sleep(svc.cfg.interval)
    svc.run_once()  # our own writes show up as events once
    fake.clear_log()
    n = 30
    for _ in range(n):
        clock.sleep(svc.cfg.interval)
        res = svc.run_once()
        assert res.error is None and not res.read
    assert fake.count() == n
    assert fake.count("GET", "/events") == n


def test_new_task_assigned_within_one_interval_and_human_edit_kept(tmp_path: Path, fake: FakeAsana) -> None:
    demo = AsanaDemo(tmp_path / "demo", fake)
    add_deal(demo.folder, "D93000")
    clock = SimClock()
    svc = demo.service(clock)
    settle(svc, clock)

    gid = demo.new_task("D93000")
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.read and res.reason == "board" and res.plan_id
    owner = demo.assignee(gid)
    assert owner is not None

    other = next(u for u in fake.users if u != owner)
    demo.person("PUT", f"/tasks/{gid}", {"assignee": other})
    for _ in range(3):
        clock.sleep(svc.cfg.interval)
        assert svc.run_once().error is None
    assert demo.assignee(gid) == other


def test_events_that_repeat_their_sync_token_end_the_check(tmp_path: Path, fake: FakeAsana) -> None:
    """A spec-like mock answers every /events with the same sync token and ``has_more``: one
    iteration asked 750 times in 300 s and never ended; the paginator stops at the repeat."""
    demo = AsanaDemo(tmp_path / "demo", fake)
    clock = SimClock()
    svc = demo.service(clock)
    settle(svc, clock)
    fake.sticky_sync = True
    fake.clear_log()
    for _ in range(3):
        clock.sleep(svc.cfg.interval)
        res = svc.run_once()
        assert res.error is None and res.read and res.reason == "full", res
    # Per iteration: the change check and the read's token, each the first answer and its repeat.
    assert fake.count("GET", "/events") <= 3 * 4
