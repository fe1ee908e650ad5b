"""Division benchmark: optimal vs round robin vs the greedy best-fit baseline (balanced), in one run.

Books: seeded synthetic ones (``synthetic_book``) at 1k tasks / 20 reps, 2k / 40, 10k / 100 and
100k / 1,000, and real-shaped ones (``real_shaped_book``: many reps, many small accounts, a third
of the cards owned, history years older than today, reps named not numbered) at 664 / 35,
10k / 100 and 100k / 1,000 (``--quick`` skips the 100k books and gives the exact reference 15 s
instead of 90 s). Per book and policy:

* expected won value (P(win) with the owner × value, the optimal policy's win model) and its ratio
  to round robin and to greedy;
* both balances: open cards max/mean and expected value per rep CV (available reps), and the reps
  outside the count band (±``band``) and the value band (±``value_band``);
* determinism: three runs of the policy give identical decisions (owner, priority, reason);
* settle: the book after applying the decisions, decided again, changes nothing (owners moved);
* CPU seconds of the decision (process time, not wall: the machine may be shared) and, for the
  optimal policy, the process peak RSS;
* books up to 2,000 tasks: the gap between the optimal policy's objective and the exact MILP of the
  same model (its best solution, and its proven bound: the optimum lies between them), each also
  as a share of the improvement over greedy there is to make, with whether the exact solve proved
  optimality or stopped at its limit (``--exact-seconds``; HiGHS, wall clock: on a loaded machine
  it gets less done in the same time). The exact solve starts from the policy's division, so its
  best is never below it. A second bound comes from the set-partitioning (Dantzig–Wolfe)
  relaxation (:mod:`dw_bound`: one column per rep and set of whole groups, column generation at a
  fixed round count, deterministic); the gap is also given to the tighter of the two bounds.

Then the cost of the options (``value_band``, ``keep_accounts_together``, ``min_gain``,
``keep_current_owner``) in expected won value (also against round robin) and balance, on the
synthetic 1k and real-shaped 664 books, and a win-model backtest.

    python bench/policies/bench_division.py [--quick] [--seed N] [--sizes 664 2000 ...]
        [--kinds synthetic real-shaped] [--no-greedy] [--runs N] [--no-options] [--exact-seconds S]

``--no-greedy`` leaves out the greedy baseline (``balanced``: its memory grows with reps × cards
and it needs far more than the optimal policy at 100k/1,000); ``--runs`` sets how many runs the
determinism check compares (3 by default; each is a whole division). To compare with another
checkout in the same session, run this file with ``PYTHONPATH=<that checkout>/src``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from scipy.optimize._highspy._core import (
    HighsLp,
    HighsSolution,
    HighsSparseMatrix,
    HighsVarType,
    MatrixFormat,
    _Highs,
)
from scipy.sparse import csc_array

from tasksync.policies.balanced import BalancedPolicy
from tasksync.policies.base import Decisions, Policy, Rules
from tasksync.policies.book import Book
from tasksync.policies.model_eval import apply_decisions, backtest, real_shaped_book, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model, workload_stats
from tasksync.policies.optimal.model import build_model
from tasksync.policies.optimal.programme import build_programme
from tasksync.policies.roundrobin import RoundRobinPolicy
from tasksync.policies.scoring import WinModel
from tasksync.settings import PolicySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dw_bound import dw_bound

BOOKS: list[tuple[str, int, int, Callable[[int, int, int], Book]]] = [
    ("synthetic", 1_000, 20, synthetic_book),
    ("real-shaped", 664, 35, real_shaped_book),
    ("synthetic", 2_000, 40, synthetic_book),
    ("synthetic", 10_000, 100, synthetic_book),
    ("real-shaped", 10_000, 100, real_shaped_book),
    ("synthetic", 100_000, 1_000, synthetic_book),
    ("real-shaped", 100_000, 1_000, real_shaped_book),
]
EXACT_MAX = 2_000  # books up to this many tasks are also solved exactly


def owners_of(book: Book, dec: Decisions) -> dict[str, str | None]:
    return {i.key: (dec.by_key[i.key].owner if i.key in dec.by_key else None) or i.owner for i in book.items}


def fingerprint(dec: Decisions) -> list[tuple[str, str | None, str | None, str]]:
    return sorted((k, d.owner, d.priority, repr(d.reason)) for k, d in dec.by_key.items())


def balances(book: Book, owners: dict[str, str | None], wm: WinModel, p: PolicySettings) -> dict[str, float]:
    avail = [r.id for r in book.available_reps]
    ids = set(avail)
    n: Counter[str] = Counter()
    e: dict[str, float] = defaultdict(float)
    won = 0.0
    for i in book.items:
        o = owners[i.key]
        won += wm.expected_value(i, o if o in ids else None)
        if o in ids:
            n[o] += 1
            e[o] += wm.expected_value(i, o)
    counts = [float(n[r]) for r in avail]
    values = [e[r] for r in avail]
    mx, _ = workload_stats(counts)
    _, cv = workload_stats(values)
    mean_n, mean_e = sum(counts) / len(avail), sum(values) / len(avail)
    out_n = sum(1 for c in counts if not mean_n * (1 - p.band) - 1 <= c <= mean_n * (1 + p.band) + 1)
    out_e = sum(1 for v in values if not mean_e * (1 - p.value_band) - 1e-6 <= v <= mean_e * (1 + p.value_band) + 1e-6)
    return {"won": won, "max": mx, "cv": cv, "out_n": out_n, "out_e": out_e}


def settles(book: Book, pol: Policy, rules: Rules, dec: Decisions) -> int:
    """Owner changes a second run proposes on the book after applying ``dec`` (0: it settles)."""
    after = apply_decisions(book, dec)
    again = pol.decide(after, rules)
    return sum(1 for i in after.items if (d := again.by_key.get(i.key)) is not None and d.owner not in (None, i.owner))


def peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def exact_reference(
    book: Book, rules: Rules, start: dict[str, str | None], seconds: float
) -> tuple[float, float, bool]:
    """The whole model as one MILP (HiGHS, every group with every rep, relative gap 1e-4), started
    from the division ``start`` (so its best is never below it and its search prunes from there):
    the best objective found, the proven upper bound on the optimum, and whether it proved
    optimality within ``seconds`` (wall clock: a loaded machine gets less done)."""
    p = rules.policy
    m = build_model(book, p, fit_model(book, p), True)
    ridx = {r: k for k, r in enumerate(m.reps)}
    ours = np.array([ridx.get(start.get(g.items[0].key) or g.items[0].owner or "", -1) for g in m.groups])
    movers = [g for g in range(len(m.groups)) if not m.held[g]]
    base = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    held = sum(m.net(g, int(base[g])) for g in range(len(m.groups)) if m.held[g])
    prog = build_programme(m, movers, m.loads_for(base, skip=set(movers)), True)
    a = csc_array(prog.constraints.A)
    h = _Highs()
    for name, value in (("output_flag", False), ("time_limit", seconds), ("mip_rel_gap", 1e-4)):
        h.setOptionValue(name, value)
    lp = HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = prog.c, prog.bounds.lb, prog.bounds.ub
    lp.row_lower_, lp.row_upper_ = prog.constraints.lb, prog.constraints.ub
    mat = HighsSparseMatrix()
    mat.format_, mat.num_col_, mat.num_row_ = MatrixFormat.kColwise, a.shape[1], a.shape[0]
    mat.start_, mat.index_, mat.value_ = a.indptr, a.indices, a.data
    lp.a_matrix_ = mat
    lp.integrality_ = [HighsVarType.kInteger if v else HighsVarType.kContinuous for v in prog.integrality]
    h.passModel(lp)
    x = np.zeros(a.shape[1])  # the start: its x and u columns (HiGHS completes the slacks)
    mv = np.array(movers, dtype=np.int64)
    x[: prog.n_x] = ours[mv[prog.group]] == prog.rep
    x[prog.n_x : prog.n_x + len(movers)] = ours[mv] < 0
    sol = HighsSolution()
    sol.col_value, sol.value_valid = list(x), True
    h.setSolution(sol)
    h.run()
    info = h.getInfo()
    proved = h.modelStatusToString(h.getModelStatus()) == "Optimal"
    return held - info.objective_function_value, held - info.mip_dual_bound, proved


def dw_reference(book: Book, rules: Rules, start: dict[str, str | None]) -> tuple[float | None, str]:
    """The set-partitioning (Dantzig–Wolfe) bound on the optimum (:mod:`dw_bound`), from the division
    ``start``: the bound (None when not priced) and how it was found (rounds, columns, CPU s)."""
    p = rules.policy
    m = build_model(book, p, fit_model(book, p), True)
    ridx = {r: k for k, r in enumerate(m.reps)}
    ours = np.array([ridx.get(start.get(g.items[0].key) or g.items[0].owner or "", -1) for g in m.groups])
    t0 = time.process_time()
    res = dw_bound(m, ours)
    if res is None:
        return None, "DW: not priced (value capacities)"
    how = "converged" if res.converged else f"stopped at {res.rounds} rounds"
    return res.bound, f"DW {how}, {res.columns:,} columns, {time.process_time() - t0:.0f} s CPU"


def exact_gap(
    book: Book, rules: Rules, ours: dict[str, str | None], greedy: dict[str, str | None], seconds: float
) -> str:
    """Gap to the exact MILP's best solution and to the proven bounds (the optimum lies between the
    best and the lower of the two bounds: HiGHS's, and the set-partitioning relaxation's), each
    also as a share of the improvement over greedy there is to make (up to that best, up to that
    bound), with whether the exact solve proved optimality or stopped at its limit."""
    evaluator = OptimalPolicy(exact=True)
    best, bound, proved = exact_reference(book, rules, ours, seconds)
    dw, dw_how = dw_reference(book, rules, ours)
    mine = evaluator.evaluate(book, rules, ours)
    base = evaluator.evaluate(book, rules, greedy)
    best = max(best, mine)
    bound = max(bound, best)
    tight = max(min(bound, dw), best) if dw is not None else bound
    share = (best - mine) / (best - base) if best > base else 0.0
    of_gain = f", {(tight - mine) / (tight - base):.1%} of the gain over greedy" if tight > base else ""
    limit = "exact proved" if proved else f"exact stopped at {seconds:g} s"
    dw_text = f"{(dw - mine) / abs(dw):.3%}" if dw is not None else "-"
    return (
        f"{(best - mine) / abs(best):.3%} ({share:.1%} of the gain over greedy; "
        f"bound (HiGHS) {(bound - mine) / abs(bound):.3%}; bound (DW) {dw_text}; "
        f"to the tighter {(tight - mine) / abs(tight):.3%}{of_gain}; {limit}; {dw_how})"
    )


def run_book(
    kind: str,
    n: int,
    r: int,
    make: Callable[[int, int, int], Book],
    seed: int,
    rows: list[list[str]],
    exact_seconds: float = 90.0,
    greedy_too: bool = True,
    runs: int = 3,
) -> None:
    book = make(n, r, seed)
    rules = Rules(PolicySettings(name="optimal"))
    wm = fit_model(book, rules.policy)
    policies: list[tuple[str, Policy]] = [("round-robin", RoundRobinPolicy())]
    if greedy_too:
        policies.append(("balanced", BalancedPolicy()))
    opt = OptimalPolicy()
    policies.append(("optimal", opt))
    found: dict[str, tuple[Decisions, float, dict[str, float]]] = {}
    for name, pol in policies:
        t0 = time.process_time()
        dec = pol.decide(book, rules)
        secs = time.process_time() - t0
        found[name] = (dec, secs, balances(book, owners_of(book, dec), wm, rules.policy))
    rss = peak_rss_mib()
    method = opt.info.method
    rr = found["round-robin"][2]["won"]
    greedy = found["balanced"][2]["won"] if greedy_too else None
    gap = "-"
    if n <= EXACT_MAX and greedy_too:
        gap = exact_gap(
            book, rules, owners_of(book, found["optimal"][0]), owners_of(book, found["balanced"][0]), exact_seconds
        )
    for name, pol in policies:
        dec, secs, b = found[name]
        same = all(fingerprint(type(pol)().decide(book, rules)) == fingerprint(dec) for _ in range(runs - 1))  # type: ignore[call-arg]
        rows.append(
            [
                f"{kind} {n:,}/{r}",
                name,
                f"{b['won']:,.0f}",
                f"{b['won'] / rr:.3f}",
                f"{b['won'] / greedy:.3f}" if greedy else "-",
                f"{b['max']:.2f}",
                f"{b['cv']:.3f}",
                f"{b['out_n']:.0f}/{b['out_e']:.0f}",
                ("yes" if same else "NO") if runs > 1 else "-",
                str(settles(book, type(pol)(), rules, dec)),  # type: ignore[call-arg]
                f"{secs:.2f}",
                f"{rss:,.0f}" if name == "optimal" else "",
                gap if name == "optimal" else "",
                method if name == "optimal" else "",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)


OPTIONS: list[tuple[str, dict[str, object]]] = [
    ("defaults (band 0.10, value_band 0.20, accounts together, min_gain 1.0)", {}),
    ("value_band = 0 (count band only)", {"value_band": 0.0}),
    ("value_band = 0.10", {"value_band": 0.10}),
    ("keep_accounts_together = false", {"keep_accounts_together": False}),
    ("min_gain = 0.2", {"min_gain": 0.2}),
    ("min_gain = 0 (any gain moves a card)", {"min_gain": 0.0}),
    ("keep_current_owner = false", {"keep_current_owner": False}),
]


def option_costs(seed: int) -> None:
    """What each option costs (or gains) in expected won value and balance, against the defaults and
    against round robin, on the synthetic 1k book and the real-shaped 664 book."""
    for kind, n, r, make in (BOOKS[0], BOOKS[1]):
        book = make(n, r, seed)
        p0 = PolicySettings(name="optimal")
        wm = fit_model(book, p0)
        rr = balances(book, owners_of(book, RoundRobinPolicy().decide(book, Rules(p0))), wm, p0)["won"]
        print(f"\nOptions on {kind} {n:,}/{r} (optimal policy; round robin {rr:,.0f}):")
        print("option | exp. won | vs defaults | vs RR | max/mean | value CV | owned cards moved")
        base = 0.0
        for label, update in OPTIONS:
            p = PolicySettings(name="optimal", **update)  # type: ignore[arg-type]
            owners = owners_of(book, OptimalPolicy().decide(book, Rules(p)))
            b = balances(book, owners, wm, p0)
            base = base or b["won"]
            moved = sum(1 for i in book.items if i.owner is not None and owners[i.key] != i.owner)
            print(
                f"{label} | {b['won']:,.0f} | {b['won'] / base:.3f} | {b['won'] / rr:.3f} | {b['max']:.2f} | "
                f"{b['cv']:.3f} | {moved}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100k-task books")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="*", help="only the books with these task counts")
    ap.add_argument("--kinds", nargs="*", choices=["synthetic", "real-shaped"], help="only these kinds of book")
    ap.add_argument("--no-options", action="store_true", help="skip the cost of the options")
    ap.add_argument("--no-greedy", action="store_true", help="leave out the greedy baseline (balanced)")
    ap.add_argument("--runs", type=int, default=3, help="runs compared for determinism (1: none)")
    ap.add_argument("--exact-seconds", type=float, help="time cap of the exact reference (default 90, --quick 15)")
    args = ap.parse_args()
    header = [
        "book",
        "policy",
        "exp. won",
        "vs RR",
        "vs greedy",
        "cards max/mean",
        "value CV",
        "out count/value band",
        f"{args.runs} runs identical",
        "moves after apply",
        "CPU s",
        "peak RSS MiB",
        "gap to exact",
        "method",
    ]
    print(" | ".join(header))
    rows: list[list[str]] = []
    for kind, n, r, make in BOOKS:
        if (
            (args.quick and n > 10_000)
            or (args.sizes and n not in args.sizes)
            or (args.kinds and kind not in args.kinds)
        ):
            continue
        exact_s = args.exact_seconds or (15.0 if args.quick else 90.0)
        run_book(kind, n, r, make, args.seed, rows, exact_s, not args.no_greedy, args.runs)
    widths = [max([len(h), *(len(row[k]) for row in rows)]) for k, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if not args.no_options:
        option_costs(args.seed)
    book = synthetic_book(2_000, 40, args.seed)
    bt = backtest(book.crm.history, book.today - timedelta(days=180), book.crm, 20.0)
    print(f"\nwin model backtest (synthetic 2,000/40): {bt.table()}")


if __name__ == "__main__":
    main()
