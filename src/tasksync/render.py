"""Presenting plans, outcomes and KPIs: terminal output, and the JSON shared with scripts and reports.

One data dict (:func:`plan_json` for a plan, :func:`report_json` for the board as it is) feeds
``--json``, the HTML report (:mod:`tasksync.report_html`) and the terminal views, so all three
always agree. Its schema (``"schema": "tasksync.report/1"``)::

    kind            "plan" or "report"
    board           {"ref", "name"}
    plan            the plan (Plan.to_json()), or null for a report
    reps            one row per CRM rep: workload before/after/gained/lost (open cards),
                    the KPIs after the plan (open_tasks, pipeline, expected_value, conversion,
                    won_by_month, ...), expected_value_before, per-rep "segments" and
                    "priorities" counts after the plan, and "value_target": the rep's own value
                    band {weight, mean, lower, upper} (weight: their target ÷ the team's mean;
                    null without a value band)
    months, segments, unowned_tasks     as in kpis_after
    window          {"months", "explain"}: the months won value counts, and why those
    kpis_before, kpis_after             compute_kpis() before and after the plan
    band            {"ratio", "balance_by", "value_ratio", "value_target" ("mean" or "quota"),
                     "workload": {mean, lower, upper},
                     "expected_value": {mean, lower, upper}} over available reps, after the plan
    priorities      {"tiers", "before": {tier: n}, "after": {tier: n}} over open cards
    changes         one row per change or card to create, with names instead of ids and a
                    "reason_kind" to filter by
    conflicts       one row per field a person changed by hand where the policy wants another
                    value: last_written, current and wanted (names)
    edits           a person's changes the policy leaves as they are (current, names): not
                    conflicts, recorded as theirs when the plan is applied
    targets         per rep and for the team: quota, target for the window, won, attainment,
                    coverage (tasksync.team.targets)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
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

from tasksync.kpi import Kpis, ReportWindow, compute_kpis, kpi_model, owners_after, report_window
from tasksync.model import Field, Plan, PlanKind
from tasksync.policies.base import Decisions
from tasksync.policies.reasons import Band
from tasksync.sync.engine import ApplyOutcome, PlanResult
from tasksync.team.targets import print_targets, targets_of

if TYPE_CHECKING:
    from tasksync.settings import Settings
    from tasksync.sync.workspace import Workspace

__all__ = [
    "SCHEMA",
    "RepShift",
    "apply_progress",
    "plan_json",
    "print_outcome",
    "print_plan",
    "print_report",
    "reason_kind",
    "rep_shifts",
    "report_json",
]

SCHEMA = "tasksync.report/1"
NO_PRIORITY = "(none)"
NO_SEGMENT = "(none)"
DEFAULT_BAND = 0.10


@dataclass
class RepShift:
    rep_id: str
    name: str
    available: bool
    before: int
    after: int
    gained: int
    lost: int


def _after_assignees(plan: Plan) -> dict[str, tuple[str, ...]]:
    return {c.task_id: c.after for c in plan.changes if c.field is Field.ASSIGNEES and isinstance(c.after, tuple)}


def rep_shifts(result: PlanResult) -> list[RepShift]:
    """Per rep: open tasks before and after the plan, and how many each gains and loses."""
    book, plan = result.book, result.plan
    member_rep = {m: r for r, m in book.rep_member.items()}
    after_members = _after_assignees(plan)
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


# --- the shared data -------------------------------------------------------------------------

def reason_kind(kind: str, reason: str = "") -> str:
    """The category of a change's reason, to filter by: the kind the policy gave it
    (:class:`tasksync.policies.ReasonKind`); a plan saved without one is "other"."""
    return kind or ("other" if reason else "(no reason)")


def _band(values: Sequence[float], ratio: float, used: Band | None = None) -> dict[str, float]:
    """The band as the policy used it (``used``), else ``±ratio`` around the mean of ``values``."""
    if used is not None:
        return {"mean": round(used.mean, 4), "lower": round(used.lower, 4), "upper": round(used.upper, 4)}
    mean = sum(values) / len(values) if values else 0.0
    return {"mean": round(mean, 4), "lower": round(mean * (1 - ratio), 4), "upper": round(mean * (1 + ratio), 4)}


def _value_target(own: Band | None, team: Band | None) -> dict[str, float] | None:
    """A rep's own value band (``[policy] value_target``) and its weight: their target ÷ the mean."""
    if own is None:
        return None
    weight = own.mean / team.mean if team is not None and team.mean else 1.0
    return {"weight": round(weight, 4), **_band([], 0.0, own)}


