"""``tasksync-cluster reps BOARD ...``: rep overrides of one board's team, in the PostgreSQL store.

The same actions as ``tasksync reps`` (away, back, capacity, quota, reset), on the cluster's
store instead of a board's SQLite file: each board's team has its own overrides there (the
board's key scopes them). The board's next job sees the change and plans (see
:meth:`tasksync.cluster.jobs.Cluster.run_board`); with no action, the overrides in force are
listed.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING

from tasksync.crm import load_crm
from tasksync.team.override_commands import OverrideCommands
from tasksync.team.overrides import RepOverrides

if TYPE_CHECKING:  # the parser is built before the cluster extra (dramatiq) is known to be installed
    from tasksync.cluster.jobs import Cluster

__all__ = ["add_reps_parser", "run_reps"]


def add_reps_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reps", help="a board's rep overrides: away, back, capacity, quota, reset (as `tasksync reps`)")
    p.add_argument("board", help="the board's key: its config path as written in the cluster file")
    p.set_defaults(reps_action=None)
    actions = p.add_subparsers(dest="reps_action", metavar="ACTION")
    r = actions.add_parser("away", help="mark a rep away (gets nothing new; cards handed on) until a date")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("--until", help="last day away: YYYY-MM-DD, or a span such as 14d or 2w (default: until `back`)")
    actions.add_parser("back", help="a rep is available again").add_argument("name", help="rep id, name or email")
    r = actions.add_parser("capacity", help="most open tasks (and --value: most open pipeline) a rep should hold")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("tasks", type=int, help="most open tasks")
    r.add_argument("--value", type=float, help="most open pipeline value")
    r = actions.add_parser("quota", help="a rep's monthly quota")
    r.add_argument("name", help="rep id, name or email")
    r.add_argument("amount", type=float, help="monthly quota")
    actions.add_parser("reset", help="drop every override of a rep").add_argument("name", help="rep id, name or email")


def run_reps(cluster: Cluster, args: argparse.Namespace, today: date) -> tuple[int, str]:
    """Apply the action to the board's overrides; returns the exit code and the line to print.

    The checks and messages are :class:`~tasksync.team.override_commands.OverrideCommands`', as
    for ``tasksync reps`` and the review page (a bad value raises
    :class:`~tasksync.errors.ConfigError`, exit 2, and nothing is stored)."""
    settings = cluster.cfg.board(args.board).settings()
    reps = load_crm(settings.crm, settings.base_dir).reps  # as exported, without overrides
    with cluster.board_store(args.board) as store:
        overrides = RepOverrides(store)
        if args.reps_action is None:
            names = {r.id: r.name for r in reps}
            lines = [f"{names.get(o.rep_id, o.rep_id)}: {o.describe()}" for o in overrides.active(today)]
            return 0, "\n".join(lines) or "no overrides in force: every rep as in the reps export"
        said = OverrideCommands(overrides, reps, today).run(args.reps_action, args)
        if args.reps_action == "away":
            said += "; the board's next job hands on their cards"
        return 0, said
