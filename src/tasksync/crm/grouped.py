"""Grouped reports: each group's account or owner written on its first row only.

A CRM report grouped by account or owner (Salesforce's formatted export, a pivot pasted into a
sheet) writes the group's value once, on the group's first row, and leaves the cells below it
blank; read as they are, those rows have no account or no owner. In XLSX the cell is often
merged down (the reader fills merged cells); in CSV, or XLSX without merging, it is blank.

A column is taken for a group column when, on the look-ahead, the rows (report footers and
subtotals aside) start with a value, at least :data:`MIN_GROUPS` values are each followed by
blank cells, at least :data:`MIN_BLANK_SHARE` of the cells are blank, no value repeats (within
an outer group column, for reports grouped twice) and the values run in sorted order, as reports
sort their groups. An ungrouped export with blank owners or accounts fails at least one of these:
its values repeat, its blanks sit together at one end when sorted, or its values are not in order.
Then each blank cell is given the value above it (``fill_down``: ``true`` always, ``false``
never, unset: as detected).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from tasksync.crm.presets import ColumnMapping, ColumnMatch
from tasksync.crm.specs import FIELDS
from tasksync.crm.values import normalise_name

__all__ = ["MIN_BLANK_SHARE", "MIN_GROUPS", "Carry", "grouped_columns"]

MIN_GROUPS = 5  # groups followed by blank cells, at least
MIN_BLANK_SHARE = 0.3  # of the column's cells on the look-ahead
_GROUP_KINDS = ("rep", "account")  # the fields reports are grouped by


def _cell(cells: list[str], i: int) -> str:
    return cells[i].strip() if i < len(cells) else ""


def _in_order(keys: list[str]) -> bool:
    """Whether group values run sorted, either way: every step when there are few, nine in ten
    when there are many (a report's collation differs from ours on accents and punctuation)."""
    steps = list(pairwise(keys))
    up = sum(a <= b for a, b in steps)
    down = sum(a >= b for a, b in steps)
    need = len(steps) if len(keys) < 10 else 0.9 * len(steps)
    return max(up, down) >= need


def _grouped(rows: list[list[str]], i: int, outer: list[int]) -> bool:
    values = [_cell(cells, i) for cells in rows]
    if not values or not values[0] or values.count("") < MIN_BLANK_SHARE * len(values):
        return False
    followed = sum(1 for a, b in pairwise(values) if a and not b)
    if followed < MIN_GROUPS:
        return False
    seen: set[tuple[str, ...]] = set()
    keys: list[str] = []
    context: list[str] = ["" for _ in outer]
    for cells, value in zip(rows, values, strict=True):
        for n, j in enumerate(outer):
            context[n] = _cell(cells, j) or context[n]
        if value:
            key = (*context, normalise_name(value))
            if key in seen:
                return False
            seen.add(key)
            keys.append(key[-1])
    return _in_order(keys)


def grouped_columns(
    mapping: ColumnMapping,
    ahead: list[tuple[int, list[str]]],
    is_footer: Callable[[list[str]], bool],
    fill: bool | None,
) -> list[ColumnMatch]:
    """The mapped account and owner columns to carry down (see the module docstring), outer
    groups first."""
    specs = FIELDS[mapping.kind]
    candidates = [c for c in mapping.columns.values() if specs[c.field].kind in _GROUP_KINDS and len(c.columns) == 1]
    if fill is False or not candidates:
        return []
    if fill:
        return sorted(candidates, key=lambda c: c.index)
    rows = [cells for _, cells in ahead if not is_footer(cells)]
    # Outer groups have fewer distinct values: an owner's group holds several accounts' groups.
    candidates.sort(key=lambda c: (len({_cell(r, c.index) for r in rows}), c.index))
    chosen: list[ColumnMatch] = []
    for c in candidates:
        if _grouped(rows, c.index, [o.index for o in chosen]):
            chosen.append(c)
    return chosen


@dataclass
class Carry:
    """Carries ``columns``' values down over blank cells, counting the cells it fills; report
    footers and subtotal lines are passed as they are and start no group."""

    columns: list[int]
    is_footer: Callable[[list[str]], bool]
    filled: int = 0
    _last: dict[int, str] = field(default_factory=dict)

    def __call__(self, rows: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        last = self._last
        for line, cells in rows:
            if not self.is_footer(cells):
                for i in self.columns:
                    value = _cell(cells, i)
                    if value:
                        last[i] = value
                    elif i in last:
                        if i >= len(cells):
                            cells = [*cells, *([""] * (i + 1 - len(cells)))]
                        cells[i] = last[i]
                        self.filled += 1
            yield line, cells
