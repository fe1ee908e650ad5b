"""The Asana connector against the loopback fake Asana API (the SDK runs unchanged).

Each test names the behaviour it checks: request counts for reads and batched writes, partial
batch failures, 429 with Retry-After, injected faults with exactly-once results, idempotent
creates, error messages, the Events API with 412, and conformance of every request to the
vendor's OpenAPI spec.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from contract import ConnectorContract
from tasksync.connectors.asana import AsanaConnector, parse_project_ref, shared_api_client
from tasksync.connectors.base import Commenter, Connector, marker_for
from tasksync.connectors.http import SlidingWindowLimiter
from tasksync.errors import AuthError, ConfigError, NotFoundError, TransientError
from tasksync.model import Field, NewTask, TaskWrite, WriteResult, WriteStatus
from tasksync.settings import AsanaSettings, LinkSettings, Secrets, Settings
from tasksync.testing.fake_asana import DemoIds, FakeAsana, Fault

SPEC = Path(__file__).resolve().parent / "specs" / "asana_oas.yaml"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def fake() -> Iterator[FakeAsana]:
    # One fake minute lasts one real second: budgets are enforced without slow tests.
    with FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7) as f:
        yield f


def make_settings(fake: FakeAsana, project: str, **link: Any) -> Settings:
    s = Settings(
        connector="asana",
        asana=AsanaSettings(project=project, api_url=fake.url),
        link=LinkSettings(**link) if link else LinkSettings(),
    )
    s.secrets = Secrets(asana_token=SecretStr(fake.token))
    return s


def make_connector(fake: FakeAsana, demo: DemoIds, *, rpm: int = 10_000, **kw: Any) -> AsanaConnector:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5.0)
    return AsanaConnector(
        make_settings(fake, demo.project),
        limiter=SlidingWindowLimiter(rpm, 60.0 / fake.time_scale),
        **kw,
    )


def batch_actions(fake: FakeAsana) -> list[tuple[dict[str, Any], int | None]]:
    """Every batch action sent, with its answered status (None: the batch got no answer)."""
    out: list[tuple[dict[str, Any], int | None]] = []
    for r in fake.requests("POST", "/batch"):
        actions = r.body["data"]["actions"]
        results = (r.response or {}).get("data") if r.status == 200 else None
        for i, a in enumerate(actions):
            out.append((a, results[i]["status_code"] if results else None))
    return out


# --------------------------------------------------------------------------- contract
class TestAsanaContract(ConnectorContract):
    """The behaviour every connector shares, on a small project of the fake.

    Asana has one assignee per task; the contract's read-back of written assignees holds here
    because every task starts assigned to one of the two users (so the write names one user).
    """

    @pytest.fixture
    def connector(self, fake: FakeAsana) -> Iterator[Connector]:
        ws = fake.add_workspace()
        project = fake.add_project(ws, "Contract project")
        stages = [fake.add_section(project, n) for n in ("Lead", "Proposal", "Won")]
        prio = fake.add_enum_field(project, "Priority", ["P1", "P2", "P3"])
        options = [o["gid"] for o in fake.custom_fields[prio]["enum_options"]]
        crm = fake.add_text_field(project, "CRM ID")
        users = [fake.add_user(ws, f"Rep {c}", f"rep{c}@example.com") for c in "AB"]
        for i in range(4):
            fake.add_task(
                project,
                stages[i % 2],
                f"Deal {i}",
                assignee=users[i % 2],
                custom_values={prio: options[i % 3], crm: f"D-{i}"},
            )
        fake.add_task(project, stages[0], "Archived deal", completed=True)
        conn = AsanaConnector(make_settings(fake, project), limiter=SlidingWindowLimiter(10_000, 1.0), backoff=0.01)
        yield conn
        conn.close()


# --------------------------------------------------------------------------- reading
def test_read_maps_project_and_costs_one_request_per_100_tasks(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=250, users=12)
    done = fake.add_task(demo.project, demo.sections[0], "Closed deal", completed=True)
    marked = fake.add_task(demo.project, demo.sections[1], "Marked", notes=f"hello {marker_for('CRM-9')}")
    conn = make_connector(fake, demo)
    assert isinstance(conn, Connector)
    snap = conn.read()

    assert fake.count() == math.ceil(251 / 100) + 5  # tasks pages + project, events token, sections, fields, users
    assert len(fake.requests("GET", f"/projects/{demo.project}/tasks")) == 3
    for r in fake.requests("GET", f"/projects/{demo.project}/tasks"):
        assert r.query["limit"] == "100"
        assert "opt_fields" in r.query and "," in r.query["opt_fields"]
    assert snap.name == "Pipeline"
    assert str(snap.board) == f"asana:{demo.project}"
    assert [s.name for s in snap.stages] == ["Lead", "Qualified", "Proposal", "Negotiation"]
    assert snap.priority_options == ("P1", "P2", "P3", "P4")
    assert len(snap.members) == 12 and all(m.email for m in snap.members)
    ids = {t.id for t in snap.tasks}
    assert done not in ids and marked in ids and len(snap.tasks) == 251

    first = snap.task(demo.tasks[1])
    assert first is not None
    raw = fake.tasks[demo.tasks[1]]
    assert first.assignees == ((raw.assignee,) if raw.assignee else ())
    assert first.stage_id == raw.memberships[0][1]
    assert first.priority == "P2"
    assert first.crm_ref == "ACC-0002"
    assert first.version == raw.modified_at
    unassigned = snap.task(demo.tasks[0])
    assert unassigned is not None and unassigned.assignees == () and unassigned.due is not None
    marked_task = snap.task(marked)
    assert marked_task is not None and marked_task.crm_ref == "CRM-9"  # the marker always counts


def test_read_links_by_account_name_when_configured(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=3, users=2)
    conn = AsanaConnector(
        make_settings(fake, demo.project, by="account_name"),
        limiter=SlidingWindowLimiter(1000, 1.0),
    )
    snap = conn.read()
    assert sorted(t.crm_ref or "" for t in snap.tasks) == [
        "Account 0001",
        "Account 0002",
        "Account 0003",
    ]


def test_project_given_as_url() -> None:
    assert parse_project_ref("https://app.asana.com/0/1204/list") == "1204"
    assert parse_project_ref("https://app.asana.com/1/99/project/1205/board") == "1205"
    assert parse_project_ref(" 1206 ") == "1206"
    with pytest.raises(ConfigError):
        parse_project_ref("not a project")


# --------------------------------------------------------------------------- writing
def test_write_sends_at_most_ten_actions_per_batch(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=60, users=6)
    conn = make_connector(fake, demo)
    conn.read()
    fake.clear_log()
    target_section = demo.sections[3]
    writes = [
        TaskWrite(
            t,
            {Field.ASSIGNEES: (demo.users[5],), Field.PRIORITY: "P1", Field.STAGE: target_section},
        )
        for t in demo.tasks[:25]
    ] + [TaskWrite(t, {Field.ASSIGNEES: ()}) for t in demo.tasks[25:48]]
    results = list(conn.write(writes))

    actions = 25 * 2 + 23
    assert fake.count() == fake.count("POST", "/batch") == math.ceil(actions / 10)
    assert all(len(r.body["data"]["actions"]) <= 10 for r in fake.requests("POST", "/batch"))
    assert [r.ok for r in results] == [True] * 48
    assert sorted(r.task_id for r in results) == sorted(w.task_id for w in writes)
    for t in demo.tasks[:25]:
        task = fake.tasks[t]
        assert task.assignee == demo.users[5]
        assert task.memberships == [(demo.project, target_section)]
        assert task.custom_values[demo.priority_field] == demo.priority_options["P1"]
    assert all(fake.tasks[t].assignee is None for t in demo.tasks[25:48])
    assert fake.max_inflight <= conn.write_concurrency  # the concurrent-write cap
    # The next read sees exactly what was written.
    snap = conn.read()
    moved = snap.task(demo.tasks[0])
    assert moved is not None and moved.stage_id == target_section and moved.priority == "P1"


def test_partial_batch_failure_retries_only_the_failed_actions(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=40, users=4)
    conn = make_connector(fake, demo)
    fake.action_error_rate = 0.3
    writes = [TaskWrite(t, {Field.ASSIGNEES: (demo.users[0],)}) for t in demo.tasks]
    results = list(conn.write(writes))
    fake.action_error_rate = 0.0

    assert all(r.ok for r in results) and len(results) == 40
    sent = batch_actions(fake)
    failed = [a["relative_path"] for a, status in sent if status == 500]
    succeeded = [a["relative_path"] for a, status in sent if status == 200]
    assert failed, "the fault injection should have failed some actions"
    # Each task's update succeeded exactly once, and was sent once plus once per failure.
    assert sorted(succeeded) == sorted(f"/tasks/{t}" for t in demo.tasks)
    assert len(sent) == 40 + len(failed)
    assert all(fake.tasks[t].assignee == demo.users[0] for t in demo.tasks)


def test_write_result_names_the_task_on_a_permanent_failure(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=3, users=2)
    conn = make_connector(fake, demo)
    conn.read()
    fake.clear_log()
    results = {
        r.task_id: r
        for r in conn.write(
            [
                TaskWrite(demo.tasks[0], {Field.PRIORITY: "P9"}),  # not an option
                TaskWrite("999", {Field.ASSIGNEES: (demo.users[0],)}),  # no such task
                TaskWrite(demo.tasks[1], {Field.ASSIGNEES: ("12345",)}),  # no such user
                TaskWrite(demo.tasks[2], {Field.CLOSED: True}),
            ]
        )
    }
    assert not results[demo.tasks[0]].ok and "'Account 0001'" in (results[demo.tasks[0]].error or "")
    assert "P9" in (results[demo.tasks[0]].error or "")
    assert not results["999"].ok and "task 999" in (results["999"].error or "")
    assert not results["999"].retriable
    assert not results[demo.tasks[1]].ok and "Account 0002" in (results[demo.tasks[1]].error or "")
    assert results[demo.tasks[2]].ok and fake.tasks[demo.tasks[2]].completed
    assert fake.count() == 1  # the bad priority never left the process


# --------------------------------------------------------------------------- limits and faults
def test_429_waits_retry_after_then_succeeds(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=5, users=2)
    conn = make_connector(fake, demo, backoff=0.001)
    fake.time_scale = 1.0  # log times in real seconds for this test
    fake.fail_next(1, Fault("status", 429, retry_after=0.4))
    conn.read()
    log = fake.requests()
    limited = [i for i, r in enumerate(log) if r.status == 429]
    assert len(limited) == 1
    rejected = log[limited[0]]
    # Every request sent after the 429 waited out Retry-After (the limiter pauses all threads).
    later = [r for r in log if r.at > rejected.at]
    assert later and min(r.at for r in later) - rejected.at >= 0.4 - 0.02
    assert all(r.status in (200, 412) for r in later)  # 412: the events token taken by the read


def test_client_limiter_keeps_under_the_servers_budget(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=450, users=8)
    fake.requests_per_minute = 12  # 12 per fake minute = 12 per real second here
    conn = make_connector(fake, demo, rpm=12)
    start = time.monotonic()
    conn.read()
    list(conn.write([TaskWrite(t, {Field.ASSIGNEES: (demo.users[1],)}) for t in demo.tasks[:100]]))
    elapsed = time.monotonic() - start
    assert fake.count(None, None) == 10 + 10  # the read (its events token included), 10 batches
    assert not [r for r in fake.requests() if r.status == 429]
    assert elapsed >= 1.0  # 19 requests cannot fit in one window of 12


def test_without_client_limiter_429s_are_honoured_and_writes_land(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=150, users=3)
    fake.requests_per_minute = 6  # 15 batch requests at 6 per (scaled) minute
    conn = make_connector(fake, demo, rpm=10_000, max_attempts=10)
    results = list(conn.write([TaskWrite(t, {Field.ASSIGNEES: (demo.users[2],)}) for t in demo.tasks]))
    assert all(r.ok for r in results)
    assert [r for r in fake.requests() if r.status == 429]
    assert all(fake.tasks[t].assignee == demo.users[2] for t in demo.tasks)


def test_concurrent_writes_stay_under_asanas_cap(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=200, users=3)
    fake.max_concurrent_writes = 2
    fake.slow_rate, fake.slow_seconds = 1.0, 0.02  # every answer takes a while
    conn = make_connector(fake, demo, write_concurrency=2)
    results = list(conn.write([TaskWrite(t, {Field.ASSIGNEES: (demo.users[1],)}) for t in demo.tasks]))
    fake.slow_rate = 0.0
    assert all(r.ok for r in results)
    assert fake.count("POST", "/batch") == 20 and fake.max_inflight == 2
    assert not [r for r in fake.requests() if r.status == 429]
    # Over the cap the fake answers 429; the writes still land after waiting.
    fake.clear_log()
    fake.slow_rate, fake.slow_seconds = 1.0, 0.5  # long enough that six writers overlap on a busy machine
    eager = make_connector(fake, demo, write_concurrency=6)
    some = demo.tasks[:60]  # each 429 says "Retry-After: 1" (whole seconds, as Asana)
    results = list(eager.write([TaskWrite(t, {Field.ASSIGNEES: ()}) for t in some]))
    fake.slow_rate = 0.0
    assert all(r.ok for r in results) and all(fake.tasks[t].assignee is None for t in some)
    assert [r for r in fake.requests() if r.status == 429]


def test_injected_faults_every_change_and_create_lands_exactly_once(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=80, users=5)
    conn = make_connector(fake, demo, timeout=0.5, max_attempts=8)
    conn.read()
    # About 20% of requests fail: 5xx before or after doing the work, dropped connections,
    # answers slower than the client's timeout, and failed actions inside batches.
    fake.error_rate = 0.06
    fake.error_after_rate = 0.04
    fake.drop_rate = 0.04
    fake.slow_rate = 0.03
    fake.slow_seconds = 0.8
    fake.action_error_rate = 0.03
    writes = [
        TaskWrite(
            t,
            {
                Field.ASSIGNEES: (demo.users[i % 5],),
                Field.STAGE: demo.sections[(i + 1) % 4],
                Field.PRIORITY: "P3",
            },
        )
        for i, t in enumerate(demo.tasks)
    ]
    results = list(conn.write(writes))
    creates = [NewTask(key=f"DEAL-{i}", title=f"Deal {i}", stage_id=demo.sections[0], priority="P2") for i in range(30)]
    created = list(conn.create(creates))
    faults = [r for r in fake.requests() if r.fault]
    for name in ("error_rate", "error_after_rate", "drop_rate", "slow_rate", "action_error_rate"):
        setattr(fake, name, 0.0)

    assert faults, "faults should have been injected"
    assert [r.ok for r in results] == [True] * 80
    for i, t in enumerate(demo.tasks):
        task = fake.tasks[t]
        assert task.assignee == demo.users[i % 5]
        assert task.memberships == [(demo.project, demo.sections[(i + 1) % 4])]
        assert task.custom_values[demo.priority_field] == demo.priority_options["P3"]
    assert all(r.ok for r in created) and sorted(r.key or "" for r in created) == sorted(n.key for n in creates)
    by_key = [t.external["gid"] for t in fake.tasks.values() if t.external]
    assert sorted(by_key) == sorted(n.key for n in creates)  # one task per key, no duplicates
    assert {r.task_id for r in created} == {fake.external_index[n.key] for n in creates}


# --------------------------------------------------------------------------- creating
def test_create_retried_after_a_lost_answer_finds_the_first_task(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=2, users=2)
    conn = make_connector(fake, demo)
    new = [
        NewTask(
            key=f"K-{i}",
            title=f"Lead {i}",
            stage_id=demo.sections[1],
            assignees=(demo.users[1],),
            priority="P1",
            description="From the CRM",
        )
        for i in range(3)
    ]
    # The create batch is carried out but its answer is lost.
    fake.fail_next(1, Fault("after", 500), when=lambda m, p: m == "POST" and p == "/batch" and _creates(fake))
    results = list(conn.create(new))
    assert all(r.ok for r in results)
    assert len(fake.tasks) == 5
    for n, r in zip(new, sorted(results, key=lambda r: r.key or ""), strict=True):
        t = fake.tasks[r.task_id]
        assert t.external == {"gid": n.key, "data": "tasksync"}
        assert marker_for(n.key) in t.notes and "From the CRM" in t.notes
        assert t.memberships == [(demo.project, demo.sections[1])]
        assert t.assignee == demo.users[1]
        assert t.custom_values[demo.priority_field] == demo.priority_options["P1"]
    # A second run (a new process: nothing remembered) finds them instead of duplicating.
    again = make_connector(fake, demo)
    assert {r.task_id for r in again.create(new)} == {r.task_id for r in results}
    assert len(fake.tasks) == 5
    assert again.find_created("K-1") == fake.external_index["K-1"]
    assert again.find_created("K-404") is None


def test_create_lookup_ignores_a_task_with_the_same_key_in_another_project(fake: FakeAsana) -> None:
    """External ids are unique per workspace, not per project: another project's task carrying
    the key is not ours, so it is neither reported as created nor taken after a lost answer."""
    demo = fake.seed_demo(tasks=2, users=2)
    other = fake.add_project(demo.workspace, "Partners")
    theirs = fake.add_task(
        other, fake.add_section(other, "Lead"), "Their lead", external={"gid": "K-1", "data": "other app"}
    )
    conn = make_connector(fake, demo)
    new = [NewTask(key=f"K-{i}", title=f"Lead {i}", stage_id=demo.sections[0]) for i in range(3)]
    fake.fail_next(1, Fault("after", 500), when=lambda m, p: m == "POST" and p == "/batch" and _creates(fake))
    results = {r.key: r for r in conn.create(new)}
    assert all(r.ok for r in results.values()) and len(results) == 3
    ours = results["K-1"].task_id
    assert ours != theirs and fake.tasks[ours].memberships == [(demo.project, demo.sections[0])]
    assert marker_for("K-1") in fake.tasks[ours].notes and fake.tasks[ours].external is None
    assert fake.tasks[theirs].external == {"gid": "K-1", "data": "other app"}  # left alone
    assert len([t for t in fake.tasks.values() if marker_for("K-1") in t.notes]) == 1  # created once
    assert conn.find_created("K-1") == ours
    # A new process finds ours by its marker and creates nothing more.
    again = make_connector(fake, demo)
    assert again.find_created("K-1") == ours
    assert {r.task_id for r in again.create(new)} == {r.task_id for r in results.values()}
    assert len(fake.project_tasks[demo.project]) == 5


def test_create_with_a_personal_token_falls_back_to_markers(fake: FakeAsana) -> None:
    """Without OAuth there are no external ids: markers in the notes keep creates unique."""
    demo = fake.seed_demo(tasks=120, users=2)
    fake.oauth = False
    conn = make_connector(fake, demo)
    conn.read()
    assert conn.find_created("P-0") is None  # the external lookup is refused: markers only
    new = [NewTask(key=f"P-{i}", title=f"Lead {i}", stage_id=demo.sections[0]) for i in range(4)]
    fake.clear_log()
    fake.fail_next(1, Fault("after", 500), when=lambda m, p: m == "POST" and p == "/batch" and _creates(fake))
    results = list(conn.create(new))
    assert all(r.ok for r in results) and len(results) == 4
    created = [t for t in fake.tasks.values() if "[tasksync:P-" in t.notes]
    assert len(created) == 4 and all(t.external is None for t in created)
    assert {r.task_id for r in results} == {t.gid for t in created}
    # The answer was lost: the retry scanned recently modified tasks instead of re-creating.
    assert fake.requests("GET", "/tasks") and fake.requests("GET", "/tasks")[0].query["modified_since"]
    # A new process that has not read the project scans it once for markers.
    fresh = make_connector(fake, demo)
    fake.clear_log()
    assert fresh.find_created("P-2") == next(t.gid for t in created if "[tasksync:P-2]" in t.notes)
    assert fresh.find_created("P-9") is None
    assert fake.count("GET", f"/projects/{demo.project}/tasks") == 2  # 124 tasks, scanned once
    again = list(fresh.create(new))
    assert {r.task_id for r in again} == {r.task_id for r in results}
    assert len([t for t in fake.tasks.values() if "[tasksync:P-" in t.notes]) == 4
    # Another connector learns it from its first lookup and creates with markers only.
    third = make_connector(fake, demo)
    third.read()
    [r] = list(third.create([NewTask(key="P-10", title="Late lead", stage_id=demo.sections[1])]))
    assert r.ok and "[tasksync:P-10]" in fake.tasks[r.task_id].notes
    assert len([t for t in fake.tasks.values() if "[tasksync:P-10]" in t.notes]) == 1


def _creates(fake: FakeAsana) -> bool:
    """Whether the request being faulted is a create batch (looked up by its last log entry)."""
    last = fake.log[-1]
    return any(a["relative_path"] == "/tasks" for a in last.body["data"]["actions"])


def test_create_finds_a_task_marked_by_hand_through_the_last_read(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=2, users=2)
    manual = fake.add_task(demo.project, demo.sections[0], "Typed by a rep", notes="[tasksync:M-1]")
    conn = make_connector(fake, demo)
    conn.read()
    fake.clear_log()
    [result] = conn.create([NewTask(key="M-1", title="x", stage_id=demo.sections[0])])
    assert result.ok and result.task_id == manual and result.key == "M-1"
    # No lookup: the task is read again (its fields now) and given its CRM ID, nothing else.
    assert fake.count() == fake.count("POST", "/batch") == 2
    assert fake.tasks[manual].custom_values[demo.crm_field] == "M-1"


# --------------------------------------------------------------------------- errors
def test_bad_token_raises_auth_error_naming_the_project(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=1, users=1)
    s = make_settings(fake, demo.project)
    s.secrets = Secrets(asana_token=SecretStr("wrong-token"))
    conn = AsanaConnector(s, limiter=SlidingWindowLimiter(1000, 1.0))
    with pytest.raises(AuthError, match=rf"project {demo.project}.*TASKSYNC_ASANA_TOKEN"):
        conn.read()
    with pytest.raises(AuthError, match=demo.project):
        list(conn.write([TaskWrite(demo.tasks[0], {Field.ASSIGNEES: ()})]))


def test_forbidden_and_missing_project(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=1, users=1)
    with pytest.raises(NotFoundError, match="project 4242"):
        AsanaConnector(make_settings(fake, "4242"), limiter=SlidingWindowLimiter(1000, 1.0)).read()
    fake.forbidden.add(demo.project)
    with pytest.raises(AuthError, match=rf"project {demo.project}.*403"):
        make_connector(fake, demo).read()


def test_missing_token_is_a_config_error(fake: FakeAsana) -> None:
    s = make_settings(fake, "1")
    s.secrets = Secrets(asana_token=None)
    with pytest.raises(ConfigError, match="TASKSYNC_ASANA_TOKEN"):
        AsanaConnector(s)


def test_unreachable_api_raises_transient_error_not_urllib3() -> None:
    s = Settings(connector="asana", asana=AsanaSettings(project="1", api_url="http://127.0.0.1:9"))
    s.secrets = Secrets(asana_token=SecretStr("t"))
    conn = AsanaConnector(s, limiter=SlidingWindowLimiter(1000, 1.0), backoff=0.001, max_attempts=2)
    with pytest.raises(TransientError, match="connection to Asana failed"):
        conn.read()


def test_api_client_is_shared_per_host_and_token() -> None:
    a = shared_api_client("http://127.0.0.1:1/api/1.0", "tok")
    assert shared_api_client("http://127.0.0.1:1/api/1.0/", "tok") is a
    assert shared_api_client("http://127.0.0.1:1/api/1.0", "other") is not a


# --------------------------------------------------------------------------- events
def test_changed_since_uses_events_and_handles_412(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=10, users=3)
    conn = make_connector(fake, demo)
    changed, token = conn.changed_since(None)
    assert changed is None and token  # no token yet: full read, then use the fresh token
    fake.clear_log()
    changed, token2 = conn.changed_since(token)
    assert changed == set() and fake.count() == 1  # an idle sync costs one request
    list(conn.write([TaskWrite(t, {Field.ASSIGNEES: (demo.users[0],)}) for t in demo.tasks[:3]]))
    changed, token3 = conn.changed_since(token2)
    assert changed == {t for t in demo.tasks[:3] if fake.tasks[t].assignee == demo.users[0]}
    assert changed  # at least the ones that were not already assigned to that user
    fresh = conn.read_tasks(sorted(changed))
    assert all(t is not None and t.assignees == (demo.users[0],) for t in fresh.values())
    fake.expire_sync_tokens()
    changed, token4 = conn.changed_since(token3)
    assert changed is None and token4 != token3  # expired: full read, fresh token


# --------------------------------------------------------------------------- the fake itself
def test_fake_answers_errors_in_asanas_shapes() -> None:
    import requests

    with FakeAsana(requests_per_minute=2, time_scale=1.0) as fake:
        demo = fake.seed_demo(tasks=3, users=1)
        auth = {"Authorization": f"Bearer {fake.token}"}
        r = requests.get(f"{fake.url}/projects/{demo.project}/tasks?limit=101", headers=auth)
        assert r.status_code == 400
        assert set(r.json()["errors"][0]) == {"message", "help"}
        r = requests.get(f"{fake.url}/users", timeout=5)
        assert r.status_code == 401
        actions = [{"relative_path": f"/tasks/{demo.tasks[0]}", "method": "get"}] * 11
        r = requests.post(f"{fake.url}/batch", json={"data": {"actions": actions}}, headers=auth, timeout=5)
        assert r.status_code == 400
        r = requests.get(f"{fake.url}/users", headers=auth, timeout=5)  # 3rd for this token
        assert r.status_code == 429 and float(r.headers["Retry-After"]) >= 1
        fake.requests_per_minute = None
        r = requests.get(f"{fake.url}/events?resource={demo.project}", headers=auth, timeout=5)
        assert r.status_code == 412 and r.json()["sync"]
        r = requests.get(f"{fake.url}/projects/{demo.project}/tasks?limit=2&offset=forged", headers=auth)
        assert r.status_code == 400
        fake.fail_next(1, Fault("status", 503))
        r = requests.get(f"{fake.url}/users", headers=auth, timeout=5)
        assert r.status_code == 503 and r.json()["errors"][0]["phrase"]
        assert [x.status for x in fake.log] == [400, 401, 400, 429, 412, 400, 503]


def test_expired_page_token_restarts_the_listing_once(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=250, users=1)
    conn = make_connector(fake, demo)
    pages = 0

    def expire_on_second_page(method: str, path: str) -> bool:
        nonlocal pages
        if path.endswith("/tasks") and method == "GET":
            pages += 1
            if pages == 2:
                fake.expire_offsets()
        return False  # never inject a fault; this only expires the tokens once

    fake.fail_next(1, when=expire_on_second_page)
    snap = conn.read()
    assert len(snap.tasks) == 250
    assert len(fake.requests("GET", f"/projects/{demo.project}/tasks")) == 2 + 3


# --------------------------------------------------------------------------- limiter
class _FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_limiter_slot_counts_a_request_from_when_its_answer_came() -> None:
    """A slow request may reach the server late: its slot leaves the window only a full
    window after its answer, so the client never counts fewer than the server."""
    clock = _FakeClock()
    lim = SlidingWindowLimiter(2, 10.0, clock=clock, margin=0.0)
    with lim.slot():
        clock.t = 4.0  # the answer takes 4 s
    lim.acquire()  # t=4
    clock.t = 11.0
    assert lim.try_acquire()[0] > 0  # a plain send stamp (t=0) would have left by now
    clock.t = 14.0
    assert lim.try_acquire()[0] == 0


# --------------------------------------------------------------------------- spec conformance
def _load_spec() -> dict[str, Any]:
    import yaml  # a test dependency: the spec is kept in tests/specs, so this never skips

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
    with SPEC.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=loader)  # a safe loader
    return spec


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _properties(spec: dict[str, Any], schema: Any) -> dict[str, Any]:
    schema = _resolve(spec, schema)
    props: dict[str, Any] = {}
    if not isinstance(schema, dict):
        return props
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            props.update(_properties(spec, sub))
    props.update(schema.get("properties", {}))
    return props


class _Operation:
    def __init__(self, spec: dict[str, Any], template: str, method: str) -> None:
        item = spec["paths"][template]
        op = item[method]
        self.template = template
        params = [_resolve(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]
        self.query = {p["name"]: p for p in params if p.get("in") == "query"}
        self.opt_fields: set[str] = set()
        if "opt_fields" in self.query:
            schema = _resolve(spec, self.query["opt_fields"].get("schema", {}))
            self.opt_fields = set(_resolve(spec, schema.get("items", {})).get("enum", []))
        self.body_fields: dict[str, Any] = {}
        body = _resolve(spec, op.get("requestBody", {}))
        content = body.get("content", {}).get("application/json", {}) if body else {}
        if content:
            data = _properties(spec, content.get("schema", {})).get("data", {})
            self.body_fields = _properties(spec, data)


def _match(spec: dict[str, Any], path: str, method: str) -> _Operation:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return _Operation(spec, template, method.lower())
    raise AssertionError(f"{method} {path}: no such operation in the Asana spec")


def _check_opt_fields(op: _Operation, fields: list[str], where: str) -> None:
    unknown = [f for f in fields if f not in op.opt_fields]
    assert not unknown, f"{where}: opt_fields not in the spec: {unknown}"


def _check_body(spec: dict[str, Any], op: _Operation, data: dict[str, Any], where: str) -> None:
    unknown = sorted(k for k in data if k not in op.body_fields)
    assert not unknown, f"{where}: body fields not in the spec: {unknown}"
    # One level down for objects the connector fills in (memberships, external).
    for key in ("external",):
        if key in data:
            sub = _properties(spec, op.body_fields[key])
            assert set(data[key]) <= set(sub), f"{where}: {key} fields {set(data[key]) - set(sub)}"
    if "memberships" in data:
        items = _resolve(spec, op.body_fields["memberships"]).get("items", {})
        sub = _properties(spec, items)
        for m in data["memberships"]:
            assert set(m) <= set(sub), f"{where}: memberships fields {set(m) - set(sub)}"


def test_every_request_the_connector_sends_exists_in_the_asana_spec(fake: FakeAsana) -> None:
    spec = _load_spec()
    demo = fake.seed_demo(tasks=130, users=3)
    conn = make_connector(fake, demo)
    conn.read()
    _, token = conn.changed_since(None)
    list(
        conn.write(
            [
                TaskWrite(
                    demo.tasks[0],
                    {
                        Field.ASSIGNEES: (demo.users[1],),
                        Field.PRIORITY: "P2",
                        Field.STAGE: demo.sections[2],
                    },
                ),
                TaskWrite(demo.tasks[1], {Field.PRIORITY: None, Field.CLOSED: True}),
            ]
        )
    )
    # A conditional write without a read first: tasks read again in a batch.
    cold = make_connector(fake, demo)
    list(cold.write([TaskWrite(demo.tasks[5], {Field.CLOSED: True}, {Field.CLOSED: False})]))
    conn.comment(demo.tasks[2], "Why it moved")
    conn.changed_since(token)
    new = [
        NewTask(
            key=f"S-{i}",
            title="t",
            stage_id=demo.sections[0],
            assignees=(demo.users[0],),
            priority="P4",
            due=None,
        )
        for i in range(2)
    ]
    list(make_connector(fake, demo).create(new))
    conn.find_created("S-0")
    make_connector(fake, demo).find_created("S-1")
    conn.read_tasks(list(demo.tasks[2:4]))
    conn.read_completed(datetime(2026, 1, 1, tzinfo=UTC))
    # With a personal token (no external ids): marker scans, full and since a time.
    fake.oauth = False
    pat = make_connector(fake, demo)
    pat.find_created("S-0")
    fake.fail_next(1, Fault("after", 500), when=lambda m, p: m == "POST" and p == "/batch" and _creates(fake))
    list(pat.create([NewTask(key="S-9", title="t", stage_id=demo.sections[0])]))

    seen_ops: set[str] = set()
    assert fake.log
    for r in fake.log:
        where = f"{r.method} {r.path}"
        op = _match(spec, r.path, r.method)
        seen_ops.add(f"{r.method} {op.template}")
        unknown = [q for q in r.query if q not in op.query]
        assert not unknown, f"{where}: query parameters not in the spec: {unknown}"
        if "opt_fields" in r.query:
            _check_opt_fields(op, r.query["opt_fields"].split(","), where)
        if "limit" in r.query:
            assert 1 <= int(r.query["limit"]) <= 100
        if r.body is not None:
            assert set(r.body) == {"data"}, f"{where}: body must be wrapped in data"
            _check_body(spec, op, r.body["data"], where)
        if op.template == "/batch":
            actions = r.body["data"]["actions"]
            assert 1 <= len(actions) <= 10
            action_fields = _properties(spec, spec["components"]["schemas"]["BatchRequestAction"])
            for a in actions:
                assert set(a) <= set(action_fields), f"batch action fields {set(a)}"
                inner = _match(spec, a["relative_path"], a["method"])
                seen_ops.add(f"batch {a['method'].upper()} {inner.template}")
                iwhere = f"batch {a['method']} {a['relative_path']}"
                data = a.get("data", {})
                if a["method"] == "get":
                    assert set(data) <= set(inner.query), f"{iwhere}: {set(data)}"
                else:
                    _check_body(spec, inner, data, iwhere)
                fields = (a.get("options") or {}).get("fields")
                if fields:
                    _check_opt_fields(inner, fields, iwhere)
    expected = {
        "GET /projects/{project_gid}",
        "GET /projects/{project_gid}/tasks",
        "GET /projects/{project_gid}/sections",
        "GET /projects/{project_gid}/custom_field_settings",
        "GET /users",
        "GET /events",
        "GET /tasks/{task_gid}",
        "POST /batch",
        "batch PUT /tasks/{task_gid}",
        "batch POST /sections/{section_gid}/addTask",
        "batch POST /tasks",
        "batch GET /tasks/{task_gid}",
        "GET /tasks",
    }
    assert expected <= seen_ops, expected - seen_ops


# --------------------------------------------------------------------------- conditional writes
def reassigning(fake: FakeAsana, demo: DemoIds, tasks: Any) -> list[TaskWrite]:
    """Writes giving each task another user, each expecting its current assignee."""
    out = []
    for t in tasks:
        now = fake.tasks[t].assignee
        other = next(u for u in demo.users if u != now)
        out.append(TaskWrite(t, {Field.ASSIGNEES: (other,)}, {Field.ASSIGNEES: (now,) if now else ()}))
    return out


def test_a_task_changed_during_apply_is_a_conflict_not_overwritten(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=40, users=3)
    conn = make_connector(fake, demo)
    conn.check_every = 10
    writes = reassigning(fake, demo, demo.tasks[:30])
    victim = writes[15].task_id  # in the second group
    taken = {*writes[15].values[Field.ASSIGNEES], fake.tasks[victim].assignee}
    person = next(u for u in demo.users if u not in taken)
    results: list[WriteResult] = []
    for r in conn.write(writes):
        results.append(r)
        if len(results) == 10:
            fake.tasks[victim].assignee = person  # a person, through the UI
            fake._emit(fake.tasks[victim], "changed", "assignee")
    by_id = {r.task_id: r for r in results}
    assert by_id[victim].outcome is WriteStatus.CONFLICT
    assert fake.tasks[victim].assignee == person, "the person's change stands"
    assert all(r.outcome is WriteStatus.DONE for r in results if r.task_id != victim)


def test_a_change_made_after_a_result_is_not_overwritten_by_its_group(fake: FakeAsana) -> None:
    """A group's batches go out at once; its first result is handed on only when every batch
    has answered, so a person's change made then is never overwritten by a batch still in flight."""
    demo = fake.seed_demo(tasks=30, users=4)
    conn = make_connector(fake, demo)
    writes = reassigning(fake, demo, demo.tasks)  # one group of 30: three batches of ten
    fake.fail_next(1, Fault("slow", delay=1.0), when=lambda m, p: m == "POST" and p == "/batch")
    results: list[WriteResult] = []
    for r in conn.write(writes):
        results.append(r)
        if len(results) == 1:  # a person reassigns every task of the group, through the UI
            for w in writes:
                taken = {*w.values[Field.ASSIGNEES], fake.tasks[w.task_id].assignee}
                fake.tasks[w.task_id].assignee = next(u for u in demo.users if u not in taken)
                fake._emit(fake.tasks[w.task_id], "changed", "assignee")
            by_hand = {w.task_id: fake.tasks[w.task_id].assignee for w in writes}
    assert all(r.outcome is WriteStatus.DONE for r in results)
    assert {t: fake.tasks[t].assignee for t in by_hand} == by_hand, "the person's changes stand"


