"""Reasons on the card ([write] comment): one comment per card whose owner changes or that is
created, counted in the plan, posted once, said again on undo; on by default for `serve`.
Through the CLI against the fake Trello and the fake Asana."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from team_boards import DAY, run, run_json, served_board

ON = "[write]\ncomment = true"


def comments_of(fake: Any) -> dict[str, list[str]]:
    """Card/task id -> comment texts, from either fake."""
    if hasattr(fake, "comments"):
        return {k: list(v) for k, v in fake.comments.items() if v}
    return {k: [s["text"] for s in v] for k, v in fake.stories.items() if v}


@pytest.mark.parametrize("kind", ["trello", "asana"])
def test_one_comment_per_new_owner_or_new_card_and_one_on_undo(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with served_board(kind, tmp_path / "demo", monkeypatch, cards=40, extra=ON) as (config, fake):
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)
        moves = [c for c in plan["changes"] if c["field"] == "assignees"]
        prio_only = {c["task_id"] for c in plan["changes"] if c["field"] == "priority"} - {c["task_id"] for c in moves}
        creates = [c for c in plan["changes"] if c["field"] == "create"]
        n = len(moves) + len(creates)
        assert moves and creates and prio_only
        assert f"comments: {n} card(s) get a comment on apply ({n} more requests)" in plan["plan"]["notes"]

        assert run(config, "apply") == 0
        assert f"{n} comment(s) posted" in capsys.readouterr().out
        posted = comments_of(fake)
        assert len(posted) == n and all(len(texts) == 1 for texts in posted.values())
        for c in moves:
            (text,) = posted[c["task_id"]]
            was = "" if c["before"] == "(nobody)" else f" (was {c['before']})"
            assert text.startswith(f"tasksync: {c['after']} now owns this card{was}. Why: {c['reason']}")
            assert plan["plan"]["id"] in text
        assert not prio_only & set(posted)  # priority-only changes get no comment
        created = [t for t in posted.values() if t[0].startswith("tasksync: card created for CRM deal")]
        assert len(created) == len(creates)

        # A new plan finds nothing: nothing more is posted.
        assert run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]["changes"] == []
        assert comments_of(fake) == posted

        assert run(config, "undo", plan["plan"]["id"]) == 0
        after_undo = comments_of(fake)
        for c in moves:
            back = "no owner again, as before" if c["before"] == "(nobody)" else f"owner back to {c['before']}"
            assert after_undo[c["task_id"]][-1] == f"tasksync: plan {plan['plan']['id']} was undone; {back}."
        archived = [t[-1] for t in after_undo.values() if t[-1].endswith("this card it created is archived.")]
        assert len(archived) == len(creates)


def test_comments_are_off_by_default_for_apply_and_on_for_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    service = "[service]\nmax_move_share = 1.0\nmax_create_share = 1.0"
    with served_board("trello", tmp_path / "a", monkeypatch, cards=30) as (config, fake):
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        assert not any(n.startswith("comments:") for n in plan["notes"])
        assert run(config, "apply") == 0
        assert comments_of(fake) == {}
    with served_board("trello", tmp_path / "b", monkeypatch, cards=30, extra=service) as (config, fake):
        assert run(config, "serve", "--once", "--today", DAY) == 0
        posted = comments_of(fake)
        assert posted and all(len(t) == 1 for t in posted.values())
        assert all(t[0].startswith("tasksync: ") for t in posted.values())


def test_a_board_without_comments_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with served_board("local", tmp_path / "demo", monkeypatch, cards=20, extra=ON) as (config, _):
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)["plan"]
        assert "comments: [write] comment is on, but this board cannot take comments" in plan["notes"]
        assert run(config, "apply") == 0


def test_an_interrupted_apply_comments_once_when_it_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with served_board("trello", tmp_path / "demo", monkeypatch, cards=30, extra=ON) as (config, fake):
        plan = run_json(config, capsys, "plan", "--json", "--today", DAY)
        n = sum(1 for c in plan["changes"] if c["field"] in ("assignees", "create"))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        cmd = [sys.executable, "-m", "tasksync.testing.faults", "--kill-at", "5", "--", "-c", str(config), "apply"]
        killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert killed.returncode == -signal.SIGKILL
        assert comments_of(fake) == {}  # killed before its comments
        capsys.readouterr()
        assert run(config, "apply") == 0  # finishes the interrupted plan, then comments
        assert f"{n} comment(s) posted" in capsys.readouterr().out
        posted = comments_of(fake)
        assert len(posted) == n and all(len(t) == 1 for t in posted.values())
        assert run(config, "apply") == 4  # nothing more to finish or apply: no second comment
        assert comments_of(fake) == posted
