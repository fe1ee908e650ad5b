"""Presenting plans, outcomes and KPIs in the terminal (rich).

The views read the data dict of :mod:`tasksync.report_data` (:func:`plan_json`, :func:`report_json`,
re-exported here), the same that ``--json``, the HTML report and the review page show.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tasksync.kpi import Kpis
from tasksync.model import Conflict, Field, FieldValue, Plan
from tasksync.report_data import (
    SCHEMA,
    RepShift,
    plan_json,
    reason_kind,
    rep_shifts,
    report_json,
)
from tasksync.sync.engine import ApplyOutcome, PlanResult
from tasksync.team.targets import print_targets

if TYPE_CHECKING:
    from tasksync.settings import Settings

__all__ = [
    "SCHEMA",
    "RepShift",
    "apply_progress",
    "plan_json",
    "print_outcome",
    "print_plan",
    "print_report",
    "print_undo_outcome",
    "reason_kind",
    "rep_shifts",
    "report_json",
]

# --- terminal ----------------------------------------------------------------------------------


def _plain(console: Console) -> bool:
    """ASCII output without colour: not a terminal, or --no-color / NO_COLOR."""
    return console.no_color or not console.is_terminal


def _bar(
    value: float,
    scale: float,
    width: int,
    plain: bool,
    style: str,
    band: tuple[float, float] | None = None,
) -> Text:
    """A horizontal bar of ``width`` cells; the band is shaded (``[ ]`` in plain output)."""
    n = round(value / scale * width) if scale > 0 else 0
    lo = hi = -1
    if band is not None and scale > 0:
        lo = min(width, round(band[0] / scale * width))
        hi = min(width, round(band[1] / scale * width))
    text = Text()
    for i in range(width + 1):
        filled = i < n
        if plain:
            if i == lo:
                text.append("[")
            elif i == hi:
                text.append("]")
            elif i < width:
                text.append("#" if filled else ("." if lo <= i < hi else " "))
        elif i < width:
            in_band = lo <= i < hi
            if filled:
                text.append("█", style=style + (" on grey30" if in_band else ""))
            else:
                text.append("░" if in_band else " ", style="grey50" if in_band else "")
    if plain:
        text.rstrip()
    return text


def _in_band(value: float, band: Mapping[str, float]) -> bool:
    return band["lower"] - 0.5 <= value <= band["upper"] + 0.5


def _workload_table(data: Mapping[str, Any], console: Console, title: str, show_shift: bool) -> None:
    plain = _plain(console)
    band = data["band"]["workload"]
    rows = data["reps"]
    scale = max([band["upper"], *(r["before"] for r in rows), *(r["after"] for r in rows), 1])
    width = 30 if plain else max(12, min(40, (console.width or 100) - 60))
    table = Table(title=title, show_edge=False, box=box.ASCII2 if plain else box.HEAVY_HEAD)
    cols = ["Rep", "Before", "After", "Gained", "Lost"] if show_shift else ["Rep", "Open"]
    for col in cols:
        table.add_column(col, justify="left" if col == "Rep" else "right")
    table.add_column("before / after" if show_shift else "workload", no_wrap=True)
    table.add_column("")
    for r in rows:
        if not r["available"]:
            style, mark = "grey50", "away"
        elif _in_band(r["after"], band):
            style, mark = "green", ""
        else:
            style, mark = "red", "above band" if r["after"] > band["upper"] else "below band"
        after_bar = _bar(r["after"], scale, width, plain, style, (band["lower"], band["upper"]))
        if show_shift:
            cell = _bar(r["before"], scale, width, plain, "grey50") + Text("\n") + after_bar
            gained = Text(f"+{r['gained']}", style="green" if r["gained"] and not plain else "")
            lost = Text(f"-{r['lost']}", style="red" if r["lost"] and not plain else "")
            table.add_row(Text(r["name"]), str(r["before"]), str(r["after"]), gained, lost, cell, mark)
        else:
            table.add_row(Text(r["name"]), str(r["after"]), after_bar, mark)
    if not plain and scale > 0:
        # the band on its own line: the bars above cover it where they are long enough
        lo, hi = round(band["lower"] / scale * width), round(band["upper"] / scale * width)
        marker = Text(" " * lo) + Text("▕" + "░" * max(0, hi - lo - 2) + "▏", style="green")
        blanks = [""] * (len(cols) - 1)
        table.add_row(Text("band", style="green"), *blanks, marker, "")
    console.print(table)
    ratio = data["band"]["ratio"]
    shade = "[ ]" if plain else "░"
    console.print(
        f"Band {shade} {band['lower']:.0f}–{band['upper']:.0f} open tasks: mean {band['mean']:.1f} per available rep "
        f"±{ratio:.0%} (the cards to divide: theirs, unowned ones and ones to create)"
        + ("; top bar before, bottom bar after" if show_shift else ""),
        markup=False,
    )


def _priority_table(data: Mapping[str, Any], console: Console) -> None:
    plain = _plain(console)
    prios = data["priorities"]
    scale = max([*prios["before"].values(), *prios["after"].values(), 1])
    table = Table(title="Priority tiers (open cards)", show_edge=False, box=box.ASCII2 if plain else box.HEAVY_HEAD)
    for col in ("Tier", "Before", "After", "after"):
        table.add_column(col, justify="left" if col in ("Tier", "after") else "right")
    for tier in prios["tiers"]:
        b, a = prios["before"][tier], prios["after"][tier]
        if not b and not a:
            continue
        table.add_row(Text(tier), str(b), str(a), _bar(a, scale, 24, plain, "cyan"))
    console.print(table)


def _fmt(value: object, names: dict[str, str]) -> str:
    if isinstance(value, tuple):
        return ", ".join(names.get(str(v), str(v)) for v in value) or "(nobody)"
    return "(none)" if value is None else str(value)


#: How an unset field reads in a sentence.
_UNSET = {Field.ASSIGNEES: "no owner", Field.PRIORITY: "no priority", Field.STAGE: "no list"}


def _conflict_text(k: Conflict, names: Mapping[str, str]) -> str:
    """A conflict in plain words: what the plan expected on the card (the value tasksync last wrote
    there, or found there when it wrote nothing), what a person set instead, and that the card is
    left as the person set it rather than given the plan's value (said once where the plan still
    wants what it expected)."""

    by_id = dict(names)

    def said(value: FieldValue) -> str:
        return _UNSET.get(k.field, "nothing") if value in (None, ()) else _fmt(value, by_id)

    expected, wanted = said(k.last_written), said(k.wanted)
    left = f"{k.title!r} {k.field.value}: the plan expected {expected}, a person set {said(k.current)}"
    if wanted == expected:
        return f"{left}; left as the person set it (use --force to set it back to {wanted})"
    return f"{left}; left as the person set it, not changed to {wanted} (use --force to override)"


def print_plan(
    result: PlanResult,
    console: Console,
    limit: int = 15,
    settings: Settings | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """The plan in the terminal. ``data``: its :func:`plan_json`, when the caller built it already."""
    plan = result.plan
    if data is None:
        data = plan_json(result, settings)
    names = dict(result.snapshot.member_names)
    stages = {s.id: s.name for s in result.snapshot.stages}
    names.update(stages)
    moves = [c for c in plan.changes if c.field is Field.ASSIGNEES]
    prio = [c for c in plan.changes if c.field is Field.PRIORITY]
    console.print(
        Text(f"Plan {plan.id}", style="bold")
        + Text(
            f" for {result.snapshot.name} ({plan.board}): "
            f"{len(moves)} owner changes, {len(prio)} priority changes, "
            f"{len([c for c in plan.changes if c.field is Field.STAGE])} stage moves, "
            f"{len(plan.creates)} cards to create, {len(plan.conflicts)} conflicts"
        )
    )
    _workload_table(data, console, "Workload per rep (open tasks)", show_shift=True)
    _priority_table(data, console)
    if plan.changes:
        kinds = Counter(c["reason_kind"] for c in data["changes"])
        console.print("Why: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()), markup=False)
        t = Table(
            title=f"Changes (first {min(limit, len(plan.changes))} of {len(plan.changes)})",
            show_edge=False,
            box=box.ASCII2 if _plain(console) else box.HEAVY_HEAD,
        )
        for col in ("Card", "Field", "From", "To", "Why"):
            t.add_column(col)
        for c in plan.changes[:limit]:
            t.add_row(
                Text(c.title[:40]),
                c.field.value,
                Text(_fmt(c.before, names)),
                Text(_fmt(c.after, names)),
                Text(c.reason[:70]),
            )
        console.print(t)
    if plan.creates:
        console.print(f"Cards to create ({len(plan.creates)}):")
        for n in plan.creates[:limit]:
            console.print(
                f"  + {n.title} in {stages.get(n.stage_id, n.stage_id)} for {_fmt(n.assignees, names)}", markup=False
            )
    for k in plan.conflicts[:limit]:
        console.print(Text("conflict", style="yellow") + Text(f": {_conflict_text(k, names)}"))
    if plan.edits:
        named = ", ".join(f"{e.title!r} {e.field.value}" for e in plan.edits[:5])
        console.print(
            f"{len(plan.edits)} field(s) changed by people since tasksync wrote them, which the policy leaves "
            f"as they are ({named}{f' and {len(plan.edits) - 5} more' if len(plan.edits) > 5 else ''}): "
            "recorded as theirs when this plan is applied (`--force` plans over them)",
            markup=False,
        )
    for note in plan.notes:
        console.print(Text("note", style="dim") + Text(f": {note}"))
    if plan.empty:
        console.print("Nothing to change: the board already matches the policy.")


def print_outcome(plan: Plan, outcome: ApplyOutcome, console: Console) -> None:
    written = outcome.done - outcome.created  # field changes, as plan and history count them
    _print_outcome(
        f"Applied plan {plan.id}: {written}"
        + (f" of {written + outcome.missed}" if outcome.missed else "")
        + " changes written"
        + (f", {outcome.created} cards created" if outcome.created else ""),
        outcome,
        console,
    )


def print_undo_outcome(undo: Plan, outcome: ApplyOutcome, console: Console) -> None:
    """What an undo put back: the changes reverted (closing the cards the plan created among
    them) and those skipped as conflicts, a person having changed the card since the plan."""
    archived = sum(1 for c in undo.changes if c.field is Field.CLOSED and c.after is True)
    skipped = len(undo.conflicts) + len(outcome.conflicts)
    _print_outcome(
        f"{'Undid' if outcome.ok else 'Undid part of'} plan {undo.undoes} (undo plan {undo.id}): {outcome.done}"
        + (f" of {outcome.done + outcome.missed}" if outcome.missed else "")
        + " changes reverted"
        + (f" (archiving the {archived} cards it created)" if archived and not outcome.missed else "")
        + f", {skipped} skipped as conflicts"
        + (" (changed by a person since: left as they are)" if skipped else ""),
        outcome,
        console,
        count_conflicts=False,
    )


def _print_outcome(head: str, outcome: ApplyOutcome, console: Console, count_conflicts: bool = True) -> None:
    console.print(
        head
        # The lists below name one card each (its changes were sent together).
        + (f", [red]{_cards(len(outcome.failed))} failed[/red]" if outcome.failed else "")
        + (f", {_cards(len(outcome.conflicts))} in conflict" if outcome.conflicts and count_conflicts else "")
        + (f", {_cards(len(outcome.unknown))} without an answer" if outcome.unknown else "")
    )
    for f in outcome.failed[:20]:
        console.print(Text("  failed", style="red") + Text(f": {f}"))
    for c in outcome.conflicts[:20]:
        console.print(Text("  conflict", style="yellow") + Text(f": {c}"))
    for u in outcome.unknown[:20]:
        console.print(Text("  no answer", style="yellow") + Text(f": {u} (checked at the next plan or apply)"))


def _cards(n: int) -> str:
    return f"{n} card" if n == 1 else f"{n} cards"


_SPARKS = "▁▂▃▄▅▆▇█"


def _spark(values: Sequence[float]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(_SPARKS[min(7, int(v / top * 7.999))] for v in values)


def print_report(kpis: Kpis | Mapping[str, Any], console: Console) -> None:
    """KPIs per rep and segment; with :func:`report_json` data, also workload against the band."""
    plain = _plain(console)
    data: Mapping[str, Any] | None = None
    if isinstance(kpis, Kpis):
        k: Mapping[str, Any] = kpis.as_dict()
    else:
        data, k = kpis, kpis["kpis_after"]
    if data is not None:
        _workload_table(data, console, "Workload per rep (open tasks)", show_shift=False)
    table = Table(title="KPIs per rep", show_edge=False, box=box.ASCII2 if plain else box.HEAVY_HEAD)
    cols = ["Rep", "Open", "Pipeline", "Expected", "Conv."]
    cols += [m[2:] for m in k["months"]] if plain else ["Won per month"]
    for c in cols:
        table.add_column(c, justify="left" if c == "Rep" else "right")
    top_ev = max([r["expected_value"] for r in k["reps"]] + [1.0])
    for r in k["reps"]:
        conv = f"{r['conversion']:.0%}" if r["conversion"] is not None else "-"
        name = r["name"] + ("" if r["available"] else " (away)")
        won = [r["won_by_month"][m] for m in k["months"]]
        ev: Text | str = f"{r['expected_value']:,.0f}"
        if not plain:
            ev = _bar(r["expected_value"], top_ev, 10, plain, "blue") + Text(f" {r['expected_value']:>9,.0f}")
        month_cells = [f"{w:,.0f}" for w in won] if plain else [f"{_spark(won)} {sum(won):>9,.0f}"]
        table.add_row(Text(name), str(r["open_tasks"]), f"{r['pipeline']:,.0f}", ev, conv, *month_cells)
    console.print(table)
    if not plain and k["months"]:
        console.print(f"Won per month: {k['months'][0]} … {k['months'][-1]}, then the total", style="dim")
    if data is not None and "window" in data:
        console.print(data["window"]["explain"], markup=False)
    seg = Table(title="KPIs per segment", show_edge=False, box=box.ASCII2 if plain else box.HEAVY_HEAD)
    for c in ("Segment", "Open", "Pipeline", "Expected", "Conv."):
        seg.add_column(c, justify="left" if c == "Segment" else "right")
    for s in k["segments"]:
        conv = f"{s['conversion']:.0%}" if s["conversion"] is not None else "-"
        ev_text = f"{s['expected_value']:,.0f}"
        seg.add_row(Text(s["segment"]), str(s["open_tasks"]), f"{s['pipeline']:,.0f}", ev_text, conv)
    console.print(seg)
    if data is not None:
        _priority_table(data, console)
        if "targets" in data:
            print_targets(data["targets"], console)
    if k["unowned_tasks"]:
        console.print(f"{k['unowned_tasks']} open tasks have no owner among the reps")


# --- progress ----------------------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    """Writes per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- /s" if speed is None else f"{speed:.1f}/s", style="cyan")


@contextmanager
def apply_progress(console: Console, label: str = "Writing") -> Iterator[Callable[[int, int], None]]:
    """A ``progress=`` callback for ``Workspace.apply``/``undo``: a live bar with rate and ETA on a
    terminal; otherwise a plain line every 10% (and at the end)."""
    if _plain(console):
        state: dict[str, float] = {"next": 0.0}

        def plain_cb(done: int, total: int) -> None:
            if total <= 0:
                return
            now = time.monotonic()
            if "t0" not in state:  # time from the first write, not from reading the board
                state["t0"], state["d0"] = now, float(done)
            frac = done / total
            if frac + 1e-9 >= state["next"] or done >= total:
                elapsed, written = now - state["t0"], done - state["d0"]
                line = f"{label}: {done}/{total} ({frac:.0%})"
                if elapsed > 0 and written > 0:
                    rate = written / elapsed
                    line += f", {rate:.1f}/s, ETA {(total - done) / rate:.0f}s"
                console.print(line, markup=False)
                state["next"] = (int(frac * 10) + 1) / 10

        yield plain_cb
        return

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task_id = progress.add_task(label, total=None)

    def cb(done: int, total: int) -> None:
        progress.update(task_id, completed=done, total=total)

    with progress:
        yield cb
