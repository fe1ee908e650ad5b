"""A sales team on Asana, run as strangers would: the project in the fake Asana (sections as
stages, a priority enum with extra and disabled options, guests and a manager, a member who left
the workspace, unassigned tasks, a task multi-homed in a second project), HubSpot report exports
(owners and companies by name, reps split over first and last name, day-first dates years old),
and the CLI exactly as the README runs it: plan, apply, people editing tasks, faults mid-apply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.connectors import asana as asana_module
from tasksync.connectors.asana import AsanaConnector
from tasksync.settings import Settings
from tasksync.testing.fake_asana import FakeAsana, Fault

DAY = "2026-12-01"
REPS = [  # first, last, email, team, role
    ("Mei", "Chen", "mei.chen@northwind.io", "West", "hunter"),
    ("José", "Álvarez", "jose.alvarez@northwind.io", "South", "farmer"),
    ("Priya", "Nair", "priya.nair@northwind.io", "North", "hunter"),
    ("Tom", "O'Brien", "tom.obrien@northwind.io", "East", "farmer"),
]
SECTORS = ["Software", "Retail", "Finance", "Healthcare"]


class Team:
    """The Northwind sales team: an Asana project in the fake and its HubSpot exports."""

    def __init__(self, root: Path, fake: FakeAsana, accounts: int = 8) -> None:
        self.root, self.fake = root, fake
        (root / "crm").mkdir(parents=True)
        self.ws = fake.add_workspace("Northwind")
        self.project = fake.add_project(self.ws, "Sales Pipeline")
        other = fake.add_project(self.ws, "Enterprise Accounts")
        sections = [fake.add_section(self.project, n) for n in ("Prospecting", "Qualified", "Proposal")]
        self.priority = fake.add_enum_field(self.project, "Priority", ["P1", "P2", "P3", "P4", "On hold", "Urgent!"])
        fake.disable_option(self.priority, "Urgent!")
        crm = fake.add_text_field(self.project, "CRM ID")
        names = [f"{first} {last}" for first, last, *_ in REPS]
        self.users = {n: fake.add_user(self.ws, n, r[2]) for n, r in zip(names, REPS, strict=True)}
        self.users["Dana Partner"] = fake.add_user(self.ws, "Dana Partner", "dana@agency.example")  # a guest
        self.users["Rick Gone"] = gone = fake.add_user(self.ws, "Rick Gone", "rick.gone@northwind.io")
        fake.users[gone]["workspaces"] = []  # left the workspace; still the assignee of his tasks
        holders: list[str | None] = [*self.users.values(), None]
        deals, companies = [], []
        self.tasks: dict[str, str] = {}  # deal id -> task gid
        for i in range(accounts):
            company = f"Company {i:02d} {('Inc.', 'GmbH', 'Ltd')[i % 3]}"
            companies.append(f'"{company}",{SECTORS[i % 4]},{10 + 37 * i},{REPS[i % 4][3]},{names[i % 4]},lead')
            deal = str(9000000 + 10 * i)
            deals.append(
                f'{deal},"{company} - New",qualifiedtobuy,"{5000 + 1300 * (i * 7 % 11):,}",'
                f"{i % 28 + 1:02d}/{i % 12 + 1:02d}/2027,{i % 27 + 1:02d}/0{i % 9 + 1}/2019,{names[(i + 1) % 4]},"
                f'"{company}",Sales Pipeline'
            )
            gid = fake.add_task(
                self.project, sections[i % 3], f"{company} - New", assignee=holders[i % len(holders)],
                custom_values={crm: deal},
            )  # fmt: skip
            self.tasks[deal] = gid
            if i % 4 == 1:  # multi-homed: also in the key accounts project
                fake.tasks[gid].memberships.append((other, fake.add_section(other, f"Key {i}")))
                fake.project_tasks[other].append(gid)
        reps = [f"{first},{last},{email},{team},{role}" for first, last, email, team, role in REPS]
        history = [
            f'{8000000 + i},"old {i}",{"closedwon" if i % 3 else "closedlost"},"{2000 + 97 * i:,}",'
            f'{i % 28 + 1:02d}/{i % 12 + 1:02d}/2025,01/02/2018,{names[i % 4]},"Company {i % accounts:02d} '
            f'{("Inc.", "GmbH", "Ltd")[i % accounts % 3]}",Sales Pipeline'
            for i in range(40)
        ]
        self.write("reps.csv", "First Name,Last Name,Email,Team,Role", reps)
        cols = "Company name,Industry,Number of Employees,Country/Region,Company owner,Lifecycle Stage"
        self.write("accounts.csv", cols, companies)
        cols = "Record ID,Deal Name,Deal Stage,Amount,Close Date,Create Date,Deal owner,Associated Company,Pipeline"
        self.write("deals.csv", cols, deals)
        self.write("history.csv", cols, history)
        self.config = root / "tasksync.toml"
        self.config.write_text(
            f'connector = "asana"\n[asana]\nproject = "https://app.asana.com/0/{self.project}/list"\n'
            f'workspace = "{self.ws}"\n[crm]\nfolder = "crm"\ndate_order = "dmy"\n'
            'stage_won = ["closedwon"]\nstage_lost = ["closedlost"]\n',
            encoding="utf-8",
        )

    def write(self, name: str, header: str, rows: list[str]) -> None:
        (self.root / "crm" / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--no-color", "-c", str(self.config), *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    def plan(self, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
        code, out = self.run(capsys, "plan", "--json", "--today", DAY)
        assert code == 0, out
        data: dict[str, Any] = json.loads(out)
        return data


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    with FakeAsana(requests_per_minute=None) as fake:
        monkeypatch.setenv("TASKSYNC_ASANA_API_URL", fake.url)
        monkeypatch.setenv("TASKSYNC_ASANA_TOKEN", fake.token)
        monkeypatch.setenv("TASKSYNC_LOCK_WAIT", "1")
        yield Team(tmp_path / "northwind", fake)


def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's Asana connector with short waits between retries (the rule itself unchanged)."""

    def open_project(settings: Settings, board: str | None = None) -> AsanaConnector:
        return AsanaConnector(settings, backoff=0.01, max_attempts=2, write_concurrency=1)

    monkeypatch.setattr(asana_module, "open_project", open_project)


