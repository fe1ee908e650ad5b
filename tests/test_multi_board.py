"""Many boards in one config and one process (issue 16, item 1), through the CLI: a local board,
a Trello board (the fake Trello) and an Asana project (the fake Asana) synced by one `serve`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.cluster.testbed import max_in_window
from tasksync.connectors import transport
from tasksync.connectors.http import LimiterRegistry, ScaledClock, default_registry
from tasksync.examples import TODAY, generate
from tasksync.service.loop import SyncService
from tasksync.service.multi import BoardScheduler
from tasksync.testing.fake_asana import FakeAsana
from tasksync.testing.fake_trello import FakeTrello
from test_service import T0, SimClock
from test_service_asana import AsanaDemo

KEY, TOKEN = "multi-key", "multi-token"
CARDS = 40


def shared_defaults(demo: Path) -> str:
    """The demo config's tables (link, priority, policy, create, stages, members) as the shared
    defaults: everything but the board itself. The policy is the fast ``balanced``: these tests
    check many boards in one config and one service, which every policy shares."""
    text = (demo / "tasksync.toml").read_text(encoding="utf-8").replace('name = "optimal"', 'name = "balanced"')
    text = re.sub(r'^connector = "local"\n', "", text, flags=re.M)
    text = re.sub(r'\[local\]\npath = "board.json"\n', "", text)
    return re.sub(r'\[crm\]\nfolder = "crm"\n', "", text)


@dataclass
class Three:
    config: Path
    trello: FakeTrello
    trello_board: str
    asana: FakeAsana
    asana_demo: AsanaDemo

    def run(self, *args: str) -> int:
        return main(["-c", str(self.config), *args])

    def status(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = self.run("status", "--json")
        return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Three]:
    generate(tmp_path / "emea", cards=CARDS)
    generate(tmp_path / "apac", cards=CARDS)
    trello = FakeTrello(key=KEY, tokens=[TOKEN], enforce_limits=False)
    trello_board = trello.add_board(json.loads((tmp_path / "apac" / "board.json").read_text(encoding="utf-8")))
    default_registry().clear()
    with FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7) as asana, trello.serve() as url:
        demo = AsanaDemo(tmp_path / "amer", asana)
        config = tmp_path / "tasksync.toml"
        config.write_text(
            shared_defaults(tmp_path / "emea")
            + f"""
[[boards]]
name = "emea"
local = "emea/board.json"
crm = "emea/crm"

[[boards]]
name = "apac"
trello = "https://trello.com/b/{trello_board}/pipeline"
crm = "apac/crm"
[boards.policy]
band = 0.15

