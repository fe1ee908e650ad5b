"""The data of a plan or a report: the JSON shared by ``--json``, the HTML report, the review page
and the terminal views (:mod:`tasksync.render`), so that all of them always agree.

One data dict: :func:`plan_json` for a plan, :func:`report_json` for the board as it is. It needs
no terminal library (the review page builds it too). Its schema (``"schema": "tasksync.report/1"``)::

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

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from tasksync.kpi import ReportWindow, compute_kpis, kpi_model, owners_after, report_window
from tasksync.model import Field, Plan, PlanKind, Task
from tasksync.policies.base import Decisions
from tasksync.policies.reasons import Band
from tasksync.policies.workload import count_band, count_mean
from tasksync.sync.engine import PlanResult
from tasksync.team.targets import targets_of

if TYPE_CHECKING:
    from tasksync.settings import Settings
    from tasksync.sync.workspace import Workspace

__all__ = ["SCHEMA", "RepShift", "board_as_is", "plan_json", "reason_kind", "rep_shifts", "report_json"]

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


def card_owner(members: Iterable[str], member_rep: Mapping[str, str]) -> set[str]:
    """The rep a card counts for, as the policies count workload: the first of its members who is
    a rep (a second rep a person added to the card shares it, not its count); empty for none."""
    return next(({member_rep[m]} for m in members if m in member_rep), set())


def open_work(result: PlanResult) -> list[Task]:
    """The board's cards the book counts as open work (not those of deals won or lost)."""
    counted = {i.task_id for i in result.book.items if i.task_id}
    return [t for t in result.snapshot.tasks if t.id in counted]


def rep_shifts(result: PlanResult) -> list[RepShift]:
    """Per rep: open tasks before and after the plan, and how many each gains and loses."""
    book, plan = result.book, result.plan
    member_rep = {m: r for r, m in book.rep_member.items()}
    after_members = _after_assignees(plan)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for t in open_work(result):
        old = card_owner(t.assignees, member_rep)
        new = card_owner(after_members.get(t.id, t.assignees), member_rep)
        before.update(old)
        after.update(new)
        gained.update(new - old)
        lost.update(old - new)
    for n in plan.creates:
        new = card_owner(n.assignees, member_rep)
        after.update(new)
        gained.update(new)
    return [
        RepShift(r.id, r.name, r.available, before[r.id], after[r.id], gained[r.id], lost[r.id])
        for r in sorted(book.reps, key=lambda r: r.name)
    ]


def reason_kind(kind: str, reason: str = "") -> str:
    """The category of a change's reason, to filter by: the kind the policy gave it
    (:class:`tasksync.policies.ReasonKind`); a plan saved without one is "other"."""
    return kind or ("other" if reason else "(no reason)")


def _band(values: Sequence[float], ratio: float, used: Band | None = None) -> dict[str, float]:
    """The band as the policy used it (``used``), else ``±ratio`` around the mean of ``values``."""
    if used is None:
        mean = sum(values) / len(values) if values else 0.0
        used = Band(mean, mean * (1 - ratio), mean * (1 + ratio))
    return {"mean": round(used.mean, 4), "lower": round(used.lower, 4), "upper": round(used.upper, 4)}


def _value_target(own: Band | None, team: Band | None) -> dict[str, float] | None:
    """A rep's own value band (``[policy] value_target``) and its weight: their target ÷ the mean."""
    if own is None:
        return None
    weight = own.mean / team.mean if team is not None and team.mean else 1.0
    return {"weight": round(weight, 4), **_band([], 0.0, own)}


