"""The service against the fake Trello over loopback: change detection by actions, request budget."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from tasksync.cli import main
from tasksync.connectors.http import LimiterRegistry, ScaledClock, trello_session
from tasksync.connectors.trello import TrelloConnector
from tasksync.errors import TransientError
from tasksync.examples import TODAY, generate
from tasksync.model import Field, JournalStatus, TaskWrite, WriteResult
from tasksync.service.loop import FAILING, SyncService
from tasksync.settings import Secrets, Settings, TrelloSettings, settings_from_mapping
from tasksync.testing.fake_trello import FakeTrello
from test_service import CARDS, SimClock, add_deal, settle

KEY, TOKEN = "fake-key", "fake-token"
RATE_CLOCK = ScaledClock(50.0)  # rate-limit windows pass 50 times faster (fake and limiter alike)


@pytest.fixture
def fake() -> FakeTrello:
    return FakeTrello(key=KEY, tokens=[TOKEN], clock=RATE_CLOCK)


@pytest.fixture
def url(fake: FakeTrello) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def trello_demo(folder: Path, fake: FakeTrello, url: str) -> tuple[Settings, str]:
    generate(folder, cards=CARDS)
    board_id = fake.add_board(json.loads((folder / "board.json").read_text(encoding="utf-8")))
    raw = tomllib.loads((folder / "tasksync.toml").read_text(encoding="utf-8"))
    raw["connector"] = "trello"
    raw["policy"]["name"] = "balanced"  # the service against the fake: every policy shares it; fast
    raw["trello"] = {"boards": [board_id], "api_url": url}
    settings = settings_from_mapping(raw, base_dir=folder)
    settings.secrets = Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url)  # type: ignore[arg-type]
    return settings, board_id


def service(settings: Settings, url: str, clock: SimClock) -> SyncService:
    conn = TrelloConnector(
        settings, session=trello_session(url, registry=LimiterRegistry(RATE_CLOCK), timeout=(2.0, 5.0))
    )
    return SyncService(settings, connector=conn, clock=clock, sleep=clock.sleep, today=TODAY)


def person(url: str, method: str, path: str, **params: Any) -> Any:
    """A request as a person's Trello client would send it."""
    resp = requests.request(method, f"{url}{path}", params={"key": KEY, "token": TOKEN, **params}, timeout=5)
    resp.raise_for_status()
    return resp.json()


def new_card(fake: FakeTrello, url: str, board_id: str, deal_id: str) -> str:
    board = fake.board(board_id)
    lst = next(lst for lst in board["lists"] if lst["name"] == "Proposal")
    link = next(f for f in board["customFields"] if f["name"] == "CRM ID")
    created = person(url, "POST", "/cards", idList=lst["id"], name=f"New business {deal_id}")
    resp = requests.put(
        f"{url}/cards/{created['id']}/customField/{link['id']}/item",
        params={"key": KEY, "token": TOKEN},
        json={"value": {"text": deal_id}},
        timeout=5,
    )
    resp.raise_for_status()
    return str(created["id"])


def test_idle_board_costs_one_request_per_interval(tmp_path: Path, fake: FakeTrello, url: str) -> None:
    settings, _ = trello_demo(tmp_path / "demo", fake, url)
    clock = SimClock()
    svc = service(settings, url, clock)
    settle(svc, clock)
    fake.reset_log()
    hour = int(3600 / svc.cfg.interval)
    for _ in range(hour - 1):  # an hour of iterations, the periodic full read included
        clock.sleep(svc.cfg.interval)
        assert svc.run_once().error is None
    reads = sum(1 for r in fake.log if r.method == "GET")
    assert fake.requests_to("GET", r"/actions") == hour - 1
    assert reads <= hour, f"{reads} requests in an idle hour"
    assert fake.requests_to("PUT") == 0 and fake.requests_to("POST") == 0