def changes_of(plan: dict[str, Any]) -> int:
    return len(plan["plan"]["changes"])


def test_apply_counts_what_it_did_not_write_in_the_plans_changes(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    # The manager disables a priority option in Asana between `plan` and `apply`. The apply said
    # "9 changes written, 1 failed" for a plan of 11 changes: written counted changes, failed
    # counted tasks (a task's owner and priority go out in one request and fail together), so
    # the figures did not add up to the plan's.
    plan = team.plan(capsys)
    total = changes_of(plan)
    changes = plan["plan"]["changes"]
    moved = {c["task_id"] for c in changes if c["field"] == "assignees"}
    tier = next(c["after"] for c in changes if c["field"] == "priority" and c["task_id"] in moved)
    team.fake.disable_option(team.priority, tier)
    code, out = team.run(capsys, "apply")
    assert code == 1
    cards = {c["task_id"] for c in changes if c["field"] == "priority" and c["after"] == tier}
    missed = sum(1 for c in changes if c["task_id"] in cards)
    n = len(cards)
    assert missed > n  # an owner change failed with its card's priority
    assert f"{total - missed} of {total} changes written, {n} card{'s' * (n > 1)} failed" in out
    assert out.count("  failed: task ") == n and f"{tier!r} is not an option of 'Priority'" in out


def test_an_apply_whose_writes_went_unanswered_is_partial_in_history(
    team: Team, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asana answers 500 to every /batch until retries run out: nothing was written, each task is
    # "without an answer". `history` called the plan "applied" until the next plan settled it as
    # partial, and the summary again mixed cards with changes.
    quick_retries(monkeypatch)
    total = changes_of(team.plan(capsys))
    team.fake.fail_next(100, Fault("status", 500), when=lambda method, path: path.startswith("/batch"))
    code, out = team.run(capsys, "apply")
    assert code == 1
    assert f"0 of {total} changes written" in out and "without an answer" in out
    code, out = team.run(capsys, "history")
    assert code == 0 and " partial " in out and " applied " not in out
    team.fake._scripted.clear()
    assert changes_of(team.plan(capsys)) == total  # the answers were lost: nothing was done
    code, out = team.run(capsys, "apply")
    assert code == 0 and "Applied plan" in out and f"{total} changes written" in out
    assert changes_of(team.plan(capsys)) == 0


def test_a_task_of_someone_who_left_the_workspace_names_them_in_the_plan_and_the_comment(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rick left the Asana workspace; his tasks still have him as assignee (Asana names him on the
    # task), but the workspace's users no longer list him. The plan showed his gid as the task's
    # owner ("1200000000000012 -> Mei Chen") and the story on the task said "(was someone)".
    rick = team.users["Rick Gone"]
    his = [g for g, t in team.fake.tasks.items() if t.assignee == rick]
    assert his
    with team.config.open("a", encoding="utf-8") as f:
        f.write("[write]\ncomment = true\n")
    code, out = team.run(capsys, "plan", "--today", DAY)
    assert code == 0
    rows = [line for line in out.splitlines() if "its owner left the board" in line]
    assert rows and all("Rick Gone" in line for line in rows) and rick not in out
    code, out = team.run(capsys, "apply")
    assert code == 0, out
    for gid in his:
        assert team.fake.tasks[gid].assignee != rick
        (story,) = team.fake.stories[gid]
        assert "(was Rick Gone)" in story["text"]


def test_a_copy_or_subtask_of_a_deals_task_does_not_count_the_deal_twice(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    # A rep duplicates a deal's task in Asana ("Duplicate task" copies its fields, CRM ID too)
    # and adds a subtask to the project with the same link. Each counted as the deal's card:
    # the deal's value counted three times, the holders showed above the value band, and the
    # plan moved the copies between reps to even out value that is not there.
    team.plan(capsys)
    code, out = team.run(capsys, "apply")
    assert code == 0, out
    before = json.loads(team.run(capsys, "reps", "--json", "--today", DAY)[1])["reps"]
    deal, gid = next(iter(team.tasks.items()))
    task = team.fake.tasks[gid]
    crm = next(f for f, v in task.custom_values.items() if v == deal)
    section = task.memberships[0][1]
    others = [u for u in team.users.values() if u != task.assignee]
    copies = []
    for name, who in ((f"{task.name} (copy)", others[0]), ("Send the pricing sheet", others[1])):
        copies.append(
            team.fake.add_task(
                team.project, section, name, assignee=who, custom_values={crm: deal, team.priority: None}
            )
        )
    after = json.loads(team.run(capsys, "reps", "--json", "--today", DAY)[1])["reps"]
    assert [(r["name"], r["open_tasks"], r["expected_value"]) for r in after] == [
        (r["name"], r["open_tasks"], r["expected_value"]) for r in before
    ]
    plan = team.plan(capsys)
    assert not {c["task_id"] for c in plan["plan"]["changes"]} & set(copies)
    assert any("link to a deal an older card stands for" in n and "(copy)" in n for n in plan["plan"]["notes"])
    assert changes_of(plan) == 0


def test_a_subtask_carrying_the_deals_link_is_left_as_copies_are(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    # Asana subtasks (``parent``): one a rep added to the project carries the deal's CRM ID and is
    # left as a copy is, named in the notes; one in no project is not in the project's task list.
    # A people field ("Sales engineer") on the project's tasks is read without harm.
    deal, gid = next(iter(team.tasks.items()))
    task = team.fake.tasks[gid]
    crm = next(f for f, v in task.custom_values.items() if v == deal)
    engineer = team.fake.add_people_field(team.project, "Sales engineer")
    for g in team.tasks.values():
        team.fake.tasks[g].custom_values[engineer] = [team.users["Dana Partner"]]
    mei, tom = team.users["Mei Chen"], team.users["Tom O'Brien"]
    section = task.memberships[0][1]
    added = team.fake.add_subtask(
        gid, "Send the pricing sheet", assignee=mei, project=team.project, section=section, custom_values={crm: deal}
    )
    loose = team.fake.add_subtask(gid, "Book the demo room", assignee=tom)
    plan = team.plan(capsys)
    assert not {c["task_id"] for c in plan["plan"]["changes"]} & {added, loose}
    assert any(
        "link to a deal an older card stands for" in n and "Send the pricing sheet" in n for n in plan["plan"]["notes"]
    )
    assert "Book the demo room" not in json.dumps(plan)
    code, out = team.run(capsys, "apply")
    assert code == 0, out
    assert (team.fake.tasks[added].assignee, team.fake.tasks[loose].assignee) == (mei, tom)
    assert changes_of(team.plan(capsys)) == 0


def test_an_undo_that_could_not_put_everything_back_can_be_run_again(
    team: Team, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Priya goes away and the plan hands her tasks on; the manager undoes that redistribution
    # while Asana answers 500 for a while. The undo put back only part and still marked the
    # plan undone: `undo` again was refused ("only an applied plan can be undone"), and the
    # rest could never be put back.
    quick_retries(monkeypatch)
    team.plan(capsys)
    assert team.run(capsys, "apply")[0] == 0
    start = {g: t.assignee for g, t in team.fake.tasks.items()}
    assert team.run(capsys, "reps", "away", "Priya", "--today", DAY)[0] == 0
    plan_id = team.plan(capsys)["plan"]["id"]
    assert team.run(capsys, "apply")[0] == 0
    assert team.run(capsys, "reps", "back", "Priya", "--today", DAY)[0] == 0
    team.fake.fail_next(2, Fault("status", 500), when=lambda method, path: path.startswith("/batch"))
    code, out = team.run(capsys, "undo", plan_id)
    assert code == 1 and "without an answer" in out
    assert f"run `tasksync undo {plan_id}` again" in out
    assert f"{plan_id}  sync      applied" in team.run(capsys, "history")[1]
    code, out = team.run(capsys, "undo", plan_id)
    assert code == 0, out
    assert "kept:" not in out  # what the first undo put back is not a person's change
    assert f"{plan_id}  sync      undone" in team.run(capsys, "history")[1]
    assert {g: t.assignee for g, t in team.fake.tasks.items()} == start
