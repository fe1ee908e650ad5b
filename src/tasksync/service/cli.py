"""``tasksync serve`` and ``tasksync status`` (registered by :func:`register`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasksync.errors import ConfigError, TasksyncError

if TYPE_CHECKING:
    from tasksync.service.loop import SyncService
    from tasksync.service.multi import BoardScheduler
    from tasksync.settings import ConfiguredBoard, Settings

__all__ = ["asana_secret_file", "board_health", "cmd_serve", "cmd_status", "register"]


def _port(text: str) -> int:
    """A TCP port number, checked when the command line is read."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="keep the board in sync: assign new tasks within an interval (scheduled mode)",
        description="Run the scheduled sync service on every board the config names (or the one --board "
        "names), one process and one state store for all, the most overdue board first. Only new or unowned tasks "
        "(and tasks of reps who are away) get an owner; priorities are refreshed and cards created for "
        "new CRM leads. A whole-book rebalance runs only on [service] rebalance_every/rebalance_at or "
        "with --rebalance. Exit codes: 0 stopped cleanly; with --once (every board once) 0 done, 1 an "
        "error or a failed write, 4 paused by a guard (the worst board's); 7 another service holds this state store.",
    )
    p.add_argument("--once", action="store_true", help="run one iteration and exit (for cron)")
    p.add_argument("--interval", type=float, help="seconds between change checks (default [service] interval, 60)")
    p.add_argument("--webhook-port", type=_port, help="receive Trello/Asana webhooks on this port (/trello, /asana)")
    p.add_argument(
        "--webhook-host",
        default="127.0.0.1",
        help="address the webhook and health servers listen on (default 127.0.0.1)",
    )
    p.add_argument("--health-port", type=_port, help="serve GET /healthz on this port (may equal --webhook-port)")
    p.add_argument(
        "--register-asana-webhook",
        metavar="URL",
        help="register a webhook for each Asana project served, delivering to URL/<project gid> (URL: the "
        "public https://…/asana), once the server is up",
    )
    p.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    p.add_argument("--rebalance", action="store_true", help="run a whole-book rebalance at the first iteration")
    p.add_argument(
        "--accept-crm", action="store_true", help="accept the current CRM exports' row counts as the new baseline"
    )
    p.add_argument("--max-iterations", type=int, help=argparse.SUPPRESS)
    p.add_argument("--today", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "status",
        help="per board: the service's last run, next run, pause and errors; exit code for health checks",
        description="One verdict per board; the exit code is the worst: 0 healthy, 1 failing or unreadable, "
        "3 stale or never ran, 4 paused by a guard.",
    )
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.add_argument("--stale-after", type=float, help="seconds without a run before the service counts as stale")
    p.set_defaults(func=cmd_status)


def _secrets(settings: Settings) -> list[str]:
    s = settings.secrets
    values = [s.trello_key, s.trello_token, s.asana_token, s.trello_secret, s.asana_webhook_secret]
    return [v.get_secret_value() for v in values if v is not None]


