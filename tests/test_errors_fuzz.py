"""Hostile board files and configs: whatever the JSON or TOML holds, reading it gives a snapshot
(or settings) or one ConfigError, never another exception (issue 17, item 10)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.connectors.local import LocalConnector
from tasksync.errors import ConfigError
from tasksync.settings import Settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]
DEMO = json.loads((ROOT / "examples" / "demo" / "board.json").read_text(encoding="utf-8"))
SMALL = {**DEMO, "cards": DEMO["cards"][:6]}
SMALL["customFieldItems"] = [i for i in DEMO["customFieldItems"] if i["idModel"] in {c["id"] for c in SMALL["cards"]}]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
# Where in the board a value is replaced: a path of keys/indexes into SMALL.
TARGETS = [
    ("cards", i, key)
    for i in range(len(SMALL["cards"]))
    for key in ("id", "idList", "idMembers", "idLabels", "name", "desc", "due", "closed", "customFieldItems", None)
] + [
    ("lists", 0, "id"),
    ("lists", 1, "pos"),
    ("members", 0, "id"),
    ("customFields", 0, "options"),
    ("customFields", 1, "id"),
    ("customFieldItems", 0, "value"),
    ("customFieldItems", 1, "idValue"),
    ("customFieldItems", 2, None),
    ("labels", None, None),
    ("members", None, None),
]


def _mutate(board: dict[str, Any], target: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``board`` with one value replaced (unchanged when an earlier mutation removed the spot)."""
    out = copy.deepcopy(board)
    section, index, key = target
    if index is None:
        out[section] = value
    elif not isinstance(out.get(section), list) or len(out[section]) <= index:
        pass
    elif key is None:
        out[section][index] = value
    elif isinstance(out[section][index], dict):
        out[section][index][key] = value
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(TARGETS), json_values), min_size=1, max_size=3))
def test_any_board_json_reads_or_fails_in_one_config_error(
    tmp_path_factory: Any, mutations: list[tuple[tuple[Any, ...], Any]]
) -> None:
    board = SMALL
    for target, value in mutations:
        board = _mutate(board, target, value)
    folder = tmp_path_factory.mktemp("board")
    (folder / "board.json").write_text(json.dumps(board), encoding="utf-8")
    s = Settings(base_dir=folder)
    try:
        snapshot = LocalConnector(s).read()
    except ConfigError as e:
        assert "\n" not in str(e) and "board.json" in str(e)
    else:
        assert all(isinstance(m, str) for t in snapshot.tasks for m in t.assignees)


toml_scalars = st.none() | st.booleans() | st.integers(-10, 10) | st.floats(-2, 2) | st.text(max_size=5)
toml_values = toml_scalars | st.lists(toml_scalars, max_size=3)
SECTIONS = {
    "policy": ["band", "time_limit", "smoothing", "move_cost", "candidate_reps", "size_bands", "balance_by"],
    "priority": ["tiers", "shares", "hysteresis", "due_soon_days", "field"],
    "service": ["interval", "max_move_share", "rebalance_at", "backoff_max", "full_read_every"],
    "asana": ["requests_per_minute", "project"],
    "link": ["by", "field"],
}


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(
        st.sampled_from([(s, k) for s, keys in SECTIONS.items() for k in keys]).flatmap(
            lambda sk: st.tuples(st.just(sk), toml_values)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_config_values_load_or_fail_with_the_key_named(entries: list[tuple[tuple[str, str], Any]]) -> None:
    raw: dict[str, Any] = {}
    for (section, key), value in entries:
        if value is not None:
            raw.setdefault(section, {})[key] = value
    try:
        loaded = settings_from_mapping(raw, base_dir=Path("/nonexistent"), source="cfg.toml")
    except ConfigError as e:
        text = str(e)
        assert "\n" not in text and text.startswith("cfg.toml: ")
        assert any(text.startswith(f"cfg.toml: {section}") for section in raw), text
    else:  # what loads makes sense
        p, prio, svc = loaded.policy, loaded.priority, loaded.service
        assert p.band >= 0 and p.time_limit > 0 and p.smoothing >= 0 and p.move_cost >= 0 and p.candidate_reps >= 1
        assert all(v >= 0 for v in p.size_bands.values())
        assert prio.tiers and all(0 <= x <= 1 for x in prio.shares) and sum(prio.shares) <= 1 + 1e-9
        assert prio.hysteresis >= 0 and prio.due_soon_days >= 0
        assert svc.interval > 0 and 0 <= svc.max_move_share <= 1 and svc.backoff_max > 0 and svc.full_read_every > 0
        assert loaded.asana.requests_per_minute > 0
