"""The optimal (MILP) division policy: constraints, infeasibility notes, rebalance mode, stability."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tasksync.crm.records import Account, CrmData, Deal, Rep
from tasksync.policies import Book, Decision, Reason, ReasonKind, Rules, WorkItem, get_policy
from tasksync.policies.base import Decisions
from tasksync.policies.model_eval import apply_decisions, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, Scorer, fit_model, workload_stats
from tasksync.policies.optimal.model import Model, build_model
from tasksync.policies.optimal.programme import Programme, build_programme
from tasksync.policies.scoring import WinModel, fit_bonus
from tasksync.settings import PolicySettings

TODAY = date(2026, 6, 1)


def make_book(
    reps: list[Rep],
    tasks: list[tuple[str, str, str | None, bool]],
    value: float = 1000.0,
    values: list[float] | None = None,
) -> Book:
    """``tasks``: (task id, account id, current owner, locked); ``values``: deal value per task (else ``value``)."""
    accounts = {a: Account(a, f"Account {a}", sector="software") for _, a, _, _ in tasks}
    items = []
    deals = []
    for k, (tid, acc, owner, locked) in enumerate(tasks):
        d = Deal(f"d-{tid}", f"deal {tid}", "Lead", acc, values[k] if values else value, TODAY)
        deals.append(d)
        items.append(WorkItem(tid, f"task {tid}", tid, "Doing", d, accounts[acc], owner, locked=locked, pinned=locked))
    crm = CrmData(reps=reps, accounts=list(accounts.values()), deals=deals)
    return Book(reps, {r.id: r.id for r in reps}, items, crm, [], TODAY)


def text(d: Decision) -> str:
    """The decision's reason in words."""
    return d.reason.text() if isinstance(d.reason, Reason) else (d.reason or "")


def owners_of(book: Book, dec: Decisions) -> dict[str, str | None]:
    return {i.key: (dec.by_key[i.key].owner if i.key in dec.by_key else None) or i.owner for i in book.items}


def settings(**kw: object) -> Rules:
    return Rules(PolicySettings(name="optimal", **kw))  # type: ignore[arg-type]


def test_registered_by_name() -> None:
    assert isinstance(get_policy("optimal"), OptimalPolicy)


def test_vectorised_scores_match_the_scalar_model() -> None:
    book = synthetic_book(300, 8, seed=3)
    s = settings()
    wm = WinModel.fit(book.crm.history, book.crm, 20.0, today=book.today)
    reps = sorted(book.reps, key=lambda r: r.id)
    items = book.items[:50]
    block = Scorer(items, reps, wm, s.policy).block(np.arange(len(items)))
    for a, item in enumerate(items):
        for b, rep in enumerate(reps):
            want = wm.expected_value(item, rep.id) * (1 + fit_bonus(item, rep, s.policy))
            assert block[a, b] == pytest.approx(want, rel=1e-9)


def test_capacity_is_respected() -> None:
    reps = [Rep("a", "A", capacity=2), Rep("b", "B", capacity=10)]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False) for k in range(8)])
    owners = owners_of(book, OptimalPolicy().decide(book, settings(band=0.5)))
    assert Counter(owners.values())["a"] <= 2
    assert all(o in ("a", "b") for o in owners.values())


def test_away_reps_get_nothing_and_lose_their_tasks() -> None:
    reps = [Rep("a", "A"), Rep("b", "B"), Rep("c", "C", available=False)]
    tasks = [(f"t{k}", f"acc{k}", "c" if k < 4 else None, False) for k in range(8)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings())
    owners = owners_of(book, dec)
    assert "c" not in owners.values()
    assert all("C is away" in text(dec.by_key[f"t{k}"]) for k in range(4))
    # Without move_from_unavailable the away rep's tasks stay, and still nobody new goes to them.
    dec = OptimalPolicy().decide(book, settings(move_from_unavailable=False))
    owners = owners_of(book, dec)
    assert [owners[f"t{k}"] for k in range(4)] == ["c"] * 4
    assert all(owners[f"t{k}"] in ("a", "b") for k in range(4, 8))


def test_band_holds_when_feasible() -> None:
    book = synthetic_book(600, 12, seed=5)
    s = settings(band=0.1)
    dec = OptimalPolicy().decide(book, s)
    owners = owners_of(book, dec)
    avail = {r.id for r in book.available_reps}
    loads = Counter(o for o in owners.values() if o in avail)
    mean = sum(loads.values()) / len(avail)
    assert all(mean * 0.9 - 1e-6 <= loads[r] <= mean * 1.1 + 1e-6 for r in avail), (loads, mean, dec.notes)
    assert max(loads.values()) / mean <= 1.1 + 1e-6


def test_both_bands_hold_at_once() -> None:
    """Open cards within ±10% and expected value (with the rep who holds the card) within ±20%
    of the means of available reps, in one division; a rep outside a band is named in the notes."""
    book = synthetic_book(600, 12, seed=6)
    dec = OptimalPolicy().decide(book, settings(band=0.10, value_band=0.20))
    owners = owners_of(book, dec)
    wm = dec.model
    assert wm is not None
    avail = {r.id for r in book.available_reps}
    count: Counter[str] = Counter()
    ev: dict[str, float] = defaultdict(float)
    for i in book.items:
        if owners[i.key] in avail:
            count[owners[i.key]] += 1
            ev[owners[i.key]] += wm.expected_value(i, owners[i.key])
    cb, vb = dec.bands["count"], dec.bands["value"]
    assert vb.mean == pytest.approx(sum(ev.values()) / len(avail))
    assert vb.lower == pytest.approx(vb.mean * 0.8) and vb.upper == pytest.approx(vb.mean * 1.2)
    names = {r.id: r.name for r in book.reps}
    for r in avail:
        if not cb.lower <= count[r] <= cb.upper:
            assert any("count band" in n and names[r] in n for n in dec.notes), (r, count[r], dec.notes)
        if not vb.lower - 1e-6 <= ev[r] <= vb.upper + 1e-6:
            assert any("value band" in n and names[r] in n for n in dec.notes), (r, ev[r], dec.notes)
    _, cv = workload_stats(list(ev.values()))
    off = OptimalPolicy().decide(book, settings(band=0.10, value_band=0.0))
    ev_off: dict[str, float] = defaultdict(float)
    for i in book.items:
        o = off.by_key[i.key].owner if i.key in off.by_key else None
        if (o := o or i.owner) in avail:
            ev_off[o] += wm.expected_value(i, o)
    assert cv <= 0.2 < workload_stats(list(ev_off.values()))[1]  # the value band is what evens value out


def test_one_rep_per_account_and_locked_owner_wins() -> None:
    reps = [Rep("a", "A"), Rep("b", "B")]
    tasks = [("t1", "x", "a", False), ("t2", "x", "b", True), ("t3", "x", None, False)]
    tasks += [(f"u{k}", f"y{k}", None, False) for k in range(3)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings(band=1.0))
    owners = owners_of(book, dec)
    assert owners["t1"] == owners["t2"] == owners["t3"] == "b"
    assert dec.by_key["t2"].owner is None  # a locked task's owner is never changed


def test_locked_load_counts_towards_the_band() -> None:
    reps = [Rep("a", "A"), Rep("b", "B")]
    tasks = [(f"l{k}", f"la{k}", "a", True) for k in range(4)] + [(f"t{k}", f"acc{k}", None, False) for k in range(4)]
    book = make_book(reps, tasks)
    owners = owners_of(book, OptimalPolicy().decide(book, settings(band=0.0)))
    assert Counter(owners.values()) == {"a": 4, "b": 4}