def _state_folder(settings: Settings) -> None:
    """Create the state store's folder, or say in one line why it cannot be."""
    folder = settings.path(settings.state_path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise ConfigError(
            f"{folder}: cannot create the state folder ({e.strerror}); point state_path in the config, "
            "--state or $TASKSYNC_STATE at a writable place (the systemd unit uses /var/lib/tasksync/NAME)"
        ) from None


def _check_store(settings: Settings) -> None:
    """Open the state store and take its write lock once, so that a damaged, read-only or full
    store stops ``serve`` at the start with one line (see ``tasksync.cli``) instead of failing
    every iteration."""
    from tasksync.sync.state import StateStore

    with StateStore(settings.path(settings.state_path)) as store, store.transaction():
        pass


def _boards(args: argparse.Namespace) -> tuple[Settings, list[ConfiguredBoard]]:
    """The config's shared settings and the boards ``serve`` runs: all, or the one ``--board`` names."""
    from tasksync.settings import find_board, load_settings

    settings = load_settings(Path(args.config), getattr(args, "state", None))
    args.state_file = settings.path(settings.state_path)
    boards = settings.boards()
    if getattr(args, "board", None):
        boards = [find_board(settings, args.board, args.config)]
    if args.interval:
        for svc_settings in (settings, *(b.settings for b in boards)):
            svc_settings.service.interval = args.interval
    return settings, boards


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    from types import FrameType

    from tasksync.cli import today_of
    from tasksync.service.lock import ServiceLock, lock_path_for
    from tasksync.service.logs import configure_logging, event
    from tasksync.service.multi import exit_code, open_boards

    settings, boards = _boards(args)
    _state_folder(settings)
    _check_store(settings)
    cfg = settings.service
    configure_logging(json_lines=cfg.log_json or args.log_json, secrets=_secrets(settings))
    lock = ServiceLock(lock_path_for(settings.path(settings.state_path)))

    def prepare(svc: SyncService) -> None:  # each board's service before its first iteration
        if args.accept_crm:
            svc.accept_crm()
        if args.rebalance:
            svc.request_rebalance()

    with lock:
        scheduler = open_boards(boards, today=today_of(args), prepare=prepare)
        servers: list[Any] = []
        try:
            if args.once:
                return exit_code(scheduler.run_all_once())

            def on_signal(signum: int, frame: FrameType | None) -> None:
                event("service.signal", signal=signal.Signals(signum).name)
                scheduler.stop()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            servers = _start_servers(args, settings, scheduler)
            scheduler.run(max_iterations=args.max_iterations)
            return 0  # stopped as asked; `tasksync status` tells whether it was healthy
        finally:
            for s in servers:
                s.stop()
            scheduler.close()


def board_health(settings: Settings, scheduler: BoardScheduler) -> Callable[[], tuple[bool, dict[str, Any]]]:
    """GET /healthz: healthy when every board is; one board's values, or every board's."""
    from tasksync.service.health import HEALTHY, health_of, read_status

    stale_after = settings.service.stale_after or 3 * settings.service.interval

    def health() -> tuple[bool, dict[str, Any]]:
        keys = scheduler.keys  # a board waiting to be opened by its name; by its key once it opens
        # Each request runs in its own thread and SQLite connections stay in theirs: open one per request.
        from tasksync.sync.state import StateStore

        with StateStore(settings.path(settings.state_path)) as store:
            recorded = read_status(store)
        now = time.time()
        verdicts = {k: health_of(recorded.get(k, {}), now, stale_after) for k in keys}
        ok = all(code == HEALTHY for code, _ in verdicts.values())
        if len(keys) == 1:
            return ok, {"status": verdicts[keys[0]][1], **recorded.get(keys[0], {})}
        worst = max(verdicts.values(), default=(HEALTHY, "healthy"))[1]
        boards = {k: {"status": v, **recorded.get(k, {})} for k, (_, v) in verdicts.items()}
        return ok, {"status": worst, "boards": boards}

    return health


def asana_secret_file(settings: Settings, project: str = "") -> Path:
    """Where the secret of the Asana webhook delivering to ``/asana/<project>`` is kept (0600,
    beside the state store; ``project`` empty: the one ``/asana`` webhook of earlier versions)."""
    folder = settings.path(settings.state_path).parent
    return folder / (f"asana-webhook-secret-{project}" if project else "asana-webhook-secret")


def _hook_args(settings: Settings, scheduler: BoardScheduler) -> dict[str, Any]:
    """The webhook endpoints' settings: secrets (each Asana project's its own), and the scheduler to wake."""
    from tasksync.service.webhooks import read_secret_file, write_secret_file

    secrets = settings.secrets
    asana_fixed = secrets.asana_webhook_secret.get_secret_value() if secrets.asana_webhook_secret else None
    secret_file = asana_secret_file(settings)
    remembered = read_secret_file(secret_file)
    projects: dict[str, str] = {}
    for svc in scheduler.services:
        legacy = svc.store.get(svc.board, "service.asana_hook_secret")
        if legacy:  # kept in the state DB (0644) by earlier versions: move it to the 0600 file
            if remembered is None:
                write_secret_file(secret_file, legacy)
                remembered = legacy
            svc.store.put(svc.board, "service.asana_hook_secret", "")
        if svc.connector.board.connector == "asana":
            own = read_secret_file(asana_secret_file(settings, svc.connector.board.id))
            if own is not None:
                projects[svc.connector.board.id] = own
    return {
        "on_change": scheduler.trigger,
        "trello_secret": secrets.trello_secret.get_secret_value() if secrets.trello_secret else None,
        "trello_callback_url": settings.service.trello_callback_url,
        "asana_secret": asana_fixed or remembered,
        "asana_secret_fixed": asana_fixed is not None,
        "asana_secrets": projects,
        "remember_asana_secret": lambda project, secret: write_secret_file(
            asana_secret_file(settings, project), secret
        ),
    }


def _start_servers(args: argparse.Namespace, settings: Settings, scheduler: BoardScheduler) -> list[Any]:
    from tasksync.service.logs import event
    from tasksync.service.webhooks import HookServer, Webhooks

    health = board_health(settings, scheduler)
    hook_args = _hook_args(settings, scheduler)
    web = settings.web
    limits = {k: getattr(web, k) for k in ("request_timeout", "max_active", "max_connections", "backlog")}
    servers: list[Any] = []
    try:
        hooks: Webhooks | None = None
        if args.webhook_port is not None:
            own_health = health if args.health_port in (None, args.webhook_port) else None
            hooks = HookServer(args.webhook_host, args.webhook_port, health=own_health, **limits, **hook_args).start()
            servers.append(hooks)
        if args.health_port is not None and args.health_port != args.webhook_port:
            servers.append(HookServer(args.webhook_host, args.health_port, health=health, **limits).start())
        if web.enabled:  # the review page, with the webhooks and /healthz on the same app
            from tasksync.web.cli import build_app, web_server

            if len(scheduler.boards) != 1:
                raise ConfigError(
                    "[web] enabled serves one board's review page; with several boards run "
                    "`tasksync web --board NAME` beside `serve`, and --webhook-port for the webhooks"
                )
            svc = scheduler.services[0]
            web_hooks = hooks or Webhooks(health=health, **hook_args)
            app = build_app(svc.settings, board=None, today=svc.today, hooks=web_hooks)
            server = web_server(settings, app).start()
            servers.append(server)
            event("web.listening", host=web.host, port=server.port)
            hooks = hooks or web_hooks
        if getattr(args, "register_asana_webhook", None):
            _register_asana(args.register_asana_webhook, scheduler, hooks)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def _register_asana(target: str, scheduler: BoardScheduler, hooks: Any) -> None:
    """``--register-asana-webhook URL``: a webhook for each Asana project served, delivering to
    ``URL/<project gid>`` (its own secret; the path routes its deliveries to it)."""
    from tasksync.connectors.asana import parse_project_ref
    from tasksync.service.logs import event
    from tasksync.service.webhooks import register_asana_webhook

    projects = [svc for svc in scheduler.services if svc.connector.board.connector == "asana"]
    if hooks is None or not projects:
        raise ConfigError(
            "--register-asana-webhook needs an Asana project (connector asana) and --webhook-port or [web] enabled"
        )
    for svc in projects:
        token = svc.settings.secrets.asana_token
        if token is None:
            raise ConfigError(f"--register-asana-webhook: {svc.name or svc.board} has no TASKSYNC_ASANA_TOKEN")
        project = svc.connector.board.id
        ref = parse_project_ref(svc.settings.asana.project)
        url = f"{target.rstrip('/')}/{project}"
        gid = register_asana_webhook(svc.settings.secrets.asana_api_url, token.get_secret_value(), ref, url, hooks)
        event("webhook.registered", source="asana", **svc.who, gid=gid, target=url)


_NUMBERS: dict[str, type[int] | type[float]] = {
    "code": int,
    "errors": int,
    "conflicts": int,
    "held": int,
    "pid": int,
    "interval": float,
    "last_rebalance": float,
}


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """The status with numbers as numbers and unset values as null (the store keeps text)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k == "held_changes" and isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = json.loads(v) if v else []
        elif isinstance(v, str) and k in _NUMBERS:
            with contextlib.suppress(ValueError):  # a value from an older tasksync stays text
                v = _NUMBERS[k](v) if v else None
        elif v == "":
            v = None
        out[k] = v
    return out


def cmd_status(args: argparse.Namespace) -> int:
    from tasksync.cli import one_line_error
    from tasksync.service.health import read_status_at, status_config

    try:
        config = status_config(Path(args.config), getattr(args, "state", None))
        args.state_file = config.state
        if not config.state.exists():
            print(f"tasksync: no state store at {config.state}: the service never ran", file=sys.stderr)
            return 3
        boards = read_status_at(config.state)
    except TasksyncError as e:  # exit 2 is reserved by container health checks
        print(f"tasksync: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a damaged or unreadable store: unhealthy, in one line
        known = one_line_error(e, args)
        if known is None:
            raise
        print(f"tasksync: {known[0]}", file=sys.stderr)
        return 1
    report = _status_report(boards, config.boards, args.stale_after or config.stale_after)
    if getattr(args, "board", None):
        report = _only_board(report, args.board)
        if not report:
            names = ", ".join(sorted(_status_names(_status_report(boards, config.boards, 1.0)))) or "none"
            print(
                f"tasksync: --board {args.board!r}: no such board in the status; its boards are: {names}",
                file=sys.stderr,
            )
            return 1
    if args.json:
        print(json.dumps({b: _typed(r) for b, r in report.items()}, indent=1, ensure_ascii=False))
    elif not report:
        print("the service never ran on this state store")
    else:
        _print_status(report)
    return max((int(r["code"]) for r in report.values()), default=3)


def _status_report(boards: dict[str, dict[str, str]], names: tuple[str, ...], stale_after: float) -> dict[str, Any]:
    """Each board's verdict and recorded values, by its key in the store; a configured board
    that never ran (no status recorded under its name) is listed by its name, never ran."""
    from tasksync.service.health import STALE, health_of

    now = time.time()
    report: dict[str, Any] = {}
    for board, values in sorted(boards.items()):
        code, verdict = health_of(values, now, stale_after)
        report[board] = {"code": code, "status": verdict, **values}
    recorded = {str(v.get("name", "")).casefold() for v in boards.values()}
    for name in names:
        if name.casefold() not in recorded:
            report[name] = {"code": STALE, "status": "never ran", "name": name}
    return report


def _status_names(report: dict[str, Any]) -> list[str]:
    return [str(r.get("name") or key) for key, r in report.items()]


def _only_board(report: dict[str, Any], wanted: str) -> dict[str, Any]:
    """The status of the board ``--board`` names: by its name, its key in the store, or the id,
    short link or URL of its board."""
    from tasksync.boardref import ref_keys

    keys = ref_keys(wanted)

    def matches(key: str, r: dict[str, Any]) -> bool:
        k = key.casefold()
        return bool(keys & {str(r.get("name", "")).casefold(), k, k.split(":", 1)[-1]})

    return {key: r for key, r in report.items() if matches(key, r)}


def _print_status(report: dict[str, Any]) -> None:
    keys = ("state", "last_run", "last_ok", "next_run", "paused", "conflicts", "held", "errors", "last_error")
    for board, r in report.items():
        name = r.get("name") or ""
        print(f"{name} ({board}): {r['status']}" if name and name != board else f"{board}: {r['status']}")
        for k in (*keys, "last_plan"):
            if r.get(k) and r[k] != "0":
                print(f"  {k:10} {r[k]}")
        held = json.loads(r.get("held_changes") or "[]")
        if held:
            print(f"  held back (owner changes left for the rebalance schedule; first {min(10, len(held))}):")
            for h in held[:10]:
                print(f"    {h['title']}: {h['from']} -> {h['to']} ({h['why']})")
