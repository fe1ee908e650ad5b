"""Benchmark: the Asana connector against the fake Asana API under an enforced budget.

A project of 2,000 open tasks and 40 users. For each scenario: HTTP requests, 429s, wall time
on the fake's clock (which runs ``--scale`` times faster than real time, budget included), the
floor (requests ÷ budget) and the ratio of the two. Compared in the same run with a naive
writer calling the SDK's ``TasksApi.update_task`` once per task (throttled by the same limiter,
otherwise it only collects 429s).

Each scenario starts with a full budget window, so runs shorter than the budget are mostly a
burst (ratio below 1); the 2,000-task rebalance shows the sustained rate.

Conditional writes (each write carries the ``before`` the plan expects): after a read, one
``GET /events`` per 50 writes names the tasks someone touched and only those are read again;
the same with 50 tasks changed by hand (50 conflicts, nothing overwritten); and, for
comparison, a writer that reads every task again before writing it (ten per ``/batch``), which
is what the connector does when it has no events token from a read.

    PYTHONPATH=src python bench/bench_asana.py [--scale 30] [--rpm 150]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import asana
from pydantic import SecretStr

from tasksync.connectors.asana import AsanaConnector, release_sdk_pool
from tasksync.connectors.transport import SlidingWindowLimiter
from tasksync.model import Field, TaskWrite, WriteResult, WriteStatus
from tasksync.settings import AsanaSettings, Secrets, Settings
from tasksync.testing.fake_asana import DemoIds, FakeAsana


@dataclass
class Row:
    scenario: str
    requests: int
    limited: int
    seconds: float  # on the fake's clock
    floor: float
    changes: int
    conflicts: int = 0

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor if self.floor else float("nan")


def measure(fake: FakeAsana, name: str, changes: int, fn: Callable[[], object]) -> Row:
    fake.reset_budget()
    fake.clear_log()
    start = fake.now()
    out = fn()
    seconds = fake.now() - start
    log = fake.requests()
    requests = len(log)
    limited = sum(1 for r in log if r.status == 429)
    assert fake.requests_per_minute
    floor = requests / fake.requests_per_minute * 60.0
    conflicts = sum(r.outcome is WriteStatus.CONFLICT for r in out) if isinstance(out, list) else 0
    return Row(name, requests, limited, seconds, floor, changes, conflicts)


def connector(fake: FakeAsana, demo: DemoIds, rpm: int) -> AsanaConnector:
    settings = Settings(connector="asana", asana=AsanaSettings(project=demo.project, api_url=fake.url))
    settings.secrets = Secrets(asana_token=SecretStr(fake.token))
    return AsanaConnector(settings, limiter=SlidingWindowLimiter(rpm, 60.0 / fake.time_scale), backoff=0.05)


def naive_update(fake: FakeAsana, rpm: int, writes: list[TaskWrite]) -> None:
    """One SDK ``update_task`` per task: what a script without /batch would do."""
    cfg = asana.Configuration()
    cfg.host = fake.url
    cfg.access_token = fake.token
    client = asana.ApiClient(cfg)
    tasks = asana.TasksApi(client)
    limiter = SlidingWindowLimiter(rpm, 60.0 / fake.time_scale)
    try:
        for w in writes:
            assignees = w.values[Field.ASSIGNEES]
            assert isinstance(assignees, tuple)
            limiter.acquire()
            tasks.update_task(
                {"data": {"assignee": assignees[0] if assignees else None}},
                w.task_id,
                {"opt_fields": "modified_at"},
            )
    finally:
        release_sdk_pool(client)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--reassign", type=int, default=500)
    ap.add_argument("--rpm", type=int, default=150)
    ap.add_argument("--scale", type=float, default=30.0, help="fake seconds per real second")
    args = ap.parse_args()

    real_start = time.monotonic()
    with FakeAsana(requests_per_minute=args.rpm, time_scale=args.scale) as fake:
        demo = fake.seed_demo(tasks=args.tasks, users=args.users)
        conn = connector(fake, demo, args.rpm)
        rows: list[Row] = []
        snapshot = None

        def full_read() -> None:
            nonlocal snapshot
            snapshot = conn.read()

        rows.append(measure(fake, f"full read ({args.tasks} tasks)", 0, full_read))
        assert snapshot is not None and len(snapshot.tasks) == args.tasks

        users = demo.users
        plan = [
            TaskWrite(t.id, {Field.ASSIGNEES: (users[(i + 7) % len(users)],)})
            for i, t in enumerate(snapshot.tasks[: args.reassign])
        ]

        def batched() -> None:
            results = list(conn.write(plan))
            assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]

        rows.append(measure(fake, f"reassign {len(plan)} (connector, /batch)", len(plan), batched))

        _, token = conn.changed_since(None)

        def idle() -> None:
            changed, _ = conn.changed_since(token)
            assert changed is not None

        rows.append(measure(fake, "idle incremental sync (events)", 0, idle))

        plan2 = [
            TaskWrite(t.id, {Field.ASSIGNEES: (users[(i + 3) % len(users)],)})
            for i, t in enumerate(snapshot.tasks[: args.reassign])
        ]

        def guarded(shift: int) -> list[TaskWrite]:
            out = []
            for i, t in enumerate(snapshot.tasks[: args.reassign]):
                now = fake.tasks[t.id].assignee
                out.append(
                    TaskWrite(
                        t.id,
                        {Field.ASSIGNEES: (users[(i + shift) % len(users)],)},
                        {Field.ASSIGNEES: (now,) if now else ()},
                    )
                )
            return out

        def conditional(shift: int, by_hand: int, connected: AsanaConnector) -> Callable[[], list[WriteResult]]:
            writes = guarded(shift)
            for w in writes[:: max(1, len(writes) // by_hand)][:by_hand] if by_hand else []:
                task = fake.tasks[w.task_id]  # a person changes it after the read
                task.assignee = next(
                    u for u in users if (u,) not in (w.values[Field.ASSIGNEES], w.before[Field.ASSIGNEES])
                )
                fake._emit(task, "changed", "assignee")
            return lambda: list(connected.write(writes))

        window = 60.0 / args.scale  # one budget window in real seconds: the next scenario starts fresh
        conn.read()
        time.sleep(window)
        rows.append(
            measure(fake, f"reassign {args.reassign} conditional (events)", args.reassign, conditional(5, 0, conn))
        )
        conn.read()
        time.sleep(window)
        rows.append(
            measure(fake, f"reassign {args.reassign} conditional, 50 changed", args.reassign, conditional(13, 50, conn))
        )
        cold = connector(fake, demo, args.rpm)  # no read: every task is read again before its write
        rows.append(
            measure(fake, f"reassign {args.reassign}, re-read every task", args.reassign, conditional(17, 0, cold))
        )
        cold.close()

        rows.append(
            measure(
                fake,
                f"reassign {len(plan2)} (naive update_task)",
                len(plan2),
                lambda: naive_update(fake, args.rpm, plan2),
            )
        )

        rebalance = [
            TaskWrite(
                t.id,
                {
                    Field.ASSIGNEES: (users[(i + 11) % len(users)],),
                    Field.PRIORITY: ("P1", "P2", "P3", "P4")[i % 4],
                    Field.STAGE: demo.sections[(i + 1) % len(demo.sections)],
                },
            )
            for i, t in enumerate(snapshot.tasks)
        ]

        def rebalance_all() -> None:
            results = list(conn.write(rebalance))
            assert all(r.ok for r in results)

        rows.append(
            measure(
                fake,
                f"rebalance {len(rebalance)} (owner+priority+stage)",
                len(rebalance) * 3,
                rebalance_all,
            )
        )
        conn.close()

    print(
        f"\nAsana connector benchmark: {args.tasks} tasks, {args.users} users, "
        f"budget {args.rpm}/min, fake clock x{args.scale:g}"
    )
    header = f"{'scenario':44} {'requests':>8} {'429s':>5} {'fake s':>8} {'floor s':>8} {'ratio':>6} {'conflicts':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.scenario:44} {r.requests:8d} {r.limited:5d} {r.seconds:8.1f} {r.floor:8.1f} "
            f"{r.ratio:6.2f} {r.conflicts:9d}"
        )
    print(
        f"(floor = requests ÷ budget; each scenario starts with a full window; "
        f"real time {time.monotonic() - real_start:.1f} s)"
    )
    plain, cond = rows[1], rows[3]
    print(
        f"conditional writes: {cond.requests - plain.requests} requests more than plain writes "
        f"({cond.requests / plain.requests - 1:.0%}); re-reading every task: {rows[5].requests - plain.requests} more"
    )


if __name__ == "__main__":
    main()