def test_conditional_write_cost(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=100, users=3)
    conn = make_connector(fake, demo)
    conn.read()  # takes an events token first: the writes re-read only tasks touched since
    writes = reassigning(fake, demo, demo.tasks)
    fake.clear_log()
    assert all(r.ok for r in conn.write(writes))
    # 10 write batches and 1 events request per group of 50; nobody touched a task.
    assert fake.count("GET", "/events") == 2
    assert fake.count("POST", "/batch") == 10
    # Without a read, nothing says what changed since the plan: every guarded task is read again.
    cold = make_connector(fake, demo)
    fake.clear_log()
    assert all(r.ok for r in cold.write(reassigning(fake, demo, demo.tasks)))
    assert fake.count("POST", "/batch") == 10 + 10


def test_a_lost_answer_is_unknown_not_failed(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=3, users=2)
    conn = make_connector(fake, demo, max_attempts=2)
    task = demo.tasks[0]
    fake.fail_next(2, Fault("after", 500), when=lambda m, p: m == "POST" and p == "/batch")  # both attempts
    (result,) = conn.write([TaskWrite(task, {Field.CLOSED: True})])
    assert result.outcome is WriteStatus.UNKNOWN
    assert fake.tasks[task].completed, "it did land"
    fake.fail_next(1, Fault("status", 400), when=lambda m, p: m == "POST" and p == "/batch")
    (result,) = conn.write([TaskWrite(demo.tasks[1], {Field.CLOSED: True})])
    assert result.outcome is WriteStatus.FAILED and not fake.tasks[demo.tasks[1]].completed


