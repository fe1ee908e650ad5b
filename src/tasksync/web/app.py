"""The ASGI app: the review page and its JSON API, the Trello Power-Up, webhooks and ``/healthz``.

Pages are static files (no inline script, no data, no secret in them); their scripts fetch the
data from ``/api/…`` once logged in. Security headers on every answer: a CSP without inline
script, ``frame-ancestors 'none'`` except for the Power-Up's pages (Trello's origins only),
``nosniff``, no referrer, ``no-store`` for the API.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasksync.errors import TasksyncError
from tasksync.service.webhooks import MAX_BODY, Webhooks
from tasksync.team.override_commands import OverrideCommands
from tasksync.web.auth import SESSION_COOKIE, SESSION_SECONDS, Session, Sessions, TrelloMembers
from tasksync.web.review import Review

__all__ = ["TRELLO_ORIGINS", "WebOptions", "create_app", "create_hooks_app"]

TRELLO_ORIGINS = "https://trello.com https://*.trello.com"
STATIC = Path(str(resources.files("tasksync.web") / "static"))
# The review page inside Trello's modal: Power-Up mode, and Trello's client script before ours.
POWERUP_REVIEW = (
    ('<body data-mode="page">', '<body data-mode="powerup" data-app-key="__APP_KEY__" data-app-name="__APP_NAME__">'),
    ('<script src="/static/api.js">', '<script src="__POWERUP_SCRIPT__"></script>\n<script src="/static/api.js">'),
)
MAX_API_BODY = 64 << 10


@dataclass
class WebOptions:
    """What the app needs besides the engine."""

    admin_token: str
    request_timeout: float = 10.0
    max_active: int = 64
    public_url: str | None = None
    powerup_api_key: str | None = None
    powerup_app_name: str = "tasksync"
    powerup_script: str = "https://p.trellocdn.com/power-up.min.js"
    members: TrelloMembers | None = None


# ---------------------------------------------------------------------------- middleware
class SecurityHeaders:
    """Adds the security headers; the Power-Up pages may be framed by Trello, nothing else may."""

    def __init__(self, app: ASGIApp, powerup_script: str, https: bool) -> None:
        self.app = app
        script_origin = _origin(powerup_script)
        base = (
            "default-src 'none'; script-src 'self'{extra}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {frames}"
        )
        self.csp_page = base.format(extra="", frames="'none'")
        self.csp_powerup = base.format(extra=f" {script_origin}" if script_origin else "", frames=TRELLO_ORIGINS)
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        powerup = path.startswith("/powerup/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                add = {
                    "content-security-policy": self.csp_powerup if powerup else self.csp_page,
                    "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer",
                    "cross-origin-resource-policy": "same-origin",
                }
                if not powerup:
                    add["x-frame-options"] = "DENY"
                if path.startswith(("/api/", "/powerup/session", "/login", "/healthz")):
                    add["cache-control"] = "no-store"
                if self.https:
                    add["strict-transport-security"] = "max-age=31536000"
                names = {k for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in add.items() if k.encode() not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Bounded:
    """At most ``max_active`` requests handled at once; ``/healthz`` is never kept waiting."""

    def __init__(self, app: ASGIApp, max_active: int, wait: float) -> None:
        self.app = app
        self.max_active = max_active
        self.wait = wait
        self._sem: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_active)
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait)
        except TimeoutError:
            await PlainTextResponse("busy; try again", 503, headers={"Retry-After": "5"})(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._sem.release()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, within ``limit`` bytes and ``timeout`` seconds (413 / 408 otherwise)."""
    try:
        length = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise HTTPException(400, "bad Content-Length") from None
    if length < 0 or length > limit:
        raise HTTPException(413, "request body too large")

    async def collect() -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, "request body too large")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise HTTPException(408, "request body not received in time") from None


