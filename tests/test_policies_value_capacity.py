"""Rep capacity by value (``Rep.capacity_value``: most open pipeline a rep should hold) in both
division policies, and the ``Capacity Value`` column of the reps export."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from tasksync.crm.load import load_crm
from tasksync.crm.records import Account, CrmData, Deal, Rep
from tasksync.policies import Book, Decision, Reason, Rules, WorkItem
from tasksync.policies.balanced import BalancedPolicy
from tasksync.policies.base import Decisions
from tasksync.policies.model_eval import apply_decisions, synthetic_book
from tasksync.policies.optimal import OptimalPolicy
from tasksync.settings import CrmSettings, PolicySettings

TODAY = date(2026, 6, 1)

Task = tuple[str, str, str | None, bool, float]  # task id, account id, owner, locked, deal value


def make_book(reps: list[Rep], tasks: list[Task]) -> Book:
    accounts = {a: Account(a, f"Account {a}", sector="software") for _, a, _, _, _ in tasks}
    items, deals = [], []
    for tid, acc, owner, locked, value in tasks:
        d = Deal(f"d-{tid}", f"deal {tid}", "Lead", acc, value, TODAY)
        deals.append(d)
        items.append(WorkItem(tid, f"task {tid}", tid, "Doing", d, accounts[acc], owner, locked=locked, pinned=locked))
    crm = CrmData(reps=reps, accounts=list(accounts.values()), deals=deals)
    return Book(reps, {r.id: r.id for r in reps}, items, crm, [], TODAY)


def text(d: Decision) -> str:
    """The decision's reason in words."""
    return d.reason.text() if isinstance(d.reason, Reason) else (d.reason or "")


def owners_of(book: Book, dec: Decisions) -> dict[str, str | None]:
    return {i.key: (dec.by_key[i.key].owner if i.key in dec.by_key else None) or i.owner for i in book.items}


def settings(name: str, **kw: object) -> Rules:
    return Rules(PolicySettings(name=name, **kw))  # type: ignore[arg-type]


def pipeline(book: Book, owners: dict[str, str | None]) -> dict[str | None, float]:
    out: dict[str | None, float] = defaultdict(float)
    for i in book.items:
        out[owners[i.key]] += i.value
    return out


POLICIES = [("optimal", OptimalPolicy), ("balanced", BalancedPolicy)]


@pytest.mark.parametrize(("name", "policy"), POLICIES)
def test_no_rep_ends_above_its_value_capacity(name: str, policy: type) -> None:
    # Eight unowned accounts worth 100 each; A may carry 200 (two of them) though the count band
    # alone would give A four.
    reps = [Rep("a", "A", capacity_value=200.0), Rep("b", "B"), Rep("c", "C")]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False, 100.0) for k in range(9)])
    dec: Decisions = policy().decide(book, settings(name, band=1.0))
    owners = owners_of(book, dec)
    value = pipeline(book, owners)
    assert value["a"] <= 200.0
    assert all(o in ("a", "b", "c") for o in owners.values())
    assert not any("value capacity" in n for n in dec.notes), dec.notes


@pytest.mark.parametrize(("name", "policy"), POLICIES)
def test_value_capacity_binds_where_count_does_not(name: str, policy: type) -> None:
    # A holds few tasks but they are big: the count band would keep them, value capacity moves them.
    reps = [Rep("a", "A", capacity_value=5_000.0), Rep("b", "B"), Rep("c", "C")]
    tasks: list[Task] = [(f"a{k}", f"aa{k}", "a", False, 4_000.0) for k in range(3)]
    tasks += [(f"b{k}", f"bb{k}", "b", False, 100.0) for k in range(3)]
    tasks += [(f"c{k}", f"cc{k}", "c", False, 100.0) for k in range(3)]
    book = make_book(reps, tasks)
    dec: Decisions = policy().decide(book, settings(name, band=1.0))
    owners = owners_of(book, dec)
    assert pipeline(book, owners)["a"] <= 5_000.0
    moved = [i for i in book.items if owners[i.key] != i.owner]
    # Only A's excess moves: two of its three accounts, nothing of B's or C's.
    assert len(moved) == 2 and all(i.owner == "a" for i in moved), [(i.key, owners[i.key]) for i in moved]
    for i in moved:
        assert "A over value capacity" in text(dec.by_key[i.key]), text(dec.by_key[i.key])
        assert "12,000" in text(dec.by_key[i.key]) and "5,000" in text(dec.by_key[i.key])


