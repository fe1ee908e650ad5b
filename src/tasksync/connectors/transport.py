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
- **The rate limiter** (:class:`SlidingWindowLimiter`, in :mod:`tasksync.connectors.limiter`
  and re-exported here): a sliding window per budget. Its record
  lives in memory, or in a small file (:class:`FileWindow`) locked with ``fcntl`` and named by a
  hash of the token, so that consecutive commands and several services on one token share one
  budget.
- **One paginator** (:func:`paginate`) that fails when a page cursor or sync token repeats.
- **One redaction function** (:func:`redact`) for error messages and logs.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from tasksync.connectors.limiter import (
    Clock,
    FileWindow,
    LimiterRegistry,
    MemoryWindow,
    ScaledClock,
    SlidingWindowLimiter,
    SystemClock,
    secret_fingerprint,
)
from tasksync.errors import ApiError, AuthError, RateLimitedError, TransientError
from tasksync.model import WriteResult, WriteStatus

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
    "post_once",
    "redact",
    "secret_fingerprint",
    "set_default_registry",
    "whole_group",
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


# --------------------------------------------------------------------------- errors


class NotSent(TransientError):
    """The request never reached the server (connection refused, connect timeout)."""


class AnswerLost(TransientError):
    """The request may have been carried out, but no answer came after its retries."""


def post_once(task_id: str, post: Callable[[], object]) -> WriteResult:
    """Send a write that must never be repeated after a lost answer (a comment would be posted
    twice): a lost answer is :attr:`WriteStatus.UNKNOWN`, another API error a failure (retriable
    when transient); a refused token is raised."""
    try:
        post()
    except AnswerLost as e:
        return WriteResult(task_id, False, str(e), retriable=True, status=WriteStatus.UNKNOWN)
    except AuthError:
        raise
    except ApiError as e:
        return WriteResult(task_id, False, str(e), retriable=isinstance(e, TransientError))
    return WriteResult(task_id, True)


def whole_group(results: Iterable[WriteResult]) -> Iterator[WriteResult]:
    """The results of a group of writes sent at once, handed on only when every write of the
    group has answered: while the engine handles a result no write of that group is still in
    flight, so whatever a person changes then is seen by the next group's conditional check
    (the APIs have no compare-and-set; a change racing a write in flight is the vendor's
    last-writer-wins). When the group stops with an exception, the results it had are handed
    on first (so the engine journals them), then the exception is raised."""
    done: list[WriteResult] = []
    try:
        for result in results:
            done.append(result)
    except BaseException:
        yield from done
        raise
    yield from done


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


def paginate(fetch: Callable[[C | None], Page[T, C]], *, what: str, start: C | None = None) -> tuple[list[T], C | None]:
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
