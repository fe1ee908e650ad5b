"""A stateful fake of the Asana REST API, served on loopback for tests and benchmarks.

The official SDK talks through urllib3, so the fake is a real HTTP server
(:class:`http.server.ThreadingHTTPServer` in a background thread)::

    with FakeAsana() as fake:
        demo = fake.seed_demo(tasks=50)
        cfg.host = fake.url            # http://127.0.0.1:PORT/api/1.0
        cfg.access_token = fake.token

It keeps the vendor's shapes: ``{"data": ...}`` envelopes, errors as
``{"errors": [{"message", "help", "phrase"}]}``, paging with ``limit`` (1..100) and opaque,
expiring ``offset`` tokens with ``next_page``, ``opt_fields`` projection, ``POST /batch``
(at most 10 actions, one ``{status_code, headers, body}`` per action), ``external:<gid>``
references, and ``GET /events`` with 412 and a fresh sync token when the token is missing or
expired.

It enforces a per-token budget of requests per minute (rejected requests still count, 429 with
``Retry-After``) on a clock that may run faster than real time (``time_scale``), and injects
faults on demand: a rate of 5xx answers, slow answers, dropped connections, failures applied
after the change was made (the response is lost), per-action batch failures, and scripted
failures for the next N requests. Every request is logged for assertions and benchmarks.

Run it by hand::

    python -m tasksync.testing.fake_asana --port 8766 --seed-demo --tasks 200
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import math
import random
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["DemoIds", "FakeAsana", "Fault", "RequestRecord", "main"]

API_PREFIX = "/api/1.0"
HELP = (
    "For more information on API status codes and how to handle them, read the docs on errors: "
    "https://developers.asana.com/docs/errors"
)
PAGE_LIMIT_MAX = 100
BATCH_MAX_ACTIONS = 10
EVENTS_PER_PAGE = 100

JSON = dict[str, Any]


class _HttpError(Exception):
    """An error answer: status and message (and extra top-level body fields, e.g. ``sync``)."""

    def __init__(
        self,
        status: int,
        message: str,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> JSON:
        err: JSON = {"message": self.message, "help": HELP}
        if self.status >= 500:
            err["phrase"] = "6 sad squid snuggle softly"
        return {"errors": [err], **self.extra}


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted failure for one upcoming request.

    ``kind``: ``"status"`` answers ``status`` without doing anything; ``"after"`` does the
    request and then answers ``status`` (the change is made, the answer lost); ``"drop"`` closes
    the connection without an answer (``apply`` says whether the change is made first);
    ``"slow"`` waits ``delay`` real seconds before handling the request.
    """

    kind: str = "status"
    status: int = 500
    delay: float = 0.0
    apply: bool = False
    retry_after: float | None = None


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as the fake saw it (batch actions appear inside ``body``)."""

    method: str
    path: str  # without the /api/1.0 prefix
    query: dict[str, str]
    body: Any
    status: int = 0
    token: str | None = None
    at: float = 0.0  # fake-clock seconds
    fault: str | None = None
    response: Any = None  # the body answered (None when the connection was dropped)


@dataclass(frozen=True, slots=True)
class DemoIds:
    """The gids created by :meth:`FakeAsana.seed_demo`."""

    workspace: str
    project: str
    sections: tuple[str, ...]
    priority_field: str
    priority_options: dict[str, str]  # option name -> gid
    crm_field: str
    users: tuple[str, ...]
    tasks: tuple[str, ...]


@dataclass(slots=True)
class _Task:
    gid: str
    name: str
    workspace: str
    notes: str = ""
    assignee: str | None = None
    completed: bool = False
    completed_at: str | None = None
    due_on: str | None = None
    created_at: str = ""
    modified_at: str = ""
    memberships: list[tuple[str, str]] = field(default_factory=list)  # (project, section)
    custom_values: dict[str, Any] = field(default_factory=dict)  # field gid -> raw value
    external: dict[str, str] | None = None
    tags: list[str] = field(default_factory=list)
    resource_subtype: str = "default_task"  # or milestone, approval (section: a legacy header)
    parent: str | None = None  # a subtask's task


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _field_tree(opt_fields: str | None) -> dict[str, Any] | None:
    """``"a,b.c,b.d"`` -> ``{"a": {}, "b": {"c": {}, "d": {}}}``; None when not given."""
    if opt_fields is None:
        return None
    tree: dict[str, Any] = {}
    for path in opt_fields.split(","):
        path = path.strip()
        if not path:
            continue
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _project(obj: Any, tree: Mapping[str, Any] | None, compact: Iterable[str]) -> Any:
    """Select ``tree``'s fields of a full record (always ``gid`` and ``resource_type``)."""
    if isinstance(obj, list):
        return [_project(x, tree, compact) for x in obj]
    if not isinstance(obj, dict):
        return obj
    keys = list(compact) if tree is None else list(tree)
    out: JSON = {}
    for k in ("gid", "resource_type"):
        if k in obj:
            out[k] = obj[k]
    for k in keys:
        if k not in obj:
            continue
        sub = None if tree is None else tree.get(k)
        value = obj[k]
        if sub:
            out[k] = _project(value, sub, ())
        elif isinstance(value, dict) and "gid" in value:
            out[k] = _project(value, None, ("name", "resource_subtype"))
        elif isinstance(value, list) and value and isinstance(value[0], dict) and "gid" in value[0]:
            out[k] = [_project(v, None, ("name",)) for v in value]
        else:
            out[k] = value
    return out


