"""The transport core: what every request to a vendor shares, whatever library sends it.

Nothing here imports an HTTP library. A connector's adapter (:class:`~tasksync.connectors.http.ApiSession`
for requests/py-trello, the Asana adapter around the official SDK) only performs one attempt and
turns its failure into a :mod:`tasksync.errors` exception; this module decides the rest:

- **Classification.** :class:`NotSent` (the request never reached the server: safe to repeat
  whatever the method), :class:`~tasksync.errors.TransientError` (5xx, a read timeout, a dropped
  connection: the request may have been carried out), :class:`~tasksync.errors.RateLimitedError`
  (429: not carried out), :class:`~tasksync.errors.AuthError` and every other
  :class:`~tasksync.errors.ApiError` (fatal: never repeated).
- **The retry rule** (:func:`call`): 429 always, while the policy's budget of rate-limited
  attempts and waiting lasts; ``NotSent`` always; other transient failures only for idempotent
  requests; ``max_attempts`` in all. A request that may have been carried out and still has no
  answer after its retries ends in :class:`AnswerLost`, so a connector can report the write as
  unknown rather than failed.
- **Back-off.** Exponential with "equal jitter" after transient failures; after a 429, the
  longer of ``Retry-After`` (integer or fractional seconds, or an HTTP date) and the vendor's
  window, plus jitter. With limiters the whole budget is blocked for that long, so concurrent
  callers wait together instead of storming.
- **The rate limiter** (:class:`SlidingWindowLimiter`): a sliding window per budget. Its record
  lives in memory, or in a small file (:class:`FileWindow`) locked with ``fcntl`` and named by a
  hash of the token, so that consecutive commands and several services on one token share one
  budget.
- **One paginator** (:func:`paginate`) that fails when a page cursor or sync token repeats.
- **One redaction function** (:func:`redact`) for error messages and logs.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from tasksync.errors import ApiError, AuthError, RateLimitedError, TransientError

__all__ = [
    "AnswerLost",
    "Clock",
    "FileWindow",
    "LimiterRegistry",
    "MemoryWindow",
    "NotSent",
    "Page",
    "PagingLoop",
    "RetryPolicy",
    "ScaledClock",
    "SlidingWindowLimiter",
    "SystemClock",
    "Throttled",
    "call",
    "default_registry",
    "paginate",
    "parse_retry_after",
    "redact",
    "secret_fingerprint",
    "set_default_registry",
]

T = TypeVar("T")
C = TypeVar("C", bound=Hashable)
T_co = TypeVar("T_co", covariant=True)
C_co = TypeVar("C_co", bound=Hashable, covariant=True)

# --------------------------------------------------------------------------- redaction

SECRET_PARAMS = ("key", "token", "secret", "oauth_token", "oauth_consumer_key", "access_token")
_QUERY_SECRET = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")=([^&\s'\"]+)")
_OAUTH_PAIR = re.compile(r'(?i)\b(oauth_token|oauth_consumer_key)="[^"]*"')
_HEADER_SECRET = re.compile(r"(?i)\b(authorization|x-hook-secret)(\s*[:=]\s*)(\S+(?: \S+)?)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every secret-looking parameter masked.

    Masks the values in ``secrets`` (four characters or longer), ``key=``/``token=``/``secret=``
    (and OAuth) query parameters, ``oauth_token="..."`` pairs and ``Authorization``/
    ``X-Hook-Secret`` header values.
    """
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, "***")
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
    text = _OAUTH_PAIR.sub(lambda m: f'{m.group(1)}="***"', text)
    return _HEADER_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def secret_fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a secret (limiter records, request logs)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- errors


class NotSent(TransientError):
    """The request never reached the server (connection refused, connect timeout)."""


class AnswerLost(TransientError):
    """The request may have been carried out, but no answer came after its retries."""


class Throttled(RateLimitedError):
    """A 429 that names the budgets (limiters) it applies to; others keep running."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        limiters: Sequence[SlidingWindowLimiter] = (),
    ) -> None:
        super().__init__(message, 429, retry_after=retry_after)
        self.limiters = tuple(limiters)


class PagingLoop(ApiError):
    """A page cursor or sync token came back a second time: the listing would never end."""


def parse_retry_after(value: object) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: ``"2"``, ``"0.25"`` or an HTTP date."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(0.0, seconds)


# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    """Time as the limiter and the retry policy see it; tests and benchmarks inject their own."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time (``time.monotonic`` is one clock for every process of the machine)."""

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


# --------------------------------------------------------------------------- window records


@dataclass(slots=True)
class Window:
    """A limiter's record: when its recent requests were counted, and any block after a 429."""

    stamps: list[float]
    blocked_until: float = 0.0


