"""The polish's pair programmes: exact enumeration against HiGHS, and the same divisions as before."""

from __future__ import annotations

import numpy as np
import pytest

from tasksync.policies.base import Rules
from tasksync.policies.model_eval import synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.policies.optimal import polish as polish_mod
from tasksync.policies.optimal.model import Model, build_model
from tasksync.policies.optimal.pair import PairProgramme, Side, by_enumeration, by_highs, pair_programme, worth
from tasksync.settings import PolicySettings


def random_programme(
    rng: np.random.Generator, k: int, value_band: bool = True, tight_caps: bool = False
) -> PairProgramme:
    """A pair programme shaped like the polish's: accounts of 1-5 cards, both reps near both bands,
    today's division a random one that meets the hard caps (as today's loads always do)."""
    cnt = rng.integers(1, 6, k).astype(float)
    ev_a = rng.uniform(100.0, 5_000.0, k)
    ev_b = ev_a * rng.uniform(0.7, 1.3, k)
    val = ev_a * rng.uniform(2.0, 4.0, k)
    today = rng.random(k) < 0.5
    half_c, half_e = float(cnt.sum()) / 2, float(ev_a.sum()) / 2

    def side(mine: np.ndarray, ev: np.ndarray) -> Side:
        n_now, v_now = 10.0 + float(cnt[mine].sum()), 9_000.0 + float(val[mine].sum())
        cap_n = n_now + (float(rng.integers(0, 3)) if tight_caps else 1e9)
        cap_v = v_now + (float(rng.uniform(0.0, 4_000.0)) if tight_caps else 1e12)
        hi, lo = (3_000.0 + half_e * 1.2, 3_000.0 + half_e * 0.8) if value_band else (np.inf, -np.inf)
        return Side(10.0, 9_000.0, 3_000.0, hi, lo, cap_n, cap_v)

    return PairProgramme(
        d=rng.normal(0.0, 800.0, k),
        cnt=cnt,
        val=val,
        ev_a=ev_a,
        ev_b=ev_b,
        a=side(today, ev_a),
        b=side(~today, ev_b),
        lower=10.0 + half_c * 0.9,
        upper=10.0 + half_c * 1.1,
        band_penalty=4_000.0,
        value_penalty=0.8 if value_band else 0.0,
        value_band=value_band,
        today=today,
    )


@pytest.mark.parametrize("value_band", [True, False])
@pytest.mark.parametrize("tight_caps", [False, True])
def test_enumeration_finds_highs_optimum_on_random_pair_programmes(value_band: bool, tight_caps: bool) -> None:
    """On random pair programmes of 1-12 groups the enumeration's best division is worth what
    HiGHS proves optimal (run to optimality: no node limit, no gap), and meets both reps' caps."""
    rng = np.random.default_rng(11 + 2 * value_band + tight_caps)
    for _ in range(40):
        p = random_programme(rng, int(rng.integers(1, 13)), value_band, tight_caps)
        mine = by_enumeration(p)
        exact = by_highs(p, nodes=None, gap=0.0)
        assert exact is not None
        w_mine, ok_mine = worth(p, mine)
        w_exact, ok_exact = worth(p, exact)
        assert ok_mine and ok_exact
        assert w_mine == pytest.approx(w_exact, rel=1e-7, abs=1e-6)


def test_enumeration_keeps_todays_division_on_a_tie() -> None:
    """Ties go to today's division, then to the lowest index: two identical groups, either with
    either rep, the same worth every way they are split one each."""
    one = np.array([1.0, 1.0])
    s = Side(5.0, 0.0, 0.0, np.inf, -np.inf, 1e9, 1e12)
    base = PairProgramme(np.zeros(2), one, one, one, one, s, s, 6.0, 6.0, 10.0, 0.0, False, np.array([False, True]))
    assert list(by_enumeration(base)) == [False, True]  # today's, though [True, False] is as good
    swapped = PairProgramme(
        np.zeros(2), one, one, one, one, s, s, 6.0, 6.0, 10.0, 0.0, False, np.array([True, True])
    )  # today's (both with a) breaks the band: of the two best, the lowest index (group 0 with a)
    assert list(by_enumeration(swapped)) == [True, False]


def test_enumeration_respects_a_capacity_that_today_already_exceeds() -> None:
    """A rep above its capacity may keep today's load but take no more: the division that would
    pay most (everything to a) is not allowed."""
    one = np.ones(3)
    a = Side(0.0, 0.0, 0.0, np.inf, -np.inf, 2.0, 1e12)  # today a holds two of the three
    b = Side(0.0, 0.0, 0.0, np.inf, -np.inf, 1e9, 1e12)
    p = PairProgramme(
        np.array([5.0, 4.0, 3.0]), one, one, one, one, a, b, 0.0, 9.0, 1.0, 0.0, False, np.array([False, True, True])
    )
    out = by_enumeration(p)
    assert list(out) == [True, True, False]  # the two most valuable, no more
    assert worth(p, np.ones(3, dtype=bool))[1] is False


