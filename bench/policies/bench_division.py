"""Division benchmark: optimal (MILP) vs round robin vs the greedy best-fit baseline (balanced).

Seeded synthetic books (``tasksync.policies.model_eval.synthetic_book``) at 1k tasks / 20 reps,
2k / 40, 10k / 100 and 100k / 1,000 (``--quick`` skips 100k). For each policy: expected won value
(rep-specific P(win) × value, summed over all tasks with the owner the policy leaves them with) and
its ratio to the balanced baseline, workload max/mean and coefficient of variation (task counts of
available reps), reps outside the ±band, tasks moved by the plan, solve time; for the optimal policy
also the process peak RSS. Then a rebalance: the book after each policy's plan, with 10% of the reps'
capacity cut to 70% of the mean load, re-divided (optimal with ``rebalance_only``); tasks moved vs a
lower bound on the tasks that must move. On books up to 2,000 tasks, the gap between the optimal
policy's objective and the exact MILP optimum of the same model. Finally a win-model backtest.

    python bench/policies/bench_division.py [--quick] [--seed N] [--greedy-max 20000]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from tasksync.policies.balanced import BalancedPolicy
from tasksync.policies.base import Decisions
from tasksync.policies.book import Book
from tasksync.policies.model_eval import apply_decisions, backtest, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, workload_stats
from tasksync.policies.roundrobin import RoundRobinPolicy
from tasksync.policies.scoring import WinModel
from tasksync.settings import PolicySettings, Settings

SIZES = [(1_000, 20), (2_000, 40), (10_000, 100), (100_000, 1_000)]


def owners_of(book: Book, dec: Decisions) -> dict[str, str | None]:
    return {i.key: (dec.by_key[i.key].owner if i.key in dec.by_key else None) or i.owner for i in book.items}


def expected_won(book: Book, owners: dict[str, str | None], wm: WinModel) -> float:
    avail = {r.id for r in book.available_reps}
    return sum(wm.expected_value(i, owners[i.key] if owners[i.key] in avail else None) for i in book.items)


def workload(book: Book, owners: dict[str, str | None], band: float) -> tuple[float, float, int]:
    """max/mean and CV of task counts, and the reps outside the band who could be inside it (capacity
    not below the band's floor)."""
    avail = book.available_reps
    cnt = Counter(owners.values())
    loads = [float(cnt[r.id]) for r in avail]
    mx, cv = workload_stats(loads)
    mean = sum(loads) / len(loads)
    lo, hi = mean * (1 - band) - 1e-6, mean * (1 + band) + 1e-6
    outside = sum(
        1 for r, v in zip(avail, loads, strict=True) if not lo <= v <= hi and (r.capacity is None or r.capacity >= lo)
    )
    return mx, cv, outside


def min_moves(book: Book, band: float) -> int:
    """About the fewest tasks that must move: the larger of the excess above min(capacity, band top)
    and the shortfall below the band bottom, plus every task of an away rep or unowned. It ignores
    locked cards (which cannot move), so a policy can come in slightly under it."""
    avail = {r.id: r for r in book.available_reps}
    cnt = Counter(i.owner for i in book.items if i.owner in avail)
    loose = sum(1 for i in book.items if i.managed and not i.locked and i.owner not in avail)
    mean = len(book.items) / len(avail)
    hi, lo = math.floor(mean * (1 + band) + 1e-9), math.ceil(mean * (1 - band) - 1e-9)
    excess = sum(max(0, n - min(hi, avail[r].capacity or hi)) for r, n in cnt.items())
    short = sum(max(0, lo - cnt[r]) for r in avail)
    return max(excess, max(short - loose, 0)) + loose


def squeeze(book: Book, seed: int) -> Book:
    """10% of the reps get a capacity of 70% of the mean load."""
    reps = sorted(book.reps, key=lambda r: r.id)
    avail = [r for r in reps if r.available]
    mean = len(book.items) / max(len(avail), 1)
    step = 10
    cut = {r.id for k, r in enumerate(avail) if (k + seed) % step == 0}
    new = [replace(r, capacity=max(1, int(mean * 0.7))) if r.id in cut else r for r in reps]
    crm = replace(book.crm, reps=new)
    return Book(new, book.rep_member, book.items, crm, [], book.today)


def peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def run(n: int, r: int, seed: int, greedy_max: int, rows: list[list[str]]) -> None:
    book = synthetic_book(n, r, seed)
    settings = Settings(policy=PolicySettings(name="optimal"))
    band = settings.policy.band
    wm = WinModel.fit(book.crm.history, book.crm, settings.policy.smoothing, today=book.today)
    policies: list[tuple[str, object]] = [("round-robin", RoundRobinPolicy())]
    if n <= greedy_max:
        policies.append(("balanced", BalancedPolicy()))
    opt = OptimalPolicy()
    policies.append(("optimal", opt))
    results: dict[str, tuple[dict[str, str | None], float, Decisions]] = {}
    for name, pol in policies:
        t0 = time.perf_counter()
        dec: Decisions = pol.decide(book, settings)  # type: ignore[attr-defined]
        results[name] = (owners_of(book, dec), time.perf_counter() - t0, dec)
    rss = peak_rss_mib()
    base = results.get("balanced") or results["round-robin"]
    base_ev = expected_won(book, base[0], wm)
    rr_ev = expected_won(book, results["round-robin"][0], wm)
    gap = "-"
    if n <= 2_000:
        exact = OptimalPolicy(exact=True)
        best = exact.evaluate(book, settings, owners_of(book, exact.decide(book, settings)))
        ours = exact.evaluate(book, settings, results["optimal"][0])
        gap = f"{(best - ours) / abs(best):.3%}"
    for name, (owners, secs, dec) in results.items():
        ev = expected_won(book, owners, wm)
        mx, cv, outside = workload(book, owners, band)
        moved = sum(1 for i in book.items if owners[i.key] != i.owner)
        # Rebalance after 10% of reps change capacity, starting from this policy's division.
        after = squeeze(apply_decisions(book, dec), seed)
        need = min_moves(after, band)
        if name == "optimal":
            reb_settings = Settings(policy=PolicySettings(name="optimal", rebalance_only=True))
            t0 = time.perf_counter()
            reb = OptimalPolicy().decide(after, reb_settings)
            reb_secs = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            reb = type(dict(policies)[name])().decide(after, settings)  # type: ignore[operator]
            reb_secs = time.perf_counter() - t0
        reb_owners = owners_of(after, reb)
        reb_moved = sum(1 for i in after.items if reb_owners[i.key] != i.owner)
        _, _, reb_out = workload(after, reb_owners, band)
        rows.append(
            [
                f"{n // 1000}k/{r}",
                name,
                f"{ev:,.0f}",
                f"{ev / base_ev:.3f}",
                f"{ev / rr_ev:.3f}",
                f"{mx:.2f}",
                f"{cv:.3f}",
                str(outside),
                str(moved),
                f"{reb_moved}/{need}" + (f" ({reb_moved / need:.2f}x)" if need else ""),
                str(reb_out),
                f"{secs:.2f}",
                f"{reb_secs:.2f}",
                f"{rss:,.0f}" if name == "optimal" else "",
                gap if name == "optimal" else "",
                opt.info.method if name == "optimal" else "",
            ]
        )
    if n > greedy_max:
        rows.append([f"{n // 1000}k/{r}", "balanced", "skipped (--greedy-max)", *([""] * 13)])
    for row in rows[-len(results) - (n > greedy_max) :]:
        print(" | ".join(row), flush=True)
    print(f"optimal: {opt.info}", flush=True)
    bt = backtest(book.crm.history, book.today - timedelta(days=180), book.crm, settings.policy.smoothing)
    print(f"\n{n // 1000}k/{r} {bt.table()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100k-task book")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--greedy-max", type=int, default=20_000, help="largest book to run the balanced baseline on")
    ap.add_argument("--sizes", type=int, nargs="*", help="only the books with these task counts")
    args = ap.parse_args()
    header = [
        "book",
        "policy",
        "exp. won",
        "vs greedy",
        "vs RR",
        "max/mean",
        "CV",
        "out band",
        "moved",
        "rebal moved/min",
        "rebal out*",
        "solve s",
        "rebal s",
        "peak RSS MiB",
        "gap",
        "method",
    ]
    rows: list[list[str]] = []
    for n, r in SIZES:
        if (args.quick and n > 10_000) or (args.sizes and n not in args.sizes):
            continue
        run(n, r, args.seed, args.greedy_max, rows)
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    footnote = (
        "out band / rebal out*: available reps outside ±band whose capacity allows the band "
        "(the capacity cut puts 10% of reps below the band's floor)"
    )
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(footnote)


if __name__ == "__main__":
    main()