def test_capacity_shortfall_is_explained_not_raised() -> None:
    reps = [Rep("a", "A", capacity=1), Rep("b", "B", capacity=2)]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False) for k in range(5)])
    dec = OptimalPolicy().decide(book, settings())
    assert any("capacity of 2 available reps totals 3 < 5 open cards" in n for n in dec.notes), dec.notes
    owners = owners_of(book, dec)
    assert Counter(owners.values())["a"] <= 1 and Counter(owners.values())["b"] <= 2


def test_unreachable_band_names_the_reps() -> None:
    reps = [Rep("a", "A"), Rep("b", "B")]
    tasks = [(f"t{k}", "big", None, False) for k in range(6)] + [("s", "small", None, False)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings(band=0.1))
    note = next(n for n in dec.notes if "count band" in n and "not met" in n)
    assert "A (" in note and "B (" in note and "account sizes" in note
    assert not any("reachable" in n or "time limit" in n for n in dec.notes)  # a data cause, no time-out


def test_a_band_no_whole_number_fits_is_the_whole_numbers_around_the_mean() -> None:
    reps = [Rep("a", "A"), Rep("b", "B")]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False) for k in range(7)])  # mean 3.5: ±10% is 3.15–3.85
    dec = OptimalPolicy().decide(book, settings(band=0.1))
    assert sorted(Counter(owners_of(book, dec).values()).values()) == [3, 4]
    assert (dec.bands["count"].lower, dec.bands["count"].upper) == (3.0, 4.0)
    assert not any("count band" in n for n in dec.notes), dec.notes


def test_no_available_rep() -> None:
    book = make_book([Rep("a", "A", available=False)], [("t", "x", "a", False)])
    dec = OptimalPolicy().decide(book, settings())
    assert any("no available rep" in n for n in dec.notes)
    assert all(d.owner is None for d in dec.by_key.values())


def test_deterministic_and_idempotent() -> None:
    book = synthetic_book(800, 16, seed=11)
    s = settings()
    first = OptimalPolicy().decide(book, s)
    assert first.by_key == OptimalPolicy().decide(book, s).by_key
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, s)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []
    assert all(again.by_key[k].priority == first.by_key[k].priority for k in first.by_key)


def test_beats_greedy_and_round_robin_on_the_same_objective() -> None:
    book = synthetic_book(1000, 20, seed=2)
    s = settings()
    ev = OptimalPolicy(exact=True)
    ours = ev.evaluate(book, s, owners_of(book, OptimalPolicy().decide(book, s)))
    for name in ("balanced", "round-robin"):
        theirs = ev.evaluate(book, s, owners_of(book, get_policy(name).decide(book, s)))
        assert ours > theirs, name


def test_close_to_the_exact_optimum() -> None:
    book = synthetic_book(400, 10, seed=4)
    s = settings(value_band=0.0)  # the exact MILP proves optimality quickly with one band
    exact = OptimalPolicy(exact=True)
    best = exact.evaluate(book, s, owners_of(book, exact.decide(book, s)))
    ours = exact.evaluate(book, s, owners_of(book, OptimalPolicy().decide(book, s)))
    assert ours <= best + 1e-6 * abs(best)
    assert (best - ours) / abs(best) <= 0.01


def test_rebalance_moves_only_what_the_band_needs() -> None:
    reps = [Rep("a", "A"), Rep("b", "B"), Rep("c", "C"), Rep("d", "D", available=False)]
    tasks = [(f"a{k}", f"aa{k}", "a", False) for k in range(10)]
    tasks += [(f"b{k}", f"bb{k}", "b", False) for k in range(5)]
    tasks += [(f"c{k}", f"cc{k}", "c", False) for k in range(5)]
    tasks += [(f"d{k}", f"dd{k}", "d", False) for k in range(4)]
    book = make_book(reps, tasks)  # 24 tasks, mean 8 over three available reps
    dec = OptimalPolicy().decide(book, settings(band=0.0, rebalance_only=True))
    owners = owners_of(book, dec)
    assert Counter(owners.values()) == {"a": 8, "b": 8, "c": 8}
    moved = [i for i in book.items if owners[i.key] != i.owner]
    assert len(moved) == 2 + 4  # two from A (above the band) and the away rep's four
    for i in moved:
        reason = text(dec.by_key[i.key])
        assert ("A above the band" in reason) if i.owner == "a" else ("D is away" in reason)


def test_move_cost_keeps_current_owners() -> None:
    book = synthetic_book(500, 10, seed=8)
    cheap = OptimalPolicy()
    cheap.decide(book, settings(move_cost=0.0, band=0.3))
    dear = OptimalPolicy()
    dear.decide(book, settings(move_cost=5.0, band=0.3))
    assert dear.info.moved < cheap.info.moved


def test_every_moved_task_says_why() -> None:
    book = synthetic_book(500, 10, seed=9)
    dec = OptimalPolicy().decide(book, settings())
    owners = owners_of(book, dec)
    moved = [dec.by_key[i.key].reason for i in book.items if owners[i.key] != i.owner]
    assert moved
    assert all(isinstance(r, Reason) and r.kind not in (ReasonKind.KEPT, ReasonKind.OTHER) for r in moved)
    assert all(isinstance(r, Reason) and r.text() for r in moved)


def test_workload_stats() -> None:
    assert workload_stats([10, 10, 10]) == (1.0, 0.0)
    mx, cv = workload_stats([5, 15])
    assert mx == pytest.approx(1.5) and cv == pytest.approx(0.5)


@st.composite
def small_books(draw: st.DrawFn) -> Book:
    n_reps = draw(st.integers(1, 5))
    reps = [
        Rep(
            f"r{k}",
            f"R{k}",
            capacity=draw(st.one_of(st.none(), st.integers(0, 8))),
            capacity_value=draw(st.one_of(st.none(), st.floats(0, 5e5))),
            available=draw(st.booleans()) if k else True,
        )
        for k in range(n_reps)
    ]
    n_tasks = draw(st.integers(1, 14))
    tasks = []
    for k in range(n_tasks):
        acc = f"acc{draw(st.integers(0, max(1, n_tasks // 2)))}"
        owner = draw(st.one_of(st.none(), st.sampled_from([r.id for r in reps])))
        tasks.append((f"t{k}", acc, owner, owner is not None and draw(st.integers(0, 9)) == 0))
    values = draw(st.lists(st.floats(0, 1e5), min_size=n_tasks, max_size=n_tasks))
    return make_book(reps, tasks, values=values)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_books(), st.floats(0.0, 0.5), st.booleans())
def test_property_capacity_availability_unity(book: Book, band: float, rebalance: bool) -> None:
    dec = OptimalPolicy().decide(book, settings(band=band, rebalance_only=rebalance))
    avail = {r.id for r in book.available_reps}
    owners = owners_of(book, dec)
    for i in book.items:
        d = dec.by_key.get(i.key)
        if i.locked and d is not None:
            assert d.owner in (None, i.owner)
        if d is not None and d.owner is not None and d.owner != i.owner:
            assert d.owner in avail  # nothing new for away reps
    assert_capacities(book, owners)
    # One rep per account among the tasks the policy placed.
    placed: dict[str, set[str | None]] = defaultdict(set)
    for i in book.items:
        d = dec.by_key.get(i.key)
        if i.managed and d is not None and d.owner is not None:
            placed[i.group].add(d.owner)
    assert all(len(v) == 1 for v in placed.values())


