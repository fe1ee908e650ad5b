"""Shared by the tests of the bench's bounds: a bench module loaded from its file, and a small
exact-mode model of a seeded book."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tasksync.policies.model_eval import real_shaped_book, synthetic_book
from tasksync.policies.optimal import fit_model
from tasksync.policies.optimal.model import Model, build_model
from tasksync.settings import PolicySettings

BENCH = Path(__file__).resolve().parents[1] / "bench" / "policies"


def load_bench(name: str) -> ModuleType:
    """``bench/policies/<name>.py`` as the module ``name`` (the bench's folder on the import path, as
    when the bench runs, for the modules it imports from its siblings)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def book_model(kind: str, n: int, r: int, seed: int, value_band: float = 0.20) -> Model:
    """The exact-mode model of a seeded ``synthetic`` or ``real-shaped`` book of n cards, r reps."""
    book = (synthetic_book if kind == "synthetic" else real_shaped_book)(n, r, seed)
    p = PolicySettings(name="optimal", value_band=value_band)
    return build_model(book, p, fit_model(book, p), True)
