"""``tasksync crm check FILE...``: how tasksync reads CRM exports, without touching a board.

For each file: the format, encoding and delimiter found, the preset or mapping matched, each
column's field and type, the row counts, and every problem as ``file:line:column: ...``.
Exits 0 when every file would be used, 3 when one would be rejected (or cannot be read as an
export), 2 when a file or the configuration is missing or wrong.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from tasksync.crm.load import FIELDS, KINDS, FileReport, read_export
from tasksync.crm.presets import PRESETS, match_columns
from tasksync.crm.readers import open_table
from tasksync.crm.records import Rep
from tasksync.errors import ConfigError, CrmError, TasksyncError
from tasksync.settings import CrmSettings, Settings, load_settings

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
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV/TSV/TXT/XLSX export(s)")
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
        settings = _settings(args)
    except TasksyncError as e:
        print(f"tasksync: {e}", file=sys.stderr)
        return e.exit_code
    code = 0
    for name in args.files:
        path = Path(name)
        try:
            kind = args.kind or guess_kind(path, settings.crm)
            reps, reps_note = _reps_for(path, kind, settings)
            _rows, report = read_export(path, kind, settings.crm, reps=reps, keep=False)
            if reps_note:
                report.notes.append(f"{path}: {reps_note}")
            _print_report(report, settings.crm, out, _use_rich(args, out))
            if not report.ok:
                code = max(code, CrmError.exit_code)
        except TasksyncError as e:
            print(f"{path}: cannot be used", file=out)
            print(f"  {e}", file=out)
            for p in getattr(e, "problems", []):
                print(f"  {p}", file=out)
            code = max(code, e.exit_code)
        print(file=out)
    return code


def main(argv: list[str] | None = None) -> int:
    """``python -m tasksync.crm.check crm check FILE...``: the command on its own."""
    parser = argparse.ArgumentParser(prog="tasksync")
    parser.add_argument("-c", "--config", default="tasksync.toml")
    parser.add_argument("--no-color", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _settings(args: argparse.Namespace) -> Settings:
    config = Path(getattr(args, "config", None) or "tasksync.toml")
    settings = load_settings(config) if config.is_file() else Settings(base_dir=Path.cwd())
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
        score = sum(2 if FIELDS[kind][f].required else 1 for f in m.columns) / len(FIELDS[kind])
        if score > best_score:
            best, best_score = kind, score
    return best


def _reps_for(path: Path, kind: str, settings: Settings) -> tuple[list[Rep] | None, str]:
    """The configured reps export, to check owner columns against, if there is one."""
    if kind == "reps":
        return None, ""
    folder = settings.path(settings.crm.folder)
    reps_path = folder / settings.crm.files.reps
    if not reps_path.is_file() or reps_path.resolve() == path.resolve():
        return None, "owners not checked against reps (no reps export found; set crm.folder)"
    try:
        rows, _ = read_export(reps_path, "reps", settings.crm)
    except TasksyncError as e:
        return None, f"owners not checked: the reps export cannot be read ({e})"
    reps = [Rep(id=v["id"], name=v["name"], email=v.get("email")) for _, v in rows]
    return reps, f"owners checked against {reps_path} ({len(reps)} reps)"


def _use_rich(args: argparse.Namespace, out: TextIO) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(out, "isatty", lambda: False)())


def _verdict(report: FileReport, crm: CrmSettings) -> str:
    if report.rejected:
        return f"REJECTED: {report.rejected}"
    extra = []
    if report.bad:
        extra.append(f"{report.bad} skipped as unreadable (allowed: {crm.max_bad_rows:.0%})")
    if report.skipped:
        extra.append(f"{report.skipped} left out (see notes)")
    tail = f"; {', '.join(extra)}" if extra else ""
    return f"OK: {report.used:,} of {report.rows:,} rows usable{tail}"


def _print_report(report: FileReport, crm: CrmSettings, out: TextIO, rich: bool) -> None:
    m = report.mapping
    assert m is not None  # read_export fills it before reading rows
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
    ]
    table: list[tuple[str, str, str, str]] = []
    for c in sorted(m.columns.values(), key=lambda c: c.index):
        req = " (required)" if specs[c.field].required else ""
        table.append((c.header, c.field + req, report.types.get(c.field, ""), c.how))
    for h in m.unused:
        table.append((h, "-", "not used", ""))
    missing = [f"{f} (tried {', '.join(repr(h) for h in hs[:4])})" for f, hs in m.missing.items()]
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
    write(_verdict(report, crm))


if __name__ == "__main__":
    sys.exit(main())
