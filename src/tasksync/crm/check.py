"""``tasksync crm check FILE...``: how tasksync reads CRM exports, without touching a board.

For each file: the format, encoding and delimiter found, the preset or mapping matched, each
column's field and type, the row counts, and every problem as ``file:line:column: ...``.
The files are read together (with the configured reps and accounts exports when not given):
owners that match no rep, deals whose account is missing and rep regions or sectors that
match no account's are listed with the file they concern. Exits 0 when every file would be
used, 3 when one would be rejected (or cannot be read as an export) or most of its
references to the other exports match nothing, 2 when a file or the configuration is missing
or wrong.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from tasksync.crm.load import FIELDS, KINDS, FileReport, read_set
from tasksync.crm.presets import PRESETS, match_columns
from tasksync.crm.readers import open_table
from tasksync.errors import ConfigError, CrmError, TasksyncError
from tasksync.settings import CrmSettings, Settings, find_board, load_settings

__all__ = ["guess_kind", "handler", "main", "register"]

_NAME_HINTS: list[tuple[str, str]] = [
    ("history", r"histor|closed|won|lost|历史|成交记录|赢单|输单"),
    ("reps", r"reps?\b|users?|team|employees?|owners?|staff|员工|人员|用户|销售团队"),
    ("accounts", r"accounts?|compan|organi[sz]ation|customers?|客户"),
    ("deals", r"deals?|opportunit|pipeline|商机|机会"),
]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``crm check`` to the main CLI's subcommands (dispatched through ``args.func``)."""
    crm = subparsers.add_parser("crm", help="inspect CRM exports")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True, metavar="SUBCOMMAND")
    p = crm_sub.add_parser(
        "check",
        help="show how CRM exports are read and every problem in them (never touches a board)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="CSV/TSV/TXT/XLSX export(s) (default: the board's configured exports; with several boards "
        "and no --board, each board's, a section per board)",
    )
    p.add_argument(
        "--kind",
        choices=KINDS,
        help="what the files hold (default: guessed from the file name, then the headers)",
    )
    p.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help="configuration file for crm.* settings (default: tasksync.toml if present)",
    )
    p.add_argument("--preset", help=f"auto, generic or one of: {', '.join(PRESETS)}")
    p.add_argument("--encoding", help="text encoding (default: detected)")
    p.add_argument("--delimiter", help="field delimiter: one character, tab, semicolon...")
    p.add_argument("--sheet", help="XLSX sheet name or 1-based number (default: the first)")
    p.add_argument("--date-order", choices=["auto", "dmy", "mdy", "ymd"])
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        boards = _boards(args)
    except TasksyncError as e:
        print(f"tasksync: {e}", file=sys.stderr)
        return e.exit_code
    if len(boards) == 1:
        return _check(args, boards[0][1], out)
    code = 0
    for name, settings in boards:  # the worst board's exit code
        print(f"== board {name} ({settings.path(settings.crm.folder)}) ==", file=out)
        print(file=out)
        code = max(code, _check(args, settings, out))
    return code


def _check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Check the files named on the command line, else the exports configured in ``settings``."""
    names = list(args.files) or _configured(settings)
    if not names:
        folder = settings.path(settings.crm.folder)
        print(f"tasksync: no CRM exports in {folder}: name the files to check, or set crm.folder", file=sys.stderr)
        return ConfigError.exit_code
    code = 0
    given: list[tuple[Path, str]] = []
    for name in names:
        path = Path(name)
        try:
            given.append((path, args.kind or guess_kind(path, settings.crm)))
        except TasksyncError as e:
            _cannot(path, e, out)
            code = max(code, e.exit_code)
    usable = problems = 0
    for path, kind in given:
        files = {kind: path, **_context(path, kind, given, settings)}
        data, found = read_set(files, settings.crm, strict=False)
        report = found.files[kind]
        error = found.errors.get(kind)
        if error is not None:
            _cannot(path, error, out)
            code = max(code, error.exit_code)
            continue
        for other, noun in (("reps", "owners"), ("accounts", "accounts")):
            if other == kind or (other == "accounts" and kind not in ("deals", "history")):
                continue
            if other == "reps" and "owner" not in (report.mapping.columns if report.mapping else {}):
                continue
            ctx = found.files.get(other)
            if ctx is None:
                report.notes.append(
                    f"{path}: {noun} not checked against {other} (no {other} export found; set crm.folder)"
                )
            elif other in found.errors or not ctx.ok:
                report.notes.append(f"{path}: {noun} not checked: the {other} export cannot be read ({ctx.rejected})")
            else:
                count = len(data.reps) if other == "reps" else len(data.accounts)
                report.notes.append(f"{path}: {noun} checked against {ctx.path} ({count} {other})")
        _print_report(report, settings.crm, out, _use_rich(args, out))
        problems += report.problem_count
        if report.usable:
            usable += 1
        else:
            code = max(code, CrmError.exit_code)
        print(file=out)
    if len(names) > 1 or problems:
        bad = len(names) - usable
        print(
            f"{len(names)} file(s): {usable} usable, {bad} not; {problems:,} problem(s) in all",
            file=out,
        )
    return code


def _cannot(path: Path, e: TasksyncError, out: TextIO) -> None:
    print(f"{path}: cannot be used", file=out)
    print(f"  {e}", file=out)
    for p in getattr(e, "problems", []):
        print(f"  {p}", file=out)
    print(file=out)


def _context(path: Path, kind: str, given: list[tuple[Path, str]], settings: Settings) -> dict[str, Path]:
    """The reps and accounts exports a file's references are checked against: the ones given
    on the command line, else the configured ones (when they exist)."""
    folder = settings.path(settings.crm.folder)
    ctx: dict[str, Path] = {}
    for other in ("reps", "accounts"):
        if other == kind:
            continue
        p = next((g for g, k in given if k == other), None)
        if p is None:
            p = folder / str(getattr(settings.crm.files, other))
            if not p.is_file():
                continue
        if p.resolve() != path.resolve():
            ctx[other] = p
    return ctx


def main(argv: list[str] | None = None) -> int:
    """``python -m tasksync.crm.check crm check FILE...``: the command on its own."""
    parser = argparse.ArgumentParser(prog="tasksync")
    parser.add_argument("-c", "--config", default="tasksync.toml")
    parser.add_argument("--no-color", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _configured(settings: Settings) -> list[str]:
    """The configured exports (``crm.folder`` and ``crm.files``) that exist."""
    folder = settings.path(settings.crm.folder)
    paths = [folder / str(getattr(settings.crm.files, kind)) for kind in ("reps", "accounts", "deals", "history")]
    return [str(p) for p in paths if p.is_file()]


def _boards(args: argparse.Namespace) -> list[tuple[str, Settings]]:
    """The boards whose CRM settings apply: the one ``--board`` names, else every board of the
    config (one for a single-board config or no config), each with the command line's options."""
    config = Path(getattr(args, "config", None) or "tasksync.toml")
    if not config.is_file():
        if getattr(args, "board", None):
            raise ConfigError(f"{config}: config file not found (--board names a board of a config)")
        return [("", _settings(args, Settings(base_dir=Path.cwd())))]
    settings = load_settings(config)
    if getattr(args, "board", None):
        board = find_board(settings, args.board, str(config))
        return [(board.name, _settings(args, board.settings))]
    return [(b.name, _settings(args, b.settings)) for b in settings.boards()]


def _settings(args: argparse.Namespace, settings: Settings) -> Settings:
    update: dict[str, Any] = {}
    for key in ("preset", "encoding", "delimiter", "sheet", "date_order"):
        v = getattr(args, key, None)
        if v is not None:
            update[key] = v
    if update:
        settings.crm = settings.crm.model_copy(update=update)
        # Options given on the command line win over per-kind ones from the config, too.
        settings.crm.options = {k: o.model_copy(update=dict.fromkeys(update)) for k, o in settings.crm.options.items()}
    if settings.crm.preset not in {"auto", "generic", *PRESETS}:
        raise ConfigError(
            f"crm.preset: unknown preset {settings.crm.preset!r}; choose auto, generic or one of {', '.join(PRESETS)}"
        )
    return settings