# ---------------------------------------------------------------------------- webhooks
def hook_routes(hooks: Webhooks, timeout: float) -> list[Route]:
    async def trello(request: Request) -> Response:
        if request.method in ("HEAD", "GET"):
            return Response(status_code=200)
        body = await read_body(request, MAX_BODY, timeout)
        host = request.headers.get("host") or "localhost"
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        peer = request.client.host if request.client else ""
        status = hooks.handle_trello(body, request.headers, f"{request.url.scheme}://{host}{target}", peer)
        return Response(status_code=status)

    async def asana(request: Request) -> Response:
        if request.method in ("HEAD", "GET"):
            return Response(status_code=200)
        body = await read_body(request, MAX_BODY, timeout)
        peer = request.client.host if request.client else ""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        status, headers = hooks.handle_asana(body, request.headers, peer, target)
        return Response(status_code=status, headers=headers)

    async def healthz(request: Request) -> Response:
        if hooks.health is None:
            return Response(status_code=404)
        ok, detail = await run_in_threadpool(hooks.health)
        return Response(json.dumps(detail, default=str), 200 if ok else 503, media_type="application/json")

    methods = ["GET", "HEAD", "POST"]
    return [
        Route("/trello", trello, methods=methods),
        Route("/asana", asana, methods=methods),
        Route("/asana/{project}", asana, methods=methods),  # a project's own webhook (its own secret)
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]


def _wrap(app: ASGIApp, *, max_active: int, timeout: float, powerup_script: str, https: bool) -> ASGIApp:
    return SecurityHeaders(Bounded(app, max_active, timeout), powerup_script, https)


