"""The balanced (greedy) policy at scale: CPU seconds and peak memory against a baseline checkout, in one run.

Books: ``synthetic_book`` and ``real_shaped_book`` at 10k tasks / 100 reps, 30k / 300 and 100k / 1,000
(``--quick`` stops at 30k). Every decision runs in its own subprocess, once with this checkout's
``src`` and once with the baseline's (``--baseline PATH``: a checkout of main, e.g. ``/work/main``),
so each process's peak RSS is its own. The baseline's process gets an address-space limit
(``--limit-gib``, default 4) and a CPU limit (``--limit-cpu``, default 900 s) so that it cannot take the
machine down: when it hits one the table says "OOM (over N GiB)" or "over N s CPU".

Per book: CPU seconds of the decision (process time, not wall: the machine may be shared), the
process's peak RSS and the part of it the book itself takes, the ratios baseline ÷ this checkout, and
whether both made the same decisions (owners, priorities, reasons and notes hashed).

    python bench/policies/bench_balanced_scale.py --baseline /work/main [--quick] [--kinds synthetic]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2] / "src"
SIZES = [(10_000, 100), (30_000, 300), (100_000, 1_000)]
KINDS = ("synthetic", "real-shaped")


def child(kind: str, n: int, reps: int, seed: int) -> None:
    """Decide one book with the ``tasksync`` on ``PYTHONPATH``; print one JSON line of figures."""
    from tasksync.policies.balanced import BalancedPolicy
    from tasksync.policies.base import Rules
    from tasksync.policies.model_eval import real_shaped_book, synthetic_book
    from tasksync.settings import PolicySettings

    book = (synthetic_book if kind == "synthetic" else real_shaped_book)(n, reps, seed)
    book_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.process_time()
    dec = BalancedPolicy().decide(book, Rules(PolicySettings(name="balanced")))
    cpu = time.process_time() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = repr(sorted((k, d.owner, d.priority, str(d.reason)) for k, d in dec.by_key.items())) + repr(dec.notes)
    moved = sum(1 for i in book.items if i.key in dec.by_key and dec.by_key[i.key].owner not in (None, i.owner))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    settled = not any("still changed" in x for x in dec.notes)
    out: Figures = {"cpu": cpu, "peak_mib": peak / 1024, "book_mib": book_rss / 1024, "moved": moved}
    print(json.dumps({**out, "hash": digest, "settled": settled}))


Figures = dict[str, float | str | bool]


def run(src: Path, kind: str, n: int, reps: int, seed: int, limit_gib: float, limit_cpu: int) -> Figures:
    """One decision in a subprocess importing ``tasksync`` from ``src``, under the limits."""

    def limits() -> None:
        cap = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CPU, (limit_cpu, limit_cpu + 5))

    env = {**os.environ, "PYTHONPATH": str(src), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, __file__, "--child", kind, str(n), str(reps), str(seed)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, preexec_fn=limits, check=False)
    if proc.returncode == 0:
        fig: Figures = json.loads(proc.stdout.strip().splitlines()[-1])
        return fig
    if "MemoryError" in proc.stderr or "Unable to allocate" in proc.stderr:
        return {"failed": f"OOM (over {limit_gib:g} GiB)"}
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return {"failed": f"over {limit_cpu} s CPU" if proc.returncode == -signal.SIGXCPU else "killed"}
    tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return {"failed": f"failed: {tail[:60]}"}


def cell(fig: Figures) -> str:
    if "failed" in fig:
        return f"{fig['failed']:>32}"
    return f"{fig['cpu']:8.1f} s {fig['peak_mib']:7.0f} MiB ({fig['book_mib']:4.0f} book)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="a checkout whose src/ holds the baseline (e.g. /work/main)")
    ap.add_argument("--quick", action="store_true", help="stop at 30k tasks / 300 reps")
    ap.add_argument("--kinds", nargs="*", choices=KINDS, default=list(KINDS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit-gib", type=float, default=4.0, help="address-space limit of each process")
    ap.add_argument("--limit-cpu", type=int, default=900, help="CPU seconds limit of each process")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, n, reps, seed = a.child
        child(kind, int(n), int(reps), int(seed))
        return
    sizes = SIZES[:2] if a.quick else SIZES
    base = a.baseline / "src" if a.baseline else None
    print(
        f"balanced policy: this checkout ({HERE}) vs baseline ({base or 'none'}); limits {a.limit_gib:g} GiB, "
        f"{a.limit_cpu} s CPU per process; CPU is process time, RSS the process peak"
    )
    head = f"{'book':<24}{'this checkout':>32}{'baseline':>34}{'CPU ×':>8}{'RSS ×':>7}  same  settled  moved"
    print(head)
    print("-" * len(head))
    for kind in a.kinds:
        for n, reps in sizes:
            mine = run(HERE, kind, n, reps, a.seed, a.limit_gib, a.limit_cpu)
            other: Figures = {"failed": "not run"}
            if base is not None:
                other = run(base, kind, n, reps, a.seed, a.limit_gib, a.limit_cpu)
            ratio_cpu = ratio_rss = same = "-"
            if "failed" not in mine and "failed" not in other:
                ratio_cpu = f"{float(other['cpu']) / max(float(mine['cpu']), 1e-9):.1f}"
                ratio_rss = f"{float(other['peak_mib']) / float(mine['peak_mib']):.1f}"
                same = "yes" if other["hash"] == mine["hash"] else "no"
            settled = "-" if "failed" in mine else ("yes" if mine["settled"] else "no")
            moved = "-" if "failed" in mine else str(mine["moved"])
            print(
                f"{kind + f' {n // 1000}k/{reps}':<24}{cell(mine):>32}  {cell(other):>32}{ratio_cpu:>8}{ratio_rss:>7}"
                f"  {same:<4}  {settled:<7}  {moved}",
                flush=True,
            )


if __name__ == "__main__":
    main()
