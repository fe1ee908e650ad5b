"""The bench of where a decision's time goes (``bench/policies/bench_phases.py``): timing the parts
changes no plan, and the policy is left as it was."""

from __future__ import annotations

from types import ModuleType

import pytest

import tasksync.policies.optimal.solve as S
from bench_support import load_bench
from tasksync.policies.base import Rules
from tasksync.policies.model_eval import synthetic_book
from tasksync.policies.optimal import OptimalPolicy
from tasksync.settings import PolicySettings


@pytest.fixture(scope="module")
def phases() -> ModuleType:
    return load_bench("bench_phases")


def test_timing_the_parts_changes_no_plan(phases: ModuleType) -> None:
    solve_lp = S.solve_lp
    cpu, _, parts, plan = phases.decide("synthetic", 60, 4, 1)
    assert S.solve_lp is solve_lp  # the policy's own functions again
    untimed = OptimalPolicy().decide(synthetic_book(60, 4, 1), Rules(PolicySettings(name="optimal")))
    assert phases.fingerprint(untimed) == plan
    assert parts["LP"] > 0 and parts["models"] > 0 and parts["reasons"] > 0
    assert cpu > 0 and -0.01 <= parts["rest"] <= cpu