def assert_capacities(book: Book, owners: dict[str, str | None]) -> None:
    """No rep gains tasks beyond its capacity, nor open pipeline beyond its value capacity."""
    reps = {r.id: r for r in book.reps}
    before = Counter(i.owner for i in book.items)
    after = Counter(owners.values())
    for rid, n in after.items():
        cap = reps[rid].capacity if rid in reps else None
        if cap is not None and n > before[rid]:
            assert n <= cap
    v_before: Counter[str | None] = Counter()
    v_after: Counter[str | None] = Counter()
    for i in book.items:
        v_before[i.owner] += i.value
        v_after[owners[i.key]] += i.value
    for rid, v in v_after.items():
        vcap = reps[rid].capacity_value if rid in reps else None
        if vcap is not None and v > v_before[rid] + 1e-6:
            assert v <= vcap + 1e-6 * max(vcap, 1.0), (rid, v, vcap, v_before[rid])


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_books(), st.floats(0.0, 0.5))
def test_property_balanced_capacities(book: Book, band: float) -> None:
    dec = get_policy("balanced").decide(book, settings(band=band))
    assert_capacities(book, owners_of(book, dec))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(small_books(), st.floats(0.1, 0.5))
def test_property_idempotent_with_capacities(book: Book, band: float) -> None:
    s = settings(band=band)
    first = OptimalPolicy().decide(book, s)
    # Today's division is kept when it meets every constraint; an unreachable band or capacity
    # leaves ties between equally bad divisions, which a re-run may break differently.
    blocked = ("not reachable", "totals", "exceed", "still above", "fit no rep", "below the band's lower")
    assume(not any(b in n for n in first.notes for b in blocked))
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, s)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == [], (first.notes, again.notes)


def test_rebalance_after_capacity_cut_moves_only_the_excess() -> None:
    reps = [Rep("a", "A", capacity=3), Rep("b", "B"), Rep("c", "C")]
    tasks = [(f"a{k}", f"aa{k}", "a", False) for k in range(6)]
    tasks += [(f"b{k}", f"bb{k}", "b", False) for k in range(6)]
    tasks += [(f"c{k}", f"cc{k}", "c", False) for k in range(6)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings(band=1.0, rebalance_only=True))
    owners = owners_of(book, dec)
    moved = [i for i in book.items if owners[i.key] != i.owner]
    assert len(moved) == 3 and all(i.owner == "a" for i in moved)
    assert all("A over capacity (their accounts hold 6 tasks > 3)" in text(dec.by_key[i.key]) for i in moved)
    assert Counter(owners.values())["a"] == 3


def test_sparse_scores_match_the_scalar_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasksync.policies.optimal.candidates as candidates

    monkeypatch.setattr(candidates, "FULL_MODEL", 0)  # force the big-book path
    book = synthetic_book(400, 30, seed=12)
    s = settings(candidate_reps=6)
    pol = OptimalPolicy()
    wm = fit_model(book, s.policy)
    m = build_model(book, s.policy, wm, exact=False)
    reps = {r.id: r for r in book.reps}
    for gi, g in enumerate(m.groups):
        for pos, r in enumerate(m.cand[gi].tolist()):
            rep = reps[m.reps[r]]
            want = sum(wm.expected_value(i, rep.id) * (1 + fit_bonus(i, rep, s.policy)) for i in g.items)
            assert m.score[gi][pos] == pytest.approx(want, rel=1e-9)
    assert any(len(c) > 1 for c in m.cand) and all(len(c) < 30 for c in m.cand)
    dec = pol.decide(book, s)
    owners = owners_of(book, dec)
    avail = {r.id for r in book.available_reps}
    loads = Counter(o for o in owners.values() if o in avail)
    mean = sum(loads.values()) / len(avail)
    assert all(mean * 0.9 - 1 <= loads[r] <= mean * 1.1 + 1 for r in avail), dec.notes


