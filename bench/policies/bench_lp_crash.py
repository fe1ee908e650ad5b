"""How fast the 10k books' LP solves from a dual-feasible start at given rep prices.

The policy's LP (:func:`tasksync.policies.optimal.solve.solve_lp`) starts HiGHS's dual simplex
from the slack basis of a restricted LP and grows it by pricing rounds. Here the same programme
is started from a basis that is dual feasible at rep prices ``λ`` (per card) and ``θ`` (per unit
of expected value), so HiGHS skips phase 1 and its pivots only undo what those prices get wrong
(the start big books now take, :mod:`tasksync.policies.optimal.crash`, built by its ``shifted``):

* the costs are shifted by the prices of the rep rows (``c + λ·cards + θ·ev``), so a group's
  priced cost is its cost; each count-band row becomes an equality with its activity a boxed
  column ``z_r`` of cost ``−λ_r`` (so the objective is unchanged), and each ``E_r`` is boxed
  (at most its fixed load plus every candidate's expected value: a bound no division exceeds);
* basic: each group's cheapest priced column, the mean expected value, the logicals of every
  rep row; nonbasic: the rest, ``z_r`` and ``E_r`` at the bound their shifted cost asks for.

Every reduced cost is then ≥ 0 (each group's basic column is its cheapest; the band slacks cost
their penalty less the price, which stays within it), and the LP's optimum is the programme's
(the objective printed is the programme's, shift undone). It is solved over every column, and
over the columns within ``--near`` × (mean |cost|) of their group's cheapest, with a count of
the columns that would still price in.

Prices: ``lagrangian`` (the policy's 200 projected subgradient steps), ``lp`` (the LP's own
optimal duals, from the policy's column generation) and ``lp±N%`` (those, each rep's multiplied
by 1 + N% × a seeded normal draw): how near the prices must be for the start to pay.

    python bench/policies/bench_lp_crash.py [--kinds real-shaped synthetic] [--cards 10000]
        [--reps 100] [--seed 1] [--prices lagrangian lp lp1 lp5] [--near 0.1 1.0]

CPU seconds are process time. Measured (seed 1, 2 cores shared by four engineers, load 4-5), the
real-shaped 10k/100 book (the policy's column generation 2.6-2.8 s, 5 pricing rounds): at the
Lagrangian prices every column 2.66-2.70 s (4,641 pivots), within 0.1: 1.67-1.70 s (11,115
pivots, 1,272 columns still pricing in), within 1: 2.51-2.57 s; at the LP's own prices every column
0.22-0.29 s (335 pivots), within 0.1: 0.17-0.18 s (380 pivots, none pricing in); at those ±1%: 0.67
s (652 pivots) and 0.25 s; ±5%: 0.79 s (1,290 pivots), within 0.1: 1.41 s and 6,261 columns still
pricing in. Seed 0: Lagrangian 2.11 s against the policy's 2.86 s, the LP's own 0.30 s (0.15 s within
0.1). Synthetic seed 1 (the policy's 1.16 s): Lagrangian 0.88 s, the LP's own 0.13 s (0.09 s within
0.1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_lp_seed import first_programme

from tasksync.policies.optimal import solve as S
from tasksync.policies.optimal.crash import Shifted, shifted, started
from tasksync.policies.optimal.dual import lagrangian_prices, lp_prices
from tasksync.policies.optimal.model import Model

if S._Highs is None:  # pragma: no cover - older scipy
    raise SystemExit("this bench needs scipy >= 1.15 (HiGHS with setBasis)")


def crash_solve(s: Shifted, cols: np.ndarray) -> tuple[float, int, float, np.ndarray]:
    """HiGHS over the columns ``cols`` (bool) of ``s`` from its start (the policy's crash,
    :func:`tasksync.policies.optimal.crash.started`): CPU seconds, pivots, the programme's
    objective and the shifted LP's row duals."""
    h = started(s, np.flatnonzero(cols))
    t = time.process_time()
    h.run()
    secs = time.process_time() - t
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        raise SystemExit(f"not solved: {h.modelStatusToString(h.getModelStatus())}")
    info = h.getInfo()
    return (
        secs,
        info.simplex_iteration_count,
        info.objective_function_value - s.offset,
        np.asarray(h.getSolution().row_dual),
    )


def main() -> None:
    """Per book: the policy's LP, then one line per prices and column set."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["real-shaped", "synthetic"])
    ap.add_argument("--cards", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prices", nargs="+", default=["lagrangian", "lp", "lp1", "lp5"])
    ap.add_argument("--near", nargs="+", type=float, default=[0.1, 1.0])
    a = ap.parse_args()
    for kind in a.kinds:
        m, movers, prog, seed_cols = first_programme(kind, a.cards, a.reps, a.seed)
        t = time.process_time()
        res, _, rounds = S.solve_lp(prog, seed_cols, S.Limits(), time.perf_counter())
        assert res.x is not None, res.message
        print(f"{kind} {a.cards}/{a.reps} seed {a.seed}: the policy's LP {time.process_time() - t:.2f} s CPU, ", end="")
        print(f"{rounds} pricing rounds, objective {res.fun:,.2f}")
        optimal = lp_prices(prog, res.row_dual, m)
        t = time.process_time()
        lag_count, lag_ev = lagrangian_prices(m, movers, prog, m.loads_for(held_choice(m), skip=set(movers)))
        lag_secs = time.process_time() - t
        rng = np.random.default_rng(a.seed)
        n_r = len(m.reps)
        for name in a.prices:
            if name == "lagrangian":
                lam, theta = lag_count, lag_ev
                name = f"lagrangian ({lag_secs:.2f} s)"
            else:
                noise = float(name[2:] or 0.0) / 100
                lam = optimal.count * (1 + noise * rng.standard_normal(n_r))
                theta = optimal.ev * (1 + noise * rng.standard_normal(n_r))
                name = f"the LP's ±{name[2:] or 0}%"
            s = shifted(m, prog, -lam, -theta)  # the rows' duals (HiGHS's sign) of these prices
            every = np.ones(len(s.c), dtype=bool)
            secs, pivots, obj, _ = crash_solve(s, every)
            print(f"  {name}: every column {secs:.2f} s, {pivots} pivots, objective {obj:,.2f}")
            best = np.minimum.reduceat(s.c[: prog.n_x], np.flatnonzero(np.r_[True, np.diff(prog.group) != 0]))
            scale = float(np.abs(prog.c[: prog.n_x]).mean())
            for near in a.near:
                cols = every.copy()
                cols[: prog.n_x] = s.c[: prog.n_x] - best[prog.group] <= near * scale
                secs, pivots, obj, y = crash_solve(s, cols)
                d = s.c[: prog.n_x] - s.a[:, : prog.n_x].T @ y
                left = int(((d < -1e-7 * scale) & ~cols[: prog.n_x]).sum())
                print(
                    f"    within {near:g}: {int(cols[: prog.n_x].sum())} x columns, {secs:.2f} s, {pivots} pivots, "
                    f"objective {obj:,.2f}, {left} columns still pricing in"
                )


def held_choice(m: Model) -> np.ndarray:
    """Each held group on its rep, every other -1 (the loads the movers' programme is built on)."""
    return np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)


if __name__ == "__main__":
    main()
