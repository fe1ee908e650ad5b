"""The command line: parsing and presentation only; the work is done by :mod:`tasksync.sync`.

Exit codes: 0 done; 1 a write failed; 2 bad configuration or input file; 3 a CRM export was
rejected; 4 the plan is stale or missing; 5 a safety guard stopped the run; 6 the API refused;
7 another tasksync process is writing with the same state store (``apply``, ``undo`` and ``serve``
take its writer lock; a second writer waits ``TASKSYNC_LOCK_WAIT`` seconds, default 10, then stops).

Start-up stays cheap (a cron job may run ``tasksync status`` every minute): this module and the
modules it imports at the top import nothing heavy; rich, pydantic, the CRM readers, the
policies and the solver are imported by the commands that use them.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasksync.errors import ConfigError, CrmError, TasksyncError
from tasksync.versions import VersionAction

if TYPE_CHECKING:
    from rich.console import Console

    from tasksync.settings import Settings

__all__ = ["main"]


def _console(args: argparse.Namespace) -> Console:
    from rich.console import Console

    no_color = getattr(args, "no_color", False) or bool(os.environ.get("NO_COLOR"))
    return Console(
        no_color=no_color,
        highlight=False,
        soft_wrap=False,
        width=None if sys.stdout.isatty() else 120,
    )


def load_config(args: argparse.Namespace) -> Settings:
    """The settings named by ``-c`` and ``--state``, of the one board ``--board`` picks (by name,
    id, short link or URL) when the config names several; remembers the state store's path so
    that an error about the store names it."""
    from tasksync.settings import load_settings, select_board

    settings = select_board(
        load_settings(Path(args.config), getattr(args, "state", None)), getattr(args, "board", None), args.config
    )
    args.board = None  # chosen: these settings name one board
    args.state_file = settings.path(settings.state_path)
    return settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_config(args)


def today_of(args: argparse.Namespace) -> Any:
    """``--today`` as a date (None: today)."""
    from datetime import date

    text = getattr(args, "today", None)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ConfigError(f"--today {text!r}: expected a date as YYYY-MM-DD") from None


def _workspace(args: argparse.Namespace) -> Any:
    from tasksync.sync.workspace import Workspace

    return Workspace(_settings(args), today=today_of(args), board=args.board)


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from tasksync.model import PlanKind
    from tasksync.render import plan_json, print_plan

    with _workspace(args) as ws:
        result = ws.plan(
            force=args.force,
            kind=PlanKind.REBALANCE if getattr(args, "rebalance", False) else PlanKind.SYNC,
        )
        data = plan_json(result, ws.settings)  # built once: --json, --html and the terminal share it
        if getattr(args, "html", None):
            from tasksync.report_html import write_html

            write_html(data, Path(args.html))
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            console = _console(args)
            print_plan(result, console, settings=ws.settings, data=data)
            if getattr(args, "html", None):
                console.print(f"Wrote the report to {args.html}", markup=False)
            if not result.plan.empty:
                console.print(f"Review, then run `tasksync apply` to write plan {result.plan.id}.", markup=False)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from tasksync.render import apply_progress, print_outcome, print_plan

    if args.today and not args.now:
        raise ConfigError("apply --today: only with --now (a plan made by `plan --today` keeps its date)")
    console = _console(args)
    with _workspace(args) as ws, ws.writing():  # resume, plan and apply as one writer
        resumed = ws.pending_resume()
        if resumed is not None:
            console.print(
                f"Finished interrupted plan {resumed.plan_id}: {resumed.done - resumed.created} changes written"
                + (f", {resumed.created} cards created" if resumed.created else ""),
                markup=False,
            )
            _print_comments(ws, console)
            if args.plan is None and ws.store.latest(ws.connector.board, "proposed") is None:
                return 0 if resumed.ok else 1
        if args.now:
            if args.accept_crm:
                ws.check_crm_rows(accept=True)
            result = ws.plan(force=args.force, guard_crm=True)
            print_plan(result, console, settings=ws.settings)
            if result.plan.empty:
                return 0
            if ws.store.last_written(result.plan.board):  # not a new board: the service's guard on creates
                from tasksync.service.guards import check_plan_limits

                cfg = ws.settings.service.model_copy(update={"max_move_share": 1.0})  # a full plan may move
                check_plan_limits(result.plan, result.snapshot, cfg, str(result.plan.board), rebalance=False)
            plan_id: str | None = result.plan.id
        else:
            plan_id = args.plan
        with apply_progress(console, "Writing") as progress:
            plan, outcome = ws.apply(plan_id, progress=progress)
        if plan.empty:  # the latest plan found nothing to change (empty plans are not stored)
            console.print(f"Nothing to apply: plan {plan.id} found nothing to change.")
            return 0
        print_outcome(plan, outcome, console)
        _print_comments(ws, console)
        console.print(f"Undo with `tasksync undo {plan.id}`.", markup=False)
        return 0 if outcome.ok else 1


def _print_comments(ws: Any, console: Console) -> None:
    """What ``[write] comment`` posted after an apply or undo."""
    c = getattr(ws, "comments", None)
    if c is None:
        return
    console.print(
        f"{c.posted} comment(s) posted"
        + (f", {c.unknown} unconfirmed (not sent again)" if c.unknown else "")
        + (f", {len(c.failed)} failed" if c.failed else ""),
        markup=False,
    )
    for f in c.failed[:5]:
        console.print(f"  comment failed: {f}", markup=False)


def cmd_undo(args: argparse.Namespace) -> int:
    from rich.text import Text

    from tasksync.render import apply_progress, print_undo_outcome

    console = _console(args)
    with _workspace(args) as ws:
        with apply_progress(console, "Undoing") as progress:
            undo, outcome = ws.undo(args.plan_id, progress=progress)
        print_undo_outcome(undo, outcome, console)
        _print_comments(ws, console)
        for note in undo.notes:  # what could not be put back, and why
            console.print(Text(f"  note: {note}"))
        for c in undo.conflicts:
            console.print(
                Text("  ")
                + Text("kept", style="yellow")
                + Text(f": {c.title!r} {c.field.value} was changed after the plan; left alone")
            )
        if not outcome.ok:
            console.print(
                f"Plan {args.plan_id} is not undone yet: run `tasksync undo {args.plan_id}` again to put back the rest",
                markup=False,
            )
        return 0 if outcome.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from tasksync.render import print_report, report_json

    with _workspace(args) as ws:
        data = report_json(ws, since=_month_arg(args, "since"), until=_month_arg(args, "until"))
        if getattr(args, "html", None):
            from tasksync.report_html import write_html

            write_html(data, Path(args.html))
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            print_report(data, _console(args))
            if getattr(args, "html", None):
                _console(args).print(f"Wrote the report to {args.html}", markup=False)
    return 0


def _month_arg(args: argparse.Namespace, name: str) -> Any:
    """``--since``/``--until`` as a date: YYYY-MM (a whole month) or YYYY-MM-DD."""
    from datetime import date

    from tasksync.errors import ConfigError

    text = getattr(args, name, None)
    if not text:
        return None
    try:
        return date.fromisoformat(text if len(text) > 7 else f"{text}-01")
    except ValueError:
        raise ConfigError(f"--{name} {text!r}: expected YYYY-MM or YYYY-MM-DD") from None


def cmd_history(args: argparse.Namespace) -> int:
    console = _console(args)
    with _workspace(args) as ws:
        for p in ws.store.plans(limit=args.limit):
            console.print(
                f"{p.id}  {p.kind:9} {p.status:10} {p.changes:4} changes {p.creates:3} creates  "
                f"{p.applied_at or p.created_at}",
                markup=False,
            )
    return 0


def cmd_reps(args: argparse.Namespace) -> int:
    """``reps``: the table; ``reps away|back|capacity|quota|reset NAME``: overrides of the reps export
    (the checks and messages are :class:`~tasksync.team.override_commands.OverrideCommands`', shared
    with the review page)."""
    import json

    from tasksync.team.override_commands import override_commands
    from tasksync.team.roster import print_reps, reps_data

    console = _console(args)
    action = getattr(args, "reps_action", None)
    with _workspace(args) as ws:
        if action is None:
            data = reps_data(ws)
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=1))
            else:
                print_reps(data, console)
            return 0
        said = override_commands(ws).run(action, args)
        if action == "away":
            said += "; `tasksync plan` hands on their cards"
        console.print(said, markup=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``export owners FILE``: the deals whose owner changed, for the CRM's import tool."""
    from tasksync.team.owners import export_summary, owner_changes, remember_export, write_owner_export

    console = _console(args)
    with _workspace(args) as ws:
        export = owner_changes(ws, since=args.since)
        write_owner_export(export, args.format, Path(args.file))
        remember_export(ws, export)
    for line in export_summary(export, args.format, args.file):
        console.print(line, markup=False)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from tasksync.web.cli import run_web  # lazily: `tasksync --help` stays fast

    return run_web(args)


def cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from tasksync.examples import generate

    folder = Path(args.dir)
    if folder.exists() and args.fresh:
        shutil.rmtree(folder)
    console = _console(args)
    config = folder / "tasksync.toml"
    if not config.exists():
        generate(folder)
        console.print(f"Wrote the example board and CRM exports to {folder}/", markup=False)
    argv = ["-c", str(config)]
    if args.no_color:
        argv.insert(0, "--no-color")
    console.rule("tasksync plan")
    rc = main([*argv, "plan", *(["--today", args.today] if args.today else [])])
    if rc:
        return rc
    console.rule("tasksync apply")
    rc = main([*argv, "apply"])
    if rc:
        return rc
    console.rule("tasksync report")
    rc = main([*argv, "report", *(["--today", args.today] if args.today else [])])
    console.print(
        f"\nThe demo lives in {folder}/: run `tasksync -c {config} plan` again (nothing to change),", markup=False
    )
    console.print(
        f"or edit {folder}/board.json and plan again; `tasksync -c {config} history` lists plans.", markup=False
    )
    return rc


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``command`` (the subcommand about to run) selects which lazily
    registered command gets its full parser (see ``_LAZY_COMMANDS``)."""
    parser = argparse.ArgumentParser(
        prog="tasksync",
        description="Divide and prioritise sales work on Trello and Asana from CRM exports.",
    )
    parser.add_argument("--version", action=VersionAction, help="show the versions that shape a plan and exit")
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("TASKSYNC_CONFIG", "tasksync.toml"),
        help="configuration file (default: tasksync.toml, or $TASKSYNC_CONFIG)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain output")
    parser.add_argument("--board", help="which of the config's boards (name, id, short link or URL)")
    parser.add_argument(
        "--state",
        default=os.environ.get("TASKSYNC_STATE") or None,
        metavar="FILE",
        help="state store file (default: state_path of the config, or $TASKSYNC_STATE)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_cycle(sub)
    _add_reps(sub)
    _add_export_and_web(sub)
    _register_optional(sub, command)
    _global_options_anywhere(parser)
    return parser


# The global options a user also types after the command (`tasksync plan --board east`).
_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-c", "--config"), {"metavar": "CONFIG"}),
    (("--board",), {}),
    (("--state",), {"metavar": "FILE"}),
    (("--no-color",), {"action": "store_true"}),
)


def _global_options_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let every command (and sub-command) take the global options after its name too; given
    there, they override the ones before it (``default=SUPPRESS``: absent, they change nothing)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            taken = child._option_string_actions
            for flags, kwargs in _GLOBAL_OPTIONS:
                if not any(f in taken for f in flags):
                    child.add_argument(*flags, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
            _global_options_anywhere(child)


def _add_cycle(sub: Any) -> None:
    """The offline cycle: demo, plan, apply, undo, report, history."""
    p = sub.add_parser("demo", help="run plan, apply and report on the built-in example")
    p.add_argument("dir", nargs="?", default="tasksync-demo", help="working folder (default: tasksync-demo)")
    p.add_argument("--fresh", action="store_true", help="start over from a new copy of the example")
    p.add_argument("--today", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("plan", help="preview changes; never writes the board")
    p.add_argument("--json", action="store_true", help="print the plan and KPIs as JSON")
    p.add_argument("--force", action="store_true", help="override fields people changed by hand")
    p.add_argument("--rebalance", action="store_true", help="label the plan as a whole-book rebalance")
    p.add_argument("--today", help="date to plan for (YYYY-MM-DD; default: today)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="write the latest plan (refuses one older than the board)")
    p.add_argument("--plan", help="plan id to apply (default: the latest `plan`)")
    p.add_argument("--now", action="store_true", help="plan and apply in one step (scheduled use)")
    p.add_argument("--force", action="store_true", help="with --now: override fields people changed")
    p.add_argument("--today", help="with --now: date to plan for (YYYY-MM-DD; default: today), as `plan --today`")
    p.add_argument("--accept-crm", action="store_true", help="with --now: accept CRM exports that lost most rows")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("undo", help="revert an applied plan where cards still hold what it wrote")
    p.add_argument("plan_id")
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser("report", help="KPIs per rep and segment")
    p.add_argument("--json", action="store_true", help="print the report data as JSON (the schema of plan --json)")
    p.add_argument("--today", help="date to report for (YYYY-MM-DD)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    p.add_argument("--since", metavar="MONTH", help="first month of won value (YYYY-MM; default: six months back)")
    p.add_argument("--until", metavar="MONTH", help="last month (YYYY-MM; default: the last month with closed deals)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("history", help="list plans and their status")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_history)


def _add_reps(sub: Any) -> None:
    """``reps`` and its overrides (away, back, capacity, quota, reset)."""
    p = sub.add_parser("reps", help="the reps: board match, availability, capacity, workload, targets; overrides")
    p.add_argument("--json", action="store_true", help="print the reps table as JSON")
    p.add_argument("--today", help="date the overrides' expiry and the report window count from (YYYY-MM-DD)")
    p.set_defaults(func=cmd_reps, reps_action=None)
    reps = p.add_subparsers(dest="reps_action", metavar="ACTION")
    r = reps.add_parser("away", help="mark a rep away (gets nothing new; cards handed on) until a date")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("--until", help="last day away: YYYY-MM-DD, or a span such as 14d or 2w (default: until `back`)")
    r = reps.add_parser("back", help="a rep is available again")
    r.add_argument("name", help="rep id, name or email")
    r = reps.add_parser("capacity", help="most open tasks (and --value: most open pipeline) a rep should hold")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("tasks", type=int, help="most open tasks")
    r.add_argument("--value", type=float, help="most open pipeline value")
    r = reps.add_parser("quota", help="a rep's monthly quota")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("amount", type=float, help="monthly quota")
    r = reps.add_parser("reset", help="drop every override of a rep: as in the reps export again")
    r.add_argument("name", help="rep id, name or email")
    for r in reps.choices.values():  # `reps away X --today D` as well as `reps --today D away X`
        r.add_argument("--today", default=argparse.SUPPRESS, help="date to count from (YYYY-MM-DD)")


def _add_export_and_web(sub: Any) -> None:
    """``export owners`` (for the CRM's import tool) and ``web`` (the review page)."""
    p = sub.add_parser("export", help="write what tasksync changed back for the CRM's import tool")
    exports = p.add_subparsers(dest="export_what", metavar="WHAT", required=True)
    r = exports.add_parser("owners", help="one row per deal whose owner changed, in the CRM's import headers")
    r.add_argument("file", help="CSV file to write")
    r.add_argument(
        "--format",
        choices=("salesforce", "hubspot", "zoho", "pipedrive", "csv"),
        default="csv",
        help="the CRM whose import headers to use (default: csv, every column)",
    )
    r.add_argument("--since", metavar="PLAN_ID", help="only plans applied from this one on (default: all)")
    r.add_argument("--today", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "web",
        help="serve the review page and the Trello Power-Up (docs/web.md)",
        description="Serve the review page (/review) and the Trello Power-Up (/powerup/) until Ctrl-C or "
        "SIGTERM (`tasksync serve` serves them with the webhooks when [web] enabled = true). The first start "
        "prints an admin token to log in with, kept in "
        "[web] admin_token_path (mode 0600). Exit codes: 0 stopped; 2 bad configuration or the port is taken.",
    )
    p.add_argument("--host", help="address to listen on (default [web] host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default [web] port, 8780)")
    p.add_argument("--today", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_web)


# Commands whose module is costly to import: registered for real only when named on the command
# line, otherwise listed by name and help line (the module's own parser takes over when named).
_LAZY_COMMANDS = {"crm": ("tasksync.crm.check", "inspect CRM exports")}


def _register_optional(sub: Any, command: str | None = None) -> None:
    """Commands contributed by other modules (CRM checks, the service)."""
    import importlib

    for module in ("tasksync.service.cli",):
        importlib.import_module(module).register(sub)
    for name, (module, help_line) in _LAZY_COMMANDS.items():
        if command == name:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a global option)."""
    takes_value = {"-c", "--config", "--board", "--state"}
    words = iter(argv)
    for word in words:
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def one_line_error(e: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    """A one-line message and exit code for a failure of the machine or of an input file that no
    layer below turned into a :class:`TasksyncError`; None for a bug (shown with its traceback)."""
    store = getattr(args, "state_file", None) or "the state store"
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {e.filename}" if e.filename else ""
        return f"no space left on the device{where}; free some, then run `tasksync apply` to finish", 1
    if type(e).__module__ == "sqlite3":
        text = str(e)
        if "full" in text:
            return f"{store}: no space left for the state store ({text}); free some, then run `tasksync apply`", 2
        if "readonly" in text or "unable to open" in text:
            return f"{store}: cannot write the state store ({text}); check the folder's permissions", 2
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return (
                f"{store}: the state store is damaged ({text}); move it away to start afresh "
                "(tasksync then forgets what it wrote and plans from the board as it is)",
                2,
            )
        if "locked" in text or "busy" in text:
            return f"{store}: the state store is locked by another process ({text}); try again", 2
        return f"{store}: state store error: {text}", 2
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}", 2
    if isinstance(e, UnicodeDecodeError):
        return f"an input file is not UTF-8 text ({e.reason} at byte {e.start})", 2
    if isinstance(e, RecursionError):
        return "an input file is nested too deeply to read", 2
    return None


@contextmanager
def _stdout_for_json(on: bool) -> Iterator[None]:
    """With ``--json``, standard output carries the JSON document only: while the command runs,
    file descriptor 1 points at standard error, so what native code writes there (the HiGHS
    solver prints a line now and then, whatever its options say) cannot corrupt the document;
    ``print`` still writes to the real standard output. Only when ``sys.stdout`` is the process's
    own (an embedding program or a test capturing it is left alone)."""
    if not on or sys.stdout is not sys.__stdout__ or sys.stdout is None:
        yield
        return
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    keep = sys.stdout
    sys.stdout = os.fdopen(os.dup(real), "w", encoding=keep.encoding, errors=keep.errors)
    try:
        yield
    finally:
        try:
            sys.stdout.close()  # flushes: a reader that left raises BrokenPipeError, as before
        finally:
            sys.stdout = keep
            os.dup2(real, 1)
            os.close(real)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    try:
        with _stdout_for_json(bool(getattr(args, "json", False))):
            return int(args.func(args))
    except CrmError as e:
        print(f"tasksync: {e}", file=sys.stderr)
        for p in e.problems[:50]:
            print(f"  {p}", file=sys.stderr)
        if len(e.problems) > 50:
            print(f"  ... and {len(e.problems) - 50} more", file=sys.stderr)
        return e.exit_code
    except TasksyncError as e:
        print(f"tasksync: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `tasksync plan --json | head`: the reader left, nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except KeyboardInterrupt:
        print(
            "tasksync: interrupted; run `tasksync apply` to finish an interrupted plan",
            file=sys.stderr,
        )
        return 130
    except Exception as e:  # the machine or an input file failed below: one line if we know it
        known = one_line_error(e, args)
        if known is None:
            raise
        print(f"tasksync: {known[0]}", file=sys.stderr)
        return known[1]


if __name__ == "__main__":
    sys.exit(main())
