"""The official Asana SDK under the transport core: one attempt per request, nothing more.

:class:`AsanaApi` only supplies I/O to :mod:`tasksync.connectors.transport`, which owns the retry
rule, back-off, rate limiter and paging. What it adds is what the SDK gets wrong:

- the SDK's own urllib3 retries are switched off on the clients built here (they bypass the
  limiter, skip POST and end in ``MaxRetryError``), and every SDK or urllib3 failure becomes a
  :mod:`tasksync.errors` exception naming what was asked (:meth:`AsanaApi.translate`);
- list calls use ``full_payload=True``, so paging (``limit=100``, ``next_page.offset``) goes
  through the core's paginator, one request per page, with a fresh ``opts`` dict per call (the
  SDK mutates it);
- ``/batch`` is called with ``full_payload=True`` too (no lazy generator, no stray ``limit``);
  :meth:`AsanaApi.run_actions` packs actions ten per batch, never two for one task in a batch
  (Asana runs a batch's actions in parallel, in no order), sends batches concurrently and sends
  again only the actions that failed retriably;
- ``GET /events`` pages go through the paginator too (:meth:`AsanaApi.changes`), which stops
  when a server repeats a sync token while saying more events follow.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import asana
import urllib3
from asana.rest import ApiException

from tasksync.connectors.transport import (
    AnswerLost,
    NotSent,
    Page,
    PagingLoop,
    RetryPolicy,
    SlidingWindowLimiter,
    call,
    paginate,
    parse_retry_after,
)
from tasksync.errors import ApiError, AuthError, NotFoundError, RateLimitedError, TransientError

__all__ = ["Action", "AsanaApi", "Outcome", "SyncExpired", "release_sdk_pool", "shared_api_client"]

PAGE_LIMIT = 100
BATCH_MAX = 10

_CLIENTS: dict[tuple[str, str], Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_api_client(host: str, token: str) -> Any:
    """The process's one ``asana.ApiClient`` for this host and token (each starts a pool).

    The SDK's urllib3 retries are disabled: the transport core retries, through the limiter, and
    only where a request is safe to repeat.
    """
    key = (host.rstrip("/"), token)
    with _SHARED_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            cfg = asana.Configuration()
            cfg.host = key[0]
            cfg.access_token = token
            cfg.retry_strategy = urllib3.Retry(
                total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False
            )
            client = asana.ApiClient(cfg)
            release_sdk_pool(client)
            _CLIENTS[key] = client
        return client


def release_sdk_pool(client: Any) -> None:
    """Stop the thread pool every ``ApiClient`` starts; it only serves ``async_req`` calls.

    tasksync never makes those, and a pool left to the SDK's ``__del__`` at interpreter exit
    prints tracebacks.
    """
    pool = getattr(client, "pool", None)
    if pool is not None:
        pool.close()
        pool.join()
        del client.pool


class SyncExpired(ApiError):
    """412 from ``/events``: the sync token is missing or expired; ``sync`` is a fresh one."""

    def __init__(self, message: str, sync: str | None) -> None:
        super().__init__(message, 412)
        self.sync = sync


@dataclass(slots=True)
class Action:
    """One batch action on behalf of one write or create (``owner`` is its index)."""

    owner: int
    task_id: str
    method: str
    relative_path: str
    data: dict[str, Any]
    label: str
    options: dict[str, Any] | None = None
    attempts: int = 0
    maybe_done: bool = False  # an earlier attempt may have been carried out

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"relative_path": self.relative_path, "method": self.method}
        if self.data:
            out["data"] = self.data
        if self.options:
            out["options"] = self.options
        return out


@dataclass(slots=True)
class Outcome:
    """What became of one batch action. ``maybe_done``: it may have been carried out although
    no success came back (a 5xx, or a batch whose answer was lost)."""

    status: int
    body: Any
    headers: Mapping[str, Any] = field(default_factory=dict)
    maybe_done: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retriable(self) -> bool:
        return self.status == 429 or self.status >= 500 or self.status == 0

    def message(self) -> str:
        return error_message(self.body) or f"HTTP {self.status}"


def error_message(body: Any) -> str:
    """The ``errors[].message`` texts of an Asana error body (bytes, str or parsed)."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        text = body
        try:
            body = json.loads(text)
        except ValueError:
            return text.strip()[:200]
    if isinstance(body, dict):
        errs = body.get("errors")
        if isinstance(errs, list):
            return "; ".join(str(e.get("message", "")) for e in errs if isinstance(e, dict))
    return ""


def _never_connected(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError) or (
        isinstance(reason, BaseException) and reason is not exc and _never_connected(reason)
    )


class _Sleeper:
    """The limiter's clock with an injected ``sleep`` (tests shorten back-off waits)."""

    def __init__(self, limiter: SlidingWindowLimiter, sleep: Callable[[float], None]) -> None:
        self.limiter = limiter
        self._sleep = sleep

    def monotonic(self) -> float:
        return self.limiter.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)


