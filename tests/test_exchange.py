"""Ejection chains and cyclic exchanges (``optimal/exchange.py``): the moves over three or more reps
that no pair re-division makes, the value band's moving mean, and the polish that runs them."""

from __future__ import annotations

import numpy as np
import pytest

from tasksync.policies.base import Rules
from tasksync.policies.model_eval import synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.policies.optimal import polish as polish_mod
from tasksync.policies.optimal.exchange import best_chain, exchange
from tasksync.policies.optimal.model import Group, Model, build_model
from tasksync.policies.reasons import Band
from tasksync.settings import PolicySettings


def tiny_model(net: list[list[float]], ev: list[list[float]], today: list[int], band: Band, value_band: float) -> Model:
    """One card per group, every group a candidate of every rep, no capacities, no fixed load."""
    n_g, n_r = len(net), len(net[0])
    m = Model(
        reps=[f"r{r}" for r in range(n_r)],
        groups=[Group(f"g{g}", [], f"r{today[g]}") for g in range(n_g)],
        count=np.ones(n_g),
        value_=np.ones(n_g),
        owner=np.array(today, dtype=np.int64),
        fixed=(np.zeros(n_r), np.zeros(n_r), np.zeros(n_r)),
        cap=np.full(n_r, np.inf),
        vcap=np.full(n_r, np.inf),
        band=band,
        value_band=value_band,
    )
    every = np.arange(n_r)
    for g in range(n_g):
        m.cand.append(every)
        m.score.append(np.array(net[g], dtype=float))
        m.ev.append(np.array(ev[g], dtype=float))
        m.move.append(np.zeros(n_r))
        m.held.append(False)
    m.band_penalty, m.value_penalty = 1_000.0, 10.0 if value_band else 0.0
    m.index()
    return m


def three_cycle(value_band: float = 0.0, ev: list[list[float]] | None = None) -> Model:
    """Three reps holding one group each, the count band exactly one: each group would gain 10 with
    the next rep and lose 100 with the one after, so every swap of two loses and the cycle of all
    three gains 30."""
    net = [[0.0, 10.0, -100.0], [-100.0, 0.0, 10.0], [10.0, -100.0, 0.0]]
    return tiny_model(net, ev or [[1.0] * 3] * 3, [0, 1, 2], Band(1.0, 1.0, 1.0), value_band)