def _report_value_targets(
    result: PlanResult, rows: list[dict[str, Any]], settings: Settings | None, value_ratio: float
) -> None:
    """A report (no policy ran): each rep's value band around their target on the board as it is."""
    avail = [r for r in rows if r["available"]]
    if result.decisions.value_targets or settings is None or not value_ratio or not avail:
        return
    from tasksync.policies.workload import value_targets, value_weights

    mean = sum(r["expected_value"] for r in avail) / len(avail)
    own = value_targets(value_weights(result.book.available_reps, settings.policy), mean, value_ratio)
    for r in rows:
        r["value_target"] = _value_target(own.get(r["rep_id"]), Band(mean, mean, mean))


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
    # Before the plan, cards it would create do not exist yet (as `report` counts the board).
    existing = replace(book, items=[i for i in book.items if i.task_id is not None])
    k_before = compute_kpis(existing, model=model, window=window)
    k_after = compute_kpis(book, owners, model=model, window=window) if plan.changes or plan.creates else k_before
    before_dict, after_dict = k_before.as_dict(), k_after.as_dict()
    names = _Names(result)
    counts = _after_counts(result, names)
    rows = _rep_rows(result, before_dict, after_dict, counts)
    _report_value_targets(result, rows, settings, value_ratio)
    avail = [r for r in rows if r["available"]]
    tier_order = [*tiers, *sorted(t for t in {*counts.before, *counts.after} if t not in tiers and t != NO_PRIORITY)]
    tier_order.append(NO_PRIORITY)
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
            # The policy's, else (a report, a policy without one) the band a plan centres (count_mean).
            "workload": _band([], ratio, bands.get("count") or count_band(count_mean(book, book.policy), ratio)),
            "expected_value": _band([r["expected_value"] for r in avail], value_ratio or ratio, bands.get("value")),
        },
        "priorities": {
            "tiers": tier_order,
            "before": {t: counts.before.get(t, 0) for t in tier_order},
            "after": {t: counts.after.get(t, 0) for t in tier_order},
        },
        "changes": _change_rows(result, names),
        "conflicts": [  # what a person changed by hand, with names: left alone unless --force
            {
                "task_id": k.task_id,
                "title": k.title,
                "field": k.field.value,
                "last_written": names.fmt(k.last_written),
                "current": names.fmt(k.current),
                "wanted": names.fmt(k.wanted),
            }
            for k in plan.conflicts
        ],
        # A person's changes the policy agrees with or does not manage: left as they are, not conflicts.
        "edits": [
            {"task_id": k.task_id, "title": k.title, "field": k.field.value, "current": names.fmt(k.current)}
            for k in plan.edits
        ],
        "targets": targets_of(after_dict["reps"], after_dict["months"], ended=window.ended),
    }


class _Names:
    """Ids as the report shows them: members who are reps by their CRM name, lists by name."""

    def __init__(self, result: PlanResult) -> None:
        book, snapshot = result.book, result.snapshot
        self.member_rep = {m: r for r, m in book.rep_member.items()}
        self.rep_name = {r.id: r.name for r in book.crm.reps}
        self.names = {m.id: self.rep_name.get(self.member_rep.get(m.id, ""), m.name) for m in snapshot.members}
        self.stages = {s.id: s.name for s in snapshot.stages}
        self.after_members = _after_assignees(result.plan)

    def fmt(self, value: object) -> str:
        if isinstance(value, tuple):
            return ", ".join(self.names.get(str(v), str(v)) for v in value) or "(nobody)"
        if value is None:
            return "(none)"
        return self.stages.get(str(value), str(value))

    def owner_of(self, members: Iterable[str]) -> set[str]:
        """The rep a card of ``members`` counts for (:func:`card_owner`)."""
        return card_owner(members, self.member_rep)


@dataclass
class _Counts:
    """Open cards per priority before and after the plan; per rep, per priority and segment after."""

    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    rep_prio: dict[str, Counter[str]] = field(default_factory=dict)
    rep_seg: dict[str, Counter[str]] = field(default_factory=dict)

    def add_after(self, reps: set[str], prio: str, sector: str) -> None:
        self.after[prio] += 1
        for r in reps:
            self.rep_prio.setdefault(r, Counter())[prio] += 1
            self.rep_seg.setdefault(r, Counter())[sector] += 1


def _after_counts(result: PlanResult, names: _Names) -> _Counts:
    book, plan = result.book, result.plan
    sector_of = {i.task_id: i.segment for i in book.items if i.task_id}
    sector_new = {i.key: i.segment for i in book.items if i.task_id is None}
    after_prio = {c.task_id: c.after for c in plan.changes if c.field is Field.PRIORITY}
    counts = _Counts()
    for t in open_work(result):
        counts.before[t.priority or NO_PRIORITY] += 1
        new_prio = after_prio.get(t.id, t.priority)
        new = names.owner_of(names.after_members.get(t.id, t.assignees))
        counts.add_after(new, str(new_prio) if new_prio else NO_PRIORITY, sector_of.get(t.id, NO_SEGMENT))
    for n in plan.creates:
        sector = sector_new.get(f"new:{n.key}", NO_SEGMENT)
        counts.add_after(names.owner_of(n.assignees), n.priority or NO_PRIORITY, sector)
    return counts


