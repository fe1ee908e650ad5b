"""The optimal policy's objective on the bench's small books, to compare two checkouts' searches.

Per book (the synthetic 1,000/20 and 2,000/40 and the real-shaped 664/35 of ``bench_division.py``,
seed 1): the objective of the policy's division as the bench's gap measures it (fit value − move
cost − band penalties, :meth:`OptimalPolicy.evaluate`, the exact model), its expected won value,
the reps outside the count and value bands, the CPU seconds of one decision, the method, and
whether a second run gives the same plan. To compare with another checkout in the same session
(the machine may be shared: compare CPU, not wall), run this file with
``PYTHONPATH=<that checkout>/src`` and put the two tables side by side.

    python bench/policies/bench_polish.py [--sizes 664 1000 2000] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tasksync.policies.base import Rules
from tasksync.policies.model_eval import real_shaped_book, synthetic_book
from tasksync.policies.optimal import OptimalPolicy, fit_model
from tasksync.settings import PolicySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_division import balances, owners_of

BOOKS = [("synthetic", 1_000, 20, synthetic_book), ("real-shaped", 664, 35, real_shaped_book)]
BOOKS.append(("synthetic", 2_000, 40, synthetic_book))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", help="only the books with these task counts")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("book | objective | exp. won | out count/value band | CPU s | same plan twice | method")
    for kind, n, r, make in BOOKS:
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


if __name__ == "__main__":
    main()