def test_create_carries_the_crm_id_in_its_post(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=2, users=2)
    conn = make_connector(fake, demo)
    conn.read()
    fake.clear_log()
    (result,) = conn.create([NewTask("CRM-77", "Lead 77", demo.sections[0], (), "P2")])
    assert result.ok
    task = fake.tasks[result.task_id]
    assert task.custom_values[demo.crm_field] == "CRM-77"
    assert task.custom_values[demo.priority_field] == demo.priority_options["P2"]
    assert fake.count("PUT") == 0 and fake.count("POST", "/batch") == 1, "one create, no follow-up"


def test_comments_on_a_task(fake: FakeAsana) -> None:
    demo = fake.seed_demo(tasks=2, users=2)
    conn = make_connector(fake, demo)
    assert isinstance(conn, Commenter)
    result = conn.comment(demo.tasks[0], "Moved to Rep 02: region")
    assert result.ok and [s["text"] for s in fake.stories[demo.tasks[0]]] == ["Moved to Rep 02: region"]
    assert conn.comment("1200000000009999", "x").outcome is WriteStatus.FAILED
    fake.fail_next(1, Fault("after", 502), when=lambda m, p: p.endswith("/stories"))
    assert conn.comment(demo.tasks[1], "once").outcome is WriteStatus.UNKNOWN
    assert len(fake.stories[demo.tasks[1]]) == 1, "never posted twice"


