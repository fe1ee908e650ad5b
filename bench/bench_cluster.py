"""Benchmark: the cluster mode (Dramatiq workers, Redis, PostgreSQL) on the fake Trello.

For 1, 2 and 4 worker processes (2 threads each) over the same boards (generated from the
example, shared round-robin by ``--tokens`` tokens of one API key):

- **first sync**: every board's first ``serve`` iteration (read, plan, apply its changes and
  creates): boards synced per minute, against the API floor for the requests it took (the most
  requests on one token / 100 per 10 s, or all requests / 300 per 10 s for the key, whichever is
  longer): ``floor %`` = floor time / measured time (100 % = the API, not the cluster, is the limit);
- **idle round**: after a settling round (which reads each board again, as it sees tasksync's own
  writes), one more sync of every board with nothing changed: requests per board per interval,
  boards per minute;
- CPU seconds per board sync (all three rounds: first, settling, idle) and peak memory (VmHWM)
  per worker process;
- 429 answers from the fake (which enforces Trello's windows).

Baseline, same run: the 4 workers again with per-process budgets (``--local-budget``, as N
separate ``tasksync serve`` processes would behave), to show what sharing the budget prevents.

Needs Redis and PostgreSQL: ``eval "$(.ci/services.sh start)"`` then

    PYTHONPATH=src python bench/bench_cluster.py [--boards 24] [--cards 8] [--tokens 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tasksync.cluster.jobs import Cluster
from tasksync.cluster.testbed import ClusterSetup, make_cluster, per_token_peaks
from tasksync.testing.fake_trello import FakeTrello


@dataclass
class Row:
    name: str
    workers: int
    first_s: float
    first_requests: int
    floor_s: float
    idle_s: float
    idle_requests: int
    boards: int
    cpu_s: float
    peak_mb: float
    throttled: int
    token_peak: int

    @property
    def first_per_min(self) -> float:
        return self.boards / self.first_s * 60

    @property
    def floor_per_min(self) -> float:
        return self.boards / self.floor_s * 60

    @property
    def idle_per_min(self) -> float:
        return self.boards / self.idle_s * 60


def fresh_schema(base: str) -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}{'&' if '?' in base else '?'}options={quote(f'-c search_path={schema}')}"


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def wait(cond: Callable[[], bool], what: str, setup: ClusterSetup, limit: float = 1800.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"bench: gave up waiting for {what}\n{setup.logs()}")
        time.sleep(0.1)


def round_done(cluster: Cluster, keys: list[str], runs: int) -> bool:
    st = cluster.status()
    return all(st[k]["runs"] >= runs and st[k].get("outcome") == "ok" for k in keys)


def run(name: str, workers: int, args: argparse.Namespace, redis_url: str, pg_url: str, *extra: str) -> Row:
    fake = FakeTrello(key="fake-cluster-key", tokens=())
    with fake.serve() as url, tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        setup = make_cluster(
            Path(tmp),
            fake,
            url,
            args.boards,
            cards=args.cards,
            tokens=args.tokens,
            redis_url=redis_url,
            database_url=fresh_schema(pg_url),
            creates_every=args.creates_every,
        )
        cluster = setup.cluster()
        try:
            procs = [setup.start_worker(args.threads, *extra) for _ in range(workers)]
            logs = [Path(tmp) / f"worker{i}.log" for i in range(workers)]
            wait(lambda: all("worker ready" in p.read_text(errors="replace") for p in logs), "workers", setup)
            t0 = time.monotonic()
            cluster.enqueue_all()
            wait(lambda: round_done(cluster, setup.keys, 1), "the first sync", setup)
            first_s = time.monotonic() - t0
            first_requests = len([r for r in fake.log if not r.via_batch])
            peaks = per_token_peaks(fake, setup)
            counts = per_token_counts(fake, setup)
            floor_s = max(max(counts.values()) / 100 * 10, first_requests / 300 * 10)
            # The next sync reads each board once more (it sees its own writes in the actions);
            # the round after that is the idle one.
            cluster.enqueue_all("settle")
            wait(lambda: round_done(cluster, setup.keys, 2), "the settling round", setup)
            before = len(fake.log)
            t1 = time.monotonic()
            cluster.enqueue_all("idle")
            wait(lambda: round_done(cluster, setup.keys, 3), "the idle round", setup)
            idle_s = time.monotonic() - t1
            idle_requests = len([r for r in fake.log[before:] if not r.via_batch])
            stats = [proc_stats(p.pid) for p in procs]
            return Row(
                name,
                workers,
                first_s,
                first_requests,
                floor_s,
                idle_s,
                idle_requests,
                args.boards,
                sum(c for c, _ in stats) / (3 * args.boards),
                max(m for _, m in stats),
                fake.counts["status:429"],
                max(peaks.values()),
            )
        finally:
            setup.stop_workers()
            cluster.purge()


def per_token_counts(fake: FakeTrello, setup: ClusterSetup) -> dict[str, int]:
    from tasksync.cluster.testbed import board_of

    token_of_board = {bid: setup.tokens[key] for key, bid in setup.boards.items()}
    counts: dict[str, int] = {}
    for r in fake.log:
        b = None if r.via_batch else board_of(fake, r)
        if b in token_of_board:
            tok = token_of_board[b]
            counts[tok] = counts.get(tok, 0) + 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", type=int, default=24)
    p.add_argument("--cards", type=int, default=8)
    p.add_argument("--tokens", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--creates-every", type=int, default=4, help="every Nth board creates cards for new leads")
    p.add_argument("--workers", default="1,2,4")
    args = p.parse_args()
    redis_url = os.environ.get("TASKSYNC_TEST_REDIS_URL")
    pg_url = os.environ.get("TASKSYNC_TEST_POSTGRES_URL")
    if not redis_url or not pg_url:
        sys.exit('bench: start Redis and PostgreSQL first: eval "$(.ci/services.sh start)"')
    rows = [run(f"{w} worker(s)", w, args, redis_url, pg_url) for w in map(int, args.workers.split(","))]
    most = max(map(int, args.workers.split(",")))
    rows.append(run(f"{most} workers, own budgets", most, args, redis_url, pg_url, "--local-budget"))
    base = rows[0]
    print(
        f"\n{args.boards} boards ({args.cards} cards, every {args.creates_every}th creating cards), "
        f"{args.tokens} tokens of one key, {args.threads} threads per worker, {os.cpu_count()} CPUs\n"
    )
    head = (
        f"{'run':26} {'first sync':>11} {'vs 1':>5} {'API floor':>10} {'floor %':>8} {'reqs':>5} "
        f"{'idle sync':>10} {'idle req/board':>14} {'CPU s/sync':>10} {'peak MB':>8} {'429s':>5} {'tok peak':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.name:26} {r.first_per_min:8.1f}/mn {r.first_per_min / base.first_per_min:5.2f} "
            f"{r.floor_per_min:7.1f}/mn {r.floor_s / r.first_s:8.0%} {r.first_requests:5d} "
            f"{r.idle_per_min:7.1f}/mn {r.idle_requests / r.boards:14.2f} {r.cpu_s:10.2f} "
            f"{r.peak_mb:8.0f} {r.throttled:5d} {r.token_peak:8d}"
        )
    print(
        "\nboards/mn: boards synced per minute (first sync: read, plan, apply; idle: nothing changed). "
        "API floor: the boards/mn the API's windows allow for the requests the first sync took, at "
        "their sustained rate (100 per 10 s per token, 300 per key; a short run can beat it by up to "
        "one window's burst, hence floor % a little over 100). tok peak: most requests on one token in any 10 s "
        "(the fake's log; Trello's limit is 100)."
    )


if __name__ == "__main__":
    main()
