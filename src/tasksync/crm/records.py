"""CRM records as tasksync uses them, whatever CRM exported them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

__all__ = ["Account", "ClosedDeal", "CrmData", "Deal", "Rep"]


@dataclass(frozen=True, slots=True)
class Rep:
    """A sales rep from the team export."""

    id: str
    name: str
    email: str | None = None
    region: str | None = None
    role: str | None = None  # "hunter" (new accounts) or "farmer" (existing ones)
    sectors: tuple[str, ...] = ()  # sectors the rep is strong in
    capacity: int | None = None  # most open tasks the rep should hold
    capacity_value: float | None = None  # most open pipeline value (sum of deal values) the rep should hold
    quota: float | None = None  # monthly target
    available: bool = True  # False: away, gets nothing new


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    sector: str | None = None
    employees: int | None = None
    region: str | None = None
    owner: str | None = None  # rep id
    customer: bool = False  # an existing customer (farmer work) rather than a prospect


@dataclass(frozen=True, slots=True)
class Deal:
    """An open deal or lead."""

    id: str
    name: str
    stage: str
    account_id: str | None = None
    value: float = 0.0
    created: date | None = None
    close_date: date | None = None
    product: str | None = None
    owner: str | None = None  # rep id


@dataclass(frozen=True, slots=True)
class ClosedDeal:
    """A won or lost deal from history."""

    id: str
    won: bool
    closed: date
    account_id: str | None = None
    value: float = 0.0
    created: date | None = None
    product: str | None = None
    owner: str | None = None  # rep id
    sector: str | None = None
    region: str | None = None


@dataclass
class CrmData:
    """Everything read from one set of exports, plus what could not be used."""

    reps: list[Rep] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    history: list[ClosedDeal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # ``file:line:column: ...`` notes
    row_counts: dict[str, int] = field(default_factory=dict)

    @cached_property
    def reps_by_id(self) -> dict[str, Rep]:
        return {r.id: r for r in self.reps}

    @cached_property
    def accounts_by_id(self) -> dict[str, Account]:
        return {a.id: a for a in self.accounts}

    @cached_property
    def deals_by_id(self) -> dict[str, Deal]:
        return {d.id: d for d in self.deals}
