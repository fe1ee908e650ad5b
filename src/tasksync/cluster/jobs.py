"""Board syncs as Dramatiq jobs on Redis, with the state in PostgreSQL.

One job = one iteration of ``tasksync serve --once`` for one board: finish an interrupted apply,
re-read the CRM if it changed, detect board changes cheaply, plan, apply in scheduled mode, record
the status (:meth:`tasksync.service.loop.SyncService.run_once`, unchanged, over a
:class:`~tasksync.cluster.pgstore.PgStateStore`). Around it:

- **one writer per board**: the job holds the board's lease (:class:`~tasksync.cluster.lease.BoardLease`)
  for its whole run; a job finding the board busy queues one more run after ``lease_retry``
  seconds (the holder may have read the board before the change that triggered this job);
- **one queued job per board**: :meth:`Cluster.enqueue` sets ``tasksync:<queue>:queued:<board>`` with
  ``NX`` before sending, and the job deletes it before reading the board, so a burst of webhooks
  or an overlapping scheduler tick costs one sync, while a change arriving during a sync still gets
  its own;
- **shared budgets**: the worker counts every vendor request in Redis (:mod:`.budget`);
- **retries**: a job whose state store connection broke (PostgreSQL restarted or failed over) is
  retried by Dramatiq with exponential backoff; it resumes from the journal. API errors are
  recorded in the board's status and retried at the next periodic sync, as the service does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from tasksync.cluster.budget import install_shared_budget, redis_client
from tasksync.cluster.config import BoardEntry, ClusterConfig
from tasksync.cluster.lease import BoardLease, LeaseWriterLock
from tasksync.cluster.pgstore import PgStateStore, connect, migrate
from tasksync.errors import ConfigError, TasksyncError
from tasksync.service.loop import SyncService
from tasksync.sync.workspace import Workspace
from tasksync.team.overrides import RepOverrides

__all__ = ["Cluster", "JobResult", "StoreUnavailable"]

log = logging.getLogger("tasksync.cluster")

STATUS_PREFIX = "cluster:"  # kv rows of the cluster's own per-board records: board = "cluster:<key>"


class StoreUnavailable(Exception):
    """The state store's connection broke during a job: Dramatiq retries the job."""


