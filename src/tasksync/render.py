"""Presenting plans, outcomes and KPIs: terminal tables and the JSON shared with scripts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from tasksync.kpi import Kpis, compute_kpis, owners_after
from tasksync.model import Field, Plan
from tasksync.sync.engine import ApplyOutcome, PlanResult

__all__ = ["RepShift", "plan_json", "print_outcome", "print_plan", "print_report", "rep_shifts"]


@dataclass
class RepShift:
    rep_id: str
    name: str
    available: bool
    before: int
    after: int
    gained: int
    lost: int


def rep_shifts(result: PlanResult) -> list[RepShift]:
    """Per rep: open tasks before and after the plan, and how many each gains and loses."""
    book, plan = result.book, result.plan
    member_rep = {m: r for r, m in book.rep_member.items()}
    after_members: dict[str, tuple[str, ...]] = {
        c.task_id: c.after for c in plan.changes if c.field is Field.ASSIGNEES and isinstance(c.after, tuple)
    }
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for t in result.snapshot.tasks:
        old = {member_rep[m] for m in t.assignees if m in member_rep}
        new = {member_rep[m] for m in after_members.get(t.id, t.assignees) if m in member_rep}
        before.update(old)
        after.update(new)
        gained.update(new - old)
        lost.update(old - new)
    for n in plan.creates:
        new = {member_rep[m] for m in n.assignees if m in member_rep}
        after.update(new)
        gained.update(new)
    return [
        RepShift(r.id, r.name, r.available, before[r.id], after[r.id], gained[r.id], lost[r.id])
        for r in sorted(book.reps, key=lambda r: r.name)
    ]


def plan_json(result: PlanResult) -> dict[str, Any]:
    """The plan, per-rep shifts and KPIs before/after: one schema for scripts and reports."""
    owners = owners_after(result.book, {k: d.owner for k, d in result.decisions.by_key.items()})
    return {
        "plan": result.plan.to_json(),
        "reps": [s.__dict__ for s in rep_shifts(result)],
        "kpis_before": compute_kpis(result.book).as_dict(),
        "kpis_after": compute_kpis(result.book, owners).as_dict(),
    }


def _fmt(value: object, names: dict[str, str]) -> str:
    if isinstance(value, tuple):
        return ", ".join(names.get(str(v), str(v)) for v in value) or "(nobody)"
    return "(none)" if value is None else str(value)


def print_plan(result: PlanResult, console: Console, limit: int = 15) -> None:
    plan = result.plan
    names = {m.id: m.name for m in result.snapshot.members}
    stages = {s.id: s.name for s in result.snapshot.stages}
    names.update(stages)
    moves = [c for c in plan.changes if c.field is Field.ASSIGNEES]
    prio = [c for c in plan.changes if c.field is Field.PRIORITY]
    console.print(
        f"[bold]Plan {plan.id}[/bold] for {result.snapshot.name} ({plan.board}): "
        f"{len(moves)} owner changes, {len(prio)} priority changes, "
        f"{len([c for c in plan.changes if c.field is Field.STAGE])} stage moves, "
        f"{len(plan.creates)} cards to create, {len(plan.conflicts)} conflicts"
    )
    shifts = rep_shifts(result)
    avail = [s for s in shifts if s.available]
    mean = sum(s.after for s in avail) / len(avail) if avail else 0.0
    table = Table(title="Workload per rep (open tasks)", show_edge=False)
    for col in ("Rep", "Before", "After", "Gained", "Lost", ""):
        table.add_column(col, justify="left" if col in ("Rep", "") else "right")
    for s in shifts:
        mark = "away" if not s.available else ""
        table.add_row(s.name, str(s.before), str(s.after), f"+{s.gained}", f"-{s.lost}", mark)
    console.print(table)
    if avail:
        console.print(f"Mean workload of available reps: {mean:.1f} tasks")
    if prio:
        by_tier = Counter(str(c.after) for c in prio)
        console.print("Priority changes: " + ", ".join(f"{t}: {n}" for t, n in sorted(by_tier.items())))
    if plan.changes:
        t = Table(
            title=f"Changes (first {min(limit, len(plan.changes))} of {len(plan.changes)})",
            show_edge=False,
        )
        for col in ("Card", "Field", "From", "To", "Why"):
            t.add_column(col)
        for c in plan.changes[:limit]:
            t.add_row(
                c.title[:40],
                c.field.value,
                _fmt(c.before, names),
                _fmt(c.after, names),
                c.reason[:70],
            )
        console.print(t)
    if plan.creates:
        console.print(f"Cards to create ({len(plan.creates)}):")
        for n in plan.creates[:limit]:
            console.print(f"  + {n.title} in {stages.get(n.stage_id, n.stage_id)} for {_fmt(n.assignees, names)}")
    for k in plan.conflicts[:limit]:
        console.print(
            f"[yellow]conflict[/yellow]: {k.title!r} {k.field.value} was set to {_fmt(k.current, names)} by a person "
            f"(tasksync wrote {_fmt(k.last_written, names)}); left alone (use --force to override)"
        )
    for note in plan.notes:
        console.print(f"[dim]note[/dim]: {note}")
    if plan.empty:
        console.print("Nothing to change: the board already matches the policy.")


def print_outcome(plan: Plan, outcome: ApplyOutcome, console: Console) -> None:
    console.print(
        f"Applied plan {plan.id}: {outcome.done} changes written"
        + (f", {outcome.created} cards created" if outcome.created else "")
        + (f", [red]{len(outcome.failed)} failed[/red]" if outcome.failed else "")
        + (f", {len(outcome.conflicts)} conflicts" if outcome.conflicts else "")
    )
    for f in outcome.failed[:20]:
        console.print(f"  [red]failed[/red]: {f}")
    for c in outcome.conflicts[:20]:
        console.print(f"  [yellow]conflict[/yellow]: {c}")


def print_report(kpis: Kpis, console: Console) -> None:
    table = Table(title="KPIs per rep", show_edge=False)
    cols = ["Rep", "Open", "Pipeline", "Expected", "Conv.", *[m[2:] for m in kpis.months]]
    for c in cols:
        table.add_column(c, justify="left" if c == "Rep" else "right")
    for r in kpis.reps:
        conv = f"{r.conversion:.0%}" if r.conversion is not None else "-"
        name = r.name + ("" if r.available else " (away)")
        table.add_row(
            name,
            str(r.open_tasks),
            f"{r.pipeline:,.0f}",
            f"{r.expected_value:,.0f}",
            conv,
            *[f"{r.won_by_month[m]:,.0f}" for m in kpis.months],
        )
    console.print(table)
    seg = Table(title="KPIs per segment (sector)", show_edge=False)
    for c in ("Segment", "Open", "Pipeline", "Expected", "Conv."):
        seg.add_column(c, justify="left" if c == "Segment" else "right")
    for s in kpis.segments:
        conv = f"{s.conversion:.0%}" if s.conversion is not None else "-"
        seg.add_row(s.segment, str(s.open_tasks), f"{s.pipeline:,.0f}", f"{s.expected_value:,.0f}", conv)
    console.print(seg)
    if kpis.unowned_tasks:
        console.print(f"{kpis.unowned_tasks} open tasks have no owner among the reps")