def guess_kind(path: Path, crm: CrmSettings) -> str:
    """The record kind of an export: the configured file it is, else a kind named in its file
    name, else the kind whose fields its headers match best (deals on a tie)."""
    for kind in KINDS:
        if path.name == Path(str(getattr(crm.files, kind))).name:
            return kind
    stem = path.stem.casefold()
    for kind, pattern in _NAME_HINTS:
        if re.search(pattern, stem):
            return kind
    with open_table(path, encoding=crm.encoding, delimiter=crm.delimiter, sheet=crm.sheet) as t:
        headers = t.headers
    best, best_score = "deals", 0.0
    for kind in ("deals", "history", "accounts", "reps"):
        try:
            m = match_columns(kind, headers, crm.columns.get(kind, {}), crm.preset)
        except TasksyncError:
            continue
        score = sum(2 if FIELDS[kind][f].required or FIELDS[kind][f].key else 1 for f in m.columns) / len(FIELDS[kind])
        if score > best_score:
            best, best_score = kind, score
    return best


def _use_rich(args: argparse.Namespace, out: TextIO) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(out, "isatty", lambda: False)())


def _verdict(report: FileReport, crm: CrmSettings) -> str:
    n = report.problem_count
    counted = f"{n:,} problem{'s' if n != 1 else ''}"
    if report.rejected:
        return f"REJECTED ({counted}): {report.rejected}"
    if report.failing:
        return (
            f"NOT OK ({counted}): most of its references to the other exports match nothing "
            "(see the problems above); fix the exports or the column mapping"
        )
    extra = []
    if report.bad:
        extra.append(f"{report.bad} skipped as unreadable (allowed: {crm.max_bad_rows:.0%})")
    if report.skipped:
        extra.append(f"{report.skipped} left out (see notes)")
    tail = f"; {', '.join(extra)}" if extra else ""
    return f"OK: {report.used:,} of {report.rows:,} rows usable{tail}" + (f"; {counted}" if n else "")


def _print_report(report: FileReport, crm: CrmSettings, out: TextIO, rich: bool) -> None:
    m = report.mapping
    if m is None:  # read_export maps the header before any row; a file it could not map was reported as an error
        out.write(f"{report.path}: {report.kind}: no header could be mapped; nothing read\n")
        return
    specs = FIELDS[report.kind]
    how = {"csv": "delimited text", "xlsx": "XLSX workbook"}.get(report.format, report.format)
    path_notes = [n for n in report.notes if n.startswith(str(report.path))]
    reading = [n for n in report.notes if n not in path_notes]
    head = [
        f"{report.path}: {report.kind}, {how}",
        "read as: "
        + "; ".join(
            reading
            if any(n.startswith("header on") for n in reading)
            else [*reading, f"header on line {report.header_line}"]
        ),
        f"preset: {m.preset} ({m.preset_how})",
        *([f"key: {report.key}"] if report.key else []),
    ]
    table: list[tuple[str, str, str, str]] = []
    for c in sorted(m.columns.values(), key=lambda c: c.index):
        req = " (required)" if specs[c.field].required else ""
        if c.field == report.key_field:
            req = " (key)"
        table.append((c.header, c.field + req, report.types.get(c.field, ""), c.how))
    for h in m.unused:
        table.append((h, "-", "not used", ""))
    missing = []
    for f, hs in m.missing.items():
        why = [f"tried {', '.join(repr(h) for h in hs[:4])}"] if hs else []
        why += [f"{h!r} is used for {other}" for h, other in m.taken.get(f, [])[:2]]
        missing.append(f"{f} ({'; '.join(why)})")
    counts = (
        f"rows: {report.rows:,} read, {report.used:,} usable, {report.bad:,} unreadable, {report.skipped:,} left out"
    )
    titles = ("column", "field", "type", "matched by")
    if rich:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=out, highlight=False)
        for line in head:
            console.print(line, markup=False)
        t = Table(*titles)
        for row in table:
            t.add_row(*row)
        console.print(t)
    else:
        from rich.cells import cell_len  # display width: CJK headers take two cells

        for line in head:
            print(line, file=out)
        rows = [titles, *table]
        widths = [max(cell_len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            cells = [x + " " * (w - cell_len(x)) for x, w in zip(r, widths, strict=True)]
            print("  " + "  ".join(cells).rstrip(), file=out)

    def write(s: str) -> None:
        print(s, file=out)

    if missing:
        write("fields without a column: " + "; ".join(missing))
    for n in path_notes:
        write(f"note: {n}")
    write(counts)
    if report.problems:
        write(f"problems ({len(report.problems):,}):")
        for p in report.problems:
            write(f"  {p}")
    if report.cross:
        write(f"problems with the other exports ({len(report.cross):,}):")
        for p in report.cross:
            write(f"  {p}")
    write(_verdict(report, crm))


if __name__ == "__main__":
    sys.exit(main())
