"""Owners back to the CRM (``tasksync export owners``): one row per deal whose owner tasksync
changed on the board and the CRM does not know yet, in the headers of the CRM's own import tool.

The deals come from the applied plans in the state store (every plan, or those since a given
plan; an undone plan counts for nothing); the owner is the one the card holds now (so a later
undo or a person's change wins), and a deal is left out when the CRM export already names that
owner, or when its CRM owner is neither the one it had when the deal was last exported nor the
one exported then: someone changed it in the CRM since, and the import must not undo that.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tasksync.crm.records import Rep
from tasksync.errors import ConfigError
from tasksync.model import PlanKind, PlanStatus
from tasksync.policies.book import quoted_sample

if TYPE_CHECKING:
    from tasksync.sync.workspace import Workspace

__all__ = [
    "FORMATS",
    "OwnerChange",
    "OwnerExport",
    "export_summary",
    "owner_changes",
    "remember_export",
    "write_owner_export",
]

#: The per-board key of what each deal's last export held: deal id -> [CRM owner then, owner exported].
EXPORTED = "owners.exported"


@dataclass(frozen=True)
class ImportFormat:
    """The columns one CRM's import tool expects to update a deal's owner."""

    headers: tuple[str, ...]
    owner_by: str  # "id" (the rep's CRM user id) or "email"
    tool: str


FORMATS: dict[str, ImportFormat] = {
    # Opportunities are updated by Data Loader (or dataloader.io): Update → Opportunity, map Id and OwnerId.
    "salesforce": ImportFormat(("Id", "OwnerId"), "id", "Salesforce Data Loader: Update, object Opportunity"),
    # HubSpot matches existing deals on Record ID and owners on the user's email.
    "hubspot": ImportFormat(("Record ID", "Deal owner"), "email", "HubSpot import: existing deals"),
    "zoho": ImportFormat(("Record Id", "Deal Owner"), "email", "Zoho CRM import: Deals, update existing"),
    "pipedrive": ImportFormat(("Deal - ID", "Deal - Owner"), "email", "Pipedrive import: deals, merge by ID"),
    "csv": ImportFormat(
        ("deal_id", "deal_name", "owner_id", "owner_email", "owner_name", "crm_owner_id", "card_id"),
        "id",
        "any tool",
    ),
}


@dataclass(frozen=True)
class OwnerChange:
    deal_id: str
    deal_name: str
    owner: Rep
    crm_owner: str | None  # the owner's id in the CRM export
    card_id: str


@dataclass
class OwnerExport:
    changes: list[OwnerChange]
    plans: list[str]  # the applied plans read
    unlinked: int = 0  # changed cards with no CRM deal
    unchanged: int = 0  # changed cards whose deal the CRM already gives that owner
    changed_in_crm: list[str] = field(default_factory=list)  # deals given another owner in the CRM since exported


def _applied_plans(ws: Workspace, since: str | None) -> list[str]:
    board = ws.connector.board
    every = list(reversed(ws.store.plans(board, limit=None)))  # oldest first
    applied = [
        p for p in every if p.status in (PlanStatus.APPLIED, PlanStatus.PARTIAL) and p.kind != PlanKind.UNDO.value
    ]
    if since is None:
        return [p.id for p in applied]
    start = next((p.created_at for p in every if p.id == since), None)
    if start is None:
        raise ConfigError(f"--since {since}: no such plan on {board} (see `tasksync history`)")
    return [p.id for p in applied if p.created_at >= start]


def owner_changes(ws: Workspace, since: str | None = None) -> OwnerExport:
    """The deals whose card owner tasksync changed, with the owner each card holds now."""
    from tasksync.policies import build_book

    plans = _applied_plans(ws, since)
    touched: set[str] = set()
    for pid in plans:
        for r in ws.store.journal(pid):
            if r.status == "done" and r.task_id and (r.op == "create" or (r.field and r.field.value == "assignees")):
                touched.add(r.task_id)
    out = OwnerExport([], plans)
    if not touched:
        return out
    book = build_book(ws.connector.read(), ws.crm, ws.settings, today=ws.today, include_new=False)
    reps = book.crm.reps_by_id
    exported: dict[str, list[str]] = json.loads(ws.store.get(ws.connector.board, EXPORTED) or "{}")
    for item in sorted(book.items, key=lambda i: i.key):
        if item.task_id not in touched or item.owner is None or item.owner not in reps:
            continue
        if item.deal is None:
            out.unlinked += 1
            continue
        if item.deal.owner == item.owner:
            out.unchanged += 1
            continue
        if item.deal.id in exported and (item.deal.owner or "") not in exported[item.deal.id]:
            out.changed_in_crm.append(item.deal.name)
            continue
        out.changes.append(OwnerChange(item.deal.id, item.deal.name, reps[item.owner], item.deal.owner, item.task_id))
    out.changes.sort(key=lambda c: c.deal_id)
    return out


def remember_export(ws: Workspace, export: OwnerExport) -> None:
    """Once the file is written: each exported deal's CRM owner and the owner it was given, so that
    a later export leaves out a deal whose owner someone has changed in the CRM since."""
    board = ws.connector.board
    exported: dict[str, list[str]] = json.loads(ws.store.get(board, EXPORTED) or "{}")
    exported.update({c.deal_id: [c.crm_owner or "", c.owner.id] for c in export.changes})
    ws.store.put(board, EXPORTED, json.dumps(exported, sort_keys=True))


def export_summary(export: OwnerExport, fmt: str, file: str) -> list[str]:
    """What an export wrote to ``file`` and which deals it left out, and why."""
    spec = FORMATS[fmt]
    lines = [
        f"Wrote {len(export.changes)} owner change(s) from {len(export.plans)} applied plan(s) to {file} "
        f"({', '.join(spec.headers)}; for {spec.tool})"
    ]
    if export.unchanged:
        lines.append(f"{export.unchanged} deal(s) already have that owner in the CRM export: left out")
    if export.unlinked:
        lines.append(f"{export.unlinked} changed card(s) link to no CRM deal: left out")
    if export.changed_in_crm:
        lines.append(
            f"{len(export.changed_in_crm)} deal(s) got another owner in the CRM since they were last exported: "
            f"left out (the CRM's owner stands): {quoted_sample(export.changed_in_crm)}"
        )
    return lines


def _row(fmt: str, c: OwnerChange) -> list[str]:
    spec = FORMATS[fmt]
    if fmt == "csv":
        return [c.deal_id, c.deal_name, c.owner.id, c.owner.email or "", c.owner.name, c.crm_owner or "", c.card_id]
    owner = c.owner.id if spec.owner_by == "id" else (c.owner.email or "")
    return [c.deal_id, owner]


def _check_keys(export: OwnerExport, fmt: str) -> None:
    """:class:`ConfigError` when a CRM's import needs record ids the exports did not have: a
    deal (or, for Salesforce, an owner) keyed by its name would be refused by the import row by
    row, so nothing is written and the missing column is named."""
    if fmt == "csv":
        return
    ids = [c for c in export.changes if c.deal_id == c.deal_name or c.deal_id.startswith(f"{c.deal_name} (")]
    if ids:
        raise ConfigError(
            f"{fmt} matches deals by their record id, and the deals export has no id column (deals are "
            f"keyed by name: {', '.join(repr(c.deal_name) for c in ids[:3])}); export the deals with their "
            "id column, or use --format csv"
        )
    if FORMATS[fmt].owner_by == "id":
        named = sorted({c.owner.name for c in export.changes if c.owner.id in (c.owner.name, c.owner.email)})
        if named:
            raise ConfigError(
                f"{fmt} matches owners by their CRM user id, and the reps export has no id column (reps are "
                f"keyed by name or email: {', '.join(named[:3])}); add the user id column (Salesforce: "
                "User ID), or use --format csv"
            )


def write_owner_export(export: OwnerExport, fmt: str, path: Path) -> None:
    """Write the rows atomically (a temporary file renamed into place: never half a file).
    Raises :class:`ConfigError` when an owner has no email and the CRM matches owners by email."""
    spec = FORMATS[fmt]
    _check_keys(export, fmt)
    if spec.owner_by == "email":
        missing = sorted({c.owner.name for c in export.changes if not c.owner.email})
        if missing:
            raise ConfigError(
                f"{fmt} matches owners by email, and the reps export has none for: {', '.join(missing)}; "
                "add the Email column or use --format csv"
            )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(spec.headers)
    for c in export.changes:
        writer.writerow(_row(fmt, c))
    path = path.expanduser()
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        tmp.replace(path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the export: {e.strerror or e}") from None
