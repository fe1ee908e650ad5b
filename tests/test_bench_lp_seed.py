"""The bench's LP with HiGHS options (``bench/policies/bench_lp_seed.py --highs``): the options
reach the column generation's solver, and the answer it prints as "the same vertex" is the serial
run's to the bit."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from bench_support import load_bench
from tasksync.policies.optimal.solve import COLGEN_MIN


@pytest.fixture(scope="module")
def lp_seed() -> ModuleType:
    return load_bench("bench_lp_seed")


def test_options_reach_the_solver_and_the_same_vertex_is_the_serial_answer(lp_seed: ModuleType) -> None:
    _, _, prog, seed = lp_seed.first_programme("synthetic", 2_000, 40, 1)
    assert prog.n_x >= COLGEN_MIN  # solved by column generation, where the options apply
    _, _, serial, status = lp_seed.with_options(prog, seed, {})
    assert status == "Optimal" and serial is not None
    x = lp_seed.timed_lp(prog, seed.copy())[3]  # the solver's own run, without the bench's wrapper
    assert serial.startswith(np.asarray(x).tobytes())
    assert lp_seed.with_options(prog, seed, {"threads": "1", "simplex_strategy": "1"})[2] == serial
    stopped = lp_seed.with_options(prog, seed, {"simplex_iteration_limit": "10"})
    assert stopped[2] is None and stopped[3] == "Iteration limit reached"


def test_an_unknown_option_is_named(lp_seed: ModuleType) -> None:
    _, _, prog, seed = lp_seed.first_programme("synthetic", 2_000, 40, 1)
    with pytest.raises(SystemExit, match="no_such_option=1"):
        lp_seed.with_options(prog, seed, {"no_such_option": "1"})
