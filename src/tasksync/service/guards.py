"""What scheduled mode may apply on its own, and the guards that pause the service instead.

- :func:`scheduled_filter`: keep owner changes only for tasks with no rep owner or an owner away;
- :func:`scheduled_locks`: the tasks whose owner scheduled mode keeps (the others' complement);
- :func:`check_plan_limits`: pause when a plan still moves or creates too much of the board;
- :func:`compare_counts`: pause when a CRM export lost most of its rows since the last run.
"""

from __future__ import annotations

from collections.abc import Callable

from tasksync.errors import SafetyStop
from tasksync.model import Change, Field, Plan, Snapshot, Task
from tasksync.policies import Book
from tasksync.settings import ServiceSettings

__all__ = ["check_plan_limits", "compare_counts", "scheduled_filter", "scheduled_locks"]


def _owner_keeper(book: Book) -> Callable[[Task | None], bool]:
    """Whether scheduled mode keeps a task's owner: it has a rep among its assignees and every
    one of its rep owners is available. The member-to-rep map is built once per plan."""
    member_rep = {m: r for r, m in book.rep_member.items()}
    reps = book.crm.reps_by_id

    def kept(task: Task | None) -> bool:
        owners = [member_rep[m] for m in (task.assignees if task else ()) if m in member_rep]
        return bool(owners) and all(reps[o].available for o in owners if o in reps)

    return kept


def scheduled_locks(snapshot: Snapshot, book: Book) -> set[str]:
    """The tasks whose owner scheduled mode keeps. Deciding with these locked gives a division
    scheduled mode can apply whole, so its priorities are tiered for the owners the board will
    really have (and the next run has nothing left to do)."""
    kept = _owner_keeper(book)
    return {t.id for t in snapshot.tasks if kept(t)}


def scheduled_filter(plan: Plan, snapshot: Snapshot, book: Book) -> list[Change]:
    """Keep only the owner changes scheduled mode may make; return the ones held back.

    An owner change is kept when the task has no rep among its assignees, or when one of its
    rep owners is away (``available = no``). Priority, stage changes and creates are kept.
    """
    keeps_owner = _owner_keeper(book)
    kept: list[Change] = []
    held: list[Change] = []
    for c in plan.changes:
        if c.field is Field.ASSIGNEES and keeps_owner(snapshot.task(c.task_id)):
            held.append(c)
        else:
            kept.append(c)
    plan.changes = kept
    return held


def check_plan_limits(plan: Plan, snapshot: Snapshot, cfg: ServiceSettings, board: str, rebalance: bool) -> None:
    """Raise :class:`SafetyStop` when the plan changes the owner of more than
    ``max_move_share`` (``max_rebalance_share`` for a rebalance) of the tasks, or creates more
    than ``max_create_share`` of the board's count of cards (at least 3 either way)."""
    moves = sum(1 for c in plan.changes if c.field is Field.ASSIGNEES)
    share, name = (
        (cfg.max_rebalance_share, "max_rebalance_share") if rebalance else (cfg.max_move_share, "max_move_share")
    )
    if moves > max(3.0, share * len(snapshot.tasks)):
        raise SafetyStop(
            f"{board}: the plan would change the owner of {moves} of {len(snapshot.tasks)} tasks "
            f"(more than service.{name} = {share:.0%}); not applied. "
            "Review it with `tasksync plan` and apply by hand, or raise the limit"
        )
    if len(plan.creates) > max(3.0, cfg.max_create_share * len(snapshot.tasks)):
        raise SafetyStop(
            f"{board}: the plan would create {len(plan.creates)} cards on a board of {len(snapshot.tasks)} "
            f"(more than service.max_create_share = {cfg.max_create_share:.0%}); not applied. "
            "Review it with `tasksync plan` and apply by hand, or raise the limit"
        )


def compare_counts(previous: dict[str, int], current: dict[str, int], threshold: float) -> list[str]:
    """Exports that lost more than ``threshold`` of their rows (or vanished) since ``previous``."""
    import tasksync.crm

    helper = getattr(tasksync.crm, "compare_row_counts", None)  # the shared helper, where this tree has it
    if helper is not None and 0 < threshold <= 1:
        return [str(x) for x in helper(previous, current, threshold)]
    problems = []
    for kind, before in sorted(previous.items()):
        now = current.get(kind, 0)
        if before > 0 and (before - now) / before > threshold:
            problems.append(f"{kind}: {now} rows, was {before} (lost {(before - now) / before:.0%})")
    return problems
