"""The solver's native writes stay off standard output, so `plan --json` stays JSON.

HiGHS's MILP solver prints a debug line from C on some models (the 2,000-card bench book's
rounding MILP did), whatever its output options say. The tests make every MILP the policy solves
print such a line natively and check what reaches file descriptor 1.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

import pytest

import tasksync.policies.optimal.pair as pair
import tasksync.policies.optimal.solve as solve
from tasksync.cli import main
from tasksync.examples import TODAY, generate
from tasksync.policies.optimal.native import quiet_solver

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the guard swaps POSIX file descriptors")

LIBC = ctypes.CDLL(None)
NOISE = b"HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();\n"


def native_print() -> None:
    """What HiGHS does: printf to C's stdout, flushed."""
    LIBC.printf(NOISE)
    LIBC.fflush(None)


def test_the_guard_drops_native_writes_and_keeps_pythons(capfd: pytest.CaptureFixture[str]) -> None:
    print("before", flush=False)
    with quiet_solver():
        native_print()
    print("after")
    out, _ = capfd.readouterr()
    assert out == "before\nafter\n"
    native_print()  # outside the guard the line does reach standard output: the test can see it
    assert "tmpSolver" in capfd.readouterr().out


def test_plan_json_stays_json_when_the_solver_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []

    def noisy(module: Any) -> Any:
        real = module.milp

        def milp(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            native_print()
            return real(*args, **kwargs)

        return milp

    monkeypatch.setattr(solve, "milp", noisy(solve))
    monkeypatch.setattr(pair, "milp", noisy(pair))
    config = generate(tmp_path / "demo")
    capfd.readouterr()
    assert main(["--no-color", "-c", str(config), "plan", "--json", "--today", TODAY.isoformat()]) == 0
    out, _ = capfd.readouterr()
    assert calls, "the example's plan solves no MILP: this test no longer tests anything"
    data = json.loads(out)
    assert data["changes"]