@dataclass
class JobResult:
    key: str
    outcome: str  # ok | busy | error | paused
    plan_id: str | None = None
    applied: int = 0
    created: int = 0
    resumed: int = 0
    error: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Cluster:
    """The cluster's broker, its job and the operations around it, for one ``cluster.toml``.

    ``today`` fixes the planning date (tests and benchmarks), as ``tasksync serve --today`` does.
    """

    def __init__(
        self,
        cfg: ClusterConfig,
        *,
        today: date | None = None,
        heartbeat_timeout: float = 60.0,
        max_retries: int = 10,
    ) -> None:
        self.cfg = cfg
        self.today = today
        self.redis: redis.Redis = redis_client(cfg.redis_url)
        self.broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=cfg.redis_url,
            namespace=f"tasksync-{cfg.queue}",
            heartbeat_timeout=int(heartbeat_timeout * 1000),
        )
        declare = dramatiq.actor(
            broker=self.broker,
            actor_name="sync_board",
            queue_name=cfg.queue,
            max_retries=max_retries,
            min_backoff=1_000,
            max_backoff=60_000,
            time_limit=3_600_000,  # an apply of thousands of changes at the API's floor
            retry_when=self._retry_when,
        )
        self.sync_board: dramatiq.Actor[[str, str], None] = declare(self._job)
        self.max_retries = max_retries
        self._migrated = False
        self._remote_names: dict[str, set[str]] = {}

    def _retry_when(self, retries: int, exc: BaseException) -> bool:
        return retries < self.max_retries and isinstance(exc, StoreUnavailable | redis.ConnectionError | OSError)

    # ------------------------------------------------------------------ enqueueing
    def _queued(self, key: str) -> str:
        return f"tasksync:{self.cfg.queue}:queued:{key}"

    def enqueue(self, key: str, reason: str = "scheduled", *, delay: float = 0.0) -> bool:
        """Queue a sync of board ``key`` unless one is already queued; True if queued now.

        This is what a webhook endpoint calls for its board (and the scheduler for every board).
        """
        self.cfg.board(key)  # an unknown board is a configuration error, not a silent job
        ttl = max(int(self.cfg.interval * 10), int(delay) + 60)  # a lost message cannot block the board for long
        if not self.redis.set(self._queued(key), reason, nx=True, ex=ttl):
            return False
        self.sync_board.send_with_options(args=(key, reason), delay=int(delay * 1000) or None)
        return True

    def keys_for_remote(self, remote_ids: Iterable[str]) -> list[str]:
        """The board keys whose config names one of ``remote_ids``: a Trello board id or short
        link (``[trello] boards``, as an id, short link or URL) or an Asana project gid."""
        wanted = {i for i in remote_ids if i}
        out = []
        for b in self.cfg.boards:
            names = self._remote_names.get(b.key)
            if names is None:
                settings = b.settings()
                refs = [*settings.trello.boards, settings.asana.project] if settings.connector != "local" else []
                names = {part for ref in refs for part in ref.strip("/").split("/") if part}
                self._remote_names[b.key] = names
            if names & wanted:
                out.append(b.key)
        return out

    def enqueue_remote(
        self, remote_ids: Iterable[str], reason: str = "webhook", *, verify: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Queue a sync of the boards a webhook delivery concerns (by the board id or short link,
        or the Asana project gid, it carries) and ``verify(key)`` accepts; returns the keys
        queued now (not those already queued).

        The webhook endpoint (:mod:`tasksync.cluster.webhook`) passes a ``verify`` checking the
        delivery's signature with the board's own secret; the payload is used only to pick the
        board, never as data."""
        keys = self.keys_for_remote(remote_ids)
        return [k for k in keys if (verify is None or verify(k)) and self.enqueue(k, reason)]

    def enqueue_all(self, reason: str = "scheduled") -> int:
        """Queue every board (skipping those already queued); returns how many were queued."""
        return sum(self.enqueue(b.key, reason) for b in self.cfg.boards)

    # ------------------------------------------------------------------ the job
    def board_store(self, key: str) -> PgStateStore:
        """The state store as board ``key``'s team sees it (its rep overrides), on a connection of
        its own: a job holds its lease on it. ``tasksync-cluster reps`` sets overrides through it."""
        self.cfg.board(key)
        conn = connect(self.cfg.database_url)
        if not self._migrated:
            migrate(conn)
            self._migrated = True
        return PgStateStore(self.cfg.database_url, conn=conn, migrate=False, team=key)

    def _job(self, key: str, reason: str) -> None:
        result = self.run_board(key, reason)
        if result.outcome == "error" and result.error and result.error.startswith("store:"):
            raise StoreUnavailable(result.error)

    def run_board(self, key: str, reason: str = "direct") -> JobResult:
        """Run one sync of board ``key`` here, under its lease (what a job does)."""
        entry = self.cfg.board(key)
        self.redis.delete(self._queued(key))  # from now on a new change queues a new run
        try:
            store = self.board_store(key)
        except ConfigError as e:  # PostgreSQL down or restarting: Dramatiq retries the job
            raise StoreUnavailable(str(e)) from None
        started = time.time()
        workspace: list[Workspace] = []  # the job's, once built: closed last (its connector too)
        try:
            lease = BoardLease(store.pg, key)
            with lease as held:
                if not held:
                    self.enqueue(key, "busy", delay=self.cfg.lease_retry)
                    return JobResult(key, "busy")
                result = self._sync(entry, store, lease, workspace)
                if not (result.error or "").startswith("store:"):  # else Dramatiq retries the job
                    self._record(store, result, reason, started)
                return result
        except StoreUnavailable:
            raise
        except Exception as e:
            if store.pg.broken or store.pg.closed:
                return JobResult(key, "error", error=f"store: {type(e).__name__}: {e}")
            raise
        finally:
            for ws in workspace:
                ws.close()
            store.close()

    def _sync(self, entry: BoardEntry, store: PgStateStore, lease: BoardLease, out: list[Workspace]) -> JobResult:
        """One ``serve --once`` iteration of the board, on ``store``, with the lease as its writer
        lock; the workspace built is appended to ``out`` for the caller to close."""
        key = entry.key
        try:
            settings = entry.settings()
            ws = Workspace(settings, today=self.today, store=store, lock=LeaseWriterLock(lease))
            out.append(ws)
            svc = SyncService(settings, today=self.today, workspace=ws)
            overrides = self._overrides_in_force(store)
            if overrides != store.get(STATUS_PREFIX + key, "overrides"):
                svc.trigger("reps")  # a rep set away (or back) since: read the board and plan
            res = svc.run_once()
            if res.error is None and res.paused is None:
                store.put(STATUS_PREFIX + key, "overrides", overrides)
        except Exception as e:  # the board's config file, or an error that escaped the service
            if store.pg.broken or store.pg.closed:
                return JobResult(key, "error", error=f"store: {type(e).__name__}: {e}")
            if isinstance(e, TasksyncError):  # one line in the board's status
                return JobResult(key, "error", error=str(e))
            log.error("job: %s: %s: %s", key, type(e).__name__, e)
            return JobResult(key, "error", error=f"{type(e).__name__}: {e}")
        if store.pg.broken or store.pg.closed:
            return JobResult(key, "error", error=f"store: connection lost ({res.error})")
        outcome = "error" if res.error else ("paused" if res.paused else "ok")
        return JobResult(key, outcome, res.plan_id, res.applied, res.created, res.resumed, res.error or res.paused)

    def _overrides_in_force(self, store: PgStateStore) -> str:
        """The team's rep overrides in force today, as text to compare with the last job's: a
        change (set by command, cleared, or expired) makes the job plan even when neither the
        board nor the CRM exports changed."""
        active = RepOverrides(store).active(self.today or date.today())
        return json.dumps([(o.rep_id, o.setting, o.value, o.until and o.until.isoformat()) for o in active])

    def _record(self, store: PgStateStore, r: JobResult, reason: str, started: float) -> None:
        board = STATUS_PREFIX + r.key
        with store.transaction():
            runs = int(store.get(board, "runs") or 0) + 1
            store.put(board, "runs", str(runs))
            store.put(
                board,
                "last",
                json.dumps(
                    {
                        "worker": worker_name(),
                        "reason": reason,
                        "outcome": r.outcome,
                        "plan": r.plan_id,
                        "applied": r.applied,
                        "created": r.created,
                        "resumed": r.resumed,
                        "error": r.error,
                        "at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                        "seconds": round(time.time() - started, 3),
                    }
                ),
            )

    def status(self) -> dict[str, dict[str, Any]]:
        """Per board key: how many jobs ran and what the last one did."""
        with PgStateStore(self.cfg.database_url) as store:
            raw = store.values(STATUS_PREFIX)
        out: dict[str, dict[str, Any]] = {}
        for b in self.cfg.boards:
            values = raw.get(STATUS_PREFIX + b.key, {})
            last = json.loads(values["last"]) if "last" in values else {}
            out[b.key] = {"runs": int(values.get("runs", 0)), **last}
        return out

    # ------------------------------------------------------------------ the worker
    def worker(self, threads: int = 1, *, shared_budget: bool = True) -> dramatiq.Worker:
        """A started Dramatiq worker consuming this cluster's queue (stop it with ``.stop()``).

        Every vendor request of this process is counted in Redis from now on (``shared_budget``
        False leaves each process its own budget: only the benchmark's baseline does that)."""
        if shared_budget:
            install_shared_budget(self.redis)
        with connect(self.cfg.database_url) as conn:
            migrate(conn)
        self._migrated = True
        w = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=500)
        w.start()
        return w

    def purge(self) -> None:
        """Drop every queued job and queued marker (tests, or a reset after a bad deploy)."""
        self.broker.flush_all()
        for k in self.redis.scan_iter(self._queued("*")):
            self.redis.delete(k)