[[boards]]
name = "amer"
asana_project = "{demo.project}"
crm = "amer/crm"
[boards.asana]
workspace = "{demo.ws}"
requests_per_minute = 1500
[boards.service]
max_move_share = 0.5       # Asana tasks have one assignee: more of them start unowned
""",
            encoding="utf-8",
        )
        for name, value in {
            "TASKSYNC_TRELLO_API_URL": url,
            "TASKSYNC_TRELLO_KEY": KEY,
            "TASKSYNC_TRELLO_TOKEN": TOKEN,
            "TASKSYNC_ASANA_API_URL": asana.url,
            "TASKSYNC_ASANA_TOKEN": asana.token,
        }.items():
            monkeypatch.setenv(name, value)
        yield Three(config, trello, trello_board, asana, demo)


def writes(fake: FakeTrello) -> int:
    return sum(1 for r in fake.log if r.method in ("PUT", "POST") and r.status == 200)


def test_serve_once_syncs_every_board_and_status_tells_each(
    three: Three, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    local_before = (tmp_path / "emea" / "board.json").read_text(encoding="utf-8")
    asana_before = len(three.asana.log)
    assert three.run("serve", "--once", "--today", TODAY.isoformat()) == 0
    assert (tmp_path / "emea" / "board.json").read_text(encoding="utf-8") != local_before
    assert writes(three.trello) > 0
    assert any(r.method in ("PUT", "POST") for r in three.asana.log[asana_before:])

    code, status = three.status(capsys)
    assert code == 0
    by_name = {r["name"]: (key, r) for key, r in status.items()}
    assert sorted(by_name) == ["amer", "apac", "emea"]
    assert by_name["emea"][0] == "local:board.json"
    assert by_name["apac"][0] == f"trello:{three.trello_board}"
    assert by_name["amer"][0] == f"asana:{three.asana_demo.project}"
    for _, r in by_name.values():
        assert r["code"] == 0 and r["status"] == "healthy" and r["last_plan"]
        assert isinstance(r["errors"], int) and isinstance(r["interval"], float)

    capsys.readouterr()
    assert three.run("status") == 0
    out = capsys.readouterr().out
    assert f"apac (trello:{three.trello_board}): healthy" in out and "emea (local:board.json): healthy" in out

    for wanted in ("apac", f"https://trello.com/b/{three.trello_board}", f"trello:{three.trello_board}"):
        assert three.run("status", "--board", wanted) == 0
        out = capsys.readouterr().out
        assert f"apac (trello:{three.trello_board}): healthy" in out and "emea" not in out
    assert three.run("status", "--board", "nowhere") == 1
    assert "its boards are: amer, apac, emea" in capsys.readouterr().err


def test_a_board_with_a_broken_crm_export_does_not_stop_the_others(
    three: Three, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "apac" / "crm" / "deals.csv").write_text("nothing,useful\n1,2\n", encoding="utf-8")
    capsys.readouterr()
    assert three.run("serve", "--once", "--today", TODAY.isoformat()) == 4  # a board paused
    err = capsys.readouterr().err
    assert "apac" in err and "deals.csv" in err and "Traceback" not in err
    assert writes(three.trello) == 0

    code, status = three.status(capsys)
    assert code == 4
    verdicts = {r["name"]: r for r in status.values()}
    assert verdicts["apac"]["code"] == 4 and "CRM exports unusable" in verdicts["apac"]["status"]
    assert verdicts["emea"]["code"] == 0 and verdicts["emea"]["last_plan"]
    assert verdicts["amer"]["code"] == 0 and verdicts["amer"]["last_plan"]


def test_a_board_refused_by_its_api_does_not_stop_the_others(
    three: Three, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "a-revoked-token")
    capsys.readouterr()
    assert three.run("serve", "--once", "--today", TODAY.isoformat()) == 1
    assert "Traceback" not in capsys.readouterr().err
    code, status = three.status(capsys)
    verdicts = {r["name"]: r for r in status.values()}
    assert verdicts["apac"]["code"] == 1 and verdicts["apac"]["auth_failed"]
    assert verdicts["emea"]["last_plan"] and verdicts["amer"]["last_plan"]
    assert code == 1


def test_plan_and_apply_pick_a_board_by_name_or_url(three: Three, capsys: pytest.CaptureFixture[str]) -> None:
    today = ["--today", TODAY.isoformat()]
    capsys.readouterr()
    assert three.run("--board", "apac", "plan", "--json", *today) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["board"] == f"trello:{three.trello_board}"
    assert three.run("--board", f"https://trello.com/b/{three.trello_board}", "apply") == 0
    assert writes(three.trello) > 0
    capsys.readouterr()
    assert three.run("--board", three.asana_demo.project, "plan", "--json", *today) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["board"] == f"asana:{three.asana_demo.project}"


def test_the_global_options_may_follow_the_command(three: Three, capsys: pytest.CaptureFixture[str]) -> None:
    """`tasksync plan --board apac` is `tasksync --board apac plan` (how people type it)."""
    today = ["--today", TODAY.isoformat()]
    capsys.readouterr()
    assert three.run("--board", "apac", "plan", "--json", *today) == 0
    before = json.loads(capsys.readouterr().out)
    assert three.run("plan", "--json", *today, "--board", "apac") == 0
    after = json.loads(capsys.readouterr().out)
    assert after["plan"]["board"] == before["plan"]["board"] == f"trello:{three.trello_board}"
    assert after["changes"] == before["changes"]
    assert three.run("reps", "--json", "--board", "emea") == 0
    assert json.loads(capsys.readouterr().out)["board"]["ref"].startswith("local:")
    assert three.run("plan", "--board", "nowhere") == 2
    assert "--board 'nowhere': " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan"], "names 3 boards (emea, apac, amer); choose one with --board NAME"),
        (["--board", "nowhere", "plan"], "--board 'nowhere': "),
        (["--board", "nowhere", "serve", "--once"], "its boards are: emea, apac, amer"),
        (["reps"], "choose one with --board"),
        (["report"], "choose one with --board"),
    ],
)
def test_board_selection_errors_name_the_boards(
    three: Three, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    capsys.readouterr()
    assert three.run(*argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_board_inherits_the_shared_tables_and_overrides_its_own(three: Three) -> None:
    from tasksync.settings import load_settings

    settings = load_settings(three.config)
    boards = {b.name: b.settings for b in settings.boards()}
    assert boards["apac"].policy.band == 0.15  # its own
    assert boards["emea"].policy.band == 0.10  # the shared [policy]
    assert [s.name for s in boards["apac"].policy.segments] == ["Enterprise", "Strategic"]  # inherited
    assert boards["apac"].crm.folder == Path("apac/crm") and boards["apac"].crm.preset == "auto"
    assert boards["amer"].asana.requests_per_minute == 1500 and boards["amer"].connector == "asana"
    assert boards["emea"].stages == settings.stages
    assert boards["amer"].service.max_move_share == 0.5 and boards["amer"].service.interval == 60


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            'name = "x"\nlocal = "b.json"\n[boards.policy]\nbandd = 0.1\n',
            "boards[x]: policy.bandd = 0.1: unknown key (did you mean 'band'?)",
        ),
        ('name = "x"\nlocal = "b.json"\ncolour = "red"\n', "boards[x]: colour: unknown key"),
        ('name = "x"\nlocal = "b.json"\nstate_path = "s.db"\n', "boards[x]: state_path: set once at the top level"),
        ('name = "x"\nlocal = "b.json"\n[boards.priority]\ntiers = []\n', "boards[x]: priority.tiers"),
        ('name = "x"\nlocal = "b.json"\ntrello = "abc12345"\n', "names both trello and local"),
        ('local = "b.json"\n[boards.trello]\ntoken = "t"\n', "boards[1].trello.token: secrets never go in the config"),
    ],
)
def test_a_bad_board_entry_names_the_board_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, expected: str
) -> None:
    config = tmp_path / "tasksync.toml"
    config.write_text('[[boards]]\nname = "ok"\nlocal = "a.json"\n\n[[boards]]\n' + entry, encoding="utf-8")
    capsys.readouterr()
    assert main(["-c", str(config), "--board", "ok", "plan"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_two_boards_on_one_token_never_exceed_its_window_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token's budget (100 requests per 10 s at Trello) is one for every board on it: from
    the fake's log, the two boards' requests together never pass it in any window."""
    clock = ScaledClock(10.0)  # the fake's and the limiter's windows pass 10 times faster
    monkeypatch.setattr(transport, "_DEFAULT_REGISTRY", LimiterRegistry(clock))
    fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=clock)
    entries = []
    for seed, name in enumerate(("north", "south")):
        generate(tmp_path / name, cards=80, seed=seed + 11)
        board = fake.add_board(json.loads((tmp_path / name / "board.json").read_text(encoding="utf-8")))
        entries.append(f'[[boards]]\nname = "{name}"\ntrello = "{board}"\ncrm = "{name}/crm"\n')
    config = tmp_path / "tasksync.toml"
    text = shared_defaults(tmp_path / "north") + "[service]\nmax_move_share = 1.0\nmax_create_share = 1.0\n"
    config.write_text(text + "\n" + "\n".join(entries), encoding="utf-8")
    with fake.serve() as url:
        monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", url)
        monkeypatch.setenv("TASKSYNC_TRELLO_KEY", KEY)
        monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", TOKEN)
        assert main(["-c", str(config), "serve", "--once", "--today", TODAY.isoformat()]) == 0
    stamps = [r.at for r in fake.log if not r.via_batch]
    assert len(stamps) > 150, "both boards together send more than one window's budget"
    assert fake.counts["429"] == 0
    assert max_in_window(stamps, 10.0) <= 100


def local_boards(tmp_path: Path, names: tuple[str, ...], clock: SimClock) -> list[SyncService]:
    """Services for local boards in one config, as `serve` builds them (one state store)."""
    from tasksync.settings import load_settings

    text = ""
    for seed, name in enumerate(names):
        generate(tmp_path / name, cards=20, seed=seed + 3)
        (tmp_path / name / "board.json").rename(tmp_path / name / f"{name}.json")
        text += f'[[boards]]\nname = "{name}"\nlocal = "{name}/{name}.json"\ncrm = "{name}/crm"\n'
    config = tmp_path / "tasksync.toml"
    shared = shared_defaults(tmp_path / names[0])
    shared += "[service]\nmax_move_share = 1.0\nmax_create_share = 1.0\n"  # the first sync of a small board
    config.write_text(shared + "\n" + text, encoding="utf-8")
    boards = load_settings(config).boards()
    return [SyncService(b.settings, clock=clock, sleep=clock.sleep, today=TODAY, name=b.name) for b in boards]


class Flood(SimClock):
    """Simulated time in which a webhook delivery for one board arrives whenever the clock is read."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduler: BoardScheduler | None = None
        self._delivering = False

    def __call__(self) -> float:
        if self.scheduler is not None and not self._delivering:
            self._delivering = True
            self.scheduler.trigger("local", ["busy.json"])
            self._delivering = False
        return self.t


def test_a_board_woken_by_webhooks_all_the_time_does_not_starve_the_others(tmp_path: Path) -> None:
    clock = Flood()
    services = local_boards(tmp_path, ("busy", "quiet", "calm"), clock)
    scheduler = BoardScheduler(services, clock=clock, sleep=clock.sleep)
    clock.scheduler = scheduler
    scheduler.run(max_iterations=14)
    assert scheduler.order[:3] == ["busy", "quiet", "calm"]  # all due at the start: config order
    assert clock.t - T0 >= 120  # two intervals passed...
    assert scheduler.order.count("quiet") >= 3 and scheduler.order.count("calm") >= 3  # ...each synced each time
    assert scheduler.order.count("busy") > 3  # and the deliveries were served in between


def test_a_webhook_makes_only_its_board_due(tmp_path: Path) -> None:
    clock = SimClock()
    services = local_boards(tmp_path, ("one", "two"), clock)
    scheduler = BoardScheduler(services, clock=clock, sleep=clock.sleep)
    scheduler.run_all_once()
    clock.sleep(10.0)
    assert scheduler.next_board() == (0, T0 + 60.0)  # both due at the next interval; config order
    scheduler.trigger("local", ["two.json"])
    assert scheduler.next_board() == (1, T0 + 10.0)  # "two" is due now
    scheduler.trigger("asana", ["nothing-here"])  # names none of these boards, nor their vendor
    assert scheduler.next_board() == (1, T0 + 10.0)


def test_a_board_that_cannot_be_opened_is_named_and_the_others_run(
    three: Three, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKSYNC_ASANA_TOKEN")
    capsys.readouterr()
    assert three.run("serve", "--once", "--today", TODAY.isoformat()) == 1
    err = capsys.readouterr().err
    assert 'board_name="amer"' in err and "TASKSYNC_ASANA_TOKEN" in err and "Traceback" not in err
    code, status = three.status(capsys)
    assert code == 1  # amer is failing, with the reason
    verdicts = {r["name"]: r for r in status.values()}
    assert verdicts["amer"]["code"] == 1 and "TASKSYNC_ASANA_TOKEN" in verdicts["amer"]["status"]
    assert verdicts["emea"]["last_plan"] and verdicts["apac"]["last_plan"]


def test_a_board_that_cannot_be_opened_is_retried_on_its_back_off_and_joins(
    three: Three, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board whose connector does not open at the start (here: its token not set yet) is
    retried on the back-off of a failing board, shown failing with the reason meanwhile, and
    joins the others once it opens (here: the token added to the .env beside the config),
    without restarting ``serve``."""
    from tasksync.service.multi import open_boards
    from tasksync.settings import load_settings

    monkeypatch.delenv("TASKSYNC_ASANA_TOKEN")
    clock = SimClock()
    scheduler = open_boards(load_settings(three.config).boards(), today=TODAY, clock=clock, sleep=clock.sleep)
    try:
        assert [b.name for b in scheduler.waiting] == ["amer"]
        assert [r.ok for r in scheduler.run_all_once()] == [True, True, False]
        assert scheduler.next_board() == (2, T0 + 5.0)  # min(interval, 5) s after its failure
        code, status = three.status(capsys)
        assert code == 1
        assert status["amer"]["code"] == 1 and status["amer"]["errors"] == 1
        assert status["amer"]["status"].startswith("failing (the board cannot be opened; retrying on its back-off)")
        assert "TASKSYNC_ASANA_TOKEN" in status["amer"]["status"]
        clock.sleep(5.0)
        assert scheduler.run_board(2).error is not None  # still no token: the back-off doubles
        assert scheduler.next_board() == (2, T0 + 15.0)
        env = three.config.parent / ".env"
        env.write_text(f"TASKSYNC_ASANA_TOKEN={three.asana.token}\n", encoding="utf-8")
        env.chmod(0o600)
        clock.sleep(10.0)
        joined = scheduler.run_board(2)  # opens, and syncs at once
        assert joined.ok and joined.read and joined.plan_id is not None
        assert scheduler.waiting == [] and [s.name for s in scheduler.services] == ["emea", "apac", "amer"]
        code, status = three.status(capsys)
        assert code == 0, status
        assert "amer" not in status  # its record under its name gave way to its project's
        assert sorted(r["name"] for r in status.values()) == ["amer", "apac", "emea"]
        assert status[scheduler.services[2].board]["last_plan"] == joined.plan_id
    finally:
        scheduler.close()


