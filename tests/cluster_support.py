"""Real Redis and PostgreSQL for the cluster tests (started by ``.ci/services.sh``), and a cluster
of worker processes on the fake Trello.

The servers' URLs come from ``TASKSYNC_TEST_REDIS_URL`` and ``TASKSYNC_TEST_POSTGRES_URL``
(``eval "$(.ci/services.sh start)"`` sets them). In CI (``CI`` set) a missing server fails the
test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / ".ci" / "services.sh"


def _missing(what: str) -> None:
    message = f'{what} is not set: run `eval "$(.ci/services.sh start)"` first'
    if os.environ.get("CI"):
        pytest.fail(f"CI: {message}")
    pytest.skip(message)


def redis_url() -> str:
    url = os.environ.get("TASKSYNC_TEST_REDIS_URL")
    if not url:
        _missing("TASKSYNC_TEST_REDIS_URL")
    assert url is not None
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis at {url} does not answer: {e}")
    finally:
        client.close()
    return url


def postgres_url() -> str:
    url = os.environ.get("TASKSYNC_TEST_POSTGRES_URL")
    if not url:
        _missing("TASKSYNC_TEST_POSTGRES_URL")
    assert url is not None
    return url


def fresh_schema_url(base: str) -> str:
    """``base`` with a new, empty schema first on the search path: one test's private database."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-c search_path={schema}')}"


def restart(server: str) -> None:
    """Restart ``redis`` or ``postgres`` the way an operator would (clean stop, start)."""
    subprocess.run([str(SERVICES), "restart", server], check=True, capture_output=True, timeout=120)


def wait_for(cond: Callable[[], bool], what: str, limit: float = 240.0, on_fail: Callable[[], str] = str) -> None:
    """Poll ``cond`` until true; fail naming ``what`` after ``limit`` seconds (a hang guard, not a
    speed assertion)."""
    deadline = time.monotonic() + limit
    last_error = ""
    while True:
        try:
            if cond():
                return
        except Exception as e:  # a server restarting: ask again
            last_error = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} {last_error}\n{on_fail()}")
        time.sleep(0.2)


def make_cluster(root: Path, fake: Any, url: str, boards: int, **kw: Any) -> Any:
    """:func:`tasksync.cluster.testbed.make_cluster` on the test servers, in a fresh schema. The boards
    divide with the ``balanced`` policy unless ``policy`` says otherwise: these tests check the cluster
    (sharing, budgets, resumes, restarts), not the division, and ``optimal``'s exact steps cost
    seconds of CPU per board sync (``bench/bench_cluster.py`` runs the example's ``optimal``)."""
    from tasksync.cluster.testbed import make_cluster as make

    kw.setdefault("policy", "balanced")
    return make(root, fake, url, boards, redis_url=redis_url(), database_url=fresh_schema_url(postgres_url()), **kw)
