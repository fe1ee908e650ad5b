"""The review page's server: login, CSRF, headers, reject-as-pin, apply with progress and undo,
the Power-Up's session and card data; on the local board and on the fake Trello, over real HTTP."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tasksync.cli import main
from tasksync.connectors.http import default_registry
from tasksync.examples import TODAY, generate
from tasksync.model import Field
from tasksync.settings import load_settings
from tasksync.sync.state import StateStore
from tasksync.testing.fake_trello import FakeTrello
from tasksync.web.cli import build_app, web_server
from tasksync.web.server import WebServer

KEY, TOKEN = "web-key", "web-service-token"
MEMBER_TOKEN, OUTSIDER_TOKEN = "member-token", "outsider-token"


@dataclass
class Site:
    """A running app on a demo board: its URL, config folder and admin token."""

    url: str
    folder: Path
    token: str
    server: WebServer
    fake: FakeTrello | None = None
    board_id: str | None = None

    def login(self) -> requests.Session:
        s = requests.Session()
        r = s.post(f"{self.url}/login", json={"token": self.token})
        assert r.status_code == 200, r.text
        s.headers["X-CSRF-Token"] = s.get(f"{self.url}/api/session").json()["csrf"]
        return s

    def board(self) -> dict[str, Any]:
        if self.fake is not None and self.board_id is not None:
            return self.fake.boards[self.board_id]
        data: dict[str, Any] = json.loads((self.folder / "board.json").read_text(encoding="utf-8"))
        return data

    def owners(self) -> dict[str, list[str]]:
        return {c["id"]: sorted(c["idMembers"]) for c in self.board()["cards"] if not c.get("closed")}


def start_site(folder: Path, extra: str = "", fake: FakeTrello | None = None, board_id: str | None = None) -> Site:
    config = folder / "tasksync.toml"
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    settings = load_settings(config)
    app = build_app(settings, today=TODAY, out=io.StringIO())
    server = web_server(settings, app, "127.0.0.1", 0).start()
    token = (folder / ".tasksync" / "web-admin-token").read_text(encoding="utf-8").strip()
    return Site(f"http://127.0.0.1:{server.port}", folder, token, server, fake, board_id)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    generate(tmp_path / "demo", cards=120)
    s = start_site(tmp_path / "demo")
    try:
        yield s
    finally:
        s.server.stop()


@contextlib.contextmanager
def trello_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Iterator[Site]:
    """The demo board on the fake Trello; one member of it has a token of their own."""
    config = generate(tmp_path / "demo", cards=40)
    board = json.loads((config.parent / "board.json").read_text(encoding="utf-8"))
    fake = FakeTrello(key=KEY, tokens=[TOKEN, MEMBER_TOKEN, OUTSIDER_TOKEN], enforce_limits=False)
    board_id = fake.add_board(board)
    fake.token_members[MEMBER_TOKEN] = fake.boards[board_id]["members"][0]["id"]
    fake.denied[board_id] = {OUTSIDER_TOKEN}
    text = config.read_text(encoding="utf-8").replace('connector = "local"', 'connector = "trello"')
    config.write_text(text + f'\n[trello]\nboards = ["{board_id}"]\n', encoding="utf-8")
    default_registry().clear()
    with fake.serve() as url:
        monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", url)
        monkeypatch.setenv("TASKSYNC_TRELLO_KEY", KEY)
        monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", TOKEN)
        s = start_site(config.parent, f'\n[web]\npowerup_api_key = "{KEY}"\n{extra}', fake, board_id)
        try:
            yield s
        finally:
            s.server.stop()


@pytest.fixture
def trello_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with trello_demo(tmp_path, monkeypatch) as s:
        yield s


def wait_job(s: requests.Session, url: str, job: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Poll a job as the page does; returns it finished and the progress seen on the way."""
    seen = [(job["done"], job["total"])]
    deadline = time.monotonic() + 120
    while job["state"] == "running":
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(0.05)
        job = s.get(f"{url}/api/jobs/{job['id']}").json()["job"]
        seen.append((job["done"], job["total"]))
    return job, seen