class AsanaApi:
    """One token's access to Asana: the SDK's API objects, the limiter, the retry policy."""

    def __init__(
        self,
        api_client: Any,
        limiter: SlidingWindowLimiter,
        *,
        policy: RetryPolicy,
        timeout: float,
        sleep: Callable[[float], None],
        concurrency: int,
    ) -> None:
        self.client = api_client
        self.limiter = limiter
        self.policy = policy
        self.timeout = timeout
        self.concurrency = concurrency
        self._clock = _Sleeper(limiter, sleep)
        self._rng = random.Random()
        self.tasks = asana.TasksApi(api_client)
        self.projects = asana.ProjectsApi(api_client)
        self.sections = asana.SectionsApi(api_client)
        self.fields = asana.CustomFieldSettingsApi(api_client)
        self.users = asana.UsersApi(api_client)
        self.batch = asana.BatchAPIApi(api_client)
        self.events = asana.EventsApi(api_client)
        self.stories = asana.StoriesApi(api_client)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.requests_sent = 0  # HTTP requests made, retries included

    def pause(self, attempt: int) -> None:
        """Wait the back-off after failed attempt ``attempt`` (1-based)."""
        self._clock.sleep(self.policy.backoff_for(attempt, self._rng))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tasksync-asana")
            return self._pool

    @staticmethod
    def translate(exc: BaseException, what: str) -> ApiError:
        """Map an SDK or urllib3 failure to a tasksync error whose message names ``what``."""
        if isinstance(exc, ApiError):
            return exc
        if isinstance(exc, ApiException):
            status = int(exc.status or 0)
            msg = error_message(exc.body) or (exc.reason or "")
            if status == 401:
                return AuthError(f"Asana rejected the token for {what} (401: {msg}); check TASKSYNC_ASANA_TOKEN", 401)
            if status == 403:
                return AuthError(f"no access to {what} with this Asana token (403: {msg})", 403)
            if status == 404:
                return NotFoundError(f"{what} not found or not visible to this token (404)", 404)
            if status == 412:
                sync = None
                with contextlib.suppress(TypeError, ValueError, AttributeError):
                    sync = json.loads(exc.body).get("sync")
                return SyncExpired(f"sync token for {what} is missing or expired", sync)
            if status == 429:
                headers = exc.headers or {}
                raw = headers.get("Retry-After") or headers.get("retry-after")
                return RateLimitedError(f"Asana rate limit on {what} (429: {msg})", retry_after=parse_retry_after(raw))
            if status == 0 or status >= 500:
                return TransientError(f"Asana failed on {what} ({status}: {msg})", status or None)
            return ApiError(f"Asana refused {what} ({status}: {msg})", status)
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            reason = getattr(exc, "reason", None) or exc
            text = f"connection to Asana failed on {what}: {type(reason).__name__}: {reason}"
            return NotSent(text) if _never_connected(exc) else TransientError(text)
        return ApiError(f"unexpected failure on {what}: {type(exc).__name__}: {exc}")

    def call(self, what: str, fn: Callable[[], Any], *, idempotent: bool) -> Any:
        """Send one request (``fn`` builds fresh arguments each time) under the retry rule."""

        def once() -> Any:
            with self._lock:
                self.requests_sent += 1
            try:
                return fn()
            except Exception as e:
                raise self.translate(e, what) from None

        return call(
            once, idempotent=idempotent, policy=self.policy, limiters=[self.limiter], clock=self._clock, rng=self._rng
        )

    def list_all(self, what: str, fn: Callable[[dict[str, Any]], Any], opts: Mapping[str, Any]) -> list[Any]:
        """Every item of a paged list: ``limit=100`` pages, each its own retried request.

        An expired offset (400 on a later page) starts the listing again, once.
        """
        for restart in range(2):
            paged = False

            def fetch(offset: str | None) -> Page[Any, str]:
                nonlocal paged
                paged = offset is not None

                def page() -> Any:
                    q = dict(opts)
                    q["limit"] = PAGE_LIMIT
                    if offset:
                        q["offset"] = offset
                    return fn(q)

                resp = self.call(what, page, idempotent=True)
                nxt = (resp.get("next_page") or {}).get("offset")
                return Page(resp.get("data") or [], nxt or None, bool(nxt))

            try:
                items, _ = paginate(fetch, what=f"Asana {what}")
                return items
            except ApiError as e:
                if restart == 0 and paged and e.status == 400:
                    continue
                raise
        raise ApiError(f"Asana {what}: the listing could not be completed")

    def changes(self, project_gid: str, bookmark: str | None, what: str) -> tuple[set[str] | None, str]:
        """The project's changed tasks since an events sync token (see ``AsanaConnector.changed_since``)."""
        changed: set[str] = set()
        full = False
        last = bookmark

        def fetch(token: str | None) -> Page[Any, str]:
            nonlocal full, last

            def get() -> Any:
                opts: dict[str, Any] = {"sync": token} if token else {}
                return self.events.get_events(project_gid, opts, full_payload=True, _request_timeout=self.timeout)

            resp = self.call(what, get, idempotent=True)
            events = resp.get("data") or []
            for ev in events:
                res = ev.get("resource") or {}
                parent = ev.get("parent") or {}
                if res.get("resource_type") == "task":
                    changed.add(str(res["gid"]))
                elif parent.get("resource_type") == "task":
                    changed.add(str(parent["gid"]))
                elif res.get("resource_type") not in ("story", "attachment"):
                    full = True
            nxt = resp.get("sync") or None
            last = nxt or last
            return Page(events, nxt, bool(resp.get("has_more")))

        try:
            _, newest = paginate(fetch, what=what, start=bookmark)
        except SyncExpired as e:
            if not e.sync:
                raise ApiError(f"{what}: 412 without a fresh sync token", 412) from None
            return None, e.sync
        except PagingLoop:
            if last is None:
                raise
            return None, last
        if newest is None:
            raise ApiError(f"{what}: no sync token in the answer")
        return (None if full else changed), newest

    # ------------------------------------------------------------------ batches
    def send_batch(self, actions: Sequence[Action], *, idempotent: bool, where: str) -> list[Outcome]:
        what = f"a batch of {len(actions)} actions on {where}"

        def send() -> Any:
            body = {"data": {"actions": [a.payload() for a in actions]}}
            return self.batch.create_batch_request(body, {}, full_payload=True, _request_timeout=self.timeout)

        resp = self.call(what, send, idempotent=idempotent)
        data = resp.get("data") if isinstance(resp, dict) else None
        if not isinstance(data, list) or len(data) != len(actions):
            raise AnswerLost(f"{what}: answer has no result per action")
        out = []
        for r in data:
            status = int(r.get("status_code") or 0)
            out.append(Outcome(status, r.get("body"), r.get("headers") or {}, maybe_done=status >= 500))
        return out

    @staticmethod
    def pack(pending: Sequence[Action]) -> list[list[Action]]:
        """Batches of at most ten actions, never two for the same task in one batch."""
        batches: list[list[Action]] = []
        tasks_in: list[set[str]] = []
        for a in pending:
            for batch, seen in zip(batches, tasks_in, strict=True):
                if len(batch) < BATCH_MAX and a.task_id not in seen:
                    batch.append(a)
                    seen.add(a.task_id)
                    break
            else:
                batches.append([a])
                tasks_in.append({a.task_id})
        return batches

    def run_actions(
        self, actions: Sequence[Action], *, idempotent: bool, where: str
    ) -> Iterator[tuple[Action, Outcome]]:
        """Send actions through ``/batch`` concurrently; retry failed retriable actions.

        Yields each action with its final outcome as soon as it is known. A whole batch that
        fails (timeout, 5xx after retries) gives each of its actions a status-0 outcome; with
        ``idempotent`` false it is not sent again (the caller decides, e.g. after a lookup).
        Auth errors and a missing project raise.
        """
        pending: deque[Action] = deque(actions)
        pool = self.executor()
        round_no = 0
        while pending:
            batches = self.pack(list(pending))
            pending.clear()
            futures: dict[Future[list[Outcome]], list[Action]] = {
                pool.submit(self.send_batch, b, idempotent=idempotent, where=where): b for b in batches
            }
            wait_hint = 0.0
            try:
                for fut in as_completed(futures):
                    batch = futures[fut]
                    final = False  # a whole-batch failure was already retried by call()
                    try:
                        outcomes = fut.result()
                    except (AuthError, NotFoundError):
                        raise
                    except ApiError as e:
                        final = True
                        outcomes = [_batch_failure(e) for _ in batch]
                    for a, o in zip(batch, outcomes, strict=True):
                        a.maybe_done = a.maybe_done or o.maybe_done
                        again = idempotent or o.status == 429
                        retry = again and a.attempts + 1 < self.policy.max_attempts
                        if not o.ok and not final and o.retriable and retry:
                            a.attempts += 1
                            pending.append(a)
                            wait_hint = max(wait_hint, parse_retry_after((o.headers or {}).get("Retry-After")) or 0.0)
                            continue
                        o.maybe_done = a.maybe_done and not o.ok
                        yield a, o
            finally:
                for fut in futures:
                    fut.cancel()
            if pending:
                round_no += 1
                self._clock.sleep(max(wait_hint, self.policy.backoff_for(round_no, self._rng)))


def _batch_failure(e: ApiError) -> Outcome:
    """The outcome of each action of a batch that failed as a whole."""
    status = 0 if isinstance(e, TransientError) else (e.status or 400)
    if isinstance(e, RateLimitedError):
        status = 429
    maybe = isinstance(e, TransientError) and not isinstance(e, NotSent | RateLimitedError)
    return Outcome(status, {"errors": [{"message": str(e)}]}, maybe_done=maybe)
