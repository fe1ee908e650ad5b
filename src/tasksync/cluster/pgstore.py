"""The state store in PostgreSQL: the cluster mode's store, with SQLite's schema and semantics.

One connection per store (``store.pg``), in autocommit mode: every write outside :meth:`PgStateStore.transaction`
is committed when the call returns, exactly like the SQLite store in autocommit, so the journal's
per-row commits survive a worker killed between two writes. Inside ``transaction()`` everything
commits together; a nested ``transaction()`` joins the outer one.

The schema is created and upgraded by :func:`migrate`: plain versioned SQL files in
``tasksync/cluster/migrations`` (``NNNN_name.sql``), applied in order under a transaction-scoped
advisory lock so that workers starting together migrate once; ``schema_migrations`` records them.
A database migrated by a newer tasksync is refused, as the SQLite store refuses a newer file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg import pq

from tasksync.errors import ConfigError
from tasksync.model import BoardRef, Field, FieldValue, JournalStatus, Plan, PlanStatus, value_from_json, value_to_json
from tasksync.sync.state import JournalRow, OverrideRow, PlanRecord
from tasksync.sync.state import _journal_row as journal_row  # one decoding of a journal row for both stores

__all__ = ["Migration", "PgStateStore", "connect", "migrate", "migrations"]

_MIGRATION_LOCK = 0x7A5C_0001  # pg_advisory_xact_lock key while migrating


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(url: str, *, connect_timeout: int = 10) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection with TCP keepalives, so that a vanished peer is noticed in
    seconds and its session-level advisory locks (the board leases) are released."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=connect_timeout,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            application_name="tasksync",
        )
    except psycopg.OperationalError as e:
        raise ConfigError(f"{_redact(url)}: cannot connect to PostgreSQL: {str(e).strip()}") from None


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The bundled migrations, in version order."""
    out = []
    for entry in resources.files("tasksync.cluster").joinpath("migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        version = int(name.split("_", 1)[0])
        out.append(Migration(version, name[:-4], entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m.version)


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
    """Apply the migrations this database lacks; returns their names (empty when up to date)."""
    known = migrations()
    newest = known[-1].version if known else 0
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        if done and max(done) > newest:
            raise ConfigError(f"the PostgreSQL state store was made by a newer tasksync (schema {max(done)}); upgrade")
        for m in known:
            if m.version in done:
                continue
            conn.execute(m.sql.encode())  # several statements: simple query protocol, no parameters
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (m.version, m.name, _now()))
            applied.append(m.name)
    return applied


_migrate = migrate


class PgStateStore:
    """The state store in one PostgreSQL database (many boards, many workers)."""

    def __init__(
        self,
        url: str,
        *,
        conn: psycopg.Connection[tuple[Any, ...]] | None = None,
        migrate: bool = True,
        team: str = "",
    ) -> None:
        """``team`` scopes the rep overrides: each SQLite store serves one team's config, while
        this store serves every board of the cluster, so a job opens it with its board's key
        (:meth:`tasksync.cluster.jobs.Cluster.board_store`)."""
        self.url = url
        self.path = _redact(url)  # named in messages, like the SQLite store's file
        self.team = team
        self.pg = conn or connect(url)
        if migrate:
            _migrate(self.pg)

    def __enter__(self) -> PgStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pg.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one (as in the SQLite store)."""
        if self.pg.info.transaction_status != pq.TransactionStatus.IDLE:
            yield
            return
        with self.pg.transaction():
            yield

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.pg.execute(sql, args).fetchall()

    # -- what tasksync last wrote -------------------------------------------------------
    def last_written(self, board: BoardRef) -> dict[tuple[str, Field], FieldValue]:
        out: dict[tuple[str, Field], FieldValue] = {}
        for task_id, f, value in self._rows(
            "SELECT task_id, field, value FROM field_state WHERE board=%s", (str(board),)
        ):
            fld = Field(f)
            out[(task_id, fld)] = value_from_json(fld, json.loads(value))
        return out

    _UPSERT_FIELD = (
        "INSERT INTO field_state VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (board, task_id, field) DO UPDATE SET "
        "value=EXCLUDED.value, plan_id=EXCLUDED.plan_id, written_at=EXCLUDED.written_at, owner=EXCLUDED.owner"
    )

    def record_written(self, board: BoardRef, task_id: str, f: Field, value: FieldValue, plan_id: str) -> None:
        self.pg.execute(
            self._UPSERT_FIELD,
            (str(board), task_id, f.value, json.dumps(value_to_json(value)), plan_id, _now(), "tasksync"),
        )

    def person_owned(self, board: BoardRef) -> set[tuple[str, Field]]:
        rows = self._rows("SELECT task_id, field FROM field_state WHERE board=%s AND owner='person'", (str(board),))
        return {(t, Field(f)) for t, f in rows}

    def mark_person_owned(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None:
        now = _now()
        with self.transaction(), self.pg.cursor() as cur:
            cur.executemany(
                self._UPSERT_FIELD,
                [(str(board), t, f.value, json.dumps(value_to_json(v)), plan_id, now, "person") for t, f, v in values],
            )

    def record_baseline(self, board: BoardRef, values: list[tuple[str, Field, FieldValue]], plan_id: str) -> None:
        now = _now()
        with self.transaction(), self.pg.cursor() as cur:
            cur.executemany(
                "INSERT INTO field_state VALUES (%s,%s,%s,%s,%s,%s,'tasksync') ON CONFLICT DO NOTHING",
                [(str(board), t, f.value, json.dumps(value_to_json(v)), plan_id, now) for t, f, v in values],
            )

    # -- plans ----------------------------------------------------------------------------
    def save_plan(self, plan: Plan, status: PlanStatus | str = PlanStatus.PROPOSED) -> None:
        status = PlanStatus(status)
        with self.transaction():
            if status is PlanStatus.PROPOSED:
                self.pg.execute(
                    "UPDATE plans SET status='superseded' WHERE board=%s AND status='proposed'", (str(plan.board),)
                )
            # Like SQLite's INSERT OR REPLACE: a re-saved plan takes a new place in insertion order.
            self.pg.execute(
                "INSERT INTO plans (id, board, kind, status, created_at, applied_at, base_fingerprint, body) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE SET board=EXCLUDED.board, "
                "kind=EXCLUDED.kind, status=EXCLUDED.status, created_at=EXCLUDED.created_at, applied_at=NULL, "
                "base_fingerprint=EXCLUDED.base_fingerprint, body=EXCLUDED.body, "
                "ord=nextval(pg_get_serial_sequence('plans', 'ord'))",
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

    def load_plan(self, plan_id: str) -> tuple[Plan, PlanStatus]:
        row = self.pg.execute("SELECT body, status FROM plans WHERE id=%s", (plan_id,)).fetchone()
        if row is None:
            raise ConfigError(f"no plan {plan_id!r} in {self.path} (see `tasksync history`)")
        return Plan.from_json(json.loads(row[0])), PlanStatus(row[1])

    def plan_status(self, plan_id: str) -> PlanStatus | None:
        row = self.pg.execute("SELECT status FROM plans WHERE id=%s", (plan_id,)).fetchone()
        return None if row is None else PlanStatus(row[0])

    def set_status(self, plan_id: str, status: PlanStatus | str) -> None:
        status = PlanStatus(status)
        applied = _now() if status in (PlanStatus.APPLIED, PlanStatus.PARTIAL) else None
        self.pg.execute(
            "UPDATE plans SET status=%s, applied_at=COALESCE(%s, applied_at) WHERE id=%s",
            (status.value, applied, plan_id),
        )

    def plans(self, board: BoardRef | None = None, limit: int | None = 50) -> list[PlanRecord]:
        q = "SELECT id, board, kind, status, created_at, applied_at, body FROM plans"
        args: tuple[Any, ...] = ()
        if board is not None:
            q += " WHERE board=%s"
            args = (str(board),)
        q += " ORDER BY created_at DESC, ord DESC LIMIT %s"
        out = []
        for pid, b, kind, status, created, applied, body in self._rows(q, (*args, limit)):
            data = json.loads(body)
            out.append(
                PlanRecord(
                    pid, b, kind, PlanStatus(status), created, applied, len(data["changes"]), len(data["creates"])
                )
            )
        return out

    def supersede_proposals(self, board: BoardRef) -> None:
        """Mark the board's open proposals superseded (a newer plan found nothing to change)."""
        self.pg.execute(
            "UPDATE plans SET status=%s WHERE board=%s AND status=%s",
            (PlanStatus.SUPERSEDED.value, str(board), PlanStatus.PROPOSED.value),
        )

    def prune_plans(self, board: BoardRef, keep: int = 50) -> int:
        """Delete the board's superseded proposals older than its ``keep`` newest plans; every
        other plan is kept. Returns how many went."""
        cur = self.pg.execute(
            "DELETE FROM plans WHERE board=%s AND status=%s AND id NOT IN "
            "(SELECT id FROM plans WHERE board=%s ORDER BY created_at DESC, ord DESC LIMIT %s)",
            (str(board), PlanStatus.SUPERSEDED.value, str(board), keep),
        )
        return cur.rowcount

    def latest(self, board: BoardRef, status: PlanStatus | str) -> str | None:
        row = self.pg.execute(
            "SELECT id FROM plans WHERE board=%s AND status=%s ORDER BY created_at DESC, ord DESC LIMIT 1",
            (str(board), PlanStatus(status).value),
        ).fetchone()
        return str(row[0]) if row else None

    # -- the journal ----------------------------------------------------------------------
    def start_journal(self, plan: Plan) -> None:
        now = _now()
        rows: list[tuple[Any, ...]] = []
        seq = 0
        for c in plan.changes:
            before, after = json.dumps(value_to_json(c.before)), json.dumps(value_to_json(c.after))
            rows.append((plan.id, seq, "change", c.task_id, c.field.value, None, before, after, "pending", None, now))
            seq += 1
        for n in plan.creates:
            rows.append((plan.id, seq, "create", None, None, n.key, None, None, "pending", None, now))
            seq += 1
        with self.transaction():
            self.pg.execute("DELETE FROM journal WHERE plan_id=%s", (plan.id,))
            with self.pg.cursor() as cur:
                cur.executemany("INSERT INTO journal VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
            self.pg.execute("UPDATE plans SET status='applying' WHERE id=%s", (plan.id,))

    _COLUMNS = "j.plan_id, j.seq, j.op, j.task_id, j.field, j.key, j.before, j.after, j.status, j.error"

    def journal(self, plan_id: str) -> list[JournalRow]:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM journal j WHERE j.plan_id=%s ORDER BY j.seq", (plan_id,))
        return [journal_row(r) for r in rows]

    def journal_rows(self, board: BoardRef, status: JournalStatus) -> list[JournalRow]:
        """The journal rows of every plan on ``board`` that are in ``status`` (oldest plan first)."""
        rows = self._rows(
            f"SELECT {self._COLUMNS} FROM journal j JOIN plans p ON p.id = j.plan_id "
            "WHERE j.status=%s AND p.board=%s ORDER BY p.created_at, p.ord, j.seq",
            (JournalStatus(status).value, str(board)),
        )
        return [journal_row(r) for r in rows]

    def mark(self, plan_id: str, seqs: Iterable[int], status: JournalStatus | str, error: str | None = None) -> None:
        self.pg.execute(
            "UPDATE journal SET status=%s, error=%s, updated_at=%s WHERE plan_id=%s AND seq = ANY(%s)",
            (JournalStatus(status).value, error, _now(), plan_id, list(seqs)),
        )

    def mark_created(self, board: BoardRef, plan_id: str, seq: int, key: str, task_id: str) -> None:
        with self.transaction():
            self.pg.execute(
                "INSERT INTO created VALUES (%s,%s,%s,%s) ON CONFLICT (board, key) DO UPDATE SET "
                "task_id=EXCLUDED.task_id, plan_id=EXCLUDED.plan_id",
                (str(board), key, task_id, plan_id),
            )
            self.pg.execute(
                "UPDATE journal SET status=%s, error=NULL, task_id=%s, updated_at=%s WHERE plan_id=%s AND seq=%s",
                (JournalStatus.DONE.value, task_id, _now(), plan_id, seq),
            )

    def created(self, board: BoardRef) -> dict[str, str]:
        return {k: t for k, t in self._rows("SELECT key, task_id FROM created WHERE board=%s", (str(board),))}

    # -- rep overrides and the card-comment record ---------------------------------------
    def rep_overrides(self) -> list[OverrideRow]:
        rows = self._rows(
            "SELECT rep_id, setting, value, until, set_at FROM rep_overrides WHERE team=%s ORDER BY rep_id, setting",
            (self.team,),
        )
        return [(r, s, v, u, at) for r, s, v, u, at in rows]

    def set_rep_override(self, row: OverrideRow) -> None:
        self.pg.execute(
            "INSERT INTO rep_overrides VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (team, rep_id, setting) DO UPDATE "
            "SET value=EXCLUDED.value, until=EXCLUDED.until, set_at=EXCLUDED.set_at",
            (self.team, *row),
        )

    def clear_rep_overrides(self, rep_id: str, setting: str | None = None) -> int:
        if setting is None:
            cur = self.pg.execute("DELETE FROM rep_overrides WHERE team=%s AND rep_id=%s", (self.team, rep_id))
        else:
            cur = self.pg.execute(
                "DELETE FROM rep_overrides WHERE team=%s AND rep_id=%s AND setting=%s", (self.team, rep_id, setting)
            )
        return cur.rowcount

    def commented(self, plan_id: str) -> set[str]:
        return {str(t) for (t,) in self._rows("SELECT task_id FROM card_comments WHERE plan_id=%s", (plan_id,))}

    def record_comment(self, plan_id: str, task_id: str, status: str, error: str | None = None) -> None:
        self.pg.execute(
            "INSERT INTO card_comments VALUES (%s,%s,%s,%s) ON CONFLICT (plan_id, task_id) DO UPDATE "
            "SET status=EXCLUDED.status, error=EXCLUDED.error",
            (plan_id, task_id, status, error),
        )

    # -- small per-board values -----------------------------------------------------------
    def get(self, board: BoardRef | str, key: str) -> str | None:
        row = self.pg.execute("SELECT value FROM kv WHERE board=%s AND key=%s", (str(board), key)).fetchone()
        return str(row[0]) if row else None

    def put(self, board: BoardRef | str, key: str, value: str) -> None:
        self.pg.execute(
            "INSERT INTO kv VALUES (%s,%s,%s) ON CONFLICT (board, key) DO UPDATE SET value=EXCLUDED.value",
            (str(board), key, value),
        )

    def values(self, board_prefix: str) -> dict[str, dict[str, str]]:
        """The values of every board whose name starts with ``board_prefix``: board -> key -> value."""
        out: dict[str, dict[str, str]] = {}
        for board, key, value in self._rows(
            "SELECT board, key, value FROM kv WHERE starts_with(board, %s) ORDER BY board, key", (board_prefix,)
        ):
            out.setdefault(board, {})[key] = value
        return out
