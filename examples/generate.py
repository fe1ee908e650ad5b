"""Regenerate the committed example in examples/demo (seeded: the same files every time).

python examples/generate.py
"""

from __future__ import annotations

from pathlib import Path

from tasksync.examples import generate

if __name__ == "__main__":
    config = generate(Path(__file__).resolve().parent / "demo")
    print(f"wrote {config.parent}")
