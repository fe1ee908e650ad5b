"""Keep the solver's native writes off the process's standard output.

HiGHS's MILP solver (the one scipy bundles) prints a debug line from C,
``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``, whatever its output
options say, on some models. On standard output that line would break ``tasksync plan --json``
and any report piped from the CLI. Every MILP the policy solves runs inside :func:`quiet_solver`,
which points file descriptor 1 at the null device for the call, flushes C's buffers, and puts it
back. Python's own ``sys.stdout`` is flushed first, so nothing written before is lost; a thread
writing to standard output during a solve would lose that write, so the swap is serialised and the
CLI and service write their output outside solves.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_solver"]

_LOCK = threading.RLock()
_LIBC = ctypes.CDLL(None) if os.name == "posix" else None


@contextmanager
def quiet_solver() -> Iterator[None]:
    """Run the body with file descriptor 1 on the null device (POSIX only; elsewhere a no-op)."""
    if _LIBC is None:
        yield
        return
    with _LOCK:
        sys.stdout.flush()
        _LIBC.fflush(None)
        try:
            saved = os.dup(1)
        except OSError:  # no standard output to protect (closed descriptor)
            saved = -1
        if saved < 0:
            yield
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            yield
        finally:
            _LIBC.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
