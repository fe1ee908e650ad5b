"""The scheduler: every ``interval`` seconds, one sync of every board is queued, once for the
whole cluster however many schedulers run (run two or three for availability).

Each scheduler loops on :meth:`Scheduler.tick`. Only the holder of the leader lease enqueues, and
the leader also claims the tick's number (``floor(now / interval)``) with ``SET NX`` before
enqueueing, so a tick is enqueued once even if a paused ex-leader wakes up believing it still
leads. Boards already queued (by a webhook, or a tick that has not run yet) are skipped by
:meth:`tasksync.cluster.jobs.Cluster.enqueue`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from tasksync.cluster.jobs import Cluster
from tasksync.cluster.lease import LeaderLease

__all__ = ["Scheduler"]

log = logging.getLogger("tasksync.cluster")


class Scheduler:
    def __init__(self, cluster: Cluster, *, lease_ttl: float = 15.0, clock: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.interval = cluster.cfg.interval
        self.lease = LeaderLease(cluster.redis, f"scheduler:{cluster.cfg.queue}", lease_ttl)
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.stopped = threading.Event()

    def tick(self, now: float | None = None) -> int | None:
        """Queue this tick's syncs if this scheduler leads and the tick is unclaimed.

        Returns how many boards were queued, or None when another scheduler leads."""
        now = self.clock() if now is None else now
        if not self.lease.hold():
            return None
        n = int(now // self.interval)
        claim = f"tasksync:tick:{self.cluster.cfg.queue}:{n}"
        if not self.cluster.redis.set(claim, self.lease.token, nx=True, ex=max(60, int(self.interval * 10))):
            return 0
        queued = self.cluster.enqueue_all("scheduled")
        log.info("scheduler: tick %d queued %d of %d boards", n, queued, len(self.cluster.cfg.boards))
        return queued

    def run(self) -> None:
        """Tick until :meth:`stop`; wakes at each tick and often enough to renew the lease."""
        try:
            while not self.stopped.is_set():
                try:
                    self.tick()
                except redis.RedisError as e:  # Redis restarting: the next wake-up tries again
                    log.warning("scheduler: Redis unavailable: %s", e)
                now = self.clock()
                next_tick = (int(now // self.interval) + 1) * self.interval
                self.stopped.wait(max(0.05, min(next_tick - now, self.lease_ttl / 3)))
        finally:
            self.lease.release()

    def stop(self) -> None:
        self.stopped.set()
