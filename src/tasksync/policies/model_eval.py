"""Evaluating the win model and the division policies.

* :func:`backtest` - time-split backtest of :class:`WinModel`: fit on deals closed before
  ``split_date``, score the deals closed on or after it as they looked on ``split_date`` (their age
  then), and report log loss and Brier score against the global base rate and a per-segment-only
  model (sector rates, no product, rep or age terms).
* :func:`synthetic_book` - a seeded synthetic book (reps, accounts, open deals as tasks, history with
  rep skill, sector strength, product and deal-age effects) for tests and benchmarks.
* :func:`apply_decisions` - the book as it would be after a plan made of the decisions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep
from tasksync.policies.base import Decisions
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.scoring import WinModel

__all__ = ["BacktestResult", "Score", "apply_decisions", "backtest", "real_shaped_book", "synthetic_book"]


@dataclass(frozen=True)
class Score:
    log_loss: float
    brier: float


@dataclass(frozen=True)
class BacktestResult:
    n_train: int
    n_test: int
    model: Score
    base_rate: Score
    segment_only: Score

    def beats_baselines(self) -> bool:
        return self.model.log_loss < min(self.base_rate.log_loss, self.segment_only.log_loss)

    def table(self) -> str:
        rows = [("model", self.model), ("segment only", self.segment_only), ("base rate", self.base_rate)]
        lines = [f"backtest: {self.n_train} train / {self.n_test} test deals", f"{'':14}{'log loss':>10}{'Brier':>9}"]
        lines += [f"{n:14}{s.log_loss:10.4f}{s.brier:9.4f}" for n, s in rows]
        return "\n".join(lines)


def _score(probs: list[float], outcomes: list[bool]) -> Score:
    if not probs:
        return Score(math.nan, math.nan)
    ll = 0.0
    br = 0.0
    for p, y in zip(probs, outcomes, strict=True):
        p = min(max(p, 1e-6), 1 - 1e-6)
        ll -= math.log(p) if y else math.log(1 - p)
        br += (p - (1.0 if y else 0.0)) ** 2
    return Score(ll / len(probs), br / len(probs))


def _as_item(d: ClosedDeal, crm: CrmData | None) -> WorkItem:
    account = crm.accounts_by_id.get(d.account_id) if crm and d.account_id else None
    if d.sector or d.region:
        base = account or Account(d.account_id or f"closed:{d.id}", d.id)
        account = replace(base, sector=d.sector or base.sector, region=d.region or base.region)
    deal = Deal(d.id, d.id, "", d.account_id, d.value, d.created, None, d.product, d.owner)
    return WorkItem(d.id, d.id, None, "", deal, account, d.owner, created=d.created)


def backtest(
    history: Iterable[ClosedDeal], split_date: date, crm: CrmData | None = None, smoothing: float = 20.0
) -> BacktestResult:
    """Train on deals closed before ``split_date``; score those closed from it on (see module doc)."""
    deals = list(history)
    train = [d for d in deals if d.closed < split_date]
    test = [d for d in deals if d.closed >= split_date]
    model = WinModel.fit(train, crm, smoothing, today=split_date)
    segment = WinModel(base=model.base, smoothing=smoothing, sector=dict(model.sector))
    items = [_as_item(d, crm) for d in test]
    # Deals created after the split were not open yet: score them at age 0.
    items = [replace(i, created=min(i.created, split_date)) if i.created else i for i in items]
    ys = [d.won for d in test]
    return BacktestResult(
        len(train),
        len(test),
        _score([model.probability(i, i.owner) for i in items], ys),
        _score([model.base] * len(items), ys),
        _score([segment.probability(i, None) for i in items], ys),
    )


def apply_decisions(book: Book, decisions: Decisions) -> Book:
    """The book after a plan of ``decisions``: owners and priorities updated, everything else kept."""
    items = []
    for i in book.items:
        d = decisions.by_key.get(i.key)
        if d is None:
            items.append(i)
            continue
        items.append(replace(i, owner=d.owner or i.owner, priority=d.priority or i.priority))
    return Book(book.reps, book.rep_member, items, book.crm, list(book.notes), book.today)


SECTORS = ("software", "retail", "health", "finance", "energy", "logistics", "media", "public")
REGIONS = ("north", "south", "east", "west", "central")
PRODUCTS = ("core", "plus", "suite", "services")
STAGES = ("Lead", "Qualified", "Proposal", "Negotiation")


def synthetic_book(
    n_tasks: int,
    n_reps: int,
    seed: int = 0,
    *,
    owned_share: float = 0.8,
    away_share: float = 0.05,
    locked_share: float = 0.02,
    capacity_slack: float = 1.6,
    history_per_rep: int = 60,
    today: date = date(2026, 6, 1),
    tasks_per_account: float = 2.5,
    years_old: int = 0,
    ids_are_names: bool = False,
) -> Book:
    """A seeded book of ``n_tasks`` open deals (one task each) on ~``n_tasks / 2.5`` accounts.

    Reps differ in skill (lognormal) and are much better in their two strong sectors; history is drawn
    from those true rates (with products and a falling win rate for long cycles), so a model that
    learns rep, sector and age effects scores better than one that does not. Current owners are
    uneven (some reps hold far more than others), ``away_share`` of reps are away, and
    ``locked_share`` of tasks are pinned. ``years_old`` shifts the history and the deals' creation
    dates that many years before ``today`` (an export from an old CRM); ``ids_are_names`` gives reps
    their names as ids (exports that name owners instead of numbering them).
    """
    rng = random.Random(seed)
    reps, skill = _synthetic_reps(rng, n_reps, n_tasks / max(n_reps, 1), capacity_slack, away_share, ids_are_names)
    truth = _Truth(skill, {s: rng.uniform(0.15, 0.45) for s in SECTORS}, {p: rng.uniform(0.7, 1.3) for p in PRODUCTS})
    shift = timedelta(days=365 * years_old)
    load_weight = [rng.paretovariate(2.5) for _ in reps]  # uneven current ownership: a few reps hold a lot
    accounts = _synthetic_accounts(rng, max(1, round(n_tasks / tasks_per_account)), reps, load_weight)
    board_owner: dict[str, str | None] = {}
    for a in accounts:
        if rng.random() < owned_share and reps:
            board_owner[a.id] = a.owner if a.owner and rng.random() < 0.7 else rng.choices(reps, load_weight)[0].id
        else:
            board_owner[a.id] = None
    deals, items = _synthetic_tasks(rng, n_tasks, accounts, board_owner, locked_share, today, shift)
    history = _synthetic_history(rng, reps, n_reps * history_per_rep, truth, today - shift)
    crm = CrmData(reps=reps, accounts=accounts, deals=deals, history=history)
    return Book(list(reps), {r.id: r.id for r in reps}, items, crm, [], today)


@dataclass(frozen=True)
class _Truth:
    """The true win rates a synthetic history is drawn from."""

    skill: dict[str, float]
    sector_rate: dict[str, float]
    product_lift: dict[str, float]

    def p(self, rep: Rep, sector: str, product: str, age: int) -> float:
        p = self.sector_rate[sector] * self.product_lift[product] * (0.85 if age > 120 else 1.1 if age < 45 else 1.0)
        p *= self.skill[rep.id] * (1.4 if sector in rep.sectors else 0.9)
        return min(max(p, 0.01), 0.95)


def _synthetic_reps(
    rng: random.Random, n_reps: int, mean_load: float, slack: float, away_share: float, ids_are_names: bool
) -> tuple[list[Rep], dict[str, float]]:
    reps: list[Rep] = []
    skill: dict[str, float] = {}
    for k in range(n_reps):
        rid = f"Rep {k:04d}" if ids_are_names else f"rep{k:04d}"
        reps.append(
            Rep(
                rid,
                f"Rep {k:04d}",
                f"{rid}@example.com",
                region=rng.choice(REGIONS),
                role=rng.choice(("hunter", "farmer")),
                sectors=tuple(rng.sample(SECTORS, 2)),
                capacity=math.ceil(mean_load * slack * rng.uniform(0.9, 1.2)),
                available=rng.random() >= away_share,
            )
        )
        skill[rid] = math.exp(rng.gauss(0.0, 0.35))
    return reps, skill


def _synthetic_accounts(rng: random.Random, n: int, reps: list[Rep], load_weight: list[float]) -> list[Account]:
    accounts: list[Account] = []
    for k in range(n):
        owner = rng.choices(reps, load_weight)[0].id if reps and rng.random() < 0.7 else None
        accounts.append(
            Account(
                f"acc{k:06d}",
                f"Account {k:06d}",
                sector=rng.choice(SECTORS),
                employees=int(rng.lognormvariate(4, 1.5)),
                region=rng.choice(REGIONS),
                owner=owner,
                customer=rng.random() < 0.4,
            )
        )
    return accounts


def _synthetic_tasks(
    rng: random.Random,
    n_tasks: int,
    accounts: list[Account],
    board_owner: dict[str, str | None],
    locked_share: float,
    today: date,
    shift: timedelta,
) -> tuple[list[Deal], list[WorkItem]]:
    deals: list[Deal] = []
    items: list[WorkItem] = []
    for t in range(n_tasks):
        # The first len(accounts) tasks give every account one; the rest land on accounts at random.
        a = accounts[t] if t < len(accounts) else accounts[rng.randrange(len(accounts))]
        age = int(rng.expovariate(1 / 70))
        d = Deal(
            f"deal{t:06d}",
            f"{a.name} #{t}",
            rng.choice(STAGES),
            a.id,
            value=round(rng.lognormvariate(9.0, 0.9), 2),
            created=today - shift - timedelta(days=age),
            close_date=today + timedelta(days=rng.randint(-10, 120)),
            product=rng.choice(PRODUCTS),
            owner=a.owner,
        )
        deals.append(d)
        owner = board_owner[a.id]
        pin = owner is not None and rng.random() < locked_share
        items.append(
            WorkItem(
                key=f"task{t:06d}",
                title=d.name,
                task_id=f"task{t:06d}",
                stage=d.stage,
                deal=d,
                account=a,
                owner=owner,
                locked=pin,
                pinned=pin,
                due=d.close_date,
                created=d.created,
            )
        )
    return deals, items


def _synthetic_history(rng: random.Random, reps: list[Rep], n: int, truth: _Truth, end: date) -> list[ClosedDeal]:
    history: list[ClosedDeal] = []
    for k in range(n):
        rep = rng.choice(reps)
        sector = rng.choice(rep.sectors) if rng.random() < 0.4 else rng.choice(SECTORS)
        product = rng.choice(PRODUCTS)
        cycle = int(rng.expovariate(1 / 70))
        closed = end - timedelta(days=rng.randint(1, 720))
        history.append(
            ClosedDeal(
                f"h{k:07d}",
                rng.random() < truth.p(rep, sector, product, cycle),
                closed,
                None,
                round(rng.lognormvariate(9.0, 0.9), 2),
                closed - timedelta(days=cycle),
                product,
                rep.id,
                sector,
                rng.choice(REGIONS),
            )
        )
    return history


def real_shaped_book(n_tasks: int, n_reps: int, seed: int = 0) -> Book:
    """A book shaped like a real public B2B pipeline: many reps, many small accounts, a third of the
    cards owned, deals and history years older than today, reps named rather than numbered."""
    return synthetic_book(
        n_tasks,
        n_reps,
        seed,
        owned_share=0.3,
        away_share=0.03,
        tasks_per_account=1.6,
        years_old=3,
        ids_are_names=True,
    )
