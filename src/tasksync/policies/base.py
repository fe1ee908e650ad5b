"""The policy interface: a pure function from a book to decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from tasksync.policies.book import Book
from tasksync.settings import Settings

if TYPE_CHECKING:
    from tasksync.policies.scoring import WinModel

__all__ = ["Decision", "Decisions", "Policy"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one work item should look like. ``owner`` None leaves the owner as it is."""

    owner: str | None  # rep id
    priority: str | None = None
    score: float = 0.0  # expected value used for the priority
    reason: str = ""


@dataclass
class Decisions:
    by_key: dict[str, Decision] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model: WinModel | None = None  # the win model the policy fitted, shared with the KPIs


@runtime_checkable
class Policy(Protocol):
    """Decides owner and priority for every item of a book.

    A policy must not do I/O and must be deterministic: the same book gives the same decisions,
    and a book already in its desired state gives decisions that change nothing. Register your
    own under the ``tasksync.policies`` entry-point group and select it with ``[policy] name``.
    """

    name: ClassVar[str]

    def decide(self, book: Book, settings: Settings) -> Decisions: ...