# --------------------------------------------------------------------------- login and CSRF
def test_admin_token_is_generated_once_0600_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path / "demo", cards=40)
    settings = load_settings(tmp_path / "demo" / "tasksync.toml")
    build_app(settings)
    path = tmp_path / "demo" / ".tasksync" / "web-admin-token"
    token = path.read_text(encoding="utf-8").strip()
    assert path.stat().st_mode & 0o777 == 0o600
    assert token in capsys.readouterr().out
    build_app(settings)
    assert token not in capsys.readouterr().out and path.read_text(encoding="utf-8").strip() == token


def test_default_binding_is_loopback(tmp_path: Path) -> None:
    generate(tmp_path / "demo", cards=40)
    settings = load_settings(tmp_path / "demo" / "tasksync.toml")
    assert settings.web.host == "127.0.0.1" and not settings.web.enabled
    server = web_server(settings, build_app(settings, out=io.StringIO()), port=0)
    try:
        assert server.sock.getsockname()[0] == "127.0.0.1"
    finally:
        server.sock.close()


def test_login_is_required_and_a_wrong_token_refused(site: Site) -> None:
    for path in ("/api/session", "/api/plan", "/api/history", "/api/reps", "/api/cards/x", "/api/jobs/x"):
        assert requests.get(site.url + path).status_code == 401, path
    assert requests.post(f"{site.url}/api/plan", json={}).status_code == 401
    assert requests.post(f"{site.url}/login", json={"token": "guess"}).status_code == 401
    assert requests.post(f"{site.url}/login", json={}).status_code == 401
    r = requests.post(f"{site.url}/login", json={"token": site.token})
    cookie = r.headers["set-cookie"].lower()
    assert r.status_code == 200 and "httponly" in cookie and "samesite=strict" in cookie
    s = site.login()
    assert s.post(f"{site.url}/logout").status_code == 200
    assert s.get(f"{site.url}/api/session").status_code == 401  # the session is gone