def _build(
    result: PlanResult, kind: str, settings: Settings | None, window: ReportWindow | None = None
) -> dict[str, Any]:
    book, plan, snapshot = result.book, result.plan, result.snapshot
    window = window or report_window(book.crm.history, book.today)
    ratio = settings.policy.band if settings is not None else DEFAULT_BAND
    value_ratio = settings.policy.value_band if settings is not None else 0.0
    bands = result.decisions.bands
    tiers = list(settings.priority.tiers) if settings is not None else list(snapshot.priority_options)

    owners = owners_after(book, {k: d.owner for k, d in result.decisions.by_key.items()})
    model = kpi_model(book, result.decisions)  # fitted once (or the policy's), shared by both
    k_before = compute_kpis(book, model=model, window=window)
    k_after = compute_kpis(book, owners, model=model, window=window) if plan.changes or plan.creates else k_before
    before_dict, after_dict = k_before.as_dict(), k_after.as_dict()

    member_rep = {m: r for r, m in book.rep_member.items()}
    rep_name = {r.id: r.name for r in book.crm.reps}
    # board members who are reps go by their CRM name, as everywhere else in the report
    names = {m.id: rep_name.get(member_rep.get(m.id, ""), m.name) for m in snapshot.members}
    stages = {s.id: s.name for s in snapshot.stages}
    sector_of = {i.task_id: i.segment for i in book.items if i.task_id}
    sector_new = {i.key: i.segment for i in book.items if i.task_id is None}
    after_members = _after_assignees(plan)
    after_prio = {c.task_id: c.after for c in plan.changes if c.field is Field.PRIORITY}

    prio_before: Counter[str] = Counter()
    prio_after: Counter[str] = Counter()
    rep_prio: dict[str, Counter[str]] = {}
    rep_seg: dict[str, Counter[str]] = {}

    def count_after(reps: set[str], prio: str, sector: str) -> None:
        prio_after[prio] += 1
        for r in reps:
            rep_prio.setdefault(r, Counter())[prio] += 1
            rep_seg.setdefault(r, Counter())[sector] += 1

    for t in snapshot.tasks:
        prio_before[t.priority or NO_PRIORITY] += 1
        new_prio = after_prio.get(t.id, t.priority)
        new = {member_rep[m] for m in after_members.get(t.id, t.assignees) if m in member_rep}
        count_after(new, str(new_prio) if new_prio else NO_PRIORITY, sector_of.get(t.id, NO_SEGMENT))
    for n in plan.creates:
        new = {member_rep[m] for m in n.assignees if m in member_rep}
        count_after(new, n.priority or NO_PRIORITY, sector_new.get(f"new:{n.key}", NO_SEGMENT))

    shifts = {s.rep_id: s for s in rep_shifts(result)}
    kb = {r["rep_id"]: r for r in before_dict["reps"]}
    rows: list[dict[str, Any]] = []
    for r in after_dict["reps"]:
        s = shifts.get(r["rep_id"])
        rows.append(
            {
                "rep_id": r["rep_id"],
                "name": r["name"],
                "available": r["available"],
                "before": s.before if s else 0,
                "after": s.after if s else 0,
                "gained": s.gained if s else 0,
                "lost": s.lost if s else 0,
                **{k: v for k, v in r.items() if k not in ("rep_id", "name", "available")},
                "expected_value_before": kb[r["rep_id"]]["expected_value"],
                "pipeline_before": kb[r["rep_id"]]["pipeline"],
                "segments": dict(sorted(rep_seg.get(r["rep_id"], Counter()).items())),
                "priorities": dict(rep_prio.get(r["rep_id"], Counter())),
                "value_target": _value_target(result.decisions.value_targets.get(r["rep_id"]), bands.get("value")),
            }
        )
    avail = [r for r in rows if r["available"]]
    if not result.decisions.value_targets and settings is not None and value_ratio and avail:
        # a report (no policy ran): each rep's value band around their target on the board as it is
        from tasksync.policies.workload import value_targets, value_weights

        mean = sum(r["expected_value"] for r in avail) / len(avail)
        own = value_targets(value_weights(book.available_reps, settings.policy), mean, value_ratio)
        for r in rows:
            r["value_target"] = _value_target(own.get(r["rep_id"]), Band(mean, mean, mean))
    tier_order = [*tiers, *sorted(t for t in {*prio_before, *prio_after} if t not in tiers and t != NO_PRIORITY)]
    tier_order.append(NO_PRIORITY)

    def fmt(value: object) -> str:
        if isinstance(value, tuple):
            return ", ".join(names.get(str(v), str(v)) for v in value) or "(nobody)"
        if value is None:
            return "(none)"
        return stages.get(str(value), str(value))

    changes: list[dict[str, Any]] = []
    for c in plan.changes:
        old_m = c.before if isinstance(c.before, tuple) else ()
        new_m = c.after if isinstance(c.after, tuple) else ()
        task = snapshot.task(c.task_id)
        owners_now = after_members.get(c.task_id, task.assignees if task else ())
        changes.append(
            {
                "task_id": c.task_id,
                "title": c.title,
                "field": c.field.value,
                "before": fmt(c.before),
                "after": fmt(c.after),
                "reason": c.reason,
                "reason_kind": reason_kind(c.reason_kind, c.reason),
                "reps": sorted(
                    {rep_name.get(member_rep[m], m) for m in (*old_m, *new_m, *owners_now) if m in member_rep}
                ),
            }
        )
    for n in plan.creates:
        changes.append(
            {
                "task_id": None,
                "title": n.title,
                "field": "create",
                "before": "",
                "after": f"{stages.get(n.stage_id, n.stage_id)}, {fmt(n.assignees)}, {n.priority or '(none)'}",
                "reason": n.reason,
                "reason_kind": reason_kind(n.reason_kind or "new card", n.reason),
                "reps": sorted({rep_name.get(member_rep[m], m) for m in n.assignees if m in member_rep}),
            }
        )

    return {
        "schema": SCHEMA,
        "kind": kind,
        "board": {"ref": str(snapshot.board), "name": snapshot.name},
        "today": book.today.isoformat(),
        "plan": plan.to_json() if kind == "plan" else None,
        "reps": rows,
        "months": after_dict["months"],
        "window": window.as_dict(),
        "segments": after_dict["segments"],
        "unowned_tasks": after_dict["unowned_tasks"],
        "kpis_before": before_dict,
        "kpis_after": after_dict,
        "band": {
            "ratio": ratio,
            "balance_by": "count",  # deprecated: both bands hold at once (value_ratio)
            "value_ratio": value_ratio,
            "value_target": settings.policy.value_target if settings is not None else "mean",
            "workload": _band([r["after"] for r in avail], ratio, bands.get("count")),
            "expected_value": _band([r["expected_value"] for r in avail], value_ratio or ratio, bands.get("value")),
        },
        "priorities": {
            "tiers": tier_order,
            "before": {t: prio_before.get(t, 0) for t in tier_order},
            "after": {t: prio_after.get(t, 0) for t in tier_order},
        },
        "changes": changes,
        "conflicts": [  # what a person changed by hand, with names: left alone unless --force
            {
                "task_id": k.task_id,
                "title": k.title,
                "field": k.field.value,
                "last_written": fmt(k.last_written),
                "current": fmt(k.current),
                "wanted": fmt(k.wanted),
            }
            for k in plan.conflicts
        ],
        # A person's changes the policy agrees with or does not manage: left as they are, not conflicts.
        "edits": [
            {"task_id": k.task_id, "title": k.title, "field": k.field.value, "current": fmt(k.current)}
            for k in plan.edits
        ],
        "targets": targets_of(after_dict["reps"], after_dict["months"]),
    }


