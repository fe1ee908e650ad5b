"""The Trello connector against the fake Trello: request counts, limits, faults, errors, spec.

Most tests serve the fake on loopback (the connector's real HTTP path, py-trello included);
one runs through ``responses`` at the vendor's own URL. Rate-limit tests share a scaled clock
between the fake and the limiter so that 10-second windows pass in a fraction of a second.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import responses

from contract import ConnectorContract, sample_trello_board
from tasksync.connectors.base import BatchReader, Commenter, Connector, marker_for
from tasksync.connectors.http import (
    ApiSession,
    LimiterRegistry,
    ScaledClock,
    SlidingWindowLimiter,
    redact,
    trello_session,
)
from tasksync.connectors.local import LocalConnector
from tasksync.connectors.trello import TrelloConnector, parse_board_id
from tasksync.connectors.trello_boards import connectors_for, read_boards
from tasksync.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
    TransientError,
)
from tasksync.model import Field, NewTask, TaskWrite, WriteResult, WriteStatus
from tasksync.settings import LocalSettings, Secrets, Settings, TrelloSettings
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN = "fake-key", "fake-token"
MISSING = "5f" + "e" * 22  # a well-formed id of no card
SPECS = Path(__file__).resolve().parent / "specs"


def trello_settings(url: str, boards: list[str], **trello: Any) -> Settings:
    return Settings(
        connector="trello",
        trello=TrelloSettings(boards=boards, api_url=url, **trello),
        secrets=Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url),  # type: ignore[arg-type]
    )


def connect(
    url: str,
    board: str,
    registry: LimiterRegistry,
    *,
    timeout: tuple[float, float] = (2.0, 5.0),
    max_workers: int = 4,
    page_size: int = 1000,
    check_every: int = 20,
    **trello: Any,
) -> TrelloConnector:
    session = trello_session(url, registry=registry, timeout=timeout)
    return TrelloConnector(
        trello_settings(url, [board], **trello),
        session=session,
        max_workers=max_workers,
        page_size=page_size,
        check_every=check_every,
    )


@pytest.fixture
def fake() -> FakeTrello:
    return FakeTrello(key=KEY, tokens=[TOKEN])


@pytest.fixture
def url(fake: FakeTrello) -> Iterator[str]:
    with fake.serve() as base:
        yield base


@pytest.fixture
def registry() -> LimiterRegistry:
    return LimiterRegistry()


def reassign(conn: TrelloConnector, n: int, *, priority_every: int = 0) -> list[TaskWrite]:
    """Writes moving ``n`` cards to another member and the next list (and tier, every k-th)."""
    snap = conn.read()
    members = [m.id for m in snap.members]
    stages = [s.id for s in snap.stages]
    writes = []
    for i, t in enumerate(snap.tasks[:n]):
        other = next(m for m in members[i % len(members) :] + members if (m,) != t.assignees)
        values: dict[Field, Any] = {
            Field.ASSIGNEES: (other,),
            Field.STAGE: stages[(stages.index(t.stage_id) + 1) % len(stages)],
        }
        if priority_every and i % priority_every == 0:
            opts = snap.priority_options or tuple(conn.settings.priority.tiers)
            values[Field.PRIORITY] = next(o for o in opts if o != t.priority)
        writes.append(TaskWrite(t.id, values))
    return writes


def assert_landed(fake: FakeTrello, writes: list[TaskWrite]) -> None:
    """Every write's values are on the fake's cards."""
    for w in writes:
        card = fake.card(w.task_id)
        for f, v in w.values.items():
            if f is Field.ASSIGNEES:
                assert tuple(sorted(card["idMembers"])) == v
            elif f is Field.STAGE:
                assert card["idList"] == v


def by_hand(fake: FakeTrello, card_id: str, **fields: Any) -> None:
    """A person changes a card (through the API, as Trello's own UI does)."""
    url = f"/1/cards/{card_id}?key={KEY}&token={TOKEN}"
    resp = fake.handle("PUT", url, json.dumps(fields).encode(), {"Content-Type": "application/json"})
    assert resp.status == 200, resp


# ---------------------------------------------------------------------- contract


class TestLocalContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        path = tmp_path / "board.json"
        path.write_text(json.dumps(sample_trello_board()), encoding="utf-8")
        return LocalConnector(Settings(local=LocalSettings(path=path), base_dir=tmp_path))


class TestTrelloContract(ConnectorContract):
    @pytest.fixture
    def connector(self, fake: FakeTrello, url: str, registry: LimiterRegistry) -> Connector:
        board = fake.add_board(sample_trello_board())
        return connect(url, board, registry)


# ---------------------------------------------------------------------- reading


def test_read_is_one_request_per_board(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=300, members=12)
    conn = connect(url, board, registry)
    snap = conn.read()
    assert fake.requests_to() == 1
    assert len(snap.tasks) == 300 and len(snap.members) == 12 and len(snap.stages) == 4
    assert snap.priority_options == ("P1", "P2", "P3", "P4")
    assert all(t.priority in snap.priority_options and t.crm_ref for t in snap.tasks)


def test_board_by_url_or_short_link(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=3)
    short = fake.board(board)["shortLink"]
    assert parse_board_id(f"https://trello.com/b/{short}/sales-pipeline") == short
    assert parse_board_id(board) == board
    with pytest.raises(ConfigError):
        parse_board_id("not a board")
    conn = connect(url, f"https://trello.com/b/{short}/sales", registry)
    assert len(conn.read().tasks) == 3 and conn.board.id == short


def test_twelve_boards_read_with_two_batch_requests(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    boards = [fake.make_board(cards=5 + i, members=3, seed=i) for i in range(12)]
    settings = trello_settings(url, boards)
    conns = connectors_for(settings, session=trello_session(url, registry=registry))
    snaps = read_boards(conns)
    assert fake.requests_to() == 2 and fake.requests_to("GET", r"^/batch") == 2
    assert [len(s.tasks) for s in snaps if not isinstance(s, Exception)] == [5 + i for i in range(12)]
    # Writes after a batch read need no further read.
    fake.reset_log()
    t = snaps[0]
    assert not isinstance(t, Exception)
    results = list(conns[0].write([TaskWrite(t.tasks[0].id, {Field.ASSIGNEES: ()})]))
    assert results[0].ok and fake.requests_to() == 1


def test_read_many_is_the_batch_reader_capability(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    boards = [fake.make_board(cards=3 + i, seed=i) for i in range(3)]
    conn = connect(url, boards[0], registry)
    assert isinstance(conn, BatchReader)
    snaps = conn.read_many(boards)
    assert fake.requests_to() == 1 and [len(s.tasks) for s in snaps if not isinstance(s, Exception)] == [3, 4, 5]


def test_batch_reports_a_missing_board_in_place(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    good = fake.make_board(cards=4)
    missing = "5f00000000000000000000ff"
    conns = connectors_for(trello_settings(url, [good, missing]), session=trello_session(url, registry=registry))
    first, second = read_boards(conns)
    assert not isinstance(first, Exception) and len(first.tasks) == 4
    assert isinstance(second, NotFoundError) and missing in str(second)


def test_large_board_falls_back_to_paging_without_loss(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    fake.max_board_cards = 100
    board = fake.make_board(cards=250, members=5)
    conn = connect(url, board, registry, page_size=100)
    snap = conn.read()
    assert len(snap.tasks) == 250 and len({t.id for t in snap.tasks}) == 250
    statuses = [r.status for r in fake.log]
    assert statuses == [449, 200, 200, 200, 200]  # refused, board, 3 card pages
    pages = [r for r in fake.log if r.path.endswith("/cards")]
    assert [p.query.get("before") is None for p in pages] == [True, False, False]
    assert all(t.priority for t in snap.tasks), "custom field items come with the pages"
    # Same board, same tasks as the nested read gives.
    fake.max_board_cards = 5000
    nested = conn.read()
    assert sorted(nested.tasks, key=lambda t: t.id) == sorted(snap.tasks, key=lambda t: t.id)
    assert nested.fingerprint() == snap.fingerprint()
    # In a /batch read, the refused board goes straight to paging.
    fake.max_board_cards = 100
    fake.reset_log()
    (batched,) = read_boards([conn])
    assert not isinstance(batched, Exception) and batched.fingerprint() == snap.fingerprint()
    assert [r.status for r in fake.log if not r.via_batch] == [200, 200, 200, 200, 200]


# ---------------------------------------------------------------------- writing


def test_writes_are_one_put_per_card_plus_priority_items(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=40, members=6)
    conn = connect(url, board, registry)
    writes = reassign(conn, 30, priority_every=3)
    fake.reset_log()
    results = list(conn.write(writes))
    assert len(results) == 30 and all(r.ok for r in results)
    assert sorted(r.task_id for r in results) == sorted(w.task_id for w in writes)
    assert fake.requests_to("PUT", r"^/cards/[^/]+$") == 30
    assert fake.requests_to("PUT", r"/customField/[^/]+/item$") == 10
    assert fake.requests_to() == 40
    assert_landed(fake, writes)
    # Priority alone: only the custom field request.
    snap = conn.read()
    fake.reset_log()
    t = snap.tasks[0]
    new = next(o for o in snap.priority_options if o != t.priority)
    assert all(r.ok for r in conn.write([TaskWrite(t.id, {Field.PRIORITY: new})]))
    assert fake.requests_to() == 1 and fake.requests_to("PUT", "/item$") == 1
    assert conn.read().task(t.id).priority == new  # type: ignore[union-attr]


def test_several_members_on_one_card(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=3, members=4), registry)
    snap = conn.read()
    t, members = snap.tasks[0], tuple(sorted(m.id for m in snap.members))[:3]
    fake.reset_log()
    assert all(r.ok for r in conn.write([TaskWrite(t.id, {Field.ASSIGNEES: members})]))
    assert fake.log[0].body == {"idMembers": ",".join(members)}
    assert conn.read().task(t.id).assignees == members  # type: ignore[union-attr]


def test_no_writes_no_requests(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=5), registry)
    conn.read()
    fake.reset_log()
    assert list(conn.write([])) == [] and list(conn.create([])) == []
    assert fake.requests_to() == 0


def test_closing_a_card(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=5), registry)
    t = conn.read().tasks[0]
    assert all(r.ok for r in conn.write([TaskWrite(t.id, {Field.CLOSED: True})]))
    assert fake.card(t.id)["closed"] is True
    assert conn.read().task(t.id) is None


def test_priority_as_labels(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=4, priority_tiers=None)
    fake.board(board)["labels"] += [{"id": fake.new_id(), "name": t, "color": "green"} for t in ("P1", "P2")]
    conn = connect(url, board, registry)
    conn.settings.priority.use_labels = True
    t = conn.read().tasks[0]
    fake.reset_log()
    assert all(r.ok for r in conn.write([TaskWrite(t.id, {Field.PRIORITY: "P2"})]))
    assert fake.requests_to() == 1
    assert conn.read().task(t.id).priority == "P2"  # type: ignore[union-attr]
    assert all(r.ok for r in conn.write([TaskWrite(t.id, {Field.PRIORITY: "P1"})]))
    assert conn.read().task(t.id).priority == "P1"  # type: ignore[union-attr]


def test_missing_priority_field_is_a_clear_error_before_writing(
    fake: FakeTrello, url: str, registry: LimiterRegistry
) -> None:
    board = fake.make_board(cards=4, priority_tiers=None)
    conn = connect(url, board, registry)
    t = conn.read().tasks[0]
    fake.reset_log()
    with pytest.raises(ConfigError, match=r"Priority.*create_priority_field"):
        list(conn.write([TaskWrite(t.id, {Field.PRIORITY: "P1"})]))
    assert fake.requests_to() == 0
    # With consent the field is created once, then used.
    conn = connect(url, board, registry, create_priority_field=True)
    conn.read()
    fake.reset_log()
    writes = [TaskWrite(t.id, {Field.PRIORITY: "P1"}) for t in conn.read().tasks[:2]]
    fake.reset_log()
    assert all(r.ok for r in conn.write(writes))
    assert fake.requests_to("POST", r"^/customFields$") == 1
    assert [o["value"]["text"] for o in fake.board(board)["customFields"][-1]["options"]] == [
        "P1",
        "P2",
        "P3",
        "P4",
    ]
    assert {t.priority for t in conn.read().tasks[:2]} == {"P1"}


# ---------------------------------------------------------------------- creating


def test_create_after_lost_answer_finds_the_first_card(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=5)
    conn = connect(url, board, registry)
    snap = conn.read()
    new = NewTask("D-NEW-1", "New deal", snap.stages[0].id, (snap.members[0].id,), "P2")
    fake.fail_next("POST", r"^/cards$", "drop_after")  # created, but the answer is lost
    results = list(conn.create([new]))
    assert len(results) == 1 and results[0].ok, results
    marked = [c for c in fake.board(board)["cards"] if marker_for(new.key) in c["desc"]]
    assert len(marked) == 1 and marked[0]["id"] == results[0].task_id
    assert fake.requests_to("POST", r"^/cards$") == 1
    # A retried create (new process, fresh read) finds it without posting.
    again = connect(url, board, registry)
    fake.reset_log()
    assert [r.task_id for r in again.create([new])] == [results[0].task_id]
    assert fake.requests_to("POST") == 0
    got = again.read().task(results[0].task_id)
    assert got is not None and got.crm_ref == "D-NEW-1" and got.priority == "P2"
    assert got.custom_fields and "D-NEW-1" in got.custom_fields.values()


def test_a_card_created_half_made_names_its_board_and_card_once(
    fake: FakeTrello, url: str, registry: LimiterRegistry
) -> None:
    board = fake.make_board(cards=2)
    conn = connect(url, board, registry)
    snap = conn.read()
    fake.fail_next("PUT", r"^/cards/[^/]+/customField/", "400")  # the CRM ID cannot be set
    [result] = conn.create([NewTask("K9", "Deal K9", snap.stages[0].id)])
    assert not result.ok and result.task_id and result.error is not None
    assert "created, but" in result.error and "HTTP 400" in result.error
    assert result.error.count(board) == 1 and result.error.count("Deal K9") == 1, result.error


def test_create_retries_a_post_that_never_ran(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=2)
    conn = connect(url, board, registry)
    snap = conn.read()
    fake.fail_next("POST", r"^/cards$", "503")
    results = list(conn.create([NewTask("K1", "Deal K1", snap.stages[1].id)]))
    assert results[0].ok
    assert fake.requests_to("POST", r"^/cards$") == 2
    assert sum(marker_for("K1") in c["desc"] for c in fake.board(board)["cards"]) == 1


def test_create_into_unknown_list_names_the_card(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=2), registry)
    conn.read()
    with pytest.raises(NotFoundError, match="Lost deal"):
        list(conn.create([NewTask("K2", "Lost deal", "5f0000000000000000000bad")]))


# ---------------------------------------------------------------------- errors


def test_bad_token_and_missing_board_name_the_board(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=2)
    conn = connect(url, board, registry)
    conn.client.api_secret = "wrong-token"
    with pytest.raises(AuthError, match=board) as err:
        conn.read()
    assert "invalid token" in str(err.value) and "wrong-token" not in str(err.value)
    missing = "5f00000000000000000000ee"
    with pytest.raises(NotFoundError, match=missing):
        connect(url, missing, registry).read()
    fake.denied[board] = {TOKEN}
    with pytest.raises(AuthError, match=f"{board}.*unauthorized"):
        connect(url, board, registry).read()


def test_missing_card_is_a_result_naming_it(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=2), registry)
    conn.read()
    gone = "5f00000000000000000000dd"
    (result,) = conn.write([TaskWrite(gone, {Field.ASSIGNEES: ()})])
    assert not result.ok and not result.retriable and gone in (result.error or "")


