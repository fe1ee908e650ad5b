"""Asana tasks as tasksync reads them: the fields asked for, the project reference, the mapping.

One function (:func:`task_from`) maps an Asana task to the neutral :class:`~tasksync.model.Task`:
its section in the project, single assignee, priority enum, CRM link (marker, external id,
custom field or title, by the link settings) and tags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tasksync.connectors.base import marker_for, parse_marker
from tasksync.errors import ConfigError
from tasksync.model import Field, FieldValue, NewTask, Task
from tasksync.settings import Settings

__all__ = [
    "FIELD_SETTING_FIELDS",
    "NOT_WORK",
    "TASK_FIELDS",
    "ProjectFields",
    "parse_dt",
    "parse_project_ref",
    "task_from",
]

TASK_FIELDS = (
    "name",
    "resource_subtype",
    "notes",
    "assignee.name",
    "completed",
    "completed_at",
    "due_on",
    "created_at",
    "modified_at",
    "external",
    "memberships.project",
    "memberships.section",
    "custom_fields.name",
    "custom_fields.type",
    "custom_fields.enum_value.name",
    "custom_fields.text_value",
    "custom_fields.display_value",
    "tags.name",
)
#: Tasks that are not work to divide: a milestone's or an approval's assignee is who signs it off.
NOT_WORK = frozenset({"milestone", "approval"})

FIELD_SETTING_FIELDS = (
    "custom_field.name",
    "custom_field.type",
    "custom_field.resource_subtype",
    "custom_field.enum_options.name",
    "custom_field.enum_options.enabled",
)

_URL_PROJECT = re.compile(r"/project/(\d+)")
_URL_LEGACY = re.compile(r"app\.asana\.com/0/(\d+)")


def parse_project_ref(text: str) -> str:
    """A project gid from a gid or an Asana project URL (``/0/<gid>/...`` or ``/project/<gid>``)."""
    text = text.strip()
    if text.isdigit():
        return text
    m = _URL_PROJECT.search(text)
    if m:
        return m.group(1)
    m = _URL_LEGACY.search(text)
    if m:
        return m.group(1)
    raise ConfigError(f"asana.project: {text!r} is neither a project gid nor an Asana project URL")


def task_from(
    raw: Mapping[str, Any], *, project_gid: str, priority_field: str | None, crm_field: str | None, settings: Settings
) -> Task:
    """The neutral :class:`Task` of an Asana task (as read with :data:`TASK_FIELDS`)."""
    gid = str(raw["gid"])
    title = str(raw.get("name") or "")
    notes = str(raw.get("notes") or "")
    section = ""
    for m in raw.get("memberships") or []:
        proj = (m.get("project") or {}).get("gid")
        sec = (m.get("section") or {}).get("gid")
        if sec and (proj is None or str(proj) == project_gid):
            section = str(sec)
            break
    priority: str | None = None
    link_value: str | None = None
    custom: dict[str, str] = {}
    for cf in raw.get("custom_fields") or []:
        cf_gid = str(cf.get("gid") or "")
        enum_value = cf.get("enum_value") or {}
        text = cf.get("text_value")
        value = enum_value.get("name") if enum_value else (text if text is not None else cf.get("display_value"))
        name = str(cf.get("name") or cf_gid)
        if value is not None:
            custom[name] = str(value)
        if cf_gid and cf_gid == priority_field:
            priority = enum_value.get("name") if enum_value else None
        if cf_gid and cf_gid == crm_field and value not in (None, ""):
            link_value = str(value).strip()
    external = raw.get("external") or {}
    crm_ref = parse_marker(notes) or (str(external["gid"]) if external.get("gid") else None)
    if crm_ref is None:
        by = settings.link.by
        if by == "custom_field":
            crm_ref = link_value
        elif by == "account_name":
            crm_ref = title.strip() or None
    assignee = (raw.get("assignee") or {}).get("gid")
    tags = tuple(sorted(str(t.get("name") or "") for t in raw.get("tags") or []))
    due_on = raw.get("due_on")
    created = raw.get("created_at")
    return Task(
        id=gid,
        title=title,
        stage_id=section,
        assignees=(str(assignee),) if assignee else (),
        priority=priority,
        due=date.fromisoformat(due_on) if due_on else None,
        labels=tags,
        custom_fields=custom,
        description=notes,
        crm_ref=crm_ref,
        created_at=parse_dt(created),
        version=raw.get("modified_at"),
        closed=bool(raw.get("completed")),
        pinned=settings.policy.pin_label in tags,
    )


def parse_dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class ProjectFields:
    """The project's custom fields tasksync writes: the priority enum (its enabled options by
    name) and the CRM ID field; and the request data for a task's fields."""

    settings: Settings
    priority: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # option name -> gid
    crm: str | None = None

    @classmethod
    def of(cls, settings_raw: list[Mapping[str, Any]], settings: Settings) -> ProjectFields:
        """From ``GET /projects/{gid}/custom_field_settings`` (read with FIELD_SETTING_FIELDS)."""
        out = cls(settings)
        prio_name = settings.priority.field.strip().casefold()
        crm_name = settings.link.field.strip().casefold()
        for setting in settings_raw:
            cf = setting.get("custom_field") or {}
            name = str(cf.get("name") or "").strip().casefold()
            kind = cf.get("resource_subtype") or cf.get("type")
            if name == prio_name and kind == "enum" and out.priority is None:
                out.priority = str(cf["gid"])
                enabled = [o for o in cf.get("enum_options") or [] if o.get("enabled", True)]
                out.options = {str(o["name"]): str(o["gid"]) for o in enabled}
            elif name == crm_name and out.crm is None:
                out.crm = str(cf["gid"])
        return out

    def put_data(self, values: Mapping[Field, FieldValue]) -> dict[str, Any]:
        """The ``PUT /tasks/{gid}`` data for assignee, priority and closed; raises ValueError."""
        data: dict[str, Any] = {}
        for f, v in values.items():
            if f is Field.ASSIGNEES:
                ids = tuple(v) if isinstance(v, tuple) else ((v,) if isinstance(v, str) else ())
                data["assignee"] = ids[0] if ids else None  # Asana has a single assignee
            elif f is Field.PRIORITY:
                if self.priority is None:
                    raise ValueError(f"the project has no enum field named {self.settings.priority.field!r}")
                if v is None:
                    option = None
                else:
                    option = self.options.get(str(v))
                    if option is None:
                        raise ValueError(
                            f"{v!r} is not an option of {self.settings.priority.field!r} "
                            f"(options: {', '.join(self.options) or 'none'})"
                        )
                data.setdefault("custom_fields", {})[self.priority] = option
            elif f is Field.CLOSED:
                data["completed"] = bool(v)
        return data

    def create_data(self, n: NewTask, project_gid: str, *, external: bool) -> dict[str, Any]:
        """The ``POST /tasks`` data: marker, external id, section, assignee, due date, priority and
        CRM ID, so that the task is complete from its creation."""
        notes = n.description.rstrip()
        marker = marker_for(n.key)
        if marker not in notes:
            notes = f"{notes}\n\n{marker}" if notes else marker
        data: dict[str, Any] = {
            "name": n.title,
            "notes": notes,
            "projects": [project_gid],
            "memberships": [{"project": project_gid, "section": n.stage_id}],
        }
        if external:
            data["external"] = {"gid": n.key, "data": "tasksync"}
        if n.assignees:
            data["assignee"] = n.assignees[0]
        if n.due:
            data["due_on"] = n.due.isoformat()
        if n.priority is not None:
            put = self.put_data({Field.PRIORITY: n.priority})
            data["custom_fields"] = put["custom_fields"]
        if self.crm is not None and self.settings.link.by == "custom_field":
            # The link is part of the creation itself: no follow-up request can be lost.
            data.setdefault("custom_fields", {})[self.crm] = n.key
        return data
