"""The bench's set-partitioning (Dantzig–Wolfe) bound (``bench/policies/dw_bound.py``): it prices the
optimal policy's own objective, lies between the exact optimum and the compact LP's bound, and is
the same every run. The one with both bands held is in ``test_bench_partition_bound.py``."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from scipy.optimize import milp

from bench_support import book_model, load_bench
from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.programme import build_programme
from tasksync.policies.optimal.solve import Limits, solve_model


@pytest.fixture(scope="module")
def dw() -> ModuleType:
    return load_bench("dw_bound")


_model = book_model


def _held(m: Model) -> tuple[list[int], np.ndarray, float]:
    base = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = [g for g in range(len(m.groups)) if not m.held[g]]
    held = sum(m.net(g, int(base[g])) for g in range(len(m.groups)) if m.held[g])
    return movers, base, float(held)


def _compact_lp_bound(m: Model) -> float:
    movers, base, held = _held(m)
    prog = build_programme(m, movers, m.loads_for(base, skip=set(movers)), False)
    res = milp(prog.c, constraints=prog.constraints, bounds=prog.bounds, integrality=np.zeros(len(prog.c)))
    assert res.status == 0
    return held - float(res.fun)


@pytest.mark.parametrize(
    ("kind", "n", "r", "seed", "value_band"),
    [("synthetic", 90, 4, 3, 0.20), ("real-shaped", 80, 5, 4, 0.20), ("synthetic", 90, 4, 5, 0.0)],
)
def test_dw_bound_lies_between_the_optimum_and_the_lp_bound(
    dw: ModuleType, kind: str, n: int, r: int, seed: int, value_band: float
) -> None:
    m = _model(kind, n, r, seed, value_band)
    exact = solve_model(m, Limits(exact=True, exact_gap=0.0))
    assert exact.status == "optimal" and (exact.choice >= 0).all()
    optimum = m.objective(exact.choice)
    # The master prices any division exactly as the model does (same objective, reformulated).
    assert dw.objective_of(m, exact.choice) == pytest.approx(optimum, rel=1e-9)
    res = dw.dw_bound(m, exact.choice, rounds=200)
    assert res is not None
    scale = max(abs(optimum), 1.0)
    assert res.bound >= optimum - 1e-6 * scale  # a bound: never below the optimum
    assert res.bound <= _compact_lp_bound(m) + 1e-6 * scale  # at least as tight as the compact LP
    assert res.history == sorted(res.history, reverse=True)  # the best bound so far only tightens
    assert res.converged  # a small book: column generation ends with nothing left to price in
    if value_band == 0:  # only whole-card count bands left: the set-partitioning bound is exact here
        assert res.bound == pytest.approx(optimum, rel=1e-6) and res.bound < _compact_lp_bound(m) - 1e-3 * scale
    again = dw.dw_bound(m, exact.choice, rounds=200)
    assert again is not None and again.bound == res.bound and again.rounds == res.rounds


def test_dw_bound_from_a_poor_start_is_still_a_bound(dw: ModuleType) -> None:
    """Started from a division far from the optimum (every group with its first candidate) and
    stopped after two rounds, the bound is weaker but still never below the optimum."""
    m = _model("synthetic", 90, 4, 3)
    exact = solve_model(m, Limits(exact=True, exact_gap=0.0))
    poor = np.array([int(c[0]) for c in m.cand], dtype=np.int64)
    res = dw.dw_bound(m, poor, rounds=2)
    assert res is not None and not res.converged
    assert res.bound >= m.objective(exact.choice) - 1e-6 * abs(m.objective(exact.choice))