def test_every_write_needs_the_csrf_token_and_our_origin(site: Site) -> None:
    s = site.login()
    csrf = s.headers.pop("X-CSRF-Token")
    for path in ("/api/plan", "/api/reject", "/api/apply", "/api/undo", "/logout"):
        r = s.post(site.url + path, json={"plan_id": "x", "task_id": "x", "field": "assignees"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"], path
        r = s.post(site.url + path, json={}, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403, path
    evil = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert s.post(f"{site.url}/api/plan", json={}, headers=evil).status_code == 403
    assert requests.post(f"{site.url}/login", json={"token": site.token}, headers=evil).status_code == 403
    form = requests.post(f"{site.url}/login", data={"token": site.token})  # a cross-site form cannot send JSON
    assert form.status_code == 415
    with StateStore(site.folder / ".tasksync" / "state.sqlite3") as store:
        assert store.plans() == []  # nothing refused was done


def test_security_headers_and_no_secret_in_any_page(site: Site) -> None:
    pages = ["/review", "/login", "/powerup/", "/powerup/review.html", "/powerup/card-back.html"]
    statics = ["/static/api.js", "/static/review.js", "/static/powerup/connector.js", "/static/style.css"]
    for path in pages + statics:
        r = requests.get(site.url + path)
        assert r.status_code == 200, path
        assert site.token not in r.text and TOKEN not in r.text, path
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, path
        assert r.headers["x-content-type-options"] == "nosniff"
        if path.startswith("/powerup/"):
            assert "frame-ancestors https://trello.com https://*.trello.com" in csp
            assert "x-frame-options" not in r.headers
            assert "https://p.trellocdn.com" in csp  # Trello's client library, and only there
        else:
            assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
        if path in pages:
            assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), f"inline script in {path}"
    s = site.login()
    assert s.get(f"{site.url}/api/session").headers["cache-control"] == "no-store"


# --------------------------------------------------------------------------- the review flow
def test_the_browser_finds_the_icon_at_favicon_ico(site: Site) -> None:
    """Browsers ask for /favicon.ico unprompted: a 404 there would be a console error on every page."""
    r = requests.get(site.url + "/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.content.lstrip().startswith(b"<svg") and r.headers["x-content-type-options"] == "nosniff"


def test_reject_pins_the_card_and_the_next_plan_respects_it(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    s = site.login()
    first = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    assert first["schema"] == "tasksync.report/1" and first["changes"]
    assert s.get(f"{site.url}/api/plan").json()["data"]["plan"]["id"] == first["plan"]["id"]
    move = next(c for c in first["changes"] if c["field"] == "assignees")
    body = {"plan_id": first["plan"]["id"], "task_id": move["task_id"], "field": "assignees"}
    second = s.post(f"{site.url}/api/reject", json=body).json()["data"]
    assert second["plan"]["id"] != first["plan"]["id"]
    assert not [c for c in second["changes"] if c["task_id"] == move["task_id"] and c["field"] == "assignees"]
    with StateStore(site.folder / ".tasksync" / "state.sqlite3") as store:
        assert (move["task_id"], Field.ASSIGNEES) in store.person_owned(store.plans()[0].board)
    # the command line's next plan respects the pin too
    capsys.readouterr()
    assert main(["-c", str(site.folder / "tasksync.toml"), "plan", "--json", "--today", TODAY.isoformat()]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert not [c for c in cli["changes"] if c["task_id"] == move["task_id"] and c["field"] == "assignees"]
    # a stale proposal cannot be edited
    stale = s.post(f"{site.url}/api/reject", json=body)
    assert stale.status_code == 400 and "latest proposal" in stale.json()["error"]


def test_apply_reports_progress_changes_the_board_and_undo_restores_it(site: Site) -> None:
    s = site.login()
    before = site.owners()
    data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    moves = {c["task_id"] for c in data["changes"] if c["field"] == "assignees"}
    r = s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]})
    assert r.status_code == 202
    job, seen = wait_job(s, site.url, r.json()["job"])
    assert job["state"] == "done", job["message"]
    total = len(data["plan"]["changes"]) + len(data["plan"]["creates"])
    assert job["done"] == job["total"] and job["total"] >= len(moves)
    assert all(d <= t or t == 0 for d, t in seen) and total > 0
    after = site.owners()
    assert moves and all(after[t] != before[t] for t in moves)
    history = s.get(f"{site.url}/api/history").json()["plans"]
    applied = next(p for p in history if p["id"] == data["plan"]["id"])
    assert applied["status"] == "applied" and applied["can_undo"]
    # applying the same plan twice is refused (it is no longer a proposal)
    again = s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"]
    again, _ = wait_job(s, site.url, again)
    assert again["state"] == "failed" and "not a proposal" in again["message"]
    undo = s.post(f"{site.url}/api/undo", json={"plan_id": data["plan"]["id"]}).json()["job"]
    undo, _ = wait_job(s, site.url, undo)
    assert undo["state"] == "done", undo["message"]
    restored = site.owners()
    assert all(restored[t] == before[t] for t in moves)
    statuses = {p["id"]: p["status"] for p in s.get(f"{site.url}/api/history").json()["plans"]}
    assert statuses[data["plan"]["id"]] == "undone"


def test_apply_refuses_a_plan_made_before_the_board_changed(site: Site) -> None:
    s = site.login()
    data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    board = site.board()
    card = next(c for c in board["cards"] if c["idMembers"])
    card["idMembers"] = []  # a person unassigns a card after the plan
    (site.folder / "board.json").write_text(json.dumps(board), encoding="utf-8")
    job, _ = wait_job(s, site.url, s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"])
    assert job["state"] == "failed" and "changed since plan" in job["message"]


# --------------------------------------------------------------------------- Trello and the Power-Up
def test_review_flow_on_the_fake_trello(trello_site: Site) -> None:
    site = trello_site
    s = site.login()
    before = site.owners()
    data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    moves = {c["task_id"] for c in data["changes"] if c["field"] == "assignees"}
    job = s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"]
    job, _ = wait_job(s, site.url, job)
    assert job["state"] == "done", job["message"]
    assert moves and all(site.owners()[t] != before[t] for t in moves)
    undo, _ = wait_job(s, site.url, s.post(f"{site.url}/api/undo", json={"plan_id": data["plan"]["id"]}).json()["job"])
    assert undo["state"] == "done" and all(site.owners()[t] == before[t] for t in moves)


def test_powerup_session_only_for_a_member_of_the_board(trello_site: Site) -> None:
    site = trello_site
    url = f"{site.url}/powerup/session"
    assert requests.post(url, json={"token": OUTSIDER_TOKEN}).status_code == 401  # no access to the board
    assert requests.post(url, json={"token": "nobody"}).status_code == 401  # not a Trello token
    assert requests.post(url, json={"token": TOKEN}).status_code == 401  # valid, but its member is unknown
    r = requests.post(url, json={"token": MEMBER_TOKEN})
    assert r.status_code == 200
    session = r.json()
    assert session["who"].startswith("trello:") and "set-cookie" not in r.headers
    bearer = {"Authorization": f"Bearer {session['session']}"}
    assert requests.get(f"{site.url}/api/history", headers=bearer).status_code == 200
    assert requests.post(f"{site.url}/api/plan", json={}, headers=bearer).status_code == 403  # CSRF still needed
    ok = requests.post(f"{site.url}/api/plan", json={}, headers={**bearer, "X-CSRF-Token": session["csrf"]})
    assert ok.status_code == 200


def test_card_data_comes_from_the_state_store(trello_site: Site) -> None:
    site = trello_site
    s = site.login()
    data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    moved = next(c for c in data["changes"] if c["field"] == "assignees")
    prio = next(c for c in data["changes"] if c["field"] == "priority")
    assert s.get(f"{site.url}/api/cards/{moved['task_id']}").json()["history"] == []  # proposals are not history
    wait_job(s, site.url, s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"])
    assert site.fake is not None
    site.fake.reset_log()
    info = s.get(f"{site.url}/api/cards/{moved['task_id']}").json()
    assert info["owner_reason"] == moved["reason"]
    assert info["history"][0]["plan_id"] == data["plan"]["id"]
    tier = s.get(f"{site.url}/api/cards/{prio['task_id']}").json()["tier"]
    assert tier == prio["after"]
    assert site.fake.requests_to() <= 2  # read from the state store, not a new plan
    undo, _ = wait_job(s, site.url, s.post(f"{site.url}/api/undo", json={"plan_id": data["plan"]["id"]}).json()["job"])
    assert undo["state"] == "done"
    info = s.get(f"{site.url}/api/cards/{moved['task_id']}").json()
    undo_id = undo["result"]["plan_id"]
    assert info["history"][0]["kind"] == "undo" and info["history"][0]["plan_id"] == undo_id
    assert {h["status"] for h in info["history"] if h["plan_id"] == data["plan"]["id"]} == {"undone"}
    assert info["owner_reason"] == info["history"][0]["reason"] != moved["reason"]


def test_a_rejected_priority_is_left_alone_and_shown_by_name(site: Site) -> None:
    s = site.login()
    first = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    change = next(c for c in first["changes"] if c["field"] == "priority")
    body = {"plan_id": first["plan"]["id"], "task_id": change["task_id"], "field": "priority"}
    second = s.post(f"{site.url}/api/reject", json=body).json()["data"]
    assert not [c for c in second["changes"] if c["task_id"] == change["task_id"] and c["field"] == "priority"]
    kept = [c for c in second["left_alone"] if c["task_id"] == change["task_id"]]
    assert kept == [
        {
            "task_id": change["task_id"],
            "title": change["title"],
            "field": "priority",
            "now": change["before"],
            "wanted": change["after"],
        }
    ]


def test_one_write_at_a_time_and_progress_while_it_runs(trello_site: Site) -> None:
    site = trello_site
    assert site.fake is not None
    s = site.login()
    data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
    site.fake.latency = 0.05  # every request of the apply takes a while
    job = s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"]
    busy = s.post(f"{site.url}/api/plan", json={})
    assert busy.status_code == 409 and "running" in busy.json()["error"]
    assert s.post(f"{site.url}/api/undo", json={"plan_id": data["plan"]["id"]}).status_code == 409
    job, seen = wait_job(s, site.url, job)
    assert job["state"] == "done"
    assert any(0 < done < total for done, total in seen), seen  # the page saw the apply in progress
    site.fake.latency = 0.0
    assert s.post(f"{site.url}/api/plan", json={}).status_code == 200  # free again


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_tasksync_web_serves_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    import subprocess
    import sys

    generate(tmp_path / "demo", cards=40)
    config = tmp_path / "demo" / "tasksync.toml"
    cmd = [sys.executable, "-c", "import sys; from tasksync.cli import main; sys.exit(main())"]
    proc = subprocess.Popen(
        [*cmd, "-c", str(config), "web", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        token_line, url_line = proc.stdout.readline(), proc.stdout.readline()
        token = (tmp_path / "demo" / ".tasksync" / "web-admin-token").read_text(encoding="utf-8").strip()
        assert token in token_line and "0600" in token_line
        url = re.search(r"http://127\.0\.0\.1:\d+/review", url_line)
        assert url, url_line
        assert requests.get(url.group(0)).status_code == 200
        assert requests.post(url.group(0).replace("/review", "/login"), json={"token": token}).status_code == 200
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    # the port taken: one line, exit 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*cmd, "-c", str(config), "web", "--port", str(port)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().startswith(f"tasksync: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in done.stderr and token not in done.stdout  # printed once only


def test_the_command_line_does_not_load_the_web_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tasksync.cli; tasksync.cli.build_parser(); "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_serve_serves_the_review_page_and_webhooks_with_web_enabled(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tasksync.service.webhooks import asana_signature
    from tasksync.sync.workspace import Workspace

    generate(tmp_path / "demo", cards=40)
    config = tmp_path / "demo" / "tasksync.toml"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(
        config.read_text(encoding="utf-8") + f"\n[web]\nenabled = true\nport = {port}\n", encoding="utf-8"
    )
    settings = load_settings(config)
    with Workspace(settings) as ws:  # a secret an earlier version kept in the state database (0644)
        ws.store.put(str(ws.connector.board), "service.asana_hook_secret", "legacy-secret")
        board = str(ws.connector.board)
    cmd = [sys.executable, "-c", "import sys; from tasksync.cli import main; sys.exit(main())"]
    args = ["-c", str(config), "serve", "--interval", "3600", "--log-json", "--today", TODAY.isoformat()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSYNC_")}
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if '"web.listening"' in line:
                break
        deadline = time.monotonic() + 120
        while requests.get(f"{url}/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the service never became healthy"
            time.sleep(0.1)
        review = requests.get(f"{url}/review")
        assert review.status_code == 200 and "frame-ancestors 'none'" in review.headers["content-security-policy"]
        assert requests.post(f"{url}/asana", headers={"X-Hook-Secret": "attacker"}).status_code == 401
        body = b'{"events":[]}'
        signed = {"X-Hook-Signature": asana_signature("legacy-secret", body)}
        assert requests.post(f"{url}/asana", data=body, headers=signed).status_code == 200
        secret_file = tmp_path / "demo" / ".tasksync" / "asana-webhook-secret"
        assert secret_file.read_text(encoding="utf-8") == "legacy-secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0  # as long as it may take to become healthy under load
    finally:
        proc.kill()
        proc.wait()
    with StateStore(settings.path(settings.state_path)) as store:
        assert not store.get(board, "service.asana_hook_secret")  # moved out of the database


def test_bad_input_is_one_line_error_not_a_crash(site: Site) -> None:
    s = site.login()
    (site.folder / "crm" / "deals.csv").unlink()
    r = s.post(f"{site.url}/api/plan", json={})
    assert r.status_code == 400 and "deals" in r.json()["error"] and "\n" not in r.json()["error"]
    assert s.post(f"{site.url}/api/reject", json={"plan_id": "x", "task_id": "y", "field": "colour"}).status_code == 400
    assert s.post(f"{site.url}/api/apply", json={"plan_id": 7}).status_code == 400
    assert s.post(f"{site.url}/api/apply", data="{", headers={"Content-Type": "application/json"}).status_code == 400


def test_a_plan_requested_while_another_is_planning_waits_for_that_plan(trello_site: Site) -> None:
    """Two tabs (or a refresh) plan at once: one plan is computed and both get it, no 409."""
    import threading

    site = trello_site
    assert site.fake is not None
    s1, s2 = site.login(), site.login()
    site.fake.latency = 0.3  # the board read takes a while: the second request comes in meanwhile
    answers: dict[str, requests.Response] = {}

    def post(name: str, s: requests.Session) -> None:
        answers[name] = s.post(f"{site.url}/api/plan", json={})

    first = threading.Thread(target=post, args=("first", s1))
    first.start()
    time.sleep(0.3)
    post("second", s2)
    first.join()
    site.fake.latency = 0.0
    assert answers["first"].status_code == 200, answers["first"].text
    assert answers["second"].status_code == 200, answers["second"].text
    ids = {a.json()["data"]["plan"]["id"] for a in answers.values()}
    assert len(ids) == 1  # one computation, shared
    with StateStore(site.folder / ".tasksync" / "state.sqlite3") as store:
        assert len(store.plans()) == 1
