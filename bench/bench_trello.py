"""Benchmark: the Trello connector against the fake Trello, versus naive py-trello.

A board of 1,000 open cards and 30 members is served on loopback by the fake, which enforces
Trello's 100 requests per 10 s per token. Both the fake and the client's limiter run on one
clock ten times faster than real time, so every "second" below is a simulated second and the
ratios are those of real Trello (minus network latency).

Measured for tasksync: requests for the read, for a plan reassigning 300 cards, and for a
no-change re-sync; the apply's wall time as a multiple of the floor (300 changes at 10/s = 30 s);
429s; failed writes. The apply runs twice: once with the token's budget fresh (the sliding
window lets the first ~100 requests through at once) and once right after, with the budget
spent (the sustained rate). Answers take real milliseconds, which the x10 clock turns into
tenths of simulated seconds: real Trello's latency costs about as much.

The naive implementation is py-trello's object model: ``board.all_cards()``, then
``card.unassign`` + ``card.assign`` per card (and ``card.change_list`` when the list changes),
once on a plain URL-rewriting session (what a user pointing py-trello at another host writes)
and once on tasksync's throttled session. Two more rows add 200 ms (simulated) to every answer,
as real Trello's round trips do, with the connector's default 4 concurrent writes and with 1.

Conditional writes (each write carries the ``before`` the plan expects) add rows: the
connector's choice, one ``GET /boards/{id}/actions?since=`` per 20 writes and a ``/batch`` re-read
of only the cards someone touched; the same with 30 of the 300 cards changed by hand after the
read (30 conflicts, nothing overwritten); and the alternative, ``GET /cards/{id}`` before each
``PUT``, which doubles the requests and so the time.

Run: ``python bench/bench_trello.py`` (about two minutes).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from tasksync.connectors.http import TRELLO_VENDOR_URL, LimiterRegistry, ScaledClock, trello_session
from tasksync.connectors.trello import TrelloConnector
from tasksync.errors import ApiError
from tasksync.model import Field, Snapshot, TaskWrite, WriteResult, WriteStatus
from tasksync.settings import Secrets, Settings, TrelloSettings
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN = "bench-key", "bench-token"
CARDS, MEMBERS, CHANGES = 1000, 30, 300
SPEED = 10.0  # simulated seconds per real second
TOKEN_RATE = 10.0  # requests per second per token (100 per 10 s)


@dataclass
class Row:
    name: str
    read_requests: int | str
    apply_requests: int
    apply_seconds: float
    changes: int
    throttled: int
    failed: int
    resync_requests: int | str
    conflicts: int = 0

    @property
    def ratio(self) -> float:
        return self.apply_seconds / (self.changes / TOKEN_RATE)


class RewritingSession(requests.Session):
    """Only what a naive user needs to point py-trello elsewhere: the base URL, nothing else."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        target = text.replace(TRELLO_VENDOR_URL, self.base_url)
        return super().request(method, target, *args, **kwargs)


def settings_for(url: str, board: str) -> Settings:
    return Settings(
        connector="trello",
        trello=TrelloSettings(boards=[board], api_url=url),
        secrets=Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url),  # type: ignore[arg-type]
    )


def plan(snap: Snapshot, seed: int = 7) -> dict[str, str]:
    """Card id -> new member for CHANGES cards (a reassignment, as a rebalance would make)."""
    rng = random.Random(seed)
    members = [m.id for m in snap.members]
    chosen = rng.sample(list(snap.tasks), CHANGES)
    return {t.id: rng.choice([m for m in members if (m,) != t.assignees]) for t in chosen}


def new_fake(clock: ScaledClock) -> tuple[FakeTrello, str]:
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock)
    board = fake.make_board(cards=CARDS, members=MEMBERS, seed=42)
    return fake, board


def timed(clock: ScaledClock, fn: Callable[[], Any]) -> tuple[Any, float]:
    start = clock.monotonic()
    out = fn()
    return out, clock.monotonic() - start