def test_a_signed_webhook_delivery_wakes_the_board_it_names(tmp_path: Path) -> None:
    from tasksync.service.webhooks import HookServer, trello_signature
    from test_service_webhooks import SECRET, request

    clock = SimClock()
    scheduler = BoardScheduler(local_boards(tmp_path, ("one", "two"), clock), clock=clock, sleep=clock.sleep)
    assert all(r.ok and r.applied for r in scheduler.run_all_once())
    clock.sleep(5.0)
    server = HookServer("127.0.0.1", 0, on_change=scheduler.trigger, trello_secret=SECRET).start()
    try:
        url = f"http://127.0.0.1:{server.port}/trello"
        body = json.dumps({"model": {"id": "two.json"}, "action": {"type": "updateCard"}}).encode()
        assert request(url, body=body, headers={"X-Trello-Webhook": trello_signature(SECRET, body, url)})[0] == 200
    finally:
        server.stop()
    assert scheduler.next_board() == (1, T0 + 5.0)
    assert scheduler.services[1].run_once().reason == "webhook"


def test_a_board_with_its_own_secrets_uses_its_own_token(
    three: Three, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasksync.connectors.transport import secret_fingerprint

    other = "apac-own-token"
    three.trello.tokens.add(other)
    text = three.config.read_text(encoding="utf-8")
    three.config.write_text(text.replace('name = "apac"\n', 'name = "apac"\nsecrets_prefix = "TASKSYNC_APAC_"\n'))
    monkeypatch.setenv("TASKSYNC_APAC_TRELLO_API_URL", os.environ["TASKSYNC_TRELLO_API_URL"])
    monkeypatch.setenv("TASKSYNC_APAC_TRELLO_KEY", KEY)
    monkeypatch.setenv("TASKSYNC_APAC_TRELLO_TOKEN", other)
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "not-apacs-token")  # the shared one would be refused
    assert three.run("serve", "--once", "--today", TODAY.isoformat()) == 0
    used = {r.token for r in three.trello.log}
    assert used == {secret_fingerprint(other)}
    monkeypatch.delenv("TASKSYNC_APAC_TRELLO_TOKEN")  # no fallback to the shared token
    capsys.readouterr()
    assert three.run("--board", "apac", "plan") == 2
    assert "Trello needs TASKSYNC_TRELLO_KEY and TASKSYNC_TRELLO_TOKEN" in capsys.readouterr().err