def test_rebalance_only_sheds_only_the_value_excess() -> None:
    reps = [Rep("a", "A", capacity_value=3_000.0), Rep("b", "B"), Rep("c", "C")]
    tasks: list[Task] = [(f"a{k}", f"aa{k}", "a", False, 1_000.0) for k in range(5)]
    tasks += [(f"b{k}", f"bb{k}", "b", False, 1_000.0) for k in range(5)]
    tasks += [(f"c{k}", f"cc{k}", "c", False, 1_000.0) for k in range(5)]
    book = make_book(reps, tasks)
    dec = OptimalPolicy().decide(book, settings("optimal", band=1.0, rebalance_only=True))
    owners = owners_of(book, dec)
    moved = [i for i in book.items if owners[i.key] != i.owner]
    assert len(moved) == 2 and all(i.owner == "a" for i in moved)
    assert all(
        "A over value capacity (their accounts hold 5,000 open pipeline > 3,000)" in text(dec.by_key[i.key])
        for i in moved
    )
    assert pipeline(book, owners)["a"] == 3_000.0


def test_one_account_stays_whole_under_value_capacity() -> None:
    # Account X (two tasks, 600 together) cannot go to A (capacity 500) even though each task would fit.
    reps = [Rep("a", "A", capacity_value=500.0), Rep("b", "B")]
    tasks: list[Task] = [("x1", "X", None, False, 300.0), ("x2", "X", None, False, 300.0)]
    tasks += [("y1", "Y", None, False, 300.0)]
    book = make_book(reps, tasks)
    for name, policy in POLICIES:
        owners = owners_of(book, policy().decide(book, settings(name, band=1.0)))
        assert owners["x1"] == owners["x2"] == "b", name


@pytest.mark.parametrize(("name", "policy"), POLICIES)
def test_value_shortfall_is_a_note_not_an_error(name: str, policy: type) -> None:
    reps = [Rep("a", "A", capacity_value=1_000.0), Rep("b", "B", capacity_value=1_500.0)]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False, 1_000.0) for k in range(4)])
    dec: Decisions = policy().decide(book, settings(name))
    owners = owners_of(book, dec)
    value = pipeline(book, owners)
    assert value["a"] <= 1_000.0 and value["b"] <= 1_500.0  # two accounts placed, two left unassigned
    assert sum(1 for o in owners.values() if o is None) == 2
    if name == "optimal":
        assert any("value capacity of 2 available reps totals 2,500 < 4,000 open pipeline" in n for n in dec.notes), (
            dec.notes
        )
    else:
        assert any("no rep has capacity" in n for n in dec.notes), dec.notes


@pytest.mark.parametrize(("name", "policy"), POLICIES)
def test_locked_value_over_capacity_is_named(name: str, policy: type) -> None:
    # A's locked cards alone exceed A's value capacity: nothing new goes to A, and a note names A.
    reps = [Rep("a", "A", capacity_value=1_000.0), Rep("b", "B")]
    tasks: list[Task] = [("l1", "L", "a", True, 2_000.0), ("t1", "T", None, False, 10.0)]
    book = make_book(reps, tasks)
    dec: Decisions = policy().decide(book, settings(name, band=1.0))
    owners = owners_of(book, dec)
    assert owners["l1"] == "a" and owners["t1"] == "b"
    assert any("A (2,000 > 1,000)" in n and "value capacity" in n for n in dec.notes), dec.notes


@pytest.mark.parametrize(("name", "policy"), POLICIES)
def test_balance_by_count_still_holds_with_value_capacity(name: str, policy: type) -> None:
    reps = [Rep("a", "A", capacity_value=10_000.0), Rep("b", "B", capacity_value=10_000.0), Rep("c", "C")]
    book = make_book(reps, [(f"t{k}", f"acc{k}", None, False, 1_000.0 + 10 * k) for k in range(12)])
    dec: Decisions = policy().decide(book, settings(name, band=0.25))
    owners = owners_of(book, dec)
    value = pipeline(book, owners)
    assert value["a"] <= 10_000.0 and value["b"] <= 10_000.0
    counts = {r: sum(1 for o in owners.values() if o == r) for r in "abc"}
    assert all(3 <= n <= 5 for n in counts.values()), counts


def _capped(book: Book, share: float) -> Book:
    """``book`` with every other available rep's value capacity at ``share`` × the mean open pipeline."""
    avail = [r for r in book.reps if r.available]
    mean = sum(i.value for i in book.items) / len(avail)
    reps = [replace(r, capacity_value=round(share * mean)) if k % 2 == 0 else r for k, r in enumerate(book.reps)]
    by_id = {r.id: r for r in reps}
    crm = replace(book.crm, reps=[by_id.get(r.id, r) for r in book.crm.reps])
    return replace(book, reps=reps, crm=crm)


