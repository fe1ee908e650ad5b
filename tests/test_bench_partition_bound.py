"""The bench's set-partitioning bound with both bands held, by intervals of the mean
(``bench/policies/partition_bound.py``): it prices the optimal policy's own objective, lies between
the optimum among band-holding divisions and the compact LP's bound, and is the same every run;
branch-and-price (on (account, rep) pairs, on a rep's card count or its expected value) only
tightens it and never below that optimum; the restricted master as a MILP
gives a division that holds both bands."""

from __future__ import annotations

import itertools
from types import ModuleType

import numpy as np
import pytest
from scipy.optimize import milp

from bench_support import book_model, load_bench
from tasksync.policies.optimal.model import Model

_model = book_model


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


def _below(m: Model, best: np.ndarray) -> np.ndarray:
    """``best`` with every fourth movable group on another candidate where both bands and the
    capacities still hold: a start below the optimum, so there is a better division to find."""
    out = best.copy()
    movers = [g for g in range(len(m.groups)) if not m.held[g] and len(m.cand[g]) > 1]
    for g in movers[::4]:
        for r in (int(r) for r in m.cand[g] if int(r) != int(best[g])):
            out[g] = r
            if m.feasible(out):
                break
        else:
            out[g] = best[g]
    return out


def test_branch_and_price_tightens_the_bound_and_never_passes_the_optimum(pb: ModuleType) -> None:
    """From a start below the optimum: column generation alone stops above the optimum with an
    interval at its LP bound; branching on (account, rep) pairs from there gives a tighter bound,
    still a bound, the same every run; the best division known (the integral masters' and the
    restricted master MILP's) holds both bands and is the optimum here."""
    m = _model("real-shaped", 40, 3, 1)
    best, optimum, _ = _held_optimum(m)
    start = _below(m, best)
    assert m.feasible(start) and m.objective(start) < optimum - 1e-4 * abs(optimum)
    scale = max(abs(optimum), 1.0)
    root = pb.partition_bound(m, start, rounds=80)
    assert root is not None and root.branched == 0
    assert root.bound > optimum + 1e-4 * scale  # column generation alone leaves a gap here
    bp = pb.partition_bound(m, start, rounds=80, branch=10, node_rounds=8, ip_nodes=50)
    assert bp is not None and bp.branched > 0 and max(iv.depth for iv in bp.intervals) > 0
    assert bp.bound >= optimum - 1e-6 * scale  # a bound: never below the optimum
    assert bp.bound < root.bound - 1e-4 * scale  # branching tightens it
    assert bp.best_choice is not None and m.feasible(bp.best_choice)  # a division holding both bands
    assert bp.best == pytest.approx(m.objective(bp.best_choice), rel=1e-9)
    assert bp.best == pytest.approx(optimum, rel=1e-9)
    assert bp.ip is not None and m.objective(start) <= bp.ip <= optimum + 1e-6 * scale
    again = pb.partition_bound(m, start, rounds=80, branch=10, node_rounds=8, ip_nodes=50)
    assert (again.bound, again.best, again.branched, again.pricings) == (bp.bound, bp.best, bp.branched, bp.pricings)
    assert [(iv.lo, iv.depth, iv.bound) for iv in again.intervals] == [
        (iv.lo, iv.depth, iv.bound) for iv in bp.intervals
    ]