def model_of(book_args: tuple[int, int, int]) -> tuple[Model, np.ndarray]:
    """The model of a seeded synthetic book and LP-and-fix's division of it, before the polish."""
    import tasksync.policies.optimal.solve as solve

    book = synthetic_book(*book_args)
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    real = solve.polish
    try:
        solve.polish = lambda m, choice: 0  # type: ignore[assignment]
        out = solve.solve_model(m, solve.Limits())
    finally:
        solve.polish = real
    return m, out.choice


def test_pair_programmes_of_a_real_model_enumerate_to_highs_optimum() -> None:
    """The programmes the polish builds on a seeded book (every pair of reps, LP-and-fix's division):
    the enumeration's worth is HiGHS's optimum wherever the pair is small enough to enumerate."""
    m, choice = model_of((200, 14, 3))
    free = ~np.asarray(m.held, dtype=bool)
    seen = 0
    for a in range(len(m.reps)):
        for b in range(a + 1, len(m.reps)):
            mine = np.flatnonzero(free & ((choice == a) | (choice == b)))
            sub = mine[(m.pos_d[mine, a] >= 0) & (m.pos_d[mine, b] >= 0)]
            if not 2 <= len(sub) <= 10:
                continue
            p = pair_programme(m, choice, sub, a, b)
            exact = by_highs(p, nodes=None, gap=0.0)
            assert exact is not None
            assert worth(p, by_enumeration(p))[0] == pytest.approx(worth(p, exact)[0], rel=1e-9, abs=1e-6)
            seen += 1
            if seen == 60:
                return
    assert seen >= 20


@pytest.mark.parametrize("book_args", [(400, 25, 9), (200, 12, 9), (150, 10, 2)])
def test_polish_keeps_the_divisions_highs_found(
    book_args: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enumerating the small pairs changes nothing the polish finds on these seeded books: the same
    polished division as with HiGHS solving every pair (as before), and the enumeration was used."""
    m, start = model_of(book_args)
    with_highs = start.copy()
    monkeypatch.setattr(polish_mod, "ENUM_MAX", 0)
    kept_highs = polish_mod.polish(m, with_highs)
    monkeypatch.undo()
    enumerated: list[int] = []
    real = polish_mod.by_enumeration

    def counted(p: PairProgramme) -> np.ndarray:
        enumerated.append(p.k)
        return real(p)

    monkeypatch.setattr(polish_mod, "by_enumeration", counted)
    mine = start.copy()
    assert polish_mod.polish(m, mine) == kept_highs
    assert enumerated and np.array_equal(mine, with_highs)


def test_small_book_plan_is_the_same_with_and_without_enumeration(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the policy's decisions on a seeded book whose pairs are small are the same with
    the enumeration as with HiGHS on every pair."""
    book = synthetic_book(200, 14, 3)
    rules = Rules(PolicySettings(name="optimal"))
    fast = OptimalPolicy().decide(book, rules)
    monkeypatch.setattr(polish_mod, "ENUM_MAX", 0)
    slow = OptimalPolicy().decide(book, rules)
    assert {k: d.owner for k, d in fast.by_key.items()} == {k: d.owner for k, d in slow.by_key.items()}


def test_narrow_re_deals_take_the_groups_that_would_gain_most_from_each_side() -> None:
    """A narrow re-deal re-opens, of each rep's groups, those whose fit would rise most with the
    other rep (half from each; the rest from the other rep when one holds fewer)."""
    m, choice = model_of((150, 10, 2))
    free = ~np.asarray(m.held, dtype=bool)
    a, b = 0, 1
    mine = np.flatnonzero(free & ((choice == a) | (choice == b)))
    sub = mine[(m.pos_d[mine, a] >= 0) & (m.pos_d[mine, b] >= 0)]
    assert len(sub) > 4
    picked = polish_mod._narrow(m, choice, sub, a, b, 4)
    gain = {
        int(g): float(m.net_d[g, b] - m.net_d[g, a]) if choice[g] == a else float(m.net_d[g, a] - m.net_d[g, b])
        for g in sub
    }
    for side in (a, b):
        own = sorted((g for g in sub.tolist() if choice[g] == side), key=lambda g: (-gain[g], g))
        want = own[: max(2, 4 - sum(1 for g in sub.tolist() if choice[g] != side))]
        assert set(want) <= set(picked.tolist())
    assert len(picked) == 4 and list(picked) == sorted(picked)


def test_narrow_re_deals_go_on_where_the_pair_budget_ends() -> None:
    """When the pairs' budget runs out before every pair was tried, the narrow re-deals after it
    raise the objective further, keep both bands and capacities, move only movable groups, and
    give the same division every time."""
    m, start = model_of((900, 18, 5))
    without = start.copy()
    saved = polish_mod.NARROW_BUDGET
    try:
        polish_mod.NARROW_BUDGET = 0
        polish_mod.polish(m, without, budget=40)
    finally:
        polish_mod.NARROW_BUDGET = saved
    first, second = start.copy(), start.copy()
    polish_mod.polish(m, first, budget=40)
    polish_mod.polish(m, second, budget=40)
    assert np.array_equal(first, second)
    assert m.objective(first) > m.objective(without) + 1.0
    assert m.feasible(first)
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(first[held], start[held])
