"""The optimal policy's objective on the bench's small books, to compare two checkouts' searches.

Per book (the synthetic 1,000/20 and 2,000/40 and the real-shaped 664/35 of ``bench_division.py``,
seed 1): the objective of the policy's division as the bench's gap measures it (fit value − move
cost − band penalties, :meth:`OptimalPolicy.evaluate`, the exact model), its expected won value,
the reps outside the count and value bands, the CPU seconds of one decision, the method, and
whether a second run gives the same plan. To compare with another checkout in the same session
(the machine may be shared: compare CPU, not wall), run this file with
``PYTHONPATH=<that checkout>/src`` and put the two tables side by side.

Under each book's row, the room the value band's mean has under the policy's division
(:func:`mean_room`: how far the team's expected value may fall or rise before a rep
leaves its value band, and the reps at either edge of it): when both edges hold reps, the mean is
pinned, and any re-division of some of the reps, the rest fixed, must leave the team's expected
value where it is. With ``--neighbourhood K N``, also what exact re-divisions of ``K`` reps at a
time (``N`` of them, :func:`tasksync.policies.optimal.neighbourhood.redivide`) gain over the
policy's division, on the exact model, and their CPU.

With ``--edge PARTS K``, also what re-dividing the reps at the value band's lower edge with the
reps inside it (``PARTS`` sets, each account among its rep and the ``K`` of least LP reduced cost,
:func:`tasksync.policies.optimal.neighbourhood.reopen_edge`) gains over the policy's division.

With ``--whole-book NODES``, HiGHS on the whole book's MILP (every movable group among every
rep, both bands and the capacities held, :func:`mean_bound.whole_programme`) from the policy's
division, at most ``NODES`` branch-and-bound nodes (a diagnostic: how far the policy's division is
from the best HiGHS finds): the best division's objective, its gain, how many groups it moves and
over how many reps, and the team's mean and the reps at the value band's edges under it.

``--small`` adds seeded books of 100-300 cards and 6-10 reps, where the polish ends with the
whole book's MILP (:func:`tasksync.policies.optimal.neighbourhood.whole_book`).

    python bench/policies/bench_polish.py [--sizes 664 1000 2000] [--seed N] [--small] [--neighbourhood K N]
        [--edge PARTS K] [--whole-book NODES]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from tasksync.policies.base import Rules
from tasksync.policies.model_eval import real_shaped_book, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.policies.optimal.model import Model, build_model
from tasksync.settings import PolicySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_division import _choice, balances, owners_of
from mean_bound import highs_for, whole_programme
from scipy.optimize._highspy._core import HighsSolution

BOOKS = [("synthetic", 1_000, 20, synthetic_book), ("real-shaped", 664, 35, real_shaped_book)]
BOOKS.append(("synthetic", 2_000, 40, synthetic_book))
# ``--small``: seeded books small enough for the polish's whole-book MILP (neighbourhood.whole_book).
SMALL = [("synthetic", 120, 6, synthetic_book), ("real-shaped", 100, 6, real_shaped_book)]
SMALL += [("synthetic", 200, 8, synthetic_book), ("synthetic", 300, 10, synthetic_book)]


@dataclass(frozen=True)
class MeanRoom:
    """How far the value band's mean may move under a division, every rep's expected value as it
    is, before some rep leaves its band: ``lo``..``hi`` around ``mean`` (``lo`` ≤ ``mean`` ≤ ``hi``
    when every rep is inside its band); the reps at the band's lower and upper edge (within
    ``EDGE`` of it)."""

    mean: float
    lo: float
    hi: float
    at_lower: int
    at_upper: int
    reps: int

    @property
    def team_room(self) -> tuple[float, float]:
        """The same room as what the team's whole expected value may lose or gain."""
        return (self.lo - self.mean) * self.reps, (self.hi - self.mean) * self.reps


EDGE = 0.005  # a rep within 0.5% of its band's edge (relative to its centre) is at the edge


def mean_room(m: Model, choice: np.ndarray) -> MeanRoom | None:
    """The room the value band's mean has under ``choice`` (None: no value band, or a fixed mean)."""
    if not m.value_band or m.value_mean is not None or not len(m.reps):
        return None
    e = m.loads_for(choice)[2]
    w, b = m.weights(), m.value_band
    mean = float(e.mean())
    on = w > 0
    lo = float((e[on] / ((1 + b) * w[on])).max(initial=-np.inf))
    hi = float((e[on] / ((1 - b) * w[on])).min(initial=np.inf)) if b < 1 else np.inf
    ratio = np.where(on, e / np.where(on, mean * w, 1.0), 1.0)
    at_lower = int((on & (ratio <= 1 - b + EDGE)).sum())
    at_upper = int((on & (ratio >= 1 + b - EDGE)).sum())
    return MeanRoom(mean, lo, hi, at_lower, at_upper, len(e))