def plan_json(result: PlanResult, settings: Settings | None = None) -> dict[str, Any]:
    """The plan, per-rep shifts and KPIs before/after: one schema for scripts and reports.

    ``settings`` gives the band and priority tiers (defaults: ±10%, the board's options).
    """
    return _build(result, "plan", settings)


def report_json(ws: Workspace, since: date | None = None, until: date | None = None) -> dict[str, Any]:
    """The board as it is, in the schema of :func:`plan_json` (no plan; before equals after);
    won value over the months ``since``..``until`` (default: the last six months with data)."""
    from tasksync.policies import build_book

    snapshot = ws.connector.read()
    book = build_book(snapshot, ws.crm, ws.settings, today=ws.today, include_new=False)
    empty = Plan(
        id="",
        board=snapshot.board,
        kind=PlanKind.SYNC,
        base_fingerprint=snapshot.fingerprint(),
        created_at=datetime.now(UTC),
    )
    window = report_window(book.crm.history, book.today, since=since, until=until)
    return _build(PlanResult(empty, snapshot, book, Decisions()), "report", ws.settings, window)


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
        f"Band {shade} {band['lower']:.0f}–{band['upper']:.0f} open tasks: mean {band['mean']:.1f} of available reps "
        f"±{ratio:.0%}" + ("; top bar before, bottom bar after" if show_shift else ""),
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
    names = {m.id: m.name for m in result.snapshot.members}
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
        console.print(
            Text("conflict", style="yellow")
            + Text(
                f": {k.title!r} {k.field.value} was set to {_fmt(k.current, names)} by a person "
                f"(tasksync wrote {_fmt(k.last_written, names)}); left alone (use --force to override)"
            )
        )
    if plan.edits:
        console.print(
            f"{len(plan.edits)} field(s) changed by people since tasksync wrote them, which the policy leaves "
            "as they are: recorded as theirs when this plan is applied",
            markup=False,
        )
    for note in plan.notes:
        console.print(Text("note", style="dim") + Text(f": {note}"))
    if plan.empty:
        console.print("Nothing to change: the board already matches the policy.")


def print_outcome(plan: Plan, outcome: ApplyOutcome, console: Console) -> None:
    console.print(
        f"Applied plan {plan.id}: {outcome.done - outcome.created} changes written"  # changes as in plan and history
        + (f", {outcome.created} cards created" if outcome.created else "")
        + (f", [red]{len(outcome.failed)} failed[/red]" if outcome.failed else "")
        + (f", {len(outcome.conflicts)} conflicts" if outcome.conflicts else "")
        + (f", {len(outcome.unknown)} without an answer" if outcome.unknown else "")
    )
    for f in outcome.failed[:20]:
        console.print(Text("  failed", style="red") + Text(f": {f}"))
    for c in outcome.conflicts[:20]:
        console.print(Text("  conflict", style="yellow") + Text(f": {c}"))
    for u in outcome.unknown[:20]:
        console.print(Text("  no answer", style="yellow") + Text(f": {u} (checked at the next plan or apply)"))


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