def test_new_card_assigned_and_human_edit_kept(tmp_path: Path, fake: FakeTrello, url: str) -> None:
    folder = tmp_path / "demo"
    settings, board_id = trello_demo(folder, fake, url)
    add_deal(folder, "D92000")
    add_deal(folder, "D92001")
    clock = SimClock()
    svc = service(settings, url, clock)
    settle(svc, clock)

    card_id = new_card(fake, url, board_id, "D92000")
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.reason == "board" and res.plan_id
    (owner,) = fake.card(card_id)["idMembers"]

    other = next(m["id"] for m in fake.board(board_id)["members"] if m["id"] != owner)
    person(url, "PUT", f"/cards/{card_id}", idMembers=other)
    for _ in range(3):
        clock.sleep(svc.cfg.interval)
        assert svc.run_once().error is None
    assert fake.card(card_id)["idMembers"] == [other]


def test_refused_token_reports_failing_at_once(tmp_path: Path, fake: FakeTrello, url: str) -> None:
    """A wrong token never heals: `tasksync status` says "failing" (exit 1) after one iteration,
    not "healthy, retrying" (exit 0) until three have failed."""
    settings, _ = trello_demo(tmp_path / "demo", fake, url)
    settings.secrets = Secrets(trello_key=KEY, trello_token="not-the-token", trello_api_url=url)  # type: ignore[arg-type]
    clock = SimClock()
    svc = service(settings, url, clock)
    res = svc.run_once()
    svc.close()
    assert res.error and "401" in res.error
    config = str(tmp_path / "demo" / "tasksync.toml")
    assert main(["-c", config, "status"]) == FAILING


def test_lost_connection_is_not_a_board_too_big(tmp_path: Path, fake: FakeTrello, url: str) -> None:
    """A dropped connection says nothing about the board's size: the read is tried
    ``max_attempts`` times, not again as a paged read (12 attempts and 22 s on a dead host)."""
    board = fake.make_board(cards=5)
    settings = Settings(
        connector="trello",
        trello=TrelloSettings(boards=[board], api_url=url),
        secrets=Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url),  # type: ignore[arg-type]
    )
    session = trello_session(url, registry=LimiterRegistry(RATE_CLOCK), timeout=(2.0, 5.0))
    session.backoff = session.max_backoff = 0.001
    conn = TrelloConnector(settings, session=session)
    fake.fail_next("GET", r"^/boards/", "drop", times=50)
    with pytest.raises(TransientError):
        conn.read()
    assert fake.requests_to("GET") == session.max_attempts
    assert fake.requests_to("GET", r"/cards") == 0


def test_a_card_reassigned_during_the_apply_is_left_to_the_person(tmp_path: Path, fake: FakeTrello, url: str) -> None:
    """Freshness is checked for each write, not once at the start of the apply: a person's
    change made while the plan is being applied is a conflict, never overwritten."""
    folder = tmp_path / "demo"
    settings, board_id = trello_demo(folder, fake, url)
    add_deal(folder, "D92100")
    clock = SimClock()
    svc = service(settings, url, clock)
    settle(svc, clock)
    card_id = new_card(fake, url, board_id, "D92100")
    members = [m["id"] for m in fake.board(board_id)["members"]]
    send = svc.connector.write
    chosen: list[str] = []

    def write(writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        writes = list(writes)
        mine = next((w for w in writes if w.task_id == card_id), None)
        if mine is not None:  # the board was read and planned; the writes are about to go
            chosen.append(next(m for m in members if (m,) != mine.values.get(Field.ASSIGNEES)))
            person(url, "PUT", f"/cards/{card_id}", idMembers=chosen[0])
        yield from send(writes)

    svc.connector.write = write  # type: ignore[method-assign]
    clock.sleep(svc.cfg.interval)
    res = svc.run_once()
    assert res.plan_id and chosen, res
    assert fake.card(card_id)["idMembers"] == [chosen[0]], "the person's choice stands"
    rows = [r for r in svc.store.journal(res.plan_id) if r.task_id == card_id]
    assert rows and all(r.status == JournalStatus.CONFLICT for r in rows)
    for _ in range(2):
        clock.sleep(svc.cfg.interval)
        assert svc.run_once().error is None
    assert fake.card(card_id)["idMembers"] == [chosen[0]]
