"""Leases: one writer per board (PostgreSQL) and one scheduler leader (Redis).

**Board lease.** A session-level advisory lock, taken on the very connection the board's state
store writes through. Its expiry is the session's end: a worker killed with ``kill -9`` closes its
socket and PostgreSQL drops the lock at once; a machine that vanishes is noticed by TCP keepalives
(:func:`tasksync.cluster.pgstore.connect`: about 25 s). The lock also fences the holder: once its
session is gone, every journal write of the old holder fails, so it stops after the writes already
in flight, and those are conditional writes (``TaskWrite.before``) that a person's or the new
holder's change makes them refuse.

**Leader lease.** A Redis key set with ``NX`` and a time to live, holding a random token; renewed
and released only by its holder (compare-and-set scripts). The scheduler also claims each tick's
number with ``SET NX``, so even two schedulers that both believe they lead (a paused process
whose lease expired) enqueue a tick's syncs once.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import psycopg
import redis

from tasksync.sync.lock import BoardBusy, WriterLock

__all__ = ["BoardLease", "LeaderLease", "LeaseWriterLock", "board_lock_id"]


def board_lock_id(key: str) -> int:
    """The advisory lock number of a board: 64 bits of a hash of its key."""
    return int.from_bytes(hashlib.sha256(f"tasksync:board:{key}".encode()).digest()[:8], "big", signed=True)


class BoardLease:
    """``with BoardLease(conn, key) as held:`` — ``held`` is False when another worker has it."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], key: str) -> None:
        self.conn = conn
        self.key = key
        self.lock_id = board_lock_id(key)
        self.held = False

    def acquire(self) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_id,)).fetchone()
        self.held = bool(row and row[0])
        return self.held

    def release(self) -> None:
        if self.held and not self.conn.closed and not self.conn.broken:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_id,))
        self.held = False

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        try:
            self.release()
        except psycopg.Error:
            self.held = False  # the session is gone, and the lock with it


class LeaseWriterLock(WriterLock):
    """The engine's writer lock in the cluster: the board's lease, held by the job.

    The embedded writer lock is a file beside the SQLite store; in the cluster the store is
    PostgreSQL and the one-writer rule is the lease, so taking this lock checks that the job still
    holds its board's lease instead of locking a file (which would also need a writable config
    folder and would serialise unrelated boards configured in one folder)."""

    def __init__(self, lease: BoardLease) -> None:
        super().__init__(Path(f"lease-{lease.key}"), wait=0.0)
        self.lease = lease

    def acquire(self) -> None:
        if not self.lease.held:
            raise BoardBusy(f"{self.lease.key}: this job does not hold the board's lease")

    def release(self) -> None:
        return None

    @property
    def held(self) -> bool:
        return self.lease.held


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLease:
    """A Redis lease with a time to live: :meth:`hold` takes or renews it, True while held."""

    def __init__(self, client: redis.Redis, name: str, ttl: float) -> None:
        self.client = client
        self.key = f"tasksync:leader:{name}"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = secrets.token_hex(8)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        if int(self._renew(keys=[self.key], args=[self.token, self.ttl_ms])):
            return True
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