@pytest.mark.parametrize("branching", ["count", "value"])
def test_branching_on_a_reps_load_keeps_a_bound_between_the_optimum_and_the_root(
    pb: ModuleType, branching: str
) -> None:
    """Branch-and-price on a rep's card count (at most the floor of the master's mix, or at least
    its ceiling) or on its expected value (at most the mix's, or at least): every child's columns
    keep its limits, the bound never passes the optimum nor rises above the root's, and it is the
    same every run."""
    m = _model("real-shaped", 40, 3, 1)
    best, optimum, _ = _held_optimum(m)
    start = _below(m, best)
    scale = max(abs(optimum), 1.0)
    root = pb.partition_bound(m, start, rounds=80)
    bp = pb.partition_bound(m, start, rounds=80, branch=10, node_rounds=8, branching=branching)
    assert root is not None and bp is not None and bp.branched > 0
    assert max(iv.depth for iv in bp.intervals) > 0
    assert optimum - 1e-6 * scale <= bp.bound <= root.bound + 1e-9 * scale
    if bp.best_choice is not None:
        assert m.feasible(bp.best_choice) and bp.best <= optimum + 1e-6 * scale
    again = pb.partition_bound(m, start, rounds=80, branch=10, node_rounds=8, branching=branching)
    assert (again.bound, again.best, again.branched, again.pricings) == (bp.bound, bp.best, bp.branched, bp.pricings)


def test_a_count_branch_prices_only_columns_inside_its_limit(pb: ModuleType) -> None:
    """A rep's pricing under a branch's card range gives only columns inside it, and a range no
    column fits gives none (no division at that node)."""
    m = _model("real-shaped", 80, 5, 4)
    choice, _, _ = _held_optimum(m)
    d = pb._data(m)
    mb = load_bench("mean_bound")
    run = pb._Run(m, d, [], {}, None, mb.whole_programme(m, choice, held=True), None, 0.05, choice)
    lo, hi = pb._mean_range(m, choice, m.objective(choice))
    dual = pb._compact_duals(run, lo, hi)
    assert dual is not None
    w, b = m.weights(), m.value_band
    r = 0
    e_lo, e_hi = (1 - b) * w[r] * lo, (1 + b) * w[r] * hi
    pr = pb._Pricer(m, d, r, 10_000, 1e-9, 4)
    free, cols, _, _ = pr.price(d, dual, e_lo, e_hi)
    assert cols
    n = cols[0].n
    for rng in ((pr.n_lo, n - 1), (n + 1, pr.n_hi)):
        if rng[0] > rng[1]:
            continue
        least, limited, _, _ = pr.price(d, dual, e_lo, e_hi, None, rng)
        assert least >= free - 1e-6 * max(abs(free), 1.0)  # a narrower knapsack: never a cheaper column
        assert all(rng[0] <= c.n <= rng[1] for c in limited)
    none, empty, _, _ = pr.price(d, dual, e_lo, e_hi, None, (n + 0.5, n + 0.5))
    assert none == np.inf and not empty


def test_restricted_master_milp_finds_a_band_holding_division(pb: ModuleType) -> None:
    """Without branching, the restricted master over the columns found, solved as a MILP, returns
    a division at least as good as the start that holds both bands and the capacities."""
    m = _model("synthetic", 90, 4, 3)
    best, optimum, _ = _held_optimum(m)
    start = _below(m, best)
    res = pb.partition_bound(m, start, rounds=20, ip_nodes=50)
    assert res is not None and res.ip is not None and res.ip >= m.objective(start)
    assert res.ip <= optimum + 1e-6 * abs(optimum)
    if res.best_choice is not None:
        assert m.feasible(res.best_choice) and res.best == pytest.approx(m.objective(res.best_choice), rel=1e-9)