def test_missing_credentials_are_a_config_error() -> None:
    settings = Settings(
        connector="trello",
        trello=TrelloSettings(boards=["5f0000000000000000000001"]),
        secrets=Secrets(trello_key=None, trello_token=None),
    )
    with pytest.raises(ConfigError, match="TASKSYNC_TRELLO_TOKEN"):
        TrelloConnector(settings)


def test_token_never_appears_in_errors(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    assert redact("GET /1/boards/x?key=abc&token=s3cr3t&x=1") == ("GET /1/boards/x?key=***&token=***&x=1")
    conn = connect(url, fake.make_board(cards=2), registry)
    fake.fail_next("GET", r"^/boards/", "500", times=20)
    session = conn.client.http_service
    assert isinstance(session, ApiSession)
    session.backoff = 0.001
    with pytest.raises(TransientError) as err:
        conn.read()
    assert TOKEN not in str(err.value) and KEY not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    # A dead server: the connection error message carries no query string either.
    dead = trello_session("http://127.0.0.1:9/1", registry=registry, timeout=(0.2, 0.2))
    dead.max_attempts = 1
    with pytest.raises(TransientError) as err2:
        dead.get("https://api.trello.com/1/boards/x", params={"key": KEY, "token": TOKEN})
    assert TOKEN not in str(err2.value)


# ---------------------------------------------------------------------- limits and faults


def test_limiter_keeps_under_100_requests_per_10_seconds(registry: LimiterRegistry) -> None:
    clock = ScaledClock(10.0)
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock)
    registry = LimiterRegistry(clock)
    board = fake.make_board(cards=260, members=8)
    with fake.serve() as url:
        conn = connect(url, board, registry)
        writes = reassign(conn, 250)
        results = list(conn.write(writes))
    assert all(r.ok for r in results) and len(results) == 250
    assert fake.counts["429"] == 0
    # Counted on the fake's own clock: no 10 s window ever holds more than 100 requests (how close
    # tasksync gets to that floor is measured by bench/bench_trello.py, not asserted here).
    times = sorted(r.at for r in fake.log)
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[: i + 1] if u > t - 10.0)
        assert in_window <= 100
    assert times[-1] - times[0] >= 20.0, "251 requests at 100 per 10 s span at least two windows"
    assert_landed(fake, writes)