def test_a_cluster_board_with_its_own_secrets_never_takes_the_shared_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cluster.toml's ``secrets_prefix`` reads secrets as ``[[boards]]`` does: the board's own
    ``<prefix>*`` variables, never the shared ``TASKSYNC_*`` ones for what the prefix leaves unset."""
    from tasksync.cluster.config import load_cluster

    generate(tmp_path / "emea", cards=5)
    (tmp_path / "cluster.toml").write_text(
        '[[board]]\nconfig = "emea/tasksync.toml"\nsecrets_prefix = "TASKSYNC_EMEA_"\n', encoding="utf-8"
    )
    monkeypatch.setenv("TASKSYNC_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("TASKSYNC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "the-shared-token")
    monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", "http://127.0.0.1:1/shared")
    monkeypatch.setenv("TASKSYNC_EMEA_TRELLO_KEY", "emea-key")
    secrets = load_cluster(tmp_path / "cluster.toml").board("emea/tasksync.toml").settings().secrets
    assert secrets.trello_key is not None and secrets.trello_key.get_secret_value() == "emea-key"
    assert secrets.trello_token is None  # not the shared token
    assert secrets.trello_api_url == "https://api.trello.com/1"  # not the shared URL either


def test_healthz_with_several_boards_is_healthy_only_when_every_board_is(tmp_path: Path) -> None:
    """GET /healthz of a `serve` of several boards: 200 with every board's verdict while all are
    healthy; 503 as soon as one is not (here: one board's CRM export gone), naming which."""
    from tasksync.service.cli import board_health
    from tasksync.service.webhooks import HookServer
    from tasksync.settings import load_settings
    from test_service_webhooks import request

    clock = SimClock()
    scheduler = BoardScheduler(local_boards(tmp_path, ("one", "two"), clock), clock=clock, sleep=clock.sleep)
    health = board_health(load_settings(tmp_path / "tasksync.toml"), scheduler)
    server = HookServer("127.0.0.1", 0, health=health).start()
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        assert all(r.ok for r in scheduler.run_all_once())
        code, _, body = request(url, "GET")
        report = json.loads(body)
        assert code == 200 and report["status"] == "healthy"
        assert {b["name"]: b["status"] for b in report["boards"].values()} == {"one": "healthy", "two": "healthy"}
        (tmp_path / "two" / "crm" / "reps.csv").unlink()
        clock.sleep(60.0)
        assert [r.ok for r in scheduler.run_all_once()] == [True, False]
        code, _, body = request(url, "GET")
        report = json.loads(body)
        assert code == 503 and report["status"].startswith("paused: CRM exports unusable")
        verdicts = {b["name"]: b["status"] for b in report["boards"].values()}
        assert verdicts["one"] == "healthy" and verdicts["two"].startswith("paused: CRM exports unusable")
    finally:
        server.stop()
        scheduler.close()


def test_crm_check_checks_each_boards_exports_or_the_one_board_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tasksync crm check` on a config of several boards: a section per board (its own CRM
    folder and settings), the worst board's exit code; with --board, that board's exports only."""
    local_boards(tmp_path, ("one", "two"), SimClock())
    config = str(tmp_path / "tasksync.toml")
    (tmp_path / "two" / "crm" / "deals.csv").write_text("colour,shape\nred,round\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["-c", config, "crm", "check"]) == 3  # two's deals export would be rejected
    out = capsys.readouterr().out
    one, two = out.index(f"== board one ({tmp_path / 'one' / 'crm'}) =="), out.index("== board two (")
    assert one < two
    assert str(tmp_path / "one" / "crm" / "deals.csv") in out[one:two]
    assert str(tmp_path / "two" / "crm" / "deals.csv") in out[two:] and str(tmp_path / "one") not in out[two:]
    assert main(["-c", config, "--board", "one", "crm", "check"]) == 0
    out = capsys.readouterr().out
    assert "== board" not in out and "4 file(s): 4 usable, 0 not" in out and str(tmp_path / "two") not in out
    assert main(["-c", config, "--board", "two", "crm", "check"]) == 3
    assert main(["-c", config, "--board", "nine", "crm", "check"]) == 2
    assert "--board 'nine'" in capsys.readouterr().err