def whole_book_best(m: Model, choice: np.ndarray, nodes: int) -> tuple[np.ndarray, int, float]:
    """HiGHS on the whole book's MILP, both bands and the capacities held, from ``choice``, at most
    ``nodes`` nodes: the best division it finds (rep per group), its node count and CPU seconds."""
    t0 = time.process_time()
    w = whole_programme(m, choice, held=True)
    h = highs_for(w.prog, True, {"mip_max_nodes": nodes, "mip_rel_gap": 1e-6})
    sol = HighsSolution()
    sol.col_value, sol.value_valid = list(w.start_x), True
    h.setSolution(sol)
    h.run()
    x = np.asarray(h.getSolution().col_value)
    pick = x[: w.prog.n_x] > 0.5
    out = choice.copy()
    out[w.movers[w.prog.group[pick]]] = w.prog.rep[pick]
    if not m.objective(out) > m.objective(choice):
        out = choice.copy()
    return out, int(h.getInfo().mip_node_count), time.process_time() - t0


def _print_whole_book(m: Model, choice: np.ndarray, nodes: int) -> None:
    best, made, cpu = whole_book_best(m, choice, nodes)
    before, after = m.objective(choice), m.objective(best)
    moved = np.flatnonzero(best != choice)
    reps = np.union1d(choice[moved], best[moved])
    print(
        f"  whole book's MILP, {made:,} nodes: objective {after:,.1f} ({(after - before) / abs(before) * 100:+.4f}%),"
        f" both bands held: {'yes' if m.feasible(best) else 'NO'}, {len(moved)} groups moved over {len(reps)} reps,"
        f" CPU {cpu:.0f} s",
        flush=True,
    )
    for name, c in (("policy's", choice), ("HiGHS's", best)):
        room = mean_room(m, c)
        if room is not None:
            print(
                f"    {name}: team's mean {room.mean:,.1f},"
                f" reps at the value band's lower/upper edge {room.at_lower}/{room.at_upper}"
            )


def _print_step(name: str, m: Model, choice: np.ndarray, step: Callable[[Model, np.ndarray], int]) -> None:
    """Run ``step`` on ``m`` and ``choice`` (a re-division in place; it returns those kept) and print
    what it gained."""
    before = m.objective(choice)
    t0 = time.process_time()
    kept = step(m, choice)
    cpu = time.process_time() - t0
    after = m.objective(choice)
    print(
        f"  {name}: objective {after:,.1f} ({(after - before) / abs(before) * 100:+.4f}%), {kept} kept,"
        f" both bands held: {'yes' if m.feasible(choice) else 'NO'}, CPU {cpu:.2f} s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", help="only the books with these task counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="also the small books (100-300 cards, 6-10 reps)")
    ap.add_argument(
        "--neighbourhood",
        type=int,
        nargs=2,
        metavar=("K", "N"),
        help="also re-divide K reps at a time exactly, N neighbourhoods, after the policy's division",
    )
    ap.add_argument(
        "--edge",
        type=int,
        nargs=2,
        metavar=("PARTS", "K"),
        help="also re-divide the value band's lower edge with its interior (PARTS sets, K reps per account)",
    )
    ap.add_argument("--whole-book", type=int, metavar="NODES", help="also HiGHS on the whole book's MILP, NODES nodes")
    args = ap.parse_args()
    print("book | objective | exp. won | out count/value band | CPU s | same plan twice | method")
    for kind, n, r, make in BOOKS + (SMALL if args.small else []):
        if args.sizes and n not in args.sizes:
            continue
        book = make(n, r, args.seed)
        rules = Rules(PolicySettings(name="optimal"))
        pol = OptimalPolicy()
        t0 = time.process_time()
        dec = pol.decide(book, rules)
        cpu = time.process_time() - t0
        owners = owners_of(book, dec)
        again = OptimalPolicy().decide(book, rules)
        same = all(again.by_key[k].owner == d.owner for k, d in dec.by_key.items())
        objective = OptimalPolicy(exact=True).evaluate(book, rules, owners)
        b = balances(book, owners, fit_model(book, rules.policy), rules.policy)
        won, out_n, out_e = b["won"], int(b["out_n"]), int(b["out_e"])
        print(
            f"{kind} {n:,}/{r} | {objective:,.1f} | {won:,.0f} | {out_n}/{out_e} | {cpu:.2f} | "
            f"{'yes' if same else 'NO'} | {pol.info.method}",
            flush=True,
        )
        m = build_model(book, rules.policy, fit_model(book, rules.policy), True)
        choice = _choice(book, m, owners)
        room = mean_room(m, choice)
        if room is not None:
            down, up = room.team_room
            print(
                f"  value band's mean: room {(room.lo / room.mean - 1) * 100:+.4f}%.."
                f"{(room.hi / room.mean - 1) * 100:+.4f}%"
                f" (team's expected value {down:+,.0f}..{up:+,.0f}); reps at the band's lower/upper edge:"
                f" {room.at_lower}/{room.at_upper} of {room.reps}",
                flush=True,
            )
        if args.neighbourhood:  # (imported here: a checkout without it still runs the rest)
            from tasksync.policies.optimal.neighbourhood import redivide

            k, budget = args.neighbourhood
            _print_step(
                f"{k} reps at a time, {budget} neighbourhoods", m, choice, partial(redivide, size=k, budget=budget)
            )
        if args.edge:  # (imported here: a checkout without it still runs the rest)
            from tasksync.policies.optimal.neighbourhood import reopen_edge

            parts, most = args.edge
            _print_step(
                f"the value band's lower edge with its interior, {parts} sets, {most} reps per account",
                m,
                choice,
                partial(reopen_edge, parts=parts, most=most),
            )
        if args.whole_book:
            _print_whole_book(m, choice, args.whole_book)


if __name__ == "__main__":
    main()
