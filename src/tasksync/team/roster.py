"""The reps table (``tasksync reps``): each CRM rep with the board member they match and how,
availability, capacity, open tasks and expected value against the bands, and targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tasksync.crm.records import Rep
from tasksync.crm.values import loose_name_key, normalise_name
from tasksync.model import Member
from tasksync.team.overrides import RepOverride, RepOverrides
from tasksync.team.targets import print_targets

if TYPE_CHECKING:
    from tasksync.sync.workspace import Workspace

__all__ = ["how_matched", "print_reps", "reps_data"]


def how_matched(rep: Rep, member: Member, explicit: Mapping[str, str]) -> str:
    """Which rule matched ``rep`` to ``member`` (the order of :func:`tasksync.policies.match_reps`)."""
    keys = {normalise_name(k) for k in explicit}
    if any(k and normalise_name(k) in keys for k in (rep.id, rep.name, rep.email or "")):
        return "members table"
    if rep.email and member.email and normalise_name(rep.email) == normalise_name(member.email):
        return "email"
    if normalise_name(rep.name) == normalise_name(member.name):
        return "name"
    if rep.name and loose_name_key(rep.name) == loose_name_key(member.name):
        return "name (accents and word order ignored)"
    return "username"


def _position(value: float, band: Mapping[str, float], available: bool) -> str:
    if not available:
        return "away"
    if value > band["upper"] + 1e-9:
        return "above"
    if value < band["lower"] - 1e-9:
        return "below"
    return "in band"


def reps_data(ws: Workspace) -> dict[str, Any]:
    """One row per CRM rep, the bands, the overrides in force and the targets: ``reps --json``."""
    from tasksync.report_data import board_as_is, report_json

    result = board_as_is(ws)
    snapshot, book, crm = result.snapshot, result.book, ws.crm
    data = report_json(ws, result=result)
    overrides = RepOverrides(ws.store).active(book.today)
    by_rep: dict[str, list[RepOverride]] = {}
    for o in overrides:
        by_rep.setdefault(o.rep_id, []).append(o)
    members = snapshot.members_by_id
    band = data["band"]
    targets = data["targets"]
    target_by_rep = {t["rep_id"]: t for t in targets["reps"]}
    rows: list[dict[str, Any]] = []
    kpi_by_rep = {r["rep_id"]: r for r in data["reps"]}
    for rep in sorted(crm.reps, key=lambda r: r.name):
        k = kpi_by_rep.get(rep.id, {})
        mid = book.rep_member.get(rep.id)
        member = members.get(mid) if mid else None
        own = by_rep.get(rep.id, [])
        away = next((o for o in own if o.setting == "available"), None)
        rows.append(
            {
                "rep_id": rep.id,
                "name": rep.name,
                "email": rep.email,
                "member": {"id": member.id, "name": member.name} if member else None,
                "matched_by": how_matched(rep, member, ws.settings.members) if member else None,
                "available": rep.available,
                "availability": (away.describe() if away else ("available" if rep.available else "away (export)")),
                "capacity": rep.capacity,
                "capacity_value": rep.capacity_value,
                "quota": rep.quota,
                "open_tasks": k.get("after", 0),  # open cards held on the board, as the band counts them
                "pipeline": k.get("pipeline", 0.0),
                "expected_value": k.get("expected_value", 0.0),
                "workload_band": _position(k.get("after", 0), band["workload"], rep.available and member is not None),
                "expected_value_band": _position(
                    k.get("expected_value", 0.0), band["expected_value"], rep.available and member is not None
                ),
                "overrides": [o.as_dict() for o in own],
                "target": target_by_rep.get(rep.id),
            }
        )
    return {
        "board": data["board"],
        "today": data["today"],
        "band": band,
        "months": data["months"],
        "reps": rows,
        "overrides": [o.as_dict() for o in overrides],
        "targets": targets,
    }


def print_reps(data: Mapping[str, Any], console: Console) -> None:
    plain = console.no_color or not console.is_terminal
    style = box.ASCII2 if plain else box.HEAVY_HEAD
    table = Table(title="Reps", show_edge=False, box=style)
    cols = ["Rep", "Board match", "Availability", "Capacity", "Open", "Expected", "Band t/v"]
    for c in cols:
        left = c in ("Rep", "Board match", "Availability", "Band t/v")
        table.add_column(c, justify="left" if left else "right", no_wrap=c != "Board match")
    for r in data["reps"]:
        if r["member"] is None:
            member = "none: gets no work"
        elif r["member"]["name"] == r["name"]:
            member = f"by {r['matched_by']}"
        else:
            member = f"{r['member']['name']} by {r['matched_by']}"
        cap = "-" if r["capacity"] is None else str(r["capacity"])
        if r["capacity_value"] is not None:
            cap += f" / {r['capacity_value']:,.0f}"
        away = next((o for o in r["overrides"] if o["setting"] == "available"), None)
        if away is not None:
            availability = (
                ("away" if not away["value"] else "available")
                + (f" to {away['until']}" if away["until"] else "")
                + " *"
            )
        else:
            availability = "available" if r["available"] else "away"
        band = f"{_short(r['workload_band'])}/{_short(r['expected_value_band'])}"
        cells = (r["name"], member, availability, cap, str(r["open_tasks"]), f"{r['expected_value']:,.0f}", band)
        table.add_row(*(Text(c) for c in cells))  # names are data, never markup
    console.print(table)
    b = data["band"]
    console.print(
        f"Band t/v: open tasks {b['workload']['lower']:.0f}–{b['workload']['upper']:.0f} / expected value "
        f"{b['expected_value']['lower']:,.0f}–{b['expected_value']['upper']:,.0f} "
        f"(±{b['ratio']:.0%} / ±{b['value_ratio']:.0%}): ok, above or below. Open tasks: the band a plan holds, "
        f"mean {b['workload']['mean']:.1f} per available rep (their cards, unowned ones and ones to create); "
        "expected value: around the mean of available reps' cards as they are now.",
        markup=False,
    )
    for o in data["overrides"]:
        name = next((r["name"] for r in data["reps"] if r["rep_id"] == o["rep_id"]), o["rep_id"])
        console.print(f"* {name}: {o['text']}", markup=False)
    if not data["overrides"]:
        console.print("No overrides: every rep as in the reps export.", markup=False)
    print_targets(data["targets"], console)


def _short(position: str) -> str:
    return {"in band": "ok", "away": "-"}.get(position, position)


def _fmt_cover(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}x"
