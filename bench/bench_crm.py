"""Benchmark: reading a large CRM export with every check on, against plain readers.

Writes a HubSpot-style deals export of ``--rows`` rows (default 200,000) and 20 columns, ten
of them used by tasksync (id, name, stage, "$12,345.67" amounts, month-first dates, ISO
timestamps, owners resolved against 50 reps, companies resolved against 5,000 accounts) and
ten it ignores, with 0.2% unreadable amounts. Then, in the same run:

* ``csv.DictReader``: the baseline (rows as dicts, no typing at all);
* ``csv.reader``: the floor of any CSV reading in Python;
* tasksync ``open_table``: encoding check of the whole file, delimiter sniffing, rows;
* tasksync ``iter_records``: all of the above plus header mapping, per-column date order and
  decimal mark, typing and validating every used cell, rep and account resolution, stage
  classification, problems collected (``crm.max_bad_rows`` = 1%);
* pandas ``read_csv`` (strings only) when pandas is installed;
* the same for an XLSX export (``--xlsx-rows``, default 10,000: openpyxl writes and parses
  XLSX some 50 times slower than CSV), against openpyxl's read-only ``iter_rows`` as baseline.

Rows/second are from the best of ``--repeat`` timed runs without tracing, in CPU seconds
(``time.process_time``) so that other load on the machine does not skew the comparison;
peak memory is measured in a separate run under ``tracemalloc`` on the whole file and on a
quarter of it; a flat reader has (nearly) the same peak for both.

    PYTHONPATH=src python bench/bench_crm.py [--rows 200000] [--xlsx-rows 50000]
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from tasksync.crm.load import FileReport, _AccountIndex, _RepIndex, iter_records
from tasksync.crm.readers import open_table
from tasksync.crm.records import Account, Rep
from tasksync.settings import CrmSettings

HEADERS = [
    "Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date",
    "Deal owner", "Associated Company", "Product", "Deal Type",
    "Pipeline", "Deal probability", "Last Activity Date", "Forecast category",
    "Associated Contact", "Deal Description", "Priority", "Original Source", "Next Step",
    "Currency",
]  # fmt: skip
STAGES = ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled",
          "Decision Maker Bought-In", "Contract Sent", "Closed Won", "Closed Lost"]  # fmt: skip
REPS = [Rep(f"U{i:03d}", f"Rep Person{i}", f"rep{i}@example.com") for i in range(50)]
ACCOUNTS = [Account(f"C{i:05d}", f"Company {i} Inc") for i in range(5000)]


def write_rows(rows: int, seed: int = 7) -> list[list[object]]:
    """Not used for CSV (streamed to disk); kept small for XLSX."""
    rng = random.Random(seed)
    return [_row(rng, i) for i in range(rows)]


def _row(rng: random.Random, i: int) -> list[object]:
    start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 365))
    amount = f"${rng.randint(100, 900_000):,}.{rng.randint(0, 99):02d}"
    if i % 500 == 250:  # 0.2% unreadable amounts: those rows are reported and skipped
        amount = "call me"
    close = start + timedelta(days=rng.randint(10, 200))
    return [
        str(10_000_000 + i),
        f"Deal {i} for Company {i % 5000} Inc",
        rng.choice(STAGES),
        amount,
        f"{close.month}/{close.day}/{close.year}",
        f"{start.isoformat()} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        f"Rep Person{rng.randrange(50)}",
        f"Company {rng.randrange(5000)} Inc",
        rng.choice(["Core", "Analytics", "Support Plan"]),
        rng.choice(["newbusiness", "existingbusiness"]),
        "Sales Pipeline",
        f"{rng.random():.2f}",
        start.isoformat(),
        rng.choice(["Pipeline", "Best case", "Commit"]),
        f"Contact {rng.randrange(100000)}",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit" if i % 7 == 0 else "",
        rng.choice(["high", "medium", "low"]),
        rng.choice(["Organic Search", "Direct Traffic", "Referrals", "Offline Sources"]),
        "Follow up" if i % 3 == 0 else "",
        "USD",
    ]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        for i in range(rows):
            w.writerow(_row(rng, i))


def write_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    rng = random.Random(7)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Deals")
    ws.append(HEADERS)
    for i in range(rows):
        ws.append(_row(rng, i))
    wb.save(path)


def _settings() -> CrmSettings:
    return CrmSettings(max_bad_rows=0.01)  # 1%


def run_dictreader(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def run_csvreader(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        r = csv.reader(fh)
        next(r)
        return sum(1 for _ in r)


def run_open_table(path: Path) -> int:
    with open_table(path) as t:
        return sum(1 for _ in t.rows)


def run_tasksync(path: Path) -> int:
    report = FileReport(path, "deals")
    for _ in iter_records(path, "deals", _settings(), report, _RepIndex(REPS), _AccountIndex(ACCOUNTS)):
        pass
    expected_bad = len(range(250, report.rows, 500))
    assert report.bad == expected_bad == len(report.problems), "validation did not run"
    return report.rows


def run_pandas(path: Path) -> int:
    pd = importlib.import_module("pandas")
    return len(pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig"))


def run_openpyxl(path: Path) -> int:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        next(rows)
        return sum(1 for _ in rows)
    finally:
        wb.close()


@dataclass
class Result:
    name: str
    rows: int
    seconds: float  # CPU
    wall: float
    peak_full: int
    peak_quarter: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def measure(name: str, fn: Callable[[Path], int], full: Path, quarter: Path, repeat: int, warm: bool = True) -> Result:
    if warm:
        fn(quarter)  # warm up: page cache, imports, regex compilation
    seconds = wall = float("inf")
    rows = 0
    for _ in range(repeat):  # best of `repeat`; CPU seconds, as other load on the machine
        gc.collect()  # inflates wall time far more than it changes the work done
        t0, w0 = time.process_time(), time.perf_counter()
        rows = fn(full)
        seconds = min(seconds, time.process_time() - t0)
        wall = min(wall, time.perf_counter() - w0)
    peaks = []
    for p in (full, quarter):
        gc.collect()
        tracemalloc.start()
        fn(p)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return Result(name, rows, seconds, wall, peaks[0], peaks[1])


def print_table(title: str, results: list[Result], baseline: Result) -> None:
    print(f"\n{title}")
    head = f"{'reader':44} {'rows':>9} {'CPU s':>7} {'wall s':>7} {'rows/s':>9} {'vs base':>8}"
    print(head + f" {'peak MB':>8} {'peak MB @1/4':>12}")
    print("-" * (len(head) + 22))
    for r in results:
        print(
            f"{r.name:44} {r.rows:>9,} {r.seconds:>7.2f} {r.wall:>7.2f} {r.rate:>9,.0f} "
            f"{r.rate / baseline.rate:>7.2f}x {r.peak_full / 1e6:>8.2f} "
            f"{r.peak_quarter / 1e6:>12.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="CSV rows (0: skip CSV)")
    ap.add_argument("--xlsx-rows", type=int, default=10_000, help="XLSX rows (0: skip XLSX)")
    ap.add_argument("--repeat", type=int, default=2, help="timed CSV runs per reader (best kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tasksync-bench-") as tmp:
        folder = Path(tmp)
        if args.rows:
            bench_csv(folder, args.rows, args.repeat)
        if args.xlsx_rows:
            bench_xlsx(folder, args.xlsx_rows)


def bench_csv(folder: Path, rows: int, repeat: int) -> None:
    full, quarter = folder / "deals.csv", folder / "deals-quarter.csv"
    t0 = time.perf_counter()
    write_csv(full, rows)
    write_csv(quarter, rows // 4)
    print(
        f"CSV: {rows:,} rows x {len(HEADERS)} columns, {full.stat().st_size / 1e6:.1f} MB "
        f"(written in {time.perf_counter() - t0:.1f}s)"
    )
    runs: list[tuple[str, Callable[[Path], int]]] = [
        ("csv.DictReader (baseline, no typing)", run_dictreader),
        ("csv.reader (no typing)", run_csvreader),
        ("tasksync open_table (detect + read)", run_open_table),
        ("tasksync iter_records (all validation on)", run_tasksync),
    ]
    try:
        importlib.import_module("pandas")
        runs.append(("pandas.read_csv (dtype=str)", run_pandas))
    except ImportError:
        print("pandas is not installed: its row is left out")
    results = [measure(n, fn, full, quarter, repeat) for n, fn in runs]
    print_table("CSV", results, results[0])
    ratio = results[3].rate / results[0].rate
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"\ntasksync with validation: {ratio:.2f}x DictReader ({verdict} the 0.5x target)")


def bench_xlsx(folder: Path, rows: int) -> None:
    full, quarter = folder / "deals.xlsx", folder / "deals-quarter.xlsx"
    t0 = time.perf_counter()
    write_xlsx(full, rows)
    write_xlsx(quarter, rows // 4)
    print(
        f"\nXLSX: {rows:,} rows x {len(HEADERS)} columns, {full.stat().st_size / 1e6:.1f} MB "
        f"(written in {time.perf_counter() - t0:.1f}s)"
    )
    results = [
        measure("openpyxl read-only iter_rows (baseline)", run_openpyxl, full, quarter, 1, False),
        measure("tasksync open_table", run_open_table, full, quarter, 1, False),
        measure("tasksync iter_records (all validation on)", run_tasksync, full, quarter, 1, False),
    ]
    print_table("XLSX", results, results[0])


if __name__ == "__main__":
    main()
