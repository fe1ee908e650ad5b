"""The polish's large-neighbourhood step (``tasksync.policies.optimal.neighbourhood``): exact
re-divisions of several reps at once by one MILP from the current division. On a small book the
whole book's MILP beats what the pairs and the chains leave; its division holds both bands, is
never worse than where it started, and is the same every run; the policy's plan with it settles."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from bench_support import book_model, load_bench
from tasksync.policies import base
from tasksync.policies.model_eval import apply_decisions, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.policies.optimal import neighbourhood as nb
from tasksync.policies.optimal import polish as polish_mod
from tasksync.policies.optimal.model import Model, build_model
from tasksync.policies.optimal.solve import Limits, solve_model
from tasksync.settings import PolicySettings


def _pairs_only(m: Model, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """The division LP-and-fix and the polish without its last step leave (pairs, chains)."""
    choice = solve_model(m, Limits(polish=False)).choice.copy()
    with monkeypatch.context() as mp:
        mp.setattr(polish_mod, "whole_book", lambda m, choice: False)
        polish_mod.polish(m, choice)
    return choice


def test_the_whole_book_milp_beats_the_pair_polish_and_holds_both_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    m = book_model("synthetic", 120, 6, 1)
    pairs = _pairs_only(m, monkeypatch)
    assert m.feasible(pairs)
    before = m.objective(pairs)
    after = pairs.copy()
    assert nb.whole_book(m, after)
    assert m.objective(after) > before * 1.005  # +0.66% on this book: the pairs and chains were stuck
    assert m.feasible(after)  # both bands and the capacities held exactly
    assert (after >= 0).all()
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(after[held], pairs[held])  # held groups stay where they are
    again = pairs.copy()
    nb.whole_book(m, again)
    assert np.array_equal(again, after)  # deterministic
    # From its own answer the step finds nothing more to keep (the polish's end state is stable).
    stable = after.copy()
    assert not nb.whole_book(m, stable) and np.array_equal(stable, after)


def test_a_three_rep_cycle_no_pair_can_make_is_one_whole_book_milp_away() -> None:
    """Hand-made (``test_exchange.three_cycle``): three reps, one group each, the count band exactly
    one; every swap of two loses, the cycle of all three gains 30. The whole book's MILP finds it."""
    from test_exchange import three_cycle

    m = three_cycle()
    choice = np.array([0, 1, 2])
    assert nb.whole_book(m, choice)
    assert list(choice) == [1, 2, 0] and m.objective(choice) == pytest.approx(30.0) and m.feasible(choice)


def test_the_polish_ends_with_the_whole_book_step_on_small_books(monkeypatch: pytest.MonkeyPatch) -> None:
    m = book_model("real-shaped", 100, 6, 1)
    pairs = _pairs_only(m, monkeypatch)
    full = solve_model(m, Limits()).choice
    assert m.objective(full) > m.objective(pairs) and m.feasible(full)


def test_above_its_size_the_whole_book_step_leaves_the_division_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    m = book_model("synthetic", 120, 6, 1)
    pairs = _pairs_only(m, monkeypatch)
    monkeypatch.setattr(nb, "WHOLE_MAX", 10)
    out = pairs.copy()
    assert not nb.whole_book(m, out)
    assert np.array_equal(out, pairs)


@pytest.mark.parametrize(("kind", "n", "r", "seed"), [("synthetic", 120, 6, 6), ("real-shaped", 100, 6, 2)])
def test_re_divisions_of_a_few_reps_never_lose_and_hold_the_bands(kind: str, n: int, r: int, seed: int) -> None:
    m = book_model(kind, n, r, seed)
    start = solve_model(m, Limits(polish=False)).choice
    assert m.feasible(start)
    first = start.copy()
    kept = nb.redivide(m, first, size=3, budget=6)
    assert m.objective(first) >= m.objective(start)
    assert m.feasible(first)
    assert (kept > 0) == (not np.array_equal(first, start))
    second = start.copy()
    assert nb.redivide(m, second, size=3, budget=6) == kept
    assert np.array_equal(first, second)
    sets = nb.neighbourhoods(m, start, ~np.asarray(m.held, dtype=bool), 3)
    assert sets and all(len(s) == 3 and list(s) == sorted(set(s)) for s in sets)
    assert len(set(sets)) == len(sets)


def test_the_policy_with_the_step_settles_and_repeats() -> None:
    book = synthetic_book(120, 6, 1)
    rules = base.Rules(PolicySettings(name="optimal"))
    first = OptimalPolicy().decide(book, rules)
    again = OptimalPolicy().decide(book, rules)
    assert [(k, d.owner) for k, d in first.by_key.items()] == [(k, d.owner) for k, d in again.by_key.items()]
    after = apply_decisions(book, first)
    replan = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in replan.by_key and replan.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []
    m = build_model(book, rules.policy, fit_model(book, rules.policy), True)
    ridx = {rep: i for i, rep in enumerate(m.reps)}
    owners = {k: d.owner for k, d in first.by_key.items()}
    choice = np.array([ridx.get(owners.get(g.items[0].key) or "", -1) for g in m.groups])
    assert m.feasible(choice)