async def _not_found(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else "not found"
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return JSONResponse({"error": detail}, status)


def create_hooks_app(hooks: Webhooks, *, request_timeout: float = 10.0, max_active: int = 64) -> ASGIApp:
    """Only the webhook and health endpoints (``tasksync serve --webhook-port``)."""
    app = Starlette(routes=hook_routes(hooks, request_timeout), exception_handlers={HTTPException: _not_found})
    return _wrap(app, max_active=max_active, timeout=request_timeout, powerup_script="", https=False)


# ---------------------------------------------------------------------------- the review page
Handler = Callable[[Request], Awaitable[Response]]
ApiHandler = Callable[[Request, Session], Awaitable[Any]]


# the CLI's exit codes as HTTP: bad input, refused for now (stale plan, guard, busy board), the API refused
_STATUS = {2: 400, 3: 400, 4: 409, 5: 409, 6: 502, 7: 409}


def _error(e: Exception) -> JSONResponse:
    status = _STATUS.get(e.exit_code, 500) if isinstance(e, TasksyncError) else 500
    return JSONResponse({"error": str(e)}, status)


@dataclass
class Gate:
    """Who is asking and whether a write may pass: sessions, login, CSRF and same-origin checks,
    and the JSON bodies of the API. Every ``/api/…`` route is wrapped by :meth:`api`."""

    options: WebOptions
    sessions: Sessions
    https: bool

    def session_of(self, request: Request) -> Session | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return self.sessions.get(auth[7:].strip())
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def same_origin(self, request: Request) -> bool:
        """Browsers send ``Origin`` on every cross-site POST: when present it must be this server's."""
        origin = request.headers.get("origin")
        if origin is None:
            return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
        allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
        if self.options.public_url:
            allowed.add(_origin(self.options.public_url))
        return origin in allowed

    def api(self, handler: ApiHandler, write: bool = False) -> Handler:
        """``handler`` for logged-in users only; a ``write`` also needs our origin and the CSRF token."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                return JSONResponse({"error": "log in first"}, 401)
            if write:
                if not self.same_origin(request):
                    return JSONResponse({"error": "cross-site request refused"}, 403)
                if not Sessions.csrf_ok(session, request.headers.get("x-csrf-token")):
                    return JSONResponse({"error": "missing or wrong CSRF token; reload the page"}, 403)
            try:
                result = await handler(request, session)
            except (TasksyncError, OSError) as e:
                return _error(e)
            return result if isinstance(result, Response) else JSONResponse(result)

        return endpoint

    async def json_body(self, request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, "send JSON (Content-Type: application/json)")
        raw = await read_body(request, MAX_API_BODY, self.options.request_timeout)
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise HTTPException(400, "not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "expected a JSON object")
        return data


def text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise HTTPException(400, f"missing {key!r}")
    return value


def number(data: dict[str, Any], key: str, *, whole: bool = False, required: bool = True) -> float | None:
    """A JSON number (``whole``: an integer); None when absent and not ``required``."""
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if whole:
            return value
        try:
            return float(value)
        except OverflowError:
            raise HTTPException(400, f"{key!r}: too large") from None
    if isinstance(value, float) and not whole:
        return value
    raise HTTPException(400, f"{key!r}: expected {'a whole number' if whole else 'a number'}")


def login_routes(gate: Gate) -> list[Route]:
    """Log in with the admin token, log out, and the Power-Up's session for a Trello member."""
    options, sessions = gate.options, gate.sessions

    async def login(request: Request) -> Response:
        if not gate.same_origin(request):
            return JSONResponse({"error": "cross-site request refused"}, 403)
        data = await gate.json_body(request)
        sent = str(data.get("token") or "")
        if not sent or not hmac.compare_digest(sent.encode(), options.admin_token.encode()):
            return JSONResponse({"error": "wrong admin token"}, 401)
        s = sessions.open("admin")
        resp = JSONResponse({"who": s.who})
        resp.set_cookie(
            SESSION_COOKIE, s.id, max_age=SESSION_SECONDS, httponly=True, samesite="strict", secure=gate.https, path="/"
        )
        return resp

    async def logout(request: Request, session: Session) -> Response:
        sessions.close(session.id)
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def powerup_session(request: Request) -> Response:
        if not gate.same_origin(request):
            return JSONResponse({"error": "cross-site request refused"}, 403)
        data = await gate.json_body(request)
        token = str(data.get("token") or "")
        member = await run_in_threadpool(options.members.member, token) if options.members else None
        if member is None:
            return JSONResponse({"error": "this Trello token is not a member of the board"}, 401)
        s = sessions.open(f"trello:{member[1]}", member[0])
        return JSONResponse({"session": s.id, "csrf": s.csrf, "who": s.who})

    async def get_session(request: Request, session: Session) -> Any:
        return {"who": session.who, "csrf": session.csrf}

    return [
        Route("/login", login, methods=["POST"]),
        Route("/logout", gate.api(logout, write=True), methods=["POST"]),
        Route("/powerup/session", powerup_session, methods=["POST"]),
        Route("/api/session", gate.api(get_session)),
    ]


def plan_routes(gate: Gate, review: Review) -> list[Route]:
    """The plan, reject (a pin), apply and undo as jobs with progress, history, a card's reasons."""

    async def get_plan(request: Request, session: Session) -> Any:
        return {"data": await run_in_threadpool(review.current)}

    async def post_plan(request: Request, session: Session) -> Any:
        await gate.json_body(request)
        return {"data": await run_in_threadpool(review.plan)}

    async def post_reject(request: Request, session: Session) -> Any:
        data = await gate.json_body(request)
        args = (text(data, "plan_id"), text(data, "task_id"), text(data, "field"))
        return {"data": await run_in_threadpool(review.reject, *args)}

    def start(kind: str) -> ApiHandler:
        async def handler(request: Request, session: Session) -> Any:
            data = await gate.json_body(request)
            job = await run_in_threadpool(review.start, kind, text(data, "plan_id"))
            return JSONResponse({"job": job.as_json()}, 202)

        return handler

    async def get_job(request: Request, session: Session) -> Any:
        job = review.job(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "no such job"}, 404)
        return {"job": job.as_json()}

    async def get_history(request: Request, session: Session) -> Any:
        return {"plans": await run_in_threadpool(review.history)}

    async def get_card(request: Request, session: Session) -> Any:
        return await run_in_threadpool(review.card, request.path_params["task_id"])

    return [
        Route("/api/plan", gate.api(get_plan), methods=["GET"]),
        Route("/api/plan", gate.api(post_plan, write=True), methods=["POST"]),
        Route("/api/reject", gate.api(post_reject, write=True), methods=["POST"]),
        Route("/api/apply", gate.api(start("apply"), write=True), methods=["POST"]),
        Route("/api/undo", gate.api(start("undo"), write=True), methods=["POST"]),
        Route("/api/jobs/{job_id}", gate.api(get_job)),
        Route("/api/history", gate.api(get_history)),
        Route("/api/cards/{task_id}", gate.api(get_card)),
    ]


def _set_by(session: Session) -> str:
    """Who an override names as its author: ``admin``, or the Trello member's username."""
    return session.who.removeprefix("trello:")


