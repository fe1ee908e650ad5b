"""Resolving the cells of one export that name a record of another: an owner cell to a rep
(:class:`RepIndex`), an account cell to an account (:class:`AccountIndex`)."""

from __future__ import annotations

import re

from tasksync.crm.records import Account, Rep
from tasksync.crm.specs import FileReport
from tasksync.crm.values import account_key, loose_name_key, name_keys, normalise_name

__all__ = ["AccountIndex", "RepIndex", "Unknown"]


class Unknown(str):
    """An owner cell that matches no rep (kept apart so that it is tallied, not used)."""

    __slots__ = ()


class RepIndex:
    """Resolves an owner cell (rep id, email or name, however written) to a rep id:
    by id first, then name, then email; last, by name with accents and word order ignored
    (``Ben Brooks`` for the reps export's ``Brooks Ben``) where that fits one rep only. A cell
    that fits several reps so is not guessed: ``ambiguous`` names them."""

    def __init__(self, reps: list[Rep]) -> None:
        self.keys: dict[str, str] = {}
        for attr in ("id", "name", "email"):
            for r in reps:
                k = getattr(r, attr)
                if k:
                    for key in name_keys(k):
                        self.keys.setdefault(key, r.id)
        self.loose: dict[str, dict[str, str]] = {}  # loose name key -> rep id -> name
        for r in reps:
            if r.name and (key := loose_name_key(r.name)):
                self.loose.setdefault(key, {})[r.id] = r.name
        self.ambiguous: dict[str, list[str]] = {}  # owner cell -> the names of the reps it would fit
        self._memo: dict[str, str] = {}

    def resolve(self, text: str) -> str:
        try:
            return self._memo[text]
        except KeyError:
            pass
        rep = next((r for k in name_keys(text) if (r := self.keys.get(k))), None)
        if rep is None and len(fits := self.loose.get(loose_name_key(text), {})) == 1:
            rep = next(iter(fits))
        elif rep is None and fits:
            self.ambiguous[text.strip()] = list(fits.values())
        out = rep if rep is not None else Unknown(text.strip())
        if len(self._memo) < 100_000:
            self._memo[text] = out
        return out

    def ambiguous_in(self, report: FileReport) -> list[str]:
        """Problems for the owner cells of ``report``'s file that would fit several reps."""
        out = []
        for cell, fits in self.ambiguous.items():
            if cell in report.unknown_owners:
                names = " and ".join(repr(n) for n in fits)
                out.append(
                    f"{report.path}:{report.first_owner_line[cell]}: owner {cell!r} ({report.unknown_owners[cell]:,} "
                    f"rows) would fit reps {names} (accents and word order ignored): none is guessed; write the "
                    "owner as the reps export does"
                )
        return out


class AccountIndex:
    """Resolves an account cell (id, then name) to the account id; unknown text is kept. A name
    written differently in another export (``Acme, Inc.`` / ``ACME Inc``, ``Acme Corporation`` /
    ``Acme Corp``, ``Beta GmbH`` / ``Beta``) matches by :func:`account_key` when only one
    account has that key."""

    def __init__(self, accounts: list[Account]) -> None:
        self.keys: dict[str, str] = {}
        self.ids = {a.id for a in accounts}
        self.names = {a.id: a.name for a in accounts}
        for a in accounts:
            self.keys.setdefault(normalise_name(a.id), a.id)
        for a in accounts:
            if a.name != a.id:  # accounts keyed by name have both the same
                self.keys.setdefault(normalise_name(a.name), a.id)
        loose: dict[str, set[str]] = {}
        for a in accounts:
            if key := account_key(a.name):
                loose.setdefault(key, set()).add(a.id)
        self.loose = {k: next(iter(ids)) for k, ids in loose.items() if len(ids) == 1}

    def resolve(self, text: str) -> str:
        hit = self.keys.get(normalise_name(text))
        if hit is None and re.search(r"[;,|]", text):
            hit = self.keys.get(normalise_name(re.split(r"[;,|]", text)[0]))
        if hit is None:
            hit = self.loose.get(account_key(text))
        return hit or text.strip()
