"""Running the team without editing exports: rep overrides (away, back, capacity, quota), the
reps table, targets per rep, and owners exported back to the CRM."""

from __future__ import annotations

from tasksync.team.overrides import (
    SETTINGS,
    RepOverride,
    RepOverrides,
    explain_overrides,
    find_rep,
    with_rep_overrides,
)

__all__ = [
    "SETTINGS",
    "RepOverride",
    "RepOverrides",
    "explain_overrides",
    "find_rep",
    "with_rep_overrides",
]