def test_a_cyclic_exchange_of_three_reps_that_no_pair_can_make(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pair polish finds nothing (every two-rep re-division breaks the band or loses); the
    chains find the three-rep cycle, the objective rises by its 30 and the band holds."""
    m = three_cycle()
    choice = np.array([0, 1, 2])
    pairs_only = choice.copy()
    with monkeypatch.context() as mp:  # the pairs alone: no chains, no whole-book MILP
        mp.setattr(polish_mod, "EXCHANGE_ROUNDS", 0)
        mp.setattr(polish_mod, "whole_book", lambda m, choice: False)
        assert polish_mod.polish(m, pairs_only) == 0
    assert list(pairs_only) == [0, 1, 2]
    chain = best_chain(m, choice)
    assert chain is not None and chain.gain == pytest.approx(30.0)
    assert exchange(m, choice) == 1
    assert list(choice) == [1, 2, 0]
    assert m.objective(choice) == pytest.approx(30.0) and m.feasible(choice)
    again = np.array([0, 1, 2])
    assert polish_mod.polish(m, again) >= 1 and list(again) == [1, 2, 0]


def test_a_chain_that_moves_the_mean_out_from_under_a_rep_off_it_is_not_taken() -> None:
    """With the value band on (±20%), the cycle raises the expected value of every rep on it by
    10%: the mean rises, and a fourth rep off the cycle, at the band's lower edge, would fall below
    it. The exchange leaves that division as it is; with room at the fourth rep it takes the cycle."""
    net = [[0.0, 10.0, -100.0, -100.0], [-100.0, 0.0, 10.0, -100.0], [10.0, -100.0, 0.0, -100.0]]
    # (expected value of each cycle group with its rep today, of the fourth rep's group)
    for (own, fourth), taken in (((1.2, 0.9), False), ((1.0, 1.0), True)):
        # At the edge: a mean of (3 × 1.2 + 0.9) / 4 = 1.125 today, the fourth rep at its floor
        # 0.9; after the cycle the mean is 1.215 and the floor 0.972. With room: a mean of 1.0,
        # then 1.075, the floor 0.86.
        ev = [[own * (1.1 if r == (g + 1) % 3 else 1.0) for r in range(4)] for g in range(3)]
        m = tiny_model(
            [*net, [-100.0, -100.0, -100.0, 0.0]], [*ev, [fourth] * 4], [0, 1, 2, 3], Band(1.0, 1.0, 1.0), 0.2
        )
        choice = np.array([0, 1, 2, 3])
        assert m.feasible(choice)
        trial = np.array([1, 2, 0, 3])
        assert m.feasible(trial) is taken  # at the edge the cycle gains 30 of fit but breaks the band
        assert (exchange(m, choice) > 0) is taken
        assert m.feasible(choice)
        assert list(choice) == ([1, 2, 0, 3] if taken else [0, 1, 2, 3])


def polished(book_args: tuple[int, int, int]) -> tuple[Model, np.ndarray]:
    """A seeded synthetic book's model and its division after LP-and-fix and the pair polish (no
    chains)."""
    import tasksync.policies.optimal.solve as solve

    book = synthetic_book(*book_args)
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    out = solve.solve_model(m, solve.Limits(polish=False))
    choice = out.choice
    saved = polish_mod.EXCHANGE_ROUNDS
    try:
        polish_mod.EXCHANGE_ROUNDS = 0
        polish_mod.polish(m, choice)
    finally:
        polish_mod.EXCHANGE_ROUNDS = saved
    return m, choice


@pytest.mark.parametrize("book_args", [(400, 16, 7), (300, 15, 5)])
def test_chains_on_a_polished_book_raise_the_objective_within_both_bands(book_args: tuple[int, int, int]) -> None:
    """On a seeded book the pair polish has left at its local optimum, the chains never lower the
    objective, keep both bands and capacities, move only movable groups, and give the same division
    every time; on these books they find chains that pay."""
    m, start = polished(book_args)
    assert m.feasible(start)
    first, second = start.copy(), start.copy()
    done = exchange(m, first)
    exchange(m, second)
    assert np.array_equal(first, second)
    assert done > 0 and m.objective(first) > m.objective(start) + 1.0
    assert m.feasible(first)
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(first[held], start[held])


def test_no_chain_from_a_division_outside_a_band() -> None:
    """The exchange only starts from a division inside both bands and capacities (the rule the
    polish keeps: a change must hold them at least as well), so it leaves any other alone."""
    m = three_cycle()
    choice = np.array([0, 0, 2])  # rep 0 holds two cards, rep 1 none: outside the count band
    assert not m.feasible(choice)
    assert exchange(m, choice) == 0 and list(choice) == [0, 0, 2]


def test_plan_with_chains_settles_and_is_deterministic() -> None:
    """End to end on a seeded book where the chains pay: the plan is the same on every run and a
    re-run after applying it moves nothing."""
    from tasksync.policies.model_eval import apply_decisions

    book = synthetic_book(300, 15, 5)
    rules = Rules(PolicySettings(name="optimal"))
    first = OptimalPolicy().decide(book, rules)
    second = OptimalPolicy().decide(book, rules)
    assert {k: d.owner for k, d in first.by_key.items()} == {k: d.owner for k, d in second.by_key.items()}
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, rules)
    assert not [i.key for i in after.items if (d := again.by_key.get(i.key)) and d.owner not in (None, i.owner)]


def test_no_search_above_the_work_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``CHAIN_WORK`` (movable groups² + groups × reps: the size of the search's arrays) the
    exchange is not run, whatever it could find: its CPU stays bounded by a fixed size, not a clock."""
    from tasksync.policies.optimal import exchange as exchange_mod

    m = three_cycle()  # 3 groups, 3 reps: 18 cells
    monkeypatch.setattr(exchange_mod, "CHAIN_WORK", 17)
    choice = np.array([0, 1, 2])
    assert exchange(m, choice) == 0 and list(choice) == [0, 1, 2]
    monkeypatch.setattr(exchange_mod, "CHAIN_WORK", 18)
    assert exchange(m, choice) == 1 and list(choice) == [1, 2, 0]
