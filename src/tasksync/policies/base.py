"""The policy interface: a pure function from a book and the team's rules to decisions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from tasksync.policies.book import Book
from tasksync.policies.reasons import Band, Reason
from tasksync.settings import PolicySettings, PrioritySettings, Settings

if TYPE_CHECKING:
    from tasksync.policies.scoring import WinModel

__all__ = ["Decision", "Decisions", "Policy", "Rules"]


@dataclass(frozen=True, slots=True)
class Rules:
    """What a policy may read of the configuration: the ``[policy]`` and ``[priority]`` sections,
    never the whole :class:`~tasksync.settings.Settings` (which carries secrets)."""

    policy: PolicySettings = field(default_factory=PolicySettings)
    priority: PrioritySettings = field(default_factory=PrioritySettings)

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(settings.policy, settings.priority)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one work item should look like. ``owner`` None leaves the owner as it is.

    ``reason`` says why the owner is what it is, ``priority_reason`` why the tier is (both data:
    :class:`~tasksync.policies.reasons.Reason`; a plug-in may still give plain text).
    """

    owner: str | None  # rep id
    priority: str | None = None
    score: float = 0.0  # expected value used for the priority
    reason: Reason | str | None = None
    priority_reason: Reason | None = None


@dataclass
class Decisions:
    """Decisions per item key, notes for the plan, and what the division was measured against:
    ``bands`` ("count", "value") as the policy used them, ``value_targets`` each rep's own value
    band, ``moved`` owned cards moved by cause, and the win ``model`` whose expected values the
    reasons cite."""

    by_key: dict[str, Decision] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bands: dict[str, Band] = field(default_factory=dict)
    moved: Counter[str] = field(default_factory=Counter)
    model: WinModel | None = None
    # Per available rep id: their value band around their own value target (``value_target``).
    value_targets: dict[str, Band] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """Decides owner and priority for every item of a book.

    A policy must not do I/O and must be deterministic: the same book gives the same decisions,
    and a book already in its desired state gives decisions that change nothing. Register your
    own under the ``tasksync.policies`` entry-point group and select it with ``[policy] name``.
    """

    name: ClassVar[str]

    def decide(self, book: Book, rules: Rules) -> Decisions: ...
