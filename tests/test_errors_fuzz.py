"""Hostile configs: whatever values the TOML holds, the settings load and make sense, or one
ConfigError names the key (issue 17, items 10 and 11). Board files: tests/test_fuzz_board.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tasksync.errors import ConfigError
from tasksync.settings import settings_from_mapping

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
