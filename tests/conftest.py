"""Hypothesis in CI (``CI`` set): derandomized, so that a run on the same commit draws the same
examples and a merge is gated by the code, not by the draw. Elsewhere each run draws afresh (new
examples find new defects: a failure prints the seed and blob to reproduce it, then becomes a
fixed test)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
