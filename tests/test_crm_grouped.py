"""Which columns of a report are taken for group columns (blank below each group's first row)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasksync.crm.grouped import Carry, grouped_columns
from tasksync.crm.load import _is_footer
from tasksync.crm.presets import match_columns

HEADERS = ["Opportunity Owner", "Account Name", "Stage", "Amount"]
MAPPING = match_columns("deals", HEADERS)


def _rows(owners: list[str], accounts: list[str]) -> list[tuple[int, list[str]]]:
    return [(n + 2, [o, a, "Prospecting", "100"]) for n, (o, a) in enumerate(zip(owners, accounts, strict=True))]


def _blanked(values: list[str]) -> list[str]:
    return [v if i == 0 or v != values[i - 1] else "" for i, v in enumerate(values)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=6, max_size=25),
    st.lists(st.sampled_from(["Ann", "Bo", "Cy", "Di"]), min_size=25, max_size=25),
)
def test_a_report_grouped_by_account_is_carried_back_to_its_flat_rows(sizes: list[int], owners: list[str]) -> None:
    accounts = [f"Account {g:03d}" for g, size in enumerate(sizes) for _ in range(size)]
    owners = (owners * (len(accounts) // len(owners) + 1))[: len(accounts)]
    rows = _rows(owners, _blanked(accounts))
    blank = sum(1 for _, cells in rows if not cells[1])
    if blank < 0.3 * len(rows) or sum(s > 1 for s in sizes) < 5:
        return  # too few groups with rows below their first to tell from an ungrouped export
    carried = grouped_columns(MAPPING, rows, _is_footer, None)
    assert [c.field for c in carried] == ["account_id"]
    carry = Carry([c.index for c in carried], _is_footer)
    assert [cells[1] for _, cells in carry(rows)] == accounts and carry.filled == blank


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Ann", "Bo", "Cy", "Di", "Ed", ""]), min_size=10, max_size=60))
def test_an_ungrouped_export_with_blank_owners_is_never_carried(owners: list[str]) -> None:
    """Owners repeat in an ungrouped export: whatever its blanks, nothing is carried."""
    if len([o for o in owners if o]) == len({o for o in owners if o}):
        return  # every owner once: a grouped report could look the same
    accounts = [f"Account {i % 7}" for i in range(len(owners))]
    assert grouped_columns(MAPPING, _rows(owners, accounts), _is_footer, None) == []


def test_unsorted_groups_or_a_blank_first_row_are_not_taken_for_a_grouped_report() -> None:
    names = ["Eve", "Bo", "Di", "Ann", "Cy", "Fay"]
    owners = [o for name in names for o in (name, "", "")]
    accounts = [f"A{i}" for i in range(len(owners))]
    assert grouped_columns(MAPPING, _rows(owners, accounts), _is_footer, None) == []
    owners = ["", *[o for name in sorted(names) for o in (name, "", "")]]
    assert grouped_columns(MAPPING, _rows(owners, [*accounts, "A"]), _is_footer, None) == []
    owners = owners[1:]
    assert [c.field for c in grouped_columns(MAPPING, _rows(owners, accounts), _is_footer, None)] == ["owner"]
    assert grouped_columns(MAPPING, _rows(owners, accounts), _is_footer, False) == []
