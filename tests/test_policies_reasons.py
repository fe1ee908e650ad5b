"""Reasons as data: every reason's kind and figures come from the final division, and each figure
a reason cites is the number the plan's own tables show (open cards and expected value per rep,
the bands); the words are rendered from the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasksync.examples import TODAY, generate
from tasksync.model import Field
from tasksync.policies import Reason, ReasonKind
from tasksync.render import plan_json
from tasksync.settings import load_settings
from tasksync.sync.workspace import Workspace


@pytest.mark.parametrize("policy", ["optimal", "balanced"])
def test_every_reason_matches_the_plan_tables(tmp_path: Path, policy: str) -> None:
    config = generate(tmp_path / "ex", seed=5, cards=120)
    settings = load_settings(config)
    settings = settings.model_copy(update={"policy": settings.policy.model_copy(update={"name": policy})})
    with Workspace(settings, today=TODAY) as ws:
        result = ws.plan(save=False)
    data = plan_json(result, settings)
    rows = {r["name"]: r for r in data["reps"]}
    count, value = data["band"]["workload"], data["band"]["expected_value"]
    # The bands the policy kept are the bands the tables show.
    assert (count["lower"], count["upper"]) == pytest.approx(
        (result.decisions.bands["count"].lower, result.decisions.bands["count"].upper)
    )
    model = result.decisions.model
    assert model is not None
    items = {i.task_id: i for i in result.book.items if i.task_id}
    checked = 0
    moves = [c for c in result.plan.changes if c.field is Field.ASSIGNEES]
    assert moves
    for c in moves:
        item = items[c.task_id]
        reason = result.decisions.by_key[item.key].reason
        assert isinstance(reason, Reason)
        assert c.reason == reason.text() and c.reason_kind == reason.kind.value
        f = dict(reason.figures)
        if reason.kind in (ReasonKind.ABOVE_BAND, ReasonKind.BELOW_BAND):
            who = rows[reason.frm if reason.kind is ReasonKind.ABOVE_BAND else reason.to or ""]
            assert (f["before"], f["after"]) == (who["before"], who["after"])
            assert (f["lower"], f["upper"]) == pytest.approx((count["lower"], count["upper"]))
            if reason.kind is ReasonKind.ABOVE_BAND:
                assert f["before"] > f["upper"]
            else:
                assert f["before"] < f["lower"]
            assert f"{f['before']:.0f} open cards" in c.reason
            checked += 1
        if reason.kind in (ReasonKind.ABOVE_VALUE_BAND, ReasonKind.BELOW_VALUE_BAND):
            who = rows[reason.frm if reason.kind is ReasonKind.ABOVE_VALUE_BAND else reason.to or ""]
            assert f["ev_before"] == pytest.approx(who["expected_value_before"], abs=0.01)
            assert f["ev_after"] == pytest.approx(who["expected_value"], abs=0.01)
            assert (f["ev_lower"], f["ev_upper"]) == pytest.approx((value["lower"], value["upper"]), abs=0.01)
            checked += 1
        if reason.kind is ReasonKind.OVER_CAPACITY:
            assert f["before"] == rows[reason.frm or ""]["before"] and f["before"] > f["capacity"]
            checked += 1
        if reason.to is not None and "expected_value" in f:
            # Why that rep: the card's win rate and expected value with them, and room in the band.
            rep_id = next(r.id for r in result.book.reps if r.name == reason.to)
            assert f["expected_value"] == pytest.approx(model.expected_value(item, rep_id))
            assert f["win_rate"] == pytest.approx(model.probability(item, rep_id))
            assert f"expected value {f['expected_value']:,.0f}" in c.reason
            if "room" in f:
                assert f["room"] == max(count["upper"] - rows[reason.to]["after"], 0)
            checked += 1
    assert checked
    # Unowned cards name why that rep, never just "most room".
    unowned = [c for c in moves if c.reason_kind == ReasonKind.UNOWNED.value]
    assert all("win rate" in c.reason and "most room" not in c.reason for c in unowned)


def test_priority_reason_names_the_adjustment(tmp_path: Path) -> None:
    config = generate(tmp_path / "ex", seed=5, cards=120)
    with Workspace(load_settings(config), today=TODAY) as ws:
        result = ws.plan(save=False)
    prio = [c for c in result.plan.changes if c.field is Field.PRIORITY]
    assert prio and all(c.reason_kind == ReasonKind.PRIORITY.value for c in prio)
    items = {i.task_id: i for i in result.book.items if i.task_id}
    adjusted = [c for c in prio if result.decisions.by_key[items[c.task_id].key].priority_reason.adjustment]  # type: ignore[union-attr]
    assert adjusted
    assert all(("stale:" in c.reason and "days open" in c.reason) or "due soon:" in c.reason for c in adjusted)


def test_rendered_text_cites_only_the_figures() -> None:
    r = Reason(
        ReasonKind.ABOVE_BAND,
        "Anna",
        "Rosie",
        (
            ("before", 24.0),
            ("lower", 18.0),
            ("upper", 20.0),
            ("after", 20.0),
            ("win_rate", 0.31),
            ("expected_value", 3100.0),
            ("room", 2.0),
        ),
        ("strong in Software",),
    )
    assert r.text() == (
        "Anna above the band (24 open cards, band 18–20; 20 after); "
        "to Rosie (strong in Software, win rate 31%, expected value 3,100, room for 2 more in the band after the plan)"
    )
    assert r.as_dict()["figures"] == {
        "before": 24.0,
        "lower": 18.0,
        "upper": 20.0,
        "after": 20.0,
        "win_rate": 0.31,
        "expected_value": 3100.0,
        "room": 2.0,
    }
    # The receiver full after the plan, this card counted: not "room for 0 more" on the card given.
    full = Reason(ReasonKind.UNOWNED, None, "Rosie", (("win_rate", 0.31), ("room", 0.0)))
    assert full.text().endswith("to Rosie (win rate 31%, at the band's top after the plan)")
