"""The transport core on its own: retry rule, Retry-After, paging loops, shared limiter, redaction.

No HTTP library is involved except in the last tests, where two processes share one token's
budget through the state folder against the fake Trello.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tasksync.connectors.transport import (
    AnswerLost,
    FileWindow,
    LimiterRegistry,
    NotSent,
    Page,
    PagingLoop,
    RetryPolicy,
    SlidingWindowLimiter,
    Throttled,
    call,
    paginate,
    parse_retry_after,
    redact,
)
from tasksync.errors import ApiError, AuthError, RateLimitedError, TransientError
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN = "fake-key", "fake-token"


class ManualClock:
    """Time that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


def failing(*errors: ApiError, result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    """A ``send`` that raises ``errors`` in turn, then returns ``result``; counts its calls."""
    calls = [0]

    def send() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return result

    return calls, send


# ---------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("2", 2.0), ("0.25", 0.25), (" 7 ", 7.0), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_retry_after_in_seconds_integer_or_fractional(raw: str | None, seconds: float | None) -> None:
    assert parse_retry_after(raw) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    got = parse_retry_after(when)
    assert got is not None and 25 <= got <= 31


def test_fractional_retry_after_is_waited_out() -> None:
    clock = ManualClock()
    calls, send = failing(RateLimitedError("429", retry_after=0.25))
    policy = RetryPolicy(window=10.0)
    assert call(send, idempotent=False, policy=policy, clock=clock) == "ok"
    assert calls[0] == 2
    assert len(clock.sleeps) == 1 and 0.25 <= clock.sleeps[0] <= 0.25 * 1.15 + 1e-9


def test_429_without_retry_after_waits_the_vendors_window_on_the_limiter() -> None:
    clock = ManualClock()
    lim = SlidingWindowLimiter(100, 10.0, clock=clock)
    calls, send = failing(RateLimitedError("429"))
    assert call(send, idempotent=True, policy=RetryPolicy(window=10.0), limiters=[lim], clock=clock) == "ok"
    assert calls[0] == 2 and clock.now >= 10.0, "the whole budget waited out the window"


def test_throttled_blocks_only_the_budget_it_names() -> None:
    clock = ManualClock()
    token, key = SlidingWindowLimiter(100, 10.0, clock=clock), SlidingWindowLimiter(300, 10.0, clock=clock)
    _, send = failing(Throttled("429 token", retry_after=5.0, limiters=[token]))
    seen: list[tuple[float, float]] = []
    retried = lambda err: seen.append((token.delay(), key.delay()))  # noqa: E731
    call(send, idempotent=True, policy=RetryPolicy(), limiters=[token, key], clock=clock, on_retry=retried)
    assert seen[0][0] >= 5.0 and seen[0][1] == 0.0, "the key's budget keeps running"
    assert clock.now >= 5.0


def test_rate_limited_gives_up_after_its_budget() -> None:
    clock = ManualClock()
    calls, send = failing(*[RateLimitedError("429", retry_after=1.0)] * 10)
    with pytest.raises(RateLimitedError):
        call(send, idempotent=True, policy=RetryPolicy(max_throttled=3), clock=clock)
    assert calls[0] == 3


# ---------------------------------------------------------------------- the retry rule


def test_not_sent_is_retried_even_for_a_post() -> None:
    clock = ManualClock()
    calls, send = failing(NotSent("refused"), NotSent("refused"))
    assert call(send, idempotent=False, policy=RetryPolicy(), clock=clock) == "ok"
    assert calls[0] == 3


def test_a_post_that_may_have_landed_is_not_repeated_and_is_an_answer_lost() -> None:
    clock = ManualClock()
    calls, send = failing(TransientError("502", 502))
    with pytest.raises(AnswerLost):
        call(send, idempotent=False, policy=RetryPolicy(), clock=clock)
    assert calls[0] == 1


def test_idempotent_requests_retry_up_to_max_attempts_then_answer_lost() -> None:
    clock = ManualClock()
    calls, send = failing(*[TransientError("timeout")] * 10)
    with pytest.raises(AnswerLost):
        call(send, idempotent=True, policy=RetryPolicy(max_attempts=4), clock=clock)
    assert calls[0] == 4
    assert all(s > 0 for s in clock.sleeps) and len(clock.sleeps) == 3


def test_never_sent_failures_stay_not_sent() -> None:
    calls, send = failing(*[NotSent("refused")] * 10)
    with pytest.raises(NotSent):
        call(send, idempotent=True, policy=RetryPolicy(max_attempts=3), clock=ManualClock())
    assert calls[0] == 3


def test_auth_and_client_errors_are_never_retried() -> None:
    for error in (AuthError("401", 401), ApiError("400", 400)):
        calls, send = failing(error)
        with pytest.raises(type(error)):
            call(send, idempotent=True, policy=RetryPolicy(), clock=ManualClock())
        assert calls[0] == 1


# ---------------------------------------------------------------------- paging


def test_paginate_follows_cursors_to_the_end() -> None:
    pages = {None: ([1, 2], "a", True), "a": ([3], "b", True), "b": ([4], None, False)}

    def fetch(cursor: str | None) -> Page[int, str]:
        items, nxt, more = pages[cursor]
        return Page(items, nxt, more)

    assert paginate(fetch, what="numbers") == ([1, 2, 3, 4], "b")


def test_paginate_stops_when_a_cursor_repeats() -> None:
    asked = []

    def fetch(cursor: str | None) -> Page[int, str]:
        asked.append(cursor)
        return Page([], "same-token", True)  # a server that always says "more" with one token

    with pytest.raises(PagingLoop):
        paginate(fetch, what="events")
    assert asked == [None, "same-token"]
    with pytest.raises(PagingLoop):
        paginate(fetch, what="events", start="same-token")


# ---------------------------------------------------------------------- limiter records


def test_file_window_is_one_budget_for_two_limiters(tmp_path: Path) -> None:
    a = SlidingWindowLimiter(5, 60.0, store=FileWindow(tmp_path / "w.json", 3600.0))
    b = SlidingWindowLimiter(5, 60.0, store=FileWindow(tmp_path / "w.json", 3600.0))
    for lim in (a, b, a, b, a):
        wait, _ = lim.try_acquire()
        assert wait == 0
    assert a.try_acquire()[0] > 0 and b.try_acquire()[0] > 0, "the sixth request waits, whoever sends it"
    b.block_for(30.0)
    assert a.delay() >= 29.0, "a 429 seen by one is honoured by the other"


def test_registry_names_records_by_a_hash_of_the_secret(tmp_path: Path) -> None:
    reg = LimiterRegistry()
    lim = reg.get("trello-token", "very-secret-token", 100, 10.0, shared_dir=tmp_path)
    lim.acquire()
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and "very-secret-token" not in names[0]
    assert "very-secret-token" not in (tmp_path / names[0]).read_text()
    assert (tmp_path / names[0]).stat().st_mode & 0o077 == 0
    assert reg.get("trello-token", "very-secret-token", 100, 10.0, shared_dir=tmp_path) is lim


def test_damaged_record_costs_nothing_but_caution(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text("{not json", encoding="utf-8")
    lim = SlidingWindowLimiter(2, 10.0, store=FileWindow(tmp_path / "w.json", 3600.0))
    assert lim.try_acquire()[0] == 0


def test_a_record_from_before_a_reboot_is_ignored(tmp_path: Path) -> None:
    """Stamps of the machine-wide monotonic clock from before a reboot lie in the future."""
    ahead = time.monotonic() + 500.0
    (tmp_path / "w.json").write_text(json.dumps({"stamps": [ahead] * 5, "blocked_until": ahead + 1e6}))
    lim = SlidingWindowLimiter(5, 60.0, store=FileWindow(tmp_path / "w.json", 3600.0))
    assert lim.delay() == 0.0 and lim.try_acquire()[0] == 0


# ---------------------------------------------------------------------- redaction


def test_one_redaction_for_errors_and_logs() -> None:
    text = (
        'GET /1/boards?key=abcdef&token=s3cr3t-value&x=1 Authorization: OAuth oauth_consumer_key="k", '
        'oauth_token="tok" X-Hook-Secret: hooky the-pat-0123'
    )
    out = redact(text, ["the-pat-0123"])
    for secret in ("abcdef", "s3cr3t-value", '"tok"', "hooky", "the-pat-0123"):
        assert secret not in out
    assert "x=1" in out


# ---------------------------------------------------------------------- two processes, one token

BURST = """
import sys, time
from pathlib import Path
from tasksync.connectors.http import Budget, trello_session
url, board, start, shared = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
budgets = (Budget("trello-token", "token", 10, 1.0, "x-rate-limit-api-token", "API_TOKEN_LIMIT_EXCEEDED"),
           Budget("trello-key", "key", 30, 1.0, "x-rate-limit-api-key", "API_KEY_LIMIT_EXCEEDED"))
session = trello_session(url, budgets=budgets, shared_dir=Path(shared) if shared else None)
while time.time() < start:
    time.sleep(0.005)
for _ in range(20):
    session.get(f"{url}/boards/{board}", params={"key": "fake-key", "token": "fake-token", "fields": "name"})
"""


def burst_from_two_processes(tmp_path: Path, shared: bool) -> FakeTrello:
    fake = FakeTrello(key=KEY, tokens=[TOKEN], token_limit=10, key_limit=30, window=1.0)
    board = fake.make_board(cards=2)
    with fake.serve() as url:
        start = time.time() + 2.0  # both processes are running by then
        folder = str(tmp_path / "state") if shared else ""
        procs = [subprocess.Popen([sys.executable, "-c", BURST, url, board, str(start), folder]) for _ in range(2)]
        assert [p.wait(timeout=60) for p in procs] == [0, 0]
    return fake


def test_two_processes_on_one_token_share_its_budget(tmp_path: Path) -> None:
    """apply then undo (or two services) on one token: the budget is one, so no 429."""
    fake = burst_from_two_processes(tmp_path, shared=True)
    assert fake.counts["status:200"] == 40
    assert fake.counts["429"] == 0
    stamps = sorted(r.at for r in fake.log if r.status == 200)
    assert all(sum(1 for u in stamps if t - 1.0 < u <= t) <= 10 for t in stamps)


def test_without_the_shared_record_two_processes_draw_429s(tmp_path: Path) -> None:
    """The defect the shared record fixes: each process alone keeps its own count."""
    fake = burst_from_two_processes(tmp_path, shared=False)
    assert fake.counts["429"] > 0
