"""Per-token and per-key request budgets shared by every worker of the cluster, in Redis.

Both connectors ask the transport core's (:mod:`tasksync.connectors.transport`) process-wide
:class:`LimiterRegistry` for one limiter per budget (Trello: 100 requests per 10 s per token,
300 per API key) and calls ``acquire`` before each request, ``settle`` when its answer arrived,
``block_for`` after a 429 and ``observe`` with the server's ``x-rate-limit-*`` headers.
:class:`RedisWindowLimiter` keeps the same contract with the window's log in a Redis sorted set,
so the budget is counted once for the whole cluster:

- every decision is one Lua script, atomic in Redis, with Redis's clock (``TIME``), so workers on
  machines with skewed clocks still count one window;
- the log is exact (one entry per request), not per-second buckets: Trello counts a sliding
  10-second window, and a bucketed count (such as Dramatiq's ``WindowRateLimiter``) can admit a
  bucket's worth too many at a window's edge;
- a request's entry is re-stamped when its answer arrives (``settle``), so latency cannot push it
  into the server's next window; a 429 blocks the budget for every worker (``block_for``).

Secrets never reach Redis: keys carry the registry's hash of the token or key.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

import tasksync.connectors.transport as transport
from tasksync.connectors.transport import Clock, LimiterRegistry, SlidingWindowLimiter

__all__ = ["RedisLimiterRegistry", "RedisWindowLimiter", "install_shared_budget", "redis_client"]

PREFIX = "tasksync:budget:"

# KEYS: log, block. ARGV: limit, span_ms, member, dry ("1": only say). Returns 0 (a slot is free,
# and taken unless dry) or the milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return blocked - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  if ARGV[4] == '1' then return 0 end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], span * 2)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + span - now)
"""

# KEYS: log. ARGV: member, span_ms. Re-stamps the member at Redis's now (if still in the window).
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
end
return 0
"""

# KEYS: block. ARGV: milliseconds. Blocks until max(current block, now + ms).
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then redis.call('SET', KEYS[1], until_, 'PX', tonumber(ARGV[1]) + 1000) end
return 0
"""

# KEYS: log. ARGV: used (by the server's count), span_ms, member prefix. Adds phantom entries so
# that the log holds at least what the server counted (requests from outside the cluster).
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local missing = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
for i = 1, missing do redis.call('ZADD', KEYS[1], now, ARGV[3] .. i) end
if missing > 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2) end
return math.max(missing, 0)
"""


def redis_client(url: str) -> redis.Redis:
    """A client that rides out a Redis restart: connection errors are retried for about 30 s."""
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=20)
    return redis.Redis.from_url(
        url,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=15,
    )


class RedisWindowLimiter(SlidingWindowLimiter):
    """:class:`SlidingWindowLimiter`'s contract, counted in Redis for the whole cluster."""

    def __init__(
        self, client: redis.Redis, name: str, limit: int, window: float, *, clock: Clock, margin: float = 0.02
    ) -> None:
        super().__init__(limit, window, clock=clock, margin=margin)
        self.client = client
        self.log_key = f"{PREFIX}{name}"
        self.block_key = f"{PREFIX}{name}:block"
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)
        self._block = client.register_script(_BLOCK)
        self._observe = client.register_script(_OBSERVE)
        self._members: dict[float, str] = {}
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:12]
        self._local = threading.Lock()

    @property
    def span_ms(self) -> int:
        return int(self.span * 1000) + 1

    def in_window(self) -> int:
        now_s, now_us = self.client.time()
        now = now_s * 1000 + now_us // 1000
        return int(self.client.zcount(self.log_key, now - self.span_ms, "+inf"))

    def delay(self) -> float:
        args: list[str | int] = [self.limit, self.span_ms, "", "1"]
        return int(self._acquire(keys=[self.log_key, self.block_key], args=args)) / 1000.0

    def try_acquire(self) -> tuple[float, float]:
        with self._local:
            n = next(self._ids)
            member = f"{self._prefix}:{n}"
        wait_ms = int(self._acquire(keys=[self.log_key, self.block_key], args=[self.limit, self.span_ms, member, "0"]))
        if wait_ms > 0:
            return wait_ms / 1000.0, 0.0
        stamp = float(n)
        with self._local:
            self._members[stamp] = member
            self.acquired += 1
        return 0.0, stamp

    def settle(self, stamp: float) -> None:
        with self._local:
            member = self._members.pop(stamp, None)
        if member is not None:
            self._settle(keys=[self.log_key], args=[member, self.span_ms])

    def block_for(self, seconds: float) -> None:
        self._block(keys=[self.block_key], args=[max(1, int(seconds * 1000))])

    def observe(self, remaining: int, maximum: int | None = None) -> None:
        if maximum is not None and maximum > 0:
            self.limit = maximum
        used = self.limit - max(remaining, 0)
        if used > 0:
            with self._local:
                prefix = f"{self._prefix}:seen{next(self._ids)}:"
            self._observe(keys=[self.log_key], args=[used, self.span_ms, prefix])


class RedisLimiterRegistry(LimiterRegistry):
    """Hands out :class:`RedisWindowLimiter` s: one budget per (scope, secret) for the cluster."""

    def __init__(self, client: redis.Redis, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.client = client

    def get(
        self, scope: str, secret: str, limit: int, window: float, *, shared_dir: Path | None = None
    ) -> SlidingWindowLimiter:
        """The cluster-wide limiter of this budget (``shared_dir``, the per-machine file record
        of the embedded mode, is not needed: Redis is shared by every machine)."""
        ident = (scope, self.fingerprint(secret), "redis")
        with self._lock:
            lim = self._limiters.get(ident)
            if lim is None or lim.window != window:
                lim = RedisWindowLimiter(self.client, f"{scope}:{ident[1]}", limit, window, clock=self.clock)
                self._limiters[ident] = lim
            return lim


def install_shared_budget(client: redis.Redis) -> RedisLimiterRegistry:
    """Make every connector created from now on in this process count its requests in Redis.

    Both connectors take their limiters from the transport core's process-wide default registry
    (Trello: per token and per key; Asana: per token, ``requests_per_minute`` per 60 s); this
    replaces it (:func:`tasksync.connectors.transport.set_default_registry`)."""
    registry = RedisLimiterRegistry(client)
    transport.set_default_registry(registry)
    return registry