@pytest.mark.parametrize("with_cuts", [False, True])
def test_pricing_fixed_by_reduced_costs_finds_the_same_least_reduced_cost(pb: ModuleType, with_cuts: bool) -> None:
    """A rep's pricing with the accounts its LP's reduced costs fix (from its last column, still a
    solution) left out gives the least reduced cost the whole knapsack gives, at duals it has not
    seen; also with subset-row cuts priced (their binaries and rows in that LP), triples of
    accounts some of them in the last column, at duals below 0."""
    m = _model("real-shaped", 80, 5, 4)
    choice, _, _ = _held_optimum(m)
    d = pb._data(m)
    mb = load_bench("mean_bound")
    whole = mb.whole_programme(m, choice, held=True)
    run = pb._Run(m, d, [], {}, None, whole, None, 0.05, choice)
    lo, hi = pb._mean_range(m, choice, m.objective(choice))
    dual = pb._compact_duals(run, lo, hi)
    assert dual is not None
    w, b = m.weights(), m.value_band
    rng = np.random.default_rng(5)
    spread = 0.01 if with_cuts else 0.1  # the duals' move: small enough that the last column stays near the least
    fixed_some = 0
    for r in range(len(m.reps)):
        e_lo, e_hi = (1 - b) * w[r] * lo, (1 + b) * w[r] * hi
        warm = pb._Pricer(m, d, r, 10_000, 1e-9, 4)
        warm.price(d, dual, e_lo, e_hi)  # its last column: the next call's upper bound
        assert warm.last is not None
        held = warm.xs[warm.last[: warm.n_x] > 0.5]
        cuts: tuple[tuple[int, int, int], ...] = ()
        if with_cuts:  # each cut: two accounts of the last column and one other candidate of the rep
            others = np.setdiff1d(warm.xs, held)
            cuts = tuple(
                (int(held[i]), int(held[(i + 1) % len(held)]), int(others[i % len(others)]))
                for i in range(min(len(held), 8))
            )
        for _ in range(3):
            rho = -rng.uniform(0.01, 0.05, len(cuts)) * float(np.median(np.abs(dual.pi)))
            moved = pb._Duals(
                dual.pi * rng.uniform(1 - spread, 1 + spread, len(dual.pi)),
                dual.sigma,
                dual.over,
                dual.under,
                dual.gamma,
                cuts,
                rho,
            )
            k = moved.k_e(r)
            cost = np.r_[warm.cx - moved.pi[warm.xs] - k * warm.ev_x, -moved.sigma[warm.ys] - k * warm.ev_y]
            none = np.zeros(0, dtype=np.int32)
            priced = warm._cut_pairs(moved)
            assert len(priced[1]) == len(cuts)
            zero, one = warm._reduced_cost_fixing(
                cost,
                (e_lo - warm.fixed_e, e_hi - warm.fixed_e),
                (none, none),
                (warm.n_lo, warm.n_hi),
                moved,
                priced if cuts else None,
            )
            fixed_some += int(len(zero) + len(one) > 0)
            least, cols, _, _ = warm.price(d, moved, e_lo, e_hi)
            cold = pb._Pricer(m, d, r, 10_000, 1e-9, 4)  # no last column: the whole knapsack
            least_all, _, _, _ = cold.price(d, moved, e_lo, e_hi)
            assert least == pytest.approx(least_all, rel=1e-9, abs=1e-6)
            assert cols and moved.rc(cols[0]) == pytest.approx(least_all, rel=1e-9, abs=1e-6)
    assert fixed_some > 0  # the fixing was used


def test_subset_row_cuts_tighten_the_bound_and_never_pass_the_optimum(pb: ModuleType) -> None:
    """Subset-row cuts on triples of accounts at an interval's LP bound, priced as one more binary
    per cut in each rep's knapsack: the bound is tighter than the LP's without them, never below
    the optimum among band-holding divisions, and the same every run; the master's columns
    crossing a cut (two of its three accounts or more) are those its row holds."""
    m = _model("real-shaped", 40, 3, 1)
    choice, optimum, _ = _held_optimum(m)
    scale = max(abs(optimum), 1.0)
    plain = pb.partition_bound(m, choice, rounds=200)
    cut = pb.partition_bound(m, choice, rounds=200, cut_rounds=3, cuts=20)
    assert plain is not None and cut is not None and plain.cuts == 0 and cut.cuts > 0
    assert cut.bound >= optimum - 1e-6 * scale  # a bound: never below the optimum
    assert cut.bound < plain.bound - 1e-4 * scale  # the cuts tighten it
    again = pb.partition_bound(m, choice, rounds=200, cut_rounds=3, cuts=20)
    assert (again.bound, again.cuts, again.rounds, again.pricings) == (cut.bound, cut.cuts, cut.rounds, cut.pricings)
    assert list(pb._crossed([(1, 2, 3), (4, 5, 6)], (2, 3, 5))) == [True, False]
