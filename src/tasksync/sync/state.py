"""The state store: what tasksync wrote, every plan, and a journal of every change.

SQLite in WAL mode, one file per team (default ``.tasksync/state.sqlite3`` beside the config).
Each journal row is committed on its own, before and after its write is sent, so a crash at
any moment leaves enough to resume without losing or repeating a change.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from tasksync.errors import ConfigError, TasksyncError
from tasksync.files import private_file
from tasksync.model import (
    BoardRef,
    Field,
    FieldValue,
    JournalStatus,
    Plan,
    PlanStatus,
    value_from_json,
    value_to_json,
)

__all__ = [
    "SCHEMA_VERSION",
    "JournalRow",
    "OverrideRow",
    "PlanRecord",
    "StateStore",
    "StateStoreError",
    "StateStoreProtocol",
]

#: The schema this tasksync writes. A store made by an older version is migrated on open by the
#: steps in :data:`_MIGRATIONS` (``version -> SQL`` taking the schema from ``version - 1``); to add
#: a table or a column, bump the version and add a step.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS field_state (
    board TEXT NOT NULL, task_id TEXT NOT NULL, field TEXT NOT NULL,
    value TEXT, plan_id TEXT, written_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'tasksync',  -- 'person' once someone changed it by hand
    PRIMARY KEY (board, task_id, field)
);
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY, board TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, applied_at TEXT, base_fingerprint TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_board ON plans (board, created_at);
CREATE TABLE IF NOT EXISTS journal (
    plan_id TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL,
    task_id TEXT, field TEXT, key TEXT, before TEXT, after TEXT,
    status TEXT NOT NULL, error TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
CREATE TABLE IF NOT EXISTS created (
    board TEXT NOT NULL, key TEXT NOT NULL, task_id TEXT NOT NULL, plan_id TEXT NOT NULL,
    PRIMARY KEY (board, key)
);
CREATE TABLE IF NOT EXISTS kv (
    board TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (board, key)
);
CREATE INDEX IF NOT EXISTS journal_status ON journal (status);
CREATE TABLE IF NOT EXISTS rep_overrides (
    rep_id TEXT NOT NULL, setting TEXT NOT NULL, value TEXT NOT NULL,
    until TEXT, set_at TEXT NOT NULL,
    PRIMARY KEY (rep_id, setting)
);
CREATE TABLE IF NOT EXISTS card_comments (
    plan_id TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    PRIMARY KEY (plan_id, task_id)
);
"""

_MIGRATIONS: dict[int, str] = {
    # 2: journal rows by status, to find the writes whose answer was lost without a full scan.
    2: "CREATE INDEX IF NOT EXISTS journal_status ON journal (status);",
    # 3: rep overrides and the card-comment record, which their features created on first use
    # before they were part of the store (a store of schema 2 may hold them already).
    3: _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS rep_overrides") :],
}


class StateStoreError(TasksyncError):
    """The state store cannot be read or written (locked, full, unwritable or damaged)."""

    exit_code = 2


class StateStoreBusy(StateStoreError):
    """Another process kept the state store's database locked longer than the store's timeout."""

    exit_code = 7


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_P = ParamSpec("_P")
_R = TypeVar("_R")

JournalOp = str  # "change" | "create"


def _guarded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn a SQLite failure into one line naming the store (exit 7 when locked, else 2)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as e:
            store = args[0]
            path = getattr(store, "path", "state store")
            text = str(e)
            if "locked" in text or "busy" in text:
                raise StateStoreBusy(
                    f"{path}: the state store stayed locked by another process ({text}); try again later"
                ) from None
            raise StateStoreError(f"{path}: the state store cannot be used: {text}") from None

    return wrapper


@dataclass(frozen=True)
class PlanRecord:
    id: str
    board: str
    kind: str
    status: PlanStatus
    created_at: str
    applied_at: str | None
    changes: int
    creates: int


@dataclass(frozen=True)
class JournalRow:
    plan_id: str
    seq: int
    op: JournalOp  # change | create
    task_id: str | None
    field: Field | None
    key: str | None
    before: FieldValue
    after: FieldValue
    status: JournalStatus
    error: str | None


#: One rep override as a store keeps it: rep id, setting, value (JSON text), the last day it is in
#: force (ISO date, or None: until cleared), when it was set (ISO time). Decoded by
#: :class:`tasksync.team.overrides.RepOverrides`.
OverrideRow = tuple[str, str, str, str | None, str]


class StateStoreProtocol(Protocol):
    """The state store as the engine, the service and the team features use it.

    :class:`StateStore` (SQLite, the embedded default) and
    :class:`tasksync.cluster.pgstore.PgStateStore` (PostgreSQL, the cluster mode) implement it;
    ``tests/test_cluster_store.py`` runs one contract over both. Semantics every implementation
    keeps:

    - outside :meth:`transaction`, every call that writes is committed when it returns (the
      journal relies on it: a row marked ``done`` survives a crash right after);
    - inside it, everything commits together or not at all (a nested call joins the outer one);
    - ``latest``/``plans`` order by creation time, then by insertion order (a re-saved plan
      counts as inserted again).
    """

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    # what tasksync last wrote, and what people own
    def last_written(self, board: BoardRef) -> dict[tuple[str, Field], FieldValue]: ...

    def record_written(self, board: BoardRef, task_id: str, f: Field, value: FieldValue, plan_id: str) -> None: ...

    def person_owned(self, board: BoardRef) -> set[tuple[str, Field]]: ...

    def mark_person_owned(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None: ...

    def record_baseline(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None: ...

    # plans
    def save_plan(self, plan: Plan, status: PlanStatus | str = PlanStatus.PROPOSED) -> None: ...

    def load_plan(self, plan_id: str) -> tuple[Plan, PlanStatus]: ...

    def plan_status(self, plan_id: str) -> PlanStatus | None: ...

    def set_status(self, plan_id: str, status: PlanStatus | str) -> None: ...

    def plans(self, board: BoardRef | None = None, limit: int | None = 50) -> list[PlanRecord]: ...

    def supersede_proposals(self, board: BoardRef) -> None: ...

    def prune_plans(self, board: BoardRef, keep: int = 50) -> int: ...

    def latest(self, board: BoardRef, status: PlanStatus | str) -> str | None: ...

    # the journal
    def start_journal(self, plan: Plan) -> None: ...

    def journal(self, plan_id: str) -> list[JournalRow]: ...

    def journal_rows(self, board: BoardRef, status: JournalStatus) -> list[JournalRow]: ...

    def mark(
        self, plan_id: str, seqs: Iterable[int], status: JournalStatus | str, error: str | None = None
    ) -> None: ...

    def mark_created(self, board: BoardRef, plan_id: str, seq: int, key: str, task_id: str) -> None: ...

    def created(self, board: BoardRef) -> dict[str, str]: ...

    # small per-board values (sync tokens, row counts, service status)
    def get(self, board: BoardRef | str, key: str) -> str | None: ...

    def put(self, board: BoardRef | str, key: str, value: str) -> None: ...

    # rep overrides (``tasksync reps away|back|capacity|quota``): the team's, not a board's
    def rep_overrides(self) -> list[OverrideRow]: ...

    def set_rep_override(self, row: OverrideRow) -> None: ...

    def clear_rep_overrides(self, rep_id: str, setting: str | None = None) -> int: ...

    # the card comments a plan's apply sent ([write] comment), so that none is sent twice
    def commented(self, plan_id: str) -> set[str]: ...

    def record_comment(self, plan_id: str, task_id: str, status: str, error: str | None = None) -> None: ...


class StateStore:
    """One SQLite file. Use as a context manager or call :meth:`close`.

    ``timeout`` is how long a statement waits for another process's write transaction.
    """

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for own in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if own == path or own.exists():
                    private_file(own)  # 0600: the store keeps secrets and every plan
            self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except OSError as e:
            raise ConfigError(f"{path}: cannot open the state store: {e.strerror or e}") from None
        except sqlite3.Error as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StateStoreBusy(f"{path}: the state store stayed locked by another process ({e})") from None
            raise ConfigError(f"{path}: cannot open the state store: {e}") from None

    def _migrate(self) -> None:
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise ConfigError(f"{self.path}: made by a newer tasksync (schema {version}); upgrade tasksync")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            self.db.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATIONS[step]} UPDATE meta SET value='{step}' WHERE key='schema'; COMMIT;"
            )

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return int(row[0])

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one."""
        if self.db.in_transaction:
            yield
            return
        self._execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    @_guarded
    def _execute(self, sql: str) -> None:
        self.db.execute(sql)

    # -- what tasksync last wrote -------------------------------------------------------
    @_guarded
    def last_written(self, board: BoardRef) -> dict[tuple[str, Field], FieldValue]:
        rows = self.db.execute("SELECT task_id, field, value FROM field_state WHERE board=?", (str(board),))
        out: dict[tuple[str, Field], FieldValue] = {}
        for task_id, f, value in rows:
            fld = Field(f)
            out[(task_id, fld)] = value_from_json(fld, json.loads(value))
        return out

    @_guarded
    def record_written(self, board: BoardRef, task_id: str, f: Field, value: FieldValue, plan_id: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO field_state VALUES (?,?,?,?,?,?,'tasksync')",
            (str(board), task_id, f.value, json.dumps(value_to_json(value)), plan_id, _now()),
        )

    @_guarded
    def person_owned(self, board: BoardRef) -> set[tuple[str, Field]]:
        """Fields a person changed by hand: tasksync leaves them alone until forced."""
        rows = self.db.execute("SELECT task_id, field FROM field_state WHERE board=? AND owner='person'", (str(board),))
        return {(t, Field(f)) for t, f in rows}

    @_guarded
    def mark_person_owned(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None:
        now = _now()
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO field_state VALUES (?,?,?,?,?,?,'person')",
                [(str(board), t, f.value, json.dumps(value_to_json(v)), plan_id, now) for t, f, v in values],
            )

    @_guarded
    def record_baseline(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None:
        """Remember values tasksync saw but did not need to write, so later edits by people are
        recognised as theirs. Values tasksync wrote are kept."""
        now = _now()
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO field_state VALUES (?,?,?,?,?,?,'tasksync')",
                [(str(board), t, f.value, json.dumps(value_to_json(v)), plan_id, now) for t, f, v in values],
            )

    # -- plans ----------------------------------------------------------------------------
    @_guarded
    def save_plan(self, plan: Plan, status: PlanStatus | str = PlanStatus.PROPOSED) -> None:
        status = PlanStatus(status)
        with self.transaction():
            if status is PlanStatus.PROPOSED:
                self.db.execute(
                    "UPDATE plans SET status=? WHERE board=? AND status=?",
                    (PlanStatus.SUPERSEDED.value, str(plan.board), PlanStatus.PROPOSED.value),
                )
            self.db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?,?,?,?,?,?,?,?)",
                (
                    plan.id,
                    str(plan.board),
                    plan.kind.value,
                    status.value,
                    plan.created_at.isoformat(),
                    None,
                    plan.base_fingerprint,
                    json.dumps(plan.to_json(), ensure_ascii=False),
                ),
            )

    @_guarded
    def load_plan(self, plan_id: str) -> tuple[Plan, PlanStatus]:
        row = self.db.execute("SELECT body, status FROM plans WHERE id=?", (plan_id,)).fetchone()
        if row is None:
            raise ConfigError(f"no plan {plan_id!r} in {self.path} (see `tasksync history`)")
        return Plan.from_json(json.loads(row[0])), PlanStatus(row[1])

    @_guarded
    def plan_status(self, plan_id: str) -> PlanStatus | None:
        row = self.db.execute("SELECT status FROM plans WHERE id=?", (plan_id,)).fetchone()
        return None if row is None else PlanStatus(row[0])

    @_guarded
    def set_status(self, plan_id: str, status: PlanStatus | str) -> None:
        status = PlanStatus(status)
        applied = _now() if status in (PlanStatus.APPLIED, PlanStatus.PARTIAL) else None
        self.db.execute(
            "UPDATE plans SET status=?, applied_at=COALESCE(?, applied_at) WHERE id=?",
            (status.value, applied, plan_id),
        )

    @_guarded
    def plans(self, board: BoardRef | None = None, limit: int | None = 50) -> list[PlanRecord]:
        """The plans (of ``board``), newest first; ``limit`` None: all of them."""
        q = "SELECT id, board, kind, status, created_at, applied_at, body FROM plans"
        args: tuple[Any, ...] = ()
        if board is not None:
            q += " WHERE board=?"
            args = (str(board),)
        q += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        out = []
        for pid, b, kind, status, created, applied, body in self.db.execute(q, (*args, -1 if limit is None else limit)):
            data = json.loads(body)
            out.append(
                PlanRecord(
                    pid,
                    b,
                    kind,
                    PlanStatus(status),
                    created,
                    applied,
                    len(data["changes"]),
                    len(data["creates"]),
                )
            )
        return out

    @_guarded
    def supersede_proposals(self, board: BoardRef) -> None:
        """Mark the board's open proposals superseded (a newer plan found nothing to change)."""
        self.db.execute("UPDATE plans SET status='superseded' WHERE board=? AND status='proposed'", (str(board),))

    @_guarded
    def prune_plans(self, board: BoardRef, keep: int = 50) -> int:
        """Delete the board's superseded proposals older than its ``keep`` newest plans; every
        other plan (applied, partial, undone, proposed, applying) is kept. Returns how many went."""
        cur = self.db.execute(
            "DELETE FROM plans WHERE board=? AND status='superseded' AND id NOT IN "
            "(SELECT id FROM plans WHERE board=? ORDER BY created_at DESC, rowid DESC LIMIT ?)",
            (str(board), str(board), keep),
        )
        return cur.rowcount

    @_guarded
    def latest(self, board: BoardRef, status: PlanStatus | str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM plans WHERE board=? AND status=? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (str(board), PlanStatus(status).value),
        ).fetchone()
        return row[0] if row else None

    # -- the journal ----------------------------------------------------------------------
    @_guarded
    def start_journal(self, plan: Plan) -> None:
        """Mark the plan as applying and write one pending row per change and per create."""
        now = _now()
        pending = JournalStatus.PENDING.value
        rows: list[tuple[Any, ...]] = []
        for seq, c in enumerate(plan.changes):
            before, after = json.dumps(value_to_json(c.before)), json.dumps(value_to_json(c.after))
            rows.append((plan.id, seq, "change", c.task_id, c.field.value, None, before, after, pending, None, now))
        for seq, n in enumerate(plan.creates, start=len(plan.changes)):
            rows.append((plan.id, seq, "create", None, None, n.key, None, None, pending, None, now))
        with self.transaction():
            self.db.execute("DELETE FROM journal WHERE plan_id=?", (plan.id,))
            self.db.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute("UPDATE plans SET status=? WHERE id=?", (PlanStatus.APPLYING.value, plan.id))

    _COLUMNS = "j.plan_id, j.seq, j.op, j.task_id, j.field, j.key, j.before, j.after, j.status, j.error"

    @_guarded
    def journal(self, plan_id: str) -> list[JournalRow]:
        rows = self.db.execute(f"SELECT {self._COLUMNS} FROM journal j WHERE j.plan_id=? ORDER BY j.seq", (plan_id,))
        return [_journal_row(r) for r in rows]

    @_guarded
    def journal_rows(self, board: BoardRef, status: JournalStatus) -> list[JournalRow]:
        """The journal rows of every plan on ``board`` that are in ``status`` (oldest plan first)."""
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM journal j JOIN plans p ON p.id = j.plan_id "
            "WHERE j.status=? AND p.board=? ORDER BY p.created_at, p.rowid, j.seq",
            (status.value, str(board)),
        )
        return [_journal_row(r) for r in rows]

    @_guarded
    def mark(self, plan_id: str, seqs: Iterable[int], status: JournalStatus | str, error: str | None = None) -> None:
        status = JournalStatus(status)
        self.db.executemany(
            "UPDATE journal SET status=?, error=?, updated_at=? WHERE plan_id=? AND seq=?",
            [(status.value, error, _now(), plan_id, s) for s in seqs],
        )

    @_guarded
    def mark_created(self, board: BoardRef, plan_id: str, seq: int, key: str, task_id: str) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO created VALUES (?,?,?,?)",
                (str(board), key, task_id, plan_id),
            )
            self.db.execute(
                "UPDATE journal SET status=?, error=NULL, task_id=?, updated_at=? WHERE plan_id=? AND seq=?",
                (JournalStatus.DONE.value, task_id, _now(), plan_id, seq),
            )

    @_guarded
    def created(self, board: BoardRef) -> dict[str, str]:
        """CRM key -> task id of every card tasksync created on this board."""
        rows = self.db.execute("SELECT key, task_id FROM created WHERE board=?", (str(board),))
        return dict(rows.fetchall())

    # -- small per-board values (sync tokens, row counts, service status) -----------------
    @_guarded
    def get(self, board: BoardRef | str, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE board=? AND key=?", (str(board), key)).fetchone()
        return row[0] if row else None

    @_guarded
    def put(self, board: BoardRef | str, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?)", (str(board), key, value))

    # -- rep overrides and the card-comment record ---------------------------------------
    @_guarded
    def rep_overrides(self) -> list[OverrideRow]:
        rows = self.db.execute(
            "SELECT rep_id, setting, value, until, set_at FROM rep_overrides ORDER BY rep_id, setting"
        )
        return [(r, s, v, u, at) for r, s, v, u, at in rows]

    @_guarded
    def set_rep_override(self, row: OverrideRow) -> None:
        self.db.execute("INSERT OR REPLACE INTO rep_overrides VALUES (?,?,?,?,?)", row)

    @_guarded
    def clear_rep_overrides(self, rep_id: str, setting: str | None = None) -> int:
        """Remove one setting's override (or all of the rep's); returns how many went."""
        if setting is None:
            return self.db.execute("DELETE FROM rep_overrides WHERE rep_id=?", (rep_id,)).rowcount
        return self.db.execute("DELETE FROM rep_overrides WHERE rep_id=? AND setting=?", (rep_id, setting)).rowcount

    @_guarded
    def commented(self, plan_id: str) -> set[str]:
        """The cards a comment was sent to for ``plan_id`` (whatever its answer)."""
        return {t for (t,) in self.db.execute("SELECT task_id FROM card_comments WHERE plan_id=?", (plan_id,))}

    @_guarded
    def record_comment(self, plan_id: str, task_id: str, status: str, error: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO card_comments VALUES (?,?,?,?)", (plan_id, task_id, status, error))


def _journal_row(r: tuple[Any, ...]) -> JournalRow:
    pid, seq, op, task_id, f, key, before, after, status, error = r
    fld = Field(f) if f else None
    return JournalRow(
        pid,
        seq,
        op,
        task_id,
        fld,
        key,
        value_from_json(fld, json.loads(before)) if fld and before else None,
        value_from_json(fld, json.loads(after)) if fld and after else None,
        JournalStatus(status),
        error,
    )