def test_dense_lookups_and_loads_match_the_candidate_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's (group, rep) lookups and its vectorised loads agree with the per-group
    candidate lists, on a big-book model where most pairs are not candidates."""
    import tasksync.policies.optimal.candidates as candidates

    monkeypatch.setattr(candidates, "FULL_MODEL", 0)
    book = synthetic_book(400, 30, seed=12)
    s = settings(candidate_reps=6)
    m = build_model(book, s.policy, fit_model(book, s.policy), exact=False)
    for gi in range(len(m.groups)):
        cand = m.cand[gi].tolist()
        for r in range(len(m.reps)):
            assert m.is_candidate(gi, r) == (r in cand)
            if r in cand:
                pos = cand.index(r)
                assert m.pos(gi, r) == pos
                assert m.net(gi, r) == float(m.score[gi][pos] - m.move[gi][pos])
                assert m.amounts(gi, r)[2] == float(m.ev[gi][pos])
    rng = np.random.default_rng(5)
    choice = np.array([int(rng.choice(c)) if rng.random() < 0.8 else -1 for c in m.cand], dtype=np.int64)

    def by_hand(skip: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        want = (m.fixed[0].copy(), m.fixed[1].copy(), m.fixed[2].copy())
        for gi in range(len(m.groups)):
            if gi in skip:
                continue
            if choice[gi] >= 0:
                pos = m.cand[gi].tolist().index(int(choice[gi]))
                for load, amount in zip(want, (m.count[gi], m.value_[gi], m.ev[gi][pos]), strict=True):
                    load[int(choice[gi])] += amount
            else:
                r_own, n_own, v_own, e_own = m.own(gi)
                for load, amount in zip(want, (n_own, v_own, e_own), strict=True):
                    np.add.at(load, r_own, amount)
        return want

    for skip in (set(), {1, 4, 9}):
        for a, b in zip(m.loads_for(choice, skip=skip), by_hand(skip), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    n, _, e = by_hand(set())
    want_obj = (
        sum(
            float(m.score[g][m.cand[g].tolist().index(r)] - m.move[g][m.cand[g].tolist().index(r)])
            for g, r in enumerate(choice.tolist())
            if r >= 0
        )
        - m.band_penalty * float(m.count_violation(n).sum())
        - m.value_penalty * float(m.value_violation(e).sum())
    )
    assert any(choice < 0) and m.objective(choice) == pytest.approx(want_obj, rel=1e-12)


def test_lagrangian_prices_meet_the_band(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasksync.policies.optimal as optimal

    monkeypatch.setattr(optimal.solve, "LP_MAX", 0)  # force the price heuristic
    book = synthetic_book(1500, 30, seed=13)
    pol = OptimalPolicy()
    dec = pol.decide(book, settings())
    assert pol.info.method == "prices+repair"
    owners = owners_of(book, dec)
    avail = {r.id for r in book.available_reps}
    loads = Counter(o for o in owners.values() if o in avail)
    mean = sum(loads.values()) / len(avail)
    assert all(mean * 0.9 - 1 <= loads[r] <= mean * 1.1 + 1 for r in avail), dec.notes
    for r in book.reps:
        if r.capacity is not None:
            assert loads[r.id] <= max(r.capacity, Counter(i.owner for i in book.items)[r.id])


def test_band_note_blames_locked_cards() -> None:
    reps = [Rep("a", "A"), Rep("b", "B")]
    tasks = [(f"l{k}", f"la{k}", "a", True) for k in range(6)] + [("t", "acc", None, False)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings(band=0.1))
    note = next(n for n in dec.notes if "count band" in n and "not met" in n)
    assert "A (6: 6 held by locked cards and pinned accounts)" in note
    assert owners_of(book, dec)["t"] == "b"


def test_band_note_names_a_pinned_account_over_a_capacity() -> None:
    # One card of an account pinned to A keeps the account whole with A, over A's capacity: the
    # note blamed "account sizes or the value band" and never said capacity.
    reps = [Rep("a", "A", capacity=3), Rep("b", "B"), Rep("c", "C")]
    tasks = [("p", "big", "a", True)] + [(f"m{k}", "big", "a", False) for k in range(5)]
    tasks += [(f"o{k}", f"acc{k}", None, False) for k in range(6)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings(band=0.1))
    assert all(owners_of(book, dec)[f"m{k}"] == "a" for k in range(5))
    note = next(n for n in dec.notes if "count band" in n and "not met" in n)
    assert "A (6: 6 held by locked cards and pinned accounts, over their capacity 3)" in note


def test_block_decomposition_for_big_books(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasksync.policies.optimal as optimal

    monkeypatch.setattr(optimal, "BLOCK_REPS", 6)
    book = synthetic_book(1200, 24, seed=14)
    s = settings()
    pol = OptimalPolicy()
    dec = pol.decide(book, s)
    assert pol.info.method.startswith("blocks(4)")
    owners = owners_of(book, dec)
    avail = {r.id for r in book.available_reps}
    loads = Counter(o for o in owners.values() if o in avail)
    mean = sum(loads.values()) / len(avail)
    assert all(mean * 0.9 - 2 <= loads[r] <= mean * 1.1 + 2 for r in avail), (loads, mean, dec.notes)
    per_account: dict[str, set[str | None]] = defaultdict(set)
    for i in book.items:
        per_account[i.group].add(owners[i.key])
    assert all(len(v) == 1 for v in per_account.values())
    assert not set(owners.values()) & {r.id for r in book.reps if not r.available}
    # Better than the greedy baseline on the same objective, and stable on a re-run.
    ev = OptimalPolicy(exact=True)
    greedy = get_policy("balanced").decide(book, s)
    assert ev.evaluate(book, s, owners) > ev.evaluate(book, s, owners_of(book, greedy))
    again = OptimalPolicy().decide(apply_decisions(book, dec), s)
    assert all(d.owner in (None, owners[k]) for k, d in again.by_key.items())


def test_keep_current_owner_false_drops_the_move_cost() -> None:
    book = synthetic_book(500, 10, seed=8)
    keep = OptimalPolicy()
    keep.decide(book, settings(band=0.3))
    free = OptimalPolicy()
    free.decide(book, settings(band=0.3, keep_current_owner=False))
    assert free.info.moved > keep.info.moved


def test_account_unity_is_a_choice() -> None:
    """Account ``shared`` is split between A and B. Kept together (the default) it is united and
    the move says so; card by card, nothing forces a move and no owned card moves."""
    reps = [Rep("a", "A"), Rep("b", "B"), Rep("c", "C")]
    tasks = [("s1", "shared", "a", False), ("s2", "shared", "a", False), ("s3", "shared", "b", False)]
    tasks += [("a0", "aa0", "a", False)]
    tasks += [(f"b{k}", f"bb{k}", "b", False) for k in range(3)]
    tasks += [(f"c{k}", f"cc{k}", "c", False) for k in range(4)]
    book = make_book(reps, tasks)  # 11 cards: the ±30% band is 3..4 cards either way
    together = OptimalPolicy().decide(book, settings(band=0.3))
    owners = owners_of(book, together)
    assert owners["s1"] == owners["s2"] == owners["s3"]
    moved = [i.key for i in book.items if owners[i.key] != i.owner]
    assert moved == ["s3"]
    reason = together.by_key["s3"].reason
    assert isinstance(reason, Reason) and reason.kind is ReasonKind.ACCOUNT_TOGETHER
    assert together.moved == {"account kept together": 1}
    assert "owned cards moved: 1 of 11 (account kept together 1)" in together.notes
    apart = OptimalPolicy().decide(book, settings(band=0.3, keep_accounts_together=False))
    assert all(owners_of(book, apart)[i.key] == i.owner for i in book.items)
    assert "owned cards moved: 0 of 11" in apart.notes


def test_a_card_moved_by_hand_does_not_pull_its_account() -> None:
    """A person gave one card of A's account to B: that card is locked with B; the rest of the
    account stays with A (no "better fit" chain pulling it to B)."""
    reps = [Rep("a", "A"), Rep("b", "B")]
    tasks = [("x1", "acc", "a", False), ("x2", "acc", "a", False), ("x3", "acc", "b", True)]
    tasks += [(f"b{k}", f"bb{k}", "b", False) for k in range(2)]
    book = make_book(reps, tasks)
    book.items = [replace(i, pinned=False) for i in book.items]  # locked by a person's edit, not pinned
    dec = OptimalPolicy().decide(book, settings(band=0.5))
    owners = owners_of(book, dec)
    assert owners["x1"] == owners["x2"] == "a" and owners["x3"] == "b"
    pinned = make_book(reps, tasks)  # the same card pinned by label holds its account with B
    assert owners_of(pinned, OptimalPolicy().decide(pinned, settings(band=0.5)))["x1"] == "b"


def test_the_time_limit_is_a_safety_net_that_says_so() -> None:
    """When the solver is stopped by ``time_limit`` the division is the deterministic greedy one and
    the notes say it stopped at the time limit, never that a band is not reachable."""
    book = synthetic_book(2000, 40, seed=3)
    pol = OptimalPolicy()
    dec = pol.decide(book, settings(time_limit=1e-9))
    assert pol.info.method == "greedy-fallback"
    assert any(n.startswith("stopped at the time limit") or "stopped at the time limit" in n for n in dec.notes)
    assert not any("reachable" in n for n in dec.notes)
    again = OptimalPolicy().decide(book, settings(time_limit=1e-9))
    assert owners_of(book, again) == owners_of(book, dec)


def test_the_value_band_sits_at_each_reps_centre() -> None:
    """The value band's centre per rep is the one hook where per-rep value targets plug in: with
    equal weights it is the mean of available reps; with weights, the mean × the rep's weight."""
    book = synthetic_book(300, 8, seed=3)
    s = settings()
    m = build_model(book, s.policy, fit_model(book, s.policy), exact=False)
    n_r = len(m.reps)
    e = np.linspace(50.0, 150.0, n_r)
    np.testing.assert_allclose(m.value_centre(e), np.full(n_r, e.mean()))
    m.value_weight = e / e.mean()  # every rep exactly at its own centre
    assert not m.value_violation(e).any()
    m.value_weight = np.ones(n_r)
    low, high = e.mean() * (1 - m.value_band), e.mean() * (1 + m.value_band)
    want = np.maximum(e - high, 0.0) + np.maximum(low - e, 0.0)
    np.testing.assert_allclose(m.value_violation(e), want)
    assert want.any()


def _programme_of(book: Book) -> tuple[Model, list[int], Programme]:
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    choice = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = [g for g in range(len(m.groups)) if not m.held[g]]
    return m, movers, build_programme(m, movers, m.loads_for(choice, skip=set(movers)), False)