def test_create_completes_a_task_found_by_its_marker(fake: FakeAsana) -> None:
    """A task carrying the key's marker but no CRM ID or priority (made by hand, or by an older
    run) is completed, not duplicated; a priority a person set is kept."""
    demo = fake.seed_demo(tasks=2, users=2)
    bare = fake.add_task(demo.project, demo.sections[0], "Lead 88", notes=marker_for("CRM-88"))
    chosen = fake.add_task(
        demo.project,
        demo.sections[0],
        "Lead 89",
        notes=marker_for("CRM-89"),
        custom_values={demo.priority_field: demo.priority_options["P1"]},
    )
    conn = make_connector(fake, demo)
    conn.read()
    results = list(
        conn.create(
            [
                NewTask("CRM-88", "Lead 88", demo.sections[0], (), "P3"),
                NewTask("CRM-89", "Lead 89", demo.sections[0], (), "P4"),
            ]
        )
    )
    assert {r.key: (r.ok, r.task_id) for r in results} == {"CRM-88": (True, bare), "CRM-89": (True, chosen)}
    assert not [
        r for r in fake.requests("POST", "/batch") if any(a["method"] == "post" for a in r.body["data"]["actions"])
    ]
    assert fake.tasks[bare].custom_values[demo.crm_field] == "CRM-88"
    assert fake.tasks[bare].custom_values[demo.priority_field] == demo.priority_options["P3"]
    assert fake.tasks[chosen].custom_values[demo.priority_field] == demo.priority_options["P1"]
    assert fake.tasks[chosen].custom_values[demo.crm_field] == "CRM-89"
