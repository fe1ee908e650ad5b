"""Problems between CRM exports read together, and between two runs' exports.

:func:`cross_check` finds owners that match no rep, deals whose account is not in the accounts
export and rep regions or sectors that match no account's; :func:`compare_row_counts` warns of
an export that lost most of its rows since the previous run (truncated or filtered).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from tasksync.crm.records import CrmData
from tasksync.crm.specs import FileReport

__all__ = ["compare_row_counts", "cross_check"]


def _sample(counts: Counter[str], first_line: Mapping[str, int], noun: str) -> str:
    top = counts.most_common(5)
    text = ", ".join(f"{v!r} ({k:,} {noun}{'s' if k != 1 else ''}, first on line {first_line[v]})" for v, k in top)
    if len(counts) > len(top):
        text += f" and {len(counts) - len(top):,} more"
    return text


def cross_check(data: CrmData, files: Mapping[str, FileReport]) -> list[str]:
    """Problems between files: owners that match no rep, deals' accounts missing from the
    accounts export, rep regions and sectors that match no account's. Each goes to the
    report of the file whose references fail (``failing`` when more than half do)."""
    found: list[str] = []
    reps_r, accounts_r = files.get("reps"), files.get("accounts")

    def add(report: FileReport, message: str, failing: bool) -> None:
        report.cross.append(message)
        found.append(message)
        if failing:
            report.failing.append(message)

    for kind in ("accounts", "deals", "history"):
        r = files.get(kind)
        if r is None or r.mapping is None:
            continue
        if r.unknown_owners and reps_r is not None:
            n = sum(r.unknown_owners.values())
            header = r.mapping.columns["owner"].header
            first = min(r.first_owner_line.values())
            add(
                r,
                f"{r.path}:{first}:{header}: {n:,} of {r.owner_refs:,} rows name an owner who "
                f"matches no rep in {reps_r.path.name} (by id, name or email), so they count for "
                f"nobody: {_sample(r.unknown_owners, r.first_owner_line, 'row')}",
                2 * n > r.owner_refs,
            )
        if kind == "deals" and r.unknown_accounts and accounts_r is not None:
            n = sum(r.unknown_accounts.values())
            header = r.mapping.columns["account_id"].header
            first = min(r.first_account_line.values())
            add(
                r,
                f"{r.path}:{first}:{header}: {n:,} of {r.account_refs:,} deals name an account "
                f"that is not in {accounts_r.path.name} (by id or name), so they have no sector, "
                f"region or size: {_sample(r.unknown_accounts, r.first_account_line, 'deal')}",
                2 * n > r.account_refs,
            )
    if reps_r is not None and accounts_r is not None and data.reps and data.accounts:
        for what, rep_values, account_values in (
            ("region", [(r.region,) if r.region else () for r in data.reps], {a.region for a in data.accounts}),
            ("sector", [r.sectors for r in data.reps], {a.sector for a in data.accounts}),
        ):
            theirs = {v.casefold() for v in account_values if v}
            with_value = [vs for vs in rep_values if vs]
            if not theirs or not with_value:
                continue
            unmatched = Counter(v for vs in with_value for v in vs if v.casefold() not in theirs)
            if not unmatched:
                continue
            lost = sum(1 for vs in with_value if all(v.casefold() not in theirs for v in vs))
            shown = ", ".join(repr(v) for v, _ in unmatched.most_common(5))
            examples = ", ".join(repr(v) for v in sorted({v for v in account_values if v})[:5])
            add(
                reps_r,
                f"{reps_r.path}: {len(unmatched)} rep {what}(s) match no account's {what} in "
                f"{accounts_r.path.name}: {shown} (accounts' {what}s: {examples}"
                f"{', ...' if len(theirs) > 5 else ''}); {lost} of {len(with_value)} reps get no "
                f"{what} fit",
                2 * lost > len(with_value),
            )
    return found


def compare_row_counts(previous: Mapping[str, int], current: Mapping[str, int], threshold: float = 0.5) -> list[str]:
    """Warnings for exports that lost more than ``threshold`` of their rows since the
    previous run (a truncated or filtered export would otherwise unassign most of a book).

    Keys are whatever the caller persists (kinds such as ``"deals"``, or paths); a key in
    ``previous`` missing from ``current`` counts as zero rows.
    """
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be a share of rows in (0, 1]")
    warnings: list[str] = []
    for key, before in sorted(previous.items()):
        now = current.get(key, 0)
        if before > 0 and (before - now) / before > threshold:
            warnings.append(
                f"{key}: {now:,} rows, down from {before:,} in the previous run "
                f"({(before - now) / before:.0%} fewer); the export may be truncated or "
                "filtered"
            )
    return warnings
