"""Benchmark: many boards in one ``tasksync serve`` process against one process per board.

N local boards (the example generator, different seeds), each with its own CRM folder. Baseline:
one config per board and one ``tasksync serve --once`` process per board, one after the other
(how many boards ran before ``[[boards]]``: a service or cron line per board). Measured: one
config naming the N boards with ``[[boards]]`` and one ``serve --once`` process. Both sync every
board twice: the first run plans and applies, the second finds nothing changed (the idle cost,
what every interval costs). Same machine, same run; the ratio is what counts.

    .venv/bin/python bench/bench_multi.py [--boards 10] [--cards 30]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tasksync.examples import TODAY, generate

GUARDS = "\n[service]\nmax_move_share = 1.0\nmax_create_share = 1.0\n"  # the first sync of a small board applies


def shared_defaults(demo: Path) -> str:
    text = (demo / "tasksync.toml").read_text(encoding="utf-8")  # with GUARDS
    text = re.sub(r'^connector = "local"\n', "", text, flags=re.M)
    text = re.sub(r'\[local\]\npath = "board.json"\n', "", text)
    return re.sub(r'\[crm\]\nfolder = "crm"\n', "", text)


def boards(root: Path, n: int, cards: int) -> list[str]:
    names = [f"team{i:02d}" for i in range(n)]
    for i, name in enumerate(names):
        generate(root / name, cards=cards, seed=100 + i)
        (root / name / "board.json").rename(root / name / f"{name}.json")
        text = (root / name / "tasksync.toml").read_text(encoding="utf-8")
        text = text.replace('path = "board.json"', f'path = "{name}.json"') + GUARDS
        (root / name / "tasksync.toml").write_text(text, encoding="utf-8")
    return names


def serve_once(config: Path) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "tasksync.cli", "-c", str(config), "serve", "--once", "--today", TODAY.isoformat()]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{config}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=10)
    ap.add_argument("--cards", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        apart, together = Path(tmp) / "apart", Path(tmp) / "together"
        names = boards(apart, args.boards, args.cards)
        shutil.copytree(apart, together)
        entries = "".join(f'[[boards]]\nname = "{n}"\nlocal = "{n}/{n}.json"\ncrm = "{n}/crm"\n' for n in names)
        config = together / "tasksync.toml"
        config.write_text(shared_defaults(together / names[0]) + "\n" + entries, encoding="utf-8")
        rows = []
        for label in ("first sync (plan and apply)", "idle (nothing changed)"):
            base = sum(serve_once(apart / n / "tasksync.toml") for n in names)
            one = serve_once(config)
            rows.append((label, base, one))
    print(f"{args.boards} local boards of {args.cards} cards; seconds for one `serve --once` of every board")
    print(f"{'run':32} {'a process per board':>20} {'one process':>12} {'ratio':>7}")
    for label, base, one in rows:
        print(f"{label:32} {base:20.2f} {one:12.2f} {one / base:7.2f}")


if __name__ == "__main__":
    main()