def _over(book: Book, owners: dict[str, str | None]) -> list[str]:
    value = pipeline(book, owners)
    before = pipeline(book, {i.key: i.owner for i in book.items})
    return [
        r.id
        for r in book.reps
        if r.capacity_value is not None and value[r.id] > r.capacity_value + 1e-6 and value[r.id] > before[r.id]
    ]


@pytest.mark.parametrize("name", ["optimal", "balanced"])
def test_synthetic_book_with_value_capacity_and_idempotence(name: str) -> None:
    book = _capped(synthetic_book(600, 12, seed=21), 1.15)
    s = settings(name)
    pol = OptimalPolicy() if name == "optimal" else BalancedPolicy()
    first = pol.decide(book, s)
    owners = owners_of(book, first)
    assert _over(book, owners) == []
    value = pipeline(book, owners)
    assert all(value[r.id] <= r.capacity_value + 1e-6 for r in book.reps if r.capacity_value is not None)
    # Re-running on the applied plan changes nothing.
    after = apply_decisions(book, first)
    again = pol.decide(after, s)
    moved = [i.key for i in after.items if i.key in again.by_key and again.by_key[i.key].owner not in (None, i.owner)]
    assert moved == []


def test_price_heuristic_and_blocks_respect_value_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasksync.policies.optimal as optimal

    book = _capped(synthetic_book(1200, 24, seed=22), 1.1)
    s = settings("optimal")
    with monkeypatch.context() as mp:
        mp.setattr(optimal.solve, "LP_MAX", 0)  # the Lagrangian prices, repair and improvement
        pol = OptimalPolicy()
        owners = owners_of(book, pol.decide(book, s))
        assert pol.info.method == "prices+repair"
        assert _over(book, owners) == []
    with monkeypatch.context() as mp:
        mp.setattr(optimal, "BLOCK_REPS", 6)
        pol = OptimalPolicy()
        owners = owners_of(book, pol.decide(book, s))
        assert pol.info.method.startswith("blocks(4)")
        assert _over(book, owners) == []


def test_without_value_capacity_nothing_changes() -> None:
    # A value capacity above any rep's possible pipeline is the same as none.
    book = synthetic_book(500, 10, seed=23)
    big = replace(book, reps=[replace(r, capacity_value=1e12) for r in book.reps])
    for policy in (OptimalPolicy, BalancedPolicy):
        name = policy.name
        a = policy().decide(book, settings(name)).by_key
        b = policy().decide(big, settings(name)).by_key
        assert {k: d.owner for k, d in a.items()} == {k: d.owner for k, d in b.items()}, name


def test_capacity_value_column_is_read(tmp_path: Path) -> None:
    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "accounts.csv").write_text("Account ID,Account Name\na1,Acme\n", encoding="utf-8")
    (crm / "deals.csv").write_text("Deal ID,Deal Name,Stage,Account ID,Amount\nd1,Big,Lead,a1,100\n", encoding="utf-8")
    (crm / "history.csv").write_text("Deal ID,Stage,Closed\nh1,Won,2026-01-05\n", encoding="utf-8")
    (crm / "reps.csv").write_text(
        'Rep ID,Name,Capacity,Max Pipeline\nr1,Ann,10,"250,000"\nr2,Bob,5,\nr3,Cy,,1000.50\n', encoding="utf-8"
    )
    s = CrmSettings(folder=crm)
    data = load_crm(s, tmp_path)
    reps = {r.id: r for r in data.reps}
    assert reps["r1"].capacity_value == 250_000.0 and reps["r1"].capacity == 10
    assert reps["r2"].capacity_value is None
    assert reps["r3"].capacity_value == pytest.approx(1000.5) and reps["r3"].capacity is None
    # Exports without the column keep working.
    (crm / "reps.csv").write_text("Rep ID,Name,Capacity\nr1,Ann,10\n", encoding="utf-8")
    assert load_crm(s, tmp_path).reps[0].capacity_value is None
    # The default header and the Chinese synonym.
    (crm / "reps.csv").write_text("Rep ID,Name,Capacity Value\nr1,Ann,300\n", encoding="utf-8")
    assert load_crm(s, tmp_path).reps[0].capacity_value == 300.0
    (crm / "reps.csv").write_text("员工编号,姓名,最大商机金额\nr1,Ann,700\n", encoding="utf-8")
    assert load_crm(s, tmp_path).reps[0].capacity_value == 700.0
