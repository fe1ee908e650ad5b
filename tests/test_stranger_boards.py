"""Boards as real teams have them (archived lists and cards, members who left, duplicate labels,
hand-saved exports): each must give a right plan, apply it whole, and settle."""

from __future__ import annotations

import json
import re
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tasksync.connectors.asana import AsanaConnector
from tasksync.connectors.http import SlidingWindowLimiter, default_registry
from tasksync.examples import TODAY, generate
from tasksync.model import Field
from tasksync.sync.workspace import Workspace
from tasksync.testing.boards import fake_trello_board
from tasksync.testing.fake_asana import FakeAsana
from tasksync.testing.fake_trello import FakeTrello
from test_cli_cycle import DAY, board_of, run
from test_service_asana import AsanaDemo


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A small copy of the built-in example (a board export and its CRM); returns its config."""
    return generate(tmp_path / "demo", cards=80)


def plan_of(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(config, "plan", "--json", "--today", DAY) == 0
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)["plan"]
    return plan


def save_board(config: Path, board: dict[str, Any]) -> None:
    (config.parent / "board.json").write_text(json.dumps(board, ensure_ascii=False), encoding="utf-8")


def crm_links(board: dict[str, Any]) -> dict[str, str]:
    """Each linked card's CRM ID."""
    crm_id = next(f["id"] for f in board["customFields"] if f["name"] == "CRM ID")
    return {i["idModel"]: i["value"]["text"] for i in board["customFieldItems"] if i["idCustomField"] == crm_id}