class WindowStore(Protocol):
    """Where a limiter keeps its :class:`Window`; ``locked`` gives exclusive access to it."""

    def locked(self) -> contextlib.AbstractContextManager[Window]: ...


class MemoryWindow:
    """The record of one process."""

    def __init__(self) -> None:
        self._window = Window([])
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Window]:
        with self._lock:
            yield self._window


class FileWindow:
    """A record shared by every process on the machine, in a small JSON file locked with fcntl.

    The file holds stamps of :func:`time.monotonic` (one clock for the whole machine); stamps
    from before a reboot lie in the future and are dropped. It is created 0600 and holds no
    secret: its name carries a hash of the token.
    """

    def __init__(self, path: Path, horizon: float) -> None:
        self.path = path
        self.horizon = horizon  # no stamp or block lies further ahead than this (reboots)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Window]:
        import fcntl  # POSIX only; the registry falls back to memory where it is missing

        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                window = self._load(fd)
                yield window
                data = json.dumps({"stamps": window.stamps, "blocked_until": window.blocked_until})
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data.encode())
            finally:
                os.close(fd)  # closing releases the lock

    def _load(self, fd: int) -> Window:
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            data = json.loads(raw) if raw else {}
            stamps = [float(s) for s in data.get("stamps", [])]
            blocked = float(data.get("blocked_until", 0.0))
        except (ValueError, TypeError, AttributeError):
            stamps, blocked = [], 0.0  # a damaged record costs one window of caution, never a crash
        now = time.monotonic()
        # Stamps are never ahead of now (a stamp ahead was made before a reboot); a block after a
        # 429 may lie ahead, but not beyond the horizon.
        return Window([s for s in stamps if s <= now + 1.0], blocked if blocked <= now + self.horizon else 0.0)


