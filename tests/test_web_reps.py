"""The review page's reps table: away (until a date), back, capacity, quota and reset over HTTP
(Starlette's TestClient, in process), behind the login and CSRF of every write, checked with the
command line's rules and messages, answering with ``reps --json``'s data, and the next plan
following the override."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from tasksync.cli import main
from tasksync.examples import TODAY, generate
from tasksync.settings import load_settings
from tasksync.web.cli import build_app
from test_web import MEMBER_TOKEN, trello_demo

ANA = "Ana Alvarez"
ACTIONS = ("away", "back", "capacity", "quota", "reset")


@dataclass
class App:
    client: TestClient
    config: Path

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = self.client.post(path, json=body)
        assert r.status_code == status, r.text
        data: dict[str, Any] = r.json()
        return data

    def plan(self) -> dict[str, Any]:
        data: dict[str, Any] = self.post("/api/plan", {})["data"]
        return data

    def cli_json(self, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
        capsys.readouterr()
        assert main(["-c", str(self.config), *args, "--json", "--today", TODAY.isoformat()]) == 0
        data: dict[str, Any] = json.loads(capsys.readouterr().out)
        return data


def login(client: TestClient, folder: Path) -> None:
    token = (folder / ".tasksync" / "web-admin-token").read_text(encoding="utf-8").strip()
    assert client.post("/login", json={"token": token}).status_code == 200
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    config = generate(tmp_path / "demo", cards=120)
    with TestClient(build_app(load_settings(config), today=TODAY, out=io.StringIO())) as client:
        login(client, config.parent)
        yield App(client, config)


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["reps"] if r["name"] == name)
    return found


def moves(plan: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["task_id"], c["field"], str(c["after"])) for c in plan["changes"]}


# --------------------------------------------------------------------------- login and CSRF
def test_every_reps_write_needs_a_login_the_csrf_token_and_our_origin(app: App) -> None:
    body = {"rep": "ana", "until": "2026-12-14", "tasks": 2, "amount": 1000}
    csrf = app.client.headers.pop("X-CSRF-Token")
    for action in ACTIONS:
        r = app.client.post(f"/api/reps/{action}", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["error"], action
        r = app.client.post(f"/api/reps/{action}", json=body, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403, action
        evil = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        r = app.client.post(f"/api/reps/{action}", json=body, headers=evil)
        assert r.status_code == 403 and r.json()["error"] == "cross-site request refused", action
    with TestClient(app.client.app) as stranger:
        for action in ACTIONS:
            r = stranger.post(f"/api/reps/{action}", json=body, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 401 and r.json()["error"] == "log in first", action
        assert stranger.get("/api/reps").status_code == 401
    app.client.headers["X-CSRF-Token"] = csrf
    assert app.client.get("/api/reps").json()["data"]["overrides"] == []  # nothing refused was stored


# --------------------------------------------------------------------------- away and back
def test_away_until_a_date_moves_the_reps_cards_with_the_reason_and_back_restores_the_plan(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    first = app.plan()
    held = {c["task_id"] for c in first["changes"] if c["field"] == "assignees"}
    answer = app.post("/api/reps/away", {"rep": "ana", "until": "2026-12-14"})
    assert answer["message"] == f"{ANA}: away until 2026-12-14, set by admin"
    ana = row(answer["data"], ANA)
    assert not ana["available"] and ana["availability"] == "away until 2026-12-14, set by admin"
    assert ana["overrides"][0]["set_by"] == "admin"
    # the answer is `reps --json`'s data: same schema, same values as the command line's
    assert answer["data"] == app.cli_json(capsys, "reps")
    # the shown plan is stale: no longer the proposal, and applying it is refused
    assert answer["plan_stale"] and app.client.get("/api/plan").json()["data"] is None
    job = app.post("/api/apply", {"plan_id": first["plan"]["id"]}, 202)["job"]
    while job["state"] == "running":
        job = app.client.get(f"/api/jobs/{job['id']}").json()["job"]
    assert job["state"] == "failed" and "not a proposal" in job["message"]

    away = app.plan()
    reason = f"{ANA} is away until 2026-12-14, set by admin"
    handed_on = [c for c in away["changes"] if c["field"] == "assignees" and reason in c["reason"]]
    assert handed_on and all(ANA in c["before"] and ANA not in c["after"] for c in handed_on)
    assert f"{ANA}: away until 2026-12-14, set by admin" in away["plan"]["notes"]
    assert moves(away) != moves(first) and held

    back = app.post("/api/reps/back", {"rep": "Ana Alvarez"})
    assert back["message"] == f"{ANA}: available from now on" and row(back["data"], ANA)["available"]
    assert row(back["data"], ANA)["overrides"] == []
    assert moves(app.plan()) == moves(first)  # balance as before the override


def test_back_for_a_rep_away_in_the_export_is_an_override_naming_who(app: App) -> None:
    answer = app.post("/api/reps/back", {"rep": "Jonas Jansen"})
    jonas = row(answer["data"], "Jonas Jansen")
    assert jonas["available"] and jonas["availability"] == "available, set by admin"


# --------------------------------------------------------------------------- capacity, quota, reset
def test_capacity_quota_and_reset(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    # an override set by the command line and one set on the page each say who set them
    assert main(["-c", str(app.config), "reps", "quota", "chloe", "1000", "--today", TODAY.isoformat()]) == 0
    app.post("/api/reps/quota", {"rep": "dmitri", "amount": 2000})
    texts = {o["text"] for o in app.client.get("/api/reps").json()["data"]["overrides"]}
    assert texts == {"quota 1,000, set by command", "quota 2,000, set by admin"}
    app.post("/api/reps/reset", {"rep": "chloe"})
    app.post("/api/reps/reset", {"rep": "dmitri"})
    answer = app.post("/api/reps/capacity", {"rep": "ben", "tasks": 2, "value": 50000})
    assert answer["message"] == "Ben Brooks: capacity 2 tasks, set by admin; capacity value 50,000, set by admin"
    ben = row(answer["data"], "Ben Brooks")
    assert (ben["capacity"], ben["capacity_value"]) == (2, 50000)
    assert "Ben Brooks: capacity 2 tasks, set by admin" in app.plan()["plan"]["notes"]
    quota = app.post("/api/reps/quota", {"rep": "ben.brooks@example.com", "amount": 90000})
    assert row(quota["data"], "Ben Brooks")["quota"] == 90000
    assert quota["message"] == "Ben Brooks: quota 90,000, set by admin"
    assert (
        app.post("/api/reps/capacity", {"rep": "ben", "tasks": 3})["message"]
        == "Ben Brooks: capacity 3 tasks, set by admin"
    )
    reset = app.post("/api/reps/reset", {"rep": "R002"})
    assert reset["message"] == "Ben Brooks: 3 override(s) removed; as in the reps export again"
    assert reset["data"]["overrides"] == [] and row(reset["data"], "Ben Brooks")["capacity"] == 34
    assert app.cli_json(capsys, "reps")["overrides"] == []


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("away", {"rep": "nobody"}, "no rep named 'nobody' in the reps export"),
        ("away", {"rep": "e"}, "'e' names several reps"),
        ("away", {}, "missing 'rep'"),
        ("away", {"rep": "ana", "until": "soon"}, "--until 'soon': expected a date (YYYY-MM-DD) or a span"),
        ("away", {"rep": "ana", "until": "2026-02-30"}, "--until '2026-02-30': expected a date"),
        ("away", {"rep": "ana", "until": "2020-01-01"}, "--until 2020-01-01 is before today (2026-11-02)"),
        ("away", {"rep": "ana", "until": 14}, "'until': expected a date"),
        ("capacity", {"rep": "ana", "tasks": -3}, "a capacity cannot be negative"),
        ("capacity", {"rep": "ana", "tasks": 3, "value": -1}, "a capacity cannot be negative"),
        ("capacity", {"rep": "ana", "tasks": "3"}, "'tasks': expected a whole number"),
        ("capacity", {"rep": "ana", "tasks": 2.5}, "'tasks': expected a whole number"),
        ("capacity", {"rep": "ana", "tasks": True}, "'tasks': expected a whole number"),
        ("capacity", {"rep": "ghost", "tasks": 3}, "no rep named 'ghost'"),
        ("quota", {"rep": "ana", "amount": -5}, "a quota cannot be negative"),
        ("quota", {"rep": "ana"}, "'amount': expected a number"),
        ("quota", {"rep": "ana", "amount": 10**400}, "'amount': too large"),
        ("back", {"rep": "nobody"}, "no rep named 'nobody'"),
        ("reset", {"rep": "nobody"}, "no rep named 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_400_and_changes_nothing(
    app: App, action: str, body: dict[str, Any], message: str
) -> None:
    proposal = app.plan()["plan"]["id"]
    r = app.client.post(f"/api/reps/{action}", json=body)
    assert r.status_code == 400 and message in r.json()["error"] and "\n" not in r.json()["error"], r.text
    assert app.client.get("/api/reps").json()["data"]["overrides"] == []
    assert app.client.get("/api/plan").json()["data"]["plan"]["id"] == proposal  # still the proposal


def test_a_quota_or_capacity_that_is_not_a_number_is_refused_by_the_page_and_the_cli(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON's NaN and the CLI's ``nan`` used to be stored as a quota (every comparison with it false)."""
    r = app.client.post(
        "/api/reps/quota", content=b'{"rep": "ana", "amount": NaN}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "a quota must be a number, not nan"
    capsys.readouterr()
    assert main(["-c", str(app.config), "reps", "quota", "ana", "nan", "--today", TODAY.isoformat()]) == 2
    assert "a quota must be a number, not nan" in capsys.readouterr().err
    assert main(["-c", str(app.config), "reps", "capacity", "ana", "3", "--value", "inf"]) == 2
    assert "a capacity must be a number, not inf" in capsys.readouterr().err
    assert app.cli_json(capsys, "reps")["overrides"] == []


# --------------------------------------------------------------------------- a Trello member
def test_a_trello_member_is_named_as_who_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with trello_demo(tmp_path, monkeypatch) as site:
        trello_member_sets_away(site.url)


def trello_member_sets_away(url: str) -> None:
    s = requests.post(f"{url}/powerup/session", json={"token": MEMBER_TOKEN}).json()
    headers = {"Authorization": f"Bearer {s['session']}", "X-CSRF-Token": s["csrf"]}
    username = s["who"].removeprefix("trello:")
    r = requests.post(f"{url}/api/reps/away", json={"rep": "ana"}, headers=headers)
    assert r.status_code == 200, r.text
    assert row(r.json()["data"], ANA)["availability"] == f"away, set by {username}"
    plan = requests.post(f"{url}/api/plan", json={}, headers=headers).json()["data"]
    assert any(f"{ANA} is away, set by {username}" in c["reason"] for c in plan["changes"])
