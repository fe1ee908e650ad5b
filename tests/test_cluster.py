"""The cluster mode against real Redis and PostgreSQL: leases, the scheduler, the shared budget,
and the webhook enqueue, each through the public interfaces of :mod:`tasksync.cluster`."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from cluster_support import fresh_schema_url, postgres_url, redis_url, wait_for
from tasksync.errors import ConfigError

# They share one Redis and one PostgreSQL (the integration test restarts them): one xdist worker.
pytestmark = pytest.mark.xdist_group("services")


def _cluster(tmp_path: Path, boards: int = 3, **extra: str) -> object:
    from tasksync.cluster.config import load_cluster
    from tasksync.cluster.jobs import Cluster
    from tasksync.examples import generate

    keys = []
    for i in range(boards):
        config = generate(tmp_path / f"b{i}", seed=i, cards=5)
        # Owners and priorities only: creating cards for new leads is the integration tests' part.
        config.write_text(config.read_text(encoding="utf-8").replace("enabled = true", "enabled = false"))
        keys.append(f'"b{i}/tasksync.toml"')
    lines = [f'queue = "q{uuid.uuid4().hex[:8]}"', "interval = 30", f"boards = [{', '.join(keys)}]"]
    lines += [f"{k} = {v!r}" for k, v in extra.items()]
    (tmp_path / "cluster.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import os

    os.environ["TASKSYNC_REDIS_URL"] = redis_url()
    os.environ["TASKSYNC_DATABASE_URL"] = fresh_schema_url(postgres_url())
    try:
        return Cluster(load_cluster(tmp_path / "cluster.toml"))
    finally:
        del os.environ["TASKSYNC_REDIS_URL"], os.environ["TASKSYNC_DATABASE_URL"]


def test_board_lease_admits_one_holder_and_dies_with_its_session() -> None:
    from tasksync.cluster.lease import BoardLease
    from tasksync.cluster.pgstore import connect

    url = postgres_url()
    a, b = connect(url), connect(url)
    try:
        first = BoardLease(a, "team/east.toml")
        assert first.acquire()
        assert not BoardLease(b, "team/east.toml").acquire()
        assert BoardLease(b, "team/west.toml").acquire()  # another board is another lease
        a.close()  # the holder's process dies: its session ends, and the lease with it
        wait_for(BoardLease(b, "team/east.toml").acquire, "the lease to be released by the closed session")
    finally:
        a.close()
        b.close()


def test_leader_lease_has_one_holder_until_released() -> None:
    from tasksync.cluster.budget import redis_client
    from tasksync.cluster.lease import LeaderLease

    client = redis_client(redis_url())
    name = uuid.uuid4().hex
    one, two = LeaderLease(client, name, ttl=30), LeaderLease(client, name, ttl=30)
    assert one.hold() and one.hold()  # renewing
    assert not two.hold()
    two.release()  # not the holder: nothing happens
    assert not two.hold()
    one.release()
    assert two.hold() and not one.hold()


def test_scheduler_enqueues_each_tick_once_across_schedulers(tmp_path: Path) -> None:
    from tasksync.cluster.jobs import Cluster
    from tasksync.cluster.scheduler import Scheduler

    cluster = _cluster(tmp_path, boards=3)
    assert isinstance(cluster, Cluster)
    try:
        a, b = Scheduler(cluster), Scheduler(cluster)
        assert a.tick(now=3000.0) == 3
        assert b.tick(now=3000.0) is None  # not the leader
        assert a.tick(now=3010.0) == 0  # same tick (interval 30): claimed already
        a.lease.release()  # the leader stops; the other takes over at the next tick
        assert b.tick(now=3010.0) == 0  # still the same tick: not enqueued twice
        assert b.tick(now=3030.0) == 0  # a new tick, but every board is still queued (no worker ran)
        assert cluster.broker.do_qsize(cluster.cfg.queue) == 3
    finally:
        cluster.purge()


def test_webhook_enqueue_is_one_job_per_board_until_it_starts(tmp_path: Path) -> None:
    from tasksync.cluster.jobs import Cluster

    cluster = _cluster(tmp_path, boards=2)
    assert isinstance(cluster, Cluster)
    key = cluster.cfg.boards[0].key
    try:
        assert cluster.enqueue(key, "webhook")
        assert not cluster.enqueue(key, "webhook")  # a burst of deliveries: one sync
        assert cluster.enqueue(cluster.cfg.boards[1].key, "webhook")
        with pytest.raises(ConfigError, match="no board 'nope'"):
            cluster.enqueue("nope")
        assert cluster.broker.do_qsize(cluster.cfg.queue) == 2
    finally:
        cluster.purge()


def test_a_busy_board_runs_again_after_its_holder(tmp_path: Path) -> None:
    from tasksync.cluster.jobs import Cluster
    from tasksync.cluster.lease import BoardLease
    from tasksync.cluster.pgstore import connect

    cluster = _cluster(tmp_path, boards=1)
    assert isinstance(cluster, Cluster)
    key = cluster.cfg.boards[0].key
    holder = connect(cluster.cfg.database_url)
    try:
        assert BoardLease(holder, key).acquire()  # another worker is syncing this board
        assert cluster.run_board(key).outcome == "busy"
        delayed = f"{cluster.cfg.queue}.DQ"  # Dramatiq's delay queue: the retry after lease_retry
        assert cluster.broker.do_qsize(delayed) == 1
        holder.close()
        first = cluster.run_board(key)
        assert first.outcome == "ok" and first.plan_id and first.applied > 0
        again = cluster.run_board(key)
        assert again.outcome == "ok" and again.plan_id is None  # settled: nothing to write
        status = cluster.status()[key]
        assert status["runs"] == 2 and status["outcome"] == "ok"
    finally:
        holder.close()
        cluster.purge()


def test_shared_budget_counts_every_process_in_one_window() -> None:
    """Two registries (two worker processes) on one token share one window of ``limit``."""
    from tasksync.cluster.budget import RedisLimiterRegistry, redis_client

    secret = uuid.uuid4().hex
    one, two = RedisLimiterRegistry(redis_client(redis_url())), RedisLimiterRegistry(redis_client(redis_url()))
    a, b = one.get("trello-token", secret, 5, 60.0), two.get("trello-token", secret, 5, 60.0)
    stamps = [a.try_acquire() for _ in range(3)] + [b.try_acquire() for _ in range(2)]
    assert all(wait == 0 for wait, _ in stamps)
    assert a.in_window() == b.in_window() == 5
    wait_a, _ = a.try_acquire()
    wait_b, _ = b.try_acquire()
    assert wait_a > 0 and wait_b > 0  # the sixth request waits, whichever process sends it
    assert b.delay() > 0
    second_token = uuid.uuid4().hex
    other = one.get("trello-token", second_token, 5, 60.0)
    assert other.try_acquire()[0] == 0  # another token has its own budget
    other.block_for(30)  # a 429 on it blocks every process using that token
    assert two.get("trello-token", second_token, 5, 60.0).delay() > 25


def test_server_count_seen_in_headers_joins_the_shared_window() -> None:
    from tasksync.cluster.budget import RedisLimiterRegistry, redis_client

    secret = uuid.uuid4().hex
    lim = RedisLimiterRegistry(redis_client(redis_url())).get("trello-key", secret, 10, 60.0)
    lim.observe(remaining=4)  # the server counted 6 requests we did not send (another client)
    assert lim.in_window() == 6
    for _ in range(4):
        assert lim.try_acquire()[0] == 0
    assert lim.try_acquire()[0] > 0


def test_concurrent_acquires_never_exceed_the_limit() -> None:
    from tasksync.cluster.budget import RedisLimiterRegistry, redis_client

    secret = uuid.uuid4().hex
    url = redis_url()  # here, not in the threads: without Redis the test skips instead of failing
    granted: list[float] = []
    lock = threading.Lock()

    def grab() -> None:
        lim = RedisLimiterRegistry(redis_client(url)).get("trello-token", secret, 20, 60.0)
        for _ in range(10):
            wait, stamp = lim.try_acquire()
            if wait == 0:
                with lock:
                    granted.append(stamp)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 20  # 60 attempts, exactly the window's 20 admitted


def test_webhook_deliveries_enqueue_the_board_they_name(tmp_path: Path) -> None:
    from tasksync.cluster.jobs import Cluster

    cluster = _cluster(tmp_path, boards=3)
    assert isinstance(cluster, Cluster)
    for i, ref in enumerate(["https://trello.com/b/AbC123/sales", "5f00000000000000000000b1", "1200000000000002"]):
        config = tmp_path / f"b{i}" / "tasksync.toml"
        kind = "asana" if i == 2 else "trello"
        section = f'[asana]\nproject = "{ref}"\n' if kind == "asana" else f'[trello]\nboards = ["{ref}"]\n'
        text = config.read_text(encoding="utf-8").replace('connector = "local"', f'connector = "{kind}"')
        config.write_text(text + section, encoding="utf-8")
    keys = [b.key for b in cluster.cfg.boards]
    try:
        assert cluster.keys_for_remote(["AbC123"]) == [keys[0]]  # a Trello delivery's short link
        assert cluster.keys_for_remote(["5f00000000000000000000b1", "zzz"]) == [keys[1]]
        assert cluster.enqueue_remote(["1200000000000002"]) == [keys[2]]
        assert cluster.enqueue_remote(["1200000000000002"]) == []  # already queued
        assert cluster.enqueue_remote(["unknown"]) == []
    finally:
        cluster.purge()


def test_webhook_endpoint_queues_the_board_whose_secret_verifies(tmp_path: Path) -> None:
    """``tasksync-cluster webhooks``'s app over HTTP, on real Redis: a delivery signed with its
    board's own secret queues that board's job (once while queued); a bad signature, another
    board's secret or an unknown board is refused and queues nothing; Asana's handshake is
    accepted only with the board's configured secret."""
    import os

    import requests

    from tasksync.cluster.jobs import Cluster
    from tasksync.cluster.webhook import ClusterWebhooks, create_webhook_app
    from tasksync.service.webhooks import asana_signature, trello_signature
    from tasksync.web.server import WebServer

    cluster = _cluster(tmp_path, boards=3)
    assert isinstance(cluster, Cluster)
    refs = ["5f00000000000000000000b1", "5f00000000000000000000b2", "1200000000000003"]
    for i, ref in enumerate(refs):
        config = tmp_path / f"b{i}" / "tasksync.toml"
        kind = "asana" if i == 2 else "trello"
        section = f'[asana]\nproject = "{ref}"\n' if kind == "asana" else f'[trello]\nboards = ["{ref}"]\n'
        text = config.read_text(encoding="utf-8").replace('connector = "local"', f'connector = "{kind}"')
        config.write_text(text + section, encoding="utf-8")
        env = config.parent / ".env"
        env.write_text(f"TASKSYNC_TRELLO_SECRET=trello-secret-{i}\nTASKSYNC_ASANA_WEBHOOK_SECRET=asana-secret-{i}\n")
        env.chmod(0o600)
    keys = [b.key for b in cluster.cfg.boards]
    queue = cluster.cfg.queue
    server = WebServer(create_webhook_app(ClusterWebhooks(cluster)), "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TASKSYNC_") and "SECRET" in k}
    try:
        body = json.dumps({"model": {"id": refs[1]}, "action": {"type": "updateCard"}}).encode()

        def trello(secret: str) -> int:
            sig = trello_signature(secret, body, f"{base}/trello")
            return requests.post(f"{base}/trello", data=body, headers={"X-Trello-Webhook": sig}, timeout=10).status_code

        assert requests.head(f"{base}/trello", timeout=10).status_code == 200  # Trello's check of the callback
        assert trello("trello-secret-0") == 401  # board 0's secret does not sign board 1's deliveries
        assert trello("wrong") == 401
        assert cluster.broker.do_qsize(queue) == 0
        assert trello("trello-secret-1") == 200
        assert cluster.broker.do_qsize(queue) == 1
        assert trello("trello-secret-1") == 200  # a burst: still one job
        assert cluster.broker.do_qsize(queue) == 1
        assert not cluster.enqueue(keys[1]) and cluster.enqueue(keys[0])  # board 1 is the one queued

        gid = refs[2]
        shake = requests.post(f"{base}/asana/{gid}", headers={"X-Hook-Secret": "asana-secret-2"}, timeout=10)
        assert shake.status_code == 200 and shake.headers["X-Hook-Secret"] == "asana-secret-2"
        bad_shake = requests.post(f"{base}/asana/{gid}", headers={"X-Hook-Secret": "chosen-by-a-stranger"}, timeout=10)
        assert bad_shake.status_code == 401 and "X-Hook-Secret" not in bad_shake.headers
        events = json.dumps({"events": [{"action": "changed", "resource": {"gid": "1", "resource_type": "task"}}]})
        signed = {"X-Hook-Signature": asana_signature("asana-secret-2", events.encode())}
        assert requests.post(f"{base}/asana/999", data=events, headers=signed, timeout=10).status_code == 401
        assert cluster.broker.do_qsize(queue) == 2
        assert requests.post(f"{base}/asana/{gid}", data=events, headers=signed, timeout=10).status_code == 200
        assert cluster.broker.do_qsize(queue) == 3 and not cluster.enqueue(keys[2])
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
    finally:
        os.environ.update(saved)
        server.stop()
        cluster.purge()


