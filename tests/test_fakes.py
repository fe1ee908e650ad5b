"""The fakes are as strict as the vendors: one test per rule, so a connector bug shows here first."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from contract import sample_trello_board
from tasksync.connectors.transport import secret_fingerprint
from tasksync.testing.fake_asana import DemoIds, FakeAsana
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN = "fake-key", "fake-token"

# ---------------------------------------------------------------------- Trello


@pytest.fixture
def trello() -> FakeTrello:
    return FakeTrello(key=KEY, tokens=[TOKEN])


def put(fake: FakeTrello, path: str, body: dict[str, Any]) -> tuple[int, str]:
    resp = fake.handle(
        "PUT", f"/1{path}?key={KEY}&token={TOKEN}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return resp.status, resp.body.decode()


def fields(fake: FakeTrello, board: str) -> dict[str, str]:
    return {f["name"]: f["id"] for f in fake.board(board)["customFields"]}


def test_trello_list_field_refuses_a_value(trello: FakeTrello) -> None:
    board = trello.add_board(sample_trello_board())
    card = trello.board(board)["cards"][0]["id"]
    prio = fields(trello, board)["Priority"]
    before = json.dumps(trello.card(card)["customFieldItems"], sort_keys=True)
    status, _ = put(trello, f"/cards/{card}/customField/{prio}/item", {"value": {"text": "P1"}})
    assert status == 400
    assert json.dumps(trello.card(card)["customFieldItems"], sort_keys=True) == before, "nothing deleted"


@pytest.mark.parametrize(
    "body",
    [{"value": {"number": "3"}}, {"value": {"text": 3}}, {"value": "D-9"}, {"idValue": "5f" + "0" * 22}],
)
def test_trello_text_field_refuses_other_types(trello: FakeTrello, body: dict[str, Any]) -> None:
    board = trello.add_board(sample_trello_board())
    card = trello.board(board)["cards"][0]["id"]
    link = fields(trello, board)["CRM ID"]
    assert put(trello, f"/cards/{card}/customField/{link}/item", body)[0] == 400
    assert put(trello, f"/cards/{card}/customField/{link}/item", {"value": {"text": "D-9"}})[0] == 200


def test_trello_number_field_needs_a_number(trello: FakeTrello) -> None:
    data = sample_trello_board()
    data["customFields"].append({"id": "5f" + "7" * 22, "name": "Seats", "type": "number"})
    board = trello.add_board(data)
    card = trello.board(board)["cards"][0]["id"]
    path = f"/cards/{card}/customField/{'5f' + '7' * 22}/item"
    assert put(trello, path, {"value": {"number": "many"}})[0] == 400
    assert put(trello, path, {"value": {"number": "12"}})[0] == 200


def test_trello_closed_takes_true_or_false_only(trello: FakeTrello) -> None:
    board = trello.add_board(sample_trello_board())
    card = trello.board(board)["cards"][0]["id"]
    assert put(trello, f"/cards/{card}", {"closed": "yes"})[0] == 400
    assert trello.card(card)["closed"] is False
    assert put(trello, f"/cards/{card}", {"closed": True})[0] == 200
    assert put(trello, f"/cards/{card}", {"closed": "false"})[0] == 200
    assert trello.card(card)["closed"] is False


def test_trello_comments_are_actions(trello: FakeTrello) -> None:
    board = trello.add_board(sample_trello_board())
    card = trello.board(board)["cards"][0]["id"]
    resp = trello.handle("POST", f"/1/cards/{card}/actions/comments?key={KEY}&token={TOKEN}&text=Moved%20to%20Rep%20B")
    assert resp.status == 200 and json.loads(resp.body)["type"] == "commentCard"
    assert trello.comments[card] == ["Moved to Rep B"]
    empty = trello.handle("POST", f"/1/cards/{card}/actions/comments?key={KEY}&token={TOKEN}&text=")
    assert empty.status == 400


def test_trello_log_keeps_per_token_timestamps_without_the_token(trello: FakeTrello) -> None:
    trello.tokens.add("other-token")
    board = trello.add_board(sample_trello_board())
    for token in (TOKEN, "other-token", TOKEN):
        trello.handle("GET", f"/1/boards/{board}?key={KEY}&token={token}")
    by_token = [r.token for r in trello.log]
    assert by_token == [secret_fingerprint(t) for t in (TOKEN, "other-token", TOKEN)]
    assert all(TOKEN not in r.token for r in trello.log)
    assert [r.at for r in trello.log] == sorted(r.at for r in trello.log)


# ---------------------------------------------------------------------- Asana


@pytest.fixture
def asana() -> Iterator[FakeAsana]:
    with FakeAsana(time_scale=60.0, seed=3) as fake:
        yield fake


def call(fake: FakeAsana, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    req = urllib.request.Request(
        f"{fake.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def test_asana_batch_runs_actions_unordered_and_answers_in_order(asana: FakeAsana) -> None:
    demo: DemoIds = asana.seed_demo(tasks=10)
    actions = [
        {"method": "put", "relative_path": f"/tasks/{t}", "data": {"name": f"Renamed {i}"}}
        for i, t in enumerate(demo.tasks)
    ]
    orders = []
    for _ in range(3):
        status, body, _ = call(asana, "POST", "/batch", {"data": {"actions": actions}})
        assert status == 200
        assert [r["body"]["data"]["name"] for r in body["data"]] == [f"Renamed {i}" for i in range(10)]
        orders.append(asana.batch_orders[-1])
    assert any(order != tuple(range(10)) for order in orders), "the actions ran out of order"
    assert all(sorted(order) == list(range(10)) for order in orders)


def test_asana_refuses_a_disabled_enum_option(asana: FakeAsana) -> None:
    demo = asana.seed_demo(tasks=2)
    asana.disable_option(demo.priority_field, "P2")
    status, body, _ = call(
        asana,
        "PUT",
        f"/tasks/{demo.tasks[0]}",
        {"data": {"custom_fields": {demo.priority_field: demo.priority_options["P2"]}}},
    )
    assert status == 400 and "disabled" in body["errors"][0]["message"]
    status, _, _ = call(
        asana,
        "PUT",
        f"/tasks/{demo.tasks[0]}",
        {"data": {"custom_fields": {demo.priority_field: demo.priority_options["P1"]}}},
    )
    assert status == 200


def test_asana_applies_a_default_limit(asana: FakeAsana) -> None:
    asana.default_limit = 20
    demo = asana.seed_demo(tasks=45)
    status, body, _ = call(asana, "GET", f"/projects/{demo.project}/tasks")
    assert status == 200 and len(body["data"]) == 20 and body["next_page"]["offset"]


def test_asana_reads_custom_values_kept_on_the_cards_of_a_trello_export(asana: FakeAsana) -> None:
    export = sample_trello_board()
    items = export.pop("customFieldItems")
    for card in export["cards"]:  # a real export keeps the items on each card
        card["customFieldItems"] = [i for i in items if i["idModel"] == card["id"]]
    demo = asana.seed_from_trello_board(export)
    values = [asana.tasks[t].custom_values for t in demo.tasks]
    assert all(v.get(demo.crm_field) for v in values), "every card's CRM ID"
    assert all(v.get(demo.priority_field) for v in values), "every card's priority"


def test_asana_sends_retry_after_in_whole_seconds(asana: FakeAsana) -> None:
    asana.requests_per_minute = 2
    demo = asana.seed_demo(tasks=1)
    statuses = [call(asana, "GET", f"/projects/{demo.project}") for _ in range(3)]
    status, _, headers = statuses[-1]
    assert status == 429
    raw = headers["Retry-After"]
    assert raw.isdigit() and int(raw) >= 1 and not math.isnan(float(raw))


def test_asana_stories_are_comments(asana: FakeAsana) -> None:
    demo = asana.seed_demo(tasks=1)
    status, body, _ = call(asana, "POST", f"/tasks/{demo.tasks[0]}/stories", {"data": {"text": "Why it moved"}})
    assert status == 201 and body["data"]["text"] == "Why it moved"
    assert [s["text"] for s in asana.stories[demo.tasks[0]]] == ["Why it moved"]
    assert call(asana, "POST", f"/tasks/{demo.tasks[0]}/stories", {"data": {}})[0] == 400


def test_asana_subtasks_are_in_no_project_and_people_fields_hold_users(asana: FakeAsana) -> None:
    demo = asana.seed_demo(tasks=2, users=2)
    parent = demo.tasks[0]
    status, body, _ = call(asana, "POST", f"/tasks/{parent}/subtasks", {"data": {"name": "Call back"}})
    assert status == 201
    kid = body["data"]["gid"]
    status, body, _ = call(asana, "GET", f"/tasks/{kid}?opt_fields=parent.name,memberships.project")
    assert body["data"]["parent"]["gid"] == parent and body["data"]["memberships"] == []
    listed = call(asana, "GET", f"/projects/{demo.project}/tasks")[1]["data"]
    assert kid not in {t["gid"] for t in listed}, "a subtask is in a project's task list only once added to it"
    assert [t["gid"] for t in call(asana, "GET", f"/tasks/{parent}/subtasks")[1]["data"]] == [kid]
    added = asana.add_subtask(parent, "Send pricing", project=demo.project, section=demo.sections[0])
    assert added in {t["gid"] for t in call(asana, "GET", f"/projects/{demo.project}/tasks")[1]["data"]}

    engineer = asana.add_people_field(demo.project, "Sales engineer")
    path = f"/tasks/{parent}?opt_fields=custom_fields.people_value.name,custom_fields.display_value"
    status, body, _ = call(asana, "PUT", path, {"data": {"custom_fields": {engineer: ["rep02@example.com"]}}})
    (value,) = [f for f in body["data"]["custom_fields"] if f["gid"] == engineer]
    assert status == 200 and [u["name"] for u in value["people_value"]] == ["Rep 02"]
    assert value["display_value"] == "Rep 02"
    assert call(asana, "PUT", path, {"data": {"custom_fields": {engineer: "Rep 02"}}})[0] == 400


def test_asana_log_keeps_per_token_timestamps(asana: FakeAsana) -> None:
    demo = asana.seed_demo(tasks=1)
    call(asana, "GET", f"/projects/{demo.project}")
    call(asana, "GET", f"/projects/{demo.project}")
    records = asana.requests("GET", "/projects")
    assert [r.token for r in records] == [asana.token] * 2
    assert records[0].at <= records[1].at