# --------------------------------------------------------------------------- limiter


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; thread-safe, blocking.

    ``margin`` (a share of the window) makes the local window slightly longer than the server's
    against clock skew; :meth:`settle` moves a slot's stamp to the moment its answer arrived, so
    latency cannot push a request into the server's next window. :meth:`block_for` stops every
    caller until a time (after a 429); :meth:`observe` takes the server's view of the budget from
    response headers. With a :class:`FileWindow` store all of this is shared between processes.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Clock | None = None,
        margin: float = 0.02,
        store: WindowStore | None = None,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.margin = margin
        self.clock: Clock = clock or SystemClock()
        self.store: WindowStore = store or MemoryWindow()
        self._stats = threading.Lock()
        self.waited = 0.0  # total seconds callers spent waiting (for reports and tests)
        self.acquired = 0

    @property
    def span(self) -> float:
        return self.window * (1.0 + self.margin)

    def _expire(self, w: Window, now: float) -> None:
        horizon = now - self.span
        if w.stamps and w.stamps[0] <= horizon:
            w.stamps[:] = [s for s in w.stamps if s > horizon]

    def _delay(self, w: Window, now: float) -> float:
        self._expire(w, now)
        if w.blocked_until > now:
            return w.blocked_until - now
        if len(w.stamps) < self.limit:
            return 0.0
        return w.stamps[len(w.stamps) - self.limit] + self.span - now

    def in_window(self) -> int:
        with self.store.locked() as w:
            self._expire(w, self.clock.monotonic())
            return len(w.stamps)

    def delay(self) -> float:
        """Seconds the next :meth:`acquire` would wait now (0 if a slot is free)."""
        with self.store.locked() as w:
            return self._delay(w, self.clock.monotonic())

    def try_acquire(self) -> tuple[float, float]:
        """``(0, stamp)`` after taking a slot, or ``(seconds to wait, 0)`` without taking one."""
        with self.store.locked() as w:
            now = self.clock.monotonic()
            wait = self._delay(w, now)
            if wait > 0:
                return wait, 0.0
            w.stamps.append(now)
        with self._stats:
            self.acquired += 1
        return 0.0, now

    def acquire(self) -> float:
        """Block until a slot is free and take it; returns the slot's stamp for :meth:`settle`."""
        while True:
            wait, stamp = self.try_acquire()
            if wait <= 0:
                return stamp
            # Small steps keep waiting callers responsive to ``observe``/``block_for``.
            step = min(wait, self.window / 20)
            self.clock.sleep(step)
            with self._stats:
                self.waited += step

    def settle(self, stamp: float) -> None:
        """Move a slot's stamp to now, when its request has been answered (or has failed).

        The server counted the request at some moment between sending and answering; stamping it
        at the answer keeps the local window at least as long as the server's whatever the
        latency or scheduling delays, so those cannot cause a 429.
        """
        with self.store.locked() as w:
            try:
                w.stamps.remove(stamp)
            except ValueError:  # already expired
                return
            w.stamps.append(self.clock.monotonic())

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Take a slot for one request and stamp it when the block ends (see :meth:`settle`)."""
        stamp = self.acquire()
        try:
            yield stamp
        finally:
            self.settle(stamp)

    def block_for(self, seconds: float) -> None:
        """Refuse every acquisition for ``seconds`` from now (after the server said 429)."""
        with self.store.locked() as w:
            w.blocked_until = max(w.blocked_until, self.clock.monotonic() + seconds)

    def observe(self, remaining: int, maximum: int | None = None) -> None:
        """Align with the server's count: ``remaining`` requests left in its current window.

        If the server saw more requests than we counted (a process that shares no record with
        us spends the same budget), phantom stamps take the difference so that we slow down.
        """
        if maximum is not None and maximum > 0:
            self.limit = maximum
        with self.store.locked() as w:
            now = self.clock.monotonic()
            self._expire(w, now)
            used = self.limit - max(remaining, 0)
            w.stamps.extend(now for _ in range(used - len(w.stamps)))


class LimiterRegistry:
    """Limiters shared process-wide, one per (scope, secret) pair; secrets are kept hashed.

    With ``shared_dir`` given to :meth:`get`, the limiter's record is a file in that folder
    (``limits-<scope>-<hash>.json``), shared by every process that uses the same folder and
    token; only a registry on the system clock shares records (a scaled clock is per process).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._limiters: dict[tuple[str, str, str], SlidingWindowLimiter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(secret: str) -> str:
        return secret_fingerprint(secret)

    def get(
        self, scope: str, secret: str, limit: int, window: float, *, shared_dir: Path | None = None
    ) -> SlidingWindowLimiter:
        folder = shared_dir if shared_dir is not None and isinstance(self.clock, SystemClock) else None
        ident = (scope, self.fingerprint(secret), str(folder or ""))
        with self._lock:
            lim = self._limiters.get(ident)
            if lim is None or lim.window != window:
                store = _file_store(folder, f"limits-{scope}-{ident[1]}.json", window) if folder else None
                lim = SlidingWindowLimiter(limit, window, clock=self.clock, store=store)
                self._limiters[ident] = lim
            return lim

    def clear(self) -> None:
        with self._lock:
            self._limiters.clear()


def _file_store(folder: Path, name: str, window: float) -> WindowStore | None:
    """A :class:`FileWindow` in ``folder`` (created 0700), or None where files cannot be shared."""
    try:
        import fcntl  # noqa: F401  (POSIX only)

        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = FileWindow(folder / name, horizon=window * 2 + 3600.0)
        with store.locked():
            pass
        return store
    except (ImportError, OSError):
        return None  # a read-only or missing state folder: this process keeps its own record


_DEFAULT_REGISTRY = LimiterRegistry()


def default_registry() -> LimiterRegistry:
    """The process-wide registry every session uses unless given another (tests do)."""
    return _DEFAULT_REGISTRY


def set_default_registry(registry: LimiterRegistry) -> LimiterRegistry:
    """Make ``registry`` the process-wide one for every connector opened from now on (the
    cluster's workers install one counting in Redis); returns the registry it replaces."""
    global _DEFAULT_REGISTRY
    previous, _DEFAULT_REGISTRY = _DEFAULT_REGISTRY, registry
    return previous


# --------------------------------------------------------------------------- the retry rule


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    ``max_attempts`` bounds the attempts of a request that fails with transient errors;
    ``max_throttled`` and ``max_throttle_wait`` (seconds) bound the 429s it waits out.
    ``window`` is the vendor's rate-limit window, the wait after a 429 that names none.
    """

    max_attempts: int = 6
    max_throttled: int = 8
    max_throttle_wait: float = 300.0
    backoff: float = 0.5
    max_backoff: float = 8.0
    window: float = 10.0

    def backoff_for(self, attempt: int, rng: random.Random) -> float:
        """The pause after failed attempt ``attempt`` (1-based): "equal jitter", never zero."""
        cap = min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1))
        return rng.uniform(cap / 2, cap)

    def throttle_wait(self, retry_after: float | None, rng: random.Random) -> float:
        """The wait after a 429: the server's ``Retry-After`` or the window, whichever is longer,
        plus a little jitter so that waiting callers do not come back in the same instant."""
        base = max(retry_after or 0.0, self.window if retry_after is None else 0.0)
        return base * (1.0 + rng.uniform(0.02, 0.15)) if base > 0 else rng.uniform(0.01, 0.05)


@dataclass(slots=True)
class _CallState:
    """What one :func:`call` has spent so far: transient attempts, 429s waited out, and whether
    an attempt may have been carried out (then a final failure is an :class:`AnswerLost`)."""

    attempts: int = 0
    throttled: int = 0
    throttle_waited: float = 0.0
    maybe_done: bool = False
    next_wait: float = 0.0
    exhausted: bool = False


def call(
    send: Callable[[], T],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    limiters: Sequence[SlidingWindowLimiter] = (),
    clock: Clock | None = None,
    rng: random.Random | None = None,
    on_retry: Callable[[ApiError], None] | None = None,
) -> T:
    """Run ``send`` (one attempt; raises :class:`ApiError` subclasses) under the retry rule.

    tenacity drives the attempts; the rule is ours: a 429 waits out ``Retry-After`` or the window
    (blocking only the budgets it names) within ``max_throttled``/``max_throttle_wait``; a
    transient error is retried with jittered back-off up to ``max_attempts``, but a non-idempotent
    request that may have been carried out is never sent twice; anything else is raised at once.
    Each attempt takes a slot of every limiter and settles it when the attempt ends. When the rule
    says stop after an attempt that may have landed, :class:`AnswerLost` is raised instead, so
    that a write is reported as unknown, not failed.
    """
    clock = clock or (limiters[0].clock if limiters else SystemClock())
    rng = rng or random.Random()
    state = _CallState()

    def attempt() -> T:
        slots = [(lim, lim.acquire()) for lim in limiters]
        try:
            return send()
        finally:
            for lim, stamp in slots:
                lim.settle(stamp)

    def retriable(err: BaseException) -> bool:
        """Count the failed attempt and decide whether the rule allows another one."""
        if isinstance(err, RateLimitedError):
            state.throttled += 1
            state.next_wait = policy.throttle_wait(err.retry_after, rng)
            state.exhausted = (
                state.throttled >= policy.max_throttled
                or state.throttle_waited + state.next_wait > policy.max_throttle_wait
            )
            return True
        if isinstance(err, TransientError):
            state.attempts += 1
            sent = not isinstance(err, NotSent)
            state.maybe_done = state.maybe_done or sent
            state.next_wait = policy.backoff_for(state.attempts, rng)
            state.exhausted = (sent and not idempotent) or state.attempts >= policy.max_attempts
            return True
        return False  # fatal: raised as it is

    def wait(retry_state: RetryCallState) -> float:
        err = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(err, RateLimitedError):
            state.throttle_waited += state.next_wait
            blocked = err.limiters if isinstance(err, Throttled) and err.limiters else limiters
            for lim in blocked:
                lim.block_for(state.next_wait)  # the next acquire waits it out
            return 0.0 if blocked else state.next_wait
        return state.next_wait

    def before_sleep(retry_state: RetryCallState) -> None:
        err = retry_state.outcome.exception() if retry_state.outcome else None
        if on_retry is not None and isinstance(err, ApiError):
            on_retry(err)

    retrying = Retrying(
        retry=retry_if_exception(retriable),
        stop=lambda _: state.exhausted,
        wait=wait,
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except ApiError as err:
        if state.exhausted:
            raise _final(err, state.maybe_done)  # noqa: B904 (_final sets the cause)
        raise


def _final(err: ApiError, maybe_done: bool) -> ApiError:
    if maybe_done and not isinstance(err, (AnswerLost, AuthError)):
        lost = AnswerLost(f"{err} (no answer after retries; the request may have been carried out)", err.status)
        lost.__cause__ = err
        return lost
    return err


# --------------------------------------------------------------------------- paging


@dataclass(frozen=True, slots=True)
class Page(Generic[T_co, C_co]):
    """One page of a listing: its items, the cursor after it, and whether more pages follow."""

    items: Sequence[T_co]
    cursor: C_co | None
    more: bool


def paginate(
    fetch: Callable[[C | None], Page[T, C]], *, what: str, start: C | None = None
) -> tuple[list[T], C | None]:
    """Every item of a paged listing, and the cursor after its last page.

    ``fetch(cursor)`` returns one :class:`Page`. A cursor that comes back a second time while
    the server says more pages follow raises :class:`PagingLoop`: a server that keeps saying
    "more" without moving on (an offset, a ``before`` id or an events sync token) would
    otherwise be asked forever.
    """
    items: list[T] = []
    seen: set[C] = set() if start is None else {start}
    cursor: C | None = start
    while True:
        page = fetch(cursor)
        items.extend(page.items)
        if page.cursor is not None:
            cursor = page.cursor
        if not page.more:
            return items, cursor
        if page.cursor is None or page.cursor in seen:
            raise PagingLoop(f"{what}: the server repeated a page cursor ({str(page.cursor)[:40]}); paging stopped")
        seen.add(page.cursor)