def test_install_shared_budget_reaches_both_connectors() -> None:
    import tasksync.connectors.transport as transport
    from tasksync.cluster.budget import RedisWindowLimiter, install_shared_budget, redis_client
    from tasksync.connectors.http import trello_session

    before = transport.default_registry()
    registry = install_shared_budget(redis_client(redis_url()))
    try:
        assert transport.default_registry() is registry  # what the Trello session and the Asana connector ask
        limiters = trello_session("http://127.0.0.1:1/1", shared_dir=Path("/nonexistent")).limiters_for(
            {"token": "t", "key": "k"}
        )
        assert [b.scope for b, _ in limiters] == ["trello-token", "trello-key"]
        assert all(isinstance(lim, RedisWindowLimiter) for _, lim in limiters)
    finally:
        assert transport.set_default_registry(before) is registry


def test_the_engine_writer_lock_is_the_lease() -> None:
    from tasksync.cluster.lease import BoardLease, LeaseWriterLock
    from tasksync.cluster.pgstore import connect
    from tasksync.sync.lock import BoardBusy

    with connect(postgres_url()) as conn:
        lease = BoardLease(conn, f"board-{uuid.uuid4().hex}")
        lock = LeaseWriterLock(lease)
        with pytest.raises(BoardBusy, match="does not hold the board's lease"), lock:
            pass
        with lease as held:
            assert held
            with lock, lock:  # re-entrant, as the engine takes it twice in one iteration
                assert lock.held
        assert not lock.held


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("boards = 3\n", "boards: expected a list of config file paths"),
        ('boards = ["missing.toml"]\n', "board 'missing.toml': "),
        ('boards = ["b0/tasksync.toml", "b0/tasksync.toml"]\n', "board 'b0/tasksync.toml' is listed twice"),
        ("interval = -1\n", "interval: expected a positive number of seconds"),
        ("colour = 1\n", "colour: unknown key"),
        ('[[board]]\nconfig = "b0/tasksync.toml"\nprefix = "X"\n', "board[0]: prefix: unknown key"),
        ("boards = [\n", "not valid TOML"),
    ],
)
def test_bad_cluster_files_name_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    from tasksync.cluster.__main__ import main
    from tasksync.examples import generate

    generate(tmp_path / "b0", cards=5)
    monkeypatch.setenv("TASKSYNC_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("TASKSYNC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    path = tmp_path / "cluster.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["-c", str(path), "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tasksync-cluster: {path}") and message in err[0], err


def test_cli_migrate_enqueue_and_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasksync.cluster.__main__ import main
    from tasksync.cluster.jobs import Cluster

    cluster = _cluster(tmp_path, boards=2)
    assert isinstance(cluster, Cluster)
    monkeypatch.setenv("TASKSYNC_REDIS_URL", cluster.cfg.redis_url)
    monkeypatch.setenv("TASKSYNC_DATABASE_URL", cluster.cfg.database_url)
    cfg = str(tmp_path / "cluster.toml")
    try:
        assert main(["-c", cfg, "migrate"]) == 0
        assert main(["-c", cfg, "migrate"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "applied: 0001_initial, 0002_journal_status, 0003_team_tables",
            "up to date",
        ]
        assert main(["-c", cfg, "enqueue", "--all"]) == 0
        assert main(["-c", cfg, "enqueue", "b0/tasksync.toml"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "queued 2 of 2 (the others were already queued)",
            "queued 0 of 1 (the others were already queued)",
        ]
        cluster.run_board("b0/tasksync.toml")
        assert main(["-c", cfg, "status"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("b0/tasksync.toml: 1 jobs, last ok at ") and lines[1] == (
            "b1/tasksync.toml: 0 jobs, last never at -"
        )
    finally:
        cluster.purge()


def test_cli_reps_sets_one_boards_overrides_in_postgres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tasksync-cluster reps BOARD ...``: overrides of that board's team only, in PostgreSQL; a
    job with nothing new on the board or in the CRM still plans once they changed."""
    from tasksync.cluster.__main__ import main
    from tasksync.cluster.jobs import Cluster
    from tasksync.crm import load_crm
    from tasksync.team.overrides import RepOverrides

    cluster = _cluster(tmp_path, boards=2)
    assert isinstance(cluster, Cluster)
    monkeypatch.setenv("TASKSYNC_REDIS_URL", cluster.cfg.redis_url)
    monkeypatch.setenv("TASKSYNC_DATABASE_URL", cluster.cfg.database_url)
    cfg = str(tmp_path / "cluster.toml")
    b0, b1 = (b.key for b in cluster.cfg.boards)
    settings = cluster.cfg.board(b0).settings()
    board = json.loads((tmp_path / "b0" / "board.json").read_text(encoding="utf-8"))
    names = {m["id"]: m["fullName"] for m in board["members"]}
    owners = [names[m] for c in board["cards"] for m in c["idMembers"] if not c.get("closed")]
    reps = {r.name: r for r in load_crm(settings.crm, settings.base_dir).reps}
    rep = next(reps[n] for n in owners if n in reps)  # a rep holding a card: setting them away moves it
    try:
        assert cluster.run_board(b0).outcome == "ok"
        assert cluster.run_board(b0).plan_id is None  # nothing new: the job reads nothing, plans nothing
        assert main(["-c", cfg, "reps", b0]) == 0
        assert capsys.readouterr().out.strip() == "no overrides in force: every rep as in the reps export"
        assert main(["-c", cfg, "reps", b0, "away", rep.id]) == 0
        assert main(["-c", cfg, "reps", b0, "quota", rep.name, "90000"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out == [
            f"{rep.name}: away, set by command; the board's next job hands on their cards",
            f"{rep.name}: quota 90,000, set by command",
        ]
        with cluster.board_store(b0) as s0, cluster.board_store(b1) as s1:
            assert {(o.rep_id, o.setting) for o in RepOverrides(s0).all()} == {(rep.id, "available"), (rep.id, "quota")}
            assert RepOverrides(s1).all() == []  # another board's team
        again = cluster.run_board(b0)
        assert again.outcome == "ok" and again.plan_id is not None  # the overrides changed: it planned
        assert main(["-c", cfg, "reps", b0, "capacity", rep.name, "-1"]) == 2
        assert main(["-c", cfg, "reps", b0, "away", "Nobody Atall"]) == 2
        assert main(["-c", cfg, "reps", b0, "quota", rep.name, "inf"]) == 2  # the checks of `tasksync reps`
        err = capsys.readouterr().err
        assert "a capacity cannot be negative" in err and "no rep named 'Nobody Atall'" in err
        assert "a quota must be a number, not inf" in err
        assert main(["-c", cfg, "reps", "nope.toml"]) == 2
        assert "no board 'nope.toml' in the cluster" in capsys.readouterr().err
        assert main(["-c", cfg, "reps", b0, "reset", rep.name]) == 0
        assert capsys.readouterr().out.strip() == f"{rep.name}: 2 override(s) removed; as in the reps export again"
    finally:
        cluster.purge()


def test_cli_without_the_cluster_extra_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from tasksync.cluster.__main__ import main

    monkeypatch.setitem(sys.modules, "dramatiq", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tasksync.cluster.jobs", raising=False)
    assert main(["-c", str(tmp_path / "cluster.toml"), "status"]) == 2
    assert capsys.readouterr().err.strip() == "tasksync-cluster: dramatiq is missing: pip install 'tasksync[cluster]'"


def test_a_board_that_cannot_run_is_recorded_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A board whose secrets are missing: the job records the error for `status`, other boards run."""
    from tasksync.cluster.jobs import Cluster

    cluster = _cluster(tmp_path, boards=2)
    assert isinstance(cluster, Cluster)
    config = tmp_path / "b0" / "tasksync.toml"
    text = config.read_text(encoding="utf-8").replace('connector = "local"', 'connector = "trello"')
    config.write_text(text + '[trello]\nboards = ["5f00000000000000000000b1"]\n', encoding="utf-8")
    for name in ("TASKSYNC_TRELLO_KEY", "TASKSYNC_TRELLO_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    try:
        bad = cluster.run_board("b0/tasksync.toml")
        assert bad.outcome == "error" and bad.error and "TASKSYNC_TRELLO_KEY" in bad.error
        assert cluster.run_board("b1/tasksync.toml").outcome == "ok"
        (tmp_path / "b1" / "tasksync.toml").write_text("connector = [\n", encoding="utf-8")  # broken since
        broken = cluster.run_board("b1/tasksync.toml")
        assert broken.outcome == "error" and broken.error and "not valid TOML" in broken.error
        status = cluster.status()
        assert status["b0/tasksync.toml"]["outcome"] == "error" and status["b1/tasksync.toml"]["runs"] == 2
    finally:
        cluster.purge()


def test_delivery_ids_name_the_board_of_a_webhook() -> None:
    import json

    from tasksync.cluster.webhook import delivery_ids

    trello = {
        "model": {"id": "5f00000000000000000000b1", "shortLink": "AbC123"},
        "action": {"type": "updateCard", "data": {"board": {"id": "5f00000000000000000000b1", "shortLink": "AbC123"}}},
    }
    assert delivery_ids("trello", json.dumps(trello).encode()) == ["5f00000000000000000000b1", "AbC123"]
    task_changed = {"events": [{"action": "changed", "resource": {"gid": "77", "resource_type": "task"}}]}
    assert delivery_ids("asana", json.dumps(task_changed).encode()) == []  # a task event names no project
    assert delivery_ids("asana", json.dumps(task_changed).encode(), "/asana/1200000000000002") == ["1200000000000002"]
    added = {
        "events": [
            {"resource": {"gid": "77", "resource_type": "task"}, "parent": {"gid": "12", "resource_type": "project"}}
        ]
    }
    assert delivery_ids("asana", json.dumps(added).encode(), "/asana?project=12") == ["12"]
    assert delivery_ids("trello", b"not json", "/trello") == []