def bench_latency(latency: float, workers: int) -> Row:
    """The 300-card apply with ``latency`` simulated seconds per answer (real Trello: ~0.1-0.3)."""
    clock = ScaledClock(SPEED)
    fake, board = new_fake(clock)
    with fake.serve() as url:
        conn = TrelloConnector(
            settings_for(url, board),
            session=trello_session(url, registry=LimiterRegistry(clock)),
            max_workers=workers,
        )
        target = plan(conn.read())
        writes = [TaskWrite(cid, {Field.ASSIGNEES: (m,)}) for cid, m in target.items()]
        clock.sleep(11.0)  # a fresh budget
        fake.latency = latency / SPEED
        fake.reset_log()
        results, seconds = timed(clock, lambda: list(conn.write(writes)))
        return Row(
            f"tasksync, {latency * 1000:.0f} ms latency, {workers} worker{'s' if workers > 1 else ''}",
            1,
            fake.requests_to(),
            seconds,
            len(writes),
            fake.counts["429"],
            sum(not r.ok for r in results),
            "-",
        )


def bench_tasksync() -> list[Row]:
    clock = ScaledClock(SPEED)
    fake, board = new_fake(clock)
    rows = []
    with fake.serve() as url:
        conn = TrelloConnector(
            settings_for(url, board),
            session=trello_session(url, registry=LimiterRegistry(clock)),
        )
        fake.reset_log()
        snap = conn.read()
        read_requests = fake.requests_to()
        target = plan(snap)
        original = {t.id: t.assignees for t in snap.tasks}
        for label, wanted in (
            ("tasksync (fresh budget)", target),
            ("tasksync (spent budget)", {cid: original[cid][0] for cid in target}),
        ):
            writes = [TaskWrite(cid, {Field.ASSIGNEES: (m,)}) for cid, m in wanted.items()]
            fake.reset_log()
            results, seconds = timed(clock, lambda w=writes: list(conn.write(w)))  # type: ignore[misc]
            apply_requests = fake.requests_to()
            throttled = fake.counts["429"]
            failed = sum(not r.ok for r in results)
            # Re-sync: read again; the diff against the wanted state must be empty.
            fake.reset_log()
            again = conn.read()
            left = [cid for cid, m in wanted.items() if again.tasks_by_id[cid].assignees != (m,)]
            list(conn.write([TaskWrite(c, {Field.ASSIGNEES: (wanted[c],)}) for c in left]))
            rows.append(
                Row(
                    label,
                    read_requests,
                    apply_requests,
                    seconds,
                    len(writes),
                    throttled,
                    failed + len(left),
                    fake.requests_to(),
                )
            )
    return rows


def bench_conditional(touched_by_hand: int, check_before_each: bool = False) -> Row:
    """The 300-card apply with ``before`` on every write (fresh budget)."""
    clock = ScaledClock(SPEED)
    fake, board = new_fake(clock)
    with fake.serve() as url:
        conn = TrelloConnector(settings_for(url, board), session=trello_session(url, registry=LimiterRegistry(clock)))
        snap = conn.read()
        target = plan(snap)
        writes = [
            TaskWrite(cid, {Field.ASSIGNEES: (m,)}, {Field.ASSIGNEES: snap.tasks_by_id[cid].assignees})
            for cid, m in target.items()
        ]
        others = [m.id for m in snap.members]
        for cid in list(target)[:touched_by_hand]:  # a person reassigns them after the read
            now = snap.tasks_by_id[cid].assignees
            fake.card(cid)["idMembers"] = [next(m for m in others if (m,) != now and m != target[cid])]
            fake._record(fake.card(cid), "updateCard", "idMembers", fake.card(cid)["idMembers"])
        clock.sleep(11.0)  # a fresh budget
        fake.reset_log()
        if check_before_each:
            results, seconds = timed(clock, lambda: get_then_put(conn, writes))
            label = "GET each card before its PUT"
        else:
            results, seconds = timed(clock, lambda: list(conn.write(writes)))
            label = "tasksync conditional" + (f", {touched_by_hand} changed" if touched_by_hand else "")
        conflicts = sum(r.outcome is WriteStatus.CONFLICT for r in results)
        return Row(
            label,
            1,
            fake.requests_to(),
            seconds,
            len(writes),
            fake.counts["429"],
            sum(r.outcome is WriteStatus.FAILED for r in results),
            "-",
            conflicts,
        )


