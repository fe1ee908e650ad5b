"""The Asana connector: one project, read page by page and written through ``/batch``.

Requests go through :class:`~tasksync.connectors.asana_api.AsanaApi` (the official SDK as the
transport core's I/O): a limiter per token (the per-minute budget, shared between processes in
the state folder), the core's retry rule, paging with loop detection, and ``/batch`` packing.
``SectionsApi.add_task_for_section`` is not used: it sends its body as a query parameter as
well, so stage moves only go out as ``/batch`` actions.

Writes group a task's fields into one ``PUT /tasks/{gid}`` action (assignee, priority enum,
completed) plus one ``POST /sections/{gid}/addTask`` action for a stage move, at most ten
actions per ``/batch`` request and never two actions for one task in the same batch (the batch
runs them in parallel). A write whose ``before`` no longer matches the task is not sent: the
events since the last read name the tasks someone touched, and only those are read again
(:meth:`AsanaConnector.write`). Results are checked action by action; only failed retriable
actions are sent again, and a write that may have landed without an answer is reported
:attr:`~tasksync.model.WriteStatus.UNKNOWN`.

Creates first look the CRM key up (``external:<key>`` and the ``[tasksync:KEY]`` markers seen
by the last read), so a retried create finds the first task; the ``POST /tasks`` carries the
marker, priority and CRM ID field, so a created task is complete in one request. External ids
need an OAuth app token; with a personal token Asana refuses them, and the connector falls back
to the markers alone (scanning the tasks modified since a create began when its outcome is
unknown; :mod:`tasksync.connectors.asana_create`).

Incremental reads: :meth:`AsanaConnector.changed_since` (Events API) tells which tasks changed
and :meth:`AsanaConnector.read_tasks` re-reads just those, ten per ``/batch`` request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tasksync.connectors.asana_api import (
    Action,
    AsanaApi,
    release_sdk_pool,
    shared_api_client,
)
from tasksync.connectors.asana_create import CreatingTasks
from tasksync.connectors.asana_markers import Markers
from tasksync.connectors.asana_tasks import (
    FIELD_SETTING_FIELDS,
    NOT_WORK,
    TASK_FIELDS,
    ProjectFields,
    parse_project_ref,
    task_from,
)
from tasksync.connectors.base import shared_dir_for
from tasksync.connectors.transport import (
    RetryPolicy,
    SlidingWindowLimiter,
    default_registry,
    whole_group,
)
from tasksync.errors import (
    ApiError,
    AuthError,
    ConfigError,
    TransientError,
)
from tasksync.model import (
    BoardRef,
    Field,
    Member,
    Snapshot,
    Stage,
    Task,
    TaskWrite,
    WriteResult,
    WriteStatus,
)
from tasksync.settings import Settings

__all__ = [
    "AsanaConnector",
    "open_project",
    "parse_project_ref",
    "release_sdk_pool",
    "shared_api_client",
]


#: ``completed_since`` for every task of a project, completed or not.
EVER = "1970-01-01T00:00:00.000Z"


class AsanaConnector(CreatingTasks):
    """One Asana project. See the module docstring for how requests are made."""

    def __init__(
        self,
        settings: Settings,
        *,
        api_client: Any | None = None,
        limiter: SlidingWindowLimiter | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        write_concurrency: int = 4,
        max_rate_limit_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        if not settings.asana.project:
            raise ConfigError("asana.project: no project configured (a gid or a project URL)")
        self.project_gid = parse_project_ref(settings.asana.project)
        self.board = BoardRef("asana", self.project_gid)
        host = settings.asana.api_url or settings.secrets.asana_api_url
        if api_client is None:
            secret = settings.secrets.asana_token
            if secret is None or not secret.get_secret_value():
                raise ConfigError("TASKSYNC_ASANA_TOKEN is not set (an Asana personal token)")
            token = secret.get_secret_value()
            api_client = shared_api_client(host, token)
        else:
            token = str(getattr(api_client.configuration, "access_token", "") or "")
        self.client = api_client
        if limiter is None:
            rpm = max(1, settings.asana.requests_per_minute)
            limiter = default_registry().get("asana", token, rpm, 60.0, shared_dir=shared_dir_for(settings))
        self.limiter = limiter
        self.timeout = timeout
        self.write_concurrency = max(1, min(write_concurrency, 15))  # Asana: ~15 writes at once
        policy = RetryPolicy(
            max_attempts=max(1, max_attempts),
            max_throttled=10_000,
            max_throttle_wait=max_rate_limit_wait,
            backoff=backoff,
            max_backoff=30.0,
            window=5.0,
        )
        self.api = AsanaApi(
            api_client, limiter, policy=policy, timeout=timeout, sleep=sleep, concurrency=self.write_concurrency
        )
        self.check_every = 50  # writes between two looks at the events (conditional writes)
        self._write_sync: str | None = None  # events sync token of the conditional writes
        self._suspect: set[str] = set()  # tasks touched since the read, not read again since
        self._suspect_all = True  # no sync token from before the read: every task is suspect
        self._known: dict[str, Task] = {}  # tasks as last read (or written), for conditional writes
        # Learnt on read (or lazily on write).
        self.project_name = ""
        self.workspace_gid = settings.asana.workspace or ""
        self._meta_loaded = False
        self.fields = ProjectFields(settings)  # the priority and CRM ID fields, once loaded
        self._titles: dict[str, str] = {}
        self.markers = Markers(self.api, self.project_gid, self._project_label, self._titles)
        self._read_done = False

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self.api.close()

    @property
    def requests_sent(self) -> int:
        """HTTP requests made, retries included."""
        return self.api.requests_sent

    def __enter__(self) -> AsanaConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _project_label(self) -> str:
        name = f" {self.project_name!r}" if self.project_name else ""
        return f"Asana project {self.project_gid}{name}"

    def _task_label(self, gid: str) -> str:
        title = self._titles.get(gid)
        return f"task {gid} {title!r}" if title else f"task {gid}"

    # ------------------------------------------------------------------ reading
    def _load_project(self) -> None:
        what = self._project_label()
        resp = self.api.call(
            what,
            lambda: self.api.projects.get_project(
                self.project_gid,
                {"opt_fields": "name,workspace"},
                full_payload=True,
                _request_timeout=self.timeout,
            ),
            idempotent=True,
        )
        data = resp.get("data") or {}
        self.project_name = str(data.get("name") or "")
        ws = (data.get("workspace") or {}).get("gid")
        if ws:
            self.workspace_gid = str(ws)

    def _load_sections(self) -> list[Stage]:
        raw = self.api.list_all(
            f"sections of {self._project_label()}",
            lambda q: self.api.sections.get_sections_for_project(
                self.project_gid, q, full_payload=True, _request_timeout=self.timeout
            ),
            {"opt_fields": "name"},
        )
        return [Stage(str(s["gid"]), str(s.get("name") or ""), float(i)) for i, s in enumerate(raw)]

    def _load_fields(self) -> None:
        raw = self.api.list_all(
            f"custom fields of {self._project_label()}",
            lambda q: self.api.fields.get_custom_field_settings_for_project(
                self.project_gid, q, full_payload=True, _request_timeout=self.timeout
            ),
            {"opt_fields": ",".join(FIELD_SETTING_FIELDS)},
        )
        self.fields = ProjectFields.of(raw, self.settings)
        self._meta_loaded = True

    def _load_members(self) -> list[Member]:
        if not self.workspace_gid:
            return []
        ws = self.workspace_gid
        raw = self.api.list_all(
            f"users of Asana workspace {ws}",
            lambda q: self.api.users.get_users(q, full_payload=True, _request_timeout=self.timeout),
            {"workspace": ws, "opt_fields": "name,email"},
        )
        return [Member(str(u["gid"]), str(u.get("name") or ""), None, u.get("email") or None) for u in raw]

    def _load_tasks(self, completed_since: str) -> list[dict[str, Any]]:
        return self.api.list_all(
            f"tasks of {self._project_label()}",
            lambda q: self.api.tasks.get_tasks_for_project(
                self.project_gid, q, full_payload=True, _request_timeout=self.timeout
            ),
            {"completed_since": completed_since, "opt_fields": ",".join(TASK_FIELDS)},
        )

    def _task_from(self, raw: Mapping[str, Any]) -> Task:
        return task_from(
            raw,
            project_gid=self.project_gid,
            priority_field=self.fields.priority,
            crm_field=self.fields.crm,
            settings=self.settings,
        )

    def _remember(self, tasks: Sequence[Task], raws: Sequence[Mapping[str, Any]]) -> None:
        for t, raw in zip(tasks, raws, strict=True):
            self._titles[t.id] = t.title
            self.markers.learn(t.id, t.description, raw.get("external"))

    def read(self) -> Snapshot:
        """The project's open tasks (not milestones nor approvals), sections, priority options and
        workspace users.

        Requests: 1 (project) + 1 (events: a sync token from before the read, so that conditional
        writes re-read only the tasks touched since) + 1 (sections) + 1 (custom fields) +
        ⌈users/100⌉ + ⌈open tasks/100⌉ (with ``[create] enabled``, completed tasks count too:
        their CRM links are the snapshot's ``archived_refs``); sections, fields and users are read
        while tasks page.
        """
        read_at = datetime.now(UTC)
        self._load_project()
        try:
            _, self._write_sync = self.changed_since(None)
            self._suspect, self._suspect_all = set(), False
        except AuthError:
            raise
        except ApiError:  # no token: conditional writes will read every guarded task again
            self._write_sync, self._suspect_all = None, True
        pool = self.api.executor()
        f_sections = pool.submit(self._load_sections)
        f_fields = pool.submit(self._load_fields)
        f_members = pool.submit(self._load_members)
        try:
            # With tasks to create, the completed ones too: their deals get no new task.
            raws = self._load_tasks(EVER if self.settings.create.enabled else "now")
        except BaseException:
            futures: list[Future[Any]] = [f_sections, f_fields, f_members]
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        stages = f_sections.result()
        f_fields.result()
        members = f_members.result()
        raws = [r for r in raws if r.get("resource_subtype") not in NOT_WORK]
        archived = {t.id: t.crm_ref for r in raws if r.get("completed") and (t := self._task_from(r)).crm_ref}
        raws = [r for r in raws if not r.get("completed")]
        tasks = [self._task_from(r) for r in raws]
        self._remember(tasks, raws)
        self._known = {t.id: t for t in tasks}
        self._read_done = True
        return Snapshot(
            board=self.board,
            name=self.project_name,
            members=tuple(members),
            stages=tuple(stages),
            tasks=tuple(tasks),
            priority_options=tuple(self.fields.options),
            read_at=read_at,
            max_assignees=1,
            archived_refs=archived,
            former_members=former_members(raws, members),
        )

    def read_completed(self, since: datetime) -> list[Task]:
        """Tasks completed since ``since`` (for KPIs); they are never part of a Snapshot."""
        if not self._meta_loaded:
            self._load_fields()
        stamp = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        raws = [r for r in self._load_tasks(stamp) if r.get("completed") and r.get("resource_subtype") not in NOT_WORK]
        return [self._task_from(r) for r in raws]

    def read_tasks(self, gids: Sequence[str]) -> dict[str, Task | None]:
        """Fresh copies of some tasks (after :meth:`changed_since`), ten per ``/batch``.

        None for a task that is gone, completed or no longer in the project.
        """
        if not self._meta_loaded:
            self._load_fields()
        actions = [
            Action(
                i,
                g,
                "get",
                f"/tasks/{quote(g, safe='')}",
                {},
                f"read {g}",
                {"fields": list(TASK_FIELDS)},
            )
            for i, g in enumerate(gids)
        ]
        out: dict[str, Task | None] = {}
        for action, outcome in self.api.run_actions(actions, idempotent=True, where=self._project_label()):
            if outcome.ok:
                raw = (outcome.body or {}).get("data") or {}
                in_project = any(
                    str((m.get("project") or {}).get("gid")) == self.project_gid for m in raw.get("memberships") or []
                )
                if raw.get("completed") or not in_project or raw.get("resource_subtype") in NOT_WORK:
                    out[action.task_id] = None
                    self._known.pop(action.task_id, None)
                else:
                    task = self._task_from(raw)
                    self._remember([task], [raw])
                    out[action.task_id] = task
                    self._known[task.id] = task
            elif outcome.status in (403, 404):
                out[action.task_id] = None
                self._known.pop(action.task_id, None)
            else:
                error = TransientError if outcome.retriable else ApiError
                raise error(
                    f"reading {self._task_label(action.task_id)}: {outcome.message()}",
                    outcome.status or None,
                )
        return out

    def changed_since(self, bookmark: str | None) -> tuple[set[str] | None, str]:
        """Tasks changed since ``bookmark`` (an events sync token), and the bookmark for next time.

        Returns ``(None, token)`` when a full read is needed: no token yet, an expired token
        (412), a change that is not about a task (sections, fields, the project itself), or a
        server that repeats a sync token while saying more events follow (the events cannot be
        trusted; the paginator stops at the repeat instead of asking forever). Events are
        delivered at most once, so the service keeps a periodic full read
        (``service.full_read_every``) as well.
        """
        return self.api.changes(self.project_gid, bookmark, f"events of {self._project_label()}")

    # ------------------------------------------------------------------ writing
    def _ensure_meta(self) -> None:
        if not self._meta_loaded:
            self._load_fields()

    def write(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        """Write each task's fields; one :class:`WriteResult` per write.

        Conditional: before each group of ``check_every`` writes, the project's events since the
        last look name the tasks someone touched (the first look reads every guarded task of the
        group again, ten per ``/batch``); a write whose task no longer holds its ``before`` is
        not sent but reported :attr:`WriteStatus.CONFLICT`. A write that may have landed without
        an answer is :attr:`WriteStatus.UNKNOWN`. A group's writes are sent at once and their
        results handed on when the whole group has answered, so no write is in flight between
        two results: whatever a person changes after a result is seen by the next group's look.
        """
        writes = list(writes)
        if any(Field.PRIORITY in w.values for w in writes):
            self._ensure_meta()
        for start in range(0, len(writes), self.check_every):
            chunk = writes[start : start + self.check_every]
            stale = self._stale(chunk)
            yield from stale.values()
            yield from whole_group(self._send_writes([w for w in chunk if w.task_id not in stale]))

    def _stale(self, writes: Sequence[TaskWrite]) -> dict[str, WriteResult]:
        """The writes whose task no longer holds their ``before``, as CONFLICT results."""
        guarded = {w.task_id: w for w in writes if w.before}
        if not guarded:
            return {}
        # The sync token is taken before the tasks are read again, so nothing falls between.
        touched, self._write_sync = self.changed_since(self._write_sync)
        if touched is None:  # no token since the read (or an expired one): every task is suspect
            self._suspect_all = True
        else:
            self._suspect |= touched  # a task reported now may be written only in a later group
        check = [gid for gid in guarded if self._suspect_all or gid in self._suspect or gid not in self._known]
        self._suspect -= set(check)
        if check:
            self.read_tasks(check)  # brings ``_known`` up to date
        out: dict[str, WriteResult] = {}
        for gid in guarded:
            task = self._known.get(gid)
            changed = [
                f"{f.value} is {task.value(f) if task else 'completed or gone'!r}, the plan expected {expected!r}"
                for f, expected in guarded[gid].before.items()
                if task is None or task.value(f) != expected
            ]
            if changed:
                message = f"{self._task_label(gid)}: changed since the plan ({'; '.join(changed)}); not written"
                out[gid] = WriteResult(gid, False, message, status=WriteStatus.CONFLICT)
        return out

    def _send_writes(self, writes: Sequence[TaskWrite]) -> Iterator[WriteResult]:
        actions: list[Action] = []
        landed: set[int] = set()  # writes with an action that landed, or may have
        remaining: dict[int, int] = {}
        errors: dict[int, list[str]] = {}
        retriable: dict[int, bool] = {}
        for i, w in enumerate(writes):
            label = self._task_label(w.task_id)
            try:
                put = self.fields.put_data(w.values)
            except ValueError as e:
                yield WriteResult(w.task_id, False, f"{label}: {e}")
                continue
            stage = w.values.get(Field.STAGE)
            mine: list[Action] = []
            tid = quote(w.task_id, safe="")
            if put:
                mine.append(
                    Action(
                        i,
                        w.task_id,
                        "put",
                        f"/tasks/{tid}",
                        put,
                        "update",
                        {"fields": ["modified_at"]},
                    )
                )
            if Field.STAGE in w.values:
                if not isinstance(stage, str) or not stage:
                    yield WriteResult(w.task_id, False, f"{label}: no section to move to")
                    continue
                mine.append(
                    Action(
                        i,
                        w.task_id,
                        "post",
                        f"/sections/{quote(stage, safe='')}/addTask",
                        {"task": w.task_id},
                        f"move to section {stage}",
                    )
                )
            if not mine:
                yield WriteResult(w.task_id, True)
                continue
            remaining[i] = len(mine)
            actions.extend(mine)
        # Updates first, then moves: first-fit packing then fills every batch but the last.
        actions.sort(key=lambda a: a.method != "put")
        for action, outcome in self.api.run_actions(actions, idempotent=True, where=self._project_label()):
            i = action.owner
            if outcome.ok or outcome.maybe_done:
                landed.add(i)
            if not outcome.ok:
                label = self._task_label(action.task_id)
                errors.setdefault(i, []).append(
                    f"{label}: {action.label} failed ({outcome.status or 'no answer'}: {outcome.message()})"
                )
                retriable[i] = retriable.get(i, False) or outcome.retriable
            remaining[i] -= 1
            if remaining[i] == 0:
                w = writes[i]
                if i in errors and i in landed:
                    # Some of it may be on the task: the next read tells, not a person.
                    message = "; ".join(errors[i])
                    yield WriteResult(w.task_id, False, message, retriable=True, status=WriteStatus.UNKNOWN)
                elif i in errors:
                    yield WriteResult(w.task_id, False, "; ".join(errors[i]), retriable=retriable.get(i, False))
                else:
                    self._wrote(w)
                    yield WriteResult(w.task_id, True)

    def _wrote(self, w: TaskWrite) -> None:
        """Keep the known copy of a task in step with what was written on it."""
        task = self._known.get(w.task_id)
        if task is None:
            return
        values = w.values
        owners, priority = values.get(Field.ASSIGNEES, task.assignees), values.get(Field.PRIORITY, task.priority)
        self._known[w.task_id] = replace(
            task,
            assignees=tuple(owners)[:1] if isinstance(owners, tuple) else (),  # Asana: one assignee
            stage_id=str(values.get(Field.STAGE, task.stage_id)),
            priority=priority if isinstance(priority, str) else None,
            closed=bool(values.get(Field.CLOSED, task.closed)),
        )


def former_members(raws: Sequence[Mapping[str, Any]], members: Sequence[Member]) -> tuple[Member, ...]:
    """The assignees of ``raws`` who are not workspace users (they left it), with the names the
    tasks give them, so that a plan names them rather than by gid."""
    known = {m.id for m in members}
    former: dict[str, Member] = {}
    for r in raws:
        user = r.get("assignee") or {}
        gid = str(user.get("gid") or "")
        if gid and gid not in known and gid not in former:
            former[gid] = Member(gid, str(user.get("name") or ""))
    return tuple(sorted(former.values(), key=lambda m: m.id))


def open_project(settings: Settings, board: str | None = None) -> AsanaConnector:
    """The ``tasksync.connectors`` factory: the configured project (``--board`` does not apply)."""
    if board is not None:
        raise ConfigError(f"--board applies to Trello boards; this config's connector is {settings.connector!r}")
    return AsanaConnector(settings)
