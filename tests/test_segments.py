"""Segmentation by configured rules: sector, region, size band and potential value."""

from __future__ import annotations

from tasksync.policies.book import segment_of
from tasksync.settings import PolicySettings, SegmentRule


def policy(*rules: SegmentRule) -> PolicySettings:
    return PolicySettings(segments=list(rules))


def test_first_matching_rule_names_the_segment() -> None:
    p = policy(
        SegmentRule(name="Enterprise", size_bands=["enterprise"]),
        SegmentRule(name="Big retail", sectors=["Retail"], min_value=50_000),
        SegmentRule(name="North health", sectors=["healthcare"], regions=["north"]),
    )
    assert segment_of("Retail", "South", 9000, 1_000, p) == "Enterprise"
    assert segment_of("Retail", "South", 40, 80_000, p) == "Big retail"
    assert segment_of("Retail", "South", 40, 10_000, p) == "Retail"  # no rule: the sector
    assert segment_of("Healthcare", "North", 40, 10, p) == "North health"  # case-insensitive
    assert segment_of(None, None, None, 0.0, p) == "(none)"


def test_value_bounds_are_inclusive() -> None:
    p = policy(SegmentRule(name="Mid", min_value=10, max_value=20))
    assert [segment_of("X", None, None, v, p) for v in (9.99, 10, 20, 20.01)] == ["X", "Mid", "Mid", "X"]
