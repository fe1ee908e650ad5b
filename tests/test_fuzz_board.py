"""Hypothesis over board JSON (the local connector): whatever the board file holds, `plan` and
`apply --now` either work or stop with one line naming the file and exit code 2, never a
traceback, and a refused board is left as it was."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.cli import main
from tasksync.examples import TODAY, generate

_TEMPLATE: dict[str, Path] = {}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
PARTS = ["cards", "lists", "members", "labels", "customFields", "customFieldItems"]
KEYS = ["id", "idList", "idMembers", "idLabels", "name", "desc", "closed", "due", "pos", "options", "value",
        "idValue", "idModel", "idCustomField", "customFieldItems", "labels", "fullName", "email"]  # fmt: skip


def fresh(tmp: Path) -> Path:
    """A copy of a 20-card example divided by the balanced policy: the fuzzing is of reading the
    board file, which every policy shares (the optimal policy costs a second a plan, 30 examples)."""
    if "t" not in _TEMPLATE:
        config = generate(Path(tempfile.mkdtemp(prefix="tasksync-fuzz-")) / "demo", cards=20)
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('name = "optimal"', 'name = "balanced"', 1), encoding="utf-8")
        _TEMPLATE["t"] = config.parent
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(_TEMPLATE["t"], tmp)
    return tmp / "tasksync.toml"


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--no-color", "-c", str(config), *args])
    return rc, capsys.readouterr().err


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = config.parent / "board.json"
    before = board.read_bytes() if board.is_file() else None
    for args in (["plan", "--today", TODAY.isoformat()], ["apply", "--now"]):
        rc, err = run(config, capsys, *args)
        assert rc in (0, 2), (rc, err)
        if rc == 2:
            assert "board.json" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
            assert (board.read_bytes() if board.is_file() else None) == before
            return


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(PARTS), st.integers(0, 40), st.sampled_from([*KEYS, None]), json_values),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_board_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], edits: list[Any]) -> None:
    config = fresh(tmp_path / "b")
    path = config.parent / "board.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for part, index, key, value in edits:
        objects = data.get(part)
        if not isinstance(objects, list) or not objects:
            data[part] = value
            continue
        i = index % len(objects)
        if key is None:
            objects[i] = value  # the whole object replaced (a null card, a number...)
        elif isinstance(objects[i], dict):
            objects[i][key] = value
    path.write_text(json.dumps(data), encoding="utf-8")
    check(config, capsys)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00binary\x00\x01",
        "[" * 100_000,
        '{"lists": [], "cards": "many"}',
        '{"lists": [], "cards": [null]}',
        '{"lists": [{"id": "l1"}], "cards": [{"idList": "l1", "name": "no id"}]}',
        '{"lists": [{"id": "l1"}], "cards": [{"id": "c1", "idList": "l1", "idMembers": "abc"}]}',
        '{"lists": [{"id": "l1"}], "cards": [], "customFieldItems": [{"idModel": "c1", "value": "x"}]}',
        "directory",
    ],
)
def test_hostile_board_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes) -> None:
    config = fresh(tmp_path / "b")
    path = config.parent / "board.json"
    path.unlink()
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    rc, err = run(config, capsys, "plan")
    assert rc == 2 and "board.json" in err and len(err.strip().splitlines()) == 1, err
