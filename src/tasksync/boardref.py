"""What a board reference is known by, without importing the configuration's models (``status``
matches ``--board`` with it and must start fast)."""

from __future__ import annotations

import re

__all__ = ["ref_keys"]

_ID_IN_URL = (r"trello\.com/b/([A-Za-z0-9]+)", r"/project/(\d+)", r"app\.asana\.com/\d+/\d+/(\d+)")


def ref_keys(text: str) -> set[str]:
    """The text (case-folded), and the id in a Trello or Asana URL."""
    text = text.strip()
    keys = {text.casefold()}
    for pattern in _ID_IN_URL:
        m = re.search(pattern, text)
        if m:
            keys.add(m.group(1).casefold())
    return keys
