"""KPIs per rep and per segment: open tasks, pipeline, expected value, won value, conversion.

Computed from the book (board joined with CRM) and closed-deal history; ``owners`` lets the
same figures be computed for the book as a plan would leave it. Expected values come from one win
model per book (:func:`kpi_model`): the one the policy fitted when there is one, so a plan's
KPIs before and after, and the policy's own scores, all use the same fit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from tasksync.crm.records import ClosedDeal
from tasksync.errors import ConfigError
from tasksync.policies.base import Decisions
from tasksync.policies.book import Book, segment_of
from tasksync.policies.scoring import WinModel

__all__ = ["Kpis", "RepKpi", "ReportWindow", "compute_kpis", "kpi_model", "owners_after", "report_window"]


@dataclass
class RepKpi:
    rep_id: str
    name: str
    available: bool = True
    open_tasks: int = 0
    pipeline: float = 0.0
    expected_value: float = 0.0
    won_by_month: dict[str, float] = field(default_factory=dict)
    won: int = 0
    closed: int = 0
    quota: float | None = None

    @property
    def conversion(self) -> float | None:
        return self.won / self.closed if self.closed else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion": self.conversion}


@dataclass
class SegmentKpi:
    segment: str
    open_tasks: int = 0
    pipeline: float = 0.0
    expected_value: float = 0.0
    won: int = 0
    closed: int = 0

    @property
    def conversion(self) -> float | None:
        return self.won / self.closed if self.closed else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion": self.conversion}


@dataclass
class Kpis:
    reps: list[RepKpi]
    segments: list[SegmentKpi]
    months: list[str]
    unowned_tasks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "months": self.months,
            "reps": [r.as_dict() for r in self.reps],
            "segments": [s.as_dict() for s in self.segments],
            "unowned_tasks": self.unowned_tasks,
        }


@dataclass(frozen=True)
class ReportWindow:
    """The months KPIs count won value over, and why those (said in every report)."""

    months: list[str]
    explain: str
    # Asked to end (--until) before today's month: the period is over, and the pipeline as it was
    # then is not kept (the CRM exports and the board are today's), so no coverage is given for it.
    ended: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"months": self.months, "explain": self.explain, "ended": self.ended}


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_key(i: int) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def report_window(
    history: Sequence[ClosedDeal], today: date, n: int = 6, since: date | None = None, until: date | None = None
) -> ReportWindow:
    """By default the last ``n`` months that have closed deals (up to ``today``), so a history that
    ended before today does not show empty months; ``since``/``until`` pick the months instead."""
    if since is not None and until is not None and since > until:
        raise ConfigError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    closed = [d.closed for d in history if d.closed <= today]
    last = max(closed) if closed else None
    if until is not None:
        end, why = _month_index(until), f"until {until:%Y-%m} as asked"
    elif since is not None:
        end = max(_month_index(since), _month_index(last or today))
        why = f"since {since:%Y-%m} as asked, to the last month with closed deals"
    elif last is not None:
        end = _month_index(last)
        why = (
            f"the last {n} months with closed deals (the history ends {last.isoformat()})"
            if end < _month_index(today)
            else f"the last {n} months"
        )
    else:
        end, why = _month_index(today), f"the last {n} months (no closed deals in the history)"
    start = _month_index(since) if since is not None else end - n + 1
    if since is not None and until is not None:
        why = f"{since:%Y-%m} to {until:%Y-%m} as asked"
    months = [_month_key(i) for i in range(start, end + 1)]
    # Conversion is counted over every closed deal: say so beside the window it is not limited to.
    conversion = (
        f" Conversion: won ÷ closed over the whole history ({min(closed):%Y-%m} to {last:%Y-%m})." if last else ""
    )
    return ReportWindow(
        months,
        f"Won value over {months[0]} to {months[-1]}: {why}; change with --since/--until.{conversion}",
        ended=until is not None and end < _month_index(today),
    )


def kpi_model(book: Book, decisions: Decisions | None = None) -> WinModel:
    """The win model for the KPIs: the policy's own when its decisions carry it, else one fit
    over the history (the default policy's fit). Fit once per book and pass it to every
    :func:`compute_kpis` call on that book."""
    if decisions is not None and decisions.model is not None:
        return decisions.model
    p = book.policy
    return WinModel.fit(
        book.crm.history,
        book.crm,
        p.smoothing,
        today=book.today,
        stage_order=p.stage_order,
        stage_weight=p.stage_weight,
    )


def compute_kpis(
    book: Book,
    owners: Mapping[str, str | None] | None = None,
    model: WinModel | None = None,
    months: int = 6,
    window: ReportWindow | None = None,
) -> Kpis:
    """KPIs for the book; ``owners`` (item key -> rep id) overrides current owners.

    ``model``: the book's :func:`kpi_model` (fitted here when not given; pass it when computing
    the KPIs of one book more than once)."""
    model = model or kpi_model(book)
    reps = {r.id: RepKpi(r.id, r.name, r.available, quota=r.quota) for r in book.crm.reps}
    segs: dict[str, SegmentKpi] = {}
    month_keys = (window or report_window(book.crm.history, book.today, months)).months
    unowned = 0
    for item in book.items:
        owner = owners.get(item.key, item.owner) if owners is not None else item.owner
        ev = model.expected_value(item, owner)
        seg = segs.setdefault(item.segment, SegmentKpi(item.segment))
        seg.open_tasks += 1
        seg.pipeline += item.value
        seg.expected_value += ev
        if owner in reps:
            k = reps[owner]
            k.open_tasks += 1
            k.pipeline += item.value
            k.expected_value += ev
        else:
            unowned += 1
    won_month: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    accounts = book.crm.accounts_by_id
    for d in book.crm.history:
        account = accounts.get(d.account_id) if d.account_id else None
        name = segment_of(
            d.sector or (account.sector if account else None),
            d.region or (account.region if account else None),
            account.employees if account else None,
            d.value,
            book.policy,
        )
        seg = segs.setdefault(name, SegmentKpi(name))
        seg.closed += 1
        seg.won += d.won
        if d.owner in reps:
            reps[d.owner].closed += 1
            reps[d.owner].won += d.won
            if d.won:
                won_month[d.owner][f"{d.closed:%Y-%m}"] += d.value
    for rid, k in reps.items():
        k.won_by_month = {m: round(won_month[rid].get(m, 0.0), 2) for m in month_keys}
    return Kpis(
        sorted(reps.values(), key=lambda k: k.name),
        sorted(segs.values(), key=lambda s: -s.pipeline),
        month_keys,
        unowned,
    )


def owners_after(book: Book, decisions_owner: Mapping[str, str | None]) -> dict[str, str | None]:
    """Item key -> owner after a plan: the decision's owner where it set one, else the current."""
    return {i.key: (decisions_owner.get(i.key) or i.owner) for i in book.items}