def on_fake_trello(stack: ExitStack, config: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTrello:
    """The config's board served by a fake Trello for as long as ``stack``; the config reads it."""
    fake = FakeTrello(key="k", tokens=["t"], enforce_limits=False)
    board_id = fake.add_board(board_of(config))
    text = config.read_text(encoding="utf-8").replace('connector = "local"', 'connector = "trello"')
    config.write_text(text + f'\n[trello]\nboards = ["{board_id}"]\n', encoding="utf-8")
    default_registry().clear()
    monkeypatch.setenv("TASKSYNC_TRELLO_API_URL", stack.enter_context(fake.serve()))
    monkeypatch.setenv("TASKSYNC_TRELLO_KEY", "k")
    monkeypatch.setenv("TASKSYNC_TRELLO_TOKEN", "t")
    return fake


def apply_and_settle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Apply the latest plan; the plan after it has nothing to do."""
    assert run(config, "apply") == 0
    again = plan_of(config, capsys)
    assert (again["changes"], again["creates"], again["conflicts"]) == ([], [], [])


def test_a_member_who_left_the_board_is_not_kept_on_the_cards_tasksync_moves(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ana left the board: her id stays on her cards but is no longer in the board's members
    # (Trello refuses a card's members that are not the board's: a PUT keeping her fails).
    board = board_of(demo)
    gone = board["members"].pop(0)["id"]
    linked = crm_links(board)
    hers = {c["id"] for c in board["cards"] if gone in c["idMembers"] and c["id"] in linked}
    assert hers
    save_board(demo, board)

    plan = plan_of(demo, capsys)
    moved = {c["task_id"] for c in plan["changes"] if c["field"] == "assignees"}
    assert hers <= moved  # her cards are unowned now: each goes to a rep on the board
    kinds = {c["reason_kind"] for c in plan["changes"] if c["task_id"] in hers and c["field"] == "assignees"}
    assert kinds == {"owner left the board"}, kinds  # not "unowned": the card shows an owner
    assert not [c for c in plan["changes"] if c["field"] == "assignees" and gone in c["after"]]
    apply_and_settle(demo, capsys)
    members = {m["id"] for m in board["members"]}
    assert all(set(c["idMembers"]) <= members for c in board_of(demo)["cards"] if c["id"] in hers)


def test_labels_sharing_a_tier_name_leave_one_priority_label_per_card(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Priority in labels, and the board has two "P2" labels (green and yellow): half the P2
    # cards carry the second one. A new tier takes either off; the plan after has nothing to do.
    board = board_of(demo)
    field = next(f for f in board["customFields"] if f["name"] == "Priority")
    tier_of = {o["id"]: o["value"]["text"] for o in field["options"]}
    label = {t: f"{i:024x}" for i, t in enumerate(tier_of.values(), start=1)}
    board["labels"] += [{"id": lid, "name": t, "color": "red"} for t, lid in label.items()]
    board["labels"].append({"id": "f" * 24, "name": "P2", "color": "green"})
    board["customFields"].remove(field)
    for n, item in enumerate(i for i in board["customFieldItems"] if i["idCustomField"] == field["id"]):
        tier = tier_of[item["idValue"]]
        card = next(c for c in board["cards"] if c["id"] == item["idModel"])
        card["idLabels"].append("f" * 24 if tier == "P2" and n % 2 else label[tier])
    board["customFieldItems"] = [i for i in board["customFieldItems"] if i["idCustomField"] != field["id"]]
    save_board(demo, board)
    text = demo.read_text(encoding="utf-8")
    demo.write_text(text.replace("[priority]\n", "[priority]\nuse_labels = true\n"), encoding="utf-8")

    plan = plan_of(demo, capsys)
    assert [c for c in plan["changes"] if c["field"] == "priority" and c["before"] == "P2"]
    apply_and_settle(demo, capsys)
    tier_ids = {*label.values(), "f" * 24}
    assert all(len(tier_ids.intersection(c["idLabels"])) <= 1 for c in board_of(demo)["cards"])


def test_a_text_field_named_like_the_priority_field_does_not_hide_the_dropdown(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trello lets custom fields share a name: a text field "Priority" (added first) beside the
    # dropdown "Priority" that holds the tiers.
    board = board_of(demo)
    board["customFields"].insert(0, {"id": "ab" * 12, "name": "Priority", "type": "text", "idModel": board["id"]})
    save_board(demo, board)

    plan = plan_of(demo, capsys)
    assert not [n for n in plan["notes"] if "no priority field" in n]
    assert [c for c in plan["changes"] if c["field"] == "priority"]
    apply_and_settle(demo, capsys)


@pytest.mark.parametrize("connector", ["local", "trello"])
def test_a_deal_whose_card_was_archived_gets_no_new_card(
    connector: str, demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rep archived a lead's card, and the team moved three old leads to a list it archived;
    # the CRM still has the deals open at "Lead": a new card for each would undo their choice.
    board = board_of(demo)
    links = crm_links(board)
    lead = next(lst["id"] for lst in board["lists"] if lst["name"] == "Lead")
    leads = [c for c in board["cards"] if c["idList"] == lead and c["id"] in links][:4]
    board["lists"].append({"id": "0" * 23 + "1", "name": "Old leads", "closed": True, "pos": 9e6})
    leads[0]["closed"] = True
    for card in leads[1:]:
        card["idList"] = "0" * 23 + "1"
    save_board(demo, board)
    put_away = {links[c["id"]] for c in leads}

    with ExitStack() as stack:
        if connector == "trello":
            on_fake_trello(stack, demo, monkeypatch)
        plan = plan_of(demo, capsys)
    assert not put_away & {n["key"] for n in plan["creates"]}
    assert [n for n in plan["notes"] if n.startswith("4 open deal(s) have only an archived card or a completed task")]


def test_undo_puts_back_the_owners_still_on_the_board(tmp_path: Path) -> None:
    # Cards moved from a rep, then the rep leaves the board: Trello refuses her id on a card, so undo
    # puts back everything else (their cards end unassigned) instead of failing on each of them.
    with ExitStack() as stack:
        settings, connect, fake = fake_trello_board(stack, tmp_path, cards=40)
        board = next(iter(fake.boards.values()))
        members = {c["id"]: c["idMembers"] for c in board["cards"]}
        ws = Workspace(settings, connector=connect(), today=TODAY)
        plan = ws.plan().plan
        assert ws.apply(plan.id)[1].ok
        moved = {c.task_id for c in plan.changes if c.field is Field.ASSIGNEES}
        gone = Counter(m for cid in moved for m in members[cid]).most_common(1)[0][0]
        board["members"] = [m for m in board["members"] if m["id"] != gone]
        hers = {cid for cid in moved if members[cid] == [gone]}
        assert hers and moved - hers
        undo, outcome = Workspace(settings, connector=connect(), today=TODAY).undo(plan.id)
        assert outcome.ok and not outcome.failed
        assert [n for n in undo.notes if "former owner(s) left the board" in n]
        after = {c["id"]: c["idMembers"] for c in board["cards"]}
    assert all(after[cid] == [] for cid in hers)
    assert all(after[cid] == members[cid] for cid in moved - hers)


def test_a_deal_whose_asana_task_was_completed_gets_no_new_task(tmp_path: Path) -> None:
    # A rep marked three leads' tasks complete; the CRM still has the deals open at "Lead".
    with FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7) as fake:
        demo = AsanaDemo(tmp_path, fake)
        lead = demo.section_by_name["Lead"]
        done = [t for t in fake.tasks.values() if t.memberships[0][1] == lead and demo.crm in t.custom_values][:3]
        for t in done:
            demo.person("PUT", f"/tasks/{t.gid}", {"completed": True})
        conn = AsanaConnector(demo.settings, limiter=SlidingWindowLimiter(10_000, 1.0), backoff=0.01, timeout=5.0)
        plan = Workspace(demo.settings, connector=conn, today=TODAY).plan().plan
    assert len(done) == 3
    assert not {t.custom_values[demo.crm] for t in done} & {n.key for n in plan.creates}
    assert [n for n in plan.notes if n.startswith("3 open deal(s) have only an archived card or a completed task")]


def test_asana_milestones_and_approvals_are_not_divided(tmp_path: Path) -> None:
    # A deal's discount approval (assigned to the sales manager who signs it off) and its
    # go-live milestone carry the deal's CRM ID: they are not sales work to hand to a rep.
    with FakeAsana(requests_per_minute=None, time_scale=60.0, seed=7) as fake:
        demo = AsanaDemo(tmp_path, fake)
        manager = fake.add_user(demo.ws, "Sam Manager", "sam.manager@example.com")
        deal = next(t for t in fake.tasks.values() if demo.crm in t.custom_values)
        section = deal.memberships[0][1]
        not_work = {
            fake.add_task(demo.project, section, f"{kind}: {deal.name}", assignee=manager,
                          custom_values={demo.crm: deal.custom_values[demo.crm]}, resource_subtype=kind)
            for kind in ("approval", "milestone")
        }  # fmt: skip
        conn = AsanaConnector(demo.settings, limiter=SlidingWindowLimiter(10_000, 1.0), backoff=0.01, timeout=5.0)
        plan = Workspace(demo.settings, connector=conn, today=TODAY).plan().plan
    assert plan.changes
    assert not [c for c in plan.changes if c.task_id in not_work]
    assert all(fake.tasks[gid].assignee == manager for gid in not_work)


def test_a_number_crm_id_field_gets_numbers_on_the_cards_tasksync_creates(tmp_path: Path) -> None:
    # Pipedrive and HubSpot deal ids are numbers, and teams make "CRM ID" a Number field; Trello
    # refuses a text value there: every create stopped half made (no CRM ID, no priority).
    with ExitStack() as stack:
        settings, connect, fake = fake_trello_board(stack, tmp_path, cards=30)
        deals = tmp_path / "crm" / "deals.csv"
        deals.write_text(re.sub(r"\bD0*(\d+)\b", r"\1", deals.read_text(encoding="utf-8")), encoding="utf-8")
        board = next(iter(fake.boards.values()))
        field = next(f for f in board["customFields"] if f["name"] == "CRM ID")
        field["type"] = "number"
        for item in (i for c in board["cards"] for i in c["customFieldItems"] if i["idCustomField"] == field["id"]):
            item["value"] = {"number": item["value"]["text"].lstrip("D0")}
        ws = Workspace(settings, connector=connect(), today=TODAY)
        plan = ws.plan().plan
        assert plan.creates
        assert ws.apply(plan.id)[1].ok
        created = [c for c in board["cards"] if c["desc"].endswith(tuple(f"[tasksync:{n.key}]" for n in plan.creates))]
        links = {
            i["value"]["number"] for c in created for i in c["customFieldItems"] if i["idCustomField"] == field["id"]
        }
        assert links == {n.key for n in plan.creates}
        assert Workspace(settings, connector=connect(), today=TODAY).plan().plan.empty


def test_priority_options_that_are_not_the_tiers_are_named_in_the_plan(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The team's dropdown says High, Medium, Low, Lowest; the config keeps the default tiers.
    board = board_of(demo)
    field = next(f for f in board["customFields"] if f["name"] == "Priority")
    for option, text in zip(field["options"], ("High", "Medium", "Low", "Lowest"), strict=True):
        option["value"]["text"] = text
    save_board(demo, board)

    plan = plan_of(demo, capsys)
    assert not [c for c in plan["changes"] if c["field"] == "priority"]
    assert [n for n in plan["notes"] if "has no option 'P1', 'P2', 'P3', 'P4'" in n and "High, Medium, Low" in n]


def test_undo_says_which_cards_it_could_not_put_back(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A card the plan changed is deleted before the undo: the undo says so instead of passing it over.
    plan = plan_of(demo, capsys)
    assert plan["changes"] and run(demo, "apply") == 0
    gone = plan["changes"][0]["task_id"]
    board = board_of(demo)
    board["cards"] = [c for c in board["cards"] if c["id"] != gone]
    save_board(demo, board)
    capsys.readouterr()
    run(demo, "undo", plan["id"])
    assert f"note: card {gone} is gone; nothing to put back" in capsys.readouterr().out
