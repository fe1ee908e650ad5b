"""The CRM benchmark still runs end to end (on a tiny export; the figures are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_crm_runs_on_a_small_export() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_crm.py"),
            "--rows",
            "2000",
            "--xlsx-rows",
            "200",
            "--repeat",
            "1",
            "--history-rows",
            "2000",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "tasksync iter_records (all validation on)" in out
    assert "x DictReader (" in out and "the 0.5x target)" in out
    assert "XLSX: 200 rows x 20 columns" in out
    assert out.count("2,000") >= 4 and out.count("    200 ") >= 3
    assert "tasksync load_crm (records, all checks)" in out
    assert "x DictReader (" in out.split("load_crm end to end:")[1]
    assert "load_crm memory above its records:" in out