def test_column_generation_reaches_the_whole_lp_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from each group's single best column only, pricing adds columns until none improves:
    the objective is the whole LP's (solved on every column at once), on fewer columns."""
    from scipy.optimize import milp

    import tasksync.policies.optimal.solve as solve

    if solve._Highs is None:
        pytest.skip("this scipy has no HiGHS object with warm starts: the LP is solved whole")
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    monkeypatch.setattr(solve, "SEED_TOP", 1)
    book = synthetic_book(1200, 30, seed=21)
    m, movers, prog = _programme_of(book)
    full = milp(prog.c, constraints=prog.constraints, integrality=prog.integrality, bounds=prog.bounds)
    seed = solve.seed_columns(m, movers, prog, np.full(len(m.groups), -1))
    assert seed.sum() < prog.n_x // 3
    res, timed_out, rounds = solve.solve_lp(prog, seed, solve.Limits(), 0.0)
    assert not timed_out and rounds >= 1  # the seed alone is not optimal: pricing had work to do
    assert res.fun == pytest.approx(full.fun, rel=1e-7)
    # The answer is feasible for the whole programme (columns left out are at zero).
    a = prog.constraints.A @ res.x
    assert np.all(a >= prog.constraints.lb - 1e-6) and np.all(a <= prog.constraints.ub + 1e-6)
    again, _, rounds2 = solve.solve_lp(prog, seed, solve.Limits(), 0.0)
    assert rounds2 == rounds and np.array_equal(again.x, res.x)


def test_column_generation_plans_are_deterministic_and_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every LP solved by column generation, two runs give the same plan, and a re-run after
    applying it moves nothing."""
    import tasksync.policies.optimal.solve as solve

    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    calls: list[int] = []
    real = solve.solve_lp

    def counted(*a: object) -> object:
        out = real(*a)  # type: ignore[arg-type]
        calls.append(out[2])
        return out

    monkeypatch.setattr(solve, "solve_lp", counted)
    book = synthetic_book(900, 18, seed=22)
    rules = settings()
    first = OptimalPolicy().decide(book, rules)
    second = OptimalPolicy().decide(book, rules)
    assert calls and (max(calls) >= 1 or solve._Highs is None)  # at least one LP priced columns in
    assert first.by_key == second.by_key
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []


def _lp_and_fix(book: Book, monkeypatch: pytest.MonkeyPatch) -> tuple[Model, np.ndarray]:
    """The model of ``book`` and LP-and-fix's division of it, without the polish."""
    import tasksync.policies.optimal.solve as solve

    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    with monkeypatch.context() as mp:
        mp.setattr(solve, "polish", lambda m, choice: 0)
        out = solve.solve_model(m, solve.Limits())
    return m, out.choice


def test_polish_raises_the_objective_and_keeps_both_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact re-divisions of pairs of reps: the objective only rises, both bands and capacities
    still hold, only movable groups move, and the same division comes out every time."""
    from tasksync.policies.optimal.polish import polish

    m, start = _lp_and_fix(synthetic_book(900, 18, seed=5), monkeypatch)
    assert m.feasible(start)
    first, second = start.copy(), start.copy()
    kept = polish(m, first)
    assert kept >= 1 and m.objective(first) > m.objective(start)  # LP-and-fix leaves pairs to re-deal
    assert m.feasible(first)
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(first[held], start[held])
    assert polish(m, second) == kept and np.array_equal(first, second)
    # Every pair it re-deals is kept only when better: polishing a polished division, with every
    # pair allowed, still never lowers the objective.
    again = first.copy()
    polish(m, again, rounds=2, budget=10_000)
    assert m.objective(again) >= m.objective(first) and m.feasible(again)


def test_polish_never_widens_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a division outside the bands (everything with one rep), the polish keeps only
    re-divisions that hold the bands and capacities at least as well."""
    from tasksync.policies.optimal.polish import polish

    m, start = _lp_and_fix(synthetic_book(300, 6, seed=6), monkeypatch)
    free = ~np.asarray(m.held, dtype=bool)
    bad = start.copy()
    bad[free] = [int(m.cand[g][0]) for g in np.flatnonzero(free)]
    n0 = m.count_violation(m.loads_for(bad)[0]).sum()
    e0 = m.value_violation(m.loads_for(bad)[2]).sum()
    before = m.objective(bad)
    polish(m, bad)
    assert m.objective(bad) >= before
    assert m.count_violation(m.loads_for(bad)[0]).sum() <= n0 + 1e-9
    assert m.value_violation(m.loads_for(bad)[2]).sum() <= e0 + 1e-6


def test_polished_division_settles_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a small book the policy's division is polished (worth more than without the polish),
    deterministic, and a re-run after applying it moves nothing."""
    import tasksync.policies.optimal.solve as solve

    book = synthetic_book(700, 14, seed=7)
    rules = settings()
    first = OptimalPolicy().decide(book, rules)
    with monkeypatch.context() as mp:
        mp.setattr(solve, "polish", lambda m, choice: 0)
        plain = OptimalPolicy().decide(book, rules)
    ev = OptimalPolicy(exact=True)
    assert ev.evaluate(book, rules, owners_of(book, first)) > ev.evaluate(book, rules, owners_of(book, plain))
    assert first.by_key == OptimalPolicy().decide(book, rules).by_key
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []


def test_lp_seeds_owners_and_an_earlier_division_and_still_reaches_the_whole_lp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a big book the first restricted LP holds each group's owner column and its column in the
    start division, and a group's best-by-score column only when it has no owner column; seeded by a
    division found before (an earlier pass on the same book), pricing still reaches the whole LP's
    optimum, the same way on every run."""
    from scipy.optimize import milp

    import tasksync.policies.optimal.solve as solve

    if solve._Highs is None:
        pytest.skip("this scipy has no HiGHS object with warm starts: the LP is solved whole")
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    monkeypatch.setattr(solve, "SMALL_MOVERS", 0)  # this book's movers count as a big book's
    book = synthetic_book(1200, 30, seed=21)
    m, movers, prog = _programme_of(book)
    full = milp(prog.c, constraints=prog.constraints, integrality=prog.integrality, bounds=prog.bounds)
    none = np.full(len(m.groups), -1)
    seed = solve.seed_columns(m, movers, prog, none)
    g_of = np.asarray(movers)[prog.group]
    owner_col = m.owner[g_of] == prog.rep
    owned = np.zeros(len(movers), dtype=bool)
    owned[prog.group[owner_col]] = True
    assert owned.any() and not owned.all()
    assert np.array_equal(seed[owned[prog.group]], owner_col[owned[prog.group]])  # owner's column only
    assert np.all(np.bincount(prog.group[seed], minlength=len(movers))[~owned] == 1)  # its best
    best = (
        prog.c[: prog.n_x]
        <= np.minimum.reduceat(prog.c[: prog.n_x], np.r_[0, np.flatnonzero(np.diff(prog.group)) + 1])[prog.group]
    )
    assert np.all(best[seed & ~owned[prog.group]])
    earlier = solve.solve_model(m, solve.Limits()).choice
    near = solve.seed_columns(m, movers, prog, earlier)
    assert np.all(near[(earlier[g_of] == prog.rep)])
    res, timed_out, rounds = solve.solve_lp(prog, near, solve.Limits(), 0.0)
    assert not timed_out and res.fun == pytest.approx(full.fun, rel=1e-7)
    again, _, rounds2 = solve.solve_lp(prog, near, solve.Limits(), 0.0)
    assert rounds2 == rounds and np.array_equal(again.x, res.x)
    # solve_model seeded by that division: a division of the same quality, the same on every run.
    one = solve.solve_model(m, solve.Limits(), earlier)
    two = solve.solve_model(m, solve.Limits(), earlier)
    assert np.array_equal(one.choice, two.choice)
    assert m.objective(one.choice) >= m.objective(earlier) - 0.005 * abs(m.objective(earlier))