def _rep_rows(
    result: PlanResult, before_dict: Mapping[str, Any], after_dict: Mapping[str, Any], counts: _Counts
) -> list[dict[str, Any]]:
    """One row per rep: workload shift, KPIs after, expected value and pipeline before, and the
    segments and priorities of their cards after the plan."""
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
                "segments": dict(sorted(counts.rep_seg.get(r["rep_id"], Counter()).items())),
                "priorities": dict(counts.rep_prio.get(r["rep_id"], Counter())),
                "value_target": _value_target(
                    result.decisions.value_targets.get(r["rep_id"]), result.decisions.bands.get("value")
                ),
            }
        )
    return rows


def _change_rows(result: PlanResult, names: _Names) -> list[dict[str, Any]]:
    """One row per change and per card to create, with names instead of ids."""
    plan, snapshot = result.plan, result.snapshot
    rep_name, member_rep = names.rep_name, names.member_rep
    changes: list[dict[str, Any]] = []
    for c in plan.changes:
        old_m = c.before if isinstance(c.before, tuple) else ()
        new_m = c.after if isinstance(c.after, tuple) else ()
        task = snapshot.task(c.task_id)
        owners_now = names.after_members.get(c.task_id, task.assignees if task else ())
        changes.append(
            {
                "task_id": c.task_id,
                "title": c.title,
                "field": c.field.value,
                "before": names.fmt(c.before),
                "after": names.fmt(c.after),
                "reason": c.reason,
                "reason_kind": reason_kind(c.reason_kind, c.reason),
                "reps": sorted(
                    {rep_name.get(member_rep[m], m) for m in (*old_m, *new_m, *owners_now) if m in member_rep}
                ),
            }
        )
    for n in plan.creates:
        stage = names.stages.get(n.stage_id, n.stage_id)
        changes.append(
            {
                "task_id": None,
                "title": n.title,
                "field": "create",
                "before": "",
                "after": f"{stage}, {names.fmt(n.assignees)}, {n.priority or '(none)'}",
                "reason": n.reason,
                "reason_kind": reason_kind(n.reason_kind or "new card", n.reason),
                "reps": sorted({rep_name.get(member_rep[m], m) for m in n.assignees if m in member_rep}),
            }
        )
    return changes


def plan_json(result: PlanResult, settings: Settings | None = None) -> dict[str, Any]:
    """The plan, per-rep shifts and KPIs before/after: one schema for scripts and reports.

    ``settings`` gives the band and priority tiers (defaults: ±10%, the board's options).
    """
    return _build(result, "plan", settings)


def board_as_is(ws: Workspace) -> PlanResult:
    """The board as it is, with no plan: what ``report`` and ``reps`` show. The book is the one a
    plan would divide (:func:`~tasksync.sync.engine.prepare_book`: cards to create, cards a person
    reassigned held), so that its count band is the plan's (:func:`count_mean`); the figures per
    rep count the cards on the board only."""
    from tasksync.sync.engine import SyncState, prepare_book

    snapshot = ws.connector.read()
    state = SyncState.read(ws.store, snapshot.board)
    # An empty board is the plan's question (it refuses one tasksync wrote on), not the report's.
    book = prepare_book(ws.settings, snapshot, ws.crm, state, force=not snapshot.tasks, today=ws.today)
    empty = Plan(
        id="",
        board=snapshot.board,
        kind=PlanKind.SYNC,
        base_fingerprint=snapshot.fingerprint(),
        created_at=datetime.now(UTC),
    )
    return PlanResult(empty, snapshot, book, Decisions())


def report_json(
    ws: Workspace, since: date | None = None, until: date | None = None, result: PlanResult | None = None
) -> dict[str, Any]:
    """The board as it is (``result``, default :func:`board_as_is`), in the schema of
    :func:`plan_json` (no plan; before equals after); won value over the months ``since``..``until``
    (default: the last six months with data)."""
    result = result or board_as_is(ws)
    window = report_window(result.book.crm.history, result.book.today, since=since, until=until)
    return _build(result, "report", ws.settings, window)
