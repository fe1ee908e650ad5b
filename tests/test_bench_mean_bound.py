"""The bench's bound by intervals of the value band's mean (``bench/policies/mean_bound.py``): with
the value band on it lies between the exact optimum and the compact LP's bound, holds when every
interval stops at its work limit, finds the optimum where the search is let run, and is the same
every run."""

from __future__ import annotations

import itertools
from types import ModuleType

import numpy as np
import pytest
from scipy.optimize import milp

from bench_support import book_model, load_bench
from tasksync.policies.optimal.model import Model
from tasksync.policies.optimal.solve import Limits, solve_model


@pytest.fixture(scope="module")
def mb() -> ModuleType:
    return load_bench("mean_bound")


_model = book_model


def _compact_lp_bound(mb: ModuleType, m: Model, start: np.ndarray) -> float:
    w = mb.whole_programme(m, start)
    prog = w.prog
    res = milp(prog.c, constraints=prog.constraints, bounds=prog.bounds, integrality=np.zeros(len(prog.c)))
    assert res.status == 0
    return float(w.held - res.fun)


def _worse(m: Model, best: np.ndarray) -> np.ndarray:
    """The optimum with every third movable group sent to another candidate where no rep goes
    above a capacity: a start below the optimum, so the intervals have something to find."""
    out = best.copy()
    movers = [g for g in range(len(m.groups)) if not m.held[g] and len(m.cand[g]) > 1]
    for g in movers[::3]:
        for r in (int(r) for r in m.cand[g] if int(r) != int(best[g])):
            out[g] = r
            if m.excess(out) == (0.0, 0.0):
                break
        else:
            out[g] = best[g]
    return out


@pytest.mark.parametrize(("kind", "n", "r", "seed"), [("synthetic", 90, 4, 3), ("real-shaped", 60, 4, 4)])
def test_mean_bound_lies_between_the_optimum_and_the_lp_bound(
    mb: ModuleType, kind: str, n: int, r: int, seed: int
) -> None:
    m = _model(kind, n, r, seed)
    exact = solve_model(m, Limits(exact=True, exact_gap=0.0))
    assert exact.status == "optimal" and (exact.choice >= 0).all()
    optimum = m.objective(exact.choice)
    scale = max(abs(optimum), 1.0)
    start = _worse(m, exact.choice)
    assert m.objective(start) < optimum - 1e-6 * scale
    res = mb.mean_bound(m, start, intervals=3, refine=2, nodes=10_000)
    assert res is not None
    assert res.start == pytest.approx(m.objective(start), rel=1e-9)  # the programme prices as the model
    lo, hi = res.mean_range
    assert lo <= float(m.loads_for(exact.choice)[2].mean()) <= hi  # the optimum's mean is in the range
    assert res.bound >= optimum - 1e-6 * scale  # a bound: never below the optimum
    assert res.bound <= _compact_lp_bound(mb, m, start) + 1e-6 * scale  # at least as tight as the compact LP
    # Let run, the intervals find the optimum, and the division they return is worth what they say.
    assert res.best == pytest.approx(optimum, rel=1e-6)
    assert res.best_choice is not None and m.objective(res.best_choice) == pytest.approx(res.best, rel=1e-9)
    assert [iv.lo for iv in res.intervals] == sorted(iv.lo for iv in res.intervals)
    again = mb.mean_bound(m, start, intervals=3, refine=2, nodes=10_000)
    assert again.bound == res.bound and again.best == res.best and again.solves == res.solves
    assert [(iv.lo, iv.hi, iv.bound) for iv in again.intervals] == [(iv.lo, iv.hi, iv.bound) for iv in res.intervals]


def test_mean_bound_stopped_at_its_work_limits_is_still_a_bound(mb: ModuleType) -> None:
    """Every interval stopped after one node: a weaker bound, never below the optimum; the open
    interval with the highest bound is split in two and both halves solved again."""
    m = _model("synthetic", 90, 4, 3)
    exact = solve_model(m, Limits(exact=True, exact_gap=0.0))
    optimum = m.objective(exact.choice)
    res = mb.mean_bound(m, _worse(m, exact.choice), intervals=2, refine=1, nodes=1)
    assert res is not None and res.solves == 4 and len(res.intervals) == 3
    assert any(not iv.closed for iv in res.intervals)
    edges = [(iv.lo, iv.hi) for iv in res.intervals]
    assert edges[0][0] == res.mean_range[0] and edges[-1][1] == res.mean_range[1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))  # a partition of the range
    assert res.bound >= optimum - 1e-6 * max(abs(optimum), 1.0)


def test_mean_bound_without_a_value_band_is_none(mb: ModuleType) -> None:
    m = _model("synthetic", 90, 4, 3, value_band=0.0)
    assert mb.mean_bound(m, np.array([int(c[0]) for c in m.cand], dtype=np.int64)) is None
