"""What ``[policy] value_target = "quota"`` costs against ``"mean"``, in one run.

Books: the division bench's synthetic 2,000 / 40 and real-shaped 664 / 35 books (``--sizes`` adds
others), with seeded quotas: a third of the reps at 1.5–2× the usual quota, a third at 0.5–0.8×,
the rest at the usual one, and every seventh rep without a quota (they count at the team's mean
quota). Per book, policy (``optimal``, ``balanced``) and value target:

* expected won value (P(win) with the owner × value) and its ratio to ``value_target = "mean"``
  measured in the same run: what steering pipeline by quota costs;
* how far reps are from their own target: expected value ÷ target, its CV and worst, and reps
  outside their own value band (with ``"mean"`` the target is the mean for everyone, so these
  show how far a plain division is from the quotas);
* the correlation of expected value with quota: how much more pipeline a bigger quota gets;
* settle (owner changes a second run proposes after applying) and seconds.

    python bench/policies/bench_value_target.py [--seed N] [--sizes 664 2000 ...]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np

from tasksync.policies.balanced import BalancedPolicy
from tasksync.policies.base import Decisions, Policy, Rules
from tasksync.policies.book import Book
from tasksync.policies.model_eval import apply_decisions, real_shaped_book, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.policies.workload import value_targets, value_weights
from tasksync.settings import PolicySettings

BOOKS = [("real-shaped", 664, 35, real_shaped_book), ("synthetic", 2_000, 40, synthetic_book)]
MORE = [("synthetic", 10_000, 100, synthetic_book)]


def with_quotas(book: Book, seed: int) -> Book:
    """``book`` with seeded quotas on its reps (some without one)."""
    rng = random.Random(seed)
    reps = []
    for k, r in enumerate(sorted(book.crm.reps, key=lambda r: r.id)):
        share = rng.choice([rng.uniform(1.5, 2.0), rng.uniform(0.5, 0.8), 1.0])
        reps.append(replace(r, quota=None if k % 7 == 3 else round(60_000 * share, -2)))
    by_id = {r.id: r for r in reps}
    crm = replace(book.crm, reps=reps)
    return Book([by_id[r.id] for r in book.reps], book.rep_member, book.items, crm, book.notes, book.today, book.policy)


def owners_of(book: Book, dec: Decisions) -> dict[str, str | None]:
    return {i.key: (dec.by_key[i.key].owner if i.key in dec.by_key else None) or i.owner for i in book.items}


def measure(book: Book, owners: dict[str, str | None], p: PolicySettings) -> dict[str, float]:
    """Expected won value and how far each available rep is from their quota target."""
    wm = fit_model(book, p)
    avail = [r.id for r in book.available_reps]
    ids = set(avail)
    e: dict[str, float] = defaultdict(float)
    won = 0.0
    for i in book.items:
        o = owners[i.key]
        won += wm.expected_value(i, o if o in ids else None)
        if o in ids:
            e[o] += wm.expected_value(i, o)
    quota_p = p.model_copy(update={"value_target": "quota"})
    weights = value_weights(book.available_reps, quota_p)
    mean = sum(e[r] for r in avail) / len(avail)
    bands = value_targets(weights, mean, p.value_band)
    share = np.array([e[r] / bands[r].mean for r in avail])
    quota = np.array([weights[r] for r in avail])
    outside = sum(1 for r in avail if not bands[r].lower - 1e-6 <= e[r] <= bands[r].upper + 1e-6)
    corr = float(np.corrcoef(quota, [e[r] for r in avail])[0, 1]) if quota.std() > 0 else 0.0
    return {
        "won": won,
        "cv": float(share.std() / share.mean()),
        "worst": float(np.abs(share - 1).max()),
        "out": float(outside),
        "corr": corr,
    }


def settles(book: Book, pol: Policy, rules: Rules, dec: Decisions) -> int:
    after = apply_decisions(book, dec)
    again = type(pol)().decide(after, rules)  # type: ignore[call-arg]
    return sum(1 for i in after.items if (d := again.by_key.get(i.key)) is not None and d.owner not in (None, i.owner))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="*", help="only the books with these task counts (10000 adds 10k)")
    args = ap.parse_args()
    books = [b for b in BOOKS + MORE if (b[1] in args.sizes if args.sizes else b in BOOKS)]
    print(
        "book | policy | value_target | exp. won | vs mean | target CV | worst off target | outside own band "
        "| corr(EV, quota) | settle | seconds"
    )
    for kind, n, r, make in books:
        book = with_quotas(make(n, r, args.seed), args.seed)
        for name, pol in (("optimal", OptimalPolicy()), ("balanced", BalancedPolicy())):
            base = 0.0
            for target in ("mean", "quota"):
                p = PolicySettings(name=name, value_target=target)
                rules = Rules(p)
                t0 = time.perf_counter()
                dec = pol.decide(book, rules)
                secs = time.perf_counter() - t0
                m = measure(book, owners_of(book, dec), p)
                base = base or m["won"]
                print(
                    f"{kind} {n:,}/{r} | {name} | {target} | {m['won']:,.0f} | {m['won'] / base:.3f} | {m['cv']:.3f} "
                    f"| {m['worst']:.2f} | {m['out']:.0f}/{len(book.available_reps)} | {m['corr']:.2f} "
                    f"| {settles(book, pol, rules, dec)} | {secs:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
