"""Where one optimal decision's time goes: CPU and wall seconds of the whole decision, and the
process time of each of its parts, on seeded books.

The parts are the functions the optimal policy calls (``OptimalPolicy.decide`` on a whole book, as
the 10k/100 books are divided), each timed from outside while the policy runs as it does for a
user: the LP (column generation, HiGHS), the rounding MILP with its neighbours, the models, the
Lagrangian seed, the greedy start, the repairs, the settle check's parts, the reasons and the
priorities. A part's time includes the listed parts it calls (the rounding MILP's includes its
programme and its greedy placement of what is left); ``rest`` is the decision less the time
inside any listed part. Each run also prints a fingerprint of the plan (owners, tiers, reasons, notes): runs of one
book must print the same.

    python bench/policies/bench_phases.py [--kinds real-shaped synthetic] [--cards 10000]
        [--reps 100] [--seed 1] [--runs 2]

CPU seconds are process time (the machine may be shared: wall time then runs above it).
Measured by column generation (seed 1; 2 cores shared by three engineers, load 1-4): real-shaped 10k/100 3.96-4.49 s
CPU: the LP 2.65-2.82, the two models 0.19-0.22, the Lagrangian seed 0.20-0.30, the rounding MILP
0.19-0.28, reasons 0.10-0.15, the greedy placements 0.09-0.16, ``improve``, ``swap`` and ``repair``
0.24-0.31, owners replaced for the settle check 0.05-0.06, priorities 0.06-0.08, the programmes
0.03-0.05, the rest 0.09 (the decision less the LP 1.31-1.69 s; 1.42-1.69 s in the same session
before the session that sped up the Python around the LP); synthetic 2.04-2.35 s CPU (the LP
1.06-1.12, the rounding MILP 0.26-0.28, the models 0.13-0.17).
Since big books take the dual path (seeds 1 and 0, load 1.6): real-shaped 2.58 and 2.94 s CPU, the
dual path 0.96 and 0.76, the crashed LP 0.36 and 0.32, the rounding MILP 0.16 and 0.84 (another
vertex of the same LP rounds harder on seed 0), the models 0.27-0.36, reasons 0.17-0.22; synthetic
2.08 and 1.54 s (the path 0.43-0.54, the crash 0.12-0.15).
After the session that sped up the Python around the path again (best of 3, load 1.1-1.3, the code
before in turn): real-shaped seeds 0 and 1 1.79 and 1.67 s CPU (before: 1.99 and 1.84), the dual
path 0.49 and 0.61, the crashed LP 0.31 and 0.27, the rounding MILP 0.34 and 0.21, the models
0.14-0.15, reasons 0.07-0.08, improve 0.07-0.08, priorities 0.05, swap 0.03-0.05, repair 0.03-0.04,
owners replaced 0.03, the rest 0.08-0.09; synthetic seed 1 1.76 s (before: 1.80).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tasksync.policies.optimal as O
import tasksync.policies.optimal.crash as C
import tasksync.policies.optimal.solve as S
from tasksync.policies.base import Decisions, Rules
from tasksync.policies.model_eval import real_shaped_book, synthetic_book
from tasksync.settings import PolicySettings

# (module, function, label): the parts timed, in the order printed.
PARTS: list[tuple[Any, str, str]] = [
    (S, "solve_lp", "LP"),
    (C, "path_prices", "dual path"),
    (C, "crash_lp", "crashed LP"),
    (S, "_fix_fractional", "rounding MILP"),
    (O, "build_model", "models"),
    (S, "lagrangian_columns", "Lagrangian seed"),
    (S, "greedy", "greedy"),
    (S, "repair", "repair"),
    (S, "swap", "swap"),
    (S, "improve", "improve"),
    (S, "build_programme", "programmes"),
    (S, "seed_columns", "seed columns"),
    (O, "replace_owners", "owners replaced"),
    (O, "upper_bound", "settle bound"),
    (O, "Tables", "tables"),
    (O, "explain", "reasons"),
    (O, "prioritise", "priorities"),
]


@contextmanager
def timed(seconds: dict[str, float]) -> Iterator[None]:
    """While open, each part of ``PARTS`` adds its process time to ``seconds[label]``, and the
    time inside any part (the outermost one running) to ``seconds["parts"]``."""
    saved: list[tuple[Any, str, Callable[..., Any]]] = []
    depth = [0]

    def wrap(f: Callable[..., Any], label: str) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            depth[0] += 1
            try:
                return f(*args, **kwargs)
            finally:
                depth[0] -= 1
                secs = time.process_time() - t
                seconds[label] += secs
                if not depth[0]:
                    seconds["parts"] += secs

        return inner

    for mod, name, label in PARTS:
        saved.append((mod, name, getattr(mod, name)))
        setattr(mod, name, wrap(getattr(mod, name), label))
    try:
        yield
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)


def fingerprint(dec: Decisions) -> str:
    """A digest of the plan: every decision's owner, tier, score and reasons, and the notes."""
    rows = sorted(
        (k, d.owner, d.priority, d.score, repr(d.reason), repr(d.priority_reason)) for k, d in dec.by_key.items()
    )
    return hashlib.sha256(repr((rows, dec.notes, dec.bands)).encode()).hexdigest()[:12]


def decide(kind: str, cards: int, reps: int, seed: int) -> tuple[float, float, dict[str, float], str]:
    """CPU and wall seconds of one decision on a seeded book, its parts' process time, its plan's
    fingerprint."""
    book = (synthetic_book if kind == "synthetic" else real_shaped_book)(cards, reps, seed)
    rules = Rules(PolicySettings(name="optimal"))
    seconds: dict[str, float] = defaultdict(float)
    with timed(seconds):
        t, w = time.process_time(), time.perf_counter()
        dec = O.OptimalPolicy().decide(book, rules)
        cpu, wall = time.process_time() - t, time.perf_counter() - w
    seconds["rest"] = cpu - seconds.pop("parts", 0.0)
    return cpu, wall, dict(seconds), fingerprint(dec)


def main() -> None:
    """One line per decision, then its parts by process time."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["real-shaped", "synthetic"])
    ap.add_argument("--cards", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    for kind in a.kinds:
        for run in range(a.runs):
            cpu, wall, parts, plan = decide(kind, a.cards, a.reps, a.seed)
            book = f"{kind} {a.cards}/{a.reps} seed {a.seed}"
            print(f"{book} run {run + 1}: {cpu:.2f} s CPU, {wall:.2f} s wall, plan {plan}")
            order = [label for _, _, label in PARTS] + ["rest"]
            print("  " + ", ".join(f"{label} {parts.get(label, 0.0):.3f}" for label in order))


if __name__ == "__main__":
    main()
