"""Which Asana task carries which CRM key: markers in notes and external ids, looked up.

A created task carries its CRM key twice: as ``external.gid`` (when the token is an OAuth app's)
and as a ``[tasksync:KEY]`` marker in its notes. :class:`Markers` remembers the keys seen by
reads and creates, looks keys up as ``external:<key>`` (one request, or ten per ``/batch``) and,
for personal tokens, scans the project's notes: so a retried create finds the first task.

An external id is unique in the whole workspace, not per project: a lookup answers with the
task's projects and one that lives only in another project is not ours (its key is then
*foreign*: our task for it is created without an external id and found by its marker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tasksync.connectors.asana_api import Action, AsanaApi
from tasksync.connectors.base import parse_marker
from tasksync.errors import ApiError, NotFoundError, TransientError

__all__ = ["Markers"]

# What a lookup by external id asks for: the projects tell whether the task is in ours.
LOOKUP_FIELDS = ("name", "completed", "projects")


class Markers:
    """CRM key -> task gid for one project."""

    def __init__(self, api: AsanaApi, project_gid: str, where: Callable[[], str], titles: dict[str, str]) -> None:
        self.api = api
        self.project_gid = project_gid
        self._where = where  # names the project in messages
        self.titles = titles  # task gid -> title, shared with the connector
        self.by_key: dict[str, str] = {}
        self.use_external = True  # False once Asana refuses external ids for this token
        self.scanned = False
        self.foreign: set[str] = set()  # keys whose external id is a task in another project

    def markers_only(self, key: str) -> bool:
        """Whether ``key`` is found by its marker alone (no external id for it here)."""
        return not self.use_external or key in self.foreign

    def learn(self, gid: str, notes: str, external: Mapping[str, object] | None) -> None:
        """Remember the keys a task read carries."""
        key = parse_marker(notes)
        if key:
            self.by_key.setdefault(key, gid)
        ext = (external or {}).get("gid")
        if ext:
            self.by_key.setdefault(str(ext), gid)

    def find(self, key: str, *, read_done: bool) -> str | None:
        """The gid of the task carrying ``key`` (``external.gid`` or marker), or None.

        Without external ids (a personal token: they need an OAuth app) the project's tasks are
        scanned for markers once, unless the project was read already (``read_done``).
        """
        found = self.lookup([key]).get(key)
        if found is None and self.markers_only(key) and not (read_done or self.scanned):
            self.scan(None)
            found = self.by_key.get(key)
        return found

    def scan(self, since: datetime | None) -> None:
        """Learn markers and external ids from the project's tasks (all, or modified since)."""
        fields = "name,notes,external"
        if since is None:
            raws = self.api.list_all(
                f"markers in {self._where()}",
                lambda q: self.api.tasks.get_tasks_for_project(
                    self.project_gid, q, full_payload=True, _request_timeout=self.api.timeout
                ),
                {"opt_fields": fields},
            )
            self.scanned = True
        else:
            stamp = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
            raws = self.api.list_all(
                f"recently changed tasks in {self._where()}",
                lambda q: self.api.tasks.get_tasks(q, full_payload=True, _request_timeout=self.api.timeout),
                {"project": self.project_gid, "modified_since": stamp, "opt_fields": fields},
            )
        for raw in raws:
            gid = str(raw["gid"])
            key = parse_marker(str(raw.get("notes") or ""))
            ext = (raw.get("external") or {}).get("gid")
            for k in (key, ext):
                if k:
                    self.by_key.setdefault(str(k), gid)
                    self.titles.setdefault(gid, str(raw.get("name") or ""))

    def found(self, key: str, data: Mapping[str, Any]) -> str | None:
        """Remember the task ``data`` (an answer naming one) as ``key``'s; None if it is not ours.

        A task whose answer lists its projects, none of them ours, carries the key in another
        project of the workspace: the key is foreign and the task is left alone.
        """
        gid = str(data.get("gid") or "")
        if not gid:
            return None
        projects = data.get("projects")
        if projects is not None and not any(str(p.get("gid")) == self.project_gid for p in projects):
            self.foreign.add(key)
            return None
        self.by_key[key] = gid
        self.titles.setdefault(gid, str(data.get("name") or ""))
        return gid

    def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """CRM key -> task gid for keys known by marker or found as ``external:<key>``.

        A 400 on an external lookup means external ids are not available to this token: the
        connector stops using them and relies on markers in the notes.
        """
        found = {k: self.by_key[k] for k in keys if k in self.by_key}
        ask = [k for k in dict.fromkeys(keys) if k not in found]
        if not ask or not self.use_external:
            return found
        if len(ask) == 1:
            key = ask[0]
            try:
                resp = self.api.call(
                    f"the task created for {key!r}",
                    lambda: self.api.tasks.get_task(
                        f"external:{key}",
                        {"opt_fields": ",".join(LOOKUP_FIELDS)},
                        full_payload=True,
                        _request_timeout=self.api.timeout,
                    ),
                    idempotent=True,
                )
            except NotFoundError:
                return found
            except ApiError as e:
                if e.status in (400, 403):
                    self.use_external = False
                    return found
                raise
            gid = self.found(key, resp.get("data") or {})
            if gid:
                found[key] = gid
            return found
        actions = [
            Action(
                n,
                f"lookup:{k}",
                "get",
                f"/tasks/external:{quote(k, safe='')}",
                {},
                f"look up {k!r}",
                {"fields": list(LOOKUP_FIELDS)},
            )
            for n, k in enumerate(ask)
        ]
        for action, outcome in self.api.run_actions(actions, idempotent=True, where=self._where()):
            key = ask[action.owner]
            if outcome.ok:
                gid = self.found(key, (outcome.body or {}).get("data") or {})
                if gid:
                    found[key] = gid
            elif outcome.status in (400, 403):
                self.use_external = False
            elif outcome.status != 404:
                raise TransientError(
                    f"could not look up the task for {key!r}: {outcome.message()}",
                    outcome.status or None,
                )
        return found
