"""Run the tasksync CLI with one fault injected, for the fault tests and ``bench/bench_faults.py``.

    python -m tasksync.testing.faults [--kill-at N] [--disk-full-at N] -- -c tasksync.toml apply

``--kill-at N`` sends the process ``SIGKILL`` just before the N-th journal update (1-based: a
change or create marked done, failed, conflict or unknown), i.e. after the write it records has
reached the board but before the journal knows: the worst moment to die. ``--disk-full-at N``
makes the N-th save of a local board file fail with ``ENOSPC`` (the board is left as it was).
Nothing here is imported by tasksync itself.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["install", "main"]


def _counting(fn: Callable[..., Any], at: int, fault: Callable[[], None]) -> Callable[..., Any]:
    seen = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == at:
            fault()
        return fn(*args, **kwargs)

    return wrapper


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _disk_full() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def install(kill_at: int | None = None, disk_full_at: int | None = None) -> None:
    """Patch the journal (``kill_at``) and the local board's saves (``disk_full_at``)."""
    from tasksync.connectors import local
    from tasksync.sync.state import StateStore

    if kill_at:
        counter = {"n": 0}
        for name in ("mark", "mark_created"):
            real = getattr(StateStore, name)

            def marked(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                counter["n"] += 1
                if counter["n"] == kill_at:
                    _kill()
                return _real(self, *args, **kwargs)

            setattr(StateStore, name, marked)
    if disk_full_at:
        real_save = local.atomic_write_json
        local.atomic_write_json = _counting(real_save, disk_full_at, _disk_full)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasksync.testing.faults", description=__doc__)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--disk-full-at", type=int)
    parser.add_argument("cli", nargs=argparse.REMAINDER, help="the tasksync command line, after --")
    args = parser.parse_args(argv)
    install(args.kill_at, args.disk_full_at)
    from tasksync.cli import main as cli_main

    rest = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