def test_the_lagrangian_seed_reaches_the_whole_lp_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """The columns the Lagrangian prices of the rep rows settle on give every group at least one
    column and a first restricted LP whose loads stay near the bands; column generation from them
    (with the owners' and a greedy division's) reaches the whole LP's objective (solved on every
    column at once), the same way on every run."""
    from scipy.optimize import milp

    import tasksync.policies.optimal.solve as solve
    from tasksync.policies.optimal.dual import _first_min, lagrangian_columns, lagrangian_prices

    if solve._Highs is None:
        pytest.skip("this scipy has no HiGHS object with warm starts: the LP is solved whole")
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    book = synthetic_book(1200, 30, seed=21)
    m, movers, prog = _programme_of(book)
    fixed = m.loads_for(np.full(len(m.groups), -1), skip=set(movers))
    picked = lagrangian_columns(m, movers, prog, fixed)
    assert np.array_equal(np.unique(prog.group[picked]), np.arange(len(movers)))  # every group
    assert picked.sum() < prog.n_x // 2
    assert np.array_equal(picked, lagrangian_columns(m, movers, prog, fixed))
    # Under zero prices every group would take its best column: the prices moved some groups.
    best = _ranks_by_cost(prog) == 0
    assert (picked & ~best).any()
    full = milp(prog.c, constraints=prog.constraints, integrality=prog.integrality, bounds=prog.bounds)
    seed = solve.seed_columns(m, movers, prog, np.full(len(m.groups), -1)) | picked
    res, timed_out, rounds = solve.solve_lp(prog, seed, solve.Limits(), 0.0)
    assert not timed_out and res.fun == pytest.approx(full.fun, rel=1e-7)
    a = prog.constraints.A @ res.x
    assert np.all(a >= prog.constraints.lb - 1e-6) and np.all(a <= prog.constraints.ub + 1e-6)
    again, _, rounds2 = solve.solve_lp(prog, seed, solve.Limits(), 0.0)
    assert rounds2 == rounds and np.array_equal(again.x, res.x)
    # The last prices of those steps, in the units and signs of the programme's costs: the groups'
    # cheapest columns under them are the picks of the last steps (under the prices negated, or
    # none, they are not), and each rep's price stays within its band penalty.
    lam, theta = lagrangian_prices(m, movers, prog, fixed)
    assert np.abs(lam).max() <= m.band_penalty and np.abs(theta).max() <= m.value_penalty
    g_of = np.asarray(movers)[prog.group]
    starts = np.flatnonzero(np.r_[True, np.diff(prog.group) != 0])
    shares = []
    for sign in (1.0, -1.0, 0.0):
        cost = prog.c[: prog.n_x] + sign * (m.count[g_of] * lam[prog.rep] + m.ev_d[g_of, prog.rep] * theta[prog.rep])
        shares.append(float(picked[_first_min(cost, starts, prog.group)].mean()))
    assert shares[0] > 0.95 and shares[1] < 0.9 and shares[2] < 0.9


def _ranks_by_cost(prog: Programme) -> np.ndarray:
    import tasksync.policies.optimal.solve as solve

    return solve._ranks(prog.group, prog.c[: prog.n_x])


@pytest.mark.parametrize(
    ("size", "reps", "seed", "capacity"), [(120, 5, 1, True), (150, 4, 3, True), (120, 4, 9, False)]
)
def test_the_lagrangian_bound_holds_for_any_prices_and_meets_the_lp(
    monkeypatch: pytest.MonkeyPatch, size: int, reps: int, seed: int, capacity: bool
) -> None:
    """:func:`upper_bound` is never below the objective of the exact optimum (nor of any division
    within capacity), at any rep prices; at the LP's own duals it is the LP's optimum (strong
    duality), which is what lets the settle pass prove a division without solving."""
    import tasksync.policies.optimal.solve as solve
    from tasksync.policies.optimal.dual import RepPrices, lp_prices, upper_bound

    if solve._Highs is None:
        pytest.skip("this scipy has no HiGHS object with warm starts: no LP duals")
    book = synthetic_book(size, reps, seed=seed)
    if not capacity:
        book = replace(book, reps=[replace(r, capacity=None) for r in book.reps])
    m, _, prog = _programme_of(book)
    held = sum(m.net(g, int(m.cand[g][0])) for g in range(len(m.groups)) if m.held[g])
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    lp, _, _ = solve.solve_lp(prog, np.ones(prog.n_x, dtype=bool), solve.Limits(), 0.0)
    at_duals = upper_bound(m, lp_prices(prog, lp.row_dual, m))
    assert at_duals == pytest.approx(held - lp.fun, rel=1e-7)
    exact = OptimalPolicy(exact=True)
    exact.decide(book, settings())
    best = exact.info.objective
    n_r = len(m.reps)
    rng = np.random.default_rng(seed)
    rand = [
        RepPrices(*(rng.normal(0.0, scale, n_r) for scale in (m.band_penalty / 50, m.value_penalty / 5, 30.0, 0.0)))
        for _ in range(6)
    ]
    zero = RepPrices(np.zeros(n_r), np.zeros(n_r), np.zeros(n_r), np.zeros(n_r))
    divisions = [np.array([int(rng.choice(c)) for c in m.cand]) for _ in range(20)]
    within = [d for d in divisions if m.excess(d) == (0.0, 0.0)]
    for prices in [zero, *rand]:
        bound = upper_bound(m, prices)
        assert bound >= best - 1e-6 * abs(best)
        assert all(bound >= m.objective(d) - 1e-6 * abs(bound) for d in within)
    assert at_duals >= best - 1e-6 * abs(best)


@pytest.mark.parametrize("own_lp", [False, True])
def test_the_settle_pass_proves_instead_of_solving_and_plans_the_same(
    monkeypatch: pytest.MonkeyPatch, own_lp: bool
) -> None:
    """The settle pass (deciding again on the book the plan leaves) is replaced by the proof of
    :meth:`OptimalPolicy.kept` where it holds: the plan is the one solving would give, every run,
    and a re-run after applying it moves nothing, proved without solving. ``own_lp``: the last
    LP's prices are useless (zero), so the proof needs the bound at the new book's own LP prices."""
    import tasksync.policies.optimal.solve as solve
    from tasksync.policies.optimal.dual import RepPrices

    monkeypatch.setattr(solve, "COLGEN_MIN", 0)  # every LP by column generation: it gives the prices
    # The polish's whole-book MILP off: it takes this book's division past what the last LP's prices
    # prove kept (the proof then holds at the book's own LP prices, as with own_lp).
    monkeypatch.setattr("tasksync.policies.optimal.neighbourhood.WHOLE_MAX", 0)
    book = synthetic_book(300, 6, seed=3)
    rules = settings()
    proofs: list[bool] = []
    real = OptimalPolicy.kept
    own: list[object] = []
    real_own = solve.division_prices

    def spy(self: OptimalPolicy, *a: object) -> object:
        if own_lp and self._prices is not None:
            self._prices = RepPrices(*(np.zeros(6) for _ in range(4)))
        out = real(self, *a)  # type: ignore[arg-type]
        proofs.append(out is not None)
        return out

    def own_prices(*a: object) -> object:
        out = real_own(*a)  # type: ignore[arg-type]
        own.append(out)
        return out

    monkeypatch.setattr("tasksync.policies.optimal.division_prices", own_prices)

    monkeypatch.setattr(OptimalPolicy, "kept", spy)
    first = OptimalPolicy().decide(book, rules)
    assert proofs == [False, True]  # today's division (unowned cards) is not kept; the plan's is
    assert len(own) == (1 if own_lp else 0) and all(o is not None for o in own)
    with monkeypatch.context() as mp:
        mp.setattr(OptimalPolicy, "kept", lambda self, *a: None)  # solve again instead
        solved = OptimalPolicy().decide(book, rules)
    assert first.by_key == solved.by_key
    assert first.by_key == OptimalPolicy().decide(book, rules).by_key
    after = apply_decisions(book, first)
    proofs.clear()
    pol = OptimalPolicy()
    again = pol.decide(after, rules)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []
    assert proofs == [True] and pol.info.method == "kept"  # proved at its own LP's prices, not solved
    with monkeypatch.context() as mp:
        mp.setattr(OptimalPolicy, "kept", lambda self, *a: None)
        assert OptimalPolicy().decide(after, rules).by_key == again.by_key


