"""The one HTTP layer: base-URL rewriting, timeouts, a shared rate limiter, retries, errors.

Every request tasksync sends to a requests-based API goes through :class:`ApiSession`:

- **Base URL rewriting.** Clients that hard-code the vendor's URL (py-trello builds
  ``https://api.trello.com/1/...``) are sent to the configured base URL instead, e.g. a fake
  server on loopback.
- **Timeouts** on every request (a client that passes none gets the session's).
- **A client-side sliding-window limiter** per budget (Trello: 100 requests per 10 s per token and
  300 per 10 s per API key). Limiters live in a process-wide :class:`LimiterRegistry` keyed by a
  hash of the secret, so every board and every session using one token shares one budget. The
  vendor's ``x-rate-limit-*`` response headers correct the local count when another process
  spends the same budget.
- **Retries with tenacity.** A 429 blocks the whole budget until its window ends (plus jitter),
  so concurrent callers wait together instead of storming; 5xx, timeouts and dropped
  connections are retried for idempotent methods only (a POST may have been executed).
- **Error classification** into :mod:`tasksync.errors`; messages name the method and path and
  never contain the ``key``/``token`` query values. The Trello session moves them out of the
  URL altogether, into the ``Authorization: OAuth oauth_consumer_key=..., oauth_token=...``
  header Trello accepts, so no log line (urllib3's included) or proxy can keep them.

:class:`SlidingWindowLimiter`, :class:`LimiterRegistry`, :class:`Clock` and
:func:`error_for_status` do not depend on requests, so a connector on another transport (the
Asana SDK uses urllib3) can reuse the same limiter and classification.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_never

from tasksync.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    TransientError,
)

__all__ = [
    "IDEMPOTENT_METHODS",
    "TRELLO_VENDOR_URL",
    "ApiSession",
    "Budget",
    "Clock",
    "LimiterRegistry",
    "ScaledClock",
    "SlidingWindowLimiter",
    "SystemClock",
    "default_registry",
    "error_for_status",
    "redact",
    "trello_auth_header",
    "trello_budgets",
    "trello_session",
]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TRELLO_VENDOR_URL = "https://api.trello.com/1"
SECRET_PARAMS = ("key", "token", "oauth_token", "oauth_consumer_key", "access_token")

_SECRET_RE = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")=[^&\s'\"]*")


def redact(text: str) -> str:
    """``text`` with the values of ``key=``, ``token=`` (and other secret params) masked."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)


# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    """Time as the limiter and the retry policy see it; tests and benchmarks inject their own."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Time running ``factor`` times faster than real time (shared by a fake and a limiter).

    With ``factor=10`` a 10-second rate-limit window passes in one real second, so a benchmark
    of a throttled workload runs ten times faster while every ratio stays the same.
    """

    def __init__(self, factor: float = 10.0) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor = factor
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)


# --------------------------------------------------------------------------- limiter


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; thread-safe, blocking.

    ``margin`` (a share of the window) makes the local window slightly longer than the server's
    against clock skew; :meth:`settle` moves a slot's stamp to the moment its answer arrived, so
    latency cannot push a request into the server's next window. :meth:`block_for` stops every
    caller until a time (after a 429); :meth:`observe` takes the server's view of the budget from
    response headers.
    """

    def __init__(self, limit: int, window: float, *, clock: Clock | None = None, margin: float = 0.02) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.margin = margin
        self.clock: Clock = clock or SystemClock()
        self._stamps: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds callers spent waiting (for reports and tests)
        self.acquired = 0

    @property
    def span(self) -> float:
        return self.window * (1.0 + self.margin)

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.span:
            self._stamps.popleft()

    def in_window(self) -> int:
        with self._lock:
            self._expire(self.clock.monotonic())
            return len(self._stamps)

    def delay(self) -> float:
        """Seconds the next :meth:`acquire` would wait now (0 if a slot is free)."""
        with self._lock:
            return self._delay(self.clock.monotonic())

    def _delay(self, now: float) -> float:
        self._expire(now)
        if self._blocked_until > now:
            return self._blocked_until - now
        if len(self._stamps) < self.limit:
            return 0.0
        return self._stamps[len(self._stamps) - self.limit] + self.span - now

    def try_acquire(self) -> tuple[float, float]:
        """``(0, stamp)`` after taking a slot, or ``(seconds to wait, 0)`` without taking one."""
        with self._lock:
            now = self.clock.monotonic()
            wait = self._delay(now)
            if wait <= 0:
                self._stamps.append(now)
                self.acquired += 1
                return 0.0, now
            return wait, 0.0

    def acquire(self) -> float:
        """Block until a slot is free and take it; returns the slot's stamp for :meth:`settle`."""
        while True:
            wait, stamp = self.try_acquire()
            if wait <= 0:
                return stamp
            # Small steps keep waiting callers responsive to ``observe``/``block_for``.
            step = min(wait, self.window / 20)
            self.clock.sleep(step)
            with self._lock:
                self.waited += step

    def settle(self, stamp: float) -> None:
        """Move a slot's stamp to now, when its request has been answered (or has failed).

        The server counted the request at some moment between sending and answering; stamping it
        at the answer keeps the local window at least as long as the server's whatever the
        latency or scheduling delays, so those cannot cause a 429.
        """
        with self._lock:
            try:
                self._stamps.remove(stamp)
            except ValueError:  # already expired
                return
            self._stamps.append(self.clock.monotonic())

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Take a slot for one request and stamp it when the block ends (see :meth:`settle`)."""
        stamp = self.acquire()
        try:
            yield stamp
        finally:
            self.settle(stamp)

    def block_for(self, seconds: float) -> None:
        """Refuse every acquisition for ``seconds`` from now (after the server said 429)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def observe(self, remaining: int, maximum: int | None = None) -> None:
        """Align with the server's count: ``remaining`` requests left in its current window.

        If the server saw more requests than we sent (another process on the same token),
        phantom stamps take the difference so that we slow down accordingly.
        """
        with self._lock:
            if maximum is not None and maximum > 0:
                self.limit = maximum
            now = self.clock.monotonic()
            self._expire(now)
            used = self.limit - max(remaining, 0)
            for _ in range(used - len(self._stamps)):
                self._stamps.append(now)


class LimiterRegistry:
    """Limiters shared process-wide, one per (scope, secret) pair; secrets are kept hashed."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._limiters: dict[tuple[str, str], SlidingWindowLimiter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()[:16]

    def get(self, scope: str, secret: str, limit: int, window: float) -> SlidingWindowLimiter:
        ident = (scope, self.fingerprint(secret))
        with self._lock:
            lim = self._limiters.get(ident)
            if lim is None:
                lim = SlidingWindowLimiter(limit, window, clock=self.clock)
                self._limiters[ident] = lim
            return lim

    def clear(self) -> None:
        with self._lock:
            self._limiters.clear()


_DEFAULT_REGISTRY = LimiterRegistry()


def default_registry() -> LimiterRegistry:
    """The process-wide registry every session uses unless given another (tests do)."""
    return _DEFAULT_REGISTRY


@dataclass(frozen=True, slots=True)
class Budget:
    """One rate-limit budget: identified by the value of a query parameter of each request.

    ``header`` is the response-header prefix reporting it, e.g. ``x-rate-limit-api-token``
    (followed by ``-remaining``, ``-max`` and ``-interval-ms``); ``error`` is the code a 429 body
    carries when this budget (and not another) ran out.
    """

    scope: str
    param: str
    limit: int
    window: float
    header: str | None = None
    error: str | None = None


def trello_budgets() -> tuple[Budget, ...]:
    """Trello's documented limits: 100 per 10 s per token, 300 per 10 s per API key."""
    return (
        Budget("trello-token", "token", 100, 10.0, "x-rate-limit-api-token", "API_TOKEN_LIMIT_EXCEEDED"),
        Budget("trello-key", "key", 300, 10.0, "x-rate-limit-api-key", "API_KEY_LIMIT_EXCEEDED"),
    )


