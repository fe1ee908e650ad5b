"""The README's set-up commands are the ones CI runs, and the committed example is current."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

from tasksync.examples import generate

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up and try it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_two_one_line_setup_commands() -> None:
    demo, tests = _commands()[:2]
    assert demo.startswith("python3 -m venv .venv") and demo.endswith("tasksync demo")
    assert tests.startswith("python3 -m venv .venv") and tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _commands()[1] in ci.splitlines()


def test_committed_example_matches_its_generator(tmp_path: Path) -> None:
    generate(tmp_path / "demo")
    committed = ROOT / "examples" / "demo"
    for rel in ("board.json", "tasksync.toml", "crm/reps.csv", "crm/accounts.csv", "crm/deals.csv", "crm/history.csv"):
        assert filecmp.cmp(tmp_path / "demo" / rel, committed / rel, shallow=False), rel
