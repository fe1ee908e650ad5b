"""The big books' LP from the dual path's prices and a crash basis (policies/optimal/crash.py):
the whole LP's optimum, its duals, the same on every run; the path taken above ``SMALL_MOVERS``
movers only; and a plan that settles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import milp

import tasksync.policies.optimal.solve as solve
from tasksync.policies import Rules
from tasksync.policies.model_eval import apply_decisions, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, crash, fit_model
from tasksync.policies.optimal.crash import crash_lp, path_prices, usable
from tasksync.policies.optimal.dual import RepPrices, lp_prices, upper_bound
from tasksync.policies.optimal.model import Model, build_model
from tasksync.policies.optimal.programme import Programme, build_programme
from tasksync.settings import PolicySettings

pytestmark = pytest.mark.skipif(solve._Highs is None, reason="this scipy has no HiGHS object with a basis")


def _programme(cards: int, reps: int, seed: int) -> tuple[Model, Programme]:
    book = synthetic_book(cards, reps, seed=seed)
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    choice = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = [g for g in range(len(m.groups)) if not m.held[g]]
    return m, build_programme(m, movers, m.loads_for(choice, skip=set(movers)), False)


def test_the_crash_from_the_dual_path_reaches_the_whole_lp_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """From the path's prices HiGHS ends at the LP's optimum (solved on every column from scratch),
    with an answer feasible for the programme and duals under which no column prices in, and its
    prices bound the division's objective as tightly as the LP itself; twice the same."""
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)  # column generation's LP, for its duals
    m, prog = _programme(1200, 30, seed=21)
    assert usable(prog, m)
    full = milp(prog.c, constraints=prog.constraints, integrality=prog.integrality, bounds=prog.bounds)
    count, value = path_prices(m, prog)
    res = crash_lp(m, prog, count, value)
    assert res.status == 0 and res.fun == pytest.approx(full.fun, rel=1e-7)
    a = prog.constraints.A @ res.x
    assert np.all(a >= prog.constraints.lb - 1e-6) and np.all(a <= prog.constraints.ub + 1e-6)
    # The duals map back to the programme's: no column below its upper bound prices in.
    reduced = prog.c[: prog.n_x] - prog.constraints.A[:, : prog.n_x].T @ res.row_dual
    below = res.x[: prog.n_x] < 1 - 1e-9
    assert reduced[below].min() >= -1e-6 * np.abs(prog.c[: prog.n_x]).max()
    colgen, _, _ = solve.solve_lp(prog, np.ones(prog.n_x, dtype=bool), solve.Limits(), 0.0)
    bound = upper_bound(m, lp_prices(prog, colgen.row_dual, m))
    assert upper_bound(m, lp_prices(prog, res.row_dual, m)) == pytest.approx(bound, rel=1e-9)
    again = crash_lp(m, prog, *path_prices(m, prog))
    assert np.array_equal(again.x, res.x) and np.array_equal(again.row_dual, res.row_dual)
    # The path's prices are near the LP's: their Lagrangian bound within 0.1% of the LP's own.
    near = RepPrices(-count, -value, np.zeros(len(m.reps)), np.zeros(len(m.reps)))
    assert bound <= upper_bound(m, near) <= bound * 1.001


def test_big_books_take_the_dual_path_and_their_plans_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``SMALL_MOVERS`` movers (lowered here so a small book counts as big) the LP is the
    crash's, below it column generation's; the big path's plan is the same twice, holds both bands
    and leaves nothing to do once applied."""
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    m, _ = _programme(400, 10, seed=22)
    assert solve.solve_model(m, solve.Limits(polish=False)).method.startswith("lp")
    monkeypatch.setattr(solve, "SMALL_MOVERS", 0)
    crashed = solve.solve_model(m, solve.Limits())
    assert crashed.method.startswith("path+lp")
    # Prices too far off for the crash's work limit: column generation instead, the same LP optimum.
    monkeypatch.setattr(crash, "CRASH_PIVOTS", 1)
    fallback = solve.solve_model(m, solve.Limits())
    assert fallback.method.startswith("lp+") or fallback.method == "lp"
    assert m.objective(fallback.choice) == pytest.approx(m.objective(crashed.choice), rel=5e-3)
    monkeypatch.undo()
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    monkeypatch.setattr(solve, "SMALL_MOVERS", 0)
    book = synthetic_book(400, 10, seed=22)
    rules = Rules(PolicySettings(name="optimal"))
    first = OptimalPolicy().decide(book, rules)
    assert first.by_key == OptimalPolicy().decide(book, rules).by_key
    assert not [n for n in first.notes if "outside" in n or "not reachable" in n]
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []
