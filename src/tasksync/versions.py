"""``tasksync --version``: tasksync's version and those of the libraries a plan depends on.

The same inputs give the same plan with the same versions of these (HiGHS, the solver, comes with
scipy), so this is what to compare when two machines disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tasksync import __version__

__all__ = ["VersionAction", "describe"]


def describe() -> str:
    """One line: tasksync's, Python's, numpy's and scipy's versions."""

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"tasksync {__version__} (Python {sys.version.split()[0]}, numpy {of('numpy')}, scipy {of('scipy')})"


class VersionAction(argparse.Action):
    """``--version``: print :func:`describe` and exit (looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        print(describe())
        parser.exit()