def reps_routes(gate: Gate, review: Review) -> list[Route]:
    """The reps table (``reps --json``'s data) and its controls: away, back, capacity, quota, reset.

    Each write names the rep in ``rep`` (id, name or email, as ``tasksync reps``), is checked by
    the same functions as the command line, and answers with the updated table; the shown plan is
    then stale (superseded) and the page plans again."""

    Change = Callable[[OverrideCommands], str]

    def change(parse: Callable[[dict[str, Any], str], Change]) -> ApiHandler:
        async def handler(request: Request, session: Session) -> Any:
            data = await gate.json_body(request)
            return await run_in_threadpool(review.set_rep, parse(data, text(data, "rep")), _set_by(session))

        return handler

    def away(data: dict[str, Any], name: str) -> Change:
        until = data.get("until")
        if until is not None and not isinstance(until, str):
            raise HTTPException(400, "'until': expected a date (YYYY-MM-DD) or a span such as 14d or 2w")
        return lambda commands: commands.away(name, until or None)

    def back(data: dict[str, Any], name: str) -> Change:
        return lambda commands: commands.back(name)

    def capacity(data: dict[str, Any], name: str) -> Change:
        tasks, value = int(number(data, "tasks", whole=True) or 0), number(data, "value", required=False)
        return lambda commands: commands.capacity(name, tasks, value)

    def quota(data: dict[str, Any], name: str) -> Change:
        amount = float(number(data, "amount") or 0)
        return lambda commands: commands.quota(name, amount)

    def reset(data: dict[str, Any], name: str) -> Change:
        return lambda commands: commands.reset(name)

    async def get_reps(request: Request, session: Session) -> Any:
        return {"data": await run_in_threadpool(review.reps)}

    actions = {"away": away, "back": back, "capacity": capacity, "quota": quota, "reset": reset}
    return [
        Route("/api/reps", gate.api(get_reps), methods=["GET"]),
        *(
            Route(f"/api/reps/{name}", gate.api(change(parse), write=True), methods=["POST"])
            for name, parse in actions.items()
        ),
    ]


def page_routes(options: WebOptions) -> list[Route | Mount]:
    """The pages (static files with their placeholders filled), the Power-Up's, icon and statics."""

    def page(name: str, variant: tuple[tuple[str, str], ...] = ()) -> Handler:
        """A static page with its placeholders filled; ``variant`` first replaces fixed markup
        (the Power-Up's review page is the review page with Trello's client script)."""

        async def endpoint(request: Request) -> Response:
            body = (STATIC / name).read_text(encoding="utf-8")
            for old, new in variant:
                body = body.replace(old, new)
            for key, value in (
                ("__POWERUP_SCRIPT__", options.powerup_script),
                ("__APP_KEY__", options.powerup_api_key or ""),
                ("__APP_NAME__", options.powerup_app_name),
            ):
                body = body.replace(key, html.escape(value, quote=True))
            return Response(body, media_type="text/html; charset=utf-8")

        return endpoint

    async def root(request: Request) -> Response:
        return RedirectResponse("/review", 303)

    async def favicon(request: Request) -> Response:
        """The browser asks for /favicon.ico on every page: the app's icon, not a 404 in the console."""
        return Response((STATIC / "icon.svg").read_bytes(), media_type="image/svg+xml")

    async def powerup_config(request: Request) -> Response:
        return JSONResponse({"appKey": options.powerup_api_key or "", "appName": options.powerup_app_name})

    return [
        Route("/", root),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Route("/review", page("review.html")),
        Route("/login", page("login.html"), methods=["GET"]),
        Route("/powerup/", page("powerup/connector.html")),
        Route("/powerup/connector.html", page("powerup/connector.html")),
        Route("/powerup/review.html", page("review.html", POWERUP_REVIEW)),
        Route("/powerup/card-back.html", page("powerup/card-back.html")),
        Route("/powerup/settings.html", page("powerup/settings.html")),
        Route("/powerup/authorize.html", page("powerup/authorize.html")),
        Route("/powerup/config.json", powerup_config),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(review: Review, options: WebOptions, hooks: Webhooks | None = None) -> ASGIApp:
    """The whole app: review page and API, Power-Up, and (with ``hooks``) webhooks and /healthz."""
    https = (options.public_url or "").startswith("https://")
    gate = Gate(options, Sessions(), https)
    routes: list[Route | Mount] = [
        *login_routes(gate),
        *plan_routes(gate, review),
        *reps_routes(gate, review),
        *page_routes(options),
    ]
    if hooks is not None:
        routes += hook_routes(hooks, options.request_timeout)
    app = Starlette(routes=routes, exception_handlers={HTTPException: _not_found})
    return _wrap(
        app,
        max_active=options.max_active,
        timeout=options.request_timeout,
        powerup_script=options.powerup_script,
        https=https,
    )
