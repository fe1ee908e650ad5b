"""requests under the transport core: base-URL rewriting, timeouts, budgets, one attempt at a time.

:class:`ApiSession` is the I/O adapter of :mod:`tasksync.connectors.transport` for requests-based
clients (py-trello): it rewrites the vendor's hard-coded URL to the configured one (e.g. a fake on
loopback), sets a timeout on every request, finds the rate-limit budgets a request spends (by the
value of its ``key``/``token`` parameters), performs one attempt and classifies its outcome. The
retry rule, back-off, limiter and error classes are the core's. The Trello session moves key and
token out of the URL altogether, into the ``Authorization: OAuth ...`` header Trello accepts, so
no log line (urllib3's included) or proxy can keep them.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tasksync.connectors.transport import (
    Clock,
    LimiterRegistry,
    NotSent,
    RetryPolicy,
    ScaledClock,
    SlidingWindowLimiter,
    SystemClock,
    Throttled,
    call,
    default_registry,
    parse_retry_after,
    redact,
)
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


class ApiSession(requests.Session):
    """A ``requests.Session`` that rewrites, throttles, retries and classifies.

    Non-2xx answers raise :class:`tasksync.errors.ApiError` subclasses after retries (so clients
    such as py-trello never see them); 2xx responses are returned as usual. ``shared_dir`` (the
    state folder) makes the budgets' records files shared with every process using that folder.
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
        shared_dir: Path | None = None,
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
        self.shared_dir = shared_dir
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

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            max_throttled=self.max_rate_limited,
            max_throttle_wait=float("inf"),
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            window=max((b.window for b in self.budgets), default=10.0),
        )

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
                lim = self.registry.get(b.scope, str(secret), b.limit, b.window, shared_dir=self.shared_dir)
                out.append((b, lim))
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
        limiters = self.limiters_for(params)
        if self.auth_header is not None and isinstance(params, Mapping):
            # Credentials travel in a header, never in a URL that a log or proxy could keep.
            params = dict(params)
            value = self.auth_header(params)
            if value is not None:
                headers = {**(headers or {}), "Authorization": value}
        options: dict[str, Any] = {
            "params": params,
            "data": data,
            "headers": headers,
            "cookies": cookies,
            "files": files,
            "auth": auth,
            "timeout": timeout if timeout is not None else self.timeout,
            "allow_redirects": allow_redirects,
            "proxies": proxies,
            "hooks": hooks,
            "stream": stream,
            "verify": verify,
            "cert": cert,
            "json": json,
        }

        def once() -> requests.Response:
            self._count("requests")
            return self._attempt(verb, target, what, options, limiters)

        def retried(err: ApiError) -> None:
            self._count("retries")
            log.debug("retrying %s after %s", what, err)

        return call(
            once,
            idempotent=verb in IDEMPOTENT_METHODS,
            policy=self.policy,
            limiters=[lim for _, lim in limiters],
            clock=self.clock,
            rng=self.rng,
            on_retry=retried,
        )

    def _attempt(
        self,
        verb: str,
        target: str,
        what: str,
        options: dict[str, Any],
        limiters: Sequence[tuple[Budget, SlidingWindowLimiter]],
    ) -> requests.Response:
        """One attempt: the response of a 2xx, or the classified error of anything else."""
        try:
            resp = super().request(verb, target, **options)
        except requests.ConnectTimeout:
            self._count("transient")
            raise NotSent(f"{what}: connect timeout") from None
        except requests.Timeout:
            self._count("transient")
            raise TransientError(f"{what}: timed out") from None
        except requests.ConnectionError as e:
            self._count("transient")
            if _never_connected(e):
                raise NotSent(f"{what}: cannot connect ({_reason(e)})") from None
            raise TransientError(f"{what}: connection lost ({type(e).__name__})") from None
        window = self._observe(resp, limiters)
        status = resp.status_code
        if status < 400:
            return resp
        if status == 429:
            self._count("rate_limited")
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            wait = max(retry_after or 0.0, window or 0.0) or None
            # Block the budget the server named (token or key), or all when it named none.
            named = [lim for b, lim in limiters if b.error and b.error in resp.text]
            limited = error_for_status(status, resp.text, what)
            raise Throttled(str(limited), retry_after=wait, limiters=named or [lim for _, lim in limiters])
        raise error_for_status(status, resp.text, what)


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the connection was refused or never made (nothing reached the server)."""
    import urllib3.exceptions

    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
            return True
        if isinstance(e, urllib3.exceptions.MaxRetryError):
            stack.append(e.reason)
        stack.extend(a for a in e.args if isinstance(a, BaseException))
        stack.extend((e.__cause__, e.__context__))
    return False


def _reason(error: BaseException) -> str:
    return (
        type(error.args[0]).__name__
        if error.args and isinstance(error.args[0], BaseException)
        else type(error).__name__
    )


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
    shared_dir: Path | None = None,
    budgets: Sequence[Budget] | None = None,
) -> ApiSession:
    """The session for Trello: py-trello's hard-coded URL goes to ``base_url``.

    ``shared_dir`` (the state folder) shares the token's and key's budgets with every other
    process on the machine using it; ``budgets`` replaces Trello's documented ones (tests).
    """
    return ApiSession(
        base_url or TRELLO_VENDOR_URL,
        vendor_url=TRELLO_VENDOR_URL,
        budgets=trello_budgets() if budgets is None else budgets,
        registry=registry,
        timeout=timeout,
        max_attempts=max_attempts,
        service="Trello",
        auth_header=trello_auth_header,
        shared_dir=shared_dir,
    )
