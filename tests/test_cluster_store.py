"""One contract over both state stores: SQLite (embedded) and PostgreSQL (cluster).

Each behaviour the engine relies on is checked through the stores' public methods, then the
engine itself runs a plan → interrupted apply → resume cycle on each store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cluster_support import fresh_schema_url, postgres_url
from tasksync.errors import ConfigError
from tasksync.model import BoardRef, Change, Field, JournalStatus, NewTask, Plan, PlanKind, PlanStatus
from tasksync.sync.state import StateStoreProtocol

# They share one Redis and one PostgreSQL (the integration test restarts them): one xdist worker.
pytestmark = pytest.mark.xdist_group("services")

BOARD = BoardRef("trello", "b1")
OTHER = BoardRef("trello", "b2")


def _plan(pid: str, board: BoardRef = BOARD, minute: int = 0, changes: int = 2, creates: int = 1) -> Plan:
    return Plan(
        id=pid,
        board=board,
        kind=PlanKind.SYNC,
        base_fingerprint="f" * 16,
        created_at=datetime(2026, 1, 1, 12, minute, tzinfo=UTC),
        changes=[Change(f"t{i}", Field.ASSIGNEES, ("a",), ("b", "c"), "why") for i in range(changes)],
        creates=[NewTask(f"D-{i}", f"New {i}", "s1", ("b",), "P1") for i in range(creates)],
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStoreProtocol]:
    s: StateStoreProtocol
    if request.param == "sqlite":
        from tasksync.sync.state import StateStore

        s = StateStore(tmp_path / "state.sqlite3")
    else:
        from tasksync.cluster.pgstore import PgStateStore

        s = PgStateStore(fresh_schema_url(postgres_url()))
    try:
        yield s
    finally:
        s.close()


def test_written_values_round_trip_per_board(store: StateStoreProtocol) -> None:
    store.record_written(BOARD, "t1", Field.ASSIGNEES, ("m1", "m2"), "p1")
    store.record_written(BOARD, "t1", Field.PRIORITY, "P2", "p1")
    store.record_written(BOARD, "t2", Field.CLOSED, True, "p1")
    store.record_written(OTHER, "t1", Field.PRIORITY, "P4", "p9")
    store.record_written(BOARD, "t1", Field.PRIORITY, "P1", "p2")  # a later write replaces
    assert store.last_written(BOARD) == {
        ("t1", Field.ASSIGNEES): ("m1", "m2"),
        ("t1", Field.PRIORITY): "P1",
        ("t2", Field.CLOSED): True,
    }
    assert store.last_written(OTHER) == {("t1", Field.PRIORITY): "P4"}


def test_baseline_keeps_written_values_and_person_ownership_sticks(store: StateStoreProtocol) -> None:
    store.record_written(BOARD, "t1", Field.PRIORITY, "P1", "p1")
    store.record_baseline(BOARD, [("t1", Field.PRIORITY, "P3"), ("t2", Field.PRIORITY, None)], "p2")
    assert store.last_written(BOARD) == {("t1", Field.PRIORITY): "P1", ("t2", Field.PRIORITY): None}
    store.mark_person_owned(BOARD, [("t1", Field.PRIORITY, "P4")], "p3")
    assert store.person_owned(BOARD) == {("t1", Field.PRIORITY)}
    assert store.last_written(BOARD)[("t1", Field.PRIORITY)] == "P4"
    store.record_written(BOARD, "t1", Field.PRIORITY, "P2", "p4")  # tasksync writes it again (forced)
    assert store.person_owned(BOARD) == set()


def test_plans_supersede_order_and_status(store: StateStoreProtocol) -> None:
    store.save_plan(_plan("p1", minute=1))
    store.save_plan(_plan("p2", minute=2))
    store.save_plan(_plan("p3", OTHER, minute=3))
    assert store.latest(BOARD, "proposed") == "p2"
    assert store.load_plan("p1")[1] == "superseded"
    store.save_plan(_plan("p4", minute=2), "pending")  # same minute: insertion order breaks the tie
    assert [r.id for r in store.plans(BOARD)] == ["p4", "p2", "p1"]
    assert [r.id for r in store.plans()] == ["p3", "p4", "p2", "p1"]
    assert [r.id for r in store.plans(limit=1)] == ["p3"]
    rec = store.plans(BOARD)[1]
    assert (rec.status, rec.changes, rec.creates, rec.applied_at) == (PlanStatus.PROPOSED, 2, 1, None)
    assert store.plan_status("p1") is PlanStatus.SUPERSEDED and store.plan_status("nope") is None
    store.set_status("p2", "applied")
    rec = store.plans(BOARD)[1]
    assert rec.status is PlanStatus.APPLIED and rec.applied_at
    plan, status = store.load_plan("p2")
    assert status == "applied" and plan.changes == _plan("p2", minute=2).changes
    assert plan.creates == _plan("p2").creates
    with pytest.raises(ConfigError, match="no plan 'nope'"):
        store.load_plan("nope")
    store.save_plan(_plan("p5", minute=5))
    store.supersede_proposals(BOARD)
    assert store.latest(BOARD, "proposed") is None and store.plan_status("p5") is PlanStatus.SUPERSEDED
    assert store.prune_plans(BOARD, keep=2) == 1  # p1: superseded and older than the 2 newest
    assert [r.id for r in store.plans(BOARD)] == ["p5", "p4", "p2"]
    assert [r.id for r in store.plans(BOARD, limit=None)] == ["p5", "p4", "p2"]
    assert len(store.plans(limit=None)) == 4


def test_journal_rows_commit_one_by_one(store: StateStoreProtocol) -> None:
    plan = _plan("p1", changes=3, creates=2)
    store.save_plan(plan)
    store.start_journal(plan)
    assert store.latest(BOARD, "applying") == "p1"
    rows = store.journal("p1")
    assert [(r.seq, r.op, r.status) for r in rows] == [
        (0, "change", JournalStatus.PENDING),
        (1, "change", JournalStatus.PENDING),
        (2, "change", JournalStatus.PENDING),
        (3, "create", JournalStatus.PENDING),
        (4, "create", JournalStatus.PENDING),
    ]
    assert (rows[0].task_id, rows[0].field, rows[0].before, rows[0].after) == (
        "t0",
        Field.ASSIGNEES,
        ("a",),
        ("b", "c"),
    )
    store.mark("p1", [0, 1], "done")
    store.mark("p1", [2], "failed", "HTTP 400")
    store.mark_created(BOARD, "p1", 3, "D-0", "new-card-1")
    got = store.journal("p1")
    assert [r.status for r in got] == ["done", "done", "failed", "done", "pending"]
    assert got[2].error == "HTTP 400" and got[3].task_id == "new-card-1"
    assert store.created(BOARD) == {"D-0": "new-card-1"}
    assert store.created(OTHER) == {}
    other = _plan("p9", OTHER, changes=1, creates=0)
    store.save_plan(other)
    store.start_journal(other)
    assert [(r.plan_id, r.seq) for r in store.journal_rows(BOARD, JournalStatus.PENDING)] == [("p1", 4)]
    assert [(r.plan_id, r.seq) for r in store.journal_rows(OTHER, JournalStatus.PENDING)] == [("p9", 0)]
    assert [r.seq for r in store.journal_rows(BOARD, JournalStatus.DONE)] == [0, 1, 3]
    store.start_journal(plan)  # restarting a journal starts it afresh
    assert [r.status for r in store.journal("p1")] == ["pending"] * 5


def test_transactions_commit_or_roll_back_as_one(store: StateStoreProtocol) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put(BOARD, "a", "1")
        store.record_written(BOARD, "t1", Field.PRIORITY, "P1", "p1")
        raise RuntimeError("crash in the middle")
    assert store.get(BOARD, "a") is None and store.last_written(BOARD) == {}
    with store.transaction():
        store.put(BOARD, "a", "1")
        with store.transaction():  # a nested transaction joins the outer one
            store.put(BOARD, "a", "2")
    assert store.get(BOARD, "a") == "2"
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():
            store.put(BOARD, "b", "1")
        raise RuntimeError("the outer one fails")
    assert store.get(BOARD, "b") is None
    assert store.get(OTHER, "a") is None
    store.put(str(OTHER), "a", "3")
    assert store.get(OTHER, "a") == "3"


def test_rep_overrides_set_replace_and_clear(store: StateStoreProtocol) -> None:
    from datetime import date

    from tasksync.team.overrides import RepOverrides

    overrides = RepOverrides(store)
    overrides.set("r2", "quota", 50000.0)
    overrides.set("r1", "available", False, until=date(2026, 12, 14))
    overrides.set("r1", "capacity", 3)
    overrides.set("r1", "capacity", 4)  # a later value replaces
    got = [(o.rep_id, o.setting, o.value, o.until) for o in RepOverrides(store).all()]
    assert got == [
        ("r1", "available", False, date(2026, 12, 14)),
        ("r1", "capacity", 4, None),
        ("r2", "quota", 50000.0, None),
    ]
    assert [o.setting for o in overrides.active(date(2026, 12, 15))] == ["capacity", "quota"]  # expired
    assert overrides.clear("r1", "capacity") == 1 and overrides.clear("r1", "capacity") == 0
    assert overrides.clear("r2") == 1
    assert [(o.rep_id, o.setting) for o in overrides.all()] == [("r1", "available")]
    with pytest.raises(ValueError, match="unknown rep setting"):
        overrides.set("r1", "mood", 1)


def test_comments_are_recorded_once_per_plan_and_card(store: StateStoreProtocol) -> None:
    assert store.commented("p1") == set()
    store.record_comment("p1", "t1", "unknown", "answer lost")
    store.record_comment("p1", "t1", "done")  # recorded again: one row
    store.record_comment("p1", "t2", "failed", "HTTP 404")
    store.record_comment("p2", "t3", "done")
    assert store.commented("p1") == {"t1", "t2"} and store.commented("p2") == {"t3"}
    with pytest.raises(RuntimeError), store.transaction():
        store.record_comment("p3", "t1", "done")
        raise RuntimeError("rolled back")
    assert store.commented("p3") == set()


def test_postgres_overrides_belong_to_one_team() -> None:
    """One PostgreSQL store serves every board of the cluster: a rep set away for one board's
    team (its key in cluster.toml) is not away on another board whose CRM has the same rep id."""
    from tasksync.cluster.pgstore import PgStateStore
    from tasksync.team.overrides import RepOverrides

    url = fresh_schema_url(postgres_url())
    with PgStateStore(url, team="east/tasksync.toml") as east, PgStateStore(url, team="west/tasksync.toml") as west:
        RepOverrides(east).set("r1", "available", False)
        RepOverrides(west).set("r1", "capacity", 2)
        assert [(o.rep_id, o.setting) for o in RepOverrides(east).all()] == [("r1", "available")]
        assert [(o.rep_id, o.setting) for o in RepOverrides(west).all()] == [("r1", "capacity")]
        assert RepOverrides(west).clear("r1") == 1
        assert len(RepOverrides(east).all()) == 1


class _Crash(Exception):
    pass


def test_the_engine_resumes_an_interrupted_apply(store: StateStoreProtocol, tmp_path: Path) -> None:
    """The engine on either store: an apply killed after three writes resumes to the end state
    an uninterrupted apply reaches, and the board then needs no change."""
    from tasksync.connectors.local import LocalConnector
    from tasksync.examples import TODAY, generate
    from tasksync.model import TaskWrite, WriteResult
    from tasksync.settings import load_settings
    from tasksync.sync.workspace import Workspace

    class Crashing(LocalConnector):
        def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
            for n, result in enumerate(super().write(writes)):
                if n >= 3:
                    raise _Crash
                yield result

    def tasks(ws: Workspace) -> list[tuple[str, tuple[str, ...], str | None]]:
        # Created cards get new ids on each board: compare them by title.
        return sorted((t.title, t.assignees, t.priority) for t in ws.connector.read().tasks)

    clean = generate(tmp_path / "clean", seed=5, cards=40)
    with Workspace(load_settings(clean), today=TODAY) as ws:
        ws.plan()
        ws.apply()
        expected = tasks(ws)
    config = generate(tmp_path / "crashed", seed=5, cards=40)
    settings = load_settings(config)
    ws = Workspace(settings, connector=Crashing(settings, save_every=1), today=TODAY, store=store)
    ws.plan()
    with pytest.raises(_Crash):
        ws.apply()
    assert store.latest(ws.connector.board, "applying") is not None
    ws = Workspace(settings, today=TODAY, store=store)
    outcome = ws.pending_resume()
    assert outcome is not None and not outcome.failed
    assert store.latest(ws.connector.board, "applying") is None
    assert tasks(ws) == expected
    assert ws.plan().plan.empty


def test_owner_export_reads_the_applied_plans_of_either_store(store: StateStoreProtocol, tmp_path: Path) -> None:
    """``export owners`` through the protocol: the same rows from SQLite and PostgreSQL, only
    applied plans, ``--since`` counted from the named plan, an unknown plan refused."""
    from tasksync.examples import TODAY, generate
    from tasksync.settings import load_settings
    from tasksync.sync.workspace import Workspace
    from tasksync.team.owners import owner_changes

    settings = load_settings(generate(tmp_path / "board", seed=7, cards=30))
    with Workspace(settings, today=TODAY, store=store) as ws:
        proposed = ws.plan().plan
        assert owner_changes(ws).plans == []  # proposed, not applied: nothing for the CRM yet
        ws.apply()
        export = owner_changes(ws)
        moved = {c.task_id for c in proposed.changes if c.field is Field.ASSIGNEES}
        assert export.plans == [proposed.id] and export.changes
        assert {c.card_id for c in export.changes} <= moved | set(store.created(proposed.board).values())
        assert owner_changes(ws, since=proposed.id).plans == [proposed.id]
        with pytest.raises(ConfigError, match="--since nope: no such plan"):
            owner_changes(ws, since="nope")


def test_postgres_migrations_upgrade_an_older_store_and_refuse_a_newer_one() -> None:
    import psycopg

    from tasksync.cluster.pgstore import PgStateStore, migrate, migrations

    url = fresh_schema_url(postgres_url())
    first = migrations()[0]
    with psycopg.connect(url, autocommit=True) as conn:  # a store made by the first release
        conn.execute(first.sql.encode())
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, '0001_initial', 'then')")
        assert migrate(conn) == [m.name for m in migrations()[1:]]
        assert migrate(conn) == []
        conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future', 'later')")
    with pytest.raises(ConfigError, match=r"made by a newer tasksync \(schema 999\)"):
        PgStateStore(url)