def test_429_waits_out_the_window_without_a_storm() -> None:
    clock = ScaledClock(20.0)
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock)
    registry = LimiterRegistry(clock)
    board = fake.make_board(cards=60, members=5)
    with fake.serve() as url:
        conn = connect(url, board, registry, max_workers=4)
        writes = reassign(conn, 50)
        # Another process spends the whole token budget; our limiter does not know.
        for _ in range(100):
            fake.handle("GET", f"/1/boards/{board}?key={KEY}&token={TOKEN}")
        fake.reset_log()
        results = list(conn.write(writes))
    assert all(r.ok for r in results)
    throttled = [r for r in fake.log if r.status == 429]
    assert 1 <= len(throttled) <= 4, "at most one 429 per worker, then everyone waits"
    first = throttled[0].at
    after = [r.at for r in fake.log if r.status == 200]
    assert min(after) >= first + 9.0, "nothing sent until the window ended"
    assert_landed(fake, writes)


def test_429_budget_exhausted_raises_rate_limited(registry: LimiterRegistry) -> None:
    fake = FakeTrello(key=KEY, tokens=[TOKEN])
    board = fake.make_board(cards=3)
    fake.fail_next("GET", r"^/boards/", "429", times=50)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        session = trello_session(registry=LimiterRegistry(ScaledClock(1000.0)))
        session.max_rate_limited = 3
        conn = TrelloConnector(trello_settings("https://api.trello.com/1", [board]), session=session)
        with pytest.raises(RateLimitedError, match=board):
            conn.read()
    assert fake.requests_to() == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_twenty_percent_faults_every_change_lands_exactly_once(seed: int) -> None:
    clock = ScaledClock(10.0)
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock, fault_rate=0.2, timeout_delay=0.4, seed=seed)
    registry = LimiterRegistry(clock)
    board = fake.make_board(cards=50, members=6)
    with fake.serve() as url:
        conn = connect(url, board, registry, timeout=(1.0, 0.2))
        writes = reassign(conn, 40, priority_every=4)
        snap = conn.read()
        creates = [NewTask(f"F-{i}", f"Faulty {i}", snap.stages[0].id) for i in range(8)]
        fake.reset_log()
        results = list(conn.write(writes))
        created = list(conn.create(creates))
    faults = sum(v for k, v in fake.counts.items() if k.startswith("fault:"))
    assert faults >= 8, f"faults were injected ({fake.counts})"
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert all(r.ok for r in created), [r.error for r in created if not r.ok]
    assert_landed(fake, writes)
    changes = Counter((card, field) for card, field, _ in fake.changes)
    assert changes and max(changes.values()) == 1, "no change applied twice"
    expected = {(w.task_id, "idMembers") for w in writes} | {(w.task_id, "idList") for w in writes}
    assert expected <= set(changes)
    for new in creates:
        marked = [c for c in fake.board(board)["cards"] if marker_for(new.key) in c["desc"]]
        assert len(marked) == 1, f"{new.key} created exactly once"


