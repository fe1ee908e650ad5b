"""The bench's set-partitioning (Dantzig–Wolfe) bounds (``bench/policies/dw_bound.py``, and with both
bands held by intervals of the mean, ``bench/policies/partition_bound.py``): each prices the optimal
policy's own objective, lies between the exact optimum and the compact LP's bound, and is the same
every run."""

from __future__ import annotations

import itertools
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


# The set-partitioning bound with both bands held, by intervals of the mean
# (``bench/policies/partition_bound.py``).


@pytest.fixture(scope="module")
def pb() -> ModuleType:
    return load_bench("partition_bound")


def _held_optimum(m: Model) -> tuple[np.ndarray, float, float]:
    """The exact optimum among divisions inside both bands and the capacities (HiGHS on the whole
    programme with every band and capacity slack bounded at 0, no intervals): the division, its
    objective, and that programme's LP bound."""
    mb = load_bench("mean_bound")
    base = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    w = mb.whole_programme(m, base, held=True)
    prog = w.prog
    exact = milp(prog.c, constraints=prog.constraints, bounds=prog.bounds, integrality=prog.integrality)
    lp = milp(prog.c, constraints=prog.constraints, bounds=prog.bounds, integrality=np.zeros(len(prog.c)))
    assert exact.status == 0 and lp.status == 0
    on = exact.x[: prog.n_x] > 0.5
    choice = base.copy()
    choice[w.movers[prog.group[on]]] = prog.rep[on]
    assert m.feasible(choice) and m.objective(choice) == pytest.approx(w.held - exact.fun, rel=1e-9)
    return choice, float(w.held - exact.fun), float(w.held - lp.fun)


@pytest.mark.parametrize(("kind", "n", "r", "seed"), [("synthetic", 90, 4, 3), ("real-shaped", 80, 5, 4)])
def test_partition_bound_lies_between_the_held_optimum_and_the_lp_bound(
    pb: ModuleType, kind: str, n: int, r: int, seed: int
) -> None:
    m = _model(kind, n, r, seed)
    choice, optimum, lp = _held_optimum(m)
    scale = max(abs(optimum), 1.0)
    res = pb.partition_bound(m, choice, rounds=40)
    assert res is not None and res.start == pytest.approx(optimum, rel=1e-9)
    assert res.bound >= optimum - 1e-6 * scale  # a bound: never below the optimum
    assert res.bound <= lp + 1e-6 * scale  # at least as tight as the compact LP (bands held)
    lo, hi = res.mean_range
    assert lo <= res.start_mean <= hi
    edges = [(iv.lo, iv.hi) for iv in res.intervals]
    assert edges[0][0] == lo and edges[-1][1] == hi and all(a[1] == b[0] for a, b in itertools.pairwise(edges))
    for iv in res.intervals:  # each interval's best bound so far only tightens
        assert iv.history == sorted(iv.history, reverse=True)
    again = pb.partition_bound(m, choice, rounds=40)
    assert again.bound == res.bound and again.rounds == res.rounds and again.pricings == res.pricings
    assert [(iv.lo, iv.hi, iv.bound) for iv in again.intervals] == [(iv.lo, iv.hi, iv.bound) for iv in res.intervals]


def test_partition_bound_without_a_value_band_closes_on_the_optimum(pb: ModuleType) -> None:
    """With only whole-card count bands, one interval, column generation converges, and the
    set-partitioning LP bound is the optimum here (the compact LP's is not)."""
    m = _model("synthetic", 90, 4, 5, value_band=0.0)
    choice, optimum, lp = _held_optimum(m)
    res = pb.partition_bound(m, choice, rounds=60)
    assert res is not None and len(res.intervals) == 1 and res.intervals[0].converged
    assert res.bound == pytest.approx(optimum, rel=1e-6) and lp > optimum + 1e-3 * abs(optimum)


def test_partition_bound_with_pricing_stopped_at_its_node_limit_is_still_a_bound(pb: ModuleType) -> None:
    """Each pricing MILP stopped after one node: its dual bound stands in for the rep's least
    reduced cost, so the bound is weaker but never below the optimum."""
    m = _model("synthetic", 90, 4, 3)
    choice, optimum, _ = _held_optimum(m)
    res = pb.partition_bound(m, choice, rounds=10, nodes=1)
    assert res is not None and res.stopped > 0
    assert res.bound >= optimum - 1e-6 * abs(optimum)


def test_partition_bound_needs_a_start_inside_both_bands(pb: ModuleType) -> None:
    """The bound is on the divisions that hold both bands, as the start must: a start outside the
    count band gets none."""
    m = _model("synthetic", 90, 4, 3)
    choice, _, _ = _held_optimum(m)
    crowded = choice.copy()
    crowded[[g for g in range(len(m.groups)) if not m.held[g]]] = 0  # every movable group on one rep
    assert not m.feasible(crowded)
    assert pb.partition_bound(m, crowded) is None