@pytest.fixture(scope="module")
def bp() -> ModuleType:
    return load_bench("bench_polish")


def test_the_bench_s_mean_room_is_where_no_rep_leaves_its_value_band(bp: ModuleType) -> None:
    m = book_model("synthetic", 120, 6, 1)
    choice = solve_model(m, Limits()).choice
    room = bp.mean_room(m, choice)
    assert room is not None and room.lo <= room.mean <= room.hi
    e = m.loads_for(choice)[2]
    for mean, inside in (
        (room.lo, True),
        (room.hi, True),
        (room.lo * (1 - 1e-4), False),
        (room.hi * (1 + 1e-4), False),
    ):
        m.value_mean = mean
        assert (m.value_violation(e).max() <= 1e-7 * mean) == inside
    m.value_mean = None
    assert bp.mean_room(book_model("synthetic", 120, 6, 1, value_band=0.0), choice) is None


def _planned(book: base.Book, rules: base.Rules) -> tuple[float, bool, list[tuple[str, str | None]]]:
    """The policy's plan on ``book``: its objective on the exact model, whether it holds both bands
    and the capacities, and its owners."""
    dec = OptimalPolicy().decide(book, rules)
    m = build_model(book, rules.policy, fit_model(book, rules.policy), True)
    ridx = {rep: i for i, rep in enumerate(m.reps)}
    owners = {k: d.owner for k, d in dec.by_key.items()}
    choice = np.array([ridx.get(owners.get(g.items[0].key) or "", -1) for g in m.groups])
    return m.objective(choice), m.feasible(choice), [(k, d.owner) for k, d in dec.by_key.items()]


def test_above_the_whole_book_size_the_polish_re_divides_a_few_reps_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From ``REDIVIDE_MIN`` columns (here set to 0, the whole book's MILP off, so a small book
    stands in for the bench's 664-2,000-card ones) the polish ends with exact re-divisions of five
    reps at a time: on this book they beat what the pairs and chains leave by more than 2%; the
    plan holds both bands, is the same every run and settles."""
    book = synthetic_book(120, 6, 1)
    rules = base.Rules(PolicySettings(name="optimal"))
    monkeypatch.setattr(nb, "WHOLE_MAX", 0)
    monkeypatch.setattr(nb, "REDIVIDE_MIN", 0)
    with monkeypatch.context() as mp:
        mp.setattr(polish_mod, "POLISH_NEIGHBOURHOODS", 0)
        without, _, _ = _planned(book, rules)
    objective, feasible, plan = _planned(book, rules)
    assert objective > without * 1.02  # 472,020 -> 483,520 (+2.4%)
    assert feasible
    assert _planned(book, rules)[2] == plan
    after = apply_decisions(book, OptimalPolicy().decide(book, rules))
    replan = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in replan.by_key and replan.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []


def test_the_value_band_s_lower_edge_with_its_interior_gains_what_smaller_sets_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From ``EDGE_MIN`` columns (here 0, the whole book's MILP off, so a 300-card book stands in
    for the bench's 2,000-card one) the polish ends by re-dividing the reps at the value band's
    lower edge with the reps inside it (:func:`nb.reopen_edge`): the move the pinned mean forbids
    the pairs, the chains and the five-rep sets. On this book it gains over what they leave, holds
    both bands, keeps held groups where they are and is the same every run."""
    m = book_model("synthetic", 300, 10, 1)
    monkeypatch.setattr(nb, "WHOLE_MAX", 0)
    monkeypatch.setattr(nb, "REDIVIDE_MIN", 0)
    start = solve_model(m, Limits(polish=False)).choice.copy()
    left = start.copy()
    polish_mod.polish(m, left)  # pairs, chains, five-rep sets: EDGE_MIN (10,000) is above this book
    sets = nb.edge_sets(m, left)
    assert len(sets) == nb.EDGE_PARTS and not set(sets[0]) & set(sets[1])
    after = left.copy()
    assert nb.reopen_edge(m, after) > 0
    assert m.objective(after) > m.objective(left) * 1.001  # 1,171,111 -> 1,173,220 (+0.18%)
    assert m.feasible(after)
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(after[held], left[held])
    again = left.copy()
    nb.reopen_edge(m, again)
    assert np.array_equal(again, after)  # deterministic
    flat = book_model("synthetic", 300, 10, 1, value_band=0.0)
    assert nb.edge_sets(flat, left) == []  # no value band: no edge to re-open