def test_limiter_adapts_to_server_headers() -> None:
    clock = ScaledClock(1.0)
    lim = SlidingWindowLimiter(100, 10.0, clock=clock)
    lim.acquire()
    lim.observe(remaining=10, maximum=100)  # someone else used 89
    assert lim.in_window() == 90
    lim.observe(remaining=50, maximum=60)
    assert lim.limit == 60
    lim.block_for(5.0)
    assert lim.delay() > 4.0


class ManualClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def test_token_429_blocks_the_token_budget_only() -> None:
    clock = ManualClock()
    registry = LimiterRegistry(clock)
    fake = FakeTrello(key=KEY, tokens=[TOKEN, "second-token"], clock=clock)
    board = fake.make_board(cards=1)
    for _ in range(100):
        fake.handle("GET", f"/1/boards/{board}?key={KEY}&token={TOKEN}")
    with fake.serve() as url:
        session = trello_session(url, registry=registry)
        resp = session.get(url + f"/boards/{board}", params={"key": KEY, "token": TOKEN})
        assert resp.ok and fake.counts["429"] == 1
    token_lim = registry.get("trello-token", TOKEN, 100, 10.0)
    key_lim = registry.get("trello-key", KEY, 300, 10.0)
    other = registry.get("trello-token", "second-token", 100, 10.0)
    assert token_lim.waited >= 10.0, "the token's window was waited out"
    assert key_lim.delay() == 0 and other.delay() == 0
    assert fake.counts["secrets_in_url"] == 100  # only the direct calls above


def test_key_budget_is_shared_by_every_token_of_the_key() -> None:
    clock = ScaledClock(10.0)
    tokens = [f"token-{i}" for i in range(4)]
    fake = FakeTrello(key=KEY, tokens=tokens, clock=clock)
    registry = LimiterRegistry(clock)
    boards = [fake.make_board(cards=90, members=4, seed=i) for i in range(4)]
    with fake.serve() as url:
        conns = []
        for token, board in zip(tokens, boards, strict=True):
            settings = trello_settings(url, [board])
            settings.secrets = Secrets(trello_key=KEY, trello_token=token, trello_api_url=url)  # type: ignore[arg-type]
            conns.append(TrelloConnector(settings, session=trello_session(url, registry=registry)))
        plans = [reassign(c, 90) for c in conns]
        fake.reset_log()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda cw: list(cw[0].write(cw[1])), zip(conns, plans, strict=True)))
    assert all(r.ok for rs in results for r in rs) and sum(map(len, results)) == 360
    assert fake.counts["429"] == 0
    times = sorted(r.at for r in fake.log)
    assert max(sum(1 for u in times[: i + 1] if u > t - 10.0) for i, t in enumerate(times)) <= 300
    assert times[-1] - times[0] >= 10.0, "400 requests per window were wanted, 300 allowed"


def test_fake_locks_the_key_out_after_200_refusals() -> None:
    clock = ManualClock()
    fake = FakeTrello(key=KEY, tokens=[TOKEN, "other"], clock=clock)
    board = fake.make_board(cards=1)

    def get(token: str) -> tuple[int, str]:
        r = fake.handle(
            "GET",
            f"/1/boards/{board}",
            headers={"Authorization": f'OAuth oauth_consumer_key="{KEY}", oauth_token="{token}"'},
        )
        return r.status, r.body.decode()

    assert all(get(TOKEN)[0] == 200 for _ in range(100))
    status, body = get(TOKEN)
    assert status == 429 and json.loads(body) == {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
    assert get("other")[0] == 200, "another token still has its budget"
    for _ in range(199):
        get(TOKEN)
    status, body = get("other")
    assert status == 429 and "API_KEY_LIMIT_EXCEEDED" in body, "locked out for the rest of the window"
    clock.sleep(10.5)
    assert get("other")[0] == 200 and get(TOKEN)[0] == 200


def test_limiters_are_shared_by_token_across_sessions() -> None:
    reg = LimiterRegistry()
    a = reg.get("trello-token", TOKEN, 100, 10.0)
    assert reg.get("trello-token", TOKEN, 100, 10.0) is a
    assert reg.get("trello-token", "other", 100, 10.0) is not a
    assert TOKEN not in repr(reg._limiters)


# ---------------------------------------------------------------------- responses, rewriting


def test_vendor_url_through_responses(registry: LimiterRegistry) -> None:
    fake = FakeTrello(key=KEY, tokens=[TOKEN])
    board = fake.make_board(cards=6)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        conn = TrelloConnector(
            trello_settings("https://api.trello.com/1", [board]),
            session=trello_session(registry=registry),
        )
        writes = reassign(conn, 3)
        assert all(r.ok for r in conn.write(writes))
        sent = [c.request for c in rsps.calls]
    assert all(r.url and r.url.startswith("https://api.trello.com/1/") for r in sent)
    assert not any("token" in (r.url or "") or KEY in (r.url or "") for r in sent), "no secrets in URLs"
    assert all(TOKEN in r.headers["Authorization"] for r in sent)
    put = next(r for r in sent if r.method == "PUT")
    assert json.loads(put.body or b"{}").keys() == {"idMembers", "idList"}
    assert_landed(fake, writes)


def test_faults_through_responses_are_retried_for_puts(registry: LimiterRegistry) -> None:
    fake = FakeTrello(key=KEY, tokens=[TOKEN])
    board = fake.make_board(cards=4)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        session = trello_session(registry=registry)
        session.backoff = 0.001
        conn = TrelloConnector(trello_settings("https://api.trello.com/1", [board]), session=session)
        writes = reassign(conn, 3)
        fake.fail_next("PUT", r"^/cards/", "timeout_after")
        fake.fail_next("PUT", r"^/cards/", "drop")
        fake.fail_next("PUT", r"^/cards/", "502")
        fake.reset_log()
        assert all(r.ok for r in conn.write(writes))
    assert fake.requests_to("PUT") == 6 and session.stats["retries"] == 3
    assert_landed(fake, writes)
    assert Counter(c for c, f, _ in fake.changes if f == "idMembers") == dict.fromkeys((w.task_id for w in writes), 1)


def test_session_rewrites_py_trello_base_url(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    session = trello_session(url, registry=registry)
    assert session.rewrite("https://api.trello.com/1/boards/x") == url + "/boards/x"
    board = fake.make_board(cards=1)
    resp = session.get(f"https://api.trello.com/1/boards/{board}", params={"key": KEY, "token": TOKEN})
    assert resp.status_code == 200 and resp.json()["id"] == board
    assert resp.headers["x-rate-limit-api-token-remaining"] == "99"


def test_post_is_not_retried_on_timeout(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=1)
    list_id = fake.board(board)["lists"][0]["id"]
    fake.timeout_delay = 0.4
    session = trello_session(url, registry=registry, timeout=(1.0, 0.2))
    fake.fail_next("POST", r"^/cards$", "timeout_after")
    with pytest.raises(TransientError, match="timed out"):
        session.post(url + "/cards", params={"key": KEY, "token": TOKEN, "idList": list_id, "name": "x"})
    assert fake.requests_to("POST") == 1
    fake.fail_next("GET", r"^/boards/", "timeout")
    assert session.get(url + f"/boards/{board}", params={"key": KEY, "token": TOKEN}).ok
    assert fake.requests_to("GET") == 2


# ---------------------------------------------------------------------- actions


def test_changed_since_reports_changed_cards(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    conn = connect(url, fake.make_board(cards=10), registry)
    changed, first = conn.changed_since(None)
    assert changed is None and first and len(first) == 24, "a bookmark even without actions; read everything"
    writes = reassign(conn, 3)
    list(conn.write(writes))
    changed, bookmark = conn.changed_since(first)
    assert changed == {w.task_id for w in writes} and bookmark and bookmark > first
    assert conn.changed_since(None) == (None, bookmark)
    assert conn.changed_since(bookmark) == (set(), bookmark)
    t = conn.read().tasks[5]
    list(conn.write([TaskWrite(t.id, {Field.ASSIGNEES: ()})]))
    changed, newer = conn.changed_since(bookmark)
    assert changed == {t.id} and newer and newer > bookmark


# ---------------------------------------------------------------------- spec conformance


def _spec_ops() -> dict[str, Any]:
    path = SPECS / "trello-swagger.v3.json"  # kept in tests/specs: the test never skips
    return dict(json.loads(path.read_text(encoding="utf-8"))["paths"])


# Parameters documented outside the spec's parameter lists (spec quirks):
# - Nested resources (guide linked from GET /boards/{id}): card_fields, card_customFieldItems.
# - Card pages (the paging guide; the spec lists only the path id for GET /boards/{id}/cards):
#   limit, before, fields, filter, customFieldItems.
# - The spec's text says a JSON body may replace any query parameter, and it declares few
#   request bodies: body keys are checked against query parameters and declared bodies.
DOCUMENTED_ELSEWHERE: dict[tuple[str, str], set[str]] = {
    ("get", "/boards/{id}"): {"card_fields", "card_customFieldItems"},
    ("get", "/boards/{id}/cards"): {"limit", "before", "fields", "filter", "customFieldItems"},
}


def _match(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    best: tuple[int, str, dict[str, Any]] | None = None
    for template, item in spec.items():
        op = item.get(method.lower())
        if not isinstance(op, dict):
            continue
        rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "/?$"
        if re.match(rx, path):
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            if best is None or literal > best[0]:
                best = (literal, template, item)
    return None if best is None else (best[1], best[2])


def _allowed(item: dict[str, Any], method: str) -> set[str]:
    op = item[method.lower()]
    params = list(item.get("parameters") or []) + list(op.get("parameters") or [])
    names = {p["name"] for p in params if p.get("in") == "query"}
    body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
    schema = body.get("schema") or {}
    for branch in [schema, *(schema.get("oneOf") or [])]:
        names |= set((branch.get("properties") or {}).keys())
    return names


# Values the spec's schema types more narrowly than its text and the API (spec quirks):
# - idMembers on PUT /cards/{id} and POST /cards: "comma-separated list", typed as one TrelloID;
# - due on POST /cards: typed as a date, the API takes ISO date-times (as Trello's UI sends);
# - idValue "" on the custom field item: the operation's text covers removing a value;
# - options on POST /customFields: typed as a string, the API takes the list of option objects.
VALUE_QUIRKS: dict[tuple[str, str, str], Any] = {
    ("put", "/cards/{id}", "idMembers"): "comma-ids",
    ("post", "/cards", "idMembers"): "comma-ids",
    ("post", "/cards", "due"): "datetime",
    ("put", "/cards/{idCard}/customField/{idCustomField}/item", "idValue"): "id-or-empty",
    ("post", "/customFields", "options"): "option-list",
}
_ID = re.compile(r"[0-9a-fA-F]{24}")


def _schemas(spec_doc: dict[str, Any], item: dict[str, Any], method: str) -> dict[str, dict[str, Any]]:
    """Parameter (and body property) name -> schema for one operation, $refs resolved."""
    components = spec_doc.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return resolve(components[ref.rsplit("/", 1)[-1]]) if ref else schema

    op = item[method.lower()]
    out = {
        p["name"]: resolve(p.get("schema") or {})
        for p in list(item.get("parameters") or []) + list(op.get("parameters") or [])
        if p.get("in") == "query"
    }
    body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
    schema = body.get("schema") or {}
    for branch in [schema, *(schema.get("oneOf") or [])]:
        for name, prop in (branch.get("properties") or {}).items():
            out.setdefault(name, resolve(prop))
    return {k: {**v, "oneOf": [resolve(b) for b in v.get("oneOf", [])]} if "oneOf" in v else v for k, v in out.items()}


def _value_ok(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("oneOf"):
        return any(_value_ok(b, value) for b in schema["oneOf"])
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if kind in ("number", "integer"):
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if "pattern" in schema:
        return isinstance(value, str) and re.search(schema["pattern"], value) is not None
    if kind == "string":
        if schema.get("format") == "date":
            return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
        return isinstance(value, str)
    return True


def _quirk_ok(quirk: str, value: Any) -> bool:
    if quirk == "comma-ids":
        return isinstance(value, str) and all(_ID.fullmatch(v) for v in value.split(",") if v)
    if quirk == "datetime":
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:.]+Z)?", value) is not None
    if quirk == "id-or-empty":
        return value == "" or (isinstance(value, str) and _ID.fullmatch(value) is not None)
    if quirk == "option-list":
        return isinstance(value, list) and all(isinstance(o.get("value", {}).get("text"), str) for o in value)
    return False


def test_every_request_conforms_to_the_official_spec(registry: LimiterRegistry) -> None:
    spec = _spec_ops()
    spec_doc = json.loads((SPECS / "trello-swagger.v3.json").read_text(encoding="utf-8"))
    fake = FakeTrello(key=KEY, tokens=[TOKEN])
    fake.max_board_cards = 30
    boards = [fake.make_board(cards=20, seed=i) for i in range(3)]
    big = fake.make_board(cards=45, priority_tiers=None)
    with fake.serve() as url:
        conns = connectors_for(
            trello_settings(url, [*boards, big], create_priority_field=True),
            session=trello_session(url, registry=registry),
        )
        assert all(not isinstance(s, Exception) for s in read_boards(conns))
        for conn in (conns[0], conns[-1]):
            conn.page_size = 20
            conn.read()
            writes = reassign(conn, 4, priority_every=2)
            writes.append(TaskWrite(writes[0].task_id, {Field.CLOSED: True}))
            touched = writes[1].task_id
            writes[1] = TaskWrite(touched, writes[1].values, {Field.STAGE: fake.card(touched)["idList"]})
            by_hand(fake, touched, name="Renamed by hand")  # the conditional write reads it again
            assert all(r.ok for r in conn.write(writes))
            snap = conn.read()
            new = NewTask(f"S-{conn.board_id}", "Spec deal", snap.stages[0].id, (), "P1")
            assert all(r.ok for r in conn.create([new]))
            conn.find_created(new.key)
            conn.changed_since(None)
            conn.changed_since("0" * 24)
            conn.comment(snap.tasks[0].id, "Why it moved")
    seen = {(r.method, r.path, r.params, r.body_keys) for r in fake.log}
    assert {m for m, *_ in seen} == {"GET", "PUT", "POST"}
    problems = []
    for method, path, params, body in sorted(seen):
        found = _match(spec, method, path)
        if found is None:
            problems.append(f"{method} {path}: no such route in the spec")
            continue
        template, item = found
        allowed = _allowed(item, method) | DOCUMENTED_ELSEWHERE.get((method.lower(), template), set())
        unknown = (set(params) | set(body)) - allowed
        if unknown:
            problems.append(f"{method} {template}: unknown parameters {sorted(unknown)}")
    checked = 0
    for r in fake.log:
        found = _match(spec, r.method, r.path)
        if found is None:
            continue
        template, item = found
        schemas = _schemas(spec_doc, item, r.method)
        for name, value in [*r.query.items(), *r.body.items()]:
            quirk = VALUE_QUIRKS.get((r.method.lower(), template, name))
            ok = _quirk_ok(quirk, value) if quirk else name not in schemas or _value_ok(schemas[name], value)
            checked += 1
            if not ok:
                problems.append(f"{r.method} {template}: {name}={value!r} does not fit {schemas.get(name)}")
    assert checked > 50
    assert not problems, "\n".join(sorted(set(problems)))
    routes = {(_match(spec, m, p) or ("?",))[0] for m, p, *_ in seen}
    assert {
        "/batch",
        "/boards/{id}",
        "/boards/{id}/cards",
        "/cards/{id}",
        "/cards/{idCard}/customField/{idCustomField}/item",
        "/cards",
        "/customFields",
        "/boards/{boardId}/actions",
    } <= routes


def test_requests_session_errors_are_classified() -> None:
    fake = FakeTrello(key=KEY, tokens=[TOKEN])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        session = trello_session(registry=LimiterRegistry())
        with pytest.raises(NotFoundError):
            session.get(
                "https://api.trello.com/1/cards/5f00000000000000000000aa",
                params={"key": KEY, "token": TOKEN},
            )
        with pytest.raises(AuthError, match="invalid key"):
            session.get("https://api.trello.com/1/boards/x", params={"key": "k", "token": "t"})


def test_fake_runs_from_the_command_line(tmp_path: Path) -> None:
    board_file = tmp_path / "board.json"
    board_file.write_text(json.dumps(sample_trello_board()), encoding="utf-8")
    cmd = [sys.executable, "-m", "tasksync.testing.fake_trello", "--port", "0", "--board", str(board_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        url = lines[0].split(" at ")[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/1")
        assert any("TASKSYNC_TRELLO_TOKEN=fake-token" in line for line in lines)
        settings = trello_settings(url, ["5f0000000000000000000001"])
        snap = TrelloConnector(settings, session=trello_session(url, registry=LimiterRegistry())).read()
        assert snap.name == "Contract board" and len(snap.tasks) == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------- conditional writes


def guarded(conn: TrelloConnector, n: int) -> list[TaskWrite]:
    """Writes moving ``n`` cards to another member, each expecting the card's current members."""
    snap = conn.read()
    return [
        TaskWrite(
            w.task_id,
            {Field.ASSIGNEES: w.values[Field.ASSIGNEES]},
            {Field.ASSIGNEES: snap.tasks_by_id[w.task_id].assignees},
        )
        for w in reassign(conn, n)
    ]


def test_a_card_changed_during_apply_is_a_conflict_not_overwritten(
    fake: FakeTrello, url: str, registry: LimiterRegistry
) -> None:
    board = fake.make_board(cards=30, members=4)
    conn = connect(url, board, registry, check_every=10)
    writes = guarded(conn, 25)
    victim = writes[15].task_id  # in the second group: changed after the apply began
    taken = {*writes[15].values[Field.ASSIGNEES], *fake.card(victim)["idMembers"]}
    person_member = next(m["id"] for m in fake.board(board)["members"] if m["id"] not in taken)
    results: list[WriteResult] = []
    for r in conn.write(writes):
        results.append(r)
        if len(results) == 10:  # a person reassigns the card while the first group is written
            by_hand(fake, victim, idMembers=person_member)
    by_id = {r.task_id: r for r in results}
    assert by_id[victim].outcome is WriteStatus.CONFLICT and victim in (by_id[victim].error or "")
    assert fake.card(victim)["idMembers"] == [person_member], "the person's change stands"
    assert all(r.outcome is WriteStatus.DONE for r in results if r.task_id != victim)
    assert_landed(fake, [w for w in writes if w.task_id != victim])


def test_a_change_made_after_a_result_is_not_overwritten_by_its_group(
    fake: FakeTrello, url: str, registry: LimiterRegistry
) -> None:
    """A group's writes go out two at a time; its first result is handed on only when every
    write has answered, so a person's change made then is never overwritten by a write of the
    group still to land."""
    board = fake.make_board(cards=12, members=4)
    conn = connect(url, board, registry, check_every=20, max_workers=2)
    writes = guarded(conn, 10)
    members = [m["id"] for m in fake.board(board)["members"]]
    fake.latency = 0.3  # every answer takes a while: most of the group is still to land
    results: list[WriteResult] = []
    by_hand: dict[str, list[str]] = {}
    for r in conn.write(writes):
        results.append(r)
        if len(results) == 1:  # a person reassigns every card of the group, in Trello's own UI
            for w in writes:
                card = fake.card(w.task_id)
                taken = {*w.values[Field.ASSIGNEES], *card["idMembers"]}
                by_hand[w.task_id] = [next(m for m in members if m not in taken)]
                fake._set(card, "idMembers", by_hand[w.task_id])
    fake.latency = 0.0
    assert all(r.outcome is WriteStatus.DONE for r in results)
    assert {c: fake.card(c)["idMembers"] for c in by_hand} == by_hand, "the person's changes stand"


def test_conditional_writes_cost_one_request_per_group(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=60, members=4)
    conn = connect(url, board, registry, check_every=20)
    writes = guarded(conn, 50)
    fake.reset_log()
    assert all(r.ok for r in conn.write(writes))
    assert fake.requests_to("GET", r"/actions$") == 3  # groups of 20, 20 and 10
    assert fake.requests_to("GET", r"^/batch") == 0, "nobody touched a card: nothing read again"
    assert fake.requests_to("PUT") == 50
    # Unconditional writes (no ``before``) cost nothing more.
    fake.reset_log()
    assert all(r.ok for r in conn.write(reassign(conn, 10)))
    assert fake.requests_to() == 1 + 10  # the read inside reassign, then the PUTs


def test_a_stale_plan_is_a_conflict_without_any_request(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=5, members=3)
    conn = connect(url, board, registry)
    snap = conn.read()
    task = snap.tasks[0]
    other = next(m.id for m in snap.members if (m.id,) != task.assignees)
    stale = TaskWrite(task.id, {Field.ASSIGNEES: (other,)}, {Field.ASSIGNEES: ("5f" + "9" * 22,)})
    (result,) = conn.write([stale])
    assert result.outcome is WriteStatus.CONFLICT
    assert fake.requests_to("PUT") == 0


def test_a_lost_answer_is_unknown_not_failed(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=5, members=3)
    conn = connect(url, board, registry, timeout=(1.0, 0.3))
    conn.client.http_service.backoff = conn.client.http_service.max_backoff = 0.001
    fake.timeout_delay = 0.5
    (w,) = reassign(conn, 1)
    fake.fail_next("PUT", r"^/cards/", "timeout_after", times=6)  # written, then no answer, 6 times
    (result,) = conn.write([w])
    assert result.outcome is WriteStatus.UNKNOWN and not result.ok
    assert_landed(fake, [w])
    # Carried out, then a 5xx until the retries run out: UNKNOWN too (issue 17: never "a person").
    (w3,) = reassign(conn, 1)
    fake.fail_next("PUT", r"^/cards/", "500_after", times=6)
    (result,) = conn.write([w3])
    assert result.outcome is WriteStatus.UNKNOWN
    assert_landed(fake, [w3])
    # A request refused for good is FAILED.
    (w2,) = reassign(conn, 1)
    fake.fail_next("PUT", r"^/cards/", "400")
    (result,) = conn.write([w2])
    assert result.outcome is WriteStatus.FAILED


# ---------------------------------------------------------------------- creation, comments


def test_create_completes_a_card_left_by_a_kill_after_its_post(
    fake: FakeTrello, url: str, registry: LimiterRegistry
) -> None:
    board = fake.make_board(cards=3)
    conn = connect(url, board, registry)
    snap = conn.read()
    new = NewTask("D-KILL-1", "Killed deal", snap.stages[0].id, (snap.members[0].id,), "P3")
    # The POST of a run killed before its follow-up: the marker, but no CRM ID and no priority.
    posted = fake.handle(
        "POST",
        f"/1/cards?key={KEY}&token={TOKEN}",
        json.dumps({"idList": new.stage_id, "name": new.title, "desc": marker_for(new.key)}).encode(),
        {"Content-Type": "application/json"},
    )
    card_id = json.loads(posted.body)["id"]
    rerun = connect(url, board, registry)
    fake.reset_log()
    (result,) = rerun.create([new])
    assert result.ok and result.task_id == card_id
    assert fake.requests_to("POST") == 0, "not created twice"
    got = rerun.read().task(card_id)
    assert got is not None and got.priority == "P3" and "D-KILL-1" in got.custom_fields.values()
    # Once complete, a further rerun sends nothing.
    fake.reset_log()
    assert [r.ok for r in connect(url, board, registry).create([new])] == [True]
    assert fake.requests_to("PUT") == 0 and fake.requests_to("POST") == 0


def test_a_person_s_priority_on_a_found_card_is_kept(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=3)
    conn = connect(url, board, registry)
    snap = conn.read()
    new = NewTask("D-KEEP-1", "Deal", snap.stages[0].id, (), "P3")
    (first,) = conn.create([new])
    prio = next(f for f in fake.board(board)["customFields"] if f["name"] == "Priority")
    p1 = next(o["id"] for o in prio["options"] if o["value"]["text"] == "P1")
    by_hand_item(fake, first.task_id, prio["id"], {"idValue": p1})
    (again,) = connect(url, board, registry).create([new])
    assert again.ok and connect(url, board, registry).read().task(first.task_id).priority == "P1"  # type: ignore[union-attr]


def by_hand_item(fake: FakeTrello, card_id: str, field_id: str, body: dict[str, Any]) -> None:
    url = f"/1/cards/{card_id}/customField/{field_id}/item?key={KEY}&token={TOKEN}"
    assert fake.handle("PUT", url, json.dumps(body).encode(), {"Content-Type": "application/json"}).status == 200


def test_comments_on_a_card(fake: FakeTrello, url: str, registry: LimiterRegistry) -> None:
    board = fake.make_board(cards=2)
    conn = connect(url, board, registry)
    card = conn.read().tasks[0].id
    assert isinstance(conn, Commenter)
    result = conn.comment(card, "Moved to Rep 01: best fit for the sector")
    assert result.ok and fake.comments[card] == ["Moved to Rep 01: best fit for the sector"]
    missing = conn.comment(MISSING, "x")
    assert missing.outcome is WriteStatus.FAILED and MISSING in (missing.error or "")
    fake.fail_next("POST", r"/actions/comments", "drop_after")
    lost = conn.comment(card, "posted, answer lost")
    assert lost.outcome is WriteStatus.UNKNOWN
    assert fake.requests_to("POST", r"/actions/comments") == 3, "a comment is never posted twice"