def get_then_put(conn: TrelloConnector, writes: list[TaskWrite]) -> list[WriteResult]:
    """The alternative to the actions feed: read each card just before writing it (4 at once)."""

    def one(w: TaskWrite) -> WriteResult:
        card = conn.client.fetch_json(f"/cards/{w.task_id}", query_params={"fields": "idMembers"})
        if tuple(sorted(card["idMembers"])) != w.before[Field.ASSIGNEES]:
            return WriteResult(w.task_id, False, "changed", status=WriteStatus.CONFLICT)
        members = ",".join(w.values[Field.ASSIGNEES])  # type: ignore[arg-type]
        conn.client.fetch_json(f"/cards/{w.task_id}", http_method="PUT", post_args={"idMembers": members})
        return WriteResult(w.task_id, True)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, writes))


def naive_apply(client: TrelloClient, board_id: str, target: dict[str, str]) -> tuple[int, int]:
    """py-trello's object model; returns (writes attempted, writes failed)."""
    board = client.get_board(board_id)
    cards = {c.id: c for c in board.all_cards()}
    failed = 0
    for cid, member in target.items():
        card = cards[cid]
        try:
            for old in list(card.idMembers):
                card.unassign(old)
            card.assign(member)
        except (ResourceUnavailable, ApiError):
            failed += 1
    return len(target), failed


def bench_naive(throttled_session: bool) -> Row:
    clock = ScaledClock(SPEED)
    fake, board = new_fake(clock)
    with fake.serve() as url:
        conn = TrelloConnector(settings_for(url, board), session=trello_session(url, registry=LimiterRegistry(clock)))
        target = plan(conn.read())
        clock.sleep(11.0)  # start with a fresh budget, like the tasksync run
        session: requests.Session = (
            trello_session(url, registry=LimiterRegistry(clock)) if throttled_session else RewritingSession(url)
        )
        client = TrelloClient(KEY, api_secret=TOKEN, http_service=session)
        fake.reset_log()
        (changes, failed), seconds = timed(clock, lambda: naive_apply(client, board, target))
        reads = fake.requests_to("GET")
        return Row(
            "py-trello objects" + (" + tasksync session" if throttled_session else ""),
            f"{reads} (+ in apply)",
            fake.requests_to(),
            seconds,
            changes,
            fake.counts["429"],
            failed,
            "n/a",
        )


def main() -> int:
    started = time.monotonic()
    rows = bench_tasksync()
    rows.append(bench_latency(0.2, 4))
    rows.append(bench_latency(0.2, 1))
    rows.append(bench_conditional(0))
    rows.append(bench_conditional(30))
    rows.append(bench_conditional(0, check_before_each=True))
    rows.append(bench_naive(throttled_session=False))
    rows.append(bench_naive(throttled_session=True))
    header = (
        f"{'implementation':38} {'read req':>16} {'apply req':>9} {'apply s':>8} "
        f"{'floor s':>7} {'x floor':>7} {'429s':>5} {'failed':>6} {'conflicts':>9} {'re-sync req':>11}"
    )
    print(
        f"Board: {CARDS} open cards, {MEMBERS} members; plan: reassign {CHANGES} cards; "
        f"limit 100 req/10 s per token; clock x{SPEED:g} (simulated seconds)."
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:38} {r.read_requests!s:>16} {r.apply_requests:>9} {r.apply_seconds:>8.1f} "
            f"{r.changes / TOKEN_RATE:>7.1f} {r.ratio:>7.2f} {r.throttled:>5} {r.failed:>6} "
            f"{r.conflicts:>9} {r.resync_requests!s:>11}"
        )
    print(f"(bench took {time.monotonic() - started:.0f} s real time)")
    ours = rows[:3]
    ok = all(
        r.read_requests == 1
        and r.apply_requests == r.changes
        and r.ratio <= 1.15
        and r.failed == 0
        and r.throttled <= max(1, r.changes // 1000)
        and r.resync_requests in (1, "-")
        for r in ours
    )
    plain, conditional, touched, get_first = rows[0], rows[4], rows[5], rows[6]
    ok = ok and (
        conditional.apply_requests <= plain.apply_requests * 1.06
        and touched.conflicts == 30
        and conditional.ratio <= 1.2
    )
    print(
        f"conditional writes cost {conditional.apply_requests - plain.apply_requests} requests more than plain "
        f"writes ({(conditional.apply_requests / plain.apply_requests - 1):.1%}); "
        f"GET-before-PUT costs {get_first.apply_requests - plain.apply_requests}"
    )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
