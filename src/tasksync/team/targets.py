"""Targets per rep: quota, won this period, attainment and pipeline coverage, with the team's total.

The period is the report window (its months); a rep's target for it is the monthly quota of the
reps export (or ``tasksync reps quota``) times the months in the window. Attainment is won ÷ target;
coverage is today's open expected value ÷ what is left of the target (none once the target is
reached, nor for a period that has ended: the pipeline as it was then is not kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["print_targets", "targets_of"]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


def targets_of(reps: Sequence[Mapping[str, Any]], months: Sequence[str], ended: bool = False) -> dict[str, Any]:
    """Targets from KPI rows (``quota``, ``won_by_month``, ``expected_value`` per rep); ``ended``: the
    period is over (``report --until`` a past month), so no coverage (today's pipeline cannot cover
    a past target, and the pipeline as it was then is not kept)."""
    n = len(months)
    rows: list[dict[str, Any]] = []
    team_quota = team_target = team_won = team_ev = team_left = 0.0
    for r in reps:
        quota = r.get("quota")
        won = round(sum(float(r.get("won_by_month", {}).get(m, 0.0)) for m in months), 2)
        ev = float(r.get("expected_value", 0.0))
        target = round(quota * n, 2) if quota else None
        left = max(0.0, target - won) if target is not None else None
        rows.append(
            {
                "rep_id": r["rep_id"],
                "name": r["name"],
                "quota": quota,
                "target": target,
                "won": won,
                "attainment": _ratio(won, target) if target is not None else None,
                "remaining": round(left, 2) if left is not None else None,
                "expected_value": round(ev, 2),
                "coverage": _ratio(ev, left) if left is not None and not ended else None,
            }
        )
        if target is not None and left is not None:
            team_quota += float(quota or 0.0)
            team_target += target
            team_won += won
            team_ev += ev
            team_left += left
    period = f"{months[0]} to {months[-1]}" if months else "no months"
    quoted = sum(1 for r in rows if r["target"] is not None)
    if quoted:  # the team's total over the reps it can be measured for, and it says whom
        team: dict[str, Any] = {
            "quota": round(team_quota, 2) if team_quota else None,
            "target": round(team_target, 2) if team_target else None,
            "won": round(team_won, 2),
            "attainment": _ratio(team_won, team_target),
            "remaining": round(team_left, 2),
            "expected_value": round(team_ev, 2),
            "coverage": None if ended else _ratio(team_ev, team_left),
        }
        label = "Team" if quoted == len(rows) else f"Team ({quoted} of {len(rows)} reps: with a quota)"
    else:  # no quota at all: the team's won and open expected value, no target to measure them by
        team = {"quota": None, "target": None, "attainment": None, "remaining": None, "coverage": None}
        team["won"] = round(sum(r["won"] for r in rows), 2)
        team["expected_value"] = round(sum(r["expected_value"] for r in rows), 2)
        label = "Team"
    team["label"] = label
    coverage = (
        "no coverage: the period has ended, and the pipeline as it was then is not kept (open expected value "
        "is today's)"
        if ended
        else "coverage = today's open expected value ÷ target left"
    )
    return {
        "months": list(months),
        "reps": rows,
        "team": team,
        "explain": (
            f"Targets over {period} ({n} months): target = monthly quota × {n}; attainment = won ÷ target; "
            f"{coverage}. Team: the reps with a quota, or all when none has one."
        ),
    }


def print_targets(targets: Mapping[str, Any], console: Console) -> None:
    """Quota, target for the period, won, attainment and coverage per rep, and the team's total."""
    plain = console.no_color or not console.is_terminal
    table = Table(title="Targets", show_edge=False, box=box.ASCII2 if plain else box.HEAVY_HEAD)
    for c in ("Rep", "Quota/month", "Target", "Won", "Attainment", "Open expected", "Coverage"):
        table.add_column(c, justify="left" if c == "Rep" else "right", no_wrap=True)
    team = targets["team"]
    for r in [*targets["reps"], {**team, "name": team.get("label", "Team")}]:
        table.add_row(
            Text(r["name"]),  # names are data, never markup
            _money(r["quota"]),
            _money(r["target"]),
            _money(r["won"]),
            _pct(r["attainment"]),
            _money(r["expected_value"]),
            _fmt_cover(r["coverage"]),
        )
    console.print(table)
    console.print(targets["explain"], markup=False)


def _money(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _fmt_cover(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}x"
