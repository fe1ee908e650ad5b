"""The state store on its own: schema and migrations, plans, the journal, written values, and
one-line errors when the database is locked or unusable."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasksync.errors import ConfigError
from tasksync.model import BoardRef, Change, Field, JournalStatus, NewTask, Plan, PlanKind, PlanStatus
from tasksync.sync.state import SCHEMA_VERSION, StateStore, StateStoreBusy

BOARD = BoardRef("local", "board.json")


def a_plan(pid: str = "p1", created: int = 1) -> Plan:
    return Plan(
        id=pid,
        board=BOARD,
        kind=PlanKind.SYNC,
        base_fingerprint="f" * 16,
        created_at=datetime(2026, 1, created, tzinfo=UTC),
        changes=[
            Change("t1", Field.ASSIGNEES, ("m1",), ("m2",), "fit", "Card 1"),
            Change("t1", Field.PRIORITY, None, "P1", "value", "Card 1"),
            Change("t2", Field.STAGE, "s1", "s2", "stage", "Card 2"),
        ],
        creates=[NewTask("D9", "New deal", "s1", ("m1",), "P2")],
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.sqlite3")


def test_plan_round_trip_and_supersede(store: StateStore) -> None:
    first, second = a_plan("p1", 1), a_plan("p2", 2)
    store.save_plan(first)
    store.save_plan(second)
    loaded, status = store.load_plan("p1")
    assert loaded == first and status is PlanStatus.SUPERSEDED
    assert store.load_plan("p2")[1] is PlanStatus.PROPOSED
    assert store.latest(BOARD, PlanStatus.PROPOSED) == "p2"
    assert store.plan_status("nope") is None
    assert [(r.id, r.status, r.changes, r.creates) for r in store.plans(BOARD)] == [
        ("p2", PlanStatus.PROPOSED, 3, 1),
        ("p1", PlanStatus.SUPERSEDED, 3, 1),
    ]
    with pytest.raises(ConfigError, match="no plan 'nope'"):
        store.load_plan("nope")
    with pytest.raises(ValueError):
        store.set_status("p1", "bogus")  # statuses are PlanStatus values, nothing else


def test_journal_rows_marks_and_creates(store: StateStore) -> None:
    plan = a_plan()
    store.save_plan(plan)
    store.start_journal(plan)
    assert store.plan_status(plan.id) is PlanStatus.APPLYING
    rows = store.journal(plan.id)
    assert [(r.op, r.task_id, r.field, r.before, r.after, r.status) for r in rows] == [
        ("change", "t1", Field.ASSIGNEES, ("m1",), ("m2",), JournalStatus.PENDING),
        ("change", "t1", Field.PRIORITY, None, "P1", JournalStatus.PENDING),
        ("change", "t2", Field.STAGE, "s1", "s2", JournalStatus.PENDING),
        ("create", None, None, None, None, JournalStatus.PENDING),
    ]
    store.mark(plan.id, [0, 1], JournalStatus.DONE)
    store.mark(plan.id, [2], JournalStatus.UNKNOWN, "no answer")
    store.mark_created(BOARD, plan.id, 3, "D9", "new-card")
    assert [r.status for r in store.journal(plan.id)] == [
        JournalStatus.DONE,
        JournalStatus.DONE,
        JournalStatus.UNKNOWN,
        JournalStatus.DONE,
    ]
    assert store.journal(plan.id)[3].task_id == "new-card"
    assert store.created(BOARD) == {"D9": "new-card"}
    unknown = store.journal_rows(BOARD, JournalStatus.UNKNOWN)
    assert [(r.plan_id, r.seq, r.error) for r in unknown] == [(plan.id, 2, "no answer")]
    assert store.journal_rows(BoardRef("local", "other.json"), JournalStatus.UNKNOWN) == []
    # Starting again replaces the rows (a plan is journaled once per apply).
    store.start_journal(plan)
    assert {r.status for r in store.journal(plan.id)} == {JournalStatus.PENDING}


def test_written_values_baseline_and_person_owned(store: StateStore) -> None:
    store.record_written(BOARD, "t1", Field.ASSIGNEES, ("m2",), "p1")
    store.record_baseline(BOARD, [("t1", Field.ASSIGNEES, ("m9",)), ("t2", Field.PRIORITY, "P3")], "p1")
    assert store.last_written(BOARD) == {("t1", Field.ASSIGNEES): ("m2",), ("t2", Field.PRIORITY): "P3"}
    store.mark_person_owned(BOARD, [("t2", Field.PRIORITY, "P1")], "p2")
    assert store.person_owned(BOARD) == {("t2", Field.PRIORITY)}
    assert store.last_written(BOARD)[("t2", Field.PRIORITY)] == "P1"
    # Writing the field again hands it back to tasksync.
    store.record_written(BOARD, "t2", Field.PRIORITY, "P2", "p3")
    assert store.person_owned(BOARD) == set()


def test_transactions_nest_and_roll_back(store: StateStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put(BOARD, "a", "1")
        with store.transaction():  # joins the outer one
            store.put(BOARD, "b", "2")
        raise RuntimeError
    assert store.get(BOARD, "a") is None and store.get(BOARD, "b") is None
    with store.transaction():
        store.put(BOARD, "a", "1")
    assert store.get(BOARD, "a") == "1"


def test_old_schema_is_migrated_and_newer_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema', '1');"
        "CREATE TABLE journal (plan_id TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL, task_id TEXT,"
        " field TEXT, key TEXT, before TEXT, after TEXT, status TEXT NOT NULL, error TEXT,"
        " updated_at TEXT NOT NULL, PRIMARY KEY (plan_id, seq));"
    )
    db.commit()
    db.close()
    with StateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "journal_status" in indexes
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="newer tasksync"):
        StateStore(path)


def test_schema_2_keeps_the_overrides_its_features_made_and_gains_their_tables(tmp_path: Path) -> None:
    """Schema 3 brought the rep overrides and the comment record into the store; a schema-2 store
    holds them already when a rep was set away (or a comment sent), else not at all."""
    from tasksync.team.overrides import RepOverrides

    made, bare = tmp_path / "made.sqlite3", tmp_path / "bare.sqlite3"
    for path in (made, bare):
        StateStore(path).close()
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value='2' WHERE key='schema'")
        db.execute("DROP TABLE rep_overrides")
        db.execute("DROP TABLE card_comments")
        if path == made:  # as the overrides of tasksync 0.x created it on first use
            db.execute(
                "CREATE TABLE rep_overrides (rep_id TEXT NOT NULL, setting TEXT NOT NULL, value TEXT NOT NULL,"
                " until TEXT, set_at TEXT NOT NULL, PRIMARY KEY (rep_id, setting))"
            )
            db.execute("INSERT INTO rep_overrides VALUES ('r1', 'available', 'false', '2026-12-14', 'then')")
        db.commit()
        db.close()
    with StateStore(made) as store:
        assert store.schema_version == 3
        (o,) = RepOverrides(store).all()
        assert (o.rep_id, o.setting, o.value, str(o.until)) == ("r1", "available", False, "2026-12-14")
    with StateStore(bare) as store:
        assert store.schema_version == 3 and RepOverrides(store).all() == []
        store.record_comment("p1", "t1", "done")
        assert store.commented("p1") == {"t1"}


def test_locked_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    StateStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = StateStore(path, timeout=0.01)
        assert store.latest(BOARD, PlanStatus.APPLYING) is None  # readers are not blocked (WAL)
        with pytest.raises(StateStoreBusy, match="locked by another process") as info:
            store.put(BOARD, "k", "v")
        assert info.value.exit_code == 7
        with pytest.raises(StateStoreBusy), store.transaction():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_unusable_store_path_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").mkdir()
    with pytest.raises(ConfigError, match="cannot open the state store"):
        StateStore(tmp_path / "state.sqlite3")


def test_the_store_and_its_lock_are_private_files(tmp_path: Path) -> None:
    from tasksync.sync.lock import WriterLock

    path = tmp_path / "state" / "state.sqlite3"
    with StateStore(path) as store:
        store.put(BOARD, "service.asana_hook_secret", "s3cret")
        with WriterLock(path, wait=0):
            pass
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + ".lock")):
        if p.exists():
            assert p.stat().st_mode & 0o077 == 0, p


def test_an_unwritable_state_folder_is_one_line(tmp_path: Path) -> None:
    from tasksync.sync.lock import WriterLock

    (tmp_path / "ro").write_text("a file where the state folder should be", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot create the lock file"):
        WriterLock(tmp_path / "ro" / "state.sqlite3", wait=0).acquire()
    with pytest.raises(ConfigError, match="cannot open the state store"):
        StateStore(tmp_path / "ro" / "state.sqlite3")