def test_pair_swaps_mend_the_value_band_within_the_count_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the division LP-and-fix hands to the pair swaps of a real-shaped book (reps left outside
    the value band), each swap raises the objective (band penalties included): the value band's
    violation shrinks, the count band and capacities are no worse, held groups stay, and the same
    swaps come out every time."""
    import tasksync.policies.optimal.solve as solve
    from tasksync.policies.model_eval import real_shaped_book
    from tasksync.policies.optimal.repair import swap

    book = real_shaped_book(1000, 30, 2)
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    handed: list[np.ndarray] = []
    monkeypatch.setattr(solve, "swap", lambda m, choice: handed.append(choice.copy()) or 0)
    monkeypatch.setattr(solve, "polish", lambda m, choice: 0)
    solve.solve_model(m, solve.Limits())
    start = handed[0]
    n0, _, e0 = m.loads_for(start)
    assert m.value_violation(e0).sum() > 0
    first, second = start.copy(), start.copy()
    made = swap(m, first)
    assert made >= 1 and swap(m, second) == made and np.array_equal(first, second)
    n1, _, e1 = m.loads_for(first)
    assert m.objective(first) > m.objective(start)
    assert m.value_violation(e1).sum() < m.value_violation(e0).sum()
    assert m.count_violation(n1).sum() <= m.count_violation(n0).sum() + 1e-9
    assert m.excess(first) <= m.excess(start)
    held = np.asarray(m.held, dtype=bool)
    assert np.array_equal(first[held], start[held])
    assert (first != start).sum() <= 2 * made  # two groups a swap


@pytest.mark.parametrize("rebalance_only", [False, True])
def test_a_big_books_candidates_keep_their_promises(rebalance_only: bool) -> None:
    """A big book's candidates (chosen for all groups at once, :mod:`.candidates`): sorted and
    distinct, always the group's own owner and CRM account owner and the reps under the band; a
    pinned group has its pinned rep alone; a held group its owner alone, and only when its owner
    has no reason to give it and (without ``rebalance_only``) no candidate gains on the owner; the
    move cost with a rep is that of the group's owned cards the rep does not own already."""
    from tasksync.policies.model_eval import real_shaped_book
    from tasksync.policies.optimal.model import FULL_MODEL, over_under

    book = real_shaped_book(3000, 300, 3)
    pinned = {i.key for i in book.items[::97] if i.owner}
    book = replace(book, items=[replace(i, pinned=i.key in pinned, locked=i.key in pinned) for i in book.items])
    p = PolicySettings(name="optimal", rebalance_only=rebalance_only)
    m = build_model(book, p, fit_model(book, p), False)
    assert len(m.groups) * len(m.reps) > FULL_MODEL  # the sparse candidates
    ridx = {r: k for k, r in enumerate(m.reps)}
    over, under, above = over_under(m)
    must = over | (above if under.any() else np.zeros_like(over))
    gain = p.gain_threshold if p.keep_current_owner else 0.0
    wm = fit_model(book, p)
    seen_held = seen_free = 0
    for g, grp in enumerate(m.groups):
        cand = m.cand[g]
        assert list(cand) == sorted(set(cand.tolist()))
        assert len(m.score[g]) == len(m.ev[g]) == len(m.move[g]) == len(cand)
        if grp.pinned is not None:
            assert cand.tolist() == [ridx[grp.pinned]]
            continue
        if m.held[g]:
            seen_held += 1
            o = int(m.owner[g])
            assert cand.tolist() == [o] and not must[o]
            assert all(i.owner == grp.owner for i in grp.items)
            assert m.move[g][0] == pytest.approx(0.0, abs=1e-6)  # every card already its owner's
            continue
        seen_free += 1
        wanted = set(np.flatnonzero(under)[: max(2, p.candidate_reps // 3)].tolist())
        wanted |= {int(m.owner[g])} - {-1}
        crm = grp.items[0].account.owner if grp.items[0].account else None
        wanted |= {ridx[crm]} if crm in ridx else set()
        assert wanted <= set(cand.tolist())
        if rebalance_only:  # moving an owned card costs more than any fit gain: the owner is cheapest
            o = int(m.owner[g])
            if o >= 0 and all(i.owner == grp.owner for i in grp.items):
                at_o = cand.tolist().index(o)
                assert all(m.move[g][at_o] < mv for k, mv in enumerate(m.move[g]) if k != at_o)
            continue
        for pos, r in enumerate(cand.tolist()):
            owned = [i for i in grp.items if i.owner in ridx and i.owner != m.reps[r]]
            cost = sum(gain * max(min(max(wm.probability(i, None), 0.01), 0.99) * i.value, 1e-6) for i in owned)
            assert m.move[g][pos] == pytest.approx(cost, rel=1e-9, abs=1e-6)
    assert seen_held and seen_free


@pytest.mark.parametrize(("cards", "reps"), [(200, 5), (3000, 300)])
def test_a_book_with_nothing_movable_keeps_every_owner(cards: int, reps: int) -> None:
    """Every card locked: the model has no group (small book: every rep a candidate; big book: the
    sparse candidates), and the plan keeps every owner."""
    from tasksync.policies.model_eval import real_shaped_book

    book = (synthetic_book if reps < 100 else real_shaped_book)(cards, reps, 1)
    book = replace(book, items=[replace(i, locked=True) for i in book.items])
    p = PolicySettings(name="optimal")
    m = build_model(book, p, fit_model(book, p), False)
    assert m.groups == [] and m.cand == [] and m.held == []
    dec = OptimalPolicy().decide(book, Rules(p))
    assert all(dec.by_key[i.key].owner in (None, i.owner) for i in book.items)


def test_tight_group_duals_prove_the_lp_optimal_from_its_support(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded with the LP's own optimal support, column generation stops at once: a group whose
    column sits at its bound 1 prices with the dual that makes that column's reduced cost 0, not
    HiGHS's loose one (under which columns no better than the group's own price in for a round).
    The optimum is the same either way."""
    import tasksync.policies.optimal.solve as solve

    if solve._Highs is None:
        pytest.skip("this scipy has no HiGHS object with warm starts: the LP is solved whole")
    monkeypatch.setattr(solve, "COLGEN_MIN", 0)
    from tasksync.policies.model_eval import real_shaped_book

    m, movers, prog = _programme_of(real_shaped_book(1500, 40, 3))
    seed = solve.seed_columns(m, movers, prog, np.full(len(m.groups), -1))
    first, _, _ = solve.solve_lp(prog, seed, solve.Limits(), 0.0)
    support = first.x[: prog.n_x] > 1e-9
    tight, _, rounds = solve.solve_lp(prog, support.copy(), solve.Limits(), 0.0)
    assert rounds == 0
    assert tight.fun == pytest.approx(first.fun, rel=1e-9)
    monkeypatch.setattr(solve, "_tight_duals", lambda p, a_t, cols, h: np.asarray(h.getSolution().row_dual))
    loose, _, loose_rounds = solve.solve_lp(prog, support.copy(), solve.Limits(), 0.0)
    assert loose_rounds >= 1 and loose.fun == pytest.approx(first.fun, rel=1e-9)


def _improve_one_by_one(m: Model, choice: np.ndarray, passes: int = 3) -> int:
    """:func:`repair.improve` as it was written first: each group examined alone, the value band's
    total violation summed over every rep at each target's new mean."""
    n, v, e = m.loads_for(choice)
    free = np.flatnonzero(~np.asarray(m.held, dtype=bool) & (choice >= 0))
    order = free[np.lexsort((free, m.net_d[free, choice[free]] - m.net_d[free].max(axis=1)))]
    v_room = m.vcap + 1e-9 * np.abs(np.where(np.isfinite(m.vcap), m.vcap, 0.0)) + 1e-6
    w = m.weights()
    hi_w, lo_w = w * (1 + m.value_band), w * (1 - m.value_band)

    def total(e: np.ndarray, mean: float) -> float:
        return float((np.maximum(e - hi_w * mean, 0.0) + np.maximum(lo_w * mean - e, 0.0)).sum())

    made = 0
    for _ in range(passes):
        moved = 0
        at = m.net_d[order, choice[order]]
        may = order[(m.net_d[order] > (at + 1e-9 * np.maximum(np.abs(at), 1.0))[:, None]).any(axis=1)]
        for g in may.tolist():
            frm, wg, vg = int(choice[g]), float(m.count[g]), float(m.value_[g])
            if n[frm] - wg < m.lower - 1e-9 and n[frm] <= m.upper + 1e-9:
                continue
            nets = m.net_d[g]
            here = float(nets[frm])
            best_r = -1
            for r in range(len(m.reps)):
                nt = n[r] + wg
                if r == frm or not nets[r] > here + 1e-9 * max(abs(here), 1.0):
                    continue
                if nt > m.upper + 1e-9 or nt > m.cap[r] or v[r] + vg > v_room[r]:
                    continue
                if n[r] < m.lower - 1e-9 and nt > m.upper + 1e-9:
                    continue
                if m.value_band:
                    mean_now = m.value_mean if m.value_mean is not None else float(e.sum()) / len(e)
                    after = e.copy()
                    after[frm] -= m.ev_d[g, frm]
                    after[r] += m.ev_d[g, r]
                    mean = m.value_mean if m.value_mean is not None else float(after.sum()) / len(e)
                    if total(after, mean) > total(e, mean_now) + 1e-9:
                        continue
                if best_r < 0 or nets[r] > nets[best_r]:
                    best_r = r
            if best_r < 0:
                continue
            m.add((n, v, e), g, frm, -1.0)
            m.add((n, v, e), g, best_r)
            choice[g] = best_r
            moved += 1
        made += moved
        if not moved:
            break
    return made


@pytest.mark.parametrize("chunk", [1, 5, 128])
@pytest.mark.parametrize("value_band", [0.2, 0.05, 1.0])
def test_improve_in_chunks_makes_the_moves_of_one_group_at_a_time(
    monkeypatch: pytest.MonkeyPatch, chunk: int, value_band: float
) -> None:
    """:func:`repair.improve` examines its groups a chunk at a time and reads the value band's total
    violation off the reps' sorted breakpoints (or, with a band of 100% or more, sums it): the
    moves are those of examining one group at a time against the loads every move before it left,
    from a scrambled division with much to mend."""
    import tasksync.policies.optimal.repair as repair

    monkeypatch.setattr(repair, "IMPROVE_CHUNK", chunk)
    book = synthetic_book(700, 14, seed=31)
    p = PolicySettings(name="optimal", value_band=value_band)
    m = build_model(book, p, fit_model(book, p), False)
    rng = np.random.default_rng(5)
    start = np.array([int(rng.choice(c)) for c in m.cand], dtype=np.int64)
    want, got = start.copy(), start.copy()
    made_want = _improve_one_by_one(m, want)
    made_got = repair.improve(m, got)
    assert made_want > 20  # the check has moves to compare
    assert made_got == made_want
    assert np.array_equal(got, want)


@pytest.mark.parametrize("value_target", ["mean", "quota"])
def test_tables_with_a_value_band_are_those_built_with_it(value_target: str) -> None:
    """The optimal policy builds its reasons' tables once and then sets the value band
    (:meth:`Tables.with_value`): every figure a reason cites is the one tables built with that
    band from the start give, for each rep's own band (``value_target``) too."""
    from tasksync.policies.explain import Tables
    from tasksync.policies.model_eval import real_shaped_book
    from tasksync.policies.reasons import Band

    book = real_shaped_book(300, 12, seed=4)
    p = PolicySettings(name="optimal", value_target=value_target)
    wm = fit_model(book, p)
    reps = [r.id for r in book.available_reps]
    owners: dict[str, str | None] = {i.key: reps[k % len(reps)] for k, i in enumerate(book.items) if i.managed}
    count = Band(25.0, 20.0, 30.0)
    value = Band(1_500.0, 1_000.0, 2_000.0)
    fresh = Tables(book, wm, p, owners, count, value)
    probe = Tables(book, wm, p, owners, count, None)
    got = probe.with_value(value)
    assert probe.value is None and not probe.targets  # the probe itself is left as it was
    for name in ("value", "weights", "targets", "before_n", "after_n", "before_ev", "after_ev", "before_pipe"):
        assert getattr(got, name) == getattr(fresh, name), name
    assert got.targets  # the per-rep bands were there to compare
    kinds = [ReasonKind.ABOVE_VALUE_BAND, ReasonKind.BELOW_BAND, ReasonKind.BETTER_FIT, ReasonKind.UNOWNED]
    for item in book.items[:40]:
        for kind in kinds:
            assert got.reason(kind, item, item.owner, reps[0]) == fresh.reason(kind, item, item.owner, reps[0])


def test_the_settled_division_is_kept_where_a_big_books_candidates_leave_its_owners_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a big book (candidates pruned to ``candidate_reps``) with a tight band, the division that
    settles is expressed in a model of today's book whose pruned candidates may not hold every
    settled owner. It used to be thrown away for the first division, which a re-run after apply
    then changed (17 cards moved on this book; 70-90 on a real-shaped 10k book with band 0.05).
    The settled owners are now candidates of that model: the plan settles."""
    import tasksync.policies.optimal.candidates as candidates
    from tasksync.policies.model_eval import real_shaped_book

    monkeypatch.setattr(candidates, "FULL_MODEL", 0)  # this small book's candidates pruned as a big one's
    book = real_shaped_book(300, 12, 3)
    rules = settings(band=0.05, candidate_reps=2)
    first = OptimalPolicy().decide(book, rules)
    after = apply_decisions(book, first)
    again = OptimalPolicy().decide(after, rules)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []
