"""The state store: what tasksync wrote, every plan, and a journal of every change.

SQLite in WAL mode, one file per team (default ``.tasksync/state.sqlite3`` beside the config).
Each journal row is committed on its own, before and after its write is sent, so a crash at
any moment leaves enough to resume without losing or repeating a change.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasksync.errors import ConfigError
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

__all__ = ["JournalRow", "PlanRecord", "StateStore"]

SCHEMA_VERSION = 1

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
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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

    @property
    def open(self) -> bool:
        return self.status == "applying"


@dataclass(frozen=True)
class JournalRow:
    plan_id: str
    seq: int
    op: str  # change | create
    task_id: str | None
    field: Field | None
    key: str | None
    before: FieldValue
    after: FieldValue
    status: JournalStatus
    error: str | None


class StateStore:
    """One SQLite file. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(f"{path}: cannot open the state store: {e}") from None
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise ConfigError(f"{path}: made by a newer tasksync (schema {row[0]}); upgrade tasksync")

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- what tasksync last wrote -------------------------------------------------------
    def last_written(self, board: BoardRef) -> dict[tuple[str, Field], FieldValue]:
        rows = self.db.execute("SELECT task_id, field, value FROM field_state WHERE board=?", (str(board),))
        out: dict[tuple[str, Field], FieldValue] = {}
        for task_id, f, value in rows:
            fld = Field(f)
            out[(task_id, fld)] = value_from_json(fld, json.loads(value))
        return out

    def record_written(self, board: BoardRef, task_id: str, f: Field, value: FieldValue, plan_id: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO field_state VALUES (?,?,?,?,?,?,'tasksync')",
            (str(board), task_id, f.value, json.dumps(value_to_json(value)), plan_id, _now()),
        )

    def person_owned(self, board: BoardRef) -> set[tuple[str, Field]]:
        """Fields a person changed by hand: tasksync leaves them alone until forced."""
        rows = self.db.execute("SELECT task_id, field FROM field_state WHERE board=? AND owner='person'", (str(board),))
        return {(t, Field(f)) for t, f in rows}

    def mark_person_owned(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None:
        now = _now()
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO field_state VALUES (?,?,?,?,?,?,'person')",
                [(str(board), t, f.value, json.dumps(value_to_json(v)), plan_id, now) for t, f, v in values],
            )

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
    def save_plan(self, plan: Plan, status: str = "proposed") -> None:
        with self.transaction():
            if status == "proposed":
                self.db.execute(
                    "UPDATE plans SET status='superseded' WHERE board=? AND status='proposed'",
                    (str(plan.board),),
                )
            self.db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?,?,?,?,?,?,?,?)",
                (
                    plan.id,
                    str(plan.board),
                    plan.kind.value,
                    status,
                    plan.created_at.isoformat(),
                    None,
                    plan.base_fingerprint,
                    json.dumps(plan.to_json(), ensure_ascii=False),
                ),
            )

    def load_plan(self, plan_id: str) -> tuple[Plan, str]:
        row = self.db.execute("SELECT body, status FROM plans WHERE id=?", (plan_id,)).fetchone()
        if row is None:
            raise ConfigError(f"no plan {plan_id!r} in {self.path} (see `tasksync history`)")
        return Plan.from_json(json.loads(row[0])), row[1]

    def set_status(self, plan_id: str, status: str) -> None:
        applied = _now() if status in ("applied", "partial") else None
        self.db.execute(
            "UPDATE plans SET status=?, applied_at=COALESCE(?, applied_at) WHERE id=?",
            (status, applied, plan_id),
        )

    def plans(self, board: BoardRef | None = None, limit: int = 50) -> list[PlanRecord]:
        q = "SELECT id, board, kind, status, created_at, applied_at, body FROM plans"
        args: tuple[Any, ...] = ()
        if board is not None:
            q += " WHERE board=?"
            args = (str(board),)
        q += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        out = []
        for pid, b, kind, status, created, applied, body in self.db.execute(q, (*args, limit)):
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

    def latest(self, board: BoardRef, status: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM plans WHERE board=? AND status=? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (str(board), status),
        ).fetchone()
        return row[0] if row else None

    # -- the journal ----------------------------------------------------------------------
    def start_journal(self, plan: Plan) -> None:
        """Mark the plan as applying and write one pending row per change and per create."""
        now = _now()
        with self.transaction():
            rows: list[tuple[Any, ...]] = []
            seq = 0
            for c in plan.changes:
                rows.append(
                    (
                        plan.id,
                        seq,
                        "change",
                        c.task_id,
                        c.field.value,
                        None,
                        json.dumps(value_to_json(c.before)),
                        json.dumps(value_to_json(c.after)),
                        "pending",
                        None,
                        now,
                    )
                )
                seq += 1
            for n in plan.creates:
                rows.append((plan.id, seq, "create", None, None, n.key, None, None, "pending", None, now))
                seq += 1
            self.db.execute("DELETE FROM journal WHERE plan_id=?", (plan.id,))
            self.db.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute("UPDATE plans SET status='applying' WHERE id=?", (plan.id,))

    def journal(self, plan_id: str) -> list[JournalRow]:
        rows = self.db.execute(
            "SELECT plan_id, seq, op, task_id, field, key, before, after, status, error "
            "FROM journal WHERE plan_id=? ORDER BY seq",
            (plan_id,),
        )
        out = []
        for pid, seq, op, task_id, f, key, before, after, status, error in rows:
            fld = Field(f) if f else None
            out.append(
                JournalRow(
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
            )
        return out

    def mark(self, plan_id: str, seqs: list[int], status: str, error: str | None = None) -> None:
        self.db.executemany(
            "UPDATE journal SET status=?, error=?, updated_at=? WHERE plan_id=? AND seq=?",
            [(status, error, _now(), plan_id, s) for s in seqs],
        )

    def mark_created(self, board: BoardRef, plan_id: str, seq: int, key: str, task_id: str) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO created VALUES (?,?,?,?)",
                (str(board), key, task_id, plan_id),
            )
            self.db.execute(
                "UPDATE journal SET status='done', task_id=?, updated_at=? WHERE plan_id=? AND seq=?",
                (task_id, _now(), plan_id, seq),
            )

    def created(self, board: BoardRef) -> dict[str, str]:
        """CRM key -> task id of every card tasksync created on this board."""
        rows = self.db.execute("SELECT key, task_id FROM created WHERE board=?", (str(board),))
        return dict(rows.fetchall())

    # -- small per-board values (sync tokens, row counts, service status) -----------------
    def get(self, board: BoardRef | str, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE board=? AND key=?", (str(board), key)).fetchone()
        return row[0] if row else None

    def put(self, board: BoardRef | str, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?)", (str(board), key, value))
