"""Division and priority policies, registered by name (entry-point group ``tasksync.policies``)."""

from __future__ import annotations

from importlib.metadata import entry_points

from tasksync.errors import ConfigError
from tasksync.policies.base import Decision, Decisions, Policy, Rules
from tasksync.policies.book import Book, WorkItem, build_book
from tasksync.policies.reasons import Band, Reason, ReasonKind

__all__ = [
    "Band",
    "Book",
    "Decision",
    "Decisions",
    "Policy",
    "Reason",
    "ReasonKind",
    "Rules",
    "WorkItem",
    "build_book",
    "get_policy",
]

GROUP = "tasksync.policies"


def available_policies() -> dict[str, str]:
    """Policy names and the class each entry point names."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def get_policy(name: str) -> Policy:
    """The policy registered as ``name``; built-ins are found even without installed metadata."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            try:
                cls = ep.load()
            except Exception as e:  # a third-party plugin that fails to import
                raise ConfigError(f"policy {name!r} ({ep.value}) cannot be loaded: {e}") from None
            policy = cls()
            if not isinstance(policy, Policy):
                raise ConfigError(f"policy {name!r} ({ep.value}) has no decide(book, rules)")
            return policy
    from tasksync.policies.balanced import BalancedPolicy
    from tasksync.policies.optimal import OptimalPolicy
    from tasksync.policies.roundrobin import RoundRobinPolicy

    builtins: dict[str, type[Policy]] = {
        "balanced": BalancedPolicy,
        "optimal": OptimalPolicy,
        "round-robin": RoundRobinPolicy,
    }
    if name in builtins:
        return builtins[name]()
    known = sorted(set(available_policies()) | set(builtins))
    raise ConfigError(f"unknown policy {name!r} (policy.name); known: {', '.join(known)}")