class FakeAsana:
    """The fake API; a context manager that serves it on ``127.0.0.1`` while open."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "fake-asana-token",
        requests_per_minute: int | None = 150,
        time_scale: float = 1.0,
        seed: int = 0,
        offset_ttl: float = 3600.0,
        sync_ttl: float = 24 * 3600.0,
        users_page_default: int = 100,
        default_limit: int = 100,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.tokens: set[str] = {token}
        self.requests_per_minute = requests_per_minute
        self.time_scale = time_scale
        self.offset_ttl = offset_ttl
        self.sync_ttl = sync_ttl
        self.users_page_default = users_page_default
        self.default_limit = default_limit  # page size of a listing that names no ``limit``
        self.sticky_sync = False  # answer /events like a spec mock: one sync token, has_more forever
        # Fault injection (probabilities per request, or per batch action).
        self.error_rate = 0.0  # answer 500/503 without doing anything
        self.error_after_rate = 0.0  # do the request, then answer 500 (answer lost)
        self.drop_rate = 0.0  # close the connection without an answer (after doing it)
        self.slow_rate = 0.0
        self.slow_seconds = 0.0
        self.action_error_rate = 0.0  # each batch action fails with 500 (not applied)
        self.forbidden: set[str] = set()  # project gids answering 403
        # External data (external.gid, external:<gid> references) needs an OAuth app token;
        # False makes the fake behave as for a personal access token.
        self.oauth = True
        self.log: list[RequestRecord] = []
        self.batch_orders: list[tuple[int, ...]] = []  # the order each batch's actions ran in
        self.stories: dict[str, list[JSON]] = {}  # task gid -> comments
        self._rng = random.Random(seed)
        self._scripted: deque[tuple[Callable[[str, str], bool] | None, Fault]] = deque()
        self._lock = threading.RLock()
        self._gids = itertools.count(1_200_000_000_000_001)
        self._t0 = time.monotonic()
        self._budget: dict[str, deque[float]] = {}
        self._inflight = 0
        self.max_inflight = 0
        # Asana's concurrency limits per token: requests over them are answered 429.
        self.max_concurrent_reads: int | None = 50
        self.max_concurrent_writes: int | None = 15
        self._concurrent: dict[tuple[str, bool], int] = {}  # (token, is_write) -> in flight
        # State.
        self.workspaces: dict[str, JSON] = {}
        self.users: dict[str, JSON] = {}
        self.projects: dict[str, JSON] = {}
        self.sections: dict[str, JSON] = {}  # gid -> {gid, name, project}
        self.custom_fields: dict[str, JSON] = {}
        self.project_fields: dict[str, list[str]] = {}
        self.tasks: dict[str, _Task] = {}
        self.project_tasks: dict[str, list[str]] = {}  # project -> task gids in order
        self.external_index: dict[str, str] = {}  # external gid -> task gid
        self.events: dict[str, list[JSON]] = {}  # resource gid -> events in order
        self._offsets: dict[str, tuple[str, int, float]] = {}  # token -> (route, index, t)
        self._syncs: dict[str, tuple[str, int, float]] = {}  # token -> (resource, pos, t)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeAsana:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAsana:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the SDK (``Configuration.host``)."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    # ----------------------------------------------------------------- clock and budget
    def now(self) -> float:
        """Fake-clock seconds since start (real seconds × ``time_scale``)."""
        return (time.monotonic() - self._t0) * self.time_scale

    def _charge(self, token: str) -> float | None:
        """Count one request against ``token``'s minute; the Retry-After (real s) if over."""
        if self.requests_per_minute is None:
            return None
        now = self.now()
        with self._lock:
            sent = self._budget.setdefault(token, deque())
            while sent and sent[0] <= now - 60.0:
                sent.popleft()
            sent.append(now)  # rejected requests count too
            if len(sent) <= self.requests_per_minute:
                return None
            oldest = sent[len(sent) - self.requests_per_minute]
            return max(0.001, (oldest + 60.0 - now) / self.time_scale)

    def reset_budget(self) -> None:
        with self._lock:
            self._budget.clear()

    # ----------------------------------------------------------------- faults and log
    def fail_next(
        self,
        n: int = 1,
        fault: Fault | None = None,
        *,
        when: Callable[[str, str], bool] | None = None,
    ) -> None:
        """Script ``fault`` (default: a plain 500) for the next ``n`` requests matching ``when``.

        ``when(method, path)`` selects which requests the fault is for (default: any).
        """
        with self._lock:
            for _ in range(n):
                self._scripted.append((when, fault or Fault()))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, (when, fault) in enumerate(self._scripted):
                if when is None or when(method, path):
                    del self._scripted[i]
                    return fault
            r = self._rng.random()
            if r < self.error_rate:
                return Fault("status", self._rng.choice((500, 503)))
            r -= self.error_rate
            if r < self.error_after_rate:
                return Fault("after", 500)
            r -= self.error_after_rate
            if r < self.drop_rate:
                return Fault("drop", apply=self._rng.random() < 0.5)
            r -= self.drop_rate
            if r < self.slow_rate:
                return Fault("slow", delay=self.slow_seconds)
        return None

    def requests(self, method: str | None = None, path_prefix: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.requests(method, path_prefix))

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # ----------------------------------------------------------------- seeding
    def gid(self) -> str:
        return str(next(self._gids))

    def add_workspace(self, name: str = "Sales Org") -> str:
        gid = self.gid()
        self.workspaces[gid] = {"gid": gid, "resource_type": "workspace", "name": name}
        return gid

    def add_user(self, workspace: str, name: str, email: str) -> str:
        gid = self.gid()
        self.users[gid] = {
            "gid": gid,
            "resource_type": "user",
            "name": name,
            "email": email,
            "workspaces": [workspace],
        }
        return gid

    def add_project(self, workspace: str, name: str) -> str:
        gid = self.gid()
        self.projects[gid] = {
            "gid": gid,
            "resource_type": "project",
            "name": name,
            "workspace": workspace,
            "archived": False,
        }
        self.project_tasks[gid] = []
        self.project_fields[gid] = []
        return gid

    def add_section(self, project: str, name: str) -> str:
        gid = self.gid()
        self.sections[gid] = {
            "gid": gid,
            "resource_type": "section",
            "name": name,
            "project": project,
        }
        return gid

    def add_enum_field(self, project: str, name: str, options: Iterable[str]) -> str:
        gid = self.gid()
        opts = [
            {
                "gid": self.gid(),
                "resource_type": "enum_option",
                "name": o,
                "enabled": True,
                "color": "none",
            }
            for o in options
        ]
        self.custom_fields[gid] = {
            "gid": gid,
            "resource_type": "custom_field",
            "name": name,
            "type": "enum",
            "resource_subtype": "enum",
            "enum_options": opts,
        }
        self.project_fields[project].append(gid)
        return gid

    def disable_option(self, field: str, name: str) -> None:
        """Disable the enum option ``name`` of ``field`` (Asana keeps it, but refuses to set it)."""
        with self._lock:
            for o in self.custom_fields[field]["enum_options"]:
                if o["name"] == name:
                    o["enabled"] = False

    def add_text_field(self, project: str, name: str) -> str:
        return self._add_field(project, name, "text")

    def add_people_field(self, project: str, name: str) -> str:
        """A ``people`` custom field (its value: users, written as gids or emails)."""
        return self._add_field(project, name, "people")

    def _add_field(self, project: str, name: str, kind: str) -> str:
        gid = self.gid()
        self.custom_fields[gid] = {
            "gid": gid,
            "resource_type": "custom_field",
            "name": name,
            "type": kind,
            "resource_subtype": kind,
        }
        self.project_fields[project].append(gid)
        return gid

    def add_subtask(
        self,
        parent: str,
        name: str,
        *,
        notes: str = "",
        assignee: str | None = None,
        project: str | None = None,
        section: str | None = None,
        custom_values: Mapping[str, Any] | None = None,
    ) -> str:
        """A subtask of ``parent``. As in Asana, a subtask is in no project, nor in a project's task
        list, unless it is added to one (``project`` and ``section``: then it carries that project's
        custom fields, ``custom_values``)."""
        if custom_values and project is None:
            raise ValueError("a subtask in no project has no project custom fields")
        if project is not None and section is not None:
            gid = self.add_task(project, section, name, notes=notes, assignee=assignee, custom_values=custom_values)
        else:
            now = _now_iso()
            gid = self.gid()
            with self._lock:
                self.tasks[gid] = _Task(
                    gid, name, self.tasks[parent].workspace, notes, assignee, created_at=now, modified_at=now
                )
        self.tasks[gid].parent = parent
        return gid

    def add_task(
        self,
        project: str,
        section: str,
        name: str,
        *,
        notes: str = "",
        assignee: str | None = None,
        custom_values: Mapping[str, Any] | None = None,
        completed: bool = False,
        due_on: str | None = None,
        external: Mapping[str, str] | None = None,
        resource_subtype: str = "default_task",
    ) -> str:
        gid = self.gid()
        now = _now_iso()
        task = _Task(
            gid=gid,
            name=name,
            workspace=self.projects[project]["workspace"],
            notes=notes,
            assignee=assignee,
            completed=completed,
            completed_at=now if completed else None,
            due_on=due_on,
            created_at=now,
            modified_at=now,
            memberships=[(project, section)],
            custom_values=dict(custom_values or {}),
            external=dict(external) if external else None,
            resource_subtype=resource_subtype,
        )
        with self._lock:
            self.tasks[gid] = task
            self.project_tasks[project].append(gid)
            if task.external:
                self.external_index[task.external["gid"]] = gid
        return gid

    def seed_demo(self, *, tasks: int = 20, users: int = 5, sections: Iterable[str] | None = None) -> DemoIds:
        """A workspace, a project with sections, Priority (enum) and CRM ID (text) fields,
        ``users`` users with emails and ``tasks`` open tasks spread over them."""
        ws = self.add_workspace("Acme Sales")
        proj = self.add_project(ws, "Pipeline")
        names = list(sections or ("Lead", "Qualified", "Proposal", "Negotiation"))
        secs = tuple(self.add_section(proj, n) for n in names)
        prio = self.add_enum_field(proj, "Priority", ["P1", "P2", "P3", "P4"])
        prio_opts = {o["name"]: o["gid"] for o in self.custom_fields[prio]["enum_options"]}
        crm = self.add_text_field(proj, "CRM ID")
        uids = tuple(self.add_user(ws, f"Rep {i + 1:02d}", f"rep{i + 1:02d}@example.com") for i in range(users))
        tids = []
        for i in range(tasks):
            tids.append(
                self.add_task(
                    proj,
                    secs[i % len(secs)],
                    f"Account {i + 1:04d}",
                    assignee=uids[i % len(uids)] if uids and i % 7 else None,
                    custom_values={
                        prio: list(prio_opts.values())[i % 4],
                        crm: f"ACC-{i + 1:04d}",
                    },
                    due_on=f"2027-{(i % 12) + 1:02d}-15" if i % 3 == 0 else None,
                )
            )
        return DemoIds(ws, proj, secs, prio, prio_opts, crm, uids, tuple(tids))

    def seed_from_trello_board(self, board: Mapping[str, Any]) -> DemoIds:
        """A project mirroring a Trello board export (e.g. ``examples/demo/board.json``): lists
        become sections, members users (``username@example.com``), the list custom field named
        "Priority" an enum field, "CRM ID" a text field, open cards tasks."""
        ws = self.add_workspace(str(board.get("name") or "Sales Org"))
        proj = self.add_project(ws, str(board.get("name") or "Pipeline"))
        lists = [lst for lst in board.get("lists", []) if not lst.get("closed")]
        section_of = {lst["id"]: self.add_section(proj, str(lst["name"])) for lst in lists}
        fields = {f["name"]: f for f in board.get("customFields", [])}
        prio_src = fields.get("Priority")
        option_names = [o["value"]["text"] for o in (prio_src or {}).get("options", [])] or ["P1", "P2", "P3", "P4"]
        prio = self.add_enum_field(proj, "Priority", option_names)
        prio_opts = {o["name"]: o["gid"] for o in self.custom_fields[prio]["enum_options"]}
        crm = self.add_text_field(proj, "CRM ID")
        user_of = {
            m["id"]: self.add_user(ws, str(m.get("fullName") or m["username"]), f"{m['username']}@example.com")
            for m in board.get("members", [])
        }
        option_text = {o["id"]: o["value"]["text"] for o in (prio_src or {}).get("options", [])}
        items: dict[str, dict[str, Any]] = {}
        for item in board.get("customFieldItems", []):  # the board-level form some tools write
            items.setdefault(item["idModel"], {})[item["idCustomField"]] = item
        for card in board.get("cards", []):  # a real export keeps them on each card
            for item in card.get("customFieldItems") or []:
                items.setdefault(card["id"], {})[item["idCustomField"]] = item
        crm_src = fields.get("CRM ID")
        tids = []
        for card in board.get("cards", []):
            if card.get("closed") or card.get("idList") not in section_of:
                continue
            values: dict[str, Any] = {}
            card_items = items.get(card["id"], {})
            if prio_src and prio_src["id"] in card_items:
                name = option_text.get(card_items[prio_src["id"]].get("idValue", ""))
                if name in prio_opts:
                    values[prio] = prio_opts[name]
            if crm_src and crm_src["id"] in card_items:
                values[crm] = (card_items[crm_src["id"]].get("value") or {}).get("text")
            members = [user_of[m] for m in card.get("idMembers", []) if m in user_of]
            tids.append(
                self.add_task(
                    proj,
                    section_of[card["idList"]],
                    str(card.get("name") or ""),
                    notes=str(card.get("desc") or ""),
                    assignee=members[0] if members else None,
                    custom_values=values,
                    due_on=str(card["due"])[:10] if card.get("due") else None,
                )
            )
        return DemoIds(ws, proj, tuple(section_of.values()), prio, prio_opts, crm, tuple(user_of.values()), tuple(tids))

    # ----------------------------------------------------------------- representations
    def _user_repr(self, gid: str) -> JSON:
        u = self.users[gid]
        return {"gid": gid, "resource_type": "user", "name": u["name"], "email": u["email"]}

    def _field_value_repr(self, fgid: str, raw: Any) -> JSON:
        f = self.custom_fields[fgid]
        out: JSON = {
            "gid": fgid,
            "resource_type": "custom_field",
            "name": f["name"],
            "type": f["type"],
            "resource_subtype": f["resource_subtype"],
        }
        if f["type"] == "enum":
            opt = next((o for o in f["enum_options"] if o["gid"] == raw), None)
            out["enum_value"] = dict(opt) if opt else None
            out["enum_options"] = [dict(o) for o in f["enum_options"]]
            out["display_value"] = opt["name"] if opt else None
        elif f["type"] == "number":
            out["number_value"] = raw
            out["display_value"] = None if raw is None else str(raw)
        elif f["type"] == "people":
            users = [self._user_repr(u) for u in raw or []]
            out["people_value"] = users
            out["display_value"] = ", ".join(u["name"] for u in users) or None
        else:
            out["text_value"] = raw
            out["display_value"] = raw
        return out

    def _task_repr(self, t: _Task) -> JSON:
        fields: list[str] = []
        for proj, _sec in t.memberships:
            for fgid in self.project_fields.get(proj, []):
                if fgid not in fields:
                    fields.append(fgid)
        out: JSON = {
            "gid": t.gid,
            "resource_type": "task",
            "resource_subtype": t.resource_subtype,
            "name": t.name,
            "notes": t.notes,
            "assignee": self._user_repr(t.assignee) if t.assignee else None,
            "completed": t.completed,
            "completed_at": t.completed_at,
            "due_on": t.due_on,
            "created_at": t.created_at,
            "modified_at": t.modified_at,
            "workspace": {
                "gid": t.workspace,
                "resource_type": "workspace",
                "name": self.workspaces[t.workspace]["name"],
            },
            "projects": [
                {"gid": p, "resource_type": "project", "name": self.projects[p]["name"]} for p, _ in t.memberships
            ],
            "memberships": [
                {
                    "project": {
                        "gid": p,
                        "resource_type": "project",
                        "name": self.projects[p]["name"],
                    },
                    "section": {
                        "gid": s,
                        "resource_type": "section",
                        "name": self.sections[s]["name"],
                    },
                }
                for p, s in t.memberships
            ],
            "custom_fields": [self._field_value_repr(f, t.custom_values.get(f)) for f in fields],
            "tags": [{"gid": tg, "resource_type": "tag", "name": tg} for tg in t.tags],
            "parent": (
                {"gid": t.parent, "resource_type": "task", "name": self.tasks[t.parent].name}
                if t.parent in self.tasks
                else None
            ),
        }
        if t.external and self.oauth:
            out["external"] = dict(t.external)
        return out

    # ----------------------------------------------------------------- dispatch
    def handle(
        self, method: str, raw_path: str, query: dict[str, str], body: Any, token: str | None
    ) -> tuple[int, JSON, dict[str, str]]:
        """Answer one request (also used for batch actions). Returns status, body, headers."""
        try:
            if token is None or token not in self.tokens:
                raise _HttpError(401, "Not Authorized")
            path = raw_path.rstrip("/") or "/"
            parts = [unquote(p) for p in path.strip("/").split("/")]
            status, data = self._route(method, parts, query, body)
            return status, data, {}
        except _HttpError as e:
            return e.status, e.body(), e.headers

    def _route(self, method: str, parts: list[str], q: dict[str, str], body: Any) -> tuple[int, JSON]:
        data = body.get("data") if isinstance(body, dict) else None
        n = len(parts)
        with self._lock:
            if method == "GET":
                if n == 2 and parts[0] == "projects":
                    return 200, self._get_project(parts[1], q)
                if n == 3 and parts[0] == "projects" and parts[2] == "tasks":
                    return 200, self._project_tasks(parts[1], q)
                if n == 3 and parts[0] == "projects" and parts[2] == "sections":
                    return 200, self._project_sections(parts[1], q)
                if n == 3 and parts[0] == "projects" and parts[2] == "custom_field_settings":
                    return 200, self._project_field_settings(parts[1], q)
                if n == 1 and parts[0] == "users":
                    return 200, self._users(q.get("workspace"), q)
                if n == 3 and parts[0] == "workspaces" and parts[2] == "users":
                    return 200, self._users(parts[1], q)
                if n == 2 and parts[0] == "tasks":
                    t = self._task(parts[1])
                    return 200, {"data": _project(self._task_repr(t), _field_tree(q.get("opt_fields")), _TASK_DEFAULT)}
                if n == 1 and parts[0] == "tasks":
                    return 200, self._tasks_query(q)
                if n == 3 and parts[0] == "tasks" and parts[2] == "subtasks":
                    return 200, self._subtasks(parts[1], q)
                if n == 1 and parts[0] == "events":
                    return 200, self._events(q)
            if method == "PUT" and n == 2 and parts[0] == "tasks":
                return 200, self._update_task(parts[1], data, q)
            if method == "POST":
                if n == 1 and parts[0] == "tasks":
                    return 201, self._create_task(data, q)
                if n == 3 and parts[0] == "sections" and parts[2] == "addTask":
                    return 200, self._add_task(parts[1], data)
                if n == 3 and parts[0] == "tasks" and parts[2] == "stories":
                    return 201, self._add_story(parts[1], data)
                if n == 3 and parts[0] == "tasks" and parts[2] == "subtasks":
                    return 201, self._create_subtask(parts[1], data, q)
        raise _HttpError(404, f"No matching route for request: {method} /{'/'.join(parts)}")

    # ----------------------------------------------------------------- routes
    def _check_project(self, gid: str) -> JSON:
        p = self.projects.get(gid)
        if p is None:
            raise _HttpError(404, f"project: Unknown object: {gid}")
        if gid in self.forbidden:
            raise _HttpError(403, "You do not have access to the requested project.")
        return p

    def _task(self, ref: str) -> _Task:
        gid = ref
        if ref.startswith("external:") and not self.oauth:
            raise _HttpError(400, _NO_OAUTH)
        if ref.startswith("external:"):
            gid = self.external_index.get(ref[len("external:") :], "")
        t = self.tasks.get(gid)
        if t is None:
            raise _HttpError(404, f"task: Unknown object: {ref}")
        for p, _ in t.memberships:
            if p in self.forbidden:
                raise _HttpError(403, "You do not have access to the requested task.")
        return t

    def _get_project(self, gid: str, q: Mapping[str, str]) -> JSON:
        p = self._check_project(gid)
        full = {
            **p,
            "workspace": {
                "gid": p["workspace"],
                "resource_type": "workspace",
                "name": self.workspaces[p["workspace"]]["name"],
            },
        }
        return {"data": _project(full, _field_tree(q.get("opt_fields")), ("name",))}

    def _page(self, route: str, items: list[Any], q: Mapping[str, str]) -> JSON:
        """One page of ``items`` per ``limit``/``offset``, with ``next_page`` when more remain."""
        start = 0
        limit: int | None = None
        if "limit" in q:
            try:
                limit = int(q["limit"])
            except ValueError:
                raise _HttpError(400, "limit: Value is not an integer") from None
            if not 1 <= limit <= PAGE_LIMIT_MAX:
                raise _HttpError(400, "limit: Must be between 1 and 100")
        if "offset" in q:
            entry = self._offsets.get(q["offset"])
            if entry is None or entry[0] != route:
                raise _HttpError(400, "offset: Your pagination token is invalid.")
            if self.now() - entry[2] > self.offset_ttl:
                raise _HttpError(400, "offset: Your pagination token has expired.")
            start = entry[1]
            if limit is None:
                raise _HttpError(400, "limit: Must be specified when offset is given")
        if limit is None:
            limit = self.default_limit  # as Asana: a listing without ``limit`` is still paged
        page = items[start : start + limit]
        nxt = None
        if start + limit < len(items):
            tok = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
            self._offsets[tok] = (route, start + limit, self.now())
            nxt = {
                "offset": tok,
                "path": f"{route}?limit={limit}&offset={tok}",
                "uri": f"{self.url}{route}?limit={limit}&offset={tok}",
            }
        return {"data": page, "next_page": nxt}

    def _select_tasks(self, gid: str, completed_since: str | None, modified_since: str | None = None) -> list[_Task]:
        """The project's tasks as Asana filters them: incomplete ones, plus those completed since
        ``completed_since`` ("now": none), modified since ``modified_since``."""
        return [
            t
            for t in (self.tasks[tgid] for tgid in self.project_tasks[gid])
            if not (
                completed_since is not None
                and t.completed
                and (completed_since == "now" or (t.completed_at or "") < completed_since)
            )
            and (modified_since is None or t.modified_at >= modified_since)
        ]

    def _project_tasks(self, gid: str, q: Mapping[str, str]) -> JSON:
        self._check_project(gid)
        tree = _field_tree(q.get("opt_fields"))
        selected = self._select_tasks(gid, q.get("completed_since"))
        # Page over the selection first; build representations only for the page served.
        page = self._page(f"/projects/{gid}/tasks", selected, q)
        page["data"] = [_project(self._task_repr(t), tree, ("name", "resource_subtype")) for t in page["data"]]
        return page

    def _tasks_query(self, q: Mapping[str, str]) -> JSON:
        """``GET /tasks?project=&modified_since=&completed_since=`` (project required here)."""
        gid = q.get("project")
        if not gid:
            raise _HttpError(400, "project: This fake needs a project to list tasks")
        self._check_project(gid)
        tree = _field_tree(q.get("opt_fields"))
        selected = self._select_tasks(gid, q.get("completed_since"), q.get("modified_since"))
        page = self._page(f"/tasks?project={gid}", selected, q)
        page["data"] = [_project(self._task_repr(t), tree, ("name", "resource_subtype")) for t in page["data"]]
        return page

    def _subtasks(self, gid: str, q: Mapping[str, str]) -> JSON:
        """``GET /tasks/{gid}/subtasks``: the task's subtasks, oldest first (compact: name)."""
        self._task(gid)
        tree = _field_tree(q.get("opt_fields"))
        kids = [t for t in self.tasks.values() if t.parent == gid]
        page = self._page(f"/tasks/{gid}/subtasks", kids, q)
        page["data"] = [_project(self._task_repr(t), tree, ("name", "resource_subtype")) for t in page["data"]]
        return page

    def _create_subtask(self, gid: str, data: Any, q: Mapping[str, str]) -> JSON:
        """``POST /tasks/{gid}/subtasks``: a subtask in no project (Asana adds it to none)."""
        self._task(gid)
        if not isinstance(data, dict):
            raise _HttpError(400, "data: Missing input")
        for key in ("projects", "memberships", "custom_fields"):
            if key in data:
                raise _HttpError(400, f"{key}: This fake creates subtasks in no project")
        assignee = self._resolve_user(data.get("assignee"))
        kid = self.tasks[
            self.add_subtask(gid, str(data.get("name", "")), notes=str(data.get("notes", "")), assignee=assignee)
        ]
        self._emit(kid, "added")
        return {"data": _project(self._task_repr(kid), _field_tree(q.get("opt_fields")), _TASK_DEFAULT)}

    def _project_sections(self, gid: str, q: Mapping[str, str]) -> JSON:
        self._check_project(gid)
        tree = _field_tree(q.get("opt_fields"))
        items = [
            _project(
                {
                    **s,
                    "project": {
                        "gid": gid,
                        "resource_type": "project",
                        "name": self.projects[gid]["name"],
                    },
                },
                tree,
                ("name",),
            )
            for s in self.sections.values()
            if s["project"] == gid
        ]
        return self._page(f"/projects/{gid}/sections", items, q)

    def _project_field_settings(self, gid: str, q: Mapping[str, str]) -> JSON:
        self._check_project(gid)
        tree = _field_tree(q.get("opt_fields"))
        items = []
        for fgid in self.project_fields[gid]:
            setting = {
                "gid": f"{gid}-{fgid}",
                "resource_type": "custom_field_setting",
                "is_important": True,
                "project": {
                    "gid": gid,
                    "resource_type": "project",
                    "name": self.projects[gid]["name"],
                },
                "custom_field": {k: v for k, v in self.custom_fields[fgid].items()},
            }
            items.append(_project(setting, tree, ("is_important", "custom_field")))
        return self._page(f"/projects/{gid}/custom_field_settings", items, q)

    def _users(self, workspace: str | None, q: Mapping[str, str]) -> JSON:
        tree = _field_tree(q.get("opt_fields"))
        items = [
            _project(self._user_repr(u["gid"]), tree, ("name",))
            for u in self.users.values()
            if workspace is None or workspace in u["workspaces"]
        ]
        route = f"/users?workspace={workspace}"
        q2 = dict(q)
        q2.setdefault("limit", str(self.users_page_default))
        return self._page(route, items, q2)

    def _resolve_user(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _HttpError(400, "assignee: Not a valid user reference")
        if value in self.users:
            return value
        for u in self.users.values():
            if u["email"].casefold() == value.casefold():
                return str(u["gid"])
        raise _HttpError(400, f"assignee: Not a recognized ID: {value}")

    def _set_custom_values(self, t: _Task, values: Any) -> list[str]:
        if not isinstance(values, dict):
            raise _HttpError(400, "custom_fields: Value is not an object")
        allowed = {f for p, _ in t.memberships for f in self.project_fields.get(p, [])}
        changed = []
        for fgid, raw in values.items():
            f = self.custom_fields.get(fgid)
            if f is None or fgid not in allowed:
                raise _HttpError(400, f"custom_fields: Custom field {fgid} is not on this task")
            if f["type"] == "enum" and raw is not None:
                option = next((o for o in f["enum_options"] if o["gid"] == raw), None)
                if option is None:
                    raise _HttpError(400, f"custom_fields: {raw} is not an enum option of {fgid}")
                if not option.get("enabled", True):
                    raise _HttpError(400, f"custom_fields: enum option {raw} is disabled")
            if f["type"] == "people" and raw is not None:
                if not isinstance(raw, list):
                    raise _HttpError(400, "custom_fields: people_value must be an array of users")
                raw = [self._resolve_user(u) for u in raw]
            if f["type"] == "number" and raw is not None and not isinstance(raw, (int, float)):
                try:
                    raw = float(raw)
                except (TypeError, ValueError):
                    raise _HttpError(400, "custom_fields: Value is not a number") from None
            if t.custom_values.get(fgid) != raw:
                t.custom_values[fgid] = raw
                changed.append("custom_fields")
        return changed

    def _emit(self, t: _Task, action: str, field_name: str | None = None) -> None:
        event = {
            "user": None,
            "created_at": _now_iso(),
            "type": "task",
            "action": action,
            "resource": {"gid": t.gid, "resource_type": "task", "name": t.name},
            "parent": None,
            "change": {"field": field_name, "action": "changed"} if field_name else None,
        }
        for p, _ in t.memberships:
            self.events.setdefault(p, []).append(event)
        self.events.setdefault(t.gid, []).append(event)

    def _update_task(self, ref: str, data: Any, q: Mapping[str, str]) -> JSON:
        if not isinstance(data, dict):
            raise _HttpError(400, "data: Missing input")
        t = self._task(ref)
        for key in ("projects", "memberships", "workspace"):
            if key in data:
                raise _HttpError(400, f"{key}: Cannot write this property after creation")
        # Validate everything before changing anything.
        assignee = self._resolve_user(data["assignee"]) if "assignee" in data else t.assignee
        changed: list[str] = []
        if "custom_fields" in data:
            probe = _Task(**{k: getattr(t, k) for k in _Task.__dataclass_fields__})
            probe.custom_values = dict(t.custom_values)
            self._set_custom_values(probe, data["custom_fields"])
            changed += self._set_custom_values(t, data["custom_fields"])
        if assignee != t.assignee:
            t.assignee = assignee
            changed.append("assignee")
        for key in ("name", "notes", "due_on"):
            if key in data and getattr(t, key) != data[key]:
                setattr(t, key, data[key])
                changed.append(key)
        if "completed" in data and bool(data["completed"]) != t.completed:
            t.completed = bool(data["completed"])
            t.completed_at = _now_iso() if t.completed else None
            changed.append("completed")
        if changed:
            t.modified_at = _now_iso()
            for c in dict.fromkeys(changed):
                self._emit(t, "changed", c)
        return {"data": _project(self._task_repr(t), _field_tree(q.get("opt_fields")), _TASK_DEFAULT)}

    def _create_task(self, data: Any, q: Mapping[str, str]) -> JSON:
        if not isinstance(data, dict):
            raise _HttpError(400, "data: Missing input")
        projects = list(data.get("projects") or [])
        memberships = list(data.get("memberships") or [])
        workspace = data.get("workspace")
        if not projects and not memberships and not workspace:
            raise _HttpError(400, "workspace: Missing input")
        pairs: dict[str, str] = {}
        for m in memberships:
            p, s = m.get("project"), m.get("section")
            self._check_project(p)
            if s is not None and self.sections.get(s, {}).get("project") != p:
                raise _HttpError(400, f"memberships: Section {s} is not in project {p}")
            pairs[p] = s
        for p in projects:
            self._check_project(p)
            if p not in pairs:
                first = next((s for s in self.sections.values() if s["project"] == p), None)
                if first is None:
                    raise _HttpError(400, f"projects: Project {p} has no section")
                pairs[p] = first["gid"]
        if not pairs:
            raise _HttpError(400, "projects: This fake needs a project for new tasks")
        ext = data.get("external")
        if ext is not None and not self.oauth:
            raise _HttpError(400, _NO_OAUTH)
        if ext is not None:
            if not isinstance(ext, dict) or not ext.get("gid"):
                raise _HttpError(400, "external: Must be an object with a gid")
            if ext["gid"] in self.external_index:
                raise _HttpError(400, f"external: gid {ext['gid']} is already in use")
        assignee = self._resolve_user(data.get("assignee"))
        first_project = next(iter(pairs))
        gid = self.add_task(
            first_project,
            pairs[first_project],
            str(data.get("name", "")),
            notes=str(data.get("notes", "")),
            assignee=assignee,
            due_on=data.get("due_on"),
            external={"gid": str(ext["gid"]), "data": str(ext.get("data", ""))} if ext else None,
        )
        t = self.tasks[gid]
        for p, s in list(pairs.items())[1:]:
            t.memberships.append((p, s))
            self.project_tasks[p].append(gid)
        if "custom_fields" in data:
            try:
                self._set_custom_values(t, data["custom_fields"])
            except _HttpError:
                self._forget(t)
                raise
        self._emit(t, "added")
        return {"data": _project(self._task_repr(t), _field_tree(q.get("opt_fields")), _TASK_DEFAULT)}

    def _forget(self, t: _Task) -> None:
        self.tasks.pop(t.gid, None)
        for p, _ in t.memberships:
            if t.gid in self.project_tasks.get(p, []):
                self.project_tasks[p].remove(t.gid)
        if t.external:
            self.external_index.pop(t.external["gid"], None)

    def _add_task(self, section: str, data: Any) -> JSON:
        s = self.sections.get(section)
        if s is None:
            raise _HttpError(404, f"section: Unknown object: {section}")
        if not isinstance(data, dict) or not data.get("task"):
            raise _HttpError(400, "task: Missing input")
        t = self._task(str(data["task"]))
        proj = s["project"]
        self._check_project(proj)
        for i, (p, old) in enumerate(t.memberships):
            if p == proj:
                if old != section:
                    t.memberships[i] = (p, section)
                    t.modified_at = _now_iso()
                    self._emit(t, "changed", "memberships")
                break
        else:
            raise _HttpError(400, f"task: Task {t.gid} is not in the section's project")
        return {"data": {}}

    def _add_story(self, ref: str, data: Any) -> JSON:
        t = self._task(ref)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"].strip():
            raise _HttpError(400, "text: Missing input")
        story = {
            "gid": self.gid(),
            "resource_type": "story",
            "resource_subtype": "comment_added",
            "type": "comment",
            "text": data["text"],
            "created_at": _now_iso(),
        }
        self.stories.setdefault(t.gid, []).append(story)
        return {"data": story}

    def _events(self, q: Mapping[str, str]) -> JSON:
        resource = q.get("resource")
        if not resource:
            raise _HttpError(400, "resource: Missing input")
        if resource in self.projects:
            self._check_project(resource)
        elif resource not in self.tasks:
            raise _HttpError(404, f"resource: Unknown object: {resource}")
        stream = self.events.setdefault(resource, [])
        token = q.get("sync")
        if self.sticky_sync:
            # The vendor's spec example, served as is by mock servers: the same token, more to come.
            return {"data": [], "sync": "de4774f6915eae04714ca93bb2f5ee81", "has_more": True}
        entry = self._syncs.get(token) if token else None
        if entry is None or entry[0] != resource or self.now() - entry[2] > self.sync_ttl:
            fresh = self._new_sync(resource, len(stream))
            raise _HttpError(
                412,
                "Sync token invalid or too old. If you are attempting to keep resources in "
                "sync, you must fetch the full dataset for this query now and use the new sync "
                "token for the next sync.",
                extra={"sync": fresh},
            )
        pos = entry[1]
        page = stream[pos : pos + EVENTS_PER_PAGE]
        new_pos = pos + len(page)
        return {
            "data": page,
            "sync": self._new_sync(resource, new_pos),
            "has_more": new_pos < len(stream),
        }

    def _new_sync(self, resource: str, pos: int) -> str:
        tok = secrets.token_hex(16)
        self._syncs[tok] = (resource, pos, self.now())
        return tok

    def expire_sync_tokens(self) -> None:
        """Make every sync token issued so far invalid (next use answers 412)."""
        with self._lock:
            self._syncs.clear()

    def expire_offsets(self) -> None:
        with self._lock:
            self._offsets.clear()

    def batch(self, body: Any, token: str | None) -> tuple[int, JSON]:
        data = body.get("data") if isinstance(body, dict) else None
        actions = data.get("actions") if isinstance(data, dict) else None
        if not isinstance(actions, list) or not actions:
            raise _HttpError(400, "actions: Missing input")
        if len(actions) > BATCH_MAX_ACTIONS:
            raise _HttpError(400, f"actions: At most {BATCH_MAX_ACTIONS} actions are allowed")
        for a in actions:
            if not isinstance(a, dict) or "relative_path" not in a or "method" not in a:
                raise _HttpError(400, "actions: Each action needs relative_path and method")
        # Asana runs a batch's actions in parallel, in no order: here in a shuffled order (from
        # the fake's seed), the results still in the order of the actions.
        order = list(range(len(actions)))
        with self._lock:
            self._rng.shuffle(order)
            self.batch_orders.append(tuple(order))
        results: list[Any] = [None] * len(actions)
        for index in order:
            a = actions[index]
            method = str(a["method"]).upper()
            rel = str(a["relative_path"])
            if "?" in rel:
                raise _HttpError(400, "relative_path: Query parameters are not accepted here")
            if rel.startswith("/batch"):
                raise _HttpError(400, "relative_path: Batch requests cannot be nested")
            with self._lock:
                fail = self._rng.random() < self.action_error_rate
            if fail:
                err = _HttpError(500, "Server Error (injected into a batch action)")
                results[index] = {"status_code": 500, "headers": {}, "body": err.body()}
                continue
            opts = a.get("options") or {}
            query: dict[str, str] = {}
            action_data = a.get("data") or {}
            if method == "GET":
                query.update({k: str(v) for k, v in action_data.items()})
                inner_body: Any = None
            else:
                inner_body = {"data": action_data}
            if "fields" in opts:
                query["opt_fields"] = ",".join(opts["fields"])
            for k in ("limit", "offset"):
                if k in opts:
                    query[k] = str(opts[k])
            status, out, headers = self.handle(method, rel, query, inner_body, token)
            results[index] = {"status_code": status, "headers": headers, "body": out}
        return 200, {"data": results}


_NO_OAUTH = "external: Custom external data can only be used with an OAuth app token"
_TASK_DEFAULT = ("name", "resource_subtype", "assignee", "completed", "modified_at", "notes")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAsana
    protocol_version = "HTTP/1.1"
    server_version = "FakeAsana/1.0"
    wbufsize = 64 * 1024  # buffered answers (see _send)

    def setup(self) -> None:
        super().setup()
        # Answers go out in one write with no Nagle delay (else keep-alive costs 40 ms each).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; the fake keeps its own log

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _send(self, status: int, body: JSON, headers: Mapping[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()  # wfile is buffered: headers and body leave in one write

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _serve(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else None
        rel = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path
        record = RequestRecord(method, rel, query, body, token=token, at=fake.now())
        with fake._lock:
            fake.log.append(record)
            fake._inflight += 1
            fake.max_inflight = max(fake.max_inflight, fake._inflight)
        key = (token or "", method != "GET")
        cap = fake.max_concurrent_writes if key[1] else fake.max_concurrent_reads
        with fake._lock:
            fake._concurrent[key] = fake._concurrent.get(key, 0) + 1
            over = cap is not None and fake._concurrent[key] > cap
        try:
            if over:
                record.status = 429
                err = _HttpError(429, "You have too many concurrent requests. Please retry.")
                self._send(429, err.body(), {"Retry-After": "1"})
            else:
                self._answer(method, rel, query, body, token, record, bad_json, path)
        finally:
            with fake._lock:
                fake._inflight -= 1
                fake._concurrent[key] -= 1

    def _answer(
        self,
        method: str,
        rel: str,
        query: dict[str, str],
        body: Any,
        token: str | None,
        record: RequestRecord,
        bad_json: bool,
        path: str,
    ) -> None:
        fake = self.fake
        if not path.startswith(API_PREFIX):
            record.status = 404
            self._send(404, _HttpError(404, f"No such path: {path}").body())
            return
        retry_after = fake._charge(token or "")
        if retry_after is not None:
            record.status = 429
            err = _HttpError(
                429,
                "You've made too many requests and hit a rate limit. Please retry after the given amount of time.",
            )
            # Asana sends whole seconds; the fake's time scale shortens them only where it can.
            self._send(429, err.body(), {"Retry-After": str(max(1, math.ceil(retry_after)))})
            return
        fault = fake._take_fault(method, rel)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "status":
                record.status = fault.status
                headers = {}
                if fault.status == 429:
                    headers["Retry-After"] = str(max(1, math.ceil(fault.retry_after or 1)))
                self._send(fault.status, _HttpError(fault.status, "Server Error").body(), headers)
                return
            elif fault.kind == "drop" and not fault.apply:
                record.status = -1
                self._drop()
                return
        if bad_json:
            status, out, headers = 400, _HttpError(400, "Could not parse JSON body").body(), {}
        elif method == "POST" and rel.rstrip("/") == "/batch":
            if token is None or token not in fake.tokens:
                status, out, headers = 401, _HttpError(401, "Not Authorized").body(), {}
            else:
                try:
                    status, out = fake.batch(body, token)
                    headers = {}
                except _HttpError as e:
                    status, out, headers = e.status, e.body(), e.headers
        else:
            status, out, headers = fake.handle(method, rel, query, body, token)
        if fault is not None and fault.kind == "drop":
            record.status = -1
            self._drop()
            return
        if fault is not None and fault.kind == "after":
            record.status = fault.status
            self._send(fault.status, _HttpError(fault.status, "Server Error").body())
            return
        record.status = status
        record.response = out
        self._send(status, out, headers)


def main(argv: list[str] | None = None) -> int:
    """Serve the fake until interrupted: ``python -m tasksync.testing.fake_asana``."""
    ap = argparse.ArgumentParser(description="Serve a fake Asana API on loopback.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--token", default="fake-asana-token")
    ap.add_argument("--seed-demo", action="store_true", help="create a demo project")
    ap.add_argument("--board", help="mirror a Trello board export (e.g. examples/demo/board.json) as the project")
    ap.add_argument("--tasks", type=int, default=40, help="demo tasks")
    ap.add_argument("--users", type=int, default=5, help="demo users")
    ap.add_argument("--rpm", type=int, default=150, help="requests per minute (0: no limit)")
    ap.add_argument("--time-scale", type=float, default=1.0, help="fake minutes run this fast")
    ap.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 5xx")
    args = ap.parse_args(argv)
    fake = FakeAsana(
        host=args.host,
        port=args.port,
        token=args.token,
        requests_per_minute=args.rpm or None,
        time_scale=args.time_scale,
    )
    fake.error_rate = args.error_rate
    demo = fake.seed_demo(tasks=args.tasks, users=args.users) if args.seed_demo else None
    if args.board:
        with open(args.board, encoding="utf-8") as fh:  # noqa: PTH123
            demo = fake.seed_from_trello_board(json.load(fh))
    fake.start()
    print(f"Fake Asana at {fake.url}")
    print(f"  export TASKSYNC_ASANA_API_URL={fake.url}")
    print(f"  export TASKSYNC_ASANA_TOKEN={fake.token}")
    if demo is not None:
        print(
            f"  workspace {demo.workspace}, project {demo.project} ({len(demo.tasks)} tasks, {len(demo.users)} users)"
        )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