# --------------------------------------------------------------------------- errors


def error_for_status(status: int, body: str, what: str, *, retry_after: float | None = None) -> ApiError:
    """The :mod:`tasksync.errors` exception for an HTTP error status; ``what`` names the call."""
    detail = redact(" ".join(body.split())[:300]) or "(no body)"
    message = f"{what}: HTTP {status}: {detail}"
    if status in (401, 403):
        return AuthError(message, status)
    if status == 404:
        return NotFoundError(message, status)
    if status == 429:
        return RateLimitedError(message, status, retry_after=retry_after)
    if status >= 500:
        return TransientError(message, status)
    return ApiError(message, status)


class _Throttled(Exception):
    """A 429 that the retry loop waits out (never escapes the session)."""

    def __init__(self, error: RateLimitedError) -> None:
        super().__init__(str(error))
        self.error = error


class _Retriable(Exception):
    """A transient failure of an idempotent request (never escapes the session)."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------- session


class ApiSession(requests.Session):
    """A ``requests.Session`` that rewrites, throttles, retries and classifies.

    Non-2xx answers raise :class:`tasksync.errors.ApiError` subclasses after retries (so clients
    such as py-trello never see them); 2xx responses are returned as usual.
    """

    def __init__(
        self,
        base_url: str,
        *,
        vendor_url: str | None = None,
        budgets: Sequence[Budget] = (),
        registry: LimiterRegistry | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 6,
        max_rate_limited: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        service: str = "API",
        rng: random.Random | None = None,
        auth_header: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.vendor_url = (vendor_url or base_url).rstrip("/")
        self.budgets = tuple(budgets)
        self.registry = registry or default_registry()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_rate_limited = max_rate_limited
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.service = service
        self.rng = rng or random.Random()
        self.auth_header = auth_header
        self.stats: dict[str, int] = {
            "requests": 0,
            "retries": 0,
            "rate_limited": 0,
            "transient": 0,
        }
        self._stats_lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self.registry.clock

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

    def rewrite(self, url: str) -> str:
        """The URL to send: the vendor's base replaced by the configured one."""
        if self.vendor_url != self.base_url and url.startswith(self.vendor_url):
            return self.base_url + url[len(self.vendor_url) :]
        if url.startswith("/"):
            return self.base_url + url
        return url

    def limiters_for(self, params: Any) -> list[tuple[Budget, SlidingWindowLimiter]]:
        values: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        out = []
        for b in self.budgets:
            secret = values.get(b.param)
            if secret:
                out.append((b, self.registry.get(b.scope, str(secret), b.limit, b.window)))
        return out

    def describe(self, method: str, url: str) -> str:
        return f"{self.service} {method} {redact(urlsplit(url).path)}"

    def _observe(
        self, resp: requests.Response, limiters: Sequence[tuple[Budget, SlidingWindowLimiter]]
    ) -> float | None:
        """Feed rate-limit headers to the limiters; return the largest window seen (seconds)."""
        window: float | None = None
        for budget, lim in limiters:
            if not budget.header:
                continue
            remaining = resp.headers.get(f"{budget.header}-remaining")
            maximum = resp.headers.get(f"{budget.header}-max")
            interval = resp.headers.get(f"{budget.header}-interval-ms")
            try:
                if interval is not None:
                    window = max(window or 0.0, int(interval) / 1000.0)
                if remaining is not None:
                    lim.observe(int(remaining), int(maximum) if maximum is not None else None)
            except ValueError:
                continue
        return window

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled):
            return 0.0  # the limiter's block makes ``acquire`` wait out the window
        n = state.attempt_number
        cap = min(self.max_backoff, self.backoff * (2 ** (n - 1)))
        return float(self.rng.uniform(cap / 2, cap))  # "equal jitter": never zero, never herd

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: Any = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = self.rewrite(url.decode() if isinstance(url, bytes) else url)
        what = self.describe(verb, target)
        idempotent = verb in IDEMPOTENT_METHODS
        limiters = self.limiters_for(params)
        if self.auth_header is not None and isinstance(params, Mapping):
            # Credentials travel in a header, never in a URL that a log or proxy could keep.
            params = dict(params)
            value = self.auth_header(params)
            if value is not None:
                headers = {**(headers or {}), "Authorization": value}
        throttled = 0
        failures = 0

        def once() -> requests.Response:
            nonlocal throttled
            slots = [(lim, lim.acquire()) for _, lim in limiters]
            self._count("requests")
            try:
                resp = super(ApiSession, self).request(
                    verb,
                    target,
                    params=params,
                    data=data,
                    headers=headers,
                    cookies=cookies,
                    files=files,
                    auth=auth,
                    timeout=timeout if timeout is not None else self.timeout,
                    allow_redirects=allow_redirects,
                    proxies=proxies,
                    hooks=hooks,
                    stream=stream,
                    verify=verify,
                    cert=cert,
                    json=json,
                )
            except requests.ConnectTimeout:
                # Never reached the server: safe to retry whatever the method.
                self._count("transient")
                raise retriable(TransientError(f"{what}: connect timeout")) from None
            except requests.Timeout:
                self._count("transient")
                err = TransientError(f"{what}: timed out")
                raise (retriable(err) if idempotent else err) from None
            except requests.ConnectionError as e:
                self._count("transient")
                err = TransientError(f"{what}: connection failed ({type(e).__name__})")
                raise (retriable(err) if idempotent else err) from None
            finally:
                for lim, stamp in slots:
                    lim.settle(stamp)
            window = self._observe(resp, limiters)
            status = resp.status_code
            if status < 400:
                return resp
            if status == 429:
                self._count("rate_limited")
                throttled += 1
                wait = window or max((b.window for b, _ in limiters), default=10.0)
                wait *= 1.0 + self.rng.uniform(0.02, 0.15)
                retry_after = resp.headers.get("Retry-After")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
                # Block the budget the server named (token or key), or all when it named none.
                named = [lim for b, lim in limiters if b.error and b.error in resp.text]
                for lim in named or [lim for _, lim in limiters]:
                    lim.block_for(wait)
                if not limiters:
                    self.clock.sleep(wait)
                limited = RateLimitedError(error_for_status(status, resp.text, what).args[0], status, retry_after=wait)
                if throttled >= self.max_rate_limited:
                    raise limited
                raise _Throttled(limited)
            failure = error_for_status(status, resp.text, what)
            if isinstance(failure, TransientError) and idempotent:
                raise retriable(failure)
            raise failure

        def retriable(err: TransientError) -> BaseException:
            """Retry ``err`` unless this request already used its transient-failure budget."""
            nonlocal failures
            failures += 1
            return _Retriable(err) if failures < self.max_attempts else err

        def should_retry(exc: BaseException) -> bool:
            return isinstance(exc, (_Throttled, _Retriable))

        def before_sleep(state: RetryCallState) -> None:
            self._count("retries")
            exc = state.outcome.exception() if state.outcome else None
            log.debug("retrying %s after %s", what, exc)

        retrying = Retrying(
            stop=stop_never,
            wait=self._wait,
            retry=retry_if_exception(should_retry),
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(once)
        except _Throttled as t:
            raise t.error from None
        except _Retriable as r:
            raise r.error from None


def trello_auth_header(params: dict[str, Any]) -> str | None:
    """Move Trello's ``key``/``token`` query parameters into an ``Authorization`` header."""
    key, token = params.get("key"), params.get("token")
    if not key or not token:
        return None
    del params["key"], params["token"]
    return f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'


def trello_session(
    base_url: str | None = None,
    *,
    registry: LimiterRegistry | None = None,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    max_attempts: int = 6,
) -> ApiSession:
    """The session for Trello: py-trello's hard-coded URL goes to ``base_url``."""
    return ApiSession(
        base_url or TRELLO_VENDOR_URL,
        vendor_url=TRELLO_VENDOR_URL,
        budgets=trello_budgets(),
        registry=registry,
        timeout=timeout,
        max_attempts=max_attempts,
        service="Trello",
        auth_header=trello_auth_header,
    )
