"""Creating tasks and comments in an Asana project, never twice: part of :class:`AsanaConnector`.

A create first looks its CRM key up (``external:<key>`` and the ``[tasksync:KEY]`` markers, see
:mod:`tasksync.connectors.asana_markers`); a task found is completed (CRM ID, priority) instead
of created again. A create whose answer was lost is looked up again before it is re-sent. A
comment is a story, never repeated after a lost answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tasksync.connectors.asana_api import Action, AsanaApi
from tasksync.connectors.asana_markers import Markers
from tasksync.connectors.asana_tasks import ProjectFields
from tasksync.connectors.transport import post_once
from tasksync.model import Field, FieldValue, NewTask, Task, WriteResult

if TYPE_CHECKING:
    from tasksync.settings import Settings

__all__ = ["CreatingTasks"]


class CreatingTasks:
    """The creating half of :class:`~tasksync.connectors.asana.AsanaConnector` (a mixin: the
    connector owns the state below)."""

    settings: Settings
    project_gid: str
    api: AsanaApi
    timeout: float
    fields: ProjectFields
    markers: Markers
    _titles: dict[str, str]
    _read_done: bool

    if TYPE_CHECKING:  # the connector's, used here

        def _ensure_meta(self) -> None: ...
        def _project_label(self) -> str: ...
        def _task_label(self, gid: str) -> str: ...
        def read_tasks(self, gids: Sequence[str]) -> dict[str, Task | None]: ...

    # ------------------------------------------------------------------ comments
    def comment(self, task_id: str, text: str) -> WriteResult:
        """Add a comment (a story) to a task: ``POST /tasks/{gid}/stories``, never repeated
        after a lost answer (it would be posted twice): that is :attr:`WriteStatus.UNKNOWN`."""
        what = f"a comment on {self._task_label(task_id)}"
        return post_once(
            task_id,
            lambda: self.api.call(
                what,
                lambda: self.api.stories.create_story_for_task(
                    {"data": {"text": text}}, task_id, {"opt_fields": "created_at"}, _request_timeout=self.timeout
                ),
                idempotent=False,
            ),
        )

    # ------------------------------------------------------------------ creating
    def find_created(self, key: str) -> str | None:
        """The gid of the task carrying ``key`` (``external.gid`` or marker), or None."""
        return self.markers.find(key, read_done=self._read_done)

    def create(self, new_tasks: Sequence[NewTask]) -> Iterator[WriteResult]:
        """Create tasks for CRM records, never twice: look each key up before (re)creating.

        Each task carries the key as ``external.gid`` (when the token may set external data)
        and as a ``[tasksync:KEY]`` marker in its notes. When a create's outcome is unknown
        (5xx, timeout, dropped connection) the key is looked up again before it is re-sent:
        by external id, or by scanning the tasks modified since this call started.
        """
        items = list(new_tasks)
        if items:
            self._ensure_meta()  # the priority and CRM ID fields go into each POST
        started = datetime.now(UTC) - timedelta(minutes=10)  # margin for clock skew
        todo: dict[str, NewTask] = {}
        for n in items:
            todo.setdefault(n.key, n)
        unresolved = list(todo)
        found = self.markers.lookup(unresolved)
        markers_only = any(self.markers.markers_only(k) for k in unresolved if k not in found)
        if markers_only and not (self._read_done or self.markers.scanned):
            self.markers.scan(None)  # a fresh process on a personal token: learn the markers
            found = self.markers.lookup(unresolved)
        incomplete = self._complete({k: found[k] for k in unresolved if k in found}, todo)
        attempts = 0
        scan = False
        while unresolved:
            if attempts:
                if scan and any(self.markers.markers_only(k) for k in unresolved):
                    self.markers.scan(started)
                found = self.markers.lookup(unresolved)
            scan = False
            for key in list(unresolved):
                if key in found:
                    error = incomplete.get(key)
                    yield WriteResult(found[key], error is None, error, key=key, retriable=error is not None)
                    unresolved.remove(key)
            if not unresolved:
                return
            if attempts >= self.api.policy.max_attempts:
                for key in unresolved:
                    yield WriteResult(
                        "",
                        False,
                        f"creating {todo[key].title!r} ({key}) in {self._project_label()}: "
                        f"gave up after {attempts} attempts",
                        key=key,
                        retriable=True,
                    )
                return
            if attempts:
                self.api.pause(attempts)
            attempts += 1
            again: list[str] = []
            yield from self._send_creates(unresolved, todo, again)
            scan = bool(again)  # each may have been created (a lost answer): look before re-sending
            unresolved = again

    def _complete(self, found: Mapping[str, str], todo: Mapping[str, NewTask]) -> dict[str, str]:
        """Set the CRM ID and priority that tasks found by their key lack (made by hand, or by
        an older run); a person's priority is kept. A task found completed (or out of the
        project: an undo of the plan that made it put it away) is made open again, in the new
        task's section, with its assignee. Returns key -> error for those not set."""
        if not found:
            return {}
        current = self.read_tasks(list(found.values()))
        link = self.settings.link.field.strip().casefold()
        actions: list[Action] = []
        errors: dict[str, str] = {}
        for i, (key, gid) in enumerate(found.items()):
            task = current.get(gid)
            if task is None:
                try:
                    actions.extend(self._reopen(i, gid, todo[key]))
                except ValueError as e:
                    errors[key] = f"{self._task_label(gid)}: found put away, but {e}"
                continue
            data: dict[str, Any] = {}
            if todo[key].priority is not None and task.priority is None:
                try:
                    data = self.fields.put_data({Field.PRIORITY: todo[key].priority})
                except ValueError as e:
                    errors[key] = f"{self._task_label(gid)}: found, but {e}"
            has_link = any(name.strip().casefold() == link and v for name, v in task.custom_fields.items())
            if self.fields.crm is not None and self.settings.link.by == "custom_field" and not has_link:
                data.setdefault("custom_fields", {})[self.fields.crm] = key
            if data:
                actions.append(
                    Action(i, gid, "put", f"/tasks/{quote(gid, safe='')}", data, "setting its CRM ID or priority")
                )
        keys = list(found)
        actions.sort(key=lambda a: a.method != "put")  # reopened before it is moved to its section
        for a, o in self.api.run_actions(actions, idempotent=True, where=self._project_label()):
            if not o.ok:
                errors.setdefault(
                    keys[a.owner],
                    f"{self._task_label(a.task_id)}: found, but {a.label} failed "
                    f"({o.status or 'no answer'}: {o.message()})",
                )
        return errors

    def _reopen(self, owner: int, gid: str, new: NewTask) -> list[Action]:
        """The actions that make the put-away task ``gid`` open again as ``new`` would be made: not
        completed, its assignee, priority and CRM ID, in its section."""
        values: dict[Field, FieldValue] = {Field.CLOSED: False, Field.ASSIGNEES: new.assignees}
        if new.priority is not None:
            values[Field.PRIORITY] = new.priority
        data = self.fields.put_data(values)
        if self.fields.crm is not None and self.settings.link.by == "custom_field":
            data.setdefault("custom_fields", {})[self.fields.crm] = new.key
        tid = quote(gid, safe="")
        return [
            Action(owner, gid, "put", f"/tasks/{tid}", data, "reopening it"),
            Action(
                owner,
                gid,
                "post",
                f"/sections/{quote(new.stage_id, safe='')}/addTask",
                {"task": gid},
                "moving it to its section",
            ),
        ]

    def _send_creates(
        self, keys: Sequence[str], todo: Mapping[str, NewTask], again: list[str]
    ) -> Iterator[WriteResult]:
        """One round of ``POST /tasks`` actions; the keys to look up and send again go to ``again``."""
        actions: list[Action] = []
        for idx, key in enumerate(keys):
            nt = todo[key]
            try:
                data = self.fields.create_data(nt, self.project_gid, external=not self.markers.markers_only(key))
            except ValueError as e:
                yield WriteResult("", False, f"creating {nt.title!r} ({key}): {e}", key=key)
                continue
            actions.append(
                Action(idx, f"create:{key}", "post", "/tasks", data, f"create {nt.title!r}", {"fields": ["name"]})
            )
        for action, outcome in self.api.run_actions(actions, idempotent=False, where=self._project_label()):
            key = keys[action.owner]
            nt = todo[key]
            message = outcome.message()
            if outcome.ok:
                gid = self.markers.found(key, (outcome.body or {}).get("data") or {}) or ""
                self._titles[gid] = nt.title
                yield WriteResult(gid, True, key=key)
            elif outcome.retriable:
                again.append(key)  # it may have been created (5xx, lost answer)
            elif "external" in message and outcome.status in (400, 403):
                # Key already taken (look it up), or external data not allowed for this
                # token (re-send without it, markers only). Nothing was created.
                if "in use" not in message and "already" not in message:
                    self.markers.use_external = False
                again.append(key)
            else:
                where = f"creating {nt.title!r} ({key}) in {self._project_label()}"
                yield WriteResult("", False, f"{where}: {outcome.status}: {message}", key=key)
